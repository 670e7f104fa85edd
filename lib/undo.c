/*
 * undo.c - puts back what a repair changed, byte for byte, from the
 * quarantine it recorded, once the directory is still as the repair left
 * it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct line {
	char file[330], op[16], saved[1000], news[64];
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
	int rc = wal_q_read_whole(path, &b, &n);
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

/* Put back a partition a repair set aside: the replay's own were removed. */
static int restore_partition(const char *datadir, const char *qdir, const struct line *x)
{
	char dir[PATH_MAX + 400], sha[65];
	unsigned char *b;
	size_t n;
	const char *slash = strrchr(x->file, '/');
	int rc;

	if (strncmp(x->file, "data/", 5) != 0 || !slash || strstr(x->file, "/../") || !x->saved[0])
		return wal_seterr(WAL_ECORRUPT, "the MANIFEST names '%s' as a partition set aside", x->file);
	if ((rc = wal_q_read_saved(qdir, x->saved, &b, &n)) != 0)
		return rc;
	wal_q_sha_of(b, n, sha);
	snprintf(dir, sizeof dir, "%s/%.*s", datadir, (int)(slash - x->file), x->file);
	if (strcmp(sha, x->before_sha) != 0)
		rc = wal_seterr(WAL_ECORRUPT, "the quarantined copy of '%s' does not match its digest", x->file);
	else if ((rc = fs_mkdir_p(dir)) == 0)
		rc = fs_write_atomic(dir, slash + 1, b, n);
	free(b);
	return rc;
}

/* An undo cut short goes on only if every segment is in a state the
 * repair or the undo itself left: as the repair left it (AFTER), cut back
 * to where the replay found it (REPLAY), or put back as it was (the
 * MANIFEST's before_size and before_sha256).  A segment a writer appended
 * to since would lose what it appended. */
static int resume_known(const char *waldir, const char *qdir, const char *stamp, const char *mf, const char *after)
{
	char *rp = NULL, path[PATH_MAX + 300], sha[65];
	DIR *d = opendir(waldir);
	struct dirent *de;
	uint64_t l, size;
	int rc = 0;

	if (!d)
		return wal_seterr(wal_errno_code(errno), "cannot open '%s': %s", waldir, strerror(errno));
	if (read_text(qdir, "REPLAY", &rp) != 0)
		rp = NULL;
	while (rc == 0 && (de = readdir(d))) {
		char file[320];
		struct stat st;
		int ok = 0;
		if (!seg_name_parse(de->d_name, &l))
			continue;
		snprintf(file, sizeof file, "wal/%s", de->d_name);
		snprintf(path, sizeof path, "%s/%s", waldir, de->d_name);
		if (stat(path, &st) != 0 || wal_q_sha_file(path, &size, sha) != 0) {
			rc = wal_seterr(WAL_EIO, "cannot read '%s': %s", path, strerror(errno));
			break;
		}
		for (int pass = 0; pass < 2 && !ok; pass++)
			for (const char *t = pass ? mf : after; t && *t && !ok;
			     t = strchr(t, '\n') ? strchr(t, '\n') + 1 : NULL) {
				struct line x;
				parse_line(t, &x);
				if (strcmp(x.file, file) != 0)
					continue;
				ok = pass ? x.before_sha[0] && size == x.before_size && !strcmp(sha, x.before_sha)
				          : size == x.size && (!x.sha[0] || !strcmp(sha, x.sha));
			}
		if (!ok && rp && replay_size(rp, de->d_name) == (long long)size)
			ok = 1;
		if (!ok)
			rc = wal_seterr(WAL_ECORRUPT,
			                "the undo of repair '%s' was cut short and the WAL has moved on since: '%s' is "
			                "neither as the repair left it nor as it was before",
			                stamp, file);
	}
	closedir(d);
	free(rp);
	return rc;
}

/* The cursors a truncate rewound must be where it left them: a consumer
 * that delivered on since would have its progress taken back. */
