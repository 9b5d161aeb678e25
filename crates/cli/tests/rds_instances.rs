//! RDS DB instances through every flow, over the emulated world: instances are created with
//! the real RDS API (CreateDBInstance, read replicas, option groups, StopDBInstance), and the
//! outcome is read back with plain clients.

mod common;

use std::collections::BTreeSet;

use common::*;
use jiff::Timestamp;
use snapcourier_aws::steps;
use snapcourier_core::events::{DestinationRun, Look, SourceRun};

const SCHEDULE: &str = "rds-daily";

async fn create_instance(
    emu: &Emulator,
    id: &str,
    engine: &str,
    version: &str,
    kms_key: Option<&str>,
    option_group: Option<&str>,
) {
    emu.rds(Side::Source, SOURCE_REGION)
        .create_db_instance()
        .db_instance_identifier(id)
        .engine(engine)
        .engine_version(version)
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("password-123")
        .storage_encrypted(kms_key.is_some())
        .set_kms_key_id(kms_key.map(str::to_string))
        .set_option_group_name(option_group.map(str::to_string))
        .send()
        .await
        .unwrap();
}

/// The demo world has the two matching instances (mysql with a CMK and the option group
/// app-opts, postgres unencrypted), a read replica and one outside the include patterns; add
/// a stopped instance and an Aurora cluster member (not an instance snapshot's business).
async fn seed(emu: &Emulator) {
    create_instance(emu, "ledger-stopped", "mariadb", "10.11.8", None, None).await;
    let rds = emu.rds(Side::Source, SOURCE_REGION);
    rds.stop_db_instance()
        .db_instance_identifier("ledger-stopped")
        .send()
        .await
        .unwrap();
    rds.create_db_instance()
        .db_instance_identifier("orders-aurora-1")
        .db_cluster_identifier("orders-db")
        .engine("aurora-postgresql")
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .unwrap();
}

