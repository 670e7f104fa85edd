#!/usr/bin/env bats
# JSON output: strict, valid UTF-8, null for what is absent, one naming
# scheme, a schema named in every document and every jsonl record.  The
# teardown (helpers.bash) validates every document any test made walctl
# print against schemas/ with tests/tools/jsoncheck.py; these tests pin
# the rules the schemas cannot see, and show that the check can fail.
load helpers

CHECK() { "$PY" -I "$ROOT/tests/tools/jsoncheck.py" "$ROOT/schemas" "$1"; }

@test "RAW payloads: valid UTF-8 as a string, other bytes as base64, with an encoding member" {
	printf 'caf\303\251 "q" \\\n\200\377\033x\n\340\200\200\n\355\240\200\n' | "$W" -q write -d "$D" --input raw
	"$W" dump -d "$D" --type raw --format jsonl > "$T/raw.jsonl"
	cat "$T/raw.jsonl"
	# strict UTF-8 all through
	iconv -f UTF-8 -t UTF-8 "$T/raw.jsonl" > /dev/null
	jq -e -s '.[0].encoding == "utf-8" and .[0].data == "caf\u00e9 \"q\" \\"' "$T/raw.jsonl"
	jq -e -s '.[1].encoding == "base64" and (.[1].data | @base64d | explode) == [65533, 65533, 27, 120]' "$T/raw.jsonl"
	[ "$(jq -r -s '.[1].data' "$T/raw.jsonl" | base64 -d | od -An -tx1 | tr -d ' ')" = 80ff1b78 ]
	# an overlong form and an encoded surrogate are not UTF-8 either
	jq -e -s '.[2].encoding == "base64" and .[2].data == "4ICA" and .[3].encoding == "base64" and .[3].data == "7aCA"' "$T/raw.jsonl"
	# the json document carries the same
	"$W" dump -d "$D" --type raw --format json | jq -e '.entries[1].data == "gP8beA=="'
}

@test "a string that is not UTF-8 (a path) becomes {encoding: base64, data}" {
	bad=$(printf 'w\377')
	printf 'cpu v=1 1\n' | "$W" -q write -d "$T/$bad"
	"$W" verify -d "$T/$bad" --format json > "$T/v.json"
	iconv -f UTF-8 -t UTF-8 "$T/v.json" > /dev/null
	jq -e --arg b64 "$(printf '%s' "$T/$bad" | base64 -w0)" \
		'.path == {"encoding": "base64", "data": $b64} and .status == "clean"' "$T/v.json"
}

@test "absent values are null, never 0 or an empty string" {
	mkdir -p "$D/wal"
	"$W" verify -d "$D" --format json | jq -e '.entries == 0 and .first_lsn == null and .last_lsn == null'
	"$W" dump -d "$D" --stats --format json |
		jq -e '.first_lsn == null and .first_time == null and .last_time == null and .checkpoint_lsn == null'
	printf 'cpu v=1 1\n' | "$W" -q write -d "$D"
	# a plan not applied has no stamp; replay has no file, nothing has a new name
	"$W" recover -d "$D" --format json |
		jq -e '.stamp == null and .applied == false and .actions[0].op == "replay" and .actions[0].file == null and .actions[0].new_name == null'
	run -0 "$W" recover -d "$D" --apply --format json
	jq -e '.applied == true and (.stamp | type) == "string"' <<< "$output"
	# a finding with no LSN to name
	printf 'junk' > "$D/wal/0000000000000009.wal"
	run "$W" verify -d "$D" --format json
	jq -e '[.findings[] | select(.first_lsn == null)] | length > 0' <<< "$output"
	jq -e '[.findings[] | .vouched_by] | all(. == null or . > 0)' <<< "$output"
}

@test "one naming scheme: LSN ranges are first_lsn and last_lsn in every document" {
	cp -r "$ROOT/testdata/missing-segment" "$D"
	{
		"$W" verify -d "$D" --format json || true
		"$W" recover -d "$D" --mode salvage --format json || true
		"$W" dump -d "$D" --stats --format json || true
		"$W" dump -d "$D" --format json || true
	} > "$T/all" 2> /dev/null
	run ! grep -E '"lsn_(first|last)"|"lost_(first|last)"' "$T/all"
	[ "$(grep -o '"first_lsn"' "$T/all" | wc -l)" -ge 8 ]
	jq -e -s 'map(.schema) == ["walctl-verify/2", "walctl-plan/2", "walctl-dump-stats/2", "walctl-dump/2"]' "$T/all"
	jq -e -s '.[1].lost == [{"first_lsn": 40, "last_lsn": 80}]' "$T/all"
}

@test "every jsonl record names its schema" {
	printf 'cpu v=1 1\ncpu v=2 2\n' | "$W" -q write -d "$D"
	"$W" -q recover -d "$D" --apply
	printf 'x\n' | "$W" -q write -d "$D" --input raw
	"$W" dump -d "$D" --format jsonl > "$T/d.jsonl"
	[ "$(wc -l < "$T/d.jsonl")" -ge 4 ]
	jq -e -s 'all(.schema == "walctl-dump-entry/2") and (map(.source) | index("storage") == 0)' "$T/d.jsonl"
	printf 'cpu v=1 1\n' | "$W" write --parse-only | jq -e '.schema == "walctl-point/1" and .measurement == "cpu"'
	# the items of the json document are the same records without it
	"$W" dump -d "$D" --format json | jq -e '.entries | length > 3 and all(has("schema") | not)'
}

