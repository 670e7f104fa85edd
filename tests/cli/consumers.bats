#!/usr/bin/env bats
# Named consumers: cursors in DIR/consumers/NAME that hold back
# reclamation (serve's and compact's) until a consumer lags past
# --max-consumer-lag and is marked lost.
load helpers

cursor_of() { "$W" consumers -d "$D" list --format json | jq -r --arg n "$1" '.consumers[] | select(.name == $n) | .cursor_lsn'; }
state_of() { "$W" consumers -d "$D" list --format json | jq -r --arg n "$1" '.consumers[] | select(.name == $n) | .state'; }
first_lsn() { "$W" dump "$D/wal" --format jsonl | head -n 1 | jq -r .lsn; }

@test "add, list and drop; the cursor file is one line per field" {
	"$GEN" 3000 | "$W" -q write -d "$D" --batch 100
	last=$("$W" dump "$D/wal" --format jsonl | tail -n 1 | jq .lsn)
	[ "$last" -gt 25 ]
	run "$W" consumers -d "$D"
	[ "$status" -eq 0 ]
	[ "$output" = "no consumers in '$D'" ]
	run "$W" consumers -d "$D" add tail
	[ "$status" -eq 0 ]
	[[ "$output" == *"added consumer 'tail' with cursor LSN $last (it delivers from LSN $((last + 1)))"* ]]
	"$W" -q consumers -d "$D" add all --from-start
	"$W" -q consumers -d "$D" add mid --from 12
	[ "$(cat "$D/consumers/mid")" = "$(printf 'walctl-consumer 1\nlsn=11\nstate=live')" ]
	"$W" consumers -d "$D" list --format json > "$T/c.json"
	jq -e --argjson l "$last" '.last_lsn == $l and (.consumers | map(.name)) == ["all", "mid", "tail"]' "$T/c.json"
	jq -e --argjson l "$last" '.consumers[0].cursor_lsn == 0 and .consumers[0].lag_lsns == $l and .consumers[0].lag_bytes > 0' "$T/c.json"
	jq -e '.consumers[2].lag_lsns == 0 and .consumers[2].lag_bytes == 0 and .consumers[2].reason == null' "$T/c.json"
	run "$W" consumers -d "$D" list
	[ "${lines[0]}" = "consumer               cursor_lsn     lag_lsns      lag_bytes state" ]
	[[ "${lines[2]}" == "mid                            11 $(printf '%12s' $((last - 11))) "*" live" ]]
	cp "$D/consumers/mid" "$T/mid.before"
	run "$W" consumers -d "$D" drop mid
	[ "$status" -eq 0 ]
	[ ! -e "$D/consumers/mid" ]
	# its cursor is kept in the quarantine, with a MANIFEST naming it
	stamp=$(sed -n "s|.*its cursor is kept in quarantine/\([^)]*\)).*|\1|p" <<< "$output")
	q=$D/quarantine/$stamp
	grep -q '^file=consumers/mid op=drop offset=0 length=[0-9]* saved=mid@0 saved_sha256=' "$q/MANIFEST"
	cmp "$q/mid@0" "$T/mid.before"
	[ "$(cursor_of all)" = 0 ]
}

@test "consumers: usage errors exit 16, a missing consumer 8, and nothing is written" {
	"$GEN" 100 | "$W" -q write -d "$D"
	run -16 "$W" consumers -d "$D" add ../x
	[[ "$output" == *"invalid consumer name '../x'"* ]]
	run -16 "$W" consumers -d "$D" add .x
	run -16 "$W" consumers -d "$D" add x --from 0
	run -16 "$W" consumers -d "$D" add x --from 3 --from-start
	run -16 "$W" consumers -d "$D" add
	run -16 "$W" consumers -d "$D" frob x
	run -16 "$W" consumers -d "$D" drop x --from-end
	run -16 "$W" consumers -d "$D" list extra
	# past the next LSN, a cursor would skip what comes next
	next=$(( $("$W" dump "$D/wal" --format jsonl | tail -n 1 | jq .lsn) + 1 ))
	run -16 "$W" consumers -d "$D" add x --from $((next + 1))
	[[ "$output" == *"option '--from': LSN $((next + 1)) is past the WAL's next LSN, $next"* ]]
	[ ! -e "$D/consumers" ] || [ -z "$(ls "$D/consumers")" ]
	"$W" -q consumers -d "$D" add x
	run -16 "$W" consumers -d "$D" add x
	[[ "$output" == *"consumer 'x' already exists"* ]]
	run -8 "$W" consumers -d "$D" drop y
	[[ "$output" == *"no consumer 'y' in '$D'"* ]]
	printf 'walctl-consumer 1\nlsn=oops\nstate=live\n' > "$D/consumers/bad"
	# damage in that consumer's file (4), named; the others are listed
	run -4 "$W" consumers -d "$D" list
	[[ "$output" == *"consumers/bad': bad cursor 'lsn=oops'"* ]]
}

