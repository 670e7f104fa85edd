/*
 * repair.c - plans repairs (truncate, recover, compact); apply.c carries
 * them out and undo.c undoes them.
 *
 * A plan is computed from a scan of the WAL as it is: which bytes go,
 * which segments are rewritten, which LSNs are given up, what is replayed.
 * Applying it goes in an order that is safe to interrupt anywhere:
 *
 *   1. evidence: every byte that will go, and every file that will be
 *      rewritten or removed, is copied to DIR/quarantine/<stamp>/ and
 *      listed in its MANIFEST (file, offsets, sha256, LSNs, reason), synced;
 *   2. removals, then rewrites (temp, fsync, rename, fsync directory), then
 *      cuts (ftruncate, fsync);
 *   3. replay: the names of the partitions it will write and the sizes of
 *      the segments are recorded (REPLAY), then partitions are written and a
 *      CHECKPOINT appended through the ordinary writer;
 *   4. AFTER records the size and sha256 of every file the repair touched,
 *      which is what an undo checks before it puts anything back.
 *
 * Rerunning an interrupted repair plans again from what is on disk and
 * completes it; running a finished one finds nothing to do.
 *
 * A salvage keeps every valid frame, byte for byte, and puts a LOSS frame
 * where LSNs were lost, so that the LSN sequence is whole again and verify
 * reports the loss as known.  Segments are renamed when a LOSS frame
 * becomes their first frame; SEAL frames are re-encoded to describe their
 * rewritten segment.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#include "plan.h"

/* A tail repair's replay stores the payloads the survey kept, up to this
 * many bytes; past it, it reads them from the WAL again. */
#define REPAIR_HOLD (256u << 20)

static struct wal_action *add_action(wal_plan_t *p, enum wal_act_op op, size_t seg, const char *fmt, ...)
    WAL_PRINTF(4, 5);
static struct wal_action *add_action(wal_plan_t *p, enum wal_act_op op, size_t seg, const char *fmt, ...)
{
	va_list ap;
	size_t cap2 = p->capa;

	if (wal_grow((void **)&p->a, &p->capa, p->na + 1, sizeof *p->a))
		return NULL;
	if (p->capa != cap2) {
		void *x = realloc(p->a_seg, p->capa * sizeof *p->a_seg);
		void *y = x ? realloc(p->a_seg2, p->capa * sizeof *p->a_seg2) : NULL;
		if (x)
			p->a_seg = x;
		if (!x || !y)
			return NULL;
		p->a_seg2 = y;
	}
	struct wal_action *a = &p->a[p->na];
	memset(a, 0, sizeof *a);
	a->op = op;
	if (seg != (size_t)-1)
		snprintf(a->file, sizeof a->file, "%s", p->s[seg].name);
	p->a_seg[p->na] = seg;
	p->a_seg2[p->na] = seg;
	p->na++;
	va_start(ap, fmt);
	vsnprintf(a->detail, sizeof a->detail, fmt, ap);
	va_end(ap);
	return a;
}

size_t wal_plan_nactions(const wal_plan_t *p) { return p->na; }
const struct wal_action *wal_plan_action(const wal_plan_t *p, size_t i) { return i < p->na ? &p->a[i] : NULL; }
int wal_plan_class(const wal_plan_t *p) { return p->cls; }
const char *wal_plan_refusal(const wal_plan_t *p) { return p->refusal[0] ? p->refusal : NULL; }
size_t wal_plan_nlosses(const wal_plan_t *p) { return p->nloss; }
size_t wal_plan_nstorage_losses(const wal_plan_t *p) { return p->nsl; }
const struct wal_storage_loss *wal_plan_storage_loss(const wal_plan_t *p, size_t i)
{
	return i < p->nsl ? &p->sl[i] : NULL;
}
int wal_plan_loss_no_points(const wal_plan_t *p, size_t i) { return i < p->nloss && p->loss[i].no_points; }
void wal_plan_loss(const wal_plan_t *p, size_t i, uint64_t *first, uint64_t *last)
{
	*first = p->loss[i].first;
	*last = p->loss[i].last;
}

size_t wal_plan_nconsumers_lost(const wal_plan_t *p) { return p->nlost_consumers; }
size_t wal_plan_nrewinds(const wal_plan_t *p) { return p->nrewinds; }
const struct wal_consumer_rewind *wal_plan_rewind(const wal_plan_t *p, size_t i) { return &p->rewinds[i]; }
const struct wal_consumer_lag *wal_plan_consumer_lost(const wal_plan_t *p, size_t i) { return &p->lost_consumers[i]; }

void wal_plan_free(wal_plan_t *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->ns; i++) {
		free(p->s[i].f);
		free(p->s[i].pc);
	}
	free(p->s);
	free(p->a);
	free(p->a_seg);
	free(p->a_seg2);
	free(p->rb);
	free(p->gone);
	free(p->un);
	free(p->sl);
	free(p->loss);
	free(p->drop);
	free(p->lost_consumers);
	free(p->rewinds);
	wal_named_free(p->named);
	wal_held_free(p->held);
	if (p->lockfd >= 0)
		close(p->lockfd);
	free(p);
}

static size_t seg_index(wal_plan_t *p, const char *name)
{
	for (size_t i = 0; i < p->ns; i++)
		if (strcmp(p->s[i].name, name) == 0)
			return i;
	return (size_t)-1;
}

/* Scan the WAL once: every valid frame by segment, the findings, the last
 * checkpoint. */
static int dropped(const wal_plan_t *p, size_t seg, uint64_t off);
static int plan_holds(const wal_plan_t *p, uint64_t first, uint64_t last);

/* Give up a frame whose CRCs hold but that cannot be trusted. */
static int drop_frame(wal_plan_t *p, size_t k, uint64_t off)
{
	if (dropped(p, k, off))
		return 0; /* a checkpoint naming several bad partitions */
	if (wal_grow((void **)&p->drop, &p->capdrop, p->ndrop + 1, sizeof *p->drop))
		return WAL_ENOMEM;
	p->drop[p->ndrop].seg = k;
	p->drop[p->ndrop++].off = off;
	p->s[k].drop_any = 1;
	return 0;
}