@test "--stats in text, json, jsonl and lp; raw and influx-import say why not" {
	printf 'cpu v=1 1\ncpu v=2 2\n' | "$W" -q write -d "$D"
	"$W" -q recover -d "$D" --apply
	"$W" dump -d "$D" --stats | grep -q '^last checkpoint through LSN 2;'
	"$W" dump -d "$D" --stats --format json | jq -e '.checkpoint_lsn == 2 and .types.points.entries == 1'
	"$W" dump -d "$D" --stats --format jsonl > "$T/s.jsonl"
	[ "$(wc -l < "$T/s.jsonl")" -eq 1 ]
	jq -e '.schema == "walctl-dump-stats/2" and .segments[0].state == "closed"' "$T/s.jsonl"
	"$W" dump -d "$D" --stats --format lp > "$T/s.lp"
	cat "$T/s.lp"
	grep -Eq '^walctl_segment,name=0000000000000001\.wal,state=closed seq=1i,entries=[0-9]+i,bytes=[0-9]+i,first_lsn=1i,last_lsn=[0-9]+i$' "$T/s.lp"
	grep -q '^walctl_type,type=points entries=1i,bytes=[0-9]*i$' "$T/s.lp"
	grep -Eq '^walctl_wal segments=1i,bytes=[0-9]+i,bytes_not_checkpointed=[0-9]+i,first_lsn=1i,last_lsn=[0-9]+i,checkpoint_lsn=2i$' "$T/s.lp"
	# what walctl writes as line protocol it reads back as points
	"$W" write --parse-only "$T/s.lp" | jq -e -s 'length == 5 and .[0].measurement == "walctl_segment"'
	run -16 "$W" dump -d "$D" --stats --format raw
	[[ "$output" == *"--stats prints text, json, jsonl or lp"* ]]
	run -16 "$W" dump -d "$D" --stats --format influx-import
}

@test "bench: numbers are finite; what was not measured is null" {
	run --separate-stderr "$W" bench --points 2000 --sync async --latency 0 --format json
	[ "$status" -eq 0 ]
	jq -e '.schema == "walctl-bench/2" and .one_at_a_time == null and (.modes[0].points_per_second > 0)' <<< "$output"
}

@test "every JSON document a test makes walctl print is kept for the teardown's check" {
	printf 'cpu v=1 1\n' | "$W" -q write -d "$D"
	"$W" verify -d "$D" --format json > "$T/v.json"
	"$W" verify -d "$D" > /dev/null
	[ "$(ls "$WALCTL_JSON_DIR"/*.out | wc -l)" -eq 1 ]
	cmp "$WALCTL_JSON_DIR"/*.out "$T/v.json"
	grep -qx "verify -d $D --format json" "$WALCTL_JSON_DIR"/*.args
}

@test "the check itself fails on bad JSON, a wrong schema version and a missing member" {
	c=$T/cases
	mkdir "$c"
	put() { printf '%s\n' "$1" > "$c/$2.args"; printf "$3" > "$c/$2.out"; }
	# refused NAME JSON MESSAGE: beside the good case, the check fails on
	# JSON and says MESSAGE
	refused() {
		put "$1" b "$2"
		run CHECK "$c"
		rm "$c"/b.*
		[ "$status" -eq 1 ] || { echo "$1: the check passed"; return 1; }
		[[ "$output" == *"$3"* ]] || { echo "$1: $output"; return 1; }
	}
	put ok a '{"schema": "walctl-point/1", "measurement": "m", "tags": [], "fields": [["v", {"int": "1"}]], "time": "1"}\n'
	CHECK "$c"
	refused utf8 '{"schema": "walctl-point/1", "measurement": "\377", "tags": [], "fields": [["v", {"int": "1"}]], "time": "1"}\n' \
		"utf8: not valid UTF-8"
	refused dup '{"schema": "walctl-point/1", "measurement": "m", "measurement": "n", "tags": [], "fields": [["v", {"int": "1"}]], "time": "1"}\n' \
		"duplicate key"
	refused nan '{"schema": "walctl-bench/2", "points": NaN}\n' "NaN is not JSON"
	refused surrogate '{"schema": "walctl-point/1", "measurement": "\\ud800", "tags": [], "fields": [["v", {"int": "1"}]], "time": "1"}\n' \
		"lone surrogate"
	refused old '{"schema": "walctl-verify/1", "path": "x"}\n' "walctl-verify/1 at /"
	refused noschema '{"measurement": "m"}\n' 'without a "schema" member'
	refused zero '{"schema": "walctl-dump-stats/2", "first_lsn": 0, "last_lsn": null, "first_time": null, "last_time": null, "bytes": 0, "checkpoint_lsn": null, "bytes_not_checkpointed": 0, "segments": [], "types": {}}\n' \
		"at /first_lsn"
	# a cut copy is checked up to its last whole line
	put cut b '{"schema": "walctl-point/1", "measurement": "m", "tags": [], "fields": [["v", {"int": "1"}]], "time": "1"}\n{"sch'
	touch "$c/b.cut"
	CHECK "$c"
}
