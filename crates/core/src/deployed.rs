//! The deployed configuration is the only configuration. The stacks write each scheduled run
//! of a side (exactly the input its schedule starts the state machine with) to an SSM
//! parameter, and tell the functions where (`SNAPCOURIER_DEPLOYED_RUNS`). A function runs a
//! step only for a run equal to the deployed run of the schedule it names: whoever may start
//! an execution can pick a deployed schedule, never widen what it does (other accounts,
//! regions or keys, a shorter retention, other databases).
//!
//! The rule is equality, not "no wider": a narrower run (a longer retention, fewer regions) is
//! refused too. It is the simplest rule that cannot be argued with, and a change to what a
//! schedule does belongs in the config, reviewed and deployed.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::Problems;
use crate::error::Error;
use crate::heartbeat::Side;

/// The functions' environment variable naming the parameter path of their side's runs.
pub const DEPLOYED_RUNS_ENV: &str = "SNAPCOURIER_DEPLOYED_RUNS";

/// Longest value quoted in a message (the rest is elided).
const QUOTE: usize = 120;

/// The SSM parameter path under which a side's runs are deployed, one parameter per schedule.
pub fn parameter_prefix(namespace: &str, side: Side) -> String {
    format!("/snapcourier/{namespace}/{}/runs/", side.as_str())
}

/// The parameter holding one schedule's deployed run.
pub fn parameter_name(prefix: &str, schedule: &str) -> String {
    format!("{prefix}{schedule}")
}

/// Refuse `run` (found at `path` of the event) unless it equals the deployed run `deployed`
/// (the text of `parameter`). Every difference is one problem naming the field.
pub fn check_run<R>(run: &R, path: &str, deployed: &str, parameter: &str) -> Result<(), Error>
where
    R: Serialize + DeserializeOwned,
{
    // Through the type, so that defaults written out on one side and omitted on the other
    // are no difference.
    let deployed: R = serde_json::from_str(deployed).map_err(|e| {
        Error::config(
            parameter,
            format!("the deployed run does not parse ({e}): deploy the stacks again with this build of snapcourier"),
        )
    })?;
    let (Ok(run), Ok(deployed)) = (serde_json::to_value(run), serde_json::to_value(&deployed))
    else {
        return Err(Error::internal(
            format!("the run at {path}"),
            "it does not serialise",
        ));
    };
    let mut p = Problems::default();
    for (field, problem) in differences(&run, &deployed, path) {
        p.add(
            field,
            format!("{problem}: a run may pick a deployed schedule, never change it (the deployed run is SSM parameter {parameter}); change the config and deploy the stacks"),
        );
    }
    p.into_result()
}

/// Where two JSON documents differ: (field path, what differs), depth first, in key order.
pub fn differences(got: &Value, deployed: &Value, path: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(got, deployed, path, &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(got: &Value, deployed: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match (got, deployed) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let field = join(path, key);
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(x, y, &field, out),
                    (Some(x), None) => {
                        out.push((field, format!("{} is not deployed (absent)", quote(x))));
                    }
                    (None, Some(y)) => {
                        out.push((field, format!("absent, deployed as {}", quote(y))));
                    }
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(x, y, &format!("{path}[{i}]"), out);
            }
        }
        (x, y) if x == y => {}
        (x, y) => out.push((
            path.to_string(),
            format!("{} differs from the deployed {}", quote(x), quote(y)),
        )),
    }
}

