"""Realism layer for the local moto server: make moto behave like AWS where moto is too kind.

moto completes every snapshot, AMI, copy and restore the moment it is created, shows every new
resource to every Describe call at once, and has no concurrency quotas or request throttling. The
fleet has code for all of these (waiting, retrying, backing off), and that code is only exercised
against the emulator if the emulator misbehaves the way AWS does. `install(spec)` monkeypatches
moto (5.2.5) so that it does:

* asynchronous completion: snapshots, AMIs, copies, RDS snapshots and restores stay pending for a
  configurable time with progress, then complete, or fail for a configurable share;
* eventual consistency: for a window after a create, Describe by id answers not-found and Describe
  by filter leaves the new resource out;
* quotas with AWS's own error codes: concurrent snapshots per volume, snapshot copies in flight per
  destination region, the CreateSnapshot request rate, duplicate AMI names;
* RDS point-in-time restores: RestoreDBInstanceToPointInTime / RestoreDBClusterToPointInTime go
  pending like the restores from a snapshot, and a time outside the source's restorable window
  (creation .. now minus a lag) or a source with automated backups off is refused; Describe and
  DescribeDBInstanceAutomatedBackups show that window;
* cross-Region automated backup replication of DB instances (moto has none of it):
  Start/StopDBInstanceAutomatedBackupsReplication in the destination region, the replicated backup
  in DescribeDBInstanceAutomatedBackups there (pending -> replicating -> retained, its own restorable
  window trailing now by a lag), RestoreDBInstanceToPointInTime from it by
  SourceDBInstanceAutomatedBackupsArn, DeleteDBInstanceAutomatedBackup, with AWS's refusals;
* the EBS snapshot archive tier: ModifySnapshotTier and RestoreSnapshotTier take time (and may fail),
  are refused in the wrong state, and an archived snapshot cannot be used until it is restored;
* RDS snapshot exports to S3: StartExportTask goes STARTING -> IN_PROGRESS (PercentProgress,
  TotalExtractedDataInGB) -> COMPLETE or FAILED (FailureCause), CancelExportTask goes CANCELING ->
  CANCELED; a source that is not available, a bucket that does not exist or is in another region,
  a missing IamRoleArn / KmsKeyId and a sixth export in progress per region are refused; a
  completed export leaves its files in the bucket (export_info / export_tables_info JSON and a
  placeholder, not-really-Parquet data file), written once, when the layer first finds it COMPLETE;
* SQS: only a message's newest receipt handle works (moto accepts every handle it ever had), and
  SendMessageBatch is refused above a total size of bodies and message attributes;
* accounts (moto keeps resources per account for credentials from STS AssumeRole): AssumeRole of
  a role whose name starts with a denied prefix is refused (AccessDenied, HTTP 403: moto has no
  trust policies); a snapshot another account shared (EBS createVolumePermission, the RDS `restore`
  attribute) can be copied by the account it is shared with (CopySnapshot, CopyDBSnapshot,
  CopyDBClusterSnapshot), pending like any copy; sharing a snapshot encrypted with the AWS managed
  key (aws/ebs, aws/rds) is refused, as AWS refuses it.

Use: `EMULATOR_REALISM=on scripts/emulator.sh start` (see docs/EMULATOR.md, "The realism layer",
for the configuration keys, the `realism:*` tag directives and the `/_realism/*` endpoints).

State is computed from the clock when read (properties on moto's model classes), so a resource
looks the same through every API that renders it, including the answer of the create call. The
per-resource bookkeeping lives in a WeakKeyDictionary keyed by moto's model objects, so it goes
away with them on `POST /moto-api/reset` and is never copied into other objects by moto.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import random
import sys
import threading
import time
import uuid
import warnings
import weakref
from typing import Any, Callable, Optional

# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------

KINDS = (
    "ebs_snapshot",  # CreateSnapshot, and each snapshot of a CreateSnapshots set
    "ami",  # CreateImage (the AMI and its backing snapshot share one fate and timing)
    "ebs_copy",  # CopySnapshot
    "ami_copy",  # CopyImage
    "rds_snapshot",  # CreateDBSnapshot
    "rds_cluster_snapshot",  # CreateDBClusterSnapshot
    "rds_copy",  # CopyDBSnapshot
    "rds_cluster_copy",  # CopyDBClusterSnapshot
    "restore_volume",  # CreateVolume with a SnapshotId
    "restore_instance",  # RunInstances
    "restore_db",  # RestoreDBInstanceFromDBSnapshot
    "restore_cluster",  # RestoreDBClusterFromSnapshot
    "restore_db_pitr",  # RestoreDBInstanceToPointInTime
    "restore_cluster_pitr",  # RestoreDBClusterToPointInTime
    "snapshot_archive",  # ModifySnapshotTier (archive)
    "snapshot_tier_restore",  # RestoreSnapshotTier (temporary or permanent)
    "rds_export",  # StartExportTask (a DB or DB cluster snapshot exported to S3)
)

# Per-kind settings fall back to the family key, then to the global value.
FAMILY = {
    "restore_volume": "restore",
    "restore_instance": "restore",
    "restore_db": "restore",
    "restore_cluster": "restore",
    "restore_db_pitr": "restore",
    "restore_cluster_pitr": "restore",
}

# Derived resources (copies, restores) also read `realism:<family>-<directive>` from their source.
DIRECTIVE_FAMILY = {
    "ebs_copy": "copy",
    "ami_copy": "copy",
    "rds_copy": "copy",
    "rds_cluster_copy": "copy",
    "restore_volume": "restore",
    "restore_instance": "restore",
    "restore_db": "restore",
    "restore_cluster": "restore",
    "restore_db_pitr": "restore",
    "restore_cluster_pitr": "restore",
    # The tier operations act on the snapshot itself: `realism:archive-*` / `realism:tier-restore-*`
    # on the snapshot or its volume (never `realism:restore-*`, which is for volumes made from it).
    "snapshot_archive": "archive",
    "snapshot_tier_restore": "tier-restore",
    # An export also acts on the snapshot: `realism:export-*` on the snapshot or what it inherited
    # from (its DB instance / cluster). StartExportTask takes no tags of its own.
    "rds_export": "export",
}

DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "seed": 1,
    "pending_seconds": 2.0,
    "pending": {
        "ebs_snapshot": 2.0,
        "ami": 3.0,
        "ebs_copy": 3.0,
        "ami_copy": 3.0,
        "rds_snapshot": 2.0,
        "rds_cluster_snapshot": 2.0,
        "rds_copy": 3.0,
        "rds_cluster_copy": 3.0,
        "restore": 2.0,
        "snapshot_archive": 3.0,
        "snapshot_tier_restore": 3.0,
        "rds_export": 4.0,
    },
    "error_share": 0.0,
    "errors": {},
    "consistency_seconds": 1.0,
    "consistency": {},
    "consistency_on_create_tags": False,
    "ami_name_unique": True,
    # How far an RDS DB instance's / cluster's LatestRestorableTime trails now (AWS: up to ~5 min).
    "latest_restorable_lag_seconds": 2.0,
    # How long a canceled RDS export task stays CANCELING before it is CANCELED.
    "export_cancel_seconds": 1.0,
    # How far the LatestTime of automated backups replicated to another region trails now (AWS:
    # minutes); a new replication is "pending", with nothing restorable, for that long.
    "replication_lag_seconds": 3.0,
    "quotas": {
        "enabled": True,
        "pending_snapshots_per_volume": 5,
        "count_error_snapshots": True,
        "ebs_copies_per_region": 20,
        "rds_copies_per_region": 20,
        "rds_cluster_copies_per_region": 5,
        "create_snapshot_rate": 5.0,
        "create_snapshot_burst": 100,
        "rds_exports_per_region": 5,
    },
    "sqs": {
        "enabled": True,
        "stale_receipt_handles": True,
        "batch_request_limit_bytes": 262144,
    },
    "accounts": {
        "enabled": True,
        # AssumeRole of a role whose name starts with one of these is refused (AccessDenied).
        "deny_role_name_prefixes": ["untrusted-"],
        # CopySnapshot / CopyDBSnapshot / CopyDBClusterSnapshot of a snapshot another account shared.
        "shared_snapshot_copies": True,
        # Sharing a snapshot encrypted with the AWS managed key (aws/ebs, aws/rds) is refused.
        "refuse_default_key_shares": True,
    },
}

_MAP_KEYS = ("pending", "errors", "consistency")
_NUMBER_KEYS = (
    "pending_seconds",
    "error_share",
    "consistency_seconds",
    "latest_restorable_lag_seconds",
    "export_cancel_seconds",
    "replication_lag_seconds",
)
_BOOL_KEYS = ("enabled", "consistency_on_create_tags", "ami_name_unique")
_QUOTA_NUMBERS = (
    "pending_snapshots_per_volume",
    "ebs_copies_per_region",
    "rds_copies_per_region",
    "rds_cluster_copies_per_region",
    "create_snapshot_rate",
    "create_snapshot_burst",
    "rds_exports_per_region",
)
_QUOTA_BOOLS = ("enabled", "count_error_snapshots")
_SQS_BOOLS = ("enabled", "stale_receipt_handles")
_SQS_INTS = ("batch_request_limit_bytes",)
_ACCOUNTS_BOOLS = ("enabled", "shared_snapshot_copies", "refuse_default_key_shares")


class ConfigError(ValueError):
    pass


def _merge(base: dict[str, Any], patch: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Deep merge; a null value deletes the key (so `{"pending": null}` empties the map)."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, f"{path}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check a merged config; restores removed required keys from the defaults."""
    known = set(DEFAULTS)
    unknown = set(cfg) - known
    if unknown:
        raise ConfigError(f"unknown config keys: {sorted(unknown)} (known: {sorted(known)})")
    for key in _BOOL_KEYS:
        cfg.setdefault(key, DEFAULTS[key])
        if not isinstance(cfg[key], bool):
            raise ConfigError(f"{key} must be true or false")
    for key in _NUMBER_KEYS:
        cfg.setdefault(key, DEFAULTS[key])
        if not _is_number(cfg[key]) or cfg[key] < 0:
            raise ConfigError(f"{key} must be a number >= 0")
    if cfg["error_share"] > 1:
        raise ConfigError("error_share must be between 0 and 1")
    cfg.setdefault("seed", DEFAULTS["seed"])
    if not isinstance(cfg["seed"], (int, str)) or isinstance(cfg["seed"], bool):
        raise ConfigError("seed must be an integer or a string")
    valid_kinds = set(KINDS) | set(FAMILY.values())
    for section in _MAP_KEYS:
        cfg.setdefault(section, {})
        if not isinstance(cfg[section], dict):
            raise ConfigError(f"{section} must be an object of kind -> number")
        for kind, value in cfg[section].items():
            if kind not in valid_kinds:
                raise ConfigError(f"{section}.{kind}: unknown kind (known: {sorted(valid_kinds)})")
            if not _is_number(value) or value < 0 or (section == "errors" and value > 1):
                raise ConfigError(f"{section}.{kind} must be a number >= 0" + (" and <= 1" if section == "errors" else ""))
    quotas = cfg.setdefault("quotas", {})
    if not isinstance(quotas, dict):
        raise ConfigError("quotas must be an object")
    unknown = set(quotas) - set(DEFAULTS["quotas"])
    if unknown:
        raise ConfigError(f"unknown quota keys: {sorted(unknown)}")
    for key in _QUOTA_BOOLS:
        quotas.setdefault(key, DEFAULTS["quotas"][key])
        if not isinstance(quotas[key], bool):
            raise ConfigError(f"quotas.{key} must be true or false")
    for key in _QUOTA_NUMBERS:
        quotas.setdefault(key, DEFAULTS["quotas"][key])
        if not _is_number(quotas[key]) or quotas[key] < 0:
            raise ConfigError(f"quotas.{key} must be a number >= 0 (0 = no limit)")
    sqs = cfg.setdefault("sqs", {})
    if not isinstance(sqs, dict):
        raise ConfigError("sqs must be an object")
    unknown = set(sqs) - set(DEFAULTS["sqs"])
    if unknown:
        raise ConfigError(f"unknown sqs keys: {sorted(unknown)} (known: {sorted(DEFAULTS['sqs'])})")
    for key in _SQS_BOOLS:
        sqs.setdefault(key, DEFAULTS["sqs"][key])
        if not isinstance(sqs[key], bool):
            raise ConfigError(f"sqs.{key} must be true or false")
    for key in _SQS_INTS:
        sqs.setdefault(key, DEFAULTS["sqs"][key])
        if not isinstance(sqs[key], int) or isinstance(sqs[key], bool) or sqs[key] < 0:
            raise ConfigError(f"sqs.{key} must be an integer >= 0 (0 = no limit)")
    accounts = cfg.setdefault("accounts", {})
    if not isinstance(accounts, dict):
        raise ConfigError("accounts must be an object")
    unknown = set(accounts) - set(DEFAULTS["accounts"])
    if unknown:
        raise ConfigError(f"unknown accounts keys: {sorted(unknown)} (known: {sorted(DEFAULTS['accounts'])})")
    for key in _ACCOUNTS_BOOLS:
        accounts.setdefault(key, DEFAULTS["accounts"][key])
        if not isinstance(accounts[key], bool):
            raise ConfigError(f"accounts.{key} must be true or false")
    accounts.setdefault("deny_role_name_prefixes", list(DEFAULTS["accounts"]["deny_role_name_prefixes"]))
    prefixes = accounts["deny_role_name_prefixes"]
    if not isinstance(prefixes, list) or not all(isinstance(p, str) and p for p in prefixes):
        raise ConfigError("accounts.deny_role_name_prefixes must be a list of non-empty strings ([] = refuse none)")
    return cfg


def parse_spec(spec: str) -> Optional[dict[str, Any]]:
    """`on`/`1`/`true` -> defaults; `off`/`0`/empty -> None (not installed); `{...}` -> merged over
    the defaults; `@path` -> a JSON file merged over the defaults."""
    text = (spec or "").strip()
    if text.lower() in ("", "0", "off", "false", "no"):
        return None
    if text.lower() in ("1", "on", "true", "yes", "default", "defaults"):
        return _validate(copy.deepcopy(DEFAULTS))
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            text = f.read()
    try:
        patch = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"EMULATOR_REALISM is neither on/off nor JSON: {e}") from None
    if not isinstance(patch, dict):
        raise ConfigError("EMULATOR_REALISM JSON must be an object")
    return _validate(_merge(DEFAULTS, patch))


# --------------------------------------------------------------------------------------------------
# Runtime state
# --------------------------------------------------------------------------------------------------


class Meta:
    """What the realism layer knows about one created resource."""

    __slots__ = (
        "kind",
        "t0",
        "pending",
        "fate",
        "visible_at",
        "directives",
        "fail_progress",
        "exists",
        "__weakref__",
    )

    def __init__(self, kind: str, pending: float, fate: str, consistency: float, directives: dict[str, str], fail_progress: int):
        self.kind = kind
        self.t0 = time.monotonic()
        self.pending = pending
        self.fate = fate
        self.visible_at = self.t0 + consistency
        self.directives = directives
        self.fail_progress = fail_progress
        # Set when the object is registered for a quota: () -> bool, "still exists in moto".
        self.exists: Callable[[], bool] = lambda: True

    def view(self, now: Optional[float] = None) -> tuple[str, int]:
        """("pending" | "ok" | "error", percent)."""
        now = time.monotonic() if now is None else now
        elapsed = now - self.t0
        if elapsed < self.pending:
            return "pending", max(0, min(99, int(100 * elapsed / self.pending)))
        if self.fate == "error":
            return "error", self.fail_progress
        return "ok", 100

    def done(self, now: Optional[float] = None) -> bool:
        now = time.monotonic() if now is None else now
        return now - self.t0 >= self.pending

    def hidden(self, now: Optional[float] = None) -> bool:
        now = time.monotonic() if now is None else now
        return now < self.visible_at


# The snapshot fields moto keeps for tiering; while a snapshot has a TierOp they are computed from it.
TIER_FIELDS = (
    "storage_tier",
    "last_tiering_start_time",
    "last_tiering_progress",
    "last_tiering_operation_status",
    "last_tiering_operation_status_detail",
    "archival_complete_time",
    "restore_expiry_time",
    "restore_start_time",
)
TIER_BUSY = ("archival-in-progress", "temporary-restore-in-progress", "permanent-restore-in-progress")
_TIER_NAMES = {
    "archive": ("archival", "Archival"),
    "temporary": ("temporary-restore", "Temporary restore"),
    "permanent": ("permanent-restore", "Permanent restore"),
}
_TIER_PHASES = {"pending": "in-progress", "ok": "completed", "error": "failed"}


