/*
 * lp.c - InfluxDB line protocol: parser and formatter.
 *
 * The grammar is the one of InfluxData's reference decoder (lineprotocol v2
 * at v2.1.0), which produced the conformance corpus:
 *
 *   line        = measurement *("," tag) 1*" " field *("," field) [1*" " time] *" " EOL
 *   measurement escapes "\ " "\,"; tag keys, tag values, field keys escape
 *   "\ " "\," "\="; a backslash before anything else stays as it is.
 *   string values escape only "\"" and "\\" and may hold raw newlines.
 *   EOL is LF, CRLF, or a CR at the very end of the input.  Blank lines and
 *   lines starting with "#" (after spaces) are skipped.
 *
 * Deliberate choices where the corpus is silent (man/walctl-write.1):
 * spaces before the measurement are skipped; floats are decimal only (no
 * hex floats, no "_" digit separators); duplicate tag keys are an error;
 * duplicate field keys are kept in order.
 *
 * The parser works in place on the caller's buffer and copies a token only
 * when it has escapes to remove, into scratch space reused for every point.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { OK = 0, NEED = 1, BAD = -1 };

/* Character classes. */
#define C_MEAS 0x01 /* in a measurement */
#define C_KEY  0x02 /* in a tag key or field key */
#define C_TAGV 0x04 /* in a tag value */
#define C_FVAL 0x08 /* in an unquoted field value */
#define C_TIME 0x10 /* in a timestamp */
#define C_CMT  0x20 /* in a comment */
#define C_STR  0x40 /* in a string value */

static unsigned char cls[256];
static unsigned char esc_meas[256], esc_key[256], esc_str[256];

static void init_tables(void)
{
	for (int c = 0; c < 256; c++) {
		int np = c < 32 || c == 127;
		unsigned char v = 0;
		if (!np && c != ',' && c != ' ')
			v |= C_MEAS;
		if (!np && c != ',' && c != '=' && c != ' ')
			v |= C_KEY;
		if (c != ',' && c != '=' && c != ' ' && c != '\r' && c != '\n')
			v |= C_TAGV;
		if (c != ',' && c != ' ' && c != '\r' && c != '\n')
			v |= C_FVAL;
		if (c == '-' || (c >= '0' && c <= '9'))
			v |= C_TIME;
		if (!np)
			v |= C_CMT;
		if (c != '"')
			v |= C_STR;
		if (c == '\\')
			v &= (unsigned char)~(C_MEAS | C_KEY | C_TAGV | C_STR);
		cls[c] = v;
	}
	esc_meas[' '] = ' ';
	esc_meas[','] = ',';
	esc_key[' '] = ' ';
	esc_key[','] = ',';
	esc_key['='] = '=';
	esc_str['"'] = '"';
	esc_str['\\'] = '\\';
}

struct wal_lp {
	enum wal_precision prec;
	int64_t default_time;
	const unsigned char *buf;
	size_t len, pos, consumed;
	int eof;
	uint64_t line, consumed_line, point_line;
	char err[256];
	struct wal_tag *tags;
	size_t ntags, captags;
	struct wal_field *fields;
	size_t nfields, capfields;
	char *scratch;
	size_t capscratch, nscratch;
	/* InfluxDB export files */
	int in_ddl;
	uint64_t ddl_skipped, ctx_seq, ctx_line;
	char ctx_db[WAL_DB_DIRNAME_MAX + 1], ctx_err[200];
	size_t ctx_len;
};

static const int64_t prec_mul[] = { 1, 1000, 1000000, 1000000000 };

int wal_precision_parse(const char *s)
{
	if (s[0] == '1' && s[1])
		s++;
	if (strcmp(s, "ns") == 0 || strcmp(s, "n") == 0)
		return WAL_PREC_NS;
	if (strcmp(s, "us") == 0 || strcmp(s, "u") == 0)
		return WAL_PREC_US;
	if (strcmp(s, "ms") == 0)
		return WAL_PREC_MS;
	if (strcmp(s, "s") == 0)
		return WAL_PREC_S;
	return -1;
}

static int64_t floor_to(int64_t t, int64_t m)
{
	int64_t r = t % m;
	return r < 0 ? t - r - m : t - r;
}

