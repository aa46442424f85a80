"""IAM least privilege, checked against the code: the AWS actions Terraform grants the fleet's
roles (worker and producer task roles, and the operator role of `backupctl`) must equal the actions
of the SDK operations the Rust adapters call; so must the actions of the roles the fleet assumes in
other accounts (the member role of terraform/modules/member-account and the vault role of
terraform/modules/backup-account), for the adapters that run there.

The operations are derived from the code, not from a list kept by hand: every `.<operation>()`
call in an adapter module is matched against the operation modules of the aws-sdk-* crate that
module uses (found through `cargo metadata`), and each operation's wire name comes from the SDK's
own `Metadata::new("<OperationName>", ...)`. Operations map to IAM actions one to one, except where
IAM names them differently or authorizes more than the one action (the table below, from the AWS
Service Authorization Reference and the services' API references). A module of aws/src that builds
STS AssumeRole credentials (`AssumeRoleProvider`, aws/src/accounts.rs) calls sts:AssumeRole.

Coverage: every module of aws/src that uses an SDK client (`aws_sdk_<crate>::Client`, or a field of
`RegionClients` reached through `clients()` / `clients_in(..)`) must be listed in ADAPTERS with that
crate, or in NOT_ADAPTERS with the reason it is left out; a new adapter module cannot go unchecked.

The fleet's roles (terraform/modules/iam, locals worker_actions, producer_actions,
operator_actions): their union equals the actions of every adapter in ADAPTERS, sts:AssumeRole
included. Their sts:AssumeRole statements must each name exactly one of the module's variables
`member_role_arns` / `backup_account_role_arns` as their resources (no literal ARN, no wildcard),
exist only when that list is non-empty, and be: producer -> member roles only; worker and operator
-> member roles and backup-account roles.

The roles in other accounts. Which adapters run under assumed credentials is read from the code:
the adapter types (Ec2BlockStorage, RdsDatabases, S3Objects, ...) that the AssumeRoleProvider module
builds (aws/src/accounts.rs, AccountPorts). Each such adapter must be covered by the rules below:

  member role (locals member_actions, terraform/modules/member-account/main.tf): a plan's `accounts`
    entry; the producer discovers and the worker backs up, copies, shares with the backup account,
    prunes, verifies and restores with it.
      aws/src/ec2.rs  every operation
      aws/src/rds.rs  every operation but the snapshot exports (MEMBER_EXCLUDED)
      aws/src/s3.rs   the reads only (operations named Get*, List*, Head*): listing and reading the
                      source buckets; S3 backups are written to the fleet's backup bucket with the
                      worker's own credentials.
  vault role (locals vault_actions, terraform/modules/backup-account/main.tf): a `copy_to` entry with
    an account_id; the worker copies shared snapshots in, prunes and verifies the copies, and
    restores from them (also `backupctl restore --from-account`).
      aws/src/ec2.rs  every operation but those in VAULT_EXCLUDED (no sources, no sharing out)
      aws/src/rds.rs  every operation but those in VAULT_EXCLUDED (no sources, no sharing out, no
                      exports, no point-in-time restores)
      aws/src/s3.rs   nothing: S3 backups reach a backup account's bucket through its bucket policy.

Each role's granted actions (less the implicit KMS actions) must equal that expectation, nothing
missing and nothing extra; an exclusion that no longer names an operation the adapter calls is an
error too. The statements of those modules take their actions only from their `*_actions` locals
(trust policies `*_assume` excepted), and every group of a role's map is used.

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
    # IAM names the action without "Bucket" (it also covers ListBucketInventoryConfigurations).
    ("s3", "GetBucketInventoryConfiguration"): ["GetInventoryConfiguration"],
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

# The roles in other accounts also read snapshots shared under another account's key: copying one
# into a key of their own is a re-encryption from that key (kms:ReEncryptFrom on it).
CROSS_ACCOUNT_IMPLICIT = IMPLICIT | {"kms:ReEncryptFrom"}

# The adapters' operations the member role does not get, each for a stated reason.
MEMBER_EXCLUDED = {
    ("rds", "StartExportTask"): "snapshot exports of other accounts' databases are refused by the policy (core/src/policy.rs): exports run in the fleet's own account",
    ("rds", "DescribeExportTasks"): "follows StartExportTask, which never runs in a member account",
}

# The adapters' operations the vault role does not get, each for a stated reason.
VAULT_EXCLUDED = {
    ("ec2", "CreateSnapshot"): "a backup account holds copies, no sources: nothing there is backed up",
    ("ec2", "CreateSnapshots"): "a backup account holds copies, no sources: nothing there is backed up",
    ("ec2", "CreateImage"): "a backup account holds copies, no sources: nothing there is backed up",
    ("rds", "CreateDBSnapshot"): "a backup account holds copies, no sources: nothing there is backed up",
    ("rds", "CreateDBClusterSnapshot"): "a backup account holds copies, no sources: nothing there is backed up",
    ("ec2", "ModifySnapshotAttribute"): "the copies are never shared out of a backup account (shares go from the source accounts to it)",
    ("rds", "ModifyDBSnapshotAttribute"): "the copies are never shared out of a backup account (shares go from the source accounts to it)",
    ("rds", "ModifyDBClusterSnapshotAttribute"): "the copies are never shared out of a backup account (shares go from the source accounts to it)",
    ("rds", "StartExportTask"): "exports are of the source snapshot, in its own account",
    ("rds", "DescribeExportTasks"): "exports are of the source snapshot, in its own account",
    ("rds", "RestoreDBInstanceToPointInTime"): "point-in-time restores read a live database's automated backups: no database lives in a backup account",
    ("rds", "RestoreDBClusterToPointInTime"): "point-in-time restores read a live database's automated backups: no database lives in a backup account",
    ("rds", "DescribeDBInstanceAutomatedBackups"): "read only for point-in-time restores (restore window, replicated backups)",
}

ALL, READS = "every operation", "reads (Get*, List*, Head*)"

# The roles the fleet assumes in other accounts: the module, its action map, and what each adapter
# that runs under assumed credentials contributes (absent: nothing).
CROSS_ACCOUNT_ROLES = {
    "member": {
        "module": "terraform/modules/member-account/main.tf",
        "map": "member_actions",
        "adapters": {"aws/src/ec2.rs": ALL, "aws/src/rds.rs": ALL, "aws/src/s3.rs": READS},
        "excluded": MEMBER_EXCLUDED,
    },
    "vault": {
        "module": "terraform/modules/backup-account/main.tf",
        "map": "vault_actions",
        "adapters": {"aws/src/ec2.rs": ALL, "aws/src/rds.rs": ALL},
        "excluded": VAULT_EXCLUDED,
    },
}

# The fleet roles' sts:AssumeRole statements: which variables each role's statements name.
ASSUME_VARIABLES = ("member_role_arns", "backup_account_role_arns")
EXPECTED_ASSUME = {
    "producer_actions": {"member_role_arns"},
    "worker_actions": {"member_role_arns", "backup_account_role_arns"},
    "operator_actions": {"member_role_arns", "backup_account_role_arns"},
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


def strip_comments(text):
    return re.sub(r"//[^\n]*", "", text)


def iam_actions(service, operation):
    return [a if ":" in a else f"{service}:{a}" for a in IAM_NAMES.get((service, operation), [operation])]


def adapter_operations(ops):
    """Adapter module -> {(service, Operation): call sites}."""
    found = {}
    for path, (crate, service) in ADAPTERS.items():
        code = strip_comments((ROOT / path).read_text())
        for snake in set(re.findall(r"\.([a-z][a-z0-9_]*)\(\)", code)):
            operation = ops[crate].get(snake)
            if operation:
                found.setdefault(path, {}).setdefault((service, operation), set()).add(f"{path}: {snake}()")
    return found


def assume_role_modules():
    """Modules of aws/src that assume roles through STS (AssumeRoleProvider of aws-config)."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "aws/src").glob("**/*.rs")
                  if re.search(r"\bAssumeRoleProvider\b", strip_comments(p.read_text())))


def called_actions(adapter_ops):
    actions = {}
    for operations in adapter_ops.values():
        for (service, operation), sites in operations.items():
            for action in iam_actions(service, operation):
                actions.setdefault(action, set()).update(sites)
    for path in assume_role_modules():
        actions.setdefault("sts:AssumeRole", set()).add(f"{path}: AssumeRoleProvider")
    return actions


def assumed_adapters():
    """Adapter modules whose types a role-assuming module builds: they run in other accounts."""
    types = {}
    for path in ADAPTERS:
        for name in re.findall(r"\bpub\s+struct\s+(\w+)", strip_comments((ROOT / path).read_text())):
            types[name] = path
    found = {}
    for module in assume_role_modules():
        code = strip_comments((ROOT / module).read_text())
        for name in set(re.findall(r"\b([A-Z]\w*)\s*::\s*\w+\s*\(", code)):
            if name in types and types[name] != module:
                found.setdefault(types[name], set()).add(f"{module}: {name}")
    return found


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


def unquote(value):
    # python-hcl2 >= 5 keeps the quotes of string literals and block labels.
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load_tf(rel):
    return hcl2.loads((ROOT / rel).read_text())


def action_maps(doc, names):
    """The `*_actions` maps `names` of a module's locals: {map: {group: [actions]}}."""
    maps = {}
    for block in doc.get("locals", []):
        for name in names:
            if name in block and isinstance(block[name], dict):
                maps[name] = {g: [unquote(a) for a in v] for g, v in block[name].items()}
    return maps


def granted_actions():
    maps = action_maps(load_tf("terraform/modules/iam/main.tf"), ROLE_ACTION_MAPS)
    granted = set()
    for name in ROLE_ACTION_MAPS:
        if name not in maps:
            sys.exit(f"iam: terraform/modules/iam/main.tf defines no local.{name}")
        for group in maps[name].values():
            granted.update(group)
    return granted


def policy_documents(doc):
    """{name: body} of the module's aws_iam_policy_document data sources."""
    docs = {}
    for block in doc.get("data", []):
        for kind, entries in block.items():
            if unquote(kind) != "aws_iam_policy_document":
                continue
            for name, body in entries.items():
                docs[unquote(name)] = body
    return docs


def statements(body):
    """(statement, dynamic for_each or None) of a policy document, dynamic ones included."""
    for st in body.get("statement", []):
        yield st, None
    for dyn in body.get("dynamic", []):
        for label, block in dyn.items():
            if unquote(label) != "statement":
                continue
            for content in block.get("content", []):
                yield content, block.get("for_each")


def expression(value):
    """A bare `${...}` expression's text, else None."""
    if isinstance(value, str):
        m = re.fullmatch(r"\$\{(.*)\}", value.strip(), re.S)
        if m:
            return m.group(1).strip()
    return None


def check_assume_statements(problems):
    """The fleet roles' sts:AssumeRole statements name only the variables' role ARNs."""
    rel = "terraform/modules/iam/main.tf"
    doc = load_tf(rel)
    maps = action_maps(doc, ROLE_ACTION_MAPS)
    found = {name: set() for name in ROLE_ACTION_MAPS}
    for doc_name, body in policy_documents(doc).items():
        if doc_name.endswith("_assume"):
            continue
        for st, for_each in statements(body):
            ref = expression(st.get("actions"))
            m = re.fullmatch(r"local\.(\w+_actions)\.(\w+)", ref or "")
            if not m or m.group(1) not in maps:
                continue
            actions = maps[m.group(1)].get(m.group(2), [])
            if "sts:AssumeRole" not in actions:
                continue
            where = f"{rel}: policy {doc_name!r}, statement {unquote(st.get('sid', '?'))!r}"
            if actions != ["sts:AssumeRole"]:
                problems.append(f"{where}: local.{m.group(1)}.{m.group(2)} mixes sts:AssumeRole with {sorted(set(actions) - {'sts:AssumeRole'})}")
            resources = expression(st.get("resources"))
            var = re.fullmatch(r"var\.(\w+)", resources or "")
            if not var or var.group(1) not in ASSUME_VARIABLES:
                problems.append(f"{where}: sts:AssumeRole must name exactly var.member_role_arns or var.backup_account_role_arns as its resources, not {st.get('resources')!r}")
                continue
            guard = re.sub(r"\s+", "", expression(for_each) or "")
            if guard != f"length(var.{var.group(1)})>0?[1]:[]":
                problems.append(f"{where}: must be a dynamic statement with for_each = length(var.{var.group(1)}) > 0 ? [1] : [] (no statement when the list is empty)")
            found[m.group(1)].add(var.group(1))
    for name, expected in EXPECTED_ASSUME.items():
        if found[name] != expected:
            role = name.removesuffix("_actions")
            problems.append(f"{rel}: the {role} role's sts:AssumeRole statements name {sorted(found[name]) or 'nothing'}, expected {sorted(expected)}")
    variables = load_tf("terraform/modules/iam/variables.tf")
    declared = {unquote(k) for block in variables.get("variable", []) for k in block}
    for var in ASSUME_VARIABLES:
        if var not in declared:
            problems.append(f"terraform/modules/iam/variables.tf: no variable {var!r}")


def check_module_conventions(rel, doc, role_map, problems):
    """Every statement takes its actions from a `*_actions` local; the role's map is used whole
    and only in the role's own policies (named `<role>_*`)."""
    text = (ROOT / rel).read_text()
    maps = {}
    for block in doc.get("locals", []):
        for k, v in block.items():
            if k.endswith("_actions") and isinstance(v, dict):
                maps[k] = v
    prefix = role_map.removesuffix("_actions") + "_"
    for doc_name, body in policy_documents(doc).items():
        if doc_name.endswith("_assume"):
            continue
        for st, _ in statements(body):
            ref = expression(st.get("actions")) or ""
            m = re.fullmatch(r"local\.(\w+_actions)\.(\w+)", ref)
            if not m or m.group(1) not in maps:
                problems.append(f"{rel}: policy {doc_name!r} lists actions outside the *_actions locals: {st.get('actions')!r}")
            elif m.group(1) == role_map and not doc_name.startswith(prefix):
                problems.append(f"{rel}: policy {doc_name!r} (not the role's own) takes actions from local.{role_map}")
            elif m.group(1) != role_map and doc_name.startswith(prefix):
                problems.append(f"{rel}: the role's policy {doc_name!r} takes actions from local.{m.group(1)}, not local.{role_map}")
    for group in maps.get(role_map, {}):
        if f"local.{role_map}.{group}" not in text:
            problems.append(f"{rel}: local.{role_map}.{group} is not used by any statement")


def check_cross_account_roles(adapter_ops, problems):
    """The member and vault roles grant exactly what the adapters running under them call."""
    assumed = assumed_adapters()
    member_adapters = CROSS_ACCOUNT_ROLES["member"]["adapters"]
    for path, built in sorted(assumed.items()):
        if path not in member_adapters:
            problems.append(f"{path} runs under assumed credentials ({', '.join(sorted(built))}) but no rule of CROSS_ACCOUNT_ROLES covers it")
    summary = []
    for role, rule in CROSS_ACCOUNT_ROLES.items():
        rel = rule["module"]
        if not (ROOT / rel).is_file():
            problems.append(f"{rel} does not exist ({role} role)")
            continue
        doc = load_tf(rel)
        maps = action_maps(doc, (rule["map"],))
        if rule["map"] not in maps:
            problems.append(f"{rel} defines no local.{rule['map']}")
            continue
        check_module_conventions(rel, doc, rule["map"], problems)
        granted = {a for group in maps[rule["map"]].values() for a in group}
        expected, considered = {}, set()
        for path, mode in rule["adapters"].items():
            if path not in assumed:
                continue  # not run in other accounts: contributes nothing
            for (service, operation), sites in adapter_ops.get(path, {}).items():
                if mode == READS and not operation.startswith(("Get", "List", "Head")):
                    continue
                considered.add((service, operation))
                if (service, operation) in rule["excluded"]:
                    continue
                for action in iam_actions(service, operation):
                    expected.setdefault(action, set()).update(sites)
        assumed_services = {ADAPTERS[path][1] for path in rule["adapters"] if path in assumed}
        for (service, operation) in sorted(set(rule["excluded"]) - considered):
            if service not in assumed_services:
                continue  # its adapter does not run there at all: the EXTRA grants say so
            problems.append(f"{role} role: the exclusion of {service}:{operation} is stale: no adapter running there calls it")
        missing = sorted(set(expected) - granted)
        extra = sorted(granted - set(expected) - CROSS_ACCOUNT_IMPLICIT)
        for action in missing:
            problems.append(f"{role} role ({rel}): MISSING {action} (called at {', '.join(sorted(expected[action]))})")
        for action in extra:
            problems.append(f"{role} role ({rel}): EXTRA {action}, never called under its credentials")
        summary.append(f"{role} role: {len(expected)} actions expected, {len(granted)} granted ({len(CROSS_ACCOUNT_IMPLICIT & granted)} implicit), {len(rule['excluded'])} operations excluded with a reason")
    return summary


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
    adapter_ops = adapter_operations(ops)
    called = called_actions(adapter_ops)
    granted = granted_actions()
    missing = sorted(set(called) - granted)
    extra = sorted(granted - set(called) - IMPLICIT)
    print(f"iam: the code calls {len(called)} IAM actions; Terraform grants {len(granted)} ({len(IMPLICIT & granted)} implicit)")
    for action in missing:
        print(f"iam: MISSING from Terraform: {action} (called at {', '.join(sorted(called[action]))})")
    for action in extra:
        print(f"iam: EXTRA in Terraform, never called: {action}")

    problems = []
    check_assume_statements(problems)
    summary = check_cross_account_roles(adapter_ops, problems)
    for line in summary:
        print(f"iam: {line}")
    for problem in problems:
        print(f"iam: {problem}")
    if missing or extra or problems:
        sys.exit(1)
    print("iam: granted actions equal the actions the code calls (fleet roles, member role, vault role); "
          "sts:AssumeRole names only the listed role ARNs")


main()
