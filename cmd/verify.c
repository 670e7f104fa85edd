/*
 * verify.c - walctl verify: check a WAL and classify what is wrong with it.
 *
 * Findings go to stderr as "walctl verify: segment 'X' offset N: ..." with
 * the command to run next; the summary (or the JSON document) goes to
 * stdout.  The exit status is the OR of the findings' classes over every
 * WAL given: 0 clean, 2 torn tail only, 4 damage to durable data, 8 I/O.
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"

static const char options[] =
    "  --deep                     decode every point of every POINTS entry (slower)\n"
    "  --format text|json         report format (default text); json: schema walctl-verify/2\n";

enum { OPT_DEEP = 256, OPT_FORMAT };

static const char *class_name(enum wal_class c)
{
	return c == WAL_CLASS_DAMAGE ? "damage" : c == WAL_CLASS_TORN ? "torn-tail" : "notice";
}

/* The data directory a scan's segments live in, for the advice. */
static void datadir_of(const wal_scan_t *s, char *out, size_t cap)
{
	const char *w = wal_scan_waldir(s);
	size_t n = strlen(w);

	if (n >= 4 && strcmp(w + n - 4, "/wal") == 0)
		snprintf(out, cap, "%.*s", (int)(n - 4), w);
	else if (strcmp(w, "wal") == 0)
		snprintf(out, cap, ".");
	else
		snprintf(out, cap, "%s", w);
}

static void next_step(const struct wal_finding *f, const char *dd, char *out, size_t cap)
{
	if (f->cls == WAL_CLASS_TORN)
		snprintf(out, cap,
		         "nothing acknowledged is lost; 'walctl truncate --torn-tail -d %s' cuts the tail "
		         "(a writer also cuts it when it opens the WAL)",
		         dd);
	else if (f->kind == WAL_F_FOREIGN_SEGMENT)
		snprintf(out, cap, "move segment '%s' out of the WAL directory; it belongs to another WAL", f->segment);
	else if (f->kind == WAL_F_BAD_VERSION)
		snprintf(out, cap, "read it with the walctl release that wrote it");
	else if (f->cls == WAL_CLASS_DAMAGE)
		snprintf(out, cap, "'walctl recover --mode salvage -d %s' shows what a repair keeps and loses", dd);
	else
		snprintf(out, cap, "nothing to do");
}

