/*
 * fuzz_lp.c - libFuzzer target for the line-protocol parser.  Besides not
 * crashing, every point it accepts must survive a round trip: formatted
 * back to line protocol and parsed again, it is the same point.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/walctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const struct wal_point *a, const struct wal_point *b)
{
#define EQS(x, y) ((x).n == (y).n && memcmp((x).p, (y).p, (x).n) == 0)
	if (!EQS(a->measurement, b->measurement) || a->ntags != b->ntags || a->nfields != b->nfields ||
	    a->time != b->time)
		return 0;
	for (size_t i = 0; i < a->ntags; i++)
		if (!EQS(a->tags[i].key, b->tags[i].key) || !EQS(a->tags[i].val, b->tags[i].val))
			return 0;
	for (size_t i = 0; i < a->nfields; i++) {
		const struct wal_field *f = &a->fields[i], *g = &b->fields[i];
		if (!EQS(f->key, g->key) || f->kind != g->kind)
			return 0;
		if ((f->kind == WAL_STRING && !EQS(f->v.s, g->v.s)) || (f->kind == WAL_INT && f->v.i != g->v.i) ||
		    (f->kind == WAL_UINT && f->v.u != g->v.u) || (f->kind == WAL_BOOL && f->v.b != g->v.b) ||
		    (f->kind == WAL_FLOAT && f->v.f != g->v.f))
			return 0;
	}
	return 1;
#undef EQS
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wal_lp_t *p, *q;
	struct wal_point pt, again;
	int r;

	if (wal_lp_new(&p, WAL_PREC_NS, 0) || wal_lp_new(&q, WAL_PREC_NS, 0))
		abort();
	wal_lp_input(p, (const char *)data, size, 1, 1);
	while ((r = wal_lp_next(p, &pt)) != 0) {
		if (r != 1)
			continue;
		size_t n = wal_lp_format(NULL, 0, &pt);
		char *line = malloc(n + 1);
		if (!line)
			abort();
		wal_lp_format(line, n + 1, &pt);
		wal_lp_input(q, line, n, 1, 1);
		if (wal_lp_next(q, &again) != 1 || !same(&pt, &again))
			abort();
		free(line);
	}
	wal_lp_free(p);
	wal_lp_free(q);
	return 0;
}
