#!/usr/bin/env bats
# truncate, recover and compact: plans that change nothing, repairs that
# keep every removed byte, undo, and storage that never loses a point.
load helpers

snapshot() { (cd "$1" && find . -type f ! -path './quarantine/*' ! -name LOCK -print0 | sort -z | xargs -0 md5sum); }

@test "without --apply nothing changes; the exit status is the class of what would be fixed" {
	for f in torn-tail payload-flip-sealed clean; do
		cp -r "$ROOT/testdata/$f" "$T/$f"
		before=$(snapshot "$T/$f")
		case $f in torn-tail) want=2 ;; payload-flip-sealed) want=4 ;; clean) want=0 ;; esac
		run "$W" recover -d "$T/$f" --mode salvage
		[ "$status" -eq "$want" ] || { echo "$f: recover plan exit $status, want $want"; false; }
		run "$W" truncate -d "$T/$f" --torn-tail
		[ "$status" -eq "$want" ] || { echo "$f: truncate plan exit $status, want $want"; false; }
		run "$W" compact -d "$T/$f" --keep 1
		[ "$status" -eq "$want" ] || { echo "$f: compact plan exit $status, want $want"; false; }
		[ "$(snapshot "$T/$f")" = "$before" ]
		[ ! -e "$T/$f/quarantine" ]
	done
}

# The LSNs each fixture's salvage must record as lost, from testdata/README.md
# (foreign-segment is left out: the LSNs the foreign segment displaced are
# not recorded in its MANIFEST line).
lost_lsns() {
	case $1 in
	bad-magic | future-version) echo 1-39 ;;
	duplicate-lsn | huge-length) echo 45-45 ;;
	lsn-gap) echo 61-62 ;;
	missing-segment) echo 40-80 ;;
	payload-flip-sealed) echo 20-20 ;;
	payload-flip-vouched) echo 50-50 ;;
	*) echo ;;
	esac
}

@test "every fixture: salvage leaves a clean WAL, keeps every removed byte, a second run does nothing, undo restores it byte for byte" {
	checked=0
	for dir in "$ROOT"/testdata/*/; do
		name=$(basename "$dir")
		cp -r "$dir" "$T/$name"
		run --separate-stderr "$W" recover -d "$T/$name" --mode salvage --apply
		if [ "$name" = clean ]; then
			[ "$status" -eq 0 ]
			[ ! -e "$T/$name/quarantine" ]
			continue
		fi
		[ "$status" -eq 1 ] || { echo "$name: salvage exit $status: $output $stderr"; false; }
		run "$W" verify -d "$T/$name"
		[ "$status" -eq 0 ] || { echo "$name: verify after salvage: $status $output"; false; }
		stamp=$(ls "$T/$name/quarantine")
		[ "$(wc -w <<< "$stamp")" -eq 1 ]
		n=$(check_manifest "$T/$name/quarantine/$stamp" "$dir") || { echo "$name: $n"; false; }
		[ "$n" -ge 1 ] || { echo "$name: MANIFEST records no file"; false; }
		if [ "$name" != foreign-segment ]; then
			[ "$(mf_lsns "$T/$name/quarantine/$stamp")" = "$(lost_lsns "$name")" ] ||
				{ echo "$name: MANIFEST records LSNs '$(mf_lsns "$T/$name/quarantine/$stamp")', want '$(lost_lsns "$name")'"; false; }
		fi
		run "$W" recover -d "$T/$name" --mode salvage --apply
		[ "$status" -eq 0 ]
		[[ "$output" == *"nothing to do"* ]]
		"$W" -q recover -d "$T/$name" --undo "$stamp" --apply
		diff -r "$T/$name/wal" "$dir/wal" || { echo "$name: undo is not byte-identical"; false; }
		run "$W" recover -d "$T/$name" --undo "$stamp" --apply
		[ "$status" -eq 0 ]
		[[ "$output" == *"already undone"* ]]
		checked=$((checked + 1))
	done
	[ "$checked" -eq 16 ]
}

@test "the quarantine MANIFEST names file, offsets, sha256, LSN range and reason; the saved bytes match" {
	cp -r "$ROOT/testdata/payload-flip-vouched" "$D"
	run "$W" -q recover -d "$D" --mode salvage --apply
	[ "$status" -eq 1 ]
	q=$(ls -d "$D"/quarantine/*)
	line=$(grep '^file=wal/0000000000000028.wal op=rewrite' "$q/MANIFEST")
	[[ "$line" == *" offset=0 length=2326 saved=0000000000000028.wal saved_sha256="* ]]
	[[ "$line" == *" lsn=50-50 reason=\""* ]]
	want=$(sed 's/.*saved_sha256=\([0-9a-f]*\).*/\1/' <<< "$line")
	[ "$(sha256sum < "$q/0000000000000028.wal" | cut -d' ' -f1)" = "$want" ]
	[ "$(sha256sum < "$ROOT/testdata/payload-flip-vouched/wal/0000000000000028.wal" | cut -d' ' -f1)" = "$want" ]
	[ "$(check_manifest "$q" "$ROOT/testdata/payload-flip-vouched")" -eq 1 ]
}

