#!/usr/bin/env bats
# Durability, checked from the outside: every walctl command that writes is
# run under strace, and tests/tools/durability.py checks the trace:
#  1. a file walctl wrote is renamed only after a sync of it that began after
#     its last write;
#  2. every create, rename, unlink or mkdir in the data directory is followed
#     by an fsync of its directory before walctl exits with success;
#  3. every "ack LSN POINTS" follows a sync that covered that LSN's frame and
#     the creation of its segment;
#  4. a segment is removed only after the CHECKPOINT covering it is synced;
#  5. a truncated file is synced before a successful exit;
#  6. a partition is removed only after the segments holding its points are
#     synced.
# kill -9 keeps the page cache, so only a check of the calls themselves can
# see a missing sync.
load helpers

# LeakSanitizer cannot run under ptrace.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0

TRACE_SET=openat,creat,write,pwrite64,pwritev,pwritev2,truncate,ftruncate,fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,rmdir,exit_group

# traced CMD...: run walctl CMD under strace into $T/trace; sets $status.
# $SLOW_SYNC=1 makes every fsync and fdatasync take 5 ms more, so that
# appends keep arriving while a sync is in flight, as on a slow disk.
traced() {
	need strace
	local slow=()
	[ -n "${SLOW_SYNC:-}" ] && slow=(-e inject=fsync,fdatasync:delay_exit=5000)
	status=0
	strace -f -qq -y -s 64 -o "$T/trace" -e trace="$TRACE_SET" "${slow[@]}" "$W" "$@" > "$T/out" 2> "$T/err" || status=$?
}

# durable DIR [--acks | --removals-by-request]: the trace keeps the rules
# (rule 3 with --acks).
durable() {
	local dir=$1 args=()
	[ "${2:-}" = --removals-by-request ] && args=(--removals-by-request)
	if [ "${2:-}" = --acks ]; then
		"$W" dump "$dir/wal" --format jsonl | python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    print(json.dumps({k: r[k] for k in ("lsn", "segment", "offset", "length")}))' > "$T/frames.jsonl"
		args=(--acks "$T/frames.jsonl")
	fi
	run python3 "$ROOT/tests/tools/durability.py" "$T/trace" "$dir" "${args[@]}"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"no violation"* ]]
}

@test "write: segments renamed after their sync, every directory change fsynced before exit" {
	"$GEN" 20000 > "$T/in.lp"
	traced write -d "$D" --batch 500 --max-segment-size 256k "$T/in.lp"
	[ "$status" -eq 0 ]
	[ "$(ls "$D/wal" | wc -l)" -gt 3 ]
	durable "$D"
	printf 'a\nb\n' > "$T/raw"
	traced write -d "$D" --input raw --sync fsync "$T/raw"
	[ "$status" -eq 0 ]
	durable "$D"
}

@test "serve, every ack: after a sync that covered its frame, in fdatasync and fsync mode" {
	"$GEN" 60000 > "$T/in.lp"
	for mode in fdatasync fsync; do
		rm -rf "$D"
		SLOW_SYNC=1 traced serve -d "$D" --ack --sync "$mode" --max-segment-size 512k --buffer-points 7000 \
			--flush-interval 10ms --keep-segments 1000 < "$T/in.lp"
		[ "$status" -eq 0 ]
		[ "$(grep -c '^ack ' "$T/out")" -gt 3 ]
		[ "$(ls "$D/wal" | wc -l)" -gt 3 ]
		[ -n "$(ls "$D"/data/default/*.part)" ]
		durable "$D" --acks
	done
}

@test "serve with reclamation and async sync: partitions, checkpoints and removals made durable" {
	"$GEN" 60000 > "$T/in.lp"
	for mode in fdatasync async; do
		rm -rf "$D"
		traced serve -d "$D" --ack --sync "$mode" --max-segment-size 256k --buffer-points 5000 \
			--flush-interval 10ms --keep-segments 1 < "$T/in.lp"
		[ "$status" -eq 0 ]
		grep -q 'unlink' "$T/trace"
		durable "$D"
	done
}

