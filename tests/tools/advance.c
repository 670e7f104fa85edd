/*
 * advance.c - move a consumer's cursor forward one LSN at a time, for the
 * power-cut test of the cursor file (tests/cli/consumers.bats).
 *
 *   advance DIR NAME TO     cursor +1 at a time until it is TO
 */
#include <stdio.h>
#include <stdlib.h>

#include "../../lib/walctl.h"

int main(int argc, char **argv)
{
	struct wal_consumer c;

	if (argc != 4) {
		fprintf(stderr, "usage: advance DIR NAME TO\n");
		return 2;
	}
	uint64_t to = strtoull(argv[3], NULL, 10);
	if (wal_consumer_get(argv[1], argv[2], &c) != 0) {
		fprintf(stderr, "advance: %s\n", wal_errmsg());
		return 1;
	}
	for (uint64_t l = c.lsn + 1; l <= to; l++)
		if (wal_consumer_advance(argv[1], argv[2], l) != 0) {
			fprintf(stderr, "advance: %s\n", wal_errmsg());
			return 1;
		}
	return 0;
}
