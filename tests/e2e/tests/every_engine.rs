//! The state machine cases for RDS instances and Redshift clusters (Aurora's are in
//! state_machines.rs): the same ASL and Lambda binaries, dispatching on the schedule's engine.
//! The overlap check and the retry policy run before and around the engine dispatch, so their
//! Aurora tests cover every engine.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use snapcourier_aws::engines::{list_owned, shared_with};
use snapcourier_core::events::{DestinationRun, SourceRun};
use snapcourier_core::{Config, Engine};
use snapcourier_e2e::*;
use snapcourier_emulator::{days_ago, owned_snapshot};

const EXAMPLE: &str = include_str!("../../../examples/snapcourier.yaml");

fn config() -> Config {
    let mut c = Config::parse(EXAMPLE).unwrap();
    c.settings.poll_interval_seconds = 1;
    // A run that does not finish fails the test in minutes, not hours.
    c.settings.deadline_seconds = Some(300);
    c
}

struct Case {
    schedule: &'static str,
    engine: Engine,
    protected: usize,
    /// The share call to deny, and the database whose snapshot it is denied on.
    share_action: &'static str,
    denied: &'static str,
}

const CASES: [Case; 2] = [
    Case {
        schedule: "rds-daily",
        engine: Engine::Rds,
        protected: 2,
        share_action: "rds:ModifyDBSnapshotAttribute",
        denied: "billing-pg",
    },
    Case {
        schedule: "warehouse-daily",
        engine: Engine::Redshift,
        protected: 2,
        share_action: "redshift:AuthorizeSnapshotAccess",
        denied: "warehouse-raw",
    },
];

fn input(c: &Config, side: Side, schedule: &str) -> Value {
    match side {
        Side::Source => serde_json::to_value(SourceRun::from_config(c, schedule).unwrap()),
        Side::Destination => serde_json::to_value(
            DestinationRun::from_config(c, schedule, DESTINATION_ACCOUNT).unwrap(),
        ),
    }
    .unwrap()
}

