/*
 * engine.c - the ingestion engine: group commit and acks, the write buffer
 * and its flusher to storage, checkpoints, reclamation, backpressure and
 * startup recovery.  walctl serve is a front end to it; walctl write runs
 * it WAL-only (no flusher, no checkpoints, no replay); walctl bench runs it
 * in-process.
 *
 * Two threads beside the caller's.  The caller appends entries
 * (wal_engine_append).  Sync does group commit: one fdatasync covers every
 * entry appended while the previous one was in flight (or one per sync
 * interval), then reports the ack.  Flush takes the buffered entries when
 * enough points are buffered or every flush interval, writes them to
 * compressed storage partitions, appends a CHECKPOINT and reclaims the
 * segments below it beyond the ones kept.
 *
 * Backpressure: when the flusher falls behind, wal_engine_append waits
 * until it catches up; nothing is dropped and memory stays bounded.  A
 * failed sync is never retried: no further ack is reported and the engine
 * stops; what was acknowledged is intact.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static const double buckets[WAL_ENGINE_BUCKETS] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
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

struct wal_engine {
	char dir[4096];
	struct wal_engine_opts o;
	/* state shared by the threads, under mu */
	wal_t *w;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ackpt {
		uint64_t lsn, points, entries; /* points and entries through lsn */
	} * ring;
	size_t rhead, rcount, rcap;
	uint64_t appended, acked_lsn, acked_points, acked_entries;
	struct fbuf fb[2];
	int fill;     /* buffer being filled */
	int flushing; /* buffer being flushed, or -1 */
	int stop_sync, stop_flush, fatal, stopped;
	char fatal_msg[512];
	uint64_t ckpt, points_in, entries, syncs, flushes, checkpoints, reclaimed, consumers_lost;
	uint64_t hist[WAL_ENGINE_BUCKETS + 1], rotations_seen;
	double sync_sum, recovery_s;
	uint64_t bytes_at_ckpt;
	pthread_t syncer, flusher;
};

/* A logfmt record, without its ts and level, to the front end. */
static void elog(wal_engine_t *e, const char *level, const char *fmt, ...) WAL_PRINTF(3, 4);
static void elog(wal_engine_t *e, const char *level, const char *fmt, ...)
{
	char text[2048];
	va_list ap;

	if (!e->o.log)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	e->o.log(e->o.ctx, level, text);
}

static void fatal(wal_engine_t *e, const char *msg)
{
	pthread_mutex_lock(&e->mu);
	int first = !e->fatal;
	if (first) {
		e->fatal = 1;
		snprintf(e->fatal_msg, sizeof e->fatal_msg, "%s", msg);
	}
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	if (first && e->o.failed)
		e->o.failed(e->o.ctx);
}

static void note_rotation(wal_engine_t *e)
{
	uint64_t r = wal_rotations(e->w);

	pthread_mutex_lock(&e->mu);
	int fresh = r > e->rotations_seen;
	e->rotations_seen = r;
	pthread_mutex_unlock(&e->mu);
	if (fresh) {
		char seg[64];
		wal_segment(e->w, seg, sizeof seg);
		elog(e, "info", "msg=\"segment rotated\" segment=\"%s\"", wal_lq(seg));
	}
}

/* ------------------------------------------------------------------ sync */

