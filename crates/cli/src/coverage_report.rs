//! `snapcourier report --coverage`: one row per covered database, for the on-call and for
//! auditors. Its newest source snapshot, whether that is shared with every destination
//! account, its newest copy in every destination region, each one's age against the schedule's
//! recovery-point objective, and a status. Databases the config covers that have nothing yet
//! are listed as missing, never left out.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use snapcourier_aws::AwsContext;
use snapcourier_aws::engines::list_resources;
use snapcourier_core::config::{ResourceFilter, Schedule};
use snapcourier_core::drill::DrillRecord;
use snapcourier_core::snapshot::{SnapshotRecord, SnapshotStatus};
use snapcourier_core::tags::Stage;
use snapcourier_core::{Config, Engine, Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Shared and copied everywhere within the RPO threshold (two intervals).
    Ok,
    /// Protected everywhere, but somewhere only by a recovery point older than the threshold.
    Late,
    /// Nothing at all somewhere: no snapshot, not shared, or no copy in a region.
    Missing,
    /// Its newest snapshot failed in AWS, or its last restore drill failed.
    Failing,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Late => "late",
            Status::Missing => "missing",
            Status::Failing => "failing",
        }
    }
}

/// A recovery point and its age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    pub snapshot_id: String,
    pub captured: Timestamp,
    pub age_seconds: i64,
    pub late: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub schedule: String,
    pub database: String,
    /// The schedule's interval (its recovery-point objective), in seconds.
    pub rpo_seconds: i64,
    pub newest_source: Option<Point>,
    /// The newest source snapshot is shared with every destination account.
    pub shared: bool,
    /// Newest copy per destination account and region (`account/region`); `None`: none.
    pub copies: BTreeMap<String, Option<Point>>,
    /// The last restore drill of the database (any destination account and region): when,
    /// where, its result and measured restore time; `None`: never drilled.
    pub last_drill: Option<String>,
    /// That drill's record, for JSON readers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillRecord>,
    pub status: Status,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CoverageReport {
    pub generated_at: Option<Timestamp>,
    pub rows: Vec<Row>,
    pub ok: usize,
    pub late: usize,
    pub missing: usize,
    pub failing: usize,
}

/// What the source account holds for one schedule: the databases it covers and the owned
/// snapshots (source stage) of the schedule.
pub struct SourceView {
    pub databases: Vec<String>,
    pub snapshots: Vec<SnapshotRecord>,
}

/// What one destination account holds: its copies per region.
pub struct DestinationView {
    pub account: String,
    pub copies: BTreeMap<String, Vec<SnapshotRecord>>,
}

fn point(s: &SnapshotRecord, threshold: SignedDuration, now: Timestamp) -> Option<Point> {
    let captured = s.captured_at()?;
    let age = now.duration_since(captured);
    Some(Point {
        snapshot_id: s.id.clone(),
        captured,
        age_seconds: age.as_secs(),
        late: age > threshold,
    })
}

fn newest<'a>(list: impl Iterator<Item = &'a SnapshotRecord>) -> Option<&'a SnapshotRecord> {
    list.max_by_key(|s| (s.captured_at(), s.id.clone()))
}

