//! A plan's capacity checks, before a limit bites: RDS's manual snapshot quotas against what
//! the config's retention keeps in steady state, in every region a side writes to; and, on a
//! destination, the copies a day needs against what AWS's copy slots allow in a day.

use std::collections::BTreeMap;

use jiff::SignedDuration;
use serde::Serialize;
use snapcourier_aws::AwsContext;
use snapcourier_aws::engines::list_owned;
use snapcourier_aws::rds::account_quotas;
use snapcourier_core::retention::steady_state;
use snapcourier_core::{Config, Engine, Error};

/// How long the copy check assumes one snapshot copy takes. Copies take minutes to hours
/// with the snapshot's size and whether they cross regions; the plan prints it beside the
/// figure it gives.
pub const ASSUMED_COPY_MINUTES: u64 = 30;

/// One manual snapshot quota in one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaCheck {
    pub region: String,
    /// `ManualClusterSnapshots` (Aurora) or `ManualSnapshots` (RDS instances).
    pub quota: String,
    pub max: i64,
    /// Manual snapshots of this kind in the account and region now (anyone's).
    pub used: i64,
    /// Of those, this deployment's.
    pub ours: i64,
    /// What this deployment's retention keeps there in steady state (and, in a source region
    /// where copies only pass through, the copy slots' worth in transit).
    pub steady_state: i64,
    /// Everyone else's plus our steady state.
    pub needed: i64,
    pub over: bool,
    /// The settings that decide our share.
    pub settings: Vec<String>,
}

/// Copies a destination needs per day in one region against what its copy slots allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyCheck {
    pub region: String,
    pub engine: Engine,
    pub copies_per_day: u64,
    pub slots: u32,
    pub assumed_copy_minutes: u64,
    pub capacity_per_day: u64,
    pub over: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Capacity {
    pub quotas: Vec<QuotaCheck>,
    pub copies: Vec<CopyCheck>,
}

impl Capacity {
    pub fn over_quota(&self) -> bool {
        self.quotas.iter().any(|q| q.over)
    }
}

fn quota_name(engine: Engine) -> Option<&'static str> {
    engine.facts().manual_snapshot_quota
}

/// Steady-state snapshots per engine, with the settings that decide them: per schedule,
/// covered databases times what `retention` keeps of one.
struct Need {
    count: i64,
    settings: Vec<String>,
}

fn needs<'a>(
    config: &'a Config,
    covered: &BTreeMap<String, usize>,
    retention_of: impl Fn(usize) -> (&'a snapcourier_core::retention::RetentionPolicy, String),
) -> BTreeMap<Engine, Need> {
    let mut out: BTreeMap<Engine, Need> = BTreeMap::new();
    for (i, s) in config.schedules.iter().enumerate() {
        if quota_name(s.engine).is_none() {
            continue;
        }
        let (policy, setting) = retention_of(i);
        let databases = covered.get(&s.name).copied().unwrap_or(0);
        let keep = i64::from(steady_state(policy, s.interval.as_signed()));
        let need = out.entry(s.engine).or_insert(Need {
            count: 0,
            settings: Vec::new(),
        });
        need.count += i64::try_from(databases).unwrap_or(i64::MAX) * keep;
        if !need.settings.contains(&setting) {
            need.settings.push(setting);
        }
    }
    out
}

