#!/usr/bin/env bats
# make demo (scripts/demo.sh): the story end to end, and its own checks.
load helpers

# crashsim.so is preloaded ahead of a sanitized walctl's runtime (as in
# powercut.bats)
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:verify_asan_link_order=0

# as make demo runs it: from the source tree, by a relative path
demo() { (cd "$ROOT" && WALCTL=$1 BUILD=$B DEMO_DIR=$T/demo DEMO_POINTS=${2:-100000} scripts/demo.sh); }

@test "the demo tells its story and every check holds" {
	[ -f "$B/tests/tools/crashsim.so" ]
	run demo "$WALCTL_REAL"
	echo "$output"
	[ "$status" -eq 0 ]
	for s in "1. ingest" "2. verify: the torn tail is harmless (exit 2)" "3. startup" "4. a bit flips in a sealed segment" \
		"5. the salvage plan" "6. apply" "7. undo"; do
		grep -qF "== $s" <<< "$output" || { echo "no step '$s'"; false; }
	done
	[[ "$output" == *"torn tail: frame"*"[torn-tail]"* || "$output" == *"torn tail: "*"[torn-tail]"* ]]
	grep -Eq "payload checksum mismatch in LSN [0-9]+ in sealed segment; damage to durable data" <<< "$output"
	grep -Eq '^== done in [0-9.]+ s: every check held$' <<< "$output"
	# under a minute, with room to spare on a loaded machine
	secs=$(sed -n 's/^== done in \([0-9]*\)\..*/\1/p' <<< "$output")
	[ "$secs" -lt 60 ]
}

@test "the demo fails when an acknowledged point is missing" {
	# a walctl whose line-protocol dump of a data directory loses its 5th point
	cat > "$T/lossy" <<-EOF2
		#!/bin/bash
		if [ "\$1" = dump ] && [[ " \$* " == *" --format lp "* ]]; then
			"$WALCTL_REAL" "\$@" | sed 5d
			exit "\${PIPESTATUS[0]}"
		fi
		exec "$WALCTL_REAL" "\$@"
	EOF2
	chmod +x "$T/lossy"
	run demo "$T/lossy" 20000
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"DEMO FAILED: acknowledged points are missing after the power cut"* ]]
}
