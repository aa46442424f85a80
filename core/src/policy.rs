//! The backup policy file: `[[plan]]` tables in TOML that the producer expands into tasks and the
//! CLI checks. Owns the format (its user documentation is `examples/policy.toml`), the defaults,
//! validation, and errors that name the plan and the key at fault.
//!
//! The file is read as a `toml::Table` and walked by hand rather than through serde: serde's
//! errors from a `toml::Value` carry no key path, and every error here must say which plan and
//! which key (`plan "daily": key "retain.min_keep": 5 exceeds retain.count 3`). Unknown keys are
//! errors, so a typo cannot silently drop a setting.

use backup_schemas::{
    role_account, AccountRef, AccountRefError, ArchiveRule, BackupContext, CopyTarget, DbEngine, LogicalDatabase,
    ResourceType, RetentionRules, S3Destination, SnapshotExport, SqlCheck, Tier,
};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

use crate::schedule::Schedule;

/// A selector or exclusion value matching any value of a present tag.
pub const ANY_VALUE: &str = "*";

/// The storage classes S3 accepts for a copy (PutObject/CopyObject `x-amz-storage-class`), less
/// the deprecated REDUCED_REDUNDANCY and the ones needing special buckets (EXPRESS_ONEZONE, OUTPOSTS).
pub const STORAGE_CLASSES: &[&str] =
    &["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE"];

/// Longest retention accepted, in days (100 years; also S3 Object Lock's practical ceiling).
pub const MAX_DAYS: u32 = 36_500;

const PLAN_KEYS: &[&str] = &[
    "name",
    "kind",
    "schedule",
    "resources",
    "regions",
    "select",
    "retain",
    "copy_to",
    "s3",
    "tier",
    "instance_backup",
    "verify",
    "final_snapshot_on_stop",
    "backup_on_create",
    "deadline_hours",
    "accounts",
    "own_account",
    "drill",
    "archive",
    "databases",
    "export",
];
/// Keys that only mean something for plans that make backups.
const BACKUP_ONLY_KEYS: &[&str] =
    &["retain", "copy_to", "tier", "verify", "final_snapshot_on_stop", "backup_on_create", "archive", "export"];
const DATABASE_KEYS: &[&str] = &["name", "engine", "secret_arn", "checks"];
const CHECK_KEYS: &[&str] = &["name", "sql", "expect"];
const EXPORT_KEYS: &[&str] = &["iam_role_arn", "kms_key", "retain_days", "prefix"];
const SELECT_KEYS: &[&str] = &["tags", "exclude_tags"];
const RETAIN_KEYS: &[&str] = &["days", "count", "min_keep", "daily", "weekly", "monthly"];
const COPY_KEYS: &[&str] = &["region", "retain_days", "kms_key", "account_id", "role_arn", "share_kms_key"];
const S3_KEYS: &[&str] =
    &["backup_bucket", "storage_class", "lock_days", "prefix", "inventory_id", "inventory_max_age_hours"];
const ACCOUNT_KEYS: &[&str] = &["account_id", "role_arn"];
const ARCHIVE_KEYS: &[&str] = &["after_days", "unique_percent"];
const DRILL_KEYS: &[&str] = &[
    "sample",
    "target_subnet",
    "db_subnet_group",
    "instance_class",
    "instance_type",
    "max_parallel",
    "scratch_secret_arn",
];

/// A parsed, validated policy file.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub plans: Vec<Plan>,
    /// The optional `[controls]` table: what `backupctl report coverage` checks per resource.
    pub controls: Controls,
}

impl Policy {
    /// The plans that cover `account` (`None`: the fleet's own account).
    pub fn for_account(&self, account: Option<&AccountRef>) -> Policy {
        let covers = |plan: &Plan| match account {
            None => plan.own_account,
            Some(account) => plan.accounts.iter().any(|a| a.account_id == account.account_id),
        };
        Policy { plans: self.plans.iter().filter(|p| covers(p)).cloned().collect(), controls: self.controls.clone() }
    }
}

/// Compliance controls evaluated per protected resource by `backupctl report coverage`, from
/// the catalog and live state. Each is off unless the policy's `[controls]` table sets it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Controls {
    /// The latest good backup is encrypted.
    pub encrypted: bool,
    /// The latest good backup has a copy in another region.
    pub cross_region_copy: bool,
    /// S3 backups are under Object Lock for at least this many days.
    pub s3_object_lock_days: Option<u32>,
    /// The plan keeps backups at least this many days.
    pub min_retention_days: Option<u32>,
    /// A restore drill of the resource passed within this many days.
    pub drill_within_days: Option<u32>,
    /// RDS automated backups (point-in-time restore) are on, kept at least this many days.
    pub rds_pitr_days: Option<u32>,
}

impl Controls {
    pub fn any(&self) -> bool {
        self != &Controls::default()
    }
}

const CONTROL_KEYS: &[&str] = &[
    "encrypted",
    "cross_region_copy",
    "s3_object_lock_days",
    "min_retention_days",
    "drill_within_days",
    "rds_pitr_days",
];

/// One `[[plan]]`: what to back up (or drill), when, where, and how long to keep it.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub name: String,
    pub schedule: Schedule,
    pub resources: Vec<ResourceType>,
    /// Regions to discover resources in (the caller's default region when the file gives none).
    pub regions: Vec<String>,
    pub select: Selector,
    /// Empty for restore-drill plans.
    pub retain: RetentionRules,
    pub copy_to: Vec<CopyTarget>,
    /// Present iff `resources` contains `s3-bucket`.
    pub s3: Option<S3Settings>,
    pub tier: Tier,
    pub instance_backup: InstanceBackup,
    /// Spawn a verification task after each backup (default true; false for drills).
    pub verify: bool,
    /// EC2 `stopping`/`shutting-down` state changes trigger a final backup (default false).
    pub final_snapshot_on_stop: bool,
    /// CloudTrail create events trigger a first backup of a new matching resource (default true).
    pub backup_on_create: bool,
    /// A task of this plan not finished this long after its window start fails; `None` leaves it
    /// to the fleet's default.
    pub deadline: Option<Duration>,
    /// Other accounts to cover through an assumed role.
    pub accounts: Vec<AccountRef>,
    /// Whether the fleet's own account is covered as well (default true).
    pub own_account: bool,
    pub kind: PlanKind,
    /// Present iff `kind` is `RestoreDrill`.
    pub drill: Option<DrillSettings>,
    /// The databases of `postgres-db`: named here, not discovered. A backup plan gives each one's
    /// secret; a drill plan gives each one's SQL checks.
    pub databases: Vec<DatabaseEntry>,
    /// Export each completed RDS / Aurora snapshot to S3 (backup plans with RDS resources).
    pub export: Option<ExportSettings>,
}

