//! Restore drills over the emulator: per engine, the newest copy is restored into a throwaway
//! resource in the destination region, timed, deleted and recorded; a failed or timed-out
//! restore still deletes what it made and is reported; what a drill could not delete is
//! deleted by the next one; databases take turns; a drill that is not due does nothing.

mod common;

use std::collections::BTreeMap;

use common::*;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use snapcourier_aws::drill::read_records;
use snapcourier_aws::steps::drill::{DrillPass, drill};
use snapcourier_cli::coverage_report::{Row, Status, coverage};
use snapcourier_core::drill::{DrillDatabases, DrillInput, DrillPhase, DrillRun, Drills};
use snapcourier_core::naming::vault_bucket;
use snapcourier_core::{Config, Engine};

const PREFIX: &str = "sc-demo-dr-";

/// A restored resource in the destination region, as the APIs show it.
#[derive(Debug, Clone)]
struct Seen {
    id: String,
    kind: &'static str,
    status: String,
    tags: BTreeMap<String, String>,
    class: Option<String>,
    kms_key: Option<String>,
    /// ElastiCache: the engine and how many node groups (shards).
    engine: Option<String>,
    shards: usize,
}

async fn restored(emu: &Emulator) -> Vec<Seen> {
    let rds = emu.rds(Side::Destination, DESTINATION_REGION);
    let mut out = Vec::new();
    for c in rds
        .describe_db_clusters()
        .send()
        .await
        .unwrap()
        .db_clusters()
    {
        out.push(Seen {
            id: c.db_cluster_identifier().unwrap().into(),
            kind: "cluster",
            status: c.status().unwrap_or_default().into(),
            tags: c
                .tag_list()
                .iter()
                .map(|t| (t.key().unwrap().into(), t.value().unwrap().into()))
                .collect(),
            class: None,
            kms_key: c.kms_key_id().map(str::to_string),
            engine: None,
            shards: 0,
        });
    }
    for i in rds
        .describe_db_instances()
        .send()
        .await
        .unwrap()
        .db_instances()
    {
        out.push(Seen {
            id: i.db_instance_identifier().unwrap().into(),
            kind: "instance",
            status: i.db_instance_status().unwrap_or_default().into(),
            tags: i
                .tag_list()
                .iter()
                .map(|t| (t.key().unwrap().into(), t.value().unwrap().into()))
                .collect(),
            class: i.db_instance_class().map(str::to_string),
            kms_key: i.kms_key_id().map(str::to_string),
            engine: None,
            shards: 0,
        });
    }
    let redshift = emu.redshift(Side::Destination, DESTINATION_REGION);
    for c in redshift
        .describe_clusters()
        .send()
        .await
        .unwrap()
        .clusters()
    {
        out.push(Seen {
            id: c.cluster_identifier().unwrap().into(),
            kind: "redshift",
            status: c.cluster_status().unwrap_or_default().into(),
            tags: c
                .tags()
                .iter()
                .map(|t| (t.key().unwrap().into(), t.value().unwrap().into()))
                .collect(),
            class: c.node_type().map(str::to_string),
            kms_key: c.kms_key_id().map(str::to_string),
            engine: None,
            shards: 0,
        });
    }
    let elasticache = context(emu, Side::Destination).elasticache(DESTINATION_REGION);
    for g in elasticache
        .describe_replication_groups()
        .send()
        .await
        .unwrap()
        .replication_groups()
    {
        let tags = elasticache
            .list_tags_for_resource()
            .resource_name(g.arn().unwrap())
            .send()
            .await
            .unwrap();
        out.push(Seen {
            id: g.replication_group_id().unwrap().into(),
            kind: "cache",
            status: g.status().unwrap_or_default().into(),
            tags: tags
                .tag_list()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap().into(),
                        t.value().unwrap_or_default().into(),
                    )
                })
                .collect(),
            class: g.cache_node_type().map(str::to_string),
            kms_key: g.kms_key_id().map(str::to_string),
            engine: g.engine().map(str::to_string),
            shards: g.node_groups().len(),
        });
    }
    out.retain(|s| s.id.starts_with(PREFIX));
    out
}

