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

/// The schedule's objects in the source's export bucket.
async fn exported_objects(emu: &Emulator) -> Vec<Object> {
    objects(
        emu,
        Side::Source,
        SOURCE_REGION,
        &export_bucket_name(),
        &prefix(),
    )
    .await
}

/// The schedule's objects in the destination's vault bucket of `region`.
async fn vault_objects(emu: &Emulator, region: &str) -> Vec<Object> {
    objects(
        emu,
        Side::Destination,
        region,
        &vault_bucket_name(region),
        &prefix(),
    )
    .await
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

    // Exported: one object per shard (carts-valkey has three), then the manifest that says
    // the export is complete and when its data was captured (the snapshot's creation time).
    let exported = exported_objects(&emu).await;
    let ids: BTreeSet<String> = snapshots.iter().map(|s| s.id.clone()).collect();
    assert_eq!(export_ids(&exported), ids);
    let shards = exported.iter().filter(|o| o.key.ends_with(".rdb")).count();
    assert_eq!(shards, 6, "{exported:?}");
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
    for s in &snapshots {
        let captured = s.created.expect("creation time");
        let manifest = snapcourier_core::export::manifest_key(&s.id, captured);
        assert!(exported.iter().any(|o| o.key == manifest), "{manifest}");
    }
    assert_eq!(exported.len(), shards + snapshots.len());

    // In the vault of every destination region: the same objects, re-encrypted with that
    // region's key, locked (governance, the example's default) until the floor has passed,
    // and the same bytes (SHA-256 as S3 keeps it).
    for r in &c.destinations[0].regions {
        let vault = vault_objects(&emu, &r.region).await;
        assert_eq!(vault.len(), exported.len(), "{}", r.region);
        let key = c.destinations[0].regions[0].kms_key.clone().unwrap();
        for o in &vault {
            let source = exported.iter().find(|e| e.key == o.key).unwrap();
            assert_eq!(o.size, source.size, "{}", o.key);
            assert!(o.sha256.is_some() && o.sha256 == source.sha256, "{}", o.key);
            assert_eq!(o.kms_key.as_deref(), Some(key.as_str()), "{}", o.key);
            assert_ne!(o.kms_key, source.kms_key);
            assert_eq!(o.lock_mode.as_deref(), Some("GOVERNANCE"));
            // Locked until the floor has passed since the capture (the snapshot's creation).
            let id = match o.key.split_once(".manifest-") {
                Some((id, _)) => id,
                None => &o.key[..o.key.len() - "-0001.rdb".len()],
            };
            let captured = snapshots
                .iter()
                .find(|s| s.id == id)
                .and_then(|s| s.created)
                .unwrap();
            let floor = SignedDuration::from_hours(24 * 35);
            // (Manifests and locks keep whole seconds.)
            assert_eq!(
                o.retain_until.map(|t| t.as_second()),
                Some((captured + floor).as_second()),
                "{}",
                o.key
            );
        }
    }
    let copied: BTreeSet<&str> = dst
        .items
        .iter()
        .filter(|i| i.outcome == "copied")
        .map(|i| i.snapshot_id.as_str())
        .collect();
    assert_eq!(copied.len(), 4, "{:?}", dst.items);
    // The recovery point is the newest snapshot's capture, on both sides.
    let newest = snapshots.iter().filter_map(|s| s.created).max().unwrap();
    for report in [&src, &dst] {
        let heartbeat = report.heartbeat.clone().expect("heartbeat");
        assert!(heartbeat.missing_in.is_empty(), "{heartbeat:?}");
        let got = heartbeat.newest.expect("newest");
        assert_eq!(got.as_second(), newest.as_second(), "{heartbeat:?}");
    }

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
    assert_eq!(vault_objects(&emu, "eu-west-1").await.len(), exported.len());
}

