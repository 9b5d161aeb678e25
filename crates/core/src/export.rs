//! ElastiCache exports as objects: a snapshot's `.rdb` files, one per shard
//! (`<snapshot id>-<shard>.rdb`, as ElastiCache names them), and the manifest the source
//! writes once the export is complete, `<snapshot id>.manifest-<YYYYMMDDTHHMMSSZ>.json`.
//!
//! The manifest is the export's completion marker (ElastiCache writes the objects one by one,
//! so objects alone may be a partial export) and says what a listing cannot: which objects,
//! their sizes, and when the data was captured, which its key also carries so that one listing
//! page tells a run the capture time of a thousand exports. The vault copies it last, so a
//! vault export is complete exactly when its manifest is there.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::naming::SlotId;
use crate::snapshot::DbEngine;

pub const MANIFEST_VERSION: u32 = 1;
const MANIFEST_INFIX: &str = ".manifest-";
const MANIFEST_SUFFIX: &str = ".json";
const TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// One object of an export, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedFile {
    pub key: String,
    pub size: i64,
}

/// What an export holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportManifest {
    pub version: u32,
    /// The snapshot's id (the objects' prefix).
    pub snapshot: String,
    /// The cache it is a snapshot of.
    pub cache: String,
    /// When ElastiCache took the snapshot (its creation time).
    pub captured: Timestamp,
    pub objects: Vec<ExportedFile>,
    /// The snapshot's engine: a cache seeded from the objects needs one that reads them
    /// (absent from manifests written before drills covered ElastiCache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<DbEngine>,
}

impl ExportManifest {
    /// The manifest's object key.
    pub fn key(&self) -> String {
        manifest_key(&self.snapshot, self.captured)
    }

    /// Whether the objects are those of the snapshot (`<snapshot>-<digits>.rdb`), at least one.
    pub fn is_well_formed(&self) -> bool {
        self.version == MANIFEST_VERSION
            && !self.objects.is_empty()
            && self
                .objects
                .iter()
                .all(|o| shard_object_of(&o.key) == Some(self.snapshot.as_str()) && o.size >= 0)
    }
}

/// The default cluster-mode parameter group of an engine and version
/// (`default.valkey8.cluster.on`, `default.redis7.cluster.on`, `default.redis6.x.cluster.on`),
/// which a cache seeded from several shards' objects needs; `None` for an engine or version
/// this does not know (the restore then leaves the choice to ElastiCache).
pub fn cluster_parameter_group(engine: &DbEngine) -> Option<String> {
    let version = engine.version.as_deref()?;
    let mut parts = version.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor = parts.next();
    let family = match (engine.name.as_str(), major) {
        ("valkey", 7..) => format!("valkey{major}"),
        ("redis", 7..) => format!("redis{major}"),
        ("redis", 6) => "redis6.x".to_string(),
        ("redis", 3..=5) => format!("redis{major}.{}", minor?),
        _ => return None,
    };
    Some(format!("default.{family}.cluster.on"))
}

/// The engine version to ask for when seeding a cache: a full version as the snapshot says
/// it; `None` (the service's default, which reads older data) when only the major is known.
pub fn restore_engine_version(engine: &DbEngine) -> Option<String> {
    engine.version.clone().filter(|v| v.contains('.'))
}

/// `<snapshot>.manifest-<YYYYMMDDTHHMMSSZ>.json`.
pub fn manifest_key(snapshot: &str, captured: Timestamp) -> String {
    format!(
        "{snapshot}{MANIFEST_INFIX}{}{MANIFEST_SUFFIX}",
        captured.strftime(TIME_FORMAT)
    )
}

/// The snapshot id and capture time a manifest's key names.
pub fn parse_manifest_key(key: &str) -> Option<(&str, Timestamp)> {
    let stem = key.strip_suffix(MANIFEST_SUFFIX)?;
    let (snapshot, at) = stem.rsplit_once(MANIFEST_INFIX)?;
    let captured = jiff::civil::DateTime::strptime(TIME_FORMAT, at)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()?
        .timestamp();
    (!snapshot.is_empty()).then_some((snapshot, captured))
}