int wal_lp_new(wal_lp_t **out, enum wal_precision prec, int64_t default_time_ns)
{
	static int inited;
	wal_lp_t *p;

	if (!inited) {
		init_tables();
		inited = 1;
	}
	*out = NULL;
	if ((unsigned)prec > WAL_PREC_S)
		return wal_seterr(WAL_EINVAL, "bad precision");
	p = calloc(1, sizeof *p);
	if (!p)
		return wal_seterr(WAL_ENOMEM, "out of memory");
	p->prec = prec;
	p->line = p->consumed_line = 1;
	wal_lp_set_default_time(p, default_time_ns);
	*out = p;
	return 0;
}

void wal_lp_free(wal_lp_t *p)
{
	if (!p)
		return;
	free(p->tags);
	free(p->fields);
	free(p->scratch);
	free(p);
}

void wal_lp_set_default_time(wal_lp_t *p, int64_t t) { p->default_time = floor_to(t, prec_mul[p->prec]); }

void wal_lp_input(wal_lp_t *p, const char *buf, size_t len, uint64_t first_line, int at_eof)
{
	p->buf = (const unsigned char *)buf;
	p->len = len;
	p->pos = p->consumed = 0;
	p->eof = at_eof;
	if (first_line)
		p->consumed_line = first_line;
	p->line = p->consumed_line;
}

size_t wal_lp_consumed(const wal_lp_t *p) { return p->consumed; }
uint64_t wal_lp_line(const wal_lp_t *p) { return p->point_line; }
uint64_t wal_lp_next_line(const wal_lp_t *p) { return p->consumed_line; }
const char *wal_lp_error(const wal_lp_t *p) { return p->err; }
uint64_t wal_lp_ddl_skipped(const wal_lp_t *p) { return p->ddl_skipped; }

uint64_t wal_lp_context(const wal_lp_t *p, struct wal_str *db, uint64_t *line, const char **err)
{
	*db = (struct wal_str){ p->ctx_err[0] ? NULL : p->ctx_db, p->ctx_len };
	*line = p->ctx_line;
	*err = p->ctx_err;
	return p->ctx_seq;
}

static int has_prefix(const unsigned char *s, size_t n, const char *pre)
{
	size_t k = strlen(pre);
	return n >= k && memcmp(s, pre, k) == 0;
}

/* A comment line of an InfluxDB export (influx_inspect export): "# DDL"
 * starts its statements, "# DML" its points, "# CONTEXT-DATABASE: NAME"
 * names the database of the points that follow.  Any other is a comment. */
static void directive(wal_lp_t *p, const unsigned char *s, size_t n)
{
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		n--;
	if (n == 5 && memcmp(s, "# DDL", 5) == 0) {
		p->in_ddl = 1;
	} else if (n == 5 && memcmp(s, "# DML", 5) == 0) {
		p->in_ddl = 0;
	} else if (has_prefix(s, n, "# CONTEXT-DATABASE:")) {
		size_t k = strlen("# CONTEXT-DATABASE:");
		while (k < n && (s[k] == ' ' || s[k] == '\t'))
			k++;
		p->ctx_seq++;
		p->ctx_line = p->line;
		p->ctx_err[0] = 0;
		p->ctx_len = 0;
		if (wal_db_check((const char *)s + k, n - k) != 0)
			snprintf(p->ctx_err, sizeof p->ctx_err, "%s", wal_errmsg());
		else if (n - k >= sizeof p->ctx_db)
			snprintf(p->ctx_err, sizeof p->ctx_err, "database name of %zu bytes is too long", n - k);
		else {
			memcpy(p->ctx_db, s + k, n - k);
			p->ctx_len = n - k;
		}
	}
}

static int fail(wal_lp_t *p, const char *fmt, ...) WAL_PRINTF(2, 3);
static int fail(wal_lp_t *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, sizeof p->err, fmt, ap);
	va_end(ap);
	return BAD;
}

/* A character for a message: 'x', or '\n', or '\x01'. */
static const char *show(int c)
{
	static __thread char b[8];

	if (c == '\n')
		return "'\\n'";
	if (c == '\r')
		return "'\\r'";
	if (c == '\t')
		return "'\\t'";
	if (c < 32 || c >= 127)
		snprintf(b, sizeof b, "'\\x%02x'", c & 0xff);
	else
		snprintf(b, sizeof b, "'%c'", c);
	return b;
}

