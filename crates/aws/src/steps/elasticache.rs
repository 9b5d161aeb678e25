//! ElastiCache (Valkey, Redis OSS): its own steps. A snapshot cannot be shared with another
//! account or copied to another region, so it leaves through S3:
//! - source: take a snapshot per slot; "share" is the export of its `.rdb` objects to the
//!   source stack's bucket (`naming::export_bucket`), which the destination accounts may read
//!   (the bucket and key policies say so; nothing is granted per object), completed by the
//!   export's manifest (`snapcourier_core::export`) once the snapshot is available again;
//!   expire snapshots, their objects and manifests together;
//! - destination: copy each export that has a manifest, and whose capture falls in the slot
//!   its id names, into this account's vault bucket in every destination region
//!   (`naming::vault_bucket`): the objects, re-encrypted with the region's key, locked (S3
//!   Object Lock) until the vault's floor has passed since the capture and verified (size and
//!   checksum), then the manifest; there is no intermediate copy, so the cross-region step has
//!   nothing to do; expire vault exports by the destination's retention, never before their
//!   lock ends.
//!
//! Cost: ElastiCache's describes carry no tags, so a snapshot of the schedule is recognised
//! by its deterministic id (`naming::schedule_prefix`), and its tags are read (one call) only
//! before snapcourier exports or deletes it. Whether a snapshot is exported, and which objects
//! a vault holds, come from the bucket listings (one call per 1,000 objects). A steady-state
//! run costs its listings.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use snapcourier_core::config::{ResourceFilter, partition};
use snapcourier_core::coverage::Coverage;
use snapcourier_core::events::{
    CopyPass, DeleteOutput, DeletedSnapshot, DestinationRun, EVENT_VERSION, FailureStage,
    ItemFailure, RegionalPass, SourceItem, SourceRun, TakePass,
};
use snapcourier_core::export::{
    ExportManifest, ExportedFile, MANIFEST_VERSION, export_point, manifest_key, parse_manifest_key,
    shard_object_of,
};
use snapcourier_core::heartbeat::Heartbeat;
use snapcourier_core::looks::NextLook;
use snapcourier_core::naming::{export_bucket, parse_slot_id, schedule_prefix, vault_bucket};
use snapcourier_core::plan::{
    PendingCopy, deletions_with_reasons, on_demand_expired, plan_take, source_coverage, to_share,
};
use snapcourier_core::retention::{apply_floor, plan_retention};
use snapcourier_core::snapshot::{ResourceRecord, SnapshotRecord, SnapshotStatus};
use snapcourier_core::tags::{self, OwnershipTags, Stage};
use snapcourier_core::{Engine, Error};

use super::source::{errored_item, on_demand_resource, on_demand_snapshot};
use super::{Assumed, Shared, after_deletions, bounded, candidates_in, failure, source_item};
use crate::adapter::Started;
use crate::client::AwsContext;
use crate::elasticache::{
    self as ec, ExportedObject, MAX_COPY_OBJECT_BYTES, ObjectFacts, PartPlan, VaultCopy,
    VaultVersion,
};
use crate::engines::EngineSteps;

/// ElastiCache's steps: snapshots travel as exported objects (module docs).
pub(crate) struct ElastiCacheSteps {
    /// How objects too large for one CopyObject are copied.
    pub parts: PartPlan,
}

/// Objects to delete: key, and version where the bucket is versioned.
type ObjectRefs = Vec<(String, Option<String>)>;

/// Largest manifest a step reads (a 500-shard export's is about 60 KB).
const MAX_MANIFEST_BYTES: i64 = 1024 * 1024;

/// A bucket's objects of one schedule, by export: each export's shard objects and, once it is
/// complete, its manifest (key and capture time). Objects of no export are left out.
#[derive(Debug, Default)]
struct Exports<T> {
    shards: BTreeMap<String, Vec<T>>,
    manifests: BTreeMap<String, (String, Timestamp)>,
}

