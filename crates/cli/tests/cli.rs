//! The `snapcourier` binary as an operator runs it: exit codes, messages, and a real run
//! against the emulator through the AWS config files it writes.

use std::process::{Command, Output};

use snapcourier_emulator::{Emulator, Seed};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/snapcourier.yaml"
);

fn snapcourier(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_snapcourier"))
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("SNAPCOURIER_CONFIG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_accepts_the_example() {
    let out = snapcourier(&["validate", "-c", EXAMPLE]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("valid (4 schedule(s), 1 destination account(s))"));
}

#[test]
fn validate_names_every_bad_field_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    let bad = std::fs::read_to_string(EXAMPLE)
        .unwrap()
        .replace("namespace: demo", "namespace: Demo-Prod")
        .replace("interval: 24h", "interval: 15m");
    std::fs::write(&path, bad).unwrap();
    let out = snapcourier(&["validate", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.starts_with("error [ConfigInvalid]: "), "{err}");
    // One problem per line, each starting with its field.
    let lines: Vec<&str> = err.lines().skip(1).map(str::trim).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("namespace: `Demo-Prod` must be")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("schedules[0].interval: must be at least 1h (got 15m)")),
        "{err}"
    );
    assert!(lines.iter().all(|l| !l.contains("; schedules[")), "{err}");
    assert!(
        err.lines()
            .next()
            .unwrap()
            .contains(&format!("{} problem(s)", lines.len())),
        "{err}"
    );
}

#[test]
fn validate_refuses_what_aws_would_refuse_at_deploy_time() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    let cases: Vec<(String, &str)> = [
        "cron(61 3 * * ? *)",
        "cron(0 25 * * ? *)",
        "cron(0 3 * 13 ? *)",
        "cron(0 3 32 * ? *)",
        "cron(0 3 * * * *)",
    ]
    .iter()
    .map(|cron| {
        (
            example.replacen("cron: cron(0 3 * * ? *)", &format!("cron: {cron}"), 1),
            "schedules[0].cron",
        )
    })
    .chain([(
        example.replacen("region: us-east-1", "region: us-east-9", 1),
        "source.region: `us-east-9` is not a region the AWS SDK knows",
    )])
    .collect();
    for (i, (config, names)) in cases.iter().enumerate() {
        assert_ne!(config, &example, "case {i} changed nothing");
        let path = dir.path().join(format!("bad-{i}.yaml"));
        std::fs::write(&path, config).unwrap();
        let out = snapcourier(&["validate", "-c", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "case {i}");
        let err = text(&out.stderr);
        assert!(err.contains(names), "case {i}: {err}");
    }
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let out = snapcourier(&["validate", "-c", "/nonexistent/snapcourier.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read config file /nonexistent/snapcourier.yaml"));
}

#[test]
fn schema_prints_the_json_schema() {
    let out = snapcourier(&["schema"]);
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["title"], "Config");
    assert!(
        schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "namespace")
    );
}