/// One entry of a plan's `databases`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseEntry {
    pub name: String,
    pub engine: DbEngine,
    /// Required in backup plans; drill plans restore from the catalog and need none.
    pub secret_arn: Option<String>,
    /// Drill plans only: run against the restored database, each with its expected result.
    pub checks: Vec<SqlCheck>,
}

impl DatabaseEntry {
    /// The database as a backup task carries it (backup plans, where the secret is required).
    pub fn logical(&self) -> Option<LogicalDatabase> {
        Some(LogicalDatabase { name: self.name.clone(), engine: self.engine, secret_arn: self.secret_arn.clone()? })
    }

    /// The region the database is catalogued in: its secret's.
    pub fn region(&self) -> Option<&str> {
        crate::services::secrets::secret_region(self.secret_arn.as_deref()?)
    }
}

/// The plan's `export` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSettings {
    pub iam_role_arn: String,
    pub kms_key: String,
    pub retain_days: Option<u32>,
    pub prefix: Option<String>,
}

/// Which resources a plan takes, by tag.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// All must match (AND). A value of `*` matches any value of a present tag.
    pub tags: BTreeMap<String, String>,
    /// Any match excludes. A value of `*` excludes whenever the tag is present.
    pub exclude_tags: BTreeMap<String, String>,
}

impl Selector {
    /// Whether a resource with these tags is selected. Tag keys and values compare exactly, as
    /// AWS tags are case-sensitive. An empty `tags` selects every resource not excluded.
    pub fn matches(&self, resource_tags: &BTreeMap<String, String>) -> bool {
        let has = |(key, value): (&String, &String)| {
            resource_tags.get(key).is_some_and(|actual| value == ANY_VALUE || actual == value)
        };
        self.tags.iter().all(has) && !self.exclude_tags.iter().any(has)
    }
}

/// Where S3 backups go, and how they are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Settings {
    pub backup_bucket: String,
    pub storage_class: Option<String>,
    /// Object Lock retention (GOVERNANCE mode) in days.
    pub lock_days: Option<u32>,
    /// Only keys under this prefix are backed up.
    pub prefix: Option<String>,
    /// Scan source buckets from their latest S3 Inventory report of this configuration id
    /// instead of listing them; a bucket without a usable, fresh report is listed.
    pub inventory_id: Option<String>,
    /// Reports older than this are not used (hours; 48 unless set).
    pub inventory_max_age_hours: u32,
}

/// Reports older than this are not used unless the plan says otherwise: a daily report plus the
/// up to 48 hours S3 may take to deliver one.
pub const DEFAULT_INVENTORY_MAX_AGE_HOURS: u32 = 48;

impl S3Settings {
    /// What a scan of this plan's buckets reads instead of listing, if anything.
    pub fn inventory_scan(&self) -> Option<backup_schemas::InventoryScan> {
        self.inventory_id.as_ref().map(|id| backup_schemas::InventoryScan {
            id: id.clone(),
            max_age_hours: self.inventory_max_age_hours,
            report: None,
        })
    }
}

/// What an `ec2-instance` backup is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum InstanceBackup {
    /// A crash-consistent snapshot set of all its volumes (CreateSnapshots).
    #[default]
    Snapshots,
    /// An AMI (CreateImage, no reboot).
    Ami,
}

impl InstanceBackup {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceBackup::Snapshots => "snapshots",
            InstanceBackup::Ami => "ami",
        }
    }
}

/// What a plan does on its schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PlanKind {
    /// Back up the selected resources.
    #[default]
    Backup,
    /// Restore the latest backups of a sample of the selected resources into an isolated target,
    /// validate them, and clean up.
    RestoreDrill,
}

impl PlanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanKind::Backup => "backup",
            PlanKind::RestoreDrill => "restore-drill",
        }
    }
}

/// Settings of a restore-drill plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrillSettings {
    /// How many resources to drill per run (default 1).
    pub sample: u32,
    /// Subnet restored instances and volumes are placed in (its availability zone for volumes).
    /// Required when the plan covers EC2 resources: restores must not land in a production subnet.
    pub target_subnet: Option<String>,
    /// DB subnet group for RDS restores; RDS uses the default VPC's when absent.
    pub db_subnet_group: Option<String>,
    /// DB instance class of RDS restores (e.g. db.t3.micro); the snapshot's when absent.
    pub instance_class: Option<String>,
    /// EC2 instance type of instance restores (e.g. t3.micro); the original's when absent.
    pub instance_type: Option<String>,
    /// How many restores may run at once (default 1).
    pub max_parallel: u32,
    /// Secret of the PostgreSQL server logical backups are restored into for their drill.
    pub scratch_secret_arn: Option<String>,
}

/// Which plan an error is about: by name, or by 1-based position when it has no usable name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanRef {
    Name(String),
    Index(usize),
    /// The `[controls]` table.
    Controls,
}

impl fmt::Display for PlanRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanRef::Name(name) => write!(f, "plan {name:?}"),
            PlanRef::Index(index) => write!(f, "plan #{index}"),
            PlanRef::Controls => f.write_str("controls"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("policy is not valid TOML: {0}")]
    Toml(String),
    /// A problem with the file as a whole (empty, no plans, a key outside `[[plan]]`).
    #[error("policy: {0}")]
    File(String),
    #[error("{plan}: key \"{key}\": {message}")]
    Plan { plan: PlanRef, key: String, message: String },
}

