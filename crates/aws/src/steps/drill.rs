//! One look of a restore drill (`snapcourier_core::drill`). The first look cleans up what
//! earlier drills left, chooses the due databases and starts their restores; every look
//! follows each restore: adds the Aurora instance, times the database once it is available,
//! asks the validation function, deletes what was restored (also after a failure or a
//! timeout) and records the result. A look may be run twice: restores and deletes are
//! idempotent, and a drill's id is fixed by the time its run began.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use snapcourier_core::drill::{
    Drill, DrillDatabases, DrillInput, DrillOutput, DrillPhase, DrillRecord, choose, drill_age,
    drill_instance_id, drill_resource_id, is_due, records_by_database,
};
use snapcourier_core::events::{FailureStage, ItemFailure};
use snapcourier_core::{Engine, Error};

use crate::client::AwsContext;
use crate::drill::{
    Restored, RestoredKind, add_aurora_instance, delete_restored, list_candidates, list_restored,
    read_records, start_restore, validate, write_record,
};

/// How long after its restore's timeout a drill keeps trying to delete what it restored
/// before it leaves it to the next drill.
const CLEANUP_GRACE: SignedDuration = SignedDuration::from_mins(30);

/// What one look did: the step's output, the drills it finished (for their metrics) and,
/// on a first look, the destination's drill age (seconds since its newest successful drill).
#[derive(Debug)]
pub struct DrillPass {
    pub output: DrillOutput,
    pub finished: Vec<Drill>,
    pub drill_age: Option<i64>,
}

