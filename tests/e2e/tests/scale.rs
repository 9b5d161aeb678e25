//! A schedule larger than AWS's copy limits, through both deployed state machines: one
//! execution per side protects every database, the copy limits are never exceeded, and
//! neither side's state or history grows with the fleet.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use snapcourier_aws::engines::{list_owned, shared_with};
use snapcourier_core::events::{DestinationRun, SourceRun};
use snapcourier_core::{Config, Engine};
use snapcourier_e2e::*;

const EXAMPLE: &str = include_str!("../../../examples/snapcourier.yaml");

fn config() -> Config {
    let mut c = Config::parse(EXAMPLE).unwrap();
    c.settings.poll_interval_seconds = 1;
    // A run that does not finish fails the test in minutes, not hours.
    c.settings.deadline_seconds = Some(900);
    c
}

fn inputs(c: &Config, schedule: &str) -> (Value, Value) {
    (
        serde_json::to_value(SourceRun::from_config(c, schedule).unwrap()).unwrap(),
        serde_json::to_value(
            DestinationRun::from_config(c, schedule, DESTINATION_ACCOUNT).unwrap(),
        )
        .unwrap(),
    )
}

async fn owned_of(
    d: &Deployment,
    engine: Engine,
    side: Side,
    region: &str,
    prefix: &str,
) -> BTreeSet<String> {
    list_owned(&d.context(side), engine, region)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.is_owned_by("demo") && s.id.starts_with(prefix))
        .map(|s| s.id)
        .collect()
}