impl<T> Exports<T> {
    fn of(objects: Vec<T>, key: impl Fn(&T) -> &str) -> Self {
        let mut out = Exports {
            shards: BTreeMap::new(),
            manifests: BTreeMap::new(),
        };
        for o in objects {
            let k = key(&o).to_string();
            if let Some((id, captured)) = parse_manifest_key(&k) {
                out.manifests.insert(id.to_string(), (k.clone(), captured));
            } else if let Some(id) = shard_object_of(&k) {
                out.shards.entry(id.to_string()).or_default().push(o);
            }
        }
        out
    }
}

/// The source's export bucket.
fn source_bucket(ns: &str, source: &snapcourier_core::config::SourceAccount) -> String {
    export_bucket(ns, &source.account, &source.region)
}

/// The schedule's snapshots in the source region and the exports in its bucket. A snapshot
/// under the schedule's prefix counts as this schedule's source snapshot (ElastiCache lists
/// no tags; its tags are checked before anything is done to it), and as shared with every
/// destination account once its export's manifest is in the bucket.
struct SourceListing {
    snapshots: Vec<SnapshotRecord>,
    exports: Exports<ExportedObject>,
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
    let exports = Exports::of(objects, |o| o.key.as_str());
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
        if s.status.is_available() && exports.manifests.contains_key(&s.id) {
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

/// One vault region's exports: every version of the schedule's objects, by export (all
/// versions, for deletes) and the current ones (for what the vault holds).
struct Vault {
    /// Every version of each export's keys, its manifest's first (an export cut short by a
    /// failed delete then reads as incomplete).
    versions: BTreeMap<String, ObjectRefs>,
    current: Exports<VaultVersion>,
}

async fn list_vault(ctx: &AwsContext, run: &DestinationRun, region: &str) -> Result<Vault, Error> {
    let bucket = vault_bucket(&run.namespace, &run.destination.account, region);
    let prefix = schedule_prefix(&run.namespace, &run.schedule.name);
    let listed = ec::list_versions(ctx, region, &bucket, &prefix).await?;
    let mut manifests: BTreeMap<String, ObjectRefs> = BTreeMap::new();
    let mut shards: BTreeMap<String, ObjectRefs> = BTreeMap::new();
    for v in &listed {
        let version = (v.key.clone(), Some(v.version_id.clone()));
        if let Some((id, _)) = parse_manifest_key(&v.key) {
            manifests.entry(id.to_string()).or_default().push(version);
        } else if let Some(id) = shard_object_of(&v.key) {
            shards.entry(id.to_string()).or_default().push(version);
        }
    }
    for (id, objects) in shards {
        manifests.entry(id).or_default().extend(objects);
    }
    let current: Vec<VaultVersion> = listed.into_iter().filter(|v| v.is_latest).collect();
    Ok(Vault {
        versions: manifests,
        current: Exports::of(current, |v| v.key.as_str()),
    })
}

/// The destination's view of one complete export in a vault region (its manifest is there):
/// a record the domain's retention, heartbeat and coverage rules read.
fn vault_record(
    run: &DestinationRun,
    region: &str,
    id: &str,
    captured: Timestamp,
) -> Option<SnapshotRecord> {
    let point = export_point(
        &run.namespace,
        &run.schedule.name,
        id,
        captured,
        run.schedule.interval.as_signed(),
    )?;
    let tags = OwnershipTags {
        namespace: run.namespace.clone(),
        schedule: run.schedule.name.clone(),
        stage: Stage::Destination,
        resource: point.resource.clone(),
        source_arn: String::new(),
        source_created: Some(captured),
    }
    .to_map();
    Some(SnapshotRecord {
        id: id.to_string(),
        arn: format!(
            "s3://{}/{id}",
            vault_bucket(&run.namespace, &run.destination.account, region)
        ),
        owner_account: run.destination.account.clone(),
        resource_id: point.resource,
        status: SnapshotStatus::Available,
        created: Some(captured),
        encrypted: true,
        kms_key_id: None,
        tags,
        option_group: None,
        restore_accounts: None,
        source_region: None,
        engine: None,
    })
}

/// An export the destination copies: complete (its manifest is listed), its id a slot id of
/// the schedule captured inside that slot, as a share's creation time must be, or an
/// on-demand id captured right after the second it names (a compromised source can neither
/// pass an old slot's id off as a new export nor make two per cache and slot).
fn real_export(run: &DestinationRun, id: &str, captured: Timestamp) -> bool {
    export_point(
        &run.namespace,
        &run.schedule.name,
        id,
        captured,
        run.schedule.interval.as_signed(),
    )
    .is_some()
}

/// When a vault copy's lock ends: the floor (`retention.days`) after its capture, the moment
/// the destination's retention may first delete it.
fn lock_until(run: &DestinationRun, captured: Timestamp) -> Timestamp {
    let days = i64::from(run.destination.retention.days.unwrap_or(1));
    captured + SignedDuration::from_hours(24 * days)
}

/// Read and check an export's manifest in the source bucket: well formed, of this export, and
/// every object it lists is in the bucket with the size it records.
async fn read_manifest(
    ctx: &AwsContext,
    run: &DestinationRun,
    from_bucket: &str,
    id: &str,
    key: &str,
    listed: &[ExportedObject],
) -> Result<ExportManifest, Error> {
    let bytes = ec::get_small_object(
        ctx,
        &run.source.region,
        from_bucket,
        key,
        MAX_MANIFEST_BYTES,
    )
    .await?;
    let manifest =
        parse_manifest(&bytes, &format!("s3://{from_bucket}/{key}"), id).map_err(|e| match e {
            Error::InvalidState { resource, message } => Error::InvalidState {
                resource,
                message: format!("{message}; the export is not copied"),
            },
            e => e,
        })?;
    for o in &manifest.objects {
        if !listed.iter().any(|l| l.key == o.key && l.size == o.size) {
            return Err(Error::InvalidState {
                resource: format!("s3://{from_bucket}/{}", o.key),
                message: format!(
                    "listed by the manifest of {id} with {} bytes, but not in the export bucket with that size; the export is not copied",
                    o.size
                ),
            });
        }
    }
    Ok(manifest)
}

/// A manifest's bytes (`target` names the object): well formed and of export `id`.
fn parse_manifest(bytes: &[u8], target: &str, id: &str) -> Result<ExportManifest, Error> {
    let manifest: ExportManifest =
        serde_json::from_slice(bytes).map_err(|e| Error::InvalidState {
            resource: target.to_string(),
            message: format!("not a snapcourier export manifest ({e})"),
        })?;
    if manifest.snapshot != id || !manifest.is_well_formed() {
        return Err(Error::InvalidState {
            resource: target.to_string(),
            message: format!("the manifest does not describe export {id}'s objects"),
        });
    }
    Ok(manifest)
}

/// A complete export in a vault region, as a restore drill chooses among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VaultExport {
    pub id: String,
    pub database: String,
    pub captured: Timestamp,
    /// The S3 ARN of its manifest.
    pub manifest_arn: String,
}

/// The complete exports of `schedule` in destination `account`'s vault in `region` (those
/// with a manifest): one listing page per 1,000 objects.
pub(crate) async fn vault_exports(
    ctx: &AwsContext,
    namespace: &str,
    account: &str,
    schedule: &str,
    region: &str,
) -> Result<Vec<VaultExport>, Error> {
    let bucket = vault_bucket(namespace, account, region);
    let objects =
        ec::list_objects(ctx, region, &bucket, &schedule_prefix(namespace, schedule)).await?;
    let exports = Exports::of(objects, |o| o.key.as_str());
    Ok(exports
        .manifests
        .into_iter()
        .map(|(id, (key, captured))| VaultExport {
            database: database_of(namespace, schedule, &id),
            manifest_arn: format!("arn:{}:s3:::{bucket}/{key}", partition(region)),
            id,
            captured,
        })
        .collect())
}

/// Read a vault export's manifest by its S3 ARN (a restore drill): well formed and of `id`.
/// An object gone since it was listed is `NotFound`.
pub(crate) async fn read_vault_manifest(
    ctx: &AwsContext,
    region: &str,
    manifest_arn: &str,
    id: &str,
) -> Result<(String, ExportManifest), Error> {
    let Some((bucket, key)) = manifest_arn
        .split_once(":::")
        .and_then(|(_, path)| path.split_once('/'))
    else {
        return Err(Error::internal(
            format!("the manifest ARN {manifest_arn}"),
            "not an S3 object ARN",
        ));
    };
    let bytes = ec::get_small_object(ctx, region, bucket, key, MAX_MANIFEST_BYTES).await?;
    let manifest = parse_manifest(&bytes, &format!("s3://{bucket}/{key}"), id)?;
    Ok((bucket.to_string(), manifest))
}

/// Copy one object into one vault region and verify the copy: same size, and the same
/// checksum as the source's under an algorithm S3 keeps for both.
async fn copy_object(
    ctx: &AwsContext,
    run: &DestinationRun,
    region: &str,
    source: &mut SourceExport<'_>,
    key: &str,
    parts: PartPlan,
) -> Result<ObjectCopy, Error> {
    let (from_bucket, captured) = (source.bucket, source.manifest.captured);
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
    let source = source.facts(ctx, &run.source.region, key).await?;
    let large = source.size > MAX_COPY_OBJECT_BYTES;
    // A copy in parts can be checked whole only by a CRC64NVME (S3 combines the parts');
    // a single CopyObject recomputes whichever algorithm the source has.
    let algorithm = if large {
        Some("CRC64NVME")
    } else {
        source.checksums.keys().next().copied()
    };
    let vault_copy = VaultCopy {
        from_bucket,
        key,
        to_region: region,
        to_bucket: &to_bucket,
        kms_key,
        lock_mode: run.destination.object_lock.as_api(),
        retain_until: lock_until(run, captured),
        checksum: algorithm,
    };
    if large {
        let Some(crc) = source.checksums.get("CRC64NVME") else {
            return Err(Error::InvalidState {
                resource: format!("s3://{from_bucket}/{key}"),
                message: format!(
                    "{} bytes, copied in parts, but S3 keeps no CRC64NVME checksum of it (only {:?}) to check the copy against; copy it by hand (aws s3 cp, then compare) into s3://{to_bucket}",
                    source.size,
                    source.checksums.keys().collect::<Vec<_>>()
                ),
            });
        };
        if let ec::PartsCopy::Partial { copied, parts } =
            ec::copy_parts_to_vault(ctx, &vault_copy, source.size, crc, parts).await?
        {
            return Ok(ObjectCopy::Partial { copied, parts });
        }
    } else {
        ec::copy_to_vault(ctx, &vault_copy).await?;
    }
    let copy = ec::object_facts(ctx, region, &to_bucket, key).await?;
    let same_checksum = algorithm.is_some_and(|a| copy.checksums.get(a) == source.checksums.get(a));
    if copy.size != source.size || !same_checksum {
        return Err(Error::InvalidState {
            resource: format!("s3://{to_bucket}/{key}"),
            message: format!(
                "the copy does not match its source (size {} vs {}, checksums {:?} vs {:?}); it is locked in the vault, so it stays: restore from another copy, and report this",
                copy.size, source.size, copy.checksums, source.checksums
            ),
        });
    }
    Ok(ObjectCopy::Done)
}

/// Where the copy of an object (or of a whole export) into a vault region stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectCopy {
    Done,
    /// A large object's copy in parts is under way: this many of its parts are copied.
    Partial {
        copied: usize,
        parts: usize,
    },
}

