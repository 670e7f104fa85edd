/*
 * test_codec.c - checksums, compression and CBOR items, each against a
 * reference implementation: walctl's CRC-32 (ISA-L) equals zlib's for any
 * buffer, seed and split; every partition block walctl writes, at every
 * compression level, is a zlib stream that zlib's uncompress() reads back
 * exactly; a partition whose blocks zlib wrote reads back exactly; and
 * walctl's CBOR item reader accepts, rejects and reads every input exactly
 * as libcbor's streaming decoder does.
 */
#include <cbor.h>
#include <math.h>
#include <zlib.h>

#include "util.h"
#include "../../lib/internal.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill(unsigned char *b, size_t n, int compressible)
{
	static const char words[] = "cpu,host=server01,region=us-west usage_idle=99.5,usage_user=0.25i 1700000000";
	for (size_t i = 0; i < n; i++)
		b[i] = compressible ? (unsigned char)words[(i + next_rand() % 3) % (sizeof words - 1)]
		                    : (unsigned char)next_rand();
}

static uint32_t zcrc(uint32_t seed, const unsigned char *b, size_t n) { return (uint32_t)crc32_z(seed, b, n); }

static void test_crc_equals_zlib(void **state)
{
	(void)state;
	size_t cap = 5u << 20;
	unsigned char *b = malloc(cap + 64);
	assert_non_null(b);
	fill(b, cap + 64, 0);
	static const size_t sizes[] = { 0,  1,  2,   3,   7,    8,    15,    16,       31,      63,
		                        64, 65, 255, 256, 1000, 4096, 65537, 1u << 20, 5u << 20 };
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
		for (int t = 0; t < 8; t++) {
			size_t n = sizes[k], off = (size_t)(next_rand() % 64);
			uint32_t seed = t == 0 ? 0 : t == 1 ? 0xffffffffu : (uint32_t)next_rand();
			const unsigned char *p = b + off;
			assert_int_equal(wal_crc32(seed, p, n), zcrc(seed, p, n));
			/* continuing a CRC over a split buffer gives the whole one */
			size_t cut = n ? (size_t)(next_rand() % (n + 1)) : 0;
			assert_int_equal(wal_crc32(wal_crc32(seed, p, cut), p + cut, n - cut), zcrc(seed, p, n));
		}
	/* random lengths */
	for (int t = 0; t < 2000; t++) {
		size_t n = (size_t)(next_rand() % 20000), off = (size_t)(next_rand() % 64);
		uint32_t seed = (uint32_t)next_rand();
		assert_int_equal(wal_crc32(seed, b + off, n), zcrc(seed, b + off, n));
	}
	/* the seed of a WAL id is crc32(0, id as 8 little-endian bytes) */
	unsigned char id[8] = { 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11 };
	assert_int_equal(wal_seed(0x1122334455667788ull), zcrc(0, id, 8));
	assert_int_equal(wal_crc(0x1122334455667788ull, b, 1000), zcrc(zcrc(0, id, 8), b, 1000));
	free(b);
}

