//! ElastiCache (Valkey, Redis OSS): its own steps. A snapshot cannot be shared with another
//! account or copied to another region, so it leaves through S3:
//! - source: take a snapshot per slot; "share" is the export of its `.rdb` objects to the
//!   source stack's bucket (`naming::export_bucket`), which the destination accounts may read
//!   (the bucket and key policies say so; nothing is granted per object); expire snapshots and
//!   their exported objects together;
//! - destination: copy each export's objects into this account's vault bucket in every
//!   destination region (`naming::vault_bucket`), re-encrypted with the region's key and
//!   locked (S3 Object Lock) until the vault's floor has passed, and verify size and checksum;
//!   there is no intermediate copy, so the cross-region step has nothing to do; expire vault
//!   objects by the destination's retention, never before their lock ends.
//!
//! Cost: ElastiCache's describes carry no tags, so a snapshot of the schedule is recognised
//! by its deterministic id (`naming::schedule_prefix`), and its tags are read (one call) only
//! before snapcourier exports or deletes it. Whether a snapshot is exported, and which objects
//! a vault holds, come from the bucket listings (one call per 1,000 objects). A steady-state
//! run costs its listings.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use snapcourier_core::config::ResourceFilter;
use snapcourier_core::coverage::Coverage;
use snapcourier_core::events::{
    CopyPass, DeleteOutput, DeletedSnapshot, DeletionReason, DestinationRun, EVENT_VERSION,
    FailureStage, ItemFailure, RegionalPass, SourceItem, SourceRun, TakePass,
};
use snapcourier_core::heartbeat::Heartbeat;
use snapcourier_core::looks::NextLook;
use snapcourier_core::naming::{export_bucket, parse_slot_id, schedule_prefix, vault_bucket};
use snapcourier_core::plan::{PendingCopy, plan_take, source_coverage, to_share};
use snapcourier_core::retention::{apply_floor, plan_retention};
use snapcourier_core::snapshot::{ResourceRecord, SnapshotRecord, SnapshotStatus};
use snapcourier_core::tags::{self, OwnershipTags, Stage};
use snapcourier_core::{Engine, Error};

use super::source::errored_item;
use super::{Assumed, Shared, after_deletions, bounded, candidates_in, failure, source_item};
use crate::adapter::Started;
use crate::client::AwsContext;
use crate::elasticache::{
    self as ec, ExportedObject, MAX_COPY_OBJECT_BYTES, VaultCopy, VaultVersion,
};
use crate::engines::EngineSteps;

pub(crate) struct ElastiCacheSteps;

/// Objects to delete: key, and version where the bucket is versioned.
type ObjectRefs = Vec<(String, Option<String>)>;

/// The snapshot id an exported object belongs to: `<id>-<shard>.rdb`.
fn export_of(key: &str) -> Option<&str> {
    let stem = key.strip_suffix(".rdb")?;
    let (id, shard) = stem.rsplit_once('-')?;
    (!shard.is_empty() && shard.chars().all(|c| c.is_ascii_digit())).then_some(id)
}

/// Objects grouped by the snapshot id they belong to (objects of no export are left out).
fn by_export<T>(objects: Vec<T>, key: impl Fn(&T) -> &str) -> BTreeMap<String, Vec<T>> {
    let mut out: BTreeMap<String, Vec<T>> = BTreeMap::new();
    for o in objects {
        if let Some(id) = export_of(key(&o)).map(str::to_string) {
            out.entry(id).or_default().push(o);
        }
    }
    out
}

/// The source's export bucket.
fn source_bucket(ns: &str, source: &snapcourier_core::config::SourceAccount) -> String {
    export_bucket(ns, &source.account, &source.region)
}

/// The schedule's snapshots in the source region and the exports in its bucket. A snapshot
/// under the schedule's prefix counts as this schedule's source snapshot (ElastiCache lists
/// no tags; its tags are checked before anything is done to it), and as shared with every
/// destination account once it is available and its objects are in the bucket.
struct SourceListing {
    snapshots: Vec<SnapshotRecord>,
    exports: BTreeMap<String, Vec<ExportedObject>>,
}

