/*
 * ship.c - walctl ship: hand a data directory's points onward, batch by
 * batch, to a command, from a named consumer's cursor on, following the
 * live WAL; the cursor moves, durably, only when the command exits 0.
 *
 * What comes after the cursor is read in LSN order: first from storage
 * (the points at or below the last checkpoint, for a consumer that starts
 * behind it), then from the WAL.  A live consumer holds back reclamation
 * (lib/consumers.c), so every segment above its cursor is still there.
 * A batch is whole entries of one database; it is handed on when it holds
 * --batch-points points, when the database changes, or --batch-interval
 * after its first point.  A command that fails is run again with the same
 * batch, after a pause that doubles up to 30 s: a batch is never skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

static const char options[] =
    "  --consumer NAME            whose cursor says where to start (see walctl consumers)\n"
    "  --exec CMD                 run CMD (sh -c) once per batch, the batch on its stdin\n"
    "  --format lp|influx-import|jsonl\n"
    "                             format of a batch (default lp)\n"
    "  --batch-points N           points per batch at most (default 5000)\n"
    "  --batch-interval DUR       hand a batch on at most DUR after its first point (default 1s)\n"
    "  --once                     deliver what is there now, then exit instead of following\n"
    "  --metrics-file PATH        Prometheus text metrics, rewritten every second and at exit\n"
    "  --metrics-label NAME=VALUE a label on every metric (repeatable; dir=DIR is always there)\n";

enum { OPT_CONSUMER = 256, OPT_EXEC, OPT_FORMAT, OPT_BATCH, OPT_INTERVAL, OPT_ONCE, OPT_METRICS, OPT_LABEL };
enum { S_LP, S_INFLUX, S_JSONL };

#define BACKOFF_FIRST_NS 100000000LL   /* 0.1 s */
#define BACKOFF_MAX_NS   30000000000LL /* 30 s */

static volatile sig_atomic_t stopping;
static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

/* The batch handed on and not yet taken: its file, the command's pid. */
struct flight {
	int on, fd;
	pid_t pid;
	uint64_t first, last, points;
	size_t len;
	char *db;
};

struct ship {
	const char *dir, *name;
	char *cmd; /* --exec */
	struct flight fl;
	int format, once;
	uint64_t batch_points;
	int64_t batch_ns;
	uint64_t cursor; /* delivered, durably */
	/* the batch being built: whole entries of one database, written
	 * through f into buf, whose room (cap) is kept from batch to batch */
	char *buf;
	size_t len, cap;
	FILE *f;
	char *db;
	uint64_t first, last, points;
	int64_t started_ns;
	wal_dec_t *dec;
	struct lpout *lp; /* lp and influx-import: formatted on every core */
	/* seen: the last LSN read; checked: when the cursor file was last read */
	uint64_t seen;
	uint64_t start_cursor; /* the cursor ship started at */
	/* durable: the highest LSN known durable (a frame's durable mark, or
	 * our own sync of last_seg, the segment of the last entry read from
	 * the WAL); nothing above it is handed on */
	uint64_t durable;
	char last_seg[64];
	int64_t checked_ns, metrics_ns;
	/* counters; lost: LSNs of known losses passed (LOSS entries) */
	uint64_t batches, delivered, failures, losses, lost_lsns;
	int64_t started;
	const char *metrics;
	const char *label[16];
	size_t nlabels;
	char labels[4096];
};

/* The stream of the batch: appends to buf, growing it by doubling. */
static int batch_room(struct ship *s, size_t n);

static ssize_t batch_write(void *cookie, const char *p, size_t n)
{
	struct ship *s = cookie;

	if (batch_room(s, n) != 0)
		return -1;
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return (ssize_t)n;
}

/* Room for N more bytes in buf. */
static int batch_room(struct ship *s, size_t n)
{
	if (s->len + n <= s->cap)
		return 0;
	size_t cap = s->cap ? s->cap : 1 << 20;
	while (cap < s->len + n)
		cap *= 2;
	char *q = realloc(s->buf, cap);
	if (!q)
		return -1;
	s->buf = q;
	s->cap = cap;
	return 0;
}

