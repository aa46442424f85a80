#!/usr/bin/env bash
# make demo: a full backup cycle against the local emulator, with a report.
#
# Starts the emulator (unless one answers), bootstraps a fleet, seeds a realistic estate, runs the
# producer and two worker processes through the daily plan (cross-region copies, retention,
# verification), and a PostgreSQL database (a server on loopback, from the OS packages) through a
# logical backup and a drill that proves its data; prints a report, then runs the same window
# again to show that nothing new is created. Leaves nothing running. DEMO_SMALL=1 seeds a smaller
# estate (CI).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bin="${CARGO_TARGET_DIR:-$HOME/.cache/backup-fleet/target}/debug"
for b in backup-producer backup-worker backupctl; do
  [ -x "$bin/$b" ] || { echo "demo: $bin/$b is missing; run 'make build' (make demo does)" >&2; exit 1; }
done
# The demo owns a fresh emulator of its own, so that nothing else's resources are discovered. It
# runs with the realism layer on (docs/EMULATOR.md): snapshots, copies and restores stay pending for
# a few seconds, new resources are invisible to Describe for a moment, and AWS's quotas apply.
# DEMO_REALISM=off runs it against plain moto; any other value is passed as EMULATOR_REALISM.
export MOTO_PORT="${DEMO_MOTO_PORT:-4577}"
export EMULATOR_REALISM="${DEMO_REALISM:-@$repo/demo/realism.json}"
out="$repo/demo-out"
rm -rf "$out"; mkdir -p "$out"

started=0
workers=()
pg_port="${DEMO_PG_PORT:-25477}"
pg_dir="/tmp/backup-fleet-demo-pg-$pg_port"
cleanup() {
  for pid in "${workers[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  if [ "$started" = 1 ]; then bash scripts/emulator.sh stop >/dev/null 2>&1 || true; fi
  bash scripts/postgres.sh stop "$pg_dir" >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap cleanup EXIT
if curl -s -o /dev/null "http://127.0.0.1:${MOTO_PORT}/moto-api/config"; then
  echo "demo: reusing the emulator on port $MOTO_PORT as it is (its realism settings were set when it started)"
  bash scripts/emulator.sh reset >/dev/null
else
  bash scripts/emulator.sh start
  started=1
fi
eval "$(bash scripts/emulator.sh env)"
export AWS_EC2_METADATA_DISABLED=true BACKUP_LOG_FORMAT=json RUST_LOG="${RUST_LOG:-info}"

prefix="demo$(date +%s)"
step() { printf '\n== %s\n' "$*"; }

step "bootstrap fleet $prefix"
"$bin/backupctl" bootstrap --prefix "$prefix" --format json > "$out/resources.json"
eval "$("$bin/backupctl" bootstrap --prefix "$prefix" --format env)"
cat "$out/resources.json"

step "seed the estate (EC2 in us-east-1 and eu-west-1, RDS, Aurora, S3, pre-aged backups)"
"$repo/.venv/bin/python" scripts/demo_seed.py "$prefix" "$BACKUP_CATALOG_TABLE" > "$out/estate.json"
"$repo/.venv/bin/python" scripts/demo_util.py estate "$out/estate.json"
step "a PostgreSQL database on loopback for the logical backups (scripts/postgres.sh, OS packages)"
bash scripts/postgres.sh install
bash scripts/postgres.sh stop "$pg_dir" >/dev/null 2>&1 || true
rm -rf "$pg_dir"
pg_password="demo-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
bash scripts/postgres.sh start "$pg_dir" "$pg_port" "$pg_password"
pg_bin="$(bash scripts/postgres.sh bindir)"
export BACKUP_PG_BIN_DIR="$pg_bin"
pg() { PGPASSWORD="$pg_password" "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }
pg -d postgres -c "CREATE DATABASE orders"
pg -d orders -c "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
  CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int REFERENCES customers(id), amount numeric(10,2), placed timestamptz);
  INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 200) g;
  INSERT INTO orders SELECT g, 1 + g % 200, g * 0.75, timestamptz '2026-01-01' + g * interval '1 minute' FROM generate_series(1, 5000) g;"
secret() { printf '{"engine":"postgres","host":"127.0.0.1","port":%s,"username":"postgres","password":"%s","dbname":"%s"}' "$pg_port" "$pg_password" "$1"; }
orders_secret=$("$repo/.venv/bin/python" scripts/demo_util.py secret "$prefix-orders-db" "$(secret orders)")
scratch_secret=$("$repo/.venv/bin/python" scripts/demo_util.py secret "$prefix-drill-scratch" "$(secret postgres)")
echo "  database orders: 200 customers, 5000 orders; credentials in Secrets Manager ($orders_secret)"
sed -e "s/DEMO_BACKUP_BUCKET/${prefix}-backups/" -e "s|DEMO_ORDERS_SECRET|$orders_secret|" \
  -e "s|DEMO_SCRATCH_SECRET|$scratch_secret|" demo/policy.toml > "$out/policy.toml"
export BACKUP_POLICY_FILE="$out/policy.toml"

