/*
 * wal.c - the segment manager and writer: appending frames, group commit,
 * rotation with a SEAL frame, and the clean-close marker.
 *
 * One thread appends while another may sync: wal_sync() snapshots the last
 * appended LSN under the lock, syncs outside it, then publishes that LSN as
 * durable; every frame appended meanwhile waits for the next sync (group
 * commit).  Each frame carries the durable LSN known when it was written.
 * A failed sync is never retried: the writer stops and every later call
 * fails, because the kernel may have dropped the dirty pages it reported.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

struct wal {
	char dir[PATH_MAX], waldir[PATH_MAX];
	struct wal_opts o;
	int lockfd, fd;
	char segname[64];
	uint64_t seg_first, seg_seq, seg_off, seg_entries;
	int64_t seg_created;
	uint64_t wal_id;
	uint32_t seed;
	uint64_t next_lsn, last_lsn, durable;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_mutex_t append_mu; /* appenders: ingest and the flusher's checkpoints */
	uint64_t rotations, bytes_appended;
	int syncing, stopped, stop_err;
	char stop_msg[512];
	char torn_note[512];
	uint64_t open_ckpt; /* the last checkpoint the scan of wal_open read */
};

static int stop(wal_t *w, int err, const char *msg)
{
	if (!w->stopped) {
		w->stopped = 1;
		w->stop_err = err;
		snprintf(w->stop_msg, sizeof w->stop_msg, "%s", msg);
	}
	return wal_seterr(err, "%s", w->stop_msg);
}

static int stopped_err(wal_t *w) { return wal_seterr(WAL_ESTOPPED, "%s", w->stop_msg); }

/* Write the header of segment SEQ (first LSN FIRST, after PREV_LAST)
 * durably under NAME, with a suffix SUFFIX ("" or ".next"). */
static int write_segment_header(wal_t *w, uint64_t seq, uint64_t first, uint64_t prev_last, const char *suffix,
                                int64_t *created)
{
	struct seg_header h = {
		.version = WAL_FORMAT_VERSION,
		.csum_type = WAL_CSUM_CRC32,
		.wal_id = w->wal_id,
		.seq = seq,
		.first_lsn = first,
		.prev_last_lsn = prev_last,
		.created_ns = wal_now_ns(),
		.max_entry = w->o.max_entry_size,
	};
	unsigned char hb[WAL_SEG_HEADER_SIZE];
	char name[48];

	seg_header_encode(hb, &h);
	seg_name(name, first);
	snprintf(name + strlen(name), sizeof name - strlen(name), "%s", suffix);
	*created = h.created_ns;
	return fs_write_atomic(w->waldir, name, hb, sizeof hb);
}

/* Go on in the segment named for FIRST, which holds only its header. */
static int enter_segment(wal_t *w, uint64_t seq, uint64_t first, int64_t created)
{
	char path[PATH_MAX + 80];

	seg_name(w->segname, first);
	snprintf(path, sizeof path, "%s/%s", w->waldir, w->segname);
	w->fd = open(path, O_WRONLY | O_CLOEXEC);
	if (w->fd < 0)
		return wal_seterr(wal_errno_code(errno), "cannot open segment '%s': %s", path, strerror(errno));
	w->seg_first = first;
	w->seg_seq = seq;
	w->seg_off = WAL_SEG_HEADER_SIZE;
	w->seg_entries = 0;
	w->seg_created = created;
	return 0;
}

static int create_segment(wal_t *w, uint64_t seq, uint64_t first, uint64_t prev_last)
{
	int64_t created;
	int rc = write_segment_header(w, seq, first, prev_last, "", &created);

	return rc ? rc : enter_segment(w, seq, first, created);
}

/* Give the segment waiting as NAME.next (written before the SEAL of the
 * one before it) its name, durably, and go on in it. */
