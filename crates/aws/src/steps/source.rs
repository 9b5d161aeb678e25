//! Source side: take, share, expire.

use jiff::Timestamp;
use snapcourier_core::config::ResourceFilter;
use snapcourier_core::events::{DeleteOutput, EVENT_VERSION, SourceItem, SourceRun, TakePass};
use snapcourier_core::heartbeat::Heartbeat;
use snapcourier_core::plan::{
    deletions_with_reasons, missing_shares, on_demand_expired, plan_take, source_coverage, to_share,
};
use snapcourier_core::retention::plan_retention;
use snapcourier_core::snapshot::{SnapshotRecord, SnapshotStatus};
use snapcourier_core::tags::{self, OwnershipTags, Stage};
use snapcourier_core::{Error, ItemError};

use super::{Shared, after_deletions, bounded, delete_all, source_item};
use crate::adapter::{SnapshotApi, Started};
use crate::client::AwsContext;

/// Snapshot every covered database that has none in the current slot; report every owned
/// snapshot that still has to be shared.
pub(crate) async fn take<A: SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    run: &SourceRun,
    now: Timestamp,
) -> Result<TakePass, Error> {
    let region = run.source.region.as_str();
    let filter = ResourceFilter::new(&run.schedule, "schedule")?;
    let resources = api.list_resources(ctx, region).await?;
    let snapshots = api.list_snapshots(ctx, region, false).await?;
    let plan = plan_take(run, A::ENGINE, &filter, &resources, &snapshots, now);

    // A database on the AWS managed key gets no snapshot: it could never be shared. One
    // DescribeKey per distinct key (cached), and only for databases that are due.
    let checks = plan.create.iter().map(|p| async move {
        let Some(key) = p.kms_key_id.as_deref() else {
            return Ok(());
        };
        if api.is_aws_managed_key(ctx, key).await? {
            return Err(aws_managed_key(
                A::ENGINE.resource_kind(),
                &p.resource_id,
                key,
                "so snapcourier takes none; after re-encrypting, the next run snapshots it",
            ));
        }
        Ok(())
    });
    let checked: Vec<Result<(), Error>> = bounded(&run.settings, checks).await;
    let mut items: Vec<SourceItem> = Vec::new();
    let mut due = Vec::new();
    for (p, check) in plan.create.iter().zip(checked) {
        match check {
            Ok(()) => due.push(p),
            Err(e) => items.push(errored_item(&p.resource_id, &p.snapshot_id, &e)),
        }
    }

    // Creates go out `call_concurrency` at a time; each is one call (tags included).
    let creates = due.into_iter().map(|p| async move {
        let tags = OwnershipTags {
            namespace: run.namespace.clone(),
            schedule: run.schedule.name.clone(),
            stage: Stage::Source,
            resource: p.resource_id.clone(),
            source_arn: p.resource_arn.clone(),
            source_created: None,
        }
        .to_map();
        match api
            .create_snapshot(ctx, region, &p.resource_id, &p.snapshot_id, &tags)
            .await
        {
            Ok(Started::New(s)) => (Some(s.id.clone()), source_item(&s, false)),
            Ok(Started::AlreadyExists) => (
                None,
                existing_slot_snapshot(api, ctx, run, &p.resource_id, &p.snapshot_id).await,
            ),
            Err(e) => (None, errored_item(&p.resource_id, &p.snapshot_id, &e)),
        }
    });
    let outcomes: Vec<(Option<String>, SourceItem)> = bounded(&run.settings, creates).await;
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
        api_calls: 0, // counted by the dispatcher in steps/mod.rs
    })
}

/// The slot's id is taken. Ours (a retry, or an overlapping run): follow it. Anything else is
/// reported, never touched.
async fn existing_slot_snapshot<A: SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    run: &SourceRun,
    resource: &str,
    id: &str,
) -> SourceItem {
    match api.find_snapshot(ctx, &run.source.region, id).await {
        Ok(Some(s)) if s.is_ours(&run.namespace, &run.schedule.name, Stage::Source) => {
            if let SnapshotStatus::Unusable(status) = &s.status {
                let e = Error::InvalidState {
                    resource: id.to_string(),
                    message: format!("this slot's snapshot of {resource} is `{status}`; delete it so the next run can take it again"),
                };
                return errored_item(resource, id, &e);
            }
            let shared = missing_shares(&s, &run.destination_accounts).is_empty();
            source_item(&s, shared)
        }
        Ok(Some(_)) => errored_item(
            resource,
            id,
            &Error::InvalidState {
                resource: id.to_string(),
                message: format!(
                    "a snapshot with this id exists but does not carry {}={} and schedule {}; snapcourier will not touch it. Rename or delete it",
                    tags::NAMESPACE, run.namespace, run.schedule.name
                ),
            },
        ),
        Ok(None) => errored_item(
            resource,
            id,
            &Error::NotFound {
                resource: id.to_string(),
                message: "the id was taken a moment ago but the snapshot is gone; the next run takes it again".into(),
            },
        ),
        Err(e) => errored_item(resource, id, &e),
    }
}

