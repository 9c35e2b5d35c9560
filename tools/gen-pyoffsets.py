#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Generate user/pyoffsets_table.c: CPython 3.6-3.12 structure offsets.

For every CPython 3.6 .. 3.12 installed under $(pyenv root)/versions/3.*, this
compiles offsetof()/sizeof() probes against that version's own headers
(gcc -S -DPy_BUILD_CORE, with the include/ and include/internal/ directories),
reads the constants back out of the assembly, and writes one
`struct py_offsets` row per minor version.  Fields a version does not have are
-1.  Nothing here is hard-coded except *which* C expression gives each field
in which versions (FIELDS below); every number comes from the compiler.

Usage:
    /usr/bin/python3 tools/gen-pyoffsets.py [-o user/pyoffsets_table.c]
        [--pyenv-root DIR] [--cc gcc]
    /usr/bin/python3 tools/gen-pyoffsets.py --probe MINOR INCDIR [INCDIR...]
        (print one row as JSON, for checking other builds' headers, e.g. a
        Debian libpython3.X-dev; MINOR may be 13+ there)

The output only depends on the headers: rerunning the script reproduces the
committed file byte for byte.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

MINORS = range(6, 13)          # rows of the generated table: 3.6 .. 3.12
CANONICAL_CMD = "/usr/bin/python3 tools/gen-pyoffsets.py -o user/pyoffsets_table.c"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = os.path.join(REPO, "user", "pyoffsets.h")

RT = "_PyRuntimeState"
IS = "PyInterpreterState"
TS = "PyThreadState"
GIL = "struct _gil_runtime_state"
FO = "PyFrameObject"
IF = "_PyInterpreterFrame"
CO = "PyCodeObject"
LAST = 99  # "and every later version"

# Field of struct py_offsets -> [(first minor, last minor, C expression)].
# Versions outside every range get -1.  The order must equal the struct's.
FIELDS = [
    ("rt_interpreters_head", [(7, LAST, f"offsetof({RT}, interpreters.head)")]),
    ("rt_finalizing", [(7, 8, f"offsetof({RT}, finalizing)"),
                       (9, LAST, f"offsetof({RT}, _finalizing)")]),
    ("rt_gil", [(7, 11, f"offsetof({RT}, ceval.gil)")]),
    ("rt_tstate_current", [(7, 11, f"offsetof({RT}, gilstate.tstate_current)")]),

    ("interp_next", [(6, LAST, f"offsetof({IS}, next)")]),
    ("interp_tstate_head", [(6, 10, f"offsetof({IS}, tstate_head)"),
                            (11, LAST, f"offsetof({IS}, threads.head)")]),
    ("interp_ceval_gil", [(12, LAST, f"offsetof({IS}, ceval.gil)")]),

    # 3.6 keeps the GIL in statics of ceval.c: no struct in the headers.
    ("gil_size", [(7, LAST, f"sizeof({GIL})")]),
    ("gil_last_holder", [(7, LAST, f"offsetof({GIL}, last_holder)")]),
    ("gil_locked", [(7, LAST, f"offsetof({GIL}, locked)")]),

    ("ts_next", [(6, LAST, f"offsetof({TS}, next)")]),
    ("ts_interp", [(6, LAST, f"offsetof({TS}, interp)")]),
    ("ts_thread_id", [(6, LAST, f"offsetof({TS}, thread_id)")]),
    ("ts_native_thread_id", [(11, LAST, f"offsetof({TS}, native_thread_id)")]),
    ("ts_frame", [(6, 10, f"offsetof({TS}, frame)"),
                  (11, 12, f"offsetof({TS}, cframe)"),
                  (13, LAST, f"offsetof({TS}, current_frame)")]),
    ("cframe_current_frame", [(11, 12, "offsetof(_PyCFrame, current_frame)")]),

    ("frame_back", [(6, 10, f"offsetof({FO}, f_back)"),
                    (11, LAST, f"offsetof({IF}, previous)")]),
    ("frame_code", [(6, 10, f"offsetof({FO}, f_code)"),
                    (11, 12, f"offsetof({IF}, f_code)"),
                    (13, LAST, f"offsetof({IF}, f_executable)")]),
    ("frame_lasti", [(6, 10, f"offsetof({FO}, f_lasti)")]),
    ("frame_instr", [(11, 12, f"offsetof({IF}, prev_instr)"),
                     (13, LAST, f"offsetof({IF}, instr_ptr)")]),
    ("frame_owner", [(11, LAST, f"offsetof({IF}, owner)")]),

    ("code_argcount", [(6, LAST, f"offsetof({CO}, co_argcount)")]),
    ("code_firstlineno", [(6, LAST, f"offsetof({CO}, co_firstlineno)")]),
    ("code_filename", [(6, LAST, f"offsetof({CO}, co_filename)")]),
    ("code_name", [(6, LAST, f"offsetof({CO}, co_name)")]),
    ("code_qualname", [(11, LAST, f"offsetof({CO}, co_qualname)")]),
    ("code_linetable", [(6, 9, f"offsetof({CO}, co_lnotab)"),
                        (10, LAST, f"offsetof({CO}, co_linetable)")]),
    ("code_code_adaptive", [(11, LAST, f"offsetof({CO}, co_code_adaptive)")]),

    ("ob_type", [(6, LAST, "offsetof(PyObject, ob_type)")]),
    ("tp_name", [(6, LAST, "offsetof(PyTypeObject, tp_name)")]),
    ("bytes_size", [(6, LAST, "offsetof(PyBytesObject, ob_base.ob_size)")]),
    ("bytes_sval", [(6, LAST, "offsetof(PyBytesObject, ob_sval)")]),

    ("uni_length", [(6, LAST, "offsetof(PyASCIIObject, length)")]),
    ("uni_state", [(6, LAST, "offsetof(PyASCIIObject, state)")]),
    ("uni_ascii_data", [(6, LAST, "sizeof(PyASCIIObject)")]),
    ("uni_compact_data", [(6, LAST, "sizeof(PyCompactUnicodeObject)")]),
    ("uni_legacy_data", [(6, LAST, "offsetof(PyUnicodeObject, data)")]),
]

