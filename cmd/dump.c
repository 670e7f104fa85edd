/*
 * dump.c - walctl dump: print the entries of a WAL.
 *
 * text: one line per entry, its points indented as line protocol;
 * jsonl: one object per entry; json: one document (schema walctl-dump/1);
 * lp: the points only, as line protocol; raw: RAW payloads, one per line.
 * Damage met on the way is reported on stderr and sets the exit status as
 * verify would; the entries around it are still printed.
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cmd.h"

static const char options[] =
    "  --from LSN                 start at this LSN\n"
    "  --to LSN                   stop after this LSN\n"
    "  --type T                   only entries of type T: points, raw, checkpoint, seal, close, loss\n"
    "  --limit N                  at most N entries\n"
    "  --format text|json|jsonl|lp|raw\n"
    "                             output format (default text)\n"
    "  --stats                    per-segment and per-type counts instead of entries\n"
    "  --follow                   keep printing new entries of a live WAL (until interrupted)\n";

enum { OPT_FROM = 256, OPT_TO, OPT_TYPE, OPT_LIMIT, OPT_FORMAT, OPT_STATS, OPT_FOLLOW };
enum { F_TEXT, F_JSON, F_JSONL, F_LP, F_RAW };

static volatile sig_atomic_t interrupted;
static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

struct dump {
	int format;
	uint64_t from, to, limit;
	int type;
	wal_dec_t *dec;
	uint64_t printed;
};

static int print_payload(struct dump *d, const unsigned char *payload, size_t len)
{
	struct wal_str db;
	struct wal_point pt;
	int rc, n = 0;

	if (wal_dec_begin(d->dec, payload, len, &db) != 0)
		return WAL_EPARSE;
	if (d->format == F_JSON || d->format == F_JSONL) {
		fputs(", \"db\": ", stdout);
		json_str(stdout, db.p, db.n);
		fputs(", \"points\": [", stdout);
	}
	while ((rc = wal_dec_next(d->dec, &pt)) == 1) {
		switch (d->format) {
		case F_TEXT:
			fputs("  ", stdout);
			print_lp(stdout, &pt);
			break;
		case F_LP: print_lp(stdout, &pt); break;
		default:
			if (n)
				fputs(", ", stdout);
			json_point(stdout, &pt);
		}
		n++;
	}
	if (d->format == F_JSON || d->format == F_JSONL)
		fputs("]", stdout);
	return rc;
}

static int print_points(struct dump *d, const struct wal_entry *e)
{
	if (print_payload(d, e->payload, e->len) == 0)
		return 0;
	errorf("segment '%s' offset %" PRIu64 ": LSN %" PRIu64 ": %s", e->segment, e->offset, e->lsn, wal_errmsg());
	return EXIT_DAMAGE;
}

/* One stored payload of a partition, as an entry. */
static int print_stored(struct dump *d, const char *part, const unsigned char *payload, size_t len)
{
	int rc;

	if (d->format == F_TEXT)
		printf("storage %s\n", part);
	else if (d->format != F_LP) {
		if (d->format == F_JSON && d->printed)
			fputs(",\n", stdout);
		fputs("{\"source\": \"storage\", \"partition\": ", stdout);
		json_str(stdout, part, strlen(part));
	}
	rc = print_payload(d, payload, len);
	if (d->format == F_JSON || d->format == F_JSONL)
		fputs(d->format == F_JSONL ? "}\n" : "}", stdout);
	d->printed++;
	if (rc) {
		errorf("partition '%s': %s", part, wal_errmsg());
		return EXIT_DAMAGE;
	}
	return 0;
}

/* The points in storage: every partition at or below the last checkpoint
 * (one above it was left by an interrupted replay; its points are still
 * in the WAL), or the one partition file given. */
/* Print the points of one partition file; rel names it in the output. */
static int dump_partition(struct dump *d, const char *path, const char *rel)
{
	wal_part_t *p;
	const unsigned char *pl;
	size_t len;
	int k = 0, rc = 0;

	if (wal_part_open(&p, path) != 0) {
		errorf("%s", wal_errmsg());
		return EXIT_DAMAGE;
	}
	while (d->printed < d->limit && (k = wal_part_next(p, &pl, &len)) == 1)
		rc |= print_stored(d, rel, pl, len);
	if (k < 0) {
		errorf("%s", wal_errmsg());
		rc |= EXIT_DAMAGE;
	}
	wal_part_close(p);
	return rc;
}

