//! Deterministic snapshot ids. The same (namespace, resource, slot) always gives the same id,
//! so a retried create finds "already exists" instead of making a duplicate.
//!
//! Shape: `sc-<namespace>-<schedule>-<resource>-<YYYYMMDD-HHMM>`, where `<schedule>` is the
//! schedule name without its hyphens (validation keeps these unique within a config), so two
//! schedules covering one database never want the same id, and a destination recognises each
//! schedule's snapshots by prefix. Namespace and schedule part hold no hyphen, so the prefix
//! is unambiguous.
//!
//! The resource part is the resource id verbatim when it is already canonical (lowercase
//! letters, digits, single inner hyphens, at most 63 characters). Any other resource id is
//! sanitised and the id ends in 16 hex digits of a hash of the exact resource id:
//! `...-<sanitised>-<YYYYMMDD-HHMM>-<hash>`. A canonical id ends with the slot (which has a
//! hyphen in its last 13 characters), a sanitised one with the hash (which has none), so the
//! two families never collide.
//!
//! Every id is valid for Aurora, RDS and Redshift snapshot identifiers: starts with a letter,
//! lowercase letters, digits and hyphens, no two hyphens in a row, no trailing hyphen, at most
//! 255 characters.

use jiff::Timestamp;

pub const ID_PREFIX: &str = "sc";
/// Longest resource part kept verbatim; Aurora, RDS and Redshift identifiers are at most 63.
pub const MAX_RESOURCE_PART: usize = 63;
pub const MAX_SNAPSHOT_ID_LEN: usize = 255;

/// `sc-<namespace>-`: every snapshot id of a deployment starts with it.
pub fn namespace_prefix(namespace: &str) -> String {
    format!("{ID_PREFIX}-{namespace}-")
}

/// ElastiCache: the source stack's export bucket in `region` (the only bucket ElastiCache may
/// export to: the exporting account's, in the snapshot's region). `sc-<ns>-export-<account>-<region>`,
/// at most 55 characters.
pub fn export_bucket(namespace: &str, account: &str, region: &str) -> String {
    format!("{ID_PREFIX}-{namespace}-export-{account}-{region}")
}

/// ElastiCache: a destination account's vault bucket in `region` (versioned, Object Lock).
/// `sc-<ns>-vault-<account>-<region>`, at most 54 characters.
pub fn vault_bucket(namespace: &str, account: &str, region: &str) -> String {
    format!("{ID_PREFIX}-{namespace}-vault-{account}-{region}")
}

/// The part of an id that names the schedule: its name without hyphens.
pub fn schedule_part(schedule: &str) -> String {
    schedule.replace('-', "")
}

/// `sc-<namespace>-<schedule>-`: every snapshot id of one schedule starts with it.
pub fn schedule_prefix(namespace: &str, schedule: &str) -> String {
    format!(
        "{}{}-",
        namespace_prefix(namespace),
        schedule_part(schedule)
    )
}

/// The snapshot id for a resource in a slot (the slot's start instant, UTC).
pub fn snapshot_id(
    namespace: &str,
    schedule: &str,
    resource_id: &str,
    slot_start: Timestamp,
) -> String {
    let slot = slot_start.strftime("%Y%m%d-%H%M");
    let prefix = schedule_prefix(namespace, schedule);
    if is_canonical(resource_id) {
        format!("{prefix}{resource_id}-{slot}")
    } else {
        format!(
            "{prefix}{}-{slot}-{:016x}",
            sanitise(resource_id),
            stable_hash(resource_id.as_bytes())
        )
    }
}

