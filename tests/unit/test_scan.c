/*
 * test_scan.c - the scanner: explicit segment lists, payload checks, and
 * following a live WAL.
 */
#include "util.h"

static void test_segment_files(void **state)
{
	char *dir = tmpdir();
	struct scan_result *r = malloc(sizeof *r);
	char a[4300], b[4300];
	const char *p[2] = { a, b };
	wal_scan_t *s;
	struct wal_entry e;
	uint64_t n = 0;

	(void)state;
	build_wal(dir, 30, 1600, 1, WAL_SYNC_FDATASYNC);
	scan_dir(dir, r);
	/* the last two segments, given out of order: sorted by name */
	snprintf(a, sizeof a, "%s", segpath(dir, r->f[r->n - 1].segment));
	snprintf(b, sizeof b, "%s", segpath(dir, r->f[12].segment));
	assert_int_equal(wal_scan_open(&s, p, 2, NULL), 0);
	while (wal_scan_next(s, &e) == 1)
		n++;
	assert_int_equal(n, r->n - 11);
	/* the first of them does not start the WAL: segments given alone are
	 * judged alone, and what came before them is a notice, not damage */
	assert_int_equal(wal_scan_class(s), 0);
	assert_int_equal(wal_scan_finding(s, 0)->kind, WAL_F_MISSING_SEGMENT);
	assert_int_equal(wal_scan_finding(s, 0)->cls, WAL_CLASS_NOTICE);
	wal_scan_close(s);
	rmrf(dir);
	free(dir);
	free(r);
}

static void test_bad_payload(void **state)
{
	char *dir = tmpdir();
	struct scan_result *r = malloc(sizeof *r);
	wal_t *w;

	(void)state;
	assert_int_equal(wal_open(&w, dir, NULL), 0);
	assert_int_equal(wal_append(w, WAL_T_POINTS, "not cbor", 8, NULL), 0);
	assert_int_equal(wal_append(w, WAL_T_RAW, "fine", 4, NULL), 0);
	assert_int_equal(wal_append(w, 0x80 | 0x33, "future", 6, NULL), 0); /* ignorable */
	assert_int_equal(wal_append(w, 0x34, "future", 6, NULL), 0);        /* not ignorable */
	assert_int_equal(wal_close(w), 0);
	scan_dir(dir, r);
	assert_int_equal(r->cls, WAL_CLASS_DAMAGE);
	assert_int_equal(r->nf, 2);
	assert_int_equal(r->finding[0].kind, WAL_F_BAD_PAYLOAD);
	assert_int_equal(r->finding[0].lsn_first, 1);
	assert_int_equal(r->finding[1].kind, WAL_F_UNKNOWN_TYPE);
	assert_int_equal(r->finding[1].lsn_first, 4);
	rmrf(dir);
	free(dir);
	free(r);
}

static void test_follow(void **state)
{
	char *dir = tmpdir();
	const char *p[1] = { dir };
	struct wal_scan_opts so = { .follow = 1 };
	struct wal_opts o = { .max_segment_size = 4096 };
	wal_scan_t *s;
	struct wal_entry e;
	wal_t *w;
	char buf[300] = { 0 };
	uint64_t seen = 0;

	(void)state;
	assert_int_equal(wal_open(&w, dir, &o), 0);
	assert_int_equal(wal_append(w, WAL_T_RAW, buf, sizeof buf, NULL), 0);
	assert_int_equal(wal_scan_open(&s, p, 1, &so), 0);
	while (wal_scan_next(s, &e) == 1)
		seen = e.lsn;
	assert_int_equal(seen, 1);
	/* more entries, across rotations: the follower picks them up */
	for (int i = 0; i < 40; i++)
		assert_int_equal(wal_append(w, WAL_T_RAW, buf, sizeof buf, NULL), 0);
	uint64_t last = wal_last_lsn(w);
	while (wal_scan_next(s, &e) == 1)
		seen = e.lsn;
	assert_int_equal(seen, last);
	assert_int_equal(wal_scan_class(s), 0);
	wal_scan_close(s);
	assert_int_equal(wal_close(w), 0);
	rmrf(dir);
	free(dir);
}

/* A reader holds every segment it listed: one removed (reclaimed) after
 * the scan began is still read to its end, nothing missing. */
static void test_removed_while_reading(void **state)
{
	char *dir = tmpdir();
	const char *p[1] = { dir };
	char waldir[4200], cmd[4300];
	wal_scan_t *s;
	struct wal_entry e;
	uint64_t n = 0, last = 0;

	(void)state;
	build_wal(dir, 60, 4096, 1, WAL_SYNC_FDATASYNC);
	assert_int_equal(wal_scan_open(&s, p, 1, NULL), 0);
	assert_true(wal_scan_nsegments(s) >= 3);
	assert_int_equal(wal_scan_next(s, &e), 1);
	n++;
	/* every segment but the one being read goes */
	snprintf(waldir, sizeof waldir, "%s/wal", dir);
	snprintf(cmd, sizeof cmd, "cd '%s' && ls | grep -v '^%s$' | xargs rm --", waldir, e.segment);
	assert_int_equal(system(cmd), 0);
	while (wal_scan_next(s, &e) == 1) {
		n++;
		last = e.lsn;
	}
	assert_int_equal(wal_scan_nfindings(s), 0);
	assert_int_equal(wal_scan_class(s), 0);
	assert_true(n >= 60);
	assert_int_equal(last, n);
	wal_scan_close(s);
	rmrf(dir);
	free(dir);
}

/* Every kind has its own slug. */
static void test_kind_names(void **state)
{
	(void)state;
	for (int k = WAL_F_CHECKSUM_MISMATCH; k <= WAL_F_BAD_SEAL; k++) {
		const char *name = wal_finding_kind_name((enum wal_fkind)k);
		assert_string_not_equal(name, "unknown");
		for (int j = WAL_F_CHECKSUM_MISMATCH; j < k; j++)
			assert_string_not_equal(name, wal_finding_kind_name((enum wal_fkind)j));
	}
	assert_string_equal(wal_finding_kind_name(WAL_F_LSN_GAP), "lsn-gap");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_segment_files),
		cmocka_unit_test(test_bad_payload),
		cmocka_unit_test(test_follow),
		cmocka_unit_test(test_kind_names),
		cmocka_unit_test(test_removed_while_reading),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
