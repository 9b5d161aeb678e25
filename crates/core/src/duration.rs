//! A duration written the way operators write it in a config file: `24h`, `90m`, `7d`, `1d 12h`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use jiff::{SignedDuration, Span, SpanRelativeTo};

/// A non-negative duration parsed from jiff's friendly format, where a day is 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(SignedDuration);

impl HumanDuration {
    pub const fn from_hours(hours: i64) -> Self {
        HumanDuration(SignedDuration::from_hours(hours))
    }

    pub fn as_signed(self) -> SignedDuration {
        self.0
    }

    pub fn as_secs(self) -> i64 {
        self.0.as_secs()
    }
}

/// A duration in seconds as an operator reads it: `40s`, `45m`, `3h 20m`, `2d 4h`.
pub fn short(seconds: i64) -> String {
    let s = seconds.max(0);
    let (days, hours, minutes) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    match (days, hours) {
        (0, 0) if minutes == 0 => format!("{s}s"),
        (0, 0) => format!("{minutes}m"),
        (0, h) => format!("{h}h {minutes}m"),
        (days, h) => format!("{days}d {h}h"),
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hint = "write it like 24h, 90m, 7d or 1d 12h";
        let span: Span = s
            .parse()
            .map_err(|_| format!("`{s}` is not a duration; {hint}"))?;
        let duration = span
            .to_duration(SpanRelativeTo::days_are_24_hours())
            .map_err(|_| format!("`{s}` uses weeks, months or years; {hint}"))?;
        if duration.is_negative() {
            return Err(format!("`{s}` is negative; {hint}"));
        }
        Ok(HumanDuration(duration))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // jiff prints `24h`, `1h 30m`: the same friendly format it parses.
        write!(f, "{:#}", self.0)
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration such as `24h`, `90m`, `7d` or `1d 12h` (a day is 24 hours).",
            "pattern": "^[0-9]",
            "examples": ["1h", "24h", "7d"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operator_forms() {
        assert_eq!("24h".parse::<HumanDuration>().unwrap().as_secs(), 86_400);
        assert_eq!("7d".parse::<HumanDuration>().unwrap().as_secs(), 7 * 86_400);
        assert_eq!(
            "1d 12h".parse::<HumanDuration>().unwrap().as_secs(),
            36 * 3600
        );
        assert_eq!("90m".parse::<HumanDuration>().unwrap().as_secs(), 5400);
        assert_eq!("1w".parse::<HumanDuration>().unwrap().as_secs(), 7 * 86_400);
    }

    #[test]
    fn rejects_what_is_not_a_fixed_duration() {
        for bad in ["", "abc", "1mo", "2y", "-1h"] {
            let err = bad.parse::<HumanDuration>().unwrap_err();
            assert!(err.contains("24h"), "{bad}: {err}");
        }
    }

    #[test]
    fn displays_what_it_parses() {
        for text in ["24h", "1h 30m", "168h"] {
            let d: HumanDuration = text.parse().unwrap();
            assert_eq!(d.to_string().parse::<HumanDuration>().unwrap(), d);
        }
    }
}
