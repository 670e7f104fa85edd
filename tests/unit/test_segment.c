/*
 * test_segment.c - the segment manager: naming by first LSN, rotation by
 * size and by age with a SEAL frame, the CLOSE marker, the single-writer
 * lock, continuing a WAL, and cutting a torn tail into quarantine.
 */
#include <dirent.h>
#include <sys/stat.h>

#include "util.h"
#include "../../lib/internal.h"
#include "../tools/damage.h"

static size_t count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_rotation_by_size(void **state)
{
	char *dir = tmpdir();
	struct scan_result *r = malloc(sizeof *r);
	const char *p[1] = { dir };
	wal_scan_t *s;
	struct wal_entry e;

	(void)state;
	build_wal(dir, 50, 2000, 1, WAL_SYNC_FDATASYNC);
	scan_dir(dir, r);
	assert_int_equal(r->cls, 0);
	assert_true(r->nsegs >= 4);
	/* LSNs run 1.. without a gap across segments; each segment but the last
	 * ends with a SEAL whose counts match. */
	assert_int_equal(wal_scan_open(&s, p, 1, NULL), 0);
	uint64_t want = 1, in_seg = 0, first = 0;
	const char *seg = NULL;
	while (wal_scan_next(s, &e) == 1) {
		assert_int_equal(e.lsn, want++);
		if (!seg || strcmp(seg, e.segment) != 0) {
			char name[32];
			snprintf(name, sizeof name, "%016llx.wal", (unsigned long long)e.lsn);
			assert_string_equal(e.segment, name); /* named by first LSN */
			in_seg = 0;
			first = e.lsn;
		}
		seg = e.segment;
		if (e.type == WAL_T_SEAL) {
			struct wal_seal se;
			assert_int_equal(wal_seal_decode(e.payload, e.len, &se), 0);
			assert_int_equal(se.entries, in_seg);
			assert_int_equal(se.first_lsn, first);
			assert_int_equal(se.last_lsn, e.lsn - 1);
			assert_int_equal(se.bytes, e.offset);
			assert_true(e.watermark <= e.lsn);
		}
		in_seg++;
	}
	/* the clean close: a CLOSE frame that vouches for everything before it */
	assert_int_equal(e.type, WAL_T_CLOSE);
	assert_int_equal(e.watermark, e.lsn - 1);
	for (size_t i = 0; i + 1 < wal_scan_nsegments(s); i++)
		assert_true(wal_scan_segment(s, i)->sealed);
	assert_true(wal_scan_segment(s, wal_scan_nsegments(s) - 1)->closed);
	wal_scan_close(s);
	rmrf(dir);
	free(dir);
	free(r);
}

static void test_rotation_by_age(void **state)
{
	char *dir = tmpdir();
	struct wal_opts o = { .max_segment_age_ns = 1000000 }; /* 1 ms */
	struct scan_result *r = malloc(sizeof *r);
	wal_t *w;

	(void)state;
	assert_int_equal(wal_open(&w, dir, &o), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(wal_append(w, WAL_T_RAW, "x", 1, NULL), 0);
		usleep(5000);
	}
	assert_int_equal(wal_close(w), 0);
	scan_dir(dir, r);
	assert_int_equal(r->cls, 0);
	assert_int_equal(r->nsegs, 3);
	rmrf(dir);
	free(dir);
	free(r);
}

static void test_lock(void **state)
{
	char *dir = tmpdir();
	wal_t *a, *b;
	char want[64];

	(void)state;
	assert_int_equal(wal_open(&a, dir, NULL), 0);
	assert_int_equal(wal_open(&b, dir, NULL), WAL_ELOCKED);
	assert_null(b);
	snprintf(want, sizeof want, "locked by pid %ld", (long)getpid());
	assert_non_null(strstr(wal_errmsg(), want));
	assert_int_equal(wal_close(a), 0);
	assert_int_equal(wal_open(&b, dir, NULL), 0);
	assert_int_equal(wal_close(b), 0);
	rmrf(dir);
	free(dir);
}

