//! Redshift provisioned clusters and their manual snapshots. Sharing is per account
//! (AuthorizeSnapshotAccess), cross-region copies are made by the cluster's own snapshot copy
//! configuration in the source account, and a shared snapshot cannot be copied into another
//! account: these calls are what the Redshift steps need, nothing more.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_redshift::types::{Cluster, Snapshot, Tag};
use snapcourier_core::Error;
use snapcourier_core::snapshot::{ResourceRecord, SnapshotRecord, SnapshotStatus};

use crate::adapter::{Started, all_items};
use crate::client::AwsContext;
use crate::errors::{classify, code, unless_exists, unless_missing};

/// A Redshift cluster with what the copy set-up needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedshiftCluster {
    pub record: ResourceRecord,
    pub encrypted: bool,
    /// The region its snapshot copy configuration copies to, if enabled.
    pub copies_to: Option<String>,
}

/// The partition of a region's ARNs (the one rule, in core).
pub use snapcourier_core::config::partition;

pub async fn list_clusters(
    ctx: &AwsContext,
    region: &str,
    account: &str,
) -> Result<Vec<RedshiftCluster>, Error> {
    let clusters: Vec<Cluster> = all_items!(
        ctx.redshift(region).describe_clusters(),
        "redshift:DescribeClusters",
        region
    )?;
    Ok(clusters
        .iter()
        .map(|c| cluster_record(c, region, account))
        .collect())
}

/// Manual snapshots in a region: the caller's own (`owner == None`), or those of `owner` the
/// caller may restore. Tags and restore access included: one call per page.
pub async fn list_snapshots(
    ctx: &AwsContext,
    region: &str,
    owner: Option<&str>,
) -> Result<Vec<SnapshotRecord>, Error> {
    let snapshots: Vec<Snapshot> = all_items!(
        ctx.redshift(region)
            .describe_cluster_snapshots()
            .snapshot_type("manual")
            .set_owner_account(owner.map(str::to_string)),
        "redshift:DescribeClusterSnapshots",
        region
    )?;
    Ok(snapshots
        .iter()
        .map(|s| snapshot_record(s, region))
        .collect())
}

/// Automated snapshots of the caller's clusters in a region (for `copy_automated`).
pub async fn list_automated(ctx: &AwsContext, region: &str) -> Result<Vec<SnapshotRecord>, Error> {
    let snapshots: Vec<Snapshot> = all_items!(
        ctx.redshift(region)
            .describe_cluster_snapshots()
            .snapshot_type("automated"),
        "redshift:DescribeClusterSnapshots",
        region
    )?;
    Ok(snapshots
        .iter()
        .map(|s| snapshot_record(s, region))
        .collect())
}

/// One manual snapshot by id, own or (with `owner`) shared; `None` when it does not exist.
pub async fn find_snapshot(
    ctx: &AwsContext,
    region: &str,
    id: &str,
    owner: Option<&str>,
) -> Result<Option<SnapshotRecord>, Error> {
    let result = ctx
        .redshift(region)
        .describe_cluster_snapshots()
        .snapshot_identifier(id)
        .set_owner_account(owner.map(str::to_string))
        .send()
        .await;
    Ok(
        unless_missing(result, "redshift:DescribeClusterSnapshots", id)?.and_then(|out| {
            out.snapshots()
                .iter()
                .find(|s| s.snapshot_type() != Some("automated"))
                .map(|s| snapshot_record(s, region))
        }),
    )
}

/// A manual snapshot with a retention period (days, `-1` = indefinitely) and tags.
pub async fn create_snapshot(
    ctx: &AwsContext,
    region: &str,
    cluster: &str,
    id: &str,
    retention_days: i32,
    tags: &BTreeMap<String, String>,
) -> Result<Started, Error> {
    let result = ctx
        .redshift(region)
        .create_cluster_snapshot()
        .cluster_identifier(cluster)
        .snapshot_identifier(id)
        .manual_snapshot_retention_period(retention_days)
        .set_tags(Some(to_tags(tags)))
        .send()
        .await;
    Ok(
        unless_exists(result, "redshift:CreateClusterSnapshot", cluster)?
            .map_or(Started::AlreadyExists, |out| {
                started(out.snapshot(), region)
            }),
    )
}

/// A manual copy of a snapshot in the same region (the API takes no tags: tag it after).
pub async fn copy_snapshot(
    ctx: &AwsContext,
    region: &str,
    source: &SnapshotRecord,
    target_id: &str,
    retention_days: i32,
) -> Result<Started, Error> {
    let result = ctx
        .redshift(region)
        .copy_cluster_snapshot()
        .source_snapshot_identifier(&source.id)
        .source_snapshot_cluster_identifier(&source.resource_id)
        .target_snapshot_identifier(target_id)
        .manual_snapshot_retention_period(retention_days)
        .send()
        .await;
    Ok(
        unless_exists(result, "redshift:CopyClusterSnapshot", target_id)?
            .map_or(Started::AlreadyExists, |out| {
                started(out.snapshot(), region)
            }),
    )
}

pub async fn add_tags(
    ctx: &AwsContext,
    region: &str,
    arn: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), Error> {
    ctx.redshift(region)
        .create_tags()
        .resource_name(arn)
        .set_tags(Some(to_tags(tags)))
        .send()
        .await
        .map_err(|e| classify(e, "redshift:CreateTags", arn))?;
    Ok(())
}

/// Let `account` restore the snapshot. Already authorized counts as done.
pub async fn authorize(
    ctx: &AwsContext,
    region: &str,
    snapshot: &SnapshotRecord,
    account: &str,
) -> Result<(), Error> {
    let result = ctx
        .redshift(region)
        .authorize_snapshot_access()
        .snapshot_identifier(&snapshot.id)
        .snapshot_cluster_identifier(&snapshot.resource_id)
        .account_with_restore_access(account)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if code(&e).is_some_and(|c| c.starts_with("AuthorizationAlreadyExists")) => Ok(()),
        Err(e) => Err(classify(
            e,
            "redshift:AuthorizeSnapshotAccess",
            &snapshot.id,
        )),
    }
}

