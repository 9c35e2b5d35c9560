# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""--format pprof and --format speedscope, read back by their real consumers.

pprof profiles are read with `go tool pprof` (-raw, -top, -sample_index,
-tagfocus); speedscope files are validated against the schema shipped in the
npm package `speedscope` (tests/fetch-speedscope.sh) with python3-jsonschema.
Durations are checked against what the target measured itself.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

from conftest import HANGTRACE, SCENARIOS, TARGETS, Target, Tracer, marker_line, requires_root
from pythons import ids, interpreters

pytestmark = requires_root
ROOT = pathlib.Path(__file__).resolve().parents[2]
HOSTILE = TARGETS / "hostile.py"


def _pick():
    """One interpreter before 3.11 (plain co_name) and one after (co_qualname)."""
    pys = interpreters()
    old = [p for p in pys if p.version[:2] < (3, 11)]
    new = [p for p in pys if p.version[:2] >= (3, 11)]
    return ([old[-1]] if old else []) + ([new[-1]] if new else [])


PYS = _pick()
NEW = [p for p in PYS if p.version[:2] >= (3, 11)]


def def_line(path, name):
    """The line of 'def NAME(' in @path: the code object's co_firstlineno."""
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            if line.lstrip().startswith("def %s(" % name):
                return no
    raise LookupError("no def %s in %s" % (name, path))


def trace(procs, py, scenario, seconds, fmt, out, what=None, script=SCENARIOS):
    """Trace @scenario into @out; returns (what the target measured, the target)."""
    argv = py.argv + [str(script)] + ([scenario] if scenario else []) + [seconds]
    t = Target(argv)
    procs.append(t)
    args = ["-o", str(out)] + (["--what", what] if what else [])
    tr = Tracer(t.pid, args=args, fmt=fmt)
    procs.append(tr)
    t.trigger()
    done = t.wait_done()
    time.sleep(0.2)  # the main thread parks, so the scenario's blocks have ended
    assert tr.stop() == ""  # everything went to the file
    return done, t


