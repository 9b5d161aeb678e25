//! Step Functions: whether an older execution of the same schedule is still running, so an
//! overlapping execution can end early without touching a snapshot.

use jiff::Timestamp;
use snapcourier_core::Error;
use snapcourier_core::events::ExecutionContext;

use crate::client::AwsContext;
use crate::errors::classify;

/// The ARN of a running execution of the same state machine and schedule that started
/// before `ours` (ties broken by ARN), if any. One ListExecutions page per 100 running
/// executions, one DescribeExecution per older running one (normally none).
pub async fn older_running_execution(
    ctx: &AwsContext,
    ours: &ExecutionContext,
    schedule: &str,
) -> Result<Option<String>, Error> {
    let region = ours.state_machine.split(':').nth(3).unwrap_or_default();
    let client = ctx.sfn(region);
    let running: Vec<_> = client
        .list_executions()
        .state_machine_arn(&ours.state_machine)
        .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
        .into_paginator()
        .page_size(100)
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify(e, "states:ListExecutions", &ours.state_machine))?;
    let mut older: Vec<(Timestamp, String)> = running
        .iter()
        .filter(|e| e.execution_arn() != ours.id)
        .filter_map(|e| {
            Some((
                crate::timestamp(e.start_date())?,
                e.execution_arn().to_string(),
            ))
        })
        .filter(|(started, arn)| (*started, arn.as_str()) < (ours.start_time, ours.id.as_str()))
        .collect();
    older.sort();
    for (_, arn) in older {
        let described = client
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .map_err(|e| classify(e, "states:DescribeExecution", &arn))?;
        let input: serde_json::Value = described
            .input()
            .and_then(|i| serde_json::from_str(i).ok())
            .unwrap_or_default();
        if input.pointer("/schedule/name").and_then(|n| n.as_str()) == Some(schedule) {
            return Ok(Some(arn));
        }
    }
    Ok(None)
}

/// Where an execution stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExecutionState {
    pub arn: String,
    pub status: String,
    /// The execution's output (success) or error and cause (failure).
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// The failure report the state machine sent to its topic, if it sent one.
    pub report: Option<serde_json::Value>,
}

/// Start an execution of `state_machine` with `input`, named so that the schedule is visible
/// in the console.
pub async fn start_execution(
    ctx: &AwsContext,
    state_machine: &str,
    name: &str,
    input: &serde_json::Value,
) -> Result<String, Error> {
    let region = state_machine.split(':').nth(3).unwrap_or_default();
    let out = ctx
        .sfn(region)
        .start_execution()
        .state_machine_arn(state_machine)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .map_err(|e| classify(e, "states:StartExecution", state_machine))?;
    Ok(out.execution_arn().to_string())
}

/// An execution's status (`RUNNING`, `SUCCEEDED`, ...): one DescribeExecution, for polling.
pub async fn status(ctx: &AwsContext, arn: &str) -> Result<String, Error> {
    let region = arn.split(':').nth(3).unwrap_or_default();
    let described = ctx
        .sfn(region)
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .map_err(|e| classify(e, "states:DescribeExecution", arn))?;
    Ok(described.status().as_str().to_string())
}

/// One full look at an execution: its status and, from its whole history, the failure report
/// if the state machine sent one. The history grows with the looks, so poll with `status`
/// and look once the execution has ended.
pub async fn look_at_execution(ctx: &AwsContext, arn: &str) -> Result<ExecutionState, Error> {
    let region = arn.split(':').nth(3).unwrap_or_default();
    let client = ctx.sfn(region);
    let described = client
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .map_err(|e| classify(e, "states:DescribeExecution", arn))?;
    let events: Vec<_> = client
        .get_execution_history()
        .execution_arn(arn)
        .into_paginator()
        .page_size(1000)
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify(e, "states:GetExecutionHistory", arn))?;
    // The report is the input of the Notify state: {"report": {...}, ...}.
    let report = events
        .iter()
        .filter_map(|e| e.state_entered_event_details())
        .filter(|d| d.name().starts_with("Notify"))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d.input()?).ok())
        .find_map(|input| input.get("report").cloned());
    Ok(ExecutionState {
        arn: arn.to_string(),
        status: described.status().as_str().to_string(),
        output: described.output().map(str::to_string),
        error: described.error().map(str::to_string),
        cause: described.cause().map(str::to_string),
        report,
    })
}