/// An on-demand snapshot's id (`snapcourier snapshot-now`): taken outside the interval, so it
/// names the second it was taken, and how many hours it is kept, where the destination can
/// read them (a shared snapshot's tags are not visible to the account it is shared with):
/// `<prefix><resource>-od-<YYYYMMDD>-<HHMMSS>-k<hours>`, or for a resource id that is not
/// canonical `<prefix><sanitised>-od-<YYYYMMDD>-<HHMMSS>-k<hours>-<hash>`. A slot id ends with
/// `-<YYYYMMDD>-<HHMM>` or a hash after it, never with `-k<hours>`, and its time part has four
/// digits, not six, so the families never collide.
pub fn on_demand_id(
    namespace: &str,
    schedule: &str,
    resource_id: &str,
    taken_at: Timestamp,
    keep_hours: u32,
) -> String {
    let at = taken_at.strftime("%Y%m%d-%H%M%S");
    let prefix = schedule_prefix(namespace, schedule);
    if is_canonical(resource_id) {
        format!("{prefix}{resource_id}-od-{at}-k{keep_hours}")
    } else {
        format!(
            "{prefix}{}-od-{at}-k{keep_hours}-{:016x}",
            sanitise(resource_id),
            stable_hash(resource_id.as_bytes())
        )
    }
}

/// What an on-demand id says: when it was taken and for how long it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnDemand {
    pub taken_at: Timestamp,
    pub keep_hours: u32,
}

impl OnDemand {
    /// When snapcourier expires it (at a destination, never before the vault's floor).
    pub fn keep_until(&self) -> Timestamp {
        // At most 999,999 hours (six digits in the id): always within jiff's range.
        self.taken_at
            .checked_add(jiff::SignedDuration::from_hours(i64::from(self.keep_hours)))
            .unwrap_or(Timestamp::MAX)
    }
}

static ON_DEMAND: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"-od-(\d{8}-\d{6})-k(\d{1,6})(?:-[0-9a-f]{16})?$").ok()
});

/// The on-demand part of an id, if it is an on-demand snapshot's.
pub fn parse_on_demand(id: &str) -> Option<OnDemand> {
    let caps = ON_DEMAND.as_ref()?.captures(id)?;
    let at = jiff::civil::DateTime::strptime("%Y%m%d-%H%M%S", caps.get(1)?.as_str()).ok()?;
    let taken_at = at.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    let keep_hours = caps.get(2)?.as_str().parse().ok()?;
    Some(OnDemand {
        taken_at,
        keep_hours,
    })
}

/// What a slot id of one schedule says, read back from the id alone (ElastiCache's exported
/// objects carry nothing else a listing shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotId {
    /// The resource part: the resource id when it was canonical, else its sanitised form and
    /// hash (`<sanitised>-<hash>`): the same for every slot of one resource either way.
    pub resource: String,
    /// The slot's start.
    pub slot: Timestamp,
}

static SLOT: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^(.+)-(\d{8}-\d{4})(?:-([0-9a-f]{16}))?$").ok()
});

/// The resource and slot of `id` when it is a slot id of the schedule (`snapshot_id`'s
/// shape under `schedule_prefix`); `None` for anything else, on-demand ids included.
pub fn parse_slot_id(namespace: &str, schedule: &str, id: &str) -> Option<SlotId> {
    let rest = id.strip_prefix(&schedule_prefix(namespace, schedule))?;
    if parse_on_demand(id).is_some() || !is_valid_snapshot_id(id) {
        return None;
    }
    let caps = SLOT.as_ref()?.captures(rest)?;
    let at = jiff::civil::DateTime::strptime("%Y%m%d-%H%M", caps.get(2)?.as_str()).ok()?;
    let slot = at.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    let part = caps.get(1)?.as_str();
    let resource = match caps.get(3) {
        Some(hash) => format!("{part}-{}", hash.as_str()),
        None => part.to_string(),
    };
    Some(SlotId { resource, slot })
}

/// Whether an id satisfies the identifier rules shared by every engine.
pub fn is_valid_snapshot_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_SNAPSHOT_ID_LEN
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.contains("--")
        && !id.ends_with('-')
}

