/*
 * test_engine.c - the ingestion engine (lib/engine.c) in C: every entry
 * acknowledged once durable, in LSN order; flushed to storage and
 * checkpointed; what a WAL-only engine left is stored at the next start.
 */
#include <pthread.h>

#include "util.h"

struct acks {
	pthread_mutex_t mu;
	uint64_t lsn, points, n;
	int out_of_order;
};

static void on_ack(void *ctx, uint64_t lsn, uint64_t points)
{
	struct acks *a = ctx;

	pthread_mutex_lock(&a->mu);
	if (lsn < a->lsn || points < a->points)
		a->out_of_order = 1;
	a->lsn = lsn;
	a->points = points;
	a->n++;
	pthread_mutex_unlock(&a->mu);
}

/* N entries of 10 points each ("m v=<i>i <i>"). */
static void feed(wal_engine_t *e, int n, uint64_t *last_lsn)
{
	wal_enc_t *enc;
	const unsigned char *p;
	size_t len;

	assert_int_equal(wal_enc_new(&enc), 0);
	for (int i = 0; i < n; i++) {
		assert_int_equal(wal_enc_begin(enc, "default", 7), 0);
		for (int j = 0; j < 10; j++) {
			struct wal_field f = { .key = { "v", 1 }, .kind = WAL_INT, .v.i = i * 10 + j };
			struct wal_point pt = {
				.measurement = { "m", 1 }, .fields = &f, .nfields = 1, .time = i * 10 + j
			};
			assert_int_equal(wal_enc_add(enc, &pt), 0);
		}
		assert_int_equal(wal_enc_finish(enc, &p, &len), 0);
		assert_int_equal(wal_engine_append(e, WAL_T_POINTS, p, len, 10, last_lsn), 0);
	}
	wal_enc_free(enc);
}

/* Entries in the partitions of the data directory's storage view. */
static uint64_t stored(const char *dir)
{
	wal_view_t *v;
	uint64_t n = 0;

	assert_int_equal(wal_view_open(&v, dir), 0);
	assert_int_equal(wal_view_nproblems(v), 0);
	for (size_t i = 0; i < wal_view_npartitions(v); i++) {
		char path[4400];
		wal_part_t *p;
		const unsigned char *pl;
		size_t len;
		snprintf(path, sizeof path, "%s/data/%s", dir, wal_view_partition(v, i)->rel);
		assert_int_equal(wal_part_open(&p, path), 0);
		while (wal_part_next(p, NULL, &pl, &len) == 1)
			n++;
		wal_part_close(p);
	}
	wal_view_close(v);
	return n;
}

/* Open an engine, append n entries, stop it; its stats, then close. */
static void run(const char *dir, const struct wal_engine_opts *o, int n, uint64_t *last, struct wal_engine_stats *st)
{
	wal_engine_t *e;

	assert_int_equal(wal_engine_open(&e, dir, o), 0);
	feed(e, n, last);
	wal_engine_stop(e);
	wal_engine_stats(e, st);
	assert_null(wal_engine_failure(e));
	assert_int_equal(wal_engine_close(e), 0);
}

static void test_acks_and_storage(void **state)
{
	char *dir = tmpdir();
	struct acks a = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct wal_engine_opts o = { .buffer_points = 50, .ctx = &a, .ack = on_ack };
	struct wal_engine_stats st;
	uint64_t last = 0;

	(void)state;
	run(dir, &o, 20, &last, &st);
	/* every point acknowledged, in order, through the last entry */
	assert_false(a.out_of_order);
	assert_true(a.n >= 1);
	assert_int_equal(a.points, 200);
	assert_true(a.lsn >= last);
	assert_int_equal(st.points, 200);
	assert_int_equal(st.entries, 20);
	assert_int_equal(st.acked_entries, 20);
	/* flushed (how often depends on when the flusher wakes), each
	 * flush checkpointed, the last through the last entry */
	assert_true(st.flushes >= 1);
	assert_int_equal(st.checkpoints, st.flushes);
	assert_int_equal(st.checkpoint_lsn, last);
	assert_int_equal(stored(dir), 20);
	rmrf(dir);
	free(dir);
}

/* A WAL-only engine (walctl write) stores nothing; the next engine with
 * storage replays what is after the last checkpoint, once. */
static void test_replay_at_start(void **state)
{
	char *dir = tmpdir();
	struct wal_engine_opts wal_only = { .wal_only = 1 }, full = { 0 };
	struct wal_engine_stats st;
	uint64_t last = 0, none = 0;

	(void)state;
	run(dir, &wal_only, 5, &last, &st);
	assert_int_equal(st.flushes, 0);
	assert_int_equal(st.acked_entries, 5);
	assert_int_equal(stored(dir), 0);
	run(dir, &full, 0, &none, &st);
	assert_int_equal(st.checkpoint_lsn, last);
	assert_int_equal(stored(dir), 5);
	/* and not again */
	run(dir, &full, 0, &none, &st);
	assert_int_equal(st.flushes, 0);
	assert_int_equal(stored(dir), 5);
	rmrf(dir);
	free(dir);
}

/* A second engine on the same directory is refused: one owner. */
static void test_one_owner(void **state)
{
	char *dir = tmpdir();
	struct wal_engine_opts o = { 0 };
	wal_engine_t *e, *e2 = NULL;

	(void)state;
	assert_int_equal(wal_engine_open(&e, dir, &o), 0);
	assert_int_not_equal(wal_engine_open(&e2, dir, &o), 0);
	assert_null(e2);
	assert_int_equal(wal_engine_close(e), 0);
	rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_acks_and_storage),
		cmocka_unit_test(test_replay_at_start),
		cmocka_unit_test(test_one_owner),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
