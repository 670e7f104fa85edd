#!/usr/bin/env bats
# walctl write: round trips, bad input, the lock, options.
load helpers

@test "100,000 generated points written and dumped back as line protocol are identical" {
	"$GEN" 100000 > "$T/in.lp"
	run --separate-stderr "$W" write -d "$D" "$T/in.lp"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"wrote 100000 points in 20 entries"* ]]
	"$W" dump -d "$D" --format lp > "$T/out.lp"
	cmp "$T/in.lp" "$T/out.lp"
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
}

@test "types, escapes and timestamps survive exactly" {
	printf '%s\n' 'my\ cpu\,x,t\=k=v\ 1,b=2 f=1.5,i=-3i,u=18446744073709551615u,s="a \"q\" \\ b",t=true,z=-0 -1' \
		'm s="multi' 'line" 1700000000000000000' 'm x=1e-300 0' > "$T/in.lp"
	"$W" -q write -d "$D" "$T/in.lp"
	"$W" dump -d "$D" --format lp > "$T/out.lp"
	cmp "$T/in.lp" "$T/out.lp" || { diff "$T/in.lp" "$T/out.lp"; false; }
}

@test "--precision and --default-time" {
	printf 'm v=1 1700000000\nm v=2\n' | "$W" -q write -d "$D" --precision s --default-time 1500
	run "$W" dump -d "$D" --format lp
	[ "${lines[0]}" = "m v=1 1700000000000000000" ]
	[ "${lines[1]}" = "m v=2 0" ]
}

@test "raw input: each line one RAW entry, dumped back byte for byte" {
	printf 'alpha\n\nbeta gamma\r\nlast-no-newline' > "$T/in.raw"
	"$W" -q write -d "$D" --input raw "$T/in.raw"
	"$W" dump -d "$D" --format raw > "$T/out.raw"
	printf 'alpha\n\nbeta gamma\r\nlast-no-newline\n' | cmp - "$T/out.raw"
	run "$W" dump -d "$D" --type raw --format jsonl
	[ "${#lines[@]}" -eq 4 ]
}

@test "bad lines are reported with file and line number, skipped, and make the exit status 4" {
	printf 'm v=1 1\ncpu\nm v=2 2\nm v=tru 3\n' > "$T/in.lp"
	run --separate-stderr "$W" write -d "$D" "$T/in.lp"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"'$T/in.lp' line 2: expected tag key or field but found '\n' instead"* ]]
	[[ "$stderr" == *"'$T/in.lp' line 4: invalid boolean value \"tru\""* ]]
	[[ "$stderr" == *"2 bad lines rejected"* ]]
	run "$W" dump -d "$D" --format lp
	[ "${lines[0]}" = "m v=1 1" ]
	[ "${lines[1]}" = "m v=2 2" ]
	[ "${#lines[@]}" -eq 2 ]
}

@test "a rejected timestamp never takes the next line with it, in write and serve" {
	printf 'm a=1i 1\nm f=1i 9223372036854775808\nm b=2i 2\nm c=3i 3\n' > "$T/range.lp"
	printf 'm a=1i 1000000000000000000\nm b=2i 2000000000000000000\nm c=3i 3\nm d=4i 4\n' > "$T/prec.lp"
	run --separate-stderr "$W" write -d "$D" "$T/range.lp"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"line 2: invalid timestamp \"9223372036854775808\""* ]]
	[[ "$stderr" == *"1 bad line rejected"* ]]
	[ "$("$W" dump "$D/wal" --format lp)" = "$(printf 'm a=1i 1\nm b=2i 2\nm c=3i 3')" ]
	run --separate-stderr "$W" write -d "$T/p" --precision s "$T/prec.lp"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"line 1: timestamp \"1000000000000000000\" is out of range at this precision"* ]]
	[[ "$stderr" == *"line 2: timestamp \"2000000000000000000\" is out of range at this precision"* ]]
	[[ "$stderr" == *"2 bad lines rejected"* ]]
	[ "$("$W" dump "$T/p/wal" --format lp)" = "$(printf 'm c=3i 3000000000\nm d=4i 4000000000')" ]
	run --separate-stderr "$W" serve -d "$T/s" < "$T/range.lp"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *'line="2"'* ]]
	[ "$("$W" dump -d "$T/s" --format lp)" = "$(printf 'm a=1i 1\nm b=2i 2\nm c=3i 3')" ]
}

