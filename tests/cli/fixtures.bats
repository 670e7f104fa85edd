#!/usr/bin/env bats
# The committed fixtures in testdata/: what walctl verify says of each
# (testdata/expect.tsv).
load helpers

@test "every fixture: exit status, kind and message naming segment, offset and LSN" {
	while IFS='	' read -r name code kind msg; do
		case "$name" in '#'*) continue ;; esac
		run --separate-stderr "$W" verify "$ROOT/testdata/$name"
		if [ "$status" -ne "$code" ]; then echo "$name: exit $status, want $code: $stderr"; false; fi
		if [ "$msg" != - ] && [[ "$stderr" != *"$msg"* ]]; then
			echo "$name: stderr lacks '$msg':"; echo "$stderr"; false
		fi
		if [ "$kind" != - ]; then
			"$W" verify "$ROOT/testdata/$name" --format json 2>/dev/null | python3 -c "
import json, sys
d = json.load(sys.stdin)
assert d['findings'][0]['kind'] == '$kind', d['findings']
assert d['exit'] == $code"
		fi
	done < "$ROOT/testdata/expect.tsv"
}
