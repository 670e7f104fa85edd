/*
 * serve.c - walctl serve: the ingestion engine over stdin.
 *
 * Three threads.  Ingest (main) reads line protocol, parses, encodes and
 * appends POINTS entries: one per 5,000 points, or whatever is available
 * when the input pauses, so that a producer waiting for its ack is not
 * kept waiting for a batch to fill.  Sync does group commit: one
 * fdatasync covers every entry appended while the previous one was in
 * flight (or one per --sync-interval), then prints "ack LSN POINTS".  Flush
 * takes the buffered entries when --buffer-points are buffered or every
 * --flush-interval, writes them to compressed storage partitions, appends
 * a CHECKPOINT and reclaims the segments below it beyond --keep-segments.
 *
 * Backpressure: when the flusher falls behind, ingest stops reading stdin
 * until it catches up; nothing is dropped and memory stays bounded.
 * A failed sync is never retried: no further ack is printed and serve
 * exits 8 at once; what was acknowledged is intact.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

static const char options[] =
    "  --db NAME                  database the points belong to (default \"default\")\n"
    "  --precision ns|us|ms|s     unit of the timestamps in the input (default ns)\n"
    "  --sync fsync|fdatasync|async\n"
    "                             how entries are made durable (default fdatasync)\n"
    "  --sync-interval DUR        sync at most once per DUR instead of after every write (default 0)\n"
    "  --buffer-points N          points buffered before a flush to storage (default 10000)\n"
    "  --flush-interval DUR       flush buffered points at least this often (default 1s)\n"
    "  --max-segment-size SIZE    rotate segments at SIZE (default 128M)\n"
    "  --max-segment-age DUR      rotate segments older than DUR (default 1h)\n"
    "  --keep-segments N          checkpointed segments kept before reclaiming (default 3)\n"
    "  --compression-level L      zlib level of storage partitions, 1-9 (default 1)\n"
    "  --metrics-file PATH        Prometheus text metrics, rewritten every second and at exit\n"
    "  --ack                      print \"ack LSN POINTS\" on stdout after every successful sync\n"
    "  --strict                   stop at the first bad line (exit 4)\n";

enum {
	OPT_DB = 256,
	OPT_PRECISION,
	OPT_SYNC,
	OPT_SYNC_INTERVAL,
	OPT_BUFFER,
	OPT_FLUSH_INTERVAL,
	OPT_SEGSIZE,
	OPT_SEGAGE,
	OPT_KEEP,
	OPT_LEVEL,
	OPT_METRICS,
	OPT_ACK,
	OPT_STRICT
};

#define ENTRY_POINTS 5000
#define NBUCKETS     12

static const double buckets[NBUCKETS] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	                                  0.01,   0.025,   0.05,   0.1,   0.25,   1.0 };

struct fbuf {
	struct fent {
		uint64_t lsn;
		size_t off;
		uint32_t len;
	} * ent;
	size_t n, cap;
	unsigned char *data;
	size_t len, cap2;
	uint64_t points;
};

struct engine {
	/* options */
	const char *dir, *db, *metrics;
	struct wal_opts wo;
	int ack, strict, level, prec;
	int64_t sync_interval, flush_interval;
	uint64_t buffer_points;
	unsigned keep;
	/* state shared by the threads, under mu */
	wal_t *w;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ackpt {
		uint64_t lsn, points;
	} * ring;
	size_t rhead, rcount, rcap;
	uint64_t appended, acked_lsn, acked_points;
	struct fbuf fb[2];
	int fill;     /* buffer being filled */
	int flushing; /* buffer being flushed, or -1 */
	int stop_sync, stop_flush, fatal;
	char fatal_msg[512];
	uint64_t ckpt, points_in, points_bad, entries, syncs, flushes, checkpoints, reclaimed, segments;
	uint64_t hist[NBUCKETS + 1], rotations_seen;
	double sync_sum, recovery_s;
	uint64_t bytes_at_ckpt;
	pthread_t main_th;
};

