#!/usr/bin/env bats
# walctl serve: end to end, kill drills, faults, shutdown, observability.
load helpers

export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0

last_ack() { grep -E '^ack [0-9]+ [0-9]+$' "$1" | tail -n 1 | cut -d' ' -f3; }

# Every acknowledged point present exactly once, nothing partial.  Each
# check returns on its own: callers use "check_drill ... || ...", where
# set -e does not apply.
check_drill() {
	local dir=$1 acked=$2
	"$W" dump -d "$dir" --format lp > "$T/got.lp" || { echo "dump of $dir failed"; return 1; }
	awk '!/^drill,host=h[0-9] seq=[0-9]+i,a=[0-9]+,b=[0-9.e+]+ [0-9]+$/ { print "partial: " $0; bad = 1 } END { exit bad }' \
		"$T/got.lp" || return 1
	sed 's/.*seq=\([0-9]*\)i.*/\1/' "$T/got.lp" | sort -n > "$T/seqs"
	[ -z "$(uniq -d "$T/seqs")" ] || { echo "duplicates: $(uniq -d "$T/seqs" | head -3)"; return 1; }
	[ "$acked" -eq 0 ] || [ "$(head -n "$acked" "$T/seqs" | tail -n 1)" = "$acked" ] ||
		{ echo "acked $acked, but the ${acked}th point stored is $(head -n "$acked" "$T/seqs" | tail -n 1)"; return 1; }
	[ "$(head -n "$acked" "$T/seqs" | awk '$1 != NR' | head -n 1)" = "" ] || { echo "an acked point is missing"; return 1; }
}

@test "end to end: 1,000,000 points through serve; storage plus WAL dump as the input exactly; verify 0" {
	"$W" bench --emit 1000000 > "$T/in.lp"
	"$W" serve -d "$D" --ack < "$T/in.lp" > "$T/acks" 2> "$T/log"
	[ "$(last_ack "$T/acks")" = 1000000 ]
	grep -q 'msg="stopped" points="1000000" rejected="0"' "$T/log"
	[ -n "$(ls "$D"/data/default/*.part)" ]
	"$W" dump -d "$D" --format lp | cmp - "$T/in.lp"
	run "$W" verify --deep -d "$D"
	[ "$status" -eq 0 ]
}

@test "kill drill: serve --ack killed after a random ack loses no acknowledged point (${DRILL_TRIALS:-30} trials)" {
	trials=${DRILL_TRIALS:-30}
	total=150000
	modes=("--sync fdatasync" "--sync fsync" "--sync fdatasync --sync-interval 5ms")
	numbered "$total" > "$T/in.lp"
	split -l 15000 -d "$T/in.lp" "$T/chunk."
	live=0 midway=0
	RANDOM=${DRILL_SEED:-1207} # the kill points are drawn from this seed (rerun one with DRILL_SEED)
	echo "# kill points drawn with DRILL_SEED=${DRILL_SEED:-1207}" >&3
	for t in $(seq 1 "$trials"); do
		rm -rf "$D"
		mode=${modes[$((t % 3))]}
		target=$(( (RANDOM * 32768 + RANDOM) % (total * 4 / 5) + 1 ))
		# The input arrives in chunks and stdin stays open, so serve is
		# alive, mid-stream or waiting for more, when it is killed.
		# Rotation and reclamation are active: small segments, frequent flushes.
		rm -f "$T/feed"
		mkfifo "$T/feed"
		( for c in "$T"/chunk.*; do cat "$c" || exit 0; sleep 0.02; done; exec sleep 60 ) > "$T/feed" 3>&- &
		feeder=$!
		# emptied here, not by serve's redirections: those wait until the
		# feeder opens the FIFO, and until then the poll below would read
		# the acks of the trial before
		: > "$T/acks"
		: > "$T/log"
		# shellcheck disable=SC2086
		"$W" serve -d "$D" --ack $mode --max-segment-size 256k --keep-segments 1 --buffer-points 2000 \
			--flush-interval 20ms < "$T/feed" > "$T/acks" 2> "$T/log" 3>&- &
		pid=$!
		# a deadline, not a count of polls: on a loaded machine serve may
		# take long to reach its first ack, and a kill before it has
		# created its WAL would test nothing
		deadline=$((SECONDS + 120))
		while [ "$SECONDS" -lt "$deadline" ]; do
			got=$(last_ack "$T/acks")
			[ "${got:-0}" -ge "$target" ] && break
			kill -0 "$pid" 2> /dev/null || break
			sleep 0.005
		done
		kill -9 "$pid" 2> /dev/null
		st=0
		wait "$pid" 2> /dev/null || st=$?
		kill "$feeder" 2> /dev/null || true # it may have died of SIGPIPE with serve
		wait "$feeder" 2> /dev/null || true
		[ "$st" -eq 137 ] && live=$((live + 1))
		acked=$(last_ack "$T/acks")
		acked=${acked:-0}
		[ "$acked" -lt "$total" ] && midway=$((midway + 1))
		run "$W" -q recover -d "$D" --apply
		[ "$status" -eq 0 ] || [ "$status" -eq 1 ] || { echo "trial $t ($mode): serve status $st, recover exit $status: $output"; cat "$T/log"; false; }
		check_drill "$D" "$acked" || { echo "trial $t ($mode): acked $acked"; false; }
		run "$W" verify -d "$D"
		[ "$status" -eq 0 ] || { echo "trial $t: verify $status: $output"; false; }
	done
	echo "# $trials kill drills: $live killed a live serve, $midway before every point was acked; no acknowledged point lost" >&3
	[ "$live" -eq "$trials" ] || { echo "only $live of $trials kills hit a live serve"; false; }
	[ "$midway" -ge $((trials / 2)) ] || { echo "only $midway of $trials kills came before the last ack"; false; }
}