@test "--db: a name whose directory would not fit a file name, or an empty one, is refused at the start (16)" {
	long=$(printf 'x%.0s' $(seq 255))
	dots=$(printf '.%.0s' $(seq 85))
	for cmd in write serve; do
		run --separate-stderr "$W" "$cmd" -d "$T/$cmd" --db "${long}x" <<< 'm v=1i 1'
		[ "$status" -eq 16 ]
		[[ "$stderr" == *"option '--db': database name of 256 bytes is too long: its directory name under data/ would be 256 bytes, and at most 255 fit"* ]]
		run --separate-stderr "$W" "$cmd" -d "$T/$cmd" --db "${dots}." <<< 'm v=1i 1'
		[ "$status" -eq 16 ]
		[[ "$stderr" == *"would be 258 bytes"* ]]
		run --separate-stderr "$W" "$cmd" -d "$T/$cmd" --db '' <<< 'm v=1i 1'
		[ "$status" -eq 16 ]
		[[ "$stderr" == *"must not be empty"* ]]
		[ ! -e "$T/$cmd/wal" ] || [ -z "$(ls "$T/$cmd/wal")" ]
	done
	# the longest names fit: serve stores them in partitions
	run "$W" -q serve -d "$T/s" --db "$long" <<< 'm v=1i 1'
	[ "$status" -eq 0 ]
	run "$W" -q serve -d "$T/s" --db "$dots" <<< 'm v=2i 2'
	[ "$status" -eq 0 ]
	[ "$(ls "$T/s/data" | awk '{print length($0)}' | sort -u)" = 255 ]
	run "$W" verify -d "$T/s"
	[ "$status" -eq 0 ]
	[ "$("$W" dump -d "$T/s" --format lp)" = "$(printf 'm v=1i 1\nm v=2i 2')" ]
}

@test "a point larger than an entry can hold is a rejected line; large points that fit get entries of their own" {
	python3 -c '
import sys
w = sys.stdout.write
w("m a=1i 1\n")
w("m s=\"" + "x" * (70 << 20) + "\" 2\n")
w("m b=2i 3\n")
w("m big=\"" + "y" * (40 << 20) + "\" 4\n")
w("m big=\"" + "z" * (40 << 20) + "\" 5\n")
w("m c=3i 6\n")' > "$T/in.lp"
	run --separate-stderr "$W" write -d "$D" "$T/in.lp"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"'$T/in.lp' line 2: point too large: up to "*" bytes encoded, more than the "*" an entry can hold"* ]]
	[[ "$stderr" == *"wrote 5 points in 4 entries"* ]]
	grep -v '^m s=' "$T/in.lp" > "$T/want.lp"
	"$W" dump "$D/wal" --format lp | cmp - "$T/want.lp"
	run --separate-stderr "$W" serve -d "$T/s" < "$T/in.lp"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *'msg="bad line" line="2" reason="point too large: up to '* ]]
	"$W" dump -d "$T/s" --format lp | cmp - "$T/want.lp"
	# --strict stops at it, with what came before written
	run --separate-stderr "$W" write -d "$T/strict" --strict "$T/in.lp"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"line 2: point too large"*"(stopping: --strict)"* ]]
	[ "$("$W" dump "$T/strict/wal" --format lp)" = "m a=1i 1" ]
	rm -f "$T/in.lp" "$T/want.lp"
}

@test "InfluxDB export files: the DDL section is skipped and reported once, CONTEXT-DATABASE chooses the database, --db wins" {
	# as influx_inspect export writes it
	cat > "$T/export.lp" <<-'EOF'
	# INFLUXDB EXPORT: 1677-09-21T00:12:43Z - 2262-04-11T23:47:16Z
	# DDL
	CREATE DATABASE telegraf WITH NAME autogen
	CREATE DATABASE "other db" WITH NAME autogen
	# DML
	# CONTEXT-DATABASE:telegraf
	# CONTEXT-RETENTION-POLICY:autogen
	# writing tsm data
	cpu,host=a usage=1 1
	cpu,host=b usage=2 2
	# CONTEXT-DATABASE:other db
	# CONTEXT-RETENTION-POLICY:autogen
	# writing tsm data
	mem,host=a used=3i 3
	EOF
	run --separate-stderr "$W" write -d "$D" "$T/export.lp"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"skipped 2 DDL statements of an InfluxDB export"* ]]
	[[ "$stderr" != *"bad line"* ]]
	"$W" dump "$D/wal" --type points --format jsonl | jq -c '[.db, [.points[].measurement]]' > "$T/got"
	printf '%s\n' '["telegraf",["cpu","cpu"]]' '["other db",["mem"]]' | diff - "$T/got"
	# serve the same
	run --separate-stderr "$W" serve -d "$T/s" < "$T/export.lp"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *'msg="skipped the DDL statements of an InfluxDB export" count="2"'* ]]
	[ "$(ls "$T/s/data" | tr '\n' ' ')" = "other%20db telegraf " ]
	"$W" dump -d "$T/s" --format jsonl | jq -c 'select(.points | length > 0) | [.db, [.points[].measurement]]' > "$T/got"
	printf '%s\n' '["telegraf",["cpu","cpu"]]' '["other db",["mem"]]' | diff - "$T/got"
	# --db wins, and says so
	run --separate-stderr "$W" write -d "$T/f" --db one "$T/export.lp"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"line 6: --db one wins over the input's CONTEXT-DATABASE lines"* ]]
	[ "$("$W" dump "$T/f/wal" --type points --format jsonl | jq -r .db | sort -u)" = one ]
	# a context naming no valid database: its points are rejected, not put elsewhere
	printf '# CONTEXT-DATABASE:%s\ncpu v=1 1\n# CONTEXT-DATABASE:ok\ncpu v=2 2\n' "$(printf 'x%.0s' $(seq 300))" > "$T/bad.lp"
	run --separate-stderr "$W" write -d "$T/b" "$T/bad.lp"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"line 2: the database named on line 1 is not valid: database name of 300 bytes is too long"* ]]
	[ "$("$W" dump "$T/b/wal" --type points --format jsonl | jq -c '[.db, (.points | length)]')" = '["ok",1]' ]
	run --separate-stderr "$W" serve -d "$T/bs" < "$T/bad.lp"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *'msg="bad line" line="2" reason="the database of the CONTEXT-DATABASE line before it is not valid"'* ]]
}

