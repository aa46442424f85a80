"""Small JSON helpers for scripts/demo.sh (kept out of the shell script for readability)."""
import json
import sys

command, path = sys.argv[1], sys.argv[2]
if command == "new-volume":
    # A volume tagged for the daily plan after the run (argument: the demo's prefix).
    import os
    import boto3
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    tags = [{"Key": "Name", "Value": f"{path}-new"}, {"Key": "backup", "Value": "daily"}]
    print(ec2.create_volume(AvailabilityZone="us-east-1a", Size=5,
                            TagSpecifications=[{"ResourceType": "volume", "Tags": tags}])["VolumeId"])
    sys.exit(0)
if command == "secret":
    # A Secrets Manager secret (arguments: its name, its JSON value); prints its ARN.
    import os
    import boto3
    secrets = boto3.client("secretsmanager", region_name=os.environ.get("AWS_REGION", "us-east-1"),
                           endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    print(secrets.create_secret(Name=path, SecretString=sys.argv[3])["ARN"])
    sys.exit(0)
if command == "accounts":
    # What AWS itself says about the cross-account backups (argument: estate.json): the member's
    # snapshots, the backup account's copies with their keys, the shares left, the restored volume.
    import os
    import boto3
    estate = json.load(open(path))
    restored = json.load(open(sys.argv[3])).get("result") or {}
    endpoint = os.environ["AWS_ENDPOINT_URL"]

    def assumed(account, role, service, region):
        sts = boto3.client("sts", region_name="us-east-1", endpoint_url=endpoint,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="demo-check")["Credentials"]
        return boto3.client(service, region_name=region, endpoint_url=endpoint, aws_access_key_id=creds["AccessKeyId"],
                            aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])

    member, vault = estate["member"]["account"], estate["member"]["vault"]
    m_ec2 = assumed(member, "backup-fleet-member", "ec2", "us-east-1")
    v_ec2 = assumed(vault, "backup-fleet-vault", "ec2", "us-west-2")
    v_kms = assumed(vault, "backup-fleet-vault", "kms", "us-west-2")
    vault_key = v_kms.describe_key(KeyId="alias/backup-fleet-vault")["KeyMetadata"]["Arn"]
    facts = {"vault_key": vault_key, "volumes": {}, "shared": [], "temporaries": []}
    for snap in m_ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]:
        tags = {t["Key"]: t["Value"] for t in snap.get("Tags", [])}
        if "backup-fleet:share-for" in tags:
            facts["temporaries"].append(snap["SnapshotId"])
        perms = m_ec2.describe_snapshot_attribute(SnapshotId=snap["SnapshotId"], Attribute="createVolumePermission")
        if perms.get("CreateVolumePermissions"):
            facts["shared"].append(snap["SnapshotId"])
    vault_snaps = v_ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    for volume in estate["member"]["volumes"]:
        sources = [s for s in m_ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:backup-fleet:source", "Values": [volume["id"]]}])["Snapshots"]]
        source_ids = {s["SnapshotId"] for s in sources}
        copies = [s for s in vault_snaps if {t["Key"]: t["Value"] for t in s.get("Tags", [])}.get("backup-fleet:copied-from") in source_ids]
        facts["volumes"][volume["id"]] = {"sources": len(sources), "copies": len(copies),
                                         "copy_keys": sorted({c.get("KmsKeyId", "") for c in copies})}
    volume_id = restored.get("volume_id")
    facts["restored"] = {"volume_id": volume_id, "in_vault": bool(volume_id) and len(
        v_ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [volume_id]}])["Volumes"]) == 1}
    print(json.dumps(facts))
    sys.exit(0)
data = json.load(open(path))
if command == "run-summary":
    print(f"run {data['run_id']}: {len(data['tasks'])} tasks, {data['sent']['batches']} SendMessageBatch calls")
elif command == "run-id":
    print(data["run_id"])
elif command == "progress":
    run = data["runs"][0] if data["runs"] else {"by_state": {}}
    queues = {q["name"]: q["depth"]["visible"] + q["depth"]["in_flight"] for q in data["queues"]}
    print(f"  ... tasks {dict(run['by_state'])}, task queue {queues.get('tasks', 0)}", flush=True)
elif command == "estate":
    print({k: len(v) for k, v in data.items() if isinstance(v, list)})