/// An execution's state does not grow with the fleet (under 12 KiB), and its history grows
/// with its looks, which a run bounds (MAX_LOOKS), never with its databases: at most
/// `per_look` events a look, plus `fixed` for the states outside the loop.
async fn assert_bounded(
    d: &Deployment,
    side: Side,
    execution: &snapcourier_aws::executions::ExecutionState,
    output: &Value,
    per_look: u32,
    fixed: usize,
) {
    let looks = output["looks"].as_u64().unwrap() as usize;
    assert!(
        looks >= 2,
        "{side:?}: the work took several looks: {output}"
    );
    let history = d.history(side, &execution.arn).await;
    assert!(
        history.len() <= per_look as usize * looks + fixed,
        "{side:?}: {} events for {looks} looks",
        history.len()
    );
    let largest = largest_state_bytes(&history);
    assert!(
        largest < 12 * 1024,
        "{side:?}: largest state {largest} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_database_of_a_schedule_larger_than_the_copy_limits_is_protected_in_one_execution() {
    let d = Deployment::start(Seed::Empty).await;
    let key = d.emu.kms_key(SOURCE_ACCOUNT, SOURCE_REGION);
    for i in 0..60 {
        d.emu.create_cluster(json!({
            "account": SOURCE_ACCOUNT, "region": SOURCE_REGION,
            "id": format!("orders-c{i:02}"), "kms_key_id": key,
        }));
    }
    let rds = d.emu.rds(Side::Source, SOURCE_REGION);
    for i in 0..30 {
        rds.create_db_instance()
            .db_instance_identifier(format!("ledger-i{i:02}"))
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("snapcourier")
            .master_user_password("not-a-secret-1")
            .send()
            .await
            .unwrap();
    }
    // Snapshots and copies stay in progress for three reads: copy slots are really held.
    d.emu.configure(json!({"creating_reads": 3}));
    let c = config();

    for (schedule, engine, count, prefix) in [
        ("aurora-daily", Engine::Aurora, 60, "sc-demo-auroradaily-"),
        ("rds-daily", Engine::Rds, 30, "sc-demo-rdsdaily-"),
    ] {
        let (source_input, destination_input) = inputs(&c, schedule);
        let source = d
            .run(Side::Source, &format!("{schedule}-1"), &source_input)
            .await;
        assert_eq!(source.status, "SUCCEEDED", "{schedule}: {source:?}");
        // The source's state holds counts, never the list of snapshots it made and shared,
        // and its history grows with its looks, not with the databases.
        let source_output: Value = serde_json::from_str(source.output.as_deref().unwrap()).unwrap();
        assert_eq!(
            source_output["created"], count,
            "{schedule}: {source_output}"
        );
        assert_eq!(
            source_output["shared"], count,
            "{schedule}: {source_output}"
        );
        assert_bounded(
            &d,
            Side::Source,
            &source,
            &source_output,
            snapcourier_core::looks::SOURCE_EVENTS_PER_LOOK,
            30,
        )
        .await;
        let destination = d
            .run(
                Side::Destination,
                &format!("{schedule}-1"),
                &destination_input,
            )
            .await;
        assert_eq!(
            destination.status, "SUCCEEDED",
            "{schedule}: {destination:?}"
        );
        let output: Value = serde_json::from_str(destination.output.as_deref().unwrap()).unwrap();
        assert_eq!(output["done"], count, "{schedule}: {output}");
        assert_eq!(output["copies_started"], count, "{schedule}: {output}");

        // Every database: a snapshot shared with the destination, a copy in every
        // destination region, and no intermediate left.
        let taken = owned_of(&d, engine, Side::Source, SOURCE_REGION, prefix).await;
        assert_eq!(taken.len(), count, "{schedule}: one snapshot per database");
        for id in &taken {
            let accounts = shared_with(&d.context(Side::Source), engine, SOURCE_REGION, id)
                .await
                .unwrap();
            assert_eq!(
                accounts,
                BTreeSet::from([DESTINATION_ACCOUNT.to_string()]),
                "{id}"
            );
        }
        assert_eq!(
            owned_of(&d, engine, Side::Destination, DESTINATION_REGION, prefix).await,
            taken,
            "{schedule}: a copy of every database in {DESTINATION_REGION}"
        );
        assert!(
            owned_of(&d, engine, Side::Destination, SOURCE_REGION, prefix)
                .await
                .is_empty(),
            "{schedule}: intermediates removed"
        );
        assert!(d.failure_reports(Side::Destination).await.is_empty());

        assert_bounded(
            &d,
            Side::Destination,
            &destination,
            &output,
            snapcourier_core::looks::EVENTS_PER_LOOK,
            20,
        )
        .await;
    }

    // Every database protected: the last coverage record of each schedule says so.
    for schedule in ["aurora-daily", "rds-daily"] {
        let last = d
            .metric_records(Side::Destination)
            .into_iter()
            .rev()
            .find(|r| r.get("UnprotectedDatabases").is_some() && r["Schedule"] == schedule)
            .unwrap();
        assert_eq!(last["UnprotectedDatabases"], 0.0, "{schedule}: {last}");
    }

    // AWS's limits were never exceeded, and the slots were used: the emulator refused no
    // copy, and the most in flight at once reached the limit in both regions.
    assert!(
        d.emu.copies_refused().is_empty(),
        "{:?}",
        d.emu.copies_refused()
    );
    let peaks = d.emu.copies_peak_in_flight();
    for region in [SOURCE_REGION, DESTINATION_REGION] {
        assert_eq!(
            peaks[&format!("{DESTINATION_ACCOUNT}/{region}/DBClusterSnapshot")],
            5,
            "{peaks:?}"
        );
        assert_eq!(
            peaks[&format!("{DESTINATION_ACCOUNT}/{region}/DBSnapshot")],
            20,
            "{peaks:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_keeps_failing_fails_the_execution_with_a_report_and_the_others_are_copied() {
    let d = Deployment::start(Seed::Demo).await;
    let c = config();
    let (source_input, destination_input) = inputs(&c, "aurora-daily");
    let source = d.run(Side::Source, "fails-1", &source_input).await;
    assert_eq!(source.status, "SUCCEEDED", "{source:?}");
    // An explicit IAM deny on copying billing-db's share into the destination account.
    d.emu.configure(json!({"creating_reads": 2, "deny": [{
        "account": DESTINATION_ACCOUNT,
        "action": "rds:CopyDBClusterSnapshot",
        "resource": "billing-db"
    }]}));
    let destination = d
        .run(Side::Destination, "fails-1", &destination_input)
        .await;
    assert_eq!(destination.status, "FAILED", "{destination:?}");
    assert_eq!(destination.error.as_deref(), Some("SnapcourierItemsFailed"));

    let reports = d.failure_reports(Side::Destination).await;
    assert_eq!(
        reports.len(),
        1,
        "one message per failed execution: {reports:?}"
    );
    let body: Value = serde_json::from_str(reports[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(body["execution"], destination.arn.as_str());
    assert_eq!(body["failed"], 1, "{body}");
    let failures = body["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{body}");
    assert_eq!(failures[0]["resource"], "billing-db");
    assert_eq!(failures[0]["stage"], "copy-in");
    assert_eq!(failures[0]["error"]["errorType"], "AccessDenied");
    assert_eq!(body["done"], 2, "{body}");
    // The report also names the databases left without a protected recovery point.
    assert_eq!(body["coverage"]["unprotected"], 1, "{body}");
    assert_eq!(body["coverage"]["named"][0]["database"], "billing-db");
    assert!(
        reports[0]["Subject"]
            .as_str()
            .unwrap()
            .contains("billing-db"),
        "{reports:?}"
    );
    // `snapcourier run --state-machine` prints the same report as a table.
    let printed = snapcourier_cli::output::render_execution(&destination);
    assert!(
        printed.contains("billing-db") && printed.contains("AccessDenied"),
        "{printed}"
    );

    // The schedule's newest point is young, but billing-db has none: the copy-in function
    // wrote UnprotectedDatabases = 1 when the run's looks ended (the stacks alarm above 0).
    let unprotected: Vec<Value> = d
        .metric_records(Side::Destination)
        .into_iter()
        .filter(|r| r.get("UnprotectedDatabases").is_some())
        .collect();
    assert_eq!(unprotected.len(), 1, "{unprotected:?}");
    assert_eq!(unprotected[0]["UnprotectedDatabases"], 1.0);
    assert_eq!(unprotected[0]["Side"], "destination");
    assert_eq!(unprotected[0]["Schedule"], "aurora-daily");

    // The other two were copied into every destination region.
    let copies = owned_of(
        &d,
        Engine::Aurora,
        Side::Destination,
        DESTINATION_REGION,
        "sc-demo-auroradaily-",
    )
    .await;
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert!(copies.iter().all(|id| !id.contains("billing-db")));
}
