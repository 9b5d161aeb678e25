use super::*;
use crate::config::Config;
use crate::tags::{self, OwnershipTags};

const EXAMPLE: &str = include_str!("../../../../examples/snapcourier.yaml");

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn config() -> Config {
    Config::parse(EXAMPLE).unwrap()
}

fn source_run() -> SourceRun {
    SourceRun::from_config(&config(), "aurora-daily").unwrap()
}

fn dest_run() -> DestinationRun {
    DestinationRun::from_config(&config(), "aurora-daily", "222222222222").unwrap()
}

#[test]
fn take_skips_read_replicas_with_the_reason() {
    let run = source_run();
    let filter = ResourceFilter::new(&run.schedule, "schedule").unwrap();
    let mut replica = cluster("orders-replica", "aurora-mysql", "available");
    replica.replica_of = Some("orders-db".into());
    let plan = plan_take(
        &run,
        Engine::Aurora,
        &filter,
        &[replica, cluster("orders-db", "aurora-mysql", "available")],
        &[],
        t("2026-11-22T03:10:00Z"),
    );
    assert_eq!(plan.create.len(), 1);
    assert_eq!(plan.create[0].resource_id, "orders-db");
    assert_eq!(plan.skipped.len(), 1);
    assert_eq!(plan.skipped[0].resource_id, "orders-replica");
    assert!(plan.skipped[0].reason.contains("read replica of orders-db"));
}

fn cluster(id: &str, engine: &str, status: &str) -> ResourceRecord {
    ResourceRecord {
        id: id.into(),
        arn: format!("arn:aws:rds:us-east-1:111111111111:cluster:{id}"),
        engine: engine.into(),
        status: status.into(),
        tags: BTreeMap::new(),
        replica_of: None,
        kms_key_id: None,
    }
}

fn snap(
    account: &str,
    id: &str,
    resource: &str,
    created: &str,
    status: &str,
    stage: Option<Stage>,
) -> SnapshotRecord {
    let tags = stage
        .map(|stage| {
            OwnershipTags {
                namespace: "demo".into(),
                schedule: "aurora-daily".into(),
                stage,
                resource: resource.into(),
                source_arn: "arn:x".into(),
                source_created: None,
            }
            .to_map()
        })
        .unwrap_or_default();
    SnapshotRecord {
        id: id.into(),
        arn: format!("arn:aws:rds:us-east-1:{account}:cluster-snapshot:{id}"),
        owner_account: account.into(),
        resource_id: resource.into(),
        status: SnapshotStatus::from_api(status),
        created: Some(t(created)),
        encrypted: true,
        kms_key_id: None,
        tags,
        option_group: None,
        restore_accounts: None,
        source_region: None,
        engine: None,
    }
}

#[test]
fn take_creates_one_snapshot_per_due_cluster_with_the_slot_id() {
    let run = source_run();
    let filter = ResourceFilter::new(&run.schedule, "schedule").unwrap();
    let resources = vec![
        cluster("orders-db", "aurora-postgresql", "available"),
        cluster("billing-db", "aurora-mysql", "available"),
        cluster("analytics-db", "aurora-postgresql", "stopped"),
        cluster("scratch-tmp", "aurora-mysql", "available"),
        cluster("orders-graph", "neptune", "available"),
    ];
    let snapshots = vec![
        // billing-db already has one in today's slot
        snap(
            "111111111111",
            "sc-demo-auroradaily-billing-db-20261122-0000",
            "billing-db",
            "2026-11-22T03:00:00Z",
            "available",
            Some(Stage::Source),
        ),
        // orders-db has yesterday's, and an unowned one from today that does not count
        snap(
            "111111111111",
            "sc-demo-auroradaily-orders-db-20261121-0000",
            "orders-db",
            "2026-11-21T03:00:00Z",
            "available",
            Some(Stage::Source),
        ),
        snap(
            "111111111111",
            "manual-orders",
            "orders-db",
            "2026-11-22T02:00:00Z",
            "available",
            None,
        ),
    ];
    let plan = plan_take(
        &run,
        Engine::Aurora,
        &filter,
        &resources,
        &snapshots,
        t("2026-11-22T03:10:00Z"),
    );
    assert_eq!(
        plan.create,
        vec![PlannedSnapshot {
            resource_id: "orders-db".into(),
            resource_arn: "arn:aws:rds:us-east-1:111111111111:cluster:orders-db".into(),
            snapshot_id: "sc-demo-auroradaily-orders-db-20261122-0000".into(),
            kms_key_id: None,
        }]
    );
    assert_eq!(plan.skipped.len(), 1);
    assert_eq!(plan.skipped[0].resource_id, "analytics-db");
    assert!(plan.skipped[0].reason.contains("stopped"));
    // Both owned snapshots lack the shared-with marker, so both are followed; the unowned is not.
    let followed: Vec<_> = plan.follow.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        followed,
        vec![
            "sc-demo-auroradaily-billing-db-20261122-0000",
            "sc-demo-auroradaily-orders-db-20261121-0000"
        ]
    );
}

