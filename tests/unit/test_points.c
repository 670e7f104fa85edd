/*
 * test_points.c - the CBOR point codec: exact round trips of every value
 * kind, robustness against truncated payloads, and no allocation per point
 * on the write path (parse + encode) once its buffers have grown.
 */
#include <float.h>
#include <limits.h>
#include <math.h>

#include "util.h"

/* The binary is linked with --wrap=malloc,calloc,realloc: count the calls
 * made by the library's own code (libcbor's are not wrapped, and the
 * streaming API makes none). */
static long allocs;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n)
{
	allocs++;
	return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m)
{
	allocs++;
	return __real_calloc(n, m);
}
void *__wrap_realloc(void *p, size_t n)
{
	allocs++;
	return __real_realloc(p, n);
}

#define S(x)                                                                                                           \
	{                                                                                                              \
		x, sizeof(x) - 1                                                                                       \
	}

static void test_round_trip(void **state)
{
	struct wal_tag tags[] = { { S("host"), S("a") }, { S("k\n\"x"), S("") } };
	struct wal_field fields[] = {
		{ S("f"), WAL_FLOAT, { .f = -0.0 } },
		{ S("big"), WAL_FLOAT, { .f = DBL_MAX } },
		{ S("tiny"), WAL_FLOAT, { .f = 4.9e-324 } },
		{ S("i"), WAL_INT, { .i = INT64_MIN } },
		{ S("j"), WAL_INT, { .i = INT64_MAX } },
		{ S("u"), WAL_UINT, { .u = UINT64_MAX } },
		{ S("s"), WAL_STRING, { .s = S("a\0b\x01") } },
		{ S("e"), WAL_STRING, { .s = S("") } },
		{ S("b"), WAL_BOOL, { .b = 1 } },
		{ S("i"), WAL_INT, { .i = -1 } },
	};
	struct wal_point in = { S("cpu"), tags, 2, fields, 10, INT64_MIN };
	wal_enc_t *e;
	wal_dec_t *d;
	const unsigned char *pl;
	size_t len;
	struct wal_str db;
	struct wal_point out;

	(void)state;
	assert_int_equal(wal_enc_new(&e), 0);
	assert_int_equal(wal_dec_new(&d), 0);
	assert_int_equal(wal_enc_begin(e, "db1", 3), 0);
	for (int k = 0; k < 3; k++) {
		in.time = INT64_MIN + k;
		assert_int_equal(wal_enc_add(e, &in), 0);
	}
	assert_int_equal(wal_enc_finish(e, &pl, &len), 0);
	assert_int_equal(wal_enc_count(e), 3);
	assert_int_equal(wal_dec_begin(d, pl, len, &db), 0);
	assert_int_equal(db.n, 3);
	assert_memory_equal(db.p, "db1", 3);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(wal_dec_next(d, &out), 1);
		assert_int_equal(out.time, INT64_MIN + k);
		assert_int_equal(out.measurement.n, 3);
		assert_int_equal(out.ntags, 2);
		assert_int_equal(out.tags[1].key.n, 4);
		assert_memory_equal(out.tags[1].key.p, "k\n\"x", 4);
		assert_int_equal(out.tags[1].val.n, 0);
		assert_int_equal(out.nfields, 10);
		assert_true(signbit(out.fields[0].v.f) && out.fields[0].v.f == 0);
		assert_true(out.fields[1].v.f == DBL_MAX);
		assert_true(out.fields[2].v.f == 4.9e-324);
		assert_true(out.fields[3].kind == WAL_INT && out.fields[3].v.i == INT64_MIN);
		assert_true(out.fields[4].v.i == INT64_MAX);
		assert_true(out.fields[5].kind == WAL_UINT && out.fields[5].v.u == UINT64_MAX);
		assert_true(out.fields[6].kind == WAL_STRING && out.fields[6].v.s.n == 4);
		assert_memory_equal(out.fields[6].v.s.p, "a\0b\x01", 4);
		assert_true(out.fields[7].v.s.n == 0);
		assert_true(out.fields[8].kind == WAL_BOOL && out.fields[8].v.b == 1);
		assert_true(out.fields[9].v.i == -1);
	}
	assert_int_equal(wal_dec_next(d, &out), 0);
	/* counted without decoding */
	uint64_t count = 0;
	struct wal_str cdb;
	assert_int_equal(wal_dec_count(pl, len, &cdb, &count), 0);
	assert_int_equal(count, 3);
	assert_int_equal(cdb.n, 3);
	assert_memory_equal(cdb.p, "db1", 3);
	/* Keys are not repeated: a second point costs far less than the first. */
	assert_true(len < 3 * 150);

	/* Every strict prefix of the payload is rejected, never read past. */
	for (size_t cut = 0; cut < len; cut++) {
		unsigned char *copy = malloc(cut ? cut : 1);
		memcpy(copy, pl, cut);
		int r = wal_dec_begin(d, copy, cut, &db);
		if (r == 0)
			while ((r = wal_dec_next(d, &out)) == 1)
				;
		assert_int_equal(r, WAL_EPARSE);
		assert_int_equal(wal_dec_count(copy, cut, &cdb, &count), WAL_EPARSE);
		free(copy);
	}
	wal_enc_free(e);
	wal_dec_free(d);
}

