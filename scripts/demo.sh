#!/bin/bash
# demo.sh - make demo: what walctl is for, end to end, in under a minute.
#
# Points go through 'walctl serve --ack'; serve is killed mid-stream and
# the power cut that follows is simulated (tests/tools/crashsim.so journals
# every change serve makes, tests/tools/crashsim.py builds what a power cut
# at that instant could leave on disk).  verify tells the torn tail from
# damage; a bit flipped in a sealed segment is found, salvaged and the
# salvage undone.  Every claim is checked: the demo exits non-zero if an
# acknowledged point is missing or a step does not end as it says.
set -euo pipefail
W=${WALCTL:?}
B=${BUILD:?}
N=${DEMO_POINTS:-200000}
dir=$(realpath -m "${DEMO_DIR:-./walctl-demo}")
crashsim=$(realpath "$(dirname "$0")/../tests/tools/crashsim.py")
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
t0=$(date +%s.%N)

step() { printf '\n== %s\n' "$1"; }
say() { printf '   %s\n' "$*"; }
fail() {
	printf '\nDEMO FAILED: %s\n' "$*" >&2
	exit 1
}
# run CMD...: show it, run it, show its output indented; its status in $rc
run() {
	printf '$ %s\n' "$*"
	set +e
	"$@" > out 2>&1
	rc=$?
	set -e
	sed 's/^/   /' out
}
# The first $1 points of the input, as line protocol, are what data/ holds
# first: storage, then the WAL after the checkpoint, in LSN order.
acked_all_there() {
	local acked=$1 d=$2
	"$W" dump -d "$d" --format lp 2> /dev/null | head -n "$acked" > got.lp || true
	head -n "$acked" points.lp | cmp -s - got.lp
}

"$W" bench --emit "$N" > points.lp

step "1. ingest: $N points through walctl serve --ack; SIGKILL mid-stream, then a power cut"
say "serve acknowledges 'ack LSN POINTS' only once those points are synced."
say "crashsim.so journals every change serve makes to the directory; serve runs once"
say "whole to count them, then again and is killed (SIGKILL) before change K of that count."
sim() {
	CRASHSIM_ROOT=$dir/live CRASHSIM_LOG=$dir/journal CRASHSIM_AT=$1 LD_PRELOAD=$B/tests/tools/crashsim.so \
		"$W" serve -d "$dir/live" --ack --max-segment-size 4M --keep-segments 100 < points.lp > acks 2> serve.log
}
sim 0 || fail "serve failed: $(tail -n 1 serve.log)"
total=$(python3 "$crashsim" --journal journal --out full --seed 0)
rm -rf live full
# Killed before a sync, the write it would have made durable is at the
# mercy of the cut; killed after one, every state is clean.  From change
# DEMO_CUT percent of the way on (60 unless told), the first instant and
# state that tear the tail.
cut=${DEMO_CUT:-60}
torn=
# (past the last change, on from the first: forty instants in all)
from=$((total * cut / 100))
for i in $(seq 0 39); do
	k=$(((from + i) % (total - 1) + 1))
	rm -rf live journal
	set +e
	(sim "$k") 2> /dev/null # the shell's "Killed"
	killed=$?
	set -e
	# a run may make fewer changes than the first did (syncs group
	# differently): one that ended before change K is passed over
	[ "$killed" -ne 0 ] || continue
	[ "$killed" -eq 137 ] || fail "serve was not killed at change $k (exit $killed)"
	for seed in $(seq 1 8); do
		rm -rf data
		python3 "$crashsim" --journal journal --out data --seed "$seed" > /dev/null
		set +e
		"$W" -q verify -d data 2> /dev/null
		v=$?
		set -e
		[ "$v" -eq 0 ] || [ "$v" -eq 2 ] || fail "power-cut state $k/$seed: verify exit $v: acknowledged data damaged"
		if [ "$v" -eq 2 ]; then
			torn=$seed
			break 2
		fi
	done
done
[ -n "$torn" ] || fail "no power-cut state tore the tail"
acked=$(grep -E '^ack [0-9]+ [0-9]+$' acks | tail -n 1 | cut -d' ' -f3 || true)
say "killed before change $k of $total: ${acked:=0} points acknowledged ($(tail -n 1 acks))."
say "The power cut: each page written since its file's last sync is kept, dropped, zeroed"
say "or garbled at random (crashsim.py, after SQLite's test6.c); the first state that tore"
say "the tail is the one shown (state $torn)."

