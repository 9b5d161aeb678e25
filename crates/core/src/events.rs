//! Inputs and outputs of the steps: the Lambda events and what the CLI passes between steps.
//! Versioned, strict (`deny_unknown_fields`), and validated with the same rules as the config,
//! so a malformed event is a `ConfigInvalid` naming the field and never a partial action.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::{
    self, Config, Destination, Problems, Schedule, Settings, SourceAccount, check_destination,
    check_namespace, check_schedule, check_settings, check_source,
};
use crate::error::{Error, ItemError};
use crate::heartbeat::Heartbeat;

pub const EVENT_VERSION: u32 = 1;

/// One schedule as the source side runs it (the source state machine's input).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRun {
    pub version: u32,
    pub namespace: String,
    pub source: SourceAccount,
    /// Accounts every snapshot is shared with.
    pub destination_accounts: Vec<String>,
    /// Every region the destinations keep copies in (Redshift copies to the one that is not
    /// the source region, in the source account).
    #[serde(default)]
    pub destination_regions: Vec<String>,
    pub schedule: Schedule,
    #[serde(default)]
    pub settings: Settings,
}

/// One schedule as one destination account runs it (the destination state machine's input).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationRun {
    pub version: u32,
    pub namespace: String,
    pub source: SourceAccount,
    pub destination: Destination,
    pub schedule: Schedule,
    #[serde(default)]
    pub settings: Settings,
}

fn check_version(version: u32, field: &str, p: &mut Problems) {
    if version != EVENT_VERSION {
        p.add(
            field,
            format!("event version {version} is not understood by this build (it reads version {EVENT_VERSION}); deploy matching versions"),
        );
    }
}

impl SourceRun {
    pub fn from_config(config: &Config, schedule: &str) -> Result<Self, Error> {
        Ok(SourceRun {
            version: EVENT_VERSION,
            namespace: config.namespace.clone(),
            source: config.source.clone(),
            destination_accounts: config
                .destinations
                .iter()
                .map(|d| d.account.clone())
                .collect(),
            destination_regions: config.destination_regions(),
            schedule: config.schedule(schedule)?.clone(),
            settings: config.settings.clone(),
        })
    }

    pub fn validate(&self, path: &str) -> Result<(), Error> {
        let mut p = Problems::default();
        self.check(path, &mut p);
        p.into_result()
    }

    fn check(&self, path: &str, p: &mut Problems) {
        check_version(self.version, &field(path, "version"), p);
        check_namespace(&self.namespace, &field(path, "namespace"), p);
        check_source(&self.source, &field(path, "source"), p);
        if self.destination_accounts.is_empty() {
            p.add(
                field(path, "destination_accounts"),
                "must list at least one account",
            );
        }
        for (i, a) in self.destination_accounts.iter().enumerate() {
            let f = field(path, &format!("destination_accounts[{i}]"));
            config::check_account(a, &f, p);
            if *a == self.source.account {
                p.add(f, "must differ from source.account");
            }
        }
        if self.schedule.engine == crate::Engine::Redshift && self.destination_regions.is_empty() {
            p.add(
                field(path, "destination_regions"),
                "required for a Redshift schedule: the destinations' regions decide where Redshift copies snapshots (`snapcourier run` and the stacks fill it from the config)",
            );
        }
        for (i, r) in self.destination_regions.iter().enumerate() {
            config::check_region(r, &field(path, &format!("destination_regions[{i}]")), p);
        }
        check_schedule(&self.schedule, &field(path, "schedule"), p);
        config::check_redshift_copy(
            &self.source,
            [(field(path, "schedule.engine"), &self.schedule)],
            &self.destination_regions,
            &field(path, "source"),
            p,
        );
        check_settings(&self.settings, &field(path, "settings"), p);
    }

    /// Redshift: the region the cluster's snapshot copy configuration copies to, if any.
    pub fn redshift_copy_region(&self) -> Option<&str> {
        self.destination_regions
            .iter()
            .map(String::as_str)
            .find(|r| *r != self.source.region)
    }
}

impl DestinationRun {
    pub fn from_config(config: &Config, schedule: &str, account: &str) -> Result<Self, Error> {
        Ok(DestinationRun {
            version: EVENT_VERSION,
            namespace: config.namespace.clone(),
            source: config.source.clone(),
            destination: config
                .destination(account)?
                .with_keys(&config.namespace, &config.source.region),
            schedule: config.schedule(schedule)?.clone(),
            settings: config.settings.clone(),
        })
    }

    pub fn validate(&self, path: &str) -> Result<(), Error> {
        let mut p = Problems::default();
        self.check(path, &mut p);
        p.into_result()
    }