@test "a killed serve restarts, replays what was not checkpointed, and keeps every acked point" {
	numbered 300000 > "$T/in.lp"
	mkfifo "$T/feed"
	( cat "$T/in.lp"; exec sleep 60 ) > "$T/feed" 3>&- &
	feeder=$!
	# every point acked, none flushed: the buffer holds them all
	"$W" serve -d "$D" --ack --buffer-points 1000000 --flush-interval 1h < "$T/feed" > "$T/acks" 2> /dev/null 3>&- &
	pid=$!
	for _ in $(seq 1 2000); do
		[ "$(last_ack "$T/acks")" = 300000 ] && break
		sleep 0.005
	done
	kill -9 "$pid"
	st=0
	wait "$pid" 2> /dev/null || st=$?
	kill "$feeder" 2> /dev/null || true # it may have died of SIGPIPE with serve
	[ "$st" -eq 137 ]
	acked=$(last_ack "$T/acks")
	[ "$acked" = 300000 ]
	"$W" serve -d "$D" < /dev/null 2> "$T/log"
	grep -q 'msg="started"' "$T/log"
	grep -q 'msg="replaying entries after the last checkpoint" entries="[1-9]' "$T/log"
	check_drill "$D" "$acked"
	[ "$(wc -l < "$T/got.lp")" -eq 300000 ]
	# all of it now in storage, checkpointed
	[ -n "$(ls "$D"/data/default/*.part)" ]
	run --separate-stderr "$W" recover -d "$D" --emit lp
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
}

@test "a failed fdatasync: no ack after it, exit 8, acked points intact" {
	need strace
	numbered 200000 > "$T/in.lp"
	run --separate-stderr strace -f -qq -o "$T/trace" -e trace=fdatasync -e inject=fdatasync:error=EIO:when=6 \
		"$W" serve -d "$D" --ack --buffer-points 1000000 < "$T/in.lp"
	[ "$status" -eq 8 ]
	[[ "$stderr" == *"sync failed; no further acknowledgement"* ]]
	acks=$(grep -c '^ack ' <<< "$output" || true)
	[ "$acks" -le 5 ]
	acked=$(grep -E '^ack [0-9]+ [0-9]+$' <<< "$output" | tail -n 1 | cut -d' ' -f3)
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ] || [ "$status" -eq 2 ]
	"$W" -q recover -d "$D" --apply || true
	check_drill "$D" "${acked:-0}"
}

@test "a full disk: exit 8, acked points intact, verify shows at most a torn tail" {
	numbered 200000 > "$T/in.lp"
	run --separate-stderr bash -c "ulimit -f 3000; exec '$W' serve -d '$D' --ack --buffer-points 1000000 < '$T/in.lp'"
	[ "$status" -eq 8 ]
	[[ "$stderr" == *'level="error"'* ]]
	acked=$(grep -E '^ack [0-9]+ [0-9]+$' <<< "$output" | tail -n 1 | cut -d' ' -f3)
	[ "${acked:-0}" -lt 200000 ]
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ] || [ "$status" -eq 2 ]
	"$W" -q recover -d "$D" --apply || true
	check_drill "$D" "${acked:-0}"
}

