#!/usr/bin/env bash
# Local AWS emulator (moto server) for backup-fleet's tests and demo.
#
#   scripts/emulator.sh install   create $REPO/.venv and install the pinned moto (no-op when current)
#   scripts/emulator.sh start     install if needed, start moto_server on 127.0.0.1:$MOTO_PORT, wait until ready
#   scripts/emulator.sh stop      stop the server started by `start` (no-op if not running)
#   scripts/emulator.sh status    print whether it runs; exit 0 if it answers, 1 otherwise
#   scripts/emulator.sh reset     drop all emulator state (POST /moto-api/reset)
#   scripts/emulator.sh env       print `export AWS_...` lines; use: eval "$(scripts/emulator.sh env)"
#
# Environment:
#   MOTO_PORT                  port (default 4566)
#   PYTHON                     interpreter used to create the venv (default python3)
#   EMULATOR_START_TIMEOUT     seconds to wait for readiness (default 60)
#   EMULATOR_REQUEST_LOG=0     do not log one line per request to the log file
#   EMULATOR_REALISM           realism layer (scripts/emulator_realism.py): unset, empty, `off` or `0`
#                              = plain moto; `on` = AWS-like pending states, eventual consistency and
#                              quotas with the default settings; a JSON object = those settings merged
#                              over the defaults; `@file.json` = the same from a file. Read at `start`
#                              only (a server already answering on the port is reused as it is). See
#                              docs/EMULATOR.md, "The realism layer".
#
# Files: $REPO/.venv (virtualenv), $REPO/.emulator/moto-$PORT.{log,pid}.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$REPO/scripts/requirements-emulator.txt"
VENV="$REPO/.venv"
VPY="$VENV/bin/python"
STAMP="$VENV/.emulator-requirements.sha256"
STATE="$REPO/.emulator"
PORT="${MOTO_PORT:-4566}"
HOST=127.0.0.1
URL="http://$HOST:$PORT"
PIDFILE="$STATE/moto-$PORT.pid"
LOGFILE="$STATE/moto-$PORT.log"
START_TIMEOUT="${EMULATOR_START_TIMEOUT:-60}"

log() { printf 'emulator: %s\n' "$*" >&2; }
die() { printf 'emulator: error: %s\n' "$*" >&2; exit 1; }

case "$PORT" in '' | *[!0-9]*) die "MOTO_PORT must be a port number, got '$PORT'" ;; esac

# --- helpers -----------------------------------------------------------------

# True if anything answers HTTP on the port (any status code counts).
answers() {
    curl -s -o /dev/null --noproxy '*' --connect-timeout 1 --max-time 3 "$URL/moto-api/config"
}

# Pid from the pid file if that process is alive and is a moto server.
running_pid() {
    [[ -f "$PIDFILE" ]] || return 1
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r "/proc/$pid/cmdline" ]] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q moto; then
        return 1 # pid was reused by something else
    fi
    echo "$pid"
}

# Serialise start/stop/install between concurrent callers (best effort: needs flock).
lock() {
    mkdir -p "$STATE"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$STATE/lock"
        flock -w 300 9 || die "timed out waiting for $STATE/lock"
    fi
}

req_hash() {
    {
        cat "$REQ"
        "$VPY" -c 'import sys; print(sys.version)'
    } | if command -v sha256sum >/dev/null 2>&1; then
        sha256sum | cut -d' ' -f1
    else
        "$VPY" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
    fi
}

# Run a command quietly; on failure show its output and die.
quiet() {
    local what="$1" out
    shift
    out="$(mktemp)"
    if ! "$@" >"$out" 2>&1; then
        tail -n 40 "$out" >&2
        rm -f "$out"
        die "$what failed: $*"
    fi
    rm -f "$out"
}

ensure_venv() {
    local py="${PYTHON:-python3}"
    if [[ -x "$VPY" ]] && "$VPY" -c 'import sys' >/dev/null 2>&1; then
        :
    else
        command -v "$py" >/dev/null 2>&1 || die "$py not found (need Python >= 3.9 to install moto)"
        log "creating virtualenv $VENV with $("$py" --version 2>&1)"
        rm -rf "$VENV"
        # --without-pip works even where ensurepip is missing (Debian without python3-venv).
        quiet "creating the virtualenv" "$py" -m venv --without-pip "$VENV"
    fi
    if ! "$VPY" -m pip --version >/dev/null 2>&1; then
        if ! "$VPY" -m ensurepip --default-pip >/dev/null 2>&1; then
            # No ensurepip: bootstrap pip into the venv from a pip wheel fetched by the system pip.
            local tmp whl
            tmp="$(mktemp -d)"
            quiet "downloading pip (no ensurepip; is python3-pip installed?)" \
                "$py" -m pip download -q --disable-pip-version-check --no-deps -d "$tmp" pip
            local wheels=("$tmp"/pip-*.whl)
            whl="${wheels[0]}"
            quiet "bootstrapping pip into the venv" \
                "$VPY" "$whl/pip" install -q --disable-pip-version-check --no-index "$whl"
            rm -rf "$tmp"
        fi
    fi
}

cmd_install() {
    [[ -f "$REQ" ]] || die "missing $REQ"
    lock
    ensure_venv
    local want
    want="$(req_hash)"
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/moto_server" ]]; then
        return 0
    fi
    log "installing $(grep -m1 '^moto' "$REQ" || echo "$REQ") into $VENV"
    rm -f "$STAMP"
    quiet "pip install -r $REQ" \
        "$VPY" -m pip install -q --disable-pip-version-check --no-input -r "$REQ"
    [[ -x "$VENV/bin/moto_server" ]] || die "moto_server missing from $VENV/bin after install"
    echo "$want" >"$STAMP"
    log "installed $("$VPY" -c 'import moto; print("moto", moto.__version__)')"
}

