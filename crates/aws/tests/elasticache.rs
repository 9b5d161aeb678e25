//! The ElastiCache adapter over the emulator: caches of both kinds listed (tags only when
//! asked), snapshots made under deterministic names (a taken name is no error; a node type
//! that cannot be snapshotted is a clear InvalidState), exported as `.rdb` objects to a bucket
//! whose policy lets ElastiCache write (and refused, saying so, when it does not), once;
//! an object copied into a vault in parts, across accounts and regions, over several calls.

use std::collections::BTreeMap;
use std::time::Duration;

use snapcourier_aws::adapter::Started;
use snapcourier_aws::elasticache::{
    CacheKind, create_snapshot, delete_snapshot, export, kind_of, list_caches, list_objects,
    list_snapshots, list_versions,
};
use snapcourier_aws::elasticache::{PartPlan, PartsCopy, VaultCopy, copy_parts_to_vault};
use snapcourier_aws::{AwsContext, ClientOptions};
use snapcourier_core::Error;
use snapcourier_emulator::{
    DESTINATION_ACCOUNT, DESTINATION_REGION, Emulator, SOURCE_ACCOUNT, SOURCE_REGION, Seed, Side,
};

const BUCKET: &str = "demo-cache-exports";

fn context(emu: &Emulator) -> AwsContext {
    context_of(emu, Side::Source)
}

fn context_of(emu: &Emulator, side: Side) -> AwsContext {
    AwsContext::new(
        &emu.sdk_config(side),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_object_is_copied_into_the_vault_in_parts_over_several_calls() {
    use aws_sdk_s3::types::ChecksumAlgorithm;
    let emu = Emulator::start(Seed::Demo);
    let source = context(&emu);
    let vault_ctx = context_of(&emu, Side::Destination);
    let export = format!("sc-demo-export-{SOURCE_ACCOUNT}-{SOURCE_REGION}");
    let vault = format!("sc-demo-vault-{DESTINATION_ACCOUNT}-{DESTINATION_REGION}");
    let key = "sc-demo-cachedaily-big-20261202-0000-0001.rdb";
    let mib: i64 = 1024 * 1024;
    let body: Vec<u8> = (0..11 * mib).map(|i| (i % 251) as u8).collect();
    source
        .s3(SOURCE_REGION)
        .put_object()
        .bucket(&export)
        .key(key)
        .body(body.clone().into())
        .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
        .send()
        .await
        .unwrap();
    let head = source
        .s3(SOURCE_REGION)
        .head_object()
        .bucket(&export)
        .key(key)
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    let crc = head.checksum_crc64_nvme().unwrap().to_string();
    let kms_key = emu.kms_key(DESTINATION_ACCOUNT, DESTINATION_REGION);
    let until = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48);
    let copy = VaultCopy {
        from_bucket: &export,
        key,
        to_region: DESTINATION_REGION,
        to_bucket: &vault,
        kms_key: &kms_key,
        lock_mode: "GOVERNANCE",
        retain_until: until,
        checksum: Some("CRC64NVME"),
    };
    // Three parts of 5 MiB (the last 1 MiB), two per call.
    let plan = PartPlan {
        part_bytes: 5 * mib,
        parts_per_call: 2,
        concurrency: 2,
    };
    emu.reset_requests();
    let first = copy_parts_to_vault(&vault_ctx, &copy, 11 * mib, &crc, plan)
        .await
        .unwrap();
    assert_eq!(
        first,
        PartsCopy::Partial {
            copied: 2,
            parts: 3
        }
    );
    let s3 = vault_ctx.s3(DESTINATION_REGION);
    let missing = s3.head_object().bucket(&vault).key(key).send().await;
    assert!(
        missing.is_err(),
        "nothing in the vault before the last part"
    );
    // The second call finds the same upload and copies only the third part.
    let second = copy_parts_to_vault(&vault_ctx, &copy, 11 * mib, &crc, plan)
        .await
        .unwrap();
    assert_eq!(second, PartsCopy::Done);
    let requests = emu.requests();
    // The emulator names S3 requests by method and path: a PUT on the key is a part's copy.
    assert_eq!(
        requests.get(&format!("s3:PUT /{vault}/{key}")),
        Some(&3),
        "{requests:?}"
    );
    let copied = s3
        .head_object()
        .bucket(&vault)
        .key(key)
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(copied.content_length(), Some(11 * mib));
    assert_eq!(copied.checksum_crc64_nvme(), Some(crc.as_str()));
    assert_eq!(copied.ssekms_key_id(), Some(kms_key.as_str()));
    assert_eq!(
        copied.object_lock_mode().map(|m| m.as_str()),
        Some("GOVERNANCE")
    );
    assert_eq!(
        copied.object_lock_retain_until_date().map(|t| t.secs()),
        Some(until.as_second())
    );
    let got = s3
        .get_object()
        .bucket(&vault)
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert!(got.as_ref() == body.as_slice(), "the same bytes");
    let left = s3
        .list_multipart_uploads()
        .bucket(&vault)
        .send()
        .await
        .unwrap();
    assert!(left.uploads().is_empty());

    // A source checksum the parts do not add up to: S3 refuses, nothing is kept, the upload
    // is aborted so that the next look starts again.
    let other = "sc-demo-cachedaily-big-20261202-0000-0002.rdb";
    source
        .s3(SOURCE_REGION)
        .put_object()
        .bucket(&export)
        .key(other)
        .body(body.into())
        .send()
        .await
        .unwrap();
    let refused = copy_parts_to_vault(
        &vault_ctx,
        &VaultCopy { key: other, ..copy },
        11 * mib,
        "AAAAAAAAAAA=",
        PartPlan {
            parts_per_call: 10,
            ..plan
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&refused, Error::InvalidState { message, .. } if message.contains("CRC64NVME")),
        "{refused:?}"
    );
    assert!(
        s3.head_object()
            .bucket(&vault)
            .key(other)
            .send()
            .await
            .is_err()
    );
    let left = s3
        .list_multipart_uploads()
        .bucket(&vault)
        .send()
        .await
        .unwrap();
    assert!(left.uploads().is_empty(), "{:?}", left.uploads());
}