/* Print the points of every partition in view, in LSN order. */
static int dump_storage(struct dump *d, const char *dir, const wal_view_t *view)
{
	int rc = 0;

	for (size_t i = 0; i < wal_view_npartitions(view) && d->printed < d->limit; i++) {
		char path[PATH_MAX + 700];
		const char *rel = wal_view_partition(view, i)->rel;
		snprintf(path, sizeof path, "%s/data/%s", dir, rel);
		rc |= dump_partition(d, path, rel);
	}
	return rc;
}

static int print_entry(struct dump *d, const struct wal_entry *e)
{
	unsigned t = e->type & 0x7f;
	char ts[48];
	int rc = 0;

	if (d->format == F_LP) {
		return t == WAL_T_POINTS ? print_points(d, e) : 0;
	}
	if (d->format == F_RAW) {
		if (t == WAL_T_RAW) {
			fwrite(e->payload, 1, e->len, stdout);
			putchar('\n');
		}
		return 0;
	}
	fmt_time(ts, sizeof ts, e->time_ns);
	if (d->format == F_TEXT) {
		printf("LSN %" PRIu64 " %s %u bytes segment %s offset %" PRIu64 " mark %" PRIu64 " time %s", e->lsn,
		       wal_type_name(e->type), e->len, e->segment, e->offset, e->watermark, ts);
	} else {
		if (d->format == F_JSON && d->printed)
			fputs(",\n", stdout);
		printf("{\"lsn\": %" PRIu64
		       ", \"type\": \"%s\", \"type_code\": %u, \"segment\": \"%s\", \"offset\": %" PRIu64
		       ", \"length\": %u, \"mark\": %" PRIu64 ", \"time\": \"%s\"",
		       e->lsn, wal_type_name(e->type), e->type, e->segment, e->offset, e->len, e->watermark, ts);
	}
	switch (t) {
	case WAL_T_POINTS:
		if (d->format == F_TEXT)
			putchar('\n');
		rc = print_points(d, e);
		break;
	case WAL_T_RAW:
		if (d->format == F_TEXT) {
			fputs(" data ", stdout);
			json_str(stdout, (const char *)e->payload, e->len);
		} else {
			fputs(", \"data\": ", stdout);
			json_str(stdout, (const char *)e->payload, e->len);
		}
		break;
	case WAL_T_SEAL: {
		struct wal_seal s;
		if (wal_seal_decode(e->payload, e->len, &s) == 0)
			printf(d->format == F_TEXT
			           ? " entries %" PRIu64 " first %" PRIu64 " last %" PRIu64 " bytes %" PRIu64
			           : ", \"entries\": %" PRIu64 ", \"first_lsn\": %" PRIu64 ", \"last_lsn\": %" PRIu64
			             ", \"bytes\": %" PRIu64,
			       s.entries, s.first_lsn, s.last_lsn, s.bytes);
		break;
	}
	case WAL_T_CHECKPOINT: {
		struct wal_checkpoint c;
		if (wal_checkpoint_decode(e->payload, e->len, &c, NULL, 0) == 0) {
			printf(d->format == F_TEXT ? " through %" PRIu64 " partitions %zu"
			                           : ", \"through_lsn\": %" PRIu64 ", \"partitions\": %zu",
			       c.lsn, c.npartitions);
		}
		break;
	}
	default: break;
	}
	if (d->format == F_TEXT) {
		if (t != WAL_T_POINTS)
			putchar('\n');
	} else {
		putchar('}');
		if (d->format == F_JSONL)
			putchar('\n');
	}
	return rc;
}

struct tstat {
	uint64_t count, bytes;
};

