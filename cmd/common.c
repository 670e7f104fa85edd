/*
 * common.c - option parsers, messages and output helpers for subcommands.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

const char *g_cmd = "walctl";
int g_quiet, g_verbose;
const char *g_dir;
/* a progress line is on the terminal: a message first clears it */
static int progress_shown;

static void vmsg(const char *fmt, va_list ap)
{
	if (progress_shown)
		fputs("\r\033[K", stderr);
	if (strcmp(g_cmd, "walctl") == 0)
		fprintf(stderr, "walctl: ");
	else
		fprintf(stderr, "walctl %s: ", g_cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* logfmt on stderr */
void logfmt(const char *level, const char *fmt, ...)
{
	char ts[48];
	va_list ap;

	if (g_quiet && strcmp(level, "error") != 0)
		return;
	fmt_time(ts, sizeof ts, wal_now_ns());
	flockfile(stderr);
	fprintf(stderr, "ts=\"%s\" level=\"%s\" ", ts, level);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

/* NAME=VALUE with NAME a label name Prometheus accepts, and not one of
 * its own. */
int metric_label_ok(const char *kv)
{
	const char *eq = strchr(kv, '=');

	if (!eq || eq == kv || (eq - kv == 2 && !strncmp(kv, "le", 2)) || !strncmp(kv, "__", 2) ||
	    (*kv >= '0' && *kv <= '9'))
		return 0;
	for (const char *c = kv; c < eq; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
			return 0;
	return 1;
}

/* A label value in the text format: \\, \" and \n escaped. */
static size_t put_label(char *out, size_t cap, size_t n, const char *name, size_t nlen, const char *v)
{
	n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%.*s=\"", n ? "," : "", (int)nlen, name);
	for (; *v && n + 3 < cap; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n')
			out[n++] = '\\';
		out[n++] = *v == '\n' ? 'n' : *v;
	}
	n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "\"");
	return n < cap ? n : cap - 1;
}

int metric_label_opt(const char *arg, const char **label, size_t *n, size_t cap)
{
	if (!metric_label_ok(arg))
		return usage_error("option '--metrics-label': want NAME=VALUE, NAME a Prometheus label name "
		                   "([a-zA-Z_][a-zA-Z0-9_]*, not le nor __*), got '%s'",
		                   arg);
	if (*n == cap)
		return usage_error("option '--metrics-label': at most %zu", cap);
	label[(*n)++] = arg;
	return 0;
}

int metrics_write(const char *path, const char *text, size_t n)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash)
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	else
		snprintf(dir, sizeof dir, ".");
	return wal_write_file(dir, slash ? slash + 1 : path, text, n);
}

void metric_labels(char *out, size_t cap, const char *dir, const char *const *label, size_t nlabels)
{
	size_t n = 0;
	int dir_given = 0;

	out[0] = 0;
	for (size_t i = 0; i < nlabels; i++)
		dir_given |= !strncmp(label[i], "dir=", 4);
	if (!dir_given) {
		/* absolute: two instances started in different directories with
		 * -d data are two */
		char *abs = realpath(dir, NULL);
		n = put_label(out, cap, n, "dir", 3, abs ? abs : dir);
		free(abs);
	}
	for (size_t i = 0; i < nlabels; i++) {
		const char *eq = strchr(label[i], '=');
		size_t later = 0;
		for (size_t j = i + 1; j < nlabels; j++)
			later |= !strncmp(label[j], label[i], (size_t)(eq - label[i]) + 1);
		if (!later)
			n = put_label(out, cap, n, label[i], (size_t)(eq - label[i]), eq + 1);
	}
}

void errorf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

void notef(const char *fmt, ...)
{
	va_list ap;

	if (g_quiet)
		return;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

int usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	if (strcmp(g_cmd, "walctl") == 0)
		fputs("Try 'walctl --help' for more information.\n", stderr);
	else
		fprintf(stderr, "Try 'walctl help %s' for more information.\n", g_cmd);
	return EXIT_USAGE;
}

int option_error(int opt, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";

	if (opt == ':')
		return usage_error("option '%s' needs a value", arg);
	if (optopt && strncmp(arg, "--", 2) != 0)
		return usage_error("unrecognized option '-%c'", optopt);
	return usage_error("unrecognized option '%s'", arg);
}

