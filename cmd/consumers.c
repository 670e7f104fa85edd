/*
 * consumers.c - walctl consumers: list, add and drop the named consumers of
 * a data directory (DIR/consumers/NAME, lib/consumers.c).
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static const char options[] =
    "  --from LSN                 add: deliver from LSN on (cursor LSN - 1)\n"
    "  --from-start               add: deliver everything, storage too (cursor 0)\n"
    "  --from-end                 add: deliver only what comes next (the default)\n"
    "  --format text|json         list format (default text); json: schema walctl-consumers/1\n";

enum { OPT_FROM = 256, OPT_FROM_START, OPT_FROM_END, OPT_FORMAT };

/* What the WAL holds: its segments and last LSN (the newest segment alone
 * is read). */
struct layout {
	uint64_t last;
	size_t n;
	struct wal_seg_span *seg;
};

static int read_layout(const char *dir, struct layout *l)
{
	if (wal_seg_spans(dir, &l->seg, &l->n, &l->last) != 0) {
		errorf("%s", wal_errmsg());
		return EXIT_OPER;
	}
	return 0;
}

/* The consumers, by name; one whose file does not read or whose cursor
 * lies past the WAL's end is damage: said, and left out. */
static int list(const char *dir, int json)
{
	struct wal_consumer_file *f;
	struct wal_consumer *v;
	struct layout l;
	size_t n = 0, nf;
	int rc, bad = 0;

	if (wal_consumers_scan(dir, &f, &nf) != 0) {
		errorf("%s", wal_errmsg());
		return EXIT_OPER;
	}
	if ((rc = read_layout(dir, &l)) != 0) {
		free(f);
		return rc;
	}
	if (!(v = calloc(nf ? nf : 1, sizeof *v))) {
		free(f);
		free(l.seg);
		errorf("out of memory");
		return EXIT_OPER;
	}
	for (size_t i = 0; i < nf; i++) {
		if (f[i].rc == 0 && !f[i].c.lost && wal_consumer_check_end(&f[i].c, l.last) != 0) {
			f[i].rc = WAL_ECORRUPT;
			snprintf(f[i].why, sizeof f[i].why, "%s", wal_errmsg());
		}
		if (f[i].rc) {
			errorf("%s; run 'walctl verify -d %s'", f[i].why, dir);
			bad |= f[i].rc == WAL_ECORRUPT ? EXIT_DAMAGE : EXIT_OPER;
			continue;
		}
		v[n++] = f[i].c;
	}
	free(f);
	if (json) {
		fputs("{\"schema\": \"walctl-consumers/1\", \"path\": ", stdout);
		json_str(stdout, dir, strlen(dir));
		fputs(", \"last_lsn\": ", stdout);
		json_lsn(stdout, l.last);
		fputs(", \"consumers\": [", stdout);
	} else if (n) {
		printf("%-20s %12s %12s %14s %s\n", "consumer", "cursor_lsn", "lag_lsns", "lag_bytes", "state");
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t lag = l.last > v[i].lsn ? l.last - v[i].lsn : 0;
		uint64_t bytes = lag ? wal_seg_lag(l.seg, l.n, v[i].lsn) : 0;
		if (json) {
			fputs(i ? ", {\"name\": " : "{\"name\": ", stdout);
			json_str(stdout, v[i].name, strlen(v[i].name));
			printf(", \"cursor_lsn\": %" PRIu64 ", \"lag_lsns\": %" PRIu64 ", \"lag_bytes\": %" PRIu64
			       ", \"state\": \"%s\", \"reason\": ",
			       v[i].lsn, lag, bytes, v[i].lost ? "lost" : "live");
			if (v[i].lost)
				json_str(stdout, v[i].why, strlen(v[i].why));
			else
				fputs("null", stdout);
			putchar('}');
		} else {
			printf("%-20s %12" PRIu64 " %12" PRIu64 " %14" PRIu64 " %s", v[i].name, v[i].lsn, lag, bytes,
			       v[i].lost ? "lost: " : "live");
			if (v[i].lost)
				put_text(stdout, v[i].why, strlen(v[i].why));
			putchar('\n');
		}
	}
	if (json)
		fputs("]}\n", stdout);
	else if (!n && !g_quiet)
		printf("no consumers in '%s'\n", dir);
	free(v);
	free(l.seg);
	return bad;
}

