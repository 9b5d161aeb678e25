//! `snapcourier drill`: a restore drill from a terminal, the same step the drill state
//! machine runs, look after look until every drill is done.

use jiff::Timestamp;
use snapcourier_aws::AwsContext;
use snapcourier_aws::steps::drill::drill;
use snapcourier_core::Error;
use snapcourier_core::drill::{DrillInput, DrillOutput, DrillRun};

use crate::runner::Progress;

/// Run a drill to its end: `databases` (or, when empty, the config's choice, due or not).
/// `now` gives each look's instant (the tests' clock, or the wall clock).
pub async fn run_drill(
    ctx: &AwsContext,
    run: DrillRun,
    databases: Vec<String>,
    progress: &dyn Progress,
    now: impl Fn() -> Timestamp,
) -> Result<DrillOutput, Error> {
    let mut input = DrillInput {
        run,
        execution: None,
        looks: 0,
        force: true,
        databases,
        drills: Vec::new(),
        other_failures: Vec::new(),
        abandon: false,
    };
    loop {
        let pass = match drill(ctx, &input, now()).await {
            Ok(pass) => pass,
            Err(e) => {
                // As the state machine does: delete what this run restored, then report.
                if !input.drills.is_empty() {
                    input.abandon = true;
                    if let Err(cleanup) = drill(ctx, &input, now()).await {
                        tracing::error!(error = %cleanup, "could not delete what this drill restored; the next drill deletes it");
                    }
                }
                return Err(e);
            }
        };
        let out = pass.output;
        if out.finished {
            return Ok(out);
        }
        let waiting = out
            .drills
            .iter()
            .filter(|d| d.phase != snapcourier_core::drill::DrillPhase::Done)
            .count();
        progress.stage(&format!(
            "{waiting} restore(s) under way after look {}; next look in {}s",
            out.looks, out.wait_seconds
        ));
        input.looks = out.looks;
        input.drills = out.drills;
        input.other_failures = out.other_failures;
        tokio::time::sleep(std::time::Duration::from_secs(out.wait_seconds)).await;
    }
}
