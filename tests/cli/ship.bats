#!/usr/bin/env bats
# walctl ship: batches handed to a command from a consumer's cursor on,
# storage first then the WAL, in LSN order; the cursor moves only when the
# command exits 0; failures are retried, never skipped; SIGKILL at any
# instant loses nothing (at least once).  The InfluxDB test is in
# influxdb.bats.
load helpers

# every batch kept as a file named by its LSN range
SINK='cat > "$OUT/$WALCTL_FIRST_LSN-$WALCTL_LAST_LSN.$WALCTL_DB"'

cursor_of() { "$W" consumers -d "$D" list --format json | jq -r --arg n "$1" '.consumers[] | select(.name == $n) | .cursor_lsn'; }
last_lsn() { "$W" dump "$D/wal" --format jsonl | tail -n 1 | jq .lsn; }
# the batches' points, in LSN order of the batches
shipped() { ls "$OUT" | sort -t- -k1,1n | while read -r f; do cat "$OUT/$f"; done; }
# ends PID SECONDS: the process PID (a child) exits within SECONDS; its
# status in $ended.  A process that does not is killed, and the check fails.
ends() {
	for _ in $(seq $(($2 * 10))); do
		kill -0 "$1" 2> /dev/null || break
		sleep 0.1
	done
	if kill -0 "$1" 2> /dev/null; then
		kill -9 "$1"
		echo "process $1 did not end within $2 s"
		return 1
	fi
	ended=0
	wait "$1" || ended=$?
}