async fn list_source(ctx: &AwsContext, run: &SourceRun) -> Result<SourceListing, Error> {
    let region = run.source.region.as_str();
    let prefix = schedule_prefix(&run.namespace, &run.schedule.name);
    let mut snapshots = ec::list_snapshots(ctx, region, &prefix).await?;
    let objects = ec::list_objects(
        ctx,
        region,
        &source_bucket(&run.namespace, &run.source),
        &prefix,
    )
    .await?;
    let exports = by_export(objects, |o| o.key.as_str());
    for s in &mut snapshots {
        let mut claimed = OwnershipTags {
            namespace: run.namespace.clone(),
            schedule: run.schedule.name.clone(),
            stage: Stage::Source,
            resource: s.resource_id.clone(),
            source_arn: String::new(),
            source_created: None,
        }
        .to_map();
        claimed.remove(tags::SOURCE_ARN);
        if s.status.is_available() && exports.contains_key(&s.id) {
            let accounts: BTreeSet<String> = run.destination_accounts.iter().cloned().collect();
            claimed.insert(
                tags::SHARED_WITH.to_string(),
                tags::shared_with_value(&accounts),
            );
        }
        s.tags = claimed;
    }
    Ok(SourceListing { snapshots, exports })
}

/// The snapshot's own tags say it is this schedule's: checked before it is exported or
/// deleted, since the listing goes by name.
async fn confirm_ours(
    ctx: &AwsContext,
    region: &str,
    namespace: &str,
    schedule: &str,
    s: &SnapshotRecord,
) -> Result<(), Error> {
    let found = ec::snapshot_tags(ctx, region, &s.arn).await?;
    let ours = found.get(tags::NAMESPACE).map(String::as_str) == Some(namespace)
        && found.get(tags::SCHEDULE).map(String::as_str) == Some(schedule);
    if ours {
        Ok(())
    } else {
        Err(Error::InvalidState {
            resource: s.id.clone(),
            message: format!(
                "named like a snapshot of schedule {schedule} but not tagged {}={namespace}, {}={schedule}; snapcourier will not export or delete it. Rename or delete it",
                tags::NAMESPACE,
                tags::SCHEDULE
            ),
        })
    }
}

/// The destination's view of one export in one vault region.
fn vault_record(
    run: &DestinationRun,
    region: &str,
    id: &str,
    versions: &[VaultVersion],
) -> Option<SnapshotRecord> {
    let slot = parse_slot_id(&run.namespace, &run.schedule.name, id)?;
    let tags = OwnershipTags {
        namespace: run.namespace.clone(),
        schedule: run.schedule.name.clone(),
        stage: Stage::Destination,
        resource: slot.resource.clone(),
        source_arn: String::new(),
        source_created: Some(slot.slot),
    }
    .to_map();
    Some(SnapshotRecord {
        id: id.to_string(),
        arn: format!(
            "s3://{}/{id}",
            vault_bucket(&run.namespace, &run.destination.account, region)
        ),
        owner_account: run.destination.account.clone(),
        resource_id: slot.resource,
        status: if versions.is_empty() {
            SnapshotStatus::from_api("missing")
        } else {
            SnapshotStatus::Available
        },
        created: Some(slot.slot),
        encrypted: true,
        kms_key_id: None,
        tags,
        option_group: None,
        restore_accounts: None,
        source_region: None,
    })
}

/// One vault region's current versions, by export.
async fn list_vault(
    ctx: &AwsContext,
    run: &DestinationRun,
    region: &str,
) -> Result<BTreeMap<String, Vec<VaultVersion>>, Error> {
    let bucket = vault_bucket(&run.namespace, &run.destination.account, region);
    let prefix = schedule_prefix(&run.namespace, &run.schedule.name);
    let versions = ec::list_versions(ctx, region, &bucket, &prefix).await?;
    Ok(by_export(versions, |v| v.key.as_str()))
}