# Headers that define the structures above, tried in this order after
# Python.h; each is included only when the version ships it.
INCLUDES = [
    "frameobject.h",
    "internal/pystate.h",        # 3.7: _PyRuntimeState
    "pycore_runtime.h",          # 3.9+
    "pycore_interp.h",           # 3.9+
    "pycore_pystate.h",          # 3.8+
    "pycore_gil.h",              # 3.8+ (3.7: via internal/pystate.h)
    "pycore_frame.h",            # 3.11+: _PyInterpreterFrame
    "pycore_interpframe.h",      # 3.14+
    "pycore_code.h",
]


def die(msg):
    print(f"gen-pyoffsets: {msg}", file=sys.stderr)
    sys.exit(1)


def struct_fields(header):
    """Member names of struct py_offsets, in order, read from pyoffsets.h."""
    with open(header, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"struct py_offsets \{(.*?)\n\};", text, re.S)
    if not m:
        die(f"no struct py_offsets in {header}")
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    return re.findall(r"\bint\s+(\w+)\s*;", body)


def expr_for(field_ranges, minor):
    for lo, hi, expr in field_ranges:
        if lo <= minor <= hi:
            return expr
    return None


def probe_source(minor, incdirs):
    def have(h):
        return any(os.path.exists(os.path.join(d, h)) for d in incdirs)

    lines = ["#include <stddef.h>", '#include "Python.h"']
    lines += [f'#include "{h}"' for h in INCLUDES if have(h)]
    lines.append("const char htprobe__version[] = PY_VERSION;")
    for name, ranges in FIELDS:
        expr = expr_for(ranges, minor)
        if expr:
            lines.append(f"const long htprobe_{name} = (long)({expr});")
    return "\n".join(lines) + "\n"


def compile_probe(cc, minor, incdirs):
    """Compile the probe with gcc -S; return ({field: value}, PY_VERSION)."""
    src = probe_source(minor, incdirs)
    with tempfile.TemporaryDirectory(prefix="gen-pyoffsets.") as tmp:
        cfile = os.path.join(tmp, "probe.c")
        with open(cfile, "w", encoding="utf-8") as f:
            f.write(src)
        cmd = [cc, "-S", "-O0", "-DPy_BUILD_CORE", "-o", "-"]
        cmd += [f"-I{d}" for d in incdirs] + [cfile]
        res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        die(f"probe for 3.{minor} failed to compile ({' '.join(cmd)}):\n{res.stderr}")
    asm = res.stdout

    ver = re.search(r"^htprobe__version:\s*\n\s*\.string\s+\"([^\"]+)\"", asm, re.M)
    if not ver:
        die(f"3.{minor}: PY_VERSION not found in the probe's assembly")
    values = {}
    for m in re.finditer(r"^htprobe_(\w+):\s*\n\s*\.(quad|zero)\s+(-?\w+)", asm, re.M):
        if m.group(1) == "_version":
            continue
        values[m.group(1)] = int(m.group(3), 0) if m.group(2) == "quad" else 0
    for name, ranges in FIELDS:
        if expr_for(ranges, minor) and name not in values:
            die(f"3.{minor}: no value for {name} in the probe's assembly")
    row = {name: values.get(name, -1) for name, _ in FIELDS}
    return row, ver.group(1)


