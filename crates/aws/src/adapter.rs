//! The port every copying engine's adapter implements (Aurora clusters, RDS instances): the
//! calls the source and destination steps make, in the domain's words. The steps are written
//! once against it; `aurora` and `rds` implement it with their own SDK calls. This module
//! knows no implementation: `engines` is where an engine is chosen.

use std::collections::{BTreeMap, BTreeSet};

use snapcourier_core::snapshot::{ResourceRecord, SnapshotRecord};
use snapcourier_core::{Engine, Error};

use crate::client::AwsContext;

/// Largest page RDS and Redshift describe calls accept.
pub const PAGE_SIZE: i32 = 100;

/// Every item of a paginated describe `request`, `PAGE_SIZE` a page, its error classified as
/// `action` on `resource` (the IAM action: crates/aws/tests/iam_table.rs reads it here).
macro_rules! all_items {
    ($request:expr, $action:expr, $resource:expr) => {
        $request
            .into_paginator()
            .page_size($crate::adapter::PAGE_SIZE)
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| $crate::errors::classify(e, $action, $resource))
    };
}
pub(crate) use all_items;

/// What a create or copy call found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    New(Box<SnapshotRecord>),
    /// The deterministic id is taken: an earlier or concurrent run made it.
    AlreadyExists,
}

/// A copy to make: from a snapshot (by ARN) into this account's `region` under `target_id`.
#[derive(Debug, Clone, Copy)]
pub struct CopyRequest<'a> {
    pub source_arn: &'a str,
    pub target_id: &'a str,
    /// Re-encrypt with this key. Ignored where the engine cannot encrypt by copying.
    pub kms_key: Option<&'a str>,
    /// RDS instances: the option group to give the copy (cross-region).
    pub option_group: Option<&'a str>,
    pub tags: &'a BTreeMap<String, String>,
}

// Only the crate's steps call through the trait (statically: `Aurora` and `Rds` are unit
// structs), so the futures' auto traits are those of the concrete implementations.
#[allow(async_fn_in_trait)]
pub trait SnapshotApi {
    const ENGINE: Engine;
    /// Whether a copy of an unencrypted snapshot can be encrypted with a key (RDS instance
    /// snapshots can; Aurora cluster snapshots cannot, RDS rejects the key).
    const ENCRYPTS_ON_COPY: bool;

    /// Every database of this kind in the region, tags included.
    async fn list_resources(
        &self,
        ctx: &AwsContext,
        region: &str,
    ) -> Result<Vec<ResourceRecord>, Error>;

    /// Manual snapshots owned by this account (`shared == false`) or shared with it
    /// (`shared == true`), tags included: one call per page, none per snapshot.
    async fn list_snapshots(
        &self,
        ctx: &AwsContext,
        region: &str,
        shared: bool,
    ) -> Result<Vec<SnapshotRecord>, Error>;

    /// One snapshot by id (own) or ARN (own or shared); `None` when it does not exist.
    async fn find_snapshot(
        &self,
        ctx: &AwsContext,
        region: &str,
        id: &str,
    ) -> Result<Option<SnapshotRecord>, Error>;

    async fn create_snapshot(
        &self,
        ctx: &AwsContext,
        region: &str,
        resource: &str,
        id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Started, Error>;

    /// Accounts allowed to restore the snapshot (the `restore` attribute).
    async fn restore_accounts(
        &self,
        ctx: &AwsContext,
        region: &str,
        id: &str,
    ) -> Result<BTreeSet<String>, Error>;

    async fn add_restore_accounts(
        &self,
        ctx: &AwsContext,
        region: &str,
        id: &str,
        accounts: &BTreeSet<String>,
    ) -> Result<(), Error>;

    async fn copy_snapshot(
        &self,
        ctx: &AwsContext,
        region: &str,
        copy: CopyRequest<'_>,
    ) -> Result<Started, Error>;

    /// Delete; a snapshot already gone counts as deleted.
    async fn delete_snapshot(&self, ctx: &AwsContext, region: &str, id: &str) -> Result<(), Error>;

    /// Add (or overwrite) tags on a snapshot, by ARN.
    async fn add_tags(
        &self,
        ctx: &AwsContext,
        region: &str,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), Error>;

    /// Whether a KMS key is AWS managed (such as `aws/rds`): a snapshot encrypted with it can
    /// never be shared with another account. Asked once per key per process.
    async fn is_aws_managed_key(&self, ctx: &AwsContext, key_arn: &str) -> Result<bool, Error> {
        ctx.is_aws_managed_key(key_arn).await
    }
}
