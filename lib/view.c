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
 * overlap a partition before it, and a trusted CHECKPOINT names it unless
 * that one may have been reclaimed (wal_named_unnamed).  Every partition
 * that a surviving trusted CHECKPOINT names must be in the view.  Anything else is a problem, kept
 * as a message; partitions above the checkpoint are an interrupted flush's
 * and not part of the view.
 *
 * It is also where a scan of the WAL learns whether the partitions a
 * CHECKPOINT names are there and intact (wal_check_storage): the frame
 * scanner itself knows nothing of storage.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct named {
	char rel[300];
	uint64_t by; /* LSN of the CHECKPOINT naming it */
};

struct wal_view {
	uint64_t ckpt;
	struct wal_part_ref *parts;
	size_t nparts;
	struct wal_view_bad *bad;
	size_t nbad, capbad;
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

struct wal_named {
	uint64_t ckpt;
	uint64_t first; /* the first LSN of the WAL read (0: none) */
	struct named *v;
	size_t n, cap;
	int sorted;
};

int wal_named_new(wal_named_t **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? 0 : wal_seterr(WAL_ENOMEM, "out of memory");
}

int wal_named_add(wal_named_t *nm, const struct wal_entry *e)
{
	struct wal_str *names;
	struct wal_checkpoint c;

	if (e->lsn && (!nm->first || e->lsn < nm->first))
		nm->first = e->lsn;
	if (!wal_checkpoint_of(e, &c))
		return 0;
	if (!(names = calloc(c.npartitions ? c.npartitions : 1, sizeof *names)))
		return wal_seterr(WAL_ENOMEM, "out of memory");
	if (wal_checkpoint_decode(e->payload, e->len, &c, names, c.npartitions) != 0) {
		free(names);
		return 0;
	}
	if (c.lsn > nm->ckpt)
		nm->ckpt = c.lsn;
	for (size_t i = 0; i < c.npartitions; i++) {
		if (wal_grow((void **)&nm->v, &nm->cap, nm->n + 1, sizeof *nm->v) != 0) {
			free(names);
			return WAL_ENOMEM;
		}
		snprintf(nm->v[nm->n].rel, sizeof nm->v[nm->n].rel, "%.*s", (int)names[i].n, names[i].p);
		nm->v[nm->n++].by = e->lsn;
		nm->sorted = 0;
	}
	free(names);
	return 0;
}

static int cmp_named(const void *a, const void *b)
{
	return strcmp(((const struct named *)a)->rel, ((const struct named *)b)->rel);
}

/* Each CHECKPOINT names the partitions of its own flush, and segments go
 * from the front, so every CHECKPOINT after the WAL's first LSN is still
 * there: a partition up to the checkpoint that ends at or after the WAL's
 * first LSN is named by one of them, or it is not storage's (copied in,
 * left by something else).  One that ends before it may have been named
 * by a CHECKPOINT reclaimed since. */
int wal_named_unnamed(wal_named_t *nm, const struct wal_part_ref *r)
{
	if (!nm->first || r->last_lsn < nm->first || r->last_lsn > nm->ckpt)
		return 0;
	if (!nm->sorted) {
		if (nm->n)
			qsort(nm->v, nm->n, sizeof *nm->v, cmp_named);
		nm->sorted = 1;
	}
	struct named key;
	snprintf(key.rel, sizeof key.rel, "%s", r->rel);
	return !nm->n || !bsearch(&key, nm->v, nm->n, sizeof *nm->v, cmp_named);
}

void wal_named_free(wal_named_t *nm)
{
	if (!nm)
		return;
	free(nm->v);
	free(nm);
}

/* The last trusted checkpoint, and every partition the trusted ones name. */
static int checkpoints(const char *datadir, wal_named_t *nm, uint64_t *wal_id)
{
	const char *paths[1] = { datadir };
	struct wal_scan_opts so = { 0 };
	wal_scan_t *s;
	struct wal_entry e;
	int rc;

	if ((rc = wal_scan_open(&s, paths, 1, &so)) != 0)
		return rc;
	while ((rc = wal_scan_next(s, &e)) == 1)
		if ((rc = wal_named_add(nm, &e)) != 0)
			break;
	*wal_id = wal_scan_id(s);
	wal_scan_close(s);
	return rc < 0 ? rc : 0;
}

static int add_bad(wal_view_t *v, const struct wal_part_ref *ref, int missing, int overlaps)
{
	if (wal_grow((void **)&v->bad, &v->capbad, v->nbad + 1, sizeof *v->bad) != 0)
		return WAL_ENOMEM;
	v->bad[v->nbad++] = (struct wal_view_bad){ *ref, missing, 0, overlaps, 0 };
	return 0;
}

static int listed(const char *datadir, const char *rel)
{
	char path[PATH_MAX + 320];
	snprintf(path, sizeof path, "%s/data/%s", datadir, rel);
	return access(path, F_OK) == 0;
}

/* The partition of the view before REL's of the same database: ranges of
 * one database never overlap, while those of two databases interleave
 * whenever their entries do. */
static const struct wal_part_ref *last_of_db(const wal_view_t *v, const char *rel)
{
	size_t n = strcspn(rel, "/");

	for (size_t i = v->nparts; i-- > 0;)
		if (strncmp(v->parts[i].rel, rel, n) == 0 && v->parts[i].rel[n] == '/')
			return &v->parts[i];
	return NULL;
}

static int view_open(wal_view_t **out, const char *datadir, int blocks, wal_named_t *given, uint64_t wal_id)
{
	wal_view_t *v = calloc(1, sizeof *v);
	struct wal_part_ref *all = NULL;
	wal_named_t read = { 0 };
	wal_named_t *nm = given ? given : &read;
	unsigned char *un = NULL;
	size_t nall = 0;
	int rc;

	*out = NULL;
	if (!v)
		return wal_seterr(WAL_ENOMEM, "out of memory");
	if ((!given && (rc = checkpoints(datadir, &read, &wal_id)) != 0) ||
	    (rc = wal_part_list(datadir, &all, &nall)) != 0)
		goto out;
	v->ckpt = nm->ckpt;
	if (!(un = calloc(nall ? nall : 1, 1))) {
		rc = wal_seterr(WAL_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = wal_part_unnamed(datadir, nm, all, nall, un)) != 0)
		goto out;
	const struct named *named = nm->v;
	size_t nnamed = nm->n;
	/* the view is kept in all itself: it never gets ahead of i */
	v->parts = all;
	for (size_t i = 0; i < nall && rc == 0; i++) {
		char path[PATH_MAX + 320];
		const struct wal_part_ref *prev;
		wal_part_t *p;
		if (all[i].last_lsn > v->ckpt)
			continue;
		if (un[i]) {
			if ((rc = problem(v, "partition '%s' is named by no checkpoint (the WAL holds every checkpoint "
			                     "from LSN %llu on) and is not what the WAL holds of its LSNs: it is not "
			                     "storage's",
			                  all[i].rel, (unsigned long long)nm->first)) == 0 &&
			    (rc = add_bad(v, &all[i], 0, 0)) == 0)
				v->bad[v->nbad - 1].unnamed = 1;
			continue;
		}
		snprintf(path, sizeof path, "%s/data/%s", datadir, all[i].rel);
		int orc = wal_part_open(&p, path);
		if (orc != 0 && orc != WAL_ECORRUPT && orc != WAL_ENOENT) {
			rc = orc; /* cannot be read (permission, I/O): not damage */
			break;
		}
		if (orc != 0) {
			if ((rc = problem(v, "%s", wal_errmsg())) == 0)
				rc = add_bad(v, &all[i], 0, 0);
			continue;
		}
		const struct wal_part_info *in = wal_part_info(p);
		if (wal_id && in->wal_id != wal_id)
			rc = problem(v, "partition '%s' belongs to another WAL", all[i].rel);
		else if (in->first_lsn != all[i].first_lsn || in->last_lsn != all[i].last_lsn)
			rc = problem(v, "partition '%s' holds LSN %llu-%llu, not the LSNs its name says", all[i].rel,
			             (unsigned long long)in->first_lsn, (unsigned long long)in->last_lsn);
		else if ((prev = last_of_db(v, all[i].rel)) && all[i].first_lsn <= prev->last_lsn)
			rc = problem(v, "partition '%s' overlaps partition '%s'", all[i].rel, prev->rel);
		else if (blocks && wal_part_verify(p, 0, wal_id) != 0)
			rc = problem(v, "%s", wal_errmsg());
		else
			v->parts[v->nparts++] = all[i];
		wal_part_close(p);
		if (rc == 0 && (v->nparts == 0 || strcmp(v->parts[v->nparts - 1].rel, all[i].rel) != 0))
			rc = add_bad(v, &all[i], 0,
			             (prev = last_of_db(v, all[i].rel)) && all[i].first_lsn <= prev->last_lsn);
	}
	for (size_t i = 0; i < nnamed && rc == 0; i++) {
		size_t k = 0;
		while (k < v->nparts && strcmp(v->parts[k].rel, named[i].rel) != 0)
			k++;
		if (k < v->nparts)
			continue;
		int there = listed(datadir, named[i].rel), known = 0;
		rc = problem(v, "checkpoint LSN %llu names partition '%s', which is %s",
		             (unsigned long long)named[i].by, named[i].rel, there ? "damaged" : "missing");
		for (size_t j = 0; j < v->nbad && rc == 0; j++) {
			if (!strcmp(v->bad[j].ref.rel, named[i].rel)) {
				v->bad[j].named = 1;
				known = 1;
			}
		}
		/* missing, or above the checkpoint: listed by the name's LSNs */
		const char *base = strrchr(named[i].rel, '/');
		struct wal_part_ref r = { 0 };
		if (rc == 0 && !known && base && part_name_parse(base + 1, &r.first_lsn, &r.last_lsn) &&
		    r.first_lsn <= r.last_lsn) {
			snprintf(r.rel, sizeof r.rel, "%s", named[i].rel);
			if ((rc = add_bad(v, &r, !there, 0)) == 0)
				v->bad[v->nbad - 1].named = 1;
		}
	}
out:
	free(read.v);
	free(un);
	if (rc) {
		v->parts = all;
		wal_view_close(v);
		return rc;
	}
	*out = v;
	return 0;
}

/* Each partition checkpoint C (entry E) names that is not there, intact,
 * of WAL wal_id and within the checkpoint's LSNs: bad(ctx, e, kind, why). */
static int check_named(const char *datadir, int deep, uint64_t wal_id, const struct wal_entry *e,
                       const struct wal_checkpoint *c,
                       int (*bad)(void *ctx, const struct wal_entry *e, enum wal_fkind kind, const char *why),
                       void *ctx)
{
	for (size_t i = 0; datadir[0] && i < c->npartitions && i < 256; i++) {
		const struct wal_str *name = &c->partitions[i];
		char path[PATH_MAX + 600];
		snprintf(path, sizeof path, "%s/data/%.*s", datadir, (int)name->n, name->p);
		uint64_t first = 0, last = 0;
		int beyond = part_name_parse(strrchr(path, '/') + 1, &first, &last) && last > c->lsn;
		int prc = beyond || memchr(name->p, 0, name->n) || strstr(path, "/../") ? WAL_ECORRUPT
		                                                                        : wal_part_check(path, deep, wal_id);
		if (prc != 0 && prc != WAL_ECORRUPT && prc != WAL_ENOENT)
			return prc; /* cannot be read (permission, I/O): an operational error, not damage */
		if (prc != 0) {
			char lsns[96], why[600];
			snprintf(lsns, sizeof lsns, "holds LSN %llu-%llu, past the checkpoint's",
			         (unsigned long long)first, (unsigned long long)last);
			snprintf(why, sizeof why,
			         "checkpoint LSN %llu (storage through LSN %llu) names partition '%.*s', which %s",
			         (unsigned long long)e->lsn, (unsigned long long)c->lsn, (int)name->n, name->p,
			         beyond                    ? lsns
			         : access(path, F_OK) != 0 ? "is missing"
			                                   : wal_errmsg());
			int rc = bad(ctx, e, beyond ? WAL_F_PARTITION_BEYOND : WAL_F_BAD_CHECKPOINT, why);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int scan_finding(void *ctx, const struct wal_entry *e, enum wal_fkind kind, const char *why)
{
	return wal_scan_add_finding(ctx, WAL_CLASS_DAMAGE, kind, e->offset, WAL_FRAME_HEADER_SIZE + e->len, e->lsn,
	                            e->lsn, "%s", why);
}

int wal_check_storage(void *ctx, wal_scan_t *s, const struct wal_entry *e, const struct wal_checkpoint *c)
{
	(void)ctx;
	return check_named(wal_scan_datadir(s), wal_scan_deep(s), wal_scan_id(s), e, c, scan_finding, s);
}

struct first_bad {
	char *why;
	size_t cap;
};

static int first_bad(void *ctx, const struct wal_entry *e, enum wal_fkind kind, const char *why)
{
	struct first_bad *f = ctx;

	(void)e;
	(void)kind;
	snprintf(f->why, f->cap, "%s", why);
	return 1;
}

int wal_check_named(const char *datadir, uint64_t wal_id, const struct wal_entry *e, const struct wal_checkpoint *c,
                    char *why, size_t cap)
{
	struct first_bad f = { why, cap };

	return check_named(datadir, 0, wal_id, e, c, first_bad, &f);
}

/* The segments of WALDIR, oldest first, from their names and sizes: a
 * segment's last LSN is the next one's first less one, the newest's LAST
 * (at least its first less one). */
static int list_spans(const char *waldir, uint64_t last, struct wal_seg_span **out, size_t *nout)
{
	struct wal_seg_span *v = NULL;
	size_t n = 0, cap = 0;
	DIR *d;
	struct dirent *de;
	uint64_t l;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	if (!(d = opendir(waldir)))
		return wal_seterr(wal_errno_code(errno), "cannot open '%s': %s", waldir, strerror(errno));
	while ((de = readdir(d))) {
		if (!seg_name_parse(de->d_name, &l))
			continue;
		if (n == cap && wal_grow((void **)&v, &cap, n + 1, sizeof *v) != 0) {
			rc = wal_seterr(WAL_ENOMEM, "out of memory");
			break;
		}
		char path[PATH_MAX + 300];
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", waldir, de->d_name);
		v[n++] = (struct wal_seg_span){ l, 0, stat(path, &st) == 0 ? (uint64_t)st.st_size : 0 };
	}
	closedir(d);
	if (rc) {
		free(v);
		return rc;
	}
	for (size_t i = 0; i < n; i++) /* a few segments: insertion sort */
		for (size_t j = i; j > 0 && v[j].first_lsn < v[j - 1].first_lsn; j--) {
			struct wal_seg_span t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++)
		v[i].last_lsn = i + 1 < n                   ? v[i + 1].first_lsn - 1
		                : last > v[i].first_lsn - 1 ? last
		                                            : v[i].first_lsn - 1;
	*out = v;
	*nout = n;
	return 0;
}

static int seg_spans_once(const char *datadir, struct wal_seg_span **out, size_t *n, uint64_t *last_lsn);

/* A live writer may rotate and reclaim between the listing and the read of
 * the newest segment: then the listing is made again. */
int wal_seg_spans(const char *datadir, struct wal_seg_span **out, size_t *n, uint64_t *last_lsn)
{
	int rc;

	for (int tries = 0; (rc = seg_spans_once(datadir, out, n, last_lsn)) == WAL_ENOENT && tries < 20; tries++)
		;
	return rc;
}

static int seg_spans_once(const char *datadir, struct wal_seg_span **out, size_t *n, uint64_t *last_lsn)
{
	char waldir[PATH_MAX], path[PATH_MAX + 40], name[32];
	const char *paths[1] = { path };
	wal_scan_t *s;
	struct wal_entry e;
	int rc;

	*last_lsn = 0;
	snprintf(waldir, sizeof waldir, "%s/wal", datadir);
	if ((rc = list_spans(waldir, 0, out, n)) != 0 || !*n)
		return rc;
	/* the newest segment alone is read, for its last LSN */
	seg_name(name, (*out)[*n - 1].first_lsn);
	snprintf(path, sizeof path, "%s/%s", waldir, name);
	if ((rc = wal_scan_open(&s, paths, 1, NULL)) != 0) {
		free(*out);
		*out = NULL;
		return rc;
	}
	uint64_t last = 0;
	while ((rc = wal_scan_next(s, &e)) == 1)
		last = e.lsn;
	wal_scan_close(s);
	if (rc < 0) {
		free(*out);
		*out = NULL;
		return rc;
	}
	if (last)
		(*out)[*n - 1].last_lsn = last;
	*last_lsn = (*out)[*n - 1].last_lsn;
	return 0;
}

uint64_t wal_seg_lag(const struct wal_seg_span *s, size_t n, uint64_t cursor)
{
	uint64_t bytes = 0;

	for (size_t i = 0; i < n; i++)
		if (s[i].last_lsn > cursor)
			bytes += s[i].bytes;
	return bytes;
}

/* The lowest cursor of DATADIR's live consumers (UINT64_MAX: none), once
 * each whose WAL after its cursor (SPANS) is more than the limit is marked
 * lost.  -1 when the consumers could not be read or marked. */
static int consumer_floor(const char *datadir, const struct wal_seg_span *spans, size_t n,
                          const struct wal_reclaim_opts *ro, uint64_t *floor)
{
	struct wal_consumer *v;
	size_t nc;
	uint64_t max = ro->max_consumer_lag ? ro->max_consumer_lag : WAL_CONSUMER_LAG_DEFAULT;

	*floor = UINT64_MAX;
	if (wal_consumers_list(datadir, &v, &nc) != 0)
		return -1;
	for (size_t k = 0; k < nc; k++) {
		if (v[k].lost)
			continue;
		uint64_t lag = wal_seg_lag(spans, n, v[k].lsn);
		if (lag > max) {
			char why[160];
			snprintf(why, sizeof why,
			         "%" PRIu64 " bytes of WAL after its cursor, past the limit of %" PRIu64, lag, max);
			if (wal_consumer_lose(datadir, v[k].name, why) != 0) {
				free(v);
				return -1;
			}
			v[k].lost = 1;
			snprintf(v[k].why, sizeof v[k].why, "%s", why);
			if (ro->lost)
				ro->lost(ro->ctx, &v[k], lag);
			continue;
		}
		if (v[k].lsn < *floor)
			*floor = v[k].lsn;
	}
	free(v);
	return 0;
}

/* Remove the oldest segments whose every LSN is at or below THROUGH and
 * the consumers' floor, keeping the newest KEEP.  A segment's last LSN is
 * the next one's first less one, so the names tell, without reading.
 *
 * The CHECKPOINT that lets them go was appended by the caller; it is synced
 * before the first removal, whatever the sync mode, because a power cut after the unlinks but
 * before that sync would leave a WAL that starts mid-way with no checkpoint
 * to say where its storage is (walctl-format(5): the WAL-storage invariant). */
int wal_reclaim(wal_t *w, uint64_t through, const struct wal_reclaim_opts *ro, unsigned *removed)
{
	const char *waldir = wal_waldir(w);
	unsigned keep = ro->keep;
	char active[64];
	struct wal_seg_span *v;
	uint64_t floor;
	size_t n;
	int rc;

	*removed = 0;
	wal_hold(w, active, sizeof active);
	if ((rc = list_spans(waldir, wal_last_lsn(w), &v, &n)) != 0) {
		wal_release(w);
		return rc;
	}
	/* what the consumers have not passed stays (the WAL is DIR/wal) */
	char datadir[PATH_MAX];
	snprintf(datadir, sizeof datadir, "%.*s", (int)(strlen(waldir) > 4 ? strlen(waldir) - 4 : 0), waldir);
	if (consumer_floor(datadir, v, n, ro, &floor) != 0) {
		if (ro->held)
			ro->held(ro->ctx, wal_errmsg());
		floor = 0; /* remove nothing */
	}
	if (floor < through)
		through = floor;
	for (size_t i = 0; rc == 0 && i + keep < n && i + 1 < n && v[i].last_lsn <= through; i++) {
		char name[32], path[PATH_MAX + 40];
		seg_name(name, v[i].first_lsn);
		if (!strcmp(name, active))
			break;
		snprintf(path, sizeof path, "%s/%s", waldir, name);
		if (*removed == 0 && (rc = wal_sync_held(w)) != 0) /* the CHECKPOINT first */
			break;
		if (unlink(path) != 0) {
			rc = wal_seterr(wal_errno_code(errno), "cannot remove '%s': %s", path, strerror(errno));
			break;
		}
		(*removed)++;
	}
	if (rc == 0 && *removed)
		rc = fs_fsync_dir(waldir);
	wal_release(w);
	free(v);
	return rc;
}

int wal_flush_checkpoint(wal_flush_t *f, wal_t *w, uint64_t through, uint64_t *lsn_out)
{
	int rc;

	/* the partitions are durable before the CHECKPOINT that names them */
	if ((rc = wal_flush_finish(f)) != 0)
		return rc;
	size_t n = wal_flush_npartitions(f);
	struct wal_str *parts = calloc(n ? n : 1, sizeof *parts);
	size_t cap = 64;
	for (size_t i = 0; i < n; i++)
		cap += strlen(wal_flush_partition(f, i)) + 16;
	unsigned char *buf = malloc(cap);
	if (!parts || !buf) {
		free(parts);
		free(buf);
		return wal_seterr(WAL_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		parts[i] = (struct wal_str){ wal_flush_partition(f, i), strlen(wal_flush_partition(f, i)) };
	struct wal_checkpoint c = { .lsn = through, .time_ns = wal_now_ns(), .npartitions = n, .partitions = parts };
	size_t len = wal_checkpoint_encode(buf, cap, &c);
	rc = len ? wal_append(w, WAL_T_CHECKPOINT, buf, len, lsn_out) : wal_seterr(WAL_ENOMEM, "checkpoint too large");
	free(parts);
	free(buf);
	return rc;
}

/* ------------------------------------------------- after the checkpoint */

struct wal_after {
	wal_scan_t *s;
	uint64_t ckpt;
	int points_only;
};

int wal_after_open(wal_after_t **out, const char *datadir, int64_t ckpt, int points_only,
                   const struct wal_scan_opts *so)
{
	const char *paths[1] = { datadir };
	wal_after_t *r = calloc(1, sizeof *r);
	int rc;

	*out = NULL;
	if (!r)
		return wal_seterr(WAL_ENOMEM, "out of memory");
	r->points_only = points_only;
	if (ckpt >= 0)
		r->ckpt = (uint64_t)ckpt;
	else if ((rc = wal_last_checkpoint(paths, 1, &r->ckpt)) != 0) {
		free(r);
		return rc;
	}
	if ((rc = wal_scan_open(&r->s, paths, 1, so)) != 0) {
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int wal_after_next(wal_after_t *r, struct wal_entry *e)
{
	int rc;

	while ((rc = wal_scan_next(r->s, e)) == 1)
		if (e->lsn > r->ckpt && (!r->points_only || (e->type & 0x7f) == WAL_T_POINTS))
			return 1;
	return rc;
}

uint64_t wal_after_checkpoint(const wal_after_t *r) { return r->ckpt; }
wal_scan_t *wal_after_scan(wal_after_t *r) { return r->s; }

void wal_after_close(wal_after_t *r)
{
	if (!r)
		return;
	wal_scan_close(r->s);
	free(r);
}

int wal_view_open(wal_view_t **out, const char *datadir) { return view_open(out, datadir, 0, NULL, 0); }
int wal_view_open_checked(wal_view_t **out, const char *datadir) { return view_open(out, datadir, 1, NULL, 0); }
int wal_view_open_named(wal_view_t **out, const char *datadir, wal_named_t *nm, uint64_t wal_id)
{
	return view_open(out, datadir, 1, nm, wal_id);
}

uint64_t wal_view_checkpoint(const wal_view_t *v) { return v->ckpt; }
size_t wal_view_npartitions(const wal_view_t *v) { return v->nparts; }
const struct wal_part_ref *wal_view_partition(const wal_view_t *v, size_t i)
{
	return i < v->nparts ? &v->parts[i] : NULL;
}
size_t wal_view_nbad(const wal_view_t *v) { return v->nbad; }
const struct wal_view_bad *wal_view_bad(const wal_view_t *v, size_t i) { return i < v->nbad ? &v->bad[i] : NULL; }
size_t wal_view_nproblems(const wal_view_t *v) { return v->nproblems; }
const char *wal_view_problem(const wal_view_t *v, size_t i) { return i < v->nproblems ? v->problems[i] : NULL; }

void wal_view_close(wal_view_t *v)
{
	if (!v)
		return;
	free(v->parts);
	free(v->bad);
	free(v->problems);
	free(v);
}

struct wal_held {
	struct held {
		uint64_t lsn;
		uint32_t len, crc;
		uint32_t db; /* POINTS: CRC of its database's directory name */
		unsigned char points;
	} * v;
	size_t n, cap;
	/* the POINTS payloads, while they fit in hold bytes */
	size_t hold;
	struct hp {
		uint64_t lsn;
		size_t off;
		uint32_t len;
	} * pe;
	size_t npe, cappe;
	unsigned char *data;
	size_t len, capdata;
	uint64_t last_points;
	int overflow;
};

int wal_held_new(wal_held_t **out, size_t hold)
{
	*out = calloc(1, sizeof **out);
	if (!*out)
		return wal_seterr(WAL_ENOMEM, "out of memory");
	(*out)->hold = hold;
	return 0;
}

/* Which database's directory a name under data/ (or a POINTS payload's
 * database) is in, as a CRC of the directory's name: a partition holds the
 * entries of its database alone, while its LSN range interleaves those of
 * the others in one flush. */
static uint32_t db_key(const char *dirname, size_t n) { return wal_crc32(0, dirname, n); }

static uint32_t payload_db(const unsigned char *p, size_t len)
{
	struct item it;
	size_t used, off = 0;
	char dir[WAL_DB_DIRNAME_MAX + 1];

	for (int k = 0; k < 3; k++) {
		if (wal_cbor_item(p + off, len - off, &it, &used) != 0)
			return 0;
		off += used;
	}
	if (it.type != IT_TEXT)
		return 0;
	size_t n = wal_db_dirname(dir, sizeof dir, (const char *)it.p, it.n);
	return n < sizeof dir ? db_key(dir, n) : 0;
}

int wal_held_add(wal_held_t *h, const struct wal_entry *e)
{
	if (wal_grow((void **)&h->v, &h->cap, h->n + 1, sizeof *h->v) != 0)
		return WAL_ENOMEM;
	int points = (e->type & 0x7f) == WAL_T_POINTS;
	h->v[h->n++] = (struct held){ e->lsn, e->len, points ? wal_crc32(0, e->payload, e->len) : 0,
		                      points ? payload_db(e->payload, e->len) : 0, (unsigned char)points };
	if (!points || !h->hold)
		return 0;
	h->last_points = e->lsn;
	if (h->overflow || h->len + e->len > h->hold) {
		h->overflow = 1;
		return 0;
	}
	if (wal_grow((void **)&h->pe, &h->cappe, h->npe + 1, sizeof *h->pe) != 0 ||
	    wal_grow((void **)&h->data, &h->capdata, h->len + e->len, 1) != 0)
		return WAL_ENOMEM;
	memcpy(h->data + h->len, e->payload, e->len);
	h->pe[h->npe++] = (struct hp){ e->lsn, h->len, e->len };
	h->len += e->len;
	return 0;
}

void wal_held_cut(wal_held_t *h, uint64_t ckpt)
{
	size_t k = 0;

	while (k < h->n && h->v[k].lsn <= ckpt)
		k++;
	if (k) {
		memmove(h->v, h->v + k, (h->n - k) * sizeof *h->v);
		h->n -= k;
	}
	for (k = 0; k < h->npe && h->pe[k].lsn <= ckpt;)
		k++;
	if (k) {
		size_t from = k < h->npe ? h->pe[k].off : h->len;
		memmove(h->data, h->data + from, h->len - from);
		h->len -= from;
		memmove(h->pe, h->pe + k, (h->npe - k) * sizeof *h->pe);
		h->npe -= k;
		for (size_t i = 0; i < h->npe; i++)
			h->pe[i].off -= from;
	}
	if (h->last_points <= ckpt)
		h->overflow = 0; /* nothing is missing from what is held */
}

int wal_held_complete(const wal_held_t *h) { return h->hold && !h->overflow; }
size_t wal_held_npayloads(const wal_held_t *h) { return h->npe; }
uint64_t wal_held_payload(const wal_held_t *h, size_t i, const unsigned char **p, size_t *len)
{
	*p = h->data + h->pe[i].off;
	*len = h->pe[i].len;
	return h->pe[i].lsn;
}
uint64_t wal_held_last(const wal_held_t *h) { return h->n ? h->v[h->n - 1].lsn : 0; }

void wal_held_free(wal_held_t *h)
{
	if (!h)
		return;
	free(h->v);
	free(h->pe);
	free(h->data);
	free(h);
}

/* Every entry the WAL holds after LSN ckpt, in LSN order. */
static int held_after(const char *datadir, uint64_t ckpt, wal_held_t *h)
{
	const char *paths[1] = { datadir };
	wal_scan_t *s;
	struct wal_entry e;
	int rc;

	if ((rc = wal_scan_open(&s, paths, 1, NULL)) != 0)
		return rc;
	while ((rc = wal_scan_next(s, &e)) == 1)
		if (e.lsn > ckpt && (rc = wal_held_add(h, &e)) != 0)
			break;
	wal_scan_close(s);
	return rc < 0 ? rc : 0;
}

/* 1 if every payload of the partition at path is, in order and byte for
 * byte (by CRC), one of the WAL's POINTS entries of its database in its LSN
 * range (that very LSN, where the partition records it), and the WAL holds
 * no other of that database there. */
static int redundant(const char *path, const struct wal_part_ref *ref, const struct held *h, size_t nh)
{
	wal_part_t *p;
	const unsigned char *pl;
	size_t len, j = 0;
	uint64_t at;
	int k;

	const char *slash = strchr(ref->rel, '/');
	uint32_t db = db_key(ref->rel, slash ? (size_t)(slash - ref->rel) : 0);
#define MINE(x) ((x).points && (x).db == db)
	if (wal_part_open(&p, path) != 0)
		return 0;
	while (j < nh && (h[j].lsn < ref->first_lsn || !MINE(h[j])))
		j++;
	while ((k = wal_part_next(p, &at, &pl, &len)) == 1) {
		if (j == nh || h[j].lsn > ref->last_lsn || (at && at != h[j].lsn) || h[j].len != len ||
		    h[j].crc != wal_crc32(0, pl, len))
			break;
		while (++j < nh && !MINE(h[j]))
			;
	}
#undef MINE
	wal_part_close(p);
	return k == 0 && (j == nh || h[j].lsn > ref->last_lsn);
}

/* Which partitions are not storage's: named by no CHECKPOINT though one
 * should be (wal_named_unnamed), and not, byte for byte, what the WAL
 * holds of their LSNs in their database (as one a CHECKPOINT lost to
 * damage named is).  out[i] is set for each. */
int wal_part_unnamed(const char *datadir, wal_named_t *nm, const struct wal_part_ref *parts, size_t n,
                     unsigned char *out)
{
	uint64_t from = UINT64_MAX;
	size_t cand = 0;
	int rc;

	for (size_t i = 0; i < n; i++)
		if ((out[i] = (unsigned char)wal_named_unnamed(nm, &parts[i])) != 0) {
			cand++;
			if (parts[i].first_lsn < from)
				from = parts[i].first_lsn;
		}
	if (!cand)
		return 0;
	wal_held_t h = { 0 };
	rc = held_after(datadir, from ? from - 1 : 0, &h);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char path[PATH_MAX + 320];
		snprintf(path, sizeof path, "%s/data/%s", datadir, parts[i].rel);
		if (out[i] && redundant(path, &parts[i], h.v, h.n))
			out[i] = 0;
	}
	free(h.v);
	free(h.pe);
	free(h.data);
	return rc;
}

/* 1 if the WAL holds an entry for every LSN of the partition's range:
 * whatever the partition should hold, a replay can store again. */
static int held_range(const struct wal_part_ref *ref, const struct held *h, size_t nh)
{
	size_t j = 0;
	uint64_t want = ref->first_lsn;

	while (j < nh && h[j].lsn < want)
		j++;
	for (; j < nh && h[j].lsn == want && want <= ref->last_lsn; j++)
		want++;
	return want > ref->last_lsn;
}

/* A partition is redundant only while the frames that hold its points are
 * durable, and after a kill they may still be in the page cache alone. */
int wal_sync_segments(const char *datadir)
{
	char waldir[PATH_MAX];
	DIR *d;
	struct dirent *de;
	int rc = 0;

	snprintf(waldir, sizeof waldir, "%s/wal", datadir);
	if (!(d = opendir(waldir)))
		return wal_seterr(wal_errno_code(errno), "cannot open directory '%s': %s", waldir, strerror(errno));
	while (rc == 0 && (de = readdir(d))) {
		uint64_t first;
		if (!seg_name_parse(de->d_name, &first))
			continue;
		char path[PATH_MAX + 300];
		int fd;
		snprintf(path, sizeof path, "%s/%s", waldir, de->d_name);
		if (fs_open_file(path, O_RDONLY, &fd) != 0 || fsync(fd) != 0)
			rc = wal_seterr(fd < 0 ? wal_errno_code(errno) : WAL_ESYNC, "cannot sync '%s/%s': %s", waldir,
			                de->d_name, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
	return rc;
}

int wal_segment_sync(const char *datadir, const char *name)
{
	char path[PATH_MAX + 80];
	uint64_t first;
	int fd;

	if (!seg_name_parse(name, &first))
		return wal_seterr(WAL_EINVAL, "'%s' is not a segment's name", name);
	snprintf(path, sizeof path, "%s/wal/%s", datadir, name);
	int rc = fs_open_file(path, O_RDONLY, &fd);
	if (rc)
		/* reclaimed: only once a synced checkpoint put it in storage */
		return rc == WAL_ENOENT ? 0 : rc;
	rc = fdatasync(fd) != 0 ? wal_seterr(WAL_ESYNC, "cannot sync '%s': %s", path, strerror(errno)) : 0;
	close(fd);
	return rc;
}

struct stored_rec {
	uint64_t lsn;
	size_t part, len;
	unsigned char *payload;
};

static int cmp_stored_rec(const void *a, const void *b)
{
	const struct stored_rec *x = a, *y = b;
	return x->lsn < y->lsn ? -1 : x->lsn > y->lsn;
}

int wal_parts_read(const char *datadir, const struct wal_part_ref *const *refs, size_t n, uint64_t from, uint64_t to,
                   wal_part_each_fn each, void *ctx)
{
	struct stored_rec *st = NULL;
	size_t ns = 0, cap = 0;
	int rc = 0;

	for (size_t r = 0; rc == 0 && r < n; r++) {
		char path[PATH_MAX + 700];
		const unsigned char *pl;
		size_t len;
		uint64_t lsn;
		wal_part_t *p;
		int k = 0;
		snprintf(path, sizeof path, "%s/data/%s", datadir, refs[r]->rel);
		if ((rc = wal_part_open(&p, path)) != 0)
			break;
		while (rc == 0 && (k = wal_part_next(p, &lsn, &pl, &len)) == 1) {
			if (!lsn)
				rc =
				    wal_seterr(WAL_EINVAL, "partition '%s' is of version 1, whose records carry no LSN",
				               refs[r]->rel);
			else if (lsn <= from || lsn > to)
				continue;
			else if (n == 1) /* one partition's records are in LSN order already */
				rc = each(ctx, refs[r], lsn, pl, len);
			else if (ns == cap && wal_grow((void **)&st, &cap, ns + 1, sizeof *st) != 0)
				rc = wal_seterr(WAL_ENOMEM, "out of memory");
			else if (!(st[ns].payload = malloc(len ? len : 1)))
				rc = wal_seterr(WAL_ENOMEM, "out of memory");
			else {
				memcpy(st[ns].payload, pl, len);
				st[ns].lsn = lsn;
				st[ns].part = r;
				st[ns++].len = len;
			}
		}
		if (rc == 0 && k < 0)
			rc = k;
		wal_part_close(p);
	}
	/* several: their ranges may overlap (one flush's, of several databases) */
	if (rc == 0 && ns)
		qsort(st, ns, sizeof *st, cmp_stored_rec);
	for (size_t i = 0; rc == 0 && i < ns; i++)
		rc = each(ctx, refs[st[i].part], st[i].lsn, st[i].payload, st[i].len);
	for (size_t i = 0; i < ns; i++)
		free(st[i].payload);
	free(st);
	return rc;
}

uint64_t wal_segment_count(const char *datadir)
{
	char waldir[PATH_MAX];
	DIR *d;
	struct dirent *de;
	uint64_t n = 0, first;

	snprintf(waldir, sizeof waldir, "%s/wal", datadir);
	if (!(d = opendir(waldir)))
		return 0;
	while ((de = readdir(d)))
		n += seg_name_parse(de->d_name, &first) != 0;
	closedir(d);
	return n;
}

int wal_part_orphans(const char *datadir, uint64_t ckpt, const wal_held_t *given, struct wal_orphan **out, size_t *nout)
{
	struct wal_part_ref *v;
	struct wal_orphan *o = NULL;
	wal_held_t read = { 0 };
	const wal_held_t *h = given ? given : &read;
	size_t n, no = 0;
	int rc = wal_part_list(datadir, &v, &n);

	*out = NULL;
	*nout = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		no += v[i].last_lsn > ckpt;
	if (rc == 0 && no) {
		if ((o = calloc(no, sizeof *o)) == NULL)
			rc = wal_seterr(WAL_ENOMEM, "out of memory");
		else if (!given)
			rc = held_after(datadir, ckpt, &read);
	}
	no = 0;
	for (size_t i = 0; rc == 0 && o && i < n; i++) {
		if (v[i].last_lsn <= ckpt)
			continue;
		char path[PATH_MAX + 320];
		snprintf(path, sizeof path, "%s/data/%s", datadir, v[i].rel);
		o[no].ref = v[i];
		o[no].redundant = redundant(path, &v[i], h->v, h->n);
		o[no++].held = held_range(&v[i], h->v, h->n);
	}
	free(read.v);
	free(v);
	if (rc) {
		free(o);
		return rc;
	}
	*out = o;
	*nout = no;
	return 0;
}

struct lsn_db {
	uint64_t lsn;
	uint32_t db;
};

static int cmp_lsn_db(const void *a, const void *b)
{
	const struct lsn_db *x = a, *y = b;
	return x->lsn != y->lsn ? (x->lsn < y->lsn ? -1 : 1) : (x->db > y->db) - (x->db < y->db);
}

int wal_part_adopt(const char *datadir, uint64_t wal_id, uint64_t ckpt, const wal_held_t *given,
                   struct wal_part_ref **out, size_t *nout, uint64_t *through)
{
	struct wal_part_ref *v;
	struct lsn_db *have = NULL;
	wal_held_t read = { 0 };
	const wal_held_t *h = given ? given : &read;
	size_t n, nh = 0, caph = 0, k = 0;
	int rc, ok = 1;

	*out = NULL;
	*nout = 0;
	*through = 0;
	if ((rc = wal_part_list(datadir, &v, &n)) != 0)
		return rc;
	if (!given && (rc = held_after(datadir, ckpt, &read)) != 0) {
		free(v);
		return rc;
	}
	/* every partition above the checkpoint: intact, this WAL's, named as
	 * it holds, not overlapping another of its database; and the LSNs it
	 * holds, by database */
	for (size_t i = 0; rc == 0 && ok && i < n; i++) {
		char path[PATH_MAX + 320];
		const unsigned char *pl;
		size_t len;
		uint64_t lsn;
		wal_part_t *p;
		int r;
		if (v[i].last_lsn <= ckpt)
			continue;
		snprintf(path, sizeof path, "%s/data/%s", datadir, v[i].rel);
		if ((r = wal_part_check(path, 0, wal_id)) != 0 || (r = wal_part_open(&p, path)) != 0) {
			if (r != WAL_ECORRUPT && r != WAL_ENOENT)
				rc = r;
			ok = 0;
			break;
		}
		const struct wal_part_info *in = wal_part_info(p);
		const char *slash = strchr(v[i].rel, '/');
		uint32_t db = db_key(v[i].rel, slash ? (size_t)(slash - v[i].rel) : 0);
		ok = in->wal_id == wal_id && in->first_lsn == v[i].first_lsn && in->last_lsn == v[i].last_lsn &&
		     v[i].first_lsn > ckpt;
		for (size_t j = 0; ok && j < k; j++) /* ranges of one database never overlap */
			ok = strncmp(v[j].rel, v[i].rel, slash ? (size_t)(slash - v[i].rel) + 1 : 0) != 0 ||
			     v[j].last_lsn < v[i].first_lsn || v[i].last_lsn < v[j].first_lsn;
		while (ok && (r = wal_part_next(p, &lsn, &pl, &len)) == 1) {
			if (!lsn || (nh == caph && wal_grow((void **)&have, &caph, nh + 1, sizeof *have) != 0)) {
				ok = 0;
				break;
			}
			have[nh++] = (struct lsn_db){ lsn, db };
		}
		ok &= r == 0;
		wal_part_close(p);
		if (ok) {
			v[k++] = v[i];
			if (v[i].last_lsn > *through)
				*through = v[i].last_lsn;
		}
	}
	/* and every POINTS entry the WAL holds up to them is in one of them */
	if (rc == 0 && ok && k) {
		qsort(have, nh, sizeof *have, cmp_lsn_db);
		for (size_t j = 0; ok && j < h->n && h->v[j].lsn <= *through; j++) {
			struct lsn_db key = { h->v[j].lsn, h->v[j].db };
			ok = h->v[j].lsn <= ckpt || !h->v[j].points ||
			     bsearch(&key, have, nh, sizeof *have, cmp_lsn_db) != NULL;
		}
	}
	free(have);
	free(read.v);
	free(read.pe);
	free(read.data);
	if (rc || !ok || !k) {
		free(v);
		*through = 0;
		return rc;
	}
	*out = v;
	*nout = k;
	return 0;
}

int wal_part_drop_orphans(const char *datadir, uint64_t ckpt, const wal_held_t *h, unsigned *removed, unsigned *kept,
                          unsigned *rebuildable)
{
	struct wal_orphan *o;
	size_t n;
	int synced = 0, rc = wal_part_orphans(datadir, ckpt, h, &o, &n);

	*removed = *kept = *rebuildable = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!o[i].redundant) {
			(*kept)++;
			*rebuildable += (unsigned)o[i].held;
			continue;
		}
		char dir[PATH_MAX + 400];
		const char *slash = strrchr(o[i].ref.rel, '/');
		snprintf(dir, sizeof dir, "%s/data/%.*s", datadir, (int)(slash - o[i].ref.rel), o[i].ref.rel);
		char path[PATH_MAX + 700];
		snprintf(path, sizeof path, "%s/%s", dir, slash + 1);
		if (!synced++ && (rc = wal_sync_segments(datadir)) != 0)
			break;
		if (unlink(path) != 0)
			rc = wal_seterr(wal_errno_code(errno), "cannot remove '%s': %s", path, strerror(errno));
		else if ((rc = fs_fsync_dir(dir)) == 0)
			(*removed)++;
	}
	free(o);
	return rc;
}
