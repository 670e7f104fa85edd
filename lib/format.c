/*
 * format.c - the on-disk format, version 1: segment headers, frame headers,
 * CRCs and segment names.  man/walctl-format.5 mirrors this comment.
 *
 * A WAL is a directory of segments named "<first LSN as 16 hex digits>.wal",
 * so that lexical order is LSN order.  All integers are little-endian.
 *
 * Segment header, 64 bytes, at offset 0:
 *
 *   off size field
 *     0    8 magic            "WALCTL" 0x1a 0x01
 *     8    2 version          1
 *    10    1 checksum type    1 = zlib crc32, seeded with the WAL id
 *    11    1 flags            0 (reserved; readers ignore unknown bits)
 *    12    4 max entry size   largest payload the writer accepts
 *    16    8 WAL id           random, chosen when the WAL is created
 *    24    8 sequence number  1 for the first segment, +1 per segment
 *    32    8 first LSN        LSN of the segment's first frame; equals the name
 *    40    8 prev last LSN    last LSN of the previous segment (0 for none)
 *    48    8 created          creation time, ns since the Unix epoch
 *    56    4 reserved         0
 *    60    4 header CRC       crc32(seed, bytes 0..59)
 *
 * Frames follow back to back, from offset 64.  Each frame is a 40-byte
 * header and `length` bytes of payload, with no padding:
 *
 *   off size field
 *     0    4 length           payload bytes
 *     4    1 type             1 POINTS, 2 RAW, 3 CHECKPOINT, 4 SEAL, 5 CLOSE,
 *                             6 LOSS;
 *                             bit 0x80: ignorable (old readers skip it)
 *     5    1 flags            0 (reserved)
 *     6    2 reserved         0
 *     8    8 LSN              1 for the first frame of the WAL, +1 per frame
 *    16    8 time             when the frame was written, ns
 *    24    8 durable mark     highest LSN known synced when this frame was
 *                             written: a valid frame vouches for every LSN
 *                             up to its mark
 *    32    4 payload CRC      crc32(seed, payload)
 *    36    4 header CRC       crc32(seed, bytes 0..35)
 *
 * seed = crc32(0, WAL id as 8 little-endian bytes): a frame of another WAL
 * never validates.  The header CRC covers the length, so a damaged length is
 * never trusted; a length beyond the maximum entry size or the end of the
 * file is damage, never an allocation.
 */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include <isa-l.h>
#include <cbor.h>

#include "internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "walctl's format code assumes a little-endian host"
#endif

_Static_assert(sizeof(WAL_MAGIC) - 1 == 8, "magic is 8 bytes");

/* ISA-L's crc32_gzip_refl is zlib's crc32, computed several times faster. */
uint32_t wal_crc32(uint32_t crc, const void *buf, size_t len) { return crc32_gzip_refl(crc, buf, len); }

uint32_t wal_seed(uint64_t wal_id)
{
	unsigned char b[8];

	put64(b, wal_id);
	return wal_crc32(0, b, 8);
}

uint32_t wal_crc(uint64_t wal_id, const void *buf, size_t len) { return wal_crc32(wal_seed(wal_id), buf, len); }

void seg_header_encode(unsigned char out[WAL_SEG_HEADER_SIZE], const struct seg_header *h)
{
	memset(out, 0, WAL_SEG_HEADER_SIZE);
	memcpy(out, WAL_MAGIC, 8);
	put16(out + 8, h->version);
	out[10] = h->csum_type;
	out[11] = h->flags;
	put32(out + 12, h->max_entry);
	put64(out + 16, h->wal_id);
	put64(out + 24, h->seq);
	put64(out + 32, h->first_lsn);
	put64(out + 40, h->prev_last_lsn);
	put64(out + 48, (uint64_t)h->created_ns);
	put32(out + 60, wal_crc32(wal_seed(h->wal_id), out, 60));
}

int seg_header_version(const unsigned char *buf, size_t len) { return len >= 10 ? get16(buf + 8) : -1; }