int cmd_consumers(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONGOPTS,
		{ "from", required_argument, NULL, OPT_FROM },
		{ "from-start", no_argument, NULL, OPT_FROM_START },
		{ "from-end", no_argument, NULL, OPT_FROM_END },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ NULL, 0, NULL, 0 },
	};
	int opt, json = 0, froms = 0, from_start = 0, from_end = 0, rc;
	uint64_t from = 0;

	while ((opt = getopt_long(argc, argv, COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (common_opt(opt, optarg))
			continue;
		switch (opt) {
		case 'h': return cmd_usage("consumers", options, stdout);
		case OPT_FROM:
			if (parse_u64("--from", optarg, &from))
				return EXIT_USAGE;
			if (!from)
				return usage_error("option '--from': LSNs start at 1");
			froms++;
			break;
		case OPT_FROM_START:
			from_start = 1;
			froms++;
			break;
		case OPT_FROM_END:
			from_end = 1;
			froms++;
			break;
		case OPT_FORMAT:
			if (parse_text_json(optarg, &json))
				return EXIT_USAGE;
			break;
		default: return option_error(opt, argv);
		}
	}
	const char *what = optind < argc ? argv[optind] : "list";
	const char *dir = data_dir();
	int nargs = argc - optind;

	if (strcmp(what, "list") && strcmp(what, "add") && strcmp(what, "drop"))
		return usage_error("unknown action '%s' (want list, add NAME or drop NAME)", what);
	if (strcmp(what, "list") == 0) {
		if (nargs > 1)
			return usage_error("unexpected argument '%s'", argv[optind + 1]);
		if (froms)
			return usage_error("--from, --from-start and --from-end go with add");
		return list(dir, json);
	}
	if (nargs != 2)
		return usage_error("%s takes one consumer NAME", what);
	const char *name = argv[optind + 1];
	if (!wal_consumer_name_ok(name))
		return usage_error("invalid consumer name '%s': 1 to %d letters, digits, '.', '_' or '-', not starting "
		                   "with '.' or '-'",
		                   name, WAL_CONSUMER_NAME_MAX);
	if (json)
		return usage_error("--format goes with list");
	if (strcmp(what, "drop") == 0) {
		if (froms)
			return usage_error("--from, --from-start and --from-end go with add");
		char stamp[64];
		if ((rc = wal_consumer_drop(dir, name, stamp, sizeof stamp)) != 0) {
			errorf("%s", wal_errmsg());
			return EXIT_OPER;
		}
		notef("dropped consumer '%s': it holds back reclamation no more (its cursor is kept in quarantine/%s)",
		      name, stamp);
		return 0;
	}
	if (froms > 1)
		return usage_error("give one of --from LSN, --from-start and --from-end");
	uint64_t cursor = from ? from - 1 : 0;
	if (!from_start) {
		(void)from_end; /* the default */
		struct layout l;
		if ((rc = read_layout(dir, &l)) != 0)
			return rc;
		free(l.seg);
		/* a cursor past the end would skip what comes next */
		if (from > l.last + 1)
			return usage_error("option '--from': LSN %" PRIu64 " is past the WAL's next LSN, %" PRIu64,
			                   from, l.last + 1);
		if (!from)
			cursor = l.last;
	}
	if ((rc = wal_consumer_add(dir, name, cursor)) != 0) {
		errorf("%s", wal_errmsg());
		return rc == WAL_EINVAL ? EXIT_USAGE : EXIT_OPER;
	}
	notef("added consumer '%s' with cursor LSN %" PRIu64 " (it delivers from LSN %" PRIu64 ")", name, cursor,
	      cursor + 1);
	return 0;
}