class TierOp:
    """The latest ModifySnapshotTier / RestoreSnapshotTier of one snapshot: what readers saw before it
    (`base`), and its timing and fate (`meta`). The tier only changes when the operation completes:
    an archiving snapshot stays in `standard` (and usable), a restoring one stays in `archive`."""

    __slots__ = ("op", "meta", "base", "days", "started", "__weakref__")

    def __init__(self, op: str, meta: Meta, base: dict[str, Any], days: int = 1):
        from moto.core.utils import utcnow

        self.op = op  # "archive" | "temporary" | "permanent"
        self.meta = meta
        self.base = base
        self.days = days
        self.started = utcnow()  # moto's (naive UTC) timestamps, so all of them render alike

    def fields(self) -> dict[str, Any]:
        from datetime import timedelta

        phase, progress = self.meta.view()
        name, label = _TIER_NAMES[self.op]
        done_at = self.started + timedelta(seconds=self.meta.pending)
        out = dict(self.base)
        out["last_tiering_start_time"] = self.started
        out["last_tiering_progress"] = progress
        out["last_tiering_operation_status"] = f"{name}-{_TIER_PHASES[phase]}"
        out["last_tiering_operation_status_detail"] = {
            "pending": f"{label} in progress",
            "ok": f"{label} completed successfully",
            "error": f"{label} failed: internal error (simulated by the emulator realism layer)",
        }[phase]
        if self.op == "archive":
            out["storage_tier"] = "archive" if phase == "ok" else "standard"
            out["restore_expiry_time"] = None
            if phase == "ok":
                out["archival_complete_time"] = done_at
        else:
            out["storage_tier"] = "standard" if phase == "ok" else "archive"
            out["restore_start_time"] = self.started
            out["restore_expiry_time"] = done_at + timedelta(days=self.days) if phase == "ok" and self.op == "temporary" else None
        return out


# RDS snapshot exports (StartExportTask). Status values are the API reference's (upper case);
# moto 5.2.5 writes "complete" at once and "canceled" on CancelExportTask.
EXPORT_BUSY = ("STARTING", "IN_PROGRESS", "CANCELING")  # count against the in-progress quota
EXPORT_DONE = ("COMPLETE", "FAILED", "CANCELED")  # CancelExportTask refuses these
# Share of an export's pending time it stays STARTING (AWS: the snapshot is restored and scaled
# first) before it goes IN_PROGRESS with PercentProgress 0..99.
EXPORT_STARTING_SHARE = 0.2
EXPORT_FAILURE_CAUSE = "The export task failed: internal error (simulated by the emulator realism layer)."


class ExportCancel:
    """A CancelExportTask of a running export: CANCELING for `seconds`, then CANCELED, with the
    progress the export had reached frozen."""

    __slots__ = ("t0", "seconds", "started", "progress", "extracted", "__weakref__")

    def __init__(self, seconds: float, progress: int, extracted: Optional[int]):
        from moto.core.utils import utcnow

        self.t0 = time.monotonic()
        self.seconds = seconds
        self.started = utcnow()
        self.progress = progress
        self.extracted = extracted


def _export_extracted(task: Any, progress: int) -> Optional[int]:
    """TotalExtractedDataInGB at `progress` percent: the layer's stand-in is the snapshot's
    AllocatedStorage (AWS counts the data actually extracted)."""
    try:
        size = int(getattr(task.snapshot, "allocated_storage", 0) or 0)
    except (TypeError, ValueError):
        size = 0
    return size * progress // 100


def _export_view(task: Any, meta: Meta) -> tuple[str, int, Optional[int], Any]:
    """(Status, PercentProgress, TotalExtractedDataInGB, TaskEndTime or None) of a tracked export.
    The first reader that sees it done settles its files (see _export_settle)."""
    view = _export_phase(task, meta)
    if view[0] in EXPORT_DONE and task in STATE.export_files:
        _export_settle(task, view)
    return view


def _export_phase(task: Any, meta: Meta) -> tuple[str, int, Optional[int], Any]:
    from datetime import timedelta

    now = time.monotonic()
    cancel = STATE.export_cancels.get(task)
    if cancel is not None:
        if now - cancel.t0 < cancel.seconds:
            return "CANCELING", cancel.progress, cancel.extracted, None
        return "CANCELED", cancel.progress, cancel.extracted, cancel.started + timedelta(seconds=cancel.seconds)
    phase, _ = meta.view(now)
    if phase == "pending":
        elapsed = now - meta.t0
        starting = meta.pending * EXPORT_STARTING_SHARE
        if elapsed < starting:
            return "STARTING", 0, 0, None
        progress = max(0, min(99, int(100 * (elapsed - starting) / (meta.pending - starting))))
        return "IN_PROGRESS", progress, _export_extracted(task, progress), None
    started = getattr(task, "created_at", None)
    ended = started + timedelta(seconds=meta.pending) if started is not None else None
    if phase == "error":
        return "FAILED", meta.fail_progress, _export_extracted(task, meta.fail_progress), ended
    return "COMPLETE", 100, _export_extracted(task, 100), ended


def _export_status(task: Any) -> str:
    """The status a reader sees now (upper case while the layer is on or the task is tracked)."""
    return str(task.status or "")


# What an export writes to its bucket when it is COMPLETE (docs/EMULATOR.md, "RDS snapshot exports",
# says which names AWS's documentation confirms): under `<S3Prefix>/<ExportTaskIdentifier>/`, the
# two JSON files RDS describes the export in, and one data file of one placeholder table.
EXPORT_TABLE = "realism_export"
EXPORT_PLACEHOLDER = b"Not Parquet: a placeholder data file written by the emulator realism layer.\n"


class ExportFiles:
    """Where a tracked export writes its files once it is COMPLETE: the account and region of its
    StartExportTask and the bucket's name. Dropped when the export is done (files written, or
    none for FAILED / CANCELED), so they are written at most once."""

    __slots__ = ("account", "region", "bucket", "writing")

    def __init__(self, account: str, region: str, bucket: str):
        self.account = account
        self.region = region
        self.bucket = bucket
        self.writing = False


def _s3_bucket(account: str, region: str, name: str) -> tuple[Any, Any]:
    """(moto S3 backend that holds the bucket called `name`, the bucket) in any account of the
    emulator (its owner's backend, else the caller's), or (None, None)."""
    try:
        from moto.s3.models import s3_backends
        from moto.utilities.utils import get_partition

        owner = s3_backends.bucket_accounts.get(name)
        if owner is not None:
            partition, owner_account = owner
            backend = s3_backends[owner_account][partition]
        else:
            backend = s3_backends[account][get_partition(region)]
        bucket = backend.buckets.get(name)
        return (backend, bucket) if bucket is not None else (None, None)
    except Exception:
        return None, None


def _export_base(task: Any) -> str:
    """`<S3Prefix>/<ExportTaskIdentifier>/`, or `<ExportTaskIdentifier>/` without a prefix."""
    prefix = str(getattr(task, "s3_prefix", None) or "").rstrip("/")
    identifier = task.export_task_identifier
    return f"{prefix}/{identifier}/" if prefix else f"{identifier}/"


def _export_table(task: Any) -> tuple[str, str, str]:
    """(database, `schema.table` folder, export_tables_info target) of the placeholder table. The
    database is the first `ExportOnly` entry's, else the DB's DBName (a cluster's DatabaseName),
    else `postgres` (PostgreSQL engines) or `realism`. PostgreSQL tables are `<schema>.<table>` in
    schema `public` unless ExportOnly names one; MySQL-like ones `<database>.<table>`."""
    snapshot = task.snapshot
    source = getattr(snapshot, "database", None) or getattr(snapshot, "cluster", None)
    engine = str(getattr(snapshot, "engine", None) or getattr(source, "engine", None) or "").lower()
    postgres = "postgres" in engine
    database = getattr(source, "db_name", None) or getattr(source, "database_name", None) or ("postgres" if postgres else "realism")
    schema, table = ("public" if postgres else ""), EXPORT_TABLE
    only = [str(e).strip() for e in (getattr(task, "export_only", None) or []) if str(e).strip()]
    if only:
        parts = only[0].split(".")
        database = parts[0] or database
        if postgres:
            schema = parts[1] if len(parts) > 1 and parts[1] else schema
            table = parts[2] if len(parts) > 2 and parts[2] else table
        elif len(parts) > 1 and parts[1]:
            table = parts[1]
    folder = f"{schema or database}.{table}"
    return str(database), folder, f"{database}.{folder}" if postgres else folder


def _iso_ms(t: Any) -> Optional[str]:
    if t is None:
        return None
    if hasattr(t, "strftime"):
        return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return str(t)


def _export_put_files(task: Any, files: ExportFiles, view: tuple[str, int, Optional[int], Any]) -> None:
    """Write a COMPLETE export's files into moto's S3 backend (not over HTTP): encrypted with the
    export's KMS key, LastModified its TaskEndTime, no event notifications."""
    backend, bucket = _s3_bucket(files.account, files.region, files.bucket)
    if bucket is None:
        raise LookupError(f"the bucket {files.bucket} no longer exists")
    identifier = task.export_task_identifier
    base = _export_base(task)
    database, folder, target = _export_table(task)
    _, progress, extracted, ended = view
    # Stable for one task (no draw from the seeded generator, which decides fates).
    part = uuid.uuid5(uuid.NAMESPACE_URL, f"{task.source_arn}#{identifier}#{_iso_ms(getattr(task, 'created_at', None))}")
    info = {
        "exportTaskIdentifier": identifier,
        "sourceArn": task.source_arn,
        "sourceType": getattr(task, "source_type", None),
        "exportOnly": list(getattr(task, "export_only", None) or []),
        "snapshotTime": _iso_ms(getattr(task.snapshot, "snapshot_create_time", None)),
        "taskStartTime": _iso_ms(getattr(task, "created_at", None)),
        "taskEndTime": _iso_ms(ended),
        "s3Bucket": files.bucket,
        "s3Prefix": str(getattr(task, "s3_prefix", None) or ""),
        "exportedFilesPath": base.rstrip("/"),
        "iamRoleArn": task.iam_role_arn,
        "kmsKeyId": task.kms_key_id,
        "status": "COMPLETE",
        "percentProgress": progress,
        "totalExportedDataInGB": extracted,
        "note": "written by the emulator realism layer; fields approximate AWS's",
    }
    tables = {"perTableStatus": [{"target": target, "status": "COMPLETE", "sizeGB": extracted}]}
    objects = (
        (f"{base}export_info_{identifier}.json", json.dumps(info, indent=2).encode()),
        (f"{base}export_tables_info_{identifier}_from_1_to_1.json", json.dumps(tables, indent=2).encode()),
        (f"{base}{database}/{folder}/1/part-00000-{part}.gz.parquet", EXPORT_PLACEHOLDER),
    )
    for key, body in objects:
        obj = backend.put_object(files.bucket, key, body, encryption="aws:kms", kms_key_id=task.kms_key_id, disable_notification=True)
        if ended is not None:
            obj.last_modified = ended


def _export_settle(task: Any, view: tuple[str, int, Optional[int], Any]) -> None:
    """A tracked export is done: if COMPLETE, write its files, once (a reader that comes while
    another writes them waits for it). FAILED and CANCELED write nothing."""
    with STATE.lock:
        files = STATE.export_files.get(task)
        if files is None or files.writing:
            return
        files.writing = True
        try:
            if view[0] == "COMPLETE":
                _export_put_files(task, files, view)
        except Exception as e:
            sys.stderr.write(f"emulator realism: export {task.export_task_identifier}: files not written: {e}\n")
        finally:
            STATE.export_files.pop(task, None)


def _settle_exports(bucket_name: Optional[str]) -> None:
    """Before S3 reads a bucket: settle the tracked exports into it that are done by now (their
    status decides), so their files are there whether or not anyone described them."""
    if not bucket_name or not STATE.export_files:
        return
    with STATE.lock:
        due = [task for task, files in list(STATE.export_files.items()) if files.bucket == bucket_name]
    for task in due:
        _export_status(task)


def _exports_in_progress(refs: list[Any]) -> int:
    """Prune and count the export tasks (weak references) moto still stores that are in progress."""
    keep = []
    for ref in refs:
        task = ref()
        if task is None:
            continue
        try:
            stored = task.backend.export_tasks.get(task.export_task_identifier) is task
        except Exception:
            stored = False
        if stored and _export_status(task) in EXPORT_BUSY:
            keep.append(ref)
    refs[:] = keep
    return len(keep)


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()  # config, rng, buckets, quota lists, stats
        # Held across "check a quota, then let moto create": no two creates can both take the
        # last slot. Order: create_lock, then lock.
        self.create_lock = threading.RLock()
        self.config: dict[str, Any] = _validate(copy.deepcopy(DEFAULTS))
        self.rng = random.Random(1)
        self.meta: "weakref.WeakKeyDictionary[Any, Meta]" = weakref.WeakKeyDictionary()
        self.clear()

    def clear(self) -> None:
        with self.lock:
            self.rng = random.Random(self.config.get("seed", 1))
            self.buckets: dict[tuple[str, str], list[float]] = {}
            # (account, region, volume_id) -> metas of snapshots that count against the volume
            self.volume_pending: dict[tuple[str, str, str], list[Meta]] = {}
            # (account, region, "ebs" | "rds" | "rds_cluster") -> metas of copies in flight
            self.copies: dict[tuple[str, str, str], list[Meta]] = {}
            # (account, region) -> weak references to the export tasks started with the layer on
            self.exports: dict[tuple[str, str], list[Any]] = {}
            # automated backups replicated into another region, until deleted (Replication)
            self.replications: list[Replication] = []
            # (account, region, ec2 id) -> visible_at, insertion-ordered (CreateTags check)
            self.recent: dict[tuple[str, str, str], float] = {}
            self.stats = {
                "pending": {},
                "failed": {},
                "not_found": {},
                "omitted": {},
                "refused": {},
                # SQS calls (or batch entries) that named a message by an older receipt handle
                "stale_receipt_handles": {},
                # copies of a snapshot another account shared with the caller, per API
                "shared_copies": {},
                "since_reset_seconds": 0.0,
            }
            self.reset_at = time.monotonic()
        self.meta = weakref.WeakKeyDictionary()
        # EBS snapshot -> its latest ModifySnapshotTier / RestoreSnapshotTier (TierOp)
        self.tiers: "weakref.WeakKeyDictionary[Any, TierOp]" = weakref.WeakKeyDictionary()
        # RDS export task -> its CancelExportTask (ExportCancel)
        self.export_cancels: "weakref.WeakKeyDictionary[Any, ExportCancel]" = weakref.WeakKeyDictionary()
        # RDS export task -> where it writes its files once COMPLETE (until it is done)
        self.export_files: "weakref.WeakKeyDictionary[Any, ExportFiles]" = weakref.WeakKeyDictionary()

    def count(self, section: str, key: str, n: int = 1) -> None:
        with self.lock:
            bucket = self.stats[section]
            bucket[key] = bucket.get(key, 0) + n


STATE = _State()
_tls = threading.local()
_INSTALLED = False


def _cfg() -> dict[str, Any]:
    return STATE.config  # replaced wholesale on update, so a read sees one consistent version


def _active() -> bool:
    return bool(STATE.config.get("enabled"))


def _kind_value(cfg: dict[str, Any], section: str, kind: str, fallback: str) -> float:
    values = cfg.get(section) or {}
    for key in (kind, FAMILY.get(kind)):
        if key is not None and values.get(key) is not None:
            return float(values[key])
    return float(cfg[fallback])


def get_config() -> dict[str, Any]:
    return copy.deepcopy(STATE.config)


