/*
 * storage.c - storage partitions: the points of an LSN range of one
 * database, flushed out of the WAL, zlib-compressed and checksummed.
 *
 * DIR/data/<db>/<first LSN>-<last LSN>.part, LSNs as 16 hex digits; <db> is
 * the database name with every byte outside [A-Za-z0-9_-] (and a leading
 * '.') written as %XX.  Little-endian:
 *
 *   header, 64 bytes
 *     0  8 magic "WALCTLPT"        32  8 last LSN
 *     8  2 version 2 (1 is read)   40  8 entries (POINTS payloads)
 *    10  1 compression 1 (zlib)    48  8 uncompressed bytes
 *    11  1 flags 0                 56  4 reserved
 *    12  4 blocks                  60  4 header CRC over 0-59
 *    16  8 WAL id
 *    24  8 first LSN
 *   blocks, back to back
 *     0  4 compressed length       8  4 CRC of the compressed bytes
 *     4  4 uncompressed length    12  .. a zlib stream
 *
 * The uncompressed bytes are records: the entry's 8-byte LSN, a 4-byte
 * length and the POINTS payload exactly as it was in the WAL, in LSN order,
 * the first record's LSN the header's first, the last its last (version 1
 * had no LSN in a record).  The LSNs let a reader start in the middle of a
 * partition, where a follower of the WAL left off.  CRCs are seeded with
 * the WAL id as in the WAL.  A partition is written to a temporary name, synced, renamed into
 * place and its directory synced: it is there whole or not at all.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <isa-l/igzip_lib.h>

#include "internal.h"

#define PART_MAGIC   "WALCTLPT"
#define PART_HEADER  64
#define PART_VERSION 2
#define BLOCK_RAW    (4u << 20)

size_t wal_db_dirname(char *out, size_t cap, const char *db, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)db[i];
		int keep =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
		if (keep) {
			if (k + 1 < cap)
				out[k] = (char)c;
			k++;
		} else {
			if (k + 3 < cap) {
				out[k] = '%';
				out[k + 1] = hex[c >> 4];
				out[k + 2] = hex[c & 15];
			}
			k += 3;
		}
	}
	if (cap)
		out[k < cap ? k : cap - 1] = 0;
	return k;
}

int wal_db_check(const char *db, size_t n)
{
	size_t k;

	if (!n)
		return wal_seterr(WAL_EINVAL, "a database name must not be empty");
	if ((k = wal_db_dirname(NULL, 0, db, n)) > WAL_DB_DIRNAME_MAX)
		return wal_seterr(WAL_EINVAL,
		                  "database name of %zu bytes is too long: its directory name under data/ would be "
		                  "%zu bytes, and at most %d fit (each byte outside [A-Za-z0-9_-] takes 3)",
		                  n, k, WAL_DB_DIRNAME_MAX);
	return 0;
}

struct buf {
	unsigned char *p;
	size_t n, cap;
};

static int buf_reserve(struct buf *b, size_t more)
{
	if (b->n + more <= b->cap)
		return 0;
	size_t c = b->cap ? b->cap : 1 << 16;
	while (c < b->n + more)
		c *= 2;
	void *q = realloc(b->p, c);
	if (!q)
		return wal_seterr(WAL_ENOMEM, "out of memory writing a partition");
	b->p = q;
	b->cap = c;
	return 0;
}

/* The ISA-L level of a --compression-level: 1 is ISA-L's 1, 2 to 5 its 2,
 * 6 to 9 its 3 (walctl-serve(1)). */
int wal_isal_level(int level) { return level <= 1 ? 1 : level <= 5 ? 2 : 3; }

/* Compress raw[0..n) as one block appended to out: a zlib stream (RFC 1950,
 * what zlib's uncompress() reads) written by ISA-L's igzip; where igzip
 * cannot (the output would not fit its bound), zlib writes it. */
