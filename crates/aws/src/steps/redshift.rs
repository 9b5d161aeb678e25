//! Redshift: the same stages with the engine's own mechanics. The source takes manual
//! snapshots (with a retention period as a safety net) or copies the newest automated one,
//! turns on the cluster's cross-region snapshot copy, authorizes every destination account on
//! the snapshot and on its copy in the other region, and revokes before it deletes. A
//! destination cannot copy a shared Redshift snapshot into its own account: it verifies that
//! every expected share is visible and available to it instead.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use snapcourier_core::config::{REDSHIFT_COPY_GRANT_PREFIX, ResourceFilter};
use snapcourier_core::coverage::Coverage;
use snapcourier_core::events::{
    CopyPass, DeleteOutput, DeletedSnapshot, DeletionReason, DestinationRun, EVENT_VERSION,
    FailureStage, SkippedResource, SourceItem, SourceRun, TakePass,
};
use snapcourier_core::heartbeat::{Heartbeat, Side};
use snapcourier_core::looks::NextLook;
use snapcourier_core::naming::{schedule_prefix, snapshot_id};
use snapcourier_core::plan::{
    PendingCopy, PlannedSnapshot, missing_shares, plan_take, source_coverage, to_share,
};
use snapcourier_core::retention::plan_retention;
use snapcourier_core::snapshot::{ResourceRecord, SnapshotRecord, SnapshotStatus};
use snapcourier_core::tags::{self, OwnershipTags, Stage};
use snapcourier_core::{Engine, Error};

use super::source::errored_item;
use super::{Shared, after_deletions, bounded, failure, source_item};
use crate::adapter::Started;
use crate::client::AwsContext;
use crate::redshift::{self, RedshiftCluster};

/// Only the source account's own snapshots: AWS documents that a describe without
/// OwnerAccount returns the caller's, but hints that shares may appear too, and a share from
/// another account can carry any tags. snapcourier never acts on what it does not own.
fn owned_by(snapshots: Vec<SnapshotRecord>, run: &SourceRun) -> Vec<SnapshotRecord> {
    snapshots
        .into_iter()
        .filter(|s| s.owner_account == run.source.account)
        .collect()
}

fn grant_name(namespace: &str) -> String {
    format!("{REDSHIFT_COPY_GRANT_PREFIX}{namespace}")
}

/// The source-stage tags of a snapshot of `resource` (ARN `arn`) captured at `captured`.
fn ownership(
    run: &SourceRun,
    resource: &str,
    arn: &str,
    captured: Option<Timestamp>,
) -> OwnershipTags {
    OwnershipTags {
        namespace: run.namespace.clone(),
        schedule: run.schedule.name.clone(),
        stage: Stage::Source,
        resource: resource.to_string(),
        source_arn: arn.to_string(),
        source_created: captured,
    }
}

/// Turns on each cluster's cross-region snapshot copy to the destinations' other region,
/// creating the copy grant once per run when an encrypted cluster needs it.
struct CopySetup<'a> {
    run: &'a SourceRun,
    target: Option<&'a str>,
    grant_ready: bool,
}

