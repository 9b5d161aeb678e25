//! The engine table: the one place an engine is chosen. Each engine is one implementation of
//! `EngineSteps` (Aurora clusters and RDS instances: the shared steps over their `SnapshotApi`
//! adapter; Redshift: its own steps) and one arm of `on_engine!`. The public steps
//! (`crate::steps`) and the listings below dispatch through it, once each; nothing else
//! matches on the engine to pick an implementation.

use std::collections::BTreeSet;

use jiff::Timestamp;
use snapcourier_core::events::{
    CopyPass, DeleteOutput, DestinationRun, EVENT_VERSION, RegionalPass, SourceItem, SourceRun,
    TakePass,
};
use snapcourier_core::snapshot::{ResourceRecord, SnapshotRecord};
use snapcourier_core::tags::Stage;
use snapcourier_core::{Engine, Error};

use crate::adapter::SnapshotApi;
use crate::client::AwsContext;
use crate::steps::{Assumed, Shared, destination, redshift, source};

/// What every engine does for each step, and the listings reports and plans need.
#[allow(async_fn_in_trait)]
pub(crate) trait EngineSteps {
    async fn take(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
        now: Timestamp,
    ) -> Result<TakePass, Error>;

    async fn snapshot_now(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
        database: &str,
        keep_hours: u32,
        label: Option<&str>,
        now: Timestamp,
    ) -> Result<SnapshotRecord, Error>;

    async fn share(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
    ) -> Result<Vec<(SourceItem, Result<Shared, Error>)>, Error>;

    async fn delete_source(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
        now: Timestamp,
        assumed: &[Assumed],
    ) -> Result<DeleteOutput, Error>;

    async fn copy_in(
        &self,
        ctx: &AwsContext,
        run: &DestinationRun,
        now: Timestamp,
    ) -> Result<CopyPass, Error>;

    async fn cross_region_copy(
        &self,
        ctx: &AwsContext,
        run: &DestinationRun,
        now: Timestamp,
    ) -> Result<RegionalPass, Error>;

    async fn delete_destination(
        &self,
        ctx: &AwsContext,
        run: &DestinationRun,
        now: Timestamp,
        assumed: &[Assumed],
    ) -> Result<DeleteOutput, Error>;

    /// Owned manual snapshots in a region.
    async fn list_owned(
        &self,
        ctx: &AwsContext,
        region: &str,
    ) -> Result<Vec<SnapshotRecord>, Error>;

    /// The engine's databases in a region (none where the steps do not list them).
    async fn list_resources(
        &self,
        ctx: &AwsContext,
        region: &str,
    ) -> Result<Vec<ResourceRecord>, Error>;

    /// Snapshots shared with this account in a region that it copies (none for an engine
    /// whose destinations copy nothing).
    async fn list_shared(
        &self,
        ctx: &AwsContext,
        region: &str,
    ) -> Result<Vec<SnapshotRecord>, Error>;

    /// Accounts a snapshot is shared with.
    async fn shared_with(
        &self,
        ctx: &AwsContext,
        region: &str,
        id: &str,
    ) -> Result<BTreeSet<String>, Error>;

    /// The schedule's snapshots in the source region as the steps see them, ownership tags
    /// and progress marker included (reports).
    async fn schedule_snapshots(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
    ) -> Result<Vec<SnapshotRecord>, Error> {
        Ok(self
            .list_owned(ctx, &run.source.region)
            .await?
            .into_iter()
            .filter(|s| s.is_ours(&run.namespace, &run.schedule.name, Stage::Source))
            .collect())
    }

    /// A destination's copies of the schedule in one of its regions as the steps see them
    /// (reports).
    async fn schedule_copies(
        &self,
        ctx: &AwsContext,
        run: &DestinationRun,
        region: &str,
    ) -> Result<Vec<SnapshotRecord>, Error> {
        Ok(self
            .list_owned(ctx, region)
            .await?
            .into_iter()
            .filter(|s| s.is_ours(&run.namespace, &run.schedule.name, Stage::Destination))
            .collect())
    }
}

/// An engine whose destinations copy: the shared steps over its adapter.
pub(crate) struct Copying<A>(pub A);

impl<A: SnapshotApi> EngineSteps for Copying<A> {
    async fn take(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
        now: Timestamp,
    ) -> Result<TakePass, Error> {
        source::take(&self.0, ctx, run, now).await
    }

