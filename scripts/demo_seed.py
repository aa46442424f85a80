"""Seeds a realistic estate on the emulator for `make demo`.

EC2 instances with several volumes in two regions (tagged and untagged), loose volumes, RDS
instances and an Aurora cluster, S3 buckets with objects including odd keys and a multi-megabyte
one, and pre-aged fleet artifacts (older backups of the selected volumes, a foreign snapshot, a
snapshot under legal hold). Prints a JSON description of what it made.
"""
import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone

import boto3

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
PREFIX = sys.argv[1]
CATALOG_TABLE = sys.argv[2]
SMALL = os.environ.get("DEMO_SMALL") == "1"
KW = dict(endpoint_url=ENDPOINT, aws_access_key_id="testing", aws_secret_access_key="testing")


def client(service, region="us-east-1"):
    return boto3.client(service, region_name=region, **KW)


def tags(pairs):
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


# The copies' KMS key, as Terraform's kms module would create it in each region.
for region in ["us-east-1", "us-west-2"]:
    kms = client("kms", region)
    key = kms.create_key(Description="backup-fleet demo key")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/backup", TargetKeyId=key)

estate = {"volumes": [], "instances": [], "rds_instances": [], "rds_clusters": [], "buckets": [], "pre_aged": [], "untouchable": []}
per_region_instances = 1 if SMALL else 2
for region in ["us-east-1", "eu-west-1"]:
    ec2 = client("ec2", region)
    az = region + "a"
    for i in range(per_region_instances):
        for selected in (True, False):
            t = {"Name": f"{PREFIX}-app-{region}-{i}-{'sel' if selected else 'other'}"}
            if selected:
                t["backup"] = "daily"
            inst = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                     Placement={"AvailabilityZone": az},
                                     TagSpecifications=[{"ResourceType": "instance", "Tags": tags(t)}])["Instances"][0]
            for dev, size in (("/dev/sdf", 20), ("/dev/sdg", 50)):
                vol = ec2.create_volume(AvailabilityZone=az, Size=size,
                                        TagSpecifications=[{"ResourceType": "volume", "Tags": tags(t)}])["VolumeId"]
                ec2.attach_volume(InstanceId=inst["InstanceId"], VolumeId=vol, Device=dev)
            estate["instances"].append({"id": inst["InstanceId"], "region": region, "selected": selected})
    for name, t in (("data", {"backup": "daily"}), ("scratch", {"backup": "daily", "backup-skip": "true"}), ("untagged", {})):
        vol = ec2.create_volume(AvailabilityZone=az, Size=10,
                                TagSpecifications=[{"ResourceType": "volume", "Tags": tags({"Name": f"{PREFIX}-{name}", **t})}] if t else [])["VolumeId"]
        estate["volumes"].append({"id": vol, "region": region, "selected": name == "data", "name": name})

# Pre-aged fleet backups of the selected loose volume in us-east-1: catalogued, tagged, older.
ec2 = client("ec2")
dynamo = client("dynamodb")
data_volume = next(v for v in estate["volumes"] if v["region"] == "us-east-1" and v["name"] == "data")
now = datetime.now(timezone.utc)
for days_ago in (12, 10, 9, 8):
    created = (now - timedelta(days=days_ago)).replace(hour=2, minute=0, second=0, microsecond=0)
    task_id = f"t-preaged{days_ago:024d}"
    t = {"backup-fleet:managed": "true", "backup-fleet:task-id": task_id, "backup-fleet:plan": "daily",
         "backup-fleet:source": data_volume["id"], "backup-fleet:tier": "daily",
         "backup-fleet:expires-at": (created + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    snap = ec2.create_snapshot(VolumeId=data_volume["id"], Description=f"pre-aged backup from {created:%Y-%m-%d}",
                               TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags(t)}])["SnapshotId"]
    record = {"artifact": {"kind": "ebs_snapshot", "region": "us-east-1", "id": snap}, "resource": data_volume["id"],
              "resource_region": "us-east-1", "plan": "daily", "tier": "daily", "task_id": task_id,
              "created_at": created.isoformat(), "expires_at": (created + timedelta(days=7)).isoformat(),
              "size_bytes": 10 * 2**30, "encrypted": False, "copy_of": None, "copies": [], "details": {},
              "verification": None, "deleted_at": None}
    dynamo.put_item(TableName=CATALOG_TABLE, Item={
        "pk": {"S": f"art#ebs_snapshot#us-east-1#{snap}"}, "record": {"S": json.dumps(record)},
        "resource": {"S": data_volume["id"]}, "created_at": {"S": created.isoformat()}, "plan": {"S": "daily"},
        "kind": {"S": "ebs_snapshot"}, "task_id": {"S": task_id},
        "expiry_bucket": {"S": "live"}, "expires_at": {"S": (created + timedelta(days=7)).isoformat()}})
    estate["pre_aged"].append(snap)
# A foreign snapshot (not the fleet's) and a held one: retention must never delete them.
foreign = ec2.create_snapshot(VolumeId=data_volume["id"], Description="made by hand",
                              TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags({"backup-fleet:source": data_volume["id"]})}])["SnapshotId"]