static int name_next_segment(wal_t *w, uint64_t seq, uint64_t first, int64_t created)
{
	char name[32], from[PATH_MAX + 80], to[PATH_MAX + 80];

	seg_name(name, first);
	snprintf(from, sizeof from, "%s/%s.next", w->waldir, name);
	snprintf(to, sizeof to, "%s/%s", w->waldir, name);
	if (rename(from, to) != 0)
		return wal_seterr(wal_errno_code(errno), "cannot rename '%s' to '%s': %s", from, to, strerror(errno));
	int rc = fs_fsync_dir(w->waldir);
	return rc ? rc : enter_segment(w, seq, first, created);
}

static int do_fsync(wal_t *w, int fd) { return w->o.sync == WAL_SYNC_FSYNC ? fsync(fd) : fdatasync(fd); }

/* Write one frame at the end of the active segment; lock not needed: only
 * the appending thread writes and moves seg_off. */
static int write_frame(wal_t *w, unsigned type, const void *payload, size_t len, uint64_t lsn)
{
	unsigned char hb[WAL_FRAME_HEADER_SIZE];
	struct frame_header fh = {
		.len = (uint32_t)len,
		.type = (uint8_t)type,
		.lsn = lsn,
		.time_ns = wal_now_ns(),
		.watermark = __atomic_load_n(&w->durable, __ATOMIC_ACQUIRE),
		.payload_crc = wal_crc32(w->seed, payload, len),
	};
	struct iovec iov[2] = { { hb, sizeof hb }, { (void *)(uintptr_t)payload, len } };
	size_t total = sizeof hb + len, done = 0;
	char msg[512];

	frame_header_encode(hb, &fh, w->seed);
	while (done < total) {
		ssize_t n;
		if (done < sizeof hb) {
			struct iovec v[2] = { { hb + done, sizeof hb - done }, iov[1] };
			n = pwritev(w->fd, v, 2, (off_t)(w->seg_off + done));
		} else {
			n = pwrite(w->fd, (const char *)payload + (done - sizeof hb), total - done,
			           (off_t)(w->seg_off + done));
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : ENOSPC;
			/* Leave no partial frame behind if we can help it. */
			if (ftruncate(w->fd, (off_t)w->seg_off) != 0) { /* verify will call it a torn tail */
			}
			snprintf(msg, sizeof msg, "segment '%s' offset %llu: cannot append LSN %llu: %s", w->segname,
			         (unsigned long long)w->seg_off, (unsigned long long)lsn, strerror(e));
			return stop(w, wal_errno_code(e), msg);
		}
		done += (size_t)n;
	}
	w->seg_off += total;
	w->seg_entries++;
	pthread_mutex_lock(&w->mu);
	w->last_lsn = lsn;
	pthread_mutex_unlock(&w->mu);
	__atomic_store_n(&w->next_lsn, lsn + 1, __ATOMIC_RELEASE);
	return 0;
}

/* Seal the active segment and start the next one.  The next segment is
 * made durable first, under a name no reader takes (NAME.next), and named
 * after the SEAL is synced: a SEAL then proves that the segment after it
 * existed (hwm.c), and a reader following the WAL sees the next segment
 * only once the SEAL is there.  Holds the lock so that no sync runs on the
 * old descriptor while it is closed. */