@test "a cut's MANIFEST line: the saved tail is exactly the bytes cut, with their own digest" {
	cp -r "$ROOT/testdata/garbage-tail" "$D"
	run "$W" -q truncate -d "$D" --torn-tail --apply
	[ "$status" -eq 1 ]
	q=$(ls -d "$D"/quarantine/*)
	line=$(grep '^file=wal/0000000000000028.wal op=cut' "$q/MANIFEST")
	[[ "$line" == *" offset=2286 length=500 saved=0000000000000028.wal@2286 "* ]]
	[ "$(check_manifest "$q" "$ROOT/testdata/garbage-tail")" -eq 1 ]
	[ "$(stat -c %s "$D/wal/0000000000000028.wal")" -eq 2286 ]
}

@test "undo is refused (4) once the WAL has moved on" {
	cp -r "$ROOT/testdata/torn-tail" "$D"
	run "$W" -q recover -d "$D" --apply
	[ "$status" -eq 1 ]
	stamp=$(ls "$D/quarantine")
	"$W" -q write -d "$D" --input raw <<< 'more'
	run --separate-stderr "$W" recover -d "$D" --undo "$stamp" --apply
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"has moved on since repair '$stamp'"* ]]
}

@test "torn-tail sweep: cut at every byte of the last 3 frames, recover --apply keeps exactly the whole frames" {
	for i in $(seq 1 40); do printf 'entry-%04d\n' "$i"; done | "$W" -q write -d "$T/orig" --input raw --batch 1
	seg=$T/orig/wal/0000000000000001.wal
	close=$(offset_of "$T/orig" 41)
	"$WALFIX" cut "$seg" "$close"                      # as if the writer died before closing
	first=$(offset_of "$T/orig" 38)
	ends=("$(offset_of "$T/orig" 39)" "$(offset_of "$T/orig" 40)" "$close")   # where LSN 38, 39, 40 end
	for cut in $(seq "$first" "$close"); do
		rm -rf "$D"
		cp -r "$T/orig" "$D"
		"$WALFIX" cut "$D/wal/0000000000000001.wal" "$cut"
		# exactly the entries whose frames the cut left whole survive
		keep=37
		for end in "${ends[@]}"; do [ "$end" -le "$cut" ] && keep=$((keep + 1)); done
		run "$W" -q recover -d "$D" --apply
		want_status=1                                            # a torn tail cut
		for end in "$first" "${ends[@]}"; do [ "$end" -eq "$cut" ] && want_status=0; done   # none
		[ "$status" -eq "$want_status" ] || { echo "cut at $cut: exit $status, want $want_status"; false; }
		got=$("$W" dump -d "$D" --format raw)
		want=$(seq 1 "$keep" | awk '{printf "entry-%04d\n", $1}')
		[ "$got" = "$want" ] || { echo "cut at $cut: got $(grep -c . <<< "$got") entries, want $keep"; false; }
		run "$W" verify -d "$D"
		[ "$status" -eq 0 ]
	done
}

@test "recover replays points into storage and checkpoints; the data directory dumps every point exactly once" {
	"$GEN" 12000 > "$T/in.lp"
	head -n 5000 "$T/in.lp" | "$W" -q write -d "$D" --batch 1000
	"$W" -q recover -d "$D" --apply
	tail -n +5001 "$T/in.lp" | "$W" -q write -d "$D" --batch 1000
	[ -n "$(ls "$D"/data/default/*.part)" ]
	"$W" dump -d "$D" --format lp | cmp - "$T/in.lp"
	run "$W" dump "$D/wal" --type checkpoint --format jsonl
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "${lines[0]}" == *'"lsn": 7,'*'"through_lsn": 6,'* ]]
	run "$W" verify --deep -d "$D"
	[ "$status" -eq 0 ]
	run --separate-stderr "$W" recover -d "$D" --emit lp
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"emitted 7000 points after checkpoint LSN 6"* ]]
	[ "${#lines[@]}" -eq 7000 ]
	[ "${lines[0]}" = "$(sed -n 5001p "$T/in.lp")" ]
}

@test "compact never removes an entry that is not in durable storage" {
	"$GEN" 30000 > "$T/in.lp"
	split -l 10000 -d "$T/in.lp" "$T/part."
	for p in "$T"/part.00 "$T"/part.01; do
		"$W" -q write -d "$D" --batch 500 --max-segment-size 128k "$p"
		"$W" -q recover -d "$D" --apply
	done
	"$W" -q write -d "$D" --batch 500 --max-segment-size 128k "$T/part.02"   # not checkpointed
	ckpt=$("$W" dump -d "$D/wal" --type checkpoint --format jsonl | tail -n 1 | sed 's/.*"through_lsn": \([0-9]*\).*/\1/')
	last=$("$W" dump -d "$D/wal" --format jsonl | tail -n 1 | sed 's/.*"lsn": \([0-9]*\),.*/\1/')
	cp -r "$D" "$T/before"
	run "$W" compact -d "$D" --keep 1 --apply
	[ "$status" -eq 0 ]
	q=$(ls -d "$D"/quarantine/* | tail -n 1)
	[ "$(check_manifest "$q" "$T/before")" -ge 1 ]
	grep -q ' op=remove ' "$q/MANIFEST"
	# every LSN above the checkpoint is still in the WAL
	"$W" dump "$D/wal" --format jsonl | sed 's/.*"lsn": \([0-9]*\),.*/\1/' > "$T/lsns"
	for l in $(seq $((ckpt + 1)) "$last"); do grep -qx "$l" "$T/lsns" || { echo "LSN $l removed"; false; }; done
	"$W" dump -d "$D" --format lp | cmp - "$T/in.lp"
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
	before=$(ls "$D/wal" | wc -l)
	rm -rf "$T/before"
	cp -r "$D" "$T/before"
	run "$W" compact -d "$D" --keep 1 --merge --max-segment-size 1M --apply
	[ "$status" -eq 0 ]
	[[ "$output" == *"merge"* ]]
	after=$(ls "$D/wal" | wc -l)
	[ "$after" -lt "$before" ] || { echo "--merge left $after of $before segments"; false; }
	# the merged segments' bytes are in the quarantine
	q=$(ls -td "$D"/quarantine/* | head -n 1)
	grep -q ' op=merge ' "$q/MANIFEST"
	[ "$(check_manifest "$q" "$T/before")" -ge 2 ]
	"$W" dump "$D/wal" --format jsonl | sed 's/.*"lsn": \([0-9]*\),.*/\1/' > "$T/lsns2"
	for l in $(seq $((ckpt + 1)) "$last"); do grep -qx "$l" "$T/lsns2" || { echo "LSN $l lost by --merge"; false; }; done
	"$W" dump -d "$D" --format lp | cmp - "$T/in.lp"
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
}

@test "truncate --after drops every later entry into quarantine; --torn-tail refuses damage" {
	for i in $(seq 1 30); do echo "line $i"; done | "$W" -q write -d "$D" --input raw --batch 1 --max-segment-size 4k
	run "$W" truncate -d "$D" --after 12 --apply
	[ "$status" -eq 0 ]
	[ "$("$W" dump -d "$D" --format raw)" = "$(seq 1 12 | sed 's/^/line /')" ]
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
	run "$W" truncate -d "$D" --torn-tail --apply
	[ "$status" -eq 0 ]
	[[ "$output" == *"nothing to do"* ]]
	cp -r "$ROOT/testdata/payload-flip-sealed" "$T/bad"
	run --separate-stderr "$W" truncate -d "$T/bad" --torn-tail --apply
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"recover --mode salvage"* ]]
	run "$W" truncate -d "$D"
	[ "$status" -eq 16 ]
}

@test "plans in JSON: schema walctl-plan/2" {
	cp -r "$ROOT/testdata/missing-segment" "$D"
	"$W" recover -d "$D" --mode salvage --format json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["schema"] == "walctl-plan/2" and d["verify_exit"] == 4 and d["refused"] is None and d["applied"] is False
assert d["lost"] == [{"first_lsn": 40, "last_lsn": 80}], d["lost"]
a = d["actions"][0]
assert a["op"] == "rewrite" and a["file"] == "0000000000000051.wal" and a["new_name"] == "0000000000000028.wal", a'
}

@test "verify finds a damaged or missing partition named by a checkpoint" {
	"$GEN" 3000 | "$W" -q write -d "$D"
	"$W" -q recover -d "$D" --apply
	part=$(ls "$D"/data/default/*.part)
	"$WALFIX" flip "$part" 200 3
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"names partition 'default/"*"block checksum mismatch"* ]]
	rm "$part"
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"which is missing"* ]]
}

@test "serve replays nothing past a checkpoint that names a missing partition, and names it (4)" {
	"$GEN" 3000 | "$W" -q write -d "$D" --batch 1000
	"$W" -q recover -d "$D" --apply
	"$GEN" 3000 5 | "$W" -q write -d "$D" --batch 1000
	part=$(ls "$D"/data/default/)
	rm "$D/data/default/$part"
	run --separate-stderr "$W" serve -d "$D" < /dev/null
	[ "$status" -eq 4 ]
	[[ "$stderr" == *'msg="damage to what a replay would store"'*"names partition 'default/$part', which is missing"* ]]
	[ -z "$(ls "$D"/data/default/)" ]
}

@test "a second repair while a writer holds the lock fails at once (8)" {
	cp -r "$ROOT/testdata/torn-tail" "$D"
	(sleep 2; echo x) | "$W" -q write -d "$D" --input raw &
	holder=$!
	for _ in $(seq 50); do [ -s "$D/LOCK" ] && break; sleep 0.1; done
	run --separate-stderr "$W" recover -d "$D" --apply
	wait "$holder"
	[ "$status" -eq 8 ]
	[[ "$stderr" == *"locked by pid $holder"* ]]
}

@test "a CHECKPOINT claiming LSNs past its own is damage: verify 4, compact removes nothing, salvage gives it up" {
	"$GEN" 3000 > "$T/a.lp"
	"$GEN" 3000 7 > "$T/b.lp"
	"$W" -q write -d "$D" --batch 1000 --max-segment-size 200k "$T/a.lp"
	"$W" -q recover -d "$D" --apply
	"$W" -q write -d "$D" --batch 1000 --max-segment-size 200k "$T/b.lp"   # not checkpointed
	line=$("$W" dump "$D/wal" --type checkpoint --format jsonl)
	lsn=$(sed 's/.*"lsn": \([0-9]*\),.*/\1/' <<< "$line")
	seg=$(sed 's/.*"segment": "\([^"]*\)".*/\1/' <<< "$line")
	off=$(sed 's/.*"offset": \([0-9]*\),.*/\1/' <<< "$line")
	[ "$("$W" dump "$D/wal" --format jsonl | tail -n 1 | sed 's/.*"lsn": \([0-9]*\),.*/\1/')" -le 23 ]
	# the through LSN is the payload's second byte (a CBOR uint below 24): make it 23
	"$WALFIX" payload "$D/wal/$seg" "$off" 1 23
	[ "$("$W" dump "$D/wal" --type checkpoint --format jsonl | sed 's/.*"through_lsn": \([0-9]*\),.*/\1/')" = 23 ]
	cp -r "$D" "$T/before"
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"checkpoint LSN $lsn says storage holds everything through LSN 23, which is not before it"* ]]
	run --separate-stderr "$W" compact -d "$D" --keep 1 --apply
	[ "$status" -eq 4 ]
	diff -r "$D/wal" "$T/before/wal"
	# not trusted by readers either: every point still shows, from the WAL
	run -4 --separate-stderr "$W" dump -d "$D" --format lp
	cat "$T/a.lp" "$T/b.lp" | cmp - <(printf '%s\n' "${lines[@]}")
	run "$W" recover -d "$D" --mode salvage --apply
	[ "$status" -eq 1 ]
	[[ "$output" == *"lost: LSN $lsn-$lsn"* ]]
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
	cat "$T/a.lp" "$T/b.lp" | cmp - <("$W" dump -d "$D" --format lp)
}