@test "--once from the start: storage, then the WAL, every point once, in LSN order, a database per batch" {
	export OUT=$T/out
	mkdir "$OUT"
	# an export whose sections alternate two databases (measurement cpu in
	# one, mem in two): storage holds partitions of both over the same LSNs
	"$GEN" 20000 > "$T/g.lp"
	{
		echo '# DML'
		for i in $(seq 0 19); do
			if [ $((i % 2)) -eq 0 ]; then echo '# CONTEXT-DATABASE:one'; else echo '# CONTEXT-DATABASE:two'; fi
			tail -n +$((i * 1000 + 1)) "$T/g.lp" | head -n 1000 | if [ $((i % 2)) -eq 0 ]; then cat; else sed 's/^cpu/mem/'; fi
		done
	} > "$T/in.export"
	grep -v '^#' "$T/in.export" > "$T/a.lp"
	"$W" -q serve -d "$D" --max-segment-size 64k --keep-segments 1 --buffer-points 3000 < <(head -n 15000 "$T/in.export")
	{ echo '# DML'; tail -n +15001 "$T/in.export"; } | "$W" -q serve -d "$D" --buffer-points 100000
	[ "$(ls "$D"/data/one/*.part | wc -l)" -ge 2 ]
	[ "$(ls "$D"/data/two/*.part | wc -l)" -ge 2 ]
	"$W" -q consumers -d "$D" add all --from-start
	run --separate-stderr "$W" ship -d "$D" --consumer all --once --batch-points 1500 --exec "$SINK"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *'msg="stopped" consumer="all" cursor_lsn="'"$(last_lsn)"'" batches="'* ]]
	[ "$(cursor_of all)" -eq "$(last_lsn)" ]
	shipped | cmp - "$T/a.lp"
	# a batch is one database's, and names it
	[ "$(ls "$OUT" | grep -c '\.one$')" -ge 5 ]
	[ "$(ls "$OUT" | grep -c '\.two$')" -ge 5 ]
	[ -z "$(cat "$OUT"/*.one | grep -v '^cpu')" ]
	[ -z "$(cat "$OUT"/*.two | grep -v '^mem')" ]
	# nothing new: nothing shipped
	rm "$OUT"/*
	"$W" -q ship -d "$D" --consumer all --once --exec "$SINK"
	[ -z "$(ls "$OUT")" ]
}

@test "following, a batch that is not full is handed on --batch-interval after its first point" {
	"$GEN" 100 | "$W" -q write -d "$D"
	"$W" -q consumers -d "$D" add c
	"$W" -q ship -d "$D" --consumer c --batch-points 100000 --batch-interval 200ms --exec "cat >> $T/got" &
	pid=$!
	"$GEN" 300 | tail -n 200 | "$W" -q write -d "$D"
	for _ in $(seq 50); do [ -s "$T/got" ] && break; sleep 0.1; done
	kill -TERM "$pid"
	ends "$pid" 5
	[ "$ended" -eq 0 ]
	[ "$(wc -l < "$T/got")" -eq 200 ]
	[ "$(cursor_of c)" -eq "$(last_lsn)" ]
}

@test "from a cursor: only what comes after it; formats jsonl and influx-import; the environment names the batch" {
	"$GEN" 3000 | "$W" -q write -d "$D" --batch 500 --db 'my db'
	"$W" -q consumers -d "$D" add c --from 4
	run --separate-stderr "$W" ship -d "$D" --consumer c --once --format jsonl --batch-points 10000 \
		--exec 'printf "%s %s %s %s %s\n" "$WALCTL_DB" "$WALCTL_FIRST_LSN" "$WALCTL_LAST_LSN" "$WALCTL_POINTS" "$WALCTL_CONSUMER" > '"$T/env"'; cat > '"$T/b.jsonl"
	[ "$status" -eq 0 ]
	last=$(last_lsn)
	[ "$(cat "$T/env")" = "my db 4 $last 1500 c" ]
	jq -e -s 'length == 1500 and all(.schema == "walctl-point/1")' "$T/b.jsonl"
	# the points of LSN 4 on, as dump shows them
	[ "$(jq -r -s '.[0].time' "$T/b.jsonl")" = "$("$W" dump -d "$D" --from 4 --format jsonl | head -n 1 | jq -r '.points[0].time')" ]
	"$W" -q consumers -d "$D" add l --from 4
	"$W" -q ship -d "$D" --consumer l --once --exec "cat > $T/l.lp"
	"$W" dump -d "$D" --from 4 --format lp | cmp - "$T/l.lp"
	"$W" -q consumers -d "$D" add i --from 6
	"$W" -q ship -d "$D" --consumer i --once --format influx-import --exec "cat > $T/i.txt"
	[ "$(head -n 2 "$T/i.txt")" = "$(printf '# DML\n# CONTEXT-DATABASE:my db')" ]
	[ "$(tail -n +3 "$T/i.txt")" = "$("$W" dump -d "$D" --from 6 --format lp)" ]
}

@test "a failing command is retried with growing pauses, never skipped; SIGTERM while waiting abandons the batch" {
	"$GEN" 1000 | "$W" -q write -d "$D" --batch 500
	"$W" -q consumers -d "$D" add c --from-start
	# fails twice, then takes the batch
	run --separate-stderr "$W" ship -d "$D" --consumer c --once --batch-points 500 \
		--exec 'n=$(cat '"$T"'/n 2> /dev/null || echo 0); echo $((n + 1)) > '"$T"'/n; [ "$n" -ge 2 ] || exit 7; cat >> '"$T"'/got'
	[ "$status" -eq 0 ]
	[ "$(grep -c 'msg="delivery failed" exit="7" first_lsn="1" last_lsn="1" points="500"' <<< "$stderr")" -eq 2 ]
	grep -q 'attempt="1" retry_in_seconds="0.1"' <<< "$stderr"
	grep -q 'attempt="2" retry_in_seconds="0.2"' <<< "$stderr"
	[ "$(wc -l < "$T/got")" -eq 1000 ]
	[ "$(cursor_of c)" -eq "$(last_lsn)" ]
	# a command that always fails: the cursor stays, SIGTERM ends it with 0
	"$GEN" 500 | "$W" -q write -d "$D"
	before=$(cursor_of c)
	"$W" ship -d "$D" --consumer c --exec 'exit 1' 2> "$T/log" &
	pid=$!
	for _ in $(seq 100); do grep -q 'attempt="3"' "$T/log" && break; sleep 0.1; done
	kill -TERM "$pid"
	ends "$pid" 5
	[ "$ended" -eq 0 ]
	grep -q 'msg="batch abandoned: stopping"' "$T/log"
	[ "$(cursor_of c)" -eq "$before" ]
}

@test "ship follows serve live; killed with SIGKILL at random instants and restarted, it loses nothing (${SHIP_CYCLES:-10} cycles)" {
	export OUT=$T/out
	mkdir "$OUT"
	"$GEN" 60000 > "$T/in.lp"
	mkdir -p "$D"
	"$W" -q consumers -d "$D" add f --from-start
	# serve takes the input in slices, with pauses, rotating and reclaiming,
	# for about as long as the kill cycles last
	cycles=${SHIP_CYCLES:-10}
	pause=$(awk -v c="$cycles" 'BEGIN { print c * 0.025 }')
	{ for i in $(seq 0 11); do tail -n +$((i * 5000 + 1)) "$T/in.lp" | head -n 5000; sleep "$pause"; done; } |
		"$W" -q serve -d "$D" --max-segment-size 64k --keep-segments 1 --buffer-points 2000 --flush-interval 50ms &
	serve=$!
	RANDOM=${SHIP_SEED:-1207} # the kill instants are drawn from this seed (rerun one with SHIP_SEED)
	# (the sink names this test's directory, so that its commands can be
	# told apart from another test's)
	sink="cat > \"$OUT/\$WALCTL_FIRST_LSN-\$WALCTL_LAST_LSN.\$WALCTL_DB\""
	for i in $(seq 1 "$cycles"); do
		"$W" -q ship -d "$D" --consumer f --batch-points 3000 --batch-interval 50ms --exec "$sink" &
		ship=$!
		sleep "0.$((RANDOM % 4 + 1))"
		kill -9 "$ship"
		wait "$ship" || true
		# a command the killed ship started goes on with its batch; the next
		# ship hands the same batch on again, and two commands writing one
		# file at once would garble it: the test's sink is not made for that
		for _ in $(seq 1 500); do pgrep -f "$OUT/" > /dev/null || break; sleep 0.01; done
	done
	wait "$serve"
	# what is left, to the end
	"$W" -q ship -d "$D" --consumer f --once --exec "$sink"
	[ "$(cursor_of f)" -eq "$(last_lsn)" ]
	# at least once: a batch killed before its cursor moved was shipped
	# again, whole; together they are the input, each point at least once
	diff <(sort -u "$OUT"/* | sort) <(sort -u "$T/in.lp")
	[ "$(cat "$OUT"/* | wc -l)" -ge 60000 ]
	# and the consumer held reclamation back: serve reclaimed nothing above
	# the cursor, and verify is clean
	"$W" verify -d "$D"
}

@test "a lost consumer: ship says so and exits 8; a second ship of one consumer is refused" {
	"$GEN" 100 | "$W" -q write -d "$D"
	"$W" -q consumers -d "$D" add c
	"$W" ship -d "$D" --consumer c --exec 'cat > /dev/null' 2> /dev/null &
	pid=$!
	sleep 0.5
	run -8 "$W" ship -d "$D" --consumer c --once --exec 'cat > /dev/null'
	[[ "$output" == *"consumer 'c': another walctl ship is delivering it"* ]]
	# serve marks it lost meanwhile: the running ship notices within a second
	sed -i 's/^state=live$/state=lost\nreason=lagged/' "$D/consumers/c"
	ends "$pid" 5
	[ "$ended" -eq 8 ]
	run -8 "$W" ship -d "$D" --consumer c --once --exec 'cat > /dev/null'
	[[ "$output" == *"consumer 'c' was marked lost at cursor LSN "*" (lagged); 'walctl consumers drop c' and add it again"* ]]
	run -8 "$W" ship -d "$D" --consumer nobody --once --exec 'cat'
	[[ "$output" == *"no consumer 'nobody' in '$D'; add it with 'walctl consumers -d $D add nobody'"* ]]
	run -16 "$W" ship -d "$D" --consumer c
	run -16 "$W" ship -d "$D" --exec cat
	run -16 "$W" ship -d "$D" --consumer c --exec cat --format csv
	run -16 "$W" ship -d "$D" --consumer c --exec cat --batch-points 0
}

@test "ship writes its metrics: cursor, lag, batches, points, failures" {
	"$GEN" 2000 | "$W" -q write -d "$D" --batch 500
	"$W" -q consumers -d "$D" add m --from-start
	"$W" -q ship -d "$D" --consumer m --once --batch-points 1000 --metrics-file "$T/ship.prom" --metrics-label job=x \
		--exec 'cat > /dev/null'
	cat "$T/ship.prom"
	grep -q "^walctl_ship_cursor_lsn{dir=\"$(realpath "$D")\",consumer=\"m\",job=\"x\"} $(last_lsn)$" "$T/ship.prom"
	grep -q '^walctl_ship_batches_total{.*} 2$' "$T/ship.prom"
	grep -q '^walctl_ship_points_total{.*} 2000$' "$T/ship.prom"
	grep -q '^walctl_ship_failures_total{.*} 0$' "$T/ship.prom"
	grep -q '^walctl_ship_lag_lsns{.*} 0$' "$T/ship.prom"
	if command -v promtool > /dev/null; then promtool check metrics < "$T/ship.prom"; fi
}

@test "a payload that does not decode stops ship (exit 4), naming its LSN; nothing from its batch on is handed on" {
	export OUT=$T/out
	mkdir "$OUT"
	"$GEN" 30000 > "$T/in.lp"
	"$W" -q write -d "$D" --batch 1000 "$T/in.lp"
	"$W" -q consumers -d "$D" add c --from-start
	off=$("$W" dump "$D/wal" --format jsonl | jq -r 'select(.lsn == 12) | .offset')
	# a CBOR break byte in the middle of LSN 12's points, both CRCs recomputed
	"$WALFIX" payload "$D/wal/0000000000000001.wal" "$off" 100000 255
	run --separate-stderr "$W" ship -d "$D" --consumer c --once --batch-points 3000 --exec "$SINK"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"LSN 12: points payload: "* ]]
	c=$(cursor_of c)
	[ "$c" -lt 12 ]
	# what was handed on is the input up to the cursor, whole batches
	[ "$(shipped | wc -l)" -eq $((c * 1000)) ]
	shipped | cmp - <(head -n $((c * 1000)) "$T/in.lp")
	# a point whose field kind is not one (7): the payload counts, but does
	# not decode, which the formatting threads find
	rm -rf "$D" "$OUT"/*
	printf 'm v=1i 1\nm v=2i 2\nm v=3i 3\n' | "$W" -q write -d "$D" --batch 1
	"$W" -q consumers -d "$D" add k --from-start
	off=$("$W" dump "$D/wal" --format jsonl | jq -r 'select(.lsn == 2) | .offset')
	"$WALFIX" payload "$D/wal/0000000000000001.wal" "$off" 19 15
	run --separate-stderr "$W" ship -d "$D" --consumer k --once --batch-points 1 --exec "$SINK"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"LSN 2: points payload: "* ]]
	[ "$(cursor_of k)" -eq 1 ]
	[ "$(shipped)" = "m v=1i 1" ]
	# the same with jsonl, decoded on ship's own thread
	rm -rf "$D"
	"$W" -q write -d "$D" --batch 1000 "$T/in.lp"
	"$WALFIX" payload "$D/wal/0000000000000001.wal" "$("$W" dump "$D/wal" --format jsonl | jq -r 'select(.lsn == 12) | .offset')" 100000 255
	"$W" -q consumers -d "$D" add j --from-start
	run --separate-stderr "$W" ship -d "$D" --consumer j --once --format jsonl --batch-points 3000 --exec 'cat > /dev/null'
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"LSN 12: points payload: "* ]]
	[ "$(cursor_of j)" -lt 12 ]
}

@test "ship hands on only durable entries: what no sync of the writer covered yet, ship syncs itself first" {
	mkdir -p "$D"
	"$W" -q consumers -d "$D" add c --from-start
	"$GEN" 300 > "$T/in.lp"
	mkfifo "$T/fifo"
	# one sync at the first entry, the next 30 s later: the second entry
	# stays in the page cache alone, which a power cut may take back
	"$WALCTL_REAL" -q serve -d "$D" --ack --sync-interval 30s --buffer-points 100000 < "$T/fifo" > "$T/acks" &
	serve=$!
	exec 8> "$T/fifo"
	head -n 100 "$T/in.lp" >&8
	for _ in $(seq 200); do [ -s "$T/acks" ] && break; sleep 0.1; done
	[ -s "$T/acks" ]
	tail -n +101 "$T/in.lp" >&8
	# every point is in the WAL (the page cache), most of them unacknowledged
	for _ in $(seq 200); do
		[ "$("$WALCTL_REAL" dump "$D/wal" --format lp 2> /dev/null | wc -l)" -eq 300 ] && break
		sleep 0.1
	done
	[ "$("$WALCTL_REAL" dump "$D/wal" --format lp 2> /dev/null | wc -l)" -eq 300 ]
	[ "$(tail -n 1 "$T/acks" | cut -d' ' -f3)" -lt 300 ]
	# (LeakSanitizer does not work under ptrace)
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -y -qq -e trace=fdatasync,fsync,execve -o "$T/trace" \
		"$WALCTL_REAL" -q ship -d "$D" --consumer c --once --batch-points 1 --exec "cat >> $T/got"
	exec 8>&-
	kill -9 "$serve"
	wait "$serve" || true
	[ "$(wc -l < "$T/got")" -eq 300 ]
	cmp "$T/got" "$T/in.lp"
	# the segment was synced by ship before the command saw the first batch:
	# a batch of one entry each, the first (LSN 1) read before any frame
	# whose durable mark covers it, so that it is one past the highest mark
	# ship has seen (0)
	sync_at=$(grep -n 'fdatasync([0-9]*</[^>]*/wal/0000000000000001\.wal>) = 0' "$T/trace" | head -n 1 | cut -d: -f1)
	exec_at=$(grep -n 'execve("/bin/sh"' "$T/trace" | head -n 1 | cut -d: -f1)
	[ -n "$sync_at" ] && [ -n "$exec_at" ]
	[ "$sync_at" -lt "$exec_at" ]
}
