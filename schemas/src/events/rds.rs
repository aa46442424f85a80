//! RDS events: EventBridge `RDS DB … Event`s and the older event-subscription messages RDS
//! publishes to SNS.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::json::{
    self, arn_account, arn_region, arn_resource, looks_like_region, normalise, str_field, string_field, string_list,
    time_field, Object,
};
use super::{malformed, AwsEvent, EventError, ParsedEvent};

string_enum! {
    /// What kind of RDS resource the event is about. EventBridge sends `DB_INSTANCE`,
    /// `SNAPSHOT`, `CLUSTER`, `CLUSTER_SNAPSHOT`; SNS subscription messages send `db-instance`,
    /// `db-snapshot`, `db-cluster`, `db-cluster-snapshot`. Both map to the same variants.
    RdsSourceType {
        DbInstance => "DB_INSTANCE",
        DbSnapshot => "SNAPSHOT",
        DbCluster => "CLUSTER",
        DbClusterSnapshot => "CLUSTER_SNAPSHOT",
    }
}

impl RdsSourceType {
    pub fn parse(s: &str) -> Self {
        match normalise(s).as_str() {
            "dbinstance" | "instance" => Self::DbInstance,
            "snapshot" | "dbsnapshot" => Self::DbSnapshot,
            "cluster" | "dbcluster" => Self::DbCluster,
            "clustersnapshot" | "dbclustersnapshot" => Self::DbClusterSnapshot,
            _ => Self::Other(s.trim().to_owned()),
        }
    }

    /// Older `detail` revisions may lack `SourceType`; the detail-type says the same thing.
    fn from_detail_type(detail_type: &str) -> Option<Self> {
        match normalise(detail_type).as_str() {
            "rdsdbinstanceevent" => Some(Self::DbInstance),
            "rdsdbsnapshotevent" => Some(Self::DbSnapshot),
            "rdsdbclusterevent" => Some(Self::DbCluster),
            "rdsdbclustersnapshotevent" => Some(Self::DbClusterSnapshot),
            _ => None,
        }
    }
}

/// An RDS event, from EventBridge or an RDS event subscription via SNS.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RdsEvent {
    pub source_type: RdsSourceType,
    /// The instance / snapshot / cluster identifier as sent. Automated snapshot names keep their
    /// `rds:` prefix (`rds:mydb-2024-01-01-00-00`), which is part of the name.
    pub source_identifier: String,
    pub source_arn: Option<String>,
    /// `RDS-EVENT-0042`; `None` in older EventBridge revisions that had no `EventID`.
    pub event_id: Option<String>,
    pub message: Option<String>,
    pub event_categories: Vec<String>,
    /// `detail.Date` / `Event Time`.
    pub date: Option<DateTime<Utc>>,
}

pub(super) fn from_eventbridge(
    detail: &Object,
    detail_type: &str,
    resources: &[String],
) -> Result<RdsEvent, EventError> {
    let source_arn = string_field(detail, "sourcearn").or_else(|| resources.first().cloned());
    let source_type = str_field(detail, "sourcetype")
        .map(RdsSourceType::parse)
        .or_else(|| RdsSourceType::from_detail_type(detail_type))
        .unwrap_or_else(|| RdsSourceType::Other(detail_type.to_owned()));
    let source_identifier = string_field(detail, "sourceidentifier")
        .or_else(|| source_arn.as_deref().and_then(identifier_from_arn))
        .ok_or_else(|| {
            malformed(detail_type, "`detail.SourceIdentifier` is missing and no `SourceArn` to derive it from")
        })?;
    Ok(RdsEvent {
        source_type,
        source_identifier,
        source_arn,
        event_id: str_field(detail, "eventid").and_then(event_id),
        message: string_field(detail, "message"),
        event_categories: string_list(detail, "eventcategories"),
        date: time_field(detail, "date"),
    })
}

/// The RDS event-subscription format (`{"Event Source": "db-instance", "Source ID": …,
/// "Event ID": "http://…#RDS-EVENT-0002", "Event Message": …}`), delivered through SNS. It
/// carries no id, region or account: the id is derived from its content, region and account
/// come from the resource ARN or console link when present, else from the SNS topic ARN.
pub(super) fn parse_subscription_message(obj: &Object, topic_arn: Option<&str>) -> Result<ParsedEvent, EventError> {
    const WHAT: &str = "RDS event-subscription message";
    let source_identifier = string_field(obj, "sourceid").ok_or_else(|| malformed(WHAT, "`Source ID` is missing"))?;
    let raw_time = str_field(obj, "eventtime");
    let raw_event_id = str_field(obj, "eventid");
    let message = string_field(obj, "eventmessage");
    let source_arn = string_field(obj, "sourcearn");
    let link_region = str_field(obj, "identifierlink").and_then(region_from_link);
    let region = source_arn.as_deref().and_then(arn_region).or(link_region).or_else(|| topic_arn.and_then(arn_region));
    let account = source_arn.as_deref().and_then(arn_account).or_else(|| topic_arn.and_then(arn_account));
    let id = json::derived_id(
        "rds",
        &[
            &source_identifier,
            raw_time.unwrap_or_default(),
            raw_event_id.unwrap_or_default(),
            message.as_deref().unwrap_or_default(),
        ],
    );
    Ok(ParsedEvent {
        id,
        time: raw_time.and_then(json::parse_time),
        region,
        account,
        event: AwsEvent::Rds(RdsEvent {
            source_type: str_field(obj, "eventsource")
                .map(RdsSourceType::parse)
                .unwrap_or_else(|| RdsSourceType::Other("unknown".to_owned())),
            source_identifier,
            source_arn,
            event_id: raw_event_id.and_then(event_id),
            message,
            event_categories: string_list(obj, "eventcategories"),
            date: raw_time.and_then(json::parse_time),
        }),
    })
}

/// `RDS-EVENT-0042` from itself or from the documentation URL subscription messages send
/// (`http://docs.amazonwebservices.com/…/USER_Events.html#RDS-EVENT-0002`).
fn event_id(raw: &str) -> Option<String> {
    let id = raw.rsplit('#').next().unwrap_or(raw).trim();
    if id.is_empty() {
        None
    } else if id.len() > 4 && id.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("rds-")) {
        Some(id.to_ascii_uppercase())
    } else {
        Some(id.to_owned())
    }
}

/// `arn:aws:rds:…:db:my-db` → `my-db`; `…:snapshot:rds:my-snap` → `rds:my-snap`.
fn identifier_from_arn(arn: &str) -> Option<String> {
    let (_, id) = arn_resource(arn)?.split_once(':')?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// The `region=` query parameter of the console link in subscription messages.
fn region_from_link(link: &str) -> Option<String> {
    let start = link.find("region=")? + "region=".len();
    let region: String = link[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    looks_like_region(&region).then_some(region)
}
