//! Client construction: one client per (service, region), built once per process, each
//! counting its calls through an SDK interceptor.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use snapcourier_core::Error;

use crate::withhold::{Withheld, Withhold};

/// How many AWS operations were invoked and how many HTTP attempts they took (retries
/// included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApiCalls {
    pub calls: u64,
    pub attempts: u64,
}

impl std::ops::Sub for ApiCalls {
    type Output = ApiCalls;
    fn sub(self, rhs: ApiCalls) -> ApiCalls {
        ApiCalls {
            calls: self.calls.saturating_sub(rhs.calls),
            attempts: self.attempts.saturating_sub(rhs.attempts),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    calls: AtomicU64,
    attempts: AtomicU64,
}

/// Counts every operation and every attempt of the clients it is attached to.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Counts>);

impl CallCounter {
    pub fn get(&self) -> ApiCalls {
        ApiCalls {
            calls: self.0.calls.load(Ordering::Relaxed),
            attempts: self.0.attempts.load(Ordering::Relaxed),
        }
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "SnapcourierCallCounter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Retry behaviour of every client.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
        }
    }
}

/// Everything a step needs to talk to AWS in one account: one client per (service, region),
/// built on first use and kept for the life of the process, all counted by one counter.
#[derive(Debug)]
pub struct AwsContext {
    sdk: SdkConfig,
    retry: RetryConfig,
    counter: CallCounter,
    rds: Mutex<HashMap<String, aws_sdk_rds::Client>>,
    redshift: Mutex<HashMap<String, aws_sdk_redshift::Client>>,
    kms: Mutex<HashMap<String, aws_sdk_kms::Client>>,
    sfn: Mutex<HashMap<String, aws_sdk_sfn::Client>>,
    ssm: Mutex<HashMap<String, aws_sdk_ssm::Client>>,
    lambda: Mutex<HashMap<String, aws_sdk_lambda::Client>>,
    elasticache: Mutex<HashMap<String, aws_sdk_elasticache::Client>>,
    s3: Mutex<HashMap<String, aws_sdk_s3::Client>>,
    /// Set by `with_withheld_mutations`: every client refuses, and records here, each call
    /// that is not a read (a plan).
    withheld: Option<Arc<Mutex<Vec<Withheld>>>>,
    /// Where this side's deployed runs are (an SSM parameter path), for a deployed function;
    /// `None` for the CLI, which runs what its operator's config says.
    deployed_runs: Option<String>,
    /// Whether a KMS key is AWS managed, per key ARN: asked once per key per process, also
    /// when many shares of one step ask at the same moment.
    aws_managed_keys: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<bool>>>>,
}

/// The region's client from the cache, built on first use.
fn cached<C: Clone>(
    cache: &Mutex<HashMap<String, C>>,
    region: &str,
    build: impl FnOnce() -> C,
) -> C {
    lock(cache)
        .entry(region.to_string())
        .or_insert_with(build)
        .clone()
}

/// A poisoned lock only means another thread panicked mid-insert; the map is still valid.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AwsContext {
    /// Credentials and endpoint from the environment (or the named profile), as the SDK
    /// finds them: Lambda's role, `AWS_PROFILE`, `AWS_ENDPOINT_URL`, ...
    pub async fn from_env(profile: Option<&str>, options: ClientOptions) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = profile {
            loader = loader.profile_name(profile);
        }
        AwsContext::new(&loader.load().await, options)
    }

    pub fn new(sdk: &SdkConfig, options: ClientOptions) -> Self {
        AwsContext {
            sdk: sdk.clone(),
            retry: RetryConfig::standard()
                .with_max_attempts(options.max_attempts)
                .with_initial_backoff(options.initial_backoff)
                .with_max_backoff(options.max_backoff),
            counter: CallCounter::default(),
            rds: Mutex::new(HashMap::new()),
            redshift: Mutex::new(HashMap::new()),
            kms: Mutex::new(HashMap::new()),
            sfn: Mutex::new(HashMap::new()),
            ssm: Mutex::new(HashMap::new()),
            lambda: Mutex::new(HashMap::new()),
            elasticache: Mutex::new(HashMap::new()),
            s3: Mutex::new(HashMap::new()),
            deployed_runs: None,
            withheld: None,
            aws_managed_keys: Mutex::new(HashMap::new()),
        }
    }

    /// Use a client built elsewhere for a region (a stubbed client in unit tests). It is not
    /// counted unless it was built with this context's counter.
    pub fn with_rds_client(self, region: &str, client: aws_sdk_rds::Client) -> Self {
        lock(&self.rds).insert(region.to_string(), client);
        self
    }

    pub fn rds(&self, region: &str) -> aws_sdk_rds::Client {
        cached(&self.rds, region, || {
            let mut config = aws_sdk_rds::config::Builder::from(&self.sdk)
                .region(Region::new(region.to_string()))
                .retry_config(self.retry.clone())
                .interceptor(self.counter.clone());
            if let Some(log) = &self.withheld {
                config = config.interceptor(Withhold::new(region, Arc::clone(log)));
            }
            aws_sdk_rds::Client::from_conf(config.build())
        })
    }

    /// Use a stubbed S3 client for a region (unit tests).
    pub fn with_s3_client(self, region: &str, client: aws_sdk_s3::Client) -> Self {
        lock(&self.s3).insert(region.to_string(), client);
        self
    }

    /// Use a stubbed Redshift client for a region (unit tests).
    pub fn with_redshift_client(self, region: &str, client: aws_sdk_redshift::Client) -> Self {
        lock(&self.redshift).insert(region.to_string(), client);
        self
    }

    pub fn redshift(&self, region: &str) -> aws_sdk_redshift::Client {
        cached(&self.redshift, region, || {
            let mut config = aws_sdk_redshift::config::Builder::from(&self.sdk)
                .region(Region::new(region.to_string()))
                .retry_config(self.retry.clone())
                .interceptor(self.counter.clone());
            if let Some(log) = &self.withheld {
                config = config.interceptor(Withhold::new(region, Arc::clone(log)));
            }
            aws_sdk_redshift::Client::from_conf(config.build())
        })
    }

    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        cached(&self.kms, region, || {
            let mut config = aws_sdk_kms::config::Builder::from(&self.sdk)
                .region(Region::new(region.to_string()))
                .retry_config(self.retry.clone())
                .interceptor(self.counter.clone());
            if let Some(log) = &self.withheld {
                config = config.interceptor(Withhold::new(region, Arc::clone(log)));
            }
            aws_sdk_kms::Client::from_conf(config.build())
        })
    }

    pub fn sfn(&self, region: &str) -> aws_sdk_sfn::Client {
        cached(&self.sfn, region, || {
            let mut config = aws_sdk_sfn::config::Builder::from(&self.sdk)
                .region(Region::new(region.to_string()))
                .retry_config(self.retry.clone())
                .interceptor(self.counter.clone());
            if let Some(log) = &self.withheld {
                config = config.interceptor(Withhold::new(region, Arc::clone(log)));
            }
            aws_sdk_sfn::Client::from_conf(config.build())
        })
    }

    /// Lambda in a region (a drill's validation function).
    pub fn lambda(&self, region: &str) -> aws_sdk_lambda::Client {
        cached(&self.lambda, region, || {
            let mut config = aws_sdk_lambda::config::Builder::from(&self.sdk)
                .region(Region::new(region.to_string()))
                .retry_config(self.retry.clone())
                .interceptor(self.counter.clone());
            if let Some(log) = &self.withheld {
                config = config.interceptor(Withhold::new(region, Arc::clone(log)));
            }
            aws_sdk_lambda::Client::from_conf(config.build())
        })
    }

    pub fn elasticache(&self, region: &str) -> aws_sdk_elasticache::Client {
        cached(&self.elasticache, region, || {
            let mut config = aws_sdk_elasticache::config::Builder::from(&self.sdk)
                .region(Region::new(region.to_string()))
                .retry_config(self.retry.clone())
                .interceptor(self.counter.clone());
            if let Some(log) = &self.withheld {
                config = config.interceptor(Withhold::new(region, Arc::clone(log)));
            }
            aws_sdk_elasticache::Client::from_conf(config.build())
        })
    }

    /// S3 in a region. Path-style addressing where an endpoint is configured (an emulator has
    /// no per-bucket host names).
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        cached(&self.s3, region, || {
            let mut config = aws_sdk_s3::config::Builder::from(&self.sdk)
                .region(Region::new(region.to_string()))
                .retry_config(self.retry.clone())
                .force_path_style(self.sdk.endpoint_url().is_some())
                .interceptor(self.counter.clone());
            if let Some(log) = &self.withheld {
                config = config.interceptor(Withhold::new(region, Arc::clone(log)));
            }
            aws_sdk_s3::Client::from_conf(config.build())
        })
    }

    /// A plan's context: every call but reads is refused before it is sent, and recorded
    /// (`withheld`). Set before the first call (clients are built on first use).
    pub fn with_withheld_mutations(mut self) -> Self {
        self.withheld = Some(Arc::new(Mutex::new(Vec::new())));
        self
    }

    pub fn withholds_mutations(&self) -> bool {
        self.withheld.is_some()
    }

    /// The calls withheld since the last `take_withheld`, in the order they were made.
    pub fn take_withheld(&self) -> Vec<Withheld> {
        self.withheld
            .as_ref()
            .map(|log| std::mem::take(&mut *lock(log)))
            .unwrap_or_default()
    }

    /// A deployed function's context: it runs a step only for the deployed run of the
    /// schedule an event names, read from the SSM parameters under `prefix`
    /// (`crate::deployed`).
    pub fn with_deployed_runs(mut self, prefix: impl Into<String>) -> Self {
        self.deployed_runs = Some(prefix.into());
        self
    }

    pub fn deployed_runs(&self) -> Option<&str> {
        self.deployed_runs.as_deref()
    }

    /// The SSM client of the region the function runs in (where its stack wrote the runs).
    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        let region = self
            .sdk
            .region()
            .map(ToString::to_string)
            .unwrap_or_default();
        self.ssm_in(&region)
    }

    /// The SSM client of a region (drill records live in the destination stack's region).
    pub fn ssm_in(&self, region: &str) -> aws_sdk_ssm::Client {
        cached(&self.ssm, region, || {
            let mut config = aws_sdk_ssm::config::Builder::from(&self.sdk)
                .retry_config(self.retry.clone())
                .interceptor(self.counter.clone());
            if !region.is_empty() {
                config = config.region(Region::new(region.to_string()));
            }
            if let Some(log) = &self.withheld {
                config = config.interceptor(Withhold::new(region, Arc::clone(log)));
            }
            aws_sdk_ssm::Client::from_conf(config.build())
        })
    }

    pub fn calls(&self) -> ApiCalls {
        self.counter.get()
    }

    /// Whether a key is AWS managed (such as the default `aws/rds` key), whose snapshots
    /// cannot be shared with another account.
    pub async fn is_aws_managed_key(&self, key_arn: &str) -> Result<bool, Error> {
        let cell = Arc::clone(
            lock(&self.aws_managed_keys)
                .entry(key_arn.to_string())
                .or_default(),
        );
        // The first caller asks KMS; the others wait for its answer (a failed ask is not
        // kept: the next caller asks again).
        let managed = cell
            .get_or_try_init(|| async {
                let region = key_arn.split(':').nth(3).unwrap_or_default();
                let out = self
                    .kms(region)
                    .describe_key()
                    .key_id(key_arn)
                    .send()
                    .await
                    .map_err(|e| crate::errors::classify(e, "kms:DescribeKey", key_arn))?;
                Ok::<bool, Error>(
                    out.key_metadata()
                        .and_then(|m| m.key_manager())
                        .is_some_and(|m| *m == aws_sdk_kms::types::KeyManagerType::Aws),
                )
            })
            .await?;
        Ok(*managed)
    }
}
