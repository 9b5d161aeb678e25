//! Inputs and outputs of the steps: the Lambda events and what the CLI passes between steps.
//! Versioned, strict (`deny_unknown_fields`), and validated with the same rules as the config,
//! so a malformed event is a `ConfigInvalid` naming the field and never a partial action.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::{
    self, Config, Destination, Problems, Schedule, Settings, SourceAccount, check_destination,
    check_namespace, check_schedule, check_settings, check_source,
};
use crate::coverage::Coverage;
use crate::error::{Error, ItemError};
use crate::heartbeat::Heartbeat;
use crate::looks::{MAX_NAMED, NextLook};
use crate::plan::PendingCopy;

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
        config::check_deadline(&self.settings, &self.schedule, &field(path, "settings"), p);
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
        config::check_deadline(&self.settings, &self.schedule, &field(path, "settings"), p);
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

/// Input of the copy-in step, one look of a destination run: the run, the execution when run
/// by a state machine, and how far the run has got (from the previous look's output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyInInput {
    pub run: DestinationRun,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionContext>,
    /// Looks the run has made before this one.
    #[serde(default)]
    pub looks: u32,
    /// Copies the run has started before this look.
    #[serde(default)]
    pub copies_started: u64,
}

/// Where a run stands before a look: how many it made, and when it started (the deadline
/// counts from there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    pub looks_before: u32,
    pub started_at: Timestamp,
    pub copies_started: u64,
}

impl Look {
    /// Where the run stands after `pass`: one more look, and the copies into this account
    /// it started.
    pub fn next(&self, pass: &CopyPass, source_region: &str) -> Look {
        let copied_in = pass
            .started
            .iter()
            .filter(|p| p.region == source_region)
            .count() as u64;
        Look {
            looks_before: self.looks_before + 1,
            started_at: self.started_at,
            copies_started: self.copies_started + copied_in,
        }
    }

    /// After this look, at `now`: whether the run looks again (`NextLook::decide`).
    pub fn decide(
        &self,
        pending: bool,
        now: Timestamp,
        interval: jiff::SignedDuration,
        settings: &Settings,
    ) -> NextLook {
        NextLook::decide(
            pending,
            self.looks_before + 1,
            self.started_at,
            now,
            interval,
            settings,
        )
    }

    /// The first look of a run that starts now.
    pub fn first(now: Timestamp) -> Look {
        Look {
            looks_before: 0,
            started_at: now,
            copies_started: 0,
        }
    }
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

/// What the take step did, in full (the CLI's view; the Lambda function returns the bounded
/// `TakeOutput`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TakePass {
    /// Set when an older execution of the same schedule is still running: this one did
    /// nothing and ends as skipped.
    pub overlapping_execution: Option<String>,
    /// The snapshots this run started or found in the current slot (each with its error when
    /// the take failed for it), and the owned ones still to be shared.
    pub items: Vec<SourceItem>,
    pub skipped: Vec<SkippedResource>,
    pub created: Vec<String>,
    pub api_calls: u64,
}

impl TakePass {
    /// A take that stood aside for an older execution.
    pub fn overlapping(older: String) -> TakePass {
        TakePass {
            overlapping_execution: Some(older),
            items: Vec::new(),
            skipped: Vec::new(),
            created: Vec::new(),
            api_calls: 0,
        }
    }

    /// The databases the take step could not snapshot, and why.
    pub fn failures(&self) -> Vec<ItemFailure> {
        self.items
            .iter()
            .filter_map(|i| {
                i.error.as_ref().map(|e| ItemFailure {
                    resource: i.resource_id.clone(),
                    stage: FailureStage::Take,
                    error: e.clone(),
                })
            })
            .collect()
    }

    /// Owned snapshots not yet shared with every destination account: the share step's work.
    pub fn to_share(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.error.is_none() && !i.shared)
            .count()
    }

    /// The bounded output of the take Lambda function: counts, and the first failures and
    /// skipped databases by name, whatever the size of the fleet.
    pub fn output(&self) -> TakeOutput {
        let mut failures = self.failures();
        let failed = failures.len();
        failures.truncate(MAX_NAMED);
        TakeOutput {
            version: EVENT_VERSION,
            overlapping_execution: self.overlapping_execution.clone(),
            created: self.created.len(),
            to_share: self.to_share(),
            skipped: self.skipped.len(),
            skipped_named: self.skipped.iter().take(MAX_NAMED).cloned().collect(),
            failed,
            failures,
            api_calls: self.api_calls,
        }
    }
}

