//! snapcourier's AWS adapters and the steps that drive them: one module per engine, one
//! client builder, one place that maps SDK errors to the taxonomy, and the step functions
//! that the Lambda binaries and the CLI share.

pub mod adapter;
pub mod aurora;
pub mod client;
pub mod deployed;
pub mod drill;
pub mod elasticache;
pub mod engines;
pub mod errors;
pub mod executions;
pub mod rds;
pub mod redshift;
pub mod steps;
pub mod withhold;

pub use client::{ApiCalls, AwsContext, ClientOptions};

/// An SDK timestamp as a jiff instant.
pub fn timestamp(t: &aws_smithy_types::DateTime) -> Option<jiff::Timestamp> {
    jiff::Timestamp::new(t.secs(), i32::try_from(t.subsec_nanos()).ok()?).ok()
}
