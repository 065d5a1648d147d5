#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on 127.0.0.1 for the storage tests and print its SQLAlchemy URL.
# Usage: eval "$(tools/start-postgres.sh)"   -> exports SYSPRUNE_TEST_POSTGRES_URL
# Installs Debian's postgresql if the server binaries are missing. Idempotent: reuses a running server.
set -euo pipefail
PORT=${SYSPRUNE_PG_PORT:-55432}
PGROOT=${SYSPRUNE_PG_DIR:-/tmp/sysprune-pg}
URL="postgresql+psycopg2://sysprune:sysprune@127.0.0.1:${PORT}/sysprune"

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "installing postgresql..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
run_as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
id postgres >/dev/null 2>&1 || useradd --system --home "$PGROOT" postgres

if ! run_as_pg "$bindir/pg_ctl" -D "$PGROOT/data" status >/dev/null 2>&1; then
  rm -rf "$PGROOT"; mkdir -p "$PGROOT"; chown postgres "$PGROOT" 2>/dev/null || true
  run_as_pg "$bindir/initdb" -D "$PGROOT/data" -U postgres -A trust >/dev/null
  run_as_pg "$bindir/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/log" -w \
    -o "-p $PORT -k $PGROOT -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  run_as_pg "$bindir/psql" -h 127.0.0.1 -p "$PORT" -U postgres -q \
    -c "CREATE USER sysprune PASSWORD 'sysprune'" -c "CREATE DATABASE sysprune OWNER sysprune" >/dev/null
fi
echo "export SYSPRUNE_TEST_POSTGRES_URL='$URL'"
