//! `snapcourier plan` over the emulator: a plan sends no request that changes anything, and
//! the run that follows does exactly what the plan said (takes, shares, copies, what waits for
//! a copy slot, deletions).

mod common;

use std::collections::BTreeSet;

use common::*;
use jiff::{SignedDuration, Timestamp};
use snapcourier_aws::withhold::reads_only;
use snapcourier_cli::plan::{PlanReport, plan_destination, plan_source};
use snapcourier_cli::runner::{Quiet, run_destination, run_source};
use snapcourier_core::retention::RetentionPolicy;

/// Every request the emulator saw since the last reset only read.
fn only_reads(emu: &Emulator) {
    let requests = emu.requests();
    assert!(!requests.is_empty(), "the plan looked at nothing");
    for action in requests.keys() {
        let name = action.split(':').next_back().unwrap_or_default();
        assert!(reads_only(name), "a plan sent {action}: {requests:?}");
    }
}

fn targets(plan: &PlanReport, step: &str, actions: &[&str]) -> BTreeSet<String> {
    plan.changes_of(step, actions)
        .filter_map(|c| c.call.target.clone())
        .collect()
}

fn ids(list: &[Seen]) -> BTreeSet<String> {
    list.iter().map(|s| s.id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_plan_changes_nothing_and_the_run_does_what_it_said() {
    let emu = Emulator::start(Seed::Demo);
    let c = config();
    let run = source_run(&c);
    // orders-db: five older snapshots, shared; with the snapshot this run takes, retention
    // (7 days, keep 3) keeps the new one and the two newest: three go. Counting only what
    // exists now, two would go: the plan must count the run's own snapshot.
    let mut seeds: Vec<_> = (8..=12)
        .map(|d| {
            let mut s = owned_snapshot(
                SOURCE_ACCOUNT,
                SOURCE_REGION,
                &format!("sc-demo-auroradaily-orders-db-d{d}"),
                "orders-db",
                days_ago(d, 0),
                "source",
                &[("snapcourier:shared-with", DESTINATION_ACCOUNT)],
            );
            s["shared_with"] = serde_json::json!([DESTINATION_ACCOUNT]);
            s
        })
        .collect();
    // billing-db: yesterday's snapshot, never shared.
    seeds.push(owned_snapshot(
        SOURCE_ACCOUNT,
        SOURCE_REGION,
        "sc-demo-auroradaily-billing-db-yesterday",
        "billing-db",
        days_ago(1, 0),
        "source",
        &[],
    ));
    emu.insert_snapshots(&seeds);
    let before = snapshots(&emu, Side::Source, SOURCE_REGION).await;

    emu.reset_requests();
    let ctx = context(&emu, Side::Source).with_withheld_mutations();
    let plan = plan_source(&ctx, &run, Timestamp::now()).await.unwrap();
    only_reads(&emu);
    let after_plan = snapshots(&emu, Side::Source, SOURCE_REGION).await;
    assert_eq!(ids(&after_plan), ids(&before));
    assert!(
        restore_accounts(&emu, "sc-demo-auroradaily-billing-db-yesterday")
            .await
            .is_empty()
    );
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);

    let takes = targets(&plan, "take", &["CreateDBClusterSnapshot"]);
    assert!(!takes.is_empty(), "{plan:?}");
    assert_eq!(
        plan.shared_once_available
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
        takes
    );
    assert_eq!(
        targets(&plan, "share", &["ModifyDBClusterSnapshotAttribute"]),
        ["sc-demo-auroradaily-billing-db-yesterday".to_string()].into()
    );
    let expires = targets(&plan, "expire", &["DeleteDBClusterSnapshot"]);
    assert_eq!(
        expires,
        (10..=12)
            .map(|d| format!("sc-demo-auroradaily-orders-db-d{d}"))
            .collect()
    );
    let printed = snapcourier_cli::output::render_plan(&plan);
    assert!(printed.contains("nothing was changed"), "{printed}");
    assert!(printed.contains("CreateDBClusterSnapshot"), "{printed}");

    // The run right after does exactly that.
    let report = run_source(&context(&emu, Side::Source), &run, Timestamp::now, &Quiet)
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        report.created.iter().cloned().collect::<BTreeSet<_>>(),
        takes
    );
    let deleted: BTreeSet<String> = report
        .deleted
        .iter()
        .map(|d| d.snapshot_id.clone())
        .collect();
    assert_eq!(deleted, expires);
    for id in takes
        .iter()
        .chain(["sc-demo-auroradaily-billing-db-yesterday".to_string()].iter())
    {
        assert_eq!(
            restore_accounts(&emu, id).await,
            [DESTINATION_ACCOUNT.to_string()],
            "{id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_plan_changes_nothing_and_the_run_does_what_it_said() {
    let emu = Emulator::start(Seed::Empty);
    let mut c = config();
    // Keep two copies past 35 days: the old copies of orders-db0 below are expired one more when
    // the run's own new copy counts.
    c.destinations[0].retention = RetentionPolicy {
        days: Some(35),
        keep_last: 2,
        tiers: None,
    };
    let run = snapcourier_core::events::DestinationRun::from_config(
        &c,
        "aurora-daily",
        DESTINATION_ACCOUNT,
    )
    .unwrap();
    // Seven real shares (five Aurora copy slots per region: two wait), each named for the
    // slot it was created in, as the source does.
    // One base instant: ids computed at different moments must not straddle a slot boundary.
    let base = days_ago(1, 0);
    let created = |i: usize| base - SignedDuration::from_mins(i as i64);
    let share_id = |i: usize| slot_id("aurora-daily", &format!("orders-db{i}"), created(i));
    let shares: Vec<_> = (0..7)
        .map(|i| {
            let mut s = owned_snapshot(
                SOURCE_ACCOUNT,
                SOURCE_REGION,
                &share_id(i),
                &format!("orders-db{i}"),
                created(i),
                "source",
                &[("snapcourier:shared-with", DESTINATION_ACCOUNT)],
            );
            s["shared_with"] = serde_json::json!([DESTINATION_ACCOUNT]);
            s
        })
        .collect();
    emu.insert_snapshots(&shares);
    // orders-db0's copies in the vault region, 40 to 43 days old.
    let old: Vec<_> = (40..=43)
        .map(|d| {
            let at = days_ago(d, 0);
            owned_snapshot(
                DESTINATION_ACCOUNT,
                DESTINATION_REGION,
                &format!("sc-demo-auroradaily-orders-db0-d{d}"),
                "orders-db0",
                at,
                "destination",
                &[("snapcourier:source-created", &at.to_string())],
            )
        })
        .collect();
    emu.insert_snapshots(&old);
    let before_src = snapshots(&emu, Side::Destination, SOURCE_REGION).await;
    let before_dst = snapshots(&emu, Side::Destination, DESTINATION_REGION).await;

    emu.reset_requests();
    let ctx = context(&emu, Side::Destination).with_withheld_mutations();
    let plan = plan_destination(&ctx, &run, Timestamp::now())
        .await
        .unwrap();
    only_reads(&emu);
    assert_eq!(
        ids(&snapshots(&emu, Side::Destination, SOURCE_REGION).await),
        ids(&before_src)
    );
    assert_eq!(
        ids(&snapshots(&emu, Side::Destination, DESTINATION_REGION).await),
        ids(&before_dst)
    );
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);

    // Five copy-ins now (the slots), two waiting.
    let copy_ins = targets(&plan, "copy-in", &["CopyDBClusterSnapshot"]);
    assert_eq!(copy_ins.len(), 5, "{plan:?}");
    let waiting: BTreeSet<String> = plan
        .waiting_for_a_slot
        .iter()
        .map(|w| w.snapshot_id.clone())
        .collect();
    assert_eq!(waiting.len(), 2, "{plan:?}");
    assert_eq!(
        copy_ins.union(&waiting).cloned().collect::<BTreeSet<_>>(),
        (0..7).map(share_id).collect()
    );
    // Each from the source account's share of the same id (unencrypted Aurora: no key, RDS
    // cannot encrypt a cluster snapshot by copying it).
    for change in plan.changes_of("copy-in", &["CopyDBClusterSnapshot"]) {
        let detail = change.call.detail.as_deref().unwrap_or_default();
        let id = change.call.target.as_deref().unwrap_or_default();
        assert_eq!(
            detail,
            format!("from arn:aws:rds:{SOURCE_REGION}:{SOURCE_ACCOUNT}:cluster-snapshot:{id}")
        );
        assert_eq!(change.call.region, SOURCE_REGION);
    }
    // orders-db0 keeps its new copy and the newest old one: three old copies go, not two.
    let expires = targets(&plan, "expire", &["DeleteDBClusterSnapshot"]);
    assert_eq!(
        expires,
        (41..=43)
            .map(|d| format!("sc-demo-auroradaily-orders-db0-d{d}"))
            .collect()
    );

    // The run right after: every share copied into the vault region, and the same expiry.
    let report = run_destination(
        &context(&emu, Side::Destination),
        &run,
        Timestamp::now,
        &Quiet,
    )
    .await
    .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let vault = ids(&snapshots(&emu, Side::Destination, DESTINATION_REGION).await);
    for id in copy_ins.union(&waiting) {
        assert!(vault.contains(id), "{id} was planned but not copied");
    }
    let expired: BTreeSet<String> = report
        .deleted
        .iter()
        .filter(|d| d.reason == "expired")
        .map(|d| d.snapshot_id.clone())
        .collect();
    assert_eq!(expired, expires);
}

/// A plan checks the manual snapshot quotas before they bite: what the retention policies
/// keep in steady state, plus everyone else's snapshots, against the quota of each region.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_whose_steady_state_exceeds_a_quota_says_which_setting_to_change() {
    use snapcourier_cli::capacity::{destination_capacity, source_capacity};
    let emu = Emulator::start(Seed::Demo);
    let c = config();
    let ctx = context(&emu, Side::Source).with_withheld_mutations();
    let plan = plan_source(&ctx, &source_run(&c), Timestamp::now())
        .await
        .unwrap();
    // aurora-daily covers three clusters, each kept 7 days at one a day.
    assert_eq!(plan.covered, 3);
    let covered = [("aurora-daily".to_string(), plan.covered)].into();
    let check = |quota: i64| {
        emu.configure(serde_json::json!({"manual_snapshot_quotas": {
            "ManualClusterSnapshots": quota, "ManualSnapshots": 100000}}));
        source_capacity(&ctx, &c, &covered)
    };
    let fits = check(100_000).await.unwrap();
    let aurora = fits
        .quotas
        .iter()
        .find(|q| q.quota == "ManualClusterSnapshots")
        .unwrap()
        .clone();
    assert_eq!(aurora.region, SOURCE_REGION);
    assert_eq!(aurora.steady_state, 21);
    assert_eq!(aurora.needed, aurora.used - aurora.ours + 21);
    assert!(!fits.over_quota());

    let tight = check(aurora.needed).await.unwrap();
    assert!(!tight.over_quota(), "{tight:?}");
    let over = check(aurora.needed - 1).await.unwrap();
    assert!(over.over_quota(), "{over:?}");
    let q = over.quotas.iter().find(|q| q.over).unwrap();
    assert_eq!(q.settings, ["schedules[0].retention"]);
    let printed = snapcourier_cli::output::render_capacity(&over);
    assert!(
        printed.contains("OVER: lower schedules[0].retention"),
        "{printed}"
    );

    // A destination: its retention in every region it keeps copies in, the copy slots' worth
    // passing through the source region, and the copies a day against the slots.
    let dst = context(&emu, Side::Destination).with_withheld_mutations();
    let covered = [("aurora-daily".to_string(), 3)].into();
    emu.configure(serde_json::json!({"manual_snapshot_quotas": {
        "ManualClusterSnapshots": 100000, "ManualSnapshots": 100000}}));
    let capacity = destination_capacity(&dst, &c, DESTINATION_ACCOUNT, &covered)
        .await
        .unwrap();
    let steady = snapcourier_core::retention::steady_state(
        &c.destinations[0].retention,
        SignedDuration::from_hours(24),
    );
    let vault = capacity
        .quotas
        .iter()
        .find(|q| q.region == DESTINATION_REGION && q.quota == "ManualClusterSnapshots")
        .unwrap();
    assert_eq!(vault.steady_state, 3 * i64::from(steady));
    assert_eq!(vault.settings, ["destinations[0].retention"]);
    let passing = capacity
        .quotas
        .iter()
        .find(|q| q.region == SOURCE_REGION && q.quota == "ManualClusterSnapshots")
        .unwrap();
    assert_eq!(passing.steady_state, 5);
    let copies: Vec<_> = capacity
        .copies
        .iter()
        .filter(|k| k.engine == snapcourier_core::Engine::Aurora)
        .collect();
    assert_eq!(copies.len(), 2);
    assert!(
        copies
            .iter()
            .all(|k| k.copies_per_day == 3 && k.slots == 5 && !k.over)
    );
    // Nothing was changed to find any of it.
    for action in emu.requests().keys() {
        let name = action.split(':').next_back().unwrap_or_default();
        assert!(reads_only(name), "{action}");
    }
}
