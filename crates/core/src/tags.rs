//! Ownership and progress tags. A snapshot is ours when its namespace tag equals our
//! namespace; nothing else is ever modified or deleted.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Every snapcourier tag key starts with this.
pub const PREFIX: &str = "snapcourier:";
pub const NAMESPACE: &str = "snapcourier:namespace";
pub const SCHEDULE: &str = "snapcourier:schedule";
pub const STAGE: &str = "snapcourier:stage";
/// The database the snapshot protects (its identifier in the source account).
pub const RESOURCE: &str = "snapcourier:resource";
/// Where this snapshot came from: the database ARN for a source snapshot, the source snapshot
/// ARN for a copy.
pub const SOURCE_ARN: &str = "snapcourier:source-arn";
/// When the protected data was captured (the source snapshot's creation time, RFC 3339 UTC).
pub const SOURCE_CREATED: &str = "snapcourier:source-created";
/// Progress marker on a source snapshot: the destination accounts it is shared with, so a
/// later run knows without one call per snapshot.
pub const SHARED_WITH: &str = "snapcourier:shared-with";
/// On an on-demand snapshot (`snapcourier snapshot-now --label`): why it was taken.
pub const LABEL: &str = "snapcourier:label";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Taken in the source account.
    Source,
    /// A destination account's copy in the source region, deleted once the regional copies exist.
    Intermediate,
    /// A destination account's copy in a destination region.
    Destination,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Source => "source",
            Stage::Intermediate => "intermediate",
            Stage::Destination => "destination",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        match s {
            "source" => Some(Stage::Source),
            "intermediate" => Some(Stage::Intermediate),
            "destination" => Some(Stage::Destination),
            _ => None,
        }
    }
}

/// The tags snapcourier puts on every snapshot it creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnershipTags {
    pub namespace: String,
    pub schedule: String,
    pub stage: Stage,
    pub resource: String,
    pub source_arn: String,
    pub source_created: Option<Timestamp>,
}

impl OwnershipTags {
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::from([
            (NAMESPACE.to_string(), self.namespace.clone()),
            (SCHEDULE.to_string(), self.schedule.clone()),
            (STAGE.to_string(), self.stage.as_str().to_string()),
            (RESOURCE.to_string(), self.resource.clone()),
            (SOURCE_ARN.to_string(), self.source_arn.clone()),
        ]);
        if let Some(t) = self.source_created {
            tags.insert(SOURCE_CREATED.to_string(), t.to_string());
        }
        tags
    }
}

/// The shared-with marker's value: sorted account ids joined by `+` (a tag-value character).
pub fn shared_with_value(accounts: &BTreeSet<String>) -> String {
    accounts
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("+")
}

pub fn parse_shared_with(value: &str) -> BTreeSet<String> {
    value
        .split('+')
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_with_round_trips_and_fits_one_tag_value() {
        let accounts: BTreeSet<String> = (0..crate::config::MAX_DESTINATIONS)
            .map(|i| format!("{:012}", 100_000_000_000u64 + i as u64))
            .collect();
        let value = shared_with_value(&accounts);
        assert!(value.len() <= 256, "{}", value.len());
        assert_eq!(parse_shared_with(&value), accounts);
        assert!(parse_shared_with("").is_empty());
    }

    #[test]
    fn stages_round_trip() {
        for s in [Stage::Source, Stage::Intermediate, Stage::Destination] {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
        }
        assert_eq!(Stage::parse("other"), None);
    }
}
