//! ElastiCache (Valkey, Redis OSS): replication groups and serverless caches, their
//! snapshots, and the export of a snapshot's `.rdb` files to S3, the only way its data leaves
//! its account and region (a snapshot cannot be shared or copied across regions). The calls
//! of issue 13's engine; the steps over them come next.
//!
//! Describes page at their largest and read no tags: ElastiCache returns none inline, so
//! ownership goes by the deterministic name (`sc-<ns>-...`), and a cache's tags are read only
//! when a schedule selects caches by tag (`with_tags`).

use std::collections::BTreeMap;

use aws_sdk_elasticache::types::{
    ReplicationGroup, ServerlessCache, ServerlessCacheSnapshot, Snapshot,
};
use snapcourier_core::Error;
use snapcourier_core::snapshot::{
    DbEngine, ResourceRecord, SnapshotRecord, SnapshotStatus, arn_account,
};

use crate::adapter::Started;
use crate::client::AwsContext;
use crate::errors::{classify, unless_exists, unless_missing};

/// What a cache is: its snapshots and exports are made by different calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    ReplicationGroup,
    Serverless,
}

/// One object of an export, as S3 lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedObject {
    pub key: String,
    pub size: i64,
    pub last_modified: Option<jiff::Timestamp>,
}

/// One version of an object in a vault bucket (versioned, Object Lock), as S3 lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultVersion {
    pub key: String,
    pub version_id: String,
    /// The current version of its key (not hidden by a delete marker).
    pub is_latest: bool,
}

/// What HeadObject says about an object: its size and the checksums S3 keeps for it, by
/// algorithm (`SHA256`, `CRC64NVME`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFacts {
    pub size: i64,
    pub checksums: BTreeMap<&'static str, String>,
}

/// The largest object one CopyObject call copies (S3's limit); larger ones need a multipart
/// copy.
pub const MAX_COPY_OBJECT_BYTES: i64 = 5 * 1024 * 1024 * 1024;

fn tags_of(list: &[aws_sdk_elasticache::types::Tag]) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

pub(crate) fn to_tags(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_elasticache::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_elasticache::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        })
        .collect()
}

fn group_record(g: &ReplicationGroup) -> ResourceRecord {
    ResourceRecord {
        id: g.replication_group_id().unwrap_or_default().to_string(),
        arn: g.arn().unwrap_or_default().to_string(),
        engine: g.engine().unwrap_or("redis").to_string(),
        status: g.status().unwrap_or_default().to_string(),
        tags: BTreeMap::new(),
        replica_of: None,
        kms_key_id: g.kms_key_id().map(str::to_string),
    }
}

fn serverless_record(c: &ServerlessCache) -> ResourceRecord {
    ResourceRecord {
        id: c.serverless_cache_name().unwrap_or_default().to_string(),
        arn: c.arn().unwrap_or_default().to_string(),
        engine: c.engine().unwrap_or("valkey").to_string(),
        status: c.status().unwrap_or_default().to_string(),
        tags: BTreeMap::new(),
        replica_of: None,
        kms_key_id: c.kms_key_id().map(str::to_string),
    }
}

/// Which kind a listed cache is (by its ARN: `...:replicationgroup:...` or
/// `...:serverlesscache:...`).
pub fn kind_of(cache: &ResourceRecord) -> CacheKind {
    if cache.arn.contains(":serverlesscache:") {
        CacheKind::Serverless
    } else {
        CacheKind::ReplicationGroup
    }
}

