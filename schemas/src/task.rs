//! Every task kind with its typed parameters, and the derivation of deterministic task ids.
//!
//! The list of kinds exists once, in the `task_kinds!` invocation below: it generates the `Task`
//! enum (kind + params), the fieldless `TaskKind`, and the name table. A new kind therefore does
//! not compile until every exhaustive `match` over `Task` (worker dispatch, identity) handles it.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::fmt;
use std::str::FromStr;

use crate::ids::TaskId;

macro_rules! task_kinds {
    ($( $(#[$doc:meta])* $variant:ident($params:ty) = $name:literal, )+) => {
        /// One unit of work: a kind and its parameters. Serialised adjacently tagged as
        /// `{"kind": "...", "params": {...}}` inside the envelope.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(tag = "kind", content = "params")]
        pub enum Task {
            $( $(#[$doc])* #[serde(rename = $name)] $variant($params), )+
        }

        /// The kind of a task without its parameters: a bounded label for metrics and filters.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        pub enum TaskKind {
            $( #[serde(rename = $name)] $variant, )+
        }

        impl TaskKind {
            pub const ALL: &'static [TaskKind] = &[ $( TaskKind::$variant, )+ ];

            pub fn as_str(self) -> &'static str {
                match self { $( TaskKind::$variant => $name, )+ }
            }
        }

        impl Task {
            pub fn kind(&self) -> TaskKind {
                match self { $( Task::$variant(_) => TaskKind::$variant, )+ }
            }

            /// The JSON Schema of each kind's parameters, for the checked-in schema files.
            pub fn params_schemas() -> Vec<(TaskKind, schemars::Schema)> {
                vec![ $( (TaskKind::$variant, schemars::schema_for!($params)), )+ ]
            }
        }
    };
}

task_kinds! {
    /// Snapshot one EBS volume.
    SnapshotVolume(SnapshotVolume) = "ebs.snapshot_volume",
    /// Snapshot all volumes of an instance as one crash-consistent set (CreateSnapshots).
    SnapshotInstance(SnapshotInstance) = "ec2.snapshot_instance",
    /// Create an AMI of an instance (no reboot by default).
    CreateAmi(CreateAmi) = "ec2.create_ami",
    /// Copy an EBS snapshot to another region.
    CopySnapshot(CopySnapshot) = "ebs.copy_snapshot",
    /// Copy an AMI to another region.
    CopyAmi(CopyAmi) = "ec2.copy_ami",
    /// Manual snapshot of an RDS DB instance.
    SnapshotDbInstance(SnapshotDbInstance) = "rds.snapshot_instance",
    /// Manual snapshot of an Aurora DB cluster.
    SnapshotDbCluster(SnapshotDbCluster) = "rds.snapshot_cluster",
    /// Copy a DB instance snapshot to another region.
    CopyDbSnapshot(CopyDbSnapshot) = "rds.copy_instance_snapshot",
    /// Copy a DB cluster snapshot to another region.
    CopyDbClusterSnapshot(CopyDbSnapshot) = "rds.copy_cluster_snapshot",
    /// List one page of a source bucket and fan out copy tasks plus the next page.
    ScanBucket(ScanBucket) = "s3.scan_bucket",
    /// Copy a batch of objects (one listing page) into the backup bucket.
    CopyObjects(CopyObjects) = "s3.copy_batch",
    /// Copy one object into the backup bucket (serves S3 object-created events).
    CopyObject(CopyObject) = "s3.copy_object",
    /// Compute what expires for one resource under one plan, and fan out deletions.
    Prune(Prune) = "retention.prune",
    /// Delete one expired artifact after re-checking every safety rule.
    DeleteArtifact(DeleteArtifact) = "retention.delete",
    /// Verify one artifact: exists, complete, tagged, encrypted, size matches.
    Verify(Verify) = "verify.artifact",
    /// Move one EBS snapshot to the archive tier, as its prune decided (re-checked first).
    ArchiveSnapshot(ArchiveSnapshot) = "ebs.archive_snapshot",
    /// Export a completed RDS / Aurora snapshot to the backup bucket as Parquet (StartExportTask).
    ExportSnapshot(ExportSnapshot) = "rds.export_snapshot",
    /// Logical backup of one PostgreSQL database (pg_dump, custom format) into the backup bucket.
    DumpDatabase(DumpDatabase) = "db.dump",
    /// Restore an EBS snapshot to a new volume.
    RestoreVolume(RestoreVolume) = "restore.volume",
    /// Launch an instance from an AMI.
    RestoreInstance(RestoreInstance) = "restore.instance",
    /// Restore a DB instance from a snapshot.
    RestoreDbInstance(RestoreDbInstance) = "restore.db_instance",
    /// Restore a DB cluster from a cluster snapshot.
    RestoreDbCluster(RestoreDbCluster) = "restore.db_cluster",
    /// Restore S3 objects as of a point in time from the versioned backup bucket.
    RestoreObjects(RestoreObjects) = "restore.s3_objects",
    /// Restore the latest backup of a resource into an isolated target, validate, clean up.
    RestoreDrill(RestoreDrill) = "restore.drill",
    /// End-to-end probe of the fleet: claim, heartbeat, complete, touching no backups.
    Canary(Canary) = "fleet.canary",
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskKind::ALL.iter().copied().find(|kind| kind.as_str() == s).ok_or_else(|| format!("unknown task kind {s:?}"))
    }
}

/// Retention tier of an artifact; the policy's daily/weekly/monthly rules keep per tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Daily,
    Weekly,
    Monthly,
    Yearly,
    /// Made in response to an event (first backup of a new resource, final snapshot).
    Event,
    /// Made by an operator on demand.
    Manual,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Daily => "daily",
            Tier::Weekly => "weekly",
            Tier::Monthly => "monthly",
            Tier::Yearly => "yearly",
            Tier::Event => "event",
            Tier::Manual => "manual",
        }
    }
}

