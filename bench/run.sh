#!/usr/bin/env bash
# run.sh - make bench: every performance figure of walctl beside its target,
# on the same generated TSBS cpu-only points, with a SQLite baseline
# measured in the same run.  Each figure is the median of RUNS runs.  A
# benchmark, not a test: it asserts nothing, it measures; "below" marks a
# figure that misses its target.
#
#   POINTS=1000000 BIG_POINTS=10000000 RUNS=5 BENCH_DIR=/tmp bench/run.sh
#
# BIG_POINTS=0 leaves out serve on the large input (it needs about 350
# bytes of disk per point for the input, and as much again for the WAL).
set -euo pipefail
W=${WALCTL:?} B=${BUILD:?}
POINTS=${POINTS:-1000000}
BIG_POINTS=${BIG_POINTS:-10000000}
RUNS=${RUNS:-5}
dir=$(mktemp -d "${BENCH_DIR:-/tmp}/walctl-bench-XXXXXX")
trap 'rm -rf "$dir"' EXIT

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.9f\\n\", $* }"; }
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
# drop FILES from the page cache, so the next read comes from the disk
uncache() { sync; python3 -c 'import os, sys
for f in sys.argv[1:]:
    fd = os.open(f, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$@"; }
# times CMD...: run it RUNS times (its output thrown away), print the median
# of its wall-clock seconds
times() {
	: > "$dir/times"
	for _ in $(seq "$RUNS"); do
		if [ -n "${before:-}" ]; then eval "$before"; fi
		local t0 t1
		t0=$(now)
		"$@" > /dev/null
		t1=$(now)
		calc "$t1 - $t0" >> "$dir/times"
	done
	median < "$dir/times"
}
# verdict HAVE WANT: "ok" when HAVE >= WANT, else "below"
verdict() { awk -v h="$1" -v w="$2" 'BEGIN { print (h >= w) ? "ok" : "below" }'; }

echo "generating $POINTS TSBS cpu-only points..."
"$B/tests/tools/gen" "$POINTS" > "$dir/points.lp"
bytes=$(stat -c %s "$dir/points.lp")
printf '%d points, %.1f MB of line protocol (%.0f bytes/point), %s, %s cores\n' "$POINTS" \
	"$(calc "$bytes / 1000000")" "$(calc "$bytes / $POINTS")" "$(uname -srm)" "$(nproc)"
cat "$dir/points.lp" > /dev/null # warm the input in the page cache

# serve: the whole process, from start to exit (startup, compressed storage
# flushes and the final checkpoint included), fdatasync group commit, acks on.
serve_run() { # input points -> seconds, peak RSS in KiB to $dir/rss
	: > "$dir/times"
	: > "$dir/rss"
	for _ in $(seq "$RUNS"); do
		rm -rf "$dir/serve"
		local t0 t1
		t0=$(now)
		/usr/bin/env time -f %M -o "$dir/rss.one" "$W" -q serve -d "$dir/serve" --ack --sync fdatasync \
			< "$1" > "$dir/acks"
		t1=$(now)
		calc "$t1 - $t0" >> "$dir/times"
		cat "$dir/rss.one" >> "$dir/rss"
		[ "$(tail -n 1 "$dir/acks" | cut -d' ' -f3)" = "$2" ] || { echo "serve did not ack every point" >&2; exit 1; }
	done
	rm -rf "$dir/serve"
	median < "$dir/times"
}
serve1=$(serve_run "$dir/points.lp" "$POINTS")
rss1=$(median < "$dir/rss")

sqlite=$(before='rm -f "$dir"/base.db*' times "$B/bench/sqlite_baseline" "$dir/points.lp" "$dir/base.db")
rm -f "$dir"/base.db*
w_async=$(before='rm -rf "$dir/data"' times "$W" -q write -d "$dir/data" --sync async "$dir/points.lp")
w_sync=$(before='rm -rf "$dir/data"' times "$W" -q write -d "$dir/data" --sync fdatasync "$dir/points.lp")

# the WAL that write left is what the readers read
segs=("$dir"/data/wal/*.wal)
walbytes=$(du -cb "${segs[@]}" | tail -n 1 | cut -f1)
"$W" -q verify -d "$dir/data" > /dev/null # warm
v_warm=$(times "$W" -q verify -d "$dir/data")
v_deep=$(times "$W" -q verify --deep -d "$dir/data")
v_cold=$(before='uncache "${segs[@]}"' times "$W" -q verify -d "$dir/data")
raw_cold=$(before='uncache "${segs[@]}"' times cat "${segs[@]}")
d_lp=$(times "$W" dump -d "$dir/data" --format lp)
d_jsonl=$(times "$W" dump -d "$dir/data" --format jsonl)

# recover: replay the whole WAL into compressed storage partitions and
# checkpoint, on a fresh copy each run (the copy is not timed)
rec=$(before='rm -rf "$dir/rec"; cp -r "$dir/data" "$dir/rec"; sync' times "$W" -q recover -d "$dir/rec" --apply)
rm -rf "$dir/rec"

# one point at a time, each waiting for its ack, beside a raw 4 KiB
# append + fdatasync on the same disk (walctl bench measures both)
: > "$dir/ratios"
for _ in $(seq "$RUNS"); do
	"$W" bench --sync fdatasync --points 2000 --latency 2000 --format json 2> /dev/null |
		sed 's/.*"ratio": \([0-9.]*\).*/\1/' >> "$dir/ratios"
done
lat=$(median < "$dir/ratios")

# ship: the points serve stored, from the start, in batches of 50,000,
# into a sink that reads and exits 0; and, where influxd is installed, into
# an influxd on loopback beside the same batches posted by curl directly
"$W" -q serve -d "$dir/ship" < "$dir/points.lp"
ship_once() { # --exec CMD -> seconds (the cursor starts at 0 each run)
	: > "$dir/times"
	for _ in $(seq "$RUNS"); do
		"$W" -q consumers -d "$dir/ship" drop s 2> /dev/null || true
		"$W" -q consumers -d "$dir/ship" add s --from-start
		local t0 t1
		t0=$(now)
		"$W" -q ship -d "$dir/ship" --consumer s --once --batch-points 50000 --exec "$1"
		t1=$(now)
		calc "$t1 - $t0" >> "$dir/times"
	done
	median < "$dir/times"
}
ship_cat=$(ship_once 'cat > /dev/null')
ship_influx= curl_influx=
if command -v influxd > /dev/null && command -v curl > /dev/null; then
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mkdir -p "$dir/influx"
	cat > "$dir/influx/conf" <<-EOF
		reporting-disabled = true
		bind-address = "127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
		[meta]
		  dir = "$dir/influx/meta"
		[data]
		  dir = "$dir/influx/data"
		  wal-dir = "$dir/influx/wal"
		  query-log-enabled = false
		[monitor]
		  store-enabled = false
		[http]
		  bind-address = "127.0.0.1:$port"
		  log-enabled = false
	EOF
	influxd -config "$dir/influx/conf" > "$dir/influx/log" 2>&1 &
	influxd=$!
	for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/ping" > /dev/null && break; sleep 0.1; done
	url="http://127.0.0.1:$port/write?db=bench&precision=ns"
	curl -sf -XPOST "http://127.0.0.1:$port/query" --data-urlencode 'q=CREATE DATABASE bench' > /dev/null
	ship_influx=$(ship_once "curl -sS --fail --data-binary @- '$url'")
	# the same batches, posted directly
	split -l 50000 "$dir/points.lp" "$dir/batch."
	post_all() { for f in "$dir"/batch.*; do curl -sS --fail --data-binary @"$f" "$url"; done; }
	curl_influx=$(times post_all)
	rm -f "$dir"/batch.*
	kill "$influxd"
	wait "$influxd" 2> /dev/null || true
fi
rm -rf "$dir/ship"

# serve on the large input: how cost grows with input
if [ "$BIG_POINTS" -gt 0 ]; then
	rm -rf "$dir/data"
	echo "generating $BIG_POINTS points for serve on a large input..."
	"$B/tests/tools/gen" "$BIG_POINTS" > "$dir/big.lp"
	serve10=$(serve_run "$dir/big.lp" "$BIG_POINTS")
	rss10=$(median < "$dir/rss")
	rm -f "$dir/big.lp"
fi

pps() { calc "$POINTS / $1"; }
echo
echo "median of $RUNS runs; ratios against SQLite are of the same run"
printf '%-44s %9s %16s %-34s %s\n' figure seconds rate target ""
row() { # label seconds rate target verdict
	printf '%-44s %9.3f %16s %-34s %s\n' "$1" "$2" "$3" "$4" "$5"
}
mps() { printf '%.2fM pts/s' "$(calc "$1 / 1000000")"; }
row "SQLite baseline (WAL, sync=NORMAL, 5k tx)" "$sqlite" "$(mps "$(pps "$sqlite")")" "" ""
r=$(calc "$sqlite / $serve1")
row "serve --ack, fdatasync (whole process)" "$serve1" "$(mps "$(pps "$serve1")")" \
	">= 2.0M pts/s and >= 3x SQLite ($(printf '%.2fx' "$r"))" \
	"$( [ "$(verdict "$(pps "$serve1")" 2000000)" = ok ] && [ "$(verdict "$r" 3)" = ok ] && echo ok || echo below)"
r=$(calc "$sqlite / $w_sync")
row "write --sync fdatasync" "$w_sync" "$(mps "$(pps "$w_sync")")" ">= 3x SQLite ($(printf '%.2fx' "$r"))" \
	"$(verdict "$r" 3)"
row "write --sync async" "$w_async" "$(mps "$(pps "$w_async")")" "" ""
g=$(calc "$walbytes / $v_warm / 1000000000")
row "verify, warm" "$v_warm" "$(printf '%.2f GB/s' "$g")" ">= 6 GB/s" "$(verdict "$g" 6)"
g=$(calc "$walbytes / $v_cold / 1000000000")
r=$(calc "$raw_cold / $v_cold")
row "verify, cold (page cache dropped)" "$v_cold" "$(printf '%.2f GB/s' "$g")" \
	">= 0.9x raw read ($(printf '%.2fx' "$r"))" "$(verdict "$r" 0.9)"
row "  raw sequential read of the same files" "$raw_cold" \
	"$(printf '%.2f GB/s' "$(calc "$walbytes / $raw_cold / 1000000000")")" "" ""
g=$(calc "$walbytes / $v_deep / 1000000000")
row "verify --deep" "$v_deep" "$(printf '%.2f GB/s' "$g")" ">= 1 GB/s of WAL" "$(verdict "$g" 1)"
row "dump --format lp > /dev/null" "$d_lp" "$(mps "$(pps "$d_lp")")" ">= 2.0M pts/s" \
	"$(verdict "$(pps "$d_lp")" 2000000)"
row "dump --format jsonl > /dev/null" "$d_jsonl" "$(mps "$(pps "$d_jsonl")")" "" ""
g=$(calc "$walbytes / $rec / 1000000000")
row "recover --apply (replay)" "$rec" "$(printf '%.2f GB/s' "$g")" ">= 1 GB/s ($(printf '%.3f' \
	"$(calc "$rec * 100000000 / $walbytes")") s per 100 MB)" "$(verdict "$g" 1)"
r=$(calc "$serve1 / $ship_cat")
row "ship --once into cat, 50k-point batches" "$ship_cat" "$(mps "$(pps "$ship_cat")")" \
	">= serve's rate ($(printf '%.2fx' "$r"))" "$(verdict "$r" 1)"
if [ -n "$ship_influx" ]; then
	r=$(calc "$curl_influx / $ship_influx")
	row "ship into influxd (curl per batch)" "$ship_influx" "$(mps "$(pps "$ship_influx")")" \
		"beside curl alone ($(printf '%.2fx' "$r"))" ""
	row "  the same batches posted by curl alone" "$curl_influx" "$(mps "$(pps "$curl_influx")")" "" ""
else
	echo "ship into influxd: influxd is not installed (scripts/deps.sh --install influx)"
fi
printf '%-44s %9s %16s %-34s %s\n' "one point at a time: ack / raw 4 KiB fdatasync" - "$(printf '%.2fx' "$lat")" \
	"<= 1.1x" "$(awk -v l="$lat" 'BEGIN { print (l <= 1.1) ? "ok" : "below" }')"
printf '%-44s %9s %16s %-34s %s\n' "serve peak RSS (defaults)" - "$(printf '%.1f MiB' "$(calc "$rss1 / 1024")")" \
	"<= 64 MiB" "$(awk -v r="$rss1" 'BEGIN { print (r <= 65536) ? "ok" : "below" }')"
if [ "$BIG_POINTS" -gt 0 ]; then
	p10=$(calc "$BIG_POINTS / $serve10")
	r=$(calc "$p10 / $(pps "$serve1")")
	row "serve --ack on $BIG_POINTS points" "$serve10" "$(mps "$p10")" \
		">= 0.9x the figure above ($(printf '%.2fx' "$r"))" "$(verdict "$r" 0.9)"
	printf '%-44s %9s %16s %-34s %s\n' "  its peak RSS" - "$(printf '%.1f MiB' "$(calc "$rss10 / 1024")")" \
		"flat ($(printf '%.1f' "$(calc "$rss1 / 1024")") MiB above)" \
		"$(awk -v a="$rss1" -v b="$rss10" 'BEGIN { print (b <= a * 1.25) ? "ok" : "below" }')"
fi
printf 'WAL: %.1f MB in %d segments\n' "$(calc "$walbytes / 1000000")" "${#segs[@]}"