/// Every replication group and serverless cache in a region; their tags only `with_tags`
/// (one ListTagsForResource per cache, for a schedule with an opt-in tag).
pub async fn list_caches(
    ctx: &AwsContext,
    region: &str,
    with_tags: bool,
) -> Result<Vec<ResourceRecord>, Error> {
    let client = ctx.elasticache(region);
    let groups: Vec<ReplicationGroup> = client
        .describe_replication_groups()
        .into_paginator()
        .page_size(100)
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify(e, "elasticache:DescribeReplicationGroups", region))?;
    let serverless: Vec<ServerlessCache> = client
        .describe_serverless_caches()
        .into_paginator()
        .page_size(100)
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify(e, "elasticache:DescribeServerlessCaches", region))?;
    let mut out: Vec<ResourceRecord> = groups.iter().map(group_record).collect();
    out.extend(serverless.iter().map(serverless_record));
    if with_tags {
        for cache in &mut out {
            let listed = client
                .list_tags_for_resource()
                .resource_name(&cache.arn)
                .send()
                .await
                .map_err(|e| classify(e, "elasticache:ListTagsForResource", &cache.arn))?;
            cache.tags = tags_of(listed.tag_list());
        }
    }
    Ok(out)
}

fn snapshot_record(s: &Snapshot) -> SnapshotRecord {
    let arn = s.arn().unwrap_or_default().to_string();
    SnapshotRecord {
        id: s.snapshot_name().unwrap_or_default().to_string(),
        owner_account: arn_account(&arn).unwrap_or_default().to_string(),
        resource_id: s.replication_group_id().unwrap_or_default().to_string(),
        status: SnapshotStatus::from_api(s.snapshot_status().unwrap_or("unknown")),
        created: s
            .node_snapshots()
            .iter()
            .filter_map(|n| n.snapshot_create_time().and_then(crate::timestamp))
            .min(),
        encrypted: s.kms_key_id().is_some(),
        kms_key_id: s.kms_key_id().map(str::to_string),
        tags: BTreeMap::new(),
        option_group: None,
        restore_accounts: None,
        source_region: None,
        engine: s.engine().map(|name| DbEngine {
            name: name.to_string(),
            version: s.engine_version().map(str::to_string),
        }),
        arn,
    }
}

fn serverless_snapshot_record(s: &ServerlessCacheSnapshot) -> SnapshotRecord {
    let arn = s.arn().unwrap_or_default().to_string();
    SnapshotRecord {
        id: s
            .serverless_cache_snapshot_name()
            .unwrap_or_default()
            .to_string(),
        owner_account: arn_account(&arn).unwrap_or_default().to_string(),
        resource_id: s
            .serverless_cache_configuration()
            .and_then(|c| c.serverless_cache_name())
            .unwrap_or_default()
            .to_string(),
        status: SnapshotStatus::from_api(s.status().unwrap_or("unknown")),
        created: s.create_time().and_then(crate::timestamp),
        encrypted: s.kms_key_id().is_some(),
        kms_key_id: s.kms_key_id().map(str::to_string),
        tags: BTreeMap::new(),
        option_group: None,
        restore_accounts: None,
        source_region: None,
        engine: s.serverless_cache_configuration().and_then(|c| {
            Some(DbEngine {
                name: c.engine()?.to_string(),
                version: c.major_engine_version().map(str::to_string),
            })
        }),
        arn,
    }
}

/// Manual snapshots of both kinds in a region whose name starts with `prefix` (ours: the
/// deterministic ids), without their tags.
pub async fn list_snapshots(
    ctx: &AwsContext,
    region: &str,
    prefix: &str,
) -> Result<Vec<SnapshotRecord>, Error> {
    let client = ctx.elasticache(region);
    let snapshots: Vec<Snapshot> = client
        .describe_snapshots()
        .snapshot_source("user")
        .into_paginator()
        .page_size(50)
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify(e, "elasticache:DescribeSnapshots", region))?;
    let serverless: Vec<ServerlessCacheSnapshot> = client
        .describe_serverless_cache_snapshots()
        .snapshot_type("manual")
        .into_paginator()
        .page_size(50)
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify(e, "elasticache:DescribeServerlessCacheSnapshots", region))?;
    let mut out: Vec<SnapshotRecord> = snapshots.iter().map(snapshot_record).collect();
    out.extend(serverless.iter().map(serverless_snapshot_record));
    out.retain(|s| s.id.starts_with(prefix));
    Ok(out)
}

