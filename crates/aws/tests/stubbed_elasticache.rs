//! ElastiCache's vault copies on what the emulator cannot produce, pinned with stubbed S3
//! responses (aws-smithy-mocks): a copy whose checksum differs from its source's, and shard
//! objects over the 5 GiB a single CopyObject can copy: copied in parts over several looks and
//! checked by S3 against the source's CRC64NVME, or refused when the source has none.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::Client;
use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_s3::operation::copy_object::CopyObjectOutput;
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::list_multipart_uploads::ListMultipartUploadsOutput;
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::operation::list_parts::ListPartsOutput;
use aws_sdk_s3::operation::upload_part_copy::UploadPartCopyOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CopyPartResult, MultipartUpload, Object, Part};
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

const GIB: i64 = 1024 * 1024 * 1024;
const PART: i64 = 512 * 1024 * 1024;
const CRC: &str = "Y3JjNjRudm0=";

/// The source side of a large export: the listing, the manifest, and HeadObject of the shard
/// (its size, and a CRC64NVME when `crc`) and of the manifest.
fn large_source(manifest: &ExportManifest, body: &[u8], crc: bool) -> Client {
    let (m, b) = (manifest.clone(), body.to_vec());
    let list = mock!(Client::list_objects_v2).then_output(move || listed(&m, &b));
    let b = body.to_vec();
    let get = mock!(Client::get_object).then_output(move || {
        GetObjectOutput::builder()
            .content_length(b.len() as i64)
            .body(ByteStream::from(b.clone()))
            .build()
    });
    let (shard, size) = (manifest.objects[0].key.clone(), manifest.objects[0].size);
    let shard_head = mock!(Client::head_object)
        .match_requests(move |r| r.key() == Some(shard.as_str()))
        .then_output(move || {
            let out = HeadObjectOutput::builder().content_length(size);
            if crc {
                out.checksum_crc64_nvme(CRC).build()
            } else {
                out.checksum_sha256("c291cmNl").build()
            }
        });
    let manifest_len = body.len() as i64;
    let manifest_head =
        mock!(Client::head_object).then_output(move || head(manifest_len, "bWFuaWZlc3Q="));
    mock_client!(
        aws_sdk_s3,
        RuleMode::MatchAny,
        [&list, &get, &shard_head, &manifest_head]
    )
}

