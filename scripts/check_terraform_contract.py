"""Terraform and `backupctl bootstrap` describe the same fleet: checked, not assumed.

`backupctl bootstrap` creates the fleet's queues and tables for local runs and the emulator;
Terraform creates them in production. Both must agree, and the ECS services must hand the binaries
the settings they read. This script runs `backupctl bootstrap --prefix <p> --dry-run` (it prints
its settings as JSON and creates nothing) and proves, against the Terraform parsed with
python-hcl2:

  queues   every setting the CLI prints (visibility timeouts, maxReceiveCount of tasks and events,
           retention, DLQ retention, long-poll wait) equals what `modules/queues` applies with its
           variable defaults (the attribute of each aws_sqs_queue is followed to its variable), the
           names match and each queue redrives into its own DLQ; the same values with the
           defaults of `examples/complete` (which passes its own variables to the module);
  heartbeat the task visibility timeout is >= 2 x the worker heartbeat that `modules/fleet` passes
           as BACKUP_HEARTBEAT_SECS (default of var.worker_runtime.heartbeat_seconds), the worker's
           BACKUP_VISIBILITY_TIMEOUT_SECS default equals the queue's, and the queues module's
           worker_heartbeat_seconds default (its precondition) equals the fleet's heartbeat;
  tables   `modules/state` has the same tables (names), hash/range keys and GSIs (name, keys),
           with TTL enabled on the CLI's `ttl_attribute`;
  env      every name of the CLI's `env` list is set (unconditionally) on both the worker and the
           producer container of `modules/fleet`, and no BACKUP_* variable the fleet sets is
           unread by the binaries (readable = `env = "BACKUP_..."` clap arguments and
           `env::var("BACKUP_...")` reads in worker/, producer/ and ctl/ sources, plus the CLI's
           list).

Usage: check_terraform_contract.py [repo root]. The CLI is $BACKUPCTL, else
${CARGO_TARGET_DIR:-$HOME/.cache/backup-fleet/target}/debug/backupctl (built by `make build`).
Exit 1 with one line per mismatch; 0 when everything agrees.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import hcl2

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
TF = ROOT / "terraform"
PREFIX = "contract-check"  # any valid prefix: names are compared as "<prefix>-<suffix>"

problems = []
checked = []


def problem(msg):
    problems.append(msg)


def ok(msg):
    checked.append(msg)


# --- HCL helpers -----------------------------------------------------------------------------------


def unquote(v):
    # python-hcl2 >= 5 keeps the quotes of string literals and block labels.
    if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"':
        return v[1:-1]
    return v


def expr(v):
    """The bare expression of an interpolation `${...}` (other values unchanged)."""
    v = unquote(v)
    if isinstance(v, str) and v.startswith("${") and v.endswith("}"):
        return v[2:-1].strip()
    return v


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return hcl2.load(f)
    except FileNotFoundError:
        problem(f"{path.relative_to(ROOT)}: missing")
    except Exception as e:  # noqa: BLE001 - a parse error is a failure of this check
        problem(f"{path.relative_to(ROOT)}: does not parse: {str(e).strip().splitlines()[0] if str(e).strip() else e}")
    return {}


def load_module(directory):
    docs = [load(p) for p in sorted(directory.glob("*.tf"))]
    return {
        "variables": {unquote(k): v for d in docs for e in d.get("variable", []) for k, v in e.items() if not k.startswith("__")},
        "locals": {k: v for d in docs for e in d.get("locals", []) for k, v in e.items() if not k.startswith("__")},
        "resources": {
            (unquote(t), unquote(n)): body
            for d in docs for e in d.get("resource", []) for t, named in e.items() if not t.startswith("__")
            for n, body in named.items() if not n.startswith("__")
        },
        "modules": {unquote(k): v for d in docs for e in d.get("module", []) for k, v in e.items() if not k.startswith("__")},
    }


def optional_default(type_expr, field):
    """N of `field = optional(number, N)` in an object type expression, else None."""
    m = re.search(rf"\b{field}\s*=\s*optional\(\s*number\s*,\s*(\d+)\s*\)", str(type_expr))
    return int(m.group(1)) if m else None


def resolve_name(value, mod):
    """A resource name with `local.x` followed and `${var.name}` replaced by PREFIX."""
    v = expr(value)
    m = re.fullmatch(r"local\.(\w+)", str(v))
    if m and m.group(1) in mod["locals"]:
        v = unquote(mod["locals"][m.group(1)])
    return str(v).replace("${var.name}", PREFIX)


def module_default(mod, var, where):
    body = mod["variables"].get(var)
    if body is None:
        problem(f"{where}: var.{var} is not declared")
        return None
    if "default" not in body:
        problem(f"{where}: var.{var} has no default to compare with the CLI's")
        return None
    return body["default"]


def value_of(expression, mod, where):
    """The value an attribute gets with the module's defaults: a literal, or `var.x`'s default."""
    e = expr(expression)
    if isinstance(e, (int, float)) and not isinstance(e, bool):
        return e
    m = re.fullmatch(r"var\.(\w+)", str(e))
    if m:
        return module_default(mod, m.group(1), where)
    problem(f"{where}: cannot evaluate {e!r} (expected a number or var.<name>)")
    return None


# --- the CLI ---------------------------------------------------------------------------------------


def cli_settings():
    binary = os.environ.get("BACKUPCTL") or str(
        Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache/backup-fleet/target") / "debug" / "backupctl"
    )
    if not os.access(binary, os.X_OK):
        sys.exit(f"contract: error: {binary} not found: run `make build` first (or set BACKUPCTL)")
    env = dict(os.environ)
    # No AWS access is needed for --dry-run; keep the SDK from probing IMDS for a region.
    env.setdefault("AWS_REGION", "us-east-1")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    cmd = [binary, "bootstrap", "--prefix", PREFIX, "--dry-run"]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        sys.exit(f"contract: error: `{' '.join(cmd)}` did not finish in 120 s")
    if out.returncode != 0:
        tail = "\n".join(out.stderr.strip().splitlines()[-5:])
        sys.exit(f"contract: error: `{' '.join(cmd)}` exited {out.returncode} (is {binary} stale? run `make build`):\n{tail}")
    try:
        return json.loads(out.stdout)
    except ValueError as e:
        sys.exit(f"contract: error: `{' '.join(cmd)}` printed no JSON ({e}); run `make build` if the binary is stale")


# --- queues ----------------------------------------------------------------------------------------

# CLI queue key -> (aws_sqs_queue label in modules/queues, its DLQ's key or None).
QUEUES = {
    "tasks": ("tasks", "tasks_dlq"),
    "tasks_dlq": ("task_dlq", None),
    "events": ("events", "events_dlq"),
    "events_dlq": ("events_dlq", None),
}
# CLI field -> aws_sqs_queue attribute (maxReceiveCount lives in redrive_policy).
QUEUE_FIELDS = {
    "visibility_timeout_secs": "visibility_timeout_seconds",
    "retention_secs": "message_retention_seconds",
    "receive_wait_secs": "receive_wait_time_seconds",
    "max_receive_count": "redrive_policy",
}


def queue_bindings(queues_mod):
    """{(cli queue, cli field): module variable name or literal} from modules/queues' resources."""
    bindings = {}
    for key, (label, dlq_key) in QUEUES.items():
        where = f"terraform/modules/queues: aws_sqs_queue.{label}"
        body = queues_mod["resources"].get(("aws_sqs_queue", label))
        if body is None:
            problem(f"{where}: no such resource (the CLI creates queue {key!r})")
            continue
        bindings[(key, "name")] = resolve_name(body.get("name", ""), queues_mod)
        redrive = str(expr(body.get("redrive_policy", "")))
        if dlq_key:
            m = re.search(r"deadLetterTargetArn\s*=\s*aws_sqs_queue\.(\w+)\.arn", redrive)
            want = QUEUES[dlq_key][0]
            if not m or m.group(1) != want:
                problem(f"{where}: redrive_policy must target aws_sqs_queue.{want} (the CLI's {dlq_key}), found {m.group(1) if m else 'none'}")
        for field, attribute in QUEUE_FIELDS.items():
            if attribute == "redrive_policy":
                m = re.search(r"maxReceiveCount\s*=\s*(var\.\w+|\d+)", redrive)
                bindings[(key, field)] = m.group(1) if m else None
            else:
                bindings[(key, field)] = expr(body[attribute]) if attribute in body else None
    return bindings


