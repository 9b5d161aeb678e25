//! ElastiCache's vault copies on what the emulator cannot produce, pinned with stubbed S3
//! responses (aws-smithy-mocks): a copy whose checksum differs from its source's, and a
//! shard object over the 5 GiB a single CopyObject can copy.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::Client;
use aws_sdk_s3::operation::copy_object::CopyObjectOutput;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::Object;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use jiff::{SignedDuration, Timestamp};
use snapcourier_aws::{AwsContext, ClientOptions, steps};
use snapcourier_core::Config;
use snapcourier_core::events::{DestinationRun, Look};
use snapcourier_core::export::{ExportManifest, ExportedFile, MANIFEST_VERSION};

const EXAMPLE: &str = include_str!("../../../examples/snapcourier.yaml");

fn context() -> AwsContext {
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .build();
    AwsContext::new(&sdk, ClientOptions::default())
}

/// Today's export of carts-valkey: one shard of `size` bytes and its manifest.
fn export(size: i64) -> (ExportManifest, Vec<u8>) {
    let slot =
        snapcourier_core::interval::slot_start(Timestamp::now(), SignedDuration::from_hours(24));
    let id = snapcourier_core::naming::snapshot_id("demo", "cache-daily", "carts-valkey", slot);
    let manifest = ExportManifest {
        version: MANIFEST_VERSION,
        snapshot: id.clone(),
        cache: "carts-valkey".into(),
        captured: slot + SignedDuration::from_mins(5),
        engine: None,
        objects: vec![ExportedFile {
            key: format!("{id}-0001.rdb"),
            size,
        }],
    };
    let body = serde_json::to_vec(&manifest).unwrap();
    (manifest, body)
}

fn listed(manifest: &ExportManifest, body: &[u8]) -> ListObjectsV2Output {
    let object = |key: &str, size: i64| Object::builder().key(key).size(size).build();
    ListObjectsV2Output::builder()
        .contents(object(&manifest.objects[0].key, manifest.objects[0].size))
        .contents(object(&manifest.key(), body.len() as i64))
        .build()
}

fn head(size: i64, sha256: &str) -> HeadObjectOutput {
    HeadObjectOutput::builder()
        .content_length(size)
        .checksum_sha256(sha256)
        .build()
}

fn run() -> DestinationRun {
    let config = Config::parse(EXAMPLE).unwrap();
    DestinationRun::from_config(&config, "cache-daily", "222222222222").unwrap()
}

#[tokio::test]
async fn a_vault_copy_whose_checksum_differs_from_its_source_is_a_failure_and_the_export_is_not_done()
 {
    let (manifest, body) = export(100);
    let (m, b) = (manifest.clone(), body.clone());
    let list = mock!(Client::list_objects_v2).then_output(move || listed(&m, &b));
    let get = mock!(Client::get_object).then_output(move || {
        GetObjectOutput::builder()
            .content_length(body.len() as i64)
            .body(ByteStream::from(body.clone()))
            .build()
    });
    let source_head = mock!(Client::head_object).then_output(|| head(100, "c291cmNl"));
    let source = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&list, &get, &source_head]);
    let versions = mock!(Client::list_object_versions)
        .then_output(|| ListObjectVersionsOutput::builder().build());
    let copy = mock!(Client::copy_object).then_output(|| CopyObjectOutput::builder().build());
    let vault_head = mock!(Client::head_object).then_output(|| head(100, "b3RoZXI="));
    let vault = mock_client!(
        aws_sdk_s3,
        RuleMode::MatchAny,
        [&versions, &copy, &vault_head]
    );
    let ctx = context()
        .with_s3_client("us-east-1", source)
        .with_s3_client("eu-west-1", vault);

    let now = Timestamp::now();
    let out = steps::copy_in(&ctx, &run(), None, &Look::first(now), now)
        .await
        .unwrap();
    assert_eq!(out.failures.len(), 1, "{out:?}");
    let f = &out.failures[0];
    assert_eq!(f.resource, "carts-valkey (eu-west-1)");
    assert_eq!(f.stage, "copy-in");
    assert_eq!(f.error.error_type, "InvalidState");
    assert!(
        f.error.message.contains("does not match its source"),
        "{}",
        f.error.message
    );
    assert!(out.done.is_empty(), "{out:?}");
    // The shard was copied and found wrong; the manifest, which would complete the export in
    // the vault, was never copied.
    assert_eq!(copy.num_calls(), 1);
}

#[tokio::test]
async fn a_shard_over_five_gib_is_refused_before_any_copy() {
    let six_gib = 6 * 1024 * 1024 * 1024;
    let (manifest, body) = export(six_gib);
    let (m, b) = (manifest.clone(), body.clone());
    let list = mock!(Client::list_objects_v2).then_output(move || listed(&m, &b));
    let get = mock!(Client::get_object).then_output(move || {
        GetObjectOutput::builder()
            .content_length(body.len() as i64)
            .body(ByteStream::from(body.clone()))
            .build()
    });
    let source_head = mock!(Client::head_object).then_output(move || head(six_gib, "c291cmNl"));
    let source = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&list, &get, &source_head]);
    let versions = mock!(Client::list_object_versions)
        .then_output(|| ListObjectVersionsOutput::builder().build());
    let copy = mock!(Client::copy_object).then_output(|| CopyObjectOutput::builder().build());
    let vault = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&versions, &copy]);
    let ctx = context()
        .with_s3_client("us-east-1", source)
        .with_s3_client("eu-west-1", vault);

    let now = Timestamp::now();
    let out = steps::copy_in(&ctx, &run(), None, &Look::first(now), now)
        .await
        .unwrap();
    assert_eq!(out.failures.len(), 1, "{out:?}");
    let message = &out.failures[0].error.message;
    assert!(message.contains("multipart copy"), "{message}");
    assert!(message.contains(&manifest.objects[0].key), "{message}");
    assert_eq!(copy.num_calls(), 0);
}
