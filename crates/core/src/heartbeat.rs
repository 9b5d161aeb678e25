//! The recovery-point heartbeat: at the end of every run each side reports how old its newest
//! protected recovery point is, per schedule. The Lambda functions write it as a CloudWatch
//! embedded-metric-format (EMF) log line; the stacks alarm when it is too old or missing, so a
//! disabled schedule, a stuck state machine or an engine that silently stopped producing
//! snapshots cannot go unnoticed.
//!
//! "Protected" means usable for a restore where this side keeps copies:
//! - source: an owned snapshot of the schedule that is available and shared with every
//!   destination account;
//! - destination: an owned copy (or, for Redshift, a share) of the schedule that is available
//!   in every region this destination keeps copies in. The recovery point is the oldest of the
//!   regions' newest ones: a region that fell behind is what limits a restore there.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::events::{DestinationRun, SourceRun};
use crate::snapshot::SnapshotRecord;
use crate::tags::Stage;

/// CloudWatch namespace of every snapcourier metric.
pub const METRIC_NAMESPACE: &str = "snapcourier";
/// Seconds since the newest protected recovery point was captured.
pub const RECOVERY_POINT_AGE: &str = "RecoveryPointAge";
/// Copies of the schedule still being made (destination, after the copy-in step).
pub const COPIES_IN_FLIGHT: &str = "CopiesInFlight";
/// Metric dimensions, in this order: the config namespace, the side, the schedule.
pub const DIMENSIONS: [&str; 3] = ["Deployment", "Side", "Schedule"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Source,
    Destination,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Destination => "destination",
        }
    }
}

/// One run's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub side: Side,
    pub schedule: String,
    /// Capture time of the newest recovery point protected everywhere this side keeps them;
    /// absent when some region has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<Timestamp>,
    /// Seconds from `newest` to the end of the run (never negative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<i64>,
    /// Regions holding no protected recovery point of this schedule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_in: Vec<String>,
}

impl Heartbeat {
    /// From each region's newest protected recovery point (None: the region has none).
    pub fn from_regions(
        side: Side,
        schedule: &str,
        regions: BTreeMap<String, Option<Timestamp>>,
        now: Timestamp,
    ) -> Self {
        let missing_in: Vec<String> = regions
            .iter()
            .filter(|(_, newest)| newest.is_none())
            .map(|(region, _)| region.clone())
            .collect();
        let newest = if missing_in.is_empty() {
            regions.values().flatten().min().copied()
        } else {
            None
        };
        Heartbeat {
            side,
            schedule: schedule.to_string(),
            newest,
            age_seconds: newest.map(|t| now.duration_since(t).as_secs().max(0)),
            missing_in,
        }
    }

    /// Source side: the newest owned snapshot of the schedule in `region` that is available
    /// and shared with every destination account.
    pub fn source(
        run: &SourceRun,
        region: &str,
        snapshots: &[SnapshotRecord],
        now: Timestamp,
    ) -> Self {
        let newest = snapshots
            .iter()
            .filter(|s| {
                s.is_ours(&run.namespace, &run.schedule.name, Stage::Source)
                    && s.status.is_available()
                    && run
                        .destination_accounts
                        .iter()
                        .all(|a| s.shared_with().contains(a))
            })
            .filter_map(SnapshotRecord::captured_at)
            .max();
        Self::from_regions(
            Side::Source,
            &run.schedule.name,
            [(region.to_string(), newest)].into(),
            now,
        )
    }

    /// Destination side (Aurora, RDS): per destination region, the newest owned final copy of
    /// the schedule that is available; `local` maps region to its listed snapshots.
    pub fn destination(
        run: &DestinationRun,
        local: &BTreeMap<String, Vec<SnapshotRecord>>,
        now: Timestamp,
    ) -> Self {
        let regions = run
            .destination
            .regions
            .iter()
            .map(|r| {
                let newest = local
                    .get(&r.region)
                    .into_iter()
                    .flatten()
                    .filter(|s| {
                        s.is_ours(&run.namespace, &run.schedule.name, Stage::Destination)
                            && s.status.is_available()
                    })
                    .filter_map(SnapshotRecord::captured_at)
                    .max();
                (r.region.clone(), newest)
            })
            .collect();
        Self::from_regions(Side::Destination, &run.schedule.name, regions, now)
    }
}

/// How the stacks alarm on a schedule's `RecoveryPointAge`: every run ends with one value, so
/// a window of two intervals holds at least one unless a run was missed. The alarm fires when
/// the newest value in the window is older than two intervals, or when the window holds no
/// value at all (missing data is breaching).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmWindow {
    /// Alarm period (a multiple of 60 seconds, at most one day).
    pub period_seconds: u64,
    /// Periods evaluated; all must breach.
    pub evaluation_periods: u32,
    /// Alarm when the age exceeds this.
    pub threshold_seconds: u64,
    /// False when two intervals exceed what CloudWatch can evaluate (7 days): the alarm then
    /// watches the age only, because a window that short would see no value between runs.
    pub missing_data_breaching: bool,
}

/// CloudWatch's longest alarm period used here, and its longest evaluation range.
const DAY: u64 = 86_400;
const MAX_EVALUATION_DAYS: u64 = 7;