def check_queues(cli, queues_mod, example_mod, heartbeat):
    bindings = queue_bindings(queues_mod)
    task_visibility = None
    for key, settings in sorted(cli.get("queues", {}).items()):
        if key not in QUEUES:
            problem(f"queues: the CLI creates queue {key!r}, which this check does not know (update QUEUES)")
            continue
        label = QUEUES[key][0]
        where = f"terraform/modules/queues: aws_sqs_queue.{label}"
        if (key, "name") in bindings and bindings[(key, "name")] != settings.get("name"):
            problem(f"{where}: name {bindings[(key, 'name')]!r} != CLI {settings.get('name')!r} (with var.name = {PREFIX!r})")
        for field, want in sorted(settings.items()):
            if field == "name":
                continue
            if field not in QUEUE_FIELDS:
                problem(f"queues.{key}: the CLI prints {field!r}, which this check does not know (update QUEUE_FIELDS)")
                continue
            if (key, field) not in bindings:
                continue  # the resource is missing, already reported
            binding = bindings[(key, field)]
            attr = QUEUE_FIELDS[field].replace("redrive_policy", "redrive_policy.maxReceiveCount")
            if binding is None:
                problem(f"{where}: {attr} not set (AWS default) but the CLI sets {field} = {want}")
                continue
            got = value_of(binding, queues_mod, where)
            if got is not None and got != want:
                problem(f"{where}: {attr} = {binding} = {got} (module default) != CLI queues.{key}.{field} = {want}")
            elif got is not None:
                ok(f"queues.{key}.{field} = {want}")
            # examples/complete passes its own variables to the module: their defaults apply there.
            if example_mod is not None:
                check_example_value(example_mod, queues_mod, binding, f"queues.{key}.{field}", want)
        if key == "tasks":
            task_visibility = settings.get("visibility_timeout_secs")

    # The worker extends a running task's visibility every heartbeat: a timeout shorter than two
    # heartbeats lets the message reappear (and another worker take it) while the task runs.
    if task_visibility is not None and heartbeat is not None:
        if task_visibility < 2 * heartbeat:
            problem(f"queues.tasks: visibility timeout {task_visibility} s < 2 x worker heartbeat {heartbeat} s (modules/fleet BACKUP_HEARTBEAT_SECS)")
        else:
            ok(f"task visibility {task_visibility} s >= 2 x heartbeat {heartbeat} s")
        hb_default = module_default(queues_mod, "worker_heartbeat_seconds", "terraform/modules/queues")
        if hb_default is not None and hb_default != heartbeat:
            problem(f"terraform/modules/queues: var.worker_heartbeat_seconds default {hb_default} != modules/fleet heartbeat default {heartbeat} (the visibility precondition uses it)")
    return task_visibility


