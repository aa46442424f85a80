"""Tests of the emulator's realism layer (scripts/emulator_realism.py).

Run with the emulator's venv:  .venv/bin/python scripts/test_emulator_realism.py   (or `make realism-check`)

Starts its own realism-enabled moto server on a free port through scripts/emulator.sh (MOTO_PORT,
EMULATOR_REALISM), drives it with boto3 and stops it at the end. Windows are short (≤ 2 s), so the
suite takes about 50 seconds, most of it waiting for pending resources to complete (and for SQS
visibility timeouts, 1 s each, to lapse).

Tests share the server: each one uses its own resources (and its own region where a per-region
quota or bucket is involved), and `setUp` puts the runtime config back to the suite's baseline.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import boto3
import botocore.exceptions
from botocore.config import Config
from botocore.parsers import ResponseParserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMULATOR = os.path.join(REPO, "scripts", "emulator.sh")

PENDING = 1.0  # seconds every kind stays pending in the baseline config
CONSISTENCY = 0.5  # seconds a new resource is invisible to Describe
LAG = 0.5  # seconds an RDS LatestRestorableTime trails now
CANCEL = 0.3  # seconds a canceled RDS export task stays CANCELING
REPLICATION_LAG = 1.0  # seconds replicated automated backups trail now (and stay "pending" at first)

BASELINE = {
    "enabled": True,
    "seed": 1,
    "pending_seconds": PENDING,
    "pending": None,  # null empties the per-kind map: every kind uses pending_seconds
    "error_share": 0.0,
    "errors": None,
    "consistency_seconds": CONSISTENCY,
    "consistency": None,
    "consistency_on_create_tags": False,
    "ami_name_unique": True,
    "latest_restorable_lag_seconds": LAG,
    "export_cancel_seconds": CANCEL,
    "replication_lag_seconds": REPLICATION_LAG,
    "quotas": {
        "enabled": True,
        "pending_snapshots_per_volume": 5,
        "count_error_snapshots": True,
        "ebs_copies_per_region": 20,
        "rds_copies_per_region": 20,
        "rds_cluster_copies_per_region": 5,
        "create_snapshot_rate": 5,
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
        "deny_role_name_prefixes": ["untrusted-"],
        "shared_snapshot_copies": True,
        "refuse_default_key_shares": True,
    },
}

# Accounts the cross-account tests assume roles into (moto keeps resources per account).
SOURCE_ACCOUNT = "111111111111"
BACKUP_ACCOUNT = "222222222222"

VISIBILITY = 1  # seconds: the shortest visibility timeout SQS takes (whole seconds)

PORT = 0
URL = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def emulator(cmd: str) -> None:
    env = dict(os.environ, MOTO_PORT=str(PORT), EMULATOR_REALISM=json.dumps(BASELINE), EMULATOR_REQUEST_LOG="0")
    subprocess.run(["bash", EMULATOR, cmd], check=True, env=env, stdin=subprocess.DEVNULL)


def setUpModule() -> None:
    global PORT, URL
    PORT = free_port()
    URL = f"http://127.0.0.1:{PORT}"
    emulator("start")


def tearDownModule() -> None:
    emulator("stop")


def http_full(method: str, path: str, body: object = None, headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(URL + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def http(method: str, path: str, body: object = None, headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, bytes]:
    status, _, data = http_full(method, path, body, headers, raw)
    return status, data


def set_config(patch: dict) -> dict:
    status, body = http("POST", "/_realism/config", patch)
    assert status == 200, body
    return json.loads(body)


def stats() -> dict:
    return json.loads(http("GET", "/_realism/stats")[1])


def client(service: str, region: str = "us-east-1", retries: bool = False, creds: dict | None = None):
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=URL,
        **(creds or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}),
        # No SDK retries: the tests want to see throttling and quota errors themselves.
        config=Config(retries={"total_max_attempts": 1 if not retries else 3}),
    )


def role_arn(account: str, name: str = "backup-fleet-member") -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def assume(account: str, name: str = "backup-fleet-member") -> dict:
    """Credentials of a role in `account` (moto maps them to that account)."""
    c = client("sts").assume_role(RoleArn=role_arn(account, name), RoleSessionName="realism-test")["Credentials"]
    return {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"], "aws_session_token": c["SessionToken"]}


def uid() -> str:
    return uuid.uuid4().hex[:10]


def bucket(region: str = "us-east-1") -> str:
    """A new S3 bucket in `region`; its name."""
    name = f"b-{uid()}"
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    client("s3", region).create_bucket(Bucket=name, **location)
    return name


def tags(resource_type: str, **kv: str) -> list[dict]:
    return [{"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in kv.items()]}]


def wait_until(fn, timeout: float = 5.0, interval: float = 0.1):
    """Call fn until it returns a truthy value (ignoring ClientError); return that value."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except botocore.exceptions.ClientError as e:
            last_exc = e
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last error: {last_exc})")