@test "two serve on one directory: the second exits 8 at once, naming the first" {
	(sleep 2; echo 'm v=1') | "$W" -q serve -d "$D" &
	first=$!
	for _ in $(seq 50); do [ -s "$D/LOCK" ] && break; sleep 0.1; done
	run --separate-stderr "$W" serve -d "$D" <<< 'm v=2'
	wait "$first"
	[ "$status" -eq 8 ]
	[[ "$stderr" == *"locked by pid $first"* ]]
}

@test "SIGTERM: stop reading, flush, checkpoint, exit 0; SIGUSR1 logs a status line; metrics are written" {
	mkfifo "$T/in"
	"$W" serve -d "$D" --ack --metrics-file "$T/walctl.prom" < "$T/in" > "$T/acks" 2> "$T/log" &
	pid=$!
	exec 7> "$T/in"
	numbered 5000 >&7
	for _ in $(seq 50); do [ "$(last_ack "$T/acks")" = 5000 ] && break; sleep 0.1; done
	kill -USR1 "$pid"
	sleep 1.2
	kill -TERM "$pid"
	wait "$pid"
	exec 7>&-
	grep -q 'msg="status" points="5000"' "$T/log"
	grep -q 'msg="stopped" points="5000"' "$T/log"
	[ "$("$W" dump -d "$D" --format lp | wc -l)" -eq 5000 ]
	dir=$(realpath "$D")
	grep -qx "walctl_points_accepted_total{dir=\"$dir\"} 5000" "$T/walctl.prom"
	grep -q "^walctl_sync_duration_seconds_bucket{dir=\"$dir\",le=\"+Inf\"}" "$T/walctl.prom"
	grep -qx "walctl_build_info{dir=\"$dir\",version=\"$("$W" --version | cut -d' ' -f2)\"} 1" "$T/walctl.prom"
	for m in entries_total appended_bytes_total syncs_total rotations_total segments segments_reclaimed_total \
		flushes_total checkpoints_total points_rejected_total durable_lsn checkpoint_lsn not_checkpointed_bytes \
		recovery_seconds start_time_seconds; do
		grep -q "^walctl_$m{dir=\"$dir\"} [0-9]" "$T/walctl.prom" || { echo "no $m"; false; }
	done
	# data entries and checkpoints apart; one segment
	grep -qx "walctl_segments{dir=\"$dir\"} 1" "$T/walctl.prom"
	[ "$(sed -n 's/^walctl_entries_total{.*} //p' "$T/walctl.prom")" -eq "$("$W" dump "$D/wal" --type points --format jsonl | wc -l)" ]
	[ "$(sed -n 's/^walctl_checkpoints_total{.*} //p' "$T/walctl.prom")" -eq "$("$W" dump "$D/wal" --type checkpoint --format jsonl | wc -l)" ]
	# nothing left to checkpoint after a clean shutdown
	run "$W" recover -d "$D"
	[[ "$output" == *"nothing to do"* ]]
}

@test "bad lines: logged with their line numbers and skipped (exit 4); --strict stops at the first" {
	printf 'm v=1 1\nbad\nm v=2 2\n' > "$T/in.lp"
	run --separate-stderr "$W" serve -d "$D" < "$T/in.lp"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *'level="warn" msg="bad line" line="2"'* ]]
	[ "$("$W" dump -d "$D" --format lp)" = "$(printf 'm v=1 1\nm v=2 2')" ]
	run --separate-stderr "$W" serve -d "$T/strict" --strict < "$T/in.lp"
	[ "$status" -eq 4 ]
	[ "$("$W" dump -d "$T/strict" --format lp)" = "m v=1 1" ]
}

@test "startup cuts a torn tail (logged) and refuses damage to durable data (4, naming salvage)" {
	printf 'm v=1 1\n' | "$W" -q serve -d "$D"
	"$WALFIX" garbage "$D/wal/0000000000000001.wal" 77 5
	run --separate-stderr "$W" serve -d "$D" <<< 'm v=2 2'
	[ "$status" -eq 0 ]
	[[ "$stderr" == *'msg="cut a torn tail"'* ]]
	cp -r "$ROOT/testdata/payload-flip-sealed" "$T/bad"
	run --separate-stderr "$W" serve -d "$T/bad" <<< 'm v=3 3'
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"recover --mode salvage"* ]]
}

