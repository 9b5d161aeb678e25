//! Test support: starts the local AWS world (moto plus the project's extension, see this
//! folder's README) on a free loopback port and hands out what tests need: SDK configs with
//! each account's own credentials, the seeded key ARNs, and the control routes (faults,
//! creating phase, direct snapshot and S3 object inserts, request counts).
//!
//! Every `Emulator` is its own process, so tests are isolated; it is killed when dropped and
//! exits by itself if the test process dies.

#![allow(clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde::Deserialize;
use serde_json::{Value, json};

pub const SOURCE_ACCOUNT: &str = "111111111111";
pub const DESTINATION_ACCOUNT: &str = "222222222222";
pub const SOURCE_REGION: &str = "us-east-1";
pub const DESTINATION_REGION: &str = "eu-west-1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seed {
    /// Accounts, credentials and KMS keys only.
    Empty,
    /// The demo world of examples/snapcourier.yaml.
    Demo,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Credentials {
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct State {
    pub endpoint: String,
    pub accounts: BTreeMap<String, Credentials>,
    pub kms_keys: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub default_rds_keys: BTreeMap<String, BTreeMap<String, String>>,
    /// The AWS-managed `aws/redshift` key ARN per account and region.
    #[serde(default)]
    pub default_redshift_keys: BTreeMap<String, BTreeMap<String, String>>,
    pub aws_config_file: PathBuf,
    pub aws_credentials_file: PathBuf,
}

pub struct Emulator {
    child: Child,
    pub state: State,
    _dir: tempfile::TempDir,
}

/// The repository root (this crate lives in tests/emulator).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    std::env::var_os("SNAPCOURIER_PYTHON")
        .map_or_else(|| repo_root().join(".venv/bin/python"), PathBuf::from)
}