run_cycle() {
  local n=$1
  step "cycle $n: expand the daily plan's window (and the logical backup's)"
  "$bin/backup-producer" run --plan daily --at "$at" --json > "$out/run$n.json"
  "$repo/.venv/bin/python" scripts/demo_util.py run-summary "$out/run$n.json"
  "$bin/backup-producer" run --plan orders-logical --at "$at" --json > "$out/run$n-logical.json"
  "$repo/.venv/bin/python" scripts/demo_util.py run-summary "$out/run$n-logical.json"
  "$bin/backup-producer" run --plan member-accounts --at "$at" --json > "$out/run$n-member.json"
  "$repo/.venv/bin/python" scripts/demo_util.py run-summary "$out/run$n-member.json"
  step "cycle $n: two workers until the queue is drained"
  run_workers "$n"
  run_id=$("$repo/.venv/bin/python" scripts/demo_util.py run-id "$out/run$n.json")
  "$bin/backupctl" tasks list --run "$run_id" --json > "$out/tasks$n.json"
  run_id=$("$repo/.venv/bin/python" scripts/demo_util.py run-id "$out/run$n-member.json")
  "$bin/backupctl" tasks list --run "$run_id" --json > "$out/tasks$n-member.json"
  "$bin/backupctl" catalog list --all --json > "$out/catalog$n.json"
  "$bin/backupctl" status --runs 1 --json > "$out/status$n.json"
}

run_workers() {
  local n=$1
  workers=()
  for w in 1 2; do
    "$bin/backup-worker" --concurrency 16 --exit-when-idle 6 --receive-wait-secs 2 --recheck-secs 2 --consistency-window-secs 3 \
      --ack-flush-ms 100 --summary-file "$out/worker$n-$w.json" 2> "$out/worker$n-$w.log" &
    workers+=("$!")
  done
  local start=$SECONDS
  while kill -0 "${workers[0]}" 2>/dev/null || kill -0 "${workers[1]}" 2>/dev/null; do
    sleep 3
    "$bin/backupctl" status --runs 1 --json > "$out/status-progress.json" 2>/dev/null || true
    "$repo/.venv/bin/python" scripts/demo_util.py progress "$out/status-progress.json" 2>/dev/null || true
  done
  for pid in "${workers[@]}"; do wait "$pid"; done
  workers=()
  echo "  workers finished in $((SECONDS - start))s"
}

at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
run_cycle 1
run_cycle 2

step "drill: restore the newest dump of orders into a scratch database and prove the data"
"$bin/backup-producer" run --plan orders-drill --at "$at" --json > "$out/run-drill.json"
run_workers drill
"$bin/backupctl" catalog list --all --json > "$out/catalog-drill.json"
"$bin/backupctl" report drills || true
"$bin/backupctl" report drills --json > "$out/drills.json" || true

step "the member account is lost: restore its volume inside the backup account, from the copy there"
member_volume=$("$repo/.venv/bin/python" -c 'import json,sys; print(next(v["id"] for v in json.load(open(sys.argv[1]))["member"]["volumes"] if v["encrypted"]))' "$out/estate.json")
"$bin/backupctl" restore volume --resource "$member_volume" --from-account 222222222222 --from-region us-west-2 \
  --restore-id "vault-$prefix" --json > "$out/restore-vault.json"
run_workers vault-restore
"$bin/backupctl" restore volume --resource "$member_volume" --from-account 222222222222 --from-region us-west-2 \
  --restore-id "vault-$prefix" --wait --json > "$out/restore-vault-done.json"
"$repo/.venv/bin/python" scripts/demo_util.py accounts "$out/estate.json" "$out/restore-vault-done.json" > "$out/accounts.json"
"$repo/.venv/bin/python" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("  restore", r["restore_id"], r["state"], "->", (r.get("result") or {}).get("volume_id"), "in account 222222222222")' "$out/restore-vault-done.json"

step "what the backups cost (backupctl report cost, list prices)"
"$bin/backupctl" report cost
"$bin/backupctl" report cost --json > "$out/cost.json"

step "coverage: every resource in the policy's regions, live (backupctl report coverage)"
set +e
"$bin/backupctl" report coverage --json --html "$out/coverage.html" > "$out/coverage.json"
echo $? > "$out/coverage.rc"
"$bin/backupctl" report coverage --status failing --status never-backed-up --status stale --status unprotected --status excluded
set -e
echo "  full report: $out/coverage.html"

step "a volume tagged for the daily plan after the run: never backed up, so coverage and rpo exit 3"
"$repo/.venv/bin/python" scripts/demo_util.py new-volume "$prefix" > "$out/new-volume.txt"
set +e
"$bin/backupctl" report coverage --json > "$out/coverage-new.json"
echo $? > "$out/coverage-new.rc"
"$bin/backupctl" report rpo --json > "$out/rpo-new.json"
echo $? > "$out/rpo-new.rc"
set -e
echo "  report coverage exit $(cat "$out/coverage-new.rc"), report rpo exit $(cat "$out/rpo-new.rc")"

step "report"
"$repo/.venv/bin/python" scripts/demo_report.py "$out"
