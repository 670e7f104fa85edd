/*
 * walctl.h - the walctl WAL core library: one public header.
 *
 * The library writes, reads and classifies write-ahead logs of time-series
 * points.  It never prints and never exits: fallible functions return 0 or a
 * negative WAL_E* code whose meaning never changes, and leave a detail
 * message ("segment '0000000000000001.wal' offset 4096: checksum mismatch")
 * that wal_errmsg() returns for the calling thread.
 *
 * Ownership: results returned through **out belong to the caller and are
 * released with the matching _close/_free.  Data handed back inside structs
 * (entry payloads, decoded strings) is borrowed until the next call on the
 * same handle.
 */
#ifndef WALCTL_H
#define WALCTL_H

#include <stddef.h>
#include <stdint.h>

#define WAL_FORMAT_VERSION 1
#define WAL_VERSION_STRING "0.1.0"

/* Error codes: never renumbered. */
enum {
	WAL_OK = 0,
	WAL_EIO = -1,       /* read, write or open failed */
	WAL_ENOMEM = -2,    /* out of memory */
	WAL_EINVAL = -3,    /* bad argument */
	WAL_ELOCKED = -4,   /* another writer holds DIR/LOCK */
	WAL_ECORRUPT = -5,  /* damage to durable data: refuse to write */
	WAL_ENOENT = -6,    /* no such WAL, segment or file */
	WAL_ETOOBIG = -7,   /* entry larger than the maximum entry size */
	WAL_ESYNC = -8,     /* fsync/fdatasync failed: the writer is stopped */
	WAL_ENOSPC = -9,    /* disk full */
	WAL_EPARSE = -10,   /* malformed input (line protocol, payload) */
	WAL_ESTOPPED = -11, /* the writer stopped after an earlier failure */
};

const char *wal_strerror(int err); /* fixed text, never NULL */
const char *wal_errmsg(void);      /* detail of this thread's last error */

/* ------------------------------------------------------------------ frames */

enum wal_type {
	WAL_T_POINTS = 1,       /* a batch of points (CBOR) */
	WAL_T_RAW = 2,          /* opaque bytes */
	WAL_T_CHECKPOINT = 3,   /* storage durable through an LSN (CBOR) */
	WAL_T_SEAL = 4,         /* last frame of a rotated segment (CBOR) */
	WAL_T_CLOSE = 5,        /* clean close marker, empty payload */
	WAL_T_LOSS = 6,         /* LSNs a repair gave up: a known, repaired loss (CBOR) */
	WAL_T_STORAGE_LOSS = 7, /* points of earlier LSNs storage lost: a known loss (CBOR) */
};
#define WAL_T_IGNORABLE 0x80 /* readers that do not know the type skip it */

const char *wal_type_name(unsigned type); /* "points", "raw", ... */
int wal_type_parse(const char *name);     /* type code, or -1 */

#define WAL_SEG_HEADER_SIZE   64
#define WAL_FRAME_HEADER_SIZE 40
#define WAL_DEFAULT_MAX_ENTRY (64u << 20)

/* One entry as read back.  payload is borrowed until the next call. */
struct wal_entry {
	uint64_t lsn;
	uint64_t watermark; /* highest LSN known durable when written */
	int64_t time_ns;    /* when the frame was written */
	unsigned type;      /* including WAL_T_IGNORABLE */
	unsigned flags;
	const unsigned char *payload;
	uint32_t len;
	const char *segment; /* file name of the segment */
	uint64_t offset;     /* byte offset of the frame header */
};

/* ------------------------------------------------------------------ writer */

enum wal_sync_mode { WAL_SYNC_FDATASYNC = 0, WAL_SYNC_FSYNC = 1, WAL_SYNC_ASYNC = 2 };

struct wal_scan;
struct wal_opts {
	enum wal_sync_mode sync;
	uint64_t max_segment_size;  /* 0: 128 MiB */
	int64_t max_segment_age_ns; /* 0: 1 h */
	uint32_t max_entry_size;    /* 0: WAL_DEFAULT_MAX_ENTRY */
	/* Called with every entry the scan of wal_open reads, in LSN order,
	 * before wal_open returns: a caller that reads the WAL as it opens it
	 * (the engine's replay) reads it once.  Nonzero stops wal_open with
	 * that code. */
	int (*visit)(void *ctx, struct wal_scan *s, const struct wal_entry *e);
	void *visit_ctx;
	/* A WAL that ends below what a partition or a live consumer's cursor
	 * shows (wal_hwm_gather) lost its end: wal_open refuses it
	 * (WAL_ECORRUPT), unless this is set (a salvage), when the missing LSNs
	 * are recorded as a LOSS entry and the WAL goes on past them. */
	int record_lost_end;
};

typedef struct wal wal_t;

/* Open (creating if needed) the data directory DIR for writing: takes
 * DIR/LOCK, scans the WAL, moves a torn tail to DIR/quarantine/ and cuts it,
 * refuses damage to durable data with WAL_ECORRUPT.  *out is freed by
 * wal_close(). */
int wal_open(wal_t **out, const char *dir, const struct wal_opts *opts);

/* Append one frame.  Safe to call from one thread while another calls
 * wal_sync().  *lsn_out (may be NULL) receives the frame's LSN. */
int wal_append(wal_t *w, unsigned type, const void *payload, size_t len, uint64_t *lsn_out);

/* Make every frame appended so far durable (group commit: frames appended
 * while a sync is in flight are covered by the next one).  A failure stops
 * the writer for good: every later call returns WAL_ESTOPPED. */
int wal_sync(wal_t *w);

uint64_t wal_last_lsn(const wal_t *w);  /* last LSN appended */
uint64_t wal_id(const wal_t *w);        /* the WAL id */
uint64_t wal_rotations(const wal_t *w); /* segments sealed since open */
uint64_t wal_bytes_appended(const wal_t *w);
void wal_segment(wal_t *w, char *buf, size_t cap); /* the active segment's name */
uint64_t wal_durable_lsn(const wal_t *w);          /* highest LSN known durable */
const char *wal_torn_note(const wal_t *w);         /* what wal_open cut, or NULL */
uint64_t wal_open_checkpoint(const wal_t *w);      /* the last checkpoint wal_open's scan read */

/* Sync, append the CLOSE marker, sync it, release the lock and free.  NULL
 * is fine.  Returns the first error met, if any. */