static volatile sig_atomic_t got_stop, got_status;
static void on_stop(int sig)
{
	(void)sig;
	got_stop = 1;
}
static void on_status(int sig)
{
	(void)sig;
	got_status = 1;
}
static void on_wake(int sig) { (void)sig; }

/* logfmt on stderr */
static void logf_(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const char *level, const char *fmt, ...)
{
	char ts[48];
	va_list ap;

	if (g_quiet && strcmp(level, "error") != 0)
		return;
	fmt_time(ts, sizeof ts, wal_now_ns());
	flockfile(stderr);
	fprintf(stderr, "ts=%s level=%s ", ts, level);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

static void fatal(struct engine *e, const char *msg)
{
	pthread_mutex_lock(&e->mu);
	if (!e->fatal) {
		e->fatal = 1;
		snprintf(e->fatal_msg, sizeof e->fatal_msg, "%s", msg);
	}
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	pthread_kill(e->main_th, SIGUSR2); /* wake a blocked read */
}

static void note_rotation(struct engine *e)
{
	uint64_t r = wal_rotations(e->w);

	pthread_mutex_lock(&e->mu);
	int fresh = r > e->rotations_seen;
	e->rotations_seen = r;
	pthread_mutex_unlock(&e->mu);
	if (fresh) {
		char seg[64];
		wal_segment(e->w, seg, sizeof seg);
		logf_("info", "msg=\"segment rotated\" segment=%s", seg);
	}
}

/* ------------------------------------------------------------------ sync */

static void *sync_main(void *arg)
{
	struct engine *e = arg;

	for (;;) {
		pthread_mutex_lock(&e->mu);
		while (!e->fatal && !e->stop_sync && e->appended <= e->acked_lsn)
			pthread_cond_wait(&e->cv, &e->mu);
		if (e->fatal || (e->stop_sync && e->appended <= e->acked_lsn)) {
			pthread_mutex_unlock(&e->mu);
			return NULL;
		}
		pthread_mutex_unlock(&e->mu);

		int64_t t0 = wal_now_ns();
		uint64_t durable;
		if (e->wo.sync == WAL_SYNC_ASYNC) {
			durable = wal_last_lsn(e->w); /* handed to the kernel */
		} else {
			if (wal_sync(e->w) != 0) {
				char msg[600];
				snprintf(msg, sizeof msg, "%s", wal_errmsg());
				logf_("error", "msg=\"sync failed; no further acknowledgement\" error=\"%s\"", msg);
				fatal(e, msg);
				return NULL;
			}
			durable = wal_durable_lsn(e->w);
		}
		double secs = (double)(wal_now_ns() - t0) / 1e9;

		pthread_mutex_lock(&e->mu);
		e->syncs++;
		e->sync_sum += secs;
		int b = 0;
		while (b < NBUCKETS && secs > buckets[b])
			b++;
		e->hist[b]++;
		uint64_t points = e->acked_points;
		while (e->rcount && e->ring[e->rhead].lsn <= durable) {
			points = e->ring[e->rhead].points;
			e->rhead = (e->rhead + 1) % e->rcap;
			e->rcount--;
		}
		int news = points != e->acked_points || durable > e->acked_lsn;
		e->acked_points = points;
		e->acked_lsn = durable;
		pthread_cond_broadcast(&e->cv);
		pthread_mutex_unlock(&e->mu);
		if (e->ack && news) {
			printf("ack %" PRIu64 " %" PRIu64 "\n", durable, points);
			fflush(stdout);
		}
		if (e->sync_interval > 0) {
			struct timespec ts = { (time_t)(e->sync_interval / 1000000000),
				               (long)(e->sync_interval % 1000000000) };
			nanosleep(&ts, NULL);
		}
	}
}

/* ----------------------------------------------------------------- flush */

/* Write one buffer to storage, checkpoint, reclaim.  0, or -1 with why. */
static int flush_buffer(struct engine *e, struct fbuf *f, char *why, size_t cap)
{
	wal_flush_t *fl = NULL;
	uint64_t through, lsn;
	unsigned removed = 0;

	if (!f->n)
		return 0;
	through = f->ent[f->n - 1].lsn;
	if (wal_flush_new(&fl, e->dir, wal_id(e->w), e->level) != 0)
		goto fail;
	for (size_t i = 0; i < f->n; i++)
		if (wal_flush_add(fl, f->ent[i].lsn, f->data + f->ent[i].off, f->ent[i].len) != 0)
			goto fail;
	if (wal_flush_checkpoint(fl, e->w, through, &lsn) != 0)
		goto fail;
	note_rotation(e);
	if (wal_reclaim(e->w, through, e->keep, &removed) != 0)
		goto fail;
	pthread_mutex_lock(&e->mu);
	e->ckpt = through;
	e->flushes++;
	e->checkpoints++;
	e->reclaimed += removed;
	e->bytes_at_ckpt = wal_bytes_appended(e->w);
	e->appended = lsn > e->appended ? lsn : e->appended;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	if (g_verbose)
		logf_("info", "msg=\"flushed\" points=%" PRIu64 " through_lsn=%" PRIu64 " partitions=%zu reclaimed=%u",
		      f->points, through, wal_flush_npartitions(fl), removed);
	wal_flush_free(fl);
	return 0;
fail:
	snprintf(why, cap, "%s", wal_errmsg());
	wal_flush_free(fl);
	return -1;
}

static void *flush_main(void *arg)
{
	struct engine *e = arg;
	int64_t last = wal_now_ns();

	for (;;) {
		pthread_mutex_lock(&e->mu);
		for (;;) {
			struct fbuf *f = &e->fb[e->fill];
			int64_t now = wal_now_ns();
			if (e->fatal || (e->stop_flush && !f->n))
				break;
			if (f->points >= e->buffer_points || (f->n && now - last >= e->flush_interval) ||
			    (e->stop_flush && f->n))
				break;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t wait = e->flush_interval - (now - last);
			if (wait < 1000000)
				wait = 1000000;
			ts.tv_sec += wait / 1000000000;
			ts.tv_nsec += wait % 1000000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&e->cv, &e->mu, &ts);
		}
		if (e->fatal || (e->stop_flush && !e->fb[e->fill].n)) {
			pthread_mutex_unlock(&e->mu);
			return NULL;
		}
		int k = e->fill;
		e->flushing = k;
		e->fill = 1 - k;
		pthread_cond_broadcast(&e->cv);
		pthread_mutex_unlock(&e->mu);

		char why[600];
		int rc = flush_buffer(e, &e->fb[k], why, sizeof why);
		last = wal_now_ns();
		pthread_mutex_lock(&e->mu);
		e->fb[k].n = e->fb[k].len = 0;
		e->fb[k].points = 0;
		e->flushing = -1;
		pthread_cond_broadcast(&e->cv);
		pthread_mutex_unlock(&e->mu);
		if (rc) {
			logf_("error", "msg=\"flush to storage failed\" error=\"%s\"", why);
			fatal(e, why);
			return NULL;
		}
	}
}

