/*
 * walctl.c - main(): global options, the command table, help and version,
 * and the final check that stdout was written in full.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

/* Sorted by name.  The synopsis is the man page's SYNOPSIS, word for word
 * (tests/cli/options.bats keeps them equal). */
static const struct cmd cmds[] = {
	{ "bench", cmd_bench,
	  "walctl bench [--sync all|fsync|fdatasync|async] [--points N] [--input FILE] [--latency N] "
	  "[--format text|json] [--emit N]",
	  "Measure the real ingest path: points/s, MB/s, syncs, ack latency per sync mode." },
	{ "compact", cmd_compact,
	  "walctl compact [-d DIR] [--keep N] [--merge] [--max-segment-size SIZE] [--max-consumer-lag SIZE] "
	  "[--purge-quarantine DUR] "
	  "[--apply] [--format text|json]",
	  "Remove segments wholly covered by the last checkpoint; merge small sealed ones." },
	{ "consumers", cmd_consumers,
	  "walctl consumers [-d DIR] [list [--format text|json] | add NAME [--from LSN | --from-start | "
	  "--from-end] | drop NAME]",
	  "List, add and drop the named consumers whose cursors hold back reclamation." },
	{ "dump", cmd_dump,
	  "walctl dump [-d DIR | PATH...] [--from LSN] [--to LSN] [--type T] [--limit N] "
	  "[--db NAME] [--format text|json|jsonl|lp|influx-import|raw] [--stats] [--follow]",
	  "Print the entries of a WAL, a segment, or a data directory's logical content." },
	{ "recover", cmd_recover,
	  "walctl recover [-d DIR] [--mode tail|salvage] [--apply] [--emit lp] [--undo STAMP] "
	  "[--rewind-consumers] [--compression-level L] [--format text|json]",
	  "Cut a torn tail or salvage around damage, then replay into storage; or undo a repair." },
	{ "serve", cmd_serve,
	  "walctl serve [-d DIR] [--db NAME] [--precision ns|us|ms|s] [--sync fsync|fdatasync|async] "
	  "[--sync-interval DUR] [--buffer-points N] [--flush-interval DUR] [--max-segment-size SIZE] "
	  "[--max-segment-age DUR] [--keep-segments N] [--max-consumer-lag SIZE] [--compression-level L] "
	  "[--metrics-file PATH] [--metrics-label "
	  "NAME=VALUE] [--ack] "
	  "[--strict]",
	  "Run the ingestion engine over stdin: WAL, group commit, storage, checkpoints." },
	{ "ship", cmd_ship,
	  "walctl ship [-d DIR] --consumer NAME --exec CMD [--format lp|influx-import|jsonl] [--batch-points N] "
	  "[--batch-interval DUR] [--once] [--metrics-file PATH] [--metrics-label NAME=VALUE]",
	  "Hand points onward in batches to a command, from a consumer's cursor on." },
	{ "truncate", cmd_truncate,
	  "walctl truncate [-d DIR] (--after LSN [--rewind-consumers] | --torn-tail) [--apply] "
	  "[--format text|json]",
	  "Cut a torn tail, or every entry after an LSN." },
	{ "verify", cmd_verify, "walctl verify [-d DIR | PATH...] [--deep] [--format text|json]",
	  "Check headers, frames, LSN continuity, seals and payloads, and classify any damage." },
	{ "write", cmd_write,
	  "walctl write [-d DIR] [--input lp|raw] [--db NAME] [--precision ns|us|ms|s] "
	  "[--sync fsync|fdatasync|async] [--batch N] [--max-segment-size SIZE] [--max-segment-age DUR] "
	  "[--strict] [--parse-only] [--format jsonl] [--default-time NS] [FILE...]",
	  "Append line protocol (or raw lines) from FILEs or stdin to the WAL." },
};

const struct cmd *cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

static void main_usage(FILE *to)
{
	fprintf(to, "usage: walctl [-d DIR] [-q] [-v] COMMAND [ARGS...]\n"
	            "       walctl help COMMAND | --version | --help\n\n"
	            "Commands:\n");
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		fprintf(to, "  %-9s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(to, "\nExit status: 0 clean, 1 repaired, 2 torn tail only, 4 damage to durable data or\n"
	            "rejected input, 8 operational error, 16 usage error (OR-ed over several inputs).\n"
	            "See walctl(1) and walctl-COMMAND(1).\n");
}

static void version(void)
{
	char libs[128];

	wal_lib_versions(libs, sizeof libs);
	printf("walctl %s (on-disk format %d; %s)\n", WAL_VERSION_STRING, WAL_FORMAT_VERSION, libs);
}

/* 1 if standard output is a pipe or socket whose reader is gone. */
static int stdout_gone(void)
{
	struct pollfd p = { .fd = 1, .events = POLLOUT };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP));
}

static int finish_stdout(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
		/* the reader took what it wanted (dump | head): not an error */
		if (stdout_gone())
			return rc;
		errorf("error writing to standard output: %s", strerror(errno ? errno : EIO));
		return rc | EXIT_OPER;
	}
	return rc;
}

int main(int argc, char **argv)
{
	/* a write to a closed pipe fails with EPIPE rather than kill: a reader
	 * stops quietly, serve says why it stopped */
	signal(SIGPIPE, SIG_IGN);
	static const struct option longopts[] = {
		COMMON_LONGOPTS,
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cmd *c;
	int opt;

	while ((opt = getopt_long(argc, argv, "+:d:qvhV", longopts, NULL)) != -1) {
		if (common_opt(opt, optarg))
			continue;
		switch (opt) {
		case 'h': main_usage(stdout); return finish_stdout(EXIT_CLEAN);
		case 'V': version(); return finish_stdout(EXIT_CLEAN);
		default: return option_error(opt, argv);
		}
	}
	if (optind >= argc) {
		main_usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[optind];
	if (strcmp(name, "help") == 0) {
		if (optind + 1 >= argc) {
			main_usage(stdout);
			return finish_stdout(EXIT_CLEAN);
		}
		name = argv[optind + 1];
		if (!(c = cmd_find(name))) {
			errorf("'%s' is not a walctl command; see 'walctl --help'", name);
			return EXIT_USAGE;
		}
		static char help_opt[] = "--help";
		char *hargv[] = { argv[optind + 1], help_opt, NULL };
		g_cmd = c->name;
		optind = 0;
		return finish_stdout(c->fn(2, hargv));
	}
	if (strcmp(name, "version") == 0) {
		version();
		return finish_stdout(EXIT_CLEAN);
	}
	if (!(c = cmd_find(name))) {
		errorf("'%s' is not a walctl command; see 'walctl --help'", name);
		return EXIT_USAGE;
	}
	g_cmd = c->name;
	argv += optind;
	argc -= optind;
	optind = 0; /* glibc: reinitialise getopt for the command */
	return finish_stdout(c->fn(argc, argv));
}
