//! Coverage per database. The heartbeat reports a schedule's newest protected recovery point,
//! which one healthy database keeps young while others have nothing; every run also reports
//! how many of the schedule's databases have no recovery point protected within the RPO
//! threshold (two intervals), and which. The Lambda functions write the count as the
//! `UnprotectedDatabases` metric; the stacks alarm when it is above zero.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::looks::MAX_NAMED;

/// Databases of the schedule with no recovery point protected within two intervals.
pub const UNPROTECTED_DATABASES: &str = "UnprotectedDatabases";

/// One run's view of its databases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    /// Databases of the schedule this run saw.
    pub databases: usize,
    /// How many have no recovery point protected within `threshold_seconds`.
    pub unprotected: usize,
    /// Two intervals of the schedule.
    pub threshold_seconds: u64,
    /// The unprotected databases, never-protected first, then the longest unprotected (a
    /// Lambda output names the first `MAX_NAMED`).
    pub named: Vec<UnprotectedDatabase>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnprotectedDatabase {
    pub database: String,
    /// Capture time of its newest protected recovery point, if it has one at all.
    #[serde(default)]
    pub newest: Option<Timestamp>,
}

impl Coverage {
    /// From each database's newest protected recovery point (None: it has none).
    pub fn of(
        newest: &BTreeMap<String, Option<Timestamp>>,
        interval: SignedDuration,
        now: Timestamp,
    ) -> Coverage {
        let threshold = interval * 2;
        let mut named: Vec<UnprotectedDatabase> = newest
            .iter()
            .filter(|(_, at)| at.is_none_or(|at| now.duration_since(at) > threshold))
            .map(|(database, at)| UnprotectedDatabase {
                database: database.clone(),
                newest: *at,
            })
            .collect();
        named.sort_by(|a, b| {
            a.newest
                .cmp(&b.newest)
                .then_with(|| a.database.cmp(&b.database))
        });
        Coverage {
            databases: newest.len(),
            unprotected: named.len(),
            threshold_seconds: threshold.as_secs().max(0) as u64,
            named,
        }
    }

    /// As a Lambda function returns it: the count, and the first `MAX_NAMED` by name.
    pub fn bounded(mut self) -> Coverage {
        self.named.truncate(MAX_NAMED);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn databases_without_a_recent_protected_point_are_named_never_protected_first() {
        let now = t("2026-11-22T12:00:00Z");
        let newest: BTreeMap<String, Option<Timestamp>> = [
            ("orders-db", Some(t("2026-11-22T03:00:00Z"))),
            ("billing-db", None),
            ("ledger-db", Some(t("2026-11-19T03:00:00Z"))),
            ("users-db", Some(t("2026-11-20T12:00:00Z"))), // exactly two intervals: protected
        ]
        .into_iter()
        .map(|(d, at)| (d.to_string(), at))
        .collect();
        let c = Coverage::of(&newest, SignedDuration::from_hours(24), now);
        assert_eq!(c.databases, 4);
        assert_eq!(c.unprotected, 2);
        assert_eq!(c.threshold_seconds, 2 * 86_400);
        let names: Vec<&str> = c.named.iter().map(|u| u.database.as_str()).collect();
        assert_eq!(names, vec!["billing-db", "ledger-db"]);
    }

    #[test]
    fn a_lambda_output_names_at_most_twenty_and_counts_all() {
        let newest: BTreeMap<String, Option<Timestamp>> =
            (0..500).map(|i| (format!("db-{i:03}"), None)).collect();
        let c = Coverage::of(
            &newest,
            SignedDuration::from_hours(1),
            t("2026-11-22T12:00:00Z"),
        )
        .bounded();
        assert_eq!(c.unprotected, 500);
        assert_eq!(c.named.len(), MAX_NAMED);
    }
}