def check_example_value(example_mod, queues_mod, binding, what, want):
    """The value examples/complete gives the module variable behind `binding`, vs the CLI's."""
    m = re.fullmatch(r"var\.(\w+)", str(binding))
    if not m:
        return
    module_var = m.group(1)
    call = example_mod["modules"].get("queues")
    where = "terraform/examples/complete: module.queues"
    if call is None:
        problem(f"{where}: no module \"queues\" block")
        return
    if module_var not in call:
        return  # the module default applies, checked above
    e = expr(call[module_var])
    if isinstance(e, (int, float)) and not isinstance(e, bool):
        got, how = e, "literal"
    else:
        rm = re.fullmatch(r"var\.(\w+)", str(e))
        if not rm:
            problem(f"{where}: {module_var} = {e!r} cannot be evaluated (expected a number or var.<name>)")
            return
        body = example_mod["variables"].get(rm.group(1), {})
        if "default" not in body:
            return  # required input: the deployer chooses it
        got, how = body["default"], f"var.{rm.group(1)} default"
    if got != want:
        problem(f"{where}: {module_var} = {got} ({how}) != CLI {what} = {want}")


def check_example_heartbeat(example_mod):
    """examples/complete: its own task visibility default >= 2 x its own heartbeat default."""
    where = "terraform/examples/complete"
    visibility = example_mod["variables"].get("task_visibility_timeout_seconds", {}).get("default")
    heartbeat = optional_default(example_mod["variables"].get("worker_runtime", {}).get("type", ""), "heartbeat_seconds")
    if visibility is None or heartbeat is None:
        return
    if visibility < 2 * heartbeat:
        problem(f"{where}: task_visibility_timeout_seconds default {visibility} < 2 x worker_runtime.heartbeat_seconds default {heartbeat}")