/// The take Lambda function's output: counts and the first names. Its size does not grow
/// with the fleet (Step Functions allows 256 KiB per state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TakeOutput {
    pub version: u32,
    /// Set when an older execution of the same schedule is still running: this one did
    /// nothing and ends as skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlapping_execution: Option<String>,
    /// Snapshots this run started.
    pub created: usize,
    /// Owned snapshots still to be shared (0: the state machine skips the share step).
    pub to_share: usize,
    /// Databases of the schedule not snapshotted, with a reason (not failures).
    pub skipped: usize,
    /// The first `MAX_NAMED` of them.
    pub skipped_named: Vec<SkippedResource>,
    /// Databases the take failed for.
    pub failed: usize,
    /// The first `MAX_NAMED` of them (the function's log names every one).
    pub failures: Vec<ItemFailure>,
    pub api_calls: u64,
}

/// Input of the share step, one look of a source run: the run, the execution when run by a
/// state machine (the deadline counts from its start), and how far the run has got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareInput {
    pub run: SourceRun,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionContext>,
    /// Looks the run has made before this one.
    #[serde(default)]
    pub looks: u32,
    /// Snapshots the run has shared before this look.
    #[serde(default)]
    pub shared: u64,
}

/// What one look of the share step saw and did, in full (the CLI's view; the Lambda function
/// returns the bounded `ShareOutput`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharePass {
    /// Owned snapshots not yet shared with every destination account when the look began.
    pub due: usize,
    /// Shared with every destination account in this look.
    pub shared: Vec<SourceItem>,
    /// Still being made (Redshift: or its cross-region copy is), or a call for it was
    /// throttled: looked at again.
    pub pending: Vec<SourceItem>,
    pub failures: Vec<ItemFailure>,
    /// Whether the run looks again, and when; or why it stops with snapshots left.
    #[serde(skip)]
    pub next: NextLook,
    pub api_calls: u64,
}

impl SharePass {
    /// A look at nothing: nothing to share.
    pub fn empty() -> SharePass {
        SharePass {
            due: 0,
            shared: Vec::new(),
            pending: Vec::new(),
            failures: Vec::new(),
            next: NextLook::Finished,
            api_calls: 0,
        }
    }

    /// When the run stops with snapshots still being made: one failure each, saying why.
    pub fn left_over(&self) -> Vec<ItemFailure> {
        let NextLook::OutOfTime(why) = &self.next else {
            return Vec::new();
        };
        self.pending
            .iter()
            .map(|i| ItemFailure {
                resource: i.resource_id.clone(),
                stage: FailureStage::Share,
                error: ItemError {
                    error_type: "InvalidState".into(),
                    message: format!(
                        "{} was still `{}` when the run stopped: {why}. It is not shared yet; the next run follows it",
                        i.snapshot_id, i.status
                    ),
                    retryable: false,
                },
            })
            .collect()
    }

    /// The bounded output of the share Lambda function. `before` is where the run stood
    /// before this look.
    pub fn output(&self, before: &ShareInput) -> ShareOutput {
        let mut failures = self.failures.clone();
        failures.extend(self.left_over());
        let failed = failures.len();
        failures.truncate(MAX_NAMED);
        ShareOutput {
            version: EVENT_VERSION,
            finished: self.next.is_finished(),
            looks: before.looks + 1,
            next_look_seconds: self.next.seconds(),
            stopped: match &self.next {
                NextLook::OutOfTime(why) => Some(why.clone()),
                _ => None,
            },
            shared: before.shared + self.shared.len() as u64,
            due: self.due,
            shared_now: self.shared.len(),
            pending: self.pending.len(),
            failed,
            failures,
            api_calls: self.api_calls,
        }
    }
}

