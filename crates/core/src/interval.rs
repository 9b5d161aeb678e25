//! Recovery-point decisions: one snapshot per resource per slot. Slots are the interval's
//! multiples since the Unix epoch, in UTC, so every run agrees on them.

use jiff::{SignedDuration, Timestamp};

/// The start of the slot containing `now`.
pub fn slot_start(now: Timestamp, interval: SignedDuration) -> Timestamp {
    let step = interval.as_secs().max(1);
    let secs = now.as_second();
    let floored = secs - secs.rem_euclid(step);
    // Flooring an instant that is in range stays in range.
    Timestamp::from_second(floored).unwrap_or(now)
}

/// Whether a resource needs a snapshot now: nothing of ours was created in the current slot.
/// `newest_created` is the API creation time of the newest owned snapshot, if any.
pub fn is_due(newest_created: Option<Timestamp>, now: Timestamp, interval: SignedDuration) -> bool {
    match newest_created {
        None => true,
        Some(created) => created < slot_start(now, interval),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn slots_align_to_the_epoch() {
        let day = SignedDuration::from_hours(24);
        assert_eq!(
            slot_start(t("2026-11-22T17:45:10Z"), day),
            t("2026-11-22T00:00:00Z")
        );
        let six = SignedDuration::from_hours(6);
        assert_eq!(
            slot_start(t("2026-11-22T17:45:10Z"), six),
            t("2026-11-22T12:00:00Z")
        );
    }

    #[test]
    fn due_when_nothing_in_the_current_slot() {
        let day = SignedDuration::from_hours(24);
        let now = t("2026-11-22T03:10:00Z");
        assert!(is_due(None, now, day));
        assert!(is_due(Some(t("2026-11-21T23:59:59Z")), now, day));
        assert!(!is_due(Some(t("2026-11-22T00:00:00Z")), now, day));
        assert!(!is_due(Some(t("2026-11-22T03:05:00Z")), now, day));
        // A clock running ahead of ours does not cause a second snapshot.
        assert!(!is_due(Some(t("2026-11-22T04:00:00Z")), now, day));
    }
}
