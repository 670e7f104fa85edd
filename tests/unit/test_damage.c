/*
 * test_damage.c - the damage table, in the style of LevelDB's log_test.cc:
 * build a WAL, damage it one precise way, and assert the classification
 * (verify's exit status), the finding's kind and message, and exactly which
 * entries survive.  Then two sweeps: a cut at every byte offset of the last
 * frame, and a flip of every bit of a small segment.
 */
#include <stdint.h>

#include "util.h"
#include "../tools/damage.h"

#define N_ENTRIES 30
#define SEG_SIZE  1600 /* ten 100-byte entries and a SEAL per segment */

struct ctx {
	char *dir;
	struct scan_result ref;
};

enum { KEEP_ALL = 0 };

struct dcase {
	const char *name;
	int crashed; /* WAL abandoned instead of closed */
	void (*damage)(struct ctx *c, uint64_t arg);
	uint64_t arg;
	int want_class;              /* verify's exit status */
	const char *want_kind;       /* of the first finding */
	const char *want_msg;        /* substring of its message */
	uint64_t lost_from, lost_to; /* LSNs that must be gone; all others stay */
	int check_survivors;
};

static const struct frame_pos *frame_of(struct ctx *c, uint64_t lsn)
{
	for (size_t i = 0; i < c->ref.n; i++)
		if (c->ref.f[i].lsn == lsn)
			return &c->ref.f[i];
	fail_msg("no LSN %llu in the reference WAL", (unsigned long long)lsn);
	return NULL;
}

static const char *seg_of(struct ctx *c, uint64_t lsn) { return segpath(c->dir, frame_of(c, lsn)->segment); }

static uint64_t last_lsn(struct ctx *c) { return c->ref.f[c->ref.n - 1].lsn; }

static void flip_payload(struct ctx *c, uint64_t lsn)
{
	const struct frame_pos *f = frame_of(c, lsn);
	assert_int_equal(dmg_flip(seg_of(c, lsn), f->offset + WAL_FRAME_HEADER_SIZE + 3, 2), 0);
}

static void flip_payload_last(struct ctx *c, uint64_t unused)
{
	(void)unused;
	flip_payload(c, last_lsn(c));
}

static void flip_header_byte(struct ctx *c, uint64_t lsn_and_byte)
{
	uint64_t lsn = lsn_and_byte >> 8, byte = lsn_and_byte & 0xff;
	assert_int_equal(dmg_flip(seg_of(c, lsn), frame_of(c, lsn)->offset + byte, 0), 0);
}

static void huge_length(struct ctx *c, uint64_t lsn)
{
	assert_int_equal(dmg_frame_field(seg_of(c, lsn), frame_of(c, lsn)->offset, 0, 0xfffffff0u, 4), 0);
}

static void set_lsn(struct ctx *c, uint64_t lsn, uint64_t to)
{
	assert_int_equal(dmg_frame_field(seg_of(c, lsn), frame_of(c, lsn)->offset, 8, to, 8), 0);
}

/* Renumber every frame from LSN onwards of its segment one up: a gap. */
static void lsn_gap(struct ctx *c, uint64_t lsn)
{
	const char *seg = frame_of(c, lsn)->segment;
	for (size_t i = c->ref.n; i-- > 0;)
		if (c->ref.f[i].lsn >= lsn && strcmp(c->ref.f[i].segment, seg) == 0)
			set_lsn(c, c->ref.f[i].lsn, c->ref.f[i].lsn + 1);
}

static void duplicate_lsn(struct ctx *c, uint64_t lsn) { set_lsn(c, lsn, lsn - 1); }

static void remove_segment_of(struct ctx *c, uint64_t lsn) { assert_int_equal(unlink(seg_of(c, lsn)), 0); }

static void rename_segment_of(struct ctx *c, uint64_t lsn)
{
	char to[4300];
	snprintf(to, sizeof to, "%s/wal/%016llx.wal", c->dir, (unsigned long long)lsn + 1);
	assert_int_equal(rename(seg_of(c, lsn), to), 0);
}