impl Policy {
    /// Parses and validates a policy. `default_region` (normally `AWS_REGION`) is used for plans
    /// that list no `regions`.
    pub fn from_toml_str(text: &str, default_region: &str) -> Result<Policy, PolicyError> {
        if text.trim().is_empty() {
            return Err(PolicyError::File("the policy is empty: define at least one [[plan]]".into()));
        }
        let mut root: Table = text.parse().map_err(|e: toml::de::Error| PolicyError::Toml(e.to_string()))?;
        let plans = root.remove("plan");
        let controls = root.remove("controls");
        if let Some(key) = root.keys().next() {
            let hint = match suggest(key, &["plan", "controls"]) {
                Some("plan") => " (did you mean [[plan]]?)",
                Some(_) => " (did you mean [controls]?)",
                None => "",
            };
            return Err(PolicyError::File(format!(
                "key {key:?}: unknown key: the file holds [[plan]] tables and an optional [controls] table{hint}"
            )));
        }
        let controls = match controls {
            None => Controls::default(),
            Some(Value::Table(table)) => {
                let label = PlanRef::Controls;
                parse_controls(Reader::new(&label, String::new(), table, CONTROL_KEYS)?)?
            }
            Some(other) => {
                return Err(PolicyError::File(format!(
                    "key \"controls\": expected a table, found {}",
                    other.type_str()
                )))
            }
        };
        let plans = match plans {
            None => return Err(PolicyError::File("no plans: define at least one [[plan]]".into())),
            Some(Value::Array(plans)) if plans.is_empty() => {
                return Err(PolicyError::File("no plans: define at least one [[plan]]".into()))
            }
            Some(Value::Array(plans)) => plans,
            Some(other) => {
                return Err(PolicyError::File(format!(
                    "key \"plan\": expected [[plan]] tables (an array of tables), found {}",
                    other.type_str()
                )))
            }
        };
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut out = Vec::with_capacity(plans.len());
        for (i, value) in plans.into_iter().enumerate() {
            let index = i + 1;
            let Value::Table(table) = value else {
                return Err(PolicyError::Plan {
                    plan: PlanRef::Index(index),
                    key: "plan".into(),
                    message: format!("expected a table, found {}", value.type_str()),
                });
            };
            let plan = parse_plan(index, table, default_region)?;
            if let Some(first) = seen.get(&plan.name) {
                return Err(PolicyError::Plan {
                    plan: PlanRef::Name(plan.name),
                    key: "name".into(),
                    message: format!("duplicate: plan #{first} has the same name (names must be unique)"),
                });
            }
            seen.insert(plan.name.clone(), index);
            out.push(plan);
        }
        Ok(Policy { plans: out, controls })
    }

    /// Reads and parses a policy file.
    pub fn load(path: impl AsRef<Path>, default_region: &str) -> Result<Policy, PolicyError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| PolicyError::Read { path: path.to_path_buf(), source })?;
        Policy::from_toml_str(&text, default_region)
    }

    pub fn plan(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|plan| plan.name == name)
    }
}

/// The storage class S3 backups of a tier get unless the plan sets one: colder for longer-lived
/// tiers, but always instantly readable (a restore from GLACIER or DEEP_ARCHIVE needs hours), and
/// the bucket's lifecycle moves them on from there (terraform/modules/backup-bucket).
pub fn default_storage_class(tier: Tier) -> Option<&'static str> {
    match tier {
        Tier::Daily | Tier::Event | Tier::Manual => None,
        Tier::Weekly => Some("STANDARD_IA"),
        Tier::Monthly | Tier::Yearly => Some("GLACIER_IR"),
    }
}

impl Plan {
    /// The context every backup task of the window starting at `window_start` carries.
    pub fn context(&self, window_start: DateTime<Utc>) -> BackupContext {
        BackupContext {
            plan: self.name.clone(),
            tier: self.tier,
            window: window_start,
            expires_at: self.expires_at(window_start),
            copy_to: self.copy_to.clone(),
            verify: self.verify,
            retain: (!self.is_drill()).then(|| self.retain.clone()),
            export: self.export.as_ref().zip(self.s3.as_ref()).map(|(export, s3)| SnapshotExport {
                bucket: s3.backup_bucket.clone(),
                prefix: export.prefix.clone(),
                iam_role_arn: export.iam_role_arn.clone(),
                kms_key: export.kms_key.clone(),
                retain_days: export.retain_days,
            }),
        }
    }

    /// The entry of `databases` named `name`.
    pub fn database(&self, name: &str) -> Option<&DatabaseEntry> {
        self.databases.iter().find(|d| d.name == name)
    }

    /// Expiry of a backup of this window: the window start plus `retain.days`; `None` when the
    /// plan keeps by count or per tier only.
    pub fn expires_at(&self, window: DateTime<Utc>) -> Option<DateTime<Utc>> {
        window.checked_add_signed(Duration::days(i64::from(self.retain.days?)))
    }

    /// Where this plan's S3 backups go; `region` is the backup bucket's region, which the caller
    /// knows (the policy names only the bucket). `None` when the plan backs up no buckets.
    pub fn s3_destination(&self, region: &str) -> Option<S3Destination> {
        let s3 = self.s3.as_ref()?;
        Some(S3Destination {
            bucket: s3.backup_bucket.clone(),
            region: region.to_string(),
            storage_class: s3.storage_class.clone().or_else(|| default_storage_class(self.tier).map(str::to_owned)),
            lock_days: s3.lock_days,
        })
    }

    /// The accounts the plan covers: `None` for the fleet's own, then each listed one.
    pub fn target_accounts(&self) -> Vec<Option<&AccountRef>> {
        self.own_account.then_some(None).into_iter().chain(self.accounts.iter().map(Some)).collect()
    }

    pub fn is_drill(&self) -> bool {
        self.kind == PlanKind::RestoreDrill
    }

    pub fn covers(&self, resource: ResourceType) -> bool {
        self.resources.contains(&resource)
    }
}

