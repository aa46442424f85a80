"""IAM least privilege, checked against the code: the AWS actions Terraform grants the fleet's
roles (worker and producer task roles, and the operator role of `backupctl`) must equal the actions
of the SDK operations the Rust adapters call.

The operations are derived from the code, not from a list kept by hand: every `.<operation>()`
call in an adapter module is matched against the operation modules of the aws-sdk-* crate that
module uses (found through `cargo metadata`), and each operation's wire name comes from the SDK's
own `Metadata::new("<OperationName>", ...)`. Operations map to IAM actions one to one, except where
IAM names them differently or authorizes more than the one action (the table below, from the AWS
Service Authorization Reference and the services' API references).

Coverage: every module of aws/src that uses an SDK client (`aws_sdk_<crate>::Client`, or a field of
`RegionClients` reached through `clients()` / `clients_in(..)`) must be listed in ADAPTERS with that
crate, or in NOT_ADAPTERS with the reason it is left out; a new adapter module cannot go unchecked.

Usage: check_iam.py [repo root]. Exit 1 on any difference, listing it.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import hcl2

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()

# Adapter module -> (SDK crate, IAM service prefix). bootstrap.rs is left out on purpose: it is
# run by an operator's `backupctl bootstrap` (Terraform creates those resources in production).
ADAPTERS = {
    "aws/src/ec2.rs": ("aws-sdk-ec2", "ec2"),
    "aws/src/rds.rs": ("aws-sdk-rds", "rds"),
    "aws/src/s3.rs": ("aws-sdk-s3", "s3"),
    "aws/src/sqs.rs": ("aws-sdk-sqs", "sqs"),
    "aws/src/dynamo.rs": ("aws-sdk-dynamodb", "dynamodb"),
    "aws/src/catalog.rs": ("aws-sdk-dynamodb", "dynamodb"),
    "aws/src/eventbridge.rs": ("aws-sdk-eventbridge", "events"),
    "aws/src/secrets.rs": ("aws-sdk-secretsmanager", "secretsmanager"),
}

# Modules of aws/src that touch SDK clients but are not adapters of the fleet's roles.
NOT_ADAPTERS = {
    "aws/src/bootstrap.rs": "run by an operator's `backupctl bootstrap`; Terraform creates those resources in production",
    "aws/src/config.rs": "builds the clients (RegionClients), calls no operation",
}

# Operations whose IAM actions are named differently (or need more than one action).
IAM_NAMES = {
    ("sqs", "SendMessageBatch"): ["SendMessage"],
    ("sqs", "DeleteMessageBatch"): ["DeleteMessage"],
    ("sqs", "ChangeMessageVisibilityBatch"): ["ChangeMessageVisibility"],
    ("s3", "ListObjectsV2"): ["ListBucket"],
    ("s3", "ListObjectVersions"): ["ListBucketVersions"],
    ("s3", "ListBuckets"): ["ListAllMyBuckets"],
    # Reads of a specific version need the *Version actions as well.
    ("s3", "HeadObject"): ["GetObject", "GetObjectVersion"],
    ("s3", "GetObject"): ["GetObject", "GetObjectVersion"],
    ("s3", "GetObjectTagging"): ["GetObjectTagging", "GetObjectVersionTagging"],
    # A copy reads the (versioned) source and writes the destination with tags and retention.
    ("s3", "CopyObject"): ["GetObject", "GetObjectVersion", "GetObjectTagging", "GetObjectVersionTagging", "PutObject", "PutObjectTagging"],
    ("s3", "UploadPartCopy"): ["GetObject", "GetObjectVersion", "PutObject"],
    # Uploads of the fleet's own objects (logical dumps, manifests) carry tags and Object Lock
    # retention headers: s3:PutObjectTagging and s3:PutObjectRetention besides s3:PutObject.
    ("s3", "PutObject"): ["PutObject", "PutObjectTagging", "PutObjectRetention"],
    ("s3", "CreateMultipartUpload"): ["PutObject", "PutObjectTagging", "PutObjectRetention"],
    # There is no s3:UploadPart or s3:CompleteMultipartUpload action: s3:PutObject authorizes the
    # parts and the completion.
    ("s3", "UploadPart"): ["PutObject"],
    ("s3", "CompleteMultipartUpload"): ["PutObject"],
    ("s3", "AbortMultipartUpload"): ["AbortMultipartUpload"],
    # The adapter deletes with and without a version id (a delete marker, and a drill's clean-up).
    ("s3", "DeleteObject"): ["DeleteObject", "DeleteObjectVersion"],
    ("s3", "GetBucketLocation"): ["GetBucketLocation"],
    # RDS authorizes the tags given to a create/copy/restore call as rds:AddTagsToResource on the
    # new resource (the adapters tag on create and never call AddTagsToResource themselves).
    ("rds", "CreateDBSnapshot"): ["CreateDBSnapshot", "AddTagsToResource"],
    ("rds", "CreateDBClusterSnapshot"): ["CreateDBClusterSnapshot", "AddTagsToResource"],
    ("rds", "CopyDBSnapshot"): ["CopyDBSnapshot", "AddTagsToResource"],
    ("rds", "CopyDBClusterSnapshot"): ["CopyDBClusterSnapshot", "AddTagsToResource"],
    ("rds", "RestoreDBInstanceFromDBSnapshot"): ["RestoreDBInstanceFromDBSnapshot", "AddTagsToResource"],
    ("rds", "RestoreDBClusterFromSnapshot"): ["RestoreDBClusterFromSnapshot", "AddTagsToResource"],
    # An export passes the export role to RDS (iam:PassRole), and its caller must be allowed
    # kms:CreateGrant and kms:DescribeKey on the export's key (RDS StartExportTask API reference).
    # A name with a colon is a whole IAM action of another service.
    ("rds", "StartExportTask"): ["StartExportTask", "iam:PassRole", "kms:CreateGrant", "kms:DescribeKey"],
}

# Granted without the code calling them, each for a stated reason.
IMPLICIT = {
    # AWS uses the key on the caller's behalf when it encrypts copies and reads or writes
    # SSE-KMS queues, tables and buckets.
    "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKey*",
    "kms:ReEncrypt*", "kms:CreateGrant",
}


def sdk_operations():
    meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--locked"],
                                     cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    ops = {}
    for package in meta["packages"]:
        if package["name"] in {crate for crate, _ in ADAPTERS.values()}:
            src = Path(package["manifest_path"]).parent / "src" / "operation"
            names = {}
            for module in src.glob("*.rs"):
                match = re.search(r'Metadata::new\(\s*"(\w+)"', module.read_text())
                if match:
                    names[module.stem] = match.group(1)
            ops[package["name"]] = names
    return ops


def called_actions(ops):
    actions = {}
    for path, (crate, service) in ADAPTERS.items():
        text = (ROOT / path).read_text()
        code = re.sub(r"//[^\n]*", "", text)
        for snake in set(re.findall(r"\.([a-z][a-z0-9_]*)\(\)", code)):
            operation = ops[crate].get(snake)
            if operation:
                for action in IAM_NAMES.get((service, operation), [operation]):
                    name = action if ":" in action else f"{service}:{action}"
                    actions.setdefault(name, set()).add(f"{path}: {snake}()")
    return actions


def client_crates():
    """RegionClients field -> SDK crate, from aws/src/config.rs."""
    text = (ROOT / "aws/src/config.rs").read_text()
    body = re.search(r"pub struct RegionClients\s*\{(.*?)\}", text, re.S)
    if not body:
        sys.exit("iam: aws/src/config.rs defines no `struct RegionClients`; update check_iam.py")
    return {f: c.replace("_", "-") for f, c in re.findall(r"pub\s+(\w+)\s*:\s*(aws_sdk_\w+)::Client", body.group(1))}


def coverage_problems(ops):
    """Modules of aws/src using SDK clients that the check would not read (or reads as the wrong crate)."""
    fields = client_crates()
    problems = []
    for path in sorted(str(p.relative_to(ROOT)) for p in (ROOT / "aws/src").glob("**/*.rs")):
        if path in NOT_ADAPTERS:
            continue
        code = re.sub(r"//[^\n]*", "", (ROOT / path).read_text())
        used = {c.replace("_", "-") for c in re.findall(r"\b(aws_sdk_\w+)::Client\b", code)}
        for field in re.findall(r"\.clients(?:_in)?\([^()]*\)\s*\.\s*(\w+)\b", code):
            used.add(fields.get(field, f"<RegionClients.{field}>"))
        if not used:
            continue
        listed = ADAPTERS.get(path)
        if listed is None:
            problems.append(f"{path} uses {', '.join(sorted(used))} but is not in ADAPTERS (nor NOT_ADAPTERS): its calls are not checked")
            continue
        other = sorted(used - {listed[0]})
        if other:
            problems.append(f"{path} uses {', '.join(other)}, but ADAPTERS reads it as {listed[0]} only")
    for path, (crate, _) in ADAPTERS.items():
        if not (ROOT / path).is_file():
            problems.append(f"{path} (in ADAPTERS) does not exist")
        if crate not in ops:
            problems.append(f"{crate} (ADAPTERS, {path}) is not a dependency in `cargo metadata`")
    return problems


# The roles whose grants must match the code: the two ECS task roles and the operator role.
ROLE_ACTION_MAPS = ("worker_actions", "producer_actions", "operator_actions")


def granted_actions():
    main = hcl2.loads((ROOT / "terraform/modules/iam/main.tf").read_text())
    granted, found = set(), set()
    for block in main.get("locals", []):
        for name in ROLE_ACTION_MAPS:
            if name in block:
                found.add(name)
            for group in block.get(name, {}).values():
                granted.update(a.strip('"') for a in group)
    for name in ROLE_ACTION_MAPS:
        if name not in found:
            sys.exit(f"iam: terraform/modules/iam/main.tf defines no local.{name}")
    return granted


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return
    ops = sdk_operations()
    coverage = coverage_problems(ops)
    for problem in coverage:
        print(f"iam: NOT COVERED: {problem}")
    if coverage:
        sys.exit(1)
    called = called_actions(ops)
    granted = granted_actions()
    missing = sorted(set(called) - granted)
    extra = sorted(granted - set(called) - IMPLICIT)
    print(f"iam: the code calls {len(called)} IAM actions; Terraform grants {len(granted)} ({len(IMPLICIT & granted)} implicit)")
    for action in missing:
        print(f"iam: MISSING from Terraform: {action} (called at {', '.join(sorted(called[action]))})")
    for action in extra:
        print(f"iam: EXTRA in Terraform, never called: {action}")
    if missing or extra:
        sys.exit(1)
    print("iam: granted actions equal the actions the code calls")


main()
