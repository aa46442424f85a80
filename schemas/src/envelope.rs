//! The versioned task envelope: what travels in an SQS message body, and the strict decoding
//! that turns any body into either an envelope or a precise, DLQ-ready reason.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{RunId, TaskId};
use crate::task::{AccountRef, Task, TaskKind};

/// How logs and reports name the fleet's own account (whose id the fleet need not know).
pub const OWN_ACCOUNT_LABEL: &str = "self";

/// The schema version this build writes and reads. Workers reject any other version explicitly
/// (to the DLQ, body intact) so an operator can replay once a compatible worker is deployed.
pub const SCHEMA_VERSION: u32 = 1;

/// SQS's message size limit (body and attributes): 256 KiB.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Room left for message attributes (trace header, reasons) when checking a body at send time.
pub const ATTRIBUTE_RESERVE_BYTES: usize = 4 * 1024;

/// What caused a task to exist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Origin {
    /// A plan's schedule window was expanded.
    Schedule { plan: String, window: DateTime<Utc> },
    /// An AWS event (EventBridge id, or a stable id for S3 records).
    Event { event_id: String, source: String },
    /// Spawned by another task (fan-out or the next step of a chain).
    Parent { task_id: TaskId },
    /// Re-sent by `backupctl dlq replay`.
    Replay { replayed_at: DateTime<Utc>, previous_attempts: u32 },
    /// Started by an operator (restore, canary).
    Operator { command: String },
}

/// W3C-independent trace context: the X-Ray trace header (`Root=1-…;Parent=…;Sampled=1`), kept in
/// the body as well as the `AWSTraceHeader` system attribute because some SQS implementations drop
/// the attribute on batch sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TraceContext {
    pub xray: String,
    /// Span links (e.g. the parent task's trace for fan-out, or an event id for event tasks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
}

/// The task message. On the wire: `{"v":1,"task_id":…,"kind":…,"params":{…},…}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope {
    /// Schema version; see [`SCHEMA_VERSION`].
    pub v: u32,
    pub task_id: TaskId,
    pub run_id: RunId,
    pub origin: Origin,
    /// Attempts already made before this message was sent (0 for a new task; a replay resets it).
    #[serde(default)]
    pub attempt: u32,
    pub created_at: DateTime<Utc>,
    /// Do not start before this instant (the worker re-parks the message until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    /// Give up (FAILED, reason "deadline exceeded") after this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
    /// The account the task acts in, through the role the worker assumes; absent for the fleet's
    /// own account. Part of the task id. Children inherit it unless their parent says otherwise
    /// (the steps of a copy into a backup account run in that account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountRef>,
    #[serde(flatten)]
    pub task: Task,
}

/// Why a message body is not a task this build can run. Each variant maps to a stable `code`
/// that goes into the DLQ message attributes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("message body is {bytes} bytes, over the {limit}-byte limit")]
    TooLarge { bytes: usize, limit: usize },
    #[error("message body is not valid JSON: {0}")]
    NotJson(String),
    #[error("message body is JSON but not an object")]
    NotAnObject,
    #[error("envelope has no numeric schema version field \"v\"")]
    MissingVersion,
    #[error("unsupported schema version {found} (this worker reads version {supported})")]
    UnsupportedVersion { found: u64, supported: u32 },
    #[error("envelope has no string field \"kind\"")]
    MissingKind,
    #[error("unknown task kind {0:?}")]
    UnknownKind(String),
    #[error("invalid parameters for {kind}: {reason}")]
    InvalidParams { kind: String, reason: String },
    #[error("invalid envelope: {0}")]
    InvalidEnvelope(String),
    #[error("task id {found} does not match its content (expected {expected})")]
    IdMismatch { found: String, expected: String },
}

impl DecodeError {
    /// Stable machine-readable reason code (DLQ attribute `backup-fleet-reason-code`).
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::NotJson(_) => "not_json",
            DecodeError::NotAnObject => "not_an_object",
            DecodeError::MissingVersion => "missing_version",
            DecodeError::UnsupportedVersion { .. } => "unsupported_version",
            DecodeError::MissingKind => "missing_kind",
            DecodeError::UnknownKind(_) => "unknown_kind",
            DecodeError::InvalidParams { .. } => "invalid_params",
            DecodeError::InvalidEnvelope(_) => "invalid_envelope",
            DecodeError::IdMismatch { .. } => "id_mismatch",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    #[error("task {task_id} ({kind}) encodes to {bytes} bytes, over the {limit}-byte SQS limit; split the work into smaller tasks")]
    TooLarge { task_id: String, kind: String, bytes: usize, limit: usize },
}