step "2. verify: the torn tail is harmless (exit 2); no acknowledged point is lost"
run "$W" verify -d data
[ "$rc" -eq 2 ] || fail "verify exit $rc, want 2"
acked_all_there "$acked" data || fail "acknowledged points are missing after the power cut"
say "check: the $acked acknowledged points are all there, in order."

step "3. restart: serve cuts the torn tail (kept in quarantine/) and replays; the producer sends again"
say "what was not acknowledged (points $((acked + 1)) to $N); verify is clean"
tail -n +$((acked + 1)) points.lp > rest.lp
run "$W" serve -d data --max-segment-size 4M --keep-segments 100 < rest.lp
[ "$rc" -eq 0 ] || fail "serve startup exit $rc"
run "$W" verify -d data
[ "$rc" -eq 0 ] || fail "verify after startup exit $rc"
acked_all_there "$acked" data || fail "acknowledged points are missing after startup"
say "check: the $acked acknowledged points are all there."

step "4. a bit flips in a sealed segment, in a checkpointed entry: damage (exit 4)"
# the oldest segment: sealed, as every one but the newest is
[ "$(ls data/wal | wc -l)" -ge 2 ] || fail "the WAL has a single segment: nothing is sealed"
seg=$(ls data/wal | head -n 1)
# the 3rd POINTS entry of the first segment: 10 bytes into its payload
# (a frame header is 40 bytes, walctl-format(5))
off=$("$W" dump "data/wal/$seg" --format jsonl | jq -r 'select(.type == "points") | .offset' | sed -n 3p)
lsn=$("$W" dump "data/wal/$seg" --format jsonl | jq -r 'select(.type == "points") | .lsn' | sed -n 3p)
at=$((off + 40 + 10))
say "flip bit 3 of byte $at of $seg (LSN $lsn)"
byte=$(od -An -tu1 -j "$at" -N1 "data/wal/$seg" | tr -d ' ')
printf "$(printf '\\%03o' $((byte ^ 8)))" | dd of="data/wal/$seg" bs=1 seek="$at" conv=notrunc status=none
cp -a data before-repair
run "$W" verify -d data
[ "$rc" -eq 4 ] || fail "verify exit $rc, want 4"
grep -q "segment '$seg' offset $off: .*LSN $lsn" out || fail "verify did not name segment, offset and LSN"
say "check: verify names segment $seg, offset $off, LSN $lsn."

step "5. the salvage plan: what a repair would keep and give up; nothing is done yet"
run "$W" recover -d data --mode salvage
[ "$rc" -eq 4 ] || fail "recover plan exit $rc, want 4"
diff -r before-repair data > /dev/null || fail "planning changed the directory"

step "6. apply: the damaged bytes go to quarantine/, the rest is kept; verify is clean"
run "$W" recover -d data --mode salvage --apply
[ "$rc" -eq 1 ] || fail "recover --apply exit $rc, want 1"
stamp=$(sed -n 's/.*undo: walctl recover --undo \([^ ]*\) .*/\1/p' out)
[ -n "$stamp" ] || fail "no quarantine stamp in the output"
run "$W" verify -d data
[ "$rc" -eq 0 ] || fail "verify after salvage exit $rc"
acked_all_there "$acked" data || fail "acknowledged points are missing after the salvage"
say "check: the $acked acknowledged points are all there (storage held the damaged entry's)."

step "7. undo: the directory is back, byte for byte, as it was before the repair"
run "$W" recover -d data --undo "$stamp" --apply
[ "$rc" -eq 0 ] || fail "undo exit $rc"
diff -r -x quarantine -x LOCK before-repair data > /dev/null || fail "undo did not restore the directory"
run "$W" verify -d data
[ "$rc" -eq 4 ] || fail "verify after undo exit $rc, want 4 (the flipped bit is back)"
say "check: every file (but LOCK, the last holder's pid, and quarantine/) is identical to the"
say "copy taken before the repair."

t1=$(date +%s.%N)
step "done in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s: every check held"
rm -f points.lp rest.lp got.lp journal
