//! `make bench`: what runs cost and how long they take, printed as one table. Never part of
//! `make test` (the scenarios take minutes). Each scenario also asserts what it measures, so
//! a regression fails the bench rather than just printing a bigger number.
//!
//! - steady state: each engine's runs with 5,000 snapshots already handled on each side,
//!   really shared with the destination account;
//! - new databases: a source run over 1,000 new Aurora clusters with 30 ms added to every call;
//! - the state machines: one execution per side of the largest Aurora schedule that goes
//!   through in about ten minutes here (`SNAPCOURIER_BENCH_CLUSTERS`, default 200), with its
//!   largest state and history.

#[path = "../../../crates/cli/tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{
    CASES, DESTINATION_ACCOUNT, DESTINATION_REGION, Emulator, SOURCE_ACCOUNT, SOURCE_REGION, Seed,
    Side, days_ago, run_schedule, source_run_at_latency,
};
use serde_json::{Value, json};
use snapcourier_core::Engine;
use snapcourier_core::events::{DestinationRun, SourceRun};
use snapcourier_e2e::{Deployment, largest_state_bytes};

struct Row {
    scenario: String,
    side: &'static str,
    calls: String,
    wall: Duration,
    notes: String,
}

fn print(rows: &[Row]) {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(["scenario", "side", "AWS calls", "wall", "notes"]);
    for r in rows {
        t.add_row(vec![
            r.scenario.clone(),
            r.side.to_string(),
            r.calls.clone(),
            format!("{:.1} s", r.wall.as_secs_f64()),
            r.notes.clone(),
        ]);
    }
    println!("\n{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with make bench"]
async fn bench() {
    let mut rows = Vec::new();
    steady_state(&mut rows).await;
    new_databases_at_latency(&mut rows).await;
    through_the_state_machines(&mut rows).await;
    print(&rows);
}

/// 5,000 handled snapshots per side per engine, really shared (the old AWS tool makes about
/// 20,000 calls per source run at that scale).
async fn steady_state(rows: &mut Vec<Row>) {
    const PAGES: u64 = 51; // 5,000 seeded + the demo's own, 100 per page
    for case in CASES {
        let emu = Emulator::start(Seed::Demo);
        let c = common::config();
        run_schedule(&emu, &c, case.schedule).await;
        let resource = |i: usize| {
            if case.engine == Engine::Redshift {
                format!("warehouse-old{i}")
            } else {
                format!("orders-old{i}")
            }
        };
        let recent = days_ago(1, 0);
        // Named for the slot they were created in, as the source names them.
        let id = |i: usize| common::slot_id(case.schedule, &resource(i), recent);
        let (account, stage) = if case.engine == Engine::Redshift {
            // Redshift's copies stay in the source account, shared like the snapshots.
            (SOURCE_ACCOUNT, "source")
        } else {
            (DESTINATION_ACCOUNT, "destination")
        };
        if case.engine == Engine::ElastiCache {
            // 5,000 exported snapshots, each complete with its manifest, and the same 5,000
            // exports in the vault, locked.
            let snapshots: Vec<_> = (0..5000)
                .map(|i| {
                    case.owned_snapshot(
                        SOURCE_ACCOUNT,
                        SOURCE_REGION,
                        &id(i),
                        &resource(i),
                        recent,
                        "source",
                    )
                })
                .collect();
            emu.insert_snapshots(&snapshots);
            let until = (recent + jiff::SignedDuration::from_hours(24 * 35)).to_string();
            for (bucket, locked) in [
                (
                    snapcourier_core::naming::export_bucket("demo", SOURCE_ACCOUNT, SOURCE_REGION),
                    false,
                ),
                (
                    snapcourier_core::naming::vault_bucket(
                        "demo",
                        DESTINATION_ACCOUNT,
                        DESTINATION_REGION,
                    ),
                    true,
                ),
            ] {
                let objects: Vec<_> = (0..5000)
                    .flat_map(|i| case.export_objects(&bucket, &id(i), &resource(i), recent, true))
                    .map(|mut o| {
                        if locked {
                            o["lock_mode"] = "GOVERNANCE".into();
                            o["lock_until"] = until.clone().into();
                        }
                        o
                    })
                    .collect();
                emu.insert_objects(&objects);
            }
        }
        for (account, region, stage) in [
            (SOURCE_ACCOUNT, SOURCE_REGION, "source"),
            (account, DESTINATION_REGION, stage),
        ] {
            if case.engine == Engine::ElastiCache {
                break;
            }
            let seeds: Vec<_> = (0..5000)
                .map(|i| {
                    let mut s =
                        case.owned_snapshot(account, region, &id(i), &resource(i), recent, stage);
                    if account == SOURCE_ACCOUNT {
                        // Shared for real, and the progress marker says so.
                        s["tags"].as_array_mut().unwrap().push(
                            json!({"Key": "snapcourier:shared-with", "Value": DESTINATION_ACCOUNT}),
                        );
                        s["shared_with"] = json!([DESTINATION_ACCOUNT]);
                    }
                    if region != SOURCE_REGION && case.engine == Engine::Redshift {
                        s["source_region"] = SOURCE_REGION.into();
                    }
                    s
                })
                .collect();
            emu.insert_snapshots(&seeds);
        }
        emu.reset_requests();
        let started = Instant::now();
        let (source, destination) = run_schedule(&emu, &c, case.schedule).await;
        let wall = started.elapsed();
        assert!(
            source.created.is_empty() && source.failures.is_empty(),
            "{source:?}"
        );
        assert!(destination.items.is_empty() && destination.failures.is_empty());
        if case.engine == Engine::Redshift {
            // Clusters page, the take's snapshot pages, retention in both regions; the
            // destination reads the shares in both regions.
            assert_eq!(source.api_calls, 1 + PAGES * 3);
            assert_eq!(destination.api_calls, PAGES * 2);
        } else if case.engine == Engine::ElastiCache {
            // ElastiCache pages snapshots by 50 and S3 lists 1,000 keys a page (10,000 objects
            // and manifests per bucket): the take and retention each read two cache
            // describes (take only), 101 + 1 snapshot pages and 11 bucket pages; the
            // destination reads the export bucket and the vault (copy-in), the vault again.
            assert_eq!(source.api_calls, 2 + (101 + 1 + 11) * 2);
            assert_eq!(destination.api_calls, 11 * 3);
        } else {
            // The databases page plus the snapshot pages twice (take, retention; nothing to
            // share, so no share look); the destination reads the shares, then its copies in
            // both regions twice (copy-in, clean-up and retention).
            assert_eq!(source.api_calls, 1 + PAGES * 2);
            assert_eq!(destination.api_calls, PAGES + (1 + PAGES) * 2);
        }
        let seen: u64 = emu.requests().values().sum();
        assert_eq!(seen, source.api_attempts + destination.api_attempts);
        for (side, report) in [("source", &source), ("destination", &destination)] {
            rows.push(Row {
                scenario: format!("{}: steady state, 5,000 handled snapshots", case.schedule),
                side,
                calls: report.api_calls.to_string(),
                wall,
                notes: "both sides' CLI runs against the emulator, wall for the pair".into(),
            });
        }
    }
}

/// A source run over 1,000 new Aurora clusters with 30 ms added to every call.
async fn new_databases_at_latency(rows: &mut Vec<Row>) {
    let (report, requests, peak, elapsed) = source_run_at_latency(1000, 30).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.items.len(), 1000);
    let calls: u64 = requests
        .iter()
        .filter(|(k, _)| k.starts_with("rds:") || k.starts_with("kms:"))
        .map(|(_, v)| v)
        .sum();
    assert!(elapsed.as_secs() <= 60, "{elapsed:?}");
    assert!(calls <= 3 * 1000 + 60, "{calls} calls");
    rows.push(Row {
        scenario: "1,000 new Aurora clusters, 30 ms per call".into(),
        side: "source",
        calls: format!("{calls} ({:.2} per new snapshot)", calls as f64 / 1000.0),
        wall: elapsed,
        notes: format!("CLI run; at most {peak} RDS calls at once (call_concurrency 10)"),
    });
}

