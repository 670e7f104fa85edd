#!/usr/bin/env bats
# One LSN sequence for the whole data directory: every LSN the directory has
# shown anyone (in a segment, a partition, a cursor, a quarantine record)
# stays below the next LSN any writer hands out.  A WAL that ends below what
# a partition or a cursor shows lost its end: damage, refused by writers,
# recorded as a known loss by a salvage.  LSNs a repair removed are passed
# by the next writer with a LOSS entry.
load helpers

# LSN and type of every frame of the WAL, one "LSN type" a line
frames() { "$W" dump "$D/wal" --format jsonl 2> /dev/null | jq -r '"\(.lsn) \(.type)"'; }
offset_of_lsn() { "$W" dump "$D/wal" --format jsonl 2> /dev/null | jq -r --argjson l "$1" 'select(.lsn == $l) | .offset'; }

@test "LSNs truncate --after removed are never handed out again: the next writer records them and goes on past" {
	# ten entries of 100 points and the CLOSE: LSN 1-11
	"$GEN" 1000 | "$W" -q write -d "$D" --batch 100
	"$W" -q truncate -d "$D" --after 5 --apply
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"LSN 6-11 were removed by truncate --after 5 (quarantine/"*"[notice]"* ]]
	"$GEN" 200 | "$W" -q write -d "$D" --batch 100
	# 6 is a LOSS of 6-11; the new entries are 12 and 13, exactly past it
	[ "$(frames | tr '\n' ' ')" = "1 points 2 points 3 points 4 points 5 points 6 loss 12 points 13 points 14 close " ]
	"$W" dump "$D/wal" --format jsonl | jq -e 'select(.lsn == 6) | .loss.first_lsn == 6 and .loss.last_lsn == 11' ||
		"$W" dump "$D/wal" --format jsonl | grep '"lsn": 6,'
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"known loss: LSN 6-11 (removed by truncate --after 5 (quarantine/"* ]]
	# once recorded, nothing more: a third writer goes on at 15
	"$GEN" 100 | "$W" -q write -d "$D" --batch 100
	[ "$(frames | tail -n 2 | tr '\n' ' ')" = "15 points 16 close " ]
	# a WAL that ends at the LOSS (its writer died before anything more):
	# the next writer records nothing again, and goes on past it
	"$WALFIX" cut "$D/wal/0000000000000001.wal" "$(offset_of_lsn 16)"
	[ "$(frames | tail -n 1)" = "15 points" ]
	rm -rf "$T/one" && cp -r "$D" "$T/one"
	"$WALFIX" cut "$T/one/wal/0000000000000001.wal" "$(offset_of_lsn 12)"
	"$W" -q write -d "$T/one" < /dev/null
	[ "$("$W" dump "$T/one/wal" --format jsonl | jq -r '"\(.lsn) \(.type)"' | tail -n 2 | tr '\n' ' ')" = "6 loss 12 close " ]
	# one LSN removed, one past the end (the CLOSE, LSN 11): passed too
	rm -rf "$D"
	"$GEN" 1000 | "$W" -q write -d "$D" --batch 100
	"$W" -q truncate -d "$D" --after 10 --apply
	"$GEN" 100 | "$W" -q write -d "$D" --batch 100
	[ "$(frames | tail -n 3 | tr '\n' ' ')" = "11 loss 12 points 13 close " ]
	# none removed: nothing recorded
	rm -rf "$D"
	"$GEN" 1000 | "$W" -q write -d "$D" --batch 100
	"$W" -q truncate -d "$D" --after 11 --apply
	"$GEN" 100 | "$W" -q write -d "$D" --batch 100
	[ "$(frames | tail -n 3 | tr '\n' ' ')" = "11 close 12 points 13 close " ]
}

