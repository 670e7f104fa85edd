/*
 * view.c - what storage holds of a data directory's logical content.
 *
 * The logical content of a data directory is the points in storage, then
 * the WAL's entries after the last trusted CHECKPOINT, every point exactly
 * once.  This module decides the first half: which partitions hold the
 * LSNs up to that checkpoint, and what is wrong with storage, so that a
 * reader never shows a point twice, or silently fewer, because a partition
 * is missing, misnamed or stands in for another.
 *
 * A partition belongs to the view when its name is <first>-<last>.part with
 * last at or below the checkpoint, its header (magic, version, CRC) is good,
 * names this WAL and the same LSN range as its name, and its range does not
 * overlap a partition before it.  Every partition that a surviving trusted
 * CHECKPOINT names must be in the view.  Anything else is a problem, kept
 * as a message; partitions above the checkpoint are an interrupted flush's
 * and not part of the view.
 */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "internal.h"

struct named {
	char rel[300];
	uint64_t by; /* LSN of the CHECKPOINT naming it */
};

struct wal_view {
	uint64_t ckpt;
	struct wal_part_ref *parts;
	size_t nparts;
	char (*problems)[600];
	size_t nproblems, capproblems;
};

static int problem(wal_view_t *v, const char *fmt, ...) WAL_PRINTF(2, 3);
static int problem(wal_view_t *v, const char *fmt, ...)
{
	va_list ap;

	if (wal_grow((void **)&v->problems, &v->capproblems, v->nproblems + 1, sizeof *v->problems) != 0)
		return WAL_ENOMEM;
	va_start(ap, fmt);
	vsnprintf(v->problems[v->nproblems++], sizeof *v->problems, fmt, ap);
	va_end(ap);
	return 0;
}

/* The last trusted checkpoint, and every partition the trusted ones name. */
static int checkpoints(const char *datadir, uint64_t *ckpt, uint64_t *wal_id, struct named **out, size_t *nout)
{
	const char *paths[1] = { datadir };
	struct wal_scan_opts so = { 0 };
	struct wal_str names[256];
	struct named *v = NULL;
	size_t n = 0, cap = 0;
	wal_scan_t *s;
	struct wal_entry e;
	int rc;

	*ckpt = 0;
	if ((rc = wal_scan_open(&s, paths, 1, &so)) != 0)
		return rc;
	while ((rc = wal_scan_next(s, &e)) == 1) {
		struct wal_checkpoint c;
		if (!wal_checkpoint_of(&e, &c) || wal_checkpoint_decode(e.payload, e.len, &c, names, 256) != 0)
			continue;
		if (c.lsn > *ckpt)
			*ckpt = c.lsn;
		for (size_t i = 0; i < c.npartitions && i < 256; i++) {
			if ((rc = wal_grow((void **)&v, &cap, n + 1, sizeof *v)) != 0)
				break;
			snprintf(v[n].rel, sizeof v[n].rel, "%.*s", (int)names[i].n, names[i].p);
			v[n++].by = e.lsn;
		}
		if (rc)
			break;
	}
	*wal_id = wal_scan_id(s);
	wal_scan_close(s);
	*out = v;
	*nout = n;
	return rc < 0 ? rc : 0;
}

static int listed(const char *datadir, const char *rel)
{
	char path[PATH_MAX + 320];
	snprintf(path, sizeof path, "%s/data/%s", datadir, rel);
	return access(path, F_OK) == 0;
}

int wal_view_open(wal_view_t **out, const char *datadir)
{
	wal_view_t *v = calloc(1, sizeof *v);
	struct wal_part_ref *all = NULL;
	struct named *named = NULL;
	size_t nall = 0, nnamed = 0;
	uint64_t wal_id = 0;
	int rc;

	*out = NULL;
	if (!v)
		return wal_seterr(WAL_ENOMEM, "out of memory");
	if ((rc = checkpoints(datadir, &v->ckpt, &wal_id, &named, &nnamed)) != 0 ||
	    (rc = wal_part_list(datadir, &all, &nall)) != 0)
		goto out;
	/* the view is kept in all itself: it never gets ahead of i */
	v->parts = all;
	for (size_t i = 0; i < nall && rc == 0; i++) {
		char path[PATH_MAX + 320];
		wal_part_t *p;
		if (all[i].last_lsn > v->ckpt)
			continue;
		snprintf(path, sizeof path, "%s/data/%s", datadir, all[i].rel);
		if (wal_part_open(&p, path) != 0) {
			rc = problem(v, "%s", wal_errmsg());
			continue;
		}
		const struct wal_part_info *in = wal_part_info(p);
		if (wal_id && in->wal_id != wal_id)
			rc = problem(v, "partition '%s' belongs to another WAL", all[i].rel);
		else if (in->first_lsn != all[i].first_lsn || in->last_lsn != all[i].last_lsn)
			rc = problem(v, "partition '%s' holds LSN %llu-%llu, not the LSNs its name says", all[i].rel,
			             (unsigned long long)in->first_lsn, (unsigned long long)in->last_lsn);
		else if (v->nparts && all[i].first_lsn <= v->parts[v->nparts - 1].last_lsn)
			rc = problem(v, "partition '%s' overlaps partition '%s'", all[i].rel,
			             v->parts[v->nparts - 1].rel);
		else
			v->parts[v->nparts++] = all[i];
		wal_part_close(p);
	}
	for (size_t i = 0; i < nnamed && rc == 0; i++) {
		size_t k = 0;
		while (k < v->nparts && strcmp(v->parts[k].rel, named[i].rel) != 0)
			k++;
		if (k == v->nparts)
			rc = problem(v, "checkpoint LSN %llu names partition '%s', which is %s",
			             (unsigned long long)named[i].by, named[i].rel,
			             listed(datadir, named[i].rel) ? "damaged" : "missing");
	}
out:
	free(named);
	if (rc) {
		v->parts = all;
		wal_view_close(v);
		return rc;
	}
	*out = v;
	return 0;
}

