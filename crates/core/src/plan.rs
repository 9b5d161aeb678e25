//! What each step should do, decided from what the describe calls showed. Pure functions:
//! the adapters fetch, these decide, the adapters act.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};

use crate::config::ResourceFilter;
use crate::engine::Engine;
use crate::events::{DeletionReason, DestinationRun, SkippedResource, SourceRun};
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
    /// The database's KMS key (its snapshots get the same one); `None` when unencrypted.
    pub kms_key_id: Option<String>,
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
    // On-demand snapshots do not fill an interval slot.
    let ours: Vec<&SnapshotRecord> = snapshots
        .iter()
        .filter(|s| s.is_ours(&run.namespace, &run.schedule.name, Stage::Source))
        .filter(|s| s.on_demand().is_none())
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
                kms_key_id: r.kms_key_id.clone(),
            });
        }
    }
    plan.follow = to_share(run, snapshots).into_iter().cloned().collect();
    plan
}

/// The share step's work: owned snapshots of the schedule (this namespace, the source stage)
/// not yet shared with every destination account, per their progress marker. A snapshot that
/// failed is left to retention; the take step reports the one of the current slot.
pub fn to_share<'a>(run: &SourceRun, snapshots: &'a [SnapshotRecord]) -> Vec<&'a SnapshotRecord> {
    snapshots
        .iter()
        .filter(|s| s.is_ours(&run.namespace, &run.schedule.name, Stage::Source))
        .filter(|s| !matches!(s.status, SnapshotStatus::Unusable(_)))
        .filter(|s| !missing_shares(s, &run.destination_accounts).is_empty())
        .collect()
}

/// Source coverage at the end of a run: every database with a snapshot of the schedule, and
/// the capture time of its newest one that is available and shared with every destination
/// account. (A database with no snapshot at all shows up as a take failure or a skip.)
pub fn source_coverage(
    run: &SourceRun,
    snapshots: &[SnapshotRecord],
    now: Timestamp,
) -> crate::coverage::Coverage {
    let mut newest: BTreeMap<String, Option<Timestamp>> = BTreeMap::new();
    for s in snapshots
        .iter()
        .filter(|s| s.is_ours(&run.namespace, &run.schedule.name, Stage::Source))
    {
        let slot = newest
            .entry(s.protected_resource().to_string())
            .or_insert(None);
        let protected =
            s.status.is_available() && missing_shares(s, &run.destination_accounts).is_empty();
        if let (true, Some(at)) = (protected, s.captured_at()) {
            *slot = Some(slot.map_or(at, |t| t.max(at)));
        }
    }
    crate::coverage::Coverage::of(&newest, run.schedule.interval.as_signed(), now)
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

/// A copy the destination starts in this look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyStart {
    pub resource_id: String,
    /// The snapshot id, the same in every region.
    pub snapshot_id: String,
    /// Where the copy is made (this account).
    pub region: String,
    /// What is copied: the shared snapshot (copy-in) or this account's copy in the source
    /// region (cross-region).
    pub from_arn: String,
    pub from_encrypted: bool,
    /// RDS instances: the option group of what is copied (mapped per region).
    pub from_option_group: Option<String>,
    /// The shared snapshot's ARN and capture time, for the copy's tags.
    pub source_arn: String,
    pub source_created: Option<Timestamp>,
    /// A copy into the source region (from the share) rather than into another region.
    pub copy_in: bool,
}

/// A copy under way, waiting for a slot, or failed in AWS, in one region.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PendingCopy {
    pub resource_id: String,
    pub snapshot_id: String,
    pub region: String,
    /// The copy's status (`copying`, `failed`...), or `waiting for a copy slot`.
    pub status: String,
}

pub const WAITING_FOR_A_SLOT: &str = "waiting for a copy slot";

/// The stage a copy into `region` belongs to, in reports: into the source region it is the
/// copy-in, anywhere else a cross-region copy.
pub fn copy_stage(region: &str, source_region: &str) -> crate::events::FailureStage {
    if region == source_region {
        crate::events::FailureStage::CopyIn
    } else {
        crate::events::FailureStage::CrossRegionCopy
    }
}
/// The status of a copy whose id is held, where it should go, by a snapshot not ours.
pub const NOT_OURS: &str = "taken by a snapshot not owned by this namespace";