@test "recover --apply: replayed partitions synced before their rename, the quarantine and checkpoint durable" {
	"$GEN" 12000 | "$W" -q write -d "$D" --batch 1000 --max-segment-size 256k
	cp -r "$D" "$T/orig"
	traced recover -d "$D" --apply
	[ "$status" -eq 0 ]
	[ -n "$(ls "$D"/data/default/*.part)" ]
	durable "$D"
	# undo of a replay: partitions removed, segments truncated back
	traced recover -d "$D" --undo "$(ls "$D/quarantine")" --apply
	[ "$status" -eq 0 ]
	durable "$D"
	diff -r "$D/wal" "$T/orig/wal"
	[ -z "$(ls "$D"/data/default/)" ]
	# a salvage with a replay: rewrites, LOSS frames, partitions
	cp -r "$ROOT/testdata/payload-flip-sealed" "$T/bad"
	traced recover -d "$T/bad" --mode salvage --apply
	[ "$status" -eq 1 ]
	durable "$T/bad"
	stamp=$(ls "$T/bad/quarantine")
	traced recover -d "$T/bad" --undo "$stamp" --apply
	[ "$status" -eq 0 ]
	durable "$T/bad"
}

@test "truncate and compact --apply (with --merge): every removal and rewrite durable before exit" {
	cp -r "$ROOT/testdata/torn-tail" "$T/torn"
	traced truncate -d "$T/torn" --torn-tail --apply
	[ "$status" -eq 1 ]
	durable "$T/torn"
	traced truncate -d "$T/torn" --after 30 --apply
	[ "$status" -eq 0 ]
	durable "$T/torn" --removals-by-request
	"$GEN" 20000 > "$T/in.lp"
	"$W" -q write -d "$D" --batch 500 --max-segment-size 128k "$T/in.lp"
	"$W" -q recover -d "$D" --apply
	traced compact -d "$D" --keep 2 --apply
	[ "$status" -eq 0 ]
	grep -q 'unlink' "$T/trace"
	durable "$D"
	"$GEN" 3000 | "$W" -q write -d "$D" --batch 100 --max-segment-size 16k   # small, not checkpointed
	traced compact -d "$D" --keep 1 --merge --max-segment-size 1M --apply
	[ "$status" -eq 0 ]
	grep -q 'op=merge' "$D"/quarantine/*/MANIFEST
	durable "$D"
}

@test "a replay removes a partition of an interrupted flush only once the WAL holding its points is synced" {
	"$GEN" 3000 | "$W" -q write -d "$D" --batch 300 --max-segment-size 64k
	[ "$(ls "$D/wal" | wc -l)" -gt 3 ]
	"$W" -q recover -d "$D" --apply
	part=$(ls "$D/data/default")
	cp "$D/data/default/$part" "$T/saved"
	"$W" -q recover -d "$D" --undo "$(ls "$D/quarantine")" --apply
	cp -r "$D" "$T/serve"
	# back above the checkpoint, byte for byte what the WAL holds: redundant
	cp "$T/saved" "$D/data/default/$part"
	traced recover -d "$D" --apply
	[ "$status" -eq 0 ]
	grep -q "unlink.*$part" "$T/trace"
	durable "$D"
	cp "$T/saved" "$T/serve/data/default/$part"
	traced serve -d "$T/serve" < /dev/null
	[ "$status" -eq 0 ]
	grep -q "unlink.*$part" "$T/trace"
	durable "$T/serve"
}

@test "undo of a rebuild removes the partition it stored only once the WAL holding its points is synced" {
	"$GEN" 3000 | "$W" -q write -d "$D" --batch 300 --max-segment-size 64k
	"$W" -q recover -d "$D" --apply
	part=$(ls "$D/data/default")
	rm "$D/data/default/$part"
	run "$W" recover -d "$D" --apply
	[ "$status" -eq 1 ]
	[[ "$output" == *"rebuild partition 'data/default/$part'"* ]]
	traced recover -d "$D" --undo "$(ls "$D/quarantine" | tail -n 1)" --apply
	[ "$status" -eq 0 ]
	grep -q "unlink.*$part" "$T/trace"
	[ ! -e "$D/data/default/$part" ]
	durable "$D"
}