@test "walctl bench measures every mode, the engine in-process and the one-at-a-time latency (small run)" {
	run --separate-stderr "$W" bench --points 20000 --latency 50 --format json
	[ "$status" -eq 0 ]
	echo "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["schema"] == "walctl-bench/2" and d["points"] == 20000
assert [m["sync"] for m in d["modes"]] == ["fsync", "fdatasync", "async"]
assert all(m["points_per_second"] > 0 and m["syncs"] > 0 for m in d["modes"])
assert [m["sync"] for m in d["engine"]] == ["fsync", "fdatasync", "async"]
assert all(m["points_per_second"] > 0 and m["syncs"] > 0 for m in d["engine"])
assert d["one_at_a_time"]["points"] == 50 and d["one_at_a_time"]["ratio"] > 0'
}

@test "partitions above the checkpoint that the WAL does not hold are never removed, by a replay or its undo" {
	numbered 6000 > "$T/in.lp"
	"$W" -q write -d "$D" --batch 1000 "$T/in.lp"
	"$W" -q recover -d "$D" --apply
	(cd "$D/data" && find . -name '*.part' | sort | xargs sha256sum) > "$T/parts"
	[ "$(wc -l < "$T/parts")" -ge 1 ]
	cp -r "$D" "$T/empty-wal"
	# the only segment, checkpoint and all, becomes unreadable; salvage
	"$WALFIX" header "$D/wal/0000000000000001.wal" magic 0x58
	run "$W" -q recover -d "$D" --mode salvage --apply
	[ "$status" -eq 1 ]
	# their CHECKPOINT is gone with the segment: a new one names them, so
	# that every stored point is read at once, and verify is clean
	[ "$("$W" dump -d "$D" --format lp 2> /dev/null | wc -l)" -eq 6000 ]
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
	# a replay beside them, and its undo, keep them
	cp -r "$D" "$T/salvaged"
	echo 'later v=2i 2' | "$W" -q write -d "$T/salvaged"
	run "$W" -q recover -d "$T/salvaged" --apply
	[ "$status" -eq 0 ]
	run "$W" -q recover -d "$T/salvaged" --undo "$(ls "$T/salvaged/quarantine" | tail -1)" --apply
	[ "$status" -eq 0 ]
	(cd "$T/salvaged/data" && sha256sum -c --quiet "$T/parts")
	# the salvage named them in a new CHECKPOINT: storage stays readable,
	# and the new point comes after every LSN they hold
	run --separate-stderr "$W" serve -d "$D" <<< 'after v=1i 1'
	[ "$status" -eq 0 ]
	(cd "$D/data" && sha256sum -c --quiet "$T/parts")
	[ "$("$W" dump -d "$D" --format lp 2> /dev/null | wc -l)" -eq 6001 ]
	after_lsn=$("$W" dump -d "$D" --format jsonl 2> /dev/null | jq -r 'select(.points != null and .points[0].measurement == "after") | .lsn')
	[ "$after_lsn" -gt 6 ]
	# the same with an empty wal/: a writer refuses to start a WAL that
	# would hand out their LSNs again; a salvage names them
	rm "$T/empty-wal/wal/"*
	run --separate-stderr "$W" serve -d "$T/empty-wal" <<< 'after v=1i 1'
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"the WAL has no segment but partition 'data/default/"*"shows LSN 6: LSN 1-6 are missing from the WAL"* ]]
	run "$W" recover -d "$T/empty-wal" --mode salvage --apply
	[ "$status" -eq 1 ]
	run --separate-stderr "$W" serve -d "$T/empty-wal" <<< 'after v=1i 1'
	[ "$status" -eq 0 ]
	(cd "$T/empty-wal/data" && sha256sum -c --quiet "$T/parts")
	[ "$("$W" dump -d "$T/empty-wal" --format lp 2> /dev/null | wc -l)" -eq 6001 ]
}

