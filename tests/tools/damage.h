/*
 * damage.h - precise ways to damage a segment, shared by the walfix tool
 * and the C tests.  Each returns 0 or -1 (with errno set).
 */
#ifndef WALCTL_DAMAGE_H
#define WALCTL_DAMAGE_H

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static inline int dmg_rw(const char *path, uint64_t off, void *buf, size_t n, int write_it)
{
	int fd = open(path, write_it ? O_RDWR : O_RDONLY);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = write_it ? pwrite(fd, buf, n, (off_t)off) : pread(fd, buf, n, (off_t)off);
	close(fd);
	return r == (ssize_t)n ? 0 : -1;
}

/* Flip bit BIT (0-7) of the byte at OFF. */
static inline int dmg_flip(const char *path, uint64_t off, int bit)
{
	unsigned char c;

	if (dmg_rw(path, off, &c, 1, 0))
		return -1;
	c ^= (unsigned char)(1u << bit);
	return dmg_rw(path, off, &c, 1, 1);
}

static inline int dmg_cut(const char *path, uint64_t len)
{
	return truncate(path, (off_t)len);
}

static inline uint64_t dmg_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Append N bytes: zeros (seed 0) or pseudo-random garbage. */
static inline int dmg_append(const char *path, size_t n, uint32_t seed)
{
	unsigned char *b = calloc(1, n ? n : 1);
	int rc;

	if (!b)
		return -1;
	for (size_t i = 0; seed && i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (unsigned char)(seed >> 16);
	}
	rc = dmg_rw(path, dmg_size(path), b, n, 1);
	free(b);
	return rc;
}

static inline uint64_t dmg_wal_id(const char *path)
{
	unsigned char b[8];
	uint64_t v;

	if (dmg_rw(path, 16, b, 8, 0))
		return 0;
	memcpy(&v, b, 8);
	return v;
}

static inline uint32_t dmg_crc(uint64_t id, const unsigned char *p, size_t n)
{
	unsigned char b[8];
	memcpy(b, &id, 8);
	return (uint32_t)crc32(crc32(0, b, 8), p, (uInt)n);
}

/* Overwrite a field of the frame header at FOFF (4 or 8 bytes at REL) and
 * recompute the header CRC, so the damage passes the checksum. */
static inline int dmg_frame_field(const char *path, uint64_t foff, int rel, uint64_t value, int width)
{
	unsigned char h[40];
	uint32_t crc;

	if (dmg_rw(path, foff, h, 40, 0))
		return -1;
	memcpy(h + rel, &value, (size_t)width);
	crc = dmg_crc(dmg_wal_id(path), h, 36);
	memcpy(h + 36, &crc, 4);
	return dmg_rw(path, foff, h, 40, 1);
}

/* Set byte REL of the payload of the frame at FOFF to VALUE and recompute
 * the payload CRC and the header CRC: the frame still validates, but its
 * payload is not what the writer wrote. */
static inline int dmg_payload_byte(const char *path, uint64_t foff, uint32_t rel, unsigned char value)
{
	unsigned char h[40], *p;
	uint32_t len, crc;
	uint64_t id = dmg_wal_id(path);
	int rc;

	if (dmg_rw(path, foff, h, 40, 0))
		return -1;
	memcpy(&len, h, 4);
	if (rel >= len || !(p = malloc(len)))
		return -1;
	if ((rc = dmg_rw(path, foff + 40, p, len, 0)) == 0) {
		p[rel] = value;
		crc = dmg_crc(id, p, len);
		memcpy(h + 32, &crc, 4);
		crc = dmg_crc(id, h, 36);
		memcpy(h + 36, &crc, 4);
		rc = dmg_rw(path, foff + 40, p, len, 1) || dmg_rw(path, foff, h, 40, 1);
	}
	free(p);
	return rc;
}

/* Overwrite a field of the segment header and recompute its CRC (or not). */
static inline int dmg_header_field(const char *path, int rel, uint64_t value, int width, int fix_crc)
{
	unsigned char h[64];
	uint32_t crc;

	if (dmg_rw(path, 0, h, 64, 0))
		return -1;
	memcpy(h + rel, &value, (size_t)width);
	if (fix_crc) {
		uint64_t id;
		memcpy(&id, h + 16, 8);
		crc = dmg_crc(id, h, 60);
		memcpy(h + 60, &crc, 4);
	}
	return dmg_rw(path, 0, h, 64, 1);
}

#endif
