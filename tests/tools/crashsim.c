/*
 * crashsim.c - an LD_PRELOAD shim that journals every change a process
 * makes under one directory, and can kill it before any of them, so that
 * tests/tools/crashsim.py can build every state a power cut could leave
 * (in the manner of SQLite's src/test6.c, one layer further out).
 *
 *   CRASHSIM_ROOT=/abs/dir   only paths below it are journaled and counted
 *   CRASHSIM_LOG=/abs/file   the journal
 *   CRASHSIM_AT=K            SIGKILL the process just before its K-th change
 *
 * Journal records, one header line each (paths are below the root, "." for
 * the root itself), a WRITE's bytes following its line:
 *
 *   CREATE <ino> <path>        a new file appeared at path
 *   MKDIR <path>
 *   WRITE <ino> <offset> <len>\n<len bytes>
 *   TRUNC <ino> <len>
 *   SYNC <ino>                 fsync or fdatasync of a file
 *   DIRSYNC <path>             fsync of a directory
 *   RENAME <ino> <from> <to>
 *   UNLINK <ino> <path>
 *
 * A change is journaled before it is made, and the count is taken then:
 * killed at K, the process made changes 1..K-1 and journaled K-1 of them.
 * Several processes may share one journal (each record is one append):
 * its first K records are then what all of them had done when the power
 * failed at that instant (crashsim.py --upto K).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAXFD 4096

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char root[PATH_MAX];
static size_t rootlen;
static int logfd = -1;
static long long at, count;
static struct {
	char rel[PATH_MAX];
	ino_t ino;
	int dir;
	int on;
} fds[MAXFD];

#define REAL(ret, name, ...)                                                                                           \
	static ret (*real_##name)(__VA_ARGS__);                                                                        \
	if (!real_##name)                                                                                              \
		real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name);

__attribute__((constructor)) static void init(void)
{
	const char *r = getenv("CRASHSIM_ROOT"), *l = getenv("CRASHSIM_LOG"), *a = getenv("CRASHSIM_AT");

	if (!r || !l)
		return;
	snprintf(root, sizeof root, "%s", r);
	rootlen = strlen(root);
	while (rootlen > 1 && root[rootlen - 1] == '/')
		root[--rootlen] = 0;
	logfd = (int)syscall(SYS_openat, AT_FDCWD, l, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	at = a ? atoll(a) : 0;
}

/* The path below the root of P (absolute, or relative to the working
 * directory), or NULL when it is not below it. */
static const char *below(const char *p, char *buf, size_t cap)
{
	char abs[PATH_MAX * 2];

	if (!root[0])
		return NULL;
	if (p[0] == '/') {
		snprintf(abs, sizeof abs, "%s", p);
	} else {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof cwd))
			return NULL;
		snprintf(abs, sizeof abs, "%s/%s", cwd, p);
	}
	size_t n = strlen(abs);
	while (n > 1 && abs[n - 1] == '/')
		abs[--n] = 0;
	if (strncmp(abs, root, rootlen) != 0 || (abs[rootlen] != 0 && abs[rootlen] != '/'))
		return NULL;
	snprintf(buf, cap, "%s", abs[rootlen] ? abs + rootlen + 1 : ".");
	return buf;
}

static void put(const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t k = syscall(SYS_write, logfd, c, n);
		if (k <= 0)
			return;
		c += k;
		n -= (size_t)k;
	}
}