    async fn snapshot_now(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
        database: &str,
        keep_hours: u32,
        label: Option<&str>,
        now: Timestamp,
    ) -> Result<SnapshotRecord, Error> {
        source::snapshot_now(&self.0, ctx, run, database, keep_hours, label, now).await
    }

    async fn share(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
    ) -> Result<Vec<(SourceItem, Result<Shared, Error>)>, Error> {
        source::share(&self.0, ctx, run).await
    }

    async fn delete_source(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
        now: Timestamp,
        assumed: &[Assumed],
    ) -> Result<DeleteOutput, Error> {
        source::delete_source(&self.0, ctx, run, now, assumed).await
    }

    async fn copy_in(
        &self,
        ctx: &AwsContext,
        run: &DestinationRun,
        now: Timestamp,
    ) -> Result<CopyPass, Error> {
        destination::copy_in(&self.0, ctx, run, now).await
    }

    async fn cross_region_copy(
        &self,
        ctx: &AwsContext,
        run: &DestinationRun,
        now: Timestamp,
    ) -> Result<RegionalPass, Error> {
        destination::cross_region_copy(&self.0, ctx, run, now).await
    }

    async fn delete_destination(
        &self,
        ctx: &AwsContext,
        run: &DestinationRun,
        now: Timestamp,
        assumed: &[Assumed],
    ) -> Result<DeleteOutput, Error> {
        destination::delete_destination(&self.0, ctx, run, now, assumed).await
    }

    async fn list_owned(
        &self,
        ctx: &AwsContext,
        region: &str,
    ) -> Result<Vec<SnapshotRecord>, Error> {
        self.0.list_snapshots(ctx, region, false).await
    }

    async fn list_resources(
        &self,
        ctx: &AwsContext,
        region: &str,
    ) -> Result<Vec<ResourceRecord>, Error> {
        self.0.list_resources(ctx, region).await
    }

    async fn list_shared(
        &self,
        ctx: &AwsContext,
        region: &str,
    ) -> Result<Vec<SnapshotRecord>, Error> {
        self.0.list_snapshots(ctx, region, true).await
    }

    async fn shared_with(
        &self,
        ctx: &AwsContext,
        region: &str,
        id: &str,
    ) -> Result<BTreeSet<String>, Error> {
        self.0.restore_accounts(ctx, region, id).await
    }
}

/// Redshift: its own steps (it shares by authorizing accounts, copies across regions in the
/// source account, and its destinations verify instead of copying).
pub(crate) struct RedshiftSteps;

impl EngineSteps for RedshiftSteps {
    async fn take(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
        now: Timestamp,
    ) -> Result<TakePass, Error> {
        redshift::take(ctx, run, now).await
    }

    async fn snapshot_now(
        &self,
        _ctx: &AwsContext,
        run: &SourceRun,
        _database: &str,
        _keep_hours: u32,
        _label: Option<&str>,
        _now: Timestamp,
    ) -> Result<SnapshotRecord, Error> {
        Err(Error::config(
            "--schedule",
            format!(
                "schedule {} is a Redshift schedule: snapshot-now takes Aurora, RDS and ElastiCache snapshots (a Redshift cluster's manual snapshot, taken in the console, is not snapcourier's to share or expire)",
                run.schedule.name
            ),
        ))
    }

    async fn share(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
    ) -> Result<Vec<(SourceItem, Result<Shared, Error>)>, Error> {
        redshift::share(ctx, run).await
    }

    async fn delete_source(
        &self,
        ctx: &AwsContext,
        run: &SourceRun,
        now: Timestamp,
        assumed: &[Assumed],
    ) -> Result<DeleteOutput, Error> {
        redshift::delete_source(ctx, run, now, assumed).await
    }

    async fn copy_in(
        &self,
        ctx: &AwsContext,
        run: &DestinationRun,
        now: Timestamp,
    ) -> Result<CopyPass, Error> {
        redshift::verify_shares(ctx, run, now).await
    }

    async fn cross_region_copy(
        &self,
        _ctx: &AwsContext,
        _run: &DestinationRun,
        _now: Timestamp,
    ) -> Result<RegionalPass, Error> {
        // The source account's cluster copies across regions.
        Ok(RegionalPass {
            started: Vec::new(),
            waiting: Vec::new(),
            failures: Vec::new(),
            api_calls: 0,
        })
    }