async fn check_region(
    ctx: &AwsContext,
    config: &Config,
    region: &str,
    needs: &BTreeMap<Engine, Need>,
    transit: &dyn Fn(Engine) -> i64,
) -> Result<Vec<QuotaCheck>, Error> {
    if needs.is_empty() {
        return Ok(Vec::new());
    }
    let quotas = account_quotas(ctx, region).await?;
    let mut out = Vec::new();
    for (engine, need) in needs {
        let Some(name) = quota_name(*engine) else {
            continue;
        };
        let Some(q) = quotas.iter().find(|q| q.name == name) else {
            continue;
        };
        let ours = list_owned(ctx, *engine, region)
            .await?
            .iter()
            .filter(|s| s.is_owned_by(&config.namespace))
            .count();
        let ours = i64::try_from(ours).unwrap_or(i64::MAX);
        let steady = need.count + transit(*engine);
        let needed = (q.used - ours).max(0) + steady;
        out.push(QuotaCheck {
            region: region.to_string(),
            quota: name.to_string(),
            max: q.max,
            used: q.used,
            ours,
            steady_state: steady,
            needed,
            over: needed > q.max,
            settings: need.settings.clone(),
        });
    }
    Ok(out)
}

/// The source account's quotas in the source region. `covered`: databases per schedule.
pub async fn source_capacity(
    ctx: &AwsContext,
    config: &Config,
    covered: &BTreeMap<String, usize>,
) -> Result<Capacity, Error> {
    let needs = needs(config, covered, |i| {
        (
            &config.schedules[i].retention,
            format!("schedules[{i}].retention"),
        )
    });
    Ok(Capacity {
        quotas: check_region(ctx, config, &config.source.region, &needs, &|_| 0).await?,
        copies: Vec::new(),
    })
}

/// A destination account's quotas and copy capacity in each region it writes to.
/// `covered`: databases per schedule (those the source shares).
pub async fn destination_capacity(
    ctx: &AwsContext,
    config: &Config,
    account: &str,
    covered: &BTreeMap<String, usize>,
) -> Result<Capacity, Error> {
    let index = config
        .destinations
        .iter()
        .position(|d| d.account == account)
        .ok_or_else(|| Error::config("--destination", format!("no destination {account}")))?;
    let d = &config.destinations[index];
    let needs = needs(config, covered, |_| {
        (&d.retention, format!("destinations[{index}].retention"))
    });
    let mut capacity = Capacity::default();
    let lists_source = d.regions.iter().any(|r| r.region == config.source.region);
    if !lists_source {
        // Copies only pass through the source region: at most the copy slots' worth at once.
        let transit = |e: Engine| config.settings.copy_limit(e).map_or(0, i64::from);
        let passing: BTreeMap<Engine, Need> = needs
            .keys()
            .map(|e| {
                let setting = e.facts().copy_concurrency_setting.unwrap_or("settings");
                (
                    *e,
                    Need {
                        count: 0,
                        settings: vec![setting.to_string()],
                    },
                )
            })
            .collect();
        capacity
            .quotas
            .extend(check_region(ctx, config, &config.source.region, &passing, &transit).await?);
    }
    for r in &d.regions {
        capacity
            .quotas
            .extend(check_region(ctx, config, &r.region, &needs, &|_| 0).await?);
    }
    // Copies per day, per engine, into each region (the source region's copy-in included).
    let per_day = |engine: Engine| -> u64 {
        config
            .schedules
            .iter()
            .filter(|s| s.engine == engine)
            .map(|s| {
                let databases = covered.get(&s.name).copied().unwrap_or(0) as u64;
                let per_day = (SignedDuration::from_hours(24).as_secs()
                    / s.interval.as_secs().max(1))
                .max(1) as u64;
                databases * per_day
            })
            .sum()
    };
    for region in d.touched_regions(&config.source.region) {
        for engine in needs.keys() {
            let Some(slots) = config.settings.copy_limit(*engine) else {
                continue;
            };
            let copies_per_day = per_day(*engine);
            let capacity_per_day = u64::from(slots) * (24 * 60 / ASSUMED_COPY_MINUTES);
            capacity.copies.push(CopyCheck {
                region: region.clone(),
                engine: *engine,
                copies_per_day,
                slots,
                assumed_copy_minutes: ASSUMED_COPY_MINUTES,
                capacity_per_day,
                over: copies_per_day > capacity_per_day,
            });
        }
    }
    Ok(capacity)
}
