//! Restore drills: a backup that has never been restored is a hope, not a backup. On a
//! schedule (or by hand, `snapcourier drill`), the destination restores the newest copy of a
//! few databases into throwaway resources in a destination region, waits until each is
//! available, times it (the measured RTO) and notes the copy's age then (the RPO at drill
//! time), optionally asks a validation function for a verdict, and deletes what it restored,
//! whatever happened.
//!
//! This module holds the drill's rules: the config section, the run and the step's events,
//! which databases are due and chosen, the restored resources' names, and the durable record
//! of each database's last drill. The adapters (`snapcourier_aws::drill`) do the calls.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use jiff::{SignedDuration, Timestamp};
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{self, Config, Problems, Rule, Settings, SourceAccount, is_match};
use crate::duration::HumanDuration;
use crate::engine::Engine;
use crate::error::Error;
use crate::events::{EVENT_VERSION, ExecutionContext, FailureStage, ItemFailure, StepInput};
use crate::naming::ID_PREFIX;

/// The drill section of the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drills {
    /// How often each drill region gets a drill, such as `7d` or `90d`. A drill is due when
    /// the last one in the region began at least this long ago; the stack checks once a day
    /// (or every `every`, when that is shorter). At least `1h`.
    pub every: HumanDuration,
    /// Which databases each drill restores: a number (that many per region, the ones drilled
    /// longest ago first, so every database gets its turn), or a list of database ids.
    pub databases: DrillDatabases,
    /// Regions to drill in. Default: every region the destination keeps copies in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Longest wait for a restored database to become available; past it the drill fails and
    /// what it restored is deleted. Default `4h`; at least `5m`, at most `12h`.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Instance class of the one instance a drill adds to a restored Aurora cluster.
    #[serde(default = "default_aurora_class")]
    pub aurora_instance_class: String,
    /// Instance class of a restored RDS instance (SQL Server and Oracle need a larger one than
    /// the default).
    #[serde(default = "default_rds_class")]
    pub rds_instance_class: String,
    /// Node type of a cache seeded from the vault's objects (ElastiCache): one node per shard,
    /// without replicas. It must hold a shard's data.
    #[serde(default = "default_cache_node_type")]
    pub elasticache_node_type: String,
    /// Where restored databases go, per region: subnet groups and security groups. Without an
    /// entry, the account's default VPC and security group (as the restore APIs do).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, DrillNetwork>,
    /// ARN of a Lambda function to call with each restored database's endpoint; its verdict
    /// (`{"ok": true|false, "message": "..."}`) decides whether the drill succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_function: Option<String>,
}

/// Which databases a drill restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DrillDatabases {
    /// This many per region, drilled longest ago first (never drilled before all others).
    Count(u32),
    /// These database ids (the source resource ids).
    Named(Vec<String>),
}

/// The network of restored databases in one region.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillNetwork {
    /// RDS DB subnet group name (Aurora and RDS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_subnet_group: Option<String>,
    /// Redshift cluster subnet group name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redshift_subnet_group: Option<String>,
    /// ElastiCache cache subnet group name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_subnet_group: Option<String>,
    /// VPC security group ids (`sg-...`) for every restored database.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
}

fn default_timeout() -> HumanDuration {
    HumanDuration::from_hours(4)
}
fn default_aurora_class() -> String {
    "db.t4g.medium".to_string()
}
fn default_rds_class() -> String {
    "db.t4g.micro".to_string()
}
fn default_cache_node_type() -> String {
    "cache.t4g.medium".to_string()
}

/// Most databases one drill restores per region (the step carries each in its state).
pub const MAX_DRILL_DATABASES: usize = 10;
/// Most drill regions (times `MAX_DRILL_DATABASES`: the state stays small).
pub const MAX_DRILL_REGIONS: usize = 4;
/// The drill's name among the deployed runs (schedule names start with a letter).
pub const DRILL_RUN_NAME: &str = "_drills";
/// A drill restores into resources named `sc-<namespace>-dr-<YYYYMMDDHHMM>-<database>`.
const DRILL_PART: &str = "dr";
/// Longest restored cluster id: Aurora adds `-1` for its instance, and ids are at most 63.
const MAX_DRILL_ID: usize = 61;
/// Longest restored replication group id (ElastiCache's limit).
const MAX_CACHE_DRILL_ID: usize = 40;
/// Ids of restored resources, by tag value.
pub const DRILL_TAG: &str = "snapcourier:drill-started";
pub const DRILL_SNAPSHOT_TAG: &str = "snapcourier:drill-snapshot";

