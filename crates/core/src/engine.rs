//! Kinds of database snapcourier protects, and what differs between them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Engine names DescribeDBInstances reports for instances that belong to a cluster of another
/// kind (their snapshots are cluster snapshots, never instance snapshots).
const CLUSTER_ENGINE_PREFIXES: [&str; 3] = ["aurora", "docdb", "neptune"];

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Aurora DB clusters (aurora-mysql, aurora-postgresql): cluster snapshots.
    Aurora,
    /// RDS DB instances of every engine DescribeDBInstances reports (mysql, mariadb,
    /// postgres, oracle-*, sqlserver-*, db2...): DB snapshots. Read replicas are skipped.
    Rds,
    /// Redshift provisioned clusters: manual cluster snapshots, shared with the destination
    /// accounts and copied to one other region by the cluster's snapshot copy configuration.
    Redshift,
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Aurora, Engine::Rds, Engine::Redshift];

    pub fn name(self) -> &'static str {
        match self {
            Engine::Aurora => "aurora",
            Engine::Rds => "rds",
            Engine::Redshift => "redshift",
        }
    }

    /// Whether a resource reporting this engine name (the API's `Engine` field) belongs to
    /// this kind. RDS instances: any engine that is not part of a cluster-based family, so a
    /// new RDS engine is covered without a code change.
    pub fn covers_engine_name(self, engine_name: &str) -> bool {
        match self {
            Engine::Aurora => engine_name.starts_with("aurora"),
            Engine::Rds => {
                !engine_name.is_empty()
                    && !CLUSTER_ENGINE_PREFIXES
                        .iter()
                        .any(|p| engine_name.starts_with(p))
            }
            Engine::Redshift => true,
        }
    }

    /// Whether a destination account can make its own copy of a shared snapshot. Redshift
    /// cannot: its destination side verifies the shares instead.
    pub fn copies_into_destination(self) -> bool {
        !matches!(self, Engine::Redshift)
    }

    /// What one protected resource is called in messages.
    pub fn resource_kind(self) -> &'static str {
        match self {
            Engine::Aurora => "Aurora cluster",
            Engine::Rds => "DB instance",
            Engine::Redshift => "Redshift cluster",
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_covers_every_instance_engine_but_cluster_families() {
        for name in [
            "mysql",
            "mariadb",
            "postgres",
            "oracle-ee",
            "oracle-se2-cdb",
            "sqlserver-ex",
            "sqlserver-web",
            "db2-se",
            "custom-oracle-ee",
            "some-engine-aws-adds-next-year",
        ] {
            assert!(Engine::Rds.covers_engine_name(name), "{name}");
            assert!(!Engine::Aurora.covers_engine_name(name), "{name}");
        }
        for name in ["aurora-mysql", "aurora-postgresql", "docdb", "neptune", ""] {
            assert!(!Engine::Rds.covers_engine_name(name), "{name:?}");
        }
        assert!(Engine::Aurora.covers_engine_name("aurora-postgresql"));
    }

    #[test]
    fn only_redshift_cannot_copy_into_a_destination() {
        let copying: Vec<_> = Engine::ALL
            .into_iter()
            .filter(|e| e.copies_into_destination())
            .collect();
        assert_eq!(copying, [Engine::Aurora, Engine::Rds]);
    }
}