/// KmsKeyUnusable for a database on the AWS managed `aws/rds` key, whose snapshots cannot be
/// shared with another account; `consequence` says what that means for this step.
fn aws_managed_key(kind: &str, database: &str, key: &str, consequence: &str) -> Error {
    Error::KmsKeyUnusable {
        resource: database.to_string(),
        message: format!(
            "{kind} {database} is encrypted with the AWS managed key {key} (aws/rds), whose snapshots cannot be shared with another account, {consequence}. Re-encrypt the database with a customer managed KMS key whose policy allows the destination accounts (restore a snapshot copy made with that key)"
        ),
    }
}

pub(super) fn errored_item(resource: &str, id: &str, e: &Error) -> SourceItem {
    SourceItem {
        resource_id: resource.to_string(),
        snapshot_id: id.to_string(),
        snapshot_arn: None,
        status: "error".into(),
        shared: false,
        error: Some(ItemError::from(e)),
    }
}

/// One look of the share step: one listing (a call per page), then the shares of the owned
/// snapshots not yet shared with every destination account, `call_concurrency` at a time.
/// Per new snapshot that is two calls (share, record the share) after the one that created
/// it.
pub(crate) async fn share<A: SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    run: &SourceRun,
) -> Result<Vec<(SourceItem, Result<Shared, Error>)>, Error> {
    let listed = api.list_snapshots(ctx, &run.source.region, false).await?;
    let due = to_share(run, &listed);
    let looks = due.into_iter().map(|s| async move {
        let outcome = share_found(api, ctx, run, s.clone()).await;
        (source_item(s, false), outcome)
    });
    Ok(bounded(&run.settings, looks).await)
}

/// Share one owned snapshot as the listing found it, once it is available.
async fn share_found<A: SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    run: &SourceRun,
    s: SnapshotRecord,
) -> Result<Shared, Error> {
    let region = run.source.region.as_str();
    let id = s.id.as_str();
    let mut current = source_item(&s, false);
    match &s.status {
        SnapshotStatus::InProgress(_) => return Ok(Shared::NotYet(current)),
        SnapshotStatus::Unusable(status) => {
            return Err(Error::InvalidState {
                resource: id.to_string(),
                message: format!(
                    "status is `{status}`; it cannot be shared. Delete it so the next run takes a new one"
                ),
            });
        }
        SnapshotStatus::Available => {}
    }
    let missing = missing_shares(&s, &run.destination_accounts);
    if !missing.is_empty() {
        if let Some(key) = s.kms_key_id.as_deref().filter(|_| s.encrypted)
            && api.is_aws_managed_key(ctx, key).await?
        {
            return Err(aws_managed_key(
                A::ENGINE.resource_kind(),
                s.protected_resource(),
                key,
                &format!(
                    "so snapshot {id} cannot be shared; after re-encrypting, the next run snapshots the database again"
                ),
            ));
        }
        // Adding an account that already has access is a no-op for AWS, so there is no
        // describe first: two calls per snapshot (share, record the share).
        api.add_restore_accounts(ctx, region, id, &missing).await?;
        let mut marker = s.shared_with();
        marker.extend(run.destination_accounts.iter().cloned());
        let tag = [(
            tags::SHARED_WITH.to_string(),
            tags::shared_with_value(&marker),
        )]
        .into();
        api.add_tags(ctx, region, &s.arn, &tag).await?;
    }
    current.shared = true;
    tracing::info!(snapshot = id, added = missing.len(), "shared");
    Ok(Shared::Now(current))
}

/// Apply the schedule's retention to owned source snapshots.
pub(crate) async fn delete_source<A: SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    run: &SourceRun,
    now: Timestamp,
    assumed: &[super::Assumed],
) -> Result<DeleteOutput, Error> {
    let region = run.source.region.as_str();
    let snapshots = api.list_snapshots(ctx, region, false).await?;
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
    // On-demand snapshots go when their keep ends, whatever the policy.
    let on_demand = on_demand_expired(
        &snapshots,
        &run.namespace,
        &run.schedule.name,
        Stage::Source,
        None,
        now,
    );
    let deletions = deletions_with_reasons(plan.delete.iter().cloned(), on_demand)
        .into_iter()
        .map(|(id, reason)| (region.to_string(), id, reason));
    let (deleted, failures) = delete_all(api, ctx, &run.settings, deletions).await;
    let remaining = after_deletions(region, snapshots, &deleted);
    let coverage = source_coverage(run, &remaining, now);
    Ok(DeleteOutput {
        version: EVENT_VERSION,
        deleted,
        deleted_count: 0,
        failed: 0,
        kept: plan.keep.len(),
        failures,
        api_calls: 0, // counted by the dispatcher in steps/mod.rs
        heartbeat: Some(Heartbeat::source(run, region, &remaining, now)),
        coverage: Some(coverage),
    })
}

