use super::*;
use proptest::prelude::*;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn cand(
    id: &str,
    resource: &str,
    created: Timestamp,
    owned: bool,
    available: bool,
) -> RetentionCandidate {
    RetentionCandidate {
        id: id.into(),
        resource: resource.into(),
        created,
        owned,
        available,
    }
}

fn days_ago(now: Timestamp, days: i64) -> Timestamp {
    now - SignedDuration::from_hours(24 * days)
}

#[test]
fn the_steady_state_is_what_the_policy_keeps_of_a_database() {
    let daily = SignedDuration::from_hours(24);
    let policy = |days, keep_last, tiers| RetentionPolicy {
        days,
        keep_last,
        tiers,
    };
    // Daily snapshots: seven younger than 7 days (keep_last 3 adds none).
    assert_eq!(steady_state(&policy(Some(7), 3, None), daily), 7);
    // No time bound: keep_last alone.
    assert_eq!(steady_state(&policy(None, 5, None), daily), 5);
    // Hourly snapshots for a day: 24.
    assert_eq!(
        steady_state(&policy(Some(1), 1, None), SignedDuration::from_hours(1)),
        24
    );
    // Tiers add the weeks and months beyond the window (the example's destination policy:
    // 35 days, then 8 weeks and 12 months).
    let tiers = Tiers {
        daily: 0,
        weekly: 8,
        monthly: 12,
        yearly: 0,
    };
    let n = steady_state(&policy(Some(35), 7, Some(tiers)), daily);
    assert!((35 + 3..=35 + 8 + 12).contains(&n), "{n}");
}

#[test]
fn the_floor_takes_young_deletes_out_of_a_plan_and_returns_them() {
    let now = t("2026-11-22T12:00:00Z");
    // A policy that keeps only the newest: what a forged run would ask for.
    let policy = RetentionPolicy {
        days: None,
        keep_last: 1,
        tiers: None,
    };
    let cs: Vec<_> = (0..10)
        .map(|d| cand(&format!("s{d:02}"), "db", days_ago(now, d), true, true))
        .collect();
    let mut plan = plan_retention(&policy, &cs, now);
    assert_eq!(plan.delete.len(), 9);
    let refused = apply_floor(&mut plan, &cs, Some(7), now);
    // Seven days and older may go; one to six days old may not.
    assert_eq!(plan.delete, vec!["s09", "s08", "s07"]);
    let refused: Vec<&str> = refused.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(refused, vec!["s06", "s05", "s04", "s03", "s02", "s01"]);
}

#[test]
fn keeps_recent_and_keep_last_deletes_the_rest_oldest_first() {
    let now = t("2026-11-22T12:00:00Z");
    let policy = RetentionPolicy {
        days: Some(7),
        keep_last: 2,
        tiers: None,
    };
    let cs: Vec<_> = (0..12)
        .map(|d| cand(&format!("s{d:02}"), "db", days_ago(now, d), true, true))
        .collect();
    let plan = plan_retention(&policy, &cs, now);
    assert_eq!(plan.delete, vec!["s11", "s10", "s09", "s08", "s07"]);
    assert_eq!(plan.keep["s00"], KeepReason::KeepLast);
    assert_eq!(plan.keep["s06"], KeepReason::WithinDays);
}

#[test]
fn keep_last_protects_old_snapshots_of_a_quiet_database() {
    let now = t("2026-11-22T12:00:00Z");
    let policy = RetentionPolicy {
        days: Some(1),
        keep_last: 3,
        tiers: None,
    };
    let cs: Vec<_> = (0..4)
        .map(|i| cand(&format!("s{i}"), "db", days_ago(now, 100 + i), true, true))
        .collect();
    assert_eq!(plan_retention(&policy, &cs, now).delete, vec!["s3"]);
}

#[test]
fn policies_apply_per_database() {
    let now = t("2026-11-22T12:00:00Z");
    let policy = RetentionPolicy {
        days: None,
        keep_last: 1,
        tiers: None,
    };
    let cs = vec![
        cand("a1", "a", days_ago(now, 1), true, true),
        cand("a2", "a", days_ago(now, 2), true, true),
        cand("b1", "b", days_ago(now, 5), true, true),
    ];
    assert_eq!(plan_retention(&policy, &cs, now).delete, vec!["a2"]);
}