/// A region's copy of a share that is the final copy (not an intermediate).
fn final_copy<'a>(
    copies: &BTreeMap<&str, &'a SnapshotRecord>,
    id: &str,
) -> Option<&'a SnapshotRecord> {
    copies
        .get(id)
        .copied()
        .filter(|c| c.stage() == Some(Stage::Destination))
}

/// A share named like one of ours that snapcourier's source cannot have made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookalike {
    pub resource_id: String,
    pub snapshot_id: String,
    pub why: String,
}

/// How long after its slot's end AWS may still stamp a snapshot's creation time: the take
/// step can call at the last second of a slot.
pub const SLOT_GRACE: SignedDuration = SignedDuration::from_mins(10);

/// Why a share cannot be one the source stack made, if it cannot: the source names each
/// snapshot after its database and the slot it was taken in (`naming::snapshot_id`), so a
/// real share's id is the id of its database (as the API reports it) for the slot of its
/// creation time. This also means at most one share per database per slot.
pub fn real_share_problem(run: &DestinationRun, share: &SnapshotRecord) -> Option<String> {
    let interval = run.schedule.interval.as_signed();
    let Some(created) = share.created else {
        return Some("AWS reports no creation time for it".into());
    };
    // An on-demand snapshot names the second it was taken: AWS stamps its creation right
    // after (within the grace), and its id is its database's.
    if let Some(od) = share.on_demand() {
        let expected = crate::naming::on_demand_id(
            &run.namespace,
            &run.schedule.name,
            &share.resource_id,
            od.taken_at,
            od.keep_hours,
        );
        let in_time = created >= od.taken_at && created <= od.taken_at + SLOT_GRACE;
        if share.id == expected && in_time {
            return None;
        }
        return Some(format!(
            "it is named as an on-demand snapshot of {} taken at {}, but {}: snapcourier's snapshot-now never makes such a snapshot; someone who can share from the source account made it. Investigate, then delete it in the source account",
            share.resource_id,
            od.taken_at,
            if share.id == expected {
                format!("AWS says it was created at {created}")
            } else {
                format!("its id is not that database's (that would be {expected})")
            }
        ));
    }
    let id_for = |at: Timestamp| {
        crate::naming::snapshot_id(
            &run.namespace,
            &run.schedule.name,
            &share.resource_id,
            crate::interval::slot_start(at, interval),
        )
    };
    let late = created.checked_sub(SLOT_GRACE).unwrap_or(created);
    if share.id == id_for(created) || share.id == id_for(late) {
        return None;
    }
    Some(format!(
        "its id is not the one snapcourier gives a snapshot of {} created at {created} (that would be {}): either it names another database or slot, or it was created outside the slot its id names. snapcourier's source stack never makes such a snapshot; someone who can share from the source account made it. Investigate, then delete it in the source account",
        share.resource_id,
        id_for(created)
    ))
}

/// A shared snapshot or our copy of it in the source region, as one look sees it.
struct Item<'a> {
    id: &'a str,
    resource: &'a str,
    /// When the data was captured (the share's creation time).
    created: Option<Timestamp>,
    source_arn: &'a str,
    share: Option<&'a SnapshotRecord>,
    local: Option<&'a SnapshotRecord>,
}

/// One look at the destination: what to start in each region now, what is under way, what
/// waits for a free copy slot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyPassPlan {
    /// Copies to start now, in the order they should start (fair order, see `plan_copy_pass`).
    pub start: Vec<CopyStart>,
    pub in_flight: Vec<PendingCopy>,
    /// Copies due but with no free slot in their region; they start in a later look.
    pub waiting: Vec<PendingCopy>,
    /// Copies AWS reports as failed: they never become available by waiting.
    pub unusable: Vec<PendingCopy>,
    /// Shares copied into every destination region and available there.
    pub done: Vec<String>,
    /// Shared snapshots destination retention would expire at once: not copied.
    pub too_old: Vec<String>,
    /// Shares named like this schedule's that the source stack cannot have made (see
    /// `real_share_problem`): never copied, reported with why.
    pub lookalikes: Vec<Lookalike>,
    /// Shares of this schedule (from the source account, matching its filter) and copies of
    /// ours in the source region whose share is gone: everything this look follows.
    pub due: usize,
    /// Every database with a share (or a copy in flight): the capture time of its newest
    /// recovery point available in every destination region, if any.
    pub protected: BTreeMap<String, Option<Timestamp>>,
}