/// A cache on a node type ElastiCache cannot snapshot, said so with what to do.
fn too_small(cache: &str, e: Error) -> Error {
    match &e {
        Error::AwsRejected { code, .. } if code == "SnapshotFeatureNotSupportedFault" => {
            Error::InvalidState {
                resource: cache.to_string(),
                message: format!(
                    "its node type cannot be snapshotted (cache.t1.micro and some others): move it to a larger node type, or exclude it from the schedule ({e})"
                ),
            }
        }
        _ => e,
    }
}

/// Snapshot a cache under `name` with `tags`; a name already taken is `AlreadyExists`.
pub async fn create_snapshot(
    ctx: &AwsContext,
    region: &str,
    cache: &ResourceRecord,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<Started, Error> {
    let client = ctx.elasticache(region);
    match kind_of(cache) {
        CacheKind::ReplicationGroup => {
            let result = client
                .create_snapshot()
                .replication_group_id(&cache.id)
                .snapshot_name(name)
                .set_tags(Some(to_tags(tags)))
                .send()
                .await;
            let created = unless_exists(result, "elasticache:CreateSnapshot", &cache.id)
                .map_err(|e| too_small(&cache.id, e))?;
            Ok(created.map_or(Started::AlreadyExists, |out| {
                out.snapshot().map_or(Started::AlreadyExists, |s| {
                    Started::New(Box::new(snapshot_record(s)))
                })
            }))
        }
        CacheKind::Serverless => {
            let result = client
                .create_serverless_cache_snapshot()
                .serverless_cache_name(&cache.id)
                .serverless_cache_snapshot_name(name)
                .set_tags(Some(to_tags(tags)))
                .send()
                .await;
            let created = unless_exists(
                result,
                "elasticache:CreateServerlessCacheSnapshot",
                &cache.id,
            )?;
            Ok(created.map_or(Started::AlreadyExists, |out| {
                out.serverless_cache_snapshot()
                    .map_or(Started::AlreadyExists, |s| {
                        Started::New(Box::new(serverless_snapshot_record(s)))
                    })
            }))
        }
    }
}

/// Export an available snapshot's `.rdb` files to `bucket` (the caller's, in `region`).
/// A replication group's objects are `<target>-<shard>.rdb`; a serverless cache's
/// `<snapshot>-<shard>.rdb`. An export another run already made (ElastiCache refuses to
/// overwrite its objects) counts as done.
pub async fn export(
    ctx: &AwsContext,
    region: &str,
    snapshot: &SnapshotRecord,
    serverless: bool,
    bucket: &str,
    target: &str,
) -> Result<(), Error> {
    let client = ctx.elasticache(region);
    let result = if serverless {
        client
            .export_serverless_cache_snapshot()
            .serverless_cache_snapshot_name(&snapshot.id)
            .s3_bucket_name(bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, "elasticache:ExportServerlessCacheSnapshot", &snapshot.id))
    } else {
        client
            .copy_snapshot()
            .source_snapshot_name(&snapshot.id)
            .target_snapshot_name(target)
            .target_bucket(bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, "elasticache:CopySnapshot", &snapshot.id))
    };
    match result {
        Err(Error::AwsRejected { message, .. }) if message.contains("already contains an object") => {
            return Ok(());
        }
        other => other,
    }
    .map_err(|e| match e {
        Error::AwsRejected {
            code, message, ..
        } if code == "InvalidParameterValue" => Error::AccessDenied {
            action: "elasticache export".into(),
            resource: format!("s3://{bucket}"),
            message: format!(
                "{message}: the bucket must be this account's, in {region}, and its policy must let ElastiCache (<region>.elasticache-snapshot.amazonaws.com) read, write and read the ACL; the source stack's bucket policy does"
            ),
        },
        other => other,
    })
}

/// The objects under `prefix` in `bucket` (every page).
pub async fn list_objects(
    ctx: &AwsContext,
    region: &str,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<ExportedObject>, Error> {
    let pages: Vec<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output> = ctx
        .s3(region)
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify(e, "s3:ListBucket", bucket))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.contents())
        .map(|o| ExportedObject {
            key: o.key().unwrap_or_default().to_string(),
            size: o.size().unwrap_or_default(),
            last_modified: o.last_modified().and_then(crate::timestamp),
        })
        .collect())
}