fn parse_plan(index: usize, table: Table, default_region: &str) -> Result<Plan, PolicyError> {
    let label = match table.get("name") {
        Some(Value::String(name)) if !name.is_empty() => PlanRef::Name(name.clone()),
        _ => PlanRef::Index(index),
    };
    let mut r = Reader::new(&label, String::new(), table, PLAN_KEYS)?;

    let name = r.required_string("name")?;
    // Names end up in task ids, artifact tags, snapshot names and catalog keys.
    if name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(r.err("name", format!("{name:?}: use 1 to 64 letters, digits, '-' or '_'")));
    }

    let kind = match r.string("kind")?.as_deref() {
        None | Some("backup") => PlanKind::Backup,
        Some("restore-drill") => PlanKind::RestoreDrill,
        Some(other) => return Err(r.err("kind", format!("{other:?}: expected \"backup\" or \"restore-drill\""))),
    };
    if kind == PlanKind::RestoreDrill {
        if let Some(key) = BACKUP_ONLY_KEYS.iter().find(|key| r.has(key)) {
            return Err(r.err(key, "not used by restore-drill plans (they make no backups)"));
        }
    }

    let schedule_text = r.required_string("schedule")?;
    let schedule: Schedule =
        schedule_text.parse().map_err(|e: crate::schedule::ScheduleError| r.err("schedule", e.to_string()))?;

    let resources = parse_resources(&mut r)?;
    let regions = parse_regions(&mut r, default_region)?;
    let select = match r.table("select", SELECT_KEYS)? {
        Some(mut select) => Selector { tags: select.tag_map("tags")?, exclude_tags: select.tag_map("exclude_tags")? },
        None => Selector::default(),
    };

    let retain = match (kind, r.table("retain", RETAIN_KEYS)?) {
        (PlanKind::RestoreDrill, _) => RetentionRules::default(),
        (PlanKind::Backup, None) => return Err(r.err("retain", "missing (a backup plan needs a retention rule)")),
        (PlanKind::Backup, Some(retain)) => parse_retain(retain)?,
    };

    let mut copy_to = Vec::new();
    for mut copy in r.tables("copy_to", COPY_KEYS)? {
        let region = copy.required_string("region")?;
        if !is_region(&region) {
            return Err(copy.err("region", format!("{region:?} is not an AWS region (e.g. us-west-2)")));
        }
        let account = match (copy.string("account_id")?, copy.string("role_arn")?) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(
                    copy.err("role_arn", "missing: a copy into another account needs the role the fleet assumes there")
                )
            }
            (None, Some(_)) => {
                return Err(copy.err("account_id", "missing: role_arn is only for a copy into another account"))
            }
            (Some(account_id), Some(role_arn)) => {
                let account = AccountRef { account_id, role_arn };
                account.check().map_err(|e| match e {
                    AccountRefError::AccountId(reason) => copy.err("account_id", reason),
                    AccountRefError::RoleArn(reason) => copy.err("role_arn", reason),
                })?;
                Some(account)
            }
        };
        // A copy within the account must leave the source region; a copy into a backup account
        // may stay in it (the account is the isolation).
        if account.is_none() && regions.contains(&region) {
            return Err(copy.err("region", format!("{region} is a source region of this plan: copy to another region")));
        }
        if copy_to.iter().any(|c: &CopyTarget| c.region == region && c.account == account) {
            let target = account.as_ref().map_or(region.clone(), |a| format!("{region} of account {}", a.account_id));
            return Err(copy.err("region", format!("{target} is listed twice")));
        }
        // One copy per backup account: two copies of one source into the same account would
        // share it together, and the first to finish would take the share from the other.
        if let Some(account) = &account {
            if copy_to
                .iter()
                .any(|c: &CopyTarget| c.account.as_ref().is_some_and(|a| a.account_id == account.account_id))
            {
                return Err(copy.err(
                    "account_id",
                    format!(
                        "account {} already has a copy: one copy per backup account (copy within it from there)",
                        account.account_id
                    ),
                ));
            }
        }
        let retain_days = copy.days("retain_days")?;
        let kms_key = copy.non_empty_string("kms_key")?;
        let share_kms_key = copy.non_empty_string("share_kms_key")?;
        if account.is_some() && kms_key.is_none() {
            return Err(copy.err(
                "kms_key",
                "missing: a copy into another account is encrypted under that account's own key (give its ARN)",
            ));
        }
        if account.is_none() && share_kms_key.is_some() {
            return Err(copy.err("share_kms_key", "only for a copy into another account (account_id, role_arn)"));
        }
        copy_to.push(CopyTarget { region, kms_key, retain_days, account, share_kms_key });
    }

    // Backups that land in the backup bucket: S3 copies, logical dumps, snapshot exports.
    let bucket_needed_by = if resources.contains(&ResourceType::S3Bucket) {
        Some("s3-bucket resources")
    } else if resources.contains(&ResourceType::PostgresDb) && kind == PlanKind::Backup {
        Some("postgres-db resources (their dumps)")
    } else if r.has("export") && kind == PlanKind::Backup {
        Some("export (RDS writes the exports)")
    } else {
        None
    };
    let s3 = match (r.table("s3", S3_KEYS)?, bucket_needed_by) {
        (None, None) => None,
        (None, Some(what)) => return Err(r.err("s3", format!("missing: {what} need s3.backup_bucket"))),
        (Some(_), None) => {
            return Err(r.err("s3", "set, but nothing of this plan goes to a bucket (s3-bucket, postgres-db or export)"))
        }
        (Some(s3), Some(_)) => Some(parse_s3(s3)?),
    };
    if s3.as_ref().is_some_and(|s3| s3.prefix.is_some()) && !resources.contains(&ResourceType::S3Bucket) {
        return Err(r.err("s3.prefix", "selects keys of source buckets, and this plan backs up no s3-bucket"));
    }
    if s3.as_ref().is_some_and(|s3| s3.inventory_id.is_some()) && !resources.contains(&ResourceType::S3Bucket) {
        return Err(r.err("s3.inventory_id", "scans source buckets, and this plan backs up no s3-bucket"));
    }
    let databases = parse_databases(&mut r, &resources, kind)?;
    let export = match r.table("export", EXPORT_KEYS)? {
        None => None,
        Some(export) => Some(parse_export(export, &resources)?),
    };

    let tier = match r.string("tier")?.as_deref() {
        None | Some("daily") => Tier::Daily,
        Some("weekly") => Tier::Weekly,
        Some("monthly") => Tier::Monthly,
        Some("yearly") => Tier::Yearly,
        Some(other) => {
            return Err(r.err("tier", format!("{other:?}: expected \"daily\", \"weekly\", \"monthly\" or \"yearly\"")))
        }
    };
    let instance_backup = match r.string("instance_backup")?.as_deref() {
        None | Some("snapshots") => InstanceBackup::Snapshots,
        Some("ami") => InstanceBackup::Ami,
        Some(other) => return Err(r.err("instance_backup", format!("{other:?}: expected \"snapshots\" or \"ami\""))),
    };
    let mut retain = retain;
    if let Some(archive) = r.table("archive", ARCHIVE_KEYS)? {
        let period_days = (schedule.nominal_period().num_hours() / 24).max(1) as u32;
        let mut rule = parse_archive(archive, &retain, tier, period_days, &resources, instance_backup)?;
        rule.period_days = Some(period_days);
        rule.copy_regions = copy_to.iter().map(|c| c.region.clone()).collect();
        rule.verify = r.peek_bool("verify").unwrap_or(kind == PlanKind::Backup);
        retain.archive = Some(rule);
    }
    let backup = kind == PlanKind::Backup;
    let verify = r.bool("verify")?.unwrap_or(backup);
    let final_snapshot_on_stop = r.bool("final_snapshot_on_stop")?.unwrap_or(false);
    let backup_on_create = r.bool("backup_on_create")?.unwrap_or(backup);
    let deadline = match r.u32("deadline_hours")? {
        None => None,
        Some(hours @ 1..=8_760) => Some(Duration::hours(i64::from(hours))),
        Some(hours) => return Err(r.err("deadline_hours", format!("{hours}: expected 1 to 8760 (a year)"))),
    };

    let mut accounts: Vec<AccountRef> = Vec::new();
    for mut account in r.tables("accounts", ACCOUNT_KEYS)? {
        let entry = AccountRef {
            account_id: account.required_string("account_id")?,
            role_arn: account.required_string("role_arn")?,
        };
        entry.check().map_err(|e| match e {
            AccountRefError::AccountId(reason) => account.err("account_id", reason),
            AccountRefError::RoleArn(reason) => account.err("role_arn", reason),
        })?;
        if accounts.iter().any(|a| a.account_id == entry.account_id) {
            return Err(account.err("account_id", format!("{} is listed twice", entry.account_id)));
        }
        accounts.push(entry);
    }
    // The fleet's own account is backed up too unless the plan says otherwise: leaving it out
    // silently would be the surprise, not including it.
    let own_account = r.bool("own_account")?.unwrap_or(true);
    if !own_account && accounts.is_empty() {
        return Err(r.err("own_account", "false, and no `accounts` are listed: the plan would back up nothing"));
    }
    if !accounts.is_empty() {
        // Named here so a listed account is never silently left without backups.
        if resources.contains(&ResourceType::PostgresDb) {
            return Err(r.err(
                "accounts",
                "postgres-db databases are reached over the network, not through an account: list them in `databases` of a plan without accounts",
            ));
        }
        if resources.contains(&ResourceType::S3Bucket) {
            return Err(r.err(
                "accounts",
                "s3-bucket resources of other accounts are not supported yet (only EC2 and RDS): back their buckets up from a fleet in that account, or replicate them into the fleet's account",
            ));
        }
        if export.is_some() {
            return Err(r.err(
                "accounts",
                "snapshot exports of other accounts' databases are not supported yet: remove `export` or `accounts`",
            ));
        }
    }
    if let Some(index) = copy_to.iter().position(|c| c.account.is_some()) {
        let unsupported = if retain.archive.is_some() {
            Some("plans that archive (the archive tier waits for every copy, and cannot yet tell a backup account's copy from a copy in the same region)")
        } else if resources.contains(&ResourceType::S3Bucket) {
            Some("s3-bucket backups (point s3.backup_bucket at an Object Lock bucket in the backup account instead)")
        } else if resources.contains(&ResourceType::Ec2Instance) && instance_backup == InstanceBackup::Ami {
            Some("AMIs (use instance_backup = \"snapshots\": snapshot sets are copied)")
        } else if resources.contains(&ResourceType::PostgresDb) {
            Some("postgres-db dumps (they are objects in s3.backup_bucket)")
        } else {
            None
        };
        if let Some(what) = unsupported {
            return Err(r.err(
                &format!("copy_to[{index}].account_id"),
                format!("copies into another account are not supported for {what}"),
            ));
        }
    }

    let drill = match (kind, r.table("drill", DRILL_KEYS)?) {
        (PlanKind::Backup, None) => None,
        (PlanKind::Backup, Some(_)) => return Err(r.err("drill", "only for plans with kind = \"restore-drill\"")),
        (PlanKind::RestoreDrill, None) => {
            return Err(r.err("drill", "missing: a restore-drill plan needs a drill section (at least drill.sample)"))
        }
        (PlanKind::RestoreDrill, Some(drill)) => Some(parse_drill(drill, &resources)?),
    };

    r.finish()?;
    Ok(Plan {
        name,
        schedule,
        resources,
        regions,
        select,
        retain,
        copy_to,
        s3,
        tier,
        instance_backup,
        verify,
        final_snapshot_on_stop,
        backup_on_create,
        deadline,
        accounts,
        own_account,
        kind,
        drill,
        databases,
        export,
    })
}

