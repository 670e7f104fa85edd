/*
 * test_view.c - what storage holds of a data directory (lib/view.c): the
 * partitions up to the last trusted checkpoint, and every problem that
 * would make a reader show a point twice or silently fewer.
 */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_view_good),
		cmocka_unit_test(test_view_overlap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