static INSTANCE_CLASS: Rule = LazyLock::new(|| Regex::new(r"^db\.[a-z0-9]+\.[a-z0-9]+$").ok());
static NODE_TYPE: Rule = LazyLock::new(|| Regex::new(r"^cache\.[a-z0-9]+\.[a-z0-9]+$").ok());
static SUBNET_GROUP: Rule = LazyLock::new(|| Regex::new(r"^[A-Za-z0-9 ._-]{1,255}$").ok());
static SECURITY_GROUP: Rule = LazyLock::new(|| Regex::new(r"^sg-[0-9a-f]{8,17}$").ok());
static LAMBDA_ARN: Rule = LazyLock::new(|| {
    Regex::new(r"^arn:(aws|aws-cn|aws-us-gov):lambda:([a-z0-9-]+):([0-9]{12}):function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]{1,128})?$").ok()
});
static DATABASE_ID: Rule = LazyLock::new(|| Regex::new(r"^[A-Za-z][A-Za-z0-9-]{0,62}$").ok());

/// The config's rules for `drills` (`path`), against the rest of the config.
pub(crate) fn check_drills(d: &Drills, kept: &BTreeSet<&str>, path: &str, p: &mut Problems) {
    let every = d.every.as_signed();
    if every < SignedDuration::from_hours(1) {
        p.add(
            format!("{path}.every"),
            "must be at least 1h (a drill restores whole databases: weekly or monthly is usual)",
        );
    }
    let timeout = d.timeout.as_signed();
    if timeout < SignedDuration::from_mins(5) || timeout > SignedDuration::from_hours(12) {
        p.add(
            format!("{path}.timeout"),
            "must be between 5m and 12h (large Aurora and Redshift restores take hours)",
        );
    }
    match &d.databases {
        DrillDatabases::Count(n) => {
            if *n == 0 || *n as usize > MAX_DRILL_DATABASES {
                p.add(
                    format!("{path}.databases"),
                    format!("must be 1 to {MAX_DRILL_DATABASES} databases per region, or a list of database ids"),
                );
            }
        }
        DrillDatabases::Named(names) => {
            if names.is_empty() || names.len() > MAX_DRILL_DATABASES {
                p.add(
                    format!("{path}.databases"),
                    format!("must name 1 to {MAX_DRILL_DATABASES} databases, or be a number"),
                );
            }
            let mut seen = BTreeSet::new();
            for (i, name) in names.iter().enumerate() {
                if !is_match(&DATABASE_ID, name) {
                    p.add(
                        format!("{path}.databases[{i}]"),
                        format!("`{name}` is not a database id (the source cluster or instance id: a letter, then letters, digits and hyphens)"),
                    );
                } else if !seen.insert(name) {
                    p.add(
                        format!("{path}.databases[{i}]"),
                        format!("`{name}` is listed twice"),
                    );
                }
            }
        }
    }
    if d.regions.len() > MAX_DRILL_REGIONS {
        p.add(
            format!("{path}.regions"),
            format!("at most {MAX_DRILL_REGIONS} regions"),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, r) in d.regions.iter().enumerate() {
        let f = format!("{path}.regions[{i}]");
        config::check_region(r, &f, p);
        if !kept.contains(r.as_str()) {
            p.add(
                f,
                format!("no destination keeps copies in `{r}`; drill in one of {kept:?}"),
            );
        } else if !seen.insert(r) {
            p.add(f, format!("`{r}` is listed twice"));
        }
    }
    if d.regions.is_empty() && kept.len() > MAX_DRILL_REGIONS {
        p.add(
            format!("{path}.regions"),
            format!("the destinations keep copies in {} regions; list at most {MAX_DRILL_REGIONS} to drill in", kept.len()),
        );
    }
    for (field, class) in [
        ("aurora_instance_class", &d.aurora_instance_class),
        ("rds_instance_class", &d.rds_instance_class),
    ] {
        if !is_match(&INSTANCE_CLASS, class) {
            p.add(
                format!("{path}.{field}"),
                format!("`{class}` is not a DB instance class such as db.t4g.medium"),
            );
        }
    }
    if !is_match(&NODE_TYPE, &d.elasticache_node_type) {
        p.add(
            format!("{path}.elasticache_node_type"),
            format!(
                "`{}` is not a cache node type such as cache.t4g.medium",
                d.elasticache_node_type
            ),
        );
    }
    let drilled: BTreeSet<&str> = if d.regions.is_empty() {
        kept.clone()
    } else {
        d.regions.iter().map(String::as_str).collect()
    };
    for (region, net) in &d.networks {
        let f = format!("{path}.networks.{region}");
        if !drilled.contains(region.as_str()) {
            p.add(
                f.clone(),
                format!("drills do not run in `{region}`; networks are for {drilled:?}"),
            );
        }
        for (name, group) in [
            ("db_subnet_group", &net.db_subnet_group),
            ("redshift_subnet_group", &net.redshift_subnet_group),
            ("cache_subnet_group", &net.cache_subnet_group),
        ] {
            if let Some(g) = group
                && !is_match(&SUBNET_GROUP, g)
            {
                p.add(
                    format!("{f}.{name}"),
                    format!("`{g}` is not a subnet group name"),
                );
            }
        }
        for (i, sg) in net.security_groups.iter().enumerate() {
            if !is_match(&SECURITY_GROUP, sg) {
                p.add(
                    format!("{f}.security_groups[{i}]"),
                    format!("`{sg}` is not a security group id such as sg-0123456789abcdef0"),
                );
            }
        }
    }
    if let Some(arn) = &d.validation_function
        && !is_match(&LAMBDA_ARN, arn)
    {
        p.add(
            format!("{path}.validation_function"),
            format!("`{arn}` is not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)"),
        );
    }
}

/// One schedule as a drill sees it: which copies are its, and how to restore them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillSchedule {
    pub name: String,
    pub engine: Engine,
}

