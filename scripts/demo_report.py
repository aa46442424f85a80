"""Prints the `make demo` report from the files in demo-out/ and asserts what it claims.

Exit status 1 when an assertion fails, so CI can run the demo (DEMO_SMALL=1) as a test.
"""
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

out = Path(sys.argv[1])
load = lambda name: json.loads((out / name).read_text())
estate, run1, run2 = load("estate.json"), load("run1.json"), load("run2.json")
tasks1, catalog1, catalog2 = load("tasks1.json"), load("catalog1.json"), load("catalog2.json")
status2 = load("status2.json")
failures = []


def check(ok, message):
    print(("  ok    " if ok else "  FAIL  ") + message)
    if not ok:
        failures.append(message)


def section(title):
    print(f"\n--- {title}")


live1 = [r for r in catalog1 if not r.get("deleted_at")]
by_resource = defaultdict(list)
for record in live1:
    by_resource[record["resource"]].append(record)


def backup_of(record):
    """A backup is what one task made: a crash-consistent snapshot set counts once."""
    details = record.get("details") or {}
    return (record["artifact"]["region"], details.get("set") or record["artifact"]["id"])


def describe_backups(records):
    units = Counter(backup_of(r) for r in records)
    sets = sum(1 for n in units.values() if n > 1)
    note = f" ({sets} set(s) of {max(units.values())} snapshots)" if sets else ""
    return len(units), note

section("backups and copies per resource (cycle 1)")
rows = []
for kind in ("volumes", "instances", "rds_instances", "rds_clusters", "buckets"):
    for resource in estate[kind]:
        records = by_resource.get(resource["id"], [])
        sources = [r for r in records if not r.get("copy_of")]
        copies = [r for r in records if r.get("copy_of")]
        regions = sorted({r["artifact"]["region"] for r in copies})
        label = "selected" if resource["selected"] else "not selected"
        n_sources, note = describe_backups(sources) if sources else (0, "")
        n_copies, _ = describe_backups(copies) if copies else (0, "")
        print(f"  {resource['id']:<40} {resource.get('region', 'us-east-1'):<10} {label:<13} backups={n_sources:<4} copies={n_copies:<4} {','.join(regions)}{note}")
        if resource["selected"]:
            check(len(sources) >= 1, f"{resource['id']} has a backup")
            if kind == "buckets":
                check(len(sources) >= resource["objects"], f"{resource['id']}: {len(sources)} objects backed up of {resource['objects']}")
            else:
                check(any(r == "us-west-2" for r in regions), f"{resource['id']} has a copy in us-west-2")
        else:
            check(not records, f"{resource['id']} (not selected) has no backups")

section("retention (cycle 1)")
by_kind = defaultdict(list)
for task in tasks1:
    by_kind[task.get("kind")].append(task)
deleted = []
for task in by_kind.get("retention.delete", []):
    result = task.get("result") or {}
    members = [result.get("artifact", {}).get("id")] + [m["id"] for m in result.get("set") or []]
    label = members[0] if len(members) == 1 else f"{members[0]} (+{len(members) - 1} of its set)"
    if result.get("deleted"):
        deleted.extend(members)
        print(f"  deleted  {label:<24} {result.get('reason', '')}")
    else:
        print(f"  refused  {label}: {result.get('refused')}")


def listed(result, name):
    """A prune result list: {"count", "first": [...]} (older results: a plain list)."""
    value = result.get(name) or []
    return value.get("first", []) if isinstance(value, dict) else value


for task in by_kind.get("retention.prune", []):
    result = task.get("result") or {}
    if listed(result, "keep") or listed(result, "delete") or listed(result, "ignored"):
        print(f"  {task.get('resource')} in {result.get('region')}: {result.get('summary')}")
        for kept in listed(result, "keep"):
            print(f"    kept     {kept['id']:<24} {', '.join(kept['reasons'])}")
        for ignored in listed(result, "ignored"):
            print(f"    ignored  {ignored['id']:<24} {ignored['why']}")