/* The partitions up to the checkpoint that are missing, damaged or not
 * what their names say: those the WAL can rebuild (it holds every LSN of
 * their range and no other partition does) in rb, those a checkpoint names
 * whose LSNs the WAL holds only in part in gone.  Unless every bad one a
 * checkpoint names is in rb, the checkpoints naming them are given up. */
static int plan_rebuilds(wal_plan_t *p)
{
	wal_view_t *v;
	int all = 1, rc = 0;

	if (!p->o.replay || wal_view_open_named(&v, p->dir, p->named, p->wal_id) != 0)
		return 0;
	for (size_t i = 0; rc == 0 && i < wal_view_nbad(v); i++) {
		const struct wal_view_bad *b = wal_view_bad(v, i);
		int fits = !b->overlaps && b->ref.last_lsn <= wal_view_checkpoint(v);
		if (b->unnamed) {
			p->cls |= WAL_CLASS_DAMAGE;
			if ((rc = wal_grow((void **)&p->un, &p->capun, p->nun + 1, sizeof *p->un)) == 0)
				p->un[p->nun++] = *b;
		} else if (fits && plan_holds(p, b->ref.first_lsn, b->ref.last_lsn)) {
			if ((rc = wal_grow((void **)&p->rb, &p->caprb, p->nrb + 1, sizeof *p->rb)) == 0)
				p->rb[p->nrb++] = *b;
		} else if (b->named) {
			all = 0;
			if (fits && (rc = wal_grow((void **)&p->gone, &p->capgone, p->ngone + 1, sizeof *p->gone)) == 0)
				p->gone[p->ngone++] = *b;
		}
	}
	wal_view_close(v);
	p->rebuild_all = all && (p->nrb || p->nun);
	return rc;
}

static int survey(wal_plan_t *p)
{
	struct ckpt {
		uint64_t through;
		size_t seg;
		uint64_t off;
	} *ckpts = NULL;
	size_t nckpts = 0, capckpts = 0;
	const char *paths[1] = { p->dir };
	/* what a replay would store must decode, point by point */
	struct wal_scan_opts so = { .check_payloads = 1,
		                    .checkpoint = wal_check_storage,
		                    .decode_unstored =
		                        p->o.mode == WAL_REPAIR_TAIL || p->o.mode == WAL_REPAIR_SALVAGE };
	wal_scan_t *s;
	struct wal_entry e;
	size_t cur = 0;
	int rc;

	if ((rc = wal_named_new(&p->named)) != 0 ||
	    (rc = wal_held_new(&p->held,
	                       p->o.apply && p->o.replay && p->o.mode == WAL_REPAIR_TAIL ? REPAIR_HOLD : 0)) != 0)
		return rc;
	if ((rc = wal_scan_open(&s, paths, 1, &so)) != 0)
		return rc;
	p->ns = wal_scan_nsegments(s);
	p->s = calloc(p->ns ? p->ns : 1, sizeof *p->s);
	if (!p->s) {
		wal_scan_close(s);
		return wal_seterr(WAL_ENOMEM, "out of memory");
	}
	uint64_t total = 0, done = 0, n = 0;
	for (size_t i = 0; i < p->ns; i++) {
		snprintf(p->s[i].name, sizeof p->s[i].name, "%s", wal_scan_segment(s, i)->name);
		total += wal_scan_segment(s, i)->bytes;
	}
	while ((rc = wal_scan_next(s, &e)) == 1) {
		done += WAL_FRAME_HEADER_SIZE + e.len;
		if (p->o.progress && (++n & 15) == 0)
			p->o.progress(p->o.progress_ctx, "survey", done, total);
		if ((rc = wal_named_add(p->named, &e)) != 0)
			break;
		if (wal_scan_checkpoint(s) > p->held_ckpt)
			wal_held_cut(p->held, p->held_ckpt = wal_scan_checkpoint(s));
		if (e.lsn > p->held_ckpt && (rc = wal_held_add(p->held, &e)) != 0)
			break;
		while (cur < p->ns && strcmp(p->s[cur].name, e.segment) != 0)
			cur++;
		if (cur == p->ns)
			break;
		struct sg *g = &p->s[cur];
		if (wal_grow((void **)&g->f, &g->capf, g->nf + 1, sizeof *g->f)) {
			rc = WAL_ENOMEM;
			break;
		}
		struct fr *f = &g->f[g->nf++];
		f->off = e.offset;
		f->len = e.len;
		f->lsn = f->last = e.lsn;
		f->type = (uint8_t)e.type;
		if ((e.type & 0x7f) == WAL_T_LOSS) {
			struct wal_loss l;
			if (wal_loss_decode(e.payload, e.len, &l) == 0)
				f->last = l.last_lsn;
		} else if ((e.type & 0x7f) == WAL_T_CHECKPOINT) {
			struct wal_checkpoint c;
			if (wal_checkpoint_of(&e, &c)) {
				if (wal_grow((void **)&ckpts, &capckpts, nckpts + 1, sizeof *ckpts)) {
					rc = WAL_ENOMEM;
					break;
				}
				ckpts[nckpts++] = (struct ckpt){ c.lsn, cur, e.offset };
			}
		}
	}
	if (rc < 0) {
		free(ckpts);
		wal_scan_close(s);
		return rc;
	}
	if ((rc = wal_scan_found(s, &p->found)) != 0) {
		free(ckpts);
		wal_scan_close(s);
		return rc;
	}
	p->wal_id = wal_scan_id(s);
	p->id_other = wal_scan_id_conflict(s, &p->id_named);
	p->cls = wal_scan_class(s);
	for (size_t i = 0; i < p->ns; i++)
		p->s[i].info = *wal_scan_segment(s, i);
	for (size_t i = 0; i < wal_scan_nfindings(s); i++) {
		const struct wal_finding *f = wal_scan_finding(s, i);
		size_t k = seg_index(p, f->segment);
		if (k != (size_t)-1 && f->kind == WAL_F_MERGE_LEFTOVER)
			p->s[k].leftover = 1;
		if (k == (size_t)-1 || f->cls == WAL_CLASS_NOTICE)
			continue;
		if (f->cls == WAL_CLASS_TORN) {
			p->s[k].torn = 1;
			p->s[k].torn_off = f->offset;
			continue;
		}
		p->s[k].damaged = 1;
		if (!p->first_damage[0])
			snprintf(p->first_damage, sizeof p->first_damage, "segment '%s' offset %llu: %.250s",
			         f->segment, (unsigned long long)f->offset, f->message);
		if (f->kind == WAL_F_BAD_MAGIC || f->kind == WAL_F_BAD_VERSION || f->kind == WAL_F_FOREIGN_SEGMENT)
			p->s[k].unreadable = 1;
		/* Frames that validate but cannot be trusted are given up, as a
		 * loss: an undecodable POINTS payload, a checkpoint claiming LSNs at
		 * or past its own or naming a partition past them.  One naming a
		 * missing or damaged partition is given up below, unless the WAL
		 * can store every such partition again. */
		p->other_damage += f->kind != WAL_F_BAD_CHECKPOINT;
		if ((f->kind == WAL_F_BAD_PAYLOAD || f->kind == WAL_F_CHECKPOINT_BEYOND ||
		     f->kind == WAL_F_PARTITION_BEYOND || f->kind == WAL_F_BAD_SEAL) &&
		    (rc = drop_frame(p, k, f->offset)) != 0)
			break;
	}
	/* Without it, the replay stores its LSNs again from the WAL. */
	if (rc == 0 && (rc = plan_rebuilds(p)) == 0 && !p->rebuild_all)
		for (size_t i = 0; rc == 0 && i < wal_scan_nfindings(s); i++) {
			const struct wal_finding *f = wal_scan_finding(s, i);
			size_t k = seg_index(p, f->segment);
			if (k != (size_t)-1 && f->cls == WAL_CLASS_DAMAGE && f->kind == WAL_F_BAD_CHECKPOINT)
				rc = drop_frame(p, k, f->offset);
		}
	if (rc) {
		free(ckpts);
		wal_scan_close(s);
		return rc;
	}
	/* the last checkpoint that stays */
	for (size_t i = 0; i < nckpts; i++)
		if (!dropped(p, ckpts[i].seg, ckpts[i].off) && ckpts[i].through > p->ckpt) {
			p->ckpt = ckpts[i].through;
			snprintf(p->ckpt_seg, sizeof p->ckpt_seg, "%s", p->s[ckpts[i].seg].name);
		}
	free(ckpts);
	wal_scan_close(s);
	return 0;
}

