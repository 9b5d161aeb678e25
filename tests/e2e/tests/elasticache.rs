//! ElastiCache through both state machines, with the real Lambda functions: replication
//! groups (one with three shards) and a serverless cache end with their exports in the source
//! stack's bucket and the same objects in the destination's vault, locked, with the vault's
//! key; a second execution of each side costs only its listings; a restore drill seeds caches
//! from the vault through the drill state machine.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use snapcourier_aws::drill::read_records;
use snapcourier_core::Config;
use snapcourier_core::drill::DrillRun;
use snapcourier_core::events::{DestinationRun, SourceRun};
use snapcourier_core::export::parse_manifest_key;
use snapcourier_core::naming::{export_bucket, schedule_prefix, vault_bucket};
use snapcourier_e2e::*;

const EXAMPLE: &str = include_str!("../../../examples/snapcourier.yaml");
const SCHEDULE: &str = "cache-daily";

fn config() -> Config {
    let mut c = Config::parse(EXAMPLE).unwrap();
    c.settings.poll_interval_seconds = 1;
    c.settings.deadline_seconds = Some(300);
    c
}

fn input(c: &Config, side: Side) -> Value {
    match side {
        Side::Source => serde_json::to_value(SourceRun::from_config(c, SCHEDULE).unwrap()),
        Side::Destination => serde_json::to_value(
            DestinationRun::from_config(c, SCHEDULE, DESTINATION_ACCOUNT).unwrap(),
        ),
    }
    .unwrap()
}

/// Every object under the schedule's prefix in a bucket: key → (size, KMS key, lock mode).
async fn bucket_objects(
    d: &Deployment,
    side: Side,
    region: &str,
    bucket: &str,
) -> BTreeMap<String, (i64, Option<String>, Option<String>)> {
    let s3 = d.context(side).s3(region);
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(schedule_prefix("demo", SCHEDULE))
        .send()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for o in listed.contents() {
        let key = o.key().unwrap().to_string();
        let head = s3
            .head_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
        out.insert(
            key,
            (
                head.content_length().unwrap_or_default(),
                head.ssekms_key_id().map(str::to_string),
                head.object_lock_mode().map(|m| m.as_str().to_string()),
            ),
        );
    }
    out
}

