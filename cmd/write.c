/*
 * write.c - walctl write: append line protocol (or raw lines) to the WAL.
 *
 * The main thread reads and parses input and encodes batches into a ring of
 * slots; an I/O thread appends every ready slot through the engine
 * (lib/engine.c, storage off), whose sync thread makes them durable in
 * groups (group commit), so parsing the next batch overlaps the appends
 * and syncs of the last.  Nothing is reported written before its sync
 * returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"

#define NSLOTS     4
#define READ_CHUNK (8u << 20)

static const char options[] =
    "  --input lp|raw             lp: lines are points (default); raw: each line is one RAW entry\n"
    "  --db NAME                  database the points belong to (default \"default\")\n"
    "  --precision ns|us|ms|s     unit of the timestamps in the input (default ns)\n"
    "  --sync fsync|fdatasync|async\n"
    "                             how entries are made durable (default fdatasync)\n"
    "  --batch N                  points per entry (default 5000)\n"
    "  --max-segment-size SIZE    rotate segments at SIZE (default 128M)\n"
    "  --max-segment-age DUR      rotate segments older than DUR (default 1h)\n"
    "  --strict                   stop at the first bad line, writing nothing of it\n"
    "  --parse-only               print the parsed points, write nothing\n"
    "  --format jsonl             output of --parse-only (the only format)\n"
    "  --default-time NS          time of points without a timestamp (default: now)\n";

enum {
	OPT_INPUT = 256,
	OPT_DB,
	OPT_PRECISION,
	OPT_SYNC,
	OPT_BATCH,
	OPT_SEGSIZE,
	OPT_SEGAGE,
	OPT_STRICT,
	OPT_PARSE_ONLY,
	OPT_FORMAT,
	OPT_DEFAULT_TIME
};

struct slot {
	wal_enc_t *enc; /* lp: one POINTS entry */
	char *raw;      /* raw: the lines, back to back */
	size_t rawlen, rawcap;
	uint32_t *rawends; /* end offset of each line */
	size_t nraw, capends;
	size_t points;
	int state; /* 0 free, 1 filling, 2 queued */
};

struct writer {
	wal_engine_t *eng;
	int raw;
	struct slot slots[NSLOTS];
	size_t fill; /* slot being filled */
	int open;    /* main thread: slot fill is open for filling */
	size_t head; /* next slot for the I/O thread */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t io;
	int done, err;
	char errmsg[512];
	uint64_t entries, points;
	uint64_t first_lsn, last_lsn; /* of the entries written */
	const char *db;
};