impl FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Tier::Daily, Tier::Weekly, Tier::Monthly, Tier::Yearly, Tier::Event, Tier::Manual]
            .into_iter()
            .find(|tier| tier.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown tier {s:?}"))
    }
}

/// A copy the plan asks for once the source artifact is complete: into another region of the
/// same account, or (with `account`) into an isolated backup account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CopyTarget {
    pub region: String,
    /// KMS key (id, ARN or alias) in the destination region; copies are always encrypted. For a
    /// copy into a backup account: that account's own key (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
    /// Retention of the copy in days; the source artifact's expiry when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_days: Option<u32>,
    /// The isolated backup account the copy goes to: the source is shared with it, copied there
    /// under `kms_key` by its role, and unshared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountRef>,
    /// A customer-managed key in the source account that the backup account may use. A source
    /// encrypted under any other key (the AWS-managed `aws/ebs` and `aws/rds` keys cannot be
    /// shared at all) is first re-encrypted under it by a temporary copy in the source account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_kms_key: Option<String>,
}

/// Why an artifact exists and how long it lives: carried by every backup task so the worker can
/// tag the artifact and record it in the catalog without reading the policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BackupContext {
    pub plan: String,
    pub tier: Tier,
    /// Start of the schedule window (or the event time) this backup belongs to.
    pub window: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Copies to make once the artifact is complete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copy_to: Vec<CopyTarget>,
    /// Spawn a verification task once the artifact is complete.
    #[serde(default)]
    pub verify: bool,
    /// The plan's retention: once the backup completes, the task prunes the resource's older
    /// backups under these rules (and each copy prunes its region with the copy's rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<RetentionRules>,
    /// Export each completed RDS / Aurora snapshot of the plan to S3 (the plan's `export`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<SnapshotExport>,
}

/// Where and how RDS snapshots are exported to S3 (StartExportTask): Parquet files under
/// `<bucket>/<prefix>/<export id>/`, encrypted with the plan's KMS key, written by RDS with
/// `iam_role_arn`. AWS exports only into a bucket in the snapshot's region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotExport {
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    pub iam_role_arn: String,
    pub kms_key: String,
    /// How long the export is kept (its catalog expiry and the tier tag's lifecycle); the
    /// snapshot's expiry when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_days: Option<u32>,
}

/// Another account reached through an assumed role.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct AccountRef {
    pub account_id: String,
    pub role_arn: String,
}

/// Why an `AccountRef` is not usable, naming the field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountRefError {
    AccountId(String),
    RoleArn(String),
}