static uint32_t get32le(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32le(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static unsigned char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long size = ftell(f);
	assert_true(size >= 64);
	rewind(f);
	unsigned char *b = malloc((size_t)size);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	*n = (size_t)size;
	return b;
}

#define NREC 600

/* Write a partition of NREC payloads at LEVEL; its path goes to path. */
static void write_part(const char *dir, int level, unsigned char **recs, size_t *lens, char *path, size_t cap)
{
	wal_pw_t *w;
	char rel[600];

	assert_int_equal(wal_pw_open(&w, dir, 42, (struct wal_str){ "db", 2 }, level), 0);
	for (int i = 0; i < NREC; i++)
		assert_int_equal(wal_pw_add(w, (uint64_t)i + 1, recs[i], lens[i]), 0);
	assert_int_equal(wal_pw_finish(w, rel, sizeof rel), 0);
	snprintf(path, cap, "%s/data/%s", dir, rel);
}

/* Every block: header CRC as zlib computes it, and zlib inflates it to
 * exactly ulen bytes.  Returns the number of blocks. */
static unsigned check_blocks_with_zlib(const unsigned char *f, size_t n)
{
	uint32_t seed = zcrc(0, (const unsigned char *)"\x2a\0\0\0\0\0\0\0", 8);
	unsigned blocks = get32le(f + 12);
	size_t off = 64;
	for (unsigned b = 0; b < blocks; b++) {
		assert_true(off + 12 <= n);
		uint32_t clen = get32le(f + off), ulen = get32le(f + off + 4);
		assert_true(off + 12 + clen <= n);
		assert_int_equal(get32le(f + off + 8), zcrc(seed, f + off + 12, clen));
		unsigned char *raw = malloc(ulen ? ulen : 1);
		assert_non_null(raw);
		uLongf got = ulen;
		assert_int_equal(uncompress(raw, &got, f + off + 12, clen), Z_OK);
		assert_int_equal(got, ulen);
		free(raw);
		off += 12 + clen;
	}
	assert_int_equal(off, n);
	return blocks;
}

static void read_back(const char *path, unsigned char **recs, size_t *lens)
{
	wal_part_t *p;
	uint64_t lsn;
	const unsigned char *pl;
	size_t len;
	int i = 0, r;

	assert_int_equal(wal_part_open(&p, path), 0);
	while ((r = wal_part_next(p, &lsn, &pl, &len)) == 1) {
		assert_true(i < NREC);
		assert_int_equal(lsn, (uint64_t)i + 1);
		assert_int_equal(len, lens[i]);
		assert_memory_equal(pl, recs[i], len);
		i++;
	}
	assert_int_equal(r, 0);
	assert_int_equal(i, NREC);
	wal_part_close(p);
}

static void test_blocks_are_zlib_streams(void **state)
{
	(void)state;
	char *dir = tmpdir();
	unsigned char *recs[NREC];
	size_t lens[NREC];
	char path[1200];

	for (int compressible = 0; compressible < 2; compressible++) {
		for (int i = 0; i < NREC; i++) {
			/* 0 to 40 KiB: several 4 MiB blocks in all */
			lens[i] = i == 7 ? 0 : (size_t)(next_rand() % 40000);
			recs[i] = malloc(lens[i] + 1);
			assert_non_null(recs[i]);
			fill(recs[i], lens[i], compressible);
		}
		for (int level = 1; level <= 9; level++) {
			size_t n;
			write_part(dir, level, recs, lens, path, sizeof path);
			unsigned char *f = slurp(path, &n);
			assert_true(check_blocks_with_zlib(f, n) >= 2);
			free(f);
			read_back(path, recs, lens);
			assert_int_equal(unlink(path), 0);
		}
		for (int i = 0; i < NREC; i++)
			free(recs[i]);
	}
	rmrf(dir);
	free(dir);
}

/* A partition whose blocks zlib compressed (as walctl wrote them before it
 * used ISA-L) reads back exactly. */
static void test_zlib_written_blocks_read(void **state)
{
	(void)state;
	char *dir = tmpdir();
	unsigned char *recs[NREC];
	size_t lens[NREC], n;
	char path[1200];

	for (int i = 0; i < NREC; i++) {
		lens[i] = (size_t)(next_rand() % 30000);
		recs[i] = malloc(lens[i] + 1);
		assert_non_null(recs[i]);
		fill(recs[i], lens[i], i % 2);
	}
	write_part(dir, 1, recs, lens, path, sizeof path);
	unsigned char *f = slurp(path, &n);
	uint32_t seed = zcrc(0, (const unsigned char *)"\x2a\0\0\0\0\0\0\0", 8);
	unsigned blocks = get32le(f + 12);
	size_t cap = n * 4 + (1u << 20), out = 64, off = 64;
	unsigned char *g = malloc(cap);
	assert_non_null(g);
	memcpy(g, f, 64);
	for (int level = 1, b = 0; b < (int)blocks; b++, level = level % 9 + 1) {
		uint32_t clen = get32le(f + off), ulen = get32le(f + off + 4);
		unsigned char *raw = malloc(ulen);
		assert_non_null(raw);
		uLongf got = ulen;
		assert_int_equal(uncompress(raw, &got, f + off + 12, clen), Z_OK);
		uLongf zlen = compressBound(ulen);
		assert_true(out + 12 + zlen <= cap);
		assert_int_equal(compress2(g + out + 12, &zlen, raw, ulen, level), Z_OK);
		put32le(g + out, (uint32_t)zlen);
		put32le(g + out + 4, ulen);
		put32le(g + out + 8, zcrc(seed, g + out + 12, zlen));
		out += 12 + zlen;
		off += 12 + clen;
		free(raw);
	}
	FILE *o = fopen(path, "wb");
	assert_non_null(o);
	assert_int_equal(fwrite(g, 1, out, o), out);
	fclose(o);
	read_back(path, recs, lens);
	free(f);
	free(g);
	for (int i = 0; i < NREC; i++)
		free(recs[i]);
	rmrf(dir);
	free(dir);
}

/* --compression-level 1 to 9 onto ISA-L's levels 1 to 3, as the man pages
 * say. */
static void test_level_mapping(void **state)
{
	(void)state;
	static const int want[10] = { 1, 1, 2, 2, 2, 2, 3, 3, 3, 3 };
	for (int l = 0; l <= 9; l++)
		assert_int_equal(wal_isal_level(l), want[l]);
}

/* ------------------------------------------------ CBOR items vs libcbor */

static void r_uint(void *c, uint64_t v, int type)
{
	((struct item *)c)->type = type;
	((struct item *)c)->u = v;
}
static void r_u8(void *c, uint8_t v) { r_uint(c, v, IT_UINT); }
static void r_u16(void *c, uint16_t v) { r_uint(c, v, IT_UINT); }
static void r_u32(void *c, uint32_t v) { r_uint(c, v, IT_UINT); }
static void r_u64(void *c, uint64_t v) { r_uint(c, v, IT_UINT); }
static void r_n8(void *c, uint8_t v) { r_uint(c, v, IT_NEG); }
static void r_n16(void *c, uint16_t v) { r_uint(c, v, IT_NEG); }
static void r_n32(void *c, uint32_t v) { r_uint(c, v, IT_NEG); }
static void r_n64(void *c, uint64_t v) { r_uint(c, v, IT_NEG); }
static void r_text(void *c, cbor_data p, size_t n)
{
	((struct item *)c)->type = IT_TEXT;
	((struct item *)c)->p = p;
	((struct item *)c)->n = n;
}
static void r_array(void *c, size_t n) { r_uint(c, n, IT_ARRAY); }
static void r_indef(void *c) { ((struct item *)c)->type = IT_INDEF; }
static void r_break(void *c) { ((struct item *)c)->type = IT_BREAK; }
static void r_f4(void *c, float v)
{
	((struct item *)c)->type = IT_FLOAT;
	((struct item *)c)->d = v;
}
static void r_f8(void *c, double v)
{
	((struct item *)c)->type = IT_FLOAT;
	((struct item *)c)->d = v;
}
static void r_bool(void *c, bool v)
{
	((struct item *)c)->type = IT_BOOL;
	((struct item *)c)->b = v;
}
static void r_other(void *c) { ((struct item *)c)->type = IT_OTHER; }
static void r_other_n(void *c, size_t n)
{
	(void)n;
	r_other(c);
}
static void r_other_s(void *c, cbor_data p, size_t n)
{
	(void)p;
	(void)n;
	r_other(c);
}
static void r_other_64(void *c, uint64_t v)
{
	(void)v;
	r_other(c);
}

static const struct cbor_callbacks ref_callbacks = {
	.uint8 = r_u8,
	.uint16 = r_u16,
	.uint32 = r_u32,
	.uint64 = r_u64,
	.negint8 = r_n8,
	.negint16 = r_n16,
	.negint32 = r_n32,
	.negint64 = r_n64,
	.byte_string_start = r_other,
	.byte_string = r_other_s,
	.string = r_text,
	.string_start = r_other,
	.indef_array_start = r_indef,
	.array_start = r_array,
	.indef_map_start = r_other,
	.map_start = r_other_n,
	.tag = r_other_64,
	.float2 = r_f4,
	.float4 = r_f4,
	.float8 = r_f8,
	.undefined = r_other,
	.null = r_other,
	.boolean = r_bool,
	.indef_break = r_break,
};

/* The reference: what libcbor's streaming decoder makes of the item. */
static int ref_item(const unsigned char *p, size_t len, struct item *it, size_t *used)
{
	it->type = IT_NONE;
	if (len == 0)
		return WAL_EPARSE;
	struct cbor_decoder_result r = cbor_stream_decode(p, len, &ref_callbacks, it);
	if (r.status != CBOR_DECODER_FINISHED || it->type == IT_NONE || it->type == IT_OTHER)
		return WAL_EPARSE;
	*used = r.read;
	return 0;
}

static void same_item(const unsigned char *p, size_t len)
{
	struct item a, b;
	size_t ua = 0, ub = 0;
	int ra = ref_item(p, len, &a, &ua), rb = wal_cbor_item(p, len, &b, &ub);

	if ((ra == 0) != (rb == 0))
		fail_msg("initial byte 0x%02x, %zu bytes: libcbor %s, walctl %s", p[0], len, ra ? "rejects" : "accepts",
		         rb ? "rejects" : "accepts");
	if (ra != 0)
		return;
	assert_int_equal(a.type, b.type);
	assert_int_equal(ua, ub);
	switch (a.type) {
	case IT_UINT:
	case IT_NEG:
	case IT_ARRAY: assert_true(a.u == b.u); break;
	case IT_TEXT:
		assert_ptr_equal(a.p, b.p);
		assert_int_equal(a.n, b.n);
		break;
	case IT_FLOAT:
		if (isnan(a.d))
			assert_true(isnan(b.d));
		else
			assert_memory_equal(&a.d, &b.d, sizeof a.d);
		break;
	case IT_BOOL: assert_int_equal(a.b, b.b); break;
	default: break;
	}
}

/* Every initial byte, followed by every length of random, all-zero and
 * all-one tails; then the items libcbor's encoders write for random values
 * of every kind walctl uses, whole and cut short. */
static void test_cbor_items_equal_libcbor(void **state)
{
	(void)state;
	unsigned char b[64];

	for (int head = 0; head < 256; head++)
		for (int fill_kind = 0; fill_kind < 3; fill_kind++)
			for (int t = 0; t < (fill_kind ? 1 : 200); t++)
				for (size_t len = 1; len <= 40; len++) {
					b[0] = (unsigned char)head;
					for (size_t i = 1; i < len; i++)
						b[i] = fill_kind == 1   ? 0
						       : fill_kind == 2 ? 0xff
						                        : (unsigned char)next_rand();
					same_item(b, len);
				}
	for (int t = 0; t < 200000; t++) {
		size_t n = 0;
		uint64_t v = next_rand() >> (next_rand() % 64);
		switch (t % 8) {
		case 0: n = cbor_encode_uint(v, b, sizeof b); break;
		case 1: n = cbor_encode_negint(v, b, sizeof b); break;
		case 2: n = cbor_encode_array_start(v, b, sizeof b); break;
		case 3: {
			size_t k = (size_t)(v % 40);
			n = cbor_encode_string_start(k, b, sizeof b);
			for (size_t i = 0; i < k; i++)
				b[n++] = (unsigned char)('a' + i % 26);
			break;
		}
		case 4: {
			double d;
			memcpy(&d, &v, sizeof d);
			n = cbor_encode_double(t % 16 == 4 ? (double)(int64_t)v / 7 : d, b, sizeof b);
			break;
		}
		case 5: n = cbor_encode_single((float)((double)(int64_t)v / 3), b, sizeof b); break;
		case 6: n = cbor_encode_half((float)((double)(int64_t)(v % 200000) / 5), b, sizeof b); break;
		default: n = cbor_encode_bool(v & 1, b, sizeof b); break;
		}
		assert_true(n > 0);
		for (size_t len = 1; len <= n; len++)
			same_item(b, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_equals_zlib),          cmocka_unit_test(test_blocks_are_zlib_streams),
		cmocka_unit_test(test_zlib_written_blocks_read), cmocka_unit_test(test_level_mapping),
		cmocka_unit_test(test_cbor_items_equal_libcbor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