static void *io_main(void *arg)
{
	struct writer *wr = arg;
	size_t take[NSLOTS];

	for (;;) {
		size_t n = 0;
		pthread_mutex_lock(&wr->mu);
		while (!wr->done && wr->slots[wr->head].state != 2)
			pthread_cond_wait(&wr->cv, &wr->mu);
		while (n < NSLOTS && wr->slots[(wr->head + n) % NSLOTS].state == 2) {
			take[n] = (wr->head + n) % NSLOTS;
			n++;
		}
		if (n == 0 && wr->done) {
			pthread_mutex_unlock(&wr->mu);
			return NULL;
		}
		pthread_mutex_unlock(&wr->mu);

		int rc = 0;
		uint64_t entries = 0, points = 0, lsn = 0, first = 0;
		for (size_t i = 0; i < n && rc == 0; i++) {
			struct slot *s = &wr->slots[take[i]];
			if (!wr->raw) {
				const unsigned char *p;
				size_t len;
				wal_enc_finish(s->enc, &p, &len);
				rc = wal_engine_append(wr->eng, WAL_T_POINTS, p, len, s->points, &lsn);
				first = first ? first : lsn;
				entries++;
			} else {
				size_t start = 0;
				for (size_t j = 0; j < s->nraw && rc == 0; j++) {
					rc = wal_engine_append(wr->eng, WAL_T_RAW, s->raw + start,
					                       s->rawends[j] - start, 1, &lsn);
					first = first ? first : lsn;
					start = s->rawends[j];
					entries++;
				}
			}
			points += s->points;
		}
		/* after a failed sync, its error rather than its echo */
		const char *why = rc ? wal_engine_failure(wr->eng) : NULL;
		pthread_mutex_lock(&wr->mu);
		if (rc && !wr->err) {
			wr->err = rc;
			snprintf(wr->errmsg, sizeof wr->errmsg, "%s", why ? why : wal_errmsg());
		}
		if (rc == 0) {
			wr->entries += entries;
			wr->points += points;
			wr->first_lsn = wr->first_lsn ? wr->first_lsn : first;
			wr->last_lsn = lsn;
		}
		for (size_t i = 0; i < n; i++)
			wr->slots[take[i]].state = 0;
		wr->head = (wr->head + n) % NSLOTS;
		pthread_cond_broadcast(&wr->cv);
		pthread_mutex_unlock(&wr->mu);
		if (rc) {
			/* Keep draining so the producer never blocks; nothing more is written. */
			pthread_mutex_lock(&wr->mu);
			while (!wr->done) {
				for (size_t i = 0; i < NSLOTS; i++)
					if (wr->slots[i].state == 2)
						wr->slots[i].state = 0;
				pthread_cond_broadcast(&wr->cv);
				pthread_cond_wait(&wr->cv, &wr->mu);
			}
			pthread_mutex_unlock(&wr->mu);
			return NULL;
		}
	}
}

/* The slot to fill, waiting for one to come free.  Slot states are shared
 * with the I/O thread and change under the lock; whether a slot is open
 * for filling is the main thread's own business. */
static struct slot *filling(struct writer *wr)
{
	struct slot *s = &wr->slots[wr->fill];

	if (wr->open)
		return s;
	pthread_mutex_lock(&wr->mu);
	while (s->state != 0 && !wr->err)
		pthread_cond_wait(&wr->cv, &wr->mu);
	s->state = 1;
	pthread_mutex_unlock(&wr->mu);
	wr->open = 1;
	s->points = 0;
	s->nraw = s->rawlen = 0;
	if (!wr->raw)
		wal_enc_begin(s->enc, wr->db, strlen(wr->db));
	return s;
}

static int submit(struct writer *wr)
{
	struct slot *s = &wr->slots[wr->fill];

	if (!wr->open)
		return 0;
	wr->open = 0;
	pthread_mutex_lock(&wr->mu);
	if (s->points == 0 && s->nraw == 0) {
		s->state = 0;
		pthread_mutex_unlock(&wr->mu);
		return 0;
	}
	s->state = 2;
	wr->fill = (wr->fill + 1) % NSLOTS;
	pthread_cond_broadcast(&wr->cv);
	int err = wr->err;
	pthread_mutex_unlock(&wr->mu);
	return err;
}

static int add_raw(struct slot *s, const char *p, size_t n)
{
	if (s->rawlen + n > s->rawcap) {
		size_t c = s->rawcap ? s->rawcap : 65536;
		while (c < s->rawlen + n)
			c *= 2;
		char *q = realloc(s->raw, c);
		if (!q)
			return WAL_ENOMEM;
		s->raw = q;
		s->rawcap = c;
	}
	if (s->nraw == s->capends) {
		size_t c = s->capends ? s->capends * 2 : 1024;
		uint32_t *q = realloc(s->rawends, c * sizeof *q);
		if (!q)
			return WAL_ENOMEM;
		s->rawends = q;
		s->capends = c;
	}
	memcpy(s->raw + s->rawlen, p, n);
	s->rawlen += n;
	s->rawends[s->nraw++] = (uint32_t)s->rawlen;
	s->points++;
	return 0;
}

struct input {
	char *buf;
	size_t cap, have;
};