@test "a partition replaced by another of the same WAL, or missing: verify and dump -d exit 4 naming it" {
	"$GEN" 3000 > "$T/a.lp"
	"$GEN" 3000 5 > "$T/b.lp"
	"$W" -q write -d "$D" --batch 1000 "$T/a.lp"
	"$W" -q recover -d "$D" --apply
	"$W" -q write -d "$D" --batch 1000 "$T/b.lp"
	"$W" -q recover -d "$D" --apply
	cat "$T/a.lp" "$T/b.lp" | cmp - <("$W" dump -d "$D" --format lp)
	first=$(ls "$D/data/default" | head -n 1)
	second=$(ls "$D/data/default" | tail -n 1)
	[ "$first" != "$second" ]
	cp "$D/data/default/$second" "$D/data/default/$first"
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"names partition 'default/$first', which partition '$first' holds LSN"*"so it should be named '$second'"* ]]
	run --separate-stderr "$W" dump -d "$D" --format lp
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"partition 'default/$first' holds LSN"*"not the LSNs its name says"* ]]
	# what is shown is right, if incomplete: never a point twice
	[ "$(printf '%s\n' "${lines[@]}" | sort | uniq -d | wc -l)" -eq 0 ]
	rm "$D/data/default/$first"
	run --separate-stderr "$W" dump -d "$D" --format lp
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"names partition 'default/$first', which is missing"* ]]
	[ "${#lines[@]}" -eq 3000 ]
	cmp "$T/b.lp" <(printf '%s\n' "${lines[@]}")
}

