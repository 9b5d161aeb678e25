//! The steps of both flows. Each is an idempotent reconciler: it looks at the world, does
//! the next missing thing (or nothing) and reports where each item stands. The Lambda
//! binaries and the CLI call these same functions.

mod destination;
mod source;

pub use destination::{copy_in, cross_region_copy, delete_destination};
pub use source::{delete_source, share, take};

use snapcourier_core::events::{ItemFailure, SourceItem};
use snapcourier_core::snapshot::SnapshotRecord;
use snapcourier_core::{Error, ItemError};

fn source_item(s: &SnapshotRecord, shared: bool) -> SourceItem {
    SourceItem {
        resource_id: s.protected_resource().to_string(),
        snapshot_id: s.id.clone(),
        snapshot_arn: Some(s.arn.clone()),
        status: s.status.as_str().to_string(),
        shared,
        error: None,
    }
}

fn failure(resource: &str, stage: &str, e: &Error) -> ItemFailure {
    ItemFailure {
        resource: resource.to_string(),
        stage: stage.to_string(),
        error: ItemError::from(e),
    }
}
