#!/usr/bin/env bats
# walctl verify: exit codes, messages and the JSON report, on the committed
# fixtures and on WALs damaged here.
load helpers

@test "every finding names the command to run next" {
	run --separate-stderr "$W" verify "$ROOT/testdata/torn-tail"
	[[ "$stderr" == *"next: nothing acknowledged is lost; 'walctl truncate --torn-tail -d $ROOT/testdata/torn-tail' cuts the tail"* ]]
	run --separate-stderr "$W" verify "$ROOT/testdata/payload-flip-sealed"
	[[ "$stderr" == *"next: 'walctl recover --mode salvage -d $ROOT/testdata/payload-flip-sealed'"* ]]
}

@test "clean WAL: exit 0 and a one-line summary on stdout" {
	run --separate-stderr "$W" verify "$ROOT/testdata/clean"
	[ "$status" -eq 0 ]
	[ "$output" = "$ROOT/testdata/clean/wal: 2 segments, 62 entries, LSN 1-62, 6149 bytes: clean" ]
	[ -z "$stderr" ]
}

@test "json report: schema walctl-verify/2 with segments and findings" {
	"$W" verify "$ROOT/testdata/payload-flip-vouched" --format json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["schema"] == "walctl-verify/2" and d["status"] == "damaged" and d["exit"] == 4
assert [s["name"] for s in d["segments"]] == ["0000000000000001.wal", "0000000000000028.wal"]
assert d["segments"][0]["state"] == "sealed"
f = d["findings"][0]
assert (f["class"], f["kind"], f["offset"], f["first_lsn"], f["last_lsn"], f["vouched_by"]) == \
       ("damage", "payload-checksum", 1074, 50, 50, 62), f
assert "recover --mode salvage" in f["next"]'
}

@test "exit status is OR-ed over several WALs" {
	run "$W" verify "$ROOT/testdata/clean" "$ROOT/testdata/torn-tail" "$ROOT/testdata/lsn-gap"
	[ "$status" -eq 6 ]
	run "$W" verify --format json "$ROOT/testdata/clean" "$ROOT/testdata/zero-tail"
	[ "$status" -eq 2 ]
	echo "$output" | python3 -c 'import json, sys; d = json.load(sys.stdin); assert [x["exit"] for x in d] == [0, 2]'
}

@test "segment files given one after another are one WAL" {
	run "$W" verify "$ROOT"/testdata/clean/wal/*.wal
	[ "$status" -eq 0 ]
}

@test "a segment given alone is judged alone: its absent predecessors are a notice, in verify and dump" {
	# the second segment of a healthy WAL, alone: LSN 1-39 are simply not given
	run --separate-stderr "$W" verify "$ROOT/testdata/clean/wal/0000000000000028.wal"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"LSN 1-39 are not in the segments given"*"[notice]"* ]]
	[[ "$output" == *"1 segment, "*"LSN 40-"*": clean" ]]
	# the first segment alone has no predecessor to miss
	run --separate-stderr "$W" verify "$ROOT/testdata/clean/wal/0000000000000001.wal"
	[ "$status" -eq 0 ]
	[[ "$stderr" != *"not in the segments given"* ]]
	run "$W" dump "$ROOT/testdata/clean/wal/0000000000000028.wal" --format jsonl
	[ "$status" -eq 0 ]
	[ "$(grep -c '"lsn": ' <<< "$output")" -gt 0 ]
	# the same WAL as a directory without its first segment: the WAL's start is gone
	mkdir -p "$D/wal"
	cp "$ROOT/testdata/clean/wal/0000000000000028.wal" "$D/wal/"
	run "$W" verify -d "$D"
	[ "$status" -eq 4 ]
	[[ "$output" == *"missing segment: LSN 1-39 not found before the first segment"* ]]
	run "$W" verify "$D/wal"
	[ "$status" -eq 4 ]
}

@test "segments given with one missing between them: a notice; damage given as a WAL directory" {
	"$GEN" 3000 | "$W" -q write -d "$D" --batch 100 --max-segment-size 64k
	segs=("$D"/wal/*.wal)
	[ "${#segs[@]}" -ge 4 ]
	# the 2nd and the 4th: the 3rd's LSNs lie between them
	first3=$((16#$(basename "${segs[2]}" .wal))) first4=$((16#$(basename "${segs[3]}" .wal)))
	run --separate-stderr "$W" verify "${segs[1]}" "${segs[3]}"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"LSN $first3-$((first4 - 1)) are not in the segments given"*"[notice]"* ]]
	rm "${segs[2]}"
	run --separate-stderr "$W" verify -d "$D"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"missing segment: LSN $first3-$((first4 - 1)) not found before this segment"* ]]
}

@test "--deep decodes every point: a payload whose CRC matches but that does not decode is damage" {
	"$GEN" 2000 | "$W" -q write -d "$D"
	run "$W" verify --deep -d "$D"
	[ "$status" -eq 0 ]
	# a CBOR break byte in the middle of LSN 1's points, both CRCs recomputed
	"$WALFIX" payload "$D/wal/0000000000000001.wal" 64 100000 255
	run --separate-stderr "$W" verify --deep -d "$D"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"segment '0000000000000001.wal' offset 64: points payload of LSN 1 does not decode"* ]]
	run "$W" verify --deep --format json -d "$D"
	[ "$status" -eq 4 ]
	python3 -c 'import json, sys; d = json.loads(sys.argv[1]); f = d["findings"][0]; assert (f["class"], f["first_lsn"]) == ("damage", 1), f' "$output"
}

@test "a bit flip in a payload, with and without a later synced frame" {
	printf 'a\nb\nc\n' | "$W" -q write -d "$D" --input raw --batch 1
	cp -r "$D" "$T/crashed"
	seg=0000000000000001.wal
	last=$(offset_of "$D" 4)
	"$WALFIX" cut "$T/crashed/wal/$seg" "$last"       # as if the writer died before CLOSE
	off=$(offset_of "$D" 3)
	"$WALFIX" flip "$D/wal/$seg" $((off + 40)) 1
	"$WALFIX" flip "$T/crashed/wal/$seg" $((off + 40)) 1
	run "$W" verify -d "$D"
	[ "$status" -eq 4 ]
	run "$W" verify -d "$T/crashed"
	[ "$status" -eq 2 ]
}

@test "a path that does not exist is an operational error (8); -d with PATHs is a usage error" {
	run "$W" verify "$T/nothing"
	[ "$status" -eq 8 ]
	run "$W" verify -d "$T" "$T"
	[ "$status" -eq 16 ]
}