@test "a WAL that ends below a partition lost its end: verify says so (4), writers refuse, a salvage records the loss (LSN boundary)" {
	# LSN 1-10 POINTS, 11 CLOSE; serve stores them: partition 1-10, then 12 CHECKPOINT, 13 CLOSE
	"$GEN" 1000 | "$W" -q write -d "$D" --batch 100
	"$W" -q serve -d "$D" < /dev/null
	[ "$(ls "$D/data/default")" = "0000000000000001-000000000000000a.part" ]
	cp -r "$D" "$T/base"
	# the WAL cut at a frame's start, so that it ends at LSN 11 (one past the
	# partition), 10 (at it) and 9 (one below it)
	for end in 11 10 9; do
		rm -rf "$D"
		cp -r "$T/base" "$D"
		off=$(offset_of_lsn $((end + 1)))
		"$WALFIX" cut "$D/wal/0000000000000001.wal" "$off"
		run --separate-stderr "$W" verify -d "$D"
		if [ "$end" -ge 10 ]; then
			[ "$status" -eq 0 ] || { echo "end $end: verify $status: $stderr"; false; }
			run --separate-stderr "$W" serve -d "$D" < /dev/null
			[ "$status" -eq 0 ] || { echo "end $end: serve $status: $stderr"; false; }
			continue
		fi
		[ "$status" -eq 4 ]
		[[ "$stderr" == *"the WAL ends at LSN 9 but partition 'data/default/0000000000000001-000000000000000a.part' shows LSN 10: LSN 10-10 are missing from the WAL [damage]"* ]]
		run "$W" verify -d "$D" --format json
		jq -e '.status == "damaged" and (.findings[] | select(.kind == "missing-end") | .first_lsn == 10 and .last_lsn == 10)' <<< "$output"
		run --separate-stderr "$W" serve -d "$D" < /dev/null
		[ "$status" -eq 4 ]
		[[ "$stderr" == *"the WAL ends at LSN 9 but partition"*"refusing to append"* ]]
		run -4 "$W" write -d "$D" < /dev/null
		# a salvage gives LSN 10 up as a known loss; storage keeps its points
		run "$W" recover -d "$D" --mode salvage
		[ "$status" -eq 4 ]
		[[ "$output" == *"lost: LSN 10-10 (recorded in the WAL as a known loss)"* ]]
		run "$W" recover -d "$D" --mode salvage --apply
		[ "$status" -eq 1 ] || { echo "$output"; false; }
		run --separate-stderr "$W" verify -d "$D"
		[ "$status" -eq 0 ] || { echo "$stderr"; false; }
		"$GEN" 100 | "$W" -q write -d "$D" --batch 100
		# the new entry comes after LSN 10, never at it
		[ "$(frames | grep -c '^10 points')" -eq 0 ]
		[ "$(frames | awk '$2 == "points"' | tail -n 1 | cut -d' ' -f1)" -gt 10 ]
		[ "$("$W" dump -d "$D" --format lp | wc -l)" -eq 1100 ]
	done
}

@test "a WAL that ends below a consumer's cursor is refused; after a salvage, ship delivers what comes next" {
	export OUT=$T/out
	mkdir "$OUT"
	"$GEN" 1000 | "$W" -q write -d "$D" --batch 100
	"$W" -q consumers -d "$D" add c --from-start
	"$W" -q ship -d "$D" --consumer c --once --exec 'cat > /dev/null'
	[ "$(grep '^lsn=' "$D/consumers/c")" = "lsn=11" ]
	# the WAL loses its last entries (LSN 8 on): the cursor says 11 were delivered
	"$WALFIX" cut "$D/wal/0000000000000001.wal" "$(offset_of_lsn 8)"
	run --separate-stderr "$W" serve -d "$D" < /dev/null
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"the WAL ends at LSN 7 but the cursor of consumer 'c' shows LSN 11"* ]]
	"$W" -q recover -d "$D" --mode salvage --apply || true
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	# new points get LSNs past the cursor, and reach the sink
	"$GEN" 300 | tail -n 50 > "$T/new.lp"
	"$W" -q write -d "$D" < "$T/new.lp"
	"$W" -q ship -d "$D" --consumer c --once --exec 'cat >> "$OUT/got"'
	cmp "$OUT/got" "$T/new.lp"
}