@test "a damaged partition above the checkpoint whose LSNs the WAL holds: set aside, stored again, undo puts it back" {
	"$GEN" 3000 > "$T/in.lp"
	"$W" -q write -d "$D" --batch 1000 "$T/in.lp"
	"$W" -q recover -d "$D" --apply
	part=$(ls "$D/data/default")
	cp "$D/data/default/$part" "$T/saved"
	"$W" -q recover -d "$D" --undo "$(ls "$D/quarantine")" --apply
	[ -z "$(ls "$D/data/default")" ]
	# back, but damaged: its points are not byte for byte the WAL's
	cp "$T/saved" "$D/data/default/$part"
	"$WALFIX" flip "$D/data/default/$part" 200 0
	cp "$D/data/default/$part" "$T/damaged"
	cp -r "$D" "$T/serve"
	# serve will not store the LSNs beside it: it names the repair
	run --separate-stderr "$W" serve -d "$T/serve" < /dev/null
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"partitions above the last checkpoint are not what the WAL holds for their LSNs"*'count="1"'*"walctl recover --apply -d $T/serve"* ]]
	cmp "$T/serve/data/default/$part" "$T/damaged"
	run --separate-stderr "$W" recover -d "$D"
	[ "$status" -eq 0 ]
	[[ "$output" == *"1. set-aside partition 'data/default/$part', LSN 1-3: above checkpoint LSN 0 and not what the WAL holds"* ]]
	cmp "$D/data/default/$part" "$T/damaged"
	cp -r "$D" "$T/before"
	run --separate-stderr "$W" recover -d "$D" --apply
	[ "$status" -eq 0 ]
	stamp=$(ls "$D/quarantine" | tail -n 1)   # stamps sort by time
	[ "$(check_manifest "$D/quarantine/$stamp" "$T/before")" = 1 ]
	grep -q "^file=data/default/$part op=set-aside .*lsn=1-3" "$D/quarantine/$stamp/MANIFEST"
	cmp "$D/quarantine/$stamp/data%2Fdefault%2F$part" "$T/damaged"
	cmp "$D/data/default/$part" "$T/saved"   # stored again, from the WAL
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
	cmp "$T/in.lp" <("$W" dump -d "$D" --format lp)
	run "$W" recover -d "$D" --undo "$stamp" --apply
	[ "$status" -eq 0 ]
	cmp "$D/data/default/$part" "$T/damaged"
	[ "$(ls "$D/data/default")" = "$part" ]
}

