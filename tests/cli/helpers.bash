# helpers.bash - shared setup for the command-line tests.
# WALCTL and BUILD come from make test; defaults let a test run by hand.
bats_require_minimum_version 1.5.0

setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	# walctl runs through tests/tools/walctl-json, which keeps a copy of
	# any JSON it prints for the teardown's check
	export WALCTL_REAL=${WALCTL:-$ROOT/walctl}
	W=$ROOT/tests/tools/walctl-json
	B=${BUILD:-$ROOT/build/default}
	GEN=$B/tests/tools/gen
	WALFIX=$B/tests/tools/walfix
	T=$(mktemp -d /tmp/walctl-cli-XXXXXX)
	D=$T/data
	export WALCTL_JSON_DIR=$T/.json
	mkdir "$WALCTL_JSON_DIR"
	unset WALCTL_DIR
	# Debian's python3 itself, started bare: a version manager's shim
	# first in PATH would cost more than a test's teardown should
	PY=/usr/bin/python3
	[ -x "$PY" ] || PY=python3
}

# Every log record the test made walctl print, in its files and in the
# output of its last run, must be logfmt with every value quoted: read by
# tests/tools/logfmt.py, written from the format's description.  Every
# JSON document it printed must be strict JSON valid against its schema in
# schemas/ (tests/tools/jsoncheck.py).
teardown() {
	local rc=0
	printf '%s\n%s\n' "${stderr:-}" "${output:-}" > "$T/.last-run" 2> /dev/null || true
	"$PY" -I -S "$ROOT/tests/tools/logfmt.py" --quoted "$T" || rc=1
	if compgen -G "$WALCTL_JSON_DIR/*.out" > /dev/null; then
		"$PY" -I "$ROOT/tests/tools/jsoncheck.py" "$ROOT/schemas" "$WALCTL_JSON_DIR" || rc=1
	fi
	rm -rf "$T"
	return $rc
}

# sim_prep: for a run under crashsim.so, $T/base copied to $D, the copy as
# it was before in $T/pre, and the inodes the process will see in
# $T/inodes (crashsim.py --pre --inodes); no journal yet.
sim_prep() {
	rm -rf "$D" "$T/pre" "$T/journal"
	cp -r "$T/base" "$D"
	cp -r "$D" "$T/pre"
	(cd "$D" && find . -type f -printf '%i %P\n') > "$T/inodes"
}

# N numbered points, seq=1..N, for the power-cut tests
numbered() { awk -v n="$1" 'BEGIN { for (i = 1; i <= n; i++) printf "drill,host=h%d seq=%di,a=%d,b=%.1f %d\n", i % 10, i, i * 3, i / 7, 1000000000 + i }'; }

# frame offset of LSN $2 in data dir $1
offset_of() {
	"$W" dump "$1" --format jsonl 2>/dev/null | sed -n "s/.*\"lsn\": $2, .*\"offset\": \([0-9]*\),.*/\1/p"
}

# Check a quarantine MANIFEST against the files as they were before the
# repair (in $2) with independent tools: for every file a repair touched,
# its size and sha256 before, and for every saved piece, that it is exactly
# bytes offset..offset+length of the original and that its sha256 is the one
# recorded.  Prints the number of lines checked.
check_manifest() {
	local q=$1 orig=$2 line file op size sha off len saved ssha n=0
	[ -f "$q/MANIFEST" ] || { echo "no MANIFEST in $q"; return 1; }
	head -n 1 "$q/MANIFEST" | grep -qx 'walctl-quarantine 1' || { echo "MANIFEST: bad first line"; return 1; }
	while IFS= read -r line; do
		case "$line" in file=wal/* | file=data/*) ;; *) continue ;; esac
		file=$(mf_field "$line" file) op=$(mf_field "$line" op) size=$(mf_field "$line" before_size)
		sha=$(mf_field "$line" before_sha256) off=$(mf_field "$line" offset) len=$(mf_field "$line" length)
		saved=$(mf_field "$line" saved) ssha=$(mf_field "$line" saved_sha256)
		[ "$op" = rebuild ] && continue   # made anew from the WAL: nothing saved
		[ -f "$orig/$file" ] || { echo "MANIFEST names $file, which was not there before"; return 1; }
		[ "$(stat -c %s "$orig/$file")" = "$size" ] || { echo "$file: before_size $size is wrong"; return 1; }
		[ "$(sha256sum < "$orig/$file" | cut -d' ' -f1)" = "$sha" ] || { echo "$file ($op): before_sha256 is wrong"; return 1; }
		[ -f "$q/$saved" ] || { echo "$file ($op): saved piece '$saved' is missing"; return 1; }
		[ "$(sha256sum < "$q/$saved" | cut -d' ' -f1)" = "$ssha" ] || { echo "$file ($op): saved_sha256 is wrong"; return 1; }
		[ "$(stat -c %s "$q/$saved")" = "$len" ] || { echo "$file ($op): saved piece is not $len bytes"; return 1; }
		tail -c +$((off + 1)) "$orig/$file" | head -c "$len" | cmp -s - "$q/$saved" ||
			{ echo "$file ($op): saved piece is not bytes $off+$len of the original"; return 1; }
		n=$((n + 1))
	done < "$q/MANIFEST"
	echo "$n"
}

# The value of KEY in a MANIFEST line (key=value, value without blanks).
mf_field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p; t; s/^$2=\([^ ]*\).*/\1/p" <<< "$1" | head -n 1; }

# The LSN ranges a MANIFEST records, one line: "20-20 45-45".
mf_lsns() { grep -o ' lsn=[0-9]*-[0-9]*' "$1/MANIFEST" | sed 's/ lsn=//' | tr '\n' ' ' | sed 's/ $//'; }

# need CMD: skip the test with a notice when CMD is missing; under CI=true,
# where .ci/run installs every test tool, fail instead.
need() {
	command -v "$1" > /dev/null && return 0
	if [ "${CI:-}" = true ]; then
		echo "'$1' is not installed, though .ci/run installs it"
		return 1
	fi
	skip "'$1' is not installed"
}
