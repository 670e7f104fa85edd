/*
 * points.c - CBOR payloads: POINTS batches, SEAL and CHECKPOINT frames.
 *
 * Encoded with libcbor's streaming encoders (never item trees: they
 * measured 9 to 12 times slower) and decoded by wal_cbor_item, which reads
 * one item of the few kinds these payloads hold in a handful of
 * instructions; libcbor's streaming decoder, which it replaces, called back
 * per item and took most of a decode's time.  tests/unit/test_codec.c
 * holds it to libcbor's answers on every input.
 *
 * POINTS payload:
 *
 *   array(3) [ 1 (payload version), db (text), indefinite array [ point... ] ]
 *
 *   point = array(n) [ key(measurement), time (int), T (uint),
 *                      T x ( key(tag key), tag value (text) ),
 *                      F x ( key(field key) with kind, value ) ]
 *
 * Keys (measurement names, tag keys, field keys) are not repeated: the
 * first use of a key in a payload is preceded by its text, which appends it
 * to the payload's dictionary; every use is then a uint index.  For a field
 * the index is shifted left by 3 and or-ed with the value's kind: 1 float
 * (CBOR double), 2 int (CBOR int), 3 uint (CBOR uint), 4 string (text),
 * 5 bool.  n counts every item of the point, key texts included, so a
 * decoder knows where the fields end.
 *
 * SEAL payload:       array(4) [ entries, first LSN, last LSN, bytes ]
 * CHECKPOINT payload: array(3) [ LSN, time ns, array [ partition (text)... ] ]
 * LOSS payload:       array(3) [ first LSN, last LSN, reason (text) ]
 */
#include <cbor.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define HEADROOM WAL_FRAME_HEADER_SIZE

/* ------------------------------------------------------------- encoder */

struct key {
	uint32_t off, len, hash;
};

struct wal_enc {
	unsigned char *buf;
	size_t cap, len;
	size_t count;
	char *kbuf; /* key text arena */
	size_t kcap, klen;
	struct key *keys;
	size_t nkeys, capkeys;
	uint32_t *slots; /* open addressing: key index + 1 */
	size_t nslots;
	uint32_t *prev; /* key index by position in the last point */
	size_t nprev, capprev;
	uint32_t *cur; /* this point's key indexes (| 1<<31: new) */
	size_t capcur;
};

