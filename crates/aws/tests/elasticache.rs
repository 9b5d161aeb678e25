//! The ElastiCache adapter over the emulator: caches of both kinds listed (tags only when
//! asked), snapshots made under deterministic names (a taken name is no error; a node type
//! that cannot be snapshotted is a clear InvalidState), exported as `.rdb` objects to a bucket
//! whose policy lets ElastiCache write (and refused, saying so, when it does not), once.

use std::collections::BTreeMap;
use std::time::Duration;

use snapcourier_aws::adapter::Started;
use snapcourier_aws::elasticache::{
    CacheKind, create_snapshot, delete_snapshot, export, kind_of, list_caches, list_objects,
    list_snapshots, list_versions,
};
use snapcourier_aws::{AwsContext, ClientOptions};
use snapcourier_emulator::{Emulator, SOURCE_REGION, Seed, Side};

const BUCKET: &str = "demo-cache-exports";

fn context(emu: &Emulator) -> AwsContext {
    AwsContext::new(
        &emu.sdk_config(Side::Source),
        ClientOptions {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
        },
    )
}

fn name(cache: &str) -> String {
    format!("sc-demo-cachedaily-{cache}-20261202-0000")
}

fn ours() -> BTreeMap<String, String> {
    BTreeMap::from([("snapcourier:namespace".to_string(), "demo".to_string())])
}

/// The bucket policy ElastiCache needs to export into a bucket (the source stack writes it).
fn export_policy() -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": format!("{SOURCE_REGION}.elasticache-snapshot.amazonaws.com")},
        "Action": ["s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:GetBucketAcl"],
        "Resource": [format!("arn:aws:s3:::{BUCKET}"), format!("arn:aws:s3:::{BUCKET}/*")],
    }]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_are_snapshotted_under_their_names_and_exported_once_as_rdb_objects() {
    let emu = Emulator::start(Seed::Demo);
    let ctx = context(&emu);

    // Both kinds, no tag reads unless asked.
    emu.reset_requests();
    let caches = list_caches(&ctx, SOURCE_REGION, false).await.unwrap();
    let mut ids: Vec<&str> = caches.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "carts-valkey",
            "legacy-redis",
            "profiles-serverless",
            "sessions-valkey",
            "tiny-redis"
        ]
    );
    let serverless = caches
        .iter()
        .find(|c| c.id == "profiles-serverless")
        .unwrap();
    assert_eq!(kind_of(serverless), CacheKind::Serverless);
    assert!(
        !emu.requests()
            .contains_key("elasticache:ListTagsForResource"),
        "{:?}",
        emu.requests()
    );
    let tagged = list_caches(&ctx, SOURCE_REGION, true).await.unwrap();
    assert_eq!(
        emu.requests()["elasticache:ListTagsForResource"],
        tagged.len() as u64
    );

    let cache = |id: &str| caches.iter().find(|c| c.id == id).unwrap().clone();
    // A snapshot per cache under its deterministic name; the same name again is no error.
    for id in ["sessions-valkey", "carts-valkey", "profiles-serverless"] {
        let made = create_snapshot(&ctx, SOURCE_REGION, &cache(id), &name(id), &ours())
            .await
            .unwrap();
        assert!(matches!(made, Started::New(_)), "{id}: {made:?}");
        let again = create_snapshot(&ctx, SOURCE_REGION, &cache(id), &name(id), &ours())
            .await
            .unwrap();
        assert_eq!(again, Started::AlreadyExists, "{id}");
    }
    let e = create_snapshot(
        &ctx,
        SOURCE_REGION,
        &cache("tiny-redis"),
        &name("tiny-redis"),
        &ours(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "InvalidState", "{e}");
    assert!(e.to_string().contains("node type"), "{e}");
    let snapshots = list_snapshots(&ctx, SOURCE_REGION, "sc-demo-")
        .await
        .unwrap();
    assert_eq!(snapshots.len(), 3, "{snapshots:#?}");
    assert!(snapshots.iter().all(|s| s.status.is_available()));
    let of = |id: &str| snapshots.iter().find(|s| s.id == name(id)).unwrap().clone();
    assert_eq!(of("carts-valkey").resource_id, "carts-valkey");

    // A bucket ElastiCache may not write to: refused, saying what the policy needs.
    ctx.s3(SOURCE_REGION)
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let e = export(
        &ctx,
        SOURCE_REGION,
        &of("sessions-valkey"),
        false,
        BUCKET,
        &name("sessions-valkey"),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "AccessDenied", "{e}");
    assert!(
        e.to_string().contains("elasticache-snapshot.amazonaws.com"),
        "{e}"
    );
    assert!(
        list_objects(&ctx, SOURCE_REGION, BUCKET, "")
            .await
            .unwrap()
            .is_empty()
    );

    // With the policy: one object per shard; exporting again makes no second export.
    ctx.s3(SOURCE_REGION)
        .put_bucket_policy()
        .bucket(BUCKET)
        .policy(export_policy())
        .send()
        .await
        .unwrap();
    for (id, shards) in [("sessions-valkey", 1), ("carts-valkey", 3)] {
        export(&ctx, SOURCE_REGION, &of(id), false, BUCKET, &name(id))
            .await
            .unwrap();
        let objects = list_objects(&ctx, SOURCE_REGION, BUCKET, &name(id))
            .await
            .unwrap();
        assert_eq!(objects.len(), shards, "{id}: {objects:?}");
        assert!(
            objects
                .iter()
                .all(|o| o.key.ends_with(".rdb") && o.size > 0),
            "{objects:?}"
        );
    }
    export(
        &ctx,
        SOURCE_REGION,
        &of("profiles-serverless"),
        true,
        BUCKET,
        &name("profiles-serverless"),
    )
    .await
    .unwrap();
    assert_eq!(
        list_objects(&ctx, SOURCE_REGION, BUCKET, &name("profiles-serverless"))
            .await
            .unwrap()
            .len(),
        1
    );
    emu.reset_requests();
    export(
        &ctx,
        SOURCE_REGION,
        &of("carts-valkey"),
        false,
        BUCKET,
        &name("carts-valkey"),
    )
    .await
    .unwrap();
    // An export already made (a retried step, or another run): ElastiCache refuses to
    // overwrite its objects, which counts as done; the objects are those of the first.
    assert_eq!(
        emu.requests().get("elasticache:CopySnapshot"),
        Some(&1),
        "{:?}",
        emu.requests()
    );
    assert_eq!(
        list_objects(&ctx, SOURCE_REGION, BUCKET, &name("carts-valkey"))
            .await
            .unwrap()
            .len(),
        3
    );

    // Deleted; a second delete is no error.
    delete_snapshot(&ctx, SOURCE_REGION, &name("sessions-valkey"), false)
        .await
        .unwrap();
    delete_snapshot(&ctx, SOURCE_REGION, &name("sessions-valkey"), false)
        .await
        .unwrap();
    delete_snapshot(&ctx, SOURCE_REGION, &name("profiles-serverless"), true)
        .await
        .unwrap();
    assert_eq!(
        list_snapshots(&ctx, SOURCE_REGION, "sc-demo-")
            .await
            .unwrap()
            .len(),
        1
    );
}