@test "a CONTEXT-DATABASE line deep in a large input, indented: the points after it, and only they, go to its database" {
	"$GEN" 40000 > "$T/gen.lp"
	{ head -n 19999 "$T/gen.lp"; echo '   # CONTEXT-DATABASE:late'; tail -n +20000 "$T/gen.lp"; } > "$T/in.lp"
	run --separate-stderr "$W" write -d "$D" "$T/in.lp"
	[ "$status" -eq 0 ]
	"$W" dump "$D/wal" --type points --format jsonl | jq -r '.db + " " + (.points | length | tostring)' |
		awk '{ n[$1] += $2 } END { for (d in n) print d, n[d] }' | sort > "$T/got"
	printf '%s\n' 'default 19999' 'late 20001' | diff - "$T/got"
	"$W" dump "$D/wal" --format lp | cmp - "$T/gen.lp"
}

@test "--strict stops at the first bad line and writes nothing of it or after it" {
	printf 'm v=1 1\nbad\nm v=2 2\n' | { run --separate-stderr "$W" write -d "$D" --strict; echo "$status" > "$T/rc"; echo "$stderr" > "$T/err"; }
	[ "$(cat "$T/rc")" -eq 4 ]
	grep -q "line 2: .*(stopping: --strict)" "$T/err"
	run "$W" dump -d "$D" --format lp
	[ "$output" = "m v=1 1" ]
}

@test "--parse-only prints points as JSON and writes nothing" {
	run --separate-stderr "$W" write -d "$D" --parse-only --format jsonl --default-time 5 <<< 'cpu,a=b v=1i'
	[ "$status" -eq 0 ]
	[ "$output" = '{"schema": "walctl-point/1", "measurement": "cpu", "tags": [["a", "b"]], "fields": [["v", {"int": "1"}]], "time": "5"}' ]
	[ ! -e "$D" ]
}

@test "a second writer fails at once with exit 8, naming the holder's pid" {
	(sleep 2; echo 'm v=1') | "$W" -q write -d "$D" &
	holder=$!
	for _ in $(seq 50); do [ -s "$D/LOCK" ] && break; sleep 0.1; done
	run --separate-stderr "$W" write -d "$D" <<< 'm v=2'
	wait "$holder"
	[ "$status" -eq 8 ]
	[[ "$stderr" == *"is locked by pid $holder"* ]]
	run "$W" dump -d "$D" --format lp
	[[ "$output" == "m v=1 "* ]]
}

@test "segments rotate by size, sealed, and verify stays clean" {
	"$GEN" 20000 | "$W" -q write -d "$D" --batch 500 --max-segment-size 256k
	[ "$(ls "$D/wal" | wc -l)" -gt 5 ]
	run "$W" dump -d "$D" --type seal --format jsonl
	[ "${#lines[@]}" -eq $(( $(ls "$D/wal" | wc -l) - 1 )) ]
	run "$W" verify -d "$D"
	[ "$status" -eq 0 ]
}

@test "usage errors exit 16" {
	run "$W" write --sync sometimes
	[ "$status" -eq 16 ]
	[[ "$output" == *"invalid value 'sometimes'"* ]]
	run "$W" write --batch 0
	[ "$status" -eq 16 ]
	run "$W" write --max-segment-size 12x
	[ "$status" -eq 16 ]
	run "$W" write --max-segment-age 10
	[ "$status" -eq 16 ]
	run "$W" write --nope
	[ "$status" -eq 16 ]
	run "$W" frobnicate
	[ "$status" -eq 16 ]
}

