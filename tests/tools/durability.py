#!/usr/bin/env python3
"""durability.py - check walctl's durability promises from an strace log.

    durability.py TRACE DATADIR [--acks FRAMES.jsonl] [--exit-ok CODES]

TRACE comes from

    strace -f -qq -y -s 64 -o TRACE -e trace=$TRACE_SET walctl ...

(TRACE_SET: see tests/cli/durability.bats).  Only files
and directories inside DATADIR are judged.  The rules, each broken by a
mutation in tests/mutations.txt:

 1. A file walctl wrote is renamed only after a successful fsync or
    fdatasync of that file that began after its last write ended.
 2. Every create, rename, unlink, mkdir or rmdir in a directory is followed
    by a successful fsync of that directory before walctl exits with one of
    the success codes (default 0 and 1).  The lock file is exempt: it holds
    no data.
 3. With --acks: every "ack LSN POINTS" written to stdout names an LSN whose
    frame (segment, offset and length, from FRAMES.jsonl, the output of
    'walctl dump WALDIR --format jsonl') was covered by a successful sync of
    its segment that ended before the ack was written: the sync began after
    the writes of those bytes ended.  The segment's own creation must by
    then be made durable by an fsync of its directory.
 4. A WAL segment is removed only once the CHECKPOINT that covers it is
    durable: after a successful sync of the segment holding the last
    CHECKPOINT frame written before the removal, begun after that frame was
    written.  A process that removes segments without having written a
    CHECKPOINT (compact, trusting one it read) must have synced a segment
    first, or the checkpoint it read may exist only in the page cache
    (--removals-by-request: the removals were asked for, as by truncate
    --after, and need no checkpoint).
 5. A file truncated (truncate or ftruncate) is synced after the truncation
    before a successful exit, unless it was removed since.  The lock file is
    exempt.
 6. A partition is removed only once the WAL frames that make it redundant
    are durable: every segment the process opened before the removal (and
    did not remove) was synced after its last write and before the removal.

Time is the order of lines in the trace: strace prints a call's start when
it enters and its end when it returns, so "A ended before B began" is "A's
end line comes before B's start line".  Prints one line per violation and
exits 1 if there is any; prints a summary and exits 0 otherwise.
"""

import json
import os
import re
import sys

CALL = re.compile(r"^(\d+)\s+(\w+)\((.*)$")
RESUMED = re.compile(r"^(\d+)\s+<\.\.\. (\w+) resumed>(.*)$")
RET = re.compile(r"\)\s+=\s+(-?\d+|\?)(?:<([^>]*)>)?(.*)$")
FD = re.compile(r"^(-?\d+|AT_FDCWD)<([^>]*)>")
STR = re.compile(r'"((?:[^"\\]|\\.)*)"')


class Call:
    __slots__ = ("pid", "name", "args", "ret", "retpath", "start", "end")

    def __init__(self, pid, name, args, start):
        self.pid, self.name, self.args, self.start = pid, name, args, start
        self.ret, self.retpath, self.end = None, None, None