#[test]
fn run_and_report_against_the_emulator_through_aws_profiles() {
    let emu = Emulator::start(Seed::Demo);
    let with_profile = |args: &[&str], profile: &str| {
        Command::new(env!("CARGO_BIN_EXE_snapcourier"))
            .args(args)
            .args(["-c", EXAMPLE, "--profile", profile])
            .env("AWS_CONFIG_FILE", &emu.state.aws_config_file)
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                &emu.state.aws_credentials_file,
            )
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .unwrap()
    };
    // First a plan of every schedule: it only reads, and says what the run then does.
    emu.reset_requests();
    let out = with_profile(
        &["plan", "--side", "source", "--json"],
        "snapcourier-source",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plans = &printed["plans"];
    assert_eq!(plans.as_array().unwrap().len(), 4, "{printed}");
    // The quotas of the source region, Aurora's and RDS's, are well within the emulator's.
    let quotas = printed["capacity"]["quotas"].as_array().unwrap();
    assert_eq!(quotas.len(), 2, "{printed}");
    assert!(quotas.iter().all(|q| q["over"] == false), "{printed}");
    let creates = |plan: &serde_json::Value, action: &str| {
        plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["action"] == action)
            .count()
    };
    assert_eq!(creates(&plans[0], "CreateDBClusterSnapshot"), 3, "{plans}");
    // Redshift: the copy set-up first (grant, cross-region copy), then the snapshots, which
    // the plan lists as new (their creates come after set-up calls the plan withheld).
    assert_eq!(creates(&plans[2], "CreateSnapshotCopyGrant"), 1, "{plans}");
    assert_eq!(
        plans[2]["shared_once_available"].as_array().unwrap().len(),
        2,
        "{plans}"
    );
    // ElastiCache: the take it plans, from the caches the schedule covers.
    assert_eq!(creates(&plans[3], "CreateSnapshot"), 3, "{plans}");
    assert_eq!(
        creates(&plans[3], "CreateServerlessCacheSnapshot"),
        1,
        "{plans}"
    );
    for action in emu.requests().keys() {
        let name = action.split(':').next_back().unwrap_or_default();
        // The emulator names S3 requests by method and path.
        let s3_read = name.starts_with("GET ") || name.starts_with("HEAD ");
        assert!(
            snapcourier_aws::withhold::reads_only(name) || s3_read,
            "plan sent {action}"
        );
    }
    let out = with_profile(&["plan", "--side", "source"], "snapcourier-source");
    assert!(
        text(&out.stdout).contains("nothing was changed"),
        "{}",
        text(&out.stdout)
    );

    let out = with_profile(&["run", "--side", "source", "--json"], "snapcourier-source");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports[0]["created"].as_array().unwrap().len(), 3);
    assert!(reports[0]["failures"].as_array().unwrap().is_empty());

    let out = with_profile(&["run", "--side", "destination"], "snapcourier-destination");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("0 created, 3 settled, 0 skipped, 3 deleted, 0 failed"),
        "{}",
        text(&out.stdout)
    );

    let out = with_profile(
        &["report", "--side", "destination"],
        "snapcourier-destination",
    );
    let table = text(&out.stdout);
    // Three Aurora and two RDS instance copies, and four ElastiCache exports in the vault
    // bucket (the destination owns no Redshift snapshot).
    assert_eq!(table.matches("eu-west-1").count(), 9, "{table}");
    assert_eq!(table.matches("sc-demo-rdsdaily-").count(), 2, "{table}");
    assert_eq!(table.matches("sc-demo-cachedaily-").count(), 4, "{table}");
    assert!(
        table.contains("00000002-0000-4000-8000-222222222222"),
        "{table}"
    );
    assert!(
        !table.contains("dest-unowned-keep"),
        "report lists only what snapcourier owns"
    );
}

#[test]
fn inputs_prints_each_scheduled_run_as_run_builds_it() {
    let out = snapcourier(&["inputs", "-c", EXAMPLE]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let inputs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inputs["namespace"], "demo");
    let source = inputs["source"].as_array().unwrap();
    assert_eq!(source.len(), 4);
    assert_eq!(source[0]["schedule"], "aurora-daily");
    assert_eq!(source[0]["expression"], "cron(0 3 * * ? *)");
    assert_eq!(source[2]["expression"], "rate(24 hours)");
    let run = &source[0]["input"];
    assert_eq!(run["version"], 1);
    assert_eq!(
        run["destination_accounts"],
        serde_json::json!(["222222222222"])
    );
    assert_eq!(run["destination_regions"], serde_json::json!(["eu-west-1"]));
    assert_eq!(run["settings"]["call_concurrency"], 10);
    let destination = &inputs["destinations"][0];
    assert_eq!(destination["account"], "222222222222");
    assert_eq!(
        destination["runs"][1]["input"]["destination"]["account"],
        "222222222222"
    );
}

#[test]
fn inputs_refuses_a_bad_config_like_validate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    let bad = std::fs::read_to_string(EXAMPLE)
        .unwrap()
        .replace("interval: 24h", "interval: 15m");
    std::fs::write(&path, bad).unwrap();
    let out = snapcourier(&["inputs", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("schedules[0].interval: must be at least 1h (got 15m)"));
    assert!(out.stdout.is_empty());
}

