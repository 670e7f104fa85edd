/*
 * scan.c - reading a whole WAL in LSN order and classifying damage.
 *
 * The scanner owns the question every reader asks: which entries are valid,
 * and is what is not valid a harmless torn tail or damage to acknowledged
 * data?  The rule:
 *
 *  - Damage in a segment that is not the newest is damage to durable data:
 *    a segment is sealed and synced before the next one is created.
 *  - Damage in the newest segment is a torn tail unless a later valid frame
 *    vouches for it, i.e. its durable mark covers the first LSN the damage
 *    took away.  Then it is damage to durable data too.
 *  - A valid frame out of LSN order (gap, duplicate, regression), a bad or
 *    mismatched segment header, a missing segment, a frame type this
 *    version cannot read, or a payload that does not decode is damage.
 *
 * After damage the scanner resynchronises on the next position whose frame
 * header CRC (seeded with the WAL id) validates, so every valid entry on
 * both sides is still returned; entries of a torn tail are not.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define CHUNK (256u << 10)

struct seg {
	char path[PATH_MAX];
	uint64_t name_lsn;
	int name_ok;
	struct seg_header h;
	const char *hdr_err; /* NULL: header fine */
	int hdr_version;
	struct wal_segment_info info;
	int fd; /* open since its header was read, or -1 */
};

/* Segments are opened when they are listed and read through that
 * descriptor, so that one removed meanwhile (reclaimed by a live writer once
 * a checkpoint covers it) can still be read; past this many, later ones are
 * opened when their turn comes. */
#define PINNED_MAX 512

struct wal_scan {
	struct wal_scan_opts o;
	char waldir[PATH_MAX];
	char datadir[PATH_MAX]; /* "" when the WAL is not in a data directory */
	struct seg *segs;
	size_t nsegs, cap;
	uint64_t wal_id;
	uint32_t seed;

	/* position */
	size_t cur;
	int state; /* 0: open segment cur, 1: frames, 2: done */
	int fd;
	uint64_t size, off;
	unsigned char *buf; /* file bytes [boff, boff + blen) */
	size_t bufcap, blen;
	uint64_t boff;
	uint64_t last_lsn;        /* last valid LSN seen (0: none yet) */
	uint64_t seg_first_valid; /* first LSN returned from the current segment */
	uint64_t max_checkpoint;
	uint64_t tail_end; /* newest segment: end of its last valid frame */
	int stopped_torn;
	/* segment files were given, no directory: each is judged alone, and
	 * LSNs outside them are not the scan's to miss */
	int alone;
	/* what a SEAL must describe: the run of frames it closes (the segment,
	 * or in a merged segment the part one former segment's frames fill),
	 * from its first LSN and offset, and the entries read since; dirty
	 * once damage was found in it (the counts are then not the writer's) */
	uint64_t run_first, run_off, run_entries;
	int run_dirty;
	/* the WAL id storage names, and another the evidence names too */
	uint64_t id_named, id_conflict_other;

	struct wal_finding *f;
	size_t nf, fcap;
	int cls;
	wal_dec_t *dec;

	/* where, inside a merged segment, each segment merged into it began */
	struct former {
		uint64_t first_lsn, off;
		size_t seg;
	} * formers;
	size_t nformers, capformers;
};

const char *wal_finding_kind_name(enum wal_fkind k)
{
	switch (k) {
	case WAL_F_CHECKSUM_MISMATCH: return "checksum-mismatch";
	case WAL_F_PAYLOAD_CHECKSUM: return "payload-checksum";
	case WAL_F_TRUNCATED: return "truncated";
	case WAL_F_BAD_LENGTH: return "bad-length";
	case WAL_F_ZERO_TAIL: return "zero-tail";
	case WAL_F_LSN_GAP: return "lsn-gap";
	case WAL_F_LSN_DUPLICATE: return "lsn-duplicate";
	case WAL_F_LSN_REGRESSION: return "lsn-regression";
	case WAL_F_MISSING_SEGMENT: return "missing-segment";
	case WAL_F_UNKNOWN_TYPE: return "unknown-type";
	case WAL_F_BAD_PAYLOAD: return "bad-payload";
	case WAL_F_KNOWN_LOSS: return "known-loss";
	case WAL_F_BAD_MAGIC: return "bad-magic";
	case WAL_F_BAD_VERSION: return "bad-version";
	case WAL_F_BAD_HEADER: return "bad-header";
	case WAL_F_FOREIGN_SEGMENT: return "foreign-segment";
	case WAL_F_NAME_MISMATCH: return "name-mismatch";
	case WAL_F_DATA_AFTER_SEAL: return "data-after-seal";
	case WAL_F_MERGE_LEFTOVER: return "merge-leftover";
	case WAL_F_CHECKPOINT_BEYOND: return "checkpoint-beyond";
	case WAL_F_BAD_CHECKPOINT: return "bad-checkpoint";
	case WAL_F_PARTITION_BEYOND: return "partition-beyond";
	case WAL_F_BAD_SEAL: return "bad-seal";
	}
	return "unknown";
}

static int add_finding(wal_scan_t *s, enum wal_class cls, enum wal_fkind kind, const struct seg *sg, uint64_t off,
                       uint64_t len, uint64_t lsn_first, uint64_t lsn_last, uint64_t vouched, const char *fmt, ...)
    WAL_PRINTF(10, 11);

static int add_finding(wal_scan_t *s, enum wal_class cls, enum wal_fkind kind, const struct seg *sg, uint64_t off,
                       uint64_t len, uint64_t lsn_first, uint64_t lsn_last, uint64_t vouched, const char *fmt, ...)
{
	struct wal_finding *f;
	va_list ap;

	if (wal_grow((void **)&s->f, &s->fcap, s->nf + 1, sizeof *s->f) != 0)
		return WAL_ENOMEM;
	f = &s->f[s->nf++];
	memset(f, 0, sizeof *f);
	f->cls = cls;
	f->kind = kind;
	if (sg)
		snprintf(f->segment, sizeof f->segment, "%s", sg->info.name);
	f->offset = off;
	f->length = len;
	f->lsn_first = lsn_first;
	f->lsn_last = lsn_last;
	f->vouched_by = vouched;
	if (cls == WAL_CLASS_DAMAGE && sg == &s->segs[s->cur])
		s->run_dirty = 1;
	va_start(ap, fmt);
	vsnprintf(f->message, sizeof f->message, fmt, ap);
	va_end(ap);
	s->cls |= cls;
	return 0;
}

