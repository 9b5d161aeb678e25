//! The one place SDK errors become the domain's taxonomy.

use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use snapcourier_core::Error;

/// The service error code of an SDK error, if the service answered with one.
pub fn code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<&str> {
    match err {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

pub fn is_already_exists<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    code(err).is_some_and(|c| c.contains("AlreadyExists"))
}

pub fn is_not_found<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    code(err).is_some_and(|c| c.contains("NotFound"))
}

/// A call whose target may already exist (a create or copy to a deterministic id, made
/// before by this run or a concurrent one): `Ok(None)` when it does, else the response or the
/// classified error.
pub fn unless_exists<T, E>(
    result: Result<T, SdkError<E, HttpResponse>>,
    action: &str,
    resource: &str,
) -> Result<Option<T>, Error>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if is_already_exists(&e) => Ok(None),
        Err(e) => Err(classify(e, action, resource)),
    }
}

/// A call whose target may be gone (a describe of one thing, or a delete whose goal is then
/// reached): `Ok(None)` when it is, else the response or the classified error.
pub fn unless_missing<T, E>(
    result: Result<T, SdkError<E, HttpResponse>>,
    action: &str,
    resource: &str,
) -> Result<Option<T>, Error>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(classify(e, action, resource)),
    }
}

/// Map an SDK error for `action` on `resource` to the taxonomy.
pub fn classify<E>(err: SdkError<E, HttpResponse>, action: &str, resource: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (action, resource) = (action.to_string(), resource.to_string());
    match &err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown").to_string();
            let message = se.err().message().unwrap_or_default().to_string();
            let status = se.raw().status().as_u16();
            classify_code(&code, status, action, resource, message)
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Error::ServiceUnavailable {
                action,
                message: format!(
                    "{}",
                    aws_smithy_types::error::display::DisplayErrorContext(&err)
                ),
            }
        }
        _ => Error::AwsRejected {
            action,
            resource,
            code: "ClientError".into(),
            message: format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            ),
        },
    }
}

pub(crate) fn classify_code(
    code: &str,
    status: u16,
    action: String,
    resource: String,
    message: String,
) -> Error {
    const THROTTLED: [&str; 8] = [
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    ];
    const DENIED: [&str; 8] = [
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthorizationError",
        "NotAuthorized",
        "InvalidClientTokenId",
        "ExpiredToken",
        "UnrecognizedClientException",
    ];
    if THROTTLED.contains(&code) {
        Error::Throttled { action, message }
    } else if DENIED.contains(&code) {
        Error::AccessDenied {
            action,
            resource,
            message,
        }
    } else if code.starts_with("KMS")
        || code == "DisabledException"
        || code == "KeyUnavailableException"
    {
        Error::KmsKeyUnusable {
            message: format!(
                "{resource}: the KMS key cannot be used ({code}): {message}. Check that the key exists, is enabled, and that its key policy lets this account use it through RDS"
            ),
            resource,
        }
    } else if code.contains("NotFound") {
        Error::NotFound { resource, message }
    } else if code.contains("QuotaExceeded") || code.contains("LimitExceeded") {
        Error::QuotaExceeded {
            action,
            message: format!("{code}: {message}"),
        }
    } else if code.starts_with("Invalid") && code.contains("State") {
        Error::InvalidState {
            resource,
            message: format!("{code}: {message}"),
        }
    } else if status >= 500 || code == "InternalFailure" || code == "ServiceUnavailable" {
        Error::ServiceUnavailable {
            action,
            message: format!("{code}: {message}"),
        }
    } else {
        Error::AwsRejected {
            action,
            resource,
            code: code.to_string(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(code: &str, status: u16) -> &'static str {
        classify_code(code, status, "a".into(), "r".into(), "m".into()).error_type()
    }

    #[test]
    fn codes_map_to_the_taxonomy() {
        assert_eq!(kind("Throttling", 400), "Throttled");
        assert_eq!(kind("ThrottlingException", 400), "Throttled");
        assert_eq!(kind("AccessDenied", 403), "AccessDenied");
        assert_eq!(kind("KMSKeyNotAccessibleFault", 400), "KmsKeyUnusable");
        assert_eq!(kind("DBClusterSnapshotNotFoundFault", 404), "NotFound");
        assert_eq!(kind("SnapshotQuotaExceeded", 400), "QuotaExceeded");
        assert_eq!(
            kind("InvalidDBClusterSnapshotStateFault", 400),
            "InvalidState"
        );
        assert_eq!(kind("InternalFailure", 500), "ServiceUnavailable");
        assert_eq!(kind("Anything", 503), "ServiceUnavailable");
        assert_eq!(kind("InvalidParameterCombination", 400), "AwsRejected");
    }
}