/// cdk/config.schema.json is a checked-in copy of `snapcourier schema` (the CDK app validates
/// the config against it at synth without building Rust); it must never drift.
#[test]
fn the_cdk_schema_copy_is_what_schema_prints() {
    let out = snapcourier(&["schema"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../cdk/config.schema.json");
    let copy = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        copy == text(&out.stdout),
        "cdk/config.schema.json differs from `snapcourier schema`: run `make cdk-schema` and commit it"
    );
}

#[test]
fn snapshot_now_refuses_bad_arguments_before_any_aws_call() {
    // No emulator and no credentials: a refusal must come before any call.
    for (args, field) in [
        (vec!["--keep", "30m"], "--keep"),
        (vec!["--keep", "forever"], "--keep"),
        (vec!["--label", "semi;colon"], "--label"),
        (vec!["--schedule", "nope"], "schedule"),
    ] {
        let mut all = vec!["snapshot-now", "-c", EXAMPLE, "--database", "orders-db"];
        all.extend(args.iter().copied());
        let out = snapcourier(&all);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(
            err.contains("ConfigInvalid") && err.contains(field),
            "{args:?}: {err}"
        );
    }
    // Two Aurora/RDS schedules in the example: which one must be said.
    let out = snapcourier(&["snapshot-now", "-c", EXAMPLE, "--database", "orders-db"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--schedule"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn snapshot_now_takes_and_shares_one_database_through_the_binary() {
    let emu = Emulator::start(Seed::Demo);
    let out = Command::new(env!("CARGO_BIN_EXE_snapcourier"))
        .args([
            "snapshot-now",
            "-c",
            EXAMPLE,
            "--profile",
            "snapcourier-source",
            "--database",
            "orders-db",
            "--schedule",
            "aurora-daily",
            "--label",
            "before v2.3 deploy",
            "--keep",
            "2d",
            "--wait",
            "--json",
        ])
        .env("AWS_CONFIG_FILE", &emu.state.aws_config_file)
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            &emu.state.aws_credentials_file,
        )
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["shared"], true, "{printed}");
    assert_eq!(printed["label"], "before v2.3 deploy");
    let id = printed["snapshot_id"].as_str().unwrap();
    assert!(
        id.starts_with("sc-demo-auroradaily-orders-db-od-") && id.ends_with("-k48"),
        "{id}"
    );
}

#[test]
fn drill_restores_and_deletes_through_the_binary_and_exits_1_when_a_drill_fails() {
    let emu = Emulator::start(Seed::Demo);
    let created = snapcourier_emulator::days_ago(1, 0);
    let mut copy = snapcourier_emulator::owned_snapshot(
        snapcourier_emulator::DESTINATION_ACCOUNT,
        snapcourier_emulator::DESTINATION_REGION,
        "sc-demo-rdsdaily-billing-pg-20261201-0300",
        "billing-pg",
        created,
        "destination",
        &[("snapcourier:source-created", &created.to_string())],
    );
    copy["kind"] = "instance".into();
    copy["engine"] = "postgres".into();
    copy["tags"][1]["Value"] = "rds-daily".into();
    emu.insert_snapshots(&[copy]);
    let drill = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_snapcourier"))
            .args([
                "drill",
                "-c",
                EXAMPLE,
                "--profile",
                "snapcourier-destination",
            ])
            .args(args)
            .env("AWS_CONFIG_FILE", &emu.state.aws_config_file)
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                &emu.state.aws_credentials_file,
            )
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .unwrap()
    };
    let out = drill(&["--region", "us-west-2", "--database", "billing-pg"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--region"),
        "{}",
        text(&out.stderr)
    );

    let out = drill(&["--database", "billing-pg", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["succeeded"], 1, "{printed}");
    assert_eq!(
        printed["drills"][0]["snapshot"],
        "sc-demo-rdsdaily-billing-pg-20261201-0300"
    );
    assert_eq!(printed["drills"][0]["phase"], "done");

    let out = drill(&["--database", "orders-mysql"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("orders-mysql (eu-west-1)") && shown.contains("NotFound"),
        "{shown}"
    );
}

#[test]
fn snapshot_now_wait_with_the_destination_profile_follows_it_into_every_destination_region() {
    let emu = Emulator::start(Seed::Demo);
    let now = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_snapcourier"))
            .args([
                "snapshot-now",
                "-c",
                EXAMPLE,
                "--profile",
                "snapcourier-source",
            ])
            .args(args)
            .env("AWS_CONFIG_FILE", &emu.state.aws_config_file)
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                &emu.state.aws_credentials_file,
            )
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .unwrap()
    };
    // Following into the destinations needs --wait: refused before any call.
    let out = now(&[
        "--database",
        "billing-pg",
        "--schedule",
        "rds-daily",
        "--destination-profile",
        "snapcourier-destination",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--wait"),
        "{}",
        text(&out.stderr)
    );

    let out = now(&[
        "--database",
        "billing-pg",
        "--schedule",
        "rds-daily",
        "--wait",
        "--destination-profile",
        "snapcourier-destination",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["shared"], true, "{printed}");
    assert_eq!(
        printed["copied_to"],
        serde_json::json!({"222222222222/eu-west-1": true}),
        "{printed}"
    );
    // The copy is in the vault region, owned, at the destination stage.
    let id = printed["snapshot_id"].as_str().unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let copy = rt.block_on(async {
        emu.rds(
            snapcourier_emulator::Side::Destination,
            snapcourier_emulator::DESTINATION_REGION,
        )
        .describe_db_snapshots()
        .db_snapshot_identifier(&id)
        .send()
        .await
        .unwrap()
        .db_snapshots()[0]
            .clone()
    });
    assert_eq!(copy.status(), Some("available"));
    assert!(
        copy.tag_list()
            .iter()
            .any(|t| t.key() == Some("snapcourier:stage") && t.value() == Some("destination"))
    );
}
