#!/bin/sh
# make-fixtures.sh - how the fixtures in testdata/ were made.
#
#   testdata/make-fixtures.sh WALCTL WALFIX
#
# Each fixture is a data directory holding a small WAL: 60 RAW entries of
# 61 bytes in two segments (LSN 1-38 and SEAL 39 in the first, LSN 40-61
# and CLOSE 62 in the second), then damaged one precise way.  The fixtures
# are committed; rerunning this makes equivalent ones with new WAL ids.
set -eu
W=$1
F=$2
cd "$(dirname "$0")"

base() {
	rm -rf "$1"
	i=0
	while [ $i -lt 60 ]; do
		printf 'entry-%04d-%s\n' $i "0123456789012345678901234567890123456789abcdefghij"
		i=$((i + 1))
	done | "$W" -q write -d "$1" --input raw --batch 1 --max-segment-size 4k
}
off() { "$W" dump "$1" --format jsonl 2>/dev/null | sed -n "s/.*\"lsn\": $2, .*\"offset\": \([0-9]*\),.*/\1/p"; }
seg1=0000000000000001.wal
seg2=0000000000000028.wal

base clean

base torn-tail          # crash: CLOSE gone, last entry cut half-way
o=$(off torn-tail 62); "$F" cut torn-tail/wal/$seg2 "$o"
o=$(off torn-tail 61); "$F" cut torn-tail/wal/$seg2 $((o + 50))

base zero-tail          # crash, then 4 KiB of zeros after the last entry
o=$(off zero-tail 62); "$F" cut zero-tail/wal/$seg2 "$o"; "$F" zeros zero-tail/wal/$seg2 4096

base garbage-tail       # crash, then 500 bytes of garbage
o=$(off garbage-tail 62); "$F" cut garbage-tail/wal/$seg2 "$o"; "$F" garbage garbage-tail/wal/$seg2 500 7

base payload-flip-sealed  # bit flip in the payload of LSN 20, in the sealed segment
o=$(off payload-flip-sealed 20); "$F" flip payload-flip-sealed/wal/$seg1 $((o + 45)) 3

base payload-flip-vouched # bit flip in the payload of LSN 50; LSN 62 (CLOSE) vouches for it
o=$(off payload-flip-vouched 50); "$F" flip payload-flip-vouched/wal/$seg2 $((o + 45)) 3

base header-flip-unvouched # crash, then a bit flip in the header of the last entry
o=$(off header-flip-unvouched 62); "$F" cut header-flip-unvouched/wal/$seg2 "$o"
o=$(off header-flip-unvouched 61); "$F" flip header-flip-unvouched/wal/$seg2 $((o + 9)) 0

base huge-length        # LSN 45's length set to 4000000000, header CRC fixed
o=$(off huge-length 45); "$F" frame huge-length/wal/$seg2 "$o" len 4000000000

base lsn-gap            # LSN 61 renumbered 63 and CLOSE 62 renumbered 64
o=$(off lsn-gap 62); "$F" frame lsn-gap/wal/$seg2 "$o" lsn 64
o=$(off lsn-gap 61); "$F" frame lsn-gap/wal/$seg2 "$o" lsn 63

base duplicate-lsn      # LSN 45 renumbered 44
o=$(off duplicate-lsn 45); "$F" frame duplicate-lsn/wal/$seg2 "$o" lsn 44

base missing-segment    # a third segment made, the middle one removed
printf 'late\n' | "$W" -q write -d missing-segment --input raw
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40; do
	printf 'entry-late-%02d-0123456789012345678901234567890123456789abcdef\n' "$i"
done | "$W" -q write -d missing-segment --input raw --batch 1 --max-segment-size 4k
rm missing-segment/wal/$seg2

base name-mismatch      # second segment renamed as if it started at LSN 42
mv name-mismatch/wal/$seg2 name-mismatch/wal/000000000000002a.wal

base foreign-segment    # second segment replaced by the same-named segment of another WAL
base other-wal
cp other-wal/wal/$seg2 foreign-segment/wal/$seg2
rm -rf other-wal

base wrong-walid        # second segment's WAL id changed, header CRC fixed; frames still this WAL's
"$F" header wrong-walid/wal/$seg2 walid 0x1234567890abcdef

base bad-magic          # first byte of the first segment's magic changed
"$F" header bad-magic/wal/$seg1 magic 0x58

base future-version     # format version 2 in the first segment, header CRC fixed
"$F" header future-version/wal/$seg1 version 2

base header-flip        # bit flip in the first segment's creation time, CRC not fixed
"$F" flip header-flip/wal/$seg1 50 3

rm -f */LOCK