impl Envelope {
    /// A new envelope for `task`, with its deterministic id.
    pub fn new(task: Task, run_id: RunId, origin: Origin, now: DateTime<Utc>) -> Self {
        Self {
            v: SCHEMA_VERSION,
            task_id: task.id(),
            run_id,
            origin,
            attempt: 0,
            created_at: now,
            not_before: None,
            deadline: None,
            trace: None,
            account: None,
            task,
        }
    }

    /// The same task acting in `account` (`None`: the fleet's own account), with the id of that.
    pub fn in_account(mut self, account: Option<AccountRef>) -> Self {
        self.task_id = self.task.id_in(account.as_ref());
        self.account = account;
        self
    }

    /// The account the task acts in, for logs and reports: its id, or `self` for the fleet's own.
    pub fn account_label(&self) -> &str {
        self.account.as_ref().map_or(OWN_ACCOUNT_LABEL, |a| a.account_id.as_str())
    }

    pub fn kind(&self) -> TaskKind {
        self.task.kind()
    }

    /// Serialise for SQS, refusing anything that would not fit in a message.
    pub fn encode(&self) -> Result<String, EncodeError> {
        let body = serde_json::to_string(self).expect("envelope serialisation cannot fail");
        let limit = MAX_MESSAGE_BYTES - ATTRIBUTE_RESERVE_BYTES;
        if body.len() > limit {
            return Err(EncodeError::TooLarge {
                task_id: self.task_id.to_string(),
                kind: self.kind().to_string(),
                bytes: body.len(),
                limit,
            });
        }
        Ok(body)
    }

    /// Decode a message body. Checks run from the cheapest to the most specific, so the error
    /// names the first thing wrong: size, JSON, version, kind, parameters, id.
    pub fn decode(body: &str) -> Result<Self, DecodeError> {
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::TooLarge { bytes: body.len(), limit: MAX_MESSAGE_BYTES });
        }
        // serde_json refuses nesting deeper than 128 levels, which bounds hostile input.
        let value: Value = serde_json::from_str(body).map_err(|e| DecodeError::NotJson(e.to_string()))?;
        let object = value.as_object().ok_or(DecodeError::NotAnObject)?;
        let version = object.get("v").and_then(Value::as_u64).ok_or(DecodeError::MissingVersion)?;
        if version != u64::from(SCHEMA_VERSION) {
            return Err(DecodeError::UnsupportedVersion { found: version, supported: SCHEMA_VERSION });
        }
        let kind_name = object.get("kind").and_then(Value::as_str).ok_or(DecodeError::MissingKind)?;
        let kind: TaskKind = kind_name.parse().map_err(|_| DecodeError::UnknownKind(kind_name.to_owned()))?;
        let params = object.get("params").cloned().unwrap_or(Value::Null);
        let task_value = serde_json::json!({ "kind": kind_name, "params": params });
        let task: Task = serde_json::from_value(task_value)
            .map_err(|e| DecodeError::InvalidParams { kind: kind.to_string(), reason: e.to_string() })?;
        let envelope: Envelope =
            serde_json::from_value(value).map_err(|e| DecodeError::InvalidEnvelope(e.to_string()))?;
        debug_assert_eq!(envelope.task, task);
        // A forged or corrupted id would break idempotency: the id must be the content's id.
        if let Some(account) = &envelope.account {
            account.check().map_err(|e| DecodeError::InvalidEnvelope(format!("account.{e}")))?;
        }
        // Copies into other accounts name theirs: checked the same way, before anything shares.
        for target in envelope.task.copy_targets() {
            if let Some(account) = &target.account {
                account.check().map_err(|e| DecodeError::InvalidParams {
                    kind: kind.to_string(),
                    reason: format!("copy target account: {e}"),
                })?;
            }
        }
        let expected = envelope.task.id_in(envelope.account.as_ref());
        if envelope.task_id != expected {
            return Err(DecodeError::IdMismatch {
                found: envelope.task_id.to_string(),
                expected: expected.to_string(),
            });
        }
        Ok(envelope)
    }
}
