#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Write line-table fixtures for tests/unit/test_linetable.c.

Run it with the interpreter whose line tables you want (any CPython 3.6+):

    python3.X tests/unit/gen-linetable-fixtures.py -o FILE [--max-bytes N]

It compiles a synthetic source full of awkward line patterns plus the source
of about 30 stdlib modules, walks every code object (recursing into
co_consts) and writes one line per code object:

    MINOR FIRSTLINENO TABLE_HEX NAME OFF:LINE OFF:LINE ...

TABLE_HEX is the raw table as the C struct holds it ("-" when empty):
co_lnotab before 3.10, co_linetable from 3.10 on.  OFF is in the units
linetable__line() takes: bytes before 3.11, 2-byte code units from 3.11.
There is one pair for every instruction (every code unit from 3.11, inline
caches included).  LINE is what the interpreter itself says: from
dis.findlinestarts() before 3.10, from co_lines() from 3.10 on, with -1 for
"no line" (None).  Lines starting with '#' are comments.

--max-bytes keeps the file small for committing: the synthetic code objects
are always kept, the stdlib ones are thinned out evenly until the file fits.
"""
import argparse
import dis
import importlib.util
import os
import sys
import tokenize

MODULES = [
    "argparse", "ast", "asyncio.base_events", "asyncio.tasks", "calendar",
    "collections", "configparser", "csv", "dataclasses", "datetime", "difflib",
    "email.message", "enum", "fractions", "functools", "gettext", "gzip",
    "http.client", "inspect", "ipaddress", "json.decoder", "logging",
    "pathlib", "pickle", "pprint", "random", "shutil", "statistics",
    "string", "subprocess", "tarfile", "textwrap", "threading", "tokenize",
    "traceback", "typing", "unittest.case", "urllib.parse", "zipfile",
]


def synthetic_source():
    """Code that stresses the encodings: big and negative line jumps, long
    instruction runs on one line, wide columns, multi-line expressions, code
    without a line (with/try/finally cleanup) and a huge co_firstlineno."""
    parts = []
    parts.append("import os\n")
    parts.append("def big_gap(a):\n    x = a\n" + "\n" * 300 + "    y = x + 1\n"
                 + "\n" * 70000 + "    return y\n")
    parts.append("def backwards(a, b):\n    return (a +\n            b,\n"
                 "            a *\n        b)\n")
    parts.append("@staticmethod\n@property\ndef decorated(a):\n"
                 "    return [\n        i\n        for i in a\n        if i\n    ]\n")
    long_expr = " + ".join("v%d" % i for i in range(200))
    parts.append("def one_long_line(" + ", ".join("v%d" % i for i in range(200))
                 + "):\n    x = " + long_expr + "\n    return x\n")
    wide = " " * 300
    parts.append("def wide_columns(a):\n    " + "z = (" + wide + "a" + wide
                 + ")\n    return z\n")
    parts.append("def cleanup(path):\n    with open(path) as f:\n"
                 "        try:\n            data = f.read()\n"
                 "        except OSError as e:\n            raise ValueError(e)\n"
                 "        finally:\n            f.close()\n    return data\n")
    parts.append("def loop(n):\n    t = 0\n    for i in range(n):\n"
                 "        while t < i:\n            t += 1\n"
                 + "\n" * 500 + "        t -= 1\n    return t\n")
    parts.append("class Klass:\n    a = 1\n\n    def method(self):\n"
                 "        return lambda q: (q,\n                          self)\n")
    parts.append("async def coro(x):\n    async with x as y:\n"
                 "        async for z in y:\n            await z\n")
    parts.append("def gen(n):\n    yield from range(n)\n    yield (n\n"
                 "           + 1)\n")
    parts.append("\n" * 100000 + "def far_away(a):\n    return a\n")
    return "".join(parts)


def code_objects(co):
    """co and every code object nested in its constants, depth first."""
    out = []
    stack = [co]
    while stack:
        c = stack.pop()
        out.append(c)
        kids = [k for k in c.co_consts if hasattr(k, "co_code")]
        stack.extend(reversed(kids))
    return out


def expected_pairs(co, minor):
    """[(offset, line)] for every instruction, per the interpreter itself."""
    if minor < 10:
        # Bytes; 2-byte wordcode since 3.6.
        starts = sorted(dis.findlinestarts(co))
        pairs = []
        line = co.co_firstlineno
        k = 0
        for off in range(0, len(co.co_code), 2):
            while k < len(starts) and starts[k][0] <= off:
                line = starts[k][1]
                k += 1
            pairs.append((off, line))
        return pairs

    # co_lines(): (start, end, line) in bytes, line None for "no line".
    seen = {}
    order = []
    step = 2
    for start, end, line in co.co_lines():
        ln = -1 if line is None else line
        for b in range(start, end, step):
            off = b // 2 if minor >= 11 else b
            if off not in seen:
                seen[off] = ln
                order.append(off)
    pairs = [(off, seen[off]) for off in order]

    ncode = len(co.co_code)
    covered = len(pairs) * 2
    if covered != ncode:
        sys.stderr.write("warning: %s: co_lines covers %d of %d bytes\n"
                         % (co.co_name, covered, ncode))
    if minor >= 11:
        # Cross-check against co_positions(), one entry per code unit.
        pos = [-1 if p[0] is None else p[0] for p in co.co_positions()]
        if pos != [ln for _, ln in pairs]:
            sys.stderr.write("warning: %s: co_lines and co_positions disagree\n"
                             % co.co_name)
    return pairs


def raw_table(co, minor):
    if minor < 10:
        return co.co_lnotab
    return co.co_linetable


def record(co, minor, prefix):
    name = getattr(co, "co_qualname", co.co_name)
    name = "".join(ch if ch.isalnum() or ch in "._<>:" else "_" for ch in
                   prefix + ":" + name)
    tab = raw_table(co, minor)
    hx = tab.hex() if tab else "-"
    pairs = expected_pairs(co, minor)
    return "%d %d %s %s %s\n" % (minor, co.co_firstlineno, hx, name,
                                 " ".join("%d:%d" % p for p in pairs))


def module_source(name):
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None, None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None, None
    with tokenize.open(spec.origin) as f:
        return spec.origin, f.read()


def thin(records, budget):
    """Keep every k-th record, with the smallest k that fits @budget."""
    total = sum(len(r) for r in records)
    k = 1
    while total > budget and k < len(records):
        k += 1
        total = sum(len(r) for i, r in enumerate(records) if i % k == 0)
    return [r for i, r in enumerate(records) if i % k == 0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", default="-", help="file to write (default stdout)")
    ap.add_argument("--max-bytes", type=int, default=0,
                    help="thin the stdlib records out to fit about this size")
    ap.add_argument("--modules", default=",".join(MODULES),
                    help="comma-separated stdlib modules to compile")
    args = ap.parse_args()

    minor = sys.version_info[1]
    synth = []
    co = compile(synthetic_source(), "<synthetic>", "exec", dont_inherit=True)
    for c in code_objects(co):
        synth.append(record(c, minor, "synthetic"))

    stdlib = []
    used = []
    skipped = []
    for mod in args.modules.split(","):
        path, src = module_source(mod)
        if src is None:
            skipped.append(mod)     # e.g. dataclasses before 3.7
            continue
        co = compile(src, path, "exec", dont_inherit=True)
        for c in code_objects(co):
            stdlib.append(record(c, minor, mod))
        used.append(mod)

    if args.max_bytes:
        stdlib = thin(stdlib, max(args.max_bytes - sum(len(r) for r in synth), 0))

    out = sys.stdout if args.output == "-" else open(args.output, "w")
    out.write("# hangtrace line-table fixtures, generated by "
              "tests/unit/gen-linetable-fixtures.py\n")
    out.write("# python %s (%s)\n" % (sys.version.split()[0], sys.executable))
    out.write("# modules: %s\n" % " ".join(used))
    if skipped:
        out.write("# not in this version: %s\n" % " ".join(skipped))
    out.write("# MINOR FIRSTLINENO TABLE_HEX NAME OFF:LINE ... (%s)\n"
              % ("bytes" if minor < 11 else "code units"))
    for r in synth + stdlib:
        out.write(r)
    if out is not sys.stdout:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