int wal_close(wal_t *w);

/* Let go of the writer as if the process had died: no sync, no CLOSE
 * marker; the lock is released.  For crash drills and tests. */
void wal_abandon(wal_t *w);

/* ---------------------------------------------------------------- scanning */

/* What a finding means for the operator; the values are verify's exit
 * status bits. */
enum wal_class {
	WAL_CLASS_NOTICE = 0, /* informational */
	WAL_CLASS_TORN = 2,   /* torn or unsynced tail: nothing acknowledged lost */
	WAL_CLASS_DAMAGE = 4, /* damage to durable data */
};

/* What a finding is; wal_finding_kind_name gives its stable slug. */
enum wal_fkind {
	WAL_F_CHECKSUM_MISMATCH = 1,
	WAL_F_PAYLOAD_CHECKSUM,
	WAL_F_TRUNCATED,
	WAL_F_BAD_LENGTH,
	WAL_F_ZERO_TAIL,
	WAL_F_LSN_GAP,
	WAL_F_LSN_DUPLICATE,
	WAL_F_LSN_REGRESSION,
	WAL_F_MISSING_SEGMENT,
	WAL_F_UNKNOWN_TYPE,
	WAL_F_BAD_PAYLOAD,
	WAL_F_KNOWN_LOSS,
	WAL_F_BAD_MAGIC,
	WAL_F_BAD_VERSION,
	WAL_F_BAD_HEADER,
	WAL_F_FOREIGN_SEGMENT,
	WAL_F_NAME_MISMATCH,
	WAL_F_DATA_AFTER_SEAL,
	WAL_F_MERGE_LEFTOVER,
	WAL_F_CHECKPOINT_BEYOND,
	WAL_F_BAD_CHECKPOINT,
	WAL_F_PARTITION_BEYOND,
	WAL_F_BAD_SEAL, /* a SEAL that does not describe the segment it closes */
};
const char *wal_finding_kind_name(enum wal_fkind k); /* "checksum-mismatch", ... */

struct wal_finding {
	enum wal_class cls;
	enum wal_fkind kind;
	char segment[64];   /* file name, or "" */
	uint64_t offset;    /* byte offset in the segment */
	uint64_t length;    /* bytes affected (0 if unknown) */
	uint64_t lsn_first; /* LSN range affected (0 if unknown) */
	uint64_t lsn_last;
	uint64_t vouched_by; /* LSN of a later frame whose watermark covers it */
	char message[256];   /* "checksum mismatch in frame header" */
};

struct wal_segment_info {
	char name[64];
	uint64_t seq, first_lsn, prev_last_lsn, wal_id;
	int64_t created_ns;
	uint64_t last_lsn; /* last valid LSN read (0: none) */
	uint64_t entries, bytes;
	int sealed, closed, header_ok;
};

struct wal_checkpoint;
struct wal_scan;
struct wal_scan_opts {
	uint32_t max_entry_size; /* 0: WAL_DEFAULT_MAX_ENTRY */
	int follow;              /* tail a live WAL: an incomplete tail is "not yet" */
	int check_payloads;      /* 1: envelope of every POINTS payload, 2: every point */
	int decode_unstored;     /* with 1: every point of the POINTS entries after
	                            the last checkpoint seen so far, which a replay
	                            is about to store */
	/* Called for every CHECKPOINT the scanner trusts (its LSN is before its
	 * own): what it names is storage's, and storage's owner checks it
	 * (wal_check_storage), recording what is wrong with
	 * wal_scan_add_finding.  Nonzero: the payload is reported bad. */
	int (*checkpoint)(void *ctx, struct wal_scan *s, const struct wal_entry *e, const struct wal_checkpoint *c);
	void *ctx;
	/* follow: the segment holding LSN first..last was removed (reclaimed by
	 * a writer once a checkpoint covered it) before the scan could open
	 * it.  Return 1 when the caller has read those LSNs elsewhere (from
	 * storage): the scan goes on without a finding; 0 for a missing-segment
	 * finding; <0 an error, which wal_scan_next returns. */
	int (*gone)(void *gone_ctx, uint64_t first, uint64_t last);
	void *gone_ctx;
};

typedef struct wal_scan wal_scan_t;

/* Scan a WAL: PATH is a data directory, its wal/ directory or one segment.
 * Several segments may be given as an array (they are sorted by name). */
int wal_scan_open(wal_scan_t **out, const char *const *paths, size_t npaths, const struct wal_scan_opts *opts);

/* Next valid entry, in LSN order: 1 entry, 0 end, <0 error (I/O).  Damage is
 * skipped over and recorded as findings; entries of a torn tail are never
 * returned.  e's data is borrowed until the next call. */
int wal_scan_next(wal_scan_t *s, struct wal_entry *e);

/* Findings recorded so far (complete once wal_scan_next returned 0). */
size_t wal_scan_nfindings(const wal_scan_t *s);
const struct wal_finding *wal_scan_finding(const wal_scan_t *s, size_t i);
size_t wal_scan_nsegments(const wal_scan_t *s);
const struct wal_segment_info *wal_scan_segment(const wal_scan_t *s, size_t i);
uint64_t wal_scan_id(const wal_scan_t *s);         /* the WAL id (0 if none) */
/* The last LSN read so far, a LOSS entry's range included (0: none). */
uint64_t wal_scan_last_lsn(const wal_scan_t *s);
/* Evidence of which WAL this is that conflicts: another WAL id (0: none)
 * than the one storage names (*named: 0 when storage names none), either
 * a partition's or the segments' when none carries storage's. */
uint64_t wal_scan_id_conflict(const wal_scan_t *s, uint64_t *named);
const char *wal_scan_waldir(const wal_scan_t *s);  /* directory of the segments */
const char *wal_scan_datadir(const wal_scan_t *s); /* its data directory, or "" */
int wal_scan_deep(const wal_scan_t *s);            /* every point is decoded */
/* Record a finding at offset of the segment being read (from a checkpoint
 * callback). */
int wal_scan_add_finding(wal_scan_t *s, enum wal_class cls, enum wal_fkind kind, uint64_t offset, uint64_t length,
                         uint64_t lsn_first, uint64_t lsn_last, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 8, 9)))
#endif
    ;