#[test]
fn take_does_not_follow_snapshots_already_shared_with_every_destination() {
    let run = source_run();
    let filter = ResourceFilter::new(&run.schedule, "schedule").unwrap();
    let mut s = snap(
        "111111111111",
        "sc-demo-auroradaily-orders-db-20261122-0000",
        "orders-db",
        "2026-11-22T01:00:00Z",
        "available",
        Some(Stage::Source),
    );
    s.tags
        .insert(tags::SHARED_WITH.into(), "222222222222".into());
    let plan = plan_take(
        &run,
        Engine::Aurora,
        &filter,
        &[cluster("orders-db", "aurora-postgresql", "available")],
        &[s],
        t("2026-11-22T03:10:00Z"),
    );
    assert!(plan.create.is_empty());
    assert!(plan.follow.is_empty());
}

#[test]
fn a_failed_snapshot_does_not_count_as_this_slots_snapshot() {
    let run = source_run();
    let filter = ResourceFilter::new(&run.schedule, "schedule").unwrap();
    let s = snap(
        "111111111111",
        "sc-demo-auroradaily-orders-db-20261122-0000",
        "orders-db",
        "2026-11-22T01:00:00Z",
        "failed",
        Some(Stage::Source),
    );
    let plan = plan_take(
        &run,
        Engine::Aurora,
        &filter,
        &[cluster("orders-db", "aurora-postgresql", "available")],
        &[s],
        t("2026-11-22T03:10:00Z"),
    );
    // The slot id is the same, so the create finds "already exists": the step reports it.
    assert_eq!(plan.create.len(), 1);
    assert!(plan.follow.is_empty());
}

fn shared(id: &str, resource: &str, created: &str) -> SnapshotRecord {
    let mut s = snap("111111111111", id, resource, created, "available", None);
    s.id = id.into();
    s
}

fn started_ids(plan: &CopyPassPlan, region: &str) -> Vec<String> {
    plan.start
        .iter()
        .filter(|c| c.region == region)
        .map(|c| c.snapshot_id.clone())
        .collect()
}

fn waiting_ids(plan: &CopyPassPlan) -> Vec<String> {
    plan.waiting.iter().map(|p| p.snapshot_id.clone()).collect()
}

#[test]
fn a_look_starts_copies_within_the_copy_limit_and_the_rest_wait() {
    let run = dest_run();
    let filter = ResourceFilter::new(&run.schedule, "schedule").unwrap();
    let id = |d: u32| format!("sc-demo-auroradaily-orders-db-202611{d:02}-0000");
    let shared: Vec<_> = (1..=7)
        .map(|d| shared(&id(d), "orders-db", &format!("2026-11-{d:02}T03:00:00Z")))
        .collect();
    let mut local = BTreeMap::new();
    // One copy already in flight in the source region holds one of the five slots.
    local.insert(
        "us-east-1".to_string(),
        vec![snap(
            "222222222222",
            &id(7),
            "orders-db",
            "2026-11-22T01:00:00Z",
            "creating",
            Some(Stage::Intermediate),
        )],
    );
    let plan = plan_copy_pass(&run, &filter, &shared, &local, 5, t("2026-11-22T03:10:00Z"));
    assert_eq!(plan.due, 7);
    assert_eq!(plan.in_flight.len(), 1);
    assert_eq!(plan.in_flight[0].snapshot_id, id(7));
    // One database: its newest shares first.
    assert_eq!(
        started_ids(&plan, "us-east-1"),
        vec![id(6), id(5), id(4), id(3)]
    );
    assert!(plan.start.iter().all(|c| c.copy_in));
    assert_eq!(waiting_ids(&plan), vec![id(2), id(1)]);
    assert!(plan.waiting.iter().all(|p| p.status == WAITING_FOR_A_SLOT));
}

