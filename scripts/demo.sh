#!/bin/sh
# demo.sh - make demo: the main job end to end.  Generates TSBS-like points,
# writes them through walctl with fdatasync group commit, verifies the WAL,
# dumps a sample back as line protocol, and prints the figures.
set -eu
W=${WALCTL:?} GEN=${GEN:?}
N=${DEMO_POINTS:-500000}
dir=${DEMO_DIR:-./walctl-demo}
rm -rf "$dir"
echo "== writing $N generated points to $dir (walctl write --sync fdatasync)"
t0=$(date +%s.%N)
"$GEN" "$N" | "$W" write -d "$dir" --sync fdatasync --max-segment-size 32M
t1=$(date +%s.%N)
awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "   %.2f s, %.0f points/s including generation\n", b - a, n / (b - a) }'
echo "== walctl verify -d $dir"
"$W" verify -d "$dir"
echo "== walctl dump -d $dir --format lp | head -3"
"$W" dump -d "$dir" --format lp | head -n 3
echo "== walctl dump -d $dir --stats"
"$W" dump -d "$dir" --stats
echo "== round trip: the dump equals the input"
if "$GEN" "$N" | cmp -s - /dev/stdin <<EOF_
$("$W" dump -d "$dir" --format lp)
EOF_
then echo "   identical"; else echo "   DIFFERENT"; exit 1; fi