/// An export the destination copies: a slot id of the schedule whose objects were all
/// written after its slot began (a compromised source cannot pass an old slot's id off as a
/// new export), not on-demand (ElastiCache has none).
fn real_export(run: &DestinationRun, id: &str, objects: &[ExportedObject]) -> Option<Timestamp> {
    let slot = parse_slot_id(&run.namespace, &run.schedule.name, id)?.slot;
    objects
        .iter()
        .all(|o| o.last_modified.is_some_and(|t| t >= slot))
        .then_some(slot)
}

/// When a vault copy's lock ends: the floor (`retention.days`) after its capture, the moment
/// the destination's retention may first delete it.
fn lock_until(run: &DestinationRun, captured: Timestamp) -> Timestamp {
    let days = i64::from(run.destination.retention.days.unwrap_or(1));
    captured + SignedDuration::from_hours(24 * days)
}

/// Copy one object into one vault region and verify the copy: same size, and the same
/// checksum as the source's under an algorithm S3 keeps for both.
async fn copy_object(
    ctx: &AwsContext,
    run: &DestinationRun,
    region: &str,
    from_bucket: &str,
    object: &ExportedObject,
    captured: Timestamp,
) -> Result<(), Error> {
    let to_bucket = vault_bucket(&run.namespace, &run.destination.account, region);
    let kms_key = run
        .destination
        .regions
        .iter()
        .find(|r| r.region == region)
        .and_then(|r| r.kms_key.as_deref())
        .ok_or_else(|| {
            Error::config(
                "destination.regions[].kms_key",
                format!("no key for {region}: build the input with `snapcourier inputs`"),
            )
        })?;
    let source = ec::object_facts(ctx, &run.source.region, from_bucket, &object.key).await?;
    if source.size > MAX_COPY_OBJECT_BYTES {
        return Err(Error::InvalidState {
            resource: format!("s3://{from_bucket}/{}", object.key),
            message: format!(
                "{} bytes: objects over 5 GiB need a multipart copy, which snapcourier does not make yet; copy it by hand (aws s3 cp) into s3://{to_bucket}",
                source.size
            ),
        });
    }
    let algorithm = source.checksums.keys().next().copied();
    ec::copy_to_vault(
        ctx,
        &VaultCopy {
            from_bucket,
            key: &object.key,
            to_region: region,
            to_bucket: &to_bucket,
            kms_key,
            lock_mode: run.destination.object_lock.as_api(),
            retain_until: lock_until(run, captured),
            checksum: algorithm,
        },
    )
    .await?;
    let copy = ec::object_facts(ctx, region, &to_bucket, &object.key).await?;
    let same_checksum = algorithm.is_some_and(|a| copy.checksums.get(a) == source.checksums.get(a));
    if copy.size != source.size || !same_checksum {
        return Err(Error::InvalidState {
            resource: format!("s3://{to_bucket}/{}", object.key),
            message: format!(
                "the copy does not match its source (size {} vs {}, checksums {:?} vs {:?}); it is locked in the vault, so it stays: restore from another copy, and report this",
                copy.size, source.size, copy.checksums, source.checksums
            ),
        });
    }
    Ok(())
}

