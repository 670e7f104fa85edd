/*
 * quarantine.c - DIR/quarantine/<stamp>/: every byte a repair or a writer
 * removes is saved here first, with a MANIFEST saying what it was.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/*
 * The MANIFEST, AFTER and REPLAY files are records of the form
 *
 *   key=value key=value ... flag
 *
 * one per line.  A value holding a blank, a quote, a backslash or a
 * control character, or an empty one, is written in double quotes with \"
 * \\ \n \t and \xHH escapes; a bare word is a flag.  wal_q_put writes a
 * field, wal_q_parse reads a line back: one writer, one parser.
 */

void wal_q_stamp(char *out, size_t cap)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, cap, "%04d%02d%02dT%02d%02d%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

size_t wal_q_put(char *out, size_t cap, const char *key, const char *val)
{
	size_t n = 0;
	int quote = !*val;

#define PUT(c)                                                                                                         \
	do {                                                                                                           \
		if (n + 1 < cap)                                                                                       \
			out[n] = (c);                                                                                  \
		n++;                                                                                                   \
	} while (0)
	for (const char *p = val; *p; p++)
		quote |= *p == ' ' || *p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f;
	if (cap)
		out[0] = 0;
	PUT(' ');
	for (const char *k = key; *k; k++)
		PUT(*k);
	PUT('=');
	if (quote)
		PUT('"');
	for (const char *p = val; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (!quote) {
			PUT((char)c);
		} else if (c == '"' || c == '\\') {
			PUT('\\');
			PUT((char)c);
		} else if (c == '\n') {
			PUT('\\');
			PUT('n');
		} else if (c == '\t') {
			PUT('\\');
			PUT('t');
		} else if (c < 0x20 || c == 0x7f) {
			static const char hex[] = "0123456789abcdef";
			PUT('\\');
			PUT('x');
			PUT(hex[c >> 4]);
			PUT(hex[c & 15]);
		} else {
			PUT((char)c);
		}
	}
	if (quote)
		PUT('"');
#undef PUT
	if (cap)
		out[n < cap ? n : cap - 1] = 0;
	return n;
}

/* Copy a bare word from *pp into buf at *b, up to a blank, a newline, the
 * end or (if eq) an '='; NUL-terminated.  0, or -1 when buf is full. */
static int word(const char **pp, char *buf, size_t *b, size_t cap, int eq)
{
	const char *p = *pp;

	while (*p && *p != ' ' && *p != '\n' && !(eq && *p == '=')) {
		if (*b + 1 >= cap)
			return -1;
		buf[(*b)++] = *p++;
	}
	if (*b + 1 >= cap)
		return -1;
	buf[(*b)++] = 0;
	*pp = p;
	return 0;
}

void wal_q_rec(struct wal_q_rec *r) { r->n = 0, r->s[0] = 0; }

void wal_q_str(struct wal_q_rec *r, const char *key, const char *val)
{
	if (r->n < sizeof r->s)
		r->n += wal_q_put(r->s + r->n, sizeof r->s - r->n, key, val);
}

void wal_q_u64(struct wal_q_rec *r, const char *key, uint64_t v)
{
	char num[24];
	snprintf(num, sizeof num, "%llu", (unsigned long long)v);
	wal_q_str(r, key, num);
}

void wal_q_range(struct wal_q_rec *r, const char *key, uint64_t first, uint64_t last)
{
	char range[48];
	snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)first, (unsigned long long)last);
	wal_q_str(r, key, range);
}

void wal_q_flag(struct wal_q_rec *r, const char *flag)
{
	if (r->n < sizeof r->s)
		r->n += (size_t)snprintf(r->s + r->n, sizeof r->s - r->n, " %s", flag);
}

const char *wal_q_end(struct wal_q_rec *r)
{
	if (r->n >= sizeof r->s - 1)
		r->n = sizeof r->s - 2; /* cut, never run over */
	r->s[r->n] = '\n';
	r->s[r->n + 1] = 0;
	return r->s[0] == ' ' ? r->s + 1 : r->s;
}