def update_config(patch: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise ConfigError("the config must be a JSON object")
    with STATE.lock:
        new = _validate(_merge(STATE.config, patch))
        reseed = new.get("seed") != STATE.config.get("seed")
        STATE.config = new
        if reseed:
            STATE.rng = random.Random(new.get("seed"))
        return copy.deepcopy(new)


def get_stats() -> dict[str, Any]:
    with STATE.lock:
        out = copy.deepcopy(STATE.stats)
        out["since_reset_seconds"] = round(time.monotonic() - STATE.reset_at, 3)
        now = time.monotonic()
        out["in_flight"] = {
            "pending_snapshots_by_volume": {
                f"{a}/{r}/{v}": n for (a, r, v), metas in STATE.volume_pending.items() if (n := _live_count(metas, now, True))
            },
            "copies_by_region": {f"{a}/{r}/{k}": n for (a, r, k), metas in STATE.copies.items() if (n := _live_count(metas, now, False))},
            "exports_by_region": {f"{a}/{r}": n for (a, r), refs in STATE.exports.items() if (n := _exports_in_progress(refs))},
            "backup_replications_by_region": {},
        }
        for rep in STATE.replications:
            if rep.stopped is None:
                key = f"{rep.account}/{rep.region}"
                out["in_flight"]["backup_replications_by_region"][key] = out["in_flight"]["backup_replications_by_region"].get(key, 0) + 1
        return out


def reset_state() -> None:
    """Forget all realism state except the config (called after POST /moto-api/reset)."""
    STATE.clear()


# --------------------------------------------------------------------------------------------------
# Directives (realism:* tags)
# --------------------------------------------------------------------------------------------------

PREFIX = "realism:"


def _directives(tags: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if not tags:
        return out
    if isinstance(tags, dict):
        items = tags.items()
    else:  # RDS: [{"Key": k, "Value": v}]
        items = []
        for t in tags:
            try:
                items.append((t.get("Key", t.get("key")), t.get("Value", t.get("value"))))
            except AttributeError:
                continue
    for key, value in items:
        if isinstance(key, str) and key.startswith(PREFIX) and value is not None:
            out[key[len(PREFIX) :].strip().lower()] = str(value).strip()
    return out


def _ec2_tags(obj: Any) -> dict[str, str]:
    try:
        return obj.ec2_backend.tags.get(obj.id) or {}
    except Exception:
        return {}


def _rds_tags(obj: Any) -> Any:
    try:
        return obj.tags or []
    except Exception:
        return []


def _chain_ec2(obj: Any, parent: Callable[[Any], dict[str, str]] = lambda o: {}) -> dict[str, str]:
    """Directives an EC2 object passes on: what it inherited (or its parent's, when it was created
    before the layer knew it) overridden by its own current tags."""
    if obj is None:
        return {}
    meta = STATE.meta.get(obj)
    out = dict(meta.directives) if meta is not None else parent(obj)
    out.update(_directives(_ec2_tags(obj)))
    return out


def _chain_snapshot(snap: Any) -> dict[str, str]:
    return _chain_ec2(snap, lambda s: _chain_ec2(getattr(s, "volume", None)))


def _chain_ami(ami: Any) -> dict[str, str]:
    return _chain_ec2(ami, lambda a: _chain_ec2(getattr(a, "instance", None)))


def _chain_rds(obj: Any, parent_attr: Optional[str] = None) -> dict[str, str]:
    if obj is None:
        return {}
    meta = STATE.meta.get(obj)
    if meta is not None:
        out = dict(meta.directives)
    elif parent_attr:
        out = _chain_rds(getattr(obj, parent_attr, None))
    else:
        out = {}
    out.update(_directives(_rds_tags(obj)))
    return out


def _parse_fate(v: Optional[str]) -> Optional[str]:
    if v is None:
        return None
    v = v.lower()
    if v in ("error", "fail", "failed", "failure"):
        return "error"
    if v in ("ok", "success", "succeed", "completed", "available"):
        return "ok"
    return None


def _parse_seconds(v: Optional[str]) -> Optional[float]:
    if v is None:
        return None
    try:
        f = float(v)
    except ValueError:
        return None
    return f if f >= 0 and f == f and f != float("inf") else None


def _new_meta(kind: str, chain: dict[str, str], request: dict[str, str]) -> Meta:
    cfg = _cfg()
    family = DIRECTIVE_FAMILY.get(kind)

    def pick(name: str, parse: Callable[[Optional[str]], Any]) -> Any:
        candidates = [request.get(name)]
        if family:
            candidates.append(chain.get(f"{family}-{name}"))
        candidates.append(chain.get(name))
        for c in candidates:
            v = parse(c)
            if v is not None:
                return v
        return None

    pending = pick("pending-seconds", _parse_seconds)
    if pending is None:
        pending = _kind_value(cfg, "pending", kind, "pending_seconds")
    consistency = pick("consistency-seconds", _parse_seconds)
    if consistency is None:
        consistency = _kind_value(cfg, "consistency", kind, "consistency_seconds")
    fate = pick("fate", _parse_fate)
    with STATE.lock:
        if kind in ("restore_cluster", "restore_cluster_pitr"):
            fate = "ok"  # no failure state is modelled for a restored cluster
        if fate is None:
            share = _kind_value(cfg, "errors", kind, "error_share")
            fate = "error" if share > 0 and STATE.rng.random() < share else "ok"
        fail_progress = STATE.rng.randint(0, 99) if fate == "error" else 100
        directives = dict(chain)
        directives.update(request)
        meta = Meta(kind, pending, fate, consistency, directives, fail_progress)
        STATE.stats["pending"][kind] = STATE.stats["pending"].get(kind, 0) + 1
        if fate == "error":
            STATE.stats["failed"][kind] = STATE.stats["failed"].get(kind, 0) + 1
    return meta


def _attach(obj: Any, meta: Meta) -> None:
    STATE.meta[obj] = meta


def _remember_ec2(account: str, region: str, obj_id: str, meta: Meta) -> None:
    now = time.monotonic()
    with STATE.lock:
        recent = STATE.recent
        # Drop expired entries from the front (roughly time-ordered; a long window at the front
        # only delays the pruning of the entries behind it).
        while recent:
            key = next(iter(recent))
            if recent[key] > now:
                break
            del recent[key]
        if meta.visible_at > now:
            recent[(account, region, obj_id)] = meta.visible_at


def _exists_in(container: dict[str, Any], key: str, obj: Any, *more_keys: Optional[str]) -> Callable[[], bool]:
    """() -> True while moto still stores `obj` (under `key`, or one of `more_keys`)."""
    ref = weakref.ref(obj)
    keys = [key] + [k for k in more_keys if k and k != key]

    def exists() -> bool:
        o = ref()
        return o is not None and any(container.get(k) is o for k in keys)

    return exists


def _live_count(metas: list[Meta], now: float, count_errors: bool) -> int:
    """Prune and count metas still holding a slot: pending, or failed-but-present when errors
    count (a snapshot in `error` state counts against the per-volume limit until deleted)."""
    keep = []
    for m in metas:
        if not m.exists():
            continue
        if not m.done(now):
            keep.append(m)
        elif count_errors and m.fate == "error":
            keep.append(m)
    metas[:] = keep
    return len(keep)


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


def _ec2_error(code: str, message: str) -> Exception:
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError(code, message)


def _with_status(response_self: Any, exc: Exception, status: int) -> tuple[str, dict[str, Any]]:
    """Serialise a moto ServiceException as moto would, with another HTTP status."""
    from moto.core.responses import ActionResult

    _, headers, body = response_self.serialized(ActionResult(exc))
    headers = dict(headers)
    headers["status"] = status
    return body, headers


def _refuse(code: str) -> None:
    STATE.count("refused", code)


# --------------------------------------------------------------------------------------------------
# Model patches: state computed from the clock at read time
# --------------------------------------------------------------------------------------------------


def _stored_property(attr: str, name: str, default: Any, compute: Callable[[Any, Meta], Any]) -> property:
    """Replace a plain instance attribute by a property: moto's writes go to `attr` in the
    instance dict; reads return `compute(obj, meta)` for objects the layer tracks (None = use the
    stored value)."""

    def fget(self: Any) -> Any:
        meta = STATE.meta.get(self)
        if meta is not None:
            value = compute(self, meta)
            if value is not None:
                return value
        return self.__dict__.get(attr, default)

    def fset(self: Any, value: Any) -> None:
        self.__dict__[attr] = value

    return property(fget, fset, doc=f"{name} (realism layer)")


def _wrapped_property(orig: property, compute: Callable[[Any, Meta, Callable[[], Any]], Any]) -> property:
    def fget(self: Any) -> Any:
        meta = STATE.meta.get(self)
        if meta is not None:
            return compute(self, meta, lambda: orig.fget(self))  # type: ignore[misc]
        return orig.fget(self)  # type: ignore[misc]

    return property(fget, orig.fset, orig.fdel, orig.__doc__)


def _patch_init(cls: type) -> None:
    orig = cls.__init__

    @functools.wraps(orig)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        orig(self, *args, **kwargs)
        hook = getattr(_tls, "hook", None)
        if hook is not None and STATE.meta.get(self) is None:
            hook(self)

    cls.__init__ = __init__  # type: ignore[misc]


class _Hook:
    """Attach metas to the objects moto creates while a wrapped call runs (before moto stores
    them, so no other request ever sees one without its meta)."""

    def __init__(self, fn: Callable[[Any], None]):
        self.fn = fn

    def __enter__(self) -> "_Hook":
        self.prev = getattr(_tls, "hook", None)
        _tls.hook = self.fn
        return self

    def __exit__(self, *exc: Any) -> None:
        _tls.hook = self.prev


class _Scoped:
    """Set `_tls.<name>` to `value` while a wrapped call runs (what a response handler found out
    for the model method moto calls under it)."""

    def __init__(self, name: str, value: Any):
        self.name = name
        self.value = value

    def __enter__(self) -> "_Scoped":
        self.prev = getattr(_tls, self.name, None)
        setattr(_tls, self.name, self.value)
        return self

    def __exit__(self, *exc: Any) -> None:
        setattr(_tls, self.name, self.prev)


# Once a resource has completed successfully its stored (moto) value is shown again, so later
# changes made by moto itself (an AMI disabled, an instance stopped...) stay visible.
EBS_STATES = {"pending": "pending", "ok": None, "error": "error"}
AMI_STATES = {"pending": "pending", "ok": None, "error": "failed"}
RDS_SNAPSHOT_STATES = {"pending": "creating", "ok": None, "error": "failed"}


# --------------------------------------------------------------------------------------------------
# RDS point-in-time restore: the restorable window
# --------------------------------------------------------------------------------------------------


def _naive_utc(value: Any) -> Any:
    """A request timestamp as moto keeps its own (naive UTC datetime); None if unparseable."""
    from datetime import datetime, timezone

    if isinstance(value, str):
        try:
            from botocore.utils import parse_timestamp

            value = parse_timestamp(value)
        except Exception:
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _restorable_window(obj: Any) -> tuple[Any, Any]:
    """(earliest, latest) restorable time of a DB instance or cluster, naive UTC as moto's own
    timestamps. earliest: the creation time, or `BackupRetentionPeriod` days ago if later; latest:
    now minus `latest_restorable_lag_seconds`, None while that is still before earliest (nothing
    restorable yet). (None, None): automated backups off (an instance with BackupRetentionPeriod 0;
    a cluster always has backups in AWS, so a moto cluster with 0 counts as 1 day)."""
    from datetime import timedelta

    from moto.core.utils import utcnow
    from moto.rds.models import DBCluster

    try:
        retention = int(obj.backup_retention_period or 0)
    except (TypeError, ValueError):
        retention = 0
    is_cluster = isinstance(obj, DBCluster)
    if is_cluster:
        retention = max(retention, 1)
        created = obj.__dict__.get("_rlz_earliest_restorable_time") or obj.cluster_create_time
    else:
        created = obj.instance_create_time
    if retention <= 0 or created is None:
        return None, None
    now = utcnow()
    earliest = max(created, now - timedelta(days=retention))
    latest = now - timedelta(seconds=float(_cfg().get("latest_restorable_lag_seconds", 0)))
    return earliest, (latest if latest >= earliest else None)


def _iso(t: Any) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if t is not None else "none"


class _AutomatedBackup:
    """One entry of DescribeDBInstanceAutomatedBackups for a live DB instance with automated
    backups on (moto's serializer reads these attributes by their snake_case names)."""

    def __init__(self, db: Any, earliest: Any, latest: Any):
        self.db_instance_identifier = db.db_instance_identifier
        self.db_instance_arn = db.db_instance_arn
        self.dbi_resource_id = db.dbi_resource_id
        self.region = db.region
        self.status = "active"
        self.restore_window = {"EarliestTime": earliest} if latest is None else {"EarliestTime": earliest, "LatestTime": latest}
        for attr in (
            "allocated_storage",
            "port",
            "availability_zone",
            "instance_create_time",
            "master_username",
            "engine",
            "engine_version",
            "license_model",
            "iops",
            "storage_type",
            "kms_key_id",
            "backup_retention_period",
            "preferred_backup_window",
            "option_group_name",
        ):
            setattr(self, attr, getattr(db, attr, None))
        self.encrypted = bool(getattr(db, "storage_encrypted", False))
        self.iam_database_authentication_enabled = bool(getattr(db, "enable_iam_database_authentication", False))
        self.db_instance_automated_backups_arn = _automated_backup_arn(db)
        # The regions the instance's automated backups are being replicated to (AWS lists them on
        # the source's own entry and on DescribeDBInstances).
        self.db_instance_automated_backups_replications = _replications_of(db)


def _automated_backup_arn(db: Any) -> str:
    """The DBInstanceAutomatedBackupsArn of a DB instance's automated backups in its own region.
    moto gives every instance the same DbiResourceId, so the id is derived from the ARN and the
    creation time: stable for one instance, different for a new one of the same name."""
    import hashlib

    digest = hashlib.sha1(f"{db.db_instance_arn}@{db.instance_create_time}".encode()).hexdigest()[:26].upper()
    return f"arn:{db.partition}:rds:{db.region}:{db.account_id}:auto-backup:ab-{digest}"


# --------------------------------------------------------------------------------------------------
# RDS automated backups replicated to another region (cross-Region automated backups)
# --------------------------------------------------------------------------------------------------

# Status of a replicated backup: "pending" until something is restorable, then "replicating";
# "retained" once the replication is stopped (or its source deleted), until deleted or expired.


class Replication:
    """Automated backups of a DB instance replicated into another region of its account, from
    StartDBInstanceAutomatedBackupsReplication (called in that destination region) until
    DeleteDBInstanceAutomatedBackup, or until the retention period has passed since it stopped.
    Holds the source DB instance itself, so a backup whose source was deleted can still restore."""

    __slots__ = ("account", "region", "source", "source_arn", "arn", "retention", "kms_key_id", "tags", "started", "stopped")

    def __init__(self, account: str, region: str, source: Any, retention: int, kms_key_id: Optional[str], tags: list[dict[str, Any]]):
        import hashlib

        from moto.core.utils import utcnow

        self.account = account
        self.region = region  # the destination region
        self.source = source
        self.source_arn = source.db_instance_arn
        self.retention = retention
        self.kms_key_id = kms_key_id
        self.tags = tags
        self.started = utcnow()  # naive UTC, as moto's own timestamps
        self.stopped: Any = None
        # A new replication (also of the same source again, after a stop) gets a new ARN.
        seed = f"{self.source_arn}@{source.instance_create_time}>{region}@{self.started.isoformat()}"
        self.arn = f"arn:{source.partition}:rds:{region}:{account}:auto-backup:ab-{hashlib.sha1(seed.encode()).hexdigest()[:26]}"

    def window(self) -> tuple[Any, Any]:
        """(earliest, latest) restorable time, naive UTC. earliest: the start of the replication (the
        layer's reading: replicated from then on, not the source's history), or `retention` days ago if later;
        latest: now (the stop, once stopped) minus `replication_lag_seconds`, None while that is
        before earliest (nothing replicated yet, or a retained backup past its retention)."""
        from datetime import timedelta

        from moto.core.utils import utcnow

        now = utcnow()
        earliest = max(self.started, now - timedelta(days=self.retention))
        latest = (self.stopped or now) - timedelta(seconds=float(_cfg().get("replication_lag_seconds", 0)))
        return earliest, (latest if latest >= earliest else None)

    def status(self) -> str:
        if self.stopped is not None:
            return "retained"
        return "pending" if self.window()[1] is None else "replicating"


def _replications_of(db: Any) -> Optional[list[dict[str, str]]]:
    """DBInstanceAutomatedBackupsReplications of a DB instance: the replications of its automated
    backups that are running (pending or replicating), None if none."""
    with STATE.lock:
        arns = [r.arn for r in STATE.replications if r.source is db and r.stopped is None]
    return [{"DBInstanceAutomatedBackupsArn": arn} for arn in arns] or None


class _ReplicatedBackup(_AutomatedBackup):
    """One entry of DescribeDBInstanceAutomatedBackups in the destination region (and the answer of
    Start/Stop/DeleteDBInstanceAutomatedBackup): the source instance's fields, and the
    replication's own ARN, status, window, retention, KMS key and tags. As in AWS, Region is the
    source's region and DBInstanceArn / DBInstanceIdentifier are the source's."""

    def __init__(self, rep: Replication, status: Optional[str] = None):
        earliest, latest = rep.window()
        super().__init__(rep.source, earliest, latest)
        self.status = status or rep.status()
        # AWS answers an empty RestoreWindow while nothing is restorable (and for a deleting backup).
        self.restore_window = {"EarliestTime": earliest, "LatestTime": latest} if latest is not None and self.status != "deleting" else {}
        self.backup_retention_period = rep.retention
        self.kms_key_id = rep.kms_key_id
        self.db_instance_automated_backups_arn = rep.arn
        self.db_instance_automated_backups_replications = None
        self.tag_list = [dict(t) for t in rep.tags] or None


def _patch_models() -> None:
    from moto.ec2.models.amis import Ami
    from moto.ec2.models.elastic_block_store import Snapshot, Volume
    from moto.ec2.models.instances import Instance, InstanceState, StateReason
    from moto.rds.models import DBCluster, DBClusterSnapshot, DBInstance, DBSnapshot, ExportTask

    # EBS snapshot: pending (Progress 0..99%) -> completed | error (StateMessage).
    Snapshot.status = _stored_property("_rlz_status", "status", "completed", lambda s, m: EBS_STATES[m.view()[0]])
    orig_progress = Snapshot.progress
    Snapshot.progress = _wrapped_property(orig_progress, lambda s, m, orig: f"{m.view()[1]}%")
    Snapshot.state_message = property(
        lambda self: (
            "Snapshot creation failed: internal error (simulated by the emulator realism layer)"
            if (m := STATE.meta.get(self)) is not None and m.view()[0] == "error"
            else None
        )
    )

    # Storage tier: computed from the snapshot's latest tier operation, so DescribeSnapshots
    # (StorageTier, RestoreExpiryTime), DescribeSnapshotTierStatus and the storage-tier filter agree.
    def tier_field(name: str) -> property:
        key = f"_rlz_{name}"
        default = "standard" if name == "storage_tier" else None

        def fget(self: Any) -> Any:
            op = STATE.tiers.get(self)
            return op.fields()[name] if op is not None else self.__dict__.get(key, default)

        def fset(self: Any, value: Any) -> None:
            self.__dict__[key] = value

        return property(fget, fset, doc=f"{name} (realism layer)")

    for name in TIER_FIELDS:
        setattr(Snapshot, name, tier_field(name))

    # DescribeSnapshotTierStatus's last-tiering-operation filter (moto 5.2.5 does not know it).
    orig_filter = Snapshot.get_filter_value

    @functools.wraps(orig_filter)
    def snapshot_filter(self: Any, filter_name: str, method_name: Optional[str] = None) -> Any:
        if filter_name == "last-tiering-operation":
            return self.last_tiering_operation_status
        return orig_filter(self, filter_name, method_name)

    Snapshot.get_filter_value = snapshot_filter  # type: ignore[method-assign]

    # AMI: pending -> available | failed (StateReason).
    Ami.state = _stored_property("_rlz_state", "state", "available", lambda a, m: AMI_STATES[m.view()[0]])
    Ami.state_reason = property(
        lambda self: (
            {"Code": "Server.InternalError", "Message": "Server.InternalError: Internal error (simulated by the emulator realism layer)"}
            if (m := STATE.meta.get(self)) is not None and m.view()[0] == "error"
            else None
        )
    )

    # Volume restored from a snapshot: creating -> available (or in-use) | error.
    def volume_status(vol: Any, m: Meta, orig: Callable[[], Any]) -> Any:
        phase = m.view()[0]
        if phase == "pending":
            return "creating"
        if phase == "error":
            return "error"
        return orig()

    Volume.status = _wrapped_property(Volume.status, volume_status)

    # Instance from RunInstances: pending -> running | terminated (StateReason). Only while moto
    # itself says "running": a stop or terminate by the caller wins.
    def inst_state(inst: Any, m: Meta, orig: Callable[[], Any]) -> Any:
        st = orig()
        if getattr(st, "name", None) != "running":
            return st
        phase = m.view()[0]
        if phase == "pending":
            return InstanceState("pending", 0)
        if phase == "error":
            return InstanceState("terminated", 48)
        return st

    Instance.instance_state = _wrapped_property(Instance.instance_state, inst_state)
    Instance.state = _wrapped_property(Instance.state, lambda i, m, orig: i.instance_state.name)
    Instance.state_code = _wrapped_property(Instance.state_code, lambda i, m, orig: i.instance_state.code)

    def inst_reason(inst: Any, m: Meta) -> Any:
        if m.view()[0] == "error" and inst.__dict__.get("_state") is not None and inst.__dict__["_state"].name == "running":
            return StateReason("Server.InternalError: Internal error on launch (simulated by the emulator realism layer)", "Server.InternalError")
        return None

    Instance.state_reason = _stored_property("_rlz_state_reason", "state_reason", None, inst_reason)

    # RDS snapshots: creating (PercentProgress) -> available | failed.
    DBSnapshot.status = _stored_property("_rlz_status", "status", "available", lambda s, m: RDS_SNAPSHOT_STATES[m.view()[0]])
    DBSnapshot.percent_progress = property(lambda self: m.view()[1] if (m := STATE.meta.get(self)) is not None else 100)
    DBClusterSnapshot.status = _stored_property("_rlz_status", "status", "available", lambda s, m: RDS_SNAPSHOT_STATES[m.view()[0]])
    DBClusterSnapshot.percent_progress = _stored_property("_rlz_percent_progress", "percent_progress", 100, lambda s, m: m.view()[1])

    # RDS instance restored from a snapshot: creating -> available | incompatible-restore.
    def db_status(db: Any, m: Meta) -> Any:
        phase = m.view()[0]
        stored = db.__dict__.get("_rlz_status", "available")
        if stored != "available":
            return None  # moto moved it on (stopped, deleting, ...): show moto's status
        if phase == "pending":
            return "creating"
        if phase == "error":
            return "incompatible-restore"
        return None

    DBInstance.status = _stored_property("_rlz_status", "status", "available", db_status)

    # RDS cluster restored from a snapshot: creating -> available. moto's own property answers
    # "creating" once, then "available"; with a meta the clock decides instead.
    def cluster_status(cluster: Any, m: Meta, orig: Callable[[], Any]) -> Any:
        if m.view()[0] == "pending":
            return "creating"
        if cluster.__dict__.get("_status") == "creating":
            cluster.__dict__["_status"] = "available"
        return orig()

    DBCluster.status = _wrapped_property(DBCluster.status, cluster_status)

    # Restorable window (RDS point-in-time restore): moto says "now" for LatestRestorableTime and
    # the creation time for a cluster's EarliestRestorableTime. With the layer on, Describe shows the
    # window the restore calls check (see _restorable_window); a DB with backups off has none.
    orig_db_latest = DBInstance.latest_restorable_time

    def db_latest(self: Any) -> Any:
        if not _active():
            return orig_db_latest.fget(self)  # type: ignore[misc]
        return _restorable_window(self)[1]

    DBInstance.latest_restorable_time = property(db_latest, doc="LatestRestorableTime (realism layer)")

    orig_cluster_latest = DBCluster.latest_restorable_time

    def cluster_latest(self: Any) -> Any:
        if not _active():
            return orig_cluster_latest.fget(self)  # type: ignore[misc]
        return _restorable_window(self)[1]

    DBCluster.latest_restorable_time = property(cluster_latest, doc="LatestRestorableTime (realism layer)")

    def cluster_earliest(self: Any) -> Any:
        stored = self.__dict__.get("_rlz_earliest_restorable_time")
        if not _active():
            return stored
        return _restorable_window(self)[0]

    def set_cluster_earliest(self: Any, value: Any) -> None:
        self.__dict__["_rlz_earliest_restorable_time"] = value

    DBCluster.earliest_restorable_time = property(cluster_earliest, set_cluster_earliest, doc="EarliestRestorableTime (realism layer)")

    # DescribeDBInstances of a source whose automated backups are replicated to other regions lists
    # them (moto 5.2.5 has no such field).
    DBInstance.db_instance_automated_backups_replications = property(
        lambda self: _replications_of(self) if _active() else None, doc="DBInstanceAutomatedBackupsReplications (realism layer)"
    )

    # RDS export task: STARTING -> IN_PROGRESS (PercentProgress, TotalExtractedDataInGB) -> COMPLETE
    # | FAILED (FailureCause); after CancelExportTask CANCELING -> CANCELED. moto's tasks complete at
    # once and have none of these fields; a task the layer does not track keeps moto's status (upper
    # case while the layer is on, as AWS writes it) and no progress fields.
    def export_status(self: Any) -> Any:
        meta = STATE.meta.get(self)
        if meta is not None:
            return _export_view(self, meta)[0]
        stored = self.__dict__.get("_rlz_status", "complete")
        return stored.upper() if _active() and isinstance(stored, str) else stored

    def set_export_status(self: Any, value: Any) -> None:
        self.__dict__["_rlz_status"] = value

    ExportTask.status = property(export_status, set_export_status, doc="Status (realism layer)")

    def export_field(index: int, name: str) -> property:
        return property(lambda self: _export_view(self, m)[index] if (m := STATE.meta.get(self)) is not None else None, doc=f"{name} (realism layer)")

    ExportTask.percent_progress = export_field(1, "PercentProgress")
    ExportTask.total_extracted_data_in_gb = export_field(2, "TotalExtractedDataInGB")
    ExportTask.task_end_time = export_field(3, "TaskEndTime")
    ExportTask.failure_cause = property(
        lambda self: EXPORT_FAILURE_CAUSE if (m := STATE.meta.get(self)) is not None and _export_view(self, m)[0] == "FAILED" else None,
        doc="FailureCause (realism layer)",
    )
    ExportTask.task_start_time = property(lambda self: self.created_at if STATE.meta.get(self) is not None else None, doc="TaskStartTime (realism layer)")
    ExportTask.snapshot_time = property(
        lambda self: getattr(self.snapshot, "snapshot_create_time", None) if STATE.meta.get(self) is not None else None,
        doc="SnapshotTime (realism layer)",
    )

    for cls in (Snapshot, Ami, Volume, Instance, DBSnapshot, DBClusterSnapshot, DBInstance, DBCluster, ExportTask):
        _patch_init(cls)


# --------------------------------------------------------------------------------------------------
# Response patches: quotas, directives, eventual consistency
# --------------------------------------------------------------------------------------------------


def _request_ec2_directives(resp: Any) -> dict[str, str]:
    try:
        specs = resp._parse_tag_specification()
    except Exception:
        return {}
    out: dict[str, str] = {}
    for tags in specs.values():
        out.update(_directives(tags))
    return out


def _request_rds_directives(resp: Any) -> dict[str, str]:
    try:
        return _directives(resp.params.get("Tags") or [])
    except Exception:
        return {}


def _throttle_create_snapshot(resp: Any) -> Optional[tuple[str, dict[str, Any]]]:
    q = _cfg()["quotas"]
    rate, burst = float(q["create_snapshot_rate"]), float(q["create_snapshot_burst"])
    if not q["enabled"] or rate <= 0 or burst <= 0:
        return None
    key = (resp.current_account, resp.region)
    now = time.monotonic()
    with STATE.lock:
        bucket = STATE.buckets.get(key)
        if bucket is None:
            bucket = STATE.buckets[key] = [burst, now]
        tokens = min(burst, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            allowed = False
        else:
            bucket[0] = tokens - 1
            allowed = True
    if allowed:
        return None
    _refuse("RequestLimitExceeded")
    return _with_status(resp, _ec2_error("RequestLimitExceeded", "Request limit exceeded."), 503)


def _check_volume_quota(account: str, region: str, volume_ids: list[str]) -> None:
    q = _cfg()["quotas"]
    limit = int(q["pending_snapshots_per_volume"])
    if not q["enabled"] or limit <= 0:
        return
    now = time.monotonic()
    with STATE.lock:
        for vid in volume_ids:
            metas = STATE.volume_pending.get((account, region, vid))
            if metas and _live_count(metas, now, bool(q["count_error_snapshots"])) >= limit:
                _refuse("ConcurrentSnapshotLimitExceeded")
                raise _ec2_error(
                    "ConcurrentSnapshotLimitExceeded",
                    f"You've reached the limit on the number of concurrent snapshots you can create on the specified volume ({vid}). "
                    "Wait until the 'pending' requests have completed, and check that you do not have snapshots that are in an "
                    "incomplete state, such as 'error', which count against your concurrent snapshot limit.",
                )


def _check_copy_quota(account: str, region: str, pool: str) -> None:
    q = _cfg()["quotas"]
    key = {"ebs": "ebs_copies_per_region", "rds": "rds_copies_per_region", "rds_cluster": "rds_cluster_copies_per_region"}[pool]
    limit = int(q[key])
    if not q["enabled"] or limit <= 0:
        return
    now = time.monotonic()
    with STATE.lock:
        metas = STATE.copies.get((account, region, pool))
        if not metas or _live_count(metas, now, False) < limit:
            return
    if pool == "ebs":
        _refuse("ResourceLimitExceeded")
        raise _ec2_error(
            "ResourceLimitExceeded",
            f"You have reached the limit of {limit} concurrent snapshot copies to region {region}. "
            "Wait for copies in progress to complete and try again.",
        )
    from moto.rds.exceptions import SnapshotQuotaExceededFault

    _refuse("SnapshotQuotaExceeded")
    exc = SnapshotQuotaExceededFault()
    what = "DB snapshot" if pool == "rds" else "DB cluster snapshot"
    exc.message = f"Cannot copy {what}: the limit of {limit} {what} copies in progress to {region} has been reached."
    raise exc


def _register(table: dict[Any, list[Meta]], key: Any, meta: Meta, exists: Callable[[], bool]) -> None:
    meta.exists = exists
    with STATE.lock:
        table.setdefault(key, []).append(meta)


def _ec2_backend(account: str, region: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[account][region]


def _rds_backend(account: str, region: str) -> Any:
    from moto.rds.models import rds_backends

    return rds_backends[account][region]


def _snapshot_hook(
    resp: Any,
    kind: str,
    chain_for: Callable[[Any], dict[str, str]],
    request: dict[str, str],
    quota: Optional[tuple[dict[Any, list[Meta]], Callable[[Any], Any]]] = None,
) -> Callable[[Any], None]:
    """Hook for EBS snapshot creates: CreateSnapshot(s) and CopySnapshot."""
    from moto.ec2.models.elastic_block_store import Snapshot

    account, region = resp.current_account, resp.region

    def hook(obj: Any) -> None:
        if not isinstance(obj, Snapshot):
            return
        meta = _new_meta(kind, chain_for(obj), request)
        _attach(obj, meta)
        _remember_ec2(account, region, obj.id, meta)
        if quota is not None:
            table, key_for = quota
            _register(table, key_for(obj), meta, _exists_in(obj.ec2_backend.snapshots, obj.id, obj))

    return hook


def _ami_hook(resp: Any, kind: str, chain: dict[str, str], request: dict[str, str], copy_pool: bool) -> Callable[[Any], None]:
    """Hook for CreateImage/CopyImage: moto creates the backing snapshot inside Ami.__init__, so
    the snapshot comes first; both share one meta (one timing, one fate)."""
    from moto.ec2.models.amis import Ami
    from moto.ec2.models.elastic_block_store import Snapshot

    account, region = resp.current_account, resp.region
    shared: dict[str, Meta] = {}

    def meta() -> Meta:
        if "m" not in shared:
            shared["m"] = _new_meta(kind, chain, request)
        return shared["m"]

    def hook(obj: Any) -> None:
        if isinstance(obj, Snapshot) and getattr(obj, "from_ami", None):
            m = meta()
            _attach(obj, m)
            _remember_ec2(account, region, obj.id, m)
        elif isinstance(obj, Ami):
            m = meta()
            _attach(obj, m)
            _remember_ec2(account, region, obj.id, m)
            if copy_pool:
                # CopyImage counts as one snapshot copy in flight (moto's AMIs have one snapshot).
                _register(STATE.copies, (account, region, "ebs"), m, _exists_in(obj.ec2_backend.amis, obj.id, obj))

    return hook


def _simple_hook(cls: type, kind: str, chain: dict[str, str], request: dict[str, str], after: Optional[Callable[[Any, Meta], None]] = None) -> Callable[[Any], None]:
    def hook(obj: Any) -> None:
        if not isinstance(obj, cls):
            return
        meta = _new_meta(kind, chain, request)
        _attach(obj, meta)
        if after is not None:
            after(obj, meta)

    return hook


def _ids_hidden(objs: list[Any], now: float) -> list[Any]:
    out = []
    for o in objs:
        m = STATE.meta.get(o)
        if m is not None and m.hidden(now):
            out.append(o)
    return out


def _visible(objs: list[Any], now: float, api: str) -> list[Any]:
    kept = []
    omitted = 0
    for o in objs:
        m = STATE.meta.get(o)
        if m is not None and m.hidden(now):
            omitted += 1
        else:
            kept.append(o)
    if omitted:
        STATE.count("omitted", api, omitted)
    return kept


def _patch_ec2_responses() -> None:
    from moto.ec2.exceptions import InvalidAMIIdError, InvalidInstanceIdError, InvalidVolumeIdError
    from moto.ec2.models.elastic_block_store import Volume
    from moto.ec2.models.instances import Instance
    from moto.ec2.responses import EC2Response

    def wrap(name: str, off: Optional[Callable[[Any], None]] = None) -> Callable[[Callable[..., Any]], None]:
        """`off(self)` runs before moto's own handler when the layer is disabled."""
        orig = getattr(EC2Response, name)

        def decorator(fn: Callable[..., Any]) -> None:
            @functools.wraps(orig)
            def method(self: Any) -> Any:
                if not _active():
                    if off is not None:
                        off(self)
                    return orig(self)
                return fn(self, lambda: orig(self))

            setattr(EC2Response, name, method)

        return decorator

    def incorrect_state(message: str) -> Exception:
        _refuse("IncorrectState")
        return _ec2_error("IncorrectState", message)

    def refuse_archived(snap: Any) -> None:
        # AWS: an archived snapshot must be restored before it can be used; while its archival is
        # still in progress it can be used as before.
        if snap is not None and snap.storage_tier == "archive":
            raise incorrect_state(f"The snapshot '{snap.id}' is in the archive tier. Restore it to the standard tier before you use it.")

    # ---- CreateSnapshot ------------------------------------------------------------------------
    @wrap("create_snapshot")
    def create_snapshot(self: Any, orig: Callable[[], Any]) -> Any:
        throttled = _throttle_create_snapshot(self)
        if throttled is not None:
            return throttled
        account, region = self.current_account, self.region
        volume_id = self._get_param("VolumeId")
        request = _request_ec2_directives(self)
        hook = _snapshot_hook(
            self,
            "ebs_snapshot",
            lambda s: _chain_ec2(s.volume),
            request,
            (STATE.volume_pending, lambda s: (account, region, s.volume.id)),
        )
        with STATE.create_lock:
            if volume_id:
                _check_volume_quota(account, region, [volume_id])
            with _Hook(hook):
                return orig()

    # ---- CreateSnapshots -----------------------------------------------------------------------
    @wrap("create_snapshots")
    def create_snapshots(self: Any, orig: Callable[[], Any]) -> Any:
        throttled = _throttle_create_snapshot(self)
        if throttled is not None:
            return throttled
        account, region = self.current_account, self.region
        request = _request_ec2_directives(self)
        spec = self._get_param("InstanceSpecification", {}) or {}
        instance = None
        volume_ids: list[str] = []
        try:
            instance = self.ec2_backend.get_instance(spec.get("InstanceId"))
            exclude_boot = str(spec.get("ExcludeBootVolume", False)).lower() == "true"
            volume_ids = [
                m.volume_id for k, m in instance.get_block_device_mapping if not (exclude_boot and k == instance.root_device_name)
            ]
        except Exception:
            pass  # moto raises the proper error below
        instance_chain = _chain_ec2(instance)

        def chain(s: Any) -> dict[str, str]:
            out = dict(instance_chain)
            out.update(_chain_ec2(s.volume))
            return out

        hook = _snapshot_hook(self, "ebs_snapshot", chain, request, (STATE.volume_pending, lambda s: (account, region, s.volume.id)))
        with STATE.create_lock:
            _check_volume_quota(account, region, volume_ids)
            with _Hook(hook):
                return orig()

    # ---- CopySnapshot --------------------------------------------------------------------------
    @wrap("copy_snapshot")
    def copy_snapshot(self: Any, orig: Callable[[], Any]) -> Any:
        account, region = self.current_account, self.region
        request = _request_ec2_directives(self)
        source = shared = None
        src_region = self._get_param("SourceRegion") or region
        source_id = self._get_param("SourceSnapshotId")
        try:
            source = _ec2_backend(account, src_region).snapshots.get(source_id)
        except Exception:
            pass
        if source is None and source_id:
            # Not the caller's: a snapshot another account shared with it (see _shared_ebs_snapshot).
            source = shared = _shared_ebs_snapshot(account, src_region, source_id)
        refuse_archived(source)
        chain = _chain_snapshot(source)
        hook = _snapshot_hook(self, "ebs_copy", lambda s: chain, request, (STATE.copies, lambda s: (account, region, "ebs")))
        with STATE.create_lock:
            _check_copy_quota(account, region, "ebs")
            with _Hook(hook), _Scoped("shared_ebs_source", shared):
                return orig()

    # ---- CreateImage ---------------------------------------------------------------------------
    @wrap("create_image")
    def create_image(self: Any, orig: Callable[[], Any]) -> Any:
        name = self._get_param("Name")
        request = _request_ec2_directives(self)
        instance = None
        try:
            instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        except Exception:
            pass
        chain = _chain_ec2(instance)
        hook = _ami_hook(self, "ami", chain, request, copy_pool=False)
        with STATE.create_lock:
            if _cfg().get("ami_name_unique") and name:
                for ami in list(self.ec2_backend.amis.values()):
                    if ami.name == name:
                        _refuse("InvalidAMIName.Duplicate")
                        raise _ec2_error("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {ami.id}")
            with _Hook(hook):
                return orig()

    # ---- CopyImage -----------------------------------------------------------------------------
    @wrap("copy_image")
    def copy_image(self: Any, orig: Callable[[], Any]) -> Any:
        account, region = self.current_account, self.region
        request = _request_ec2_directives(self)
        source = None
        try:
            src_region = self._get_param("SourceRegion") or region
            source = _ec2_backend(account, src_region).amis.get(self._get_param("SourceImageId"))
        except Exception:
            pass
        chain = _chain_ami(source)
        hook = _ami_hook(self, "ami_copy", chain, request, copy_pool=True)
        with STATE.create_lock:
            _check_copy_quota(account, region, "ebs")
            with _Hook(hook):
                return orig()

    # ---- CreateVolume from a snapshot ----------------------------------------------------------
    @wrap("create_volume")
    def create_volume(self: Any, orig: Callable[[], Any]) -> Any:
        snapshot_id = self._get_param("SnapshotId")
        if not snapshot_id:
            return orig()
        account, region = self.current_account, self.region
        request = _request_ec2_directives(self)
        source = self.ec2_backend.snapshots.get(snapshot_id)
        refuse_archived(source)
        chain = _chain_snapshot(source)
        hook = _simple_hook(Volume, "restore_volume", chain, request, lambda v, m: _remember_ec2(account, region, v.id, m))
        with _Hook(hook):
            return orig()

    # ---- ModifySnapshotTier, RestoreSnapshotTier -----------------------------------------------
    def tier_snapshot(self: Any) -> Any:
        return self.ec2_backend.snapshots.get(self._get_param("SnapshotId"))

    def settle_tier(self: Any) -> None:
        """Layer off: keep what readers see now as the stored fields, so moto's own (instant)
        operation starts from there and its result shows."""
        snap = tier_snapshot(self)
        op = STATE.tiers.get(snap) if snap is not None else None
        if op is not None:
            for name, value in op.fields().items():
                setattr(snap, name, value)
            STATE.tiers.pop(snap, None)

    def start_tier(snap: Any, op: str, meta: Meta, orig: Callable[[], Any], days: int = 1) -> Any:
        """Attach the operation before moto runs (its answer reads the start time from it). moto
        writes its instant result into the stored fields, which the operation hides."""
        prev = STATE.tiers.get(snap)
        STATE.tiers[snap] = TierOp(op, meta, {name: getattr(snap, name) for name in TIER_FIELDS}, days)
        try:
            return orig()
        except Exception:
            if prev is None:
                STATE.tiers.pop(snap, None)
            else:
                STATE.tiers[snap] = prev
            raise

    @wrap("modify_snapshot_tier", off=settle_tier)
    def modify_snapshot_tier(self: Any, orig: Callable[[], Any]) -> Any:
        snap = tier_snapshot(self)
        if snap is None or self._get_param("StorageTier") != "archive":
            return orig()  # moto's own InvalidSnapshot.NotFound / InvalidParameterValue
        with STATE.create_lock:
            if snap.status != "completed":
                raise incorrect_state(f"The snapshot '{snap.id}' is in the '{snap.status}' state. Only a completed snapshot can be archived.")
            status = snap.last_tiering_operation_status
            if snap.storage_tier == "archive" or status in TIER_BUSY or status == "temporary-restore-completed":
                # Archived, being archived or restored, or temporarily restored (it still has its
                # archived copy, and goes back to the archive tier by itself).
                raise incorrect_state(f"The snapshot '{snap.id}' is already archived or has an archive or restore in progress ({status}).")
            meta = _new_meta("snapshot_archive", _chain_snapshot(snap), {})
            return start_tier(snap, "archive", meta, orig)

    @wrap("restore_snapshot_tier", off=settle_tier)
    def restore_snapshot_tier(self: Any, orig: Callable[[], Any]) -> Any:
        snap = tier_snapshot(self)
        if snap is None:
            return orig()
        op = "permanent" if str(self._get_param("PermanentRestore", False)).lower() == "true" else "temporary"
        days = int(self._get_param("TemporaryRestoreDays") or 1)  # moto's default when omitted
        with STATE.create_lock:
            status = snap.last_tiering_operation_status
            if status in TIER_BUSY:
                raise incorrect_state(f"The snapshot '{snap.id}' has an archive or restore in progress ({status}).")
            if snap.storage_tier == "archive":
                return start_tier(snap, op, _new_meta("snapshot_tier_restore", _chain_snapshot(snap), {}), orig, days)
            if status == "temporary-restore-completed":
                # AWS: a new restore period (from now) or restore type for a temporarily restored
                # snapshot; nothing to copy, so it takes effect at once.
                return start_tier(snap, op, Meta("snapshot_tier_restore", 0.0, "ok", 0.0, {}, 100), orig, days)
            raise incorrect_state(f"The snapshot '{snap.id}' is not in the archive tier.")

    # ---- RunInstances --------------------------------------------------------------------------
    @wrap("run_instances")
    def run_instances(self: Any, orig: Callable[[], Any]) -> Any:
        account, region = self.current_account, self.region
        request = _request_ec2_directives(self)
        image_id = self._get_param("ImageId")
        chain = _chain_ami(self.ec2_backend.amis.get(image_id)) if image_id else {}
        hook = _simple_hook(Instance, "restore_instance", chain, request, lambda i, m: _remember_ec2(account, region, i.id, m))
        with _Hook(hook):
            return orig()

    # ---- Describe* -----------------------------------------------------------------------------
    def not_found(code: str, exc: Exception) -> Exception:
        STATE.count("not_found", code)
        return exc

    def _refuse_existing_cluster(self: Any) -> None:
        # moto's create_db_cluster (also behind RestoreDBClusterFromSnapshot) silently replaces a
        # cluster of the same name; AWS refuses with DBClusterAlreadyExistsFault, which is what a
        # retried restore must be able to recognise.
        identifier = (self.params.get("DBClusterIdentifier") or "").lower()
        if identifier and identifier in {k.lower() for k in self.backend.clusters}:
            from moto.rds.exceptions import RDSClientError

            STATE.count("refused", "DBClusterAlreadyExistsFault")
            raise RDSClientError("DBClusterAlreadyExistsFault", f"DB cluster {identifier} already exists")

    @wrap("describe_snapshots")
    def describe_snapshots(self: Any, orig: Callable[[], Any]) -> Any:
        ids = self._get_param("SnapshotIds", []) or []
        result = orig()
        items = result.result["Snapshots"]
        now = time.monotonic()
        if ids:
            hidden = _ids_hidden(items, now)
            if hidden:
                raise not_found("InvalidSnapshot.NotFound", _ec2_error("InvalidSnapshot.NotFound", f"The snapshot '{hidden[0].id}' does not exist."))
        else:
            result.result["Snapshots"] = _visible(items, now, "DescribeSnapshots")
        return result

    @wrap("describe_images")
    def describe_images(self: Any, orig: Callable[[], Any]) -> Any:
        ids = self._get_param("ImageIds", []) or []
        result = orig()
        items = result.result["Images"]
        now = time.monotonic()
        if ids:
            hidden = _ids_hidden(items, now)
            if hidden:
                raise not_found("InvalidAMIID.NotFound", InvalidAMIIdError([h.id for h in hidden]))
        else:
            result.result["Images"] = _visible(items, now, "DescribeImages")
        return result

    @wrap("describe_volumes")
    def describe_volumes(self: Any, orig: Callable[[], Any]) -> Any:
        ids = self._get_param("VolumeIds", []) or []
        result = orig()
        items = result.result["Volumes"]
        now = time.monotonic()
        if ids:
            hidden = _ids_hidden(items, now)
            if hidden:
                raise not_found("InvalidVolume.NotFound", InvalidVolumeIdError(hidden[0].id))
        else:
            result.result["Volumes"] = _visible(items, now, "DescribeVolumes")
        return result

    @wrap("describe_instances")
    def describe_instances(self: Any, orig: Callable[[], Any]) -> Any:
        ids = self._get_param("InstanceIds", []) or []
        result = orig()
        reservations = result.result["Reservations"]
        now = time.monotonic()
        if ids:
            for r in reservations:
                hidden = _ids_hidden(r.instances, now)
                if hidden:
                    raise not_found("InvalidInstanceID.NotFound", InvalidInstanceIdError(hidden[0].id))
        else:
            kept = []
            for r in reservations:  # moto hands out shallow copies of its reservations
                visible = _visible(r.instances, now, "DescribeInstances")
                if len(visible) != len(r.instances):
                    r = copy.copy(r)
                    r.instances = visible
                if r.instances:
                    kept.append(r)
            result.result["Reservations"] = kept
        return result

    # ---- CreateTags (optional) -----------------------------------------------------------------
    prefix_errors = {
        "snap-": ("InvalidSnapshot.NotFound", lambda i: _ec2_error("InvalidSnapshot.NotFound", f"The snapshot '{i}' does not exist.")),
        "ami-": ("InvalidAMIID.NotFound", lambda i: InvalidAMIIdError(i)),
        "vol-": ("InvalidVolume.NotFound", lambda i: InvalidVolumeIdError(i)),
        "i-": ("InvalidInstanceID.NotFound", lambda i: InvalidInstanceIdError(i)),
    }

    @wrap("create_tags")
    def create_tags(self: Any, orig: Callable[[], Any]) -> Any:
        if _cfg().get("consistency_on_create_tags"):
            now = time.monotonic()
            account, region = self.current_account, self.region
            for rid in self._get_param("Resources", []) or []:
                visible_at = STATE.recent.get((account, region, rid))
                if visible_at is not None and now < visible_at:
                    for prefix, (code, make) in prefix_errors.items():
                        if rid.startswith(prefix):
                            raise not_found(code, make(rid))
        return orig()


def _patch_rds_responses() -> None:
    from moto.rds.exceptions import DBClusterNotFoundError, DBClusterSnapshotNotFoundError, DBInstanceNotFoundError, DBSnapshotNotFoundFault
    from moto.rds.models import DBCluster, DBClusterSnapshot, DBInstance, DBSnapshot, ExportTask
    from moto.rds.responses import RDSResponse
    from moto.rds.utils import split_arn

    def wrap(name: str, off: Optional[Callable[[Any], None]] = None) -> Callable[[Callable[..., Any]], None]:
        """`off(self)` runs before moto's own handler when the layer is disabled."""
        orig = getattr(RDSResponse, name)

        def decorator(fn: Callable[..., Any]) -> None:
            @functools.wraps(orig)
            def method(self: Any) -> Any:
                if not _active():
                    if off is not None:
                        off(self)
                    return orig(self)
                return fn(self, lambda: orig(self))

            setattr(RDSResponse, name, method)

        return decorator

    def lookup(self: Any, identifier: Optional[str], attr: str) -> Any:
        """A snapshot by name or ARN (cross-region copies name their source by ARN)."""
        if not identifier:
            return None
        try:
            region = self.region
            name = identifier
            if identifier.startswith("arn:"):
                region, _, _, name = split_arn(identifier)
            table = getattr(_rds_backend(self.current_account, region), attr)
            return table.get(name) or table.get(name.lower())
        except Exception:
            return None

    def db_lookup(self: Any, identifier: Optional[str]) -> Any:
        if not identifier:
            return None
        try:
            return self.backend.databases.get(identifier) or self.backend.databases.get(identifier.lower())
        except Exception:
            return None

    @wrap("create_db_snapshot")
    def create_db_snapshot(self: Any, orig: Callable[[], Any]) -> Any:
        chain = _chain_rds(db_lookup(self, self.params.get("DBInstanceIdentifier")))
        with _Hook(_simple_hook(DBSnapshot, "rds_snapshot", chain, _request_rds_directives(self))):
            return orig()

    @wrap("create_db_cluster_snapshot")
    def create_db_cluster_snapshot(self: Any, orig: Callable[[], Any]) -> Any:
        cluster = None
        try:
            cluster = self.backend.clusters.get(self.params.get("DBClusterIdentifier"))
        except Exception:
            pass
        chain = _chain_rds(cluster)
        with _Hook(_simple_hook(DBClusterSnapshot, "rds_cluster_snapshot", chain, _request_rds_directives(self))):
            return orig()

    def copy_call(self: Any, orig: Callable[[], Any], cls: type, kind: str, pool: str, source_param: str, target_param: str, table_attr: str, parent_attr: str) -> Any:
        account, region = self.current_account, self.region
        identifier = self.params.get(source_param)
        # A source ARN of another account: a snapshot it shared with the caller (else moto's not-found).
        shared = _shared_copies_on() and _rds_arn_account(identifier) not in (None, account)
        source = _shared_rds_snapshot(account, identifier, table_attr) if shared else lookup(self, identifier, table_attr)
        chain = _chain_rds(source, parent_attr)

        # moto stores the copy under the identifier as requested; the model lowercases it.
        requested = self.params.get(target_param)

        def after(obj: Any, meta: Meta) -> None:
            table = getattr(_rds_backend(account, region), table_attr)
            key = obj.db_snapshot_identifier if isinstance(obj, DBSnapshot) else obj.db_cluster_snapshot_identifier
            _register(STATE.copies, (account, region, pool), meta, _exists_in(table, key, obj, requested))

        with STATE.create_lock:
            _check_copy_quota(account, region, pool)
            with _Hook(_simple_hook(cls, kind, chain, _request_rds_directives(self), after)), _Scoped("shared_rds_copy", shared):
                return orig()

    @wrap("copy_db_snapshot")
    def copy_db_snapshot(self: Any, orig: Callable[[], Any]) -> Any:
        return copy_call(self, orig, DBSnapshot, "rds_copy", "rds", "SourceDBSnapshotIdentifier", "TargetDBSnapshotIdentifier", "database_snapshots", "database")

    @wrap("copy_db_cluster_snapshot")
    def copy_db_cluster_snapshot(self: Any, orig: Callable[[], Any]) -> Any:
        return copy_call(self, orig, DBClusterSnapshot, "rds_cluster_copy", "rds_cluster", "SourceDBClusterSnapshotIdentifier", "TargetDBClusterSnapshotIdentifier", "cluster_snapshots", "cluster")

    @wrap("restore_db_instance_from_db_snapshot")
    def restore_db_instance(self: Any, orig: Callable[[], Any]) -> Any:
        chain = _chain_rds(lookup(self, self.params.get("DBSnapshotIdentifier"), "database_snapshots"), "database")
        with _Hook(_simple_hook(DBInstance, "restore_db", chain, _request_rds_directives(self))):
            return orig()

    @wrap("restore_db_cluster_from_snapshot")
    def restore_db_cluster(self: Any, orig: Callable[[], Any]) -> Any:
        _refuse_existing_cluster(self)
        chain = _chain_rds(lookup(self, self.params.get("SnapshotIdentifier"), "cluster_snapshots"), "cluster")
        with _Hook(_simple_hook(DBCluster, "restore_cluster", chain, _request_rds_directives(self))):
            return orig()

    # ---- point-in-time restores -----------------------------------------------------------------
    def refuse(code: str, message: str) -> Exception:
        from moto.rds.exceptions import RDSClientError

        STATE.count("refused", code)
        return RDSClientError(code, message)

    def check_point_in_time(self: Any, source: Any, time_param: str, what: str) -> None:
        """AWS's checks of a point-in-time restore against its source, which moto does not make:
        RestoreTime (RestoreToTime) and UseLatestRestorableTime together, automated backups off
        (DB instances), a time outside the restorable window, no restorable time yet."""
        use_latest = str(self.params.get("UseLatestRestorableTime") or "").lower() == "true"
        raw = self.params.get(time_param)
        if raw is not None and use_latest:
            raise refuse("InvalidParameterCombination", f"Cannot specify both {time_param} and UseLatestRestorableTime")
        name = source.db_cluster_identifier if what == "DB cluster" else source.db_instance_identifier
        earliest, latest = _restorable_window(source)
        if earliest is None:
            raise refuse(
                "PointInTimeRestoreNotEnabled",
                f"Point-in-time restore is not enabled for {what} {name}: its BackupRetentionPeriod is 0.",
            )
        if raw is None and not use_latest:
            return  # neither given: moto's own behaviour (it restores)
        check_restore_time(time_param, f"{what} {name}", earliest, latest, raw, use_latest)

    def check_restore_time(time_param: str, label: str, earliest: Any, latest: Any, raw: Any, use_latest: bool) -> Any:
        """The time to restore to (naive UTC), after AWS's window checks: refused while nothing is
        restorable, or outside [earliest, latest]. None: unparseable (moto's own validation answers)."""
        window = f"{_iso(earliest)} to {_iso(latest)}" if latest is not None else f"nothing restorable before {_iso(earliest)} yet"
        if latest is None:
            raise refuse("InvalidRestoreFault", f"{label} has no restorable time yet ({window}).")
        if use_latest:
            return latest
        at = _naive_utc(raw)
        if at is None:
            return None
        if at < earliest or at > latest:
            raise refuse("InvalidRestoreFault", f"The {time_param} {_iso(at)} is outside the restorable window of {label}: {window}.")
        return at

    # The settings a DB instance restored from replicated automated backups takes from the source
    # instance (AWS: "most of the original configuration"). Not the region-bound ones (subnet group,
    # security groups, Availability Zone, parameter and option groups: the destination's defaults
    # unless the request names its own), and not Multi-AZ (AWS restores single-AZ by default).
    REPLICA_RESTORE_SETTINGS = (
        "engine",
        "engine_version",
        "db_instance_class",
        "port",
        "allocated_storage",
        "storage_type",
        "iops",
        "storage_throughput",
        "master_username",
        "master_user_password",
        "db_name",
        "license_model",
        "character_set_name",
        "backup_retention_period",
        "preferred_backup_window",
        "preferred_maintenance_window",
        "auto_minor_version_upgrade",
        "storage_encrypted",
        "enable_iam_database_authentication",
    )
    # Request parameters that select the source and the time, not settings of the new instance.
    REPLICA_RESTORE_SKIP = (
        "source_db_instance_automated_backups_arn",
        "source_db_instance_identifier",
        "source_dbi_resource_id",
        "target_db_instance_identifier",
        "restore_time",
        "use_latest_restorable_time",
        "tags",
    )

    def request_tags(self: Any) -> list[dict[str, Any]]:
        out = []
        for t in self.params.get("Tags") or []:
            try:
                out.append({"Key": t.get("Key"), "Value": t.get("Value")})
            except AttributeError:
                continue
        return out

    def find_replication(account: str, region: str, arn: Optional[str]) -> Optional[Replication]:
        """The replicated automated backups of `region` with this ARN (running or retained), or None."""
        with STATE.lock:
            for rep in STATE.replications:
                if (rep.account, rep.region) == (account, region) and rep.arn == arn:
                    return rep
        return None

    def restore_from_automated_backups(self: Any, orig: Callable[[], Any], arn: str) -> Any:
        """RestoreDBInstanceToPointInTime with SourceDBInstanceAutomatedBackupsArn (moto reads only
        SourceDBInstanceIdentifier, and without it restores the region's first DB instance): from
        automated backups replicated into this region, checked against their window and created
        here from the source's settings; or from a DB instance of this region by the ARN of its
        automated backups (then as by its identifier)."""
        from moto.core.responses import ActionResult

        if self.params.get("SourceDBInstanceIdentifier") or self.params.get("SourceDbiResourceId"):
            raise refuse(
                "InvalidParameterCombination",
                "Specify only one of SourceDBInstanceIdentifier, SourceDbiResourceId and SourceDBInstanceAutomatedBackupsArn.",
            )
        account, region = self.current_account, self.region
        rep = find_replication(account, region, arn)
        if rep is None:
            for db in list(self.backend.databases.values()):
                if _restorable_window(db)[0] is not None and _automated_backup_arn(db) == arn:
                    self.params["SourceDBInstanceIdentifier"] = db.db_instance_identifier
                    return restore_db_instance_to_point_in_time_by_id(self, orig)
            raise refuse("DBInstanceAutomatedBackupNotFound", f"Automated backups {arn} not found in {region}.")
        use_latest = str(self.params.get("UseLatestRestorableTime") or "").lower() == "true"
        raw = self.params.get("RestoreTime")
        if raw is not None and use_latest:
            raise refuse("InvalidParameterCombination", "Cannot specify both RestoreTime and UseLatestRestorableTime")
        earliest, latest = rep.window()
        label = f"the replicated automated backups {arn}"
        if latest is None and rep.stopped is not None:
            raise refuse("InvalidRestoreFault", f"{label} have nothing restorable any more (retained past their retention period).")
        # Neither a time nor UseLatestRestorableTime: the layer restores to the latest restorable time.
        at = check_restore_time("RestoreTime", label, earliest, latest, raw, use_latest or raw is None)
        if at is None:
            raise refuse("InvalidParameterValue", f"Invalid RestoreTime: {raw}")
        source = rep.source
        props: dict[str, Any] = {}
        for name in REPLICA_RESTORE_SETTINGS:
            try:
                value = getattr(source, name, None)
            except NotImplementedError:  # moto's write-only properties (the master password)
                value = source.__dict__.get(f"_{name}")
            if value is not None:
                props[name] = value
        if props.get("storage_encrypted") and rep.kms_key_id:
            props["kms_key_id"] = rep.kms_key_id
        for key, value in self.params.items():
            if key not in REPLICA_RESTORE_SKIP and value:
                props[key] = value
        if int(props.get("allocated_storage") or 0) < int(getattr(source, "allocated_storage", 0) or 0):
            raise refuse("InvalidParameterValue", "The allocated storage size can't be less than the source snapshot or backup size.")
        props["db_instance_identifier"] = self.params.get("TargetDBInstanceIdentifier")
        props["tags"] = request_tags(self)
        with _Hook(_simple_hook(DBInstance, "restore_db_pitr", _chain_rds(source), _request_rds_directives(self))):
            database = self.backend.create_db_instance(props)
        return ActionResult({"DBInstance": database})

    @wrap("restore_db_instance_to_point_in_time")
    def restore_db_instance_to_point_in_time(self: Any, orig: Callable[[], Any]) -> Any:
        arn = self.params.get("SourceDBInstanceAutomatedBackupsArn")
        if arn:
            return restore_from_automated_backups(self, orig, arn)
        return restore_db_instance_to_point_in_time_by_id(self, orig)

    def restore_db_instance_to_point_in_time_by_id(self: Any, orig: Callable[[], Any]) -> Any:
        source = db_lookup(self, self.params.get("SourceDBInstanceIdentifier"))
        if source is None:
            return orig()  # moto's DBInstanceNotFound (or its handling of the other source parameters)
        check_point_in_time(self, source, "RestoreTime", "DB instance")
        with _Hook(_simple_hook(DBInstance, "restore_db_pitr", _chain_rds(source), _request_rds_directives(self))):
            return orig()

    @wrap("restore_db_cluster_to_point_in_time")
    def restore_db_cluster_to_point_in_time(self: Any, orig: Callable[[], Any]) -> Any:
        source = None
        identifier = self.params.get("SourceDBClusterIdentifier")
        if identifier:
            source = self.backend.clusters.get(identifier) or self.backend.clusters.get(identifier.lower())
        if source is None:
            return orig()  # moto's DBClusterNotFoundFault
        _refuse_existing_cluster(self)
        check_point_in_time(self, source, "RestoreToTime", "DB cluster")
        with _Hook(_simple_hook(DBCluster, "restore_cluster_pitr", _chain_rds(source), _request_rds_directives(self))):
            return orig()

    @wrap("create_db_cluster")
    def create_db_cluster(self: Any, orig: Callable[[], Any]) -> Any:
        _refuse_existing_cluster(self)
        return orig()

    # ---- automated backups replicated to another region -----------------------------------------
    # StartDBInstanceAutomatedBackupsReplication / StopDBInstanceAutomatedBackupsReplication (called
    # in the destination region, naming the source by its ARN) and DeleteDBInstanceAutomatedBackup:
    # moto 5.2.5 implements none of them.
    def define(name: str) -> Callable[[Callable[..., Any]], None]:
        """An RDS action the layer handles while it is on. Off: moto's own handler if it has one,
        else what moto answers for an action it lacks (NotImplementedError: HTTP 500)."""
        orig = getattr(RDSResponse, name, None)

        def decorator(fn: Callable[..., Any]) -> None:
            def method(self: Any) -> Any:
                if not _active():
                    if orig is not None:
                        return orig(self)
                    raise NotImplementedError(f"The {name} action has not been implemented")
                return fn(self)

            method.__name__ = method.__qualname__ = name
            setattr(RDSResponse, name, method)

        return decorator

    def source_instance(self: Any, arn: str) -> tuple[str, Any]:
        """(region, DB instance or None) of a SourceDBInstanceArn; an ARN that does not name a DB
        instance is refused. Only the caller's own account is looked in (AWS replicates within one
        account)."""
        try:
            src_region, src_account, kind, name = split_arn(arn)
        except Exception:
            src_region = src_account = kind = name = ""
        if not arn.startswith("arn:") or kind != "db" or not name or not src_region:
            raise refuse("InvalidParameterValue", f"Invalid SourceDBInstanceArn: {arn or '(none)'} is not the ARN of a DB instance.")
        if src_account != self.current_account:
            return src_region, None
        try:
            return src_region, _rds_backend(self.current_account, src_region).databases.get(name.lower())
        except Exception:
            return src_region, None

    def running_replications(account: str, region: str, source_arn: str) -> list[Replication]:
        with STATE.lock:
            return [
                r
                for r in STATE.replications
                if (r.account, r.region) == (account, region) and r.stopped is None and r.source_arn.lower() == source_arn.lower()
            ]

    def drop_replication(rep: Replication) -> None:
        with STATE.lock:
            if rep in STATE.replications:
                STATE.replications.remove(rep)

    @define("start_db_instance_automated_backups_replication")
    def start_db_instance_automated_backups_replication(self: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.rds.models import DBInstanceClustered

        account, region = self.current_account, self.region
        arn = str(self.params.get("SourceDBInstanceArn") or "")
        src_region, source = source_instance(self, arn)
        if src_region == region:
            raise refuse(
                "InvalidParameterValue",
                f"The source DB instance {arn} is in {region}: automated backups are replicated to another region. "
                "Call StartDBInstanceAutomatedBackupsReplication in the destination region.",
            )
        if source is None:
            raise refuse("DBInstanceNotFound", f"DBInstance {arn} not found.")
        name = source.db_instance_identifier
        if isinstance(source, DBInstanceClustered):
            raise refuse(
                "InvalidDBInstanceState",
                f"DB instance {name} belongs to DB cluster {source.db_cluster_identifier}: Aurora does not replicate automated backups of DB instances.",
            )
        if _restorable_window(source)[0] is None:
            raise refuse("InvalidDBInstanceState", f"DB instance {name} has automated backups turned off (BackupRetentionPeriod 0): nothing to replicate.")
        if source.status != "available":
            raise refuse("InvalidDBInstanceState", f"DB instance {name} is {source.status}: only an available DB instance can start replicating its automated backups.")
        raw = self.params.get("BackupRetentionPeriod")
        try:
            retention = 7 if raw is None else int(raw)
        except (TypeError, ValueError):
            retention = -1
        if not 1 <= retention <= 35:
            raise refuse("InvalidParameterValue", f"Invalid BackupRetentionPeriod {raw}: it must be from 1 to 35 days.")
        with STATE.create_lock:
            running = running_replications(account, region, source.db_instance_arn)
            if running:
                raise refuse(
                    "InvalidDBInstanceState",
                    f"DB instance {name} is already replicating its automated backups to {region} ({running[0].arn}).",
                )
            rep = Replication(account, region, source, retention, self.params.get("KmsKeyId") or None, request_tags(self))
            with STATE.lock:
                STATE.replications.append(rep)
        return ActionResult({"DBInstanceAutomatedBackup": _ReplicatedBackup(rep)})

    @define("stop_db_instance_automated_backups_replication")
    def stop_db_instance_automated_backups_replication(self: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.core.utils import utcnow

        account, region = self.current_account, self.region
        arn = str(self.params.get("SourceDBInstanceArn") or "")
        _, source = source_instance(self, arn)
        with STATE.create_lock:
            running = running_replications(account, region, arn)
            if not running:
                if source is None:
                    raise refuse("DBInstanceNotFound", f"DBInstance {arn} not found.")
                raise refuse("InvalidDBInstanceState", f"DB instance {source.db_instance_identifier} is not replicating to the current region ({region}).")
            rep = running[0]
            answer = _ReplicatedBackup(rep)  # as it was when stopped, as AWS answers
            rep.stopped = utcnow()
            if answer.status == "pending":
                drop_replication(rep)  # nothing was replicated yet: nothing to retain
        return ActionResult({"DBInstanceAutomatedBackup": answer})

    @define("delete_db_instance_automated_backup")
    def delete_db_instance_automated_backup(self: Any) -> Any:
        from moto.core.responses import ActionResult

        account, region = self.current_account, self.region
        arn = self.params.get("DBInstanceAutomatedBackupsArn")
        rep = find_replication(account, region, arn) if arn else None
        if rep is None:
            if arn and any(_restorable_window(db)[0] is not None and _automated_backup_arn(db) == arn for db in list(self.backend.databases.values())):
                raise refuse("InvalidDBInstanceAutomatedBackupState", f"The automated backups {arn} belong to a DB instance that exists: they go with it.")
            what = arn or f"of DbiResourceId {self.params.get('DbiResourceId')}"
            raise refuse("DBInstanceAutomatedBackupNotFound", f"Automated backups {what} not found in {region}.")
        with STATE.create_lock:
            if rep.stopped is None:
                raise refuse(
                    "InvalidDBInstanceAutomatedBackupState",
                    f"The automated backups {arn} are {rep.status()}: stop the replication (StopDBInstanceAutomatedBackupsReplication) before deleting them.",
                )
            answer = _ReplicatedBackup(rep, status="deleting")
            drop_replication(rep)
        return ActionResult({"DBInstanceAutomatedBackup": answer})

    # ---- snapshot exports to S3 -----------------------------------------------------------------
    # MissingParameter is one of AWS's common errors, which moto's error lookup warns about (it only
    # knows the operation-specific shapes); it renders it like the others (HTTP 400, RDS error XML).
    warnings.filterwarnings("ignore", message=r"Exception\(RDSClientError\) with code MissingParameter ")

    def export_source(self: Any, source_arn: str) -> Any:
        """The snapshot moto's StartExportTask will export: by the ARN's type and name, in the
        request's region (as moto looks it up), or None (moto answers its not-found error)."""
        try:
            _, _, kind, name = split_arn(source_arn)
        except Exception:
            return None
        table = {"snapshot": self.backend.database_snapshots, "cluster-snapshot": self.backend.cluster_snapshots}.get(kind)
        return table.get(name) if table is not None else None

    @wrap("start_export_task")
    def start_export_task(self: Any, orig: Callable[[], Any]) -> Any:
        account, region = self.current_account, self.region
        params = self.params
        # AWS requires all five (botocore checks them before sending; a raw request is refused).
        for name in ("ExportTaskIdentifier", "SourceArn", "S3BucketName", "IamRoleArn", "KmsKeyId"):
            if not str(params.get(name) or "").strip():
                raise refuse("MissingParameter", f"The request must contain the parameter {name}")
        identifier = params["ExportTaskIdentifier"]
        if identifier in self.backend.export_tasks:
            return orig()  # moto's ExportTaskAlreadyExists
        snapshot = export_source(self, params["SourceArn"])
        if snapshot is None:
            return orig()  # moto's DBSnapshotNotFound / DBClusterSnapshotNotFoundFault
        what = "DB snapshot" if isinstance(snapshot, DBSnapshot) else "DB cluster snapshot"
        name = snapshot.db_snapshot_identifier if isinstance(snapshot, DBSnapshot) else snapshot.db_cluster_snapshot_identifier
        if snapshot.status != "available":
            raise refuse("InvalidExportSourceState", f"The {what} {name} is {snapshot.status}: only an available snapshot can be exported.")
        bucket_name = params["S3BucketName"]
        _, bucket = _s3_bucket(account, region, bucket_name)
        if bucket is None:
            raise refuse("InvalidS3BucketFault", f"The S3 bucket {bucket_name} does not exist or Amazon RDS is not authorized to access it.")
        if bucket.region_name != region:
            raise refuse(
                "InvalidS3BucketFault",
                f"The S3 bucket {bucket_name} is in {bucket.region_name}: a snapshot in {region} can only be exported to a bucket in the same region.",
            )
        q = _cfg()["quotas"]
        limit = int(q["rds_exports_per_region"]) if q["enabled"] else 0
        with STATE.create_lock:
            for task in list(self.backend.export_tasks.values()):
                if task.snapshot is snapshot and _export_status(task) in EXPORT_BUSY:
                    raise refuse(
                        "ExportTaskAlreadyExists",
                        f"Cannot start export task {identifier}: export task {task.export_task_identifier} of {what} {name} is still {_export_status(task)}.",
                    )
            with STATE.lock:
                refs = STATE.exports.setdefault((account, region), [])
                busy = _exports_in_progress(refs)
            if limit > 0 and busy >= limit:
                raise refuse(
                    "SnapshotQuotaExceeded",
                    f"Cannot start export task {identifier}: the limit of {limit} export tasks in progress in {region} has been reached.",
                )

            def after(task: Any, meta: Meta) -> None:
                with STATE.lock:
                    STATE.exports.setdefault((account, region), []).append(weakref.ref(task))
                    STATE.export_files[task] = ExportFiles(account, region, bucket_name)

            chain = _chain_rds(snapshot, "database" if isinstance(snapshot, DBSnapshot) else "cluster")
            with _Hook(_simple_hook(ExportTask, "rds_export", chain, {}, after)):
                return orig()

    def settle_export(self: Any) -> None:
        """Layer off: forget the layer's view of the task, so moto's own cancel shows."""
        task = self.backend.export_tasks.get(self.params.get("ExportTaskIdentifier"))
        if task is not None:
            STATE.meta.pop(task, None)
            STATE.export_cancels.pop(task, None)
            STATE.export_files.pop(task, None)

    @wrap("cancel_export_task", off=settle_export)
    def cancel_export_task(self: Any, orig: Callable[[], Any]) -> Any:
        identifier = self.params.get("ExportTaskIdentifier")
        task = self.backend.export_tasks.get(identifier)
        if task is None:
            return orig()  # moto's ExportTaskNotFound
        with STATE.create_lock:
            status = _export_status(task)
            if status in EXPORT_DONE:
                raise refuse("InvalidExportTaskStateFault", f"Cannot cancel export task {identifier}: it is {status}.")
            meta = STATE.meta.get(task)
            if meta is not None and task not in STATE.export_cancels:  # CANCELING already: answered as it is
                _, progress, extracted, _ = _export_view(task, meta)
                STATE.export_cancels[task] = ExportCancel(float(_cfg()["export_cancel_seconds"]), progress, extracted)
            return orig()  # moto stores "canceled"; the status shows the cancel's timing

    @wrap("describe_export_tasks")
    def describe_export_tasks(self: Any, orig: Callable[[], Any]) -> Any:
        # moto reads ExportTaskIdentifier only; AWS also selects by SourceArn, SourceType and the
        # filters export-task-identifier, s3-bucket, source-arn and status (lower case).
        result = orig()
        tasks = list(result.result["ExportTasks"])
        source_arn, source_type = self.params.get("SourceArn"), self.params.get("SourceType")
        if source_arn:
            tasks = [t for t in tasks if t.source_arn == source_arn]
        if source_type:
            tasks = [t for t in tasks if t.source_type == source_type]
        fields: dict[str, Callable[[Any], Any]] = {
            "export-task-identifier": lambda t: t.export_task_identifier,
            "s3-bucket": lambda t: t.s3_bucket,
            "source-arn": lambda t: t.source_arn,
            "status": lambda t: _export_status(t).lower(),
        }
        for f in self.params.get("Filters") or []:
            field = fields.get(f.get("Name"))
            if field is not None:
                values = [str(v) for v in f.get("Values") or []]
                tasks = [t for t in tasks if field(t) in values]
        result.result["ExportTasks"] = tasks
        return result

    def not_found(code: str, exc: Exception) -> Exception:
        STATE.count("not_found", code)
        return exc

    def _refuse_existing_cluster(self: Any) -> None:
        # moto's create_db_cluster (also behind RestoreDBClusterFromSnapshot) silently replaces a
        # cluster of the same name; AWS refuses with DBClusterAlreadyExistsFault, which is what a
        # retried restore must be able to recognise.
        identifier = (self.params.get("DBClusterIdentifier") or "").lower()
        if identifier and identifier in {k.lower() for k in self.backend.clusters}:
            from moto.rds.exceptions import RDSClientError

            STATE.count("refused", "DBClusterAlreadyExistsFault")
            raise RDSClientError("DBClusterAlreadyExistsFault", f"DB cluster {identifier} already exists")

    def describe(name: str, key: str, id_param: str, api: str, make_error: Callable[[str], Exception], code: str) -> None:
        @wrap(name)
        def method(self: Any, orig: Callable[[], Any]) -> Any:
            identifier = self.params.get(id_param)
            result = orig()
            items = result.result[key]
            now = time.monotonic()
            if identifier:
                hidden = _ids_hidden(items, now)
                if hidden:
                    raise not_found(code, make_error(identifier))
            result.result[key] = _visible(items, now, api)
            return result

    describe("describe_db_snapshots", "DBSnapshots", "DBSnapshotIdentifier", "DescribeDBSnapshots", DBSnapshotNotFoundFault, "DBSnapshotNotFound")
    describe(
        "describe_db_cluster_snapshots",
        "DBClusterSnapshots",
        "DBClusterSnapshotIdentifier",
        "DescribeDBClusterSnapshots",
        DBClusterSnapshotNotFoundError,
        "DBClusterSnapshotNotFoundFault",
    )
    # DescribeDBInstanceAutomatedBackups: moto lists one entry per instance that has automated
    # snapshots (every instance, also with backups off), with no RestoreWindow. AWS lists one per
    # instance with automated backups on, with the window point-in-time restores are checked against,
    # and the automated backups replicated into the region from other regions.
    from moto.rds.models import DBInstanceClustered, RDSBackend

    orig_automated = RDSBackend.describe_db_instance_automated_backups

    @functools.wraps(orig_automated)
    def describe_db_instance_automated_backups(self: Any, db_instance_identifier: Optional[str] = None, **kwargs: Any) -> list[Any]:
        result = orig_automated(self, db_instance_identifier=db_instance_identifier, **kwargs)
        if not _active():
            return result
        live = {db.db_instance_identifier for db in list(self.databases.values())}
        # moto's entries for deleted instances (automated snapshots kept: "retained") stay as they are.
        out = [b for b in result if b.db_instance_identifier.lower() not in live]
        wanted = db_instance_identifier.lower() if db_instance_identifier else None
        filters = {f.get("Name"): [str(v).lower() for v in f.get("Values") or []] for f in kwargs.get("filters") or [] if hasattr(f, "get")}

        def selected(identifier: str, arn: str) -> bool:
            # DBInstanceIdentifier; the db-instance-id filter takes identifiers and ARNs.
            if wanted and identifier.lower() != wanted:
                return False
            ids = filters.get("db-instance-id")
            return ids is None or identifier.lower() in ids or arn.lower() in ids

        now = time.monotonic()
        hidden = 0
        for db in list(self.databases.values()):
            if isinstance(db, DBInstanceClustered):
                continue  # Aurora: the cluster has the automated backups
            if not selected(db.db_instance_identifier, db.db_instance_arn):
                continue
            meta = STATE.meta.get(db)
            if meta is not None and meta.hidden(now):
                hidden += 1
                continue
            earliest, latest = _restorable_window(db)
            if earliest is None:
                continue  # automated backups off: nothing to list
            out.append(_AutomatedBackup(db, earliest, latest))
        if hidden:
            STATE.count("omitted", "DescribeDBInstanceAutomatedBackups", hidden)
        with STATE.lock:
            replications = [r for r in STATE.replications if (r.account, r.region) == (self.account_id, self.region_name)]
        for rep in replications:
            if rep.stopped is not None and rep.window()[1] is None:
                with STATE.lock:  # retained past its retention period: gone, as in AWS
                    if rep in STATE.replications:
                        STATE.replications.remove(rep)
                continue
            if selected(rep.source.db_instance_identifier, rep.source_arn):
                out.append(_ReplicatedBackup(rep))
        if "status" in filters:
            out = [b for b in out if str(b.status).lower() in filters["status"]]
        arn = kwargs.get("db_instance_automated_backups_arn")
        if arn:
            out = [b for b in out if getattr(b, "db_instance_automated_backups_arn", None) == arn]
            if not out:
                STATE.count("refused", "DBInstanceAutomatedBackupNotFound")
                from moto.rds.exceptions import RDSClientError

                raise RDSClientError("DBInstanceAutomatedBackupNotFound", f"Automated backups {arn} not found in {self.region_name}.")
        return out

    RDSBackend.describe_db_instance_automated_backups = describe_db_instance_automated_backups  # type: ignore[method-assign]

    # DeleteDBInstance of a source whose automated backups are being replicated: the replications
    # stop and the replicated backups are retained (as when AWS stops a replication by itself).
    orig_delete_db = RDSBackend.delete_db_instance

    @functools.wraps(orig_delete_db)
    def delete_db_instance(self: Any, *args: Any, **kwargs: Any) -> Any:
        from moto.core.utils import utcnow

        database = orig_delete_db(self, *args, **kwargs)
        with STATE.lock:
            for rep in list(STATE.replications):
                if rep.source is database and rep.stopped is None:
                    rep.stopped = utcnow()
                    if rep.window()[1] is None:
                        STATE.replications.remove(rep)  # nothing replicated yet: nothing to retain
        return database

    RDSBackend.delete_db_instance = delete_db_instance  # type: ignore[method-assign]

    describe("describe_db_instances", "DBInstances", "DBInstanceIdentifier", "DescribeDBInstances", DBInstanceNotFoundError, "DBInstanceNotFound")
    describe("describe_db_clusters", "DBClusters", "DBClusterIdentifier", "DescribeDBClusters", DBClusterNotFoundError, "DBClusterNotFoundFault")


# --------------------------------------------------------------------------------------------------
# Accounts: AssumeRole refusals, snapshots shared with another account
# --------------------------------------------------------------------------------------------------

# moto resolves credentials from STS AssumeRole to the role ARN's account, and keeps every resource
# per account; what it lacks is any refusal of AssumeRole (it has no trust policies), a copy of a
# snapshot another account shared (it looks the source up in the caller's account only), and
# AWS's refusal to share a snapshot encrypted with the AWS managed key.

EBS_DEFAULT_KEY_ALIAS = "alias/aws/ebs"
RDS_DEFAULT_KEY_ALIAS = "alias/aws/rds"
# moto's KmsKeyId of an RDS DB instance / cluster encrypted without one (so of its snapshots too).
RDS_DEFAULT_KEY_PLACEHOLDER = "default_kms_key_id"
# AWS's answer to ModifySnapshotAttribute (add createVolumePermission) of such a snapshot.
EBS_DEFAULT_KEY_SHARE = "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot."


def _accounts_cfg() -> Optional[dict[str, Any]]:
    """The `accounts` config section if the layer and the section are on, else None."""
    cfg = _cfg()
    if not cfg.get("enabled"):
        return None
    section = cfg["accounts"]
    return section if section.get("enabled") else None


def _shared_copies_on() -> bool:
    section = _accounts_cfg()
    return bool(section and section["shared_snapshot_copies"])


def _role_name(role_arn: Any) -> Optional[str]:
    """The name of a role ARN: the last segment after `role/` (`role/path/name` -> `name`)."""
    if not isinstance(role_arn, str):
        return None
    _, sep, resource = role_arn.partition(":role/")
    return (resource.rsplit("/", 1)[-1] or None) if sep else None


def _is_default_key(key_id: Any, account: str, region: str, alias: str) -> bool:
    """Whether a resource's KmsKeyId is the AWS managed key `alias` (aws/ebs, aws/rds) of its
    account: none at all (moto leaves it empty where AWS would use the default key), moto's RDS
    placeholder, the alias or its ARN, or a key id / key ARN the alias points to in moto's KMS.
    Any other key (also one the emulator's KMS does not know) is a customer managed key."""
    if not key_id or key_id == RDS_DEFAULT_KEY_PLACEHOLDER:
        return True
    key_id = str(key_id)
    if key_id == alias or key_id.endswith(":" + alias):
        return True
    try:
        from moto.kms.models import kms_backends

        if key_id.startswith("arn:"):
            _, _, _, region, account, _ = key_id.split(":", 5)
        per_account = dict.get(kms_backends, account)  # dict.get: no backend is created by a look
        kms = dict.get(per_account, region) if per_account is not None else None
        if kms is None:
            return False
        ident = kms.get_key_id(kms.get_alias_name(key_id))
        if ident.startswith("alias/"):
            return ident == alias
        key = kms.keys.get(ident)
        return key is not None and alias in key.aliases
    except Exception:
        return False


def _ebs_snapshot_key(snap: Any) -> Any:
    """The KMS key an EBS snapshot is encrypted with. moto leaves KmsKeyId empty on a snapshot of a
    volume (CreateSnapshot(s), CreateImage): that one has its volume's key. A copy made without a
    KmsKeyId has none, i.e. the account's default key (CopySnapshot's documented default)."""
    key = getattr(snap, "kms_key_id", None)
    if key or snap.__dict__.get("_rlz_copy"):
        return key
    return getattr(getattr(snap, "volume", None), "kms_key_id", None)


def _shared_ebs_snapshot(account: str, region: str, snapshot_id: str) -> Any:
    """CopySnapshot's source when the caller has no snapshot of that id in SourceRegion: another
    account's snapshot there whose createVolumePermission has the caller's account id or the group
    `all`. None when shared copies are off or no account has it (moto answers its own not-found);
    `InvalidSnapshot.NotFound`, as AWS answers, when its owner has not shared it with the caller."""
    if not _shared_copies_on() or not region:
        return None
    from moto.ec2.models import ec2_backends

    for owner, per_account in list(ec2_backends.items()):
        backend = dict.get(per_account, region) if owner != account else None
        snap = backend.snapshots.get(snapshot_id) if backend is not None else None
        if snap is None:
            continue
        if account in snap.create_volume_permission_userids or "all" in snap.create_volume_permission_groups:
            STATE.count("shared_copies", "CopySnapshot")
            return snap
        _refuse("InvalidSnapshot.NotFound")
        raise _ec2_error("InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist.")
    return None


def _rds_arn_account(identifier: Any) -> Optional[str]:
    """The account of an RDS ARN, or None for anything else (a plain identifier)."""
    if not isinstance(identifier, str) or not identifier.startswith("arn:"):
        return None
    parts = identifier.split(":", 6)
    return parts[4] if len(parts) == 7 else None


def _shared_rds_snapshot(account: str, arn: str, attr: str) -> Any:
    """The DB snapshot (`attr` = "database_snapshots") or DB cluster snapshot ("cluster_snapshots")
    another account's ARN names, if its `restore` attribute has `account` or `all`; else None."""
    try:
        from moto.rds.models import rds_backends
        from moto.rds.utils import split_arn

        region, owner, _, name = split_arn(arn)
        per_account = dict.get(rds_backends, owner)
        backend = dict.get(per_account, region) if per_account is not None else None
        table = getattr(backend, attr) if backend is not None else {}
    except Exception:
        return None
    snap = table.get(name) or table.get(name.lower())
    values = (snap.attributes.get("restore") or []) if snap is not None else []
    return snap if account in values or "all" in values else None


def _patch_handler(cls: type, name: str, fn: Callable[[Any, Callable[[], Any]], Any]) -> None:
    """Run `fn(self, orig)` instead of a response handler while the layer is on."""
    orig = getattr(cls, name)

    @functools.wraps(orig)
    def method(self: Any) -> Any:
        if not _active():
            return orig(self)
        return fn(self, lambda: orig(self))

    setattr(cls, name, method)


def _patch_accounts() -> None:
    from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot
    from moto.ec2.responses import EC2Response
    from moto.ec2.utils import random_snapshot_id
    from moto.rds.exceptions import RDSClientError
    from moto.rds.models import DBSnapshot, RDSBackend
    from moto.rds.responses import RDSResponse
    from moto.sts.exceptions import STSClientError
    from moto.sts.responses import TokenResponse

    # AccessDenied is one of STS's common errors, not in its model: moto warns, and renders it alike.
    warnings.filterwarnings("ignore", message=r"Exception\(STSClientError\) with code AccessDenied ")

    # ---- STS AssumeRole: a role whose name starts with a denied prefix is refused, as AWS refuses
    # a caller the role's trust policy does not name (HTTP 403, query-protocol error XML).
    def assume_role(self: Any, orig: Callable[[], Any]) -> Any:
        section = _accounts_cfg()
        role_arn = self._get_param("RoleArn")
        name = _role_name(role_arn)
        if section and name and any(name.startswith(p) for p in section["deny_role_name_prefixes"]):
            try:
                caller = self.backend.get_caller_identity(self.get_access_key(), self.region)[1]
            except Exception:
                caller = f"arn:aws:iam::{self.current_account}:root"
            _refuse("AccessDenied")
            exc = STSClientError("AccessDenied", f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}")
            return _with_status(self, exc, 403)
        return orig()

    _patch_handler(TokenResponse, "assume_role", assume_role)

    # ---- EBS: CopySnapshot of a snapshot another account shared. The response handler (see
    # _patch_ec2_responses) finds the source; moto's copy_snapshot looks in the caller's account
    # only, so the copy is made here the way moto makes it. Every copy is marked (_ebs_snapshot_key).
    orig_copy = EBSBackend.copy_snapshot

    @functools.wraps(orig_copy)
    def copy_snapshot(self: Any, source_snapshot_id: str, source_region: str, description: str, kms_key_id: Optional[str]) -> Any:
        shared = getattr(_tls, "shared_ebs_source", None)
        if shared is None or shared.id != source_snapshot_id:
            snapshot = orig_copy(self, source_snapshot_id, source_region, description, kms_key_id)
        else:
            snapshot = Snapshot(
                self,
                random_snapshot_id(),
                volume=shared.volume,
                description=description,
                encrypted=shared.encrypted,
                kms_key_id=kms_key_id,
            )
            self.snapshots[snapshot.id] = snapshot
        snapshot.__dict__["_rlz_copy"] = True
        return snapshot

    EBSBackend.copy_snapshot = copy_snapshot  # type: ignore[method-assign]

    # ---- EBS: sharing a snapshot encrypted with the AWS managed key (aws/ebs) is refused.
    def modify_snapshot_attribute(self: Any, orig: Callable[[], Any]) -> Any:
        section = _accounts_cfg()
        adds = self._get_param("UserIds") or self._get_param("GroupNames")
        attribute = self._get_param("Attribute")
        if section and section["refuse_default_key_shares"] and self._get_param("OperationType") == "add" and adds and attribute in (None, "createVolumePermission"):
            snap = self.ec2_backend.snapshots.get(self._get_param("SnapshotId"))
            if snap is not None and snap.encrypted and _is_default_key(_ebs_snapshot_key(snap), snap.owner_id, self.region, EBS_DEFAULT_KEY_ALIAS):
                _refuse("InvalidParameter")
                raise _ec2_error("InvalidParameter", EBS_DEFAULT_KEY_SHARE)
        return orig()

    _patch_handler(EC2Response, "modify_snapshot_attribute", modify_snapshot_attribute)

    # ---- RDS: CopyDBSnapshot / CopyDBClusterSnapshot of a snapshot another account shared, named
    # by its ARN. moto looks every snapshot ARN up in the caller's account; while the response
    # handler (see _patch_rds_responses) says so, the ARN's account is looked in instead.
    orig_get_snapshot = RDSBackend.get_snapshot

    @functools.wraps(orig_get_snapshot)
    def get_snapshot(self: Any, identifier: str, resource_type: type, not_found_exception: type) -> Any:
        if getattr(_tls, "shared_rds_copy", False) and _rds_arn_account(identifier) not in (None, self.account_id):
            cluster = resource_type is not DBSnapshot
            snapshot = _shared_rds_snapshot(self.account_id, identifier, "cluster_snapshots" if cluster else "database_snapshots")
            if snapshot is None:
                _refuse("DBClusterSnapshotNotFoundFault" if cluster else "DBSnapshotNotFound")
                raise not_found_exception(identifier)
            STATE.count("shared_copies", "CopyDBClusterSnapshot" if cluster else "CopyDBSnapshot")
            return snapshot
        return orig_get_snapshot(self, identifier, resource_type, not_found_exception)

    RDSBackend.get_snapshot = get_snapshot  # type: ignore[method-assign]

    # ---- RDS: sharing a DB (cluster) snapshot encrypted with the default key (aws/rds) is refused.
    def refuse_default_rds_key(table_attr: str, id_param: str, what: str) -> Callable[[Any, Callable[[], Any]], Any]:
        def handler(self: Any, orig: Callable[[], Any]) -> Any:
            section = _accounts_cfg()
            identifier = self.params.get(id_param)
            if section and section["refuse_default_key_shares"] and self.params.get("AttributeName") == "restore" and self.params.get("ValuesToAdd") and identifier:
                table = getattr(self.backend, table_attr)
                snap = table.get(identifier) or table.get(str(identifier).lower())
                if snap is not None and snap.encrypted and _is_default_key(snap.kms_key_id, self.current_account, self.region, RDS_DEFAULT_KEY_ALIAS):
                    _refuse("InvalidParameterValue")
                    raise RDSClientError(
                        "InvalidParameterValue",
                        f"The {what} {identifier} is encrypted with the default KMS key (aws/rds) of its account and can't be shared. "
                        "Copy it under a customer managed KMS key and share the copy.",
                    )
            return orig()

        return handler

    _patch_handler(RDSResponse, "modify_db_snapshot_attribute", refuse_default_rds_key("database_snapshots", "DBSnapshotIdentifier", "DB snapshot"))
    _patch_handler(
        RDSResponse,
        "modify_db_cluster_snapshot_attribute",
        refuse_default_rds_key("cluster_snapshots", "DBClusterSnapshotIdentifier", "DB cluster snapshot"),
    )


# --------------------------------------------------------------------------------------------------
# SQS: stale receipt handles, SendMessageBatch total size
# --------------------------------------------------------------------------------------------------


def _sqs_cfg() -> Optional[dict[str, Any]]:
    """The `sqs` config section if the layer and the section are on, else None."""
    cfg = _cfg()
    if not cfg.get("enabled"):
        return None
    section = cfg["sqs"]
    return section if section.get("enabled") else None


def _stale_message(queue: Any, receipt_handle: Any) -> Any:
    """The message of `queue` that had `receipt_handle` before it was received again, or None: the
    handle is a message's newest one, or a deleted message's (moto answers those itself), or no
    message's at all."""
    if not isinstance(receipt_handle, str) or receipt_handle in queue.deleted_messages:
        return None
    for message in list(queue._messages):
        if message.receipt_handle == receipt_handle:
            return None
        if receipt_handle in message._old_receipt_handles:
            return message
    return None


def _sqs_size(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    return len(str(value).encode("utf-8"))


def _sqs_entry_bytes(entry: dict[str, Any]) -> int:
    """What SQS counts of one message: the body's UTF-8 bytes, plus each message attribute's name,
    data type and value (system attributes such as AWSTraceHeader do not count)."""
    size = _sqs_size(entry.get("MessageBody"))
    for name, attr in (entry.get("MessageAttributes") or {}).items():
        if not isinstance(attr, dict):
            continue
        size += _sqs_size(name) + _sqs_size(attr.get("DataType"))
        size += _sqs_size(attr.get("StringValue")) + _sqs_size(attr.get("BinaryValue"))
        for key in ("StringListValues", "BinaryListValues"):
            size += sum(_sqs_size(v) for v in attr.get(key) or [])
    return size


def _patch_sqs() -> None:
    from moto.sqs.exceptions import BatchRequestTooLong, InvalidParameterValue
    from moto.sqs.models import Queue, SQSBackend

    class StaleReceiptHandle(InvalidParameterValue):
        """AWS's answer to ChangeMessageVisibility with a handle the message has since replaced."""

        def __init__(self, receipt_handle: str) -> None:
            super().__init__(
                f"Value {receipt_handle} for parameter ReceiptHandle is invalid. "
                "Reason: Message does not exist or is not available for visibility timeout change."
            )

    def stale_on() -> bool:
        section = _sqs_cfg()
        return bool(section and section["stale_receipt_handles"])

    # DeleteMessage and each entry of DeleteMessageBatch (moto's batch calls the backend's
    # delete_message, which calls this): a stale handle succeeds without deleting anything.
    orig_delete = Queue.delete_message

    @functools.wraps(orig_delete)
    def delete_message(self: Any, receipt_handle: str) -> None:
        if stale_on() and _stale_message(self, receipt_handle) is not None:
            STATE.count("stale_receipt_handles", "DeleteMessage")
            return
        orig_delete(self, receipt_handle)

    Queue.delete_message = delete_message  # type: ignore[method-assign]

    # ChangeMessageVisibility: a stale handle is refused with InvalidParameterValue (HTTP 400).
    orig_change = SQSBackend.change_message_visibility

    @functools.wraps(orig_change)
    def change_message_visibility(self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int) -> None:
        if stale_on() and _stale_message(self.get_queue(queue_name), receipt_handle) is not None:
            STATE.count("stale_receipt_handles", "ChangeMessageVisibility")
            raise StaleReceiptHandle(receipt_handle)
        orig_change(self, queue_name, receipt_handle, visibility_timeout)

    SQSBackend.change_message_visibility = change_message_visibility  # type: ignore[method-assign]

    # ChangeMessageVisibilityBatch: moto's batch only turns ReceiptHandleIsInvalid into a failed
    # entry, so run it one entry at a time and turn a stale handle into a failed entry of the same
    # shape (Id, SenderFault, Code, Message). The outcome of the other entries is moto's own.
    orig_change_batch = SQSBackend.change_message_visibility_batch

    @functools.wraps(orig_change_batch)
    def change_message_visibility_batch(self: Any, queue_name: str, entries: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
        successful: list[str] = []
        failed: list[dict[str, Any]] = []
        for entry in entries:
            try:
                ok, bad = orig_change_batch(self, queue_name, [entry])
            except StaleReceiptHandle as e:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": e.code, "Message": e.message})
                continue
            successful.extend(ok)
            failed.extend(bad)
        return successful, failed

    SQSBackend.change_message_visibility_batch = change_message_visibility_batch  # type: ignore[method-assign]

    # SendMessageBatch: the whole call is refused when its messages together exceed the limit.
    # moto's own check (bodies only, counted in characters, against 1 MiB) stays behind this one.
    orig_send_batch = SQSBackend.send_message_batch

    @functools.wraps(orig_send_batch)
    def send_message_batch(self: Any, queue_name: str, entries: dict[str, dict[str, Any]]) -> Any:
        section = _sqs_cfg()
        limit = int(section["batch_request_limit_bytes"]) if section else 0
        if limit > 0:
            self.get_queue(queue_name)  # an unknown queue answers QueueDoesNotExist first, as before
            size = sum(_sqs_entry_bytes(e) for e in entries.values())
            if size > limit:
                _refuse("BatchRequestTooLong")
                exc = BatchRequestTooLong(size)
                exc.message = f"Batch requests cannot be longer than {limit} bytes. You have sent {size} bytes."
                exc.args = (exc.message,)
                raise exc
        return orig_send_batch(self, queue_name, entries)

    SQSBackend.send_message_batch = send_message_batch  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------------------
# S3: the files of RDS snapshot exports
# --------------------------------------------------------------------------------------------------


def _patch_s3() -> None:
    """Reads of a bucket (ListObjects, ListObjectsV2, ListObjectVersions, GetObject, HeadObject)
    first settle the exports into it that are done, so an export's files are in its bucket from
    the moment it is COMPLETE, whether or not a DescribeExportTasks saw that."""
    from moto.s3.models import S3Backend

    def settle_first(name: str, bucket_of: Callable[[tuple[Any, ...], dict[str, Any]], Any]) -> None:
        orig = getattr(S3Backend, name)

        @functools.wraps(orig)
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                bucket_name = bucket_of(args, kwargs)
            except Exception:
                bucket_name = None
            _settle_exports(bucket_name if isinstance(bucket_name, str) else None)
            return orig(self, *args, **kwargs)

        setattr(S3Backend, name, method)

    # moto passes the bucket object to the first two, its name to the others (HeadObject goes
    # through get_object).
    for name in ("list_objects", "list_objects_v2"):
        settle_first(name, lambda args, kwargs: getattr(args[0] if args else kwargs.get("bucket"), "name", None))
    for name in ("list_object_versions", "get_object"):
        settle_first(name, lambda args, kwargs: args[0] if args else kwargs.get("bucket_name"))


# --------------------------------------------------------------------------------------------------
# WSGI: /_realism/* endpoints, reset hook
# --------------------------------------------------------------------------------------------------


def _json(start_response: Callable[..., Any], status: str, body: Any) -> list[bytes]:
    data = (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _admin(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path = environ.get("PATH_INFO", "").rstrip("/")
    method = environ.get("REQUEST_METHOD", "GET").upper()
    if path == "/_realism/config":
        if method == "GET":
            return _json(start_response, "200 OK", get_config())
        if method in ("POST", "PUT", "PATCH"):
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            raw = environ["wsgi.input"].read(length) if length > 0 else b""
            try:
                patch = json.loads(raw.decode() or "{}")
                new = update_config(patch)
            except (ValueError, ConfigError) as e:
                return _json(start_response, "400 Bad Request", {"error": str(e)})
            sys.stderr.write(f"emulator realism: config updated: {json.dumps(patch, sort_keys=True)}\n")
            return _json(start_response, "200 OK", new)
        return _json(start_response, "405 Method Not Allowed", {"error": "GET or POST"})
    if path == "/_realism/stats":
        if method == "GET":
            return _json(start_response, "200 OK", get_stats())
        return _json(start_response, "405 Method Not Allowed", {"error": "GET"})
    return _json(start_response, "404 Not Found", {"error": "unknown realism endpoint", "endpoints": ["/_realism/config", "/_realism/stats"]})


def wrap_app(app: Callable[..., Any]) -> Callable[..., Any]:
    def realism_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_realism/") or path == "/_realism":
            return _admin(environ, start_response)
        result = app(environ, start_response)
        if path.rstrip("/") == "/moto-api/reset" and environ.get("REQUEST_METHOD", "").upper() == "POST":
            reset_state()
        return result

    return realism_app


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def install(spec: str) -> bool:
    """Patch moto according to `spec` (see parse_spec). Returns False if spec says off. Call
    before moto.server.main(): the WSGI wrapper is installed by patching moto.server.run_simple."""
    global _INSTALLED
    config = parse_spec(spec)
    if config is None:
        return False
    with STATE.lock:
        STATE.config = config
    STATE.clear()
    if _INSTALLED:
        return True
    _patch_models()
    _patch_ec2_responses()
    _patch_rds_responses()
    _patch_sqs()
    _patch_s3()
    _patch_accounts()

    import moto.server

    orig_run_simple = moto.server.run_simple

    def run_simple(host: str, port: int, app: Any, *args: Any, **kwargs: Any) -> Any:
        return orig_run_simple(host, port, wrap_app(app), *args, **kwargs)

    moto.server.run_simple = run_simple
    _INSTALLED = True
    sys.stderr.write(f"emulator realism: installed (pid {os.getpid()}): {json.dumps(config, sort_keys=True)}\n")
    return True
