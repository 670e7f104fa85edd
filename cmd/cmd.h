/*
 * cmd.h - what the subcommands share: exit codes, common options, option
 * parsers and output helpers.  Subcommands return an exit code; only main()
 * exits.
 */
#ifndef WALCTL_CMD_H
#define WALCTL_CMD_H

#include <stdint.h>
#include <stdio.h>

#include "../lib/walctl.h"

/* Exit status (fsck's convention, OR-ed over several inputs). */
enum {
	EXIT_CLEAN = 0,
	EXIT_REPAIRED = 1,
	EXIT_TORN = 2,
	EXIT_DAMAGE = 4,
	EXIT_OPER = 8,
	EXIT_USAGE = 16,
};

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *synopsis;
	const char *summary;
};

extern const char *g_cmd; /* name of the running command, for messages */
extern int g_quiet, g_verbose;
extern const char *g_dir; /* -d, else $WALCTL_DIR, else ./walctl-data */

int cmd_bench(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_truncate(int argc, char **argv);
int cmd_consumers(int argc, char **argv);
int cmd_ship(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_write(int argc, char **argv);

const struct cmd *cmd_find(const char *name);
/* Print "usage: SYNOPSIS" and the option text; to stdout for -h. */
int cmd_usage(const char *name, const char *options, FILE *to);
/* An unknown option, or one without its value (getopt returned opt). */
int option_error(int opt, char **argv);
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void notef(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A logfmt record on stderr: ts and level, then FMT (serve, ship); only
 * errors with -q. */
void logfmt(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prometheus labels: NAME=VALUE valid for --metrics-label; the labels of
 * every metric into OUT: dir="DIR" (absolute) unless a label names dir,
 * then each LABEL, a later one of a name winning. */
int metric_label_ok(const char *kv);
/* --metrics-label ARG added to LABEL[*N] (at most CAP): 0, or the usage
 * error's status. */
int metric_label_opt(const char *arg, const char **label, size_t *n, size_t cap);
/* TEXT as the metrics file PATH, replaced atomically. */
int metrics_write(const char *path, const char *text, size_t n);
void metric_labels(char *out, size_t cap, const char *dir, const char *const *label, size_t nlabels);
const char *data_dir(void);
/* The exit status for a library error code. */
int exit_for(int walerr);

/* Option values: 0 ok, -1 bad (after printing a usage error). */
int parse_size(const char *opt, const char *s, uint64_t *out);
int parse_duration(const char *opt, const char *s, int64_t *out_ns);
int parse_u64(const char *opt, const char *s, uint64_t *out);
int parse_i64(const char *opt, const char *s, int64_t *out);
int parse_sync(const char *opt, const char *s, enum wal_sync_mode *out);
int parse_text_json(const char *s, int *json); /* --format text|json */

/* Output. */
/* JSON output (walctl(1), JSON OUTPUT): a string that is not valid UTF-8
 * goes out as {"encoding": "base64", "data": "..."} in its place;
 * json_data prints the two members "encoding" ("utf-8" or "base64") and
 * "data" of a payload; json_lsn prints 0 as null; json_num prints a
 * non-finite number as null. */
void json_str(FILE *f, const char *p, size_t n);
void json_data(FILE *f, const void *p, size_t n);
void json_lsn(FILE *f, uint64_t lsn);
void json_num(FILE *f, const char *fmt, double v);
/* bad-header, sealed, closed or open */
const char *segment_state(const struct wal_segment_info *si);
void json_segment(FILE *f, const struct wal_segment_info *si);
/* A point; SCHEMA, when not NULL, goes first (a jsonl record). */
void json_point(FILE *f, const struct wal_point *pt, const char *schema);
int print_lp(FILE *f, const struct wal_point *pt);
/* For a terminal: control bytes of the data as \xHH. */
void put_text(FILE *f, const char *p, size_t n);
void print_quoted(FILE *f, const char *p, size_t n);
int print_lp_text(FILE *f, const struct wal_point *pt);
int lp_has_directive(const char *buf, size_t n); /* "# DDL" or "# CONTEXT-DATABASE:" starts a line */

/* lpout.c: POINTS payloads decoded and formatted as line protocol on
 * worker threads and written to F in the order they were added, each
 * preceded by HEAD (may be NULL); a payload that does not decode prints the
 * points before the damage, then "WHERE: why" on stderr.  flush and free
 * return the exit status bits of what went wrong (EXIT_DAMAGE: a payload
 * did not decode; EXIT_OPER: out of memory), else 0; add returns -1 when
 * out of memory. */
struct lpout;
int lpout_new(struct lpout **out, FILE *f);
int lpout_add(struct lpout *o, const unsigned char *payload, size_t len, const char *head, const char *where);
int lpout_flush(struct lpout *o);
int lpout_free(struct lpout *o);
void fmt_time(char *buf, size_t cap, int64_t ns);

/* Plan a repair, print the plan (text or JSON) to OUT, apply it if asked.
 * Returns the exit status: without apply 0 when nothing is needed, else
 * the verify class of what the plan would fix; with apply 1 when bytes were
 * removed or rewritten, 0 otherwise; 4 when refused or damage remains. */
int run_repair(const struct wal_repair_opts *o, int json, FILE *out);

/* A progress line on stderr, only when stderr is a terminal and not -q,
 * shown once the work has taken a second and redrawn five times a second:
 * bytes done, the share and time left where the total is known, the rate,
 * and a count of ITEMS (points) where the caller has one. */
struct progress {
	int on, shown;
	uint64_t total;
	int64_t start_ns, last_ns;
	char what[64];
};
void progress_start(struct progress *p, const char *what, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
void progress_items(struct progress *p, uint64_t done, uint64_t items, const char *unit);
void progress_end(struct progress *p);

/* Common long options every command takes. */
#define COMMON_LONGOPTS                                                                                                \
	{ "dir", required_argument, NULL, 'd' }, { "quiet", no_argument, NULL, 'q' },                                  \
	    { "verbose", no_argument, NULL, 'v' },                                                                     \
	{                                                                                                              \
		"help", no_argument, NULL, 'h'                                                                         \
	}
#define COMMON_SHORTOPTS ":d:qvh" /* ":": a missing value is told from an unknown option */
/* Handle a common option; 1 handled, 0 not common. */
int common_opt(int c, const char *arg);

#define COMMON_HELP                                                                                                    \
	"  -d, --dir DIR              data directory (default $WALCTL_DIR, else ./walctl-data)\n"                      \
	"  -q, --quiet                only errors on stderr\n"                                                         \
	"  -v, --verbose              more detail on stderr\n"                                                         \
	"  -h, --help                 this help\n"

#endif