static int verify_one(const char *const *paths, size_t n, int deep, int json, int *first_doc, int whole)
{
	struct wal_scan_opts so = { .check_payloads = deep ? 2 : 1, .checkpoint = wal_check_storage };
	wal_scan_t *s;
	struct wal_entry e;
	uint64_t entries = 0, first = 0, last = 0, bytes = 0;
	char dd[PATH_MAX], next[PATH_MAX + 200];
	int rc, cls_oper = 0;

	if ((rc = wal_scan_open(&s, paths, n, &so)) != 0) {
		errorf("%s", wal_errmsg());
		return exit_for(rc) | (rc == WAL_ENOENT ? EXIT_OPER : 0);
	}
	struct progress pg;
	uint64_t total = 0;
	for (size_t i = 0; i < wal_scan_nsegments(s); i++)
		total += wal_scan_segment(s, i)->bytes;
	progress_start(&pg, "verify", total);
	wal_named_t *nm = NULL;
	if ((rc = wal_named_new(&nm)) != 0) {
		errorf("%s", wal_errmsg());
		wal_scan_close(s);
		return EXIT_OPER;
	}
	while ((rc = wal_scan_next(s, &e)) == 1) {
		if ((rc = wal_named_add(nm, &e)) != 0)
			break;
		if (!first)
			first = e.lsn;
		last = e.lsn;
		entries++;
		bytes += WAL_FRAME_HEADER_SIZE + e.len;
		progress_update(&pg, bytes);
	}
	progress_end(&pg);
	if (rc < 0) {
		errorf("%s", wal_errmsg());
		wal_named_free(nm);
		wal_scan_close(s);
		return EXIT_OPER;
	}
	datadir_of(s, dd, sizeof dd);
	/* partitions no checkpoint names, though one should: not storage's */
	struct wal_part_ref *parts = NULL;
	size_t nparts = 0, nun = 0;
	if (whole && *wal_scan_datadir(s) && wal_part_list(wal_scan_datadir(s), &parts, &nparts) != 0) {
		errorf("%s", wal_errmsg());
		cls_oper = EXIT_OPER;
	}
	unsigned char *un = calloc(nparts ? nparts : 1, 1);
	if (!un || wal_part_unnamed(wal_scan_datadir(s), nm, parts, nparts, un) != 0) {
		errorf("%s", un ? wal_errmsg() : "out of memory");
		cls_oper = EXIT_OPER;
		nparts = 0;
	}
	for (size_t i = 0; i < nparts; i++)
		if (un[i])
			parts[nun++] = parts[i];
	free(un);
	wal_named_free(nm);
	int cls = wal_scan_class(s) | cls_oper;
	if (nun)
		cls |= WAL_CLASS_DAMAGE;
	/* consumers marked lost: a notice; a cursor file that does not read,
	 * or a cursor past the WAL's end: damage in that file */
	struct wal_consumer_file *cf = NULL;
	size_t nc = 0, nbad = 0;
	uint64_t wend = wal_scan_last_lsn(s);
	if (*wal_scan_datadir(s) && wal_consumers_scan(wal_scan_datadir(s), &cf, &nc) != 0) {
		errorf("%s", wal_errmsg());
		cls |= EXIT_OPER;
	}
	for (size_t i = 0; i < nc; i++) {
		if (cf[i].rc == 0 && !cf[i].c.lost && wal_consumer_check_end(&cf[i].c, wend) != 0) {
			cf[i].rc = WAL_ECORRUPT;
			snprintf(cf[i].why, sizeof cf[i].why, "%s", wal_errmsg());
		}
		if (cf[i].rc)
			cls |= cf[i].rc == WAL_ECORRUPT ? WAL_CLASS_DAMAGE : EXIT_OPER;
		nbad += cf[i].rc == WAL_ECORRUPT;
	}
	/* the WAL's end against what the rest of the directory shows (a
	 * WAL's whole directory only: segments given alone are judged alone) */
	struct wal_hwm hw = { 0 };
	if (whole && *wal_scan_datadir(s) && wal_hwm_gather(wal_scan_datadir(s), wal_scan_id(s), &hw) != 0) {
		errorf("%s", wal_errmsg());
		cls |= EXIT_OPER;
	}
	if (whole && wal_scan_nsegments(s))
		wal_hwm_seal(wal_scan_waldir(s), wal_scan_segment(s, wal_scan_nsegments(s) - 1), wal_scan_id(s), wend,
		             &hw);
	int lost_end = hw.hard > wend, removed = !lost_end && hw.removed > wend;
	if (lost_end)
		cls |= WAL_CLASS_DAMAGE;
	char end_msg[800] = "", end_next[PATH_MAX + 200] = "";
	if (lost_end) {
		snprintf(end_msg, sizeof end_msg,
		         "the WAL ends at LSN %" PRIu64 " but %s shows LSN %" PRIu64 ": LSN %" PRIu64 "-%" PRIu64
		         " are missing from the WAL",
		         wend, hw.hard_what, hw.hard, wend + 1, hw.hard);
		snprintf(end_next, sizeof end_next,
		         "'walctl recover --mode salvage -d %s' records them as lost, so that no writer hands them out "
		         "again",
		         dd);
	} else if (removed) {
		snprintf(end_msg, sizeof end_msg,
		         "LSN %" PRIu64 "-%" PRIu64 " were removed by %s: a known loss, which the next writer records "
		         "and goes on past",
		         wend + 1, hw.removed, hw.removed_what);
		snprintf(end_next, sizeof end_next, "nothing to do");
	}
	nbad += (end_msg[0] != 0) + nun;
	const char *status = cls & WAL_CLASS_DAMAGE ? "damaged" : cls & WAL_CLASS_TORN ? "torn-tail" : "clean";

	if (json) {
		if (!*first_doc)
			fputs(",\n", stdout);
		*first_doc = 0;
		printf("{\"schema\": \"walctl-verify/2\", \"path\": ");
		json_str(stdout, paths[0], strlen(paths[0]));
		printf(", \"status\": \"%s\", \"exit\": %d, \"wal_id\": \"%016" PRIx64 "\", "
		       "\"entries\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"first_lsn\": ",
		       status, cls, wal_scan_id(s), entries, bytes);
		json_lsn(stdout, first);
		fputs(", \"last_lsn\": ", stdout);
		json_lsn(stdout, last);
		fputs(", \"segments\": [", stdout);
		for (size_t i = 0; i < wal_scan_nsegments(s); i++) {
			if (i)
				fputs(", ", stdout);
			json_segment(stdout, wal_scan_segment(s, i));
		}
		printf("], \"findings\": [");
	}
	if (end_msg[0]) {
		const char *seg = wal_scan_nsegments(s) ? wal_scan_segment(s, wal_scan_nsegments(s) - 1)->name : "";
		uint64_t at = wal_scan_nsegments(s) ? wal_scan_segment(s, wal_scan_nsegments(s) - 1)->bytes : 0;
		if (json) {
			printf("{\"class\": \"%s\", \"kind\": \"%s\", \"segment\": ", lost_end ? "damage" : "notice",
			       lost_end ? "missing-end" : "known-loss");
			json_str(stdout, seg, strlen(seg));
			printf(", \"offset\": %" PRIu64 ", \"length\": 0, \"first_lsn\": %" PRIu64 ", \"last_lsn\": %" PRIu64
			       ", \"vouched_by\": null, \"message\": ",
			       at, wend + 1, lost_end ? hw.hard : hw.removed);
			json_str(stdout, end_msg, strlen(end_msg));
			fputs(", \"next\": ", stdout);
			json_str(stdout, end_next, strlen(end_next));
			putchar('}');
		}
		if (!json || g_verbose)
			errorf("segment '%s' offset %" PRIu64 ": %s [%s]; next: %s", seg, at, end_msg,
			       lost_end ? "damage" : "notice", end_next);
	}
	for (size_t i = 0; i < nun; i++) {
		char file[400], msg[600];
		snprintf(file, sizeof file, "data/%s", parts[i].rel);
		snprintf(msg, sizeof msg,
		         "partition '%s' (LSN %" PRIu64 "-%" PRIu64 ") is named by no checkpoint (the WAL holds every "
		         "checkpoint from LSN %" PRIu64 " on) and is not what the WAL holds of its LSNs: its points are not "
		         "storage's and no reader shows them",
		         file, parts[i].first_lsn, parts[i].last_lsn, first);
		snprintf(next, sizeof next, "'walctl recover -d %s --apply' moves it to the quarantine", dd);
		if (json) {
			printf("%s{\"class\": \"damage\", \"kind\": \"unnamed-partition\", \"segment\": ",
			       i || end_msg[0] ? ", " : "");
			json_str(stdout, file, strlen(file));
			printf(", \"offset\": 0, \"length\": 0, \"first_lsn\": %" PRIu64 ", \"last_lsn\": %" PRIu64
			       ", \"vouched_by\": null, \"message\": ",
			       parts[i].first_lsn, parts[i].last_lsn);
			json_str(stdout, msg, strlen(msg));
			fputs(", \"next\": ", stdout);
			json_str(stdout, next, strlen(next));
			putchar('}');
		}
		if (!json || g_verbose)
			errorf("%s [damage]; next: %s", msg, next);
	}
	free(parts);
	/* a consumer's damage is a finding of its file */
	for (size_t i = 0, k = 0; i < nc; i++) {
		if (!cf[i].rc)
			continue;
		if (cf[i].rc != WAL_ECORRUPT) {
			errorf("%s", cf[i].why);
			continue;
		}
		char file[WAL_CONSUMER_NAME_MAX + 16];
		snprintf(file, sizeof file, "consumers/%s", cf[i].c.name);
		snprintf(next, sizeof next,
		         "'walctl consumers -d %s drop %s' (its cursor is kept in the quarantine), then add it again "
		         "at the cursor its sink holds",
		         dd, cf[i].c.name);
		uint64_t lo = cf[i].c.lsn > last ? last + 1 : 0, hi = lo ? cf[i].c.lsn : 0;
		if (json) {
			printf("%s{\"class\": \"damage\", \"kind\": \"bad-cursor\", \"segment\": ",
			       k++ || end_msg[0] || nun ? ", " : "");
			json_str(stdout, file, strlen(file));
			fputs(", \"offset\": 0, \"length\": 0, \"first_lsn\": ", stdout);
			json_lsn(stdout, lo);
			fputs(", \"last_lsn\": ", stdout);
			json_lsn(stdout, hi);
			fputs(", \"vouched_by\": null, \"message\": ", stdout);
			json_str(stdout, cf[i].why, strlen(cf[i].why));
			fputs(", \"next\": ", stdout);
			json_str(stdout, next, strlen(next));
			putchar('}');
		}
		if (!json || g_verbose)
			errorf("%s [damage]; next: %s", cf[i].why, next);
	}
	for (size_t i = 0; i < wal_scan_nfindings(s); i++) {
		const struct wal_finding *f = wal_scan_finding(s, i);
		next_step(f, dd, next, sizeof next);
		if (json) {
			printf("%s{\"class\": \"%s\", \"kind\": \"%s\", \"segment\": ", i || nbad ? ", " : "",
			       class_name(f->cls), wal_finding_kind_name(f->kind));
			json_str(stdout, f->segment, strlen(f->segment));
			printf(", \"offset\": %" PRIu64 ", \"length\": %" PRIu64 ", \"first_lsn\": ", f->offset,
			       f->length);
			json_lsn(stdout, f->lsn_first);
			fputs(", \"last_lsn\": ", stdout);
			json_lsn(stdout, f->lsn_last);
			fputs(", \"vouched_by\": ", stdout);
			json_lsn(stdout, f->vouched_by);
			fputs(", \"message\": ", stdout);
			json_str(stdout, f->message, strlen(f->message));
			printf(", \"next\": ");
			json_str(stdout, next, strlen(next));
			putchar('}');
		}
		if (!json || g_verbose) {
			char lsns[96] = "";
			if (f->lsn_first && f->lsn_last == f->lsn_first)
				snprintf(lsns, sizeof lsns, " (LSN %" PRIu64 ")", f->lsn_first);
			else if (f->lsn_first && f->lsn_last)
				snprintf(lsns, sizeof lsns, " (LSN %" PRIu64 "-%" PRIu64 ")", f->lsn_first,
				         f->lsn_last);
			else if (f->lsn_first)
				snprintf(lsns, sizeof lsns, " (from LSN %" PRIu64 ")", f->lsn_first);
			errorf("segment '%s' offset %" PRIu64 ": %s%s [%s]; next: %s", f->segment, f->offset,
			       f->message, lsns, class_name(f->cls), next);
		}
	}
	struct wal_consumer *cv;
	if (json)
		fputs("], \"lost_consumers\": [", stdout);
	for (size_t i = 0, k = 0; i < nc; i++) {
		cv = &cf[i].c;
		if (cf[i].rc || !cv->lost)
			continue;
		if (json) {
			fputs(k++ ? ", {\"name\": " : "{\"name\": ", stdout);
			json_str(stdout, cv->name, strlen(cv->name));
			printf(", \"cursor_lsn\": %" PRIu64 ", \"reason\": ", cv->lsn);
			json_str(stdout, cv->why, strlen(cv->why));
			putchar('}');
		}
		if (!json || g_verbose)
			errorf("consumer '%s' is lost at cursor LSN %" PRIu64
			       " (%s) [notice]; next: 'walctl consumers -d %s "
			       "drop %s', then add it again and deliver from storage",
			       cv->name, cv->lsn, cv->why, dd, cv->name);
	}
	free(cf);
	if (json) {
		printf("]}");
	} else if (!g_quiet) {
		printf("%s: %zu segment%s, %" PRIu64 " entries", wal_scan_waldir(s), wal_scan_nsegments(s),
		       wal_scan_nsegments(s) == 1 ? "" : "s", entries);
		if (entries)
			printf(", LSN %" PRIu64 "-%" PRIu64, first, last);
		printf(", %" PRIu64 " bytes: %s", bytes, status);
		if (cls)
			printf(" (exit %d)", cls);
		putchar('\n');
	}
	wal_scan_close(s);
	return cls;
}