/// The share Lambda function's output: one look, in counts and the first failures by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareOutput {
    pub version: u32,
    /// No more looks: nothing is pending, or the run stopped (see `stopped`).
    pub finished: bool,
    /// Looks made so far, this one included.
    pub looks: u32,
    /// Seconds to wait before the next look (0 when finished).
    pub next_look_seconds: u64,
    /// Why the run stopped with snapshots left (its deadline passed); null otherwise.
    #[serde(default)]
    pub stopped: Option<String>,
    /// Snapshots the run has shared so far.
    pub shared: u64,
    /// Owned snapshots not yet shared when this look began.
    pub due: usize,
    /// Shared in this look.
    pub shared_now: usize,
    /// Still being made, looked at again.
    pub pending: usize,
    /// Failures this look, including snapshots left when the run stopped.
    pub failed: usize,
    /// The first `MAX_NAMED` of them (the function's log names every one).
    pub failures: Vec<ItemFailure>,
    pub api_calls: u64,
}

/// A copy that failed to start or that AWS reports as failed, or work a run left when it
/// stopped, as a destination look reports it.
fn pending_failure(p: &PendingCopy, stage: FailureStage, error: ItemError) -> ItemFailure {
    ItemFailure {
        resource: p.resource_id.clone(),
        stage,
        error,
    }
}

/// What one look of the destination saw and did, in full (the CLI's view; the Lambda
/// function returns the bounded `CopyInOutput`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyPass {
    /// Set when an older execution of the same schedule is still running: this one did
    /// nothing and ends as skipped.
    pub overlapping_execution: Option<String>,
    /// Shares of this schedule the look saw.
    pub due: usize,
    /// Shares available in every destination region (Redshift: verified).
    pub done: Vec<String>,
    /// Copies this look started (copy-in, and cross-region when the step makes them).
    pub started: Vec<PendingCopy>,
    /// Copies this look made and finished (ElastiCache: one CopyObject call makes a vault
    /// copy, so nothing is left in flight).
    pub copied: Vec<PendingCopy>,
    pub in_flight: Vec<PendingCopy>,
    /// Copies due with no free slot in their region.
    pub waiting: Vec<PendingCopy>,
    /// Copies into other regions ready to start now: the cross-region step's work this look.
    pub regional_wanted: usize,
    /// Shares destination retention would expire at once: not copied.
    pub too_old: Vec<String>,
    pub failures: Vec<ItemFailure>,
    /// Copies of this schedule in flight in this account after the look (`CopiesInFlight`).
    pub copies_in_flight: usize,
    /// Whether the run looks again, and when; or why it stops with work left.
    #[serde(skip)]
    pub next: NextLook,
    /// Redshift: the destination makes no copies; it verifies that each share is visible in
    /// every region (`in_flight` is a share the source's cluster is still copying).
    pub verifies_only: bool,
    /// The schedule's databases without a recovery point protected within two intervals.
    pub coverage: Option<Coverage>,
    /// Redshift: the heartbeat, from the shares the step lists (its delete step lists
    /// nothing). Aurora and RDS report it from the delete step.
    pub heartbeat: Option<Heartbeat>,
    pub api_calls: u64,
}

impl CopyPass {
    /// A look that stood aside for an older execution.
    pub fn overlapping(older: String) -> CopyPass {
        CopyPass {
            overlapping_execution: Some(older),
            ..CopyPass::empty()
        }
    }

    /// A look that found nothing, yet.
    pub fn empty() -> CopyPass {
        CopyPass {
            overlapping_execution: None,
            due: 0,
            done: Vec::new(),
            started: Vec::new(),
            copied: Vec::new(),
            in_flight: Vec::new(),
            waiting: Vec::new(),
            regional_wanted: 0,
            too_old: Vec::new(),
            failures: Vec::new(),
            copies_in_flight: 0,
            next: NextLook::Finished,
            verifies_only: false,
            coverage: None,
            heartbeat: None,
            api_calls: 0,
        }
    }

    fn stage(&self, p: &PendingCopy, source_region: &str) -> FailureStage {
        if self.verifies_only {
            FailureStage::Verify
        } else {
            crate::plan::copy_stage(&p.region, source_region)
        }
    }

    /// Whether anything is under way or still to start.
    pub fn pending(&self) -> bool {
        !self.started.is_empty()
            || !self.in_flight.is_empty()
            || !self.waiting.is_empty()
            || self.regional_wanted > 0
    }