impl fmt::Display for AccountRefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountRefError::AccountId(reason) => write!(f, "account_id: {reason}"),
            AccountRefError::RoleArn(reason) => write!(f, "role_arn: {reason}"),
        }
    }
}

impl AccountRef {
    /// A 12-digit account id and an IAM role ARN in that same account: a task naming a role in
    /// any other account is refused before anything assumes it.
    pub fn check(&self) -> Result<(), AccountRefError> {
        let id = &self.account_id;
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AccountRefError::AccountId(format!("{id:?} is not a 12-digit AWS account id")));
        }
        match role_account(&self.role_arn) {
            None => Err(AccountRefError::RoleArn(format!(
                "{:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/name)",
                self.role_arn
            ))),
            Some(in_account) if in_account != id => {
                Err(AccountRefError::RoleArn(format!("the role is in account {in_account}, but account_id is {id}")))
            }
            Some(_) => Ok(()),
        }
    }
}

/// The account of an IAM role ARN (`arn:<partition>:iam::<account>:role/<path/name>`).
pub fn role_account(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", partition, "iam", "", account, resource] = parts[..] else { return None };
    let name = resource.strip_prefix("role/")?;
    let valid = partition.starts_with("aws")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && !name.ends_with('/');
    valid.then_some(account)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotVolume {
    pub region: String,
    pub volume_id: String,
    pub ctx: BackupContext,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotInstance {
    pub region: String,
    pub instance_id: String,
    /// Leave the root volume out of the set (CreateSnapshots ExcludeBootVolume).
    #[serde(default)]
    pub exclude_boot_volume: bool,
    pub ctx: BackupContext,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreateAmi {
    pub region: String,
    pub instance_id: String,
    /// Reboot the instance for a file-system-consistent image; off by default (NoReboot).
    #[serde(default)]
    pub reboot: bool,
    pub ctx: BackupContext,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CopySnapshot {
    pub source_region: String,
    pub snapshot_id: String,
    /// The resource the source snapshot backs up (carried into the copy's tags and catalog).
    pub source_resource: String,
    pub target: CopyTarget,
    pub ctx: BackupContext,
    /// The crash-consistent set the source snapshot belongs to, if any: the copy is tagged with
    /// it, so retention in the destination region keeps or deletes the copied set as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<SnapshotSet>,
}

/// A crash-consistent snapshot set (one `CreateSnapshots` call): one backup of several volumes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotSet {
    /// The id of the task that made the set.
    pub id: String,
    /// How many snapshots the set has.
    pub size: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CopyAmi {
    pub source_region: String,
    pub image_id: String,
    pub source_resource: String,
    pub target: CopyTarget,
    pub ctx: BackupContext,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotDbInstance {
    pub region: String,
    pub db_instance_id: String,
    pub ctx: BackupContext,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotDbCluster {
    pub region: String,
    pub db_cluster_id: String,
    pub ctx: BackupContext,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CopyDbSnapshot {
    pub source_region: String,
    /// ARN of the source snapshot (cross-region copies need the ARN, not the identifier).
    pub snapshot_arn: String,
    pub source_resource: String,
    pub target: CopyTarget,
    pub ctx: BackupContext,
}

/// Where S3 backups go: `<backup_bucket>/<source-bucket>/<key>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct S3Destination {
    pub bucket: String,
    pub region: String,
    /// Storage class of the copies, e.g. STANDARD_IA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// Object Lock retention (GOVERNANCE mode) in days, when the bucket has Object Lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_days: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScanBucket {
    pub region: String,
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Continuation token of this page; absent for the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation: Option<String>,
    /// Page number, for progress and for the task id.
    pub page: u32,
    /// The last source key before this page (absent for the first page): the listing of the
    /// backup prefix that this page is compared with starts after its backup key. A later page
    /// without it (a message from an older producer) is checked object by object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_after: Option<String>,
    /// Read the bucket's latest S3 Inventory report instead of listing it (the plan's
    /// `s3.inventory_id`); absent: list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<InventoryScan>,
    pub dest: S3Destination,
    pub ctx: BackupContext,
}

/// A scan from an S3 Inventory report: which configuration, how old a report may be, and (after
/// the first task) where in the report the scan stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryScan {
    /// The inventory configuration's id on the source bucket.
    pub id: String,
    /// A report older than this is not used: the scan lists the bucket instead.
    pub max_age_hours: u32,
    /// Set by the first task: the report being read and the position in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<InventoryCursor>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryCursor {
    /// The bucket holding the report (in the source bucket's region, as S3 requires).
    pub bucket: String,
    pub manifest_key: String,
    /// Index of the data file in the manifest's `files`.
    pub file: u32,
    /// Rows of that file already read.
    pub row: u64,
}

/// One object as listed: copies are skipped when the backup already has this ETag and size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectRef {
    pub key: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CopyObjects {
    pub region: String,
    pub bucket: String,
    pub page: u32,
    pub objects: Vec<ObjectRef>,
    pub dest: S3Destination,
    pub ctx: BackupContext,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CopyObject {
    pub region: String,
    pub bucket: String,
    pub object: ObjectRef,
    pub dest: S3Destination,
    pub ctx: BackupContext,
}

/// Kinds of artifacts the fleet creates and catalogs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    EbsSnapshot,
    Ami,
    RdsSnapshot,
    RdsClusterSnapshot,
    S3Object,
    /// A snapshot exported to S3 as Parquet; the id is the export task identifier.
    SnapshotExport,
    /// A logical dump of a database in the backup bucket; the id is `<bucket>/<key>#<version>`.
    DatabaseDump,
}

impl ArtifactKind {
    pub const ALL: [ArtifactKind; 7] = [
        ArtifactKind::EbsSnapshot,
        ArtifactKind::Ami,
        ArtifactKind::RdsSnapshot,
        ArtifactKind::RdsClusterSnapshot,
        ArtifactKind::S3Object,
        ArtifactKind::SnapshotExport,
        ArtifactKind::DatabaseDump,
    ];

    /// An EBS or RDS snapshot or an AMI: what AWS holds and describes (not an object in a bucket
    /// nor an export task).
    pub fn is_snapshot_or_image(self) -> bool {
        matches!(
            self,
            ArtifactKind::EbsSnapshot
                | ArtifactKind::Ami
                | ArtifactKind::RdsSnapshot
                | ArtifactKind::RdsClusterSnapshot
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::EbsSnapshot => "ebs_snapshot",
            ArtifactKind::Ami => "ami",
            ArtifactKind::RdsSnapshot => "rds_snapshot",
            ArtifactKind::RdsClusterSnapshot => "rds_cluster_snapshot",
            ArtifactKind::S3Object => "s3_object",
            ArtifactKind::SnapshotExport => "snapshot_export",
            ArtifactKind::DatabaseDump => "database_dump",
        }
    }

    /// Objects in a bucket (S3 copies, exports, dumps): they expire through the bucket's
    /// lifecycle and Object Lock, not through deletions by the fleet.
    pub fn lives_in_a_bucket(self) -> bool {
        matches!(self, ArtifactKind::S3Object | ArtifactKind::SnapshotExport | ArtifactKind::DatabaseDump)
    }
}

impl FromStr for ArtifactKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ArtifactKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| format!("unknown artifact kind {s:?}"))
    }
}

/// A reference to one artifact: EBS snapshot id, AMI id, RDS snapshot identifier, or for S3 the
/// backup object key (with version id).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct ArtifactRef {
    pub kind: ArtifactKind,
    pub region: String,
    pub id: String,
}

/// The kinds of source resources a plan selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceType {
    Ec2Volume,
    Ec2Instance,
    RdsInstance,
    RdsCluster,
    S3Bucket,
    /// A PostgreSQL database reachable from the workers, named in the policy (not discovered):
    /// backed up logically with pg_dump.
    PostgresDb,
}

