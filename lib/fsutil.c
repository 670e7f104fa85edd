/*
 * fsutil.c - crash-safe file operations, the single-writer lock and the
 * quarantine that keeps every byte a repair removes.
 *
 * Every create, rename or unlink that matters is followed by an fsync of the
 * directory; every rewrite is temp, fsync, rename, fsync directory.
 */

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

int64_t wal_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint64_t wal_random64(void)
{
	uint64_t v = 0;

	while (v == 0) {
		if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
			v = (uint64_t)wal_now_ns() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	}
	return v;
}

static const char *kind_of(mode_t m)
{
	return S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : S_ISCHR(m) || S_ISBLK(m) ? "a device" : S_ISDIR(m) ? "a directory" : "not a regular file";
}

int fs_open_file(const char *path, int flags, int *fd)
{
	struct stat st;

	/* O_NONBLOCK: a FIFO opened for reading would wait for a writer */
	*fd = open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (*fd < 0) {
		int e = errno, rc;
		if (e != ENOENT && stat(path, &st) == 0 && !S_ISREG(st.st_mode)) /* a socket: ENXIO */
			rc = wal_seterr(WAL_EIO, "'%s' is %s, where walctl keeps regular files only: move it away",
			                path, kind_of(st.st_mode));
		else
			rc = wal_seterr(wal_errno_code(e), "cannot open '%s': %s", path, strerror(e));
		errno = e;
		return rc;
	}
	if (fstat(*fd, &st) != 0) {
		int e = errno;
		close(*fd);
		*fd = -1;
		errno = e;
		return wal_seterr(WAL_EIO, "cannot stat '%s': %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(*fd);
		*fd = -1;
		errno = EINVAL;
		return wal_seterr(WAL_EIO, "'%s' is %s, where walctl keeps regular files only: move it away", path,
		                  kind_of(st.st_mode));
	}
	return 0;
}

int fs_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0) {
		int e = errno;
		rc = wal_seterr(wal_errno_code(e), "cannot open directory '%s': %s", dir, strerror(e));
		errno = e; /* for a caller that tells EACCES apart */
		return rc;
	}
	rc = fsync(fd);
	if (rc != 0) {
		int e = errno;
		close(fd);
		return wal_seterr(WAL_ESYNC, "fsync of directory '%s' failed: %s", dir, strerror(e));
	}
	close(fd);
	return 0;
}

/* The directories this process has made durable (their entries synced in
 * their parents), so that a writer pays for it once per directory. */
#define DURABLE_MAX 64
static char durable_dirs[DURABLE_MAX][256];
static unsigned ndurable;
static pthread_mutex_t durable_mu = PTHREAD_MUTEX_INITIALIZER;

static int known_durable(const char *path)
{
	int found = 0;
	pthread_mutex_lock(&durable_mu);
	for (unsigned i = 0; i < ndurable && i < DURABLE_MAX && !found; i++)
		found = strcmp(durable_dirs[i], path) == 0;
	pthread_mutex_unlock(&durable_mu);
	return found;
}

static void note_durable(const char *path)
{
	if (strlen(path) >= sizeof durable_dirs[0])
		return;
	pthread_mutex_lock(&durable_mu);
	snprintf(durable_dirs[ndurable % DURABLE_MAX], sizeof durable_dirs[0], "%s", path);
	ndurable++;
	pthread_mutex_unlock(&durable_mu);
}

/* Create DIR and its missing parents, and make each durable: its entry is
 * synced in its parent whether or not this process created it, because a
 * process killed between a mkdir and that sync leaves a directory that a
 * power cut can still take away, with everything later written under it. */
