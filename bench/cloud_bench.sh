#!/bin/bash
# Benchmarks of bytes on demand, each a ratio against a baseline measured in
# the same run, against OpenStack Swift's S3 layer and PostgreSQL on loopback:
#   * cold sequential read of a 256 MiB file whose bytes are only in the
#     cloud: recallfs vs curl GET of the same object (target >= 0.8), and
#     vs s3fs and rclone mount --vfs-cache-mode full reading it (>= 2);
#   * the first 4 KiB read at offset 900 MiB of a cold 1 GiB file vs one
#     ranged GET of one 4 MiB chunk with curl (target <= 2);
#   * 256 MiB read from a peer device vs curl of the same blob from that
#     peer's server, signed (target >= 0.8); vs curl that also keeps and
#     hashes the bytes (the work a verified fetch does besides receiving);
#     and the same over loopback shaped to 1 Gbit/s, where the link and not
#     the CPU is the limit.
# Every recallfs read is cold: a new device (data directory) each time.
# Best of three for every figure.
#
#   bench/cloud_bench.sh [DIR]      (root: it mounts, and drops the page cache)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
R="${RECALLFS:-$here/build/recallfs}"  # RECALLFS=copy: bench a binary while building another
DIR=$(realpath -m "${1:-bench-data}")/cloud
. "$here/bench/lib.sh"
command -v s3fs > /dev/null && command -v rclone > /dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq s3fs rclone > /dev/null
for m in "$DIR"/mnt*; do fusermount3 -u -z "$m" 2> /dev/null || true; done
rm -rf "$DIR"; mkdir -p "$DIR"
shaped=""
cleanup() {
  [ -n "$shaped" ] && tc qdisc del dev lo root 2> /dev/null
  for m in "$DIR"/mnt*; do fusermount3 -u -z "$m" 2> /dev/null || true; done
  stop_pg "$DIR"
  "$here/tests/rig/swift.sh" stop "$DIR/swift" || true
}
trap cleanup EXIT
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
wait_for() {  # wait_for FILE: poll until it exists (30 s at most)
  for _ in $(seq 300); do [ -e "$1" ] && return 0; sleep 0.1; done
  echo "timed out waiting for $1" >&2; return 1
}

"$here/tests/rig/swift.sh" start "$DIR/swift" > /dev/null
EP=$(cat "$DIR/swift/endpoint")
start_pg "$DIR"
"$R" server init --db "$ADMIN" --client-password bench-pw > /dev/null
"$R" server add-user bench --db "$ADMIN" > /dev/null
TOKEN=$("$R" server issue-token bench --db "$ADMIN")
CLIENT="postgresql://recall_client:bench-pw@127.0.0.1:$PGPORT_B/recall"

device() {  # device [--cloud]: a new signed-in device; prints its data dir
  local d
  d=$(mktemp -u "$DIR/dev.XXXXXX")
  "$R" init --data "$d" > /dev/null
  echo "$TOKEN" | "$R" signin --server "$CLIENT" --token - --data "$d" > /dev/null
  if [ "${1:-}" = --cloud ]; then
    echo testing | "$R" cloud set --endpoint "$EP" --bucket bench --access-key test:tester \
      --secret-key - --create-bucket --data "$d" > /dev/null
  fi
  echo "$d"
}
# cold_read DATA FILE CMD...: mounts DATA at a new mount point, waits for
# inbox/FILE, times CMD (with $F the file's path), unmounts. The CPU the
# machine spent meanwhile goes to $DIR/cpu.last.
cold_read() {
  local d=$1 file=$2; shift 2
  local mnt b0
  mnt=$(mktemp -d "$DIR/mnt.XXXXXX")
  "$R" mount "$mnt" --data "$d" > /dev/null
  wait_for "$mnt/inbox/$file"
  drop
  export F="$mnt/inbox/$file"
  b0=$(busy_secs)
  secs bash -c "$*"
  echo "$(busy_secs) - $b0" | bc > "$DIR/cpu.last"
  "$R" unmount "$mnt" > /dev/null
}

