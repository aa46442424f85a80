//! S3 object events: EventBridge `Object …` events, classic notification records and the
//! `s3:TestEvent`.

use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde_json::Value;

use super::json::{self, field, normalise, obj_field, str_field, string_field, u64_field, Object};
use super::{malformed, AwsEvent, EventError, ParsedEvent};

string_enum! {
    /// What happened to the object. Lifecycle expirations count as deletions; restores,
    /// replication, tagging, ACL and storage-class events are `Other` with the name AWS sent.
    S3Action {
        Created => "created",
        Deleted => "deleted",
    }
}

/// An S3 object event from either delivery path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct S3ObjectEvent {
    pub action: S3Action,
    /// The EventBridge detail-type (`Object Created`) or classic `eventName`
    /// (`ObjectCreated:Put`), as sent.
    pub event_name: String,
    pub bucket: String,
    /// The object key, ready for S3 API calls: classic notification keys are URL-decoded
    /// (`+` is a space); EventBridge keys are used as sent.
    pub key: String,
    /// Absent on deletions.
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub sequencer: Option<String>,
    /// EventBridge only: the API or process behind it (`PutObject`, `Lifecycle Expiration`…).
    pub reason: Option<String>,
    /// EventBridge `Object Deleted` only: `Delete Marker Created` or `Permanently Deleted`.
    pub deletion_type: Option<String>,
}

/// Decode a classic S3 notification key. S3 form-encodes keys there (`red flower.jpg` arrives as
/// `red+flower.jpg`, a literal `+` as `%2B`). A key that does not decode to UTF-8 is returned as
/// sent rather than guessed at.
pub fn decode_s3_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    match percent_decode_str(&spaced).decode_utf8() {
        Ok(key) => key.into_owned(),
        Err(_) => raw.to_owned(),
    }
}

fn object_key<'a>(object: &'a Object, what: &str) -> Result<&'a str, EventError> {
    // Not trimmed: leading and trailing spaces are legal in S3 keys.
    field(object, "key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| malformed(what, "the object `key` is missing"))
}

fn bucket_name(parent: &Object, what: &str) -> Result<String, EventError> {
    obj_field(parent, "bucket")
        .and_then(|b| string_field(b, "name"))
        .ok_or_else(|| malformed(what, "`bucket.name` is missing"))
}

pub(super) fn from_eventbridge(detail: &Object, detail_type: &str) -> Result<S3ObjectEvent, EventError> {
    let bucket = bucket_name(detail, detail_type)?;
    let object = obj_field(detail, "object").ok_or_else(|| malformed(detail_type, "`detail.object` is missing"))?;
    let key = object_key(object, detail_type)?.to_owned();
    let action = match normalise(detail_type).as_str() {
        "objectcreated" => S3Action::Created,
        "objectdeleted" => S3Action::Deleted,
        _ => S3Action::Other(detail_type.to_owned()),
    };
    Ok(S3ObjectEvent {
        action,
        event_name: detail_type.to_owned(),
        bucket,
        key,
        size: u64_field(object, "size"),
        etag: string_field(object, "etag"),
        version_id: string_field(object, "versionid"),
        sequencer: string_field(object, "sequencer"),
        reason: string_field(detail, "reason"),
        deletion_type: string_field(detail, "deletiontype"),
    })
}

/// One `Records[]` entry of a classic S3 event notification.
pub(super) fn classic_record(rec: &Object, index: usize) -> Result<ParsedEvent, EventError> {
    let what = format!("S3 notification record `Records[{index}]`");
    let event_name = string_field(rec, "eventname").ok_or_else(|| malformed(&what, "`eventName` is missing"))?;
    let s3 = obj_field(rec, "s3").ok_or_else(|| malformed(&what, "`s3` is not an object"))?;
    let bucket = bucket_name(s3, &what)?;
    let object = obj_field(s3, "object").ok_or_else(|| malformed(&what, "`s3.object` is missing"))?;
    let key = decode_s3_key(object_key(object, &what)?);
    let sequencer = string_field(object, "sequencer");
    let etag = string_field(object, "etag");
    let event_time = str_field(rec, "eventtime");
    // Classic records have no id. The sequencer orders events per key; an eTag or, failing
    // both, the event time stands in. The event name keeps e.g. a restore's "Post" and
    // "Completed" records for the same object apart.
    let id = json::derived_id(
        "s3",
        &[&bucket, &key, sequencer.as_deref().or(etag.as_deref()).or(event_time).unwrap_or_default(), &event_name],
    );
    // `ObjectCreated:Put`, but newer records prefix the family: `s3:ObjectRestore:Completed`.
    let family = event_name.strip_prefix("s3:").unwrap_or(&event_name);
    let family = family.split(':').next().unwrap_or_default();
    let action = match normalise(family).as_str() {
        "objectcreated" => S3Action::Created,
        "objectremoved" | "lifecycleexpiration" => S3Action::Deleted,
        _ => S3Action::Other(event_name.clone()),
    };
    Ok(ParsedEvent {
        id,
        time: event_time.and_then(json::parse_time),
        region: string_field(rec, "awsregion"),
        account: None,
        event: AwsEvent::S3Object(S3ObjectEvent {
            action,
            event_name,
            bucket,
            key,
            size: u64_field(object, "size"),
            etag,
            version_id: string_field(object, "versionid"),
            sequencer,
            reason: None,
            deletion_type: None,
        }),
    })
}

/// `{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":…}`, sent once when a bucket's
/// notification configuration is saved. No id of its own; `RequestId` makes it unique.
pub(super) fn test_event(obj: &Object) -> Result<ParsedEvent, EventError> {
    let bucket = string_field(obj, "bucket").ok_or_else(|| malformed("s3:TestEvent", "`Bucket` is missing"))?;
    let id = json::derived_id(
        "s3test",
        &[&bucket, str_field(obj, "requestid").unwrap_or_default(), str_field(obj, "time").unwrap_or_default()],
    );
    Ok(ParsedEvent {
        id,
        time: json::time_field(obj, "time"),
        region: None,
        account: None,
        event: AwsEvent::S3TestEvent { bucket },
    })
}