# --- go tool pprof ----------------------------------------------------------
def go_pprof(tmp_path, *args):
    go = shutil.which("go")
    if not go:
        pytest.skip("go (Debian golang-go) not installed: tools/install-deps.sh installs it")
    env = dict(os.environ, PPROF_TMPDIR=str(tmp_path), GOCACHE=str(tmp_path / "gocache"))
    p = subprocess.run([go, "tool", "pprof"] + list(args), capture_output=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return p.stdout.decode("utf-8")  # invalid UTF-8 here fails the test


_LOC = re.compile(r"^\s+(\d+): 0x0 M=1 (.*) (\S*):(\d+) s=(\d+)\((.*)\)$")


def pprof_raw(tmp_path, path, *args):
    """`go tool pprof -raw`: sample types, samples and locations, parsed."""
    out = go_pprof(tmp_path, "-raw", *args, str(path))
    lines = out.splitlines()
    types = lines[lines.index("Samples:") + 1].split()
    samples, locs, section = [], {}, "head"
    for line in lines[lines.index("Samples:") + 2:]:
        if line in ("Locations", "Mappings"):
            section = line
            continue
        if section == "head":
            m = re.match(r"^\s+([\d ]+):([\d ]*)$", line)
            if m:
                samples.append({"values": [int(v) for v in m.group(1).split()],
                                "locs": [int(v) for v in m.group(2).split()], "labels": {}})
            else:
                for k, v in re.findall(r"(\w+):\[([^\]]*)\]", line):
                    samples[-1]["labels"][k] = v
        elif section == "Locations":
            m = _LOC.match(line)
            if m:
                locs[int(m.group(1))] = {"function": m.group(2), "file": m.group(3),
                                         "line": int(m.group(4)), "start": int(m.group(5)),
                                         "system_name": m.group(6)}
    for s in samples:
        s["stack"] = [locs[i] for i in s["locs"]]  # leaf first
        s["value"] = dict(zip([t.split("[")[0] for t in types], s["values"]))
    return types, samples, out


_UNITS = {"ns": 1, "us": 1e3, "\u00b5s": 1e3, "ms": 1e6, "s": 1e9, "mins": 60e9, "hrs": 3600e9}


def pprof_top(tmp_path, path, *args):
    """`go tool pprof -top -lines`: {"function file:line": (flat, cum)} in ns (or counts)."""
    out = go_pprof(tmp_path, "-top", "-lines", *args, str(path))
    rows, seen = {}, False
    for line in out.splitlines():
        if line.split() == ["flat", "flat%", "sum%", "cum", "cum%"]:
            seen = True
            continue
        if not seen or not line.strip():
            continue
        flat, _, _, cum, _, name = line.split(None, 5)
        rows[name] = tuple(_value(v) for v in (flat, cum))
    assert seen, out
    return rows, out


def _value(s):
    m = re.match(r"^([\d.]+)([a-z\u00b5]*)$", s)
    assert m, s
    return float(m.group(1)) * _UNITS.get(m.group(2), 1)


def here(py, fn, marker):
    return {"function": fn, "file": str(SCENARIOS), "line": marker_line(SCENARIOS, marker),
            "start": def_line(SCENARIOS, fn)}


def loc(d):
    return {k: d[k] for k in ("function", "file", "line", "start")}


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_pprof_profile(py, procs, tmp_path):
    """--what all: off-CPU sleep in rest() and on-CPU samples in burn(), as go tool pprof
    reads them: exact functions, file:line, def lines, totals, labels."""
    out = tmp_path / "profile.pb.gz"
    done, t = trace(procs, py, "profile", "0.6", "pprof", out, what="all")
    assert out.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    types, samples, raw = pprof_raw(tmp_path, out)
    assert types == ["off_cpu/nanoseconds[dflt]", "off_cpu_blocks/count", "samples/count",
                     "cpu/nanoseconds"], raw
    assert "PeriodType: cpu nanoseconds" in raw and "Comment: hangtrace " in raw, raw
    assert re.search(r"^Period: 50251\d\d$", raw, re.M), raw  # 1 s / 199 Hz

    rest = [s for s in samples if s["stack"] and loc(s["stack"][0]) == here(py, "rest", "rest")]
    assert len(rest) == 1, raw
    rest = rest[0]
    assert loc(rest["stack"][1]) == here(py, "profile_scenario", "call_rest"), raw
    assert abs(rest["value"]["off_cpu/nanoseconds"] / 1e9 - done["rested"]) <= \
        0.05 * done["rested"], (rest, done)
    assert rest["value"]["off_cpu_blocks/count"] == 1
    assert rest["value"]["samples/count"] == 0 and rest["value"]["cpu/nanoseconds"] == 0
    assert rest["labels"]["reason"] == "sleep" and rest["labels"]["event_loop"] == "false"
    assert rest["labels"]["pid"] == str(t.pid) and rest["labels"]["tid"] == str(t.pid)
    with open("/proc/%d/comm" % t.pid) as f:
        assert rest["labels"]["thread"] == f.read().rstrip("\n")
    assert "syscall" in rest["labels"], rest

    burn = [s for s in samples if s["stack"] and s["stack"][0]["function"] == "burn"]
    assert burn, raw
    lines = {s["stack"][0]["line"] for s in burn}
    assert marker_line(SCENARIOS, "burn") in lines and lines <= {
        marker_line(SCENARIOS, "burn") - 1, marker_line(SCENARIOS, "burn")}, lines
    for s in burn:
        assert s["stack"][0]["start"] == def_line(SCENARIOS, "burn")
        assert loc(s["stack"][1]) == here(py, "profile_scenario", "call_burn")
        assert s["labels"]["reason"] == "on-cpu" and s["labels"]["tid"] == str(t.pid)
        assert s["value"]["off_cpu/nanoseconds"] == 0
        assert s["value"]["cpu/nanoseconds"] == s["value"]["samples/count"] * 5025125
    cpu_ns = sum(s["value"]["cpu/nanoseconds"] for s in burn)
    # sampled at 199 Hz: within 20% of the CPU time the target measured for the burn
    assert abs(cpu_ns / 1e9 - done["burned_cpu"]) <= 0.2 * done["burned_cpu"], (cpu_ns, done)

    # -top: the default sample type (off_cpu) and -sample_index=cpu
    rest_row = "rest %s:%d" % (SCENARIOS, marker_line(SCENARIOS, "rest"))
    rows, top = pprof_top(tmp_path, out)
    assert "Type: off_cpu" in top and rest_row in rows, top
    assert rows[rest_row][0] == pytest.approx(rest["value"]["off_cpu/nanoseconds"], rel=0.01)
    rows, top = pprof_top(tmp_path, out, "-sample_index=cpu")
    assert "Type: cpu" in top, top
    burn_flat = sum(v[0] for k, v in rows.items() if k.startswith("burn %s:" % SCENARIOS))
    assert burn_flat == pytest.approx(cpu_ns, rel=0.01), top
    assert rest_row not in rows, top
    # -tagfocus on a string label and a numeric one
    rows, top = pprof_top(tmp_path, out, "-tagfocus=reason=sleep")
    assert rest_row in rows and not any(k.startswith("Condition.wait") for k in rows), top
    rows, top = pprof_top(tmp_path, out, "-sample_index=samples", "-tagfocus=tid=%d" % t.pid)
    assert sum(v[0] for k, v in rows.items() if k.startswith("burn ")) == \
        sum(s["value"]["samples/count"] for s in burn), top


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_pprof_nested_offcpu(py, procs, tmp_path):
    """Default --what offcpu: two off-CPU sample types, the nesting in order, no on-CPU."""
    out = tmp_path / "nested.pb.gz"
    done, t = trace(procs, py, "nested", "0.5", "pprof", out)
    types, samples, raw = pprof_raw(tmp_path, out)
    assert types == ["off_cpu/nanoseconds[dflt]", "off_cpu_blocks/count"], raw
    assert "PeriodType: off_cpu nanoseconds" in raw and re.search(r"^Period: 1$", raw, re.M)
    s = [s for s in samples if s["stack"] and s["stack"][0]["function"] == "level3"]
    assert len(s) == 1, raw
    stack = [loc(f) for f in s[0]["stack"][:3]]
    assert stack == [here(py, "level3", "level3"), here(py, "level2", "level2"),
                     here(py, "level1", "level1")], raw
    assert s[0]["labels"]["reason"] == "sleep"
    assert all(x["labels"]["reason"] != "on-cpu" for x in samples), raw
    assert s[0]["value"]["off_cpu/nanoseconds"] >= 0.45e9


@pytest.mark.parametrize("py", NEW, ids=ids)
def test_pprof_lock_and_qualname(py, procs, tmp_path):
    """A lock wait (reason, tid label of the waiter) and a method's qualname (3.11+)."""
    out = tmp_path / "lock.pb.gz"
    done, t = trace(procs, py, "lock", "0.5", "pprof", out)
    types, samples, raw = pprof_raw(tmp_path, out)
    s = [s for s in samples if s["stack"] and s["stack"][0]["function"] == "wait_for_lock"]
    assert len(s) == 1, raw
    assert loc(s[0]["stack"][0]) == here(py, "wait_for_lock", "acquire")
    assert s[0]["labels"]["reason"] == "lock" and s[0]["labels"]["tid"] == str(t.pid)
    assert abs(s[0]["value"]["off_cpu/nanoseconds"] / 1e9 - done["waited"]) <= \
        0.05 * done["waited"], (s, done)
    holder = [x for x in samples if x["stack"] and x["stack"][-1]["function"] != "<module>"
              and any(f["function"] == "holder" for f in x["stack"])]
    assert holder and all(x["labels"]["tid"] != str(t.pid) for x in holder), raw

    out = tmp_path / "method.pb.gz"
    trace(procs, py, "method", "0.3", "pprof", out)
    rows, top = pprof_top(tmp_path, out)
    assert "Worker.run %s:%d" % (SCENARIOS, marker_line(SCENARIOS, "method")) in rows, top


def test_pprof_oncpu_only(procs, tmp_path):
    """--what oncpu: only the sampled types, cpu the default, no off-CPU sample."""
    py = PYS[-1]
    out = tmp_path / "oncpu.pb.gz"
    done, t = trace(procs, py, "profile", "0.5", "pprof", out, what="oncpu")
    types, samples, raw = pprof_raw(tmp_path, out)
    assert types == ["samples/count", "cpu/nanoseconds[dflt]"], raw
    assert samples and all(s["labels"]["reason"] == "on-cpu" for s in samples), raw
    assert not any(s["stack"] and s["stack"][0]["function"] == "rest" for s in samples), raw
    assert any(s["stack"] and s["stack"][0]["function"] == "burn" for s in samples), raw


def test_pprof_refuses_a_terminal(tmp_path):
    """Binary on a terminal: a one-line error, exit 2, before anything is traced."""
    script = "import os, pty, sys\n" \
             "pid, fd = pty.fork()\n" \
             "if pid == 0:\n" \
             "    os.execv(sys.argv[1], sys.argv[1:])\n" \
             "out = b''\n" \
             "while True:\n" \
             "    try:\n" \
             "        b = os.read(fd, 4096)\n" \
             "    except OSError:\n" \
             "        break\n" \
             "    if not b:\n" \
             "        break\n" \
             "    out += b\n" \
             "_, st = os.waitpid(pid, 0)\n" \
             "print(os.waitstatus_to_exitcode(st)); sys.stdout.write(out.decode())\n"
    p = subprocess.run(["/usr/bin/python3", "-c", script, HANGTRACE, "-p", str(os.getpid()),
                        "--format", "pprof"], capture_output=True, text=True, timeout=30)
    code, _, msg = p.stdout.partition("\n")
    assert code == "2", p.stdout
    assert msg.strip() == "hangtrace: error: --format pprof is binary (gzip): give -o FILE " \
        "or redirect stdout", msg


# --- speedscope ---------------------------------------------------------------
@pytest.fixture(scope="module")
def schema():
    if not shutil.which("npm"):
        pytest.skip("npm not installed: tools/install-deps.sh installs it")
    jsonschema = pytest.importorskip("jsonschema")  # Debian python3-jsonschema
    p = subprocess.run([str(ROOT / "tests" / "fetch-speedscope.sh")], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    with open(p.stdout.strip(), encoding="utf-8") as f:
        s = json.load(f)
    return lambda doc: jsonschema.validate(doc, s)


def speedscope_load(path, validate):
    with open(path, encoding="utf-8") as f:  # invalid UTF-8 fails here
        doc = json.load(f)
    validate(doc)
    return doc


def stacks(doc, profile):
    """[(frames outermost first, weight)] of @profile."""
    frames = doc["shared"]["frames"]
    return [([frames[i] for i in s], w) for s, w in zip(profile["samples"], profile["weights"])]


def sframe(fn, marker):
    return {"name": fn, "file": str(SCENARIOS), "line": marker_line(SCENARIOS, marker)}


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_speedscope_profile(py, procs, tmp_path, schema):
    """--what all: per-thread off-CPU and on-CPU sampled profiles, schema-valid."""
    out = tmp_path / "profile.speedscope.json"
    done, t = trace(procs, py, "profile", "0.6", "speedscope", out, what="all")
    doc = speedscope_load(out, schema)
    version = subprocess.run([HANGTRACE, "--version"], capture_output=True, text=True).stdout
    assert doc["exporter"] == version.strip()
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    names = [p["name"] for p in doc["profiles"]]
    off = [p for p in doc["profiles"] if p["name"].startswith("Thread %d " % t.pid)
           and p["name"].endswith(": off-CPU")]
    on = [p for p in doc["profiles"] if p["name"].startswith("Thread %d " % t.pid)
          and p["name"].endswith(": on-CPU")]
    assert len(off) == 1 and len(on) == 1, names
    for p in doc["profiles"]:
        assert p["type"] == "sampled" and p["unit"] == "nanoseconds"
        assert p["startValue"] == 0 and p["endValue"] == sum(p["weights"])
    assert doc["profiles"][doc["activeProfileIndex"]]["endValue"] == \
        max(p["endValue"] for p in doc["profiles"])

    rest = [(st, w) for st, w in stacks(doc, off[0])
            if st[-2:] == [sframe("rest", "rest"), {"name": "[sleep]"}]]
    assert len(rest) == 1, stacks(doc, off[0])
    st, w = rest[0]
    assert st[-3] == sframe("profile_scenario", "call_rest")
    assert abs(w / 1e9 - done["rested"]) <= 0.05 * done["rested"], (w, done)

    burn = [(st, w) for st, w in stacks(doc, on[0]) if st[-1]["name"] == "burn"]
    assert burn, stacks(doc, on[0])
    assert sframe("burn", "burn") in [st[-1] for st, _ in burn]
    assert all(st[-2] == sframe("profile_scenario", "call_burn") for st, _ in burn)
    cpu = sum(w for _, w in burn)
    assert abs(cpu / 1e9 - done["burned_cpu"]) <= 0.2 * done["burned_cpu"], (cpu, done)


def test_speedscope_offcpu_only(procs, tmp_path, schema):
    """Default --what offcpu: no on-CPU profile; the nesting outermost first."""
    py = PYS[-1]
    out = tmp_path / "nested.speedscope.json"
    done, t = trace(procs, py, "nested", "0.5", "speedscope", out)
    doc = speedscope_load(out, schema)
    assert doc["profiles"] and all(p["name"].endswith(": off-CPU") for p in doc["profiles"])
    main = [p for p in doc["profiles"] if p["name"].startswith("Thread %d " % t.pid)]
    assert len(main) == 1 and "(main)" in main[0]["name"]
    want = [sframe("level1", "level1"), sframe("level2", "level2"), sframe("level3", "level3"),
            {"name": "[sleep]"}]
    found = [(st, w) for st, w in stacks(doc, main[0]) if st[-4:] == want]
    assert len(found) == 1, stacks(doc, main[0])
    assert found[0][1] >= 0.45e9


# --- hostile names ------------------------------------------------------------
def clean(s):
    """What a name must become: lone surrogates (invalid UTF-8) as U+FFFD."""
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in s)


@pytest.mark.parametrize("py", NEW, ids=ids)
def test_hostile_names(py, procs, tmp_path, schema):
    """Quotes, '<', '&', control characters, a terminal escape, invalid UTF-8 and a
    huge name in function, file and thread names survive both formats, exactly."""
    pb, ss = tmp_path / "hostile.pb.gz", tmp_path / "hostile.speedscope.json"
    results = {}
    for fmt, out in (("pprof", pb), ("speedscope", ss)):
        done, t = trace(procs, py, None, "0.4", fmt, out, script=HOSTILE)
        results[fmt] = (done, t.ready)
    done, ready = results["pprof"]
    inner, file, lines = clean(ready["inner"]), clean(ready["file"]), ready["lines"]
    thread = "bad\ufffd\"<\x07"  # the comm bytes b'bad\xff"<\x07'

    types, samples, raw = pprof_raw(tmp_path, pb)
    # the leaf: the exact name, file, line and def line (system_name "FILE:NAME")
    hits = [s for s in samples if s["locs"] and ("%d: 0x0 M=1 %s %s:%d s=%d(%s:%s)\n" % (
        s["locs"][0], inner, file, lines["inner_sleep"], lines["inner_def"], file, inner)) in raw]
    assert len(hits) == 1, raw
    s = hits[0]
    assert abs(s["value"]["off_cpu/nanoseconds"] / 1e9 - done["slept"]) <= 0.05 * done["slept"]
    assert "thread:[%s]" % thread in raw, raw
    outer_loc = re.search(r"^\s+%d: 0x0 M=1 (long_\u00e9+(?:\.\.\.)?) " % s["locs"][1], raw,
                          re.M)
    assert outer_loc and len(outer_loc.group(1)) >= 200, raw[:3000]
    assert ("%s:%d s=%d(" % (file, lines["outer_call"], lines["outer_def"])) in raw

    done, ready = results["speedscope"]
    doc = speedscope_load(ss, schema)
    main = [p for p in doc["profiles"] if p["name"].startswith("Thread %d " % ready["pid"])]
    assert len(main) == 1 and ('"%s"' % thread) in main[0]["name"], main
    found = [(st, w) for st, w in stacks(doc, main[0])
             if st[-2:] == [{"name": inner, "file": file, "line": lines["inner_sleep"]},
                            {"name": "[sleep]"}]]
    assert len(found) == 1, stacks(doc, main[0])
    st, w = found[0]
    assert st[-3]["name"].startswith("long_" + "\u00e9" * 200) and st[-3]["file"] == file
    assert abs(w / 1e9 - done["slept"]) <= 0.05 * done["slept"]