class RealismTest(unittest.TestCase):
    def setUp(self) -> None:
        set_config(BASELINE)
        self.ec2 = client("ec2")
        self.rds = client("rds")
        self.sqs = client("sqs")

    def assertCode(self, ctx, code: str, status: int | None = None) -> None:
        err = ctx.exception.response
        self.assertEqual(err["Error"]["Code"], code, err)
        if status is not None:
            self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], status, err)

    def volume(self, ec2=None, az: str = "us-east-1a", **tag_kv: str) -> str:
        ec2 = ec2 or self.ec2
        kwargs = {"TagSpecifications": tags("volume", **tag_kv)} if tag_kv else {}
        return ec2.create_volume(Size=8, AvailabilityZone=az, **kwargs)["VolumeId"]

    def snapshot_state(self, snapshot_id: str, ec2=None) -> dict:
        ec2 = ec2 or self.ec2
        return ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]

    def instance(self, ec2=None, **tag_kv: str) -> str:
        ec2 = ec2 or self.ec2
        kwargs = {"TagSpecifications": tags("instance", **tag_kv)} if tag_kv else {}
        return ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, **kwargs)["Instances"][0]["InstanceId"]

    # ---- asynchronous completion ---------------------------------------------------------------

    def test_snapshot_pending_with_progress_then_completed(self) -> None:
        vol = self.volume()
        snap = self.ec2.create_snapshot(VolumeId=vol)
        self.assertEqual(snap["State"], "pending")
        self.assertEqual(snap["Progress"], "0%")
        mid = wait_until(lambda: self.snapshot_state(snap["SnapshotId"]))
        self.assertEqual(mid["State"], "pending")
        self.assertRegex(mid["Progress"], r"^\d{1,2}%$")
        self.assertGreater(int(mid["Progress"].rstrip("%")), 0)
        done = wait_until(lambda: (s := self.snapshot_state(snap["SnapshotId"]))["State"] != "pending" and s)
        self.assertEqual(done["State"], "completed")
        self.assertEqual(done["Progress"], "100%")

    def test_error_share_and_fate_directives(self) -> None:
        # A share of 1.0 fails every EBS snapshot...
        set_config({"errors": {"ebs_snapshot": 1.0}})
        vol = self.volume()
        failing = self.ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
        # ...unless the request says otherwise.
        saved = self.ec2.create_snapshot(VolumeId=vol, TagSpecifications=tags("snapshot", **{"realism:fate": "ok"}))["SnapshotId"]
        set_config({"errors": None})
        # A directive on the request's own tags.
        by_tag = self.ec2.create_snapshot(VolumeId=vol, TagSpecifications=tags("snapshot", **{"realism:fate": "error"}))["SnapshotId"]
        # A directive on the source volume: every snapshot of it fails, also through CreateSnapshots.
        bad_vol = self.volume(**{"realism:fate": "error", "realism:pending-seconds": "0.2"})
        inst = self.instance()
        self.ec2.attach_volume(VolumeId=bad_vol, InstanceId=inst, Device="/dev/sdf")
        multi = self.ec2.create_snapshots(InstanceSpecification={"InstanceId": inst, "ExcludeBootVolume": True})["Snapshots"]
        self.assertEqual([s["VolumeId"] for s in multi], [bad_vol])
        time.sleep(PENDING + 0.1)
        for sid in (failing, by_tag, multi[0]["SnapshotId"]):
            s = self.snapshot_state(sid)
            self.assertEqual(s["State"], "error", s)
            self.assertIn("StateMessage", s)
            self.assertRegex(s["Progress"], r"^\d{1,2}%$")
        self.assertEqual(self.snapshot_state(saved)["State"], "completed")
        self.assertGreaterEqual(stats()["failed"]["ebs_snapshot"], 3)

    # ---- eventual consistency ------------------------------------------------------------------

    def test_describe_by_id_not_found_and_filter_omits_during_window(self) -> None:
        marker = uid()
        vol = self.volume()
        sid = self.ec2.create_snapshot(VolumeId=vol, TagSpecifications=tags("snapshot", marker=marker))["SnapshotId"]
        by_filter = {"Filters": [{"Name": "tag:marker", "Values": [marker]}]}
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.ec2.describe_snapshots(SnapshotIds=[sid])
        self.assertCode(ctx, "InvalidSnapshot.NotFound", 400)
        self.assertEqual(self.ec2.describe_snapshots(**by_filter)["Snapshots"], [])
        # The volume was not created from a snapshot: visible at once.
        self.assertEqual(len(self.ec2.describe_volumes(VolumeIds=[vol])["Volumes"]), 1)
        time.sleep(CONSISTENCY + 0.1)
        self.assertEqual(self.snapshot_state(sid)["SnapshotId"], sid)
        self.assertEqual([s["SnapshotId"] for s in self.ec2.describe_snapshots(**by_filter)["Snapshots"]], [sid])
        counted = stats()
        self.assertGreaterEqual(counted["not_found"]["InvalidSnapshot.NotFound"], 1)
        self.assertGreaterEqual(counted["omitted"]["DescribeSnapshots"], 1)

    def test_error_xml_shapes_are_the_ones_aws_sdks_parse(self) -> None:
        vol = self.volume()
        sid = self.ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
        auth = "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=0"
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        status, body = http(
            "POST",
            "/",
            raw=f"Action=DescribeSnapshots&Version=2016-11-15&SnapshotId.1={sid}".encode(),
            headers=dict(form, Authorization=auth.format("ec2")),
        )
        self.assertEqual(status, 400)
        self.assertRegex(body.decode(), r"<Response[^>]*><Errors><Error><Code>InvalidSnapshot\.NotFound</Code><Message>.*</Message></Error></Errors><RequestID>")
        db = f"db-{uid()}"
        self.rds.create_db_instance(
            DBInstanceIdentifier=db, DBInstanceClass="db.t3.micro", Engine="postgres", MasterUsername="admin", MasterUserPassword="password1", AllocatedStorage=20
        )
        self.rds.create_db_snapshot(DBInstanceIdentifier=db, DBSnapshotIdentifier=f"{db}-s")
        status, body = http(
            "POST",
            "/",
            raw=f"Action=DescribeDBSnapshots&Version=2014-10-31&DBSnapshotIdentifier={db}-s".encode(),
            headers=dict(form, Authorization=auth.format("rds")),
        )
        self.assertEqual(status, 404)
        self.assertRegex(body.decode(), r"^<ErrorResponse[^>]*><Error><Type>Sender</Type><Code>DBSnapshotNotFound</Code><Message>")

    def test_create_tags_not_found_is_optional(self) -> None:
        vol = self.volume()
        sid = self.ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
        self.ec2.create_tags(Resources=[sid], Tags=[{"Key": "a", "Value": "1"}])  # default: allowed
        set_config({"consistency_on_create_tags": True})
        sid2 = self.ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.ec2.create_tags(Resources=[sid2], Tags=[{"Key": "a", "Value": "1"}])
        self.assertCode(ctx, "InvalidSnapshot.NotFound", 400)
        time.sleep(CONSISTENCY + 0.1)
        self.ec2.create_tags(Resources=[sid2], Tags=[{"Key": "a", "Value": "1"}])

    # ---- AMIs, copies, restores ----------------------------------------------------------------

    def test_ami_pending_then_available_and_duplicate_name_refused(self) -> None:
        inst = self.instance()
        name = f"ami-{uid()}"
        image_id = self.ec2.create_image(InstanceId=inst, Name=name)["ImageId"]
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.ec2.describe_images(ImageIds=[image_id])
        self.assertCode(ctx, "InvalidAMIID.NotFound", 400)
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.ec2.create_image(InstanceId=inst, Name=name)
        self.assertCode(ctx, "InvalidAMIName.Duplicate", 400)
        image = wait_until(lambda: self.ec2.describe_images(ImageIds=[image_id])["Images"][0])
        self.assertEqual(image["State"], "pending")
        backing = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
        self.assertEqual(self.snapshot_state(backing)["State"], "pending")
        image = wait_until(lambda: (i := self.ec2.describe_images(ImageIds=[image_id])["Images"][0])["State"] != "pending" and i)
        self.assertEqual(image["State"], "available")
        self.assertEqual(self.snapshot_state(backing)["State"], "completed")
        # A failed AMI carries a StateReason.
        failed_id = self.ec2.create_image(InstanceId=inst, Name=f"{name}-f", TagSpecifications=tags("image", **{"realism:fate": "error"}))["ImageId"]
        failed = wait_until(lambda: (i := self.ec2.describe_images(ImageIds=[failed_id])["Images"][0])["State"] != "pending" and i)
        self.assertEqual(failed["State"], "failed")
        self.assertEqual(failed["StateReason"]["Code"], "Server.InternalError")

    def test_copies_are_pending(self) -> None:
        west = client("ec2", "us-west-1")
        # Per-kind config: sources complete at once and are visible at once; copies keep the baseline.
        set_config({"pending": {"ebs_snapshot": 0, "ami": 0, "restore": 0}, "consistency": {"ebs_snapshot": 0, "ami": 0, "restore": 0}})
        vol = self.volume()
        src = self.ec2.create_snapshot(VolumeId=vol)
        self.assertEqual(self.snapshot_state(src["SnapshotId"])["State"], "completed")
        copy_id = west.copy_snapshot(SourceSnapshotId=src["SnapshotId"], SourceRegion="us-east-1")["SnapshotId"]
        copied = wait_until(lambda: self.snapshot_state(copy_id, west))
        self.assertEqual(copied["State"], "pending")
        # AMI copy; a directive on the source instance makes the copy (only) fail.
        inst = self.instance(**{"realism:copy-fate": "error"})
        image_id = self.ec2.create_image(InstanceId=inst, Name=f"src-{uid()}")["ImageId"]
        ami_copy = west.copy_image(SourceImageId=image_id, SourceRegion="us-east-1", Name=f"copy-{uid()}")["ImageId"]
        image = wait_until(lambda: west.describe_images(ImageIds=[ami_copy])["Images"][0])
        self.assertEqual(image["State"], "pending")
        self.assertEqual(wait_until(lambda: self.snapshot_state(copy_id, west)["State"] == "completed" and "ok", timeout=PENDING + 2), "ok")
        failed = wait_until(lambda: (i := west.describe_images(ImageIds=[ami_copy])["Images"][0])["State"] != "pending" and i)
        self.assertEqual(failed["State"], "failed")
        self.assertEqual(self.ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"], "available")

    def test_restored_volume_and_instance_are_pending_and_invisible_at_first(self) -> None:
        set_config({"pending": {"ebs_snapshot": 0}, "consistency": {"ebs_snapshot": 0}})
        vol = self.volume()
        sid = self.ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
        restored = self.ec2.create_volume(SnapshotId=sid, AvailabilityZone="us-east-1a")
        self.assertEqual(restored["State"], "creating")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.ec2.describe_volumes(VolumeIds=[restored["VolumeId"]])
        self.assertCode(ctx, "InvalidVolume.NotFound", 400)
        inst = self.ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]
        self.assertEqual(inst["State"]["Name"], "pending")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.ec2.describe_instances(InstanceIds=[inst["InstanceId"]])
        self.assertCode(ctx, "InvalidInstanceID.NotFound", 400)
        all_ids = [i["InstanceId"] for r in self.ec2.describe_instances()["Reservations"] for i in r["Instances"]]
        self.assertNotIn(inst["InstanceId"], all_ids)
        v = wait_until(lambda: self.ec2.describe_volumes(VolumeIds=[restored["VolumeId"]])["Volumes"][0])
        self.assertEqual(v["State"], "creating")
        i = wait_until(lambda: self.ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"][0])
        self.assertEqual(i["State"]["Name"], "pending")
        time.sleep(PENDING + 0.1)
        self.assertEqual(self.ec2.describe_volumes(VolumeIds=[restored["VolumeId"]])["Volumes"][0]["State"], "available")
        running = self.ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"][0]
        self.assertEqual(running["State"], {"Code": 16, "Name": "running"})

    def test_restores_can_fail(self) -> None:
        set_config({"pending": {"ebs_snapshot": 0, "rds_snapshot": 0}, "consistency": {"ebs_snapshot": 0, "rds_snapshot": 0}})
        fail = {"realism:fate": "error", "realism:pending-seconds": "0.2", "realism:consistency-seconds": "0"}
        sid = self.ec2.create_snapshot(VolumeId=self.volume())["SnapshotId"]
        vol = self.ec2.create_volume(SnapshotId=sid, AvailabilityZone="us-east-1a", TagSpecifications=tags("volume", **fail))["VolumeId"]
        inst = self.instance(**fail)
        db = f"db-{uid()}"
        self.rds.create_db_instance(
            DBInstanceIdentifier=db,
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            MasterUsername="admin",
            MasterUserPassword="password1",
            AllocatedStorage=20,
            # Only restores from this instance's snapshots fail, not the snapshots.
            Tags=[{"Key": "realism:restore-fate", "Value": "error"}, {"Key": "realism:restore-pending-seconds", "Value": "0.2"}],
        )
        self.rds.create_db_snapshot(DBInstanceIdentifier=db, DBSnapshotIdentifier=f"{db}-s")
        self.rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=f"{db}-r", DBSnapshotIdentifier=f"{db}-s")
        time.sleep(CONSISTENCY + 0.1)
        self.assertEqual(self.rds.describe_db_snapshots(DBSnapshotIdentifier=f"{db}-s")["DBSnapshots"][0]["Status"], "available")
        self.assertEqual(self.rds.describe_db_instances(DBInstanceIdentifier=f"{db}-r")["DBInstances"][0]["DBInstanceStatus"], "incompatible-restore")
        self.assertEqual(self.ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["State"], "error")
        i = self.ec2.describe_instances(InstanceIds=[inst])["Reservations"][0]["Instances"][0]
        self.assertEqual(i["State"]["Name"], "terminated")
        self.assertEqual(i["StateReason"]["Code"], "Server.InternalError")

    def test_rds_snapshot_copy_cluster_snapshot_and_restores(self) -> None:
        west = client("rds", "us-west-2")
        db = f"db-{uid()}"
        self.rds.create_db_instance(
            DBInstanceIdentifier=db, DBInstanceClass="db.t3.micro", Engine="postgres", MasterUsername="admin", MasterUserPassword="password1", AllocatedStorage=20
        )
        snap = self.rds.create_db_snapshot(DBInstanceIdentifier=db, DBSnapshotIdentifier=f"{db}-s1")["DBSnapshot"]
        self.assertEqual((snap["Status"], snap["PercentProgress"]), ("creating", 0))
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.rds.describe_db_snapshots(DBSnapshotIdentifier=f"{db}-s1")
        self.assertCode(ctx, "DBSnapshotNotFound", 404)
        listed = [s["DBSnapshotIdentifier"] for s in self.rds.describe_db_snapshots(DBInstanceIdentifier=db)["DBSnapshots"]]
        self.assertNotIn(f"{db}-s1", listed)
        mid = wait_until(lambda: self.rds.describe_db_snapshots(DBSnapshotIdentifier=f"{db}-s1")["DBSnapshots"][0])
        self.assertEqual(mid["Status"], "creating")
        self.assertGreater(mid["PercentProgress"], 0)
        done = wait_until(lambda: (s := self.rds.describe_db_snapshots(DBSnapshotIdentifier=f"{db}-s1")["DBSnapshots"][0])["Status"] != "creating" and s)
        self.assertEqual((done["Status"], done["PercentProgress"]), ("available", 100))

        copy = west.copy_db_snapshot(SourceDBSnapshotIdentifier=done["DBSnapshotArn"], TargetDBSnapshotIdentifier=f"{db}-c1", SourceRegion="us-east-1")["DBSnapshot"]
        self.assertEqual(copy["Status"], "creating")
        restored = self.rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=f"{db}-r", DBSnapshotIdentifier=f"{db}-s1")["DBInstance"]
        self.assertEqual(restored["DBInstanceStatus"], "creating")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.rds.describe_db_instances(DBInstanceIdentifier=f"{db}-r")
        self.assertCode(ctx, "DBInstanceNotFound", 404)

        # A failed RDS snapshot, by the DB instance's directive.
        bad = f"db-{uid()}"
        self.rds.create_db_instance(
            DBInstanceIdentifier=bad,
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            MasterUsername="admin",
            MasterUserPassword="password1",
            AllocatedStorage=20,
            Tags=[{"Key": "realism:fate", "Value": "error"}, {"Key": "realism:pending-seconds", "Value": "0.2"}],
        )
        self.rds.create_db_snapshot(DBInstanceIdentifier=bad, DBSnapshotIdentifier=f"{bad}-s")
        failed = wait_until(lambda: (s := self.rds.describe_db_snapshots(DBSnapshotIdentifier=f"{bad}-s")["DBSnapshots"][0])["Status"] != "creating" and s)
        self.assertEqual(failed["Status"], "failed")

        cluster = f"cl-{uid()}"
        self.rds.create_db_cluster(DBClusterIdentifier=cluster, Engine="aurora-postgresql", MasterUsername="admin", MasterUserPassword="password1")
        cs = self.rds.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=f"{cluster}-s")["DBClusterSnapshot"]
        self.assertEqual(cs["Status"], "creating")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=f"{cluster}-s")
        self.assertCode(ctx, "DBClusterSnapshotNotFoundFault", 404)
        rc = self.rds.restore_db_cluster_from_snapshot(DBClusterIdentifier=f"{cluster}-r", SnapshotIdentifier=f"{cluster}-s", Engine="aurora-postgresql")["DBCluster"]
        self.assertEqual(rc["Status"], "creating")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.rds.describe_db_clusters(DBClusterIdentifier=f"{cluster}-r")
        self.assertCode(ctx, "DBClusterNotFoundFault", 404)
        # A second restore under the same name is refused, as AWS does (moto would replace it).
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.rds.restore_db_cluster_from_snapshot(DBClusterIdentifier=f"{cluster}-r", SnapshotIdentifier=f"{cluster}-s", Engine="aurora-postgresql")
        self.assertEqual(ctx.exception.response["Error"]["Code"], "DBClusterAlreadyExistsFault")

        time.sleep(PENDING + 0.1)
        self.assertEqual(west.describe_db_snapshots(DBSnapshotIdentifier=f"{db}-c1")["DBSnapshots"][0]["Status"], "available")
        self.assertEqual(self.rds.describe_db_instances(DBInstanceIdentifier=f"{db}-r")["DBInstances"][0]["DBInstanceStatus"], "available")
        self.assertEqual(self.rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=f"{cluster}-s")["DBClusterSnapshots"][0]["Status"], "available")
        self.assertEqual(self.rds.describe_db_clusters(DBClusterIdentifier=f"{cluster}-r")["DBClusters"][0]["Status"], "available")

    # ---- RDS point-in-time restores ------------------------------------------------------------

    def db_instance(self, backup_days: int = 1, tags_kv: dict[str, str] | None = None) -> str:
        db = f"db-{uid()}"
        self.rds.create_db_instance(
            DBInstanceIdentifier=db,
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            MasterUsername="admin",
            MasterUserPassword="password1",
            AllocatedStorage=20,
            BackupRetentionPeriod=backup_days,
            Tags=[{"Key": k, "Value": v} for k, v in (tags_kv or {}).items()],
        )
        return db

    def db_cluster(self, tags_kv: dict[str, str] | None = None) -> str:
        cluster = f"cl-{uid()}"
        self.rds.create_db_cluster(
            DBClusterIdentifier=cluster,
            Engine="aurora-postgresql",
            MasterUsername="admin",
            MasterUserPassword="password1",
            BackupRetentionPeriod=7,
            Tags=[{"Key": k, "Value": v} for k, v in (tags_kv or {}).items()],
        )
        return cluster

    def describe_db(self, db: str) -> dict:
        return self.rds.describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]

    def describe_cluster(self, cluster: str) -> dict:
        return self.rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]

    def automated_backups(self, db: str) -> list[dict]:
        return self.rds.describe_db_instance_automated_backups(DBInstanceIdentifier=db)["DBInstanceAutomatedBackups"]

    def test_point_in_time_restores_are_pending_and_invisible_at_first(self) -> None:
        db, cluster = self.db_instance(), self.db_cluster()
        latest = wait_until(lambda: self.describe_db(db).get("LatestRestorableTime"))
        restored = self.rds.restore_db_instance_to_point_in_time(
            SourceDBInstanceIdentifier=db, TargetDBInstanceIdentifier=f"{db}-r", RestoreTime=latest
        )["DBInstance"]
        self.assertEqual(restored["DBInstanceStatus"], "creating")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.describe_db(f"{db}-r")
        self.assertCode(ctx, "DBInstanceNotFound", 404)
        listed = [d["DBInstanceIdentifier"] for d in self.rds.describe_db_instances()["DBInstances"]]
        self.assertIn(db, listed)
        self.assertNotIn(f"{db}-r", listed)
        self.assertEqual(self.automated_backups(f"{db}-r"), [])  # not yet visible, no automated backups either

        # A cluster, to its earliest restorable time (the window's ends are included).
        earliest = wait_until(lambda: (c := self.describe_cluster(cluster)).get("LatestRestorableTime") and c["EarliestRestorableTime"])
        rc = self.rds.restore_db_cluster_to_point_in_time(
            SourceDBClusterIdentifier=cluster, DBClusterIdentifier=f"{cluster}-r", RestoreToTime=earliest
        )["DBCluster"]
        self.assertEqual(rc["Status"], "creating")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.describe_cluster(f"{cluster}-r")
        self.assertCode(ctx, "DBClusterNotFoundFault", 404)
        # A second restore under the same name is refused, as AWS does (moto would replace it).
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.rds.restore_db_cluster_to_point_in_time(SourceDBClusterIdentifier=cluster, DBClusterIdentifier=f"{cluster}-r", UseLatestRestorableTime=True)
        self.assertCode(ctx, "DBClusterAlreadyExistsFault", 400)

        self.assertEqual(wait_until(lambda: self.describe_db(f"{db}-r"))["DBInstanceStatus"], "creating")
        self.assertEqual(wait_until(lambda: self.describe_cluster(f"{cluster}-r"))["Status"], "creating")
        self.assertEqual(wait_until(lambda: (s := self.describe_db(f"{db}-r")["DBInstanceStatus"]) != "creating" and s, PENDING + 2), "available")
        self.assertEqual(wait_until(lambda: (s := self.describe_cluster(f"{cluster}-r")["Status"]) != "creating" and s, PENDING + 2), "available")
        counted = stats()
        self.assertGreaterEqual(counted["pending"]["restore_db_pitr"], 1)
        self.assertGreaterEqual(counted["pending"]["restore_cluster_pitr"], 1)
        self.assertGreaterEqual(counted["not_found"]["DBInstanceNotFound"], 1)
        self.assertGreaterEqual(counted["omitted"]["DescribeDBInstances"], 1)

    def test_point_in_time_restores_can_fail_and_take_the_restore_settings(self) -> None:
        fast = {"realism:restore-pending-seconds": "0.2", "realism:restore-consistency-seconds": "0"}
        # A directive on the source instance: its point-in-time restores fail (the source does not).
        bad = self.db_instance(tags_kv=dict(fast, **{"realism:restore-fate": "error"}))
        time.sleep(LAG + 0.1)
        self.rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier=bad, TargetDBInstanceIdentifier=f"{bad}-r", UseLatestRestorableTime=True)
        failed = wait_until(lambda: (d := self.describe_db(f"{bad}-r"))["DBInstanceStatus"] != "creating" and d)
        self.assertEqual(failed["DBInstanceStatus"], "incompatible-restore")
        self.assertEqual(self.describe_db(bad)["DBInstanceStatus"], "available")
        # The error share of the kind; the `restore` family's pending time (0: done at once).
        set_config({"errors": {"restore_db_pitr": 1.0}, "pending": {"restore": 0}, "consistency": {"restore": 0}})
        db = self.db_instance()
        time.sleep(LAG + 0.1)
        out = self.rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier=db, TargetDBInstanceIdentifier=f"{db}-r", UseLatestRestorableTime=True)
        self.assertEqual(out["DBInstance"]["DBInstanceStatus"], "incompatible-restore")
        # ... unless the request says otherwise.
        ok = self.rds.restore_db_instance_to_point_in_time(
            SourceDBInstanceIdentifier=db, TargetDBInstanceIdentifier=f"{db}-ok", UseLatestRestorableTime=True, Tags=[{"Key": "realism:fate", "Value": "ok"}]
        )
        self.assertEqual(ok["DBInstance"]["DBInstanceStatus"], "available")
        # A restored cluster never fails, as for a restore from a snapshot.
        cluster = self.db_cluster()
        time.sleep(LAG + 0.1)
        rc = self.rds.restore_db_cluster_to_point_in_time(
            SourceDBClusterIdentifier=cluster, DBClusterIdentifier=f"{cluster}-r", UseLatestRestorableTime=True, Tags=[{"Key": "realism:fate", "Value": "error"}]
        )["DBCluster"]
        self.assertEqual(rc["Status"], "available")
        self.assertGreaterEqual(stats()["failed"]["restore_db_pitr"], 2)

    def test_point_in_time_restore_window_is_checked_and_described(self) -> None:
        # A long lag: nothing is restorable yet.
        set_config({"latest_restorable_lag_seconds": 3600})
        db, cluster, off = self.db_instance(), self.db_cluster(), self.db_instance(backup_days=0)
        created = self.describe_db(db)["InstanceCreateTime"]
        self.assertNotIn("LatestRestorableTime", self.describe_db(db))
        c = self.describe_cluster(cluster)
        self.assertNotIn("LatestRestorableTime", c)
        self.assertLessEqual(abs((c["EarliestRestorableTime"] - c["ClusterCreateTime"]).total_seconds()), 1)
        [backup] = self.automated_backups(db)
        self.assertEqual((backup["Status"], backup["RestoreWindow"]), ("active", {"EarliestTime": created}))
        for call in (
            lambda: self.rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier=db, TargetDBInstanceIdentifier=f"{db}-r", UseLatestRestorableTime=True),
            lambda: self.rds.restore_db_cluster_to_point_in_time(SourceDBClusterIdentifier=cluster, DBClusterIdentifier=f"{cluster}-r", UseLatestRestorableTime=True),
        ):
            with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                call()
            self.assertCode(ctx, "InvalidRestoreFault", 400)
            self.assertIn("no restorable time yet", ctx.exception.response["Error"]["Message"])

        # The window opens once now - lag is past the creation time; Describe shows it.
        set_config({"latest_restorable_lag_seconds": LAG})
        time.sleep(LAG + 0.1)
        latest = self.describe_db(db)["LatestRestorableTime"]
        self.assertGreater(latest, created)
        self.assertLess(latest, datetime.now(timezone.utc) - timedelta(seconds=LAG * 0.9))
        [backup] = self.automated_backups(db)
        self.assertEqual(backup["RestoreWindow"]["EarliestTime"], created)
        self.assertGreaterEqual(backup["RestoreWindow"]["LatestTime"], latest)
        self.assertEqual(backup["BackupRetentionPeriod"], 1)
        self.assertTrue(backup["DBInstanceAutomatedBackupsArn"].startswith("arn:aws:rds:us-east-1:123456789012:auto-backup:ab-"))
        c = self.describe_cluster(cluster)
        self.assertGreater(c["LatestRestorableTime"], c["EarliestRestorableTime"])

        def refused(code: str, call) -> str:
            with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                call()
            self.assertCode(ctx, code, 400)
            return ctx.exception.response["Error"]["Message"]

        pitr = self.rds.restore_db_instance_to_point_in_time
        cpitr = self.rds.restore_db_cluster_to_point_in_time
        # Before the source existed, in the future, and now (later than the latest restorable time).
        message = refused("InvalidRestoreFault", lambda: pitr(SourceDBInstanceIdentifier=db, TargetDBInstanceIdentifier=f"{db}-a", RestoreTime=created - timedelta(seconds=1)))
        self.assertIn("outside the restorable window", message)
        refused("InvalidRestoreFault", lambda: pitr(SourceDBInstanceIdentifier=db, TargetDBInstanceIdentifier=f"{db}-b", RestoreTime=datetime.now(timezone.utc) + timedelta(minutes=1)))
        refused("InvalidRestoreFault", lambda: pitr(SourceDBInstanceIdentifier=db, TargetDBInstanceIdentifier=f"{db}-c", RestoreTime=datetime.now(timezone.utc)))
        refused("InvalidRestoreFault", lambda: cpitr(SourceDBClusterIdentifier=cluster, DBClusterIdentifier=f"{cluster}-a", RestoreToTime=c["EarliestRestorableTime"] - timedelta(seconds=1)))
        refused("InvalidRestoreFault", lambda: cpitr(SourceDBClusterIdentifier=cluster, DBClusterIdentifier=f"{cluster}-b", RestoreToTime=datetime.now(timezone.utc)))
        # Both a time and UseLatestRestorableTime.
        refused("InvalidParameterCombination", lambda: pitr(SourceDBInstanceIdentifier=db, TargetDBInstanceIdentifier=f"{db}-d", RestoreTime=latest, UseLatestRestorableTime=True))
        refused("InvalidParameterCombination", lambda: cpitr(SourceDBClusterIdentifier=cluster, DBClusterIdentifier=f"{cluster}-d", RestoreToTime=latest, UseLatestRestorableTime=True))
        for target in (f"{db}-a", f"{db}-b", f"{db}-c", f"{db}-d"):
            self.assertEqual(self.rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": [target]}])["DBInstances"], [])
        # UseLatestRestorableTime restores to the latest restorable time: never refused for the window.
        self.rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier=db, TargetDBInstanceIdentifier=f"{db}-latest", UseLatestRestorableTime=True)
        self.rds.restore_db_cluster_to_point_in_time(SourceDBClusterIdentifier=cluster, DBClusterIdentifier=f"{cluster}-latest", UseLatestRestorableTime=True)

        # Automated backups off: no window, no automated backups, no point-in-time restore.
        self.assertEqual(self.describe_db(off)["BackupRetentionPeriod"], 0)
        self.assertNotIn("LatestRestorableTime", self.describe_db(off))
        self.assertEqual(self.automated_backups(off), [])
        listed = [b["DBInstanceIdentifier"] for b in self.rds.describe_db_instance_automated_backups()["DBInstanceAutomatedBackups"]]
        self.assertIn(db, listed)
        self.assertNotIn(off, listed)
        for kwargs in ({"UseLatestRestorableTime": True}, {"RestoreTime": latest}):
            with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                pitr(SourceDBInstanceIdentifier=off, TargetDBInstanceIdentifier=f"{off}-r", **kwargs)
            self.assertIsInstance(ctx.exception, self.rds.exceptions.PointInTimeRestoreNotEnabledFault)
            self.assertCode(ctx, "PointInTimeRestoreNotEnabled", 400)
        counted = stats()["refused"]
        self.assertGreaterEqual(counted["InvalidRestoreFault"], 7)
        self.assertGreaterEqual(counted["InvalidParameterCombination"], 2)
        self.assertGreaterEqual(counted["PointInTimeRestoreNotEnabled"], 2)

        # The layer off: moto's own answers (any time accepted, LatestRestorableTime = now).
        set_config({"enabled": False})
        pitr(SourceDBInstanceIdentifier=db, TargetDBInstanceIdentifier=f"{db}-moto", RestoreTime=created - timedelta(days=1))
        self.assertIn("LatestRestorableTime", self.describe_db(off))
        status, body = http("POST", "/_realism/config", {"latest_restorable_lag_seconds": -1})
        self.assertEqual(status, 400, body)

    # ---- RDS automated backups replicated to another region ------------------------------------

    def replicated(self, rds, **kwargs) -> list[dict]:
        return rds.describe_db_instance_automated_backups(**kwargs)["DBInstanceAutomatedBackups"]

    def replicating(self, rds, backup_arn: str) -> dict:
        """The replicated backup once it is replicating (its first LatestTime is there)."""
        return wait_until(
            lambda: (b := self.replicated(rds, DBInstanceAutomatedBackupsArn=backup_arn)[0])["Status"] == "replicating" and b,
            REPLICATION_LAG + 2,
        )

    def test_automated_backups_replicate_to_another_region_and_restore_there(self) -> None:
        dr = client("rds", "us-west-1")
        db = self.db_instance(backup_days=3, tags_kv={"realism:restore-pending-seconds": "0.5"})
        source = self.describe_db(db)
        before = datetime.now(timezone.utc)
        started = dr.start_db_instance_automated_backups_replication(
            SourceDBInstanceArn=source["DBInstanceArn"],
            BackupRetentionPeriod=5,
            KmsKeyId="arn:aws:kms:us-west-1:123456789012:key/dr",
            Tags=[{"Key": "purpose", "Value": "dr"}],
        )["DBInstanceAutomatedBackup"]
        after = datetime.now(timezone.utc)
        backup_arn = started["DBInstanceAutomatedBackupsArn"]
        # The DBInstanceAutomatedBackup shape: the source's ARN, identifier and region, the backup's
        # own ARN in the destination region, pending with nothing restorable yet.
        self.assertTrue(backup_arn.startswith("arn:aws:rds:us-west-1:123456789012:auto-backup:ab-"), backup_arn)
        self.assertEqual(
            (started["DBInstanceArn"], started["DBInstanceIdentifier"], started["Region"], started["Status"]),
            (source["DBInstanceArn"], db, "us-east-1", "pending"),
        )
        self.assertNotIn("LatestTime", started.get("RestoreWindow") or {})
        self.assertEqual((started["BackupRetentionPeriod"], started["KmsKeyId"], started["Engine"]), (5, "arn:aws:kms:us-west-1:123456789012:key/dr", "postgres"))
        self.assertEqual(started["TagList"], [{"Key": "purpose", "Value": "dr"}])
        # The source, in its own region, lists the replication.
        replications = [{"DBInstanceAutomatedBackupsArn": backup_arn}]
        self.assertEqual(self.describe_db(db)["DBInstanceAutomatedBackupsReplications"], replications)
        [own] = self.automated_backups(db)
        self.assertEqual((own["Region"], own["DBInstanceAutomatedBackupsReplications"]), ("us-east-1", replications))
        # The destination lists it by identifier, by the db-instance-id filter (identifier or ARN), by ARN.
        for kwargs in (
            {"DBInstanceIdentifier": db},
            {"Filters": [{"Name": "db-instance-id", "Values": [db]}]},
            {"Filters": [{"Name": "db-instance-id", "Values": [source["DBInstanceArn"]]}]},
            {"DBInstanceAutomatedBackupsArn": backup_arn},
        ):
            self.assertEqual([b["DBInstanceAutomatedBackupsArn"] for b in self.replicated(dr, **kwargs)], [backup_arn], kwargs)
        self.assertEqual(self.replicated(self.rds, DBInstanceIdentifier=db)[0]["DBInstanceAutomatedBackupsArn"], own["DBInstanceAutomatedBackupsArn"])
        pitr = dr.restore_db_instance_to_point_in_time

        def refused(code: str, call, status: int = 400) -> str:
            with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                call()
            self.assertCode(ctx, code, status)
            return ctx.exception.response["Error"]["Message"]

        # Pending: nothing restorable yet.
        self.assertIn("no restorable time yet", refused("InvalidRestoreFault", lambda: pitr(SourceDBInstanceAutomatedBackupsArn=backup_arn, TargetDBInstanceIdentifier=f"{db}-p", UseLatestRestorableTime=True)))

        # Replicating: the window starts when the replication started and trails now by the lag.
        backup = self.replicating(dr, backup_arn)
        window = backup["RestoreWindow"]
        self.assertGreaterEqual(window["EarliestTime"], before - timedelta(seconds=0.01))
        self.assertLessEqual(window["EarliestTime"], after)
        self.assertGreater(window["EarliestTime"], source["InstanceCreateTime"])
        self.assertLess(window["LatestTime"], datetime.now(timezone.utc) - timedelta(seconds=REPLICATION_LAG * 0.9))
        time.sleep(0.3)
        grown = self.replicated(dr, DBInstanceIdentifier=db)[0]["RestoreWindow"]
        self.assertEqual(grown["EarliestTime"], window["EarliestTime"])
        self.assertGreater(grown["LatestTime"], window["LatestTime"])

        # Outside the window (before the replication started, now), both ways of giving the time, two sources.
        outside = refused("InvalidRestoreFault", lambda: pitr(SourceDBInstanceAutomatedBackupsArn=backup_arn, TargetDBInstanceIdentifier=f"{db}-a", RestoreTime=window["EarliestTime"] - timedelta(seconds=1)))
        self.assertIn("outside the restorable window", outside)
        refused("InvalidRestoreFault", lambda: pitr(SourceDBInstanceAutomatedBackupsArn=backup_arn, TargetDBInstanceIdentifier=f"{db}-b", RestoreTime=datetime.now(timezone.utc)))
        refused("InvalidParameterCombination", lambda: pitr(SourceDBInstanceAutomatedBackupsArn=backup_arn, TargetDBInstanceIdentifier=f"{db}-c", RestoreTime=grown["LatestTime"], UseLatestRestorableTime=True))
        refused("InvalidParameterCombination", lambda: pitr(SourceDBInstanceAutomatedBackupsArn=backup_arn, SourceDBInstanceIdentifier=db, TargetDBInstanceIdentifier=f"{db}-d", UseLatestRestorableTime=True))
        # Unknown automated backups.
        unknown = backup_arn[:-4] + "zzzz"
        refused("DBInstanceAutomatedBackupNotFound", lambda: pitr(SourceDBInstanceAutomatedBackupsArn=unknown, TargetDBInstanceIdentifier=f"{db}-e", UseLatestRestorableTime=True), 404)
        refused("DBInstanceAutomatedBackupNotFound", lambda: self.replicated(dr, DBInstanceAutomatedBackupsArn=unknown), 404)
        self.assertEqual(dr.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": [f"{db}-{x}" for x in "pabcde"]}])["DBInstances"], [])

        # By time, in the window: created in the destination region from the source's settings.
        restored = pitr(
            SourceDBInstanceAutomatedBackupsArn=backup_arn, TargetDBInstanceIdentifier=f"{db}-t", RestoreTime=grown["LatestTime"], Tags=[{"Key": "restored", "Value": "yes"}]
        )["DBInstance"]
        self.assertEqual(restored["DBInstanceArn"], f"arn:aws:rds:us-west-1:123456789012:db:{db}-t")
        self.assertEqual(
            (restored["DBInstanceStatus"], restored["Engine"], restored["DBInstanceClass"], restored["AllocatedStorage"], restored["MasterUsername"]),
            ("creating", "postgres", "db.t3.micro", 20, "admin"),
        )
        self.assertTrue(restored["AvailabilityZone"].startswith("us-west-1"), restored["AvailabilityZone"])
        self.assertEqual(restored["TagList"], [{"Key": "restored", "Value": "yes"}])
        # The latest restorable time, with a class of its own.
        latest = pitr(SourceDBInstanceAutomatedBackupsArn=backup_arn, TargetDBInstanceIdentifier=f"{db}-l", UseLatestRestorableTime=True, DBInstanceClass="db.m5.large")["DBInstance"]
        self.assertEqual((latest["DBInstanceStatus"], latest["DBInstanceClass"]), ("creating", "db.m5.large"))
        # Pending and invisible at first like any point-in-time restore; the source's directive set the pending time.
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            dr.describe_db_instances(DBInstanceIdentifier=f"{db}-t")
        self.assertCode(ctx, "DBInstanceNotFound", 404)
        self.assertEqual(wait_until(lambda: (s := dr.describe_db_instances(DBInstanceIdentifier=f"{db}-t")["DBInstances"][0]["DBInstanceStatus"]) != "creating" and s, 3), "available")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.describe_db(f"{db}-t")  # not in the source region
        self.assertCode(ctx, "DBInstanceNotFound", 404)
        counted = stats()
        self.assertGreaterEqual(counted["pending"]["restore_db_pitr"], 2)
        self.assertGreaterEqual(counted["refused"]["DBInstanceAutomatedBackupNotFound"], 2)
        self.assertEqual(counted["in_flight"]["backup_replications_by_region"].get("123456789012/us-west-1"), 1)

    def test_automated_backup_replication_refusals_stop_and_delete(self) -> None:
        dr = client("rds", "eu-west-2")
        db, off = self.db_instance(), self.db_instance(backup_days=0)
        arn, off_arn = self.describe_db(db)["DBInstanceArn"], self.describe_db(off)["DBInstanceArn"]
        start = dr.start_db_instance_automated_backups_replication
        stop = dr.stop_db_instance_automated_backups_replication

        def refused(code: str, call, status: int = 400) -> str:
            with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                call()
            self.assertCode(ctx, code, status)
            return ctx.exception.response["Error"]["Message"]

        # Called in the source's own region; an unknown source; backups off; an Aurora member; a bad retention.
        refused("InvalidParameterValue", lambda: self.rds.start_db_instance_automated_backups_replication(SourceDBInstanceArn=arn))
        refused("DBInstanceNotFound", lambda: start(SourceDBInstanceArn=arn + "-gone"), 404)
        self.assertIn("BackupRetentionPeriod 0", refused("InvalidDBInstanceState", lambda: start(SourceDBInstanceArn=off_arn)))
        cluster = self.db_cluster()
        member = self.rds.create_db_instance(DBInstanceIdentifier=f"{cluster}-1", DBInstanceClass="db.r5.large", Engine="aurora-postgresql", DBClusterIdentifier=cluster)["DBInstance"]
        refused("InvalidDBInstanceState", lambda: start(SourceDBInstanceArn=member["DBInstanceArn"]))
        refused("InvalidParameterValue", lambda: start(SourceDBInstanceArn=arn, BackupRetentionPeriod=0))
        # Running already for this source and region.
        first = start(SourceDBInstanceArn=arn)["DBInstanceAutomatedBackup"]
        self.assertEqual(first["BackupRetentionPeriod"], 7)  # the default
        self.assertIn("already replicating", refused("InvalidDBInstanceState", lambda: start(SourceDBInstanceArn=arn)))
        # Stop: where nothing replicates from the source, and an unknown source.
        self.assertIn("not replicating to the current region", refused("InvalidDBInstanceState", lambda: client("rds", "eu-west-3").stop_db_instance_automated_backups_replication(SourceDBInstanceArn=arn)))
        refused("DBInstanceNotFound", lambda: stop(SourceDBInstanceArn=arn + "-gone"), 404)
        delete = dr.delete_db_instance_automated_backup
        refused("InvalidDBInstanceAutomatedBackupState", lambda: delete(DBInstanceAutomatedBackupsArn=first["DBInstanceAutomatedBackupsArn"]))

        # Stopped once replicating: answered as it was, then retained with its window frozen, still restorable.
        replicating = self.replicating(dr, first["DBInstanceAutomatedBackupsArn"])
        stopped = stop(SourceDBInstanceArn=arn)["DBInstanceAutomatedBackup"]
        self.assertEqual((stopped["Status"], stopped["DBInstanceAutomatedBackupsArn"]), ("replicating", first["DBInstanceAutomatedBackupsArn"]))
        self.assertNotIn("DBInstanceAutomatedBackupsReplications", self.describe_db(db))
        [retained] = self.replicated(dr, DBInstanceIdentifier=db)
        self.assertEqual(retained["Status"], "retained")
        self.assertGreaterEqual(retained["RestoreWindow"]["LatestTime"], replicating["RestoreWindow"]["LatestTime"])
        time.sleep(0.3)
        self.assertEqual(self.replicated(dr, Filters=[{"Name": "status", "Values": ["retained"]}, {"Name": "db-instance-id", "Values": [db]}])[0]["RestoreWindow"], retained["RestoreWindow"])
        dr.restore_db_instance_to_point_in_time(SourceDBInstanceAutomatedBackupsArn=retained["DBInstanceAutomatedBackupsArn"], TargetDBInstanceIdentifier=f"{db}-r", UseLatestRestorableTime=True)
        refused("InvalidDBInstanceState", lambda: stop(SourceDBInstanceArn=arn))  # nothing running any more

        # A new replication of the same source: a new ARN. Stopped while still pending, it leaves nothing.
        again = start(SourceDBInstanceArn=arn)["DBInstanceAutomatedBackup"]
        self.assertNotEqual(again["DBInstanceAutomatedBackupsArn"], first["DBInstanceAutomatedBackupsArn"])
        self.assertEqual(stop(SourceDBInstanceArn=arn)["DBInstanceAutomatedBackup"]["Status"], "pending")
        refused("DBInstanceAutomatedBackupNotFound", lambda: self.replicated(dr, DBInstanceAutomatedBackupsArn=again["DBInstanceAutomatedBackupsArn"]), 404)

        # DeleteDBInstanceAutomatedBackup removes the retained backup.
        deleted = delete(DBInstanceAutomatedBackupsArn=first["DBInstanceAutomatedBackupsArn"])["DBInstanceAutomatedBackup"]
        self.assertEqual(deleted["Status"], "deleting")
        self.assertEqual(self.replicated(dr, DBInstanceIdentifier=db), [])
        refused("DBInstanceAutomatedBackupNotFound", lambda: delete(DBInstanceAutomatedBackupsArn=first["DBInstanceAutomatedBackupsArn"]), 404)
        # The source's own automated backups go with the source (asked in its region).
        own = self.automated_backups(db)[0]["DBInstanceAutomatedBackupsArn"]
        refused("InvalidDBInstanceAutomatedBackupState", lambda: self.rds.delete_db_instance_automated_backup(DBInstanceAutomatedBackupsArn=own))
        # ... and restore by that ARN in their region, as by the instance's identifier.
        local = self.rds.restore_db_instance_to_point_in_time(SourceDBInstanceAutomatedBackupsArn=own, TargetDBInstanceIdentifier=f"{db}-own", UseLatestRestorableTime=True)
        self.assertEqual((local["DBInstance"]["DBInstanceStatus"], local["DBInstance"]["DBInstanceArn"]), ("creating", f"arn:aws:rds:us-east-1:123456789012:db:{db}-own"))

        # Deleting the source stops the replication: the replicated backups are retained.
        gone = self.db_instance()
        backup_arn = start(SourceDBInstanceArn=self.describe_db(gone)["DBInstanceArn"])["DBInstanceAutomatedBackup"]["DBInstanceAutomatedBackupsArn"]
        self.replicating(dr, backup_arn)
        self.rds.delete_db_instance(DBInstanceIdentifier=gone, SkipFinalSnapshot=True)
        self.assertEqual(self.replicated(dr, DBInstanceAutomatedBackupsArn=backup_arn)[0]["Status"], "retained")
        out = dr.restore_db_instance_to_point_in_time(SourceDBInstanceAutomatedBackupsArn=backup_arn, TargetDBInstanceIdentifier=f"{gone}-r", UseLatestRestorableTime=True)
        self.assertEqual(out["DBInstance"]["Engine"], "postgres")
        counted = stats()["refused"]
        self.assertGreaterEqual(counted["InvalidDBInstanceState"], 5)
        self.assertGreaterEqual(counted["InvalidDBInstanceAutomatedBackupState"], 2)

        # The layer off: moto 5.2.5 implements none of the three calls (HTTP 500), and lists nothing replicated.
        set_config({"enabled": False})
        for call in (
            lambda: start(SourceDBInstanceArn=arn),
            lambda: stop(SourceDBInstanceArn=arn),
            lambda: delete(DBInstanceAutomatedBackupsArn=backup_arn),
        ):
            with self.assertRaises(ResponseParserError) as ctx:  # moto's HTML error page, not RDS error XML
                call()
            self.assertIn("500 Internal Server Error", str(ctx.exception))
        listed = [b["DBInstanceIdentifier"] for b in self.replicated(dr)]  # moto's own entries: its DB instances there
        self.assertNotIn(gone, listed)
        self.assertIn(f"{gone}-r", listed)
        status, body = http("POST", "/_realism/config", {"replication_lag_seconds": -1})
        self.assertEqual(status, 400, body)

    # ---- EBS snapshot archive tier -------------------------------------------------------------

    def tier_status(self, snapshot_id: str) -> dict:
        filters = [{"Name": "snapshot-id", "Values": [snapshot_id]}]
        return self.ec2.describe_snapshot_tier_status(Filters=filters)["SnapshotTierStatuses"][0]

    def tier_settled(self, snapshot_id: str, timeout: float = PENDING + 2) -> dict:
        """The tier status once no archive or restore is in progress."""
        return wait_until(lambda: not (t := self.tier_status(snapshot_id))["LastTieringOperationStatus"].endswith("-in-progress") and t, timeout)

    def assertRefused(self, call, code: str = "IncorrectState") -> None:
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            call()
        self.assertCode(ctx, code, 400)

    def test_archive_is_pending_and_refused_in_the_wrong_state(self) -> None:
        vol = self.volume()
        sid = self.ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
        archive = lambda: self.ec2.modify_snapshot_tier(SnapshotId=sid, StorageTier="archive")  # noqa: E731
        self.assertRefused(archive)  # still pending
        wait_until(lambda: self.snapshot_state(sid)["State"] == "completed", PENDING + 2)
        started = archive()["TieringStartTime"]

        # While it is archived the snapshot stays in the standard tier and can still be used.
        self.assertEqual(self.snapshot_state(sid)["StorageTier"], "standard")
        mid = wait_until(lambda: (t := self.tier_status(sid))["LastTieringProgress"] > 0 and t)
        self.assertEqual((mid["StorageTier"], mid["LastTieringOperationStatus"]), ("standard", "archival-in-progress"))
        self.assertLess(mid["LastTieringProgress"], 100)
        self.assertNotIn("ArchivalCompleteTime", mid)
        self.assertRefused(archive)
        self.assertRefused(lambda: self.ec2.restore_snapshot_tier(SnapshotId=sid, TemporaryRestoreDays=1))
        self.ec2.create_volume(SnapshotId=sid, AvailabilityZone="us-east-1a")

        done = self.tier_settled(sid)
        self.assertEqual((done["StorageTier"], done["LastTieringOperationStatus"], done["LastTieringProgress"]), ("archive", "archival-completed", 100))
        self.assertGreaterEqual(done["ArchivalCompleteTime"], started)
        self.assertEqual(self.snapshot_state(sid)["StorageTier"], "archive")
        on_volume = {"Name": "volume-id", "Values": [vol]}
        by_tier = self.ec2.describe_snapshots(Filters=[on_volume, {"Name": "storage-tier", "Values": ["archive"]}])["Snapshots"]
        self.assertEqual([s["SnapshotId"] for s in by_tier], [sid])
        by_op = self.ec2.describe_snapshot_tier_status(Filters=[on_volume, {"Name": "last-tiering-operation", "Values": ["archival-completed"]}])
        self.assertEqual([s["SnapshotId"] for s in by_op["SnapshotTierStatuses"]], [sid])

        # Archived: not archived again, and not usable until restored.
        self.assertRefused(archive)
        self.assertRefused(lambda: self.ec2.create_volume(SnapshotId=sid, AvailabilityZone="us-east-1a"))
        self.assertRefused(lambda: client("ec2", "us-west-1").copy_snapshot(SourceSnapshotId=sid, SourceRegion="us-east-1"))
        counted = stats()
        self.assertGreaterEqual(counted["refused"]["IncorrectState"], 6)
        self.assertGreaterEqual(counted["pending"]["snapshot_archive"], 1)

    def test_tier_restore_is_pending_then_the_snapshot_is_usable(self) -> None:
        set_config({"pending": {"ebs_snapshot": 0, "snapshot_archive": 0}, "consistency": {"ebs_snapshot": 0}})
        vol = self.volume()
        never = self.ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
        self.assertRefused(lambda: self.ec2.restore_snapshot_tier(SnapshotId=never, TemporaryRestoreDays=1))
        sid = self.ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
        self.ec2.modify_snapshot_tier(SnapshotId=sid, StorageTier="archive")
        self.assertEqual(self.snapshot_state(sid)["StorageTier"], "archive")

        restore = self.ec2.restore_snapshot_tier(SnapshotId=sid, TemporaryRestoreDays=3)
        self.assertEqual((restore["RestoreDuration"], restore["IsPermanentRestore"]), (3, False))
        during = self.snapshot_state(sid)
        self.assertEqual(during["StorageTier"], "archive")
        self.assertNotIn("RestoreExpiryTime", during)
        self.assertEqual(self.tier_status(sid)["LastTieringOperationStatus"], "temporary-restore-in-progress")
        self.assertRefused(lambda: self.ec2.restore_snapshot_tier(SnapshotId=sid, TemporaryRestoreDays=3))
        self.assertRefused(lambda: self.ec2.create_volume(SnapshotId=sid, AvailabilityZone="us-east-1a"))

        done = self.tier_settled(sid)
        self.assertEqual((done["StorageTier"], done["LastTieringOperationStatus"]), ("standard", "temporary-restore-completed"))
        # Expiry = completion + the restore days (moto renders whole seconds).
        expected = restore["RestoreStartTime"] + timedelta(days=3, seconds=PENDING)
        self.assertLessEqual(abs((done["RestoreExpiryTime"] - expected).total_seconds()), 2)
        self.assertEqual(self.snapshot_state(sid)["RestoreExpiryTime"], done["RestoreExpiryTime"])
        self.ec2.create_volume(SnapshotId=sid, AvailabilityZone="us-east-1a")
        self.assertRefused(lambda: self.ec2.modify_snapshot_tier(SnapshotId=sid, StorageTier="archive"))
        # A temporarily restored snapshot takes a new restore period, from now and at once.
        again = self.ec2.restore_snapshot_tier(SnapshotId=sid, TemporaryRestoreDays=1)
        now = self.snapshot_state(sid)
        self.assertEqual(now["StorageTier"], "standard")
        self.assertLessEqual(abs((now["RestoreExpiryTime"] - (again["RestoreStartTime"] + timedelta(days=1))).total_seconds()), 2)
        # ... or becomes a permanent restore: no expiry, no archived copy, so it may be archived again.
        self.assertTrue(self.ec2.restore_snapshot_tier(SnapshotId=sid, PermanentRestore=True)["IsPermanentRestore"])
        status = self.tier_status(sid)
        self.assertEqual((status["StorageTier"], status["LastTieringOperationStatus"]), ("standard", "permanent-restore-completed"))
        self.assertNotIn("RestoreExpiryTime", status)
        self.assertRefused(lambda: self.ec2.restore_snapshot_tier(SnapshotId=sid, PermanentRestore=True))
        self.ec2.modify_snapshot_tier(SnapshotId=sid, StorageTier="archive")
        self.assertEqual(self.snapshot_state(sid)["StorageTier"], "archive")

    def test_archive_and_tier_restore_can_fail(self) -> None:
        fast = {"ebs_snapshot": 0, "snapshot_archive": 0.2, "snapshot_tier_restore": 0.2}
        set_config({"pending": fast, "consistency": {"ebs_snapshot": 0}, "errors": {"snapshot_archive": 1.0}})
        sid = self.ec2.create_snapshot(VolumeId=self.volume())["SnapshotId"]
        self.ec2.modify_snapshot_tier(SnapshotId=sid, StorageTier="archive")
        failed = self.tier_settled(sid)
        self.assertEqual((failed["StorageTier"], failed["LastTieringOperationStatus"]), ("standard", "archival-failed"))
        self.assertLess(failed["LastTieringProgress"], 100)
        self.ec2.create_volume(SnapshotId=sid, AvailabilityZone="us-east-1a")  # still in the standard tier
        # A failed archival may be tried again; a directive on the snapshot overrides the share.
        self.ec2.create_tags(Resources=[sid], Tags=[{"Key": "realism:archive-fate", "Value": "ok"}])
        self.ec2.modify_snapshot_tier(SnapshotId=sid, StorageTier="archive")
        self.assertEqual(self.tier_settled(sid)["LastTieringOperationStatus"], "archival-completed")

        # A directive on the volume: its snapshots archive fine, but their restores fail.
        set_config({"errors": None})
        bad = self.ec2.create_snapshot(VolumeId=self.volume(**{"realism:tier-restore-fate": "error"}))["SnapshotId"]
        self.ec2.modify_snapshot_tier(SnapshotId=bad, StorageTier="archive")
        self.assertEqual(self.tier_settled(bad)["LastTieringOperationStatus"], "archival-completed")
        self.ec2.restore_snapshot_tier(SnapshotId=bad, TemporaryRestoreDays=1)
        restore = self.tier_settled(bad)
        self.assertEqual((restore["StorageTier"], restore["LastTieringOperationStatus"]), ("archive", "temporary-restore-failed"))
        self.assertNotIn("RestoreExpiryTime", restore)
        self.assertRefused(lambda: self.ec2.create_volume(SnapshotId=bad, AvailabilityZone="us-east-1a"))
        counted = stats()["failed"]
        self.assertGreaterEqual(counted["snapshot_archive"], 1)
        self.assertGreaterEqual(counted["snapshot_tier_restore"], 1)

    def test_archive_tier_is_moto_s_own_when_the_layer_is_off(self) -> None:
        set_config({"pending": {"ebs_snapshot": 0}, "consistency": {"ebs_snapshot": 0}})
        sid = self.ec2.create_snapshot(VolumeId=self.volume())["SnapshotId"]
        self.ec2.modify_snapshot_tier(SnapshotId=sid, StorageTier="archive")
        self.assertEqual(self.tier_status(sid)["LastTieringOperationStatus"], "archival-in-progress")
        set_config({"enabled": False})
        # moto: instant, no state checks; the archival in progress gives way to it.
        self.ec2.modify_snapshot_tier(SnapshotId=sid, StorageTier="archive")
        status = self.tier_status(sid)
        self.assertEqual((status["StorageTier"], status["LastTieringOperationStatus"]), ("archive", "archival-completed"))
        self.ec2.create_volume(SnapshotId=sid, AvailabilityZone="us-east-1a")

    # ---- RDS snapshot exports ------------------------------------------------------------------

    ROLE = "arn:aws:iam::123456789012:role/rds-s3-export"
    KEY = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    # Source snapshots complete, and are visible, at once; exports keep the baseline timing.
    INSTANT_SNAPSHOTS = {
        "pending": {"rds_snapshot": 0, "rds_cluster_snapshot": 0},
        "consistency": {"rds_snapshot": 0, "rds_cluster_snapshot": 0},
    }

    def db_snapshot(self, rds=None, db_tags: dict[str, str] | None = None, snap_tags: dict[str, str] | None = None) -> str:
        """A DB instance (20 GiB) and a snapshot of it; the snapshot's ARN."""
        rds = rds or self.rds
        db = f"db-{uid()}"
        rds.create_db_instance(
            DBInstanceIdentifier=db,
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            MasterUsername="admin",
            MasterUserPassword="password1",
            AllocatedStorage=20,
            Tags=[{"Key": k, "Value": v} for k, v in (db_tags or {}).items()],
        )
        snap_kwargs = {"Tags": [{"Key": k, "Value": v} for k, v in snap_tags.items()]} if snap_tags else {}
        return rds.create_db_snapshot(DBInstanceIdentifier=db, DBSnapshotIdentifier=f"{db}-s", **snap_kwargs)["DBSnapshot"]["DBSnapshotArn"]

    def export(self, task_id: str, source_arn: str, bucket_name: str, rds=None, **kwargs) -> dict:
        params = dict(ExportTaskIdentifier=task_id, SourceArn=source_arn, S3BucketName=bucket_name, IamRoleArn=self.ROLE, KmsKeyId=self.KEY)
        params.update(kwargs)
        out = (rds or self.rds).start_export_task(**params)
        out.pop("ResponseMetadata", None)
        return out

    def export_task(self, task_id: str, rds=None) -> dict:
        return (rds or self.rds).describe_export_tasks(ExportTaskIdentifier=task_id)["ExportTasks"][0]

    def export_settled(self, task_id: str, rds=None, timeout: float = PENDING + 2) -> dict:
        """The export task once it is no longer STARTING, IN_PROGRESS or CANCELING."""
        busy = ("STARTING", "IN_PROGRESS", "CANCELING")
        return wait_until(lambda: (t := self.export_task(task_id, rds))["Status"] not in busy and t, timeout)

    def test_rds_export_starts_then_progresses_then_completes(self) -> None:
        set_config(self.INSTANT_SNAPSHOTS)
        b = bucket()
        arn = self.db_snapshot()
        task = f"ex-{uid()}"
        out = self.export(task, arn, b)
        self.assertEqual((out["Status"], out["PercentProgress"], out["TotalExtractedDataInGB"], out["SourceType"]), ("STARTING", 0, 0, "SNAPSHOT"))
        self.assertNotIn("TaskEndTime", out)
        self.assertIn("TaskStartTime", out)
        mid = wait_until(lambda: (t := self.export_task(task))["Status"] == "IN_PROGRESS" and t["PercentProgress"] > 0 and t)
        self.assertLess(mid["PercentProgress"], 100)
        self.assertLessEqual(mid["TotalExtractedDataInGB"], 20)
        done = self.export_settled(task)
        self.assertEqual((done["Status"], done["PercentProgress"], done["TotalExtractedDataInGB"]), ("COMPLETE", 100, 20))
        self.assertGreater(done["TaskEndTime"], done["TaskStartTime"])
        self.assertNotIn("FailureCause", done)

        # A DB cluster snapshot exports the same way.
        cluster = self.db_cluster()
        cs_arn = self.rds.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=f"{cluster}-s")["DBClusterSnapshot"]["DBClusterSnapshotArn"]
        cl_task = f"ex-{uid()}"
        out = self.export(cl_task, cs_arn, b)
        self.assertEqual((out["Status"], out["SourceType"]), ("STARTING", "CLUSTER"))
        # DescribeExportTasks selects by SourceArn and by the status filter (lower case), which moto ignores.
        self.assertEqual([t["ExportTaskIdentifier"] for t in self.rds.describe_export_tasks(SourceArn=cs_arn)["ExportTasks"]], [cl_task])
        complete = [t["ExportTaskIdentifier"] for t in self.rds.describe_export_tasks(Filters=[{"Name": "status", "Values": ["complete"]}])["ExportTasks"]]
        self.assertIn(task, complete)
        self.assertNotIn(cl_task, complete)
        self.assertEqual(self.export_settled(cl_task)["Status"], "COMPLETE")
        self.assertGreaterEqual(stats()["pending"]["rds_export"], 2)

    def test_rds_export_can_fail_by_share_and_directive(self) -> None:
        set_config({"pending": dict(self.INSTANT_SNAPSHOTS["pending"], rds_export=0.2), "consistency": self.INSTANT_SNAPSHOTS["consistency"], "errors": {"rds_export": 1.0}})
        b = bucket()
        failing = f"ex-{uid()}"
        self.export(failing, self.db_snapshot(), b)
        # A directive on the snapshot wins over the share.
        saved = f"ex-{uid()}"
        self.export(saved, self.db_snapshot(snap_tags={"realism:export-fate": "ok"}), b)
        set_config({"errors": None})
        # A directive on the DB instance: its snapshots are fine, their exports fail.
        by_db = f"ex-{uid()}"
        arn = self.db_snapshot(db_tags={"realism:export-fate": "error"})
        self.assertEqual(self.rds.describe_db_snapshots(DBSnapshotIdentifier=arn.split(":")[-1])["DBSnapshots"][0]["Status"], "available")
        self.export(by_db, arn, b)
        for task in (failing, by_db):
            failed = self.export_settled(task)
            self.assertEqual(failed["Status"], "FAILED", failed)
            self.assertIn("simulated by the emulator realism layer", failed["FailureCause"])
            self.assertLess(failed["PercentProgress"], 100)
            self.assertIn("TaskEndTime", failed)
        self.assertEqual(self.export_settled(saved)["Status"], "COMPLETE")
        self.assertGreaterEqual(stats()["failed"]["rds_export"], 2)

    def test_rds_export_refusals(self) -> None:
        set_config(self.INSTANT_SNAPSHOTS)
        east, west = bucket(), bucket("us-west-2")
        arn = self.db_snapshot()
        pending = self.db_snapshot(snap_tags={"realism:pending-seconds": "30"})
        failed = self.db_snapshot(snap_tags={"realism:fate": "error"})

        def refused(code: str, status: int, call) -> botocore.exceptions.ClientError:
            with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                call()
            self.assertCode(ctx, code, status)
            return ctx.exception

        def start(source: str, bucket_name: str = east, task: str | None = None):
            return lambda: self.export(task or f"ex-{uid()}", source, bucket_name)

        # The source snapshot must be available (moto checks this too; the layer counts it).
        e = refused("InvalidExportSourceState", 400, start(pending))
        self.assertIsInstance(e, self.rds.exceptions.InvalidExportSourceStateFault)
        self.assertIn("creating", e.response["Error"]["Message"])
        self.assertIn("failed", refused("InvalidExportSourceState", 400, start(failed)).response["Error"]["Message"])
        # The bucket must exist, in the snapshot's region.
        e = refused("InvalidS3BucketFault", 400, start(arn, f"no-such-{uid()}"))
        self.assertIsInstance(e, self.rds.exceptions.InvalidS3BucketFault)
        self.assertIn("us-west-2", refused("InvalidS3BucketFault", 400, start(arn, west)).response["Error"]["Message"])
        # IamRoleArn and KmsKeyId are required: botocore checks before sending, a raw request is refused.
        with self.assertRaises(botocore.exceptions.ParamValidationError):
            self.rds.start_export_task(ExportTaskIdentifier=f"ex-{uid()}", SourceArn=arn, S3BucketName=east, IamRoleArn=self.ROLE)
        raw = boto3.client(
            "rds",
            region_name="us-east-1",
            endpoint_url=URL,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(parameter_validation=False, retries={"total_max_attempts": 1}),
        )
        for missing in ("IamRoleArn", "KmsKeyId"):
            params = dict(ExportTaskIdentifier=f"ex-{uid()}", SourceArn=arn, S3BucketName=east, IamRoleArn=self.ROLE, KmsKeyId=self.KEY)
            del params[missing]
            e = refused("MissingParameter", 400, lambda: raw.start_export_task(**params))
            self.assertIn(missing, e.response["Error"]["Message"])
        refused("MissingParameter", 400, lambda: self.export(f"ex-{uid()}", arn, east, KmsKeyId=""))  # botocore lets "" through
        # An unknown source is moto's DBSnapshotNotFound.
        refused("DBSnapshotNotFound", 404, start(arn.rsplit(":", 1)[0] + ":no-such-snapshot"))

        task = f"ex-{uid()}"
        self.assertEqual(self.export(task, arn, east)["Status"], "STARTING")
        # The same identifier again (moto's check), and another export of a snapshot being exported.
        refused("ExportTaskAlreadyExists", 400, start(arn, task=task))
        self.assertIn("still", refused("ExportTaskAlreadyExists", 400, start(arn)).response["Error"]["Message"])
        # Nothing refused was created.
        self.assertEqual([t["ExportTaskIdentifier"] for t in self.rds.describe_export_tasks(SourceArn=arn)["ExportTasks"]], [task])
        counted = stats()["refused"]
        self.assertGreaterEqual(counted["InvalidExportSourceState"], 2)
        self.assertGreaterEqual(counted["InvalidS3BucketFault"], 2)
        self.assertGreaterEqual(counted["MissingParameter"], 3)
        self.assertGreaterEqual(counted["ExportTaskAlreadyExists"], 1)
        # Once that export is done, the snapshot can be exported again.
        self.export_settled(task)
        self.export(f"ex-{uid()}", arn, east)

    def test_rds_export_cancel_is_canceling_then_canceled(self) -> None:
        set_config(self.INSTANT_SNAPSHOTS)
        b = bucket()
        arn = self.db_snapshot()
        task = f"ex-{uid()}"
        self.export(task, arn, b)
        wait_until(lambda: (t := self.export_task(task))["Status"] == "IN_PROGRESS" and t["PercentProgress"] > 0 and t)
        canceling = self.rds.cancel_export_task(ExportTaskIdentifier=task)
        self.assertEqual(canceling["Status"], "CANCELING")
        self.assertNotIn("TaskEndTime", canceling)
        # A second cancel while it is CANCELING is answered as it is.
        self.assertEqual(self.rds.cancel_export_task(ExportTaskIdentifier=task)["Status"], "CANCELING")
        canceled = self.export_settled(task, timeout=CANCEL + 2)
        self.assertEqual((canceled["Status"], canceled["PercentProgress"]), ("CANCELED", canceling["PercentProgress"]))
        self.assertIn("TaskEndTime", canceled)
        time.sleep(PENDING)  # past the export's own pending time: still CANCELED
        self.assertEqual(self.export_task(task)["Status"], "CANCELED")

        def refused(code: str, status: int, task_id: str) -> None:
            with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                self.rds.cancel_export_task(ExportTaskIdentifier=task_id)
            self.assertCode(ctx, code, status)

        refused("InvalidExportTaskStateFault", 400, task)
        # A completed export cannot be canceled either (an export-pending-seconds directive: at once).
        done = f"ex-{uid()}"
        self.assertEqual(self.export(done, self.db_snapshot(snap_tags={"realism:export-pending-seconds": "0"}), b)["Status"], "COMPLETE")
        refused("InvalidExportTaskStateFault", 400, done)
        refused("ExportTaskNotFound", 404, f"ex-{uid()}")
        # A canceled export no longer holds its snapshot.
        self.export(f"ex-{uid()}", arn, b)
        self.assertGreaterEqual(stats()["refused"]["InvalidExportTaskStateFault"], 2)

    def test_sixth_rds_export_in_progress_in_a_region_is_refused(self) -> None:
        region = "eu-north-1"
        rds = client("rds", region)
        set_config(self.INSTANT_SNAPSHOTS)
        b = bucket(region)
        db = f"db-{uid()}"
        rds.create_db_instance(
            DBInstanceIdentifier=db,
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            MasterUsername="admin",
            MasterUserPassword="password1",
            AllocatedStorage=20,
            Tags=[{"Key": "realism:export-pending-seconds", "Value": "5"}],
        )
        arns = [rds.create_db_snapshot(DBInstanceIdentifier=db, DBSnapshotIdentifier=f"{db}-s{i}")["DBSnapshot"]["DBSnapshotArn"] for i in range(6)]
        tasks = [f"ex-{uid()}" for _ in range(6)]
        for task, arn in zip(tasks[:5], arns[:5]):
            self.export(task, arn, b, rds)

        def sixth_refused() -> None:
            with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                self.export(tasks[5], arns[5], b, rds)
            self.assertCode(ctx, "SnapshotQuotaExceeded", 400)

        sixth_refused()
        self.assertEqual(stats()["in_flight"]["exports_by_region"][f"123456789012/{region}"], 5)
        # Another region has its own quota.
        self.export(f"ex-{uid()}", self.db_snapshot(), bucket())
        # A canceled export holds its slot until it is CANCELED.
        rds.cancel_export_task(ExportTaskIdentifier=tasks[0])
        sixth_refused()
        self.assertEqual(self.export_settled(tasks[0], rds, timeout=CANCEL + 2)["Status"], "CANCELED")
        self.assertEqual(self.export(tasks[5], arns[5], b, rds)["Status"], "STARTING")
        self.assertGreaterEqual(stats()["refused"]["SnapshotQuotaExceeded"], 2)

    def export_keys(self, bucket_name: str, prefix: str) -> list[str]:
        listed = client("s3").list_objects_v2(Bucket=bucket_name, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def test_rds_export_writes_its_files_to_the_bucket_when_complete(self) -> None:
        set_config(self.INSTANT_SNAPSHOTS)
        s3 = client("s3")
        b = bucket()
        s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
        task = f"ex-{uid()}"
        self.export(task, self.db_snapshot(), b, S3Prefix="_rds-exports")
        base = f"_rds-exports/{task}/"
        # Nothing while it runs.
        wait_until(lambda: self.export_task(task)["Status"] == "IN_PROGRESS")
        self.assertEqual(self.export_keys(b, base), [])
        done = self.export_settled(task)
        self.assertEqual(done["Status"], "COMPLETE")
        keys = self.export_keys(b, base)
        self.assertEqual(len(keys), 3, keys)
        self.assertEqual(keys[:2], [f"{base}export_info_{task}.json", f"{base}export_tables_info_{task}_from_1_to_1.json"])
        # The DB has no DBName: a PostgreSQL export's database is `postgres`, the table in `public`.
        data = keys[2]
        self.assertTrue(data.startswith(f"{base}postgres/public.realism_export/1/part-00000-") and data.endswith(".gz.parquet"), data)
        uuid.UUID(data[len(f"{base}postgres/public.realism_export/1/part-00000-") : -len(".gz.parquet")])
        info = json.loads(s3.get_object(Bucket=b, Key=keys[0])["Body"].read())
        self.assertEqual((info["exportTaskIdentifier"], info["status"], info["s3Prefix"], info["s3Bucket"]), (task, "COMPLETE", "_rds-exports", b))
        self.assertEqual(info["totalExportedDataInGB"], 20)
        tables = json.loads(s3.get_object(Bucket=b, Key=keys[1])["Body"].read())
        self.assertEqual(tables["perTableStatus"][0]["target"], "postgres.public.realism_export")
        self.assertIn(b"Not Parquet", s3.get_object(Bucket=b, Key=data)["Body"].read())
        # Encrypted with the export's KMS key; written by the time the task says it ended.
        head = s3.head_object(Bucket=b, Key=data)
        self.assertEqual((head["ServerSideEncryption"], head["SSEKMSKeyId"]), ("aws:kms", self.KEY))
        self.assertLessEqual(head["LastModified"], done["TaskEndTime"])
        # Idempotent: more reads of the complete task write nothing more (one version per key).
        for _ in range(3):
            self.export_task(task)
            self.rds.describe_export_tasks(Filters=[{"Name": "status", "Values": ["complete"]}])
        versions = s3.list_object_versions(Bucket=b, Prefix=base).get("Versions", [])
        self.assertEqual(sorted(v["Key"] for v in versions), keys)

        # No S3Prefix: directly under `<ExportTaskIdentifier>/`. S3 finds the files on its own once the
        # export is due, without a DescribeExportTasks in between; a DB cluster snapshot with an
        # ExportOnly table names the database, schema and table.
        cluster = self.db_cluster()
        cs_arn = self.rds.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=f"{cluster}-s")["DBClusterSnapshot"]["DBClusterSnapshotArn"]
        bare = f"ex-{uid()}"
        self.assertEqual(self.export(bare, cs_arn, b, ExportOnly=["appdb.sales.orders"])["Status"], "STARTING")
        time.sleep(PENDING + 0.2)
        keys = self.export_keys(b, f"{bare}/")
        self.assertEqual(len(keys), 3, keys)
        self.assertEqual(keys[1:], [f"{bare}/export_info_{bare}.json", f"{bare}/export_tables_info_{bare}_from_1_to_1.json"])
        self.assertTrue(keys[0].startswith(f"{bare}/appdb/sales.orders/1/part-00000-"), keys[0])
        self.assertEqual(self.export_task(bare)["Status"], "COMPLETE")
        self.assertEqual(self.export_keys(b, f"{bare}/"), keys)

    def test_failed_or_canceled_rds_export_writes_nothing(self) -> None:
        set_config({"pending": dict(self.INSTANT_SNAPSHOTS["pending"], rds_export=0.3), "consistency": self.INSTANT_SNAPSHOTS["consistency"]})
        b = bucket()
        failing = f"ex-{uid()}"
        self.export(failing, self.db_snapshot(snap_tags={"realism:export-fate": "error"}), b, S3Prefix="exports")
        canceled = f"ex-{uid()}"
        self.export(canceled, self.db_snapshot(snap_tags={"realism:export-pending-seconds": "30"}), b, S3Prefix="exports")
        self.rds.cancel_export_task(ExportTaskIdentifier=canceled)
        self.assertEqual(self.export_settled(failing)["Status"], "FAILED")
        self.assertEqual(self.export_settled(canceled, timeout=CANCEL + 2)["Status"], "CANCELED")
        self.assertEqual(self.export_keys(b, ""), [])

    def test_rds_export_is_moto_s_own_when_the_layer_is_off(self) -> None:
        set_config(self.INSTANT_SNAPSHOTS)
        b = bucket()
        arn = self.db_snapshot()
        tracked = f"ex-{uid()}"
        self.assertEqual(self.export(tracked, arn, b)["Status"], "STARTING")
        set_config({"enabled": False})
        # moto: no checks (another export of the snapshot, a bucket that does not exist), complete at once.
        untracked = f"ex-{uid()}"
        out = self.export(untracked, arn, f"no-such-{uid()}")
        self.assertEqual(out["Status"], "complete")
        self.assertNotIn("PercentProgress", out)
        # moto's cancel: at once, also of a task the layer was running, and of a complete one.
        for task in (tracked, untracked):
            self.assertEqual(self.rds.cancel_export_task(ExportTaskIdentifier=task)["Status"], "canceled")
            self.assertNotIn("PercentProgress", self.export_task(task))
        status, body = http("POST", "/_realism/config", {"export_cancel_seconds": -1})
        self.assertEqual(status, 400, body)
        status, body = http("POST", "/_realism/config", {"quotas": {"rds_exports_per_region": -1}})
        self.assertEqual(status, 400, body)

    # ---- quotas --------------------------------------------------------------------------------

    def test_sixth_pending_snapshot_of_a_volume_is_refused(self) -> None:
        vol = self.volume(**{"realism:pending-seconds": "1.5"})
        for _ in range(5):
            self.ec2.create_snapshot(VolumeId=vol)
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.ec2.create_snapshot(VolumeId=vol)
        self.assertCode(ctx, "ConcurrentSnapshotLimitExceeded", 400)
        other = self.volume()
        self.ec2.create_snapshot(VolumeId=other)  # another volume is not affected
        time.sleep(1.6)
        self.ec2.create_snapshot(VolumeId=vol)  # the five completed: room again

    def test_volume_quota_holds_under_concurrent_requests(self) -> None:
        # A smoke check: moto answers too fast for this to catch a missing lock reliably (the
        # check-and-create is atomic by construction: emulator_realism holds a lock across it).
        region = "ca-central-1"
        ec2 = client("ec2", region)
        vol = self.volume(ec2, f"{region}a", **{"realism:pending-seconds": "2"})

        clients = [client("ec2", region) for _ in range(12)]  # boto3 client creation is not thread-safe

        def attempt(c) -> str:
            try:
                c.create_snapshot(VolumeId=vol)
                return "ok"
            except botocore.exceptions.ClientError as e:
                return e.response["Error"]["Code"]

        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(attempt, clients))
        self.assertEqual(answers.count("ok"), 5, answers)
        self.assertEqual(answers.count("ConcurrentSnapshotLimitExceeded"), 7, answers)

    def test_failed_snapshots_count_against_the_volume_until_deleted(self) -> None:
        vol = self.volume(**{"realism:pending-seconds": "0", "realism:consistency-seconds": "0", "realism:fate": "error"})
        ids = [self.ec2.create_snapshot(VolumeId=vol)["SnapshotId"] for _ in range(5)]
        self.assertEqual(self.snapshot_state(ids[0])["State"], "error")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.ec2.create_snapshot(VolumeId=vol)
        self.assertCode(ctx, "ConcurrentSnapshotLimitExceeded", 400)
        self.ec2.delete_snapshot(SnapshotId=ids[0])
        self.ec2.create_snapshot(VolumeId=vol)

    def test_twenty_first_ebs_copy_into_a_region_is_refused(self) -> None:
        dest = client("ec2", "eu-central-1")
        vol = self.volume()
        src = self.ec2.create_snapshot(
            VolumeId=vol,
            TagSpecifications=tags("snapshot", **{"realism:pending-seconds": "0", "realism:consistency-seconds": "0", "realism:copy-pending-seconds": "2"}),
        )["SnapshotId"]
        for _ in range(20):
            dest.copy_snapshot(SourceSnapshotId=src, SourceRegion="us-east-1")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            dest.copy_snapshot(SourceSnapshotId=src, SourceRegion="us-east-1")
        self.assertCode(ctx, "ResourceLimitExceeded", 400)
        # Another destination region has its own quota.
        client("ec2", "eu-west-1").copy_snapshot(SourceSnapshotId=src, SourceRegion="us-east-1")
        self.assertGreaterEqual(stats()["refused"]["ResourceLimitExceeded"], 1)

    def test_sixth_rds_cluster_copy_into_a_region_is_refused(self) -> None:
        dest = client("rds", "eu-west-2")
        cluster = f"cl-{uid()}"
        self.rds.create_db_cluster(
            DBClusterIdentifier=cluster,
            Engine="aurora-postgresql",
            MasterUsername="admin",
            MasterUserPassword="password1",
            Tags=[{"Key": "realism:pending-seconds", "Value": "0"}, {"Key": "realism:consistency-seconds", "Value": "0"}, {"Key": "realism:copy-pending-seconds", "Value": "2"}],
        )
        arn = self.rds.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=f"{cluster}-s")["DBClusterSnapshot"]["DBClusterSnapshotArn"]
        for i in range(5):
            dest.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier=f"{cluster}-c{i}", SourceRegion="us-east-1")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            dest.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier=f"{cluster}-c5", SourceRegion="us-east-1")
        self.assertCode(ctx, "SnapshotQuotaExceeded", 400)

    def test_rds_db_snapshot_copies_over_quota_are_refused(self) -> None:
        dest = client("rds", "ap-northeast-1")
        set_config({"quotas": {"rds_copies_per_region": 3}})
        db = f"db-{uid()}"
        self.rds.create_db_instance(
            DBInstanceIdentifier=db,
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            MasterUsername="admin",
            MasterUserPassword="password1",
            AllocatedStorage=20,
            Tags=[{"Key": "realism:pending-seconds", "Value": "0"}, {"Key": "realism:copy-pending-seconds", "Value": "2"}],
        )
        arn = self.rds.create_db_snapshot(DBInstanceIdentifier=db, DBSnapshotIdentifier=f"{db}-s")["DBSnapshot"]["DBSnapshotArn"]
        for i in range(3):
            dest.copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier=f"{db}-Copy{i}", SourceRegion="us-east-1")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            dest.copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier=f"{db}-Copy3", SourceRegion="us-east-1")
        self.assertCode(ctx, "SnapshotQuotaExceeded", 400)

    def test_create_snapshot_rate_is_throttled_with_503(self) -> None:
        region = "ap-southeast-2"
        ec2 = client("ec2", region)
        set_config({"quotas": {"create_snapshot_rate": 2, "create_snapshot_burst": 4}})
        vols = [self.volume(ec2, f"{region}a") for _ in range(3)]
        answers = []
        for i in range(8):
            try:
                ec2.create_snapshot(VolumeId=vols[i % 3])
                answers.append("ok")
            except botocore.exceptions.ClientError as e:
                self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 503)
                answers.append(e.response["Error"]["Code"])
        self.assertEqual(answers[:4], ["ok"] * 4)
        self.assertIn("RequestLimitExceeded", answers[4:])
        time.sleep(0.6)  # 2 tokens a second: one more call is allowed again
        ec2.create_snapshot(VolumeId=vols[0])
        # The SDK's standard retry mode retries RequestLimitExceeded by itself.
        self.assertGreaterEqual(stats()["refused"]["RequestLimitExceeded"], 1)

    # ---- SQS -----------------------------------------------------------------------------------

    def queue(self, **attributes: str) -> str:
        return self.sqs.create_queue(QueueName=f"q-{uid()}", Attributes=attributes)["QueueUrl"]

    def receive(self, url: str, visibility: int = VISIBILITY) -> dict[str, str]:
        """Body -> receipt handle of the visible messages (moto answers them all in one call)."""
        messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=visibility, WaitTimeSeconds=0).get("Messages", [])
        return {m["Body"]: m["ReceiptHandle"] for m in messages}

    def depth(self, url: str) -> tuple[int, int]:
        """(visible, in flight) messages of the queue."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return int(attrs[names[0]]), int(attrs[names[1]])

    def send_batch(self, url: str, bodies: list[str], **attributes: str) -> dict:
        attrs = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
        entries = [dict({"Id": str(i), "MessageBody": b}, **({"MessageAttributes": attrs} if attrs else {})) for i, b in enumerate(bodies)]
        return self.sqs.send_message_batch(QueueUrl=url, Entries=entries)

    def test_sqs_only_the_newest_receipt_handle_works(self) -> None:
        url = self.queue()
        dlq = self.queue()
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redriven = self.queue(RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}))
        for body in "abc":
            self.sqs.send_message(QueueUrl=url, MessageBody=body)
        self.sqs.send_message(QueueUrl=redriven, MessageBody="r")
        first, first_r = self.receive(url), self.receive(redriven)
        self.assertEqual(sorted(first), ["a", "b", "c"])
        time.sleep(VISIBILITY + 0.15)
        second, second_r = self.receive(url, visibility=30), self.receive(redriven)
        self.assertEqual(sorted(second), ["a", "b", "c"])
        self.assertNotEqual(first["a"], second["a"])
        self.assertEqual(list(second_r), ["r"])

        # ChangeMessageVisibility with an older handle: refused, as AWS does.
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["a"], VisibilityTimeout=5)
        self.assertCode(ctx, "InvalidParameterValue", 400)
        self.assertEqual(
            ctx.exception.response["Error"]["Message"],
            f"Value {first['a']} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.",
        )
        # ... and in a batch only the stale entry fails, with moto's shape of a failed entry.
        out = self.sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": "stale", "ReceiptHandle": first["b"], "VisibilityTimeout": 5},
                {"Id": "newest", "ReceiptHandle": second["c"], "VisibilityTimeout": VISIBILITY},
            ],
        )
        self.assertEqual([e["Id"] for e in out["Successful"]], ["newest"])
        self.assertEqual([(f["Id"], f["Code"], f["SenderFault"]) for f in out["Failed"]], [("stale", "InvalidParameterValue", True)])
        self.assertIn("not available for visibility timeout change", out["Failed"][0]["Message"])

        # DeleteMessage(Batch) with an older handle: answers OK, deletes nothing.
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=first["a"])
        out = self.sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "b", "ReceiptHandle": first["b"]}, {"Id": "c", "ReceiptHandle": first["c"]}])
        self.assertEqual(sorted(e["Id"] for e in out["Successful"]), ["b", "c"])
        self.assertEqual(out.get("Failed", []), [])
        self.sqs.delete_message(QueueUrl=redriven, ReceiptHandle=first_r["r"])
        self.assertEqual(self.depth(url), (0, 3))
        self.assertEqual(self.depth(redriven), (0, 1))

        # The newest handle works, single and batch.
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=second["a"])
        out = self.sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "b", "ReceiptHandle": second["b"]}])
        self.assertEqual([e["Id"] for e in out["Successful"]], ["b"])
        self.assertEqual(self.depth(url), (0, 1))
        # Handles of a deleted message answer as in moto: deleting again is fine, a visibility
        # change is ReceiptHandleIsInvalid.
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=first["a"])
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=second["a"])
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=second["a"], VisibilityTimeout=5)
        self.assertCode(ctx, "ReceiptHandleIsInvalid", 400)

        # A message whose stale delete was ignored comes back when its visibility lapses...
        time.sleep(VISIBILITY + 0.15)
        third = self.receive(url)
        self.assertEqual(list(third), ["c"])
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=third["c"])
        self.assertEqual(self.depth(url), (0, 0))
        # ... and after maxReceiveCount receives the redrive policy moves it to the DLQ.
        self.assertEqual(self.receive(redriven), {})
        self.assertEqual(list(self.receive(dlq)), ["r"])
        counted = stats()["stale_receipt_handles"]
        self.assertGreaterEqual(counted["ChangeMessageVisibility"], 2)
        self.assertGreaterEqual(counted["DeleteMessage"], 4)

    def test_sqs_stale_receipt_handles_can_be_switched_off(self) -> None:
        set_config({"sqs": {"stale_receipt_handles": False}})
        url = self.queue()
        for body in "ab":
            self.sqs.send_message(QueueUrl=url, MessageBody=body)
        first = self.receive(url)
        time.sleep(VISIBILITY + 0.15)
        self.assertEqual(sorted(self.receive(url, visibility=30)), ["a", "b"])
        # moto's own behaviour: any handle the message ever had works.
        self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["a"], VisibilityTimeout=20)
        out = self.sqs.change_message_visibility_batch(QueueUrl=url, Entries=[{"Id": "b", "ReceiptHandle": first["b"], "VisibilityTimeout": 20}])
        self.assertEqual([e["Id"] for e in out["Successful"]], ["b"])
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=first["a"])
        out = self.sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "b", "ReceiptHandle": first["b"]}])
        self.assertEqual([e["Id"] for e in out["Successful"]], ["b"])
        self.assertEqual(self.depth(url), (0, 0))

    def test_sqs_send_message_batch_total_size_is_limited(self) -> None:
        url = self.queue()
        kb100 = "x" * 100_000
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.send_batch(url, [kb100] * 3)
        self.assertIsInstance(ctx.exception, self.sqs.exceptions.BatchRequestTooLong)
        # boto3 reports the query-compatible code (x-amzn-query-error), as it does against AWS.
        self.assertCode(ctx, "AWS.SimpleQueueService.BatchRequestTooLong", 400)
        self.assertEqual(ctx.exception.response["Error"]["QueryErrorCode"], "BatchRequestTooLong")
        self.assertEqual(ctx.exception.response["Error"]["Message"], "Batch requests cannot be longer than 262144 bytes. You have sent 300000 bytes.")
        self.assertEqual(self.depth(url), (0, 0))  # the whole call is refused
        self.assertEqual(len(self.send_batch(url, [kb100] * 2)["Successful"]), 2)
        self.assertEqual(self.depth(url), (2, 0))

        # UTF-8 bytes are counted, not characters: 2 x 70,000 "é" is 280,000 bytes.
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.send_batch(url, ["é" * 70_000] * 2)
        self.assertCode(ctx, "AWS.SimpleQueueService.BatchRequestTooLong", 400)
        # Message attributes count (name, data type, value): 2 x (131,000 + 3 + 6 + 100) > 262,144.
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.send_batch(url, ["y" * 131_000] * 2, pad="v" * 100)
        self.assertCode(ctx, "AWS.SimpleQueueService.BatchRequestTooLong", 400)
        self.assertEqual(len(self.send_batch(url, ["y" * 131_000] * 2)["Successful"]), 2)
        # The per-message limit is moto's own (MaximumMessageSize, 1 MiB by default in moto 5.2.5).
        self.sqs.send_message(QueueUrl=url, MessageBody="z" * 300_000)
        self.assertEqual(self.depth(url), (5, 0))

        # The query protocol (XML) and the JSON protocol's headers, as the SDKs parse them.
        auth = "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0"
        form = {f"SendMessageBatchRequestEntry.{i}.{k}": v for i in (1, 2, 3) for k, v in (("Id", str(i)), ("MessageBody", kb100))}
        status, body = http(
            "POST",
            "/",
            raw=urllib.parse.urlencode(dict(Action="SendMessageBatch", Version="2012-11-05", QueueUrl=url, **form)).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth},
        )
        self.assertEqual(status, 400, body)
        self.assertRegex(body.decode(), r"^<ErrorResponse[^>]*><Error><Type>Sender</Type><Code>AWS\.SimpleQueueService\.BatchRequestTooLong</Code><Message>Batch requests cannot be longer than 262144 bytes")
        status, headers, body = http_full(
            "POST",
            "/",
            {"QueueUrl": url, "Entries": [{"Id": str(i), "MessageBody": kb100} for i in range(3)]},
            headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessageBatch", "Authorization": auth},
        )
        self.assertEqual(status, 400, body)
        self.assertEqual(headers.get("x-amzn-query-error"), "AWS.SimpleQueueService.BatchRequestTooLong;Sender")
        self.assertEqual(json.loads(body)["__type"], "com.amazonaws.sqs#BatchRequestTooLong")
        self.assertEqual(self.depth(url), (5, 0))

        # Configurable: 0 = no limit of the layer's own (moto's 1 MiB check on bodies remains).
        set_config({"sqs": {"batch_request_limit_bytes": 0}})
        self.assertEqual(len(self.send_batch(url, [kb100] * 3)["Successful"]), 3)
        set_config({"sqs": {"enabled": False, "batch_request_limit_bytes": 1000}})
        self.assertEqual(len(self.send_batch(url, [kb100] * 3)["Successful"]), 3)
        self.assertGreaterEqual(stats()["refused"]["BatchRequestTooLong"], 5)

    # ---- accounts: AssumeRole refusals, snapshots shared with another account -------------------

    def test_assume_role_is_refused_for_denied_role_names(self) -> None:
        sts = client("sts")
        for name in ("untrusted-x", "team/untrusted-y"):
            with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                sts.assume_role(RoleArn=role_arn(SOURCE_ACCOUNT, name), RoleSessionName="realism-test")
            self.assertCode(ctx, "AccessDenied", 403)
            self.assertEqual(
                ctx.exception.response["Error"]["Message"],
                f"User: arn:aws:sts::123456789012:user/moto is not authorized to perform: sts:AssumeRole on resource: {role_arn(SOURCE_ACCOUNT, name)}",
            )
        # The caller is named by its own ARN: here a role of another account.
        member = client("sts", creds=assume(SOURCE_ACCOUNT))
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            member.assume_role(RoleArn=role_arn(BACKUP_ACCOUNT, "untrusted-x"), RoleSessionName="realism-test")
        self.assertIn(f"User: arn:aws:sts::{SOURCE_ACCOUNT}:assumed-role/backup-fleet-member/realism-test is not", ctx.exception.response["Error"]["Message"])
        # The query protocol's error XML, which the Rust SDK parses.
        auth = "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=0"
        status, body = http(
            "POST",
            "/",
            raw=f"Action=AssumeRole&Version=2011-06-15&RoleSessionName=realism-test&RoleArn={role_arn(SOURCE_ACCOUNT, 'untrusted-x')}".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth},
        )
        self.assertEqual(status, 403)
        self.assertRegex(body.decode(), r"^<ErrorResponse[^>]*><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: ")
        # Any other name is assumed, into the role's account; the prefix counts at the start only.
        for name in ("backup-fleet-member", "ops/backup-untrusted-x"):
            identity = client("sts", creds=assume(BACKUP_ACCOUNT, name)).get_caller_identity()
            self.assertEqual(identity["Account"], BACKUP_ACCOUNT)
        self.assertGreaterEqual(stats()["refused"]["AccessDenied"], 4)
        # Configurable: other prefixes, none, or the section off.
        set_config({"accounts": {"deny_role_name_prefixes": ["blocked-"]}})
        assume(SOURCE_ACCOUNT, "untrusted-x")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            sts.assume_role(RoleArn=role_arn(SOURCE_ACCOUNT, "blocked-1"), RoleSessionName="realism-test")
        self.assertCode(ctx, "AccessDenied", 403)
        set_config({"accounts": {"deny_role_name_prefixes": ["untrusted-"], "enabled": False}})
        assume(SOURCE_ACCOUNT, "untrusted-x")
        status, body = http("POST", "/_realism/config", {"accounts": {"deny_role_name_prefixes": "untrusted-"}})
        self.assertEqual(status, 400, body)
        status, body = http("POST", "/_realism/config", {"accounts": {"share_copies": True}})
        self.assertEqual(status, 400, body)
        self.assertIn("unknown accounts keys", json.loads(body)["error"])

    def instant_sources(self) -> None:
        """Sources complete and are visible at once; copies keep the baseline's timing."""
        kinds = ("ebs_snapshot", "rds_snapshot", "rds_cluster_snapshot")
        set_config({"pending": {k: 0 for k in kinds}, "consistency": {k: 0 for k in kinds}})

    def test_ebs_snapshot_shared_by_another_account_is_copied_under_the_callers_key(self) -> None:
        self.instant_sources()
        a, b = assume(SOURCE_ACCOUNT), assume(BACKUP_ACCOUNT)
        ec2_a, ec2_b = client("ec2", creds=a), client("ec2", "us-west-2", creds=b)
        key_a = client("kms", creds=a).create_key()["KeyMetadata"]
        key_b = client("kms", "us-west-2", creds=b).create_key()["KeyMetadata"]
        vol = ec2_a.create_volume(Size=8, AvailabilityZone="us-east-1a", Encrypted=True, KmsKeyId=key_a["Arn"])["VolumeId"]
        sid = ec2_a.create_snapshot(VolumeId=vol)["SnapshotId"]
        before = self.snapshot_state(sid, ec2_a)
        self.assertEqual((before["State"], before["OwnerId"], before["Encrypted"]), ("completed", SOURCE_ACCOUNT, True))

        def copy(**extra):
            return ec2_b.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=sid, Encrypted=True, KmsKeyId=key_b["KeyId"], **extra)["SnapshotId"]

        # Not shared: the snapshot does not exist for the backup account.
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            copy()
        self.assertCode(ctx, "InvalidSnapshot.NotFound", 400)
        self.assertIn(sid, ctx.exception.response["Error"]["Message"])

        ec2_a.modify_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission", OperationType="add", UserIds=[BACKUP_ACCOUNT])
        shared = ec2_a.describe_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission")["CreateVolumePermissions"]
        self.assertEqual(shared, [{"UserId": BACKUP_ACCOUNT}])
        copy_id = copy(TagSpecifications=tags("snapshot", marker="shared-copy"))
        # A copy like any other: not found at first, then pending, then completed.
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.snapshot_state(copy_id, ec2_b)
        self.assertCode(ctx, "InvalidSnapshot.NotFound", 400)
        self.assertEqual(wait_until(lambda: self.snapshot_state(copy_id, ec2_b))["State"], "pending")
        done = wait_until(lambda: (s := self.snapshot_state(copy_id, ec2_b))["State"] != "pending" and s)
        self.assertEqual(done["State"], "completed")
        self.assertEqual((done["OwnerId"], done["Encrypted"], done["KmsKeyId"]), (BACKUP_ACCOUNT, True, key_b["KeyId"]))
        self.assertEqual(done["Tags"], [{"Key": "marker", "Value": "shared-copy"}])
        # The source is untouched, and the copy is the backup account's only.
        after = self.snapshot_state(sid, ec2_a)
        self.assertEqual({k: after.get(k) for k in ("State", "OwnerId", "Encrypted", "KmsKeyId")}, {k: before.get(k) for k in ("State", "OwnerId", "Encrypted", "KmsKeyId")})
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            client("ec2", "us-west-2", creds=a).describe_snapshots(SnapshotIds=[copy_id])
        self.assertCode(ctx, "InvalidSnapshot.NotFound", 400)
        counted = stats()
        self.assertGreaterEqual(counted["shared_copies"]["CopySnapshot"], 1)
        self.assertGreaterEqual(counted["refused"]["InvalidSnapshot.NotFound"], 1)

        # Unshared again: shown so, and copying is refused again.
        ec2_a.modify_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission", OperationType="remove", UserIds=[BACKUP_ACCOUNT])
        self.assertEqual(ec2_a.describe_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission")["CreateVolumePermissions"], [])
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            copy()
        self.assertCode(ctx, "InvalidSnapshot.NotFound", 400)
        # Shared with everyone (group all): copied too.
        ec2_a.modify_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"])
        copy()
        # The switch off: moto's own lookup, in the caller's account only.
        set_config({"accounts": {"shared_snapshot_copies": False}})
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            copy()
        self.assertCode(ctx, "InvalidSnapshot.NotFound", 400)

    def test_ebs_snapshot_under_the_aws_managed_key_cannot_be_shared(self) -> None:
        self.instant_sources()
        a = assume(SOURCE_ACCOUNT)
        ec2_a = client("ec2", creds=a)
        key_a = client("kms", creds=a).create_key()["KeyMetadata"]

        def share(snapshot_id: str) -> None:
            ec2_a.modify_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add", UserIds=[BACKUP_ACCOUNT])

        # A volume encrypted without a key is under aws/ebs, and so are its snapshots.
        vol = ec2_a.create_volume(Size=8, AvailabilityZone="us-east-1a", Encrypted=True)["VolumeId"]
        default = ec2_a.create_snapshot(VolumeId=vol)["SnapshotId"]
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            share(default)
        self.assertCode(ctx, "InvalidParameter", 400)
        self.assertEqual(ctx.exception.response["Error"]["Message"], "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot.")
        self.assertEqual(ec2_a.describe_snapshot_attribute(SnapshotId=default, Attribute="createVolumePermission")["CreateVolumePermissions"], [])
        # So is a copy made without a key, or with the alias aws/ebs.
        for extra in ({}, {"KmsKeyId": "alias/aws/ebs"}):
            copy_id = ec2_a.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=default, Encrypted=True, **extra)["SnapshotId"]
            with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                share(copy_id)
            self.assertCode(ctx, "InvalidParameter", 400)
        # A copy re-encrypted under a customer managed key (key ARN, key id or alias) records it and can be shared.
        for key in (key_a["Arn"], key_a["KeyId"], "alias/backup-share"):
            copy_id = ec2_a.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=default, Encrypted=True, KmsKeyId=key)["SnapshotId"]
            copied = wait_until(lambda: self.snapshot_state(copy_id, ec2_a))
            self.assertEqual((copied["Encrypted"], copied["KmsKeyId"]), (True, key))
            share(copy_id)
        # A snapshot of a volume under a customer managed key, and an unencrypted one, can be shared.
        for kwargs in ({"Encrypted": True, "KmsKeyId": key_a["Arn"]}, {}):
            vol = ec2_a.create_volume(Size=8, AvailabilityZone="us-east-1a", **kwargs)["VolumeId"]
            share(ec2_a.create_snapshot(VolumeId=vol)["SnapshotId"])
        self.assertGreaterEqual(stats()["refused"]["InvalidParameter"], 3)
        # The switch off: moto's own (it shares anything).
        set_config({"accounts": {"refuse_default_key_shares": False}})
        share(default)

    def rds_keys(self) -> tuple[dict, dict, dict]:
        """(source account credentials, backup account credentials, a customer key of each: its
        metadata in the source account's us-east-1, in the backup account's us-west-2)."""
        a, b = assume(SOURCE_ACCOUNT), assume(BACKUP_ACCOUNT)
        key_a = client("kms", creds=a).create_key()["KeyMetadata"]
        key_b = client("kms", "us-west-2", creds=b).create_key()["KeyMetadata"]
        return a, b, {"a": key_a, "b": key_b}

    def test_rds_db_snapshot_shared_by_another_account_is_copied_under_the_callers_key(self) -> None:
        self.instant_sources()
        a, b, keys = self.rds_keys()
        rds_a, rds_b = client("rds", creds=a), client("rds", "us-west-2", creds=b)
        db, plain = f"db-{uid()}", f"db-{uid()}"
        common = {"DBInstanceClass": "db.t3.micro", "Engine": "postgres", "MasterUsername": "admin", "MasterUserPassword": "password1", "AllocatedStorage": 20}
        rds_a.create_db_instance(DBInstanceIdentifier=db, StorageEncrypted=True, KmsKeyId=keys["a"]["Arn"], **common)
        rds_a.create_db_instance(DBInstanceIdentifier=plain, StorageEncrypted=True, **common)  # under the default key
        source = rds_a.create_db_snapshot(DBInstanceIdentifier=db, DBSnapshotIdentifier=f"{db}-s")["DBSnapshot"]
        rds_a.create_db_snapshot(DBInstanceIdentifier=plain, DBSnapshotIdentifier=f"{plain}-s")
        self.assertEqual((source["Status"], source["KmsKeyId"]), ("available", keys["a"]["Arn"]))

        def attribute(identifier: str) -> list[str]:
            result = rds_a.describe_db_snapshot_attributes(DBSnapshotIdentifier=identifier)["DBSnapshotAttributesResult"]
            return [v for attr in result["DBSnapshotAttributes"] if attr["AttributeName"] == "restore" for v in attr["AttributeValues"]]

        def share(identifier: str, add: bool = True) -> None:
            values = {"ValuesToAdd" if add else "ValuesToRemove": [BACKUP_ACCOUNT]}
            rds_a.modify_db_snapshot_attribute(DBSnapshotIdentifier=identifier, AttributeName="restore", **values)

        def copy(target: str) -> dict:
            return rds_b.copy_db_snapshot(
                SourceDBSnapshotIdentifier=source["DBSnapshotArn"],
                TargetDBSnapshotIdentifier=target,
                KmsKeyId=keys["b"]["KeyId"],
                SourceRegion="us-east-1",  # boto3 also sends a PreSignedUrl
                Tags=[{"Key": "marker", "Value": "shared-copy"}],
            )["DBSnapshot"]

        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            copy(f"{db}-c0")
        self.assertCode(ctx, "DBSnapshotNotFound", 404)
        # The default key's snapshot cannot be shared; a copy under a customer managed key can.
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            share(f"{plain}-s")
        self.assertCode(ctx, "InvalidParameterValue", 400)
        self.assertIn("default KMS key", ctx.exception.response["Error"]["Message"])
        self.assertEqual(attribute(f"{plain}-s"), [])
        for key in ("alias/aws/rds", keys["a"]["KeyId"]):
            target = f"{plain}-{uid()}"
            rds_a.copy_db_snapshot(SourceDBSnapshotIdentifier=f"{plain}-s", TargetDBSnapshotIdentifier=target, KmsKeyId=key)
            if key == "alias/aws/rds":
                with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                    share(target)
                self.assertCode(ctx, "InvalidParameterValue", 400)
            else:
                share(target)

        share(f"{db}-s")
        self.assertEqual(attribute(f"{db}-s"), [BACKUP_ACCOUNT])
        copied = copy(f"{db}-c1")
        self.assertEqual(copied["Status"], "creating")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            rds_b.describe_db_snapshots(DBSnapshotIdentifier=f"{db}-c1")
        self.assertCode(ctx, "DBSnapshotNotFound", 404)
        done = wait_until(lambda: (s := rds_b.describe_db_snapshots(DBSnapshotIdentifier=f"{db}-c1")["DBSnapshots"][0])["Status"] != "creating" and s)
        self.assertEqual(done["Status"], "available")
        self.assertEqual(done["DBSnapshotArn"], f"arn:aws:rds:us-west-2:{BACKUP_ACCOUNT}:snapshot:{db}-c1")
        self.assertEqual((done["Encrypted"], done["KmsKeyId"]), (True, keys["b"]["Arn"]))
        self.assertEqual(done["TagList"], [{"Key": "marker", "Value": "shared-copy"}])
        after = rds_a.describe_db_snapshots(DBSnapshotIdentifier=f"{db}-s")["DBSnapshots"][0]
        self.assertEqual((after["Status"], after["KmsKeyId"], after["DBSnapshotArn"]), ("available", keys["a"]["Arn"], source["DBSnapshotArn"]))
        self.assertGreaterEqual(stats()["shared_copies"]["CopyDBSnapshot"], 1)

        share(f"{db}-s", add=False)
        self.assertEqual(attribute(f"{db}-s"), [])
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            copy(f"{db}-c2")
        self.assertCode(ctx, "DBSnapshotNotFound", 404)

    def test_rds_cluster_snapshot_shared_by_another_account_is_copied_under_the_callers_key(self) -> None:
        self.instant_sources()
        a, b, keys = self.rds_keys()
        rds_a, rds_b = client("rds", creds=a), client("rds", "us-west-2", creds=b)
        cluster, plain = f"cl-{uid()}", f"cl-{uid()}"
        common = {"Engine": "aurora-postgresql", "MasterUsername": "admin", "MasterUserPassword": "password1", "StorageEncrypted": True}
        rds_a.create_db_cluster(DBClusterIdentifier=cluster, KmsKeyId=keys["a"]["Arn"], **common)
        rds_a.create_db_cluster(DBClusterIdentifier=plain, **common)  # under the default key
        source = rds_a.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=f"{cluster}-s")["DBClusterSnapshot"]
        rds_a.create_db_cluster_snapshot(DBClusterIdentifier=plain, DBClusterSnapshotIdentifier=f"{plain}-s")

        def attribute(identifier: str) -> list[str]:
            result = rds_a.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=identifier)["DBClusterSnapshotAttributesResult"]
            return [v for attr in result["DBClusterSnapshotAttributes"] if attr["AttributeName"] == "restore" for v in attr["AttributeValues"]]

        def share(identifier: str, add: bool = True) -> None:
            values = {"ValuesToAdd" if add else "ValuesToRemove": [BACKUP_ACCOUNT]}
            rds_a.modify_db_cluster_snapshot_attribute(DBClusterSnapshotIdentifier=identifier, AttributeName="restore", **values)

        def copy(target: str) -> dict:
            return rds_b.copy_db_cluster_snapshot(
                SourceDBClusterSnapshotIdentifier=source["DBClusterSnapshotArn"],
                TargetDBClusterSnapshotIdentifier=target,
                KmsKeyId=keys["b"]["KeyId"],
                SourceRegion="us-east-1",
                Tags=[{"Key": "marker", "Value": "shared-copy"}],
            )["DBClusterSnapshot"]

        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            copy(f"{cluster}-c0")
        self.assertCode(ctx, "DBClusterSnapshotNotFoundFault", 404)
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            share(f"{plain}-s")
        self.assertCode(ctx, "InvalidParameterValue", 400)
        self.assertEqual(attribute(f"{plain}-s"), [])

        share(f"{cluster}-s")
        self.assertEqual(attribute(f"{cluster}-s"), [BACKUP_ACCOUNT])
        self.assertEqual(copy(f"{cluster}-c1")["Status"], "creating")
        done = wait_until(
            lambda: (s := rds_b.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=f"{cluster}-c1")["DBClusterSnapshots"][0])["Status"] != "creating" and s
        )
        self.assertEqual(done["Status"], "available")
        self.assertEqual(done["DBClusterSnapshotArn"], f"arn:aws:rds:us-west-2:{BACKUP_ACCOUNT}:cluster-snapshot:{cluster}-c1")
        self.assertEqual((done["StorageEncrypted"], done["KmsKeyId"]), (True, keys["b"]["Arn"]))
        self.assertEqual(done["TagList"], [{"Key": "marker", "Value": "shared-copy"}])
        after = rds_a.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=f"{cluster}-s")["DBClusterSnapshots"][0]
        self.assertEqual((after["Status"], after["KmsKeyId"]), ("available", keys["a"]["Arn"]))
        self.assertGreaterEqual(stats()["shared_copies"]["CopyDBClusterSnapshot"], 1)

        share(f"{cluster}-s", add=False)
        self.assertEqual(attribute(f"{cluster}-s"), [])
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            copy(f"{cluster}-c2")
        self.assertCode(ctx, "DBClusterSnapshotNotFoundFault", 404)

    # ---- runtime config, reset -----------------------------------------------------------------

    def test_runtime_config_endpoint_changes_behaviour(self) -> None:
        cfg = json.loads(http("GET", "/_realism/config")[1])
        self.assertEqual(cfg["pending_seconds"], PENDING)
        new = set_config({"pending_seconds": 0, "consistency_seconds": 0})
        self.assertEqual((new["pending_seconds"], new["consistency_seconds"]), (0, 0))
        vol = self.volume()
        snap = self.ec2.create_snapshot(VolumeId=vol)
        self.assertEqual(snap["State"], "completed")
        self.assertEqual(self.snapshot_state(snap["SnapshotId"])["State"], "completed")
        set_config({"enabled": False, "quotas": {"pending_snapshots_per_volume": 1}})
        self.ec2.create_snapshot(VolumeId=vol)
        self.ec2.create_snapshot(VolumeId=vol)  # disabled: no quota
        status, body = http("POST", "/_realism/config", {"pending_secnds": 1})
        self.assertEqual(status, 400, body)
        self.assertIn("unknown config keys", json.loads(body)["error"])
        status, _ = http("POST", "/_realism/config", {"errors": {"ebs_snapshot": 2}})
        self.assertEqual(status, 400)
        status, body = http("POST", "/_realism/config", {"sqs": {"batch_request_limit_bytes": -1}})
        self.assertEqual(status, 400, body)
        status, body = http("POST", "/_realism/config", {"sqs": {"stale_handles": True}})
        self.assertEqual(status, 400, body)
        self.assertIn("unknown sqs keys", json.loads(body)["error"])

    def test_reset_clears_state_but_keeps_config(self) -> None:
        region = "sa-east-1"
        ec2 = client("ec2", region)
        set_config({"quotas": {"create_snapshot_rate": 0.01, "create_snapshot_burst": 1}, "seed": 7})
        vol = self.volume(ec2, f"{region}a")
        ec2.create_snapshot(VolumeId=vol)
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            ec2.create_snapshot(VolumeId=vol)
        self.assertCode(ctx, "RequestLimitExceeded", 503)
        before = json.loads(http("GET", "/_realism/config")[1])
        self.assertTrue(stats()["refused"])
        status, _ = http("POST", "/moto-api/reset")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(http("GET", "/_realism/config")[1]), before)
        self.assertEqual(stats()["refused"], {})
        vol = self.volume(ec2, f"{region}a")
        self.assertEqual(ec2.create_snapshot(VolumeId=vol)["State"], "pending")  # a fresh bucket


if __name__ == "__main__":
    started = time.monotonic()
    result = unittest.main(exit=False, verbosity=2).result
    print(f"realism suite: {time.monotonic() - started:.1f}s", file=sys.stderr)
    sys.exit(0 if result.wasSuccessful() else 1)