@test "serve's reclamation never passes a live consumer's cursor; dropped, the consumer holds nothing" {
	"$GEN" 5000 | "$W" -q serve -d "$D" --max-segment-size 64k --keep-segments 1
	"$W" -q consumers -d "$D" add held
	c=$(cursor_of held)
	[ "$c" -gt 0 ]
	"$GEN" 60000 | "$W" -q serve -d "$D" --max-segment-size 64k --keep-segments 1 --buffer-points 2000
	[ "$(ls "$D/wal" | wc -l)" -gt 10 ]
	# every LSN above the cursor is still in the WAL
	[ "$(first_lsn)" -le $((c + 1)) ]
	"$W" verify -d "$D"
	"$W" -q consumers -d "$D" drop held
	"$GEN" 10 | "$W" -q serve -d "$D" --max-segment-size 64k --keep-segments 1
	[ "$(first_lsn)" -gt $((c + 1)) ]
	[ "$(ls "$D/wal" | wc -l)" -le 2 ]
}

@test "compact keeps what a live consumer has not passed" {
	"$GEN" 40000 | "$W" -q serve -d "$D" --max-segment-size 64k --keep-segments 100 --buffer-points 2000
	"$W" -q consumers -d "$D" add held --from 20
	run "$W" compact -d "$D" --keep 1 --format json
	[ "$status" -eq 0 ]
	# nothing holding LSN 20 or later goes
	jq -e '[.actions[] | select(.op == "remove") | .last_lsn] | length > 0 and all(. < 20)' <<< "$output"
	"$W" -q compact -d "$D" --keep 1 --apply
	[ "$(first_lsn)" -le 20 ]
	"$W" -q consumers -d "$D" drop held
	"$W" -q compact -d "$D" --keep 1 --apply
	[ "$(first_lsn)" -gt 20 ]
}

@test "a consumer past --max-consumer-lag is marked lost, logged and counted; serve goes on and reclaims" {
	"$GEN" 2000 | "$W" -q serve -d "$D" --max-segment-size 64k --keep-segments 1
	"$W" -q consumers -d "$D" add slow
	"$W" -q consumers -d "$D" add fast
	c=$(cursor_of slow)
	"$GEN" 60000 > "$T/in.lp"
	# fast keeps up: a ship follows serve
	"$WALCTL_REAL" -q ship -d "$D" --consumer fast --batch-interval 50ms --exec 'cat > /dev/null' &
	ship=$!
	run --separate-stderr "$W" serve -d "$D" --max-segment-size 64k --keep-segments 1 --buffer-points 2000 \
		--max-consumer-lag 1M --metrics-file "$T/m.prom" < <(for i in $(seq 0 59); do
			tail -n +$((i * 1000 + 1)) "$T/in.lp" | head -n 1000; sleep 0.05; done)
	kill -TERM "$ship"
	wait "$ship"
	[ "$status" -eq 0 ]
	grep -q "level=\"warn\" msg=\"consumer lost\" consumer=\"slow\" cursor_lsn=\"$c\" lag_bytes=\"[0-9]*\" max_consumer_lag=\"1048576\"" <<< "$stderr"
	[ "$(grep -c 'msg="consumer lost"' <<< "$stderr")" -eq 1 ]
	grep -q '^walctl_consumers_lost_total{.*} 1$' "$T/m.prom"
	[ "$(state_of slow)" = lost ]
	[ "$(state_of fast)" = live ]
	"$W" consumers -d "$D" list --format json | jq -e '.consumers[] | select(.name == "slow") | .reason | test("past the limit of 1048576")'
	# reclamation went on past the lost consumer's cursor
	[ "$(first_lsn)" -gt $((c + 1)) ]
	# verify names it, as a notice: the WAL is clean
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 0 ]
	[[ "$stderr" == "walctl verify: consumer 'slow' is lost at cursor LSN $c ("*"past the limit of 1048576) [notice]; next: 'walctl consumers -d $D drop slow', then add it again and deliver from storage" ]]
	"$W" verify -d "$D" --format json | jq -e --argjson c "$c" '.exit == 0 and .lost_consumers == [{"name": "slow", "cursor_lsn": $c, "reason": .lost_consumers[0].reason}]'
}

