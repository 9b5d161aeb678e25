//! The ASL files against the contracts they share with the code: placeholders, error names,
//! and the run fields they read.

use std::collections::BTreeSet;

use serde_json::Value;
use snapcourier_core::error::ERROR_TYPES;

fn load(side: &str) -> Value {
    let path = format!(
        "{}/../../statemachine/{side}.asl.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every state, nested Map processors included.
fn states(machine: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, state) in machine["States"].as_object().unwrap() {
        out.push((name.clone(), state.clone()));
        if let Some(processor) = state.get("ItemProcessor") {
            out.extend(states(processor));
        }
    }
    out
}

fn placeholders(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\$\{([A-Za-z]+)\}").unwrap();
    re.captures_iter(text).map(|c| c[1].to_string()).collect()
}

fn settings_field(path: &str) -> &str {
    path.strip_prefix("$.run.settings.")
        .unwrap_or_else(|| panic!("{path} does not read the run's settings"))
}

#[test]
fn placeholders_are_exactly_what_a_stack_substitutes() {
    let expect = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        placeholders(&load("source").to_string()),
        expect(&[
            "TakeFunctionArn",
            "ShareFunctionArn",
            "DeleteFunctionArn",
            "FailureTopicArn"
        ])
    );
    assert_eq!(
        placeholders(&load("destination").to_string()),
        expect(&[
            "CopyInDestinationFunctionArn",
            "CrossRegionCopyFunctionArn",
            "DeleteFunctionArn",
            "FailureTopicArn"
        ])
    );
}

#[test]
fn lambda_tasks_retry_exactly_the_retryable_errors_and_catch_everything() {
    let mut expected: BTreeSet<&str> = ["Throttled", "ServiceUnavailable", "QuotaExceeded"].into();
    expected.extend([
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ]);
    for side in ["source", "destination"] {
        for (name, state) in states(&load(side)) {
            if state["Resource"] != "arn:aws:states:::lambda:invoke" {
                continue;
            }
            let retries = state["Retry"].as_array().unwrap();
            let retried: BTreeSet<&str> = retries
                .iter()
                .flat_map(|r| {
                    r["ErrorEquals"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e.as_str().unwrap())
                })
                .collect();
            assert_eq!(retried, expected, "{side}/{name}");
            for e in &retried {
                assert!(
                    ERROR_TYPES.contains(e) || e.starts_with("Lambda."),
                    "{side}/{name}: {e}"
                );
            }
            // QuotaExceeded has its own, long backoff; every retry backs off with full jitter.
            let quota = retries
                .iter()
                .find(|r| r["ErrorEquals"][0] == "QuotaExceeded")
                .unwrap();
            assert!(quota["IntervalSeconds"].as_u64().unwrap() >= 60);
            for r in retries {
                assert_eq!(r["JitterStrategy"], "FULL", "{side}/{name}");
                assert!(r["BackoffRate"].as_f64().unwrap() > 1.0);
            }
            assert_eq!(
                state["Catch"][0]["ErrorEquals"][0], "States.ALL",
                "{side}/{name}: every failure is caught and reported"
            );
        }
    }
}

#[test]
fn polling_and_concurrency_come_from_the_run_settings() {
    let settings = serde_json::to_value(snapcourier_core::config::Settings::default()).unwrap();
    let all = states(&load("source"));
    let waits: Vec<_> = all.iter().filter(|(_, s)| s["Type"] == "Wait").collect();
    assert!(!waits.is_empty());
    for (_, w) in waits {
        assert!(
            settings
                .get(settings_field(w["SecondsPath"].as_str().unwrap()))
                .is_some()
        );
    }
    let (_, map) = all.iter().find(|(_, s)| s["Type"] == "Map").unwrap();
    assert!(
        settings
            .get(settings_field(map["MaxConcurrencyPath"].as_str().unwrap()))
            .is_some()
    );
    let (_, bound) = all.iter().find(|(n, _)| n == "Stuck?").unwrap();
    let path = bound["Choices"][0]["NumericGreaterThanEqualsPath"]
        .as_str()
        .unwrap();
    assert!(settings.get(settings_field(path)).is_some());
}

#[test]
fn the_destination_holds_no_list_of_the_fleet_and_its_steps_pace_the_looks() {
    let machine = load("destination");
    let all = states(&machine);
    // No Map: the steps work on the whole schedule per look and return counts, so no state
    // grows with the number of databases.
    assert!(all.iter().all(|(_, s)| s["Type"] != "Map"));
    let waits: Vec<_> = all.iter().filter(|(_, s)| s["Type"] == "Wait").collect();
    assert_eq!(waits.len(), 1);
    // The copy-in step decides when to look again (from the run's settings and deadline).
    assert_eq!(waits[0].1["SecondsPath"], "$.look.output.next_look_seconds");
    assert_eq!(waits[0].1["Next"], "CopyIn");
    let again = &machine["States"]["LookAgain?"]["Choices"][0];
    assert_eq!(again["Variable"], "$.look.output.finished");
    assert_eq!(again["Next"], "WaitBeforeNextLook");
}
