/*
 * logfmt.c - values for logfmt records.  Every value of a record goes out
 * quoted, with \" \\ \n \r \t escaped and any other byte below 0x20 (and
 * 0x7f) as \xHH, so that a value taken from the input (a rejected line, a
 * path, an error message) can neither end the record nor forge another.
 */
#include <stdio.h>

#include "internal.h"

const char *wal_lq(const char *s)
{
	/* a record has a few such values: each gets a buffer of its own */
	static _Thread_local char ring[8][1024];
	static _Thread_local unsigned next;
	char *o = ring[next++ % 8];
	size_t n = 0;
	const size_t cap = sizeof ring[0];

	for (; *s && n + 5 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		char esc = c == '"' ? '"' : c == '\\' ? '\\' : c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : 0;
		if (esc) {
			o[n++] = '\\';
			o[n++] = esc;
		} else if (c < 0x20 || c == 0x7f) {
			n += (size_t)snprintf(o + n, cap - n, "\\x%02x", c);
		} else {
			o[n++] = (char)c;
		}
	}
	o[n] = 0;
	return o;
}
