//! Plans: the steps run exactly as they do for `run`, but every call that would change
//! something is withheld. An SDK interceptor on every client records the call (what it would
//! act on) and refuses it before it is serialised, so nothing but reads ever reaches AWS. The
//! steps see the refusal as a failure of that item, which a plan reads as "would do this".

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde::Serialize;

/// In every withheld call's error message: how a plan tells a withheld call from a failure.
pub const WITHHELD: &str = "withheld by snapcourier plan";

/// One call a plan withheld.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Withheld {
    /// The API action, such as `CreateDBClusterSnapshot`.
    pub action: String,
    pub region: String,
    /// What it acts on: the snapshot created, shared, copied to or deleted (an id or ARN), or
    /// the cluster or grant for Redshift's copy set-up.
    pub target: Option<String>,
    /// Copies: the snapshot copied from and the key; shares: the accounts added.
    pub detail: Option<String>,
}

/// Whether an action only reads (and so is let through).
pub fn reads_only(action: &str) -> bool {
    ["Describe", "List", "Get"]
        .iter()
        .any(|p| action.starts_with(p))
}

/// The interceptor of one client (one service in one region), writing to a shared log.
#[derive(Debug, Clone)]
pub struct Withhold {
    region: String,
    log: Arc<Mutex<Vec<Withheld>>>,
}

impl Withhold {
    pub fn new(region: &str, log: Arc<Mutex<Vec<Withheld>>>) -> Self {
        Withhold {
            region: region.to_string(),
            log,
        }
    }
}

impl Intercept for Withhold {
    fn name(&self) -> &'static str {
        "SnapcourierWithhold"
    }

    // Not read_before_execution: a client's interceptors run that before the operation's
    // configuration (its name) is in the bag. This still comes before anything is sent.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(action) = cfg.load::<Metadata>().map(|m| m.name().to_string()) else {
            // No operation name: nothing to judge by, so nothing is let through.
            return Err(format!("{WITHHELD}: an unnamed call").into());
        };
        if reads_only(&action) {
            return Ok(());
        }
        let (target, detail) = describe(context.input());
        let withheld = Withheld {
            action: action.clone(),
            region: self.region.clone(),
            target,
            detail,
        };
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(withheld);
        Err(format!("{WITHHELD}: {action}").into())
    }
}