fn quote(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(QUOTE) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::events::{DestinationRun, SourceRun};
    use serde_json::json;

    const EXAMPLE: &str = include_str!("../../../examples/snapcourier.yaml");

    fn destination() -> DestinationRun {
        let config = Config::parse(EXAMPLE).unwrap();
        let account = config.destinations[0].account.clone();
        DestinationRun::from_config(&config, "aurora-daily", &account).unwrap()
    }

    fn fields(err: &Error) -> Vec<String> {
        err.problems().iter().map(|p| p.field.clone()).collect()
    }

    #[test]
    fn the_deployed_run_itself_passes_also_with_defaults_written_out_or_omitted() {
        let run = destination();
        let text = serde_json::to_string(&run).unwrap();
        check_run(&run, "run", &text, "/p").unwrap();
        // The same run with its settings omitted (all defaults) is the same run.
        let mut sparse = serde_json::to_value(&run).unwrap();
        sparse.as_object_mut().unwrap().remove("settings");
        let mut with_defaults = run.clone();
        with_defaults.settings = Default::default();
        check_run(&with_defaults, "run", &sparse.to_string(), "/p").unwrap();
    }

    #[test]
    fn each_widening_is_refused_naming_its_field() {
        let deployed = serde_json::to_string(&destination()).unwrap();
        let mut shorter = destination();
        shorter.destination.retention.keep_last = 1;
        shorter.destination.retention.days = None;
        shorter.destination.retention.tiers = None;
        let err = check_run(
            &shorter,
            "run",
            &deployed,
            "/snapcourier/demo/destination/runs/aurora-daily",
        )
        .unwrap_err();
        assert_eq!(err.error_type(), "ConfigInvalid");
        assert_eq!(
            fields(&err),
            [
                "run.destination.retention.days",
                "run.destination.retention.keep_last",
                "run.destination.retention.tiers"
            ]
        );
        assert!(err.to_string().contains("deployed"), "{err}");
        assert!(
            err.to_string()
                .contains("/snapcourier/demo/destination/runs/aurora-daily"),
            "{err}"
        );

        let mut account = destination();
        account.destination.account = "999999999999".into();
        let err = check_run(&account, "run", &deployed, "/p").unwrap_err();
        assert_eq!(fields(&err), ["run.destination.account"]);
        assert!(
            err.to_string()
                .contains("\"999999999999\" differs from the deployed \"222222222222\""),
            "{err}"
        );

        let mut key = destination();
        key.destination.regions[0].kms_key =
            Some("arn:aws:kms:eu-west-1:999999999999:key/x".into());
        assert_eq!(
            fields(&check_run(&key, "run", &deployed, "/p").unwrap_err()),
            ["run.destination.regions[0].kms_key"]
        );

        let mut region = destination();
        let mut extra = region.destination.regions[0].clone();
        extra.region = "ap-south-1".into();
        region.destination.regions.push(extra);
        assert_eq!(
            fields(&check_run(&region, "run", &deployed, "/p").unwrap_err()),
            ["run.destination.regions"]
        );
    }

    #[test]
    fn a_source_run_sharing_with_another_account_is_refused() {
        let config = Config::parse(EXAMPLE).unwrap();
        let run = SourceRun::from_config(&config, "aurora-daily").unwrap();
        let deployed = serde_json::to_string(&run).unwrap();
        let mut forged = run.clone();
        forged.destination_accounts.push("999999999999".into());
        let err = check_run(&forged, "run", &deployed, "/p").unwrap_err();
        assert_eq!(fields(&err), ["run.destination_accounts"]);
        forged.destination_accounts = vec!["999999999999".into()];
        let err = check_run(&forged, "run", &deployed, "/p").unwrap_err();
        assert_eq!(fields(&err), ["run.destination_accounts[0]"]);
    }

    #[test]
    fn a_deployed_run_this_build_cannot_read_is_named() {
        let err = check_run(&destination(), "run", "{\"version\": 1}", "/p/x").unwrap_err();
        assert_eq!(fields(&err), ["/p/x"]);
    }

    #[test]
    fn long_values_are_elided_in_messages() {
        let long = json!("x".repeat(500));
        let d = differences(&json!({"a": long}), &json!({"a": 1}), "");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0, "a");
        assert!(d[0].1.len() < 300, "{}", d[0].1);
    }

    #[test]
    fn the_parameter_path_names_namespace_side_and_schedule() {
        let prefix = parameter_prefix("prod", Side::Destination);
        assert_eq!(
            parameter_name(&prefix, "aurora-daily"),
            "/snapcourier/prod/destination/runs/aurora-daily"
        );
    }
}
