/*
 * apply.c - carries out a repair plan (repair.c makes it), in an order
 * that is safe to interrupt anywhere: evidence first, then removals,
 * rewrites and cuts, then the replay; see repair.c.
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
#include <unistd.h>

#include "plan.h"

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

/* Save bytes of a file as evidence, then describe them in the manifest. */
static int save(const char *qdir, const char *as, const unsigned char *b, size_t n, char sha[65])
{
	wal_q_sha_of(b, n, sha);
	return fs_write_atomic(qdir, as, b, n);
}

/* Append a record to a MANIFEST, AFTER or REPLAY text. */
static void trec(struct text *t, struct wal_q_rec *r) { tprintf(t, "%s", wal_q_end(r)); }

/* The MANIFEST record of a file whose bytes from off, len of them, were
 * saved to the quarantine as SAVED; then what an action says of itself. */
static void mf_saved(struct text *mf, const char *file, const char *op, size_t before_size, const char *before_sha,
                     uint64_t off, size_t len, const char *saved, const char *saved_sha, const struct wal_action *a)
{
	struct wal_q_rec r;

	wal_q_rec(&r);
	wal_q_str(&r, "file", file);
	wal_q_str(&r, "op", op);
	wal_q_u64(&r, "before_size", before_size);
	wal_q_str(&r, "before_sha256", before_sha);
	wal_q_u64(&r, "offset", off);
	wal_q_u64(&r, "length", len);
	wal_q_str(&r, "saved", saved);
	wal_q_str(&r, "saved_sha256", saved_sha);
	if (a->newname[0])
		wal_q_str(&r, "new", a->newname);
	if (a->lsn_first)
		wal_q_range(&r, "lsn", a->lsn_first, a->lsn_last);
	wal_q_str(&r, "reason", a->detail);
	trec(mf, &r);
}

/* An AFTER record: file, then a flag (absent, created). */
static void after_flag(struct text *after, const char *file, const char *flag)
{
	struct wal_q_rec r;

	wal_q_rec(&r);
	wal_q_str(&r, "file", file);
	wal_q_flag(&r, flag);
	trec(after, &r);
}

/* An AFTER record of a segment the repair removed. */
static void after_segment(struct text *after, const char *name)
{
	char file[340];

	snprintf(file, sizeof file, "wal/%s", name);
	after_flag(after, file, "absent");
}

/* The quarantine's name for data/<db>/<partition>: one file name. */
static void saved_name(const char *file, char *out, size_t cap)
{
	size_t n = 0;

	for (const char *c = file; *c && n + 4 < cap; c++) {
		if (*c == '/') {
			memcpy(out + n, "%2F", 3);
			n += 3;
		} else {
			out[n++] = *c;
		}
	}
	out[n] = 0;
}

