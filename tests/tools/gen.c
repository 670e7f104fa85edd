/*
 * gen - print N generated TSBS cpu-only shaped points as line protocol.
 *
 *   gen N [SEED [HOSTS]]
 */
#include <stdio.h>
#include <stdlib.h>

#include "../../lib/walctl.h"

int main(int argc, char **argv)
{
	wal_gen_t *g;
	char line[1024];
	unsigned long long n;

	if (argc < 2) {
		fprintf(stderr, "usage: gen N [SEED [HOSTS]]\n");
		return 16;
	}
	n = strtoull(argv[1], NULL, 10);
	if (wal_gen_new(&g, argc > 2 ? strtoull(argv[2], NULL, 10) : 1, argc > 3 ? (unsigned)atoi(argv[3]) : 100))
		return 8;
	static char obuf[1 << 16];
	setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
	for (unsigned long long i = 0; i < n; i++) {
		size_t len = wal_gen_line(g, line, sizeof line);
		fwrite(line, 1, len, stdout);
	}
	wal_gen_free(g);
	return fflush(stdout) == 0 ? 0 : 8;
}
