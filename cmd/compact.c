/*
 * compact.c - walctl compact: remove segments wholly covered by the last
 * checkpoint, merge small sealed segments, purge old quarantine.  Never
 * removes an entry that is not in durable storage.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static const char options[] =
    "  --keep N                   keep the newest N segments whatever they hold (default 3)\n"
    "  --merge                    rewrite runs of small sealed segments into one\n"
    "  --max-segment-size SIZE    largest segment --merge makes (default 128M)\n"
    "  --max-consumer-lag SIZE    WAL after a consumer's cursor before it is marked lost (default 1G)\n"
    "  --purge-quarantine DUR     delete quarantine older than DUR (its evidence is gone for good)\n"
    "  --apply                    do it (removed segments go to DIR/quarantine/)\n"
    "  --format text|json         plan format (default text); json: schema walctl-plan/2\n";

enum { OPT_KEEP = 256, OPT_MERGE, OPT_MAXSEG, OPT_MAXLAG, OPT_PURGE, OPT_APPLY, OPT_FORMAT };

int cmd_compact(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONGOPTS,
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "merge", no_argument, NULL, OPT_MERGE },
		{ "max-segment-size", required_argument, NULL, OPT_MAXSEG },
		{ "max-consumer-lag", required_argument, NULL, OPT_MAXLAG },
		{ "purge-quarantine", required_argument, NULL, OPT_PURGE },
		{ "apply", no_argument, NULL, OPT_APPLY },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ NULL, 0, NULL, 0 },
	};
	struct wal_repair_opts o = { .mode = WAL_REPAIR_COMPACT, .keep = 3, .purge_ns = -1, .command = "compact" };
	int opt, json = 0;
	uint64_t keep;

	while ((opt = getopt_long(argc, argv, COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (common_opt(opt, optarg))
			continue;
		switch (opt) {
		case 'h': return cmd_usage("compact", options, stdout);
		case OPT_KEEP:
			if (parse_u64("--keep", optarg, &keep))
				return EXIT_USAGE;
			if (keep < 1)
				return usage_error(
				    "option '--keep': the newest segment is always kept (want 1 or more)");
			o.keep = (unsigned)keep;
			break;
		case OPT_MERGE: o.merge = 1; break;
		case OPT_MAXSEG:
			if (parse_size("--max-segment-size", optarg, &o.merge_max))
				return EXIT_USAGE;
			break;
		case OPT_MAXLAG:
			if (parse_size("--max-consumer-lag", optarg, &o.max_consumer_lag))
				return EXIT_USAGE;
			if (!o.max_consumer_lag)
				return usage_error("option '--max-consumer-lag': want more than 0");
			break;
		case OPT_PURGE:
			if (parse_duration("--purge-quarantine", optarg, &o.purge_ns))
				return EXIT_USAGE;
			break;
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
	return run_repair(&o, json, stdout);
}
