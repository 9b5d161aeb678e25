//! Shared by the run tests: an emulated world and runs of the example config in it.

#![allow(dead_code, unused_imports)]

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use snapcourier_aws::{AwsContext, ClientOptions};
use snapcourier_cli::runner::{Quiet, RunReport, run_destination, run_source};
use snapcourier_core::events::{DestinationRun, SourceRun};
use snapcourier_core::{Config, Engine};
pub use snapcourier_emulator::{
    DESTINATION_ACCOUNT, DESTINATION_REGION, Emulator, SOURCE_ACCOUNT, SOURCE_REGION, Seed, Side,
    days_ago, owned_snapshot,
};

pub const EXAMPLE: &str = include_str!("../../../../examples/snapcourier.yaml");

pub fn config() -> Config {
    let mut c = Config::parse(EXAMPLE).unwrap();
    c.settings.poll_interval_seconds = 1;
    // A run that does not finish fails the test in minutes, not hours.
    c.settings.deadline_seconds = Some(120);
    c
}

/// The id snapcourier's source gives a snapshot of `resource` created at `created`, for one of
/// the example's daily schedules: a share the destination accepts as real.
pub fn slot_id(schedule: &str, resource: &str, created: Timestamp) -> String {
    snapcourier_core::naming::snapshot_id(
        "demo",
        schedule,
        resource,
        snapcourier_core::interval::slot_start(created, jiff::SignedDuration::from_hours(24)),
    )
}

pub fn source_run(c: &Config) -> SourceRun {
    SourceRun::from_config(c, "aurora-daily").unwrap()
}

pub fn destination_run(c: &Config) -> DestinationRun {
    DestinationRun::from_config(c, "aurora-daily", DESTINATION_ACCOUNT).unwrap()
}

/// Both sides of one schedule of the example config, in order.
pub async fn run_schedule(emu: &Emulator, c: &Config, schedule: &str) -> (RunReport, RunReport) {
    let src = run_source(
        &context(emu, Side::Source),
        &SourceRun::from_config(c, schedule).unwrap(),
        Timestamp::now,
        &Quiet,
    )
    .await
    .unwrap();
    let dst = run_destination(
        &context(emu, Side::Destination),
        &DestinationRun::from_config(c, schedule, DESTINATION_ACCOUNT).unwrap(),
        Timestamp::now,
        &Quiet,
    )
    .await
    .unwrap();
    (src, dst)
}

/// A context acting as one side's account, with fast retries for tests.
pub fn context(emu: &Emulator, side: Side) -> AwsContext {
    AwsContext::new(
        &emu.sdk_config(side),
        ClientOptions {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
        },
    )
}

pub async fn run_both(emu: &Emulator, c: &Config) -> (RunReport, RunReport) {
    let src = run_source(
        &context(emu, Side::Source),
        &source_run(c),
        Timestamp::now,
        &Quiet,
    )
    .await
    .unwrap();
    let dst = run_destination(
        &context(emu, Side::Destination),
        &destination_run(c),
        Timestamp::now,
        &Quiet,
    )
    .await
    .unwrap();
    (src, dst)
}

/// A source run over `count` new clusters with `latency_ms` added to every RDS and KMS call:
/// its report, the AWS requests by action, the most RDS calls in flight at once, and the wall
/// time.
pub async fn source_run_at_latency(
    count: usize,
    latency_ms: u64,
) -> (
    RunReport,
    std::collections::BTreeMap<String, u64>,
    u64,
    std::time::Duration,
) {
    let emu = Emulator::start(Seed::Empty);
    for i in 0..count {
        emu.create_cluster(serde_json::json!({
            "account": SOURCE_ACCOUNT, "region": SOURCE_REGION, "id": format!("orders-c{i:04}"),
        }));
    }
    emu.configure(serde_json::json!({"latency_ms": latency_ms, "creating_reads": 1}));
    emu.reset_requests();
    let c = config();
    let started = std::time::Instant::now();
    let report = run_source(
        &context(&emu, Side::Source),
        &source_run(&c),
        Timestamp::now,
        &Quiet,
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    let peak = emu.peak_concurrent().get("rds").copied().unwrap_or(0);
    (report, emu.requests(), peak, elapsed)
}

/// A snapshot as the test sees it in an account, through a plain client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub id: String,
    pub arn: String,
    pub cluster: String,
    pub status: String,
    pub encrypted: bool,
    pub kms_key: Option<String>,
    pub created: Option<Timestamp>,
    pub tags: BTreeMap<String, String>,
    /// Instance snapshots only.
    pub option_group: Option<String>,
}