uint64_t wal_view_checkpoint(const wal_view_t *v) { return v->ckpt; }
size_t wal_view_npartitions(const wal_view_t *v) { return v->nparts; }
const struct wal_part_ref *wal_view_partition(const wal_view_t *v, size_t i)
{
	return i < v->nparts ? &v->parts[i] : NULL;
}
size_t wal_view_nproblems(const wal_view_t *v) { return v->nproblems; }
const char *wal_view_problem(const wal_view_t *v, size_t i) { return i < v->nproblems ? v->problems[i] : NULL; }

void wal_view_close(wal_view_t *v)
{
	if (!v)
		return;
	free(v->parts);
	free(v->problems);
	free(v);
}

struct held {
	uint64_t lsn;
	uint32_t len, crc;
};

/* Every POINTS entry the WAL holds after LSN ckpt, in LSN order. */
static int held_after(const char *datadir, uint64_t ckpt, struct held **out, size_t *nout)
{
	const char *paths[1] = { datadir };
	struct held *v = NULL;
	size_t n = 0, cap = 0;
	wal_scan_t *s;
	struct wal_entry e;
	int rc;

	*out = NULL;
	*nout = 0;
	if ((rc = wal_scan_open(&s, paths, 1, NULL)) != 0)
		return rc;
	while ((rc = wal_scan_next(s, &e)) == 1) {
		if (e.lsn <= ckpt || (e.type & 0x7f) != WAL_T_POINTS)
			continue;
		if ((rc = wal_grow((void **)&v, &cap, n + 1, sizeof *v)) != 0)
			break;
		v[n++] = (struct held){ e.lsn, e.len, (uint32_t)crc32_z(0, e.payload, e.len) };
	}
	wal_scan_close(s);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	*nout = n;
	return 0;
}

/* 1 if every payload of the partition at path is, in order and byte for
 * byte (by CRC), one of the WAL's POINTS entries in its LSN range, and the
 * WAL holds no other there. */
static int redundant(const char *path, const struct wal_part_ref *ref, const struct held *h, size_t nh)
{
	wal_part_t *p;
	const unsigned char *pl;
	size_t len, j = 0;
	int k;

	if (wal_part_open(&p, path) != 0)
		return 0;
	while (j < nh && h[j].lsn < ref->first_lsn)
		j++;
	while ((k = wal_part_next(p, &pl, &len)) == 1) {
		if (j == nh || h[j].lsn > ref->last_lsn || h[j].len != len || h[j].crc != (uint32_t)crc32_z(0, pl, len))
			break;
		j++;
	}
	wal_part_close(p);
	return k == 0 && (j == nh || h[j].lsn > ref->last_lsn);
}

int wal_part_drop_orphans(const char *datadir, uint64_t ckpt, unsigned *removed, unsigned *kept)
{
	struct wal_part_ref *v;
	struct held *h = NULL;
	size_t n, nh = 0, above = 0;
	int rc = wal_part_list(datadir, &v, &n);

	*removed = *kept = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		above += v[i].last_lsn > ckpt;
	if (rc == 0 && above)
		rc = held_after(datadir, ckpt, &h, &nh);
	for (size_t i = 0; rc == 0 && above && i < n; i++) {
		if (v[i].last_lsn <= ckpt)
			continue;
		char dir[PATH_MAX + 400];
		const char *slash = strrchr(v[i].rel, '/');
		snprintf(dir, sizeof dir, "%s/data/%.*s", datadir, (int)(slash - v[i].rel), v[i].rel);
		char path[PATH_MAX + 700];
		snprintf(path, sizeof path, "%s/%s", dir, slash + 1);
		if (!redundant(path, &v[i], h, nh)) {
			(*kept)++;
			continue;
		}
		if (unlink(path) != 0)
			rc = wal_seterr(wal_errno_code(errno), "cannot remove '%s': %s", path, strerror(errno));
		else if ((rc = fs_fsync_dir(dir)) == 0)
			(*removed)++;
	}
	free(h);
	free(v);
	return rc;
}