static int is_segment_file(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && !S_ISDIR(st.st_mode);
}

int cmd_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONGOPTS,
		{ "deep", no_argument, NULL, OPT_DEEP },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ NULL, 0, NULL, 0 },
	};
	int deep = 0, json = 0, opt, rc = 0, first_doc = 1;

	while ((opt = getopt_long(argc, argv, COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (common_opt(opt, optarg))
			continue;
		switch (opt) {
		case 'h': return cmd_usage("verify", options, stdout);
		case OPT_DEEP: deep = 1; break;
		case OPT_FORMAT:
			if (parse_text_json(optarg, &json))
				return EXIT_USAGE;
			break;
		default: return option_error(opt, argv);
		}
	}
	if (g_dir && optind < argc)
		return usage_error("give either -d DIR or PATHs, not both");
	int many = json && argc - optind > 1;
	if (many)
		fputs("[", stdout);
	if (optind >= argc) {
		const char *d = data_dir();
		rc = verify_one(&d, 1, deep, json, &first_doc, 1);
	} else {
		/* Each directory is a WAL of its own; segment files given one after
		 * another form one WAL. */
		for (int i = optind; i < argc;) {
			int j = i + 1;
			if (is_segment_file(argv[i]))
				while (j < argc && is_segment_file(argv[j]))
					j++;
			rc |= verify_one((const char *const *)argv + i, (size_t)(j - i), deep, json, &first_doc,
			                 !is_segment_file(argv[i]));
			i = j;
		}
	}
	if (many)
		fputs("]", stdout);
	if (json)
		putchar('\n');
	return rc;
}
