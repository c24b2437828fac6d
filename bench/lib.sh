# Shared by the bench scripts (source it): timing helpers and a private
# PostgreSQL on 127.0.0.1.
# secs CMD...: how long CMD took, in seconds. A command that fails has no
# figure: the whole bench stops (a failed read is fast, and would look good).
secs() {
  local t0 t1 err
  err=$(mktemp)
  t0=$(date +%s.%N)
  if ! "$@" > /dev/null 2> "$err"; then
    echo "bench: failed: $*" >&2; cat "$err" >&2; rm -f "$err"
    kill -TERM $$; exit 1
  fi
  t1=$(date +%s.%N)
  rm -f "$err"
  echo "$t1 - $t0" | bc -l
}
# busy_secs: CPU time the whole machine has spent so far (user, nice, system,
# irq, softirq; not idle or iowait). A difference of two is the CPU a step
# cost, every process included (the daemon, a peer on this machine, cat).
busy_secs() { awk '/^cpu /{ printf "%.2f\n", ($2 + $3 + $4 + $7 + $8) / 100 }' /proc/stat; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
report() { printf '%-52s %s\n' "$1" "$2"; }
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_pg DIR: a cluster in DIR/pg with the database "recall"; sets PGPORT_B
# and ADMIN (a superuser URL). stop_pg DIR stops it.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort | tail -1 || true)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
start_pg() {
  local dir=$1
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  PGPORT_B=$(free_port)
  as_pg "$PGBIN/initdb" -D "$dir/pg" -A trust -U postgres --no-sync > /dev/null
  printf 'local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n' > "$dir/pg/pg_hba.conf"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/pg/pg_hba.conf"
  as_pg "$PGBIN/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -o "-p $PGPORT_B -c listen_addresses=127.0.0.1 -k $dir" start > /dev/null
  psql -h 127.0.0.1 -p "$PGPORT_B" -U postgres -X -q -c "CREATE DATABASE recall"
  ADMIN="postgresql://postgres@127.0.0.1:$PGPORT_B/recall"
}
stop_pg() { as_pg "$PGBIN/pg_ctl" -D "$1/pg" -m fast stop > /dev/null 2>&1 || true; }
# build_passthrough_fh DIR: libfuse's passthrough_fh example (no lock
# manager) as DIR/passthrough_fh, the FUSE baseline of the benches.
build_passthrough_fh() {
  gcc -O2 -Wall -D_FILE_OFFSET_BITS=64 /usr/share/doc/libfuse3-dev/examples/passthrough_fh.c \
    $(pkg-config fuse3 --cflags --libs) -o "$1/passthrough_fh"
}

# build_passthrough_ll DIR: libfuse's passthrough_ll example as
# DIR/passthrough_ll. With -o cache=always it keeps file pages cached across
# opens, so its re-read is the page-cache speed of a FUSE file on this kernel.
build_passthrough_ll() {
  gcc -O2 -Wall -D_FILE_OFFSET_BITS=64 -I/usr/share/doc/libfuse3-dev/examples \
    /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c \
    $(pkg-config fuse3 --cflags --libs) -o "$1/passthrough_ll"
}
