/*
 * truncate.c - walctl truncate: cut a torn tail, or every entry after an
 * LSN.  Prints the plan; changes nothing without --apply.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static const char options[] =
    "  --after LSN                drop every entry with a larger LSN\n"
    "  --rewind-consumers         with --after: rewind the cursors of live consumers past LSN to it\n"
    "                             (else the plan refuses, naming them)\n"
    "  --torn-tail                cut only a torn tail of the newest segment; refuse (4) anything else\n"
    "  --apply                    do it (bytes removed go to DIR/quarantine/)\n"
    "  --format text|json         plan format (default text); json: schema walctl-plan/2\n";

enum { OPT_AFTER = 256, OPT_TORN, OPT_APPLY, OPT_FORMAT, OPT_REWIND };

int cmd_truncate(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONGOPTS,
		{ "after", required_argument, NULL, OPT_AFTER },
		{ "torn-tail", no_argument, NULL, OPT_TORN },
		{ "rewind-consumers", no_argument, NULL, OPT_REWIND },
		{ "apply", no_argument, NULL, OPT_APPLY },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ NULL, 0, NULL, 0 },
	};
	struct wal_repair_opts o = { 0 };
	int opt, json = 0, after = 0, torn = 0;
	char cmdline[128];

	while ((opt = getopt_long(argc, argv, COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (common_opt(opt, optarg))
			continue;
		switch (opt) {
		case 'h': return cmd_usage("truncate", options, stdout);
		case OPT_AFTER:
			if (parse_u64("--after", optarg, &o.after_lsn))
				return EXIT_USAGE;
			after = 1;
			break;
		case OPT_TORN: torn = 1; break;
		case OPT_REWIND: o.rewind_consumers = 1; break;
		case OPT_APPLY: o.apply = 1; break;
		case OPT_FORMAT:
			if (parse_text_json(optarg, &json))
				return EXIT_USAGE;
			break;
		default: return option_error(opt, argv);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (after == torn)
		return usage_error("give exactly one of --after LSN and --torn-tail");
	if (torn && o.rewind_consumers)
		return usage_error("--rewind-consumers goes with --after");
	o.mode = torn ? WAL_REPAIR_TORN_TAIL : WAL_REPAIR_AFTER;
	if (torn)
		snprintf(cmdline, sizeof cmdline, "truncate --torn-tail");
	else
		snprintf(cmdline, sizeof cmdline, "truncate --after %llu", (unsigned long long)o.after_lsn);
	o.command = cmdline;
	return run_repair(&o, json, stdout);
}