@test "a CRC-valid POINTS payload that does not decode: never stored; salvage gives it up as a recorded loss" {
	"$GEN" 3000 > "$T/in.lp"
	"$W" -q write -d "$D" --batch 1000 "$T/in.lp"
	off=$(offset_of "$D" 2)
	# a CBOR break byte in the middle of LSN 2's points, both CRCs recomputed
	"$WALFIX" payload "$D/wal/0000000000000001.wal" "$off" 60000 255
	cp -r "$D" "$T/serve"
	run --separate-stderr "$W" recover -d "$D" --apply
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"offset $off: points payload of LSN 2 does not decode"*"recover --mode salvage"* ]]
	[ -z "$(ls "$D"/data/default/ 2> /dev/null)" ]
	# nor emitted in silence: the points around it are, and it is damage
	run --separate-stderr "$W" recover -d "$D" --emit lp
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"offset $off: points payload of LSN 2 does not decode"*"recover --mode salvage"* ]]
	[ "${#lines[@]}" -eq 2000 ]
	run --separate-stderr "$W" serve -d "$T/serve" < /dev/null
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"offset=\"$off\" error=\"points payload of LSN 2 does not decode"*"recover --mode salvage"* ]]
	# what serve stored before it stopped holds no point of LSN 2
	for part in $(ls "$T"/serve/data/default/ 2> /dev/null); do
		first=$((16#${part%%-*})) last=${part#*-}
		last=$((16#${last%.part}))
		[ "$first" -gt 2 ] || [ "$last" -lt 2 ]
	done
	run "$W" recover -d "$D" --mode salvage --apply
	[ "$status" -eq 1 ]
	[[ "$output" == *"lost: LSN 2-2 (recorded in the WAL as a known loss)"* ]]
	run "$W" verify --deep -d "$D"
	[ "$status" -eq 0 ]
	# every point but LSN 2's thousand is there, from storage
	sed -n '1,1000p;2001,3000p' "$T/in.lp" | cmp - <("$W" dump -d "$D" --format lp)
}

@test "salvage never renames over a segment it has not saved: a header-only middle segment goes to the quarantine first" {
	cp -r "$ROOT/testdata/missing-segment" "$T/three"
	rm -rf "$T/three/quarantine"
	# missing-segment without the removal: put the middle segment back, header only
	head -c 64 "$ROOT/testdata/clean/wal/0000000000000028.wal" > "$T/three/wal/0000000000000028.wal"
	"$WALFIX" header "$T/three/wal/0000000000000028.wal" walid "0x$(od -An -tx8 -j16 -N8 "$T/three/wal/0000000000000001.wal" | tr -d ' ')"
	cp -r "$T/three" "$D"
	run "$W" recover -d "$D" --mode salvage --apply
	[ "$status" -eq 1 ]
	[[ "$output" == *"remove segment '0000000000000028.wal' (64 bytes)"* ]]
	q=$(ls -d "$D"/quarantine/*)
	grep -q '^file=wal/0000000000000028.wal op=remove ' "$q/MANIFEST"
	[ "$(check_manifest "$q" "$T/three")" -eq 2 ]
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
	"$W" -q recover -d "$D" --undo "$(basename "$q")" --apply
	diff -r "$D/wal" "$T/three/wal"
}

@test "a missing, damaged or replaced partition whose LSNs the WAL holds: recover --apply stores it again; undo puts back what was" {
	"$GEN" 3000 > "$T/a.lp"
	"$GEN" 3000 5 > "$T/b.lp"
	# another database's entry inside the first partition's LSN range
	head -n 1500 "$T/a.lp" | "$W" -q write -d "$D" --batch 1000
	"$GEN" 500 7 | "$W" -q write -d "$D" --db other
	tail -n 1500 "$T/a.lp" | "$W" -q write -d "$D" --batch 1000
	"$W" -q recover -d "$D" --apply
	[ "$(ls "$D/data")" = "$(printf 'default\nother')" ]
	"$W" -q write -d "$D" --batch 1000 "$T/b.lp"
	"$W" -q recover -d "$D" --apply
	first=$(ls "$D/data/default" | head -n 1)
	second=$(ls "$D/data/default" | tail -n 1)
	[ "$first" != "$second" ]
	for how in missing damaged replaced; do
		rm -rf "$T/d" "$T/before"
		cp -r "$D" "$T/d"
		case $how in
		missing) rm "$T/d/data/default/$first" ;;
		damaged) "$WALFIX" flip "$T/d/data/default/$first" 200 0 ;;
		replaced) cp "$D/data/default/$second" "$T/d/data/default/$first" ;;
		esac
		cp -r "$T/d" "$T/before"
		run --separate-stderr "$W" verify -d "$T/d"
		[ "$status" -eq 4 ]
		[[ "$stderr" == *"names partition 'default/$first'"* ]]
		run --separate-stderr "$W" recover -d "$T/d" --apply
		echo "$how: $output $stderr"
		[ "$status" -eq 1 ]
		[[ "$output" == *"rebuild partition 'data/default/$first', LSN 1-$((16#${first:17:16})): "* ]]
		[[ "$output" != *"lost:"* ]]
		if [ $how = missing ]; then
			[[ "$output" != *"set-aside"* ]]
		else
			[[ "$output" == *"1. set-aside partition 'data/default/$first'"* ]]
		fi
		cmp "$T/d/data/default/$first" "$D/data/default/$first"   # byte for byte what it was
		cmp "$T/d/data/default/$second" "$D/data/default/$second"
		run "$W" verify -d "$T/d"
		[ "$status" -eq 0 ]
		cmp <("$W" dump -d "$D" --format lp) <("$W" dump -d "$T/d" --format lp)
		stamp=$(ls "$T/d/quarantine" | tail -n 1)
		[ "$(check_manifest "$T/d/quarantine/$stamp" "$T/before")" = "$([ $how = missing ] && echo 0 || echo 1)" ]
		run "$W" recover -d "$T/d" --apply
		[ "$status" -eq 0 ]
		[[ "$output" == *"nothing to do"* ]]
		run "$W" recover -d "$T/d" --undo "$stamp" --apply
		[ "$status" -eq 0 ]
		diff -r "$T/d/data" "$T/before/data"
		diff -r "$T/d/wal" "$T/before/wal"
	done
}

@test "a missing partition whose LSNs the WAL no longer holds all of: recover and dump -d exit 4; salvage stores what the WAL holds, reports the rest lost" {
	"$GEN" 3000 > "$T/a.lp"
	"$GEN" 3000 5 > "$T/b.lp"
	"$W" -q write -d "$D" --batch 1000 --max-segment-size 64k "$T/a.lp"
	"$W" -q recover -d "$D" --apply
	"$W" -q compact -d "$D" --keep 1 --apply
	"$W" -q write -d "$D" --batch 1000 "$T/b.lp"
	"$W" -q recover -d "$D" --apply
	first=$(ls "$D/data/default" | head -n 1)
	rm "$D/data/default/$first"
	run --separate-stderr "$W" recover -d "$D" --apply
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"--mode salvage"* ]]
	run --separate-stderr "$W" dump -d "$D" --format lp
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"names partition 'default/$first', which is missing"* ]]
	# salvage gives up the checkpoint naming it, stores what the WAL still
	# holds of its LSNs (the last 1000 points) and reports the rest lost
	cp -r "$D" "$T/before"
	run "$W" recover -d "$D" --mode salvage --apply
	[ "$status" -eq 1 ]
	[[ "$output" == *"(checkpoints only, no point; recorded in the WAL as a known loss)"* ]]
	# LSN 5 is in the segment compact kept: only the points of LSN 1-4 are lost
	[[ "$output" == *"lost: the points of LSN 1-4 in partition 'data/default/$first', which is missing, and that the WAL no longer holds"* ]]
	# ... and on the record in the WAL: verify says so, as a notice
	run "$W" verify -d "$D"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"known loss: the points of LSN 1-4 in partition 'data/default/$first' (missing)"* ]]
	"$W" dump "$D/wal" --type storage-loss --format jsonl > "$T/sl.jsonl"
	[ "$(wc -l < "$T/sl.jsonl")" -eq 1 ]
	jq -e --arg p "default/$first" '.lost_first_lsn == 1 and .lost_last_lsn == 4 and .partition == $p and .reason == "missing"' \
		"$T/sl.jsonl"
	"$W" dump "$D/wal" --type loss --format jsonl | jq -e '.lost_first_lsn == .lsn and (.reason | test("salvage"))'
	cat <(tail -n 1000 "$T/a.lp") "$T/b.lp" | cmp - <("$W" dump -d "$D" --format lp)
	# the partition stored again in part is named by a new CHECKPOINT:
	# were it lost later, verify would say so
	part=$D/data/default/0000000000000005-0000000000000005.part
	[ -f "$part" ]
	mv "$part" "$T/part"
	run "$W" verify -d "$D"
	[ "$status" -eq 4 ]
	[[ "$output" == *"names partition 'default/0000000000000005-0000000000000005.part', which is missing"* ]]
	mv "$T/part" "$part"
	run "$W" recover -d "$D" --undo "$(ls "$D/quarantine" | tail -n 1)" --apply
	[ "$status" -eq 0 ]
	diff -r "$D/data" "$T/before/data"
	diff -r "$D/wal" "$T/before/wal"
}

@test "a checkpoint naming a partition that holds LSNs past the checkpoint's is damage; salvage stores them again" {
	"$GEN" 3000 > "$T/in.lp"
	"$W" -q write -d "$D" --batch 1000 "$T/in.lp"
	"$W" -q recover -d "$D" --apply
	line=$("$W" dump "$D/wal" --type checkpoint --format jsonl)
	[[ "$line" == *'"through_lsn": 4,'* ]]
	off=$(sed 's/.*"offset": \([0-9]*\),.*/\1/' <<< "$line")
	"$WALFIX" payload "$D/wal/0000000000000001.wal" "$off" 1 2   # through LSN 2; its partition holds 1-3
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"names partition 'default/0000000000000001-0000000000000003.part', which holds LSN 1-3, past the checkpoint's"* ]]
	run "$W" verify -d "$D" --format json
	[ "$status" -eq 4 ]
	[[ "$output" == *'{"class": "damage", "kind": "partition-beyond", '* ]]
	run "$W" recover -d "$D" --mode salvage --apply
	[ "$status" -eq 1 ]
	[[ "$output" == *"lost: LSN 5-5 (checkpoints only, no point; recorded in the WAL as a known loss)"* ]]
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
	"$W" dump -d "$D" --format lp | cmp - "$T/in.lp"
}

@test "a segment of another WAL named below this one's: salvage removes it into the quarantine and records no loss" {
	printf 'x\ny\n' | "$W" -q write -d "$T/other" --input raw
	# a WAL from LSN 1, and one whose first segments were compacted away
	cp -r "$ROOT/testdata/clean" "$T/from1"
	"$GEN" 3000 | "$W" -q write -d "$T/later" --batch 300 --max-segment-size 64k
	"$W" -q recover -d "$T/later" --apply
	"$W" -q compact -d "$T/later" --keep 1 --apply
	[ ! -e "$T/later/wal/0000000000000005.wal" ]
	for c in from1:0000000000000000.wal later:0000000000000005.wal; do
		dir=$T/${c%%:*} low=${c#*:}
		want=$("$W" dump -d "$dir" --format lp | md5sum)
		cp "$T/other/wal/0000000000000001.wal" "$dir/wal/$low"
		cp -r "$dir" "$T/before"
		run "$W" recover -d "$dir" --mode salvage --apply
		[ "$status" -eq 1 ]
		[[ "$output" == *"remove segment '$low'"*"it belongs to another WAL"* ]]
		[[ "$output" != *"lost:"* ]] || { echo "$c: $output"; false; }
		run "$W" verify -d "$dir"
		[ "$status" -eq 0 ]
		[ "$("$W" dump -d "$dir" --format lp | md5sum)" = "$want" ]
		"$W" -q recover -d "$dir" --undo "$(ls -t "$dir/quarantine" | head -n 1)" --apply
		diff -r "$dir/wal" "$T/before/wal"
		rm -rf "$T/before"
	done
}

@test "swapped segment names: verify reads them in header order and loses nothing; salvage swaps them back; undo swaps them again" {
	cp -r "$ROOT/testdata/clean" "$D"
	mv "$D/wal/0000000000000001.wal" "$D/wal/x"
	mv "$D/wal/0000000000000028.wal" "$D/wal/0000000000000001.wal"
	mv "$D/wal/x" "$D/wal/0000000000000028.wal"
	cp -r "$D" "$T/swapped"
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"segment '0000000000000028.wal' offset 0: header says first LSN 1"* ]]
	[[ "$stderr" != *"LSN regression"* ]]
	[[ "$stderr" != *"missing"* ]]
	[[ "$output" == *"62 entries, LSN 1-62"* ]]
	run "$W" recover -d "$D" --mode salvage --apply
	[ "$status" -eq 1 ]
	[[ "$output" != *"lost:"* ]]
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
	"$W" dump -d "$D" --format raw | cmp - <("$W" dump -d "$ROOT/testdata/clean" --format raw)
	"$W" -q recover -d "$D" --undo "$(ls "$D/quarantine")" --apply
	diff -r "$D/wal" "$T/swapped/wal"
}
