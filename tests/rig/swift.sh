#!/bin/bash
# A private OpenStack Swift with its S3 layer (s3api + tempauth), on
# 127.0.0.1 only, for the tests that need a server that checks S3 signatures
# and body hashes. Everything lives in DIR; nothing outside it is touched.
#
#   swift.sh start DIR [PORT]   proxy on PORT (default: a free one); object,
#                               container, account, memcached on PORT+1..+4;
#                               writes the S3 endpoint to DIR/endpoint
#   swift.sh stop DIR
# S3 credentials: access key "test:tester", secret "testing", region us-east-1.
set -euo pipefail
cmd=$1 DIR=$2
if [ "$cmd" = stop ]; then
  for p in "$DIR"/run/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
  exit 0
fi
"$0" stop "$DIR" 2>/dev/null || true
rm -rf "$DIR"
PORT=${3:-$(python3 - <<'PY'
import random, socket
for _ in range(200):
    base = random.randint(20000, 60000)
    socks = []
    try:
        for p in range(base, base + 5):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
        print(base); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
PY
)}
PO=$((PORT + 1)) PC=$((PORT + 2)) PA=$((PORT + 3)) PM=$((PORT + 4))
ME=$(id -un)
mkdir -p "$DIR/etc" "$DIR/srv/node/d1" "$DIR/run" "$DIR/log"

cat > "$DIR/etc/swift.conf" <<CONF
[swift-hash]
swift_hash_path_suffix = recallfs-test
[storage-policy:0]
name = Policy-0
default = yes
CONF

server_conf() {  # NAME PORT
  cat > "$DIR/etc/$1-server.conf" <<CONF
[DEFAULT]
devices = $DIR/srv/node
mount_check = false
disable_fallocate = true
bind_ip = 127.0.0.1
bind_port = $2
workers = 1
user = $ME
swift_dir = $DIR/etc
log_address = $DIR/log/none
[pipeline:main]
pipeline = $1-server
[app:$1-server]
use = egg:swift#$1
[$1-replicator]
[$1-updater]
[$1-auditor]
CONF
}
server_conf object "$PO"
server_conf container "$PC"
server_conf account "$PA"

cat > "$DIR/etc/proxy-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PORT
workers = 1
user = $ME
swift_dir = $DIR/etc
log_address = $DIR/log/none
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$PM
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
CONF

cd "$DIR/etc"
for ring in object:$PO container:$PC account:$PA; do
  name=${ring%%:*} port=${ring##*:}
  swift-ring-builder "$name.builder" create 8 1 1 > /dev/null
  swift-ring-builder "$name.builder" add "r1z1-127.0.0.1:$port/d1" 100 > /dev/null
  swift-ring-builder "$name.builder" rebalance > /dev/null
done

memcached -l 127.0.0.1 -p "$PM" -U 0 -u "$ME" > "$DIR/log/memcached" 2>&1 &
echo $! > "$DIR/run/memcached.pid"
for s in object container account proxy; do
  "swift-$s-server" "$DIR/etc/$s-server.conf" > "$DIR/log/$s" 2>&1 &
  echo $! > "$DIR/run/$s.pid"
done
for _ in $(seq 1 150); do  # poll until the proxy answers
  if curl -sf "http://127.0.0.1:$PORT/healthcheck" > /dev/null; then
    echo "http://127.0.0.1:$PORT" > "$DIR/endpoint"
    exit 0
  fi
  sleep 0.1
done
echo "swift did not start; see $DIR/log" >&2
exit 1
