//! The Lambda side: each binary in src/bin is `serve(handler)`. A handler parses and
//! validates its event (a malformed one is `ConfigInvalid` naming the field, before any AWS
//! call), runs the step, and returns its JSON output, which carries the step's AWS call count.

use std::future::Future;
use std::sync::Arc;

use jiff::Timestamp;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde_json::Value;
use snapcourier_aws::deployed::ensure_deployed;
use snapcourier_aws::{AwsContext, ClientOptions, steps};
use snapcourier_core::Error;
use snapcourier_core::coverage::{Coverage, UNPROTECTED_DATABASES};
use snapcourier_core::deployed::DEPLOYED_RUNS_ENV;
use snapcourier_core::drill::{DRILL_RUN_NAME, DrillInput, drill_age_emf, drill_emf};
use snapcourier_core::events::{
    CopyInInput, CopyInOutput, CrossRegionCopyInput, DeleteInput, DestinationRun, Look, ShareInput,
    StepInput, TakeInput,
};
use snapcourier_core::heartbeat::{COPIES_IN_FLIGHT, Heartbeat, RECOVERY_POINT_AGE, Side, emf};

/// A step's error as the Lambda runtime reports it: `errorType` is the taxonomy's fixed
/// name, which the state machines match in Retry and Catch.
#[derive(Debug)]
pub struct StepError(pub Error);

impl From<StepError> for Diagnostic {
    fn from(e: StepError) -> Diagnostic {
        Diagnostic {
            error_type: e.0.error_type().to_string(),
            error_message: e.0.to_string(),
        }
    }
}

fn to_json<T: Serialize>(output: T) -> Result<Value, Error> {
    serde_json::to_value(output).map_err(|e| Error::internal("the step's output", e))
}

pub async fn handle_take(ctx: &AwsContext, event: Value, now: Timestamp) -> Result<Value, Error> {
    let input = TakeInput::parse_json(event)?;
    ensure_deployed(ctx, &input.run, &input.run.schedule.name, "run").await?;
    to_json(
        steps::take(ctx, &input.run, input.execution.as_ref(), now)
            .await?
            .output(),
    )
}

/// One look of a source run's sharing. The deadline counts from the execution's start (the
/// state machine passes it); invoked by hand without one, from now.
pub async fn handle_share(ctx: &AwsContext, event: Value, now: Timestamp) -> Result<Value, Error> {
    let input = ShareInput::parse_json(event)?;
    ensure_deployed(ctx, &input.run, &input.run.schedule.name, "run").await?;
    let look = Look {
        looks_before: input.looks,
        started_at: input.execution.as_ref().map_or(now, |e| e.start_time),
        copies_started: 0,
    };
    let pass = steps::share(ctx, &input.run, &look, now).await?;
    to_json(pass.output(&input))
}

/// One look of a destination run. The deadline counts from the execution's start (the
/// state machine passes it); invoked by hand without one, from now.
pub async fn handle_copy_in_destination(
    ctx: &AwsContext,
    event: Value,
    now: Timestamp,
) -> Result<Value, Error> {
    let input = CopyInInput::parse_json(event)?;
    ensure_deployed(ctx, &input.run, &input.run.schedule.name, "run").await?;
    let look = Look {
        looks_before: input.looks,
        started_at: input.execution.as_ref().map_or(now, |e| e.start_time),
        copies_started: input.copies_started,
    };
    let pass = steps::copy_in(ctx, &input.run, input.execution.as_ref(), &look, now).await?;
    let output = pass.output(&look, &input.run.source.region);
    emit(copies_in_flight_record(&input.run, &output, now));
    // Redshift's heartbeat comes with this step, and every engine's coverage: write them
    // once, when the run's looks end.
    if output.finished
        && let Some(heartbeat) = &output.heartbeat
    {
        emit(heartbeat_record(&input.run.namespace, heartbeat, now));
    }
    if output.finished
        && output.overlapping_execution.is_none()
        && let Some(coverage) = &pass.coverage
    {
        emit(Some(coverage_record(
            &input.run.namespace,
            Side::Destination,
            &input.run.schedule.name,
            coverage,
            now,
        )));
    }
    to_json(output)
}

