/*
 * fuzz_frame.c - libFuzzer target for the segment and frame reader: the
 * input is a segment file.  Besides never crashing and never allocating for
 * a length it has not checked, what the scanner says must hold when checked
 * against the bytes themselves:
 *
 *  - every entry returned lies inside the file, has a frame header whose CRC
 *    checks at its offset, with the same LSN, type and length, and a payload
 *    whose CRC checks;
 *  - the LSNs returned strictly increase;
 *  - the class is 0 exactly when there is no finding above a notice, and is
 *    the OR of the findings' classes;
 *  - a torn tail is called torn only when no later complete frame (header
 *    and payload CRCs both valid) vouches for the LSN it took away.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../../lib/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                    \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			fprintf(stderr, "fuzz_frame: property failed: %s (line %d)\n", #cond, __LINE__);               \
			abort();                                                                                       \
		}                                                                                                      \
	} while (0)

/* The frame header at p, decoded here rather than by the library so that
 * the check does not share the code it checks: 1 if its CRC holds. */
static int header_at(const uint8_t *p, uint32_t seed, struct frame_header *fh)
{
	if (get32(p + 36) != (uint32_t)crc32_z(seed, p, 36))
		return 0;
	fh->len = get32(p);
	fh->type = p[4];
	fh->lsn = get64(p + 8);
	fh->watermark = get64(p + 24);
	fh->payload_crc = get32(p + 32);
	return 1;
}

/* A complete, valid frame of this WAL at off vouching for lsn. */
static int vouches(const uint8_t *data, size_t size, uint32_t seed, size_t off, uint64_t lsn)
{
	struct frame_header fh;

	if (off + WAL_FRAME_HEADER_SIZE > size || !header_at(data + off, seed, &fh))
		return 0;
	if (fh.len > size - off - WAL_FRAME_HEADER_SIZE)
		return 0;
	if ((uint32_t)crc32_z(seed, data + off + WAL_FRAME_HEADER_SIZE, fh.len) != fh.payload_crc)
		return 0;
	return fh.watermark >= lsn;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[64], path[128];
	const char *paths[1] = { dir };
	struct wal_scan_opts so = { .max_entry_size = 1 << 20, .check_payloads = 2 };
	wal_scan_t *s;
	struct wal_entry e;
	uint64_t prev = 0;
	int fd, r;

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
	uint64_t id = wal_scan_id(s);
	unsigned char idb[8];
	put64(idb, id);
	uint32_t seed = (uint32_t)crc32(0, idb, 8); /* as walctl-format(5) says */
	while ((r = wal_scan_next(s, &e)) == 1) {
		struct frame_header fh;
		CHECK(e.offset + WAL_FRAME_HEADER_SIZE <= size && e.len <= size - e.offset - WAL_FRAME_HEADER_SIZE);
		CHECK(header_at(data + e.offset, seed, &fh));
		CHECK(fh.lsn == e.lsn && fh.len == e.len && fh.type == e.type);
		CHECK(e.payload && memcmp(e.payload, data + e.offset + WAL_FRAME_HEADER_SIZE, e.len) == 0);
		CHECK((uint32_t)crc32_z(seed, e.payload, e.len) == fh.payload_crc);
		CHECK(e.lsn > prev);
		prev = e.lsn;
	}
	int cls = wal_scan_class(s), or = 0;
	size_t serious = 0;
	CHECK((cls & ~(WAL_CLASS_TORN | WAL_CLASS_DAMAGE)) == 0);
	for (size_t i = 0; i < wal_scan_nfindings(s); i++) {
		const struct wal_finding *f = wal_scan_finding(s, i);
		or |= (int)f->cls;
		serious += f->cls != WAL_CLASS_NOTICE;
		if (f->cls == WAL_CLASS_TORN && f->lsn_first)
			for (size_t off = f->offset + 1; off + WAL_FRAME_HEADER_SIZE <= size; off++)
				CHECK(!vouches(data, size, seed, off, f->lsn_first));
	}
	CHECK(or == cls);
	CHECK((cls == 0) == (serious == 0));
	wal_scan_close(s);
	return 0;
}