static int utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t k;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}

static inline int at_end(const wal_lp_t *p) { return p->pos >= p->len; }
#define END_OR_NEED(p) (at_end(p) && !(p)->eof)

#if defined(__SSE2__)
#include <emmintrin.h>

/* The index of the first byte at or after i that is not in SET (or len),
 * 16 bytes at a time; *hi gets 0x80 if a byte with the high bit was passed. */
static inline size_t scan_set(const unsigned char *b, size_t i, size_t len, unsigned set, unsigned *hi)
{
	const __m128i comma = _mm_set1_epi8(','), space = _mm_set1_epi8(' '), bslash = _mm_set1_epi8('\\'),
	              eq = _mm_set1_epi8('='), quote = _mm_set1_epi8('"'), cr = _mm_set1_epi8('\r'),
	              lf = _mm_set1_epi8('\n'), del = _mm_set1_epi8(0x7f), sp = _mm_set1_epi8(0x20);

	while (i + 16 <= len) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b + i)), m;
		switch (set) {
		case C_STR: m = _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)); break;
		case C_TAGV:
			m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, comma), _mm_cmpeq_epi8(x, space)),
			                 _mm_or_si128(_mm_cmpeq_epi8(x, eq), _mm_cmpeq_epi8(x, bslash)));
			m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(x, cr), _mm_cmpeq_epi8(x, lf)));
			break;
		default: /* C_MEAS, C_KEY: also stop at control characters */
			m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, comma), _mm_cmpeq_epi8(x, space)),
			                 _mm_cmpeq_epi8(x, bslash));
			if (set == C_KEY)
				m = _mm_or_si128(m, _mm_cmpeq_epi8(x, eq));
			/* x < 0x20 unsigned: max(x, 0x20) != x */
			m = _mm_or_si128(m,
			                 _mm_andnot_si128(_mm_cmpeq_epi8(_mm_max_epu8(x, sp), x), _mm_set1_epi8(-1)));
			m = _mm_or_si128(m, _mm_cmpeq_epi8(x, del));
			break;
		}
		unsigned stop = (unsigned)_mm_movemask_epi8(m), high = (unsigned)_mm_movemask_epi8(x);
		if (stop) {
			unsigned k = (unsigned)__builtin_ctz(stop);
			if (high & ((1u << k) - 1))
				*hi = 0x80;
			return i + k;
		}
		if (high)
			*hi = 0x80;
		i += 16;
	}
	while (i < len && (cls[b[i]] & set))
		*hi |= b[i++];
	return i;
}
#else
static inline size_t scan_set(const unsigned char *b, size_t i, size_t len, unsigned set, unsigned *hi)
{
	while (i < len && (cls[b[i]] & set))
		*hi |= b[i++];
	return i;
}
#endif

/* Take a token of class SET with the escapes of ESC; out borrows from the
 * buffer or from scratch. */
static int take_esc(wal_lp_t *p, unsigned set, const unsigned char *esc, struct wal_str *out)
{
	const unsigned char *b = p->buf;
	size_t i = p->pos, start = p->pos;
	unsigned hi = 0;
	int has_esc = 0;

	for (;;) {
		i = scan_set(b, i, p->len, set, &hi);
		if (i < p->len && b[i] == '\\') {
			if (i + 1 >= p->len) {
				if (!p->eof)
					return NEED;
				i++; /* a final backslash stays */
				break;
			}
			if (esc[b[i + 1]]) {
				has_esc = 1;
				i += 2;
			} else {
				i++;
			}
			continue;
		}
		break;
	}
	if (i >= p->len && !p->eof)
		return NEED;
	if (set == C_STR)
		for (const unsigned char *nl = b + start; (nl = memchr(nl, '\n', (size_t)(b + i - nl))) != NULL; nl++)
			p->line++;
	p->pos = i;
	if (!has_esc) {
		out->p = (const char *)b + start;
		out->n = i - start;
	} else {
		char *d = p->scratch + p->nscratch;
		size_t n = 0;
		for (size_t j = start; j < i; j++) {
			if (b[j] == '\\' && j + 1 < i && esc[b[j + 1]]) {
				d[n++] = (char)esc[b[j + 1]];
				j++;
			} else {
				d[n++] = (char)b[j];
			}
		}
		out->p = d;
		out->n = n;
		p->nscratch += n;
	}
	if ((hi & 0x80) && !utf8_valid((const unsigned char *)out->p, out->n))
		return fail(p, "invalid UTF-8 in \"%.*s\"", (int)(out->n > 40 ? 40 : out->n), out->p);
	return OK;
}

