use super::*;
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../../../examples/snapcourier.yaml");

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn example() -> Config {
    Config::parse(EXAMPLE).unwrap()
}

/// The example with its drill section edited as YAML: the problems of the parse.
fn problems(edit: impl FnOnce(&mut serde_yaml_ng::Value)) -> Vec<crate::FieldProblem> {
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(EXAMPLE).unwrap();
    edit(&mut doc["drills"]);
    let text = serde_yaml_ng::to_string(&doc).unwrap();
    match Config::parse(&text) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems().to_vec(),
    }
}

fn y(text: &str) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(text).unwrap()
}

fn has(problems: &[crate::FieldProblem], field: &str, rule: &str) -> bool {
    problems
        .iter()
        .any(|p| p.field == field && p.rule.contains(rule))
}

#[test]
fn every_bad_drill_setting_is_named_with_what_to_do() {
    let cases: Vec<(&str, serde_yaml_ng::Value, &str, &str)> = vec![
        ("every", y("30m"), "drills.every", "at least 1h"),
        ("timeout", y("1m"), "drills.timeout", "between 5m and 12h"),
        ("timeout", y("13h"), "drills.timeout", "between 5m and 12h"),
        ("databases", y("0"), "drills.databases", "1 to 10"),
        ("databases", y("11"), "drills.databases", "1 to 10"),
        ("databases", y("[]"), "drills.databases", "1 to 10"),
        (
            "databases",
            y("[orders-db, orders-db]"),
            "drills.databases[1]",
            "listed twice",
        ),
        (
            "databases",
            y("['9lives']"),
            "drills.databases[0]",
            "not a database id",
        ),
        (
            "regions",
            y("[ap-south-1]"),
            "drills.regions[0]",
            "no destination keeps copies",
        ),
        (
            "regions",
            y("[eu-west-1, eu-west-1]"),
            "drills.regions[1]",
            "listed twice",
        ),
        (
            "regions",
            y("[mars-1]"),
            "drills.regions[0]",
            "not an AWS region",
        ),
        (
            "rds_instance_class",
            y("t3.micro"),
            "drills.rds_instance_class",
            "not a DB instance class",
        ),
        (
            "aurora_instance_class",
            y("db.r6g"),
            "drills.aurora_instance_class",
            "not a DB instance class",
        ),
        (
            "networks",
            y("{us-west-2: {}}"),
            "drills.networks.us-west-2",
            "drills do not run in",
        ),
        (
            "networks",
            y("{eu-west-1: {security_groups: [default]}}"),
            "drills.networks.eu-west-1.security_groups[0]",
            "not a security group id",
        ),
        (
            "networks",
            y("{eu-west-1: {db_subnet_group: 'a*b'}}"),
            "drills.networks.eu-west-1.db_subnet_group",
            "not a subnet group",
        ),
        (
            "elasticache_node_type",
            y("r7g.large"),
            "drills.elasticache_node_type",
            "not a cache node type",
        ),
        (
            "networks",
            y("{eu-west-1: {cache_subnet_group: 'a b*'}}"),
            "drills.networks.eu-west-1.cache_subnet_group",
            "not a subnet group",
        ),
        (
            "validation_function",
            y("check-restore"),
            "drills.validation_function",
            "not a Lambda function ARN",
        ),
    ];
    for (key, value, field, rule) in cases {
        let found = problems(|d| d[key] = value.clone());
        assert!(
            has(&found, field, rule),
            "{key}={value:?}: expected {field} ~ {rule}, got {found:?}"
        );
    }
    // Unknown keys are refused by name.
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(EXAMPLE).unwrap();
    doc["drills"]["evry"] = y("7d");
    let e = Config::parse(&serde_yaml_ng::to_string(&doc).unwrap()).unwrap_err();
    assert!(e.to_string().contains("evry"), "{e}");
}

