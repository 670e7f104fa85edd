#!/usr/bin/python3
"""jsoncheck.py - validate the JSON walctl printed during a test.

    jsoncheck.py SCHEMA_DIR CAPTURE_DIR

CAPTURE_DIR holds what tests/tools/walctl-json kept: NAME.out (standard
output), NAME.args (the command line) and NAME.cut when the reader left
before the end.  Every output must be strict JSON: valid UTF-8, no
duplicate keys, no NaN or Infinity, no lone surrogates; either one
document or one document per line (jsonl).  Every document names its
schema ("schema": "walctl-NAME/V") and validates against
SCHEMA_DIR/walctl-NAME.schema.json, which names the version V it describes
(its "schema" member is a const).  verify
given several WALs prints an array of documents.  A cut output is checked
line by line up to its last complete line.

Strictness covers every byte.  The schema check covers every document of
an output up to SAMPLE of them; past that, the first and last SAMPLE/2 and
the first of every kind (source, type, encoding).  Within a document, an
array longer than SAMPLE (a dump's entries) is cut the same way, and one
within its items (an entry's points) to its first and last INNER/2: the
tests dump WALs of millions of points, which the same code prints.
"""
import json
import os
import re
import sys

SAMPLE = 20
INNER = 4

try:
    import jsonschema
except ImportError:
    print("jsoncheck.py: python3-jsonschema is not installed (scripts/deps.sh test installs it)")
    sys.exit(2)


class Bad(Exception):
    pass


def no_dups(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise Bad("duplicate key in object: %r" % sorted(k for k in keys if keys.count(k) > 1)[0])
    return dict(pairs)


def no_constant(name):
    raise Bad("%s is not JSON" % name)


def no_surrogates(x):
    if isinstance(x, str):
        x.encode("utf-8")  # a lone surrogate (\ud800) raises
    elif isinstance(x, list):
        for v in x:
            no_surrogates(v)
    elif isinstance(x, dict):
        for k, v in x.items():
            no_surrogates(k)
            no_surrogates(v)


SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def strict(text):
    doc = json.loads(text, object_pairs_hook=no_dups, parse_constant=no_constant)
    if SURROGATE.search(text):  # a pair is fine, a lone one is not
        try:
            no_surrogates(doc)
        except UnicodeEncodeError as e:
            raise Bad("lone surrogate in a string: %s" % e)
    return doc


def kind(x):
    if not isinstance(x, dict):
        return None
    return tuple(str(x.get(k)) for k in ("source", "type", "encoding"))


def wanted(i, n, x, seen, cap=SAMPLE):
    """Whether item I of N (X) is in the sample; SEEN: the kinds met."""
    k = kind(x)
    new = k is not None and k not in seen
    seen.add(k)
    return n <= cap or i < cap // 2 or i >= n - cap // 2 or new


def sample(x, depth=0):
    """X with every long array cut to the items wanted() keeps."""
    if isinstance(x, list):
        seen = set()
        cap = SAMPLE if depth == 0 else INNER
        return [sample(v, depth + 1) for i, v in enumerate(x) if wanted(i, len(x), v, seen, cap)]
    if isinstance(x, dict):
        return {k: sample(v, depth) for k, v in x.items()}
    return x


class Schemas:
    def __init__(self, d):
        self.dir = os.path.abspath(d)
        self.validators = {}

    def validator(self, name):
        if name not in self.validators:
            path = os.path.join(self.dir, name + ".schema.json")
            if not os.path.exists(path):
                raise Bad("no schema file %s" % path)
            with open(path, encoding="utf-8") as f:
                schema = strict(f.read())
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            resolver = jsonschema.RefResolver("file://" + path, schema)
            self.validators[name] = (schema, cls(schema, resolver=resolver))
        return self.validators[name]

    def check(self, doc):
        if isinstance(doc, list):  # verify of several WALs
            if not doc:
                raise Bad("an empty array")
            for d in doc:
                self.check(d)
            return
        if not isinstance(doc, dict) or not isinstance(doc.get("schema"), str):
            raise Bad("a document without a \"schema\" member")
        name = doc["schema"].partition("/")[0]
        _, v = self.validator(name)
        errors = sorted(v.iter_errors(sample(doc)), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            raise Bad("%s at /%s: %s" % (doc["schema"], "/".join(map(str, e.path)), e.message))


def check_output(schemas, data, cut):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Bad("not valid UTF-8: %s" % e)
    if not text.strip():
        return 0
    if not cut:
        try:
            doc = strict(text)
        except ValueError:
            doc = None
        if doc is not None:
            schemas.check(doc)
            return 1
    lines = text.split("\n")
    if cut:
        lines = lines[:-1]  # the last line may be unfinished
    elif lines[-1] != "":
        raise Bad("the last line does not end in a newline")
    n = 0
    seen = set()
    for i, line in enumerate(lines):
        if not line:
            continue
        try:
            doc = strict(line)
            if wanted(i, len(lines), doc, seen):
                schemas.check(doc)
        except (ValueError, Bad) as e:
            raise Bad("line %d: %s" % (i + 1, e))
        n += 1
    return n


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().split("\n\n")[1])
        return 2
    schemas = Schemas(sys.argv[1])
    cap = sys.argv[2]
    bad = 0
    for name in sorted(os.listdir(cap)):
        if not name.endswith(".out"):
            continue
        base = os.path.join(cap, name[:-4])
        with open(base + ".args", encoding="utf-8", errors="replace") as f:
            args = f.read().strip()
        with open(base + ".out", "rb") as f:
            data = f.read()
        try:
            check_output(schemas, data, os.path.exists(base + ".cut"))
        except (ValueError, Bad) as e:
            print("jsoncheck: walctl %s: %s" % (args, e))
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