static int print_stats(wal_scan_t *s, int json)
{
	struct wal_entry e;
	struct tstat types[8] = { { 0, 0 } };
	uint64_t first = 0, last = 0, ckpt = 0, after_ckpt = 0, total = 0;
	int64_t tmin = 0, tmax = 0;
	int rc;

	while ((rc = wal_scan_next(s, &e)) == 1) {
		unsigned t = e.type & 0x7f;
		uint64_t b = WAL_FRAME_HEADER_SIZE + e.len;
		types[t < 8 ? t : 0].count++;
		types[t < 8 ? t : 0].bytes += b;
		if (!first) {
			first = e.lsn;
			tmin = e.time_ns;
		}
		last = e.lsn;
		tmax = e.time_ns;
		total += b;
		after_ckpt += b;
		if (t == WAL_T_CHECKPOINT) {
			struct wal_checkpoint c;
			if (wal_checkpoint_of(&e, &c) && c.lsn >= ckpt) {
				ckpt = c.lsn;
				after_ckpt = 0;
			}
		}
	}
	if (rc < 0)
		return rc;
	char a[48], b[48];
	fmt_time(a, sizeof a, tmin);
	fmt_time(b, sizeof b, tmax);
	if (json) {
		printf("{\"schema\": \"walctl-dump-stats/1\", \"first_lsn\": %" PRIu64 ", \"last_lsn\": %" PRIu64
		       ", \"first_time\": \"%s\", \"last_time\": \"%s\", \"bytes\": %" PRIu64
		       ", \"checkpoint_lsn\": %" PRIu64 ", \"bytes_not_checkpointed\": %" PRIu64 ", \"segments\": [",
		       first, last, first ? a : "", first ? b : "", total, ckpt, after_ckpt);
	} else {
		printf("%-22s %6s %12s %12s %10s %12s %s\n", "segment", "seq", "first_lsn", "last_lsn", "entries",
		       "bytes", "state");
	}
	for (size_t i = 0; i < wal_scan_nsegments(s); i++) {
		const struct wal_segment_info *si = wal_scan_segment(s, i);
		const char *state = !si->header_ok ? "bad-header"
		                    : si->sealed   ? "sealed"
		                    : si->closed   ? "closed"
		                                   : "open";
		if (json)
			printf("%s{\"name\": \"%s\", \"seq\": %" PRIu64 ", \"first_lsn\": %" PRIu64
			       ", \"last_lsn\": %" PRIu64 ", \"entries\": %" PRIu64 ", \"bytes\": %" PRIu64
			       ", \"state\": \"%s\"}",
			       i ? ", " : "", si->name, si->seq, si->first_lsn, si->last_lsn, si->entries, si->bytes,
			       state);
		else
			printf("%-22s %6" PRIu64 " %12" PRIu64 " %12" PRIu64 " %10" PRIu64 " %12" PRIu64 " %s\n",
			       si->name, si->seq, si->first_lsn, si->last_lsn, si->entries, si->bytes, state);
	}
	if (json)
		printf("], \"types\": {");
	else
		printf("\n%-12s %10s %14s\n", "type", "entries", "bytes");
	int n = 0;
	for (unsigned t = 0; t < 8; t++) {
		if (!types[t].count)
			continue;
		const char *name = t ? wal_type_name(t) : "other";
		if (json)
			printf("%s\"%s\": {\"entries\": %" PRIu64 ", \"bytes\": %" PRIu64 "}", n++ ? ", " : "", name,
			       types[t].count, types[t].bytes);
		else
			printf("%-12s %10" PRIu64 " %14" PRIu64 "\n", name, types[t].count, types[t].bytes);
	}
	if (json) {
		printf("}}\n");
	} else {
		printf("\nLSN %" PRIu64 "-%" PRIu64 ", %" PRIu64 " bytes", first, last, total);
		if (first)
			printf(", written %s to %s", a, b);
		printf("\nlast checkpoint through LSN %" PRIu64 "; %" PRIu64 " bytes not yet checkpointed\n", ckpt,
		       after_ckpt);
	}
	return 0;
}

static int report_findings(wal_scan_t *s, size_t from)
{
	for (size_t i = from; i < wal_scan_nfindings(s); i++) {
		const struct wal_finding *f = wal_scan_finding(s, i);
		errorf("segment '%s' offset %" PRIu64 ": %s; run 'walctl verify' for details", f->segment, f->offset,
		       f->message);
	}
	return (int)wal_scan_nfindings(s);
}

