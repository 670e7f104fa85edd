/*
 * test_frame.c - the frame codec and segment header: byte layout, CRCs
 * seeded by the WAL id, the order of header checks, segment names.
 */
#include "util.h"
#include "../../lib/internal.h"

static void test_header_round_trip(void **state)
{
	struct seg_header h = { .version = 1,
		                .csum_type = 1,
		                .wal_id = 0xfeedfacecafebeefull,
		                .seq = 7,
		                .first_lsn = 1000,
		                .prev_last_lsn = 999,
		                .created_ns = 123456789,
		                .max_entry = 4096 };
	struct seg_header g;
	unsigned char b[WAL_SEG_HEADER_SIZE];

	(void)state;
	seg_header_encode(b, &h);
	assert_memory_equal(b, WAL_MAGIC, 8);
	assert_null(seg_header_decode(b, sizeof b, &g));
	assert_int_equal(g.wal_id, h.wal_id);
	assert_int_equal(g.seq, 7);
	assert_int_equal(g.first_lsn, 1000);
	assert_int_equal(g.prev_last_lsn, 999);
	assert_int_equal(g.created_ns, 123456789);
	assert_int_equal(g.max_entry, 4096);
	/* little-endian at the documented offsets */
	assert_int_equal(b[8], 1);
	assert_int_equal(b[32], 1000 & 0xff);
	assert_int_equal(b[33], 1000 >> 8);
}

static void test_header_checks_in_order(void **state)
{
	struct seg_header h = { .version = 1, .csum_type = 1, .wal_id = 42, .seq = 1, .first_lsn = 1 };
	struct seg_header g;
	unsigned char b[WAL_SEG_HEADER_SIZE], c[WAL_SEG_HEADER_SIZE];

	(void)state;
	seg_header_encode(b, &h);
	assert_string_equal(seg_header_decode(b, 10, &g), "segment shorter than its 64-byte header");
	memcpy(c, b, sizeof c);
	c[0] ^= 1;
	assert_string_equal(seg_header_decode(c, sizeof c, &g), "bad magic: not a walctl segment");
	memcpy(c, b, sizeof c);
	c[8] = 9;
	assert_string_equal(seg_header_decode(c, sizeof c, &g), "unsupported format version 9");
	memcpy(c, b, sizeof c);
	c[10] = 3;
	assert_string_equal(seg_header_decode(c, sizeof c, &g), "unknown checksum type 3");
	memcpy(c, b, sizeof c);
	c[45] ^= 0x10;
	assert_string_equal(seg_header_decode(c, sizeof c, &g), "segment header checksum mismatch");
}

static void test_frame_header(void **state)
{
	struct frame_header f = {
		.len = 300, .type = WAL_T_POINTS, .lsn = 77, .time_ns = -5, .watermark = 76, .payload_crc = 0xdeadbeef
	};
	struct frame_header g;
	unsigned char b[WAL_FRAME_HEADER_SIZE];
	uint32_t seed = wal_seed(99);

	(void)state;
	frame_header_encode(b, &f, seed);
	assert_int_equal(frame_header_decode(b, seed, &g), 1);
	assert_int_equal(g.len, 300);
	assert_int_equal(g.type, WAL_T_POINTS);
	assert_int_equal(g.lsn, 77);
	assert_int_equal(g.time_ns, -5);
	assert_int_equal(g.watermark, 76);
	assert_int_equal(g.payload_crc, 0xdeadbeef);
	/* another WAL's seed never validates it */
	assert_int_equal(frame_header_decode(b, wal_seed(100), &g), 0);
	/* the header CRC covers the length */
	b[0] ^= 0x80;
	assert_int_equal(frame_header_decode(b, seed, &g), 0);
}

static void test_crc_seeded(void **state)
{
	(void)state;
	assert_int_not_equal(wal_crc(1, "abc", 3), wal_crc(2, "abc", 3));
	assert_int_equal(wal_crc(1, "abc", 3), wal_crc(1, "abc", 3));
}

static void test_names(void **state)
{
	char n[32];
	uint64_t v;

	(void)state;
	seg_name(n, 0x1f);
	assert_string_equal(n, "000000000000001f.wal");
	assert_int_equal(seg_name_parse(n, &v), 1);
	assert_int_equal(v, 0x1f);
	assert_int_equal(seg_name_parse("000000000000001F.wal", &v), 0);
	assert_int_equal(seg_name_parse("1.wal", &v), 0);
	assert_int_equal(seg_name_parse("000000000000001f.wax", &v), 0);
	assert_int_equal(wal_type_parse("checkpoint"), WAL_T_CHECKPOINT);
	assert_string_equal(wal_type_name(WAL_T_SEAL | WAL_T_IGNORABLE), "seal");
	assert_int_equal(wal_type_parse("nope"), -1);
}

static const char *sha(const char *s, size_t n, size_t reps)
{
	static char hex[65];
	struct wal_sha256 c;

	wal_sha256_init(&c);
	for (size_t i = 0; i < reps; i++)
		wal_sha256_update(&c, s, n);
	wal_sha256_hex(&c, hex);
	return hex;
}

/* FIPS 180-4 test vectors, and lengths around the padding boundary. */
static void test_sha256(void **state)
{
	(void)state;
	assert_string_equal(sha("", 0, 1), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_string_equal(sha("abc", 3, 1), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_string_equal(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, 1),
	                    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	assert_string_equal(sha("a", 1, 1000000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	assert_string_equal(sha("0123456789012345678901234567890123456789012345678901234567890123", 64, 1),
	                    "9674d9e078535b7cec43284387a6ee39956188e735a85452b0050b55341cda56");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_round_trip),
		cmocka_unit_test(test_header_checks_in_order),
		cmocka_unit_test(test_frame_header),
		cmocka_unit_test(test_crc_seeded),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_sha256),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
