//! The steps over the emulator, on their failure paths and when runs overlap: what is
//! reported, and that nothing foreign is touched and nothing is duplicated.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use snapcourier_aws::adapter::SnapshotApi;
use snapcourier_aws::aurora::Aurora;
use snapcourier_aws::{AwsContext, ClientOptions, steps};
use snapcourier_core::Config;
use snapcourier_core::events::{DestinationRun, Look, SourceRun};
use snapcourier_core::interval::slot_start;
use snapcourier_core::naming::snapshot_id;
use snapcourier_emulator::{
    DESTINATION_ACCOUNT, DESTINATION_REGION, Emulator, SOURCE_ACCOUNT, SOURCE_REGION, Seed, Side,
    days_ago, owned_snapshot,
};

const EXAMPLE: &str = include_str!("../../../examples/snapcourier.yaml");

fn config() -> Config {
    Config::parse(EXAMPLE).unwrap()
}

fn source_run() -> SourceRun {
    SourceRun::from_config(&config(), "aurora-daily").unwrap()
}

fn destination_run() -> DestinationRun {
    DestinationRun::from_config(&config(), "aurora-daily", DESTINATION_ACCOUNT).unwrap()
}

fn context(emu: &Emulator, side: Side) -> AwsContext {
    AwsContext::new(
        &emu.sdk_config(side),
        ClientOptions {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
        },
    )
}

fn slot_id(resource: &str, now: Timestamp) -> String {
    snapshot_id(
        "demo",
        "aurora-daily",
        resource,
        slot_start(now, source_run().schedule.interval.as_signed()),
    )
}

