//! The ASL files against the contracts they share with the code: placeholders, error names,
//! and the run fields they read.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use snapcourier_core::error::ERROR_TYPES;

fn load(side: &str) -> Value {
    let path = format!(
        "{}/../../statemachine/{side}.asl.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every state, nested Map processors included.
fn states(machine: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, state) in machine["States"].as_object().unwrap() {
        out.push((name.clone(), state.clone()));
        if let Some(processor) = state.get("ItemProcessor") {
            out.extend(states(processor));
        }
    }
    out
}

fn placeholders(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\$\{([A-Za-z]+)\}").unwrap();
    re.captures_iter(text).map(|c| c[1].to_string()).collect()
}

#[test]
fn placeholders_are_exactly_what_a_stack_substitutes() {
    let expect = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        placeholders(&load("source").to_string()),
        expect(&[
            "TakeFunctionArn",
            "ShareFunctionArn",
            "DeleteFunctionArn",
            "FailureTopicArn"
        ])
    );
    assert_eq!(
        placeholders(&load("destination").to_string()),
        expect(&[
            "CopyInDestinationFunctionArn",
            "CrossRegionCopyFunctionArn",
            "DeleteFunctionArn",
            "FailureTopicArn"
        ])
    );
    assert_eq!(
        placeholders(&load("drill").to_string()),
        expect(&["DrillFunctionArn", "FailureTopicArn"])
    );
}

#[test]
fn lambda_tasks_retry_exactly_the_retryable_errors_and_catch_everything() {
    let mut expected: BTreeSet<&str> = ["Throttled", "ServiceUnavailable", "QuotaExceeded"].into();
    expected.extend([
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ]);
    for side in ["source", "destination", "drill"] {
        for (name, state) in states(&load(side)) {
            if state["Resource"] != "arn:aws:states:::lambda:invoke" {
                continue;
            }
            let retries = state["Retry"].as_array().unwrap();
            let retried: BTreeSet<&str> = retries
                .iter()
                .flat_map(|r| {
                    r["ErrorEquals"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e.as_str().unwrap())
                })
                .collect();
            assert_eq!(retried, expected, "{side}/{name}");
            for e in &retried {
                assert!(
                    ERROR_TYPES.contains(e) || e.starts_with("Lambda."),
                    "{side}/{name}: {e}"
                );
            }
            // QuotaExceeded has its own, long backoff; every retry backs off with full jitter.
            let quota = retries
                .iter()
                .find(|r| r["ErrorEquals"][0] == "QuotaExceeded")
                .unwrap();
            assert!(quota["IntervalSeconds"].as_u64().unwrap() >= 60);
            for r in retries {
                assert_eq!(r["JitterStrategy"], "FULL", "{side}/{name}");
                assert!(r["BackoffRate"].as_f64().unwrap() > 1.0);
            }
            assert_eq!(
                state["Catch"][0]["ErrorEquals"][0], "States.ALL",
                "{side}/{name}: every failure is caught and reported"
            );
        }
    }
}

#[test]
fn neither_side_holds_a_list_of_the_fleet_and_its_steps_pace_the_looks() {
    // (side, the step that looks, its result path)
    for (side, step, result) in [
        ("source", "Share", "share"),
        ("destination", "CopyIn", "look"),
    ] {
        let machine = load(side);
        let all = states(&machine);
        // No Map: the steps work on the whole schedule per look and return counts, so no
        // state grows with the number of databases.
        assert!(all.iter().all(|(_, s)| s["Type"] != "Map"), "{side}");
        let waits: Vec<_> = all.iter().filter(|(_, s)| s["Type"] == "Wait").collect();
        assert_eq!(waits.len(), 1, "{side}");
        // The step decides when to look again (from the run's settings and deadline).
        assert_eq!(
            waits[0].1["SecondsPath"],
            format!("$.{result}.output.next_look_seconds")
        );
        assert_eq!(waits[0].1["Next"], step);
        let again = &machine["States"]["LookAgain?"]["Choices"][0];
        assert_eq!(again["Variable"], format!("$.{result}.output.finished"));
        assert_eq!(again["Next"], "WaitBeforeNextLook");
    }
}

