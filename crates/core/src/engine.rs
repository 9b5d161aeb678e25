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
    /// ElastiCache replication groups (Valkey, Redis OSS; cluster mode on or off) and
    /// serverless caches: manual snapshots, exported as `.rdb` objects to the source stack's
    /// bucket and copied into each destination's vault buckets (a snapshot cannot be shared
    /// or copied across regions).
    #[serde(rename = "elasticache")]
    ElastiCache,
}

impl Engine {
    pub const ALL: [Engine; 4] = [
        Engine::Aurora,
        Engine::Rds,
        Engine::Redshift,
        Engine::ElastiCache,
    ];

    pub fn name(self) -> &'static str {
        self.facts().name
    }

    /// This engine's row of the engine table.
    pub fn facts(self) -> &'static EngineFacts {
        match self {
            Engine::Aurora => &FACTS[0],
            Engine::Rds => &FACTS[1],
            Engine::Redshift => &FACTS[2],
            Engine::ElastiCache => &FACTS[3],
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
            // Memcached has no snapshots.
            Engine::ElastiCache => matches!(engine_name, "valkey" | "redis"),
        }
    }

    /// Whether a destination account can make its own copy of a shared snapshot. Redshift
    /// cannot: its destination side verifies the shares instead.
    pub fn copies_into_destination(self) -> bool {
        self.facts().copies_into_destination
    }

    /// What one protected resource is called in messages.
    pub fn resource_kind(self) -> &'static str {
        self.facts().resource_kind
    }
}

/// What snapcourier knows about an engine, in one place: a new engine is one more row (and
/// its adapter, `snapcourier_aws::engines`). `snapcourier inputs` prints the table, so the
/// stacks read these facts instead of restating them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EngineFacts {
    pub engine: Engine,
    pub name: &'static str,
    /// What one protected resource is called in messages.
    pub resource_kind: &'static str,
    /// A destination account makes its own copy of a shared snapshot (else it verifies).
    pub copies_into_destination: bool,
    /// AWS's limit of copies in flight per account and region, where destinations copy.
    pub aws_copy_limit: Option<u32>,
    /// The setting that bounds this engine's copies in flight.
    pub copy_concurrency_setting: Option<&'static str>,
    /// RDS `DescribeAccountAttributes` quota its manual snapshots count against.
    pub manual_snapshot_quota: Option<&'static str>,
    /// `snapcourier snapshot-now` can take an on-demand snapshot.
    pub on_demand_snapshots: bool,
    /// How a snapshot leaves the source account.
    pub transport: Transport,
}

/// How an engine's snapshots reach the destination accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// Shared with the accounts (a restore attribute), copied by each destination.
    SnapshotShare,
    /// Access authorized per account; copied across regions by the source's cluster.
    AccountAuthorization,
    /// Exported as objects to the source stack's bucket, which the destination accounts
    /// read and copy into their vault buckets (S3 Object Lock).
    S3Export,
}

const FACTS: [EngineFacts; 4] = [
    EngineFacts {
        engine: Engine::Aurora,
        name: "aurora",
        resource_kind: "Aurora cluster",
        copies_into_destination: true,
        aws_copy_limit: Some(crate::config::AURORA_COPY_LIMIT),
        copy_concurrency_setting: Some("settings.aurora_copy_concurrency"),
        manual_snapshot_quota: Some("ManualClusterSnapshots"),
        on_demand_snapshots: true,
        transport: Transport::SnapshotShare,
    },
    EngineFacts {
        engine: Engine::Rds,
        name: "rds",
        resource_kind: "DB instance",
        copies_into_destination: true,
        aws_copy_limit: Some(crate::config::RDS_COPY_LIMIT),
        copy_concurrency_setting: Some("settings.rds_copy_concurrency"),
        manual_snapshot_quota: Some("ManualSnapshots"),
        on_demand_snapshots: true,
        transport: Transport::SnapshotShare,
    },
    EngineFacts {
        engine: Engine::Redshift,
        name: "redshift",
        resource_kind: "Redshift cluster",
        copies_into_destination: false,
        aws_copy_limit: None,
        copy_concurrency_setting: None,
        manual_snapshot_quota: None,
        on_demand_snapshots: false,
        transport: Transport::AccountAuthorization,
    },
    EngineFacts {
        engine: Engine::ElastiCache,
        name: "elasticache",
        resource_kind: "ElastiCache cache",
        copies_into_destination: true,
        // S3 has no copy slots: CopyObject calls go `settings.call_concurrency` at a time.
        aws_copy_limit: None,
        copy_concurrency_setting: None,
        manual_snapshot_quota: None,
        on_demand_snapshots: true,
        transport: Transport::S3Export,
    },
];

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
    fn every_engine_has_its_own_row_of_the_table() {
        for e in Engine::ALL {
            assert_eq!(e.facts().engine, e);
            // An engine that copies snapshots has a copy limit and the setting that bounds it.
            assert_eq!(
                e.facts().transport == Transport::SnapshotShare,
                e.facts().aws_copy_limit.is_some() && e.facts().copy_concurrency_setting.is_some()
            );
        }
    }

    #[test]
    fn only_redshift_makes_no_copy_in_a_destination() {
        let copying: Vec<_> = Engine::ALL
            .into_iter()
            .filter(|e| e.copies_into_destination())
            .collect();
        assert_eq!(copying, [Engine::Aurora, Engine::Rds, Engine::ElastiCache]);
    }

    #[test]
    fn elasticache_covers_valkey_and_redis_but_not_memcached() {
        assert!(Engine::ElastiCache.covers_engine_name("valkey"));
        assert!(Engine::ElastiCache.covers_engine_name("redis"));
        assert!(!Engine::ElastiCache.covers_engine_name("memcached"));
        assert_eq!(
            serde_json::to_string(&Engine::ElastiCache).unwrap(),
            "\"elasticache\""
        );
    }
}
