//! What the adapters report about resources and snapshots, in the domain's words.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::tags::{self, Stage};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotStatus {
    Available,
    /// Still being created or copied (`creating`, `copying`, `pending`...).
    InProgress(String),
    /// Any status from which it will not become available by waiting.
    Unusable(String),
}

impl SnapshotStatus {
    pub fn from_api(status: &str) -> Self {
        match status {
            "available" => SnapshotStatus::Available,
            // ElastiCache: `exporting` while its objects are written to S3, `restoring` while
            // a cache is seeded from it.
            "creating" | "copying" | "pending" | "modifying" | "backing-up" | "exporting"
            | "restoring" => SnapshotStatus::InProgress(status.to_string()),
            other => SnapshotStatus::Unusable(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            SnapshotStatus::Available => "available",
            SnapshotStatus::InProgress(s) | SnapshotStatus::Unusable(s) => s,
        }
    }

    pub fn is_available(&self) -> bool {
        matches!(self, SnapshotStatus::Available)
    }

    pub fn is_in_progress(&self) -> bool {
        matches!(self, SnapshotStatus::InProgress(_))
    }
}

/// A snapshot as a describe call shows it, tags included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// The snapshot identifier (for a snapshot shared by another account, the last part of
    /// its ARN).
    pub id: String,
    pub arn: String,
    /// The account that owns it (from the ARN).
    pub owner_account: String,
    /// The database it was taken from.
    pub resource_id: String,
    pub status: SnapshotStatus,
    /// API creation time; absent for a snapshot that has only just started.
    pub created: Option<Timestamp>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// RDS instance snapshots: the option group (regional; cross-region copies map it).
    pub option_group: Option<String>,
    /// Accounts allowed to restore it, when the describe call reports them (Redshift).
    pub restore_accounts: Option<BTreeSet<String>>,
    /// For a cross-region copy made by the service (Redshift), the region it came from.
    pub source_region: Option<String>,
    /// The data's engine, when a restore needs it from the snapshot (ElastiCache: a cache is
    /// seeded from exported objects, which do not say it).
    pub engine: Option<DbEngine>,
}

/// A database engine and its version, as the service names them (`valkey` `8.0`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbEngine {
    pub name: String,
    /// The full version (`7.2`), or the major one (`8`) where that is all the service says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl SnapshotRecord {
    pub fn is_owned_by(&self, namespace: &str) -> bool {
        self.tags
            .get(tags::NAMESPACE)
            .is_some_and(|ns| ns == namespace)
    }

    /// Owned and of this schedule, at any stage.
    pub fn is_of_schedule(&self, namespace: &str, schedule: &str) -> bool {
        self.is_owned_by(namespace) && self.tags.get(tags::SCHEDULE).is_some_and(|s| s == schedule)
    }

    /// Owned, of this schedule, at this stage.
    pub fn is_ours(&self, namespace: &str, schedule: &str, stage: Stage) -> bool {
        self.is_of_schedule(namespace, schedule) && self.stage() == Some(stage)
    }

    pub fn stage(&self) -> Option<Stage> {
        self.tags.get(tags::STAGE).and_then(|s| Stage::parse(s))
    }

    pub fn shared_with(&self) -> BTreeSet<String> {
        self.tags
            .get(tags::SHARED_WITH)
            .map(|v| tags::parse_shared_with(v))
            .unwrap_or_default()
    }

    /// The database this protects: our resource tag, else the API's field.
    pub fn protected_resource(&self) -> &str {
        self.tags
            .get(tags::RESOURCE)
            .map_or(self.resource_id.as_str(), String::as_str)
    }

    /// When the protected data was captured: our source-created tag (copies), else the API
    /// creation time.
    /// Set for an on-demand snapshot (`snapcourier snapshot-now`) and its copies: when it was
    /// taken and how long it is kept, from its id. Interval slots and retention policies
    /// leave it alone; it is expired when its keep ends.
    pub fn on_demand(&self) -> Option<crate::naming::OnDemand> {
        crate::naming::parse_on_demand(&self.id)
    }

    pub fn captured_at(&self) -> Option<Timestamp> {
        self.tags
            .get(tags::SOURCE_CREATED)
            .and_then(|t| t.parse().ok())
            .or(self.created)
    }
}

/// A database as a describe call shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRecord {
    pub id: String,
    pub arn: String,
    /// The API's engine name, such as `aurora-postgresql`.
    pub engine: String,
    pub status: String,
    pub tags: BTreeMap<String, String>,
    /// Set when the database is a read replica of another (never snapshotted: its primary is).
    pub replica_of: Option<String>,
    /// The KMS key its storage is encrypted with; `None` when it is not encrypted. Its
    /// snapshots carry the same key.
    pub kms_key_id: Option<String>,
}

/// The account id inside an ARN (`arn:aws:rds:us-east-1:111111111111:...`).
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// The last `:`-separated part of an ARN, the identifier for RDS resources.
pub fn arn_resource_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::SnapshotStatus;

    #[test]
    fn a_snapshot_being_exported_or_restored_from_is_waited_for_not_given_up() {
        for status in [
            "creating",
            "copying",
            "exporting",
            "restoring",
            "backing-up",
        ] {
            assert!(
                SnapshotStatus::from_api(status).is_in_progress(),
                "{status}"
            );
        }
        for status in ["failed", "deleting", "incompatible-restore"] {
            assert!(
                matches!(
                    SnapshotStatus::from_api(status),
                    SnapshotStatus::Unusable(_)
                ),
                "{status}"
            );
        }
    }
}
