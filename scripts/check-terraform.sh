#!/usr/bin/env bash
# Static checks of the deployment code under terraform/ (no AWS access, no network at check time,
# no `terraform init`):
#
#   1. every .tf file parses with python-hcl2 (a failure names the file);
#   2. conventions: every module has main/variables/outputs/versions.tf and a README that
#      documents each of its inputs and outputs; every variable has a type and a description,
#      every output a description; rules.json examples have the `backup-producer rules --json` shape;
#   2b. the Terraform against the code (scripts/check_iam.py, scripts/check_metrics.py,
#      scripts/check_terraform_contract.py): the IAM actions granted to the worker, producer and
#      operator roles equal the AWS actions the Rust adapters call; every metric an alarm or a
#      dashboard reads in the fleet's namespace is defined in telemetry/src/metrics.rs and exported
#      by the ADOT collector with that dimension set (plus the check's own negative self-test); the
#      queues, tables, TTL and BACKUP_* environment agree with what `backupctl bootstrap --dry-run`
#      prints (needs the built CLI: `make build`; cargo on PATH);
#   3. checkov (offline) reports no failed check on terraform/ and on the Dockerfile; skips must be
#      written in the code as `#checkov:skip=CKV_...:reason`;
#   4. `terraform fmt -check -recursive`, only when terraform is on PATH (CI need not have it).
#
# Tools: python-hcl2 goes into the project venv $REPO/.venv; checkov into its own venv
# $REPO/.venv/tools/checkov (see scripts/requirements-checks.txt for why). Both are installed on
# first use and re-installed only when scripts/requirements-checks.txt or the Python changes (stamp
# file), so a warm run does no pip work.
#
# Environment:
#   PYTHON                  interpreter used to create the venvs (default python3)
#   CHECK_TERRAFORM_SKIP_CHECKOV=1   run only steps 1, 2, 2b and 4 (quick local loop)
#   BACKUPCTL               the backupctl binary for step 2b (default
#                           ${CARGO_TARGET_DIR:-$HOME/.cache/backup-fleet/target}/debug/backupctl)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$REPO/scripts/requirements-checks.txt"
TF_DIR="$REPO/terraform"
VENV="$REPO/.venv"
VPY="$VENV/bin/python"
CK_VENV="$VENV/tools/checkov"
CK_PY="$CK_VENV/bin/python"
STAMP="$VENV/.checks-requirements.sha256"
PYTHON="${PYTHON:-python3}"

log() { printf 'check-terraform: %s\n' "$*" >&2; }
die() { printf 'check-terraform: error: %s\n' "$*" >&2; exit 1; }

start=$(date +%s)

[[ -d "$TF_DIR" ]] || die "no terraform/ directory in $REPO"
[[ -f "$REQ" ]] || die "missing $REQ"

# --- install -----------------------------------------------------------------------------------

