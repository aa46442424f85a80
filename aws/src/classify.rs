//! Classifies every AWS SDK error exactly once into retry / permanent, keeping the AWS error code
//! and message for the operator.

use aws_sdk_sqs::error::SdkError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use backup_core::{AwsError, ErrorClass, RetryClass};

/// Codes AWS services use to say "slow down".
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "RequestThrottled",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "PriorRequestNotComplete",
    "TransactionInProgressException",
    "KMSThrottlingException",
    "BandwidthLimitExceeded",
    "AWS.SimpleQueueService.RequestThrottled",
    "ThrottlingException.Sqs",
];

/// Codes of quotas on work in flight: the task waits for capacity (parks) instead of retrying.
/// `ConcurrentSnapshotLimitExceeded`: 5 pending snapshots per volume. `ResourceLimitExceeded`:
/// 20 EBS snapshot copies in flight per destination region (and other per-region EC2 limits).
/// `SnapshotQuotaExceeded`: RDS's answer both to too many copies in flight and to the manual
/// snapshot quota of the region; the second does not resolve by waiting, which is why every
/// capacity wait is bounded (the worker's `--capacity-wait-limit`) and then fails loudly.
const CAPACITY_CODES: &[&str] = &[
    "ConcurrentSnapshotLimitExceeded",
    "ResourceLimitExceeded",
    "SnapshotQuotaExceeded",
    "SnapshotQuotaExceededFault",
];

/// Codes meaning "the resource is busy right now", which resolve on the resource's own time.
const BUSY_CODES: &[&str] = &[
    "SnapshotCreationPerVolumeRateExceeded",
    "IncorrectState",
    "IncorrectInstanceState",
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBClusterStateFault",
    "InvalidDBClusterSnapshotStateFault",
    "InvalidDBSnapshotState",
    "InvalidDBSnapshotStateFault",
    "InvalidExportSourceState",
    "ResourceInUse",
    "OperationAborted",
    "ConditionalCheckFailedException.Busy",
];

/// Codes of server-side faults worth retrying.
const TRANSIENT_CODES: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "IDPCommunicationError",
    "EC2ThrottledException",
];

pub fn classify_code(code: &str, status: Option<u16>) -> ErrorClass {
    if THROTTLING_CODES.contains(&code) || status == Some(429) {
        ErrorClass::Retry(RetryClass::Throttled)
    } else if CAPACITY_CODES.contains(&code) {
        ErrorClass::Retry(RetryClass::Capacity)
    } else if BUSY_CODES.contains(&code) {
        ErrorClass::Retry(RetryClass::Busy)
    } else if TRANSIENT_CODES.contains(&code) || status.is_some_and(|s| s >= 500) {
        ErrorClass::Retry(RetryClass::Transient)
    } else {
        ErrorClass::Permanent
    }
}

/// Turns an SDK error into the fleet's classified [`AwsError`].
pub fn classify<E>(service: &'static str, operation: &'static str, err: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let (code, message, class) = match &err {
        SdkError::TimeoutError(_) => {
            ("Timeout".to_owned(), "request timed out".to_owned(), ErrorClass::Retry(RetryClass::Timeout))
        }
        SdkError::DispatchFailure(failure) => {
            let class = if failure.is_timeout() {
                ErrorClass::Retry(RetryClass::Timeout)
            } else if failure.is_user() {
                ErrorClass::Permanent
            } else {
                ErrorClass::Retry(RetryClass::Transient)
            };
            ("DispatchFailure".to_owned(), format!("{:?}", failure), class)
        }
        SdkError::ResponseError(_) => (
            "ResponseError".to_owned(),
            format!("unreadable response (HTTP {})", status.unwrap_or_default()),
            ErrorClass::Retry(RetryClass::Transient),
        ),
        SdkError::ConstructionFailure(_) => {
            ("ConstructionFailure".to_owned(), format!("{err:?}"), ErrorClass::Permanent)
        }
        SdkError::ServiceError(service_err) => {
            let inner = service_err.err();
            let code = inner.code().unwrap_or("Unknown").to_owned();
            let message = inner.message().map(str::to_owned).unwrap_or_else(|| inner.to_string());
            let class = classify_code(&code, status);
            (code, message, class)
        }
        _ => ("Unknown".to_owned(), format!("{err:?}"), ErrorClass::Retry(RetryClass::Transient)),
    };
    AwsError { service, operation, code, message, class }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_codes() {
        assert_eq!(classify_code("ThrottlingException", Some(400)), ErrorClass::Retry(RetryClass::Throttled));
        assert_eq!(classify_code("RequestLimitExceeded", Some(503)), ErrorClass::Retry(RetryClass::Throttled));
        assert_eq!(classify_code("SlowDown", Some(503)), ErrorClass::Retry(RetryClass::Throttled));
        assert_eq!(
            classify_code("ProvisionedThroughputExceededException", Some(400)),
            ErrorClass::Retry(RetryClass::Throttled)
        );
        assert_eq!(classify_code("Whatever", Some(429)), ErrorClass::Retry(RetryClass::Throttled));
        assert_eq!(classify_code("InternalError", Some(500)), ErrorClass::Retry(RetryClass::Transient));
        assert_eq!(classify_code("Anything", Some(502)), ErrorClass::Retry(RetryClass::Transient));
        assert_eq!(
            classify_code("SnapshotCreationPerVolumeRateExceeded", Some(400)),
            ErrorClass::Retry(RetryClass::Busy)
        );
        for code in ["ConcurrentSnapshotLimitExceeded", "ResourceLimitExceeded", "SnapshotQuotaExceeded"] {
            assert_eq!(classify_code(code, Some(400)), ErrorClass::Retry(RetryClass::Capacity), "{code}");
        }
        assert_eq!(classify_code("InvalidVolume.NotFound", Some(400)), ErrorClass::Permanent);
        assert_eq!(classify_code("AccessDenied", Some(403)), ErrorClass::Permanent);
        assert_eq!(classify_code("KMS.DisabledException", Some(400)), ErrorClass::Permanent);
        assert_eq!(classify_code("ValidationException", Some(400)), ErrorClass::Permanent);
    }
}