/// The `databases` list: required exactly when the plan has `postgres-db` resources.
fn parse_databases(
    r: &mut Reader,
    resources: &[ResourceType],
    kind: PlanKind,
) -> Result<Vec<DatabaseEntry>, PolicyError> {
    let entries = r.tables("databases", DATABASE_KEYS)?;
    let wanted = resources.contains(&ResourceType::PostgresDb);
    if !wanted {
        if !entries.is_empty() {
            return Err(r.err("databases", "set, but resources do not include postgres-db"));
        }
        return Ok(Vec::new());
    }
    if entries.is_empty() {
        return Err(r.err(
            "databases",
            "missing: postgres-db resources are named here (databases = [{ name = \"orders\", secret_arn = \"arn:aws:secretsmanager:...\" }])",
        ));
    }
    let mut out: Vec<DatabaseEntry> = Vec::new();
    for mut entry in entries {
        let name = entry.required_string("name")?;
        if name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(entry.err("name", format!("{name:?}: use 1 to 64 letters, digits, '-' or '_'")));
        }
        if out.iter().any(|d| d.name == name) {
            return Err(entry.err("name", format!("{name} is listed twice")));
        }
        let engine = match entry.string("engine")?.as_deref() {
            None | Some("postgres") | Some("postgresql") => DbEngine::Postgres,
            Some(other) => {
                return Err(
                    entry.err("engine", format!("{other:?}: only \"postgres\" is supported for logical backups"))
                )
            }
        };
        let secret_arn = entry.non_empty_string("secret_arn")?;
        match (&secret_arn, kind) {
            (None, PlanKind::Backup) => {
                return Err(entry.err(
                    "secret_arn",
                    "missing: the Secrets Manager secret (ARN) with host, port, username, password and dbname",
                ))
            }
            (Some(_), PlanKind::RestoreDrill) => {
                return Err(entry.err(
                    "secret_arn",
                    "not used by restore-drill plans: drills restore into drill.scratch_secret_arn's server",
                ))
            }
            (Some(arn), PlanKind::Backup) if crate::services::secrets::secret_region(arn).is_none() => {
                return Err(entry.err(
                    "secret_arn",
                    format!("{arn:?} is not a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)"),
                ))
            }
            _ => {}
        }
        let mut checks: Vec<SqlCheck> = Vec::new();
        for mut check in entry.tables("checks", CHECK_KEYS)? {
            let check_name = check.required_string("name")?;
            if checks.iter().any(|c| c.name == check_name) {
                return Err(check.err("name", format!("{check_name:?} is listed twice")));
            }
            let sql = check.required_string("sql")?;
            let expect = match check.table.remove("expect") {
                None => return Err(check.err("expect", "missing: the expected result (first column of the first row)")),
                Some(Value::String(s)) => s,
                Some(Value::Integer(n)) => n.to_string(),
                Some(Value::Boolean(b)) => {
                    if b {
                        "t".into()
                    } else {
                        "f".into()
                    }
                }
                Some(other) => return Err(check.wrong_type("expect", "a string, whole number or boolean", &other)),
            };
            check.finish()?;
            checks.push(SqlCheck { name: check_name, sql, expect });
        }
        if !checks.is_empty() && kind == PlanKind::Backup {
            return Err(entry.err("checks", "SQL checks run in drills: put them on the restore-drill plan's databases"));
        }
        entry.finish()?;
        out.push(DatabaseEntry { name, engine, secret_arn, checks });
    }
    Ok(out)
}