static int put_block(struct buf *out, const unsigned char *raw, size_t n, int level, uint32_t seed)
{
	static const uint32_t lvlbuf[] = { 0, ISAL_DEF_LVL1_DEFAULT, ISAL_DEF_LVL2_DEFAULT, ISAL_DEF_LVL3_DEFAULT };
	uLongf clen = compressBound((uLong)n);
	int il = wal_isal_level(level), rc;

	if (n > UINT32_MAX || clen > UINT32_MAX)
		return wal_seterr(WAL_EINVAL, "a partition block of %zu bytes is too large", n);
	if ((rc = buf_reserve(out, 12 + clen)) != 0)
		return rc;
	unsigned char *h = out->p + out->n;
	struct isal_zstream z;
	isal_deflate_stateless_init(&z);
	z.next_in = (uint8_t *)(uintptr_t)raw;
	z.avail_in = (uint32_t)n;
	z.next_out = h + 12;
	z.avail_out = (uint32_t)clen;
	z.level = (uint32_t)il;
	z.level_buf_size = lvlbuf[il];
	z.gzip_flag = IGZIP_ZLIB;
	z.end_of_stream = 1;
	z.flush = NO_FLUSH;
	if (!(z.level_buf = malloc(z.level_buf_size)))
		return wal_seterr(WAL_ENOMEM, "out of memory compressing a partition block");
	rc = isal_deflate_stateless(&z);
	free(z.level_buf);
	if (rc == COMP_OK) {
		clen = z.total_out;
	} else if (compress2(h + 12, &clen, raw, (uLong)n, level) != Z_OK) {
		return wal_seterr(WAL_ENOMEM, "could not compress a partition block (ISA-L %d)", rc);
	}
	put32(h, (uint32_t)clen);
	put32(h + 4, (uint32_t)n);
	put32(h + 8, wal_crc32(seed, h + 12, clen));
	out->n += 12 + clen;
	return 0;
}

/* Blocks are compressed two at a time: a helper thread takes every other
 * full block while the caller compresses the next, and blocks are written
 * in order. */
struct wal_pw {
	char dir[PATH_MAX + 1100], tmp[PATH_MAX + 1200], dbdir[1024];
	int fd, level;
	uint64_t wal_id, first, last, entries, raw_total, off;
	uint32_t seed, blocks;
	struct buf raw, block;
	/* the helper */
	pthread_t th;
	int started, quit, job, job_rc;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct buf job_raw, job_out;
};

static void *pw_helper(void *arg)
{
	wal_pw_t *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->job != 1 && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->job != 1)
			break;
		pthread_mutex_unlock(&w->mu);
		w->job_out.n = 0;
		int rc = put_block(&w->job_out, w->job_raw.p, w->job_raw.n, w->level, w->seed);
		pthread_mutex_lock(&w->mu);
		w->job_rc = rc;
		w->job = 2;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int write_out(wal_pw_t *w, const struct buf *out, size_t raw)
{
	int rc = fs_write_all(w->fd, out->p, out->n, w->off);

	if (rc)
		return wal_seterr(rc, "cannot write '%s': %s", w->tmp, strerror(errno));
	w->off += out->n;
	w->raw_total += raw;
	w->blocks++;
	return 0;
}

/* Wait for the helper's block and write it. */
static int collect(wal_pw_t *w)
{
	int rc;

	if (!w->started)
		return 0;
	pthread_mutex_lock(&w->mu);
	while (w->job == 1)
		pthread_cond_wait(&w->cv, &w->mu);
	int had = w->job == 2;
	rc = w->job_rc;
	w->job = 0;
	pthread_mutex_unlock(&w->mu);
	if (!had)
		return 0;
	return rc ? rc : write_out(w, &w->job_out, w->job_raw.n);
}

static int flush_block(wal_pw_t *w, int last)
{
	int rc;

	if (!w->raw.n)
		return collect(w);
	if (!last && (w->started || pthread_mutex_init(&w->mu, NULL) == 0)) {
		if (!w->started) {
			pthread_cond_init(&w->cv, NULL);
			w->started = pthread_create(&w->th, NULL, pw_helper, w) == 0;
		}
		if (w->started) {
			pthread_mutex_lock(&w->mu);
			int idle = w->job == 0;
			pthread_mutex_unlock(&w->mu);
			if (idle) {
				/* hand this block over and go on filling another */
				struct buf t = w->job_raw;
				w->job_raw = w->raw;
				w->raw = t;
				w->raw.n = 0;
				pthread_mutex_lock(&w->mu);
				w->job = 1;
				pthread_cond_broadcast(&w->cv);
				pthread_mutex_unlock(&w->mu);
				return 0;
			}
		}
	}
	/* compress this one here while the helper does the one before */
	w->block.n = 0;
	rc = put_block(&w->block, w->raw.p, w->raw.n, w->level, w->seed);
	int crc = collect(w);
	if (rc == 0)
		rc = crc;
	if (rc == 0)
		rc = write_out(w, &w->block, w->raw.n);
	w->raw.n = 0;
	return rc;
}

