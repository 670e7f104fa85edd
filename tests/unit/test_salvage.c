/*
 * test_salvage.c - the salvage table: for each kind of damage of the
 * damage table, at one place and at three, in a 3-segment WAL of 3,000+
 * entries, recover --mode salvage keeps exactly the entries that were not
 * damaged (by LSN and payload), reports exactly the LSN ranges lost, leaves
 * a WAL that verifies clean (the losses as notices), and a second run
 * changes nothing.
 */
#include <dirent.h>

#include "util.h"
#include "../tools/damage.h"

#define N   3000
#define SEG (64 + 1010 * 140 + 200) /* about 1,000 entries of 100 bytes per segment */

struct ref {
	size_t n;
	uint64_t lsn[N + 16];
	char seg[N + 16][32];
	uint64_t off[N + 16];
	char payload[N + 16][16];
	unsigned type[N + 16];
};

static void take_ref(const char *dir, struct ref *r)
{
	const char *p[1] = { dir };
	wal_scan_t *s;
	struct wal_entry e;

	memset(r, 0, sizeof *r);
	assert_int_equal(wal_scan_open(&s, p, 1, NULL), 0);
	while (wal_scan_next(s, &e) == 1) {
		assert_true(r->n < N + 16);
		r->lsn[r->n] = e.lsn;
		snprintf(r->seg[r->n], 32, "%s", e.segment);
		r->off[r->n] = e.offset;
		r->type[r->n] = e.type;
		snprintf(r->payload[r->n], 16, "%.*s", e.len < 15 ? (int)e.len : 15, (const char *)e.payload);
		r->n++;
	}
	assert_int_equal(wal_scan_class(s), 0);
	wal_scan_close(s);
}

static size_t idx(const struct ref *r, uint64_t lsn)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->lsn[i] == lsn)
			return i;
	fail_msg("no LSN %llu", (unsigned long long)lsn);
	return 0;
}

static const char *path_of(const char *dir, const struct ref *r, uint64_t lsn)
{
	return segpath(dir, r->seg[idx(r, lsn)]);
}

typedef void (*damage_fn)(const char *dir, const struct ref *r, uint64_t lsn);

static void payload_flip(const char *dir, const struct ref *r, uint64_t lsn)
{
	assert_int_equal(dmg_flip(path_of(dir, r, lsn), r->off[idx(r, lsn)] + 40 + 7, 4), 0);
}

static void header_flip(const char *dir, const struct ref *r, uint64_t lsn)
{
	assert_int_equal(dmg_flip(path_of(dir, r, lsn), r->off[idx(r, lsn)] + 17, 1), 0);
}

static void length_flip(const char *dir, const struct ref *r, uint64_t lsn)
{
	assert_int_equal(dmg_flip(path_of(dir, r, lsn), r->off[idx(r, lsn)] + 1, 0), 0);
}

static void huge_length(const char *dir, const struct ref *r, uint64_t lsn)
{
	assert_int_equal(dmg_frame_field(path_of(dir, r, lsn), r->off[idx(r, lsn)], 0, 0xfffffff0u, 4), 0);
}

static void duplicate(const char *dir, const struct ref *r, uint64_t lsn)
{
	assert_int_equal(dmg_frame_field(path_of(dir, r, lsn), r->off[idx(r, lsn)], 8, lsn - 1, 8), 0);
}

/* Segment-level damage, to the segment holding LSN. */
static void remove_seg(const char *dir, const struct ref *r, uint64_t lsn)
{
	assert_int_equal(unlink(path_of(dir, r, lsn)), 0);
}

static void bad_magic(const char *dir, const struct ref *r, uint64_t lsn)
{
	assert_int_equal(dmg_header_field(path_of(dir, r, lsn), 0, 'X', 1, 1), 0);
}

static void future_version(const char *dir, const struct ref *r, uint64_t lsn)
{
	assert_int_equal(dmg_header_field(path_of(dir, r, lsn), 8, 9, 2, 1), 0);
}

static void seg_header_flip(const char *dir, const struct ref *r, uint64_t lsn)
{
	assert_int_equal(dmg_flip(path_of(dir, r, lsn), 49, 2), 0);
}

static void rename_seg(const char *dir, const struct ref *r, uint64_t lsn)
{
	char to[4300];
	snprintf(to, sizeof to, "%s/wal/%016llx.wal", dir, (unsigned long long)lsn + 1);
	assert_int_equal(rename(path_of(dir, r, lsn), to), 0);
}

enum { FRAME, SEGMENT };

struct kind {
	const char *name;
	damage_fn fn;
	int level; /* FRAME: loses the LSN it hits; SEGMENT: loses the segment (if lossy) */
	int lossy;
};

static const struct kind kinds[] = {
	{ "payload bit flip", payload_flip, FRAME, 1 },
	{ "frame header bit flip", header_flip, FRAME, 1 },
	{ "length bit flip", length_flip, FRAME, 1 },
	{ "huge length", huge_length, FRAME, 1 },
	{ "duplicate LSN", duplicate, FRAME, 1 },
	{ "missing segment", remove_seg, SEGMENT, 1 },
	{ "wrong magic", bad_magic, SEGMENT, 1 },
	{ "future version", future_version, SEGMENT, 1 },
	{ "segment header bit flip", seg_header_flip, SEGMENT, 0 },
	{ "name disagrees with header", rename_seg, SEGMENT, 0 },
};