static int rewinds_unmoved(const char *datadir, const char *stamp, const char *mf)
{
	for (const char *l = mf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		struct wal_q_field f[32];
		char buf[4096];
		struct wal_consumer c;
		int n = wal_q_parse(l, f, 32, buf, sizeof buf);
		const char *op = n > 0 ? wal_q_get(f, (size_t)n, "op") : NULL;
		const char *file = n > 0 ? wal_q_get(f, (size_t)n, "file") : NULL;
		if (!op || strcmp(op, "rewind") != 0 || !file || strncmp(file, "consumers/", 10) != 0)
			continue;
		uint64_t to = num_field(f, n, "rewound_to");
		int rc = wal_consumer_get(datadir, file + 10, &c);
		if (rc == 0 && c.lsn != to)
			return wal_seterr(WAL_ECORRUPT,
			                  "the consumers have moved on since repair '%s': consumer '%s' is at LSN %llu, "
			                  "not LSN %llu where the repair rewound it",
			                  stamp, c.name, (unsigned long long)c.lsn, (unsigned long long)to);
		if (rc != 0 && rc != WAL_ENOENT)
			return rc;
	}
	return 0;
}

/* The live consumers past the LSN the WAL ended at before the repair
 * (its MANIFEST's wal_last_lsn): they handed on what the repair wrote,
 * which undoing it takes back.  Refused, naming them, unless REWIND: then
 * they are listed in *out, to be rewound to that LSN.  The consumers the
 * repair rewound itself get their cursors back instead. */
static int rewound_by_repair(void *mf, const char *name)
{
	char file[WAL_CONSUMER_NAME_MAX + 16];
	snprintf(file, sizeof file, "consumers/%s", name);
	return any_record(mf, "file", file, "rewound_to");
}

static int passed_consumers(const char *datadir, const char *stamp, const char *mf, int rewind,
                            struct wal_consumer_rewind **out, size_t *nout)
{
	const char *at = strstr(mf, "\nwal_last_lsn: ");
	char names[600];

	*out = NULL;
	*nout = 0;
	if (!at)
		return 0; /* a MANIFEST from before wal_last_lsn was recorded */
	uint64_t end = strtoull(at + 15, NULL, 10);
	int rc = wal_consumers_past(datadir, end, rewound_by_repair, (void *)(uintptr_t)mf, out, nout, names,
	                            sizeof names);
	if (rc || !*nout || rewind)
		return rc;
	free(*out);
	*out = NULL;
	*nout = 0;
	return wal_seterr(WAL_ECORRUPT,
	                  "consumers have handed on entries after LSN %llu, which undoing repair '%s' takes back:%s; "
	                  "pass --rewind-consumers to rewind them to LSN %llu, or 'walctl consumers drop' them",
	                  (unsigned long long)end, stamp, names, (unsigned long long)end);
}

/* Put back a cursor a truncate rewound, as it was. */
static int restore_cursor(const char *datadir, const char *qdir, const struct line *x)
{
	char dir[PATH_MAX + 16], sha[65];
	unsigned char *b;
	size_t n;
	const char *name = x->file + 10;
	int rc;

	if (strncmp(x->file, "consumers/", 10) != 0 || !wal_consumer_name_ok(name) || !x->saved[0])
		return wal_seterr(WAL_ECORRUPT, "the MANIFEST names '%s' as a cursor rewound", x->file);
	if ((rc = wal_q_read_saved(qdir, x->saved, &b, &n)) != 0)
		return rc;
	wal_q_sha_of(b, n, sha);
	snprintf(dir, sizeof dir, "%s/consumers", datadir);
	rc = strcmp(sha, x->before_sha) != 0
	         ? wal_seterr(WAL_ECORRUPT, "the quarantined copy of '%s' does not match its digest", x->file)
	         : fs_write_atomic(dir, name, b, n);
	free(b);
	return rc;
}