/// More objects and versions than one S3 listing page (1,000 keys): both listings read every
/// page, and the version listing keeps every version of a key written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bucket_listings_read_every_page() {
    let emu = Emulator::start(Seed::Empty);
    let export = snapcourier_core::naming::export_bucket("demo", "111111111111", SOURCE_REGION);
    let vault = snapcourier_core::naming::vault_bucket("demo", "222222222222", "eu-west-1");
    let key = |i: usize| format!("sc-demo-cachedaily-x{i:04}-20261202-0000-0001.rdb");
    let objects = |bucket: &str| -> Vec<serde_json::Value> {
        (0..1_050)
            .map(|i| serde_json::json!({"bucket": bucket, "key": key(i), "size": 8}))
            .collect()
    };
    emu.insert_objects(&objects(&export));
    emu.insert_objects(&objects(&vault));
    // A second version of the first 20 keys in the versioned vault.
    emu.insert_objects(&objects(&vault)[..20]);

    let source = context(&emu);
    let listed = list_objects(&source, SOURCE_REGION, &export, "sc-demo-")
        .await
        .unwrap();
    assert_eq!(listed.len(), 1_050);

    let destination = AwsContext::new(
        &emu.sdk_config(Side::Destination),
        ClientOptions {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
        },
    );
    let versions = list_versions(&destination, "eu-west-1", &vault, "sc-demo-")
        .await
        .unwrap();
    assert_eq!(versions.len(), 1_070);
    assert_eq!(versions.iter().filter(|v| v.is_latest).count(), 1_050);
    let distinct: std::collections::BTreeSet<_> =
        versions.iter().map(|v| (&v.key, &v.version_id)).collect();
    assert_eq!(distinct.len(), 1_070, "no version listed twice");
}
