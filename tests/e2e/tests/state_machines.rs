//! The state machines executed for real: moto's interpreter runs the ASL, each Task invokes
//! the real Lambda binaries under cargo lambda watch, acting in their own account.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use snapcourier_core::Config;
use snapcourier_core::events::{DestinationRun, SourceRun};
use snapcourier_e2e::*;

const EXAMPLE: &str = include_str!("../../../examples/snapcourier.yaml");

fn config() -> Config {
    let mut c = Config::parse(EXAMPLE).unwrap();
    c.settings.poll_interval_seconds = 1;
    // A run that does not finish fails the test in minutes, not hours.
    c.settings.deadline_seconds = Some(300);
    c
}

fn source_input(c: &Config) -> Value {
    serde_json::to_value(SourceRun::from_config(c, "aurora-daily").unwrap()).unwrap()
}

fn destination_input(c: &Config) -> Value {
    serde_json::to_value(
        DestinationRun::from_config(c, "aurora-daily", DESTINATION_ACCOUNT).unwrap(),
    )
    .unwrap()
}

async fn owned_ids(d: &Deployment, side: Side, region: &str) -> BTreeSet<String> {
    snapcourier_aws::engines::list_owned(&d.context(side), snapcourier_core::Engine::Aurora, region)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.is_owned_by("demo"))
        .map(|s| s.id)
        .collect()
}