    /// When the run stops with work left: one failure per copy still under way or waiting,
    /// saying why, so the run fails loudly and names what is left.
    pub fn left_over(&self, source_region: &str) -> Vec<ItemFailure> {
        let NextLook::OutOfTime(why) = &self.next else {
            return Vec::new();
        };
        let in_flight = self.in_flight.iter().chain(&self.started).map(|p| {
            let message = if self.verifies_only {
                format!(
                    "the share {} was still {} when the run stopped: {why}. The source account's cluster copies it there (check its snapshot copy configuration); the next run looks again",
                    p.snapshot_id, p.status
                )
            } else {
                format!(
                    "the copy of {} into {} was still `{}` when the run stopped: {why}. The next run follows it",
                    p.snapshot_id, p.region, p.status
                )
            };
            pending_failure(
                p,
                self.stage(p, source_region),
                ItemError {
                    error_type: "InvalidState".into(),
                    message,
                    retryable: false,
                },
            )
        });
        let waiting = self.waiting.iter().map(|p| {
            pending_failure(
                p,
                self.stage(p, source_region),
                ItemError {
                    error_type: "InvalidState".into(),
                    message: format!(
                        "{} waited for a copy slot in {} until the run stopped: {why}. {} copies were due and AWS allows only a few in flight per region; the next run starts the longest-waiting databases first. If this repeats, copies need more time than the schedule's interval gives",
                        p.snapshot_id, p.region, self.waiting.len() + self.in_flight.len()
                    ),
                    retryable: false,
                },
            )
        });
        in_flight.chain(waiting).collect()
    }

    /// The bounded output of the copy-in Lambda function: counts, and the first failures by
    /// name, whatever the size of the fleet.
    pub fn output(&self, look: &Look, source_region: &str) -> CopyInOutput {
        let mut failures = self.failures.clone();
        failures.extend(self.left_over(source_region));
        let failed = failures.len();
        failures.truncate(MAX_NAMED);
        let after = look.next(self, source_region);
        CopyInOutput {
            version: EVENT_VERSION,
            overlapping_execution: self.overlapping_execution.clone(),
            finished: self.next.is_finished(),
            looks: after.looks_before,
            next_look_seconds: self.next.seconds(),
            stopped: match &self.next {
                NextLook::OutOfTime(why) => Some(why.clone()),
                _ => None,
            },
            copies_started: after.copies_started,
            due: self.due,
            done: self.done.len(),
            started: self.started.len(),
            copied: self.copied.len(),
            in_flight: self.in_flight.len(),
            waiting: self.waiting.len(),
            regional_wanted: self.regional_wanted,
            too_old: self.too_old.len(),
            failed,
            failures,
            copies_in_flight: self.copies_in_flight,
            coverage: self.coverage.clone().map(Coverage::bounded),
            heartbeat: self.heartbeat.clone(),
            api_calls: self.api_calls,
        }
    }
}

/// The copy-in Lambda function's output: one look, in counts and the first failures by name.
/// Its size does not grow with the fleet (Step Functions allows 256 KiB per state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyInOutput {
    pub version: u32,
    /// Set when an older execution of the same schedule is still running (see TakeOutput).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlapping_execution: Option<String>,
    /// No more looks: nothing is pending, or the run stopped (see `stopped`).
    pub finished: bool,
    /// Looks made so far, this one included.
    pub looks: u32,
    /// Seconds to wait before the next look (0 when finished).
    pub next_look_seconds: u64,
    /// Why the run stopped with work left (its deadline passed); null otherwise.
    #[serde(default)]
    pub stopped: Option<String>,
    /// Copies into this account the run has started so far.
    pub copies_started: u64,
    pub due: usize,
    pub done: usize,
    pub started: usize,
    /// Copies made and finished this look (ElastiCache).
    #[serde(default)]
    pub copied: usize,
    pub in_flight: usize,
    pub waiting: usize,
    pub regional_wanted: usize,
    pub too_old: usize,
    /// Failures this look, including work left when the run stopped.
    pub failed: usize,
    /// The first `MAX_NAMED` of them (the function's log names every one).
    pub failures: Vec<ItemFailure>,
    /// Copies of this namespace being made in this account after the look, in every region
    /// (the `CopiesInFlight` metric).
    #[serde(default)]
    pub copies_in_flight: usize,
    /// Databases without a recovery point protected within two intervals (the
    /// `UnprotectedDatabases` metric, written when the run's looks end); always present (null
    /// when the look stood aside), as the state machine's report reads it.
    #[serde(default)]
    pub coverage: Option<Coverage>,
    /// Redshift: the heartbeat, from the shares this step lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Heartbeat>,
    pub api_calls: u64,
}