@test "truncate --after refuses to take back what a live consumer passed, unless told to rewind it; undo puts it back (LSN boundary)" {
	export OUT=$T/out
	mkdir "$OUT"
	# LSN 1-10: ten entries of 30 points; LSN 11 the CLOSE
	"$GEN" 300 > "$T/a.lp"
	"$W" -q write -d "$D" --batch 30 < "$T/a.lp"
	mkdir -p "$D/consumers"
	put() { printf 'walctl-consumer 1\nlsn=%s\nstate=live\n' "$2" > "$D/consumers/$1"; }
	# a cursor at the LSN, or one below it: nothing it passed is taken back
	for at in 5 6; do
		put c "$at"
		run "$W" truncate -d "$D" --after 6
		[ "$status" -eq 0 ] || { echo "cursor $at: $output"; false; }
	done
	# one past it: refused, naming the consumer, and nothing changes
	put c 7
	put d 11
	cp -r "$D" "$T/before"
	run --separate-stderr "$W" truncate -d "$D" --after 6 --apply
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"consumers have handed on entries after LSN 6, which truncating takes back"*"'c' (cursor LSN 7) 'd' (cursor LSN 11); pass --rewind-consumers"* ]]
	diff -r -x LOCK "$T/before" "$D"
	# told to rewind: recorded in the MANIFEST, cursors at 6
	run "$W" truncate -d "$D" --after 6 --rewind-consumers --format json
	jq -e '.consumers_rewound == [{"name": "c", "cursor_lsn": 7, "rewound_to": 6}, {"name": "d", "cursor_lsn": 11, "rewound_to": 6}]' <<< "$output"
	run "$W" truncate -d "$D" --after 6 --rewind-consumers --apply
	[ "$status" -eq 0 ]
	[[ "$output" == *"consumer 'c' was rewound from cursor LSN 7 to LSN 6"* ]]
	[ "$(grep '^lsn=' "$D/consumers/c")" = "lsn=6" ]
	[ "$(grep '^lsn=' "$D/consumers/d")" = "lsn=6" ]
	stamp=$(ls "$D/quarantine")
	grep -q '^file=consumers/d op=rewind .* lsn=7-11 rewound_to=6 ' "$D/quarantine/$stamp/MANIFEST"
	# undo puts the WAL and the cursors back
	cp -r "$D" "$T/rewound"
	run "$W" recover -d "$D" --undo "$stamp" --apply
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	diff -r -x quarantine -x LOCK "$T/before" "$D"
	# a consumer that delivered on since the rewind: undo refuses
	rm -rf "$D"
	cp -r "$T/rewound" "$D"
	put c 8
	run "$W" recover -d "$D" --undo "$stamp" --apply
	[ "$status" -eq 4 ]
	[[ "$output" == *"consumer 'c' is at LSN 8, not LSN 6 where the repair rewound it"* ]]
	# rewound, a consumer gets the new entries, past the LSNs taken back
	rm -rf "$D"
	cp -r "$T/rewound" "$D"
	"$GEN" 100 | tail -n 20 > "$T/new.lp"
	"$W" -q write -d "$D" < "$T/new.lp"
	run --separate-stderr "$W" ship -d "$D" --consumer d --once --metrics-file "$T/m.prom" --exec 'cat >> "$OUT/d"'
	[ "$status" -eq 0 ]
	cmp "$OUT/d" "$T/new.lp"
	# and it says what it passed: the LSNs the truncate took back, a known loss
	[[ "$stderr" == *'level="warn" msg="passed a known loss" consumer="d" first_lsn="7" last_lsn="11" reason="removed by truncate --after 6'* ]]
	grep -q '^walctl_ship_known_losses_total{.*} 1$' "$T/m.prom"
	grep -q '^walctl_ship_lost_lsns_total{.*} 5$' "$T/m.prom"
}

