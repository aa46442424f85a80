#!/usr/bin/env bash
# make bench-dump: does a worker's memory stay flat while it streams a ~1 GB pg_dump into S3?
#
# A logical backup (worker/src/handlers/logical.rs) reads pg_dump's custom-format output one part
# at a time (BACKUP_DUMP_PART_MIB, 16 by default) and uploads each part before reading the next,
# so the worker's resident memory should track the part size, not the dump size. This measures it
# end to end with the real binaries:
#
#   1. a throwaway PostgreSQL server (scripts/postgres.sh) on 127.0.0.1:$BENCH_DUMP_PG_PORT, seeded
#      with one table of md5-hex text whose compressed dump is about $BENCH_DUMP_TARGET_MIB MiB
#      (the bytes per row are calibrated with a pg_dump of the first batch, then the rest scaled);
#   2. a dedicated plain moto server (scripts/emulator.sh, no realism layer) on $BENCH_DUMP_MOTO_PORT;
#   3. for each part size in $BENCH_DUMP_PART_MIBS (16 5 64): a fresh emulator state (reset), a fleet
#      (backupctl bootstrap), an Object Lock enabled, versioned backup bucket and a Secrets Manager
#      secret holding the connection (boto3 from .venv), a policy with one postgres-db plan
#      (verify = false, so the worker does the dump and nothing else), one backup-worker started
#      and left idle 3 s, then `backup-producer run` enqueues the dump. The worker's VmRSS and VmHWM
#      (/proc/<pid>/status) are sampled every 0.5 s until it exits (--exit-when-idle 10);
#   4. the dump is checked in S3 (size and multipart ETag part count equal what the worker logged).
#
# Phases of a run, from the samples: "idle" = 3 s after `worker started`; "pre-dump" = the last
# sample before pg_dump appeared as the worker's child (task claimed, snapshot session and table
# statistics done); "dump" = from the first sample with a pg_dump child until the worker logged
# "logical backup complete" (the last part's upload and CompleteMultipartUpload included);
# "2nd half" = the lowest and highest sample of the dump's second half (flat if they are close).
#
# Prints a table and writes bench-out/dump.json (plus each run's worker log, samples and summary
# in bench-out/dump-runs/). Leaves nothing running: the PostgreSQL data directory, the emulator
# and the private copy of the binaries are removed at exit. Not part of `make test`; no cargo.
#
# Binaries: the first of release, bench-fast, debug (in that order of preference) under
# ${CARGO_TARGET_DIR:-~/.cache/backup-fleet/target} that holds all of backup-worker,
# backup-producer and backupctl; copied to a private directory first, since a shared target dir can be rebuilt
# meanwhile. BENCH_DUMP_PROFILE picks one explicitly.
#
# Environment (defaults in brackets):
#   BENCH_DUMP_TARGET_MIB   compressed dump size to aim for [1024]
#   BENCH_DUMP_PART_MIBS    part sizes to run, MiB, space-separated [16 5 64]
#   BENCH_DUMP_MOTO_PORT    port of the dedicated emulator; must be free [4611]
#   BENCH_DUMP_PG_PORT      port of the throwaway PostgreSQL server; must be free [25611]
#   BENCH_DUMP_PROFILE      release | bench-fast | debug [the first present, in that order]
#   BENCH_DUMP_TIMEOUT_SECS per-run limit before the worker is killed and the bench fails [1800]
#   BENCH_DUMP_OUT          output directory [bench-out]
#   BENCH_DUMP_WORKER_GLIBC_TUNABLES  GLIBC_TUNABLES for the worker only, e.g.
#                           glibc.malloc.mmap_threshold=1048576 (see docs/BENCHMARKS.md) [unset]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