/// One look of a drill run. `now` is injected; the restored resources' ids come from the
/// execution's start (or, by hand, from `now` at the first look).
pub async fn drill(
    ctx: &AwsContext,
    input: &DrillInput,
    now: Timestamp,
) -> Result<DrillPass, Error> {
    let run = &input.run;
    let records_region = run.source.region.as_str();
    let engines: BTreeSet<Engine> = run.schedules.iter().map(|s| s.engine).collect();
    let mut drills = input.drills.clone();
    let mut extra_failures: Vec<ItemFailure> = Vec::new();
    let mut leftovers_deleted = Vec::new();
    let mut not_due = Vec::new();
    let mut drill_age_seconds = None;

    // Every restored resource of this deployment's drills, per region.
    let mut listing: BTreeMap<String, Vec<Restored>> = BTreeMap::new();
    for region in &run.regions {
        listing.insert(
            region.clone(),
            list_restored(ctx, region, &run.namespace, &engines).await?,
        );
    }

    // Leftovers: restored by a drill that is not this one and has given up on them (its
    // timeout passed). A drill under way elsewhere (another destination's run, an operator's
    // `snapcourier drill`) is left alone.
    let ours: BTreeSet<String> = drills
        .iter()
        .flat_map(|d| [d.resource.clone(), drill_instance_id(&d.resource)])
        .collect();
    for (region, restored) in &listing {
        for r in restored {
            if ours.contains(&r.id) || r.is_deleting() {
                continue;
            }
            let abandoned = r
                .began
                .is_none_or(|began| now.duration_since(began) >= run.timeout());
            if !abandoned {
                continue;
            }
            // An Aurora cluster goes once its instances are gone (RDS refuses before).
            let blocked = r.kind == RestoredKind::AuroraCluster
                && restored
                    .iter()
                    .any(|i| i.cluster.as_deref() == Some(r.id.as_str()));
            if blocked {
                continue;
            }
            match delete_restored(ctx, &run.namespace, region, r.kind, &r.id).await {
                Ok(()) => {
                    tracing::warn!(resource = %r.id, region = %region, status = %r.status, "deleted a leftover of an earlier drill");
                    leftovers_deleted.push(format!("{} ({region})", r.id));
                }
                Err(e) => extra_failures.push(ItemFailure::new(
                    format!("{} ({region})", r.id),
                    FailureStage::Cleanup,
                    &e,
                )),
            }
        }
    }

    if input.abandon {
        let e = Error::InvalidState {
            resource: "drill".into(),
            message: "the drill run failed before this drill finished; what it restored is deleted"
                .into(),
        };
        for d in drills
            .iter_mut()
            .filter(|d| d.phase == DrillPhase::Restoring)
        {
            d.fail(FailureStage::Restore, &e);
        }
    }

    // The first look: which databases are due, and their restores.
    let started = input
        .execution
        .as_ref()
        .map_or(now, |e| e.start_time)
        .min(now);
    if input.looks == 0 && !input.abandon {
        let mut all_records = Vec::new();
        for region in &run.regions {
            let records = read_records(ctx, records_region, &run.namespace, region).await?;
            all_records.extend(records.iter().cloned());
            let by_hand = !input.databases.is_empty();
            let forced = by_hand || input.force;
            let newest = records.iter().map(|r| r.at).max();
            if !forced && !is_due(newest, run.drills.every.as_signed(), now) {
                tracing::info!(region = %region, last = ?newest, "no drill due");
                not_due.push(region.clone());
                continue;
            }
            let candidates = list_candidates(ctx, run, region).await?;
            let choice = if by_hand {
                DrillDatabases::Named(input.databases.clone())
            } else {
                run.drills.databases.clone()
            };
            let (chosen, missing) =
                choose(&candidates, &records_by_database(&records), &choice, region);
            for name in missing {
                extra_failures.push(ItemFailure::new(
                    format!("{name} ({region})"),
                    FailureStage::Choose,
                    &Error::NotFound {
                        resource: name.clone(),
                        message: format!(
                            "no available copy of `{name}` in {region} to restore: check that a schedule covers it and that its copies reach {region} (`snapcourier report --coverage`)"
                        ),
                    },
                ));
            }
            for c in chosen {
                let resource = drill_resource_id(&run.namespace, &c.database, started, c.engine);
                let mut d = Drill::start(c, resource, now);
                match start_restore(ctx, run, &d).await {
                    Ok(()) => {
                        tracing::info!(database = %d.database, region = %d.region, restored = %d.resource, snapshot = %d.snapshot, "restore started")
                    }
                    Err(e) => d.fail(FailureStage::Restore, &e),
                }
                drills.push(d);
            }
        }
        drill_age_seconds = drill_age(&all_records, now);
    } else {
        // Follow every drill under way.
        for d in drills.iter_mut() {
            if d.phase == DrillPhase::Restoring {
                follow(
                    ctx,
                    input,
                    d,
                    listing.get(&d.region).map_or(&[][..], Vec::as_slice),
                    now,
                )
                .await;
            }
        }
    }

    // Clean up (every look: a drill fails or finishes and is deleted in the same look).
    let mut finished = Vec::new();
    for d in drills
        .iter_mut()
        .filter(|d| d.phase == DrillPhase::Cleaning)
    {
        let restored = listing.get(&d.region).map_or(&[][..], Vec::as_slice);
        if clean(ctx, &run.namespace, d, restored, now).await {
            d.phase = DrillPhase::Done;
            finished.push(d.clone());
        }
    }
    // Record each finished drill: the next drill's choice and the coverage report read it.
    let mut before: BTreeMap<String, BTreeMap<(String, String), DrillRecord>> = BTreeMap::new();
    for d in &finished {
        if !before.contains_key(&d.region) {
            let records = read_records(ctx, records_region, &run.namespace, &d.region).await?;
            before.insert(d.region.clone(), records_by_database(&records));
        }
        let prior = before
            .get(&d.region)
            .and_then(|m| m.get(&(d.region.clone(), d.database.clone())));
        let record = DrillRecord::after(d, prior);
        write_record(ctx, records_region, &run.namespace, &record).await?;
        tracing::info!(
            database = %d.database,
            region = %d.region,
            succeeded = d.succeeded(),
            restore_seconds = ?d.restore_seconds,
            recovery_point_age_seconds = ?d.recovery_point_age_seconds,
            failure = ?d.failure.as_ref().map(|f| format!("{}: {}", f.stage, f.error.message)),
            "drill finished"
        );
    }

    let first = drills.iter().map(|d| d.started_at).min().unwrap_or(now);
    let mut output = DrillOutput::new(
        input.looks.saturating_add(1),
        drills,
        now,
        first,
        &run.settings,
    );
    output.not_due = not_due;
    output.leftovers_deleted = leftovers_deleted;
    for f in &extra_failures {
        tracing::error!(resource = %f.resource, stage = %f.stage, error_type = %f.error.error_type, message = %f.error.message, "item failed");
    }
    output.add_other_failures(input.other_failures.iter().cloned().chain(extra_failures));
    Ok(DrillPass {
        output,
        finished,
        drill_age: drill_age_seconds,
    })
}

/// Whose events explain a failed restore, and which setting sizes what it restores.
fn service_and_size(engine: Engine) -> (&'static str, &'static str) {
    match engine {
        Engine::Aurora => ("RDS", "drills.aurora_instance_class"),
        Engine::Rds => ("RDS", "drills.rds_instance_class"),
        Engine::Redshift => ("Redshift", "the snapshot's node type"),
        Engine::ElastiCache => (
            "ElastiCache",
            "drills.elasticache_node_type (it must hold a shard's data) and that ElastiCache may read the vault's objects",
        ),
    }
}

fn find<'a>(restored: &'a [Restored], id: &str) -> Option<&'a Restored> {
    restored.iter().find(|r| r.id == id)
}