@test "which WAL is this one: a copied segment cannot outvote the WAL storage or the LSN chain names" {
	# a young WAL: one segment of 300 points, from LSN 1
	"$GEN" 300 > "$T/ours.lp"
	"$W" -q write -d "$D" < "$T/ours.lp"
	# another WAL's full segment from its middle, copied in
	"$GEN" 20000 | "$W" -q write -d "$T/other" --batch 500 --max-segment-size 256k
	foreign=$(ls "$T/other/wal" | sed -n 3p)
	[ "$(stat -c %s "$T/other/wal/$foreign")" -gt "$(stat -c %s "$D/wal/0000000000000001.wal")" ]
	cp "$T/other/wal/$foreign" "$D/wal/"
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"segment '$foreign' offset 0: segment belongs to another WAL"* ]]
	run "$W" recover -d "$D" --mode salvage --apply
	[ "$status" -eq 1 ] || { echo "$output"; false; }
	[ "$(ls "$D/wal")" = "0000000000000001.wal" ]
	[ -f "$D/quarantine/$(ls "$D/quarantine")/$foreign" ]
	"$W" dump -d "$D" --format lp | cmp - "$T/ours.lp"
	# two WALs that both chain from LSN 1, one segment each (another's
	# first, copied in under a lower name): the larger is this one
	rm -rf "$D" "$T/small"
	"$W" -q write -d "$D" < "$T/ours.lp"
	printf 'x\ny\n' | "$W" -q write -d "$T/small" --input raw
	cp "$T/small/wal/0000000000000001.wal" "$D/wal/0000000000000000.wal"
	run "$W" recover -d "$D" --mode salvage --apply
	[ "$status" -eq 1 ] || { echo "$output"; false; }
	[[ "$output" == *"remove segment '0000000000000000.wal'"*"it belongs to another WAL"* ]]
	"$W" dump -d "$D" --format lp | cmp - "$T/ours.lp"
	# with storage: the WAL its partitions name is this one, whatever the
	# count; here its first segments were reclaimed, so that no chain from
	# LSN 1 speaks for it, and the copied segments outnumber its own
	rm -rf "$D"
	"$GEN" 30000 | tail -n 6000 > "$T/ours2.lp"
	"$W" -q serve -d "$D" --max-segment-size 64k --keep-segments 1 --buffer-points 1000 < "$T/ours2.lp"
	[ "$(ls "$D/wal" | head -n 1)" != 0000000000000001.wal ]
	n=$(ls "$D/wal" | wc -l)
	# (under names the WAL does not use: a copy over one of its segments
	# would leave storage's WAL without a segment, which is refused)
	for f in $(ls "$T/other/wal" | grep -vxF -f <(ls "$D/wal") | sed -n "2,$((n + 2))p"); do cp "$T/other/wal/$f" "$D/wal/"; done
	[ "$(ls "$D/wal" | wc -l)" -eq $((2 * n + 1)) ]
	run "$W" recover -d "$D" --mode salvage --apply
	[ "$status" -eq 1 ] || { echo "$output"; false; }
	"$W" dump -d "$D" --format lp | cmp - "$T/ours2.lp"
	# partitions that name two WALs: a salvage refuses to choose, naming both
	"$GEN" 100 | "$W" -q serve -d "$T/third"
	cp "$T/third/data/default/"*.part "$D/data/default/0000000000000100-0000000000000100.part"
	ours=$("$W" verify -d "$D" --format json | jq -r .wal_id)
	theirs=$("$W" verify "$T/third" --format json | jq -r .wal_id)
	run --separate-stderr "$W" recover -d "$D" --mode salvage --apply
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"the evidence of which WAL this is conflicts: storage names WAL $ours, another partition names WAL $theirs"* ]]
}