@test "readers of a live serve survive reclamation: dump --follow sees every point once, dump -d never exits 8" {
	numbered 20000 > "$T/in.lp"
	split -l 1000 -d "$T/in.lp" "$T/chunk."
	mkfifo "$T/feed"
	# about a quarter of a segment every 0.1 s: a follower polling every 20 ms
	# keeps up unless it is held off the CPU for most of a second (see
	# walctl-dump(1) on a follower that falls that far behind)
	( sleep 0.3; for c in "$T"/chunk.*; do cat "$c"; sleep 0.1; done ) > "$T/feed" 3>&- &
	"$W" serve -d "$D" --ack --max-segment-size 128k --keep-segments 1 --buffer-points 1500 \
		--flush-interval 10ms < "$T/feed" > "$T/acks" 2> "$T/log" 3>&- &
	pid=$!
	for _ in $(seq 100); do [ -d "$D/wal" ] && [ -n "$(ls "$D/wal")" ] && break; sleep 0.01; done
	"$W" dump "$D/wal" --follow --format lp > "$T/followed" 2> "$T/follow.err" 3>&- &
	follower=$!
	snapshots=0
	while kill -0 "$pid" 2> /dev/null; do
		run --separate-stderr "$W" dump -d "$D" --format lp
		[ "$status" -eq 0 ] || { echo "dump -d exit $status: $stderr"; false; }
		# a snapshot: the first N points written, each once, in order
		printf '%s\n' "${lines[@]}" | sed -n 's/.*seq=\([0-9]*\)i.*/\1/p' > "$T/seqs"
		[ "$(wc -l < "$T/seqs")" -eq "${#lines[@]}" ]
		[ "${#lines[@]}" -eq 0 ] || seq 1 "${#lines[@]}" | cmp -s - "$T/seqs" ||
			{ echo "dump -d is not the first ${#lines[@]} points"; false; }
		snapshots=$((snapshots + 1))
		sleep 0.05   # leave the follower some CPU
	done
	wait "$pid"
	[ "$(ls "$D/wal" | wc -l)" -le 3 ]   # segments were reclaimed under the readers
	for _ in $(seq 300); do [ "$(wc -l < "$T/followed")" -ge 20000 ] && break; sleep 0.02; done
	kill -INT "$follower"
	wait "$follower" || true
	[ ! -s "$T/follow.err" ] || { cat "$T/follow.err"; false; }
	sed 's/.*seq=\([0-9]*\)i.*/\1/' "$T/followed" | cmp - <(seq 1 20000)
	echo "# $snapshots dump -d snapshots during the run" >&3
	[ "$snapshots" -ge 3 ]
}

@test "a follower held off while serve creates and reclaims segments reads their points from storage, each once" {
	numbered 40000 > "$T/in.lp"
	split -l 2000 -d "$T/in.lp" "$T/chunk."
	mkfifo "$T/feed" "$T/go"
	# the follower reads the first chunk, is stopped until several segments
	# have come and gone, then goes on
	( cat "$T/chunk.00"; cat "$T/go" > /dev/null; for c in "$T"/chunk.*; do
		[ "$c" = "$T/chunk.00" ] || { cat "$c"; sleep 0.05; }; done ) > "$T/feed" 3>&- &
	feeder=$!
	# each chunk is one entry in a segment of its own; a flush takes three
	# (6,000 points), never fewer on a timer: the segment of LSN 2, which the
	# follower has not read, is reclaimed mid-way through partition 1-3
	"$W" serve -v -d "$D" --max-segment-size 16k --keep-segments 1 --buffer-points 5000 \
		--flush-interval 60s < "$T/feed" > /dev/null 2> "$T/log" 3>&- &
	pid=$!
	for _ in $(seq 200); do [ -d "$D/wal" ] && [ -n "$(ls "$D/wal")" ] && break; sleep 0.01; done
	"$W" dump -d "$D" --follow --format lp > "$T/followed" 2> "$T/follow.err" 3>&- &
	follower=$!
	for _ in $(seq 1000); do [ "$(wc -l < "$T/followed")" -ge 2000 ] && break; sleep 0.01; done
	[ "$(wc -l < "$T/followed")" -ge 2000 ] || { cat "$T/log" "$T/follow.err"; ls -l "$D/wal"; false; }
	kill -STOP "$follower"
	listed=$(ls "$D/wal" | wc -l)
	echo go > "$T/go"
	wait "$feeder"
	wait "$pid"
	# while it was stopped, segments it had never seen were written and
	# removed: more were reclaimed than were there when it stopped
	reclaimed=$(grep -o ' reclaimed="[0-9]*"' "$T/log" | tr -dc '0-9\n' | awk '{n += $1} END {print n + 0}')
	echo "# $listed segments when the follower stopped, $reclaimed reclaimed" >&3
	[ "$reclaimed" -gt "$listed" ]
	kill -CONT "$follower"
	for _ in $(seq 500); do [ "$(wc -l < "$T/followed")" -ge 40000 ] && break; sleep 0.02; done
	kill -INT "$follower"
	wait "$follower" || true
	[ ! -s "$T/follow.err" ] || { cat "$T/follow.err"; false; }
	sed 's/.*seq=\([0-9]*\)i.*/\1/' "$T/followed" | cmp - <(seq 1 40000)
	# stored entries name their partition and LSN
	"$W" dump -d "$D" --format jsonl | head -n 1 | jq -e '.source == "storage" and .lsn == 1 and (.partition | test("^default/"))'
}

