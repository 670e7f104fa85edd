#!/usr/bin/env bats
# Crash during repair: kill a salvage (with its replay) before each of its
# write, rename, unlink, ftruncate and sync calls in turn, rerun it, and
# compare the result with an uninterrupted run.
load helpers

export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0

# The logical state: every point (storage, then WAL), and the WAL's entries
# without what differs between runs (times, offsets, CLOSE frames).
state() {
	"$W" dump -d "$1" --format lp | md5sum
	"$W" dump "$1/wal" --format jsonl | grep -v '"type": "close"' |
		sed 's/"segment": "[^"]*", "offset": [0-9]*, //; s/"mark": [0-9]*, "time": "[^"]*"//' | md5sum
	find "$1" -path '*/data/*' -name '*.part' | wc -l
}

@test "killed before any write, rename, unlink, ftruncate or sync, a rerun ends where an uninterrupted repair does" {
	need strace
	"$GEN" 3000 | "$W" -q write -d "$T/base" --batch 100 --max-segment-size 64k
	seg=$(ls "$T/base/wal" | head -n 1)
	off=$(offset_of "$T/base" 3)
	"$WALFIX" flip "$T/base/wal/$seg" $((off + 100)) 2          # mid-log damage
	last=$(ls "$T/base/wal" | tail -n 1)
	"$WALFIX" garbage "$T/base/wal/$last" 300 9                   # and a torn tail
	cp -r "$T/base" "$T/ref"
	run "$W" -q recover -d "$T/ref" --mode salvage --apply
	[ "$status" -eq 1 ]
	want=$(state "$T/ref")
	runs=0
	for call in pwrite64 pwritev write rename unlink ftruncate fsync fdatasync; do
		n=1
		while :; do
			rm -rf "$D"
			cp -r "$T/base" "$D"
			strace -f -qq -o /dev/null -e trace="$call" -e inject="$call":signal=KILL:when=$n \
				"$W" -q recover -d "$D" --mode salvage --apply > /dev/null 2>&1 && rc=0 || rc=$?
			[ "$rc" -eq 137 ] || break                             # it got through: no more $call to kill at
			runs=$((runs + 1))
			run "$W" -q recover -d "$D" --mode salvage --apply
			[ "$status" -eq 0 ] || [ "$status" -eq 1 ] || { echo "$call #$n: rerun exit $status: $output"; false; }
			[ "$(state "$D")" = "$want" ] || { echo "$call #$n: final state differs"; false; }
			run "$W" verify -d "$D"
			[ "$status" -eq 0 ] || { echo "$call #$n: verify $status: $output"; false; }
			run "$W" -q recover -d "$D" --mode salvage --apply
			[ "$status" -eq 0 ] || { echo "$call #$n: a third run still changed something"; false; }
			n=$((n + 1))
		done
	done
	echo "# $runs interrupted repairs completed by a rerun" >&3
	[ "$runs" -gt 20 ]
}

@test "compact --merge killed before any write, rename, unlink or sync: verify says 0 or 2, a rerun completes it" {
	need strace
	"$GEN" 1500 | "$W" -q write -d "$T/base" --batch 100 --max-segment-size 16k
	[ "$(ls "$T/base/wal" | wc -l)" -gt 10 ]
	cp -r "$T/base" "$T/ref"
	run "$W" -q compact -d "$T/ref" --keep 1 --merge --max-segment-size 1M --apply
	[ "$status" -eq 0 ]
	want=$(state "$T/ref")
	wantsegs=$(ls "$T/ref/wal")
	runs=0
	for call in pwrite64 write rename unlink fsync fdatasync; do
		n=1
		while :; do
			rm -rf "$D"
			cp -r "$T/base" "$D"
			strace -f -qq -o /dev/null -e trace="$call" -e inject="$call":signal=KILL:when=$n \
				"$W" -q compact -d "$D" --keep 1 --merge --max-segment-size 1M --apply > /dev/null 2>&1 && rc=0 || rc=$?
			[ "$rc" -eq 137 ] || break
			runs=$((runs + 1))
			run "$W" verify -d "$D"
			[ "$status" -eq 0 ] || [ "$status" -eq 2 ] || { echo "$call #$n: verify on the crashed state: $status: $output"; false; }
			run "$W" -q compact -d "$D" --keep 1 --merge --max-segment-size 1M --apply
			[ "$status" -eq 0 ] || { echo "$call #$n: rerun exit $status: $output"; false; }
			# a merge cut short before its merged segment was in place is done again
			if [ "$(ls "$D/wal")" != "$wantsegs" ]; then
				run "$W" -q compact -d "$D" --keep 1 --merge --max-segment-size 1M --apply
				[ "$status" -eq 0 ]
			fi
			[ "$(ls "$D/wal")" = "$wantsegs" ] || { echo "$call #$n: segments $(ls "$D/wal" | tr '\n' ' ')"; false; }
			[ "$(state "$D")" = "$want" ] || { echo "$call #$n: final state differs"; false; }
			run "$W" verify -d "$D"
			[ "$status" -eq 0 ] || { echo "$call #$n: verify $status: $output"; false; }
			n=$((n + 1))
		done
	done
	echo "# $runs interrupted merges completed by a rerun" >&3
	[ "$runs" -gt 20 ]
}

@test "a salvage of swapped segment names killed at any step: a rerun swaps them back, nothing lost" {
	need strace
	"$GEN" 1500 | "$W" -q write -d "$T/base" --batch 100 --max-segment-size 64k
	a=$(ls "$T/base/wal" | sed -n 2p) b=$(ls "$T/base/wal" | sed -n 3p)
	mv "$T/base/wal/$a" "$T/base/x"
	mv "$T/base/wal/$b" "$T/base/wal/$a"
	mv "$T/base/x" "$T/base/wal/$b"
	want=$("$W" dump -d "$T/base" --format lp | md5sum)
	wantsegs=$(ls "$T/base/wal")
	runs=0
	for call in pwrite64 rename renameat2 unlink fsync; do
		n=1
		while :; do
			rm -rf "$D"
			cp -r "$T/base" "$D"
			strace -f -qq -o /dev/null -e trace="$call" -e inject="$call":signal=KILL:when=$n \
				"$W" -q recover -d "$D" --mode salvage --apply > /dev/null 2>&1 && rc=0 || rc=$?
			[ "$rc" -eq 137 ] || break
			runs=$((runs + 1))
			run "$W" verify -d "$D"
			[ "$status" -ne 8 ] || { echo "$call #$n: verify 8: $output"; false; }
			run "$W" -q recover -d "$D" --mode salvage --apply
			[ "$status" -eq 0 ] || [ "$status" -eq 1 ] || { echo "$call #$n: rerun exit $status: $output"; false; }
			run "$W" verify -d "$D"
			[ "$status" -eq 0 ] || { echo "$call #$n: verify after the rerun $status: $output"; false; }
			[ "$(ls "$D/wal")" = "$wantsegs" ] || { echo "$call #$n: segments $(ls "$D/wal" | tr '\n' ' ')"; false; }
			[ "$("$W" dump -d "$D" --format lp | md5sum)" = "$want" ] || { echo "$call #$n: points differ"; false; }
			n=$((n + 1))
		done
	done
	echo "# $runs interrupted swaps completed by a rerun" >&3
	[ "$runs" -gt 10 ]
}