fn is_canonical(resource_id: &str) -> bool {
    !resource_id.is_empty()
        && resource_id.len() <= MAX_RESOURCE_PART
        && resource_id.starts_with(|c: char| c.is_ascii_lowercase())
        && resource_id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// Lowercase, every other character a hyphen, no runs of hyphens, none at either end.
pub fn sanitise_part(resource_id: &str) -> String {
    sanitise(resource_id)
}

fn sanitise(resource_id: &str) -> String {
    let mut out = String::with_capacity(resource_id.len());
    for c in resource_id.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
        if out.len() >= MAX_RESOURCE_PART {
            break;
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "x".to_string()
    } else {
        trimmed.to_string()
    }
}

/// 64-bit FNV-1a. Written out rather than taken from a crate because ids must stay the same
/// across every future version of snapcourier and its dependencies.
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_slot_id_reads_back_its_resource_and_slot() {
        let slot: Timestamp = "2026-12-02T06:00:00Z".parse().unwrap();
        let id = super::snapshot_id("demo", "cache-hourly", "carts-valkey", slot);
        assert_eq!(
            super::parse_slot_id("demo", "cache-hourly", &id),
            Some(super::SlotId {
                resource: "carts-valkey".into(),
                slot
            })
        );
        // Not canonical: the sanitised part and the hash, the same for every slot.
        let a = super::snapshot_id("demo", "cache-hourly", "Carts_Valkey", slot);
        let b = super::snapshot_id(
            "demo",
            "cache-hourly",
            "Carts_Valkey",
            slot + jiff::SignedDuration::from_hours(1),
        );
        let (pa, pb) = (
            super::parse_slot_id("demo", "cache-hourly", &a).unwrap(),
            super::parse_slot_id("demo", "cache-hourly", &b).unwrap(),
        );
        assert_eq!(pa.resource, pb.resource);
        assert_ne!(pa.resource, "carts-valkey");
        assert_eq!(pa.slot, slot);
        // Another schedule's, an on-demand one, and anything else: not this schedule's.
        assert_eq!(super::parse_slot_id("demo", "other", &id), None);
        let od = super::on_demand_id("demo", "cache-hourly", "carts-valkey", slot, 24);
        assert_eq!(super::parse_slot_id("demo", "cache-hourly", &od), None);
        for junk in [
            "sc-demo-cachehourly-",
            "sc-demo-cachehourly-x-2026",
            "sc-demo-cachehourly-x-20261302-9999",
        ] {
            assert_eq!(
                super::parse_slot_id("demo", "cache-hourly", junk),
                None,
                "{junk}"
            );
        }
    }

    #[test]
    fn bucket_names_are_valid_s3_names_at_the_longest_namespace_and_region() {
        let ns = "a".repeat(crate::config::MAX_NAMESPACE_LEN);
        for name in [
            super::export_bucket(&ns, "111111111111", "ap-southeast-5"),
            super::vault_bucket(&ns, "222222222222", "ap-southeast-5"),
        ] {
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
        }
    }

    use super::*;
    use proptest::prelude::*;

    fn slot(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn canonical_resource_ids_are_kept_verbatim() {
        let id = snapshot_id(
            "prod",
            "aurora-daily",
            "orders-db",
            slot("2026-11-22T03:00:00Z"),
        );
        assert_eq!(id, "sc-prod-auroradaily-orders-db-20261122-0300");
    }

    #[test]
    fn awkward_resource_ids_are_sanitised_and_hashed() {
        let t = slot("2026-11-22T03:00:00Z");
        let upper = snapshot_id("prod", "daily", "Orders--DB-", t);
        assert!(
            upper.starts_with("sc-prod-daily-orders-db-20261122-0300-"),
            "{upper}"
        );
        assert!(is_valid_snapshot_id(&upper));
        assert_ne!(upper, snapshot_id("prod", "daily", "orders-db", t));
        assert_ne!(upper, snapshot_id("prod", "daily", "Orders-DB", t));
        let long = "a".repeat(63) + "-B";
        assert!(is_valid_snapshot_id(&snapshot_id(
            "prod",
            &"s".repeat(40),
            &long,
            t
        )));
    }

    #[test]
    fn two_schedules_on_one_database_never_share_an_id() {
        let t = slot("2026-11-22T00:00:00Z");
        let hourly = snapshot_id("prod", "hourly", "orders-db", t);
        assert_ne!(hourly, snapshot_id("prod", "daily", "orders-db", t));
        assert!(hourly.starts_with(&schedule_prefix("prod", "hourly")));
        assert!(!hourly.starts_with(&schedule_prefix("prod", "daily")));
    }

    #[test]
    fn on_demand_ids_carry_their_time_and_keep_and_never_look_like_slot_ids() {
        let at: Timestamp = "2026-12-01T14:03:27Z".parse().unwrap();
        let id = on_demand_id("prod", "aurora-daily", "orders-db", at, 168);
        assert_eq!(id, "sc-prod-auroradaily-orders-db-od-20261201-140327-k168");
        assert!(is_valid_snapshot_id(&id));
        let od = parse_on_demand(&id).unwrap();
        assert_eq!(od.taken_at, at);
        assert_eq!(od.keep_hours, 168);
        assert_eq!(od.keep_until(), "2026-12-08T14:03:27Z".parse().unwrap());
        let awkward = on_demand_id("prod", "aurora-daily", "Orders_DB", at, 2);
        assert!(is_valid_snapshot_id(&awkward), "{awkward}");
        assert_eq!(parse_on_demand(&awkward).unwrap().keep_hours, 2);
        // Slot ids, even of a database named like an on-demand suffix, are not on-demand.
        let slot = snapshot_id("prod", "aurora-daily", "orders-db", at);
        assert!(parse_on_demand(&slot).is_none(), "{slot}");
        let tricky = snapshot_id("prod", "aurora-daily", "x-od-20261201-140327-k1", at);
        assert!(parse_on_demand(&tricky).is_none(), "{tricky}");
    }

    #[test]
    fn validity_rules() {
        assert_eq!(schedule_part("aurora-daily"), "auroradaily");
        for bad in ["", "1abc", "a--b", "a-", "A", "a_b", &"a".repeat(256)] {
            assert!(!is_valid_snapshot_id(bad), "{bad}");
        }
        assert!(is_valid_snapshot_id("sc-a-b-20260101-0000"));
    }

    fn slot_strategy() -> impl Strategy<Value = Timestamp> {
        (0i64..4_000_000_000).prop_map(|s| Timestamp::from_second(s - s % 60).unwrap())
    }

    proptest! {
        #[test]
        fn every_id_is_valid(ns in "[a-z][a-z0-9]{0,15}", schedule in "[a-z][a-z0-9-]{0,39}", resource in ".{1,80}", t in slot_strategy()) {
            let id = snapshot_id(&ns, &schedule, &resource, t);
            prop_assert!(is_valid_snapshot_id(&id), "{}", id);
            prop_assert!(id.starts_with(&schedule_prefix(&ns, &schedule)));
        }

        #[test]
        fn same_inputs_same_id(ns in "[a-z][a-z0-9]{0,15}", resource in "[A-Za-z0-9-]{1,70}", t in slot_strategy()) {
            prop_assert_eq!(snapshot_id(&ns, "daily", &resource, t), snapshot_id(&ns, "daily", &resource, t));
        }

        #[test]
        fn distinct_inputs_distinct_ids(
            ns1 in "[a-z][a-z0-9]{0,3}", ns2 in "[a-z][a-z0-9]{0,3}",
            s1 in "[a-z][a-z0-9]{0,3}", s2 in "[a-z][a-z0-9]{0,3}",
            r1 in "[A-Za-z0-9-]{1,12}", r2 in "[A-Za-z0-9-]{1,12}",
            t1 in 0i64..3, t2 in 0i64..3,
        ) {
            // Schedule names here have no hyphen: validation keeps schedule parts unique.
            let a = (ns1, s1, r1, Timestamp::from_second(t1 * 3600).unwrap());
            let b = (ns2, s2, r2, Timestamp::from_second(t2 * 3600).unwrap());
            prop_assume!(a != b);
            prop_assert_ne!(snapshot_id(&a.0, &a.1, &a.2, a.3), snapshot_id(&b.0, &b.1, &b.2, b.3));
        }
    }
}
