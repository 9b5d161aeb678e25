//! Destination side: copy in, copy to other regions, clean up, expire.

use std::collections::BTreeMap;

use jiff::Timestamp;
use snapcourier_core::config::ResourceFilter;
use snapcourier_core::events::{
    CopyInOutput, CrossRegionCopyOutput, DeleteOutput, DeletedSnapshot, DestinationItem,
    DestinationRun, EVENT_VERSION,
};
use snapcourier_core::heartbeat::Heartbeat;
use snapcourier_core::plan::{finished_intermediates, plan_copy_in, retention_candidates};
use snapcourier_core::retention::plan_retention;
use snapcourier_core::snapshot::{SnapshotRecord, SnapshotStatus};
use snapcourier_core::tags::{OwnershipTags, Stage};
use snapcourier_core::{Error, ItemError};

use super::{after_deletions, failure};
use crate::adapter::{CopyRequest, SnapshotApi, Started};
use crate::client::AwsContext;

/// Every region this destination touches: the source region first, then its own regions.
fn regions(run: &DestinationRun) -> Vec<String> {
    let mut all = vec![run.source.region.clone()];
    for r in &run.destination.regions {
        if !all.contains(&r.region) {
            all.push(r.region.clone());
        }
    }
    all
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

fn item(shared: &SnapshotRecord, status: &str) -> DestinationItem {
    DestinationItem {
        resource_id: shared.resource_id.clone(),
        snapshot_id: shared.id.clone(),
        source_arn: shared.arn.clone(),
        source_created: shared.created,
        encrypted: shared.encrypted,
        status: status.to_string(),
        error: None,
    }
}

/// Copy every shared snapshot not yet copied into this account (source region),
/// re-encrypted with this account's key, within the per-region copy limit.
pub(super) async fn copy_in<A: SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    run: &DestinationRun,
    now: Timestamp,
) -> Result<CopyInOutput, Error> {
    let filter = ResourceFilter::new(&run.schedule, "schedule")?;
    let shared = api.list_snapshots(ctx, &run.source.region, true).await?;
    let local = local_snapshots(api, ctx, run).await?;
    let limit = run.settings.copy_limit(A::ENGINE).unwrap_or(1);
    let plan = plan_copy_in(run, &filter, &shared, &local, limit, now);

    let stage = if run.source_region_is_intermediate() {
        Stage::Intermediate
    } else {
        Stage::Destination
    };
    let mut items: Vec<DestinationItem> = plan
        .in_flight
        .iter()
        .map(|(s, copy)| item(s, copy.status.as_str()))
        .collect();
    let mut started = Vec::new();
    for s in &plan.start {
        let tags = copy_tags(run, stage, &s.resource_id, &s.arn, s.created);
        // An unencrypted Aurora snapshot cannot be encrypted by copying (RDS rejects a key);
        // an unencrypted instance snapshot can, and is.
        let key = if s.encrypted || A::ENCRYPTS_ON_COPY {
            run.copy_in_kms_key()
        } else {
            None
        };
        let copy = CopyRequest {
            source_arn: &s.arn,
            target_id: &s.id,
            kms_key: key,
            // Same region: the copy keeps the snapshot's option group.
            option_group: None,
            tags: &tags,
        };
        let result = api.copy_snapshot(ctx, &run.source.region, copy).await;
        let mut entry = item(s, "creating");
        match result {
            Ok(Started::New(copy)) => {
                started.push(s.id.clone());
                entry.status = copy.status.as_str().to_string();
            }
            Ok(Started::AlreadyExists) => {}
            Err(e) => {
                entry.status = "error".into();
                entry.error = Some(ItemError::from(&e));
            }
        }
        items.push(entry);
    }
    let in_flight_before = local
        .values()
        .flatten()
        .filter(|s| {
            s.is_of_schedule(&run.namespace, &run.schedule.name) && s.status.is_in_progress()
        })
        .count();
    Ok(CopyInOutput {
        version: EVENT_VERSION,
        overlapping_execution: None,
        copies_in_flight: in_flight_before + started.len(),
        heartbeat: None,
        items,
        deferred: plan.deferred,
        too_old: plan.too_old,
        started,
        verified: Vec::new(),
        api_calls: 0, // counted by the dispatcher in steps/mod.rs
    })
}

