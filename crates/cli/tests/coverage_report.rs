//! `snapcourier report --coverage` over the emulator: every covered database has a row, from
//! missing before the first runs to ok after them, late past two intervals, failing when its
//! newest snapshot failed; JSON, a table and a Markdown file for auditors.

mod common;

use std::process::Command;

use common::*;
use jiff::{SignedDuration, Timestamp};
use snapcourier_cli::coverage_report::{CoverageReport, Status, coverage};

async fn report(emu: &Emulator, c: &snapcourier_core::Config, now: Timestamp) -> CoverageReport {
    let src = context(emu, Side::Source);
    let dst = context(emu, Side::Destination);
    coverage(&src, &dst, c, &[DESTINATION_ACCOUNT.to_string()], now)
        .await
        .unwrap()
}

fn status_of(r: &CoverageReport, database: &str) -> Status {
    r.rows
        .iter()
        .find(|row| row.database == database)
        .unwrap_or_else(|| panic!("no row for {database}: {r:?}"))
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_covered_database_has_a_row_from_missing_to_ok_late_and_failing() {
    let emu = Emulator::start(Seed::Demo);
    let c = config();
    // Before any run: the eleven covered Aurora, RDS, Redshift and ElastiCache databases, all
    // missing (not the excluded scratch-tmp, not the read replica, not tiny-redis).
    let before = report(&emu, &c, Timestamp::now()).await;
    let databases: Vec<&str> = before.rows.iter().map(|r| r.database.as_str()).collect();
    assert_eq!(
        databases,
        [
            "analytics-db",
            "billing-db",
            "orders-db",
            "billing-pg",
            "orders-mysql",
            "warehouse-main",
            "warehouse-raw",
            "carts-valkey",
            "legacy-redis",
            "profiles-serverless",
            "sessions-valkey"
        ],
        "{before:?}"
    );
    assert_eq!(before.missing, 11, "{before:?}");
    assert!(!before.all_ok());

    // Both sides run every schedule: every row is ok, with a copy in the vault region.
    for schedule in [
        "aurora-daily",
        "rds-daily",
        "warehouse-daily",
        "cache-daily",
    ] {
        run_schedule(&emu, &c, schedule).await;
    }
    let now = Timestamp::now();
    let after = report(&emu, &c, now).await;
    assert_eq!(after.ok, 11, "{after:?}");
    assert!(after.all_ok());
    let orders = after
        .rows
        .iter()
        .find(|r| r.database == "orders-db")
        .unwrap();
    assert!(orders.shared);
    let copy = orders.copies[&format!("{DESTINATION_ACCOUNT}/{DESTINATION_REGION}")]
        .as_ref()
        .expect("a copy in the vault region");
    assert_eq!(
        copy.snapshot_id,
        orders.newest_source.as_ref().unwrap().snapshot_id
    );
    // An ElastiCache cache: its export is its share, the vault's export its copy.
    let carts = after
        .rows
        .iter()
        .find(|r| r.database == "carts-valkey")
        .unwrap();
    assert!(carts.shared, "{carts:?}");
    let copy = carts.copies[&format!("{DESTINATION_ACCOUNT}/{DESTINATION_REGION}")]
        .as_ref()
        .expect("an export in the vault");
    assert_eq!(
        copy.snapshot_id,
        carts.newest_source.as_ref().unwrap().snapshot_id
    );

    // Three days on with no run (daily RPO, threshold two days): late.
    let later = report(&emu, &c, now + SignedDuration::from_hours(72)).await;
    assert_eq!(later.late, 11, "{later:?}");

    // A newer snapshot of billing-db that failed in AWS: failing.
    let mut failed = owned_snapshot(
        SOURCE_ACCOUNT,
        SOURCE_REGION,
        "sc-demo-auroradaily-billing-db-failed",
        "billing-db",
        now + SignedDuration::from_mins(1),
        "source",
        &[],
    );
    failed["status"] = "failed".into();
    emu.insert_snapshots(&[failed]);
    let failing = report(&emu, &c, now + SignedDuration::from_mins(2)).await;
    assert_eq!(status_of(&failing, "billing-db"), Status::Failing);
    assert_eq!(status_of(&failing, "orders-db"), Status::Ok);

    // Auditors' Markdown: a summary and one row per database.
    let md = failing.markdown("demo");
    assert!(
        md.contains("11 database(s): 10 ok, 0 late, 0 missing, 1 failing"),
        "{md}"
    );
    assert_eq!(
        md.lines()
            .filter(|l| l.starts_with("| aurora-daily |"))
            .count(),
        3
    );
    assert!(md.contains("| rds-daily | billing-pg |"), "{md}");
}

#[test]
fn the_binary_reports_coverage_as_json_and_markdown_and_exits_1_unless_all_ok() {
    let emu = Emulator::start(Seed::Demo);
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("coverage.md");
    let coverage = || {
        Command::new(env!("CARGO_BIN_EXE_snapcourier"))
            .args([
                "report",
                "--coverage",
                "-c",
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../examples/snapcourier.yaml"
                ),
                "--profile",
                "snapcourier-source",
                "--destination-profile",
                "snapcourier-destination",
                "--json",
                "--markdown",
                md.to_str().unwrap(),
            ])
            .env("AWS_CONFIG_FILE", &emu.state.aws_config_file)
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                &emu.state.aws_credentials_file,
            )
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap()
    };
    let out = coverage();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["missing"], 11, "{printed}");
    assert!(
        std::fs::read_to_string(&md)
            .unwrap()
            .contains("| orders-db |")
    );
}
