/*
 * consumers.c - named consumers of a data directory and their cursors.
 *
 * DIR/consumers/NAME is one consumer: the highest LSN it has delivered
 * onward (its cursor) and whether it is live or lost.  The file is text,
 * rewritten whole on every change (temp, fsync, rename, fsync directory),
 * so a power cut leaves the old cursor or the new one, never a mix:
 *
 *   walctl-consumer 1
 *   lsn=1234
 *   state=live            (or lost)
 *   reason=...            (lost: why, to the end of the line)
 *
 * A live consumer holds back reclamation: no segment holding an LSN above
 * its cursor is removed (view.c, repair.c) until the WAL after the cursor
 * grows past the lag limit; then the consumer is marked lost instead.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define MAGIC "walctl-consumer 1\n"

int wal_consumer_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > WAL_CONSUMER_NAME_MAX || name[0] == '.' || name[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static void cdir(char *out, size_t cap, const char *datadir) { snprintf(out, cap, "%s/consumers", datadir); }

static int bad_name(const char *name)
{
	return wal_seterr(WAL_EINVAL,
	                  "invalid consumer name '%s': 1 to %d letters, digits, '.', '_' or '-', not starting with "
	                  "'.' or '-'",
	                  name, WAL_CONSUMER_NAME_MAX);
}

static int put(const char *datadir, const struct wal_consumer *c)
{
	char dir[PATH_MAX], buf[512];
	int n;

	cdir(dir, sizeof dir, datadir);
	if (c->lost)
		n = snprintf(buf, sizeof buf, MAGIC "lsn=%" PRIu64 "\nstate=lost\nreason=%s\n", c->lsn, c->why);
	else
		n = snprintf(buf, sizeof buf, MAGIC "lsn=%" PRIu64 "\nstate=live\n", c->lsn);
	return fs_write_atomic(dir, c->name, buf, (size_t)n);
}

/* Parse a cursor file's text into *c (whose name is set). */
static int parse(const char *path, char *text, struct wal_consumer *c)
{
	char *line, *save = NULL;
	int have_lsn = 0, have_state = 0;

	if (strncmp(text, MAGIC, strlen(MAGIC)) != 0)
		return wal_seterr(WAL_ECORRUPT, "'%s' is not a consumer cursor (no '%.*s' line)", path,
		                  (int)strlen(MAGIC) - 1, MAGIC);
	for (line = strtok_r(text + strlen(MAGIC), "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "lsn=", 4)) {
			/* plain decimal digits: strtoull alone takes "-1" (2^64 - 1),
			 * "+5" and leading blanks */
			const char *d = line + 4;
			uint64_t v = 0;
			size_t k = 0;
			for (; d[k] >= '0' && d[k] <= '9'; k++) {
				if (v > (UINT64_MAX - (uint64_t)(d[k] - '0')) / 10)
					break;
				v = v * 10 + (uint64_t)(d[k] - '0');
			}
			if (k == 0 || d[k])
				return wal_seterr(WAL_ECORRUPT, "'%s': bad cursor '%s': not a plain decimal LSN", path,
				                  line);
			c->lsn = v;
			have_lsn = 1;
		} else if (!strcmp(line, "state=live")) {
			c->lost = 0;
			have_state = 1;
		} else if (!strcmp(line, "state=lost")) {
			c->lost = 1;
			have_state = 1;
		} else if (!strncmp(line, "reason=", 7)) {
			snprintf(c->why, sizeof c->why, "%s", line + 7);
		}
	}
	if (!have_lsn || !have_state)
		return wal_seterr(WAL_ECORRUPT, "'%s': no %s line", path, have_lsn ? "state=" : "lsn=");
	return 0;
}