/// Decide one look of the destination. `shared` is every snapshot shared with this account in
/// the source region; `local` maps each region (source region and destination regions) to
/// every manual snapshot this account owns there.
///
/// Each share goes through: a copy into the source region (re-encrypted with this account's
/// key), then from it a copy into every other destination region. A copy starts only while
/// its region has a free slot: AWS allows `copy_limit` copies in flight per account and
/// region, and every copy of this namespace in flight there holds one.
///
/// Fair order: databases that have gone longest without a copy protected in every region
/// come first (never-copied first), one share per database per round, each database's newest
/// share first. So no database starves behind others' backlog, and each gains its newest
/// recovery point as early as capacity allows.
pub fn plan_copy_pass(
    run: &DestinationRun,
    filter: &ResourceFilter,
    shared: &[SnapshotRecord],
    local: &BTreeMap<String, Vec<SnapshotRecord>>,
    copy_limit: u32,
    now: Timestamp,
) -> CopyPassPlan {
    let prefix = schedule_prefix(&run.namespace, &run.schedule.name);
    let ours_in = |region: &str| -> BTreeMap<&str, &SnapshotRecord> {
        local
            .get(region)
            .into_iter()
            .flatten()
            .filter(|s| s.is_of_schedule(&run.namespace, &run.schedule.name))
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

    // Every share of this schedule from the source account, and every copy of ours in the
    // source region (its share may be gone by now; its regional copies are still due).
    let mut items: BTreeMap<&str, Item> = BTreeMap::new();
    let mut lookalikes = Vec::new();
    for s in shared.iter().filter(|s| {
        arn_account(&s.arn) == Some(run.source.account.as_str())
            && s.id.starts_with(&prefix)
            && filter.matches_id(&s.resource_id)
    }) {
        if let Some(why) = real_share_problem(run, s) {
            lookalikes.push(Lookalike {
                resource_id: s.resource_id.clone(),
                snapshot_id: s.id.clone(),
                why,
            });
            continue;
        }
        items.insert(
            &s.id,
            Item {
                id: &s.id,
                resource: &s.resource_id,
                created: s.created,
                source_arn: &s.arn,
                share: Some(s),
                local: None,
            },
        );
    }
    for (id, copy) in &in_source_region {
        let item = items.entry(id).or_insert_with(|| Item {
            id: &copy.id,
            resource: copy.protected_resource(),
            created: copy.captured_at(),
            source_arn: copy
                .tags
                .get(crate::tags::SOURCE_ARN)
                .map_or(copy.arn.as_str(), String::as_str),
            share: None,
            local: None,
        });
        item.local = Some(copy);
    }

    // Per database, the capture time of its newest recovery point available in every region.
    let mut protected: BTreeMap<&str, Timestamp> = BTreeMap::new();
    let everywhere = |id: &str| {
        finals
            .iter()
            .all(|(_, copies)| final_copy(copies, id).is_some_and(|c| c.status.is_available()))
    };
    if let Some((_, first)) = finals.first() {
        for (id, copy) in first {
            if everywhere(id)
                && let Some(at) = copy.captured_at()
            {
                let newest = protected.entry(copy.protected_resource()).or_insert(at);
                *newest = (*newest).max(at);
            }
        }
    }

    let mut plan = CopyPassPlan {
        lookalikes,
        due: items.len(),
        protected: items
            .values()
            .map(|i| (i.resource.to_string(), protected.get(i.resource).copied()))
            .collect(),
        ..CopyPassPlan::default()
    };
    let pending = |item: &Item, region: &str, status: &str| PendingCopy {
        resource_id: item.resource.to_string(),
        snapshot_id: item.id.to_string(),
        region: region.to_string(),
        status: status.to_string(),
    };
    // A snapshot of someone else's holding our id where a copy should go: never copied over
    // or from, and reported.
    let taken_by_other = |region: &str, id: &str| {
        local
            .get(region)
            .into_iter()
            .flatten()
            .any(|c| c.id == id && !c.is_owned_by(&run.namespace))
    };
    let mut copy_ins: Vec<&Item> = Vec::new();
    // (target region, item, this account's copy in the source region)
    let mut regional: Vec<(&str, &Item, &SnapshotRecord)> = Vec::new();
    for item in items.values() {
        if everywhere(item.id) {
            plan.done.push(item.id.to_string());
            continue;
        }
        match item.local {
            None => {
                // Every regional copy exists (some still copying) and the intermediate is
                // already gone: follow the regional copies.
                let all_exist = finals
                    .iter()
                    .all(|(_, copies)| final_copy(copies, item.id).is_some());
                if all_exist {
                    for (region, copies) in &finals {
                        if let Some(c) = final_copy(copies, item.id)
                            && !c.status.is_available()
                        {
                            plan.in_flight
                                .push(pending(item, region, c.status.as_str()));
                        }
                    }
                } else if taken_by_other(source_region, item.id) {
                    plan.unusable.push(pending(item, source_region, NOT_OURS));
                } else if item.share.is_some_and(|s| s.status.is_available()) {
                    copy_ins.push(item);
                }
            }
            Some(local_copy) => match &local_copy.status {
                SnapshotStatus::InProgress(status) => {
                    plan.in_flight.push(pending(item, source_region, status));
                }
                SnapshotStatus::Unusable(status) => {
                    plan.unusable.push(pending(item, source_region, status));
                }
                SnapshotStatus::Available => {
                    for (region, copies) in &finals {
                        if *region == source_region {
                            continue;
                        }
                        match copies.get(item.id).map(|c| &c.status) {
                            None if taken_by_other(region, item.id) => {
                                plan.unusable.push(pending(item, region, NOT_OURS));
                            }
                            None => regional.push((region, item, local_copy)),
                            Some(SnapshotStatus::InProgress(status)) => {
                                plan.in_flight.push(pending(item, region, status));
                            }
                            Some(SnapshotStatus::Unusable(status)) => {
                                plan.unusable.push(pending(item, region, status));
                            }
                            Some(SnapshotStatus::Available) => {}
                        }
                    }
                }
            },
        }
    }

    // Do not copy what destination retention would delete straight away.
    let policy: &RetentionPolicy = &run.destination.retention;
    let mut pool: BTreeMap<&str, RetentionCandidate> = BTreeMap::new();
    for (_, copies) in &finals {
        for c in copies.values() {
            if c.stage() != Some(Stage::Destination) || c.on_demand().is_some() {
                continue;
            }
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
    for item in copy_ins
        .iter()
        .filter(|i| crate::naming::parse_on_demand(i.id).is_none())
    {
        pool.insert(
            item.id,
            RetentionCandidate {
                id: item.id.to_string(),
                resource: item.resource.to_string(),
                created: item.created.unwrap_or(now),
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
    copy_ins.retain(|item| {
        let old = expire.contains(item.id);
        if old {
            plan.too_old.push(item.id.to_string());
        }
        !old
    });

    // Free slots per region: AWS counts every copy in flight in the account and region; this
    // namespace's copies (any schedule) are the ones we know of.
    let mut free: BTreeMap<&str, usize> = BTreeMap::new();
    for region in std::iter::once(source_region).chain(finals.iter().map(|(r, _)| *r)) {
        let busy = local
            .get(region)
            .into_iter()
            .flatten()
            .filter(|c| c.is_owned_by(&run.namespace) && c.status.is_in_progress())
            .count();
        free.insert(region, (copy_limit as usize).saturating_sub(busy));
    }

    let order = |wanted: &mut Vec<(&str, &Item, Option<&SnapshotRecord>)>| {
        // Rank within each database: 0 for its newest recovery point.
        let mut by_db: BTreeMap<&str, Vec<Option<Timestamp>>> = BTreeMap::new();
        for (_, item, _) in wanted.iter() {
            by_db.entry(item.resource).or_default().push(item.created);
        }
        for created in by_db.values_mut() {
            created.sort_by(|a, b| b.cmp(a));
        }
        let rank = |item: &Item| {
            by_db
                .get(item.resource)
                .and_then(|c| c.iter().position(|x| *x == item.created))
                .unwrap_or(0)
        };
        wanted.sort_by(|(_, a, _), (_, b, _)| {
            rank(a)
                .cmp(&rank(b))
                .then_with(|| protected.get(a.resource).cmp(&protected.get(b.resource)))
                .then_with(|| a.resource.cmp(b.resource))
                .then_with(|| b.created.cmp(&a.created))
                .then_with(|| a.id.cmp(b.id))
        });
    };
    let mut wanted_regional: Vec<(&str, &Item, Option<&SnapshotRecord>)> = regional
        .into_iter()
        .map(|(r, item, l)| (r, item, Some(l)))
        .collect();
    order(&mut wanted_regional);
    let mut wanted: Vec<(&str, &Item, Option<&SnapshotRecord>)> = copy_ins
        .into_iter()
        .map(|item| (source_region, item, None))
        .collect();
    order(&mut wanted);
    // Regional copies first: they finish what is half way.
    for (region, item, from) in wanted_regional.into_iter().chain(wanted) {
        let slots = free.entry(region).or_insert(0);
        if *slots == 0 {
            plan.waiting.push(pending(item, region, WAITING_FOR_A_SLOT));
            continue;
        }
        *slots -= 1;
        let (from_arn, from_encrypted, from_option_group) = match (from, item.share) {
            (Some(local_copy), _) => (
                local_copy.arn.clone(),
                local_copy.encrypted,
                local_copy.option_group.clone(),
            ),
            (None, Some(share)) => (share.arn.clone(), share.encrypted, None),
            (None, None) => continue, // a copy-in always has its share
        };
        plan.start.push(CopyStart {
            resource_id: item.resource.to_string(),
            snapshot_id: item.id.to_string(),
            region: region.to_string(),
            from_arn,
            from_encrypted,
            from_option_group,
            source_arn: item.source_arn.to_string(),
            source_created: item.created,
            copy_in: from.is_none(),
        });
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

/// Owned on-demand snapshots (or copies) of the schedule whose keep has ended, with the
/// time it ended. At a destination, `floor_days` (the vault's floor) keeps each at least that
/// long after its recovery point, whatever keep its id names.
pub fn on_demand_expired(
    snapshots: &[SnapshotRecord],
    namespace: &str,
    schedule: &str,
    stage: Stage,
    floor_days: Option<u32>,
    now: Timestamp,
) -> Vec<(String, Timestamp)> {
    snapshots
        .iter()
        .filter(|s| s.is_ours(namespace, schedule, stage) && s.status.is_available())
        .filter_map(|s| {
            let od = s.on_demand()?;
            let until = match floor_days {
                // A floor past the end of time keeps it forever.
                Some(d) => s
                    .captured_at()
                    .unwrap_or(od.taken_at)
                    .checked_add(SignedDuration::from_hours(24 * i64::from(d)))
                    .ok()?
                    .max(od.keep_until()),
                None => od.keep_until(),
            };
            (now >= until).then(|| (s.id.clone(), until))
        })
        .collect()
}

/// What a retention pass deletes, and why: the policy's expired snapshots, then the on-demand
/// ones whose keep has ended (`on_demand_expired`).
pub fn deletions_with_reasons(
    expired: impl IntoIterator<Item = String>,
    on_demand: Vec<(String, Timestamp)>,
) -> Vec<(String, DeletionReason)> {
    expired
        .into_iter()
        .map(|id| (id, DeletionReason::Expired))
        .chain(
            on_demand
                .into_iter()
                .map(|(id, _)| (id, DeletionReason::OnDemand)),
        )
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
        // On-demand snapshots are kept for their own time (`on_demand_expired`).
        .filter(|s| s.on_demand().is_none())
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