ec2.create_tags(Resources=[estate["pre_aged"][0]], Tags=tags({"backup-fleet:legal-hold": "case-2026-17"}))
estate["untouchable"] = [foreign, estate["pre_aged"][0]]

rds = client("rds")
for name, t in ((f"{PREFIX}-orders", {"backup": "daily"}), (f"{PREFIX}-analytics", {})):
    rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres",
                           AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="password123",
                           Tags=tags(t))
    estate["rds_instances"].append({"id": name, "selected": bool(t)})
rds.create_db_cluster(DBClusterIdentifier=f"{PREFIX}-ledger", Engine="aurora-postgresql", MasterUsername="admin",
                      MasterUserPassword="password123", Tags=tags({"backup": "daily"}))
estate["rds_clusters"].append({"id": f"{PREFIX}-ledger", "selected": True})

s3 = client("s3")
backup_bucket = f"{PREFIX}-backups"
s3.create_bucket(Bucket=backup_bucket, ObjectLockEnabledForBucket=True)
s3.put_bucket_versioning(Bucket=backup_bucket, VersioningConfiguration={"Status": "Enabled"})
estate["backup_bucket"] = backup_bucket
objects = 30 if SMALL else 300
for name, t in ((f"{PREFIX}-media", {"backup": "daily"}), (f"{PREFIX}-tmp", {})):
    s3.create_bucket(Bucket=name)
    if t:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags(t)})
    keys = [f"photos/2026/{i:04d}.jpg" for i in range(objects)]
    keys += ["a b.txt", "plus+sign", "percent%20encoded", "ünïcødé/ファイル.txt", "emoji 😀.bin"]
    for key in keys:
        s3.put_object(Bucket=name, Key=key, Body=f"object {key}".encode(), Metadata={"origin": "demo"})
    s3.put_object(Bucket=name, Key="video/big.mp4", Body=os.urandom(6 * 1024 * 1024 if SMALL else 12 * 1024 * 1024))
    estate["buckets"].append({"id": name, "selected": bool(t), "objects": len(keys) + 1})

# A second account (a member the fleet reaches through its role) and an isolated backup account:
# the "member-accounts" plan backs up the member's tagged volumes and database there and keeps
# copies in the backup account under that account's own key.
MEMBER, VAULT = "111111111111", "222222222222"


def assumed(account, role, service, region="us-east-1"):
    creds = client("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="demo-seed")["Credentials"]
    return boto3.client(service, region_name=region, endpoint_url=ENDPOINT, aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


# The keys Terraform's member-account (share key) and backup-account (vault key) modules create.
kms = assumed(MEMBER, "backup-fleet-member", "kms")
kms.create_alias(AliasName="alias/backup-fleet-share", TargetKeyId=kms.create_key(Description="share key")["KeyMetadata"]["KeyId"])
kms = assumed(VAULT, "backup-fleet-vault", "kms", "us-west-2")
kms.create_alias(AliasName="alias/backup-fleet-vault", TargetKeyId=kms.create_key(Description="vault key")["KeyMetadata"]["KeyId"])
estate["member"] = {"account": MEMBER, "vault": VAULT, "volumes": [], "rds_instances": []}
ec2 = assumed(MEMBER, "backup-fleet-member", "ec2")
for name, t, encrypted in (("member-data", {"backup": "daily"}, False), ("member-secure", {"backup": "daily"}, True),
                           ("member-untagged", {}, False)):
    vol = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10, Encrypted=encrypted,
                            TagSpecifications=[{"ResourceType": "volume", "Tags": tags({"Name": f"{PREFIX}-{name}", **t})}])["VolumeId"]
    estate["member"]["volumes"].append({"id": vol, "selected": bool(t), "encrypted": encrypted, "name": name})
rds = assumed(MEMBER, "backup-fleet-member", "rds")
name = f"{PREFIX}-member-billing"
rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres", AllocatedStorage=20,
                       MasterUsername="admin", MasterUserPassword="password123", StorageEncrypted=True,
                       Tags=tags({"backup": "daily"}))
estate["member"]["rds_instances"].append({"id": name, "selected": True, "encrypted": True})

# A real estate has existed for a while before its first backup run. With the emulator's realism
# layer, a just-launched instance is `pending` and missing from tag-filtered Describe calls for a
# few seconds (as on AWS), so wait as `aws ec2 wait instance-running` would before the first run.
for region in ["us-east-1", "eu-west-1"]:
    ec2 = client("ec2", region)
    want = {i["id"] for i in estate["instances"] if i["region"] == region}
    deadline = time.monotonic() + 120
    while True:
        pages = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [f"{PREFIX}-app-*"]},
                                                {"Name": "instance-state-name", "Values": ["running"]}])
        seen = {i["InstanceId"] for r in pages["Reservations"] for i in r["Instances"]}
        if want <= seen:
            break
        if time.monotonic() > deadline:
            sys.exit(f"seeded instances never became running and visible in {region}: {sorted(want - seen)}")
        time.sleep(0.5)

print(json.dumps(estate))