int wal_scan_class(const wal_scan_t *s); /* OR of the findings' classes */
/* The highest LSN that a trusted CHECKPOINT read so far says storage holds (0: none). */
uint64_t wal_scan_checkpoint(const wal_scan_t *s);
void wal_scan_close(wal_scan_t *s);
/* The LSN through which storage is durable: the last checkpoint's (0: none). */
int wal_last_checkpoint(const char *const *paths, size_t npaths, uint64_t *ckpt);

/* ----------------------------------------------------------------- points */

enum wal_kind { WAL_FLOAT = 1, WAL_INT = 2, WAL_UINT = 3, WAL_STRING = 4, WAL_BOOL = 5 };

struct wal_str {
	const char *p;
	size_t n;
};

struct wal_tag {
	struct wal_str key, val;
};

struct wal_field {
	struct wal_str key;
	enum wal_kind kind;
	union {
		double f;
		int64_t i;
		uint64_t u;
		int b;
		struct wal_str s;
	} v;
};

/* A point.  Strings are not NUL-terminated and are borrowed. */
struct wal_point {
	struct wal_str measurement;
	struct wal_tag *tags;
	size_t ntags;
	struct wal_field *fields;
	size_t nfields;
	int64_t time;
};

/* Line-protocol parser.  Feed it a buffer of whole lines (and the rest at
 * EOF); each wal_lp_next() returns one point or one error, with the line
 * number.  Points borrow from the buffer and from the parser's scratch
 * space until the next call. */
enum wal_precision { WAL_PREC_NS = 0, WAL_PREC_US, WAL_PREC_MS, WAL_PREC_S };
int wal_precision_parse(const char *s); /* "ns", "us", "ms", "s" (or "1ns"...), -1 */

typedef struct wal_lp wal_lp_t;
int wal_lp_new(wal_lp_t **out, enum wal_precision prec, int64_t default_time_ns);
void wal_lp_free(wal_lp_t *p);
void wal_lp_set_default_time(wal_lp_t *p, int64_t default_time_ns);
/* Point the parser at buf[0..len).  first_line is the line number of buf[0].
 * at_eof says that no more input follows. */
void wal_lp_input(wal_lp_t *p, const char *buf, size_t len, uint64_t first_line, int at_eof);
/* 1 point, 0 needs more input (see wal_lp_consumed), WAL_EPARSE bad line
 * (wal_lp_error tells why; the line was skipped), other <0 errors. */
int wal_lp_next(wal_lp_t *p, struct wal_point *out);
size_t wal_lp_consumed(const wal_lp_t *p);    /* bytes of input fully used */
uint64_t wal_lp_line(const wal_lp_t *p);      /* line of the last point/error */
uint64_t wal_lp_next_line(const wal_lp_t *p); /* line of the first unconsumed byte */
const char *wal_lp_error(const wal_lp_t *p);  /* reason of the last WAL_EPARSE */
/* InfluxDB export files (influx_inspect export) are line protocol with
 * directives in comments: the statements between "# DDL" and "# DML" are
 * skipped (counted here), and "# CONTEXT-DATABASE: NAME" names the
 * database of the points after it ("# CONTEXT-RETENTION-POLICY:" is a
 * comment: walctl has no retention policies). */
uint64_t wal_lp_ddl_skipped(const wal_lp_t *p);
/* How many CONTEXT-DATABASE lines were read (0: none), the last one's name
 * (db->p NULL when it named no valid database: err says why) and line. */
uint64_t wal_lp_context(const wal_lp_t *p, struct wal_str *db, uint64_t *line, const char **err);

/* Write a point as one line of line protocol (with '\n') into buf; returns
 * the length it needs (like snprintf). */
size_t wal_lp_format(char *buf, size_t cap, const struct wal_point *pt);

/* POINTS payload encoder (libcbor streaming).  Reuses its buffers: adding a
 * point allocates nothing once the buffers have grown. */
typedef struct wal_enc wal_enc_t;
int wal_enc_new(wal_enc_t **out);
void wal_enc_free(wal_enc_t *e);
int wal_enc_begin(wal_enc_t *e, const char *db, size_t dblen);
int wal_enc_add(wal_enc_t *e, const struct wal_point *pt);
/* Finish the batch; *payload is borrowed until the next wal_enc_begin.
 * headroom bytes are left free before *payload for a frame header. */
int wal_enc_finish(wal_enc_t *e, const unsigned char **payload, size_t *len);
size_t wal_enc_count(const wal_enc_t *e);
size_t wal_enc_size(const wal_enc_t *e);
/* An upper bound of the bytes point PT adds to a POINTS payload, and the
 * most a point may take so that a payload of one point for a database of
 * DBLEN bytes fits the WAL's maximum entry size: a larger point is a
 * rejected line, not an error of the WAL. */
size_t wal_point_encoded_max(const struct wal_point *pt);
#define WAL_POINT_MAX(dblen) (WAL_DEFAULT_MAX_ENTRY - 32 - (size_t)(dblen))

/* POINTS payload decoder (libcbor streaming). */
typedef struct wal_dec wal_dec_t;
int wal_dec_new(wal_dec_t **out);
void wal_dec_free(wal_dec_t *d);
/* Start on a payload; *db is borrowed from it. */
int wal_dec_begin(wal_dec_t *d, const unsigned char *payload, size_t len, struct wal_str *db);
/* 1 point, 0 end of batch, WAL_EPARSE malformed payload. */
int wal_dec_next(wal_dec_t *d, struct wal_point *out);
/* The database and the number of points of a payload, without decoding
 * them (its items are walked, not read): WAL_EPARSE if its shape is not
 * that of points.  A payload it counts may still not decode. */
int wal_dec_count(const unsigned char *payload, size_t len, struct wal_str *db, uint64_t *n);

/* SEAL and CHECKPOINT payloads. */
struct wal_seal {
	uint64_t entries, first_lsn, last_lsn, bytes;
};
size_t wal_seal_encode(unsigned char *buf, size_t cap, const struct wal_seal *s);
int wal_seal_decode(const unsigned char *p, size_t len, struct wal_seal *s);

/* A CHECKPOINT names the partitions its flush wrote, as paths relative to
 * DIR/data.  Decoding keeps the first npartitions_cap of them in the
 * caller's array (which may be NULL with a cap of 0). */
