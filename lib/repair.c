/*
 * repair.c - plans and applies repairs (truncate, recover, compact) and
 * undoes them.
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
#include <zlib.h>

#include "internal.h"

enum { P_COPY, P_LOSS };

struct piece {
	int kind;
	uint64_t off; /* P_COPY: frame offset in the original segment */
	uint32_t len; /* P_COPY: payload length */
	uint8_t type;
	uint64_t lsn, last;
};

struct fr {
	uint64_t off, lsn, last;
	uint32_t len;
	uint8_t type;
};

struct sg {
	char name[64];
	struct wal_segment_info info;
	struct fr *f;
	size_t nf, capf;
	int damaged, torn, unreadable, drop_any;
	int leftover; /* of an interrupted merge: every frame is in the merged segment */
	uint64_t torn_off;
	/* the new layout */
	struct piece *pc;
	size_t npc, cappc;
};

struct loss {
	uint64_t first, last;
};

struct wal_plan {
	char dir[PATH_MAX], waldir[PATH_MAX + 8];
	struct wal_repair_opts o;
	int lockfd;
	uint64_t wal_id, ckpt;
	char ckpt_seg[64]; /* the segment holding the CHECKPOINT for ckpt */
	int cls;
	char refusal[768];
	char first_damage[400]; /* where and what, of the first damage found */
	struct sg *s;
	size_t ns;
	struct wal_action *a;
	size_t na, capa;
	size_t *a_seg;  /* segment index of each action (or -1) */
	size_t *a_seg2; /* merge: last segment index */
	struct loss *loss;
	size_t nloss, caploss;
	struct {
		uint64_t seg, off;
	} * drop; /* bad payloads a salvage drops */
	size_t ndrop, capdrop;
};

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
void wal_plan_loss(const wal_plan_t *p, size_t i, uint64_t *first, uint64_t *last)
{
	*first = p->loss[i].first;
	*last = p->loss[i].last;
}

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
	free(p->loss);
	free(p->drop);
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
		                    .decode_unstored =
		                        p->o.mode == WAL_REPAIR_TAIL || p->o.mode == WAL_REPAIR_SALVAGE };
	wal_scan_t *s;
	struct wal_entry e;
	size_t cur = 0;
	int rc;

	if ((rc = wal_scan_open(&s, paths, 1, &so)) != 0)
		return rc;
	p->ns = wal_scan_nsegments(s);
	p->s = calloc(p->ns ? p->ns : 1, sizeof *p->s);
	if (!p->s) {
		wal_scan_close(s);
		return wal_seterr(WAL_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < p->ns; i++)
		snprintf(p->s[i].name, sizeof p->s[i].name, "%s", wal_scan_segment(s, i)->name);
	while ((rc = wal_scan_next(s, &e)) == 1) {
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
	p->wal_id = wal_scan_id(s);
	p->cls = wal_scan_class(s);
	for (size_t i = 0; i < p->ns; i++)
		p->s[i].info = *wal_scan_segment(s, i);
	for (size_t i = 0; i < wal_scan_nfindings(s); i++) {
		const struct wal_finding *f = wal_scan_finding(s, i);
		size_t k = seg_index(p, f->segment);
		if (k != (size_t)-1 && !strcmp(f->kind, "merge-leftover"))
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
		if (!strcmp(f->kind, "bad-magic") || !strcmp(f->kind, "bad-version") ||
		    !strcmp(f->kind, "foreign-segment"))
			p->s[k].unreadable = 1;
		/* frames that validate but cannot be trusted: given up, as a loss.
		 * A checkpoint naming a missing or damaged partition is one: without
		 * it, the replay stores its LSNs again from the WAL. */
		if (!strcmp(f->kind, "bad-payload") || !strcmp(f->kind, "checkpoint-beyond") ||
		    !strcmp(f->kind, "bad-checkpoint")) {
			if (dropped(p, k, f->offset))
				continue; /* a checkpoint naming several bad partitions */
			if (wal_grow((void **)&p->drop, &p->capdrop, p->ndrop + 1, sizeof *p->drop)) {
				free(ckpts);
				wal_scan_close(s);
				return WAL_ENOMEM;
			}
			p->drop[p->ndrop].seg = k;
			p->drop[p->ndrop++].off = f->offset;
			p->s[k].drop_any = 1;
		}
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

static int plan_replay(wal_plan_t *p)
{
	uint64_t n, last, first = count_after(p, p->ckpt, &n, &last);

	if (!p->o.replay || !n)
		return 0;
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
	return 0;
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
	p->loss[p->nloss++] = (struct loss){ first, last };
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
		char from[160];
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
	/* Remove a prefix of segments wholly at or below the checkpoint,
	 * keeping the newest N whatever they hold. */
	size_t removable = p->ns > p->o.keep ? p->ns - p->o.keep : 0, removed = 0;
	for (size_t i = 0; i < removable; i++) {
		struct sg *g = &p->s[i];
		if (!g->nf || g->info.last_lsn > p->ckpt || !g->info.sealed)
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
		if (p->cls & WAL_CLASS_DAMAGE) {
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
		if ((rc = plan_salvage(p)) == 0)
			rc = plan_replay(p);
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

/* ---------------------------------------------------------------- apply */

struct text {
	char *s;
	size_t n, cap;
};

static void tprintf(struct text *t, const char *fmt, ...) WAL_PRINTF(2, 3);
static void tprintf(struct text *t, const char *fmt, ...)
{
	va_list ap;

	for (;;) {
		va_start(ap, fmt);
		int k = vsnprintf(t->s ? t->s + t->n : NULL, t->s ? t->cap - t->n : 0, fmt, ap);
		va_end(ap);
		if (k < 0)
			return;
		if (t->s && t->n + (size_t)k < t->cap) {
			t->n += (size_t)k;
			return;
		}
		size_t c = t->cap ? t->cap * 2 : 4096;
		while (c < t->n + (size_t)k + 1)
			c *= 2;
		char *q = realloc(t->s, c);
		if (!q)
			return;
		t->s = q;
		t->cap = c;
	}
}

static int read_whole(const char *path, unsigned char **buf, size_t *len)
{
	struct stat st;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*buf = NULL;
	*len = 0;
	if (fd < 0 || fstat(fd, &st) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return wal_seterr(wal_errno_code(e), "cannot open '%s': %s", path, strerror(e));
	}
	*buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!*buf || fs_read_all(fd, *buf, (size_t)st.st_size, 0, &got) != 0 || got != (size_t)st.st_size) {
		close(fd);
		free(*buf);
		*buf = NULL;
		return wal_seterr(WAL_EIO, "cannot read '%s'", path);
	}
	close(fd);
	*len = got;
	return 0;
}

static void sha_of(const void *p, size_t n, char out[65])
{
	struct wal_sha256 c;

	wal_sha256_init(&c);
	wal_sha256_update(&c, p, n);
	wal_sha256_hex(&c, out);
}

static int sha_file(const char *path, uint64_t *size, char out[65])
{
	unsigned char *b;
	size_t n;
	int rc = read_whole(path, &b, &n);

	if (rc)
		return rc;
	sha_of(b, n, out);
	*size = n;
	free(b);
	return 0;
}

/* Save bytes of a file as evidence, then describe them in the manifest. */
static int save(const char *qdir, const char *as, const unsigned char *b, size_t n, char sha[65])
{
	sha_of(b, n, sha);
	return fs_write_atomic(qdir, as, b, n);
}

static int read_quarantined(const char *qdir, const char *name, unsigned char **b, size_t *n)
{
	char path[PATH_MAX + 300];

	snprintf(path, sizeof path, "%s/%s", qdir, name);
	return read_whole(path, b, n);
}

static int tput(struct text *t, const void *data, size_t n)
{
	if (t->n + n > t->cap) {
		size_t c = t->cap ? t->cap * 2 : 65536;
		while (c < t->n + n)
			c *= 2;
		char *q = realloc(t->s, c);
		if (!q)
			return wal_seterr(WAL_ENOMEM, "out of memory");
		t->s = q;
		t->cap = c;
	}
	memcpy(t->s + t->n, data, n);
	t->n += n;
	return 0;
}

/* Build the rewritten segment G in memory. */
static int build_segment(wal_plan_t *p, struct sg *g, const unsigned char *old, size_t oldlen, uint64_t prev_last,
                         uint64_t seq, unsigned char **out, size_t *outlen)
{
	struct text t = { 0 };
	uint32_t seed = wal_seed(p->wal_id);
	struct seg_header h = {
		.version = WAL_FORMAT_VERSION,
		.csum_type = WAL_CSUM_CRC32,
		.wal_id = p->wal_id,
		.seq = seq,
		.first_lsn = g->pc[0].lsn,
		.prev_last_lsn = prev_last,
		.created_ns = g->info.header_ok ? g->info.created_ns : wal_now_ns(),
		.max_entry = WAL_DEFAULT_MAX_ENTRY,
	};
	unsigned char hb[WAL_SEG_HEADER_SIZE], fh[WAL_FRAME_HEADER_SIZE], pl[256];
	uint64_t entries = 0;

	seg_header_encode(hb, &h);
	if (tput(&t, hb, sizeof hb))
		return WAL_ENOMEM;
	for (size_t k = 0; k < g->npc; k++) {
		struct piece *c = &g->pc[k];
		const unsigned char *payload;
		size_t plen;
		struct frame_header f;
		if (c->kind == P_COPY && (c->type & 0x7f) != WAL_T_SEAL) {
			/* a valid frame, byte for byte */
			if (c->off + WAL_FRAME_HEADER_SIZE + c->len > oldlen ||
			    tput(&t, old + c->off, WAL_FRAME_HEADER_SIZE + c->len)) {
				free(t.s);
				return wal_seterr(WAL_EIO, "segment '%s' changed while being rewritten", g->name);
			}
			entries++;
			continue;
		}
		if (c->kind == P_LOSS) {
			char why[96];
			snprintf(why, sizeof why, "lost to damage; given up by %s",
			         p->o.command ? p->o.command : "a repair");
			struct wal_loss l = { c->lsn, c->last, { why, strlen(why) } };
			plen = wal_loss_encode(pl, sizeof pl, &l);
			payload = pl;
			f = (struct frame_header){ .len = (uint32_t)plen,
				                   .type = WAL_T_LOSS,
				                   .lsn = c->lsn,
				                   .time_ns = wal_now_ns(),
				                   .watermark = c->lsn - 1 };
		} else {
			/* a SEAL re-encoded to describe the rewritten segment */
			struct wal_seal se = { entries, g->pc[0].lsn, c->lsn - 1, t.n };
			frame_header_decode(old + c->off, seed, &f);
			plen = wal_seal_encode(pl, sizeof pl, &se);
			payload = pl;
			f.len = (uint32_t)plen;
		}
		f.payload_crc = (uint32_t)crc32_z(seed, payload, plen);
		frame_header_encode(fh, &f, seed);
		if (tput(&t, fh, sizeof fh) || tput(&t, payload, plen)) {
			free(t.s);
			return WAL_ENOMEM;
		}
		entries++;
	}
	*out = (unsigned char *)t.s;
	*outlen = t.n;
	return 0;
}

static int replay(wal_plan_t *p, const char *qdir, struct text *after)
{
	const char *paths[1] = { p->dir };
	struct wal_opts wo = { 0 };
	struct text rp = { 0 };
	wal_flush_t *fl = NULL;
	wal_scan_t *s = NULL;
	wal_t *w = NULL;
	struct wal_entry e;
	uint64_t through = 0;
	int rc;

	if ((rc = wal_open(&w, p->dir, &wo)) != 0)
		return rc;
	/* Partitions above the checkpoint were left by an interrupted flush; the
	 * ones whose points are still in the WAL are about to be stored again.
	 * The others stay: they are the only copy of their points. */
	unsigned orphans, kept;
	if ((rc = wal_part_drop_orphans(p->dir, p->ckpt, &orphans, &kept)) != 0)
		goto out;
	/* Record what undo needs before anything is created. */
	tprintf(&rp, "after=%llu\n", (unsigned long long)p->ckpt);
	{
		DIR *d = opendir(p->waldir);
		struct dirent *de;
		uint64_t l;
		while (d && (de = readdir(d))) {
			char path[PATH_MAX + 300];
			struct stat st;
			snprintf(path, sizeof path, "%s/%s", p->waldir, de->d_name);
			if (seg_name_parse(de->d_name, &l) && stat(path, &st) == 0)
				tprintf(&rp, "segment=%s size=%lld\n", de->d_name, (long long)st.st_size);
		}
		if (d)
			closedir(d);
	}
	if ((rc = fs_write_atomic(qdir, "REPLAY", rp.s, rp.n)) != 0)
		goto out;
	if ((rc = wal_scan_open(&s, paths, 1, NULL)) != 0 ||
	    (rc = wal_flush_new(&fl, p->dir, p->wal_id, p->o.level)) != 0)
		goto out;
	while ((rc = wal_scan_next(s, &e)) == 1) {
		through = e.lsn;
		if (e.lsn > p->ckpt && (e.type & 0x7f) == WAL_T_POINTS &&
		    (rc = wal_flush_add(fl, e.lsn, e.payload, e.len)) != 0)
			goto out;
	}
	if (rc < 0 || (rc = wal_flush_checkpoint(fl, w, through, NULL)) != 0)
		goto out;
	for (size_t i = 0; i < wal_flush_npartitions(fl); i++)
		tprintf(after, "file=data/%s created\n", wal_flush_partition(fl, i));
out:
	wal_flush_free(fl);
	free(rp.s);
	wal_scan_close(s);
	int crc = wal_close(w);
	return rc ? rc : crc;
}

static int unlink_synced(const char *dir, const char *name)
{
	char path[PATH_MAX + 300];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (unlink(path) != 0 && errno != ENOENT)
		return wal_seterr(wal_errno_code(errno), "cannot remove '%s': %s", path, strerror(errno));
	return fs_fsync_dir(dir);
}

static int rm_quarantine(const char *dir, const char *stamp)
{
	char q[PATH_MAX + 16], path[PATH_MAX + 300];
	DIR *d;
	struct dirent *de;

	snprintf(q, sizeof q, "%s/quarantine", dir);
	snprintf(path, sizeof path, "%s/%s", q, stamp);
	if (!(d = opendir(path)))
		return 0;
	while ((de = readdir(d))) {
		char f[PATH_MAX + 600];
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(f, sizeof f, "%s/%s", path, de->d_name);
		unlink(f);
	}
	closedir(d);
	if (rmdir(path) != 0)
		return wal_seterr(wal_errno_code(errno), "cannot remove '%s': %s", path, strerror(errno));
	return fs_fsync_dir(q);
}

/* 1 if a rewrite after action I still has NAME as its file. */
static int pending_name(const wal_plan_t *p, size_t i, const char *name)
{
	for (size_t j = i + 1; j < p->na; j++)
		if (p->a[j].op == WAL_ACT_REWRITE && !strcmp(p->a[j].file, name))
			return 1;
	return 0;
}

/* 1 if NAME is what some rewrite renames a segment to. */
static int target_name(const wal_plan_t *p, const char *name)
{
	for (size_t j = 0; j < p->na; j++)
		if (p->a[j].op == WAL_ACT_REWRITE && !strcmp(p->a[j].newname, name))
			return 1;
	return 0;
}

int wal_plan_apply(wal_plan_t *p, char *stamp, size_t cap)
{
	char qdir[PATH_MAX + 100], path[PATH_MAX + 300], sha[65], saved[160];
	struct text mf = { 0 }, after = { 0 };
	unsigned char *b = NULL;
	size_t n;
	int rc = 0, do_replay = 0;

	stamp[0] = 0;
	if (p->refusal[0])
		return wal_seterr(WAL_ECORRUPT, "%s", p->refusal);
	if (!p->na)
		return 0;
	wal_q_stamp(stamp, cap);
	snprintf(qdir, sizeof qdir, "%s/quarantine/%s", p->dir, stamp);
	if ((rc = fs_mkdir_p(qdir)) != 0)
		return rc;
	tprintf(&mf, "walctl-quarantine 1\ncommand: %s\nwal_id: %016llx\n", p->o.command ? p->o.command : "repair",
	        (unsigned long long)p->wal_id);

	/* 1. Evidence first. */
	for (size_t i = 0; i < p->na && rc == 0; i++) {
		struct wal_action *a = &p->a[i];
		size_t k = p->a_seg[i];
		char lsns[64] = "", reason[sizeof a->detail * 4 + 16];
		wal_q_put(reason, sizeof reason, "reason", a->detail);
		if (a->lsn_first)
			snprintf(lsns, sizeof lsns, " lsn=%llu-%llu", (unsigned long long)a->lsn_first,
			         (unsigned long long)a->lsn_last);
		switch (a->op) {
		case WAL_ACT_CUT:
			snprintf(path, sizeof path, "%s/%s", p->waldir, a->file);
			if ((rc = read_whole(path, &b, &n)) != 0)
				break;
			if (a->offset > n) {
				rc = wal_seterr(WAL_EIO, "segment '%s' shrank since the plan was made", a->file);
				break;
			}
			sha_of(b, n, sha);
			tprintf(&mf, "file=wal/%s op=cut before_size=%zu before_sha256=%s", a->file, n, sha);
			snprintf(saved, sizeof saved, "%s@%llu", a->file, (unsigned long long)a->offset);
			if ((rc = save(qdir, saved, b + a->offset, n - a->offset, sha)) != 0)
				break;
			tprintf(&mf, " offset=%llu length=%zu saved=%s saved_sha256=%s%s%s\n",
			        (unsigned long long)a->offset, n - (size_t)a->offset, saved, sha, lsns, reason);
			break;
		case WAL_ACT_REMOVE:
		case WAL_ACT_REWRITE:
		case WAL_ACT_MERGE:
			for (size_t j = k; j <= p->a_seg2[i]; j++) {
				snprintf(path, sizeof path, "%s/%s", p->waldir, p->s[j].name);
				if ((rc = read_whole(path, &b, &n)) != 0)
					break;
				if ((rc = save(qdir, p->s[j].name, b, n, sha)) != 0)
					break;
				tprintf(
				    &mf,
				    "file=wal/%s op=%s before_size=%zu before_sha256=%s offset=0 length=%zu saved=%s "
				    "saved_sha256=%s%s%s%s%s\n",
				    p->s[j].name,
				    a->op == WAL_ACT_REMOVE    ? "remove"
				    : a->op == WAL_ACT_REWRITE ? "rewrite"
				                               : "merge",
				    n, sha, n, p->s[j].name, sha, a->newname[0] ? " new=" : "",
				    a->newname[0] ? a->newname : "", lsns, reason);
				free(b);
				b = NULL;
			}
			break;
		case WAL_ACT_PURGE: tprintf(&mf, "file=quarantine/%s op=purge%s\n", a->file, reason); break;
		case WAL_ACT_REPLAY:
			tprintf(&mf, "op=replay%s%s\n", lsns, reason);
			do_replay = 1;
			break;
		}
		free(b);
		b = NULL;
	}
	if (rc == 0)
		rc = fs_write_atomic(qdir, "MANIFEST", mf.s, mf.n);

	/* The CHECKPOINT this plan trusts was read back from a file: it may be
	 * only in the page cache of a writer that died before its sync.  Sync
	 * it before removing anything it covers. */
	if (rc == 0 && p->ckpt_seg[0]) {
		snprintf(path, sizeof path, "%s/%s", p->waldir, p->ckpt_seg);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) != 0)
			rc = wal_seterr(WAL_ESYNC, "cannot sync the checkpoint in '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
	}

	/* 2. Removals, rewrites, merges, cuts, purges, in plan order. */
	char(*parked)[32] = calloc(p->na ? p->na : 1, sizeof *parked);
	if (!parked)
		rc = wal_seterr(WAL_ENOMEM, "out of memory");
	uint64_t prev_last = 0, seq = 0;
	for (size_t i = 0; i < p->na && rc == 0; i++) {
		struct wal_action *a = &p->a[i];
		size_t k = p->a_seg[i];
		switch (a->op) {
		case WAL_ACT_REMOVE:
			rc = unlink_synced(p->waldir, a->file);
			tprintf(&after, "file=wal/%s absent\n", a->file);
			break;
		case WAL_ACT_REWRITE: {
			struct sg *g = &p->s[k];
			/* the previous segment of the new layout */
			prev_last = 0;
			seq = 0;
			for (size_t j = k; j-- > 0;)
				if (p->s[j].npc) {
					prev_last = p->s[j].pc[p->s[j].npc - 1].last;
					seq = p->s[j].info.seq;
					break;
				}
			if (g->info.header_ok)
				seq = g->info.seq;
			else
				seq++;
			snprintf(path, sizeof path, "%s/%s", p->waldir, a->file);
			unsigned char *nb = NULL;
			size_t nn = 0;
			if ((rc = read_quarantined(qdir, a->file, &b, &n)) != 0)
				break;
			if ((rc = build_segment(p, g, b, n, prev_last, seq, &nb, &nn)) != 0)
				break;
			/* Its new name may still be a segment this repair has yet to
			 * rewrite (names were swapped): then it waits under a free name
			 * that readers still take for a segment (they go by headers). */
			const char *to = a->newname;
			char park[32];
			if (strcmp(to, a->file) != 0 && pending_name(p, i, to)) {
				for (uint64_t l = g->pc[0].lsn + 1;; l++) {
					char pp[PATH_MAX + 40];
					seg_name(park, l);
					snprintf(pp, sizeof pp, "%s/%s", p->waldir, park);
					if (access(pp, F_OK) != 0 && !target_name(p, park))
						break;
				}
				to = park;
				snprintf(parked[i], sizeof parked[i], "%s", park);
			}
			rc = fs_write_atomic(p->waldir, to, nb, nn);
			free(nb);
			if (rc == 0 && strcmp(to, a->file) != 0) {
				rc = unlink_synced(p->waldir, a->file);
				tprintf(&after, "file=wal/%s absent\n", a->file);
			}
			break;
		}
		case WAL_ACT_MERGE: {
			struct text m = { 0 };
			for (size_t j = k; j <= p->a_seg2[i] && rc == 0; j++) {
				if ((rc = read_quarantined(qdir, p->s[j].name, &b, &n)) != 0)
					break;
				if (j == k)
					tprintf(&m, "%s", "");
				size_t from = j == k ? 0 : WAL_SEG_HEADER_SIZE;
				while (m.n + (n - from) + 1 > m.cap) {
					size_t c2 = m.cap ? m.cap * 2 : n * 2;
					char *q = realloc(m.s, c2);
					if (!q) {
						rc = wal_seterr(WAL_ENOMEM, "out of memory merging");
						break;
					}
					m.s = q;
					m.cap = c2;
				}
				if (rc)
					break;
				memcpy(m.s + m.n, b + from, n - from);
				m.n += n - from;
				free(b);
				b = NULL;
			}
			if (rc == 0)
				rc = fs_write_atomic(p->waldir, a->newname, m.s, m.n);
			for (size_t j = k + 1; j <= p->a_seg2[i] && rc == 0; j++) {
				rc = unlink_synced(p->waldir, p->s[j].name);
				tprintf(&after, "file=wal/%s absent\n", p->s[j].name);
			}
			free(m.s);
			break;
		}
		case WAL_ACT_CUT:
			snprintf(path, sizeof path, "%s/%s", p->waldir, a->file);
			rc = fs_truncate_synced(path, a->offset);
			break;
		case WAL_ACT_PURGE: rc = rm_quarantine(p->dir, a->file); break;
		case WAL_ACT_REPLAY: break;
		}
		free(b);
		b = NULL;
	}
	/* The rewrites that waited take their names, now free. */
	for (size_t i = 0; i < p->na && rc == 0; i++) {
		char from[PATH_MAX + 100], to[PATH_MAX + 100];
		if (!parked[i][0])
			continue;
		snprintf(from, sizeof from, "%s/%s", p->waldir, parked[i]);
		snprintf(to, sizeof to, "%s/%s", p->waldir, p->a[i].newname);
		if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) != 0)
			rc = wal_seterr(wal_errno_code(errno), "cannot rename '%s' to '%s': %s", from, to,
			                strerror(errno));
		else
			rc = fs_fsync_dir(p->waldir);
		tprintf(&after, "file=wal/%s absent\n", parked[i]);
	}
	free(parked);

	/* 3. Replay through the ordinary writer (it takes the lock itself). */
	if (rc == 0 && do_replay) {
		close(p->lockfd);
		p->lockfd = -1;
		rc = replay(p, qdir, &after);
	}
	/* 4. What an undo will check: the files the repair wrote, in full;
	 * every other segment by its size, and by the digest of what a replay
	 * appended to it. */
	if (rc == 0) {
		DIR *d = opendir(p->waldir);
		struct dirent *de;
		uint64_t l;
		while (rc == 0 && d && (de = readdir(d))) {
			struct stat st;
			if (!seg_name_parse(de->d_name, &l))
				continue;
			snprintf(path, sizeof path, "%s/%s", p->waldir, de->d_name);
			if (stat(path, &st) != 0)
				continue;
			int written = 0;
			for (size_t i = 0; i < p->na; i++)
				written |= (p->a[i].op == WAL_ACT_CUT && !strcmp(p->a[i].file, de->d_name)) ||
				           ((p->a[i].op == WAL_ACT_REWRITE || p->a[i].op == WAL_ACT_MERGE) &&
				            !strcmp(p->a[i].newname, de->d_name));
			uint64_t before = UINT64_MAX;
			for (size_t i = 0; i < p->ns; i++)
				if (!strcmp(p->s[i].name, de->d_name))
					before = p->s[i].info.bytes;
			if (written || before == UINT64_MAX || before > (uint64_t)st.st_size) {
				uint64_t size;
				if ((rc = sha_file(path, &size, sha)) == 0)
					tprintf(&after, "file=wal/%s size=%llu sha256=%s\n", de->d_name,
					        (unsigned long long)size, sha);
			} else if ((uint64_t)st.st_size > before) {
				/* a replay appended to it */
				int fd = open(path, O_RDONLY | O_CLOEXEC);
				size_t n2 = (size_t)((uint64_t)st.st_size - before), got = 0;
				unsigned char *t = malloc(n2);
				if (fd < 0 || !t || fs_read_all(fd, t, n2, before, &got) != 0 || got != n2)
					rc = wal_seterr(WAL_EIO, "cannot read '%s'", path);
				else
					sha_of(t, n2, sha);
				if (fd >= 0)
					close(fd);
				free(t);
				tprintf(&after, "file=wal/%s size=%llu tail_from=%llu tail_sha256=%s\n", de->d_name,
				        (unsigned long long)st.st_size, (unsigned long long)before, sha);
			} else {
				tprintf(&after, "file=wal/%s size=%llu\n", de->d_name, (unsigned long long)st.st_size);
			}
		}
		if (d)
			closedir(d);
		if (rc == 0)
			rc = fs_write_atomic(qdir, "AFTER", after.s ? after.s : "", after.n);
	}
	free(mf.s);
	free(after.s);
	return rc;
}

/* ----------------------------------------------------------------- undo */

struct line {
	char file[300], op[16], saved[200], news[64];
	uint64_t offset, before_size, size, tail_from;
	char before_sha[65], sha[65], tail_sha[65];
	int absent, created;
};

static void copy_field(const struct wal_q_field *f, int n, const char *key, char *out, size_t cap)
{
	const char *v = wal_q_get(f, (size_t)n, key);
	snprintf(out, cap, "%s", v ? v : "");
}

static uint64_t num_field(const struct wal_q_field *f, int n, const char *key)
{
	const char *v = wal_q_get(f, (size_t)n, key);
	return v ? strtoull(v, NULL, 10) : 0;
}

/* Parse one record of a MANIFEST or AFTER file (it ends at '\n' or NUL). */
static void parse_line(const char *text, struct line *x)
{
	struct wal_q_field f[32];
	char buf[4096];
	int n = wal_q_parse(text, f, 32, buf, sizeof buf);

	memset(x, 0, sizeof *x);
	if (n <= 0)
		return;
	copy_field(f, n, "file", x->file, sizeof x->file);
	copy_field(f, n, "op", x->op, sizeof x->op);
	copy_field(f, n, "saved", x->saved, sizeof x->saved);
	copy_field(f, n, "new", x->news, sizeof x->news);
	copy_field(f, n, "before_sha256", x->before_sha, sizeof x->before_sha);
	copy_field(f, n, "sha256", x->sha, sizeof x->sha);
	copy_field(f, n, "tail_sha256", x->tail_sha, sizeof x->tail_sha);
	x->tail_from = num_field(f, n, "tail_from");
	x->offset = num_field(f, n, "offset");
	x->before_size = num_field(f, n, "before_size");
	x->size = num_field(f, n, "size");
	x->absent = wal_q_get(f, (size_t)n, "absent") != NULL;
	x->created = wal_q_get(f, (size_t)n, "created") != NULL;
}

/* 1 if a record of TEXT has KEY=VAL and (if ALSO) a field ALSO. */
static int any_record(const char *text, const char *key, const char *val, const char *also)
{
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		struct wal_q_field f[32];
		char buf[4096];
		int n = wal_q_parse(l, f, 32, buf, sizeof buf);
		const char *v = n > 0 ? wal_q_get(f, (size_t)n, key) : NULL;
		if (v && !strcmp(v, val) && (!also || wal_q_get(f, (size_t)n, also)))
			return 1;
	}
	return 0;
}

/* The size REPLAY recorded for segment NAME, or -1 if it names none. */
static long long replay_size(const char *rp, const char *name)
{
	for (const char *l = rp; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		struct wal_q_field f[4];
		char buf[512];
		int n = wal_q_parse(l, f, 4, buf, sizeof buf);
		const char *seg = n > 0 ? wal_q_get(f, (size_t)n, "segment") : NULL;
		if (seg && !strcmp(seg, name))
			return (long long)num_field(f, n, "size");
	}
	return -1;
}

static int read_text(const char *dir, const char *name, char **out)
{
	unsigned char *b;
	size_t n;
	char path[PATH_MAX + 300];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	*out = NULL;
	if (access(path, F_OK) != 0)
		return WAL_ENOENT;
	int rc = read_whole(path, &b, &n);
	if (rc)
		return rc;
	char *t = realloc(b, n + 1);
	if (!t) {
		free(b);
		return WAL_ENOMEM;
	}
	t[n] = 0;
	*out = t;
	return 0;
}

/* Remove the partitions a replay wrote: LSN ranges after its checkpoint. */
static int remove_replayed(const char *dir, uint64_t after)
{
	struct wal_part_ref *v;
	size_t n;
	int rc = wal_part_list(dir, &v, &n);

	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (v[i].first_lsn <= after)
			continue;
		char sub[PATH_MAX + 400];
		const char *slash = strrchr(v[i].rel, '/');
		snprintf(sub, sizeof sub, "%s/data/%.*s", dir, (int)(slash - v[i].rel), v[i].rel);
		rc = unlink_synced(sub, slash + 1);
	}
	free(v);
	return rc;
}

