#!/usr/bin/env bats
# How much of the WAL each command reads, counted from the outside with
# strace: a scan reads every byte of a segment once, and a command scans no
# more often than it needs to.
load helpers

# LeakSanitizer does not work under ptrace
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0

# bytes the traced process read from segment files
wal_bytes_read() { awk '/\.wal>/ && /p?read(64)?\(/ && / = [0-9]+$/ { n += $NF } END { print n + 0 }' "$1"; }

# the last LSN storage holds, from the partitions' names
stored_through() {
	local last=0 p l
	for p in "$1"/data/*/*.part; do
		[ -e "$p" ] || continue
		l=${p##*-}
		l=$((16#${l%.part}))
		[ "$l" -le "$last" ] || last=$l
	done
	echo "$last"
}

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

@test "serve's startup reads the WAL once: it opens it and replays what follows the last checkpoint in one pass" {
	need strace
	setup_wal
	strace -f -qq -e trace=read,pread64 -y -o "$T/trace" "$W" -q serve -d "$D" < /dev/null
	got=$(wal_bytes_read "$T/trace")
	echo "serve read $got bytes of a $size-byte WAL"
	[ "$got" -eq "$size" ]
	# and it did replay: every point is in storage now
	[ "$(stored_through "$D")" -eq "$("$W" dump "$D/wal" --format jsonl | grep -c '"type": "points"')" ]
	"$W" dump -d "$D" --format lp | cmp - "$T/in.lp"
	# the same with checkpoints and a WAL-only write after the last one:
	# its points are stored once
	"$GEN" 2000 > "$T/more.lp"
	"$W" -q write -d "$D" "$T/more.lp"
	size=$(cat "$D"/wal/*.wal | wc -c)
	strace -f -qq -e trace=read,pread64 -y -o "$T/trace" "$W" -q serve -d "$D" < /dev/null
	got=$(wal_bytes_read "$T/trace")
	echo "serve read $got bytes of a $size-byte WAL"
	[ "$got" -eq "$size" ]
	cat "$T/in.lp" "$T/more.lp" | cmp - <("$W" dump -d "$D" --format lp)
}

@test "serve's startup reads again what follows the last checkpoint when it is more than 16 MiB" {
	need strace
	"$W" bench --emit 150000 > "$T/in.lp"
	"$W" -q write -d "$D" "$T/in.lp"
	size=$(cat "$D"/wal/*.wal | wc -c)
	[ "$size" -gt $((16 << 20)) ]
	cp -r "$D" "$T/damaged"
	strace -f -qq -e trace=read,pread64 -y -o "$T/trace" "$W" -q serve -d "$D" < /dev/null
	got=$(wal_bytes_read "$T/trace")
	echo "serve read $got bytes of a $size-byte WAL"
	[ "$got" -eq $((2 * size)) ]
	# every entry is in storage now, not only in the WAL
	[ "$(stored_through "$D")" -eq "$("$W" dump "$T/damaged/wal" --format jsonl | grep -c '"type": "points"')" ]
	"$W" dump -d "$D" --format lp | cmp - "$T/in.lp"
	# what it reads again is checked as what it holds would be: a break
	# byte among the points of LSN 2 (its envelope decodes), CRCs recomputed
	off=$(offset_of "$T/damaged" 2)
	"$WALFIX" payload "$T/damaged/wal/0000000000000001.wal" "$off" 12 255
	run --separate-stderr "$W" serve -d "$T/damaged" < /dev/null
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"offset=\"$off\" error=\"points payload of LSN 2 does not decode"*"recover --mode salvage"* ]]
	# and what it stored before it stopped holds nothing from LSN 2 on
	for part in $(ls "$T"/damaged/data/default/ 2> /dev/null); do
		last=${part#*-}
		[ $((16#${last%.part})) -lt 2 ]
	done
}

@test "recover --apply reads the WAL once: its survey keeps what the replay stores and where the WAL ends" {
	need strace
	setup_wal
	entries=$("$W" dump "$D/wal" --format jsonl | grep -c '"type": "points"')
	strace -f -qq -e trace=read,pread64 -y -o "$T/trace" "$W" -q recover -d "$D" --apply > /dev/null
	got=$(wal_bytes_read "$T/trace")
	after=$(cat "$D"/wal/*.wal | wc -c)
	echo "recover --apply read $got bytes of a $size-byte WAL ($after bytes with the checkpoint it appended)"
	# the WAL once, and the checkpoint it appended, read back for the
	# quarantine's record of what the repair left
	[ "$after" -gt "$size" ]
	[ "$got" -eq "$after" ]
	[ "$(stored_through "$D")" -eq "$entries" ]
	"$W" dump -d "$D" --format lp | cmp - "$T/in.lp"
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
}