/// Requests of a service the emulator answered, by action.
fn requests_of(d: &Deployment, service: &str) -> BTreeMap<String, u64> {
    d.emu
        .requests()
        .into_iter()
        .filter(|(action, _)| action.starts_with(&format!("{service}:")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_through_both_state_machines_end_locked_in_the_vault() {
    let d = Deployment::start(Seed::Demo).await;
    d.emu.configure(json!({"creating_reads": 2}));
    let c = config();
    let source = d
        .run(Side::Source, "cache-1", &input(&c, Side::Source))
        .await;
    assert_eq!(source.status, "SUCCEEDED", "{source:?}");
    let output: Value = serde_json::from_str(source.output.as_deref().unwrap()).unwrap();
    assert_eq!(output["shared"], 4, "{output}");
    let destination = d
        .run(Side::Destination, "cache-1", &input(&c, Side::Destination))
        .await;
    assert_eq!(destination.status, "SUCCEEDED", "{destination:?}");

    let exported = bucket_objects(
        &d,
        Side::Source,
        SOURCE_REGION,
        &export_bucket("demo", SOURCE_ACCOUNT, SOURCE_REGION),
    )
    .await;
    let exports: BTreeSet<&str> = exported
        .keys()
        .filter_map(|k| parse_manifest_key(k).map(|(id, _)| id))
        .collect();
    // Three replication groups and the serverless cache, each complete with its manifest;
    // six shard objects (carts-valkey has three shards).
    assert_eq!(exports.len(), 4, "{exported:?}");
    for cache in [
        "carts-valkey",
        "legacy-redis",
        "profiles-serverless",
        "sessions-valkey",
    ] {
        assert!(
            exports.iter().any(|id| id.contains(&format!("-{cache}-"))),
            "{cache}"
        );
    }
    assert_eq!(exported.keys().filter(|k| k.ends_with(".rdb")).count(), 6);

    let vault_key = c.destinations[0].regions[0].kms_key.clone();
    let vault = bucket_objects(
        &d,
        Side::Destination,
        DESTINATION_REGION,
        &vault_bucket("demo", DESTINATION_ACCOUNT, DESTINATION_REGION),
    )
    .await;
    assert_eq!(
        vault.keys().collect::<Vec<_>>(),
        exported.keys().collect::<Vec<_>>()
    );
    for (key, (size, kms, lock)) in &vault {
        assert_eq!(*size, exported[key].0, "{key}");
        assert_eq!(kms, &vault_key, "{key}");
        assert_eq!(lock.as_deref(), Some("GOVERNANCE"), "{key}");
    }
    assert!(d.failure_reports(Side::Source).await.is_empty());
    assert!(d.failure_reports(Side::Destination).await.is_empty());

    // The second execution of each side: listings only.
    d.emu.reset_requests();
    let source = d
        .run(Side::Source, "cache-2", &input(&c, Side::Source))
        .await;
    assert_eq!(source.status, "SUCCEEDED", "{source:?}");
    let destination = d
        .run(Side::Destination, "cache-2", &input(&c, Side::Destination))
        .await;
    assert_eq!(destination.status, "SUCCEEDED", "{destination:?}");
    let mut calls = requests_of(&d, "elasticache");
    calls.extend(requests_of(&d, "s3"));
    for (action, count) in &calls {
        // S3 requests are counted by method and path: a GET of a bucket is a listing.
        let listing = action.contains(":Describe")
            || action.contains(":List")
            || (action.starts_with("s3:GET /") && action.ends_with('/'));
        assert!(
            listing,
            "{action} x{count} in a steady-state run: {calls:?}"
        );
    }
    // Source: take (2 cache and 2 snapshot describes, the bucket), retention (2 snapshot
    // describes, the bucket); destination: copy-in (the source's bucket, the vault) and
    // retention (the vault).
    let total: u64 = calls.values().sum();
    assert_eq!(total, 11, "{calls:?}");

    // A restore drill of a three-shard group and the serverless cache through the drill
    // state machine: each seeded from its vault export, available, timed, deleted, recorded.
    d.emu.configure(json!({"restore_reads": 2}));
    let mut run = serde_json::to_value(
        DrillRun::from_config(&c, DESTINATION_ACCOUNT)
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    run["drills"]["databases"] = json!(["carts-valkey", "profiles-serverless"]);
    d.emu.reset_requests();
    let arn = d.start_drill("cache-drill", &run).await;
    let done = d
        .wait(Side::Destination, &arn, std::time::Duration::from_secs(300))
        .await;
    assert_eq!(done.status, "SUCCEEDED", "{done:#?}");
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    assert_eq!(output["succeeded"], 2, "{output}");
    let calls = requests_of(&d, "elasticache");
    assert_eq!(
        calls.get("elasticache:CreateReplicationGroup"),
        Some(&2),
        "{calls:?}"
    );
    assert_eq!(
        calls.get("elasticache:DeleteReplicationGroup"),
        Some(&2),
        "{calls:?}"
    );
    let left: Vec<String> = d
        .context(Side::Destination)
        .elasticache(DESTINATION_REGION)
        .describe_replication_groups()
        .send()
        .await
        .unwrap()
        .replication_groups()
        .iter()
        .filter_map(|g| g.replication_group_id().map(str::to_string))
        .filter(|id| id.starts_with("sc-demo-dr-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let records = read_records(
        &d.context(Side::Destination),
        SOURCE_REGION,
        "demo",
        DESTINATION_REGION,
    )
    .await
    .unwrap();
    let mut drilled: Vec<(&str, bool)> = records
        .iter()
        .map(|r| {
            (
                r.database.as_str(),
                r.succeeded && r.restore_seconds.is_some(),
            )
        })
        .collect();
    drilled.sort();
    assert_eq!(
        drilled,
        [("carts-valkey", true), ("profiles-serverless", true)]
    );
    assert!(d.failure_reports(Side::Destination).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_elasticache_may_not_write_fails_the_execution_with_a_report_naming_the_cache() {
    let d = Deployment::start(Seed::Demo).await;
    let c = config();
    let bucket = export_bucket("demo", SOURCE_ACCOUNT, SOURCE_REGION);
    // The bucket refuses legacy-redis's objects (as a policy missing its key prefix would).
    d.emu.configure(json!({"deny": [{
        "account": SOURCE_ACCOUNT,
        "action": "s3:PutObject",
        "resource": format!("^{bucket}/{}legacy-redis-", schedule_prefix("demo", SCHEDULE)),
    }]}));
    let execution = d
        .run(Side::Source, "cache-denied", &input(&c, Side::Source))
        .await;
    assert_eq!(execution.status, "FAILED", "{execution:?}");
    let reports = d.failure_reports(Side::Source).await;
    let report = reports
        .iter()
        .find(|r| {
            r["Subject"]
                .as_str()
                .unwrap_or_default()
                .contains("legacy-redis")
        })
        .unwrap_or_else(|| panic!("no SNS report names legacy-redis: {reports:?}"));
    let body: Value = serde_json::from_str(report["Message"].as_str().unwrap()).unwrap();
    let failures = body["share_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{body}");
    assert_eq!(failures[0]["resource"], "legacy-redis");
    assert_eq!(failures[0]["stage"], "share");
    assert_eq!(failures[0]["error"]["errorType"], "AccessDenied");
    assert!(
        body["coverage"]["named"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["database"] == "legacy-redis"),
        "{body}"
    );
    // The three other caches are exported and complete; legacy-redis has nothing there.
    let exported = bucket_objects(&d, Side::Source, SOURCE_REGION, &bucket).await;
    let complete: BTreeSet<&str> = exported
        .keys()
        .filter_map(|k| parse_manifest_key(k).map(|(id, _)| id))
        .collect();
    assert_eq!(complete.len(), 3, "{exported:?}");
    assert!(!exported.keys().any(|k| k.contains("-legacy-redis-")));
}
