#!/usr/bin/env bats
# Power cuts: walctl runs under tests/tools/crashsim.so, which journals every
# change it makes to the data directory and kills it before the K-th;
# tests/tools/crashsim.py then builds, for each seed, a state a power cut at
# that instant could leave (unsynced pages kept, dropped, zeroed or garbled;
# directory changes no directory fsync covered undone).  On every state:
# verify says 0 or 2, never 4; startup brings the directory back; every
# acknowledged point is there exactly once.
#
# CRASH_STATES (default 100) states of serve; make drill runs 5,000.  A failing
# state keeps its journal and prints the command that rebuilds it from the
# journal and its seed.
load helpers

export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:verify_asan_link_order=0

SIM=
numbered() { awk -v n="$1" 'BEGIN { for (i = 1; i <= n; i++) printf "drill,host=h%d seq=%di,a=%d,b=%.1f %d\n", i % 10, i, i * 3, i / 7, 1000000000 + i }'; }

# crashed_run K MODE: serve killed before its K-th change; journal in $T/journal.
crashed_run() {
	rm -rf "$D" "$T/journal"
	# shellcheck disable=SC2086
	{ CRASHSIM_ROOT=$D CRASHSIM_LOG=$T/journal CRASHSIM_AT=$1 LD_PRELOAD=$SIM \
		"$W" serve -d "$D" --ack $2 --max-segment-size 64k --keep-segments 1 --buffer-points 2000 \
		--flush-interval 5ms < "$T/in.lp" > "$T/acks" 2> "$T/log"; } 2> /dev/null || true # killed on purpose
}

# check_state K MODE SEED: build the state and check it.
check_state() {
	local k=$1 mode=$2 seed=$3 c=$T/state acked
	rm -rf "$c"
	python3 "$ROOT/tests/tools/crashsim.py" --journal "$T/journal" --out "$c" --seed "$seed" > /dev/null ||
		{ echo "crashsim.py failed"; return 1; }
	run "$W" verify -d "$c"
	[ "$status" -eq 0 ] || [ "$status" -eq 2 ] || { echo "verify $status: $output"; return 1; }
	run --separate-stderr "$W" serve -d "$c" < /dev/null
	[ "$status" -eq 0 ] || { echo "startup exit $status: $stderr"; return 1; }
	run "$W" verify -d "$c"
	[ "$status" -eq 0 ] || { echo "verify after startup $status: $output"; return 1; }
	"$W" dump -d "$c" --format lp 2> /dev/null | sed -n 's/.*seq=\([0-9]*\)i.*/\1/p' | sort -n > "$T/seqs"
	[ -z "$(uniq -d "$T/seqs")" ] || { echo "points stored twice: $(uniq -d "$T/seqs" | head -3 | tr '\n' ' ')"; return 1; }
	case $mode in *async*) return 0 ;; esac # acks of async mode mean "handed to the kernel"
	acked=$(grep -E '^ack [0-9]+ [0-9]+$' "$T/acks" | tail -n 1 | cut -d' ' -f3)
	acked=${acked:-0}
	[ "$(head -n "$acked" "$T/seqs" | awk '$1 != NR' | head -n 1)" = "" ] && [ "$(wc -l < "$T/seqs")" -ge "$acked" ] ||
		{ echo "acked $acked points, $(wc -l < "$T/seqs") survived, not all of the acked ones"; return 1; }
}

