#!/bin/bash
# A shell rewriting a small file that exists (`echo i > f`), emptying it
# (`: > f`) and writing a new one (`echo i > f-i`), 300 times each: recallfs
# vs libfuse's passthrough_fh example and the native disk, in one run.
# recallfs makes every close durable (the bytes and the row fsync'd; a
# truncation alone leaves a fsync'd note, see fs/truncation_note.h); the
# baselines fsync nothing, so the ratio is the price of "a close that
# returned survives kill -9".
#
#   bench/rewrite_bench.sh [DIR]      RECALLFS=copy to bench another binary
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
R="${RECALLFS:-$here/build/recallfs}"
DIR=${1:-$(mktemp -d /var/tmp/recallfs-rewrite.XXXXXX)}
mkdir -p "$DIR"
N=300
cleanup() {
  "$R" unmount "$DIR/mnt" > /dev/null 2>&1 || true
  fusermount3 -u "$DIR/pt" 2> /dev/null || true
}
trap cleanup EXIT

build_passthrough_fh "$DIR"
mkdir -p "$DIR/mnt" "$DIR/pt" "$DIR/native"
"$DIR/passthrough_fh" "$DIR/pt"
"$R" init --data "$DIR/lib" > /dev/null
"$R" mount "$DIR/mnt" --data "$DIR/lib"

# per_op FILE SCRIPT: milliseconds per iteration of SCRIPT (with $F and $i),
# the best of three runs (the disk's fsyncs are noisy here)
per_op() {
  local t best=""
  echo start > "$1"
  for _ in 1 2 3; do
    t=$(F="$1" N=$N secs bash -c "for i in \$(seq \$N); do $2; done")
    best=$(min "$best" "$t")
  done
  echo "scale=3; $best * 1000 / $N" | bc -l
}
# The third: a new file each time (`$$` tells the three runs apart).
for what in 'echo $i > "$F"' ': > "$F"' 'echo $i > "$F-$$-$i"'; do
  ours=$(per_op "$DIR/mnt/inbox/f.txt" "$what")
  pt=$(per_op "$DIR/pt$DIR/native/pt.txt" "$what")
  nat=$(per_op "$DIR/native/f.txt" "$what")
  report "$what, per op: recallfs / passthrough_fh" "$(ratio "$ours" "$pt")x the time (recallfs ${ours} ms, passthrough_fh ${pt} ms, native ${nat} ms)"
done