static int tput(struct text *t, const void *data, size_t n)
{
	int rc = wal_grow((void **)&t->s, &t->cap, t->n + n, 1);

	if (rc == 0) {
		memcpy(t->s + t->n, data, n);
		t->n += n;
	}
	return rc;
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
		f.payload_crc = wal_crc32(seed, payload, plen);
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

/* Store the partitions the plan rebuilds again from the WAL, in one pass
 * over it: each gets the POINTS entries of its LSN range in its database,
 * under the same name (a partial one under the name of what the WAL holds,
 * which a new CHECKPOINT names: the one that named the partition it
 * replaces was given up). */
static int name_partial(wal_t *w, uint64_t ckpt, char (*names)[1200], size_t n)
{
	struct wal_str *v = calloc(n, sizeof *v);
	size_t cap = 64, len = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		cap += strlen(names[i]) + 16;
	unsigned char *buf = malloc(cap);
	if (!v || !buf)
		rc = wal_seterr(WAL_ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < n; i++)
		v[i] = (struct wal_str){ names[i], strlen(names[i]) };
	struct wal_checkpoint c = { .lsn = ckpt, .time_ns = wal_now_ns(), .npartitions = n, .partitions = v };
	if (rc == 0 && !(len = wal_checkpoint_encode(buf, cap, &c)))
		rc = wal_seterr(WAL_ENOMEM, "checkpoint too large");
	if (rc == 0 && (rc = wal_append(w, WAL_T_CHECKPOINT, buf, len, NULL)) == 0)
		rc = wal_sync(w);
	free(v);
	free(buf);
	return rc;
}

static int rebuild(wal_plan_t *p, wal_t *w, struct text *after)
{
	char (*partial)[1200] = NULL;
	size_t npartial = 0;
	const char *paths[1] = { p->dir };
	const struct wal_action **ra = NULL;
	wal_pw_t **pw = NULL;
	size_t nr = 0;
	wal_scan_t *s = NULL;
	wal_dec_t *dec = NULL;
	struct wal_entry e;
	int rc;

	for (size_t i = 0; i < p->na; i++)
		nr += p->a[i].op == WAL_ACT_REBUILD;
	if (!nr)
		return 0;
	ra = calloc(nr, sizeof *ra);
	pw = calloc(nr, sizeof *pw);
	partial = calloc(nr, sizeof *partial);
	if (!ra || !pw || !partial) {
		rc = wal_seterr(WAL_ENOMEM, "out of memory");
		goto out;
	}
	nr = 0;
	for (size_t i = 0; i < p->na; i++)
		if (p->a[i].op == WAL_ACT_REBUILD)
			ra[nr++] = &p->a[i];
	if ((rc = wal_scan_open(&s, paths, 1, NULL)) != 0 || (rc = wal_dec_new(&dec)) != 0)
		goto out;
	while ((rc = wal_scan_next(s, &e)) == 1) {
		struct wal_str db;
		char dir[1200];
		int decoded = 0, err = 0;
		if ((e.type & 0x7f) != WAL_T_POINTS)
			continue;
		for (size_t k = 0; k < nr && err == 0; k++) {
			const struct wal_action *a = ra[k];
			const char *rel = a->file + 5, *slash = strrchr(rel, '/');
			if (e.lsn < a->lsn_first || e.lsn > a->lsn_last)
				continue;
			if (!decoded++) {
				if (wal_dec_begin(dec, e.payload, e.len, &db) != 0) {
					err = wal_seterr(WAL_ECORRUPT, "points payload of LSN %llu does not decode: %s",
					                 (unsigned long long)e.lsn, wal_errmsg());
					break;
				}
				wal_db_dirname(dir, sizeof dir, db.p, db.n);
			}
			if (strlen(dir) != (size_t)(slash - rel) || memcmp(dir, rel, (size_t)(slash - rel)) != 0)
				continue;
			if (!pw[k])
				err = wal_pw_open(&pw[k], p->dir, p->wal_id, db, p->o.level);
			if (err == 0)
				err = wal_pw_add(pw[k], e.lsn, e.payload, e.len);
		}
		if (err) {
			rc = err;
			break;
		}
	}
	for (size_t k = 0; rc == 0 && k < nr; k++) {
		const struct wal_action *a = ra[k];
		char got[1200], file[1300];
		if (!pw[k]) {
			if (!a->partial)
				rc = wal_seterr(WAL_ECORRUPT, "the WAL holds no point of '%s' to store it again from",
				                a->file);
			continue;
		}
		rc = wal_pw_finish(pw[k], got, sizeof got);
		pw[k] = NULL;
		if (rc)
			break;
		snprintf(file, sizeof file, "data/%s", got);
		after_flag(after, file, "created");
		if (!a->partial && strcmp(got, a->file + 5) != 0)
			rc = wal_seterr(WAL_ECORRUPT, "storing '%s' again from the WAL gave 'data/%s'", a->file, got);
		if (a->partial)
			snprintf(partial[npartial++], sizeof *partial, "%s", got);
	}
	if (rc == 0 && npartial)
		rc = name_partial(w, p->ckpt, partial, npartial);
out:
	free(partial);
	for (size_t k = 0; pw && k < nr; k++)
		wal_pw_abort(pw[k]);
	free(pw);
	free(ra);
	wal_dec_free(dec);
	wal_scan_close(s);
	return rc < 0 ? rc : 0;
}

/* A new CHECKPOINT naming the partitions past where the WAL ended, when
 * storage can vouch for them all: through the last of them. */
static int adopt(wal_plan_t *p, wal_t *w)
{
	struct wal_part_ref *ad;
	size_t nad;
	uint64_t upto;
	int rc;

	if ((rc = wal_part_adopt(p->dir, wal_id(w), p->ckpt, wal_plan_held(p), &ad, &nad, &upto)) != 0)
		return rc;
	if (!nad || upto <= p->found.t.last_lsn) {
		free(ad);
		return 0;
	}
	struct wal_str *names = calloc(nad, sizeof *names);
	size_t cap = 64, len = 0;
	for (size_t i = 0; i < nad; i++)
		cap += strlen(ad[i].rel) + 16;
	unsigned char *buf = malloc(cap);
	if (!names || !buf)
		rc = wal_seterr(WAL_ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < nad; i++)
		names[i] = (struct wal_str){ ad[i].rel, strlen(ad[i].rel) };
	struct wal_checkpoint c = { .lsn = upto, .time_ns = wal_now_ns(), .npartitions = nad, .partitions = names };
	if (rc == 0 && !(len = wal_checkpoint_encode(buf, cap, &c)))
		rc = wal_seterr(WAL_ENOMEM, "checkpoint too large");
	if (rc == 0 && (rc = wal_append(w, WAL_T_CHECKPOINT, buf, len, NULL)) == 0 && (rc = wal_sync(w)) == 0)
		p->ckpt = p->adopted = upto;
	free(names);
	free(buf);
	free(ad);
	return rc;
}

static int replay(wal_plan_t *p, const char *qdir, struct text *after, int after_checkpoint)
{
	/* a salvage records the LSNs a lost end took as a known loss */
	struct wal_opts wo = { .record_lost_end = p->o.mode == WAL_REPAIR_SALVAGE };
	struct text rp = { 0 };
	wal_flush_t *fl = NULL;
	wal_after_t *r = NULL;
	wal_t *w = NULL;
	struct wal_entry e;
	uint64_t through = 0;
	int rc;

	/* Record what undo needs before anything is created or appended. */
	struct wal_q_rec rec;
	wal_q_rec(&rec);
	wal_q_u64(&rec, "after", p->ckpt);
	trec(&rp, &rec);
	{
		DIR *d = opendir(p->waldir);
		struct dirent *de;
		uint64_t l;
		while (d && (de = readdir(d))) {
			char path[PATH_MAX + 300];
			struct stat st;
			snprintf(path, sizeof path, "%s/%s", p->waldir, de->d_name);
			if (seg_name_parse(de->d_name, &l) && stat(path, &st) == 0) {
				wal_q_rec(&rec);
				wal_q_str(&rec, "segment", de->d_name);
				wal_q_u64(&rec, "size", (uint64_t)st.st_size);
				trec(&rp, &rec);
			}
		}
		if (d)
			closedir(d);
	}
	if ((rc = fs_write_atomic(qdir, "REPLAY", rp.s, rp.n)) != 0) {
		free(rp.s);
		return rc;
	}
	/* a tail repair has only cut the torn tail the survey found: where the
	 * WAL ends is known */
	if ((rc = wal_open_found(&w, p->dir, &wo, p->o.mode == WAL_REPAIR_TAIL ? &p->found : NULL)) != 0)
		return rc;
	/* A salvage of a WAL that lost its end: partitions past where it
	 * ended hold LSNs the WAL no longer has.  Storage stays readable when
	 * it can vouch for them all (wal_part_adopt): a new CHECKPOINT names
	 * them, and the replay stores only what comes after. */
	if (p->o.mode == WAL_REPAIR_SALVAGE && (rc = adopt(p, w)) != 0)
		goto out;
	/* Partitions above the checkpoint were left by an interrupted flush; the
	 * ones whose points are still in the WAL are about to be stored again.
	 * The others stay: they are the only copy of their points. */
	unsigned orphans, kept, rebuildable;
	if ((rc = wal_part_drop_orphans(p->dir, p->ckpt, wal_plan_held(p), &orphans, &kept, &rebuildable)) != 0)
		goto out;
	/* What storage lost and the WAL no longer holds goes on the record
	 * first, before anything is stored again. */
	for (size_t i = 0; rc == 0 && i < wal_plan_nstorage_losses(p); i++) {
		const struct wal_storage_loss *sl = wal_plan_storage_loss(p, i);
		size_t cap = sl->partition.n + sl->reason.n + 64, n;
		unsigned char *pl = malloc(cap);
		if (!pl || !(n = wal_storage_loss_encode(pl, cap, sl)))
			rc = wal_seterr(WAL_ENOMEM, "out of memory");
		else
			rc = wal_append(w, WAL_T_STORAGE_LOSS | WAL_T_IGNORABLE, pl, n, NULL);
		free(pl);
	}
	if (rc == 0 && wal_plan_nstorage_losses(p))
		rc = wal_sync(w);
	if (rc)
		goto out;
	if ((rc = rebuild(p, w, after)) != 0)
		goto out;
	const wal_held_t *held = wal_plan_held(p);
	if (after_checkpoint && held && wal_held_complete(held)) {
		/* what the survey read and kept: the WAL is not read again */
		if ((rc = wal_flush_new(&fl, p->dir, p->wal_id, p->o.level)) != 0)
			goto out;
		uint64_t total = 0, done = 0;
		for (size_t i = 0; i < wal_held_npayloads(held); i++) {
			const unsigned char *pl;
			size_t len;
			wal_held_payload(held, i, &pl, &len);
			total += len;
		}
		for (size_t i = 0; rc == 0 && i < wal_held_npayloads(held); i++) {
			const unsigned char *pl;
			size_t len;
			uint64_t lsn = wal_held_payload(held, i, &pl, &len);
			/* stored already, in a partition a new CHECKPOINT named (a
			 * salvage's adoption, which names partitions past the WAL's
			 * end: every entry held is at or below it).  Were they added,
			 * no checkpoint would follow and the flush would be abandoned,
			 * but a partition past 64 MiB is finished as it is added. */
			if (lsn <= p->adopted)
				continue;
			rc = wal_flush_add(fl, lsn, pl, len);
			done += len;
			if (p->o.progress && (i & 15) == 15)
				p->o.progress(p->o.progress_ctx, "replay", done, total);
		}
		/* through the last entry after the checkpoint (a tail repair
		 * records no storage loss: it refuses one) */
		through = wal_held_last(held) > p->ckpt ? wal_held_last(held) : p->ckpt;
		if (rc || (through > p->ckpt && (rc = wal_flush_checkpoint(fl, w, through, NULL)) != 0))
			goto out;
	} else if (after_checkpoint) {
		if ((rc = wal_after_open(&r, p->dir, (int64_t)p->ckpt, 0, NULL)) != 0 ||
		    (rc = wal_flush_new(&fl, p->dir, p->wal_id, p->o.level)) != 0)
			goto out;
		uint64_t done = 0, n = 0;
		while ((rc = wal_after_next(r, &e)) == 1) {
			through = e.lsn;
			done += e.len;
			if (p->o.progress && (++n & 15) == 0)
				p->o.progress(p->o.progress_ctx, "replay", done, 0);
			if ((e.type & 0x7f) == WAL_T_POINTS && (rc = wal_flush_add(fl, e.lsn, e.payload, e.len)) != 0)
				goto out;
		}
		if (rc < 0 || (through > p->ckpt && (rc = wal_flush_checkpoint(fl, w, through, NULL)) != 0))
			goto out;
	}
	if (after_checkpoint) {
		for (size_t i = 0; i < wal_flush_npartitions(fl); i++) {
			char file[1300];
			snprintf(file, sizeof file, "data/%s", wal_flush_partition(fl, i));
			after_flag(after, file, "created");
		}
	}
out:
	wal_flush_free(fl);
	free(rp.s);
	wal_after_close(r);
	int crc = wal_close(w);
	return rc ? rc : crc;
}

static int rm_quarantine(const char *dir, const char *stamp)
{
	char q[PATH_MAX + 16], path[PATH_MAX + 400];
	DIR *d;
	struct dirent *de;

	snprintf(q, sizeof q, "%s/quarantine", dir);
	snprintf(path, sizeof path, "%s/%s", q, stamp);
	if (!(d = opendir(path)))
		return 0;
	while ((de = readdir(d))) {
		char f[PATH_MAX + 700];
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
	char qdir[PATH_MAX + 100], path[PATH_MAX + 400], sha[65], saved[1000];
	struct text mf = { 0 }, after = { 0 };
	unsigned char *b = NULL;
	size_t n;
	int rc = 0, do_replay = 0;

	stamp[0] = 0;
	if (p->refusal[0])
		return wal_seterr(WAL_ECORRUPT, "%s", p->refusal);
	/* the consumers past the lag limit first: the plan removes what they
	 * held back */
	for (size_t i = 0; i < p->nlost_consumers; i++) {
		const struct wal_consumer_lag *l = &p->lost_consumers[i];
		char why[200];
		snprintf(why, sizeof why, "%llu bytes of WAL after its cursor, past the limit of %llu (compact)",
		         (unsigned long long)l->lag_bytes, (unsigned long long)l->limit);
		if ((rc = wal_consumer_lose(p->dir, l->name, why)) != 0)
			return rc;
	}
	if (!p->na)
		return 0;
	wal_q_stamp(stamp, cap);
	snprintf(qdir, sizeof qdir, "%s/quarantine/%s", p->dir, stamp);
	if ((rc = fs_mkdir_p(qdir)) != 0)
		return rc;
	tprintf(&mf, "walctl-quarantine 1\ncommand: %s\nwal_id: %016llx\nwal_last_lsn: %llu\n",
	        p->o.command ? p->o.command : "repair", (unsigned long long)p->wal_id,
	        (unsigned long long)p->found.t.last_lsn);

	/* 1. Evidence first. */
	for (size_t i = 0; i < p->na && rc == 0; i++) {
		struct wal_action *a = &p->a[i];
		size_t k = p->a_seg[i];
		char file[400], before[65];
		struct wal_q_rec rec;
		wal_q_rec(&rec);
		switch (a->op) {
		case WAL_ACT_CUT:
			snprintf(path, sizeof path, "%s/%s", p->waldir, a->file);
			if ((rc = wal_q_read_whole(path, &b, &n)) != 0)
				break;
			if (a->offset > n) {
				rc = wal_seterr(WAL_EIO, "segment '%s' shrank since the plan was made", a->file);
				break;
			}
			wal_q_sha_of(b, n, before);
			snprintf(saved, sizeof saved, "%s@%llu", a->file, (unsigned long long)a->offset);
			if ((rc = save(qdir, saved, b + a->offset, n - a->offset, sha)) != 0)
				break;
			snprintf(file, sizeof file, "wal/%s", a->file);
			mf_saved(&mf, file, "cut", n, before, a->offset, n - (size_t)a->offset, saved, sha, a);
			break;
		case WAL_ACT_REMOVE:
		case WAL_ACT_REWRITE:
		case WAL_ACT_MERGE:
			for (size_t j = k; j <= p->a_seg2[i]; j++) {
				snprintf(path, sizeof path, "%s/%s", p->waldir, p->s[j].name);
				if ((rc = wal_q_read_whole(path, &b, &n)) != 0)
					break;
				if ((rc = save(qdir, p->s[j].name, b, n, sha)) != 0)
					break;
				snprintf(file, sizeof file, "wal/%s", p->s[j].name);
				mf_saved(&mf, file,
				         a->op == WAL_ACT_REMOVE    ? "remove"
				         : a->op == WAL_ACT_REWRITE ? "rewrite"
				                                    : "merge",
				         n, sha, 0, n, p->s[j].name, sha, a);
				free(b);
				b = NULL;
			}
			break;
		case WAL_ACT_PURGE:
			snprintf(file, sizeof file, "quarantine/%s", a->file);
			wal_q_str(&rec, "file", file);
			wal_q_str(&rec, "op", "purge");
			wal_q_str(&rec, "reason", a->detail);
			trec(&mf, &rec);
			break;
		case WAL_ACT_SET_ASIDE:
			snprintf(path, sizeof path, "%s/%s", p->dir, a->file);
			if ((rc = wal_q_read_whole(path, &b, &n)) != 0)
				break;
			saved_name(a->file, saved, sizeof saved);
			if ((rc = save(qdir, saved, b, n, sha)) != 0)
				break;
			mf_saved(&mf, a->file, "set-aside", n, sha, 0, n, saved, sha, a);
			break;
		case WAL_ACT_REPLAY:
			wal_q_str(&rec, "op", "replay");
			wal_q_range(&rec, "lsn", a->lsn_first, a->lsn_last);
			wal_q_str(&rec, "reason", a->detail);
			trec(&mf, &rec);
			do_replay |= 1;
			break;
		case WAL_ACT_REBUILD:
			wal_q_str(&rec, "file", a->file);
			wal_q_str(&rec, "op", "rebuild");
			if (a->partial)
				wal_q_flag(&rec, "partial");
			wal_q_range(&rec, "lsn", a->lsn_first, a->lsn_last);
			wal_q_str(&rec, "reason", a->detail);
			trec(&mf, &rec);
			do_replay |= 2;
			break;
		}
		free(b);
		b = NULL;
	}
	/* the cursors a truncate or a salvage rewinds, as they were */
	for (size_t i = 0; rc == 0 && i < p->nrewinds; i++) {
		const struct wal_consumer_rewind *r = &p->rewinds[i];
		char file[WAL_CONSUMER_NAME_MAX + 16], why[200], before[65];
		struct wal_q_rec rec;
		snprintf(file, sizeof file, "consumers/%s", r->name);
		snprintf(path, sizeof path, "%s/%s", p->dir, file);
		if ((rc = wal_q_read_whole(path, &b, &n)) != 0)
			break;
		wal_q_sha_of(b, n, before);
		snprintf(saved, sizeof saved, "consumers@%s", r->name);
		if ((rc = save(qdir, saved, b, n, sha)) == 0) {
			snprintf(why, sizeof why, "cursor rewound from LSN %llu to LSN %llu: %s",
			         (unsigned long long)r->cursor, (unsigned long long)r->to,
			         p->o.mode == WAL_REPAIR_SALVAGE ? "the salvage gave up LSNs after it"
			                                         : "the entries after it were cut");
			wal_q_rec(&rec);
			wal_q_str(&rec, "file", file);
			wal_q_str(&rec, "op", "rewind");
			wal_q_u64(&rec, "before_size", n);
			wal_q_str(&rec, "before_sha256", before);
			wal_q_u64(&rec, "offset", 0);
			wal_q_u64(&rec, "length", n);
			wal_q_str(&rec, "saved", saved);
			wal_q_str(&rec, "saved_sha256", sha);
			wal_q_range(&rec, "lsn", r->to + 1, r->cursor);
			wal_q_u64(&rec, "rewound_to", r->to);
			wal_q_str(&rec, "reason", why);
			trec(&mf, &rec);
		}
		free(b);
		b = NULL;
	}
	if (rc == 0)
		rc = fs_write_atomic(qdir, "MANIFEST", mf.s, mf.n);
	/* Cursors back before anything is cut: were the power to fail between
	 * the two, a consumer hands its entries on again (at least once), never
	 * past a cut. */
	for (size_t i = 0; rc == 0 && i < p->nrewinds; i++)
		rc = wal_consumer_rewind(p->dir, p->rewinds[i].name, p->rewinds[i].to);

	/* The CHECKPOINT this plan trusts was read back from a file: it may be
	 * only in the page cache of a writer that died before its sync.  Sync
	 * it before removing anything it covers. */
	if (rc == 0 && p->ckpt_seg[0]) {
		snprintf(path, sizeof path, "%s/%s", p->waldir, p->ckpt_seg);
		int fd;
		if (fs_open_file(path, O_RDONLY, &fd) != 0 || fsync(fd) != 0)
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
			rc = fs_unlink_synced(p->waldir, a->file);
			after_segment(&after, a->file);
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
			if ((rc = wal_q_read_saved(qdir, a->file, &b, &n)) != 0)
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
				rc = fs_unlink_synced(p->waldir, a->file);
				after_segment(&after, a->file);
			}
			break;
		}
		case WAL_ACT_MERGE: {
			struct text m = { 0 };
			for (size_t j = k; j <= p->a_seg2[i] && rc == 0; j++) {
				if ((rc = wal_q_read_saved(qdir, p->s[j].name, &b, &n)) != 0)
					break;
				/* the first segment whole, the others without their header */
				size_t from = j == k ? 0 : WAL_SEG_HEADER_SIZE;
				rc = tput(&m, b + from, n - from);
				free(b);
				b = NULL;
			}
			if (rc == 0)
				rc = fs_write_atomic(p->waldir, a->newname, m.s, m.n);
			for (size_t j = k + 1; j <= p->a_seg2[i] && rc == 0; j++) {
				rc = fs_unlink_synced(p->waldir, p->s[j].name);
				after_segment(&after, p->s[j].name);
			}
			free(m.s);
			break;
		}
		case WAL_ACT_CUT:
			snprintf(path, sizeof path, "%s/%s", p->waldir, a->file);
			rc = fs_truncate_synced(path, a->offset);
			break;
		case WAL_ACT_PURGE: rc = rm_quarantine(p->dir, a->file); break;
		case WAL_ACT_SET_ASIDE: {
			char sub[PATH_MAX + 400];
			const char *slash = strrchr(a->file, '/');
			snprintf(sub, sizeof sub, "%s/%.*s", p->dir, (int)(slash - a->file), a->file);
			rc = fs_unlink_synced(sub, slash + 1);
			after_flag(&after, a->file, "absent");
			break;
		}
		case WAL_ACT_REPLAY:
		case WAL_ACT_REBUILD: break;
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
		after_segment(&after, parked[i]);
	}
	free(parked);

	/* 3. Replay through the ordinary writer (it takes the lock itself). */
	if (rc == 0 && do_replay) {
		close(p->lockfd);
		p->lockfd = -1;
		rc = replay(p, qdir, &after, do_replay & 1);
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
			struct wal_q_rec rec;
			char file[300];
			snprintf(file, sizeof file, "wal/%s", de->d_name);
			wal_q_rec(&rec);
			wal_q_str(&rec, "file", file);
			uint64_t before = UINT64_MAX;
			for (size_t i = 0; i < p->ns; i++)
				if (!strcmp(p->s[i].name, de->d_name))
					before = p->s[i].info.bytes;
			if (written || before == UINT64_MAX || before > (uint64_t)st.st_size) {
				uint64_t size;
				if ((rc = wal_q_sha_file(path, &size, sha)) == 0) {
					wal_q_u64(&rec, "size", size);
					wal_q_str(&rec, "sha256", sha);
				}
			} else if ((uint64_t)st.st_size > before) {
				/* a replay appended to it */
				int fd;
				if (fs_open_file(path, O_RDONLY, &fd) != 0)
					fd = -1;
				size_t n2 = (size_t)((uint64_t)st.st_size - before), got = 0;
				unsigned char *t = malloc(n2);
				if (fd < 0 || !t || fs_read_all(fd, t, n2, before, &got) != 0 || got != n2)
					rc = wal_seterr(WAL_EIO, "cannot read '%s'", path);
				else
					wal_q_sha_of(t, n2, sha);
				if (fd >= 0)
					close(fd);
				free(t);
				wal_q_u64(&rec, "size", (uint64_t)st.st_size);
				wal_q_u64(&rec, "tail_from", before);
				wal_q_str(&rec, "tail_sha256", sha);
			} else {
				wal_q_u64(&rec, "size", (uint64_t)st.st_size);
			}
			trec(&after, &rec);
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
