#!/bin/sh
# Builds recallfs and its tests with a sanitizer in ./build-<name> and runs
# the suite (or the CTest arguments given) under it, daemons included: every
# `recallfs mount` a test starts is the instrumented binary.
#
#   scripts/sanitize.sh address [CTEST ARGS...]   AddressSanitizer + UBSan,
#                                                 leaks checked at exit
#   scripts/sanitize.sh thread  [CTEST ARGS...]   ThreadSanitizer
#
# Reports go to build-<name>/reports/ (one file per process that found
# something); the script lists them and fails when there is any. Tests may
# fail for slowness under ThreadSanitizer (deadlines of 30 s and more are
# usually met); their reports are what this is for. Not part of CI: a
# sanitizer build and run take about 15 minutes on 2 cores. Run it after a
# change to threads, locks, buffers or lifetimes.
set -eu
cd "$(dirname "$0")/.."
kind=${1:?usage: scripts/sanitize.sh address|thread [ctest args...]}
shift
case "$kind" in
  # (GCC 12 warns of uninitialized std::function members inside <regex>
  # under ASan, wrongly: that warning is off in this build.)
  address) flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -Wno-maybe-uninitialized" ;;
  thread) flags="-fsanitize=thread" ;;
  *) echo "sanitize: address or thread, not $kind" >&2; exit 2 ;;
esac
./scripts/setup.sh > /dev/null  # the packages (and the ordinary build, ./build)
dir="build-$kind"
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRECALL_WERROR=ON \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" > /dev/null
cmake --build "$dir"

reports="$PWD/$dir/reports"
rm -rf "$reports"; mkdir -p "$reports"
# Sanitizers read their options from the environment, which each test and
# each daemon it starts inherits. LeakSanitizer cannot run under strace (one
# test traces a guest mount's system calls): that test is left to the
# ordinary suite.
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1"
export TSAN_OPTIONS="log_path=$reports/tsan:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp"
status=0
ctest --test-dir "$dir" --timeout 900 -j2 -E 'AGuestOpensNoSocketAtAll' "$@" || status=$?

found=$(ls "$reports")
if [ -n "$found" ]; then
  echo "sanitize: $(echo "$found" | wc -l) report(s) in $reports:"
  grep -h '^SUMMARY' "$reports"/* | sort | uniq -c
  exit 1
fi
echo "sanitize: no reports"
exit "$status"