/* First and last LSN of the segment holding LSN. */
static void seg_range(const struct ref *r, uint64_t lsn, uint64_t *first, uint64_t *last)
{
	const char *seg = r->seg[idx(r, lsn)];
	*first = UINT64_MAX;
	*last = 0;
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->seg[i], seg)) {
			if (r->lsn[i] < *first)
				*first = r->lsn[i];
			*last = r->lsn[i];
		}
}

static char *base; /* the undamaged WAL, built once */

static void run(const struct kind *k, int places)
{
	char *dir = tmpdir(), cmd[9000];
	struct ref *r = malloc(sizeof *r), *g = malloc(sizeof *g);
	struct wal_repair_opts o = { .mode = WAL_REPAIR_SALVAGE, .apply = 1, .command = "test" };
	uint64_t lost_first[3], lost_last[3];
	size_t nlost = 0;
	wal_plan_t *p;
	char stamp[64];

	snprintf(cmd, sizeof cmd, "cp -r '%s/wal' '%s/'", base, dir);
	assert_int_equal(system(cmd), 0);
	take_ref(dir, r);
	/* places: the middle of each segment (segment-level kinds: the middle
	 * segment only, or the first and the middle with 3 frame-level ones) */
	uint64_t third = r->lsn[r->n - 1] / 3;
	uint64_t at[3] = { third / 2, third + third / 2, 2 * third + third / 2 };
	if (k->level == SEGMENT) {
		k->fn(dir, r, at[1]);
		if (k->lossy) {
			seg_range(r, at[1], &lost_first[0], &lost_last[0]);
			nlost = 1;
		}
		if (places == 3) /* plus frame damage in the other two segments */
			for (int i = 0; i < 3; i += 2) {
				payload_flip(dir, r, at[i]);
				lost_first[nlost] = lost_last[nlost] = at[i];
				nlost++;
			}
	} else {
		for (int i = 0; i < places; i++) {
			uint64_t l = places == 1 ? at[1] : at[i];
			k->fn(dir, r, l);
			lost_first[nlost] = lost_last[nlost] = l;
			nlost++;
		}
	}
	/* sort the expected losses */
	for (size_t i = 0; i < nlost; i++)
		for (size_t j = i + 1; j < nlost; j++)
			if (lost_first[j] < lost_first[i]) {
				uint64_t a = lost_first[i], b = lost_last[i];
				lost_first[i] = lost_first[j], lost_last[i] = lost_last[j];
				lost_first[j] = a, lost_last[j] = b;
			}
	assert_int_equal(wal_plan_make(&p, dir, &o), 0);
	assert_null(wal_plan_refusal(p));
	assert_int_equal(wal_plan_nlosses(p), nlost);
	for (size_t i = 0; i < nlost; i++) {
		uint64_t a, b;
		wal_plan_loss(p, i, &a, &b);
		if (a != lost_first[i] || b != lost_last[i])
			fail_msg("%s at %d place(s): loss %zu is %llu-%llu, want %llu-%llu", k->name, places, i,
			         (unsigned long long)a, (unsigned long long)b, (unsigned long long)lost_first[i],
			         (unsigned long long)lost_last[i]);
	}
	assert_int_equal(wal_plan_apply(p, stamp, sizeof stamp), 0);
	wal_plan_free(p);

	/* Every entry not damaged is there, at its LSN, with its payload. */
	struct scan_result *sr = malloc(sizeof *sr);
	scan_dir(dir, sr);
	assert_int_equal(sr->cls, 0);
	free(sr);
	memset(g, 0, sizeof *g);
	{
		const char *pp[1] = { dir };
		wal_scan_t *s;
		struct wal_entry e;
		assert_int_equal(wal_scan_open(&s, pp, 1, NULL), 0);
		while (wal_scan_next(s, &e) == 1) {
			g->lsn[g->n] = e.lsn;
			g->type[g->n] = e.type;
			snprintf(g->payload[g->n], 16, "%.*s", e.len < 15 ? (int)e.len : 15, (const char *)e.payload);
			g->n++;
		}
		wal_scan_close(s);
	}
	size_t kept = 0;
	for (size_t i = 0; i < r->n; i++) {
		int gone = 0;
		for (size_t j = 0; j < nlost; j++)
			gone |= r->lsn[i] >= lost_first[j] && r->lsn[i] <= lost_last[j];
		if (r->type[i] != WAL_T_RAW)
			continue;
		size_t j = 0;
		while (j < g->n && g->lsn[j] != r->lsn[i])
			j++;
		if (gone) {
			if (j < g->n && g->type[j] != WAL_T_LOSS)
				fail_msg("%s: LSN %llu should be gone", k->name, (unsigned long long)r->lsn[i]);
			continue;
		}
		if (j == g->n || strcmp(g->payload[j], r->payload[i]) != 0)
			fail_msg("%s at %d place(s): LSN %llu (%s) was not kept", k->name, places,
			         (unsigned long long)r->lsn[i], r->payload[i]);
		kept++;
	}
	print_message("# %-28s %d place(s): %zu entries kept, %zu range(s) lost\n", k->name, places, kept, nlost);
	/* Idempotent: nothing more to do. */
	assert_int_equal(wal_plan_make(&p, dir, &o), 0);
	assert_int_equal(wal_plan_nactions(p), 0);
	wal_plan_free(p);
	rmrf(dir);
	free(dir);
	free(r);
	free(g);
}

static void test_salvage_table(void **state)
{
	(void)state;
	base = tmpdir();
	build_wal(base, N, SEG, 1, WAL_SYNC_FDATASYNC);
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		run(&kinds[i], 1);
		run(&kinds[i], 3);
	}
	rmrf(base);
	free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_salvage_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
