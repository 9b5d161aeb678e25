use super::*;

const EXAMPLE: &str = include_str!("../../../../examples/snapcourier.yaml");

fn example() -> Config {
    Config::parse(EXAMPLE).unwrap()
}

/// Edit the example as a YAML tree, then parse: the error must name `field`.
fn expect_problem(edit: impl FnOnce(&mut serde_yaml_ng::Value), field: &str, rule_contains: &str) {
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(EXAMPLE).unwrap();
    edit(&mut doc);
    let text = serde_yaml_ng::to_string(&doc).unwrap();
    let err = Config::parse(&text).unwrap_err();
    assert_eq!(err.error_type(), "ConfigInvalid");
    let problems = err.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.field == field && p.rule.contains(rule_contains)),
        "expected {field} ~ {rule_contains:?}, got {problems:?}"
    );
}

fn set(doc: &mut serde_yaml_ng::Value, path: &[&str], value: serde_yaml_ng::Value) {
    let mut node = doc;
    for key in &path[..path.len() - 1] {
        node = match key.parse::<usize>() {
            Ok(i) => &mut node[i],
            Err(_) => &mut node[*key],
        };
    }
    let last = path[path.len() - 1];
    match last.parse::<usize>() {
        Ok(i) => node[i] = value,
        Err(_) => node[last] = value,
    }
}

fn y(text: &str) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(text).unwrap()
}

#[test]
fn the_example_config_is_valid() {
    let c = example();
    assert_eq!(c.namespace, "demo");
    assert_eq!(c.schedules[0].interval.as_secs(), 86_400);
    assert_eq!(c.destinations[0].regions[0].region, "eu-west-1");
}

#[test]
fn json_configs_parse_too() {
    let json = serde_json::to_string(&example()).unwrap();
    assert_eq!(Config::parse(&json).unwrap(), example());
}

#[test]
fn defaults_are_documented_values() {
    let mut doc = y(EXAMPLE);
    doc.as_mapping_mut().unwrap().remove("settings");
    let c = Config::parse(&serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    assert_eq!(c.settings, Settings::default());
    assert_eq!(c.settings.poll_interval_seconds, 60);
    assert_eq!(c.settings.aurora_copy_concurrency, 5);
}

// Each malformed config below is a separate kind of mistake an operator makes.

#[test]
fn namespace_with_upper_case() {
    expect_problem(
        |d| set(d, &["namespace"], y("Prod")),
        "namespace",
        "lowercase",
    );
}

#[test]
fn namespace_too_long() {
    expect_problem(
        |d| set(d, &["namespace"], y("abcdefghijklmnopq")),
        "namespace",
        "1 to 16",
    );
}

#[test]
fn account_not_twelve_digits() {
    expect_problem(
        |d| set(d, &["source", "account"], y("'12345'")),
        "source.account",
        "12-digit",
    );
}

#[test]
fn unquoted_account_ids_keep_their_digits() {
    let text = EXAMPLE
        .replace("account: \"111111111111\"", "account: 012345678901")
        .replace(":111111111111:key/", ":012345678901:key/");
    assert_eq!(Config::parse(&text).unwrap().source.account, "012345678901");
}

#[test]
fn region_malformed() {
    expect_problem(
        |d| set(d, &["source", "region"], y("useast1")),
        "source.region",
        "region",
    );
}

#[test]
fn no_destinations() {
    expect_problem(
        |d| set(d, &["destinations"], y("[]")),
        "destinations",
        "at least one",
    );
}

#[test]
fn destination_equal_to_source() {
    expect_problem(
        |d| set(d, &["destinations", "0", "account"], y("'111111111111'")),
        "destinations[0].account",
        "must differ from source.account",
    );
}

#[test]
fn kms_key_of_another_account() {
    expect_problem(
        |d| {
            set(
                d,
                &["destinations", "0", "regions", "0", "kms_key"],
                y("arn:aws:kms:eu-west-1:333333333333:key/abc"),
            )
        },
        "destinations[0].regions[0].kms_key",
        "account 333333333333",
    );
}

#[test]
fn kms_key_of_another_region() {
    expect_problem(
        |d| {
            set(
                d,
                &["destinations", "0", "regions", "0", "kms_key"],
                y("arn:aws:kms:us-west-2:222222222222:key/abc"),
            )
        },
        "destinations[0].regions[0].kms_key",
        "region us-west-2",
    );
}

#[test]
fn kms_key_not_an_arn() {
    expect_problem(
        |d| set(d, &["destinations", "0", "copy_in_kms_key"], y("my-key")),
        "destinations[0].copy_in_kms_key",
        "not a KMS key ARN",
    );
}

#[test]
fn omitted_keys_are_the_stack_created_keys_in_every_run() {
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(EXAMPLE).unwrap();
    let d = doc["destinations"][0].as_mapping_mut().unwrap();
    d.remove("copy_in_kms_key");
    for r in d["regions"].as_sequence_mut().unwrap() {
        r.as_mapping_mut().unwrap().remove("kms_key");
    }
    let config = Config::parse(&serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    let dest = &config.destinations[0];
    assert_eq!(
        dest.stack_key_regions(&config.source.region),
        vec!["us-east-1".to_string(), "eu-west-1".to_string()]
    );
    let run =
        crate::events::DestinationRun::from_config(&config, "aurora-daily", &dest.account).unwrap();
    assert_eq!(
        run.copy_in_kms_key(),
        Some("arn:aws:kms:us-east-1:222222222222:alias/snapcourier-demo")
    );
    assert_eq!(
        run.destination.regions[0].kms_key.as_deref(),
        Some("arn:aws:kms:eu-west-1:222222222222:alias/snapcourier-demo")
    );
    run.validate("run").unwrap();
    // A hand-made input without the keys is refused before any AWS call.
    let mut bare = run.clone();
    bare.destination = dest.clone();
    let err = bare.validate("run").unwrap_err();
    let fields: Vec<&str> = err.problems().iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "run.destination.regions[0].kms_key",
            "run.destination.copy_in_kms_key"
        ]
    );
}

