/*
 * test_consumers.c - named consumers: names, cursors that only go
 * forward, lost consumers, the listing, and files that are not cursors.
 */
#include <errno.h>
#include <sys/stat.h>

#include "util.h"

static void test_names(void **state)
{
	(void)state;
	assert_true(wal_consumer_name_ok("influx"));
	assert_true(wal_consumer_name_ok("a.b_c-9"));
	assert_false(wal_consumer_name_ok(""));
	assert_false(wal_consumer_name_ok(".hidden"));
	assert_false(wal_consumer_name_ok("-opt"));
	assert_false(wal_consumer_name_ok("a/b"));
	assert_false(wal_consumer_name_ok("a b"));
	assert_false(wal_consumer_name_ok(".."));
	char longname[WAL_CONSUMER_NAME_MAX + 2];
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	assert_false(wal_consumer_name_ok(longname));
	longname[WAL_CONSUMER_NAME_MAX] = 0;
	assert_true(wal_consumer_name_ok(longname));
}

static void test_cursor(void **state)
{
	char *d = tmpdir();
	struct wal_consumer c;

	(void)state;
	assert_int_equal(wal_consumer_get(d, "x", &c), WAL_ENOENT);
	assert_int_equal(wal_consumer_add(d, "x", 7), 0);
	assert_int_equal(wal_consumer_add(d, "x", 9), WAL_EINVAL); /* exists */
	assert_int_equal(wal_consumer_add(d, "../x", 9), WAL_EINVAL);
	assert_int_equal(wal_consumer_get(d, "x", &c), 0);
	assert_string_equal(c.name, "x");
	assert_int_equal(c.lsn, 7);
	assert_int_equal(c.lost, 0);
	assert_int_equal(wal_consumer_advance(d, "x", 100), 0);
	assert_int_equal(wal_consumer_advance(d, "x", 99), WAL_EINVAL); /* never back */
	assert_int_equal(wal_consumer_get(d, "x", &c), 0);
	assert_int_equal(c.lsn, 100);
	assert_int_equal(wal_consumer_lose(d, "x", "lagged 2 GiB\nbehind"), 0);
	assert_int_equal(wal_consumer_get(d, "x", &c), 0);
	assert_int_equal(c.lost, 1);
	assert_int_equal(c.lsn, 100);
	assert_string_equal(c.why, "lagged 2 GiB behind");
	assert_int_equal(wal_consumer_advance(d, "x", 101), WAL_EINVAL); /* lost */
	char stamp[64];
	assert_int_equal(wal_consumer_drop(d, "x", stamp, sizeof stamp), 0);
	assert_int_equal(wal_consumer_drop(d, "x", stamp, sizeof stamp), WAL_ENOENT);
	rmrf(d);
	free(d);
}

static void test_list(void **state)
{
	char *d = tmpdir(), path[4200];
	struct wal_consumer *v;
	size_t n;

	(void)state;
	assert_int_equal(wal_consumers_list(d, &v, &n), 0); /* no consumers/ at all */
	assert_int_equal(n, 0);
	assert_int_equal(wal_consumer_add(d, "zeta", 1), 0);
	assert_int_equal(wal_consumer_add(d, "alpha", 2), 0);
	/* a temporary file of an interrupted rewrite is not a consumer */
	snprintf(path, sizeof path, "%s/consumers/.alpha.tmp", d);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("walctl-consumer 1\nlsn=", f);
	fclose(f);
	assert_int_equal(wal_consumers_list(d, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].name, "alpha");
	assert_int_equal(v[0].lsn, 2);
	assert_string_equal(v[1].name, "zeta");
	free(v);
	/* a file that is not a cursor is damage, named */
	snprintf(path, sizeof path, "%s/consumers/bad", d);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("walctl-consumer 1\nlsn=12x\nstate=live\n", f);
	fclose(f);
	assert_int_equal(wal_consumers_list(d, &v, &n), WAL_ECORRUPT);
	assert_non_null(strstr(wal_errmsg(), "consumers/bad"));
	rmrf(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_cursor),
		cmocka_unit_test(test_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