/* 1 if the WAL, as the plan leaves it, holds every point of the LSNs from
 * first to last: an entry for each, and no POINTS entry given up. */
static int plan_holds(const wal_plan_t *p, uint64_t first, uint64_t last)
{
	uint64_t n = 0;

	for (size_t i = 0; i < p->ns; i++)
		for (size_t j = 0; !p->s[i].leftover && j < p->s[i].nf; j++) {
			const struct fr *f = &p->s[i].f[j];
			if (f->lsn < first || f->lsn > last || (f->type & 0x7f) == WAL_T_LOSS)
				continue;
			if ((f->type & 0x7f) == WAL_T_POINTS && dropped(p, i, f->off))
				return 0;
			n++;
		}
	return n == last - first + 1;
}

static int dropped(const wal_plan_t *p, size_t seg, uint64_t off)
{
	for (size_t i = 0; i < p->ndrop; i++)
		if (p->drop[i].seg == seg && p->drop[i].off == off)
			return 1;
	return 0;
}

static uint64_t count_after(const wal_plan_t *p, uint64_t lsn, uint64_t *entries, uint64_t *last)
{
	uint64_t first = 0;

	*entries = 0;
	*last = 0;
	for (size_t i = 0; i < p->ns; i++)
		for (size_t j = 0; j < p->s[i].nf; j++) {
			const struct fr *f = &p->s[i].f[j];
			if (f->lsn > lsn && (f->type & 0x7f) == WAL_T_POINTS) {
				first = first ? first : f->lsn;
				*last = f->lsn;
				(*entries)++;
			}
		}
	return first;
}

/* An action on partition data/<r->rel>, over its LSN range. */
static struct wal_action *part_action(wal_plan_t *p, enum wal_act_op op, const struct wal_part_ref *r, const char *why)
{
	struct wal_action *a = add_action(p, op, (size_t)-1, "%s", why);

	if (a) {
		snprintf(a->file, sizeof a->file, "data/%s", r->rel);
		a->lsn_first = r->first_lsn;
		a->lsn_last = r->last_lsn;
	}
	return a;
}

/* A partition above the checkpoint that is not what the WAL holds for its
 * LSNs (damaged, or another's), while the WAL holds every one of them: the
 * replay stores them again, so it goes to the quarantine first, never
 * written over and never left beside the new one. */
static int plan_set_aside(wal_plan_t *p)
{
	struct wal_orphan *o;
	size_t n;
	int rc = wal_part_orphans(p->dir, p->ckpt, wal_plan_held(p), &o, &n);

	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct wal_part_ref *r = &o[i].ref;
		if (o[i].redundant || !plan_holds(p, r->first_lsn, r->last_lsn))
			continue;
		char why[200];
		snprintf(
		    why, sizeof why,
		    "above checkpoint LSN %llu and not what the WAL holds for LSN %llu-%llu, which the replay stores "
		    "again",
		    (unsigned long long)p->ckpt, (unsigned long long)r->first_lsn, (unsigned long long)r->last_lsn);
		if (!part_action(p, WAL_ACT_SET_ASIDE, r, why))
			rc = WAL_ENOMEM;
	}
	free(o);
	return rc;
}

