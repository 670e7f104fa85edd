/*
 * walfix - damage a segment one precise way, for tests and fixtures.
 *
 *   walfix flip FILE OFFSET BIT          flip one bit
 *   walfix cut FILE LENGTH               truncate to LENGTH bytes
 *   walfix zeros FILE N                  append N zero bytes
 *   walfix garbage FILE N SEED           append N pseudo-random bytes
 *   walfix frame FILE OFFSET len|lsn V   set a frame header field, CRC fixed
 *   walfix payload FILE OFFSET REL V     set payload byte REL of the frame at
 *                                        OFFSET, both CRCs fixed
 *   walfix header FILE version|walid|magic V [nocrc]
 *                                        set a segment header field
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "damage.h"

static uint64_t num(const char *s)
{
	return strtoull(s, NULL, 0);
}

int main(int argc, char **argv)
{
	int rc = -1;

	if (argc < 4) {
		fprintf(stderr, "usage: walfix flip|cut|zeros|garbage|frame|payload|header FILE ARGS...\n");
		return 16;
	}
	const char *op = argv[1], *f = argv[2];
	if (strcmp(op, "flip") == 0 && argc == 5)
		rc = dmg_flip(f, num(argv[3]), (int)num(argv[4]));
	else if (strcmp(op, "cut") == 0)
		rc = dmg_cut(f, num(argv[3]));
	else if (strcmp(op, "zeros") == 0)
		rc = dmg_append(f, (size_t)num(argv[3]), 0);
	else if (strcmp(op, "garbage") == 0 && argc == 5)
		rc = dmg_append(f, (size_t)num(argv[3]), (uint32_t)num(argv[4]) | 1);
	else if (strcmp(op, "frame") == 0 && argc == 6)
		rc = strcmp(argv[4], "len") == 0   ? dmg_frame_field(f, num(argv[3]), 0, num(argv[5]), 4)
		     : strcmp(argv[4], "lsn") == 0 ? dmg_frame_field(f, num(argv[3]), 8, num(argv[5]), 8)
						   : -1;
	else if (strcmp(op, "payload") == 0 && argc == 6)
		rc = dmg_payload_byte(f, num(argv[3]), (uint32_t)num(argv[4]), (unsigned char)num(argv[5]));
	else if (strcmp(op, "header") == 0 && argc >= 5) {
		int fix = !(argc == 6 && strcmp(argv[5], "nocrc") == 0);
		if (strcmp(argv[3], "version") == 0)
			rc = dmg_header_field(f, 8, num(argv[4]), 2, fix);
		else if (strcmp(argv[3], "walid") == 0)
			rc = dmg_header_field(f, 16, num(argv[4]), 8, fix);
		else if (strcmp(argv[3], "magic") == 0)
			rc = dmg_header_field(f, 0, num(argv[4]), 1, fix);
	}
	if (rc != 0) {
		fprintf(stderr, "walfix: %s %s failed\n", op, f);
		return 1;
	}
	return 0;
}