/// Withdraw `account`'s restore access. Not authorized counts as done.
pub async fn revoke(
    ctx: &AwsContext,
    region: &str,
    snapshot: &SnapshotRecord,
    account: &str,
) -> Result<(), Error> {
    let result = ctx
        .redshift(region)
        .revoke_snapshot_access()
        .snapshot_identifier(&snapshot.id)
        .snapshot_cluster_identifier(&snapshot.resource_id)
        .account_with_restore_access(account)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if code(&e).is_some_and(|c| c.starts_with("AuthorizationNotFound")) => Ok(()),
        Err(e) => Err(classify(e, "redshift:RevokeSnapshotAccess", &snapshot.id)),
    }
}

/// Delete a manual snapshot; already gone counts as deleted. Redshift refuses while other
/// accounts can restore it: revoke first.
pub async fn delete_snapshot(
    ctx: &AwsContext,
    region: &str,
    snapshot: &SnapshotRecord,
) -> Result<(), Error> {
    let result = ctx
        .redshift(region)
        .delete_cluster_snapshot()
        .snapshot_identifier(&snapshot.id)
        .snapshot_cluster_identifier(&snapshot.resource_id)
        .send()
        .await;
    // Already gone: the goal of the call is reached.
    unless_missing(result, "redshift:DeleteClusterSnapshot", &snapshot.id).map(|_| ())
}

/// Whether the snapshot copy grant exists in `region`.
pub async fn copy_grant_exists(ctx: &AwsContext, region: &str, name: &str) -> Result<bool, Error> {
    let result = ctx
        .redshift(region)
        .describe_snapshot_copy_grants()
        .snapshot_copy_grant_name(name)
        .send()
        .await;
    Ok(
        unless_missing(result, "redshift:DescribeSnapshotCopyGrants", name)?
            .is_some_and(|out| !out.snapshot_copy_grants().is_empty()),
    )
}

/// Create the snapshot copy grant for `kms_key` in `region`; one that exists counts as done.
pub async fn create_copy_grant(
    ctx: &AwsContext,
    region: &str,
    name: &str,
    kms_key: &str,
) -> Result<(), Error> {
    let result = ctx
        .redshift(region)
        .create_snapshot_copy_grant()
        .snapshot_copy_grant_name(name)
        .kms_key_id(kms_key)
        .send()
        .await;
    unless_exists(result, "redshift:CreateSnapshotCopyGrant", name).map(|_| ())
}

/// Turn on the cluster's cross-region snapshot copy to `destination`.
pub async fn enable_copy(
    ctx: &AwsContext,
    region: &str,
    cluster: &str,
    destination: &str,
    manual_retention_days: i32,
    grant: Option<&str>,
) -> Result<(), Error> {
    ctx.redshift(region)
        .enable_snapshot_copy()
        .cluster_identifier(cluster)
        .destination_region(destination)
        .manual_snapshot_retention_period(manual_retention_days)
        .set_snapshot_copy_grant_name(grant.map(str::to_string))
        .send()
        .await
        .map_err(|e| classify(e, "redshift:EnableSnapshotCopy", cluster))?;
    Ok(())
}

fn started(s: Option<&Snapshot>, region: &str) -> Started {
    s.map_or(Started::AlreadyExists, |s| {
        Started::New(Box::new(snapshot_record(s, region)))
    })
}

fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn cluster_record(c: &Cluster, region: &str, account: &str) -> RedshiftCluster {
    let id = c.cluster_identifier().unwrap_or_default();
    RedshiftCluster {
        record: ResourceRecord {
            id: id.to_string(),
            arn: format!(
                "arn:{}:redshift:{region}:{account}:cluster:{id}",
                partition(region)
            ),
            engine: "redshift".into(),
            status: c.cluster_status().unwrap_or_default().to_string(),
            tags: tag_map(c.tags()),
            replica_of: None,
            kms_key_id: c
                .kms_key_id()
                .filter(|_| c.encrypted() == Some(true))
                .map(str::to_string),
        },
        encrypted: c.encrypted().unwrap_or(false),
        copies_to: c
            .cluster_snapshot_copy_status()
            .and_then(|s| s.destination_region())
            .map(str::to_string),
    }
}

fn snapshot_record(s: &Snapshot, region: &str) -> SnapshotRecord {
    let id = s.snapshot_identifier().unwrap_or_default().to_string();
    let cluster = s.cluster_identifier().unwrap_or_default().to_string();
    let owner = s.owner_account().unwrap_or_default().to_string();
    let arn = s.snapshot_arn().map_or_else(
        || {
            format!(
                "arn:{}:redshift:{region}:{owner}:snapshot:{cluster}/{id}",
                partition(region)
            )
        },
        str::to_string,
    );
    SnapshotRecord {
        status: SnapshotStatus::from_api(s.status().unwrap_or("unknown")),
        created: s.snapshot_create_time().and_then(crate::timestamp),
        encrypted: s.encrypted().unwrap_or(false),
        kms_key_id: s.kms_key_id().map(str::to_string),
        tags: tag_map(s.tags()),
        option_group: None,
        restore_accounts: Some(
            s.accounts_with_restore_access()
                .iter()
                .filter_map(|a| a.account_id().map(str::to_string))
                .collect::<BTreeSet<String>>(),
        ),
        source_region: s.source_region().map(str::to_string),
        engine: None,
        id,
        arn,
        owner_account: owner,
        resource_id: cluster,
    }
}