/* Keep a copy of an appended entry for the flusher.  Waits while the
 * flusher is behind: that is the backpressure on stdin. */
static int buffer_entry(struct engine *e, uint64_t lsn, const unsigned char *p, size_t len, uint64_t points)
{
	pthread_mutex_lock(&e->mu);
	while (!e->fatal && e->fb[e->fill].points >= 2 * e->buffer_points && e->flushing >= 0)
		pthread_cond_wait(&e->cv, &e->mu);
	struct fbuf *f = &e->fb[e->fill];
	if (f->n == f->cap) {
		size_t c = f->cap ? f->cap * 2 : 64;
		void *q = realloc(f->ent, c * sizeof *f->ent);
		if (!q) {
			pthread_mutex_unlock(&e->mu);
			return WAL_ENOMEM;
		}
		f->ent = q;
		f->cap = c;
	}
	if (f->len + len > f->cap2) {
		size_t c = f->cap2 ? f->cap2 * 2 : 1 << 20;
		while (c < f->len + len)
			c *= 2;
		void *q = realloc(f->data, c);
		if (!q) {
			pthread_mutex_unlock(&e->mu);
			return WAL_ENOMEM;
		}
		f->data = q;
		f->cap2 = c;
	}
	memcpy(f->data + f->len, p, len);
	f->ent[f->n++] = (struct fent){ lsn, f->len, (uint32_t)len };
	f->len += len;
	f->points += points;
	if (f->points >= e->buffer_points)
		pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	return 0;
}