struct wal_checkpoint {
	uint64_t lsn; /* storage is durable through this LSN */
	int64_t time_ns;
	size_t npartitions;
	struct wal_str *partitions;
};
size_t wal_checkpoint_encode(unsigned char *buf, size_t cap, const struct wal_checkpoint *c);
int wal_checkpoint_decode(const unsigned char *p, size_t len, struct wal_checkpoint *c, struct wal_str *names,
                          size_t cap);
/* 1 if E is a CHECKPOINT that can be trusted, with *c filled: it decodes,
 * and its LSN is below its own frame's (a CHECKPOINT vouches only for what
 * came before it; one that claims more is damage).  0 otherwise. */
int wal_checkpoint_of(const struct wal_entry *e, struct wal_checkpoint *c);

/* LOSS payload: the LSNs first..last (the frame's own LSN is first) were
 * lost to damage and given up by a repair; reason is borrowed. */
struct wal_loss {
	uint64_t first_lsn, last_lsn;
	struct wal_str reason;
};
size_t wal_loss_encode(unsigned char *buf, size_t cap, const struct wal_loss *l);
int wal_loss_decode(const unsigned char *p, size_t len, struct wal_loss *l);

/* STORAGE-LOSS payload: the points of LSN first..last in storage partition
 * PARTITION (its path under data/) were lost, the WAL no longer holding
 * them, and a repair recorded it; its own LSN is after them.  Written with
 * WAL_T_IGNORABLE.  Strings are borrowed. */
struct wal_storage_loss {
	uint64_t first_lsn, last_lsn;
	struct wal_str partition, reason;
};
size_t wal_storage_loss_encode(unsigned char *buf, size_t cap, const struct wal_storage_loss *l);
int wal_storage_loss_decode(const unsigned char *p, size_t len, struct wal_storage_loss *l);

/* ------------------------------------------------------------- storage */

/* Write a storage partition of database DB at zlib LEVEL: add the POINTS
 * payloads of increasing LSNs, then finish: written to a temporary file,
 * synced, renamed to <first>-<last>.part and its directory synced.  relpath
 * receives its path relative to DIR/data, as a CHECKPOINT names it.
 * wal_pw_finish and wal_pw_abort free the writer. */
typedef struct wal_pw wal_pw_t;
int wal_pw_open(wal_pw_t **out, const char *datadir, uint64_t wal_id, struct wal_str db, int level);
/* The ISA-L igzip level (1 to 3) that compression level 1 to 9 maps to. */
int wal_isal_level(int level);
int wal_pw_add(wal_pw_t *w, uint64_t lsn, const void *payload, size_t len);
uint64_t wal_pw_bytes(const wal_pw_t *w);
int wal_pw_finish(wal_pw_t *w, char *relpath, size_t relcap);
void wal_pw_abort(wal_pw_t *w);
/* A flush: each POINTS payload goes to the partition of its database
 * (one whose envelope does not decode is refused, WAL_ECORRUPT; whether its
 * points decode is the caller's to check; a partition past 64 MiB is
 * finished and another begun); wal_flush_checkpoint finishes them all and
 * appends the CHECKPOINT through THROUGH naming every one.  *lsn_out (may be
 * NULL) receives its LSN.  wal_flush_free abandons what was not finished. */
typedef struct wal_flush wal_flush_t;
int wal_flush_new(wal_flush_t **out, const char *datadir, uint64_t wal_id, int level);
int wal_flush_add(wal_flush_t *f, uint64_t lsn, const void *payload, size_t len);
int wal_flush_finish(wal_flush_t *f); /* finish every partition: written, synced, renamed */
int wal_flush_checkpoint(wal_flush_t *f, wal_t *w, uint64_t through, uint64_t *lsn_out);
/* Named consumers (DIR/consumers/NAME, consumers.c): each holds a cursor,
 * the highest LSN it has delivered onward (0: none), rewritten crash-safely
 * (temp, fsync, rename, fsync directory).  While live, a consumer holds back
 * reclamation: no segment holding an LSN above its cursor is removed, until
 * the WAL after its cursor grows past a lag limit; then it is marked lost. */
#define WAL_CONSUMER_NAME_MAX    63
#define WAL_CONSUMER_LAG_DEFAULT ((uint64_t)1 << 30) /* bytes of WAL after a cursor: 1 GiB */
struct wal_consumer {
	char name[WAL_CONSUMER_NAME_MAX + 1];
	uint64_t lsn; /* the cursor */
	int lost;
	char why[200]; /* lost: why */
};
int wal_consumer_name_ok(const char *name);
/* A new consumer with cursor LSN; WAL_EINVAL when it exists. */
int wal_consumer_add(const char *datadir, const char *name, uint64_t lsn);
int wal_consumer_get(const char *datadir, const char *name, struct wal_consumer *c); /* WAL_ENOENT: none */
/* Move the cursor forward (never back; not for a lost consumer). */
int wal_consumer_advance(const char *datadir, const char *name, uint64_t lsn);
int wal_consumer_lose(const char *datadir, const char *name, const char *why);
/* Move a live cursor back to LSN (a repair that takes back what it had
 * passed: truncate --after --rewind-consumers). */
int wal_consumer_rewind(const char *datadir, const char *name, uint64_t lsn);
/* Its cursor file is saved to a new quarantine (*stamp) first. */
int wal_consumer_drop(const char *datadir, const char *name, char *stamp, size_t cap);
/* The segments of DATADIR's WAL, oldest first, with the LSNs each holds
 * and its bytes: the ranges come from the names (a segment's last LSN is
 * the next one's first less one), the newest's from a scan of it alone;
 * *last_lsn is the WAL's (0: none).  Free *out. */
struct wal_seg_span {
	uint64_t first_lsn, last_lsn, bytes;
};
int wal_seg_spans(const char *datadir, struct wal_seg_span **out, size_t *n, uint64_t *last_lsn);
/* A consumer's lag in bytes: those of the segments holding an LSN above
 * CURSOR, which reclamation keeps for it. */
uint64_t wal_seg_lag(const struct wal_seg_span *s, size_t n, uint64_t cursor);
/* Make segment NAME of DATADIR's WAL durable (fdatasync), as a reader
 * does before it hands entries on that no durable mark covers yet: a
 * power cut then cannot take them back.  A segment no longer there was
 * reclaimed, which happens only once storage holds it durably: 0. */
int wal_segment_sync(const char *datadir, const char *name);
/* Every consumer, by name; free *out.  A cursor file that cannot be read
 * fails the whole list (with what is wrong with it). */