int wal_pw_open(wal_pw_t **out, const char *datadir, uint64_t wal_id, struct wal_str db, int level)
{
	wal_pw_t *w = calloc(1, sizeof *w);
	int rc;

	*out = NULL;
	if (!w)
		return wal_seterr(WAL_ENOMEM, "out of memory");
	wal_db_dirname(w->dbdir, sizeof w->dbdir, db.p, db.n);
	snprintf(w->dir, sizeof w->dir, "%s/data/%s", datadir, w->dbdir);
	if ((rc = fs_mkdir_p(w->dir)) != 0) {
		free(w);
		return rc;
	}
	snprintf(w->tmp, sizeof w->tmp, "%s/.part-%ld-%016llx.tmp", w->dir, (long)getpid(),
	         (unsigned long long)wal_random64());
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		rc = wal_seterr(wal_errno_code(errno), "cannot create '%s': %s", w->tmp, strerror(errno));
		free(w);
		return rc;
	}
	w->wal_id = wal_id;
	w->seed = wal_seed(wal_id);
	w->level = level;
	w->off = PART_HEADER;
	*out = w;
	return 0;
}

int wal_pw_add(wal_pw_t *w, uint64_t lsn, const void *payload, size_t len)
{
	int rc;

	if (w->raw.n && w->raw.n + 12 + len > BLOCK_RAW && (rc = flush_block(w, 0)) != 0)
		return rc;
	if ((rc = buf_reserve(&w->raw, 12 + len)) != 0)
		return rc;
	put64(w->raw.p + w->raw.n, lsn);
	put32(w->raw.p + w->raw.n + 8, (uint32_t)len);
	memcpy(w->raw.p + w->raw.n + 12, payload, len);
	w->raw.n += 12 + len;
	if (!w->first)
		w->first = lsn;
	w->last = lsn;
	w->entries++;
	return 0;
}

uint64_t wal_pw_bytes(const wal_pw_t *w) { return w->raw_total + w->raw.n; }

void wal_pw_abort(wal_pw_t *w)
{
	if (!w)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		while (w->job == 1)
			pthread_cond_wait(&w->cv, &w->mu);
		w->quit = 1;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->th, NULL);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
	}
	if (w->fd >= 0) {
		close(w->fd);
		unlink(w->tmp);
	}
	free(w->raw.p);
	free(w->block.p);
	free(w->job_raw.p);
	free(w->job_out.p);
	free(w);
}

int wal_pw_finish(wal_pw_t *w, char *relpath, size_t relcap)
{
	unsigned char h[PART_HEADER];
	char name[64], dst[PATH_MAX + 1200];
	int rc;

	if ((rc = flush_block(w, 1)) != 0 || (rc = collect(w)) != 0)
		goto fail;
	memset(h, 0, sizeof h);
	memcpy(h, PART_MAGIC, 8);
	put16(h + 8, PART_VERSION);
	h[10] = 1;
	put32(h + 12, w->blocks);
	put64(h + 16, w->wal_id);
	put64(h + 24, w->first);
	put64(h + 32, w->last);
	put64(h + 40, w->entries);
	put64(h + 48, w->raw_total);
	put32(h + 60, wal_crc32(w->seed, h, 60));
	if ((rc = fs_write_all(w->fd, h, sizeof h, 0)) != 0) {
		rc = wal_seterr(rc, "cannot write '%s': %s", w->tmp, strerror(errno));
		goto fail;
	}
	if (fsync(w->fd) != 0) {
		rc = wal_seterr(WAL_ESYNC, "fsync of '%s' failed: %s", w->tmp, strerror(errno));
		goto fail;
	}
	snprintf(name, sizeof name, "%016llx-%016llx.part", (unsigned long long)w->first, (unsigned long long)w->last);
	snprintf(dst, sizeof dst, "%s/%s", w->dir, name);
	/* Never over another partition: one that stayed because the WAL does
	 * not hold its points would be lost. */
	if (renameat2(AT_FDCWD, w->tmp, AT_FDCWD, dst, RENAME_NOREPLACE) != 0) {
		rc = errno == EEXIST
		         ? wal_seterr(WAL_EIO, "partition '%s' exists already; it is not replaced", dst)
		         : wal_seterr(wal_errno_code(errno), "cannot rename '%s': %s", w->tmp, strerror(errno));
		goto fail;
	}
	close(w->fd);
	w->fd = -1;
	if ((rc = fs_fsync_dir(w->dir)) != 0)
		goto fail;
	snprintf(relpath, relcap, "%s/%s", w->dbdir, name);
	wal_pw_abort(w);
	return 0;
fail:
	wal_pw_abort(w);
	return rc;
}