#[tokio::test]
async fn a_shard_over_five_gib_is_copied_in_parts_across_looks_and_checked_against_its_crc64nvme() {
    let size = 30 * GIB; // 60 parts of 512 MiB: 48 in the first look, 12 in the second
    let (manifest, body) = export(size);
    let shard = manifest.objects[0].key.clone();
    let versions = || {
        mock!(Client::list_object_versions)
            .then_output(|| ListObjectVersionsOutput::builder().build())
    };
    let part_copy = || {
        mock!(Client::upload_part_copy).then_output(|| {
            UploadPartCopyOutput::builder()
                .copy_part_result(
                    CopyPartResult::builder()
                        .e_tag("\"part\"")
                        .checksum_crc64_nvme("cGFydA==")
                        .build(),
                )
                .build()
        })
    };

    // Look 1: no upload yet; one is made with the vault's lock, key and CRC64NVME, and 48
    // parts are copied. The export is in flight, not done, and nothing fails.
    let (v1, copies1) = (versions(), part_copy());
    let no_upload = mock!(Client::list_multipart_uploads)
        .then_output(|| ListMultipartUploadsOutput::builder().build());
    let create = mock!(Client::create_multipart_upload)
        .match_requests(|r| {
            r.checksum_algorithm().map(|a| a.as_str()) == Some("CRC64NVME")
                && r.checksum_type().map(|t| t.as_str()) == Some("FULL_OBJECT")
                && r.object_lock_mode().map(|m| m.as_str()) == Some("GOVERNANCE")
                && r.ssekms_key_id().is_some()
        })
        .then_output(|| {
            CreateMultipartUploadOutput::builder()
                .upload_id("upload-1")
                .build()
        });
    let no_parts = mock!(Client::list_parts).then_output(|| ListPartsOutput::builder().build());
    let copy1 = mock!(Client::copy_object).then_output(|| CopyObjectOutput::builder().build());
    let vault = mock_client!(
        aws_sdk_s3,
        RuleMode::MatchAny,
        [&v1, &no_upload, &create, &no_parts, &copies1, &copy1]
    );
    let ctx = context()
        .with_s3_client("us-east-1", large_source(&manifest, &body, true))
        .with_s3_client("eu-west-1", vault);
    let now = Timestamp::now();
    let look = Look::first(now);
    let out = steps::copy_in(&ctx, &run(), None, &look, now)
        .await
        .unwrap();
    assert!(out.failures.is_empty(), "{out:?}");
    assert!(out.done.is_empty(), "{out:?}");
    assert_eq!(out.in_flight.len(), 1, "{out:?}");
    assert_eq!(out.in_flight[0].status, "copying in parts (48 of 60)");
    assert!(
        !out.next.is_finished(),
        "the run looks again: {:?}",
        out.next
    );
    assert_eq!((create.num_calls(), copies1.num_calls()), (1, 48));
    assert_eq!(copy1.num_calls(), 0, "the manifest waits for the shard");

    // Look 2: the same upload is found with its 48 parts; the other 12 are copied, the
    // upload completes with the source's CRC64NVME, the copy is checked, then the manifest.
    let (v2, copies2) = (versions(), part_copy());
    let key = shard.clone();
    let upload = mock!(Client::list_multipart_uploads).then_output(move || {
        ListMultipartUploadsOutput::builder()
            .uploads(
                MultipartUpload::builder()
                    .key(key.clone())
                    .upload_id("upload-1")
                    .build(),
            )
            .build()
    });
    // ListParts answers in two pages (S3 lists at most 1,000 parts a page): 1-30, then 31-48.
    let page = |numbers: std::ops::RangeInclusive<i32>, next: Option<&str>| {
        let mut out = ListPartsOutput::builder().is_truncated(next.is_some());
        if let Some(next) = next {
            out = out.next_part_number_marker(next);
        }
        for n in numbers {
            out = out.parts(
                Part::builder()
                    .part_number(n)
                    .e_tag("\"part\"")
                    .size(PART)
                    .checksum_crc64_nvme("cGFydA==")
                    .build(),
            );
        }
        out.build()
    };
    let first_page = mock!(Client::list_parts)
        .match_requests(|r| r.upload_id() == Some("upload-1") && r.part_number_marker().is_none())
        .then_output(move || page(1..=30, Some("30")));
    let second_page = mock!(Client::list_parts)
        .match_requests(|r| {
            r.upload_id() == Some("upload-1") && r.part_number_marker() == Some("30")
        })
        .then_output(move || page(31..=48, None));
    let complete = mock!(Client::complete_multipart_upload)
        .match_requests(|r| {
            r.checksum_crc64_nvme() == Some(CRC)
                && r.multipart_upload().map(|u| u.parts().len()) == Some(60)
        })
        .then_output(|| CompleteMultipartUploadOutput::builder().build());
    let s = shard.clone();
    let copied_head = mock!(Client::head_object)
        .match_requests(move |r| r.key() == Some(s.as_str()))
        .then_output(move || {
            HeadObjectOutput::builder()
                .content_length(size)
                .checksum_crc64_nvme(CRC)
                .build()
        });
    let manifest_len = body.len() as i64;
    let manifest_head =
        mock!(Client::head_object).then_output(move || head(manifest_len, "bWFuaWZlc3Q="));
    let copy2 = mock!(Client::copy_object).then_output(|| CopyObjectOutput::builder().build());
    let vault = mock_client!(
        aws_sdk_s3,
        RuleMode::MatchAny,
        [
            &v2,
            &upload,
            &first_page,
            &second_page,
            &copies2,
            &complete,
            &copied_head,
            &manifest_head,
            &copy2
        ]
    );
    let ctx = context()
        .with_s3_client("us-east-1", large_source(&manifest, &body, true))
        .with_s3_client("eu-west-1", vault);
    let later = now + SignedDuration::from_mins(1);
    let out = steps::copy_in(&ctx, &run(), None, &look.next(&out, "us-east-1"), later)
        .await
        .unwrap();
    assert!(out.failures.is_empty(), "{out:?}");
    assert_eq!(out.done, vec![manifest.snapshot.clone()], "{out:?}");
    assert!(out.in_flight.is_empty());
    assert_eq!(copies2.num_calls(), 12, "only the missing parts");
    assert_eq!((first_page.num_calls(), second_page.num_calls()), (1, 1));
    assert_eq!(complete.num_calls(), 1);
    assert_eq!(copy2.num_calls(), 1, "then the manifest");
}

#[tokio::test]
async fn a_shard_over_five_gib_without_a_crc64nvme_is_refused_before_any_copy() {
    let (manifest, body) = export(6 * GIB);
    let versions = mock!(Client::list_object_versions)
        .then_output(|| ListObjectVersionsOutput::builder().build());
    let create = mock!(Client::create_multipart_upload).then_output(|| {
        CreateMultipartUploadOutput::builder()
            .upload_id("u")
            .build()
    });
    let copy = mock!(Client::copy_object).then_output(|| CopyObjectOutput::builder().build());
    let vault = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&versions, &create, &copy]);
    let ctx = context()
        .with_s3_client("us-east-1", large_source(&manifest, &body, false))
        .with_s3_client("eu-west-1", vault);
    let now = Timestamp::now();
    let out = steps::copy_in(&ctx, &run(), None, &Look::first(now), now)
        .await
        .unwrap();
    assert_eq!(out.failures.len(), 1, "{out:?}");
    let message = &out.failures[0].error.message;
    assert!(message.contains("no CRC64NVME"), "{message}");
    assert!(message.contains("aws s3 cp"), "{message}");
    assert_eq!((create.num_calls(), copy.num_calls()), (0, 0));
}