static int read_more(struct input *in, int fd, const char *name, int *eof)
{
	if (in->have == in->cap) {
		size_t c = in->cap * 2;
		char *q = realloc(in->buf, c);
		if (!q) {
			errorf("out of memory reading '%s'", name);
			return -1;
		}
		in->buf = q;
		in->cap = c;
	}
	for (;;) {
		ssize_t n = read(fd, in->buf + in->have, in->cap - in->have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			errorf("cannot read '%s': %s", name, strerror(errno));
			return -1;
		}
		*eof = n == 0;
		in->have += (size_t)n;
		return 0;
	}
}

/* The helper thread parses the second half of a large chunk into encoders
 * of its own; the main thread hands them to the I/O ring after its half. */
struct part {
	wal_lp_t *lp;
	const char *buf;
	size_t len, consumed;
	int eof;
	wal_enc_t **encs; /* finished batches, then the one being filled */
	size_t *counts;
	size_t nencs, capencs;
	struct bad_line {
		uint64_t line;
		char msg[240];
	} * errs;
	size_t nerrs, caperrs;
	int fatal;
	char fatal_msg[256];
};

struct run {
	struct writer *wr; /* NULL for --parse-only */
	wal_lp_t *lp;
	int raw, strict, have_default;
	int64_t default_time;
	uint64_t batch, bad;
	int stop;
	const char *name;
	/* the helper */
	int par;
	struct part part;
	pthread_t helper;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int job, quit;
	/* InfluxDB export files: the database named by the last
	 * CONTEXT-DATABASE line (unless --db forces one), and whether the input
	 * has directives, which keep its chunks from being split */
	const char *base_db;
	int db_forced, export_seen, ctx_bad, noted_forced;
	uint64_t ctx_seq;
	char db[WAL_DB_DIRNAME_MAX + 1], ctx_why[400];
};

static void report_bad(struct run *r, uint64_t line, const char *msg)
{
	r->bad++;
	if (!g_quiet || r->strict)
		errorf("'%s' line %" PRIu64 ": %s%s", r->name, line, msg, r->strict ? " (stopping: --strict)" : "");
}

/* A point for the helper's own encoders; NEED bounds its encoded size. */
static int part_add(struct run *r, struct part *pt_, const struct wal_point *pt, size_t need)
{
	if (pt_->nencs == 0 || pt_->counts[pt_->nencs - 1] >= r->batch ||
	    wal_enc_size(pt_->encs[pt_->nencs - 1]) >= (8u << 20) ||
	    wal_enc_size(pt_->encs[pt_->nencs - 1]) + need > WAL_POINT_MAX(strlen(r->wr->db))) {
		if (pt_->nencs == pt_->capencs) {
			size_t c = pt_->capencs ? pt_->capencs * 2 : 8;
			wal_enc_t **e = realloc(pt_->encs, c * sizeof *e);
			size_t *n = e ? realloc(pt_->counts, c * sizeof *n) : NULL;
			if (!e || !n)
				return WAL_ENOMEM;
			for (size_t i = pt_->capencs; i < c; i++)
				e[i] = NULL;
			pt_->encs = e;
			pt_->counts = n;
			pt_->capencs = c;
		}
		if (!pt_->encs[pt_->nencs] && wal_enc_new(&pt_->encs[pt_->nencs]) != 0)
			return WAL_ENOMEM;
		wal_enc_begin(pt_->encs[pt_->nencs], r->wr->db, strlen(r->wr->db));
		pt_->counts[pt_->nencs++] = 0;
	}
	int rc = wal_enc_add(pt_->encs[pt_->nencs - 1], pt);
	if (rc == 0)
		pt_->counts[pt_->nencs - 1]++;
	return rc;
}

/* A rejected line: the helper keeps it for the main thread to report in
 * order; the main thread reports it.  1: stop (--strict), -1: out of
 * memory. */
