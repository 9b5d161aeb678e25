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
