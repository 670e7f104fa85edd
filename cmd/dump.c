/*
 * dump.c - walctl dump: print the entries of a WAL.
 *
 * text: one line per entry, its points indented as line protocol;
 * jsonl: one object per entry; json: one document (schema walctl-dump/2);
 * lp: the points only, as line protocol; raw: RAW payloads, one per line.
 * Damage met on the way is reported on stderr and sets the exit status as
 * verify would; the entries around it are still printed.
 */
#include <ctype.h>
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cmd.h"

static const char options[] =
    "  --from LSN                 start at this LSN\n"
    "  --to LSN                   stop after this LSN\n"
    "  --type T                   only entries of type T: points, raw, checkpoint, seal, close, loss,\n"
    "                             storage-loss\n"
    "  --limit N                  at most N entries\n"
    "  --db NAME                  only the points of database NAME (repeatable)\n"
    "  --format text|json|jsonl|lp|influx-import|raw\n"
    "                             output format (default text)\n"
    "  --stats                    per-segment and per-type counts instead of entries\n"
    "  --follow                   keep printing new entries of a live WAL (until interrupted)\n";

enum { OPT_FROM = 256, OPT_TO, OPT_TYPE, OPT_LIMIT, OPT_FORMAT, OPT_STATS, OPT_FOLLOW, OPT_DB };
enum { F_TEXT, F_JSON, F_JSONL, F_LP, F_RAW, F_INFLUX };
/* Formats of points alone: line protocol, and the same for influx -import. */
/* The schema of a jsonl record and of an item of the json document. */
#define DUMP_ENTRY_SCHEMA "walctl-dump-entry/2"
#define LP_LIKE(f)        ((f) == F_LP || (f) == F_INFLUX)

static volatile sig_atomic_t interrupted;
static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

struct dump {
	int format;
	uint64_t from, to, limit;
	int type;
	wal_dec_t *dec;
	uint64_t printed;
	wal_scan_t *scan;
	int status;       /* exit status bits of what follow_gone printed */
	const char **dbs; /* --db: only these databases */
	size_t ndbs;
	char *ctx;        /* influx-import: the database of the last CONTEXT line */
	struct lpout *lp; /* lp and influx-import, not following: formatted on every core */
};

/* Whether to go on: below the --limit, and while standard output takes
 * what is written (once its reader is gone, nothing more is read). */
static int more(const struct dump *d) { return d->printed < d->limit && !ferror(stdout); }

/* Hand a POINTS payload to the parallel formatter; WHERE names it in an
 * error.  The CONTEXT line influx-import needs before it is decided here,
 * in output order. */
static int queue_points(struct dump *d, const unsigned char *payload, size_t len, const char *where)
{
	struct wal_str db;
	char *head = NULL;

	if (d->format == F_INFLUX && wal_dec_begin(d->dec, payload, len, &db) == 0 &&
	    (!d->ctx || strlen(d->ctx) != db.n || memcmp(d->ctx, db.p, db.n) != 0)) {
		free(d->ctx);
		if (!(d->ctx = strndup(db.p, db.n)) || asprintf(&head, "# CONTEXT-DATABASE:%s\n", d->ctx) < 0) {
			errorf("out of memory");
			return EXIT_OPER;
		}
	}
	int rc = lpout_add(d->lp, payload, len, head, where);
	free(head);
	if (rc != 0) {
		errorf("out of memory");
		return EXIT_OPER;
	}
	return 0;
}

/* With --db: whether a POINTS payload is of a database asked for. */
static int wanted(struct dump *d, const unsigned char *payload, size_t len)
{
	struct wal_str db;

	if (!d->ndbs)
		return 1;
	if (wal_dec_begin(d->dec, payload, len, &db) != 0)
		return 1; /* printing it reports the damage */
	for (size_t i = 0; i < d->ndbs; i++)
		if (strlen(d->dbs[i]) == db.n && memcmp(d->dbs[i], db.p, db.n) == 0)
			return 1;
	return 0;
}