static int rotate(wal_t *w)
{
	unsigned char buf[64];
	struct wal_seal se;
	char msg[512];
	uint64_t seal_lsn = w->next_lsn;
	int64_t created = 0;
	int rc;

	pthread_mutex_lock(&w->mu);
	while (w->syncing)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	se.entries = w->seg_entries;
	se.first_lsn = w->seg_first;
	se.last_lsn = w->next_lsn - 1;
	se.bytes = w->seg_off;
	size_t n = wal_seal_encode(buf, sizeof buf, &se);
	pthread_mutex_lock(&w->mu);
	w->syncing = 1; /* keep wal_sync() away until the new segment is in place */
	pthread_mutex_unlock(&w->mu);
	rc = write_segment_header(w, w->seg_seq + 1, seal_lsn + 1, seal_lsn, ".next", &created);
	if (rc)
		rc = stop(w, rc, wal_errmsg());
	if (rc == 0)
		rc = write_frame(w, WAL_T_SEAL, buf, n, seal_lsn);
	if (rc == 0 && do_fsync(w, w->fd) != 0) {
		snprintf(msg, sizeof msg, "segment '%s': sync before sealing failed: %s", w->segname, strerror(errno));
		rc = stop(w, WAL_ESYNC, msg);
	}
	if (rc == 0) {
		close(w->fd);
		w->fd = -1;
		__atomic_store_n(&w->durable, seal_lsn, __ATOMIC_RELEASE);
		rc = name_next_segment(w, w->seg_seq + 1, seal_lsn + 1, created);
		if (rc)
			rc = stop(w, rc, wal_errmsg());
	}
	pthread_mutex_lock(&w->mu);
	w->syncing = 0;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int wal_append(wal_t *w, unsigned type, const void *payload, size_t len, uint64_t *lsn_out)
{
	int rc = 0;

	if (w->stopped)
		return stopped_err(w);
	if (len > w->o.max_entry_size)
		return wal_seterr(WAL_ETOOBIG, "entry of %zu bytes exceeds the maximum entry size %u", len,
		                  w->o.max_entry_size);
	pthread_mutex_lock(&w->append_mu);
	if (w->seg_entries > 0 && (w->seg_off + 2 * WAL_FRAME_HEADER_SIZE + len + 64 > w->o.max_segment_size ||
	                           wal_now_ns() - w->seg_created >= w->o.max_segment_age_ns)) {
		rc = rotate(w);
		if (rc == 0)
			__atomic_add_fetch(&w->rotations, 1, __ATOMIC_RELAXED);
	}
	uint64_t lsn = w->next_lsn;
	if (rc == 0)
		rc = write_frame(w, type, payload, len, lsn);
	if (rc == 0)
		__atomic_add_fetch(&w->bytes_appended, WAL_FRAME_HEADER_SIZE + len, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&w->append_mu);
	if (rc == 0 && lsn_out)
		*lsn_out = lsn;
	return rc;
}

uint64_t wal_rotations(const wal_t *w) { return __atomic_load_n(&w->rotations, __ATOMIC_RELAXED); }
uint64_t wal_id(const wal_t *w) { return w->wal_id; }
uint64_t wal_bytes_appended(const wal_t *w) { return __atomic_load_n(&w->bytes_appended, __ATOMIC_RELAXED); }

void wal_segment(wal_t *w, char *buf, size_t cap)
{
	pthread_mutex_lock(&w->append_mu);
	snprintf(buf, cap, "%s", w->segname);
	pthread_mutex_unlock(&w->append_mu);
}

static int sync_now(wal_t *w, int force);

/* For the checkpoint module's reclamation (view.c): appends wait while it
 * holds the writer, so the active segment stays the one it names. */
int wal_hold(wal_t *w, char *active, size_t cap)
{
	pthread_mutex_lock(&w->append_mu);
	snprintf(active, cap, "%s", w->segname);
	return 0;
}

void wal_release(wal_t *w) { pthread_mutex_unlock(&w->append_mu); }
int wal_sync_held(wal_t *w) { return sync_now(w, 1); }
const char *wal_waldir(const wal_t *w) { return w->waldir; }

static int sync_now(wal_t *w, int force)
{
	char msg[512];
	uint64_t target;
	int fd, rc;

	if (w->o.sync == WAL_SYNC_ASYNC && !force)
		return w->stopped ? stopped_err(w) : 0;
	pthread_mutex_lock(&w->mu);
	while (w->syncing)
		pthread_cond_wait(&w->cv, &w->mu);
	if (w->stopped) {
		pthread_mutex_unlock(&w->mu);
		return stopped_err(w);
	}
	target = w->last_lsn;
	if (__atomic_load_n(&w->durable, __ATOMIC_ACQUIRE) >= target) {
		pthread_mutex_unlock(&w->mu);
		return 0;
	}
	fd = w->fd;
	w->syncing = 1;
	pthread_mutex_unlock(&w->mu);

	rc = do_fsync(w, fd);
	int e = errno;

	pthread_mutex_lock(&w->mu);
	w->syncing = 0;
	if (rc != 0) {
		snprintf(msg, sizeof msg, "segment '%s': %s failed: %s; nothing after LSN %llu is acknowledged",
		         w->segname, w->o.sync == WAL_SYNC_FSYNC ? "fsync" : "fdatasync", strerror(e),
		         (unsigned long long)w->durable);
		rc = stop(w, WAL_ESYNC, msg);
	} else {
		__atomic_store_n(&w->durable, target, __ATOMIC_RELEASE);
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int wal_sync(wal_t *w) { return sync_now(w, 0); }

int wal_sync_through(wal_t *w, uint64_t lsn)
{
	if (__atomic_load_n(&w->durable, __ATOMIC_ACQUIRE) >= lsn)
		return 0;
	return sync_now(w, 1);
}

uint64_t wal_last_lsn(const wal_t *w) { return __atomic_load_n(&w->next_lsn, __ATOMIC_ACQUIRE) - 1; }
uint64_t wal_durable_lsn(const wal_t *w) { return __atomic_load_n(&w->durable, __ATOMIC_ACQUIRE); }
const char *wal_torn_note(const wal_t *w) { return w->torn_note[0] ? w->torn_note : NULL; }
uint64_t wal_open_checkpoint(const wal_t *w) { return w->open_ckpt; }

/* The WAL has a torn tail: keep its bytes in quarantine, then cut them. */
static int cut_torn_tail(wal_t *w, const struct wal_tail *t)
{
	char path[PATH_MAX + 80], stamp[64];
	int fd, rc;
	uint64_t len = t->newest_size - t->newest_end;

	char rel[80];
	snprintf(path, sizeof path, "%s/%s", w->waldir, t->newest);
	snprintf(rel, sizeof rel, "wal/%s", t->newest);
	rc = fs_quarantine(w->dir, path, rel, "writer", "cut", t->newest_end, len,
	                   "torn tail cut when a writer opened the WAL", stamp, sizeof stamp);
	if (rc)
		return rc;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return wal_seterr(wal_errno_code(errno), "cannot open '%s': %s", path, strerror(errno));
	if (ftruncate(fd, (off_t)t->newest_end) != 0 || fsync(fd) != 0) {
		int e = errno;
		close(fd);
		return wal_seterr(WAL_EIO, "cannot cut the torn tail of '%s': %s", path, strerror(e));
	}
	close(fd);
	snprintf(w->torn_note, sizeof w->torn_note,
	         "segment '%s' offset %llu: cut a torn tail of %llu bytes (never acknowledged); saved in quarantine/%s",
	         t->newest, (unsigned long long)t->newest_end, (unsigned long long)len, stamp);
	return 0;
}

/* Record LSN first..last, which the WAL no longer holds and must not hand
 * out again, as one LOSS entry, synced before anything follows it; the WAL
 * goes on past it. */
static int record_loss(wal_t *w, uint64_t last, const char *why)
{
	unsigned char buf[600];
	struct wal_loss l = { w->next_lsn, last, { why, strlen(why) } };
	size_t n = wal_loss_encode(buf, sizeof buf, &l);
	int rc;

	if (!n)
		return wal_seterr(WAL_EINVAL, "loss record too large");
	if ((rc = write_frame(w, WAL_T_LOSS, buf, n, w->next_lsn)) != 0)
		return rc;
	pthread_mutex_lock(&w->mu);
	w->last_lsn = last;
	pthread_mutex_unlock(&w->mu);
	__atomic_store_n(&w->next_lsn, last + 1, __ATOMIC_RELEASE);
	return sync_now(w, 1);
}

/* What the directory shows beyond LAST, the WAL's last LSN (hwm.c),
 * gathered before the writer changes any file: a lost end is refused
 * unless a salvage records it. */
static int check_hwm(wal_t *w, const struct wal_segment_info *newest, uint64_t last, struct wal_hwm *h)
{
	int rc;

	if ((rc = wal_hwm_gather(w->dir, w->wal_id, h)) != 0)
		return rc;
	wal_hwm_seal(w->waldir, newest, w->wal_id, last, h);
	if (h->hard > last && !w->o.record_lost_end)
		return wal_seterr(WAL_ECORRUPT,
		                  "the WAL ends at LSN %llu but %s shows LSN %llu: LSN %llu-%llu are missing from the "
		                  "WAL; refusing to append (run 'walctl verify -d %s', then 'walctl recover --mode "
		                  "salvage -d %s')",
		                  (unsigned long long)last, h->hard_what, (unsigned long long)h->hard,
		                  (unsigned long long)(last + 1), (unsigned long long)h->hard, w->dir, w->dir);
	return 0;
}

/* Record what check_hwm found past the WAL's end: a lost end (for a
 * salvage) or LSNs a repair removed, as a known loss.  Either way the next
 * LSN is past them all. */
static int pass_hwm(wal_t *w, const struct wal_hwm *h)
{
	char why[512];
	uint64_t last = w->next_lsn - 1;

	if (h->hard > last && h->hard >= h->removed) {
		snprintf(why, sizeof why, "the WAL ended below what %s shows", h->hard_what);
		return record_loss(w, h->hard, why);
	}
	if (h->removed > last) {
		snprintf(why, sizeof why, "removed by %s", h->removed_what);
		return record_loss(w, h->removed, why);
	}
	return 0;
}

/* Remove the NAME.next files a rotation cut off before its SEAL left: they
 * hold a segment header and nothing else. */
static int drop_stale_next(wal_t *w)
{
	DIR *d = opendir(w->waldir);
	struct dirent *de;
	int gone = 0;

	if (!d)
		return wal_seterr(wal_errno_code(errno), "cannot open '%s': %s", w->waldir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		char path[PATH_MAX + 300];
		struct stat st;
		size_t n = strlen(de->d_name);
		if (n != 25 || strcmp(de->d_name + 20, ".next") != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", w->waldir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == WAL_SEG_HEADER_SIZE &&
		    unlink(path) == 0)
			gone++;
	}
	closedir(d);
	return gone ? fs_fsync_dir(w->waldir) : 0;
}

/* Open the WAL a scan found (wal_scan_found) for appending: cut its torn
 * tail, and go on in its newest segment, or in a new one after it when it
 * is sealed. */
static int open_found(wal_t *w, const struct wal_found *f)
{
	const struct wal_tail *t = &f->t;
	struct wal_hwm h;
	int rc = 0;

	if (t->newest[0] == 0) {
		if ((rc = wal_hwm_gather(w->dir, 0, &h)) != 0)
			return rc;
		if (h.hard && w->o.record_lost_end) {
			/* a salvage: the WAL storage names goes on, past what it shows */
			char why[512];
			w->wal_id = h.hard_wal_id ? h.hard_wal_id : wal_random64();
			w->seed = wal_seed(w->wal_id);
			w->next_lsn = 1;
			if ((rc = create_segment(w, 1, 1, 0)) != 0)
				return rc;
			snprintf(why, sizeof why, "the WAL was gone; %s shows LSN %llu", h.hard_what,
			         (unsigned long long)h.hard);
			return record_loss(w, h.hard, why);
		}
		if (h.hard)
			/* storage or a cursor names LSNs of a WAL that is gone */
			return wal_seterr(WAL_ECORRUPT,
			                  "the WAL has no segment but %s shows LSN %llu: LSN 1-%llu are missing from "
			                  "the WAL; refusing to start a new one that would hand them out again (run "
			                  "'walctl verify -d %s')",
			                  h.hard_what, (unsigned long long)h.hard, (unsigned long long)h.hard, w->dir);
		w->wal_id = wal_random64();
		w->seed = wal_seed(w->wal_id);
		rc = create_segment(w, 1, 1, 0);
		w->next_lsn = 1;
		return rc;
	}
	w->wal_id = t->wal_id;
	w->seed = wal_seed(w->wal_id);
	w->open_ckpt = f->ckpt;
	const struct wal_segment_info *si = &f->newest;
	uint64_t next = t->last_lsn ? t->last_lsn + 1 : si->first_lsn;
	if ((rc = check_hwm(w, si, next - 1, &h)) != 0)
		return rc;
	if (f->torn && (rc = cut_torn_tail(w, t)) != 0)
		return rc;
	w->next_lsn = next;
	w->last_lsn = t->last_lsn;
	if (t->newest_sealed) {
		/* (over a NAME.next a rotation cut off before its rename left) */
		rc = create_segment(w, si->seq + 1, w->next_lsn, t->last_lsn);
	} else {
		char path[PATH_MAX + 80];
		snprintf(path, sizeof path, "%s/%s", w->waldir, t->newest);
		w->fd = open(path, O_WRONLY | O_CLOEXEC);
		if (w->fd < 0)
			return wal_seterr(wal_errno_code(errno), "cannot open segment '%s': %s", path, strerror(errno));
		/* What is on disk now becomes durable before anything new is added. */
		if (do_fsync(w, w->fd) != 0)
			return wal_seterr(WAL_ESYNC, "segment '%s': sync failed: %s", path, strerror(errno));
		snprintf(w->segname, sizeof w->segname, "%s", t->newest);
		w->seg_first = si->first_lsn;
		w->seg_seq = si->seq;
		w->seg_off = t->newest_end;
		w->seg_entries = si->entries;
		w->seg_created = si->created_ns;
	}
	if (rc == 0)
		rc = drop_stale_next(w);
	w->durable = t->last_lsn;
	return rc ? rc : pass_hwm(w, &h);
}

int wal_scan_found(wal_scan_t *s, struct wal_found *f)
{
	int rc;

	memset(f, 0, sizeof *f);
	if ((rc = wal_scan_tail(s, &f->t)) != 0)
		return rc;
	if (wal_scan_nsegments(s))
		f->newest = *wal_scan_segment(s, wal_scan_nsegments(s) - 1);
	f->ckpt = wal_scan_checkpoint(s);
	f->torn = (wal_scan_class(s) & WAL_CLASS_TORN) != 0;
	f->damage = (wal_scan_class(s) & WAL_CLASS_DAMAGE) != 0;
	return 0;
}

static int open_existing(wal_t *w)
{
	const char *paths[1] = { w->dir };
	struct wal_scan_opts so = { .max_entry_size = w->o.max_entry_size };
	wal_scan_t *s = NULL;
	struct wal_found f;
	int rc;

	if ((rc = wal_scan_open(&s, paths, 1, &so)) != 0)
		return rc;
	if (w->o.visit) {
		struct wal_entry e;
		while ((rc = wal_scan_next(s, &e)) == 1)
			if ((rc = w->o.visit(w->o.visit_ctx, s, &e)) != 0)
				goto out;
		if (rc < 0)
			goto out;
	}
	if ((rc = wal_scan_found(s, &f)) != 0)
		goto out;
	if (f.damage) {
		const struct wal_finding *fd = wal_scan_finding(s, 0);
		for (size_t i = 0; i < wal_scan_nfindings(s); i++)
			if (wal_scan_finding(s, i)->cls == WAL_CLASS_DAMAGE) {
				fd = wal_scan_finding(s, i);
				break;
			}
		if (!fd) {
			rc = wal_seterr(WAL_ECORRUPT, "damage to durable data; refusing to append");
			goto out;
		}
		rc = wal_seterr(WAL_ECORRUPT,
		                "segment '%s' offset %llu: %s; refusing to append (run 'walctl verify -d %s', then "
		                "'walctl recover --mode salvage -d %s')",
		                fd->segment, (unsigned long long)fd->offset, fd->message, w->dir, w->dir);
		goto out;
	}
	rc = open_found(w, &f);
out:
	wal_scan_close(s);
	return rc;
}

/* 1 if the WAL is still what f found, with its torn tail cut since: the
 * newest segment ends at the end of its last valid frame and none came
 * after it.  The caller holds DIR/LOCK, so no writer can have changed the
 * frames before. */
static int still_found(wal_t *w, const struct wal_found *f)
{
	char path[PATH_MAX + 80];
	struct stat st;
	DIR *d;
	struct dirent *de;
	uint64_t first;
	int later = 0;

	if (f->damage || !f->t.newest[0])
		return 0;
	snprintf(path, sizeof path, "%s/%s", w->waldir, f->t.newest);
	if (stat(path, &st) != 0 || (uint64_t)st.st_size != f->t.newest_end || !(d = opendir(w->waldir)))
		return 0;
	while ((de = readdir(d)))
		later |= seg_name_parse(de->d_name, &first) && strcmp(de->d_name, f->t.newest) > 0;
	closedir(d);
	return !later;
}

int wal_open(wal_t **out, const char *dir, const struct wal_opts *opts) { return wal_open_found(out, dir, opts, NULL); }

int wal_open_found(wal_t **out, const char *dir, const struct wal_opts *opts, const struct wal_found *f)
{
	wal_t *w;
	int rc;

	*out = NULL;
	w = calloc(1, sizeof *w);
	if (!w)
		return wal_seterr(WAL_ENOMEM, "out of memory");
	if (opts)
		w->o = *opts;
	if (!w->o.max_segment_size)
		w->o.max_segment_size = 128u << 20;
	if (!w->o.max_segment_age_ns)
		w->o.max_segment_age_ns = 3600ll * 1000000000;
	if (!w->o.max_entry_size)
		w->o.max_entry_size = WAL_DEFAULT_MAX_ENTRY;
	w->lockfd = w->fd = -1;
	struct wal_found cut = f ? *f : (struct wal_found){ 0 };
	cut.torn = 0; /* still_found: it is cut */
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_init(&w->append_mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	snprintf(w->dir, sizeof w->dir, "%s", dir);
	snprintf(w->waldir, sizeof w->waldir, "%s/wal", dir);
	if ((rc = fs_mkdir_p(w->dir)) != 0 || (rc = fs_lock(w->dir, &w->lockfd)) != 0 ||
	    (rc = fs_mkdir_p(w->waldir)) != 0 ||
	    (rc = f && still_found(w, f) ? open_found(w, &cut) : open_existing(w)) != 0) {
		char keep[512];
		snprintf(keep, sizeof keep, "%s", wal_errmsg());
		w->stopped = 1;
		wal_close(w);
		return wal_seterr(rc, "%s", keep);
	}
	w->o.visit = NULL; /* the caller's, for the open alone */
	*out = w;
	return 0;
}

int wal_close(wal_t *w)
{
	int rc = 0;

	if (!w)
		return 0;
	if (!w->stopped && w->fd >= 0) {
		rc = sync_now(w, 1);
		if (rc == 0)
			rc = write_frame(w, WAL_T_CLOSE, "", 0, w->next_lsn);
		if (rc == 0)
			rc = sync_now(w, 1);
	} else if (w->stopped && w->stop_err) {
		rc = WAL_ESTOPPED;
		wal_seterr(rc, "%s", w->stop_msg);
	}
	if (w->fd >= 0)
		close(w->fd);
	if (w->lockfd >= 0)
		close(w->lockfd);
	pthread_mutex_destroy(&w->mu);
	pthread_mutex_destroy(&w->append_mu);
	pthread_cond_destroy(&w->cv);
	free(w);
	return rc;
}

void wal_abandon(wal_t *w)
{
	if (!w)
		return;
	w->stopped = 1;
	w->stop_err = 0;
	wal_close(w);
}
