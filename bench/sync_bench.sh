#!/bin/bash
# Starts a private PostgreSQL on 127.0.0.1, makes the recallfs schema, and
# runs bench_push: pushing 100k outbox rows vs psql \copy of the same rows.
#
#   bench/sync_bench.sh [DIR]     (as root, or as a user that may run postgres)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
DIR=$(realpath -m "${1:-bench-data}")/sync
rm -rf "$DIR"; mkdir -p "$DIR"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$PGBIN/initdb" -D "$DIR/pg" -A trust -U postgres --no-sync > /dev/null
printf 'local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n' > "$DIR/pg/pg_hba.conf"
[ "$(id -u)" = 0 ] && chown postgres "$DIR/pg/pg_hba.conf"
as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -l "$DIR/pg.log" -w -o "-p $PORT -c listen_addresses=127.0.0.1 -k $DIR" start > /dev/null
trap 'as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -m fast stop > /dev/null' EXIT
psql -h 127.0.0.1 -p "$PORT" -U postgres -X -q -c "CREATE DATABASE recall"
ADMIN="postgresql://postgres@127.0.0.1:$PORT/recall"
"$here/build/recallfs" server init --db "$ADMIN" --client-password bench-pw > /dev/null
"$here/build/bench/bench_push" "$DIR" "$ADMIN" "postgresql://recall_client:bench-pw@127.0.0.1:$PORT/recall"
