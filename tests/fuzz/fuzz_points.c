/*
 * fuzz_points.c - libFuzzer target for the CBOR payload decoders (POINTS,
 * SEAL, CHECKPOINT, LOSS).  Whatever the points decoder accepts must survive
 * a round trip: decoded, re-encoded and decoded again, it gives the same
 * database and the same points, field by field, bit for bit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/walctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct buf {
	unsigned char *p;
	size_t n, cap;
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		size_t c = b->cap ? b->cap : 256;
		while (c < b->n + n)
			c *= 2;
		if (!(b->p = realloc(b->p, c)))
			abort();
		b->cap = c;
	}
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void put_str(struct buf *b, struct wal_str s)
{
	put(b, &s.n, sizeof s.n);
	put(b, s.p, s.n);
}

/* Every part of a point, in an unambiguous byte form. */
static void serialize(struct buf *b, const struct wal_point *pt)
{
	put_str(b, pt->measurement);
	put(b, &pt->time, sizeof pt->time);
	put(b, &pt->ntags, sizeof pt->ntags);
	for (size_t i = 0; i < pt->ntags; i++) {
		put_str(b, pt->tags[i].key);
		put_str(b, pt->tags[i].val);
	}
	put(b, &pt->nfields, sizeof pt->nfields);
	for (size_t i = 0; i < pt->nfields; i++) {
		const struct wal_field *f = &pt->fields[i];
		int kind = (int)f->kind;
		put_str(b, f->key);
		put(b, &kind, sizeof kind);
		switch (f->kind) {
		case WAL_FLOAT: put(b, &f->v.f, sizeof f->v.f); break;
		case WAL_INT: put(b, &f->v.i, sizeof f->v.i); break;
		case WAL_UINT: put(b, &f->v.u, sizeof f->v.u); break;
		case WAL_STRING: put_str(b, f->v.s); break;
		case WAL_BOOL: put(b, &f->v.b, sizeof f->v.b); break;
		default: abort();
		}
	}
}

/* Decode payload: the database and every point it yields into out, and
 * re-encode them with e.  Returns the number of points (-1: not a payload). */
static long pass(wal_dec_t *d, wal_enc_t *e, const uint8_t *data, size_t size, struct buf *out)
{
	struct wal_str db;
	struct wal_point pt;
	long n = 0;

	if (wal_dec_begin(d, data, size, &db) != 0)
		return -1;
	put_str(out, db);
	if (wal_enc_begin(e, db.p, db.n))
		abort();
	while (wal_dec_next(d, &pt) == 1) {
		serialize(out, &pt);
		if (wal_enc_add(e, &pt))
			abort();
		n++;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static wal_dec_t *d;
	static wal_enc_t *e1, *e2;
	struct buf a = { 0 }, b = { 0 };
	struct wal_seal s;
	struct wal_checkpoint c;
	const unsigned char *again;
	size_t len;

	if (!d && (wal_dec_new(&d) || wal_enc_new(&e1) || wal_enc_new(&e2)))
		abort();
	long n = pass(d, e1, data, size, &a);
	if (n > 0) {
		if (wal_enc_finish(e1, &again, &len))
			abort();
		long m = pass(d, e2, again, len, &b);
		if (m != n || a.n != b.n || memcmp(a.p, b.p, a.n) != 0) {
			fprintf(stderr, "fuzz_points: %ld points decoded, %ld after re-encoding, or they differ\n", n, m);
			abort();
		}
	}
	free(a.p);
	free(b.p);
	(void)wal_seal_decode(data, size, &s);
	struct wal_str names[4];
	struct wal_loss l;
	(void)wal_checkpoint_decode(data, size, &c, names, 4);
	(void)wal_loss_decode(data, size, &l);
	return 0;
}