int wal_undo(const char *datadir, const char *stamp, const struct wal_undo_opts *uo, struct wal_undo_result *res)
{
	int apply = uo->apply;
	int *already = &res->already;
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
	/* An undo cut short (a power cut, a kill) left UNDOING: every step
	 * below puts a file back whole from what the repair saved, or removes
	 * one it created, so running them all again from the start completes
	 * it, whatever state the files were left in. */
	char marker[PATH_MAX + 120];
	snprintf(marker, sizeof marker, "%s/UNDOING", qdir);
	int resuming = access(marker, F_OK) == 0;
	/* Has the WAL moved on?  Every file must be as the repair left it, and
	 * no segment may have been added. */
	for (char *l = resuming ? NULL : after; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		struct line x;
		parse_line(l, &x);
		snprintf(path, sizeof path, "%s/%s", datadir, x.file);
		if (x.absent || x.created)
			continue;
		struct stat st;
		int same = stat(path, &st) == 0 && (uint64_t)st.st_size == x.size;
		if (same && x.sha[0])
			same = wal_q_sha_file(path, &size, sha) == 0 && strcmp(sha, x.sha) == 0;
		if (same && x.tail_from) {
			size_t got = 0, n2 = (size_t)(x.size - x.tail_from);
			int fd;
			if (fs_open_file(path, O_RDONLY, &fd) != 0)
				fd = -1;
			unsigned char *t = malloc(n2 ? n2 : 1);
			same = fd >= 0 && t && fs_read_all(fd, t, n2, x.tail_from, &got) == 0 && got == n2;
			if (same) {
				wal_q_sha_of(t, n2, sha);
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
	if (!resuming) {
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
	if (!resuming && (rc = rewinds_unmoved(datadir, stamp, mf)) != 0)
		goto out;
	if (resuming && (rc = resume_known(waldir, qdir, stamp, mf, after)) != 0)
		goto out;
	if ((rc = passed_consumers(datadir, stamp, mf, uo->rewind_consumers, &res->rewound, &res->nrewound)) != 0)
		goto out;
	if (!apply)
		goto out;
	if (!resuming && (rc = fs_write_atomic(qdir, "UNDOING", "undoing\n", 8)) != 0)
		goto out;
	/* Cursors back before anything is taken out: were the power to fail
	 * between the two, a consumer hands entries on again, never past the
	 * WAL's end. */
	for (size_t i = 0; rc == 0 && i < res->nrewound; i++)
		rc = wal_consumer_rewind(datadir, res->rewound[i].name, res->rewound[i].to);
	if (rc)
		goto out;

	/* Undo the replay: the partitions AFTER says it created go (those it
	 * stored again up to the checkpoint too), and no other: a partition
	 * above the checkpoint that it found may be the only copy of its points.
	 * Segments return to their sizes. */
	if (read_text(qdir, "REPLAY", &rp) == 0) {
		/* every point of them stays in the WAL, synced first */
		if ((rc = wal_sync_segments(datadir)) != 0)
			goto out;
		for (char *l = after; rc == 0 && l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
			struct line x;
			parse_line(l, &x);
			const char *slash = strrchr(x.file, '/');
			if (x.created && !strncmp(x.file, "data/", 5) && slash && !strstr(x.file, "/../")) {
				snprintf(path, sizeof path, "%s/%.*s", datadir, (int)(slash - x.file), x.file);
				rc = fs_unlink_synced(path, slash + 1);
			}
		}
		if (rc)
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
				rc = fs_unlink_synced(waldir, de->d_name);
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
		if (!strcmp(x.op, "set-aside")) {
			rc = restore_partition(datadir, qdir, &x);
			continue;
		}
		if (!strcmp(x.op, "rewind")) {
			rc = restore_cursor(datadir, qdir, &x);
			continue;
		}
		if (strncmp(x.file, "wal/", 4) != 0 || !x.file[4] || !x.saved[0])
			continue;
		const char *name = x.file + 4;
		if ((rc = wal_q_read_saved(qdir, x.saved, &saved, &ns)) != 0)
			break;
		if (!strcmp(x.op, "cut")) {
			snprintf(path, sizeof path, "%s/%s", waldir, name);
			if ((rc = wal_q_read_whole(path, &cur, &nc)) == 0) {
				unsigned char *whole = malloc(x.offset + ns + 1);
				if (!whole || nc < x.offset) {
					rc = wal_seterr(WAL_EIO, "segment '%s' is shorter than the cut", name);
				} else {
					memcpy(whole, cur, x.offset);
					memcpy(whole + x.offset, saved, ns);
					wal_q_sha_of(whole, x.offset + ns, sha);
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
			wal_q_sha_of(saved, ns, sha);
			if (strcmp(sha, x.before_sha) != 0)
				rc = wal_seterr(WAL_ECORRUPT, "the quarantined copy of '%s' does not match its digest",
				                name);
			char was[80];
			snprintf(was, sizeof was, "wal/%s", x.news);
			/* a new name that is also an old one (a swap) is written over
			 * by that one's restore, not removed */
			if (rc == 0 && x.news[0] && strcmp(x.news, name) != 0 && !any_record(mf, "file", was, NULL))
				rc = fs_unlink_synced(waldir, x.news);
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
