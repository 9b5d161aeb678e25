//! `snapcourier`: validate a config, print its schema, run either side's steps in-process,
//! and list what snapcourier owns.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use jiff::Timestamp;
use snapcourier_aws::engines::list_owned;
use snapcourier_aws::{AwsContext, ClientOptions};
use snapcourier_cli::capacity::{destination_capacity, source_capacity};
use snapcourier_cli::inputs::Inputs;
use snapcourier_cli::output::{
    TerminalProgress, render_capacity, render_execution, render_plan, render_report,
    render_snapshots,
};
use snapcourier_cli::plan::{plan_destination, plan_source};
use snapcourier_cli::runner::{RunReport, run_destination, run_source, run_state_machine};
use snapcourier_core::events::{DestinationRun, SourceRun};
use snapcourier_core::{Config, Engine, Error};

#[derive(Parser)]
#[command(
    name = "snapcourier",
    version,
    about = "Keeps database snapshots safe across AWS accounts and regions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config file against every rule; prints each problem with its field path.
    Validate {
        #[arg(short, long, env = "SNAPCOURIER_CONFIG")]
        config: PathBuf,
    },
    /// Print the config file's JSON Schema.
    Schema,
    /// Print, as JSON, the state machine input of every scheduled run (source, and per
    /// destination account): what `run` builds, and what the CDK stacks schedule.
    Inputs {
        #[arg(short, long, env = "SNAPCOURIER_CONFIG")]
        config: PathBuf,
    },
    /// Run one side's steps in-process against AWS (or whatever AWS_ENDPOINT_URL names).
    Run {
        #[arg(short, long, env = "SNAPCOURIER_CONFIG")]
        config: PathBuf,
        #[arg(long, value_enum)]
        side: Side,
        /// Only this schedule (default: every schedule).
        #[arg(long)]
        schedule: Option<String>,
        /// The destination account this run acts as (needed when there are several).
        #[arg(long)]
        destination: Option<String>,
        /// AWS profile with the credentials of that side's account.
        #[arg(long, env = "AWS_PROFILE")]
        profile: Option<String>,
        /// Print the report as JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Run through this deployed state machine (Step Functions) instead of in-process.
        #[arg(long, value_name = "ARN")]
        state_machine: Option<String>,
    },
    /// Say what the next run of one side would do, and why, without changing anything: the
    /// run's own steps with every call but reads withheld. Exit 1 when the run would report
    /// a failure.
    Plan {
        #[arg(short, long, env = "SNAPCOURIER_CONFIG")]
        config: PathBuf,
        #[arg(long, value_enum)]
        side: Side,
        /// Only this schedule (default: every schedule).
        #[arg(long)]
        schedule: Option<String>,
        /// The destination account the run acts as (needed when there are several).
        #[arg(long)]
        destination: Option<String>,
        #[arg(long, env = "AWS_PROFILE")]
        profile: Option<String>,
        /// Print the plan as JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Take an on-demand snapshot of one database now (before a deploy, a parameter change or
    /// an upgrade): owned like the scheduled ones, shared and copied by the next runs, kept
    /// for --keep on both sides whatever the schedule's retention, then expired.
    SnapshotNow {
        #[arg(short, long, env = "SNAPCOURIER_CONFIG")]
        config: PathBuf,
        /// The database (Aurora cluster or RDS instance identifier).
        #[arg(long)]
        database: String,
        /// The schedule that covers it (needed when the config has several Aurora/RDS ones).
        #[arg(long)]
        schedule: Option<String>,
        /// Why it is taken, stored as its snapcourier:label tag.
        #[arg(long)]
        label: Option<String>,
        /// How long both sides keep it, such as 12h or 30d (whole hours, at least 1h).
        #[arg(long, default_value = "7d")]
        keep: String,
        /// Wait until it is available and shared with every destination account; with
        /// --destination-profile, also until it is copied into every destination region.
        #[arg(long)]
        wait: bool,
        #[arg(long, env = "AWS_PROFILE")]
        profile: Option<String>,
        /// With --wait: the destination accounts' profile. The schedule's destination run is
        /// made at once (as its next run would: other due shares are copied too), and the
        /// command waits until this snapshot is copied into every destination region.
        #[arg(long, requires = "wait")]
        destination_profile: Option<String>,
        /// With --destination-profile: only this destination account (default: every one).
        #[arg(long, requires = "destination_profile")]
        destination: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Restore drill: restore the newest copy of databases into throwaway resources in a
    /// destination region, time each until it is available, validate it, delete it (always)
    /// and record the result. Exit 1 when a drill failed.
    Drill {
        #[arg(short, long, env = "SNAPCOURIER_CONFIG")]
        config: PathBuf,
        /// The database to drill (repeatable); default: the config's choice (drills.databases,
        /// those drilled longest ago first), due or not.
        #[arg(long)]
        database: Vec<String>,
        /// Only this destination region (default: the drill regions).
        #[arg(long)]
        region: Option<String>,
        /// The destination account (needed when there are several).
        #[arg(long)]
        destination: Option<String>,
        /// The destination account's profile.
        #[arg(long, env = "AWS_PROFILE")]
        profile: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List the snapshots this deployment owns in one side's account, per region; or, with
    /// --coverage, one row per covered database across both sides.
    Report {
        #[arg(short, long, env = "SNAPCOURIER_CONFIG")]
        config: PathBuf,
        /// The side to list (not with --coverage, which reads both).
        #[arg(long, value_enum, required_unless_present = "coverage")]
        side: Option<Side>,
        #[arg(long)]
        destination: Option<String>,
        /// The profile of the side listed; with --coverage, of the source account.
        #[arg(long, env = "AWS_PROFILE")]
        profile: Option<String>,
        /// Per covered database: newest source snapshot, shared or not, newest copy in every
        /// destination region, their ages against the RPO, and a status. Exit 1 unless every
        /// database is ok.
        #[arg(long)]
        coverage: bool,
        /// With --coverage: the destination accounts' profile (each destination of the config,
        /// or the one --destination names).
        #[arg(long)]
        destination_profile: Option<String>,
        /// With --coverage: print JSON.
        #[arg(long)]
        json: bool,
        /// With --coverage: also write the report as Markdown to this file, for auditors.
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Side {
    Source,
    Destination,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SNAPCOURIER_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match execute(Cli::parse().command).await {
        Ok(code) => code,
        Err(e) => {
            eprint!("{}", render_error(&e));
            ExitCode::from(2)
        }
    }
}

/// An error as the operator reads it: a bad config or event lists one problem per line
/// (field path, then the rule), however many there are.
fn render_error(e: &Error) -> String {
    let problems = e.problems();
    if problems.is_empty() {
        return format!("error [{}]: {e}\n", e.error_type());
    }
    let mut out = format!(
        "error [{}]: {} problem(s):\n",
        e.error_type(),
        problems.len()
    );
    for p in problems {
        out.push_str(&format!("  {p}\n"));
    }
    out
}

fn load(path: &PathBuf) -> Result<Config, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::config(
            "",
            format!("cannot read config file {}: {e}", path.display()),
        )
    })?;
    Config::parse(&text)
}

/// The schedule named, or every schedule.
fn schedule_names(config: &Config, wanted: Option<String>) -> Result<Vec<String>, Error> {
    Ok(match wanted {
        Some(name) => vec![config.schedule(&name)?.name.clone()],
        None => config.schedules.iter().map(|s| s.name.clone()).collect(),
    })
}

/// The destination account a command acts as; `None` on the source side.
fn side_account(
    config: &Config,
    side: Side,
    wanted: Option<String>,
) -> Result<Option<String>, Error> {
    match side {
        Side::Source => Ok(None),
        Side::Destination => destination_account(config, wanted).map(Some),
    }
}

/// The SDK retries the config asks for.
fn client_options(config: &Config) -> ClientOptions {
    ClientOptions {
        max_attempts: config.settings.max_attempts,
        ..ClientOptions::default()
    }
}

fn destination_account(config: &Config, wanted: Option<String>) -> Result<String, Error> {
    match (wanted, config.destinations.as_slice()) {
        (Some(account), _) => config.destination(&account).map(|d| d.account.clone()),
        (None, [only]) => Ok(only.account.clone()),
        (None, _) => Err(Error::config(
            "--destination",
            "the config has several destinations: name the account this run acts as",
        )),
    }
}

/// The schedule an on-demand snapshot belongs to: the one named, or the config's only
/// Aurora/RDS schedule.
fn on_demand_schedule(config: &Config, wanted: Option<String>) -> Result<String, Error> {
    if let Some(name) = wanted {
        return Ok(config.schedule(&name)?.name.clone());
    }
    let copying: Vec<&str> = config
        .schedules
        .iter()
        .filter(|s| s.engine.facts().on_demand_snapshots)
        .map(|s| s.name.as_str())
        .collect();
    match copying.as_slice() {
        [only] => Ok((*only).to_string()),
        _ => Err(Error::config(
            "--schedule",
            format!(
                "name the schedule that covers the database (the config's schedules that take on-demand snapshots: {copying:?})"
            ),
        )),
    }
}

/// `--keep` in whole hours: at least 1h, at most 999,999 hours (the id holds six digits).
fn keep_hours(text: &str) -> Result<u32, Error> {
    let d: snapcourier_core::duration::HumanDuration = text.parse().map_err(|e| {
        Error::config(
            "--keep",
            format!("`{text}` is not a duration such as 12h or 30d: {e}"),
        )
    })?;
    let secs = d.as_secs();
    if secs < 3600 || secs % 3600 != 0 {
        return Err(Error::config(
            "--keep",
            format!("`{text}` must be whole hours, at least 1h"),
        ));
    }
    u32::try_from(secs / 3600)
        .ok()
        .filter(|h| *h <= 999_999)
        .ok_or_else(|| Error::config("--keep", "at most 999999h (about 114 years)"))
}

/// A label is a tag value: 1 to 256 letters, digits, spaces and `_ . : / = + - @`.
fn check_label(label: &str) -> Result<(), Error> {
    let ok = (1..=256).contains(&label.chars().count())
        && label
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            "--label",
            "1 to 256 letters, digits, spaces and _ . : / = + - @ (it is stored as a tag value)",
        ))
    }
}

