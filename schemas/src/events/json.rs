//! Defensive JSON helpers shared by the event parsers: bounded parsing, field lookup that ignores
//! the casing and separators AWS varies between revisions, and ARN / id extraction.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{EventError, MAX_BODY_BYTES, MAX_NESTING_DEPTH};

pub(crate) type Object = Map<String, Value>;

/// Parse `text` as JSON after the cheap checks, so a hostile body is refused before serde
/// allocates for it.
pub(crate) fn parse_bounded(text: &str, what: &'static str) -> Result<Value, EventError> {
    if text.len() > MAX_BODY_BYTES {
        return Err(EventError::TooLarge { len: text.len(), max: MAX_BODY_BYTES });
    }
    check_depth(text, what)?;
    serde_json::from_str(text).map_err(|e| EventError::NotJson { what, reason: e.to_string() })
}

/// Count bracket nesting outside strings. serde_json would stop at 128 levels on its own, but
/// with a generic "recursion limit" message; this gives a distinct error at a lower bound.
fn check_depth(text: &str, what: &'static str) -> Result<(), EventError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_NESTING_DEPTH {
                    return Err(EventError::TooDeep { what, max: MAX_NESTING_DEPTH });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// `true` if `key` equals `want` once ASCII case and the separators `-`, `_` and space are
/// ignored. AWS spells the same field `EventID`/`eventId`, `snapshot_id`/`snapshotId`,
/// `Incremental`/`incremental`, `Event Source`/`EventSource` depending on service and revision.
fn key_matches(key: &str, want: &str) -> bool {
    let mut k = key.bytes().filter(|b| !matches!(b, b'-' | b'_' | b' ')).map(|b| b.to_ascii_lowercase());
    let mut w = want.bytes();
    loop {
        match (k.next(), w.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// Lower case without `-`, `_` or spaces: the form enum values and field names are compared in.
pub(crate) fn normalise(s: &str) -> String {
    s.trim().chars().filter(|c| !matches!(c, '-' | '_' | ' ')).flat_map(char::to_lowercase).collect()
}

/// Look a field up by its normalised name (lower case, no separators); a key already spelled
/// exactly that way wins over other spellings.
pub(crate) fn field<'a>(obj: &'a Object, want: &str) -> Option<&'a Value> {
    obj.get(want).or_else(|| obj.iter().find(|(k, _)| key_matches(k, want)).map(|(_, v)| v))
}

/// A string field, trimmed; empty strings count as absent (AWS sends `"account": ""`,
/// `"cause": ""`, `"request-id": ""`).
pub(crate) fn str_field<'a>(obj: &'a Object, want: &str) -> Option<&'a str> {
    field(obj, want).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

pub(crate) fn string_field(obj: &Object, want: &str) -> Option<String> {
    str_field(obj, want).map(str::to_owned)
}

pub(crate) fn obj_field<'a>(obj: &'a Object, want: &str) -> Option<&'a Object> {
    field(obj, want).and_then(Value::as_object)
}

/// A non-negative integer sent either as a number or as a numeric string.
pub(crate) fn u64_field(obj: &Object, want: &str) -> Option<u64> {
    match field(obj, want)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean sent as `true` or as the string `"true"` (EBS `Incremental` is a string).
pub(crate) fn bool_field(obj: &Object, want: &str) -> Option<bool> {
    match field(obj, want)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// An array of strings; anything that is not a string is skipped.
pub(crate) fn string_list(obj: &Object, want: &str) -> Vec<String> {
    match field(obj, want) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_owned()],
        _ => Vec::new(),
    }
}

/// Timestamps are informational: documentation samples carry placeholders such as
/// `yyyy-mm-ddThh:mm:ssZ` or impossible dates (`2021-05-45`), so an unparsable one is `None`,
/// never an error.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // RDS event-subscription messages use "2019-01-02 12:45:06.000" (UTC, no zone).
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok().map(|t| t.and_utc())
}

pub(crate) fn time_field(obj: &Object, want: &str) -> Option<DateTime<Utc>> {
    str_field(obj, want).and_then(parse_time)
}

