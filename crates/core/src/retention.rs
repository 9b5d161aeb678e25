//! Retention: which owned snapshots to expire. A snapshot is kept when any rule keeps it:
//! it is among the newest `keep_last` of its resource, younger than `days`, or the newest of
//! one of the most recent daily/weekly/monthly/yearly periods that have snapshots (the
//! grandfather-father-son tiers). Only owned, available snapshots are ever selected.

use std::collections::{BTreeMap, BTreeSet};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Problems;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Keep every snapshot younger than this many days. Omit to rely on keep_last and tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// Always keep the newest N available snapshots of each database, however old (at least 1).
    #[serde(default = "default_keep_last")]
    pub keep_last: u32,
    /// Grandfather-father-son tiers: also keep the newest snapshot of each of the most recent
    /// N days, ISO weeks, months and years (UTC) that have snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Tiers>,
}

fn default_keep_last() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Tiers {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

const MAX_DAYS: u32 = 36_500;
const MAX_COUNT: u32 = 1000;

/// Days added to a policy's longest time bound for the Redshift safety net, so that
/// snapcourier's own expiry (which honours keep_last) normally acts first.
pub const SAFETY_NET_GRACE_DAYS: u32 = 30;
/// Longest ManualSnapshotRetentionPeriod Redshift accepts; beyond it, keep indefinitely.
pub const SAFETY_NET_MAX_DAYS: u32 = 3653;

impl RetentionPolicy {
    /// The longest a snapshot can be kept by `days` or the tiers, in days; `None` when only
    /// `keep_last` bounds the policy (no time bound).
    pub fn longest_days(&self) -> Option<u32> {
        let tiers = self.tiers.map(|t| {
            [t.daily, t.weekly * 7, t.monthly * 31, t.yearly * 366]
                .into_iter()
                .max()
                .unwrap_or(0)
        });
        match (self.days, tiers.filter(|d| *d > 0)) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).max(b.unwrap_or(0))),
        }
    }

    /// Redshift's ManualSnapshotRetentionPeriod for snapshots under this policy: a safety net
    /// that deletes them if snapcourier stops expiring them (stack removed), set to the
    /// longest time bound plus a grace period. `-1` (keep indefinitely) when the policy has
    /// no time bound or the bound exceeds what Redshift accepts.
    pub fn redshift_safety_net_days(&self) -> i32 {
        match self.longest_days() {
            Some(d) if d + SAFETY_NET_GRACE_DAYS <= SAFETY_NET_MAX_DAYS => {
                i32::try_from(d + SAFETY_NET_GRACE_DAYS).unwrap_or(-1)
            }
            _ => -1,
        }
    }

    pub(crate) fn check(&self, path: &str, p: &mut Problems) {
        if let Some(days) = self.days
            && !(1..=MAX_DAYS).contains(&days)
        {
            p.add(
                format!("{path}.days"),
                format!("must be between 1 and {MAX_DAYS}"),
            );
        }
        if !(1..=MAX_COUNT).contains(&self.keep_last) {
            p.add(
                format!("{path}.keep_last"),
                format!("must be between 1 and {MAX_COUNT}: the newest snapshot is never expired"),
            );
        }
        if let Some(t) = &self.tiers {
            for (name, n) in [
                ("daily", t.daily),
                ("weekly", t.weekly),
                ("monthly", t.monthly),
                ("yearly", t.yearly),
            ] {
                if n > MAX_COUNT {
                    p.add(
                        format!("{path}.tiers.{name}"),
                        format!("must be at most {MAX_COUNT}"),
                    );
                }
            }
        }
    }
}

/// A snapshot as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionCandidate {
    pub id: String,
    /// The database it protects; policies apply per database.
    pub resource: String,
    /// When the protected data was captured (API creation time, or our source-created tag).
    pub created: Timestamp,
    pub owned: bool,
    pub available: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    NotOwned,
    NotAvailable,
    KeepLast,
    WithinDays,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionPlan {
    /// Ids to delete, oldest first.
    pub delete: Vec<String>,
    /// Every other candidate with the first rule that keeps it.
    pub keep: BTreeMap<String, KeepReason>,
}

/// Decide which candidates to delete. Pure: the same inputs give the same plan.
pub fn plan_retention(
    policy: &RetentionPolicy,
    candidates: &[RetentionCandidate],
    now: Timestamp,
) -> RetentionPlan {
    let mut plan = RetentionPlan::default();
    let mut by_resource: BTreeMap<&str, Vec<&RetentionCandidate>> = BTreeMap::new();
    for c in candidates {
        if !c.owned {
            plan.keep.insert(c.id.clone(), KeepReason::NotOwned);
        } else if !c.available {
            plan.keep.insert(c.id.clone(), KeepReason::NotAvailable);
        } else {
            by_resource.entry(c.resource.as_str()).or_default().push(c);
        }
    }
    let mut delete: Vec<&RetentionCandidate> = Vec::new();
    for mut snapshots in by_resource.into_values() {
        // Newest first; the id breaks ties so the order never depends on the input order.
        snapshots.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        let kept = keep_reasons(policy, &snapshots, now);
        for (i, s) in snapshots.iter().enumerate() {
            match kept.get(&i) {
                Some(reason) => {
                    plan.keep.insert(s.id.clone(), *reason);
                }
                None => delete.push(s),
            }
        }
    }
    delete.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
    plan.delete = delete.into_iter().map(|c| c.id.clone()).collect();
    plan
}

