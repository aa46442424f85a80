//! The AWS events the producer reads from its events queue, as typed values.
//!
//! This module owns the wire shapes AWS delivers to the SQS queue that EventBridge rules (and
//! sometimes SNS topics or S3 bucket notifications) target, and turns one SQS message body into
//! [`ParsedEvent`]s with [`parse_body`]. It understands:
//! - EventBridge events, with `detail` as an object or as a JSON string (EventBridge Scheduler);
//! - SNS notification JSON (subscriptions without raw delivery) around any of these, and raw SNS
//!   delivery (the body is the inner message itself);
//! - classic S3 event notifications (`Records[]`) and the one-off `s3:TestEvent`;
//! - RDS event-subscription messages (the older SNS format, not EventBridge);
//! - bare CloudTrail records (what an `AWS API Call via CloudTrail` event carries as `detail`).
//!
//! It is tolerant of what AWS really varies between services and documentation revisions
//! (missing `version`/`account`/`region`/`resources`, field and state casing, odd ARNs, numbers
//! and booleans sent as strings) and strict about size and nesting. It never panics: anything it
//! cannot read is an [`EventError`]. The samples under `fixtures/aws-events/` are the reference
//! for every quirk handled here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use self::json::{describe_keys, describe_value, field, str_field, Object};

/// A string-valued AWS enum: known values as variants, anything newer kept verbatim in `Other`
/// so a new value from AWS is data, not a parse error. Serialises as its AWS spelling.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version does not know, as AWS sent it.
            Other(String),
        }

        impl $name {
            /// The AWS spelling (for `Other`, the value as received).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(s) => s,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

mod cloudtrail;
mod ec2;
mod eventbridge;
mod json;
mod rds;
mod s3;

pub use self::cloudtrail::CloudTrailCall;
pub use self::ec2::{EbsResult, EbsSnapshotEvent, EbsSnapshotNotification, Ec2InstanceState, MultiVolumeSnapshot};
pub use self::rds::{RdsEvent, RdsSourceType};
pub use self::s3::{decode_s3_key, S3Action, S3ObjectEvent};

/// Largest body [`parse_body`] reads. SQS and EventBridge both cap a message/event at 256 KiB, so
/// anything bigger did not come from them.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Deepest JSON nesting accepted. Real events stay under 20 levels (CloudTrail `RunInstances`
/// responses are the deepest); serde_json's own limit is 128.
pub const MAX_NESTING_DEPTH: usize = 64;

/// SNS notifications wrapping SNS notifications: one level is normal (SNS to SQS), more than this
/// is a loop or an attack.
const MAX_SNS_UNWRAP: usize = 3;

/// One event read from an SQS message body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParsedEvent {
    /// EventBridge `id`, CloudTrail `eventID`, or for records that carry no id of their own
    /// (classic S3 records, `s3:TestEvent`, RDS event-subscription messages) a hash of the
    /// identifying fields, so a redelivered record gets the same id.
    pub id: String,
    /// When the event happened; `None` when absent or unparsable (docs use placeholders).
    pub time: Option<DateTime<Utc>>,
    pub region: Option<String>,
    /// AWS account id; `None` when absent or empty (some samples send `"account": ""`).
    pub account: Option<String>,
    pub event: AwsEvent,
}