int fs_mkdir_p(const char *dir)
{
	char path[4096], parent[4096];
	size_t n = strlen(dir);
	struct stat st;

	if (n == 0 || n >= sizeof path)
		return wal_seterr(WAL_EINVAL, "bad directory name '%s'", dir);
	memcpy(path, dir, n + 1);
	while (n > 1 && path[n - 1] == '/')
		path[--n] = 0;
	int there = stat(path, &st) == 0;
	if (there && !S_ISDIR(st.st_mode))
		return wal_seterr(WAL_EIO, "'%s' exists and is not a directory", dir);
	if (there && known_durable(path))
		return 0;
	memcpy(parent, path, n + 1);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = 0;
		int rc = fs_mkdir_p(parent);
		if (rc)
			return rc;
	} else if (slash == parent) {
		parent[1] = 0;
	} else {
		snprintf(parent, sizeof parent, ".");
	}
	if (strcmp(path, "/") == 0 || strcmp(path, ".") == 0)
		return 0;
	if (mkdir(path, 0777) != 0 && errno != EEXIST)
		return wal_seterr(wal_errno_code(errno), "cannot create directory '%s': %s", path, strerror(errno));
	int rc = fs_fsync_dir(parent);
	/* a parent we may not read (a home directory of mode 711) was there
	 * before, made by someone else: only its own entry is ours to sync */
	if (rc != 0 && there && (errno == EACCES || errno == EPERM))
		rc = 0;
	if (rc == 0)
		note_durable(path);
	return rc;
}

int fs_truncate_synced(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;

	if (fd < 0 || ftruncate(fd, (off_t)size) != 0 || fsync(fd) != 0)
		rc = wal_seterr(fd < 0 ? wal_errno_code(errno) : WAL_EIO, "cannot cut '%s' at offset %llu: %s", path,
		                (unsigned long long)size, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

int fs_write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return wal_errno_code(errno);
		}
		if (n == 0)
			return WAL_ENOSPC;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int fs_read_all(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return wal_errno_code(errno);
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

int fs_write_atomic(const char *dir, const char *name, const void *buf, size_t len)
{
	char tmp[4096], dst[4096];
	int fd, rc;

	snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
	snprintf(dst, sizeof dst, "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return wal_seterr(wal_errno_code(errno), "cannot create '%s': %s", tmp, strerror(errno));
	rc = fs_write_all(fd, buf, len, 0);
	if (rc) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return wal_seterr(rc, "cannot write '%s': %s", tmp, strerror(e));
	}
	if (fsync(fd) != 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return wal_seterr(WAL_ESYNC, "fsync of '%s' failed: %s", tmp, strerror(e));
	}
	close(fd);
	if (rename(tmp, dst) != 0) {
		int e = errno;
		unlink(tmp);
		return wal_seterr(wal_errno_code(e), "cannot rename '%s' to '%s': %s", tmp, dst, strerror(e));
	}
	return fs_fsync_dir(dir);
}

int fs_lock(const char *dir, int *fd_out)
{
	char path[4096], buf[32];
	int fd;

	snprintf(path, sizeof path, "%s/LOCK", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return wal_seterr(wal_errno_code(errno), "cannot open lock file '%s': %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		size_t got = 0;
		long pid = 0;
		if (e == EWOULDBLOCK) {
			memset(buf, 0, sizeof buf);
			fs_read_all(fd, buf, sizeof buf - 1, 0, &got);
			pid = strtol(buf, NULL, 10);
			close(fd);
			return wal_seterr(WAL_ELOCKED,
			                  "data directory '%s' is locked by pid %ld (another writer is running)", dir,
			                  pid);
		}
		close(fd);
		return wal_seterr(WAL_EIO, "cannot lock '%s': %s", path, strerror(e));
	}
	int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || fs_write_all(fd, buf, (size_t)n, 0) != 0) {
		int e = errno;
		close(fd);
		return wal_seterr(WAL_EIO, "cannot write lock file '%s': %s", path, strerror(e));
	}
	*fd_out = fd;
	return 0;
}

/* Copy bytes [off, off+len) of SEGPATH into DATADIR/quarantine/<stamp>/ with
 * a MANIFEST line, all synced, before the caller cuts them. */
int wal_write_file(const char *dir, const char *name, const void *buf, size_t len)
{
	return fs_write_atomic(dir, name, buf, len);
}