int cmd_dump(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONGOPTS,
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "stats", no_argument, NULL, OPT_STATS },
		{ "follow", no_argument, NULL, OPT_FOLLOW },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const formats[] = { "text", "json", "jsonl", "lp", "raw" };
	struct dump d = { .to = UINT64_MAX, .limit = UINT64_MAX, .type = -1 };
	int stats = 0, follow = 0, opt, rc = 0;

	while ((opt = getopt_long(argc, argv, COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (common_opt(opt, optarg))
			continue;
		switch (opt) {
		case 'h': return cmd_usage("dump", options, stdout);
		case OPT_FROM:
			if (parse_u64("--from", optarg, &d.from))
				return EXIT_USAGE;
			break;
		case OPT_TO:
			if (parse_u64("--to", optarg, &d.to))
				return EXIT_USAGE;
			break;
		case OPT_LIMIT:
			if (parse_u64("--limit", optarg, &d.limit))
				return EXIT_USAGE;
			break;
		case OPT_TYPE:
			if ((d.type = wal_type_parse(optarg)) < 0)
				return usage_error("option '--type': invalid value '%s' (want points, raw, checkpoint, "
				                   "seal, close or loss)",
				                   optarg);
			break;
		case OPT_FORMAT:
			d.format = -1;
			for (int i = 0; i < 5; i++)
				if (strcmp(optarg, formats[i]) == 0)
					d.format = i;
			if (d.format < 0)
				return usage_error(
				    "option '--format': invalid value '%s' (want text, json, jsonl, lp or raw)",
				    optarg);
			break;
		case OPT_STATS: stats = 1; break;
		case OPT_FOLLOW: follow = 1; break;
		default: return usage_error("unknown option; see 'walctl dump --help'");
		}
	}
	if (g_dir && optind < argc)
		return usage_error("give either -d DIR or PATHs, not both");
	if (stats && follow)
		return usage_error("--stats and --follow do not go together");
	if (stats && d.format != F_TEXT && d.format != F_JSON)
		return usage_error("--stats prints text or json");
	if (follow && d.format == F_JSON)
		return usage_error("--follow needs a streaming format: text, jsonl, lp or raw");

	const char *dd = data_dir();
	const char *const *paths = optind < argc ? (const char *const *)argv + optind : &dd;
	size_t npaths = optind < argc ? (size_t)(argc - optind) : 1;
	struct wal_scan_opts so = { .follow = follow };
	wal_scan_t *s;
	struct wal_entry e;
	int err;

	if ((err = wal_scan_open(&s, paths, npaths, &so)) != 0) {
		errorf("%s", wal_errmsg());
		return EXIT_OPER;
	}
	if (stats) {
		err = print_stats(s, d.format == F_JSON);
		if (err < 0) {
			errorf("%s", wal_errmsg());
			rc = EXIT_OPER;
		}
		report_findings(s, 0);
		rc |= wal_scan_class(s);
		wal_scan_close(s);
		return rc;
	}
	if (wal_dec_new(&d.dec) != 0) {
		wal_scan_close(s);
		return EXIT_OPER;
	}
	if (follow) {
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
	}
	if (d.format == F_JSON)
		fputs("{\"schema\": \"walctl-dump/1\", \"entries\": [\n", stdout);
	/* A data directory shows its logical content: the points in storage,
	 * then the WAL after the last checkpoint, every point exactly once.  A
	 * partition file shows its points. */
	uint64_t ckpt = 0;
	struct stat st;
	char sub[PATH_MAX + 8];
	snprintf(sub, sizeof sub, "%s/wal", paths[0]);
	size_t plen = strlen(paths[0]);
	if (npaths == 1 && plen > 5 && strcmp(paths[0] + plen - 5, ".part") == 0) {
		rc |= dump_partition(&d, paths[0], paths[0]);
		if (d.format == F_JSON)
			fputs("\n]}\n", stdout);
		wal_dec_free(d.dec);
		wal_scan_close(s);
		return rc;
	}
	if (npaths == 1 && !follow && stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
		wal_view_t *view;
		if ((err = wal_view_open(&view, paths[0])) != 0) {
			errorf("%s", wal_errmsg());
			wal_scan_close(s);
			return EXIT_OPER;
		}
		/* storage that is not what the checkpoints say is damage: the
		 * points shown would not be the points written */
		for (size_t i = 0; i < wal_view_nproblems(view); i++) {
			errorf("storage: %s; run 'walctl verify' for details", wal_view_problem(view, i));
			rc |= EXIT_DAMAGE;
		}
		ckpt = wal_view_checkpoint(view);
		if (ckpt && !d.from && d.to == UINT64_MAX && (d.type < 0 || d.type == WAL_T_POINTS))
			rc |= dump_storage(&d, paths[0], view);
		wal_view_close(view);
		if (ckpt >= d.from)
			d.from = ckpt + 1;
	}
	size_t reported = 0;
	while (!interrupted && d.printed < d.limit) {
		err = wal_scan_next(s, &e);
		if (err < 0) {
			errorf("%s", wal_errmsg());
			rc |= EXIT_OPER;
			break;
		}
		if (err == 0) {
			if (!follow)
				break;
			reported = (size_t)report_findings(s, reported);
			fflush(stdout);
			/* a follower keeps close behind a reclaiming writer */
			struct timespec ts = { 0, 20 * 1000000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (e.lsn < d.from)
			continue;
		if (e.lsn > d.to)
			break;
		if (d.type >= 0 && (int)(e.type & 0x7f) != d.type)
			continue;
		rc |= print_entry(&d, &e);
		d.printed++;
		if (follow)
			fflush(stdout);
	}
	if (d.format == F_JSON)
		fputs("\n]}\n", stdout);
	report_findings(s, reported);
	rc |= wal_scan_class(s);
	wal_dec_free(d.dec);
	wal_scan_close(s);
	return rc;
}
