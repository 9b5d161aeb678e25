//! The foundation's acceptance cases that are the same for every engine, table-driven over
//! Aurora clusters, RDS instances, Redshift clusters and ElastiCache caches in the demo world. What each engine
//! does differently (copy-in vs verify, option groups, revoke-before-delete...) is tested in
//! runs.rs, rds_instances.rs and redshift.rs.

mod common;

use std::collections::BTreeSet;

use common::*;
use jiff::Timestamp;
use snapcourier_aws::{AwsContext, steps};
use snapcourier_cli::runner::{Quiet, run_source};
use snapcourier_core::Engine;
use snapcourier_core::events::{DestinationRun, Look, SourceRun};
use snapcourier_core::heartbeat::{Heartbeat, Side as HeartbeatSide};

fn protected(case: &Case) -> BTreeSet<String> {
    case.protected.iter().map(|s| s.to_string()).collect()
}

/// This schedule's snapshots owned by the source in its region.
async fn source_owned(emu: &Emulator, case: &Case) -> Vec<Seen> {
    owned(&snapshots_of(emu, case.engine, Side::Source, SOURCE_REGION).await)
        .into_iter()
        .filter(|s| s.tags["snapcourier:schedule"] == case.schedule)
        .collect()
}

/// After both sides ran: the destination holds (or, for Redshift, sees) each source snapshot
/// in eu-west-1, and no intermediate copy is left.
async fn assert_destination_complete(emu: &Emulator, case: &Case, source: &[Seen]) {
    let ids: BTreeSet<String> = source.iter().map(|s| s.id.clone()).collect();
    if case.engine.copies_into_destination() {
        let finals =
            owned(&snapshots_of(emu, case.engine, Side::Destination, DESTINATION_REGION).await);
        let got: BTreeSet<String> = finals
            .iter()
            .filter(|s| s.status == "available")
            .map(|s| s.id.clone())
            .collect();
        assert_eq!(got, ids, "{}", case.schedule);
        assert!(
            owned(&snapshots_of(emu, case.engine, Side::Destination, SOURCE_REGION).await)
                .is_empty(),
            "{}: intermediates left",
            case.schedule
        );
    } else {
        let copies = owned(&snapshots_of(emu, case.engine, Side::Source, DESTINATION_REGION).await);
        let got: BTreeSet<String> = copies
            .iter()
            .filter(|s| s.status == "available")
            .map(|s| s.id.clone())
            .collect();
        assert_eq!(got, ids, "{}: Redshift's copies", case.schedule);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_engine_waits_for_snapshots_and_copies_that_stay_creating() {
    for case in CASES {
        let emu = Emulator::start(Seed::Demo);
        emu.configure(serde_json::json!({"creating_reads": 3}));
        let c = config();
        let (src, dst) = run_schedule(&emu, &c, case.schedule).await;
        assert!(
            src.failures.is_empty(),
            "{}: {:?}",
            case.schedule,
            src.failures
        );
        assert!(
            dst.failures.is_empty(),
            "{}: {:?}",
            case.schedule,
            dst.failures
        );
        let source = source_owned(&emu, &case).await;
        let resources: BTreeSet<String> = source.iter().map(|s| s.cluster.clone()).collect();
        assert_eq!(resources, protected(&case), "{}", case.schedule);
        for s in &source {
            assert_eq!(s.status, "available");
            assert_eq!(
                shared_with_of(&emu, case.engine, SOURCE_REGION, &s.id).await,
                vec![DESTINATION_ACCOUNT],
                "{}",
                s.id
            );
        }
        assert_destination_complete(&emu, &case, &source).await;
    }
}

/// The destination's heartbeat as the step that reports it sees it: the delete step for the
/// copying engines, the copy-in (verify) step for Redshift, which lists the shares anyway.
async fn destination_heartbeat(
    ctx: &AwsContext,
    run: &DestinationRun,
    now: Timestamp,
) -> Heartbeat {
    let heartbeat = if run.schedule.engine.copies_into_destination() {
        steps::delete_destination(ctx, run, now)
            .await
            .unwrap()
            .heartbeat
    } else {
        steps::copy_in(ctx, run, None, &Look::first(now), now)
            .await
            .unwrap()
            .heartbeat
    };
    heartbeat.expect("destination heartbeat")
}

/// The RPO heartbeat each side's last step reports (and the Lambda functions write as the
/// RecoveryPointAge metric): absent while nothing is protected, then the capture time of the
/// newest snapshot shared (source) or held in every destination region (destination), with
/// its age at the step's `now`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_engine_reports_the_age_of_its_newest_protected_recovery_point() {
    for case in CASES {
        let emu = Emulator::start(Seed::Demo);
        let c = config();
        let src_ctx = context(&emu, Side::Source);
        let dst_ctx = context(&emu, Side::Destination);
        let src_run = SourceRun::from_config(&c, case.schedule).unwrap();
        let dst_run = DestinationRun::from_config(&c, case.schedule, DESTINATION_ACCOUNT).unwrap();
        let now = Timestamp::now();

        // Nothing protected yet: no age, and the regions that lack one are named.
        let before = steps::delete_source(&src_ctx, &src_run, now).await.unwrap();
        let h = before.heartbeat.expect("source heartbeat");
        assert_eq!(
            (h.side, h.age_seconds),
            (HeartbeatSide::Source, None),
            "{}",
            case.schedule
        );
        assert_eq!(
            h.missing_in,
            vec![SOURCE_REGION.to_string()],
            "{}",
            case.schedule
        );
        let h = destination_heartbeat(&dst_ctx, &dst_run, now).await;
        assert_eq!(h.age_seconds, None, "{}", case.schedule);
        assert!(
            h.missing_in.contains(&DESTINATION_REGION.to_string()),
            "{}: {:?}",
            case.schedule,
            h.missing_in
        );

        let (src, dst) = run_schedule(&emu, &c, case.schedule).await;
        let newest = source_owned(&emu, &case)
            .await
            .iter()
            .filter_map(|s| s.created)
            .max()
            .expect("snapshots taken");
        for (side, report) in [("source", &src), ("destination", &dst)] {
            let h = report.heartbeat.as_ref().expect("heartbeat");
            assert!(
                h.missing_in.is_empty(),
                "{} {side}: {:?}",
                case.schedule,
                h.missing_in
            );
            let got = h.newest.expect("a protected recovery point");
            assert!(
                got.duration_since(newest).abs().as_secs() <= 1,
                "{} {side}: newest {got}, source snapshot taken {newest}",
                case.schedule
            );
            assert!(
                h.age_seconds.is_some_and(|a| (0..600).contains(&a)),
                "{} {side}: {h:?}",
                case.schedule
            );
        }

        // Three days without a new recovery point: the age says so (the alarm's input).
        let later = now + jiff::SignedDuration::from_hours(72);
        let age = destination_heartbeat(&dst_ctx, &dst_run, later)
            .await
            .age_seconds
            .expect("age");
        assert!(
            (72 * 3600 - 600..72 * 3600 + 600).contains(&age),
            "{}: age {age}",
            case.schedule
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_engine_reports_a_stuck_snapshot_and_completes_the_others() {
    for case in CASES {
        let emu = Emulator::start(Seed::Demo);
        let stuck = case.protected[0];
        emu.configure(serde_json::json!({"stuck": [format!("^{}{stuck}-", case.prefix())]}));
        let mut c = config();
        c.settings.deadline_seconds = Some(4);
        let src = run_source(
            &context(&emu, Side::Source),
            &SourceRun::from_config(&c, case.schedule).unwrap(),
            Timestamp::now,
            &Quiet,
        )
        .await
        .unwrap();
        assert_eq!(
            src.failures.len(),
            1,
            "{}: {:?}",
            case.schedule,
            src.failures
        );
        assert_eq!(src.failures[0].resource, stuck);
        assert!(
            src.failures[0]
                .error
                .message
                .contains("when the run stopped"),
            "{:?}",
            src.failures[0]
        );
        for s in source_owned(&emu, &case).await {
            let shared = shared_with_of(&emu, case.engine, SOURCE_REGION, &s.id).await;
            if s.cluster == stuck {
                assert!(shared.is_empty(), "{} was shared while creating", s.id);
            } else {
                assert_eq!(shared, vec![DESTINATION_ACCOUNT], "{}", s.id);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_engine_converges_with_thirty_percent_of_calls_throttled() {
    for case in CASES {
        let emu = Emulator::start(Seed::Demo);
        emu.configure(serde_json::json!({
            "throttle_rate": 0.3, "throttle_seed": 7, "throttle_services": [case.service]
        }));
        let c = config();
        let (src, dst) = run_schedule(&emu, &c, case.schedule).await;
        assert!(
            src.failures.is_empty(),
            "{}: {:?}",
            case.schedule,
            src.failures
        );
        assert!(
            dst.failures.is_empty(),
            "{}: {:?}",
            case.schedule,
            dst.failures
        );
        assert!(
            src.api_attempts > src.api_calls,
            "{}: throttled calls were retried: {src:?}",
            case.schedule
        );
        let (src2, dst2) = run_schedule(&emu, &c, case.schedule).await;
        assert!(src2.created.is_empty(), "{}: {src2:?}", case.schedule);
        assert!(src2.failures.is_empty() && dst2.failures.is_empty());
        emu.configure(serde_json::json!({"throttle_rate": 0.0}));
        let source = source_owned(&emu, &case).await;
        assert_eq!(
            source.len(),
            case.protected.len(),
            "{}: no duplicate",
            case.schedule
        );
        assert_destination_complete(&emu, &case, &source).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_engine_sees_all_150_snapshots_through_paging() {
    for case in CASES {
        let emu = Emulator::start(Seed::Empty);
        let c = config();
        let resource = if case.engine == Engine::Redshift {
            "warehouse-big"
        } else {
            "orders-big"
        };
        let id = |i: usize| format!("{}{resource}-d{i:03}", case.prefix());
        // 150 owned source snapshots, 10 to 159 days old, shared but without our marker.
        let mut seeds: Vec<_> = (0..150)
            .map(|i| {
                let mut s = case.owned_snapshot(
                    SOURCE_ACCOUNT,
                    SOURCE_REGION,
                    &id(i),
                    resource,
                    days_ago(10 + i as i64, 0),
                    "source",
                );
                s["shared_with"] = serde_json::json!([DESTINATION_ACCOUNT]);
                s
            })
            .collect();
        if case.engine == Engine::ElastiCache {
            // Each exported (its object in the bucket) but not yet completed by a manifest:
            // ElastiCache's "shared without our marker".
            let bucket =
                snapcourier_core::naming::export_bucket("demo", SOURCE_ACCOUNT, SOURCE_REGION);
            let objects: Vec<_> = (0..150)
                .flat_map(|i| {
                    case.export_objects(
                        &bucket,
                        &id(i),
                        resource,
                        days_ago(10 + i as i64, 0),
                        false,
                    )
                })
                .collect();
            for s in &mut seeds {
                s.as_object_mut().unwrap().remove("shared_with");
            }
            emu.insert_objects(&objects);
        }
        if case.engine == Engine::Redshift {
            // And Redshift's copy of each in eu-west-1, shared too.
            let copies: Vec<_> = seeds
                .iter()
                .map(|s| {
                    let mut copy = s.clone();
                    copy["region"] = DESTINATION_REGION.into();
                    copy["source_region"] = SOURCE_REGION.into();
                    copy
                })
                .collect();
            seeds.extend(copies);
        }
        emu.insert_snapshots(&seeds);
        let src = run_source(
            &context(&emu, Side::Source),
            &SourceRun::from_config(&c, case.schedule).unwrap(),
            Timestamp::now,
            &Quiet,
        )
        .await
        .unwrap();
        assert!(
            src.failures.is_empty(),
            "{}: {:?}",
            case.schedule,
            src.failures
        );
        assert_eq!(
            src.items.len(),
            150,
            "{}: every unmarked snapshot followed",
            case.schedule
        );
        let regions = if case.engine == Engine::Redshift {
            2
        } else {
            1
        };
        assert_eq!(src.deleted.len(), 147 * regions, "{}", case.schedule);
        let left = source_owned(&emu, &case).await;
        assert_eq!(
            left.iter().map(|s| s.id.clone()).collect::<BTreeSet<_>>(),
            (0..3).map(id).collect(),
            "{}",
            case.schedule
        );
        for s in &left {
            assert_eq!(
                shared_with_of(&emu, case.engine, SOURCE_REGION, &s.id).await,
                vec![DESTINATION_ACCOUNT],
                "{}",
                s.id
            );
            // The progress marker is a tag, except for ElastiCache, whose is the manifest.
            if case.engine != Engine::ElastiCache {
                assert_eq!(s.tags["snapcourier:shared-with"], DESTINATION_ACCOUNT);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copying_engines_expire_destination_copies_by_capture_time() {
    for case in CASES.iter().filter(|c| c.engine.copies_into_destination()) {
        let emu = Emulator::start(Seed::Empty);
        let c = config(); // destination: days 35, keep_last 7, weekly 8, monthly 12
        let id = |d: i64| {
            if case.engine == Engine::ElastiCache {
                // The vault reads the capture from the manifest and the database from the id.
                snapcourier_core::naming::snapshot_id(
                    "demo",
                    case.schedule,
                    "orders-db",
                    snapcourier_core::interval::slot_start(
                        days_ago(d, 1),
                        jiff::SignedDuration::from_hours(24),
                    ),
                )
            } else {
                format!("{}orders-db-d{d}", case.prefix())
            }
        };
        if case.engine == Engine::ElastiCache {
            // Vault exports, each locked until the floor (35 days) after its capture.
            let bucket = snapcourier_core::naming::vault_bucket(
                "demo",
                DESTINATION_ACCOUNT,
                DESTINATION_REGION,
            );
            let objects: Vec<_> = (0..=60)
                .step_by(5)
                .flat_map(|d| {
                    let until =
                        (days_ago(d, 1) + jiff::SignedDuration::from_hours(24 * 35)).to_string();
                    case.export_objects(&bucket, &id(d), "orders-db", days_ago(d, 1), true)
                        .into_iter()
                        .map(move |mut o| {
                            o["lock_mode"] = "GOVERNANCE".into();
                            o["lock_until"] = until.clone().into();
                            o["last_modified"] = days_ago(d, 0).to_string().into();
                            o
                        })
                })
                .collect();
            emu.insert_objects(&objects);
        }
        let copies: Vec<_> = (0..=60)
            .step_by(5)
            .map(|d| {
                let created = days_ago(d, 1).to_string();
                let mut s = case.owned_snapshot(
                    DESTINATION_ACCOUNT,
                    DESTINATION_REGION,
                    &id(d),
                    "orders-db",
                    days_ago(0, 0),
                    "destination",
                );
                s["tags"].as_array_mut().unwrap().push(
                    serde_json::json!({"Key": "snapcourier:source-created", "Value": created}),
                );
                s
            })
            .collect();
        if case.engine != Engine::ElastiCache {
            emu.insert_snapshots(&copies);
        }
        let run = snapcourier_core::events::DestinationRun::from_config(
            &c,
            case.schedule,
            DESTINATION_ACCOUNT,
        )
        .unwrap();
        let now = Timestamp::now();
        let out = snapcourier_aws::steps::delete_destination(
            &context(&emu, Side::Destination),
            &run,
            now,
        )
        .await
        .unwrap();
        let candidates: Vec<_> = (0..=60)
            .step_by(5)
            .map(|d| snapcourier_core::retention::RetentionCandidate {
                id: id(d),
                resource: "orders-db".into(),
                created: days_ago(d, 1),
                owned: true,
                available: true,
            })
            .collect();
        let expected: BTreeSet<String> = snapcourier_core::retention::plan_retention(
            &run.destination.retention,
            &candidates,
            now,
        )
        .delete
        .into_iter()
        .collect();
        assert!(!expected.is_empty());
        let deleted: BTreeSet<String> = out.deleted.iter().map(|d| d.snapshot_id.clone()).collect();
        assert_eq!(deleted, expected, "{}", case.schedule);
        let left: BTreeSet<String> =
            snapshots_of(&emu, case.engine, Side::Destination, DESTINATION_REGION)
                .await
                .into_iter()
                .map(|s| s.id)
                .collect();
        assert!(left.is_disjoint(&expected));
        assert_eq!(left.len(), 13 - expected.len(), "{}", case.schedule);
    }
}