impl ResourceType {
    pub const ALL: [ResourceType; 6] = [
        ResourceType::Ec2Volume,
        ResourceType::Ec2Instance,
        ResourceType::RdsInstance,
        ResourceType::RdsCluster,
        ResourceType::S3Bucket,
        ResourceType::PostgresDb,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Ec2Volume => "ec2-volume",
            ResourceType::Ec2Instance => "ec2-instance",
            ResourceType::RdsInstance => "rds-instance",
            ResourceType::RdsCluster => "rds-cluster",
            ResourceType::S3Bucket => "s3-bucket",
            ResourceType::PostgresDb => "postgres-db",
        }
    }
}

impl FromStr for ResourceType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResourceType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| format!("unknown resource type {s:?} (expected one of ec2-volume, ec2-instance, rds-instance, rds-cluster, s3-bucket, postgres-db)"))
    }
}

/// How long to keep artifacts: by age, by count, and per tier; never below `min_keep`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RetentionRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default)]
    pub min_keep: u32,
    /// Keep the newest artifact of each of the last N days / ISO weeks / months.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<u32>,
    /// Move long-kept EBS snapshots to the archive tier when that saves money. Copies that
    /// inherit the plan's rules carry it; a copy with its own `retain_days` does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveRule>,
}

/// The policy's `archive` table: when an EBS snapshot becomes a candidate for the archive tier,
/// and how much of it the standard tier holds for it alone (EBS bills the standard tier by
/// changed blocks, the archive tier by the full snapshot).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ArchiveRule {
    /// Age in days from which a snapshot is considered.
    pub after_days: u32,
    /// Estimated share (1-100 %) of a snapshot's full size that only it holds in the standard
    /// tier, used unless the catalog records a measured figure.
    pub unique_percent: u8,
    /// The plan's schedule period in days: how long `count` keeps a backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_days: Option<u32>,
    /// Regions the plan copies to: a snapshot is archived only once every copy exists (an
    /// archived snapshot can no longer be copied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copy_regions: Vec<String>,
    /// The plan verifies its backups: a snapshot is archived only once verified.
    #[serde(default)]
    pub verify: bool,
}

