//! Rules the emulator cannot produce, pinned with stubbed SDK responses (aws-smithy-mocks):
//! AWS's `copying` status and missing creation time on a copy in flight, a real AccessDenied
//! on the share call, server errors, and a Redshift share from another account listed among
//! the caller's own snapshots.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_rds::Client;
use aws_sdk_rds::operation::add_tags_to_resource::AddTagsToResourceOutput;
use aws_sdk_rds::operation::copy_db_cluster_snapshot::CopyDbClusterSnapshotOutput;
use aws_sdk_rds::operation::describe_db_cluster_snapshot_attributes::DescribeDbClusterSnapshotAttributesOutput;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::types::{DbClusterSnapshot, DbClusterSnapshotAttributesResult, Tag};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use snapcourier_aws::adapter::SnapshotApi;
use snapcourier_aws::aurora::Aurora;
use snapcourier_aws::{AwsContext, ClientOptions, steps};
use snapcourier_core::Config;
use snapcourier_core::events::{DestinationRun, Look, SourceRun};

const EXAMPLE: &str = include_str!("../../../examples/snapcourier.yaml");
const ID: &str = "sc-demo-auroradaily-orders-db-20261122-0000";

fn context() -> AwsContext {
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .build();
    AwsContext::new(&sdk, ClientOptions::default())
}

fn ours(stage: &str, status: &str) -> DbClusterSnapshot {
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    DbClusterSnapshot::builder()
        .db_cluster_snapshot_identifier(ID)
        .db_cluster_snapshot_arn(format!(
            "arn:aws:rds:us-east-1:222222222222:cluster-snapshot:{ID}"
        ))
        .db_cluster_identifier("orders-db")
        .status(status)
        .storage_encrypted(false)
        .tag_list(tag("snapcourier:namespace", "demo"))
        .tag_list(tag("snapcourier:schedule", "aurora-daily"))
        .tag_list(tag("snapcourier:stage", stage))
        .build()
}

fn error_response(status: u16, code: &str) -> HttpResponse {
    let body = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>stubbed {code}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
    );
    HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
}

#[tokio::test]
async fn a_copy_still_copying_without_a_creation_time_is_waited_for() {
    let config = Config::parse(EXAMPLE).unwrap();
    let run = DestinationRun::from_config(&config, "aurora-daily", "222222222222").unwrap();
    let describe = mock!(Client::describe_db_cluster_snapshots).then_output(|| {
        DescribeDbClusterSnapshotsOutput::builder()
            .db_cluster_snapshots(ours("intermediate", "copying"))
            .build()
    });
    let copy = mock!(Client::copy_db_cluster_snapshot)
        .then_output(|| CopyDbClusterSnapshotOutput::builder().build());
    let us = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&describe, &copy]);
    let nothing_there = mock!(Client::describe_db_cluster_snapshots)
        .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build());
    let eu_copy = mock!(Client::copy_db_cluster_snapshot)
        .then_output(|| CopyDbClusterSnapshotOutput::builder().build());
    let eu = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&nothing_there, &eu_copy]);
    let ctx = context()
        .with_rds_client("us-east-1", us)
        .with_rds_client("eu-west-1", eu);

    let found = Aurora
        .find_snapshot(&ctx, "us-east-1", ID)
        .await
        .unwrap()
        .unwrap();
    assert!(found.status.is_in_progress());
    assert_eq!(found.created, None);

    let out = steps::cross_region_copy(&ctx, &run, jiff::Timestamp::now())
        .await
        .unwrap();
    assert!(out.started.is_empty() && out.failures.is_empty(), "{out:?}");
    assert_eq!(copy.num_calls(), 0);
    assert_eq!(
        eu_copy.num_calls(),
        0,
        "no regional copy from a copy still in flight"
    );
}