# A set is one backup: retention keeps or deletes all of it, never a part.
sets = defaultdict(set)
for record in catalog2:
    set_id = (record.get("details") or {}).get("set")
    if set_id:
        sets[(record["artifact"]["region"], set_id)].add(bool(record.get("deleted_at")))
check(all(len(states) == 1 for states in sets.values()), f"every snapshot set ({len(sets)}) is kept or deleted whole")
check(any(s in deleted for s in estate["pre_aged"]), "retention deleted at least one pre-aged backup")
for snapshot in estate["untouchable"]:
    check(snapshot not in deleted, f"{snapshot} (foreign or under legal hold) was not deleted")

section("tasks (cycle 1)")
states = Counter(t["state"] for t in tasks1)
for kind, tasks in sorted(by_kind.items()):
    print(f"  {kind:<28} {dict(Counter(t['state'] for t in tasks))}")
print(f"  total {len(tasks1)}: {dict(states)}")
check(states.get("FAILED", 0) == 0 and states.get("DEAD", 0) == 0, "no task failed")

section("coordination cost (cycle 1, both workers)")
calls = Counter()
finished = 0
cpu_tasks = 0
for w in (1, 2):
    summary = load(f"worker1-{w}.json")
    for op, n in summary["aws_calls"].items():
        calls[op] += n
    for kind, dispositions in summary["counts"]["tasks"].items():
        finished += sum(v for k, v in dispositions.items() if k in ("succeeded", "failed", "dead"))
coordination = {op: n for op, n in calls.items() if op.split(".")[0].lower() in ("sqs", "dynamodb") and "catalog" not in op}
sqs_dynamo = sum(n for op, n in calls.items() if op.split(".")[0].lower() in ("sqs",)) + calls.get("DynamoDB.UpdateItem", 0)
for op, n in sorted(calls.items()):
    print(f"  {op:<40} {n}")
if finished:
    print(f"  tasks finished: {finished}; SQS calls + task-state writes per task: {sqs_dynamo / finished:.2f} "
          "(the rest is the backup work itself: catalog writes, EC2/RDS/S3 calls)")

section("second run of the same window")
live2 = [r for r in catalog2 if not r.get("deleted_at")]
print(f"  cycle 1 enqueued {len(run1['tasks'])} tasks, cycle 2 enqueued {len(run2['tasks'])} (the same ids)")
print(f"  catalogued artifacts: {len(live1)} after cycle 1, {len(live2)} after cycle 2")
check(sorted(t["task_id"] for t in run1["tasks"]) == sorted(t["task_id"] for t in run2["tasks"]), "the same window expands to the same task ids")
check(len(live1) == len(live2), "the second run created nothing new")
dups = sum(v for w in (1, 2) for v in [load(f"worker2-{w}.json")["counts"]["tasks"].get(k, {}).get("duplicate", 0) for k in load(f"worker2-{w}.json")["counts"]["tasks"]])
print(f"  duplicates recognised and deleted without running: {dups}")

section("queues")
for queue in status2["queues"]:
    d = queue["depth"]
    print(f"  {queue['name']:<12} visible={d['visible']} in_flight={d['in_flight']}")
    if queue["name"].endswith("dlq"):
        check(d["visible"] + d["in_flight"] == 0, f"{queue['name']} is empty")

section("coverage (backupctl report coverage: live discovery against the plans and the catalog)")
coverage = load("coverage.json")
status_of = {r["id"]: r["status"] for r in coverage["resources"]}
print("  " + ", ".join(f"{k} {v}" for k, v in coverage["summary"].items()))
check((out / "coverage.rc").read_text().strip() == "0", "after the run, nothing selected is unprotected: report coverage exits 0")
for kind in ("volumes", "instances", "rds_instances", "rds_clusters", "buckets"):
    for resource in estate[kind]:
        if resource.get("name") == "scratch":
            want = "excluded"
        else:
            want = "protected" if resource["selected"] else "unprotected"
        got = status_of.get(resource["id"])
        check(got == want, f"{resource['id']} is {want} (coverage says {got})")
