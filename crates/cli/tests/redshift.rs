//! Redshift clusters through every flow, over the emulated world: clusters are created with
//! the real Redshift API, and what exists afterwards is read with plain clients, from the
//! source account and, for shares, from the destination account.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use jiff::Timestamp;
use snapcourier_aws::steps;
use snapcourier_core::config::RedshiftOptions;
use snapcourier_core::events::{DestinationRun, SourceRun};

const SCHEDULE: &str = "warehouse-daily";
const GRANT: &str = "snapcourier-demo";

fn ours(all: Vec<Shot>) -> Vec<Shot> {
    all.into_iter()
        .filter(|s| s.tags.get("snapcourier:namespace").map(String::as_str) == Some("demo"))
        .collect()
}

fn clusters_of(all: &[Shot]) -> BTreeSet<String> {
    all.iter().map(|s| s.cluster.clone()).collect()
}

async fn create_cluster(emu: &Emulator, id: &str, kms_key: Option<&str>) {
    emu.redshift(Side::Source, SOURCE_REGION)
        .create_cluster()
        .cluster_identifier(id)
        .node_type("ra3.xlplus")
        .cluster_type("single-node")
        .master_username("admin")
        .master_user_password("Password-123")
        .encrypted(kms_key.is_some())
        .set_kms_key_id(kms_key.map(str::to_string))
        .send()
        .await
        .unwrap();
}

fn source_run(c: &snapcourier_core::Config) -> SourceRun {
    SourceRun::from_config(c, SCHEDULE).unwrap()
}

fn destination_run(c: &snapcourier_core::Config) -> DestinationRun {
    DestinationRun::from_config(c, SCHEDULE, DESTINATION_ACCOUNT).unwrap()
}

