//! The error taxonomy. Every failure a step can report is one of these variants, and each
//! variant has a fixed `errorType` string that the state machines match in `Retry`/`Catch`.

use std::fmt;

/// One problem found in a config file or an event, named by its field path
/// (`schedules[1].interval`) and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldProblem {
    pub field: String,
    pub rule: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.rule)
        } else {
            write!(f, "{}: {}", self.field, self.rule)
        }
    }
}

fn join_problems(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The config or the event is malformed. Nothing was changed.
    #[error("invalid configuration: {}", join_problems(problems))]
    ConfigInvalid { problems: Vec<FieldProblem> },

    /// AWS refused the call for lack of permission.
    #[error(
        "access denied {action} on {resource}: {message}. Check the IAM role of this step and the resource's tags (snapcourier only acts on resources it owns)"
    )]
    AccessDenied {
        action: String,
        resource: String,
        message: String,
    },

    /// A KMS key cannot be used the way the flow needs (default key, wrong account, disabled).
    #[error("{message}")]
    KmsKeyUnusable { resource: String, message: String },

    #[error("{resource} was not found: {message}")]
    NotFound { resource: String, message: String },

    /// The resource exists but is in a state that forbids the action, or is not ours.
    #[error("{resource}: {message}")]
    InvalidState { resource: String, message: String },

    #[error("throttled by AWS on {action}: {message}")]
    Throttled { action: String, message: String },

    #[error("AWS is unavailable for {action}: {message}")]
    ServiceUnavailable { action: String, message: String },

    #[error("quota exceeded on {action}: {message}")]
    QuotaExceeded { action: String, message: String },

    /// An AWS error this taxonomy has no better place for. Not retried: a person should look.
    #[error("AWS rejected {action} on {resource} ({code}): {message}")]
    AwsRejected {
        action: String,
        resource: String,
        code: String,
        message: String,
    },

    /// snapcourier itself failed (an output or record that does not serialise): a bug to
    /// report, not a config or AWS problem. Not retried.
    #[error(
        "internal error in {what}: {message}. This is a bug in snapcourier: report it with this message"
    )]
    Internal { what: String, message: String },
}

impl Error {
    /// The fixed `errorType` string the state machines match.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::ConfigInvalid { .. } => "ConfigInvalid",
            Error::AccessDenied { .. } => "AccessDenied",
            Error::KmsKeyUnusable { .. } => "KmsKeyUnusable",
            Error::NotFound { .. } => "NotFound",
            Error::InvalidState { .. } => "InvalidState",
            Error::Throttled { .. } => "Throttled",
            Error::ServiceUnavailable { .. } => "ServiceUnavailable",
            Error::QuotaExceeded { .. } => "QuotaExceeded",
            Error::AwsRejected { .. } => "AwsRejected",
            Error::Internal { .. } => "Internal",
        }
    }

    /// Whether running the same step again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Throttled { .. }
                | Error::ServiceUnavailable { .. }
                | Error::QuotaExceeded { .. }
        )
    }

    pub fn internal(what: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Error::Internal {
            what: what.into(),
            message: message.to_string(),
        }
    }

    pub fn config(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Error::ConfigInvalid {
            problems: vec![FieldProblem::new(field, rule)],
        }
    }

    /// The problems of a `ConfigInvalid`, empty for every other variant.
    pub fn problems(&self) -> &[FieldProblem] {
        match self {
            Error::ConfigInvalid { problems } => problems,
            _ => &[],
        }
    }
}

/// Every `errorType` string, in one place for the state machines and their tests.
pub const ERROR_TYPES: [&str; 10] = [
    "ConfigInvalid",
    "AccessDenied",
    "KmsKeyUnusable",
    "NotFound",
    "InvalidState",
    "Throttled",
    "ServiceUnavailable",
    "QuotaExceeded",
    "AwsRejected",
    "Internal",
];

/// A failure recorded against one item (resource or snapshot) so that the other items go on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ItemError {
    pub error_type: String,
    pub message: String,
    pub retryable: bool,
}

impl From<&Error> for ItemError {
    fn from(e: &Error) -> Self {
        ItemError {
            error_type: e.error_type().to_string(),
            message: e.to_string(),
            retryable: e.is_retryable(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_are_fixed_and_distinct() {
        let all = [
            Error::config("a", "b"),
            Error::AccessDenied {
                action: "x".into(),
                resource: "r".into(),
                message: "m".into(),
            },
            Error::KmsKeyUnusable {
                resource: "r".into(),
                message: "m".into(),
            },
            Error::NotFound {
                resource: "r".into(),
                message: "m".into(),
            },
            Error::InvalidState {
                resource: "r".into(),
                message: "m".into(),
            },
            Error::Throttled {
                action: "a".into(),
                message: "m".into(),
            },
            Error::ServiceUnavailable {
                action: "a".into(),
                message: "m".into(),
            },
            Error::QuotaExceeded {
                action: "a".into(),
                message: "m".into(),
            },
            Error::AwsRejected {
                action: "a".into(),
                resource: "r".into(),
                code: "c".into(),
                message: "m".into(),
            },
            Error::internal("w", "m"),
        ];
        let types: Vec<_> = all.iter().map(Error::error_type).collect();
        assert_eq!(types, ERROR_TYPES.to_vec());
        let retryable: Vec<_> = all
            .iter()
            .filter(|e| e.is_retryable())
            .map(Error::error_type)
            .collect();
        assert_eq!(
            retryable,
            vec!["Throttled", "ServiceUnavailable", "QuotaExceeded"]
        );
    }

    #[test]
    fn config_errors_name_every_field() {
        let e = Error::ConfigInvalid {
            problems: vec![
                FieldProblem::new("schedules[1].interval", "must be at least 1h"),
                FieldProblem::new("namespace", "must not be empty"),
            ],
        };
        assert_eq!(
            e.to_string(),
            "invalid configuration: schedules[1].interval: must be at least 1h; namespace: must not be empty"
        );
    }
}
