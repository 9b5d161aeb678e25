//! The execution input of every scheduled run, exactly as `snapcourier run` builds it, so the
//! CDK stacks put the same JSON in their schedules without re-implementing the config's
//! defaults or rules (`snapcourier inputs -c FILE`).

use serde::Serialize;
use snapcourier_core::config::{Schedule, Vault};
use snapcourier_core::deployed::parameter_prefix;
use snapcourier_core::drill::{self, DRILL_RUN_NAME, DrillRun};
use snapcourier_core::events::{DestinationRun, SourceRun};
use snapcourier_core::heartbeat::{AlarmWindow, Side};
use snapcourier_core::looks::execution_timeout_seconds;
use snapcourier_core::{Config, Error};

/// One schedule's run on one side: the state machine input its schedule passes.
#[derive(Debug, Serialize)]
pub struct ScheduledInput<T> {
    pub schedule: String,
    /// The EventBridge expression that starts it (the schedule's cron, else rate(interval)).
    pub expression: String,
    /// The RecoveryPointAge alarm of this schedule (see `heartbeat::AlarmWindow`).
    pub heartbeat: AlarmWindow,
    /// The longest an execution of this schedule may run (its interval): the stack sets the
    /// state machine's `TimeoutSeconds` to the longest of its schedules'.
    pub execution_timeout_seconds: u64,
    pub input: T,
}

/// Every destination account's runs, in config order.
#[derive(Debug, Serialize)]
pub struct DestinationInputs {
    pub account: String,
    /// Every region this destination writes to: the source region first, then its own
    /// (`Destination::touched_regions`).
    pub regions: Vec<String>,
    /// Regions where the destination stack creates the KMS key (alias
    /// `alias/snapcourier-<namespace>`) because the config names none there.
    pub stack_key_regions: Vec<String>,
    pub runs: Vec<ScheduledInput<DestinationRun>>,
    /// ElastiCache: the vault bucket the destination stack creates in each of its regions
    /// (empty without an ElastiCache schedule).
    pub vaults: Vec<VaultBucket>,
    /// The restore drill of this destination, when the config has drills that it keeps copies
    /// for: its own state machine, started on `expression` with `input`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<ScheduledDrill>,
}

/// The drill state machine's schedule and input. Its deployed run is the SSM parameter
/// `<deployed_runs.destination>` + `name` (`_drills`: no schedule name starts with `_`).
#[derive(Debug, Serialize)]
pub struct ScheduledDrill {
    pub name: String,
    /// How often the stack checks whether a drill is due (daily, or `every` when shorter).
    pub expression: String,
    /// The drill interval: the DrillAge alarm fires when no drill succeeded within two of them.
    pub every_seconds: u64,
    /// The drill state machine's `TimeoutSeconds`: the restore timeout plus an hour to clean up.
    pub execution_timeout_seconds: u64,
    pub input: DrillRun,
}

/// ElastiCache: the source stack's export bucket. ElastiCache writes a snapshot's objects to
/// it (`<region>.elasticache-snapshot.amazonaws.com` needs s3:PutObject, s3:GetObject,
/// s3:ListBucket and s3:GetBucketAcl); the destination accounts may list it and read the
/// objects under `key_prefix`, whose key (created by the stack) they may decrypt.
#[derive(Debug, Serialize)]
pub struct ExportBucket {
    pub bucket: String,
    pub region: String,
    pub key_prefix: String,
    pub readers: Vec<String>,
}

/// ElastiCache: one vault bucket of a destination account: versioned, S3 Object Lock in
/// `object_lock` mode with a default retention of `lock_days` (each copy also carries its own
/// retain-until date), encrypted with `kms_key`.
#[derive(Debug, Serialize)]
pub struct VaultBucket {
    pub region: String,
    pub bucket: String,
    pub kms_key: Option<String>,
    pub object_lock: String,
    pub lock_days: u32,
    /// Objects snapcourier writes and expires (`sc-<namespace>-`).
    pub key_prefix: String,
}

/// Where each side's stack writes its deployed runs: one SSM parameter per schedule, named
/// prefix + schedule name, the prefix given to the functions (`SNAPCOURIER_DEPLOYED_RUNS`).
#[derive(Debug, Serialize)]
pub struct DeployedRuns {
    pub source: String,
    pub destination: String,
}

/// What each stack schedules: the source runs and, per destination account, its runs.
#[derive(Debug, Serialize)]
pub struct Inputs {
    pub namespace: String,
    /// The AWS partition of the deployment's ARNs (`config::partition`).
    pub partition: String,
    /// Regions the source account writes to (its own, and Redshift's copy region).
    pub source_regions: Vec<String>,
    /// The functions run only these runs (`snapcourier_core::deployed`).
    pub deployed_runs: DeployedRuns,
    /// The vault's exceptions, defaults applied: the guardrails of the destination accounts.
    pub vault: Vault,
    pub source: Vec<ScheduledInput<SourceRun>>,
    pub destinations: Vec<DestinationInputs>,
    /// The engine table (`snapcourier_core::engine::EngineFacts`), for the stacks.
    pub engines: Vec<&'static snapcourier_core::engine::EngineFacts>,
    /// ElastiCache: the source stack's export bucket (absent without an ElastiCache schedule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_bucket: Option<ExportBucket>,
}