check(status_of.get(estate["backup_bucket"]) == "excluded", "the backup bucket is excluded, never 'unprotected'")
check(coverage["failing_controls"] == 0, f"no control fails ({coverage['failing_controls']})")
html = (out / "coverage.html").read_text()
check(f'data-total="{len(coverage["resources"])}"' in html and "<svg" in html, "the HTML report holds the same totals and its chart")
new_volume = (out / "new-volume.txt").read_text().strip()
coverage_new = load("coverage-new.json")
new_status = {r["id"]: r["status"] for r in coverage_new["resources"]}.get(new_volume)
check(new_status == "never-backed-up", f"a newly tagged volume {new_volume} is never-backed-up (says {new_status})")
check((out / "coverage-new.rc").read_text().strip() == "3", "report coverage then exits 3")
rpo_new = load("rpo-new.json")
check((out / "rpo-new.rc").read_text().strip() == "3" and any(r["resource"] == new_volume and r["status"] == "violation" for r in rpo_new["resources"]),
      "report rpo counts it as a violation and exits 3")

section("a second account, with copies in an isolated backup account")
member = estate["member"]
run1m, run2m, tasks1m, facts = load("run1-member.json"), load("run2-member.json"), load("tasks1-member.json"), load("accounts.json")
m_states = Counter(t["state"] for t in tasks1m)
print(f"  member account {member['account']}: {len(run1m['tasks'])} tasks, {dict(m_states)}; copies go to account {member['vault']} (us-west-2)")
check(all(t["account"] == member["account"] for t in run1m["tasks"]), "every task of the plan acts in the member account")
check(m_states.get("FAILED", 0) == 0 and m_states.get("DEAD", 0) == 0, "no task of the member plan failed")
check(sorted(t["task_id"] for t in run1m["tasks"]) == sorted(t["task_id"] for t in run2m["tasks"]), "the member plan's window expands to the same ids again")
for volume in member["volumes"]:
    f = facts["volumes"][volume["id"]]
    label = f"{volume['id']} ({volume['name']}{', encrypted' if volume['encrypted'] else ''})"
    print(f"  {label:<48} backups={f['sources']} copies in the backup account={f['copies']}")
    if volume["selected"]:
        check(f["sources"] == 1, f"{label}: one backup, in the member account")
        # moto's EBS keeps the key id as it was given (the alias); AWS answers with the key's ARN.
        own_key = {facts["vault_key"], "alias/backup-fleet-vault"}
        check(f["copies"] == 1 and set(f["copy_keys"]) <= own_key, f"{label}: one copy in the backup account, under its own key {f['copy_keys']}")
    else:
        check(f["sources"] == 0, f"{label} (not selected) has no backups")
check(not facts["shared"], f"nothing is left shared with the backup account ({facts['shared']})")
check(not facts["temporaries"], f"the re-encryptions made for sharing are deleted ({facts['temporaries']})")
db = member["rds_instances"][0]["id"]
db_records = [r for r in catalog2 if r["resource"] == db and not r.get("deleted_at")]
check(any(r.get("account") == member["account"] and not r.get("copy_of") for r in db_records), f"{db}: a backup catalogued under the member account")
check(any(r.get("account") == member["vault"] and r.get("copy_of") for r in db_records), f"{db}: its copy catalogued under the backup account")
check(facts["restored"]["in_vault"], f"the encrypted volume was restored inside the backup account ({facts['restored']['volume_id']})")
for resource in [v for v in member["volumes"] if v["selected"]] + member["rds_instances"]:
    row = next((r for r in load("coverage.json")["resources"] if r["id"] == resource["id"]), None)
    check(row is not None and row["status"] == "protected" and row["account"] == member["account"],
          f"coverage lists {resource['id']} in account {member['account']} as protected ({row and row['status']})")