@test "a sealed newest segment proves its successor existed: deleting the newest segment is damage, an interrupted rotation is not" {
	# ten entries of 100 points, one segment each: LSN 1 POINTS 2 SEAL in
	# 0000000000000001.wal ... LSN 19 POINTS 20 CLOSE in 0000000000000013.wal
	"$GEN" 1000 > "$T/a.lp"
	"$W" -q write -d "$D" --batch 100 --max-segment-size 16k < "$T/a.lp"
	[ "$(ls "$D/wal" | tail -n 2 | tr '\n' ' ')" = "0000000000000011.wal 0000000000000013.wal " ]
	[ "$(frames | tail -n 3 | tr '\n' ' ')" = "18 seal 19 points 20 close " ]
	cp -r "$D" "$T/base"
	# the newest segment deleted: the SEAL of the one before it shows LSN 19
	rm "$D/wal/0000000000000013.wal"
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 4 ] || { echo "$stderr"; false; }
	[[ "$stderr" == *"the WAL ends at LSN 18 but the SEAL that ends segment '0000000000000011.wal' shows LSN 19: LSN 19-19 are missing from the WAL [damage]"* ]]
	run "$W" verify -d "$D" --format json
	jq -e '.status == "damaged" and (.findings[] | select(.kind == "missing-end") | .first_lsn == 19 and .last_lsn == 19)' <<< "$output"
	# writers refuse; nothing changes
	cp -r "$D" "$T/deleted"
	run --separate-stderr "$W" write -d "$D" < /dev/null
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"the WAL ends at LSN 18 but the SEAL that ends segment '0000000000000011.wal' shows LSN 19"*"refusing to append"* ]]
	run -4 "$W" serve -d "$D" < /dev/null
	diff -r -x LOCK "$T/deleted" "$D"
	# a salvage records LSN 19 as a known loss; the next entry comes after it
	run "$W" recover -d "$D" --mode salvage --apply
	[ "$status" -eq 1 ] || { echo "$output"; false; }
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	"$GEN" 100 | "$W" -q write -d "$D"
	[ "$(frames | grep -c '^19 points')" -eq 0 ]
	[ "$(frames | awk '$2 == "points"' | tail -n 1 | cut -d' ' -f1)" -gt 19 ]
	# the newest segment there but empty (its entries cut): it existed, and
	# the WAL's end is its own business (nothing shows LSN 19): clean
	rm -rf "$D" && cp -r "$T/base" "$D"
	"$WALFIX" cut "$D/wal/0000000000000013.wal" 64
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	# the segments after the SEAL removed by a repair: a known loss, clean
	rm -rf "$D" && cp -r "$T/base" "$D"
	"$W" -q truncate -d "$D" --after 18 --apply
	[ "$(ls "$D/wal" | tail -n 1)" = "0000000000000011.wal" ]
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$stderr" == *"LSN 19-20 were removed by truncate --after 18"* ]]
	# exactly the one LSN after the SEAL removed (the newest segment held
	# LSN 19 alone): a known loss still
	rm -rf "$D" && cp -r "$T/base" "$D"
	"$WALFIX" cut "$D/wal/0000000000000013.wal" "$(offset_of_lsn 20)"
	"$W" -q truncate -d "$D" --after 18 --apply
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$stderr" == *"LSN 19-19 were removed by truncate --after 18"* ]]
	# a rotation cut off after the SEAL, before its successor took its
	# name (the successor waits as NAME.next): not damage; the next writer
	# finishes the rotation and goes on at LSN 19
	rm -rf "$D" && cp -r "$T/base" "$D"
	"$WALFIX" cut "$D/wal/0000000000000013.wal" 64
	mv "$D/wal/0000000000000013.wal" "$D/wal/0000000000000013.wal.next"
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	"$GEN" 100 | "$W" -q write -d "$D"
	[ "$(ls "$D/wal" | tail -n 2 | tr '\n' ' ')" = "0000000000000011.wal 0000000000000013.wal " ]
	[ "$(frames | tail -n 3 | tr '\n' ' ')" = "18 seal 19 points 20 close " ]
	# cut off before the SEAL: the successor waiting as NAME.next holds
	# nothing; the next writer removes it and goes on in the old segment
	rm -rf "$D" && cp -r "$T/base" "$D"
	"$WALFIX" cut "$D/wal/0000000000000011.wal" "$(offset_of_lsn 18)"
	"$WALFIX" cut "$D/wal/0000000000000013.wal" 64
	mv "$D/wal/0000000000000013.wal" "$D/wal/0000000000000013.wal.next"
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	"$GEN" 100 | "$W" -q write -d "$D"
	[ "$(ls "$D/wal" | tail -n 1)" = "0000000000000011.wal" ]
	[ "$(frames | tail -n 3 | tr '\n' ' ')" = "17 points 18 points 19 close " ]
}

