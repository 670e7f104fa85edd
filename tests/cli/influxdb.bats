#!/usr/bin/env bats
# influxdb.bats - round trips through a real InfluxDB 1.x (Debian's influxdb
# and influxdb-client packages, installed by .ci/run; elsewhere the tests
# skip with a notice).  Each test runs its own influxd, bound to 127.0.0.1 on
# free ports, with every file in the test's temporary folder, and stops it by
# its pid.

load helpers

IRT=$BATS_TEST_DIRNAME/../tools/influx_rt.py

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	W=${WALCTL:-$ROOT/walctl}
	T=$(mktemp -d /tmp/walctl-cli-XXXXXX)
	D=$T/data
	unset WALCTL_DIR
	need influxd
	need influx
	need curl
	PORT=$(free_port)
	cat > "$T/influxdb.conf" <<-EOF
		reporting-disabled = true
		bind-address = "127.0.0.1:$(free_port)"
		[meta]
		  dir = "$T/influxdb/meta"
		[data]
		  dir = "$T/influxdb/data"
		  wal-dir = "$T/influxdb/wal"
		  query-log-enabled = false
		[retention]
		  enabled = false
		[monitor]
		  store-enabled = false
		[continuous_queries]
		  enabled = false
		[http]
		  bind-address = "127.0.0.1:$PORT"
		  log-enabled = false
	EOF
	influxd -config "$T/influxdb.conf" > "$T/influxd.log" 2>&1 3>&- &
	INFLUXD=$!
	for _ in $(seq 300); do
		curl -sf "http://127.0.0.1:$PORT/ping" > /dev/null && return 0
		kill -0 "$INFLUXD" 2> /dev/null || break
		sleep 0.1
	done
	cat "$T/influxd.log"
	return 1
}

teardown() {
	if [ -n "${INFLUXD:-}" ]; then
		kill "$INFLUXD" 2> /dev/null || true
		for _ in $(seq 100); do kill -0 "$INFLUXD" 2> /dev/null || break; sleep 0.1; done
		kill -9 "$INFLUXD" 2> /dev/null || true
	fi
	rm -rf "$T"
}

iq() { influx -host 127.0.0.1 -port "$PORT" -execute "$1"; }

# load DB FILE: line protocol through the HTTP API, at nanosecond precision
load_http() {
	iq "CREATE DATABASE \"$1\""
	curl -sS --fail -XPOST "http://127.0.0.1:$PORT/write?db=$(jq -rn --arg d "$1" '$d|@uri')&precision=ns" \
		--data-binary @"$2"
}

# import: influx -import of stdin, which must insert every point
import() { influx -host 127.0.0.1 -port "$PORT" -import -path /dev/stdin -precision ns; }

# points in a select file: the rows of all its series
rows() { jq -s 'map(.values | length) | add' "$1"; }

@test "InfluxDB round trip: an export read by serve and write, dumped with influx-import into new databases, SELECTs identical to the nanosecond" {
	python3 "$IRT" gen 1 3000 > "$T/a.lp"
	python3 "$IRT" gen 2 2000 > "$T/b.lp"
	load_http src_a "$T/a.lp"
	load_http 'src b' "$T/b.lp"
	python3 "$IRT" select "$PORT" src_a > "$T/sel.a"
	python3 "$IRT" select "$PORT" 'src b' > "$T/sel.b"
	[ "$(rows "$T/sel.a")" -eq 3000 ]
	[ "$(rows "$T/sel.b")" -eq 2000 ]
	python3 "$IRT" export "$PORT" src_a 'src b' > "$T/export"
	grep -qx '# CONTEXT-DATABASE:src b' "$T/export"

	# serve flushes the points to storage partitions and reclaims the WAL
	run --separate-stderr "$W" serve -d "$D" --buffer-points 700 --max-segment-size 64k --keep-segments 1 < "$T/export"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *'msg="skipped the DDL statements of an InfluxDB export" count="2"'* ]]
	ls "$D/data/src_a/"*.part "$D/data/src%20b/"*.part
	[ ! -e "$D/wal/0000000000000000.wal" ]
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]

	# write reads the same export into the same points, kept in its WAL
	run --separate-stderr "$W" write -d "$T/w" < "$T/export"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"skipped 2 DDL statements of an InfluxDB export"* ]]
	diff <("$W" dump -d "$D" --format lp | sort) <("$W" dump -d "$T/w" --format lp | sort)

	# one database from serve's storage, loaded into a second database of
	# the same server
	"$W" dump -d "$D" --db 'src b' --format influx-import |
		sed 's/^CREATE DATABASE "src b"$/CREATE DATABASE "copy of b"/; s/^# CONTEXT-DATABASE:src b$/# CONTEXT-DATABASE:copy of b/' |
		import
	python3 "$IRT" select "$PORT" 'copy of b' | diff "$T/sel.b" -

	# everything from write's WAL, into databases that no longer exist: the
	# DDL makes them
	iq 'DROP DATABASE src_a'
	iq 'DROP DATABASE "src b"'
	"$W" dump -d "$T/w" --format influx-import | import
	python3 "$IRT" select "$PORT" src_a | diff "$T/sel.a" -
	python3 "$IRT" select "$PORT" 'src b' | diff "$T/sel.b" -
}

