//! `snapcourier plan`: what the next run of a schedule would do, and why, without changing
//! anything. The run's own steps run once each (the first look of each) on a context that
//! withholds every call but reads (`snapcourier_aws::withhold`): each withheld call is a
//! change the run would make; what the steps report besides is what the run would report.

use jiff::Timestamp;
use serde::Serialize;
use snapcourier_aws::engines::{list_resources, list_shared};
use snapcourier_aws::steps::Assumed;
use snapcourier_aws::withhold::{WITHHELD, Withheld};
use snapcourier_aws::{AwsContext, steps};
use snapcourier_core::config::ResourceFilter;
use snapcourier_core::events::{DestinationRun, ItemFailure, Look, SkippedResource, SourceRun};
use snapcourier_core::naming::{parse_on_demand, schedule_prefix};
use snapcourier_core::plan::PendingCopy;
use snapcourier_core::retention::RetentionCandidate;
use snapcourier_core::{Engine, Error};

/// One change the run would make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedChange {
    /// The step that would make it: take, share, expire (source); copy-in, cross-region,
    /// expire (destination).
    pub step: String,
    #[serde(flatten)]
    pub call: Withheld,
}

/// What the next run of one schedule on one side would do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanReport {
    pub side: String,
    pub schedule: String,
    /// The changes the run would make at once, step by step, in the order it makes them.
    pub changes: Vec<PlannedChange>,
    /// Source: the snapshots the take would create; a later look of the run shares each with
    /// every destination account once it is available.
    pub shared_once_available: Vec<String>,
    /// Databases the schedule covers that get no snapshot, and why.
    pub skipped: Vec<SkippedResource>,
    /// Destination: copies due with no free copy slot now; later looks of the run start them
    /// as slots free up.
    pub waiting_for_a_slot: Vec<PendingCopy>,
    /// Destination: shares its retention would expire at once, so not copied.
    pub too_old: Vec<String>,
    /// Snapshots or copies still being made, which the run would follow.
    pub in_progress: Vec<String>,
    /// What the run would report as failed (each with the error it would give).
    pub problems: Vec<ItemFailure>,
    /// Databases the schedule covers (source: those it matches, read replicas aside;
    /// destination: those the source shares), for the capacity checks.
    pub covered: usize,
    /// AWS calls the plan made (all reads).
    pub api_calls: u64,
}

impl PlanReport {
    fn new(side: &str, schedule: &str) -> Self {
        PlanReport {
            side: side.to_string(),
            schedule: schedule.to_string(),
            ..PlanReport::default()
        }
    }

    fn record(&mut self, ctx: &AwsContext, step: &str) {
        self.changes
            .extend(ctx.take_withheld().into_iter().map(|call| PlannedChange {
                step: step.to_string(),
                call,
            }));
    }

    /// Failures the run would report: those of the calls the plan withheld are its changes.
    fn problems(&mut self, failures: impl IntoIterator<Item = ItemFailure>) {
        self.problems.extend(
            failures
                .into_iter()
                .filter(|f| !f.error.message.contains(WITHHELD)),
        );
    }

    /// The changes of one step whose action starts with one of `actions`.
    pub fn changes_of<'a>(
        &'a self,
        step: &'a str,
        actions: &'a [&str],
    ) -> impl Iterator<Item = &'a PlannedChange> + 'a {
        self.changes
            .iter()
            .filter(move |c| c.step == step && actions.iter().any(|a| c.call.action.starts_with(a)))
    }
}

fn refuse_unless_withholding(ctx: &AwsContext) -> Result<(), Error> {
    if ctx.withholds_mutations() {
        Ok(())
    } else {
        Err(Error::config(
            "",
            "a plan needs a context that withholds changes (AwsContext::with_withheld_mutations)",
        ))
    }
}