/// Every version under `prefix` in a versioned bucket (every page; delete markers are not
/// versions of data and are left out).
pub async fn list_versions(
    ctx: &AwsContext,
    region: &str,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<VaultVersion>, Error> {
    let client = ctx.s3(region);
    let mut out = Vec::new();
    let mut key_marker: Option<String> = None;
    let mut version_marker: Option<String> = None;
    loop {
        let page = client
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|e| classify(e, "s3:ListBucketVersions", bucket))?;
        out.extend(page.versions().iter().map(|v| VaultVersion {
            key: v.key().unwrap_or_default().to_string(),
            version_id: v.version_id().unwrap_or("null").to_string(),
            is_latest: v.is_latest().unwrap_or(false),
        }));
        if page.is_truncated() != Some(true) {
            return Ok(out);
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
        if key_marker.is_none() {
            return Ok(out);
        }
    }
}

/// Size and checksums of one object (HeadObject with checksum mode).
pub async fn object_facts(
    ctx: &AwsContext,
    region: &str,
    bucket: &str,
    key: &str,
) -> Result<ObjectFacts, Error> {
    let head = ctx
        .s3(region)
        .head_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .map_err(|e| classify(e, "s3:GetObject", &format!("s3://{bucket}/{key}")))?;
    let mut checksums = BTreeMap::new();
    for (name, value) in [
        ("SHA256", head.checksum_sha256()),
        ("SHA1", head.checksum_sha1()),
        ("CRC64NVME", head.checksum_crc64_nvme()),
        ("CRC32C", head.checksum_crc32_c()),
        ("CRC32", head.checksum_crc32()),
    ] {
        if let Some(v) = value {
            checksums.insert(name, v.to_string());
        }
    }
    Ok(ObjectFacts {
        size: head.content_length().unwrap_or_default(),
        checksums,
    })
}

/// A copy of one object into a vault bucket (in `to_region`, possibly another region and
/// account than the source's), re-encrypted with `kms_key` and locked until `retain_until`.
pub struct VaultCopy<'a> {
    pub from_bucket: &'a str,
    pub key: &'a str,
    pub to_region: &'a str,
    pub to_bucket: &'a str,
    pub kms_key: &'a str,
    pub lock_mode: &'a str,
    pub retain_until: jiff::Timestamp,
    /// The checksum algorithm S3 computes for the copy (the source's, to compare).
    pub checksum: Option<&'a str>,
}

/// CopyObject for a vault copy (at most `MAX_COPY_OBJECT_BYTES`).
pub async fn copy_to_vault(ctx: &AwsContext, copy: &VaultCopy<'_>) -> Result<(), Error> {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockMode, ServerSideEncryption};
    let until = aws_smithy_types::DateTime::from_secs(copy.retain_until.as_second());
    let target = format!("s3://{}/{}", copy.to_bucket, copy.key);
    ctx.s3(copy.to_region)
        .copy_object()
        .copy_source(format!("{}/{}", copy.from_bucket, copy.key))
        .bucket(copy.to_bucket)
        .key(copy.key)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(copy.kms_key)
        .object_lock_mode(ObjectLockMode::from(copy.lock_mode))
        .object_lock_retain_until_date(until)
        .set_checksum_algorithm(copy.checksum.map(ChecksumAlgorithm::from))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| classify(e, "s3:PutObject", &target))
}

/// How an object over `MAX_COPY_OBJECT_BYTES` is copied: in parts of `part_bytes` (S3: 5 MiB
/// to 5 GiB, at most 10,000 parts), `concurrency` at once, at most `parts_per_call` per call
/// so that a call fits in a look (the copy-in function has 5 minutes); the next look resumes
/// the same multipart upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    pub part_bytes: i64,
    pub parts_per_call: usize,
    pub concurrency: usize,
}

impl PartPlan {
    /// 512 MiB parts (objects up to 5 TB, S3's largest, in 10,000 parts), 48 per call (24
    /// GiB), 8 at once.
    pub const DEFAULT: PartPlan = PartPlan {
        part_bytes: 512 * 1024 * 1024,
        parts_per_call: 48,
        concurrency: 8,
    };