static int reject(struct run *r, struct part *part, uint64_t line, const char *msg)
{
	if (part) {
		if (part->nerrs == part->caperrs) {
			size_t c = part->caperrs ? part->caperrs * 2 : 16;
			void *e = realloc(part->errs, c * sizeof *part->errs);
			if (!e)
				return -1;
			part->errs = e;
			part->caperrs = c;
		}
		part->errs[part->nerrs].line = line;
		snprintf(part->errs[part->nerrs++].msg, sizeof part->errs[0].msg, "%s", msg);
		return 0;
	}
	report_bad(r, line, msg);
	if (r->strict) {
		r->stop = 1;
		return 1;
	}
	return 0;
}

/* The main thread read a CONTEXT-DATABASE line: the points after it go to
 * the database it names, in entries of their own. */
static int context_switch(struct run *r, wal_lp_t *lp)
{
	struct wal_str db;
	uint64_t line;
	const char *why;

	r->ctx_seq = wal_lp_context(lp, &db, &line, &why);
	if (r->db_forced) {
		if (!r->noted_forced++ && !g_quiet)
			notef("'%s' line %" PRIu64 ": --db %s wins over the input's CONTEXT-DATABASE lines", r->name,
			      line, r->wr->db);
		return 0;
	}
	if (!db.p) {
		r->ctx_bad = 1;
		snprintf(r->ctx_why, sizeof r->ctx_why, "the database named on line %" PRIu64 " is not valid: %s", line,
		         why);
		return 0;
	}
	r->ctx_bad = 0;
	if (strlen(r->wr->db) == db.n && memcmp(r->wr->db, db.p, db.n) == 0)
		return 0;
	if (submit(r->wr) != 0)
		return -1;
	memcpy(r->db, db.p, db.n);
	r->db[db.n] = 0;
	r->wr->db = r->db;
	return 0;
}

/* Parse buf[0..len) with LP; points go to the ring (part == NULL) or to the
 * helper's encoders.  Returns 0, or an exit status on a fatal error. */
static int parse_span(struct run *r, wal_lp_t *lp, struct part *part, const char *buf, size_t len, uint64_t first_line,
                      int eof)
{
	struct wal_point pt;
	int k;

	wal_lp_input(lp, buf, len, first_line, eof);
	while ((k = wal_lp_next(lp, &pt)) != 0) {
		if (k == WAL_EPARSE) {
			int st = reject(r, part, wal_lp_line(lp), wal_lp_error(lp));
			if (st < 0)
				return EXIT_OPER;
			if (st)
				break;
			continue;
		}
		if (k < 0) {
			if (part) {
				part->fatal = 1;
				snprintf(part->fatal_msg, sizeof part->fatal_msg, "%s", wal_errmsg());
			} else {
				errorf("'%s': %s", r->name, wal_errmsg());
				r->stop = 1;
			}
			return EXIT_OPER;
		}
		if (!r->wr) {
			json_point(stdout, &pt, "walctl-point/1");
			putchar('\n');
			continue;
		}
		struct wal_str cdb;
		uint64_t cline;
		const char *cwhy;
		if (!part && wal_lp_context(lp, &cdb, &cline, &cwhy) != r->ctx_seq && context_switch(r, lp) != 0) {
			r->stop = 1;
			break;
		}
		if (!part && r->ctx_bad) {
			int st = reject(r, NULL, wal_lp_line(lp), r->ctx_why);
			if (st)
				break;
			continue;
		}
		/* A point no entry can hold is a bad line like any other. */
		size_t need = wal_point_encoded_max(&pt), most = WAL_POINT_MAX(strlen(r->wr->db));
		if (need > most) {
			char msg[160];
			snprintf(msg, sizeof msg,
			         "point too large: up to %zu bytes encoded, more than the %zu an entry can hold", need,
			         most);
			int st = reject(r, part, wal_lp_line(lp), msg);
			if (st < 0)
				return EXIT_OPER;
			if (st)
				break;
			continue;
		}
		if (part) {
			if (part_add(r, part, &pt, need) != 0) {
				part->fatal = 1;
				snprintf(part->fatal_msg, sizeof part->fatal_msg, "line %" PRIu64 ": %s",
				         wal_lp_line(lp), wal_errmsg());
				return EXIT_OPER;
			}
			continue;
		}
		struct slot *s = filling(r->wr);
		if (s->points && wal_enc_size(s->enc) + need > most) {
			/* a large point goes into an entry of its own */
			if (submit(r->wr) != 0) {
				r->stop = 1;
				break;
			}
			s = filling(r->wr);
		}
		if (wal_enc_add(s->enc, &pt) != 0) {
			errorf("'%s' line %" PRIu64 ": %s", r->name, wal_lp_line(lp), wal_errmsg());
			r->stop = 1;
			return EXIT_OPER;
		}
		s->points++;
		if ((s->points >= r->batch || wal_enc_size(s->enc) >= (8u << 20)) && submit(r->wr) != 0) {
			r->stop = 1;
			break;
		}
	}
	return 0;
}

