//! Destination side: copy in, copy to other regions, clean up, expire.

use std::collections::BTreeMap;

use jiff::Timestamp;
use snapcourier_core::Error;
use snapcourier_core::config::ResourceFilter;
use snapcourier_core::coverage::Coverage;
use snapcourier_core::events::{
    CopyPass, DeleteOutput, DeletionReason, DestinationRun, EVENT_VERSION, FailureStage,
    ItemFailure, RegionalPass,
};
use snapcourier_core::heartbeat::Heartbeat;
use snapcourier_core::looks::NextLook;
use snapcourier_core::plan::{
    CopyPassPlan, CopyStart, NOT_OURS, PendingCopy, WAITING_FOR_A_SLOT, copy_stage,
    deletions_with_reasons, finished_intermediates, on_demand_expired, plan_copy_pass,
};
use snapcourier_core::retention::{apply_floor, plan_retention};
use snapcourier_core::snapshot::SnapshotRecord;
use snapcourier_core::tags::{OwnershipTags, Stage};

use super::{after_deletions, bounded, delete_all, failure};
use crate::adapter::{CopyRequest, SnapshotApi, Started};
use crate::client::AwsContext;

/// Every region this destination touches: the source region first, then its own regions.
fn regions(run: &DestinationRun) -> Vec<String> {
    run.destination.touched_regions(&run.source.region)
}

async fn local_snapshots<A: SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    run: &DestinationRun,
) -> Result<BTreeMap<String, Vec<SnapshotRecord>>, Error> {
    let mut local = BTreeMap::new();
    for region in regions(run) {
        let snapshots = api.list_snapshots(ctx, &region, false).await?;
        local.insert(region, snapshots);
    }
    Ok(local)
}

fn copy_tags(
    run: &DestinationRun,
    stage: Stage,
    resource: &str,
    source_arn: &str,
    source_created: Option<Timestamp>,
) -> BTreeMap<String, String> {
    OwnershipTags {
        namespace: run.namespace.clone(),
        schedule: run.schedule.name.clone(),
        stage,
        resource: resource.to_string(),
        source_arn: source_arn.to_string(),
        source_created,
    }
    .to_map()
}

/// What one look lists: the shares in the source region (copy-in only) and every
/// snapshot this account owns in each region it uses.
struct Listing {
    shared: Vec<SnapshotRecord>,
    local: BTreeMap<String, Vec<SnapshotRecord>>,
}

async fn list<A: SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    run: &DestinationRun,
    with_shares: bool,
) -> Result<Listing, Error> {
    let shared = if with_shares {
        api.list_snapshots(ctx, &run.source.region, true).await?
    } else {
        Vec::new()
    };
    Ok(Listing {
        shared,
        local: local_snapshots(api, ctx, run).await?,
    })
}

fn plan<A: SnapshotApi>(
    run: &DestinationRun,
    listing: &Listing,
    now: Timestamp,
) -> Result<CopyPassPlan, Error> {
    let filter = ResourceFilter::new(&run.schedule, "schedule")?;
    let limit = run.settings.copy_limit(A::ENGINE).unwrap_or(1);
    Ok(plan_copy_pass(
        run,
        &filter,
        &listing.shared,
        &listing.local,
        limit,
        now,
    ))
}