#[test]
fn partitions_follow_the_region() {
    assert_eq!(
        default_destination_key("prod", "222222222222", "cn-north-1"),
        "arn:aws-cn:kms:cn-north-1:222222222222:alias/snapcourier-prod"
    );
    assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
    assert_eq!(partition("eu-west-1"), "aws");
}

#[test]
fn duplicate_destination_region() {
    expect_problem(
        |d| {
            let r = d["destinations"][0]["regions"][0].clone();
            d["destinations"][0]["regions"]
                .as_sequence_mut()
                .unwrap()
                .push(r);
        },
        "destinations[0].regions[1].region",
        "listed twice",
    );
}

#[test]
fn include_pattern_does_not_compile() {
    expect_problem(
        |d| set(d, &["schedules", "0", "include", "0"], y("'(orders'")),
        "schedules[0].include[0]",
        "not a valid regular expression",
    );
}

#[test]
fn exclude_pattern_does_not_compile() {
    expect_problem(
        |d| set(d, &["schedules", "0", "exclude"], y("['[a-']")),
        "schedules[0].exclude[0]",
        "not a valid regular expression",
    );
}

#[test]
fn interval_below_one_hour() {
    expect_problem(
        |d| set(d, &["schedules", "0", "interval"], y("30m")),
        "schedules[0].interval",
        "at least 1h",
    );
}

#[test]
fn interval_not_a_duration() {
    expect_problem(
        |d| set(d, &["schedules", "0", "interval"], y("daily")),
        "schedules[0].interval",
        "not a duration",
    );
}

#[test]
fn retention_keep_last_zero() {
    expect_problem(
        |d| set(d, &["schedules", "0", "retention", "keep_last"], y("0")),
        "schedules[0].retention.keep_last",
        "between 1 and",
    );
}

#[test]
fn retention_negative_days_is_a_type_error() {
    expect_problem(
        |d| set(d, &["destinations", "0", "retention", "days"], y("-3")),
        "destinations[0].retention.days",
        "invalid type: integer `-3`",
    );
}

#[test]
fn duplicate_schedule_names() {
    expect_problem(
        |d| {
            let s = d["schedules"][0].clone();
            d["schedules"].as_sequence_mut().unwrap().push(s);
        },
        "schedules[4].name",
        "used twice",
    );
}

#[test]
fn unknown_engine() {
    expect_problem(
        |d| set(d, &["schedules", "0", "engine"], y("dynamodb")),
        "schedules[0].engine",
        "unknown variant",
    );
}

