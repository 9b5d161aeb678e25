//! How long a run keeps working on copies that are under way or waiting for a copy slot, and
//! how often it looks. One rule for the CLI and the state machines: a run looks again while
//! anything is pending, until its deadline, then reports what is left.
//!
//! The deadline comes from the schedule's interval: a run ends before the next one of its
//! schedule starts (which would otherwise stand aside as overlapping and lose its slot).
//! Looks are spaced so that a whole run stays far below Step Functions' 25,000 history
//! events per execution: each look costs the destination state machine at most 16 events,
//! and a run makes at most `MAX_LOOKS`.

use jiff::{SignedDuration, Timestamp};

use crate::config::Settings;

/// Most looks one run makes. At up to 16 history events per look (copy-in, cross-region
/// copy, two choices, a wait) this is 16,000 events, two thirds of Step Functions' limit,
/// which leaves room for task retries.
pub const MAX_LOOKS: u32 = 1_000;

/// History events one look costs the destination state machine at most: the copy-in and
/// cross-region tasks (5 each), two choices and a wait (2 each).
pub const EVENTS_PER_LOOK: u32 = 16;

/// History events one look costs the source state machine at most: the share task (5), a
/// choice and a wait (2 each).
pub const SOURCE_EVENTS_PER_LOOK: u32 = 9;

// The most looks stay within two thirds of Step Functions' 25,000 events per execution; the
// rest is room for task retries. Checked when the crate builds.
const _: () = assert!(EVENTS_PER_LOOK * MAX_LOOKS <= 2 * 25_000 / 3);
const _: () = assert!(SOURCE_EVENTS_PER_LOOK <= EVENTS_PER_LOOK);

/// Most failures and left-over items a step's output names one by one; the rest are
/// counted (Step Functions allows 256 KiB per state, SNS 256 KiB per message).
pub const MAX_NAMED: usize = 20;

/// How long a run may keep looking, counted from its start.
pub fn window(interval: SignedDuration, settings: &Settings) -> SignedDuration {
    if let Some(seconds) = settings.deadline_seconds {
        return SignedDuration::from_secs(seconds.min(i64::MAX as u64) as i64);
    }
    let margin = (interval / 10).min(SignedDuration::from_hours(1));
    interval - margin
}

/// Seconds between two looks: the configured poll interval at first, then a sixtieth of the
/// time the run has taken so far. Quick copies are followed closely; a run that goes on for
/// a day looks about 250 times, and even a 31-day deadline stays within `MAX_LOOKS`.
pub fn look_every(settings: &Settings, elapsed: SignedDuration) -> u64 {
    let elapsed = elapsed.as_secs().max(0) as u64;
    settings.poll_interval_seconds.max(elapsed / LOOK_SPACING)
}

/// The run's elapsed time divided by this is the least wait between two looks.
const LOOK_SPACING: u64 = 60;

/// The state machine's execution timeout for a schedule: its interval. A run's own deadline
/// (`window`) ends a destination run before that; the timeout is the backstop that keeps a
/// stuck execution from blocking every later run of its schedule (they stand aside while an
/// older one runs).
pub fn execution_timeout_seconds(interval: SignedDuration) -> u64 {
    interval.as_secs().max(1) as u64
}

/// What a run does after a look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextLook {
    /// Nothing is pending: go on to clean-up and retention.
    Finished,
    /// Look again after this many seconds.
    After(u64),
    /// Work is pending but the run may not look again; why, in words for the report.
    OutOfTime(String),
}