static int plan_rebuild_one(wal_plan_t *p, const struct wal_view_bad *b, int partial)
{
	unsigned long long first = b->ref.first_lsn, last = b->ref.last_lsn;
	char why[200];
	struct wal_action *a;

	if (!b->missing) {
		snprintf(why, sizeof why, "damaged or not what its name says; the WAL holds %s",
		         partial ? "only part of its LSNs" : "all of its LSNs");
		if (!part_action(p, WAL_ACT_SET_ASIDE, &b->ref, why))
			return WAL_ENOMEM;
	}
	snprintf(why, sizeof why,
	         partial ? "%s; store what the WAL still holds of LSN %llu-%llu"
	                 : "%s; store LSN %llu-%llu again from the WAL",
	         b->missing ? "missing" : "set aside", first, last);
	if (!(a = part_action(p, WAL_ACT_REBUILD, &b->ref, why)))
		return WAL_ENOMEM;
	a->partial = partial;
	return 0;
}

static int add_storage_loss(wal_plan_t *p, const struct wal_view_bad *b, uint64_t first, uint64_t last)
{
	const char *why = b->missing ? "missing" : "damaged or not what its name says";

	if (wal_grow((void **)&p->sl, &p->capsl, p->nsl + 1, sizeof *p->sl))
		return WAL_ENOMEM;
	p->sl[p->nsl++] =
	    (struct wal_storage_loss){ first, last, { b->ref.rel, strlen(b->ref.rel) }, { why, strlen(why) } };
	return 0;
}

/* The runs of partition B's LSNs that the WAL does not hold (frames come
 * in LSN order): B's points there are lost. */
static int plan_lost_runs(wal_plan_t *p, const struct wal_view_bad *b)
{
	uint64_t cur = b->ref.first_lsn, last = b->ref.last_lsn;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < p->ns; i++)
		for (size_t j = 0; rc == 0 && !p->s[i].leftover && j < p->s[i].nf; j++) {
			const struct fr *f = &p->s[i].f[j];
			if (f->lsn < cur || f->lsn > last || (f->type & 0x7f) == WAL_T_LOSS ||
			    ((f->type & 0x7f) == WAL_T_POINTS && dropped(p, i, f->off)))
				continue;
			if (f->lsn > cur)
				rc = add_storage_loss(p, b, cur, f->lsn - 1);
			cur = f->lsn + 1;
		}
	if (rc == 0 && cur <= last)
		rc = add_storage_loss(p, b, cur, last);
	return rc;
}

/* A partition up to the checkpoint that is damaged, missing or not what
 * its name says: set aside if there, then stored again from the WAL under
 * the name the checkpoint gives it; one whose LSNs the WAL no longer holds
 * all of, under the name of what it holds, the rest recorded as lost.  One
 * no checkpoint names, though one should: set aside (its points are not
 * storage's). */
static int plan_rebuild(wal_plan_t *p)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < p->nun; i++)
		if (!part_action(p, WAL_ACT_SET_ASIDE, &p->un[i].ref,
		                 "named by no checkpoint (the WAL holds every checkpoint from its last LSN on) and not what the WAL holds: "
		                 "its points are not storage's"))
			rc = WAL_ENOMEM;

	for (size_t i = 0; rc == 0 && i < p->nrb; i++)
		rc = plan_rebuild_one(p, &p->rb[i], 0);
	for (size_t i = 0; rc == 0 && i < p->ngone; i++)
		if ((rc = plan_rebuild_one(p, &p->gone[i], 1)) == 0)
			rc = plan_lost_runs(p, &p->gone[i]);
	return rc;
}

wal_held_t *wal_plan_held(const wal_plan_t *p)
{
	return p->o.mode == WAL_REPAIR_TAIL && p->held_ckpt == p->ckpt ? p->held : NULL;
}

/* Salvage: a WAL that ends below what a partition or a live consumer's
 * cursor shows (hwm.c) lost its end.  The LSNs between are given up as a
 * known loss: the writer the replay opens records them in a LOSS entry
 * (wal_opts.record_lost_end), so that no writer hands them out again. */
static int plan_lost_end(wal_plan_t *p)
{
	struct wal_hwm h;
	uint64_t end = p->found.t.last_lsn;
	int rc;

	if ((rc = wal_hwm_gather(p->dir, p->wal_id, &h)) != 0)
		return rc;
	/* the newest segment of this WAL the salvage keeps: sealed, it proves
	 * that a segment followed it */
	const struct wal_segment_info *newest = NULL;
	for (size_t i = p->ns; i-- > 0 && !newest;) {
		int removed = 0;
		for (size_t k = 0; k < p->na && !removed; k++)
			removed = p->a[k].op == WAL_ACT_REMOVE && p->a_seg[k] == i;
		if (!removed && p->s[i].info.header_ok && p->s[i].info.wal_id == p->wal_id)
			newest = &p->s[i].info;
	}
	wal_hwm_seal(p->waldir, newest, p->wal_id, newest && newest->sealed ? newest->last_lsn : end, &h);
	if (h.hard <= end)
		return 0;
	p->cls |= WAL_CLASS_DAMAGE;
	if (wal_grow((void **)&p->loss, &p->caploss, p->nloss + 1, sizeof *p->loss))
		return WAL_ENOMEM;
	p->loss[p->nloss++] = (struct loss){ end + 1, h.hard, 0 };
	for (size_t i = 0; i < p->na; i++)
		if (p->a[i].op == WAL_ACT_REPLAY)
			return 0; /* the replay's writer records it */
	struct wal_action *a = add_action(p, WAL_ACT_REPLAY, (size_t)-1,
	                                  "record LSN %llu-%llu, which %s shows and the WAL lost, as a known "
	                                  "loss, so that no writer hands them out again",
	                                  (unsigned long long)(end + 1), (unsigned long long)h.hard, h.hard_what);
	if (!a)
		return WAL_ENOMEM;
	a->lsn_first = end + 1;
	a->lsn_last = h.hard;
	return 0;
}