/// The drill as one destination account runs it (the drill state machine's input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillRun {
    pub version: u32,
    pub namespace: String,
    pub source: SourceAccount,
    pub destination_account: String,
    /// Where this destination drills: the config's drill regions it keeps copies in.
    pub regions: Vec<String>,
    pub schedules: Vec<DrillSchedule>,
    pub drills: Drills,
    /// The config's settings (`poll_interval_seconds`: the first wait between looks).
    #[serde(default)]
    pub settings: Settings,
}

impl DrillRun {
    /// The drill of destination `account`; `None` when the config has no drills or the
    /// destination keeps no copies in a drill region.
    pub fn from_config(config: &Config, account: &str) -> Result<Option<Self>, Error> {
        let Some(drills) = &config.drills else {
            return Ok(None);
        };
        let destination = config.destination(account)?;
        let regions: Vec<String> = destination
            .regions
            .iter()
            .map(|r| r.region.clone())
            .filter(|r| drills.regions.is_empty() || drills.regions.contains(r))
            .collect();
        if regions.is_empty() {
            return Ok(None);
        }
        Ok(Some(DrillRun::of(config, account, regions, drills.clone())))
    }

    /// The run of `account` over `regions` with `drills`, the rest from the config.
    fn of(config: &Config, account: &str, regions: Vec<String>, drills: Drills) -> Self {
        DrillRun {
            version: EVENT_VERSION,
            namespace: config.namespace.clone(),
            source: config.source.clone(),
            destination_account: account.to_string(),
            regions,
            schedules: config
                .schedules
                .iter()
                .map(|s| DrillSchedule {
                    name: s.name.clone(),
                    engine: s.engine,
                })
                .collect(),
            drills,
            settings: config.settings.clone(),
        }
    }

