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
