/*
 * fuzz_frame.c - libFuzzer target for the segment and frame reader: the
 * input is a segment file.  The scanner must never crash, never allocate
 * for a length it has not checked, and classify every input.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/walctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[64], path[128];
	const char *paths[1] = { dir };
	struct wal_scan_opts so = { .max_entry_size = 1 << 20, .check_payloads = 2 };
	wal_scan_t *s;
	struct wal_entry e;
	int fd;

	if (!dir[0]) {
		snprintf(dir, sizeof dir, "/tmp/walctl-fuzz-%d", (int)getpid());
		mkdir(dir, 0700);
		snprintf(path, sizeof path, "%s/0000000000000001.wal", dir);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	if (wal_scan_open(&s, paths, 1, &so) != 0)
		return 0;
	while (wal_scan_next(s, &e) == 1)
		if (e.len > size)
			abort();
	int cls = wal_scan_class(s);
	if (cls & ~(WAL_CLASS_TORN | WAL_CLASS_DAMAGE))
		abort();
	wal_scan_close(s);
	return 0;
}