    fn check(&self, path: &str, p: &mut Problems) {
        if self.version != EVENT_VERSION {
            p.add(
                format!("{path}.version"),
                format!("event version {} is not understood by this build (it reads version {EVENT_VERSION}); deploy matching versions", self.version),
            );
        }
        config::check_namespace(&self.namespace, &format!("{path}.namespace"), p);
        config::check_source(&self.source, &format!("{path}.source"), p);
        config::check_account(
            &self.destination_account,
            &format!("{path}.destination_account"),
            p,
        );
        if self.regions.is_empty() {
            p.add(format!("{path}.regions"), "must list at least one region");
        }
        for (i, r) in self.regions.iter().enumerate() {
            config::check_region(r, &format!("{path}.regions[{i}]"), p);
        }
        if self.schedules.is_empty() {
            p.add(
                format!("{path}.schedules"),
                "must list at least one schedule",
            );
        }
        // The drill section's own rules, against the regions of this destination.
        let kept: BTreeSet<&str> = self
            .regions
            .iter()
            .chain(&self.drills.regions)
            .map(String::as_str)
            .collect();
        check_drills(&self.drills, &kept, &format!("{path}.drills"), p);
        config::check_settings(&self.settings, &format!("{path}.settings"), p);
    }

    /// The drill an operator runs by hand (`snapcourier drill`): the config's drill section,
    /// or without one the defaults (one database per region, every region the destination
    /// keeps copies in); `region` narrows it to one of them.
    pub fn by_hand(config: &Config, account: &str, region: Option<&str>) -> Result<Self, Error> {
        let destination = config.destination(account)?;
        let drills = config.drills.clone().unwrap_or(Drills {
            every: HumanDuration::from_hours(24 * 7),
            databases: DrillDatabases::Count(1),
            regions: Vec::new(),
            timeout: default_timeout(),
            aurora_instance_class: default_aurora_class(),
            rds_instance_class: default_rds_class(),
            elasticache_node_type: default_cache_node_type(),
            networks: BTreeMap::new(),
            validation_function: None,
        });
        let kept: Vec<String> = destination
            .regions
            .iter()
            .map(|r| r.region.clone())
            .collect();
        let regions = match region {
            Some(r) if kept.iter().any(|k| k == r) => vec![r.to_string()],
            Some(r) => {
                return Err(Error::config(
                    "--region",
                    format!(
                        "destination {account} keeps no copies in `{r}`; drill in one of {kept:?}"
                    ),
                ));
            }
            None if drills.regions.is_empty() => kept,
            None => kept
                .into_iter()
                .filter(|r| drills.regions.contains(r))
                .collect(),
        };
        if regions.is_empty() {
            return Err(Error::config(
                "drills.regions",
                format!(
                    "destination {account} keeps copies in none of the drill regions; pass --region"
                ),
            ));
        }
        Ok(DrillRun::of(config, account, regions, drills))
    }

    pub fn schedule(&self, name: &str) -> Option<&DrillSchedule> {
        self.schedules.iter().find(|s| s.name == name)
    }

    pub fn network(&self, region: &str) -> DrillNetwork {
        self.drills
            .networks
            .get(region)
            .cloned()
            .unwrap_or_default()
    }

    pub fn timeout(&self) -> SignedDuration {
        self.drills.timeout.as_signed()
    }
}

/// Where a drill stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrillPhase {
    /// The restore was started; waiting for the database to become available.
    Restoring,
    /// Measured (or failed): deleting what was restored.
    Cleaning,
    /// Deleted (or its delete is under way) and recorded.
    Done,
}

/// One database's drill, carried between the looks of a run (at most
/// `MAX_DRILL_DATABASES` per region).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drill {
    pub region: String,
    pub schedule: String,
    pub engine: Engine,
    pub database: String,
    /// The copy restored: its id (Redshift: the shared snapshot's) and ARN.
    pub snapshot: String,
    pub snapshot_arn: String,
    /// When the copy's data was captured (its recovery point).
    pub captured: Timestamp,
    /// The restored cluster or instance.
    pub resource: String,
    /// When the restore call was made.
    pub started_at: Timestamp,
    pub phase: DrillPhase,
    /// When the restored database was first seen available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_at: Option<Timestamp>,
    /// Restore call to available: the measured RTO (to within one look).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_seconds: Option<i64>,
    /// The copy's age when the database became available: the RPO at drill time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_point_age_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The validation function's verdict message, when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<String>,
    /// Why the drill failed, and at which stage (`restore`, `validate`, `delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<ItemFailure>,
}

impl Drill {
    /// The drill of candidate copy `c`, restored into `resource` by a call made at `now`.
    pub fn start(c: Candidate, resource: String, now: Timestamp) -> Self {
        Drill {
            resource,
            region: c.region,
            schedule: c.schedule,
            engine: c.engine,
            database: c.database,
            snapshot: c.snapshot,
            snapshot_arn: c.snapshot_arn,
            captured: c.captured,
            started_at: now,
            phase: DrillPhase::Restoring,
            available_at: None,
            restore_seconds: None,
            recovery_point_age_seconds: None,
            endpoint: None,
            validation: None,
            failure: None,
        }
    }

