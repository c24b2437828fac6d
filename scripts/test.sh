#!/bin/sh
# Runs the whole test suite: installs and builds what is missing (setup.sh),
# then runs every test under CTest, which ends with a pass/fail count.
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec ctest --test-dir build --output-on-failure --timeout 600 -j2 "$@"