static void *helper_main(void *arg)
{
	struct run *r = arg;
	struct part *pt = &r->part;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->job && !r->quit)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->quit)
			break;
		pthread_mutex_unlock(&r->mu);
		pt->nencs = pt->nerrs = 0;
		pt->fatal = 0;
		parse_span(r, pt->lp, pt, pt->buf, pt->len, 1, pt->eof);
		pt->consumed = wal_lp_consumed(pt->lp);
		pthread_mutex_lock(&r->mu);
		r->job = 0;
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static void helper_wait(struct run *r)
{
	pthread_mutex_lock(&r->mu);
	while (r->job)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
}

/* Hand the helper's batches to the ring, after the main thread's own. */
static int merge_part(struct run *r, uint64_t line_at_split)
{
	struct part *pt = &r->part;

	for (size_t i = 0; i < pt->nerrs; i++)
		report_bad(r, line_at_split + pt->errs[i].line - 1, pt->errs[i].msg);
	if (pt->fatal) {
		errorf("'%s': %s", r->name, pt->fatal_msg);
		r->stop = 1;
		return EXIT_OPER;
	}
	for (size_t i = 0; i < pt->nencs; i++) {
		if (submit(r->wr) != 0) { /* the main thread's partial batch first */
			r->stop = 1;
			return 0;
		}
		struct slot *s = filling(r->wr);
		wal_enc_t *t = s->enc;
		s->enc = pt->encs[i];
		pt->encs[i] = t;
		s->points = pt->counts[i];
	}
	/* The helper's last batch stays open: the next chunk goes on filling it. */
	return 0;
}

#define PAR_MIN (1u << 20)

/* Where to split a chunk between the main thread and the helper: after the
 * line that fills the batch being filled (or a later one) nearest the
 * middle, so that batches keep their size when lines are points.  NULL if
 * the chunk has no newline past its middle. */
static const char *find_split(const char *buf, size_t have, uint64_t need, uint64_t batch)
{
	const char *p = buf, *end = buf + have, *mid = buf + have / 2, *before = NULL;
	uint64_t n = 0, target = need ? need : batch;

	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		p++;
		if (++n == target) {
			if (p >= mid) /* the boundary nearest the middle */
				return before && mid - before < p - 1 - mid ? before : p - 1;
			before = p - 1;
			target += batch;
		}
	}
	if (before)
		return before;
	return memchr(mid, '\n', (size_t)(end - mid));
}

/* The points (lines) the I/O thread has written so far. */
static uint64_t written_points(struct writer *wr)
{
	pthread_mutex_lock(&wr->mu);
	uint64_t n = wr->points;
	pthread_mutex_unlock(&wr->mu);
	return n;
}