    pub fn succeeded(&self) -> bool {
        self.failure.is_none() && self.restore_seconds.is_some()
    }

    /// Record a failure at `stage` (the first one wins: it is the cause) and go on to clean.
    pub fn fail(&mut self, stage: FailureStage, error: &Error) {
        if self.failure.is_none() {
            self.failure = Some(ItemFailure::new(
                format!("{} ({})", self.database, self.region),
                stage,
                error,
            ));
        }
        if self.phase == DrillPhase::Restoring {
            self.phase = DrillPhase::Cleaning;
        }
    }

    /// Seen available at `now`: the measured RTO and the RPO at drill time.
    pub fn mark_available(&mut self, now: Timestamp, endpoint: Option<String>) {
        self.available_at = Some(now);
        self.restore_seconds = Some(now.duration_since(self.started_at).as_secs().max(0));
        self.recovery_point_age_seconds = Some(now.duration_since(self.captured).as_secs().max(0));
        self.endpoint = endpoint;
    }
}

/// The drill step's input: the run, and what the previous look handed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillInput {
    pub run: DrillRun,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionContext>,
    /// Looks made so far; the first chooses the databases and starts their restores.
    #[serde(default)]
    pub looks: u32,
    /// By hand (`snapcourier drill --database`): these databases, due or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<String>,
    /// By hand (`snapcourier drill`): drill now, due or not.
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub drills: Vec<Drill>,
    /// Failures not of one drill (a named database without a copy, a leftover that could not
    /// be deleted), carried from look to look so that the last one reports them.
    #[serde(default)]
    pub other_failures: Vec<ItemFailure>,
    /// The run is being given up (the state machine caught an error): delete every restored
    /// resource of `drills`, record them failed, and finish.
    #[serde(default)]
    pub abandon: bool,
}

impl StepInput for DrillInput {
    fn validate(&self) -> Result<(), Error> {
        let mut p = Problems::default();
        self.run.check("run", &mut p);
        if self.looks > crate::looks::MAX_LOOKS {
            p.add("looks", format!("{} is more than a run makes", self.looks));
        }
        if self.drills.len() > MAX_DRILL_DATABASES * MAX_DRILL_REGIONS {
            p.add("drills", "more drills than a run makes");
        }
        if self.other_failures.len() > 2 * MAX_DRILL_DATABASES * MAX_DRILL_REGIONS {
            p.add("other_failures", "more failures than a run reports");
        }
        for (i, d) in self.drills.iter().enumerate() {
            if !self.run.regions.contains(&d.region) {
                p.add(
                    format!("drills[{i}].region"),
                    format!("`{}` is not a drill region of this run", d.region),
                );
            }
            if !is_drill_resource(&self.run.namespace, &d.resource) {
                p.add(
                    format!("drills[{i}].resource"),
                    format!("`{}` is not a drill's restored resource: drills delete only what they restore", d.resource),
                );
            }
        }
        for (i, name) in self.databases.iter().enumerate() {
            if !is_match(&DATABASE_ID, name) {
                p.add(
                    format!("databases[{i}]"),
                    format!("`{name}` is not a database id"),
                );
            }
        }
        p.into_result()
    }
}

/// What one look of a drill hands on and reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillOutput {
    pub version: u32,
    pub looks: u32,
    /// Every drill is done: restored, measured (or failed) and deleted.
    pub finished: bool,
    /// Seconds until the next look.
    pub wait_seconds: u64,
    pub drills: Vec<Drill>,
    pub succeeded: usize,
    pub failed: usize,
    /// Regions where no drill was due this time.
    #[serde(default)]
    pub not_due: Vec<String>,
    /// Restored resources of earlier drills deleted by this look.
    #[serde(default)]
    pub leftovers_deleted: Vec<String>,
    /// Failures to report: each drill's, then `other_failures`.
    #[serde(default)]
    pub failures: Vec<ItemFailure>,
    /// Failures not of one drill, handed to the next look.
    #[serde(default)]
    pub other_failures: Vec<ItemFailure>,
}

