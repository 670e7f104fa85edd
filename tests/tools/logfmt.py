#!/usr/bin/env python3
"""logfmt.py - a strict logfmt reader for the tests.

Written from the format's description, not from walctl's printer: a record
is one line of key=value pairs separated by spaces; a key is a run of bytes
above the space other than '=' and '"'; a value is bare (a run of such bytes)
or quoted, with backslash escapes as in Go string literals (\\" \\\\ \\n \\r
\\t \\a \\b \\f \\v \\xHH \\uHHHH \\UHHHHHHHH).  Raw control bytes are not allowed
anywhere.

    logfmt.py [--quoted] PATH...

Every line of every file under PATH that starts with "ts=" must be a record:
it must parse, begin with ts and level, hold each key once, and with
--quoted have every value quoted.  Each failure is printed with its file and
line; the exit status is 1 if there was one.
"""
import os
import sys

SIMPLE = {ord('"'): b'"', ord('\\'): b'\\', ord('n'): b'\n', ord('r'): b'\r', ord('t'): b'\t',
          ord('a'): b'\a', ord('b'): b'\b', ord('f'): b'\f', ord('v'): b'\v'}
HEX = b'0123456789abcdefABCDEF'


class Bad(Exception):
    pass


def parse(line):
    """The pairs of one record, as (key, value, quoted) with value decoded."""
    pairs, i, n = [], 0, len(line)
    while i < n:
        if line[i] == 0x20:
            i += 1
            continue
        k = i
        while i < n and line[i] > 0x20 and line[i] not in b'="':
            i += 1
        if i == k:
            raise Bad('no key at byte %d' % i)
        key = line[k:i].decode('utf-8', 'replace')
        if i == n or line[i] == 0x20:
            pairs.append((key, b'', False))
            continue
        if line[i] != ord('='):
            raise Bad('%r at byte %d after key %s' % (chr(line[i]), i, key))
        i += 1
        if i < n and line[i] == ord('"'):
            i += 1
            val = bytearray()
            while True:
                if i == n:
                    raise Bad('value of %s is not closed' % key)
                c = line[i]
                if c == ord('"'):
                    i += 1
                    break
                if c < 0x20 or c == 0x7f:
                    raise Bad('raw control byte 0x%02x in the value of %s' % (c, key))
                if c != ord('\\'):
                    val.append(c)
                    i += 1
                    continue
                if i + 1 == n:
                    raise Bad('value of %s ends in a backslash' % key)
                e = line[i + 1]
                if e in SIMPLE:
                    val += SIMPLE[e]
                    i += 2
                    continue
                width = {ord('x'): 2, ord('u'): 4, ord('U'): 8}.get(e)
                digits = line[i + 2:i + 2 + width] if width else b''
                if not width or len(digits) != width or any(d not in HEX for d in digits):
                    raise Bad('bad escape \\%s in the value of %s' % (chr(e), key))
                code = int(digits, 16)
                val += bytes([code]) if e == ord('x') else chr(code).encode('utf-8')
                i += 2 + width
            if i < n and line[i] != 0x20:
                raise Bad('%r right after the quoted value of %s' % (chr(line[i]), key))
            pairs.append((key, bytes(val), True))
        else:
            v = i
            while i < n and line[i] > 0x20 and line[i] not in b'="' and line[i] != 0x7f:
                i += 1
            if i < n and line[i] != 0x20:
                raise Bad('%r in the bare value of %s' % (chr(line[i]), key))
            pairs.append((key, line[v:i], False))
    return pairs


def check(line, quoted):
    for c in line:
        if c < 0x20 and c != 0x09 or c == 0x7f:
            raise Bad('raw control byte 0x%02x' % c)
    pairs = parse(line)
    keys = [k for k, _, _ in pairs]
    if keys[:2] != ['ts', 'level']:
        raise Bad('does not begin with ts and level')
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise Bad('key %s more than once' % ', '.join(sorted(dup)))
    if quoted:
        bare = [k for k, _, q in pairs if not q]
        if bare:
            raise Bad('value of %s not quoted' % ', '.join(bare))
    return pairs


SKIP_DIRS = {'wal', 'data', 'quarantine', '.json'}   # a data directory's own files; captured JSON
SKIP_EXT = ('.wal', '.part', '.lp', '.prom', '.json', '.jsonl', '.1', '.5')


def files(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
                for name in names:
                    # another program's log (foreign-*) is not walctl's to check
                    if not name.endswith(SKIP_EXT) and not name.startswith('foreign-'):
                        yield os.path.join(root, name)
        else:
            yield p


def main(argv):
    quoted = '--quoted' in argv
    bad = records = 0
    for path in files(a for a in argv if a != '--quoted'):
        try:
            if not os.path.isfile(path) or os.path.getsize(path) > (32 << 20):
                continue
            with open(path, 'rb') as f:
                data = f.read()
        except OSError:
            continue
        for no, line in enumerate(data.split(b'\n'), 1):
            if not line.startswith(b'ts='):
                continue
            records += 1
            try:
                check(line, quoted)
            except Bad as e:
                bad += 1
                print('%s:%d: %s: %s' % (path, no, e, line[:300].decode('utf-8', 'replace')))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