/* ---------------------------------------------------------------- ingest */

static int append_batch(struct engine *e, wal_enc_t *enc, uint64_t *batch_points, const char *db)
{
	const unsigned char *p;
	size_t len;
	uint64_t lsn;
	int rc;

	if (!*batch_points)
		return 0;
	wal_enc_finish(enc, &p, &len);
	if ((rc = wal_append(e->w, WAL_T_POINTS, p, len, &lsn)) != 0)
		return rc;
	note_rotation(e);
	pthread_mutex_lock(&e->mu);
	e->points_in += *batch_points;
	e->entries++;
	if (e->rcount == e->rcap) {
		size_t c = e->rcap ? e->rcap * 2 : 1024;
		struct ackpt *q = malloc(c * sizeof *q);
		if (!q) {
			pthread_mutex_unlock(&e->mu);
			return WAL_ENOMEM;
		}
		for (size_t i = 0; i < e->rcount; i++)
			q[i] = e->ring[(e->rhead + i) % e->rcap];
		free(e->ring);
		e->ring = q;
		e->rhead = 0;
		e->rcap = c;
	}
	e->ring[(e->rhead + e->rcount++) % e->rcap] = (struct ackpt){ lsn, e->points_in };
	if (lsn > e->appended)
		e->appended = lsn;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	rc = buffer_entry(e, lsn, p, len, *batch_points);
	*batch_points = 0;
	wal_enc_begin(enc, db, strlen(db));
	return rc;
}

static void status_line(struct engine *e)
{
	char seg[64];
	wal_segment(e->w, seg, sizeof seg);
	pthread_mutex_lock(&e->mu);
	logf_("info",
	      "msg=status points=%" PRIu64 " rejected=%" PRIu64 " entries=%" PRIu64 " acked_lsn=%" PRIu64
	      " acked_points=%" PRIu64 " syncs=%" PRIu64 " flushes=%" PRIu64 " checkpoint_lsn=%" PRIu64 " segment=%s",
	      e->points_in, e->points_bad, e->entries, e->acked_lsn, e->acked_points, e->syncs, e->flushes, e->ckpt,
	      seg);
	pthread_mutex_unlock(&e->mu);
}