impl CopySetup<'_> {
    async fn ensure(&mut self, ctx: &AwsContext, cluster: &RedshiftCluster) -> Result<(), Error> {
        let Some(target) = self.target else {
            return Ok(());
        };
        let id = cluster.record.id.as_str();
        match cluster.copies_to.as_deref() {
            Some(r) if r == target => return Ok(()),
            Some(other) => {
                return Err(Error::InvalidState {
                    resource: id.to_string(),
                    message: format!(
                        "this cluster's cross-region snapshot copy goes to {other}, but the destinations keep Redshift snapshots in {target}; snapcourier does not change a copy configuration it did not make. Disable it (aws redshift disable-snapshot-copy --cluster-identifier {id}) or exclude the cluster, and the next run enables copy to {target}"
                    ),
                });
            }
            None => {}
        }
        let run = self.run;
        let grant = if cluster.encrypted {
            let Some(key) = run.source.redshift_copy_kms_key.as_deref() else {
                return Err(Error::config(
                    "source.redshift_copy_kms_key",
                    format!(
                        "required: Redshift cluster {id} is encrypted, and copying its snapshots to {target} needs a KMS key of account {} in {target} (snapcourier creates the snapshot copy grant {} for it)",
                        run.source.account,
                        grant_name(&run.namespace)
                    ),
                ));
            };
            let name = grant_name(&run.namespace);
            if !self.grant_ready {
                if !redshift::copy_grant_exists(ctx, target, &name).await? {
                    redshift::create_copy_grant(ctx, target, &name, key).await?;
                }
                self.grant_ready = true;
            }
            Some(name)
        } else {
            None
        };
        redshift::enable_copy(
            ctx,
            &run.source.region,
            id,
            target,
            run.schedule.retention.redshift_safety_net_days(),
            grant.as_deref(),
        )
        .await?;
        tracing::info!(
            cluster = id,
            to = target,
            "cross-region snapshot copy enabled"
        );
        Ok(())
    }
}

pub(crate) async fn take(
    ctx: &AwsContext,
    run: &SourceRun,
    now: Timestamp,
) -> Result<TakePass, Error> {
    let region = run.source.region.as_str();
    let filter = ResourceFilter::new(&run.schedule, "schedule")?;
    let clusters = redshift::list_clusters(ctx, region, &run.source.account).await?;
    let records: Vec<ResourceRecord> = clusters.iter().map(|c| c.record.clone()).collect();
    let snapshots = owned_by(redshift::list_snapshots(ctx, region, None).await?, run);
    let plan = plan_take(run, Engine::Redshift, &filter, &records, &snapshots, now);
    let copy_automated = run.schedule.redshift.is_some_and(|r| r.copy_automated);
    let automated = if copy_automated && !plan.create.is_empty() {
        redshift::list_automated(ctx, region).await?
    } else {
        Vec::new()
    };
    let retention = run.schedule.retention.redshift_safety_net_days();
    let mut setup = CopySetup {
        run,
        target: run.redshift_copy_region(),
        grant_ready: false,
    };

    let mut items: Vec<SourceItem> = Vec::new();
    let mut created = Vec::new();
    let mut skipped = plan.skipped;
    for p in &plan.create {
        let Some(cluster) = clusters.iter().find(|c| c.record.id == p.resource_id) else {
            continue;
        };
        // Copy first, snapshot second: only snapshots made after enabling are copied.
        if let Err(e) = setup.ensure(ctx, cluster).await {
            items.push(errored_item(&p.resource_id, &p.snapshot_id, &e));
            continue;
        }
        let (id, result) = if copy_automated {
            match newest_uncopied(run, &p.resource_id, &automated, &snapshots) {
                Err(reason) => {
                    skipped.push(SkippedResource {
                        resource_id: p.resource_id.clone(),
                        reason,
                    });
                    continue;
                }
                Ok(auto) => {
                    let captured = auto.created.unwrap_or(now);
                    let id =
                        snapshot_id(&run.namespace, &run.schedule.name, &p.resource_id, captured);
                    let result = copy_and_tag(ctx, run, cluster, auto, &id, retention).await;
                    (id, result)
                }
            }
        } else {
            let tags = ownership(run, &cluster.record.id, &cluster.record.arn, None).to_map();
            let result = redshift::create_snapshot(
                ctx,
                region,
                &p.resource_id,
                &p.snapshot_id,
                retention,
                &tags,
            )
            .await;
            (p.snapshot_id.clone(), result)
        };
        let planned = PlannedSnapshot {
            snapshot_id: id,
            ..p.clone()
        };
        items.push(match result {
            Ok(Started::New(s)) => {
                created.push(s.id.clone());
                source_item(&s, false)
            }
            Ok(Started::AlreadyExists) => existing(ctx, run, &planned, copy_automated).await,
            Err(e) => errored_item(&p.resource_id, &planned.snapshot_id, &e),
        });
    }
    for s in &plan.follow {
        if !items.iter().any(|i| i.snapshot_id == s.id) {
            items.push(source_item(s, false));
        }
    }
    Ok(TakePass {
        overlapping_execution: None,
        items,
        skipped,
        created,
        api_calls: 0,
    })
}

