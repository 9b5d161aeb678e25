//! ElastiCache through S3, over the emulator: snapshots taken per slot, exported to the source
//! stack's bucket, copied into the destination's Object Lock vault in every destination
//! region with the region's key, verified, and expired on both sides.

mod common;

use std::collections::BTreeSet;

use common::*;
use jiff::{SignedDuration, Timestamp};
use snapcourier_core::Config;
use snapcourier_core::naming::{export_bucket, schedule_prefix, vault_bucket};

const SCHEDULE: &str = "cache-daily";

/// The example config: its ElastiCache schedule covers the demo world's caches but tiny-redis
/// (cache.t1.micro, which ElastiCache cannot snapshot).
fn cache_config() -> Config {
    let c = config();
    assert!(c.schedule(SCHEDULE).is_ok());
    c
}

fn export_bucket_name() -> String {
    export_bucket("demo", SOURCE_ACCOUNT, SOURCE_REGION)
}

fn vault_bucket_name(region: &str) -> String {
    vault_bucket("demo", DESTINATION_ACCOUNT, region)
}

fn prefix() -> String {
    schedule_prefix("demo", SCHEDULE)
}

const PROTECTED: [&str; 4] = [
    "carts-valkey",
    "legacy-redis",
    "profiles-serverless",
    "sessions-valkey",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_are_exported_and_copied_into_the_locked_vault_with_the_vaults_keys() {
    let emu = Emulator::start(Seed::Demo);
    emu.configure(serde_json::json!({"creating_reads": 2}));
    let c = cache_config();
    let (src, dst) = run_schedule(&emu, &c, SCHEDULE).await;
    assert!(src.failures.is_empty(), "{:?}", src.failures);
    assert!(dst.failures.is_empty(), "{:?}", dst.failures);

    // One snapshot per covered cache, ours by its tags; none of tiny-redis.
    let snapshots: Vec<Seen> = owned(&cache_snapshots(&emu, Side::Source, SOURCE_REGION).await);
    let caches: BTreeSet<&str> = snapshots.iter().map(|s| s.cluster.as_str()).collect();
    assert_eq!(caches, PROTECTED.into_iter().collect());
    for s in &snapshots {
        assert!(s.id.starts_with(&prefix()), "{}", s.id);
        assert_eq!(s.tags["snapcourier:schedule"], SCHEDULE);
        assert_eq!(s.tags["snapcourier:stage"], "source");
        assert_eq!(s.status, "available");
    }

    // Exported: one object per shard (carts-valkey has three), under the export key.
    let exported = objects(
        &emu,
        Side::Source,
        SOURCE_REGION,
        &export_bucket_name(),
        &prefix(),
    )
    .await;
    let ids: BTreeSet<String> = snapshots.iter().map(|s| s.id.clone()).collect();
    assert_eq!(export_ids(&exported), ids);
    assert_eq!(exported.len(), 6, "{exported:?}");
    let carts = snapshots
        .iter()
        .find(|s| s.cluster == "carts-valkey")
        .unwrap();
    for shard in ["0001", "0002", "0003"] {
        assert!(
            exported
                .iter()
                .any(|o| o.key == format!("{}-{shard}.rdb", carts.id)),
            "{shard}"
        );
    }

    // In the vault of every destination region: the same objects, re-encrypted with that
    // region's key, locked (governance, the example's default) until the floor has passed,
    // and the same bytes (SHA-256 as S3 keeps it).
    for r in &c.destinations[0].regions {
        let vault = objects(
            &emu,
            Side::Destination,
            &r.region,
            &vault_bucket_name(&r.region),
            &prefix(),
        )
        .await;
        assert_eq!(vault.len(), exported.len(), "{}", r.region);
        let key = c.destinations[0].regions[0].kms_key.clone().unwrap();
        for o in &vault {
            let source = exported.iter().find(|e| e.key == o.key).unwrap();
            assert_eq!(o.size, source.size, "{}", o.key);
            assert!(o.sha256.is_some() && o.sha256 == source.sha256, "{}", o.key);
            assert_eq!(o.kms_key.as_deref(), Some(key.as_str()), "{}", o.key);
            assert_ne!(o.kms_key, source.kms_key);
            assert_eq!(o.lock_mode.as_deref(), Some("GOVERNANCE"));
            let until = o.retain_until.unwrap();
            let floor = SignedDuration::from_hours(24 * 35);
            // The lock ends the floor after the capture: the slot's start.
            let slot = snapcourier_core::interval::slot_start(
                Timestamp::now(),
                SignedDuration::from_hours(24),
            );
            assert_eq!(until, slot + floor, "{}", o.key);
        }
    }
    let copied: BTreeSet<&str> = dst
        .items
        .iter()
        .filter(|i| i.outcome == "copied")
        .map(|i| i.snapshot_id.as_str())
        .collect();
    assert_eq!(copied.len(), 4, "{:?}", dst.items);
    let heartbeat = dst.heartbeat.expect("destination heartbeat");
    assert!(heartbeat.age_seconds.is_some(), "{heartbeat:?}");

    // The second run costs its listings: nothing created, exported or copied.
    let (src2, dst2) = run_schedule(&emu, &c, SCHEDULE).await;
    assert!(
        src2.created.is_empty() && src2.failures.is_empty(),
        "{src2:?}"
    );
    assert!(dst2.failures.is_empty(), "{:?}", dst2.failures);
    // Source: take (2 cache describes, 2 snapshot describes, 1 bucket listing), one share
    // look (3) and retention (3); destination: a look (source bucket, 1 vault) and retention
    // (1 vault).
    assert!(src2.api_calls <= 11, "source {} calls", src2.api_calls);
    assert!(dst2.api_calls <= 3, "destination {} calls", dst2.api_calls);
    assert_eq!(
        objects(
            &emu,
            Side::Destination,
            "eu-west-1",
            &vault_bucket_name("eu-west-1"),
            &prefix()
        )
        .await
        .len(),
        exported.len()
    );
}