/* Count one change, die if it is the one, journal it.  Called locked. */
static void change(const void *data, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void change(const void *data, size_t len, const char *fmt, ...)
{
	char line[PATH_MAX * 3];
	va_list ap;

	if (++count == at)
		kill(getpid(), SIGKILL);
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* one append for the record, header and bytes: several processes may
	 * journal into one file, and their records must not interleave */
	struct iovec v[2] = { { line, (size_t)n }, { (void *)(uintptr_t)data, len } };
	ssize_t k = syscall(SYS_writev, logfd, v, len ? 2 : 1);
	if (k >= 0 && (size_t)k < (size_t)n)
		put(line + k, (size_t)n - (size_t)k), k = n;
	if (k >= n && (size_t)k < (size_t)n + len)
		put((const char *)data + (k - n), len - (size_t)(k - n));
}

static void track(int fd, const char *rel)
{
	struct stat st;
	if (fd < 0 || fd >= MAXFD || fstat(fd, &st) != 0)
		return;
	snprintf(fds[fd].rel, sizeof fds[fd].rel, "%s", rel);
	fds[fd].ino = st.st_ino;
	fds[fd].dir = S_ISDIR(st.st_mode);
	fds[fd].on = 1;
}

static int opened(int dirfd, const char *path, int flags, mode_t mode)
{
	REAL(int, openat, int, const char *, int, ...)
	char buf[PATH_MAX], full[PATH_MAX * 2];
	const char *rel = NULL;
	struct stat st;

	if (path[0] != '/' && dirfd != AT_FDCWD) {
		char link[64], dir[PATH_MAX];
		snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
		ssize_t k = readlink(link, dir, sizeof dir - 1);
		if (k > 0) {
			dir[k] = 0;
			snprintf(full, sizeof full, "%s/%s", dir, path);
			rel = below(full, buf, sizeof buf);
		}
	} else {
		rel = below(path, buf, sizeof buf);
	}
	if (!rel || logfd < 0)
		return real_openat(dirfd, path, flags, mode);
	pthread_mutex_lock(&mu);
	int existed = fstatat(dirfd, path, &st, 0) == 0;
	int fd = real_openat(dirfd, path, flags, mode);
	if (fd >= 0) {
		track(fd, rel);
		if ((flags & O_CREAT) && !existed) {
			/* counted after the fact: a create cannot be journaled before
			 * its inode exists; killed here, the file exists and is empty */
			change(NULL, 0, "CREATE %llu %s\n", (unsigned long long)fds[fd < MAXFD ? fd : 0].ino, rel);
		} else if ((flags & O_TRUNC) && !fds[fd < MAXFD ? fd : 0].dir) {
			change(NULL, 0, "TRUNC %llu 0\n", (unsigned long long)fds[fd < MAXFD ? fd : 0].ino);
		}
	}
	pthread_mutex_unlock(&mu);
	return fd;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
	va_end(ap);
	return opened(AT_FDCWD, path, flags, mode);
}
int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
	va_end(ap);
	return opened(dirfd, path, flags, mode);
}
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

/* dd and shells move what they open to another descriptor */
static int duped(int from, int to)
{
	if (to >= 0 && to < MAXFD && from >= 0 && from < MAXFD && to != from) {
		pthread_mutex_lock(&mu);
		fds[to] = fds[from];
		pthread_mutex_unlock(&mu);
	}
	return to;
}

int dup(int fd)
{
	REAL(int, dup, int)
	return duped(fd, real_dup(fd));
}

int dup2(int fd, int to)
{
	REAL(int, dup2, int, int)
	return duped(fd, real_dup2(fd, to));
}

int dup3(int fd, int to, int flags)
{
	REAL(int, dup3, int, int, int)
	return duped(fd, real_dup3(fd, to, flags));
}

int close(int fd)
{
	REAL(int, close, int)
	if (fd >= 0 && fd < MAXFD) {
		pthread_mutex_lock(&mu);
		fds[fd].on = 0;
		pthread_mutex_unlock(&mu);
	}
	return real_close(fd);
}

static int watched(int fd) { return logfd >= 0 && fd >= 0 && fd < MAXFD && fds[fd].on; }

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(ssize_t, pwrite, int, const void *, size_t, off_t)
	if (!watched(fd))
		return real_pwrite(fd, buf, n, off);
	pthread_mutex_lock(&mu);
	change(buf, n, "WRITE %llu %lld %zu\n", (unsigned long long)fds[fd].ino, (long long)off, n);
	pthread_mutex_unlock(&mu);
	return real_pwrite(fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) __attribute__((alias("pwrite")));

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(ssize_t, pwritev, int, const struct iovec *, int, off_t)
	if (!watched(fd))
		return real_pwritev(fd, iov, cnt, off);
	size_t n = 0;
	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	pthread_mutex_lock(&mu);
	/* one record: the bytes gathered */
	char *all = malloc(n ? n : 1);
	size_t at_ = 0;
	for (int i = 0; all && i < cnt; i++) {
		memcpy(all + at_, iov[i].iov_base, iov[i].iov_len);
		at_ += iov[i].iov_len;
	}
	if (all)
		change(all, n, "WRITE %llu %lld %zu\n", (unsigned long long)fds[fd].ino, (long long)off, n);
	free(all);
	pthread_mutex_unlock(&mu);
	return real_pwritev(fd, iov, cnt, off);
}
ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off) __attribute__((alias("pwritev")));

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(ssize_t, write, int, const void *, size_t)
	if (!watched(fd))
		return real_write(fd, buf, n);
	pthread_mutex_lock(&mu);
	/* O_APPEND: the bytes go to the end, wherever the offset stands */
	struct stat st;
	off_t off = (fcntl(fd, F_GETFL) & O_APPEND) && fstat(fd, &st) == 0 ? st.st_size : lseek(fd, 0, SEEK_CUR);
	change(buf, n, "WRITE %llu %lld %zu\n", (unsigned long long)fds[fd].ino, (long long)off, n);
	pthread_mutex_unlock(&mu);
	return real_write(fd, buf, n);
}

