#!/usr/bin/env bash
# make bench: throughput, coordination cost, CPU and memory of the fleet against a dedicated local
# emulator, and the real pipeline on a seeded estate (not part of `make test`). `make soak` is the
# same script with BENCH_PHASES=soak: an hour of mixed work, failing on memory growth. Results: a table on stdout, JSON in .bench/result-<time>.json,
# a dated row appended to docs/BENCHMARKS.md (which explains every figure).
#
# Environment:
#   BENCH_PROFILE     cargo profile to build and measure (default bench-fast, optimised; `debug`
#                     or `dev` for a quick check of the harness: CPU figures are then meaningless)
#   BENCH_MOTO_PORT   port of the dedicated emulator (default 4588; started here, stopped at exit)
#   BENCH_TASKS       canary tasks per fleet size K (default 2000)
#   BENCH_KS          fleet sizes (default 1,2,4)
#   BENCH_RECORD=0    do not append the row to docs/BENCHMARKS.md
#   BENCH_SKIP_BUILD=1  use the binaries already built for the profile
#   CARGO             cargo command (default cargo; e.g. "flock -o /tmp/cargo.lock cargo")
#   CARGO_TARGET_DIR  default ~/.cache/backup-fleet/target
# More knobs (BENCH_CONCURRENCY, BENCH_BACKLOG, ...) are read by backup-bench; see docs/BENCHMARKS.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backup-fleet/target}"
read -r -a CARGO_CMD <<<"${CARGO:-cargo}"

PROFILE="${BENCH_PROFILE:-bench-fast}"
case "$PROFILE" in
debug | dev) CARGO_PROFILE=dev PROFILE_DIR=debug ;;
release) CARGO_PROFILE=release PROFILE_DIR=release ;;
*) CARGO_PROFILE="$PROFILE" PROFILE_DIR="$PROFILE" ;;
esac

export MOTO_PORT="${BENCH_MOTO_PORT:-4588}"
case "$MOTO_PORT" in
4566 | 4577) die "BENCH_MOTO_PORT=$MOTO_PORT is a shared emulator port; the benchmark needs its own" ;;
esac

# --- build -------------------------------------------------------------------------------------
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    log "building backup-worker, backup-producer and backup-bench (profile $CARGO_PROFILE)"
    "${CARGO_CMD[@]}" build --locked --profile "$CARGO_PROFILE" --bins -p backup-worker -p backup-producer -p backup-tests
fi
BIN_DIR="$CARGO_TARGET_DIR/$PROFILE_DIR"
for bin in backup-worker backup-producer backup-bench; do
    [[ -x "$BIN_DIR/$bin" ]] ||
        die "$BIN_DIR/$bin is missing (build with: cargo build --profile $CARGO_PROFILE --bins -p backup-worker -p backup-producer -p backup-tests)"
done
# Private copies, taken right after the build: another checkout sharing CARGO_TARGET_DIR may
# rebuild the shared binaries at any time (backup-bench refuses to run if it was built elsewhere).
PRIVATE="$REPO/.bench/bin"
mkdir -p "$PRIVATE"
cp -f "$BIN_DIR/backup-worker" "$BIN_DIR/backup-producer" "$BIN_DIR/backup-bench" "$PRIVATE/"
WORKER="$PRIVATE/backup-worker"
PRODUCER="$PRIVATE/backup-producer"
BENCH="$PRIVATE/backup-bench"

# --- emulator ----------------------------------------------------------------------------------
# A dedicated server: the benchmark fills it with queues and tables and measures its speed, so it
# must neither disturb nor be disturbed by the one the tests use. Stopped at exit only if started
# here.
started_emulator=0
# The estate phase runs against the realism layer, a second emulator the harness starts on
# MOTO_PORT + 1 when none answers there; stopped at exit if it was not already running.
export MOTO_REALISTIC_PORT="$((MOTO_PORT + 1))"
realistic_was_up=0
if MOTO_PORT="$MOTO_REALISTIC_PORT" bash scripts/emulator.sh status >/dev/null 2>&1; then
    realistic_was_up=1
fi
cleanup() {
    if [[ "$started_emulator" == 1 ]]; then
        bash "$REPO/scripts/emulator.sh" stop || true
    fi
    if [[ "$realistic_was_up" == 0 ]]; then
        MOTO_PORT="$MOTO_REALISTIC_PORT" bash "$REPO/scripts/emulator.sh" stop >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
# No request log, here nor in the realism emulator the estate phase starts: one line per request
# is a fifth of the emulator's time at benchmark rates.
export EMULATOR_REQUEST_LOG=0
if bash scripts/emulator.sh status >/dev/null 2>&1; then
    log "an emulator already answers on port $MOTO_PORT; using it (not stopping it afterwards)"
else
    bash scripts/emulator.sh start
    started_emulator=1
fi

EMULATOR_VERSION="$("$REPO/.venv/bin/python" -c 'import moto; print("moto", moto.__version__)' 2>/dev/null || echo "moto (unknown)")"
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    COMMIT="$COMMIT+dirty"
fi

args=(--worker "$WORKER" --producer "$PRODUCER" --repo "$REPO")
[[ "${BENCH_RECORD:-1}" == 0 ]] && args+=(--no-record)

log "running $BENCH (emulator port $MOTO_PORT)"
BENCH_PROFILE="$PROFILE_DIR" \
    BENCH_EMULATOR_VERSION="$EMULATOR_VERSION" \
    BENCH_COMMIT="$COMMIT" \
    "$BENCH" "${args[@]}"