/// Input of the cross-region copy step: the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossRegionCopyInput {
    pub run: DestinationRun,
}

/// What the cross-region copy step started in one look, in full (the CLI's view).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionalPass {
    pub started: Vec<PendingCopy>,
    pub waiting: Vec<PendingCopy>,
    pub failures: Vec<ItemFailure>,
    pub api_calls: u64,
}

impl RegionalPass {
    pub fn output(&self) -> CrossRegionCopyOutput {
        let mut failures = self.failures.clone();
        failures.truncate(MAX_NAMED);
        CrossRegionCopyOutput {
            version: EVENT_VERSION,
            started: self.started.len(),
            waiting: self.waiting.len(),
            failed: self.failures.len(),
            failures,
            api_calls: self.api_calls,
        }
    }
}

/// The cross-region copy Lambda function's output, bounded like `CopyInOutput`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossRegionCopyOutput {
    pub version: u32,
    pub started: usize,
    pub waiting: usize,
    pub failed: usize,
    pub failures: Vec<ItemFailure>,
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
    pub reason: DeletionReason,
}

/// Why a snapshot was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeletionReason {
    /// The retention policy let it go.
    Expired,
    /// An intermediate copy in the source region, once every regional copy exists.
    Intermediate,
    /// An on-demand snapshot whose keep ended.
    #[serde(rename = "on-demand, kept as long as asked")]
    OnDemand,
}

/// The stage an item failed at (the reports' `stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureStage {
    Take,
    Share,
    CopyIn,
    CrossRegionCopy,
    /// Redshift's destination: a share not visible or not available.
    Verify,
    Delete,
    /// A drill's choice of databases (a named one without a copy).
    Choose,
    Restore,
    Validate,
    /// Deleting what an earlier drill left.
    Cleanup,
}

