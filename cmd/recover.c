/*
 * recover.c - walctl recover: cut a torn tail and replay the entries after
 * the last checkpoint into storage (--mode tail), or keep every valid entry
 * around mid-log damage (--mode salvage); --emit lp writes the points to
 * stdout instead; --undo puts a repair back.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static const char options[] =
    "  --mode tail|salvage        tail (default): cut a torn tail, replay; salvage: also repair mid-log damage\n"
    "  --apply                    do it (bytes removed go to DIR/quarantine/)\n"
    "  --emit lp                  write the points after the last checkpoint to stdout instead of storage\n"
    "  --undo STAMP               put back the repair kept in DIR/quarantine/STAMP (with --apply)\n"
    "  --rewind-consumers         with salvage or --undo: rewind the cursors of live consumers past what\n"
    "                             it takes out of the WAL\n"
    "  --compression-level L      compression level of the partitions written (1-9, default 1)\n"
    "  --format text|json         plan format (default text); json: schema walctl-plan/2\n";

enum { OPT_MODE = 256, OPT_APPLY, OPT_EMIT, OPT_UNDO, OPT_LEVEL, OPT_FORMAT, OPT_REWIND };

static int emit_lp(void)
{
	/* every point emitted must decode; one that does not is damage */
	struct wal_scan_opts so = { .check_payloads = 1, .decode_unstored = 1, .checkpoint = wal_check_storage };
	wal_after_t *r;
	wal_dec_t *d;
	struct wal_entry e;
	struct wal_point pt;
	struct wal_str db;
	uint64_t n = 0;
	int rc;

	if (wal_after_open(&r, data_dir(), -1, 1, &so) != 0 || wal_dec_new(&d) != 0) {
		errorf("%s", wal_errmsg());
		return EXIT_OPER;
	}
	/* an entry's points go out whole or not at all */
	char *text = NULL;
	size_t tlen = 0;
	while ((rc = wal_after_next(r, &e)) == 1) {
		FILE *m = open_memstream(&text, &tlen);
		uint64_t k = 0;
		int dr = m ? wal_dec_begin(d, e.payload, e.len, &db) : WAL_ENOMEM;
		while (dr == 0 && (dr = wal_dec_next(d, &pt)) == 1) {
			print_lp(m, &pt);
			k++;
			dr = 0;
		}
		if (m)
			fclose(m);
		if (dr == 0 && fwrite(text, 1, tlen, stdout) == tlen)
			n += k; /* else a finding of the scan, reported below */
		free(text);
		text = NULL;
	}
	wal_scan_t *s = wal_after_scan(r);
	for (size_t i = 0; i < wal_scan_nfindings(s); i++) {
		const struct wal_finding *f = wal_scan_finding(s, i);
		if (f->cls == WAL_CLASS_DAMAGE)
			errorf("segment '%s' offset %" PRIu64 ": %s; run 'walctl recover --mode salvage -d %s'",
			       f->segment, f->offset, f->message, data_dir());
	}
	notef("emitted %llu points after checkpoint LSN %llu", (unsigned long long)n,
	      (unsigned long long)wal_after_checkpoint(r));
	rc = rc < 0 ? EXIT_OPER : wal_scan_class(s);
	wal_after_close(r);
	wal_dec_free(d);
	return rc;
}

static int undo(const char *stamp, int apply, int rewind)
{
	struct wal_undo_opts uo = { .apply = apply, .rewind_consumers = rewind };
	struct wal_undo_result ur = { 0 };
	int rc = wal_undo(data_dir(), stamp, &uo, &ur);

	if (rc) {
		errorf("%s", wal_errmsg());
		return rc == WAL_ECORRUPT ? EXIT_DAMAGE : rc == WAL_EINVAL ? EXIT_USAGE : EXIT_OPER;
	}
	if (ur.already)
		printf("recover --undo %s: already undone; nothing to do\n", stamp);
	else if (apply)
		printf("recover --undo %s: done: the files it changed are back as they were\n", stamp);
	else
		printf("recover --undo %s: plan: put back every file repair %s changed and remove what it created "
		       "(nothing is changed without --apply)\n",
		       stamp, stamp);
	for (size_t i = 0; i < ur.nrewound; i++)
		printf("  consumer '%s' %s from cursor LSN %" PRIu64 " to LSN %" PRIu64
		       " (where the WAL ended before the repair)\n",
		       ur.rewound[i].name, apply ? "was rewound" : "is rewound", ur.rewound[i].cursor, ur.rewound[i].to);
	free(ur.rewound);
	return EXIT_CLEAN;
}

int cmd_recover(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONGOPTS,
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "apply", no_argument, NULL, OPT_APPLY },
		{ "emit", required_argument, NULL, OPT_EMIT },
		{ "undo", required_argument, NULL, OPT_UNDO },
		{ "compression-level", required_argument, NULL, OPT_LEVEL },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "rewind-consumers", no_argument, NULL, OPT_REWIND },
		{ NULL, 0, NULL, 0 },
	};
	struct wal_repair_opts o = { .mode = WAL_REPAIR_TAIL, .replay = 1 };
	int opt, json = 0, emit = 0;
	const char *stamp = NULL;
	uint64_t level;

	while ((opt = getopt_long(argc, argv, COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (common_opt(opt, optarg))
			continue;
		switch (opt) {
		case 'h': return cmd_usage("recover", options, stdout);
		case OPT_MODE:
			if (!strcmp(optarg, "tail"))
				o.mode = WAL_REPAIR_TAIL;
			else if (!strcmp(optarg, "salvage"))
				o.mode = WAL_REPAIR_SALVAGE;
			else
				return usage_error("option '--mode': invalid value '%s' (want tail or salvage)",
				                   optarg);
			break;
		case OPT_APPLY: o.apply = 1; break;
		case OPT_EMIT:
			if (strcmp(optarg, "lp"))
				return usage_error("option '--emit': invalid value '%s' (want lp)", optarg);
			emit = 1;
			break;
		case OPT_UNDO: stamp = optarg; break;
		case OPT_REWIND: o.rewind_consumers = 1; break;
		case OPT_LEVEL:
			if (parse_u64("--compression-level", optarg, &level))
				return EXIT_USAGE;
			if (level < 1 || level > 9)
				return usage_error("option '--compression-level': want 1 to 9");
			o.level = (int)level;
			break;
		case OPT_FORMAT:
			if (parse_text_json(optarg, &json))
				return EXIT_USAGE;
			break;
		default: return option_error(opt, argv);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (o.rewind_consumers && !stamp && o.mode != WAL_REPAIR_SALVAGE)
		return usage_error("--rewind-consumers goes with --mode salvage or --undo");
	if (stamp)
		return emit ? usage_error("--undo does not go with --emit") : undo(stamp, o.apply, o.rewind_consumers);
	o.command = o.mode == WAL_REPAIR_SALVAGE ? "recover --mode salvage" : "recover --mode tail";
	if (!emit)
		return run_repair(&o, json, stdout);
	/* --emit lp: the repair (if asked) without the replay, then the points */
	o.replay = 0;
	int rc = 0;
	if (o.apply || o.mode == WAL_REPAIR_SALVAGE)
		rc = run_repair(&o, json, stderr);
	if (rc & (EXIT_DAMAGE | EXIT_OPER | EXIT_USAGE))
		return rc;
	return rc | (emit_lp() & (EXIT_OPER | EXIT_DAMAGE));
}