/// The cluster's newest available automated snapshot, unless it is no newer than what this
/// schedule already holds; otherwise why nothing is copied.
fn newest_uncopied<'a>(
    run: &SourceRun,
    cluster: &str,
    automated: &'a [SnapshotRecord],
    owned: &[SnapshotRecord],
) -> Result<&'a SnapshotRecord, String> {
    let newest = automated
        .iter()
        .filter(|a| a.resource_id == cluster && a.status.is_available())
        .max_by_key(|a| a.created)
        .ok_or_else(|| {
            "has no available automated snapshot to copy (automated snapshots turned off? set redshift.copy_automated: false to take manual ones)".to_string()
        })?;
    let held = owned
        .iter()
        .filter(|s| s.is_ours(&run.namespace, &run.schedule.name, Stage::Source))
        .filter(|s| s.protected_resource() == cluster)
        .filter_map(SnapshotRecord::captured_at)
        .max();
    match (held, newest.created) {
        (Some(held), Some(auto)) if held >= auto => Err(format!(
            "no automated snapshot newer than the last copy (captured {held}); the next one is copied when Redshift takes it"
        )),
        _ => Ok(newest),
    }
}

/// A manual copy of an automated snapshot, then our tags (the copy API takes none).
async fn copy_and_tag(
    ctx: &AwsContext,
    run: &SourceRun,
    cluster: &RedshiftCluster,
    auto: &SnapshotRecord,
    id: &str,
    retention: i32,
) -> Result<Started, Error> {
    let region = run.source.region.as_str();
    let started = redshift::copy_snapshot(ctx, region, auto, id, retention).await?;
    if let Started::New(copy) = &started {
        let tags = ownership(run, &cluster.record.id, &cluster.record.arn, auto.created).to_map();
        redshift::add_tags(ctx, region, &copy.arn, &tags).await?;
    }
    Ok(started)
}

/// The id is taken. Ours: follow it. A copy of an automated snapshot whose tagging was cut
/// short (same id, same cluster, no snapcourier tags at all): adopt it. Anything else is
/// reported, never touched.
async fn existing(
    ctx: &AwsContext,
    run: &SourceRun,
    p: &PlannedSnapshot,
    copy_automated: bool,
) -> SourceItem {
    let region = run.source.region.as_str();
    let id = p.snapshot_id.as_str();
    let found = match redshift::find_snapshot(ctx, region, id, None).await {
        Ok(found) => found.filter(|s| s.owner_account == run.source.account),
        Err(e) => return errored_item(&p.resource_id, id, &e),
    };
    match found {
        Some(s) if s.is_ours(&run.namespace, &run.schedule.name, Stage::Source) => {
            let shared = missing_shares(&s, &run.destination_accounts).is_empty();
            source_item(&s, shared)
        }
        Some(s)
            if copy_automated
                && s.resource_id == p.resource_id
                && !s.tags.keys().any(|k| k.starts_with(tags::PREFIX)) =>
        {
            let tags = ownership(run, &p.resource_id, &p.resource_arn, s.created).to_map();
            match redshift::add_tags(ctx, region, &s.arn, &tags).await {
                Ok(()) => source_item(&s, false),
                Err(e) => errored_item(&p.resource_id, id, &e),
            }
        }
        Some(_) => errored_item(
            &p.resource_id,
            id,
            &Error::InvalidState {
                resource: id.to_string(),
                message: format!(
                    "a snapshot with this id exists but does not carry {}={} and schedule {}; snapcourier will not touch it. Rename or delete it",
                    tags::NAMESPACE,
                    run.namespace,
                    run.schedule.name
                ),
            },
        ),
        None => errored_item(
            &p.resource_id,
            id,
            &Error::NotFound {
                resource: id.to_string(),
                message: "the id was taken a moment ago but the snapshot is gone; the next run takes it again".into(),
            },
        ),
    }
}

