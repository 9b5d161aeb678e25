//! What the stacks hand to EventBridge Scheduler and AWS's region names, checked as AWS will
//! check them at deploy time, so a bad config fails `validate` rather than the deployment.

/// An EventBridge Scheduler expression: `rate(N unit)`, or `cron(minutes hours day-of-month
/// month day-of-week year)` with every field in range (croner parses the fields, Quartz-style
/// weekdays 1-7 = SUN-SAT as AWS numbers them), exactly one of day-of-month and day-of-week
/// `?`, at most one `#` expression, and years 1970-2199. The problem in words, if any.
pub fn expression_problem(expression: &str) -> Option<String> {
    if let Some(rate) = expression
        .strip_prefix("rate(")
        .and_then(|e| e.strip_suffix(')'))
    {
        return rate_problem(rate);
    }
    let Some(cron) = expression
        .strip_prefix("cron(")
        .and_then(|e| e.strip_suffix(')'))
    else {
        return Some(
            "is not an EventBridge schedule expression such as `cron(0 3 * * ? *)` or `rate(1 day)`"
                .into(),
        );
    };
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let [_, _, day_of_month, _, day_of_week, year] = fields[..] else {
        return Some(format!(
            "has {} cron fields; EventBridge needs six: minutes hours day-of-month month day-of-week year, such as `cron(0 3 * * ? *)`",
            fields.len()
        ));
    };
    match (day_of_month == "?", day_of_week == "?") {
        (true, true) => {
            return Some(
                "has `?` in both day-of-month and day-of-week; give one of them a value or `*`"
                    .into(),
            );
        }
        (false, false) => {
            return Some(format!(
                "sets both day-of-month (`{day_of_month}`) and day-of-week (`{day_of_week}`); EventBridge needs `?` in one of them, such as `cron(0 3 * * ? *)`"
            ));
        }
        _ => {}
    }
    if day_of_week.contains('#') && day_of_week.contains(',') {
        return Some(format!(
            "day-of-week `{day_of_week}` lists a `#` expression with others; EventBridge allows one `#` expression alone"
        ));
    }
    if let Some(problem) = year_problem(year) {
        return Some(problem);
    }
    let parser = croner::parser::CronParser::builder()
        .alternative_weekdays(true)
        .sloppy_ranges(true)
        .build();
    // croner reads seven fields with seconds first: the seconds are AWS's implicit 0.
    let error = parser.parse(&format!("0 {cron}")).err()?;
    // Name the field: parse each alone, the others left open.
    for (i, (name, range)) in FIELDS.iter().enumerate() {
        let mut alone = ["*", "*", "*", "*", "?"];
        if i == 4 {
            alone[2] = "?";
        }
        alone[i] = fields[i];
        if parser.parse(&format!("0 {} *", alone.join(" "))).is_err() {
            return Some(format!(
                "{name} field `{}` is not valid ({range}): {error}",
                fields[i]
            ));
        }
    }
    Some(format!("is not a valid cron expression: {error}"))
}

/// The first five cron fields and what AWS allows in each.
const FIELDS: [(&str, &str); 5] = [
    ("minutes", "0-59, with , - * /"),
    ("hours", "0-23, with , - * /"),
    ("day-of-month", "1-31, with , - * ? / L W"),
    ("month", "1-12 or JAN-DEC, with , - * /"),
    ("day-of-week", "1-7 or SUN-SAT, with , - * ? L #"),
];

fn rate_problem(rate: &str) -> Option<String> {
    let usage = "EventBridge rates look like `rate(1 day)` or `rate(12 hours)`";
    let Some((value, unit)) = rate.split_once(' ') else {
        return Some(format!("is not a rate: {usage}"));
    };
    let Ok(n) = value.parse::<u32>() else {
        return Some(format!("`{value}` is not a positive whole number: {usage}"));
    };
    let units: &[&str] = if n == 1 {
        &["minute", "hour", "day"]
    } else {
        &["minutes", "hours", "days"]
    };
    if n == 0 || !units.contains(&unit) {
        return Some(format!(
            "`{value} {unit}` is not a rate EventBridge accepts ({}, singular for 1): {usage}",
            units.join(", ")
        ));
    }
    None
}