/// Share looks (each also shares the schedule's other unshared snapshots, as the next run
/// would) until `id` is shared with every destination account, or the run's deadline.
async fn wait_until_shared(ctx: &AwsContext, run: &SourceRun, id: &str) -> Result<bool, Error> {
    use snapcourier_core::events::Look;
    let started = Timestamp::now();
    let mut look = Look::first(started);
    let wanted: std::collections::BTreeSet<String> =
        run.destination_accounts.iter().cloned().collect();
    loop {
        let pass = snapcourier_aws::steps::share(ctx, run, &look, Timestamp::now()).await?;
        look.looks_before += 1;
        // The progress marker, as the steps read it (ElastiCache: the export's manifest).
        let now_shared = snapcourier_aws::engines::schedule_snapshots(ctx, run)
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .map(|s| s.shared_with())
            .unwrap_or_default();
        if wanted.is_subset(&now_shared) {
            return Ok(true);
        }
        if let Some(failure) = pass.failures.iter().find(|f| f.resource == id) {
            return Err(Error::InvalidState {
                resource: id.to_string(),
                message: format!("could not be shared: {}", failure.error.message),
            });
        }
        match pass.next {
            snapcourier_core::looks::NextLook::After(seconds) => {
                tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
            }
            _ => return Ok(false),
        }
    }
}

