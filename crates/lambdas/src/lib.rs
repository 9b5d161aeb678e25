//! The Lambda side: each binary in src/bin is `serve(handler)`. A handler parses and
//! validates its event (a malformed one is `ConfigInvalid` naming the field, before any AWS
//! call), runs the step, and returns its JSON output, which carries the step's AWS call count.

use std::future::Future;
use std::sync::Arc;

use jiff::Timestamp;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde_json::Value;
use snapcourier_aws::{AwsContext, ClientOptions, steps};
use snapcourier_core::Error;
use snapcourier_core::events::{
    CopyInInput, CrossRegionCopyInput, DeleteInput, ShareInput, StepInput, TakeInput,
};

/// A step's error as the Lambda runtime reports it: `errorType` is the taxonomy's fixed
/// name, which the state machines match in Retry and Catch.
#[derive(Debug)]
pub struct StepError(pub Error);

impl From<StepError> for Diagnostic {
    fn from(e: StepError) -> Diagnostic {
        Diagnostic {
            error_type: e.0.error_type().to_string(),
            error_message: e.0.to_string(),
        }
    }
}

fn to_json<T: Serialize>(output: T) -> Result<Value, Error> {
    serde_json::to_value(output)
        .map_err(|e| Error::config("", format!("output did not serialise: {e}")))
}

pub async fn handle_take(ctx: &AwsContext, event: Value, now: Timestamp) -> Result<Value, Error> {
    let input = TakeInput::parse_json(event)?;
    to_json(steps::take(ctx, &input.run, input.execution.as_ref(), now).await?)
}

pub async fn handle_share(ctx: &AwsContext, event: Value, _now: Timestamp) -> Result<Value, Error> {
    let input = ShareInput::parse_json(event)?;
    to_json(steps::share(ctx, &input.run, &input.item).await?)
}

pub async fn handle_copy_in_destination(
    ctx: &AwsContext,
    event: Value,
    now: Timestamp,
) -> Result<Value, Error> {
    let input = CopyInInput::parse_json(event)?;
    to_json(steps::copy_in(ctx, &input.run, input.execution.as_ref(), now).await?)
}

pub async fn handle_cross_region_copy(
    ctx: &AwsContext,
    event: Value,
    _now: Timestamp,
) -> Result<Value, Error> {
    let input = CrossRegionCopyInput::parse_json(event)?;
    to_json(steps::cross_region_copy(ctx, &input.run, &input.item).await?)
}

pub async fn handle_delete(ctx: &AwsContext, event: Value, now: Timestamp) -> Result<Value, Error> {
    match DeleteInput::parse_json(event)? {
        DeleteInput::Source(run) => to_json(steps::delete_source(ctx, &run, now).await?),
        DeleteInput::Destination(run) => to_json(steps::delete_destination(ctx, &run, now).await?),
    }
}

/// Client options from the function's environment: `SNAPCOURIER_MAX_ATTEMPTS` (the stack sets
/// it from `settings.max_attempts`; 1 to 20, default 5). A value out of range is ignored
/// with a warning rather than failing every invocation.
pub fn client_options() -> ClientOptions {
    let mut options = ClientOptions::default();
    if let Ok(text) = std::env::var("SNAPCOURIER_MAX_ATTEMPTS") {
        match text.parse::<u32>() {
            Ok(n) if (1..=20).contains(&n) => options.max_attempts = n,
            _ => tracing::warn!(value = %text, "SNAPCOURIER_MAX_ATTEMPTS must be 1 to 20; using 5"),
        }
    }
    options
}

/// Run a handler under the Lambda runtime. Clients are built once per process, with the
/// function's own credentials (its execution role).
pub async fn serve<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Arc<AwsContext>, Value, Timestamp) -> Fut,
    Fut: Future<Output = Result<Value, Error>>,
{
    lambda_runtime::tracing::init_default_subscriber();
    let ctx = Arc::new(AwsContext::from_env(None, client_options()).await);
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let ctx = Arc::clone(&ctx);
        async move {
            let before = ctx.calls();
            let result = handler(Arc::clone(&ctx), event.payload, Timestamp::now()).await;
            let used = ctx.calls() - before;
            match &result {
                Ok(_) => tracing::info!(api_calls = used.calls, api_attempts = used.attempts, "step succeeded"),
                Err(e) => tracing::error!(error_type = e.error_type(), error = %e, api_calls = used.calls, "step failed"),
            }
            result.map_err(StepError)
        }
    }))
    .await
}