/// What a mutating call acts on, from its input (the calls the steps make; others: none).
fn describe(
    input: &aws_smithy_runtime_api::client::interceptors::context::Input,
) -> (Option<String>, Option<String>) {
    use aws_sdk_rds::operation as rds;
    use aws_sdk_redshift::operation as redshift;
    let s = |x: Option<&str>| x.map(str::to_string);
    if let Some(i) =
        input.downcast_ref::<rds::create_db_cluster_snapshot::CreateDbClusterSnapshotInput>()
    {
        return (
            s(i.db_cluster_snapshot_identifier()),
            s(i.db_cluster_identifier()),
        );
    }
    if let Some(i) = input.downcast_ref::<rds::create_db_snapshot::CreateDbSnapshotInput>() {
        return (s(i.db_snapshot_identifier()), s(i.db_instance_identifier()));
    }
    if let Some(i) =
        input.downcast_ref::<rds::copy_db_cluster_snapshot::CopyDbClusterSnapshotInput>()
    {
        return (
            s(i.target_db_cluster_snapshot_identifier()),
            Some(copy_detail(
                i.source_db_cluster_snapshot_identifier(),
                i.kms_key_id(),
            )),
        );
    }
    if let Some(i) = input.downcast_ref::<rds::copy_db_snapshot::CopyDbSnapshotInput>() {
        return (
            s(i.target_db_snapshot_identifier()),
            Some(copy_detail(
                i.source_db_snapshot_identifier(),
                i.kms_key_id(),
            )),
        );
    }
    if let Some(i) = input
        .downcast_ref::<rds::modify_db_cluster_snapshot_attribute::ModifyDbClusterSnapshotAttributeInput>()
    {
        return (s(i.db_cluster_snapshot_identifier()), Some(accounts(i.values_to_add())));
    }
    if let Some(i) =
        input.downcast_ref::<rds::modify_db_snapshot_attribute::ModifyDbSnapshotAttributeInput>()
    {
        return (
            s(i.db_snapshot_identifier()),
            Some(accounts(i.values_to_add())),
        );
    }
    if let Some(i) = input.downcast_ref::<rds::add_tags_to_resource::AddTagsToResourceInput>() {
        return (
            s(i.resource_name()),
            Some(tags(i.tags().iter().map(|t| (t.key(), t.value())))),
        );
    }
    if let Some(i) =
        input.downcast_ref::<rds::delete_db_cluster_snapshot::DeleteDbClusterSnapshotInput>()
    {
        return (s(i.db_cluster_snapshot_identifier()), None);
    }
    if let Some(i) = input.downcast_ref::<rds::delete_db_snapshot::DeleteDbSnapshotInput>() {
        return (s(i.db_snapshot_identifier()), None);
    }
    if let Some(i) =
        input.downcast_ref::<redshift::create_cluster_snapshot::CreateClusterSnapshotInput>()
    {
        return (s(i.snapshot_identifier()), s(i.cluster_identifier()));
    }
    if let Some(i) =
        input.downcast_ref::<redshift::copy_cluster_snapshot::CopyClusterSnapshotInput>()
    {
        return (
            s(i.target_snapshot_identifier()),
            s(i.source_snapshot_identifier()),
        );
    }
    if let Some(i) =
        input.downcast_ref::<redshift::authorize_snapshot_access::AuthorizeSnapshotAccessInput>()
    {
        return (
            s(i.snapshot_identifier().or(i.snapshot_arn())),
            s(i.account_with_restore_access()),
        );
    }
    if let Some(i) =
        input.downcast_ref::<redshift::revoke_snapshot_access::RevokeSnapshotAccessInput>()
    {
        return (
            s(i.snapshot_identifier().or(i.snapshot_arn())),
            s(i.account_with_restore_access()),
        );
    }
    if let Some(i) =
        input.downcast_ref::<redshift::delete_cluster_snapshot::DeleteClusterSnapshotInput>()
    {
        return (s(i.snapshot_identifier()), None);
    }
    if let Some(i) = input.downcast_ref::<redshift::create_tags::CreateTagsInput>() {
        return (
            s(i.resource_name()),
            Some(tags(i.tags().iter().map(|t| (t.key(), t.value())))),
        );
    }
    if let Some(i) =
        input.downcast_ref::<redshift::modify_cluster_snapshot::ModifyClusterSnapshotInput>()
    {
        return (s(i.snapshot_identifier()), None);
    }
    if let Some(i) = input.downcast_ref::<redshift::enable_snapshot_copy::EnableSnapshotCopyInput>()
    {
        return (s(i.cluster_identifier()), s(i.destination_region()));
    }
    if let Some(i) =
        input.downcast_ref::<redshift::create_snapshot_copy_grant::CreateSnapshotCopyGrantInput>()
    {
        return (s(i.snapshot_copy_grant_name()), s(i.kms_key_id()));
    }
    (None, None)
}

fn copy_detail(from: Option<&str>, key: Option<&str>) -> String {
    match key {
        Some(key) => format!("from {} with key {key}", from.unwrap_or("?")),
        None => format!("from {}", from.unwrap_or("?")),
    }
}

fn accounts(values: &[String]) -> String {
    format!("share with {}", values.join(", "))
}

fn tags<'a>(pairs: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>) -> String {
    let text: Vec<String> = pairs
        .map(|(k, v)| format!("{}={}", k.unwrap_or_default(), v.unwrap_or_default()))
        .collect();
    format!("tag {}", text.join(", "))
}
