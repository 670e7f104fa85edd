/*
 * test_quarantine.c - the records of the quarantine's MANIFEST, AFTER and
 * REPLAY files: one writer, one parser, and free text that cannot pose as
 * a field or a flag.
 */
#include "util.h"
#include "../../lib/internal.h"

static void test_round_trip(void **state)
{
	const char *vals[] = { "plain",
		               "two words",
		               "a \"quote\" and \\ backslash",
		               "",
		               "line\nbreak\ttab\x01",
		               "op=purge absent size=1",
		               "caf\xc3\xa9" };
	char line[4096], buf[4096];
	struct wal_q_field f[16];

	(void)state;
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		size_t n = 0;
		n += (size_t)snprintf(line + n, sizeof line - n, "file=wal/x");
		n += wal_q_put(line + n, sizeof line - n, "reason", vals[i]);
		n += (size_t)snprintf(line + n, sizeof line - n, " absent\n");
		int k = wal_q_parse(line, f, 16, buf, sizeof buf);
		assert_int_equal(k, 3);
		assert_string_equal(wal_q_get(f, 3, "file"), "wal/x");
		assert_string_equal(wal_q_get(f, 3, "reason"), vals[i]);
		assert_non_null(wal_q_get(f, 3, "absent"));
		assert_null(wal_q_get(f, 3, "op"));
		assert_null(wal_q_get(f, 3, "size"));
		assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1); /* one line */
	}
}

/* A record built field by field reads back field by field. */
static void test_record(void **state)
{
	struct wal_q_rec r;
	struct wal_q_field f[8];
	char buf[512];

	(void)state;
	wal_q_rec(&r);
	wal_q_str(&r, "file", "data/a b/1-2.part");
	wal_q_str(&r, "op", "set-aside");
	wal_q_u64(&r, "size", 18446744073709551615ull);
	wal_q_range(&r, "lsn", 3, 9);
	wal_q_flag(&r, "partial");
	wal_q_str(&r, "reason", "say \"x\"\nthen\\y");
	const char *line = wal_q_end(&r);
	assert_int_equal(line[0], 'f');
	assert_int_equal(line[strlen(line) - 1], '\n');
	assert_null(strchr(line, '\n') == line + strlen(line) - 1 ? NULL : "a newline inside the record");
	int n = wal_q_parse(line, f, 8, buf, sizeof buf);
	assert_int_equal(n, 6);
	assert_string_equal(wal_q_get(f, 6, "file"), "data/a b/1-2.part");
	assert_string_equal(wal_q_get(f, 6, "op"), "set-aside");
	assert_string_equal(wal_q_get(f, 6, "size"), "18446744073709551615");
	assert_string_equal(wal_q_get(f, 6, "lsn"), "3-9");
	assert_string_equal(wal_q_get(f, 6, "partial"), "");
	assert_string_equal(wal_q_get(f, 6, "reason"), "say \"x\"\nthen\\y");
}

static void test_malformed(void **state)
{
	char buf[64];
	struct wal_q_field f[4];

	(void)state;
	assert_int_equal(wal_q_parse("reason=\"unterminated", f, 4, buf, sizeof buf), -1);
	assert_int_equal(wal_q_parse("a=1 b=2 c=3 d=4 e=5", f, 4, buf, sizeof buf), -1);
	assert_int_equal(wal_q_parse("", f, 4, buf, sizeof buf), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_record),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