int wal_consumers_list(const char *datadir, struct wal_consumer **out, size_t *n);
/* Every cursor file, by name, each read (rc 0) or with the error that
 * reading it met (rc, why): for verify, which reports each.  Free *out. */
struct wal_consumer_file {
	struct wal_consumer c; /* its name, always; the rest when rc is 0 */
	int rc;
	char why[512];
};
int wal_consumers_scan(const char *datadir, struct wal_consumer_file **out, size_t *n);
/* A cursor past the WAL's last LSN WAL_LAST says LSNs were delivered that
 * the WAL does not hold: the cursor is damaged, or the WAL lost its end.
 * 0, or WAL_ECORRUPT naming the consumer's file and the LSNs missing. */
int wal_consumer_check_end(const struct wal_consumer *c, uint64_t wal_last);

/* The LSN high-water mark of a data directory outside its WAL (hwm.c):
 * every LSN the directory has shown anyone stays below the next LSN a
 * writer hands out.  hard: the highest LSN a partition's name or a live
 * consumer's cursor shows (a WAL ending below it lost its end: damage);
 * removed: the highest LSN a repair of WAL wal_id took out and recorded in
 * the quarantine (a known loss, which a writer records and passes). */
struct wal_hwm {
	uint64_t hard, removed;
	uint64_t hard_wal_id; /* the WAL a partition that shows hard names (0: a cursor's) */
	char hard_what[320], removed_what[320]; /* what shows it, for messages */
};
int wal_hwm_gather(const char *datadir, uint64_t wal_id, struct wal_hwm *h);
/* Add the evidence of a sealed newest segment (NEWEST, of the WAL in
 * WALDIR that ends at LAST): the segment after it existed, unless it waits
 * as NAME.next (a rotation cut off before the rename) or a repair removed
 * what followed.  NEWEST may be NULL (no segment). */
void wal_hwm_seal(const char *waldir, const struct wal_segment_info *newest, uint64_t wal_id, uint64_t last,
                  struct wal_hwm *h);

/* Remove the oldest segments wholly at or below THROUGH (storage holds
 * them) and at or below the cursor of every live consumer, keeping the
 * newest KEEP, once the CHECKPOINT that lets them go is synced (view.c).  A
 * consumer with more than MAX_CONSUMER_LAG bytes of WAL after its cursor
 * is marked lost first, and holds nothing back.  *removed receives how
 * many segments went. */
struct wal_reclaim_opts {
	unsigned keep;
	uint64_t max_consumer_lag; /* 0: WAL_CONSUMER_LAG_DEFAULT */
	void *ctx;
	/* a consumer this call marked lost (may be NULL) */
	void (*lost)(void *ctx, const struct wal_consumer *c, uint64_t lag_bytes);
	/* the consumers could not be read: nothing was removed (may be NULL) */
	void (*held)(void *ctx, const char *why);
};
int wal_reclaim(wal_t *w, uint64_t through, const struct wal_reclaim_opts *ro, unsigned *removed);
size_t wal_flush_npartitions(const wal_flush_t *f);
const char *wal_flush_partition(const wal_flush_t *f, size_t i); /* relative to DIR/data */
void wal_flush_free(wal_flush_t *f);

/* The directory name of a database under DIR/data (percent-escaped). */
size_t wal_db_dirname(char *out, size_t cap, const char *db, size_t n);
/* The longest directory name a database can have, escaped: a file name.
 * 0 if DB (n bytes, not empty) fits, else WAL_EINVAL with the reason. */
#define WAL_DB_DIRNAME_MAX 255
int wal_db_check(const char *db, size_t n);

struct wal_part_info {
	uint64_t wal_id, first_lsn, last_lsn, entries, raw_bytes;
	uint32_t blocks;
};
typedef struct wal_part wal_part_t;
/* Read a partition: checks magic, version, header CRC on open, each block's
 * CRC as it goes.  Payloads are borrowed until the next call. */
int wal_part_open(wal_part_t **out, const char *path);
const struct wal_part_info *wal_part_info(const wal_part_t *p);
/* 1 and the next record, 0 at the end, <0: its entry's LSN (0 in a
 * version 1 partition, which records none; lsn may be NULL) and payload. */
int wal_part_next(wal_part_t *p, uint64_t *lsn, const unsigned char **payload, size_t *len);
void wal_part_close(wal_part_t *p);
/* Every partition under DIR/data, by first LSN; *out is freed with free(). */
struct wal_part_ref {
	char rel[300]; /* relative to DIR/data, as a CHECKPOINT names it */
	uint64_t first_lsn, last_lsn;
};
int wal_part_list(const char *datadir, struct wal_part_ref **out, size_t *n);
/* The WAL id in a partition's header, reading the header alone (magic and
 * CRC checked): WAL_ECORRUPT if it has none valid. */
int wal_part_wal_id(const char *path, uint64_t *id);
/* The WAL storage names: the id in its partitions' headers (0: none), and
 * another id one of them names instead (0: they agree). */
int wal_storage_wal_id(const char *datadir, uint64_t *id, uint64_t *other);
/* The records of partitions REFS[0..n) with an LSN in (from, to], in LSN
 * order, handed to EACH, whose nonzero return stops the reading and is
 * returned: one partition's as they come, several gathered and sorted
 * (their ranges may overlap: one flush's, of several databases).
 * WAL_EINVAL for a partition of version 1, whose records carry no LSN. */
typedef int (*wal_part_each_fn)(void *ctx, const struct wal_part_ref *ref, uint64_t lsn, const unsigned char *payload,
                                size_t len);
int wal_parts_read(const char *datadir, const struct wal_part_ref *const *refs, size_t n, uint64_t from, uint64_t to,
                   wal_part_each_fn each, void *ctx);
/* The partitions above checkpoint LSN ckpt (an interrupted flush's, or
 * named by a checkpoint that was lost): whether the WAL holds every payload
 * in one byte for byte (redundant), and whether it holds an entry for every
 * LSN of its range (held: a replay can store again whatever it should
 * hold).  *out is freed with free(). */
struct wal_orphan {
	struct wal_part_ref ref;
	int redundant, held;
};
/* The entries the WAL holds after a checkpoint, each by LSN, length and
 * payload CRC, which is what tells the two apart: gathered by a scan the
 * caller makes anyway, in LSN order (wal_held_cut forgets those a later
 * checkpoint covers), or read from the WAL when h is NULL.  With hold > 0
 * it also keeps the payloads of the POINTS entries, while they fit in hold
 * bytes: what a replay stores, without reading the WAL again. */
