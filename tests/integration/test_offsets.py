# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The generated CPython offset table (user/pyoffsets_table.c).

- Rerunning tools/gen-pyoffsets.py reproduces the committed file byte for
  byte (when the pyenv 3.6-3.12 headers are installed).
- Every value equals the verified facts in ../shared/data/cpython-offsets.json,
  field by field (when that file is present).
"""

import difflib
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GEN = os.path.join(REPO, "tools", "gen-pyoffsets.py")
TABLE = os.path.join(REPO, "user", "pyoffsets_table.c")
HEADER = os.path.join(REPO, "user", "pyoffsets.h")
JSON_PATH = os.path.join(REPO, "..", "shared", "data", "cpython-offsets.json")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
MINORS = list(range(6, 13))


def pyenv_root():
    if shutil.which("pyenv"):
        res = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
        if res.returncode == 0 and res.stdout.strip():
            return res.stdout.strip()
    return os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))


def pyenv_include(minor):
    """Include dir of the newest pyenv 3.<minor>.x, or None."""
    dirs = glob.glob(os.path.join(pyenv_root(), "versions", f"3.{minor}.*", "include",
                                  f"python3.{minor}"))
    dirs += glob.glob(os.path.join(pyenv_root(), "versions", f"3.{minor}.*", "include",
                                   f"python3.{minor}m"))
    dirs = [d for d in dirs if re.search(rf"/versions/3\.{minor}\.\d+/", d)]
    return sorted(dirs)[-1] if dirs else None


def struct_fields():
    with open(HEADER, encoding="utf-8") as f:
        text = f.read()
    body = re.search(r"struct py_offsets \{(.*?)\n\};", text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return re.findall(r"\bint\s+(\w+)\s*;", body)


def parse_table(text):
    """{minor: [(field, value), ...]} from the generated C."""
    rows = {}
    for body in re.findall(r"\{\s*/\*[^*]*\*/(.*?)\n\t\},", text, re.S):
        kv = [(k, int(v)) for k, v in re.findall(r"\.(\w+)\s*=\s*(-?\d+),", body)]
        rows[dict(kv)["minor"]] = kv
    return rows


@pytest.fixture(scope="module")
def table():
    with open(TABLE, encoding="utf-8") as f:
        return parse_table(f.read())


@pytest.fixture(scope="module")
def facts():
    if not os.path.exists(JSON_PATH):
        pytest.skip(f"{JSON_PATH} not present")
    with open(JSON_PATH, encoding="utf-8") as f:
        return json.load(f)


def need_headers(minors):
    missing = [f"3.{m}" for m in minors if not pyenv_include(m)]
    if missing:
        pytest.skip(f"pyenv headers missing for {', '.join(missing)}")
    if not shutil.which(os.environ.get("CC", "gcc")):
        pytest.skip("no gcc")


def test_table_has_every_field(table):
    fields = struct_fields()
    assert sorted(table) == MINORS, f"rows for {sorted(table)}, expected 3.6-3.12"
    for minor, kv in table.items():
        assert [k for k, _ in kv] == fields, \
            f"3.{minor} row does not list struct py_offsets' fields in order"


def test_generator_reproduces_committed_table(tmp_path):
    need_headers(MINORS)
    out = tmp_path / "pyoffsets_table.c"
    res = subprocess.run([PYTHON, GEN, "-o", str(out)], capture_output=True, text=True,
                         cwd=REPO)
    assert res.returncode == 0, f"gen-pyoffsets.py failed:\n{res.stderr}"
    with open(TABLE, encoding="utf-8") as f:
        committed = f.read()
    fresh = out.read_text(encoding="utf-8")
    if fresh != committed:
        diff = "".join(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True),
                                            "user/pyoffsets_table.c (committed)",
                                            "gen-pyoffsets.py output"))
        pytest.fail("user/pyoffsets_table.c is stale: rerun "
                    "/usr/bin/python3 tools/gen-pyoffsets.py\n" + diff)


def nn(v):
    return -1 if v is None else v


def expected_from_json(d):
    """Our struct py_offsets fields, computed from one version's JSON entry."""
    rt = d.get("runtime") or {}
    it = d["interp"]
    gil = d.get("gil_struct") or {}
    ts = d["tstate"]
    fo = d.get("frame_object") or {}
    ifr = d.get("interp_frame") or {}
    cf = d.get("cframe_struct") or {}
    co = d["code"]
    ob = d["objects"]
    un = d["unicode"]

    if rt.get("ceval.gil.last_holder") is not None:
        rt_gil = rt["ceval.gil.last_holder"] - gil["last_holder"]
    else:
        rt_gil = -1
    if ts.get("current_frame") is not None:
        ts_frame = ts["current_frame"]
    elif ts.get("frame") is not None:
        ts_frame = ts["frame"]      # 3.10 also has cframe, which only carries use_tracing
    else:
        ts_frame = nn(ts.get("cframe"))
    tstate_head = it.get("tstate_head")
    if tstate_head is None:
        tstate_head = it.get("threads.head")
    linetable = co.get("co_linetable")
    if linetable is None:
        linetable = co.get("co_lnotab")

    return {
        "rt_interpreters_head": nn(rt.get("interpreters.head")),
        "rt_finalizing": nn(rt.get("finalizing")),
        "rt_gil": rt_gil,
        "rt_tstate_current": nn(rt.get("gilstate.tstate_current")),
        "interp_next": nn(it.get("next")),
        "interp_tstate_head": nn(tstate_head),
        "interp_ceval_gil": nn(it.get("ceval.gil(ptr)")),
        "gil_size": nn(gil.get("sizeof")),
        "gil_last_holder": nn(gil.get("last_holder")),
        "gil_locked": nn(gil.get("locked")),
        "ts_next": nn(ts.get("next")),
        "ts_interp": nn(ts.get("interp")),
        "ts_thread_id": nn(ts.get("thread_id")),
        "ts_native_thread_id": nn(ts.get("native_thread_id")),
        "ts_frame": ts_frame,
        "cframe_current_frame": nn(cf.get("current_frame")),
        "frame_back": nn(fo.get("f_back", ifr.get("previous"))),
        "frame_code": nn(fo.get("f_code", ifr.get("code"))),
        "frame_lasti": nn(fo.get("f_lasti")),
        "frame_instr": nn(ifr.get("ip")),
        "frame_owner": nn(ifr.get("owner")),
        "code_argcount": nn(co.get("co_argcount")),
        "code_firstlineno": nn(co.get("co_firstlineno")),
        "code_filename": nn(co.get("co_filename")),
        "code_name": nn(co.get("co_name")),
        "code_qualname": nn(co.get("co_qualname")),
        "code_linetable": nn(linetable),
        "code_code_adaptive": nn(co.get("co_code_adaptive")),
        "ob_type": nn(ob.get("ob_type")),
        "tp_name": nn(ob.get("tp_name")),
        "bytes_size": nn(ob.get("bytes.ob_size")),
        "bytes_sval": nn(ob.get("bytes.ob_sval")),
        "uni_length": nn(un.get("length")),
        "uni_state": nn(un.get("state")),
        "uni_ascii_data": nn(un.get("sizeof_PyASCIIObject(compact_ascii_data)")),
        "uni_compact_data": nn(un.get("sizeof_PyCompactUnicodeObject(compact_data)")),
        "uni_legacy_data": nn(un.get("legacy_data_ptr")),
    }