fn tag_map(tags: &[aws_sdk_rds::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Every manual DB instance snapshot in an account and region (all pages).
pub async fn instance_snapshots(emu: &Emulator, side: Side, region: &str) -> Vec<Seen> {
    let all: Vec<_> = emu
        .rds(side, region)
        .describe_db_snapshots()
        .snapshot_type("manual")
        .into_paginator()
        .page_size(100)
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    all.iter()
        .map(|s| Seen {
            id: s.db_snapshot_identifier().unwrap().to_string(),
            arn: s.db_snapshot_arn().unwrap().to_string(),
            cluster: s.db_instance_identifier().unwrap_or_default().to_string(),
            status: s.status().unwrap_or_default().to_string(),
            encrypted: s.encrypted().unwrap_or(false),
            kms_key: s.kms_key_id().map(str::to_string),
            created: s
                .snapshot_create_time()
                .and_then(snapcourier_aws::timestamp),
            tags: tag_map(s.tag_list()),
            option_group: s.option_group_name().map(str::to_string),
        })
        .collect()
}

pub async fn instance_restore_accounts(emu: &Emulator, id: &str) -> Vec<String> {
    let out = emu
        .rds(Side::Source, SOURCE_REGION)
        .describe_db_snapshot_attributes()
        .db_snapshot_identifier(id)
        .send()
        .await
        .unwrap();
    out.db_snapshot_attributes_result()
        .unwrap()
        .db_snapshot_attributes()
        .iter()
        .filter(|a| a.attribute_name() == Some("restore"))
        .flat_map(|a| a.attribute_values().iter().cloned())
        .collect()
}

/// Every manual cluster snapshot in an account and region (all pages).
pub async fn snapshots(emu: &Emulator, side: Side, region: &str) -> Vec<Seen> {
    let client = emu.rds(side, region);
    let all: Vec<_> = client
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .into_paginator()
        .page_size(100)
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    all.iter()
        .map(|s| Seen {
            id: s.db_cluster_snapshot_identifier().unwrap().to_string(),
            arn: s.db_cluster_snapshot_arn().unwrap().to_string(),
            cluster: s.db_cluster_identifier().unwrap_or_default().to_string(),
            status: s.status().unwrap_or_default().to_string(),
            encrypted: s.storage_encrypted().unwrap_or(false),
            kms_key: s.kms_key_id().map(str::to_string),
            created: s
                .snapshot_create_time()
                .and_then(snapcourier_aws::timestamp),
            tags: tag_map(s.tag_list()),
            option_group: None,
        })
        .collect()
}

/// A Redshift snapshot as a plain client sees it.
#[derive(Debug, Clone)]
pub struct Shot {
    pub id: String,
    pub cluster: String,
    pub status: String,
    pub owner: String,
    pub encrypted: bool,
    pub kms_key: Option<String>,
    pub created: Option<Timestamp>,
    pub retention_days: Option<i32>,
    pub restore: std::collections::BTreeSet<String>,
    pub source_region: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// Every manual Redshift snapshot visible in a region: the account's own, or (with `owner`)
/// those of `owner` it may restore (all pages).
pub async fn redshift_shots(
    emu: &Emulator,
    side: Side,
    region: &str,
    owner: Option<&str>,
) -> Vec<Shot> {
    let all: Vec<_> = emu
        .redshift(side, region)
        .describe_cluster_snapshots()
        .snapshot_type("manual")
        .set_owner_account(owner.map(str::to_string))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    all.iter()
        .map(|s| Shot {
            id: s.snapshot_identifier().unwrap().to_string(),
            cluster: s.cluster_identifier().unwrap_or_default().to_string(),
            status: s.status().unwrap_or_default().to_string(),
            owner: s.owner_account().unwrap_or_default().to_string(),
            encrypted: s.encrypted().unwrap_or(false),
            kms_key: s.kms_key_id().map(str::to_string),
            created: s
                .snapshot_create_time()
                .and_then(snapcourier_aws::timestamp),
            retention_days: s.manual_snapshot_retention_period(),
            restore: s
                .accounts_with_restore_access()
                .iter()
                .filter_map(|a| a.account_id().map(str::to_string))
                .collect(),
            source_region: s.source_region().map(str::to_string),
            tags: s
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
        })
        .collect()
}

/// The account's own manual Redshift snapshots in a region, as `Seen`.
pub async fn redshift_snapshots(emu: &Emulator, side: Side, region: &str) -> Vec<Seen> {
    redshift_shots(emu, side, region, None)
        .await
        .into_iter()
        .map(|s| Seen {
            arn: String::new(),
            id: s.id,
            cluster: s.cluster,
            status: s.status,
            encrypted: s.encrypted,
            kms_key: s.kms_key,
            created: s.created,
            tags: s.tags,
            option_group: None,
        })
        .collect()
}

/// ElastiCache: an account's manual snapshots (both kinds) in a region, with their tags (one
/// ListTagsForResource each: a test may).
pub async fn cache_snapshots(emu: &Emulator, side: Side, region: &str) -> Vec<Seen> {
    let ctx = context(emu, side);
    let ec = ctx.elasticache(region);
    let mut out = Vec::new();
    let groups = ec
        .describe_snapshots()
        .snapshot_source("user")
        .send()
        .await
        .unwrap();
    for s in groups.snapshots() {
        out.push(Seen {
            id: s.snapshot_name().unwrap().to_string(),
            arn: s.arn().unwrap().to_string(),
            cluster: s.replication_group_id().unwrap_or_default().to_string(),
            status: s.snapshot_status().unwrap().to_string(),
            encrypted: s.kms_key_id().is_some(),
            kms_key: s.kms_key_id().map(str::to_string),
            created: s
                .node_snapshots()
                .iter()
                .filter_map(|n| {
                    n.snapshot_create_time()
                        .and_then(snapcourier_aws::timestamp)
                })
                .min(),
            tags: BTreeMap::new(),
            option_group: None,
        });
    }
    let serverless = ec
        .describe_serverless_cache_snapshots()
        .send()
        .await
        .unwrap();
    for s in serverless.serverless_cache_snapshots() {
        out.push(Seen {
            id: s.serverless_cache_snapshot_name().unwrap().to_string(),
            arn: s.arn().unwrap().to_string(),
            cluster: s
                .serverless_cache_configuration()
                .and_then(|c| c.serverless_cache_name())
                .unwrap_or_default()
                .to_string(),
            status: s.status().unwrap().to_string(),
            encrypted: s.kms_key_id().is_some(),
            kms_key: s.kms_key_id().map(str::to_string),
            created: s.create_time().and_then(snapcourier_aws::timestamp),
            tags: BTreeMap::new(),
            option_group: None,
        });
    }
    for s in &mut out {
        let tags = ec
            .list_tags_for_resource()
            .resource_name(&s.arn)
            .send()
            .await
            .unwrap();
        s.tags = tags
            .tag_list()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
    }
    out
}

/// One current object of a bucket, as GetObject's headers and GetObjectRetention show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: i64,
    pub kms_key: Option<String>,
    pub sha256: Option<String>,
    pub lock_mode: Option<String>,
    pub retain_until: Option<Timestamp>,
}

/// Every current object under `prefix` in a bucket, read as `side`.
pub async fn objects(
    emu: &Emulator,
    side: Side,
    region: &str,
    bucket: &str,
    prefix: &str,
) -> Vec<Object> {
    let ctx = context(emu, side);
    let s3 = ctx.s3(region);
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for o in listed.contents() {
        let key = o.key().unwrap().to_string();
        let head = s3
            .head_object()
            .bucket(bucket)
            .key(&key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        out.push(Object {
            size: head.content_length().unwrap_or_default(),
            kms_key: head.ssekms_key_id().map(str::to_string),
            sha256: head.checksum_sha256().map(str::to_string),
            lock_mode: head.object_lock_mode().map(|m| m.as_str().to_string()),
            retain_until: head
                .object_lock_retain_until_date()
                .and_then(snapcourier_aws::timestamp),
            key,
        });
    }
    out
}

/// The ids of the complete exports a bucket holds (those with a manifest).
pub fn export_ids(objects: &[Object]) -> std::collections::BTreeSet<String> {
    objects
        .iter()
        .filter_map(|o| snapcourier_core::export::parse_manifest_key(&o.key))
        .map(|(id, _)| id.to_string())
        .collect()
}

/// Manual snapshots of an engine's kind in an account and region.
pub async fn snapshots_of(emu: &Emulator, engine: Engine, side: Side, region: &str) -> Vec<Seen> {
    match engine {
        Engine::Aurora => snapshots(emu, side, region).await,
        Engine::Rds => instance_snapshots(emu, side, region).await,
        Engine::Redshift => redshift_snapshots(emu, side, region).await,
        Engine::ElastiCache if side == Side::Destination => vault_exports(emu, region).await,
        Engine::ElastiCache => cache_snapshots(emu, side, region).await,
    }
}

/// ElastiCache: the complete exports in the destination's vault bucket of a region (their
/// manifests), as `Seen`: namespace `demo` when the id is the demo's, the key of the manifest,
/// the capture time its key names.
pub async fn vault_exports(emu: &Emulator, region: &str) -> Vec<Seen> {
    let bucket = snapcourier_core::naming::vault_bucket("demo", DESTINATION_ACCOUNT, region);
    objects(emu, Side::Destination, region, &bucket, "")
        .await
        .into_iter()
        .filter_map(|o| {
            let (id, captured) = snapcourier_core::export::parse_manifest_key(&o.key)?;
            let mut tags = BTreeMap::new();
            if id.starts_with("sc-demo-") {
                tags.insert("snapcourier:namespace".to_string(), "demo".to_string());
            }
            Some(Seen {
                id: id.to_string(),
                arn: format!("s3://{bucket}/{}", o.key),
                cluster: String::new(),
                status: "available".into(),
                encrypted: o.kms_key.is_some(),
                kms_key: o.kms_key.clone(),
                created: Some(captured),
                tags,
                option_group: None,
            })
        })
        .collect()
}

/// Accounts that may restore a source snapshot of an engine's kind.
pub async fn shared_with_of(emu: &Emulator, engine: Engine, region: &str, id: &str) -> Vec<String> {
    match engine {
        Engine::Aurora => restore_accounts(emu, id).await,
        Engine::Rds => instance_restore_accounts(emu, id).await,
        Engine::Redshift => redshift_shots(emu, Side::Source, region, None)
            .await
            .into_iter()
            .find(|s| s.id == id)
            .map(|s| s.restore.into_iter().collect())
            .unwrap_or_default(),
        // Exported (its manifest is in the bucket): the destination accounts read the bucket.
        Engine::ElastiCache => {
            let bucket = snapcourier_core::naming::export_bucket("demo", SOURCE_ACCOUNT, region);
            if export_ids(&objects(emu, Side::Source, region, &bucket, id).await).contains(id) {
                vec![DESTINATION_ACCOUNT.to_string()]
            } else {
                Vec::new()
            }
        }
    }
}

/// One engine's schedule in the example config and what it protects in the demo world.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub schedule: &'static str,
    pub engine: Engine,
    /// The `kind` of the emulator's direct insert route.
    pub kind: &'static str,
    /// Resources the schedule covers in the demo world.
    pub protected: &'static [&'static str],
    /// The emulator's `throttle_services` name.
    pub service: &'static str,
}

pub const CASES: [Case; 4] = [
    Case {
        schedule: "aurora-daily",
        engine: Engine::Aurora,
        kind: "cluster",
        protected: &["analytics-db", "billing-db", "orders-db"],
        service: "rds",
    },
    Case {
        schedule: "rds-daily",
        engine: Engine::Rds,
        kind: "instance",
        protected: &["billing-pg", "orders-mysql"],
        service: "rds",
    },
    Case {
        schedule: "warehouse-daily",
        engine: Engine::Redshift,
        kind: "redshift",
        protected: &["warehouse-main", "warehouse-raw"],
        service: "redshift",
    },
    Case {
        schedule: "cache-daily",
        engine: Engine::ElastiCache,
        kind: "elasticache",
        protected: &[
            "carts-valkey",
            "legacy-redis",
            "profiles-serverless",
            "sessions-valkey",
        ],
        service: "elasticache",
    },
];

impl Case {
    /// A snapshot of this schedule for the direct insert route (see `owned_snapshot`).
    pub fn owned_snapshot(
        &self,
        account: &str,
        region: &str,
        id: &str,
        resource: &str,
        created: Timestamp,
        stage: &str,
    ) -> serde_json::Value {
        let mut s = owned_snapshot(account, region, id, resource, created, stage, &[]);
        s["kind"] = self.kind.into();
        s["tags"][1]["Value"] = self.schedule.into();
        match self.engine {
            Engine::Aurora => {}
            Engine::Rds => s["engine"] = "postgres".into(),
            Engine::Redshift => s["cluster"] = resource.into(),
            // ElastiCache's insert takes the snapshot's own fields only.
            Engine::ElastiCache => {
                let fields = s.as_object_mut().expect("an object");
                fields.retain(|k, _| {
                    [
                        "kind",
                        "account",
                        "region",
                        "id",
                        "resource_id",
                        "created",
                        "tags",
                    ]
                    .contains(&k.as_str())
                });
            }
        }
        s
    }

    /// ElastiCache: a snapshot of the example's cache-daily schedule, tagged as the source
    /// takes it, for the direct insert route (`"kind": "elasticache"`).
    pub fn owned_cache_snapshot(id: &str, resource: &str, created: Timestamp) -> serde_json::Value {
        serde_json::json!({
            "kind": "elasticache",
            "account": SOURCE_ACCOUNT,
            "region": SOURCE_REGION,
            "id": id,
            "resource_id": resource,
            "created": created.to_string(),
            "tags": [
                {"Key": "snapcourier:namespace", "Value": "demo"},
                {"Key": "snapcourier:schedule", "Value": "cache-daily"},
                {"Key": "snapcourier:stage", "Value": "source"},
            ],
        })
    }

    /// ElastiCache: an export of `id` as the source bucket holds it once it is complete or
    /// done but not yet completed (`with_manifest`): one shard object, and the manifest that
    /// names `captured`. For the direct object route (`Emulator::insert_objects`).
    pub fn export_objects(
        &self,
        bucket: &str,
        id: &str,
        resource: &str,
        captured: Timestamp,
        with_manifest: bool,
    ) -> Vec<serde_json::Value> {
        let body = "REDIS0011-snapcourier-test";
        let shard = format!("{id}-0001.rdb");
        let mut out = vec![serde_json::json!({"bucket": bucket, "key": shard, "body": body})];
        if with_manifest {
            let manifest = snapcourier_core::export::ExportManifest {
                version: snapcourier_core::export::MANIFEST_VERSION,
                snapshot: id.to_string(),
                cache: resource.to_string(),
                captured: Timestamp::from_second(captured.as_second()).unwrap(),
                engine: None,
                objects: vec![snapcourier_core::export::ExportedFile {
                    key: shard,
                    size: body.len() as i64,
                }],
            };
            out.push(serde_json::json!({
                "bucket": bucket,
                "key": manifest.key(),
                "body": serde_json::to_string(&manifest).unwrap(),
            }));
        }
        out
    }

    /// The schedule's id prefix.
    pub fn prefix(&self) -> String {
        format!("sc-demo-{}-", self.schedule.replace('-', ""))
    }
}

pub fn owned(all: &[Seen]) -> Vec<Seen> {
    all.iter()
        .filter(|s| s.tags.get("snapcourier:namespace").map(String::as_str) == Some("demo"))
        .cloned()
        .collect()
}

pub async fn restore_accounts(emu: &Emulator, id: &str) -> Vec<String> {
    let out = emu
        .rds(Side::Source, SOURCE_REGION)
        .describe_db_cluster_snapshot_attributes()
        .db_cluster_snapshot_identifier(id)
        .send()
        .await
        .unwrap();
    out.db_cluster_snapshot_attributes_result()
        .unwrap()
        .db_cluster_snapshot_attributes()
        .iter()
        .filter(|a| a.attribute_name() == Some("restore"))
        .flat_map(|a| a.attribute_values().iter().cloned())
        .collect()
}