#[test]
fn never_touches_unowned_or_unavailable() {
    let now = t("2026-11-22T12:00:00Z");
    let policy = RetentionPolicy {
        days: None,
        keep_last: 1,
        tiers: None,
    };
    let cs = vec![
        cand("mine", "db", days_ago(now, 1), true, true),
        cand("theirs", "db", days_ago(now, 300), false, true),
        cand("creating", "db", days_ago(now, 300), true, false),
    ];
    let plan = plan_retention(&policy, &cs, now);
    assert!(plan.delete.is_empty());
    assert_eq!(plan.keep["theirs"], KeepReason::NotOwned);
    assert_eq!(plan.keep["creating"], KeepReason::NotAvailable);
}

#[test]
fn grandfather_father_son_tiers() {
    // Daily snapshots at 03:00 for 400 days; keep 7 daily, 4 weekly, 12 monthly, 2 yearly.
    let now = t("2026-11-22T12:00:00Z");
    let policy = RetentionPolicy {
        days: None,
        keep_last: 1,
        tiers: Some(Tiers {
            daily: 7,
            weekly: 4,
            monthly: 12,
            yearly: 2,
        }),
    };
    let cs: Vec<_> = (0..400)
        .map(|d| {
            cand(
                &format!("s{d:03}"),
                "db",
                days_ago(now, d) - SignedDuration::from_hours(9),
                true,
                true,
            )
        })
        .collect();
    let plan = plan_retention(&policy, &cs, now);
    let kept: BTreeSet<_> = cs
        .iter()
        .filter(|c| !plan.delete.contains(&c.id))
        .map(|c| c.id.clone())
        .collect();
    // 7 daily (s000..s006); weekly adds the newest of 3 older ISO weeks; monthly adds the newest
    // of each older month; yearly adds the newest of 2025 (monthly already holds 2026's newest).
    for d in 0..7 {
        assert!(kept.contains(&format!("s{d:03}")));
    }
    assert!(kept.len() <= 7 + 4 + 12 + 2);
    assert!(kept.len() >= 12, "{kept:?}");
    // The newest snapshot of October 2026 (31 Oct, 22 days before 22 Nov) is a monthly keeper.
    assert_eq!(plan.keep["s022"], KeepReason::Monthly);
    // Newest of 2025: 31 Dec 2025 is 326 days before 22 Nov 2026.
    assert!(matches!(
        plan.keep["s326"],
        KeepReason::Monthly | KeepReason::Yearly
    ));
    // Something in the middle of a month long ago goes.
    assert!(plan.delete.contains(&"s200".to_string()));
}

fn candidates() -> impl Strategy<Value = Vec<RetentionCandidate>> {
    prop::collection::vec(
        (0u8..3, 0i64..800 * 24, any::<bool>(), any::<bool>()),
        0..60,
    )
    .prop_map(|raw| {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        raw.into_iter()
            .enumerate()
            .map(|(i, (r, hours, owned, available))| RetentionCandidate {
                id: format!("s{i}"),
                resource: format!("db{r}"),
                created: now - SignedDuration::from_hours(hours),
                owned,
                available,
            })
            .collect()
    })
}

fn policies() -> impl Strategy<Value = RetentionPolicy> {
    (
        prop::option::of(1u32..400),
        1u32..10,
        prop::option::of((0u32..10, 0u32..6, 0u32..13, 0u32..3)),
    )
        .prop_map(|(days, keep_last, tiers)| RetentionPolicy {
            days,
            keep_last,
            tiers: tiers.map(|(daily, weekly, monthly, yearly)| Tiers {
                daily,
                weekly,
                monthly,
                yearly,
            }),
        })
}

