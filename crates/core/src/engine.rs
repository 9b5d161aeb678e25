//! Kinds of database snapcourier protects.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Aurora DB clusters (aurora-mysql, aurora-postgresql): cluster snapshots.
    Aurora,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Aurora => "aurora",
        }
    }

    /// Whether a resource reporting this engine name (RDS `Engine` field) belongs to this kind.
    pub fn covers_engine_name(self, engine_name: &str) -> bool {
        match self {
            Engine::Aurora => engine_name.starts_with("aurora"),
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
