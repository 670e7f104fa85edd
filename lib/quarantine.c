/*
 * quarantine.c - DIR/quarantine/<stamp>/: every byte a repair or a writer
 * removes is saved here first, with a MANIFEST saying what it was.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

int fs_quarantine(const char *datadir, const char *segpath, const char *segname, uint64_t off, uint64_t len,
                  const char *reason, char *stamp_out, size_t cap)
{
	char qdir[4096], sdir[4096 + 128], name[128], manifest[1200];
	struct timespec ts;
	struct tm tm;
	int rc, fd;
	unsigned char *buf;
	size_t got = 0;

	snprintf(qdir, sizeof qdir, "%s/quarantine", datadir);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(stamp_out, cap, "%04d%02d%02dT%02d%02d%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
	snprintf(sdir, sizeof sdir, "%s/%s", qdir, stamp_out);
	if ((rc = fs_mkdir_p(sdir)) != 0)
		return rc;
	buf = malloc(len ? len : 1);
	if (!buf)
		return wal_seterr(WAL_ENOMEM, "out of memory quarantining %llu bytes", (unsigned long long)len);
	fd = open(segpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fs_read_all(fd, buf, len, off, &got) != 0 || got != len) {
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
	int n = snprintf(manifest, sizeof manifest,
	                 "walctl-quarantine 1\ncommand: writer\nfile=wal/%s op=cut offset=%llu length=%llu saved=%s "
	                 "saved_sha256=%s reason=\"%s\"\n",
	                 segname, (unsigned long long)off, (unsigned long long)len, name, sha, reason);
	return fs_write_atomic(sdir, "MANIFEST", manifest, (size_t)n);
}