#[tokio::test]
async fn access_denied_on_share_is_reported_and_no_progress_marker_is_written() {
    let config = Config::parse(EXAMPLE).unwrap();
    let run = SourceRun::from_config(&config, "aurora-daily").unwrap();
    let mut snapshot = ours("source", "available");
    snapshot.db_cluster_snapshot_arn = Some(format!(
        "arn:aws:rds:us-east-1:111111111111:cluster-snapshot:{ID}"
    ));
    let describe = mock!(Client::describe_db_cluster_snapshots).then_output(move || {
        DescribeDbClusterSnapshotsOutput::builder()
            .db_cluster_snapshots(snapshot.clone())
            .build()
    });
    let attributes = mock!(Client::describe_db_cluster_snapshot_attributes).then_output(|| {
        DescribeDbClusterSnapshotAttributesOutput::builder()
            .db_cluster_snapshot_attributes_result(
                DbClusterSnapshotAttributesResult::builder().build(),
            )
            .build()
    });
    let modify = mock!(Client::modify_db_cluster_snapshot_attribute)
        .then_http_response(|| error_response(403, "AccessDenied"));
    let tag = mock!(Client::add_tags_to_resource)
        .then_output(|| AddTagsToResourceOutput::builder().build());
    let client = mock_client!(
        aws_sdk_rds,
        RuleMode::MatchAny,
        [&describe, &attributes, &modify, &tag]
    );
    let ctx = context().with_rds_client("us-east-1", client);
    let now = jiff::Timestamp::now();
    let pass = steps::share(&ctx, &run, &Look::first(now), now)
        .await
        .unwrap();
    assert_eq!(pass.due, 1);
    assert!(
        pass.shared.is_empty() && pass.pending.is_empty(),
        "{pass:?}"
    );
    assert_eq!(pass.failures.len(), 1, "{pass:?}");
    let error = &pass.failures[0].error;
    assert_eq!(pass.failures[0].resource, "orders-db");
    assert_eq!(error.error_type, "AccessDenied");
    assert!(!error.retryable);
    assert!(
        error
            .message
            .contains("rds:ModifyDBClusterSnapshotAttribute"),
        "{error:?}"
    );
    // Nothing is left to look at: the run goes on to retention and reports the failure.
    assert!(pass.next.is_finished());
    assert_eq!(modify.num_calls(), 1);
    assert_eq!(
        attributes.num_calls(),
        0,
        "no describe before sharing: adding an account twice is a no-op for AWS"
    );
    assert_eq!(
        tag.num_calls(),
        0,
        "a failed share must not be marked as done"
    );
}

#[tokio::test]
async fn server_errors_are_service_unavailable_and_retryable() {
    let failing = mock!(Client::describe_db_clusters)
        .sequence()
        .http_response(|| error_response(503, "ServiceUnavailable"))
        .times(10)
        .build();
    let client = mock_client!(aws_sdk_rds, RuleMode::Sequential, [&failing]);
    let ctx = context().with_rds_client("us-east-1", client);
    let err = Aurora.list_resources(&ctx, "us-east-1").await.unwrap_err();
    assert_eq!(err.error_type(), "ServiceUnavailable");
    assert!(err.is_retryable());
}

/// AWS hints that a Redshift describe without OwnerAccount may also list snapshots other
/// accounts share with the caller (the emulator lists only the caller's). A share from another
/// account can carry any tags, ours included: retention must never try to delete it.
#[tokio::test]
async fn redshift_retention_ignores_a_shared_snapshot_carrying_our_tags() {
    use aws_sdk_redshift::operation::describe_cluster_snapshots::DescribeClusterSnapshotsOutput;
    use aws_sdk_redshift::types::{Snapshot, Tag as RsTag};
    let config = Config::parse(EXAMPLE).unwrap();
    let run = SourceRun::from_config(&config, "warehouse-daily").unwrap();
    let old = aws_smithy_types::DateTime::from_secs(1_700_000_000);
    let tag = |k: &str, v: &str| RsTag::builder().key(k).value(v).build();
    let snapshot = move |id: &str, owner: &str| {
        Snapshot::builder()
            .snapshot_identifier(id)
            .cluster_identifier("warehouse-main")
            .owner_account(owner)
            .status("available")
            .snapshot_type("manual")
            .snapshot_create_time(old)
            .tags(tag("snapcourier:namespace", "demo"))
            .tags(tag("snapcourier:schedule", "warehouse-daily"))
            .tags(tag("snapcourier:stage", "source"))
            .tags(tag("snapcourier:resource", "warehouse-main"))
            .build()
    };
    // Four of ours, all old (keep_last 3 expires one), and a foreign one older still.
    let describe =
        mock!(aws_sdk_redshift::Client::describe_cluster_snapshots).then_output(move || {
            let mut out = DescribeClusterSnapshotsOutput::builder();
            for i in 0..4 {
                out = out.snapshots(snapshot(
                    &format!("sc-demo-warehousedaily-warehouse-main-{i}"),
                    "111111111111",
                ));
            }
            out.snapshots(snapshot(
                "sc-demo-warehousedaily-warehouse-main-foreign",
                "999999999999",
            ))
            .build()
        });
    let delete = mock!(aws_sdk_redshift::Client::delete_cluster_snapshot)
        .then_output(|| aws_sdk_redshift::operation::delete_cluster_snapshot::DeleteClusterSnapshotOutput::builder().build());
    let us = mock_client!(aws_sdk_redshift, RuleMode::MatchAny, [&describe, &delete]);
    let eu_describe = mock!(aws_sdk_redshift::Client::describe_cluster_snapshots)
        .then_output(|| DescribeClusterSnapshotsOutput::builder().build());
    let eu = mock_client!(aws_sdk_redshift, RuleMode::MatchAny, [&eu_describe]);
    let ctx = context()
        .with_redshift_client("us-east-1", us)
        .with_redshift_client("eu-west-1", eu);
    let out = steps::delete_source(&ctx, &run, jiff::Timestamp::now())
        .await
        .unwrap();
    let deleted: Vec<&str> = out.deleted.iter().map(|d| d.snapshot_id.as_str()).collect();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert!(!deleted[0].ends_with("foreign"), "{deleted:?}");
    assert_eq!(delete.num_calls(), 1);
    assert_eq!(out.kept, 3);
}