impl EngineSteps for ElastiCacheSteps {
    async fn take(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
        now: Timestamp,
    ) -> Result<TakePass, Error> {
        let region = run.source.region.as_str();
        let filter = ResourceFilter::new(&run.schedule, "schedule")?;
        let caches = ec::list_caches(ctx, region, run.schedule.opt_in_tag.is_some()).await?;
        let listing = list_source(ctx, run).await?;
        let plan = plan_take(
            run,
            Engine::ElastiCache,
            &filter,
            &caches,
            &listing.snapshots,
            now,
        );
        let by_id: BTreeMap<&str, &ResourceRecord> =
            caches.iter().map(|c| (c.id.as_str(), c)).collect();
        let creates = plan.create.iter().map(|p| {
            let cache = by_id.get(p.resource_id.as_str()).copied();
            async move {
                let Some(cache) = cache else {
                    return (
                        None,
                        errored_item(
                            &p.resource_id,
                            &p.snapshot_id,
                            &Error::NotFound {
                                resource: p.resource_id.clone(),
                                message: "gone since it was listed; the next run looks again"
                                    .into(),
                            },
                        ),
                    );
                };
                let tags = OwnershipTags {
                    namespace: run.namespace.clone(),
                    schedule: run.schedule.name.clone(),
                    stage: Stage::Source,
                    resource: p.resource_id.clone(),
                    source_arn: p.resource_arn.clone(),
                    source_created: None,
                }
                .to_map();
                match ec::create_snapshot(ctx, region, cache, &p.snapshot_id, &tags).await {
                    Ok(Started::New(s)) => (Some(s.id.clone()), source_item(&s, false)),
                    // Another run took it a moment ago: the share step follows it.
                    Ok(Started::AlreadyExists) => (
                        None,
                        SourceItem {
                            resource_id: p.resource_id.clone(),
                            snapshot_id: p.snapshot_id.clone(),
                            snapshot_arn: None,
                            status: "creating".into(),
                            shared: false,
                            error: None,
                        },
                    ),
                    Err(e) => (None, errored_item(&p.resource_id, &p.snapshot_id, &e)),
                }
            }
        });
        let outcomes: Vec<(Option<String>, SourceItem)> = bounded(&run.settings, creates).await;
        let mut items = Vec::new();
        let mut created = Vec::new();
        for (new, item) in outcomes {
            created.extend(new);
            items.push(item);
        }
        for s in &plan.follow {
            if !items.iter().any(|i| i.snapshot_id == s.id) {
                items.push(source_item(s, false));
            }
        }
        Ok(TakePass {
            overlapping_execution: None,
            items,
            skipped: plan.skipped,
            created,
            api_calls: 0,
        })
    }

    async fn snapshot_now(
        &self,
        _ctx: &AwsContext,
        run: &SourceRun,
        _database: &str,
        _keep_hours: u32,
        _label: Option<&str>,
        _now: Timestamp,
    ) -> Result<SnapshotRecord, Error> {
        Err(Error::config(
            "--schedule",
            format!(
                "schedule {} is an ElastiCache schedule: snapshot-now takes Aurora and RDS snapshots only, for now (take one with `aws elasticache create-snapshot`; snapcourier will not export or expire it)",
                run.schedule.name
            ),
        ))
    }

    /// Export each available snapshot not yet exported. An export runs in the background
    /// (the snapshot is `exporting` meanwhile): the snapshot is shared once it is available
    /// again and its objects are in the bucket.
    async fn share(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
    ) -> Result<Vec<(SourceItem, Result<Shared, Error>)>, Error> {
        let region = run.source.region.as_str();
        let bucket = source_bucket(&run.namespace, &run.source);
        let listing = list_source(ctx, run).await?;
        let due = to_share(run, &listing.snapshots);
        let exported = &listing.exports;
        let looks = due.into_iter().map(|s| {
            let bucket = bucket.as_str();
            async move {
                let item = source_item(s, false);
                let outcome = match &s.status {
                    SnapshotStatus::InProgress(_) => Ok(Shared::NotYet(item.clone())),
                    SnapshotStatus::Unusable(status) => Err(Error::InvalidState {
                        resource: s.id.clone(),
                        message: format!(
                            "status is `{status}`; it cannot be exported. Delete it so the next run takes a new one"
                        ),
                    }),
                    // Objects of an export still being written (the snapshot is not
                    // available while it runs): wait.
                    SnapshotStatus::Available if exported.contains_key(&s.id) => {
                        Ok(Shared::NotYet(item.clone()))
                    }
                    SnapshotStatus::Available => {
                        match confirm_ours(ctx, region, &run.namespace, &run.schedule.name, s)
                            .await
                        {
                            Err(e) => Err(e),
                            Ok(()) => ec::export(
                                ctx,
                                region,
                                s,
                                ec::is_serverless_snapshot(&s.arn),
                                bucket,
                                &s.id,
                            )
                            .await
                            .map(|()| {
                                tracing::info!(snapshot = %s.id, bucket, "export started");
                                let mut waiting = item.clone();
                                waiting.status = "exporting".into();
                                Shared::NotYet(waiting)
                            }),
                        }
                    }
                };
                (item, outcome)
            }
        });
        Ok(bounded(&run.settings, looks).await)
    }