/// The coverage report's row of a database.
async fn coverage_row(emu: &Emulator, c: &Config, database: &str) -> Row {
    let report = coverage(
        &context(emu, Side::Source),
        &context(emu, Side::Destination),
        c,
        &[DESTINATION_ACCOUNT.to_string()],
        Timestamp::now(),
    )
    .await
    .unwrap();
    report
        .rows
        .into_iter()
        .find(|r| r.database == database)
        .unwrap()
}

/// The example config's drill, for these databases by hand (or its own choice).
fn drill_run(c: &Config) -> DrillRun {
    DrillRun::from_config(c, DESTINATION_ACCOUNT)
        .unwrap()
        .unwrap()
}

fn input(run: &DrillRun, databases: &[&str], force: bool) -> DrillInput {
    DrillInput {
        run: run.clone(),
        execution: None,
        looks: 0,
        databases: databases.iter().map(|d| d.to_string()).collect(),
        force,
        drills: Vec::new(),
        other_failures: Vec::new(),
        abandon: false,
    }
}

/// The next look's input after `pass`.
fn next(before: &DrillInput, pass: &DrillPass) -> DrillInput {
    DrillInput {
        looks: pass.output.looks,
        drills: pass.output.drills.clone(),
        other_failures: pass.output.other_failures.clone(),
        ..before.clone()
    }
}

/// Look until finished, `step` apart (at most 10 looks); the last pass.
async fn until_finished(
    ctx: &snapcourier_aws::AwsContext,
    first: DrillInput,
    mut now: Timestamp,
    step: SignedDuration,
) -> DrillPass {
    let mut input = first;
    for _ in 0..10 {
        let pass = drill(ctx, &input, now).await.unwrap();
        if pass.output.finished {
            return pass;
        }
        input = next(&input, &pass);
        now = now.checked_add(step).unwrap();
    }
    panic!("the drill did not finish in 10 looks");
}

/// A whole drill from its first look at `at`, then a look a minute apart until it finishes.
async fn drill_to_the_end(
    ctx: &snapcourier_aws::AwsContext,
    first: DrillInput,
    at: Timestamp,
) -> DrillPass {
    let minute = SignedDuration::from_mins(1);
    let pass = drill(ctx, &first, at).await.unwrap();
    until_finished(
        ctx,
        next(&first, &pass),
        at.checked_add(minute).unwrap(),
        minute,
    )
    .await
}