static void wrong_id(struct ctx *c, uint64_t lsn)
{
	assert_int_equal(dmg_header_field(seg_of(c, lsn), 16, 0x1234567890abcdefull, 8, 1), 0);
}

/* Replace the segment by the same-named one of another WAL built the same
 * way: its frames are seeded with another id. */
static void foreign_segment(struct ctx *c, uint64_t lsn)
{
	char *other = tmpdir(), cmd[9000];
	const char *seg = frame_of(c, lsn)->segment;

	build_wal(other, N_ENTRIES, SEG_SIZE, 1, WAL_SYNC_FDATASYNC);
	snprintf(cmd, sizeof cmd, "cp '%s/wal/%s' '%s'", other, seg, seg_of(c, lsn));
	assert_int_equal(system(cmd), 0);
	rmrf(other);
	free(other);
}

static void bad_magic(struct ctx *c, uint64_t lsn)
{
	assert_int_equal(dmg_header_field(seg_of(c, lsn), 0, 'X', 1, 1), 0);
}

static void future_version(struct ctx *c, uint64_t lsn)
{
	assert_int_equal(dmg_header_field(seg_of(c, lsn), 8, 2, 2, 1), 0);
}

static void header_flip(struct ctx *c, uint64_t lsn)
{
	assert_int_equal(dmg_flip(seg_of(c, lsn), 50, 3), 0); /* creation time, CRC not fixed */
}

static void append_zeros(struct ctx *c, uint64_t n)
{
	assert_int_equal(dmg_append(seg_of(c, last_lsn(c)), (size_t)n, 0), 0);
}

static void append_garbage(struct ctx *c, uint64_t n)
{
	assert_int_equal(dmg_append(seg_of(c, last_lsn(c)), (size_t)n, 42), 0);
}

/* With N_ENTRIES = 30 and SEG_SIZE: segment 1 holds LSN 1-10 and SEAL 11,
 * segment 2 LSN 12-21 and SEAL 22, segment 3 LSN 23-32 (+ CLOSE 33). */