fn check_usable(s: &SnapshotRecord, region: &str) -> Result<bool, Error> {
    match &s.status {
        SnapshotStatus::Available => Ok(true),
        SnapshotStatus::InProgress(_) => Ok(false),
        SnapshotStatus::Unusable(status) => Err(Error::InvalidState {
            resource: s.id.clone(),
            message: format!(
                "status in {region} is `{status}`; it cannot be shared. Delete it so the next run takes a new one"
            ),
        }),
    }
}

/// One look of the share step: list the owned snapshots here and in the copy region (a call
/// per page each), then authorize every destination account on each snapshot not yet shared
/// and, once Redshift has copied it, on its copy (tagging the copy as ours first).
pub(crate) async fn share(
    ctx: &AwsContext,
    run: &SourceRun,
) -> Result<Vec<(SourceItem, Result<Shared, Error>)>, Error> {
    let region = run.source.region.as_str();
    let listed = owned_by(redshift::list_snapshots(ctx, region, None).await?, run);
    let due = to_share(run, &listed);
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let copies: BTreeMap<String, SnapshotRecord> = match run.redshift_copy_region() {
        Some(copy_region) => owned_by(redshift::list_snapshots(ctx, copy_region, None).await?, run)
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect(),
        None => BTreeMap::new(),
    };
    let looks = due.into_iter().map(|s| {
        let copy = copies.get(&s.id).cloned();
        async move {
            let outcome = share_found(ctx, run, s.clone(), copy).await;
            (source_item(s, false), outcome)
        }
    });
    Ok(bounded(&run.settings, looks).await)
}

/// Share one owned snapshot and its copy in the copy region (`copy`: as that region's listing
/// found it). Shared when both are; the shared-with tag on the source snapshot then records
/// it, so later runs call nothing.
async fn share_found(
    ctx: &AwsContext,
    run: &SourceRun,
    s: SnapshotRecord,
    copy: Option<SnapshotRecord>,
) -> Result<Shared, Error> {
    let region = run.source.region.as_str();
    let id = s.id.as_str();
    let mut current = source_item(&s, false);
    if !check_usable(&s, region)? {
        return Ok(Shared::NotYet(current));
    }
    let missing = missing_shares(&s, &run.destination_accounts);
    authorize_missing(ctx, region, &s, &missing).await?;
    if let Some(copy_region) = run.redshift_copy_region() {
        let Some(copy) = copy else {
            current.status = format!("waiting for Redshift's copy in {copy_region}");
            return Ok(Shared::NotYet(current));
        };
        if copy.source_region.as_deref() != Some(region) || copy.resource_id != s.resource_id {
            return Err(Error::InvalidState {
                resource: id.to_string(),
                message: format!(
                    "a snapshot with this id in {copy_region} is not Redshift's copy of ours (cluster {}, from {}); snapcourier will not touch it",
                    copy.resource_id,
                    copy.source_region.as_deref().unwrap_or("this region")
                ),
            });
        }
        if !copy.is_owned_by(&run.namespace) {
            if copy.tags.contains_key(tags::NAMESPACE) {
                return Err(Error::InvalidState {
                    resource: id.to_string(),
                    message: format!(
                        "the copy in {copy_region} carries another namespace's tag; snapcourier will not touch it"
                    ),
                });
            }
            let mut ours = s.tags.clone();
            ours.remove(tags::SHARED_WITH);
            redshift::add_tags(ctx, copy_region, &copy.arn, &ours).await?;
        }
        if !check_usable(&copy, copy_region)? {
            current.status = format!(
                "Redshift's copy in {copy_region} is {}",
                copy.status.as_str()
            );
            return Ok(Shared::NotYet(current));
        }
        authorize_missing(ctx, copy_region, &copy, &missing).await?;
    }
    let mut marker = s.shared_with();
    marker.extend(run.destination_accounts.iter().cloned());
    let tag = [(
        tags::SHARED_WITH.to_string(),
        tags::shared_with_value(&marker),
    )]
    .into();
    redshift::add_tags(ctx, region, &s.arn, &tag).await?;
    current.shared = true;
    tracing::info!(snapshot = id, added = missing.len(), "shared");
    Ok(Shared::Now(current))
}

