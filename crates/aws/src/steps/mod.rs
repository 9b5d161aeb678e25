//! The steps of both flows. Each is an idempotent reconciler: it looks at the world, does
//! the next missing thing (or nothing) and reports where each item stands. The Lambda
//! binaries and the CLI call these same functions; each dispatches on the schedule's engine.
//! Aurora and RDS instances share one implementation over the `SnapshotApi` port; Redshift
//! has its own (it shares by authorizing accounts, copies across regions through the
//! cluster's configuration, and cannot copy into another account).

pub(crate) mod destination;
pub mod drill;
pub(crate) mod elasticache;
pub(crate) mod redshift;
pub(crate) mod source;

use jiff::Timestamp;
use snapcourier_core::Error;
use snapcourier_core::config::Settings;
use snapcourier_core::events::{
    CopyPass, DeleteOutput, DeletedSnapshot, DeletionReason, DestinationRun, ExecutionContext,
    FailureStage, ItemFailure, Look, RegionalPass, SharePass, SourceItem, SourceRun, TakePass,
};
use snapcourier_core::snapshot::SnapshotRecord;

use crate::client::AwsContext;
use crate::engines::{EngineSteps, on_engine};
use crate::executions::older_running_execution;

/// Under a state machine, an older execution of the same schedule still running (its ARN),
/// in which case this one does nothing.
async fn overlapping(
    ctx: &AwsContext,
    execution: Option<&ExecutionContext>,
    schedule: &str,
) -> Result<Option<String>, Error> {
    let Some(ours) = execution else {
        return Ok(None);
    };
    let older = older_running_execution(ctx, ours, schedule).await?;
    if let Some(older) = &older {
        tracing::warn!(older = %older, "an older execution of this schedule is still running; skipping");
    }
    Ok(older)
}

/// Snapshot every covered database that has none in the current slot; report every owned
/// snapshot that still has to be shared.
pub async fn take(
    ctx: &AwsContext,
    run: &SourceRun,
    execution: Option<&ExecutionContext>,
    now: Timestamp,
) -> Result<TakePass, Error> {
    let before = ctx.calls();
    if let Some(older) = overlapping(ctx, execution, &run.schedule.name).await? {
        let mut out = TakePass::overlapping(older);
        out.api_calls = (ctx.calls() - before).calls;
        return Ok(out);
    }
    let mut out = on_engine!(run.schedule.engine, |steps| steps
        .take(ctx, run, now)
        .await?);
    out.api_calls = (ctx.calls() - before).calls;
    tracing::info!(schedule = %run.schedule.name, engine = %run.schedule.engine, created = out.created.len(), to_share = out.to_share(), skipped = out.skipped.len(), api_calls = out.api_calls, "take done");
    log_failures(&out.failures());
    Ok(out)
}

/// An on-demand snapshot of one database of a schedule (`snapcourier snapshot-now`), kept
/// `keep_hours` by both sides whatever their retention (Aurora and RDS).
pub async fn snapshot_now(
    ctx: &AwsContext,
    run: &SourceRun,
    database: &str,
    keep_hours: u32,
    label: Option<&str>,
    now: Timestamp,
) -> Result<snapcourier_core::snapshot::SnapshotRecord, Error> {
    on_engine!(run.schedule.engine, |steps| steps
        .snapshot_now(ctx, run, database, keep_hours, label, now)
        .await)
}

/// Where one owned snapshot stands after a look of the share step.
pub(crate) enum Shared {
    /// Shared with every destination account (in this look).
    Now(SourceItem),
    /// Not available yet (Redshift: or its copy in the other region is not): look again.
    NotYet(SourceItem),
}

/// One look of a source run's sharing: list the owned snapshots (a call per page, whatever
/// the fleet), share every available one not yet shared with every destination account,
/// report the rest, and decide whether the run looks again (`SharePass::next`). A call
/// throttled for one snapshot leaves it for the next look; the look fails only when the
/// listing does.
pub async fn share(
    ctx: &AwsContext,
    run: &SourceRun,
    look: &Look,
    now: Timestamp,
) -> Result<SharePass, Error> {
    let before = ctx.calls();
    let outcomes = on_engine!(run.schedule.engine, |steps| steps.share(ctx, run).await?);
    let mut out = SharePass::empty();
    out.due = outcomes.len();
    for (mut item, outcome) in outcomes {
        match outcome {
            Ok(Shared::Now(done)) => out.shared.push(done),
            Ok(Shared::NotYet(waiting)) => out.pending.push(waiting),
            Err(e) if e.is_retryable() => {
                item.status = format!("{} (retried next look)", e.error_type());
                out.pending.push(item);
            }
            Err(e) => out
                .failures
                .push(failure(&item.resource_id, FailureStage::Share, &e)),
        }
    }
    out.next = look.decide(
        !out.pending.is_empty(),
        now,
        run.schedule.interval.as_signed(),
        &run.settings,
    );
    out.api_calls = (ctx.calls() - before).calls;
    tracing::info!(
        look = look.looks_before + 1,
        due = out.due,
        shared = out.shared.len(),
        pending = out.pending.len(),
        failures = out.failures.len(),
        next = ?out.next,
        api_calls = out.api_calls,
        "share look done"
    );
    log_failures(&out.failures);
    Ok(out)
}