static void *sync_main(void *arg)
{
	wal_engine_t *e = arg;

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
		if (e->o.wal.sync == WAL_SYNC_ASYNC) {
			durable = wal_last_lsn(e->w); /* handed to the kernel */
		} else {
			if (wal_sync(e->w) != 0) {
				char msg[600];
				snprintf(msg, sizeof msg, "%s", wal_errmsg());
				elog(e, "error", "msg=\"sync failed; no further acknowledgement\" error=\"%s\"",
				     wal_lq(msg));
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
		while (b < WAL_ENGINE_BUCKETS && secs > buckets[b])
			b++;
		e->hist[b]++;
		uint64_t points = e->acked_points;
		while (e->rcount && e->ring[e->rhead].lsn <= durable) {
			points = e->ring[e->rhead].points;
			e->acked_entries = e->ring[e->rhead].entries;
			e->rhead = (e->rhead + 1) % e->rcap;
			e->rcount--;
		}
		int news = points != e->acked_points || durable > e->acked_lsn;
		e->acked_points = points;
		e->acked_lsn = durable;
		pthread_cond_broadcast(&e->cv);
		pthread_mutex_unlock(&e->mu);
		if (e->o.ack && news)
			e->o.ack(e->o.ctx, durable, points);
		if (e->o.sync_interval_ns > 0) {
			/* until the interval is up, or the engine stops: a stop never
			 * waits out a long interval */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t ns = ts.tv_nsec + e->o.sync_interval_ns % 1000000000;
			ts.tv_sec += (time_t)(e->o.sync_interval_ns / 1000000000 + ns / 1000000000);
			ts.tv_nsec = (long)(ns % 1000000000);
			pthread_mutex_lock(&e->mu);
			while (!e->fatal && !e->stop_sync && pthread_cond_timedwait(&e->cv, &e->mu, &ts) == 0)
				;
			pthread_mutex_unlock(&e->mu);
		}
	}
}

/* ----------------------------------------------------------------- flush */

static void consumer_lost(void *ctx, const struct wal_consumer *c, uint64_t lag)
{
	wal_engine_t *e = ctx;

	elog(e, "warn",
	     "msg=\"consumer lost\" consumer=\"%s\" cursor_lsn=\"%" PRIu64 "\" lag_bytes=\"%" PRIu64
	     "\" max_consumer_lag=\"%" PRIu64 "\"",
	     wal_lq(c->name), c->lsn, lag, e->o.max_consumer_lag ? e->o.max_consumer_lag : WAL_CONSUMER_LAG_DEFAULT);
	pthread_mutex_lock(&e->mu);
	e->consumers_lost++;
	pthread_mutex_unlock(&e->mu);
}

static void consumers_held(void *ctx, const char *why)
{
	elog(ctx, "warn", "msg=\"no segment reclaimed: the consumers cannot be read\" error=\"%s\"", wal_lq(why));
}

/* Write one buffer to storage, checkpoint, reclaim.  0, or -1 with why. */
static int flush_buffer(wal_engine_t *e, struct fbuf *f, char *why, size_t cap)
{
	wal_flush_t *fl = NULL;
	uint64_t through, lsn;
	unsigned removed = 0;
	int64_t t0 = wal_now_ns(), t_stored, t_ckpt;

	if (!f->n)
		return 0;
	through = f->ent[f->n - 1].lsn;
	/* storage holds only what the WAL has synced: were a partition durable
	 * and its entries not, a power cut would leave storage holding LSNs
	 * the WAL hands out again.  Usually the syncer has covered them. */
	if (wal_sync_through(e->w, through) != 0)
		goto fail;
	if (wal_flush_new(&fl, e->dir, wal_id(e->w), e->o.level) != 0)
		goto fail;
	for (size_t i = 0; i < f->n; i++)
		if (wal_flush_add(fl, f->ent[i].lsn, f->data + f->ent[i].off, f->ent[i].len) != 0)
			goto fail;
	t_stored = wal_now_ns();
	if (wal_flush_checkpoint(fl, e->w, through, &lsn) != 0)
		goto fail;
	t_ckpt = wal_now_ns();
	note_rotation(e);
	struct wal_reclaim_opts ro = { .keep = e->o.keep_segments,
		                       .max_consumer_lag = e->o.max_consumer_lag,
		                       .ctx = e,
		                       .lost = consumer_lost,
		                       .held = consumers_held };
	if (wal_reclaim(e->w, through, &ro, &removed) != 0)
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
	/* -v: what each step of a flush took */
	elog(e, "debug",
	     "msg=\"flushed\" points=\"%" PRIu64 "\" through_lsn=\"%" PRIu64 "\" partitions=\"%zu\" reclaimed=\"%u\" "
	     "store_seconds=\"%.6f\" checkpoint_seconds=\"%.6f\" reclaim_seconds=\"%.6f\"",
	     f->points, through, wal_flush_npartitions(fl), removed, (double)(t_stored - t0) / 1e9,
	     (double)(t_ckpt - t_stored) / 1e9, (double)(wal_now_ns() - t_ckpt) / 1e9);
	wal_flush_free(fl);
	return 0;
fail:
	snprintf(why, cap, "%s", wal_errmsg());
	wal_flush_free(fl);
	return -1;
}

static void *flush_main(void *arg)
{
	wal_engine_t *e = arg;
	int64_t last = wal_now_ns();

	for (;;) {
		pthread_mutex_lock(&e->mu);
		for (;;) {
			struct fbuf *f = &e->fb[e->fill];
			int64_t now = wal_now_ns();
			if (e->fatal || (e->stop_flush && !f->n))
				break;
			if (f->points >= e->o.buffer_points || (f->n && now - last >= e->o.flush_interval_ns) ||
			    (e->stop_flush && f->n))
				break;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t wait = e->o.flush_interval_ns - (now - last);
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
			elog(e, "error", "msg=\"flush to storage failed\" error=\"%s\"", wal_lq(why));
			fatal(e, why);
			return NULL;
		}
	}
}

/* Keep a copy of an appended entry for the flusher.  Waits while the
 * flusher is behind: that is the backpressure on the caller. */
static int buffer_entry(wal_engine_t *e, uint64_t lsn, const unsigned char *p, size_t len, uint64_t points)
{
	pthread_mutex_lock(&e->mu);
	while (!e->fatal && e->fb[e->fill].points >= 2 * e->o.buffer_points && e->flushing >= 0)
		pthread_cond_wait(&e->cv, &e->mu);
	struct fbuf *f = &e->fb[e->fill];
	int rc = wal_grow((void **)&f->ent, &f->cap, f->n + 1, sizeof *f->ent);
	if (rc == 0)
		rc = wal_grow((void **)&f->data, &f->cap2, f->len + len, 1);
	if (rc != 0) {
		pthread_mutex_unlock(&e->mu);
		return rc;
	}
	memcpy(f->data + f->len, p, len);
	f->ent[f->n++] = (struct fent){ lsn, f->len, (uint32_t)len };
	f->len += len;
	f->points += points;
	if (f->points >= e->o.buffer_points)
		pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	return 0;
}

/* --------------------------------------------------------------- appends */

int wal_engine_append(wal_engine_t *e, unsigned type, const void *payload, size_t len, uint64_t points,
                      uint64_t *lsn_out)
{
	uint64_t lsn;
	int rc;

	if (wal_engine_failure(e))
		return wal_seterr(WAL_ESTOPPED, "%s", e->fatal_msg);
	if ((rc = wal_append(e->w, type, payload, len, &lsn)) != 0)
		return rc;
	if (lsn_out)
		*lsn_out = lsn;
	note_rotation(e);
	pthread_mutex_lock(&e->mu);
	e->points_in += points;
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
	e->ring[(e->rhead + e->rcount++) % e->rcap] = (struct ackpt){ lsn, e->points_in, e->entries };
	if (lsn > e->appended)
		e->appended = lsn;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	return e->o.wal_only || (type & 0x7f) != WAL_T_POINTS ? 0 : buffer_entry(e, lsn, payload, len, points);
}

/* --------------------------------------------------------------- startup */

/* What the scan of wal_open read after the last checkpoint it had seen so
 * far: the replay's input, so that startup reads the WAL once.  Payloads
 * are held up to REPLAY_HOLD bytes; past that, the replay reads what
 * follows the checkpoint again (walctl-serve(1)). */
#define REPLAY_HOLD (16u << 20)

struct replay {
	uint64_t ckpt;    /* the last checkpoint so far */
	wal_held_t *held; /* every entry after it, and the POINTS payloads */
	wal_dec_t *dec;
	/* the first damage to what a replay would store: it stops before it */
	int bad;
	uint64_t bad_lsn, bad_off;
	char bad_seg[64], bad_why[600];
};

static int replay_bad(struct replay *r, const struct wal_entry *en, const char *why)
{
	if (!r->bad) {
		r->bad = 1;
		r->bad_lsn = en->lsn;
		r->bad_off = en->offset;
		snprintf(r->bad_seg, sizeof r->bad_seg, "%s", en->segment);
		snprintf(r->bad_why, sizeof r->bad_why, "%s", why);
	}
	return 0;
}

/* wal_opts.visit: what the replay would check and store, as wal_open's
 * scan reads it (the checks of a scan with check_payloads = 1,
 * decode_unstored and wal_check_storage). */
static int replay_visit(void *ctx, wal_scan_t *s, const struct wal_entry *en)
{
	struct replay *r = ctx;
	char why[600];
	int rc;

	if ((en->type & 0x7f) == WAL_T_CHECKPOINT) {
		struct wal_checkpoint c;
		struct wal_str names[256];
		if (wal_checkpoint_decode(en->payload, en->len, &c, names, 256) != 0 || c.lsn >= en->lsn)
			return 0; /* damage the scan reports; wal_open refuses it */
		c.partitions = names;
		if ((rc = wal_check_named(wal_scan_datadir(s), wal_scan_id(s), en, &c, why, sizeof why)) < 0)
			return rc;
		if (rc)
			replay_bad(r, en, why);
		if (c.lsn > r->ckpt)
			wal_held_cut(r->held, r->ckpt = c.lsn);
	} else if ((en->type & 0x7f) == WAL_T_POINTS) {
		struct wal_str db;
		struct wal_point pt;
		if (!r->dec && wal_dec_new(&r->dec) != 0)
			return WAL_ENOMEM;
		rc = wal_dec_begin(r->dec, en->payload, en->len, &db);
		if (rc == 0 && en->lsn > r->ckpt)
			while ((rc = wal_dec_next(r->dec, &pt)) == 1)
				;
		if (rc != 0) {
			snprintf(why, sizeof why, "points payload of LSN %" PRIu64 " does not decode", en->lsn);
			return replay_bad(r, en, why);
		}
	}
	return en->lsn > r->ckpt ? wal_held_add(r->held, en) : 0;
}

static void replay_free(struct replay *r)
{
	wal_held_free(r->held);
	wal_dec_free(r->dec);
}

/* Partitions an interrupted flush left above checkpoint LSN ckpt: those the
 * WAL holds byte for byte go (the replay stores them again); any other
 * stays, and stops the replay if the WAL holds its LSNs. */
static int replay_orphans(wal_engine_t *e, uint64_t ckpt, const wal_held_t *held)
{
	unsigned orphans = 0, kept = 0, rebuildable = 0;
	int rc;

	if ((rc = wal_part_drop_orphans(e->dir, ckpt, held, &orphans, &kept, &rebuildable)) != 0)
		return rc;
	if (rebuildable) {
		/* damaged, or not this WAL's: its LSNs would be stored beside it */
		elog(e, "error",
		     "msg=\"partitions above the last checkpoint are not what the WAL holds for their LSNs\" "
		     "count=\"%u\" checkpoint_lsn=\"%" PRIu64
		     "\" dir=\"%s/data\" error=\"run 'walctl recover --apply -d %s' "
		     "to set them aside in the quarantine and store their points again\"",
		     rebuildable, ckpt, wal_lq(e->dir), wal_lq(e->dir));
		return WAL_ECORRUPT;
	}
	if (orphans)
		elog(e, "info",
		     "msg=\"removed partitions of an interrupted flush\" count=\"%u\" checkpoint_lsn=\"%" PRIu64 "\"",
		     orphans, ckpt);
	if (kept)
		elog(e, "warn",
		     "msg=\"kept partitions that no checkpoint names and whose points the WAL does not hold\" "
		     "count=\"%u\" checkpoint_lsn=\"%" PRIu64 "\" dir=\"%s/data\"",
		     kept, ckpt, wal_lq(e->dir));
	return 0;
}

static int replay_damage(wal_engine_t *e, const char *segment, uint64_t offset, const char *why)
{
	elog(e, "error",
	     "msg=\"damage to what a replay would store\" segment=\"%s\" offset=\"%" PRIu64
	     "\" error=\"%s; run 'walctl recover --mode salvage -d %s'\"",
	     wal_lq(segment), offset, wal_lq(why), wal_lq(e->dir));
	return WAL_ECORRUPT;
}

static void log_replayed(wal_engine_t *e, uint64_t replayed, uint64_t ckpt)
{
	if (replayed)
		elog(e, "info",
		     "msg=\"replaying entries after the last checkpoint\" entries=\"%" PRIu64
		     "\" checkpoint_lsn=\"%" PRIu64 "\"",
		     replayed, ckpt);
}

/* The entries after the last checkpoint go to the flusher again, from
 * what wal_open's scan held; partitions an interrupted flush left above it
 * go first. */
static int startup_replay(wal_engine_t *e, struct replay *r)
{
	uint64_t replayed = 0;
	int rc;

	e->ckpt = r->ckpt;
	if ((rc = replay_orphans(e, r->ckpt, r->held)) != 0)
		return rc;
	for (size_t i = 0; i < wal_held_npayloads(r->held); i++) {
		const unsigned char *pl;
		size_t len;
		uint64_t lsn = wal_held_payload(r->held, i, &pl, &len);
		if (r->bad && lsn >= r->bad_lsn)
			break;
		if ((rc = buffer_entry(e, lsn, pl, len, 0)) != 0)
			return rc;
		replayed++;
	}
	log_replayed(e, replayed, r->ckpt);
	return r->bad ? replay_damage(e, r->bad_seg, r->bad_off, r->bad_why) : 0;
}

/* The same when what follows the checkpoint was too much to hold: it is
 * read again. */
static int startup_replay_read(wal_engine_t *e)
{
	/* what is replayed is stored: every point of it must decode */
	struct wal_scan_opts so = { .check_payloads = 1, .decode_unstored = 1, .checkpoint = wal_check_storage };
	wal_after_t *r;
	struct wal_entry en;
	uint64_t ckpt, replayed = 0;
	int rc;

	/* the checkpoint as the scan of wal_open read it: the WAL is not read
	 * once more to find it */
	if ((rc = wal_after_open(&r, e->dir, (int64_t)wal_open_checkpoint(e->w), 1, &so)) != 0)
		return rc;
	e->ckpt = ckpt = wal_after_checkpoint(r);
	wal_scan_t *s = wal_after_scan(r);
	if ((rc = replay_orphans(e, ckpt, NULL)) != 0)
		goto out;
	while ((rc = wal_after_next(r, &en)) == 1) {
		if (wal_scan_class(s) & WAL_CLASS_DAMAGE)
			break;
		if ((rc = buffer_entry(e, en.lsn, en.payload, en.len, 0)) != 0)
			break;
		replayed++;
	}
	for (size_t i = 0; rc >= 0 && i < wal_scan_nfindings(s); i++) {
		const struct wal_finding *f = wal_scan_finding(s, i);
		if (f->cls == WAL_CLASS_DAMAGE) {
			rc = replay_damage(e, f->segment, f->offset, f->message);
			break;
		}
	}
	log_replayed(e, replayed, ckpt);
out:
	wal_after_close(r);
	return rc < 0 ? rc : 0;
}

int wal_engine_open(wal_engine_t **out, const char *dir, const struct wal_engine_opts *o)
{
	wal_engine_t *e = calloc(1, sizeof *e);
	int64_t t0 = wal_now_ns();
	int rc;

	*out = NULL;
	if (!e)
		return wal_seterr(WAL_ENOMEM, "out of memory");
	snprintf(e->dir, sizeof e->dir, "%s", dir);
	e->o = *o;
	if (!e->o.buffer_points)
		e->o.buffer_points = 10000;
	if (e->o.flush_interval_ns <= 0)
		e->o.flush_interval_ns = 1000000000;
	if (!e->o.keep_segments)
		e->o.keep_segments = 3;
	if (!e->o.level)
		e->o.level = 1;
	e->flushing = -1;
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	/* a replay reads what it stores as wal_open reads the WAL */
	struct replay r = { 0 };
	struct wal_opts wo = e->o.wal;
	if (!e->o.wal_only) {
		if ((rc = wal_held_new(&r.held, REPLAY_HOLD)) != 0) {
			free(e);
			return rc;
		}
		wo.visit = replay_visit;
		wo.visit_ctx = &r;
	}
	if ((rc = wal_open(&e->w, e->dir, &wo)) != 0) {
		char msg[600];
		snprintf(msg, sizeof msg, "%s", wal_errmsg());
		elog(e, "error", "msg=\"cannot open the WAL\" dir=\"%s\" error=\"%s\"", wal_lq(e->dir), wal_lq(msg));
		replay_free(&r);
		free(e);
		return wal_seterr(rc, "%s", msg);
	}
	if (wal_torn_note(e->w))
		elog(e, "info", "msg=\"cut a torn tail\" detail=\"%s\"", wal_lq(wal_torn_note(e->w)));
	int64_t t_open = wal_now_ns();
	/* -v: the startup scan, which also checked and held what is replayed */
	elog(e, "debug",
	     "msg=\"scanned the WAL\" last_lsn=\"%" PRIu64 "\" checkpoint_lsn=\"%" PRIu64 "\" seconds=\"%.6f\"",
	     wal_last_lsn(e->w), wal_open_checkpoint(e->w), (double)(t_open - t0) / 1e9);
	e->appended = e->acked_lsn = wal_last_lsn(e->w);
	e->bytes_at_ckpt = 0;
	pthread_create(&e->syncer, NULL, sync_main, e);
	if (!e->o.wal_only)
		pthread_create(&e->flusher, NULL, flush_main, e);
	*out = e;
	if (!e->o.wal_only && (rc = wal_held_complete(r.held) ? startup_replay(e, &r) : startup_replay_read(e)) != 0 &&
	    rc != WAL_ECORRUPT)
		elog(e, "error", "msg=\"replay failed\" error=\"%s\"", wal_lq(wal_errmsg()));
	replay_free(&r);
	e->recovery_s = (double)(wal_now_ns() - t0) / 1e9;
	if (!e->o.wal_only)
		elog(e, "debug", "msg=\"handed what follows the checkpoint to the flusher\" seconds=\"%.6f\"",
		     (double)(wal_now_ns() - t_open) / 1e9);
	return rc;
}

/* ---------------------------------------------------------------- status */

const char *wal_engine_failure(wal_engine_t *e)
{
	pthread_mutex_lock(&e->mu);
	int failed = e->fatal;
	pthread_mutex_unlock(&e->mu);
	return failed ? e->fatal_msg : NULL; /* written once, before fatal is set */
}
const char *wal_engine_dir(const wal_engine_t *e) { return e->dir; }
const char *wal_engine_torn_note(const wal_engine_t *e) { return wal_torn_note(e->w); }

void wal_engine_stats(wal_engine_t *e, struct wal_engine_stats *st)
{
	memset(st, 0, sizeof *st);
	wal_segment(e->w, st->segment, sizeof st->segment);
	st->bytes_appended = wal_bytes_appended(e->w);
	st->rotations = wal_rotations(e->w);
	st->next_lsn = wal_last_lsn(e->w) + 1;
	pthread_mutex_lock(&e->mu);
	st->points = e->points_in;
	st->entries = e->entries;
	st->acked_lsn = e->acked_lsn;
	st->acked_points = e->acked_points;
	st->acked_entries = e->acked_entries;
	st->syncs = e->syncs;
	st->flushes = e->flushes;
	st->checkpoints = e->checkpoints;
	st->reclaimed = e->reclaimed;
	st->consumers_lost = e->consumers_lost;
	st->checkpoint_lsn = e->ckpt;
	st->bytes_at_checkpoint = e->bytes_at_ckpt;
	memcpy(st->sync_hist, e->hist, sizeof st->sync_hist);
	st->sync_seconds = e->sync_sum;
	st->recovery_seconds = e->recovery_s;
	pthread_mutex_unlock(&e->mu);
}

double wal_engine_bucket(size_t i) { return i < WAL_ENGINE_BUCKETS ? buckets[i] : 0; }

int wal_engine_wait(wal_engine_t *e, const struct timespec *until)
{
	int rc = 0;

	pthread_mutex_lock(&e->mu);
	while (!e->stopped && !e->fatal && rc == 0)
		rc = pthread_cond_timedwait(&e->cv, &e->mu, until);
	int done = e->stopped || e->fatal;
	pthread_mutex_unlock(&e->mu);
	return done;
}

/* -------------------------------------------------------------- shutdown */

void wal_engine_stop(wal_engine_t *e)
{
	pthread_mutex_lock(&e->mu);
	e->stop_flush = 1;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	if (!e->o.wal_only)
		pthread_join(e->flusher, NULL);
	pthread_mutex_lock(&e->mu);
	e->stop_sync = 1;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	pthread_join(e->syncer, NULL);
	pthread_mutex_lock(&e->mu);
	e->stopped = 1;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

int wal_engine_close(wal_engine_t *e)
{
	int rc = 0;

	if (!e)
		return 0;
	if (!e->stopped)
		wal_engine_stop(e);
	if (e->fatal) {
		wal_abandon(e->w);
		rc = wal_seterr(WAL_EIO, "%s", e->fatal_msg);
	} else if ((rc = wal_close(e->w)) != 0) {
		elog(e, "error", "msg=\"close failed\" error=\"%s\"", wal_lq(wal_errmsg()));
	}
	for (int i = 0; i < 2; i++) {
		free(e->fb[i].ent);
		free(e->fb[i].data);
	}
	free(e->ring);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
	free(e);
	return rc;
}