    /// Retention over the schedule's snapshots; an expired snapshot's exported objects go
    /// first, then the snapshot (a failure leaves the snapshot, so the next run finishes).
    async fn delete_source(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
        now: Timestamp,
        assumed: &[Assumed],
    ) -> Result<DeleteOutput, Error> {
        let region = run.source.region.as_str();
        let bucket = source_bucket(&run.namespace, &run.source);
        let listing = list_source(ctx, run).await?;
        let candidates = candidates_in(
            &listing.snapshots,
            &run.namespace,
            &run.schedule.name,
            Stage::Source,
            now,
            assumed,
            region,
        );
        let plan = plan_retention(&run.schedule.retention, &candidates, now);
        let by_id: BTreeMap<&str, &SnapshotRecord> = listing
            .snapshots
            .iter()
            .map(|s| (s.id.as_str(), s))
            .collect();
        let deletions = plan
            .delete
            .iter()
            .filter_map(|id| by_id.get(id.as_str()))
            .map(|s| {
                let bucket = bucket.as_str();
                let objects: ObjectRefs = listing
                    .exports
                    .get(&s.id)
                    .into_iter()
                    .flatten()
                    .map(|o| (o.key.clone(), None))
                    .collect();
                async move {
                    let outcome = async {
                        confirm_ours(ctx, region, &run.namespace, &run.schedule.name, s).await?;
                        if !objects.is_empty() {
                            for (key, result) in
                                ec::delete_objects(ctx, region, bucket, &objects).await?
                            {
                                result.inspect_err(|_| {
                                    tracing::warn!(key, "export object not deleted");
                                })?;
                            }
                        }
                        ec::delete_snapshot(ctx, region, &s.id, ec::is_serverless_snapshot(&s.arn))
                            .await
                    }
                    .await;
                    (s.id.clone(), s.protected_resource().to_string(), outcome)
                }
            });
        let outcomes = bounded(&run.settings, deletions).await;
        let mut deleted = Vec::new();
        let mut failures = Vec::new();
        for (id, resource, outcome) in outcomes {
            match outcome {
                Ok(()) => deleted.push(DeletedSnapshot {
                    region: region.to_string(),
                    snapshot_id: id,
                    reason: DeletionReason::Expired,
                }),
                Err(e) => failures.push(failure(&resource, FailureStage::Delete, &e)),
            }
        }
        let remaining = after_deletions(region, listing.snapshots, &deleted);
        let coverage = source_coverage(run, &remaining, now);
        Ok(DeleteOutput {
            version: EVENT_VERSION,
            deleted,
            deleted_count: 0,
            failed: 0,
            kept: plan.keep.len(),
            failures,
            api_calls: 0,
            heartbeat: Some(Heartbeat::source(run, region, &remaining, now)),
            coverage: Some(coverage),
        })
    }

