#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback, from the OS packages, for the integration tests of the
# logical backups (pg_dump custom format to S3, pg_restore in restore drills). `install` is a no-op
# when a server is already there. Each test run gets its own data directory and port; the cluster
# that Debian's package may create on 5432 is never used (and is not created when we install).
#
#   scripts/postgres.sh install                      install Debian's postgresql and postgresql-client
#                                                    unless a server bin dir is already there
#   scripts/postgres.sh bindir                       print that bin dir (exit 1 if none)
#   scripts/postgres.sh start DATADIR PORT PASSWORD  initdb DATADIR if new (superuser `postgres`,
#                                                    scram-sha-256 with PASSWORD), start it on
#                                                    127.0.0.1:PORT; exit 0 if already running
#   scripts/postgres.sh stop DATADIR                 stop it (fast); no error if not running
#
# The bin dir is the newest /usr/lib/postgresql/<major>/bin holding initdb, pg_ctl, postgres,
# pg_dump and pg_restore (PG_BINDIR overrides it). As root, the server commands run as the
# `postgres` OS user (initdb and pg_ctl refuse root), so DATADIR must be reachable by that user:
# keep it under /tmp. PASSWORD only applies when DATADIR is created; an existing cluster keeps its
# own. Connect with: PGPASSWORD=PASSWORD psql -h 127.0.0.1 -p PORT -U postgres
set -euo pipefail

usage() {
  echo "usage: scripts/postgres.sh install|bindir|start DATADIR PORT PASSWORD|stop DATADIR" >&2
  exit 2
}

has_server_tools() {
  local d=$1 tool
  for tool in initdb pg_ctl postgres pg_dump pg_restore; do
    [ -x "$d/$tool" ] || return 1
  done
}

# The newest server bin dir, highest major version first.
find_bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then
    has_server_tools "$PG_BINDIR" && { echo "$PG_BINDIR"; return 0; }
    echo "postgres: PG_BINDIR=$PG_BINDIR lacks initdb, pg_ctl, postgres, pg_dump or pg_restore" >&2
    return 1
  fi
  local d
  while read -r d; do
    if has_server_tools "$d"; then echo "$d"; return 0; fi
  done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -t/ -k5,5 -rn)
  return 1
}

need_bindir() {
  BIN=$(find_bindir) || {
    echo "postgres: no PostgreSQL server in /usr/lib/postgresql/*/bin with initdb, pg_ctl, postgres, pg_dump and pg_restore (run scripts/postgres.sh install)" >&2
    exit 1
  }
}

# Run a server command as the `postgres` OS user when we are root, from a directory it can read.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# An absolute DATADIR (pg_ctl and the server resolve relative paths from their own cwd).
abs_datadir() {
  local d=$1
  case "$d" in
    "") echo "postgres: DATADIR is empty" >&2; exit 2 ;;
    *[[:space:]\"\'\\]*) echo "postgres: DATADIR must not contain spaces, quotes or backslashes: $d" >&2; exit 2 ;;
  esac
  realpath -m -- "$d"
}

is_running() {
  [ -f "$1/PG_VERSION" ] && as_pg "$BIN/pg_ctl" status -D "$1" >/dev/null 2>&1
}

log_tail() {
  if [ -f "$1/server.log" ]; then
    echo "postgres: last lines of $1/server.log:" >&2
    tail -n 40 "$1/server.log" >&2
  fi
}

cmd_install() {
  if find_bindir >/dev/null 2>&1; then exit 0; fi
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "postgres: installing postgresql and postgresql-client from the OS packages" >&2
  # Debian's server package creates and starts a default cluster ("main", port 5432) unless told
  # not to; we never use it, so do not create it (postgresql-common reads createcluster.d).
  $sudo mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.d/backup-fleet.conf >/dev/null
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql postgresql-client >/dev/null
  find_bindir >/dev/null || { echo "postgres: the postgresql packages did not install a server bin dir" >&2; exit 1; }
}

