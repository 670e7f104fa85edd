/*
 * serve.c - walctl serve: the ingestion engine (lib/engine.c) over stdin.
 *
 * The main thread reads line protocol, parses and encodes it, and appends
 * POINTS entries: one per 5,000 points, or whatever is available when the
 * input pauses, so that a producer waiting for its ack is not kept waiting
 * for a batch to fill.  The engine does group commit, flushes to storage,
 * checkpoints and reclaims; this front end prints its acks ("ack LSN
 * POINTS"), its log records (logfmt on stderr) and its metrics file.
 *
 * Backpressure: when the flusher falls behind, appending waits, so serve
 * stops reading stdin until it catches up.  A failed sync is never
 * retried: no further ack is printed and serve exits 8 at once; what was
 * acknowledged is intact.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
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
    "  --max-consumer-lag SIZE    WAL after a consumer's cursor before it is marked lost (default 1G)\n"
    "  --compression-level L      compression level of storage partitions, 1-9 (default 1)\n"
    "  --metrics-file PATH        Prometheus text metrics, rewritten every second and at exit\n"
    "  --metrics-label NAME=VALUE a label on every metric (repeatable; dir=DIR is always there)\n"
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
	OPT_MAX_LAG,
	OPT_LEVEL,
	OPT_METRICS,
	OPT_METRICS_LABEL,
	OPT_ACK,
	OPT_STRICT
};

#define ENTRY_POINTS 5000

/* The front end: options, and what the engine does not count. */
struct serve {
	const char *dir, *db, *metrics;
	/* InfluxDB export input: --db given (it wins over CONTEXT-DATABASE
	 * lines), the context seen last, the database it names */
	int db_forced, ctx_bad;
	uint64_t ctx_seq;
	char ctx_db[WAL_DB_DIRNAME_MAX + 1];
	struct wal_engine_opts eo;
	int ack, strict, prec;
	wal_engine_t *e;
	uint64_t points_bad;
	pthread_t main_th;
	/* the labels of every metric: dir, then --metrics-label's */
	const char *label[16];
	size_t nlabels;
	char labels[4096];
	int64_t started_ns;
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

/* The errno of the first ack that could not be written: its reader is
 * gone, and a writer whose acks nobody reads stops at once. */
static atomic_int ack_gone; /* written by the engine's sync thread */

/* Engine callbacks. */
static void on_ack(void *ctx, uint64_t lsn, uint64_t points)
{
	struct serve *sv = ctx;

	if (atomic_load_explicit(&ack_gone, memory_order_relaxed))
		return;
	errno = 0;
	if (printf("ack %" PRIu64 " %" PRIu64 "\n", lsn, points) < 0 || fflush(stdout) != 0) {
		atomic_store(&ack_gone, errno ? errno : EIO);
		pthread_kill(sv->main_th, SIGUSR2); /* wake a blocked read */
	}
}

static void on_log(void *ctx, const char *level, const char *text)
{
	(void)ctx;
	if (strcmp(level, "debug") == 0 && !g_verbose)
		return;
	logfmt(strcmp(level, "debug") == 0 ? "info" : level, "%s", text);
}

static void on_failed(void *ctx)
{
	struct serve *sv = ctx;
	pthread_kill(sv->main_th, SIGUSR2); /* wake a blocked read */
}

/* ---------------------------------------------------------------- ingest */

static int append_batch(struct serve *sv, wal_enc_t *enc, uint64_t *batch_points)
{
	const unsigned char *p;
	size_t len;
	int rc;

	if (!*batch_points)
		return 0;
	wal_enc_finish(enc, &p, &len);
	rc = wal_engine_append(sv->e, WAL_T_POINTS, p, len, *batch_points, NULL);
	*batch_points = 0;
	wal_enc_begin(enc, sv->db, strlen(sv->db));
	return rc;
}

/* Parse what LP holds: bad lines logged and counted, points encoded into
 * ENC (*batch of them so far) and appended as entries when full, a
 * CONTEXT-DATABASE line switching the database.  Returns 0 or EXIT_OPER;
 * *err receives a failed append's error. */
static int parse_main(struct serve *sv, wal_lp_t *lp, wal_enc_t *enc, uint64_t *batch_, int *err_)
{
	struct wal_point pt;
	uint64_t batch = *batch_;
	int rc = 0, err = 0;

	int k;
	while ((k = wal_lp_next(lp, &pt)) != 0) {
		if (k == WAL_EPARSE) {
			sv->points_bad++;
			logfmt("warn", "msg=\"bad line\" line=\"%" PRIu64 "\" reason=\"%s\"", wal_lp_line(lp),
			       wal_lq(wal_lp_error(lp)));
			if (sv->strict) {
				got_stop = 1;
				break;
			}
			continue;
		}
		/* A CONTEXT-DATABASE line: the points after it go to the
		 * database it names, in entries of their own. */
		struct wal_str cdb;
		uint64_t cline;
		const char *cwhy;
		uint64_t seq = k == 1 ? wal_lp_context(lp, &cdb, &cline, &cwhy) : sv->ctx_seq;
		if (seq != sv->ctx_seq) {
			sv->ctx_seq = seq;
			if (sv->db_forced) {
				logfmt("info",
				       "msg=\"--db wins over the input's CONTEXT-DATABASE lines\" line=\"%" PRIu64 "\"",
				       cline);
			} else if (!cdb.p) {
				sv->ctx_bad = 1;
				logfmt("warn",
				       "msg=\"bad database in a CONTEXT-DATABASE line\" line=\"%" PRIu64
				       "\" reason=\"%s\"",
				       cline, wal_lq(cwhy));
			} else if (sv->ctx_bad = 0, strlen(sv->db) != cdb.n || memcmp(sv->db, cdb.p, cdb.n) != 0) {
				if (batch && (err = append_batch(sv, enc, &batch)) != 0)
					break;
				memcpy(sv->ctx_db, cdb.p, cdb.n);
				sv->ctx_db[cdb.n] = 0;
				sv->db = sv->ctx_db;
				wal_enc_begin(enc, sv->db, strlen(sv->db));
			}
		}
		if (k == 1 && sv->ctx_bad) {
			sv->points_bad++;
			logfmt("warn",
			       "msg=\"bad line\" line=\"%" PRIu64
			       "\" reason=\"the database of the CONTEXT-DATABASE line "
			       "before it is not valid\"",
			       wal_lp_line(lp));
			if (sv->strict) {
				got_stop = 1;
				break;
			}
			continue;
		}
		/* A point no entry can hold is a bad line like any other. */
		size_t need = k == 1 ? wal_point_encoded_max(&pt) : 0, most = WAL_POINT_MAX(strlen(sv->db));
		if (need > most) {
			sv->points_bad++;
			static const char fmt[] =
			    "msg=\"bad line\" line=\"%" PRIu64
			    "\" reason=\"point too large: up to %zu bytes encoded, more than the %zu an "
			    "entry can hold\"";
			logfmt("warn", fmt, wal_lp_line(lp), need, most);
			if (sv->strict) {
				got_stop = 1;
				break;
			}
			continue;
		}
		if (k == 1 && batch && wal_enc_size(enc) + need > most && (err = append_batch(sv, enc, &batch)) != 0)
			break;
		if (k < 0 || wal_enc_add(enc, &pt) != 0) {
			logfmt("error", "msg=\"cannot encode a point\" line=\"%" PRIu64 "\" error=\"%s\"",
			       wal_lp_line(lp), wal_lq(wal_errmsg()));
			rc = EXIT_OPER;
			break;
		}
		if (++batch >= ENTRY_POINTS || wal_enc_size(enc) >= (8u << 20)) {
			if ((err = append_batch(sv, enc, &batch)) != 0)
				break;
		}
	}
	*batch_ = batch;
	*err_ = err;
	return rc;
}

/* ------------------------------------------------------- second parser */

/* A large read is parsed on two threads: the main thread takes the lines
 * up to a newline near the middle, the helper the rest, into encoders of
 * its own; the main thread then appends its entries, the helper's after
 * them, and logs the helper's bad lines with their line numbers.  Input
 * with InfluxDB export directives and --strict are parsed on one thread:
 * the directives and the first bad line decide what follows them. */
#define PAR_MIN  (1u << 20) /* reads smaller than this are not split */
#define READ_MAX (8u << 20) /* read ahead this far while input is waiting */

struct helper {
	struct serve *sv;
	wal_lp_t *lp;
	const char *buf;
	size_t len;
	int eof;
	/* what it parsed: entries, bad lines (line 1: its first line) */
	wal_enc_t **encs;
	uint64_t *counts;
	size_t nencs, capencs;
	struct bad {
		uint64_t line;
		char why[300];
	} * bad;
	size_t nbad, capbad;
	int fatal, defer;
	char fatal_msg[300];
	size_t consumed;
	uint64_t next_line;
	/* the thread */
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int job, quit, started;
};

static int helper_bad(struct helper *h, uint64_t line, const char *why)
{
	if (h->nbad == h->capbad) {
		size_t c = h->capbad ? h->capbad * 2 : 16;
		struct bad *b = realloc(h->bad, c * sizeof *b);
		if (!b)
			return -1;
		h->bad = b;
		h->capbad = c;
	}
	h->bad[h->nbad].line = line;
	snprintf(h->bad[h->nbad++].why, sizeof h->bad[0].why, "%s", why);
	return 0;
}

/* The encoder the next point of NEED bytes goes to. */
static wal_enc_t *helper_enc(struct helper *h, size_t need, size_t most)
{
	size_t i = h->nencs - 1;
	if (h->nencs && h->counts[i] < ENTRY_POINTS && wal_enc_size(h->encs[i]) < (8u << 20) &&
	    !(h->counts[i] && wal_enc_size(h->encs[i]) + need > most))
		return h->encs[i];
	if (h->nencs == h->capencs) {
		size_t c = h->capencs ? h->capencs * 2 : 8;
		wal_enc_t **e = realloc(h->encs, c * sizeof *e);
		if (!e)
			return NULL;
		h->encs = e;
		uint64_t *n = realloc(h->counts, c * sizeof *n);
		if (!n)
			return NULL;
		h->counts = n;
		for (size_t k = h->capencs; k < c; k++)
			h->encs[k] = NULL;
		h->capencs = c;
	}
	if (!h->encs[h->nencs] && wal_enc_new(&h->encs[h->nencs]) != 0)
		return NULL;
	wal_enc_begin(h->encs[h->nencs], h->sv->db, strlen(h->sv->db));
	h->counts[h->nencs] = 0;
	return h->encs[h->nencs++];
}

static void helper_parse(struct helper *h)
{
	struct wal_point pt;
	size_t most = WAL_POINT_MAX(strlen(h->sv->db));
	int k;

	h->nencs = h->nbad = 0;
	h->fatal = h->defer = 0;
	wal_lp_input(h->lp, h->buf, h->len, 1, h->eof);
	while ((k = wal_lp_next(h->lp, &pt)) != 0) {
		wal_enc_t *e;
		if (k == WAL_EPARSE) {
			if (helper_bad(h, wal_lp_line(h->lp), wal_lp_error(h->lp)) != 0)
				goto oom;
			continue;
		}
		if (k < 0) {
			h->fatal = 1;
			snprintf(h->fatal_msg, sizeof h->fatal_msg, "%s", wal_errmsg());
			break;
		}
		/* A point no entry can hold is the main thread's to report (a
		 * helper's share of a read is far smaller than such a point, so
		 * this is a safeguard): what the helper did is dropped. */
		size_t need = wal_point_encoded_max(&pt);
		if (need > most) {
			h->defer = 1;
			break;
		}
		if (!(e = helper_enc(h, need, most)) || wal_enc_add(e, &pt) != 0)
			goto oom;
		h->counts[h->nencs - 1]++;
	}
	h->consumed = wal_lp_consumed(h->lp);
	h->next_line = wal_lp_next_line(h->lp);
	return;
oom:
	h->fatal = 1;
	snprintf(h->fatal_msg, sizeof h->fatal_msg, "out of memory parsing input");
}

static void *helper_main(void *arg)
{
	struct helper *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->job && !h->quit)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->quit)
			break;
		pthread_mutex_unlock(&h->mu);
		helper_parse(h);
		pthread_mutex_lock(&h->mu);
		h->job = 0;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