static int print_payload(struct dump *d, const unsigned char *payload, size_t len)
{
	struct wal_str db;
	struct wal_point pt;
	int rc, n = 0;

	if (wal_dec_begin(d->dec, payload, len, &db) != 0)
		return WAL_EPARSE;
	if (d->format == F_JSON || d->format == F_JSONL) {
		fputs(", \"db\": ", stdout);
		json_str(stdout, db.p, db.n);
		fputs(", \"points\": [", stdout);
	}
	while ((rc = wal_dec_next(d->dec, &pt)) == 1) {
		switch (d->format) {
		case F_TEXT:
			fputs("  ", stdout);
			print_lp_text(stdout, &pt);
			break;
		case F_LP:
		case F_INFLUX: print_lp(stdout, &pt); break;
		default:
			if (n)
				fputs(", ", stdout);
			json_point(stdout, &pt, NULL);
		}
		n++;
	}
	if (d->format == F_JSON || d->format == F_JSONL)
		fputs("]", stdout);
	return rc;
}

static int print_points(struct dump *d, const struct wal_entry *e)
{
	if (d->lp) {
		char where[PATH_MAX + 100];
		snprintf(where, sizeof where, "segment '%s' offset %" PRIu64 ": LSN %" PRIu64, e->segment, e->offset,
		         e->lsn);
		return queue_points(d, e->payload, e->len, where);
	}
	if (print_payload(d, e->payload, e->len) == 0)
		return 0;
	errorf("segment '%s' offset %" PRIu64 ": LSN %" PRIu64 ": %s", e->segment, e->offset, e->lsn, wal_errmsg());
	return EXIT_DAMAGE;
}

/* One stored payload of a partition, as an entry; LSN 0: the partition
 * does not record it (version 1). */
static int print_stored(struct dump *d, const char *part, uint64_t lsn, const unsigned char *payload, size_t len)
{
	int rc;

	if (d->lp) {
		char where[PATH_MAX + 100];
		snprintf(where, sizeof where, "partition '%s'", part);
		d->printed++;
		return queue_points(d, payload, len, where);
	}
	if (d->format == F_TEXT) {
		fputs("storage ", stdout);
		put_text(stdout, part, strlen(part));
		if (lsn)
			printf(" LSN %" PRIu64, lsn);
		putchar('\n');
	} else if (!LP_LIKE(d->format)) {
		if (d->format == F_JSON && d->printed)
			fputs(",\n", stdout);
		fputs(d->format == F_JSONL ? "{\"schema\": \"" DUMP_ENTRY_SCHEMA "\", \"source\": \"storage\""
		                           : "{\"source\": \"storage\"",
		      stdout);
		fputs(", \"partition\": ", stdout);
		json_str(stdout, part, strlen(part));
		fputs(", \"lsn\": ", stdout);
		json_lsn(stdout, lsn);
	}
	rc = print_payload(d, payload, len);
	if (d->format == F_JSON || d->format == F_JSONL)
		fputs(d->format == F_JSONL ? "}\n" : "}", stdout);
	d->printed++;
	if (rc) {
		errorf("partition '%s': %s", part, wal_errmsg());
		return EXIT_DAMAGE;
	}
	return 0;
}

/* The points in storage: every partition at or below the last checkpoint
 * (one above it was left by an interrupted replay; its points are still
 * in the WAL), or the one partition file given. */
/* Print the points of one partition file; rel names it in the output. */
static int dump_partition(struct dump *d, const char *path, const char *rel)
{
	wal_part_t *p;
	const unsigned char *pl;
	size_t len;
	uint64_t lsn = 0;
	int k = 0, rc = 0;

	if (wal_part_open(&p, path) != 0) {
		rc = d->lp ? lpout_flush(d->lp) : 0; /* what came before, first */
		errorf("%s", wal_errmsg());
		return rc | EXIT_DAMAGE;
	}
	while (more(d) && (k = wal_part_next(p, &lsn, &pl, &len)) == 1)
		if (wanted(d, pl, len))
			rc |= print_stored(d, rel, lsn, pl, len);
	if (k < 0) {
		char why[600];
		snprintf(why, sizeof why, "%s", wal_errmsg());
		rc |= d->lp ? lpout_flush(d->lp) : 0;
		errorf("%s", why);
		rc |= EXIT_DAMAGE;
	}
	wal_part_close(p);
	return rc;
}

/* Print the points of every partition in view, in LSN order. */
static int dump_storage(struct dump *d, const char *dir, const wal_view_t *view)
{
	int rc = 0;

	for (size_t i = 0; i < wal_view_npartitions(view) && more(d); i++) {
		char path[PATH_MAX + 700];
		const char *rel = wal_view_partition(view, i)->rel;
		snprintf(path, sizeof path, "%s/data/%s", dir, rel);
		rc |= dump_partition(d, path, rel);
	}
	return rc;
}

