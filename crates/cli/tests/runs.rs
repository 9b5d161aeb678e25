//! Whole runs over the emulated world (two accounts, two regions): what exists where
//! afterwards, with which key and tags, and what the runs cost.

mod common;

use std::collections::BTreeSet;

use common::*;
use jiff::Timestamp;
use snapcourier_aws::steps;
use snapcourier_cli::runner::{Quiet, run_destination, run_source};
use snapcourier_core::events::Look;

const MATCHING: [&str; 3] = ["analytics-db", "billing-db", "orders-db"];

fn ids(list: &[Seen]) -> BTreeSet<String> {
    list.iter().map(|s| s.id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_then_destination_protects_every_matching_cluster() {
    let emu = Emulator::start(Seed::Demo);
    let c = config();
    let unowned_before: Vec<Seen> = snapshots(&emu, Side::Source, SOURCE_REGION)
        .await
        .into_iter()
        .filter(|s| {
            !s.tags.contains_key("snapcourier:namespace")
                || s.tags["snapcourier:namespace"] != "demo"
        })
        .collect();
    assert!(
        unowned_before.len() >= 2,
        "the demo world seeds snapshots we do not own"
    );

    let (src, dst) = run_both(&emu, &c).await;
    assert!(src.failures.is_empty(), "{:?}", src.failures);
    assert!(dst.failures.is_empty(), "{:?}", dst.failures);

    // Source: exactly one owned snapshot per matching cluster, restorable by the destination.
    let source_all = snapshots(&emu, Side::Source, SOURCE_REGION).await;
    let source_owned = owned(&source_all);
    let clusters: Vec<&str> = source_owned.iter().map(|s| s.cluster.as_str()).collect();
    assert_eq!(
        clusters.iter().copied().collect::<BTreeSet<_>>(),
        MATCHING.into_iter().collect()
    );
    assert_eq!(
        source_owned.len(),
        3,
        "one snapshot per cluster: {source_owned:?}"
    );
    for s in &source_owned {
        assert_eq!(s.status, "available");
        assert_eq!(
            restore_accounts(&emu, &s.id).await,
            vec![DESTINATION_ACCOUNT.to_string()],
            "{}",
            s.id
        );
        assert_eq!(s.tags["snapcourier:stage"], "source");
        assert_eq!(s.tags["snapcourier:shared-with"], DESTINATION_ACCOUNT);
    }
    // Nothing unowned changed: same snapshots, same tags, still not shared.
    for before in &unowned_before {
        let after = source_all
            .iter()
            .find(|s| s.id == before.id)
            .expect("unowned snapshot still exists");
        assert_eq!(after.tags, before.tags);
        assert!(restore_accounts(&emu, &before.id).await.is_empty());
    }

    // Destination: one copy per source snapshot in eu-west-1, with the eu-west-1 key (for the
    // encrypted ones) and provenance tags; no intermediate left in us-east-1.
    let dest_key = emu.kms_key(DESTINATION_ACCOUNT, DESTINATION_REGION);
    let copies = owned(&snapshots(&emu, Side::Destination, DESTINATION_REGION).await);
    assert_eq!(ids(&copies), ids(&source_owned));
    for copy in &copies {
        let original = source_owned.iter().find(|s| s.id == copy.id).unwrap();
        assert_eq!(copy.status, "available");
        assert_eq!(copy.tags["snapcourier:stage"], "destination");
        assert_eq!(copy.tags["snapcourier:source-arn"], original.arn);
        assert_eq!(
            copy.tags["snapcourier:source-created"],
            original.created.unwrap().to_string()
        );
        assert_eq!(copy.encrypted, original.encrypted, "{}", copy.id);
        if original.encrypted {
            assert_eq!(
                copy.kms_key.as_deref(),
                Some(dest_key.as_str()),
                "{}",
                copy.id
            );
        }
    }
    assert!(
        copies.iter().filter(|c| c.encrypted).count() >= 2,
        "the demo has encrypted clusters"
    );
    let intermediates = owned(&snapshots(&emu, Side::Destination, SOURCE_REGION).await);
    assert!(
        intermediates.is_empty(),
        "intermediate copies left: {intermediates:?}"
    );
    assert_eq!(
        dst.deleted
            .iter()
            .filter(|d| d.reason == "intermediate")
            .count(),
        3
    );
    // The destination's own unowned snapshot is untouched.
    let dest_all = snapshots(&emu, Side::Destination, DESTINATION_REGION).await;
    assert!(dest_all.iter().any(|s| s.id == "dest-unowned-keep"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_changes_nothing_and_costs_only_describe_pages() {
    let emu = Emulator::start(Seed::Demo);
    let c = config();
    run_both(&emu, &c).await;
    let source_before = snapshots(&emu, Side::Source, SOURCE_REGION).await;
    let dest_before = snapshots(&emu, Side::Destination, DESTINATION_REGION).await;

    let (src, dst) = run_both(&emu, &c).await;
    assert!(
        src.created.is_empty() && src.deleted.is_empty() && src.failures.is_empty(),
        "{src:?}"
    );
    assert!(
        dst.items.is_empty() && dst.deleted.is_empty() && dst.failures.is_empty(),
        "{dst:?}"
    );
    assert_eq!(
        snapshots(&emu, Side::Source, SOURCE_REGION).await,
        source_before
    );
    assert_eq!(
        snapshots(&emu, Side::Destination, DESTINATION_REGION).await,
        dest_before
    );
    // Source: clusters page + snapshots page (take) + snapshots page (retention).
    assert_eq!(src.api_calls, 3, "{src:?}");
    // Destination: shared page + two regions (copy-in) + two regions (clean-up).
    assert_eq!(dst.api_calls, 5, "{dst:?}");

    // 250 more snapshots already handled on each side: the cost grows by describe pages only.
    let recent = days_ago(1, 0);
    let handled: Vec<_> = (0..250)
        .map(|i| {
            owned_snapshot(
                SOURCE_ACCOUNT,
                SOURCE_REGION,
                &format!("sc-demo-auroradaily-old{i}-20261101-0000"),
                &format!("old{i}"),
                recent,
                "source",
                &[("snapcourier:shared-with", DESTINATION_ACCOUNT)],
            )
        })
        .collect();
    emu.insert_snapshots(&handled);
    let copied: Vec<_> = (0..250)
        .map(|i| {
            owned_snapshot(
                DESTINATION_ACCOUNT,
                DESTINATION_REGION,
                &format!("sc-demo-auroradaily-old{i}-20261101-0000"),
                &format!("old{i}"),
                recent,
                "destination",
                &[],
            )
        })
        .collect();
    emu.insert_snapshots(&copied);
    emu.reset_requests();
    let (src, dst) = run_both(&emu, &c).await;
    assert!(src.failures.is_empty() && dst.failures.is_empty());
    assert!(src.deleted.is_empty() && dst.deleted.is_empty());
    // 255 source snapshots: 3 pages, read twice, plus 1 clusters page.
    assert_eq!(src.api_calls, 1 + 3 + 3, "{src:?}");
    // 3 shared (1 page); us-east-1 empty (1 page); eu-west-1 253 copies (3 pages); twice locally.
    assert_eq!(dst.api_calls, 1 + (1 + 3) * 2, "{dst:?}");
    // The emulator saw the same number of requests the product counted.
    let seen: u64 = emu.requests().values().sum();
    assert_eq!(seen, src.api_attempts + dst.api_attempts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_snapshots_and_copies_that_stay_creating() {
    let emu = Emulator::start(Seed::Demo);
    emu.configure(serde_json::json!({"creating_reads": 3}));
    let c = config();
    let (src, dst) = run_both(&emu, &c).await;
    assert!(src.failures.is_empty(), "{:?}", src.failures);
    assert!(dst.failures.is_empty(), "{:?}", dst.failures);
    let copies = owned(&snapshots(&emu, Side::Destination, DESTINATION_REGION).await);
    assert_eq!(copies.len(), 3);
    assert!(copies.iter().all(|c| c.status == "available"));
    assert!(owned(&snapshots(&emu, Side::Destination, SOURCE_REGION).await).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_stuck_creating_is_reported_and_the_others_complete() {
    let emu = Emulator::start(Seed::Demo);
    emu.configure(serde_json::json!({"stuck": ["^sc-demo-auroradaily-billing-db-"]}));
    let mut c = config();
    c.settings.deadline_seconds = Some(4);
    let src = run_source(
        &context(&emu, Side::Source),
        &source_run(&c),
        Timestamp::now,
        &Quiet,
    )
    .await
    .unwrap();
    assert_eq!(src.failures.len(), 1, "{:?}", src.failures);
    assert_eq!(src.failures[0].resource, "billing-db");
    assert!(
        src.failures[0]
            .error
            .message
            .contains("when the run stopped"),
        "{:?}",
        src.failures[0]
    );
    assert_eq!(src.items.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_exactly_the_expected_snapshots_on_both_sides() {
    let emu = Emulator::start(Seed::Empty);
    let c = config(); // source: days 7, keep_last 3; destination: days 35, keep_last 7, weekly 8, monthly 12
    let mut seeds = Vec::new();
    // Owned source snapshots of orders-db, 0..=12 days old (plus one hour, off the boundary).
    for d in 0..=12 {
        seeds.push(owned_snapshot(
            SOURCE_ACCOUNT,
            SOURCE_REGION,
            &format!("sc-demo-auroradaily-orders-db-d{d}"),
            "orders-db",
            days_ago(d, 1),
            "source",
            &[],
        ));
    }
    // An owned one still creating, very old: not available, never deleted.
    let mut creating = owned_snapshot(
        SOURCE_ACCOUNT,
        SOURCE_REGION,
        "sc-demo-auroradaily-orders-db-creating",
        "orders-db",
        days_ago(90, 0),
        "source",
        &[],
    );
    creating["status"] = "creating".into();
    seeds.push(creating);
    // Unowned: no tags, and another deployment's namespace.
    let mut theirs = owned_snapshot(
        SOURCE_ACCOUNT,
        SOURCE_REGION,
        "sc-other-orders-db-old",
        "orders-db",
        days_ago(300, 0),
        "source",
        &[],
    );
    theirs["tags"][0]["Value"] = "other".into();
    seeds.push(theirs);
    let mut untagged = owned_snapshot(
        SOURCE_ACCOUNT,
        SOURCE_REGION,
        "manual-orders-old",
        "orders-db",
        days_ago(300, 0),
        "source",
        &[],
    );
    untagged["tags"] = serde_json::json!([]);
    seeds.push(untagged);
    // Destination copies: 0..=60 days, by source capture time.
    for d in (0..=60).step_by(5) {
        let created = days_ago(d, 1).to_string();
        seeds.push(owned_snapshot(
            DESTINATION_ACCOUNT,
            DESTINATION_REGION,
            &format!("sc-demo-auroradaily-orders-db-d{d}"),
            "orders-db",
            days_ago(0, 0),
            "destination",
            &[("snapcourier:source-created", &created)],
        ));
    }
    // A copy of ours still being made, captured long ago: not available, never deleted.
    let old_capture = days_ago(300, 0).to_string();
    let mut copying = owned_snapshot(
        DESTINATION_ACCOUNT,
        DESTINATION_REGION,
        "sc-demo-auroradaily-orders-db-copying",
        "orders-db",
        days_ago(0, 0),
        "destination",
        &[("snapcourier:source-created", &old_capture)],
    );
    copying["status"] = "creating".into();
    seeds.push(copying);
    let mut unowned_dest = owned_snapshot(
        DESTINATION_ACCOUNT,
        DESTINATION_REGION,
        "dest-manual-old",
        "orders-db",
        days_ago(400, 0),
        "destination",
        &[],
    );
    unowned_dest["tags"] = serde_json::json!([]);
    seeds.push(unowned_dest);
    emu.insert_snapshots(&seeds);

    let now = Timestamp::now();
    let src = steps::delete_source(&context(&emu, Side::Source), &source_run(&c), now)
        .await
        .unwrap();
    let deleted: BTreeSet<String> = src.deleted.iter().map(|d| d.snapshot_id.clone()).collect();
    let expected: BTreeSet<String> = (7..=12)
        .map(|d| format!("sc-demo-auroradaily-orders-db-d{d}"))
        .collect();
    assert_eq!(deleted, expected);
    let left = ids(&snapshots(&emu, Side::Source, SOURCE_REGION).await);
    for keep in [
        "sc-demo-auroradaily-orders-db-d0",
        "sc-demo-auroradaily-orders-db-d6",
        "sc-demo-auroradaily-orders-db-creating",
        "sc-other-orders-db-old",
        "manual-orders-old",
    ] {
        assert!(left.contains(keep), "{keep} was deleted");
    }
    assert!(left.is_disjoint(&expected));

    // Destination: younger than 35 days stay (d0..d30 by fives: 7 copies, which are also the
    // newest 7); of the older ones the weekly and monthly tiers keep the newest per ISO week
    // and per month among the newest 8 weeks / 12 months that have copies.
    let dst =
        steps::delete_destination(&context(&emu, Side::Destination), &destination_run(&c), now)
            .await
            .unwrap();
    let policy = destination_run(&c).destination.retention;
    let candidates: Vec<_> = (0..=60)
        .step_by(5)
        .map(|d| snapcourier_core::retention::RetentionCandidate {
            id: format!("sc-demo-auroradaily-orders-db-d{d}"),
            resource: "orders-db".into(),
            created: days_ago(d, 1),
            owned: true,
            available: true,
        })
        .collect();
    let expected: BTreeSet<String> =
        snapcourier_core::retention::plan_retention(&policy, &candidates, now)
            .delete
            .into_iter()
            .collect();
    let deleted: BTreeSet<String> = dst.deleted.iter().map(|d| d.snapshot_id.clone()).collect();
    assert_eq!(deleted, expected);
    let left = ids(&snapshots(&emu, Side::Destination, DESTINATION_REGION).await);
    assert!(left.contains("dest-manual-old"));
    assert!(left.contains("sc-demo-auroradaily-orders-db-copying"));
    for d in (0..=30).step_by(5) {
        assert!(left.contains(&format!("sc-demo-auroradaily-orders-db-d{d}")));
    }
}

/// The vault's floor is enforced by the delete step itself, not only by validation: a run
/// that reached the step without a floor (built by hand, never validated) and with
/// `keep_last: 1` deletes nothing, and reports each copy its policy asked to delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delete_step_refuses_copies_under_the_floor_whatever_the_policy() {
    let emu = Emulator::start(Seed::Empty);
    let c = config();
    let copies: Vec<_> = (0..=60)
        .step_by(5)
        .map(|d| {
            let created = days_ago(d, 1);
            owned_snapshot(
                DESTINATION_ACCOUNT,
                DESTINATION_REGION,
                &format!("sc-demo-auroradaily-orders-db-d{d}"),
                "orders-db",
                created,
                "destination",
                &[("snapcourier:source-created", &created.to_string())],
            )
        })
        .collect();
    emu.insert_snapshots(&copies);
    let before = ids(&snapshots(&emu, Side::Destination, DESTINATION_REGION).await);
    assert_eq!(before.len(), 13);
    let mut run = destination_run(&c);
    run.destination.retention = snapcourier_core::retention::RetentionPolicy {
        days: None,
        keep_last: 1,
        tiers: None,
    };
    assert!(
        run.validate("run").is_err(),
        "validation refuses a destination without days"
    );
    let out = steps::delete_destination(&context(&emu, Side::Destination), &run, Timestamp::now())
        .await
        .unwrap();
    assert!(out.deleted.is_empty(), "{:?}", out.deleted);
    assert_eq!(
        out.failed, 12,
        "every copy but the newest was asked for: {:?}",
        out.failures
    );
    for f in &out.failures {
        assert_eq!(f.stage, "delete");
        assert_eq!(f.error.error_type, "InvalidState");
        assert!(f.error.message.contains("floor"), "{}", f.error.message);
    }
    assert_eq!(
        ids(&snapshots(&emu, Side::Destination, DESTINATION_REGION).await),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_sees_all_150_snapshots_through_paging() {
    let emu = Emulator::start(Seed::Empty);
    let c = config();
    let id = |i: usize| format!("sc-demo-auroradaily-big-db-d{i:03}");
    // 150 owned source snapshots of one database, 10 to 159 days old, shared with the
    // destination but without our progress marker.
    let mut source: Vec<_> = (0..150)
        .map(|i| {
            owned_snapshot(
                SOURCE_ACCOUNT,
                SOURCE_REGION,
                &id(i),
                "big-db",
                days_ago(10 + i as i64, 0),
                "source",
                &[],
            )
        })
        .collect();
    for s in &mut source {
        s["shared_with"] = serde_json::json!([DESTINATION_ACCOUNT]);
    }
    emu.insert_snapshots(&source);
    // The destination already holds a copy of each in eu-west-1, and an intermediate in us-east-1.
    let recent = days_ago(1, 0).to_string();
    let finals: Vec<_> = (0..150)
        .map(|i| {
            owned_snapshot(
                DESTINATION_ACCOUNT,
                DESTINATION_REGION,
                &id(i),
                "big-db",
                days_ago(1, 0),
                "destination",
                &[("snapcourier:source-created", &recent)],
            )
        })
        .collect();
    let intermediates: Vec<_> = (0..150)
        .map(|i| {
            owned_snapshot(
                DESTINATION_ACCOUNT,
                SOURCE_REGION,
                &id(i),
                "big-db",
                days_ago(1, 0),
                "intermediate",
                &[],
            )
        })
        .collect();
    emu.insert_snapshots(&finals);
    emu.insert_snapshots(&intermediates);

    // copy-in sees all 150 shared and all 150 copies: nothing to start, nothing waiting.
    let dst_ctx = context(&emu, Side::Destination);
    let now = Timestamp::now();
    let copied = steps::copy_in(&dst_ctx, &destination_run(&c), None, &Look::first(now), now)
        .await
        .unwrap();
    assert!(
        copied.started.is_empty() && copied.waiting.is_empty() && copied.too_old.is_empty(),
        "{copied:?}"
    );
    assert!(
        copied.in_flight.is_empty() && copied.regional_wanted == 0 && copied.next.is_finished(),
        "every snapshot already has its regional copy"
    );
    assert_eq!(copied.done.len(), 150);
    // Clean-up sees every copy on both pages of both regions: all 150 intermediates go.
    let cleaned = steps::delete_destination(&dst_ctx, &destination_run(&c), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(
        cleaned
            .deleted
            .iter()
            .filter(|d| d.reason == "intermediate")
            .count(),
        150
    );
    assert!(owned(&snapshots(&emu, Side::Destination, SOURCE_REGION).await).is_empty());

    // Source: take follows all 150, share marks all 150, retention (keep_last 3, 7 days)
    // expires exactly the 147 oldest.
    let src_ctx = context(&emu, Side::Source);
    let taken = steps::take(&src_ctx, &source_run(&c), None, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(
        taken.items.len(),
        150,
        "take follows every unmarked snapshot"
    );
    let src = run_source(&src_ctx, &source_run(&c), Timestamp::now, &Quiet)
        .await
        .unwrap();
    assert_eq!(src.items.len(), 150);
    assert_eq!(src.deleted.len(), 147);
    let left = owned(&snapshots(&emu, Side::Source, SOURCE_REGION).await);
    assert_eq!(ids(&left), (0..3).map(id).collect());
    assert!(
        left.iter()
            .all(|s| s.tags["snapcourier:shared-with"] == DESTINATION_ACCOUNT)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_with_thirty_percent_of_calls_throttled_and_no_duplicate() {
    let emu = Emulator::start(Seed::Demo);
    emu.configure(serde_json::json!({"throttle_rate": 0.3, "throttle_seed": 7}));
    let c = config();
    let (src, dst) = run_both(&emu, &c).await;
    assert!(src.failures.is_empty(), "{:?}", src.failures);
    assert!(dst.failures.is_empty(), "{:?}", dst.failures);
    assert!(
        src.api_attempts > src.api_calls,
        "throttled calls were retried: {src:?}"
    );
    // A second run under throttling still creates nothing new.
    let (src2, dst2) = run_both(&emu, &c).await;
    assert!(
        src2.created.is_empty() && dst2.items.is_empty(),
        "{src2:?} {dst2:?}"
    );
    emu.configure(serde_json::json!({"throttle_rate": 0.0}));
    let source_owned = owned(&snapshots(&emu, Side::Source, SOURCE_REGION).await);
    assert_eq!(source_owned.len(), 3, "{source_owned:?}");
    let copies = owned(&snapshots(&emu, Side::Destination, DESTINATION_REGION).await);
    assert_eq!(ids(&copies), ids(&source_owned));
    assert!(owned(&snapshots(&emu, Side::Destination, SOURCE_REGION).await).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_on_the_default_key_gets_no_snapshot_and_one_failure_per_run() {
    let emu = Emulator::start(Seed::Demo);
    let default_key = emu.default_rds_key(SOURCE_ACCOUNT, SOURCE_REGION);
    emu.create_cluster(serde_json::json!({
        "account": SOURCE_ACCOUNT, "region": SOURCE_REGION, "id": "billing-legacy",
        "engine": "aurora-mysql", "kms_key_id": default_key
    }));
    let c = config();
    // Twice: each run fails once for it, and no snapshot that could never be shared piles up.
    for run in 1..=2 {
        let (src, dst) = run_both(&emu, &c).await;
        assert_eq!(src.failures.len(), 1, "run {run}: {:?}", src.failures);
        let f = &src.failures[0];
        assert_eq!(f.resource, "billing-legacy");
        assert_eq!(f.stage, "take");
        assert_eq!(f.error.error_type, "KmsKeyUnusable");
        assert!(
            f.error.message.contains("aws/rds")
                && f.error.message.contains("takes none")
                && f.error.message.contains("customer managed"),
            "{}",
            f.error.message
        );
        let legacy = owned(&snapshots(&emu, Side::Source, SOURCE_REGION).await)
            .into_iter()
            .filter(|s| s.cluster == "billing-legacy")
            .count();
        assert_eq!(legacy, 0, "run {run}");
        assert!(dst.failures.is_empty(), "{:?}", dst.failures);
    }
    // The other databases are protected as usual.
    let copies = owned(&snapshots(&emu, Side::Destination, DESTINATION_REGION).await);
    let clusters: BTreeSet<_> = copies
        .iter()
        .map(|c| c.tags["snapcourier:resource"].clone())
        .collect();
    assert_eq!(clusters, MATCHING.into_iter().map(String::from).collect());

    // A snapshot on that key made before this check (an older version) is never shared: the
    // share step reports it as well.
    let mut older = owned_snapshot(
        SOURCE_ACCOUNT,
        SOURCE_REGION,
        "sc-demo-auroradaily-billing-legacy-20261101-0000",
        "billing-legacy",
        days_ago(1, 0),
        "source",
        &[],
    );
    older["kms_key_id"] = default_key.clone().into();
    emu.insert_snapshots(&[older]);
    let src = run_source(
        &context(&emu, Side::Source),
        &source_run(&c),
        Timestamp::now,
        &Quiet,
    )
    .await
    .unwrap();
    let stages: BTreeSet<(&str, &str)> = src
        .failures
        .iter()
        .map(|f| (f.stage.as_str(), f.error.error_type.as_str()))
        .collect();
    assert_eq!(
        stages,
        BTreeSet::from([("share", "KmsKeyUnusable"), ("take", "KmsKeyUnusable")]),
        "{:?}",
        src.failures
    );
    assert!(
        restore_accounts(&emu, "sc-demo-auroradaily-billing-legacy-20261101-0000")
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_run_overlaps_its_calls_and_makes_three_per_new_snapshot() {
    // Four times the default call concurrency (10), with a real endpoint's round trip.
    let (report, requests, peak, _) = source_run_at_latency(40, 30).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.created.len(), 40);
    assert_eq!(report.items.len(), 40, "every snapshot shared");
    // Per new snapshot: create (tags included), share, record the share. No describe of
    // the share attribute, no describe per snapshot: the looks list pages.
    for action in [
        "rds:CreateDBClusterSnapshot",
        "rds:ModifyDBClusterSnapshotAttribute",
        "rds:AddTagsToResource",
    ] {
        assert_eq!(requests.get(action), Some(&40), "{action}: {requests:?}");
    }
    assert_eq!(
        requests.get("rds:DescribeDBClusterSnapshotAttributes"),
        None,
        "{requests:?}"
    );
    let describes = requests["rds:DescribeDBClusterSnapshots"];
    assert!(
        describes <= 6,
        "pages, not a describe per snapshot: {requests:?}"
    );
    // The calls overlapped, up to the call concurrency.
    assert!((5..=10).contains(&peak), "peak {peak} RDS calls at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_is_never_shared_or_copied_is_named_unprotected() {
    let emu = Emulator::start(Seed::Demo);
    let c = config();
    let deny = |account: &str, action: &str| serde_json::json!({"deny": [{"account": account, "action": action, "resource": "billing-db"}]});
    // Source: sharing billing-db's snapshot is denied. The schedule's newest shared point is
    // young, yet billing-db has none: the coverage at the end of the run names it.
    emu.configure(deny(SOURCE_ACCOUNT, "rds:ModifyDBClusterSnapshotAttribute"));
    let src = run_source(
        &context(&emu, Side::Source),
        &source_run(&c),
        Timestamp::now,
        &Quiet,
    )
    .await
    .unwrap();
    assert_eq!(src.failures.len(), 1, "{:?}", src.failures);
    assert!(src.heartbeat.as_ref().unwrap().age_seconds.unwrap() < 600);
    let coverage = src.coverage.clone().unwrap();
    assert_eq!(
        (coverage.databases, coverage.unprotected),
        (3, 1),
        "{coverage:?}"
    );
    assert_eq!(coverage.threshold_seconds, 2 * 86_400);
    assert_eq!(coverage.named[0].database, "billing-db");
    assert_eq!(coverage.named[0].newest, None);
    // Allowed again, the next run shares it: every database covered.
    emu.configure(serde_json::json!({"deny": []}));
    let src = run_source(
        &context(&emu, Side::Source),
        &source_run(&c),
        Timestamp::now,
        &Quiet,
    )
    .await
    .unwrap();
    assert!(src.failures.is_empty(), "{:?}", src.failures);
    assert_eq!(src.coverage.unwrap().unprotected, 0);

    // Destination: copying billing-db's share is denied.
    emu.configure(deny(DESTINATION_ACCOUNT, "rds:CopyDBClusterSnapshot"));
    let dst = run_destination(
        &context(&emu, Side::Destination),
        &destination_run(&c),
        Timestamp::now,
        &Quiet,
    )
    .await
    .unwrap();
    assert_eq!(dst.failures.len(), 1, "{:?}", dst.failures);
    assert_eq!(dst.failures[0].resource, "billing-db");
    assert!(dst.heartbeat.as_ref().unwrap().age_seconds.unwrap() < 600);
    let coverage = dst.coverage.clone().unwrap();
    assert_eq!(
        (coverage.databases, coverage.unprotected),
        (3, 1),
        "{coverage:?}"
    );
    assert_eq!(coverage.named[0].database, "billing-db");
    assert_eq!(coverage.named[0].newest, None);
    let printed = snapcourier_cli::output::render_report(&dst);
    assert!(
        printed.contains("1 of 3 databases have NO recovery point protected within 48h")
            && printed.contains("billing-db"),
        "{printed}"
    );
}
