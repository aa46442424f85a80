//! CloudTrail API calls, EventBridge-wrapped (`AWS API Call via CloudTrail`) or bare records.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::json::{self, field, normalise, obj_field, string_field, Object};
use super::{malformed, AwsEvent, EventError, ParsedEvent};

/// One CloudTrail record of an API call. Request and response stay untyped JSON: their shape is
/// per API and mostly irrelevant; [`CloudTrailCall::created_resources`] reads the parts that
/// matter for backups.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CloudTrailCall {
    /// `ec2.amazonaws.com`, `rds.amazonaws.com`, `s3.amazonaws.com`…
    pub event_source: String,
    /// `RunInstances`, `CreateVolume`, `CreateDBInstance`, `CreateBucket`…
    pub event_name: String,
    pub aws_region: Option<String>,
    /// CloudTrail `eventID`.
    pub event_id: Option<String>,
    /// `AwsApiCall`, `AwsServiceEvent`, `AwsConsoleSignIn`…
    pub event_type: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    /// Set when the call failed; a failed call created nothing.
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub user_identity_arn: Option<String>,
    pub recipient_account_id: Option<String>,
    /// `Null` when absent (CloudTrail sends `null` for many calls).
    pub request_parameters: Value,
    pub response_elements: Value,
}

impl CloudTrailCall {
    /// Ids of the resources this call created, for the calls the producer reacts to:
    /// `RunInstances` → instance ids, `CreateVolume` → volume id, `CreateSnapshot(s)` /
    /// `CopySnapshot` → snapshot ids, `CreateDBInstance` / `CreateDBCluster` → identifiers,
    /// `CreateBucket` → bucket name. Empty for failed calls and every other API.
    pub fn created_resources(&self) -> Vec<String> {
        if self.error_code.is_some() {
            return Vec::new();
        }
        let service = self.event_source.split('.').next().unwrap_or_default();
        let resp = &self.response_elements;
        let req = &self.request_parameters;
        match (service, self.event_name.as_str()) {
            ("ec2", "RunInstances") => item_ids(resp, "instancesset", "instanceid"),
            ("ec2", "CreateVolume") => one(resp, "volumeid"),
            ("ec2", "CreateSnapshot" | "CopySnapshot") => one(resp, "snapshotid"),
            ("ec2", "CreateSnapshots") => item_ids(resp, "snapshotset", "snapshotid"),
            // RDS lower-cases identifiers; the response has the final form, the request the
            // caller's spelling.
            ("rds", "CreateDBInstance") => {
                first_of(one(resp, "dbinstanceidentifier"), || one(req, "dbinstanceidentifier"))
            }
            ("rds", "CreateDBCluster") => {
                first_of(one(resp, "dbclusteridentifier"), || one(req, "dbclusteridentifier"))
            }
            ("s3", "CreateBucket") => one(req, "bucketname"),
            _ => Vec::new(),
        }
    }
}

fn first_of(a: Vec<String>, b: impl FnOnce() -> Vec<String>) -> Vec<String> {
    if a.is_empty() {
        b()
    } else {
        a
    }
}

fn one(v: &Value, key: &str) -> Vec<String> {
    v.as_object().and_then(|o| string_field(o, key)).into_iter().collect()
}

/// EC2's XML-derived JSON: `{"instancesSet": {"items": [{"instanceId": …}]}}`.
fn item_ids(v: &Value, set: &str, key: &str) -> Vec<String> {
    let items = v.as_object().and_then(|o| obj_field(o, set)).and_then(|s| field(s, "items")).and_then(Value::as_array);
    items.into_iter().flatten().filter_map(|item| item.as_object().and_then(|o| string_field(o, key))).collect()
}

pub(super) fn from_record(rec: &Object, what: &str) -> Result<CloudTrailCall, EventError> {
    let event_source = string_field(rec, "eventsource").ok_or_else(|| malformed(what, "`eventSource` is missing"))?;
    let event_name = string_field(rec, "eventname").ok_or_else(|| malformed(what, "`eventName` is missing"))?;
    Ok(CloudTrailCall {
        event_source,
        event_name,
        aws_region: string_field(rec, "awsregion"),
        event_id: string_field(rec, "eventid"),
        event_type: string_field(rec, "eventtype"),
        event_time: json::time_field(rec, "eventtime"),
        error_code: string_field(rec, "errorcode"),
        error_message: string_field(rec, "errormessage"),
        user_identity_arn: obj_field(rec, "useridentity").and_then(|u| string_field(u, "arn")),
        recipient_account_id: string_field(rec, "recipientaccountid"),
        request_parameters: field(rec, "requestparameters").cloned().unwrap_or(Value::Null),
        response_elements: field(rec, "responseelements").cloned().unwrap_or(Value::Null),
    })
}

/// A CloudTrail record without the EventBridge envelope. Only API calls become
/// [`AwsEvent::CloudTrailApiCall`]; sign-ins and service events become `Other` with the
/// detail-type EventBridge would have given them.
pub(super) fn parse_bare(rec: &Object) -> Result<ParsedEvent, EventError> {
    let call = from_record(rec, "CloudTrail record")?;
    let id = call
        .event_id
        .clone()
        .unwrap_or_else(|| json::derived_id("ct", &[&serde_json::to_string(rec).unwrap_or_default()]));
    let account = call
        .recipient_account_id
        .clone()
        .or_else(|| obj_field(rec, "useridentity").and_then(|u| string_field(u, "accountid")));
    let (time, region) = (call.event_time, call.aws_region.clone());
    let event_type = call.event_type.clone().unwrap_or_else(|| "AwsApiCall".to_owned());
    let source = eventbridge_source(&call.event_source);
    let other = |detail_type: &str| AwsEvent::Other { source: source.clone(), detail_type: detail_type.to_owned() };
    let event = match normalise(&event_type).as_str() {
        "awsapicall" => AwsEvent::CloudTrailApiCall(call),
        "awsconsolesignin" => other("AWS Console Sign In via CloudTrail"),
        "awsserviceevent" => other("AWS Service Event via CloudTrail"),
        _ => other(&event_type),
    };
    Ok(ParsedEvent { id, time, region, account, event })
}

/// `ec2.amazonaws.com` → `aws.ec2`, the `source` EventBridge gives CloudTrail events.
fn eventbridge_source(event_source: &str) -> String {
    let service = event_source.strip_suffix(".amazonaws.com").unwrap_or(event_source);
    format!("aws.{service}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names() {
        assert_eq!(eventbridge_source("ec2.amazonaws.com"), "aws.ec2");
        assert_eq!(eventbridge_source("signin.amazonaws.com"), "aws.signin");
        assert_eq!(eventbridge_source("weird"), "aws.weird");
    }

    #[test]
    fn failed_calls_create_nothing() {
        let rec: Object = serde_json::from_str(
            r#"{"eventSource":"ec2.amazonaws.com","eventName":"CreateVolume",
                "errorCode":"Client.InvalidSnapshot.NotFound",
                "responseElements":{"volumeId":"vol-1"}}"#,
        )
        .unwrap_or_default();
        let call = from_record(&rec, "t").map(|c| c.created_resources());
        assert_eq!(call, Ok(Vec::new()));
    }
}
