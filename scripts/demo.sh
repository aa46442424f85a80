#!/usr/bin/env bash
# make demo: start the local emulator, bootstrap a fleet on it and show what was created.
# (The full backup cycle with a report builds on this; see README.)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
target="${CARGO_TARGET_DIR:-$HOME/.cache/backup-fleet/target}"
bin="$target/debug"

started=0
port="${MOTO_PORT:-4566}"
if ! curl -s -o /dev/null "http://127.0.0.1:${port}/moto-api/config"; then
  bash scripts/emulator.sh start
  started=1
fi
cleanup() { if [ "$started" = 1 ]; then bash scripts/emulator.sh stop >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT
eval "$(bash scripts/emulator.sh env)"

prefix="demo-$(date +%s)"
echo "== bootstrap (prefix $prefix)"
"$bin/backupctl" bootstrap --prefix "$prefix" --format json
echo "== bootstrap again: nothing changes"
"$bin/backupctl" bootstrap --prefix "$prefix" --format env
