//! RDS DB instances of every engine and their DB snapshots, plus the helpers the RDS API's
//! two snapshot kinds share (tags, the `restore` attribute).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_rds::types::{DbInstance, DbSnapshot, Tag};
use snapcourier_core::snapshot::{
    ResourceRecord, SnapshotRecord, SnapshotStatus, arn_account, arn_resource_name,
};
use snapcourier_core::{Engine, Error};

use crate::adapter::{CopyRequest, SnapshotApi, Started, all_items};
use crate::client::AwsContext;
use crate::errors::{classify, unless_exists, unless_missing};

/// RDS DB instance snapshots.
#[derive(Debug, Clone, Copy)]
pub struct Rds;

impl SnapshotApi for Rds {
    const ENGINE: Engine = Engine::Rds;
    const ENCRYPTS_ON_COPY: bool = true;

    async fn add_tags(
        &self,
        ctx: &AwsContext,
        region: &str,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        crate::rds::add_tags(ctx, region, arn, tags).await
    }

    /// Stand-alone instances: members of a cluster (Aurora, Multi-AZ DB clusters, DocumentDB,
    /// Neptune) are left out, their data is in cluster snapshots.
    async fn list_resources(
        &self,
        ctx: &AwsContext,
        region: &str,
    ) -> Result<Vec<ResourceRecord>, Error> {
        let instances: Vec<DbInstance> = all_items!(
            ctx.rds(region).describe_db_instances(),
            "rds:DescribeDBInstances",
            region
        )?;
        Ok(instances
            .iter()
            .filter(|i| i.db_cluster_identifier().is_none())
            .map(instance_record)
            .collect())
    }

    async fn list_snapshots(
        &self,
        ctx: &AwsContext,
        region: &str,
        shared: bool,
    ) -> Result<Vec<SnapshotRecord>, Error> {
        let request = ctx.rds(region).describe_db_snapshots();
        let request = if shared {
            request.snapshot_type("shared").include_shared(true)
        } else {
            request.snapshot_type("manual")
        };
        let snapshots: Vec<DbSnapshot> = all_items!(request, "rds:DescribeDBSnapshots", region)?;
        Ok(snapshots.iter().map(snapshot_record).collect())
    }

    async fn find_snapshot(
        &self,
        ctx: &AwsContext,
        region: &str,
        id: &str,
    ) -> Result<Option<SnapshotRecord>, Error> {
        let result = ctx
            .rds(region)
            .describe_db_snapshots()
            .db_snapshot_identifier(id)
            .send()
            .await;
        Ok(unless_missing(result, "rds:DescribeDBSnapshots", id)?
            .and_then(|out| out.db_snapshots().first().map(snapshot_record)))
    }