/* Help text at 80 columns: a line too long is cut at its last space that
 * fits (in a usage line, only between two [...] groups) and goes on at
 * column indent. */
static void put_wrapped(FILE *to, const char *line, size_t n, size_t indent, int usage)
{
	size_t col = 0; /* columns in front of what is left */

	while (col + n > 80) {
		size_t cut = 80 - col;
		while (cut > 0 && (line[cut] != ' ' || (usage && line[cut - 1] != ']')))
			cut--;
		if (cut == 0)
			break; /* nowhere to cut: as it is */
		fprintf(to, "%.*s\n%*s", (int)cut, line, (int)indent, "");
		while (cut < n && line[cut] == ' ')
			cut++;
		line += cut;
		n -= cut;
		col = indent;
	}
	fprintf(to, "%.*s\n", (int)n, line);
}

static void put_lines(FILE *to, const char *text, size_t indent)
{
	for (const char *p = text, *nl; *p; p = nl + 1) {
		if (!(nl = strchr(p, '\n')))
			nl = p + strlen(p);
		put_wrapped(to, p, (size_t)(nl - p), indent, 0);
		if (!*nl)
			break;
	}
}

int cmd_usage(const char *name, const char *options, FILE *to)
{
	const struct cmd *c = cmd_find(name);

	char head[1024];
	int n = snprintf(head, sizeof head, "usage: %s", c->synopsis);
	const char *group = strchr(c->synopsis, '[');
	put_wrapped(to, head, (size_t)n, group ? 7 + (size_t)(group - c->synopsis) : 7, 1);
	fputc('\n', to);
	put_lines(to, c->summary, 0);
	fputs("\nOptions:\n", to);
	put_lines(to, options, 29);
	put_lines(to, COMMON_HELP, 29);
	return EXIT_CLEAN;
}

int common_opt(int c, const char *arg)
{
	switch (c) {
	case 'd': g_dir = arg; return 1;
	case 'q':
		g_quiet = 1;
		g_verbose = 0;
		return 1;
	case 'v':
		g_verbose++;
		g_quiet = 0;
		return 1;
	default: return 0;
	}
}

const char *data_dir(void)
{
	const char *e;

	if (g_dir)
		return g_dir;
	e = getenv("WALCTL_DIR");
	return e && *e ? e : "./walctl-data";
}

int exit_for(int walerr)
{
	switch (walerr) {
	case WAL_OK: return EXIT_CLEAN;
	case WAL_ECORRUPT:
	case WAL_EPARSE: return EXIT_DAMAGE;
	case WAL_EINVAL: return EXIT_USAGE;
	default: return EXIT_OPER;
	}
}

static int bad(const char *opt, const char *s, const char *want)
{
	usage_error("option '%s': invalid value '%s' (%s)", opt, s, want);
	return -1;
}

int parse_u64(const char *opt, const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	if (!*s || *s == '-')
		return bad(opt, s, "want a non-negative integer");
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return bad(opt, s, "want a non-negative integer");
	*out = v;
	return 0;
}

int parse_i64(const char *opt, const char *s, int64_t *out)
{
	char *end;

	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || errno || *end)
		return bad(opt, s, "want an integer");
	*out = v;
	return 0;
}

int parse_size(const char *opt, const char *s, uint64_t *out)
{
	static const struct {
		const char *suf;
		uint64_t mul;
	} sufs[] = {
		{ "", 1 },           { "k", 1ull << 10 },   { "K", 1ull << 10 }, { "KiB", 1ull << 10 },
		{ "M", 1ull << 20 }, { "MiB", 1ull << 20 }, { "G", 1ull << 30 }, { "GiB", 1ull << 30 },
	};
	char *end;

	errno = 0;
	if (!*s || *s == '-')
		return bad(opt, s, "want a size such as 4096, 64k, 128M, 1GiB");
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return bad(opt, s, "want a size such as 4096, 64k, 128M, 1GiB");
	for (size_t i = 0; i < sizeof sufs / sizeof sufs[0]; i++) {
		if (strcmp(end, sufs[i].suf) == 0) {
			if (v > UINT64_MAX / sufs[i].mul)
				return bad(opt, s, "too large");
			*out = v * sufs[i].mul;
			return 0;
		}
	}
	return bad(opt, s, "want a size such as 4096, 64k, 128M, 1GiB");
}