@test "a partition no checkpoint names is not storage's: verify reports it, readers leave it out, recover sets it aside (LSN boundary at the WAL's first LSN)" {
	# four serve runs of 100 points: partitions 1-1, 5-5, 9-9, d-d, each
	# named by the CHECKPOINT after it; segments from LSN 1, 5, 9 and 13
	for i in 1 2 3 4; do "$GEN" 100 | "$W" -q serve -d "$D" --max-segment-size 16k --keep-segments 100; done
	[ "$(ls "$D/wal" | tr '\n' ' ')" = "0000000000000001.wal 0000000000000005.wal 0000000000000009.wal 000000000000000d.wal " ]
	# the first segment reclaimed (CHECKPOINT 6 covers it): the CHECKPOINT
	# naming partition 1-1 is gone, so the WAL cannot vouch for what ends
	# below its first LSN, 5
	rm "$D/wal/0000000000000001.wal"
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	"$W" dump -d "$D" --format lp > "$T/base.lp"
	[ "$(wc -l < "$T/base.lp")" -eq 400 ]
	cp -r "$D" "$T/base"
	# a copy under another database that ends one segment below the
	# WAL's first LSN: no CHECKPOINT left can say it is not storage's
	mkdir "$D/data/other"
	cp "$D/data/default/0000000000000001-0000000000000001.part" "$D/data/other/"
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$("$W" dump -d "$D" --format lp | wc -l)" -eq 500 ]
	# copies that end at the WAL's first LSN and after it: a CHECKPOINT
	# after the first LSN would name them; none does
	for p in 0000000000000005-0000000000000005 0000000000000009-0000000000000009; do
		rm -rf "$D" && cp -r "$T/base" "$D"
		mkdir "$D/data/other"
		cp "$D/data/default/$p.part" "$D/data/other/"
		run --separate-stderr "$W" verify -d "$D"
		[ "$status" -eq 4 ] || { echo "$p: $stderr"; false; }
		[[ "$stderr" == *"partition 'data/other/$p.part' (LSN "*") is named by no checkpoint (the WAL holds every checkpoint from LSN 5 on) and is not what the WAL holds of its LSNs: its points are not storage's and no reader shows them [damage]"* ]]
		run "$W" verify -d "$D" --format json
		jq -e --arg f "data/other/$p.part" '.status == "damaged" and ([.findings[] | select(.kind == "unnamed-partition")] | length == 1 and .[0].segment == $f)' <<< "$output"
		# dump leaves it out (every stored point once) and says why it exits 4;
		# ship hands on nothing from storage until it is dealt with
		run --separate-stderr "$W" dump -d "$D" --format lp
		[ "$status" -eq 4 ]
		[ "${#lines[@]}" -eq 400 ]
		printf '%s\n' "${lines[@]}" | cmp - "$T/base.lp"
		[[ "$stderr" == *"storage: partition 'other/$p.part' is named by no checkpoint"* ]]
		"$W" -q consumers -d "$D" add c --from-start
		run --separate-stderr "$W" ship -d "$D" --consumer c --once --exec "cat >> $T/shipped"
		[ "$status" -eq 4 ]
		[[ "$stderr" == *"storage: partition 'other/$p.part' is named by no checkpoint"* ]]
		[ ! -s "$T/shipped" ]
		# recover moves it to the quarantine, and verify is clean again
		run "$W" recover -d "$D"
		[ "$status" -eq 4 ]
		[[ "$output" == *"set-aside partition 'data/other/$p.part'"*"named by no checkpoint"* ]]
		run "$W" recover -d "$D" --apply
		[ "$status" -eq 1 ] || { echo "$output"; false; }
		[ ! -e "$D/data/other/$p.part" ]
		cmp "$D/quarantine/$(ls "$D/quarantine")/data%2Fother%2F$p.part" "$D/data/default/$p.part"
		run "$W" verify -d "$D"
		[ "$status" -eq 0 ] || { echo "$output"; false; }
		"$W" -q ship -d "$D" --consumer c --once --exec "cat >> $T/shipped"
		cmp "$T/base.lp" "$T/shipped"
		"$W" dump -d "$D" --format lp | cmp - "$T/base.lp"
		rm "$T/shipped"
	done
	# a partition whose CHECKPOINT a salvage gave up (its payload damaged),
	# which a later CHECKPOINT passes: named by none, but byte for byte what
	# the WAL holds of its LSNs: storage's
	rm -rf "$D"
	"$GEN" 100 > "$T/a.lp"
	"$GEN" 200 | tail -n 100 > "$T/b.lp"
	"$W" -q serve -d "$D" < "$T/a.lp"
	"$W" -q serve -d "$D" < "$T/b.lp"
	[ "$(frames | tr '\n' ' ')" = "1 points 2 checkpoint 3 close 4 points 5 checkpoint 6 close " ]
	"$WALFIX" flip "$D/wal/0000000000000001.wal" $(($(offset_of_lsn 2) + 40)) 0
	run "$W" recover -d "$D" --mode salvage --apply
	[ "$status" -eq 1 ] || { echo "$output"; false; }
	[ -f "$D/data/default/0000000000000001-0000000000000001.part" ]
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	"$W" dump -d "$D" --format lp 2> /dev/null | cmp - <(cat "$T/a.lp" "$T/b.lp")
	# and one under another database, which the WAL does not hold there, is not
	mkdir "$D/data/other"
	cp "$D/data/default/0000000000000001-0000000000000001.part" "$D/data/other/"
	run -4 "$W" verify -d "$D"
}

