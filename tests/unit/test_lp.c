/*
 * test_lp.c - the line-protocol parser: syntax, escapes, types, errors and
 * their line numbers, precisions, and input arriving in pieces.
 */
#include "util.h"

static char out[65536];

/* Parse all of IN at once; the points as line protocol (errors as "ERR n:
 * why") in out. */
static const char *parse_all(const char *in, enum wal_precision prec, int64_t deft)
{
	wal_lp_t *p;
	struct wal_point pt;
	size_t n = 0;
	int r;

	assert_int_equal(wal_lp_new(&p, prec, deft), 0);
	wal_lp_input(p, in, strlen(in), 1, 1);
	while ((r = wal_lp_next(p, &pt)) != 0) {
		if (r == WAL_EPARSE)
			n += (size_t)snprintf(out + n, sizeof out - n, "ERR %llu: %s\n",
			                      (unsigned long long)wal_lp_line(p), wal_lp_error(p));
		else
			n += wal_lp_format(out + n, sizeof out - n, &pt);
	}
	out[n] = 0;
	wal_lp_free(p);
	return out;
}

static void test_basic(void **state)
{
	(void)state;
	assert_string_equal(parse_all("cpu,host=a,region=us value=1.5,n=-3i,u=7u,ok=t,msg=\"hi\" 1000\n", 0, 0),
	                    "cpu,host=a,region=us value=1.5,n=-3i,u=7u,ok=true,msg=\"hi\" 1000\n");
	assert_string_equal(parse_all("m v=1", 0, 42), "m v=1 42\n");
	assert_string_equal(parse_all("   m    v=1    5   \r\n\n# comment\r\n", 0, 0), "m v=1 5\n");
	assert_string_equal(parse_all("", 0, 0), "");
	assert_string_equal(parse_all("\n\n#only\n", 0, 0), "");
}

static void test_escapes(void **state)
{
	(void)state;
	assert_string_equal(parse_all("my\\ cpu\\,x,t\\=k=v\\ 1 f\\,k=\"a\\\"b\\\\c\\n\" 1\n", 0, 0),
	                    "my\\ cpu\\,x,t\\=k=v\\ 1 f\\,k=\"a\\\"b\\\\c\\\\n\" 1\n");
	/* "=" needs no escape in a measurement; other backslashes stay */
	assert_string_equal(parse_all("cpu=load,k=va\\lue v=1 1", 0, 0), "cpu=load,k=va\\lue v=1 1\n");
	/* a raw newline inside a string is part of it */
	assert_string_equal(parse_all("m s=\"a\nb\" 1\nm v=2 2\n", 0, 0), "m s=\"a\nb\" 1\nm v=2 2\n");
}

static void test_numbers(void **state)
{
	(void)state;
	/* every digit count and sign the integer formatter meets */
	assert_string_equal(parse_all("m a=0i,b=-1i,c=9i,d=10i,e=-99i,f=100i,g=1000000007i,h=0u,k=10u 0", 0, 0),
	                    "m a=0i,b=-1i,c=9i,d=10i,e=-99i,f=100i,g=1000000007i,h=0u,k=10u 0\n");
	assert_string_equal(parse_all("m v=t -1234567890123456789\nm v=f -9223372036854775806\nm v=1i 7", 0, 0),
	                    "m v=true -1234567890123456789\nm v=false -9223372036854775806\nm v=1i 7\n");
	assert_string_equal(
	    parse_all("m a=9223372036854775807i,b=-9223372036854775808i,c=18446744073709551615u 1", 0, 0),
	    "m a=9223372036854775807i,b=-9223372036854775808i,c=18446744073709551615u 1\n");
	assert_string_equal(parse_all("m a=1.,b=.5,c=-0.,d=1e3,e=1.7976931348623157e308 1", 0, 0),
	                    "m a=1,b=0.5,c=-0,d=1000,e=1.7976931348623157e+308 1\n");
	assert_non_null(strstr(parse_all("m a=9223372036854775808i", 0, 0), "out of range"));
	assert_non_null(strstr(parse_all("m a=-1u", 0, 0), "invalid unsigned integer"));
	assert_non_null(strstr(parse_all("m a=1e309", 0, 0), "out of range"));
	assert_non_null(strstr(parse_all("m a=1.1.1", 0, 0), "invalid float"));
	assert_non_null(strstr(parse_all("m a=NaN", 0, 0), "unrecognized type"));
	assert_non_null(strstr(parse_all("m a=tRUE", 0, 0), "invalid boolean"));
}

