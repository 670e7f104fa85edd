#!/usr/bin/env bats
# walctl dump: formats, filters, statistics, following a live WAL.
load helpers

fill() {
	printf 'cpu,h=a v=1i 1\ncpu,h=b v=2i 2\n' | "$W" -q write -d "$D"
	printf 'one\ntwo\n' | "$W" -q write -d "$D" --input raw --batch 1
}

@test "text: one line per entry, points indented as line protocol" {
	fill
	run "$W" dump -d "$D"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "LSN 1 points "*"segment 0000000000000001.wal offset 64 mark 0 time "* ]]
	[ "${lines[1]}" = "  cpu,h=a v=1i 1" ]
	[[ "${lines[3]}" == "LSN 2 close 0 bytes"* ]]
	[[ "${lines[4]}" == "LSN 3 raw 3 bytes"*'data "one"' ]]
}

@test "json is one valid document, jsonl one valid object per line" {
	fill
	"$W" dump -d "$D" --format json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["schema"] == "walctl-dump/2"
assert [e["lsn"] for e in d["entries"]] == [1, 2, 3, 4, 5]
assert d["entries"][0]["points"][1]["fields"] == [["v", {"int": "2"}]]
assert d["entries"][2]["data"] == "one"'
	"$W" dump -d "$D" --format jsonl | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert [r["type"] for r in rows] == ["points", "close", "raw", "raw", "close"], rows'
}

# "LSN:type" of each entry dump prints as jsonl
lsn_types() { python3 -c 'import json, sys; print(" ".join("%d:%s" % (r["lsn"], r["type"]) for r in map(json.loads, sys.stdin)))'; }

@test "--from, --to, --type and --limit select entries" {
	fill
	[ "$("$W" dump -d "$D" --format jsonl | lsn_types)" = "1:points 2:close 3:raw 4:raw 5:close" ]
	[ "$("$W" dump -d "$D" --format jsonl --from 2 --to 4 | lsn_types)" = "2:close 3:raw 4:raw" ]
	[ "$("$W" dump -d "$D" --format jsonl --from 3 | lsn_types)" = "3:raw 4:raw 5:close" ]
	[ "$("$W" dump -d "$D" --format jsonl --to 1 | lsn_types)" = "1:points" ]
	[ "$("$W" dump -d "$D" --format jsonl --from 4 --to 4 | lsn_types)" = "4:raw" ]
	[ "$("$W" dump -d "$D" --format jsonl --type raw | lsn_types)" = "3:raw 4:raw" ]
	[ "$("$W" dump -d "$D" --format jsonl --type close | lsn_types)" = "2:close 5:close" ]
	[ "$("$W" dump -d "$D" --format jsonl --type raw --from 4 | lsn_types)" = "4:raw" ]
	[ "$("$W" dump -d "$D" --format jsonl --limit 1 | lsn_types)" = "1:points" ]
	[ "$("$W" dump -d "$D" --format jsonl --from 3 --limit 2 | lsn_types)" = "3:raw 4:raw" ]
	[ "$("$W" dump -d "$D" --format raw --from 4)" = "two" ]
	run "$W" dump -d "$D" --format jsonl --from 6
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run "$W" dump -d "$D" --type bogus
	[ "$status" -eq 16 ]
}

@test "a segment file or the wal directory can be dumped directly" {
	fill
	run "$W" dump "$D/wal/0000000000000001.wal" --format raw
	[ "$output" = "$(printf 'one\ntwo')" ]
	run "$W" dump "$D/wal" --format lp
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'cpu,h=a v=1i 1\ncpu,h=b v=2i 2')" ]
}

@test "--stats: per segment and per type, LSN and time spans, bytes not checkpointed" {
	"$GEN" 3000 | "$W" -q write -d "$D" --batch 100 --max-segment-size 64k
	run "$W" dump -d "$D" --stats
	[ "$status" -eq 0 ]
	[[ "$output" == *"0000000000000001.wal"*"sealed"* ]]
	[[ "$output" == *"points"*"30 "* ]]
	[[ "$output" == *"bytes not yet checkpointed"* ]]
	"$W" dump -d "$D" --stats --format json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["types"]["points"]["entries"] == 30
assert d["first_lsn"] == 1 and d["last_lsn"] == d["segments"][-1]["last_lsn"]
assert sum(s["entries"] for s in d["segments"]) == d["last_lsn"]
assert d["bytes_not_checkpointed"] == d["bytes"]'
}