/// The snapshot id a shard object belongs to: `<id>-<digits>.rdb`.
pub fn shard_object_of(key: &str) -> Option<&str> {
    let stem = key.strip_suffix(".rdb")?;
    let (id, shard) = stem.rsplit_once('-')?;
    (!id.is_empty() && !shard.is_empty() && shard.chars().all(|c| c.is_ascii_digit())).then_some(id)
}

/// Whether an export is one the destination takes as real: its capture time falls in the
/// slot its id names (as a share's creation time must; ElastiCache stamps the snapshot a
/// moment after the take named it, hence the grace), so a compromised source cannot pass an
/// old slot's id off as a new export or make more than one export per cache and slot.
pub fn captured_in_slot(slot: &SlotId, captured: Timestamp, interval: SignedDuration) -> bool {
    captured >= slot.slot && captured < slot.slot + interval + crate::plan::SLOT_GRACE
}

/// What a real export's id says: the cache (its id part, `naming::SlotId::resource`) and
/// whether it is an on-demand snapshot's (`snapcourier snapshot-now`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPoint {
    pub resource: String,
    pub on_demand: bool,
}

/// The export of `id` captured at `captured`, when it is real: a slot id of the schedule
/// captured in its slot, or an on-demand id captured within the grace after the second it
/// names (as `snapshot-now` takes it). Anything else is not an export of the schedule.
pub fn export_point(
    namespace: &str,
    schedule: &str,
    id: &str,
    captured: Timestamp,
    interval: SignedDuration,
) -> Option<ExportPoint> {
    if let Some(slot) = crate::naming::parse_slot_id(namespace, schedule, id) {
        return captured_in_slot(&slot, captured, interval).then_some(ExportPoint {
            resource: slot.resource,
            on_demand: false,
        });
    }
    let od = crate::naming::parse_on_demand(id)?;
    let rest = id.strip_prefix(&crate::naming::schedule_prefix(namespace, schedule))?;
    let (resource, tail) = rest.split_once("-od-")?;
    // A sanitised id ends in its hash, as slot ids do: keep it with the resource part.
    let hash = tail
        .rsplit_once('-')
        .map(|(_, h)| h)
        .filter(|h| h.len() == 16 && !h.starts_with('k'));
    let resource = match hash {
        Some(h) => format!("{resource}-{h}"),
        None => resource.to_string(),
    };
    let in_time = captured >= od.taken_at && captured <= od.taken_at + crate::plan::SLOT_GRACE;
    in_time.then_some(ExportPoint {
        resource,
        on_demand: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_manifest_key_reads_back_its_snapshot_and_capture_time() {
        let key = manifest_key(
            "sc-demo-cachedaily-carts-valkey-20261202-0000",
            at("2026-12-02T03:04:05Z"),
        );
        assert_eq!(
            key,
            "sc-demo-cachedaily-carts-valkey-20261202-0000.manifest-20261202T030405Z.json"
        );
        assert_eq!(
            parse_manifest_key(&key),
            Some((
                "sc-demo-cachedaily-carts-valkey-20261202-0000",
                at("2026-12-02T03:04:05Z")
            ))
        );
        for junk in [
            "sc-demo-x.manifest-2026.json",
            "sc-demo-x-0001.rdb",
            ".manifest-20261202T030405Z.json",
            "sc-demo-x.manifest-20261202T030405Z.txt",
        ] {
            assert_eq!(parse_manifest_key(junk), None, "{junk}");
        }
    }

    #[test]
    fn shard_objects_belong_to_their_snapshot_and_nothing_else_does() {
        assert_eq!(
            shard_object_of("sc-demo-x-20261202-0000-0003.rdb"),
            Some("sc-demo-x-20261202-0000")
        );
        for junk in [
            "sc-demo-x.rdb",
            "sc-demo-x-junk.rdb",
            "sc-demo-x-0001.rdb.tmp",
            "-0001.rdb",
        ] {
            assert_eq!(shard_object_of(junk), None, "{junk}");
        }
        let m = ExportManifest {
            version: MANIFEST_VERSION,
            snapshot: "sc-demo-x-20261202-0000".into(),
            cache: "x".into(),
            captured: at("2026-12-02T03:04:05Z"),
            engine: None,
            objects: vec![ExportedFile {
                key: "sc-demo-x-20261202-0000-0001.rdb".into(),
                size: 10,
            }],
        };
        assert!(m.is_well_formed());
        let mut other = m.clone();
        other.objects[0].key = "sc-demo-y-20261202-0000-0001.rdb".into();
        assert!(!other.is_well_formed());
        let mut empty = m.clone();
        empty.objects.clear();
        assert!(!empty.is_well_formed());
    }

    #[test]
    fn on_demand_exports_are_real_when_captured_right_after_the_second_they_name() {
        let taken = at("2026-12-02T10:11:12Z");
        let day = SignedDuration::from_hours(24);
        let id = crate::naming::on_demand_id("demo", "cache-daily", "carts-valkey", taken, 48);
        assert_eq!(
            export_point(
                "demo",
                "cache-daily",
                &id,
                taken + SignedDuration::from_secs(3),
                day
            ),
            Some(ExportPoint {
                resource: "carts-valkey".into(),
                on_demand: true
            })
        );
        assert_eq!(
            export_point(
                "demo",
                "cache-daily",
                &id,
                taken - SignedDuration::from_secs(1),
                day
            ),
            None
        );
        assert_eq!(
            export_point(
                "demo",
                "cache-daily",
                &id,
                taken + SignedDuration::from_hours(1),
                day
            ),
            None
        );
        assert_eq!(export_point("demo", "other", &id, taken, day), None);
        // A sanitised cache id keeps its hash, the same as its slot ids'.
        let od = crate::naming::on_demand_id("demo", "cache-daily", "Carts_Valkey", taken, 48);
        let slot = crate::naming::snapshot_id(
            "demo",
            "cache-daily",
            "Carts_Valkey",
            at("2026-12-02T00:00:00Z"),
        );
        assert_eq!(
            export_point("demo", "cache-daily", &od, taken, day)
                .unwrap()
                .resource,
            crate::naming::parse_slot_id("demo", "cache-daily", &slot)
                .unwrap()
                .resource
        );
    }

    #[test]
    fn only_a_capture_inside_the_named_slot_is_a_real_export() {
        let slot = SlotId {
            resource: "x".into(),
            slot: at("2026-12-02T00:00:00Z"),
        };
        let day = SignedDuration::from_hours(24);
        assert!(captured_in_slot(&slot, at("2026-12-02T00:00:00Z"), day));
        assert!(captured_in_slot(&slot, at("2026-12-02T23:59:59Z"), day));
        // Stamped a moment after the take named it, across the slot's end: still its slot's.
        assert!(captured_in_slot(&slot, at("2026-12-03T00:00:05Z"), day));
        assert!(!captured_in_slot(&slot, at("2026-12-03T00:10:00Z"), day));
        assert!(!captured_in_slot(&slot, at("2026-12-01T23:59:59Z"), day));
    }

    #[test]
    fn seeded_caches_get_the_default_cluster_parameter_group_of_their_family() {
        let e = |name: &str, version: Option<&str>| DbEngine {
            name: name.into(),
            version: version.map(str::to_string),
        };
        let cases = [
            (e("valkey", Some("8.0")), Some("default.valkey8.cluster.on")),
            (e("valkey", Some("7.2")), Some("default.valkey7.cluster.on")),
            (e("valkey", Some("8")), Some("default.valkey8.cluster.on")),
            (e("redis", Some("7.1")), Some("default.redis7.cluster.on")),
            (e("redis", Some("6.2")), Some("default.redis6.x.cluster.on")),
            (
                e("redis", Some("5.0.6")),
                Some("default.redis5.0.cluster.on"),
            ),
            (e("redis", Some("5")), None),
            (e("redis", None), None),
            (e("memcached", Some("1.6.22")), None),
        ];
        for (engine, want) in cases {
            assert_eq!(
                cluster_parameter_group(&engine).as_deref(),
                want,
                "{engine:?}"
            );
        }
        assert_eq!(
            restore_engine_version(&e("valkey", Some("8.0"))).as_deref(),
            Some("8.0")
        );
        assert_eq!(restore_engine_version(&e("valkey", Some("8"))), None);
    }
}