@test "serve: power cuts at random instants, with rotation, flushes, checkpoints and reclamation (${CRASH_STATES:-100} states)" {
	SIM=$B/tests/tools/crashsim.so
	[ -f "$SIM" ]
	numbered 30000 > "$T/in.lp"
	states=${CRASH_STATES:-100}
	per=4 # seeds per crashed run
	modes=("--sync fdatasync" "--sync fsync" "--sync async" "--sync fdatasync --sync-interval 2ms")
	# how many changes an uninterrupted run makes, per mode
	declare -a total
	for m in 0 1 2 3; do
		crashed_run 0 "${modes[$m]}"
		total[m]=$(python3 "$ROOT/tests/tools/crashsim.py" --journal "$T/journal" --out "$T/full" --seed 0)
		rm -rf "$T/full"
		[ "${total[m]}" -gt 30 ]
	done
	done_states=0 run_no=0
	# the cut instants are drawn from this seed (rerun one with CRASH_SEED)
	RANDOM=${CRASH_SEED:-1207}
	echo "# cut instants drawn with CRASH_SEED=${CRASH_SEED:-1207}" >&3
	start=$(date +%s)
	while [ "$done_states" -lt "$states" ]; do
		m=$((run_no % 4))
		k=$(( (RANDOM * 32768 + RANDOM) % total[m] + 1 ))
		crashed_run "$k" "${modes[$m]}"
		for s in $(seq 1 "$per"); do
			seed=$((run_no * per + s))
			check_state "$k" "${modes[$m]}" "$seed" || {
				keep=${TMPDIR:-/tmp}/walctl-powercut-$$-$seed
				mkdir -p "$keep" && cp "$T/journal" "$keep/journal"
				echo "state failed: mode '${modes[$m]}' K=$k seed=$seed (of ${total[m]} changes); rebuild it:"
				echo "  tests/tools/crashsim.py --journal $keep/journal --seed $seed --out DIR"
				false
			}
			done_states=$((done_states + 1))
		done
		run_no=$((run_no + 1))
	done
	echo "# $done_states power-cut states of serve, $run_no crashed runs: all passed ($(($(date +%s) - start)) s)" >&3
}

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

@test "directories a killed process made and never synced are made durable by the writers that rely on them" {
	SIM=$B/tests/tools/crashsim.so
	[ -f "$SIM" ]
	numbered 20000 > "$T/in.lp"
	mkdir -p "$T/base"
	sim_prep
	# a process makes data/default and consumers/, and is killed before any sync
	CRASHSIM_ROOT=$D CRASHSIM_LOG=$T/journal LD_PRELOAD=$SIM \
		python3 -c 'import os, sys; [os.makedirs(p) for p in sys.argv[1:]]' "$D/data/default" "$D/consumers"
	grep -a -q '^MKDIR data/default$' "$T/journal"
	# then writers that find them there: a consumer is added, serve runs and exits cleanly
	CRASHSIM_ROOT=$D CRASHSIM_LOG=$T/journal LD_PRELOAD=$SIM "$W" -q consumers -d "$D" add c --from-start
	CRASHSIM_ROOT=$D CRASHSIM_LOG=$T/journal LD_PRELOAD=$SIM "$W" -q serve -d "$D" --ack < "$T/in.lp" > "$T/acks"
	[ "$(tail -n 1 "$T/acks" | cut -d' ' -f3)" -eq 20000 ]
	# whatever the power cut keeps of what was not synced, nothing a writer relied on is gone
	for seed in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do
		rm -rf "$T/state"
		python3 "$ROOT/tests/tools/crashsim.py" --journal "$T/journal" --out "$T/state" --seed "$seed" \
			--pre "$T/pre" --inodes "$T/inodes" > /dev/null
		run "$W" verify -d "$T/state"
		[ "$status" -eq 0 ] || { echo "seed $seed: verify $status: $output"; false; }
		[ "$("$W" dump -d "$T/state" --format lp | wc -l)" -eq 20000 ] || { echo "seed $seed: points lost"; false; }
		run "$W" consumers -d "$T/state" list --format json
		[ "$status" -eq 0 ]
		jq -e '.consumers | map(.name) == ["c"]' <<< "$output" || { echo "seed $seed: the consumer is gone"; false; }
	done
}

@test "a parent directory the writer may not read (mode 711) is not in its way" {
	command -v runuser > /dev/null || skip "runuser is not installed"
	[ "$(id -u)" -eq 0 ] || skip "needs root to run as another user"
	mkdir -p "$T/home/u"
	chmod 755 "$T"
	chmod 711 "$T/home"
	chown nobody "$T/home/u"
	"$GEN" 100 > "$T/in.lp"
	chmod 644 "$T/in.lp"
	# the binary where nobody can run it, whatever the checkout's folders allow
	cp "$WALCTL_REAL" "$T/walctl"
	chmod 755 "$T/walctl"
	run runuser -u nobody -- "$T/walctl" -q write -d "$T/home/u/data" "$T/in.lp"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run runuser -u nobody -- "$T/walctl" verify -d "$T/home/u/data"
	[ "$status" -eq 0 ]
	[[ "$output" == *"2 entries"* ]]
}