@test "--follow prints entries as a writer adds them" {
	printf 'first\n' | "$W" -q write -d "$D" --input raw
	"$W" dump -d "$D" --follow --format raw > "$T/out" &
	follower=$!
	sleep 0.5
	printf 'second\nthird\n' | "$W" -q write -d "$D" --input raw --batch 1 --max-segment-size 4k
	for _ in $(seq 50); do [ "$(wc -l < "$T/out")" -ge 3 ] && break; sleep 0.1; done
	kill -INT "$follower"
	wait "$follower" || true
	[ "$(cat "$T/out")" = "$(printf 'first\nsecond\nthird')" ]
}

@test "damage met while dumping is reported and sets the exit status; entries around it still print" {
	printf 'a\nb\nc\n' | "$W" -q write -d "$D" --input raw --batch 1
	off=$(offset_of "$D" 2)
	"$WALFIX" flip "$D/wal/0000000000000001.wal" $((off + 40)) 0
	run --separate-stderr "$W" dump -d "$D" --format raw
	[ "$status" -eq 4 ]
	[ "$output" = "$(printf 'a\nc')" ]
	[[ "$stderr" == *"segment '0000000000000001.wal' offset $off: payload checksum mismatch in LSN 2"* ]]
}

@test "a write error on stdout is an operational error (8)" {
	fill
	run "$W" dump -d "$D" --format lp
	[ "$status" -eq 0 ]
	run bash -c "'$W' dump -d '$D' > /dev/full"
	[ "$status" -eq 8 ]
	[[ "$output" == *"error writing to standard output"* ]]
}

@test "--follow waits for a segment that comes well after the seal of the one before" {
	need strace
	printf 'first\n' | "$W" -q write -d "$D" --input raw
	"$W" dump -d "$D" --follow --format raw > "$T/out" 3>&- &
	follower=$!
	for _ in $(seq 200); do [ -s "$T/out" ] && break; sleep 0.05; done
	# every new segment is renamed into place 0.3 s after the seal of the last
	for i in $(seq 1 200); do printf 'entry-%03d-0123456789012345678901234567890123456789\n' "$i"; done > "$T/in"
	# (LeakSanitizer cannot run under ptrace)
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
		strace -f -qq -o /dev/null -e trace=rename -e inject=rename:delay_enter=300000 \
		"$W" -q write -d "$D" --input raw --batch 1 --max-segment-size 4k "$T/in"
	[ "$(ls "$D/wal" | wc -l)" -gt 3 ]
	for _ in $(seq 600); do [ "$(wc -l < "$T/out")" -ge 201 ] && break; sleep 0.05; done
	kill -INT "$follower"
	wait "$follower" || true
	[ "$(cat "$T/out")" = "$(printf 'first\n'; cat "$T/in")" ]
}

@test "databases whose entries interleave: storage is clean; --db selects; influx-import creates each and switches context" {
	printf '# CONTEXT-DATABASE:a\ncpu,host=h v=1 1\n# CONTEXT-DATABASE:b x\ncpu v=2 2\n# CONTEXT-DATABASE:a\ncpu,host=h v=3 3\n' |
		"$W" -q serve -d "$D"
	printf '# CONTEXT-DATABASE:c"q\nm v=4 4\n' | "$W" -q write -d "$D"
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
	run --separate-stderr "$W" dump -d "$D" --format lp
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "$(printf '%s\n' "${lines[@]}" | sort | tr '\n' '|')" = 'cpu v=2 2|cpu,host=h v=1 1|cpu,host=h v=3 3|m v=4 4|' ]
	run --separate-stderr "$W" dump -d "$D" --db 'b x' --format lp
	[ "$status" -eq 0 ]
	[ "$output" = 'cpu v=2 2' ]
	run "$W" dump -d "$D" --format influx-import
	[ "$status" -eq 0 ]
	printf '%s\n' '# DDL' 'CREATE DATABASE "a"' 'CREATE DATABASE "b x"' 'CREATE DATABASE "c\"q"' '# DML' \
		'# CONTEXT-DATABASE:a' 'cpu,host=h v=1 1' 'cpu,host=h v=3 3' '# CONTEXT-DATABASE:b x' 'cpu v=2 2' \
		'# CONTEXT-DATABASE:c"q' 'm v=4 4' | diff <(printf '%s\n' "${lines[@]}") -
	run "$W" dump -d "$D" --format influx-import --db a
	[ "${lines[1]}" = 'CREATE DATABASE "a"' ]
	[ "${#lines[@]}" -eq 6 ]
	# what walctl write reads back from it is the same points in the same databases
	"$W" dump -d "$D" --format influx-import | "$W" -q write -d "$T/again"
	"$W" dump "$T/again/wal" --type points --format jsonl | jq -r '.db + " " + (.points | length | tostring)' | sort > "$T/got"
	printf '%s\n' 'a 2' 'b x 1' 'c"q 1' | diff - "$T/got"
	run "$W" dump -d "$D" --format influx-import --follow
	[ "$status" -eq 16 ]
}