static void helper_start(struct helper *h, struct serve *sv)
{
	h->sv = sv;
	if (wal_lp_new(&h->lp, (enum wal_precision)sv->prec, wal_now_ns()) != 0)
		return;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->started = pthread_create(&h->th, NULL, helper_main, h) == 0;
	if (!h->started) {
		pthread_cond_destroy(&h->cv);
		pthread_mutex_destroy(&h->mu);
	}
}

static void helper_stop(struct helper *h)
{
	if (h->started) {
		pthread_mutex_lock(&h->mu);
		h->quit = 1;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->th, NULL);
		pthread_cond_destroy(&h->cv);
		pthread_mutex_destroy(&h->mu);
	}
	for (size_t i = 0; i < h->capencs; i++)
		wal_enc_free(h->encs[i]);
	free(h->encs);
	free(h->counts);
	free(h->bad);
	wal_lp_free(h->lp);
}

/* Parse buf[0..have) with the main thread's LP (its line count goes on
 * from where it was, or starts at *line when that is not 0), on two
 * threads when it is large.  *used receives the bytes fully parsed. */
static int parse_read(struct serve *sv, struct helper *h, wal_lp_t *lp, wal_enc_t *enc, uint64_t *batch, int *err,
                      const char *buf, size_t have, int eof, uint64_t *line, int split_ok, size_t *used)
{
	const char *nl = split_ok && h->started && !sv->strict && have >= PAR_MIN
	                     ? memchr(buf + have / 2, '\n', have - have / 2)
	                     : NULL;
	int rc;

	if (!nl) {
		wal_lp_input(lp, buf, have, *line, eof);
		*line = 0;
		rc = parse_main(sv, lp, enc, batch, err);
		*used = wal_lp_consumed(lp);
		return rc;
	}
	size_t split = (size_t)(nl - buf) + 1;
	wal_lp_set_default_time(h->lp, wal_now_ns());
	pthread_mutex_lock(&h->mu);
	h->buf = buf + split;
	h->len = have - split;
	h->eof = eof;
	h->job = 1;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	wal_lp_input(lp, buf, split, *line, 0);
	*line = 0;
	rc = parse_main(sv, lp, enc, batch, err);
	pthread_mutex_lock(&h->mu);
	while (h->job)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
	*used = wal_lp_consumed(lp);
	if (rc || *err || got_stop || *used != split || h->defer) {
		/* Stopped, or the split fell inside a point (a newline in a
		 * string), or the helper met a point too large: what the helper
		 * did is dropped, and what is left is parsed again from where the
		 * main thread stopped. */
		return rc;
	}
	uint64_t base = wal_lp_next_line(lp);
	for (size_t i = 0; i < h->nbad; i++) {
		sv->points_bad++;
		logfmt("warn", "msg=\"bad line\" line=\"%" PRIu64 "\" reason=\"%s\"", base + h->bad[i].line - 1,
		       wal_lq(h->bad[i].why));
	}
	if (h->fatal) {
		logfmt("error", "msg=\"cannot parse input\" error=\"%s\"", wal_lq(h->fatal_msg));
		return EXIT_OPER;
	}
	/* the main thread's entry first, then the helper's in order */
	if ((*err = append_batch(sv, enc, batch)) != 0)
		return 0;
	for (size_t i = 0; i < h->nencs; i++) {
		const unsigned char *p;
		size_t len;
		wal_enc_finish(h->encs[i], &p, &len);
		if ((*err = wal_engine_append(sv->e, WAL_T_POINTS, p, len, h->counts[i], NULL)) != 0)
			return 0;
	}
	*used = split + h->consumed;
	*line = base + h->next_line - 1;
	return 0;
}