    /// Every part of an object of `size` bytes: (number, first byte, last byte).
    pub fn parts(&self, size: i64) -> Vec<(i32, i64, i64)> {
        let step = self.part_bytes.max(1);
        (0..)
            .map(|i: i64| (i, i * step))
            .take_while(|(_, first)| *first < size)
            .map(|(i, first)| {
                (
                    i32::try_from(i + 1).unwrap_or(i32::MAX),
                    first,
                    (first + step).min(size) - 1,
                )
            })
            .collect()
    }
}

/// Where a copy in parts stands after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartsCopy {
    /// Complete: the object is in the vault.
    Done,
    /// This many of the parts are copied; the next call goes on.
    Partial { copied: usize, parts: usize },
}

/// A copy in parts (UploadPartCopy) into a vault, for objects too large for CopyObject. The
/// upload asks S3 for a full-object CRC64NVME and its completion gives the source's, so S3
/// itself refuses a copy whose bytes differ (the caller compares size and checksum again).
/// The upload is found again by its key (ListMultipartUploads) and only its missing parts are
/// copied, so a call cut short loses at most the parts it had under way.
pub async fn copy_parts_to_vault(
    ctx: &AwsContext,
    copy: &VaultCopy<'_>,
    size: i64,
    source_crc64nvme: &str,
    plan: PartPlan,
) -> Result<PartsCopy, Error> {
    use aws_sdk_s3::types::{
        ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart, ObjectLockMode,
        ServerSideEncryption,
    };
    use futures::StreamExt;
    let s3 = ctx.s3(copy.to_region);
    let target = format!("s3://{}/{}", copy.to_bucket, copy.key);
    let upload = match find_upload(ctx, copy.to_region, copy.to_bucket, copy.key).await? {
        Some(id) => id,
        None => {
            let until = aws_smithy_types::DateTime::from_secs(copy.retain_until.as_second());
            let created = s3
                .create_multipart_upload()
                .bucket(copy.to_bucket)
                .key(copy.key)
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(copy.kms_key)
                .object_lock_mode(ObjectLockMode::from(copy.lock_mode))
                .object_lock_retain_until_date(until)
                .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
                .checksum_type(ChecksumType::FullObject)
                .send()
                .await
                .map_err(|e| classify(e, "s3:PutObject", &target))?;
            created
                .upload_id()
                .ok_or_else(|| Error::internal(&target, "CreateMultipartUpload gave no upload id"))?
                .to_string()
        }
    };
    let parts = plan.parts(size);
    let mut copied = list_parts(ctx, copy.to_region, copy.to_bucket, copy.key, &upload).await?;
    // A part of another size (an upload begun with another plan) is copied again.
    copied.retain(|number, part| {
        parts
            .iter()
            .any(|(n, first, last)| n == number && part.size == last - first + 1)
    });
    let missing: Vec<(i32, i64, i64)> = parts
        .iter()
        .filter(|(n, _, _)| !copied.contains_key(n))
        .take(plan.parts_per_call)
        .copied()
        .collect();
    let source = format!("{}/{}", copy.from_bucket, copy.key);
    let results: Vec<Result<(i32, UploadedPart), Error>> =
        futures::stream::iter(missing.into_iter().map(|(number, first, last)| {
            let s3 = s3.clone();
            let (source, upload, target) = (&source, &upload, &target);
            async move {
                let out = s3
                    .upload_part_copy()
                    .bucket(copy.to_bucket)
                    .key(copy.key)
                    .upload_id(upload)
                    .part_number(number)
                    .copy_source(source)
                    .copy_source_range(format!("bytes={first}-{last}"))
                    .send()
                    .await
                    .map_err(|e| classify(e, "s3:PutObject", target))?;
                let result = out.copy_part_result();
                Ok((
                    number,
                    UploadedPart {
                        etag: result
                            .and_then(|r| r.e_tag())
                            .unwrap_or_default()
                            .to_string(),
                        checksum: result
                            .and_then(|r| r.checksum_crc64_nvme())
                            .map(str::to_string),
                        size: last - first + 1,
                    },
                ))
            }
        }))
        .buffer_unordered(plan.concurrency.max(1))
        .collect()
        .await;
    for r in results {
        let (number, part) = r?;
        copied.insert(number, part);
    }
    if copied.len() < parts.len() {
        return Ok(PartsCopy::Partial {
            copied: copied.len(),
            parts: parts.len(),
        });
    }
    let completed: Vec<CompletedPart> = copied
        .iter()
        .map(|(number, part)| {
            CompletedPart::builder()
                .part_number(*number)
                .e_tag(&part.etag)
                .set_checksum_crc64_nvme(part.checksum.clone())
                .build()
        })
        .collect();
    let done = s3
        .complete_multipart_upload()
        .bucket(copy.to_bucket)
        .key(copy.key)
        .upload_id(&upload)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .checksum_crc64_nvme(source_crc64nvme)
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await
        .map_err(|e| classify(e, "s3:PutObject", &target));
    match done {
        Ok(_) => Ok(PartsCopy::Done),
        Err(Error::AwsRejected { code, message, .. }) if code == "BadDigest" => {
            // The parts' bytes are not the source's: start again from nothing next time.
            let aborted = s3
                .abort_multipart_upload()
                .bucket(copy.to_bucket)
                .key(copy.key)
                .upload_id(&upload)
                .send()
                .await;
            if let Err(e) = aborted {
                tracing::warn!(target = %target, error = %classify(e, "s3:AbortMultipartUpload", &target), "could not abort a copy whose checksum differs; the vault's lifecycle rule removes its parts");
            }
            Err(Error::InvalidState {
                resource: target,
                message: format!(
                    "S3 refused to complete the copy in parts: its CRC64NVME is not the source's ({message}); nothing is kept, and the next look copies it again"
                ),
            })
        }
        Err(e) => Err(e),
    }
}