/// Most snapshots retention ever keeps of one database that gets one snapshot per `interval`:
/// the steady state a quota must hold. Found by running the policy itself over a long enough
/// history, at several moments across a year (the tiers keep more or fewer around calendar
/// boundaries), so that it is the policy's count and not an estimate of it.
pub fn steady_state(policy: &RetentionPolicy, interval: SignedDuration) -> u32 {
    let step = interval.as_secs().max(3600);
    // History: everything the longest time bound can keep, or keep_last alone, plus slack.
    let span_days = i64::from(policy.longest_days().unwrap_or(0)) + 2;
    let by_time = span_days * 86_400 / step + 2;
    let count = by_time.max(i64::from(policy.keep_last) + 2).min(200_000);
    let base = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(24 * 365 * 56);
    let mut most = 0;
    // Twelve moments a month apart, each also shifted within a week.
    for phase in 0..12i64 {
        let now = base + SignedDuration::from_hours(24 * (31 * phase + phase % 7));
        let candidates: Vec<RetentionCandidate> = (0..count)
            .map(|k| RetentionCandidate {
                id: format!("s{k:07}"),
                resource: "db".into(),
                created: now - SignedDuration::from_secs(k * step),
                owned: true,
                available: true,
            })
            .collect();
        let plan = plan_retention(policy, &candidates, now);
        most = most.max(plan.keep.len());
    }
    u32::try_from(most).unwrap_or(u32::MAX)
}

/// The vault's floor: a destination's `retention.days`, which the config requires and which no
/// run input can change (`crate::deployed`). Whatever a policy says, a copy whose recovery
/// point is younger than the floor is never deleted: such a delete is taken out of `plan` and
/// returned (id and recovery point), for the step to report. A floor of `None` (a destination
/// without `days`, which validation refuses) refuses every delete.
pub fn apply_floor(
    plan: &mut RetentionPlan,
    candidates: &[RetentionCandidate],
    floor_days: Option<u32>,
    now: Timestamp,
) -> Vec<(String, Timestamp)> {
    let created: BTreeMap<&str, Timestamp> = candidates
        .iter()
        .map(|c| (c.id.as_str(), c.created))
        .collect();
    let horizon = floor_days.map(|d| now - SignedDuration::from_hours(24 * i64::from(d)));
    let mut refused = Vec::new();
    plan.delete.retain(|id| {
        // An id the candidates do not hold has no known age: refused like a young one.
        let at = created.get(id.as_str()).copied().unwrap_or(now);
        let allowed = horizon.is_some_and(|h| at <= h);
        if !allowed {
            refused.push((id.clone(), at));
        }
        allowed
    });
    refused
}

/// The calendar period (UTC) an instant falls in, as a comparable key.
type PeriodOf = fn(Timestamp) -> (i16, i16);

/// Index (into the newest-first list) of each kept snapshot, with the first rule keeping it.
fn keep_reasons(
    policy: &RetentionPolicy,
    newest_first: &[&RetentionCandidate],
    now: Timestamp,
) -> BTreeMap<usize, KeepReason> {
    let mut kept = BTreeMap::new();
    let keep_last = usize::try_from(policy.keep_last).unwrap_or(usize::MAX);
    for i in 0..newest_first.len().min(keep_last) {
        kept.insert(i, KeepReason::KeepLast);
    }
    if let Some(days) = policy.days {
        let horizon = now - SignedDuration::from_hours(24 * i64::from(days));
        for (i, s) in newest_first.iter().enumerate() {
            if s.created > horizon {
                kept.entry(i).or_insert(KeepReason::WithinDays);
            }
        }
    }
    if let Some(tiers) = policy.tiers {
        let tiers: [(u32, KeepReason, PeriodOf); 4] = [
            (tiers.daily, KeepReason::Daily, |t| {
                let d = t.to_zoned(TimeZone::UTC).date();
                (d.year(), d.day_of_year())
            }),
            (tiers.weekly, KeepReason::Weekly, |t| {
                let w = t.to_zoned(TimeZone::UTC).date().iso_week_date();
                (w.year(), i16::from(w.week()))
            }),
            (tiers.monthly, KeepReason::Monthly, |t| {
                let d = t.to_zoned(TimeZone::UTC).date();
                (d.year(), i16::from(d.month()))
            }),
            (tiers.yearly, KeepReason::Yearly, |t| {
                (t.to_zoned(TimeZone::UTC).date().year(), 0)
            }),
        ];
        for (count, reason, period) in tiers {
            let mut periods = BTreeSet::new();
            for (i, s) in newest_first.iter().enumerate() {
                if periods.len() >= count as usize {
                    break;
                }
                // The first (newest) snapshot seen in a period represents it.
                if periods.insert(period(s.created)) {
                    kept.entry(i).or_insert(reason);
                }
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests;
