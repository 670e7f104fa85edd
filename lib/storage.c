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
 *     8  2 version 1               40  8 points
 *    10  1 compression 1 (zlib)    48  8 uncompressed bytes
 *    11  1 flags 0                 56  4 reserved
 *    12  4 blocks                  60  4 header CRC over 0-59
 *    16  8 WAL id
 *    24  8 first LSN
 *   blocks, back to back
 *     0  4 compressed length       8  4 CRC of the compressed bytes
 *     4  4 uncompressed length    12  .. a zlib stream
 *
 * The uncompressed bytes are records: a 4-byte length and a POINTS payload
 * exactly as it was in the WAL.  CRCs are seeded with the WAL id as in the
 * WAL.  A partition is written to a temporary name, synced, renamed into
 * place and its directory synced: it is there whole or not at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "internal.h"

#define PART_MAGIC "WALCTLPT"
#define PART_HEADER 64
#define BLOCK_RAW (4u << 20)

size_t wal_db_dirname(char *out, size_t cap, const char *db, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)db[i];
		int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		           c == '-';
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

/* Compress raw[0..n) as one block appended to out. */
static int put_block(struct buf *out, const unsigned char *raw, size_t n, int level, uint32_t seed)
{
	uLongf clen = compressBound((uLong)n);
	int rc;

	if ((rc = buf_reserve(out, 12 + clen)) != 0)
		return rc;
	unsigned char *h = out->p + out->n;
	if (compress2(h + 12, &clen, raw, (uLong)n, level) != Z_OK)
		return wal_seterr(WAL_ENOMEM, "zlib could not compress a partition block");
	put32(h, (uint32_t)clen);
	put32(h + 4, (uint32_t)n);
	put32(h + 8, (uint32_t)crc32_z(seed, h + 12, clen));
	out->n += 12 + clen;
	return 0;
}

int wal_part_write(const char *datadir, uint64_t wal_id, struct wal_str db, uint64_t first_lsn, uint64_t last_lsn,
                   const struct wal_str *payloads, size_t n, uint64_t points, int level, char *relpath,
                   size_t relcap)
{
	struct buf out = { 0 }, raw = { 0 };
	char dbdir[1024], dir[PATH_MAX + 1100], name[64];
	uint32_t seed = wal_seed(wal_id), blocks = 0;
	uint64_t total = 0;
	int rc;

	wal_db_dirname(dbdir, sizeof dbdir, db.p, db.n);
	snprintf(name, sizeof name, "%016llx-%016llx.part", (unsigned long long)first_lsn,
	         (unsigned long long)last_lsn);
	snprintf(relpath, relcap, "%s/%s", dbdir, name);
	snprintf(dir, sizeof dir, "%s/data/%s", datadir, dbdir);
	if ((rc = fs_mkdir_p(dir)) != 0)
		return rc;
	if ((rc = buf_reserve(&out, PART_HEADER)) != 0)
		goto out;
	out.n = PART_HEADER;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || (raw.n && raw.n + 4 + payloads[i].n > BLOCK_RAW)) {
			if (raw.n) {
				if ((rc = put_block(&out, raw.p, raw.n, level, seed)) != 0)
					goto out;
				total += raw.n;
				blocks++;
				raw.n = 0;
			}
			if (i == n)
				break;
		}
		if ((rc = buf_reserve(&raw, 4 + payloads[i].n)) != 0)
			goto out;
		put32(raw.p + raw.n, (uint32_t)payloads[i].n);
		memcpy(raw.p + raw.n + 4, payloads[i].p, payloads[i].n);
		raw.n += 4 + payloads[i].n;
	}
	unsigned char *h = out.p;
	memset(h, 0, PART_HEADER);
	memcpy(h, PART_MAGIC, 8);
	put16(h + 8, 1);
	h[10] = 1;
	put32(h + 12, blocks);
	put64(h + 16, wal_id);
	put64(h + 24, first_lsn);
	put64(h + 32, last_lsn);
	put64(h + 40, points);
	put64(h + 48, total);
	put32(h + 60, (uint32_t)crc32(seed, h, 60));
	rc = fs_write_atomic(dir, name, out.p, out.n);
out:
	free(out.p);
	free(raw.p);
	return rc;
}

struct wal_part {
	struct wal_part_info info;
	unsigned char *file, *raw;
	size_t size, off, rawcap, rawlen, rawoff;
	uint32_t block, seed;
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
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
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
	if (get16(h + 8) != 1 || h[10] != 1) {
		rc = wal_seterr(WAL_ECORRUPT, "partition '%s': unsupported version %u or compression %u", p->name,
		                get16(h + 8), h[10]);
		goto fail;
	}
	p->info.wal_id = get64(h + 16);
	p->seed = wal_seed(p->info.wal_id);
	if (get32(h + 60) != (uint32_t)crc32(p->seed, h, 60)) {
		rc = wal_seterr(WAL_ECORRUPT, "partition '%s': header checksum mismatch", p->name);
		goto fail;
	}
	p->info.blocks = get32(h + 12);
	p->info.first_lsn = get64(h + 24);
	p->info.last_lsn = get64(h + 32);
	p->info.points = get64(h + 40);
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
	if (get32(h + 8) != (uint32_t)crc32_z(p->seed, h + 12, clen))
		return wal_seterr(WAL_ECORRUPT, "partition '%s' offset %zu: block checksum mismatch", p->name, p->off);
	if (ulen > p->rawcap) {
		void *q = realloc(p->raw, ulen);
		if (!q)
			return wal_seterr(WAL_ENOMEM, "out of memory reading a partition");
		p->raw = q;
		p->rawcap = ulen;
	}
	uLongf n = ulen;
	if (uncompress(p->raw, &n, h + 12, clen) != Z_OK || n != ulen)
		return wal_seterr(WAL_ECORRUPT, "partition '%s' offset %zu: block does not decompress", p->name, p->off);
	p->rawlen = ulen;
	p->rawoff = 0;
	p->off += 12 + clen;
	p->block++;
	return 0;
}

int wal_part_next(wal_part_t *p, const unsigned char **payload, size_t *len)
{
	int rc;

	while (p->rawoff >= p->rawlen) {
		if (p->block == p->info.blocks) {
			if (p->off != p->size)
				return wal_seterr(WAL_ECORRUPT, "partition '%s': %zu bytes after the last block", p->name,
				                  p->size - p->off);
			return 0;
		}
		if ((rc = next_block(p)) != 0)
			return rc;
	}
	if (p->rawlen - p->rawoff < 4 || get32(p->raw + p->rawoff) > p->rawlen - p->rawoff - 4)
		return wal_seterr(WAL_ECORRUPT, "partition '%s': bad record in block %u", p->name, p->block);
	*len = get32(p->raw + p->rawoff);
	*payload = p->raw + p->rawoff + 4;
	p->rawoff += 4 + *len;
	return 1;
}
