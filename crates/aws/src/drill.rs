//! The calls of a restore drill (`snapcourier_core::drill`): restores of Aurora clusters, RDS
//! instances and Redshift clusters from the vault's copies, ElastiCache replication groups
//! seeded from the vault bucket's exported objects, the restored resources as describe
//! calls show them, their deletion, the validation function, and the drill records in SSM.
//!
//! A drill acts only on resources whose id starts with `sc-<namespace>-dr-` (the IAM policies
//! say the same): it never deletes a database it did not restore.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticache::types::{ClusterMode, ReplicationGroup};
use aws_sdk_rds::types::{DbCluster, DbInstance};
use aws_sdk_redshift::types::Cluster;
use jiff::Timestamp;
use snapcourier_core::config::partition;
use snapcourier_core::drill::{
    Candidate, DRILL_SNAPSHOT_TAG, DRILL_TAG, Drill, DrillRecord, DrillRun, drill_instance_id,
    is_drill_resource, record_name, record_prefix,
};
use snapcourier_core::export::{cluster_parameter_group, restore_engine_version};
use snapcourier_core::naming::schedule_prefix;
use snapcourier_core::tags::{self, Stage};
use snapcourier_core::{Engine, Error};

use crate::adapter::all_items;
use crate::client::AwsContext;
use crate::engines::list_owned;
use crate::errors::{classify, unless_exists, unless_missing};
use crate::rds::{tag_map, to_tags};
use crate::redshift;
use crate::steps::elasticache::{read_vault_manifest, vault_exports};

/// What a restored resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoredKind {
    AuroraCluster,
    /// An RDS instance, or the instance of a restored Aurora cluster (`cluster` set).
    DbInstance,
    RedshiftCluster,
    /// An ElastiCache replication group seeded from a vault export.
    ReplicationGroup,
}

/// A restored resource of a drill (ours by its id), as a describe call shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub id: String,
    pub kind: RestoredKind,
    pub status: String,
    /// An Aurora instance: its cluster.
    pub cluster: Option<String>,
    /// An Aurora cluster: its instances.
    pub members: Vec<String>,
    pub endpoint: Option<String>,
    pub port: Option<i32>,
    pub tags: BTreeMap<String, String>,
    /// When the restore began: our tag, else the API's creation time.
    pub began: Option<Timestamp>,
}

impl Restored {
    pub fn is_available(&self) -> bool {
        self.status == "available"
    }

    pub fn is_deleting(&self) -> bool {
        self.status == "deleting"
    }

    /// A status from which a restore never becomes available (AWS: `failed`,
    /// `incompatible-restore`, `incompatible-parameters`, `incompatible-network`, ElastiCache's
    /// `create-failed`, ...).
    pub fn has_failed(&self) -> bool {
        self.status == "failed"
            || self.status == "create-failed"
            || self.status.starts_with("incompatible")
            || self.status == "inaccessible-encryption-credentials"
            || self.status == "storage-full"
    }
}

fn began(tags: &BTreeMap<String, String>, created: Option<Timestamp>) -> Option<Timestamp> {
    tags.get(DRILL_TAG).and_then(|t| t.parse().ok()).or(created)
}

fn sdk_time(t: Option<&aws_smithy_types::DateTime>) -> Option<Timestamp> {
    t.and_then(crate::timestamp)
}

fn cluster_restored(c: &DbCluster) -> Restored {
    let tags = tag_map(c.tag_list());
    Restored {
        id: c.db_cluster_identifier().unwrap_or_default().to_string(),
        kind: RestoredKind::AuroraCluster,
        status: c.status().unwrap_or_default().to_string(),
        cluster: None,
        members: c
            .db_cluster_members()
            .iter()
            .filter_map(|m| m.db_instance_identifier().map(str::to_string))
            .collect(),
        endpoint: c.endpoint().map(str::to_string),
        port: c.port(),
        began: began(&tags, sdk_time(c.cluster_create_time())),
        tags,
    }
}