static int batch_open(struct ship *s)
{
	static const cookie_io_functions_t io = { .write = batch_write };

	if (!s->f && !(s->f = fopencookie(s, "w", io))) {
		errorf("out of memory");
		return -1;
	}
	s->len = 0;
	s->first = s->last = s->points = 0;
	free(s->db);
	s->db = NULL;
	return 0;
}

static void batch_free(struct ship *s)
{
	if (s->f)
		fclose(s->f);
	s->f = NULL;
	free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
	free(s->db);
	s->db = NULL;
}

static int write_metrics(struct ship *s)
{
	char text[8192];
	size_t n = 0;
	const char *L = s->labels;

	if (!s->metrics)
		return 0;
#define M(name, type, help, fmt, ...)                                                                                  \
	n += (size_t)snprintf(text + n, sizeof text - n,                                                               \
	                      "# HELP walctl_ship_" name " " help "\n# TYPE walctl_ship_" name " " type                \
	                      "\nwalctl_ship_" name "{%s} " fmt "\n",                                                  \
	                      L, __VA_ARGS__)
	n += (size_t)snprintf(text + n, sizeof text - n,
	                      "# HELP walctl_build_info walctl's version, as a label.\n# TYPE walctl_build_info gauge\n"
	                      "walctl_build_info{%s,version=\"%s\"} 1\n",
	                      L, WAL_VERSION_STRING);
	M("start_time_seconds", "gauge", "Start time of the process since the Unix epoch.", "%.3f",
	  (double)s->started / 1e9);
	M("cursor_lsn", "gauge", "The consumer's cursor: the highest LSN delivered.", "%" PRIu64, s->cursor);
	M("read_lsn", "gauge", "The highest LSN read from storage or the WAL.", "%" PRIu64, s->seen);
	M("lag_lsns", "gauge", "LSNs read but not yet delivered.", "%" PRIu64,
	  s->seen > s->cursor ? s->seen - s->cursor : 0);
	M("batches_total", "counter", "Batches delivered (the command exited 0).", "%" PRIu64, s->batches);
	M("points_total", "counter", "Points delivered.", "%" PRIu64, s->delivered);
	M("failures_total", "counter", "Runs of the command that failed (each retried).", "%" PRIu64, s->failures);
	M("known_losses_total", "counter", "Known losses passed: LSN ranges a repair gave up, which no sink gets.",
	  "%" PRIu64, s->losses);
	M("lost_lsns_total", "counter", "LSNs of the known losses passed.", "%" PRIu64, s->lost_lsns);
#undef M
	if (n >= sizeof text)
		n = sizeof text - 1;
	return metrics_write(s->metrics, text, n);
}

static void maybe_metrics(struct ship *s, int now)
{
	int64_t t = wal_now_ns();

	if (!s->metrics || (!now && t - s->metrics_ns < 1000000000))
		return;
	s->metrics_ns = t;
	if (write_metrics(s) != 0)
		logfmt("warn", "msg=\"cannot write metrics\" error=\"%s\"", wal_lq(wal_errmsg()));
}

/* Sleep NS, or until asked to stop (1). */
static int pause_ns(int64_t ns)
{
	while (ns > 0 && !stopping) {
		int64_t step = ns < 20000000 ? ns : 20000000;
		struct timespec ts = { 0, (long)step };
		nanosleep(&ts, NULL);
		ns -= step;
	}
	return stopping;
}

/* Start the command on the batch in flight: its file on stdin, its
 * LSNs in the environment.  0, or -1 when it could not be started. */