/// One copied part of a multipart upload.
#[derive(Debug, Clone)]
struct UploadedPart {
    etag: String,
    checksum: Option<String>,
    size: i64,
}

/// The newest multipart upload under way for exactly `key`, if any.
async fn find_upload(
    ctx: &AwsContext,
    region: &str,
    bucket: &str,
    key: &str,
) -> Result<Option<String>, Error> {
    let listed = ctx
        .s3(region)
        .list_multipart_uploads()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .map_err(|e| classify(e, "s3:ListBucketMultipartUploads", bucket))?;
    Ok(listed
        .uploads()
        .iter()
        .filter(|u| u.key() == Some(key))
        .max_by_key(|u| u.initiated().map(|t| (t.secs(), t.subsec_nanos())))
        .and_then(|u| u.upload_id())
        .map(str::to_string))
}

/// The parts an upload holds (every page of ListParts), by number.
async fn list_parts(
    ctx: &AwsContext,
    region: &str,
    bucket: &str,
    key: &str,
    upload: &str,
) -> Result<BTreeMap<i32, UploadedPart>, Error> {
    let mut out = BTreeMap::new();
    let mut marker: Option<String> = None;
    loop {
        let page = ctx
            .s3(region)
            .list_parts()
            .bucket(bucket)
            .key(key)
            .upload_id(upload)
            .set_part_number_marker(marker.clone())
            .send()
            .await
            .map_err(|e| classify(e, "s3:ListMultipartUploadParts", bucket))?;
        for p in page.parts() {
            if let Some(number) = p.part_number() {
                out.insert(
                    number,
                    UploadedPart {
                        etag: p.e_tag().unwrap_or_default().to_string(),
                        checksum: p.checksum_crc64_nvme().map(str::to_string),
                        size: p.size().unwrap_or_default(),
                    },
                );
            }
        }
        match page.next_part_number_marker() {
            Some(next) if page.is_truncated() == Some(true) => marker = Some(next.to_string()),
            _ => return Ok(out),
        }
    }
}