typedef struct wal_held wal_held_t;
int wal_held_new(wal_held_t **out, size_t hold);
int wal_held_add(wal_held_t *h, const struct wal_entry *e);
void wal_held_cut(wal_held_t *h, uint64_t ckpt); /* forget LSNs <= ckpt */
int wal_held_complete(const wal_held_t *h);      /* every POINTS payload is kept */
size_t wal_held_npayloads(const wal_held_t *h);
/* the LSN of the ith POINTS payload kept, and the payload (borrowed) */
uint64_t wal_held_payload(const wal_held_t *h, size_t i, const unsigned char **p, size_t *len);
uint64_t wal_held_last(const wal_held_t *h); /* the last LSN held, or 0 */
void wal_held_free(wal_held_t *h);
/* Segment files in DATADIR/wal now (0 if it cannot be read). */
uint64_t wal_segment_count(const char *datadir);
int wal_part_orphans(const char *datadir, uint64_t ckpt, const wal_held_t *h, struct wal_orphan **out, size_t *n);
/* The partitions above checkpoint LSN ckpt that storage can vouch for when
 * the CHECKPOINT that named them is gone: every one intact, of WAL wal_id,
 * named as it holds, none overlapping another of its database, and every
 * POINTS entry the WAL (h, or read when NULL) holds up to the last of them
 * held by one of them.  Then *out (free it) and *through, their last LSN,
 * for a new CHECKPOINT to name them; else none (*n 0). */
int wal_part_adopt(const char *datadir, uint64_t wal_id, uint64_t ckpt, const wal_held_t *h,
                   struct wal_part_ref **out, size_t *n, uint64_t *through);
/* Remove the redundant partitions above checkpoint LSN ckpt, after syncing
 * the WAL that holds their points: the replay that follows stores them
 * again.  Any other stays where it is, counted in *kept, and in
 * *rebuildable too when the WAL holds its whole range (a repair sets it
 * aside in the quarantine; a replay must not write beside it). */
int wal_part_drop_orphans(const char *datadir, uint64_t ckpt, const wal_held_t *h, unsigned *removed, unsigned *kept,
                          unsigned *rebuildable);
/* What storage holds of a data directory's logical content: the last
 * trusted checkpoint, the partitions holding the LSNs up to it (by first
 * LSN), and a message for each problem found (a partition missing,
 * misnamed, of another WAL, overlapping another, or unreadable).  A
 * partition with a problem is not in the view.  Results are borrowed until
 * wal_view_close. */
typedef struct wal_view wal_view_t;
int wal_view_open(wal_view_t **out, const char *datadir);
/* The same, every block of every partition checked (its CRC) as well. */
int wal_view_open_checked(wal_view_t **out, const char *datadir);
/* The last trusted checkpoint and every partition the trusted ones name,
 * gathered by a scan the caller makes anyway (wal_named_add with every
 * entry; others than a CHECKPOINT are ignored); and the checked view from
 * them, without reading the WAL (wal_id: the scan's). */
typedef struct wal_named wal_named_t;
int wal_named_new(wal_named_t **out);
int wal_named_add(wal_named_t *nm, const struct wal_entry *e);
void wal_named_free(wal_named_t *nm);
int wal_view_open_named(wal_view_t **out, const char *datadir, wal_named_t *nm, uint64_t wal_id);
/* 1 if partition R, up to the last checkpoint, is named by no trusted
 * CHECKPOINT though it ends at or after the WAL's first LSN (so that the
 * one that flushed it is still there): not storage's. */
int wal_named_unnamed(wal_named_t *nm, const struct wal_part_ref *r);
/* Of partitions PARTS[0..n), those not storage's: unnamed as above, and
 * not, byte for byte, what the WAL holds of their LSNs in their database
 * (one a CHECKPOINT lost to damage named is).  out[i] is set for each. */
int wal_part_unnamed(const char *datadir, wal_named_t *nm, const struct wal_part_ref *parts, size_t n,
                     unsigned char *out);
uint64_t wal_view_checkpoint(const wal_view_t *v);
size_t wal_view_npartitions(const wal_view_t *v);
const struct wal_part_ref *wal_view_partition(const wal_view_t *v, size_t i);
/* The partitions up to the checkpoint that are not in the view, by name:
 * unreadable, misnamed, of another WAL or overlapping one before them, and
 * those a checkpoint names that are missing (or named by an unreadable
 * file, which is also listed).  named: a trusted checkpoint names it;
 * unnamed: none does, though one should (wal_named_unnamed). */
struct wal_view_bad {
	struct wal_part_ref ref; /* the LSN range is the name's */
	int missing, named, overlaps, unnamed;
};
size_t wal_view_nbad(const wal_view_t *v);
const struct wal_view_bad *wal_view_bad(const wal_view_t *v, size_t i);
size_t wal_view_nproblems(const wal_view_t *v);
const char *wal_view_problem(const wal_view_t *v, size_t i);
void wal_view_close(wal_view_t *v);
/* The part of a data directory's logical content that the WAL alone
 * holds: the entries after the last trusted checkpoint (ckpt < 0), or
 * after checkpoint LSN ckpt; POINTS entries only if points_only.  What a
 * replay stores, what serve replays at startup, what dump shows after
 * storage.  The scan (its findings) is wal_after_scan's. */
typedef struct wal_after wal_after_t;
int wal_after_open(wal_after_t **out, const char *datadir, int64_t ckpt, int points_only,
                   const struct wal_scan_opts *so);
int wal_after_next(wal_after_t *r, struct wal_entry *e); /* 1 entry, 0 end, <0 error */
uint64_t wal_after_checkpoint(const wal_after_t *r);
wal_scan_t *wal_after_scan(wal_after_t *r);
void wal_after_close(wal_after_t *r);
/* A scan's checkpoint callback (wal_scan_opts.checkpoint): every
 * partition the CHECKPOINT names must be there, intact (every point decoded
 * when the scan is deep), of this WAL and within the checkpoint's LSNs;
 * each one that is not is a finding of the scan (bad-checkpoint,
 * partition-beyond). */
