#!/usr/bin/env bats
# Reading a data directory is safe: whatever sits where a segment, a
# partition or a cursor belongs (a FIFO, a socket), no command blocks on it;
# it is an operational error (8) naming the file, at once.  A file or
# directory walctl may not read is an operational error too, never damage:
# no repair plans to set a healthy partition aside for it.
load helpers

# within SECONDS: the command finishes, its status in $status (124: it hung)
within() {
	local secs=$1
	shift
	run --separate-stderr timeout -k 2 "$secs" "$@"
}

@test "a FIFO where a segment belongs: every reader and writer says so at once (8), none blocks" {
	"$GEN" 1000 | "$W" -q write -d "$D" --batch 100
	mkfifo "$D/wal/00000000000000ff.wal"
	for cmd in "verify -d $D" "dump -d $D" "dump $D/wal" "recover -d $D" "compact -d $D" "truncate -d $D --torn-tail"; do
		# shellcheck disable=SC2086
		within 10 "$WALCTL_REAL" $cmd
		[ "$status" -eq 8 ] || { echo "$cmd: exit $status: $stderr"; false; }
		[[ "$stderr" == *"'$D/wal/00000000000000ff.wal' is a FIFO, where walctl keeps regular files only"* ]] ||
			{ echo "$cmd: $stderr"; false; }
	done
	within 10 "$WALCTL_REAL" serve -d "$D" < /dev/null
	[ "$status" -eq 8 ]
	[[ "$stderr" == *"00000000000000ff.wal' is a FIFO"* ]]
}

@test "a FIFO or a socket where a partition belongs: verify and dump say so (8), none blocks" {
	"$GEN" 3000 | "$W" -q serve -d "$D" --buffer-points 1000
	part=$(ls "$D/data/default" | head -n 1)
	mv "$D/data/default/$part" "$T/part"
	mkfifo "$D/data/default/$part"
	within 10 "$WALCTL_REAL" verify -d "$D"
	[ "$status" -eq 8 ] || { echo "exit $status: $stderr"; false; }
	[[ "$stderr" == *"/data/default/$part' is a FIFO"* ]]
	within 10 "$WALCTL_REAL" dump -d "$D" --format lp
	[ "$status" -eq 8 ] || { echo "exit $status: $stderr"; false; }
	rm "$D/data/default/$part"
	python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$D/data/default/$part"
	within 10 "$WALCTL_REAL" verify -d "$D"
	[ "$status" -eq 8 ]
	[[ "$stderr" == *"/data/default/$part' is a socket"* ]]
	rm "$D/data/default/$part"
	mv "$T/part" "$D/data/default/$part"
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
}

@test "a FIFO where a cursor belongs: consumers, ship and verify say so (8); serve does not block on it and stops" {
	"$GEN" 3000 | "$W" -q serve -d "$D" --buffer-points 1000
	mkdir -p "$D/consumers"
	mkfifo "$D/consumers/c"
	within 10 "$WALCTL_REAL" consumers -d "$D" list
	[ "$status" -eq 8 ]
	[[ "$stderr" == *"consumers/c' is a FIFO"* ]]
	within 10 "$WALCTL_REAL" verify -d "$D"
	[ "$status" -eq 8 ]
	within 10 "$WALCTL_REAL" ship -d "$D" --consumer c --once --exec 'cat > /dev/null'
	[ "$status" -eq 8 ]
	# serve reclaims nothing it cannot vouch for, says why, and exits at EOF
	"$GEN" 20000 > "$T/in.lp"
	within 30 "$WALCTL_REAL" serve -d "$D" --max-segment-size 64k --keep-segments 1 --buffer-points 2000 < "$T/in.lp"
	[ "$status" -eq 0 ] || { echo "exit $status: $stderr"; false; }
	[[ "$stderr" == *'msg="no segment reclaimed: the consumers cannot be read"'*"consumers/c' is a FIFO"* ]]
}

@test "a partition or a database directory walctl may not read is an operational error (8), not damage" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to run as another user"
	command -v runuser > /dev/null || skip "runuser is not installed"
	chmod 755 "$T"
	"$GEN" 3000 | "$W" -q serve -d "$D" --buffer-points 1000
	chown -R nobody "$D"
	# the binary where nobody can run it, whatever the checkout's folders allow
	cp "$WALCTL_REAL" "$T/walctl"
	chmod 755 "$T/walctl"
	as_nobody() { runuser -u nobody -- "$T/walctl" "$@"; }
	part=$(ls "$D/data/default" | head -n 1)
	chmod 000 "$D/data/default/$part"
	run --separate-stderr as_nobody verify -d "$D"
	[ "$status" -eq 8 ] || { echo "exit $status: $stderr"; false; }
	[[ "$stderr" == *"$part"*"Permission denied"* ]]
	run --separate-stderr as_nobody dump -d "$D" --format lp
	[ "$status" -eq 8 ]
	# no repair plans to set the partition aside or store it again
	run --separate-stderr as_nobody recover -d "$D"
	[ "$status" -eq 8 ] || { echo "exit $status: $output $stderr"; false; }
	[[ "$output" != *"set-aside"* && "$output" != *"rebuild"* ]]
	chmod 644 "$D/data/default/$part"
	chmod 000 "$D/data/default"
	run --separate-stderr as_nobody verify -d "$D"
	[ "$status" -eq 8 ] || { echo "exit $status: $stderr"; false; }
	[[ "$stderr" == *"data/default"*"Permission denied"* ]]
	# dump -d lists storage's partitions itself: not missing, unreadable
	run --separate-stderr as_nobody dump -d "$D" --format lp
	[ "$status" -eq 8 ] || { echo "dump: exit $status: $stderr"; false; }
	chmod 755 "$D/data/default"
	run as_nobody verify -d "$D"
	[ "$status" -eq 0 ]
}
