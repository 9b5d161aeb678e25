//! The deployment config: one YAML or JSON file. The types here are the single source of
//! truth: `snapcourier schema` prints the JSON Schema generated from them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;
use crate::engine::Engine;
use crate::error::{Error, FieldProblem};
use crate::retention::RetentionPolicy;

/// Longest namespace: it is part of every snapshot id and of stack resource names.
pub const MAX_NAMESPACE_LEN: usize = 16;
/// The share marker tag lists destination accounts in one tag value (256 characters).
pub const MAX_DESTINATIONS: usize = 19;
/// AWS allows at most this many Aurora cluster snapshot copies in flight per destination region.
pub const AURORA_COPY_LIMIT: u32 = 5;
/// AWS allows at most this many RDS DB snapshot copies in flight per destination region.
pub const RDS_COPY_LIMIT: u32 = 20;
/// Name of the Redshift snapshot copy grant snapcourier creates in the copy region.
pub const REDSHIFT_COPY_GRANT_PREFIX: &str = "snapcourier-";

/// A snapcourier deployment: where snapshots are taken, where they go, how often and how long
/// they are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This deployment's unique name, 1 to 16 lowercase letters and digits, starting with a
    /// letter. It prefixes every snapshot id and is the value of the `snapcourier:namespace`
    /// ownership tag: snapcourier never modifies or deletes a snapshot without it.
    pub namespace: String,
    /// The production account whose databases are snapshotted.
    pub source: SourceAccount,
    /// Accounts that receive copies (at least one, at most 19).
    pub destinations: Vec<Destination>,
    /// What to snapshot, how often, and how long to keep it in the source account.
    pub schedules: Vec<Schedule>,
    /// Operational knobs; every field has a default.
    #[serde(default)]
    pub settings: Settings,
    /// Guardrails of the destination accounts (the vault): who, besides snapcourier's own
    /// roles, may still delete or change its copies, keys and stack resources.
    #[serde(default)]
    pub vault: Vault,
    /// Restore drills in the destination accounts: the newest copy of a few databases restored
    /// on a schedule, timed and deleted. Omit it for no scheduled drills (`snapcourier drill`
    /// still runs one by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drills: Option<crate::drill::Drills>,
}

/// The vault's exceptions. The destination stacks' key policies, the service control policy
/// (`make templates`) and the tampering alarms deny or report every other principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Vault {
    /// Name of the IAM role, in each destination account, that may still delete or change
    /// snapcourier's copies, keys and stack resources when something must be undone (break
    /// glass). Its every use is reported to the failure topic. Without it, only the deploy
    /// roles can (through CloudFormation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub break_glass_role: Option<String>,
    /// Names (`*` allowed) of the IAM roles that deploy the destination stacks: they create
    /// and update the keys and resources the guardrails protect. Default: the roles of a CDK
    /// bootstrap with the default qualifier. With `make templates`, name the CloudFormation
    /// service role you deploy with.
    pub deploy_roles: Vec<String>,
}

/// The roles a `cdk bootstrap` with the default qualifier creates that deploy stacks.
pub const CDK_DEPLOY_ROLES: [&str; 2] = [
    "cdk-hnb659fds-deploy-role-*",
    "cdk-hnb659fds-cfn-exec-role-*",
];

impl Default for Vault {
    fn default() -> Self {
        Vault {
            break_glass_role: None,
            deploy_roles: CDK_DEPLOY_ROLES.iter().map(ToString::to_string).collect(),
        }
    }
}

