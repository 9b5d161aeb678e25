//! The Lambda handlers over the emulator: malformed events are refused before any AWS call,
//! and a good event does the step and reports what it cost.

use jiff::Timestamp;
use serde_json::{Value, json};
use snapcourier_aws::deployed::put_deployed_run;
use snapcourier_aws::engines::{list_owned, shared_with};
use snapcourier_aws::{AwsContext, ClientOptions};
use snapcourier_core::deployed::parameter_prefix;
use snapcourier_core::events::{DestinationRun, SourceRun};
use snapcourier_core::heartbeat;
use snapcourier_core::{Config, Engine};
use snapcourier_emulator::{
    DESTINATION_ACCOUNT, DESTINATION_REGION, Emulator, SOURCE_ACCOUNT, SOURCE_REGION, Seed, Side,
    days_ago, owned_snapshot,
};
use snapcourier_lambdas::{
    StepError, handle_copy_in_destination, handle_cross_region_copy, handle_delete, handle_share,
    handle_take,
};

const EXAMPLE: &str = include_str!("../../../examples/snapcourier.yaml");

fn config() -> Config {
    Config::parse(EXAMPLE).unwrap()
}

fn source_event() -> Value {
    serde_json::to_value(SourceRun::from_config(&config(), "aurora-daily").unwrap()).unwrap()
}

fn take_event() -> Value {
    json!({"run": source_event()})
}

fn destination_event() -> Value {
    serde_json::to_value(
        DestinationRun::from_config(&config(), "aurora-daily", DESTINATION_ACCOUNT).unwrap(),
    )
    .unwrap()
}

fn item() -> Value {
    json!({"resource_id": "orders-db", "snapshot_id": "sc-demo-auroradaily-orders-db-20261122-0000", "status": "available", "shared": false})
}

/// A function's context as the stack deploys it: `runs` (the side's scheduled runs) written
/// where the stack writes them, and the function told where (SNAPCOURIER_DEPLOYED_RUNS).
async fn deployed(emu: &Emulator, side: Side, runs: &[&Value]) -> AwsContext {
    let which = match side {
        Side::Source => heartbeat::Side::Source,
        Side::Destination => heartbeat::Side::Destination,
    };
    let prefix = parameter_prefix("demo", which);
    let writer = AwsContext::new(&emu.sdk_config(side), ClientOptions::default());
    for run in runs {
        let schedule = run["schedule"]["name"].as_str().unwrap();
        put_deployed_run(&writer, &prefix, schedule, run)
            .await
            .unwrap();
    }
    AwsContext::new(&emu.sdk_config(side), ClientOptions::default()).with_deployed_runs(prefix)
}

/// Set (or add) the field at a JSON pointer.
fn with(mut event: Value, pointer: &str, value: Value) -> Value {
    match event.pointer_mut(pointer) {
        Some(slot) => *slot = value,
        None => {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            event
                .pointer_mut(parent)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .insert(key.to_string(), value);
        }
    }
    event
}

fn without(mut event: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    event
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key);
    event
}

#[derive(Clone, Copy, Debug)]
enum Step {
    /// The run alone, wrapped as `{"run": ...}` by `call`.
    Take,
    /// A whole take event.
    TakeEvent,
    Share,
    CopyIn,
    /// A whole copy-in event.
    CopyInEvent,
    CrossRegion,
    Delete,
}