/// A snapshot a plan assumes the run will have made by the time it expires snapshots (a
/// take, a copy): retention counts it like the others (`snapcourier plan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assumed {
    pub region: String,
    pub candidate: snapcourier_core::retention::RetentionCandidate,
}

/// The retention candidates of one schedule and stage among one region's `snapshots`, with the
/// assumed ones added or standing in for the same snapshot still being made (a plan: the run
/// expires snapshots once its own are available).
pub(crate) fn candidates_in(
    snapshots: &[snapcourier_core::snapshot::SnapshotRecord],
    namespace: &str,
    schedule: &str,
    stage: snapcourier_core::tags::Stage,
    now: Timestamp,
    assumed: &[Assumed],
    region: &str,
) -> Vec<snapcourier_core::retention::RetentionCandidate> {
    let mut candidates =
        snapcourier_core::plan::retention_candidates(snapshots, namespace, schedule, stage, now);
    for a in assumed.iter().filter(|a| a.region == region) {
        candidates.retain(|c| c.id != a.candidate.id || c.available);
        if !candidates.iter().any(|c| c.id == a.candidate.id) {
            candidates.push(a.candidate.clone());
        }
    }
    candidates
}

/// Apply the schedule's retention to owned source snapshots.
pub async fn delete_source(
    ctx: &AwsContext,
    run: &SourceRun,
    now: Timestamp,
) -> Result<DeleteOutput, Error> {
    delete_source_assuming(ctx, run, now, &[]).await
}

/// `delete_source`, counting `assumed` snapshots as if they existed (a plan).
pub async fn delete_source_assuming(
    ctx: &AwsContext,
    run: &SourceRun,
    now: Timestamp,
    assumed: &[Assumed],
) -> Result<DeleteOutput, Error> {
    let before = ctx.calls();
    let mut out = on_engine!(run.schedule.engine, |steps| steps
        .delete_source(ctx, run, now, assumed)
        .await?);
    out.api_calls = (ctx.calls() - before).calls;
    out.deleted_count = out.deleted.len();
    out.failed = out.failures.len();
    log_failures(&out.failures);
    tracing::info!(
        deleted = out.deleted.len(),
        kept = out.kept,
        failures = out.failures.len(),
        api_calls = out.api_calls,
        "source retention done"
    );
    Ok(out)
}

/// One look of a destination run: copy every share not yet copied into this account as far
/// as the copy slots allow (Redshift: list the shares to verify), report where every share
/// stands, and decide whether the run looks again (`CopyPass::next`).
pub async fn copy_in(
    ctx: &AwsContext,
    run: &DestinationRun,
    execution: Option<&ExecutionContext>,
    look: &Look,
    now: Timestamp,
) -> Result<CopyPass, Error> {
    let before = ctx.calls();
    // Only the first look stands aside for an older execution; later ones are this run's.
    let first = if look.looks_before == 0 {
        execution
    } else {
        None
    };
    if let Some(older) = overlapping(ctx, first, &run.schedule.name).await? {
        let mut out = CopyPass::overlapping(older);
        out.api_calls = (ctx.calls() - before).calls;
        return Ok(out);
    }
    let mut out = on_engine!(run.schedule.engine, |steps| steps
        .copy_in(ctx, run, now)
        .await?);
    out.next = look.decide(
        out.pending(),
        now,
        run.schedule.interval.as_signed(),
        &run.settings,
    );
    out.api_calls = (ctx.calls() - before).calls;
    tracing::info!(
        look = look.looks_before + 1,
        due = out.due,
        done = out.done.len(),
        started = out.started.len(),
        in_flight = out.in_flight.len(),
        waiting = out.waiting.len(),
        regional_wanted = out.regional_wanted,
        failures = out.failures.len(),
        next = ?out.next,
        api_calls = out.api_calls,
        "copy-in look done"
    );
    log_failures(&out.failures);
    Ok(out)
}