/// The strings both enums are written as, for messages and comparisons.
macro_rules! named {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$v => $s),*
                }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
    };
}
named!(DeletionReason {
    Expired => "expired",
    Intermediate => "intermediate",
    OnDemand => "on-demand, kept as long as asked",
});
named!(FailureStage {
    Take => "take",
    Share => "share",
    CopyIn => "copy-in",
    CrossRegionCopy => "cross-region-copy",
    Verify => "verify",
    Delete => "delete",
    Choose => "choose",
    Restore => "restore",
    Validate => "validate",
    Cleanup => "cleanup",
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemFailure {
    pub resource: String,
    pub stage: FailureStage,
    pub error: ItemError,
}

impl ItemFailure {
    pub fn new(resource: impl Into<String>, stage: FailureStage, e: &Error) -> Self {
        ItemFailure {
            resource: resource.into(),
            stage,
            error: ItemError::from(e),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteOutput {
    pub version: u32,
    pub deleted: Vec<DeletedSnapshot>,
    /// How many were deleted (`deleted` names the first `MAX_NAMED` in a Lambda output).
    #[serde(default)]
    pub deleted_count: usize,
    pub kept: usize,
    pub failures: Vec<ItemFailure>,
    /// How many deletions failed (`failures` names the first `MAX_NAMED` in a Lambda output).
    #[serde(default)]
    pub failed: usize,
    pub api_calls: u64,
    /// How old the newest protected recovery point of the schedule is after this run (the
    /// Lambda function writes it as the `RecoveryPointAge` metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Heartbeat>,
    /// Source: databases with a snapshot of the schedule but none shared with every
    /// destination within two intervals, after this run (`UnprotectedDatabases`). Always
    /// present (null on the destination side), as the source state machine's report reads it.
    #[serde(default)]
    pub coverage: Option<Coverage>,
}

impl DeleteOutput {
    /// The output as a Lambda function returns it: counts, and the first `MAX_NAMED`
    /// deletions and failures by name, whatever the size of the fleet.
    pub fn bounded(mut self) -> DeleteOutput {
        self.deleted_count = self.deleted.len();
        self.failed = self.failures.len();
        self.deleted.truncate(MAX_NAMED);
        self.failures.truncate(MAX_NAMED);
        self.coverage = self.coverage.map(Coverage::bounded);
        self
    }
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
        check_looks(self.looks, &mut p);
        p.into_result()
    }
}

fn check_looks(looks: u32, p: &mut Problems) {
    if looks > crate::looks::MAX_LOOKS {
        p.add(
            "looks",
            format!(
                "{looks} is more than a run makes ({}); pass the previous look's `looks`",
                crate::looks::MAX_LOOKS
            ),
        );
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
        check_execution(self.execution.as_ref(), &mut p);
        check_looks(self.looks, &mut p);
        p.into_result()
    }
}

impl StepInput for CrossRegionCopyInput {
    fn validate(&self) -> Result<(), Error> {
        self.run.validate("run")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::looks::NextLook;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn pending(i: usize, region: &str, status: &str) -> PendingCopy {
        PendingCopy {
            resource_id: format!("orders-cluster-with-a-long-name-{i:04}"),
            snapshot_id: format!(
                "sc-production-auroradaily-orders-cluster-with-a-long-name-{i:04}-20261122-0000"
            ),
            region: region.into(),
            status: status.into(),
        }
    }

    #[test]
    fn a_look_with_a_thousand_failures_stays_small_and_counts_them_all() {
        let failures: Vec<ItemFailure> = (0..1000)
            .map(|i| ItemFailure {
                resource: format!("orders-cluster-with-a-long-name-{i:04}"),
                stage: FailureStage::CopyIn,
                error: ItemError {
                    error_type: "AccessDenied".into(),
                    message: "x".repeat(400),
                    retryable: false,
                },
            })
            .collect();
        let pass = CopyPass {
            overlapping_execution: None,
            copied: Vec::new(),
            due: 5000,
            done: (0..3000).map(|i| format!("done-{i}")).collect(),
            started: Vec::new(),
            in_flight: (0..500)
                .map(|i| pending(i, "us-east-1", "copying"))
                .collect(),
            waiting: (500..1000)
                .map(|i| pending(i, "eu-west-1", crate::plan::WAITING_FOR_A_SLOT))
                .collect(),
            regional_wanted: 0,
            too_old: Vec::new(),
            failures,
            copies_in_flight: 5,
            next: NextLook::OutOfTime("the run's deadline passed".into()),
            verifies_only: false,
            coverage: None,
            heartbeat: None,
            api_calls: 60,
        };
        let look = Look::first(t("2026-11-22T03:00:00Z"));
        let out = pass.output(&look, "us-east-1");
        // Every failure and every copy left at the deadline is counted...
        assert_eq!(out.failed, 2000);
        assert!(out.finished);
        assert_eq!(out.stopped.as_deref(), Some("the run's deadline passed"));
        // ...and the first ones are named: far below Step Functions' and SNS's 256 KiB.
        assert_eq!(out.failures.len(), MAX_NAMED);
        let bytes = serde_json::to_vec(&out).unwrap().len();
        assert!(bytes < 32 * 1024, "{bytes} bytes");
    }

    #[test]
    fn work_left_at_the_deadline_is_named_with_what_to_expect() {
        let pass = CopyPass {
            in_flight: vec![pending(1, "eu-west-1", "copying")],
            waiting: vec![pending(2, "us-east-1", crate::plan::WAITING_FOR_A_SLOT)],
            next: NextLook::OutOfTime("the run's deadline 2026-11-23T02:00:00Z passed".into()),
            ..CopyPass::overlapping(String::new())
        };
        let left = pass.left_over("us-east-1");
        assert_eq!(left.len(), 2);
        assert_eq!(left[0].stage, "cross-region-copy");
        assert!(left[0].error.message.contains("still `copying`"));
        assert_eq!(left[1].stage, "copy-in");
        assert!(
            left[1]
                .error
                .message
                .contains("waited for a copy slot in us-east-1")
        );
        assert!(left[1].error.message.contains("longest-waiting"));
        // A run that finished normally leaves nothing to report.
        let finished = CopyPass {
            next: NextLook::Finished,
            ..pass
        };
        assert!(finished.left_over("us-east-1").is_empty());
    }
}
