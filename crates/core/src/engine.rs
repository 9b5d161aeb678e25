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
    /// The IAM actions of its own services (and S3, for an engine whose transport is S3) that
    /// each step needs: the calls its code makes and those AWS checks with them.
    pub iam: StepActions,
}

/// IAM actions by step (the Lambda functions' names, and `cli` for calls only the CLI makes:
/// plan and reports). The stacks grant a step's role exactly these for the engines it serves,
/// scoped by resource and condition (cdk/lib/permissions.ts), and refuse to synthesize a role
/// that grants another action of these services; a test holds every action the adapters name
/// to this table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StepActions {
    pub take: &'static [&'static str],
    pub share: &'static [&'static str],
    pub copy_in_destination: &'static [&'static str],
    pub cross_region_copy: &'static [&'static str],
    pub delete: &'static [&'static str],
    pub drill: &'static [&'static str],
    pub cli: &'static [&'static str],
}

impl StepActions {
    /// Every action, whatever the step.
    pub fn all(&self) -> impl Iterator<Item = &'static str> {
        [
            self.take,
            self.share,
            self.copy_in_destination,
            self.cross_region_copy,
            self.delete,
            self.drill,
            self.cli,
        ]
        .into_iter()
        .flatten()
        .copied()
    }
}

/// The services whose actions the engine table holds (other actions, such as KMS's, serve
/// every engine and are the stacks' own).
pub const ENGINE_SERVICES: [&str; 4] = ["rds", "redshift", "elasticache", "s3"];

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
        iam: StepActions {
            take: &[
                "rds:DescribeDBClusters",
                "rds:DescribeDBClusterSnapshots",
                "rds:CreateDBClusterSnapshot",
                "rds:AddTagsToResource",
            ],
            share: &[
                "rds:DescribeDBClusterSnapshots",
                "rds:AddTagsToResource",
                "rds:ModifyDBClusterSnapshotAttribute",
            ],
            copy_in_destination: &[
                "rds:DescribeDBClusterSnapshots",
                "rds:CopyDBClusterSnapshot",
                "rds:AddTagsToResource",
            ],
            cross_region_copy: &[
                "rds:DescribeDBClusterSnapshots",
                "rds:CopyDBClusterSnapshot",
                "rds:AddTagsToResource",
            ],
            delete: &[
                "rds:DescribeDBClusterSnapshots",
                "rds:DeleteDBClusterSnapshot",
            ],
            drill: &[
                "rds:DescribeDBClusters",
                "rds:DescribeDBInstances",
                "rds:DescribeDBClusterSnapshots",
                "rds:RestoreDBClusterFromSnapshot",
                "rds:CreateDBInstance",
                "rds:AddTagsToResource",
                "rds:DeleteDBInstance",
                "rds:DeleteDBCluster",
            ],
            cli: &[
                "rds:DescribeAccountAttributes",
                "rds:DescribeDBClusterSnapshotAttributes",
            ],
        },
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
        iam: StepActions {
            take: &[
                "rds:DescribeDBInstances",
                "rds:DescribeDBSnapshots",
                "rds:CreateDBSnapshot",
                "rds:AddTagsToResource",
            ],
            share: &[
                "rds:DescribeDBSnapshots",
                "rds:AddTagsToResource",
                "rds:ModifyDBSnapshotAttribute",
            ],
            copy_in_destination: &[
                "rds:DescribeDBSnapshots",
                "rds:CopyDBSnapshot",
                "rds:AddTagsToResource",
            ],
            cross_region_copy: &[
                "rds:DescribeDBSnapshots",
                "rds:CopyDBSnapshot",
                "rds:AddTagsToResource",
            ],
            delete: &["rds:DescribeDBSnapshots", "rds:DeleteDBSnapshot"],
            drill: &[
                "rds:DescribeDBInstances",
                "rds:DescribeDBSnapshots",
                "rds:RestoreDBInstanceFromDBSnapshot",
                "rds:AddTagsToResource",
                "rds:DeleteDBInstance",
            ],
            cli: &[
                "rds:DescribeAccountAttributes",
                "rds:DescribeDBSnapshotAttributes",
            ],
        },
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
        iam: StepActions {
            // The copy grant and snapshot copy: when a destination keeps copies in a second
            // region; CopyClusterSnapshot: with `copy_automated`.
            take: &[
                "redshift:DescribeClusters",
                "redshift:DescribeClusterSnapshots",
                "redshift:CreateClusterSnapshot",
                "redshift:CreateTags",
                "redshift:CopyClusterSnapshot",
                "redshift:DescribeSnapshotCopyGrants",
                "redshift:CreateSnapshotCopyGrant",
                "redshift:EnableSnapshotCopy",
            ],
            share: &[
                "redshift:DescribeClusterSnapshots",
                "redshift:AuthorizeSnapshotAccess",
                "redshift:CreateTags",
            ],
            // The destination verifies the shares it sees.
            copy_in_destination: &["redshift:DescribeClusterSnapshots"],
            cross_region_copy: &["redshift:DescribeClusterSnapshots"],
            delete: &[
                "redshift:DescribeClusterSnapshots",
                "redshift:RevokeSnapshotAccess",
                "redshift:DeleteClusterSnapshot",
            ],
            drill: &[
                "redshift:DescribeClusters",
                "redshift:DescribeClusterSnapshots",
                "redshift:RestoreFromClusterSnapshot",
                "redshift:CreateTags",
                "redshift:DeleteCluster",
            ],
            cli: &[],
        },
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
        iam: StepActions {
            // ListTagsForResource at take: with an `opt_in_tag` (the caches' tags).
            take: &[
                "elasticache:DescribeReplicationGroups",
                "elasticache:DescribeServerlessCaches",
                "elasticache:DescribeSnapshots",
                "elasticache:DescribeServerlessCacheSnapshots",
                "elasticache:ListTagsForResource",
                "elasticache:CreateSnapshot",
                "elasticache:CreateServerlessCacheSnapshot",
                "elasticache:AddTagsToResource",
                "s3:ListBucket",
            ],
            // An export needs the caller's S3 permissions on the bucket too.
            share: &[
                "elasticache:DescribeSnapshots",
                "elasticache:DescribeServerlessCacheSnapshots",
                "elasticache:ListTagsForResource",
                "elasticache:CopySnapshot",
                "elasticache:ExportServerlessCacheSnapshot",
                "s3:ListBucket",
                "s3:GetBucketLocation",
                "s3:GetBucketAcl",
                "s3:PutObject",
            ],
            copy_in_destination: &[
                "s3:ListBucket",
                "s3:ListBucketVersions",
                "s3:GetObject",
                "s3:PutObject",
                "s3:PutObjectRetention",
                "s3:ListBucketMultipartUploads",
                "s3:ListMultipartUploadParts",
                "s3:AbortMultipartUpload",
            ],
            cross_region_copy: &[],
            delete: &[
                "elasticache:DescribeSnapshots",
                "elasticache:DescribeServerlessCacheSnapshots",
                "elasticache:ListTagsForResource",
                "elasticache:DeleteSnapshot",
                "elasticache:DeleteServerlessCacheSnapshot",
                "s3:ListBucket",
                "s3:ListBucketVersions",
                "s3:DeleteObject",
                "s3:DeleteObjectVersion",
            ],
            drill: &[
                "elasticache:DescribeReplicationGroups",
                "elasticache:CreateReplicationGroup",
                "elasticache:AddTagsToResource",
                "elasticache:DeleteReplicationGroup",
                "s3:ListBucket",
                "s3:GetObject",
            ],
            cli: &[],
        },
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
