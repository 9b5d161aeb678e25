//! Aurora DB clusters and their cluster snapshots.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot};
use snapcourier_core::snapshot::{
    ResourceRecord, SnapshotRecord, SnapshotStatus, arn_account, arn_resource_name,
};
use snapcourier_core::{Engine, Error};

use crate::adapter::{CopyRequest, SnapshotApi, Started, all_items};
use crate::client::AwsContext;
use crate::errors::{classify, unless_exists, unless_missing};
use crate::rds::{restore_values, tag_map, to_tags};

/// Aurora cluster snapshots through the RDS API.
#[derive(Debug, Clone, Copy)]
pub struct Aurora;

impl SnapshotApi for Aurora {
    const ENGINE: Engine = Engine::Aurora;
    const ENCRYPTS_ON_COPY: bool = false;

    async fn add_tags(
        &self,
        ctx: &AwsContext,
        region: &str,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        crate::rds::add_tags(ctx, region, arn, tags).await
    }

    async fn list_resources(
        &self,
        ctx: &AwsContext,
        region: &str,
    ) -> Result<Vec<ResourceRecord>, Error> {
        let clusters: Vec<DbCluster> = all_items!(
            ctx.rds(region).describe_db_clusters(),
            "rds:DescribeDBClusters",
            region
        )?;
        Ok(clusters.iter().map(cluster_record).collect())
    }

    async fn list_snapshots(
        &self,
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
        let snapshots: Vec<DbClusterSnapshot> =
            all_items!(request, "rds:DescribeDBClusterSnapshots", region)?;
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
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await;
        Ok(
            unless_missing(result, "rds:DescribeDBClusterSnapshots", id)?
                .and_then(|out| out.db_cluster_snapshots().first().map(snapshot_record)),
        )
    }

    async fn create_snapshot(
        &self,
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
        Ok(
            unless_exists(result, "rds:CreateDBClusterSnapshot", cluster)?
                .map_or(Started::AlreadyExists, |out| {
                    started(out.db_cluster_snapshot())
                }),
        )
    }

    async fn restore_accounts(
        &self,
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
            .map(|r| {
                restore_values(
                    r.db_cluster_snapshot_attributes()
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
            .modify_db_cluster_snapshot_attribute()
            .db_cluster_snapshot_identifier(id)
            .attribute_name("restore")
            .set_values_to_add(Some(accounts.iter().cloned().collect()))
            .send()
            .await
            .map_err(|e| classify(e, "rds:ModifyDBClusterSnapshotAttribute", id))?;
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
            .copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(copy.source_arn)
            .target_db_cluster_snapshot_identifier(copy.target_id)
            .set_kms_key_id(copy.kms_key.map(str::to_string))
            .copy_tags(false)
            .set_tags(Some(to_tags(copy.tags)))
            .send()
            .await;
        Ok(
            unless_exists(result, "rds:CopyDBClusterSnapshot", copy.target_id)?
                .map_or(Started::AlreadyExists, |out| {
                    started(out.db_cluster_snapshot())
                }),
        )
    }

    async fn delete_snapshot(&self, ctx: &AwsContext, region: &str, id: &str) -> Result<(), Error> {
        let result = ctx
            .rds(region)
            .delete_db_cluster_snapshot()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await;
        // Already gone: the goal of the call is reached.
        unless_missing(result, "rds:DeleteDBClusterSnapshot", id).map(|_| ())
    }
}

fn started(s: Option<&DbClusterSnapshot>) -> Started {
    s.map_or(Started::AlreadyExists, |s| {
        Started::New(Box::new(snapshot_record(s)))
    })
}

fn cluster_record(c: &DbCluster) -> ResourceRecord {
    ResourceRecord {
        id: c.db_cluster_identifier().unwrap_or_default().to_string(),
        arn: c.db_cluster_arn().unwrap_or_default().to_string(),
        engine: c.engine().unwrap_or_default().to_string(),
        status: c.status().unwrap_or_default().to_string(),
        tags: tag_map(c.tag_list()),
        replica_of: None,
        kms_key_id: c
            .kms_key_id()
            .filter(|_| c.storage_encrypted() == Some(true))
            .map(str::to_string),
    }
}

pub(crate) fn snapshot_record(s: &DbClusterSnapshot) -> SnapshotRecord {
    let arn = s.db_cluster_snapshot_arn().unwrap_or_default().to_string();
    let identifier = s.db_cluster_snapshot_identifier().unwrap_or_default();
    SnapshotRecord {
        // A snapshot shared by another account is identified by its ARN.
        id: arn_resource_name(identifier).to_string(),
        owner_account: arn_account(&arn).unwrap_or_default().to_string(),
        resource_id: s.db_cluster_identifier().unwrap_or_default().to_string(),
        status: SnapshotStatus::from_api(s.status().unwrap_or("unknown")),
        created: s.snapshot_create_time().and_then(crate::timestamp),
        encrypted: s.storage_encrypted().unwrap_or(false),
        kms_key_id: s.kms_key_id().map(str::to_string),
        tags: tag_map(s.tag_list()),
        option_group: None,
        restore_accounts: None,
        source_region: None,
        engine: None,
        arn,
    }
}