int wal_check_storage(void *ctx, wal_scan_t *s, const struct wal_entry *e, const struct wal_checkpoint *c);
/* The same for one CHECKPOINT entry e (c its decoded payload, its partition
 * names in c->partitions) outside a scan: 1 and what is wrong with the
 * first partition that is not, in why; 0 if every one is. */
int wal_check_named(const char *datadir, uint64_t wal_id, const struct wal_entry *e, const struct wal_checkpoint *c,
                    char *why, size_t cap);
/* Check a partition: header and every block's CRC; deep also decompresses
 * and decodes every point.  wal_id 0 accepts any WAL. */
int wal_part_check(const char *path, int deep, uint64_t wal_id);
/* The same for a partition just opened (nothing read from it yet). */
int wal_part_verify(wal_part_t *p, int deep, uint64_t wal_id);

/* ------------------------------------------------------------- repairs */

/* What truncate, recover and compact do.  A plan is made from the WAL as
 * it is, printed, and applied only on request.  Applying saves every byte
 * it removes to DIR/quarantine/<stamp>/ with a MANIFEST first, is safe to
 * interrupt at any instant (rerunning completes it), and changes nothing
 * when run again. */
enum wal_repair_mode {
	WAL_REPAIR_TORN_TAIL = 1, /* truncate --torn-tail */
	WAL_REPAIR_AFTER,         /* truncate --after LSN */
	WAL_REPAIR_TAIL,          /* recover --mode tail */
	WAL_REPAIR_SALVAGE,       /* recover --mode salvage */
	WAL_REPAIR_COMPACT,       /* compact */
};

struct wal_repair_opts {
	enum wal_repair_mode mode;
	uint64_t after_lsn;  /* WAL_REPAIR_AFTER */
	int replay;          /* recover: replay into storage and checkpoint */
	int level;           /* zlib level of partitions (default 1) */
	unsigned keep;       /* compact: newest segments kept */
	int merge;           /* compact --merge */
	uint64_t merge_max;  /* compact --merge: largest merged segment */
	int64_t purge_ns;    /* compact --purge-quarantine age, -1: none */
	int apply;           /* take the lock while planning, to apply */
	const char *command; /* recorded in the MANIFEST */
	/* compact: a live consumer with more bytes of segments after its
	 * cursor than this (0: WAL_CONSUMER_LAG_DEFAULT) holds nothing back,
	 * and applied, the plan marks it lost */
	uint64_t max_consumer_lag;
	/* truncate --after: a live consumer whose cursor is past the LSN would
	 * see what it handed on taken back, and the LSNs it passed given to new
	 * entries: the plan refuses, naming it, unless this is set; then each
	 * such cursor is rewound to the LSN (saved to the quarantine first, put
	 * back by --undo) */
	int rewind_consumers;
	/* Called now and then as the WAL is read: PHASE "survey" (the scan
	 * that makes the plan) or "replay", bytes DONE of TOTAL (0: not
	 * known).  NULL: not called. */
	void (*progress)(void *ctx, const char *phase, uint64_t done, uint64_t total);
	void *progress_ctx;
};

enum wal_act_op {
	WAL_ACT_CUT = 1,
	WAL_ACT_REMOVE,
	WAL_ACT_REWRITE,
	WAL_ACT_MERGE,
	WAL_ACT_REPLAY,
	WAL_ACT_PURGE,
	WAL_ACT_SET_ASIDE, /* a partition the replay stores again, moved to the quarantine */
	WAL_ACT_REBUILD    /* a partition up to the checkpoint, stored again from the WAL */
};

struct wal_action {
	enum wal_act_op op;
	char file[320];               /* segment name, quarantine stamp (purge), data/<partition> */
	char newname[64];             /* rewrite/merge: the resulting segment */
	uint64_t offset, length;      /* bytes that go: from offset, length bytes */
	uint64_t lsn_first, lsn_last; /* LSNs that go or are replayed (0: none) */
	uint64_t entries;             /* entries that go, or are replayed */
	int partial;                  /* rebuild: only what the WAL still holds of the range */
	char detail[256];
};

typedef struct wal_plan wal_plan_t;
int wal_plan_make(wal_plan_t **out, const char *datadir, const struct wal_repair_opts *o);
size_t wal_plan_nactions(const wal_plan_t *p);
const struct wal_action *wal_plan_action(const wal_plan_t *p, size_t i);
/* The verify class of what the plan fixes (0 nothing, 2 torn tail, 4). */
int wal_plan_class(const wal_plan_t *p);
/* Why the plan refuses to act (mid-log damage for --mode tail, damage for
 * --torn-tail, ...), or NULL. */
const char *wal_plan_refusal(const wal_plan_t *p);
/* compact: the consumers past the lag limit, which the plan applied
 * marks lost (their cursor is then no limit). */
struct wal_consumer_lag {
	char name[WAL_CONSUMER_NAME_MAX + 1];
	uint64_t cursor, lag_bytes, limit;
};
size_t wal_plan_nconsumers_lost(const wal_plan_t *p);
/* truncate --after with rewind_consumers: the cursors it rewinds. */
struct wal_consumer_rewind {
	char name[WAL_CONSUMER_NAME_MAX + 1];
	uint64_t cursor, to; /* the cursor, and the LSN it is rewound to */
};
/* The live consumers whose cursor is past LSN n (those skip says yes to
 * left out), each as a rewind to n in *out (free it), and listed in names
 * as " 'NAME' (cursor LSN C)"...: what a repair that takes out the LSNs
 * after n refuses over, or rewinds. */
int wal_consumers_past(const char *datadir, uint64_t n, int (*skip)(void *ctx, const char *name), void *ctx,
                       struct wal_consumer_rewind **out, size_t *nout, char *names, size_t cap);
size_t wal_plan_nrewinds(const wal_plan_t *p);
const struct wal_consumer_rewind *wal_plan_rewind(const wal_plan_t *p, size_t i);
const struct wal_consumer_lag *wal_plan_consumer_lost(const wal_plan_t *p, size_t i);
/* LSN ranges a salvage gives up. */
size_t wal_plan_nlosses(const wal_plan_t *p);
void wal_plan_loss(const wal_plan_t *p, size_t i, uint64_t *first, uint64_t *last);
/* Partitions a checkpoint names that are missing or damaged while the WAL
 * no longer holds all of their LSNs: their points of the LSN runs the WAL
 * lacks are lost (what the WAL holds is stored again), one loss per run,
 * each recorded in the WAL as a STORAGE-LOSS entry by the replay. */