#[test]
fn unknown_field_is_named() {
    expect_problem(
        |d| set(d, &["schedules", "0", "retension"], y("{days: 3}")),
        "schedules[0].retension",
        "unknown field `retension`, expected one of",
    );
}

#[test]
fn bad_cron_expression() {
    expect_problem(
        |d| set(d, &["schedules", "0", "cron"], y("every day")),
        "schedules[0].cron",
        "EventBridge",
    );
}

#[test]
fn copy_concurrency_above_the_aws_limit() {
    expect_problem(
        |d| set(d, &["settings", "aurora_copy_concurrency"], y("6")),
        "settings.aurora_copy_concurrency",
        "between 1 and 5",
    );
}

#[test]
fn removed_settings_say_what_replaced_them() {
    expect_problem(
        |d| set(d, &["settings", "max_polls"], y("60")),
        "settings.max_polls",
        "until its deadline",
    );
    expect_problem(
        |d| set(d, &["settings", "max_concurrency"], y("10")),
        "settings.max_concurrency",
        "call_concurrency",
    );
}

#[test]
fn rds_copy_concurrency_above_the_aws_limit() {
    expect_problem(
        |d| set(d, &["settings", "rds_copy_concurrency"], y("21")),
        "settings.rds_copy_concurrency",
        "between 1 and 20",
    );
}

#[test]
fn copy_limits_per_engine() {
    let s = Settings::default();
    assert_eq!(s.copy_limit(Engine::Aurora), Some(5));
    assert_eq!(s.copy_limit(Engine::Rds), Some(20));
    assert_eq!(s.copy_limit(Engine::Redshift), None);
}

#[test]
fn unknown_engine_names_the_choices() {
    expect_problem(
        |d| set(d, &["schedules", "0", "engine"], y("memcached")),
        "schedules[0].engine",
        "elasticache",
    );
}

#[test]
fn redshift_options_on_another_engine() {
    expect_problem(
        |d| {
            set(
                d,
                &["schedules", "0", "redshift"],
                y("{copy_automated: true}"),
            )
        },
        "schedules[0].redshift",
        "only for `engine: redshift`",
    );
}

#[test]
fn redshift_needs_a_single_copy_region() {
    expect_problem(
        |d| {
            set(d, &["schedules", "0", "engine"], y("redshift"));
            d["destinations"][0]["regions"]
                .as_sequence_mut()
                .unwrap()
                .push(y(
                    "{region: eu-central-1, kms_key: \"arn:aws:kms:eu-central-1:222222222222:key/k\"}",
                ));
        },
        "schedules[0].engine",
        "one other region only",
    );
}

#[test]
fn redshift_copy_key_must_be_in_the_copy_region() {
    expect_problem(
        |d| {
            set(
                d,
                &["source", "redshift_copy_kms_key"],
                y("arn:aws:kms:us-east-1:111111111111:key/k"),
            );
        },
        "source.redshift_copy_kms_key",
        "give a key in eu-west-1",
    );
    expect_problem(
        |d| {
            set(
                d,
                &["source", "redshift_copy_kms_key"],
                y("arn:aws:kms:eu-west-1:222222222222:key/k"),
            );
        },
        "source.redshift_copy_kms_key",
        "give a key of 111111111111",
    );
}

#[test]
fn option_group_targets_are_option_group_names() {
    expect_problem(
        |d| {
            set(
                d,
                &["destinations", "0", "regions", "0", "option_groups"],
                y("{app-opts: \"not a name\"}"),
            );
        },
        "destinations[0].regions[0].option_groups.app-opts",
        "not an option group name",
    );
}

#[test]
fn missing_required_field() {
    expect_problem(
        |d| {
            d.as_mapping_mut().unwrap().remove("namespace");
        },
        "",
        "missing field `namespace`",
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut doc = y(EXAMPLE);
    set(&mut doc, &["namespace"], y("BAD"));
    set(&mut doc, &["schedules", "0", "interval"], y("10m"));
    let err = Config::parse(&serde_yaml_ng::to_string(&doc).unwrap()).unwrap_err();
    let fields: Vec<_> = err.problems().iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, vec!["namespace", "schedules[0].interval"]);
}

