/*
 * sqlite_baseline.c - the SQLite baseline of make bench: the same line
 * protocol, parsed by walctl's parser, inserted into SQLite in WAL mode with
 * synchronous=NORMAL, a prepared INSERT and 5,000-row transactions.
 *
 *   sqlite_baseline FILE.lp DB
 *
 * Prints "points SECONDS".
 */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/walctl.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void check(int rc, sqlite3 *db, const char *what)
{
	if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
		fprintf(stderr, "sqlite_baseline: %s: %s\n", what, sqlite3_errmsg(db));
		exit(8);
	}
}

int main(int argc, char **argv)
{
	sqlite3 *db;
	sqlite3_stmt *ins;
	struct stat st;
	wal_lp_t *lp;
	struct wal_point pt;
	long points = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: sqlite_baseline FILE.lp DB\n");
		return 16;
	}
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &st) != 0)
		return 8;
	char *buf = malloc((size_t)st.st_size);
	if (!buf || read(fd, buf, (size_t)st.st_size) != st.st_size)
		return 8;
	close(fd);
	unlink(argv[2]);

	double t0 = now();
	check(sqlite3_open(argv[2], &db), db, "open");
	check(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			       "CREATE TABLE points(time INTEGER, measurement TEXT,"
			       " t0 TEXT, t1 TEXT, t2 TEXT, t3 TEXT, t4 TEXT, t5 TEXT, t6 TEXT, t7 TEXT, t8 TEXT, t9 TEXT,"
			       " f0 INTEGER, f1 INTEGER, f2 INTEGER, f3 INTEGER, f4 INTEGER, f5 INTEGER, f6 INTEGER,"
			       " f7 INTEGER, f8 INTEGER, f9 INTEGER)",
			   NULL, NULL, NULL),
	      db, "schema");
	check(sqlite3_prepare_v2(db, "INSERT INTO points VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1,
				 &ins, NULL),
	      db, "prepare");
	if (wal_lp_new(&lp, WAL_PREC_NS, 0))
		return 8;
	wal_lp_input(lp, buf, (size_t)st.st_size, 1, 1);
	check(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), db, "begin");
	while (wal_lp_next(lp, &pt) == 1) {
		sqlite3_bind_int64(ins, 1, pt.time);
		sqlite3_bind_text(ins, 2, pt.measurement.p, (int)pt.measurement.n, SQLITE_STATIC);
		for (size_t i = 0; i < 10; i++) {
			if (i < pt.ntags)
				sqlite3_bind_text(ins, 3 + (int)i, pt.tags[i].val.p, (int)pt.tags[i].val.n, SQLITE_STATIC);
			else
				sqlite3_bind_null(ins, 3 + (int)i);
			if (i < pt.nfields && pt.fields[i].kind == WAL_INT)
				sqlite3_bind_int64(ins, 13 + (int)i, pt.fields[i].v.i);
			else
				sqlite3_bind_null(ins, 13 + (int)i);
		}
		check(sqlite3_step(ins), db, "insert");
		sqlite3_reset(ins);
		if (++points % 5000 == 0) {
			check(sqlite3_exec(db, "COMMIT; BEGIN", NULL, NULL, NULL), db, "commit");
		}
	}
	check(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), db, "commit");
	sqlite3_finalize(ins);
	check(sqlite3_close(db), db, "close");
	printf("%ld %.6f\n", points, now() - t0);
	wal_lp_free(lp);
	free(buf);
	return 0;
}
