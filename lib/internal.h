/*
 * internal.h - shared between the library's modules, never installed.
 */
#ifndef WALCTL_INTERNAL_H
#define WALCTL_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "walctl.h"

#if defined(__GNUC__)
#define WAL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define WAL_LIKELY(x)    __builtin_expect(!!(x), 1)
#define WAL_UNLIKELY(x)  __builtin_expect(!!(x), 0)
#else
#define WAL_PRINTF(a, b)
#define WAL_LIKELY(x)   (x)
#define WAL_UNLIKELY(x) (x)
#endif

/* error.c: record the detail of an error for wal_errmsg(); returns err. */
int wal_seterr(int err, const char *fmt, ...) WAL_PRINTF(2, 3);
/* errno as a WAL_E code: ENOSPC/EDQUOT -> WAL_ENOSPC, ENOENT -> WAL_ENOENT. */
int wal_errno_code(int e);

/* Grow *p (of *cap elements of ELEM bytes) to hold at least NEED, doubling.
 * 0, or WAL_ENOMEM with the detail recorded. */
int wal_grow(void **p, size_t *cap, size_t need, size_t elem);

/* Little-endian field access (format.c refuses to build on big-endian hosts). */
static inline void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}
static inline void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static inline void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t get32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static inline uint64_t get64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* format.c: the on-disk layout. */
#define WAL_MAGIC      "WALCTL\x1a\x01"
#define WAL_CSUM_CRC32 1

struct seg_header {
	uint16_t version;
	uint8_t csum_type, flags;
	uint64_t wal_id, seq, first_lsn, prev_last_lsn;
	int64_t created_ns;
	uint32_t max_entry;
};

struct frame_header {
	uint32_t len;
	uint8_t type, flags;
	uint64_t lsn;
	int64_t time_ns;
	uint64_t watermark;
	uint32_t payload_crc;
};

uint32_t wal_seed(uint64_t wal_id);

/* One CBOR data item of the kinds walctl's payloads use (points.c): its
 * type and value; a text string is handed over in place (p, n).  Any other
 * item (byte strings, maps, tags, null, undefined, indefinite strings,
 * simple values) and a truncated or malformed one are WAL_EPARSE.  *used
 * receives the bytes it took: its head, and a text string's bytes. */
enum { IT_NONE, IT_UINT, IT_NEG, IT_TEXT, IT_ARRAY, IT_INDEF, IT_BREAK, IT_FLOAT, IT_BOOL, IT_OTHER };
struct item {
	int type;
	uint64_t u; /* IT_UINT, IT_NEG (the value is -1 - u), IT_ARRAY (its length) */
	double d;   /* IT_FLOAT, whether half, single or double */
	int b;      /* IT_BOOL */
	const unsigned char *p;
	size_t n;
};
int wal_cbor_item(const unsigned char *p, size_t len, struct item *it, size_t *used);
/* CRC-32 (IEEE 802.3, reflected: zlib's crc32) of buf, continuing from crc
 * (0 to start). */
uint32_t wal_crc32(uint32_t crc, const void *buf, size_t len);
void seg_header_encode(unsigned char out[WAL_SEG_HEADER_SIZE], const struct seg_header *h);
/* 0 ok, else a reason ("bad magic", "unsupported format version 7", ...). */
const char *seg_header_decode(const unsigned char *buf, size_t len, struct seg_header *h);
int seg_header_version(const unsigned char *buf, size_t len);
void frame_header_encode(unsigned char out[WAL_FRAME_HEADER_SIZE], const struct frame_header *f, uint32_t seed);
/* 1 if the header's CRC matches (and fills f), else 0. */
int frame_header_decode(const unsigned char *buf, uint32_t seed, struct frame_header *f);
void seg_name(char out[32], uint64_t first_lsn);
/* 1 and *lsn if NAME is "<16 hex>.wal". */
int seg_name_parse(const char *name, uint64_t *lsn);
/* "<first LSN>-<last LSN>.part", 16 hexadecimal digits each: 1, else 0. */
int part_name_parse(const char *name, uint64_t *first, uint64_t *last);

/* wal.c, for the reclamation in view.c: hold the writer (appends wait)
 * and learn its active segment; sync what was appended (held); release. */
int wal_hold(wal_t *w, char *active, size_t cap);
int wal_sync_held(wal_t *w);
/* Make the WAL durable through LSN (appended already), whatever the sync
 * mode: a sync unless one covered it. */
int wal_sync_through(wal_t *w, uint64_t lsn);
void wal_release(wal_t *w);
const char *wal_waldir(const wal_t *w);

/* view.c: fsync every segment of DIR/wal. */
int wal_sync_segments(const char *datadir);

/* fsutil.c: crash-safe file operations. */
int fs_fsync_dir(const char *dir);
int fs_mkdir_p(const char *dir); /* creates and fsyncs parents */
/* Cut PATH to SIZE bytes and fsync it (its directory entry is unchanged). */
int fs_truncate_synced(const char *path, uint64_t size);
int fs_write_all(int fd, const void *buf, size_t len, uint64_t off);
/* Open a file of the data directory (a segment, partition, cursor,
 * quarantine record) with FLAGS: never blocks, whatever sits there, and
 * takes a regular file only (a FIFO, socket or device in its place is
 * WAL_EIO naming it: an operational error, exit 8).  0 and *fd, or the
 * WAL_E code with the detail recorded; errno says why open failed. */