int parse_duration(const char *opt, const char *s, int64_t *out_ns)
{
	static const struct {
		const char *suf;
		int64_t mul;
	} sufs[] = {
		{ "ms", 1000000 },
		{ "s", 1000000000 },
		{ "m", 60ll * 1000000000 },
		{ "h", 3600ll * 1000000000 },
	};
	char *end;

	errno = 0;
	if (!*s || *s == '-')
		return bad(opt, s, "want a duration such as 500ms, 30s, 5m, 1h");
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return bad(opt, s, "want a duration such as 500ms, 30s, 5m, 1h");
	if (*end == 0 && v == 0) {
		*out_ns = 0;
		return 0;
	}
	for (size_t i = 0; i < sizeof sufs / sizeof sufs[0]; i++) {
		if (strcmp(end, sufs[i].suf) == 0) {
			if (v > (unsigned long long)(INT64_MAX / sufs[i].mul))
				return bad(opt, s, "too large");
			*out_ns = (int64_t)v * sufs[i].mul;
			return 0;
		}
	}
	return bad(opt, s, "want a duration such as 500ms, 30s, 5m, 1h");
}

int parse_sync(const char *opt, const char *s, enum wal_sync_mode *out)
{
	if (strcmp(s, "fdatasync") == 0)
		*out = WAL_SYNC_FDATASYNC;
	else if (strcmp(s, "fsync") == 0)
		*out = WAL_SYNC_FSYNC;
	else if (strcmp(s, "async") == 0)
		*out = WAL_SYNC_ASYNC;
	else
		return bad(opt, s, "want fsync, fdatasync or async");
	return 0;
}

int parse_text_json(const char *s, int *json)
{
	if (strcmp(s, "json") && strcmp(s, "text"))
		return bad("--format", s, "want text or json");
	*json = !strcmp(s, "json");
	return 0;
}

/* The length of the strict UTF-8 (RFC 3629) character at P, its code
 * point in *CP; 0 when the bytes there are not one: no overlong forms, no
 * surrogates, nothing past U+10FFFF. */
static size_t utf8_char(const unsigned char *p, size_t n, unsigned *cp)
{
	unsigned c = p[0], min;
	size_t k;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf)
		k = 1, min = 0x80, *cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		k = 2, min = 0x800, *cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		k = 3, min = 0x10000, *cp = c & 0x07;
	else
		return 0;
	if (n <= k)
		return 0;
	for (size_t j = 1; j <= k; j++) {
		if ((p[j] & 0xc0) != 0x80)
			return 0;
		*cp = *cp << 6 | (p[j] & 0x3f);
	}
	if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return k + 1;
}

static int utf8_ok(const unsigned char *p, size_t n)
{
	unsigned cp;

	for (size_t i = 0, k; i < n; i += k)
		if (!(k = utf8_char(p + i, n - i, &cp)))
			return 0;
	return 1;
}

static void json_base64(FILE *f, const unsigned char *p, size_t n)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	putc('"', f);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		putc(b64[v >> 18], f);
		putc(b64[v >> 12 & 63], f);
		putc(i + 1 < n ? b64[v >> 6 & 63] : '=', f);
		putc(i + 2 < n ? b64[v & 63] : '=', f);
	}
	putc('"', f);
}

/* Valid UTF-8 as a JSON string with control bytes escaped. */
static void json_utf8(FILE *f, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	putc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c < 0x20 || c == 0x7f) {
				fputs("\\u00", f);
				putc(hex[c >> 4], f);
				putc(hex[c & 15], f);
			} else {
				putc(c, f);
			}
		}
	}
	putc('"', f);
}

void json_str(FILE *f, const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;

	if (utf8_ok(u, n)) {
		json_utf8(f, u, n);
		return;
	}
	fputs("{\"encoding\": \"base64\", \"data\": ", f);
	json_base64(f, u, n);
	putc('}', f);
}

void json_data(FILE *f, const void *p, size_t n)
{
	const unsigned char *u = p;
	int ok = utf8_ok(u, n);

	fprintf(f, "\"encoding\": \"%s\", \"data\": ", ok ? "utf-8" : "base64");
	if (ok)
		json_utf8(f, u, n);
	else
		json_base64(f, u, n);
}