static void test_errors_and_lines(void **state)
{
	(void)state;
	assert_string_equal(parse_all("m v=1 1\ncpu\nm v=2 2\nm,a=1,a=2 v=1\n\tm v=1\nm v=3 3\n", 0, 0),
	                    "m v=1 1\n"
	                    "ERR 2: expected tag key or field but found '\\n' instead\n"
	                    "m v=2 2\n"
	                    "ERR 4: duplicate tag key \"a\"\n"
	                    "ERR 5: invalid character '\\t' found at start of measurement name\n"
	                    "m v=3 3\n");
	assert_non_null(strstr(parse_all("m,k= v=1", 0, 0), "expected tag value"));
	assert_non_null(strstr(parse_all("m v=\"open", 0, 0), "closing quote"));
	assert_non_null(strstr(parse_all("m v=1 12x", 0, 0), "invalid timestamp"));
	assert_non_null(strstr(parse_all("m v=1 1 2", 0, 0), "unexpected text after timestamp"));
	assert_non_null(strstr(parse_all("m\xff v=1", 0, 0), "invalid UTF-8"));
	assert_non_null(strstr(parse_all("m v=1 9223372036854775807", WAL_PREC_S, 0), "out of range"));
}

static void test_precision(void **state)
{
	(void)state;
	assert_int_equal(wal_precision_parse("1us"), WAL_PREC_US);
	assert_int_equal(wal_precision_parse("s"), WAL_PREC_S);
	assert_int_equal(wal_precision_parse("h"), -1);
	assert_string_equal(parse_all("m v=1 946730096", WAL_PREC_S, 0), "m v=1 946730096000000000\n");
	assert_string_equal(parse_all("m v=1", WAL_PREC_MS, 946730096789012345), "m v=1 946730096789000000\n");
	assert_string_equal(parse_all("m v=1", WAL_PREC_S, -1500000000), "m v=1 -2000000000\n");
}

/* The same input fed a byte at a time, as a reader that hands over what
 * it has, must give the same points and errors. */
static void test_pieces(void **state)
{
	static const char in[] = "a,t=1 v=1 1\r\nb s=\"x\ny\",w=2i\n# c\nbad line\n  c v=3 3  \nd\\ e v=4";
	char want[65536], got[65536], buf[256];
	wal_lp_t *p;
	struct wal_point pt;
	size_t have = 0, n = 0, fed = 0;
	int r;

	(void)state;
	snprintf(want, sizeof want, "%s", parse_all(in, 0, 9));
	assert_int_equal(wal_lp_new(&p, 0, 9), 0);
	uint64_t line = 1;
	while (fed <= sizeof in - 1) {
		int eof = fed == sizeof in - 1;
		if (!eof)
			buf[have++] = in[fed];
		fed++;
		wal_lp_input(p, buf, have, line, eof);
		line = 0;
		while ((r = wal_lp_next(p, &pt)) != 0) {
			if (r == WAL_EPARSE)
				n += (size_t)snprintf(got + n, sizeof got - n, "ERR %llu: %s\n",
				                      (unsigned long long)wal_lp_line(p), wal_lp_error(p));
			else
				n += wal_lp_format(got + n, sizeof got - n, &pt);
		}
		size_t used = wal_lp_consumed(p);
		memmove(buf, buf + used, have - used);
		have -= used;
		if (eof)
			break;
	}
	got[n] = 0;
	assert_string_equal(got, want);
	assert_non_null(strstr(want, "ERR 5:"));
	wal_lp_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),     cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_numbers),   cmocka_unit_test(test_errors_and_lines),
		cmocka_unit_test(test_precision), cmocka_unit_test(test_pieces),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
