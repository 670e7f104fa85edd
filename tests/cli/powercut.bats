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