fn instance_restored(i: &DbInstance) -> Restored {
    let tags = tag_map(i.tag_list());
    Restored {
        id: i.db_instance_identifier().unwrap_or_default().to_string(),
        kind: RestoredKind::DbInstance,
        status: i.db_instance_status().unwrap_or_default().to_string(),
        cluster: i.db_cluster_identifier().map(str::to_string),
        members: Vec::new(),
        endpoint: i.endpoint().and_then(|e| e.address()).map(str::to_string),
        port: i.endpoint().and_then(|e| e.port()),
        began: began(&tags, sdk_time(i.instance_create_time())),
        tags,
    }
}

fn redshift_restored(c: &Cluster) -> Restored {
    let tags: BTreeMap<String, String> = c
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect();
    Restored {
        id: c.cluster_identifier().unwrap_or_default().to_string(),
        kind: RestoredKind::RedshiftCluster,
        status: c.cluster_status().unwrap_or_default().to_string(),
        cluster: None,
        members: Vec::new(),
        endpoint: c.endpoint().and_then(|e| e.address()).map(str::to_string),
        port: c.endpoint().and_then(|e| e.port()),
        began: began(&tags, sdk_time(c.cluster_create_time())),
        tags,
    }
}

fn group_restored(g: &ReplicationGroup) -> Restored {
    // Cluster mode on: the configuration endpoint; off: the primary's.
    let endpoint = g
        .configuration_endpoint()
        .or_else(|| g.node_groups().first().and_then(|n| n.primary_endpoint()));
    Restored {
        id: g.replication_group_id().unwrap_or_default().to_string(),
        kind: RestoredKind::ReplicationGroup,
        status: g.status().unwrap_or_default().to_string(),
        cluster: None,
        members: Vec::new(),
        endpoint: endpoint.and_then(|e| e.address()).map(str::to_string),
        port: endpoint.and_then(|e| e.port()),
        // ElastiCache lists no tags inline: its creation time is when the restore began.
        tags: BTreeMap::new(),
        began: sdk_time(g.replication_group_create_time()),
    }
}

/// Every restored resource of this deployment's drills in a region, for the engines the run
/// covers: one describe per kind and page.
pub async fn list_restored(
    ctx: &AwsContext,
    region: &str,
    namespace: &str,
    engines: &BTreeSet<Engine>,
) -> Result<Vec<Restored>, Error> {
    let mut out = Vec::new();
    if engines.contains(&Engine::Aurora) {
        let clusters: Vec<DbCluster> = all_items!(
            ctx.rds(region).describe_db_clusters(),
            "rds:DescribeDBClusters",
            region
        )?;
        out.extend(clusters.iter().map(cluster_restored));
    }
    if engines.contains(&Engine::Aurora) || engines.contains(&Engine::Rds) {
        let instances: Vec<DbInstance> = all_items!(
            ctx.rds(region).describe_db_instances(),
            "rds:DescribeDBInstances",
            region
        )?;
        out.extend(instances.iter().map(instance_restored));
    }
    if engines.contains(&Engine::Redshift) {
        let clusters: Vec<Cluster> = all_items!(
            ctx.redshift(region).describe_clusters(),
            "redshift:DescribeClusters",
            region
        )?;
        out.extend(clusters.iter().map(redshift_restored));
    }
    if engines.contains(&Engine::ElastiCache) {
        let groups: Vec<ReplicationGroup> = all_items!(
            ctx.elasticache(region).describe_replication_groups(),
            "elasticache:DescribeReplicationGroups",
            region
        )?;
        out.extend(groups.iter().map(group_restored));
    }
    out.retain(|r| is_drill_resource(namespace, &r.id));
    Ok(out)
}

