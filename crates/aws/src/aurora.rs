//! Aurora DB clusters and their cluster snapshots.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, Tag};
use snapcourier_core::Error;
use snapcourier_core::snapshot::{
    ResourceRecord, SnapshotRecord, SnapshotStatus, arn_account, arn_resource_name,
};

use crate::client::AwsContext;
use crate::errors::{classify, code, is_already_exists};

/// Largest page RDS describe calls accept.
pub const PAGE_SIZE: i32 = 100;

/// What a create or copy call found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    New(Box<SnapshotRecord>),
    /// The deterministic id is taken: an earlier or concurrent run made it.
    AlreadyExists,
}

pub async fn list_clusters(ctx: &AwsContext, region: &str) -> Result<Vec<ResourceRecord>, Error> {
    let clusters: Vec<DbCluster> = ctx
        .rds(region)
        .describe_db_clusters()
        .into_paginator()
        .page_size(PAGE_SIZE)
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify(e, "rds:DescribeDBClusters", region))?;
    Ok(clusters.iter().map(cluster_record).collect())
}

/// Manual cluster snapshots owned by this account (`shared == false`) or shared with it by
/// other accounts (`shared == true`), tags included: one call per page, none per snapshot.
pub async fn list_snapshots(
    ctx: &AwsContext,
    region: &str,
    shared: bool,
) -> Result<Vec<SnapshotRecord>, Error> {
    let request = ctx.rds(region).describe_db_cluster_snapshots();
    let request = if shared {
        request.snapshot_type("shared").include_shared(true)
    } else {
        request.snapshot_type("manual")
    };
    let snapshots: Vec<DbClusterSnapshot> = request
        .into_paginator()
        .page_size(PAGE_SIZE)
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify(e, "rds:DescribeDBClusterSnapshots", region))?;
    Ok(snapshots.iter().map(snapshot_record).collect())
}

/// One snapshot by id (own) or ARN (own or shared with us); `None` when it does not exist.
pub async fn find_snapshot(
    ctx: &AwsContext,
    region: &str,
    id: &str,
) -> Result<Option<SnapshotRecord>, Error> {
    let result = ctx
        .rds(region)
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(id)
        .send()
        .await;
    match result {
        Ok(out) => Ok(out.db_cluster_snapshots().first().map(snapshot_record)),
        Err(e) if code(&e).is_some_and(|c| c.contains("NotFound")) => Ok(None),
        Err(e) => Err(classify(e, "rds:DescribeDBClusterSnapshots", id)),
    }
}

pub async fn create_snapshot(
    ctx: &AwsContext,
    region: &str,
    cluster: &str,
    id: &str,
    tags: &BTreeMap<String, String>,
) -> Result<Started, Error> {
    let result = ctx
        .rds(region)
        .create_db_cluster_snapshot()
        .db_cluster_identifier(cluster)
        .db_cluster_snapshot_identifier(id)
        .set_tags(Some(to_tags(tags)))
        .send()
        .await;
    match result {
        Ok(out) => Ok(out
            .db_cluster_snapshot()
            .map_or(Started::AlreadyExists, |s| {
                Started::New(Box::new(snapshot_record(s)))
            })),
        Err(e) if is_already_exists(&e) => Ok(Started::AlreadyExists),
        Err(e) => Err(classify(e, "rds:CreateDBClusterSnapshot", cluster)),
    }
}

/// Accounts allowed to restore the snapshot (the `restore` attribute).
pub async fn restore_accounts(
    ctx: &AwsContext,
    region: &str,
    id: &str,
) -> Result<BTreeSet<String>, Error> {
    let out = ctx
        .rds(region)
        .describe_db_cluster_snapshot_attributes()
        .db_cluster_snapshot_identifier(id)
        .send()
        .await
        .map_err(|e| classify(e, "rds:DescribeDBClusterSnapshotAttributes", id))?;
    Ok(out
        .db_cluster_snapshot_attributes_result()
        .map(|r| r.db_cluster_snapshot_attributes())
        .unwrap_or_default()
        .iter()
        .filter(|a| a.attribute_name() == Some("restore"))
        .flat_map(|a| a.attribute_values().iter().cloned())
        .collect())
}