/// What happened. Match on it; [`AwsEvent::Other`] is every well-formed event the producer does
/// not act on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AwsEvent {
    /// An EventBridge rule schedule (`source` `aws.events`) or an EventBridge Scheduler schedule
    /// (`aws.scheduler`). `rule_name` is the last path segment of the rule or schedule ARN in
    /// `resources`.
    Scheduled { rule_name: Option<String>, scheduler: bool },
    /// `EC2 Instance State-change Notification`.
    Ec2InstanceStateChange { instance_id: String, state: Ec2InstanceState },
    /// `EBS Snapshot Notification` (createSnapshot, copySnapshot, archive/restore…).
    EbsSnapshot(EbsSnapshotNotification),
    /// `EBS Multi-Volume Snapshots Completion Status` (createSnapshots).
    EbsMultiVolumeSnapshots {
        event: EbsSnapshotEvent,
        result: EbsResult,
        cause: Option<String>,
        snapshots: Vec<MultiVolumeSnapshot>,
    },
    /// `EBS Volume Notification`. `result` is a volume state here (`available`, `deleted`,
    /// `optimizing`, `failed`), hence a plain string.
    EbsVolume { event: String, result: String, volume_id: String, cause: Option<String> },
    /// Any `RDS DB … Event` from EventBridge, or an RDS event-subscription message via SNS.
    Rds(RdsEvent),
    /// An S3 object event, from EventBridge (`Object Created`…) or a classic notification record.
    S3Object(S3ObjectEvent),
    /// The `s3:TestEvent` S3 sends once when a notification configuration is saved.
    S3TestEvent { bucket: String },
    /// `AWS API Call via CloudTrail`, or a bare CloudTrail record of an API call.
    CloudTrailApiCall(CloudTrailCall),
    /// A well-formed event of a type the producer does not act on (console sign-in, AWS Backup
    /// job events, tag changes, custom application events, SNS subscription confirmations…).
    Other { source: String, detail_type: String },
}

