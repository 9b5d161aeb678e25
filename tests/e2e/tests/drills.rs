//! Restore drills as deployed: the drill state machine runs in the emulator with the real
//! `drill` Lambda, restores the newest copies, follows them to available, deletes them,
//! records and measures them; a failed restore fails the execution, is deleted and is reported
//! on the failure topic; a drill that is not due does nothing.

use std::time::Duration;

use serde_json::{Value, json};
use snapcourier_aws::drill::read_records;
use snapcourier_core::Config;
use snapcourier_core::drill::DrillRun;
use snapcourier_e2e::{
    DESTINATION_ACCOUNT, DESTINATION_REGION, Deployment, SOURCE_REGION, Seed, Side,
};
use snapcourier_emulator::{days_ago, owned_snapshot};

const EXAMPLE: &str = include_str!("../../../examples/snapcourier.yaml");

/// Copies of two Aurora clusters and an RDS instance in the vault region.
fn copies() -> Vec<Value> {
    let mut out = Vec::new();
    for (schedule, kind, db) in [
        ("auroradaily", "cluster", "orders-db"),
        ("auroradaily", "cluster", "billing-db"),
        ("rdsdaily", "instance", "billing-pg"),
    ] {
        let created = days_ago(1, 0);
        let mut s = owned_snapshot(
            DESTINATION_ACCOUNT,
            DESTINATION_REGION,
            &format!("sc-demo-{schedule}-{db}-20261201-0300"),
            db,
            created,
            "destination",
            &[("snapcourier:source-created", &created.to_string())],
        );
        s["kind"] = kind.into();
        if kind == "instance" {
            s["engine"] = "postgres".into();
            s["tags"][1]["Value"] = "rds-daily".into();
        }
        out.push(s);
    }
    out
}

async fn restored(d: &Deployment) -> Vec<String> {
    let rds = d.emu.rds(Side::Destination, DESTINATION_REGION);
    let mut out: Vec<String> = rds
        .describe_db_clusters()
        .send()
        .await
        .unwrap()
        .db_clusters()
        .iter()
        .filter_map(|c| c.db_cluster_identifier().map(str::to_string))
        .collect();
    out.extend(
        rds.describe_db_instances()
            .send()
            .await
            .unwrap()
            .db_instances()
            .iter()
            .filter_map(|i| i.db_instance_identifier().map(str::to_string)),
    );
    out.retain(|id| id.starts_with("sc-demo-dr-"));
    out
}

fn drill_run(databases: Value) -> Value {
    let config = Config::parse(EXAMPLE).unwrap();
    let mut run = serde_json::to_value(
        DrillRun::from_config(&config, DESTINATION_ACCOUNT)
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    run["drills"]["databases"] = databases;
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drill_state_machine_restores_measures_deletes_and_reports() {
    let d = Deployment::start(Seed::Demo).await;
    d.emu.insert_snapshots(&copies());
    d.emu.configure(json!({"restore_reads": 2}));

    // A scheduled drill of two databases: both restored, timed, deleted, recorded.
    let run = drill_run(json!(["orders-db", "billing-pg"]));
    let arn = d.start_drill("drill-1", &run).await;
    let done = d
        .wait(Side::Destination, &arn, Duration::from_secs(300))
        .await;
    assert_eq!(done.status, "SUCCEEDED", "{done:#?}");
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    assert_eq!(output["succeeded"], 2, "{output}");
    assert!(restored(&d).await.is_empty(), "every restore deleted");
    let ctx = d.context(Side::Destination);
    let records = read_records(&ctx, SOURCE_REGION, "demo", DESTINATION_REGION)
        .await
        .unwrap();
    assert_eq!(records.len(), 2);
    assert!(
        records
            .iter()
            .all(|r| r.succeeded && r.restore_seconds.is_some())
    );
    let metrics = d.metric_records(Side::Destination);
    let drilled: Vec<&Value> = metrics
        .iter()
        .filter(|r| r.get("DrillSucceeded").is_some())
        .collect();
    assert_eq!(drilled.len(), 2, "{metrics:?}");
    for r in &drilled {
        assert_eq!(r["DrillSucceeded"], 1.0);
        assert!(r["RestoreSeconds"].as_f64().is_some(), "{r}");
        assert_eq!(r["Region"], DESTINATION_REGION);
    }
    assert!(d.failure_reports(Side::Destination).await.is_empty());

    // The next check, right after: not due (the last drill began less than 7 days ago); it
    // restores nothing and reports the age of the newest successful drill.
    let arn = d.start_drill("drill-2", &drill_run(json!(2))).await;
    let done = d
        .wait(Side::Destination, &arn, Duration::from_secs(120))
        .await;
    assert_eq!(done.status, "SUCCEEDED", "{done:#?}");
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    assert_eq!(output["not_due"], json!([DESTINATION_REGION]), "{output}");
    assert_eq!(output["succeeded"], 0);
    let ages: Vec<Value> = d
        .metric_records(Side::Destination)
        .into_iter()
        .filter(|r| r.get("DrillAge").is_some())
        .collect();
    assert_eq!(ages.len(), 1, "{ages:?}");
    assert!(ages[0]["DrillAge"].as_f64().unwrap() < 600.0);

    // A week later (the records of the last drill aged: here, removed), a restore that
    // fails: the execution fails, what it restored is deleted, and the report names the
    // database, region, stage and error.
    for r in &records {
        ctx.ssm_in(SOURCE_REGION)
            .delete_parameter()
            .name(snapcourier_core::drill::record_name(
                "demo",
                &r.region,
                &r.schedule,
                &r.database,
            ))
            .send()
            .await
            .unwrap();
    }
    d.emu.configure(json!({"restore_failures": ["billing-db"]}));
    let arn = d
        .start_drill("drill-3", &drill_run(json!(["billing-db"])))
        .await;
    let done = d
        .wait(Side::Destination, &arn, Duration::from_secs(300))
        .await;
    assert_eq!(done.status, "FAILED", "{done:#?}");
    assert_eq!(done.error.as_deref(), Some("SnapcourierDrillFailed"));
    assert!(
        restored(&d).await.is_empty(),
        "a failed restore is deleted too"
    );
    let reports = d.failure_reports(Side::Destination).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0]["Subject"]
            .as_str()
            .unwrap()
            .contains("billing-db (eu-west-1)"),
        "{}",
        reports[0]
    );
    let report: Value = serde_json::from_str(reports[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(report["failed"], 1);
    assert_eq!(report["failures"][0]["stage"], "restore");
    assert_eq!(report["failures"][0]["error"]["errorType"], "InvalidState");
    let failed: Vec<Value> = d
        .metric_records(Side::Destination)
        .into_iter()
        .filter(|r| r.get("DrillSucceeded") == Some(&json!(0.0)))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["Database"], "billing-db");
}