int ftruncate(int fd, off_t len)
{
	REAL(int, ftruncate, int, off_t)
	if (!watched(fd))
		return real_ftruncate(fd, len);
	pthread_mutex_lock(&mu);
	change(NULL, 0, "TRUNC %llu %lld\n", (unsigned long long)fds[fd].ino, (long long)len);
	pthread_mutex_unlock(&mu);
	return real_ftruncate(fd, len);
}
int ftruncate64(int fd, off_t len) __attribute__((alias("ftruncate")));

static int synced(int fd, int (*real)(int))
{
	if (!watched(fd))
		return real(fd);
	int rc = real(fd);
	if (rc == 0) {
		/* the sync took effect once it returned: journaled after it */
		pthread_mutex_lock(&mu);
		if (fds[fd].dir)
			change(NULL, 0, "DIRSYNC %s\n", fds[fd].rel);
		else
			change(NULL, 0, "SYNC %llu\n", (unsigned long long)fds[fd].ino);
		pthread_mutex_unlock(&mu);
	}
	return rc;
}

int fsync(int fd)
{
	REAL(int, fsync, int)
	return synced(fd, real_fsync);
}

int fdatasync(int fd)
{
	REAL(int, fdatasync, int)
	return synced(fd, real_fdatasync);
}

static int renamed(const char *from, const char *to, unsigned flags)
{
	REAL(int, renameat2, int, const char *, int, const char *, unsigned)
	char b1[PATH_MAX], b2[PATH_MAX];
	const char *r1 = below(from, b1, sizeof b1), *r2 = below(to, b2, sizeof b2);
	struct stat st;

	if (!r1 || !r2 || logfd < 0)
		return real_renameat2(AT_FDCWD, from, AT_FDCWD, to, flags);
	pthread_mutex_lock(&mu);
	if (lstat(from, &st) == 0 && !((flags & RENAME_NOREPLACE) && access(to, F_OK) == 0))
		change(NULL, 0, "RENAME %llu %s %s\n", (unsigned long long)st.st_ino, r1, r2);
	int rc = real_renameat2(AT_FDCWD, from, AT_FDCWD, to, flags);
	pthread_mutex_unlock(&mu);
	return rc;
}

int rename(const char *from, const char *to) { return renamed(from, to, 0); }

int renameat2(int d1, const char *from, int d2, const char *to, unsigned flags)
{
	if ((d1 != AT_FDCWD && from[0] != '/') || (d2 != AT_FDCWD && to[0] != '/')) {
		REAL(int, renameat2, int, const char *, int, const char *, unsigned)
		return real_renameat2(d1, from, d2, to, flags);
	}
	return renamed(from, to, flags);
}

int unlink(const char *path)
{
	REAL(int, unlink, const char *)
	char b[PATH_MAX];
	const char *r = below(path, b, sizeof b);
	struct stat st;

	if (!r || logfd < 0)
		return real_unlink(path);
	pthread_mutex_lock(&mu);
	if (lstat(path, &st) == 0)
		change(NULL, 0, "UNLINK %llu %s\n", (unsigned long long)st.st_ino, r);
	int rc = real_unlink(path);
	pthread_mutex_unlock(&mu);
	return rc;
}

int mkdir(const char *path, mode_t mode)
{
	REAL(int, mkdir, const char *, mode_t)
	char b[PATH_MAX];
	const char *r = below(path, b, sizeof b);

	if (!r || logfd < 0)
		return real_mkdir(path, mode);
	pthread_mutex_lock(&mu);
	int rc = real_mkdir(path, mode);
	if (rc == 0)
		change(NULL, 0, "MKDIR %s\n", r);
	pthread_mutex_unlock(&mu);
	return rc;
}