section("logical backup of PostgreSQL and its drill (pg_dump into the Object-Locked bucket, pg_restore into a scratch database)")
dumps = [r for r in catalog2 if r["artifact"]["kind"] == "database_dump" and r["resource"] == "orders" and not r.get("deleted_at")]
check(len(dumps) == 1, f"one dump of orders catalogued ({len(dumps)}), and the second cycle made no other")
if dumps:
    dump = dumps[0]
    d = dump.get("details") or {}
    print(f"  {dump['artifact']['id']}: {dump.get('size_bytes')} bytes, {d.get('tables')} tables, {d.get('rows')} rows, sha256 {d.get('sha256', '')[:16]}...")
    check(d.get("tables") == "2" and d.get("rows") == "5200", "the manifest records both tables and all 5,200 rows")
    check(bool(d.get("lock_until")) and len(d.get("sha256", "")) == 64, "written under Object Lock with its SHA-256")
    check((dump.get("verification") or {}).get("ok") is True, "verified: the object reads back to the recorded SHA-256")
    drilled = [r for r in load("catalog-drill.json") if r["artifact"]["id"] == dump["artifact"]["id"]]
    summary = ((drilled[0].get("verification") or {}).get("checks") or {}).get("drill", "") if drilled else ""
    print(f"  drill: {summary}")
    check(summary.startswith("ok"), "the drill restored it into a scratch database: checksum, pg_restore, every table and both SQL checks pass")
check(status_of.get("orders") == "protected", f"coverage counts the named database as protected ({status_of.get('orders')})")

section("cost (backupctl report cost against a recomputation from the catalog)")
# The same arithmetic as backup_core::cost, from the price table the binary compiled in.
import tomllib
prices = tomllib.loads((Path(__file__).resolve().parent.parent / "core/prices/aws-list-prices.toml").read_text())
cost = load("cost.json")


def price(region, field, s3_class=None):
    own = prices.get("regions", {}).get(region, {})
    if s3_class:
        return own.get("s3_gb_month", {}).get(s3_class, prices["default"]["s3_gb_month"].get(s3_class, prices["default"]["s3_gb_month"]["STANDARD"]))
    return own.get(field, prices["default"][field])


GIB = 2 ** 30
expected = 0.0
for record in catalog2:
    if record.get("deleted_at"):
        continue
    kind, region = record["artifact"]["kind"], record["artifact"]["region"]
    details = record.get("details") or {}
    gib = (record.get("size_bytes") or 0) / GIB
    archived = (record.get("archive") or {}).get("archived_at")
    if kind in ("ebs_snapshot", "ami"):
        if archived:
            expected += gib * price(region, "ebs_snapshot_archive_gb_month")
        else:
            unique = details.get("unique_bytes")
            expected += (int(unique) / GIB if unique else gib) * price(region, "ebs_snapshot_standard_gb_month")
    elif kind == "rds_snapshot":
        expected += gib * price(region, "rds_snapshot_gb_month")
    elif kind == "rds_cluster_snapshot":
        expected += gib * price(region, "aurora_snapshot_gb_month")
    elif kind in ("s3_object", "database_dump", "snapshot_export"):
        expected += gib * price(region, None, details.get("storage_class") or "STANDARD")
print(f"  storage {cost['storage_monthly_usd']:.4f} USD/month over {len(cost['rows'])} rows; recomputed {expected:.4f}")
check(abs(cost["storage_monthly_usd"] - expected) < 1e-6, "report cost's storage figure matches the recomputation")
check(cost["price_table"] == prices["version"], f"priced with table {prices['version']}")
check(cost["coordination"]["tasks"] > 0, f"coordination counted ({cost['coordination']['tasks']} tasks in the period)")

print()
if failures:
    print(f"demo report: {len(failures)} check(s) FAILED")
    sys.exit(1)
print("demo report: all checks passed")
