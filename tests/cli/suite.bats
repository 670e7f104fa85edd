#!/usr/bin/env bats
# The test suite's own list of deliberate breakages (tests/mutations.txt,
# run by `make mutate`) must stay true to the tree: a mutation whose text no
# longer occurs, or whose test no longer exists, would prove nothing.
load helpers

@test "every mutation in tests/mutations.txt applies exactly once and names tests that exist" {
	run python3 "$ROOT/scripts/mutate.py" --check
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *" 0 problems"* ]]
}

@test "the check refuses a mutation that no longer applies and a test selection that matches nothing" {
	printf '== %s\nfile: lib/undo.c\nfrom: no such text in the file\nto: x\ntest: tests/cli/repair.bats :: undo\n' \
		stale > "$T/list"
	printf '== %s\nfile: lib/undo.c\nfrom: wal_undo(\nto: x\ntest: tests/cli/repair.bats :: no such test name\n' \
		notest >> "$T/list"
	run python3 "$ROOT/scripts/mutate.py" --check --list "$T/list"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"STALE   stale: 'from' occurs 0 times in lib/undo.c"* ]]
	[[ "$output" == *"NOTEST  notest: no test of tests/cli/repair.bats matches 'no such test name'"* ]]
	[[ "$output" == *"2 mutations, 2 problems"* ]]
}
