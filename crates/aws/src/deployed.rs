//! A deployed function's guard: the run an event carries must be the deployed run of its
//! schedule (`snapcourier_core::deployed`), read from the SSM parameter the stack wrote.

use serde::Serialize;
use serde::de::DeserializeOwned;
use snapcourier_core::Error;
use snapcourier_core::deployed::{DEPLOYED_RUNS_ENV, check_run, parameter_name};

use crate::AwsContext;
use crate::errors::{classify, is_not_found};

/// Refuse `run` (at `path` of the event, for `schedule`) unless it is the deployed run of that
/// schedule. One AWS call (`ssm:GetParameter`), made before any other. A context without a
/// deployment (`AwsContext::with_deployed_runs`) refuses every run: a function deployed
/// without its configuration must not fall back to trusting its input.
pub async fn ensure_deployed<R>(
    ctx: &AwsContext,
    run: &R,
    schedule: &str,
    path: &str,
) -> Result<(), Error>
where
    R: Serialize + DeserializeOwned,
{
    let Some(prefix) = ctx.deployed_runs() else {
        return Err(Error::config(
            path,
            format!(
                "this function has no deployed configuration ({DEPLOYED_RUNS_ENV} is not set): deploy it with the snapcourier stacks, which set it, or run the step with `snapcourier run`"
            ),
        ));
    };
    let name = parameter_name(prefix, schedule);
    let deployed = match ctx.ssm().get_parameter().name(&name).send().await {
        Ok(out) => out
            .parameter()
            .and_then(|p| p.value())
            .map(str::to_string)
            .unwrap_or_default(),
        Err(e) if is_not_found(&e) => {
            return Err(Error::config(
                format!("{path}.schedule.name"),
                format!(
                    "schedule `{schedule}` is not deployed on this side (no SSM parameter {name}): start executions with a deployed schedule's input (`snapcourier inputs`), or add the schedule to the config and deploy"
                ),
            ));
        }
        Err(e) => return Err(classify(e, "ssm:GetParameter", &name)),
    };
    check_run(run, path, &deployed, &name)
}

/// Write one schedule's deployed run, as the stack does (`AWS::SSM::Parameter`): for the
/// emulated deployments of the tests and the demo.
pub async fn put_deployed_run<R: Serialize>(
    ctx: &AwsContext,
    prefix: &str,
    schedule: &str,
    run: &R,
) -> Result<(), Error> {
    let name = parameter_name(prefix, schedule);
    let text =
        serde_json::to_string(run).map_err(|e| Error::internal(format!("the run of {name}"), e))?;
    ctx.ssm()
        .put_parameter()
        .name(&name)
        .value(text)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .map_err(|e| classify(e, "ssm:PutParameter", &name))?;
    Ok(())
}