    async fn delete_destination(
        &self,
        _ctx: &AwsContext,
        _run: &DestinationRun,
        _now: Timestamp,
        _assumed: &[Assumed],
    ) -> Result<DeleteOutput, Error> {
        // Nothing is owned here; the heartbeat came with the copy-in step, which lists the
        // shares anyway.
        Ok(DeleteOutput {
            version: EVENT_VERSION,
            deleted: Vec::new(),
            deleted_count: 0,
            failed: 0,
            kept: 0,
            failures: Vec::new(),
            api_calls: 0,
            heartbeat: None,
            coverage: None,
        })
    }

    async fn list_owned(
        &self,
        ctx: &AwsContext,
        region: &str,
    ) -> Result<Vec<SnapshotRecord>, Error> {
        crate::redshift::list_snapshots(ctx, region, None).await
    }

    async fn list_resources(
        &self,
        _ctx: &AwsContext,
        _region: &str,
    ) -> Result<Vec<ResourceRecord>, Error> {
        Ok(Vec::new())
    }

    async fn list_shared(
        &self,
        _ctx: &AwsContext,
        _region: &str,
    ) -> Result<Vec<SnapshotRecord>, Error> {
        Ok(Vec::new())
    }

    async fn shared_with(
        &self,
        ctx: &AwsContext,
        region: &str,
        id: &str,
    ) -> Result<BTreeSet<String>, Error> {
        Ok(crate::redshift::find_snapshot(ctx, region, id, None)
            .await?
            .and_then(|s| s.restore_accounts)
            .unwrap_or_default())
    }
}

/// Evaluate `$body` with `$steps` bound to the engine's `EngineSteps`: the engine table. A
/// new engine is one arm here and one implementation above.
macro_rules! on_engine {
    ($engine:expr, |$steps:ident| $body:expr) => {
        match $engine {
            snapcourier_core::Engine::Aurora => {
                let $steps = &$crate::engines::Copying($crate::aurora::Aurora);
                $body
            }
            snapcourier_core::Engine::Rds => {
                let $steps = &$crate::engines::Copying($crate::rds::Rds);
                $body
            }
            snapcourier_core::Engine::Redshift => {
                let $steps = &$crate::engines::RedshiftSteps;
                $body
            }
            snapcourier_core::Engine::ElastiCache => {
                let $steps = &$crate::steps::elasticache::ElastiCacheSteps {
                    parts: $crate::elasticache::PartPlan::DEFAULT,
                };
                $body
            }
        }
    };
}
pub(crate) use on_engine;

/// Owned manual snapshots of any engine in a region (reports and tests).
pub async fn list_owned(
    ctx: &AwsContext,
    engine: Engine,
    region: &str,
) -> Result<Vec<SnapshotRecord>, Error> {
    on_engine!(engine, |steps| steps.list_owned(ctx, region).await)
}

/// Aurora clusters or RDS instances in a region (plans): none for Redshift here.
pub async fn list_resources(
    ctx: &AwsContext,
    engine: Engine,
    region: &str,
) -> Result<Vec<ResourceRecord>, Error> {
    on_engine!(engine, |steps| steps.list_resources(ctx, region).await)
}

/// Snapshots of Aurora or RDS shared with this account in a region (plans, reports): none for
/// Redshift, whose destinations copy nothing.
pub async fn list_shared(
    ctx: &AwsContext,
    engine: Engine,
    region: &str,
) -> Result<Vec<SnapshotRecord>, Error> {
    on_engine!(engine, |steps| steps.list_shared(ctx, region).await)
}

/// Accounts a snapshot of any engine is shared with (reports and tests).
pub async fn shared_with(
    ctx: &AwsContext,
    engine: Engine,
    region: &str,
    id: &str,
) -> Result<BTreeSet<String>, Error> {
    on_engine!(engine, |steps| steps.shared_with(ctx, region, id).await)
}

/// The schedule's snapshots in the source region as the steps see them (reports).
pub async fn schedule_snapshots(
    ctx: &AwsContext,
    run: &SourceRun,
) -> Result<Vec<SnapshotRecord>, Error> {
    on_engine!(run.schedule.engine, |steps| steps
        .schedule_snapshots(ctx, run)
        .await)
}

/// A destination's copies of the schedule in one of its regions as the steps see them
/// (reports).
pub async fn schedule_copies(
    ctx: &AwsContext,
    run: &DestinationRun,
    region: &str,
) -> Result<Vec<SnapshotRecord>, Error> {
    on_engine!(run.schedule.engine, |steps| steps
        .schedule_copies(ctx, run, region)
        .await)
}