static void test_continue_lsn(void **state)
{
	char *dir = tmpdir();
	wal_t *w;
	uint64_t lsn;

	(void)state;
	build_wal(dir, 3, 0, 1, WAL_SYNC_FSYNC); /* LSN 1-3, CLOSE 4 */
	assert_int_equal(wal_open(&w, dir, NULL), 0);
	assert_int_equal(wal_last_lsn(w), 4);
	assert_int_equal(wal_durable_lsn(w), 4);
	assert_int_equal(wal_append(w, WAL_T_RAW, "y", 1, &lsn), 0);
	assert_int_equal(lsn, 5);
	assert_int_equal(wal_close(w), 0);
	rmrf(dir);
	free(dir);
}

static void test_too_big(void **state)
{
	char *dir = tmpdir();
	struct wal_opts o = { .max_entry_size = 100 };
	wal_t *w;
	char buf[101] = { 0 };

	(void)state;
	assert_int_equal(wal_open(&w, dir, &o), 0);
	assert_int_equal(wal_append(w, WAL_T_RAW, buf, 101, NULL), WAL_ETOOBIG);
	assert_int_equal(wal_append(w, WAL_T_RAW, buf, 100, NULL), 0);
	assert_int_equal(wal_close(w), 0);
	rmrf(dir);
	free(dir);
}

/* async: nothing is vouched for until close. */
static void test_async_marks(void **state)
{
	char *dir = tmpdir();
	const char *p[1] = { dir };
	wal_scan_t *s;
	struct wal_entry e;

	(void)state;
	build_wal(dir, 5, 0, 0, WAL_SYNC_ASYNC);
	int n = 0;
	assert_int_equal(wal_scan_open(&s, p, 1, NULL), 0);
	while (wal_scan_next(s, &e) == 1) {
		if (e.type == WAL_T_RAW)
			n++;
		assert_int_equal(e.watermark, 0);
	}
	wal_scan_close(s);
	assert_int_equal(n, 5);
	rmrf(dir);
	free(dir);
}

static void test_torn_tail_cut_on_open(void **state)
{
	char *dir = tmpdir(), q[4200];
	struct scan_result *r = malloc(sizeof *r);
	wal_t *w;

	(void)state;
	build_wal(dir, 4, 0, 0, WAL_SYNC_FDATASYNC);
	scan_dir(dir, r);
	const char *seg = segpath(dir, r->f[0].segment);
	uint64_t size = dmg_size(seg);
	assert_int_equal(dmg_append(seg, 77, 7), 0);
	assert_int_equal(wal_open(&w, dir, NULL), 0);
	assert_non_null(wal_torn_note(w));
	assert_non_null(strstr(wal_torn_note(w), "cut a torn tail of 77 bytes"));
	assert_int_equal(dmg_size(seg), size);
	assert_int_equal(wal_close(w), 0);
	snprintf(q, sizeof q, "%s/quarantine", dir);
	assert_int_equal(count_files(q), 1);
	scan_dir(dir, r);
	assert_int_equal(r->cls, 0);
	assert_int_equal(r->n, 5); /* 4 entries and the CLOSE */
	rmrf(dir);
	free(dir);
	free(r);
}

/* A repair that read the whole WAL opens it where its scan found it ends;
 * once the WAL ends elsewhere, or a segment came after, wal_open_found
 * reads it instead. */
static void test_open_found(void **state)
{
	char *dir = tmpdir(), later[4200];
	const char *paths[1] = { dir };
	wal_scan_t *s;
	struct wal_found f;
	wal_t *w;
	uint64_t lsn;

	(void)state;
	build_wal(dir, 3, 0, 0, WAL_SYNC_FDATASYNC);
	assert_int_equal(wal_scan_open(&s, paths, 1, NULL), 0);
	assert_int_equal(wal_scan_found(s, &f), 0);
	wal_scan_close(s);
	assert_int_equal(f.t.last_lsn, 3);
	assert_false(f.torn || f.damage);
	assert_int_equal(wal_open_found(&w, dir, NULL, &f), 0);
	assert_int_equal(wal_last_lsn(w), 3);
	assert_int_equal(wal_append(w, WAL_T_RAW, "y", 1, &lsn), 0);
	assert_int_equal(lsn, 4);
	assert_int_equal(wal_close(w), 0); /* CLOSE 5 */
	/* f no longer says where the WAL ends */
	assert_int_equal(wal_open_found(&w, dir, NULL, &f), 0);
	assert_int_equal(wal_last_lsn(w), 5);
	assert_int_equal(wal_close(w), 0);
	/* a segment after the one f names: read, and refused */
	assert_int_equal(wal_scan_open(&s, paths, 1, NULL), 0);
	assert_int_equal(wal_scan_found(s, &f), 0);
	wal_scan_close(s);
	snprintf(later, sizeof later, "%s/wal/0000000000000100.wal", dir);
	FILE *fp = fopen(later, "w");
	assert_non_null(fp);
	fputs("not a segment", fp);
	fclose(fp);
	assert_int_equal(wal_open_found(&w, dir, NULL, &f), WAL_ECORRUPT);
	rmrf(dir);
	free(dir);
}