    async fn create_snapshot(
        &self,
        ctx: &AwsContext,
        region: &str,
        instance: &str,
        id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Started, Error> {
        let result = ctx
            .rds(region)
            .create_db_snapshot()
            .db_instance_identifier(instance)
            .db_snapshot_identifier(id)
            .set_tags(Some(to_tags(tags)))
            .send()
            .await;
        Ok(unless_exists(result, "rds:CreateDBSnapshot", instance)?
            .map_or(Started::AlreadyExists, |out| started(out.db_snapshot())))
    }

    async fn restore_accounts(
        &self,
        ctx: &AwsContext,
        region: &str,
        id: &str,
    ) -> Result<BTreeSet<String>, Error> {
        let out = ctx
            .rds(region)
            .describe_db_snapshot_attributes()
            .db_snapshot_identifier(id)
            .send()
            .await
            .map_err(|e| classify(e, "rds:DescribeDBSnapshotAttributes", id))?;
        Ok(out
            .db_snapshot_attributes_result()
            .map(|r| {
                restore_values(
                    r.db_snapshot_attributes()
                        .iter()
                        .map(|a| (a.attribute_name(), a.attribute_values())),
                )
            })
            .unwrap_or_default())
    }

    async fn add_restore_accounts(
        &self,
        ctx: &AwsContext,
        region: &str,
        id: &str,
        accounts: &BTreeSet<String>,
    ) -> Result<(), Error> {
        ctx.rds(region)
            .modify_db_snapshot_attribute()
            .db_snapshot_identifier(id)
            .attribute_name("restore")
            .set_values_to_add(Some(accounts.iter().cloned().collect()))
            .send()
            .await
            .map_err(|e| classify(e, "rds:ModifyDBSnapshotAttribute", id))?;
        Ok(())
    }

    async fn copy_snapshot(
        &self,
        ctx: &AwsContext,
        region: &str,
        copy: CopyRequest<'_>,
    ) -> Result<Started, Error> {
        let result = ctx
            .rds(region)
            .copy_db_snapshot()
            .source_db_snapshot_identifier(copy.source_arn)
            .target_db_snapshot_identifier(copy.target_id)
            .set_kms_key_id(copy.kms_key.map(str::to_string))
            .set_option_group_name(copy.option_group.map(str::to_string))
            .copy_tags(false)
            .set_tags(Some(to_tags(copy.tags)))
            .send()
            .await;
        Ok(unless_exists(result, "rds:CopyDBSnapshot", copy.target_id)?
            .map_or(Started::AlreadyExists, |out| started(out.db_snapshot())))
    }

    async fn delete_snapshot(&self, ctx: &AwsContext, region: &str, id: &str) -> Result<(), Error> {
        let result = ctx
            .rds(region)
            .delete_db_snapshot()
            .db_snapshot_identifier(id)
            .send()
            .await;
        // Already gone: the goal of the call is reached.
        unless_missing(result, "rds:DeleteDBSnapshot", id).map(|_| ())
    }
}

fn started(s: Option<&DbSnapshot>) -> Started {
    s.map_or(Started::AlreadyExists, |s| {
        Started::New(Box::new(snapshot_record(s)))
    })
}

fn instance_record(i: &DbInstance) -> ResourceRecord {
    ResourceRecord {
        id: i.db_instance_identifier().unwrap_or_default().to_string(),
        arn: i.db_instance_arn().unwrap_or_default().to_string(),
        engine: i.engine().unwrap_or_default().to_string(),
        status: i.db_instance_status().unwrap_or_default().to_string(),
        tags: tag_map(i.tag_list()),
        replica_of: i
            .read_replica_source_db_instance_identifier()
            .or(i.read_replica_source_db_cluster_identifier())
            .map(str::to_string),
        kms_key_id: i
            .kms_key_id()
            .filter(|_| i.storage_encrypted() == Some(true))
            .map(str::to_string),
    }
}

fn snapshot_record(s: &DbSnapshot) -> SnapshotRecord {
    let arn = s.db_snapshot_arn().unwrap_or_default().to_string();
    let identifier = s.db_snapshot_identifier().unwrap_or_default();
    SnapshotRecord {
        id: arn_resource_name(identifier).to_string(),
        owner_account: arn_account(&arn).unwrap_or_default().to_string(),
        resource_id: s.db_instance_identifier().unwrap_or_default().to_string(),
        status: SnapshotStatus::from_api(s.status().unwrap_or("unknown")),
        created: s.snapshot_create_time().and_then(crate::timestamp),
        encrypted: s.encrypted().unwrap_or(false),
        kms_key_id: s.kms_key_id().map(str::to_string),
        tags: tag_map(s.tag_list()),
        option_group: s.option_group_name().map(str::to_string),
        restore_accounts: None,
        source_region: None,
        engine: None,
        arn,
    }
}

pub(crate) fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

pub(crate) fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// The values of the `restore` attribute among a snapshot's attributes.
pub(crate) fn restore_values<'a>(
    attributes: impl Iterator<Item = (Option<&'a str>, &'a [String])>,
) -> BTreeSet<String> {
    attributes
        .filter(|(name, _)| *name == Some("restore"))
        .flat_map(|(_, values)| values.iter().cloned())
        .collect()
}

/// Tag any RDS resource by ARN (cluster and instance snapshots alike).
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

/// One of RDS's account quotas in a region, as `DescribeAccountAttributes` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountQuota {
    /// Such as `ManualClusterSnapshots` or `ManualSnapshots`.
    pub name: String,
    pub used: i64,
    pub max: i64,
}

/// RDS's account quotas in a region (one call).
pub async fn account_quotas(ctx: &AwsContext, region: &str) -> Result<Vec<AccountQuota>, Error> {
    let out = ctx
        .rds(region)
        .describe_account_attributes()
        .send()
        .await
        .map_err(|e| classify(e, "rds:DescribeAccountAttributes", region))?;
    Ok(out
        .account_quotas()
        .iter()
        .map(|q| AccountQuota {
            name: q.account_quota_name().unwrap_or_default().to_string(),
            used: q.used().unwrap_or_default(),
            max: q.max().unwrap_or_default(),
        })
        .collect())
}