/// The rows of one schedule. Pure: the same views give the same rows.
pub fn schedule_rows(
    config: &Config,
    schedule: &Schedule,
    source: &SourceView,
    destinations: &[DestinationView],
    drills: &[DrillRecord],
    now: Timestamp,
) -> Vec<Row> {
    // Redshift's copies are the source account's own, in each region, shared with the
    // destinations (`redshift_destination_views`); the others are the destinations' copies.
    let copy_stage = if schedule.engine.copies_into_destination() {
        Stage::Destination
    } else {
        Stage::Source
    };
    let interval = schedule.interval.as_signed();
    let threshold = interval * 2;
    let accounts: BTreeSet<String> = config
        .destinations
        .iter()
        .map(|d| d.account.clone())
        .collect();
    let mut databases: BTreeSet<String> = source.databases.iter().cloned().collect();
    // A database with snapshots but no longer listed (deleted, renamed) still has a row.
    databases.extend(
        source
            .snapshots
            .iter()
            .map(|s| s.protected_resource().to_string()),
    );
    databases
        .into_iter()
        .map(|database| {
            let of_db: Vec<&SnapshotRecord> = source
                .snapshots
                .iter()
                .filter(|s| s.protected_resource() == database)
                .collect();
            let failing = newest(of_db.iter().copied())
                .is_some_and(|s| matches!(s.status, SnapshotStatus::Unusable(_)));
            let available = newest(of_db.iter().copied().filter(|s| s.status.is_available()));
            let shared = available.is_some_and(|s| accounts.is_subset(&s.shared_with()));
            let newest_source = available.and_then(|s| point(s, threshold, now));
            let mut copies = BTreeMap::new();
            for d in destinations {
                let Some(dest) = config.destinations.iter().find(|x| x.account == d.account) else {
                    continue;
                };
                for r in &dest.regions {
                    let found = d.copies.get(&r.region).and_then(|list| {
                        newest(list.iter().filter(|s| {
                            s.protected_resource() == database
                                && s.status.is_available()
                                && s.is_ours(&config.namespace, &schedule.name, copy_stage)
                        }))
                    });
                    copies.insert(
                        format!("{}/{}", d.account, r.region),
                        found.and_then(|s| point(s, threshold, now)),
                    );
                }
            }
            let drill = drills
                .iter()
                .filter(|r| r.schedule == schedule.name && r.database == database)
                .max_by_key(|r| r.at)
                .cloned();
            let failing = failing || drill.as_ref().is_some_and(|r| !r.succeeded);
            let status = if failing {
                Status::Failing
            } else if newest_source.is_none() || !shared || copies.values().any(Option::is_none) {
                Status::Missing
            } else if newest_source.as_ref().is_some_and(|p| p.late)
                || copies.values().flatten().any(|p| p.late)
            {
                Status::Late
            } else {
                Status::Ok
            };
            Row {
                schedule: schedule.name.clone(),
                database,
                rpo_seconds: interval.as_secs(),
                newest_source,
                shared,
                copies,
                last_drill: drill
                    .as_ref()
                    .map(|r| format!("{} in {}", r.summary(), r.region)),
                drill,
                status,
            }
        })
        .collect()
}

impl CoverageReport {
    pub fn from_rows(rows: Vec<Row>, now: Timestamp) -> Self {
        let count = |s: Status| rows.iter().filter(|r| r.status == s).count();
        CoverageReport {
            generated_at: Some(now),
            ok: count(Status::Ok),
            late: count(Status::Late),
            missing: count(Status::Missing),
            failing: count(Status::Failing),
            rows,
        }
    }

    pub fn all_ok(&self) -> bool {
        self.rows.iter().all(|r| r.status == Status::Ok)
    }

    /// For auditors: a Markdown document with the summary and one table row per database.
    pub fn markdown(&self, namespace: &str) -> String {
        let mut out = format!(
            "# snapcourier coverage: {namespace}\n\nGenerated {}. {} database(s): {} ok, {} late, {} missing, {} failing.\n\n",
            self.generated_at
                .map_or_else(String::new, |t| t.to_string()),
            self.rows.len(),
            self.ok,
            self.late,
            self.missing,
            self.failing
        );
        out.push_str("| schedule | database | RPO | newest source snapshot | age | shared | copies | last drill | status |\n|---|---|---|---|---|---|---|---|---|\n");
        for r in &self.rows {
            let copies: Vec<String> = r
                .copies
                .iter()
                .map(|(where_, p)| match p {
                    Some(p) => format!("{where_}: {}", age(p.age_seconds)),
                    None => format!("{where_}: none"),
                })
                .collect();
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.schedule,
                r.database,
                age(r.rpo_seconds),
                r.newest_source
                    .as_ref()
                    .map_or("none".to_string(), |p| p.snapshot_id.clone()),
                r.newest_source
                    .as_ref()
                    .map_or("-".to_string(), |p| age(p.age_seconds)),
                if r.shared { "yes" } else { "no" },
                copies.join("<br>"),
                r.last_drill.as_deref().unwrap_or("none yet"),
                r.status.as_str()
            ));
        }
        out
    }
}

/// A duration in seconds, as `2d 3h` or `45m`.
pub fn age(seconds: i64) -> String {
    snapcourier_core::duration::short(seconds)
}