int wal_undo(const char *datadir, const char *stamp, int apply, int *already)
{
	char qdir[PATH_MAX + 100], waldir[PATH_MAX + 8], path[2 * PATH_MAX], sha[65];
	char *mf = NULL, *after = NULL, *rp = NULL, *done = NULL;
	int lockfd = -1, rc;
	uint64_t size;

	*already = 0;
	if (strchr(stamp, '/') || stamp[0] == '.' || !stamp[0])
		return wal_seterr(WAL_EINVAL, "'%s' is not a quarantine stamp", stamp);
	snprintf(qdir, sizeof qdir, "%s/quarantine/%s", datadir, stamp);
	snprintf(waldir, sizeof waldir, "%s/wal", datadir);
	if (read_text(qdir, "UNDONE", &done) == 0) {
		free(done);
		*already = 1;
		return 0;
	}
	if ((rc = read_text(qdir, "MANIFEST", &mf)) != 0) {
		rc =
		    wal_seterr(rc == WAL_ENOENT ? WAL_ENOENT : rc, "no repair '%s' in '%s/quarantine'", stamp, datadir);
		goto out;
	}
	if (strncmp(mf, "walctl-quarantine 1", 19) != 0) {
		rc = wal_seterr(WAL_EINVAL, "'%s' was not made by a repair: nothing to undo", stamp);
		goto out;
	}
	if (strstr(mf, "\ncommand: writer\n")) {
		rc =
		    wal_seterr(WAL_EINVAL,
		               "'%s' holds a torn tail a writer cut when it opened the WAL (never acknowledged); it is "
		               "kept there as evidence, not a repair to undo",
		               stamp);
		goto out;
	}
	if (read_text(qdir, "AFTER", &after) != 0) {
		rc = wal_seterr(WAL_ECORRUPT, "repair '%s' did not finish: run it again to complete it, then undo",
		                stamp);
		goto out;
	}
	if (any_record(mf, "op", "purge", NULL)) {
		rc = wal_seterr(WAL_EINVAL, "repair '%s' purged quarantine, which cannot be brought back", stamp);
		goto out;
	}
	if ((rc = fs_lock(datadir, &lockfd)) != 0)
		goto out;
	/* Has the WAL moved on?  Every file must be as the repair left it, and
	 * no segment may have been added. */
	for (char *l = after; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		struct line x;
		parse_line(l, &x);
		snprintf(path, sizeof path, "%s/%s", datadir, x.file);
		if (x.absent || x.created)
			continue;
		struct stat st;
		int same = stat(path, &st) == 0 && (uint64_t)st.st_size == x.size;
		if (same && x.sha[0])
			same = sha_file(path, &size, sha) == 0 && strcmp(sha, x.sha) == 0;
		if (same && x.tail_from) {
			size_t got = 0, n2 = (size_t)(x.size - x.tail_from);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			unsigned char *t = malloc(n2 ? n2 : 1);
			same = fd >= 0 && t && fs_read_all(fd, t, n2, x.tail_from, &got) == 0 && got == n2;
			if (same) {
				sha_of(t, n2, sha);
				same = strcmp(sha, x.tail_sha) == 0;
			}
			if (fd >= 0)
				close(fd);
			free(t);
		}
		if (!same) {
			rc = wal_seterr(WAL_ECORRUPT, "the WAL has moved on since repair '%s': '%s' changed", stamp,
			                x.file);
			goto out;
		}
	}
	{
		DIR *d = opendir(waldir);
		struct dirent *de;
		uint64_t l;
		while (d && (de = readdir(d))) {
			char file[320];
			snprintf(file, sizeof file, "wal/%s", de->d_name);
			if (seg_name_parse(de->d_name, &l) && !any_record(after, "file", file, "size")) {
				closedir(d);
				rc = wal_seterr(WAL_ECORRUPT,
				                "the WAL has moved on since repair '%s': segment '%s' is new", stamp,
				                de->d_name);
				goto out;
			}
		}
		if (d)
			closedir(d);
	}
	if (!apply)
		goto out;

	/* Undo the replay: its partitions go, segments return to their sizes. */
	if (read_text(qdir, "REPLAY", &rp) == 0) {
		uint64_t ckpt = strtoull(rp + 6, NULL, 10);
		if ((rc = remove_replayed(datadir, ckpt)) != 0)
			goto out;
		DIR *d = opendir(waldir);
		struct dirent *de;
		uint64_t l;
		if (!d) {
			rc = wal_seterr(wal_errno_code(errno), "cannot open '%s': %s", waldir, strerror(errno));
			goto out;
		}
		while (rc == 0 && (de = readdir(d))) {
			if (!seg_name_parse(de->d_name, &l))
				continue;
			long long was = replay_size(rp, de->d_name);
			snprintf(path, sizeof path, "%s/%s", waldir, de->d_name);
			if (was < 0)
				rc = unlink_synced(waldir, de->d_name);
			else
				rc = fs_truncate_synced(path, (uint64_t)was);
		}
		closedir(d);
		if (rc)
			goto out;
	}
	/* Put back what the repair took, last change first. */
	size_t nl = 0;
	for (char *l = mf; *l; l++)
		nl += *l == '\n';
	for (size_t want = nl; want-- > 0 && rc == 0;) {
		char *l = mf;
		for (size_t i = 0; i < want; i++)
			l = strchr(l, '\n') + 1;
		struct line x;
		parse_line(l, &x);
		if (!x.op[0] || !strcmp(x.op, "replay"))
			continue;
		unsigned char *saved = NULL, *cur = NULL;
		size_t ns = 0, nc = 0;
		if (strncmp(x.file, "wal/", 4) != 0 || !x.file[4] || !x.saved[0])
			continue;
		const char *name = x.file + 4;
		if ((rc = read_quarantined(qdir, x.saved, &saved, &ns)) != 0)
			break;
		if (!strcmp(x.op, "cut")) {
			snprintf(path, sizeof path, "%s/%s", waldir, name);
			if ((rc = read_whole(path, &cur, &nc)) == 0) {
				unsigned char *whole = malloc(x.offset + ns + 1);
				if (!whole || nc < x.offset) {
					rc = wal_seterr(WAL_EIO, "segment '%s' is shorter than the cut", name);
				} else {
					memcpy(whole, cur, x.offset);
					memcpy(whole + x.offset, saved, ns);
					sha_of(whole, x.offset + ns, sha);
					if (strcmp(sha, x.before_sha) != 0)
						rc = wal_seterr(WAL_ECORRUPT,
						                "restoring '%s' would not give its original bytes",
						                name);
					else
						rc = fs_write_atomic(waldir, name, whole, x.offset + ns);
				}
				free(whole);
			}
		} else {
			sha_of(saved, ns, sha);
			if (strcmp(sha, x.before_sha) != 0)
				rc = wal_seterr(WAL_ECORRUPT, "the quarantined copy of '%s' does not match its digest",
				                name);
			char was[80];
			snprintf(was, sizeof was, "wal/%s", x.news);
			/* a new name that is also an old one (a swap) is written over
			 * by that one's restore, not removed */
			if (rc == 0 && x.news[0] && strcmp(x.news, name) != 0 && !any_record(mf, "file", was, NULL))
				rc = unlink_synced(waldir, x.news);
			if (rc == 0)
				rc = fs_write_atomic(waldir, name, saved, ns);
		}
		free(saved);
		free(cur);
	}
	if (rc == 0)
		rc = fs_write_atomic(qdir, "UNDONE", "undone\n", 7);
out:
	if (lockfd >= 0)
		close(lockfd);
	free(mf);
	free(after);
	free(rp);
	return rc;
}