struct wal_part {
	struct wal_part_info info;
	unsigned char *file, *raw;
	size_t size, off, rawcap, rawlen, rawoff;
	uint32_t block, seed;
	unsigned version;
	uint64_t prev_lsn; /* of the record read last (version 2) */
	char name[256];
};

void wal_part_close(wal_part_t *p)
{
	if (!p)
		return;
	free(p->file);
	free(p->raw);
	free(p);
}

int wal_part_open(wal_part_t **out, const char *path)
{
	wal_part_t *p = calloc(1, sizeof *p);
	struct stat st;
	size_t got = 0;
	int fd, rc = 0;

	*out = NULL;
	if (!p)
		return wal_seterr(WAL_ENOMEM, "out of memory");
	const char *base = strrchr(path, '/');
	snprintf(p->name, sizeof p->name, "%s", base ? base + 1 : path);
	if ((rc = fs_open_file(path, O_RDONLY, &fd)) != 0)
		goto fail;
	if (fstat(fd, &st) != 0) {
		rc = wal_seterr(wal_errno_code(errno), "cannot open partition '%s': %s", path, strerror(errno));
		goto fail;
	}
	p->size = (size_t)st.st_size;
	p->file = malloc(p->size ? p->size : 1);
	if (!p->file || fs_read_all(fd, p->file, p->size, 0, &got) != 0 || got != p->size) {
		rc = wal_seterr(WAL_EIO, "cannot read partition '%s'", path);
		goto fail;
	}
	close(fd);
	fd = -1;
	const unsigned char *h = p->file;
	if (p->size < PART_HEADER || memcmp(h, PART_MAGIC, 8) != 0) {
		rc = wal_seterr(WAL_ECORRUPT, "partition '%s': bad magic: not a walctl partition", p->name);
		goto fail;
	}
	p->version = get16(h + 8);
	if ((p->version != 1 && p->version != PART_VERSION) || h[10] != 1) {
		rc = wal_seterr(WAL_ECORRUPT, "partition '%s': unsupported version %u or compression %u", p->name,
		                get16(h + 8), h[10]);
		goto fail;
	}
	p->info.wal_id = get64(h + 16);
	p->seed = wal_seed(p->info.wal_id);
	if (get32(h + 60) != wal_crc32(p->seed, h, 60)) {
		rc = wal_seterr(WAL_ECORRUPT, "partition '%s': header checksum mismatch", p->name);
		goto fail;
	}
	p->info.blocks = get32(h + 12);
	p->info.first_lsn = get64(h + 24);
	p->info.last_lsn = get64(h + 32);
	p->info.entries = get64(h + 40);
	p->info.raw_bytes = get64(h + 48);
	p->off = PART_HEADER;
	*out = p;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	wal_part_close(p);
	return rc;
}

const struct wal_part_info *wal_part_info(const wal_part_t *p) { return &p->info; }

static int next_block(wal_part_t *p)
{
	if (p->off + 12 > p->size)
		return wal_seterr(WAL_ECORRUPT, "partition '%s' offset %zu: truncated block header", p->name, p->off);
	const unsigned char *h = p->file + p->off;
	uint32_t clen = get32(h), ulen = get32(h + 4);
	if (clen > p->size - p->off - 12 || ulen > (64u << 20))
		return wal_seterr(WAL_ECORRUPT, "partition '%s' offset %zu: bad block length", p->name, p->off);
	if (get32(h + 8) != wal_crc32(p->seed, h + 12, clen))
		return wal_seterr(WAL_ECORRUPT, "partition '%s' offset %zu: block checksum mismatch", p->name, p->off);
	if (ulen > p->rawcap) {
		void *q = realloc(p->raw, ulen);
		if (!q)
			return wal_seterr(WAL_ENOMEM, "out of memory reading a partition");
		p->raw = q;
		p->rawcap = ulen;
	}
	struct inflate_state z;
	isal_inflate_init(&z);
	z.next_in = (uint8_t *)(uintptr_t)(h + 12);
	z.avail_in = clen;
	z.next_out = p->raw;
	z.avail_out = ulen;
	z.crc_flag = ISAL_ZLIB;
	int zr = isal_inflate_stateless(&z);
	if (zr != ISAL_DECOMP_OK || z.total_out != ulen || z.avail_in != 0)
		return wal_seterr(WAL_ECORRUPT, "partition '%s' offset %zu: block does not decompress", p->name,
		                  p->off);
	p->rawlen = ulen;
	p->rawoff = 0;
	p->off += 12 + clen;
	p->block++;
	return 0;
}

