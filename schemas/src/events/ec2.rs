//! EC2 and EBS events: instance state changes, snapshot and volume notifications.

use serde::Serialize;
use serde_json::Value;

use super::json::{
    arn_region, bool_field, describe_value, field, normalise, resource_id, str_field, string_field, Object,
};
use super::{malformed, AwsEvent, EventError};

string_enum! {
    /// `detail.state` of an EC2 state-change event. Parsed case-insensitively: AWS sends
    /// lower case, hand-written rules and older tooling use `Stopping`.
    Ec2InstanceState {
        Pending => "pending",
        Running => "running",
        Stopping => "stopping",
        Stopped => "stopped",
        ShuttingDown => "shutting-down",
        Terminated => "terminated",
    }
}

impl Ec2InstanceState {
    pub fn parse(s: &str) -> Self {
        match normalise(s).as_str() {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            "shuttingdown" => Self::ShuttingDown,
            "terminated" => Self::Terminated,
            _ => Self::Other(s.trim().to_owned()),
        }
    }
}

string_enum! {
    /// `detail.event` of an EBS snapshot notification.
    EbsSnapshotEvent {
        CreateSnapshot => "createSnapshot",
        CreateSnapshots => "createSnapshots",
        CopySnapshot => "copySnapshot",
        ShareSnapshot => "shareSnapshot",
        ArchiveSnapshot => "archiveSnapshot",
        PermanentRestoreSnapshot => "permanentRestoreSnapshot",
        TemporaryRestoreSnapshot => "temporaryRestoreSnapshot",
        /// The EC2 docs spell it `restoryExpiry`; both spellings are accepted.
        RestoreExpiry => "restoreExpiry",
    }
}

impl EbsSnapshotEvent {
    pub fn parse(s: &str) -> Self {
        match normalise(s).as_str() {
            "createsnapshot" => Self::CreateSnapshot,
            "createsnapshots" => Self::CreateSnapshots,
            "copysnapshot" => Self::CopySnapshot,
            "sharesnapshot" => Self::ShareSnapshot,
            "archivesnapshot" => Self::ArchiveSnapshot,
            "permanentrestoresnapshot" => Self::PermanentRestoreSnapshot,
            "temporaryrestoresnapshot" => Self::TemporaryRestoreSnapshot,
            "restoreexpiry" | "restoryexpiry" => Self::RestoreExpiry,
            _ => Self::Other(s.trim().to_owned()),
        }
    }
}

string_enum! {
    /// `detail.result` of an EBS snapshot notification (`succeeded`, `failed`; any case).
    EbsResult {
        Succeeded => "succeeded",
        Failed => "failed",
    }
}

impl EbsResult {
    pub fn parse(s: &str) -> Self {
        match normalise(s).as_str() {
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => Self::Other(s.trim().to_owned()),
        }
    }
}

/// An `EBS Snapshot Notification`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EbsSnapshotNotification {
    pub event: EbsSnapshotEvent,
    pub result: EbsResult,
    /// Just the `snap-…` id, whatever ARN form `detail.snapshot_id` used.
    pub snapshot_id: String,
    /// The region named in the snapshot ARN (for copySnapshot: the destination region).
    pub snapshot_region: Option<String>,
    /// `detail.source` as sent: the volume ARN for createSnapshot, the source snapshot ARN for
    /// copySnapshot. See [`Self::source_volume_id`] and [`Self::source_snapshot_id`].
    pub source: Option<String>,
    /// Failure reason; `None` when empty (AWS sends `""` on success).
    pub cause: Option<String>,
    pub request_id: Option<String>,
    /// `detail.Incremental` (a string `"true"` in the docs).
    pub incremental: Option<bool>,
}

impl EbsSnapshotNotification {
    /// The `vol-…` id the snapshot was taken from, when `source` names a volume.
    pub fn source_volume_id(&self) -> Option<String> {
        self.source.as_deref().and_then(|s| resource_id(s, "vol-"))
    }

    /// The `snap-…` id copied from, when `source` names a snapshot (copySnapshot).
    pub fn source_snapshot_id(&self) -> Option<String> {
        self.source.as_deref().and_then(|s| resource_id(s, "snap-"))
    }

    /// The region `source` names (for copySnapshot: the region copied from).
    pub fn source_region(&self) -> Option<String> {
        self.source.as_deref().and_then(arn_region)
    }
}

/// One snapshot of an `EBS Multi-Volume Snapshots Completion Status` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MultiVolumeSnapshot {
    pub snapshot_id: Option<String>,
    pub volume_id: Option<String>,
    /// Per-snapshot status as sent (`completed`, `failed`…).
    pub status: Option<String>,
}