/* Parse one input; returns 0, or an exit status on a fatal error. */
static int do_input(struct run *r, int fd, const char *name)
{
	struct input in = { malloc(READ_CHUNK), READ_CHUNK, 0 };
	int eof = 0, rc = 0, no_split = 0;
	uint64_t line = 1, done = 0;
	struct progress pg;
	struct stat st;

	r->name = name;
	if (r->wr && !r->db_forced && r->wr->db != r->base_db) {
		/* a CONTEXT-DATABASE line holds for the rest of its own file */
		if (submit(r->wr) != 0)
			return EXIT_OPER;
		r->wr->db = r->base_db;
	}
	r->ctx_bad = 0;
	progress_start(&pg, "write", fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0);
	if (!in.buf) {
		errorf("out of memory");
		return EXIT_OPER;
	}
	while (!eof && !r->stop) {
		if (read_more(&in, fd, name, &eof) != 0) {
			rc = EXIT_OPER;
			break;
		}
		if (!eof && in.have < in.cap)
			continue; /* fill the buffer before parsing */
		size_t used = 0;
		if (r->raw) {
			char *p = in.buf, *end = in.buf + in.have;
			while (p < end) {
				char *nl = memchr(p, '\n', (size_t)(end - p));
				if (!nl && !eof)
					break;
				size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
				struct slot *s = filling(r->wr);
				if (add_raw(s, p, n) != 0) {
					errorf("out of memory");
					rc = EXIT_OPER;
					break;
				}
				if (s->nraw >= r->batch && submit(r->wr) != 0)
					break;
				p += n + (nl != NULL);
			}
			used = (size_t)(p - in.buf);
		} else {
			const char *nl = NULL;
			if (!r->have_default) {
				wal_lp_set_default_time(r->lp, wal_now_ns());
				if (r->par)
					wal_lp_set_default_time(r->part.lp, wal_now_ns());
			}
			/* an InfluxDB export's directives are the main thread's: the
			 * helper would not know the database or the DDL section */
			if (!r->export_seen && lp_has_directive(in.buf, in.have))
				r->export_seen = 1;
			if (r->par && !no_split && !r->export_seen && in.have >= PAR_MIN) {
				struct slot *cur = &r->wr->slots[r->wr->fill];
				nl = find_split(in.buf, in.have, r->wr->open ? r->batch - cur->points : 0, r->batch);
			}
			no_split = 0;
			if (nl) {
				size_t split = (size_t)(nl - in.buf) + 1;
				pthread_mutex_lock(&r->mu);
				r->part.buf = in.buf + split;
				r->part.len = in.have - split;
				r->part.eof = eof;
				r->job = 1;
				pthread_cond_broadcast(&r->cv);
				pthread_mutex_unlock(&r->mu);
				rc = parse_span(r, r->lp, NULL, in.buf, split, line, 0);
				helper_wait(r);
				used = wal_lp_consumed(r->lp);
				line = wal_lp_next_line(r->lp);
				if (rc == 0 && !r->stop && used == split) {
					rc = merge_part(r, line);
					used += r->part.consumed;
					line += wal_lp_next_line(r->part.lp) - 1;
				} else if (rc == 0 && !r->stop) {
					/* The split fell inside an entry (a newline in a
					 * string): what the helper did is dropped and the
					 * rest is parsed in one piece. */
					no_split = 1;
				}
			} else {
				rc = parse_span(r, r->lp, NULL, in.buf, in.have, line, eof);
				used = wal_lp_consumed(r->lp);
				line = wal_lp_next_line(r->lp);
			}
			if (no_split && eof) {
				eof = 0; /* go round once more for the rest */
			}
		}
		if (rc)
			break;
		memmove(in.buf, in.buf + used, in.have - used);
		in.have -= used;
		done += used;
		if (r->wr)
			progress_items(&pg, done, written_points(r->wr), r->raw ? "lines" : "points");
		else
			progress_update(&pg, done);
		if (r->wr && r->wr->err)
			break;
	}
	progress_end(&pg);
	free(in.buf);
	return rc;
}