/// A restore under way: available (measure, validate, go on to clean), failed, gone, still
/// coming (past the timeout: failed), or an Aurora cluster that needs its instance.
async fn follow(
    ctx: &AwsContext,
    input: &DrillInput,
    d: &mut Drill,
    restored: &[Restored],
    now: Timestamp,
) {
    let run = &input.run;
    let main = find(restored, &d.resource);
    let instance = match d.engine {
        Engine::Aurora => find(restored, &drill_instance_id(&d.resource)),
        _ => main,
    };
    let Some(main) = main else {
        d.fail(
            FailureStage::Restore,
            &Error::NotFound {
                resource: d.resource.clone(),
                message: format!(
                    "the restored {} is gone before it became available: deleted by someone else, or the restore never started",
                    d.engine.resource_kind()
                ),
            },
        );
        return;
    };
    for r in [Some(main), instance].into_iter().flatten() {
        if r.has_failed() {
            d.fail(
                FailureStage::Restore,
                &Error::InvalidState {
                    resource: r.id.clone(),
                    message: format!(
                        "the restore ended in status `{}`: the copy {} cannot be restored as configured (see the {} events of {}; check drills.networks and {})",
                        r.status,
                        d.snapshot,
                        service_and_size(d.engine).0,
                        r.id,
                        service_and_size(d.engine).1
                    ),
                },
            );
            return;
        }
    }
    if d.engine == Engine::Aurora && instance.is_none() && main.is_available() {
        if let Err(e) = add_aurora_instance(ctx, run, d).await {
            d.fail(FailureStage::Restore, &e);
        }
        return;
    }
    if main.is_available() && instance.is_some_and(Restored::is_available) {
        let endpoint = match d.engine {
            Engine::Aurora => main
                .endpoint
                .clone()
                .or_else(|| instance.and_then(|i| i.endpoint.clone())),
            _ => main.endpoint.clone(),
        };
        let port = main.port.or_else(|| instance.and_then(|i| i.port));
        d.mark_available(now, endpoint);
        tracing::info!(database = %d.database, region = %d.region, restore_seconds = ?d.restore_seconds, "restored database available");
        if let Some(function) = &run.drills.validation_function {
            match validate(ctx, function, &run.namespace, d, port).await {
                Ok(v) if v.ok => d.validation = Some(v.message),
                Ok(v) => {
                    d.validation = Some(v.message.clone());
                    d.fail(
                        FailureStage::Validate,
                        &Error::InvalidState {
                            resource: d.resource.clone(),
                            message: format!(
                                "the validation function rejected the restored database: {}",
                                v.message
                            ),
                        },
                    );
                }
                Err(e) => d.fail(FailureStage::Validate, &e),
            }
        }
        d.phase = DrillPhase::Cleaning;
        return;
    }
    if now.duration_since(d.started_at) >= run.timeout() {
        d.fail(
            FailureStage::Restore,
            &Error::InvalidState {
                resource: d.resource.clone(),
                message: format!(
                    "not available {} after the restore began (status `{}`): past drills.timeout; a restore this slow misses the RTO, or drills.timeout is too short for this database",
                    run.drills.timeout, main.status
                ),
            },
        );
    }
}

/// Delete what a drill restored. True once nothing is left to delete (or the drill gives up:
/// the delete failed, or its grace passed; the next drill cleans up the rest).
async fn clean(
    ctx: &AwsContext,
    namespace: &str,
    d: &mut Drill,
    restored: &[Restored],
    now: Timestamp,
) -> bool {
    let (kind, instance) = match d.engine {
        Engine::Aurora => (
            RestoredKind::AuroraCluster,
            Some(drill_instance_id(&d.resource)),
        ),
        Engine::Rds => (RestoredKind::DbInstance, None),
        Engine::Redshift => (RestoredKind::RedshiftCluster, None),
        Engine::ElastiCache => (RestoredKind::ReplicationGroup, None),
    };
    // The Aurora instance first: RDS refuses to delete a cluster with members.
    if let Some(instance_id) = &instance {
        match find(restored, instance_id) {
            Some(i) if i.is_deleting() => return false,
            Some(_) => {
                if let Err(e) = delete_restored(
                    ctx,
                    namespace,
                    &d.region,
                    RestoredKind::DbInstance,
                    instance_id,
                )
                .await
                {
                    return retry_or_give_up(d, &e, now);
                }
            }
            None => {}
        }
    }
    match find(restored, &d.resource) {
        Some(r) if r.is_deleting() => true,
        None => true,
        Some(_) => match delete_restored(ctx, namespace, &d.region, kind, &d.resource).await {
            Ok(()) => true,
            // Its instance is still being deleted (AWS takes minutes): at a later look.
            Err(Error::InvalidState { .. }) if instance.is_some() && !past_grace(d, now) => false,
            Err(e) => retry_or_give_up(d, &e, now),
        },
    }
}

fn past_grace(d: &Drill, now: Timestamp) -> bool {
    d.available_at
        .unwrap_or(d.started_at)
        .checked_add(CLEANUP_GRACE)
        .is_ok_and(|until| until <= now)
}

/// A delete that failed: a throttled or unavailable call is tried at the next look (within
/// the grace); any other failure is reported, and the next drill deletes the leftover.
fn retry_or_give_up(d: &mut Drill, e: &Error, now: Timestamp) -> bool {
    if e.is_retryable() && !past_grace(d, now) {
        return false;
    }
    tracing::error!(resource = %d.resource, error = %e, "could not delete what the drill restored; the next drill deletes it");
    match d.failure.as_mut() {
        Some(f) => f.error.message.push_str(&format!(
            " (and {} could not be deleted: {e}; the next drill deletes it)",
            d.resource
        )),
        None => d.fail(FailureStage::Delete, e),
    }
    true
}
