//! A whole run in-process: the same steps and looks as the state machines, until every item
//! settles or the run's deadline passes (then what is left is reported as failed).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use snapcourier_aws::executions::{self, ExecutionState};
use snapcourier_aws::{ApiCalls, AwsContext, steps};
use snapcourier_core::Error;
use snapcourier_core::coverage::Coverage;
use snapcourier_core::events::{
    DeleteOutput, DeletedSnapshot, DestinationRun, ItemFailure, Look, SkippedResource, SourceRun,
};
use snapcourier_core::heartbeat::Heartbeat;
use snapcourier_core::looks::{MAX_LOOKS, NextLook};

/// What a caller sees while a run goes on.
pub trait Progress {
    fn stage(&self, message: &str);
    /// `pending` items are still under way after look `look` (of at most `max_looks`).
    fn waiting(&self, pending: usize, look: u32, max_looks: u32);
}

/// Progress that says nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn stage(&self, _: &str) {}
    fn waiting(&self, _: usize, _: u32, _: u32) {}
}

/// One snapshot's outcome, for the summary table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemRow {
    pub resource: String,
    pub snapshot_id: String,
    pub status: String,
    pub outcome: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub side: String,
    pub schedule: String,
    pub items: Vec<ItemRow>,
    pub created: Vec<String>,
    pub skipped: Vec<SkippedResource>,
    pub deferred: Vec<String>,
    pub too_old: Vec<String>,
    /// Redshift destinations: shares seen visible and available in every destination region.
    pub verified: Vec<String>,
    pub deleted: Vec<DeletedSnapshot>,
    pub failures: Vec<ItemFailure>,
    /// How old the newest protected recovery point is at the end of the run.
    pub heartbeat: Option<Heartbeat>,
    /// The schedule's databases without a recovery point protected within two intervals, at
    /// the end of the run (source: Aurora and RDS, from the retention step's listing;
    /// destination: from the last look).
    pub coverage: Option<Coverage>,
    pub api_calls: u64,
    pub api_attempts: u64,
}

impl RunReport {
    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }

    fn new(side: &str, schedule: &str) -> Self {
        RunReport {
            side: side.to_string(),
            schedule: schedule.to_string(),
            ..RunReport::default()
        }
    }

    /// The last step's deletions and failures, and what the whole run cost.
    fn close(&mut self, deleted: DeleteOutput, used: ApiCalls) {
        if deleted.coverage.is_some() {
            self.coverage = deleted.coverage;
        }
        self.deleted = deleted.deleted;
        self.failures.extend(deleted.failures);
        if deleted.heartbeat.is_some() {
            self.heartbeat = deleted.heartbeat;
        }
        self.api_calls = used.calls;
        self.api_attempts = used.attempts;
    }
}

async fn pause(seconds: u64) {
    tokio::time::sleep(Duration::from_secs(seconds)).await;
}

/// Attempts of a whole step (take, copy-in, delete) that fails with a retryable error after
/// the SDK's own retries, as the state machines' Retry does. Steps are idempotent.
const STEP_ATTEMPTS: u64 = 4;