@test "a salvage that gives up LSNs a live consumer handed on refuses, naming it, unless told to rewind; undo refuses for consumers past the WAL's old end (LSN boundary)" {
	export OUT=$T/out
	mkdir "$OUT"
	# LSN 1-10: ten entries of 30 points, LSN 11 the CLOSE; LSN 5's payload damaged
	"$GEN" 300 > "$T/a.lp"
	"$W" -q write -d "$D" --batch 30 < "$T/a.lp"
	"$WALFIX" flip "$D/wal/0000000000000001.wal" $(($(offset_of_lsn 5) + 40)) 0
	mkdir -p "$D/consumers"
	put() { printf 'walctl-consumer 1\nlsn=%s\nstate=live\n' "$2" > "$D/consumers/$1"; }
	cp -r "$D" "$T/damaged"
	# a cursor one below the LSN given up: nothing it handed on is taken out
	put c 4
	run "$W" recover -d "$D" --mode salvage
	[ "$status" -eq 4 ]
	[[ "$output" != *"refused"* ]] || { echo "$output"; false; }
	# at it, or past it: refused, naming the consumers, and nothing changes
	for at in 5 11; do
		put c 4
		put d "$at"
		cp -r "$D" "$T/before"
		run --separate-stderr "$W" recover -d "$D" --mode salvage --apply
		[ "$status" -eq 4 ]
		[[ "$stderr" == *"consumers have handed on entries after LSN 4, which this salvage gives up (their sinks may hold the only copy): 'd' (cursor LSN $at); pass --rewind-consumers to rewind them to LSN 4"* ]]
		diff -r -x LOCK "$T/before" "$D"
		rm -rf "$T/before"
	done
	# told to rewind: the cursor goes to 4, recorded in the MANIFEST
	run "$W" recover -d "$D" --mode salvage --rewind-consumers --apply
	[ "$status" -eq 1 ] || { echo "$output"; false; }
	[[ "$output" == *"consumer 'd' was rewound from cursor LSN 11 to LSN 4"* ]]
	[ "$(grep '^lsn=' "$D/consumers/d")" = "lsn=4" ]
	[ "$(grep '^lsn=' "$D/consumers/c")" = "lsn=4" ]
	stamp=$(ls "$D/quarantine")
	grep -q '^file=consumers/d op=rewind .* lsn=5-11 rewound_to=4 ' "$D/quarantine/$stamp/MANIFEST"
	cp -r "$D" "$T/salvaged"
	# the consumer passes the loss, saying so, and hands on what follows
	run --separate-stderr "$W" ship -d "$D" --consumer d --once --metrics-file "$T/m.prom" --exec 'cat >> "$OUT/d"'
	[ "$status" -eq 0 ]
	sed -n '151,300p' "$T/a.lp" | cmp - "$OUT/d"
	[[ "$stderr" == *'level="warn" msg="passed a known loss" consumer="d" first_lsn="5" last_lsn="5" reason="lost to damage; given up by recover --mode salvage"'* ]]
	grep -q '^walctl_ship_known_losses_total{.*} 1$' "$T/m.prom"
	grep -q '^walctl_ship_lost_lsns_total{.*} 1$' "$T/m.prom"
	# a cursor at the LOSS has passed it already: not told again
	put d 5
	run --separate-stderr "$W" ship -d "$D" --consumer d --once --exec 'cat > /dev/null'
	[ "$status" -eq 0 ]
	[[ "$stderr" != *"known loss"* ]]
	[[ "$stderr" == *'msg="stopped" consumer="d"'*'points="150"'* ]]
	# the WAL ended at LSN 11 before the salvage, which wrote past it (its
	# CHECKPOINT and CLOSE): a consumer at 11 is untouched by an undo, one
	# past it handed on what the undo takes out
	end=$("$W" verify -d "$D" --format json | jq .last_lsn)
	[ "$end" -gt 11 ]
	for at in 11 12 "$end"; do
		rm -rf "$D" && cp -r "$T/salvaged" "$D"
		put c "$at"
		run --separate-stderr "$W" recover -d "$D" --undo "$stamp" --apply
		if [ "$at" -eq 11 ]; then
			[ "$status" -eq 0 ] || { echo "$stderr"; false; }
			[ "$(grep '^lsn=' "$D/consumers/c")" = "lsn=11" ]
			continue
		fi
		[ "$status" -eq 4 ]
		[[ "$stderr" == *"consumers have handed on entries after LSN 11, which undoing repair '$stamp' takes back: 'c' (cursor LSN $at); pass --rewind-consumers"* ]]
		diff -r -x LOCK -x consumers "$T/salvaged" "$D"
		[ "$(grep '^lsn=' "$D/consumers/c")" = "lsn=$at" ]
	done
	# told to rewind: c goes back to 11 first; d gets its cursor back
	run "$W" recover -d "$D" --undo "$stamp" --rewind-consumers --apply
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[[ "$output" == *"consumer 'c' was rewound from cursor LSN $end to LSN 11"* ]]
	[ "$(grep '^lsn=' "$D/consumers/c")" = "lsn=11" ]
	[ "$(grep '^lsn=' "$D/consumers/d")" = "lsn=11" ]
	diff -r -x quarantine -x LOCK -x consumers -x data "$T/damaged" "$D"
	[ -z "$(find "$D/data" -type f)" ]
}