static void test_refuses_damage(void **state)
{
	char *dir = tmpdir();
	struct scan_result *r = malloc(sizeof *r);
	wal_t *w;

	(void)state;
	build_wal(dir, 4, 0, 1, WAL_SYNC_FDATASYNC);
	scan_dir(dir, r);
	assert_int_equal(dmg_flip(segpath(dir, r->f[1].segment), r->f[1].offset + 50, 1), 0);
	assert_int_equal(wal_open(&w, dir, NULL), WAL_ECORRUPT);
	assert_non_null(strstr(wal_errmsg(), "recover --mode salvage"));
	rmrf(dir);
	free(dir);
	free(r);
}

/* wal_sync_through at its boundary, in async mode (no sync of its own):
 * durable one below the LSN asked for syncs; at it or above, nothing is
 * owed.  The flusher relies on it to store only what the WAL synced. */
static void test_sync_through(void **state)
{
	(void)state;
	char *dir = tmpdir();
	struct wal_opts o = { .sync = WAL_SYNC_ASYNC };
	wal_t *w;
	uint64_t lsn;

	assert_int_equal(wal_open(&w, dir, &o), 0);
	assert_int_equal(wal_append(w, WAL_T_RAW, "a", 1, &lsn), 0);
	assert_int_equal(lsn, 1);
	assert_int_equal(wal_durable_lsn(w), 0);
	assert_int_equal(wal_sync_through(w, 1), 0); /* one below: synced */
	assert_int_equal(wal_durable_lsn(w), 1);
	assert_int_equal(wal_append(w, WAL_T_RAW, "b", 1, &lsn), 0);
	assert_int_equal(wal_append(w, WAL_T_RAW, "c", 1, &lsn), 0);
	assert_int_equal(wal_sync_through(w, 1), 0); /* at it: nothing owed */
	assert_int_equal(wal_durable_lsn(w), 1);
	assert_int_equal(wal_sync_through(w, 0), 0); /* above it */
	assert_int_equal(wal_durable_lsn(w), 1);
	assert_int_equal(wal_sync_through(w, 2), 0); /* one below again: all appended is synced */
	assert_int_equal(wal_durable_lsn(w), 3);
	assert_int_equal(wal_close(w), 0);
	rmrf(dir);
	free(dir);
}

/* A SEAL is checked against the frames it closes.  Three RAW entries, then
 * a SEAL appended as the writer would append any frame (so its counts are
 * whatever the test says), then two more entries.  The true seal (3
 * entries, LSN 1-3, bytes where it stands) passes; each field one off, on
 * either side, is bad-seal damage at the SEAL's LSN, and the entries after
 * it are still read (the segment is not taken as sealed). */