fn check_vault(v: &Vault, path: &str, p: &mut Problems) {
    if let Some(role) = &v.break_glass_role
        && !is_match(&ROLE_NAME, role)
    {
        p.add(
            format!("{path}.break_glass_role"),
            format!("`{role}` is not an IAM role name (1 to 64 letters, digits and +=,.@_-): give the role's name, not its ARN"),
        );
    }
    if v.deploy_roles.is_empty() {
        p.add(
            format!("{path}.deploy_roles"),
            "must name at least one role: without one, no deployment could update the keys the vault protects",
        );
    }
    for (i, role) in v.deploy_roles.iter().enumerate() {
        if !is_match(&ROLE_PATTERN, role) || role.chars().all(|c| c == '*') {
            p.add(
                format!("{path}.deploy_roles[{i}]"),
                format!("`{role}` is not an IAM role name or a name pattern with `*` (and not `*` alone, which would except every role)"),
            );
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceAccount {
    /// 12-digit AWS account id.
    pub account: String,
    /// Region of the databases, such as `us-east-1`.
    pub region: String,
    /// Redshift only: KMS key ARN of this account in the region Redshift copies snapshots to
    /// (the destinations' region other than `region`). Required when a Redshift schedule
    /// covers a KMS-encrypted cluster: snapcourier creates the snapshot copy grant
    /// `snapcourier-<namespace>` for this key there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redshift_copy_kms_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// 12-digit AWS account id; must differ from the source account.
    pub account: String,
    /// KMS key ARN in this account and the SOURCE region, used to re-encrypt the intermediate
    /// copy made in the source region. Omit it when `regions` lists the source region (that
    /// entry's key is used), or to use the key the destination stack creates there (alias
    /// `alias/snapcourier-<namespace>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_in_kms_key: Option<String>,
    /// Regions that keep copies, each with the KMS key of this account in that region.
    pub regions: Vec<DestinationRegion>,
    /// How long copies are kept in this account (per region, per database). `days` is
    /// required here: it is the vault's floor, and no copy younger than it is ever deleted.
    pub retention: RetentionPolicy,
    /// ElastiCache: the S3 Object Lock mode of this account's vault buckets, whose copies are
    /// locked for `retention.days` from the copy. `governance`: a role with
    /// s3:BypassGovernanceRetention (the break-glass role) can still delete a copy early;
    /// `compliance`: nobody can, the root user included, until the lock expires.
    #[serde(default)]
    pub object_lock: ObjectLockMode,
}

/// S3 Object Lock retention mode of the vault buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ObjectLockMode {
    #[default]
    Governance,
    Compliance,
}

impl ObjectLockMode {
    /// The API's spelling (`x-amz-object-lock-mode`).
    pub fn as_api(self) -> &'static str {
        match self {
            ObjectLockMode::Governance => "GOVERNANCE",
            ObjectLockMode::Compliance => "COMPLIANCE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationRegion {
    /// Region such as `eu-west-1`.
    pub region: String,
    /// KMS key ARN (or alias ARN) in the destination account and this region; copies are
    /// encrypted with it. Omit it to use the key the destination stack creates in this region
    /// (alias `alias/snapcourier-<namespace>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
    /// RDS instances: option group to give a copy made in this region, by the source
    /// snapshot's option group name (option groups are regional). A snapshot whose option
    /// group is not listed keeps RDS's documented behaviour: the copy gets the engine's
    /// default option group in this region (options that must persist, such as Oracle TDE,
    /// need an entry here).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub option_groups: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Unique name: lowercase letters, digits and hyphens, starting with a letter, at most 40.
    /// Snapshot ids carry it without its hyphens, so names must differ by more than hyphens.
    pub name: String,
    /// Which kind of database this schedule covers.
    pub engine: Engine,
    /// Regular expressions (Rust `regex` syntax) matched against the resource identifier;
    /// a resource is covered when any matches. Default: every resource.
    #[serde(default = "default_include")]
    pub include: Vec<String>,
    /// Regular expressions; a resource matching any of them is never covered.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// When set, only resources carrying this tag are covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_in_tag: Option<TagMatch>,
    /// Recovery-point objective: one snapshot per resource per interval slot (UTC, aligned to
    /// the Unix epoch). At least `1h`.
    pub interval: HumanDuration,
    /// EventBridge schedule expression that starts runs, such as `cron(0 3 * * ? *)` or
    /// `rate(1 hour)`. Default: `rate(<interval>)` rounded to whole hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// How long snapshots are kept in the source account.
    pub retention: RetentionPolicy,
    /// Options for `engine: redshift` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redshift: Option<RedshiftOptions>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedshiftOptions {
    /// Instead of taking a new snapshot, make a manual copy of the cluster's newest automated
    /// snapshot (no extra load on the cluster; the recovery point is that snapshot's time).
    #[serde(default)]
    pub copy_automated: bool,
}

fn default_include() -> Vec<String> {
    vec![".*".to_string()]
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagMatch {
    /// Tag key the resource must carry.
    pub key: String,
    /// Value the tag must have; any value when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Seconds between two looks at a snapshot or copy that is not available yet (at first;
    /// later looks come a sixtieth of the run's elapsed time apart).
    pub poll_interval_seconds: u64,
    /// Seconds a run keeps following snapshots being made (source) and copies under way or
    /// waiting for a copy slot (destination) before it reports what is left (and fails).
    /// Default: the schedule's interval minus a tenth of it (at most an hour), so a run ends
    /// before the next one of its schedule starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_seconds: Option<u64>,
    /// Copies of Aurora cluster snapshots in flight per destination region (AWS allows 5).
    pub aurora_copy_concurrency: u32,
    /// Copies of RDS DB instance snapshots in flight per destination region (AWS allows 20).
    pub rds_copy_concurrency: u32,
    /// Attempts per AWS call before a throttled or failed call is given up (SDK retries).
    pub max_attempts: u32,
    /// AWS calls a step makes at once when it acts on many snapshots (creates, shares,
    /// deletes); throttled calls back off and retry.
    pub call_concurrency: u32,
    /// Removed settings: read only to be refused with a message that says what replaced
    /// them (`check_settings`), rather than a bare "unknown field".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub max_polls: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub max_concurrency: Option<serde_json::Value>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll_interval_seconds: 60,
            deadline_seconds: None,
            aurora_copy_concurrency: AURORA_COPY_LIMIT,
            rds_copy_concurrency: RDS_COPY_LIMIT,
            max_attempts: 5,
            call_concurrency: 10,
            max_polls: None,
            max_concurrency: None,
        }
    }
}

impl Settings {
    /// Copies of this engine's snapshots allowed in flight per region; `None` when the
    /// destination makes no copies (Redshift).
    pub fn copy_limit(&self, engine: Engine) -> Option<u32> {
        match engine {
            Engine::Aurora => Some(self.aurora_copy_concurrency),
            Engine::Rds => Some(self.rds_copy_concurrency),
            Engine::Redshift | Engine::ElastiCache => None,
        }
    }
}

/// Regions the destinations keep copies in, other than the source region, in config order.
pub fn other_regions<'a>(
    source: &SourceAccount,
    regions: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in regions {
        if r != source.region && !out.iter().any(|o| o == r) {
            out.push(r.to_string());
        }
    }
    out
}

impl Config {
    /// Every region the source account writes to: its own, and for Redshift (which copies
    /// in the source account) the destinations' other regions.
    pub fn source_regions(&self, engines: &BTreeSet<Engine>) -> Vec<String> {
        let mut regions = vec![self.source.region.clone()];
        if engines.contains(&Engine::Redshift) {
            regions.extend(other_regions(
                &self.source,
                self.destination_regions().iter().map(String::as_str),
            ));
        }
        regions
    }

    /// Every region any destination keeps copies in.
    pub fn destination_regions(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.destinations.iter().flat_map(|d| &d.regions) {
            if !out.contains(&r.region) {
                out.push(r.region.clone());
            }
        }
        out
    }

    /// Parse a YAML or JSON document (JSON is YAML) and validate it.
    pub fn parse(text: &str) -> Result<Config, Error> {
        let config: Config = parse_document(text)?;
        config.validate()?;
        Ok(config)
    }

    pub fn schedule(&self, name: &str) -> Result<&Schedule, Error> {
        self.schedules
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                let known: Vec<_> = self.schedules.iter().map(|s| s.name.as_str()).collect();
                Error::config(
                    "schedule",
                    format!("no schedule named `{name}`; the config has {known:?}"),
                )
            })
    }

    pub fn destination(&self, account: &str) -> Result<&Destination, Error> {
        self.destinations
            .iter()
            .find(|d| d.account == account)
            .ok_or_else(|| {
                let known: Vec<_> = self
                    .destinations
                    .iter()
                    .map(|d| d.account.as_str())
                    .collect();
                Error::config(
                    "destination",
                    format!("no destination with account `{account}`; the config has {known:?}"),
                )
            })
    }

    /// Every rule a config must satisfy, all problems at once.
    pub fn validate(&self) -> Result<(), Error> {
        let mut p = Problems::default();
        check_namespace(&self.namespace, "namespace", &mut p);
        check_source(&self.source, "source", &mut p);
        if self.destinations.is_empty() {
            p.add("destinations", "must list at least one destination account");
        }
        if self.destinations.len() > MAX_DESTINATIONS {
            p.add(
                "destinations",
                format!("at most {MAX_DESTINATIONS} destination accounts are supported"),
            );
        }
        let mut accounts = BTreeSet::new();
        for (i, d) in self.destinations.iter().enumerate() {
            let path = format!("destinations[{i}]");
            check_destination(d, &self.source, &path, &mut p);
            if !accounts.insert(d.account.as_str()) {
                p.add(
                    format!("{path}.account"),
                    format!("account {} is listed twice", d.account),
                );
            }
        }
        check_vault(&self.vault, "vault", &mut p);
        if let Some(drills) = &self.drills {
            let kept: BTreeSet<&str> = self
                .destinations
                .iter()
                .flat_map(|d| d.regions.iter().map(|r| r.region.as_str()))
                .collect();
            crate::drill::check_drills(drills, &kept, "drills", &mut p);
        }
        if self.schedules.is_empty() {
            p.add("schedules", "must list at least one schedule");
        }
        let mut names = BTreeSet::new();
        let mut parts = BTreeSet::new();
        for (i, s) in self.schedules.iter().enumerate() {
            let path = format!("schedules[{i}]");
            check_schedule(s, &path, &mut p);
            if !names.insert(s.name.as_str()) {
                p.add(
                    format!("{path}.name"),
                    format!("schedule name `{}` is used twice", s.name),
                );
            } else if !parts.insert(crate::naming::schedule_part(&s.name)) {
                p.add(
                    format!("{path}.name"),
                    format!(
                        "`{}` differs from another schedule's name only by hyphens; snapshot ids use the name without hyphens, so rename one",
                        s.name
                    ),
                );
            }
        }
        check_redshift_copy(
            &self.source,
            self.schedules
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("schedules[{i}].engine"), s)),
            &self.destination_regions(),
            "source",
            &mut p,
        );
        check_settings(&self.settings, "settings", &mut p);
        for s in &self.schedules {
            check_deadline(&self.settings, s, "settings", &mut p);
        }
        p.into_result()
    }
}

