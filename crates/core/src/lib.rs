//! snapcourier's domain: the config and its validation, snapshot naming and ownership,
//! interval and retention decisions, step planning, the events steps exchange, and the error
//! taxonomy. No AWS SDK, no I/O, no async: every decision here is a pure function of what the
//! adapters saw and an injected `now`.

pub mod config;
pub mod coverage;
pub mod deployed;
pub mod drill;
pub mod duration;
pub mod engine;
pub mod error;
pub mod events;
pub mod export;
pub mod heartbeat;
pub mod interval;
pub mod looks;
pub mod naming;
pub mod plan;
pub mod retention;
pub mod schedule;
pub mod snapshot;
pub mod tags;

pub use config::Config;
pub use engine::Engine;
pub use error::{Error, FieldProblem, ItemError};

/// The JSON Schema of the config file, generated from the types.
pub fn config_schema() -> serde_json::Value {
    sorted(serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default())
}

/// Object keys in sorted order at every level, so the printed schema is the same whether or
/// not another crate in the build turned on serde_json's `preserve_order` (Cargo unifies
/// features: a workspace-wide build and a `-p snapcourier-cli` build ordered keys differently).
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}