@test "serve: --max-consumer-lag takes a size" {
	run -16 "$W" serve -d "$D" --max-consumer-lag 0 < /dev/null
	run -16 "$W" serve -d "$D" --max-consumer-lag lots < /dev/null
}

@test "a power cut while a cursor moves leaves an older cursor or the newest one, never a torn file" {
	SIM=$B/tests/tools/crashsim.so
	[ -f "$SIM" ]
	export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:verify_asan_link_order=0
	# ten entries and the CLOSE: the cursor moves to 4 within the WAL
	"$GEN" 100 | "$W" -q write -d "$T/base" --batch 10
	"$W" -q consumers -d "$T/base" add c --from-start
	sim_prep
	CRASHSIM_ROOT=$D CRASHSIM_LOG=$T/journal LD_PRELOAD=$SIM "$B/tests/tools/advance" "$D" c 4
	total=$(python3 "$ROOT/tests/tools/crashsim.py" --journal "$T/journal" --out "$T/full" --seed 0)
	[ "$total" -ge 16 ] # four rewrites of create, write, sync, rename, directory sync
	states=0
	for k in $(seq 1 "$total"); do
		sim_prep
		{ CRASHSIM_ROOT=$D CRASHSIM_LOG=$T/journal CRASHSIM_AT=$k LD_PRELOAD=$SIM \
			"$B/tests/tools/advance" "$D" c 4; } 2> /dev/null || true
		# the cursors whose rename a directory sync made durable before K
		done_before=$(grep -a -c '^DIRSYNC consumers$' "$T/journal" || true)
		for seed in 1 2 3 4; do
			rm -rf "$T/state"
			python3 "$ROOT/tests/tools/crashsim.py" --journal "$T/journal" --out "$T/state" --seed "$seed" \
				--pre "$T/pre" --inodes "$T/inodes" > /dev/null
			run --separate-stderr "$W" consumers -d "$T/state" list --format json
			[ "$status" -eq 0 ] || { echo "K=$k seed=$seed: $stderr"; false; }
			lsn=$(jq -r '.consumers[0].cursor_lsn' <<< "$output")
			[ "$lsn" -ge "$done_before" ] && [ "$lsn" -le 4 ] ||
				{ echo "K=$k seed=$seed: cursor $lsn, with $done_before durable before the cut"; false; }
			states=$((states + 1))
		done
	done
	echo "# $states power-cut states over $total changes: every cursor whole, none older than the last synced" >&3
}

@test "compact: a consumer past --max-consumer-lag holds nothing back; the plan says so, applied it marks it lost" {
	"$GEN" 40000 | "$W" -q serve -d "$D" --max-segment-size 64k --keep-segments 100 --buffer-points 2000
	"$W" -q consumers -d "$D" add old --from-start
	run "$W" compact -d "$D" --keep 1 --max-consumer-lag 100k
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "compact: consumer 'old' would be marked lost: "*" bytes of WAL after its cursor LSN 0, past the limit of 102400" ]]
	[[ "$output" == *"remove segment"* ]]
	[ "$(state_of old)" = live ]
	"$W" compact -d "$D" --keep 1 --max-consumer-lag 100k --format json |
		jq -e '.consumers_lost[0].name == "old" and .consumers_lost[0].limit_bytes == 102400 and (.actions | length) > 0'
	# the default limit, 1G, is far away: it holds everything back
	run "$W" compact -d "$D" --keep 1
	[ "$output" = "compact: nothing to do" ]
	"$W" -q compact -d "$D" --keep 1 --max-consumer-lag 100k --apply
	[ "$(state_of old)" = lost ]
	[ "$(ls "$D/wal" | wc -l)" -le 2 ]
	"$W" consumers -d "$D" list --format json | jq -e '.consumers[0].reason | test("past the limit of 102400 \\(compact\\)")'
}