static uint32_t hash_bytes(const char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

int wal_enc_new(wal_enc_t **out)
{
	wal_enc_t *e = calloc(1, sizeof *e);

	*out = NULL;
	if (!e)
		return wal_seterr(WAL_ENOMEM, "out of memory");
	e->nslots = 1024;
	e->slots = calloc(e->nslots, sizeof *e->slots);
	if (!e->slots) {
		free(e);
		return wal_seterr(WAL_ENOMEM, "out of memory");
	}
	*out = e;
	return 0;
}

void wal_enc_free(wal_enc_t *e)
{
	if (!e)
		return;
	free(e->buf);
	free(e->kbuf);
	free(e->keys);
	free(e->slots);
	free(e->prev);
	free(e->cur);
	free(e);
}

static int reserve(wal_enc_t *e, size_t n) { return wal_grow((void **)&e->buf, &e->cap, e->len + n, 1); }

static size_t put_text(unsigned char *p, size_t room, const char *s, size_t n)
{
	size_t h = cbor_encode_string_start(n, p, room);

	if (!h || h + n > room)
		return 0;
	memcpy(p + h, s, n);
	return h + n;
}

size_t wal_point_encoded_max(const struct wal_point *pt)
{
	/* a CBOR head is at most 9 bytes; a key is its text and its index */
	size_t n = 9 + 9 + 9 + 9 + 9 + pt->measurement.n;

	for (size_t i = 0; i < pt->ntags; i++)
		n += 9 + 9 + pt->tags[i].key.n + 9 + pt->tags[i].val.n;
	for (size_t i = 0; i < pt->nfields; i++)
		n += 9 + 9 + pt->fields[i].key.n + 9 + (pt->fields[i].kind == WAL_STRING ? pt->fields[i].v.s.n : 0);
	return n;
}

int wal_enc_begin(wal_enc_t *e, const char *db, size_t dblen)
{
	unsigned char *p;
	size_t room;

	e->len = HEADROOM;
	e->count = 0;
	e->nkeys = 0;
	e->klen = 0;
	e->nprev = 0;
	memset(e->slots, 0, e->nslots * sizeof *e->slots);
	if (reserve(e, 32 + dblen) != 0)
		return WAL_ENOMEM;
	p = e->buf + e->len;
	room = e->cap - e->len;
	size_t n = cbor_encode_array_start(3, p, room);
	n += cbor_encode_uint(1, p + n, room - n);
	n += put_text(p + n, room - n, db, dblen);
	n += cbor_encode_indef_array_start(p + n, room - n);
	e->len += n;
	return 0;
}

static int rehash(wal_enc_t *e)
{
	size_t n = e->nslots * 2;
	uint32_t *s = calloc(n, sizeof *s);

	if (!s)
		return wal_seterr(WAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < e->nkeys; i++) {
		size_t j = e->keys[i].hash & (n - 1);
		while (s[j])
			j = (j + 1) & (n - 1);
		s[j] = (uint32_t)i + 1;
	}
	free(e->slots);
	e->slots = s;
	e->nslots = n;
	return 0;
}

/* Index of key (p, n) at position pos of the point; bit 31 set if new. */
static int64_t key_index(wal_enc_t *e, size_t pos, const char *p, size_t n)
{
	if (pos < e->nprev) {
		const struct key *k = &e->keys[e->prev[pos]];
		if (k->len == n && memcmp(e->kbuf + k->off, p, n) == 0)
			return e->prev[pos];
	}
	uint32_t h = hash_bytes(p, n);
	size_t j = h & (e->nslots - 1);
	while (e->slots[j]) {
		const struct key *k = &e->keys[e->slots[j] - 1];
		if (k->hash == h && k->len == n && memcmp(e->kbuf + k->off, p, n) == 0)
			return e->slots[j] - 1;
		j = (j + 1) & (e->nslots - 1);
	}
	if (n > UINT32_MAX || e->nkeys >= (1u << 28))
		return wal_seterr(WAL_ETOOBIG, "too many or too long keys in one batch");
	if (wal_grow((void **)&e->keys, &e->capkeys, e->nkeys + 1, sizeof *e->keys) ||
	    wal_grow((void **)&e->kbuf, &e->kcap, e->klen + n + 1, 1))
		return WAL_ENOMEM;
	memcpy(e->kbuf + e->klen, p, n);
	e->keys[e->nkeys] = (struct key){ (uint32_t)e->klen, (uint32_t)n, h };
	e->klen += n;
	e->slots[j] = (uint32_t)e->nkeys + 1;
	e->nkeys++;
	if (e->nkeys * 2 > e->nslots && rehash(e) != 0)
		return WAL_ENOMEM;
	return (int64_t)(e->nkeys - 1) | (1ll << 31);
}

static size_t put_int(unsigned char *p, size_t room, int64_t v)
{
	if (v >= 0)
		return cbor_encode_uint((uint64_t)v, p, room);
	return cbor_encode_negint((uint64_t)(-1 - v), p, room);
}

int wal_enc_add(wal_enc_t *e, const struct wal_point *pt)
{
	size_t nkeys = 1 + pt->ntags + pt->nfields, items = 3, bound = 64, pos = 0;
	int64_t k;

	if (wal_grow((void **)&e->cur, &e->capcur, nkeys, sizeof *e->cur) != 0)
		return WAL_ENOMEM;
	/* Look every key up first: the item count goes in the array header. */
	if ((k = key_index(e, pos, pt->measurement.p, pt->measurement.n)) < 0)
		return (int)k;
	e->cur[pos++] = (uint32_t)k;
	bound += 2 * pt->measurement.n;
	for (size_t i = 0; i < pt->ntags; i++) {
		if ((k = key_index(e, pos, pt->tags[i].key.p, pt->tags[i].key.n)) < 0)
			return (int)k;
		e->cur[pos++] = (uint32_t)k;
		items += 2;
		bound += 2 * pt->tags[i].key.n + pt->tags[i].val.n + 18;
	}
	for (size_t i = 0; i < pt->nfields; i++) {
		const struct wal_field *f = &pt->fields[i];
		if ((k = key_index(e, pos, f->key.p, f->key.n)) < 0)
			return (int)k;
		e->cur[pos++] = (uint32_t)k;
		items += 2;
		bound += 2 * f->key.n + 27 + (f->kind == WAL_STRING ? f->v.s.n : 0);
	}
	for (size_t i = 0; i < nkeys; i++)
		items += e->cur[i] >> 31;
	if (reserve(e, bound + 9 * nkeys) != 0)
		return WAL_ENOMEM;

	unsigned char *p = e->buf + e->len;
	size_t room = e->cap - e->len, n = 0;
#define KEY(i, s, len, shift, kind)                                                                                    \
	do {                                                                                                           \
		uint32_t c_ = e->cur[i];                                                                               \
		if (c_ >> 31)                                                                                          \
			n += put_text(p + n, room - n, (s), (len));                                                    \
		n += cbor_encode_uint(((uint64_t)(c_ & 0x7fffffff) << (shift)) | (kind), p + n, room - n);             \
	} while (0)
	n += cbor_encode_array_start(items, p, room);
	KEY(0, pt->measurement.p, pt->measurement.n, 0, 0);
	n += put_int(p + n, room - n, pt->time);
	n += cbor_encode_uint(pt->ntags, p + n, room - n);
	pos = 1;
	for (size_t i = 0; i < pt->ntags; i++, pos++) {
		KEY(pos, pt->tags[i].key.p, pt->tags[i].key.n, 0, 0);
		n += put_text(p + n, room - n, pt->tags[i].val.p, pt->tags[i].val.n);
	}
	for (size_t i = 0; i < pt->nfields; i++, pos++) {
		const struct wal_field *f = &pt->fields[i];
		KEY(pos, f->key.p, f->key.n, 3, (unsigned)f->kind);
		switch (f->kind) {
		case WAL_FLOAT: n += cbor_encode_double(f->v.f, p + n, room - n); break;
		case WAL_INT: n += put_int(p + n, room - n, f->v.i); break;
		case WAL_UINT: n += cbor_encode_uint(f->v.u, p + n, room - n); break;
		case WAL_STRING: n += put_text(p + n, room - n, f->v.s.p, f->v.s.n); break;
		case WAL_BOOL: n += cbor_encode_bool(f->v.b != 0, p + n, room - n); break;
		default: return wal_seterr(WAL_EINVAL, "field of unknown kind %d", (int)f->kind);
		}
	}
#undef KEY
	e->len += n;
	e->count++;
	/* Remember this point's keys by position for the next one. */
	if (wal_grow((void **)&e->prev, &e->capprev, nkeys, sizeof *e->prev) != 0)
		return WAL_ENOMEM;
	for (size_t i = 0; i < nkeys; i++)
		e->prev[i] = e->cur[i] & 0x7fffffff;
	e->nprev = nkeys;
	return 0;
}

int wal_enc_finish(wal_enc_t *e, const unsigned char **payload, size_t *len)
{
	if (reserve(e, 1) != 0)
		return WAL_ENOMEM;
	e->len += cbor_encode_break(e->buf + e->len, 1);
	*payload = e->buf + HEADROOM;
	*len = e->len - HEADROOM;
	return 0;
}

size_t wal_enc_count(const wal_enc_t *e) { return e->count; }
size_t wal_enc_size(const wal_enc_t *e) { return e->len - HEADROOM; }

/* ------------------------------------------------------------- decoder */

/* The argument of an item head: AI below 24 is the value itself, 24 to 27
 * announce 1, 2, 4 or 8 big-endian bytes; anything else is malformed. */
static inline __attribute__((always_inline)) int head_arg(const unsigned char *p, size_t len, unsigned ai, uint64_t *v,
                                                          size_t *used)
{
	static const unsigned char bytes[4] = { 1, 2, 4, 8 };

	if (ai < 24) {
		*v = ai;
		*used = 1;
		return 0;
	}
	if (ai > 27)
		return WAL_EPARSE;
	size_t k = bytes[ai - 24];
	if (len < 1 + k)
		return WAL_EPARSE;
	uint64_t x = 0;
	for (size_t i = 1; i <= k; i++)
		x = x << 8 | p[i];
	*v = x;
	*used = 1 + k;
	return 0;
}

/* A half-precision float (RFC 8949 appendix D), as a float. */
static float half_float(unsigned h)
{
	unsigned e = (h >> 10) & 0x1f, m = h & 0x3ff;
	double v = e == 0 ? ldexp(m, -24) : e != 31 ? ldexp(m + 1024, (int)e - 25) : m == 0 ? INFINITY : NAN;
	return (float)(h & 0x8000 ? -v : v);
}

static inline __attribute__((always_inline)) int cbor_item(const unsigned char *p, size_t len, struct item *it,
                                                           size_t *used)
{
	uint64_t v;
	size_t h;

	it->type = IT_NONE;
	if (len == 0)
		return WAL_EPARSE;
	unsigned major = p[0] >> 5, ai = p[0] & 0x1f;
	switch (major) {
	case 0: /* unsigned integer */
	case 1: /* negative integer: -1 - v */
		if (head_arg(p, len, ai, &v, &h) != 0)
			return WAL_EPARSE;
		it->type = major == 0 ? IT_UINT : IT_NEG;
		it->u = v;
		*used = h;
		return 0;
	case 3: /* text string, definite length only */
		if (head_arg(p, len, ai, &v, &h) != 0 || v > len - h)
			return WAL_EPARSE;
		it->type = IT_TEXT;
		it->p = p + h;
		it->n = (size_t)v;
		*used = h + (size_t)v;
		return 0;
	case 4: /* array */
		if (ai == 31) {
			it->type = IT_INDEF;
			*used = 1;
			return 0;
		}
		if (head_arg(p, len, ai, &v, &h) != 0)
			return WAL_EPARSE;
		it->type = IT_ARRAY;
		it->u = v;
		*used = h;
		return 0;
	case 7:
		switch (ai) {
		case 20:
		case 21:
			it->type = IT_BOOL;
			it->b = ai == 21;
			*used = 1;
			return 0;
		case 25:
		case 26:
		case 27: {
			if (head_arg(p, len, ai, &v, &h) != 0)
				return WAL_EPARSE;
			it->type = IT_FLOAT;
			if (ai == 25) {
				it->d = half_float((unsigned)v);
			} else if (ai == 26) {
				uint32_t b32 = (uint32_t)v;
				float f;
				memcpy(&f, &b32, sizeof f);
				it->d = f;
			} else {
				memcpy(&it->d, &v, sizeof it->d);
			}
			*used = h;
			return 0;
		}
		case 31:
			it->type = IT_BREAK;
			*used = 1;
			return 0;
		default: return WAL_EPARSE; /* null, undefined, simple values */
		}
	default: return WAL_EPARSE; /* byte strings, maps, tags */
	}
}

int wal_cbor_item(const unsigned char *p, size_t len, struct item *it, size_t *used)
{
	return cbor_item(p, len, it, used);
}

struct cursor {
	const unsigned char *p;
	size_t len, off;
};

static inline __attribute__((always_inline)) int next_item(struct cursor *c, struct item *it)
{
	size_t used;

	if (c->off >= c->len || cbor_item(c->p + c->off, c->len - c->off, it, &used) != 0)
		return WAL_EPARSE;
	c->off += used;
	/* Strings are handed over in place: make sure they lie inside. */
	if (it->type == IT_TEXT && (it->n > c->len || it->p + it->n > c->p + c->len))
		return WAL_EPARSE;
	return 0;
}

static int expect(struct cursor *c, struct item *it, int type)
{
	int rc = next_item(c, it);
	return rc ? rc : it->type == type ? 0 : WAL_EPARSE;
}

struct wal_dec {
	struct cursor c;
	struct wal_str *dict;
	size_t ndict, capdict;
	struct wal_tag *tags;
	size_t captags;
	struct wal_field *fields;
	size_t capfields;
	int done;
};

int wal_dec_new(wal_dec_t **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? 0 : wal_seterr(WAL_ENOMEM, "out of memory");
}

void wal_dec_free(wal_dec_t *d)
{
	if (!d)
		return;
	free(d->dict);
	free(d->tags);
	free(d->fields);
	free(d);
}

int wal_dec_begin(wal_dec_t *d, const unsigned char *payload, size_t len, struct wal_str *db)
{
	struct item it;

	d->c = (struct cursor){ payload, len, 0 };
	d->ndict = 0;
	d->done = 0;
	if (expect(&d->c, &it, IT_ARRAY) || it.u != 3 || expect(&d->c, &it, IT_UINT) || it.u != 1 ||
	    expect(&d->c, &it, IT_TEXT))
		return wal_seterr(WAL_EPARSE, "points payload: bad envelope");
	db->p = (const char *)it.p;
	db->n = it.n;
	if (expect(&d->c, &it, IT_INDEF))
		return wal_seterr(WAL_EPARSE, "points payload: bad envelope");
	return 0;
}

/* A key: an optional text (a new dictionary entry), then a uint. */
static int read_key(wal_dec_t *d, uint64_t *ref, uint64_t *items)
{
	struct item it;

	if (*items == 0 || next_item(&d->c, &it))
		return WAL_EPARSE;
	(*items)--;
	if (it.type == IT_TEXT) {
		if (d->ndict == d->capdict &&
		    wal_grow((void **)&d->dict, &d->capdict, d->ndict + 1, sizeof *d->dict) != 0)
			return WAL_ENOMEM;
		d->dict[d->ndict++] = (struct wal_str){ (const char *)it.p, it.n };
		if (*items == 0 || next_item(&d->c, &it))
			return WAL_EPARSE;
		(*items)--;
	}
	if (it.type != IT_UINT)
		return WAL_EPARSE;
	*ref = it.u;
	return 0;
}

static int read_int(struct cursor *c, int64_t *v)
{
	struct item it;

	if (next_item(c, &it))
		return WAL_EPARSE;
	if (it.type == IT_UINT && it.u <= INT64_MAX)
		*v = (int64_t)it.u;
	else if (it.type == IT_NEG && it.u <= INT64_MAX)
		*v = -1 - (int64_t)it.u;
	else
		return WAL_EPARSE;
	return 0;
}

int wal_dec_count(const unsigned char *payload, size_t len, struct wal_str *db, uint64_t *n)
{
	struct cursor c = { payload, len, 0 };
	struct item it;

	*n = 0;
	if (expect(&c, &it, IT_ARRAY) || it.u != 3 || expect(&c, &it, IT_UINT) || it.u != 1 || expect(&c, &it, IT_TEXT))
		return wal_seterr(WAL_EPARSE, "points payload: bad envelope");
	db->p = (const char *)it.p;
	db->n = it.n;
	if (expect(&c, &it, IT_INDEF))
		return wal_seterr(WAL_EPARSE, "points payload: bad envelope");
	for (;;) {
		if (next_item(&c, &it))
			return wal_seterr(WAL_EPARSE, "points payload: malformed point at byte %zu", c.off);
		if (it.type == IT_BREAK)
			return c.off == c.len ? 0 : wal_seterr(WAL_EPARSE, "points payload: bytes after the end");
		if (it.type != IT_ARRAY)
			return wal_seterr(WAL_EPARSE, "points payload: malformed point at byte %zu", c.off);
		/* the items of a point are scalars and texts, one header each */
		for (uint64_t i = 0; i < it.u; i++) {
			struct item x;
			if (next_item(&c, &x) || x.type == IT_ARRAY || x.type == IT_INDEF || x.type == IT_BREAK)
				return wal_seterr(WAL_EPARSE, "points payload: malformed point at byte %zu", c.off);
		}
		(*n)++;
	}
}

int wal_dec_next(wal_dec_t *d, struct wal_point *out)
{
	struct item it;
	uint64_t items, ref, ntags;
	size_t nf = 0;

	if (d->done)
		return 0;
	if (next_item(&d->c, &it))
		goto bad;
	if (it.type == IT_BREAK) {
		if (d->c.off != d->c.len)
			goto bad;
		d->done = 1;
		return 0;
	}
	if (it.type != IT_ARRAY || it.u < 4)
		goto bad;
	items = it.u;
	if (read_key(d, &ref, &items) || ref >= d->ndict)
		goto bad;
	out->measurement = d->dict[ref];
	if (items < 2 || read_int(&d->c, &out->time) || expect(&d->c, &it, IT_UINT))
		goto bad;
	items -= 2;
	ntags = it.u;
	if (ntags > items / 2)
		goto bad;
	if (ntags + 1 > d->captags && wal_grow((void **)&d->tags, &d->captags, ntags + 1, sizeof *d->tags) != 0)
		return WAL_ENOMEM;
	for (uint64_t i = 0; i < ntags; i++) {
		if (read_key(d, &ref, &items) || ref >= d->ndict || items == 0 || expect(&d->c, &it, IT_TEXT))
			goto bad;
		items--;
		d->tags[i].key = d->dict[ref];
		d->tags[i].val = (struct wal_str){ (const char *)it.p, it.n };
	}
	while (items > 0) {
		struct wal_field *f;
		if (nf == d->capfields && wal_grow((void **)&d->fields, &d->capfields, nf + 1, sizeof *d->fields) != 0)
			return WAL_ENOMEM;
		f = &d->fields[nf];
		if (read_key(d, &ref, &items) || (ref >> 3) >= d->ndict || items == 0)
			goto bad;
		items--;
		f->key = d->dict[ref >> 3];
		f->kind = (enum wal_kind)(ref & 7);
		switch (f->kind) {
		case WAL_FLOAT:
			if (expect(&d->c, &it, IT_FLOAT))
				goto bad;
			f->v.f = it.d;
			break;
		case WAL_INT:
			if (read_int(&d->c, &f->v.i))
				goto bad;
			break;
		case WAL_UINT:
			if (expect(&d->c, &it, IT_UINT))
				goto bad;
			f->v.u = it.u;
			break;
		case WAL_STRING:
			if (expect(&d->c, &it, IT_TEXT))
				goto bad;
			f->v.s = (struct wal_str){ (const char *)it.p, it.n };
			break;
		case WAL_BOOL:
			if (expect(&d->c, &it, IT_BOOL))
				goto bad;
			f->v.b = it.b;
			break;
		default: goto bad;
		}
		nf++;
	}
	if (nf == 0)
		goto bad;
	out->tags = d->tags;
	out->ntags = ntags;
	out->fields = d->fields;
	out->nfields = nf;
	return 1;
bad:
	d->done = 1;
	return wal_seterr(WAL_EPARSE, "points payload: malformed point at byte %zu", d->c.off);
}

/* -------------------------------------------------- seal and checkpoint */

size_t wal_seal_encode(unsigned char *buf, size_t cap, const struct wal_seal *s)
{
	size_t n = cbor_encode_array_start(4, buf, cap);

	n += cbor_encode_uint(s->entries, buf + n, cap - n);
	n += cbor_encode_uint(s->first_lsn, buf + n, cap - n);
	n += cbor_encode_uint(s->last_lsn, buf + n, cap - n);
	n += cbor_encode_uint(s->bytes, buf + n, cap - n);
	return n;
}

int wal_seal_decode(const unsigned char *p, size_t len, struct wal_seal *s)
{
	struct cursor c = { p, len, 0 };
	struct item it;
	uint64_t *v[4] = { &s->entries, &s->first_lsn, &s->last_lsn, &s->bytes };

	if (expect(&c, &it, IT_ARRAY) || it.u != 4)
		return WAL_EPARSE;
	for (int i = 0; i < 4; i++) {
		if (expect(&c, &it, IT_UINT))
			return WAL_EPARSE;
		*v[i] = it.u;
	}
	return c.off == len ? 0 : WAL_EPARSE;
}

size_t wal_checkpoint_encode(unsigned char *buf, size_t cap, const struct wal_checkpoint *cp)
{
	size_t n = cbor_encode_array_start(3, buf, cap);

	n += cbor_encode_uint(cp->lsn, buf + n, cap - n);
	n += put_int(buf + n, cap - n, cp->time_ns);
	n += cbor_encode_array_start(cp->npartitions, buf + n, cap - n);
	for (size_t i = 0; i < cp->npartitions; i++) {
		size_t m = put_text(buf + n, cap - n, cp->partitions[i].p, cp->partitions[i].n);
		if (!m)
			return 0;
		n += m;
	}
	return n;
}

int wal_checkpoint_of(const struct wal_entry *e, struct wal_checkpoint *c)
{
	return (e->type & 0x7f) == WAL_T_CHECKPOINT && wal_checkpoint_decode(e->payload, e->len, c, NULL, 0) == 0 &&
	       c->lsn < e->lsn;
}

int wal_checkpoint_decode(const unsigned char *p, size_t len, struct wal_checkpoint *cp, struct wal_str *names,
                          size_t cap)
{
	struct cursor c = { p, len, 0 };
	struct item it;

	memset(cp, 0, sizeof *cp);
	cp->partitions = names;
	if (expect(&c, &it, IT_ARRAY) || it.u != 3 || expect(&c, &it, IT_UINT))
		return WAL_EPARSE;
	cp->lsn = it.u;
	if (read_int(&c, &cp->time_ns) || expect(&c, &it, IT_ARRAY) || it.u > len)
		return WAL_EPARSE;
	cp->npartitions = it.u;
	for (uint64_t i = 0; i < cp->npartitions; i++) {
		struct item s;
		if (expect(&c, &s, IT_TEXT))
			return WAL_EPARSE;
		if (i < cap)
			names[i] = (struct wal_str){ (const char *)s.p, s.n };
	}
	return c.off == len ? 0 : WAL_EPARSE;
}

size_t wal_loss_encode(unsigned char *buf, size_t cap, const struct wal_loss *l)
{
	size_t n = cbor_encode_array_start(3, buf, cap);

	n += cbor_encode_uint(l->first_lsn, buf + n, cap - n);
	n += cbor_encode_uint(l->last_lsn, buf + n, cap - n);
	size_t m = put_text(buf + n, cap - n, l->reason.p, l->reason.n);
	return m ? n + m : 0;
}

size_t wal_storage_loss_encode(unsigned char *buf, size_t cap, const struct wal_storage_loss *l)
{
	size_t n = cbor_encode_array_start(4, buf, cap);

	n += cbor_encode_uint(l->first_lsn, buf + n, cap - n);
	n += cbor_encode_uint(l->last_lsn, buf + n, cap - n);
	size_t m = put_text(buf + n, cap - n, l->partition.p, l->partition.n);
	size_t k = m ? put_text(buf + n + m, cap - n - m, l->reason.p, l->reason.n) : 0;
	return m && k ? n + m + k : 0;
}

int wal_storage_loss_decode(const unsigned char *p, size_t len, struct wal_storage_loss *l)
{
	struct cursor c = { p, len, 0 };
	struct item it;

	if (expect(&c, &it, IT_ARRAY) || it.u != 4 || expect(&c, &it, IT_UINT))
		return WAL_EPARSE;
	l->first_lsn = it.u;
	if (expect(&c, &it, IT_UINT))
		return WAL_EPARSE;
	l->last_lsn = it.u;
	if (expect(&c, &it, IT_TEXT) || l->last_lsn < l->first_lsn || !it.n)
		return WAL_EPARSE;
	l->partition = (struct wal_str){ (const char *)it.p, it.n };
	if (expect(&c, &it, IT_TEXT))
		return WAL_EPARSE;
	l->reason = (struct wal_str){ (const char *)it.p, it.n };
	return c.off == len ? 0 : WAL_EPARSE;
}

int wal_loss_decode(const unsigned char *p, size_t len, struct wal_loss *l)
{
	struct cursor c = { p, len, 0 };
	struct item it;

	if (expect(&c, &it, IT_ARRAY) || it.u != 3 || expect(&c, &it, IT_UINT))
		return WAL_EPARSE;
	l->first_lsn = it.u;
	if (expect(&c, &it, IT_UINT))
		return WAL_EPARSE;
	l->last_lsn = it.u;
	if (expect(&c, &it, IT_TEXT) || l->last_lsn < l->first_lsn)
		return WAL_EPARSE;
	l->reason = (struct wal_str){ (const char *)it.p, it.n };
	return c.off == len ? 0 : WAL_EPARSE;
}