int wal_consumer_get(const char *datadir, const char *name, struct wal_consumer *c)
{
	char path[PATH_MAX + 80], text[1024];
	size_t got = 0;
	int fd, rc;

	if (!wal_consumer_name_ok(name))
		return bad_name(name);
	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, "%s", name);
	snprintf(path, sizeof path, "%s/consumers/%s", datadir, name);
	if ((rc = fs_open_file(path, O_RDONLY, &fd)) != 0) {
		if (rc == WAL_ENOENT)
			return wal_seterr(WAL_ENOENT, "no consumer '%s' in '%s'", name, datadir);
		return rc;
	}
	rc = fs_read_all(fd, text, sizeof text - 1, 0, &got);
	close(fd);
	if (rc)
		return wal_seterr(rc, "cannot read '%s': %s", path, strerror(errno));
	text[got] = 0;
	return parse(path, text, c);
}

int wal_consumer_add(const char *datadir, const char *name, uint64_t lsn)
{
	char dir[PATH_MAX], path[PATH_MAX + 80];
	struct wal_consumer c = { .lsn = lsn };
	struct stat st;
	int rc;

	if (!wal_consumer_name_ok(name))
		return bad_name(name);
	snprintf(c.name, sizeof c.name, "%s", name);
	cdir(dir, sizeof dir, datadir);
	if ((rc = fs_mkdir_p(dir)) != 0)
		return rc;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (stat(path, &st) == 0)
		return wal_seterr(WAL_EINVAL, "consumer '%s' already exists in '%s'", name, datadir);
	return put(datadir, &c);
}

int wal_consumer_advance(const char *datadir, const char *name, uint64_t lsn)
{
	struct wal_consumer c;
	int rc;

	if ((rc = wal_consumer_get(datadir, name, &c)) != 0)
		return rc;
	if (c.lost)
		return wal_seterr(WAL_EINVAL, "consumer '%s' is lost (%s): drop it and add it again", name, c.why);
	if (lsn < c.lsn)
		return wal_seterr(WAL_EINVAL, "consumer '%s': cursor %" PRIu64 " would go back to %" PRIu64, name,
		                  c.lsn, lsn);
	if (lsn == c.lsn)
		return 0;
	c.lsn = lsn;
	return put(datadir, &c);
}

int wal_consumer_rewind(const char *datadir, const char *name, uint64_t lsn)
{
	struct wal_consumer c;
	int rc;

	if ((rc = wal_consumer_get(datadir, name, &c)) != 0)
		return rc;
	if (c.lsn <= lsn)
		return 0;
	c.lsn = lsn;
	return put(datadir, &c);
}

int wal_consumer_lose(const char *datadir, const char *name, const char *why)
{
	struct wal_consumer c;
	int rc;

	if ((rc = wal_consumer_get(datadir, name, &c)) != 0)
		return rc;
	c.lost = 1;
	/* one line */
	snprintf(c.why, sizeof c.why, "%s", why);
	for (char *p = c.why; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return put(datadir, &c);
}

int wal_consumer_drop(const char *datadir, const char *name, char *stamp, size_t cap)
{
	char dir[PATH_MAX], path[PATH_MAX + 80], rel[WAL_CONSUMER_NAME_MAX + 16];
	struct stat st;
	int rc;

	stamp[0] = 0;
	if (!wal_consumer_name_ok(name))
		return bad_name(name);
	cdir(dir, sizeof dir, datadir);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (stat(path, &st) != 0) {
		if (errno == ENOENT)
			return wal_seterr(WAL_ENOENT, "no consumer '%s' in '%s'", name, datadir);
		return wal_seterr(wal_errno_code(errno), "cannot read '%s': %s", path, strerror(errno));
	}
	/* the cursor is kept in the quarantine, synced, before it goes */
	snprintf(rel, sizeof rel, "consumers/%s", name);
	if ((rc = fs_quarantine(datadir, path, rel, "consumers drop", "drop", 0, (uint64_t)st.st_size,
	                        "consumer dropped: its cursor no longer holds back reclamation", stamp, cap)) != 0)
		return rc;
	return fs_unlink_synced(dir, name);
}

int wal_consumer_check_end(const struct wal_consumer *c, uint64_t wal_last)
{
	if (c->lsn <= wal_last)
		return 0;
	return wal_seterr(WAL_ECORRUPT,
	                  "consumer '%s' (file 'consumers/%s'): cursor LSN %" PRIu64 " lies past the WAL's end at LSN %" PRIu64
	                  ": LSN %" PRIu64 "-%" PRIu64 ", which it says were delivered, are not in the WAL",
	                  c->name, c->name, c->lsn, wal_last, wal_last + 1, c->lsn);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct wal_consumer_file *)a)->c.name, ((const struct wal_consumer_file *)b)->c.name);
}