/// Start the planned copies of one kind (copy-in or cross-region), `call_concurrency` at a
/// time: a look starts at most as many as its regions have free slots. A copy refused as retryable
/// (throttled, or the slot taken by another run: QuotaExceeded) waits for the next look.
async fn start_copies<A: SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    run: &DestinationRun,
    starts: Vec<&CopyStart>,
) -> Attempts {
    let attempts = starts.into_iter().map(|c| async move {
        let stage = if !c.copy_in || !run.source_region_is_intermediate() {
            Stage::Destination
        } else {
            Stage::Intermediate
        };
        let tags = copy_tags(run, stage, &c.resource_id, &c.source_arn, c.source_created);
        let target = run
            .destination
            .regions
            .iter()
            .find(|r| r.region == c.region);
        // An unencrypted Aurora snapshot cannot be encrypted by copying (RDS rejects a key);
        // an unencrypted instance snapshot can, and is.
        let key = if c.from_encrypted || A::ENCRYPTS_ON_COPY {
            if c.copy_in {
                run.copy_in_kms_key()
            } else {
                target.and_then(|t| t.kms_key.as_deref())
            }
        } else {
            None
        };
        // Option groups are regional: map the copy's group, or let RDS give it the engine's
        // default group in the target region. In the same region the copy keeps its group.
        let option_group = if c.copy_in {
            None
        } else {
            c.from_option_group
                .as_ref()
                .and_then(|g| target.and_then(|t| t.option_groups.get(g)))
                .map(String::as_str)
        };
        let request = CopyRequest {
            source_arn: &c.from_arn,
            target_id: &c.snapshot_id,
            kms_key: key,
            option_group,
            tags: &tags,
        };
        (c, api.copy_snapshot(ctx, &c.region, request).await)
    });
    let mut out = Attempts::default();
    for (c, result) in bounded(&run.settings, attempts).await {
        let mut p = PendingCopy {
            resource_id: c.resource_id.clone(),
            snapshot_id: c.snapshot_id.clone(),
            region: c.region.clone(),
            status: "copying".into(),
        };
        match result {
            Ok(Started::New(copy)) => {
                p.status = copy.status.as_str().to_string();
                out.started.push(p);
            }
            // An overlapping run started it a moment ago: the next look follows it.
            Ok(Started::AlreadyExists) => out.in_flight.push(p),
            Err(e) if e.is_retryable() => {
                tracing::warn!(snapshot = %c.snapshot_id, region = %c.region, error = %e, "copy not started; the next look tries again");
                p.status = WAITING_FOR_A_SLOT.into();
                out.waiting.push(p);
            }
            Err(e) => {
                if !e.to_string().contains(crate::withhold::WITHHELD) {
                    tracing::error!(snapshot = %c.snapshot_id, region = %c.region, error = %e, "copy failed to start");
                }
                let stage = copy_stage(&c.region, &run.source.region);
                out.failures.push(failure(&c.resource_id, stage, &e));
            }
        }
    }
    out
}

/// What starting a look's copies gave.
#[derive(Default)]
struct Attempts {
    started: Vec<PendingCopy>,
    /// Started a moment ago by an overlapping run.
    in_flight: Vec<PendingCopy>,
    /// Refused for now (throttled, or no slot after all): the next look tries again.
    waiting: Vec<PendingCopy>,
    failures: Vec<ItemFailure>,
}

/// Copies AWS reports as failed: waiting will not make them available.
fn unusable_failures(run: &DestinationRun, plan: &CopyPassPlan) -> Vec<ItemFailure> {
    let lookalikes = plan.lookalikes.iter().map(|l| {
        let e = Error::InvalidState {
            resource: l.snapshot_id.clone(),
            message: format!("the share {} is not copied: {}", l.snapshot_id, l.why),
        };
        failure(&l.resource_id, FailureStage::CopyIn, &e)
    });
    let unusable = plan
        .unusable
        .iter()
        .map(|p| {
            let message = if p.status == NOT_OURS {
                format!(
                    "a snapshot with id {} in {} is not owned by namespace {}; snapcourier will not copy over it or from it. Rename or delete it",
                    p.snapshot_id, p.region, run.namespace
                )
            } else {
                format!(
                    "the copy of {} in {} is `{}`; delete it and the next look copies it again",
                    p.snapshot_id, p.region, p.status
                )
            };
            let e = Error::InvalidState {
                resource: p.snapshot_id.clone(),
                message,
            };
            failure(&p.resource_id, copy_stage(&p.region, &run.source.region), &e)
        });
    lookalikes.chain(unusable).collect()
}

/// One look of the destination: copy every share not yet copied into this account (source
/// region), re-encrypted with this account's key, as far as the copy slots allow, and report
/// where every share stands, including the copies into other regions the cross-region step
/// should start now.
pub(crate) async fn copy_in<A: SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    run: &DestinationRun,
    now: Timestamp,
) -> Result<CopyPass, Error> {
    let listing = list(api, ctx, run, true).await?;
    let plan = plan::<A>(run, &listing, now)?;
    let (copy_ins, regional): (Vec<&CopyStart>, Vec<&CopyStart>) =
        plan.start.iter().partition(|c| c.copy_in);
    let attempts = start_copies(api, ctx, run, copy_ins).await;
    let mut failures = attempts.failures;
    failures.extend(unusable_failures(run, &plan));
    let in_flight_before = listing
        .local
        .values()
        .flatten()
        .filter(|s| {
            s.is_of_schedule(&run.namespace, &run.schedule.name) && s.status.is_in_progress()
        })
        .count();
    let coverage = Coverage::of(&plan.protected, run.schedule.interval.as_signed(), now);
    let mut waiting = plan.waiting;
    waiting.extend(attempts.waiting);
    let mut in_flight = plan.in_flight;
    in_flight.extend(attempts.in_flight);
    Ok(CopyPass {
        overlapping_execution: None,
        copied: Vec::new(),
        due: plan.due,
        done: plan.done,
        copies_in_flight: in_flight_before + attempts.started.len(),
        started: attempts.started,
        in_flight,
        waiting,
        regional_wanted: regional.len(),
        too_old: plan.too_old,
        failures,
        next: NextLook::Finished, // decided by the dispatcher in steps/mod.rs
        verifies_only: false,
        coverage: Some(coverage),
        heartbeat: None,
        api_calls: 0, // counted by the dispatcher in steps/mod.rs
    })
}