pub(super) fn instance_state_change(detail: &Object, resources: &[String]) -> Result<AwsEvent, EventError> {
    const WHAT: &str = "EC2 Instance State-change Notification";
    // Trimmed: the EC2 docs show `"instance-id": " i-1234567890abcdef0"`.
    let instance_id = str_field(detail, "instanceid")
        .map(str::to_owned)
        .or_else(|| resources.iter().find_map(|r| resource_id(r, "i-")))
        .ok_or_else(|| malformed(WHAT, "`detail.instance-id` is missing"))?;
    let state = str_field(detail, "state")
        .map(Ec2InstanceState::parse)
        .ok_or_else(|| malformed(WHAT, "`detail.state` is missing"))?;
    Ok(AwsEvent::Ec2InstanceStateChange { instance_id, state })
}

fn event_and_result(detail: &Object, what: &str) -> Result<(EbsSnapshotEvent, EbsResult), EventError> {
    let event = str_field(detail, "event")
        .map(EbsSnapshotEvent::parse)
        .ok_or_else(|| malformed(what, "`detail.event` is missing"))?;
    let result = str_field(detail, "result")
        .map(EbsResult::parse)
        .ok_or_else(|| malformed(what, "`detail.result` is missing"))?;
    Ok((event, result))
}

pub(super) fn snapshot(detail: &Object, resources: &[String]) -> Result<EbsSnapshotNotification, EventError> {
    const WHAT: &str = "EBS Snapshot Notification";
    let (event, result) = event_and_result(detail, WHAT)?;
    // The docs have shown `arn:aws:ec2::REGION:snapshot/…` and `arn:aws:ec2:REGION::snapshot/…`
    // across revisions; only the trailing id is reliable, so fall back to `resources` too.
    let from_detail = str_field(detail, "snapshotid").filter(|s| resource_id(s, "snap-").is_some());
    let snapshot_arn = from_detail
        .or_else(|| resources.iter().map(String::as_str).find(|r| resource_id(r, "snap-").is_some()))
        .ok_or_else(|| malformed(WHAT, "no `snap-` id in `detail.snapshot_id` or `resources`"))?;
    Ok(EbsSnapshotNotification {
        event,
        result,
        snapshot_id: resource_id(snapshot_arn, "snap-").unwrap_or_default(),
        snapshot_region: arn_region(snapshot_arn),
        source: string_field(detail, "source"),
        cause: string_field(detail, "cause"),
        request_id: string_field(detail, "requestid"),
        incremental: bool_field(detail, "incremental"),
    })
}

pub(super) fn multi_volume_snapshots(detail: &Object) -> Result<AwsEvent, EventError> {
    const WHAT: &str = "EBS Multi-Volume Snapshots Completion Status";
    let (event, result) = event_and_result(detail, WHAT)?;
    let snapshots = match field(detail, "snapshots") {
        // A failed createSnapshots may list no snapshots at all.
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(s) => Ok(MultiVolumeSnapshot {
                    snapshot_id: str_field(s, "snapshotid").and_then(|v| resource_id(v, "snap-")),
                    volume_id: str_field(s, "source").and_then(|v| resource_id(v, "vol-")),
                    status: string_field(s, "status"),
                }),
                other => Err(malformed(
                    WHAT,
                    format!("`detail.snapshots[{i}]` is {}, expected an object", describe_value(other)),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(malformed(WHAT, format!("`detail.snapshots` is {}, expected an array", describe_value(other))))
        }
    };
    Ok(AwsEvent::EbsMultiVolumeSnapshots { event, result, cause: string_field(detail, "cause"), snapshots })
}

pub(super) fn volume(detail: &Object, resources: &[String]) -> Result<AwsEvent, EventError> {
    const WHAT: &str = "EBS Volume Notification";
    let event = string_field(detail, "event").ok_or_else(|| malformed(WHAT, "`detail.event` is missing"))?;
    let result = string_field(detail, "result").ok_or_else(|| malformed(WHAT, "`detail.result` is missing"))?;
    // The volume is named only in `resources` (next to e.g. the KMS key that made it fail).
    let volume_id = resources
        .iter()
        .find_map(|r| resource_id(r, "vol-"))
        .ok_or_else(|| malformed(WHAT, "no `vol-` id in `resources`"))?;
    Ok(AwsEvent::EbsVolume { event, result, volume_id, cause: string_field(detail, "cause") })
}