struct stored {
	uint64_t lsn;
	size_t part;
	unsigned char *payload;
	size_t len;
};

static int cmp_stored(const void *a, const void *b)
{
	const struct stored *x = a, *y = b;
	return x->lsn < y->lsn ? -1 : x->lsn > y->lsn;
}

/* A follower's scan found LSN first..last gone from the WAL: a writer
 * reclaimed their segment, which it does once a checkpoint covers it,
 * before this follower could open it.  Their points are in storage: print
 * them in LSN order and return 1.  0 when storage cannot show them (no
 * checkpoint through last, a problem in storage, a version 1 partition
 * whose records carry no LSN): the scan reports a missing segment. */
static int follow_gone(void *ctx, uint64_t first, uint64_t last)
{
	struct dump *d = ctx;
	const char *dir = wal_scan_datadir(d->scan);
	struct stored *st = NULL;
	char **rels = NULL;
	size_t n = 0, cap = 0, nrels = 0;
	wal_view_t *v;
	int ok = 1;

	if (!dir[0] || wal_view_open(&v, dir) != 0)
		return 0;
	if (wal_view_checkpoint(v) < last || wal_view_nproblems(v))
		ok = 0;
	for (size_t i = 0; ok && i < wal_view_npartitions(v); i++) {
		const struct wal_part_ref *r = wal_view_partition(v, i);
		char path[PATH_MAX + 700];
		const unsigned char *pl;
		size_t len;
		uint64_t lsn;
		wal_part_t *p;
		int k;
		if (r->last_lsn < first || r->first_lsn > last)
			continue;
		snprintf(path, sizeof path, "%s/data/%s", dir, r->rel);
		char **nr = realloc(rels, (nrels + 1) * sizeof *rels);
		if (!nr || !(rels = nr, rels[nrels] = strdup(r->rel))) {
			ok = 0;
			break;
		}
		if (nrels++, wal_part_open(&p, path) != 0) {
			ok = 0;
			break;
		}
		while ((k = wal_part_next(p, &lsn, &pl, &len)) == 1) {
			if (!lsn) {
				ok = 0; /* version 1 */
				break;
			}
			if (lsn < first || lsn > last)
				continue;
			if (n == cap) {
				struct stored *q = realloc(st, (cap = cap ? 2 * cap : 64) * sizeof *st);
				if (!q) {
					ok = 0;
					break;
				}
				st = q;
			}
			st[n] = (struct stored){ lsn, nrels - 1, malloc(len ? len : 1), len };
			if (!st[n].payload) {
				ok = 0;
				break;
			}
			memcpy(st[n++].payload, pl, len);
		}
		if (k < 0)
			ok = 0;
		wal_part_close(p);
	}
	wal_view_close(v);
	if (n)
		qsort(st, n, sizeof *st, cmp_stored);
	for (size_t i = 0; ok && i < n && more(d); i++)
		if (st[i].lsn >= d->from && st[i].lsn <= d->to && (d->type < 0 || d->type == WAL_T_POINTS) &&
		    wanted(d, st[i].payload, st[i].len))
			d->status |= print_stored(d, rels[st[i].part], st[i].lsn, st[i].payload, st[i].len);
	for (size_t i = 0; i < n; i++)
		free(st[i].payload);
	for (size_t i = 0; i < nrels; i++)
		free(rels[i]);
	free(st);
	free(rels);
	fflush(stdout);
	return ok;
}

/* What a LOSS entry (partition NULL) or a STORAGE-LOSS entry records. */
static void print_lost(struct dump *d, uint64_t first, uint64_t last, const struct wal_str *partition,
                       struct wal_str reason)
{
	int text = d->format == F_TEXT;
	void (*str)(FILE *, const char *, size_t) = text ? print_quoted : json_str;

	printf(text ? " lost %" PRIu64 "-%" PRIu64 : ", \"lost_first_lsn\": %" PRIu64 ", \"lost_last_lsn\": %" PRIu64,
	       first, last);
	if (partition) {
		fputs(text ? " partition " : ", \"partition\": ", stdout);
		str(stdout, partition->p, partition->n);
	}
	fputs(text ? " reason " : ", \"reason\": ", stdout);
	str(stdout, reason.p, reason.n);
}

