#!/usr/bin/env python3
"""crashsim.py - build the state a power cut could leave, from a journal.

    crashsim.py --journal J --out DIR --seed N [--pre SNAPSHOT --inodes FILE]
                [--upto K] [--keep-all] [--keep-all-out DIR2]

The journal comes from tests/tools/crashsim.c (LD_PRELOAD), which records
every change a process made below one directory, up to the instant it was
killed.  SNAPSHOT is a copy of that directory taken before the process ran
(absent: it did not exist), and FILE lists 'INODE RELPATH' for each file in
it as the process saw it (find DIR -type f -printf '%i %P\\n').

The model of a power cut, after SQLite's src/test6.c:

  - a file's data is what it was at its last fsync or fdatasync; every write
    after that is, page by page (4 KiB), kept, dropped, zeroed or filled
    with garbage, at random; a truncation after it is kept or not;
  - a create, rename, unlink or mkdir in a directory is kept only if an
    fsync of that directory followed it; otherwise it is undone.

--upto K takes the first K records only: with several processes journaling
into one file, the power failing at that instant.  --keep-all keeps every
change, synced or not: what the processes had written by then, as they saw it
(what a process printed, say, before the power failed); --keep-all-out
DIR2 writes that state too, beside the power cut's in DIR.

The same journal and seed always give the same state.  Prints the number of
changes it took from the journal.
"""

import argparse
import os
import random
import sys

PAGE = 4096


def parse(path, limit=None):
    ops = []
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    while i < len(data) and (limit is None or len(ops) < limit):
        j = data.index(b"\n", i)
        words = data[i:j].decode().split(" ")
        i = j + 1
        op = words[0]
        if op == "WRITE":
            n = int(words[3])
            ops.append(("WRITE", int(words[1]), int(words[2]), data[i:i + n]))
            i += n
        elif op in ("CREATE", "UNLINK"):
            ops.append((op, int(words[1]), words[2]))
        elif op == "RENAME":
            ops.append((op, int(words[1]), words[2], words[3]))
        elif op == "TRUNC":
            ops.append((op, int(words[1]), int(words[2])))
        elif op == "SYNC":
            ops.append((op, int(words[1])))
        elif op in ("DIRSYNC", "MKDIR"):
            ops.append((op, words[1]))
        else:
            sys.exit(f"crashsim.py: bad journal record '{op}'")
    return ops


def parent(rel):
    d = os.path.dirname(rel)
    return d if d else "."


def write_at(buf, off, data):
    if len(buf) < off:
        buf.extend(b"\0" * (off - len(buf)))
    buf[off:off + len(data)] = data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--journal", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--pre")
    ap.add_argument("--inodes")
    ap.add_argument("--upto", type=int)
    ap.add_argument("--keep-all", action="store_true")
    ap.add_argument("--keep-all-out")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    ops = parse(a.journal, a.upto)
    total = len(ops)

    # the namespace and contents before the process ran
    names = {}  # relpath -> inode
    dirs = {"."}  # the root: made durable by the process that made it, or there before
    content = {}  # inode -> bytes as of the last sync
    if a.pre and os.path.isdir(a.pre):
        for d, subdirs, _ in os.walk(a.pre):
            for s in subdirs:
                dirs.add(os.path.relpath(os.path.join(d, s), a.pre))
        with open(a.inodes) as f:
            for line in f:
                ino, rel = line.rstrip("\n").split(" ", 1)
                names[rel] = int(ino)
                with open(os.path.join(a.pre, rel), "rb") as g:
                    content[int(ino)] = g.read()

    # A file is its inode and the generation of that inode: a number freed by
    # an unlink is soon reused by a create.  Every op below names a file.
    gen = {}

    def f(ino):
        return (ino, gen.get(ino, 0))

    names = {rel: f(ino) for rel, ino in names.items()}
    content = {f(ino): c for ino, c in content.items()}
    files = []
    for op in ops:
        if op[0] == "CREATE":
            gen[op[1]] = gen.get(op[1], 0) + 1
        files.append(f(op[1]) if op[0] in ("CREATE", "WRITE", "TRUNC", "SYNC", "RENAME", "UNLINK") else None)

    names0, dirs0 = names, dirs

    def build(out, keep_all):
        # data: what each file holds at its last sync, and what came after
        durable = {k: bytearray(c) for k, c in content.items()}
        current = {k: bytearray(c) for k, c in content.items()}
        pending = {}
        for op, k in zip(ops, files):
            if op[0] == "CREATE":
                current[k] = bytearray()
                durable[k] = bytearray()
            elif op[0] == "WRITE":
                write_at(current.setdefault(k, bytearray()), op[2], op[3])
                pending.setdefault(k, []).append(op)
            elif op[0] == "TRUNC":
                del current.setdefault(k, bytearray())[op[2]:]
                pending.setdefault(k, []).append(op)
            elif op[0] == "SYNC":
                durable[k] = bytearray(current.get(k, b""))
                pending[k] = []
        crashed = {}
        if keep_all:
            durable, pending = current, {}
        for k, base in durable.items():
            buf = bytearray(base)
            for op in pending.get(k, []):
                if op[0] == "TRUNC":
                    if rng.random() < 0.5:
                        del buf[op[2]:]
                    continue
                off, data = op[2], op[3]
                for p in range(0, len(data), PAGE):
                    piece = data[p:p + PAGE]
                    r = rng.random()
                    if r < 0.5:
                        write_at(buf, off + p, piece)
                    elif r < 0.75:
                        continue  # dropped
                    elif r < 0.875:
                        write_at(buf, off + p, b"\0" * len(piece))
                    else:
                        write_at(buf, off + p, rng.randbytes(len(piece)))
            crashed[k] = buf

        # the namespace: a change is kept if its directory was synced after it
        names = dict(names0)
        dirs = set(dirs0)
        last_dirsync = {}
        for i, op in enumerate(ops):
            if op[0] == "DIRSYNC":
                last_dirsync[op[1]] = i

        def kept(i, d):
            return keep_all or last_dirsync.get(d, -1) > i

        for i, (op, k) in enumerate(zip(ops, files)):
            if op[0] == "MKDIR" and kept(i, parent(op[1])):
                dirs.add(op[1])
            elif op[0] == "CREATE" and kept(i, parent(op[2])):
                names[op[2]] = k
            elif op[0] == "UNLINK" and kept(i, parent(op[2])):
                names.pop(op[2], None)
            elif op[0] == "RENAME":
                src, dst = op[2], op[3]
                if kept(i, parent(src)):
                    names.pop(src, None)
                if kept(i, parent(dst)):
                    names[dst] = k

        os.makedirs(out, exist_ok=True)
        for d in sorted(dirs):
            os.makedirs(os.path.join(out, d), exist_ok=True)
        for rel, k in names.items():
            if parent(rel) not in dirs:
                continue  # its directory did not survive
            with open(os.path.join(out, rel), "wb") as w:
                w.write(crashed.get(k, content.get(k, b"")))

    build(a.out, a.keep_all)
    if a.keep_all_out:
        build(a.keep_all_out, True)
    print(total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