static void status_line(struct serve *sv)
{
	struct wal_engine_stats st;

	wal_engine_stats(sv->e, &st);
	logfmt("info",
	       "msg=\"status\" points=\"%" PRIu64 "\" rejected=\"%" PRIu64 "\" entries=\"%" PRIu64
	       "\" acked_lsn=\"%" PRIu64 "\" acked_points=\"%" PRIu64 "\" syncs=\"%" PRIu64 "\" flushes=\"%" PRIu64
	       "\" checkpoint_lsn=\"%" PRIu64 "\" segment=\"%s\"",
	       st.points, sv->points_bad, st.entries, st.acked_lsn, st.acked_points, st.syncs, st.flushes,
	       st.checkpoint_lsn, wal_lq(st.segment));
}

/* dir="DIR" and each --metrics-label, a later one of the same name
 * winning: several serve processes share a textfile directory. */
static void make_labels(struct serve *sv)
{
	metric_labels(sv->labels, sizeof sv->labels, sv->dir, sv->label, sv->nlabels);
}

static int write_metrics(struct serve *sv)
{
	char text[16384];
	size_t n = 0;
	uint64_t cum = 0;
	struct wal_engine_stats st;
	const char *L = sv->labels;

	if (!sv->metrics)
		return 0;
	wal_engine_stats(sv->e, &st);
#define M(name, type, help, fmt, ...)                                                                                  \
	n += (size_t)snprintf(text + n, sizeof text - n,                                                               \
	                      "# HELP walctl_" name " " help "\n# TYPE walctl_" name " " type "\nwalctl_" name         \
	                      "{%s} " fmt "\n",                                                                        \
	                      L, __VA_ARGS__)
	n += (size_t)snprintf(text + n, sizeof text - n,
	                      "# HELP walctl_build_info walctl's version, as a label.\n# TYPE walctl_build_info gauge\n"
	                      "walctl_build_info{%s,version=\"%s\"} 1\n",
	                      L, WAL_VERSION_STRING);
	M("start_time_seconds", "gauge", "Start time of the process since the Unix epoch.", "%.3f",
	  (double)sv->started_ns / 1e9);
	M("entries_total", "counter", "Data entries (POINTS) appended to the WAL.", "%" PRIu64, st.entries);
	M("checkpoints_total", "counter", "CHECKPOINT entries appended to the WAL.", "%" PRIu64, st.checkpoints);
	M("appended_bytes_total", "counter", "Bytes appended to the WAL.", "%" PRIu64, st.bytes_appended);
	M("syncs_total", "counter", "Syncs of the WAL.", "%" PRIu64, st.syncs);
	M("rotations_total", "counter", "Segments sealed and rotated.", "%" PRIu64, st.rotations);
	M("segments", "gauge", "Segment files in the WAL directory.", "%" PRIu64, wal_segment_count(sv->dir));
	M("segments_reclaimed_total", "counter", "Checkpointed segments removed.", "%" PRIu64, st.reclaimed);
	M("consumers_lost_total", "counter", "Consumers marked lost for lagging past --max-consumer-lag.", "%" PRIu64,
	  st.consumers_lost);
	M("flushes_total", "counter", "Flushes of buffered points to storage partitions.", "%" PRIu64, st.flushes);
	M("points_accepted_total", "counter", "Points accepted from stdin.", "%" PRIu64, st.points);
	M("points_rejected_total", "counter", "Bad input lines rejected.", "%" PRIu64, sv->points_bad);
	M("durable_lsn", "gauge", "Highest LSN known durable.", "%" PRIu64, st.acked_lsn);
	M("checkpoint_lsn", "gauge", "LSN through which storage is durable.", "%" PRIu64, st.checkpoint_lsn);
	M("not_checkpointed_bytes", "gauge", "WAL bytes appended since the last checkpoint.", "%" PRIu64,
	  st.bytes_appended - st.bytes_at_checkpoint);
	M("recovery_seconds", "gauge", "Time taken by startup recovery.", "%.6f", st.recovery_seconds);
#undef M
	n += (size_t)snprintf(text + n, sizeof text - n,
	                      "# HELP walctl_sync_duration_seconds Time taken by each sync.\n"
	                      "# TYPE walctl_sync_duration_seconds histogram\n");
	for (size_t b = 0; b <= WAL_ENGINE_BUCKETS; b++) {
		cum += st.sync_hist[b];
		if (b < WAL_ENGINE_BUCKETS)
			n += (size_t)snprintf(text + n, sizeof text - n,
			                      "walctl_sync_duration_seconds_bucket{%s,le=\"%g\"} %" PRIu64 "\n", L,
			                      wal_engine_bucket(b), cum);
		else
			n += (size_t)snprintf(text + n, sizeof text - n,
			                      "walctl_sync_duration_seconds_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", L,
			                      cum);
	}
	n += (size_t)snprintf(
	    text + n, sizeof text - n,
	    "walctl_sync_duration_seconds_sum{%s} %.9f\nwalctl_sync_duration_seconds_count{%s} %" PRIu64 "\n", L,
	    st.sync_seconds, L, st.syncs);
	if (n >= sizeof text) /* the labels are bounded far below this */
		n = sizeof text - 1;
	return metrics_write(sv->metrics, text, n);
}

