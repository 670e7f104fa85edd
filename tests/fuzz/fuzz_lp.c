/*
 * fuzz_lp.c - libFuzzer target for the line-protocol parser.  Besides not
 * crashing:
 *  - every point it accepts survives a round trip: formatted back to line
 *    protocol and parsed again, it is the same point;
 *  - the input is used up exactly once: each point or rejected line ends
 *    where the next begins, so points + rejected lines + blank and comment
 *    lines account for every line;
 *  - each piece, parsed alone, gives the same one point (the point equals
 *    the line it came from) or the same one rejection;
 *  - a rejection takes more than one line only when a quoted string
 *    carried it over a newline: it never takes the next line with it.
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

/* The piece [from, to) of the input, parsed alone: exactly one result, r,
 * and the same point if it is one. */
static void alone(const uint8_t *data, size_t from, size_t to, int r, const struct wal_point *pt,
                  enum wal_precision prec)
{
	wal_lp_t *q;
	struct wal_point again;

	if (wal_lp_new(&q, prec, 0))
		abort();
	wal_lp_input(q, (const char *)data + from, to - from, 1, 1);
	int k = wal_lp_next(q, &again);
	if (k != r || (r == 1 && !same(pt, &again)))
		abort();
	if (wal_lp_next(q, &again) != 0 || wal_lp_consumed(q) != to - from)
		abort();
	wal_lp_free(q);
}

static void one(const uint8_t *data, size_t size, enum wal_precision prec)
{
	wal_lp_t *p, *q;
	struct wal_point pt, again;
	size_t prev = 0;
	int r;

	if (wal_lp_new(&p, prec, 0) || wal_lp_new(&q, WAL_PREC_NS, 0)) /* points print in ns */
		abort();
	wal_lp_input(p, (const char *)data, size, 1, 1);
	while ((r = wal_lp_next(p, &pt)) != 0) {
		size_t at = wal_lp_consumed(p);
		if (r != 1 && r != WAL_EPARSE)
			abort();
		if (at <= prev || at > size)
			abort();
		if (r == WAL_EPARSE) {
			/* blank and comment lines before it, then the rejected line:
			 * a newline inside the rejected part before its last byte
			 * must follow a quote */
			size_t start = prev;
			int ddl = 0; /* in an export's DDL section (a piece starts outside one) */
			for (size_t i = prev; i < at; i++) {
				if (data[i] != '\n' || i + 1 == at)
					continue;
				int quoted = memchr(data + start, '"', i - start) != NULL;
				/* the parser skips spaces before a line, not tabs: a
				 * line that starts with a tab is neither blank nor a
				 * comment, nor a directive */
				size_t j = start;
				while (j < i && data[j] == ' ')
					j++;
				int blank = j == i || (j + 1 == i && data[j] == '\r'); /* LF or CRLF */
				int skipped = blank || data[j] == '#' || ddl;          /* blank, comment, DDL */
				size_t e = i;
				while (e > j && (data[e - 1] == ' ' || data[e - 1] == '\t' || data[e - 1] == '\r'))
					e--;
				if (e - j == 5 && !memcmp(data + j, "# DDL", 5))
					ddl = 1;
				if (e - j == 5 && !memcmp(data + j, "# DML", 5))
					ddl = 0;
				if (!skipped && !quoted)
					abort(); /* the next line went with it */
				if (skipped)
					start = i + 1;
			}
		}
		alone(data, prev, at, r, &pt, prec);
		prev = at;
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
	/* what is left is blank and comment lines */
	alone(data, prev, size, 0, NULL, prec);
	wal_lp_free(p);
	wal_lp_free(q);
}

/* In nanoseconds, and in seconds, where timestamps can be out of range. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size, WAL_PREC_NS);
	one(data, size, WAL_PREC_S);
	return 0;
}