start_influxd() {
	influxd -config "$T/influxdb.conf" >> "$T/influxd.log" 2>&1 3>&- &
	INFLUXD=$!
	for _ in $(seq 300); do
		curl -sf "http://127.0.0.1:$PORT/ping" > /dev/null && return 0
		sleep 0.1
	done
	return 1
}

stop_influxd() {
	kill "$INFLUXD"
	for _ in $(seq 100); do kill -0 "$INFLUXD" 2> /dev/null || break; sleep 0.1; done
}

@test "ship into InfluxDB while serve ingests: the shipper killed ${SHIP_CYCLES:-10} times, influxd restarted, every point arrives exactly once" {
	python3 "$IRT" gen 5 30000 > "$T/in.lp"
	# the reference: the same points, written directly
	load_http ref "$T/in.lp"
	iq 'CREATE DATABASE shipped'
	mkdir -p "$D"
	"$W" -q consumers -d "$D" add influx --from-start
	# walctl-ship(1)'s recipe, word for word but for the port
	url="http://127.0.0.1:$PORT/write?db=\$WALCTL_DB&precision=ns"
	# serve's input lasts about as long as the kill cycles
	cycles=${SHIP_CYCLES:-10}
	pause=$(awk -v c="$cycles" 'BEGIN { print c * 0.03 }')
	{ for i in $(seq 0 9); do tail -n +$((i * 3000 + 1)) "$T/in.lp" | head -n 3000; sleep "$pause"; done; } |
		"$W" -q serve -d "$D" --db shipped --keep-segments 1 --max-segment-size 256KiB --buffer-points 1000 \
			--flush-interval 50ms &
	serve=$!
	RANDOM=${SHIP_SEED:-1207} # the kill instants are drawn from this seed (rerun one with SHIP_SEED)
	for i in $(seq 1 "$cycles"); do
		"$W" -q ship -d "$D" --consumer influx --batch-points 2000 --batch-interval 50ms \
			--exec "curl -sS --fail --data-binary @- \"$url\"" &
		ship=$!
		if [ "$i" -eq $((cycles / 2)) ]; then
			# influxd goes away for a while: ship retries, and waits
			stop_influxd
			sleep 0.5
			start_influxd
		fi
		sleep "0.$((RANDOM % 4 + 1))"
		kill -9 "$ship"
		wait "$ship" || true
	done
	wait "$serve"
	"$W" -q ship -d "$D" --consumer influx --once --exec "curl -sS --fail --data-binary @- \"$url\""
	"$W" consumers -d "$D" list --format json | jq -e '.consumers[0].lag_lsns == 0'
	iq 'SELECT count(*) FROM ref.autogen./.*/' > "$T/count.ref"
	iq 'SELECT count(*) FROM shipped.autogen./.*/' > "$T/count.shipped"
	grep -q '^name: cpu' "$T/count.ref"
	diff "$T/count.ref" "$T/count.shipped"
	# value by value, to the nanosecond
	python3 "$IRT" select "$PORT" ref > "$T/sel.ref"
	python3 "$IRT" select "$PORT" shipped > "$T/sel.shipped"
	[ "$(rows "$T/sel.ref")" -eq 30000 ]
	diff "$T/sel.ref" "$T/sel.shipped"
}

@test "ship's influx -import recipe: batches of two databases land in both, every point" {
	python3 "$IRT" gen 8 4000 > "$T/a.lp"
	python3 "$IRT" gen 9 3000 > "$T/b.lp"
	load_http ref_a "$T/a.lp"
	load_http ref_b "$T/b.lp"
	"$W" -q write -d "$D" --db imp_a "$T/a.lp"
	"$W" -q write -d "$D" --db imp_b "$T/b.lp"
	iq 'CREATE DATABASE imp_a'
	iq 'CREATE DATABASE imp_b'
	"$W" -q consumers -d "$D" add imp --from-start
	# walctl-ship(1)'s recipe, with the port
	"$W" -q ship -d "$D" --consumer imp --once --format influx-import --batch-points 1500 \
		--exec "influx -host 127.0.0.1 -port $PORT -import -path /dev/stdin -precision ns"
	python3 "$IRT" select "$PORT" ref_a > "$T/ref_a"
	python3 "$IRT" select "$PORT" imp_a | diff "$T/ref_a" -
	python3 "$IRT" select "$PORT" ref_b > "$T/ref_b"
	python3 "$IRT" select "$PORT" imp_b | diff "$T/ref_b" -
}