def diff_rows(minor, got, want):
    bad = [f"  3.{minor} {k}: table {got[k]}, cpython-offsets.json {want[k]}"
           for k in want if got.get(k) != want[k]]
    missing = [f"  3.{minor} {k}: not in the table" for k in want if k not in got]
    return bad + missing


def test_json_mapping_covers_struct(facts):
    assert sorted(expected_from_json(facts["3.12"])) == sorted(struct_fields()[1:])


@pytest.mark.parametrize("minor", MINORS)
def test_table_matches_json(table, facts, minor):
    key = f"3.{minor}"
    assert key in facts, f"{key} missing from cpython-offsets.json"
    got = dict(table[minor])
    problems = diff_rows(minor, got, expected_from_json(facts[key]))

    # cross-checks against the JSON's absolute GIL fields
    rt = facts[key].get("runtime") or {}
    it = facts[key]["interp"]
    if rt.get("ceval.gil.locked") is not None:
        if got["rt_gil"] + got["gil_locked"] != rt["ceval.gil.locked"]:
            problems.append(f"  3.{minor} rt_gil + gil_locked = "
                            f"{got['rt_gil'] + got['gil_locked']}, JSON ceval.gil.locked "
                            f"{rt['ceval.gil.locked']}")
    if it.get("_gil") is not None:
        for ours, theirs in (("gil_last_holder", "_gil.last_holder"), ("gil_locked", "_gil.locked")):
            if it[theirs] - it["_gil"] != got[ours]:
                problems.append(f"  3.{minor} {ours} {got[ours]}, JSON interp {theirs} - _gil "
                                f"= {it[theirs] - it['_gil']}")
    assert not problems, "generated table disagrees with cpython-offsets.json:\n" + \
        "\n".join(problems)


@pytest.mark.parametrize("minor", [13])
def test_generator_probe_matches_json_313(facts, minor):
    """The probe on pyenv 3.13 headers gives what _Py_DebugOffsets + our 3.13 facts give."""
    need_headers([minor])
    inc = pyenv_include(minor)
    res = subprocess.run([PYTHON, GEN, "--probe", str(minor), inc, os.path.join(inc, "internal")],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, f"gen-pyoffsets.py --probe failed:\n{res.stderr}"
    got = json.loads(res.stdout)
    problems = diff_rows(minor, got, expected_from_json(facts[f"3.{minor}"]))
    assert not problems, "3.13 header probe disagrees with cpython-offsets.json:\n" + \
        "\n".join(problems)