def parse(path):
    calls, pending = [], {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for idx, line in enumerate(f):
            line = line.rstrip("\n")
            m = RESUMED.match(line)
            if m:
                pid, name, rest = m.groups()
                c = pending.pop(pid, None)
                if c is None:
                    continue
                finish(c, c.args + rest, idx)
                continue
            m = CALL.match(line)
            if not m:
                continue
            pid, name, rest = m.groups()
            c = Call(pid, name, rest, idx)
            calls.append(c)
            if rest.endswith("<unfinished ...>"):
                c.args = rest[: -len("<unfinished ...>")].rstrip()
                pending[pid] = c
            else:
                finish(c, rest, idx)
    return calls


def finish(c, text, idx):
    m = None
    for m in RET.finditer(text):
        pass
    if m is None:
        c.args, c.end, c.ret = text, idx, None
        return
    c.args = text[: m.start()]
    c.ret = None if m.group(1) == "?" else int(m.group(1))
    c.retpath = m.group(2)
    c.end = idx


def unescape(s):
    return bytes(s, "utf-8").decode("unicode_escape")


def fd_path(c):
    m = FD.match(c.args)
    return os.path.normpath(m.group(2)) if m else None


def strings(c):
    return [unescape(s) for s in STR.findall(c.args)]


def resolve(c, s):
    """A path argument as an absolute path: relative ones against the dirfd
    shown before it, or the working directory."""
    if s.startswith("/"):
        return os.path.normpath(s)
    m = re.search(r"(?:AT_FDCWD|\d+)<([^>]*)>,\s*\"" + re.escape(s), c.args)
    base = m.group(1) if m else os.getcwd()
    return os.path.normpath(os.path.join(base, s))


def is_segment(p, root):
    return os.path.dirname(p) == os.path.join(root, "wal") and re.fullmatch(r"[0-9a-f]{16}\.wal", os.path.basename(p))


def is_partition(p, root):
    return inside(p, os.path.join(root, "data")) and p.endswith(".part")


def frame_type(c):
    """The type byte of the frame header a pwritev writes first."""
    s = STR.search(c.args)
    if not s:
        return None
    b = bytes(s.group(1), "latin-1").decode("unicode_escape").encode("latin-1")
    return b[4] & 0x7F if len(b) >= 40 else None


def inside(p, root):
    return p == root or p.startswith(root + "/")


def main():
    argv = sys.argv[1:]
    if len(argv) < 2:
        sys.exit(__doc__)
    trace, root = argv[0], os.path.normpath(os.path.abspath(argv[1]))
    frames_path, ok_codes, by_request = None, {0, 1}, False
    i = 2
    while i < len(argv):
        if argv[i] == "--acks":
            frames_path = argv[i + 1]
            i += 2
        elif argv[i] == "--removals-by-request":
            by_request = True  # truncate --after: removals no checkpoint justifies
            i += 1
        elif argv[i] == "--exit-ok":
            ok_codes = {int(x) for x in argv[i + 1].split(",")}
            i += 2
        else:
            sys.exit(f"durability.py: unknown argument '{argv[i]}'")

    calls = parse(trace)
    bad = []
    writes = {}  # path -> [(end, offset_end)]
    syncs = {}  # path -> [(start, end)]  successful only
    dirops = []  # (end, dir, what)
    renames = []  # (call, src, dst)
    acks = []  # (start, lsn)
    truncs = []  # (end, path) of every truncation
    last_ckpt = None  # (path, end of the write) of the last CHECKPOINT frame written
    synced_segment = False
    exits = []  # (start, code)
    created = {}  # path -> end of the call that made it appear in its directory
    opened = set()  # segments the process opened, and did not remove

    for c in calls:
        n = c.name
        if n == "truncate" and c.ret == 0:
            p = resolve(c, strings(c)[0])
            if inside(p, root) and os.path.basename(p) != "LOCK":
                truncs.append((c.end, p))
            continue
        if n in ("pwrite64", "pwritev", "pwritev2", "write", "writev", "ftruncate"):
            p = fd_path(c)
            if n == "ftruncate" and p and c.ret == 0 and inside(p, root) and os.path.basename(p) != "LOCK":
                truncs.append((c.end, p))
            if n == "write" and c.args.startswith("1<"):
                s = strings(c)
                m = re.match(r"ack (\d+) (\d+)", s[0]) if s else None
                if m:
                    acks.append((c.start, int(m.group(1))))
                continue
            if p is None or c.ret is None or c.ret < 0 or not inside(p, root):
                continue
            if n in ("pwrite64", "pwritev", "pwritev2"):
                # the offset is the last argument (pwritev2: the one before the flags)
                nums = re.findall(r",\s*(\w+)", c.args)
                off = int(nums[-2] if n == "pwritev2" else nums[-1])
                writes.setdefault(p, []).append((c.end, off + c.ret))
                if n != "pwrite64" and is_segment(p, root) and frame_type(c) == 3:
                    last_ckpt = (p, c.end)
            else:
                writes.setdefault(p, []).append((c.end, float("inf")))
        elif n in ("fsync", "fdatasync"):
            p = fd_path(c)
            if p is not None and c.ret == 0:
                syncs.setdefault(p, []).append((c.start, c.end))
                synced_segment = synced_segment or is_segment(p, root)
        elif n in ("openat", "open", "creat"):
            if c.ret is None or c.ret < 0:
                continue
            p = os.path.normpath(c.retpath) if c.retpath else resolve(c, strings(c)[0])
            if is_segment(p, root):
                opened.add(p)
            if "O_CREAT" not in c.args and n != "creat":
                continue
            if inside(p, root) and os.path.basename(p) != "LOCK":
                dirops.append((c.end, os.path.dirname(p), f"create '{p}'"))
                created[p] = c.end
        elif n in ("rename", "renameat", "renameat2"):
            if c.ret != 0:
                continue
            s = strings(c)
            src, dst = resolve(c, s[0]), resolve(c, s[1])
            if inside(src, root) or inside(dst, root):
                renames.append((c, src, dst))
                # 1. renamed only after a sync of the file that began after its last write
                ws = [w for w, _ in writes.get(src, []) if w < c.start]
                if ws and not any(s > max(ws) and e < c.start for s, e in syncs.get(src, [])):
                    bad.append(f"rule 1: '{src}' renamed to '{dst}' (trace line {c.start + 1}) "
                               f"without a sync after its last write (line {max(ws) + 1})")
                dirops.append((c.end, os.path.dirname(src), f"rename '{src}' to '{dst}'"))
                dirops.append((c.end, os.path.dirname(dst), f"rename '{src}' to '{dst}'"))
                created[dst] = c.end
                writes[dst] = writes.pop(src, [])
                syncs[dst] = syncs.pop(src, [])
        elif n in ("unlink", "unlinkat", "rmdir", "mkdir", "mkdirat"):
            if c.ret != 0:
                continue
            p = resolve(c, strings(c)[0])
            if inside(p, root) and p != root and os.path.basename(p) != "LOCK":
                dirops.append((c.end, os.path.dirname(p), f"{n} '{p}'"))
            if n.startswith("unlink") and is_partition(p, root):
                # 6. removed only once the segments that hold its points are durable
                for seg in sorted(opened):
                    last = max([w for w, _ in writes.get(seg, [])] + [-1])
                    if not any(s > last and e < c.start for s, e in syncs.get(seg, [])):
                        bad.append(f"rule 6: partition '{p}' removed (trace line {c.start + 1}) before "
                                   f"segment '{seg}' was synced")
            if n.startswith("unlink") and is_segment(p, root):
                opened.discard(p)
                # 4. removed only once the covering CHECKPOINT is durable
                if last_ckpt is None:
                    if not synced_segment and not by_request:
                        bad.append(f"rule 4: segment '{p}' removed (trace line {c.start + 1}) "
                                   "before any segment was synced")
                else:
                    cp, wend = last_ckpt
                    if not any(s > wend and e < c.start for s, e in syncs.get(cp, [])):
                        bad.append(f"rule 4: segment '{p}' removed (trace line {c.start + 1}) before the "
                                   f"CHECKPOINT written at line {wend + 1} to '{cp}' was synced")
        elif n == "exit_group":
            m = re.match(r"\s*(\d+)", c.args)
            exits.append((c.start, int(m.group(1)) if m else -1))

    # 2. every directory change made durable before a successful exit
    def settled(d, after, before):
        return any(s > after and e < before for s, e in syncs.get(d, []))

    for start, code in exits:
        if code not in ok_codes:
            continue
        for end, d, what in dirops:
            if end < start and not settled(d, end, start):
                bad.append(f"rule 2: {what} (trace line {end + 1}) is not followed by an fsync of "
                           f"'{d}' before exit {code} (line {start + 1})")

    # 5. truncations synced before a successful exit
    removed = {}
    for c in calls:
        if c.name.startswith("unlink") and c.ret == 0:
            removed.setdefault(resolve(c, strings(c)[0]), []).append(c.end)
    for start, code in exits:
        if code not in ok_codes:
            continue
        for end, p in truncs:
            if end < start and not settled(p, end, start) and \
                    not any(end < r < start for r in removed.get(p, [])):
                bad.append(f"rule 5: '{p}' truncated (trace line {end + 1}) and not synced before exit {code}")

    # 3. acks
    checked = 0
    if frames_path:
        frames = {}
        with open(frames_path, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                frames[r["lsn"]] = r
        waldir = os.path.join(root, "wal")
        for start, lsn in acks:
            r = frames.get(lsn)
            if r is None:
                bad.append(f"rule 3: ack of LSN {lsn} (line {start + 1}), which is in no segment")
                continue
            seg = os.path.join(waldir, r["segment"])
            need = r["offset"] + 40 + r["length"]
            covered = 0
            for s, e in syncs.get(seg, []):
                if e < start:
                    covered = max([covered] + [o for w, o in writes.get(seg, []) if w < s])
            if covered < need:
                bad.append(f"rule 3: ack of LSN {lsn} (line {start + 1}) before a sync covered "
                           f"'{r['segment']}' up to byte {need} (synced up to {covered})")
            made = created.get(seg)
            if made is not None and not settled(waldir, made, start):
                bad.append(f"rule 3: ack of LSN {lsn} (line {start + 1}) before the creation of "
                           f"'{r['segment']}' was made durable by an fsync of '{waldir}'")
            checked += 1
        if not acks:
            bad.append("rule 3: no ack in the trace")

    for b in bad[:20]:
        print(b)
    if len(bad) > 20:
        print(f"... and {len(bad) - 20} more")
    if bad:
        return 1
    nsync = sum(len(v) for v in syncs.values())
    print(f"durability: {len(renames)} renames, {len(dirops)} directory changes, {nsync} syncs, "
          f"{checked} acks checked; {len(exits)} exits; no violation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