int wal_consumers_scan(const char *datadir, struct wal_consumer_file **out, size_t *n)
{
	char dir[PATH_MAX];
	struct wal_consumer_file *v = NULL;
	size_t cap = 0;
	DIR *d;
	struct dirent *de;
	int rc = 0;

	*out = NULL;
	*n = 0;
	cdir(dir, sizeof dir, datadir);
	if (!(d = opendir(dir)))
		return errno == ENOENT
		           ? 0
		           : wal_seterr(wal_errno_code(errno), "cannot open '%s': %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		if (!wal_consumer_name_ok(de->d_name))
			continue; /* ., .., temporary files */
		if (*n == cap && wal_grow((void **)&v, &cap, *n + 1, sizeof *v) != 0) {
			rc = WAL_ENOMEM;
			break;
		}
		struct wal_consumer_file *f = &v[*n];
		memset(f, 0, sizeof *f);
		f->rc = wal_consumer_get(datadir, de->d_name, &f->c);
		if (f->rc == WAL_ENOENT) /* dropped meanwhile */
			continue;
		if (f->rc)
			snprintf(f->why, sizeof f->why, "%s", wal_errmsg());
		(*n)++;
	}
	closedir(d);
	if (rc) {
		free(v);
		*n = 0;
		return rc;
	}
	if (*n)
		qsort(v, *n, sizeof *v, by_name);
	*out = v;
	return 0;
}

int wal_consumers_list(const char *datadir, struct wal_consumer **out, size_t *n)
{
	struct wal_consumer_file *f;
	struct wal_consumer *v;
	size_t nf;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = wal_consumers_scan(datadir, &f, &nf)) != 0)
		return rc;
	for (size_t i = 0; i < nf; i++)
		if (f[i].rc) {
			rc = wal_seterr(f[i].rc, "%s", f[i].why);
			free(f);
			return rc;
		}
	if (!nf) {
		free(f);
		return 0;
	}
	if (!(v = calloc(nf, sizeof *v))) {
		free(f);
		return wal_seterr(WAL_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < nf; i++)
		v[i] = f[i].c;
	free(f);
	*out = v;
	*n = nf;
	return 0;
}

int wal_consumers_past(const char *datadir, uint64_t n, int (*skip)(void *ctx, const char *name), void *ctx,
                       struct wal_consumer_rewind **out, size_t *nout, char *names, size_t cap)
{
	struct wal_consumer *v;
	size_t nc, have = 0, len = 0;
	int rc;

	*out = NULL;
	*nout = 0;
	if (cap)
		names[0] = 0;
	if ((rc = wal_consumers_list(datadir, &v, &nc)) != 0)
		return rc;
	for (size_t i = 0; i < nc; i++) {
		if (v[i].lost || v[i].lsn <= n || (skip && skip(ctx, v[i].name)))
			continue;
		if (wal_grow((void **)out, &have, *nout + 1, sizeof **out) != 0) {
			rc = WAL_ENOMEM;
			break;
		}
		struct wal_consumer_rewind *r = &(*out)[(*nout)++];
		snprintf(r->name, sizeof r->name, "%s", v[i].name);
		r->cursor = v[i].lsn;
		r->to = n;
		if (len < cap)
			len += (size_t)snprintf(names + len, cap - len, " '%s' (cursor LSN %llu)", v[i].name,
			                        (unsigned long long)v[i].lsn);
	}
	free(v);
	if (rc) {
		free(*out);
		*out = NULL;
		*nout = 0;
	}
	return rc;
}