# --- fleet: heartbeat and environment ---------------------------------------------------------------


def env_keys(expression):
    """(all keys, conditional keys) of the map literals in an environment expression."""
    text = str(expr(expression))
    keys = set(re.findall(r"(?<![\w.\"])([A-Z][A-Z0-9_]*)\s*=(?!=)", text))
    conditional = set(re.findall(r"\?\s*\{\s*([A-Z][A-Z0-9_]*)\s*=(?!=)", text))
    return keys, conditional


def container_environment(fleet_mod, local_name):
    """Keys (all, unconditional) of local.<local_name>, following local.* references."""
    seen, keys, conditional = set(), set(), set()
    todo = [local_name]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in fleet_mod["locals"]:
            problem(f"terraform/modules/fleet: local.{name} is not defined")
            continue
        value = fleet_mod["locals"][name]
        k, c = env_keys(value)
        keys |= k
        conditional |= c
        todo += [r for r in re.findall(r"local\.(\w+_environment)\b", str(value))]
    return keys, keys - conditional


def fleet_heartbeat(fleet_mod):
    where = "terraform/modules/fleet"
    runtime = fleet_mod["variables"].get("worker_runtime")
    worker_env = str(expr(fleet_mod["locals"].get("worker_environment", "")))
    result = {}
    for env_name, field in (("BACKUP_HEARTBEAT_SECS", "heartbeat_seconds"), ("BACKUP_VISIBILITY_TIMEOUT_SECS", "visibility_timeout_seconds")):
        if not re.search(rf"\b{env_name}\s*=\s*tostring\(\s*var\.worker_runtime\.{field}\s*\)", worker_env):
            problem(f"{where}: local.worker_environment must set {env_name} = tostring(var.worker_runtime.{field})")
            result[field] = None
            continue
        value = optional_default(runtime.get("type") if runtime else "", field)
        if value is None:
            problem(f"{where}: var.worker_runtime has no `{field} = optional(number, N)` default")
        result[field] = value
    return result


def readable_env(cli):
    names = set(cli.get("env", []))
    for crate in ("worker", "producer", "ctl"):
        for path in (ROOT / crate / "src").rglob("*.rs"):
            text = path.read_text(encoding="utf-8")
            names.update(re.findall(r'\benv\s*=\s*"(BACKUP_[A-Z0-9_]*)"', text))
            names.update(re.findall(r'\benv::var(?:_os)?\(\s*"(BACKUP_[A-Z0-9_]*)"', text))
    return names


def check_environment(cli, fleet_mod):
    where = "terraform/modules/fleet"
    readable = readable_env(cli)
    required = list(cli.get("env", []))
    if not required:
        problem("env: the CLI printed no `env` list")
    for container, local_name in (("worker", "worker_environment"), ("producer", "producer_environment")):
        td = fleet_mod["resources"].get(("aws_ecs_task_definition", container))
        if td is None:
            problem(f"{where}: no aws_ecs_task_definition.{container}")
            continue
        if f"local.{local_name}" not in str(td.get("container_definitions", "")):
            problem(f"{where}: aws_ecs_task_definition.{container} does not take its environment from local.{local_name}")
        keys, unconditional = container_environment(fleet_mod, local_name)
        for name in required:
            if name not in keys:
                problem(f"{where}: the {container} container does not set {name} (the CLI's env list; every binary reads it)")
            elif name not in unconditional:
                problem(f"{where}: the {container} container sets {name} only conditionally")
        unread = sorted(k for k in keys if k.startswith("BACKUP_") and k not in readable)
        for name in unread:
            problem(f"{where}: the {container} container sets {name}, which no binary reads (no `env = \"{name}\"` in worker/, producer/, ctl/)")
        if not unread and all(n in unconditional for n in required):
            ok(f"{container} container: {len(required)} CLI env names set, {len([k for k in keys if k.startswith('BACKUP_')])} BACKUP_* all read")