static const struct dcase cases[] = {
	{ "payload bit flip in a sealed segment", 0, flip_payload, 15, 4, "payload-checksum",
	  "payload checksum mismatch in LSN 15", 15, 15, 1 },
	{ "payload bit flip in the newest segment, later synced frame", 0, flip_payload, 25, 4, "payload-checksum",
	  "vouches for LSN 25", 25, 25, 1 },
	{ "payload bit flip in the last frame, no later synced frame", 1, flip_payload_last, 0, 2, "payload-checksum",
	  "torn tail", 32, UINT64_MAX, 1 },
	{ "payload bit flip in the next-to-last frame; the last frame's mark is exactly its LSN", 1, flip_payload, 31,
	  4, "payload-checksum", "LSN 32, written later, vouches for LSN 31", 31, 31, 1 },
	{ "payload bit flip in a sealed segment's SEAL: no later frame in it", 1, flip_payload, 11, 4,
	  "payload-checksum", "payload checksum mismatch in LSN 11 in sealed segment", 11, 11, 1 },
	{ "frame header bit flip (LSN field), later synced frame", 0, flip_header_byte, (26 << 8) | 10, 4,
	  "checksum-mismatch", "frame header checksum mismatch", 26, 26, 1 },
	{ "frame length bit flip, later synced frame", 0, flip_header_byte, (27 << 8) | 1, 4, "checksum-mismatch",
	  "frame header checksum mismatch", 27, 27, 1 },
	{ "frame header bit flip in a sealed segment", 0, flip_header_byte, (5 << 8) | 20, 4, "checksum-mismatch",
	  "in sealed segment", 5, 5, 1 },
	{ "frame header bit flip in the last frame, crashed writer", 1, flip_header_byte, (32 << 8) | 30, 2,
	  "checksum-mismatch", "torn tail", 32, UINT64_MAX, 1 },
	{ "huge length with a valid header checksum", 0, huge_length, 24, 4, "bad-length",
	  "exceeds the maximum entry size", 24, 24, 1 },
	{ "LSN gap", 0, lsn_gap, 28, 4, "lsn-gap", "LSN gap: LSN 28-28 missing before LSN 29", 0, 0, 0 },
	{ "duplicate LSN", 0, duplicate_lsn, 28, 4, "lsn-duplicate", "duplicate LSN: LSN 27 after LSN 27", 28, 28, 1 },
	{ "missing middle segment", 0, remove_segment_of, 15, 4, "missing-segment", "LSN 12-22 not found", 12, 22, 1 },
	{ "segment header disagrees with its file name", 0, rename_segment_of, 23, 4, "name-mismatch",
	  "should be named '0000000000000017.wal'", 0, 0, 1 },
	{ "segment from another WAL", 0, foreign_segment, 23, 4, "foreign-segment", "belongs to another WAL", 23,
	  UINT64_MAX, 1 },
	{ "segment header with a wrong WAL id, frames of this WAL", 0, wrong_id, 23, 4, "bad-header",
	  "but its frames belong to this WAL", 0, 0, 1 },
	{ "wrong magic", 0, bad_magic, 15, 4, "bad-magic", "bad magic", 12, 22, 1 },
	{ "future format version", 0, future_version, 15, 4, "bad-version", "unsupported format version 2", 12, 22, 1 },
	{ "segment header bit flip", 0, header_flip, 15, 4, "bad-header", "segment header checksum mismatch", 0, 0, 1 },
	{ "zero-filled tail, crashed writer", 1, append_zeros, 4096, 2, "zero-tail", "zero-filled tail", 0, 0, 1 },
	{ "random-garbage tail, crashed writer", 1, append_garbage, 1000, 2, "checksum-mismatch", "torn tail", 0, 0,
	  1 },
	{ "random-garbage tail after a clean close", 0, append_garbage, 333, 2, "checksum-mismatch", "torn tail", 0, 0,
	  1 },
};

static void run_case(const struct dcase *dc)
{
	struct ctx c = { .dir = tmpdir() };
	struct scan_result *got = malloc(sizeof *got);

	assert_non_null(got);
	build_wal(c.dir, N_ENTRIES, SEG_SIZE, !dc->crashed, WAL_SYNC_FDATASYNC);
	scan_dir(c.dir, &c.ref);
	assert_int_equal(c.ref.cls, 0);
	assert_int_equal(c.ref.nsegs, 3);
	dc->damage(&c, dc->arg);
	scan_dir(c.dir, got);

	print_message("# %s: class %d, %zu finding(s), first: %s: %s\n", dc->name, got->cls, got->nf,
	              got->nf ? wal_finding_kind_name(got->finding[0].kind) : "-",
	              got->nf ? got->finding[0].message : "-");
	assert_int_equal(got->cls, dc->want_class);
	assert_true(got->nf >= 1);
	assert_string_equal(wal_finding_kind_name(got->finding[0].kind), dc->want_kind);
	if (!strstr(got->finding[0].message, dc->want_msg))
		fail_msg("%s: message '%s' lacks '%s'", dc->name, got->finding[0].message, dc->want_msg);
	assert_true(got->payload_ok);
	/* each entry once, in LSN order, whatever the damage */
	for (size_t i = 1; i < got->n; i++)
		if (got->f[i].lsn <= got->f[i - 1].lsn)
			fail_msg("%s: LSN %llu returned after LSN %llu", dc->name, (unsigned long long)got->f[i].lsn,
			         (unsigned long long)got->f[i - 1].lsn);
	if (dc->check_survivors) {
		for (size_t i = 0; i < c.ref.n; i++) {
			uint64_t l = c.ref.f[i].lsn;
			int want = !(l >= dc->lost_from && l <= dc->lost_to);
			if (has_lsn(got, l) != want)
				fail_msg("%s: LSN %llu should be %s", dc->name, (unsigned long long)l,
				         want ? "kept" : "gone");
		}
	}
	rmrf(c.dir);
	free(c.dir);
	free(got);
}