cmd_start() {
    if answers; then
        local pid
        if pid="$(running_pid)"; then
            log "already running (pid $pid) on $URL"
        else
            log "something already answers on $URL; not starting another server"
        fi
        return 0
    fi
    cmd_install
    # cmd_install took the lock; re-check under it in case a concurrent start won.
    if answers; then
        log "already running on $URL (started concurrently)"
        return 0
    fi
    rm -f "$PIDFILE"
    : >"$LOGFILE"

    # Faster and quieter moto: no default AMIs (the slowest part of creating an
    # EC2 backend); the next two are moto's defaults, forced so a caller's env
    # cannot turn them on: no AWS-managed IAM policies (slow to load), no
    # outgoing HTTP from EventBridge API destinations. SSM default parameters
    # are loaded lazily by moto itself and need nothing here.
    # os.setsid() puts the server in its own session, so it survives a signal
    # to the caller's terminal or process group; fd 9 (the lock) is closed.
    # EMULATOR_REALISM (if set and not off) installs scripts/emulator_realism.py.
    MOTO_EC2_LOAD_DEFAULT_AMIS=false \
        MOTO_IAM_LOAD_MANAGED_POLICIES=false \
        MOTO_EVENTS_INVOKE_HTTP=false \
        MOTO_PORT="$PORT" \
        EMULATOR_REQUEST_LOG="${EMULATOR_REQUEST_LOG:-1}" \
        EMULATOR_REALISM="${EMULATOR_REALISM:-}" \
        EMULATOR_SCRIPTS="$REPO/scripts" \
        nohup "$VPY" -c '
import os
# Close every inherited descriptor (the lock of a calling flock, the pipes of a test runner): a
# long-lived server must not keep them open after its caller has finished.
os.closerange(3, 65536)
import logging, sys
import werkzeug.serving
werkzeug.serving._log_add_style = False  # no ANSI colours in the log file
try:
    os.setsid()
except OSError:
    pass
# DynamoDB conditional writes are atomic in AWS; moto checks the condition and applies the write
# without a lock, so two concurrent claims of one task could both succeed. Serialising the
# write handlers of moto restores the real semantics the fleet relies on.
import threading
from moto.dynamodb.responses import DynamoHandler
_write_lock = threading.Lock()
def _serialised(handler):
    def locked(self, *args, **kwargs):
        with _write_lock:
            return handler(self, *args, **kwargs)
    return locked
for _name in ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items", "execute_statement"):
    setattr(DynamoHandler, _name, _serialised(getattr(DynamoHandler, _name)))
if os.environ.get("EMULATOR_REQUEST_LOG") == "0":
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
sys.path.insert(0, os.environ["EMULATOR_SCRIPTS"])
# The same answers without two of moto'"'"'s lookups that scan its whole state (tags, queue counts).
import emulator_speedups
emulator_speedups.install()
# Optional realism layer: pending states, eventual consistency, quotas (docs/EMULATOR.md).
if os.environ.get("EMULATOR_REALISM", "").strip().lower() not in ("", "off", "0"):
    import emulator_realism
    emulator_realism.install(os.environ["EMULATOR_REALISM"])
from moto.server import main
main(sys.argv[1:])
' -H "$HOST" -p "$PORT" </dev/null >>"$LOGFILE" 2>&1 9>&- &
    local pid=$!
    echo "$pid" >"$PIDFILE"

    local start=$SECONDS
    while ! answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            tail -n 30 "$LOGFILE" >&2 || true
            die "moto_server exited before becoming ready (log: $LOGFILE)"
        fi
        if ((SECONDS - start >= START_TIMEOUT)); then
            tail -n 30 "$LOGFILE" >&2 || true
            kill "$pid" 2>/dev/null || true
            rm -f "$PIDFILE"
            die "moto_server not ready on $URL after ${START_TIMEOUT}s (log: $LOGFILE)"
        fi
        sleep 0.2
    done
    log "moto_server ready on $URL (pid $pid, log $LOGFILE)"
}

cmd_stop() {
    lock
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PIDFILE"
        log "not running (port $PORT)"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid ignored TERM; sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 20; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && die "could not stop pid $pid"
    fi
    rm -f "$PIDFILE"
    log "stopped (pid $pid, port $PORT)"
}

cmd_status() {
    local pid=""
    pid="$(running_pid)" || pid=""
    if answers; then
        if [[ -n "$pid" ]]; then
            echo "running: pid $pid, port $PORT, $URL"
        else
            echo "running: port $PORT answers, but not started by this script (no pid file), $URL"
        fi
        return 0
    fi
    if [[ -n "$pid" ]]; then
        echo "not ready: pid $pid alive but $URL does not answer (log: $LOGFILE)"
    else
        echo "not running (port $PORT)"
    fi
    return 1
}

cmd_reset() {
    local code
    code="$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 30 -X POST "$URL/moto-api/reset")" ||
        die "no emulator answers on $URL"
    [[ "$code" == 200 ]] || die "reset failed: HTTP $code from $URL/moto-api/reset"
    log "state reset on $URL"
}

cmd_env() {
    cat <<EOF
export AWS_ENDPOINT_URL=$URL
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
EOF
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
reset) cmd_reset ;;
env) cmd_env ;;
*) usage ;;
esac