#[test]
fn databases_never_copied_go_first_one_share_per_database_per_round() {
    let run = dest_run();
    let filter = ResourceFilter::new(&run.schedule, "schedule").unwrap();
    let id = |db: &str, d: u32| format!("sc-demo-auroradaily-{db}-202611{d:02}-0000");
    let mut shared_list = Vec::new();
    // orders-db has a backlog of three days and a copy protected in every region from day
    // 10; billing-db and analytics-db have never been copied (ties go by name).
    for d in 18..=20 {
        shared_list.push(shared(
            &id("orders-db", d),
            "orders-db",
            &format!("2026-11-{d:02}T03:00:00Z"),
        ));
    }
    shared_list.push(shared(
        &id("orders-db", 10),
        "orders-db",
        "2026-11-10T03:00:00Z",
    ));
    for db in ["billing-db", "analytics-db"] {
        for d in 19..=20 {
            shared_list.push(shared(&id(db, d), db, &format!("2026-11-{d:02}T03:00:00Z")));
        }
    }
    let mut local = BTreeMap::new();
    local.insert(
        "eu-west-1".to_string(),
        vec![snap(
            "222222222222",
            &id("orders-db", 10),
            "orders-db",
            "2026-11-10T05:00:00Z",
            "available",
            Some(Stage::Destination),
        )],
    );
    let plan = plan_copy_pass(
        &run,
        &filter,
        &shared_list,
        &local,
        5,
        t("2026-11-20T04:00:00Z"),
    );
    assert_eq!(plan.done, vec![id("orders-db", 10)]);
    // Round 1: each database's newest share, never-copied databases first; round 2 the next.
    assert_eq!(
        started_ids(&plan, "us-east-1"),
        vec![
            id("analytics-db", 20),
            id("billing-db", 20),
            id("orders-db", 20),
            id("analytics-db", 19),
            id("billing-db", 19),
        ]
    );
    assert_eq!(
        waiting_ids(&plan),
        vec![id("orders-db", 19), id("orders-db", 18)]
    );
}