/// The copies a drill may restore in a region: every available one of the run's schedules
/// (Aurora and RDS: the vault's own copies; Redshift: the source's shares, which the vault
/// cannot copy; ElastiCache: the vault bucket's complete exports). `choose` keeps each
/// database's newest.
pub async fn list_candidates(
    ctx: &AwsContext,
    run: &DrillRun,
    region: &str,
) -> Result<Vec<Candidate>, Error> {
    let mut out = Vec::new();
    let engines: BTreeSet<Engine> = run.schedules.iter().map(|s| s.engine).collect();
    for engine in engines {
        let snapshots = match engine {
            Engine::Aurora | Engine::Rds => list_owned(ctx, engine, region).await?,
            Engine::Redshift => {
                redshift::list_snapshots(ctx, region, Some(&run.source.account)).await?
            }
            Engine::ElastiCache => {
                for schedule in run.schedules.iter().filter(|s| s.engine == engine) {
                    let exports = vault_exports(
                        ctx,
                        &run.namespace,
                        &run.destination_account,
                        &schedule.name,
                        region,
                    )
                    .await?;
                    out.extend(exports.into_iter().map(|e| Candidate {
                        region: region.to_string(),
                        schedule: schedule.name.clone(),
                        engine,
                        database: e.database,
                        snapshot: e.id,
                        snapshot_arn: e.manifest_arn,
                        captured: e.captured,
                    }));
                }
                continue;
            }
        };
        for schedule in run.schedules.iter().filter(|s| s.engine == engine) {
            for s in &snapshots {
                if !s.status.is_available() {
                    continue;
                }
                let ours = match engine {
                    Engine::Redshift => {
                        s.owner_account == run.source.account
                            && s.id
                                .starts_with(&schedule_prefix(&run.namespace, &schedule.name))
                    }
                    _ => s.is_ours(&run.namespace, &schedule.name, Stage::Destination),
                };
                let Some(captured) = s.captured_at() else {
                    continue;
                };
                if ours {
                    out.push(Candidate {
                        region: region.to_string(),
                        schedule: schedule.name.clone(),
                        engine,
                        database: s.protected_resource().to_string(),
                        snapshot: s.id.clone(),
                        snapshot_arn: s.arn.clone(),
                        captured,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The tags of a drill's restored resources: ours, the database, when the restore began and
/// from which copy.
pub fn drill_tags(namespace: &str, drill: &Drill) -> BTreeMap<String, String> {
    BTreeMap::from([
        (tags::NAMESPACE.to_string(), namespace.to_string()),
        (tags::SCHEDULE.to_string(), drill.schedule.clone()),
        (tags::RESOURCE.to_string(), drill.database.clone()),
        (DRILL_TAG.to_string(), drill.started_at.to_string()),
        (DRILL_SNAPSHOT_TAG.to_string(), drill.snapshot.clone()),
    ])
}

/// Start the restore of `drill` (an already started one is left as it is).
pub async fn start_restore(ctx: &AwsContext, run: &DrillRun, drill: &Drill) -> Result<(), Error> {
    let region = drill.region.as_str();
    let network = run.network(region);
    let tags = drill_tags(&run.namespace, drill);
    match drill.engine {
        Engine::ElastiCache => seed_replication_group(ctx, run, drill, &tags).await,
        Engine::Aurora => {
            // RDS needs the engine of the cluster to restore: the copy knows it.
            let snapshot = ctx
                .rds(region)
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(&drill.snapshot)
                .send()
                .await
                .map_err(|e| classify(e, "rds:DescribeDBClusterSnapshots", &drill.snapshot))?;
            let found = snapshot.db_cluster_snapshots().first();
            let version = found.and_then(|s| s.engine_version()).map(str::to_string);
            let Some(engine) = found.and_then(|s| s.engine()).map(str::to_string) else {
                return Err(Error::NotFound {
                    resource: drill.snapshot.clone(),
                    message: "the copy to restore is gone (expired since it was chosen?); the next drill takes the newest".into(),
                });
            };
            let result = ctx
                .rds(region)
                .restore_db_cluster_from_snapshot()
                .db_cluster_identifier(&drill.resource)
                .snapshot_identifier(&drill.snapshot)
                .engine(engine)
                .set_engine_version(version)
                .set_db_subnet_group_name(network.db_subnet_group.clone())
                .set_vpc_security_group_ids(non_empty(&network.security_groups))
                .deletion_protection(false)
                .copy_tags_to_snapshot(false)
                .set_tags(Some(to_tags(&tags)))
                .send()
                .await;
            unless_exists(result, "rds:RestoreDBClusterFromSnapshot", &drill.resource).map(|_| ())
        }
        Engine::Rds => {
            let result = ctx
                .rds(region)
                .restore_db_instance_from_db_snapshot()
                .db_instance_identifier(&drill.resource)
                .db_snapshot_identifier(&drill.snapshot)
                .db_instance_class(&run.drills.rds_instance_class)
                .set_db_subnet_group_name(network.db_subnet_group.clone())
                .set_vpc_security_group_ids(non_empty(&network.security_groups))
                .multi_az(false)
                .publicly_accessible(false)
                .deletion_protection(false)
                .set_tags(Some(to_tags(&tags)))
                .send()
                .await;
            unless_exists(
                result,
                "rds:RestoreDBInstanceFromDBSnapshot",
                &drill.resource,
            )
            .map(|_| ())
        }
        Engine::Redshift => {
            let result = ctx
                .redshift(region)
                .restore_from_cluster_snapshot()
                .cluster_identifier(&drill.resource)
                .snapshot_identifier(&drill.snapshot)
                .owner_account(&run.source.account)
                .set_cluster_subnet_group_name(network.redshift_subnet_group.clone())
                .set_vpc_security_group_ids(non_empty(&network.security_groups))
                .publicly_accessible(false)
                .send()
                .await;
            unless_exists(
                result,
                "redshift:RestoreFromClusterSnapshot",
                &drill.resource,
            )?;
            // Redshift's restore takes no tags: tag it at once (its id marks it ours even
            // if this call fails, and the next drill cleans it up).
            let arn = format!(
                "arn:{}:redshift:{region}:{}:cluster:{}",
                redshift::partition(region),
                run.destination_account,
                drill.resource
            );
            let redshift_tags: Vec<aws_sdk_redshift::types::Tag> = tags
                .iter()
                .map(|(k, v)| {
                    aws_sdk_redshift::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                })
                .collect();
            ctx.redshift(region)
                .create_tags()
                .resource_name(&arn)
                .set_tags(Some(redshift_tags))
                .send()
                .await
                .map_err(|e| classify(e, "redshift:CreateTags", &arn))?;
            Ok(())
        }
    }
}

/// Seed a replication group from a vault export's objects: one node per shard, no replicas,
/// cluster mode on for several shards, the engine (and version) the snapshot had, encrypted
/// at rest and in transit.
async fn seed_replication_group(
    ctx: &AwsContext,
    run: &DrillRun,
    drill: &Drill,
    tags: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let region = drill.region.as_str();
    let network = run.network(region);
    let (bucket, manifest) = match read_vault_manifest(
        ctx,
        region,
        &drill.snapshot_arn,
        &drill.snapshot,
    )
    .await
    {
        Ok(found) => found,
        Err(Error::NotFound { .. }) => {
            return Err(Error::NotFound {
                    resource: drill.snapshot.clone(),
                    message: "the export to restore is gone from the vault (expired since it was chosen?); the next drill takes the newest".into(),
                });
        }
        Err(e) => return Err(e),
    };
    let arns: Vec<String> = manifest
        .objects
        .iter()
        .map(|o| format!("arn:{}:s3:::{bucket}/{}", partition(region), o.key))
        .collect();
    let shards = i32::try_from(arns.len()).unwrap_or(i32::MAX);
    let mut request = ctx
        .elasticache(region)
        .create_replication_group()
        .replication_group_id(&drill.resource)
        .replication_group_description(format!(
            "snapcourier restore drill of {} from {}",
            drill.database, drill.snapshot
        ))
        .cache_node_type(&run.drills.elasticache_node_type)
        .set_snapshot_arns(Some(arns))
        .set_cache_subnet_group_name(network.cache_subnet_group.clone())
        .set_security_group_ids(non_empty(&network.security_groups))
        .at_rest_encryption_enabled(true)
        .transit_encryption_enabled(true)
        .set_tags(Some(crate::elasticache::to_tags(tags)));
    if let Some(engine) = &manifest.engine {
        request = request
            .engine(&engine.name)
            .set_engine_version(restore_engine_version(engine));
    }
    request = if shards > 1 {
        request
            .cluster_mode(ClusterMode::Enabled)
            .num_node_groups(shards)
            .replicas_per_node_group(0)
            .set_cache_parameter_group_name(
                manifest.engine.as_ref().and_then(cluster_parameter_group),
            )
    } else {
        request.num_cache_clusters(1)
    };
    unless_exists(
        request.send().await,
        "elasticache:CreateReplicationGroup",
        &drill.resource,
    )
    .map(|_| ())
    .map_err(|e| match e {
        Error::AwsRejected { code, message, .. }
            if code == "InvalidParameterValue"
                && ["granted", "decrypt", "does not have access"]
                    .iter()
                    .any(|m| message.contains(m)) =>
        {
            Error::AccessDenied {
                action: "elasticache:CreateReplicationGroup".into(),
                resource: format!("s3://{bucket}/{}-*", drill.snapshot),
                message: format!(
                    "{message}: ElastiCache ({region}.elasticache-snapshot.amazonaws.com) must be allowed s3:GetObject on the vault's objects and kms:Decrypt on the vault key; the destination stack's vault bucket and key policies grant both (deploy it)"
                ),
            }
        }
        other => other,
    })
}

fn non_empty(list: &[String]) -> Option<Vec<String>> {
    (!list.is_empty()).then(|| list.to_vec())
}

/// Add the one instance of a restored Aurora cluster (the restore makes the cluster only).
pub async fn add_aurora_instance(
    ctx: &AwsContext,
    run: &DrillRun,
    drill: &Drill,
) -> Result<(), Error> {
    let region = drill.region.as_str();
    let described = ctx
        .rds(region)
        .describe_db_clusters()
        .db_cluster_identifier(&drill.resource)
        .send()
        .await
        .map_err(|e| classify(e, "rds:DescribeDBClusters", &drill.resource))?;
    let engine = described
        .db_clusters()
        .first()
        .and_then(|c| c.engine())
        .unwrap_or("aurora-postgresql")
        .to_string();
    let id = drill_instance_id(&drill.resource);
    let result = ctx
        .rds(region)
        .create_db_instance()
        .db_instance_identifier(&id)
        .db_cluster_identifier(&drill.resource)
        .engine(engine)
        .db_instance_class(&run.drills.aurora_instance_class)
        .publicly_accessible(false)
        .set_tags(Some(to_tags(&drill_tags(&run.namespace, drill))))
        .send()
        .await;
    unless_exists(result, "rds:CreateDBInstance", &id).map(|_| ())
}

/// Delete a restored resource, skipping any final snapshot; one already gone counts as
/// deleted. `is_drill_resource` guards it: nothing else is ever deleted here.
pub async fn delete_restored(
    ctx: &AwsContext,
    namespace: &str,
    region: &str,
    kind: RestoredKind,
    id: &str,
) -> Result<(), Error> {
    if !is_drill_resource(namespace, id) {
        return Err(Error::config(
            "resource",
            format!(
                "`{id}` is not a drill's restored resource; drills delete only what they restore"
            ),
        ));
    }
    match kind {
        RestoredKind::AuroraCluster => unless_missing(
            ctx.rds(region)
                .delete_db_cluster()
                .db_cluster_identifier(id)
                .skip_final_snapshot(true)
                .send()
                .await,
            "rds:DeleteDBCluster",
            id,
        )
        .map(|_| ()),
        RestoredKind::DbInstance => unless_missing(
            ctx.rds(region)
                .delete_db_instance()
                .db_instance_identifier(id)
                .skip_final_snapshot(true)
                .delete_automated_backups(true)
                .send()
                .await,
            "rds:DeleteDBInstance",
            id,
        )
        .map(|_| ()),
        RestoredKind::RedshiftCluster => unless_missing(
            ctx.redshift(region)
                .delete_cluster()
                .cluster_identifier(id)
                .skip_final_cluster_snapshot(true)
                .send()
                .await,
            "redshift:DeleteCluster",
            id,
        )
        .map(|_| ()),
        // No FinalSnapshotIdentifier: no final snapshot.
        RestoredKind::ReplicationGroup => unless_missing(
            ctx.elasticache(region)
                .delete_replication_group()
                .replication_group_id(id)
                .retain_primary_cluster(false)
                .send()
                .await,
            "elasticache:DeleteReplicationGroup",
            id,
        )
        .map(|_| ()),
    }
}

/// What the validation function said about a restored database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    pub message: String,
}

/// Call the validation function with the restored database's endpoint and read its verdict,
/// `{"ok": bool, "message": "..."}`. A function error, or a reply of another shape, is a
/// failed validation.
pub async fn validate(
    ctx: &AwsContext,
    function_arn: &str,
    namespace: &str,
    drill: &Drill,
    port: Option<i32>,
) -> Result<Verdict, Error> {
    let region = function_arn.split(':').nth(3).unwrap_or_default();
    let payload = serde_json::json!({
        "version": 1,
        "namespace": namespace,
        "database": drill.database,
        "schedule": drill.schedule,
        "engine": drill.engine,
        "region": drill.region,
        "restored": drill.resource,
        "endpoint": drill.endpoint,
        "port": port,
        "snapshot": drill.snapshot,
        "captured": drill.captured,
    });
    let out = ctx
        .lambda(region)
        .invoke()
        .function_name(function_arn)
        .payload(aws_smithy_types::Blob::new(
            payload.to_string().into_bytes(),
        ))
        .send()
        .await
        .map_err(|e| classify(e, "lambda:InvokeFunction", function_arn))?;
    let body = out
        .payload()
        .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
        .unwrap_or_default();
    let excerpt: String = body.chars().take(300).collect();
    if let Some(kind) = out.function_error() {
        return Ok(Verdict {
            ok: false,
            message: format!("the validation function failed ({kind}): {excerpt}"),
        });
    }
    #[derive(serde::Deserialize)]
    struct Reply {
        ok: bool,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_str::<Reply>(&body) {
        Ok(r) => Ok(Verdict {
            ok: r.ok,
            message: r.message,
        }),
        Err(_) => Ok(Verdict {
            ok: false,
            message: format!(
                "the validation function answered `{excerpt}`, not {{\"ok\": true|false, \"message\": \"...\"}}"
            ),
        }),
    }
}

/// The drill records of one region (in the destination stack's region, `records_region`).
/// A record that does not parse is skipped with a warning: the next drill overwrites it.
pub async fn read_records(
    ctx: &AwsContext,
    records_region: &str,
    namespace: &str,
    region: &str,
) -> Result<Vec<DrillRecord>, Error> {
    let path = format!("{}{region}/", record_prefix(namespace));
    let pages: Vec<aws_sdk_ssm::operation::get_parameters_by_path::GetParametersByPathOutput> = ctx
        .ssm_in(records_region)
        .get_parameters_by_path()
        .path(&path)
        .recursive(true)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify(e, "ssm:GetParametersByPath", &path))?;
    let mut out = Vec::new();
    for p in pages.iter().flat_map(|page| page.parameters()) {
        let name = p.name().unwrap_or_default();
        match serde_json::from_str::<DrillRecord>(p.value().unwrap_or_default()) {
            Ok(r) => out.push(r),
            Err(e) => {
                tracing::warn!(parameter = name, error = %e, "a drill record does not parse; the next drill of its database rewrites it")
            }
        }
    }
    Ok(out)
}

pub async fn write_record(
    ctx: &AwsContext,
    records_region: &str,
    namespace: &str,
    record: &DrillRecord,
) -> Result<(), Error> {
    let name = record_name(
        namespace,
        &record.region,
        &record.schedule,
        &record.database,
    );
    let text = serde_json::to_string(record)
        .map_err(|e| Error::internal(format!("the drill record {name}"), e))?;
    ctx.ssm_in(records_region)
        .put_parameter()
        .name(&name)
        .value(text)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .map_err(|e| classify(e, "ssm:PutParameter", &name))?;
    Ok(())
}