@test "large reads parsed on two threads: bad lines keep their line numbers, strings with newlines and a late CONTEXT-DATABASE line stay whole" {
	# 3 MiB of points with bad lines early, in the middle and late
	awk 'BEGIN { for (i = 1; i <= 30000; i++) {
		if (i == 7 || i == 15001 || i == 29999) print "bad line " i;
		else printf "m,host=h%05d value=%di,pad=\"%s\" %d\n", i % 100, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i } }' > "$T/in.lp"
	[ "$(stat -c %s "$T/in.lp")" -gt 2000000 ]
	run --separate-stderr "$W" serve -d "$D" < "$T/in.lp"
	[ "$status" -eq 4 ]
	[ "$(grep -c 'msg="bad line"' <<< "$stderr")" -eq 3 ]
	[[ "$stderr" == *'msg="bad line" line="7" '*'msg="bad line" line="15001" '*'msg="bad line" line="29999" '* ]]
	[[ "$stderr" == *'msg="stopped" points="29997" rejected="3" '* ]]
	grep -v '^bad line' "$T/in.lp" | cmp - <("$W" dump -d "$D" --format lp)
	# strings that hold newlines: a split may fall inside one
	awk 'BEGIN { for (i = 1; i <= 40000; i++)
		printf "m,k=v%d s=\"one\ntwo\nthree %d\",n=%di %d\n", i % 7, i, i, i }' > "$T/nl.lp"
	run --separate-stderr "$W" serve -d "$T/nl" < "$T/nl.lp"
	[ "$status" -eq 0 ]
	"$W" dump -d "$T/nl" --format lp | cmp - "$T/nl.lp"
	# a CONTEXT-DATABASE line deep in a large read, indented
	"$GEN" 40000 > "$T/gen.lp"
	{ head -n 19999 "$T/gen.lp"; echo '   # CONTEXT-DATABASE:late'; tail -n +20000 "$T/gen.lp"; } > "$T/ctx.lp"
	run --separate-stderr "$W" serve -d "$T/ctx" < "$T/ctx.lp"
	[ "$status" -eq 0 ]
	"$W" dump -d "$T/ctx" --format jsonl | jq -r 'select(.points) | .db + " " + (.points | length | tostring)' |
		awk '{ n[$1] += $2 } END { for (d in n) print d, n[d] }' | sort > "$T/got"
	printf '%s\n' 'default 19999' 'late 20001' | diff - "$T/got"
	"$W" dump -d "$T/ctx" --format lp | cmp - "$T/gen.lp"
}

@test "serve --ack stops reading at once when the reader of its acks is gone, and exits 8 naming EPIPE" {
	mkfifo "$T/in" "$T/out"
	head -n 3 < "$T/out" > "$T/acks" 3>&- &
	# the input stays open: serve must not wait for its end
	("$GEN" 200000; sleep 60) > "$T/in" 2> /dev/null 3>&- &
	feeder=$!
	run bash -c "timeout 30 '$W' serve -d '$D' --ack < '$T/in' > '$T/out' 2> '$T/err'"
	pkill -P "$feeder" || true
	kill "$feeder" 2> /dev/null || true
	cat "$T/err"
	[ "$status" -eq 8 ]
	[ "$(wc -l < "$T/acks")" -eq 3 ]
	grep -q 'level="error" msg="cannot write acks: stopped reading" error="Broken pipe (EPIPE)"' "$T/err"
	# what it took in is stored and checkpointed; it stopped well before the end
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
	[ "$("$W" dump -d "$D" --format lp | wc -l)" -lt 200000 ]
}