static int launch(struct ship *s)
{
	struct flight *fl = &s->fl;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t def, none;
	pid_t pid;
	int rc;

	/* the environment: ship's own, without any WALCTL_ variable of a
	 * batch, then the batch's */
	static const char *const ours[] = { "WALCTL_DB=", "WALCTL_FIRST_LSN=", "WALCTL_LAST_LSN=", "WALCTL_POINTS=",
		                            "WALCTL_CONSUMER=" };
	size_t ne = 0, k = 0;
	while (environ[ne])
		ne++;
	char **envp = calloc(ne + 6, sizeof *envp), v[5][WAL_CONSUMER_NAME_MAX + 400];
	if (!envp) {
		logfmt("error", "msg=\"out of memory\"");
		return -1;
	}
	for (size_t i = 0; i < ne; i++) {
		int theirs = 1;
		for (size_t j = 0; j < 5; j++)
			theirs &= strncmp(environ[i], ours[j], strlen(ours[j])) != 0;
		if (theirs)
			envp[k++] = environ[i];
	}
	snprintf(v[0], sizeof v[0], "WALCTL_DB=%s", fl->db ? fl->db : "");
	snprintf(v[1], sizeof v[1], "WALCTL_FIRST_LSN=%" PRIu64, fl->first);
	snprintf(v[2], sizeof v[2], "WALCTL_LAST_LSN=%" PRIu64, fl->last);
	snprintf(v[3], sizeof v[3], "WALCTL_POINTS=%" PRIu64, fl->points);
	snprintf(v[4], sizeof v[4], "WALCTL_CONSUMER=%s", s->name);
	for (size_t j = 0; j < 5; j++)
		envp[k++] = v[j];
	envp[k] = NULL;
	/* spawned, not forked: a fork would copy the page tables of ship's
	 * buffers, and ship's writes to them would fault until the exec */
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGINT);
	sigemptyset(&none);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_adddup2(&fa, fl->fd, 0);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	char sh[] = "sh", c[] = "-c", *argv[] = { sh, c, s->cmd, NULL };
	rc = lseek(fl->fd, 0, SEEK_SET) != 0 ? errno : posix_spawn(&pid, "/bin/sh", &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(envp);
	if (rc) {
		logfmt("error", "msg=\"cannot start the command\" error=\"%s\"", wal_lq(strerror(rc)));
		return -1;
	}
	fl->pid = pid;
	return 0;
}

static void flight_end(struct flight *fl)
{
	close(fl->fd);
	free(fl->db);
	fl->db = NULL;
	fl->on = 0;
}

/* Wait for the batch in flight, and run the command again on it until it
 * takes it, after a pause that doubles each time: 0 when it was delivered
 * (the cursor moved) or none was in flight; 1 when asked to stop while
 * waiting to retry (the batch is abandoned); -1 on an error of our own.
 * A command that is running is waited for even when asked to stop. */
static int land(struct ship *s)
{
	struct flight *fl = &s->fl;
	int64_t backoff = BACKOFF_FIRST_NS;
	int st;

	if (!fl->on)
		return 0;
	for (unsigned attempt = 1;; attempt++) {
		while (waitpid(fl->pid, &st, 0) < 0)
			if (errno != EINTR) {
				flight_end(fl);
				return -1;
			}
		st = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (st == 0)
			break;
		s->failures++;
		logfmt("warn",
		       "msg=\"delivery failed\" exit=\"%d\" first_lsn=\"%" PRIu64 "\" last_lsn=\"%" PRIu64
		       "\" points=\"%" PRIu64 "\" attempt=\"%u\" retry_in_seconds=\"%.1f\"",
		       st, fl->first, fl->last, fl->points, attempt, (double)backoff / 1e9);
		maybe_metrics(s, 1);
		if (pause_ns(backoff)) {
			logfmt("info",
			       "msg=\"batch abandoned: stopping\" first_lsn=\"%" PRIu64 "\" last_lsn=\"%" PRIu64 "\"",
			       fl->first, fl->last);
			flight_end(fl);
			return 1;
		}
		backoff = backoff * 2 < BACKOFF_MAX_NS ? backoff * 2 : BACKOFF_MAX_NS;
		if (launch(s) != 0) {
			flight_end(fl);
			return -1;
		}
	}
	if (wal_consumer_advance(s->dir, s->name, fl->last) != 0) {
		errorf("%s", wal_errmsg());
		flight_end(fl);
		return -1;
	}
	s->cursor = fl->last;
	s->batches++;
	s->delivered += fl->points;
	if (g_verbose)
		logfmt("info",
		       "msg=\"delivered\" first_lsn=\"%" PRIu64 "\" last_lsn=\"%" PRIu64 "\" points=\"%" PRIu64
		       "\" bytes=\"%zu\"",
		       fl->first, fl->last, fl->points, fl->len);
	flight_end(fl);
	maybe_metrics(s, 0);
	return 0;
}