/// Why a prune asked for a snapshot to be archived: its estimate, recorded with the archival.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ArchiveEstimate {
    /// Full size archived (GiB; the volume size, an upper bound).
    pub full_gib: f64,
    /// What the standard tier holds for this snapshot alone (GiB).
    pub unique_gib: f64,
    /// Days the retention rules will still keep it.
    pub keep_days: f64,
    /// Estimated saving in USD per month over its remaining life.
    pub monthly_saving_usd: f64,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Prune {
    pub plan: String,
    /// The source resource whose artifacts are pruned (volume id, DB identifier, bucket...).
    pub resource: String,
    pub resource_type: ResourceType,
    pub region: String,
    pub rules: RetentionRules,
    /// The instant the prune evaluates expiry against (the schedule window), so a re-run
    /// decides the same.
    pub as_of: DateTime<Utc>,
    /// In a backup account: the account the copies came from (`self` for the fleet's own).
    /// Only its copies are judged, since resource ids repeat across accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_account: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeleteArtifact {
    pub plan: String,
    pub artifact: ArtifactRef,
    pub reason: String,
    /// The prune that decided the deletion. The deletion decides again, with the same rules and
    /// instant, on a fresh listing right before it deletes, and deletes only what that decision
    /// still deletes. Each prune's deletion is its own task (the id includes `as_of`), so a
    /// deletion refused or failed today is decided afresh by the next prune.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<Prune>,
    /// The other members of the backup when it is a set (deleted together, or not at all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<ArtifactRef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ArchiveSnapshot {
    pub plan: String,
    pub region: String,
    pub snapshot_id: String,
    /// The volume or instance the snapshot backs up.
    pub resource: String,
    pub estimate: ArchiveEstimate,
    /// The prune's instant, for the record.
    pub as_of: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Verify {
    pub artifact: ArtifactRef,
    pub source_resource: String,
    /// What the task that made the artifact knew of it. With it, a snapshot or an image is
    /// checked against AWS without reading its catalog record first; absent (a verification
    /// from an AWS event, or an older worker), the catalog record says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<VerifyOrigin>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VerifyOrigin {
    /// Where the source resource lives (a DR copy's source is in another region).
    pub resource_region: String,
    /// The artifact is a copy of another backup (a copy keeps its source's encryption).
    pub copy: bool,
}

/// Where a restore reads from: a named artifact, the latest verified backup of a resource, or
/// (RDS) a point in time of a database's continuous automated backups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RestoreSource {
    Artifact(ArtifactRef),
    LatestOf { resource: String, region: String },
    PointInTime { resource: String, region: String, to: PointInTime },
}