/// Redshift copies a cluster's snapshots to exactly one other region, in the source account,
/// with a copy grant for encrypted clusters: the destinations may list at most one region
/// besides the source region, and the grant's key must be in that region. `schedules` pairs
/// each schedule with the field path of its engine; `path` prefixes `source`.
pub(crate) fn check_redshift_copy<'a>(
    source: &SourceAccount,
    schedules: impl IntoIterator<Item = (String, &'a Schedule)>,
    destination_regions: &[String],
    source_path: &str,
    p: &mut Problems,
) {
    let others = other_regions(source, destination_regions.iter().map(String::as_str));
    let first_redshift = schedules
        .into_iter()
        .find(|(_, s)| s.engine == Engine::Redshift);
    if let Some((engine_field, _)) = first_redshift
        && others.len() > 1
    {
        p.add(
            engine_field,
            format!(
                "Redshift copies a cluster's snapshots to one other region only, but the destinations list {others:?} besides the source region {}; keep one of them for Redshift (use a separate deployment for the other)",
                source.region
            ),
        );
    }
    if let Some(key) = &source.redshift_copy_kms_key {
        let key_field = format!("{source_path}.redshift_copy_kms_key");
        match others.first() {
            Some(copy_region) => check_kms_key(key, &source.account, copy_region, &key_field, p),
            None => p.add(
                key_field,
                format!(
                    "remove it: no destination lists a region other than the source region {}, so Redshift makes no cross-region copies",
                    source.region
                ),
            ),
        }
    }
}