static size_t take(wal_lp_t *p, unsigned set)
{
	size_t start = p->pos;

	while (p->pos < p->len && (cls[p->buf[p->pos]] & set))
		p->pos++;
	return p->pos - start;
}

static void skip_spaces(wal_lp_t *p)
{
	while (p->pos < p->len && p->buf[p->pos] == ' ')
		p->pos++;
}

/* LF, CRLF, or CR at the very end: 1 taken, 0 not an end of line. */
static int take_eol(wal_lp_t *p)
{
	if (at_end(p))
		return 1;
	if (p->buf[p->pos] == '\n') {
		p->pos++;
		p->line++;
		return 1;
	}
	if (p->buf[p->pos] == '\r') {
		if (p->pos + 1 >= p->len)
			return p->eof ? (p->pos++, 1) : NEED + 1;
		if (p->buf[p->pos + 1] == '\n') {
			p->pos += 2;
			p->line++;
			return 1;
		}
	}
	return 0;
}

/* Skip blank lines and comments.  OK: at an entry or at the end. */
static int skip_empty(wal_lp_t *p)
{
	for (;;) {
		size_t start = p->pos;
		skip_spaces(p);
		if (END_OR_NEED(p))
			return NEED;
		if (at_end(p))
			return OK;
		switch (p->buf[p->pos]) {
		case '#': {
			size_t text = p->pos;
			uint64_t at = p->line;
			take(p, C_CMT);
			size_t end = p->pos;
			int r = take_eol(p);
			if (r == NEED + 1 || (r == 1 && END_OR_NEED(p) && p->pos == p->len && !p->eof))
				return NEED;
			if (r == 1) {
				uint64_t keep = p->line;
				p->line = at;
				directive(p, p->buf + text, end - text);
				p->line = keep;
				continue;
			}
			if (END_OR_NEED(p))
				return NEED;
			p->pos = start; /* the measurement will report the bad comment */
			if (!p->in_ddl)
				return OK;
			break;
		}
		case '\n':
			p->pos++;
			p->line++;
			continue;
		case '\r': {
			int r = take_eol(p);
			if (r == NEED + 1)
				return NEED;
			if (r == 1)
				continue;
			if (!p->in_ddl)
				return OK;
			break;
		}
		default:
			if (!p->in_ddl)
				return OK;
			break;
		}
		/* a statement of an export's DDL section: skipped */
		const unsigned char *nl = memchr(p->buf + p->pos, '\n', p->len - p->pos);
		if (!nl && !p->eof)
			return NEED;
		p->pos = nl ? (size_t)(nl - p->buf) + 1 : p->len;
		p->line += nl != NULL;
		p->ddl_skipped++;
		/* done with: a later NEED must not count it again */
		p->consumed = p->pos;
		p->consumed_line = p->line;
	}
}