pub async fn add_restore_accounts(
    ctx: &AwsContext,
    region: &str,
    id: &str,
    accounts: &BTreeSet<String>,
) -> Result<(), Error> {
    ctx.rds(region)
        .modify_db_cluster_snapshot_attribute()
        .db_cluster_snapshot_identifier(id)
        .attribute_name("restore")
        .set_values_to_add(Some(accounts.iter().cloned().collect()))
        .send()
        .await
        .map_err(|e| classify(e, "rds:ModifyDBClusterSnapshotAttribute", id))?;
    Ok(())
}

pub async fn add_tags(
    ctx: &AwsContext,
    region: &str,
    arn: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), Error> {
    ctx.rds(region)
        .add_tags_to_resource()
        .resource_name(arn)
        .set_tags(Some(to_tags(tags)))
        .send()
        .await
        .map_err(|e| classify(e, "rds:AddTagsToResource", arn))?;
    Ok(())
}

/// Copy a snapshot (by ARN: shared from another account, or ours in another region) into
/// `region` of this account. `kms_key` re-encrypts the copy; RDS rejects it for an
/// unencrypted cluster snapshot, which stays unencrypted.
pub async fn copy_snapshot(
    ctx: &AwsContext,
    region: &str,
    source_arn: &str,
    target_id: &str,
    kms_key: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> Result<Started, Error> {
    let result = ctx
        .rds(region)
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(source_arn)
        .target_db_cluster_snapshot_identifier(target_id)
        .set_kms_key_id(kms_key.map(str::to_string))
        .copy_tags(false)
        .set_tags(Some(to_tags(tags)))
        .send()
        .await;
    match result {
        Ok(out) => Ok(out
            .db_cluster_snapshot()
            .map_or(Started::AlreadyExists, |s| {
                Started::New(Box::new(snapshot_record(s)))
            })),
        Err(e) if is_already_exists(&e) => Ok(Started::AlreadyExists),
        Err(e) => Err(classify(e, "rds:CopyDBClusterSnapshot", target_id)),
    }
}

pub async fn delete_snapshot(ctx: &AwsContext, region: &str, id: &str) -> Result<(), Error> {
    let result = ctx
        .rds(region)
        .delete_db_cluster_snapshot()
        .db_cluster_snapshot_identifier(id)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        // Already gone: the goal of the call is reached.
        Err(e) if code(&e).is_some_and(|c| c.contains("NotFound")) => Ok(()),
        Err(e) => Err(classify(e, "rds:DeleteDBClusterSnapshot", id)),
    }
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

fn cluster_record(c: &DbCluster) -> ResourceRecord {
    ResourceRecord {
        id: c.db_cluster_identifier().unwrap_or_default().to_string(),
        arn: c.db_cluster_arn().unwrap_or_default().to_string(),
        engine: c.engine().unwrap_or_default().to_string(),
        status: c.status().unwrap_or_default().to_string(),
        tags: tag_map(c.tag_list()),
    }
}

pub(crate) fn snapshot_record(s: &DbClusterSnapshot) -> SnapshotRecord {
    let arn = s.db_cluster_snapshot_arn().unwrap_or_default().to_string();
    let identifier = s.db_cluster_snapshot_identifier().unwrap_or_default();
    // A snapshot shared by another account is identified by its ARN.
    let id = if identifier.starts_with("arn:") {
        arn_resource_name(identifier)
    } else {
        identifier
    };
    SnapshotRecord {
        id: id.to_string(),
        owner_account: arn_account(&arn).unwrap_or_default().to_string(),
        resource_id: s.db_cluster_identifier().unwrap_or_default().to_string(),
        status: SnapshotStatus::from_api(s.status().unwrap_or("unknown")),
        created: s.snapshot_create_time().and_then(crate::timestamp),
        encrypted: s.storage_encrypted().unwrap_or(false),
        kms_key_id: s.kms_key_id().map(str::to_string),
        tags: tag_map(s.tag_list()),
        arn,
    }
}