/// Why a body could not be read as AWS events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Larger than [`MAX_BODY_BYTES`]; refused before parsing.
    #[error("message body is {len} bytes, over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    /// JSON nested deeper than [`MAX_NESTING_DEPTH`]; refused before parsing.
    #[error("{what} nests JSON deeper than {max} levels")]
    TooDeep { what: &'static str, max: usize },
    /// Not JSON at all (`what` says which layer: the body, an SNS `Message`, a string `detail`).
    #[error("{what} is not valid JSON: {reason}")]
    NotJson { what: &'static str, reason: String },
    /// Valid JSON that is none of the shapes this module reads; `reason` says what was expected
    /// and what was found.
    #[error("not a recognisable AWS event: {reason}")]
    Unrecognised { reason: String },
    /// A recognised event type that lacks a field the producer needs, or has it in a shape that
    /// cannot be read.
    #[error("malformed {event}: {reason}")]
    Malformed { event: String, reason: String },
}

pub(crate) fn malformed(event: impl Into<String>, reason: impl Into<String>) -> EventError {
    EventError::Malformed { event: event.into(), reason: reason.into() }
}

fn unrecognised(reason: impl Into<String>) -> EventError {
    EventError::Unrecognised { reason: reason.into() }
}

/// Parse one SQS message body from the events queue.
///
/// Unwraps SNS notification JSON (`Type` `Notification`, `Message` holding the inner JSON as a
/// string) and accepts raw SNS delivery (the body is the inner message). A classic S3
/// notification can carry several records, hence the `Vec`; it is never empty on success.
pub fn parse_body(body: &str) -> Result<Vec<ParsedEvent>, EventError> {
    let value = json::parse_bounded(body, "message body")?;
    parse_value(&value, None, 0)
}

/// `topic_arn` is the SNS topic the value arrived through, if any: RDS event-subscription
/// messages name neither region nor account, the topic does.
fn parse_value(value: &Value, topic_arn: Option<&str>, sns_depth: usize) -> Result<Vec<ParsedEvent>, EventError> {
    let Value::Object(obj) = value else {
        return Err(unrecognised(format!("the body is {}, expected a JSON object", describe_value(value))));
    };

    if field(obj, "detailtype").is_some() {
        return eventbridge::parse(obj).map(|e| vec![e]);
    }
    if let Some(kind) = str_field(obj, "type").filter(|k| is_sns_type(k)) {
        if field(obj, "message").is_some() || field(obj, "topicarn").is_some() {
            return parse_sns(obj, kind, sns_depth);
        }
    }
    if let Some(records) = field(obj, "records") {
        return parse_records(records);
    }
    if str_field(obj, "event").is_some_and(|e| e.eq_ignore_ascii_case("s3:TestEvent")) {
        return s3::test_event(obj).map(|e| vec![e]);
    }
    if json::obj_field(obj, "s3").is_some() && field(obj, "eventname").is_some() {
        // A single notification record without its `Records` array.
        return s3::classic_record(obj, 0).map(|e| vec![e]);
    }
    if str_field(obj, "eventsource").is_some() && str_field(obj, "eventname").is_some() {
        return cloudtrail::parse_bare(obj).map(|e| vec![e]);
    }
    if field(obj, "sourceid").is_some() && (field(obj, "eventmessage").is_some() || field(obj, "eventsource").is_some())
    {
        return rds::parse_subscription_message(obj, topic_arn).map(|e| vec![e]);
    }
    if field(obj, "messages").is_some() || (field(obj, "body").is_some() && field(obj, "receipthandle").is_some()) {
        return Err(unrecognised(
            "this is an SQS ReceiveMessage response or message, not a message body: \
             parse each message's `Body`",
        ));
    }
    Err(unrecognised(format!(
        "expected an EventBridge event (`detail-type`, `source`), an SNS notification \
         (`Type`, `Message`), S3 notification `Records`, an S3 test event, a CloudTrail record \
         (`eventSource`, `eventName`) or an RDS event-subscription message (`Source ID`); \
         found {}",
        describe_keys(obj)
    )))
}

/// The SNS message types; only these make an object with `Type` and `Message` an SNS message
/// rather than application JSON that happens to use those names.
fn is_sns_type(kind: &str) -> bool {
    ["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"].iter().any(|t| kind.eq_ignore_ascii_case(t))
}

fn parse_sns(obj: &Object, kind: &str, depth: usize) -> Result<Vec<ParsedEvent>, EventError> {
    let topic_arn = str_field(obj, "topicarn");
    if !kind.eq_ignore_ascii_case("Notification") {
        // SubscriptionConfirmation / UnsubscribeConfirmation reach the queue when it is
        // (un)subscribed to a topic: real SNS traffic, but nothing to back up.
        let id = str_field(obj, "messageid")
            .map(str::to_owned)
            .unwrap_or_else(|| json::derived_id("sns", &[kind, topic_arn.unwrap_or_default()]));
        return Ok(vec![ParsedEvent {
            id,
            time: json::time_field(obj, "timestamp"),
            region: topic_arn.and_then(json::arn_region),
            account: topic_arn.and_then(json::arn_account),
            event: AwsEvent::Other { source: "aws.sns".to_owned(), detail_type: kind.to_owned() },
        }]);
    }
    if depth >= MAX_SNS_UNWRAP {
        return Err(unrecognised(format!("SNS notifications nested more than {MAX_SNS_UNWRAP} deep")));
    }
    let inner = match field(obj, "message") {
        Some(Value::String(text)) => json::parse_bounded(text, "SNS notification `Message`")?,
        // SNS always sends a string; an object means someone re-serialised it. Accept it as is.
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            return Err(malformed(
                "SNS notification",
                format!("`Message` is {}, expected a string", describe_value(other)),
            ))
        }
        None => return Err(malformed("SNS notification", "`Message` is missing")),
    };
    parse_value(&inner, topic_arn, depth + 1)
}

fn parse_records(records: &Value) -> Result<Vec<ParsedEvent>, EventError> {
    let Value::Array(items) = records else {
        return Err(unrecognised(format!("`Records` is {}, expected an array", describe_value(records))));
    };
    if items.is_empty() {
        return Err(unrecognised("`Records` is empty"));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(rec) = item else {
            return Err(unrecognised(format!("`Records[{i}]` is {}, expected an object", describe_value(item))));
        };
        if field(rec, "s3").is_some() {
            out.push(s3::classic_record(rec, i)?);
        } else if field(rec, "sns").is_some() || field(rec, "body").is_some() {
            return Err(unrecognised(
                "this is a Lambda event envelope (`Records[].body` / `Records[].Sns`), not an \
                 SQS message body: parse each record's `body` or `Sns.Message`",
            ));
        } else {
            return Err(unrecognised(format!(
                "`Records[{i}]` is not an S3 notification record (no `s3`); found {}",
                describe_keys(rec)
            )));
        }
    }
    Ok(out)
}