/// The example's schedule, covering tiny-redis too.
fn with_tiny_redis() -> Config {
    let mut c = config();
    let i = c.schedules.iter().position(|s| s.name == SCHEDULE).unwrap();
    c.schedules[i].include.push("^tiny-".into());
    c.validate().unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_too_small_to_snapshot_is_named_and_the_others_are_protected() {
    let emu = Emulator::start(Seed::Demo);
    let c = with_tiny_redis();
    let (src, dst) = run_schedule(&emu, &c, SCHEDULE).await;
    assert_eq!(src.failures.len(), 1, "{:?}", src.failures);
    let f = &src.failures[0];
    assert_eq!(f.resource, "tiny-redis");
    assert_eq!(f.stage, "take");
    assert_eq!(f.error.error_type, "InvalidState");
    assert!(f.error.message.contains("node type"), "{}", f.error.message);
    assert!(dst.failures.is_empty(), "{:?}", dst.failures);
    let caches: BTreeSet<String> = owned(&cache_snapshots(&emu, Side::Source, SOURCE_REGION).await)
        .into_iter()
        .map(|s| s.cluster)
        .collect();
    assert_eq!(caches, PROTECTED.into_iter().map(String::from).collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_bucket_elasticache_cannot_write_fails_each_export_with_what_to_do() {
    let emu = Emulator::start(Seed::Demo);
    emu.configure(serde_json::json!({"deny": [{
        "account": SOURCE_ACCOUNT,
        "action": "s3:PutObject",
        "resource": export_bucket_name(),
    }]}));
    let c = config();
    let (src, _) = run_schedule(&emu, &c, SCHEDULE).await;
    let failed: BTreeSet<&str> = src.failures.iter().map(|f| f.resource.as_str()).collect();
    assert_eq!(
        failed,
        PROTECTED.into_iter().collect(),
        "{:?}",
        src.failures
    );
    for f in &src.failures {
        assert_eq!(f.stage, "share");
        assert_eq!(f.error.error_type, "AccessDenied");
        assert!(
            f.error
                .message
                .contains("elasticache-snapshot.amazonaws.com"),
            "{}",
            f.error.message
        );
    }
    // Nothing was exported; the snapshots stay for the next run.
    assert!(exported_objects(&emu).await.is_empty());
    assert_eq!(
        owned(&cache_snapshots(&emu, Side::Source, SOURCE_REGION).await).len(),
        PROTECTED.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_named_like_ours_but_not_tagged_ours_is_never_exported_and_foreign_objects_are_never_copied()
 {
    let emu = Emulator::start(Seed::Demo);
    let ctx = context(&emu, Side::Source);
    let slot =
        snapcourier_core::interval::slot_start(Timestamp::now(), SignedDuration::from_hours(24));
    // Someone in the source account takes this slot's snapshot of sessions-valkey by hand,
    // under snapcourier's id, without its tags.
    let squatted = snapcourier_core::naming::snapshot_id("demo", SCHEDULE, "sessions-valkey", slot);
    ctx.elasticache(SOURCE_REGION)
        .create_snapshot()
        .replication_group_id("sessions-valkey")
        .snapshot_name(&squatted)
        .send()
        .await
        .unwrap();
    // And puts objects in the export bucket: one that is no export; a forged export of a slot
    // 400 days ago, complete with a manifest saying it was captured now (not in its slot);
    // and one whose manifest puts its capture inside that old slot (too old for the vault).
    let s3 = ctx.s3(SOURCE_REGION);
    let day = SignedDuration::from_hours(24);
    let forged = |resource: &str| {
        snapcourier_core::naming::snapshot_id("demo", SCHEDULE, resource, slot - day * 400)
    };
    let put = |key: String, body: Vec<u8>| {
        let s3 = s3.clone();
        async move {
            s3.put_object()
                .bucket(export_bucket_name())
                .key(&key)
                .body(body.into())
                .send()
                .await
                .unwrap();
        }
    };
    put(format!("{}junk.rdb", prefix()), b"REDIS0011".to_vec()).await;
    for (resource, captured) in [
        ("carts-valkey", Timestamp::now()),
        (
            "legacy-redis",
            slot - day * 400 + SignedDuration::from_hours(1),
        ),
    ] {
        let id = forged(resource);
        put(format!("{id}-0001.rdb"), b"REDIS0011".to_vec()).await;
        let manifest = snapcourier_core::export::ExportManifest {
            version: snapcourier_core::export::MANIFEST_VERSION,
            snapshot: id.clone(),
            cache: resource.into(),
            captured,
            engine: None,
            objects: vec![snapcourier_core::export::ExportedFile {
                key: format!("{id}-0001.rdb"),
                size: 9,
            }],
        };
        put(manifest.key(), serde_json::to_vec(&manifest).unwrap()).await;
    }
    let c = config();
    let (src, dst) = run_schedule(&emu, &c, SCHEDULE).await;
    // Reported, not exported, not deleted.
    let squat: Vec<_> = src
        .failures
        .iter()
        .filter(|f| f.resource == "sessions-valkey")
        .collect();
    assert_eq!(squat.len(), 1, "{:?}", src.failures);
    assert_eq!(squat[0].error.error_type, "InvalidState");
    assert!(
        squat[0].error.message.contains("not tagged"),
        "{}",
        squat[0].error.message
    );
    let exported = exported_objects(&emu).await;
    assert!(!exported.iter().any(|o| o.key.starts_with(&squatted)));
    assert!(
        cache_snapshots(&emu, Side::Source, SOURCE_REGION)
            .await
            .iter()
            .any(|s| s.id == squatted)
    );
    // The other caches are protected; the foreign objects never reach the vault.
    assert!(dst.failures.is_empty(), "{:?}", dst.failures);
    let vault = vault_objects(&emu, "eu-west-1").await;
    assert_eq!(export_ids(&vault).len(), 3, "{vault:?}");
    assert!(!vault.iter().any(|o| o.key.contains("junk")
        || o.key.starts_with(&forged("carts-valkey"))
        || o.key.starts_with(&forged("legacy-redis"))));
    // Every foreign object is still in the source bucket: the junk, two forged exports (an
    // object and a manifest each), and beside them the three real exports (five shard objects,
    // three manifests).
    assert_eq!(exported.len(), 1 + 2 * 2 + 5 + 3, "{exported:?}");
    // The export captured inside its old slot is real but older than the floor; the one
    // captured outside its slot is no export at all.
    assert_eq!(dst.too_old, vec![forged("legacy-redis")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_snapshot_in_the_slot_is_named_with_what_to_do_and_the_others_are_protected() {
    let emu = Emulator::start(Seed::Demo);
    let slot =
        snapcourier_core::interval::slot_start(Timestamp::now(), SignedDuration::from_hours(24));
    let id = snapcourier_core::naming::snapshot_id("demo", SCHEDULE, "legacy-redis", slot);
    let mut failed = Case::owned_cache_snapshot(&id, "legacy-redis", slot);
    failed["status"] = "failed".into();
    emu.insert_snapshots(&[failed]);
    let c = config();
    let (src, dst) = run_schedule(&emu, &c, SCHEDULE).await;
    assert_eq!(src.failures.len(), 1, "{:?}", src.failures);
    let f = &src.failures[0];
    assert_eq!(f.resource, "legacy-redis");
    assert_eq!(f.stage, "take");
    assert_eq!(f.error.error_type, "InvalidState");
    assert!(f.error.message.contains("`failed`"), "{}", f.error.message);
    assert!(f.error.message.contains("delete it"), "{}", f.error.message);
    // Nothing of it was exported; the three others reached the vault.
    let exported = exported_objects(&emu).await;
    assert!(!exported.iter().any(|o| o.key.starts_with(&id)));
    assert!(dst.failures.is_empty(), "{:?}", dst.failures);
    let vault = vault_objects(&emu, "eu-west-1").await;
    assert_eq!(export_ids(&vault).len(), 3, "{vault:?}");
}

#[test]
fn snapshot_now_exports_a_cache_into_the_vault_and_both_sides_expire_it_when_its_keep_ends() {
    let emu = Emulator::start(Seed::Demo);
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/snapcourier.yaml"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_snapcourier"))
        .args([
            "snapshot-now",
            "-c",
            example,
            "--profile",
            "snapcourier-source",
        ])
        .args([
            "--schedule",
            SCHEDULE,
            "--database",
            "carts-valkey",
            "--keep",
            "2d",
        ])
        .args(["--label", "before resharding", "--wait"])
        .args(["--destination-profile", "snapcourier-destination", "--json"])
        .env("AWS_CONFIG_FILE", &emu.state.aws_config_file)
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            &emu.state.aws_credentials_file,
        )
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["shared"], true, "{printed}");
    assert_eq!(
        printed["copied_to"],
        serde_json::json!({"222222222222/eu-west-1": true}),
        "{printed}"
    );
    let id = printed["snapshot_id"].as_str().unwrap().to_string();
    assert!(
        id.contains("-carts-valkey-od-") && id.ends_with("-k48"),
        "{id}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // Three shards and the manifest, in the vault, locked until the floor.
        let vault = objects(
            &emu,
            Side::Destination,
            "eu-west-1",
            &vault_bucket_name("eu-west-1"),
            &id,
        )
        .await;
        assert_eq!(vault.len(), 4, "{vault:?}");
        assert!(
            vault
                .iter()
                .all(|o| o.lock_mode.as_deref() == Some("GOVERNANCE"))
        );
        let labelled = cache_snapshots(&emu, Side::Source, SOURCE_REGION).await;
        let snapshot = labelled.iter().find(|s| s.id == id).expect("the snapshot");
        assert_eq!(snapshot.tags["snapcourier:label"], "before resharding");

        // Three days on, its keep (2 days) has ended: the source deletes it and its export;
        // the schedule's own snapshots are not the on-demand one's business.
        let c = config();
        let run = snapcourier_core::events::SourceRun::from_config(&c, SCHEDULE).unwrap();
        let later = Timestamp::now() + SignedDuration::from_hours(72);
        let out = snapcourier_aws::steps::delete_source(&context(&emu, Side::Source), &run, later)
            .await
            .unwrap();
        let deleted: Vec<_> = out
            .deleted
            .iter()
            .map(|d| (d.snapshot_id.clone(), d.reason))
            .collect();
        assert_eq!(deleted.len(), 1, "{deleted:?}");
        assert_eq!(deleted[0].0, id);
        assert_eq!(
            deleted[0].1,
            snapcourier_core::events::DeletionReason::OnDemand
        );
        assert!(
            objects(
                &emu,
                Side::Source,
                SOURCE_REGION,
                &export_bucket_name(),
                &id
            )
            .await
            .is_empty()
        );
        assert!(
            !cache_snapshots(&emu, Side::Source, SOURCE_REGION)
                .await
                .iter()
                .any(|s| s.id == id)
        );

        // The vault keeps it for the floor (35 days) whatever its keep: nothing goes at three
        // days.
        let drun = snapcourier_core::events::DestinationRun::from_config(
            &c,
            SCHEDULE,
            DESTINATION_ACCOUNT,
        )
        .unwrap();
        let out = snapcourier_aws::steps::delete_destination(
            &context(&emu, Side::Destination),
            &drun,
            later,
        )
        .await
        .unwrap();
        assert!(out.deleted.is_empty() && out.failures.is_empty(), "{out:?}");
        assert_eq!(
            objects(
                &emu,
                Side::Destination,
                "eu-west-1",
                &vault_bucket_name("eu-west-1"),
                &id
            )
            .await
            .len(),
            4
        );
    });
}
