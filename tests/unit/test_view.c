/*
 * test_view.c - what storage holds of a data directory (lib/view.c): the
 * partitions up to the last trusted checkpoint, and every problem that
 * would make a reader show a point twice or silently fewer.
 */
#include <zlib.h>

#include "util.h"

/* A WAL of 10 RAW entries, then a CHECKPOINT through LSN 10 naming the
 * partitions written with the LSN ranges given (first, last pairs). */
static void build(const char *dir, const uint64_t (*ranges)[2], size_t n, char rel[][300])
{
	wal_t *w;
	wal_enc_t *enc;
	const unsigned char *pl;
	size_t pllen;
	struct wal_field f = { .key = { "v", 1 }, .kind = WAL_INT, .v.i = 1 };
	struct wal_point pt = { .measurement = { "m", 1 }, .fields = &f, .nfields = 1, .time = 1 };
	struct wal_str names[8];
	unsigned char buf[4096];

	assert_int_equal(wal_open(&w, dir, NULL), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(wal_append(w, WAL_T_RAW, "x", 1, NULL), 0);
	assert_int_equal(wal_enc_new(&enc), 0);
	assert_int_equal(wal_enc_begin(enc, "default", 7), 0);
	assert_int_equal(wal_enc_add(enc, &pt), 0);
	assert_int_equal(wal_enc_finish(enc, &pl, &pllen), 0);
	for (size_t i = 0; i < n; i++) {
		wal_pw_t *pw;
		assert_int_equal(wal_pw_open(&pw, dir, wal_id(w), (struct wal_str){ "default", 7 }, 1), 0);
		assert_int_equal(wal_pw_add(pw, ranges[i][0], pl, pllen), 0);
		assert_int_equal(wal_pw_add(pw, ranges[i][1], pl, pllen), 0);
		assert_int_equal(wal_pw_finish(pw, rel[i], 300), 0);
		names[i] = (struct wal_str){ rel[i], strlen(rel[i]) };
	}
	struct wal_checkpoint c = { .lsn = 10, .time_ns = 1, .npartitions = n, .partitions = names };
	size_t len = wal_checkpoint_encode(buf, sizeof buf, &c);
	assert_true(len > 0);
	assert_int_equal(wal_append(w, WAL_T_CHECKPOINT, buf, len, NULL), 0);
	assert_int_equal(wal_close(w), 0);
	wal_enc_free(enc);
}

static void test_view_good(void **state)
{
	char *dir = tmpdir(), rel[2][300];
	const uint64_t r[2][2] = { { 1, 4 }, { 5, 9 } };
	wal_view_t *v;

	(void)state;
	build(dir, r, 2, rel);
	assert_int_equal(wal_view_open(&v, dir), 0);
	assert_int_equal(wal_view_checkpoint(v), 10);
	assert_int_equal(wal_view_nproblems(v), 0);
	assert_int_equal(wal_view_npartitions(v), 2);
	assert_string_equal(wal_view_partition(v, 0)->rel, rel[0]);
	assert_string_equal(wal_view_partition(v, 1)->rel, rel[1]);
	wal_view_close(v);
	rmrf(dir);
	free(dir);
}

/* Two partitions both holding LSN 3-5: the second is not in the view. */
static void test_view_overlap(void **state)
{
	char *dir = tmpdir(), rel[2][300];
	const uint64_t r[2][2] = { { 1, 5 }, { 3, 7 } };
	wal_view_t *v;

	(void)state;
	build(dir, r, 2, rel);
	assert_int_equal(wal_view_open(&v, dir), 0);
	assert_int_equal(wal_view_npartitions(v), 1);
	assert_string_equal(wal_view_partition(v, 0)->rel, rel[0]);
	assert_true(wal_view_nproblems(v) >= 1);
	assert_non_null(strstr(wal_view_problem(v, 0), "overlaps"));
	wal_view_close(v);
	rmrf(dir);
	free(dir);
}

/* A payload of one point m v=<v>. */
static void payload(wal_enc_t *enc, int64_t v, const unsigned char **pl, size_t *len)
{
	struct wal_field f = { .key = { "v", 1 }, .kind = WAL_INT, .v.i = v };
	struct wal_point pt = { .measurement = { "m", 1 }, .fields = &f, .nfields = 1, .time = 1 };

	assert_int_equal(wal_enc_begin(enc, "default", 7), 0);
	assert_int_equal(wal_enc_add(enc, &pt), 0);
	assert_int_equal(wal_enc_finish(enc, pl, len), 0);
}

static void part(const char *dir, uint64_t wal_id, const uint64_t *lsns, size_t n, const void *pl, size_t len)
{
	wal_pw_t *pw;
	char rel[300];

	assert_int_equal(wal_pw_open(&pw, dir, wal_id, (struct wal_str){ "default", 7 }, 1), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(wal_pw_add(pw, lsns[i], pl, len), 0);
	assert_int_equal(wal_pw_finish(pw, rel, sizeof rel), 0);
}

/* Partitions above the checkpoint: byte for byte the WAL's (redundant), not
 * (damaged), and one whose range the WAL does not wholly hold. */
static void test_orphans(void **state)
{
	char *dir = tmpdir(), rel[1][300];
	wal_t *w;
	wal_enc_t *enc;
	const unsigned char *pl;
	size_t len;
	struct wal_orphan *o;
	size_t n;

	(void)state;
	build(dir, NULL, 0, rel); /* RAW 1-10, CHECKPOINT 11 through 10, CLOSE 12 */
	assert_int_equal(wal_enc_new(&enc), 0);
	payload(enc, 7, &pl, &len);
	assert_int_equal(wal_open(&w, dir, NULL), 0);
	uint64_t lsn[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(wal_append(w, WAL_T_POINTS, pl, len, &lsn[i]), 0);
	assert_int_equal(lsn[0], 13); /* after the CLOSE of LSN 12 */
	assert_int_equal(lsn[2], 15);
	uint64_t id = wal_id(w);
	assert_int_equal(wal_close(w), 0);
	const uint64_t same[] = { 13, 14, 15 }, beyond[] = { 15, 20 }, other[] = { 16, 17 };
	part(dir, id, same, 3, pl, len);
	part(dir, id, beyond, 2, pl, len);
	payload(enc, 8, &pl, &len);
	const uint64_t damaged[] = { 14, 15 };
	part(dir, id, damaged, 2, pl, len);
	part(dir, id, other, 2, pl, len);
	wal_enc_free(enc);

	assert_int_equal(wal_part_orphans(dir, 10, NULL, &o, &n), 0);
	assert_int_equal(n, 4);
	/* by first LSN: first, redundant, held */
	const int want[4][3] = { { 13, 1, 1 }, { 14, 0, 1 }, { 15, 0, 0 }, { 16, 0, 0 } };
	for (int i = 0; i < 4; i++) {
		assert_int_equal(o[i].ref.first_lsn, want[i][0]);
		assert_int_equal(o[i].redundant, want[i][1]);
		assert_int_equal(o[i].held, want[i][2]);
	}
	free(o);

	unsigned removed, kept, rebuildable;
	assert_int_equal(wal_part_drop_orphans(dir, 10, NULL, &removed, &kept, &rebuildable), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(kept, 3);
	assert_int_equal(rebuildable, 1);
	rmrf(dir);
	free(dir);
}

/* A partition is never renamed over another of the same name: the one
 * there may be the only copy of its points. */
/* What a scan holds of the entries after the checkpoint: a later
 * checkpoint forgets what it covers; payloads past the hold are not kept,
 * and the list says it is incomplete until a checkpoint covers them. */
static void test_held(void **state)
{
	(void)state;
	wal_held_t *h;
	unsigned char pl[3][100];
	const unsigned char *got;
	size_t len;

	assert_int_equal(wal_held_new(&h, 250), 0);
	for (int i = 0; i < 3; i++) {
		memset(pl[i], 'a' + i, sizeof pl[i]);
		struct wal_entry e = { .lsn = (uint64_t)i + 1, .type = WAL_T_POINTS, .payload = pl[i], .len = 100 };
		assert_int_equal(wal_held_add(h, &e), 0);
	}
	struct wal_entry raw = { .lsn = 4, .type = WAL_T_RAW, .payload = (const unsigned char *)"x", .len = 1 };
	assert_int_equal(wal_held_add(h, &raw), 0);
	assert_int_equal(wal_held_last(h), 4);
	/* the third payload did not fit */
	assert_int_equal(wal_held_npayloads(h), 2);
	assert_false(wal_held_complete(h));
	wal_held_cut(h, 1);
	assert_false(wal_held_complete(h));
	assert_int_equal(wal_held_npayloads(h), 1);
	assert_int_equal(wal_held_payload(h, 0, &got, &len), 2);
	assert_int_equal(len, 100);
	assert_memory_equal(got, pl[1], 100);
	/* a checkpoint past the last POINTS entry: nothing held is missing */
	wal_held_cut(h, 3);
	assert_true(wal_held_complete(h));
	assert_int_equal(wal_held_npayloads(h), 0);
	assert_int_equal(wal_held_last(h), 4);
	struct wal_entry e = { .lsn = 5, .type = WAL_T_POINTS, .payload = pl[2], .len = 100 };
	assert_int_equal(wal_held_add(h, &e), 0);
	assert_int_equal(wal_held_payload(h, 0, &got, &len), 5);
	assert_memory_equal(got, pl[2], 100);
	wal_held_cut(h, 5);
	assert_int_equal(wal_held_last(h), 0);
	wal_held_free(h);
	/* without a hold, no payload is kept and the list is never complete */
	assert_int_equal(wal_held_new(&h, 0), 0);
	assert_int_equal(wal_held_add(h, &e), 0);
	assert_int_equal(wal_held_npayloads(h), 0);
	assert_false(wal_held_complete(h));
	wal_held_free(h);
}

static void test_no_overwrite(void **state)
{
	char *dir = tmpdir(), path[4400], rel[300];
	wal_enc_t *enc;
	wal_pw_t *pw;
	const unsigned char *pl;
	size_t len;
	const uint64_t lsns[] = { 1, 2 };

	(void)state;
	assert_int_equal(wal_enc_new(&enc), 0);
	payload(enc, 1, &pl, &len);
	part(dir, 7, lsns, 2, pl, len);
	snprintf(path, sizeof path, "%s/data/default/0000000000000001-0000000000000002.part", dir);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char before[4096], after[4096];
	size_t nb = fread(before, 1, sizeof before, f);
	fclose(f);
	payload(enc, 2, &pl, &len);
	assert_int_equal(wal_pw_open(&pw, dir, 7, (struct wal_str){ "default", 7 }, 1), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(wal_pw_add(pw, lsns[i], pl, len), 0);
	assert_int_not_equal(wal_pw_finish(pw, rel, sizeof rel), 0);
	assert_non_null(strstr(wal_errmsg(), "exists already; it is not replaced"));
	f = fopen(path, "rb");
	assert_non_null(f);
	size_t na = fread(after, 1, sizeof after, f);
	fclose(f);
	assert_int_equal(na, nb);
	assert_memory_equal(before, after, nb);
	wal_enc_free(enc);
	rmrf(dir);
	free(dir);
}

static uint32_t le32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Rewrite the one-block partition at PATH as VERSION: 1 drops the LSN of
 * every record; 2 with SWAP exchanges the LSNs of the first two records. */
static void rewrite(const char *path, uint64_t wal_id, int version, int swap)
{
	unsigned char file[8192], raw[8192], out[8192];
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = fread(file, 1, sizeof file, f);
	fclose(f);
	assert_true(n > 76 && n < sizeof file);
	assert_int_equal(le32(file + 12), 1); /* one block */
	uLongf rl = sizeof raw;
	assert_int_equal(uncompress(raw, &rl, file + 76, le32(file + 64)), Z_OK);
	size_t ol = 0;
	for (size_t o = 0; o < rl;) {
		uint32_t len = le32(raw + o + 8);
		if (version == 1) {
			memcpy(out + ol, raw + o + 8, 4 + len);
			ol += 4 + len;
		} else {
			memcpy(out + ol, raw + o, 12 + len);
			ol += 12 + len;
		}
		o += 12 + len;
	}
	if (swap) {
		unsigned char t[8];
		uint32_t len0 = le32(out + 8);
		memcpy(t, out, 8);
		memcpy(out, out + 12 + len0, 8);
		memcpy(out + 12 + len0, t, 8);
	}
	uLongf cl = sizeof file - 76;
	assert_int_equal(compress2(file + 76, &cl, out, ol, 1), Z_OK);
	put_le32(file + 64, (uint32_t)cl);
	put_le32(file + 68, (uint32_t)ol);
	put_le32(file + 72, wal_crc(wal_id, file + 76, cl));
	file[8] = (unsigned char)version;
	memset(file + 48, 0, 8);
	for (int i = 0; i < 8; i++)
		file[48 + i] = (unsigned char)((uint64_t)ol >> (8 * i));
	put_le32(file + 60, wal_crc(wal_id, file, 60));
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(file, 1, 76 + cl, f), 76 + cl);
	fclose(f);
}

/* Each record of a partition carries its entry's LSN; a version 1
 * partition, whose records carry none, is still read; LSNs out of order are
 * damage. */
static void test_record_lsns(void **state)
{
	char *dir = tmpdir(), path[4400];
	wal_enc_t *enc;
	wal_part_t *p;
	const unsigned char *pl, *got;
	size_t len, glen;
	uint64_t at;
	const uint64_t lsns[] = { 3, 5, 9 };

	(void)state;
	assert_int_equal(wal_enc_new(&enc), 0);
	payload(enc, 1, &pl, &len);
	part(dir, 7, lsns, 3, pl, len);
	snprintf(path, sizeof path, "%s/data/default/0000000000000003-0000000000000009.part", dir);
	assert_int_equal(wal_part_check(path, 1, 7), 0);
	assert_int_equal(wal_part_open(&p, path), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(wal_part_next(p, &at, &got, &glen), 1);
		assert_int_equal(at, lsns[i]);
		assert_int_equal(glen, len);
		assert_memory_equal(got, pl, len);
	}
	assert_int_equal(wal_part_next(p, &at, &got, &glen), 0);
	wal_part_close(p);

	rewrite(path, 7, 1, 0);
	assert_int_equal(wal_part_check(path, 1, 7), 0);
	assert_int_equal(wal_part_open(&p, path), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(wal_part_next(p, &at, &got, &glen), 1);
		assert_int_equal(at, 0);
		assert_memory_equal(got, pl, len);
	}
	wal_part_close(p);

	unlink(path);
	part(dir, 7, lsns, 3, pl, len);
	rewrite(path, 7, 2, 1);
	assert_int_not_equal(wal_part_check(path, 1, 7), 0);
	assert_non_null(strstr(wal_errmsg(), "has LSN 5, out of order"));
	wal_enc_free(enc);
	rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_view_good),   cmocka_unit_test(test_view_overlap),
		cmocka_unit_test(test_orphans),     cmocka_unit_test(test_no_overwrite),
		cmocka_unit_test(test_record_lsns), cmocka_unit_test(test_held),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