impl NextLook {
    /// `looks` is how many looks the run has made, this one included.
    pub fn decide(
        pending: bool,
        looks: u32,
        started: Timestamp,
        now: Timestamp,
        interval: SignedDuration,
        settings: &Settings,
    ) -> NextLook {
        if !pending {
            return NextLook::Finished;
        }
        let deadline = started
            .saturating_add(window(interval, settings))
            .unwrap_or(Timestamp::MAX);
        let remaining = deadline.duration_since(now).as_secs();
        if looks >= MAX_LOOKS {
            return NextLook::OutOfTime(format!(
                "the run made its {MAX_LOOKS} looks (the most one execution may)"
            ));
        }
        if remaining < 1 {
            let rule = if settings.deadline_seconds.is_some() {
                "settings.deadline_seconds after its start"
            } else {
                "its schedule's interval minus a tenth, so that it ends before the next run"
            };
            return NextLook::OutOfTime(format!(
                "the run's deadline {deadline} passed ({rule}; it started at {started})"
            ));
        }
        // The last look comes at the deadline itself.
        let every = look_every(settings, now.duration_since(started));
        NextLook::After(every.min(remaining as u64))
    }

    pub fn is_finished(&self) -> bool {
        !matches!(self, NextLook::After(_))
    }

    pub fn seconds(&self) -> u64 {
        match self {
            NextLook::After(s) => *s,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_run_stops_before_the_next_one_of_its_schedule_starts() {
        let s = Settings::default();
        assert_eq!(
            window(SignedDuration::from_hours(24), &s),
            SignedDuration::from_hours(23)
        );
        assert_eq!(
            window(SignedDuration::from_hours(1), &s),
            SignedDuration::from_mins(54)
        );
        let mut short = s.clone();
        short.deadline_seconds = Some(30);
        assert_eq!(
            window(SignedDuration::from_hours(24), &short),
            SignedDuration::from_secs(30)
        );
    }

    #[test]
    fn looks_are_spaced_so_a_run_fits_the_history_limit() {
        let s = Settings::default();
        // At first, the poll interval; later, a sixtieth of the time taken so far.
        assert_eq!(look_every(&s, SignedDuration::from_secs(30)), 60);
        assert_eq!(look_every(&s, SignedDuration::from_hours(10)), 600);
        // Looks a run makes until its deadline, for a day and for the longest deadline.
        for (poll, window) in [(60, 23 * 3600), (1, 31 * 24 * 3600)] {
            let settings = Settings {
                poll_interval_seconds: poll,
                ..Settings::default()
            };
            let (mut elapsed, mut looks) = (0u64, 0u32);
            while elapsed < window {
                elapsed += look_every(&settings, SignedDuration::from_secs(elapsed as i64));
                looks += 1;
            }
            assert!(looks < MAX_LOOKS, "{looks} looks in {window} s at {poll} s");
        }
    }

    #[test]
    fn pending_work_is_looked_at_again_until_the_deadline() {
        let s = Settings::default();
        let day = SignedDuration::from_hours(24);
        let start = t("2026-11-22T03:00:00Z");
        assert_eq!(
            NextLook::decide(false, 1, start, start, day, &s),
            NextLook::Finished
        );
        assert_eq!(
            NextLook::decide(true, 1, start, t("2026-11-22T03:01:00Z"), day, &s),
            NextLook::After(60)
        );
        // The last look comes at the deadline, and then the run stops.
        assert_eq!(
            NextLook::decide(true, 900, start, t("2026-11-23T01:59:30Z"), day, &s),
            NextLook::After(30)
        );
        let late = NextLook::decide(true, 901, start, t("2026-11-23T02:00:00Z"), day, &s);
        assert!(
            matches!(&late, NextLook::OutOfTime(why) if why.contains("deadline 2026-11-23T02:00:00Z") && why.contains("interval minus a tenth")),
            "{late:?}"
        );
        // An explicit deadline says so.
        let explicit = Settings {
            deadline_seconds: Some(600),
            ..s.clone()
        };
        let late = NextLook::decide(true, 2, start, t("2026-11-22T03:10:00Z"), day, &explicit);
        assert!(
            matches!(&late, NextLook::OutOfTime(why) if why.contains("settings.deadline_seconds")),
            "{late:?}"
        );
        let many = NextLook::decide(true, MAX_LOOKS, start, start, day, &s);
        assert!(matches!(many, NextLook::OutOfTime(_)));
    }
}