static int write_metrics(struct engine *e)
{
	char text[8192], dir[PATH_MAX], *slash;
	size_t n = 0;
	uint64_t cum = 0;

	if (!e->metrics)
		return 0;
	pthread_mutex_lock(&e->mu);
#define M(name, type, help, fmt, ...)                                                                                  \
	n += (size_t)snprintf(text + n, sizeof text - n,                                                               \
	                      "# HELP walctl_" name " " help "\n# TYPE walctl_" name " " type "\nwalctl_" name " " fmt \
	                      "\n",                                                                                    \
	                      __VA_ARGS__)
	M("writes_total", "counter", "WAL entries appended.", "%" PRIu64, e->entries + e->checkpoints);
	M("bytes_total", "counter", "Bytes appended to the WAL.", "%" PRIu64, wal_bytes_appended(e->w));
	M("syncs_total", "counter", "Syncs of the WAL.", "%" PRIu64, e->syncs);
	M("rotations_total", "counter", "Segments sealed and rotated.", "%" PRIu64, wal_rotations(e->w));
	M("segments_reclaimed_total", "counter", "Checkpointed segments removed.", "%" PRIu64, e->reclaimed);
	M("flushes_total", "counter", "Flushes of buffered points to storage partitions.", "%" PRIu64, e->flushes);
	M("checkpoints_total", "counter", "CHECKPOINT entries written.", "%" PRIu64, e->checkpoints);
	M("points_accepted_total", "counter", "Points accepted from stdin.", "%" PRIu64, e->points_in);
	M("points_rejected_total", "counter", "Bad input lines rejected.", "%" PRIu64, e->points_bad);
	M("durable_lsn", "gauge", "Highest LSN known durable.", "%" PRIu64, e->acked_lsn);
	M("checkpoint_lsn", "gauge", "LSN through which storage is durable.", "%" PRIu64, e->ckpt);
	M("bytes_not_checkpointed", "gauge", "WAL bytes appended since the last checkpoint.", "%" PRIu64,
	  wal_bytes_appended(e->w) - e->bytes_at_ckpt);
	M("recovery_seconds", "gauge", "Time taken by startup recovery.", "%.6f", e->recovery_s);
#undef M
	n += (size_t)snprintf(text + n, sizeof text - n,
	                      "# HELP walctl_sync_duration_seconds Time taken by each sync.\n"
	                      "# TYPE walctl_sync_duration_seconds histogram\n");
	for (int b = 0; b <= NBUCKETS; b++) {
		cum += e->hist[b];
		if (b < NBUCKETS)
			n += (size_t)snprintf(text + n, sizeof text - n,
			                      "walctl_sync_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
			                      buckets[b], cum);
		else
			n += (size_t)snprintf(text + n, sizeof text - n,
			                      "walctl_sync_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
	}
	n += (size_t)snprintf(text + n, sizeof text - n,
	                      "walctl_sync_duration_seconds_sum %.9f\nwalctl_sync_duration_seconds_count %" PRIu64 "\n",
	                      e->sync_sum, e->syncs);
	pthread_mutex_unlock(&e->mu);
	snprintf(dir, sizeof dir, "%s", e->metrics);
	slash = strrchr(dir, '/');
	const char *base = slash ? slash + 1 : e->metrics;
	if (slash)
		*slash = 0;
	else
		snprintf(dir, sizeof dir, ".");
	return wal_write_file(dir, base, text, n < sizeof text ? n : sizeof text - 1);
}

static void *metrics_main(void *arg)
{
	struct engine *e = arg;

	for (;;) {
		if (write_metrics(e) != 0)
			logf_("warn", "msg=\"cannot write metrics\" error=\"%s\"", wal_errmsg());
		/* a second, or until shutdown wakes us */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_mutex_lock(&e->mu);
		int rc = 0;
		while (!e->stop_sync && !e->fatal && rc == 0)
			rc = pthread_cond_timedwait(&e->cv, &e->mu, &ts);
		int done = e->stop_sync || e->fatal;
		pthread_mutex_unlock(&e->mu);
		if (done)
			return NULL;
	}
}

/* Startup: the entries after the last checkpoint go to the flusher again;
 * partitions an interrupted flush left above it go first. */
static int startup_replay(struct engine *e)
{
	const char *paths[1] = { e->dir };
	wal_scan_t *s;
	struct wal_entry en;
	uint64_t ckpt = 0, replayed = 0;
	unsigned orphans = 0, kept = 0;
	int rc;

	if ((rc = wal_last_checkpoint(paths, 1, &ckpt)) != 0)
		return rc;
	e->ckpt = ckpt;
	if ((rc = wal_part_drop_orphans(e->dir, ckpt, &orphans, &kept)) != 0)
		return rc;
	if (orphans)
		logf_("info", "msg=\"removed partitions of an interrupted flush\" count=%u checkpoint_lsn=%" PRIu64,
		      orphans, ckpt);
	if (kept)
		logf_("warn",
		      "msg=\"kept partitions that no checkpoint names and whose points the WAL does not hold\" "
		      "count=%u checkpoint_lsn=%" PRIu64 " dir=%s/data",
		      kept, ckpt, e->dir);
	/* what is replayed is stored: every point of it must decode */
	struct wal_scan_opts so = { .check_payloads = 1, .decode_unstored = 1 };
	if ((rc = wal_scan_open(&s, paths, 1, &so)) != 0)
		return rc;
	while ((rc = wal_scan_next(s, &en)) == 1) {
		if (wal_scan_class(s) & WAL_CLASS_DAMAGE)
			break;
		if (en.lsn <= ckpt || (en.type & 0x7f) != WAL_T_POINTS)
			continue;
		if ((rc = buffer_entry(e, en.lsn, en.payload, en.len, 0)) != 0)
			break;
		replayed++;
	}
	for (size_t i = 0; rc >= 0 && i < wal_scan_nfindings(s); i++) {
		const struct wal_finding *f = wal_scan_finding(s, i);
		if (f->cls == WAL_CLASS_DAMAGE) {
			logf_("error",
			      "msg=\"damage to what a replay would store\" segment=%s offset=%" PRIu64
			      " error=\"%s; run 'walctl recover --mode salvage -d %s'\"",
			      f->segment, f->offset, f->message, e->dir);
			rc = WAL_ECORRUPT;
			break;
		}
	}
	wal_scan_close(s);
	if (replayed)
		logf_("info",
		      "msg=\"replaying entries after the last checkpoint\" entries=%" PRIu64 " checkpoint_lsn=%" PRIu64,
		      replayed, ckpt);
	return rc < 0 ? rc : 0;
}

int cmd_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONGOPTS,
		{ "db", required_argument, NULL, OPT_DB },
		{ "precision", required_argument, NULL, OPT_PRECISION },
		{ "sync", required_argument, NULL, OPT_SYNC },
		{ "sync-interval", required_argument, NULL, OPT_SYNC_INTERVAL },
		{ "buffer-points", required_argument, NULL, OPT_BUFFER },
		{ "flush-interval", required_argument, NULL, OPT_FLUSH_INTERVAL },
		{ "max-segment-size", required_argument, NULL, OPT_SEGSIZE },
		{ "max-segment-age", required_argument, NULL, OPT_SEGAGE },
		{ "keep-segments", required_argument, NULL, OPT_KEEP },
		{ "compression-level", required_argument, NULL, OPT_LEVEL },
		{ "metrics-file", required_argument, NULL, OPT_METRICS },
		{ "ack", no_argument, NULL, OPT_ACK },
		{ "strict", no_argument, NULL, OPT_STRICT },
		{ NULL, 0, NULL, 0 },
	};
	struct engine *e = calloc(1, sizeof *e);
	uint64_t v;
	int opt, rc = 0;

	if (!e)
		return EXIT_OPER;
	e->db = "default";
	e->buffer_points = 10000;
	e->flush_interval = 1000000000;
	e->keep = 3;
	e->level = 1;
	e->flushing = -1;
	while ((opt = getopt_long(argc, argv, COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (common_opt(opt, optarg))
			continue;
		switch (opt) {
		case 'h': free(e); return cmd_usage("serve", options, stdout);
		case OPT_DB:
			if (!*optarg)
				return usage_error("option '--db': the name must not be empty");
			e->db = optarg;
			break;
		case OPT_PRECISION:
			if ((e->prec = wal_precision_parse(optarg)) < 0)
				return usage_error("option '--precision': invalid value '%s' (want ns, us, ms or s)",
				                   optarg);
			break;
		case OPT_SYNC:
			if (parse_sync("--sync", optarg, &e->wo.sync))
				return EXIT_USAGE;
			break;
		case OPT_SYNC_INTERVAL:
			if (parse_duration("--sync-interval", optarg, &e->sync_interval))
				return EXIT_USAGE;
			break;
		case OPT_BUFFER:
			if (parse_u64("--buffer-points", optarg, &e->buffer_points))
				return EXIT_USAGE;
			if (!e->buffer_points)
				return usage_error("option '--buffer-points': must be at least 1");
			break;
		case OPT_FLUSH_INTERVAL:
			if (parse_duration("--flush-interval", optarg, &e->flush_interval))
				return EXIT_USAGE;
			if (!e->flush_interval)
				return usage_error("option '--flush-interval': must be more than 0");
			break;
		case OPT_SEGSIZE:
			if (parse_size("--max-segment-size", optarg, &e->wo.max_segment_size))
				return EXIT_USAGE;
			if (e->wo.max_segment_size < 4096)
				return usage_error("option '--max-segment-size': must be at least 4k");
			break;
		case OPT_SEGAGE:
			if (parse_duration("--max-segment-age", optarg, &e->wo.max_segment_age_ns))
				return EXIT_USAGE;
			break;
		case OPT_KEEP:
			if (parse_u64("--keep-segments", optarg, &v))
				return EXIT_USAGE;
			if (v < 1)
				return usage_error("option '--keep-segments': want 1 or more");
			e->keep = (unsigned)v;
			break;
		case OPT_LEVEL:
			if (parse_u64("--compression-level", optarg, &v))
				return EXIT_USAGE;
			if (v < 1 || v > 9)
				return usage_error("option '--compression-level': want 1 to 9");
			e->level = (int)v;
			break;
		case OPT_METRICS: e->metrics = optarg; break;
		case OPT_ACK: e->ack = 1; break;
		case OPT_STRICT: e->strict = 1; break;
		default: return usage_error("unknown option; see 'walctl serve --help'");
		}
	}
	if (optind < argc)
		return usage_error("serve reads stdin; unexpected argument '%s'", argv[optind]);
	e->dir = data_dir();

	/* Signals: stop on INT/TERM, status on USR1, USR2 wakes a blocked read;
	 * a full file size limit must fail a write, not kill. */
	struct sigaction sa = { 0 };
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_status;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_wake;
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	e->main_th = pthread_self();
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);

	/* Startup: lock, verify, cut a torn tail, refuse damage, replay. */
	int64_t t0 = wal_now_ns();
	int err = wal_open(&e->w, e->dir, &e->wo);
	if (err) {
		logf_("error", "msg=\"cannot open the WAL\" dir=%s error=\"%s\"", e->dir, wal_errmsg());
		free(e);
		return exit_for(err);
	}
	if (wal_torn_note(e->w))
		logf_("info", "msg=\"cut a torn tail\" detail=\"%s\"", wal_torn_note(e->w));
	e->appended = e->acked_lsn = wal_last_lsn(e->w);
	e->bytes_at_ckpt = 0;
	pthread_t syncer, flusher, metrics_th;
	int have_metrics = 0;
	pthread_create(&syncer, NULL, sync_main, e);
	pthread_create(&flusher, NULL, flush_main, e);
	if ((err = startup_replay(e)) == WAL_ECORRUPT) {
		rc = EXIT_DAMAGE; /* logged, with what to run next */
	} else if (err != 0) {
		logf_("error", "msg=\"replay failed\" error=\"%s\"", wal_errmsg());
		rc = EXIT_OPER;
	}
	e->recovery_s = (double)(wal_now_ns() - t0) / 1e9;
	logf_("info",
	      "msg=started dir=%s next_lsn=%" PRIu64 " checkpoint_lsn=%" PRIu64 " sync=%s recovery_seconds=%.3f",
	      e->dir, wal_last_lsn(e->w) + 1, e->ckpt,
	      e->wo.sync == WAL_SYNC_FSYNC   ? "fsync"
	      : e->wo.sync == WAL_SYNC_ASYNC ? "async"
	                                     : "fdatasync",
	      e->recovery_s);
	if (e->metrics)
		have_metrics = pthread_create(&metrics_th, NULL, metrics_main, e) == 0;

	/* Ingest. */
	wal_lp_t *lp = NULL;
	wal_enc_t *enc = NULL;
	size_t cap = 1 << 20, have = 0;
	char *buf = malloc(cap);
	uint64_t batch = 0, line = 1;
	struct wal_point pt;
	int eof = 0;
	if (!buf || wal_lp_new(&lp, (enum wal_precision)e->prec, wal_now_ns()) || wal_enc_new(&enc)) {
		logf_("error", "msg=\"out of memory\"");
		rc = EXIT_OPER;
	}
	if (enc)
		wal_enc_begin(enc, e->db, strlen(e->db));
	(void)fcntl(0, F_SETPIPE_SZ, 1 << 20); /* fewer, larger reads from a pipe */
	while (!rc && !eof && !got_stop && !e->fatal) {
		if (got_status) {
			got_status = 0;
			status_line(e);
		}
		if (have == cap) {
			char *q = realloc(buf, cap * 2);
			if (!q) {
				rc = EXIT_OPER;
				break;
			}
			buf = q;
			cap *= 2;
		}
		ssize_t n = read(0, buf + have, cap - have);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			logf_("error", "msg=\"cannot read stdin\" error=\"%s\"", strerror(errno));
			rc = EXIT_OPER;
			break;
		}
		eof = n == 0;
		have += (size_t)n;
		wal_lp_set_default_time(lp, wal_now_ns());
		wal_lp_input(lp, buf, have, line, eof);
		line = 0;
		int k;
		while ((k = wal_lp_next(lp, &pt)) != 0) {
			if (k == WAL_EPARSE) {
				e->points_bad++;
				logf_("warn", "msg=\"bad line\" line=%" PRIu64 " reason=\"%s\"", wal_lp_line(lp),
				      wal_lp_error(lp));
				if (e->strict) {
					got_stop = 1;
					break;
				}
				continue;
			}
			if (k < 0 || wal_enc_add(enc, &pt) != 0) {
				logf_("error", "msg=\"cannot encode a point\" line=%" PRIu64 " error=\"%s\"",
				      wal_lp_line(lp), wal_errmsg());
				rc = EXIT_OPER;
				break;
			}
			if (++batch >= ENTRY_POINTS || wal_enc_size(enc) >= (8u << 20)) {
				if ((err = append_batch(e, enc, &batch, e->db)) != 0)
					break;
			}
		}
		size_t used = wal_lp_consumed(lp);
		memmove(buf, buf + used, have - used);
		have -= used;
		/* When no more input is there right now, frame what this read
		 * brought: a producer may be waiting for its ack.  While input keeps
		 * coming, go on filling the entry. */
		int avail = 0;
		if (!rc && !err && batch && (eof || ioctl(0, FIONREAD, &avail) != 0 || avail == 0))
			err = append_batch(e, enc, &batch, e->db);
		if (err) {
			logf_("error", "msg=\"cannot append to the WAL\" error=\"%s\"", wal_errmsg());
			rc = EXIT_OPER;
			break;
		}
	}
	if (!rc && !e->fatal && batch && append_batch(e, enc, &batch, e->db) != 0)
		rc = EXIT_OPER;

	/* Shutdown: flush, checkpoint, sync, close. */
	pthread_mutex_lock(&e->mu);
	e->stop_flush = 1;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	pthread_join(flusher, NULL);
	pthread_mutex_lock(&e->mu);
	e->stop_sync = 1;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	pthread_join(syncer, NULL);
	if (have_metrics)
		pthread_join(metrics_th, NULL);
	/* the last metrics, while the writer is still there to ask */
	if (e->metrics && write_metrics(e) != 0)
		logf_("warn", "msg=\"cannot write metrics\" error=\"%s\"", wal_errmsg());
	if (e->fatal) {
		errorf("%s", e->fatal_msg);
		wal_abandon(e->w);
		rc = EXIT_OPER;
	} else if (wal_close(e->w) != 0) {
		logf_("error", "msg=\"close failed\" error=\"%s\"", wal_errmsg());
		rc = EXIT_OPER;
	}
	logf_("info",
	      "msg=stopped points=%" PRIu64 " rejected=%" PRIu64 " entries=%" PRIu64 " acked_points=%" PRIu64
	      " syncs=%" PRIu64 " flushes=%" PRIu64 " checkpoint_lsn=%" PRIu64,
	      e->points_in, e->points_bad, e->entries, e->acked_points, e->syncs, e->flushes, e->ckpt);
	if (!rc && e->points_bad)
		rc = EXIT_DAMAGE;
	free(buf);
	wal_lp_free(lp);
	wal_enc_free(enc);
	for (int i = 0; i < 2; i++) {
		free(e->fb[i].ent);
		free(e->fb[i].data);
	}
	free(e->ring);
	free(e);
	return rc;
}