/// Every `$.<result>.output.<field>` a state machine reads, per result path.
fn fields_read(machine: &Value) -> Vec<(String, String)> {
    let re = regex::Regex::new(r"\$\.([a-z]+)\.output\.([a-z_]+)").unwrap();
    let text = machine.to_string();
    let mut out: Vec<(String, String)> = re
        .captures_iter(&text)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What each state writes at `$.<result>`: the step's real output, or a Pass state's
/// stand-in (a failure, or nothing to do). A field the state machine reads must be in every
/// one of them, or the execution dies with States.Runtime (which no Catch reports).
fn writers(machine: &Value, result: &str, step_output: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, state) in states(machine) {
        if state["ResultPath"] != format!("$.{result}") {
            continue;
        }
        let written = if state["Type"] == "Task" {
            step_output.clone()
        } else if let Some(r) = state.get("Result") {
            r["output"].clone()
        } else {
            state["Parameters"]["output"].clone()
        };
        out.push((name, written));
    }
    // The start values Prepare gives the first look.
    if let Some(start) = machine["States"]["Prepare"]["Parameters"].get(result) {
        out.push(("Prepare".into(), start["output"].clone()));
    }
    out
}

#[test]
fn every_field_a_state_machine_reads_is_written_by_each_state_before_it() {
    use snapcourier_core::events::*;
    let config =
        snapcourier_core::Config::parse(include_str!("../../../examples/snapcourier.yaml"))
            .unwrap();
    let source = SourceRun::from_config(&config, "aurora-daily").unwrap();
    let now: jiff::Timestamp = "2026-11-22T03:00:00Z".parse().unwrap();
    let take = to_json(TakePass::overlapping("arn".into()).output());
    let share = to_json(SharePass::empty().output(&ShareInput {
        run: source.clone(),
        execution: None,
        looks: 0,
        shared: 0,
    }));
    let look = to_json(CopyPass::overlapping("arn".into()).output(&Look::first(now), "us-east-1"));
    let regional = to_json(
        RegionalPass {
            started: Vec::new(),
            waiting: Vec::new(),
            failures: Vec::new(),
            api_calls: 0,
        }
        .output(),
    );
    let expire = to_json(
        DeleteOutput {
            version: EVENT_VERSION,
            deleted: Vec::new(),
            deleted_count: 0,
            kept: 0,
            failures: Vec::new(),
            failed: 0,
            api_calls: 0,
            heartbeat: None,
            coverage: None,
        }
        .bounded(),
    );
    // (side, result path, the step's output, the step that looks)
    let outputs = [
        ("source", "take", &take),
        ("source", "share", &share),
        ("source", "expire", &expire),
        ("destination", "look", &look),
        ("destination", "regional", &regional),
        ("destination", "expire", &expire),
    ];
    for (side, looker) in [("source", "Share"), ("destination", "CopyIn")] {
        let machine = load(side);
        let read = fields_read(&machine);
        // Prepare holds what the first look reads, nothing more.
        let first_look_reads = fields_read(&machine["States"][looker]["Parameters"]);
        assert!(!read.is_empty());
        for (result, field) in read {
            let (_, _, output) = outputs
                .iter()
                .find(|(s, r, _)| *s == side && *r == result)
                .unwrap_or_else(|| {
                    panic!("{side} reads $.{result}.output, a step this test does not know")
                });
            let writers = writers(&machine, &result, output);
            assert!(!writers.is_empty(), "{side}: nothing writes $.{result}");
            for (state, written) in writers {
                if state == "Prepare"
                    && !first_look_reads.contains(&(result.clone(), field.clone()))
                {
                    continue;
                }
                assert!(
                    written.get(&field).is_some(),
                    "{side}: {state} writes $.{result} without `{field}`, which the state machine reads: {written}"
                );
            }
        }
    }
}

