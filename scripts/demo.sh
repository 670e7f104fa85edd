#!/bin/sh
# demo.sh - make demo: the main job end to end.  Generated TSBS-like points
# go through 'walctl serve --ack' (group-committed WAL, compressed storage,
# checkpoints, reclamation); then the WAL is verified, a sample dumped back,
# and the figures printed.
set -eu
W=${WALCTL:?}
N=${DEMO_POINTS:-1000000}
dir=${DEMO_DIR:-./walctl-demo}
rm -rf "$dir"
mkdir -p "$dir"
"$W" bench --emit "$N" > "$dir/points.lp"
echo "== walctl serve --ack: $N generated points ($(wc -c < "$dir/points.lp") bytes of line protocol)"
t0=$(date +%s.%N)
"$W" serve -d "$dir/data" --ack --max-segment-size 32M --keep-segments 2 \
	--metrics-file "$dir/walctl.prom" < "$dir/points.lp" > "$dir/acks"
t1=$(date +%s.%N)
awk -v n="$N" -v a="$t0" -v b="$t1" -v acks="$(wc -l < "$dir/acks")" -v last="$(tail -n 1 "$dir/acks")" \
	'BEGIN { printf "   %.2f s, %.0f points/s, %d acks, last: %s\n", b - a, n / (b - a), acks, last }'
echo "== walctl verify -d $dir/data"
"$W" verify -d "$dir/data"
echo "== walctl dump -d $dir/data --format lp | head -n 3"
"$W" dump -d "$dir/data" --format lp | head -n 3
echo "== storage and WAL"
echo "   $(ls "$dir"/data/data/default | wc -l) partitions, $(du -sh "$dir/data/data" | cut -f1) compressed;" \
	"$(ls "$dir/data/wal" | wc -l) segments kept, $(du -sh "$dir/data/wal" | cut -f1)"
grep -E '^walctl_(syncs_total|flushes_total|checkpoints_total|rotations_total|segments_reclaimed_total) ' "$dir/walctl.prom" |
	sed 's/^/   /'
echo "== round trip: storage plus WAL, dumped as line protocol, equals the input"
if "$W" dump -d "$dir/data" --format lp | cmp -s - "$dir/points.lp"; then
	echo "   identical"
else
	echo "   DIFFERENT"
	exit 1
fi
rm -f "$dir/points.lp"