static void *metrics_main(void *arg)
{
	struct serve *sv = arg;

	for (;;) {
		if (write_metrics(sv) != 0)
			logfmt("warn", "msg=\"cannot write metrics\" error=\"%s\"", wal_lq(wal_errmsg()));
		/* a second, or until shutdown wakes us */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		if (wal_engine_wait(sv->e, &ts))
			return NULL;
	}
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
		{ "max-consumer-lag", required_argument, NULL, OPT_MAX_LAG },
		{ "compression-level", required_argument, NULL, OPT_LEVEL },
		{ "metrics-file", required_argument, NULL, OPT_METRICS },
		{ "metrics-label", required_argument, NULL, OPT_METRICS_LABEL },
		{ "ack", no_argument, NULL, OPT_ACK },
		{ "strict", no_argument, NULL, OPT_STRICT },
		{ NULL, 0, NULL, 0 },
	};
	static struct serve s0;
	struct serve *sv = &s0;
	uint64_t v;
	int opt, rc = 0;

	sv->db = "default";
	sv->eo.buffer_points = 10000;
	sv->eo.flush_interval_ns = 1000000000;
	sv->eo.keep_segments = 3;
	sv->eo.level = 1;
	while ((opt = getopt_long(argc, argv, COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (common_opt(opt, optarg))
			continue;
		switch (opt) {
		case 'h': return cmd_usage("serve", options, stdout);
		case OPT_DB:
			if (wal_db_check(optarg, strlen(optarg)) != 0)
				return usage_error("option '--db': %s", wal_errmsg());
			sv->db = optarg;
			sv->db_forced = 1;
			break;
		case OPT_PRECISION:
			if ((sv->prec = wal_precision_parse(optarg)) < 0)
				return usage_error("option '--precision': invalid value '%s' (want ns, us, ms or s)",
				                   optarg);
			break;
		case OPT_SYNC:
			if (parse_sync("--sync", optarg, &sv->eo.wal.sync))
				return EXIT_USAGE;
			break;
		case OPT_SYNC_INTERVAL:
			if (parse_duration("--sync-interval", optarg, &sv->eo.sync_interval_ns))
				return EXIT_USAGE;
			break;
		case OPT_BUFFER:
			if (parse_u64("--buffer-points", optarg, &sv->eo.buffer_points))
				return EXIT_USAGE;
			if (!sv->eo.buffer_points)
				return usage_error("option '--buffer-points': must be at least 1");
			break;
		case OPT_FLUSH_INTERVAL:
			if (parse_duration("--flush-interval", optarg, &sv->eo.flush_interval_ns))
				return EXIT_USAGE;
			if (!sv->eo.flush_interval_ns)
				return usage_error("option '--flush-interval': must be more than 0");
			break;
		case OPT_SEGSIZE:
			if (parse_size("--max-segment-size", optarg, &sv->eo.wal.max_segment_size))
				return EXIT_USAGE;
			if (sv->eo.wal.max_segment_size < 4096)
				return usage_error("option '--max-segment-size': must be at least 4k");
			break;
		case OPT_SEGAGE:
			if (parse_duration("--max-segment-age", optarg, &sv->eo.wal.max_segment_age_ns))
				return EXIT_USAGE;
			break;
		case OPT_MAX_LAG:
			if (parse_size("--max-consumer-lag", optarg, &sv->eo.max_consumer_lag))
				return EXIT_USAGE;
			if (!sv->eo.max_consumer_lag)
				return usage_error("option '--max-consumer-lag': want more than 0");
			break;
		case OPT_KEEP:
			if (parse_u64("--keep-segments", optarg, &v))
				return EXIT_USAGE;
			if (v < 1)
				return usage_error("option '--keep-segments': want 1 or more");
			sv->eo.keep_segments = (unsigned)v;
			break;
		case OPT_LEVEL:
			if (parse_u64("--compression-level", optarg, &v))
				return EXIT_USAGE;
			if (v < 1 || v > 9)
				return usage_error("option '--compression-level': want 1 to 9");
			sv->eo.level = (int)v;
			break;
		case OPT_METRICS: sv->metrics = optarg; break;
		case OPT_METRICS_LABEL:
			if (metric_label_opt(optarg, sv->label, &sv->nlabels, sizeof sv->label / sizeof sv->label[0]))
				return EXIT_USAGE;
			break;
		case OPT_ACK: sv->ack = 1; break;
		case OPT_STRICT: sv->strict = 1; break;
		default: return option_error(opt, argv);
		}
	}
	if (optind < argc)
		return usage_error("serve reads stdin; unexpected argument '%s'", argv[optind]);
	sv->dir = data_dir();
	sv->started_ns = wal_now_ns();

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
	sv->main_th = pthread_self();

	/* Startup: lock, verify, cut a torn tail, refuse damage, replay. */
	sv->eo.ctx = sv;
	sv->eo.ack = sv->ack ? on_ack : NULL;
	sv->eo.log = on_log;
	sv->eo.failed = on_failed;
	int err = wal_engine_open(&sv->e, sv->dir, &sv->eo);
	if (!sv->e)
		return exit_for(err);
	make_labels(sv);
	if (err == WAL_ECORRUPT)
		rc = EXIT_DAMAGE; /* logged, with what to run next */
	else if (err != 0)
		rc = EXIT_OPER;
	struct wal_engine_stats st;
	wal_engine_stats(sv->e, &st);
	logfmt("info",
	       "msg=\"started\" dir=\"%s\" next_lsn=\"%" PRIu64 "\" checkpoint_lsn=\"%" PRIu64
	       "\" sync=\"%s\" recovery_seconds=\"%.3f\"",
	       wal_lq(sv->dir), st.next_lsn, st.checkpoint_lsn,
	       sv->eo.wal.sync == WAL_SYNC_FSYNC   ? "fsync"
	       : sv->eo.wal.sync == WAL_SYNC_ASYNC ? "async"
	                                           : "fdatasync",
	       st.recovery_seconds);
	pthread_t metrics_th;
	int have_metrics = 0;
	if (sv->metrics)
		have_metrics = pthread_create(&metrics_th, NULL, metrics_main, sv) == 0;

	/* Ingest. */
	wal_lp_t *lp = NULL;
	wal_enc_t *enc = NULL;
	size_t cap = 1 << 20, have = 0;
	char *buf = malloc(cap);
	uint64_t batch = 0, line = 1;
	size_t scanned = 0; /* buf[0..scanned) holds no directive; a line starts at scanned */
	int eof = 0, export_seen = 0;
	struct helper h = { 0 };
	err = 0;
	if (!buf || wal_lp_new(&lp, (enum wal_precision)sv->prec, wal_now_ns()) || wal_enc_new(&enc)) {
		logfmt("error", "msg=\"out of memory\"");
		rc = EXIT_OPER;
	}
	if (enc)
		wal_enc_begin(enc, sv->db, strlen(sv->db));
	if (!rc)
		helper_start(&h, sv);
	(void)fcntl(0, F_SETPIPE_SZ, 1 << 20); /* fewer, larger reads from a pipe */
	while (!rc && !eof && !got_stop && !atomic_load(&ack_gone) && !wal_engine_failure(sv->e)) {
		if (got_status) {
			got_status = 0;
			status_line(sv);
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
			logfmt("error", "msg=\"cannot read stdin\" error=\"%s\"", wal_lq(strerror(errno)));
			rc = EXIT_OPER;
			break;
		}
		eof = n == 0;
		have += (size_t)n;
		/* while more input is waiting, read it too: a large read is
		 * parsed on two threads */
		int avail = 0;
		if (!eof && have < READ_MAX && ioctl(0, FIONREAD, &avail) == 0 && avail > 0)
			continue;
		/* (the lines looked at before are not looked at again; the last,
		 * which may not be whole, is) */
		if (!export_seen && lp_has_directive(buf + scanned, have - scanned))
			export_seen = 1;
		const char *last_nl = memrchr(buf + scanned, '\n', have - scanned);
		if (last_nl)
			scanned = (size_t)(last_nl - buf) + 1;
		wal_lp_set_default_time(lp, wal_now_ns());
		size_t used = 0;
		rc = parse_read(sv, &h, lp, enc, &batch, &err, buf, have, eof, &line, !export_seen, &used);
		if (!rc && !err && !got_stop && used < have && (eof || have - used >= PAR_MIN)) {
			/* a split that fell inside a point: the rest in one piece */
			size_t more = 0;
			rc = parse_read(sv, &h, lp, enc, &batch, &err, buf + used, have - used, eof, &line, 0, &more);
			used += more;
		}
		memmove(buf, buf + used, have - used);
		have -= used;
		scanned = scanned > used ? scanned - used : 0;
		/* When no more input is there right now, frame what this read
		 * brought: a producer may be waiting for its ack.  While input keeps
		 * coming, go on filling the entry. */
		avail = 0;
		if (!rc && !err && batch && (eof || ioctl(0, FIONREAD, &avail) != 0 || avail == 0))
			err = append_batch(sv, enc, &batch);
		if (err) {
			logfmt("error", "msg=\"cannot append to the WAL\" error=\"%s\"", wal_lq(wal_errmsg()));
			rc = EXIT_OPER;
			break;
		}
	}
	int gone = atomic_load(&ack_gone);
	if (gone) {
		logfmt("error", "msg=\"cannot write acks: stopped reading\" error=\"%s (%s)\"", strerror(gone),
		       strerrorname_np(gone));
		rc = EXIT_OPER;
	}
	if (!rc && !wal_engine_failure(sv->e) && batch && append_batch(sv, enc, &batch) != 0)
		rc = EXIT_OPER;

	/* Shutdown: flush, checkpoint, sync, close. */
	wal_engine_stop(sv->e);
	if (have_metrics)
		pthread_join(metrics_th, NULL);
	/* the last metrics, while the writer is still there to ask */
	if (sv->metrics && write_metrics(sv) != 0)
		logfmt("warn", "msg=\"cannot write metrics\" error=\"%s\"", wal_lq(wal_errmsg()));
	wal_engine_stats(sv->e, &st);
	if (wal_engine_failure(sv->e)) {
		errorf("%s", wal_engine_failure(sv->e));
		rc = EXIT_OPER;
	}
	if (wal_engine_close(sv->e) != 0)
		rc = EXIT_OPER;
	logfmt("info",
	       "msg=\"stopped\" points=\"%" PRIu64 "\" rejected=\"%" PRIu64 "\" entries=\"%" PRIu64
	       "\" acked_points=\"%" PRIu64 "\" syncs=\"%" PRIu64 "\" flushes=\"%" PRIu64 "\" checkpoint_lsn=\"%" PRIu64
	       "\"",
	       st.points, sv->points_bad, st.entries, st.acked_points, st.syncs, st.flushes, st.checkpoint_lsn);
	if (!rc && sv->points_bad)
		rc = EXIT_DAMAGE;
	if (lp && wal_lp_ddl_skipped(lp))
		logfmt("info", "msg=\"skipped the DDL statements of an InfluxDB export\" count=\"%" PRIu64 "\"",
		       wal_lp_ddl_skipped(lp));
	helper_stop(&h);
	free(buf);
	wal_lp_free(lp);
	wal_enc_free(enc);
	return rc;
}