async fn tags_of(ctx: &AwsContext, region: &str, id: &str) -> Option<BTreeMap<String, String>> {
    Aurora
        .find_snapshot(ctx, region, id)
        .await
        .unwrap()
        .map(|s| s.tags)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_id_held_by_a_foreign_snapshot_is_reported_and_left_alone() {
    let emu = Emulator::start(Seed::Demo);
    let now = Timestamp::now();
    let id = slot_id("orders-db", now);
    let mut foreign = owned_snapshot(
        SOURCE_ACCOUNT,
        SOURCE_REGION,
        &id,
        "orders-db",
        days_ago(0, 0),
        "source",
        &[],
    );
    foreign["tags"] = serde_json::json!([{"Key": "team", "Value": "dba"}]);
    emu.insert_snapshots(&[foreign]);
    let ctx = context(&emu, Side::Source);

    let out = steps::take(&ctx, &source_run(), None, now).await.unwrap();
    let item = out
        .items
        .iter()
        .find(|i| i.resource_id == "orders-db")
        .unwrap();
    let error = item.error.as_ref().expect("reported");
    assert_eq!(error.error_type, "InvalidState");
    assert!(
        error.message.contains("will not touch it"),
        "{}",
        error.message
    );
    // The other clusters were snapshotted; the foreign snapshot is unchanged and unshared.
    assert_eq!(out.created.len(), 2);
    let tags = tags_of(&ctx, SOURCE_REGION, &id).await.unwrap();
    assert_eq!(
        tags,
        BTreeMap::from([("team".to_string(), "dba".to_string())])
    );
    // A share look never picks it up: it does not carry our tags.
    let look = steps::share(&ctx, &source_run(), &Look::first(now), now)
        .await
        .unwrap();
    assert!(
        look.shared
            .iter()
            .chain(&look.pending)
            .all(|i| i.snapshot_id != id),
        "{look:?}"
    );
    assert!(look.failures.is_empty(), "{look:?}");
    assert!(
        Aurora
            .restore_accounts(&ctx, SOURCE_REGION, &id)
            .await
            .unwrap()
            .is_empty()
    );
    // And retention never selects it.
    steps::delete_source(
        &ctx,
        &source_run(),
        now + jiff::SignedDuration::from_hours(24 * 400),
    )
    .await
    .unwrap();
    assert!(tags_of(&ctx, SOURCE_REGION, &id).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_look_shares_only_this_schedule_and_a_second_look_only_lists() {
    let emu = Emulator::start(Seed::Empty);
    let ctx = context(&emu, Side::Source);
    let run = source_run();
    let ours = owned_snapshot(
        SOURCE_ACCOUNT,
        SOURCE_REGION,
        "sc-demo-auroradaily-orders-db-20261122-0000",
        "orders-db",
        days_ago(0, 1),
        "source",
        &[],
    );
    let retag = |s: &mut serde_json::Value, key: &str, value: &str| {
        for tag in s["tags"].as_array_mut().unwrap() {
            if tag["Key"] == key {
                tag["Value"] = value.into();
            }
        }
    };
    let mut other_schedule = owned_snapshot(
        SOURCE_ACCOUNT,
        SOURCE_REGION,
        "sc-demo-aurorahourly-orders-db-20261122-0000",
        "orders-db",
        days_ago(0, 1),
        "source",
        &[],
    );
    retag(&mut other_schedule, "snapcourier:schedule", "aurora-hourly");
    let mut other_namespace = ours.clone();
    other_namespace["id"] = "sc-prod-auroradaily-orders-db-20261122-0000".into();
    retag(&mut other_namespace, "snapcourier:namespace", "prod");
    emu.insert_snapshots(&[ours, other_schedule, other_namespace]);
    let now = Timestamp::now();

    let first = steps::share(&ctx, &run, &Look::first(now), now)
        .await
        .unwrap();
    assert_eq!(first.due, 1, "{first:?}");
    assert_eq!(first.shared.len(), 1);
    assert_eq!(
        first.shared[0].snapshot_id,
        "sc-demo-auroradaily-orders-db-20261122-0000"
    );
    assert!(first.next.is_finished());
    let restore = |id: &'static str| {
        let ctx = &ctx;
        async move {
            Aurora
                .restore_accounts(ctx, SOURCE_REGION, id)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        restore("sc-demo-auroradaily-orders-db-20261122-0000")
            .await
            .len(),
        1
    );
    assert!(
        restore("sc-demo-aurorahourly-orders-db-20261122-0000")
            .await
            .is_empty()
    );
    assert!(
        restore("sc-prod-auroradaily-orders-db-20261122-0000")
            .await
            .is_empty()
    );
    // The share is recorded on the snapshot: the next look lists and changes nothing.
    let second = steps::share(&ctx, &run, &Look::first(now), now)
        .await
        .unwrap();
    assert_eq!(second.due, 0);
    assert_eq!(second.api_calls, 1, "{second:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_region_copy_never_copies_over_a_foreign_snapshot_holding_our_id() {
    let emu = Emulator::start(Seed::Empty);
    let ctx = context(&emu, Side::Destination);
    let id = "sc-demo-auroradaily-orders-db-20261120-0000";
    // No intermediate copy at all: nothing to copy from, nothing started.
    let out = steps::cross_region_copy(&ctx, &destination_run(), Timestamp::now())
        .await
        .unwrap();
    assert!(out.started.is_empty() && out.failures.is_empty(), "{out:?}");

    // Our intermediate exists, but the id in eu-west-1 is someone else's snapshot.
    emu.insert_snapshots(&[owned_snapshot(
        DESTINATION_ACCOUNT,
        SOURCE_REGION,
        id,
        "orders-db",
        days_ago(2, 0),
        "intermediate",
        &[],
    )]);
    let mut foreign = owned_snapshot(
        DESTINATION_ACCOUNT,
        DESTINATION_REGION,
        id,
        "orders-db",
        days_ago(2, 0),
        "destination",
        &[],
    );
    foreign["tags"] = serde_json::json!([{"Key": "snapcourier:namespace", "Value": "otherteam"}]);
    emu.insert_snapshots(&[foreign]);
    let out = steps::cross_region_copy(&ctx, &destination_run(), Timestamp::now())
        .await
        .unwrap();
    assert!(out.started.is_empty(), "{out:?}");
    // The copy-in look reports it, naming the region and what to do.
    let look = Look {
        looks_before: 0,
        started_at: Timestamp::now(),
        copies_started: 0,
    };
    let pass = steps::copy_in(&ctx, &destination_run(), None, &look, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(pass.failures.len(), 1, "{pass:?}");
    assert_eq!(pass.failures[0].stage, "cross-region-copy");
    assert_eq!(pass.failures[0].error.error_type, "InvalidState");
    assert!(
        pass.failures[0]
            .error
            .message
            .contains("not owned by namespace demo")
            && pass.failures[0].error.message.contains(DESTINATION_REGION),
        "{pass:?}"
    );
    // Clean-up keeps the intermediate (no copy of ours in eu-west-1) and the foreign snapshot.
    let out = steps::delete_destination(&ctx, &destination_run(), Timestamp::now())
        .await
        .unwrap();
    assert!(out.deleted.is_empty(), "{out:?}");
    assert!(tags_of(&ctx, SOURCE_REGION, id).await.is_some());
    assert_eq!(
        tags_of(&ctx, DESTINATION_REGION, id).await.unwrap()["snapcourier:namespace"],
        "otherteam"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_is_not_available_is_skipped_with_its_reason() {
    let emu = Emulator::start(Seed::Demo);
    emu.create_cluster(serde_json::json!({
        "account": SOURCE_ACCOUNT, "region": SOURCE_REGION, "id": "orders-replica",
        "engine": "aurora-postgresql", "status": "stopped"
    }));
    let out = steps::take(
        &context(&emu, Side::Source),
        &source_run(),
        None,
        Timestamp::now(),
    )
    .await
    .unwrap();
    assert_eq!(out.skipped.len(), 1, "{:?}", out.skipped);
    assert_eq!(out.skipped[0].resource_id, "orders-replica");
    assert!(out.skipped[0].reason.contains("`stopped`"));
    assert_eq!(out.created.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_runs_create_no_duplicate_and_lose_nothing() {
    let emu = Emulator::start(Seed::Demo);
    let (a, b) = (context(&emu, Side::Source), context(&emu, Side::Source));
    let run = source_run();
    let now = Timestamp::now();
    let (ta, tb) = tokio::join!(
        steps::take(&a, &run, None, now),
        steps::take(&b, &run, None, now)
    );
    let (ta, tb) = (ta.unwrap(), tb.unwrap());
    assert_eq!(
        ta.created.len() + tb.created.len(),
        3,
        "each cluster created once: {ta:?} {tb:?}"
    );
    assert!(
        ta.items.iter().chain(&tb.items).all(|i| i.error.is_none()),
        "{ta:?} {tb:?}"
    );
    // Both share at the same time.
    let look = Look::first(now);
    let (sa, sb) = tokio::join!(
        steps::share(&a, &run, &look, now),
        steps::share(&b, &run, &look, now)
    );
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    assert!(
        sa.failures.is_empty() && sb.failures.is_empty() && sa.pending.is_empty(),
        "{sa:?} {sb:?}"
    );
    let owned: Vec<_> = Aurora
        .list_snapshots(&a, SOURCE_REGION, false)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.is_owned_by("demo"))
        .collect();
    assert_eq!(owned.len(), 3);
    for s in &owned {
        assert_eq!(
            Aurora
                .restore_accounts(&a, SOURCE_REGION, &s.id)
                .await
                .unwrap()
                .len(),
            1,
            "no duplicate share entry"
        );
    }

    // Two destination runs at once.
    let (x, y) = (
        context(&emu, Side::Destination),
        context(&emu, Side::Destination),
    );
    let drun = destination_run();
    let look = Look {
        looks_before: 0,
        started_at: now,
        copies_started: 0,
    };
    let (ca, cb) = tokio::join!(
        steps::copy_in(&x, &drun, None, &look, now),
        steps::copy_in(&y, &drun, None, &look, now)
    );
    let (ca, cb) = (ca.unwrap(), cb.unwrap());
    assert_eq!(ca.started.len() + cb.started.len(), 3, "{ca:?} {cb:?}");
    assert!(ca.failures.is_empty() && cb.failures.is_empty());
    let (ra, rb) = tokio::join!(
        steps::cross_region_copy(&x, &drun, now),
        steps::cross_region_copy(&y, &drun, now)
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.started.len() + rb.started.len(), 3, "{ra:?} {rb:?}");
    assert!(ra.failures.is_empty() && rb.failures.is_empty());
    let (da, db) = tokio::join!(
        steps::delete_destination(&x, &drun, now),
        steps::delete_destination(&y, &drun, now)
    );
    assert!(da.unwrap().failures.is_empty() && db.unwrap().failures.is_empty());
    let copies: Vec<_> = Aurora
        .list_snapshots(&x, DESTINATION_REGION, false)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.is_owned_by("demo"))
        .collect();
    assert_eq!(copies.len(), 3, "{copies:?}");
    let intermediates = Aurora
        .list_snapshots(&x, SOURCE_REGION, false)
        .await
        .unwrap();
    assert!(intermediates.iter().all(|s| !s.is_owned_by("demo")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_overlapping_an_older_one_of_the_same_schedule_does_nothing() {
    let emu = Emulator::start(Seed::Demo);
    let ctx = context(&emu, Side::Source);
    let sfn = ctx.sfn(SOURCE_REGION);
    // A state machine whose executions stay running long enough for the test.
    let definition =
        r#"{"StartAt":"Hold","States":{"Hold":{"Type":"Wait","Seconds":120,"End":true}}}"#;
    let machine = sfn
        .create_state_machine()
        .name("snapcourier-source")
        .definition(definition)
        .role_arn(format!("arn:aws:iam::{SOURCE_ACCOUNT}:role/snapcourier"))
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string();
    let start = |name: &'static str, input: serde_json::Value| {
        let sfn = sfn.clone();
        let machine = machine.clone();
        async move {
            sfn.start_execution()
                .state_machine_arn(machine)
                .name(name)
                .input(input.to_string())
                .send()
                .await
                .unwrap()
        }
    };
    let run = source_run();
    let input = serde_json::to_value(&run).unwrap();
    let mut other_schedule = input.clone();
    other_schedule["schedule"]["name"] = "aurora-hourly".into();
    let first = start("first", input.clone()).await;
    let _unrelated = start("other-schedule", other_schedule).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = start("second", input).await;
    let context_of = |out: &aws_sdk_sfn::operation::start_execution::StartExecutionOutput| {
        snapcourier_core::events::ExecutionContext {
            id: out.execution_arn().to_string(),
            state_machine: machine.clone(),
            start_time: snapcourier_aws::timestamp(out.start_date()).unwrap(),
        }
    };

    let skipped = steps::take(&ctx, &run, Some(&context_of(&second)), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(
        skipped.overlapping_execution.as_deref(),
        Some(first.execution_arn())
    );
    assert!(skipped.created.is_empty() && skipped.items.is_empty());
    let owned = Aurora
        .list_snapshots(&ctx, SOURCE_REGION, false)
        .await
        .unwrap();
    assert!(
        owned.iter().all(|s| !s.is_owned_by("demo")),
        "the skipped execution touched nothing"
    );

    // The oldest execution goes ahead (the other schedule's execution does not hold it back).
    let ahead = steps::take(&ctx, &run, Some(&context_of(&first)), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(ahead.overlapping_execution, None);
    assert_eq!(ahead.created.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_real_shares_are_copied_and_lookalikes_are_reported() {
    let emu = Emulator::start(Seed::Empty);
    let ctx = context(&emu, Side::Destination);
    let run = destination_run();
    let day = jiff::SignedDuration::from_hours(24);
    let created = Timestamp::now() - jiff::SignedDuration::from_hours(2);
    let real = snapshot_id(
        "demo",
        "aurora-daily",
        "orders-db",
        slot_start(created, day),
    );
    let share = |id: &str, resource: &str, at: Timestamp| {
        let mut s = owned_snapshot(
            SOURCE_ACCOUNT,
            SOURCE_REGION,
            id,
            resource,
            at,
            "source",
            &[("snapcourier:shared-with", DESTINATION_ACCOUNT)],
        );
        s["shared_with"] = serde_json::json!([DESTINATION_ACCOUNT]);
        s
    };
    // Named like ours and tagged like ours, as anyone who can share from the source could:
    let lookalikes = [
        // an id for a slot long before it was created;
        (
            "sc-demo-auroradaily-orders-db-20260101-0000".to_string(),
            "orders-db",
            created,
        ),
        // a second snapshot of the same database in the same slot;
        (
            format!("{}-copy", real.trim_end_matches("-0000")),
            "orders-db",
            created + jiff::SignedDuration::from_mins(1),
        ),
        // an id that names another database than the one AWS says it is of.
        (
            snapshot_id(
                "demo",
                "aurora-daily",
                "billing-db",
                slot_start(created, day),
            ),
            "orders-db",
            created,
        ),
    ];
    let mut seeds = vec![share(&real, "orders-db", created)];
    seeds.extend(lookalikes.iter().map(|(id, r, at)| share(id, r, *at)));
    emu.insert_snapshots(&seeds);

    let now = Timestamp::now();
    let pass = steps::copy_in(&ctx, &run, None, &Look::first(now), now)
        .await
        .unwrap();
    // Only the real share is copied...
    let started: Vec<&str> = pass
        .started
        .iter()
        .map(|p| p.snapshot_id.as_str())
        .collect();
    assert_eq!(started, vec![real.as_str()], "{pass:?}");
    assert_eq!(pass.due, 1, "lookalikes are not due: {pass:?}");
    // ...and each lookalike is reported, with why, and left alone.
    for (id, _, _) in &lookalikes {
        let f = pass
            .failures
            .iter()
            .find(|f| f.error.message.contains(id.as_str()))
            .unwrap_or_else(|| panic!("{id} not reported: {:?}", pass.failures));
        assert_eq!(f.error.error_type, "InvalidState");
        assert_eq!(f.stage, "copy-in");
        assert!(
            f.error.message.contains("never makes such a snapshot"),
            "{}",
            f.error.message
        );
    }
    assert_eq!(pass.failures.len(), lookalikes.len(), "{:?}", pass.failures);
    let copies: Vec<String> = Aurora
        .list_snapshots(&ctx, SOURCE_REGION, false)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(copies, vec![real.clone()]);
}
