#!/usr/bin/env python3
"""influx_rt.py - the InfluxDB side of tests/cli/influxdb.bats.

  influx_rt.py gen SEED N              N line-protocol points on stdout
  influx_rt.py export PORT DB...       the databases, as influx_inspect export
  influx_rt.py select PORT DB          every point of DB, one JSON line per series

gen writes points that exercise what a round trip can get wrong: names with
commas, spaces and equals signs, non-ASCII text, string fields with quotes and
backslashes, every field type, integers at the ends of int64, floats that
need all 17 digits, and timestamps that use every nanosecond digit.

Debian's influxdb package has no influx_inspect, so export asks the server
with the influx client (SELECT ... GROUP BY *, SHOW FIELD KEYS for the field
types) and writes what `influx_inspect export` writes: a DDL section with
CREATE DATABASE ... WITH NAME autogen, then a DML section of
CONTEXT-DATABASE / CONTEXT-RETENTION-POLICY lines and line protocol.

select prints a database's points as the influx client returns them at
nanosecond precision, so that two databases can be compared with diff.
"""
import json
import random
import subprocess
import sys


def influx(port, db, query):
    args = ["influx", "-host", "127.0.0.1", "-port", str(port), "-precision", "ns",
            "-format", "json", "-execute", query]
    if db is not None:
        args[1:1] = ["-database", db]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    doc = json.loads(out)
    for r in doc.get("results", []):
        if "error" in r:
            sys.exit("influx_rt.py: %s: %s" % (query, r["error"]))
    return doc


def series(port, db, query):
    for r in influx(port, db, query).get("results", []):
        yield from r.get("series", [])


def esc(s, chars):
    for c in chars:
        s = s.replace(c, "\\" + c)
    return s


def gen(seed, n):
    rnd = random.Random(seed)
    names = ["cpu", "disk io", "net,if", "température"]
    tagvals = ["a", "b c", "d,e", "f=g", "日本"]
    base = 1_700_000_000_000_000_000
    for i in range(n):
        m = names[i % len(names)]
        tags = {"host": tagvals[rnd.randrange(len(tagvals))], "k=ey": str(i % 3)}
        fields = {}
        if rnd.random() < 0.8:
            fields["usage idle"] = rnd.choice([rnd.uniform(-1e6, 1e6), rnd.random() / 3, 2.0, 1e-300])
        if rnd.random() < 0.5:
            fields["count"] = rnd.choice([rnd.randrange(-2**63, 2**63), -2**63, 2**63 - 1, 0])
        if rnd.random() < 0.4:
            fields["msg"] = rnd.choice(['say "hi"', "back\\slash", "", "a,b=c d", "ünï"])
        if rnd.random() < 0.3 or not fields:
            fields["ok"] = rnd.random() < 0.5
        line = esc(m, ", ")
        for k in sorted(tags):
            line += "," + esc(k, ",= ") + "=" + esc(tags[k], ",= ")
        parts = []
        for k, v in fields.items():
            parts.append(esc(k, ",= ") + "=" + value(v))
        print(line + " " + ",".join(parts) + " " + str(base + i * 1_000_003 + rnd.randrange(1000)))


def value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return "%di" % v
    if isinstance(v, float):
        return repr(v)
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def export(port, dbs):
    print("# INFLUXDB EXPORT: written by tests/tools/influx_rt.py with the influx client")
    print("# DDL")
    for db in dbs:
        print("CREATE DATABASE %s WITH NAME autogen" % db)
    print()
    print("# DML")
    for db in dbs:
        print("# CONTEXT-DATABASE:%s" % db)
        print("# CONTEXT-RETENTION-POLICY:autogen")
        types = {}
        for s in series(port, db, "SHOW FIELD KEYS"):
            types[s["name"]] = dict(s["values"])
        for s in series(port, db, "SELECT * FROM /.*/ GROUP BY *"):
            key = esc(s["name"], ", ")
            for k in sorted(s.get("tags", {})):
                if s["tags"][k] != "":
                    key += "," + esc(k, ",= ") + "=" + esc(s["tags"][k], ",= ")
            cols = s["columns"]
            for row in s["values"]:
                fields = []
                for c, v in zip(cols[1:], row[1:]):
                    if v is None:
                        continue
                    t = types[s["name"]][c]
                    if t == "integer":
                        v = int(v)
                    elif t == "float":
                        v = float(v)
                    fields.append(esc(c, ",= ") + "=" + value(v))
                print(key + " " + ",".join(fields) + " " + str(row[0]))


def select(port, db):
    for s in series(port, db, "SELECT * FROM /.*/ GROUP BY *"):
        print(json.dumps(s, sort_keys=True, ensure_ascii=False))


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "gen":
        gen(int(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "export":
        export(int(sys.argv[2]), sys.argv[3:])
    elif len(sys.argv) == 4 and sys.argv[1] == "select":
        select(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