static int plan_replay(wal_plan_t *p)
{
	uint64_t n, last, first = count_after(p, p->ckpt, &n, &last);
	int rc;

	if (!p->o.replay)
		return 0;
	if ((rc = plan_rebuild(p)) != 0 || !n)
		return rc;
	if ((rc = plan_set_aside(p)) != 0)
		return rc;
	struct wal_action *a = add_action(p, WAL_ACT_REPLAY, (size_t)-1,
	                                  "replay %llu POINTS entries (LSN %llu-%llu) after checkpoint LSN %llu into "
	                                  "storage partitions, then write a checkpoint",
	                                  (unsigned long long)n, (unsigned long long)first, (unsigned long long)last,
	                                  (unsigned long long)p->ckpt);
	if (!a)
		return WAL_ENOMEM;
	a->lsn_first = first;
	a->lsn_last = last;
	a->entries = n;
	return 0;
}

static uint64_t frames_from(const struct sg *g, uint64_t off, uint64_t *first)
{
	uint64_t n = 0;

	*first = 0;
	for (size_t j = 0; j < g->nf; j++)
		if (g->f[j].off >= off) {
			*first = *first ? *first : g->f[j].lsn;
			n++;
		}
	return n;
}

static int plan_cut_torn(wal_plan_t *p)
{
	for (size_t i = 0; i < p->ns; i++) {
		struct sg *g = &p->s[i];
		if (!g->torn)
			continue;
		struct wal_action *a = add_action(p, WAL_ACT_CUT, i, "cut the torn tail: %llu bytes never acknowledged",
		                                  (unsigned long long)(g->info.bytes - g->torn_off));
		if (!a)
			return WAL_ENOMEM;
		a->offset = g->torn_off;
		a->length = g->info.bytes - g->torn_off;
		a->lsn_first = g->info.last_lsn + 1;
	}
	return 0;
}

/* The live consumers whose cursor is past LSN n, whose sinks have LSNs
 * after it that this repair takes out of the WAL (WHAT says how): refused,
 * naming them, or rewound to n. */
static int passed_consumers(wal_plan_t *p, uint64_t n, const char *what)
{
	struct wal_consumer_rewind *r;
	size_t nr;
	char names[300];
	int rc = wal_consumers_past(p->dir, n, NULL, NULL, &r, &nr, names, sizeof names);

	if (rc || !nr)
		return rc;
	if (p->o.rewind_consumers) {
		free(p->rewinds);
		p->rewinds = r;
		p->nrewinds = p->caprewinds = nr;
		return 0;
	}
	free(r);
	snprintf(p->refusal, sizeof p->refusal,
	         "consumers have handed on entries after LSN %llu, which %s:%s; pass --rewind-consumers to rewind "
	         "them to LSN %llu (they pass the LSNs taken out as a known loss, saying so, and hand on again what "
	         "follows), or 'walctl consumers drop' them",
	         (unsigned long long)n, what, names, (unsigned long long)n);
	return 0;
}

/* Salvage: the LSNs it gives up that held points (not its lost end, which
 * the WAL had lost already) may have been handed on by a consumer, whose
 * sink then holds their only copy: say so before taking them out. */
static int salvage_consumers(wal_plan_t *p)
{
	uint64_t first = 0;

	for (size_t i = 0; i < p->nloss; i++)
		if (!p->loss[i].no_points && (!first || p->loss[i].first < first))
			first = p->loss[i].first;
	return first ? passed_consumers(p, first - 1, "this salvage gives up (their sinks may hold the only copy)")
	             : 0;
}

static int plan_after(wal_plan_t *p)
{
	uint64_t n = p->o.after_lsn;

	if (n < p->ckpt) {
		snprintf(
		    p->refusal, sizeof p->refusal,
		    "LSN %llu is below the last checkpoint (LSN %llu): the entries after it are already in storage",
		    (unsigned long long)n, (unsigned long long)p->ckpt);
		return 0;
	}
	int cutting = 0;
	for (size_t i = 0; i < p->ns; i++) {
		struct sg *g = &p->s[i];
		if (cutting ||
		    (g->info.header_ok && g->info.first_lsn > n && g->nf && g->f[0].off == WAL_SEG_HEADER_SIZE)) {
			uint64_t first;
			uint64_t k = frames_from(g, 0, &first);
			struct wal_action *a =
			    add_action(p, WAL_ACT_REMOVE, i, "remove the segment: all of it is after LSN %llu",
			               (unsigned long long)n);
			if (!a)
				return WAL_ENOMEM;
			a->length = g->info.bytes;
			a->entries = k;
			a->lsn_first = first;
			a->lsn_last = g->info.last_lsn;
			cutting = 1;
			continue;
		}
		for (size_t j = 0; j < g->nf; j++) {
			if (g->f[j].lsn <= n)
				continue;
			uint64_t first;
			struct wal_action *a =
			    add_action(p, WAL_ACT_CUT, i, "cut every entry after LSN %llu", (unsigned long long)n);
			if (!a)
				return WAL_ENOMEM;
			a->offset = g->f[j].off;
			a->length = g->info.bytes - g->f[j].off;
			a->entries = frames_from(g, g->f[j].off, &first);
			a->lsn_first = first;
			a->lsn_last = g->info.last_lsn;
			cutting = 1;
			break;
		}
		if (!cutting && g->torn) {
			/* bytes past the last valid frame go too */
			struct wal_action *a = add_action(p, WAL_ACT_CUT, i, "cut the torn tail");
			if (!a)
				return WAL_ENOMEM;
			a->offset = g->torn_off;
			a->length = g->info.bytes - g->torn_off;
		}
	}
	/* Newest first: the WAL that a power cut can leave at any step is a
	 * prefix of the old one, never one with a hole in it. */
	for (size_t i = 0, j = p->na ? p->na - 1 : 0; i < j; i++, j--) {
		struct wal_action t = p->a[i];
		size_t ts = p->a_seg[i], ts2 = p->a_seg2[i];
		p->a[i] = p->a[j];
		p->a_seg[i] = p->a_seg[j];
		p->a_seg2[i] = p->a_seg2[j];
		p->a[j] = t;
		p->a_seg[j] = ts;
		p->a_seg2[j] = ts2;
	}
	return p->na ? passed_consumers(p, n, "truncating takes back") : 0;
}