impl Inputs {
    /// Built with the same constructors as `snapcourier run` (the config is already valid).
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        let mut source = Vec::new();
        for s in &config.schedules {
            source.push(ScheduledInput {
                schedule: s.name.clone(),
                expression: expression(s),
                heartbeat: AlarmWindow::for_interval(s.interval.as_secs().unsigned_abs()),
                execution_timeout_seconds: execution_timeout_seconds(s.interval.as_signed()),
                input: SourceRun::from_config(config, &s.name)?,
            });
        }
        let engines: std::collections::BTreeSet<snapcourier_core::Engine> =
            config.schedules.iter().map(|s| s.engine).collect();
        let elasticache = engines.contains(&snapcourier_core::Engine::ElastiCache);
        let key_prefix = snapcourier_core::naming::namespace_prefix(&config.namespace);
        let mut destinations = Vec::new();
        for d in &config.destinations {
            let mut runs = Vec::new();
            for s in &config.schedules {
                runs.push(ScheduledInput {
                    schedule: s.name.clone(),
                    expression: expression(s),
                    heartbeat: AlarmWindow::for_interval(s.interval.as_secs().unsigned_abs()),
                    execution_timeout_seconds: execution_timeout_seconds(s.interval.as_signed()),
                    input: DestinationRun::from_config(config, &s.name, &d.account)?,
                });
            }
            let drill = DrillRun::from_config(config, &d.account)?.map(|input| ScheduledDrill {
                name: DRILL_RUN_NAME.to_string(),
                expression: drill::check_expression(input.drills.every),
                every_seconds: input.drills.every.as_secs().unsigned_abs(),
                execution_timeout_seconds: drill::execution_timeout_seconds(&input.drills),
                input,
            });
            let with_keys = d.with_keys(&config.namespace, &config.source.region);
            let vaults = if elasticache {
                with_keys
                    .regions
                    .iter()
                    .map(|r| VaultBucket {
                        region: r.region.clone(),
                        bucket: snapcourier_core::naming::vault_bucket(
                            &config.namespace,
                            &d.account,
                            &r.region,
                        ),
                        kms_key: r.kms_key.clone(),
                        object_lock: d.object_lock.as_api().to_string(),
                        lock_days: d.retention.days.unwrap_or(1),
                        key_prefix: key_prefix.clone(),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            destinations.push(DestinationInputs {
                account: d.account.clone(),
                regions: d.touched_regions(&config.source.region),
                stack_key_regions: d.stack_key_regions(&config.source.region),
                runs,
                vaults,
                drill,
            });
        }
        Ok(Inputs {
            namespace: config.namespace.clone(),
            partition: snapcourier_core::config::partition(&config.source.region).to_string(),
            source_regions: config.source_regions(&engines),
            vault: config.vault.clone(),
            deployed_runs: DeployedRuns {
                source: parameter_prefix(&config.namespace, Side::Source),
                destination: parameter_prefix(&config.namespace, Side::Destination),
            },
            source,
            destinations,
            engines: snapcourier_core::Engine::ALL
                .iter()
                .map(|e| e.facts())
                .collect(),
            export_bucket: elasticache.then(|| ExportBucket {
                bucket: snapcourier_core::naming::export_bucket(
                    &config.namespace,
                    &config.source.account,
                    &config.source.region,
                ),
                region: config.source.region.clone(),
                key_prefix: key_prefix.clone(),
                readers: config
                    .destinations
                    .iter()
                    .map(|d| d.account.clone())
                    .collect(),
            }),
        })
    }
}

/// The EventBridge expression that starts a schedule's runs: its `cron`, else
/// `rate(<interval>)` in whole hours, rounded down so that every interval slot gets a run.
pub fn expression(schedule: &Schedule) -> String {
    if let Some(cron) = &schedule.cron {
        return cron.clone();
    }
    match (schedule.interval.as_secs() / 3600).max(1) {
        1 => "rate(1 hour)".to_string(),
        hours => format!("rate({hours} hours)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/snapcourier.yaml");

    #[test]
    fn every_schedule_has_one_source_run_and_one_run_per_destination() {
        let config = Config::parse(EXAMPLE).unwrap();
        let inputs = Inputs::from_config(&config).unwrap();
        assert_eq!(inputs.source.len(), config.schedules.len());
        assert_eq!(inputs.destinations.len(), config.destinations.len());
        for (run, schedule) in inputs.source.iter().zip(&config.schedules) {
            assert_eq!(
                run.input,
                SourceRun::from_config(&config, &schedule.name).unwrap()
            );
            run.input.validate("input").unwrap();
        }
        let d = &inputs.destinations[0];
        assert_eq!(d.account, "222222222222");
        for run in &d.runs {
            assert_eq!(
                run.input,
                DestinationRun::from_config(&config, &run.schedule, &d.account).unwrap()
            );
            run.input.validate("input").unwrap();
        }
    }

    #[test]
    fn the_expression_is_the_cron_or_the_interval_in_whole_hours() {
        let config = Config::parse(EXAMPLE).unwrap();
        let mut s = config.schedules[0].clone();
        assert_eq!(expression(&s), "cron(0 3 * * ? *)");
        s.cron = None;
        assert_eq!(expression(&s), "rate(24 hours)");
        s.interval = "90m".parse().unwrap();
        assert_eq!(expression(&s), "rate(1 hour)");
        s.interval = "6h".parse().unwrap();
        assert_eq!(expression(&s), "rate(6 hours)");
    }
}
