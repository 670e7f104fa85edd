#!/usr/bin/env bats
# Progress on stderr at a terminal: run in a real pseudo-terminal by
# script(1).  The disk is made slow by strace delaying every pread64 of
# walctl, so that the work takes the second after which progress shows.
load helpers

# LeakSanitizer cannot stop the world of a traced process
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0

# at_term CMD...: run CMD in a pseudo-terminal; what the terminal showed
# goes to $T/tty, with carriage returns as newlines.
at_term() {
	script -qefc "$*" "$T/typescript" > /dev/null < /dev/null
	local rc=$?
	tr '\r' '\n' < "$T/typescript" > "$T/tty"
	return $rc
}

slow() { echo "strace -f -o /dev/null -e trace=pread64 -e inject=pread64:delay_exit=${1}000"; }

big() { "$GEN" 200000 | "$W" -q write -d "$D" --batch 500; }

@test "verify: at a terminal, a line with the share, the rate and the time left, cleared at the end" {
	need script
	need strace
	big
	at_term "$(slow 30) $W verify -d $D"
	cat "$T/tty"
	grep -Eq '^verify: +[0-9]+%, [0-9]+ MB of 26 MB, [0-9.]+ [kM]B/s, [0-9]+ s left.\[K$' "$T/tty"
	# the line is erased before the report
	grep -q "$(printf '\033')\[K$D/wal: 1 segment, 401 entries" "$T/typescript"
}

@test "no progress when stderr is not a terminal, or with -q" {
	need script
	need strace
	big
	at_term "$(slow 30) $W verify -d $D 2> $T/err"
	run ! grep -q 'verify: .*%' "$T/tty" "$T/err"
	at_term "$(slow 30) $W -q verify -d $D"
	run ! grep -q 'verify: .*%' "$T/tty"
	at_term "$(slow 30) $W verify -q -d $D"
	run ! grep -q 'verify: .*%' "$T/tty"
}

@test "write from a pipe counts bytes and points; from a file, the share and time left" {
	need script
	"$GEN" 20000 > "$T/a.lp"
	at_term "{ cat $T/a.lp; sleep 1.5; cat $T/a.lp; } | $W write -d $D"
	cat "$T/tty"
	grep -Eq '^write: [0-9]+ MB, [0-9]+ points, [0-9.]+ [kM]B/s.\[K$' "$T/tty"
	run ! grep -q 'write: .*%' "$T/tty"
	grep -q 'wrote 40000 points' "$T/tty"
	need strace
	"$GEN" 200000 > "$T/b.lp"
	rm -rf "$D"
	at_term "strace -f -o /dev/null -e trace=read -e inject=read:delay_exit=100000 $W write -d $D $T/b.lp"
	grep -Eq '^write: +[0-9]+%, [0-9]+ MB of [0-9]+ MB, [0-9]+ points, [0-9.]+ [kM]B/s, [0-9]+ s left.\[K$' "$T/tty"
}

@test "dump shows progress while its output goes to a file, not to the terminal" {
	need script
	need strace
	big
	at_term "$(slow 30) $W dump $D/wal --format lp > $T/out.lp"
	grep -Eq '^dump: +[0-9]+%, [0-9]+ MB of 26 MB, [0-9]+ entries, [0-9.]+ [kM]B/s, [0-9]+ s left.\[K$' "$T/tty"
	[ "$(wc -l < "$T/out.lp")" -eq 200000 ]
	at_term "$(slow 30) $W dump $D/wal --type checkpoint"
	run ! grep -q 'dump: .*%' "$T/tty"
}

@test "recover --apply shows the progress of its survey" {
	need script
	need strace
	big
	at_term "$(slow 30) $W recover -d $D --apply"
	cat "$T/tty"
	grep -Eq '^recover: survey: +[0-9]+%, [0-9]+ MB of 26 MB, [0-9.]+ [kM]B/s, [0-9]+ s left.\[K$' "$T/tty"
	grep -q 'recover --mode tail: done' "$T/tty"
	"$W" verify -d "$D"
}

@test "bench names each phase on stderr as it starts it; -q silences that too" {
	run --separate-stderr "$W" bench --points 2000 --sync async --latency 0
	[ "$status" -eq 0 ]
	[ "$stderr" = "walctl bench: async: 2000 points..." ]
	run --separate-stderr "$W" -q bench --points 2000 --sync async --latency 0
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
}