cmd_start() {
  [ $# = 3 ] || usage
  local datadir port password
  datadir=$(abs_datadir "$1")
  port=$2
  password=$3
  case "$port" in
    ''|*[!0-9]*) echo "postgres: PORT must be a number: $port" >&2; exit 2 ;;
  esac
  [ -n "$password" ] || { echo "postgres: PASSWORD must not be empty" >&2; exit 2; }
  # The Unix socket lives in DATADIR; its path is limited to 107 bytes.
  local socket="$datadir/.s.PGSQL.$port"
  if [ "${#socket}" -gt 107 ]; then
    echo "postgres: DATADIR is too long for its Unix socket ($socket, ${#socket} > 107 bytes): use a shorter path under /tmp" >&2
    exit 2
  fi
  need_bindir

  if [ "$(id -u)" = 0 ] && ! id -u postgres >/dev/null 2>&1; then
    echo "postgres: running as root but there is no \`postgres\` OS user to run the server as (run scripts/postgres.sh install)" >&2
    exit 1
  fi

  if is_running "$datadir"; then
    local running_port
    running_port=$(sed -n 4p "$datadir/postmaster.pid" 2>/dev/null || true)
    if [ "$running_port" != "$port" ]; then
      echo "postgres: warning: the server in $datadir is already running on port ${running_port:-?}, not $port" >&2
    fi
    echo "postgres: already running on 127.0.0.1:${running_port:-$port} ($datadir)"
    exit 0
  fi

  if [ ! -f "$datadir/PG_VERSION" ]; then
    local created=""
    [ -d "$datadir" ] || created=1
    mkdir -p -m 0700 "$datadir"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$datadir"; fi
    if ! as_pg test -w "$datadir" -a -x "$datadir"; then
      echo "postgres: the postgres OS user cannot write $datadir (a parent directory is not traversable by it?): use a directory under /tmp" >&2
      if [ -n "$created" ]; then rmdir "$datadir" 2>/dev/null || true; fi
      exit 1
    fi
    local pwfile initlog
    pwfile=$(mktemp /tmp/postgres-pw.XXXXXX)
    initlog=$(mktemp /tmp/postgres-initdb.XXXXXX)
    # shellcheck disable=SC2064 # expand now: the locals are gone when the trap runs
    trap "rm -f '$pwfile' '$initlog'" EXIT
    printf '%s\n' "$password" >"$pwfile"
    if [ "$(id -u)" = 0 ]; then chown postgres "$pwfile" "$initlog"; fi
    if ! as_pg "$BIN/initdb" -D "$datadir" --auth=scram-sha-256 --username=postgres \
        --pwfile="$pwfile" --encoding=UTF8 --locale=C >"$initlog" 2>&1; then
      echo "postgres: initdb failed in $datadir:" >&2
      tail -n 40 "$initlog" >&2
      exit 1
    fi
    rm -f "$pwfile" "$initlog"
  fi

  local out
  if ! out=$(as_pg "$BIN/pg_ctl" start -D "$datadir" -l "$datadir/server.log" -w -t 60 -o \
      "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$datadir -c fsync=off -c max_connections=100" \
      2>&1); then
    echo "postgres: the server in $datadir did not start on 127.0.0.1:$port" >&2
    printf '%s\n' "$out" >&2
    log_tail "$datadir"
    exit 1
  fi
  echo "postgres: started on 127.0.0.1:$port ($datadir)"
}

cmd_stop() {
  [ $# = 1 ] || usage
  local datadir
  datadir=$(abs_datadir "$1")
  need_bindir
  is_running "$datadir" || exit 0
  local out
  if ! out=$(as_pg "$BIN/pg_ctl" stop -D "$datadir" -m fast -w -t 60 2>&1); then
    echo "postgres: the server in $datadir did not stop" >&2
    printf '%s\n' "$out" >&2
    log_tail "$datadir"
    exit 1
  fi
  echo "postgres: stopped ($datadir)"
}

case "${1:-}" in
  install) [ $# = 1 ] || usage; cmd_install ;;
  bindir)
    [ $# = 1 ] || usage
    find_bindir || { echo "postgres: no PostgreSQL server in /usr/lib/postgresql/*/bin with initdb, pg_ctl, postgres, pg_dump and pg_restore (run scripts/postgres.sh install)" >&2; exit 1; }
    ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) usage ;;
esac