proptest! {
    /// The vault's floor holds whatever the policy (a forged run's, a careless edit's) and
    /// whatever the snapshots: no copy younger than the floor is ever deleted, and every
    /// delete the floor refuses is returned for the report.
    #[test]
    fn no_copy_younger_than_the_floor_is_ever_deleted(
        policy in policies(),
        cs in candidates(),
        floor in 1u32..60,
    ) {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut plan = plan_retention(&policy, &cs, now);
        let planned: BTreeSet<String> = plan.delete.iter().cloned().collect();
        let refused = apply_floor(&mut plan, &cs, Some(floor), now);
        let horizon = now - SignedDuration::from_hours(24 * i64::from(floor));
        let by_id: BTreeMap<&str, &RetentionCandidate> = cs.iter().map(|c| (c.id.as_str(), c)).collect();
        for id in &plan.delete {
            prop_assert!(by_id[id.as_str()].created <= horizon, "deleted {id}, younger than {floor} days");
        }
        let refused_ids: BTreeSet<String> = refused.iter().map(|(id, _)| id.clone()).collect();
        let kept: BTreeSet<String> = plan.delete.iter().cloned().collect();
        prop_assert_eq!(refused_ids.union(&kept).cloned().collect::<BTreeSet<_>>(), planned);
        for (id, at) in &refused {
            prop_assert!(*at > horizon, "refused {id}, which is older than the floor");
        }
        // Without a floor nothing is deleted.
        let mut unfloored = plan_retention(&policy, &cs, now);
        apply_floor(&mut unfloored, &cs, None, now);
        prop_assert!(unfloored.delete.is_empty());
    }

    #[test]
    fn never_deletes_what_it_must_keep(policy in policies(), cs in candidates()) {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let plan = plan_retention(&policy, &cs, now);
        let deleted: BTreeSet<&String> = plan.delete.iter().collect();
        for c in &cs {
            if deleted.contains(&c.id) {
                prop_assert!(c.owned, "deleted unowned {}", c.id);
                prop_assert!(c.available, "deleted unavailable {}", c.id);
                if let Some(days) = policy.days {
                    prop_assert!(c.created <= now - SignedDuration::from_hours(24 * i64::from(days)));
                }
            }
        }
        // The newest keep_last owned+available of each resource survive.
        let mut by_resource: BTreeMap<&str, Vec<&RetentionCandidate>> = BTreeMap::new();
        for c in cs.iter().filter(|c| c.owned && c.available) {
            by_resource.entry(&c.resource).or_default().push(c);
        }
        for list in by_resource.values_mut() {
            list.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
            for c in list.iter().take(policy.keep_last as usize) {
                prop_assert!(!deleted.contains(&c.id), "deleted a keep-last snapshot {}", c.id);
            }
            // Never keeps more than the rules can justify.
            let kept = list.iter().filter(|c| !deleted.contains(&c.id)).count();
            let within_days = policy.days.map_or(0, |d| list.iter().filter(|c| c.created > now - SignedDuration::from_hours(24 * i64::from(d))).count());
            let tiers = policy.tiers.map_or(0, |t| (t.daily + t.weekly + t.monthly + t.yearly) as usize);
            prop_assert!(kept <= policy.keep_last as usize + within_days + tiers);
        }
        // Every candidate is either deleted or kept with a reason, never both.
        for c in &cs {
            prop_assert!(deleted.contains(&c.id) != plan.keep.contains_key(&c.id));
        }
    }

    #[test]
    fn same_inputs_same_plan(policy in policies(), mut cs in candidates()) {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let a = plan_retention(&policy, &cs, now);
        cs.reverse();
        let b = plan_retention(&policy, &cs, now);
        prop_assert_eq!(a, b);
    }
}

#[test]
fn redshift_safety_net_follows_the_longest_time_bound() {
    let policy = |days: Option<u32>, tiers: Option<Tiers>| RetentionPolicy {
        days,
        keep_last: 3,
        tiers,
    };
    assert_eq!(policy(Some(7), None).redshift_safety_net_days(), 37);
    let weekly = Tiers {
        weekly: 8,
        monthly: 2,
        ..Tiers::default()
    };
    assert_eq!(policy(Some(7), Some(weekly)).longest_days(), Some(62));
    assert_eq!(policy(Some(7), Some(weekly)).redshift_safety_net_days(), 92);
    // keep_last only: no time bound, so no safety net that could delete the newest.
    assert_eq!(policy(None, None).redshift_safety_net_days(), -1);
    assert_eq!(
        policy(None, Some(Tiers::default())).redshift_safety_net_days(),
        -1
    );
    let years = Tiers {
        yearly: 10,
        ..Tiers::default()
    };
    assert_eq!(policy(None, Some(years)).redshift_safety_net_days(), -1);
}