# ---- the library: device a uploads a 256 MiB and a 1 GiB file
head -c 256M /dev/urandom > "$DIR/f256.bin"
head -c 1G /dev/urandom > "$DIR/f1g.bin"
A=$(device --cloud)
"$R" add "$DIR/f256.bin" "$DIR/f1g.bin" --data "$A" > /dev/null
"$R" replicate --data "$A" > /dev/null
"$R" sync --data "$A" > /dev/null
OWNER=$("$R" status --json --data "$A" | python3 -c 'import json,sys; print(json.load(sys.stdin)["account_id"])')
S256=$(sha256sum "$DIR/f256.bin" | cut -d' ' -f1)
S1G=$(sha256sum "$DIR/f1g.bin" | cut -d' ' -f1)
rm -f "$DIR/f1g.bin"
HOSTPORT=${EP#http://}
printf 'machine %s login test:tester password testing\n' "${HOSTPORT%:*}" > "$DIR/netrc"
chmod 600 "$DIR/netrc"
EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
s3get() {  # s3get KEY [curl args]: a signed GET with curl
  local key=$1; shift
  curl -sSf --netrc-file "$DIR/netrc" --aws-sigv4 "aws:amz:us-east-1:s3" \
    -H "x-amz-content-sha256: $EMPTY_SHA" -o /dev/null "$@" "$EP/bench/recallfs/$OWNER/$key"
}

# ---- cold sequential read of 256 MiB from the cloud
t_curl="" t_ours="" t_s3fs="" t_rc=""
for _ in 1 2 3; do
  drop; t_curl=$(min "$t_curl" "$(secs s3get "$S256")")
  t_ours=$(min "$t_ours" "$(cold_read "$(device --cloud)" f256.bin 'cat "$F" > /dev/null')")
done
mkdir -p "$DIR/mnt-s3fs" "$DIR/mnt-rclone"
obj="recallfs/$OWNER/$S256"
for _ in 1 2 3; do
  AWSACCESSKEYID=test:tester AWSSECRETACCESSKEY=testing s3fs bench "$DIR/mnt-s3fs" \
    -o url="$EP" -o use_path_request_style -o endpoint=us-east-1 -o sigv4
  wait_for "$DIR/mnt-s3fs/$obj"
  drop; t_s3fs=$(min "$t_s3fs" "$(secs cat "$DIR/mnt-s3fs/$obj")")
  fusermount3 -u "$DIR/mnt-s3fs"
  rm -rf "$DIR/rclone-cache"
  env -u AWS_CA_BUNDLE RCLONE_CONFIG_SW_TYPE=s3 RCLONE_CONFIG_SW_PROVIDER=Other \
    RCLONE_CONFIG_SW_ACCESS_KEY_ID=test:tester RCLONE_CONFIG_SW_SECRET_ACCESS_KEY=testing \
    RCLONE_CONFIG_SW_ENDPOINT="$EP" RCLONE_CONFIG_SW_FORCE_PATH_STYLE=true \
    RCLONE_CONFIG_SW_REGION=us-east-1 \
    rclone mount sw:bench "$DIR/mnt-rclone" --vfs-cache-mode full \
    --cache-dir "$DIR/rclone-cache" --daemon
  wait_for "$DIR/mnt-rclone/$obj"
  drop; t_rc=$(min "$t_rc" "$(secs cat "$DIR/mnt-rclone/$obj")")
  fusermount3 -u "$DIR/mnt-rclone"
done
# The server's own ceiling: the same 256 MiB as four parallel ranged GETs.
# When that is no faster than one GET, the server is what limits every
# client here, and no client can read at twice another's speed.
par4() {
  local q=$((64 << 20)) i pids=()
  for i in 0 1 2 3; do
    s3get "$S256" -r "$((i * q))-$(((i + 1) * q - 1))" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || return 1; done  # a failed GET has no figure
}
t_par=""
for _ in 1 2 3; do drop; t_par=$(min "$t_par" "$(secs par4)"); done
mb() { echo "scale=0; 256 / $1" | bc -l; }
report "cold read 256 MiB from S3: recallfs / curl" "$(ratio "$t_curl" "$t_ours") (recallfs ${t_ours}s = $(mb "$t_ours") MiB/s, curl ${t_curl}s; target >= 0.8)"
report "cold read 256 MiB from S3: recallfs / s3fs" "$(ratio "$t_s3fs" "$t_ours") (s3fs ${t_s3fs}s; target >= 2)"
report "cold read 256 MiB from S3: recallfs / rclone" "$(ratio "$t_rc" "$t_ours") (rclone --vfs-cache-mode full ${t_rc}s; target >= 2)"
report "  the server's ceiling: 4 parallel GETs / 1 GET" "$(ratio "$t_curl" "$t_par") (4 ranged GETs of 64 MiB at once ${t_par}s)"

# ---- first byte at 900 MiB of a cold 1 GiB file vs one ranged GET of a chunk
off=$((900 << 20))
t_get="" t_first=""
for _ in 1 2 3; do
  t_get=$(min "$t_get" "$(secs s3get "$S1G" -r "$off-$((off + (4 << 20) - 1))")")
  t_first=$(min "$t_first" "$(cold_read "$(device --cloud)" f1g.bin \
    "dd if=\"\$F\" of=/dev/null bs=4096 count=1 skip=$((off / 4096)) status=none")")
done
report "4 KiB at 900 MiB of a cold 1 GiB file: / GET" "$(ratio "$t_first" "$t_get") (recallfs ${t_first}s: dd's open and one 4 KiB read, ranged GET of 4 MiB ${t_get}s; target <= 2)"

# ---- peer: device p has no cloud; it reads from device a's blob server
"$R" peer set --listen 127.0.0.1:0 --data "$A" > /dev/null
mkdir -p "$DIR/mnt-a"
"$R" mount "$DIR/mnt-a" --data "$A"
ADDR=""
for _ in $(seq 300); do
  ADDR=$(psql "$ADMIN" -X -A -t -c "SELECT peer_address FROM recall.devices WHERE peer_address IS NOT NULL LIMIT 1")
  [ -n "$ADDR" ] && break; sleep 0.1
done
KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["peer_key"])' "$A/credentials.json")
peerget() {  # peerget [FILE]: a signed GET of the blob, to FILE (/dev/null)
  local date sig
  date=$(date +%s)
  sig=$(printf 'GET\n/v1/blobs/%s\n\n%s' "$S256" "$date" |
    openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEY" -r | cut -d' ' -f1)
  curl -sSf -o "${1:-/dev/null}" -H "X-Recall-Date: $date" -H "X-Recall-Signature: $sig" \
    "http://$ADDR/v1/blobs/$S256"
}
# curl doing what a verified, kept fetch does besides receiving: the bytes
# written to a file on this disk and hashed as they arrive (openssl, which
# uses the CPU's SHA instructions as recallfs does, at the end of the pipe).
peerget_kept() { peerget - | tee "$DIR/kept.bin" | openssl dgst -sha256 > /dev/null; }
# With the CPU each spent (both sides run on this machine): the figure of
# the fastest run.
t_pcurl="" t_peer="" c_pcurl="" c_peer="" t_kept=""
for _ in 1 2 3; do
  drop
  b0=$(busy_secs)
  t=$(secs peerget)
  c=$(echo "$(busy_secs) - $b0" | bc)
  if [ "$(min "$t_pcurl" "$t")" = "$t" ]; then t_pcurl=$t c_pcurl=$c; fi
  t=$(cold_read "$(device)" f256.bin 'cat "$F" > /dev/null')
  if [ "$(min "$t_peer" "$t")" = "$t" ]; then t_peer=$t c_peer=$(cat "$DIR/cpu.last"); fi
  drop
  t_kept=$(min "$t_kept" "$(secs peerget_kept)")
  rm -f "$DIR/kept.bin"
done
report "peer read 256 MiB: recallfs / curl from the peer" "$(ratio "$t_pcurl" "$t_peer") (recallfs ${t_peer}s, curl ${t_pcurl}s; target >= 0.8)"
report "  CPU spent, both ends, on $(nproc) cores" "recallfs ${c_peer}s (verify, keep, serve), curl ${c_pcurl}s"
report "peer read 256 MiB: recallfs / curl | tee | openssl" "$(ratio "$t_kept" "$t_peer") (curl | tee FILE | openssl dgst -sha256 ${t_kept}s)"
# The same where the link is the limit, as between two machines: loopback
# shaped to 1 Gbit/s (tc, root only; skipped where it cannot be).
if tc qdisc add dev lo root tbf rate 1gbit burst 1mb latency 50ms 2> /dev/null; then
  shaped=1
  t_lcurl="" t_link=""
  for _ in 1 2; do
    drop
    t_lcurl=$(min "$t_lcurl" "$(secs peerget)")
    t_link=$(min "$t_link" "$(cold_read "$(device)" f256.bin 'cat "$F" > /dev/null')")
  done
  tc qdisc del dev lo root; shaped=""
  report "peer read 256 MiB over 1 Gbit/s: recallfs / curl" "$(ratio "$t_lcurl" "$t_link") (recallfs ${t_link}s, curl ${t_lcurl}s)"
fi
"$R" unmount "$DIR/mnt-a"