# put_cursor NAME TEXT: a cursor file as an editor or a bad copy leaves it
put_cursor() { printf 'walctl-consumer 1\n%s\nstate=live\n' "$2" > "$D/consumers/$1"; }

@test "a cursor that is not a plain decimal LSN is damage in its file: verify, ship and consumers list say so" {
	"$GEN" 1000 | "$W" -q write -d "$D" --batch 100
	mkdir -p "$D/consumers"
	for bad in 'lsn=-1' 'lsn=+5' 'lsn= 5' 'lsn=5 ' 'lsn=0x5' 'lsn=' 'lsn=18446744073709551616'; do
		rm -f "$D"/consumers/*
		put_cursor c "$bad"
		run --separate-stderr "$W" verify -d "$D"
		[ "$status" -eq 4 ] || { echo "$bad: verify exit $status"; false; }
		[[ "$stderr" == *"consumers/c': bad cursor '$bad': not a plain decimal LSN [damage]"* ]]
		run --separate-stderr "$W" verify -d "$D" --format json
		[ "$status" -eq 4 ]
		jq -e '.status == "damaged" and (.findings[] | select(.kind == "bad-cursor") | .segment == "consumers/c")' <<< "$output"
		run --separate-stderr "$W" ship -d "$D" --consumer c --once --exec 'cat > /dev/null'
		[ "$status" -eq 4 ] || { echo "$bad: ship exit $status"; false; }
		[[ "$stderr" == *"bad cursor '$bad': not a plain decimal LSN; nothing is shipped"* ]]
		run --separate-stderr "$W" consumers -d "$D" list
		[ "$status" -eq 4 ] || { echo "$bad: list exit $status"; false; }
		[[ "$stderr" == *"bad cursor '$bad'"* ]]
	done
	# the largest LSN there is parses (and lies past the WAL's end)
	put_cursor c 'lsn=18446744073709551615'
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"cursor LSN 18446744073709551615 lies past the WAL's end"* ]]
}

@test "a cursor past the WAL's end is damage in its file; at the end or below it is not (LSN boundary)" {
	# 10 entries of 100 points and the CLOSE: the WAL ends at LSN 11
	"$GEN" 1000 | "$W" -q write -d "$D" --batch 100
	end=$("$W" dump "$D/wal" --format jsonl | tail -n 1 | jq .lsn)
	[ "$end" -eq 11 ]
	mkdir -p "$D/consumers"
	for at in $((end - 1)) "$end"; do
		put_cursor c "lsn=$at"
		run "$W" verify -d "$D"
		[ "$status" -eq 0 ] || { echo "cursor $at: verify exit $status"; false; }
		run "$W" consumers -d "$D" list
		[ "$status" -eq 0 ]
		run "$W" ship -d "$D" --consumer c --once --exec 'cat > /dev/null'
		[ "$status" -eq 0 ] || { echo "cursor $at: ship exit $status"; false; }
	done
	put_cursor c "lsn=$((end + 1))"
	words="consumer 'c' (file 'consumers/c'): cursor LSN $((end + 1)) lies past the WAL's end at LSN $end: LSN $((end + 1))-$((end + 1)), which it says were delivered, are not in the WAL"
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"$words [damage]"* ]]
	run --separate-stderr "$W" verify -d "$D" --format json
	jq -e --argjson e "$end" '.findings[] | select(.kind == "bad-cursor") | .first_lsn == $e + 1 and .last_lsn == $e + 1' <<< "$output"
	# and the WAL, read against the cursor, lost its end
	jq -e --argjson e "$end" '.findings[] | select(.kind == "missing-end") | .first_lsn == $e + 1 and .last_lsn == $e + 1' <<< "$output"
	run --separate-stderr "$W" ship -d "$D" --consumer c --once --exec 'cat > /dev/null'
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"$words; nothing is shipped"* ]]
	run --separate-stderr "$W" consumers -d "$D" list
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"$words"* ]]
}