@test "lp on every core: entries print in LSN order; one that does not decode prints its points before the damage, then its error" {
	"$GEN" 30000 > "$T/in.lp"
	"$W" -q write -d "$D" --batch 1000 "$T/in.lp"
	run --separate-stderr "$W" dump -d "$D" --format lp
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "${lines[@]}" | cmp - "$T/in.lp" && echo same)" = same ]
	off=$(offset_of "$D" 12)
	# a CBOR break byte in the middle of LSN 12's points, both CRCs recomputed
	"$WALFIX" payload "$D/wal/0000000000000001.wal" "$off" 100000 255
	run --separate-stderr "$W" dump -d "$D" --format lp
	[ "$status" -eq 4 ]
	[ "$stderr" = "walctl dump: segment '0000000000000001.wal' offset $off: LSN 12: points payload: malformed point at byte 100001" ]
	n=${#lines[@]}
	[ "$n" -gt 29000 ]
	[ "$n" -lt 30000 ]
	# every line is the input's: the 11,000 before, a prefix of LSN 12's, the 18,000 after
	printf '%s\n' "${lines[@]}" | head -n $((n - 18000)) | cmp - <(head -n $((n - 18000)) "$T/in.lp")
	printf '%s\n' "${lines[@]}" | tail -n 18000 | cmp - <(tail -n 18000 "$T/in.lp")
}

@test "a reader whose output pipe closes stops quietly (dump | head); any other failed write is exit 8" {
	"$GEN" 20000 | "$W" -q write -d "$D"
	for fmt in lp jsonl; do
		run bash -c "set -o pipefail; '$W' dump -d '$D' --format $fmt 2> '$T/err' | head -n 1 > /dev/null"
		[ "$status" -eq 0 ]
		[ ! -s "$T/err" ]
	done
	run bash -c "set -o pipefail; '$W' dump '$D/wal' 2> '$T/err' | head -n 1 > /dev/null"
	[ "$status" -eq 0 ]
	[ ! -s "$T/err" ]
	[ -w /dev/full ] || skip "no /dev/full"
	run bash -c "'$W' dump -d '$D' --format lp > /dev/full"
	[ "$status" -eq 8 ]
	[[ "$output" == *"error writing to standard output: No space left on device"* ]]
}

@test "text output shows the control bytes of the data as \\xHH; lp gives them as they are" {
	printf 'm,t=a\033[31mb v="x\033]0;title\007y" 1\n' > "$T/esc.lp"
	"$W" -q write -d "$D" "$T/esc.lp"
	"$W" dump "$D/wal" > "$T/out"
	cat "$T/out"
	# no control byte but the newlines
	[ "$(tr -d '\n' < "$T/out" | tr -d '\040-\176' | wc -c)" -eq 0 ]
	grep -qF 'm,t=a\x1b[31mb v="x\x1b]0;title\x07y" 1' "$T/out"
	"$W" -q recover -d "$D" --apply
	"$W" dump -d "$D" > "$T/out"
	[ "$(tr -d '\n' < "$T/out" | tr -d '\040-\176' | wc -c)" -eq 0 ]
	grep -qF 'm,t=a\x1b[31mb v="x\x1b]0;title\x07y" 1' "$T/out"
	"$W" dump -d "$D" --format lp | cmp - "$T/esc.lp"
}