/// Once the copy in the source region is available, copy it into every destination region
/// with that region's key. Ready when every regional copy is available.
pub(super) async fn cross_region_copy<A: SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    run: &DestinationRun,
    entry: &DestinationItem,
) -> Result<CrossRegionCopyOutput, Error> {
    let id = entry.snapshot_id.as_str();
    let local = api.find_snapshot(ctx, &run.source.region, id).await?;
    if let Some(copy) = &local
        && !copy.is_owned_by(&run.namespace)
    {
        return Err(Error::InvalidState {
            resource: id.to_string(),
            message: format!(
                "a snapshot with this id in {} is not owned by namespace {}; snapcourier will not copy from it",
                run.source.region, run.namespace
            ),
        });
    }
    let mut current = entry.clone();
    current.status = local
        .as_ref()
        .map_or("missing", |c| c.status.as_str())
        .to_string();
    if let Some(SnapshotStatus::Unusable(status)) = local.as_ref().map(|c| &c.status) {
        return Err(Error::InvalidState {
            resource: id.to_string(),
            message: format!(
                "the copy in {} is `{status}`; delete it and the next copy-in makes it again",
                run.source.region
            ),
        });
    }
    let mut ready = true;
    let mut started_in = Vec::new();
    for target in &run.destination.regions {
        if target.region == run.source.region {
            ready &= local.as_ref().is_some_and(|c| c.status.is_available());
            continue;
        }
        match api.find_snapshot(ctx, &target.region, id).await? {
            Some(copy) if !copy.is_owned_by(&run.namespace) => {
                return Err(Error::InvalidState {
                    resource: id.to_string(),
                    message: format!(
                        "a snapshot with this id in {} is not owned by namespace {}; snapcourier will not touch it",
                        target.region, run.namespace
                    ),
                });
            }
            Some(copy) => ready &= copy.status.is_available(),
            None => {
                ready = false;
                let Some(source) = local.as_ref() else {
                    return Err(Error::NotFound {
                        resource: id.to_string(),
                        message: format!(
                            "the copy in {} is gone before every regional copy exists; the next copy-in makes it again",
                            run.source.region
                        ),
                    });
                };
                if !source.status.is_available() {
                    continue;
                }
                let tags = copy_tags(
                    run,
                    Stage::Destination,
                    &entry.resource_id,
                    &entry.source_arn,
                    entry.source_created,
                );
                let key = (source.encrypted || A::ENCRYPTS_ON_COPY)
                    .then_some(target.kms_key.as_deref())
                    .flatten();
                // Option groups are regional: map the copy's group, or let RDS give it the
                // engine's default group in the target region.
                let option_group = source
                    .option_group
                    .as_ref()
                    .and_then(|g| target.option_groups.get(g))
                    .map(String::as_str);
                let copy = CopyRequest {
                    source_arn: &source.arn,
                    target_id: id,
                    kms_key: key,
                    option_group,
                    tags: &tags,
                };
                if let Started::New(_) = api.copy_snapshot(ctx, &target.region, copy).await? {
                    started_in.push(target.region.clone());
                }
            }
        }
    }
    Ok(CrossRegionCopyOutput {
        version: EVENT_VERSION,
        item: current,
        ready,
        started_in,
        api_calls: 0, // counted by the dispatcher in steps/mod.rs
    })
}

/// Delete intermediate copies whose regional copies are all available, then apply the
/// destination's retention in each of its regions.
pub(super) async fn delete_destination<A: SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    run: &DestinationRun,
    now: Timestamp,
) -> Result<DeleteOutput, Error> {
    let local = local_snapshots(api, ctx, run).await?;
    let mut plan: Vec<(String, String, &str)> = finished_intermediates(run, &local)
        .into_iter()
        .map(|s| (run.source.region.clone(), s.id, "intermediate"))
        .collect();
    let mut kept = 0;
    for target in &run.destination.regions {
        let snapshots = local
            .get(&target.region)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let candidates = retention_candidates(
            snapshots,
            &run.namespace,
            &run.schedule.name,
            Stage::Destination,
            now,
        );
        let retention = plan_retention(&run.destination.retention, &candidates, now);
        kept += retention.keep.len();
        plan.extend(
            retention
                .delete
                .into_iter()
                .map(|id| (target.region.clone(), id, "expired")),
        );
    }
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    for (region, id, reason) in plan {
        match api.delete_snapshot(ctx, &region, &id).await {
            Ok(()) => deleted.push(DeletedSnapshot {
                region,
                snapshot_id: id,
                reason: reason.into(),
            }),
            Err(e) => failures.push(failure(&id, "delete", &e)),
        }
    }
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
        kept,
        failures,
        api_calls: 0, // counted by the dispatcher in steps/mod.rs
        heartbeat: Some(Heartbeat::destination(run, &remaining, now)),
    })
}
