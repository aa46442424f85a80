#!/usr/bin/env bash
# Runs a command with the local emulator up: starts it when nothing answers on $MOTO_PORT, and
# stops it afterwards only if this script started it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${MOTO_PORT:-4566}"
started=0
if ! curl -s -o /dev/null "http://127.0.0.1:${port}/moto-api/config"; then
  bash "$repo/scripts/emulator.sh" start
  started=1
fi
cleanup() { if [ "$started" = 1 ]; then bash "$repo/scripts/emulator.sh" stop >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT
"$@"
