/*
 * error.c - error codes and the per-thread detail message, and the one way
 * the library grows an array.
 *
 * Functions that fail record what, where and which LSN in a thread-local
 * buffer; the command line prints it.  The codes never change meaning.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

static __thread char errbuf[512];

int wal_seterr(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	return err;
}

const char *wal_errmsg(void) { return errbuf[0] ? errbuf : "no error"; }

int wal_errno_code(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
	case EFBIG: return WAL_ENOSPC;
	case ENOENT: return WAL_ENOENT;
	case ENOMEM: return WAL_ENOMEM;
	default: return WAL_EIO;
	}
}

const char *wal_strerror(int err)
{
	switch (err) {
	case WAL_OK: return "success";
	case WAL_EIO: return "input/output error";
	case WAL_ENOMEM: return "out of memory";
	case WAL_EINVAL: return "invalid argument";
	case WAL_ELOCKED: return "data directory is locked by another writer";
	case WAL_ECORRUPT: return "damage to durable data";
	case WAL_ENOENT: return "no such file or directory";
	case WAL_ETOOBIG: return "entry larger than the maximum entry size";
	case WAL_ESYNC: return "sync failed";
	case WAL_ENOSPC: return "no space left on device";
	case WAL_EPARSE: return "malformed input";
	case WAL_ESTOPPED: return "writer stopped after an earlier failure";
	default: return "unknown error";
	}
}

int wal_grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * elem);
	if (!q)
		return wal_seterr(WAL_ENOMEM, "out of memory (%zu bytes)", n * elem);
	*p = q;
	*cap = n;
	return 0;
}