/// Deserialize a YAML/JSON document, naming the field path of the first problem.
pub fn parse_document<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        // serde_yaml_ng repeats a path of its own in front of the message; the field says it.
        let message = e.into_inner().to_string();
        let rule = match message.split_once(": ") {
            Some((prefix, rest)) if !prefix.contains(' ') => rest.to_string(),
            _ => message,
        };
        Error::config(field, rule)
    })
}

/// Collects problems with their field paths.
#[derive(Default)]
pub(crate) struct Problems(Vec<FieldProblem>);

impl Problems {
    pub(crate) fn add(&mut self, field: impl Into<String>, rule: impl Into<String>) {
        self.0.push(FieldProblem::new(field, rule));
    }

    pub(crate) fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::ConfigInvalid { problems: self.0 })
        }
    }
}

/// A rule written in this file. Compiled once; if one ever failed to compile it would match
/// nothing, so validation fails closed (every built-in rule is compiled by a unit test).
pub(crate) type Rule = LazyLock<Option<Regex>>;

static NAMESPACE: Rule = LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9]*$").ok());
static ACCOUNT: Rule = LazyLock::new(|| Regex::new(r"^[0-9]{12}$").ok());
static REGION: Rule =
    LazyLock::new(|| Regex::new(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$").ok());
static SCHEDULE_NAME: Rule = LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9-]{0,39}$").ok());
static KMS_ARN: Rule = LazyLock::new(|| {
    Regex::new(r"^arn:(aws|aws-cn|aws-us-gov):kms:([a-z0-9-]+):([0-9]{12}):(key/[A-Za-z0-9-]{1,64}|alias/[A-Za-z0-9/_-]{1,250})$").ok()
});
static ROLE_NAME: Rule = LazyLock::new(|| Regex::new(r"^[A-Za-z0-9+=,.@_-]{1,64}$").ok());
static ROLE_PATTERN: Rule = LazyLock::new(|| Regex::new(r"^[A-Za-z0-9+=,.@_*-]{1,64}$").ok());
static OPTION_GROUP: Rule = LazyLock::new(|| Regex::new(r"^[A-Za-z][A-Za-z0-9-]{0,254}$").ok());

pub(crate) fn is_match(rule: &Rule, text: &str) -> bool {
    rule.as_ref().is_some_and(|r| r.is_match(text))
}

pub(crate) fn check_namespace(ns: &str, field: &str, p: &mut Problems) {
    if ns.is_empty() || ns.len() > MAX_NAMESPACE_LEN || !is_match(&NAMESPACE, ns) {
        p.add(
            field,
            format!(
                "`{ns}` must be 1 to {MAX_NAMESPACE_LEN} lowercase letters and digits, starting with a letter"
            ),
        );
    }
}

pub(crate) fn check_account(account: &str, field: &str, p: &mut Problems) {
    if !is_match(&ACCOUNT, account) {
        p.add(
            field,
            format!("`{account}` is not a 12-digit AWS account id (quote it in YAML to keep leading zeros)"),
        );
    }
}

pub(crate) fn check_region(region: &str, field: &str, p: &mut Problems) {
    if !is_match(&REGION, region) {
        p.add(
            field,
            format!("`{region}` is not an AWS region name such as us-east-1"),
        );
    } else if !crate::schedule::KNOWN_REGIONS.contains(&region) {
        p.add(
            field,
            format!("`{region}` is not a region the AWS SDK knows (check the spelling; if AWS opened it after this build, upgrade snapcourier)"),
        );
    }
}

pub(crate) fn check_source(source: &SourceAccount, path: &str, p: &mut Problems) {
    check_account(&source.account, &format!("{path}.account"), p);
    check_region(&source.region, &format!("{path}.region"), p);
}

/// A KMS key ARN must be well formed and belong to the account and region where it is used.
fn check_kms_key(arn: &str, account: &str, region: &str, field: &str, p: &mut Problems) {
    let Some(caps) = KMS_ARN.as_ref().and_then(|r| r.captures(arn)) else {
        p.add(
            field,
            format!("`{arn}` is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID)"),
        );
        return;
    };
    let (key_region, key_account) = (&caps[2], &caps[3]);
    if key_account != account {
        p.add(
            field,
            format!("key is in account {key_account} but is used in account {account}; give a key of {account}"),
        );
    }
    if key_region != region {
        p.add(
            field,
            format!("key is in region {key_region} but is used in region {region}; KMS keys are regional, give a key in {region}"),
        );
    }
}

/// The AWS partition of a region: `aws-cn` for China, `aws-us-gov` for GovCloud, else `aws`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The key a destination stack creates in each of its regions when the config names none:
/// its alias ARN, which RDS accepts as `KmsKeyId`.
pub fn default_destination_key(namespace: &str, account: &str, region: &str) -> String {
    format!(
        "arn:{}:kms:{region}:{account}:alias/snapcourier-{namespace}",
        partition(region)
    )
}

impl Destination {
    /// This destination with every omitted key replaced by the stack-created key's alias:
    /// each region's `kms_key`, and `copy_in_kms_key` when no region is the source region.
    pub fn with_keys(&self, namespace: &str, source_region: &str) -> Destination {
        let mut d = self.clone();
        for r in &mut d.regions {
            if r.kms_key.is_none() {
                r.kms_key = Some(default_destination_key(namespace, &d.account, &r.region));
            }
        }
        let lists_source_region = d.regions.iter().any(|r| r.region == source_region);
        if d.copy_in_kms_key.is_none() && !lists_source_region {
            d.copy_in_kms_key = Some(default_destination_key(
                namespace,
                &d.account,
                source_region,
            ));
        }
        d
    }

    /// Every region this destination writes to: the source region first (copies come in
    /// there), then its own regions. The one rule for every step, report and plan.
    pub fn touched_regions(&self, source_region: &str) -> Vec<String> {
        let mut all = vec![source_region.to_string()];
        for r in &self.regions {
            if !all.contains(&r.region) {
                all.push(r.region.clone());
            }
        }
        all
    }

    /// Regions whose key the destination stack creates (the config names none for them),
    /// the source region included when the copy-in key is the stack's.
    pub fn stack_key_regions(&self, source_region: &str) -> Vec<String> {
        let mut regions: Vec<String> = self
            .regions
            .iter()
            .filter(|r| r.kms_key.is_none())
            .map(|r| r.region.clone())
            .collect();
        let lists_source_region = self.regions.iter().any(|r| r.region == source_region);
        if self.copy_in_kms_key.is_none() && !lists_source_region {
            regions.insert(0, source_region.to_string());
        }
        regions
    }
}

pub(crate) fn check_destination(
    d: &Destination,
    source: &SourceAccount,
    path: &str,
    p: &mut Problems,
) {
    check_account(&d.account, &format!("{path}.account"), p);
    if d.account == source.account {
        p.add(
            format!("{path}.account"),
            "must differ from source.account: a copy in the production account does not survive its compromise",
        );
    }
    if d.regions.is_empty() {
        p.add(format!("{path}.regions"), "must list at least one region");
    }
    let mut seen = BTreeSet::new();
    for (i, r) in d.regions.iter().enumerate() {
        let rpath = format!("{path}.regions[{i}]");
        check_region(&r.region, &format!("{rpath}.region"), p);
        if !seen.insert(r.region.as_str()) {
            p.add(
                format!("{rpath}.region"),
                format!("region {} is listed twice", r.region),
            );
        }
        if let Some(key) = &r.kms_key {
            check_kms_key(key, &d.account, &r.region, &format!("{rpath}.kms_key"), p);
        }
        for (from, to) in &r.option_groups {
            let field = format!("{rpath}.option_groups.{from}");
            if from.is_empty() || from.len() > 255 {
                p.add(
                    &field,
                    "the source option group name must be 1 to 255 characters",
                );
            }
            if !is_match(&OPTION_GROUP, to) {
                p.add(
                    &field,
                    format!("`{to}` is not an option group name (1 to 255 letters, digits and hyphens, starting with a letter) of account {} in {}", d.account, r.region),
                );
            }
        }
    }
    let lists_source_region = d.regions.iter().any(|r| r.region == source.region);
    match (&d.copy_in_kms_key, lists_source_region) {
        (Some(key), false) => check_kms_key(
            key,
            &d.account,
            &source.region,
            &format!("{path}.copy_in_kms_key"),
            p,
        ),
        (None, false) => {}
        (Some(_), true) => p.add(
            format!("{path}.copy_in_kms_key"),
            format!(
                "remove it: regions lists the source region {}, whose kms_key is used for the copy-in",
                source.region
            ),
        ),
        (None, true) => {}
    }
    d.retention.check(&format!("{path}.retention"), p);
    if d.retention.days.is_none() {
        p.add(
            format!("{path}.retention.days"),
            "required for a destination: it is the vault's floor, the days every copy is kept whatever keep_last, a run input or the source account does (no copy younger is ever deleted); set it to at least the time you need to notice a compromise, such as 35",
        );
    }
}

pub(crate) fn check_schedule(s: &Schedule, path: &str, p: &mut Problems) {
    if !is_match(&SCHEDULE_NAME, &s.name) {
        p.add(
            format!("{path}.name"),
            format!(
                "`{}` must be lowercase letters, digits and hyphens, start with a letter, at most 40 characters",
                s.name
            ),
        );
    }
    if s.include.is_empty() {
        p.add(
            format!("{path}.include"),
            "must list at least one pattern (use \".*\" for every resource)",
        );
    }
    for (field, patterns) in [("include", &s.include), ("exclude", &s.exclude)] {
        for (i, pattern) in patterns.iter().enumerate() {
            if let Err(e) = Regex::new(pattern) {
                let first_line = e.to_string().lines().last().unwrap_or_default().to_string();
                p.add(
                    format!("{path}.{field}[{i}]"),
                    format!("`{pattern}` is not a valid regular expression: {first_line}"),
                );
            }
        }
    }
    if let Some(tag) = &s.opt_in_tag {
        if tag.key.is_empty() || tag.key.len() > 128 {
            p.add(
                format!("{path}.opt_in_tag.key"),
                "must be 1 to 128 characters",
            );
        }
        if tag.value.as_ref().is_some_and(|v| v.len() > 256) {
            p.add(
                format!("{path}.opt_in_tag.value"),
                "must be at most 256 characters",
            );
        }
    }
    if s.interval < HumanDuration::from_hours(1) {
        p.add(
            format!("{path}.interval"),
            format!("must be at least 1h (got {})", s.interval),
        );
    }
    if s.interval > HumanDuration::from_hours(24 * 366) {
        p.add(
            format!("{path}.interval"),
            format!("must be at most 366d (got {})", s.interval),
        );
    }
    if let Some(cron) = &s.cron
        && let Some(problem) = crate::schedule::expression_problem(cron)
    {
        p.add(format!("{path}.cron"), format!("`{cron}` {problem}"));
    }
    s.retention.check(&format!("{path}.retention"), p);
    if s.redshift.is_some() && s.engine != Engine::Redshift {
        p.add(
            format!("{path}.redshift"),
            format!(
                "only for `engine: redshift` (this schedule's engine is {}); remove it",
                s.engine
            ),
        );
    }
}

/// Most AWS calls a step makes at once.
pub const MAX_CALL_CONCURRENCY: u32 = 50;

/// Longest explicit run deadline.
pub const MAX_DEADLINE_SECONDS: u64 = 31 * 24 * 3600;

/// An explicit run deadline must end before the next run of the schedule starts.
pub(crate) fn check_deadline(s: &Settings, schedule: &Schedule, path: &str, p: &mut Problems) {
    let interval = schedule.interval.as_signed().as_secs().max(0) as u64;
    if let Some(d) = s.deadline_seconds
        && d >= interval
    {
        p.add(
            format!("{path}.deadline_seconds"),
            format!(
                "{d} s is not shorter than the interval of schedule `{}` ({interval} s): a run must end before the next one starts",
                schedule.name
            ),
        );
    }
}

pub(crate) fn check_settings(s: &Settings, path: &str, p: &mut Problems) {
    if !(1..=3600).contains(&s.poll_interval_seconds) {
        p.add(
            format!("{path}.poll_interval_seconds"),
            "must be between 1 and 3600",
        );
    }
    let removed = [
        (
            "max_polls",
            s.max_polls.is_some(),
            "was removed: a run now follows snapshots being made until its deadline (the schedule's interval minus a tenth, or settings.deadline_seconds). Delete this line",
        ),
        (
            "max_concurrency",
            s.max_concurrency.is_some(),
            "was removed: the state machines no longer run a Map over items; settings.call_concurrency sets how many AWS calls a step makes at once. Delete this line",
        ),
    ];
    for (name, set, message) in removed {
        if set {
            p.add(format!("{path}.{name}"), message);
        }
    }
    if let Some(d) = s.deadline_seconds
        && !(1..=MAX_DEADLINE_SECONDS).contains(&d)
    {
        p.add(
            format!("{path}.deadline_seconds"),
            format!("must be between 1 and {MAX_DEADLINE_SECONDS} (31 days); omit it to derive the deadline from each schedule's interval"),
        );
    }
    if !(1..=AURORA_COPY_LIMIT).contains(&s.aurora_copy_concurrency) {
        p.add(
            format!("{path}.aurora_copy_concurrency"),
            format!("must be between 1 and {AURORA_COPY_LIMIT} (the AWS limit per region)"),
        );
    }
    if !(1..=RDS_COPY_LIMIT).contains(&s.rds_copy_concurrency) {
        p.add(
            format!("{path}.rds_copy_concurrency"),
            format!("must be between 1 and {RDS_COPY_LIMIT} (the AWS limit per region)"),
        );
    }
    if !(1..=20).contains(&s.max_attempts) {
        p.add(format!("{path}.max_attempts"), "must be between 1 and 20");
    }
    if !(1..=MAX_CALL_CONCURRENCY).contains(&s.call_concurrency) {
        p.add(
            format!("{path}.call_concurrency"),
            format!("must be between 1 and {MAX_CALL_CONCURRENCY}"),
        );
    }
}

/// A schedule's include/exclude patterns and opt-in tag, compiled once per run.
#[derive(Debug, Clone)]
pub struct ResourceFilter {
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    opt_in_tag: Option<TagMatch>,
}

impl ResourceFilter {
    pub fn new(schedule: &Schedule, path: &str) -> Result<Self, Error> {
        let compile = |field: &str, patterns: &[String]| -> Result<Vec<Regex>, Error> {
            patterns
                .iter()
                .enumerate()
                .map(|(i, pattern)| {
                    Regex::new(pattern).map_err(|e| {
                        Error::config(
                            format!("{path}.{field}[{i}]"),
                            format!("`{pattern}` is not a valid regular expression: {e}"),
                        )
                    })
                })
                .collect()
        };
        Ok(ResourceFilter {
            include: compile("include", &schedule.include)?,
            exclude: compile("exclude", &schedule.exclude)?,
            opt_in_tag: schedule.opt_in_tag.clone(),
        })
    }

    /// Include/exclude patterns only (the destination side cannot see the source's tags).
    pub fn matches_id(&self, resource_id: &str) -> bool {
        self.include.iter().any(|r| r.is_match(resource_id))
            && !self.exclude.iter().any(|r| r.is_match(resource_id))
    }

    /// Patterns and the opt-in tag.
    pub fn covers(&self, resource_id: &str, tags: &BTreeMap<String, String>) -> bool {
        self.matches_id(resource_id)
            && self.opt_in_tag.as_ref().is_none_or(|want| {
                tags.get(&want.key)
                    .is_some_and(|v| want.value.as_ref().is_none_or(|w| w == v))
            })
    }
}

#[cfg(test)]
mod tests;