static int parse_int(const struct wal_str *s, int neg_ok, uint64_t max_pos, uint64_t *mag, int *neg)
{
	size_t i = 0;
	uint64_t v = 0;

	*neg = 0;
	if (neg_ok && s->n > 0 && s->p[0] == '-') {
		*neg = 1;
		i = 1;
	}
	if (i == s->n)
		return -1;
	for (; i < s->n; i++) {
		unsigned d = (unsigned char)s->p[i] - '0';
		if (d > 9)
			return -1;
		if (v > (UINT64_MAX - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	if (*neg ? v > max_pos + 1 : v > max_pos)
		return -2;
	*mag = v;
	return 0;
}

static int parse_float(const struct wal_str *s, double *out)
{
	char tmp[512], *end;
	const char *q = s->p, *e = s->p + s->n;
	size_t digits = 0;

	if (q < e && *q == '-')
		q++;
	while (q < e && *q >= '0' && *q <= '9')
		q++, digits++;
	if (q < e && *q == '.') {
		q++;
		while (q < e && *q >= '0' && *q <= '9')
			q++, digits++;
	}
	if (!digits)
		return -1;
	if (q < e && (*q == 'e' || *q == 'E')) {
		size_t ed = 0;
		q++;
		if (q < e && (*q == '+' || *q == '-'))
			q++;
		while (q < e && *q >= '0' && *q <= '9')
			q++, ed++;
		if (!ed)
			return -1;
	}
	if (q != e)
		return -1;
	if (s->n < sizeof tmp) {
		memcpy(tmp, s->p, s->n);
		tmp[s->n] = 0;
		*out = strtod(tmp, &end);
	} else {
		char *big = malloc(s->n + 1);
		if (!big)
			return -3;
		memcpy(big, s->p, s->n);
		big[s->n] = 0;
		*out = strtod(big, &end);
		free(big);
	}
	if (isinf(*out))
		return -2;
	return 0;
}

static int ensure_arrays(wal_lp_t *p, size_t ntags, size_t nfields)
{
	if (ntags >= p->captags) {
		size_t n = p->captags ? p->captags * 2 : 32;
		void *q = realloc(p->tags, n * sizeof *p->tags);
		if (!q)
			return -1;
		p->tags = q;
		p->captags = n;
	}
	if (nfields >= p->capfields) {
		size_t n = p->capfields ? p->capfields * 2 : 32;
		void *q = realloc(p->fields, n * sizeof *p->fields);
		if (!q)
			return -1;
		p->fields = q;
		p->capfields = n;
	}
	return 0;
}

#define TRY(x)                                                                                                         \
	do {                                                                                                           \
		int r_ = (x);                                                                                          \
		if (r_ != OK)                                                                                          \
			return r_;                                                                                     \
	} while (0)

/* After the measurement or a tag value: a comma must start a tag. */
static int tag_comma(wal_lp_t *p, int *more)
{
	*more = 0;
	if (END_OR_NEED(p))
		return NEED;
	if (at_end(p) || p->buf[p->pos] != ',')
		return OK;
	p->pos++;
	if (END_OR_NEED(p))
		return NEED;
	if (at_end(p))
		return fail(p, "expected tag key after comma; got end of input");
	int c = p->buf[p->pos];
	if (c == ' ' || c == '\r' || c == '\n')
		return fail(p, "expected tag key after comma; got white space instead");
	*more = 1;
	return OK;
}

static int parse_value(wal_lp_t *p, struct wal_field *f)
{
	struct wal_str v;
	uint64_t mag;
	int neg, r;

	if (END_OR_NEED(p))
		return NEED;
	if (at_end(p))
		return fail(p, "expected field value, found end of input");
	switch (p->buf[p->pos]) {
	case '"':
		p->pos++;
		TRY(take_esc(p, C_STR, esc_str, &f->v.s));
		if (at_end(p))
			return fail(p, "expected closing quote for string field value, found end of input");
		p->pos++;
		f->kind = WAL_STRING;
		return OK;
	case 't':
	case 'T':
	case 'f':
	case 'F':
		v.p = (const char *)p->buf + p->pos;
		v.n = take(p, C_FVAL);
		if (END_OR_NEED(p))
			return NEED;
		f->kind = WAL_BOOL;
#define IS(w) (v.n == sizeof(w) - 1 && memcmp(v.p, w, v.n) == 0)
		if (IS("t") || IS("T") || IS("true") || IS("True") || IS("TRUE"))
			f->v.b = 1;
		else if (IS("f") || IS("F") || IS("false") || IS("False") || IS("FALSE"))
			f->v.b = 0;
		else
			return fail(p, "invalid boolean value \"%.*s\" for field \"%.*s\"", (int)v.n, v.p,
			            (int)f->key.n, f->key.p);
#undef IS
		return OK;
	case '-':
	case '.':
	case '0':
	case '1':
	case '2':
	case '3':
	case '4':
	case '5':
	case '6':
	case '7':
	case '8':
	case '9':
		v.p = (const char *)p->buf + p->pos;
		v.n = take(p, C_FVAL);
		if (END_OR_NEED(p))
			return NEED;
		if (v.p[v.n - 1] == 'i') {
			v.n--;
			f->kind = WAL_INT;
			r = parse_int(&v, 1, INT64_MAX, &mag, &neg);
			if (r == 0)
				f->v.i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
		} else if (v.p[v.n - 1] == 'u') {
			v.n--;
			f->kind = WAL_UINT;
			r = parse_int(&v, 0, UINT64_MAX, &mag, &neg);
			f->v.u = mag;
		} else {
			f->kind = WAL_FLOAT;
			r = parse_float(&v, &f->v.f);
			if (r == -3)
				return fail(p, "out of memory");
		}
		if (r == -1)
			return fail(p, "invalid %s value \"%.*s\" for field \"%.*s\"",
			            f->kind == WAL_FLOAT ? "float"
			            : f->kind == WAL_INT ? "integer"
			                                 : "unsigned integer",
			            (int)v.n, v.p, (int)f->key.n, f->key.p);
		if (r == -2)
			return fail(p, "value \"%.*s\" of field \"%.*s\" is out of range", (int)v.n, v.p, (int)f->key.n,
			            f->key.p);
		return OK;
	default:
		return fail(p, "field value of \"%.*s\" has an unrecognized type (starts with %s)", (int)f->key.n,
		            f->key.p, show(p->buf[p->pos]));
	}
}

static int parse_time(wal_lp_t *p, int64_t *t)
{
	struct wal_str v;
	uint64_t mag;
	int neg;

	v.p = (const char *)p->buf + p->pos;
	v.n = take(p, C_TIME);
	if (END_OR_NEED(p))
		return NEED;
	if (!at_end(p)) {
		int c = p->buf[p->pos];
		if (c != ' ' && c != '\r' && c != '\n')
			return fail(p, "invalid timestamp \"%.*s\" (%s found)", (int)v.n, v.p, show(c));
	}
	/* The value is judged before the end of the line is taken: a line
	 * rejected here must leave the next one where it is. */
	if (v.n == 0) {
		*t = p->default_time;
	} else {
		if (parse_int(&v, 1, INT64_MAX, &mag, &neg) != 0)
			return fail(p, "invalid timestamp \"%.*s\"", (int)v.n, v.p);
		int64_t ts = neg ? (int64_t)(0 - mag) : (int64_t)mag;
		if (__builtin_mul_overflow(ts, prec_mul[p->prec], t))
			return fail(p, "timestamp \"%.*s\" is out of range at this precision", (int)v.n, v.p);
	}
	if (!at_end(p)) {
		skip_spaces(p);
		if (END_OR_NEED(p))
			return NEED;
		int r = take_eol(p);
		if (r == NEED + 1)
			return NEED;
		if (r == 0)
			return fail(p, "unexpected text after timestamp");
	}
	return OK;
}

static int parse_point(wal_lp_t *p, struct wal_point *pt)
{
	int more, c;

	p->ntags = p->nfields = 0;
	p->nscratch = 0;
	if (p->capscratch < p->len - p->pos + 1) {
		size_t n = p->len - p->pos + 1 < 65536 ? 65536 : p->len - p->pos + 1;
		char *q = realloc(p->scratch, n);
		if (!q)
			return fail(p, "out of memory");
		p->scratch = q;
		p->capscratch = n;
	}
	TRY(take_esc(p, C_MEAS, esc_meas, &pt->measurement));
	if (pt->measurement.n == 0) {
		if (at_end(p))
			return fail(p, "no measurement name found");
		return fail(p, "invalid character %s found at start of measurement name", show(p->buf[p->pos]));
	}
	if (pt->measurement.p[0] == '#')
		return fail(p, "invalid character found in comment line");
	TRY(tag_comma(p, &more));
	/* Tags. */
	for (;;) {
		struct wal_tag *tg;
		if (END_OR_NEED(p))
			return NEED;
		if (!at_end(p) && p->buf[p->pos] == ' ')
			break;
		if (ensure_arrays(p, p->ntags, p->nfields) != 0)
			return fail(p, "out of memory");
		tg = &p->tags[p->ntags];
		TRY(take_esc(p, C_KEY, esc_key, &tg->key));
		if (tg->key.n == 0 || at_end(p) || p->buf[p->pos] != '=') {
			if (at_end(p))
				return fail(p, "empty tag name");
			if (tg->key.n)
				return fail(p, "expected '=' after tag key \"%.*s\", but got %s instead",
				            (int)tg->key.n, tg->key.p, show(p->buf[p->pos]));
			return fail(p, "expected tag key or field but found %s instead", show(p->buf[p->pos]));
		}
		p->pos++;
		TRY(take_esc(p, C_TAGV, esc_key, &tg->val));
		if (tg->val.n == 0)
			return fail(p, "expected tag value after tag key \"%.*s\", but none found", (int)tg->key.n,
			            tg->key.p);
		for (size_t i = 0; i < p->ntags; i++)
			if (p->tags[i].key.n == tg->key.n && memcmp(p->tags[i].key.p, tg->key.p, tg->key.n) == 0)
				return fail(p, "duplicate tag key \"%.*s\"", (int)tg->key.n, tg->key.p);
		p->ntags++;
		if (at_end(p))
			break;
		TRY(tag_comma(p, &more));
	}
	skip_spaces(p);
	/* Fields. */
	for (;;) {
		struct wal_field *f;
		if (ensure_arrays(p, p->ntags, p->nfields) != 0)
			return fail(p, "out of memory");
		f = &p->fields[p->nfields];
		TRY(take_esc(p, C_KEY, esc_key, &f->key));
		if (f->key.n == 0) {
			if (at_end(p))
				return fail(p, "expected field key but none found");
			return fail(p, "invalid character %s found at start of field key", show(p->buf[p->pos]));
		}
		if (at_end(p))
			return fail(p, "want '=' after field key \"%.*s\", found end of input", (int)f->key.n,
			            f->key.p);
		if (p->buf[p->pos] != '=')
			return fail(p, "want '=' after field key \"%.*s\", found %s", (int)f->key.n, f->key.p,
			            show(p->buf[p->pos]));
		p->pos++;
		TRY(parse_value(p, f));
		p->nfields++;
		if (END_OR_NEED(p))
			return NEED;
		if (at_end(p)) {
			pt->time = p->default_time;
			goto done;
		}
		c = p->buf[p->pos];
		if (c == ',') {
			p->pos++;
			continue;
		}
		if (c != ' ' && c != '\r' && c != '\n')
			return fail(p, "unexpected character %s after field \"%.*s\"", show(c), (int)f->key.n,
			            f->key.p);
		skip_spaces(p);
		if (END_OR_NEED(p))
			return NEED;
		int r = take_eol(p);
		if (r == NEED + 1)
			return NEED;
		if (r == 1) {
			pt->time = p->default_time;
			goto done;
		}
		TRY(parse_time(p, &pt->time));
		goto done;
	}
done:
	pt->tags = p->tags;
	pt->ntags = p->ntags;
	pt->fields = p->fields;
	pt->nfields = p->nfields;
	return OK;
}

int wal_lp_next(wal_lp_t *p, struct wal_point *out)
{
	int r;

	p->pos = p->consumed;
	p->line = p->consumed_line;
	r = skip_empty(p);
	if (r == NEED) {
		/* keep what was skipped: blank lines and comments are done with */
		return 0;
	}
	p->consumed = p->pos;
	p->consumed_line = p->line;
	if (at_end(p))
		return 0;
	p->point_line = p->line;
	r = parse_point(p, out);
	if (r == OK) {
		p->consumed = p->pos;
		p->consumed_line = p->line;
		return 1;
	}
	if (r == NEED) {
		p->line = p->consumed_line;
		return 0;
	}
	/* A bad entry: skip to the end of the line where the error was found. */
	const unsigned char *nl = p->pos < p->len ? memchr(p->buf + p->pos, '\n', p->len - p->pos) : NULL;
	if (!nl) {
		if (!p->eof) {
			p->line = p->consumed_line;
			return 0;
		}
		p->pos = p->len;
	} else {
		p->pos = (size_t)(nl - p->buf) + 1;
		p->line++;
	}
	p->consumed = p->pos;
	p->consumed_line = p->line;
	return WAL_EPARSE;
}

/* ------------------------------------------------------------ formatter */

struct out {
	char *b;
	size_t cap, n;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->n < o->cap) {
		size_t k = o->cap - o->n < n ? o->cap - o->n : n;
		memcpy(o->b + o->n, s, k);
	}
	o->n += n;
}

/* What the formatter escapes with a backslash, by where a byte stands. */
#define E_MEAS 0x01 /* measurement: comma, space */
#define E_KEY  0x02 /* tag key, tag value, field key: comma, equals, space */
#define E_STR  0x04 /* string field value: quote, backslash */
static const unsigned char esc_out[256] = {
	[','] = E_MEAS | E_KEY, [' '] = E_MEAS | E_KEY, ['='] = E_KEY, ['"'] = E_STR, ['\\'] = E_STR,
};

static void put_esc(struct out *o, struct wal_str s, unsigned which)
{
	const unsigned char *p = (const unsigned char *)s.p;
	size_t run = 0;

	for (size_t i = 0; i < s.n; i++) {
		if (esc_out[p[i]] & which) {
			put(o, s.p + run, i - run);
			put(o, "\\", 1);
			run = i;
		}
	}
	put(o, s.p + run, s.n - run);
}

/* The decimal digits of v, right-aligned to end; returns where they start. */
static char *u64_digits(char *end, uint64_t v)
{
	static const char two[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	                          "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	                          "8081828384858687888990919293949596979899";
	char *d = end;
	while (v >= 100) {
		unsigned k = (unsigned)(v % 100) * 2;
		v /= 100;
		*--d = two[k + 1];
		*--d = two[k];
	}
	if (v >= 10) {
		*--d = two[v * 2 + 1];
		*--d = two[v * 2];
	} else {
		*--d = (char)('0' + v);
	}
	return d;
}

/* v in decimal, with a minus sign if negative, then SUFFIX (0: none). */
static void put_int(struct out *o, int64_t v, char suffix)
{
	char num[24], *end = num + sizeof num - 1, *d;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	*end = suffix;
	d = u64_digits(end, u);
	if (v < 0)
		*--d = '-';
	put(o, d, (size_t)(end - d) + (suffix != 0));
}

size_t wal_lp_format(char *buf, size_t cap, const struct wal_point *pt)
{
	struct out o = { buf, cap, 0 };
	char num[64];

	put_esc(&o, pt->measurement, E_MEAS);
	for (size_t i = 0; i < pt->ntags; i++) {
		put(&o, ",", 1);
		put_esc(&o, pt->tags[i].key, E_KEY);
		put(&o, "=", 1);
		put_esc(&o, pt->tags[i].val, E_KEY);
	}
	for (size_t i = 0; i < pt->nfields; i++) {
		const struct wal_field *f = &pt->fields[i];
		put(&o, i ? "," : " ", 1);
		put_esc(&o, f->key, E_KEY);
		put(&o, "=", 1);
		switch (f->kind) {
		case WAL_FLOAT: {
			/* the shortest of 15 to 17 significant digits that reads back
			 * as the same double */
			int n = 0;
			for (int prec = 15; prec <= 17; prec++) {
				n = snprintf(num, sizeof num, "%.*g", prec, f->v.f);
				if (strtod(num, NULL) == f->v.f)
					break;
			}
			put(&o, num, (size_t)n);
			break;
		}
		case WAL_INT: put_int(&o, f->v.i, 'i'); break;
		case WAL_UINT: {
			char *end = num + sizeof num - 1;
			*end = 'u';
			char *d = u64_digits(end, f->v.u);
			put(&o, d, (size_t)(end - d) + 1);
			break;
		}
		case WAL_BOOL: f->v.b ? put(&o, "true", 4) : put(&o, "false", 5); break;
		case WAL_STRING:
			put(&o, "\"", 1);
			put_esc(&o, f->v.s, E_STR);
			put(&o, "\"", 1);
			break;
		}
	}
	put(&o, " ", 1);
	put_int(&o, pt->time, '\n');
	if (o.n < o.cap)
		o.b[o.n] = 0;
	return o.n;
}