async fn authorize_missing(
    ctx: &AwsContext,
    region: &str,
    s: &SnapshotRecord,
    wanted: &BTreeSet<String>,
) -> Result<(), Error> {
    let have = s.restore_accounts.clone().unwrap_or_default();
    for account in wanted.difference(&have) {
        redshift::authorize(ctx, region, s, account).await?;
    }
    Ok(())
}

/// Apply the schedule's retention in the source region and to the copies in the copy region;
/// each expired snapshot's restore access is revoked first (Redshift refuses otherwise).
pub(crate) async fn delete_source(
    ctx: &AwsContext,
    run: &SourceRun,
    now: Timestamp,
    assumed: &[super::Assumed],
) -> Result<DeleteOutput, Error> {
    let mut regions = vec![run.source.region.as_str()];
    regions.extend(run.redshift_copy_region());
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    let mut kept = 0;
    let mut heartbeat = None;
    let mut coverage = None;
    for region in regions {
        let snapshots = owned_by(redshift::list_snapshots(ctx, region, None).await?, run);
        let candidates = super::candidates_in(
            &snapshots,
            &run.namespace,
            &run.schedule.name,
            Stage::Source,
            now,
            assumed,
            region,
        );
        let plan = plan_retention(&run.schedule.retention, &candidates, now);
        kept += plan.keep.len();
        for id in &plan.delete {
            let Some(s) = snapshots.iter().find(|s| &s.id == id) else {
                continue;
            };
            match revoke_and_delete(ctx, region, s).await {
                Ok(()) => deleted.push(DeletedSnapshot {
                    region: region.to_string(),
                    snapshot_id: id.clone(),
                    reason: DeletionReason::Expired,
                }),
                Err(e) => failures.push(failure(id, FailureStage::Delete, &e)),
            }
        }
        if region == run.source.region {
            let remaining = after_deletions(region, snapshots, &deleted);
            heartbeat = Some(Heartbeat::source(run, region, &remaining, now));
            // A snapshot counts as protected once shared in both regions (the shared-with
            // marker is written then).
            coverage = Some(source_coverage(run, &remaining, now));
        }
    }
    Ok(DeleteOutput {
        version: EVENT_VERSION,
        deleted,
        deleted_count: 0,
        failed: 0,
        kept,
        failures,
        api_calls: 0,
        heartbeat,
        coverage,
    })
}

async fn revoke_and_delete(
    ctx: &AwsContext,
    region: &str,
    s: &SnapshotRecord,
) -> Result<(), Error> {
    for account in s.restore_accounts.iter().flatten() {
        redshift::revoke(ctx, region, s, account).await?;
    }
    redshift::delete_snapshot(ctx, region, s).await
}

/// Destination regions other than the source region: where Redshift's copies must be seen.
fn copy_regions(run: &DestinationRun) -> Vec<&str> {
    run.destination
        .regions
        .iter()
        .map(|r| r.region.as_str())
        .filter(|r| *r != run.source.region)
        .collect()
}