async fn with_retries<T, F, Fut>(poll_seconds: u64, mut step: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let mut attempt = 1;
    loop {
        match step().await {
            Err(e) if e.is_retryable() && attempt < STEP_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "step failed with a retryable error; running it again");
                pause(poll_seconds * attempt).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// take -> share looks until every owned snapshot is shared (or the run's deadline passes),
/// as the source state machine does -> expire.
pub async fn run_source(
    ctx: &AwsContext,
    run: &SourceRun,
    now: impl Fn() -> Timestamp,
    progress: &dyn Progress,
) -> Result<RunReport, Error> {
    let before = ctx.calls();
    let mut report = RunReport::new("source", &run.schedule.name);
    progress.stage("taking snapshots");
    let poll = run.settings.poll_interval_seconds;
    let started = now();
    let taken = with_retries(poll, || steps::take(ctx, run, None, now())).await?;
    report.failures.extend(taken.failures());
    if taken.to_share() > 0 {
        progress.stage("sharing with destination accounts");
        let mut look = Look::first(started);
        loop {
            let pass = with_retries(poll, || steps::share(ctx, run, &look, now())).await?;
            look.looks_before += 1;
            report.items.extend(pass.shared.iter().map(|i| ItemRow {
                resource: i.resource_id.clone(),
                snapshot_id: i.snapshot_id.clone(),
                status: "available".into(),
                outcome: "shared".into(),
            }));
            match pass.next {
                NextLook::After(seconds) => {
                    progress.waiting(pass.pending.len(), look.looks_before, MAX_LOOKS);
                    pause(seconds).await;
                }
                _ => {
                    // The last look's failures, as the state machine reports them: a snapshot
                    // that fails every look is one failure, not one per look.
                    report.failures.extend(pass.failures.iter().cloned());
                    report.failures.extend(pass.left_over());
                    break;
                }
            }
        }
    }
    report.created = taken.created;
    report.skipped = taken.skipped;

    progress.stage("expiring old snapshots");
    let deleted = with_retries(poll, || steps::delete_source(ctx, run, now())).await?;
    report.close(deleted, ctx.calls() - before);
    Ok(report)
}

/// Looks until every due share is copied to every destination region (or the run's
/// deadline passes), as the destination state machine does: each look runs copy-in, then the
/// cross-region step when copies into other regions are due, then waits. Then clean up and
/// expire.
pub async fn run_destination(
    ctx: &AwsContext,
    run: &DestinationRun,
    now: impl Fn() -> Timestamp,
    progress: &dyn Progress,
) -> Result<RunReport, Error> {
    let before = ctx.calls();
    let mut report = RunReport::new("destination", &run.schedule.name);
    let poll = run.settings.poll_interval_seconds;
    let mut look = Look::first(now());
    // Every share this run saw under way or due: the rows of the report once done.
    let mut followed: BTreeMap<String, String> = BTreeMap::new();
    let last = loop {
        progress.stage("copying shared snapshots into this account");
        let pass = with_retries(poll, || steps::copy_in(ctx, run, None, &look, now())).await?;
        let mut regional_failures = Vec::new();
        let mut regional_waiting = Vec::new();
        if pass.regional_wanted > 0 {
            progress.stage("copying into destination regions");
            let regional = with_retries(poll, || steps::cross_region_copy(ctx, run, now())).await?;
            for p in &regional.started {
                followed.insert(p.snapshot_id.clone(), p.resource_id.clone());
            }
            regional_failures = regional.failures;
            regional_waiting = regional.waiting;
        }
        for p in pass
            .started
            .iter()
            .chain(&pass.copied)
            .chain(&pass.in_flight)
            .chain(&pass.waiting)
        {
            followed.insert(p.snapshot_id.clone(), p.resource_id.clone());
        }
        look = look.next(&pass, &run.source.region);
        match pass.next {
            NextLook::After(seconds) => {
                let pending = pass.started.len() + pass.in_flight.len() + pass.waiting.len();
                progress.waiting(pending, look.looks_before, MAX_LOOKS);
                pause(seconds).await;
            }
            _ => break (pass, regional_failures, regional_waiting),
        }
    };
    let (pass, regional_failures, regional_waiting) = last;
    let outcome = if run.schedule.engine.copies_into_destination() {
        "copied"
    } else {
        "verified"
    };
    for id in &pass.done {
        if let Some(resource) = followed.get(id) {
            report.items.push(ItemRow {
                resource: resource.clone(),
                snapshot_id: id.clone(),
                status: "available".into(),
                outcome: outcome.into(),
            });
        }
    }
    if !run.schedule.engine.copies_into_destination() {
        report.verified = pass.done.clone();
        report.heartbeat = pass.heartbeat.clone();
    }
    report.too_old = pass.too_old.clone();
    report.coverage = pass.coverage.clone();
    report.deferred = pass
        .waiting
        .iter()
        .chain(&regional_waiting)
        .map(|p| p.snapshot_id.clone())
        .collect();
    report.failures.extend(pass.failures.iter().cloned());
    report.failures.extend(pass.left_over(&run.source.region));
    report.failures.extend(regional_failures);

    progress.stage("removing intermediate copies and expiring old copies");
    let deleted = with_retries(poll, || steps::delete_destination(ctx, run, now())).await?;
    report.close(deleted, ctx.calls() - before);
    Ok(report)
}

/// Start an execution of a deployed state machine for one schedule (named
/// `<schedule>-<UTC time>`) and follow it until it ends, looking every `poll_seconds`.
pub async fn run_state_machine(
    ctx: &AwsContext,
    state_machine: &str,
    schedule: &str,
    input: &serde_json::Value,
    poll_seconds: u64,
    progress: &dyn Progress,
) -> Result<ExecutionState, Error> {
    let name = format!("{schedule}-{}", Timestamp::now().strftime("%Y%m%dT%H%M%S"));
    let arn = executions::start_execution(ctx, state_machine, &name, input).await?;
    progress.stage(&format!("started {arn}"));
    let mut looks = 0u64;
    while executions::status(ctx, &arn).await? == "RUNNING" {
        looks += 1;
        progress.stage(&format!("{name}: running ({}s)", looks * poll_seconds));
        pause(poll_seconds).await;
    }
    executions::look_at_execution(ctx, &arn).await
}