static int print_entry(struct dump *d, const struct wal_entry *e)
{
	unsigned t = e->type & 0x7f;
	char ts[48];
	int rc = 0;

	if (LP_LIKE(d->format)) {
		return t == WAL_T_POINTS ? print_points(d, e) : 0;
	}
	if (d->format == F_RAW) {
		if (t == WAL_T_RAW) {
			fwrite(e->payload, 1, e->len, stdout);
			putchar('\n');
		}
		return 0;
	}
	fmt_time(ts, sizeof ts, e->time_ns);
	if (d->format == F_TEXT) {
		printf("LSN %" PRIu64 " %s %u bytes segment %s offset %" PRIu64 " mark %" PRIu64 " time %s", e->lsn,
		       wal_type_name(e->type), e->len, e->segment, e->offset, e->watermark, ts);
	} else {
		if (d->format == F_JSON && d->printed)
			fputs(",\n", stdout);
		if (d->format == F_JSONL)
			fputs("{\"schema\": \"" DUMP_ENTRY_SCHEMA "\", ", stdout);
		else
			putchar('{');
		printf("\"source\": \"wal\", \"lsn\": %" PRIu64 ", \"type\": \"%s\", \"type_code\": %u, \"segment\": ",
		       e->lsn, wal_type_name(e->type), e->type);
		json_str(stdout, e->segment, strlen(e->segment));
		printf(", \"offset\": %" PRIu64 ", \"length\": %u, \"mark\": %" PRIu64 ", \"time\": \"%s\"", e->offset,
		       e->len, e->watermark, ts);
	}
	switch (t) {
	case WAL_T_POINTS:
		if (d->format == F_TEXT)
			putchar('\n');
		rc = print_points(d, e);
		break;
	case WAL_T_RAW:
		if (d->format == F_TEXT) {
			fputs(" data ", stdout);
			print_quoted(stdout, (const char *)e->payload, e->len);
		} else {
			fputs(", ", stdout);
			json_data(stdout, e->payload, e->len);
		}
		break;
	case WAL_T_SEAL: {
		struct wal_seal s;
		if (wal_seal_decode(e->payload, e->len, &s) == 0)
			printf(d->format == F_TEXT
			           ? " entries %" PRIu64 " first %" PRIu64 " last %" PRIu64 " bytes %" PRIu64
			           : ", \"entries\": %" PRIu64 ", \"first_lsn\": %" PRIu64 ", \"last_lsn\": %" PRIu64
			             ", \"bytes\": %" PRIu64,
			       s.entries, s.first_lsn, s.last_lsn, s.bytes);
		break;
	}
	case WAL_T_CHECKPOINT: {
		struct wal_checkpoint c;
		if (wal_checkpoint_decode(e->payload, e->len, &c, NULL, 0) == 0) {
			printf(d->format == F_TEXT ? " through %" PRIu64 " partitions %zu"
			                           : ", \"through_lsn\": %" PRIu64 ", \"partitions\": %zu",
			       c.lsn, c.npartitions);
		}
		break;
	}
	case WAL_T_LOSS: {
		struct wal_loss l;
		if (wal_loss_decode(e->payload, e->len, &l) == 0)
			print_lost(d, l.first_lsn, l.last_lsn, NULL, l.reason);
		break;
	}
	case WAL_T_STORAGE_LOSS: {
		struct wal_storage_loss l;
		if (wal_storage_loss_decode(e->payload, e->len, &l) == 0)
			print_lost(d, l.first_lsn, l.last_lsn, &l.partition, l.reason);
		break;
	}
	default: break;
	}
	if (d->format == F_TEXT) {
		if (t != WAL_T_POINTS)
			putchar('\n');
	} else {
		putchar('}');
		if (d->format == F_JSONL)
			putchar('\n');
	}
	return rc;
}

struct tstat {
	uint64_t count, bytes;
};

/* A tag value of line protocol: ',', '=' and ' ' escaped. */
static void lp_tag(const char *p)
{
	for (; *p; p++) {
		if (*p == ',' || *p == '=' || *p == ' ' || *p == '\\')
			putchar('\\');
		putchar(*p);
	}
}

