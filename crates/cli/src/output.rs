//! What the terminal shows: a spinner while a run goes on, tables at the end.

use std::io::IsTerminal;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::{SignedDuration, Timestamp};
use snapcourier_core::events::{ItemFailure, SkippedResource};
use snapcourier_core::heartbeat::Heartbeat;
use snapcourier_core::snapshot::SnapshotRecord;

use crate::runner::{Progress, RunReport};

/// A spinner on a terminal; log lines otherwise.
pub struct TerminalProgress {
    bar: Option<ProgressBar>,
}

impl TerminalProgress {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed}] {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        TerminalProgress { bar }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Default for TerminalProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for TerminalProgress {
    fn stage(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_string()),
            None => tracing::info!("{message}"),
        }
    }

    fn waiting(&self, pending: usize, look: u32, max_looks: u32) {
        let message = format!(
            "{pending} snapshot(s) or copies still under way after look {look} (at most {max_looks}; the run's deadline ends them sooner)"
        );
        match &self.bar {
            Some(bar) => bar.set_message(message),
            None => tracing::info!("{message}"),
        }
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

/// Skipped databases with their reasons (a run's and a plan's).
fn push_skipped(out: &mut String, header: &str, skipped: &[SkippedResource]) {
    if skipped.is_empty() {
        return;
    }
    let mut t = table(&[header, "reason"]);
    for s in skipped {
        t.add_row(vec![&s.resource_id, &s.reason]);
    }
    out.push_str(&format!("{t}\n"));
}

/// Failures with their stage and error (a run's, or what a plan says a run would report).
fn push_failures(out: &mut String, header: &str, failures: &[ItemFailure]) {
    if failures.is_empty() {
        return;
    }
    let mut t = table(&[header, "stage", "error", "message"]);
    for f in failures {
        t.add_row(vec![
            f.resource.as_str(),
            f.stage.as_str(),
            &f.error.error_type,
            &f.error.message,
        ]);
    }
    out.push_str(&format!("{t}\n"));
}

/// `N <what>: a, b, c` for each non-empty list.
fn push_lists(out: &mut String, lists: &[(&str, &[String])]) {
    for (what, list) in lists {
        if !list.is_empty() {
            out.push_str(&format!("{} {what}: {}\n", list.len(), list.join(", ")));
        }
    }
}

/// A plan: the changes the next run would make, then what it would wait for, skip and report.
pub fn render_plan(p: &crate::plan::PlanReport) -> String {
    let mut out = format!(
        "plan: {} run of schedule {} (nothing was changed; {} AWS read(s))\n",
        p.side, p.schedule, p.api_calls
    );
    if p.changes.is_empty() {
        out.push_str("no change to make\n");
    } else {
        let mut t = table(&["step", "action", "region", "on", "detail"]);
        for c in &p.changes {
            t.add_row(vec![
                c.step.as_str(),
                c.call.action.as_str(),
                c.call.region.as_str(),
                c.call.target.as_deref().unwrap_or("-"),
                c.call.detail.as_deref().unwrap_or(""),
            ]);
        }
        out.push_str(&format!("{t}\n"));
    }
    if !p.waiting_for_a_slot.is_empty() {
        let mut t = table(&["waiting for a copy slot", "region", "database"]);
        for w in &p.waiting_for_a_slot {
            t.add_row(vec![&w.snapshot_id, &w.region, &w.resource_id]);
        }
        out.push_str(&format!("{t}\n"));
    }
    push_skipped(&mut out, "skipped database", &p.skipped);
    push_failures(&mut out, "WOULD FAIL resource", &p.problems);
    push_lists(
        &mut out,
        &[
            (
                "new snapshot(s), each shared once available",
                &p.shared_once_available,
            ),
            ("still being made, followed by the run", &p.in_progress),
            ("older than destination retention, not copied", &p.too_old),
        ],
    );
    out
}

/// A plan's capacity checks: the manual snapshot quotas against the steady state, then the
/// copies a day needs against the copy slots.
pub fn render_capacity(c: &crate::capacity::Capacity) -> String {
    let mut out = String::new();
    if !c.quotas.is_empty() {
        let mut t = table(&[
            "region",
            "quota",
            "max",
            "used now (ours)",
            "our steady state",
            "needed",
            "",
        ]);
        for q in &c.quotas {
            t.add_row(vec![
                q.region.clone(),
                q.quota.clone(),
                q.max.to_string(),
                format!("{} ({})", q.used, q.ours),
                q.steady_state.to_string(),
                q.needed.to_string(),
                if q.over {
                    format!("OVER: lower {} or raise the quota", q.settings.join(", "))
                } else {
                    "ok".into()
                },
            ]);
        }
        out.push_str(&format!("{t}\n"));
    }
    if !c.copies.is_empty() {
        let mut t = table(&[
            "region",
            "engine",
            "copies a day",
            "slots",
            "a day at the assumed copy time",
            "",
        ]);
        for k in &c.copies {
            t.add_row(vec![
                k.region.clone(),
                k.engine.name().to_string(),
                k.copies_per_day.to_string(),
                k.slots.to_string(),
                format!("{} ({} min per copy)", k.capacity_per_day, k.assumed_copy_minutes),
                if k.over {
                    "more than the slots copy in a day: longer intervals, fewer databases per schedule, or faster copies".into()
                } else {
                    "ok".into()
                },
            ]);
        }
        out.push_str(&format!("{t}\n"));
    }
    out
}

/// The coverage report as a table, then its summary line.
pub fn render_coverage(r: &crate::coverage_report::CoverageReport) -> String {
    use crate::coverage_report::age;
    let regions: Vec<String> = r
        .rows
        .first()
        .map(|row| row.copies.keys().cloned().collect())
        .unwrap_or_default();
    let mut header: Vec<String> = ["schedule", "database", "RPO", "newest source", "shared"]
        .iter()
        .map(ToString::to_string)
        .collect();
    header.extend(regions.iter().map(|r| format!("copy {r}")));
    header.extend(["last drill".to_string(), "status".to_string()]);
    let refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = table(&refs);
    for row in &r.rows {
        let mut cells = vec![
            row.schedule.clone(),
            row.database.clone(),
            age(row.rpo_seconds),
            row.newest_source.as_ref().map_or("none".into(), |p| {
                format!("{} ({} old)", p.snapshot_id, age(p.age_seconds))
            }),
            if row.shared {
                "yes".into()
            } else {
                "no".into()
            },
        ];
        for region in &regions {
            cells.push(match row.copies.get(region) {
                Some(Some(p)) => format!("{} old", age(p.age_seconds)),
                _ => "none".into(),
            });
        }
        cells.push(row.last_drill.clone().unwrap_or_else(|| "none yet".into()));
        cells.push(row.status.as_str().to_uppercase());
        t.add_row(cells);
    }
    format!(
        "{t}\n{} database(s): {} ok, {} late, {} missing, {} failing\n",
        r.rows.len(),
        r.ok,
        r.late,
        r.missing,
        r.failing
    )
}

/// The end-of-run summary: items, skips, deletions, failures, and the AWS calls it cost.
pub fn render_report(r: &RunReport) -> String {
    let mut out = format!("{} run of schedule {}\n", r.side, r.schedule);
    if !r.items.is_empty() {
        let mut t = table(&["resource", "snapshot", "status", "outcome"]);
        for i in &r.items {
            t.add_row(vec![&i.resource, &i.snapshot_id, &i.status, &i.outcome]);
        }
        out.push_str(&format!("{t}\n"));
    }
    push_skipped(&mut out, "skipped resource", &r.skipped);
    if !r.deleted.is_empty() {
        let mut t = table(&["deleted snapshot", "region", "why"]);
        for d in &r.deleted {
            t.add_row(vec![d.snapshot_id.as_str(), &d.region, d.reason.as_str()]);
        }
        out.push_str(&format!("{t}\n"));
    }
    push_failures(&mut out, "FAILED resource", &r.failures);
    push_lists(
        &mut out,
        &[
            ("snapshot(s) waiting for a copy slot", &r.deferred),
            (
                "snapshot(s) older than destination retention, not copied",
                &r.too_old,
            ),
            (
                "snapshot(s) shared by the source and visible in every destination region (verified)",
                &r.verified,
            ),
        ],
    );
    match &r.heartbeat {
        Some(Heartbeat {
            newest: Some(newest),
            age_seconds: Some(age),
            ..
        }) => out.push_str(&format!(
            "newest protected recovery point: {newest} ({:#} old)\n",
            SignedDuration::from_secs(*age)
        )),
        Some(h) if !h.missing_in.is_empty() => out.push_str(&format!(
            "no protected recovery point yet in: {}\n",
            h.missing_in.join(", ")
        )),
        _ => {}
    }
    if let Some(c) = &r.coverage {
        if c.unprotected == 0 {
            out.push_str(&format!(
                "every one of the {} databases has a recovery point protected within {:#}\n",
                c.databases,
                SignedDuration::from_secs(c.threshold_seconds as i64)
            ));
        } else {
            out.push_str(&format!(
                "{} of {} databases have NO recovery point protected within {:#}:\n",
                c.unprotected,
                c.databases,
                SignedDuration::from_secs(c.threshold_seconds as i64)
            ));
            let mut t = table(&["UNPROTECTED database", "newest protected recovery point"]);
            for u in &c.named {
                let newest = u
                    .newest
                    .map_or_else(|| "none".to_string(), |t| t.to_string());
                t.add_row(vec![u.database.clone(), newest]);
            }
            out.push_str(&format!("{t}\n"));
        }
    }
    out.push_str(&format!(
        "{} created, {} settled, {} skipped, {} deleted, {} failed; {} AWS calls ({} attempts)\n",
        r.created.len(),
        r.items.len(),
        r.skipped.len(),
        r.deleted.len(),
        r.failures.len(),
        r.api_calls,
        r.api_attempts
    ));
    out
}

/// Owned snapshots of one account, per region.
pub fn render_snapshots(
    account: &str,
    by_region: &[(String, Vec<SnapshotRecord>)],
    now: Timestamp,
) -> String {
    let mut t = table(&[
        "account", "region", "snapshot", "stage", "status", "kms key", "age",
    ]);
    for (region, snapshots) in by_region {
        for s in snapshots {
            let age = s
                .captured_at()
                .map(|c| {
                    format!(
                        "{:#}",
                        jiff::SignedDuration::from_secs((now.as_second() - c.as_second()).max(0))
                    )
                })
                .unwrap_or_else(|| "-".into());
            let key = match (&s.kms_key_id, s.encrypted) {
                (Some(k), true) => k.rsplit('/').next().unwrap_or(k).to_string(),
                _ => "unencrypted".into(),
            };
            t.add_row(vec![
                account.to_string(),
                region.clone(),
                s.id.clone(),
                s.stage().map_or("-", |st| st.as_str()).to_string(),
                s.status.as_str().to_string(),
                key,
                age,
            ]);
        }
    }
    format!("{t}\n")
}

/// The end of a state machine execution: status, counts or error, and the failure report.
pub fn render_execution(e: &snapcourier_aws::executions::ExecutionState) -> String {
    let mut out = format!("execution {}\nstatus: {}\n", e.arn, e.status);
    if let Some(output) = &e.output {
        out.push_str(&format!("output: {output}\n"));
    }
    if let Some(error) = &e.error {
        out.push_str(&format!(
            "error: {error}: {}\n",
            e.cause.as_deref().unwrap_or_default()
        ));
    }
    let failures = e
        .report
        .as_ref()
        .into_iter()
        .flat_map(|r| {
            [
                "failures",
                "share_failures",
                "regional_failures",
                "retention_failures",
            ]
            .into_iter()
            .filter_map(|k| r.get(k)?.as_array())
        })
        .flatten();
    let mut t = table(&["FAILED resource", "stage", "error", "message"]);
    let mut any = false;
    for f in failures {
        any = true;
        // Every failure in a report is an ItemFailure: resource, stage, error (an ItemError).
        let text = |v: &serde_json::Value, k: &str| {
            v.get(k)
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let error = f.get("error").cloned().unwrap_or_default();
        t.add_row(vec![
            text(f, "resource"),
            text(f, "stage"),
            text(&error, "errorType"),
            text(&error, "message"),
        ]);
    }
    if any {
        out.push_str(&format!("{t}\n"));
    }
    out
}

/// A drill: one row per restored database (its copy, the copy's age when it became available,
/// the measured restore time, the validation verdict, the result), then failures and
/// leftovers.
pub fn render_drill(o: &snapcourier_core::drill::DrillOutput) -> String {
    use snapcourier_core::duration::short;
    let mut out = String::new();
    if o.drills.is_empty() && o.failures.is_empty() {
        out.push_str("no database drilled");
        if !o.not_due.is_empty() {
            out.push_str(&format!(
                " (no drill due in {}: the last began less than drills.every ago)",
                o.not_due.join(", ")
            ));
        }
        out.push('\n');
    }
    if !o.drills.is_empty() {
        let mut t = table(&[
            "database",
            "region",
            "restored from",
            "recovery point age",
            "restore time (RTO)",
            "validation",
            "result",
        ]);
        for d in &o.drills {
            t.add_row(vec![
                d.database.clone(),
                d.region.clone(),
                d.snapshot.clone(),
                d.recovery_point_age_seconds.map_or("-".into(), short),
                d.restore_seconds.map_or("-".into(), short),
                d.validation.clone().unwrap_or_else(|| "-".into()),
                match &d.failure {
                    None if d.succeeded() => "ok, deleted".to_string(),
                    None => "not finished".to_string(),
                    Some(f) => format!("FAILED at {}", f.stage),
                },
            ]);
        }
        out.push_str(&format!("{t}\n"));
    }
    push_failures(&mut out, "failed", &o.failures);
    push_lists(
        &mut out,
        &[(
            "leftover(s) of earlier drills deleted",
            &o.leftovers_deleted,
        )],
    );
    out.push_str(&format!(
        "{} drill(s) succeeded, {} failed\n",
        o.succeeded, o.failed
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_execution_shows_every_failure_list_of_its_report() {
        let failure = |resource: &str, stage: &str, error: &str| {
            serde_json::json!({"resource": resource, "stage": stage,
                "error": {"errorType": error, "message": format!("{resource} says why"), "retryable": false}})
        };
        let state = snapcourier_aws::executions::ExecutionState {
            arn: "arn:aws:states:us-east-1:111111111111:execution:snapcourier-source:x".into(),
            status: "FAILED".into(),
            output: None,
            error: Some("SnapcourierItemsFailed".into()),
            cause: Some("see the report".into()),
            report: Some(serde_json::json!({
                "failures": [failure("orders-db", "take", "AccessDenied")],
                "share_failures": [failure("billing-db", "share", "InvalidState")],
                "retention_failures": [failure("(retention)", "delete", "Throttled")],
            })),
        };
        let printed = render_execution(&state);
        for expected in [
            "orders-db",
            "AccessDenied",
            "billing-db",
            "billing-db says why",
            "InvalidState",
            "(retention)",
            "Throttled",
        ] {
            assert!(printed.contains(expected), "{expected}: {printed}");
        }
    }
}