int wal_q_parse(const char *line, struct wal_q_field *f, size_t max, char *buf, size_t cap)
{
	size_t nf = 0, b = 0;
	const char *p = line;

	while (*p && *p != '\n') {
		while (*p == ' ')
			p++;
		if (!*p || *p == '\n')
			break;
		if (nf == max)
			return -1;
		f[nf].key = buf + b;
		if (word(&p, buf, &b, cap, 1) != 0)
			return -1;
		f[nf].val = NULL; /* a flag */
		if (*p == '=') {
			p++;
			f[nf].val = buf + b;
			if (*p == '"') {
				for (p++; *p && *p != '"' && *p != '\n'; p++) {
					char c = *p;
					if (c == '\\' && p[1]) {
						p++;
						c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
						if (*p == 'x' && p[1] && p[2]) {
							char h[3] = { p[1], p[2], 0 };
							c = (char)strtol(h, NULL, 16);
							p += 2;
						}
					}
					if (b + 1 >= cap)
						return -1;
					buf[b++] = c;
				}
				if (*p != '"' || b + 1 >= cap)
					return -1; /* an unterminated quote, or no room */
				p++;
				buf[b++] = 0;
			} else if (word(&p, buf, &b, cap, 0) != 0) {
				return -1;
			}
		}
		nf++;
	}
	return (int)nf;
}

const char *wal_q_get(const struct wal_q_field *f, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(f[i].key, key))
			return f[i].val ? f[i].val : "";
	return NULL;
}

int fs_quarantine(const char *datadir, const char *path, const char *rel, const char *command, const char *op,
                  uint64_t off, uint64_t len, const char *reason, char *stamp_out, size_t cap)
{
	const char *segpath = path, *slash = strrchr(rel, '/'), *segname = slash ? slash + 1 : rel;
	char qdir[4096], sdir[4096 + 128], name[128], manifest[4200];
	int rc, fd;
	unsigned char *buf;
	size_t got = 0;

	snprintf(qdir, sizeof qdir, "%s/quarantine", datadir);
	wal_q_stamp(stamp_out, cap);
	snprintf(sdir, sizeof sdir, "%s/%s", qdir, stamp_out);
	if ((rc = fs_mkdir_p(sdir)) != 0)
		return rc;
	buf = malloc(len ? len : 1);
	if (!buf)
		return wal_seterr(WAL_ENOMEM, "out of memory quarantining %llu bytes", (unsigned long long)len);
	if (fs_open_file(segpath, O_RDONLY, &fd) != 0) {
		free(buf);
		return wal_seterr(WAL_EIO, "%s", wal_errmsg());
	}
	if (fs_read_all(fd, buf, len, off, &got) != 0 || got != len) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		free(buf);
		return wal_seterr(WAL_EIO, "cannot read '%s' to quarantine it: %s", segpath, strerror(e));
	}
	close(fd);
	snprintf(name, sizeof name, "%s@%llu", segname, (unsigned long long)off);
	struct wal_sha256 c;
	char sha[65];
	wal_sha256_init(&c);
	wal_sha256_update(&c, buf, len);
	wal_sha256_hex(&c, sha);
	rc = fs_write_atomic(sdir, name, buf, len);
	free(buf);
	if (rc)
		return rc;
	struct wal_q_rec r;
	wal_q_rec(&r);
	wal_q_str(&r, "file", rel);
	wal_q_str(&r, "op", op);
	wal_q_u64(&r, "offset", off);
	wal_q_u64(&r, "length", len);
	wal_q_str(&r, "saved", name);
	wal_q_str(&r, "saved_sha256", sha);
	wal_q_str(&r, "reason", reason);
	int n = snprintf(manifest, sizeof manifest, "walctl-quarantine 1\ncommand: %s\n%s", command, wal_q_end(&r));
	return fs_write_atomic(sdir, "MANIFEST", manifest, (size_t)n);
}

int wal_q_read_whole(const char *path, unsigned char **buf, size_t *len)
{
	struct stat st;
	size_t got = 0;
	int fd;

	*buf = NULL;
	*len = 0;
	int rc = fs_open_file(path, O_RDONLY, &fd);
	if (rc)
		return rc;
	if (fstat(fd, &st) != 0) {
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

void wal_q_sha_of(const void *p, size_t n, char out[65])
{
	struct wal_sha256 c;

	wal_sha256_init(&c);
	wal_sha256_update(&c, p, n);
	wal_sha256_hex(&c, out);
}

int wal_q_sha_file(const char *path, uint64_t *size, char out[65])
{
	unsigned char *b;
	size_t n;
	int rc = wal_q_read_whole(path, &b, &n);

	if (rc)
		return rc;
	wal_q_sha_of(b, n, out);
	*size = n;
	free(b);
	return 0;
}

int wal_q_read_saved(const char *qdir, const char *name, unsigned char **b, size_t *n)
{
	char path[PATH_MAX + 1200];

	snprintf(path, sizeof path, "%s/%s", qdir, name);
	return wal_q_read_whole(path, b, n);
}

int fs_unlink_synced(const char *dir, const char *name)
{
	char path[PATH_MAX + 300];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (unlink(path) != 0 && errno != ENOENT)
		return wal_seterr(wal_errno_code(errno), "cannot remove '%s': %s", path, strerror(errno));
	return fs_fsync_dir(dir);
}
