#!/usr/bin/env bash
# PostgreSQL for pipewatch's tests: a throwaway cluster in DIR on 127.0.0.1:PORT with
# logical decoding on (Debezium reads its write-ahead log), run as an unprivileged user.
#
#   postgres.sh run PORT DIR [PID]   # initdb DIR (unless done), run in the foreground;
#                                    # stop when PID exits. Superuser `postgres`, no password
#                                    # from 127.0.0.1 (trust), database `shop`.
#   postgres.sh psql PORT SQL        # run SQL in `shop` (SQL `-`: read it from stdin)
# Environment: PG_BIN (default: the newest /usr/lib/postgresql/*/bin, or the PATH's).
set -euo pipefail

bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$newest" ]; then echo "$newest"; return; fi
  local initdb
  initdb=$(command -v initdb || true)
  [ -n "$initdb" ] || { echo "postgres.sh: PostgreSQL not found: apt-get install postgresql" >&2; exit 1; }
  dirname "$initdb"
}

# Runs a command as the unprivileged `postgres` user when this is root (PostgreSQL
# refuses to run as root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

run() {
  local port=$1 dir=$2 watch=${3:-}
  local b
  b=$(bin)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && { id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres; chown postgres "$dir"; }
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$b/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 > "$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
wal_level = logical
max_wal_senders = 4
max_replication_slots = 4
fsync = off
synchronous_commit = off
CONF
    echo "host replication all 127.0.0.1/32 trust" >> "$dir/data/pg_hba.conf"
  fi
  as_pg "$b/postgres" -D "$dir/data" > "$dir/postgres.log" 2>&1 &
  # globals: the EXIT trap runs after this function's locals are gone. runuser does not
  # pass a signal on to the server, so the trap stops the server itself.
  pgpid=$!
  pgdata=$dir/data
  pgctl=$b/pg_ctl
  trap 'as_pg "$pgctl" -D "$pgdata" stop -m immediate >/dev/null 2>&1; kill $pgpid 2>/dev/null; wait $pgpid 2>/dev/null; exit 0' EXIT TERM INT
  # the database the tests use, once the server answers
  for _ in $(seq 1 100); do
    if "$b/pg_isready" -q -h 127.0.0.1 -p "$port"; then break; fi
    kill -0 "$pgpid" 2>/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }
    sleep 0.1
  done
  "$b/psql" -h 127.0.0.1 -p "$port" -U postgres -qtc "SELECT 1 FROM pg_database WHERE datname = 'shop'" \
    | grep -q 1 || "$b/createdb" -h 127.0.0.1 -p "$port" -U postgres shop
  while kill -0 "$pgpid" 2>/dev/null; do
    if [ -n "$watch" ] && ! kill -0 "$watch" 2>/dev/null; then break; fi
    sleep 0.5
  done
}

psql_run() {
  local port=$1 sql=$2
  if [ "$sql" = - ]; then
    exec "$(bin)/psql" -h 127.0.0.1 -p "$port" -U postgres -d shop -v ON_ERROR_STOP=1 -q -f -
  fi
  "$(bin)/psql" -h 127.0.0.1 -p "$port" -U postgres -d shop -v ON_ERROR_STOP=1 -qtc "$sql"
}

case "${1:-}" in
  run) shift; run "$@" ;;
  psql) shift; psql_run "$@" ;;
  *) echo "usage: postgres.sh run PORT DIR [PID] | psql PORT SQL" >&2; exit 2 ;;
esac