/// A stable id for records that carry none of their own: same inputs, same id.
pub(crate) fn derived_id(kind: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    for p in parts {
        // Length-prefix each part so ("ab", "c") and ("a", "bc") differ.
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let digest = hex::encode(h.finalize());
    format!("{kind}-{}", &digest[..32])
}

/// Extract an AWS resource id (`snap-…`, `vol-…`, `i-…`) from a bare id or any ARN form,
/// including the documented-but-odd `arn:aws:ec2::us-west-2:snapshot/snap-…` where the region
/// sits in the account slot, and values with stray spaces (`"instance/ i-123"` in the EC2 docs).
pub(crate) fn resource_id(s: &str, prefix: &str) -> Option<String> {
    let tail = s.rsplit(['/', ':']).next()?.trim();
    let rest = tail.strip_prefix(prefix)?;
    (!rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| tail.to_owned())
}

/// ARN fields: `arn:partition:service:region:account:resource`.
fn arn_parts(arn: &str) -> Option<[&str; 6]> {
    let mut it = arn.trim().splitn(6, ':');
    let parts = [it.next()?, it.next()?, it.next()?, it.next()?, it.next()?, it.next()?];
    (parts[0] == "arn").then_some(parts)
}

/// The region an ARN names, looked for in the region slot and then the account slot (EBS
/// snapshot events have used both).
pub(crate) fn arn_region(arn: &str) -> Option<String> {
    let p = arn_parts(arn)?;
    [p[3], p[4]].into_iter().find(|s| looks_like_region(s)).map(str::to_owned)
}

pub(crate) fn arn_account(arn: &str) -> Option<String> {
    let p = arn_parts(arn)?;
    (!p[4].is_empty() && p[4].bytes().all(|b| b.is_ascii_digit())).then(|| p[4].to_owned())
}

/// The resource part of an ARN (`db:my-db`, `snapshot:rds:my-snap`, `rule/my-rule`).
pub(crate) fn arn_resource(arn: &str) -> Option<&str> {
    arn_parts(arn).map(|p| p[5])
}

/// `us-east-1`, `eu-west-2`, `us-gov-west-1`, `cn-north-1`, `ap-southeast-4`…
pub(crate) fn looks_like_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// Short human description of what an unrecognised object holds, for error messages.
pub(crate) fn describe_keys(obj: &Object) -> String {
    if obj.is_empty() {
        return "an empty object".to_owned();
    }
    let mut keys: Vec<String> = obj
        .keys()
        .take(8)
        .map(|k| {
            let short: String = k.chars().take(40).collect();
            format!("`{short}`")
        })
        .collect();
    if obj.len() > 8 {
        keys.push(format!("… ({} keys in all)", obj.len()));
    }
    format!("an object with keys {}", keys.join(", "))
}

pub(crate) fn describe_value(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_across_spellings() {
        assert!(key_matches("EventID", "eventid"));
        assert!(key_matches("snapshot_id", "snapshotid"));
        assert!(key_matches("Event Source", "eventsource"));
        assert!(key_matches("detail-type", "detailtype"));
        assert!(!key_matches("eventSourceX", "eventsource"));
        assert!(!key_matches("event", "eventsource"));
    }

    #[test]
    fn ids_from_every_arn_shape() {
        for s in [
            "snap-01234567",
            "arn:aws:ec2::us-west-2:snapshot/snap-01234567",
            "arn:aws:ec2:us-west-2::snapshot/snap-01234567",
            "arn:aws:ec2:us-west-2:123456789012:snapshot/snap-01234567",
            " snap-01234567 ",
        ] {
            assert_eq!(resource_id(s, "snap-").as_deref(), Some("snap-01234567"), "{s}");
        }
        assert_eq!(resource_id("snap-", "snap-"), None);
        assert_eq!(resource_id("vol-123", "snap-"), None);
        assert_eq!(resource_id("snap-12/../x", "snap-"), None);
    }

    #[test]
    fn regions_from_either_slot() {
        assert_eq!(arn_region("arn:aws:ec2::us-west-2:snapshot/snap-1").as_deref(), Some("us-west-2"));
        assert_eq!(arn_region("arn:aws:ec2:eu-west-1::snapshot/snap-1").as_deref(), Some("eu-west-1"));
        assert_eq!(arn_region("arn:aws-us-gov:ec2:us-gov-west-1:1:x").as_deref(), Some("us-gov-west-1"));
        assert_eq!(arn_region("arn:aws:s3:::bucket"), None);
        assert_eq!(arn_region("not an arn"), None);
    }

    #[test]
    fn depth_guard_ignores_brackets_in_strings() {
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(matches!(check_depth(&deep, "t"), Err(EventError::TooDeep { .. })));
        let quoted = format!("\"{}\"", "[".repeat(100));
        assert!(check_depth(&quoted, "t").is_ok());
        assert!(check_depth(r#"{"a":"\"[[[["}"#, "t").is_ok());
    }

    #[test]
    fn times_tolerate_placeholders() {
        assert!(parse_time("2015-10-08T16:53:06Z").is_some());
        assert!(parse_time("2019-01-02 12:45:06.000").is_some());
        assert!(parse_time("yyyy-mm-ddThh:mm:ssZ").is_none());
        assert!(parse_time("2021-05-45T15:30:00Z").is_none());
    }
}