static int print_stats(wal_scan_t *s, int format)
{
	struct wal_entry e;
	struct tstat types[8] = { { 0, 0 } };
	uint64_t first = 0, last = 0, ckpt = 0, after_ckpt = 0, total = 0;
	int64_t tmin = 0, tmax = 0;
	int rc, json = format == F_JSON || format == F_JSONL;

	while ((rc = wal_scan_next(s, &e)) == 1) {
		unsigned t = e.type & 0x7f;
		uint64_t b = WAL_FRAME_HEADER_SIZE + e.len;
		types[t < 8 ? t : 0].count++;
		types[t < 8 ? t : 0].bytes += b;
		if (!first) {
			first = e.lsn;
			tmin = e.time_ns;
		}
		last = e.lsn;
		tmax = e.time_ns;
		total += b;
		after_ckpt += b;
		if (t == WAL_T_CHECKPOINT) {
			struct wal_checkpoint c;
			if (wal_checkpoint_of(&e, &c) && c.lsn >= ckpt) {
				ckpt = c.lsn;
				after_ckpt = 0;
			}
		}
	}
	if (rc < 0)
		return rc;
	char a[48], b[48];
	fmt_time(a, sizeof a, tmin);
	fmt_time(b, sizeof b, tmax);
	size_t nseg = wal_scan_nsegments(s);
	if (json) {
		printf("{\"schema\": \"walctl-dump-stats/2\", \"first_lsn\": ");
		json_lsn(stdout, first);
		fputs(", \"last_lsn\": ", stdout);
		json_lsn(stdout, last);
		if (first)
			printf(", \"first_time\": \"%s\", \"last_time\": \"%s\"", a, b);
		else
			fputs(", \"first_time\": null, \"last_time\": null", stdout);
		printf(", \"bytes\": %" PRIu64 ", \"checkpoint_lsn\": ", total);
		json_lsn(stdout, ckpt);
		printf(", \"bytes_not_checkpointed\": %" PRIu64 ", \"segments\": [", after_ckpt);
		for (size_t i = 0; i < nseg; i++) {
			if (i)
				fputs(", ", stdout);
			json_segment(stdout, wal_scan_segment(s, i));
		}
		printf("], \"types\": {");
	} else if (format == F_LP) {
		/* Points without a time: the reader stamps them. */
		for (size_t i = 0; i < nseg; i++) {
			const struct wal_segment_info *si = wal_scan_segment(s, i);
			fputs("walctl_segment,name=", stdout);
			lp_tag(si->name);
			printf(",state=%s seq=%" PRIu64 "i,entries=%" PRIu64 "i,bytes=%" PRIu64 "i", segment_state(si),
			       si->seq, si->entries, si->bytes);
			if (si->entries)
				printf(",first_lsn=%" PRIu64 "i,last_lsn=%" PRIu64 "i", si->first_lsn, si->last_lsn);
			putchar('\n');
		}
	} else {
		printf("%-22s %6s %12s %12s %10s %12s %s\n", "segment", "seq", "first_lsn", "last_lsn", "entries",
		       "bytes", "state");
		for (size_t i = 0; i < nseg; i++) {
			const struct wal_segment_info *si = wal_scan_segment(s, i);
			printf("%-22s %6" PRIu64 " %12" PRIu64 " %12" PRIu64 " %10" PRIu64 " %12" PRIu64 " %s\n",
			       si->name, si->seq, si->first_lsn, si->last_lsn, si->entries, si->bytes,
			       segment_state(si));
		}
		printf("\n%-12s %10s %14s\n", "type", "entries", "bytes");
	}
	int n = 0;
	for (unsigned t = 0; t < 8; t++) {
		if (!types[t].count)
			continue;
		const char *name = t ? wal_type_name(t) : "other";
		if (json)
			printf("%s\"%s\": {\"entries\": %" PRIu64 ", \"bytes\": %" PRIu64 "}", n++ ? ", " : "", name,
			       types[t].count, types[t].bytes);
		else if (format == F_LP)
			printf("walctl_type,type=%s entries=%" PRIu64 "i,bytes=%" PRIu64 "i\n", name, types[t].count,
			       types[t].bytes);
		else
			printf("%-12s %10" PRIu64 " %14" PRIu64 "\n", name, types[t].count, types[t].bytes);
	}
	if (json) {
		printf("}}\n");
	} else if (format == F_LP) {
		printf("walctl_wal segments=%zui,bytes=%" PRIu64 "i,bytes_not_checkpointed=%" PRIu64 "i", nseg, total,
		       after_ckpt);
		if (first)
			printf(",first_lsn=%" PRIu64 "i,last_lsn=%" PRIu64 "i", first, last);
		if (ckpt)
			printf(",checkpoint_lsn=%" PRIu64 "i", ckpt);
		putchar('\n');
	} else {
		printf("\nLSN %" PRIu64 "-%" PRIu64 ", %" PRIu64 " bytes", first, last, total);
		if (first)
			printf(", written %s to %s", a, b);
		printf("\nlast checkpoint through LSN %" PRIu64 "; %" PRIu64 " bytes not yet checkpointed\n", ckpt,
		       after_ckpt);
	}
	return 0;
}