async fn call(
    ctx: &AwsContext,
    step: Step,
    event: Value,
) -> Result<Value, snapcourier_core::Error> {
    let now = Timestamp::now();
    match step {
        Step::Take => handle_take(ctx, json!({ "run": event }), now).await,
        Step::TakeEvent => handle_take(ctx, event, now).await,
        Step::Share => handle_share(ctx, event, now).await,
        Step::CopyIn => handle_copy_in_destination(ctx, json!({ "run": event }), now).await,
        Step::CopyInEvent => handle_copy_in_destination(ctx, event, now).await,
        Step::CrossRegion => handle_cross_region_copy(ctx, event, now).await,
        Step::Delete => handle_delete(ctx, event, now).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_config_invalid_naming_the_field_and_touch_nothing() {
    let emu = Emulator::start(Seed::Demo);
    let before = emu
        .rds(Side::Source, SOURCE_REGION)
        .describe_db_cluster_snapshots()
        .send()
        .await
        .unwrap();
    emu.reset_requests();
    let ctx = AwsContext::new(&emu.sdk_config(Side::Source), ClientOptions::default());
    let share = |item: Value| json!({"run": source_event(), "item": item});
    let cases: Vec<(Step, Value, &str)> = vec![
        (Step::Take, json!("take everything"), ""),
        (Step::Take, json!({}), ""),
        (
            Step::Take,
            with(source_event(), "/version", json!(2)),
            "version",
        ),
        (
            Step::Take,
            with(source_event(), "/extra", json!(1)),
            "extra",
        ),
        (
            Step::Take,
            with(source_event(), "/namespace", json!("Prod")),
            "namespace",
        ),
        (
            Step::Take,
            with(source_event(), "/source/account", json!("123")),
            "source.account",
        ),
        (
            Step::Take,
            with(source_event(), "/source/region", json!("mars-1")),
            "source.region",
        ),
        (
            Step::Take,
            with(source_event(), "/destination_accounts", json!([])),
            "destination_accounts",
        ),
        (
            Step::Take,
            with(
                source_event(),
                "/destination_accounts",
                json!(["111111111111"]),
            ),
            "destination_accounts[0]",
        ),
        (
            Step::Take,
            with(source_event(), "/schedule/interval", json!("10m")),
            "schedule.interval",
        ),
        (
            Step::Take,
            with(source_event(), "/schedule/include/0", json!("(")),
            "schedule.include[0]",
        ),
        (
            Step::Take,
            with(source_event(), "/schedule/engine", json!("mongodb")),
            "schedule.engine",
        ),
        (
            Step::Take,
            with(source_event(), "/settings/max_polls", json!(60)),
            "settings.max_polls",
        ),
        (
            Step::Take,
            with(source_event(), "/schedule/retention/keep_last", json!(0)),
            "schedule.retention.keep_last",
        ),
        // The share step's input was one item before it became a look at the whole schedule.
        (Step::Share, share(item()), "item"),
        (
            Step::Share,
            json!({"run": source_event(), "looks": 100_000}),
            "looks",
        ),
        (Step::Share, json!({"looks": 1}), ""),
        (
            Step::Share,
            json!({"run": source_event(), "execution": {"id": "nope", "state_machine": "arn:aws:states:us-east-1:111111111111:stateMachine:s", "start_time": "2026-11-22T00:00:00Z"}}),
            "execution.id",
        ),
        (
            Step::CopyIn,
            with(
                destination_event(),
                "/destination/account",
                json!("111111111111"),
            ),
            "destination.account",
        ),
        (
            Step::CopyIn,
            without(destination_event(), "/destination/copy_in_kms_key"),
            "destination.copy_in_kms_key",
        ),
        (
            Step::CopyIn,
            with(
                destination_event(),
                "/destination/regions/0/kms_key",
                json!("arn:aws:kms:us-west-2:222222222222:key/x"),
            ),
            "destination.regions[0].kms_key",
        ),
        (
            Step::CrossRegion,
            json!({"run": destination_event(), "item": {"snapshot_id": "sc-demo-auroradaily-x-1"}}),
            "item",
        ),
        (
            Step::CrossRegion,
            json!({"run": with(destination_event(), "/destination/account", json!("111111111111"))}),
            "run.destination.account",
        ),
        (
            Step::CopyInEvent,
            json!({"run": destination_event(), "looks": 100_000}),
            "looks",
        ),
        (
            Step::CopyIn,
            with(
                destination_event(),
                "/settings/deadline_seconds",
                json!(86_400),
            ),
            "settings.deadline_seconds",
        ),
        (
            Step::CopyIn,
            with(destination_event(), "/settings/deadline_seconds", json!(0)),
            "settings.deadline_seconds",
        ),
        (
            Step::TakeEvent,
            json!({"run": source_event(), "execution": {"id": "nope", "state_machine": "arn:aws:states:us-east-1:111111111111:stateMachine:s", "start_time": "2026-11-22T00:00:00Z"}}),
            "execution.id",
        ),
        (
            Step::TakeEvent,
            json!({"run": source_event(), "execution": {"id": "arn:aws:states:us-east-1:111111111111:execution:s:x"}}),
            "execution",
        ),
        (
            Step::Take,
            with(source_event(), "/schedule/engine", json!("memcached")),
            "schedule.engine",
        ),
        (
            Step::Take,
            with(
                with(source_event(), "/schedule/engine", json!("redshift")),
                "/destination_regions",
                json!(["us-east-1", "eu-west-1", "eu-central-1"]),
            ),
            "schedule.engine",
        ),
        (
            Step::Take,
            with(
                source_event(),
                "/source/redshift_copy_kms_key",
                json!("arn:aws:kms:us-east-1:111111111111:key/k"),
            ),
            "source.redshift_copy_kms_key",
        ),
        (
            Step::Take,
            with(
                source_event(),
                "/schedule/redshift",
                json!({"copy_automated": true}),
            ),
            "schedule.redshift",
        ),
        (
            Step::Take,
            with(
                with(source_event(), "/schedule/engine", json!("redshift")),
                "/destination_regions",
                json!([]),
            ),
            "destination_regions",
        ),
        (
            Step::Take,
            with(source_event(), "/settings/rds_copy_concurrency", json!(21)),
            "settings.rds_copy_concurrency",
        ),
        (Step::Delete, json!({"both": source_event()}), ""),
        (
            Step::Delete,
            json!({"source": with(source_event(), "/schedule/interval", json!("0h"))}),
            "source.schedule.interval",
        ),
        (
            Step::Delete,
            json!({"destination": with(destination_event(), "/destination/retention/days", json!(0))}),
            "destination.destination.retention.days",
        ),
    ];
    assert!(cases.len() >= 15);
    for (step, event, field) in cases {
        // Take and copy-in cases name fields of the run they wrap.
        let field = match (step, field) {
            (Step::Take | Step::CopyIn, "") => "run".to_string(),
            (Step::Take | Step::CopyIn, f) => format!("run.{f}"),
            (_, f) => f.to_string(),
        };
        let err = call(&ctx, step, event.clone())
            .await
            .expect_err(&format!("{step:?} accepted {event}"));
        assert_eq!(err.error_type(), "ConfigInvalid", "{step:?} {event}: {err}");
        assert!(
            err.problems().iter().any(|p| p.field == field),
            "{step:?}: expected a problem naming `{field}`, got {:?}",
            err.problems()
        );
        // The Lambda runtime sees the fixed errorType.
        let diagnostic: lambda_runtime::Diagnostic = StepError(err).into();
        assert_eq!(diagnostic.error_type, "ConfigInvalid");
    }
    assert!(
        emu.requests().is_empty(),
        "a malformed event reached AWS: {:?}",
        emu.requests()
    );
    assert_eq!(ctx.calls().calls, 0);
    let after = emu
        .rds(Side::Source, SOURCE_REGION)
        .describe_db_cluster_snapshots()
        .send()
        .await
        .unwrap();
    assert_eq!(before.db_cluster_snapshots(), after.db_cluster_snapshots());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn take_handler_snapshots_and_reports_its_call_count() {
    let emu = Emulator::start(Seed::Demo);
    let ctx = deployed(&emu, Side::Source, &[&source_event()]).await;
    emu.reset_requests();
    let out = handle_take(&ctx, take_event(), Timestamp::now())
        .await
        .unwrap();
    // Counts, not lists: the output does not grow with the fleet.
    assert_eq!(out["created"], json!(3), "{out}");
    assert_eq!(out["to_share"], json!(3), "{out}");
    assert_eq!(out["failed"], json!(0), "{out}");
    // The step's calls: one clusters page, one snapshots page, one KMS DescribeKey for the
    // key two of the clusters share (is it the AWS managed aws/rds key? then no snapshot),
    // three creates. Before them, the function read its deployed run.
    assert_eq!(out["api_calls"], json!(6));
    assert_eq!(emu.requests().values().sum::<u64>(), 7);
    assert_eq!(emu.requests().get("kms:DescribeKey"), Some(&1));
    assert_eq!(emu.requests().get("ssm:GetParameter"), Some(&1));
    // The snapshots exist, tagged as ours.
    assert_eq!(owned_cluster_snapshots(&emu).await.len(), 3);
    // Taken again in the same slot: nothing new.
    let again = handle_take(&ctx, take_event(), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(again["created"], json!(0), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_handler_takes_one_look_at_the_whole_schedule_and_returns_counts() {
    let emu = Emulator::start(Seed::Demo);
    // The new snapshots stay `creating` for one more look.
    emu.configure(json!({"creating_reads": 1}));
    let ctx = deployed(&emu, Side::Source, &[&source_event()]).await;
    let taken = handle_take(&ctx, take_event(), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(taken["to_share"], json!(3), "{taken}");
    // The share function runs in its own process: nothing cached from the take.
    let ctx = deployed(&emu, Side::Source, &[]).await;
    emu.reset_requests();
    let first = handle_share(&ctx, json!({"run": source_event()}), Timestamp::now())
        .await
        .unwrap();
    // One listing; all three still being made: the run looks again.
    assert_eq!(first["due"], json!(3), "{first}");
    assert_eq!(first["pending"], json!(3), "{first}");
    assert_eq!(first["finished"], json!(false), "{first}");
    assert_eq!(first["looks"], json!(1));
    assert!(first["next_look_seconds"].as_u64().unwrap() >= 1, "{first}");
    // One listing (and before it, the read of the deployed run).
    assert_eq!(first["api_calls"], json!(1));
    let second = handle_share(
        &ctx,
        json!({"run": source_event(), "looks": first["looks"], "shared": first["shared"]}),
        Timestamp::now(),
    )
    .await
    .unwrap();
    // One listing, one KMS DescribeKey for the clusters' key (once per key, however many
    // snapshots ask at once), then two calls per snapshot (share, record the share); and
    // per look, the read of the deployed run.
    assert_eq!(second["shared"], json!(3), "{second}");
    assert_eq!(second["finished"], json!(true), "{second}");
    assert_eq!(second["looks"], json!(2));
    assert_eq!(second["api_calls"], json!(8), "{second}");
    assert_eq!(emu.requests().values().sum::<u64>(), 11);
    let ours = owned_cluster_snapshots(&emu).await;
    assert_eq!(ours.len(), 3);
    let looker = AwsContext::new(&emu.sdk_config(Side::Source), ClientOptions::default());
    for id in ours {
        let accounts = shared_with(&looker, Engine::Aurora, SOURCE_REGION, &id)
            .await
            .unwrap();
        assert_eq!(accounts, [DESTINATION_ACCOUNT.to_string()].into(), "{id}");
    }
}

/// The ids of namespace `demo`'s cluster snapshots in the source region, looked at with a
/// context of their own (the step's call counts stay the step's).
async fn owned_cluster_snapshots(emu: &Emulator) -> Vec<String> {
    let looker = AwsContext::new(&emu.sdk_config(Side::Source), ClientOptions::default());
    list_owned(&looker, Engine::Aurora, SOURCE_REGION)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.is_owned_by("demo"))
        .map(|s| s.id)
        .collect()
}

/// What a run may do is what was deployed: an execution started by hand with a forged input
/// (a shorter retention, another account, a foreign key) is refused before any snapshot
/// call, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_that_differ_from_the_deployed_run_are_refused_and_change_nothing() {
    let emu = Emulator::start(Seed::Demo);
    // Five copies of one database in the vault, one to five days old: the deployed policy
    // (35 days, keep 7) keeps them all; `keep_last: 1` without days would delete four.
    let copies: Vec<Value> = (1..=5)
        .map(|d| {
            let created = days_ago(d, 0);
            owned_snapshot(
                DESTINATION_ACCOUNT,
                DESTINATION_REGION,
                &format!("sc-demo-auroradaily-orders-db-copy{d}"),
                "orders-db",
                created,
                "destination",
                &[("snapcourier:source-created", &created.to_string())],
            )
        })
        .collect();
    let vault = || async {
        let looker = AwsContext::new(&emu.sdk_config(Side::Destination), ClientOptions::default());
        list_owned(&looker, Engine::Aurora, DESTINATION_REGION)
            .await
            .unwrap()
            .len()
    };
    let seeded = vault().await;
    emu.insert_snapshots(&copies);
    let before = seeded + 5;
    assert_eq!(vault().await, before);
    let destination = deployed(&emu, Side::Destination, &[&destination_event()]).await;
    let forged_destination = [
        (
            "retention",
            with(
                destination_event(),
                "/destination/retention",
                json!({"days": 1, "keep_last": 1}),
            ),
            vec![
                "destination.destination.retention.days",
                "destination.destination.retention.keep_last",
                "destination.destination.retention.tiers",
            ],
        ),
        (
            // Another account, with keys of that account (a consistent, valid run).
            "account",
            with(
                with(
                    with(
                        destination_event(),
                        "/destination/account",
                        json!("333333333333"),
                    ),
                    "/destination/copy_in_kms_key",
                    json!(
                        "arn:aws:kms:us-east-1:333333333333:key/00000001-0000-4000-8000-333333333333"
                    ),
                ),
                "/destination/regions/0/kms_key",
                json!(
                    "arn:aws:kms:eu-west-1:333333333333:key/00000002-0000-4000-8000-333333333333"
                ),
            ),
            vec![
                "destination.destination.account",
                "destination.destination.copy_in_kms_key",
                "destination.destination.regions[0].kms_key",
            ],
        ),
        (
            // A key of this account that the config does not name (one its admin controls).
            "key",
            with(
                destination_event(),
                "/destination/regions/0/kms_key",
                json!(
                    "arn:aws:kms:eu-west-1:222222222222:key/00000009-0000-4000-8000-222222222222"
                ),
            ),
            vec!["destination.destination.regions[0].kms_key"],
        ),
        (
            "schedule",
            with(destination_event(), "/schedule/name", json!("not-deployed")),
            vec!["destination.schedule.name"],
        ),
    ];
    for (what, run, fields) in forged_destination {
        emu.reset_requests();
        let delete = handle_delete(
            &destination,
            json!({ "destination": run }),
            Timestamp::now(),
        )
        .await
        .expect_err(what);
        assert_eq!(delete.error_type(), "ConfigInvalid", "{what}: {delete}");
        let named: Vec<&str> = delete.problems().iter().map(|p| p.field.as_str()).collect();
        assert_eq!(named, fields, "{what}: {delete}");
        // The other destination steps refuse it the same way (their field paths say `run`).
        let copy =
            handle_copy_in_destination(&destination, json!({ "run": run }), Timestamp::now())
                .await
                .expect_err(what);
        assert_eq!(copy.error_type(), "ConfigInvalid", "{what}: {copy}");
        let cross = handle_cross_region_copy(&destination, json!({ "run": run }), Timestamp::now())
            .await
            .expect_err(what);
        assert_eq!(cross.error_type(), "ConfigInvalid", "{what}: {cross}");
        // The only call each made was the read of the deployed run.
        assert_eq!(
            emu.requests(),
            [("ssm:GetParameter".to_string(), 3)].into(),
            "{what}"
        );
        assert_eq!(vault().await, before, "{what}");
    }
    // The deployed run itself goes through, and its policy keeps all five.
    let out = handle_delete(
        &destination,
        json!({ "destination": destination_event() }),
        Timestamp::now(),
    )
    .await
    .unwrap();
    assert_eq!(out["deleted_count"], json!(0), "{out}");
    assert_eq!(vault().await, before);

    // Source: a run that would share with an account the config does not name shares nothing.
    let source = deployed(&emu, Side::Source, &[&source_event()]).await;
    let taken = handle_take(&source, take_event(), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(taken["to_share"], json!(3), "{taken}");
    let forged = with(
        source_event(),
        "/destination_accounts",
        json!([DESTINATION_ACCOUNT, "333333333333"]),
    );
    emu.reset_requests();
    let err = handle_share(&source, json!({ "run": forged }), Timestamp::now())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "ConfigInvalid");
    assert_eq!(err.problems()[0].field, "run.destination_accounts", "{err}");
    assert_eq!(emu.requests(), [("ssm:GetParameter".to_string(), 1)].into());
    let err = handle_take(&source, json!({ "run": forged }), Timestamp::now())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "ConfigInvalid");
    let looker = AwsContext::new(&emu.sdk_config(Side::Source), ClientOptions::default());
    for id in owned_cluster_snapshots(&emu).await {
        let accounts = shared_with(&looker, Engine::Aurora, SOURCE_REGION, &id)
            .await
            .unwrap();
        assert!(accounts.is_empty(), "{id} shared with {accounts:?}");
    }
    assert_ne!(SOURCE_ACCOUNT, "333333333333");
}

/// A function deployed without its configuration refuses every event instead of trusting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_without_a_deployed_configuration_refuses_every_run() {
    let emu = Emulator::start(Seed::Demo);
    let ctx = AwsContext::new(&emu.sdk_config(Side::Source), ClientOptions::default());
    emu.reset_requests();
    let err = handle_take(&ctx, take_event(), Timestamp::now())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "ConfigInvalid");
    assert!(
        err.to_string().contains("SNAPCOURIER_DEPLOYED_RUNS"),
        "{err}"
    );
    assert!(emu.requests().is_empty(), "{:?}", emu.requests());
    assert!(owned_cluster_snapshots(&emu).await.is_empty());
}