/* Make every entry of the batch durable before it is handed on, whatever
 * the writer's sync mode: a power cut must not take back what a sink has.
 * Entries below the highest durable mark read are durable already; the
 * others lie in the segment of the last one (a segment is synced before
 * the next is created), which is synced here.  0, or -1. */
static int make_durable(struct ship *s)
{
	if (s->last <= s->durable || !s->last_seg[0])
		return 0;
	if (wal_segment_sync(s->dir, s->last_seg) != 0) {
		errorf("%s", wal_errmsg());
		return -1;
	}
	s->durable = s->last;
	return 0;
}

/* Hand the batch being built on: once the one in flight has landed, it is
 * written to an in-memory file and the command started on it, and the next
 * batch is built while the command works.  0, 1 when stopping, -1.
 *
 * The file is written whole before the command starts, not a pipe: were
 * ship killed while writing a pipe, the command would read a batch cut
 * short, its last line perhaps a valid point with a truncated value, as if
 * it were whole. */
static int deliver(struct ship *s)
{
	struct flight *fl = &s->fl;
	int rc, fd;

	/* the formatters' output first: a payload that did not decode is
	 * damage, and its batch is not handed on */
	if (s->lp && (rc = lpout_flush(s->lp)) != 0)
		return rc & EXIT_DAMAGE ? -4 : -1;
	if (fflush(s->f) != 0) {
		errorf("out of memory");
		return -1;
	}
	if ((rc = land(s)) != 0)
		return rc;
	if (make_durable(s) != 0)
		return -1;
	if ((fd = memfd_create("walctl-batch", MFD_CLOEXEC)) < 0) {
		logfmt("error", "msg=\"cannot make the batch's file\" error=\"%s\"", wal_lq(strerror(errno)));
		return -1;
	}
	for (size_t off = 0; off < s->len;) {
		ssize_t w = write(fd, s->buf + off, s->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			logfmt("error", "msg=\"cannot write the batch's file\" error=\"%s\"", wal_lq(strerror(errno)));
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	*fl = (struct flight){
		.on = 1, .fd = fd, .first = s->first, .last = s->last, .points = s->points, .len = s->len, .db = s->db
	};
	s->db = NULL; /* the flight's now */
	if (launch(s) != 0) {
		flight_end(fl);
		return -1;
	}
	return batch_open(s) ? -1 : 0;
}

/* Hand the batch on if it has points; else, once the batch in flight
 * has landed, move the cursor over the entries without points it covers. */
static int flush_batch(struct ship *s)
{
	int rc;

	if (s->points)
		return deliver(s);
	if (s->last > s->cursor) {
		if ((rc = land(s)) != 0)
			return rc;
		if (make_durable(s) != 0)
			return -1;
		if (wal_consumer_advance(s->dir, s->name, s->last) != 0) {
			errorf("%s", wal_errmsg());
			return -1;
		}
		s->cursor = s->last;
		s->first = s->last = 0;
	}
	return 0;
}

/* One entry after the cursor, in LSN order: a POINTS payload (or NULL for
 * an entry without points).  0, 1 when stopping, -1 on an error. */
static int take(struct ship *s, uint64_t lsn, const unsigned char *payload, size_t len, const char *where)
{
	struct wal_str db;
	struct wal_point pt;
	int k, rc;

	s->seen = lsn;
	if (!payload) {
		if (!s->first)
			s->first = lsn;
		s->last = lsn;
		return 0;
	}
	/* line protocol is decoded and formatted on the lpout threads; here
	 * the points are only counted.  A payload of no point is an entry
	 * without points. */
	uint64_t n = 0;
	if (wal_dec_count(payload, len, &db, &n) != 0 || (!s->lp && wal_dec_begin(s->dec, payload, len, &db) != 0)) {
		errorf("%s: LSN %" PRIu64 ": %s", where, lsn, wal_errmsg());
		return -4;
	}
	if (!n)
		return take(s, lsn, NULL, 0, where);
	if (s->points && (strlen(s->db) != db.n || memcmp(s->db, db.p, db.n) != 0) && (rc = deliver(s)) != 0)
		return rc;
	char head[WAL_CONSUMER_NAME_MAX + 400], *h = NULL;
	if (!s->db) {
		if (!(s->db = strndup(db.p, db.n))) {
			errorf("out of memory");
			return -1;
		}
		if (s->format == S_INFLUX) {
			snprintf(head, sizeof head, "# DML\n# CONTEXT-DATABASE:%s\n", s->db);
			h = head;
		}
	}
	if (!s->points)
		s->started_ns = wal_now_ns();
	if (s->lp) {
		char at[600];
		snprintf(at, sizeof at, "%s: LSN %" PRIu64, where, lsn);
		if (lpout_add(s->lp, payload, len, h, at) != 0) {
			errorf("out of memory");
			return -1;
		}
		s->points += n;
	} else {
		while ((k = wal_dec_next(s->dec, &pt)) == 1) {
			json_point(s->f, &pt, "walctl-point/1");
			fputc('\n', s->f);
			s->points++;
		}
		if (k < 0) {
			errorf("%s: LSN %" PRIu64 ": %s", where, lsn, wal_errmsg());
			return -4;
		}
	}
	if (!s->first)
		s->first = lsn;
	s->last = lsn;
	if (s->points >= s->batch_points)
		return deliver(s);
	return 0;
}

/* Between entries: hand on a batch that waited long enough, check the
 * consumer is still live, write the metrics.  0, 1 when stopping, -1. */
static int tick(struct ship *s, int idle)
{
	int64_t now = wal_now_ns();
	int rc;

	if (stopping)
		return 1;
	if (s->points && now - s->started_ns >= s->batch_ns && (rc = deliver(s)) != 0)
		return rc;
	if (idle && !s->points && (rc = flush_batch(s)) != 0)
		return rc;
	if (now - s->checked_ns >= 1000000000) {
		struct wal_consumer c;
		s->checked_ns = now;
		if (wal_consumer_get(s->dir, s->name, &c) != 0) {
			errorf("%s", wal_errmsg());
			return -1;
		}
		if (c.lost) {
			errorf("consumer '%s' was marked lost at cursor LSN %" PRIu64
			       " (%s); 'walctl consumers drop %s' "
			       "and add it again",
			       s->name, c.lsn, c.why, s->name);
			return -1;
		}
	}
	maybe_metrics(s, 0);
	return 0;
}

static int cmp_ref(const void *a, const void *b)
{
	const struct wal_part_ref *x = *(const struct wal_part_ref *const *)a,
	                          *y = *(const struct wal_part_ref *const *)b;
	return x->first_lsn < y->first_lsn ? -1 : x->first_lsn > y->first_lsn;
}

/* One stored record, in LSN order (wal_parts_read): taken; ship's own
 * status in *rc, and 1 to stop the reading. */
struct stored_ctx {
	struct ship *s;
	int rc;
};

static int take_stored(void *ctx, const struct wal_part_ref *ref, uint64_t lsn, const unsigned char *pl, size_t len)
{
	struct stored_ctx *c = ctx;

	(void)ref;
	if ((c->rc = take(c->s, lsn, pl, len, "storage")) == 0)
		c->rc = tick(c->s, 0);
	return c->rc != 0;
}

/* Take the records of partitions [i, j) with an LSN in (from, to], in LSN
 * order. */
static int take_group(struct ship *s, const struct wal_part_ref *const *refs, size_t i, size_t j, uint64_t from,
                      uint64_t to)
{
	struct stored_ctx c = { s, 0 };
	int rc = wal_parts_read(s->dir, refs + i, j - i, from, to, take_stored, &c);

	if (rc == 1)
		return c.rc;
	if (rc != 0) {
		errorf("%s", wal_errmsg());
		return -1;
	}
	return 0;
}

/* What storage holds after the cursor, through its checkpoint (*ckpt). */
static int ship_storage(struct ship *s, uint64_t *ckpt)
{
	wal_view_t *v;
	int rc = 0;

	*ckpt = 0;
	if (wal_view_open(&v, s->dir) != 0) {
		errorf("%s", wal_errmsg());
		return -1;
	}
	*ckpt = wal_view_checkpoint(v);
	if (s->cursor < *ckpt && wal_view_nproblems(v)) {
		for (size_t i = 0; i < wal_view_nproblems(v); i++)
			errorf("storage: %s; run 'walctl verify' for details", wal_view_problem(v, i));
		wal_view_close(v);
		return -4;
	}
	size_t np = wal_view_npartitions(v), n = 0;
	const struct wal_part_ref **refs = calloc(np ? np : 1, sizeof *refs);
	if (!refs) {
		wal_view_close(v);
		errorf("out of memory");
		return -1;
	}
	for (size_t i = 0; i < np; i++) {
		const struct wal_part_ref *r = wal_view_partition(v, i);
		if (r->last_lsn > s->cursor && r->first_lsn <= *ckpt)
			refs[n++] = r;
	}
	qsort(refs, n, sizeof *refs, cmp_ref);
	/* partitions whose LSN ranges overlap (one flush's, of several
	 * databases) are read together, one group at a time */
	for (size_t i = 0; rc == 0 && i < n;) {
		size_t j = i + 1;
		uint64_t hi = refs[i]->last_lsn;
		while (j < n && refs[j]->first_lsn <= hi) {
			if (refs[j]->last_lsn > hi)
				hi = refs[j]->last_lsn;
			j++;
		}
		rc = take_group(s, refs, i, j, s->cursor, *ckpt);
		i = j;
	}
	free(refs);
	wal_view_close(v);
	return rc;
}

/* A LOSS entry passed: logged and counted. */
static void passed_loss(struct ship *s, const struct wal_entry *e)
{
	struct wal_loss l;

	if (wal_loss_decode(e->payload, e->len, &l) != 0)
		return;
	char why[200];
	snprintf(why, sizeof why, "%.*s", (int)(l.reason.n < 199 ? l.reason.n : 199), l.reason.p);
	s->losses++;
	s->lost_lsns += l.last_lsn - l.first_lsn + 1;
	logfmt("warn",
	       "msg=\"passed a known loss\" consumer=\"%s\" first_lsn=\"%" PRIu64 "\" last_lsn=\"%" PRIu64
	       "\" reason=\"%s\"",
	       wal_lq(s->name), l.first_lsn, l.last_lsn, wal_lq(why));
}

/* The WAL after FROM, following it unless --once. */
static int ship_wal(struct ship *s, uint64_t from)
{
	char waldir[PATH_MAX + 8];
	const char *paths[1] = { waldir };
	struct wal_scan_opts so = { .follow = !s->once };
	wal_scan_t *sc;
	struct wal_entry e;
	int rc = 0, k;

	snprintf(waldir, sizeof waldir, "%s/wal", s->dir);
	if (wal_scan_open(&sc, paths, 1, &so) != 0) {
		errorf("%s", wal_errmsg());
		return -1;
	}
	size_t reported = 0;
	while (rc == 0) {
		k = wal_scan_next(sc, &e);
		if (k < 0) {
			errorf("%s", wal_errmsg());
			rc = -1;
			break;
		}
		for (; reported < wal_scan_nfindings(sc); reported++) {
			const struct wal_finding *f = wal_scan_finding(sc, reported);
			if (f->cls != WAL_CLASS_DAMAGE)
				continue;
			/* a segment reclaimed under a consumer that was lost
			 * meanwhile: the loss is the news */
			s->checked_ns = 0;
			if (tick(s, 0) < 0) {
				rc = -1;
				break;
			}
			errorf("segment '%s' offset %" PRIu64 ": %s; nothing after it is shipped: run 'walctl verify'",
			       f->segment, f->offset, f->message);
			rc = -4;
		}
		if (rc)
			break;
		if (k == 0) {
			if (s->once)
				break;
			if ((rc = tick(s, 1)) != 0)
				break;
			pause_ns(20000000);
			continue;
		}
		/* LSNs a repair gave up: the sink never gets them, and says so,
		 * also of those it passed reading storage */
		if ((e.type & 0x7f) == WAL_T_LOSS && e.lsn > s->start_cursor)
			passed_loss(s, &e);
		if (e.lsn <= from)
			continue;
		if (e.watermark > s->durable)
			s->durable = e.watermark;
		snprintf(s->last_seg, sizeof s->last_seg, "%s", e.segment);
		char where[400];
		snprintf(where, sizeof where, "segment '%s' offset %" PRIu64, e.segment, e.offset);
		unsigned t = e.type & 0x7f;
		rc = take(s, e.lsn, t == WAL_T_POINTS ? e.payload : NULL, e.len, where);
		if (rc == 0)
			rc = tick(s, 0);
	}
	wal_scan_close(sc);
	return rc;
}

int cmd_ship(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONGOPTS,
		{ "consumer", required_argument, NULL, OPT_CONSUMER },
		{ "exec", required_argument, NULL, OPT_EXEC },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "batch-points", required_argument, NULL, OPT_BATCH },
		{ "batch-interval", required_argument, NULL, OPT_INTERVAL },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "metrics-file", required_argument, NULL, OPT_METRICS },
		{ "metrics-label", required_argument, NULL, OPT_LABEL },
		{ NULL, 0, NULL, 0 },
	};
	struct ship s = { .format = S_LP, .batch_points = 5000, .batch_ns = 1000000000 };
	int opt, rc;

	while ((opt = getopt_long(argc, argv, COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (common_opt(opt, optarg))
			continue;
		switch (opt) {
		case 'h': return cmd_usage("ship", options, stdout);
		case OPT_CONSUMER: s.name = optarg; break;
		case OPT_EXEC: s.cmd = optarg; break;
		case OPT_FORMAT:
			if (!strcmp(optarg, "lp"))
				s.format = S_LP;
			else if (!strcmp(optarg, "influx-import"))
				s.format = S_INFLUX;
			else if (!strcmp(optarg, "jsonl"))
				s.format = S_JSONL;
			else
				return usage_error(
				    "option '--format': invalid value '%s' (want lp, influx-import or jsonl)", optarg);
			break;
		case OPT_BATCH:
			if (parse_u64("--batch-points", optarg, &s.batch_points))
				return EXIT_USAGE;
			if (!s.batch_points)
				return usage_error("option '--batch-points': want 1 or more");
			break;
		case OPT_INTERVAL:
			if (parse_duration("--batch-interval", optarg, &s.batch_ns))
				return EXIT_USAGE;
			break;
		case OPT_ONCE: s.once = 1; break;
		case OPT_METRICS: s.metrics = optarg; break;
		case OPT_LABEL:
			if (metric_label_opt(optarg, s.label, &s.nlabels, sizeof s.label / sizeof s.label[0]))
				return EXIT_USAGE;
			break;
		default: return option_error(opt, argv);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!s.name || !s.cmd)
		return usage_error("give --consumer NAME and --exec CMD");
	if (!wal_consumer_name_ok(s.name))
		return usage_error("invalid consumer name '%s'", s.name);
	s.dir = data_dir();

	/* one shipper per consumer */
	char lockpath[PATH_MAX + 100];
	snprintf(lockpath, sizeof lockpath, "%s/consumers/.%s.lock", s.dir, s.name);
	struct wal_consumer c;
	if ((rc = wal_consumer_get(s.dir, s.name, &c)) != 0) {
		if (rc == WAL_ECORRUPT) {
			errorf("%s; nothing is shipped: run 'walctl verify -d %s'", wal_errmsg(), s.dir);
			return EXIT_DAMAGE;
		}
		errorf("%s; add it with 'walctl consumers -d %s add %s'", wal_errmsg(), s.dir, s.name);
		return EXIT_OPER;
	}
	/* a cursor past the WAL's end would skip the points given those LSNs */
	struct wal_seg_span *spans;
	size_t nspans;
	uint64_t wal_last;
	if (wal_seg_spans(s.dir, &spans, &nspans, &wal_last) != 0) {
		errorf("%s", wal_errmsg());
		return EXIT_OPER;
	}
	free(spans);
	if (!c.lost && wal_consumer_check_end(&c, wal_last) != 0) {
		errorf("%s; nothing is shipped: run 'walctl verify -d %s'", wal_errmsg(), s.dir);
		return EXIT_DAMAGE;
	}
	int lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	/* a ship killed a moment ago may leave the command it was starting
	 * holding the lock until its exec: a second is given for that */
	for (int tries = 0; lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) != 0 && tries < 20; tries++)
		pause_ns(50000000);
	if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) {
		errorf("consumer '%s': %s", s.name,
		       lock < 0 ? strerror(errno) : "another walctl ship is delivering it");
		if (lock >= 0)
			close(lock);
		return EXIT_OPER;
	}
	if (c.lost) {
		errorf("consumer '%s' was marked lost at cursor LSN %" PRIu64
		       " (%s); 'walctl consumers drop %s' and add "
		       "it again",
		       s.name, c.lsn, c.why, s.name);
		close(lock);
		return EXIT_OPER;
	}
	s.cursor = s.seen = c.lsn;
	s.started = s.checked_ns = wal_now_ns();
	if (s.metrics) {
		char cl[WAL_CONSUMER_NAME_MAX + 16];
		snprintf(cl, sizeof cl, "consumer=%s", s.name);
		if (s.nlabels < sizeof s.label / sizeof s.label[0])
			memmove(s.label + 1, s.label, s.nlabels++ * sizeof s.label[0]), s.label[0] = cl;
		metric_labels(s.labels, sizeof s.labels, s.dir, s.label, s.nlabels);
	}
	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (wal_dec_new(&s.dec) != 0 || batch_open(&s) != 0 || (s.format != S_JSONL && lpout_new(&s.lp, s.f) != 0)) {
		errorf("out of memory");
		close(lock);
		return EXIT_OPER;
	}
	logfmt("info", "msg=\"started\" dir=\"%s\" consumer=\"%s\" cursor_lsn=\"%" PRIu64 "\"", wal_lq(s.dir),
	       wal_lq(s.name), s.cursor);
	uint64_t ckpt = 0;
	s.start_cursor = s.cursor;
	rc = ship_storage(&s, &ckpt);
	if (rc == 0)
		rc = ship_wal(&s, s.cursor > ckpt ? s.cursor : ckpt);
	/* the end of what is there (--once), or asked to stop: the batch
	 * being built goes too, unless stopping */
	if (rc == 0 && !stopping)
		rc = flush_batch(&s);
	/* the batch in flight: waited for, and retried unless stopping */
	int lrc = land(&s);
	if (rc == 0 && lrc < 0)
		rc = lrc;
	maybe_metrics(&s, 1);
	logfmt(rc < 0 ? "error" : "info",
	       "msg=\"stopped\" consumer=\"%s\" cursor_lsn=\"%" PRIu64 "\" batches=\"%" PRIu64 "\" points=\"%" PRIu64
	       "\" failures=\"%" PRIu64 "\"",
	       wal_lq(s.name), s.cursor, s.batches, s.delivered, s.failures);
	lpout_free(s.lp);
	batch_free(&s);
	wal_dec_free(s.dec);
	close(lock);
	if (rc == -4)
		return EXIT_DAMAGE;
	return rc < 0 ? EXIT_OPER : EXIT_CLEAN;
}