/// One look of the cross-region step: from every copy in the source region that is
/// available, start the copies into the other destination regions that are missing, with
/// each region's key, as far as the copy slots there allow.
pub(crate) async fn cross_region_copy<A: SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    run: &DestinationRun,
    now: Timestamp,
) -> Result<RegionalPass, Error> {
    let listing = list(api, ctx, run, false).await?;
    let plan = plan::<A>(run, &listing, now)?;
    let regional: Vec<&CopyStart> = plan.start.iter().filter(|c| !c.copy_in).collect();
    let attempts = start_copies(api, ctx, run, regional).await;
    let mut waiting: Vec<PendingCopy> = plan
        .waiting
        .into_iter()
        .filter(|p| p.region != run.source.region)
        .collect();
    waiting.extend(attempts.waiting);
    Ok(RegionalPass {
        started: attempts.started,
        waiting,
        failures: attempts.failures,
        api_calls: 0, // counted by the dispatcher in steps/mod.rs
    })
}

/// Delete intermediate copies whose regional copies are all available, then apply the
/// destination's retention in each of its regions.
pub(crate) async fn delete_destination<A: SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    run: &DestinationRun,
    now: Timestamp,
    assumed: &[super::Assumed],
) -> Result<DeleteOutput, Error> {
    let local = local_snapshots(api, ctx, run).await?;
    let mut plan: Vec<(String, String, DeletionReason)> = finished_intermediates(run, &local)
        .into_iter()
        .map(|s| {
            (
                run.source.region.clone(),
                s.id,
                DeletionReason::Intermediate,
            )
        })
        .collect();
    let mut kept = 0;
    let mut floor_refusals = Vec::new();
    for target in &run.destination.regions {
        let snapshots = local
            .get(&target.region)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let candidates = super::candidates_in(
            snapshots,
            &run.namespace,
            &run.schedule.name,
            Stage::Destination,
            now,
            assumed,
            &target.region,
        );
        let mut retention = plan_retention(&run.destination.retention, &candidates, now);
        // The vault's floor, whatever the policy: a young copy is kept, and reported.
        let floor = run.destination.retention.days;
        for (id, at) in apply_floor(&mut retention, &candidates, floor, now) {
            kept += 1;
            let refused = Error::InvalidState {
                resource: id.clone(),
                message: format!(
                    "in {}: not deleted: its recovery point ({at}) is younger than the vault's floor of {} days (destination retention.days); the retention policy asked for it, which it never should: check the deployed config",
                    target.region,
                    floor.map_or_else(|| "(none set)".to_string(), |d| d.to_string()),
                ),
            };
            floor_refusals.push(failure(&id, FailureStage::Delete, &refused));
        }
        kept += retention.keep.len();
        // On-demand copies go when the keep their id names ends, never before the floor.
        let on_demand = on_demand_expired(
            snapshots,
            &run.namespace,
            &run.schedule.name,
            Stage::Destination,
            Some(floor.unwrap_or(u32::MAX)),
            now,
        );
        plan.extend(
            deletions_with_reasons(retention.delete, on_demand)
                .into_iter()
                .map(|(id, reason)| (target.region.clone(), id, reason)),
        );
    }
    let (deleted, mut failures) = delete_all(api, ctx, &run.settings, plan).await;
    failures.extend(floor_refusals);
    let remaining: BTreeMap<String, Vec<SnapshotRecord>> = local
        .into_iter()
        .map(|(region, list)| {
            let left = after_deletions(&region, list, &deleted);
            (region, left)
        })
        .collect();
    Ok(DeleteOutput {
        version: EVENT_VERSION,
        deleted,
        deleted_count: 0,
        failed: 0,
        kept,
        failures,
        api_calls: 0, // counted by the dispatcher in steps/mod.rs
        heartbeat: Some(Heartbeat::destination(run, &remaining, now)),
        coverage: None, // the copy-in look reports it
    })
}