void json_lsn(FILE *f, uint64_t lsn)
{
	if (lsn)
		fprintf(f, "%" PRIu64, lsn);
	else
		fputs("null", f);
}

void json_num(FILE *f, const char *fmt, double v)
{
	if (isfinite(v))
		fprintf(f, fmt, v);
	else
		fputs("null", f);
}

const char *segment_state(const struct wal_segment_info *si)
{
	return !si->header_ok ? "bad-header" : si->sealed ? "sealed" : si->closed ? "closed" : "open";
}

/* A segment as verify and dump --stats describe it. */
void json_segment(FILE *f, const struct wal_segment_info *si)
{
	fputs("{\"name\": ", f);
	json_str(f, si->name, strlen(si->name));
	fprintf(f, ", \"seq\": %" PRIu64 ", \"first_lsn\": ", si->seq);
	json_lsn(f, si->entries ? si->first_lsn : 0);
	fputs(", \"last_lsn\": ", f);
	json_lsn(f, si->entries ? si->last_lsn : 0);
	fprintf(f, ", \"entries\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"state\": \"%s\"}", si->entries, si->bytes,
	        segment_state(si));
}

/* The point as one JSON object: the shape of the conformance corpus. */
void json_point(FILE *f, const struct wal_point *pt, const char *schema)
{
	if (schema)
		fprintf(f, "{\"schema\": \"%s\", \"measurement\": ", schema);
	else
		fputs("{\"measurement\": ", f);
	json_str(f, pt->measurement.p, pt->measurement.n);
	fputs(", \"tags\": [", f);
	for (size_t i = 0; i < pt->ntags; i++) {
		fputs(i ? ", [" : "[", f);
		json_str(f, pt->tags[i].key.p, pt->tags[i].key.n);
		fputs(", ", f);
		json_str(f, pt->tags[i].val.p, pt->tags[i].val.n);
		fputc(']', f);
	}
	fputs("], \"fields\": [", f);
	for (size_t i = 0; i < pt->nfields; i++) {
		const struct wal_field *fl = &pt->fields[i];
		fputs(i ? ", [" : "[", f);
		json_str(f, fl->key.p, fl->key.n);
		switch (fl->kind) {
		case WAL_FLOAT: fprintf(f, ", {\"float\": \"%.17g\"}]", fl->v.f); break;
		case WAL_INT: fprintf(f, ", {\"int\": \"%" PRId64 "\"}]", fl->v.i); break;
		case WAL_UINT: fprintf(f, ", {\"uint\": \"%" PRIu64 "\"}]", fl->v.u); break;
		case WAL_BOOL: fprintf(f, ", {\"bool\": %s}]", fl->v.b ? "true" : "false"); break;
		case WAL_STRING:
			fputs(", {\"string\": ", f);
			json_str(f, fl->v.s.p, fl->v.s.n);
			fputs("}]", f);
			break;
		}
	}
	fprintf(f, "], \"time\": \"%" PRId64 "\"}", pt->time);
}

int print_lp(FILE *f, const struct wal_point *pt)
{
	char small[1024];
	size_t n = wal_lp_format(small, sizeof small, pt);

	if (n < sizeof small)
		return fwrite(small, 1, n, f) == n ? 0 : -1;
	char *big = malloc(n + 1);
	if (!big)
		return -1;
	wal_lp_format(big, n + 1, pt);
	size_t w = fwrite(big, 1, n, f);
	free(big);
	return w == n ? 0 : -1;
}

/* Bytes of the data for a terminal: each control character (C0, DEL, and
 * C1 whether raw or UTF-8 encoded) and each byte that is not part of valid
 * UTF-8 is shown as \xHH, never sent, so that no escape sequence in the
 * data reaches the terminal. */
void put_text(FILE *f, const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t run = 0, k;
	unsigned cp;

	for (size_t i = 0; i < n; i += k) {
		k = utf8_char(u + i, n - i, &cp);
		if (k && cp >= 0x20 && cp != 0x7f && (cp < 0x80 || cp > 0x9f))
			continue;
		if (!k)
			k = 1;
		fwrite(p + run, 1, i - run, f);
		for (size_t j = 0; j < k; j++)
			fprintf(f, "\\x%02x", u[i + j]);
		run = i + k;
	}
	fwrite(p + run, 1, n - run, f);
}