impl DrillOutput {
    pub fn new(
        looks: u32,
        drills: Vec<Drill>,
        now: Timestamp,
        started: Timestamp,
        settings: &Settings,
    ) -> Self {
        let finished = drills.iter().all(|d| d.phase == DrillPhase::Done);
        let failures: Vec<ItemFailure> = drills.iter().filter_map(|d| d.failure.clone()).collect();
        DrillOutput {
            version: EVENT_VERSION,
            looks,
            finished,
            wait_seconds: wait_seconds(now.duration_since(started), settings),
            succeeded: drills.iter().filter(|d| d.succeeded()).count(),
            failed: failures.len(),
            drills,
            not_due: Vec::new(),
            leftovers_deleted: Vec::new(),
            failures,
            other_failures: Vec::new(),
        }
    }

    /// Add failures that are not one drill's (each once: a leftover that cannot be deleted is
    /// tried, and fails, at every look).
    pub fn add_other_failures(&mut self, failures: impl IntoIterator<Item = ItemFailure>) {
        for f in failures {
            if !self
                .other_failures
                .iter()
                .any(|o| o.resource == f.resource && o.stage == f.stage)
            {
                self.other_failures.push(f);
            }
        }
        self.failures = self
            .drills
            .iter()
            .filter_map(|d| d.failure.clone())
            .chain(self.other_failures.iter().cloned())
            .collect();
        self.failed = self.failures.len();
    }
}

/// Seconds between looks: `settings.poll_interval_seconds` at first, then a tenth of the time
/// since the first restore, at most 10 minutes (a 4-hour restore takes about 60 looks).
pub fn wait_seconds(elapsed: SignedDuration, settings: &Settings) -> u64 {
    let tenth = (elapsed.as_secs() / 10).clamp(0, 600).unsigned_abs();
    tenth.max(settings.poll_interval_seconds.clamp(1, 600))
}

/// `sc-<namespace>-dr-`: every restored resource of a deployment's drills starts with it
/// (the IAM policies let the drill role delete only these).
pub fn drill_prefix(namespace: &str) -> String {
    format!("{ID_PREFIX}-{namespace}-{DRILL_PART}-")
}

pub fn is_drill_resource(namespace: &str, id: &str) -> bool {
    id.starts_with(&drill_prefix(namespace))
}

/// The restored resource of `database`'s drill that began at `started` (to the minute): the
/// same run asking twice gets the same id, and finds "already exists". Within the engine's
/// id limit: 61 (Aurora adds `-1` for its instance within RDS's 63), and ElastiCache's 40
/// (with a two-digit year and a shorter hash, so that a 16-letter namespace still fits).
pub fn drill_resource_id(
    namespace: &str,
    database: &str,
    started: Timestamp,
    engine: Engine,
) -> String {
    let (max, time, hash_digits) = match engine {
        Engine::ElastiCache => (MAX_CACHE_DRILL_ID, "%y%m%d%H%M", 6),
        _ => (MAX_DRILL_ID, "%Y%m%d%H%M", 8),
    };
    let head = format!("{}{}-", drill_prefix(namespace), started.strftime(time));
    let room = max.saturating_sub(head.len());
    let clean = crate::naming::sanitise_part(database);
    if clean == database && clean.len() <= room {
        format!("{head}{clean}")
    } else {
        // Not canonical or too long: a prefix of it and a hash of the exact id.
        let hash = format!(
            "{:0hash_digits$x}",
            crate::naming::stable_hash(database.as_bytes()) & ((1u64 << (4 * hash_digits)) - 1)
        );
        let keep = room.saturating_sub(hash.len() + 1);
        let part: String = clean.chars().take(keep).collect();
        let part = part.trim_end_matches('-');
        if part.is_empty() {
            format!("{head}{hash}")
        } else {
            format!("{head}{part}-{hash}")
        }
    }
}

/// The Aurora instance a drill adds to its restored cluster.
pub fn drill_instance_id(cluster: &str) -> String {
    format!("{cluster}-1")
}

/// A copy a drill may restore: the newest available one of a database in a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub region: String,
    pub schedule: String,
    pub engine: Engine,
    pub database: String,
    pub snapshot: String,
    pub snapshot_arn: String,
    pub captured: Timestamp,
}

