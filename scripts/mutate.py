#!/usr/bin/env python3
"""mutate.py - prove that the test suite catches what it claims to catch.

    scripts/mutate.py [--list FILE] [--only REGEX] [--no-baseline | --tested] [-j N] [--keep]

Each mutation in tests/mutations.txt is one deliberate breakage of the code
(a literal text replaced in one file) and the tests that must notice it.
The files of the working tree that git tracks (or would: untracked files
not ignored) are copied to N scratch directories (-j, default one per core)
and built there; the selected tests run once on the unmutated copy (they
must pass, or every "caught" below would mean nothing), then once per
mutation, N mutations at a time, each in a scratch tree of its own where only
the binaries its tests run are rebuilt.  With --tested (the whole suite has
just passed on this tree, as in .ci/run) the run on the unmutated copy is
limited to the selections that set an env of their own.
A mutation is caught when one of its tests fails (or runs past its time
limit); missed when they all pass.  Ends with "N caught, M missed" and
exits 1 when anything was missed or a mutation no longer applies.

The list's format, one stanza per mutation:

    == what the mutation breaks (one line of intent)
    file: lib/storage.c
    from: if (fsync(w->fd) != 0) {
    to:   if (0) {
    test: tests/cli/durability.bats :: partition
    env:  DRILL_TRIALS=10

'from' must occur exactly once in the file (\\n, \\t and \\\\ are escapes).
'test' may repeat; its forms are tests/cli/X.bats [:: bats --filter REGEX],
unit/test_X (a cmocka binary), replay/X (a fuzz corpus replay), or
tests/conformance.sh.  Tests run in the order given; the first failure ends
the mutation's run.
"""

import argparse
import concurrent.futures
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 600
BUILD = os.path.join("build", "default")  # where make puts a scratch tree's binaries
ESC = {"n": "\n", "t": "\t", "\\": "\\"}


def parse(path):
    muts, cur = [], None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("== "):
                cur = {"name": line[3:].strip(), "tests": [], "env": {}, "line": n}
                muts.append(cur)
                continue
            if not line.strip() or line.startswith("#"):
                continue
            m = re.match(r"^(file|from|to|test|env):\s?(.*)$", line)
            if not m or cur is None:
                sys.exit(f"mutate: {path}:{n}: cannot read '{line}'")
            key, val = m.group(1), m.group(2)
            if key in ("from", "to"):
                val = val.strip() if key == "to" else val.lstrip()
                val = re.sub(r"\\(.)", lambda m: ESC.get(m.group(1), "\\" + m.group(1)), val)
                cur[key] = val
            elif key == "test":
                cur["tests"].append(val.strip())
            elif key == "env":
                k, _, v = val.strip().partition("=")
                cur["env"][k] = v
            else:
                cur[key] = val.strip()
    for m in muts:
        for k in ("file", "from", "to"):
            if k not in m:
                sys.exit(f"mutate: {path}:{m['line']}: mutation '{m['name']}' has no '{k}'")
        if not m["tests"]:
            sys.exit(f"mutate: {path}:{m['line']}: mutation '{m['name']}' names no test")
    return muts


def command(sel, build):
    """The command line that runs one test selector."""
    if "::" in sel:
        f, _, flt = sel.partition("::")
        return ["bats", "--tap", "--filter", flt.strip(), f.strip()]
    if sel.endswith(".bats"):
        return ["bats", "--tap", sel]
    if sel.startswith("unit/"):
        return ["sh", "tests/tap-run", f"{build}/tests/unit/{sel[5:]}"]
    if sel.startswith("replay/"):
        return ["sh", "tests/tap-run", f"{build}/tests/fuzz/replay_{sel[7:]}"]
    return ["sh", sel]