static void test_no_alloc_per_point(void **state)
{
	wal_gen_t *g;
	wal_lp_t *p;
	wal_enc_t *e;
	struct wal_point pt;
	static char buf[1 << 20];
	size_t n = 0;

	(void)state;
	assert_int_equal(wal_gen_new(&g, 7, 100), 0);
	while (n < sizeof buf - 1024)
		n += wal_gen_line(g, buf + n, sizeof buf - n);
	assert_int_equal(wal_lp_new(&p, WAL_PREC_NS, 0), 0);
	assert_int_equal(wal_enc_new(&e), 0);
	/* Warm up: let every buffer grow to its size. */
	for (int round = 0; round < 3; round++) {
		long before = allocs, points = 0;
		wal_lp_input(p, buf, n, 1, 1);
		assert_int_equal(wal_enc_begin(e, "db", 2), 0);
		while (wal_lp_next(p, &pt) == 1) {
			assert_int_equal(wal_enc_add(e, &pt), 0);
			points++;
		}
		print_message("# round %d: %ld points, %ld allocations\n", round, points, allocs - before);
		if (round == 2)
			assert_int_equal(allocs - before, 0);
	}
	wal_enc_free(e);
	wal_lp_free(p);
	wal_gen_free(g);
}

static void test_seal_checkpoint(void **state)
{
	unsigned char b[256];
	struct wal_seal s = { 10, 1, 10, 1464 }, t;
	struct wal_str parts[] = { S("db/p1"), S("db/p2") }, names[1];
	struct wal_checkpoint c = { .lsn = 99, .time_ns = -1, .npartitions = 2, .partitions = parts }, d;
	struct wal_loss l = { 5, 9, S("bit flip") }, m;

	(void)state;
	size_t n = wal_seal_encode(b, sizeof b, &s);
	assert_int_equal(wal_seal_decode(b, n, &t), 0);
	assert_memory_equal(&s, &t, sizeof s);
	assert_int_equal(wal_seal_decode(b, n - 1, &t), WAL_EPARSE);
	n = wal_checkpoint_encode(b, sizeof b, &c);
	assert_int_equal(wal_checkpoint_decode(b, n, &d, names, 1), 0);
	assert_int_equal(d.lsn, 99);
	assert_int_equal(d.time_ns, -1);
	assert_int_equal(d.npartitions, 2); /* counted, though only one name fits */
	assert_memory_equal(d.partitions[0].p, "db/p1", 5);
	n = wal_loss_encode(b, sizeof b, &l);
	assert_int_equal(wal_loss_decode(b, n, &m), 0);
	assert_int_equal(m.first_lsn, 5);
	assert_int_equal(m.last_lsn, 9);
	assert_memory_equal(m.reason.p, "bit flip", 8);
}

static void test_storage_loss(void **state)
{
	unsigned char b[256];
	struct wal_storage_loss l = { 3, 7, S("default/0000000000000001-0000000000000009.part"), S("missing") }, m;

	(void)state;
	size_t n = wal_storage_loss_encode(b, sizeof b, &l);
	assert_true(n > 0);
	assert_int_equal(wal_storage_loss_decode(b, n, &m), 0);
	assert_int_equal(m.first_lsn, 3);
	assert_int_equal(m.last_lsn, 7);
	assert_int_equal(m.partition.n, l.partition.n);
	assert_memory_equal(m.partition.p, l.partition.p, l.partition.n);
	assert_int_equal(m.reason.n, 7);
	assert_memory_equal(m.reason.p, "missing", 7);
	/* too small a buffer, a short payload, and a LOSS payload are refused */
	assert_int_equal(wal_storage_loss_encode(b, 20, &l), 0);
	assert_int_equal(wal_storage_loss_decode(b, n - 1, &m), WAL_EPARSE);
	struct wal_loss o = { 3, 7, S("missing") };
	n = wal_loss_encode(b, sizeof b, &o);
	assert_int_equal(wal_storage_loss_decode(b, n, &m), WAL_EPARSE);
	/* a range that ends before it starts, and no partition, are refused */
	l.first_lsn = 8;
	n = wal_storage_loss_encode(b, sizeof b, &l);
	assert_int_equal(wal_storage_loss_decode(b, n, &m), WAL_EPARSE);
	l.first_lsn = 3;
	l.partition.n = 0;
	n = wal_storage_loss_encode(b, sizeof b, &l);
	assert_int_equal(wal_storage_loss_decode(b, n, &m), WAL_EPARSE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_no_alloc_per_point),
		cmocka_unit_test(test_seal_checkpoint),
		cmocka_unit_test(test_storage_loss),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