pub async fn handle_cross_region_copy(
    ctx: &AwsContext,
    event: Value,
    now: Timestamp,
) -> Result<Value, Error> {
    let input = CrossRegionCopyInput::parse_json(event)?;
    ensure_deployed(ctx, &input.run, &input.run.schedule.name, "run").await?;
    to_json(
        steps::cross_region_copy(ctx, &input.run, now)
            .await?
            .output(),
    )
}

pub async fn handle_delete(ctx: &AwsContext, event: Value, now: Timestamp) -> Result<Value, Error> {
    let (namespace, schedule, output) = match DeleteInput::parse_json(event)? {
        DeleteInput::Source(run) => {
            ensure_deployed(ctx, &run, &run.schedule.name, "source").await?;
            (
                run.namespace.clone(),
                run.schedule.name.clone(),
                steps::delete_source(ctx, &run, now).await?,
            )
        }
        DeleteInput::Destination(run) => {
            ensure_deployed(ctx, &run, &run.schedule.name, "destination").await?;
            (
                run.namespace.clone(),
                run.schedule.name.clone(),
                steps::delete_destination(ctx, &run, now).await?,
            )
        }
    };
    if let Some(heartbeat) = &output.heartbeat {
        emit(heartbeat_record(&namespace, heartbeat, now));
    }
    // Source: the coverage at the end of the run (the destination's comes with copy-in).
    if let Some(coverage) = &output.coverage {
        emit(Some(coverage_record(
            &namespace,
            Side::Source,
            &schedule,
            coverage,
            now,
        )));
    }
    to_json(output.bounded())
}

/// One look of a restore drill. Its deployed run is the destination's `_drills` parameter.
/// Each drill that finishes writes `RestoreSeconds` and `DrillSucceeded`; a first look writes
/// `DrillAge` (seconds since the destination's newest successful drill).
pub async fn handle_drill(ctx: &AwsContext, event: Value, now: Timestamp) -> Result<Value, Error> {
    let input = DrillInput::parse_json(event)?;
    ensure_deployed(ctx, &input.run, DRILL_RUN_NAME, "run").await?;
    let pass = steps::drill::drill(ctx, &input, now).await?;
    for d in &pass.finished {
        emit(Some(drill_emf(&input.run.namespace, d, now)));
    }
    if let Some(age) = pass.drill_age {
        emit(Some(drill_age_emf(&input.run.namespace, age, now)));
    }
    to_json(pass.output)
}

/// The `RecoveryPointAge` metric of a run's heartbeat, as an EMF record; none when some region
/// holds no protected recovery point (the alarm treats the missing value as breaching).
pub fn heartbeat_record(namespace: &str, heartbeat: &Heartbeat, now: Timestamp) -> Option<Value> {
    let Some(age) = heartbeat.age_seconds else {
        tracing::warn!(
            schedule = %heartbeat.schedule,
            missing_in = ?heartbeat.missing_in,
            "no protected recovery point in every region: no RecoveryPointAge metric this run"
        );
        return None;
    };
    Some(emf(
        namespace,
        heartbeat.side,
        &heartbeat.schedule,
        &[(RECOVERY_POINT_AGE, age as f64, "Seconds")],
        now,
    ))
}

/// The `UnprotectedDatabases` metric: databases of the schedule without a recovery point
/// protected within two intervals (each one is also logged, by name).
pub fn coverage_record(
    namespace: &str,
    side: Side,
    schedule: &str,
    coverage: &Coverage,
    now: Timestamp,
) -> Value {
    for u in &coverage.named {
        tracing::warn!(database = %u.database, newest = ?u.newest, threshold_seconds = coverage.threshold_seconds, "database without a protected recovery point within two intervals");
    }
    emf(
        namespace,
        side,
        schedule,
        &[(UNPROTECTED_DATABASES, coverage.unprotected as f64, "Count")],
        now,
    )
}