static int add_piece(struct sg *g, int kind, uint64_t off, uint32_t len, uint8_t type, uint64_t lsn, uint64_t last)
{
	if (wal_grow((void **)&g->pc, &g->cappc, g->npc + 1, sizeof *g->pc))
		return WAL_ENOMEM;
	g->pc[g->npc++] = (struct piece){ kind, off, len, type, lsn, last };
	return 0;
}

static int add_loss(wal_plan_t *p, struct sg *g, uint64_t first, uint64_t last)
{
	if (wal_grow((void **)&p->loss, &p->caploss, p->nloss + 1, sizeof *p->loss))
		return WAL_ENOMEM;
	/* given up on purpose and holding no point: only checkpoints */
	uint64_t n = 0;
	for (size_t i = 0; i < p->ns; i++)
		for (size_t j = 0; j < p->s[i].nf; j++) {
			const struct fr *f = &p->s[i].f[j];
			n += f->lsn >= first && f->lsn <= last && (f->type & 0x7f) == WAL_T_CHECKPOINT &&
			     dropped(p, i, f->off);
		}
	p->loss[p->nloss++] = (struct loss){ first, last, n == last - first + 1 };
	return add_piece(g, P_LOSS, 0, 0, WAL_T_LOSS, first, last);
}

/* Salvage: keep every valid frame, put a LOSS frame where LSNs are
 * missing, rewrite the segments whose content changes. */
static int plan_salvage(wal_plan_t *p)
{
	uint64_t start = UINT64_MAX, lsn;
	int rc;

	for (size_t i = 0; i < p->ns; i++) {
		struct sg *g = &p->s[i];
		/* a segment's name says where it starts, unless its header says
		 * it belongs to another WAL (LSNs start at 1) */
		int foreign = g->info.header_ok && g->info.wal_id != p->wal_id;
		if (!foreign && seg_name_parse(g->name, &lsn) && lsn > 0 && lsn < start)
			start = lsn;
		if (g->info.header_ok && g->info.wal_id == p->wal_id && g->info.first_lsn < start)
			start = g->info.first_lsn;
		if (g->nf && g->f[0].lsn < start)
			start = g->f[0].lsn;
	}
	if (start == UINT64_MAX)
		return 0;
	/* What came before the first segment must be covered by a checkpoint. */
	uint64_t expect = start;
	if (p->ns && p->s[0].info.header_ok && p->s[0].info.prev_last_lsn > p->ckpt)
		expect = p->ckpt + 1;
	for (size_t i = 0; i < p->ns; i++) {
		struct sg *g = &p->s[i];
		for (size_t j = 0; j < g->nf; j++) {
			struct fr *f = &g->f[j];
			if (dropped(p, i, f->off))
				continue;
			if (f->lsn > expect && (rc = add_loss(p, g, expect, f->lsn - 1)) != 0)
				return rc;
			if ((rc = add_piece(g, P_COPY, f->off, f->len, f->type, f->lsn, f->last)) != 0)
				return rc;
			expect = f->last + 1;
		}
	}
	/* Which segments change. */
	uint64_t prev_last = 0;
	for (size_t i = 0; i < p->ns; i++) {
		struct sg *g = &p->s[i];
		int losses = 0;
		for (size_t k = 0; k < g->npc; k++)
			losses += g->pc[k].kind == P_LOSS;
		if (g->npc == 0) {
			if (!g->damaged && !g->torn && g->info.header_ok)
				continue; /* an empty, healthy segment (just created) */
			struct wal_action *a =
			    add_action(p, WAL_ACT_REMOVE, i, "remove the segment: %s",
			               g->info.header_ok && g->info.wal_id != p->wal_id ? "it belongs to another WAL"
			                                                                : "nothing in it can be read");
			if (!a)
				return WAL_ENOMEM;
			a->length = g->info.bytes;
			continue;
		}
		char want[32];
		seg_name(want, g->pc[0].lsn);
		int rename_it = strcmp(want, g->name) != 0;
		int newest = i + 1 == p->ns;
		if (!g->damaged && !losses && !g->drop_any && !rename_it && g->info.header_ok &&
		    (prev_last == 0 || g->info.prev_last_lsn == prev_last)) {
			if (g->torn && newest) {
				struct wal_action *a =
				    add_action(p, WAL_ACT_CUT, i, "cut the torn tail: %llu bytes never acknowledged",
				               (unsigned long long)(g->info.bytes - g->torn_off));
				if (!a)
					return WAL_ENOMEM;
				a->offset = g->torn_off;
				a->length = g->info.bytes - g->torn_off;
			}
			prev_last = g->pc[g->npc - 1].last;
			continue;
		}
		uint64_t lost = 0, kept = 0, bytes = WAL_SEG_HEADER_SIZE;
		for (size_t k = 0; k < g->npc; k++) {
			if (g->pc[k].kind == P_LOSS)
				lost += g->pc[k].last - g->pc[k].lsn + 1;
			else
				kept++, bytes += WAL_FRAME_HEADER_SIZE + g->pc[k].len;
		}
		struct wal_action *a =
		    add_action(p, WAL_ACT_REWRITE, i, "rewrite keeping %llu valid frames%s%s%s",
		               (unsigned long long)kept, losses ? ", recording lost LSNs in a LOSS frame" : "",
		               rename_it ? ", renamed " : "", rename_it ? want : "");
		if (!a)
			return WAL_ENOMEM;
		snprintf(a->newname, sizeof a->newname, "%s", want);
		a->length = g->info.bytes > bytes ? g->info.bytes - bytes : 0;
		a->entries = g->nf > kept ? g->nf - kept : 0;
		for (size_t k = 0; k < g->npc; k++)
			if (g->pc[k].kind == P_LOSS) {
				if (!a->lsn_first)
					a->lsn_first = g->pc[k].lsn;
				a->lsn_last = g->pc[k].last;
			}
		(void)lost;
		prev_last = g->pc[g->npc - 1].last;
	}
	/* A rewrite renamed over a segment that no action saves would destroy
	 * it: an empty one is removed first (its bytes go to the quarantine like
	 * any other), one that holds entries stops the plan. */
	for (size_t i = 0, n = p->na; i < n; i++) {
		struct wal_action *a = &p->a[i];
		if (a->op != WAL_ACT_REWRITE || !strcmp(a->newname, a->file))
			continue;
		size_t j = seg_index(p, a->newname), k;
		if (j == (size_t)-1)
			continue;
		for (k = 0; k < p->na && p->a_seg[k] != j; k++)
			;
		if (k < p->na)
			continue;
		if (p->s[j].npc) {
			snprintf(p->refusal, sizeof p->refusal,
			         "segment '%s' would be renamed '%s', which exists and holds entries; move one aside",
			         a->file, a->newname);
			return 0;
		}
		char from[sizeof a->file];
		snprintf(from, sizeof from, "%s", a->file);
		struct wal_action *r = add_action(
		    p, WAL_ACT_REMOVE, j, "remove the empty segment whose name the rewrite of '%s' takes", from);
		if (!r)
			return WAL_ENOMEM;
		r->length = p->s[j].info.bytes;
	}
	/* Removals first: a renamed segment may take a removed one's name. */
	for (size_t i = 0, k = 0; i < p->na; i++)
		if (p->a[i].op == WAL_ACT_REMOVE && i != k) {
			struct wal_action t = p->a[i];
			size_t ts = p->a_seg[i];
			memmove(p->a + k + 1, p->a + k, (i - k) * sizeof *p->a);
			memmove(p->a_seg + k + 1, p->a_seg + k, (i - k) * sizeof *p->a_seg);
			p->a[k] = t;
			p->a_seg[k] = ts;
			p->a_seg2[k] = ts;
			k++;
		} else if (p->a[i].op == WAL_ACT_REMOVE) {
			k++;
		}
	for (size_t i = 0; i < p->na; i++)
		p->a_seg2[i] = p->a_seg[i];
	return 0;
}