/// Delete objects (a version each where given) from `bucket`, up to 1,000 per call. Each
/// key's own outcome: a locked version is refused, and the others still go.
pub async fn delete_objects(
    ctx: &AwsContext,
    region: &str,
    bucket: &str,
    objects: &[(String, Option<String>)],
) -> Result<Vec<(String, Result<(), Error>)>, Error> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let mut out = Vec::new();
    for chunk in objects.chunks(1000) {
        let ids = chunk
            .iter()
            .map(|(key, version)| {
                ObjectIdentifier::builder()
                    .key(key)
                    .set_version_id(version.clone())
                    .build()
                    .map_err(|e| Error::Internal {
                        what: "an S3 DeleteObjects request".into(),
                        message: format!("{key}: {e}"),
                    })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let delete = Delete::builder()
            .set_objects(Some(ids))
            .quiet(true)
            .build()
            .map_err(|e| Error::Internal {
                what: "an S3 DeleteObjects request".into(),
                message: e.to_string(),
            })?;
        let result = ctx
            .s3(region)
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| classify(e, "s3:DeleteObject", bucket))?;
        for (key, _) in chunk {
            let refused = result.errors().iter().find(|e| e.key() == Some(key));
            let outcome = match refused {
                None => Ok(()),
                Some(e) => Err(Error::AccessDenied {
                    action: "s3:DeleteObject".into(),
                    resource: format!("s3://{bucket}/{key}"),
                    message: format!(
                        "{}: {}",
                        e.code().unwrap_or("refused"),
                        e.message().unwrap_or_default()
                    ),
                }),
            };
            out.push((key.clone(), outcome));
        }
    }
    Ok(out)
}

/// Write a small object (an export's manifest) with a SHA-256 checksum, encrypted as the
/// bucket's default encryption says.
pub async fn put_small_object(
    ctx: &AwsContext,
    region: &str,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) -> Result<(), Error> {
    ctx.s3(region)
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .body(body.into())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| classify(e, "s3:PutObject", &format!("s3://{bucket}/{key}")))
}

/// Read a small object (an export's manifest), refusing one over `max_bytes`.
pub async fn get_small_object(
    ctx: &AwsContext,
    region: &str,
    bucket: &str,
    key: &str,
    max_bytes: i64,
) -> Result<Vec<u8>, Error> {
    let target = format!("s3://{bucket}/{key}");
    let out = ctx
        .s3(region)
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| classify(e, "s3:GetObject", &target))?;
    if out.content_length().unwrap_or_default() > max_bytes {
        return Err(Error::InvalidState {
            resource: target,
            message: format!("larger than {max_bytes} bytes: not a snapcourier manifest"),
        });
    }
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| Error::ServiceUnavailable {
            action: "s3:GetObject".into(),
            message: format!("reading {target}: {e}"),
        })?;
    Ok(bytes.into_bytes().to_vec())
}

/// A snapshot's tags (ElastiCache lists none inline): read before changing or deleting one,
/// to confirm it is ours.
pub async fn snapshot_tags(
    ctx: &AwsContext,
    region: &str,
    arn: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let listed = ctx
        .elasticache(region)
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .map_err(|e| classify(e, "elasticache:ListTagsForResource", arn))?;
    Ok(tags_of(listed.tag_list()))
}

/// Whether a snapshot ARN is a serverless cache's snapshot.
pub fn is_serverless_snapshot(arn: &str) -> bool {
    arn.contains(":serverlesscachesnapshot:")
}

/// Delete a snapshot of either kind; one already gone counts as deleted.
pub async fn delete_snapshot(
    ctx: &AwsContext,
    region: &str,
    id: &str,
    serverless: bool,
) -> Result<(), Error> {
    let client = ctx.elasticache(region);
    if serverless {
        let result = client
            .delete_serverless_cache_snapshot()
            .serverless_cache_snapshot_name(id)
            .send()
            .await;
        unless_missing(result, "elasticache:DeleteServerlessCacheSnapshot", id).map(|_| ())
    } else {
        let result = client.delete_snapshot().snapshot_name(id).send().await;
        unless_missing(result, "elasticache:DeleteSnapshot", id).map(|_| ())
    }
}
