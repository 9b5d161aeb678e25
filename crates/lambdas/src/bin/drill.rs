//! The `drill` step (restore drills) as a Lambda function.

#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    snapcourier_lambdas::serve(|ctx, event, now| async move {
        snapcourier_lambdas::handle_drill(&ctx, event, now).await
    })
    .await
}
