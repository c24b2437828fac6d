#!/bin/sh
# Installs what recallfs needs on Debian 12 (only what is missing), then
# configures and builds it in ./build. Safe to run again.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="build-essential cmake ninja-build pkg-config git openssl
  libsqlite3-dev libssl-dev libmagic-dev libpoppler-cpp-dev libstb-dev
  libcli11-dev nlohmann-json3-dev uuid-dev zlib1g-dev libgtest-dev
  libfuse3-dev fuse3 attr rsync python3 bc libfaketime
  libpq-dev postgresql postgresql-client strace util-linux
  libcurl4-openssl-dev libpugixml-dev curl libmicrohttpd-dev
  swift swift-proxy swift-account swift-container swift-object memcached"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing$missing"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRECALL_WERROR=ON >/dev/null
cmake --build build

# Install the command, and the helpers mount(8) looks for in /sbin, so that
# `recallfs`, `mount -t fuse.recallfs` and /etc/fstab lines work.
if [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO cmake --install build --prefix /usr/local >/dev/null
  for helper in mount.recallfs mount.fuse.recallfs; do
    $SUDO ln -sf /usr/local/bin/recallfs "/sbin/$helper"
  done
fi