fn parse_export(mut export: Reader, resources: &[ResourceType]) -> Result<ExportSettings, PolicyError> {
    let iam_role_arn = export.required_string("iam_role_arn")?;
    if role_account(&iam_role_arn).is_none() {
        return Err(export.err(
            "iam_role_arn",
            format!("{iam_role_arn:?} is not an IAM role ARN (the role RDS assumes to write the export)"),
        ));
    }
    let kms_key = export.required_string("kms_key")?;
    let retain_days = export.days("retain_days")?;
    if retain_days.is_none() {
        return Err(export.err(
            "retain_days",
            "missing: how many days the fleet keeps each export (exports are deleted by the fleet, not by the bucket's lifecycle)",
        ));
    }
    let prefix = export.non_empty_string("prefix")?;
    export.finish()?;
    if !resources.iter().any(|r| matches!(r, ResourceType::RdsInstance | ResourceType::RdsCluster)) {
        return Err(export.err_self("only RDS and Aurora snapshots export: the plan needs rds-instance or rds-cluster"));
    }
    Ok(ExportSettings { iam_role_arn, kms_key, retain_days, prefix })
}

fn parse_resources(r: &mut Reader) -> Result<Vec<ResourceType>, PolicyError> {
    let Some(names) = r.strings("resources")? else { return Err(r.err("resources", "missing")) };
    if names.is_empty() {
        return Err(r.err("resources", "empty: list at least one resource type"));
    }
    let mut resources = Vec::with_capacity(names.len());
    for name in names {
        let resource: ResourceType = name.parse().map_err(|e: String| r.err("resources", e))?;
        if resources.contains(&resource) {
            return Err(r.err("resources", format!("{name} is listed twice")));
        }
        resources.push(resource);
    }
    Ok(resources)
}

fn parse_regions(r: &mut Reader, default_region: &str) -> Result<Vec<String>, PolicyError> {
    let regions = match r.strings("regions")? {
        Some(regions) if regions.is_empty() => return Err(r.err("regions", "empty: list at least one region")),
        Some(regions) => regions,
        None if default_region.is_empty() => {
            return Err(r.err("regions", "missing, and no default region (AWS_REGION) is set"))
        }
        None if !is_region(default_region) => {
            return Err(
                r.err("regions", format!("missing, and the default region {default_region:?} is not an AWS region"))
            )
        }
        None => vec![default_region.to_string()],
    };
    let mut seen = BTreeSet::new();
    for region in &regions {
        if !is_region(region) {
            return Err(r.err("regions", format!("{region:?} is not an AWS region (e.g. us-east-1)")));
        }
        if !seen.insert(region) {
            return Err(r.err("regions", format!("{region} is listed twice")));
        }
    }
    Ok(regions)
}

fn parse_retain(mut retain: Reader) -> Result<RetentionRules, PolicyError> {
    let rules = RetentionRules {
        days: retain.days("days")?,
        count: retain.positive("count")?,
        min_keep: retain.u32("min_keep")?.unwrap_or(0),
        daily: retain.positive("daily")?,
        weekly: retain.positive("weekly")?,
        monthly: retain.positive("monthly")?,
        archive: None,
    };
    retain.finish()?;
    if [rules.days, rules.count, rules.daily, rules.weekly, rules.monthly].iter().all(Option::is_none) {
        return Err(retain.err_self(
            "set at least one of days, count, daily, weekly, monthly (min_keep alone never expires anything)",
        ));
    }
    if let Some(count) = rules.count {
        if rules.min_keep > count {
            return Err(retain.err("min_keep", format!("{} exceeds retain.count {count}", rules.min_keep)));
        }
    }
    Ok(rules)
}

/// The `archive` table: only for plans whose EBS snapshots live long enough for the archive tier
/// to pay (a monthly or yearly tier whose rules keep each backup at least `after_days` plus the
/// tier's 90-day minimum); anything else would be accepted and never act.
fn parse_archive(
    mut archive: Reader,
    retain: &RetentionRules,
    tier: Tier,
    period_days: u32,
    resources: &[ResourceType],
    instance_backup: InstanceBackup,
) -> Result<ArchiveRule, PolicyError> {
    let after_days = archive.u32("after_days")?.ok_or_else(|| archive.err("after_days", "missing"))?;
    if after_days > MAX_DAYS {
        return Err(archive.err("after_days", format!("{after_days} exceeds {MAX_DAYS} (100 years)")));
    }
    let unique_percent = match archive.u32("unique_percent")? {
        None => {
            return Err(archive.err(
                "unique_percent",
                "missing: estimate the share (1-100) of a snapshot's full size that only it holds \
                 (the blocks changed since the previous kept snapshot); archiving pays above 25",
            ))
        }
        Some(p @ 1..=100) => p as u8,
        Some(p) => return Err(archive.err("unique_percent", format!("{p}: expected 1 to 100"))),
    };
    archive.finish()?;
    let snapshots = resources.contains(&ResourceType::Ec2Volume)
        || (resources.contains(&ResourceType::Ec2Instance) && instance_backup == InstanceBackup::Snapshots);
    if !snapshots {
        return Err(archive.err_self(
            "only EBS snapshots have an archive tier: the plan needs ebs-volume resources, or \
             ec2-instance with instance_backup = \"snapshots\" (AWS archives no snapshot of a registered AMI)",
        ));
    }
    if !matches!(tier, Tier::Monthly | Tier::Yearly) {
        return Err(archive.err_self(format!(
            "for long-lived backups only: set tier = \"monthly\" or \"yearly\" (this plan's tier is {})",
            tier.as_str()
        )));
    }
    let start = DateTime::<Utc>::UNIX_EPOCH;
    let needed = i64::from(after_days) + crate::archive::MINIMUM_ARCHIVE_DAYS;
    if period_days < 28 {
        return Err(archive.err_self(format!(
            "the schedule runs every {period_days} days: archive is for monthly or yearly schedules, whose backups each \
             stand for their period (a more frequent schedule's count and GFS rules keep most backups briefly)"
        )));
    }
    match crate::archive::keep_until(retain, tier, Some(period_days), start, None) {
        None => Err(archive.err_self(
            "the retention rules give a backup no known lifetime: set retain.days, retain.count or retain.monthly",
        )),
        Some(until) if (until - start).num_days() < needed => Err(archive.err_self(format!(
            "backups are kept {} days, so none would stay the {after_days} days plus the archive tier's \
             {}-day minimum ({needed} days) that archiving needs",
            (until - start).num_days(),
            crate::archive::MINIMUM_ARCHIVE_DAYS
        ))),
        Some(_) => Ok(ArchiveRule { after_days, unique_percent, ..ArchiveRule::default() }),
    }
}