fn count(
    events: &[aws_sdk_sfn::types::HistoryEvent],
    kind: aws_sdk_sfn::types::HistoryEventType,
) -> usize {
    events.iter().filter(|e| *e.r#type() == kind).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_through_the_state_machines() {
    let d = Deployment::start(Seed::Demo).await;
    d.emu.configure(json!({"creating_reads": 2}));
    let c = config();

    let source = d
        .run(Side::Source, "aurora-daily-1", &source_input(&c))
        .await;
    assert_eq!(source.status, "SUCCEEDED", "{source:?}");
    let output: Value = serde_json::from_str(source.output.as_deref().unwrap()).unwrap();
    assert_eq!(output["created"], 3, "{output}");
    assert_eq!(output["shared"], 3, "{output}");
    let history = d.history(Side::Source, &source.arn).await;
    // Snapshots were still creating: the share step looked, waited and looked again, each
    // look at the whole schedule (one task per look, not one per snapshot).
    let looks = output["looks"].as_u64().unwrap() as usize;
    assert!(looks >= 2, "{output}");
    assert_eq!(
        count(
            &history,
            aws_sdk_sfn::types::HistoryEventType::WaitStateEntered
        ),
        looks - 1
    );
    assert_eq!(
        count(
            &history,
            aws_sdk_sfn::types::HistoryEventType::LambdaFunctionScheduled
        ) + count(
            &history,
            aws_sdk_sfn::types::HistoryEventType::TaskScheduled
        ),
        looks + 2,
        "take, one share per look, expire"
    );

    let destination = d
        .run(Side::Destination, "aurora-daily-1", &destination_input(&c))
        .await;
    assert_eq!(destination.status, "SUCCEEDED", "{destination:?}");

    // The same end state as the in-process run.
    let taken = owned_ids(&d, Side::Source, SOURCE_REGION).await;
    assert_eq!(taken.len(), 3);
    for id in &taken {
        let accounts = snapcourier_aws::engines::shared_with(
            &d.context(Side::Source),
            snapcourier_core::Engine::Aurora,
            SOURCE_REGION,
            id,
        )
        .await
        .unwrap();
        assert_eq!(accounts, BTreeSet::from([DESTINATION_ACCOUNT.to_string()]));
    }
    assert_eq!(
        owned_ids(&d, Side::Destination, DESTINATION_REGION).await,
        taken
    );
    assert!(
        owned_ids(&d, Side::Destination, SOURCE_REGION)
            .await
            .is_empty(),
        "intermediates removed"
    );
    assert!(d.failure_reports(Side::Source).await.is_empty());
    assert!(d.failure_reports(Side::Destination).await.is_empty());

    // The RPO heartbeat: each side's delete function wrote RecoveryPointAge for the schedule
    // (the alarm's metric), young because the recovery point was just protected; the
    // destination's copy-in wrote CopiesInFlight.
    for side in [Side::Source, Side::Destination] {
        let records = d.metric_records(side);
        let ages: Vec<&Value> = records
            .iter()
            .filter(|r| r.get("RecoveryPointAge").is_some())
            .collect();
        assert_eq!(ages.len(), 1, "{side:?}: {records:?}");
        let r = ages[0];
        assert_eq!(
            r["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "snapcourier"
        );
        assert_eq!(
            r["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Deployment", "Side", "Schedule"]])
        );
        assert_eq!(r["Deployment"], c.namespace.as_str());
        assert_eq!(r["Schedule"], "aurora-daily");
        assert_eq!(
            r["Side"],
            if side == Side::Source {
                "source"
            } else {
                "destination"
            }
        );
        let age = r["RecoveryPointAge"].as_f64().unwrap();
        assert!((0.0..600.0).contains(&age), "{side:?}: age {age}");
    }
    let in_flight: Vec<Value> = d
        .metric_records(Side::Destination)
        .into_iter()
        .filter(|r| r.get("CopiesInFlight").is_some())
        .collect();
    // One record per look: the first look started the three copies in; by the last look
    // every copy had finished.
    assert!(in_flight.len() >= 2, "{in_flight:?}");
    assert_eq!(in_flight[0]["CopiesInFlight"], 3.0);
    assert_eq!(in_flight[in_flight.len() - 1]["CopiesInFlight"], 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_runs_a_schedule_through_the_deployed_state_machine() {
    let d = Deployment::start(Seed::Demo).await;
    let c = config();
    d.deploy_run(Side::Source, &source_input(&c)).await;
    let ctx = d.context(Side::Source);
    let state = snapcourier_cli::runner::run_state_machine(
        &ctx,
        &d.source.state_machine,
        "aurora-daily",
        &source_input(&c),
        1,
        &snapcourier_cli::runner::Quiet,
    )
    .await
    .unwrap();
    assert_eq!(state.status, "SUCCEEDED", "{state:?}");
    assert!(
        state
            .arn
            .contains(":execution:snapcourier-source:aurora-daily-"),
        "{}",
        state.arn
    );
    assert!(state.report.is_none());
    let printed = snapcourier_cli::output::render_execution(&state);
    assert!(
        printed.contains("status: SUCCEEDED") && printed.contains("\"shared\":3"),
        "{printed}"
    );
    assert_eq!(owned_ids(&d, Side::Source, SOURCE_REGION).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlapping_execution_is_skipped_and_makes_no_duplicate() {
    let d = Deployment::start(Seed::Demo).await;
    // Snapshots take a few looks, so the first execution is still running when the second starts.
    d.emu.configure(json!({"creating_reads": 4}));
    let c = config();
    let first = d
        .start_execution(Side::Source, "first", &source_input(&c))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let second = d.run(Side::Source, "second", &source_input(&c)).await;
    assert_eq!(second.status, "SUCCEEDED", "{second:?}");
    let output: Value = serde_json::from_str(second.output.as_deref().unwrap()).unwrap();
    assert_eq!(output["skipped"], true, "{output}");
    assert_eq!(output["older_execution"], first.as_str());
    let first = d
        .wait(Side::Source, &first, std::time::Duration::from_secs(300))
        .await;
    assert_eq!(first.status, "SUCCEEDED", "{first:?}");
    assert_eq!(
        owned_ids(&d, Side::Source, SOURCE_REGION).await.len(),
        3,
        "one snapshot per cluster"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_stuck_beyond_the_bound_fails_the_execution_and_is_reported() {
    let d = Deployment::start(Seed::Demo).await;
    // Two snapshots stay creating for 3 looks and complete; billing-db's never leaves `creating`.
    d.emu
        .configure(json!({"creating_reads": 3, "stuck": ["^sc-demo-auroradaily-billing-db-"]}));
    let mut c = config();
    c.settings.deadline_seconds = Some(20);
    let execution = d.run(Side::Source, "stuck", &source_input(&c)).await;
    assert_eq!(execution.status, "FAILED", "{execution:?}");
    assert_eq!(execution.error.as_deref(), Some("SnapcourierItemsFailed"));

    let reports = d.failure_reports(Side::Source).await;
    assert_eq!(
        reports.len(),
        1,
        "one message per failed execution: {reports:?}"
    );
    let subject = reports[0]["Subject"].as_str().unwrap();
    assert!(subject.contains("billing-db"), "{subject}");
    let body: Value = serde_json::from_str(reports[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(body["execution"], execution.arn.as_str());
    assert_eq!(body["failed"], 1, "{body}");
    assert_eq!(body["created"], 3, "{body}");
    assert_eq!(body["shared"], 2, "{body}");
    assert!(
        body["stopped"].as_str().unwrap().contains("deadline"),
        "{body}"
    );
    let failures = body["share_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{body}");
    assert_eq!(failures[0]["resource"], "billing-db");
    assert_eq!(failures[0]["stage"], "share");
    assert_eq!(failures[0]["error"]["errorType"], "InvalidState");
    let cause = failures[0]["error"]["message"].as_str().unwrap();
    assert!(
        cause.contains("sc-demo-auroradaily-billing-db-") && cause.contains("when the run stopped"),
        "{cause}"
    );
    // Retention still ran, and the report names the database left without a protected point.
    assert_eq!(body["coverage"]["unprotected"], 1, "{body}");
    // The other two were shared.
    for id in owned_ids(&d, Side::Source, SOURCE_REGION).await {
        let shared = snapcourier_aws::engines::shared_with(
            &d.context(Side::Source),
            snapcourier_core::Engine::Aurora,
            SOURCE_REGION,
            &id,
        )
        .await
        .unwrap();
        assert_eq!(
            shared.is_empty(),
            id.starts_with("sc-demo-auroradaily-billing-db-"),
            "{id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_steps_are_retried_by_the_state_machine() {
    // One attempt per AWS call inside the functions: a throttled call fails the Task with
    // Throttled, and the state machine's Retry takes over.
    let d = Deployment::with_attempts(Seed::Demo, 1).await;
    d.emu
        .configure(json!({"throttle_rate": 0.2, "throttle_seed": 11}));
    // One call at a time, so the functions' calls reach the emulator in a fixed order and the
    // seeded throttling decisions are the same on every run.
    let mut c = config();
    c.settings.call_concurrency = 1;
    let source = d.run(Side::Source, "throttled", &source_input(&c)).await;
    assert_eq!(source.status, "SUCCEEDED", "{source:?}");
    let history = d.history(Side::Source, &source.arn).await;
    let throttled = history
        .iter()
        .filter_map(|e| e.task_failed_event_details())
        .filter(|f| f.error() == Some("Throttled"))
        .count();
    assert!(throttled >= 1, "a Throttled task failure was retried");
    d.emu.configure(json!({"throttle_rate": 0.0}));
    let taken = owned_ids(&d, Side::Source, SOURCE_REGION).await;
    assert_eq!(taken.len(), 3, "no duplicate: {taken:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_share_fails_the_execution_with_a_report_and_the_others_are_shared() {
    let d = Deployment::start(Seed::Demo).await;
    // An explicit IAM deny on sharing billing-db's snapshots, as a resource-scoped policy gives.
    d.emu.configure(json!({"deny": [{
        "account": SOURCE_ACCOUNT,
        "action": "rds:ModifyDBClusterSnapshotAttribute",
        "resource": "^sc-demo-auroradaily-billing-db-"
    }]}));
    let execution = d
        .run(Side::Source, "denied", &source_input(&config()))
        .await;
    assert_eq!(execution.status, "FAILED", "{execution:?}");

    let reports = d.failure_reports(Side::Source).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0]["Subject"]
            .as_str()
            .unwrap()
            .contains("billing-db")
    );
    let body: Value = serde_json::from_str(reports[0]["Message"].as_str().unwrap()).unwrap();
    let failures = body["share_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{body}");
    assert_eq!(failures[0]["resource"], "billing-db");
    assert_eq!(failures[0]["stage"], "share");
    assert_eq!(failures[0]["error"]["errorType"], "AccessDenied");
    assert!(
        failures[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("explicit deny"),
        "{body}"
    );
    // AccessDenied is never retried: one look shared the others and reported billing-db;
    // nothing was pending, so the run did not look again.
    assert_eq!(body["looks"], 1, "{body}");
    assert_eq!(
        d.emu.requests().get("rds:ModifyDBClusterSnapshotAttribute"),
        Some(&3),
        "one share call per snapshot: {:?}",
        d.emu.requests()
    );
    for id in owned_ids(&d, Side::Source, SOURCE_REGION).await {
        let shared = snapcourier_aws::engines::shared_with(
            &d.context(Side::Source),
            snapcourier_core::Engine::Aurora,
            SOURCE_REGION,
            &id,
        )
        .await
        .unwrap();
        assert_eq!(
            shared.is_empty(),
            id.starts_with("sc-demo-auroradaily-billing-db-"),
            "{id}"
        );
    }
}

/// Whoever may start the destination state machine can pick a deployed schedule, never change
/// what it does: an execution started by hand with `days: 1, keep_last: 1` (which would
/// delete all but the newest copy of every database older than a day) fails at its first step, reports the
/// refused fields, and deletes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_by_hand_with_a_shorter_retention_is_refused_and_deletes_nothing() {
    let d = Deployment::start(Seed::Demo).await;
    let c = config();
    let deployed = destination_input(&c);
    d.deploy_run(Side::Destination, &deployed).await;
    // Five copies of one database, one to five days old: the deployed policy (35 days,
    // keep 7) keeps them all; the forged one would keep one.
    let copies: Vec<Value> = (1..=5)
        .map(|days| {
            let created = snapcourier_emulator::days_ago(days, 0);
            snapcourier_emulator::owned_snapshot(
                DESTINATION_ACCOUNT,
                DESTINATION_REGION,
                &format!("sc-demo-auroradaily-orders-db-vault{days}"),
                "orders-db",
                created,
                "destination",
                &[("snapcourier:source-created", &created.to_string())],
            )
        })
        .collect();
    d.emu.insert_snapshots(&copies);
    let before = owned_ids(&d, Side::Destination, DESTINATION_REGION).await;
    assert!(before.len() >= 5, "{before:?}");

    let mut forged = deployed.clone();
    forged["destination"]["retention"] = json!({"days": 1, "keep_last": 1});
    d.emu.reset_requests();
    let arn = d
        .start_undeployed_execution(Side::Destination, "forged", &forged)
        .await;
    let execution = d
        .wait(Side::Destination, &arn, std::time::Duration::from_secs(120))
        .await;
    assert_eq!(execution.status, "FAILED", "{execution:?}");
    let reports = d.failure_reports(Side::Destination).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let body: Value = serde_json::from_str(reports[0]["Message"].as_str().unwrap()).unwrap();
    let error = &body["failures"][0]["error"];
    assert_eq!(error["errorType"], "ConfigInvalid", "{body}");
    let message = error["message"].as_str().unwrap();
    for field in [
        "run.destination.retention.days",
        "run.destination.retention.keep_last",
    ] {
        assert!(message.contains(field), "{field} not named: {message}");
    }
    // No snapshot call at all, and every copy is still there.
    let calls: Vec<String> = d
        .emu
        .requests()
        .into_keys()
        .filter(|k| k.starts_with("rds:") || k.starts_with("kms:"))
        .collect();
    assert!(calls.is_empty(), "{calls:?}");
    assert_eq!(
        owned_ids(&d, Side::Destination, DESTINATION_REGION).await,
        before
    );

    // The deployed run goes through and keeps them.
    let real = d.run(Side::Destination, "deployed", &deployed).await;
    assert_eq!(real.status, "SUCCEEDED", "{real:?}");
    let after = owned_ids(&d, Side::Destination, DESTINATION_REGION).await;
    assert!(before.is_subset(&after), "{before:?} {after:?}");
}

/// An on-demand snapshot (`snapcourier snapshot-now`) goes through the deployed state
/// machines like a scheduled one: the source execution shares it, the destination's copy-in
/// function accepts it as a real share and copies it into the vault region.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_demand_snapshot_is_shared_and_copied_by_the_deployed_state_machines() {
    let d = Deployment::start(Seed::Demo).await;
    let c = config();
    let run = SourceRun::from_config(&c, "aurora-daily").unwrap();
    let snapshot = snapcourier_aws::steps::snapshot_now(
        &d.context(Side::Source),
        &run,
        "orders-db",
        48,
        Some("before deploy"),
        jiff::Timestamp::now(),
    )
    .await
    .unwrap();
    assert!(snapshot.on_demand().is_some(), "{}", snapshot.id);

    let source = d
        .run(Side::Source, "with-on-demand", &source_input(&c))
        .await;
    assert_eq!(source.status, "SUCCEEDED", "{source:?}");
    let shared = snapcourier_aws::engines::shared_with(
        &d.context(Side::Source),
        snapcourier_core::Engine::Aurora,
        SOURCE_REGION,
        &snapshot.id,
    )
    .await
    .unwrap();
    assert!(shared.contains(DESTINATION_ACCOUNT), "{shared:?}");

    let destination = d
        .run(Side::Destination, "with-on-demand", &destination_input(&c))
        .await;
    assert_eq!(destination.status, "SUCCEEDED", "{destination:?}");
    let vault = owned_ids(&d, Side::Destination, DESTINATION_REGION).await;
    assert!(vault.contains(&snapshot.id), "{vault:?}");
}
