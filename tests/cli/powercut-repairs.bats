#!/usr/bin/env bats
# Power cuts of repairs: each repair runs under tests/tools/crashsim.so and
# is cut before each of its changes in turn; tests/tools/crashsim.py builds
# the states such a cut could leave (see powercut.bats).  On every state,
# running the repair again ends where an uninterrupted one does: the same
# points, the same cursors, every removed byte in the quarantine.
#
# CRASH_STATES/200 seeds per instant (1 in make test, 25 in make drill);
# REPAIR_STRIDE=N cuts before every N-th change only.
load helpers

export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:verify_asan_link_order=0

SIM=

# repair_states NAME ALLOW_DAMAGE SEEDS CMD...: power cuts of a repair of
# $T/base, before each of its changes in turn, SEEDS states each.  Each
# state: verify says 0 or 2 (or, when the damage was there before the
# repair, anything but 8); one or two reruns of the same command end where
# an uninterrupted repair does (the same points, verify 0); every quarantine
# MANIFEST's saved pieces have the digests it records.
repair_states() {
	local name=$1 allow=$2 seeds=$3 n=0 total k seed
	shift 3
	rm -rf "$T/ref"
	cp -r "$T/base" "$T/ref"
	"$W" -q "$@" -d "$T/ref" --apply > /dev/null 2>&1 || true
	"$W" dump -d "$T/ref" --format lp > "$T/ref.lp" 2> /dev/null
	sim_prep
	CRASHSIM_ROOT=$D CRASHSIM_LOG=$T/journal LD_PRELOAD=$SIM "$W" -q "$@" -d "$D" --apply > /dev/null 2>&1 || true
	total=$(python3 "$ROOT/tests/tools/crashsim.py" --journal "$T/journal" --out "$T/full" --seed 0)
	rm -rf "$T/full"
	[ "$total" -gt 3 ] || { echo "$name: only $total changes"; return 1; }
	# (REPAIR_STRIDE=N: before every N-th change only, for the sanitizer pass)
	for k in $(seq 1 "${REPAIR_STRIDE:-1}" "$total"); do
		sim_prep
		{ CRASHSIM_ROOT=$D CRASHSIM_LOG=$T/journal CRASHSIM_AT=$k LD_PRELOAD=$SIM \
			"$W" -q "$@" -d "$D" --apply > /dev/null 2>&1; } 2> /dev/null || true
		for seed in $(seq "$k" "$total" $((k + (seeds - 1) * total))); do
			rm -rf "$T/state"
			python3 "$ROOT/tests/tools/crashsim.py" --journal "$T/journal" --out "$T/state" --seed "$seed" \
				--pre "$T/pre" --inodes "$T/inodes" > /dev/null
			run "$W" verify -d "$T/state"
			if [ "$allow" = no ]; then
				[ "$status" -eq 0 ] || [ "$status" -eq 2 ] || { echo "$name K=$k seed=$seed: verify $status: $output"; return 1; }
			else
				[ "$status" -ne 8 ] || { echo "$name K=$k seed=$seed: verify 8: $output"; return 1; }
			fi
			"$W" -q "$@" -d "$T/state" --apply > /dev/null 2>&1 || true
			"$W" -q "$@" -d "$T/state" --apply > /dev/null 2>&1 || true
			run "$W" verify -d "$T/state"
			[ "$status" -eq 0 ] || { echo "$name K=$k seed=$seed: verify after reruns $status: $output"; return 1; }
			"$W" dump -d "$T/state" --format lp 2> /dev/null | cmp -s - "$T/ref.lp" ||
				{ echo "$name K=$k seed=$seed: the points differ from an uninterrupted repair's"; return 1; }
			# and the consumers' cursors are where it leaves them
			if [ -d "$T/ref/consumers" ]; then
				[ "$(cd "$T/ref/consumers" && grep -H '^lsn=' -- *)" = "$(cd "$T/state/consumers" && grep -H '^lsn=' -- *)" ] ||
					{ echo "$name K=$k seed=$seed: the cursors differ from an uninterrupted repair's"; return 1; }
			fi
			for q in "$T"/state/quarantine/*/; do
				[ -f "$q/MANIFEST" ] || continue
				grep -o ' saved=[^ ]* saved_sha256=[0-9a-f]*' "$q/MANIFEST" | while read -r s h; do
					f=${s#saved=}
					[ "$(sha256sum < "$q/$f" | cut -d' ' -f1)" = "${h#saved_sha256=}" ] ||
						{ echo "$name K=$k seed=$seed: $q$f does not have its recorded digest"; exit 1; }
				done || return 1
			done
			n=$((n + 1))
		done
	done
	echo "# $name: $n power-cut states, before each ${REPAIR_STRIDE:+${REPAIR_STRIDE}th }of its $total changes" >&3
}

@test "repairs: power cuts of recover (tail, salvage), compact (with and without --merge) and truncate, with and without live consumers" {
	SIM=$B/tests/tools/crashsim.so
	per=$(( ${CRASH_STATES:-100} / 200 ))   # seeds per instant: 1 in make test, 25 in make drill
	[ "$per" -ge 1 ] || per=1
	# a replay into storage after a torn tail
	numbered 6000 | "$W" -q write -d "$T/base" --batch 1000 --max-segment-size 64k
	last=$(ls "$T/base/wal" | tail -n 1)
	"$WALFIX" garbage "$T/base/wal/$last" 300 5
	repair_states "recover (tail)" no "$per" recover
	# a salvage of mid-log damage, with its replay
	rm -rf "$T/base"
	numbered 6000 | "$W" -q write -d "$T/base" --batch 500 --max-segment-size 64k
	off=$(offset_of "$T/base" 3)
	"$WALFIX" flip "$T/base/wal/$(ls "$T/base/wal" | head -n 1)" $((off + 100)) 2
	repair_states "recover --mode salvage" yes "$per" recover --mode salvage
	# compact, then compact --merge of small segments not checkpointed
	rm -rf "$T/base"
	numbered 6000 | "$W" -q write -d "$T/base" --batch 500 --max-segment-size 64k
	"$W" -q recover -d "$T/base" --apply
	repair_states "compact" no "$per" compact --keep 1
	numbered 2000 | "$W" -q write -d "$T/base" --batch 100 --max-segment-size 16k
	repair_states "compact --merge" no "$per" compact --keep 1 --merge --max-segment-size 1M
	# truncate --after
	rm -rf "$T/base"
	numbered 3000 | "$W" -q write -d "$T/base" --batch 300 --max-segment-size 64k
	repair_states "truncate --after" no "$per" truncate --after 5
	# ... with live consumers past the cut, rewound
	mkdir "$T/base/consumers"
	printf 'walctl-consumer 1\nlsn=8\nstate=live\n' > "$T/base/consumers/c"
	printf 'walctl-consumer 1\nlsn=3\nstate=live\n' > "$T/base/consumers/d"
	repair_states "truncate --after --rewind-consumers" no "$per" truncate --after 5 --rewind-consumers
	# a salvage of mid-log damage a live consumer had passed, rewound
	rm -rf "$T/base"
	numbered 6000 | "$W" -q write -d "$T/base" --batch 500 --max-segment-size 64k
	off=$(offset_of "$T/base" 3)
	"$WALFIX" flip "$T/base/wal/$(ls "$T/base/wal" | head -n 1)" $((off + 100)) 2
	mkdir "$T/base/consumers"
	printf 'walctl-consumer 1\nlsn=9\nstate=live\n' > "$T/base/consumers/c"
	repair_states "recover --mode salvage --rewind-consumers" yes "$per" recover --mode salvage --rewind-consumers
}

@test "power cuts of recover --undo that rewinds live consumers: a rerun ends where an uninterrupted undo does, unless a writer appended since" {
	SIM=$B/tests/tools/crashsim.so
	[ -f "$SIM" ]
	# a salvage of mid-log damage that rewound consumer c; then consumer e
	# handed on what the salvage wrote (its cursor past the WAL's old end)
	numbered 6000 | "$W" -q write -d "$T/base" --batch 500 --max-segment-size 64k
	off=$(offset_of "$T/base" 3)
	"$WALFIX" flip "$T/base/wal/$(ls "$T/base/wal" | head -n 1)" $((off + 100)) 2
	mkdir "$T/base/consumers"
	printf 'walctl-consumer 1\nlsn=9\nstate=live\n' > "$T/base/consumers/c"
	old_end=$("$W" verify -d "$T/base" --format json | jq .last_lsn)
	"$W" -q recover -d "$T/base" --mode salvage --rewind-consumers --apply > /dev/null || true
	[ "$(grep '^lsn=' "$T/base/consumers/c")" = "lsn=2" ]
	end=$("$W" verify -d "$T/base" --format json | jq .last_lsn)
	printf 'walctl-consumer 1\nlsn=%s\nstate=live\n' "$end" > "$T/base/consumers/e"
	stamp=$(ls "$T/base/quarantine")
	rm -rf "$T/ref"
	cp -r "$T/base" "$T/ref"
	"$W" -q recover -d "$T/ref" --undo "$stamp" --rewind-consumers --apply > /dev/null
	[ "$(grep '^lsn=' "$T/ref/consumers/c")" = "lsn=9" ]
	[ "$end" -gt "$old_end" ]
	[ "$(grep '^lsn=' "$T/ref/consumers/e")" = "lsn=$old_end" ]
	sim_prep
	CRASHSIM_ROOT=$D CRASHSIM_LOG=$T/journal LD_PRELOAD=$SIM "$W" -q recover -d "$D" --undo "$stamp" --rewind-consumers --apply > /dev/null
	total=$(python3 "$ROOT/tests/tools/crashsim.py" --journal "$T/journal" --out "$T/full" --seed 0)
	rm -rf "$T/full"
	[ "$total" -gt 3 ]
	for k in $(seq 1 "$total"); do
		sim_prep
		{ CRASHSIM_ROOT=$D CRASHSIM_LOG=$T/journal CRASHSIM_AT=$k LD_PRELOAD=$SIM \
			"$W" -q recover -d "$D" --undo "$stamp" --rewind-consumers --apply > /dev/null 2>&1; } 2> /dev/null || true
		rm -rf "$T/state"
		python3 "$ROOT/tests/tools/crashsim.py" --journal "$T/journal" --out "$T/state" --seed "$k" \
			--pre "$T/pre" --inodes "$T/inodes" > /dev/null
		# no cursor past the WAL's end at any instant
		run "$W" verify -d "$T/state" --format json
		! jq -e '.findings[] | select(.kind == "bad-cursor")' <<< "$output" > /dev/null ||
			{ echo "K=$k: a cursor past the WAL's end: $output"; false; }
		"$W" -q recover -d "$T/state" --undo "$stamp" --rewind-consumers --apply > "$T/rerun" 2>&1 ||
			"$W" -q recover -d "$T/state" --undo "$stamp" --rewind-consumers --apply > "$T/rerun" 2>&1 || true
		diff -r -x LOCK -x '.*.tmp' "$T/ref" "$T/state" > "$T/diff" ||
			{ echo "K=$k: not where an uninterrupted undo ends:"; head -n 5 "$T/diff"; cat "$T/rerun"; false; }
	done
	# cut short, then a writer appends (at the first instant where one
	# can: the WAL the undo has not put back yet is whole): the undo does
	# not go on over what it appended
	appended=0
	for k in $(seq 2 "$total"); do
		sim_prep
		{ CRASHSIM_ROOT=$D CRASHSIM_LOG=$T/journal CRASHSIM_AT=$k LD_PRELOAD=$SIM \
			"$W" -q recover -d "$D" --undo "$stamp" --rewind-consumers --apply > /dev/null 2>&1; } 2> /dev/null || true
		[ -f "$D/quarantine/$stamp/UNDOING" ] || continue
		numbered 100 | "$W" -q write -d "$D" 2> /dev/null && appended=1 && break
	done
	[ "$appended" -eq 1 ]
	cp -r "$D" "$T/appended"
	run --separate-stderr "$W" recover -d "$D" --undo "$stamp" --rewind-consumers --apply
	[ "$status" -eq 4 ] || { echo "$stderr"; false; }
	[[ "$stderr" == *"the undo of repair '$stamp' was cut short and the WAL has moved on since: 'wal/"*"' is neither as the repair left it nor as it was before"* ]]
	diff -r -x LOCK "$T/appended" "$D"
	echo "# recover --undo --rewind-consumers: $total power-cut states, before each of its changes" >&3
}