/// `report --coverage`: both sides, every schedule (Redshift's copies are read from the
/// source account, where they are).
async fn coverage_report(
    c: &Config,
    destination: Option<String>,
    profile: Option<String>,
    destination_profile: Option<String>,
    json: bool,
    markdown: Option<PathBuf>,
) -> Result<ExitCode, Error> {
    let source_ctx = AwsContext::from_env(profile.as_deref(), ClientOptions::default()).await;
    let destination_ctx =
        AwsContext::from_env(destination_profile.as_deref(), ClientOptions::default()).await;
    let accounts: Vec<String> = match destination {
        Some(account) => vec![c.destination(&account)?.account.clone()],
        None => c.destinations.iter().map(|d| d.account.clone()).collect(),
    };
    let report = snapcourier_cli::coverage_report::coverage(
        &source_ctx,
        &destination_ctx,
        c,
        &accounts,
        Timestamp::now(),
    )
    .await?;
    if let Some(path) = &markdown {
        std::fs::write(path, report.markdown(&c.namespace)).map_err(|e| {
            Error::config(
                "--markdown",
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
    }
    if json {
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| Error::internal("the output", e))?;
        println!("{text}");
    } else {
        print!("{}", snapcourier_cli::output::render_coverage(&report));
    }
    Ok(if report.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, Error> {
    serde_json::to_value(value).map_err(|e| Error::internal("the output", e))
}

/// The outcomes of a run, as JSON or as tables.
fn print_outcomes<T: serde::Serialize>(
    outcomes: &[T],
    json: bool,
    render: fn(&T) -> String,
) -> Result<(), Error> {
    if json {
        let text =
            serde_json::to_string_pretty(outcomes).map_err(|e| Error::internal("the output", e))?;
        println!("{text}");
    } else {
        for o in outcomes {
            print!("{}", render(o));
        }
    }
    Ok(())
}

async fn execute(command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::Drill {
            config,
            database,
            region,
            destination,
            profile,
            json,
        } => {
            let c = load(&config)?;
            let account = destination_account(&c, destination)?;
            let run = snapcourier_core::drill::DrillRun::by_hand(&c, &account, region.as_deref())?;
            let ctx = AwsContext::from_env(profile.as_deref(), client_options(&c)).await;
            let progress = TerminalProgress::new();
            let result =
                snapcourier_cli::drill::run_drill(&ctx, run, database, &progress, Timestamp::now)
                    .await;
            progress.finish();
            let out = result?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out)
                        .map_err(|e| Error::internal("the output", e))?
                );
            } else {
                print!("{}", snapcourier_cli::output::render_drill(&out));
            }
            Ok(if out.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Validate { config } => {
            let c = load(&config)?;
            println!(
                "{}: valid ({} schedule(s), {} destination account(s))",
                config.display(),
                c.schedules.len(),
                c.destinations.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            let schema = serde_json::to_string_pretty(&snapcourier_core::config_schema())
                .map_err(|e| Error::internal("the output", e))?;
            println!("{schema}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Inputs { config } => {
            let inputs = Inputs::from_config(&load(&config)?)?;
            let text = serde_json::to_string_pretty(&inputs)
                .map_err(|e| Error::internal("the output", e))?;
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            config,
            side,
            schedule,
            destination,
            profile,
            json,
            state_machine,
        } => {
            let c = load(&config)?;
            let names = schedule_names(&c, schedule)?;
            let account = side_account(&c, side, destination)?;
            let options = client_options(&c);
            let ctx = AwsContext::from_env(profile.as_deref(), options).await;
            let progress = TerminalProgress::new();
            let succeeded = match state_machine {
                Some(arn) => {
                    let mut outcomes = Vec::new();
                    for name in &names {
                        let input = match &account {
                            None => to_json(&SourceRun::from_config(&c, name)?)?,
                            Some(account) => {
                                to_json(&DestinationRun::from_config(&c, name, account)?)?
                            }
                        };
                        let poll = c.settings.poll_interval_seconds;
                        outcomes.push(
                            run_state_machine(&ctx, &arn, name, &input, poll, &progress).await?,
                        );
                    }
                    progress.finish();
                    print_outcomes(&outcomes, json, render_execution)?;
                    outcomes.iter().all(|o| o.status == "SUCCEEDED")
                }
                None => {
                    let mut reports: Vec<RunReport> = Vec::new();
                    for name in &names {
                        let report = match &account {
                            None => {
                                run_source(
                                    &ctx,
                                    &SourceRun::from_config(&c, name)?,
                                    Timestamp::now,
                                    &progress,
                                )
                                .await?
                            }
                            Some(account) => {
                                let run = DestinationRun::from_config(&c, name, account)?;
                                run_destination(&ctx, &run, Timestamp::now, &progress).await?
                            }
                        };
                        reports.push(report);
                    }
                    progress.finish();
                    print_outcomes(&reports, json, render_report)?;
                    !reports.iter().any(RunReport::failed)
                }
            };
            Ok(if succeeded {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Plan {
            config,
            side,
            schedule,
            destination,
            profile,
            json,
        } => {
            let c = load(&config)?;
            let names = schedule_names(&c, schedule)?;
            let account = side_account(&c, side, destination)?;
            let options = client_options(&c);
            let ctx = AwsContext::from_env(profile.as_deref(), options)
                .await
                .with_withheld_mutations();
            let now = Timestamp::now();
            let mut plans = Vec::new();
            for name in &names {
                plans.push(match &account {
                    None => plan_source(&ctx, &SourceRun::from_config(&c, name)?, now).await?,
                    Some(account) => {
                        let run = DestinationRun::from_config(&c, name, account)?;
                        plan_destination(&ctx, &run, now).await?
                    }
                });
            }
            let covered: std::collections::BTreeMap<String, usize> = plans
                .iter()
                .map(|p| (p.schedule.clone(), p.covered))
                .collect();
            // Every schedule counts toward the quotas, also when one was asked for.
            let capacity = match &account {
                None => source_capacity(&ctx, &c, &covered).await?,
                Some(account) => destination_capacity(&ctx, &c, account, &covered).await?,
            };
            if json {
                let text = serde_json::to_string_pretty(
                    &serde_json::json!({ "plans": plans, "capacity": capacity }),
                )
                .map_err(|e| Error::internal("the output", e))?;
                println!("{text}");
            } else {
                for p in &plans {
                    print!("{}", render_plan(p));
                }
                print!("{}", render_capacity(&capacity));
            }
            let fails = plans.iter().any(|p| !p.problems.is_empty()) || capacity.over_quota();
            Ok(if fails {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::SnapshotNow {
            config,
            database,
            schedule,
            label,
            keep,
            wait,
            profile,
            destination_profile,
            destination,
            json,
        } => {
            let c = load(&config)?;
            // Every bad argument at once, before any AWS call.
            let schedule = on_demand_schedule(&c, schedule);
            let keep_hours = keep_hours(&keep);
            let label_ok = label.as_deref().map_or(Ok(()), check_label);
            let accounts: Result<Vec<String>, Error> = match &destination {
                Some(account) => c.destination(account).map(|d| vec![d.account.clone()]),
                None => Ok(c.destinations.iter().map(|d| d.account.clone()).collect()),
            };
            let accounts_ok = accounts.as_ref().map(|_| ()).map_err(|e| {
                Error::config(
                    "--destination",
                    e.problems()
                        .first()
                        .map_or(String::new(), |p| p.rule.clone()),
                )
            });
            let problems: Vec<snapcourier_core::error::FieldProblem> = [
                schedule.as_ref().err(),
                keep_hours.as_ref().err(),
                label_ok.as_ref().err(),
                accounts_ok.as_ref().err(),
            ]
            .into_iter()
            .flatten()
            .flat_map(|e| e.problems().to_vec())
            .collect();
            if !problems.is_empty() {
                return Err(Error::ConfigInvalid { problems });
            }
            let (schedule, keep_hours) = (schedule?, keep_hours?);
            let run = SourceRun::from_config(&c, &schedule)?;
            let options = client_options(&c);
            let ctx = AwsContext::from_env(profile.as_deref(), options).await;
            let snapshot = snapcourier_aws::steps::snapshot_now(
                &ctx,
                &run,
                &database,
                keep_hours,
                label.as_deref(),
                Timestamp::now(),
            )
            .await?;
            let mut shared = false;
            if wait {
                shared = wait_until_shared(&ctx, &run, &snapshot.id).await?;
            }
            // Followed into every destination region: the schedule's destination run, now.
            let mut copied_to: std::collections::BTreeMap<String, bool> = Default::default();
            if let (true, Some(dprofile)) = (shared, destination_profile.as_deref()) {
                let dctx = AwsContext::from_env(Some(dprofile), client_options(&c)).await;
                for account in accounts? {
                    let drun = DestinationRun::from_config(&c, &schedule, &account)?;
                    let progress = TerminalProgress::new();
                    let report = run_destination(&dctx, &drun, Timestamp::now, &progress).await;
                    progress.finish();
                    report?;
                    for r in &drun.destination.regions {
                        let copied =
                            snapcourier_aws::engines::schedule_copies(&dctx, &drun, &r.region)
                                .await?
                                .iter()
                                .any(|s| s.id == snapshot.id && s.status.is_available());
                        copied_to.insert(format!("{account}/{}", r.region), copied);
                    }
                }
            }
            let keep_until = snapshot.on_demand().map(|od| od.keep_until());
            if json {
                let text = serde_json::to_string_pretty(&serde_json::json!({
                    "snapshot_id": snapshot.id,
                    "arn": snapshot.arn,
                    "database": database,
                    "schedule": schedule,
                    "label": label,
                    "keep_until": keep_until.map(|t| t.to_string()),
                    "shared": shared,
                    "copied_to": copied_to,
                }))
                .map_err(|e| Error::internal("the output", e))?;
                println!("{text}");
            } else {
                println!(
                    "on-demand snapshot {} of {database} (schedule {schedule}): {}; kept until {}",
                    snapshot.id,
                    if shared && !copied_to.is_empty() {
                        "available, shared with every destination account, and followed into the destinations:"
                    } else if shared {
                        "available and shared with every destination account; the destinations' next runs copy it"
                    } else {
                        "started; the source's next run shares it and the destinations' copy it"
                    },
                    keep_until.map_or_else(|| "?".to_string(), |t| t.to_string()),
                );
                for (place, copied) in &copied_to {
                    println!(
                        "  {place}: {}",
                        if *copied {
                            "copied"
                        } else {
                            "NOT copied (`snapcourier run --side destination` says why)"
                        }
                    );
                }
            }
            let all_copied = copied_to.values().all(|c| *c);
            Ok(if all_copied {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Report {
            config,
            side,
            destination,
            profile,
            coverage,
            destination_profile,
            json,
            markdown,
        } => {
            let c = load(&config)?;
            if coverage {
                return coverage_report(
                    &c,
                    destination,
                    profile,
                    destination_profile,
                    json,
                    markdown,
                )
                .await;
            }
            let Some(side) = side else {
                return Err(Error::config("--side", "name the side to list"));
            };
            let engines: std::collections::BTreeSet<Engine> =
                c.schedules.iter().map(|s| s.engine).collect();
            let (account, regions) = match side {
                // Redshift's cross-region copies stay in the source account.
                Side::Source => (c.source.account.clone(), c.source_regions(&engines)),
                Side::Destination => {
                    let account = destination_account(&c, destination)?;
                    let regions = c.destination(&account)?.touched_regions(&c.source.region);
                    (account, regions)
                }
            };
            let ctx = AwsContext::from_env(profile.as_deref(), ClientOptions::default()).await;
            let mut by_region = Vec::new();
            for region in &regions {
                let mut owned = Vec::new();
                for engine in &engines {
                    if *engine == Engine::Redshift && side == Side::Destination {
                        continue; // a destination owns no Redshift snapshots
                    }
                    if *engine == Engine::ElastiCache {
                        // Exports, as each schedule's steps see them (ElastiCache lists no
                        // tags): the source's snapshots, the vault's complete exports.
                        for s in c.schedules.iter().filter(|s| s.engine == *engine) {
                            match side {
                                Side::Source if *region == c.source.region => {
                                    let run = SourceRun::from_config(&c, &s.name)?;
                                    owned.extend(
                                        snapcourier_aws::engines::schedule_snapshots(&ctx, &run)
                                            .await?,
                                    );
                                }
                                Side::Destination => {
                                    let run = DestinationRun::from_config(&c, &s.name, &account)?;
                                    owned.extend(
                                        snapcourier_aws::engines::schedule_copies(
                                            &ctx, &run, region,
                                        )
                                        .await?,
                                    );
                                }
                                Side::Source => {}
                            }
                        }
                        continue;
                    }
                    owned.extend(
                        list_owned(&ctx, *engine, region)
                            .await?
                            .into_iter()
                            .filter(|s| s.is_owned_by(&c.namespace)),
                    );
                }
                by_region.push((region.clone(), owned));
            }
            print!(
                "{}",
                render_snapshots(&account, &by_region, Timestamp::now())
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