    fn check(&self, path: &str, p: &mut Problems) {
        check_version(self.version, &field(path, "version"), p);
        check_namespace(&self.namespace, &field(path, "namespace"), p);
        check_source(&self.source, &field(path, "source"), p);
        check_destination(
            &self.destination,
            &self.source,
            &field(path, "destination"),
            p,
        );
        check_schedule(&self.schedule, &field(path, "schedule"), p);
        check_settings(&self.settings, &field(path, "settings"), p);
        // A run carries every key resolved (DestinationRun::from_config), so a step never
        // has to guess one.
        for (i, r) in self.destination.regions.iter().enumerate() {
            if r.kms_key.is_none() {
                p.add(
                    field(path, &format!("destination.regions[{i}].kms_key")),
                    "missing: build the input with `snapcourier inputs` or `snapcourier run`, which fill in the stack-created key",
                );
            }
        }
        if self.copy_in_kms_key().is_none() {
            p.add(
                field(path, "destination.copy_in_kms_key"),
                "missing: build the input with `snapcourier inputs` or `snapcourier run`, which fill in the stack-created key",
            );
        }
    }

    /// The KMS key for the copy made in the source region.
    pub fn copy_in_kms_key(&self) -> Option<&str> {
        self.destination.copy_in_kms_key.as_deref().or_else(|| {
            self.destination
                .regions
                .iter()
                .find(|r| r.region == self.source.region)
                .and_then(|r| r.kms_key.as_deref())
        })
    }

    /// Whether the copy in the source region is only a step on the way to other regions.
    pub fn source_region_is_intermediate(&self) -> bool {
        !self
            .destination
            .regions
            .iter()
            .any(|r| r.region == self.source.region)
    }
}

fn field(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The Step Functions execution a step runs in (from the context object), so that a run
/// can tell whether an older execution of the same schedule is still going.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionContext {
    /// Execution ARN (`$$.Execution.Id`).
    pub id: String,
    /// State machine ARN (`$$.StateMachine.Id`).
    pub state_machine: String,
    /// `$$.Execution.StartTime`.
    pub start_time: Timestamp,
}

/// Input of the take step: the run, and the execution when run by a state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TakeInput {
    pub run: SourceRun,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionContext>,
}

/// Input of the copy-in step: the run, and the execution when run by a state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyInInput {
    pub run: DestinationRun,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionContext>,
}

/// A resource the take step did not snapshot, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkippedResource {
    pub resource_id: String,
    pub reason: String,
}