static int add_seg(wal_scan_t *s, const char *path)
{
	struct seg *sg;
	const char *base = strrchr(path, '/');

	if (wal_grow((void **)&s->segs, &s->cap, s->nsegs + 1, sizeof *s->segs) != 0)
		return WAL_ENOMEM;
	sg = &s->segs[s->nsegs++];
	memset(sg, 0, sizeof *sg);
	sg->fd = -1;
	snprintf(sg->path, sizeof sg->path, "%s", path);
	snprintf(sg->info.name, sizeof sg->info.name, "%s", base ? base + 1 : path);
	sg->name_ok = seg_name_parse(sg->info.name, &sg->name_lsn);
	return 0;
}

static int cmp_seg(const void *a, const void *b)
{
	return strcmp(((const struct seg *)a)->info.name, ((const struct seg *)b)->info.name);
}

static int list_dir(wal_scan_t *s, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX + 256];
	uint64_t lsn;

	if (!d)
		return wal_seterr(wal_errno_code(errno), "cannot open '%s': %s", dir, strerror(errno));
	snprintf(s->waldir, sizeof s->waldir, "%s", dir);
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 4, ".wal") != 0)
			continue;
		/* stray files such as "x.wal" are reported as misnamed segments */
		(void)seg_name_parse(de->d_name, &lsn);
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (add_seg(s, path) != 0) {
			closedir(d);
			return WAL_ENOMEM;
		}
	}
	closedir(d);
	return 0;
}

static int read_headers(wal_scan_t *s, size_t first);