/// The value at a plain JSONPath (`$.a.b.c`).
fn at<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.strip_prefix("$.")?
        .split('.')
        .try_fold(doc, |v, k| v.get(k))
}

/// An expression of a Pass state's Parameters: a plain path, or `States.MathAdd` of them.
fn eval(expr: &str, doc: &Value) -> Value {
    if let Some(args) = expr
        .strip_prefix("States.MathAdd(")
        .and_then(|e| e.strip_suffix(')'))
    {
        // Split at the commas outside nested calls.
        let (mut depth, mut start, mut sum) = (0, 0, 0i64);
        let mut parts = Vec::new();
        for (i, ch) in args.char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&args[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&args[start..]);
        for p in parts {
            sum += eval(p.trim(), doc).as_i64().unwrap();
        }
        return Value::from(sum);
    }
    at(doc, expr)
        .unwrap_or_else(|| panic!("{expr} is not in the state"))
        .clone()
}

/// A Pass state's Parameters applied to the state `doc`.
fn apply(params: &Value, doc: &Value) -> Value {
    match params {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| match k.strip_suffix(".$") {
                    Some(key) => (key.to_string(), eval(v.as_str().unwrap(), doc)),
                    None => (k.clone(), apply(v, doc)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| apply(v, doc)).collect()),
        other => other.clone(),
    }
}

#[test]
fn a_failure_report_for_thousands_of_failed_items_fits_sns_and_counts_them_all() {
    use snapcourier_core::coverage::{Coverage, UnprotectedDatabase};
    use snapcourier_core::events::*;
    use snapcourier_core::looks::NextLook;
    use snapcourier_core::{ItemError, plan::PendingCopy};
    let config =
        snapcourier_core::Config::parse(include_str!("../../../examples/snapcourier.yaml"))
            .unwrap();
    let source = SourceRun::from_config(&config, "aurora-daily").unwrap();
    let now: jiff::Timestamp = "2026-11-22T03:00:00Z".parse().unwrap();
    let name = |i: usize| format!("orders-cluster-with-a-long-name-{i:04}");
    let error = ItemError {
        error_type: "AccessDenied".into(),
        message: "x".repeat(400),
        retryable: false,
    };
    let failures = |stage: FailureStage| -> Vec<ItemFailure> {
        (0..1000)
            .map(|i| ItemFailure {
                resource: name(i),
                stage,
                error: error.clone(),
            })
            .collect()
    };
    let coverage = Coverage {
        databases: 5000,
        unprotected: 1000,
        threshold_seconds: 172_800,
        named: (0..1000)
            .map(|i| UnprotectedDatabase {
                database: name(i),
                newest: None,
            })
            .collect(),
    };
    let expire = serde_json::to_value(
        DeleteOutput {
            version: EVENT_VERSION,
            deleted: Vec::new(),
            deleted_count: 0,
            kept: 0,
            failures: failures(FailureStage::Delete),
            failed: 0,
            api_calls: 0,
            heartbeat: None,
            coverage: Some(coverage.clone()),
        }
        .bounded(),
    )
    .unwrap();
    let take = TakePass {
        overlapping_execution: None,
        items: (0..1000)
            .map(|i| SourceItem {
                resource_id: name(i),
                snapshot_id: format!("sc-demo-auroradaily-{}-20261122-0000", name(i)),
                snapshot_arn: None,
                status: "error".into(),
                shared: false,
                error: Some(error.clone()),
            })
            .collect(),
        skipped: Vec::new(),
        created: Vec::new(),
        api_calls: 0,
    };
    let share = SharePass {
        failures: failures(FailureStage::Share),
        next: NextLook::Finished,
        ..SharePass::empty()
    };
    let source_state = json!({
        "run": source,
        "execution": {"id": "arn:aws:states:us-east-1:111111111111:execution:snapcourier-source:x"},
        "take": {"output": take.output()},
        "share": {"output": share.output(&ShareInput { run: source.clone(), execution: None, looks: 0, shared: 0 })},
        "expire": {"output": expire},
    });
    let pending = |i: usize| PendingCopy {
        resource_id: name(i),
        snapshot_id: format!("sc-demo-auroradaily-{}-20261122-0000", name(i)),
        region: "eu-west-1".into(),
        status: "copying".into(),
    };
    let look = CopyPass {
        failures: failures(FailureStage::CopyIn),
        in_flight: (0..1000).map(pending).collect(),
        next: NextLook::OutOfTime("the run's deadline passed".into()),
        coverage: Some(coverage),
        ..CopyPass::overlapping(String::new())
    };
    let regional = RegionalPass {
        started: Vec::new(),
        waiting: Vec::new(),
        failures: failures(FailureStage::CrossRegionCopy),
        api_calls: 0,
    };
    let destination_state = json!({
        "run": DestinationRun::from_config(&config, "aurora-daily", "222222222222").unwrap(),
        "execution": {"id": "arn:aws:states:us-east-1:222222222222:execution:snapcourier-destination:x"},
        "look": {"output": CopyPass { overlapping_execution: None, ..look }.output(&Look::first(now), "us-east-1")},
        "regional": {"output": regional.output()},
        "expire": {"output": expire},
    });
    for (side, state, failed) in [
        ("source", source_state, 3000),
        ("destination", destination_state, 4000),
    ] {
        let machine = load(side);
        let report = apply(&machine["States"]["Report"]["Parameters"], &state);
        // Every failure is counted (the copies left at the deadline too)...
        assert_eq!(report["failed"], failed, "{side}");
        assert_eq!(report["coverage"]["unprotected"], 1000, "{side}");
        // ...the first ones are named, and the message (States.JsonToString of the report)
        // stays far below SNS's 256 KiB, as does the state that holds it.
        let bytes = report.to_string().len();
        assert!(bytes < 64 * 1024, "{side}: {bytes} bytes");
        let held = state.to_string().len() + bytes;
        assert!(held < 128 * 1024, "{side}: state {held} bytes");
    }
}