#[test]
fn regional_copies_start_from_available_copies_as_slots_there_free_up() {
    let run = dest_run();
    let filter = ResourceFilter::new(&run.schedule, "schedule").unwrap();
    let id = |d: u32| format!("sc-demo-auroradaily-orders-db-202611{d:02}-0000");
    let shared: Vec<_> = (1..=9)
        .map(|d| shared(&id(d), "orders-db", &format!("2026-11-{d:02}T03:00:00Z")))
        .collect();
    let mut local = BTreeMap::new();
    // Days 8 and 9 are in this account's source region; days 5-7 are being copied into
    // eu-west-1 (three of its five slots); day 4 is done.
    local.insert(
        "us-east-1".to_string(),
        [8, 9]
            .into_iter()
            .map(|d| {
                snap(
                    "222222222222",
                    &id(d),
                    "orders-db",
                    "2026-11-22T01:00:00Z",
                    "available",
                    Some(Stage::Intermediate),
                )
            })
            .collect(),
    );
    let mut regional: Vec<_> = (5..=7)
        .map(|d| {
            snap(
                "222222222222",
                &id(d),
                "orders-db",
                "2026-11-22T01:00:00Z",
                "copying",
                Some(Stage::Destination),
            )
        })
        .collect();
    regional.push(snap(
        "222222222222",
        &id(4),
        "orders-db",
        "2026-11-22T01:00:00Z",
        "available",
        Some(Stage::Destination),
    ));
    local.insert("eu-west-1".to_string(), regional);
    let plan = plan_copy_pass(&run, &filter, &shared, &local, 5, t("2026-11-22T03:10:00Z"));
    assert_eq!(plan.done, vec![id(4)]);
    assert_eq!(started_ids(&plan, "eu-west-1"), vec![id(9), id(8)]);
    let from_local = plan.start.iter().find(|c| c.region == "eu-west-1").unwrap();
    assert!(!from_local.copy_in);
    assert!(
        from_local.from_arn.contains(":222222222222:"),
        "copies from our own copy"
    );
    assert_eq!(from_local.source_arn, shared[8].arn, "tags name the share");
    // The source region's five slots are free: the oldest three copy in now.
    assert_eq!(started_ids(&plan, "us-east-1"), vec![id(3), id(2), id(1)]);
    assert_eq!(plan.in_flight.len(), 3);
    assert!(plan.waiting.is_empty());

    // With eu-west-1 full, the regional copies wait; copy-ins do not wait for them.
    let full: Vec<_> = (10..=14)
        .map(|d| {
            snap(
                "222222222222",
                &format!("sc-demo-rdsdaily-x-202611{d:02}-0000"),
                "x",
                "2026-11-22T01:00:00Z",
                "copying",
                Some(Stage::Destination),
            )
        })
        .collect();
    let mut other_schedule = full;
    for s in &mut other_schedule {
        s.tags.insert(tags::SCHEDULE.into(), "rds-daily".into());
    }
    local.get_mut("eu-west-1").unwrap().extend(other_schedule);
    let plan = plan_copy_pass(&run, &filter, &shared, &local, 5, t("2026-11-22T03:10:00Z"));
    assert!(started_ids(&plan, "eu-west-1").is_empty());
    assert_eq!(waiting_ids(&plan), vec![id(9), id(8)]);
    assert_eq!(started_ids(&plan, "us-east-1").len(), 3);
}

#[test]
fn a_look_skips_what_is_done_foreign_or_too_old_and_reports_ids_held_by_others() {
    let mut run = dest_run();
    run.destination.retention = crate::retention::RetentionPolicy {
        days: Some(10),
        keep_last: 1,
        tiers: None,
    };
    let filter = ResourceFilter::new(&run.schedule, "schedule").unwrap();
    let mut foreign = shared(
        "sc-demo-auroradaily-orders-db-20261121-0000",
        "orders-db",
        "2026-11-21T03:00:00Z",
    );
    foreign.arn =
        "arn:aws:rds:us-east-1:999999999999:cluster-snapshot:sc-demo-auroradaily-orders-db-20261121-0000"
            .into();
    let shared = vec![
        shared(
            "sc-demo-auroradaily-orders-db-20261122-0000",
            "orders-db",
            "2026-11-22T03:00:00Z",
        ), // done
        foreign,
        shared(
            "sc-other-orders-db-20261122-0000",
            "orders-db",
            "2026-11-22T03:00:00Z",
        ), // other namespace
        shared(
            "sc-demo-auroradaily-scratch-tmp-20261122-0000",
            "scratch-tmp",
            "2026-11-22T03:00:00Z",
        ), // excluded
        shared(
            "sc-demo-auroradaily-orders-db-20261001-0000",
            "orders-db",
            "2026-10-01T03:00:00Z",
        ), // too old
        shared(
            "sc-demo-auroradaily-analytics-db-20261122-0000",
            "analytics-db",
            "2026-11-22T03:00:00Z",
        ), // its id is taken in the source region by a snapshot not ours
    ];
    let mut local = BTreeMap::new();
    local.insert(
        "eu-west-1".to_string(),
        vec![snap(
            "222222222222",
            "sc-demo-auroradaily-orders-db-20261122-0000",
            "orders-db",
            "2026-11-22T04:00:00Z",
            "available",
            Some(Stage::Destination),
        )],
    );
    local.insert(
        "us-east-1".to_string(),
        vec![snap(
            "222222222222",
            "sc-demo-auroradaily-analytics-db-20261122-0000",
            "analytics-db",
            "2026-11-22T04:00:00Z",
            "available",
            None,
        )],
    );
    let plan = plan_copy_pass(&run, &filter, &shared, &local, 5, t("2026-11-22T05:00:00Z"));
    assert!(plan.start.is_empty(), "{:?}", plan.start);
    assert!(plan.in_flight.is_empty());
    assert_eq!(
        plan.done,
        vec!["sc-demo-auroradaily-orders-db-20261122-0000"]
    );
    assert_eq!(
        plan.too_old,
        vec!["sc-demo-auroradaily-orders-db-20261001-0000"]
    );
    assert_eq!(plan.unusable.len(), 1);
    assert_eq!(
        plan.unusable[0].snapshot_id,
        "sc-demo-auroradaily-analytics-db-20261122-0000"
    );
    assert_eq!(plan.unusable[0].status, NOT_OURS);
}

