#!/usr/bin/env bash
# run.sh - make bench: walctl write and verify against a SQLite baseline
# measured in the same run, on the same generated TSBS cpu-only points.
# Reports medians of RUNS runs.  A benchmark, not a test: it asserts
# nothing, it measures.
#
#   POINTS=1000000 RUNS=5 BENCH_DIR=/tmp bench/run.sh
set -euo pipefail
W=${WALCTL:?} B=${BUILD:?}
POINTS=${POINTS:-1000000}
RUNS=${RUNS:-5}
dir=$(mktemp -d "${BENCH_DIR:-/tmp}/walctl-bench-XXXXXX")
trap 'rm -rf "$dir"' EXIT

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.9f\\n\", $* }"; }
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "generating $POINTS TSBS cpu-only points..."
"$B/tests/tools/gen" "$POINTS" > "$dir/points.lp"
bytes=$(stat -c %s "$dir/points.lp")
printf '%d points, %.1f MB of line protocol (%.0f bytes/point), %s\n' "$POINTS" "$(calc "$bytes / 1000000")" \
	"$(calc "$bytes / $POINTS")" "$(uname -srm)"
cat "$dir/points.lp" > /dev/null   # warm the input in the page cache

time_write() {  # mode -> seconds
	rm -rf "$dir/data"
	local t0 t1
	t0=$(now)
	"$W" -q write -d "$dir/data" --sync "$1" "$dir/points.lp"
	t1=$(now)
	calc "$t1 - $t0"
}

declare -A med
# serve: the whole process, from start to exit (startup, compressed storage
# flushes and the final checkpoint included), fdatasync group commit, acks on.
: > "$dir/times"
: > "$dir/rss"
for _ in $(seq "$RUNS"); do
	rm -rf "$dir/serve"
	t0=$(now)
	/usr/bin/env time -f %M -o "$dir/rss.one" "$W" -q serve -d "$dir/serve" --ack --sync fdatasync \
		< "$dir/points.lp" > "$dir/acks"
	t1=$(now)
	calc "$t1 - $t0" >> "$dir/times"
	cat "$dir/rss.one" >> "$dir/rss"
	[ "$(tail -n 1 "$dir/acks" | cut -d' ' -f3)" = "$POINTS" ] || { echo "serve did not ack every point" >&2; exit 1; }
done
med[serve]=$(median < "$dir/times")
rss=$(median < "$dir/rss")
: > "$dir/ratios"
for _ in $(seq "$RUNS"); do
	"$W" bench --sync fdatasync --points 2000 --latency 2000 --format json 2>/dev/null |
		sed 's/.*"ratio": \([0-9.]*\).*/\1/' >> "$dir/ratios"
done
lat=$(median < "$dir/ratios")
for mode in sqlite async fdatasync; do
	: > "$dir/times"
	for _ in $(seq "$RUNS"); do
		if [ "$mode" = sqlite ]; then
			"$B/bench/sqlite_baseline" "$dir/points.lp" "$dir/base.db" | awk '{print $2}' >> "$dir/times"
			rm -f "$dir"/base.db*
		else
			time_write "$mode" >> "$dir/times"
		fi
	done
	med[$mode]=$(median < "$dir/times")
done

walbytes=$(du -cb "$dir"/data/wal/*.wal | tail -n 1 | cut -f1)
"$W" -q verify -d "$dir/data" > /dev/null   # warm
: > "$dir/times"
for _ in $(seq "$RUNS"); do
	t0=$(now); "$W" -q verify -d "$dir/data" > /dev/null; t1=$(now)
	calc "$t1 - $t0" >> "$dir/times"
done
vmed=$(median < "$dir/times")

# recover: replay the whole WAL into compressed storage partitions and
# checkpoint, on a fresh copy each run (the copy is not timed).
: > "$dir/times"
for _ in $(seq "$RUNS"); do
	rm -rf "$dir/rec"
	cp -r "$dir/data" "$dir/rec"
	sync
	t0=$(now); "$W" -q recover -d "$dir/rec" --apply > /dev/null; t1=$(now)
	calc "$t1 - $t0" >> "$dir/times"
done
rmed=$(median < "$dir/times")

echo
printf '%-34s %12s %14s %10s %12s\n' "path (median of $RUNS)" seconds points/s MB/s "vs SQLite"
for mode in sqlite async fdatasync serve; do
	s=${med[$mode]}
	case $mode in
	sqlite) label="SQLite WAL, sync=NORMAL, 5k tx" ;;
	serve) label="walctl serve --ack (fdatasync)" ;;
	*) label="walctl write --sync $mode" ;;
	esac
	printf '%-34s %12.3f %14.0f %10.1f %11.2fx\n' "$label" "$s" "$(calc "$POINTS / $s")" \
		"$(calc "$bytes / $s / 1000000")" "$(calc "${med[sqlite]} / $s")"
done
printf '%-34s %12.3f %14s %10.1f   (%.2f GB/s of WAL, %.1f MB)\n' "walctl verify (warm)" "$vmed" - \
	"$(calc "$walbytes / $vmed / 1000000")" "$(calc "$walbytes / $vmed / 1000000000")" \
	"$(calc "$walbytes / 1000000")"
printf '%-34s %12.3f %14s %10.1f   (%.2f GB/s of WAL; %.3f s per 100 MB)\n' "walctl recover --apply (replay)" \
	"$rmed" - "$(calc "$walbytes / $rmed / 1000000")" "$(calc "$walbytes / $rmed / 1000000000")" \
	"$(calc "$rmed * 100000000 / $walbytes")"
printf '%-34s peak RSS %.1f MiB (defaults); one point at a time: median ack / raw 4 KiB append+fdatasync = %.2f\n' \
	"walctl serve" "$(calc "$rss / 1024")" "$lat"