impl AlarmWindow {
    pub fn for_interval(interval_seconds: u64) -> Self {
        let two_intervals = interval_seconds.saturating_mul(2);
        let window = two_intervals.div_ceil(60) * 60;
        if window <= DAY {
            return AlarmWindow {
                period_seconds: window.max(60),
                evaluation_periods: 1,
                threshold_seconds: two_intervals,
                missing_data_breaching: true,
            };
        }
        let days = window.div_ceil(DAY);
        AlarmWindow {
            period_seconds: DAY,
            evaluation_periods: days.min(MAX_EVALUATION_DAYS) as u32,
            threshold_seconds: two_intervals,
            missing_data_breaching: days <= MAX_EVALUATION_DAYS,
        }
    }
}

/// One CloudWatch embedded-metric-format record: `metrics` (name, value, unit) under the
/// namespace's dimensions for `side` and `schedule`, timestamped `now`.
pub fn emf(
    namespace: &str,
    side: Side,
    schedule: &str,
    metrics: &[(&str, f64, &str)],
    now: Timestamp,
) -> Value {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, _, unit)| json!({ "Name": name, "Unit": unit }))
        .collect();
    let mut record = json!({
        "_aws": {
            "Timestamp": now.as_millisecond(),
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [DIMENSIONS],
                "Metrics": definitions,
            }],
        },
        "Deployment": namespace,
        "Side": side.as_str(),
        "Schedule": schedule,
    });
    if let Some(fields) = record.as_object_mut() {
        for (name, value, _) in metrics {
            fields.insert((*name).to_string(), json!(value));
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_recovery_point_is_the_oldest_of_the_regions_newest() {
        let now = at("2026-11-22T12:00:00Z");
        let h = Heartbeat::from_regions(
            Side::Destination,
            "daily",
            [
                ("eu-west-1".to_string(), Some(at("2026-11-22T10:00:00Z"))),
                ("us-east-1".to_string(), Some(at("2026-11-22T11:00:00Z"))),
            ]
            .into(),
            now,
        );
        assert_eq!(h.newest, Some(at("2026-11-22T10:00:00Z")));
        assert_eq!(h.age_seconds, Some(7200));
        assert!(h.missing_in.is_empty());
    }

    #[test]
    fn a_region_without_any_protected_point_leaves_no_age() {
        let now = at("2026-11-22T12:00:00Z");
        let h = Heartbeat::from_regions(
            Side::Destination,
            "daily",
            [
                ("eu-west-1".to_string(), None),
                ("us-east-1".to_string(), Some(at("2026-11-22T11:00:00Z"))),
            ]
            .into(),
            now,
        );
        assert_eq!((h.newest, h.age_seconds), (None, None));
        assert_eq!(h.missing_in, vec!["eu-west-1".to_string()]);
    }

    #[test]
    fn a_clock_behind_the_capture_time_reports_age_zero() {
        let now = at("2026-11-22T12:00:00Z");
        let h = Heartbeat::from_regions(
            Side::Source,
            "daily",
            [("us-east-1".to_string(), Some(at("2026-11-22T12:00:05Z")))].into(),
            now,
        );
        assert_eq!(h.age_seconds, Some(0));
    }

    #[test]
    fn the_alarm_window_spans_two_intervals_within_cloudwatch_limits() {
        let hourly = AlarmWindow::for_interval(3600);
        assert_eq!(
            (
                hourly.period_seconds,
                hourly.evaluation_periods,
                hourly.threshold_seconds
            ),
            (7200, 1, 7200)
        );
        assert!(hourly.missing_data_breaching);
        let daily = AlarmWindow::for_interval(DAY);
        assert_eq!((daily.period_seconds, daily.evaluation_periods), (DAY, 2));
        assert_eq!(daily.threshold_seconds, 2 * DAY);
        // 90 minutes: two intervals are 3 hours, a whole number of minutes.
        assert_eq!(AlarmWindow::for_interval(5400).period_seconds, 10_800);
        // An odd number of seconds rounds the period up to whole minutes.
        assert_eq!(AlarmWindow::for_interval(3601).period_seconds, 7260);
        // 3.5 days is the longest interval whose two-interval window CloudWatch evaluates.
        let longest = AlarmWindow::for_interval(DAY * 7 / 2);
        assert_eq!(
            (longest.evaluation_periods, longest.missing_data_breaching),
            (7, true)
        );
        let weekly = AlarmWindow::for_interval(7 * DAY);
        assert_eq!(
            (weekly.evaluation_periods, weekly.missing_data_breaching),
            (7, false)
        );
        assert_eq!(weekly.threshold_seconds, 14 * DAY);
    }

    #[test]
    fn emf_names_its_metrics_and_dimensions_and_carries_their_values() {
        let now = at("2026-11-22T12:00:00Z");
        let record = emf(
            "prod",
            Side::Source,
            "aurora-daily",
            &[(RECOVERY_POINT_AGE, 42.0, "Seconds")],
            now,
        );
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(record["_aws"]["Timestamp"], json!(now.as_millisecond()));
        assert_eq!(directive["Namespace"], json!("snapcourier"));
        assert_eq!(
            directive["Dimensions"],
            json!([["Deployment", "Side", "Schedule"]])
        );
        assert_eq!(
            directive["Metrics"],
            json!([{ "Name": "RecoveryPointAge", "Unit": "Seconds" }])
        );
        // Every dimension and metric the directive names is a top-level member.
        assert_eq!(record["Deployment"], json!("prod"));
        assert_eq!(record["Side"], json!("source"));
        assert_eq!(record["Schedule"], json!("aurora-daily"));
        assert_eq!(record["RecoveryPointAge"], json!(42.0));
    }
}