/* Checks in a fixed order: size, magic, version, checksum type, CRC. */
const char *seg_header_decode(const unsigned char *buf, size_t len, struct seg_header *h)
{
	static __thread char why[64];

	memset(h, 0, sizeof *h);
	if (len < WAL_SEG_HEADER_SIZE)
		return "segment shorter than its 64-byte header";
	if (memcmp(buf, WAL_MAGIC, 8) != 0)
		return "bad magic: not a walctl segment";
	h->version = get16(buf + 8);
	if (h->version != WAL_FORMAT_VERSION) {
		snprintf(why, sizeof why, "unsupported format version %u", h->version);
		return why;
	}
	h->csum_type = buf[10];
	if (h->csum_type != WAL_CSUM_CRC32) {
		snprintf(why, sizeof why, "unknown checksum type %u", h->csum_type);
		return why;
	}
	h->flags = buf[11];
	h->max_entry = get32(buf + 12);
	h->wal_id = get64(buf + 16);
	h->seq = get64(buf + 24);
	h->first_lsn = get64(buf + 32);
	h->prev_last_lsn = get64(buf + 40);
	h->created_ns = (int64_t)get64(buf + 48);
	if (get32(buf + 60) != wal_crc32(wal_seed(h->wal_id), buf, 60))
		return "segment header checksum mismatch";
	if (h->first_lsn == 0 || h->seq == 0)
		return "segment header holds a zero LSN or sequence number";
	return NULL;
}

void frame_header_encode(unsigned char out[WAL_FRAME_HEADER_SIZE], const struct frame_header *f, uint32_t seed)
{
	put32(out, f->len);
	out[4] = f->type;
	out[5] = f->flags;
	out[6] = out[7] = 0;
	put64(out + 8, f->lsn);
	put64(out + 16, (uint64_t)f->time_ns);
	put64(out + 24, f->watermark);
	put32(out + 32, f->payload_crc);
	put32(out + 36, wal_crc32(seed, out, 36));
}

int frame_header_decode(const unsigned char *buf, uint32_t seed, struct frame_header *f)
{
	if (get32(buf + 36) != wal_crc32(seed, buf, 36))
		return 0;
	f->len = get32(buf);
	f->type = buf[4];
	f->flags = buf[5];
	f->lsn = get64(buf + 8);
	f->time_ns = (int64_t)get64(buf + 16);
	f->watermark = get64(buf + 24);
	f->payload_crc = get32(buf + 32);
	return 1;
}

void seg_name(char out[32], uint64_t first_lsn) { snprintf(out, 32, "%016llx.wal", (unsigned long long)first_lsn); }

/* 16 lowercase hexadecimal digits at p. */
static int hex16(const char *p, uint64_t *out)
{
	uint64_t v = 0;

	for (int i = 0; i < 16; i++) {
		char c = p[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return 0;
		v = v << 4 | d;
	}
	*out = v;
	return 1;
}

int seg_name_parse(const char *name, uint64_t *lsn)
{
	return strlen(name) == 20 && strcmp(name + 16, ".wal") == 0 && hex16(name, lsn);
}

int part_name_parse(const char *name, uint64_t *first, uint64_t *last)
{
	return strlen(name) == 38 && name[16] == '-' && strcmp(name + 33, ".part") == 0 && hex16(name, first) &&
	       hex16(name + 17, last);
}

const char *wal_type_name(unsigned type)
{
	switch (type & 0x7f) {
	case WAL_T_POINTS: return "points";
	case WAL_T_RAW: return "raw";
	case WAL_T_CHECKPOINT: return "checkpoint";
	case WAL_T_SEAL: return "seal";
	case WAL_T_CLOSE: return "close";
	case WAL_T_LOSS: return "loss";
	case WAL_T_STORAGE_LOSS: return "storage-loss";
	default: return "unknown";
	}
}

int wal_type_parse(const char *name)
{
	static const char *const names[] = { "points", "raw", "checkpoint", "seal", "close", "loss", "storage-loss" };

	for (int i = 0; i < 7; i++)
		if (strcmp(name, names[i]) == 0)
			return i + 1;
	return -1;
}

int wal_lib_versions(char *buf, size_t cap)
{
	return snprintf(buf, cap, "ISA-L %d.%d.%d, zlib %s, libcbor %d.%d.%d", ISAL_MAJOR_VERSION, ISAL_MINOR_VERSION,
	                ISAL_PATCH_VERSION, zlibVersion(), CBOR_MAJOR_VERSION, CBOR_MINOR_VERSION, CBOR_PATCH_VERSION);
}