int wal_part_next(wal_part_t *p, uint64_t *lsn, const unsigned char **payload, size_t *len)
{
	size_t hl = p->version == 1 ? 4 : 12;
	uint64_t at = 0;
	int rc;

	while (p->rawoff >= p->rawlen) {
		if (p->block == p->info.blocks) {
			if (p->off != p->size)
				return wal_seterr(WAL_ECORRUPT, "partition '%s': %zu bytes after the last block",
				                  p->name, p->size - p->off);
			return 0;
		}
		if ((rc = next_block(p)) != 0)
			return rc;
	}
	if (p->rawlen - p->rawoff < hl || get32(p->raw + p->rawoff + hl - 4) > p->rawlen - p->rawoff - hl)
		return wal_seterr(WAL_ECORRUPT, "partition '%s': bad record in block %u", p->name, p->block);
	if (hl == 12) {
		at = get64(p->raw + p->rawoff);
		if (at <= p->prev_lsn || at < p->info.first_lsn || at > p->info.last_lsn ||
		    (!p->prev_lsn && at != p->info.first_lsn))
			return wal_seterr(WAL_ECORRUPT,
			                  "partition '%s': a record of block %u has LSN %llu, out of order or "
			                  "outside LSN %llu-%llu",
			                  p->name, p->block, (unsigned long long)at,
			                  (unsigned long long)p->info.first_lsn, (unsigned long long)p->info.last_lsn);
		p->prev_lsn = at;
	}
	if (lsn)
		*lsn = at;
	*len = get32(p->raw + p->rawoff + hl - 4);
	*payload = p->raw + p->rawoff + hl;
	p->rawoff += hl + *len;
	return 1;
}

int wal_part_verify(wal_part_t *p, int deep, uint64_t wal_id)
{
	const unsigned char *pl;
	size_t len;
	int rc = 0;

	if (wal_id && p->info.wal_id != wal_id)
		return wal_seterr(WAL_ECORRUPT, "partition '%s' belongs to another WAL", p->name);
	/* its name says which LSNs it holds, as its header does */
	const char *base = p->name;
	char want[64];
	snprintf(want, sizeof want, "%016llx-%016llx.part", (unsigned long long)p->info.first_lsn,
	         (unsigned long long)p->info.last_lsn);
	if (strcmp(base, want) != 0) {
		return wal_seterr(WAL_ECORRUPT, "partition '%s' holds LSN %llu-%llu, so it should be named '%s'",
		                  p->name, (unsigned long long)p->info.first_lsn, (unsigned long long)p->info.last_lsn,
		                  want);
	}
	if (!deep) {
		/* every block's CRC, without decompressing */
		size_t off = PART_HEADER;
		for (uint32_t b = 0; b < p->info.blocks && rc == 0; b++) {
			if (off + 12 > p->size) {
				rc = wal_seterr(WAL_ECORRUPT, "partition '%s' offset %zu: truncated", p->name, off);
				break;
			}
			uint32_t clen = get32(p->file + off);
			if (clen > p->size - off - 12 ||
			    get32(p->file + off + 8) != wal_crc32(p->seed, p->file + off + 12, clen))
				rc = wal_seterr(WAL_ECORRUPT, "partition '%s' offset %zu: block checksum mismatch",
				                p->name, off);
			off += 12 + clen;
		}
		if (rc == 0 && off != p->size)
			rc = wal_seterr(WAL_ECORRUPT, "partition '%s': %zu bytes after the last block", p->name,
			                p->size - off);
		return rc;
	}
	wal_dec_t *d;
	if ((rc = wal_dec_new(&d)) != 0)
		return rc;
	uint64_t n = 0;
	uint64_t at = 0;
	while ((rc = wal_part_next(p, &at, &pl, &len)) == 1) {
		struct wal_str db;
		struct wal_point pt;
		n++;
		if ((rc = wal_dec_begin(d, pl, len, &db)) != 0)
			break;
		while ((rc = wal_dec_next(d, &pt)) == 1)
			;
		if (rc)
			break;
	}
	if (rc < 0)
		rc = wal_seterr(rc, "partition '%s': %s", p->name, wal_errmsg());
	else if (n != p->info.entries)
		rc = wal_seterr(WAL_ECORRUPT, "partition '%s' holds %llu entries, its header says %llu", p->name,
		                (unsigned long long)n, (unsigned long long)p->info.entries);
	else if (p->version != 1 && at != p->info.last_lsn)
		rc = wal_seterr(WAL_ECORRUPT, "partition '%s' ends at LSN %llu, its header says %llu", p->name,
		                (unsigned long long)at, (unsigned long long)p->info.last_lsn);
	wal_dec_free(d);
	return rc;
}