async fn owned_ids(d: &Deployment, engine: Engine, side: Side, region: &str) -> BTreeSet<String> {
    list_owned(&d.context(side), engine, region)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.is_owned_by("demo"))
        .map(|s| s.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_instances_and_redshift_through_the_state_machines() {
    let d = Deployment::start(Seed::Demo).await;
    d.emu.configure(json!({"creating_reads": 2}));
    let c = config();
    for case in CASES {
        let name = format!("{}-1", case.schedule);
        let source = d
            .run(Side::Source, &name, &input(&c, Side::Source, case.schedule))
            .await;
        assert_eq!(source.status, "SUCCEEDED", "{}: {source:?}", case.schedule);
        let output: Value = serde_json::from_str(source.output.as_deref().unwrap()).unwrap();
        assert_eq!(output["shared"], case.protected, "{output}");
        let destination = d
            .run(
                Side::Destination,
                &name,
                &input(&c, Side::Destination, case.schedule),
            )
            .await;
        assert_eq!(
            destination.status, "SUCCEEDED",
            "{}: {destination:?}",
            case.schedule
        );

        let taken: BTreeSet<String> = owned_ids(&d, case.engine, Side::Source, SOURCE_REGION)
            .await
            .into_iter()
            .filter(|id| id.starts_with(&format!("sc-demo-{}-", case.schedule.replace('-', ""))))
            .collect();
        assert_eq!(taken.len(), case.protected, "{}", case.schedule);
        for id in &taken {
            let accounts = shared_with(&d.context(Side::Source), case.engine, SOURCE_REGION, id)
                .await
                .unwrap();
            assert_eq!(accounts, BTreeSet::from([DESTINATION_ACCOUNT.to_string()]));
        }
        if case.engine.copies_into_destination() {
            let copies = owned_ids(&d, case.engine, Side::Destination, DESTINATION_REGION).await;
            assert_eq!(copies, taken, "{}", case.schedule);
            assert!(
                owned_ids(&d, case.engine, Side::Destination, SOURCE_REGION)
                    .await
                    .is_empty()
            );
        } else {
            // Redshift's copies in eu-west-1 stay in the source account, shared too.
            let copies = owned_ids(&d, case.engine, Side::Source, DESTINATION_REGION).await;
            assert_eq!(copies, taken, "{}", case.schedule);
            for id in &copies {
                let accounts = shared_with(
                    &d.context(Side::Source),
                    case.engine,
                    DESTINATION_REGION,
                    id,
                )
                .await
                .unwrap();
                assert_eq!(accounts, BTreeSet::from([DESTINATION_ACCOUNT.to_string()]));
            }
        }
    }
    assert!(d.failure_reports(Side::Source).await.is_empty());
    assert!(d.failure_reports(Side::Destination).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_share_fails_the_execution_with_a_report_for_every_engine() {
    let d = Deployment::start(Seed::Demo).await;
    let c = config();
    let mut reports = Vec::new();
    for case in CASES {
        let prefix = format!("sc-demo-{}-", case.schedule.replace('-', ""));
        d.emu.configure(json!({"deny": [{
            "account": SOURCE_ACCOUNT,
            "action": case.share_action,
            "resource": format!("^{prefix}{}-", case.denied)
        }]}));
        let execution = d
            .run(
                Side::Source,
                &format!("{}-denied", case.schedule),
                &input(&c, Side::Source, case.schedule),
            )
            .await;
        assert_eq!(
            execution.status, "FAILED",
            "{}: {execution:?}",
            case.schedule
        );
        reports.extend(d.failure_reports(Side::Source).await);
        let report = reports
            .iter()
            .find(|r| {
                r["Subject"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(case.denied)
            })
            .unwrap_or_else(|| panic!("no SNS report names {}: {reports:?}", case.denied));
        let body: Value = serde_json::from_str(report["Message"].as_str().unwrap()).unwrap();
        let failures = body["share_failures"].as_array().unwrap();
        assert_eq!(failures.len(), 1, "{body}");
        assert_eq!(failures[0]["resource"], case.denied);
        assert_eq!(failures[0]["stage"], "share");
        assert_eq!(failures[0]["error"]["errorType"], "AccessDenied");
        // The report says which databases are left without a protected recovery point.
        assert!(
            body["coverage"]["named"]
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u["database"] == case.denied),
            "{body}"
        );
        // The other database's snapshot is shared; the denied one with nobody.
        for id in owned_ids(&d, case.engine, Side::Source, SOURCE_REGION).await {
            if !id.starts_with(&prefix) {
                continue;
            }
            let shared = shared_with(&d.context(Side::Source), case.engine, SOURCE_REGION, &id)
                .await
                .unwrap();
            assert_eq!(
                shared.is_empty(),
                id.starts_with(&format!("{prefix}{}-", case.denied)),
                "{id}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redshift_share_missing_in_the_copy_region_fails_the_destination_execution() {
    let d = Deployment::start(Seed::Empty).await;
    // Shared in us-east-1, never copied to eu-west-1.
    let mut shared = owned_snapshot(
        SOURCE_ACCOUNT,
        SOURCE_REGION,
        "sc-demo-warehousedaily-warehouse-main-20261122-0000",
        "warehouse-main",
        days_ago(0, 1),
        "source",
        &[],
    );
    shared["kind"] = "redshift".into();
    shared["cluster"] = "warehouse-main".into();
    shared["tags"][1]["Value"] = "warehouse-daily".into();
    shared["shared_with"] = json!([DESTINATION_ACCOUNT]);
    d.emu.insert_snapshots(&[shared]);
    let mut c = config();
    // Long enough for a few looks even while the functions start up.
    c.settings.deadline_seconds = Some(15);
    let execution = d
        .run(
            Side::Destination,
            "warehouse-daily-missing",
            &input(&c, Side::Destination, "warehouse-daily"),
        )
        .await;
    assert_eq!(execution.status, "FAILED", "{execution:?}");
    let reports = d.failure_reports(Side::Destination).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let body: Value = serde_json::from_str(reports[0]["Message"].as_str().unwrap()).unwrap();
    let failures = body["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{body}");
    assert_eq!(failures[0]["resource"], "warehouse-main");
    assert_eq!(failures[0]["stage"], "verify");
    assert!(
        failures[0]["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(DESTINATION_REGION),
        "{body}"
    );
    // The run looked until its deadline (how many looks fit depends on how fast the
    // functions start here), then stopped and said why.
    assert!(body["looks"].as_u64().unwrap() >= 1, "{body}");
    assert!(
        body["stopped"]
            .as_str()
            .unwrap_or_default()
            .contains("deadline"),
        "{body}"
    );
}