/// The source run's plan: take, the first share look, expiry.
pub async fn plan_source(
    ctx: &AwsContext,
    run: &SourceRun,
    now: Timestamp,
) -> Result<PlanReport, Error> {
    refuse_unless_withholding(ctx)?;
    let before = ctx.calls();
    let mut report = PlanReport::new("source", &run.schedule.name);
    let taken = steps::take(ctx, run, None, now).await?;
    report.record(ctx, "take");
    report.skipped = taken.skipped.clone();
    let filter = ResourceFilter::new(&run.schedule, "schedule")?;
    let matched = list_resources(ctx, run.schedule.engine, &run.source.region)
        .await?
        .into_iter()
        .filter(|r| filter.covers(&r.id, &r.tags))
        .count();
    report.covered = matched.saturating_sub(report.skipped.len());
    report.problems(taken.failures());
    // The snapshots the take would start: the run shares each, and by the time it expires
    // snapshots they count for retention (the newest of their database).
    let new: Vec<(String, String)> = taken
        .items
        .iter()
        .filter(|i| {
            i.error
                .as_ref()
                .is_some_and(|e| e.message.contains(WITHHELD))
        })
        .map(|i| (i.resource_id.clone(), i.snapshot_id.clone()))
        .collect();
    report.shared_once_available = new.iter().map(|(_, id)| id.clone()).collect();
    let shared = steps::share(ctx, run, &Look::first(now), now).await?;
    report.record(ctx, "share");
    report.problems(shared.failures);
    report.in_progress = shared
        .pending
        .iter()
        .map(|i| i.snapshot_id.clone())
        .collect();
    // Snapshots of this slot still being made are available by then too.
    let mut new = new;
    new.extend(
        shared
            .pending
            .iter()
            .map(|i| (i.resource_id.clone(), i.snapshot_id.clone())),
    );
    let mut regions = vec![run.source.region.clone()];
    if run.schedule.engine == Engine::Redshift {
        // Redshift copies each new snapshot to the other region itself.
        regions.extend(run.redshift_copy_region().map(str::to_string));
    }
    // On-demand snapshots are kept for their own time: no policy counts them.
    new.retain(|(_, id)| parse_on_demand(id).is_none());
    let assumed: Vec<Assumed> = regions
        .iter()
        .flat_map(|region| {
            new.iter().map(move |(resource, id)| Assumed {
                region: region.clone(),
                candidate: RetentionCandidate {
                    id: id.clone(),
                    resource: resource.clone(),
                    created: now,
                    owned: true,
                    available: true,
                },
            })
        })
        .collect();
    let expired = steps::delete_source_assuming(ctx, run, now, &assumed).await?;
    report.record(ctx, "expire");
    report.problems(expired.failures);
    report.api_calls = (ctx.calls() - before).calls;
    Ok(report)
}

/// The destination run's plan: the first copy-in look, the cross-region copies due now,
/// clean-up and expiry.
pub async fn plan_destination(
    ctx: &AwsContext,
    run: &DestinationRun,
    now: Timestamp,
) -> Result<PlanReport, Error> {
    refuse_unless_withholding(ctx)?;
    let before = ctx.calls();
    let mut report = PlanReport::new("destination", &run.schedule.name);
    let look = Look::first(now);
    let copied = steps::copy_in(ctx, run, None, &look, now).await?;
    report.record(ctx, "copy-in");
    report.waiting_for_a_slot = copied.waiting.clone();
    report.too_old = copied.too_old.clone();
    report.in_progress = copied
        .in_flight
        .iter()
        .map(|p| format!("{} ({})", p.snapshot_id, p.region))
        .collect();
    report.problems(copied.failures);
    if copied.regional_wanted > 0 {
        let regional = steps::cross_region_copy(ctx, run, now).await?;
        report.record(ctx, "cross-region");
        report.waiting_for_a_slot.extend(regional.waiting);
        report.problems(regional.failures);
    }
    // The copies the run would make count for retention when it expires copies: each due
    // share, in every destination region, captured when the source took it.
    let mut due: std::collections::BTreeSet<String> = report
        .changes
        .iter()
        .filter(|c| c.call.action.starts_with("Copy"))
        .filter_map(|c| c.call.target.clone())
        .collect();
    due.extend(
        copied
            .in_flight
            .iter()
            .chain(&report.waiting_for_a_slot)
            .map(|p| p.snapshot_id.clone()),
    );
    let shares = list_shared(ctx, run.schedule.engine, &run.source.region).await?;
    let prefix = schedule_prefix(&run.namespace, &run.schedule.name);
    report.covered = shares
        .iter()
        .filter(|s| s.id.starts_with(&prefix))
        .map(|s| s.protected_resource().to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mut assumed = Vec::new();
    for share in shares
        .iter()
        .filter(|s| due.contains(&s.id) && s.on_demand().is_none())
    {
        for r in &run.destination.regions {
            assumed.push(Assumed {
                region: r.region.clone(),
                candidate: RetentionCandidate {
                    id: share.id.clone(),
                    resource: share.protected_resource().to_string(),
                    created: share.captured_at().unwrap_or(now),
                    owned: true,
                    available: true,
                },
            });
        }
    }
    let expired = steps::delete_destination_assuming(ctx, run, now, &assumed).await?;
    report.record(ctx, "expire");
    report.problems(expired.failures);
    report.api_calls = (ctx.calls() - before).calls;
    Ok(report)
}
