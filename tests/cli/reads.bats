#!/usr/bin/env bats
# How much of the WAL each command reads, counted from the outside with
# strace: a scan reads every byte of a segment once, and a command scans no
# more often than it needs to.
load helpers

# LeakSanitizer does not work under ptrace
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0

# bytes the traced process read from segment files
wal_bytes_read() { awk '/\.wal>/ && /p?read(64)?\(/ && / = [0-9]+$/ { n += $NF } END { print n + 0 }' "$1"; }

# a WAL whose entries are larger than the scanner's 256 KiB reads, and no
# checkpoint: serve's startup replays all of it
setup_wal() {
	"$W" bench --emit 50000 > "$T/in.lp"
	"$W" -q write -d "$D" "$T/in.lp"
	size=$(cat "$D"/wal/*.wal | wc -c)
	"$W" dump "$D/wal" --format jsonl | awk -F'"length": ' '{ split($2, a, ","); if (a[1] > 262144) big++ } END { exit !(big > 1) }'
}

@test "a scan reads every byte of a segment once, also when entries are larger than one read" {
	need strace
	setup_wal
	strace -f -qq -e trace=read,pread64 -y -o "$T/trace" "$W" -q verify -d "$D"
	got=$(wal_bytes_read "$T/trace")
	echo "verify read $got bytes of a $size-byte WAL"
	[ "$got" -eq "$size" ]
	strace -f -qq -e trace=read,pread64 -y -o "$T/trace" "$W" -q verify --deep -d "$D"
	got=$(wal_bytes_read "$T/trace")
	echo "verify --deep read $got bytes of a $size-byte WAL"
	[ "$got" -eq "$size" ]
}

@test "serve's startup reads the WAL twice: to open it, and to replay what follows the last checkpoint" {
	need strace
	setup_wal
	strace -f -qq -e trace=read,pread64 -y -o "$T/trace" "$W" -q serve -d "$D" < /dev/null
	got=$(wal_bytes_read "$T/trace")
	echo "serve read $got bytes of a $size-byte WAL"
	[ "$got" -eq $((2 * size)) ]
	# and it did replay: every point is in storage now
	"$W" dump -d "$D" --format lp | cmp - "$T/in.lp"
}