/* Bytes in double quotes for text output: '"' and '\\' escaped with a
 * backslash, control bytes as \xHH (put_text). */
void print_quoted(FILE *f, const char *p, size_t n)
{
	size_t run = 0;

	putc('"', f);
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '"' && p[i] != '\\')
			continue;
		put_text(f, p + run, i - run);
		putc('\\', f);
		putc(p[i], f);
		run = i + 1;
	}
	put_text(f, p + run, n - run);
	putc('"', f);
}

/* A point as line protocol for a terminal (put_text), its own newline
 * kept. */
int print_lp_text(FILE *f, const struct wal_point *pt)
{
	char small[1024], *s = small;
	size_t n = wal_lp_format(small, sizeof small, pt);

	if (n >= sizeof small) {
		if (!(s = malloc(n + 1)))
			return -1;
		wal_lp_format(s, n + 1, pt);
	}
	size_t body = n && s[n - 1] == '\n' ? n - 1 : n;
	put_text(f, s, body);
	if (body < n)
		putc('\n', f);
	if (s != small)
		free(s);
	return ferror(f) ? -1 : 0;
}

void fmt_time(char *buf, size_t cap, int64_t ns)
{
	time_t sec = (time_t)(ns / 1000000000);
	long frac = (long)(ns % 1000000000);
	struct tm tm;

	if (frac < 0) {
		frac += 1000000000;
		sec--;
	}
	gmtime_r(&sec, &tm);
	size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%09ldZ", frac);
}

void progress_start(struct progress *p, const char *what, uint64_t total)
{
	p->on = !g_quiet && isatty(2);
	p->shown = 0;
	p->total = total;
	p->start_ns = wal_now_ns();
	p->last_ns = 0;
	snprintf(p->what, sizeof p->what, "%s", what);
}

/* 1.5 GB, 12 MB, 800 kB */
static void fmt_bytes(char *b, size_t cap, double v)
{
	if (v >= 1e9)
		snprintf(b, cap, "%.1f GB", v / 1e9);
	else if (v >= 1e6)
		snprintf(b, cap, "%.0f MB", v / 1e6);
	else
		snprintf(b, cap, "%.0f kB", v / 1e3);
}

void progress_items(struct progress *p, uint64_t done, uint64_t items, const char *unit)
{
	if (!p->on)
		return;
	int64_t now = wal_now_ns();
	if (now - p->start_ns < 1000000000 || now - p->last_ns < 200000000)
		return;
	p->last_ns = now;
	p->shown = progress_shown = 1;
	double secs = (double)(now - p->start_ns) / 1e9, rate = (double)done / secs;
	char d[32], t[32], r[32], line[256];
	int n = 0;
	fmt_bytes(d, sizeof d, (double)done);
	fmt_bytes(r, sizeof r, rate);
	if (p->total && done <= p->total) {
		fmt_bytes(t, sizeof t, (double)p->total);
		n = snprintf(line, sizeof line, "%s: %3.0f%%, %s of %s", p->what,
		             100.0 * (double)done / (double)p->total, d, t);
	} else {
		n = snprintf(line, sizeof line, "%s: %s", p->what, d);
	}
	if (unit)
		n += snprintf(line + n, sizeof line - (size_t)n, ", %" PRIu64 " %s", items, unit);
	n += snprintf(line + n, sizeof line - (size_t)n, ", %s/s", r);
	if (p->total && done <= p->total && rate > 0)
		snprintf(line + n, sizeof line - (size_t)n, ", %.0f s left", (double)(p->total - done) / rate);
	fprintf(stderr, "\r%s\033[K", line);
}

void progress_update(struct progress *p, uint64_t done) { progress_items(p, done, 0, NULL); }

void progress_end(struct progress *p)
{
	if (p->on && p->shown)
		fputs("\r\033[K", stderr);
	p->on = p->shown = progress_shown = 0;
}

static const char *op_name(enum wal_act_op op)
{
	switch (op) {
	case WAL_ACT_CUT: return "cut";
	case WAL_ACT_REMOVE: return "remove";
	case WAL_ACT_REWRITE: return "rewrite";
	case WAL_ACT_MERGE: return "merge";
	case WAL_ACT_REPLAY: return "replay";
	case WAL_ACT_PURGE: return "purge";
	case WAL_ACT_SET_ASIDE: return "set-aside";
	case WAL_ACT_REBUILD: return "rebuild";
	}
	return "?";
}