# Lines of one section ("#@ venv NAME") of the requirements file, comments and blanks dropped.
section() {
    awk -v want="$1" '
        /^#@ venv / { cur = $3; next }
        /^[[:space:]]*(#|$)/ { next }
        cur == want { print }
    ' "$REQ"
}

req_hash() {
    {
        cat "$REQ"
        "$PYTHON" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

# Run a command quietly; on failure show its output and die.
quiet() {
    local what="$1" out
    shift
    if ! out="$("$@" 2>&1)"; then
        printf '%s\n' "$out" >&2
        die "$what failed"
    fi
}

install_tools() {
    local want
    want="$(req_hash)"
    if [[ -x "$VPY" && -x "$CK_PY" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
        return 0
    fi

    # Serialise with scripts/emulator.sh, which installs moto into the same venv.
    mkdir -p "$REPO/.emulator"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$REPO/.emulator/lock"
        flock -w 600 9 || die "timed out waiting for $REPO/.emulator/lock"
    fi

    local t0 main_reqs ck_reqs
    t0=$(date +%s)
    main_reqs="$(section .venv)"
    ck_reqs="$(section .venv/tools/checkov)"
    [[ -n "$main_reqs" && -n "$ck_reqs" ]] || die "$REQ: a '#@ venv' section is empty or missing"

    if [[ ! -x "$VPY" ]]; then
        log "creating $VENV"
        quiet "venv creation" "$PYTHON" -m venv "$VENV"
    fi
    log "installing python-hcl2 into $VENV"
    # shellcheck disable=SC2086 # one requirement per word
    quiet "pip install (python-hcl2)" "$VPY" -m pip install --quiet --disable-pip-version-check \
        --no-input $main_reqs

    if [[ ! -x "$CK_PY" ]]; then
        log "creating $CK_VENV"
        quiet "venv creation (checkov)" "$PYTHON" -m venv "$CK_VENV"
    fi
    log "installing checkov into $CK_VENV"
    local ck_file
    ck_file="$(mktemp)"
    printf '%s\n' "$ck_reqs" >"$ck_file"
    quiet "pip install (checkov)" "$CK_PY" -m pip install --quiet --disable-pip-version-check \
        --no-input -r "$ck_file"
    rm -f "$ck_file"

    printf '%s\n' "$want" >"$STAMP"
    log "tools installed in $(($(date +%s) - t0)) s"
}

install_tools

# --- 1 + 2: parse and conventions --------------------------------------------------------------

log "parsing .tf files (python-hcl2) and checking conventions"
"$VPY" - "$TF_DIR" <<'PY'
import json
import os
import re
import sys

import hcl2

root = sys.argv[1]
errors = []


def unquote(s):
    # python-hcl2 >= 5 keeps the quotes of string literals and block labels.
    if isinstance(s, str) and len(s) >= 2 and s[0] == s[-1] == '"':
        return s[1:-1]
    return s


def blocks(doc, kind):
    for entry in doc.get(kind, []):
        for label, body in entry.items():
            if not label.startswith("__"):
                yield unquote(label), body


parsed = {}
for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    for name in sorted(filenames):
        if not name.endswith(".tf"):
            continue
        path = os.path.join(dirpath, name)
        rel = os.path.relpath(path, os.path.dirname(root))
        try:
            with open(path, encoding="utf-8") as f:
                parsed[path] = hcl2.load(f)
        except Exception as e:  # noqa: BLE001 - any parser error is a failure for that file
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            errors.append(f"{rel}: does not parse: {first}")

if not parsed and not errors:
    errors.append("terraform/: no .tf files found")

# Variables typed and described, outputs described.
for path, doc in parsed.items():
    rel = os.path.relpath(path, os.path.dirname(root))
    for name, body in blocks(doc, "variable"):
        if "type" not in body:
            errors.append(f"{rel}: variable {name!r} has no type")
        if not unquote(body.get("description", "")).strip():
            errors.append(f"{rel}: variable {name!r} has no description")
    for name, body in blocks(doc, "output"):
        if not unquote(body.get("description", "")).strip():
            errors.append(f"{rel}: output {name!r} has no description")

# Module layout and README in sync with inputs/outputs.
modules_dir = os.path.join(root, "modules")
if os.path.isdir(modules_dir):
    for mod in sorted(os.listdir(modules_dir)):
        mdir = os.path.join(modules_dir, mod)
        if not os.path.isdir(mdir):
            continue
        for required in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
            if not os.path.isfile(os.path.join(mdir, required)):
                errors.append(f"terraform/modules/{mod}: missing {required}")
        readme_path = os.path.join(mdir, "README.md")
        if not os.path.isfile(readme_path):
            continue
        readme = open(readme_path, encoding="utf-8").read()
        for path, doc in parsed.items():
            if os.path.dirname(path) != mdir:
                continue
            for kind in ("variable", "output"):
                for name, _ in blocks(doc, kind):
                    if f"`{name}`" not in readme:
                        errors.append(f"terraform/modules/{mod}/README.md: {kind} `{name}` is not documented")

# IAM: every action of the fleet's roles comes from the `*_actions` maps in the iam module's
# locals (one place per role, read by the code-vs-IAM test), and every group there is used.
iam_main = os.path.join(root, "modules", "iam", "main.tf")
if os.path.isfile(iam_main) and iam_main in parsed:
    text = open(iam_main, encoding="utf-8").read()
    action_maps = {}
    for entry in parsed[iam_main].get("locals", []):
        for k, v in entry.items():
            if k.endswith("_actions") and isinstance(v, dict):
                action_maps[k] = v
    if "worker_actions" not in action_maps or "producer_actions" not in action_maps:
        errors.append("terraform/modules/iam/main.tf: locals must define worker_actions and producer_actions")
    # Policy documents other than trust policies (`*_assume`) take actions only from the maps.
    for m in re.finditer(r'data "aws_iam_policy_document" "(\w+)" \{(.*?)\n\}', text, re.S):
        name, body = m.group(1), m.group(2)
        if name.endswith("_assume"):
            continue
        for a in re.finditer(r"\bactions\s*=\s*(.+)", body):
            if not re.fullmatch(r"local\.\w+_actions\.\w+", a.group(1).strip()):
                errors.append(f"terraform/modules/iam/main.tf: policy {name!r} lists actions outside the *_actions locals: {a.group(1).strip()}")
    for mname, groups in action_maps.items():
        for g in groups:
            if f"local.{mname}.{g}" not in text:
                errors.append(f"terraform/modules/iam/main.tf: local.{mname}.{g} is not used by any statement")

# rules.json: the shape `backup-producer rules --json` prints.
for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    if "rules.json" not in filenames:
        continue
    path = os.path.join(dirpath, "rules.json")
    rel = os.path.relpath(path, os.path.dirname(root))
    try:
        rules = json.load(open(path, encoding="utf-8"))
    except ValueError as e:
        errors.append(f"{rel}: not JSON: {e}")
        continue
    if not isinstance(rules, list):
        errors.append(f"{rel}: must be a JSON list")
        continue
    for i, r in enumerate(rules):
        where = f"{rel}[{i}]"
        if not isinstance(r, dict) or not isinstance(r.get("name"), str):
            errors.append(f"{where}: needs a string `name`")
            continue
        sched, pattern = r.get("schedule_expression"), r.get("event_pattern")
        if (sched is None) == (pattern is None):
            errors.append(f"{where}: needs exactly one of schedule_expression / event_pattern")
        if sched is not None and not re.fullmatch(r"(cron|rate)\(.+\)", sched):
            errors.append(f"{where}: schedule_expression must be cron(...) or rate(...)")
        if pattern is not None:
            try:
                json.loads(pattern)
            except (TypeError, ValueError):
                errors.append(f"{where}: event_pattern must be a JSON string")

for e in errors:
    print(f"check-terraform: error: {e}", file=sys.stderr)
print(f"check-terraform: {len(parsed)} .tf files parsed, {len(errors)} problem(s)", file=sys.stderr)
sys.exit(1 if errors else 0)
PY

# --- 2b: the Terraform against the code -----------------------------------------------------------

log "IAM actions vs the AWS calls in the code (scripts/check_iam.py)"
"$VPY" "$REPO/scripts/check_iam.py" "$REPO" || die "IAM grants differ from the code's AWS calls (see above)"

log "alarm and dashboard metrics vs the code's instruments and the collector (scripts/check_metrics.py)"
# Negative self-test first: made-up alarms and widgets on bogus metrics must fail the check.
if ! selftest_out="$("$VPY" "$REPO/scripts/check_metrics.py" --self-test "$REPO" 2>&1)"; then
    printf '%s\n' "$selftest_out" >&2
    die "check_metrics.py --self-test failed: the check no longer catches a bogus metric (see above)"
fi
log "$(tail -n 1 <<<"$selftest_out")"
"$VPY" "$REPO/scripts/check_metrics.py" "$REPO" || die "alarms or dashboards read metrics the fleet does not publish (see above)"

log "Terraform vs \`backupctl bootstrap --dry-run\` (scripts/check_terraform_contract.py)"
"$VPY" "$REPO/scripts/check_terraform_contract.py" "$REPO" || die "Terraform and backupctl bootstrap disagree (see above)"

# --- 3: checkov ----------------------------------------------------------------------------------

# checkov LABEL ARGS...: run checkov offline, print its report, fail on any failed check.
# Offline switches: --skip-download and BC_SKIP_MAPPING: no policy metadata / guideline downloads
# from the Prisma/Bridgecrew platform; CKV_SKIP_PACKAGE_UPDATE_CHECK: no PyPI version check;
# --download-external-modules false: no registry/git module fetches (all modules are local). No
# API key is passed, so nothing is uploaded. Checked to finish in a network namespace with no
# network at all (`unshare -n`).
run_checkov() {
    local label="$1" out rc summary
    shift
    out="$(mktemp)"
    set +e
    (
        cd "$REPO"
        env BC_SKIP_MAPPING=TRUE \
            CKV_SKIP_PACKAGE_UPDATE_CHECK=true \
            LOG_LEVEL=WARNING \
            "$CK_VENV/bin/checkov" "$@" \
            --skip-download \
            --quiet --compact \
            --output cli
    ) >"$out" 2>&1
    rc=$?
    set -e
    cat "$out"
    summary="$(grep -E 'Passed checks: [0-9]+, Failed checks: [0-9]+' "$out" | tail -n 1 || true)"
    rm -f "$out"
    if [[ $rc -ne 0 ]]; then
        die "checkov ($label) reported failed checks or errors (exit $rc)${summary:+: $summary}"
    fi
    [[ -n "$summary" ]] || die "checkov ($label) printed no summary; did it scan anything?"
    log "checkov ($label): $summary"
}

if [[ "${CHECK_TERRAFORM_SKIP_CHECKOV:-0}" == "1" ]]; then
    log "checkov skipped (CHECK_TERRAFORM_SKIP_CHECKOV=1)"
else
    log "running checkov on terraform/ (offline)"
    run_checkov terraform --directory terraform --framework terraform --download-external-modules false
    if [[ -f "$REPO/Dockerfile" ]]; then
        log "running checkov on Dockerfile (offline)"
        run_checkov Dockerfile --file Dockerfile --framework dockerfile
    fi
fi

# --- 4: terraform fmt (optional) -------------------------------------------------------------------

if command -v terraform >/dev/null 2>&1; then
    log "terraform fmt -check -recursive"
    if ! (cd "$TF_DIR" && terraform fmt -check -recursive -diff 2>/dev/null); then
        die "terraform fmt found unformatted files (run: terraform fmt -recursive terraform)"
    fi
else
    log "terraform not on PATH: fmt check skipped"
fi

log "ok in $(($(date +%s) - start)) s"