int cmd_write(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONGOPTS,
		{ "input", required_argument, NULL, OPT_INPUT },
		{ "db", required_argument, NULL, OPT_DB },
		{ "precision", required_argument, NULL, OPT_PRECISION },
		{ "sync", required_argument, NULL, OPT_SYNC },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "max-segment-size", required_argument, NULL, OPT_SEGSIZE },
		{ "max-segment-age", required_argument, NULL, OPT_SEGAGE },
		{ "strict", no_argument, NULL, OPT_STRICT },
		{ "parse-only", no_argument, NULL, OPT_PARSE_ONLY },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "default-time", required_argument, NULL, OPT_DEFAULT_TIME },
		{ NULL, 0, NULL, 0 },
	};
	struct wal_opts wo = { 0 };
	struct run r = { .batch = 5000 };
	const char *db = "default";
	int prec = WAL_PREC_NS, parse_only = 0, opt, rc = 0;

	while ((opt = getopt_long(argc, argv, COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (common_opt(opt, optarg))
			continue;
		switch (opt) {
		case 'h': return cmd_usage("write", options, stdout);
		case OPT_INPUT:
			if (strcmp(optarg, "lp") == 0)
				r.raw = 0;
			else if (strcmp(optarg, "raw") == 0)
				r.raw = 1;
			else
				return usage_error("option '--input': invalid value '%s' (want lp or raw)", optarg);
			break;
		case OPT_DB:
			if (wal_db_check(optarg, strlen(optarg)) != 0)
				return usage_error("option '--db': %s", wal_errmsg());
			db = optarg;
			r.db_forced = 1;
			break;
		case OPT_PRECISION:
			if ((prec = wal_precision_parse(optarg)) < 0)
				return usage_error("option '--precision': invalid value '%s' (want ns, us, ms or s)",
				                   optarg);
			break;
		case OPT_SYNC:
			if (parse_sync("--sync", optarg, &wo.sync))
				return EXIT_USAGE;
			break;
		case OPT_BATCH:
			if (parse_u64("--batch", optarg, &r.batch))
				return EXIT_USAGE;
			if (r.batch == 0)
				return usage_error("option '--batch': must be at least 1");
			break;
		case OPT_SEGSIZE:
			if (parse_size("--max-segment-size", optarg, &wo.max_segment_size))
				return EXIT_USAGE;
			if (wo.max_segment_size < 4096)
				return usage_error("option '--max-segment-size': must be at least 4k");
			break;
		case OPT_SEGAGE:
			if (parse_duration("--max-segment-age", optarg, &wo.max_segment_age_ns))
				return EXIT_USAGE;
			break;
		case OPT_STRICT: r.strict = 1; break;
		case OPT_PARSE_ONLY: parse_only = 1; break;
		case OPT_FORMAT:
			if (strcmp(optarg, "jsonl") != 0)
				return usage_error("option '--format': invalid value '%s' (write prints jsonl only)",
				                   optarg);
			break;
		case OPT_DEFAULT_TIME:
			if (parse_i64("--default-time", optarg, &r.default_time))
				return EXIT_USAGE;
			r.have_default = 1;
			break;
		default: return option_error(opt, argv);
		}
	}
	if (parse_only && r.raw)
		return usage_error("--parse-only reads line protocol; it does not go with --input raw");

	if (!r.raw &&
	    wal_lp_new(&r.lp, (enum wal_precision)prec, r.have_default ? r.default_time : wal_now_ns()) != 0) {
		errorf("%s", wal_errmsg());
		return EXIT_OPER;
	}

	struct writer wr = { .raw = r.raw, .db = db };
	r.base_db = db;
	if (!parse_only) {
		struct wal_engine_opts eo = { .wal = wo, .wal_only = 1 };
		int err = wal_engine_open(&wr.eng, data_dir(), &eo);
		if (err) {
			errorf("%s", wal_errmsg());
			wal_engine_close(wr.eng);
			wal_lp_free(r.lp);
			return exit_for(err);
		}
		if (wal_engine_torn_note(wr.eng))
			notef("%s", wal_engine_torn_note(wr.eng));
		for (int i = 0; i < NSLOTS; i++)
			if (!r.raw && wal_enc_new(&wr.slots[i].enc) != 0) {
				errorf("out of memory");
				return EXIT_OPER;
			}
		pthread_mutex_init(&wr.mu, NULL);
		pthread_cond_init(&wr.cv, NULL);
		if (pthread_create(&wr.io, NULL, io_main, &wr) != 0) {
			errorf("cannot start the I/O thread");
			return EXIT_OPER;
		}
		r.wr = &wr;
		/* A helper parses half of each large chunk: not with --strict,
		 * whose stopping point must be exact. */
		r.par = !r.raw && !r.strict;
		if (r.par) {
			pthread_mutex_init(&r.mu, NULL);
			pthread_cond_init(&r.cv, NULL);
			if (wal_lp_new(&r.part.lp, (enum wal_precision)prec,
			               r.have_default ? r.default_time : wal_now_ns()) != 0 ||
			    pthread_create(&r.helper, NULL, helper_main, &r) != 0)
				r.par = 0;
		}
	}

	if (optind >= argc) {
		rc = do_input(&r, 0, "<stdin>");
	} else {
		for (int i = optind; i < argc && !rc && !r.stop; i++) {
			int fd = strcmp(argv[i], "-") == 0 ? 0 : open(argv[i], O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				errorf("cannot open '%s': %s", argv[i], strerror(errno));
				rc = EXIT_OPER;
				break;
			}
			rc = do_input(&r, fd, argv[i]);
			if (fd)
				close(fd);
		}
	}

	if (r.par) {
		pthread_mutex_lock(&r.mu);
		r.quit = 1;
		pthread_cond_broadcast(&r.cv);
		pthread_mutex_unlock(&r.mu);
		pthread_join(r.helper, NULL);
		for (size_t i = 0; i < r.part.capencs; i++)
			wal_enc_free(r.part.encs[i]);
		free(r.part.encs);
		free(r.part.counts);
		free(r.part.errs);
		wal_lp_free(r.part.lp);
	}
	if (r.wr) {
		if (!r.wr->err)
			submit(r.wr);
		pthread_mutex_lock(&wr.mu);
		wr.done = 1;
		pthread_cond_broadcast(&wr.cv);
		pthread_mutex_unlock(&wr.mu);
		pthread_join(wr.io, NULL);
		struct wal_engine_stats st;
		wal_engine_stop(wr.eng);
		wal_engine_stats(wr.eng, &st);
		if (!wr.err && wal_engine_failure(wr.eng)) {
			wr.err = WAL_ESYNC;
			snprintf(wr.errmsg, sizeof wr.errmsg, "%s", wal_engine_failure(wr.eng));
		}
		int cerr = wal_engine_close(wr.eng);
		if (wr.err) {
			errorf("%s", wr.errmsg);
			errorf("stopped: %" PRIu64 " points in %" PRIu64
			       " entries were written and synced before the failure",
			       st.acked_points, st.acked_entries);
			rc |= EXIT_OPER;
		} else if (cerr) {
			errorf("%s", wal_errmsg());
			rc |= EXIT_OPER;
		} else if (!g_quiet) {
			if (wr.entries)
				notef("wrote %" PRIu64 " %s in %" PRIu64 " entries (LSN %" PRIu64 "-%" PRIu64 ")",
				      wr.points, r.raw ? "lines" : "points", wr.entries, wr.first_lsn, wr.last_lsn);
			else
				notef("nothing to write");
		}
		for (int i = 0; i < NSLOTS; i++) {
			wal_enc_free(wr.slots[i].enc);
			free(wr.slots[i].raw);
			free(wr.slots[i].rawends);
		}
	}
	if (r.lp && wal_lp_ddl_skipped(r.lp) && !g_quiet)
		notef("skipped %" PRIu64 " DDL %s of an InfluxDB export (databases are created as their points arrive)",
		      wal_lp_ddl_skipped(r.lp), wal_lp_ddl_skipped(r.lp) == 1 ? "statement" : "statements");
	if (r.bad) {
		errorf("%" PRIu64 " bad %s rejected", r.bad, r.bad == 1 ? "line" : "lines");
		rc |= EXIT_DAMAGE;
	}
	wal_lp_free(r.lp);
	return rc;
}