#[test]
fn a_good_drill_section_with_networks_and_a_validation_function_is_valid() {
    let found = problems(|d| {
        d["databases"] = y("[orders-db, billing-pg]");
        d["networks"] = y(
            "{eu-west-1: {db_subnet_group: drills, redshift_subnet_group: drills, security_groups: [sg-0123456789abcdef0]}}",
        );
        d["validation_function"] =
            y("arn:aws:lambda:eu-west-1:222222222222:function:check-restore");
    });
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn each_destination_drills_in_the_drill_regions_it_keeps_copies_in() {
    let config = example();
    let run = DrillRun::from_config(&config, "222222222222")
        .unwrap()
        .unwrap();
    assert_eq!(run.regions, vec!["eu-west-1".to_string()]);
    assert_eq!(run.schedules.len(), config.schedules.len());
    // Valid as an event, and without drills there is no drill run.
    let input = DrillInput {
        run: run.clone(),
        execution: None,
        looks: 0,
        databases: Vec::new(),
        force: false,
        drills: Vec::new(),
        other_failures: Vec::new(),
        abandon: false,
    };
    input.validate().unwrap();
    let mut none = config.clone();
    none.drills = None;
    assert!(
        DrillRun::from_config(&none, "222222222222")
            .unwrap()
            .is_none()
    );
    // By hand without a drill section: every region the destination keeps copies in.
    let by_hand = DrillRun::by_hand(&none, "222222222222", None).unwrap();
    assert_eq!(by_hand.regions, vec!["eu-west-1".to_string()]);
    let e = DrillRun::by_hand(&none, "222222222222", Some("us-west-2")).unwrap_err();
    assert_eq!(e.problems()[0].field, "--region");
}

#[test]
fn an_event_may_not_name_a_resource_a_drill_did_not_restore() {
    let config = example();
    let run = DrillRun::from_config(&config, "222222222222")
        .unwrap()
        .unwrap();
    let now = t("2026-12-02T03:00:00Z");
    let mut drill = Drill {
        region: "eu-west-1".into(),
        schedule: "aurora-daily".into(),
        engine: Engine::Aurora,
        database: "orders-db".into(),
        snapshot: "s".into(),
        snapshot_arn: "arn".into(),
        captured: now,
        resource: "orders-db".into(),
        started_at: now,
        phase: DrillPhase::Cleaning,
        available_at: None,
        restore_seconds: None,
        recovery_point_age_seconds: None,
        endpoint: None,
        validation: None,
        failure: None,
    };
    let input = |d: Drill| DrillInput {
        run: run.clone(),
        execution: None,
        looks: 3,
        databases: Vec::new(),
        force: false,
        drills: vec![d],
        other_failures: Vec::new(),
        abandon: true,
    };
    let e = input(drill.clone()).validate().unwrap_err();
    assert_eq!(e.problems()[0].field, "drills[0].resource");
    drill.region = "us-west-2".into();
    drill.resource = drill_resource_id("demo", "orders-db", now, Engine::Aurora);
    let e = input(drill).validate().unwrap_err();
    assert_eq!(e.problems()[0].field, "drills[0].region");
}

fn candidate(region: &str, schedule: &str, database: &str, captured: &str) -> Candidate {
    Candidate {
        region: region.into(),
        schedule: schedule.into(),
        engine: Engine::Rds,
        database: database.into(),
        snapshot: format!("sc-demo-{database}-{captured}"),
        snapshot_arn: format!("arn:{database}:{captured}"),
        captured: t(captured),
    }
}

fn record(region: &str, database: &str, at: &str, succeeded: bool) -> DrillRecord {
    DrillRecord {
        version: 1,
        region: region.into(),
        schedule: "s".into(),
        database: database.into(),
        at: t(at),
        succeeded,
        snapshot: "x".into(),
        restore_seconds: succeeded.then_some(600),
        recovery_point_age_seconds: None,
        error: None,
        last_success: succeeded.then(|| t(at)),
        last_success_restore_seconds: succeeded.then_some(600),
    }
}

#[test]
fn round_robin_takes_the_never_drilled_then_the_longest_ago_each_at_its_newest_copy() {
    let candidates = vec![
        candidate("eu-west-1", "s", "a", "2026-12-01T03:00:00Z"),
        candidate("eu-west-1", "s", "a", "2026-12-02T03:00:00Z"),
        candidate("eu-west-1", "s", "b", "2026-12-02T03:00:00Z"),
        candidate("eu-west-1", "s", "c", "2026-12-02T03:00:00Z"),
        candidate("eu-west-1", "s", "d", "2026-12-02T03:00:00Z"),
        candidate("us-east-1", "s", "e", "2026-12-02T03:00:00Z"),
    ];
    let records = records_by_database(&[
        record("eu-west-1", "a", "2026-11-20T03:00:00Z", true),
        record("eu-west-1", "b", "2026-11-10T03:00:00Z", false),
        record("eu-west-1", "c", "2026-11-25T03:00:00Z", true),
    ]);
    let (chosen, missing) = choose(
        &candidates,
        &records,
        &DrillDatabases::Count(2),
        "eu-west-1",
    );
    assert!(missing.is_empty());
    let names: Vec<_> = chosen.iter().map(|c| c.database.as_str()).collect();
    assert_eq!(
        names,
        ["d", "b"],
        "never drilled first, then the longest ago"
    );
    // Every database gets its turn: four drills of two cover all four twice.
    let mut records = records;
    let mut seen = Vec::new();
    for week in 0..4 {
        let at = t("2026-12-02T03:00:00Z")
            .checked_add(SignedDuration::from_hours(24 * 7 * week))
            .unwrap();
        let (chosen, _) = choose(
            &candidates,
            &records,
            &DrillDatabases::Count(2),
            "eu-west-1",
        );
        for c in chosen {
            seen.push(c.database.clone());
            let mut r = record("eu-west-1", &c.database, "2026-12-02T03:00:00Z", true);
            r.at = at;
            records.insert(("eu-west-1".into(), c.database.clone()), r);
        }
    }
    for db in ["a", "b", "c", "d"] {
        assert_eq!(seen.iter().filter(|s| *s == db).count(), 2, "{seen:?}");
    }
    // The newest copy of a database is restored.
    let (chosen, _) = choose(
        &candidates,
        &BTreeMap::new(),
        &DrillDatabases::Named(vec!["a".into(), "zz".into()]),
        "eu-west-1",
    );
    assert_eq!(chosen.len(), 1);
    assert_eq!(chosen[0].captured, t("2026-12-02T03:00:00Z"));
    let (_, missing) = choose(
        &candidates,
        &BTreeMap::new(),
        &DrillDatabases::Named(vec!["e".into()]),
        "eu-west-1",
    );
    assert_eq!(
        missing,
        ["e"],
        "a copy in another region is not this region's"
    );
}

#[test]
fn a_drill_is_due_every_interval_less_a_little_slack_for_the_daily_check() {
    let every = SignedDuration::from_hours(24 * 7);
    let last = t("2026-11-25T03:00:05Z");
    assert!(is_due(None, every, last));
    assert!(!is_due(Some(last), every, t("2026-12-01T03:00:00Z")));
    // The daily check of the seventh day runs a few seconds earlier in the day.
    assert!(is_due(Some(last), every, t("2026-12-02T03:00:00Z")));
    assert!(!is_due(Some(last), every, t("2026-12-02T01:00:00Z")));
}

#[test]
fn a_record_keeps_the_last_success_through_a_failure() {
    let now = t("2026-12-02T03:00:00Z");
    let mut d = Drill {
        region: "eu-west-1".into(),
        schedule: "rds-daily".into(),
        engine: Engine::Rds,
        database: "billing-pg".into(),
        snapshot: "snap".into(),
        snapshot_arn: "arn".into(),
        captured: t("2026-12-01T03:00:00Z"),
        resource: drill_resource_id("demo", "billing-pg", now, Engine::Rds),
        started_at: now,
        phase: DrillPhase::Restoring,
        available_at: None,
        restore_seconds: None,
        recovery_point_age_seconds: None,
        endpoint: None,
        validation: None,
        failure: None,
    };
    let ok = {
        let mut d = d.clone();
        d.mark_available(t("2026-12-02T03:12:00Z"), Some("host".into()));
        d
    };
    assert_eq!(ok.restore_seconds, Some(720));
    assert_eq!(ok.recovery_point_age_seconds, Some(86400 + 720));
    let first = DrillRecord::after(&ok, None);
    assert!(first.succeeded);
    assert_eq!(first.last_success, Some(now));
    assert!(
        first.summary().starts_with("ok 2026-12-02, RTO 12m"),
        "{}",
        first.summary()
    );
    d.started_at = t("2026-12-09T03:00:00Z");
    d.fail(
        crate::events::FailureStage::Restore,
        &Error::InvalidState {
            resource: "x".into(),
            message: "status failed".into(),
        },
    );
    assert_eq!(d.phase, DrillPhase::Cleaning);
    let second = DrillRecord::after(&d, Some(&first));
    assert!(!second.succeeded);
    assert_eq!(second.last_success, Some(now));
    assert_eq!(second.last_success_restore_seconds, Some(720));
    assert!(second.error.as_deref().unwrap().starts_with("restore: "));
    assert_eq!(second.summary(), "FAILED 2026-12-09 (last ok 2026-12-02)");
    assert_eq!(
        drill_age(&[first, second], t("2026-12-10T03:00:00Z")),
        Some(8 * 86400)
    );
}

#[test]
fn looks_come_at_the_poll_interval_then_a_tenth_of_the_elapsed_time_at_most_ten_minutes() {
    let settings = Settings {
        poll_interval_seconds: 60,
        ..Default::default()
    };
    assert_eq!(wait_seconds(SignedDuration::ZERO, &settings), 60);
    assert_eq!(wait_seconds(SignedDuration::from_mins(30), &settings), 180);
    assert_eq!(wait_seconds(SignedDuration::from_hours(4), &settings), 600);
    assert_eq!(
        check_expression(HumanDuration::from_hours(24 * 7)),
        "rate(1 day)"
    );
    assert_eq!(
        check_expression(HumanDuration::from_hours(6)),
        "rate(6 hours)"
    );
    assert_eq!(
        check_expression(HumanDuration::from_hours(1)),
        "rate(1 hour)"
    );
}

#[test]
fn a_drill_metric_record_has_both_dimension_sets() {
    let now = t("2026-12-02T03:00:00Z");
    let mut d = Drill {
        region: "eu-west-1".into(),
        schedule: "rds-daily".into(),
        engine: Engine::Rds,
        database: "billing-pg".into(),
        snapshot: "snap".into(),
        snapshot_arn: "arn".into(),
        captured: now,
        resource: drill_resource_id("demo", "billing-pg", now, Engine::Rds),
        started_at: now,
        phase: DrillPhase::Done,
        available_at: None,
        restore_seconds: None,
        recovery_point_age_seconds: None,
        endpoint: None,
        validation: None,
        failure: None,
    };
    let failed = drill_emf("demo", &d, now);
    assert_eq!(failed[DRILL_SUCCEEDED], 0.0);
    assert!(failed.get(RESTORE_SECONDS).is_none());
    d.mark_available(
        now.checked_add(SignedDuration::from_secs(300)).unwrap(),
        None,
    );
    let ok = drill_emf("demo", &d, now);
    assert_eq!(ok[DRILL_SUCCEEDED], 1.0);
    assert_eq!(ok[RESTORE_SECONDS], 300.0);
    assert_eq!(ok["Database"], "billing-pg");
    assert_eq!(
        ok["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([
            ["Deployment", "Side"],
            ["Deployment", "Side", "Region", "Database"]
        ])
    );
}

