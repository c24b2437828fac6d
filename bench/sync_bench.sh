#!/bin/bash
# Starts a private PostgreSQL on 127.0.0.1, makes the recallfs schema, and
# runs bench_push: pushing 100k outbox rows vs psql \copy of the same rows.
#
#   bench/sync_bench.sh [DIR]     (as root, or as a user that may run postgres)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
DIR=$(realpath -m "${1:-bench-data}")/sync
rm -rf "$DIR"; mkdir -p "$DIR"
. "$here/bench/lib.sh"
start_pg "$DIR"
trap 'stop_pg "$DIR"' EXIT
PORT=$PGPORT_B
"$here/build/recallfs" server init --db "$ADMIN" --client-password bench-pw > /dev/null
"$here/build/bench/bench_push" "$DIR" "$ADMIN" "postgresql://recall_client:bench-pw@127.0.0.1:$PORT/recall"