/// An owned source snapshot of schedule warehouse-daily for the direct insert route.
fn inserted(
    region: &str,
    id: &str,
    cluster: &str,
    age_days: i64,
    shared: bool,
) -> serde_json::Value {
    let mut s = owned_snapshot(
        SOURCE_ACCOUNT,
        region,
        id,
        cluster,
        days_ago(age_days, 1),
        "source",
        &[],
    );
    s["kind"] = "redshift".into();
    s["cluster"] = cluster.into();
    s["tags"][1]["Value"] = SCHEDULE.into();
    if shared {
        s["shared_with"] = serde_json::json!([DESTINATION_ACCOUNT]);
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_and_unencrypted_clusters_are_shared_in_both_regions_and_verified() {
    let emu = Emulator::start(Seed::Empty);
    let source_key = emu.kms_key(SOURCE_ACCOUNT, SOURCE_REGION);
    create_cluster(&emu, "warehouse-main", Some(&source_key)).await;
    create_cluster(&emu, "warehouse-raw", None).await;
    create_cluster(&emu, "scratch-dw", None).await;
    emu.configure(serde_json::json!({"creating_reads": 2}));
    let c = config();
    let (src, dst) = run_schedule(&emu, &c, SCHEDULE).await;
    assert!(src.failures.is_empty(), "{:?}", src.failures);
    assert!(dst.failures.is_empty(), "{:?}", dst.failures);

    let wanted = BTreeSet::from(["warehouse-main".to_string(), "warehouse-raw".to_string()]);
    // Source region: one manual snapshot per covered cluster, with the safety-net retention
    // (7 days + 30), restorable by the destination, marked shared.
    let source = ours(redshift_shots(&emu, Side::Source, SOURCE_REGION, None).await);
    assert_eq!(clusters_of(&source), wanted);
    for s in &source {
        assert_eq!(s.status, "available");
        assert_eq!(s.retention_days, Some(37), "{s:?}");
        assert_eq!(s.restore, BTreeSet::from([DESTINATION_ACCOUNT.to_string()]));
        assert_eq!(s.tags["snapcourier:shared-with"], DESTINATION_ACCOUNT);
    }
    // Both clusters copy to eu-west-1; the encrypted one through our grant for the configured
    // key, which exists in eu-west-1.
    let rs = emu.redshift(Side::Source, SOURCE_REGION);
    let clusters = rs.describe_clusters().send().await.unwrap();
    for cl in clusters.clusters() {
        let copy = cl.cluster_snapshot_copy_status();
        match cl.cluster_identifier().unwrap() {
            "warehouse-main" => {
                assert_eq!(
                    copy.and_then(|c| c.destination_region()),
                    Some(DESTINATION_REGION)
                );
                assert_eq!(copy.and_then(|c| c.snapshot_copy_grant_name()), Some(GRANT));
            }
            "warehouse-raw" => {
                assert_eq!(
                    copy.and_then(|c| c.destination_region()),
                    Some(DESTINATION_REGION)
                );
                assert_eq!(copy.and_then(|c| c.snapshot_copy_grant_name()), None);
            }
            other => assert!(
                copy.is_none(),
                "{other} was not covered but got a copy config"
            ),
        }
    }
    let grants = emu
        .redshift(Side::Source, DESTINATION_REGION)
        .describe_snapshot_copy_grants()
        .snapshot_copy_grant_name(GRANT)
        .send()
        .await
        .unwrap();
    let copy_key = c.source.redshift_copy_kms_key.clone().unwrap();
    assert_eq!(
        grants.snapshot_copy_grants()[0].kms_key_id(),
        Some(copy_key.as_str())
    );
    // The copy region: Redshift's copies, tagged ours by the share step, shared too; the
    // encrypted one under the grant's key.
    let copies = ours(redshift_shots(&emu, Side::Source, DESTINATION_REGION, None).await);
    assert_eq!(clusters_of(&copies), wanted);
    for copy in &copies {
        let original = source.iter().find(|s| s.id == copy.id).expect("same id");
        assert_eq!(copy.source_region.as_deref(), Some(SOURCE_REGION));
        assert_eq!(
            copy.restore,
            BTreeSet::from([DESTINATION_ACCOUNT.to_string()])
        );
        assert_eq!(copy.tags["snapcourier:resource"], original.cluster);
        assert_eq!(copy.encrypted, original.encrypted);
        if copy.encrypted {
            assert_eq!(copy.kms_key.as_deref(), Some(copy_key.as_str()));
        }
    }
    assert!(source.iter().any(|s| s.encrypted) && source.iter().any(|s| !s.encrypted));
    // The destination account sees every share in both regions, owns nothing, and said so.
    for region in [SOURCE_REGION, DESTINATION_REGION] {
        let visible = redshift_shots(&emu, Side::Destination, region, Some(SOURCE_ACCOUNT)).await;
        assert_eq!(clusters_of(&visible), wanted, "{region}");
        assert!(visible.iter().all(|s| s.owner == SOURCE_ACCOUNT));
        assert!(
            redshift_shots(&emu, Side::Destination, region, None)
                .await
                .is_empty()
        );
    }
    let verified: BTreeSet<String> = dst
        .verified
        .iter()
        .chain(dst.items.iter().map(|i| &i.snapshot_id))
        .cloned()
        .collect();
    assert_eq!(verified, source.iter().map(|s| s.id.clone()).collect());

    // A second run changes nothing and costs describe pages only.
    let (src2, dst2) = run_schedule(&emu, &c, SCHEDULE).await;
    assert!(src2.created.is_empty() && src2.deleted.is_empty() && src2.failures.is_empty());
    assert!(
        dst2.failures.is_empty() && dst2.items.is_empty(),
        "{dst2:?}"
    );
    assert_eq!(dst2.verified.len(), 2);
    // Source: clusters + snapshots (take) + snapshots in both regions (retention).
    assert_eq!(src2.api_calls, 4, "{src2:?}");
    // Destination: shares in both regions; nothing owned to clean up.
    assert_eq!(dst2.api_calls, 2, "{dst2:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_revokes_every_share_before_deleting_in_both_regions() {
    let emu = Emulator::start(Seed::Empty);
    let c = config(); // warehouse-daily: days 7, keep_last 3
    let mut seeds = Vec::new();
    for region in [SOURCE_REGION, DESTINATION_REGION] {
        for d in [0, 3, 6, 9, 12] {
            seeds.push(inserted(
                region,
                &format!("sc-demo-warehousedaily-warehouse-main-d{d}"),
                "warehouse-main",
                d,
                true,
            ));
        }
    }
    // Old and shared, but not ours: never touched.
    let mut foreign = inserted(
        SOURCE_REGION,
        "team-warehouse-keep",
        "warehouse-main",
        90,
        true,
    );
    foreign["tags"] = serde_json::json!([]);
    seeds.push(foreign);
    emu.insert_snapshots(&seeds);

    let out = steps::delete_source(
        &context(&emu, Side::Source),
        &source_run(&c),
        Timestamp::now(),
    )
    .await
    .unwrap();
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    let deleted: BTreeSet<(String, String)> = out
        .deleted
        .iter()
        .map(|d| (d.region.clone(), d.snapshot_id.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = [SOURCE_REGION, DESTINATION_REGION]
        .into_iter()
        .flat_map(|r| {
            [9, 12].map(|d| {
                (
                    r.to_string(),
                    format!("sc-demo-warehousedaily-warehouse-main-d{d}"),
                )
            })
        })
        .collect();
    assert_eq!(deleted, expected);
    // Redshift refuses to delete a snapshot other accounts can restore: the deletions
    // succeeding prove the revokes came first, and the log shows one per deletion.
    let requests = emu.requests();
    let calls = |action: &str| -> u64 {
        requests
            .iter()
            .filter(|(k, _)| k.ends_with(action))
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(calls("RevokeSnapshotAccess"), 4, "{requests:?}");
    assert_eq!(calls("DeleteClusterSnapshot"), 4, "{requests:?}");
    let left: BTreeSet<String> = redshift_shots(&emu, Side::Source, SOURCE_REGION, None)
        .await
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert!(left.contains("team-warehouse-keep"));
    assert_eq!(left.len(), 4);
    let foreign = redshift_shots(&emu, Side::Source, SOURCE_REGION, None)
        .await
        .into_iter()
        .find(|s| s.id == "team-warehouse-keep")
        .unwrap();
    assert_eq!(
        foreign.restore,
        BTreeSet::from([DESTINATION_ACCOUNT.to_string()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_automated_copies_the_newest_automated_snapshot_once() {
    let emu = Emulator::start(Seed::Empty);
    // Through the control route: CreateCluster would also make an automated snapshot "now".
    emu.create_redshift_cluster(serde_json::json!({
        "account": SOURCE_ACCOUNT, "region": SOURCE_REGION, "id": "warehouse-main",
        "automated_snapshot": false
    }));
    let older = days_ago(1, 6);
    let newest = days_ago(0, 5);
    let automated: Vec<_> = [older, newest]
        .iter()
        .map(|t| {
            serde_json::json!({
                "kind": "redshift", "account": SOURCE_ACCOUNT, "region": SOURCE_REGION,
                "id": format!("rs:warehouse-main-{}", t.strftime("%Y-%m-%d-%H-%M-%S")),
                "cluster": "warehouse-main", "snapshot_type": "automated",
                "created": t.to_string(), "status": "available"
            })
        })
        .collect();
    emu.insert_snapshots(&automated);
    let mut c = config();
    let i = c.schedules.iter().position(|s| s.name == SCHEDULE).unwrap();
    c.schedules[i].redshift = Some(RedshiftOptions {
        copy_automated: true,
    });
    let ctx = context(&emu, Side::Source);
    let first = steps::take(&ctx, &source_run(&c), None, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(first.created.len(), 1, "{first:?}");
    let minute = newest.strftime("%Y%m%d-%H%M").to_string();
    assert_eq!(
        first.created[0],
        format!("sc-demo-warehousedaily-warehouse-main-{minute}")
    );
    let copy = ours(redshift_shots(&emu, Side::Source, SOURCE_REGION, None).await);
    assert_eq!(copy.len(), 1);
    assert_eq!(copy[0].tags["snapcourier:schedule"], SCHEDULE);
    assert_eq!(copy[0].retention_days, Some(37));
    let captured: Timestamp = copy[0].tags["snapcourier:source-created"].parse().unwrap();
    assert_eq!(captured.as_second(), newest.as_second());

    // Nothing newer to copy: the next take copies nothing and says why.
    let second = steps::take(&ctx, &source_run(&c), None, Timestamp::now())
        .await
        .unwrap();
    assert!(second.created.is_empty(), "{second:?}");
    assert_eq!(
        ours(redshift_shots(&emu, Side::Source, SOURCE_REGION, None).await).len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_destination_reports_a_share_missing_in_the_copy_region_and_a_stale_one() {
    let emu = Emulator::start(Seed::Empty);
    // Shared in us-east-1, but no copy in eu-west-1 (snapshot copy was never enabled).
    emu.insert_snapshots(&[
        inserted(
            SOURCE_REGION,
            "sc-demo-warehousedaily-warehouse-main-20261122-0000",
            "warehouse-main",
            0,
            true,
        ),
        // The newest share of warehouse-old is five days old: the source stopped sharing.
        inserted(
            SOURCE_REGION,
            "sc-demo-warehousedaily-warehouse-old-20261117-0000",
            "warehouse-old",
            5,
            true,
        ),
        inserted(
            DESTINATION_REGION,
            "sc-demo-warehousedaily-warehouse-old-20261117-0000",
            "warehouse-old",
            5,
            true,
        ),
    ]);
    let mut c = config();
    c.settings.deadline_seconds = Some(3);
    let report = snapcourier_cli::runner::run_destination(
        &context(&emu, Side::Destination),
        &destination_run(&c),
        Timestamp::now,
        &snapcourier_cli::runner::Quiet,
    )
    .await
    .unwrap();
    assert_eq!(report.failures.len(), 2, "{:?}", report.failures);
    let missing = report
        .failures
        .iter()
        .find(|f| f.resource == "warehouse-main")
        .unwrap();
    assert_eq!(missing.stage, "verify");
    assert!(
        missing.error.message.contains(DESTINATION_REGION),
        "{:?}",
        missing.error
    );
    let stale = report
        .failures
        .iter()
        .find(|f| f.resource == "warehouse-old")
        .unwrap();
    assert_eq!(stale.error.error_type, "NotFound");
    assert!(
        stale.error.message.contains("older than two intervals"),
        "{:?}",
        stale.error
    );
    // The destination touched nothing.
    for region in [SOURCE_REGION, DESTINATION_REGION] {
        assert!(
            redshift_shots(&emu, Side::Destination, region, None)
                .await
                .is_empty()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_that_cannot_be_copied_are_reported_and_the_others_protected() {
    let emu = Emulator::start(Seed::Empty);
    let source_key = emu.kms_key(SOURCE_ACCOUNT, SOURCE_REGION);
    create_cluster(&emu, "warehouse-main", None).await;
    create_cluster(&emu, "warehouse-enc", Some(&source_key)).await;
    create_cluster(&emu, "warehouse-elsewhere", None).await;
    // Someone already copies this one to another region: not ours to change.
    emu.redshift(Side::Source, SOURCE_REGION)
        .enable_snapshot_copy()
        .cluster_identifier("warehouse-elsewhere")
        .destination_region("us-west-2")
        .send()
        .await
        .unwrap();
    let mut c = config();
    // No copy key configured: the encrypted cluster cannot be copied.
    c.source.redshift_copy_kms_key = None;
    let src = snapcourier_cli::runner::run_source(
        &context(&emu, Side::Source),
        &source_run(&c),
        Timestamp::now,
        &snapcourier_cli::runner::Quiet,
    )
    .await
    .unwrap();
    let by_resource: BTreeMap<&str, (&str, &str)> = src
        .failures
        .iter()
        .map(|f| {
            (
                f.resource.as_str(),
                (f.error.error_type.as_str(), f.error.message.as_str()),
            )
        })
        .collect();
    assert_eq!(by_resource.len(), 2, "{:?}", src.failures);
    let (kind, message) = by_resource["warehouse-enc"];
    assert_eq!(kind, "ConfigInvalid");
    assert!(
        message.contains("source.redshift_copy_kms_key"),
        "{message}"
    );
    let (kind, message) = by_resource["warehouse-elsewhere"];
    assert_eq!(kind, "InvalidState");
    assert!(message.contains("us-west-2"), "{message}");
    let taken = ours(redshift_shots(&emu, Side::Source, SOURCE_REGION, None).await);
    assert_eq!(
        clusters_of(&taken),
        BTreeSet::from(["warehouse-main".to_string()])
    );
    assert_eq!(
        taken[0].restore,
        BTreeSet::from([DESTINATION_ACCOUNT.to_string()])
    );
}