static void test_seal_checked(void **state)
{
	(void)state;
	struct {
		int64_t d_entries, d_first, d_last, d_bytes;
		int bad;
	} cases[] = {
		{ 0, 0, 0, 0, 0 },  { 1, 0, 0, 0, 1 },  { -1, 0, 0, 0, 1 }, { 0, 1, 0, 0, 1 },
		{ 0, -1, 0, 0, 1 }, { 0, 0, 1, 0, 1 },  { 0, 0, -1, 0, 1 }, { 0, 0, 0, 1, 1 },
		{ 0, 0, 0, -1, 1 }, { (int64_t)1 << 60, 0, 0, 0, 1 },
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		char *dir = tmpdir();
		wal_t *w;
		uint64_t lsn;
		assert_int_equal(wal_open(&w, dir, NULL), 0);
		for (int i = 0; i < 3; i++)
			assert_int_equal(wal_append(w, WAL_T_RAW, "0123456789", 10, &lsn), 0);
		/* three frames of 40 + 10 bytes after the 64-byte header */
		struct wal_seal se = { (uint64_t)(3 + cases[c].d_entries), (uint64_t)(1 + cases[c].d_first),
			               (uint64_t)(3 + cases[c].d_last),
			               (uint64_t)(WAL_SEG_HEADER_SIZE + 3 * 50 + cases[c].d_bytes) };
		unsigned char buf[64];
		size_t n = wal_seal_encode(buf, sizeof buf, &se);
		assert_int_equal(wal_append(w, WAL_T_SEAL, buf, n, &lsn), 0);
		assert_int_equal(lsn, 4);
		assert_int_equal(wal_append(w, WAL_T_RAW, "after", 5, &lsn), 0);
		assert_int_equal(wal_append(w, WAL_T_RAW, "after", 5, &lsn), 0);
		assert_int_equal(wal_close(w), 0);

		static struct scan_result r;
		scan_dir(dir, &r);
		int found = 0;
		for (size_t i = 0; i < r.nf && i < 16; i++)
			if (r.finding[i].kind == WAL_F_BAD_SEAL) {
				found = 1;
				assert_int_equal(r.finding[i].lsn_first, 4);
				assert_int_equal(r.finding[i].offset, WAL_SEG_HEADER_SIZE + 3 * 50);
			}
		if (found != cases[c].bad)
			fail_msg("case %zu: bad-seal %s", c, found ? "reported for a true seal" : "not reported");
		assert_int_equal(r.cls, cases[c].bad ? WAL_CLASS_DAMAGE : 0);
		/* with a true seal the entries after it are a merged segment's
		 * next run; with a bad one they are read as any other: both times
		 * every LSN is there */
		for (uint64_t l = 1; l <= 7; l++)
			assert_true(has_lsn(&r, l));
		rmrf(dir);
		free(dir);
	}
}

/* A bad SEAL at the end of a segment whose writer died: the segment is not
 * taken as sealed (so verify does not take it as closed by a rotation). */
static void test_bad_seal_does_not_seal(void **state)
{
	(void)state;
	char *dir = tmpdir();
	const char *p[1] = { dir };
	wal_t *w;
	wal_scan_t *s;
	struct wal_entry e;
	uint64_t lsn;

	assert_int_equal(wal_open(&w, dir, NULL), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(wal_append(w, WAL_T_RAW, "0123456789", 10, &lsn), 0);
	struct wal_seal se = { 4, 1, 3, WAL_SEG_HEADER_SIZE + 3 * 50 }; /* one entry too many */
	unsigned char buf[64];
	size_t n = wal_seal_encode(buf, sizeof buf, &se);
	assert_int_equal(wal_append(w, WAL_T_SEAL, buf, n, &lsn), 0);
	assert_int_equal(wal_sync(w), 0);
	wal_abandon(w);
	assert_int_equal(wal_scan_open(&s, p, 1, NULL), 0);
	while (wal_scan_next(s, &e) == 1)
		;
	assert_int_equal(wal_scan_nsegments(s), 1);
	assert_int_equal(wal_scan_segment(s, 0)->sealed, 0);
	assert_true(wal_scan_class(s) & WAL_CLASS_DAMAGE);
	wal_scan_close(s);
	rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rotation_by_size),
		cmocka_unit_test(test_rotation_by_age),
		cmocka_unit_test(test_lock),
		cmocka_unit_test(test_sync_through),
		cmocka_unit_test(test_seal_checked),
		cmocka_unit_test(test_bad_seal_does_not_seal),
		cmocka_unit_test(test_continue_lsn),
		cmocka_unit_test(test_open_found),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_async_marks),
		cmocka_unit_test(test_torn_tail_cut_on_open),
		cmocka_unit_test(test_refuses_damage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