# max_part_last DIR: the highest LSN a partition's name says it holds (0: none)
max_part_last() {
	local m=0 f l
	for f in "$1"/data/*/*.part; do
		[ -e "$f" ] || continue
		l=$(basename "$f" .part)
		l=$((16#${l#*-}))
		[ "$l" -gt "$m" ] && m=$l
	done
	echo "$m"
}

# sweep CUTS: with sim (serve under crashsim, killed before change K; 0:
# not killed) and check (K SEED: the state in $T/state) defined by the test,
# cut at CUTS instants spread over the changes an uninterrupted run makes,
# two power-cut states each (seeds 1 and 2).  $states and $total are set.
sweep() {
	local cuts=$1 k seed
	sim 0
	total=$(python3 "$ROOT/tests/tools/crashsim.py" --journal "$T/journal" --out "$T/full" --seed 0)
	[ "$total" -gt 30 ] || { echo "only $total changes"; return 1; }
	states=0
	for k in $(seq 1 $(((total + cuts - 1) / cuts)) "$total"); do
		sim "$k"
		for seed in 1 2; do
			rm -rf "$T/state"
			python3 "$ROOT/tests/tools/crashsim.py" --journal "$T/journal" --out "$T/state" --seed "$seed" > /dev/null
			check "$k" "$seed" || return 1
			states=$((states + 1))
		done
	done
}

@test "storage holds only what the WAL has synced: a power cut anywhere in serve --sync async leaves no partition past the WAL" {
	SIM=$B/tests/tools/crashsim.so
	[ -f "$SIM" ]
	numbered 6000 > "$T/in.lp"
	numbered 9000 | tail -n 3000 > "$T/more.lp"
	sim() {
		rm -rf "$D" "$T/journal"
		{ CRASHSIM_ROOT=$D CRASHSIM_LOG=$T/journal CRASHSIM_AT=$1 LD_PRELOAD=$SIM \
			"$W" -q serve -d "$D" --sync async --buffer-points 500 --flush-interval 5ms --keep-segments 100 \
			< <(slices); } 2> /dev/null || true
	}
	# the input in slices of 200 points, so that entries and flushes interleave
	slices() { for i in $(seq 0 29); do tail -n +$((i * 200 + 1)) "$T/in.lp" | head -n 200; sleep 0.003; done; }
	check() {
		local k=$1 seed=$2 wal_last
		wal_last=$("$W" verify -d "$T/state" --format json 2> /dev/null | jq '.last_lsn // 0')
		[ "$(max_part_last "$T/state")" -le "$wal_last" ] ||
			{ echo "K=$k seed=$seed: partition up to LSN $(max_part_last "$T/state"), WAL to $wal_last"; return 1; }
		# and the directory goes on: startup, more points, a checkpoint past it all; every reader reads it
		run --separate-stderr "$W" serve -d "$T/state" --buffer-points 500 < "$T/more.lp"
		[ "$status" -eq 0 ] || { echo "K=$k seed=$seed: serve $status: $stderr"; return 1; }
		run "$W" verify -d "$T/state"
		[ "$status" -eq 0 ] || { echo "K=$k seed=$seed: verify $status: $output"; return 1; }
		run --separate-stderr "$W" dump -d "$T/state" --format lp
		[ "$status" -eq 0 ] || { echo "K=$k seed=$seed: dump $status: $stderr"; return 1; }
		[ "$(grep -c 'seq=' <<< "$output")" -ge 3000 ] || { echo "K=$k seed=$seed: points lost"; return 1; }
	}
	sweep 20
	echo "# $states power-cut states of serve --sync async over $total changes: no partition past the WAL" >&3
}

@test "a power cut inside a flush of several databases is recovered by startup alone" {
	SIM=$B/tests/tools/crashsim.so
	[ -f "$SIM" ]
	# sections of 100 points alternating three databases
	numbered 6000 > "$T/g.lp"
	for i in $(seq 0 59); do
		echo "# CONTEXT-DATABASE:db$((i % 3))"
		tail -n +$((i * 100 + 1)) "$T/g.lp" | head -n 100
	done > "$T/in.export"
	sim() {
		rm -rf "$D" "$T/journal"
		{ CRASHSIM_ROOT=$D CRASHSIM_LOG=$T/journal CRASHSIM_AT=$1 LD_PRELOAD=$SIM \
			"$W" -q serve -d "$D" --buffer-points 1000 --flush-interval 5ms --keep-segments 100 \
			< <(for i in $(seq 0 9); do tail -n +$((i * 606 + 1)) "$T/in.export" | head -n 606; sleep 0.003; done)
		} 2> /dev/null || true
	}
	check() {
		run --separate-stderr "$W" serve -d "$T/state" < /dev/null
		[ "$status" -eq 0 ] || { echo "K=$1 seed=$2: startup $status: $stderr"; return 1; }
		run "$W" verify -d "$T/state"
		[ "$status" -eq 0 ] || { echo "K=$1 seed=$2: verify $status: $output"; return 1; }
	}
	sweep 25
	[ "$(ls "$T/full/data" | wc -l)" -eq 3 ]
	echo "# $states power-cut states of serve with three databases over $total changes: startup recovered each" >&3
}

# One power cut across several processes: serve --ack, ship following it
# into a sink that appends what it gets and syncs it, and the process that
# keeps serve's acks all journal into one file; its first K records are
# what they had all done when the power failed at that instant
# (crashsim.py --upto K), and --keep-all-out shows the acks printed by then.
# FILE without its last line when that has no newline
whole_lines() { [ -f "$1" ] || return 0; if [ -n "$(tail -c 1 "$1")" ]; then sed '$d' "$1"; else cat "$1"; fi; }

# the seq of each whole line of numbered's
seqs() { LC_ALL=C sed -n 's/^drill,host=h[0-9] seq=\([0-9]*\)i,a=[0-9]*,b=[0-9.]* [0-9]*$/\1/p'; }

@test "serve, ship and a durable sink: power cuts anywhere; every acked point reaches the sink, the sink holds nothing the directory does not (${PIPE_STATES:-24} states)" {
	SIM=$B/tests/tools/crashsim.so
	[ -f "$SIM" ]
	R=$T/root
	numbered 12000 > "$T/in.lp"
	numbered 12300 | tail -n 300 > "$T/more.lp"
	sink="dd of=$R/sink oflag=append conv=notrunc,fsync status=none"
	rm -rf "$R" "$T/journal"
	mkdir "$R"
	export CRASHSIM_ROOT=$R CRASHSIM_LOG=$T/journal
	# the sink's file is there, durably, before anything is sent to it
	LD_PRELOAD=$SIM python3 -c 'import os, sys; open(sys.argv[1], "a").close(); d = os.open(sys.argv[2], os.O_RDONLY); os.fsync(d)' "$R/sink" "$R"
	LD_PRELOAD=$SIM "$W" -q consumers -d "$R/d" add c --from-start
	# the input in slices, so that syncs, flushes, deliveries and reclamation interleave
	for i in $(seq 0 39); do tail -n +$((i * 300 + 1)) "$T/in.lp" | head -n 300; sleep 0.01; done |
		LD_PRELOAD=$SIM "$W" -q serve -d "$R/d" --ack --max-segment-size 64k --keep-segments 1 \
			--buffer-points 2000 --flush-interval 5ms |
		LD_PRELOAD=$SIM dd of="$R/acks" oflag=append conv=notrunc status=none &
	pipeline=$!
	for _ in $(seq 1 200); do [ -d "$R/d/wal" ] && break; sleep 0.01; done
	LD_PRELOAD=$SIM "$W" -q ship -d "$R/d" --consumer c --batch-points 700 --batch-interval 5ms --exec "$sink" &
	ship=$!
	wait "$pipeline"
	# ship catches up, then stops
	for _ in $(seq 1 200); do
		[ "$(grep '^lsn=' "$R/d/consumers/c")" = "lsn=$("$W" verify -d "$R/d" --format json | jq .last_lsn)" ] && break
		sleep 0.05
	done
	kill -TERM "$ship"
	wait "$ship" || true
	unset CRASHSIM_ROOT CRASHSIM_LOG
	[ "$(seqs < "$R/sink" | sort -u | wc -l)" -eq 12000 ]
	total=$(python3 "$ROOT/tests/tools/crashsim.py" --journal "$T/journal" --out "$T/full" --seed 0)
	rm -rf "$T/full"
	[ "$total" -gt 100 ]
	# the cut instants are drawn from this seed (rerun one with CRASH_SEED)
	RANDOM=${CRASH_SEED:-1207}
	echo "# cut instants drawn with CRASH_SEED=${CRASH_SEED:-1207} among $total changes" >&3
	states=${PIPE_STATES:-24}
	keep() {
		local keep=${TMPDIR:-/tmp}/walctl-powercut-$$-$n
		mkdir -p "$keep" && cp "$T/journal" "$keep/journal"
		echo "rebuild the state: tests/tools/crashsim.py --journal $keep/journal --seed $n --upto $k --out DIR"
	}
	trap keep ERR
	for n in $(seq 1 "$states"); do
		k=$(( (RANDOM * 32768 + RANDOM) % total + 1 ))
		s=$T/state
		rm -rf "$s" "$T/seen"
		python3 "$ROOT/tests/tools/crashsim.py" --journal "$T/journal" --out "$s" --seed "$n" --upto "$k" \
			--keep-all-out "$T/seen" > /dev/null
		# (whole lines: the last one may have been cut in the middle)
		acked=$(whole_lines "$T/seen/acks" | grep -E '^ack [0-9]+ [0-9]+$' | tail -n 1 | cut -d' ' -f3)
		acked=${acked:-0}
		where="K=$k seed=$n (of $total; $acked acked)"
		[ -d "$s/d" ] || { [ "$acked" -eq 0 ] && continue; echo "$where: no data directory"; false; }
		# no cursor ahead of the WAL, nothing lost that was acked
		run "$W" verify -d "$s/d"
		[ "$status" -eq 0 ] || [ "$status" -eq 2 ] || { echo "$where: verify $status: $output"; false; }
		# restarted, fed more points, delivered: every acked point reaches the sink
		run --separate-stderr "$W" serve -d "$s/d" --buffer-points 100 < "$T/more.lp"
		[ "$status" -eq 0 ] || { echo "$where: serve $status: $stderr"; false; }
		# (a cut before 'consumers add' returned, and serve started, may take it back)
		[ -f "$s/d/consumers/c" ] || [ ! -d "$T/seen/d/wal" ] || { echo "$where: the consumer is gone"; false; }
		[ -f "$s/d/consumers/c" ] || continue
		# (the sink starts a new line after what the cut left of its tail)
		echo >> "$s/sink"
		run --separate-stderr "$W" ship -d "$s/d" --consumer c --once --exec "cat >> $s/sink"
		[ "$status" -eq 0 ] || { echo "$where: ship $status: $stderr"; false; }
		run "$W" verify -d "$s/d"
		[ "$status" -eq 0 ] || { echo "$where: verify after ship $status: $output"; false; }
		# (comm wants the order of sort, not of sort -n; a power cut may
		# leave garbage where the sink had not synced: whole lines count)
		seqs < "$s/sink" | sort -u > "$T/got"
		missing=$(seq 1 "$acked" | sort | comm -23 - "$T/got" | head -n 3 | tr '\n' ' ')
		[ -z "$missing" ] || { echo "$where: acked points not in the sink: $missing"; false; }
		missing=$(seq 12001 12300 | sort | comm -23 - "$T/got" | head -n 3 | tr '\n' ' ')
		[ -z "$missing" ] || { echo "$where: points fed after the restart not in the sink: $missing"; false; }
		# the sink holds no point the directory does not; dump reads it all
		"$W" dump -d "$s/d" --format lp > "$T/dump.lp" 2> "$T/dump.err" ||
			{ echo "$where: dump $?: $(cat "$T/dump.err")"; false; }
		seqs < "$T/dump.lp" | sort -u > "$T/stored"
		extra=$(comm -13 "$T/stored" "$T/got" | head -n 3 | tr '\n' ' ')
		[ -z "$extra" ] || { echo "$where: the sink holds points the directory does not: $extra"; false; }
	done
	trap - ERR
	echo "# $states power-cut states of serve + ship + sink over $total changes: all passed" >&3
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
