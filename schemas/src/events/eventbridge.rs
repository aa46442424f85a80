//! The EventBridge envelope: routes on `source` + `detail-type` to the per-service parsers.

use std::borrow::Cow;

use serde_json::Value;

use super::json::{self, arn_resource, describe_value, field, str_field, string_field, string_list, Object};
use super::{cloudtrail, ec2, malformed, rds, s3, AwsEvent, EventError, ParsedEvent};

pub(super) fn parse(obj: &Object) -> Result<ParsedEvent, EventError> {
    let detail_type = str_field(obj, "detailtype")
        .ok_or_else(|| malformed("EventBridge event", "`detail-type` is not a non-empty string"))?;
    let source = str_field(obj, "source").ok_or_else(|| malformed(detail_type, "`source` is missing"))?;
    // EventBridge always assigns an id; an input transformer may have dropped it. A hash of the
    // whole event keeps redeliveries deduplicable.
    let id = string_field(obj, "id")
        .unwrap_or_else(|| json::derived_id("eb", &[&serde_json::to_string(obj).unwrap_or_default()]));
    let mut region = string_field(obj, "region");
    let mut account = string_field(obj, "account");
    let time = json::time_field(obj, "time");
    let resources = string_list(obj, "resources");
    let raw_detail = field(obj, "detail");
    let detail = || detail_object(raw_detail, detail_type);

    let src = source.to_ascii_lowercase();
    let is = |t: &str| detail_type.eq_ignore_ascii_case(t);
    let starts = |p: &str| detail_type.get(..p.len()).is_some_and(|head| head.eq_ignore_ascii_case(p));

    let event = if is("AWS API Call via CloudTrail") {
        let call = cloudtrail::from_record(&*detail()?, detail_type)?;
        region = region.or_else(|| call.aws_region.clone());
        account = account.or_else(|| call.recipient_account_id.clone());
        AwsEvent::CloudTrailApiCall(call)
    } else if is("Scheduled Event") && (src == "aws.events" || src == "aws.scheduler") {
        AwsEvent::Scheduled { rule_name: rule_name(&resources), scheduler: src == "aws.scheduler" }
    } else if src == "aws.ec2" && is("EC2 Instance State-change Notification") {
        ec2::instance_state_change(&*detail()?, &resources)?
    } else if src == "aws.ec2" && is("EBS Snapshot Notification") {
        AwsEvent::EbsSnapshot(ec2::snapshot(&*detail()?, &resources)?)
    } else if src == "aws.ec2" && is("EBS Multi-Volume Snapshots Completion Status") {
        ec2::multi_volume_snapshots(&*detail()?)?
    } else if src == "aws.ec2" && is("EBS Volume Notification") {
        ec2::volume(&*detail()?, &resources)?
    } else if src == "aws.rds" && starts("RDS ") {
        AwsEvent::Rds(rds::from_eventbridge(&*detail()?, detail_type, &resources)?)
    } else if src == "aws.s3" && starts("Object ") {
        AwsEvent::S3Object(s3::from_eventbridge(&*detail()?, detail_type)?)
    } else {
        AwsEvent::Other { source: source.to_owned(), detail_type: detail_type.to_owned() }
    };
    Ok(ParsedEvent { id, time, region, account, event })
}

/// `detail` as an object. EventBridge Scheduler sends it as a JSON *string* (`"detail": "{}"`);
/// a missing or null detail is read as empty so the per-type parser reports the missing field.
fn detail_object<'a>(raw: Option<&'a Value>, detail_type: &str) -> Result<Cow<'a, Object>, EventError> {
    match raw {
        None | Some(Value::Null) => Ok(Cow::Owned(Object::new())),
        Some(Value::Object(o)) => Ok(Cow::Borrowed(o)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Cow::Owned(Object::new())),
        Some(Value::String(s)) => match json::parse_bounded(s, "EventBridge `detail` string")? {
            Value::Object(o) => Ok(Cow::Owned(o)),
            other => Err(malformed(
                detail_type,
                format!("`detail` string holds {}, expected an object", describe_value(&other)),
            )),
        },
        Some(other) => {
            Err(malformed(detail_type, format!("`detail` is {}, expected an object", describe_value(other))))
        }
    }
}

/// Rule ARNs are `…:rule/NAME` or `…:rule/BUS/NAME`, Scheduler ARNs `…:schedule/GROUP/NAME`:
/// the name is the last path segment.
fn rule_name(resources: &[String]) -> Option<String> {
    let arn =
        resources.iter().find(|r| r.contains(":rule/") || r.contains(":schedule/")).or_else(|| resources.first())?;
    let resource = arn_resource(arn).unwrap_or(arn);
    let (_, name) = resource.rsplit_once('/')?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}
