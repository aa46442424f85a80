//! Error classes: every failure is classified once, where it is observed (the AWS adapter, a
//! handler), into retry / permanent / cancelled. The worker's disposition follows the class only.

use std::fmt;
use std::time::Duration;

/// Why a retryable failure happened; each class has its own backoff schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryClass {
    /// The service asked us to slow down (Throttling, RequestLimitExceeded, SlowDown, ...).
    Throttled,
    /// 5xx, connection reset, I/O error: the next attempt will probably work.
    Transient,
    /// The call took too long.
    Timeout,
    /// A concurrent operation holds the resource (e.g. a snapshot of this volume is in progress,
    /// the per-volume snapshot rate): retry later, no faster than the resource allows.
    Busy,
    /// A quota on work in flight is full (AWS's 5 pending snapshots per volume, 20 snapshot
    /// copies per destination region, or the fleet's own copy slots). Waiting is the normal
    /// course here, not a failure: the task parks (WAITING) instead of retrying, so a long queue
    /// for capacity never uses up its receives and reaches the DLQ.
    Capacity,
}

impl RetryClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RetryClass::Throttled => "throttled",
            RetryClass::Transient => "transient",
            RetryClass::Timeout => "timeout",
            RetryClass::Busy => "busy",
            RetryClass::Capacity => "capacity",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    Retry(RetryClass),
    /// Retrying cannot help: not found, validation, access denied, unusable KMS key.
    Permanent,
    /// The operation was cancelled (shutdown, lost lease): hand the work back untouched.
    Cancelled,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Retry(class) => class.as_str(),
            ErrorClass::Permanent => "permanent",
            ErrorClass::Cancelled => "cancelled",
        }
    }
}

/// A classified failure with a human reason, as carried through task outcomes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TaskError {
    pub class: ErrorClass,
    pub reason: String,
    /// A lower bound for the next attempt (e.g. the per-volume snapshot spacing).
    pub retry_after: Option<Duration>,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.class.as_str())
    }
}

impl TaskError {
    pub fn retry(class: RetryClass, reason: impl Into<String>) -> Self {
        Self { class: ErrorClass::Retry(class), reason: reason.into(), retry_after: None }
    }
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self { class: ErrorClass::Permanent, reason: reason.into(), retry_after: None }
    }
    pub fn cancelled(reason: impl Into<String>) -> Self {
        Self { class: ErrorClass::Cancelled, reason: reason.into(), retry_after: None }
    }
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
    pub fn is_retryable(&self) -> bool {
        matches!(self.class, ErrorClass::Retry(_))
    }
    /// Waiting for capacity (see [`RetryClass::Capacity`]).
    pub fn capacity(reason: impl Into<String>) -> Self {
        Self::retry(RetryClass::Capacity, reason)
    }
    pub fn is_capacity(&self) -> bool {
        self.class == ErrorClass::Retry(RetryClass::Capacity)
    }
}

/// An error from an AWS call, classified once by the adapter that made it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{service}.{operation} failed: {code}: {message}")]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    /// AWS error code (`ThrottlingException`, `InvalidVolume.NotFound`) or a transport kind.
    pub code: String,
    pub message: String,
    pub class: ErrorClass,
}

impl AwsError {
    pub fn is_code(&self, code: &str) -> bool {
        self.code == code
    }
}

impl From<AwsError> for TaskError {
    fn from(err: AwsError) -> Self {
        TaskError { class: err.class, reason: err.to_string(), retry_after: None }
    }
}