/* A string, or null when it is empty. */
static void json_opt_str(FILE *f, const char *s)
{
	if (*s)
		json_str(f, s, strlen(s));
	else
		fputs("null", f);
}

static void print_plan(const wal_plan_t *p, const struct wal_repair_opts *o, int json, FILE *f, const char *stamp,
                       int applied)
{
	const char *why = wal_plan_refusal(p);
	size_t n = wal_plan_nactions(p);

	if (json) {
		fprintf(f, "{\"schema\": \"walctl-plan/2\", \"command\": ");
		json_str(f, o->command, strlen(o->command));
		fprintf(f, ", \"verify_exit\": %d, \"refused\": ", wal_plan_class(p));
		if (why)
			json_str(f, why, strlen(why));
		else
			fputs("null", f);
		fputs(", \"actions\": [", f);
		for (size_t i = 0; i < n; i++) {
			const struct wal_action *a = wal_plan_action(p, i);
			fprintf(f, "%s{\"op\": \"%s\", \"file\": ", i ? ", " : "", op_name(a->op));
			json_opt_str(f, a->file);
			fputs(", \"new_name\": ", f);
			json_opt_str(f, a->newname);
			fprintf(f, ", \"offset\": %" PRIu64 ", \"length\": %" PRIu64 ", \"first_lsn\": ", a->offset,
			        a->length);
			json_lsn(f, a->lsn_first);
			fputs(", \"last_lsn\": ", f);
			json_lsn(f, a->lsn_last);
			fprintf(f, ", \"entries\": %" PRIu64 ", \"detail\": ", a->entries);
			json_opt_str(f, a->detail);
			fputc('}', f);
		}
		fputs("], \"lost\": [", f);
		for (size_t i = 0; i < wal_plan_nlosses(p); i++) {
			uint64_t a, b;
			wal_plan_loss(p, i, &a, &b);
			fprintf(f, "%s{\"first_lsn\": %" PRIu64 ", \"last_lsn\": %" PRIu64 "}", i ? ", " : "", a, b);
		}
		fputs("], \"lost_storage\": [", f);
		for (size_t i = 0; i < wal_plan_nstorage_losses(p); i++) {
			const struct wal_storage_loss *r = wal_plan_storage_loss(p, i);
			fprintf(f, "%s{\"partition\": ", i ? ", " : "");
			json_str(f, r->partition.p, r->partition.n);
			fputs(", \"first_lsn\": ", f);
			json_lsn(f, r->first_lsn);
			fputs(", \"last_lsn\": ", f);
			json_lsn(f, r->last_lsn);
			fputs(", \"reason\": ", f);
			json_str(f, r->reason.p, r->reason.n);
			fputc('}', f);
		}
		fputs("], \"consumers_lost\": [", f);
		for (size_t i = 0; i < wal_plan_nconsumers_lost(p); i++) {
			const struct wal_consumer_lag *l = wal_plan_consumer_lost(p, i);
			fputs(i ? ", {\"name\": " : "{\"name\": ", f);
			json_str(f, l->name, strlen(l->name));
			fprintf(f,
			        ", \"cursor_lsn\": %" PRIu64 ", \"lag_bytes\": %" PRIu64 ", \"limit_bytes\": %" PRIu64
			        "}",
			        l->cursor, l->lag_bytes, l->limit);
		}
		fputs("], \"consumers_rewound\": [", f);
		for (size_t i = 0; i < wal_plan_nrewinds(p); i++) {
			const struct wal_consumer_rewind *r = wal_plan_rewind(p, i);
			fputs(i ? ", {\"name\": " : "{\"name\": ", f);
			json_str(f, r->name, strlen(r->name));
			fprintf(f, ", \"cursor_lsn\": %" PRIu64 ", \"rewound_to\": %" PRIu64 "}", r->cursor, r->to);
		}
		fprintf(f, "], \"applied\": %s, \"stamp\": ", applied ? "true" : "false");
		json_opt_str(f, stamp);
		fputs("}\n", f);
		return;
	}
	if (why) {
		fprintf(f, "%s: refused: %s\n", o->command, why);
		return;
	}
	for (size_t i = 0; i < wal_plan_nconsumers_lost(p); i++) {
		const struct wal_consumer_lag *l = wal_plan_consumer_lost(p, i);
		fprintf(f,
		        "%s: consumer '%s' %s lost: %" PRIu64 " bytes of WAL after its cursor LSN %" PRIu64
		        ", past the limit of %" PRIu64 "\n",
		        o->command, l->name, applied ? "marked" : "would be marked", l->lag_bytes, l->cursor, l->limit);
	}
	if (!n) {
		fprintf(f, "%s: nothing to do\n", o->command);
		return;
	}
	for (size_t i = 0; i < wal_plan_nrewinds(p); i++) {
		const struct wal_consumer_rewind *r = wal_plan_rewind(p, i);
		fprintf(f, "%s: consumer '%s' %s rewound from cursor LSN %" PRIu64 " to LSN %" PRIu64 "\n", o->command,
		        r->name, applied ? "was" : "would be", r->cursor, r->to);
	}
	fprintf(f, "%s: %s\n", o->command, applied ? "done" : "plan (nothing is changed without --apply)");
	for (size_t i = 0; i < n; i++) {
		const struct wal_action *a = wal_plan_action(p, i);
		fprintf(f, "  %zu. %s", i + 1, op_name(a->op));
		if (a->file[0])
			fprintf(f, " %s '%s'",
			        a->op == WAL_ACT_PURGE                                   ? "quarantine"
			        : a->op == WAL_ACT_SET_ASIDE || a->op == WAL_ACT_REBUILD ? "partition"
			                                                                 : "segment",
			        a->file);
		if (a->op == WAL_ACT_CUT)
			fprintf(f, " at offset %" PRIu64 " (%" PRIu64 " bytes)", a->offset, a->length);
		else if (a->op == WAL_ACT_REMOVE)
			fprintf(f, " (%" PRIu64 " bytes)", a->length);
		if (a->entries && a->op != WAL_ACT_REPLAY)
			fprintf(f, ", %" PRIu64 " entries", a->entries);
		if (a->lsn_first && a->lsn_last && a->op != WAL_ACT_REPLAY)
			fprintf(f, ", LSN %" PRIu64 "-%" PRIu64, a->lsn_first, a->lsn_last);
		else if (a->lsn_first && a->op != WAL_ACT_REPLAY)
			fprintf(f, ", from LSN %" PRIu64, a->lsn_first);
		fprintf(f, ": %s\n", a->detail);
	}
	for (size_t i = 0; i < wal_plan_nlosses(p); i++) {
		uint64_t a, b;
		wal_plan_loss(p, i, &a, &b);
		fprintf(f, "  lost: LSN %" PRIu64 "-%" PRIu64 " (%srecorded in the WAL as a known loss)\n", a, b,
		        wal_plan_loss_no_points(p, i) ? "checkpoints only, no point; " : "");
	}
	for (size_t i = 0; i < wal_plan_nstorage_losses(p); i++) {
		const struct wal_storage_loss *r = wal_plan_storage_loss(p, i);
		fprintf(f,
		        "  lost: the points of LSN %" PRIu64 "-%" PRIu64
		        " in partition 'data/%.*s', which is %.*s, and that the WAL no longer "
		        "holds (what it holds is stored again; recorded in the WAL as a known loss)\n",
		        r->first_lsn, r->last_lsn, (int)r->partition.n, r->partition.p, (int)r->reason.n, r->reason.p);
	}
	if (applied && stamp[0])
		fprintf(
		    f,
		    "  recorded in quarantine/%s (every removed byte is kept there); undo: walctl recover --undo %s "
		    "--apply -d %s\n",
		    stamp, stamp, data_dir());
}