#[test]
fn intermediates_go_only_when_every_regional_copy_is_available() {
    let run = dest_run();
    let id = "sc-demo-auroradaily-orders-db-20261122-0000";
    let mut local = BTreeMap::new();
    local.insert(
        "us-east-1".to_string(),
        vec![snap(
            "222222222222",
            id,
            "orders-db",
            "2026-11-22T04:00:00Z",
            "available",
            Some(Stage::Intermediate),
        )],
    );
    local.insert(
        "eu-west-1".to_string(),
        vec![snap(
            "222222222222",
            id,
            "orders-db",
            "2026-11-22T04:30:00Z",
            "creating",
            Some(Stage::Destination),
        )],
    );
    assert!(finished_intermediates(&run, &local).is_empty());
    local.get_mut("eu-west-1").unwrap()[0].status = SnapshotStatus::Available;
    let done = finished_intermediates(&run, &local);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, id);
}

#[test]
fn an_on_demand_share_is_real_only_with_its_databases_id_and_a_creation_time_right_after_it() {
    let run = dest_run();
    let at = t("2026-11-21T14:03:27Z");
    let id = crate::naming::on_demand_id("demo", "aurora-daily", "orders-db", at, 48);
    // Created a few seconds after the second its id names: real.
    assert_eq!(
        real_share_problem(&run, &shared(&id, "orders-db", "2026-11-21T14:03:29Z")),
        None
    );
    // Created an hour later, or before it: not snapcourier's.
    let late = real_share_problem(&run, &shared(&id, "orders-db", "2026-11-21T15:03:29Z"));
    assert!(late.unwrap().contains("AWS says it was created at"));
    assert!(real_share_problem(&run, &shared(&id, "orders-db", "2026-11-21T14:03:00Z")).is_some());
    // The id of another database.
    let other = real_share_problem(&run, &shared(&id, "billing-db", "2026-11-21T14:03:29Z"));
    assert!(other.unwrap().contains("not that database's"));
}

#[test]
fn on_demand_snapshots_fill_no_slot_and_no_policy_and_expire_at_their_keep() {
    let run = source_run();
    let now = t("2026-11-22T12:00:00Z");
    let taken = now - SignedDuration::from_hours(1);
    let od = crate::naming::on_demand_id("demo", "aurora-daily", "orders-db", taken, 48);
    let snapshots = vec![snap(
        "111111111111",
        &od,
        "orders-db",
        &taken.to_string(),
        "available",
        Some(Stage::Source),
    )];
    // Retention's policies do not see it.
    assert!(
        retention_candidates(&snapshots, "demo", "aurora-daily", Stage::Source, now).is_empty()
    );
    // Its keep: 48 hours from when it was taken.
    assert!(
        on_demand_expired(&snapshots, "demo", "aurora-daily", Stage::Source, None, now).is_empty()
    );
    let later = taken + SignedDuration::from_hours(48);
    let expired = on_demand_expired(
        &snapshots,
        "demo",
        "aurora-daily",
        Stage::Source,
        None,
        later,
    );
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].0, od);
    // With a floor of 35 days, not before then.
    assert!(
        on_demand_expired(
            &snapshots,
            "demo",
            "aurora-daily",
            Stage::Source,
            Some(35),
            later
        )
        .is_empty()
    );
    // And the take still snapshots orders-db in this slot.
    let resources = vec![cluster("orders-db", "aurora-postgresql", "available")];
    let filter = ResourceFilter::new(&run.schedule, "schedule").unwrap();
    let plan = plan_take(&run, Engine::Aurora, &filter, &resources, &snapshots, now);
    assert_eq!(plan.create.len(), 1, "{plan:?}");
}