static int plan_compact(wal_plan_t *p)
{
	if (p->cls & WAL_CLASS_DAMAGE) {
		snprintf(p->refusal, sizeof p->refusal,
		         "the WAL has damage to durable data; run 'walctl verify' and 'walctl recover --mode salvage' "
		         "first");
		return 0;
	}
	/* Leftovers of an interrupted merge go first, and alone: every frame of
	 * them is in the merged segment, and removing them completes the merge. */
	size_t leftovers = 0;
	for (size_t i = 0; i < p->ns; i++) {
		if (!p->s[i].leftover)
			continue;
		struct wal_action *a = add_action(p, WAL_ACT_REMOVE, i,
		                                  "remove: left by an interrupted merge; every frame of it is in "
		                                  "the merged segment");
		if (!a)
			return WAL_ENOMEM;
		a->length = p->s[i].info.bytes;
		leftovers++;
	}
	if (leftovers)
		return 0;
	/* Remove a prefix of segments wholly at or below the checkpoint and
	 * the cursor of every live consumer, keeping the newest N whatever
	 * they hold.  A consumer past the lag limit holds nothing back: applied,
	 * the plan marks it lost (apply.c), as serve does. */
	size_t removable = p->ns > p->o.keep ? p->ns - p->o.keep : 0, removed = 0;
	uint64_t floor = UINT64_MAX, limit = p->o.max_consumer_lag ? p->o.max_consumer_lag : WAL_CONSUMER_LAG_DEFAULT;
	struct wal_consumer *cv;
	size_t nc;
	if (wal_consumers_list(p->dir, &cv, &nc) != 0)
		return wal_seterr(WAL_ECORRUPT, "%s: the consumers' cursors cannot be read", wal_errmsg());
	/* the segments as the survey read them */
	struct wal_seg_span *spans = calloc(p->ns ? p->ns : 1, sizeof *spans);
	if (!spans || (nc && !(p->lost_consumers = calloc(nc, sizeof *p->lost_consumers)))) {
		free(spans);
		free(cv);
		return wal_seterr(WAL_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < p->ns; i++)
		spans[i] = (struct wal_seg_span){ p->s[i].info.first_lsn, p->s[i].info.last_lsn, p->s[i].info.bytes };
	for (size_t k = 0; k < nc; k++) {
		if (cv[k].lost)
			continue;
		uint64_t lag = wal_seg_lag(spans, p->ns, cv[k].lsn);
		if (lag > limit) {
			struct wal_consumer_lag *l = &p->lost_consumers[p->nlost_consumers++];
			snprintf(l->name, sizeof l->name, "%s", cv[k].name);
			l->cursor = cv[k].lsn;
			l->lag_bytes = lag;
			l->limit = limit;
			continue;
		}
		if (cv[k].lsn < floor)
			floor = cv[k].lsn;
	}
	free(spans);
	free(cv);
	for (size_t i = 0; i < removable; i++) {
		struct sg *g = &p->s[i];
		if (!g->nf || g->info.last_lsn > p->ckpt || !g->info.sealed || g->info.last_lsn > floor)
			break;
		struct wal_action *a = add_action(
		    p, WAL_ACT_REMOVE, i, "remove: every entry (LSN %llu-%llu) is at or below the checkpoint LSN %llu",
		    (unsigned long long)g->f[0].lsn, (unsigned long long)g->info.last_lsn, (unsigned long long)p->ckpt);
		if (!a)
			return WAL_ENOMEM;
		a->length = g->info.bytes;
		a->entries = g->nf;
		a->lsn_first = g->f[0].lsn;
		a->lsn_last = g->info.last_lsn;
		removed++;
	}
	if (p->o.merge) {
		uint64_t max = p->o.merge_max ? p->o.merge_max : (128u << 20);
		for (size_t i = removed; i + 1 < p->ns;) {
			size_t j = i;
			uint64_t total = p->s[i].info.bytes;
			while (j + 2 < p->ns && p->s[j].info.sealed && p->s[j + 1].info.sealed &&
			       total + p->s[j + 1].info.bytes - WAL_SEG_HEADER_SIZE <= max) {
				j++;
				total += p->s[j].info.bytes - WAL_SEG_HEADER_SIZE;
			}
			if (j > i && p->s[i].info.sealed) {
				struct wal_action *a =
				    add_action(p, WAL_ACT_MERGE, i, "merge %zu sealed segments (%s to %s) into one",
				               j - i + 1, p->s[i].name, p->s[j].name);
				if (!a)
					return WAL_ENOMEM;
				snprintf(a->newname, sizeof a->newname, "%s", p->s[i].name);
				p->a_seg2[p->na - 1] = j;
				a->lsn_first = p->s[i].info.first_lsn;
				a->lsn_last = p->s[j].info.last_lsn;
				a->length = (uint64_t)(j - i) * WAL_SEG_HEADER_SIZE;
			}
			i = j + 1;
		}
	}
	if (p->o.purge_ns >= 0) {
		char q[PATH_MAX + 16];
		snprintf(q, sizeof q, "%s/quarantine", p->dir);
		DIR *d = opendir(q);
		struct dirent *de;
		int64_t now = wal_now_ns();
		while (d && (de = readdir(d))) {
			char path[PATH_MAX + 300];
			struct stat st;
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "%s/%s", q, de->d_name);
			if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
				continue;
			int64_t age = now - ((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
			if (age < p->o.purge_ns)
				continue;
			struct wal_action *a =
			    add_action(p, WAL_ACT_PURGE, (size_t)-1, "delete quarantine/%s (%lld s old)", de->d_name,
			               (long long)(age / 1000000000));
			if (!a) {
				closedir(d);
				return WAL_ENOMEM;
			}
			snprintf(a->file, sizeof a->file, "%.100s", de->d_name);
		}
		if (d)
			closedir(d);
	}
	return 0;
}

int wal_plan_make(wal_plan_t **out, const char *datadir, const struct wal_repair_opts *o)
{
	wal_plan_t *p = calloc(1, sizeof *p);
	struct stat st;
	int rc = 0;

	*out = NULL;
	if (!p)
		return wal_seterr(WAL_ENOMEM, "out of memory");
	p->lockfd = -1;
	p->o = *o;
	if (!p->o.level)
		p->o.level = 1;
	snprintf(p->dir, sizeof p->dir, "%s", datadir);
	snprintf(p->waldir, sizeof p->waldir, "%s/wal", datadir);
	if (stat(p->waldir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		wal_plan_free(p);
		return wal_seterr(WAL_ENOENT, "'%s' is not a data directory (no wal/ in it)", datadir);
	}
	if (o->apply && (rc = fs_lock(p->dir, &p->lockfd)) != 0) {
		wal_plan_free(p);
		return rc;
	}
	if ((rc = survey(p)) != 0) {
		wal_plan_free(p);
		return rc;
	}
	switch (o->mode) {
	case WAL_REPAIR_TORN_TAIL:
		if (p->cls & WAL_CLASS_DAMAGE)
			snprintf(p->refusal, sizeof p->refusal,
			         "the WAL has damage to durable data, not only a torn tail; see 'walctl verify -d "
			         "%.150s' and "
			         "'walctl recover --mode salvage -d %.150s'",
			         p->dir, p->dir);
		else
			rc = plan_cut_torn(p);
		break;
	case WAL_REPAIR_AFTER: rc = plan_after(p); break;
	case WAL_REPAIR_TAIL:
		if ((p->cls & WAL_CLASS_DAMAGE) && (p->other_damage || !p->rebuild_all)) {
			snprintf(p->refusal, sizeof p->refusal,
			         "mid-log damage to durable data (%s): --mode tail only cuts a torn tail; "
			         "'walctl recover --mode salvage -d %.200s' keeps every valid entry on both sides",
			         p->first_damage, p->dir);
			break;
		}
		if ((rc = plan_cut_torn(p)) == 0)
			rc = plan_replay(p);
		break;
	case WAL_REPAIR_SALVAGE:
		if (p->id_other) {
			snprintf(p->refusal, sizeof p->refusal,
			         "the evidence of which WAL this is conflicts: storage names WAL %016llx, %s names WAL "
			         "%016llx; a salvage would give up the other's segments: move the segments or the "
			         "partitions of one of them out of '%.200s' first",
			         (unsigned long long)p->id_named,
			         p->wal_id == p->id_named ? "another partition" : "every segment here",
			         (unsigned long long)p->id_other, p->dir);
			break;
		}
		if ((rc = plan_salvage(p)) == 0)
			rc = plan_replay(p);
		if (rc == 0)
			rc = salvage_consumers(p);
		if (rc == 0)
			rc = plan_lost_end(p);
		break;
	case WAL_REPAIR_COMPACT: rc = plan_compact(p); break;
	default: rc = wal_seterr(WAL_EINVAL, "unknown repair mode");
	}
	if (rc) {
		wal_plan_free(p);
		return rc;
	}
	*out = p;
	return 0;
}