    /// Copy every export not yet in a vault region into it, `call_concurrency` objects at a
    /// time. CopyObject finishes the copy in the call, so nothing is left in flight.
    async fn copy_in(
        &self,
        ctx: &AwsContext,
        run: &DestinationRun,
        now: Timestamp,
    ) -> Result<CopyPass, Error> {
        let from_bucket = source_bucket(&run.namespace, &run.source);
        let prefix = schedule_prefix(&run.namespace, &run.schedule.name);
        let objects = ec::list_objects(ctx, &run.source.region, &from_bucket, &prefix).await?;
        let exports = by_export(objects, |o| o.key.as_str());
        let mut vaults = BTreeMap::new();
        for r in &run.destination.regions {
            vaults.insert(r.region.clone(), list_vault(ctx, run, &r.region).await?);
        }
        let floor = run
            .destination
            .retention
            .days
            .map(|d| now - SignedDuration::from_hours(24 * i64::from(d)));
        let mut out = CopyPass::empty();
        let mut work = Vec::new();
        for (id, objects) in &exports {
            let Some(captured) = real_export(run, id, objects) else {
                continue;
            };
            out.due += 1;
            if floor.is_some_and(|f| captured < f) {
                out.too_old.push(id.clone());
                continue;
            }
            for r in &run.destination.regions {
                let held: BTreeSet<&str> = vaults
                    .get(&r.region)
                    .and_then(|v| v.get(id))
                    .into_iter()
                    .flatten()
                    .filter(|v| v.is_latest)
                    .map(|v| v.key.as_str())
                    .collect();
                for o in objects.iter().filter(|o| !held.contains(o.key.as_str())) {
                    work.push((id.clone(), r.region.clone(), o, captured));
                }
            }
        }
        let copies = work.into_iter().map(|(id, region, o, captured)| {
            let from_bucket = from_bucket.as_str();
            async move {
                let outcome = copy_object(ctx, run, &region, from_bucket, o, captured).await;
                (id, region, outcome)
            }
        });
        let outcomes = bounded(&run.settings, copies).await;
        let mut failed: BTreeSet<String> = BTreeSet::new();
        for (id, region, outcome) in outcomes {
            match outcome {
                Ok(()) => {
                    if !out
                        .copied
                        .iter()
                        .any(|p| p.snapshot_id == id && p.region == region)
                    {
                        out.copied.push(PendingCopy {
                            resource_id: resource_of(run, &id),
                            snapshot_id: id,
                            region,
                            status: "copied".into(),
                        });
                    }
                }
                Err(e) => {
                    failed.insert(id.clone());
                    let stage = FailureStage::CopyIn;
                    out.failures.push(ItemFailure::new(
                        format!("{} ({region})", resource_of(run, &id)),
                        stage,
                        &e,
                    ));
                }
            }
        }
        // Every copy is finished when its call returns: those made this look are done too.
        out.done = exports
            .keys()
            .filter(|id| real_export(run, id, &exports[*id]).is_some())
            .filter(|id| !failed.contains(*id) && !out.too_old.contains(*id))
            .cloned()
            .collect();
        out.next = NextLook::Finished;
        Ok(out)
    }

    async fn cross_region_copy(
        &self,
        _ctx: &AwsContext,
        _run: &DestinationRun,
        _now: Timestamp,
    ) -> Result<RegionalPass, Error> {
        // The copy-in step copies into every vault region directly.
        Ok(RegionalPass {
            started: Vec::new(),
            waiting: Vec::new(),
            failures: Vec::new(),
            api_calls: 0,
        })
    }