def version_key(name):
    return tuple(int(x) if x.isdigit() else -1 for x in re.split(r"[.]", name))


def find_pythons(root):
    """{minor: (patch version dir name, [include dirs])}, newest patch wins."""
    vdir = os.path.join(root, "versions")
    found = {}
    try:
        names = sorted(os.listdir(vdir), key=version_key)
    except OSError as e:
        die(f"cannot list {vdir}: {e.strerror}")
    for name in names:
        m = re.fullmatch(r"3\.(\d+)\.(\d+)", name)
        if not m or int(m.group(1)) not in MINORS:
            continue
        minor = int(m.group(1))
        inc = os.path.join(vdir, name, "include")
        subs = [s for s in os.listdir(inc) if s.startswith(f"python3.{minor}")] \
            if os.path.isdir(inc) else []
        # GIL, non-debug headers only: python3.X or python3.Xm, never ...d/...t.
        subs = [s for s in subs if re.fullmatch(rf"python3\.{minor}m?", s)]
        if len(subs) != 1:
            continue
        d = os.path.join(inc, subs[0])
        found[minor] = (name, [x for x in (d, os.path.join(d, "internal")) if os.path.isdir(x)])
    return found


def pyenv_root(arg):
    if arg:
        return arg
    if shutil.which("pyenv"):
        res = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
        if res.returncode == 0 and res.stdout.strip():
            return res.stdout.strip()
    return os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))


def render(rows):
    width = max(len(name) for name, _ in FIELDS)
    out = []
    out.append("// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)")
    out.append("/*")
    out.append(" * GENERATED FILE, DO NOT EDIT.  Regenerate with:")
    out.append(f" *   {CANONICAL_CMD}")
    out.append(" *")
    out.append(" * CPython structure offsets (x86_64, GIL, non-debug builds) from offsetof()/")
    out.append(" * sizeof() compiled with gcc -S -DPy_BUILD_CORE against each version's own")
    out.append(" * headers ($(pyenv root)/versions/3.X.Y/include).  -1: no such field.")
    out.append(" * Rows come from:")
    for minor, (patch, _) in rows:
        out.append(f" *   3.{minor:<3} {patch}")
    out.append(" */")
    out.append('#include "pyoffsets.h"')
    out.append('#include "pyoffsets_table.h"')
    out.append("")
    out.append("const struct py_offsets pyoffsets_gen_table[] = {")
    for minor, (patch, row) in rows:
        out.append(f"\t{{\t/* {patch} */")
        out.append(f"\t\t.{'minor':<{width}} = {minor},")
        for name, _ in FIELDS:
            out.append(f"\t\t.{name:<{width}} = {row[name]},")
        out.append("\t},")
    out.append("};")
    out.append("")
    out.append("const unsigned int pyoffsets_gen_count =")
    out.append("\tsizeof(pyoffsets_gen_table) / sizeof(pyoffsets_gen_table[0]);")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", default=os.path.join(REPO, "user", "pyoffsets_table.c"),
                    help="output file, '-' for stdout (default: user/pyoffsets_table.c)")
    ap.add_argument("--pyenv-root", help="default: $(pyenv root)")
    ap.add_argument("--cc", default=os.environ.get("CC", "gcc"))
    ap.add_argument("--probe", nargs="+", metavar=("MINOR", "INCDIR"),
                    help="print the row for these headers as JSON and exit")
    args = ap.parse_args()

    want = struct_fields(HEADER)
    have = ["minor"] + [name for name, _ in FIELDS]
    if want != have:
        die(f"FIELDS is out of sync with struct py_offsets in {HEADER}:\n"
            f"  header: {want}\n  script: {have}")

    if args.probe:
        if len(args.probe) < 2:
            die("--probe needs MINOR and at least one include directory")
        minor = int(args.probe[0])
        row, patch = compile_probe(args.cc, minor, args.probe[1:])
        json.dump({"version": patch, "minor": minor, **row}, sys.stdout, indent=1)
        print()
        return

    root = pyenv_root(args.pyenv_root)
    found = find_pythons(root)
    missing = [f"3.{m}" for m in MINORS if m not in found]
    if missing:
        die(f"no headers for {', '.join(missing)} under {root}/versions "
            "(install them with pyenv)")

    rows = []
    for minor in MINORS:
        name, incdirs = found[minor]
        row, patch = compile_probe(args.cc, minor, incdirs)
        if patch != name:
            die(f"{root}/versions/{name} has headers of {patch}")
        rows.append((minor, (patch, row)))

    text = render(rows)
    if args.output == "-":
        sys.stdout.write(text)
        return
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, args.output)


if __name__ == "__main__":
    main()