/// The instant a point-in-time restore goes back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PointInTime {
    At(DateTime<Utc>),
    /// The latest restorable time (a few minutes behind now on AWS).
    Latest,
}

impl fmt::Display for PointInTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointInTime::At(t) => f.write_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            PointInTime::Latest => f.write_str("latest"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RestoreVolume {
    pub restore_id: String,
    pub source: RestoreSource,
    pub availability_zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
    #[serde(default)]
    pub drill: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RestoreInstance {
    pub restore_id: String,
    pub source: RestoreSource,
    pub instance_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// Leave the instance running; by default it is stopped once launched.
    #[serde(default)]
    pub start: bool,
    #[serde(default)]
    pub drill: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RestoreDbInstance {
    pub restore_id: String,
    pub source: RestoreSource,
    pub target_identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_group: Option<String>,
    #[serde(default)]
    pub drill: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RestoreDbCluster {
    pub restore_id: String,
    pub source: RestoreSource,
    pub target_identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_group: Option<String>,
    #[serde(default)]
    pub drill: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RestoreObjects {
    pub restore_id: String,
    pub backup_bucket: String,
    pub region: String,
    /// The original source bucket (the prefix under which the backups are stored).
    pub source_bucket: String,
    #[serde(default)]
    pub prefix: String,
    /// Restore the versions current at this instant; the latest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<DateTime<Utc>>,
    pub target_bucket: String,
    #[serde(default)]
    pub target_prefix: String,
    #[serde(default)]
    pub drill: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RestoreDrill {
    pub plan: String,
    pub resource: String,
    pub resource_type: ResourceType,
    pub region: String,
    pub window: DateTime<Utc>,
    /// Where the drill restores to and what it checks (the plan's `drill` table).
    #[serde(default)]
    pub target: DrillTarget,
}

/// The isolated target of a drill and its validation, from the drill plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DrillTarget {
    /// Subnet of restored instances, and the availability zone of restored volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_subnet_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Drills of the plan running at once (a fleet-wide slot pool per plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
    /// Secret of the PostgreSQL server logical backups are restored into (a scratch database is
    /// created there and dropped after).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch_secret_arn: Option<String>,
    /// SQL checks run against the restored database, each with its expected result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<SqlCheck>,
}

/// One user-supplied validation query: its first column of its first row, as text, must equal
/// `expect` (SQL NULL reads as `NULL`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SqlCheck {
    pub name: String,
    pub sql: String,
    pub expect: String,
}

/// Database engines the fleet backs up logically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DbEngine {
    Postgres,
}

/// A database a plan backs up logically, as the policy names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogicalDatabase {
    /// The policy's name for it: its resource id in the catalog, reports and task ids.
    pub name: String,
    pub engine: DbEngine,
    /// Secrets Manager secret holding `host`, `port`, `username`, `password` and `dbname` (the
    /// JSON RDS uses for its managed secrets). Only the ARN travels in tasks; the worker reads
    /// the secret when it connects and never logs or records it.
    pub secret_arn: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DumpDatabase {
    /// Region of the secret (the database's region in the catalog).
    pub region: String,
    pub database: LogicalDatabase,
    pub dest: S3Destination,
    pub ctx: BackupContext,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExportSnapshot {
    pub region: String,
    /// ARN of the completed snapshot (StartExportTask's SourceArn).
    pub snapshot_arn: String,
    /// The DB instance or cluster the snapshot backs up.
    pub source_resource: String,
    pub export: SnapshotExport,
    pub ctx: BackupContext,
}

/// How a canary task ends, for tests, benchmarks and health probes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CanaryMode {
    #[default]
    Succeed,
    /// Fail with a retryable error on every attempt (exercises backoff, redrive and DEAD).
    Retry,
    /// Fail with a retryable error until attempt N, then succeed.
    RetryUntil(u32),
    /// Fail permanently (exercises FAILED).
    Fail,
    /// Report pending N times before completing (exercises parking and re-checks).
    PendingTimes(u32),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Canary {
    /// Distinguishes canaries: the task id derives from it.
    pub nonce: String,
    #[serde(default)]
    pub sleep_ms: u64,
    #[serde(default)]
    pub mode: CanaryMode,
    /// Children to spawn (each a succeeding canary), exercising fan-out.
    #[serde(default)]
    pub spawn: u32,
}

impl Task {
    /// The fields that make two tasks "the same work". The task id is derived from these, so a
    /// window expanded twice, a re-delivered event, and the event that races a task's own
    /// follow-up all map to one id. Fields like expiry or KMS key are deliberately left out where
    /// they cannot change what artifact is made.
    pub fn identity(&self) -> Value {
        match self {
            Task::SnapshotVolume(p) => json!([p.region, p.volume_id, p.ctx.plan, p.ctx.window]),
            Task::SnapshotInstance(p) => json!([p.region, p.instance_id, p.ctx.plan, p.ctx.window]),
            Task::CreateAmi(p) => json!([p.region, p.instance_id, p.ctx.plan, p.ctx.window]),
            Task::CopySnapshot(p) => {
                with_target_account(json!([p.source_region, p.snapshot_id, p.target.region]), &p.target)
            }
            Task::CopyAmi(p) => with_target_account(json!([p.source_region, p.image_id, p.target.region]), &p.target),
            Task::SnapshotDbInstance(p) => json!([p.region, p.db_instance_id, p.ctx.plan, p.ctx.window]),
            Task::SnapshotDbCluster(p) => json!([p.region, p.db_cluster_id, p.ctx.plan, p.ctx.window]),
            Task::CopyDbSnapshot(p) | Task::CopyDbClusterSnapshot(p) => {
                with_target_account(json!([p.snapshot_arn, p.target.region]), &p.target)
            }
            Task::ScanBucket(p) => json!([p.region, p.bucket, p.prefix, p.page, p.ctx.plan, p.ctx.window]),
            Task::CopyObjects(p) => json!([p.region, p.bucket, p.page, p.ctx.plan, p.ctx.window]),
            Task::CopyObject(p) => json!([p.region, p.bucket, p.object.key, p.object.version_id, p.object.etag]),
            Task::Prune(p) => match &p.source_account {
                None => json!([p.plan, p.region, p.resource, p.as_of]),
                Some(source) => json!([p.plan, p.region, p.resource, p.as_of, source]),
            },
            Task::DeleteArtifact(p) => match &p.prune {
                Some(prune) => json!([p.artifact, prune.as_of]),
                None => json!([p.artifact]),
            },
            Task::Verify(p) => json!([p.artifact]),
            // Archiving is one-way: one task per snapshot, whichever prune asked first.
            Task::ArchiveSnapshot(p) => json!([p.region, p.snapshot_id]),
            Task::ExportSnapshot(p) => json!([p.snapshot_arn]),
            Task::DumpDatabase(p) => json!([p.database.name, p.ctx.plan, p.ctx.window]),
            Task::RestoreVolume(p) => json!([p.restore_id]),
            Task::RestoreInstance(p) => json!([p.restore_id]),
            Task::RestoreDbInstance(p) => json!([p.restore_id]),
            Task::RestoreDbCluster(p) => json!([p.restore_id]),
            Task::RestoreObjects(p) => json!([p.restore_id]),
            Task::RestoreDrill(p) => json!([p.plan, p.region, p.resource, p.window]),
            Task::Canary(p) => json!([p.nonce]),
        }
    }

    /// The copy targets a task carries: its own (a copy task) and its plan's (a backup task).
    pub fn copy_targets(&self) -> Vec<&CopyTarget> {
        let ctx = match self {
            Task::SnapshotVolume(p) => Some(&p.ctx),
            Task::SnapshotInstance(p) => Some(&p.ctx),
            Task::CreateAmi(p) => Some(&p.ctx),
            Task::SnapshotDbInstance(p) => Some(&p.ctx),
            Task::SnapshotDbCluster(p) => Some(&p.ctx),
            Task::CopySnapshot(p) => return p.ctx.copy_to.iter().chain([&p.target]).collect(),
            Task::CopyAmi(p) => return p.ctx.copy_to.iter().chain([&p.target]).collect(),
            Task::CopyDbSnapshot(p) | Task::CopyDbClusterSnapshot(p) => {
                return p.ctx.copy_to.iter().chain([&p.target]).collect()
            }
            Task::ScanBucket(p) => Some(&p.ctx),
            Task::CopyObjects(p) => Some(&p.ctx),
            Task::CopyObject(p) => Some(&p.ctx),
            Task::ExportSnapshot(p) => Some(&p.ctx),
            Task::DumpDatabase(p) => Some(&p.ctx),
            Task::Prune(_)
            | Task::DeleteArtifact(_)
            | Task::Verify(_)
            | Task::ArchiveSnapshot(_)
            | Task::RestoreVolume(_)
            | Task::RestoreInstance(_)
            | Task::RestoreDbInstance(_)
            | Task::RestoreDbCluster(_)
            | Task::RestoreObjects(_)
            | Task::RestoreDrill(_)
            | Task::Canary(_) => None,
        };
        ctx.map(|ctx| ctx.copy_to.iter().collect()).unwrap_or_default()
    }

    /// The id of this task in the fleet's own account.
    pub fn id(&self) -> TaskId {
        self.id_in(None)
    }

    /// The id of this task acting in `account` (`None`: the fleet's own account). The account is
    /// part of the identity, since DB identifiers and bucket prefixes repeat across accounts;
    /// tasks in the fleet's own account keep the ids they always had.
    pub fn id_in(&self, account: Option<&AccountRef>) -> TaskId {
        match account {
            None => TaskId::derive(self.kind().as_str(), &self.identity()),
            Some(account) => TaskId::derive(self.kind().as_str(), &json!([account.account_id, self.identity()])),
        }
    }

    /// The resource the task acts on, for logs, spans and the task item (bounded to one string).
    pub fn resource(&self) -> String {
        match self {
            Task::SnapshotVolume(p) => p.volume_id.clone(),
            Task::SnapshotInstance(p) => p.instance_id.clone(),
            Task::CreateAmi(p) => p.instance_id.clone(),
            Task::CopySnapshot(p) => p.snapshot_id.clone(),
            Task::CopyAmi(p) => p.image_id.clone(),
            Task::SnapshotDbInstance(p) => p.db_instance_id.clone(),
            Task::SnapshotDbCluster(p) => p.db_cluster_id.clone(),
            Task::CopyDbSnapshot(p) | Task::CopyDbClusterSnapshot(p) => p.snapshot_arn.clone(),
            Task::ScanBucket(p) => p.bucket.clone(),
            Task::CopyObjects(p) => p.bucket.clone(),
            Task::CopyObject(p) => format!("{}/{}", p.bucket, p.object.key),
            Task::Prune(p) => p.resource.clone(),
            Task::DeleteArtifact(p) => p.artifact.id.clone(),
            Task::Verify(p) => p.artifact.id.clone(),
            Task::ArchiveSnapshot(p) => p.snapshot_id.clone(),
            Task::ExportSnapshot(p) => p.snapshot_arn.clone(),
            Task::DumpDatabase(p) => p.database.name.clone(),
            Task::RestoreVolume(p) => restore_source_name(&p.source),
            Task::RestoreInstance(p) => restore_source_name(&p.source),
            Task::RestoreDbInstance(p) => restore_source_name(&p.source),
            Task::RestoreDbCluster(p) => restore_source_name(&p.source),
            Task::RestoreObjects(p) => format!("{}/{}", p.source_bucket, p.prefix),
            Task::RestoreDrill(p) => p.resource.clone(),
            Task::Canary(p) => format!("canary:{}", p.nonce),
        }
    }
}

/// A copy into another account is other work than the copy into the same region of the source's
/// account (both may be asked for); copies within the account keep their old ids.
fn with_target_account(identity: Value, target: &CopyTarget) -> Value {
    match &target.account {
        Some(account) => json!([identity, account.account_id]),
        None => identity,
    }
}

fn restore_source_name(source: &RestoreSource) -> String {
    match source {
        RestoreSource::Artifact(artifact) => artifact.id.clone(),
        RestoreSource::LatestOf { resource, .. } => resource.clone(),
        RestoreSource::PointInTime { resource, to, .. } => format!("{resource}@{to}"),
    }
}
