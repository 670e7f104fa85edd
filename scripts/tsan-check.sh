#!/bin/sh
# tsan-check.sh - run the threaded paths (write's parse helper and I/O
# thread; the engine's sync and flush threads under serve, write and its
# unit test; serve's metrics thread; the partition compressor; dump's
# line-protocol formatters; ship's command running beside it) under
# ThreadSanitizer, which exits 66 on a data race.
set -eu
make -s SANITIZE=thread > /dev/null
make -s SANITIZE=thread build/san-thread/tests/unit/test_engine > /dev/null
build/san-thread/tests/unit/test_engine > /dev/null
W=build/san-thread/walctl
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
build/default/walctl bench --emit 200000 > "$t/in.lp" 2>/dev/null || ./walctl bench --emit 200000 > "$t/in.lp"
"$W" -q write -d "$t/w" --max-segment-size 1M "$t/in.lp"
# a consumer the flush thread marks lost, counted for the metrics thread
mkdir -p "$t/s"
"$W" -q consumers -d "$t/s" add slow --from-start
"$W" -q serve -d "$t/s" --ack --buffer-points 2000 --flush-interval 10ms --max-segment-size 256k \
	--keep-segments 1 --max-consumer-lag 1M --metrics-file "$t/m.prom" < "$t/in.lp" > /dev/null
grep -q '^walctl_consumers_lost_total{.*} 1$' "$t/m.prom" || {
	echo "tsan-check: serve did not mark the consumer lost"
	exit 1
}
# the reader of the acks goes away: the sync thread tells the main one
{
	st=0
	"$W" -q serve -d "$t/p" --ack < "$t/in.lp" 2> "$t/p.log" || st=$?
	echo "$st" > "$t/status"
} | head -n 3 > /dev/null
[ "$(cat "$t/status")" = 8 ] || {
	cat "$t/p.log"
	echo "tsan-check: serve --ack | head exited $(cat "$t/status"), not 8"
	exit 1
}
"$W" -q recover -d "$t/w" --apply > /dev/null
"$W" dump -d "$t/s" --format lp > /dev/null
"$W" dump -d "$t/w" --format influx-import > /dev/null
"$W" -q consumers -d "$t/w" add c --from-start
"$W" -q ship -d "$t/w" --consumer c --once --batch-points 20000 --exec 'cat > /dev/null'
echo "tsan-check: no data race in the engine, write, serve, recover, dump or ship"