/// The world of the example config after one run of each schedule on both sides: copies of
/// every database in the destination region (Redshift: shares there).
async fn protected_world() -> (Emulator, Config) {
    let emu = Emulator::start(Seed::Demo);
    let c = config();
    for case in CASES {
        run_schedule(&emu, &c, case.schedule).await;
    }
    (emu, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_per_engine_restores_the_newest_copy_times_it_deletes_it_and_records_it() {
    let (emu, c) = protected_world().await;
    let ctx = context(&emu, Side::Destination);
    let run = drill_run(&c);
    emu.configure(json!({"restore_reads": 2}));
    let t0: Timestamp = Timestamp::now();
    let copies = snapshots_of(&emu, Engine::Aurora, Side::Destination, DESTINATION_REGION).await;
    let orders_copy = owned(&copies)
        .into_iter()
        .find(|s| s.id.contains("orders-db"))
        .expect("a copy of orders-db in the vault region");

    // Look 0: one restore per database, tagged as a drill, from the newest copy.
    let first = input(&run, &["orders-db", "billing-pg", "warehouse-main"], false);
    emu.reset_requests();
    let pass = drill(&ctx, &first, t0).await.unwrap();
    assert!(!pass.output.finished);
    assert_eq!(pass.output.drills.len(), 3, "{:#?}", pass.output);
    assert!(
        pass.output.failures.is_empty(),
        "{:#?}",
        pass.output.failures
    );
    let requests = emu.requests();
    for action in [
        "rds:RestoreDBClusterFromSnapshot",
        "rds:RestoreDBInstanceFromDBSnapshot",
        "redshift:RestoreFromClusterSnapshot",
    ] {
        assert_eq!(requests.get(action), Some(&1), "{action}: {requests:?}");
    }
    let world = restored(&emu).await;
    assert_eq!(world.len(), 3, "{world:#?}");
    for s in &world {
        assert_eq!(s.tags["snapcourier:namespace"], "demo", "{s:?}");
        assert_eq!(s.tags["snapcourier:drill-started"], t0.to_string(), "{s:?}");
        assert!(s.status == "creating", "{s:?}");
    }
    let aurora = pass
        .output
        .drills
        .iter()
        .find(|d| d.database == "orders-db")
        .unwrap();
    assert_eq!(
        aurora.snapshot, orders_copy.id,
        "the newest copy in the vault"
    );
    let cluster = world.iter().find(|s| s.id == aurora.resource).unwrap();
    assert_eq!(cluster.tags["snapcourier:drill-snapshot"], orders_copy.id);
    assert_eq!(
        cluster.kms_key, orders_copy.kms_key,
        "restored with the vault key"
    );
    let rds = world.iter().find(|s| s.kind == "instance").unwrap();
    assert_eq!(rds.class.as_deref(), Some("db.t4g.micro"));
    assert!(rds.tags["snapcourier:resource"] == "billing-pg");

    // Looks 1.. (a minute apart): the Aurora cluster gets its instance once available; each
    // database is timed when it is available, then deleted.
    let minute = SignedDuration::from_mins(1);
    let first_look = next(&first, &pass);
    let last = until_finished(&ctx, first_look, t0.checked_add(minute).unwrap(), minute).await;
    assert_eq!(last.output.succeeded, 3, "{:#?}", last.output);
    assert_eq!(last.output.failed, 0);
    for d in &last.output.drills {
        assert_eq!(d.phase, DrillPhase::Done);
        let seconds = d.restore_seconds.unwrap();
        assert!(seconds >= 120 && seconds % 60 == 0, "{d:?}");
        assert!(d.recovery_point_age_seconds.unwrap() >= seconds);
    }
    let aurora = last
        .output
        .drills
        .iter()
        .find(|d| d.database == "orders-db")
        .unwrap();
    let rds = last
        .output
        .drills
        .iter()
        .find(|d| d.database == "billing-pg")
        .unwrap();
    assert!(
        aurora.restore_seconds > rds.restore_seconds,
        "Aurora waits for its instance too: {aurora:?} {rds:?}"
    );
    assert!(
        restored(&emu).await.is_empty(),
        "everything restored is deleted"
    );
    let requests = emu.requests();
    assert_eq!(requests.get("rds:CreateDBInstance"), Some(&1));
    assert_eq!(requests.get("rds:DeleteDBInstance"), Some(&2));
    assert_eq!(requests.get("rds:DeleteDBCluster"), Some(&1));
    assert_eq!(requests.get("redshift:DeleteCluster"), Some(&1));
    // The copies are untouched.
    let after = snapshots_of(&emu, Engine::Aurora, Side::Destination, DESTINATION_REGION).await;
    assert_eq!(owned(&after).len(), owned(&copies).len());

    // Recorded, in the destination account, in the stack's region.
    let records = read_records(&ctx, SOURCE_REGION, "demo", DESTINATION_REGION)
        .await
        .unwrap();
    assert_eq!(records.len(), 3, "{records:#?}");
    for r in &records {
        assert!(r.succeeded, "{r:?}");
        assert_eq!(r.at, t0);
        assert_eq!(r.last_success, Some(t0));
        assert!(r.restore_seconds.unwrap() >= 120);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_timed_out_restore_is_deleted_and_reported_and_leftovers_go_at_the_next_drill()
{
    let (emu, c) = protected_world().await;
    let ctx = context(&emu, Side::Destination);
    let run = drill_run(&c);
    let t0 = Timestamp::now();
    let minute = SignedDuration::from_mins(1);

    // billing-pg's restore fails; orders-mysql's never becomes available (4h timeout).
    emu.configure(json!({
        "restore_failures": ["billing-pg"],
        "stuck": ["orders-mysql"],
    }));
    let first = input(&run, &["billing-pg", "orders-mysql", "no-such-db"], false);
    let pass = drill(&ctx, &first, t0).await.unwrap();
    let mut look = next(&first, &pass);
    // The unknown database is reported at once, nothing restored for it.
    assert!(
        pass.output
            .failures
            .iter()
            .any(|f| f.resource == "no-such-db (eu-west-1)"
                && f.stage == "choose"
                && f.error.error_type == "NotFound"),
        "{:#?}",
        pass.output.failures
    );
    let pass = drill(&ctx, &look, t0.checked_add(minute).unwrap())
        .await
        .unwrap();
    let failed = pass
        .output
        .drills
        .iter()
        .find(|d| d.database == "billing-pg")
        .unwrap();
    assert_eq!(failed.phase, DrillPhase::Done);
    let f = failed.failure.as_ref().unwrap();
    assert_eq!(
        (f.stage.as_str(), f.error.error_type.as_str()),
        ("restore", "InvalidState")
    );
    assert!(f.error.message.contains("status `failed`"), "{f:?}");
    assert!(
        !restored(&emu).await.iter().any(|s| s.id == failed.resource),
        "a failed restore is deleted"
    );
    assert!(!pass.output.finished, "orders-mysql is still restoring");
    look = next(&look, &pass);

    // Past the timeout: reported and deleted; but its delete is denied, so it is left over.
    emu.configure(json!({"deny": [{
        "account": DESTINATION_ACCOUNT,
        "action": "rds:DeleteDBInstance",
        "resource": "orders-mysql",
    }]}));
    let late = t0.checked_add(SignedDuration::from_hours(4)).unwrap();
    let pass = drill(&ctx, &look, late).await.unwrap();
    assert!(pass.output.finished, "{:#?}", pass.output);
    assert_eq!(pass.output.succeeded, 0);
    assert_eq!(pass.output.failed, 3);
    let timed_out = pass
        .output
        .drills
        .iter()
        .find(|d| d.database == "orders-mysql")
        .unwrap();
    let f = timed_out.failure.as_ref().unwrap();
    assert!(f.error.message.contains("past drills.timeout"), "{f:?}");
    assert!(
        f.error.message.contains("could not be deleted")
            && f.error.message.contains("next drill deletes it"),
        "{f:?}"
    );
    let left = restored(&emu).await;
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0].id, timed_out.resource);
    let records = read_records(&ctx, SOURCE_REGION, "demo", DESTINATION_REGION)
        .await
        .unwrap();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| !r.succeeded && r.error.is_some()));
    // The coverage report shows the failed drill, and the database as failing.
    let row = coverage_row(&emu, &c, "billing-pg").await;
    assert_eq!(row.status, Status::Failing);
    assert!(
        row.last_drill.as_deref().unwrap().starts_with("FAILED"),
        "{row:?}"
    );

    // The next drill deletes it first: the drill that made it gave up on it...
    emu.configure(json!({"deny": [], "stuck": [], "restore_failures": []}));
    let a = input(&run, &["orders-db"], false);
    let a_at = late.checked_add(minute).unwrap();
    let a_pass = drill(&ctx, &a, a_at).await.unwrap();
    assert_eq!(
        a_pass.output.leftovers_deleted,
        vec![format!("{} (eu-west-1)", timed_out.resource)]
    );
    assert!(
        !restored(&emu)
            .await
            .iter()
            .any(|s| s.id == timed_out.resource)
    );
    // ...but a drill under way elsewhere, begun within its timeout, is left alone.
    let b = input(&run, &["billing-pg"], false);
    let b_at = a_at.checked_add(minute).unwrap();
    let b_pass = drill(&ctx, &b, b_at).await.unwrap();
    assert!(
        b_pass.output.leftovers_deleted.is_empty(),
        "{:?}",
        b_pass.output.leftovers_deleted
    );
    let a_resource = &a_pass.output.drills[0].resource;
    assert!(restored(&emu).await.iter().any(|s| &s.id == a_resource));
    let a_done = until_finished(&ctx, next(&a, &a_pass), b_at, minute).await;
    let b_done = until_finished(
        &ctx,
        next(&b, &b_pass),
        b_at.checked_add(minute).unwrap(),
        minute,
    )
    .await;
    assert_eq!((a_done.output.succeeded, b_done.output.succeeded), (1, 1));
    assert!(
        a_done.output.leftovers_deleted.is_empty() && b_done.output.leftovers_deleted.is_empty()
    );
    assert!(restored(&emu).await.is_empty());
    let week = b_at;
    // billing-pg's record: this success, after last week's failure.
    let records = read_records(&ctx, SOURCE_REGION, "demo", DESTINATION_REGION)
        .await
        .unwrap();
    let billing = records.iter().find(|r| r.database == "billing-pg").unwrap();
    assert!(
        billing.succeeded && billing.last_success == Some(week),
        "{billing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_drills_take_turns_and_do_nothing_when_not_due() {
    let (emu, mut c) = protected_world().await;
    let ctx = context(&emu, Side::Destination);
    c.drills = Some(Drills {
        databases: DrillDatabases::Count(3),
        ..c.drills.clone().unwrap()
    });
    let run = drill_run(&c);
    let minute = SignedDuration::from_mins(1);
    let day = SignedDuration::from_hours(24);
    let t0 = Timestamp::now();
    let mut drilled: Vec<String> = Vec::new();
    let mut at = t0;
    // The example covers 11 databases; four weekly drills of three each cover all of them.
    for week in 0..4 {
        let first = input(&run, &[], false);
        let pass = drill(&ctx, &first, at).await.unwrap();
        assert!(pass.output.not_due.is_empty(), "week {week}");
        let done = until_finished(
            &ctx,
            next(&first, &pass),
            at.checked_add(minute).unwrap(),
            minute,
        )
        .await;
        assert_eq!(done.output.succeeded, 3, "week {week}: {:#?}", done.output);
        drilled.extend(done.output.drills.iter().map(|d| d.database.clone()));
        // The next day's check: not due, nothing restored, no restore call.
        emu.reset_requests();
        let check = drill(&ctx, &input(&run, &[], false), at.checked_add(day).unwrap())
            .await
            .unwrap();
        assert!(check.output.finished && check.output.drills.is_empty());
        assert_eq!(check.output.not_due, vec![DESTINATION_REGION.to_string()]);
        assert!(
            emu.requests()
                .keys()
                .all(|k| !k.contains("Restore") && !k.contains("CreateReplicationGroup")),
            "{:?}",
            emu.requests()
        );
        assert!(check.drill_age.is_some());
        at = at.checked_add(day * 7).unwrap();
    }
    let mut unique = drilled.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 11, "every database had its turn: {drilled:?}");
    assert!(restored(&emu).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_records_are_read_through_every_page() {
    // SSM returns at most 10 parameters per GetParametersByPath page: 25 records take three.
    let emu = Emulator::start(Seed::Demo);
    let ctx = context(&emu, Side::Destination);
    let at: Timestamp = "2026-12-01T03:00:00Z".parse().unwrap();
    for i in 0..25 {
        let record = snapcourier_core::drill::DrillRecord {
            version: 1,
            region: DESTINATION_REGION.into(),
            schedule: "rds-daily".into(),
            database: format!("db-{i:02}"),
            at,
            succeeded: true,
            snapshot: format!("sc-demo-rdsdaily-db-{i:02}-20261201-0000"),
            restore_seconds: Some(60 + i),
            recovery_point_age_seconds: Some(3600),
            error: None,
            last_success: Some(at),
            last_success_restore_seconds: Some(60 + i),
        };
        snapcourier_aws::drill::write_record(&ctx, SOURCE_REGION, "demo", &record)
            .await
            .unwrap();
    }
    emu.reset_requests();
    let records = read_records(&ctx, SOURCE_REGION, "demo", DESTINATION_REGION)
        .await
        .unwrap();
    assert_eq!(records.len(), 25);
    let mut names: Vec<&str> = records.iter().map(|r| r.database.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 25);
    assert!(
        emu.requests()["ssm:GetParametersByPath"] >= 3,
        "{:?}",
        emu.requests()
    );
}

/// A validation function on loopback, as the emulator's Lambda routes reach one: answers each
/// invocation with `verdict` (a 500 is a function error) and keeps the payloads it got.
fn validation_function(
    status: u16,
    verdict: serde_json::Value,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            log.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap_or_default());
            let reply = verdict.to_string();
            let reason = if status == 200 {
                "OK"
            } else {
                "Internal Server Error"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validation_function_decides_the_drill_and_the_database_is_deleted_either_way() {
    let (emu, mut c) = protected_world().await;
    let ctx = context(&emu, Side::Destination);
    let arn =
        format!("arn:aws:lambda:{DESTINATION_REGION}:{DESTINATION_ACCOUNT}:function:check-restore");
    c.drills.as_mut().unwrap().validation_function = Some(arn.clone());
    let run = drill_run(&c);
    let minute = SignedDuration::from_mins(1);
    let mut at = Timestamp::now();
    for (status, verdict, succeeded, says) in [
        (
            200,
            json!({"ok": true, "message": "42 orders, newest 2026-12-01"}),
            true,
            "42 orders",
        ),
        (
            200,
            json!({"ok": false, "message": "table orders is empty"}),
            false,
            "table orders is empty",
        ),
        (200, json!({"rows": 3}), false, "not {\"ok\""),
        (
            500,
            json!({"errorType": "Boom", "errorMessage": "no route to the database"}),
            false,
            "failed",
        ),
    ] {
        let (url, seen) = validation_function(status, verdict);
        emu.route_lambdas(&json!({ arn.clone(): {"url": url, "binary": "check-restore"} }));
        let first = input(&run, &["billing-pg"], false);
        let pass = drill(&ctx, &first, at).await.unwrap();
        let done = until_finished(
            &ctx,
            next(&first, &pass),
            at.checked_add(minute).unwrap(),
            minute,
        )
        .await;
        let d = &done.output.drills[0];
        assert_eq!(d.succeeded(), succeeded, "{d:#?}");
        let said = d
            .validation
            .clone()
            .or_else(|| d.failure.as_ref().map(|f| f.error.message.clone()))
            .unwrap_or_default();
        assert!(said.contains(says), "{said}");
        if !succeeded {
            assert_eq!(d.failure.as_ref().unwrap().stage, "validate");
        }
        // It was called once, with the restored database's endpoint.
        let calls = seen.lock().unwrap().clone();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0]["database"], "billing-pg");
        assert_eq!(calls[0]["restored"], d.resource.as_str());
        assert!(calls[0]["endpoint"].is_string(), "{}", calls[0]);
        assert!(
            restored(&emu).await.is_empty(),
            "deleted whatever the verdict"
        );
        at = at.checked_add(SignedDuration::from_hours(1)).unwrap();
    }
}

/// The size of each shard of a snapshot, in node group order.
async fn shard_sizes(emu: &Emulator, side: Side, region: &str, snapshot: &str) -> Vec<String> {
    let described = context(emu, side)
        .elasticache(region)
        .describe_snapshots()
        .snapshot_name(snapshot)
        .show_node_group_config(true)
        .send()
        .await
        .unwrap();
    let mut nodes: Vec<(String, String)> = described
        .snapshots()
        .iter()
        .flat_map(|s| s.node_snapshots())
        .map(|n| {
            (
                n.node_group_id().unwrap_or_default().to_string(),
                n.cache_size().unwrap_or_default().to_string(),
            )
        })
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, size)| size).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_drill_seeds_a_replication_group_from_the_newest_vault_export_and_deletes_it() {
    let (emu, c) = protected_world().await;
    let ctx = context(&emu, Side::Destination);
    let run = drill_run(&c);
    emu.configure(json!({"restore_reads": 1}));
    let t0 = Timestamp::now();
    let vault = vault_exports(&emu, DESTINATION_REGION).await;
    let bucket = vault_bucket("demo", DESTINATION_ACCOUNT, DESTINATION_REGION);
    let objects_before = objects(&emu, Side::Destination, DESTINATION_REGION, &bucket, "").await;

    // Look 0: a replication group per cache, seeded from its newest export's objects.
    let caches = ["carts-valkey", "legacy-redis", "profiles-serverless"];
    let first = input(&run, &caches, false);
    emu.reset_requests();
    let pass = drill(&ctx, &first, t0).await.unwrap();
    assert!(pass.output.failures.is_empty(), "{:#?}", pass.output);
    assert_eq!(pass.output.drills.len(), 3);
    let requests = emu.requests();
    assert_eq!(
        requests.get("elasticache:CreateReplicationGroup"),
        Some(&3),
        "{requests:?}"
    );
    let world = restored(&emu).await;
    assert_eq!(world.len(), 3, "{world:#?}");
    for d in &pass.output.drills {
        assert_eq!(d.engine, Engine::ElastiCache);
        let newest = vault
            .iter()
            .filter(|s| s.id.contains(&format!("-{}-", d.database)))
            .max_by_key(|s| s.created)
            .unwrap();
        assert_eq!(d.snapshot, newest.id, "the newest export in the vault");
        let g = world.iter().find(|s| s.id == d.resource).unwrap();
        assert!(g.id.len() <= 40, "{g:?}");
        assert_eq!(g.status, "creating", "{g:?}");
        assert_eq!(g.class.as_deref(), Some("cache.t4g.medium"), "{g:?}");
        assert_eq!(g.tags["snapcourier:namespace"], "demo");
        assert_eq!(g.tags["snapcourier:resource"], d.database);
        assert_eq!(g.tags["snapcourier:drill-snapshot"], d.snapshot);
        assert_eq!(g.tags["snapcourier:drill-started"], t0.to_string());
    }
    let group = |database: &str| {
        let d = pass
            .output
            .drills
            .iter()
            .find(|d| d.database == database)
            .unwrap();
        (
            d.clone(),
            world.iter().find(|s| s.id == d.resource).unwrap().clone(),
        )
    };
    let (carts, carts_group) = group("carts-valkey");
    assert_eq!(carts_group.shards, 3, "one node group per exported shard");
    assert_eq!(carts_group.engine.as_deref(), Some("valkey"));
    let (_, legacy_group) = group("legacy-redis");
    assert_eq!(
        (legacy_group.shards, legacy_group.engine.as_deref()),
        (1, Some("redis"))
    );
    // The data is the export's: a snapshot of the seeded group has the source snapshot's
    // shards, shard for shard.
    assert!(restored(&emu).await.iter().all(|s| s.status == "available"));
    context(&emu, Side::Destination)
        .elasticache(DESTINATION_REGION)
        .create_snapshot()
        .replication_group_id(&carts.resource)
        .snapshot_name("check-carts")
        .send()
        .await
        .unwrap();
    let seeded = shard_sizes(&emu, Side::Destination, DESTINATION_REGION, "check-carts").await;
    let source = shard_sizes(&emu, Side::Source, SOURCE_REGION, &carts.snapshot).await;
    assert_eq!(seeded.len(), 3);
    assert_eq!(seeded, source);

    // The next look times each cache and deletes it; the vault is untouched.
    let minute = SignedDuration::from_mins(1);
    let last = until_finished(
        &ctx,
        next(&first, &pass),
        t0.checked_add(minute).unwrap(),
        minute,
    )
    .await;
    assert_eq!(last.output.succeeded, 3, "{:#?}", last.output);
    for d in &last.output.drills {
        assert_eq!(d.restore_seconds, Some(60), "{d:?}");
        assert!(d.endpoint.is_some(), "{d:?}");
    }
    assert!(
        restored(&emu).await.is_empty(),
        "every seeded cache is deleted"
    );
    assert_eq!(
        emu.requests().get("elasticache:DeleteReplicationGroup"),
        Some(&3)
    );
    let objects_after = objects(&emu, Side::Destination, DESTINATION_REGION, &bucket, "").await;
    assert_eq!(objects_after, objects_before);
    let records = read_records(&ctx, SOURCE_REGION, "demo", DESTINATION_REGION)
        .await
        .unwrap();
    assert_eq!(records.len(), 3, "{records:#?}");
    assert!(
        records
            .iter()
            .all(|r| r.succeeded && r.restore_seconds == Some(60))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_drill_that_elasticache_cannot_read_or_that_fails_says_what_to_do() {
    let (emu, c) = protected_world().await;
    let ctx = context(&emu, Side::Destination);
    let run = drill_run(&c);
    let t0 = Timestamp::now();

    // legacy-redis's seeding ends in create-failed (ElastiCache's failed status).
    emu.configure(json!({"restore_reads": 1, "restore_failures": ["legacy-redis"]}));
    let last = drill_to_the_end(&ctx, input(&run, &["legacy-redis"], false), t0).await;
    assert_eq!(last.output.failed, 1, "{:#?}", last.output);
    let failure = last.output.drills[0].failure.as_ref().unwrap();
    assert!(
        failure.error.message.contains("create-failed")
            && failure
                .error
                .message
                .contains("drills.elasticache_node_type"),
        "{failure:?}"
    );
    assert!(
        restored(&emu).await.is_empty(),
        "the failed cache is deleted"
    );

    // Without the vault's grant to ElastiCache, the restore is refused at once: the drill
    // fails naming the service and the stack that grants it, and nothing is left.
    emu.configure(json!({"restore_reads": 1, "restore_failures": []}));
    let bucket = vault_bucket("demo", DESTINATION_ACCOUNT, DESTINATION_REGION);
    context(&emu, Side::Destination)
        .s3(DESTINATION_REGION)
        .delete_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let later = t0.checked_add(SignedDuration::from_hours(1)).unwrap();
    let last = drill_to_the_end(&ctx, input(&run, &["carts-valkey"], false), later).await;
    assert_eq!(last.output.failed, 1, "{:#?}", last.output);
    let failure = last.output.drills[0].failure.as_ref().unwrap();
    assert_eq!(failure.error.error_type, "AccessDenied", "{failure:?}");
    assert!(
        failure
            .error
            .message
            .contains("eu-west-1.elasticache-snapshot.amazonaws.com")
            && failure.error.message.contains("destination stack"),
        "{failure:?}"
    );
    assert!(restored(&emu).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_an_earlier_drill_left_goes_at_the_next_drill_and_one_under_way_stays() {
    let (emu, c) = protected_world().await;
    let ctx = context(&emu, Side::Destination);
    let run = drill_run(&c);
    // Restores that stay `creating`.
    emu.configure(json!({"restore_reads": 1000}));
    let t0 = Timestamp::now();
    let first = drill(&ctx, &input(&run, &["carts-valkey"], false), t0)
        .await
        .unwrap();
    let left = first.output.drills[0].resource.clone();
    assert_eq!(restored(&emu).await.len(), 1);

    // Another drill a minute later (an operator's, say): carts-valkey's cache is under way
    // (its creation time says so), so it stays.
    let minute = t0.checked_add(SignedDuration::from_mins(1)).unwrap();
    let other = drill(&ctx, &input(&run, &["legacy-redis"], false), minute)
        .await
        .unwrap();
    assert!(
        other.output.leftovers_deleted.is_empty(),
        "{:?}",
        other.output
    );
    assert_eq!(restored(&emu).await.len(), 2);

    // Past drills.timeout (4h) both drills have given up: the next one deletes what they
    // left before it restores anything.
    let later = t0.checked_add(SignedDuration::from_hours(5)).unwrap();
    let next_drill = drill(&ctx, &input(&run, &["sessions-valkey"], false), later)
        .await
        .unwrap();
    assert!(
        next_drill
            .output
            .leftovers_deleted
            .contains(&format!("{left} ({DESTINATION_REGION})")),
        "{:?}",
        next_drill.output.leftovers_deleted
    );
    assert_eq!(next_drill.output.leftovers_deleted.len(), 2);
    let now_there: Vec<String> = restored(&emu).await.into_iter().map(|s| s.id).collect();
    assert_eq!(
        now_there,
        vec![next_drill.output.drills[0].resource.clone()]
    );
}