fn owned_rds(all: &[Seen]) -> Vec<Seen> {
    owned(all)
        .into_iter()
        .filter(|s| s.tags["snapcourier:schedule"] == SCHEDULE)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_of_every_engine_are_protected_and_replicas_and_stopped_ones_skipped() {
    let emu = Emulator::start(Seed::Demo);
    seed(&emu).await;
    let c = config();
    let (src, dst) = run_schedule(&emu, &c, SCHEDULE).await;
    assert!(src.failures.is_empty(), "{:?}", src.failures);
    assert!(dst.failures.is_empty(), "{:?}", dst.failures);

    // Skipped, each with its reason, in the run's output.
    let skipped: Vec<(&str, &str)> = src
        .skipped
        .iter()
        .map(|s| (s.resource_id.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped
            .iter()
            .any(|(r, why)| *r == "orders-replica" && why.contains("read replica of orders-mysql"))
    );
    assert!(
        skipped
            .iter()
            .any(|(r, why)| *r == "ledger-stopped" && why.contains("`stopped`"))
    );
    let table = snapcourier_cli::output::render_report(&src);
    assert!(
        table.contains("orders-replica") && table.contains("read replica"),
        "{table}"
    );

    // Source: one snapshot per protected instance, shared, tagged.
    let source = owned_rds(&instance_snapshots(&emu, Side::Source, SOURCE_REGION).await);
    let instances: BTreeSet<&str> = source.iter().map(|s| s.cluster.as_str()).collect();
    assert_eq!(instances, BTreeSet::from(["billing-pg", "orders-mysql"]));
    for s in &source {
        assert_eq!(s.status, "available");
        assert_eq!(
            instance_restore_accounts(&emu, &s.id).await,
            vec![DESTINATION_ACCOUNT]
        );
        assert_eq!(s.tags["snapcourier:shared-with"], DESTINATION_ACCOUNT);
    }
    // Nothing else took a snapshot: no cluster snapshot for the Aurora member instance.
    assert!(owned(&snapshots(&emu, Side::Source, SOURCE_REGION).await).is_empty());

    // Destination: a copy of each in eu-west-1 with that region's key, even the unencrypted
    // one (an instance snapshot can be encrypted by copying); the option group mapped.
    let dest_key = emu.kms_key(DESTINATION_ACCOUNT, DESTINATION_REGION);
    let copies = owned_rds(&instance_snapshots(&emu, Side::Destination, DESTINATION_REGION).await);
    assert_eq!(
        copies.iter().map(|s| s.id.clone()).collect::<BTreeSet<_>>(),
        source.iter().map(|s| s.id.clone()).collect::<BTreeSet<_>>()
    );
    for copy in &copies {
        let original = source.iter().find(|s| s.id == copy.id).unwrap();
        assert_eq!(copy.status, "available");
        assert!(copy.encrypted, "{}", copy.id);
        assert_eq!(copy.kms_key.as_deref(), Some(dest_key.as_str()));
        assert_eq!(copy.tags["snapcourier:stage"], "destination");
        assert_eq!(copy.tags["snapcourier:source-arn"], original.arn);
    }
    let group = |instance: &str| {
        copies
            .iter()
            .find(|c| c.tags["snapcourier:resource"] == instance)
            .and_then(|c| c.option_group.clone())
    };
    assert_eq!(group("orders-mysql").as_deref(), Some("app-opts-eu"));
    assert_eq!(group("billing-pg").as_deref(), Some("default:postgres-16"));
    assert!(
        owned_rds(&instance_snapshots(&emu, Side::Destination, SOURCE_REGION).await).is_empty(),
        "intermediate copies are removed"
    );

    // A second run changes nothing and costs describe pages only.
    let (src2, dst2) = run_schedule(&emu, &c, SCHEDULE).await;
    assert!(src2.created.is_empty() && src2.deleted.is_empty() && src2.failures.is_empty());
    assert!(dst2.items.is_empty() && dst2.deleted.is_empty() && dst2.failures.is_empty());
    // Source: instances + snapshots (take) + snapshots (retention).
    assert_eq!(src2.api_calls, 3, "{src2:?}");
    // Destination: shared + two regions (copy-in) + two regions (clean-up).
    assert_eq!(dst2.api_calls, 5, "{dst2:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_past_the_limit_of_twenty_wait_for_a_later_pass() {
    let emu = Emulator::start(Seed::Empty);
    let c = config();
    // One share per database, each named for the slot it was created in, as the source does.
    // One base instant: ids computed at different moments must not straddle a slot boundary.
    let base = days_ago(1, 0);
    let created = |i: usize| base - jiff::SignedDuration::from_mins(i as i64);
    let id = |i: usize| slot_id(SCHEDULE, &format!("orders-db{i:02}"), created(i));
    let shared: Vec<_> = (0..25)
        .map(|i| {
            let mut s = owned_snapshot(
                SOURCE_ACCOUNT,
                SOURCE_REGION,
                &id(i),
                &format!("orders-db{i:02}"),
                created(i),
                "source",
                &[("snapcourier:shared-with", DESTINATION_ACCOUNT)],
            );
            s["kind"] = "instance".into();
            s["engine"] = "postgres".into();
            s["tags"][1]["Value"] = SCHEDULE.into();
            s["shared_with"] = serde_json::json!([DESTINATION_ACCOUNT]);
            s
        })
        .collect();
    emu.insert_snapshots(&shared);
    // Copies stay in progress for a while, so the first pass fills every slot.
    emu.configure(serde_json::json!({"creating_reads": 4}));
    let ctx = context(&emu, Side::Destination);
    let run = DestinationRun::from_config(&c, SCHEDULE, DESTINATION_ACCOUNT).unwrap();
    let look = Look::first(Timestamp::now());
    let first = steps::copy_in(&ctx, &run, None, &look, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(first.started.len(), 20, "{first:?}");
    assert_eq!(first.waiting.len(), 5);
    assert!(first.failures.is_empty(), "{first:?}");
    // Five wait (never-copied databases, in name order); the emulator enforces AWS's limit,
    // so none was refused.
    let waiting: BTreeSet<String> = first
        .waiting
        .iter()
        .map(|p| p.snapshot_id.clone())
        .collect();
    assert_eq!(waiting, (20..25).map(id).collect());
    assert!(
        first.next.seconds() > 0,
        "the run looks again: {:?}",
        first.next
    );
    let second = steps::copy_in(&ctx, &run, None, &look, Timestamp::now())
        .await
        .unwrap();
    assert!(
        second.started.is_empty(),
        "all slots still busy: {second:?}"
    );
    assert_eq!(second.waiting.len(), 5);

    // A full run follows the copies in flight and starts the rest in a later pass.
    let report = snapcourier_cli::runner::run_destination(
        &ctx,
        &run,
        Timestamp::now,
        &snapcourier_cli::runner::Quiet,
    )
    .await
    .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let finals = owned_rds(&instance_snapshots(&emu, Side::Destination, DESTINATION_REGION).await);
    assert_eq!(
        finals.iter().map(|s| s.id.clone()).collect::<BTreeSet<_>>(),
        (0..25).map(id).collect(),
        "the later pass copied the rest"
    );
    assert!(finals.iter().all(|s| s.status == "available"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_retention_expires_instance_snapshots_only_of_this_schedule() {
    let emu = Emulator::start(Seed::Empty);
    let c = config(); // rds-daily: days 7, keep_last 3
    let mut seeds = Vec::new();
    for d in 0..=10 {
        let mut s = owned_snapshot(
            SOURCE_ACCOUNT,
            SOURCE_REGION,
            &format!("sc-demo-rdsdaily-orders-mysql-d{d}"),
            "orders-mysql",
            days_ago(d, 1),
            "source",
            &[],
        );
        s["kind"] = "instance".into();
        s["engine"] = "mysql".into();
        s["tags"][1]["Value"] = SCHEDULE.into();
        seeds.push(s);
    }
    // The same database under the Aurora schedule's tag and an untagged one: never touched.
    let mut other = owned_snapshot(
        SOURCE_ACCOUNT,
        SOURCE_REGION,
        "sc-demo-auroradaily-orders-mysql-old",
        "orders-mysql",
        days_ago(30, 0),
        "source",
        &[],
    );
    other["kind"] = "instance".into();
    other["engine"] = "mysql".into();
    seeds.push(other);
    emu.insert_snapshots(&seeds);
    let out = steps::delete_source(
        &context(&emu, Side::Source),
        &SourceRun::from_config(&c, SCHEDULE).unwrap(),
        Timestamp::now(),
    )
    .await
    .unwrap();
    let deleted: BTreeSet<String> = out.deleted.iter().map(|d| d.snapshot_id.clone()).collect();
    assert_eq!(
        deleted,
        (7..=10)
            .map(|d| format!("sc-demo-rdsdaily-orders-mysql-d{d}"))
            .collect()
    );
    let left: BTreeSet<String> = instance_snapshots(&emu, Side::Source, SOURCE_REGION)
        .await
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert!(left.contains("sc-demo-auroradaily-orders-mysql-old"));
    assert_eq!(left.len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_on_the_default_key_gets_no_snapshot_and_the_others_complete() {
    let emu = Emulator::start(Seed::Demo);
    let default_key = emu.default_rds_key(SOURCE_ACCOUNT, SOURCE_REGION);
    create_instance(
        &emu,
        "billing-legacy",
        "mysql",
        "8.0.36",
        Some(&default_key),
        None,
    )
    .await;
    let c = config();
    let (src, dst) = run_schedule(&emu, &c, SCHEDULE).await;
    assert_eq!(src.failures.len(), 1, "{:?}", src.failures);
    let f = &src.failures[0];
    assert_eq!(
        (
            f.resource.as_str(),
            f.stage.as_str(),
            f.error.error_type.as_str()
        ),
        ("billing-legacy", "take", "KmsKeyUnusable")
    );
    assert!(
        f.error.message.contains("DB instance billing-legacy")
            && f.error.message.contains("aws/rds"),
        "{}",
        f.error.message
    );
    assert!(
        owned_rds(&instance_snapshots(&emu, Side::Source, SOURCE_REGION).await)
            .iter()
            .all(|s| s.tags["snapcourier:resource"] != "billing-legacy"),
        "no snapshot that could never be shared"
    );
    assert!(dst.failures.is_empty(), "{:?}", dst.failures);
    let copies = owned_rds(&instance_snapshots(&emu, Side::Destination, DESTINATION_REGION).await);
    let copied: BTreeSet<String> = copies
        .iter()
        .map(|c| c.tags["snapcourier:resource"].clone())
        .collect();
    assert_eq!(
        copied,
        BTreeSet::from(["billing-pg".to_string(), "orders-mysql".to_string()])
    );
}