/// One look of the cross-region step: start the copies into the other destination regions
/// that are due, as far as the copy slots there allow (Redshift: nothing to do; the source
/// account's cluster copies across regions).
pub async fn cross_region_copy(
    ctx: &AwsContext,
    run: &DestinationRun,
    now: Timestamp,
) -> Result<RegionalPass, Error> {
    let before = ctx.calls();
    let mut out = on_engine!(run.schedule.engine, |steps| steps
        .cross_region_copy(ctx, run, now)
        .await?);
    out.api_calls = (ctx.calls() - before).calls;
    tracing::info!(
        started = out.started.len(),
        waiting = out.waiting.len(),
        failures = out.failures.len(),
        api_calls = out.api_calls,
        "cross-region look done"
    );
    log_failures(&out.failures);
    Ok(out)
}

/// Delete finished intermediate copies, then apply the destination's retention, and report
/// the heartbeat (Redshift: nothing is owned here; its copy-in reports the heartbeat).
pub async fn delete_destination(
    ctx: &AwsContext,
    run: &DestinationRun,
    now: Timestamp,
) -> Result<DeleteOutput, Error> {
    delete_destination_assuming(ctx, run, now, &[]).await
}

/// `delete_destination`, counting `assumed` copies as if they existed (a plan).
pub async fn delete_destination_assuming(
    ctx: &AwsContext,
    run: &DestinationRun,
    now: Timestamp,
    assumed: &[Assumed],
) -> Result<DeleteOutput, Error> {
    let before = ctx.calls();
    let mut out = on_engine!(run.schedule.engine, |steps| steps
        .delete_destination(ctx, run, now, assumed)
        .await?);
    out.api_calls = (ctx.calls() - before).calls;
    out.deleted_count = out.deleted.len();
    out.failed = out.failures.len();
    log_failures(&out.failures);
    tracing::info!(
        deleted = out.deleted.len(),
        kept = out.kept,
        failures = out.failures.len(),
        api_calls = out.api_calls,
        "destination clean-up done"
    );
    Ok(out)
}

fn source_item(s: &SnapshotRecord, shared: bool) -> SourceItem {
    SourceItem {
        resource_id: s.protected_resource().to_string(),
        snapshot_id: s.id.clone(),
        snapshot_arn: Some(s.arn.clone()),
        status: s.status.as_str().to_string(),
        shared,
        error: None,
    }
}

/// A region's listing without what this step deleted there: the heartbeat reports what is
/// left, not what the listing saw.
fn after_deletions(
    region: &str,
    mut snapshots: Vec<SnapshotRecord>,
    deleted: &[DeletedSnapshot],
) -> Vec<SnapshotRecord> {
    snapshots.retain(|s| {
        !deleted
            .iter()
            .any(|d| d.region == region && d.snapshot_id == s.id)
    });
    snapshots
}

/// Run `work`, `settings.call_concurrency` at a time, keeping the order of the outcomes: a
/// step never makes its calls one at a time across a fleet, nor all at once.
pub(crate) async fn bounded<T, F>(settings: &Settings, work: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    use futures::StreamExt;
    futures::stream::iter(work)
        .buffered(settings.call_concurrency.max(1) as usize)
        .collect()
        .await
}

/// Every item failure of a step, one log line each: the reports name the first few, the
/// logs all of them.
fn log_failures(failures: &[ItemFailure]) {
    for f in failures {
        // A call a plan withheld is what the plan reports, not a failure.
        if f.error.message.contains(crate::withhold::WITHHELD) {
            tracing::debug!(resource = %f.resource, stage = %f.stage, "call withheld by the plan");
            continue;
        }
        tracing::error!(resource = %f.resource, stage = %f.stage, error_type = %f.error.error_type, message = %f.error.message, "item failed");
    }
}

/// Delete `(region, id, reason)`s, `settings.call_concurrency` at a time; one failure never
/// stops the others.
async fn delete_all<A: crate::adapter::SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    settings: &Settings,
    deletions: impl IntoIterator<Item = (String, String, DeletionReason)>,
) -> (Vec<DeletedSnapshot>, Vec<ItemFailure>) {
    let attempts = deletions
        .into_iter()
        .map(|(region, id, reason)| async move {
            let result = api.delete_snapshot(ctx, &region, &id).await;
            (region, id, reason, result)
        });
    let outcomes = bounded(settings, attempts).await;
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    for (region, id, reason, result) in outcomes {
        match result {
            Ok(()) => deleted.push(DeletedSnapshot {
                region,
                snapshot_id: id,
                reason,
            }),
            Err(e) => failures.push(failure(&id, FailureStage::Delete, &e)),
        }
    }
    (deleted, failures)
}

fn failure(resource: &str, stage: FailureStage, e: &Error) -> ItemFailure {
    ItemFailure::new(resource, stage, e)
}