/// The `CopiesInFlight` metric after a copy-in step (none when the run stood aside for an
/// older execution: it looked at nothing).
pub fn copies_in_flight_record(
    run: &DestinationRun,
    output: &CopyInOutput,
    now: Timestamp,
) -> Option<Value> {
    if output.overlapping_execution.is_some() {
        return None;
    }
    Some(emf(
        &run.namespace,
        Side::Destination,
        &run.schedule.name,
        &[(COPIES_IN_FLIGHT, output.copies_in_flight as f64, "Count")],
        now,
    ))
}

/// Write an EMF record to standard output as one line, where Lambda's log agent picks it up
/// and CloudWatch Logs extracts the metric (no PutMetricData call, no extra permission).
fn emit(record: Option<Value>) {
    use std::io::Write;
    if let Some(record) = record {
        let mut line = record.to_string();
        line.push('\n');
        // One write of the whole line, so it never interleaves with a log line.
        if let Err(e) = std::io::stdout().lock().write_all(line.as_bytes()) {
            tracing::warn!(error = %e, "could not write the metric record");
        }
    }
}

/// Client options from the function's environment: `SNAPCOURIER_MAX_ATTEMPTS` (the stack sets
/// it from `settings.max_attempts`; 1 to 20, default 5). A value out of range is ignored
/// with a warning rather than failing every invocation.
pub fn client_options() -> ClientOptions {
    let mut options = ClientOptions::default();
    if let Ok(text) = std::env::var("SNAPCOURIER_MAX_ATTEMPTS") {
        match text.parse::<u32>() {
            Ok(n) if (1..=20).contains(&n) => options.max_attempts = n,
            _ => tracing::warn!(value = %text, "SNAPCOURIER_MAX_ATTEMPTS must be 1 to 20; using 5"),
        }
    }
    options
}

/// Run a handler under the Lambda runtime. Clients are built once per process, with the
/// function's own credentials (its execution role).
pub async fn serve<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Arc<AwsContext>, Value, Timestamp) -> Fut,
    Fut: Future<Output = Result<Value, Error>>,
{
    lambda_runtime::tracing::init_default_subscriber();
    let mut ctx = AwsContext::from_env(None, client_options()).await;
    // Without it every event is refused (`ensure_deployed`): the stacks always set it.
    match std::env::var(DEPLOYED_RUNS_ENV) {
        Ok(prefix) if !prefix.is_empty() => ctx = ctx.with_deployed_runs(prefix),
        _ => tracing::error!(
            "{DEPLOYED_RUNS_ENV} is not set: this function refuses every event until it is deployed with its configuration"
        ),
    }
    let ctx = Arc::new(ctx);
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let ctx = Arc::clone(&ctx);
        async move {
            let before = ctx.calls();
            let result = handler(Arc::clone(&ctx), event.payload, Timestamp::now()).await;
            let used = ctx.calls() - before;
            match &result {
                Ok(_) => tracing::info!(api_calls = used.calls, api_attempts = used.attempts, "step succeeded"),
                Err(e) => tracing::error!(error_type = e.error_type(), error = %e, api_calls = used.calls, "step failed"),
            }
            result.map_err(StepError)
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(age: Option<i64>) -> Heartbeat {
        Heartbeat {
            side: Side::Destination,
            schedule: "aurora-daily".into(),
            newest: None,
            age_seconds: age,
            missing_in: if age.is_none() {
                vec!["eu-west-1".into()]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn a_heartbeat_with_an_age_becomes_the_recovery_point_age_metric() {
        let now: Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
        let record = heartbeat_record("prod", &heartbeat(Some(90)), now).unwrap();
        assert_eq!(record["RecoveryPointAge"], 90.0);
        assert_eq!(record["Side"], "destination");
        assert_eq!(record["Deployment"], "prod");
        assert_eq!(
            record["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Seconds"
        );
    }

    #[test]
    fn without_a_protected_point_everywhere_no_metric_is_written() {
        // The alarm treats the missing value as breaching: writing 0 would hide the gap.
        let now: Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
        assert!(heartbeat_record("prod", &heartbeat(None), now).is_none());
    }
}