@test "a missing input file is an operational error (8)" {
	run "$W" write -d "$D" "$T/nope.lp"
	[ "$status" -eq 8 ]
	[[ "$output" == *"cannot open '$T/nope.lp'"* ]]
}

@test "a WAL with damage to durable data is refused (4) and left untouched" {
	printf 'a\nb\nc\n' | "$W" -q write -d "$D" --input raw --batch 1
	off=$(offset_of "$D" 2)
	"$WALFIX" flip "$D/wal/0000000000000001.wal" $((off + 40)) 0
	sum=$(md5sum < "$D/wal/0000000000000001.wal")
	run "$W" write -d "$D" --input raw <<< 'd'
	[ "$status" -eq 4 ]
	[[ "$output" == *"recover --mode salvage"* ]]
	[ "$(md5sum < "$D/wal/0000000000000001.wal")" = "$sum" ]
}

@test "a torn tail is moved to quarantine and cut when a writer opens the WAL" {
	printf 'a\nb\n' | "$W" -q write -d "$D" --input raw
	"$WALFIX" garbage "$D/wal/0000000000000001.wal" 99 3
	run --separate-stderr "$W" write -d "$D" --input raw <<< 'c'
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"cut a torn tail of 99 bytes"* ]]
	[ "$(cat "$D"/quarantine/*/MANIFEST | grep -c 'length=99')" -eq 1 ]
	run "$W" dump -d "$D" --format raw
	[ "$output" = "$(printf 'a\nb\nc')" ]
}

@test "WALCTL_DIR chooses the directory, -d overrides it" {
	WALCTL_DIR=$T/env "$W" -q write --input raw <<< 'x'
	[ -d "$T/env/wal" ]
	WALCTL_DIR=$T/env "$W" -q write -d "$T/opt" --input raw <<< 'y'
	[ -d "$T/opt/wal" ]
}

@test "large input parsed in two halves: line numbers of bad lines stay exact" {
	# 3 MiB of points with bad lines early, in the middle and late
	awk 'BEGIN { for (i = 1; i <= 30000; i++) {
		if (i == 7 || i == 15001 || i == 29999) print "bad line " i;
		else printf "m,host=h%05d value=%di,pad=\"%s\" %d\n", i % 100, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i } }' > "$T/in.lp"
	[ "$(stat -c %s "$T/in.lp")" -gt 2000000 ]
	run --separate-stderr "$W" write -d "$D" "$T/in.lp"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"line 7: "* ]]
	[[ "$stderr" == *"line 15001: "* ]]
	[[ "$stderr" == *"line 29999: "* ]]
	[[ "$stderr" == *"3 bad lines rejected"* ]]
	"$W" dump -d "$D" --format lp > "$T/out.lp"
	grep -v '^bad line' "$T/in.lp" | cmp - "$T/out.lp"
}

@test "large input whose strings hold newlines (a split may fall inside one) round-trips" {
	awk 'BEGIN { for (i = 1; i <= 40000; i++)
		printf "m,k=v%d s=\"one\ntwo\nthree %d\",n=%di %d\n", i % 7, i, i, i }' > "$T/in.lp"
	run --separate-stderr "$W" write -d "$D" "$T/in.lp"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"wrote 40000 points"* ]]
	"$W" dump -d "$D" --format lp | cmp - "$T/in.lp"
}

@test "generated points are TSBS cpu-only shaped: 10 tags, 10 integer fields, 100 hosts, 10 s apart; the same every run" {
	"$W" bench --emit 1000 > "$T/a.lp"
	"$GEN" 1000 > "$T/b.lp"
	cmp "$T/a.lp" "$T/b.lp"
	[ "$(wc -l < "$T/a.lp")" -eq 1000 ]
	awk -F' ' '
		NF != 3 { print "line " NR ": " NF " parts"; bad = 1; next }
		{ nt = split($1, t, ","); nf = split($2, f, ",") }
		t[1] != "cpu" || nt != 11 { print "line " NR ": " nt - 1 " tags"; bad = 1 }
		nf != 10 { print "line " NR ": " nf " fields"; bad = 1 }
		{ for (i = 1; i <= nf; i++) if (f[i] !~ /^usage_[a-z_]+=[0-9]+i$/ || f[i] + 0 > 100) { print "line " NR ": field " f[i]; bad = 1 } }
		t[2] != "hostname=host_" (NR - 1) % 100 { print "line " NR ": " t[2]; bad = 1 }
		$3 != 1451606400000000000 + int((NR - 1) / 100) * 10000000000 { print "line " NR ": time " $3; bad = 1 }
		{ bytes += length($0) + 1 }
		END { if (bytes / NR < 320 || bytes / NR > 370) { print "mean line " bytes / NR " bytes"; bad = 1 }; exit bad }' "$T/a.lp"
	[ "$(cut -d' ' -f2 "$T/a.lp" | sort -u | wc -l)" -gt 900 ]
}
