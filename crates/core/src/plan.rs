//! What each step should do, decided from what the describe calls showed. Pure functions:
//! the adapters fetch, these decide, the adapters act.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use crate::config::ResourceFilter;
use crate::engine::Engine;
use crate::events::{DestinationRun, SkippedResource, SourceRun};
use crate::interval::{is_due, slot_start};
use crate::naming::{schedule_prefix, snapshot_id};
use crate::retention::{RetentionCandidate, RetentionPolicy, plan_retention};
use crate::snapshot::{ResourceRecord, SnapshotRecord, SnapshotStatus, arn_account};
use crate::tags::Stage;

/// A snapshot the take step should create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSnapshot {
    pub resource_id: String,
    pub resource_arn: String,
    pub snapshot_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TakePlan {
    pub create: Vec<PlannedSnapshot>,
    /// Owned snapshots that are not yet shared with every destination.
    pub follow: Vec<SnapshotRecord>,
    pub skipped: Vec<SkippedResource>,
}

/// Decide which resources need a snapshot now and which owned snapshots still need sharing.
/// `snapshots` is every manual snapshot in the source region (any owner tag).
pub fn plan_take(
    run: &SourceRun,
    engine: Engine,
    filter: &ResourceFilter,
    resources: &[ResourceRecord],
    snapshots: &[SnapshotRecord],
    now: Timestamp,
) -> TakePlan {
    let interval = run.schedule.interval.as_signed();
    let ours: Vec<&SnapshotRecord> = snapshots
        .iter()
        .filter(|s| s.is_ours(&run.namespace, &run.schedule.name, Stage::Source))
        .collect();
    let mut plan = TakePlan::default();
    for r in resources {
        if !engine.covers_engine_name(&r.engine) || !filter.covers(&r.id, &r.tags) {
            continue;
        }
        if let Some(primary) = &r.replica_of {
            plan.skipped.push(SkippedResource {
                resource_id: r.id.clone(),
                reason: format!(
                    "read replica of {primary}; snapshots of the primary protect its data (exclude it to silence this)"
                ),
            });
            continue;
        }
        if r.status != "available" {
            plan.skipped.push(SkippedResource {
                resource_id: r.id.clone(),
                reason: format!(
                    "status is `{}`; only available databases can be snapshotted, the next run tries again",
                    r.status
                ),
            });
            continue;
        }
        let newest = ours
            .iter()
            .filter(|s| {
                s.protected_resource() == r.id && !matches!(s.status, SnapshotStatus::Unusable(_))
            })
            // A snapshot that has only just started has no creation time yet: it is current.
            .map(|s| s.created.unwrap_or(now))
            .max();
        if is_due(newest, now, interval) {
            let id = snapshot_id(
                &run.namespace,
                &run.schedule.name,
                &r.id,
                slot_start(now, interval),
            );
            plan.create.push(PlannedSnapshot {
                resource_id: r.id.clone(),
                resource_arn: r.arn.clone(),
                snapshot_id: id,
            });
        }
    }
    let wanted: BTreeSet<&String> = run.destination_accounts.iter().collect();
    plan.follow = ours
        .into_iter()
        .filter(|s| !matches!(s.status, SnapshotStatus::Unusable(_)))
        .filter(|s| !wanted.iter().all(|a| s.shared_with().contains(*a)))
        .cloned()
        .collect();
    plan
}