def run_test(scratch, build, sel, env):
    e = dict(os.environ)
    e.update(env)
    e["WALCTL"] = f"{build}/walctl"
    e["BUILD"] = build
    t0 = time.time()
    # its own process group: a timeout stops every process the test started
    p = subprocess.Popen(command(sel, build), cwd=scratch, env=e, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        raw, _ = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return "timeout", "", time.time() - t0
    out = raw.decode("utf-8", "replace")
    # a test file that ran nothing proves nothing
    ran = re.search(r"^(ok|not ok) ", out, re.M) is not None
    if p.returncode == 0 and not ran:
        return "empty", out, time.time() - t0
    return ("pass" if p.returncode == 0 else "fail"), out, time.time() - t0


def check(muts):
    """The list against the tree, without building: 1 when a 'from' does not
    occur exactly once or a test selection names no test."""
    bad = 0
    for m in muts:
        with open(os.path.join(ROOT, m["file"]), encoding="utf-8") as f:
            n = f.read().count(m["from"])
        if n != 1:
            print(f"STALE   {m['name']}: 'from' occurs {n} times in {m['file']}")
            bad += 1
        for sel in m["tests"]:
            path, _, flt = (s.strip() for s in sel.partition("::"))
            if path.startswith("tests/"):
                if not os.path.exists(os.path.join(ROOT, path)):
                    print(f"NOTEST  {m['name']}: no file {path}")
                    bad += 1
                elif flt:
                    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
                        names = re.findall(r'^@test "(.*)" \{', f.read(), re.M)
                    if not any(re.search(flt, t) for t in names):
                        print(f"NOTEST  {m['name']}: no test of {path} matches '{flt}'")
                        bad += 1
            elif not os.path.exists(os.path.join(ROOT, "tests", *(
                    ["unit", path[5:] + ".c"] if path.startswith("unit/") else ["fuzz", "fuzz_" + path[7:] + ".c"]))):
                print(f"NOTEST  {m['name']}: no source for {path}")
                bad += 1
    print(f"{len(muts)} mutations, {bad} problems")
    return 1 if bad else 0


def targets(m):
    """The make targets a mutation's tests run: walctl and the test tools
    for command-line tests, one binary for a unit test or a replay."""
    t = []
    for sel in m["tests"]:
        if sel.startswith("unit/"):
            t.append(os.path.join(BUILD, "tests", "unit", sel[5:]))
        elif sel.startswith("replay/"):
            t.append(os.path.join(BUILD, "tests", "fuzz", f"replay_{sel[7:]}"))
        else:
            t.append("cli-programs")
    return sorted(set(t))


def build_tree(scratch, what=("test-programs",)):
    p = subprocess.run(["make", "-s", "-j2", *what], cwd=scratch, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return p.returncode == 0, p.stdout.decode("utf-8", "replace")


def run_mutation(scratch, m, label, verbose):
    """Apply one mutation in its scratch tree, build, run its tests, put the
    file back.  Returns (kind, line): kind is caught, missed or broken."""
    build = os.path.join(scratch, BUILD)
    path = os.path.join(scratch, m["file"])
    with open(path, encoding="utf-8") as f:
        orig = f.read()
    n = orig.count(m["from"])
    if n != 1:
        return "broken", f"STALE   {label}: 'from' occurs {n} times in {m['file']}"
    with open(path, "w", encoding="utf-8") as f:
        f.write(orig.replace(m["from"], m["to"]))
    try:
        ok, out = build_tree(scratch, targets(m))
        if not ok:
            return "broken", f"NOBUILD {label}\n{out[-2000:]}"
        t0, by, why = time.time(), None, ""
        for sel in m["tests"]:
            res, out, _ = run_test(scratch, build, sel, m["env"])
            if res in ("fail", "timeout"):
                by, why = sel, out
                if res == "timeout":
                    by += " (timed out)"
                break
        secs = time.time() - t0
        if not by:
            return "missed", f"MISSED  {label}  ({', '.join(m['tests'])} all pass, {secs:.0f} s)"
        line = f"caught  {label}  by {by}  ({secs:.0f} s)"
        if verbose:
            line += "\n" + "\n".join("        " + l for l in why.splitlines()
                                     if l.startswith("not ok") or l.startswith("#"))[-3000:]
        return "caught", line
    finally:
        with open(path, "w", encoding="utf-8") as f:
            f.write(orig)


def main():
    ap = argparse.ArgumentParser(description="run the mutation check of the test suite")
    ap.add_argument("--list", default=os.path.join(ROOT, "tests", "mutations.txt"))
    ap.add_argument("--only", help="run only mutations whose intent matches this regex")
    ap.add_argument("--no-baseline", action="store_true", help="skip the run on the unmutated tree")
    ap.add_argument("--tested", action="store_true",
                    help="the whole test suite has just passed on this tree: the baseline runs only "
                         "the test selections that set an env of their own")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                    help="mutations checked at a time, each in a scratch tree of its own")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directories")
    ap.add_argument("-v", "--verbose", action="store_true", help="show the output of the test that caught")
    ap.add_argument("--check", action="store_true",
                    help="only check that every mutation applies once and names tests that exist")
    a = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows in CI logs as it goes

    muts = parse(a.list)
    if a.check:
        sys.exit(check(muts))
    if a.only:
        muts = [m for m in muts if re.search(a.only, m["name"])]
        if not muts:
            sys.exit(f"mutate: no mutation matches '{a.only}'")
    jobs = max(1, min(a.jobs, len(muts)))

    # The lp conformance corpus lives beside the checkout, not in it.
    corpus = os.environ.get("WALCTL_LP_CORPUS",
                            os.path.join(os.path.dirname(ROOT), "shared", "conformance", "line-protocol"))
    os.environ["WALCTL_LP_CORPUS"] = corpus

    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           stdout=subprocess.PIPE, check=True).stdout.decode().split("\0")
    scratches = []
    status = 0
    try:
        t0 = time.time()
        first = tempfile.mkdtemp(prefix="walctl-mutate-")
        scratches.append(first)
        for f in filter(None, files):
            src = os.path.join(ROOT, f)
            if not os.path.exists(src):
                continue
            dst = os.path.join(first, f)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst)
        ok, out = build_tree(first)
        if not ok:
            print(out)
            sys.exit("mutate: the unmutated tree does not build")
        # the others are copies of the built one (times kept: make finds them up to date)
        for _ in range(jobs - 1):
            scratch = tempfile.mkdtemp(prefix="walctl-mutate-")
            scratches.append(scratch)
            shutil.copytree(first, scratch, symlinks=True, dirs_exist_ok=True)
        print(f"{len(muts)} mutations, {jobs} at a time; {jobs} scratch trees built ({time.time() - t0:.0f} s)")

        free = queue.Queue()
        for scratch in scratches:
            free.put(scratch)

        def on_free_tree(fn, *args):
            scratch = free.get()
            try:
                return fn(scratch, *args)
            finally:
                free.put(scratch)

        if not a.no_baseline:
            seen = []
            for m in muts:
                if a.tested and not m["env"]:
                    continue  # passed in the test suite's run
                for sel in m["tests"]:
                    key = (sel, tuple(sorted(m["env"].items())))
                    if key not in seen:
                        seen.append(key)
            t0 = time.time()

            def baseline(scratch, sel, env):
                res, out, _ = run_test(scratch, os.path.join(scratch, BUILD), sel, dict(env))
                return sel, res, out

            with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
                for sel, res, out in ex.map(lambda k: on_free_tree(baseline, *k), seen):
                    if res != "pass":
                        print(out[-4000:])
                        sys.exit(f"mutate: baseline: '{sel}' does not pass on the unmutated tree ({res})")
            print(f"baseline: {len(seen)} test selections pass on the unmutated tree ({time.time() - t0:.0f} s)"
                  + (" (the others passed in the test suite's run)" if a.tested else ""))

        counts = {"caught": 0, "missed": 0, "broken": 0}
        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
            futs = [ex.submit(on_free_tree, run_mutation, m, f"[{i}/{len(muts)}] {m['name']}", a.verbose)
                    for i, m in enumerate(muts, 1)]
            for fut in concurrent.futures.as_completed(futs):
                kind, line = fut.result()
                counts[kind] += 1
                print(line)
        print(f"{counts['caught']} caught, {counts['missed']} missed"
              + (f", {counts['broken']} no longer apply" if counts["broken"] else "")
              + f" ({time.time() - t0:.0f} s)")
        status = 1 if counts["missed"] or counts["broken"] else 0
    finally:
        for scratch in scratches:
            if a.keep:
                print(f"scratch tree kept in {scratch}")
            else:
                shutil.rmtree(scratch, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
