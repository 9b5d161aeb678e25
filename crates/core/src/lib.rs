//! snapcourier's domain: the config and its validation, snapshot naming and ownership,
//! interval and retention decisions, step planning, the events steps exchange, and the error
//! taxonomy. No AWS SDK, no I/O, no async: every decision here is a pure function of what the
//! adapters saw and an injected `now`.

pub mod config;
pub mod duration;
pub mod engine;
pub mod error;
pub mod events;
pub mod interval;
pub mod naming;
pub mod plan;
pub mod retention;
pub mod snapshot;
pub mod tags;

pub use config::Config;
pub use engine::Engine;
pub use error::{Error, FieldProblem, ItemError};

/// The JSON Schema of the config file, generated from the types.
pub fn config_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default()
}