fn parse_controls(mut c: Reader) -> Result<Controls, PolicyError> {
    let controls = Controls {
        encrypted: c.bool("encrypted")?.unwrap_or(false),
        cross_region_copy: c.bool("cross_region_copy")?.unwrap_or(false),
        s3_object_lock_days: c.days("s3_object_lock_days")?,
        min_retention_days: c.days("min_retention_days")?,
        drill_within_days: c.days("drill_within_days")?,
        rds_pitr_days: match c.u32("rds_pitr_days")? {
            None => None,
            Some(days @ 1..=35) => Some(days),
            Some(days) => {
                return Err(c.err("rds_pitr_days", format!("{days}: RDS keeps automated backups 1 to 35 days")))
            }
        },
    };
    c.finish()?;
    Ok(controls)
}

fn parse_s3(mut s3: Reader) -> Result<S3Settings, PolicyError> {
    let backup_bucket = s3.required_string("backup_bucket")?;
    if !is_bucket_name(&backup_bucket) {
        return Err(s3.err(
            "backup_bucket",
            format!("{backup_bucket:?} is not a valid S3 bucket name (3-63 lowercase letters, digits, '.' and '-')"),
        ));
    }
    let storage_class = s3.string("storage_class")?;
    if let Some(class) = &storage_class {
        if !STORAGE_CLASSES.contains(&class.as_str()) {
            return Err(s3.err("storage_class", format!("{class:?}: expected one of {}", STORAGE_CLASSES.join(", "))));
        }
    }
    let lock_days = s3.days("lock_days")?;
    let prefix = s3.non_empty_string("prefix")?;
    let inventory_id = s3.non_empty_string("inventory_id")?;
    if let Some(id) = inventory_id.as_deref().filter(|id| !is_inventory_id(id)) {
        return Err(s3.err(
            "inventory_id",
            format!("{id:?} is not an S3 Inventory configuration id (1-64 letters, digits, '.', '-' and '_')"),
        ));
    }
    let inventory_max_age_hours = match s3.positive("inventory_max_age_hours")? {
        Some(hours) if inventory_id.is_none() => {
            return Err(s3.err("inventory_max_age_hours", format!("{hours} is set, but inventory_id is not")))
        }
        Some(hours) if hours > 24 * 30 => {
            return Err(s3.err("inventory_max_age_hours", format!("{hours}: at most 720 (30 days)")))
        }
        Some(hours) => hours,
        None => DEFAULT_INVENTORY_MAX_AGE_HOURS,
    };
    s3.finish()?;
    Ok(S3Settings { backup_bucket, storage_class, lock_days, prefix, inventory_id, inventory_max_age_hours })
}

/// S3 Inventory configuration ids: what the console and the API accept.
fn is_inventory_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn parse_drill(mut drill: Reader, resources: &[ResourceType]) -> Result<DrillSettings, PolicyError> {
    let sample = drill.positive("sample")?.unwrap_or(1);
    let max_parallel = drill.positive("max_parallel")?.unwrap_or(1);
    let target_subnet = drill.non_empty_string("target_subnet")?;
    if let Some(subnet) = &target_subnet {
        let hex = subnet.strip_prefix("subnet-").unwrap_or_default();
        if !matches!(hex.len(), 8 | 17) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(drill.err("target_subnet", format!("{subnet:?} is not a subnet id (subnet-0123456789abcdef0)")));
        }
    } else if resources.iter().any(|r| matches!(r, ResourceType::Ec2Instance | ResourceType::Ec2Volume)) {
        // The point of a drill is an isolated target: never let restores default into a VPC
        // that production traffic can reach.
        return Err(drill.err("target_subnet", "missing: drills of EC2 resources restore into this isolated subnet"));
    }
    let db_subnet_group = drill.non_empty_string("db_subnet_group")?;
    let instance_class = drill.non_empty_string("instance_class")?;
    if let Some(class) = instance_class.as_deref().filter(|c| !c.starts_with("db.")) {
        return Err(drill.err("instance_class", format!("{class:?} is not an RDS instance class (e.g. db.t3.micro)")));
    }
    let instance_type = drill.non_empty_string("instance_type")?;
    if let Some(kind) = instance_type.as_deref().filter(|t| t.starts_with("db.") || !t.contains('.')) {
        return Err(drill.err("instance_type", format!("{kind:?} is not an EC2 instance type (e.g. t3.micro)")));
    }
    if instance_type.is_some() {
        // A drill of an instance restores its volumes (from its snapshot set or its AMI's
        // snapshots) and checks them; it launches no instance, so the key would do nothing.
        return Err(drill.err(
            "instance_type",
            "drills restore an instance's volumes and check them without launching it: remove instance_type",
        ));
    }
    let scratch_secret_arn = drill.non_empty_string("scratch_secret_arn")?;
    match &scratch_secret_arn {
        Some(arn) if crate::services::secrets::secret_region(arn).is_none() => {
            return Err(drill.err("scratch_secret_arn", format!("{arn:?} is not a Secrets Manager secret ARN")))
        }
        None if resources.contains(&ResourceType::PostgresDb) => {
            return Err(drill.err(
                "scratch_secret_arn",
                "missing: drills of postgres-db restore into a scratch database on this secret's server",
            ))
        }
        _ => {}
    }
    drill.finish()?;
    Ok(DrillSettings {
        sample,
        target_subnet,
        db_subnet_group,
        instance_class,
        instance_type,
        max_parallel,
        scratch_secret_arn,
    })
}