target_mib="${BENCH_DUMP_TARGET_MIB:-1024}"
part_mibs="${BENCH_DUMP_PART_MIBS:-16 5 64}"
moto_port="${BENCH_DUMP_MOTO_PORT:-4611}"
pg_port="${BENCH_DUMP_PG_PORT:-25611}"
timeout_secs="${BENCH_DUMP_TIMEOUT_SECS:-1800}"
out="${BENCH_DUMP_OUT:-$repo/bench-out}"
py="$repo/.venv/bin/python"
pgdata="/tmp/bfdump-pg-$pg_port" # under /tmp: the postgres OS user must reach it (scripts/postgres.sh)
pgpass="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
worker_tunables="${BENCH_DUMP_WORKER_GLIBC_TUNABLES:-}"
dirty=""; git diff --quiet HEAD 2>/dev/null || dirty="+dirty"
commit="$(git rev-parse --short HEAD)$dirty" # at the start: the checkout may move meanwhile

say() { printf 'bench-dump: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- binaries ------------------------------------------------------------------------------------
target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/backup-fleet/target}"
profile="${BENCH_DUMP_PROFILE:-}"
if [ -z "$profile" ]; then
  for p in release bench-fast debug; do
    if [ -x "$target_dir/$p/backup-worker" ] && [ -x "$target_dir/$p/backup-producer" ] && [ -x "$target_dir/$p/backupctl" ]; then
      profile=$p; break
    fi
  done
  [ -n "$profile" ] || die "no backup-worker, backup-producer and backupctl under $target_dir/{release,bench-fast,debug}; build them first"
fi
[ "$profile" = dev ] && profile=debug
src_bin="$target_dir/$profile"
work="$(mktemp -d /tmp/bfdump-work.XXXXXX)"
bin="$work/bin"
mkdir -p "$bin"
for b in backup-worker backup-producer backupctl; do
  [ -x "$src_bin/$b" ] || die "$src_bin/$b is missing"
  cp "$src_bin/$b" "$bin/$b"
done
binary_mtime="$(date -u -r "$src_bin/backup-worker" +%Y-%m-%dT%H:%M:%SZ)"