size_t wal_plan_nstorage_losses(const wal_plan_t *p);
const struct wal_storage_loss *wal_plan_storage_loss(const wal_plan_t *p, size_t i);
/* 1 if loss I gives up CHECKPOINT entries only: no point is lost. */
int wal_plan_loss_no_points(const wal_plan_t *p, size_t i);
/* Apply; stamp receives the quarantine directory's name ("" if none). */
int wal_plan_apply(wal_plan_t *p, char *stamp, size_t cap);
void wal_plan_free(wal_plan_t *p);

/* Undo repair STAMP: restore every file it changed, byte for byte, and
 * remove what it created.  Refuses (WAL_ECORRUPT) if the WAL has changed
 * since, or if a live consumer handed on entries past where the WAL ended
 * before the repair (unless rewind_consumers: then its cursor is rewound
 * there first, and listed in rewound; free it).  With apply 0 only
 * checks.  already is set if it was undone. */
struct wal_undo_opts {
	int apply, rewind_consumers;
};
struct wal_undo_result {
	int already;
	struct wal_consumer_rewind *rewound;
	size_t nrewound;
};
int wal_undo(const char *datadir, const char *stamp, const struct wal_undo_opts *o, struct wal_undo_result *r);

/* Deterministic points shaped like the TSBS cpu-only workload. */
typedef struct wal_gen wal_gen_t;
int wal_gen_new(wal_gen_t **out, uint64_t seed, unsigned hosts);
void wal_gen_free(wal_gen_t *g);
/* One line of line protocol with its '\n'; returns its length (like
 * snprintf: a result >= cap means it did not fit). */
size_t wal_gen_line(wal_gen_t *g, char *buf, size_t cap);

/* -------------------------------------------------------------- the engine */

/*
 * The ingestion engine over one data directory: group commit and acks,
 * the write buffer and its flusher to storage partitions, checkpoints,
 * reclamation, backpressure and startup recovery (lib/engine.c).  The
 * caller appends encoded POINTS entries from one thread; the callbacks
 * come from the engine's threads.
 */
#define WAL_ENGINE_BUCKETS 12 /* sync duration histogram: bucket bounds from wal_engine_bucket */
typedef struct wal_engine wal_engine_t;
struct wal_engine_opts {
	struct wal_opts wal;       /* sync mode, segment size and age */
	uint64_t buffer_points;    /* flush at this many buffered points (0: 10000) */
	int64_t flush_interval_ns; /* or at least this often (0: 1 s) */
	int64_t sync_interval_ns;  /* at most one sync per interval (0: after every append) */
	unsigned keep_segments;    /* checkpointed segments kept (0: 3) */
	uint64_t max_consumer_lag; /* bytes of WAL after a consumer's cursor before it is lost (0: the default) */
	int level;                 /* compression level of partitions (0: 1) */
	int wal_only;              /* 1: append and sync only, no storage, no replay (walctl write) */
	void *ctx;
	/* after a sync that made something new durable: every entry through
	 * LSN lsn, and points points in all, may be acknowledged */
	void (*ack)(void *ctx, uint64_t lsn, uint64_t points);
	/* a logfmt record without ts and level; level is "error", "warn",
	 * "info" or "debug" */
	void (*log)(void *ctx, const char *level, const char *text);
	/* once, from any thread, when the engine stops for good (a failed sync
	 * or flush): wal_engine_failure says why */
	void (*failed)(void *ctx);
};
struct wal_engine_stats {
	uint64_t points, entries, acked_lsn, acked_points, acked_entries, syncs, flushes, checkpoints, reclaimed;
	uint64_t consumers_lost; /* consumers this engine marked lost */
	uint64_t checkpoint_lsn, next_lsn, bytes_appended, bytes_at_checkpoint, rotations;
	uint64_t sync_hist[WAL_ENGINE_BUCKETS + 1]; /* syncs per bucket, the last above every bound */
	double sync_seconds, recovery_seconds;
	char segment[64]; /* the active segment */
};
/* Lock and open the WAL (a torn tail is cut), start the threads, and hand
 * the entries after the last checkpoint to the flusher again.  On a
 * startup error (WAL_ECORRUPT: damage, logged with what to run) *out is
 * still set when the WAL was opened: close it with wal_engine_close. */
int wal_engine_open(wal_engine_t **out, const char *dir, const struct wal_engine_opts *o);
/* Append one entry (a POINTS entry of points points goes to storage too);
 * waits while the flusher is behind.  Acknowledged through the ack
 * callback once durable.  *lsn_out (if not NULL) receives its LSN. */
int wal_engine_append(wal_engine_t *e, unsigned type, const void *payload, size_t len, uint64_t points,
                      uint64_t *lsn_out);
const char *wal_engine_failure(wal_engine_t *e); /* NULL while running */
const char *wal_engine_dir(const wal_engine_t *e);
const char *wal_engine_torn_note(const wal_engine_t *e); /* what opening cut, or NULL */
void wal_engine_stats(wal_engine_t *e, struct wal_engine_stats *st);
double wal_engine_bucket(size_t i);
/* Wait until the engine stopped or failed (1) or until (CLOCK_REALTIME, 0). */
struct timespec;
int wal_engine_wait(wal_engine_t *e, const struct timespec *until);
/* Flush what is buffered, checkpoint, make everything durable and stop the
 * threads; stats stay readable until wal_engine_close. */
void wal_engine_stop(wal_engine_t *e);
/* Stop if not stopped, close the WAL (abandoned after a failure: no clean
 * close marker) and free. */
int wal_engine_close(wal_engine_t *e);

/* --------------------------------------------------------------- utility */

uint32_t wal_crc(uint64_t wal_id, const void *buf, size_t len);
int64_t wal_now_ns(void);
/* Replace DIR/NAME with BUF: temp file, fsync, rename, fsync DIR. */
int wal_write_file(const char *dir, const char *name, const void *buf, size_t len);
int wal_lib_versions(char *buf, size_t cap); /* "ISA-L 2.30.0, zlib 1.2.13, libcbor 0.8.0" */

/* A value for a logfmt record, escaped to go between double quotes (\" \\
 * \n \r \t, other control bytes as \xHH).  The result is in one of 8
 * buffers of the calling thread, reused in turn: enough for the values of
 * one record. */
const char *wal_lq(const char *s);

#endif
