#!/usr/bin/env bats
# Faults and crash safety, observed with strace: a failed sync stops the
# writer for good, and every new segment is made durable by an fsync of
# its directory.
load helpers

# LeakSanitizer cannot run under ptrace; the sanitizer build is traced
# with leak detection off (leaks are checked by every other test).
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0

@test "a failed fdatasync: exit 8, no further sync attempted, what was synced stays intact" {
	need strace
	"$GEN" 30000 > "$T/in.lp"
	run --separate-stderr strace -f -qq -o "$T/trace" -e trace=fsync,fdatasync \
		-e inject=fdatasync:error=EIO:when=3 "$W" write -d "$D" --batch 1000 "$T/in.lp"
	[ "$status" -eq 8 ]
	[[ "$stderr" == *"fdatasync failed: Input/output error; nothing after LSN "*" is acknowledged"* ]]
	[[ "$stderr" == *"stopped: "*" were written and synced before the failure"* ]]
	grep -q 'INJECTED' "$T/trace"
	# nothing is synced again after the failure, not even at close
	[ "$(sed -n '/INJECTED/,$p' "$T/trace" | grep -c 'sync(')" -eq 1 ]
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ] || [ "$status" -eq 2 ]
}

@test "every segment created is renamed into place and its directory fsynced, the next one before the SEAL" {
	need strace
	"$GEN" 5000 > "$T/in.lp"
	strace -f -qq -o "$T/trace" -e trace=openat,rename,fsync,fdatasync \
		"$W" -q write -d "$D" --batch 200 --max-segment-size 128k "$T/in.lp"
	nseg=$(ls "$D/wal" | wc -l)
	[ "$nseg" -gt 3 ]
	# after each rename in wal/ (a temporary file to its name, the next
	# segment from NAME.next to NAME), the next fsync is of an fd opened on
	# wal/ itself
	awk -v wal="$D/wal" '
		/rename\(/ && index($0, wal "/") { pending = 1; renames++; next }
		pending && /openat\(/ && index($0, "\"" wal "\"") && /O_DIRECTORY/ { split($0, a, "= "); dirfd = a[2] + 0; next }
		pending && /fsync\(/ { match($0, /fsync\([0-9]+/); fd = substr($0, RSTART + 6, RLENGTH - 6) + 0
			if (fd == dirfd) { pending = 0; synced++ } }
		END { if (renames == 0 || renames != synced) { print renames, synced; exit 1 } }' "$T/trace"
	# the first segment is written under a temporary name; every later one
	# as NAME.next (itself from a temporary name), then renamed to NAME
	[ "$(grep -c 'rename(' "$T/trace")" -eq $((2 * nseg - 1)) ]
	[ "$(grep -c 'rename(.*\.wal\.next", ".*\.wal")' "$T/trace")" -eq $((nseg - 1)) ]
	# and between NAME.next's creation and its rename, a sync of a file
	# (the old segment, after its SEAL), not of the directory
	awk -v wal="$D/wal" '
		index($0, "\"" wal "\"") && /O_DIRECTORY/ { split($0, a, "= "); dirfd = a[2] + 0; next }
		/rename\(/ && /\.wal\.next"\)/ { made = 1; synced = 0; next }
		made && /f(data)?sync\(/ { match($0, /sync\([0-9]+/); fd = substr($0, RSTART + 5, RLENGTH - 5) + 0
			if (fd != dirfd) synced = 1; next }
		/rename\(/ && /\.wal\.next", / { named++; if (!made || !synced) bad++; made = 0 }
		END { if (bad || named == 0) { print named, bad; exit 1 } }' "$T/trace"
}