fn to_json(output: impl serde::Serialize) -> Value {
    serde_json::to_value(output).unwrap()
}

#[test]
fn the_drill_reads_only_what_its_step_and_prepare_write_and_always_ends() {
    use snapcourier_core::drill::DrillOutput;
    let machine = load("drill");
    let now: jiff::Timestamp = "2026-12-02T03:00:00Z".parse().unwrap();
    let output = to_json(DrillOutput::new(
        1,
        Vec::new(),
        now,
        now,
        &Default::default(),
    ));
    let prepare = &machine["States"]["Prepare"]["Parameters"]["look"]["output"];
    let first_look = fields_read(&machine["States"]["Drill"]["Parameters"]);
    for (result, field) in fields_read(&machine) {
        assert_eq!(result, "look", "the drill reads only its step's output");
        assert!(
            output.get(&field).is_some(),
            "the drill step's output lacks `{field}`: {output}"
        );
        if first_look.contains(&(result.clone(), field.clone())) {
            assert!(prepare.get(&field).is_some(), "Prepare lacks `{field}`");
        }
    }
    // One loop, paced by the step; the abandon path deletes what was restored, then reports.
    let waits: Vec<_> = states(&machine)
        .into_iter()
        .filter(|(_, s)| s["Type"] == "Wait")
        .collect();
    assert_eq!(waits.len(), 1);
    assert_eq!(waits[0].1["SecondsPath"], "$.look.output.wait_seconds");
    assert_eq!(machine["States"]["Drill"]["Catch"][0]["Next"], "Abandon");
    assert_eq!(
        machine["States"]["Abandon"]["Parameters"]["Payload"]["abandon"],
        true
    );
    assert_eq!(
        machine["States"]["Abandon"]["Catch"][0]["Next"],
        "StepFailed"
    );
    assert_eq!(machine["States"]["StepFailed"]["Next"], "Notify");
}