proptest! {
    #[test]
    fn restored_ids_are_valid_ours_fixed_and_distinct(
        database in "[A-Za-z][A-Za-z0-9_.-]{0,80}",
        other in "[a-z][a-z0-9]{0,40}",
        minutes in 0i64..5_000_000,
        namespace in "[a-z][a-z0-9]{0,15}",
    ) {
        let started = t("2020-01-01T00:00:00Z").checked_add(SignedDuration::from_mins(minutes)).unwrap();
        for (engine, max) in [(Engine::Aurora, MAX_DRILL_ID), (Engine::Rds, MAX_DRILL_ID), (Engine::ElastiCache, MAX_CACHE_DRILL_ID)] {
            let id = drill_resource_id(&namespace, &database, started, engine);
            prop_assert!(crate::naming::is_valid_snapshot_id(&id), "{id}");
            prop_assert!(id.len() <= max, "{id}");
            prop_assert!(drill_instance_id(&id).len() <= 63);
            // ElastiCache: lowercase, no double hyphen, no trailing hyphen.
            prop_assert!(!id.contains("--") && !id.ends_with('-') && id == id.to_lowercase(), "{id}");
            prop_assert!(is_drill_resource(&namespace, &id));
            let longer = format!("{namespace}x");
            prop_assert!(!is_drill_resource(&longer, &id));
            prop_assert_eq!(&id, &drill_resource_id(&namespace, &database, started, engine));
            if other != database {
                prop_assert_ne!(id, drill_resource_id(&namespace, &other, started, engine));
            }
        }
    }
}

#[test]
fn a_cache_drill_id_fits_elasticache_with_the_longest_namespace() {
    let started = t("2026-12-02T03:04:00Z");
    let id = drill_resource_id(
        "abcdefghijklmnop",
        "carts-valkey",
        started,
        Engine::ElastiCache,
    );
    assert_eq!(id.len(), 40, "{id}");
    assert!(id.starts_with("sc-abcdefghijklmnop-dr-2612020304-"), "{id}");
    assert_eq!(
        drill_resource_id("demo", "carts-valkey", started, Engine::ElastiCache),
        "sc-demo-dr-2612020304-carts-valkey"
    );
}