@test "metrics: promtool accepts them; two serve instances share a node_exporter textfile directory, no collision" {
	need promtool
	need prometheus-node-exporter
	need curl
	mkdir "$T/tf"
	"$GEN" 1000 | "$W" -q serve -d "$T/a" --metrics-file "$T/tf/a.prom" --metrics-label instance_name=a
	"$GEN" 2000 | "$W" -q serve -d "$T/b" --metrics-file "$T/tf/b.prom"
	promtool check metrics < "$T/tf/a.prom"
	promtool check metrics < "$T/tf/b.prom"
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	prometheus-node-exporter --web.listen-address="127.0.0.1:$port" --collector.disable-defaults \
		--collector.textfile --collector.textfile.directory="$T/tf" > "$T/foreign-node_exporter.log" 2>&1 3>&- &
	ne=$!
	for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/metrics" > "$T/scrape" && break; sleep 0.1; done
	kill "$ne"
	wait "$ne" || true
	grep -qx 'node_textfile_scrape_error 0' "$T/scrape"
	a=$(realpath "$T/a") b=$(realpath "$T/b")
	grep -qx "walctl_points_accepted_total{dir=\"$a\",instance_name=\"a\"} 1000" "$T/scrape"
	grep -qx "walctl_points_accepted_total{dir=\"$b\"} 2000" "$T/scrape"
	# a label a user gives is checked, and a value escaped
	run "$W" serve -d "$T/c" --metrics-label le=1 < /dev/null
	[ "$status" -eq 16 ]
	printf 'm v=1 1\n' | "$W" -q serve -d "$T/c" --metrics-file "$T/c.prom" --metrics-label 'note=a"b\c'
	grep -q 'note="a\\"b\\\\c"' "$T/c.prom"
	promtool check metrics < "$T/c.prom"
}

@test "logs are logfmt with every value quoted: an input line cannot end a record or forge one; -v times each phase" {
	# a rejected line that would close the reason and add a level and a
	# message, another with an escape sequence and a backslash
	printf 'm v=1 1\nx" level="error" msg="forged\nbad\033[31m\\ 2\n' > "$T/in.lp"
	run --separate-stderr "$W" serve -d "$D" -v < "$T/in.lp"
	[ "$status" -eq 4 ]
	printf '%s\n' "$stderr" > "$T/log"
	python3 "$ROOT/tests/tools/logfmt.py" --quoted "$T/log"
	[ "$(grep -c '^ts=' "$T/log")" -eq "$(printf '%s\n' "$stderr" | wc -l)" ]
	run ! grep -q 'msg="forged' "$T/log"
	[ "$(grep -c 'level="error"' "$T/log")" -eq 0 ]
	grep -q 'msg="bad line" line="2" reason="[^"]*\\"' "$T/log"
	grep -q 'msg="bad line" line="3" reason="[^"]*\\\\x1b' "$T/log"
	# -v: each phase and how long it took
	grep -q 'msg="scanned the WAL" .* seconds="[0-9.]*"' "$T/log"
	grep -q 'msg="flushed" .* store_seconds="[0-9.]*" checkpoint_seconds="[0-9.]*" reclaim_seconds="[0-9.]*"' "$T/log"
}

@test "SIGTERM stops serve at once whatever its --sync-interval: the sync thread does not wait out the interval" {
	mkfifo "$T/in"
	"$WALCTL_REAL" -q serve -d "$D" --ack --sync-interval 30s < "$T/in" > "$T/acks" &
	pid=$!
	exec 8> "$T/in"
	echo 'm v=1i 1' >&8
	for _ in $(seq 50); do [ -s "$T/acks" ] && break; sleep 0.1; done
	echo 'm v=2i 2' >&8
	sleep 0.5
	kill -TERM "$pid"
	# within 10 s, where the syncer asleep for its 30 s interval held it
	for _ in $(seq 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2> /dev/null; then
		kill -9 "$pid"
		exec 8>&-
		echo "serve did not stop within 10 s of SIGTERM"
		false
	fi
	exec 8>&-
	wait "$pid"
	# and what it had, it made durable and acknowledged before it went
	[ "$(tail -n 1 "$T/acks" | cut -d' ' -f3)" -eq 2 ]
	[ "$("$W" dump -d "$D" --format lp | wc -l)" -eq 2 ]
}