static int report_findings(wal_scan_t *s, size_t from)
{
	for (size_t i = from; i < wal_scan_nfindings(s); i++) {
		const struct wal_finding *f = wal_scan_finding(s, i);
		errorf("segment '%s' offset %" PRIu64 ": %s; run 'walctl verify' for details", f->segment, f->offset,
		       f->message);
	}
	return (int)wal_scan_nfindings(s);
}

struct names {
	char **v;
	size_t n;
};

static int add_name(struct names *nm, const char *p, size_t n)
{
	for (size_t i = 0; i < nm->n; i++)
		if (strlen(nm->v[i]) == n && memcmp(nm->v[i], p, n) == 0)
			return 0;
	char **v = realloc(nm->v, (nm->n + 1) * sizeof *v);
	if (!v || !(v[nm->n] = strndup(p, n))) {
		if (v)
			nm->v = v;
		return WAL_ENOMEM;
	}
	nm->v = v;
	nm->n++;
	return 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The header influx -import needs: a DDL section creating every database
 * the output has points of (those --db names in their order, else the
 * databases of storage's directories and of the WAL's entries, sorted so
 * that the output does not depend on the file system's directory order),
 * then "# DML". */
static int influx_header(struct dump *d, const char *const *paths, size_t npaths)
{
	struct names nm = { NULL, 0 };
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < d->ndbs; i++)
		rc = add_name(&nm, d->dbs[i], strlen(d->dbs[i]));
	if (!d->ndbs) {
		char data[PATH_MAX + 8];
		snprintf(data, sizeof data, "%s/data", paths[0]);
		DIR *dir = npaths == 1 ? opendir(data) : NULL;
		struct dirent *de;
		while (rc == 0 && dir && (de = readdir(dir))) {
			char name[WAL_DB_DIRNAME_MAX + 1];
			size_t k = 0;
			if (de->d_name[0] == '.')
				continue;
			for (const char *c = de->d_name; *c && k < sizeof name - 1; c++) {
				unsigned v;
				if (*c == '%' && sscanf(c + 1, "%2x", &v) == 1 && isxdigit((unsigned char)c[1]) &&
				    isxdigit((unsigned char)c[2])) {
					name[k++] = (char)v;
					c += 2;
				} else {
					name[k++] = *c;
				}
			}
			rc = add_name(&nm, name, k);
		}
		if (dir)
			closedir(dir);
		wal_scan_t *s;
		struct wal_entry e;
		struct wal_str db;
		if (rc == 0 && (rc = wal_scan_open(&s, paths, npaths, &(struct wal_scan_opts){ 0 })) == 0) {
			while (rc == 0 && wal_scan_next(s, &e) == 1)
				if ((e.type & 0x7f) == WAL_T_POINTS &&
				    wal_dec_begin(d->dec, e.payload, e.len, &db) == 0)
					rc = add_name(&nm, db.p, db.n);
			wal_scan_close(s);
		}
		if (nm.n)
			qsort(nm.v, nm.n, sizeof *nm.v, cmp_name);
	}
	if (rc == 0) {
		fputs("# DDL\n", stdout);
		for (size_t i = 0; i < nm.n; i++) {
			fputs("CREATE DATABASE \"", stdout);
			for (const char *c = nm.v[i]; *c; c++) {
				if (*c == '"' || *c == '\\')
					putchar('\\');
				putchar(*c);
			}
			fputs("\"\n", stdout);
		}
		fputs("# DML\n", stdout);
	}
	for (size_t i = 0; i < nm.n; i++)
		free(nm.v[i]);
	free(nm.v);
	return rc;
}

int cmd_dump(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONGOPTS,
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "stats", no_argument, NULL, OPT_STATS },
		{ "follow", no_argument, NULL, OPT_FOLLOW },
		{ "db", required_argument, NULL, OPT_DB },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const formats[] = { "text", "json", "jsonl", "lp", "raw", "influx-import" };
	struct dump d = { .to = UINT64_MAX, .limit = UINT64_MAX, .type = -1 };
	int stats = 0, follow = 0, opt, rc = 0;

	while ((opt = getopt_long(argc, argv, COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (common_opt(opt, optarg))
			continue;
		switch (opt) {
		case 'h': return cmd_usage("dump", options, stdout);
		case OPT_FROM:
			if (parse_u64("--from", optarg, &d.from))
				return EXIT_USAGE;
			break;
		case OPT_TO:
			if (parse_u64("--to", optarg, &d.to))
				return EXIT_USAGE;
			break;
		case OPT_LIMIT:
			if (parse_u64("--limit", optarg, &d.limit))
				return EXIT_USAGE;
			break;
		case OPT_TYPE:
			if ((d.type = wal_type_parse(optarg)) < 0)
				return usage_error("option '--type': invalid value '%s' (want points, raw, checkpoint, "
				                   "seal, close, loss or storage-loss)",
				                   optarg);
			break;
		case OPT_FORMAT:
			d.format = -1;
			for (int i = 0; i < 6; i++)
				if (strcmp(optarg, formats[i]) == 0)
					d.format = i;
			if (d.format < 0)
				return usage_error("option '--format': invalid value '%s' (want text, json, jsonl, lp, "
				                   "influx-import or raw)",
				                   optarg);
			break;
		case OPT_DB: {
			if (wal_db_check(optarg, strlen(optarg)) != 0)
				return usage_error("option '--db': %s", wal_errmsg());
			/* the list lives as long as argv, whose strings it points to */
			static const char **dbs;
			const char **n = realloc(dbs, (d.ndbs + 1) * sizeof *n);
			if (!n)
				return EXIT_OPER;
			d.dbs = dbs = n;
			d.dbs[d.ndbs++] = optarg;
			break;
		}
		case OPT_STATS: stats = 1; break;
		case OPT_FOLLOW: follow = 1; break;
		default: return option_error(opt, argv);
		}
	}
	if (g_dir && optind < argc)
		return usage_error("give either -d DIR or PATHs, not both");
	if (stats && follow)
		return usage_error("--stats and --follow do not go together");
	if (stats && (d.format == F_RAW || d.format == F_INFLUX))
		return usage_error("--stats prints text, json, jsonl or lp (raw carries RAW payloads only; "
		                   "influx-import, the points of named databases)");
	if (follow && d.format == F_JSON)
		return usage_error("--follow needs a streaming format: text, jsonl, lp or raw");
	if (follow && d.format == F_INFLUX)
		return usage_error("--format influx-import names every database first: not with --follow");
	if (stats && d.ndbs)
		return usage_error("--stats counts every entry: not with --db");

	const char *dd = data_dir();
	const char *const *paths = optind < argc ? (const char *const *)argv + optind : &dd;
	size_t npaths = optind < argc ? (size_t)(argc - optind) : 1;
	struct wal_scan_opts so = { .follow = follow, .gone = follow ? follow_gone : NULL, .gone_ctx = &d };
	wal_scan_t *s;
	struct wal_entry e;
	int err;

	if ((err = wal_scan_open(&s, paths, npaths, &so)) != 0) {
		errorf("%s", wal_errmsg());
		return EXIT_OPER;
	}
	d.scan = s;
	if (stats) {
		err = print_stats(s, d.format);
		if (err < 0) {
			errorf("%s", wal_errmsg());
			rc = EXIT_OPER;
		}
		report_findings(s, 0);
		rc |= wal_scan_class(s);
		wal_scan_close(s);
		return rc;
	}
	if (wal_dec_new(&d.dec) != 0) {
		wal_scan_close(s);
		return EXIT_OPER;
	}
	if (follow) {
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
	}
	if (d.format == F_JSON)
		fputs("{\"schema\": \"walctl-dump/2\", \"entries\": [\n", stdout);
	if (d.format == F_INFLUX && (err = influx_header(&d, paths, npaths)) != 0) {
		errorf("%s", err == WAL_ENOMEM ? "out of memory" : wal_errmsg());
		wal_dec_free(d.dec);
		free(d.ctx);
		wal_scan_close(s);
		return EXIT_OPER;
	}
	/* Line protocol is decoded and formatted on every core; a follower
	 * prints each entry as it comes. */
	if (LP_LIKE(d.format) && !follow && lpout_new(&d.lp, stdout) != 0) {
		errorf("cannot start the line-protocol formatter threads");
		wal_dec_free(d.dec);
		free(d.ctx);
		wal_scan_close(s);
		return EXIT_OPER;
	}
	/* A data directory shows its logical content: the points in storage,
	 * then the WAL after the last checkpoint, every point exactly once.  A
	 * partition file shows its points. */
	uint64_t ckpt = 0;
	struct stat st;
	char sub[PATH_MAX + 8];
	snprintf(sub, sizeof sub, "%s/wal", paths[0]);
	size_t plen = strlen(paths[0]);
	if (npaths == 1 && plen > 5 && strcmp(paths[0] + plen - 5, ".part") == 0) {
		rc |= dump_partition(&d, paths[0], paths[0]);
		rc |= lpout_free(d.lp);
		if (d.format == F_JSON)
			fputs("\n]}\n", stdout);
		wal_dec_free(d.dec);
		free(d.ctx);
		wal_scan_close(s);
		return rc;
	}
	if (npaths == 1 && !follow && stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
		wal_view_t *view;
		if ((err = wal_view_open(&view, paths[0])) != 0) {
			errorf("%s", wal_errmsg());
			lpout_free(d.lp);
			wal_dec_free(d.dec);
			free(d.ctx);
			wal_scan_close(s);
			return EXIT_OPER;
		}
		/* storage that is not what the checkpoints say is damage: the
		 * points shown would not be the points written */
		for (size_t i = 0; i < wal_view_nproblems(view); i++) {
			errorf("storage: %s; run 'walctl verify' for details", wal_view_problem(view, i));
			rc |= EXIT_DAMAGE;
		}
		ckpt = wal_view_checkpoint(view);
		if (ckpt && !d.from && d.to == UINT64_MAX && (d.type < 0 || d.type == WAL_T_POINTS))
			rc |= dump_storage(&d, paths[0], view);
		wal_view_close(view);
		if (ckpt >= d.from)
			d.from = ckpt + 1;
	}
	size_t reported = 0;
	/* on a terminal, only while the output goes elsewhere: the two
	 * would be mixed */
	struct progress pg;
	uint64_t total = 0, bytes = 0;
	for (size_t i = 0; i < wal_scan_nsegments(s); i++)
		total += wal_scan_segment(s, i)->bytes;
	progress_start(&pg, "dump", total);
	if (follow || isatty(1))
		pg.on = 0;
	while (!interrupted && more(&d)) {
		err = wal_scan_next(s, &e);
		if (err == 1) {
			bytes += WAL_FRAME_HEADER_SIZE + e.len;
			progress_items(&pg, bytes, d.printed, "entries");
		}
		if (err < 0) {
			char why[600];
			snprintf(why, sizeof why, "%s", wal_errmsg());
			rc |= d.lp ? lpout_flush(d.lp) : 0;
			errorf("%s", why);
			rc |= EXIT_OPER;
			break;
		}
		if (err == 0) {
			if (!follow)
				break;
			reported = (size_t)report_findings(s, reported);
			fflush(stdout);
			/* a follower keeps close behind a reclaiming writer */
			struct timespec ts = { 0, 20 * 1000000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (e.lsn < d.from)
			continue;
		if (e.lsn > d.to)
			break;
		if (d.type >= 0 && (int)(e.type & 0x7f) != d.type)
			continue;
		if (d.ndbs && ((e.type & 0x7f) != WAL_T_POINTS || !wanted(&d, e.payload, e.len)))
			continue;
		rc |= print_entry(&d, &e);
		d.printed++;
		if (follow)
			fflush(stdout);
	}
	rc |= lpout_free(d.lp);
	progress_end(&pg);
	if (d.format == F_JSON)
		fputs("\n]}\n", stdout);
	report_findings(s, reported);
	rc |= wal_scan_class(s) | d.status;
	wal_dec_free(d.dec);
	free(d.ctx);
	wal_scan_close(s);
	return rc;
}
