# helpers.bash - shared setup for the command-line tests.
# WALCTL and BUILD come from make test; defaults let a test run by hand.
bats_require_minimum_version 1.5.0

setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	W=${WALCTL:-$ROOT/walctl}
	B=${BUILD:-$ROOT/build/default}
	GEN=$B/tests/tools/gen
	WALFIX=$B/tests/tools/walfix
	T=$(mktemp -d /tmp/walctl-cli-XXXXXX)
	D=$T/data
	unset WALCTL_DIR
}

teardown() {
	rm -rf "$T"
}

# frame offset of LSN $2 in data dir $1
offset_of() {
	"$W" dump "$1" --format jsonl 2>/dev/null | sed -n "s/.*\"lsn\": $2, .*\"offset\": \([0-9]*\),.*/\1/p"
}