static void test_damage_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i]);
}

/* Cut the newest segment of a crashed WAL at every byte offset of its last
 * frame: a torn tail every time (clean at the frame boundary), and every
 * earlier entry survives. */
static void test_cut_sweep(void **state)
{
	char *dir = tmpdir();
	struct scan_result *ref = malloc(sizeof *ref), *got = malloc(sizeof *got);

	(void)state;
	build_wal(dir, 12, 1 << 20, 0, WAL_SYNC_FDATASYNC);
	scan_dir(dir, ref);
	const struct frame_pos *last = &ref->f[ref->n - 1];
	const char *seg = segpath(dir, last->segment);
	uint64_t size = dmg_size(seg);
	char *orig = malloc(size);
	assert_int_equal(dmg_rw(seg, 0, orig, size, 0), 0);
	for (uint64_t cut = last->offset; cut < size; cut++) {
		assert_int_equal(dmg_rw(seg, 0, orig, size, 1), 0);
		assert_int_equal(dmg_cut(seg, cut), 0);
		scan_dir(dir, got);
		assert_int_equal(got->cls, cut == last->offset ? 0 : 2);
		assert_int_equal(got->n, ref->n - 1);
		assert_true(got->payload_ok);
	}
	free(orig);
	rmrf(dir);
	free(dir);
	free(ref);
	free(got);
}

/* Flip every bit of a small one-segment WAL: every flip is detected and no
 * entry ever comes back wrong (each returned LSN has its own payload). */
static void test_bitflip_sweep(void **state)
{
	char *dir = tmpdir();
	struct scan_result *ref = malloc(sizeof *ref), *got = malloc(sizeof *got);
	const char *p[1];
	wal_scan_t *s;
	struct wal_entry e;

	(void)state;
	build_wal(dir, 5, 1 << 20, 1, WAL_SYNC_FDATASYNC);
	scan_dir(dir, ref);
	const char *seg = segpath(dir, ref->f[0].segment);
	char segcopy[4300];
	snprintf(segcopy, sizeof segcopy, "%s", seg);
	uint64_t size = dmg_size(segcopy);
	unsigned char *orig = malloc(size);
	assert_int_equal(dmg_rw(segcopy, 0, orig, size, 0), 0);
	size_t undetected = 0;
	for (uint64_t off = 0; off < size; off++) {
		for (int bit = 0; bit < 8; bit++) {
			assert_int_equal(dmg_rw(segcopy, 0, orig, size, 1), 0);
			assert_int_equal(dmg_flip(segcopy, off, bit), 0);
			p[0] = dir;
			assert_int_equal(wal_scan_open(&s, p, 1, NULL), 0);
			int rc;
			while ((rc = wal_scan_next(s, &e)) == 1) {
				/* LSN k of this WAL holds "entry-(k-1)"; CLOSE is empty. */
				char want[16];
				if (e.type == WAL_T_CLOSE) {
					assert_int_equal(e.len, 0);
					continue;
				}
				snprintf(want, sizeof want, "entry-%llu", (unsigned long long)e.lsn - 1);
				if (e.len != 100 || memcmp(e.payload, want, strlen(want) + 1) != 0)
					fail_msg("byte %llu bit %d: LSN %llu came back with the wrong payload",
					         (unsigned long long)off, bit, (unsigned long long)e.lsn);
			}
			assert_int_equal(rc, 0);
			if (wal_scan_class(s) == 0)
				undetected++;
			wal_scan_close(s);
		}
	}
	print_message("# %llu bits flipped, %zu undetected\n", (unsigned long long)size * 8, undetected);
	assert_int_equal(undetected, 0);
	free(orig);
	rmrf(dir);
	free(dir);
	free(ref);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_damage_table),
		cmocka_unit_test(test_cut_sweep),
		cmocka_unit_test(test_bitflip_sweep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