# --- cleanup -------------------------------------------------------------------------------------
worker_pid=""
sampler_pid=""
moto_started=0
pg_started=0
cleanup() {
  set +e
  [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null && wait "$sampler_pid" 2>/dev/null
  if [ "$pg_started" = 1 ]; then
    bash scripts/postgres.sh stop "$pgdata" >/dev/null 2>&1
    rm -rf "$pgdata"
  fi
  if [ "$moto_started" = 1 ]; then
    MOTO_PORT="$moto_port" bash scripts/emulator.sh stop >/dev/null 2>&1
    rm -f "$repo/.emulator/moto-$moto_port.log"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- preconditions -------------------------------------------------------------------------------
[ -x "$py" ] || bash scripts/emulator.sh install
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
port_busy "$moto_port" && die "port $moto_port is in use: set BENCH_DUMP_MOTO_PORT to a free port (this bench resets its emulator)"
port_busy "$pg_port" && die "port $pg_port is in use: set BENCH_DUMP_PG_PORT to a free port"
[ -e "$pgdata" ] && die "$pgdata exists (left by an earlier run?); remove it first"
rm -rf "$out/dump-runs"
mkdir -p "$out/dump-runs"

# --- PostgreSQL, seeded --------------------------------------------------------------------------
bash scripts/postgres.sh install
pgbin="$(bash scripts/postgres.sh bindir)"
pg_started=1
bash scripts/postgres.sh start "$pgdata" "$pg_port" "$pgpass" >&2
export PGPASSWORD="$pgpass"
psql() { "$pgbin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -d postgres -c "CREATE DATABASE bench"
# UNLOGGED: no 2 GB of WAL while seeding; pg_dump dumps an unlogged table's data all the same.
psql -d bench -c "CREATE UNLOGGED TABLE t (id bigint PRIMARY KEY, body text NOT NULL)"
# Each row: 32 md5 hex digests (1,024 characters) that deflate compresses about 2:1.
seed() { # first last
  psql -d bench -c "INSERT INTO t SELECT g, (SELECT string_agg(md5(g::text || '/' || i::text), '') FROM generate_series(1, 32) i) FROM generate_series($1, $2) g"
}
calib_rows=50000
seed 1 "$calib_rows"
calib_bytes=$("$pgbin/pg_dump" -h 127.0.0.1 -p "$pg_port" -U postgres --format=custom bench | wc -c)
rows=$(( (target_mib * 1024 * 1024 * calib_rows + calib_bytes - 1) / calib_bytes ))
say "calibration: $calib_rows rows dump to $calib_bytes bytes; seeding $rows rows for ~$target_mib MiB"
seed_start=$SECONDS
batch=250000
for ((first = calib_rows + 1; first <= rows; first += batch)); do
  last=$(( first + batch - 1 )); (( last > rows )) && last=$rows
  seed "$first" "$last"
  say "  seeded $last / $rows rows ($((SECONDS - seed_start)) s)"
done
# Hint bits and statistics once, so that no run pays for them.
psql -d bench -c "VACUUM (FREEZE, ANALYZE) t"
table_bytes=$(psql -d bench -Atc "SELECT pg_total_relation_size('t')")
say "table t: $rows rows, $((table_bytes / 1024 / 1024)) MiB on disk ($((SECONDS - seed_start)) s to seed)"

# --- emulator ------------------------------------------------------------------------------------
export MOTO_PORT="$moto_port"
moto_started=1
EMULATOR_REALISM=off EMULATOR_REQUEST_LOG=0 bash scripts/emulator.sh start
eval "$(bash scripts/emulator.sh env)"
export AWS_EC2_METADATA_DISABLED=true BACKUP_LOG_FORMAT=json RUST_LOG=info

# Samples "epoch VmRSS_kB VmHWM_kB pg_dump_child(0/1) complete_logged(0/1)" every 0.5 s while
# $1 lives.
sample() { # pid samples-file log-file
  local pid=$1 file=$2 log=$3 mem dump done
  while [ -d "/proc/$pid" ]; do
    mem=$(awk '/^VmRSS:/ {r = $2} /^VmHWM:/ {h = $2} END {if (r != "") print r, h}' "/proc/$pid/status" 2>/dev/null || true)
    if [ -n "$mem" ]; then
      dump=0; pgrep -P "$pid" -x pg_dump >/dev/null && dump=1
      done=0; grep -q '"logical backup complete"' "$log" && done=1
      printf '%s %s %s %s\n' "$(date +%s.%N)" "$mem" "$dump" "$done" >>"$file"
    fi
    sleep 0.5
  done
}

run_one() { # part MiB
  local part=$1 dir="$out/dump-runs/part-$1" prefix
  mkdir -p "$dir"
  bash scripts/emulator.sh reset 2>/dev/null # drop the previous run's gigabyte and fleet
  prefix="bfdump$part$(date +%s)"
  eval "$("$bin/backupctl" bootstrap --prefix "$prefix" --format env)"
  local bucket="$prefix-backups" secret_arn
  secret_arn=$(BUCKET="$bucket" SECRET_NAME="$prefix-bench-db" PG_PORT="$pg_port" "$py" - <<'EOF'
import json, os, boto3
kw = dict(endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
s3 = boto3.client("s3", **kw)
s3.create_bucket(Bucket=os.environ["BUCKET"], ObjectLockEnabledForBucket=True)
s3.put_bucket_versioning(Bucket=os.environ["BUCKET"], VersioningConfiguration={"Status": "Enabled"})
secret = {"host": "127.0.0.1", "port": int(os.environ["PG_PORT"]), "username": "postgres",
          "password": os.environ["PGPASSWORD"], "dbname": "bench"}
sm = boto3.client("secretsmanager", **kw)
print(sm.create_secret(Name=os.environ["SECRET_NAME"], SecretString=json.dumps(secret))["ARN"])
EOF
  )
  cat >"$dir/policy.toml" <<EOF
[[plan]]
name = "bench-dump"
schedule = "rate(1 day)"
resources = ["postgres-db"]
regions = ["us-east-1"]
retain = { days = 1 }
verify = false
s3 = { backup_bucket = "$bucket", lock_days = 1 }
databases = [{ name = "bench", secret_arn = "$secret_arn" }]
EOF

  local log="$dir/worker.log" samples="$dir/samples.txt"
  : >"$samples"
  GLIBC_TUNABLES="$worker_tunables" BACKUP_PG_BIN_DIR="$pgbin" BACKUP_DUMP_PART_MIB="$part" \
    "$bin/backup-worker" --concurrency 4 --exit-when-idle 10 --receive-wait-secs 2 \
    --summary-file "$dir/summary.json" 2>"$log" &
  worker_pid=$!
  sample "$worker_pid" "$samples" "$log" &
  sampler_pid=$!
  local waited=0
  until grep -q '"worker started"' "$log"; do
    kill -0 "$worker_pid" 2>/dev/null || { tail -n 20 "$log" >&2; die "the worker exited before it started"; }
    (( waited++ < 300 )) || die "the worker did not start within 30 s"
    sleep 0.1
  done
  sleep 3
  local idle_kib
  idle_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$worker_pid/status")
  local enqueued_at
  enqueued_at=$(date +%s.%N)
  BACKUP_POLICY_FILE="$dir/policy.toml" "$bin/backup-producer" run --plan bench-dump --json >"$dir/producer.json"
  say "part $part MiB: dump enqueued; worker pid $worker_pid"
  local start=$SECONDS
  while kill -0 "$worker_pid" 2>/dev/null; do
    if (( SECONDS - start > timeout_secs )); then
      kill "$worker_pid" 2>/dev/null || true
      die "part $part MiB: the worker did not finish within $timeout_secs s (log: $log)"
    fi
    sleep 1
  done
  local rc=0
  wait "$worker_pid" || rc=$?
  worker_pid=""
  wait "$sampler_pid" 2>/dev/null || true
  sampler_pid=""
  grep -q '"logical backup complete"' "$log" || { tail -n 30 "$log" >&2; die "part $part MiB: no 'logical backup complete' in $log (worker exit $rc)"; }
  # The object in S3: its size and multipart part count must be what the worker logged.
  BUCKET="$bucket" PART="$part" IDLE_KIB="$idle_kib" ENQUEUED_AT="$enqueued_at" WORKER_RC="$rc" \
    "$py" - "$dir" <<'EOF'
import json, os, sys, boto3
d = sys.argv[1]
done = next(json.loads(l) for l in open(f"{d}/worker.log") if '"logical backup complete"' in l)
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
objs = s3.list_objects_v2(Bucket=os.environ["BUCKET"], Prefix="_db-dumps/bench/")["Contents"]
dump = next(o for o in objs if o["Key"].endswith(".pgdump"))
etag_parts = int(dump["ETag"].strip('"').split("-")[1]) if "-" in dump["ETag"] else 1
head = s3.head_object(Bucket=os.environ["BUCKET"], Key=dump["Key"])
check = {"key": dump["Key"], "size": dump["Size"], "etag_parts": etag_parts,
         "object_lock_until": str(head.get("ObjectLockRetainUntilDate")),
         "matches_log": dump["Size"] == done["bytes"] and etag_parts == done["parts"]}
json.dump({"part_mib": int(os.environ["PART"]), "idle_kib": int(os.environ["IDLE_KIB"]),
           "enqueued_at": float(os.environ["ENQUEUED_AT"]), "worker_exit": int(os.environ["WORKER_RC"]),
           "complete_log": done, "s3": check}, open(f"{d}/run.json", "w"), indent=1)
if not check["matches_log"]:
    sys.exit(f"the object in S3 differs from the worker's log: {check} vs bytes={done['bytes']} parts={done['parts']}")
EOF
  say "part $part MiB: done in $((SECONDS - start)) s"
}

for part in $part_mibs; do run_one "$part"; done

# --- report --------------------------------------------------------------------------------------
COMMIT="$commit" TUNABLES="$worker_tunables" LOAD_START="$load_start" PROFILE="$profile" BINARY_MTIME="$binary_mtime" ROWS="$rows" \
  TABLE_BYTES="$table_bytes" PG_VERSION="$("$pgbin/pg_dump" --version)" PARTS="$part_mibs" \
  "$py" - "$out" <<'EOF'
import json, os, statistics, sys
from datetime import datetime, timezone

out = sys.argv[1]
mib = lambda kib: round(kib / 1024, 1)

def ts(s):  # the worker's RFC 3339 timestamps
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

runs = []
for part in os.environ["PARTS"].split():
    d = f"{out}/dump-runs/part-{part}"
    run = json.load(open(f"{d}/run.json"))
    samples = [l.split() for l in open(f"{d}/samples.txt") if l.strip()]
    samples = [(float(t), int(r), int(h), d_ == "1", c == "1") for t, r, h, d_, c in samples]
    first_dump = next(i for i, s in enumerate(samples) if s[3])
    done_at = ts(run["complete_log"]["timestamp"])
    during = [s for s in samples[first_dump:] if s[0] <= done_at]
    rss = [s[1] for s in during]
    wall = done_at - samples[first_dump][0]
    # Flatness: the spread of the samples over the second half of the dump (by time).
    late = [s[1] for s in during if s[0] >= samples[first_dump][0] + wall / 2]
    bytes_ = run["complete_log"]["bytes"]
    runs.append({
        "part_mib": int(part),
        "dump_bytes": bytes_,
        "dump_mib": round(bytes_ / 2**20, 1),
        "parts": run["complete_log"]["parts"],
        "dump_wall_s": round(wall, 1),
        "dump_mib_per_s": round(bytes_ / 2**20 / wall, 1),
        "task_wall_s": round(done_at - run["enqueued_at"], 1),
        "rss_idle_mib": mib(run["idle_kib"]),
        "rss_pre_dump_mib": mib(samples[first_dump - 1][1]) if first_dump else None,
        "rss_dump_min_mib": mib(min(rss)),
        "rss_dump_median_mib": mib(statistics.median(rss)),
        "rss_dump_max_mib": mib(max(rss)),
        "rss_dump_2nd_half_min_mib": mib(min(late)),
        "rss_dump_2nd_half_max_mib": mib(max(late)),
        "rss_dump_2nd_half": f"{mib(min(late))}-{mib(max(late))}",
        "peak_vmhwm_mib": mib(max(s[2] for s in samples)),
        "samples_during_dump": len(rss),
        "worker_exit": run["worker_exit"],
        "s3": run["s3"],
    })

result = {
    "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
    "commit": os.environ["COMMIT"],
    "build_profile": os.environ["PROFILE"],
    "worker_glibc_tunables": os.environ["TUNABLES"] or None,
    "binary_built_utc": os.environ["BINARY_MTIME"],
    "machine": {"cpus": os.cpu_count(), "mem_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
                "load_at_start": os.environ["LOAD_START"], "load_at_end": " ".join(open("/proc/loadavg").read().split()[:3])},
    "postgres": os.environ["PG_VERSION"],
    "table": {"rows": int(os.environ["ROWS"]), "bytes_on_disk": int(os.environ["TABLE_BYTES"])},
    "sample_interval_s": 0.5,
    "runs": runs,
}
json.dump(result, open(f"{out}/dump.json", "w"), indent=2)

cols = [("part MiB", "part_mib"), ("dump MiB", "dump_mib"), ("parts", "parts"), ("dump s", "dump_wall_s"),
        ("MiB/s", "dump_mib_per_s"), ("task s", "task_wall_s"), ("idle", "rss_idle_mib"),
        ("pre-dump", "rss_pre_dump_mib"), ("dump min", "rss_dump_min_mib"), ("median", "rss_dump_median_mib"),
        ("max", "rss_dump_max_mib"), ("2nd half", "rss_dump_2nd_half"), ("VmHWM", "peak_vmhwm_mib")]
tunables = f", worker GLIBC_TUNABLES={result['worker_glibc_tunables']}" if result["worker_glibc_tunables"] else ""
print(f"\nlogical backup memory: {result['build_profile']} build{tunables}, commit {result['commit']}, "
      f"{result['machine']['cpus']} cpus, {result['postgres']}, {result['table']['rows']} rows "
      f"({result['table']['bytes_on_disk'] // 2**20} MiB on disk); RSS in MiB\n")
widths = [max(len(h), *(len(str(r[k])) for r in runs)) for h, k in cols]
print("  ".join(h.rjust(w) for (h, _), w in zip(cols, widths)))
for r in runs:
    print("  ".join(str(r[k]).rjust(w) for (_, k), w in zip(cols, widths)))
print(f"\nwritten: {out}/dump.json (per-run logs and samples in {out}/dump-runs/)")
EOF