/// `^[a-z]{2}(-gov)?-[a-z]+-\d$`: the shape of commercial and GovCloud region names.
fn is_region(region: &str) -> bool {
    let lower = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase());
    let parts: Vec<&str> = region.split('-').collect();
    let (country, area, number) = match parts[..] {
        [country, area, number] => (country, area, number),
        [country, "gov", area, number] => (country, area, number),
        _ => return false,
    };
    country.len() == 2
        && lower(country)
        && lower(area)
        && number.len() == 1
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// S3 bucket naming rules (general purpose buckets): 3-63 characters of lowercase letters,
/// digits, '.' and '-', starting and ending with a letter or digit.
fn is_bucket_name(name: &str) -> bool {
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && edge(name.bytes().next())
        && edge(name.bytes().last())
        && !name.contains("..")
}

/// The account of an IAM role ARN (`arn:<partition>:iam::<account>:role/<path/name>`).
/// A close match among `allowed` for a mistyped key (edit distance at most 2).
fn suggest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .copied()
        .map(|candidate| (edit_distance(key, candidate), candidate))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// Takes typed values out of one table of a plan, naming `plan` and the dotted key path in errors.
struct Reader<'a> {
    plan: &'a PlanRef,
    /// Path of this table inside the plan ("" for the plan itself, "retain", "copy_to[0]").
    path: String,
    table: Table,
}

impl<'a> Reader<'a> {
    /// Rejects unknown keys up front, so a typo is reported as such rather than as "missing".
    fn new(plan: &'a PlanRef, path: String, table: Table, allowed: &[&str]) -> Result<Self, PolicyError> {
        let reader = Reader { plan, path, table };
        if let Some(key) = reader.table.keys().find(|key| !allowed.contains(&key.as_str())) {
            let message = match suggest(key, allowed) {
                Some(close) => format!("unknown key (did you mean \"{}\"?)", reader.key(close)),
                None => format!("unknown key (expected one of: {})", allowed.join(", ")),
            };
            return Err(reader.err(key, message));
        }
        Ok(reader)
    }

    fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn err(&self, key: &str, message: impl Into<String>) -> PolicyError {
        PolicyError::Plan { plan: self.plan.clone(), key: self.key(key), message: message.into() }
    }

    /// An error about this table as a whole.
    fn err_self(&self, message: impl Into<String>) -> PolicyError {
        PolicyError::Plan { plan: self.plan.clone(), key: self.path.clone(), message: message.into() }
    }

    fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    fn wrong_type(&self, key: &str, expected: &str, found: &Value) -> PolicyError {
        self.err(key, format!("expected {expected}, found {}", found.type_str()))
    }

    fn string(&mut self, key: &str) -> Result<Option<String>, PolicyError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(key, "a string", &other)),
        }
    }

    fn required_string(&mut self, key: &str) -> Result<String, PolicyError> {
        match self.string(key)? {
            None => Err(self.err(key, "missing")),
            Some(s) if s.trim().is_empty() => Err(self.err(key, "empty")),
            Some(s) => Ok(s),
        }
    }

    fn non_empty_string(&mut self, key: &str) -> Result<Option<String>, PolicyError> {
        match self.string(key)? {
            Some(s) if s.trim().is_empty() => Err(self.err(key, "empty (leave the key out instead)")),
            other => Ok(other),
        }
    }

    /// A boolean's value without taking it (the key is read, and validated, later).
    fn peek_bool(&self, key: &str) -> Option<bool> {
        self.table.get(key).and_then(Value::as_bool)
    }

    fn bool(&mut self, key: &str) -> Result<Option<bool>, PolicyError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(b)),
            Some(other) => Err(self.wrong_type(key, "true or false", &other)),
        }
    }

    fn u32(&mut self, key: &str) -> Result<Option<u32>, PolicyError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(Value::Integer(n)) => match u32::try_from(n) {
                Ok(n) => Ok(Some(n)),
                Err(_) if n < 0 => Err(self.err(key, format!("{n} is negative"))),
                Err(_) => Err(self.err(key, format!("{n} is too large"))),
            },
            Some(other) => Err(self.wrong_type(key, "a whole number", &other)),
        }
    }

    fn positive(&mut self, key: &str) -> Result<Option<u32>, PolicyError> {
        match self.u32(key)? {
            Some(0) => Err(self.err(key, "must be at least 1")),
            other => Ok(other),
        }
    }

    fn days(&mut self, key: &str) -> Result<Option<u32>, PolicyError> {
        match self.positive(key)? {
            Some(days) if days > MAX_DAYS => Err(self.err(key, format!("{days} exceeds {MAX_DAYS} (100 years)"))),
            other => Ok(other),
        }
    }

    fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>, PolicyError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s),
                    other => Err(self.wrong_type(&format!("{key}[{i}]"), "a string", &other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.wrong_type(key, "an array of strings", &other)),
        }
    }

    fn table(&mut self, key: &str, allowed: &[&str]) -> Result<Option<Reader<'a>>, PolicyError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(Value::Table(table)) => Reader::new(self.plan, self.key(key), table, allowed).map(Some),
            Some(other) => Err(self.wrong_type(key, "a table", &other)),
        }
    }

    fn tables(&mut self, key: &str, allowed: &[&str]) -> Result<Vec<Reader<'a>>, PolicyError> {
        match self.table.remove(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Table(table) => Reader::new(self.plan, format!("{}[{i}]", self.key(key)), table, allowed),
                    other => Err(self.wrong_type(&format!("{key}[{i}]"), "a table", &other)),
                })
                .collect(),
            Some(other) => Err(self.wrong_type(key, "an array of tables", &other)),
        }
    }

    /// A table of tag key = value. AWS tags: keys 1-128 characters, values 0-256.
    fn tag_map(&mut self, key: &str) -> Result<BTreeMap<String, String>, PolicyError> {
        let table = match self.table.remove(key) {
            None => return Ok(BTreeMap::new()),
            Some(Value::Table(table)) => table,
            Some(other) => return Err(self.wrong_type(key, "a table of tag = \"value\"", &other)),
        };
        let mut tags = BTreeMap::new();
        for (tag, value) in table {
            let path = format!("{key}.{tag}");
            let Value::String(value) = value else {
                return Err(self.wrong_type(&path, "a string (use \"*\" for any value)", &value));
            };
            if tag.is_empty() || tag.chars().count() > 128 {
                return Err(self.err(&path, "tag keys are 1 to 128 characters"));
            }
            if value.chars().count() > 256 {
                return Err(self.err(&path, "tag values are at most 256 characters"));
            }
            tags.insert(tag, value);
        }
        Ok(tags)
    }

    /// Every key was either taken or rejected as unknown in `new`; this catches a key allowed but
    /// never read (a bug here, not in the file).
    fn finish(&self) -> Result<(), PolicyError> {
        match self.table.keys().next() {
            Some(key) => Err(self.err(key, "not supported here")),
            None => Ok(()),
        }
    }
}