int wal_part_check(const char *path, int deep, uint64_t wal_id)
{
	wal_part_t *p;
	int rc = wal_part_open(&p, path);

	if (rc == 0) {
		rc = wal_part_verify(p, deep, wal_id);
		wal_part_close(p);
	}
	return rc;
}

static int cmp_ref(const void *a, const void *b)
{
	const struct wal_part_ref *x = a, *y = b;
	if (x->first_lsn != y->first_lsn)
		return x->first_lsn < y->first_lsn ? -1 : 1;
	return strcmp(x->rel, y->rel);
}

int wal_part_wal_id(const char *path, uint64_t *id)
{
	unsigned char h[PART_HEADER];
	size_t got = 0;
	int fd, rc;

	*id = 0;
	if ((rc = fs_open_file(path, O_RDONLY, &fd)) != 0)
		return rc;
	rc = fs_read_all(fd, h, sizeof h, 0, &got);
	close(fd);
	if (rc != 0 || got != sizeof h || memcmp(h, PART_MAGIC, 8) != 0 ||
	    get32(h + 60) != wal_crc32(wal_seed(get64(h + 16)), h, 60))
		return wal_seterr(WAL_ECORRUPT, "partition '%s': no valid header", path);
	*id = get64(h + 16);
	return 0;
}

int wal_storage_wal_id(const char *datadir, uint64_t *id, uint64_t *other)
{
	struct wal_part_ref *v;
	size_t n;
	int rc;

	*id = *other = 0;
	if ((rc = wal_part_list(datadir, &v, &n)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX + 320];
		uint64_t w;
		snprintf(path, sizeof path, "%s/data/%s", datadir, v[i].rel);
		if (wal_part_wal_id(path, &w) != 0)
			continue; /* damaged: what is wrong with it is the view's to say */
		if (!*id)
			*id = w;
		else if (w != *id && !*other)
			*other = w;
	}
	free(v);
	return 0;
}

int wal_part_list(const char *datadir, struct wal_part_ref **out, size_t *nout)
{
	char data[PATH_MAX + 8];
	struct wal_part_ref *v = NULL;
	size_t n = 0, cap = 0;
	DIR *d;
	struct dirent *de;

	*out = NULL;
	*nout = 0;
	snprintf(data, sizeof data, "%s/data", datadir);
	if (!(d = opendir(data)))
		return errno == ENOENT ? 0
		                       : wal_seterr(wal_errno_code(errno), "cannot open '%s': %s", data, strerror(errno));
	while ((de = readdir(d))) {
		char sub[PATH_MAX + 300];
		DIR *e;
		struct dirent *fe;
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof sub, "%s/%s", data, de->d_name);
		if (!(e = opendir(sub))) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue; /* gone meanwhile, or a stray file */
			/* a database's partitions that cannot be listed are not missing */
			int rc = wal_seterr(wal_errno_code(errno), "cannot open '%s': %s", sub, strerror(errno));
			closedir(d);
			free(v);
			return rc;
		}
		while ((fe = readdir(e))) {
			uint64_t a, b;
			if (!part_name_parse(fe->d_name, &a, &b))
				continue;
			if (n == cap) {
				size_t c = cap ? cap * 2 : 64;
				void *q = realloc(v, c * sizeof *v);
				if (!q) {
					closedir(e);
					closedir(d);
					free(v);
					return wal_seterr(WAL_ENOMEM, "out of memory listing partitions");
				}
				v = q;
				cap = c;
			}
			snprintf(v[n].rel, sizeof v[n].rel, "%.255s/%.40s", de->d_name, fe->d_name);
			v[n].first_lsn = a;
			v[n].last_lsn = b;
			n++;
		}
		closedir(e);
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof *v, cmp_ref);
	*out = v;
	*nout = n;
	return 0;
}

