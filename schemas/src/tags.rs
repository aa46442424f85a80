//! Tag keys the fleet puts on every artifact it creates. Terraform's IAM conditions and the
//! retention safety checks rely on these exact strings.

/// Marks an artifact as created by the fleet (value `true`). Retention deletes nothing without it.
pub const MANAGED: &str = "backup-fleet:managed";
pub const TASK_ID: &str = "backup-fleet:task-id";
pub const PLAN: &str = "backup-fleet:plan";
/// The resource the artifact backs up (volume id, instance id, DB identifier, bucket).
pub const SOURCE: &str = "backup-fleet:source";
pub const TIER: &str = "backup-fleet:tier";
/// RFC 3339 instant after which retention may delete the artifact.
pub const EXPIRES_AT: &str = "backup-fleet:expires-at";
/// The source region of a cross-region copy.
pub const SOURCE_REGION: &str = "backup-fleet:source-region";
/// The artifact a copy or restore was made from.
pub const COPIED_FROM: &str = "backup-fleet:copied-from";
pub const RESTORED_FROM: &str = "backup-fleet:restored-from";
/// Resources created by a restore drill: the only restored resources the fleet may delete.
pub const RESTORE_DRILL: &str = "backup-fleet:restore-drill";
/// An operator's legal hold: retention never deletes an artifact carrying this tag (any value).
pub const LEGAL_HOLD: &str = "backup-fleet:legal-hold";
/// The crash-consistent set an EBS snapshot belongs to (the id of the task that made the set):
/// snapshots sharing it are one backup, kept or deleted together, in every region.
pub const SET: &str = "backup-fleet:set";
/// How many snapshots the set has, on copies (whose members arrive one copy task at a time):
/// a copied set with fewer members than this is incomplete and is not counted as a backup.
pub const SET_SIZE: &str = "backup-fleet:set-size";
/// On an AMI's snapshots: the image they back (deleted with it, never on their own).
pub const IMAGE: &str = "backup-fleet:image";
/// On a copy in a backup account: the account the source artifact lives in.
pub const SOURCE_ACCOUNT: &str = "backup-fleet:source-account";
/// On the temporary re-encryption of a snapshot for sharing with a backup account: the copy
/// task it serves (deleted by that task once the backup account has its copy).
pub const SHARE_FOR: &str = "backup-fleet:share-for";
