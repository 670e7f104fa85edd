#!/bin/sh
# tsan-check.sh - run the threaded paths (write's parse helper and I/O
# thread; serve's ingest, sync, flush and metrics threads; the partition
# compressor) under ThreadSanitizer, which exits 66 on a data race.
set -eu
make -s SANITIZE=thread > /dev/null
W=build/san-thread/walctl
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
build/default/walctl bench --emit 200000 > "$t/in.lp" 2>/dev/null || ./walctl bench --emit 200000 > "$t/in.lp"
"$W" -q write -d "$t/w" --max-segment-size 1M "$t/in.lp"
"$W" -q serve -d "$t/s" --ack --buffer-points 2000 --flush-interval 10ms --max-segment-size 256k \
	--keep-segments 1 --metrics-file "$t/m.prom" < "$t/in.lp" > /dev/null
"$W" -q recover -d "$t/w" --apply > /dev/null
echo "tsan-check: no data race in write, serve or recover"