    /// The destination's retention per vault region, never before the floor (whose end is
    /// each copy's lock): the expired exports' object versions are deleted.
    async fn delete_destination(
        &self,
        ctx: &AwsContext,
        run: &DestinationRun,
        now: Timestamp,
        assumed: &[Assumed],
    ) -> Result<DeleteOutput, Error> {
        let mut deleted = Vec::new();
        let mut failures = Vec::new();
        let mut kept = 0;
        let mut local: BTreeMap<String, Vec<SnapshotRecord>> = BTreeMap::new();
        for r in &run.destination.regions {
            let region = r.region.as_str();
            let bucket = vault_bucket(&run.namespace, &run.destination.account, region);
            let vault = list_vault(ctx, run, region).await?;
            let records: Vec<SnapshotRecord> = vault
                .iter()
                .filter_map(|(id, versions)| {
                    let current: Vec<VaultVersion> =
                        versions.iter().filter(|v| v.is_latest).cloned().collect();
                    vault_record(run, region, id, &current)
                })
                .collect();
            let candidates = candidates_in(
                &records,
                &run.namespace,
                &run.schedule.name,
                Stage::Destination,
                now,
                assumed,
                region,
            );
            let mut plan = plan_retention(&run.destination.retention, &candidates, now);
            let refused = apply_floor(&mut plan, &candidates, run.destination.retention.days, now);
            for (id, _) in &refused {
                tracing::warn!(copy = %id, region, "kept: younger than the vault's floor");
            }
            kept += plan.keep.len() + refused.len();
            let expired: Vec<(String, ObjectRefs)> = plan
                .delete
                .iter()
                .map(|id| {
                    let versions = vault
                        .get(id)
                        .into_iter()
                        .flatten()
                        .map(|v| (v.key.clone(), Some(v.version_id.clone())))
                        .collect();
                    (id.clone(), versions)
                })
                .collect();
            let mut gone: Vec<DeletedSnapshot> = Vec::new();
            for (id, versions) in expired {
                let outcome = match ec::delete_objects(ctx, region, &bucket, &versions).await {
                    Ok(results) => results.into_iter().try_for_each(|(_, r)| r),
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(()) => gone.push(DeletedSnapshot {
                        region: region.to_string(),
                        snapshot_id: id,
                        reason: DeletionReason::Expired,
                    }),
                    Err(e) => failures.push(failure(
                        &format!("{} ({region})", resource_of(run, &id)),
                        FailureStage::Delete,
                        &e,
                    )),
                }
            }
            local.insert(region.to_string(), after_deletions(region, records, &gone));
            deleted.extend(gone);
        }
        let heartbeat = Heartbeat::destination(run, &local, now);
        let coverage = vault_coverage(run, &local, now);
        Ok(DeleteOutput {
            version: EVENT_VERSION,
            deleted,
            deleted_count: 0,
            failed: 0,
            kept,
            failures,
            api_calls: 0,
            heartbeat: Some(heartbeat),
            coverage: Some(coverage),
        })
    }

    async fn list_owned(
        &self,
        ctx: &AwsContext,
        region: &str,
    ) -> Result<Vec<SnapshotRecord>, Error> {
        ec::list_snapshots(ctx, region, "sc-").await
    }

    async fn list_resources(
        &self,
        ctx: &AwsContext,
        region: &str,
    ) -> Result<Vec<ResourceRecord>, Error> {
        ec::list_caches(ctx, region, true).await
    }

    async fn list_shared(
        &self,
        _ctx: &AwsContext,
        _region: &str,
    ) -> Result<Vec<SnapshotRecord>, Error> {
        // Nothing is shared: the destination reads the source's export bucket.
        Ok(Vec::new())
    }

    async fn shared_with(
        &self,
        _ctx: &AwsContext,
        _region: &str,
        _id: &str,
    ) -> Result<BTreeSet<String>, Error> {
        Ok(BTreeSet::new())
    }
}

/// The database an export protects, as its id says.
fn resource_of(run: &DestinationRun, id: &str) -> String {
    parse_slot_id(&run.namespace, &run.schedule.name, id)
        .map_or_else(|| id.to_string(), |s| s.resource)
}

/// Each database's newest copy held in every vault region.
fn vault_coverage(
    run: &DestinationRun,
    local: &BTreeMap<String, Vec<SnapshotRecord>>,
    now: Timestamp,
) -> Coverage {
    let mut newest: BTreeMap<String, Option<Timestamp>> = BTreeMap::new();
    let regions = run.destination.regions.len();
    let mut held: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for s in local.values().flatten() {
        newest.entry(s.resource_id.clone()).or_insert(None);
        if s.status.is_available() {
            *held
                .entry((s.resource_id.as_str(), s.id.as_str()))
                .or_default() += 1;
        }
    }
    for ((resource, id), count) in held {
        if count < regions {
            continue;
        }
        let Some(slot) = parse_slot_id(&run.namespace, &run.schedule.name, id) else {
            continue;
        };
        let entry = newest.entry(resource.to_string()).or_insert(None);
        if entry.is_none_or(|t| slot.slot > t) {
            *entry = Some(slot.slot);
        }
    }
    Coverage::of(&newest, run.schedule.interval.as_signed(), now)
}
