#!/usr/bin/env bats
# make demo (scripts/demo.sh): the story end to end, and its own checks.
load helpers

# crashsim.so is preloaded ahead of a sanitized walctl's runtime (as in
# powercut.bats)
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:verify_asan_link_order=0

# as make demo runs it: from the source tree, by a relative path
demo() { (cd "$ROOT" && WALCTL=$1 BUILD=$B DEMO_DIR=$T/demo DEMO_POINTS=${2:-100000} DEMO_CUT=${3:-60} scripts/demo.sh); }

# The kill lands where the cut says (percent of serve's changes): early,
# before any segment is sealed; mid-stream; at the very end.  Every one
# must tell the whole story (make demo once failed wherever startup's
# reclamation had removed the first segment).
@test "the demo tells its story and every check holds, wherever serve is killed" {
	[ -f "$B/tests/tools/crashsim.so" ]
	for cut in ${DEMO_CUTS:-3 30 60 99}; do
		run demo "$WALCTL_REAL" 50000 "$cut"
		echo "cut $cut: $output" | tail -n 5
		[ "$status" -eq 0 ] || { echo "$output"; false; }
		for s in "1. ingest" "2. verify: the torn tail is harmless (exit 2)" "3. restart" \
			"4. a bit flips in a sealed segment" "5. the salvage plan" "6. apply" "7. undo"; do
			grep -qF "== $s" <<< "$output" || { echo "cut $cut: no step '$s'"; false; }
		done
		[[ "$output" == *"torn tail: "*"[torn-tail]"* ]]
		grep -Eq "payload checksum mismatch in LSN [0-9]+ in sealed segment; damage to durable data" <<< "$output"
		grep -Eq '^== done in [0-9.]+ s: every check held$' <<< "$output"
	done
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