/// The durable record of a database's last drill in a region (an SSM parameter per database:
/// `record_name`). It outlives the restored resources, so that the next drill knows whose
/// turn it is and the coverage report shows the last RTO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillRecord {
    pub version: u32,
    pub region: String,
    pub schedule: String,
    pub database: String,
    /// When the last drill's restore began.
    pub at: Timestamp,
    pub succeeded: bool,
    pub snapshot: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_point_age_seconds: Option<i64>,
    /// The failure's stage and message, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The last drill that succeeded (this one, or an earlier one) and its RTO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_restore_seconds: Option<i64>,
}

/// Longest message a record keeps (SSM standard parameters hold 4 KB).
const RECORD_MESSAGE: usize = 1_000;

impl DrillRecord {
    /// The record after `drill`, given the one before it.
    pub fn after(drill: &Drill, before: Option<&DrillRecord>) -> DrillRecord {
        let succeeded = drill.succeeded();
        let (last_success, last_success_restore_seconds) = if succeeded {
            (Some(drill.started_at), drill.restore_seconds)
        } else {
            before
                .map(|b| (b.last_success, b.last_success_restore_seconds))
                .unwrap_or((None, None))
        };
        DrillRecord {
            version: EVENT_VERSION,
            region: drill.region.clone(),
            schedule: drill.schedule.clone(),
            database: drill.database.clone(),
            at: drill.started_at,
            succeeded,
            snapshot: drill.snapshot.clone(),
            restore_seconds: drill.restore_seconds,
            recovery_point_age_seconds: drill.recovery_point_age_seconds,
            error: drill.failure.as_ref().map(|f| {
                let text = format!("{}: {}", f.stage, f.error.message);
                text.chars().take(RECORD_MESSAGE).collect()
            }),
            last_success,
            last_success_restore_seconds,
        }
    }

    /// One line for the coverage report.
    pub fn summary(&self) -> String {
        let at = self.at.strftime("%Y-%m-%d");
        if self.succeeded {
            format!(
                "ok {at}, RTO {}",
                crate::duration::short(self.restore_seconds.unwrap_or(0))
            )
        } else {
            match self.last_success {
                Some(ok) => format!("FAILED {at} (last ok {})", ok.strftime("%Y-%m-%d")),
                None => format!("FAILED {at}"),
            }
        }
    }
}

/// SSM path of a destination's drill records: `<prefix><region>/<schedule>/<database>`.
pub fn record_prefix(namespace: &str) -> String {
    format!("/snapcourier/{namespace}/destination/drills/")
}

pub fn record_name(namespace: &str, region: &str, schedule: &str, database: &str) -> String {
    format!("{}{region}/{schedule}/{database}", record_prefix(namespace))
}

/// Whether a drill is due in a region whose newest drill began at `newest`: at least
/// `every` ago, less a little slack (a day's check runs a few seconds later each time).
pub fn is_due(newest: Option<Timestamp>, every: SignedDuration, now: Timestamp) -> bool {
    let Some(newest) = newest else { return true };
    let slack = (every / 24).min(SignedDuration::from_hours(1));
    now.duration_since(newest) >= every - slack
}

/// Which databases to drill in `region`: the named ones (a named database with no copy there
/// is a failure to report), or the `n` drilled longest ago (never drilled first; ties by
/// schedule and name). Returns the chosen copies and the names that have no copy.
pub fn choose(
    candidates: &[Candidate],
    records: &BTreeMap<(String, String), DrillRecord>,
    databases: &DrillDatabases,
    region: &str,
) -> (Vec<Candidate>, Vec<String>) {
    let here: Vec<&Candidate> = candidates.iter().filter(|c| c.region == region).collect();
    match databases {
        DrillDatabases::Named(names) => {
            let mut chosen = Vec::new();
            let mut missing = Vec::new();
            for name in names {
                // A database covered by two schedules: its newest copy of either.
                match here
                    .iter()
                    .filter(|c| &c.database == name)
                    .max_by_key(|c| c.captured)
                {
                    Some(c) => chosen.push((*c).clone()),
                    None => missing.push(name.clone()),
                }
            }
            (chosen, missing)
        }
        DrillDatabases::Count(n) => {
            let mut newest: BTreeMap<&str, &Candidate> = BTreeMap::new();
            for c in &here {
                let slot = newest.entry(c.database.as_str()).or_insert(c);
                if c.captured > slot.captured {
                    *slot = c;
                }
            }
            let mut order: Vec<&Candidate> = newest.into_values().collect();
            order.sort_by_key(|c| {
                let last = records
                    .get(&(region.to_string(), c.database.clone()))
                    .map(|r| r.at);
                (last, c.schedule.clone(), c.database.clone())
            });
            (
                order.into_iter().take(*n as usize).cloned().collect(),
                Vec::new(),
            )
        }
    }
}

