/*
 * banned.h - functions that walctl never calls: unbounded copies and
 * formats, and non-reentrant tokenisers.  Included into every compilation
 * unit by the Makefile, so a use is a compile error.
 */
#ifndef WALCTL_BANNED_H
#define WALCTL_BANNED_H

/* Pull in the real declarations first so the macros only catch uses. */
#include <stdio.h>
#include <string.h>

#define BANNED(f) sorry_##f##_is_banned_in_walctl

#undef strcpy
#define strcpy(a, b) BANNED(strcpy)
#undef strcat
#define strcat(a, b) BANNED(strcat)
#undef strncpy
#define strncpy(a, b, n) BANNED(strncpy)
#undef strncat
#define strncat(a, b, n) BANNED(strncat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(a, b) BANNED(strtok)
#undef gets
#define gets(a) BANNED(gets)

#endif
