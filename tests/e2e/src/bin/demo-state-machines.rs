//! `make demo`, second half: the same job as deployed. Both state machines run in the
//! emulator, their Lambda tasks are the real binaries under cargo lambda watch, each acting
//! in its own account; then what exists where, and what a failure looks like.

use std::process::ExitCode;

use jiff::Timestamp;
use serde_json::json;
use snapcourier_aws::engines::list_owned;
use snapcourier_cli::output::{render_execution, render_snapshots};
use snapcourier_core::Config;
use snapcourier_core::Engine;
use snapcourier_core::events::{DestinationRun, SourceRun};
use snapcourier_e2e::{
    DESTINATION_ACCOUNT, DESTINATION_REGION, Deployment, SOURCE_ACCOUNT, SOURCE_REGION, Seed, Side,
};

#[tokio::main]
async fn main() -> ExitCode {
    let text = include_str!("../../../../examples/snapcourier.yaml");
    let config = match Config::parse(text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("example config: {e}");
            return ExitCode::from(2);
        }
    };
    println!("starting the emulator and one cargo lambda watch per account...");
    let d = Deployment::start(Seed::Demo).await;
    d.emu.configure(json!({"creating_reads": 2}));
    println!("source state machine:      {}", d.source.state_machine);
    println!(
        "destination state machine: {}\n",
        d.destination.state_machine
    );

    // Every schedule of the example (Aurora, RDS instances, Redshift), source then destination.
    let mut all_succeeded = true;
    for schedule in &config.schedules {
        let name = schedule.name.as_str();
        let source_input = serde_json::to_value(SourceRun::from_config(&config, name).ok());
        let destination_input = serde_json::to_value(
            DestinationRun::from_config(&config, name, DESTINATION_ACCOUNT).ok(),
        );
        let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%S");
        println!(
            "== {name} ({}): source state machine (account {SOURCE_ACCOUNT})",
            schedule.engine
        );
        let source = d
            .run(
                Side::Source,
                &format!("{name}-{stamp}"),
                &source_input.unwrap_or_default(),
            )
            .await;
        print!("{}", render_execution(&source));
        println!("\n== {name}: destination state machine (account {DESTINATION_ACCOUNT})");
        let destination = d
            .run(
                Side::Destination,
                &format!("{name}-{stamp}"),
                &destination_input.unwrap_or_default(),
            )
            .await;
        println!("{}", render_execution(&destination));
        all_succeeded &= source.status == "SUCCEEDED" && destination.status == "SUCCEEDED";
    }

    println!("== what snapcourier owns now");
    for (side, account, engines) in [
        (Side::Source, SOURCE_ACCOUNT, Engine::ALL.to_vec()),
        // A destination owns no Redshift snapshots: it verifies the source's shares.
        (
            Side::Destination,
            DESTINATION_ACCOUNT,
            vec![Engine::Aurora, Engine::Rds],
        ),
    ] {
        let ctx = d.context(side);
        let mut by_region = Vec::new();
        for region in [SOURCE_REGION, DESTINATION_REGION] {
            let mut owned = Vec::new();
            for engine in &engines {
                owned.extend(
                    list_owned(&ctx, *engine, region)
                        .await
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|s| s.is_owned_by("demo")),
                );
            }
            by_region.push((region.to_string(), owned));
        }
        print!(
            "{}",
            render_snapshots(account, &by_region, Timestamp::now())
        );
    }

    println!(
        "\n== a snapshot that never becomes available: the execution fails and one report goes to SNS"
    );
    d.emu
        .configure(json!({"stuck": ["^sc-demo-auroradaily-orders-db-"]}));
    d.emu.create_cluster(json!({"account": SOURCE_ACCOUNT, "region": SOURCE_REGION, "id": "orders-db-2", "engine": "aurora-postgresql"}));
    let mut quick = config.clone();
    // The run follows the stuck snapshot until this deadline, then reports it.
    quick.settings.deadline_seconds = Some(20);
    let input = serde_json::to_value(SourceRun::from_config(&quick, "aurora-daily").ok())
        .unwrap_or_default();
    let failed = d.run(Side::Source, "aurora-daily-stuck", &input).await;
    print!("{}", render_execution(&failed));
    for report in d.failure_reports(Side::Source).await {
        println!(
            "SNS subject: {}",
            report["Subject"].as_str().unwrap_or_default()
        );
    }
    if all_succeeded && failed.status == "FAILED" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