/// An export in the source's bucket as the copy-in copies it: its manifest, and what HeadObject
/// said of its objects, read once for every vault region.
struct SourceExport<'a> {
    bucket: &'a str,
    manifest: &'a ExportManifest,
    heads: BTreeMap<String, ObjectFacts>,
}

impl SourceExport<'_> {
    async fn facts(
        &mut self,
        ctx: &AwsContext,
        region: &str,
        key: &str,
    ) -> Result<ObjectFacts, Error> {
        if let Some(facts) = self.heads.get(key) {
            return Ok(facts.clone());
        }
        let facts = ec::object_facts(ctx, region, self.bucket, key).await?;
        self.heads.insert(key.to_string(), facts.clone());
        Ok(facts)
    }
}

/// One export into one vault region: the objects the vault lacks, then the manifest, which
/// makes the export complete there.
async fn copy_export(
    ctx: &AwsContext,
    run: &DestinationRun,
    region: &str,
    source: &mut SourceExport<'_>,
    held: &BTreeSet<String>,
    parts: PartPlan,
) -> Result<ObjectCopy, Error> {
    let manifest = source.manifest;
    // Objects one after the other: a large one's copy runs its parts in parallel.
    for o in manifest.objects.iter().filter(|o| !held.contains(&o.key)) {
        let copied = copy_object(ctx, run, region, source, &o.key, parts).await?;
        if copied != ObjectCopy::Done {
            return Ok(copied);
        }
    }
    copy_object(ctx, run, region, source, &manifest.key(), parts).await
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
        let listed: BTreeMap<&str, &SnapshotStatus> = listing
            .snapshots
            .iter()
            .map(|s| (s.id.as_str(), &s.status))
            .collect();
        let listed = &listed;
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
                    // The slot's id is taken. By a snapshot that failed: say so (the plan
                    // does not count a failed snapshot, so it tried again). Else another run
                    // took it a moment ago: the share step follows it.
                    Ok(Started::AlreadyExists) => match listed.get(p.snapshot_id.as_str()) {
                        Some(SnapshotStatus::Unusable(status)) => (
                            None,
                            errored_item(
                                &p.resource_id,
                                &p.snapshot_id,
                                &Error::InvalidState {
                                    resource: p.snapshot_id.clone(),
                                    message: format!(
                                        "this slot's snapshot of {} is `{status}`; delete it so the next run can take it again",
                                        p.resource_id
                                    ),
                                },
                            ),
                        ),
                        _ => (
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
                    },
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

    /// An on-demand snapshot of one covered cache (`snapcourier snapshot-now`): named for the
    /// second it is taken and the hours it is kept (`naming::on_demand_id`); the share step
    /// exports it like the others, and both sides expire it when its keep ends. Refused,
    /// before anything is created, for a cache the schedule does not cover or that is not
    /// available.
    async fn snapshot_now(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
        database: &str,
        keep_hours: u32,
        label: Option<&str>,
        now: Timestamp,
    ) -> Result<SnapshotRecord, Error> {
        let region = run.source.region.as_str();
        let filter = ResourceFilter::new(&run.schedule, "schedule")?;
        let caches = ec::list_caches(ctx, region, run.schedule.opt_in_tag.is_some()).await?;
        let cache = on_demand_resource(run, Engine::ElastiCache, &filter, &caches, database)?;
        let (id, tags) = on_demand_snapshot(run, cache, keep_hours, label, now);
        match ec::create_snapshot(ctx, region, cache, &id, &tags).await? {
            Started::New(s) => Ok(*s),
            // The same second, again (a retried command): that snapshot, if it is ours.
            Started::AlreadyExists => {
                let listing = list_source(ctx, run).await?;
                match listing.snapshots.into_iter().find(|s| s.id == id) {
                    Some(s) => {
                        confirm_ours(ctx, region, &run.namespace, &run.schedule.name, &s).await?;
                        Ok(s)
                    }
                    None => Err(Error::InvalidState {
                        resource: id,
                        message: "the id was taken a moment ago but the snapshot is gone; try again in a second".into(),
                    }),
                }
            }
        }
    }

    /// Export each available snapshot not yet exported; once the export is done (the
    /// snapshot is available again and its objects are in the bucket), write its manifest: the
    /// snapshot is then shared.
    async fn share(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
    ) -> Result<Vec<(SourceItem, Result<Shared, Error>)>, Error> {
        let region = run.source.region.as_str();
        let bucket = source_bucket(&run.namespace, &run.source);
        let listing = list_source(ctx, run).await?;
        let due = to_share(run, &listing.snapshots);
        let shards = &listing.exports.shards;
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
                    SnapshotStatus::Available => {
                        match confirm_ours(ctx, region, &run.namespace, &run.schedule.name, s).await
                        {
                            Err(e) => Err(e),
                            Ok(()) => match shards.get(&s.id) {
                                Some(objects) => {
                                    write_manifest(ctx, region, bucket, s, objects).await.map(|()| {
                                        let mut done = item.clone();
                                        done.shared = true;
                                        Shared::Now(done)
                                    })
                                }
                                None => ec::export(
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
                            },
                        }
                    }
                };
                (item, outcome)
            }
        });
        Ok(bounded(&run.settings, looks).await)
    }

    /// Retention over the schedule's snapshots; an expired snapshot's manifest and objects go
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
        // On-demand snapshots go when their keep ends, whatever the policy.
        let on_demand = on_demand_expired(
            &listing.snapshots,
            &run.namespace,
            &run.schedule.name,
            Stage::Source,
            None,
            now,
        );
        let by_id: BTreeMap<&str, &SnapshotRecord> = listing
            .snapshots
            .iter()
            .map(|s| (s.id.as_str(), s))
            .collect();
        let expired = deletions_with_reasons(plan.delete.iter().cloned(), on_demand);
        let deletions = expired
            .iter()
            .filter_map(|(id, reason)| by_id.get(id.as_str()).map(|s| (*s, *reason)))
            .map(|(s, reason)| {
                let bucket = bucket.as_str();
                let objects: ObjectRefs = listing
                    .exports
                    .manifests
                    .get(&s.id)
                    .map(|(key, _)| (key.clone(), None))
                    .into_iter()
                    .chain(
                        listing
                            .exports
                            .shards
                            .get(&s.id)
                            .into_iter()
                            .flatten()
                            .map(|o| (o.key.clone(), None)),
                    )
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
                    (
                        s.id.clone(),
                        s.protected_resource().to_string(),
                        reason,
                        outcome,
                    )
                }
            });
        let outcomes = bounded(&run.settings, deletions).await;
        let mut deleted = Vec::new();
        let mut failures = Vec::new();
        for (id, resource, reason, outcome) in outcomes {
            match outcome {
                Ok(()) => deleted.push(DeletedSnapshot {
                    region: region.to_string(),
                    snapshot_id: id,
                    reason,
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

    /// Copy every complete, real export not yet complete in a vault region into it,
    /// `call_concurrency` exports and regions at a time. CopyObject finishes the copy in the
    /// call, so nothing is left in flight.
    async fn copy_in(
        &self,
        ctx: &AwsContext,
        run: &DestinationRun,
        now: Timestamp,
    ) -> Result<CopyPass, Error> {
        let from_bucket = source_bucket(&run.namespace, &run.source);
        let prefix = schedule_prefix(&run.namespace, &run.schedule.name);
        let objects = ec::list_objects(ctx, &run.source.region, &from_bucket, &prefix).await?;
        let exports = Exports::of(objects, |o| o.key.as_str());
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
        // Per export: the regions whose vault lacks it.
        let mut wanted: Vec<(&str, &str, Vec<&str>)> = Vec::new();
        for (id, (key, captured)) in &exports.manifests {
            if !real_export(run, id, *captured) {
                continue;
            }
            out.due += 1;
            if floor.is_some_and(|f| *captured < f) {
                out.too_old.push(id.clone());
                continue;
            }
            let missing: Vec<&str> = run
                .destination
                .regions
                .iter()
                .filter(|r| {
                    vaults
                        .get(&r.region)
                        .is_none_or(|v| !v.current.manifests.contains_key(id))
                })
                .map(|r| r.region.as_str())
                .collect();
            if missing.is_empty() {
                out.done.push(id.clone());
            } else {
                wanted.push((id.as_str(), key.as_str(), missing));
            }
        }
        let copies = wanted.into_iter().map(|(id, key, regions)| {
            let from_bucket = from_bucket.as_str();
            let listed = exports
                .shards
                .get(id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let vaults = &vaults;
            async move {
                let manifest = match read_manifest(ctx, run, from_bucket, id, key, listed).await {
                    Ok(m) => m,
                    Err(e) => return vec![(id, None, Err(e))],
                };
                let mut outcomes = Vec::new();
                let mut source = SourceExport {
                    bucket: from_bucket,
                    manifest: &manifest,
                    heads: BTreeMap::new(),
                };
                for region in regions {
                    let held: BTreeSet<String> = vaults
                        .get(region)
                        .and_then(|v| v.current.shards.get(id))
                        .into_iter()
                        .flatten()
                        .map(|v| v.key.clone())
                        .collect();
                    let outcome =
                        copy_export(ctx, run, region, &mut source, &held, self.parts).await;
                    outcomes.push((id, Some(region), outcome));
                }
                outcomes
            }
        });
        let outcomes: Vec<_> = bounded(&run.settings, copies)
            .await
            .into_iter()
            .flatten()
            .collect();
        let mut failed: BTreeSet<&str> = BTreeSet::new();
        let mut copied: BTreeSet<&str> = BTreeSet::new();
        let mut partial: BTreeSet<&str> = BTreeSet::new();
        for (id, region, outcome) in outcomes {
            match outcome {
                Ok(ObjectCopy::Partial { copied, parts }) => {
                    partial.insert(id);
                    out.in_flight.push(PendingCopy {
                        resource_id: resource_of(run, id),
                        snapshot_id: id.to_string(),
                        region: region.unwrap_or_default().to_string(),
                        status: format!("copying in parts ({copied} of {parts})"),
                    });
                }
                Ok(ObjectCopy::Done) => {
                    copied.insert(id);
                    out.copied.push(PendingCopy {
                        resource_id: resource_of(run, id),
                        snapshot_id: id.to_string(),
                        region: region.unwrap_or_default().to_string(),
                        status: "copied".into(),
                    });
                }
                Err(e) => {
                    failed.insert(id);
                    let what = match region {
                        Some(r) => format!("{} ({r})", resource_of(run, id)),
                        None => resource_of(run, id),
                    };
                    out.failures
                        .push(ItemFailure::new(what, FailureStage::CopyIn, &e));
                }
            }
        }
        // A copy is finished when its call returns (a large object's, when its last part is
        // in): those made this look are done too, in every region.
        out.done.extend(
            copied
                .into_iter()
                .filter(|id| !failed.contains(id) && !partial.contains(id))
                .map(str::to_string),
        );
        // The dispatch looks again while a copy in parts is in flight.
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
    /// each copy's lock): every version of an expired export's objects and manifest goes.
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
                .current
                .manifests
                .iter()
                .filter_map(|(id, (_, captured))| vault_record(run, region, id, *captured))
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
            // On-demand exports go when their keep ends, never inside the floor.
            let on_demand = on_demand_expired(
                &records,
                &run.namespace,
                &run.schedule.name,
                Stage::Destination,
                run.destination.retention.days,
                now,
            );
            let expired = deletions_with_reasons(plan.delete.iter().cloned(), on_demand);
            let mut gone: Vec<DeletedSnapshot> = Vec::new();
            for (id, reason) in &expired {
                let refs = vault.versions.get(id).cloned().unwrap_or_default();
                let outcome = match ec::delete_objects(ctx, region, &bucket, &refs).await {
                    Ok(results) => results.into_iter().try_for_each(|(_, r)| r),
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(()) => gone.push(DeletedSnapshot {
                        region: region.to_string(),
                        snapshot_id: id.clone(),
                        reason: *reason,
                    }),
                    Err(e) => failures.push(failure(
                        &format!("{} ({region})", resource_of(run, id)),
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

    async fn schedule_snapshots(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
    ) -> Result<Vec<SnapshotRecord>, Error> {
        Ok(list_source(ctx, run).await?.snapshots)
    }

    async fn schedule_copies(
        &self,
        ctx: &AwsContext,
        run: &DestinationRun,
        region: &str,
    ) -> Result<Vec<SnapshotRecord>, Error> {
        // Vault buckets exist only where the destination keeps copies.
        if !run.destination.regions.iter().any(|r| r.region == region) {
            return Ok(Vec::new());
        }
        let vault = list_vault(ctx, run, region).await?;
        Ok(vault
            .current
            .manifests
            .iter()
            .filter_map(|(id, (_, captured))| vault_record(run, region, id, *captured))
            .collect())
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
    database_of(&run.namespace, &run.schedule.name, id)
}

/// The database an export of `schedule` protects, as its id says.
fn database_of(namespace: &str, schedule: &str, id: &str) -> String {
    if let Some(slot) = parse_slot_id(namespace, schedule, id) {
        return slot.resource;
    }
    id.strip_prefix(&schedule_prefix(namespace, schedule))
        .and_then(|rest| rest.split_once("-od-"))
        .map_or_else(|| id.to_string(), |(resource, _)| resource.to_string())
}

/// Each database's newest capture held in every vault region.
fn vault_coverage(
    run: &DestinationRun,
    local: &BTreeMap<String, Vec<SnapshotRecord>>,
    now: Timestamp,
) -> Coverage {
    let regions = run.destination.regions.len();
    let mut held: BTreeMap<(&str, &str), (usize, Option<Timestamp>)> = BTreeMap::new();
    let mut newest: BTreeMap<String, Option<Timestamp>> = BTreeMap::new();
    for s in local.values().flatten() {
        newest.entry(s.resource_id.clone()).or_insert(None);
        let entry = held
            .entry((s.resource_id.as_str(), s.id.as_str()))
            .or_default();
        entry.0 += 1;
        entry.1 = s.captured_at();
    }
    for ((resource, _), (count, captured)) in held {
        let entry = newest.entry(resource.to_string()).or_insert(None);
        if count >= regions && captured > *entry {
            *entry = captured;
        }
    }
    Coverage::of(&newest, run.schedule.interval.as_signed(), now)
}

/// The manifest of a finished export: its objects as the bucket lists them and the snapshot's
/// capture time, written after them, so that its presence says the export is complete.
async fn write_manifest(
    ctx: &AwsContext,
    region: &str,
    bucket: &str,
    s: &SnapshotRecord,
    objects: &[ExportedObject],
) -> Result<(), Error> {
    // Whole seconds, as the manifest's key says it.
    let Some(captured) = s
        .created
        .and_then(|t| Timestamp::from_second(t.as_second()).ok())
    else {
        return Err(Error::InvalidState {
            resource: s.id.clone(),
            message: "ElastiCache reports no creation time for it; the next look tries again"
                .into(),
        });
    };
    let mut files: Vec<ExportedFile> = objects
        .iter()
        .map(|o| ExportedFile {
            key: o.key.clone(),
            size: o.size,
        })
        .collect();
    files.sort_by(|a, b| a.key.cmp(&b.key));
    let manifest = ExportManifest {
        version: MANIFEST_VERSION,
        snapshot: s.id.clone(),
        cache: s.resource_id.clone(),
        captured,
        objects: files,
        engine: s.engine.clone(),
    };
    let body =
        serde_json::to_vec(&manifest).map_err(|e| Error::internal("an export manifest", e))?;
    ec::put_small_object(ctx, region, bucket, &manifest_key(&s.id, captured), body).await?;
    tracing::info!(snapshot = %s.id, objects = manifest.objects.len(), "export complete");
    Ok(())
}