#[test]
fn filter_applies_patterns_and_opt_in_tag() {
    let mut s = example().schedules[0].clone();
    let f = ResourceFilter::new(&s, "s").unwrap();
    let none = BTreeMap::new();
    assert!(f.covers("orders-db", &none));
    assert!(!f.covers("orders-tmp", &none));
    assert!(!f.covers("scratch-tmp", &none));
    assert!(!f.covers("inventory-db", &none));
    s.opt_in_tag = Some(TagMatch {
        key: "backup".into(),
        value: Some("true".into()),
    });
    let f = ResourceFilter::new(&s, "s").unwrap();
    assert!(!f.covers("orders-db", &none));
    let tagged = BTreeMap::from([("backup".to_string(), "true".to_string())]);
    assert!(f.covers("orders-db", &tagged));
    let wrong = BTreeMap::from([("backup".to_string(), "no".to_string())]);
    assert!(!f.covers("orders-db", &wrong));
}

#[test]
fn schema_describes_every_top_level_field() {
    let schema = crate::config_schema();
    let props = schema["properties"].as_object().unwrap();
    for key in [
        "namespace",
        "source",
        "destinations",
        "schedules",
        "settings",
    ] {
        assert!(props.contains_key(key), "{key}");
    }
    let text = schema.to_string();
    assert!(text.contains("one snapshot per resource per interval slot"));
}

#[test]
fn the_readme_documents_every_config_field() {
    let readme = include_str!("../../../../README.md");
    let schema = crate::config_schema();
    let mut fields = Vec::new();
    collect_fields(&schema, &mut fields);
    for field in fields {
        let in_code = Regex::new(&format!(r"`[^`\n]*\b{field}\b[^`\n]*`")).unwrap();
        assert!(
            in_code.is_match(readme),
            "README's configuration reference does not mention `{field}`"
        );
    }
}

fn collect_fields(node: &serde_json::Value, out: &mut Vec<String>) {
    if let Some(props) = node.get("properties").and_then(|p| p.as_object()) {
        for (name, sub) in props {
            out.push(name.clone());
            collect_fields(sub, out);
        }
    }
    for key in ["items", "anyOf", "oneOf", "allOf", "$defs"] {
        match node.get(key) {
            Some(serde_json::Value::Array(list)) => {
                list.iter().for_each(|v| collect_fields(v, out))
            }
            Some(serde_json::Value::Object(map)) if key == "$defs" => {
                map.values().for_each(|v| collect_fields(v, out))
            }
            Some(v @ serde_json::Value::Object(_)) => collect_fields(v, out),
            _ => {}
        }
    }
}

#[test]
fn schedule_names_that_differ_only_by_hyphens() {
    expect_problem(
        |d| {
            let mut s = d["schedules"][0].clone();
            s["name"] = y("auroradaily");
            d["schedules"].as_sequence_mut().unwrap().push(s);
        },
        "schedules[4].name",
        "only by hyphens",
    );
}

#[test]
fn every_built_in_rule_compiles() {
    for rule in [
        &NAMESPACE,
        &ACCOUNT,
        &REGION,
        &SCHEDULE_NAME,
        &KMS_ARN,
        &OPTION_GROUP,
    ] {
        assert!(rule.is_some());
    }
}

#[test]
fn a_destination_without_days_has_no_floor_and_is_refused() {
    expect_problem(
        |d| {
            d["destinations"][0]["retention"]
                .as_mapping_mut()
                .unwrap()
                .remove("days");
        },
        "destinations[0].retention.days",
        "vault's floor",
    );
}

#[test]
fn a_break_glass_role_is_a_name_not_an_arn() {
    expect_problem(
        |d| {
            set(
                d,
                &["vault", "break_glass_role"],
                y("arn:aws:iam::222222222222:role/admin"),
            )
        },
        "vault.break_glass_role",
        "not an IAM role name",
    );
}

#[test]
fn deploy_roles_cannot_except_every_role() {
    expect_problem(
        |d| set(d, &["vault", "deploy_roles"], y("['*']")),
        "vault.deploy_roles[0]",
        "every role",
    );
    expect_problem(
        |d| set(d, &["vault", "deploy_roles"], y("[]")),
        "vault.deploy_roles",
        "at least one",
    );
}