/// Accounts a snapshot still has to be shared with, per its progress marker.
pub fn missing_shares(
    snapshot: &SnapshotRecord,
    destination_accounts: &[String],
) -> BTreeSet<String> {
    let done = snapshot.shared_with();
    destination_accounts
        .iter()
        .filter(|a| !done.contains(*a))
        .cloned()
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyInPlan {
    /// Shared snapshots to copy into the source region now (newest first).
    pub start: Vec<SnapshotRecord>,
    /// Snapshots whose copy in the source region exists but whose regional copies are not all
    /// there yet: (shared snapshot, our copy in the source region).
    pub in_flight: Vec<(SnapshotRecord, SnapshotRecord)>,
    /// Shared snapshots waiting for a copy slot.
    pub deferred: Vec<String>,
    /// Shared snapshots destination retention would expire at once.
    pub too_old: Vec<String>,
}

/// Decide the copy-in pass. `shared` is every snapshot shared with this account in the
/// source region; `local` maps each region (source region and destination regions) to every
/// manual snapshot there.
pub fn plan_copy_in(
    run: &DestinationRun,
    filter: &ResourceFilter,
    shared: &[SnapshotRecord],
    local: &BTreeMap<String, Vec<SnapshotRecord>>,
    copy_limit: u32,
    now: Timestamp,
) -> CopyInPlan {
    let prefix = schedule_prefix(&run.namespace, &run.schedule.name);
    let ours_in = |region: &str| -> BTreeMap<&str, &SnapshotRecord> {
        local
            .get(region)
            .into_iter()
            .flatten()
            .filter(|s| {
                s.is_owned_by(&run.namespace)
                    && s.tags.get(crate::tags::SCHEDULE) == Some(&run.schedule.name)
            })
            .map(|s| (s.id.as_str(), s))
            .collect()
    };
    let source_region = run.source.region.as_str();
    let in_source_region = ours_in(source_region);
    let finals: Vec<(&str, BTreeMap<&str, &SnapshotRecord>)> = run
        .destination
        .regions
        .iter()
        .map(|r| (r.region.as_str(), ours_in(&r.region)))
        .collect();

    let mut plan = CopyInPlan::default();
    let mut candidates: Vec<&SnapshotRecord> = Vec::new();
    for s in shared {
        let from_source = arn_account(&s.arn) == Some(run.source.account.as_str());
        if !from_source || !s.id.starts_with(&prefix) || !filter.matches_id(&s.resource_id) {
            continue;
        }
        let all_final = finals.iter().all(|(_, copies)| {
            copies
                .get(s.id.as_str())
                .is_some_and(|c| c.stage() == Some(Stage::Destination))
        });
        if all_final {
            continue;
        }
        if let Some(copy) = in_source_region.get(s.id.as_str()) {
            plan.in_flight.push((s.clone(), (*copy).clone()));
        } else if s.status.is_available() {
            candidates.push(s);
        }
    }

    // Do not copy what destination retention would delete straight away.
    let policy: &RetentionPolicy = &run.destination.retention;
    let mut pool: BTreeMap<&str, RetentionCandidate> = BTreeMap::new();
    for (_, copies) in &finals {
        for c in copies.values() {
            if let Some(created) = c.captured_at() {
                pool.entry(c.id.as_str()).or_insert(RetentionCandidate {
                    id: c.id.clone(),
                    resource: c.protected_resource().to_string(),
                    created,
                    owned: true,
                    available: c.status.is_available(),
                });
            }
        }
    }
    for s in &candidates {
        pool.insert(
            s.id.as_str(),
            RetentionCandidate {
                id: s.id.clone(),
                resource: s.resource_id.clone(),
                created: s.created.unwrap_or(now),
                owned: true,
                available: true,
            },
        );
    }
    let pool: Vec<RetentionCandidate> = pool.into_values().collect();
    let expire: BTreeSet<String> = plan_retention(policy, &pool, now)
        .delete
        .into_iter()
        .collect();

    // AWS limits copies in flight per account and region. A copy started now occupies a slot
    // in the source region and, once available, one in every destination region; copies in
    // flight and items whose regional copies are still to start hold theirs.
    let busy_in = |copies: &BTreeMap<&str, &SnapshotRecord>| {
        copies
            .values()
            .filter(|c| c.status.is_in_progress())
            .count()
    };
    let mut busy = busy_in(&in_source_region);
    for (region, copies) in &finals {
        if *region == source_region {
            continue;
        }
        let to_start = plan
            .in_flight
            .iter()
            .filter(|(s, _)| !copies.contains_key(s.id.as_str()))
            .count();
        busy = busy.max(busy_in(copies) + to_start);
    }
    let mut free = (copy_limit as usize).saturating_sub(busy);
    candidates.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    for s in candidates {
        if expire.contains(&s.id) {
            plan.too_old.push(s.id.clone());
        } else if free > 0 {
            free -= 1;
            plan.start.push(s.clone());
        } else {
            plan.deferred.push(s.id.clone());
        }
    }
    plan
}

/// Intermediate copies (in the source region) whose copy in every destination region is
/// available: they have done their job.
pub fn finished_intermediates(
    run: &DestinationRun,
    local: &BTreeMap<String, Vec<SnapshotRecord>>,
) -> Vec<SnapshotRecord> {
    if !run.source_region_is_intermediate() {
        return Vec::new();
    }
    let available_final = |region: &str, id: &str| {
        local.get(region).into_iter().flatten().any(|c| {
            c.id == id
                && c.is_ours(&run.namespace, &run.schedule.name, Stage::Destination)
                && c.status.is_available()
        })
    };
    local
        .get(&run.source.region)
        .into_iter()
        .flatten()
        .filter(|s| {
            s.is_ours(&run.namespace, &run.schedule.name, Stage::Intermediate)
                && s.status.is_available()
        })
        .filter(|s| {
            run.destination
                .regions
                .iter()
                .all(|r| available_final(&r.region, &s.id))
        })
        .cloned()
        .collect()
}

/// Retention candidates: every owned snapshot of this schedule and stage, by capture time.
pub fn retention_candidates(
    snapshots: &[SnapshotRecord],
    namespace: &str,
    schedule: &str,
    stage: Stage,
    now: Timestamp,
) -> Vec<RetentionCandidate> {
    snapshots
        .iter()
        .filter(|s| s.is_ours(namespace, schedule, stage))
        .map(|s| RetentionCandidate {
            id: s.id.clone(),
            resource: s.protected_resource().to_string(),
            created: s.captured_at().unwrap_or(now),
            owned: true,
            available: s.status.is_available(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