/// Years AWS accepts in a cron expression.
const YEARS: std::ops::RangeInclusive<u32> = 1970..=2199;

fn year_problem(year: &str) -> Option<String> {
    for part in year.split(',') {
        // `start/step`: only the start is a year.
        let range = part.split('/').next().unwrap_or(part);
        if range == "*" {
            continue;
        }
        for y in range.split('-') {
            match y.parse::<u32>() {
                Ok(y) if YEARS.contains(&y) => {}
                _ => {
                    return Some(format!(
                        "year field `{year}`: `{y}` is not a year from 1970 to 2199 (or `*`)"
                    ));
                }
            }
        }
    }
    None
}

/// Every region the AWS SDK's partitions name (aws-sdk-rds 1.159.0, the SDK snapcourier is
/// built with) in the partitions snapcourier supports (aws, aws-cn, aws-us-gov: see
/// `config::partition`): a region outside this list is a typo, one AWS opened after this
/// build, or one of the isolated partitions.
pub const KNOWN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_examples_are_accepted() {
        for ok in [
            "cron(0 3 * * ? *)",
            "cron(15 12 * * ? *)",
            "cron(0 18 ? * MON-FRI *)",
            "cron(0 8 1 * ? *)",
            "cron(0/15 * * * ? *)",
            "cron(0/10 * ? * MON-FRI *)",
            "cron(0/5 8-17 ? * MON-FRI *)",
            "cron(0 9 ? * 2#1 *)",
            "cron(0 12 L * ? *)",
            "cron(0 9 3W * ? *)",
            "cron(0 10 ? * 6L 2026-2030)",
            "cron(0 3 ? * 1 *)",
            "cron(0 3 ? * 7 *)",
            "cron(0 3 1 JAN,JUL ? 2027)",
            "rate(1 day)",
            "rate(12 hours)",
            "rate(90 minutes)",
        ] {
            assert_eq!(expression_problem(ok), None, "{ok}");
        }
    }

    #[test]
    fn out_of_range_fields_and_the_question_mark_rule_are_refused() {
        for (bad, says) in [
            ("cron(61 3 * * ? *)", "minutes field `61`"),
            ("cron(0 25 * * ? *)", "hours field `25`"),
            ("cron(0 3 * 13 ? *)", "month field `13`"),
            ("cron(0 3 32 * ? *)", "day-of-month field `32`"),
            ("cron(0 3 * * ? 20x6)", "year field"),
            ("cron(0 3 * * * *)", "needs `?` in one of them"),
            ("cron(0 3 ? * ? *)", "`?` in both"),
            ("cron(0 3 1 * MON *)", "needs `?` in one of them"),
            ("cron(0 3 ? * 2#1,3#2 *)", "one `#` expression"),
            ("cron(0 3 * * ? 1969)", "1970 to 2199"),
            ("cron(0 3 * * ? 2200)", "1970 to 2199"),
            ("cron(0 3 * * ?)", "six"),
            ("cron(0 3 ? * 9 *)", "day-of-week field `9`"),
            ("rate(1 days)", "singular for 1"),
            ("rate(0 hours)", "not a rate EventBridge accepts"),
            ("rate(2 weeks)", "not a rate EventBridge accepts"),
            ("every day", "not an EventBridge schedule expression"),
        ] {
            let problem = expression_problem(bad).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(problem.contains(says), "{bad}: {problem}");
        }
    }

    #[test]
    fn known_regions_are_sorted_unique_and_well_formed() {
        let mut sorted = KNOWN_REGIONS.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, KNOWN_REGIONS);
        assert!(KNOWN_REGIONS.iter().all(|r| r.split('-').count() >= 3));
        // Each in a partition snapcourier builds ARNs for.
        for r in KNOWN_REGIONS {
            let partition = crate::config::partition(r);
            assert_eq!(
                partition != "aws",
                r.starts_with("cn-") || r.starts_with("us-gov-"),
                "{r}"
            );
        }
    }
}