impl Emulator {
    pub fn start(seed: Seed) -> Emulator {
        let dir = tempfile::tempdir().expect("temp dir");
        let state_file = dir.path().join("state.json");
        let seed_name = match seed {
            Seed::Empty => "empty",
            Seed::Demo => "demo",
        };
        let python = python();
        let child = Command::new(&python)
            .args([
                "-m",
                "snapcourier_emulator",
                "serve",
                "--port",
                "0",
                "--seed",
                seed_name,
            ])
            .arg("--state-file")
            .arg(&state_file)
            .arg("--watch-pid")
            .arg(std::process::id().to_string())
            .env("PYTHONPATH", repo_root().join("tests/emulator"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the emulator with {}: {e}. Run `make setup` first",
                    python.display()
                )
            });
        let mut emulator = Emulator {
            child,
            state: wait_for_state(&state_file),
            _dir: dir,
        };
        // Fail fast if the process died after writing its state.
        if let Ok(Some(status)) = emulator.child.try_wait() {
            panic!("emulator exited early: {status}");
        }
        emulator
    }

    pub fn endpoint(&self) -> &str {
        &self.state.endpoint
    }

    pub fn credentials(&self, side: Side) -> &Credentials {
        let key = match side {
            Side::Source => "source",
            Side::Destination => "destination",
        };
        &self.state.accounts[key]
    }

    /// An SDK config acting as `side`'s account, the way a deployed function would.
    pub fn sdk_config(&self, side: Side) -> SdkConfig {
        let c = self.credentials(side);
        let creds = aws_sdk_rds::config::Credentials::new(
            &c.access_key_id,
            &c.secret_access_key,
            None,
            None,
            "emulator",
        );
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(SOURCE_REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_rds::config::SharedCredentialsProvider::new(creds))
            .build()
    }

    /// A plain RDS client for assertions (not counted by the product's counter).
    pub fn rds(&self, side: Side, region: &str) -> aws_sdk_rds::Client {
        let config = aws_sdk_rds::config::Builder::from(&self.sdk_config(side))
            .region(Region::new(region.to_string()))
            .build();
        aws_sdk_rds::Client::from_conf(config)
    }

    /// A plain Redshift client for assertions (not counted by the product's counter).
    pub fn redshift(&self, side: Side, region: &str) -> aws_sdk_redshift::Client {
        let config = aws_sdk_redshift::config::Builder::from(&self.sdk_config(side))
            .region(Region::new(region.to_string()))
            .build();
        aws_sdk_redshift::Client::from_conf(config)
    }

    pub fn kms_key(&self, account: &str, region: &str) -> String {
        self.state.kms_keys[account][region].clone()
    }

    pub fn default_rds_key(&self, account: &str, region: &str) -> String {
        self.state.default_rds_keys[account][region].clone()
    }

    pub fn default_redshift_key(&self, account: &str, region: &str) -> String {
        self.state.default_redshift_keys[account][region].clone()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint())
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let mut response = ureq::post(&self.url(path))
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        response.body_mut().read_json().unwrap_or(Value::Null)
    }

    /// Merge into the emulator's config: creating_reads, stuck, restore_reads, restore_failures,
    /// throttle_rate, throttle_seed, ... (see the README).
    pub fn configure(&self, settings: Value) {
        self.post("/snapcourier/config", &settings);
    }

    /// Insert snapshots directly (ages and states the API cannot produce). Each entry as in
    /// the control route's contract; returns what the route answered (`{"arns": [...]}`).
    /// RDS by default; `"kind": "redshift"`; `"kind": "elasticache"` for an ElastiCache manual
    /// snapshot: `{"account", "region", "id" (stored lower-case), "resource_id" (the replication
    /// group, or with `"serverless": true` the serverless cache; need not exist), "created"
    /// (RFC 3339), "status" ("available" | "creating" | "failed"), "creating_reads", "shards"
    /// (1-500), "tags", "kms_key_id", "engine"}` (see the README).
    pub fn insert_snapshots(&self, snapshots: &[Value]) -> Value {
        self.post("/snapcourier/snapshots", &json!(snapshots))
    }

    /// Put S3 objects straight into their buckets, as each bucket's owner, with what the API
    /// cannot set: `{"bucket", "key", "body" (a string; default a valid one-shard `.rdb`) or
    /// "size" (that many bytes), "last_modified" (RFC 3339, default now), "lock_mode"
    /// ("GOVERNANCE" | "COMPLIANCE") with "lock_until" (RFC 3339, may be past: an expired
    /// lock), "kms_key_id" (SSE-KMS with that key; default the bucket's default encryption),
    /// "checksum" (default true: a SHA-256 checksum as exports store it)}`. All or none;
    /// returns `{"version_ids": [...]}` (null for an unversioned bucket). See the README.
    pub fn insert_objects(&self, objects: &[Value]) -> Value {
        self.post("/snapcourier/objects", &json!(objects))
    }

    pub fn create_cluster(&self, spec: Value) -> Value {
        self.post("/snapcourier/clusters", &spec)
    }

    /// Create a Redshift cluster through the control route: `{"account", "region", "id",
    /// "encrypted", "kms_key_id", "status", "tags", ...}` (see the README); `"kind": "redshift"`
    /// is added. Returns `{"arn": ...}`.
    pub fn create_redshift_cluster(&self, mut spec: Value) -> Value {
        if let Some(fields) = spec.as_object_mut() {
            fields.insert("kind".into(), json!("redshift"));
        }
        self.post("/snapcourier/clusters", &spec)
    }

    /// Route Lambda functions (by name or ARN) to `cargo lambda watch` processes:
    /// `{"<function ARN>": {"url": "http://127.0.0.1:PORT", "binary": "take"}}`.
    pub fn route_lambdas(&self, routes: &Value) {
        self.post("/snapcourier/lambda-routes", routes);
    }

    /// AWS requests the emulator answered, by `service:Action`.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        let mut response = ureq::get(&self.url("/snapcourier/requests"))
            .call()
            .expect("GET requests");
        let v: Value = response.body_mut().read_json().expect("requests json");
        serde_json::from_value(v["by_action"].clone()).unwrap_or_default()
    }

    /// Copies refused because AWS's limit of copies in flight was reached, by
    /// `account/region/kind`: a product that keeps within the limit has none.
    pub fn copies_refused(&self) -> BTreeMap<String, u64> {
        self.copies("refused")
    }

    /// The most copies in flight at once (each copy counted as it started), by
    /// `account/region/kind` (`DBClusterSnapshot`, `DBSnapshot`).
    pub fn copies_peak_in_flight(&self) -> BTreeMap<String, u64> {
        self.copies("peak_in_flight")
    }

    /// The most requests per service handled at once (latency included): how far the
    /// product overlaps its calls.
    pub fn peak_concurrent(&self) -> BTreeMap<String, u64> {
        let mut response = ureq::get(&self.url("/snapcourier/requests"))
            .call()
            .expect("GET requests");
        let v: Value = response.body_mut().read_json().expect("requests json");
        serde_json::from_value(v["peak_concurrent"].clone()).unwrap_or_default()
    }

    fn copies(&self, which: &str) -> BTreeMap<String, u64> {
        let mut response = ureq::get(&self.url("/snapcourier/requests"))
            .call()
            .expect("GET requests");
        let v: Value = response.body_mut().read_json().expect("requests json");
        serde_json::from_value(v["copies"][which].clone()).unwrap_or_default()
    }

    pub fn reset_requests(&self) {
        self.post("/snapcourier/requests/reset", &json!({}));
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_state(path: &Path) -> State {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(state) = serde_json::from_str::<State>(&text)
        {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "the emulator did not write {} within 90 s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A snapshot of namespace `demo`, schedule `aurora-daily`, for the direct insert route:
/// available, unencrypted, manual, with our ownership tags plus `extra_tags`.
pub fn owned_snapshot(
    account: &str,
    region: &str,
    id: &str,
    resource: &str,
    created: jiff::Timestamp,
    stage: &str,
    extra_tags: &[(&str, &str)],
) -> Value {
    let mut tags = vec![
        json!({"Key": "snapcourier:namespace", "Value": "demo"}),
        json!({"Key": "snapcourier:schedule", "Value": "aurora-daily"}),
        json!({"Key": "snapcourier:stage", "Value": stage}),
        json!({"Key": "snapcourier:resource", "Value": resource}),
    ];
    for (k, v) in extra_tags {
        tags.push(json!({"Key": k, "Value": v}));
    }
    json!({
        "account": account, "region": region, "kind": "cluster", "id": id,
        "resource_id": resource, "engine": "aurora-postgresql", "created": created.to_string(),
        "status": "available", "kms_key_id": null, "tags": tags, "shared_with": [],
        "snapshot_type": "manual"
    })
}

/// `days` days and `hours` hours before now.
pub fn days_ago(days: i64, hours: i64) -> jiff::Timestamp {
    jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days + hours)
}