/// The destination's copy-in for Redshift: for each database, the newest snapshot the source
/// shares must be visible here and, in every other destination region, its copy too. Shares
/// seen everywhere are done (`verified`); the rest are in flight (the source cluster's own
/// copy is on its way) and the run looks again; a database whose newest share is older than
/// two intervals is reported as failed.
pub(crate) async fn verify_shares(
    ctx: &AwsContext,
    run: &DestinationRun,
    now: Timestamp,
) -> Result<CopyPass, Error> {
    let filter = ResourceFilter::new(&run.schedule, "schedule")?;
    let prefix = schedule_prefix(&run.namespace, &run.schedule.name);
    let owner = run.source.account.as_str();
    let relevant = |s: &SnapshotRecord| {
        s.owner_account == owner && s.id.starts_with(&prefix) && filter.matches_id(&s.resource_id)
    };
    let shared = redshift::list_snapshots(ctx, &run.source.region, Some(owner)).await?;
    let mut newest: BTreeMap<&str, &SnapshotRecord> = BTreeMap::new();
    for s in shared
        .iter()
        .filter(|s| relevant(s) && s.status.is_available())
    {
        let slot = newest.entry(s.resource_id.as_str()).or_insert(s);
        if s.created > slot.created {
            *slot = s;
        }
    }
    // The heartbeat: per region, the newest share restorable there (nothing changes in AWS
    // during a Redshift destination run, so this is also the state at its end).
    let newest_in = |list: &[SnapshotRecord]| {
        list.iter()
            .filter(|s| relevant(s) && s.status.is_available())
            .filter_map(SnapshotRecord::captured_at)
            .max()
    };
    let mut protected = BTreeMap::from([(run.source.region.clone(), newest_in(&shared))]);
    let mut elsewhere: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for region in copy_regions(run) {
        let listed = redshift::list_snapshots(ctx, region, Some(owner)).await?;
        protected.insert(region.to_string(), newest_in(&listed));
        let seen = listed
            .into_iter()
            .filter(|s| relevant(s) && s.status.is_available())
            .map(|s| s.id)
            .collect();
        elsewhere.insert(region, seen);
    }
    let stale_after = run.schedule.interval.as_signed() * 2 + SignedDuration::from_hours(1);
    let mut in_flight = Vec::new();
    let mut failures = Vec::new();
    let mut verified = Vec::new();
    for s in newest.values() {
        let missing: Vec<&str> = elsewhere
            .iter()
            .filter(|(_, ids)| !ids.contains(&s.id))
            .map(|(r, _)| *r)
            .collect();
        if s.created
            .is_some_and(|c| now.duration_since(c) > stale_after)
        {
            let err = Error::NotFound {
                resource: s.resource_id.clone(),
                message: format!(
                    "the newest snapshot of {} that account {owner} shares with this account is {} (taken {}), older than two intervals of schedule {}; check the source side's executions",
                    s.resource_id,
                    s.id,
                    s.created.map(|c| c.to_string()).unwrap_or_default(),
                    run.schedule.name
                ),
            };
            failures.push(failure(&s.resource_id, FailureStage::Verify, &err));
        } else if missing.is_empty() {
            verified.push(s.id.clone());
        } else {
            // The source cluster's own copy into the other region is still on its way.
            for region in missing {
                in_flight.push(PendingCopy {
                    resource_id: s.resource_id.clone(),
                    snapshot_id: s.id.clone(),
                    region: region.to_string(),
                    status: format!("not yet visible in {region}"),
                });
            }
        }
    }
    // Per database, the newest share visible and available here and in every copy region.
    let mut protected_by_db: BTreeMap<String, Option<Timestamp>> =
        newest.keys().map(|db| (db.to_string(), None)).collect();
    for s in shared
        .iter()
        .filter(|s| relevant(s) && s.status.is_available())
        .filter(|s| elsewhere.values().all(|ids| ids.contains(&s.id)))
    {
        if let (Some(slot), Some(at)) = (protected_by_db.get_mut(&s.resource_id), s.captured_at()) {
            *slot = Some(slot.map_or(at, |t| t.max(at)));
        }
    }
    let coverage = Coverage::of(&protected_by_db, run.schedule.interval.as_signed(), now);
    Ok(CopyPass {
        overlapping_execution: None,
        copied: Vec::new(),
        due: newest.len(),
        done: verified,
        started: Vec::new(),
        in_flight,
        waiting: Vec::new(),
        regional_wanted: 0,
        too_old: Vec::new(),
        failures,
        copies_in_flight: 0,
        next: NextLook::Finished, // decided by the dispatcher in steps/mod.rs
        verifies_only: true,
        coverage: Some(coverage),
        heartbeat: Some(Heartbeat::from_regions(
            Side::Destination,
            &run.schedule.name,
            protected,
            now,
        )),
        api_calls: 0,
    })
}