/// A source snapshot to follow until it is shared with every destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceItem {
    pub resource_id: String,
    pub snapshot_id: String,
    #[serde(default)]
    pub snapshot_arn: Option<String>,
    pub status: String,
    /// Shared with every destination account (per the progress marker).
    pub shared: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TakeOutput {
    pub version: u32,
    /// Set when an older execution of the same schedule is still running: this one did
    /// nothing and ends as skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlapping_execution: Option<String>,
    pub items: Vec<SourceItem>,
    pub skipped: Vec<SkippedResource>,
    pub created: Vec<String>,
    pub api_calls: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareInput {
    pub run: SourceRun,
    pub item: SourceItem,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareOutput {
    pub version: u32,
    pub item: SourceItem,
    /// True once shared with every destination; false while the snapshot is still being made.
    pub ready: bool,
    pub api_calls: u64,
}

/// A snapshot the destination follows from copy-in to its regional copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationItem {
    pub resource_id: String,
    pub snapshot_id: String,
    /// ARN of the snapshot shared by the source account.
    pub source_arn: String,
    #[serde(default)]
    pub source_created: Option<Timestamp>,
    pub encrypted: bool,
    /// Status of the copy in the source region.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyInOutput {
    pub version: u32,
    /// Set when an older execution of the same schedule is still running (see TakeOutput).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlapping_execution: Option<String>,
    pub items: Vec<DestinationItem>,
    /// Shared snapshots waiting for a free copy slot (the per-region copy limit).
    pub deferred: Vec<String>,
    /// Shared snapshots not copied because destination retention would expire them at once.
    pub too_old: Vec<String>,
    pub started: Vec<String>,
    /// Redshift: shares seen visible and available in every destination region.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified: Vec<String>,
    /// Copies of this schedule being made in this account after the step, in every region
    /// (the `CopiesInFlight` metric).
    #[serde(default)]
    pub copies_in_flight: usize,
    /// Redshift: the heartbeat, from the shares this step lists (its delete step lists
    /// nothing). Aurora and RDS report it from the delete step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Heartbeat>,
    pub api_calls: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossRegionCopyInput {
    pub run: DestinationRun,
    pub item: DestinationItem,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossRegionCopyOutput {
    pub version: u32,
    pub item: DestinationItem,
    /// True once a copy is available in every destination region.
    pub ready: bool,
    pub started_in: Vec<String>,
    pub api_calls: u64,
}

/// The delete step serves both sides: `{"source": <SourceRun>}` or `{"destination": <DestinationRun>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum DeleteInput {
    Source(SourceRun),
    Destination(DestinationRun),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletedSnapshot {
    pub region: String,
    pub snapshot_id: String,
    /// `expired` (retention) or `intermediate` (regional copies exist).
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemFailure {
    pub resource: String,
    pub stage: String,
    pub error: ItemError,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteOutput {
    pub version: u32,
    pub deleted: Vec<DeletedSnapshot>,
    pub kept: usize,
    pub failures: Vec<ItemFailure>,
    pub api_calls: u64,
    /// How old the newest protected recovery point of the schedule is after this run (the
    /// Lambda function writes it as the `RecoveryPointAge` metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Heartbeat>,
}

/// Parse and validate a step's input: a malformed event is a `ConfigInvalid` naming the field.
pub trait StepInput: serde::de::DeserializeOwned {
    fn validate(&self) -> Result<(), Error>;

    fn parse_json(value: serde_json::Value) -> Result<Self, Error> {
        let input: Self = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            Error::config(
                if path == "." { String::new() } else { path },
                e.into_inner().to_string(),
            )
        })?;
        input.validate()?;
        Ok(input)
    }
}

impl StepInput for TakeInput {
    fn validate(&self) -> Result<(), Error> {
        let mut p = Problems::default();
        self.run.check("run", &mut p);
        check_execution(self.execution.as_ref(), &mut p);
        p.into_result()
    }
}

impl StepInput for CopyInInput {
    fn validate(&self) -> Result<(), Error> {
        let mut p = Problems::default();
        self.run.check("run", &mut p);
        check_execution(self.execution.as_ref(), &mut p);
        p.into_result()
    }
}

fn check_execution(execution: Option<&ExecutionContext>, p: &mut Problems) {
    let Some(e) = execution else { return };
    if !e.id.starts_with("arn:") || !e.id.contains(":execution:") {
        p.add(
            "execution.id",
            format!("`{}` is not a Step Functions execution ARN", e.id),
        );
    }
    if !e.state_machine.starts_with("arn:") || !e.state_machine.contains(":stateMachine:") {
        p.add(
            "execution.state_machine",
            format!(
                "`{}` is not a Step Functions state machine ARN",
                e.state_machine
            ),
        );
    }
}

impl StepInput for ShareInput {
    fn validate(&self) -> Result<(), Error> {
        let mut p = Problems::default();
        self.run.check("run", &mut p);
        check_item_id(
            &self.item.snapshot_id,
            &self.run.namespace,
            &self.run.schedule.name,
            "item.snapshot_id",
            &mut p,
        );
        p.into_result()
    }
}

impl StepInput for CrossRegionCopyInput {
    fn validate(&self) -> Result<(), Error> {
        let mut p = Problems::default();
        self.run.check("run", &mut p);
        check_item_id(
            &self.item.snapshot_id,
            &self.run.namespace,
            &self.run.schedule.name,
            "item.snapshot_id",
            &mut p,
        );
        if crate::snapshot::arn_account(&self.item.source_arn)
            != Some(self.run.source.account.as_str())
        {
            p.add(
                "item.source_arn",
                format!(
                    "`{}` is not a snapshot ARN of the source account {}",
                    self.item.source_arn, self.run.source.account
                ),
            );
        }
        p.into_result()
    }
}

impl StepInput for DeleteInput {
    fn validate(&self) -> Result<(), Error> {
        match self {
            DeleteInput::Source(run) => run.validate("source"),
            DeleteInput::Destination(run) => run.validate("destination"),
        }
    }
}

/// An item's snapshot id must be one of ours: steps never act on anything else.
fn check_item_id(id: &str, namespace: &str, schedule: &str, field: &str, p: &mut Problems) {
    let prefix = crate::naming::schedule_prefix(namespace, schedule);
    if !crate::naming::is_valid_snapshot_id(id) || !id.starts_with(&prefix) {
        p.add(
            field,
            format!("`{id}` is not a snapshot id of namespace `{namespace}` and schedule `{schedule}` (they start with `{prefix}`)"),
        );
    }
}