/// An on-demand snapshot of one covered database (`snapcourier snapshot-now`), outside the
/// interval: its id names the second it is taken and the hours it is kept
/// (`naming::on_demand_id`), so the source's and the destinations' retention keep it that
/// long and no interval slot or policy counts it. Refused, before anything is created, for a
/// database the schedule does not cover, a read replica, one that is not available, or one on
/// the AWS managed key.
pub(crate) async fn snapshot_now<A: SnapshotApi>(
    api: &A,
    ctx: &AwsContext,
    run: &SourceRun,
    database: &str,
    keep_hours: u32,
    label: Option<&str>,
    now: Timestamp,
) -> Result<SnapshotRecord, Error> {
    let region = run.source.region.as_str();
    let filter = ResourceFilter::new(&run.schedule, "schedule")?;
    let resources = api.list_resources(ctx, region).await?;
    let r = on_demand_resource(run, A::ENGINE, &filter, &resources, database)?;
    if let Some(key) = r.kms_key_id.as_deref()
        && api.is_aws_managed_key(ctx, key).await?
    {
        return Err(aws_managed_key(
            A::ENGINE.resource_kind(),
            database,
            key,
            "so snapcourier takes none",
        ));
    }
    let (id, tags) = on_demand_snapshot(run, r, keep_hours, label, now);
    match api
        .create_snapshot(ctx, region, database, &id, &tags)
        .await?
    {
        Started::New(s) => Ok(*s),
        // The same second, again (a retried command): that snapshot, if it is ours.
        Started::AlreadyExists => match api.find_snapshot(ctx, region, &id).await? {
            Some(s) if s.is_ours(&run.namespace, &run.schedule.name, Stage::Source) => Ok(s),
            _ => Err(Error::InvalidState {
                resource: id.clone(),
                message: "a snapshot with this id exists and is not ours; try again in a second"
                    .into(),
            }),
        },
    }
}

/// The database `snapshot-now` names, when the schedule may snapshot it now: it exists, the
/// schedule covers it, it is no read replica and it is available. Every refusal comes before
/// anything is created.
pub(super) fn on_demand_resource<'a>(
    run: &SourceRun,
    engine: snapcourier_core::Engine,
    filter: &ResourceFilter,
    resources: &'a [snapcourier_core::snapshot::ResourceRecord],
    database: &str,
) -> Result<&'a snapcourier_core::snapshot::ResourceRecord, Error> {
    let Some(r) = resources.iter().find(|r| r.id == database) else {
        return Err(Error::NotFound {
            resource: database.to_string(),
            message: format!(
                "no {} named {database} in {} {}; check --database",
                engine.resource_kind(),
                run.source.account,
                run.source.region
            ),
        });
    };
    if !engine.covers_engine_name(&r.engine) || !filter.covers(&r.id, &r.tags) {
        return Err(Error::config(
            "--database",
            format!(
                "{database} is not covered by schedule {} (its include, exclude and opt-in tag): snapcourier only snapshots the databases a schedule covers; pick the schedule that covers it with --schedule",
                run.schedule.name
            ),
        ));
    }
    if let Some(primary) = &r.replica_of {
        return Err(Error::config(
            "--database",
            format!("{database} is a read replica of {primary}: snapshot the primary"),
        ));
    }
    if r.status != "available" {
        return Err(Error::InvalidState {
            resource: database.to_string(),
            message: format!(
                "status is `{}`; only an available database can be snapshotted: try again when it is",
                r.status
            ),
        });
    }
    Ok(r)
}

/// An on-demand snapshot's id (the second taken, the hours kept) and its tags: ours, and the
/// operator's label.
pub(super) fn on_demand_snapshot(
    run: &SourceRun,
    r: &snapcourier_core::snapshot::ResourceRecord,
    keep_hours: u32,
    label: Option<&str>,
    now: Timestamp,
) -> (String, std::collections::BTreeMap<String, String>) {
    let id = snapcourier_core::naming::on_demand_id(
        &run.namespace,
        &run.schedule.name,
        &r.id,
        now,
        keep_hours,
    );
    let mut tags = OwnershipTags {
        namespace: run.namespace.clone(),
        schedule: run.schedule.name.clone(),
        stage: Stage::Source,
        resource: r.id.clone(),
        source_arn: r.arn.clone(),
        source_created: None,
    }
    .to_map();
    if let Some(label) = label {
        tags.insert(tags::LABEL.to_string(), label.to_string());
    }
    (id, tags)
}