/// The records of one region, by database (a database covered by two schedules: its newest).
pub fn records_by_database(records: &[DrillRecord]) -> BTreeMap<(String, String), DrillRecord> {
    let mut out: BTreeMap<(String, String), DrillRecord> = BTreeMap::new();
    for r in records {
        let key = (r.region.clone(), r.database.clone());
        match out.get(&key) {
            Some(old) if old.at >= r.at => {}
            _ => {
                out.insert(key, r.clone());
            }
        }
    }
    out
}

/// Seconds since the newest successful drill among `records` (none: never).
pub fn drill_age(records: &[DrillRecord], now: Timestamp) -> Option<i64> {
    records
        .iter()
        .filter_map(|r| r.last_success)
        .max()
        .map(|t| now.duration_since(t).as_secs().max(0))
}

/// Metric names of the drill (EMF, namespace `snapcourier`).
pub const RESTORE_SECONDS: &str = "RestoreSeconds";
pub const DRILL_SUCCEEDED: &str = "DrillSucceeded";
pub const DRILL_AGE: &str = "DrillAge";

/// A finished drill's metrics as one EMF record: `RestoreSeconds` (when it became available)
/// and `DrillSucceeded` (1 or 0), per deployment (the alarms) and per region and database.
pub fn drill_emf(namespace: &str, drill: &Drill, now: Timestamp) -> Value {
    let mut metrics = vec![json!({"Name": DRILL_SUCCEEDED, "Unit": "Count"})];
    if drill.restore_seconds.is_some() {
        metrics.push(json!({"Name": RESTORE_SECONDS, "Unit": "Seconds"}));
    }
    let mut record = json!({
        "_aws": {
            "Timestamp": now.as_millisecond(),
            "CloudWatchMetrics": [{
                "Namespace": crate::heartbeat::METRIC_NAMESPACE,
                "Dimensions": [["Deployment", "Side"], ["Deployment", "Side", "Region", "Database"]],
                "Metrics": metrics,
            }],
        },
        "Deployment": namespace,
        "Side": "destination",
        "Region": drill.region,
        "Database": drill.database,
        DRILL_SUCCEEDED: if drill.succeeded() { 1.0 } else { 0.0 },
    });
    if let (Some(seconds), Some(fields)) = (drill.restore_seconds, record.as_object_mut()) {
        fields.insert(RESTORE_SECONDS.to_string(), json!(seconds as f64));
    }
    record
}

/// `DrillAge`: seconds since the newest successful drill of the destination (its alarm fires
/// past two drill intervals).
pub fn drill_age_emf(namespace: &str, age_seconds: i64, now: Timestamp) -> Value {
    json!({
        "_aws": {
            "Timestamp": now.as_millisecond(),
            "CloudWatchMetrics": [{
                "Namespace": crate::heartbeat::METRIC_NAMESPACE,
                "Dimensions": [["Deployment", "Side"]],
                "Metrics": [{"Name": DRILL_AGE, "Unit": "Seconds"}],
            }],
        },
        "Deployment": namespace,
        "Side": "destination",
        DRILL_AGE: age_seconds as f64,
    })
}

/// The EventBridge expression of the drill schedule: daily, or every `every` when shorter.
pub fn check_expression(every: HumanDuration) -> String {
    let hours = (every.as_secs() / 3600).clamp(1, 24);
    match hours {
        1 => "rate(1 hour)".to_string(),
        24 => "rate(1 day)".to_string(),
        h => format!("rate({h} hours)"),
    }
}

/// The longest a drill execution runs: its restores' timeout, plus time to clean up.
pub fn execution_timeout_seconds(drills: &Drills) -> u64 {
    drills.timeout.as_secs().unsigned_abs() + 3600
}

#[cfg(test)]
mod tests;
