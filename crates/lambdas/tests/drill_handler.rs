//! The drill handler over the emulator: an event that is not the deployed drill run is
//! refused before any restore, one naming a resource a drill did not restore is refused before
//! any AWS call, and the deployed run restores the newest copy.

use jiff::Timestamp;
use serde_json::{Value, json};
use snapcourier_aws::deployed::put_deployed_run;
use snapcourier_aws::{AwsContext, ClientOptions};
use snapcourier_core::Config;
use snapcourier_core::deployed::parameter_prefix;
use snapcourier_core::drill::{DRILL_RUN_NAME, DrillRun};
use snapcourier_core::heartbeat;
use snapcourier_emulator::{
    DESTINATION_ACCOUNT, DESTINATION_REGION, Emulator, Seed, Side, days_ago, owned_snapshot,
};
use snapcourier_lambdas::handle_drill;

const EXAMPLE: &str = include_str!("../../../examples/snapcourier.yaml");

fn run() -> Value {
    let config = Config::parse(EXAMPLE).unwrap();
    serde_json::to_value(
        DrillRun::from_config(&config, DESTINATION_ACCOUNT)
            .unwrap()
            .unwrap(),
    )
    .unwrap()
}

/// The destination's drill function as the stack deploys it: the drill run in its parameter.
async fn deployed(emu: &Emulator) -> AwsContext {
    let prefix = parameter_prefix("demo", heartbeat::Side::Destination);
    let writer = AwsContext::new(&emu.sdk_config(Side::Destination), ClientOptions::default());
    put_deployed_run(&writer, &prefix, DRILL_RUN_NAME, &run())
        .await
        .unwrap();
    AwsContext::new(&emu.sdk_config(Side::Destination), ClientOptions::default())
        .with_deployed_runs(prefix)
}

async fn restores(emu: &Emulator) -> usize {
    let rds = emu.rds(Side::Destination, DESTINATION_REGION);
    rds.describe_db_clusters()
        .send()
        .await
        .unwrap()
        .db_clusters()
        .iter()
        .filter(|c| {
            c.db_cluster_identifier()
                .unwrap()
                .starts_with("sc-demo-dr-")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_deployed_drill_runs_and_it_restores_the_newest_copy() {
    let emu = Emulator::start(Seed::Demo);
    let created = days_ago(1, 0);
    emu.insert_snapshots(&[owned_snapshot(
        DESTINATION_ACCOUNT,
        DESTINATION_REGION,
        "sc-demo-auroradaily-orders-db-20261201-0300",
        "orders-db",
        created,
        "destination",
        &[("snapcourier:source-created", &created.to_string())],
    )]);
    let ctx = deployed(&emu).await;
    let now = Timestamp::now();

    // Naming a database that is not a drill's restore: refused before any AWS call.
    emu.reset_requests();
    let bad = json!({"run": run(), "looks": 2, "abandon": true, "drills": [{
        "region": DESTINATION_REGION, "schedule": "aurora-daily", "engine": "aurora",
        "database": "orders-db", "snapshot": "s", "snapshot_arn": "arn", "captured": now,
        "resource": "orders-db", "started_at": now, "phase": "cleaning",
    }]});
    let e = handle_drill(&ctx, bad, now).await.unwrap_err();
    assert_eq!(e.error_type(), "ConfigInvalid");
    assert_eq!(e.problems()[0].field, "drills[0].resource", "{e}");
    assert!(emu.requests().is_empty(), "{:?}", emu.requests());

    // A run other than the deployed one (more databases, another region, another function):
    // refused after reading the deployed run, before any restore.
    for (pointer, value, field) in [
        ("/drills/databases", json!(10), "run.drills.databases"),
        ("/regions", json!(["us-east-1"]), "run.regions[0]"),
        (
            "/drills/validation_function",
            json!("arn:aws:lambda:eu-west-1:333333333333:function:steal"),
            "run.drills.validation_function",
        ),
    ] {
        let mut forged = run();
        match forged.pointer_mut(pointer) {
            Some(slot) => *slot = value,
            None => {
                forged["drills"]["validation_function"] = value;
            }
        }
        emu.reset_requests();
        let e = handle_drill(&ctx, json!({ "run": forged }), now)
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), "ConfigInvalid", "{pointer}: {e}");
        assert!(
            e.problems().iter().any(|p| p.field == field),
            "{pointer}: {e}"
        );
        assert_eq!(
            emu.requests().keys().collect::<Vec<_>>(),
            vec!["ssm:GetParameter"],
            "{pointer}"
        );
    }
    assert_eq!(restores(&emu).await, 0);

    // A state machine input carries the run alone: a by-hand choice cannot ride in it.
    let e = handle_drill(
        &ctx,
        json!({"run": with_field(run(), "databases", json!(["orders-db"]))}),
        now,
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "ConfigInvalid");

    // The deployed run: the first look restores the newest copy (the only one here).
    let out = handle_drill(&ctx, json!({ "run": run() }), now)
        .await
        .unwrap();
    assert_eq!(out["finished"], false, "{out}");
    assert_eq!(out["drills"][0]["database"], "orders-db");
    assert_eq!(
        out["drills"][0]["snapshot"],
        "sc-demo-auroradaily-orders-db-20261201-0300"
    );
    assert_eq!(out["other_failures"], json!([]));
    assert_eq!(restores(&emu).await, 1);
}

fn with_field(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}