int fs_open_file(const char *path, int flags, int *fd);
int fs_read_all(int fd, void *buf, size_t len, uint64_t off, size_t *got);
/* Write a whole new file: temp, fsync, rename, fsync directory. */
int fs_write_atomic(const char *dir, const char *name, const void *buf, size_t len);
int fs_lock(const char *dir, int *fd_out); /* DIR/LOCK, naming the holder's pid */
/* hwm.c: 1 if WALDIR holds NAME.next, the header of the segment of WAL
 * WAL_ID that follows LAST (a rotation cut off before its rename). */
int wal_next_pending(const char *waldir, uint64_t wal_id, uint64_t last);
/* quarantine.c: one stamp format; MANIFEST, AFTER and REPLAY records. */
void wal_q_stamp(char *out, size_t cap);
/* Write " key=value" into out (quoted and escaped as needed); the length
 * it needs, like snprintf. */
size_t wal_q_put(char *out, size_t cap, const char *key, const char *val);
/* One record, built field by field with wal_q_put's quoting: how every
 * MANIFEST, AFTER and REPLAY line is written. */
struct wal_q_rec {
	char s[4096];
	size_t n;
};
void wal_q_rec(struct wal_q_rec *r); /* empty it */
void wal_q_str(struct wal_q_rec *r, const char *key, const char *val);
void wal_q_u64(struct wal_q_rec *r, const char *key, uint64_t v);
void wal_q_range(struct wal_q_rec *r, const char *key, uint64_t first, uint64_t last); /* "first-last" */
void wal_q_flag(struct wal_q_rec *r, const char *flag);
const char *wal_q_end(struct wal_q_rec *r); /* the line, with its newline */
struct wal_q_field {
	const char *key, *val; /* val NULL: a flag */
};
/* Split one record line into at most max fields, unescaped into buf: the
 * number of fields, or -1 if the line is malformed or too long. */
int wal_q_parse(const char *line, struct wal_q_field *f, size_t max, char *buf, size_t cap);
/* The value of key ("" for a flag), or NULL. */
const char *wal_q_get(const struct wal_q_field *f, size_t n, const char *key);
/* Read a whole file; *buf is freed with free(). */
int wal_q_read_whole(const char *path, unsigned char **buf, size_t *len);
/* Read file NAME of quarantine directory QDIR. */
int wal_q_read_saved(const char *qdir, const char *name, unsigned char **b, size_t *n);
void wal_q_sha_of(const void *p, size_t n, char out[65]); /* hex sha256 */
int wal_q_sha_file(const char *path, uint64_t *size, char out[65]);
/* Remove DIR/NAME (gone already is fine) and fsync DIR. */
int fs_unlink_synced(const char *dir, const char *name);
/* Save bytes OFF..OFF+LEN of PATH, known in the data directory as REL
 * (wal/SEGMENT, consumers/NAME), to a new quarantine whose MANIFEST names
 * COMMAND and records OP and REASON, all synced, before the caller
 * removes them. */
int fs_quarantine(const char *datadir, const char *path, const char *rel, const char *command, const char *op,
                  uint64_t off, uint64_t len, const char *reason, char *stamp_out, size_t cap);
uint64_t wal_random64(void);

/* sha256.c */
struct wal_sha256 {
	uint32_t h[8];
	uint64_t len;
	unsigned char buf[64];
};
void wal_sha256_init(struct wal_sha256 *s);
void wal_sha256_update(struct wal_sha256 *s, const void *data, size_t n);
void wal_sha256_hex(struct wal_sha256 *s, char out[65]);

/* scan.c: what the writer needs to continue a WAL. */
struct wal_tail {
	uint64_t wal_id;
	uint64_t last_lsn;
	char newest[64];      /* newest segment's file name, "" if none */
	uint64_t newest_end;  /* offset just after its last valid frame */
	uint64_t newest_size; /* its size on disk */
	int newest_sealed;
};
int wal_scan_tail(wal_scan_t *s, struct wal_tail *t);

/* What a scan that read the whole WAL found, for opening it to append: its
 * tail, its newest segment, the last checkpoint, and whether it found a
 * torn tail or damage. */
struct wal_found {
	struct wal_tail t;
	struct wal_segment_info newest;
	uint64_t ckpt;
	int torn, damage;
};
int wal_scan_found(wal_scan_t *s, struct wal_found *f);
/* wal_open for a caller that holds DIR/LOCK and has read the whole WAL
 * since it took it (a repair's survey), found f and cut the torn tail f
 * found, if any: it takes the tail from f instead of reading the WAL again,
 * unless the WAL no longer ends where f says (then it scans).  f NULL:
 * wal_open. */
int wal_open_found(wal_t **out, const char *dir, const struct wal_opts *opts, const struct wal_found *f);

#endif
