#!/usr/bin/env bash
# Runs a command with the local emulators up: plain moto on $MOTO_PORT, and moto with the realism
# layer (tests/realism.json) on $MOTO_REALISTIC_PORT (default $MOTO_PORT + 1). Each is started when
# nothing answers on its port, and stopped afterwards only if this script started it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${MOTO_PORT:-4566}"
realistic_port="${MOTO_REALISTIC_PORT:-$((port + 1))}"
export MOTO_PORT="$port" MOTO_REALISTIC_PORT="$realistic_port"
started=()
answers() { curl -s -o /dev/null --noproxy '*' --max-time 3 "http://127.0.0.1:$1/moto-api/config"; }
cleanup() {
  for p in "${started[@]}"; do MOTO_PORT="$p" bash "$repo/scripts/emulator.sh" stop >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
if ! answers "$port"; then
  bash "$repo/scripts/emulator.sh" start
  started+=("$port")
fi
if ! answers "$realistic_port"; then
  MOTO_PORT="$realistic_port" EMULATOR_REALISM="@$repo/tests/realism.json" bash "$repo/scripts/emulator.sh" start
  started+=("$realistic_port")
fi
"$@"