/// AWS calls the functions made since the last reset (not the test's own Step Functions calls).
fn function_calls(emu: &Emulator) -> u64 {
    emu.requests()
        .iter()
        .filter(|(k, _)| {
            !k.starts_with("states:") && !k.starts_with("sns:") && !k.starts_with("sqs:")
        })
        .map(|(_, v)| v)
        .sum()
}

/// One execution per side of an Aurora schedule of `SNAPCOURIER_BENCH_CLUSTERS` encrypted
/// clusters, snapshots and copies in flight for three reads each, through the deployed state
/// machines and the real Lambda binaries.
async fn through_the_state_machines(rows: &mut Vec<Row>) {
    let clusters: usize = std::env::var("SNAPCOURIER_BENCH_CLUSTERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let d = Deployment::start(Seed::Empty).await;
    let key = d.emu.kms_key(SOURCE_ACCOUNT, SOURCE_REGION);
    for i in 0..clusters {
        d.emu.create_cluster(json!({
            "account": SOURCE_ACCOUNT, "region": SOURCE_REGION,
            "id": format!("orders-c{i:04}"), "kms_key_id": key,
        }));
    }
    d.emu.configure(json!({"creating_reads": 3}));
    let mut c = common::config();
    c.settings.deadline_seconds = Some(3600);
    let inputs: [(Side, &'static str, Value); 2] = [
        (
            Side::Source,
            "source",
            serde_json::to_value(SourceRun::from_config(&c, "aurora-daily").unwrap()).unwrap(),
        ),
        (
            Side::Destination,
            "destination",
            serde_json::to_value(
                DestinationRun::from_config(&c, "aurora-daily", DESTINATION_ACCOUNT).unwrap(),
            )
            .unwrap(),
        ),
    ];
    for (side, name, input) in inputs {
        d.emu.reset_requests();
        let started = Instant::now();
        let arn = d.start_execution(side, "bench", &input).await;
        let execution = d.wait(side, &arn, Duration::from_secs(3600)).await;
        let wall = started.elapsed();
        assert_eq!(execution.status, "SUCCEEDED", "{execution:?}");
        let output: Value = serde_json::from_str(execution.output.as_deref().unwrap()).unwrap();
        let history = d.history(side, &arn).await;
        let largest = largest_state_bytes(&history);
        assert!(largest < 12 * 1024, "{largest} bytes");
        let protected = match side {
            Side::Source => &output["shared"],
            Side::Destination => &output["done"],
        };
        assert_eq!(protected, &json!(clusters), "{output}");
        rows.push(Row {
            scenario: format!(
                "{clusters} Aurora clusters through the state machines, in flight for 3 reads"
            ),
            side: name,
            calls: function_calls(&d.emu).to_string(),
            wall,
            notes: format!(
                "one execution, {} looks, {} history events (of 25,000), largest state {} bytes (of 256 KiB)",
                output["looks"],
                history.len(),
                largest
            ),
        });
    }
    assert!(
        d.emu.copies_refused().is_empty(),
        "{:?}",
        d.emu.copies_refused()
    );
}
