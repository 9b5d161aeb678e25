//! `snapcourier snapshot-now` over the emulator: an on-demand snapshot is taken, shared and
//! copied like the scheduled ones, leaves the interval slots and the retention policies alone,
//! and is expired on both sides when its keep ends (at a destination, never before the floor).

mod common;

use common::*;
use jiff::{SignedDuration, Timestamp};
use snapcourier_aws::steps;
use snapcourier_cli::runner::{Quiet, run_destination, run_source};

const KEEP_HOURS: u32 = 48;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_demand_snapshot_is_shared_copied_kept_its_time_and_then_expired() {
    let emu = Emulator::start(Seed::Demo);
    let c = config();
    let run = source_run(&c);
    let src = context(&emu, Side::Source);
    let taken_at = Timestamp::now();

    // Refused before anything is created: a database the schedule does not cover, and one
    // that does not exist.
    emu.reset_requests();
    let err = steps::snapshot_now(&src, &run, "scratch-tmp", KEEP_HOURS, None, taken_at)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "ConfigInvalid");
    assert_eq!(err.problems()[0].field, "--database", "{err}");
    let err = steps::snapshot_now(&src, &run, "no-such-db", KEEP_HOURS, None, taken_at)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "NotFound", "{err}");
    assert!(
        emu.requests().keys().all(|k| !k.contains("Create")),
        "{:?}",
        emu.requests()
    );

    let snapshot = steps::snapshot_now(
        &src,
        &run,
        "orders-db",
        KEEP_HOURS,
        Some("before deploy 42"),
        taken_at,
    )
    .await
    .unwrap();
    let od = snapshot.on_demand().expect("an on-demand id");
    assert_eq!(od.keep_hours, KEEP_HOURS);
    assert!(
        snapshot.id.starts_with("sc-demo-auroradaily-orders-db-od-"),
        "{}",
        snapshot.id
    );
    let seen = snapshots(&emu, Side::Source, SOURCE_REGION).await;
    let ours = seen.iter().find(|s| s.id == snapshot.id).unwrap();
    assert_eq!(ours.tags["snapcourier:label"], "before deploy 42");
    assert_eq!(ours.tags["snapcourier:namespace"], "demo");
    // Taken twice in the same second (a retried command): the same snapshot, no second one.
    let again = steps::snapshot_now(&src, &run, "orders-db", KEEP_HOURS, None, taken_at)
        .await
        .unwrap();
    assert_eq!(again.id, snapshot.id);

    // The scheduled run still takes this slot's snapshot of orders-db, and shares both.
    let report = run_source(&src, &run, Timestamp::now, &Quiet)
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.created.len(), 3, "{:?}", report.created);
    assert!(
        report
            .created
            .iter()
            .any(|id| id.starts_with("sc-demo-auroradaily-orders-db-2"))
    );
    assert_eq!(
        restore_accounts(&emu, &snapshot.id).await,
        [DESTINATION_ACCOUNT.to_string()]
    );

    // The destination accepts it as a real share and copies it into the vault region.
    let dst = context(&emu, Side::Destination);
    let copied = run_destination(&dst, &destination_run(&c), Timestamp::now, &Quiet)
        .await
        .unwrap();
    assert!(copied.failures.is_empty(), "{:?}", copied.failures);
    let vault = snapshots(&emu, Side::Destination, DESTINATION_REGION).await;
    assert!(vault.iter().any(|s| s.id == snapshot.id), "not copied");

    // Source: kept while its keep lasts, whatever keep_last says; then expired.
    let before_end = od.keep_until() - SignedDuration::from_hours(1);
    let kept = steps::delete_source(&src, &run, before_end).await.unwrap();
    assert!(kept.deleted.iter().all(|d| d.snapshot_id != snapshot.id));
    let after_end = od.keep_until() + SignedDuration::from_hours(1);
    let expired = steps::delete_source(&src, &run, after_end).await.unwrap();
    let gone = expired
        .deleted
        .iter()
        .find(|d| d.snapshot_id == snapshot.id)
        .expect("expired at the end of its keep");
    assert!(
        gone.reason.as_str().starts_with("on-demand"),
        "{}",
        gone.reason
    );
    // This slot's scheduled snapshot of orders-db stays (two days old, policy keeps 7).
    let left = snapshots(&emu, Side::Source, SOURCE_REGION).await;
    assert!(
        left.iter()
            .any(|s| s.id.starts_with("sc-demo-auroradaily-orders-db-2"))
    );

    // Destination: the vault's floor (35 days) outlasts the 48 hours asked for.
    let run = destination_run(&c);
    let floor_end = od.taken_at + SignedDuration::from_hours(24 * 35);
    let kept = steps::delete_destination(&dst, &run, after_end)
        .await
        .unwrap();
    assert!(kept.deleted.iter().all(|d| d.snapshot_id != snapshot.id));
    let kept = steps::delete_destination(&dst, &run, floor_end - SignedDuration::from_hours(1))
        .await
        .unwrap();
    assert!(kept.deleted.iter().all(|d| d.snapshot_id != snapshot.id));
    let expired = steps::delete_destination(&dst, &run, floor_end + SignedDuration::from_hours(1))
        .await
        .unwrap();
    assert!(
        expired
            .deleted
            .iter()
            .any(|d| d.snapshot_id == snapshot.id && d.reason.as_str().starts_with("on-demand")),
        "{:?}",
        expired.deleted
    );
}