# --- tables ----------------------------------------------------------------------------------------


def check_tables(cli, state_mod):
    where = "terraform/modules/state"
    tf_tables = {}
    for (rtype, label), body in state_mod["resources"].items():
        if rtype == "aws_dynamodb_table":
            tf_tables[resolve_name(body.get("name", ""), state_mod)] = (label, body)
    cli_tables = cli.get("tables", {})
    ttl_attribute = cli.get("ttl_attribute")
    if not ttl_attribute:
        problem("tables: the CLI printed no ttl_attribute")
    for key, table in sorted(cli_tables.items()):
        name = table.get("name")
        if name not in tf_tables:
            problem(f"{where}: no aws_dynamodb_table named {name!r} (var.name = {PREFIX!r}); the CLI creates table {key!r}")
            continue
        label, body = tf_tables[name]
        w = f"{where}: aws_dynamodb_table.{label}"
        for field in ("hash_key", "range_key"):
            got, want = unquote(body.get(field)), table.get(field)
            if got != want:
                problem(f"{w}: {field} {got!r} != CLI tables.{key}.{field} {want!r}")
        tf_gsis = {}
        for gsi in body.get("global_secondary_index", []):
            keys = [unquote(gsi.get("hash_key"))] + ([unquote(gsi["range_key"])] if gsi.get("range_key") else [])
            tf_gsis[unquote(gsi.get("name"))] = keys
        cli_gsis = {n: list(k) for n, k in table.get("indexes", {}).items()}
        for n in sorted(set(tf_gsis) | set(cli_gsis)):
            if n not in tf_gsis:
                problem(f"{w}: no global_secondary_index {n!r} (CLI keys {cli_gsis[n]})")
            elif n not in cli_gsis:
                problem(f"{w}: global_secondary_index {n!r} is not created by the CLI")
            elif tf_gsis[n] != cli_gsis[n]:
                problem(f"{w}: global_secondary_index {n!r} keys {tf_gsis[n]} != CLI {cli_gsis[n]}")
        ttl = (body.get("ttl") or [{}])[0]
        if unquote(ttl.get("attribute_name")) != ttl_attribute or ttl.get("enabled") is not True:
            problem(f"{w}: ttl must be enabled on {ttl_attribute!r} (the CLI's ttl_attribute); found attribute_name={unquote(ttl.get('attribute_name'))!r} enabled={ttl.get('enabled')!r}")
        ok(f"table {key}: keys, {len(cli_gsis)} GSI(s), TTL on {ttl_attribute!r}")
    for name, (label, _) in sorted(tf_tables.items()):
        if name not in {t.get("name") for t in cli_tables.values()}:
            problem(f"{where}: aws_dynamodb_table.{label} ({name!r}) is not created by the CLI")


def main():
    cli = cli_settings()
    queues_mod = load_module(TF / "modules" / "queues")
    state_mod = load_module(TF / "modules" / "state")
    fleet_mod = load_module(TF / "modules" / "fleet")
    example_dir = TF / "examples" / "complete"
    example_mod = load_module(example_dir) if example_dir.is_dir() else None

    runtime = fleet_heartbeat(fleet_mod)
    task_visibility = check_queues(cli, queues_mod, example_mod, runtime.get("heartbeat_seconds"))
    fleet_visibility = runtime.get("visibility_timeout_seconds")
    if task_visibility is not None and fleet_visibility is not None and fleet_visibility != task_visibility:
        problem(f"terraform/modules/fleet: worker_runtime.visibility_timeout_seconds default {fleet_visibility} (BACKUP_VISIBILITY_TIMEOUT_SECS) != the task queue's {task_visibility}")
    if example_mod is not None:
        check_example_heartbeat(example_mod)
    check_tables(cli, state_mod)
    check_environment(cli, fleet_mod)

    for p in problems:
        print(f"contract: MISMATCH: {p}")
    if problems:
        print(f"contract: {len(problems)} mismatch(es) between `backupctl bootstrap --dry-run` and terraform/")
        sys.exit(1)
    print(f"contract: terraform/ agrees with `backupctl bootstrap --dry-run` ({len(checked)} checks: "
          "queue settings, heartbeat, tables, TTL, environment)")


main()