/* The progress of a repair's survey and replay: each phase a line of its
 * own, "recover: survey" then "recover: replay". */
struct repair_progress {
	struct progress pg;
	const char *command, *phase;
};

static void repair_progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
	struct repair_progress *rp = ctx;

	if (!rp->phase || strcmp(rp->phase, phase) != 0) {
		char what[64];
		snprintf(what, sizeof what, "%.20s: %s", rp->command, phase);
		progress_end(&rp->pg);
		progress_start(&rp->pg, what, total);
		rp->phase = phase;
	}
	progress_update(&rp->pg, done);
}

int run_repair(const struct wal_repair_opts *opts, int json, FILE *out)
{
	struct repair_progress rp = { .command = opts->command ? opts->command : "repair" };
	struct wal_repair_opts with = *opts, *o = &with;
	wal_plan_t *p;
	char stamp[64] = "";

	/* the first word of "recover --mode tail" */
	char cmd[24];
	snprintf(cmd, sizeof cmd, "%.*s", (int)strcspn(rp.command, " "), rp.command);
	rp.command = cmd;
	progress_start(&rp.pg, cmd, 0);
	with.progress = repair_progress;
	with.progress_ctx = &rp;
	int rc = wal_plan_make(&p, data_dir(), o);
	progress_end(&rp.pg);

	if (rc) {
		errorf("%s", wal_errmsg());
		return rc == WAL_ENOENT ? EXIT_OPER : exit_for(rc) | (rc == WAL_EINVAL ? 0 : 0);
	}
	int cls = wal_plan_class(p) & (EXIT_TORN | EXIT_DAMAGE), removes = 0;
	for (size_t i = 0; i < wal_plan_nactions(p); i++) {
		enum wal_act_op op = wal_plan_action(p, i)->op;
		removes |= op == WAL_ACT_CUT || op == WAL_ACT_REMOVE || op == WAL_ACT_REWRITE || op == WAL_ACT_MERGE ||
		           op == WAL_ACT_SET_ASIDE || op == WAL_ACT_REBUILD;
	}
	removes |= wal_plan_nlosses(p) > 0; /* LSNs given up, recorded as a loss */
	if (wal_plan_refusal(p)) {
		print_plan(p, o, json, out, "", 0);
		errorf("%s", wal_plan_refusal(p));
		wal_plan_free(p);
		return EXIT_DAMAGE;
	}
	if (!o->apply || (!wal_plan_nactions(p) && !wal_plan_nconsumers_lost(p))) {
		print_plan(p, o, json, out, "", 0);
		wal_plan_free(p);
		return o->apply ? (cls & EXIT_DAMAGE) : cls;
	}
	rc = wal_plan_apply(p, stamp, sizeof stamp);
	progress_end(&rp.pg);
	if (rc) {
		errorf("%s", wal_errmsg());
		if (stamp[0])
			errorf(
			    "interrupted: what was removed so far is in quarantine/%s; run the same command again to "
			    "complete the repair",
			    stamp);
		wal_plan_free(p);
		return exit_for(rc) == EXIT_DAMAGE ? EXIT_DAMAGE : EXIT_OPER;
	}
	print_plan(p, o, json, out, stamp, 1);
	wal_plan_free(p);
	/* What is left?  A tail repair refuses damage to the WAL other than a
	 * torn tail, which it cut: it leaves none to look for. */
	const char *dd = data_dir();
	wal_scan_t *s;
	struct wal_entry e;
	int left = 0;
	if (o->mode != WAL_REPAIR_TAIL && wal_scan_open(&s, &dd, 1, NULL) == 0) {
		while (wal_scan_next(s, &e) == 1)
			;
		left = wal_scan_class(s);
		wal_scan_close(s);
	}
	if (left & EXIT_DAMAGE) {
		errorf("damage to durable data remains; see 'walctl verify -d %s'", dd);
		return EXIT_DAMAGE;
	}
	return removes && cls ? EXIT_REPAIRED : EXIT_CLEAN;
}

/* Whether buf[0..n) holds a line that starts an InfluxDB export's DDL
 * section or names its database: "# DDL" or "# CONTEXT-DATABASE:" at the
 * start of a line (or of buf), after spaces if any, as the parser reads
 * them. */
int lp_has_directive(const char *buf, size_t n)
{
	const char *p = buf, *end = buf + n;

	while ((p = memchr(p, '#', (size_t)(end - p))) != NULL) {
		size_t left = (size_t)(end - p);
		const char *b = p;
		while (b > buf && b[-1] == ' ')
			b--;
		if ((b == buf || b[-1] == '\n') && ((left >= 5 && memcmp(p, "# DDL", 5) == 0) ||
		                                    (left >= 19 && memcmp(p, "# CONTEXT-DATABASE:", 19) == 0)))
			return 1;
		p++;
	}
	return 0;
}