/// What the source account holds for a schedule.
pub async fn source_view(
    ctx: &AwsContext,
    config: &Config,
    schedule: &Schedule,
) -> Result<SourceView, Error> {
    let region = config.source.region.as_str();
    let filter = ResourceFilter::new(schedule, "schedule")?;
    let resources = match schedule.engine {
        Engine::Redshift => {
            snapcourier_aws::redshift::list_clusters(ctx, region, &config.source.account)
                .await?
                .into_iter()
                .map(|c| c.record)
                .collect()
        }
        engine => list_resources(ctx, engine, region).await?,
    };
    let databases = resources
        .into_iter()
        .filter(|r| {
            schedule.engine.covers_engine_name(&r.engine)
                && filter.covers(&r.id, &r.tags)
                && r.replica_of.is_none()
        })
        .map(|r| r.id)
        .collect();
    let run = snapcourier_core::events::SourceRun::from_config(config, &schedule.name)?;
    let snapshots = snapcourier_aws::engines::schedule_snapshots(ctx, &run).await?;
    Ok(SourceView {
        databases,
        snapshots,
    })
}

/// One destination account's copies in each of its regions (every copying engine).
pub async fn destination_view(
    ctx: &AwsContext,
    config: &Config,
    account: &str,
) -> Result<DestinationView, Error> {
    let d = config.destination(account)?;
    let mut copies = BTreeMap::new();
    for r in &d.regions {
        let mut list = Vec::new();
        for schedule in config
            .schedules
            .iter()
            .filter(|s| s.engine.copies_into_destination())
        {
            let run = snapcourier_core::events::DestinationRun::from_config(
                config,
                &schedule.name,
                account,
            )?;
            list.extend(snapcourier_aws::engines::schedule_copies(ctx, &run, &r.region).await?);
        }
        copies.insert(r.region.clone(), list);
    }
    Ok(DestinationView {
        account: account.to_string(),
        copies,
    })
}

/// A Redshift schedule's "copies": the source account's snapshots of the schedule in each
/// destination region (Redshift copies them across regions itself), as each destination
/// account sees them, that is those it may restore.
pub async fn redshift_destination_views(
    ctx: &AwsContext,
    config: &Config,
    schedule: &Schedule,
    accounts: &[String],
) -> Result<Vec<DestinationView>, Error> {
    let mut by_region = BTreeMap::new();
    for region in config.destination_regions() {
        let listed = snapcourier_aws::redshift::list_snapshots(ctx, &region, None)
            .await?
            .into_iter()
            .filter(|s| s.is_ours(&config.namespace, &schedule.name, Stage::Source))
            .collect::<Vec<_>>();
        by_region.insert(region, listed);
    }
    Ok(accounts
        .iter()
        .map(|account| DestinationView {
            account: account.clone(),
            copies: by_region
                .iter()
                .map(|(region, list)| {
                    let visible = list
                        .iter()
                        .filter(|s| {
                            s.restore_accounts
                                .as_ref()
                                .is_some_and(|a| a.contains(account))
                        })
                        .cloned()
                        .collect();
                    (region.clone(), visible)
                })
                .collect(),
        })
        .collect())
}

/// The drill records of one destination account, in every region it keeps copies in (they
/// live in its stack's region, the source region).
pub async fn drill_records(
    ctx: &AwsContext,
    config: &Config,
    account: &str,
) -> Result<Vec<DrillRecord>, Error> {
    let mut out = Vec::new();
    for r in &config.destination(account)?.regions {
        out.extend(
            snapcourier_aws::drill::read_records(
                ctx,
                &config.source.region,
                &config.namespace,
                &r.region,
            )
            .await?,
        );
    }
    Ok(out)
}

/// The whole report: the source account through `source`, the destination `accounts`
/// through `destination` (Redshift's copies are read from the source account, where they
/// are).
pub async fn coverage(
    source: &AwsContext,
    destination: &AwsContext,
    config: &Config,
    accounts: &[String],
    now: Timestamp,
) -> Result<CoverageReport, Error> {
    let mut destinations = Vec::new();
    let mut drills = Vec::new();
    for account in accounts {
        destinations.push(destination_view(destination, config, account).await?);
        drills.extend(drill_records(destination, config, account).await?);
    }
    let mut rows = Vec::new();
    for schedule in &config.schedules {
        let view = source_view(source, config, schedule).await?;
        if schedule.engine.copies_into_destination() {
            rows.extend(schedule_rows(
                config,
                schedule,
                &view,
                &destinations,
                &drills,
                now,
            ));
        } else {
            let views = redshift_destination_views(source, config, schedule, accounts).await?;
            rows.extend(schedule_rows(config, schedule, &view, &views, &drills, now));
        }
    }
    Ok(CoverageReport::from_rows(rows, now))
}