/* follow: add segments that appeared since the last listing. */
static int list_dir_new(wal_scan_t *s)
{
	DIR *d = opendir(s->waldir);
	struct dirent *de;
	char path[PATH_MAX + 256];
	uint64_t lsn;
	size_t before = s->nsegs;

	if (!d)
		return wal_seterr(wal_errno_code(errno), "cannot open '%s': %s", s->waldir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (!seg_name_parse(de->d_name, &lsn))
			continue;
		if (s->nsegs && strcmp(de->d_name, s->segs[before - 1].info.name) <= 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", s->waldir, de->d_name);
		if (add_seg(s, path) != 0) {
			closedir(d);
			return WAL_ENOMEM;
		}
	}
	closedir(d);
	if (s->nsegs == before)
		return 0;
	qsort(s->segs + before, s->nsegs - before, sizeof *s->segs, cmp_seg);
	return read_headers(s, before);
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Read the headers of the segments listed from FIRST on, keeping them open
 * (up to PINNED_MAX); at the first listing, the WAL id is the one most
 * segments carry.  A segment gone since it was listed was removed by a
 * writer or a repair, which remove only what is held elsewhere: it is left
 * out. */
static int read_headers(wal_scan_t *s, size_t first)
{
	uint64_t best = 0;
	size_t bestn = 0, pinned = 0;

	for (size_t i = 0; i < first; i++)
		pinned += s->segs[i].fd >= 0;
	for (size_t i = first; i < s->nsegs; i++) {
		struct seg *sg = &s->segs[i];
		unsigned char hb[WAL_SEG_HEADER_SIZE];
		size_t got = 0;
		int fd, orc = fs_open_file(sg->path, O_RDONLY, &fd);

		if (orc == WAL_ENOENT && s->waldir[0]) {
			memmove(sg, sg + 1, (s->nsegs - i - 1) * sizeof *sg);
			s->nsegs--;
			i--;
			continue;
		}
		if (orc)
			return orc;
		struct stat st;
		if (fstat(fd, &st) == 0)
			sg->info.bytes = (uint64_t)st.st_size;
		if (fs_read_all(fd, hb, sizeof hb, 0, &got) != 0) {
			int e = errno;
			close(fd);
			return wal_seterr(WAL_EIO, "cannot read segment '%s': %s", sg->path, strerror(e));
		}
		if (pinned < PINNED_MAX) {
			sg->fd = fd;
			pinned++;
		} else {
			close(fd);
		}
		sg->hdr_err = seg_header_decode(hb, got, &sg->h);
		sg->hdr_version = seg_header_version(hb, got);
		if (!sg->hdr_err) {
			sg->info.header_ok = 1;
			sg->info.seq = sg->h.seq;
			sg->info.first_lsn = sg->h.first_lsn;
			sg->info.prev_last_lsn = sg->h.prev_last_lsn;
			sg->info.wal_id = sg->h.wal_id;
			sg->info.created_ns = sg->h.created_ns;
		}
	}
	if (first > 0)
		return 0;
	/* Which WAL is this one, by evidence a copied file cannot outvote:
	 * first the WAL storage names (the one place the scanner asks storage
	 * anything); then a WAL whose segments chain from LSN 1, each header's
	 * previous last LSN the end of the segment before it; then most
	 * segments, then most bytes. */
	uint64_t named = 0, other = 0;
	if (s->datadir[0] && !s->alone && wal_storage_wal_id(s->datadir, &named, &other) == 0 && other)
		s->id_conflict_other = other;
	s->id_named = named;
	uint64_t bestbytes = 0;
	int bestrank = -1;
	for (size_t i = 0; i < s->nsegs; i++) {
		size_t n = 0;
		uint64_t bytes = 0, id = s->segs[i].h.wal_id, oldest = UINT64_MAX, oldest_prev = 0;
		if (!s->segs[i].info.header_ok)
			continue;
		for (size_t j = 0; j < s->nsegs; j++)
			if (s->segs[j].info.header_ok && s->segs[j].h.wal_id == id) {
				n++;
				bytes += s->segs[j].info.bytes;
				if (s->segs[j].h.first_lsn < oldest) {
					oldest = s->segs[j].h.first_lsn;
					oldest_prev = s->segs[j].h.prev_last_lsn;
				}
			}
		int rank = id == named ? 2 : oldest_prev == 0 && oldest == 1 ? 1 : 0;
		if (rank > bestrank || (rank == bestrank && (n > bestn || (n == bestn && bytes > bestbytes)))) {
			bestrank = rank;
			bestn = n;
			bestbytes = bytes;
			best = id;
		}
	}
	if (named && best != named && s->nsegs)
		s->id_conflict_other = best; /* storage's WAL has no segment here */
	s->wal_id = best;
	s->seed = wal_seed(best);
	return 0;
}

/* Where a segment stands in LSN order. */
static uint64_t seg_key(const wal_scan_t *s, const struct seg *sg)
{
	if (sg->info.header_ok && sg->h.wal_id == s->wal_id)
		return sg->h.first_lsn;
	return sg->name_ok ? sg->name_lsn : UINT64_MAX;
}

int wal_scan_open(wal_scan_t **out, const char *const *paths, size_t npaths, const struct wal_scan_opts *opts)
{
	wal_scan_t *s = calloc(1, sizeof *s);
	char sub[PATH_MAX];
	int rc;

	*out = NULL;
	if (!s)
		return wal_seterr(WAL_ENOMEM, "out of memory");
	if (opts)
		s->o = *opts;
	if (!s->o.max_entry_size)
		s->o.max_entry_size = WAL_DEFAULT_MAX_ENTRY;
	s->fd = -1;
	s->alone = npaths > 0;
	for (size_t i = 0; i < npaths; i++) {
		const char *p = paths[i];
		if (is_dir(p)) {
			s->alone = 0;
			snprintf(sub, sizeof sub, "%s/wal", p);
			rc = list_dir(s, is_dir(sub) ? sub : p);
		} else if (access(p, F_OK) == 0) {
			const char *slash = strrchr(p, '/');
			if (slash)
				snprintf(s->waldir, sizeof s->waldir, "%.*s", (int)(slash - p), p);
			else
				snprintf(s->waldir, sizeof s->waldir, ".");
			rc = add_seg(s, p);
		} else {
			rc = wal_seterr(WAL_ENOENT, "'%s': no such file or directory", p);
		}
		if (rc) {
			wal_scan_close(s);
			return rc;
		}
	}
	if (s->nsegs)
		qsort(s->segs, s->nsegs, sizeof *s->segs, cmp_seg);
	size_t wl = strlen(s->waldir);
	if (wl >= 4 && strcmp(s->waldir + wl - 4, "/wal") == 0)
		snprintf(s->datadir, sizeof s->datadir, "%.*s", (int)(wl - 4), s->waldir);
	else if (strcmp(s->waldir, "wal") == 0)
		snprintf(s->datadir, sizeof s->datadir, ".");
	if ((rc = read_headers(s, 0)) != 0) {
		wal_scan_close(s);
		return rc;
	}
	/* In LSN order, as the headers of this WAL's segments say; a name counts
	 * only where the header cannot be read (names can be swapped). */
	for (size_t i = 1; i < s->nsegs; i++)
		for (size_t j = i; j > 0 && seg_key(s, &s->segs[j]) < seg_key(s, &s->segs[j - 1]); j--) {
			struct seg t = s->segs[j];
			s->segs[j] = s->segs[j - 1];
			s->segs[j - 1] = t;
		}
	s->state = s->nsegs ? 0 : 2;
	*out = s;
	return 0;
}

void wal_scan_close(wal_scan_t *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	for (size_t i = 0; i < s->nsegs; i++)
		if (s->segs[i].fd >= 0)
			close(s->segs[i].fd);
	free(s->segs);
	free(s->buf);
	free(s->f);
	free(s->formers);
	wal_dec_free(s->dec);
	free(s);
}

size_t wal_scan_nfindings(const wal_scan_t *s) { return s->nf; }
const struct wal_finding *wal_scan_finding(const wal_scan_t *s, size_t i) { return i < s->nf ? &s->f[i] : NULL; }
size_t wal_scan_nsegments(const wal_scan_t *s) { return s->nsegs; }
const struct wal_segment_info *wal_scan_segment(const wal_scan_t *s, size_t i)
{
	return i < s->nsegs ? &s->segs[i].info : NULL;
}
uint64_t wal_scan_id(const wal_scan_t *s) { return s->wal_id; }
uint64_t wal_scan_last_lsn(const wal_scan_t *s) { return s->last_lsn; }
uint64_t wal_scan_id_conflict(const wal_scan_t *s, uint64_t *named)
{
	*named = s->id_named;
	return s->id_conflict_other;
}
const char *wal_scan_waldir(const wal_scan_t *s) { return s->waldir; }
const char *wal_scan_datadir(const wal_scan_t *s) { return s->datadir; }
int wal_scan_deep(const wal_scan_t *s) { return s->o.check_payloads > 1; }

int wal_scan_add_finding(wal_scan_t *s, enum wal_class cls, enum wal_fkind kind, uint64_t offset, uint64_t length,
                         uint64_t lsn_first, uint64_t lsn_last, const char *fmt, ...)
{
	char msg[sizeof s->f->message];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return add_finding(s, cls, kind, &s->segs[s->cur], offset, length, lsn_first, lsn_last, 0, "%s", msg);
}
int wal_scan_class(const wal_scan_t *s) { return s->cls; }
uint64_t wal_scan_checkpoint(const wal_scan_t *s) { return s->max_checkpoint; }

/* Make file bytes [off, off + n) available at s->buf + (off - s->boff).
 * What the buffer already holds from off on is moved to its start, not
 * read again, and a read for a frame larger than a chunk goes a chunk
 * further, so the next frame's header comes with it: every byte of a
 * segment is read once. */
static int need(wal_scan_t *s, uint64_t off, size_t n)
{
	size_t want, keep = 0, got = 0;

	if (off >= s->boff && off + n <= s->boff + s->blen)
		return 0;
	want = n > CHUNK ? n + CHUNK : CHUNK;
	if (want > s->bufcap) {
		void *p = realloc(s->buf, want);
		if (!p)
			return wal_seterr(WAL_ENOMEM, "out of memory reading '%s'", s->segs[s->cur].path);
		s->buf = p;
		s->bufcap = want;
	}
	if (off + want > s->size)
		want = (size_t)(s->size - off);
	if (off >= s->boff && off < s->boff + s->blen) {
		keep = (size_t)(s->boff + s->blen - off);
		memmove(s->buf, s->buf + (off - s->boff), keep);
	}
	if (want > keep && fs_read_all(s->fd, s->buf + keep, want - keep, off + keep, &got) != 0)
		return wal_seterr(WAL_EIO, "segment '%s' offset %llu: read failed: %s", s->segs[s->cur].info.name,
		                  (unsigned long long)(off + keep), strerror(errno));
	s->boff = off;
	s->blen = keep + got;
	if (s->blen < n)
		return wal_seterr(WAL_EIO, "segment '%s' offset %llu: file shrank while reading",
		                  s->segs[s->cur].info.name, (unsigned long long)off);
	return 0;
}

static int is_newest(const wal_scan_t *s) { return s->cur + 1 == s->nsegs; }
static int list_dir_new(wal_scan_t *s);

/* Is there a plausible, header-valid frame at off? */
static int frame_at(wal_scan_t *s, uint64_t off, struct frame_header *fh)
{
	if (off + WAL_FRAME_HEADER_SIZE > s->size)
		return 0;
	if (need(s, off, WAL_FRAME_HEADER_SIZE) != 0)
		return -1;
	const unsigned char *p = s->buf + (off - s->boff);
	uint32_t len = get32(p);
	uint64_t lsn = get64(p + 8);
	if (len > s->o.max_entry_size || off + WAL_FRAME_HEADER_SIZE + len > s->size)
		return 0;
	if (lsn == 0 || lsn <= s->last_lsn)
		return 0;
	return frame_header_decode(p, s->seed, fh);
}

/* Resync: the first header-valid frame at or after off, and the highest
 * durable mark among all valid frames from there to the end of the segment. */
static int resync(wal_scan_t *s, uint64_t off, uint64_t *found, uint64_t *max_mark, uint64_t *mark_lsn)
{
	struct frame_header fh;
	int first = 1;

	*found = UINT64_MAX;
	*max_mark = 0;
	*mark_lsn = 0;
	while (off + WAL_FRAME_HEADER_SIZE <= s->size) {
		int r = frame_at(s, off, &fh);
		if (r < 0)
			return r;
		if (r == 0) {
			off++;
			continue;
		}
		if (first) {
			*found = off;
			first = 0;
		}
		if (fh.watermark > *max_mark) {
			*max_mark = fh.watermark;
			*mark_lsn = fh.lsn;
		}
		off += WAL_FRAME_HEADER_SIZE + fh.len;
	}
	return 0;
}

static int all_zero(wal_scan_t *s, uint64_t off)
{
	while (off < s->size) {
		size_t n = s->size - off > CHUNK ? CHUNK : (size_t)(s->size - off);
		if (need(s, off, n) != 0)
			return 0;
		const unsigned char *p = s->buf + (off - s->boff);
		for (size_t i = 0; i < n; i++)
			if (p[i])
				return 0;
		off += n;
	}
	return 1;
}

/* First LSN of the next segment that has a good header, or 0. */
static uint64_t next_first_lsn(const wal_scan_t *s)
{
	for (size_t i = s->cur + 1; i < s->nsegs; i++)
		if (s->segs[i].info.header_ok && s->segs[i].h.wal_id == s->wal_id)
			return s->segs[i].h.first_lsn;
	return 0;
}

/* Damage found at off in the current segment.  Classify it, record it and
 * move to where reading can go on.  why/kind describe what was seen;
 * known_lsn is the LSN of the damaged frame when its header was valid. */
static int damage(wal_scan_t *s, uint64_t off, uint64_t skip_to, enum wal_fkind kind, const char *why,
                  uint64_t known_lsn, int always)
{
	struct seg *sg = &s->segs[s->cur];
	uint64_t found, mark, mark_lsn, expect = s->last_lsn + 1;
	int rc;

	if (s->o.follow && is_newest(s) && !always) {
		/* A live writer may be half-way through this frame. */
		s->state = 3;
		return 0;
	}
	if (s->last_lsn == 0 && sg->info.header_ok)
		expect = sg->h.first_lsn;
	if ((rc = resync(s, skip_to, &found, &mark, &mark_lsn)) != 0)
		return rc;
	if (is_newest(s) && mark < expect && !always) {
		uint64_t len = s->size - off;
		int zeros = kind != WAL_F_TRUNCATED && all_zero(s, off);
		rc = add_finding(s, WAL_CLASS_TORN, zeros ? WAL_F_ZERO_TAIL : kind, sg, off, len, expect, 0, 0,
		                 "torn tail: %s; the last %llu bytes were never acknowledged",
		                 zeros ? "zero-filled tail" : why, (unsigned long long)len);
		s->tail_end = off;
		s->stopped_torn = 1;
		s->off = s->size;
		return rc;
	}
	/* Damage to durable data: say which LSNs are gone, if we can. */
	uint64_t last = 0;
	if (found != UINT64_MAX) {
		struct frame_header fh;
		if (frame_at(s, found, &fh) == 1 && fh.lsn > expect)
			last = fh.lsn - 1;
	} else {
		uint64_t nx = next_first_lsn(s);
		if (nx > expect)
			last = nx - 1;
	}
	if (known_lsn && last < known_lsn)
		last = known_lsn;
	uint64_t end = found == UINT64_MAX ? s->size : found;
	if (always)
		rc = add_finding(s, WAL_CLASS_DAMAGE, kind, sg, off, end - off, last ? expect : 0, last, 0, "%s", why);
	else if (is_newest(s))
		rc = add_finding(s, WAL_CLASS_DAMAGE, kind, sg, off, end - off, last ? expect : 0, last, mark_lsn,
		                 "%s; damage to acknowledged data: LSN %llu, written later, vouches for LSN %llu", why,
		                 (unsigned long long)mark_lsn, (unsigned long long)expect);
	else
		rc = add_finding(s, WAL_CLASS_DAMAGE, kind, sg, off, end - off, last ? expect : 0, last, 0,
		                 "%s in sealed segment; damage to durable data", why);
	if (last)
		s->last_lsn = last; /* the loss is reported: do not report it again as a gap */
	s->off = end;
	return rc;
}

static int check_payload(wal_scan_t *s, const struct frame_header *fh, const unsigned char *p)
{
	struct wal_str db;
	struct wal_point pt;
	int rc;

	switch (fh->type) {
	case WAL_T_SEAL: {
		struct wal_seal se;
		if (wal_seal_decode(p, fh->len, &se) != 0)
			return WAL_EPARSE;
		return 0;
	}
	case WAL_T_CHECKPOINT: {
		struct wal_checkpoint c;
		struct wal_str names[256];
		if (wal_checkpoint_decode(p, fh->len, &c, names, 256) != 0)
			return WAL_EPARSE;
		if (c.lsn >= fh->lsn) {
			/* it would let storage, compact and replays skip LSNs no storage holds */
			add_finding(s, WAL_CLASS_DAMAGE, WAL_F_CHECKPOINT_BEYOND, &s->segs[s->cur],
			            s->off - WAL_FRAME_HEADER_SIZE - fh->len, WAL_FRAME_HEADER_SIZE + fh->len, fh->lsn,
			            fh->lsn, 0,
			            "checkpoint LSN %llu says storage holds everything through LSN %llu, which is not "
			            "before it; it is not trusted",
			            (unsigned long long)fh->lsn, (unsigned long long)c.lsn);
			return 0;
		}
		if (c.lsn > s->max_checkpoint)
			s->max_checkpoint = c.lsn;
		/* what it names is storage's: its owner checks it */
		if (s->o.checkpoint) {
			struct wal_entry e = { .lsn = fh->lsn,
				               .type = fh->type,
				               .payload = p,
				               .len = fh->len,
				               .segment = s->segs[s->cur].info.name,
				               .offset = s->off - WAL_FRAME_HEADER_SIZE - fh->len };
			c.partitions = names;
			return s->o.checkpoint(s->o.ctx, s, &e, &c);
		}
		return 0;
	}
	case WAL_T_POINTS:
		if (!s->o.check_payloads)
			return 0;
		if (!s->dec && wal_dec_new(&s->dec) != 0)
			return WAL_ENOMEM;
		if ((rc = wal_dec_begin(s->dec, p, fh->len, &db)) != 0)
			return rc;
		if (s->o.check_payloads < 2 && !(s->o.decode_unstored && fh->lsn > s->max_checkpoint))
			return 0;
		while ((rc = wal_dec_next(s->dec, &pt)) == 1)
			;
		return rc;
	default: return 0;
	}
}

static const struct former *merged_into(wal_scan_t *s, uint64_t first_lsn);

/* A SEAL closes the run of frames before it: it must say how many entries
 * it holds, its first and last LSN (the last is the one before the SEAL's
 * own) and where the SEAL stands (its bytes), as the writer wrote them.  One
 * that does not is damage, and the segment is not taken as sealed: a frame
 * after it is read as any other.  1 if it is a true seal. */
static int seal_ok(wal_scan_t *s, const struct frame_header *fh, const unsigned char *p, uint64_t frame_off)
{
	struct wal_seal se;

	if (wal_seal_decode(p, fh->len, &se) != 0)
		return 0; /* reported as a bad payload */
	if (s->run_dirty || !s->run_first)
		return 1; /* damage before it is reported already; the counts cannot be held against it */
	uint64_t bytes = WAL_SEG_HEADER_SIZE + (frame_off - s->run_off);
	if (se.entries == s->run_entries && se.first_lsn == s->run_first && se.last_lsn + 1 == fh->lsn &&
	    se.bytes == bytes)
		return 1;
	add_finding(s, WAL_CLASS_DAMAGE, WAL_F_BAD_SEAL, &s->segs[s->cur], frame_off, WAL_FRAME_HEADER_SIZE + fh->len,
	            fh->lsn, fh->lsn, 0,
	            "seal of LSN %llu says %llu entries, LSN %llu-%llu, %llu bytes; the frames it closes are %llu "
	            "entries, LSN %llu-%llu, %llu bytes",
	            (unsigned long long)fh->lsn, (unsigned long long)se.entries, (unsigned long long)se.first_lsn,
	            (unsigned long long)se.last_lsn, (unsigned long long)se.bytes, (unsigned long long)s->run_entries,
	            (unsigned long long)s->run_first, (unsigned long long)(fh->lsn - 1), (unsigned long long)bytes);
	return 0;
}

static int open_segment(wal_scan_t *s)
{
	struct seg *sg = &s->segs[s->cur];
	struct stat st;
	uint64_t expect = s->last_lsn + 1;

	if (s->fd >= 0)
		close(s->fd);
	if (sg->fd >= 0) {
		s->fd = sg->fd;
		sg->fd = -1;
	} else {
		int rc = fs_open_file(sg->path, O_RDONLY, &s->fd);
		if (rc)
			return rc;
	}
	if (fstat(s->fd, &st) != 0)
		return wal_seterr(wal_errno_code(errno), "cannot open segment '%s': %s", sg->path, strerror(errno));
	s->size = (uint64_t)st.st_size;
	sg->info.bytes = s->size;
	s->blen = 0;
	s->boff = 0;
	s->off = WAL_SEG_HEADER_SIZE;
	s->seg_first_valid = 0;
	s->state = 1;
	s->run_first = sg->hdr_err ? 0 : sg->h.first_lsn;
	s->run_off = WAL_SEG_HEADER_SIZE;
	s->run_entries = 0;
	s->run_dirty = 0;

	if (sg->hdr_err) {
		int hopeless = sg->hdr_version != WAL_FORMAT_VERSION || s->size < WAL_SEG_HEADER_SIZE ||
		               strncmp(sg->hdr_err, "bad magic", 9) == 0;
		enum wal_fkind kind = strncmp(sg->hdr_err, "bad magic", 9) == 0      ? WAL_F_BAD_MAGIC
		                      : strncmp(sg->hdr_err, "unsupported", 11) == 0 ? WAL_F_BAD_VERSION
		                                                                     : WAL_F_BAD_HEADER;
		uint64_t nx = next_first_lsn(s);
		uint64_t last = nx > expect ? nx - 1 : 0;
		add_finding(s, WAL_CLASS_DAMAGE, kind, sg, 0, WAL_SEG_HEADER_SIZE, hopeless && last ? expect : 0,
		            hopeless ? last : 0, 0, "%s%s", sg->hdr_err,
		            hopeless ? "; the segment cannot be read" : "; reading its frames anyway");
		if (hopeless) {
			if (last)
				s->last_lsn = last;
			s->off = s->size;
		}
		return 0;
	}
	if (sg->h.wal_id != s->wal_id) {
		struct frame_header fh;
		uint64_t keep = s->last_lsn;
		s->last_lsn = 0;
		int ours = frame_at(s, WAL_SEG_HEADER_SIZE, &fh) == 1;
		s->last_lsn = keep;
		if (ours) {
			/* The frames validate with this WAL's id: only the id in the
			 * header is wrong. */
			add_finding(s, WAL_CLASS_DAMAGE, WAL_F_BAD_HEADER, sg, 16, 8, 0, 0, 0,
			            "segment header names WAL id %016llx but its frames belong to this WAL (%016llx); "
			            "reading its frames",
			            (unsigned long long)sg->h.wal_id, (unsigned long long)s->wal_id);
			return 0;
		}
		uint64_t nx = next_first_lsn(s);
		add_finding(s, WAL_CLASS_DAMAGE, WAL_F_FOREIGN_SEGMENT, sg, 0, s->size, 0, 0, 0,
		            "segment belongs to another WAL (id %016llx, this WAL is %016llx)",
		            (unsigned long long)sg->h.wal_id, (unsigned long long)s->wal_id);
		if (nx > expect)
			s->last_lsn = nx - 1;
		s->off = s->size;
		return 0;
	}
	if (!sg->name_ok || sg->name_lsn != sg->h.first_lsn) {
		char want[32];
		seg_name(want, sg->h.first_lsn);
		add_finding(s, WAL_CLASS_DAMAGE, WAL_F_NAME_MISMATCH, sg, 0, WAL_SEG_HEADER_SIZE, 0, 0, 0,
		            "header says first LSN %llu, so the segment should be named '%s'",
		            (unsigned long long)sg->h.first_lsn, want);
	}
	if (s->cur > 0 && s->last_lsn) {
		if (sg->h.first_lsn > expect && sg->h.prev_last_lsn >= expect && s->o.follow && s->o.gone) {
			int got = s->o.gone(s->o.gone_ctx, expect, sg->h.first_lsn - 1);
			if (got < 0)
				return got;
			if (got == 1) {
				s->last_lsn = sg->h.first_lsn - 1;
				return 0;
			}
		}
		if (sg->h.first_lsn > expect && s->alone && sg->h.prev_last_lsn == sg->h.first_lsn - 1) {
			/* the segments between were not given: theirs to judge */
			add_finding(s, WAL_CLASS_NOTICE, WAL_F_MISSING_SEGMENT, sg, 0, 0, expect, sg->h.first_lsn - 1, 0,
			            "LSN %llu-%llu are not in the segments given (the segments before this one were "
			            "not given)",
			            (unsigned long long)expect, (unsigned long long)(sg->h.first_lsn - 1));
			s->last_lsn = sg->h.first_lsn - 1;
		} else if (sg->h.first_lsn > expect) {
			const char *what =
			    sg->h.prev_last_lsn >= expect ? "missing segment" : "LSN gap between segments";
			add_finding(
			    s, WAL_CLASS_DAMAGE, sg->h.prev_last_lsn >= expect ? WAL_F_MISSING_SEGMENT : WAL_F_LSN_GAP,
			    sg, 0, 0, expect, sg->h.first_lsn - 1, 0,
			    "%s: LSN %llu-%llu not found before this segment (previous segment ends at LSN %llu)", what,
			    (unsigned long long)expect, (unsigned long long)(sg->h.first_lsn - 1),
			    (unsigned long long)s->last_lsn);
			s->last_lsn = sg->h.first_lsn - 1;
		} else if (sg->h.first_lsn < expect) {
			const struct former *m = merged_into(s, sg->h.first_lsn);
			if (m) {
				/* A merge was interrupted between writing the merged
				 * segment and removing the ones merged into it: this one is
				 * redundant, and skipped. */
				sg->info.sealed = 1;
				s->off = s->size;
				return add_finding(s, WAL_CLASS_NOTICE, WAL_F_MERGE_LEFTOVER, sg, 0, s->size, 0, 0, 0,
				                   "left by an interrupted merge: every frame of it is in segment '%s' "
				                   "from offset %llu; 'walctl compact --apply' removes it",
				                   s->segs[m->seg].info.name, (unsigned long long)m->off);
			}
			add_finding(s, WAL_CLASS_DAMAGE, WAL_F_LSN_REGRESSION, sg, 0, 0, sg->h.first_lsn, s->last_lsn,
			            0, "segment starts at LSN %llu but LSN %llu was already read",
			            (unsigned long long)sg->h.first_lsn, (unsigned long long)s->last_lsn);
		}
	}
	return 0;
}

/* The place in a merged segment where the current segment's frames stand
 * byte for byte, if they do: then it is a leftover of that merge. */
static const struct former *merged_into(wal_scan_t *s, uint64_t first_lsn)
{
	const struct former *m = NULL;
	unsigned char a[65536], b[65536];
	int fd;

	for (size_t i = 0; i < s->nformers && !m; i++)
		if (s->formers[i].first_lsn == first_lsn)
			m = &s->formers[i];
	if (!m || s->size <= WAL_SEG_HEADER_SIZE || fs_open_file(s->segs[m->seg].path, O_RDONLY, &fd) != 0)
		return NULL;
	uint64_t n = s->size - WAL_SEG_HEADER_SIZE, done = 0;
	size_t ga = 0, gb = 0;
	while (done < n) {
		size_t k = n - done > sizeof a ? sizeof a : (size_t)(n - done);
		if (fs_read_all(s->fd, a, k, WAL_SEG_HEADER_SIZE + done, &ga) != 0 ||
		    fs_read_all(fd, b, k, m->off + done, &gb) != 0 || ga != k || gb != k || memcmp(a, b, k) != 0)
			break;
		done += k;
	}
	close(fd);
	return done == n ? m : NULL;
}

static void segment_done(wal_scan_t *s)
{
	if (is_newest(s) && !s->stopped_torn)
		s->tail_end = s->off;
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	s->cur++;
	s->state = s->cur < s->nsegs ? 0 : s->o.follow ? 3 : 2;
}

/* Checks that need the whole WAL: what came before the first segment must
 * be covered by a checkpoint.  (A first segment with a bad header has been
 * reported already.)  Segments given alone are not the whole WAL: that
 * their predecessors are absent is a notice. */
static void finish(wal_scan_t *s)
{
	struct seg *sg = s->nsegs ? &s->segs[0] : NULL;

	if (sg && s->alone && sg->info.header_ok && sg->h.wal_id == s->wal_id && sg->h.prev_last_lsn > 0)
		add_finding(s, WAL_CLASS_NOTICE, WAL_F_MISSING_SEGMENT, sg, 0, 0, 1, sg->h.prev_last_lsn, 0,
		            "LSN 1-%llu are not in the segments given (judged alone; 'walctl verify -d DIR' judges "
		            "the WAL's start)",
		            (unsigned long long)sg->h.prev_last_lsn);
	else if (sg && sg->info.header_ok && sg->h.wal_id == s->wal_id && sg->h.prev_last_lsn > s->max_checkpoint)
		add_finding(
		    s, WAL_CLASS_DAMAGE, WAL_F_MISSING_SEGMENT, sg, 0, 0, 1, sg->h.prev_last_lsn, 0,
		    "missing segment: LSN 1-%llu not found before the first segment and no checkpoint covers it",
		    (unsigned long long)sg->h.prev_last_lsn);
	s->state = 4;
}

int wal_scan_next(wal_scan_t *s, struct wal_entry *e)
{
	struct frame_header fh;
	int rc;

	for (;;) {
		if (s->state == 4)
			return 0;
		if (s->state == 2) {
			finish(s);
			return 0;
		}
		if (s->state == 3 && s->cur >= s->nsegs) {
			/* follow, every listed segment read (the last one sealed): the
			 * writer's next segment may not be there yet */
			if (s->waldir[0] && list_dir_new(s) != 0)
				return WAL_EIO;
			if (s->cur >= s->nsegs)
				return 0;
			s->state = 0;
		} else if (s->state == 3) {
			/* follow: look again at the newest segment and for new ones */
			struct stat st;
			size_t before = s->nsegs;
			if (fstat(s->fd, &st) == 0)
				s->size = (uint64_t)st.st_size;
			s->blen = 0;
			if (s->waldir[0] && list_dir_new(s) != 0)
				return WAL_EIO;
			s->state = 1;
			if (s->nsegs == before && s->off >= s->size)
				return 0;
		}
		if (s->state == 0) {
			if ((rc = open_segment(s)) != 0)
				return rc;
		}
		struct seg *sg = &s->segs[s->cur];
		if (s->off >= s->size) {
			if (s->o.follow && is_newest(s) && !sg->info.sealed) {
				s->state = 3;
				return 0;
			}
			segment_done(s);
			continue;
		}
		if (sg->info.sealed) {
			/* A merged segment holds the seals of the segments it was made of:
			 * frames continuing the LSN sequence are fine. */
			struct frame_header nf;
			if (frame_at(s, s->off, &nf) == 1 && nf.lsn == s->last_lsn + 1) {
				sg->info.sealed = 0;
				if (wal_grow((void **)&s->formers, &s->capformers, s->nformers + 1, sizeof *s->formers))
					return WAL_ENOMEM;
				s->formers[s->nformers++] = (struct former){ nf.lsn, s->off, s->cur };
				s->run_first = nf.lsn;
				s->run_off = s->off;
				s->run_entries = 0;
			}
		}
		if (sg->info.sealed) {
			rc = add_finding(s, WAL_CLASS_DAMAGE, WAL_F_DATA_AFTER_SEAL, sg, s->off, s->size - s->off, 0, 0,
			                 0, "%llu bytes after the seal frame", (unsigned long long)(s->size - s->off));
			if (rc)
				return rc;
			s->off = s->size;
			continue;
		}
		if (s->size - s->off < WAL_FRAME_HEADER_SIZE) {
			if ((rc = damage(s, s->off, s->off + 1, WAL_F_TRUNCATED, "truncated frame header", 0, 0)) != 0)
				return rc;
			if (s->state == 3)
				return 0;
			continue;
		}
		if ((rc = need(s, s->off, WAL_FRAME_HEADER_SIZE)) != 0)
			return rc;
		if (!frame_header_decode(s->buf + (s->off - s->boff), s->seed, &fh)) {
			if ((rc = damage(s, s->off, s->off + 1, WAL_F_CHECKSUM_MISMATCH,
			                 "frame header checksum mismatch", 0, 0)) != 0)
				return rc;
			if (s->state == 3)
				return 0;
			continue;
		}
		if (fh.len > s->o.max_entry_size) {
			char why[128];
			snprintf(why, sizeof why, "frame length %u exceeds the maximum entry size %u", fh.len,
			         s->o.max_entry_size);
			if ((rc = damage(s, s->off, s->off + 1, WAL_F_BAD_LENGTH, why, fh.lsn, 1)) != 0)
				return rc;
			continue;
		}
		if (s->off + WAL_FRAME_HEADER_SIZE + fh.len > s->size) {
			char why[160];
			snprintf(why, sizeof why, "truncated frame: LSN %llu needs %u payload bytes, %llu left",
			         (unsigned long long)fh.lsn, fh.len,
			         (unsigned long long)(s->size - s->off - WAL_FRAME_HEADER_SIZE));
			if ((rc = damage(s, s->off, s->off + 1, WAL_F_TRUNCATED, why, fh.lsn, 0)) != 0)
				return rc;
			if (s->state == 3)
				return 0;
			continue;
		}
		uint64_t frame_off = s->off;
		uint64_t next = s->off + WAL_FRAME_HEADER_SIZE + fh.len;
		if ((rc = need(s, s->off, WAL_FRAME_HEADER_SIZE + fh.len)) != 0)
			return rc;
		const unsigned char *payload = s->buf + (s->off - s->boff) + WAL_FRAME_HEADER_SIZE;
		if (wal_crc32(s->seed, payload, fh.len) != fh.payload_crc) {
			char why[128];
			snprintf(why, sizeof why, "payload checksum mismatch in LSN %llu", (unsigned long long)fh.lsn);
			if ((rc = damage(s, s->off, next, WAL_F_PAYLOAD_CHECKSUM, why, fh.lsn, 0)) != 0)
				return rc;
			if (s->state == 3)
				return 0;
			continue;
		}
		/* A valid frame.  Check its place in the LSN sequence. */
		uint64_t expect = s->last_lsn ? s->last_lsn + 1 : (sg->info.header_ok ? sg->h.first_lsn : fh.lsn);
		if (fh.lsn < expect) {
			add_finding(s, WAL_CLASS_DAMAGE,
			            fh.lsn + 1 == expect ? WAL_F_LSN_DUPLICATE : WAL_F_LSN_REGRESSION, sg, frame_off,
			            next - frame_off, fh.lsn, fh.lsn, 0,
			            "%s: LSN %llu after LSN %llu; the frame is skipped",
			            fh.lsn + 1 == expect ? "duplicate LSN" : "LSN regression",
			            (unsigned long long)fh.lsn, (unsigned long long)s->last_lsn);
			s->off = next;
			continue;
		}
		if (fh.lsn > expect) {
			add_finding(s, WAL_CLASS_DAMAGE, WAL_F_LSN_GAP, sg, frame_off, 0, expect, fh.lsn - 1, 0,
			            "LSN gap: LSN %llu-%llu missing before LSN %llu", (unsigned long long)expect,
			            (unsigned long long)(fh.lsn - 1), (unsigned long long)fh.lsn);
		}
		s->off = next;
		s->last_lsn = fh.lsn;
		sg->info.last_lsn = fh.lsn;
		sg->info.entries++;
		unsigned t = fh.type & 0x7f;
		if (t < WAL_T_POINTS || t > WAL_T_STORAGE_LOSS) {
			if (fh.type & WAL_T_IGNORABLE)
				continue;
			add_finding(s, WAL_CLASS_DAMAGE, WAL_F_UNKNOWN_TYPE, sg, frame_off, next - frame_off, fh.lsn,
			            fh.lsn, 0, "frame type %u of LSN %llu is unknown to this version and not ignorable",
			            fh.type, (unsigned long long)fh.lsn);
			continue;
		}
		int prc = check_payload(s, &fh, payload);
		if (prc == WAL_EIO || prc == WAL_ENOMEM) {
			return prc; /* storage cannot be read: an error, not a finding */
		}
		if (prc != 0) {
			add_finding(s, WAL_CLASS_DAMAGE, WAL_F_BAD_PAYLOAD, sg, frame_off, next - frame_off, fh.lsn,
			            fh.lsn, 0, "%s payload of LSN %llu does not decode", wal_type_name(fh.type),
			            (unsigned long long)fh.lsn);
		}
		if (t == WAL_T_LOSS) {
			struct wal_loss l;
			if (wal_loss_decode(payload, fh.len, &l) != 0 || l.first_lsn != fh.lsn) {
				add_finding(s, WAL_CLASS_DAMAGE, WAL_F_BAD_PAYLOAD, sg, frame_off, next - frame_off,
				            fh.lsn, fh.lsn, 0, "loss record of LSN %llu does not decode",
				            (unsigned long long)fh.lsn);
			} else {
				add_finding(s, WAL_CLASS_NOTICE, WAL_F_KNOWN_LOSS, sg, frame_off, next - frame_off,
				            l.first_lsn, l.last_lsn, 0, "known loss: LSN %llu-%llu (%.*s)",
				            (unsigned long long)l.first_lsn, (unsigned long long)l.last_lsn,
				            (int)(l.reason.n > 120 ? 120 : l.reason.n), l.reason.p);
				s->last_lsn = sg->info.last_lsn = l.last_lsn;
			}
		}
		if (t == WAL_T_STORAGE_LOSS) {
			struct wal_storage_loss l;
			if (wal_storage_loss_decode(payload, fh.len, &l) != 0 || l.last_lsn >= fh.lsn) {
				add_finding(s, WAL_CLASS_DAMAGE, WAL_F_BAD_PAYLOAD, sg, frame_off, next - frame_off,
				            fh.lsn, fh.lsn, 0, "storage loss record of LSN %llu does not decode",
				            (unsigned long long)fh.lsn);
			} else {
				add_finding(s, WAL_CLASS_NOTICE, WAL_F_KNOWN_LOSS, sg, frame_off, next - frame_off,
				            l.first_lsn, l.last_lsn, 0,
				            "known loss: the points of LSN %llu-%llu in partition 'data/%.*s' (%.*s)",
				            (unsigned long long)l.first_lsn, (unsigned long long)l.last_lsn,
				            (int)(l.partition.n > 200 ? 200 : l.partition.n), l.partition.p,
				            (int)(l.reason.n > 120 ? 120 : l.reason.n), l.reason.p);
			}
		}
		if (t == WAL_T_SEAL && seal_ok(s, &fh, payload, frame_off))
			sg->info.sealed = 1;
		if (t != WAL_T_SEAL)
			s->run_entries++;
		if (t == WAL_T_CLOSE)
			sg->info.closed = 1;
		e->lsn = fh.lsn;
		e->watermark = fh.watermark;
		e->time_ns = fh.time_ns;
		e->type = fh.type;
		e->flags = fh.flags;
		e->payload = payload;
		e->len = fh.len;
		e->segment = sg->info.name;
		e->offset = frame_off;
		return 1;
	}
}

int wal_scan_tail(wal_scan_t *s, struct wal_tail *t)
{
	struct wal_entry e;
	int rc;

	memset(t, 0, sizeof *t);
	while ((rc = wal_scan_next(s, &e)) == 1)
		;
	if (rc < 0)
		return rc;
	t->wal_id = s->wal_id;
	t->last_lsn = s->last_lsn;
	if (s->nsegs) {
		struct seg *sg = &s->segs[s->nsegs - 1];
		snprintf(t->newest, sizeof t->newest, "%s", sg->info.name);
		t->newest_end = s->tail_end;
		t->newest_size = sg->info.bytes;
		t->newest_sealed = sg->info.sealed;
	}
	return 0;
}

int wal_last_checkpoint(const char *const *paths, size_t npaths, uint64_t *ckpt)
{
	wal_scan_t *s;
	struct wal_entry e;
	int rc;

	*ckpt = 0;
	if ((rc = wal_scan_open(&s, paths, npaths, NULL)) != 0)
		return rc;
	while ((rc = wal_scan_next(s, &e)) == 1) {
		struct wal_checkpoint c;
		if (wal_checkpoint_of(&e, &c) && c.lsn > *ckpt)
			*ckpt = c.lsn;
	}
	wal_scan_close(s);
	return rc < 0 ? rc : 0;
}
