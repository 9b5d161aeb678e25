//! The `cross_region_copy` step as a Lambda function.

// The step futures (engine dispatch over generic adapters) nest deeper than the default limit.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    snapcourier_lambdas::serve(|ctx, event, now| async move {
        snapcourier_lambdas::handle_cross_region_copy(&ctx, event, now).await
    })
    .await
}