/* A flush: POINTS payloads go to the partition of their database; the
 * CHECKPOINT that follows (view.c) names every partition written.  Shared
 * by the replay of walctl recover and the engine's flusher. */
#define PART_SPLIT (64u << 20) /* start a new partition past this many bytes */

struct flush_db {
	char name[256];
	size_t n;
	wal_pw_t *w;
};

struct wal_flush {
	char dir[PATH_MAX];
	uint64_t wal_id;
	int level;
	struct flush_db *dbs;
	size_t ndbs, capdbs;
	char (*names)[1200];
	size_t nnames, capnames;
	wal_dec_t *dec;
};

int wal_flush_new(wal_flush_t **out, const char *datadir, uint64_t wal_id, int level)
{
	wal_flush_t *f = calloc(1, sizeof *f);

	*out = NULL;
	if (!f || wal_dec_new(&f->dec) != 0) {
		free(f);
		return wal_seterr(WAL_ENOMEM, "out of memory");
	}
	snprintf(f->dir, sizeof f->dir, "%s", datadir);
	f->wal_id = wal_id;
	f->level = level;
	*out = f;
	return 0;
}

static int finish_db(wal_flush_t *f, struct flush_db *d)
{
	int rc;

	if ((rc = wal_grow((void **)&f->names, &f->capnames, f->nnames + 1, sizeof *f->names)) != 0)
		return rc;
	rc = wal_pw_finish(d->w, f->names[f->nnames], sizeof f->names[0]);
	d->w = NULL;
	if (rc == 0)
		f->nnames++;
	return rc;
}

int wal_flush_add(wal_flush_t *f, uint64_t lsn, const void *payload, size_t len)
{
	struct wal_str db;
	size_t k = 0;
	int rc;

	/* never stored, and never skipped in silence */
	if (wal_dec_begin(f->dec, payload, len, &db) != 0)
		return wal_seterr(WAL_ECORRUPT, "points payload of LSN %llu does not decode: %s",
		                  (unsigned long long)lsn, wal_errmsg());
	while (k < f->ndbs && !(f->dbs[k].n == db.n && memcmp(f->dbs[k].name, db.p, db.n) == 0))
		k++;
	if (k == f->ndbs) {
		if ((rc = wal_grow((void **)&f->dbs, &f->capdbs, f->ndbs + 1, sizeof *f->dbs)) != 0)
			return rc;
		memset(&f->dbs[k], 0, sizeof f->dbs[k]);
		f->dbs[k].n = db.n < sizeof f->dbs[k].name ? db.n : sizeof f->dbs[k].name;
		memcpy(f->dbs[k].name, db.p, f->dbs[k].n);
		f->ndbs++;
	}
	struct flush_db *d = &f->dbs[k];
	if (!d->w && (rc = wal_pw_open(&d->w, f->dir, f->wal_id, db, f->level)) != 0)
		return rc;
	if ((rc = wal_pw_add(d->w, lsn, payload, len)) != 0)
		return rc;
	return wal_pw_bytes(d->w) >= PART_SPLIT ? finish_db(f, d) : 0;
}

int wal_flush_finish(wal_flush_t *f)
{
	int rc = 0;

	for (size_t k = 0; k < f->ndbs && rc == 0; k++)
		if (f->dbs[k].w)
			rc = finish_db(f, &f->dbs[k]);
	return rc;
}

size_t wal_flush_npartitions(const wal_flush_t *f) { return f->nnames; }
const char *wal_flush_partition(const wal_flush_t *f, size_t i) { return i < f->nnames ? f->names[i] : NULL; }

void wal_flush_free(wal_flush_t *f)
{
	if (!f)
		return;
	for (size_t k = 0; k < f->ndbs; k++)
		wal_pw_abort(f->dbs[k].w);
	free(f->dbs);
	free(f->names);
	wal_dec_free(f->dec);
	free(f);
}
