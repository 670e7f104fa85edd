/*
 * util.h - helpers for the C unit tests: scratch directories, WALs built
 * through the library, and what a scan of them returns.
 */
#ifndef WALCTL_TEST_UTIL_H
#define WALCTL_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../lib/walctl.h"

#define UNUSED __attribute__((unused))

static UNUSED char *tmpdir(void)
{
	char *d = strdup("/tmp/walctl-test-XXXXXX");
	assert_non_null(mkdtemp(d));
	return d;
}

static UNUSED void rmrf(const char *d)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
}

/* Build a WAL of N RAW entries "entry-<lsn>" padded to 100 bytes, syncing
 * after each (so each frame vouches for the one before).  seg_size forces
 * rotation.  close_cleanly: 1 wal_close, 0 wal_abandon (a crash). */
static UNUSED void build_wal(const char *dir, int n, uint64_t seg_size, int close_cleanly, enum wal_sync_mode sync)
{
	struct wal_opts o = { .sync = sync, .max_segment_size = seg_size };
	wal_t *w;
	char buf[100];

	assert_int_equal(wal_open(&w, dir, &o), 0);
	for (int i = 0; i < n; i++) {
		uint64_t lsn;
		memset(buf, '.', sizeof buf);
		snprintf(buf, sizeof buf, "entry-%d", i);
		assert_int_equal(wal_append(w, WAL_T_RAW, buf, sizeof buf, &lsn), 0);
		assert_int_equal(wal_sync(w), 0);
	}
	if (close_cleanly)
		assert_int_equal(wal_close(w), 0);
	else
		wal_abandon(w);
}

struct frame_pos {
	char segment[64];
	uint64_t offset, lsn;
	uint32_t len;
	unsigned type;
};

struct scan_result {
	int cls;
	size_t n;                  /* entries returned */
	struct frame_pos f[4096];
	size_t nf;                 /* findings */
	struct wal_finding finding[16];
	size_t nsegs;
	char payload_ok;           /* every RAW payload says "entry-" */
};

static UNUSED void scan_dir(const char *dir, struct scan_result *r)
{
	const char *p[1] = { dir };
	struct wal_scan_opts so = { .check_payloads = 2 };
	wal_scan_t *s;
	struct wal_entry e;
	int rc;

	memset(r, 0, sizeof *r);
	r->payload_ok = 1;
	assert_int_equal(wal_scan_open(&s, p, 1, &so), 0);
	while ((rc = wal_scan_next(s, &e)) == 1) {
		assert_true(r->n < 4096);
		struct frame_pos *f = &r->f[r->n++];
		snprintf(f->segment, sizeof f->segment, "%s", e.segment);
		f->offset = e.offset;
		f->lsn = e.lsn;
		f->len = e.len;
		f->type = e.type;
		if (e.type == WAL_T_RAW && (e.len != 100 || memcmp(e.payload, "entry-", 6) != 0))
			r->payload_ok = 0;
	}
	assert_int_equal(rc, 0);
	r->cls = wal_scan_class(s);
	r->nf = wal_scan_nfindings(s);
	for (size_t i = 0; i < r->nf && i < 16; i++)
		r->finding[i] = *wal_scan_finding(s, i);
	r->nsegs = wal_scan_nsegments(s);
	wal_scan_close(s);
}

/* Path of segment NAME in DIR. */
static UNUSED const char *segpath(const char *dir, const char *name)
{
	static char p[4200];
	snprintf(p, sizeof p, "%s/wal/%s", dir, name);
	return p;
}

static UNUSED int has_lsn(const struct scan_result *r, uint64_t lsn)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->f[i].lsn == lsn)
			return 1;
	return 0;
}

#endif
