# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""--children: descendants forked or spawned after attach, traced with their own
reports (multiprocessing fork/spawn/forkserver, subprocess, uvicorn --workers);
--focus; no children without --children; and `hangtrace run --children`.

Every process is started in its own session and killed by pid at the end:
each descendant found under /proc, then the process group.
"""
import json
import os
import pathlib
import re
import signal
import subprocess
import time
import urllib.request

import pytest

import browser
from conftest import HANGTRACE, Target, Tracer, _Lines, marker_line, requires_root
from pythons import interpreters
from test_flame import FRAMES_JS, by_label, no_markup_from_target
from test_formats import pprof_raw, pprof_top, schema, speedscope_load, stacks  # noqa: F401

pytestmark = requires_root
TARGETS = pathlib.Path(__file__).parent / "targets"
CHILDREN = TARGETS / "children.py"
APPS = TARGETS / "webapps.py"
SYS_PY = "/usr/bin/python3"
NAP = 1.0


def descendants(pid):
    """Every descendant of @pid, depth first, from /proc/PID/task/TID/children."""
    out = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            continue
        for k in kids:
            out.append(k)
            out.extend(descendants(k))
    return out


class FamilyTarget(Target):
    """A Target in its own session (process group); kill() kills its descendants too."""

    def __init__(self, argv, env=None):  # pylint: disable=super-init-not-called
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, start_new_session=True,
                                  env=env)
        self.pid = self.p.pid
        self.out = _Lines(self.p.stdout)
        self.err = _Lines(self.p.stderr)
        line = self.out.wait_for("READY ", 60)
        self.ready = json.loads(line[len("READY "):])

    def send(self, word):
        self.p.stdin.write(word + "\n")
        self.p.stdin.flush()

    def kill(self):
        for pid in [self.pid] + descendants(self.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait(timeout=30)


def debian():
    py = [i for i in interpreters() if i.executable in ("/usr/bin/python3.11", SYS_PY)]
    if not py:
        pytest.skip("Debian's /usr/bin/python3 not found")
    return py[0]


def other_version():
    """One more CPython minor than Debian's, started directly (not through a loader)."""
    for i in interpreters():
        if i.kind == "pyenv" and i.minor == "3.12":
            return i
    pytest.skip("no pyenv CPython 3.12 (tests/fetch-pythons.sh, pyenv)")


def process(report, pid):
    found = [p for p in report["processes"] if p["target"]["pid"] == pid]
    assert found, "process %d not in %s" % (pid, [(p["target"]["pid"], p["target"]["cmdline"])
                                                 for p in report["processes"]])
    return found[0]


def blockers_in(proc, function):
    return [b for b in proc["blockers"] if b["stack"] and b["stack"][0]["function"] == function]


def wait_traced(tracer, pid, how=None, timeout=30):
    """Wait until hangtrace -v says it traces child @pid (@how: "forked", "found")."""
    prefix = "hangtrace: tracing child process %d of " % pid
    deadline = time.monotonic() + timeout
    while True:
        if any(l.startswith(prefix) and (how is None or "(%s," % how in l)
               for l in list(tracer.err.all)):
            return
        if time.monotonic() > deadline:
            raise TimeoutError("hangtrace never traced %d (%s): %r" % (pid, how, tracer.err.all))
        time.sleep(0.02)


def pool_run(procs, py, method, ending, args=("--children", "-v"), fmt="json", extra=()):
    """Pool(2) with @method started after attach; worker 0 naps NAP s in nap_in_child."""
    t = FamilyTarget(py.argv + [str(CHILDREN), "pool", method, ending, str(NAP)] + list(extra))
    procs.append(t)
    tr = Tracer(t.pid, args=list(args), fmt=fmt)
    procs.append(tr)
    t.trigger()
    worker = json.loads(t.out.wait_for("WORKER ", 60)[len("WORKER "):])["pid"]
    if "--children" in args:
        # spawn: a fork that execs; the exec'd image must be the one traced
        wait_traced(tr, worker, "found" if method == "spawn" else None)
    t.send("nap")
    done = t.wait_done(120)
    assert done["pid"] == worker
    time.sleep(0.3)
    return tr.stop(), done, t


def check_nap(proc, done):
    b = max(blockers_in(proc, "nap_in_child"), key=lambda b: b["total_s"], default=None)
    assert b, "no nap_in_child blocker in process %d: %s" % (
        proc["target"]["pid"], json.dumps(proc["blockers"], indent=1)[:3000])
    assert b["reason"] == "sleep"
    assert b["stack"][0]["file"] == str(CHILDREN)
    assert b["stack"][0]["line"] == marker_line(CHILDREN, "child_nap")
    assert abs(b["total_s"] - done["slept"]) <= 0.1 * done["slept"], (b["total_s"], done)
    assert b["tid"] == proc["target"]["pid"]


@pytest.mark.parametrize("method, ending", [("fork", "exit"), ("spawn", "keep"),
                                            ("forkserver", "exit")])
def test_pool_debian(procs, method, ending):
    report, done, t = pool_run(procs, debian(), method, ending)
    proc = process(report, done["pid"])
    check_nap(proc, done)
    assert proc["target"]["ppid"] != 0
    assert proc["target"]["python"] == report["target"]["python"]
    assert proc["target"]["exited"] == (ending == "exit")
    # the nap belongs to the worker, not to the parent
    assert not blockers_in(report, "nap_in_child")
    assert report["target"]["pid"] == t.pid and "ppid" not in report["target"]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_other_version(procs, method):
    py = other_version()
    report, done, _ = pool_run(procs, py, method, "exit" if method == "fork" else "keep")
    proc = process(report, done["pid"])
    check_nap(proc, done)
    assert proc["target"]["python"] == py.release


def test_without_children_nothing_of_them(procs):
    report, done, t = pool_run(procs, debian(), "fork", "keep", args=())
    assert report["processes"] == []
    assert report["untraced"] == []
    assert report["target"]["pid"] == t.pid
    assert all(b["tid"] in [th["tid"] for th in report["threads"]] for b in report["blockers"])
    assert not blockers_in(report, "nap_in_child")
    # the parent itself is still traced: it waited for the pool's result
    assert report["blockers"]


def test_subprocess_python_and_untraced(procs):
    py = debian()
    t = FamilyTarget(py.argv + [str(CHILDREN), "subprocess", str(NAP)])
    procs.append(t)
    tr = Tracer(t.pid, args=["--children", "-v"])
    procs.append(tr)
    t.trigger()
    worker = json.loads(t.out.wait_for("WORKER ", 60)[len("WORKER "):])["pid"]
    wait_traced(tr, worker, "found")
    t.send("nap")
    done = t.wait_done(60)
    time.sleep(0.3)
    report = tr.stop()
    proc = process(report, worker)
    check_nap(proc, done)
    assert proc["target"]["exited"]
    # /bin/sleep is not Python: listed as untraced, with why, not as a process
    sleeps = [u for u in report["untraced"] if u["exe"] and u["exe"].endswith("/sleep")]
    assert sleeps, report["untraced"]
    assert "not a CPython process" in sleeps[0]["why"]
    assert sleeps[0]["ppid"] == t.pid
    assert all(p["target"]["pid"] != sleeps[0]["pid"] for p in report["processes"])


def test_untraced_hostile_name_escaped(procs, tmp_path):
    """A descendant's exe name comes from the target: escaped in the text report."""
    name = b"sl\x1b[31meep \"<x>\" \xff\xfe\nz"
    hostile = bytes(tmp_path) + b"/" + name
    with open("/bin/sleep", "rb") as src, open(hostile, "wb") as dst:
        dst.write(src.read())
    os.chmod(hostile, 0o755)
    env = os.environb.copy()
    env[b"HANGTRACE_SLEEP"] = hostile
    t = FamilyTarget(debian().argv + [str(CHILDREN), "subprocess", "0.2"], env=env)
    procs.append(t)
    tr = Tracer(t.pid, args=["--children", "-v"], fmt="text")
    procs.append(tr)
    t.trigger()
    t.out.wait_for("WORKER ", 60)
    t.send("nap")
    t.wait_done(60)
    out = tr.stop()
    assert "\x1b" not in out and "\x1b" not in "".join(tr.err.all)
    lines = [l for l in out.splitlines() if l.startswith("  process ") and "\\x1b[31meep" in l]
    assert lines and "not a CPython process" in lines[0], out[-2000:]
    assert '\\x0az' in lines[0] and '\\xff\\xfe' in lines[0] and '"<x>"' in lines[0]


@pytest.mark.parametrize("when", ["workers-start-after-attach", "workers-already-running"])
def test_uvicorn_workers(procs, when):
    pytest.importorskip("uvicorn")
    t = FamilyTarget([SYS_PY, str(APPS), "workers"])
    procs.append(t)

    def started_workers():
        pids = []
        for _ in range(2):
            line = t.err.wait_for("INFO:     Started server process [", 60)
            pids.append(int(line.split("[")[1].split("]")[0]))
        return pids

    if when == "workers-already-running":
        t.trigger()
        workers = started_workers()
        tr = Tracer(t.pid, args=["--children", "-v"])
        procs.append(tr)
    else:
        tr = Tracer(t.pid, args=["--children", "-v"])
        procs.append(tr)
        t.trigger()
        workers = started_workers()
    for w in workers:
        wait_traced(tr, w, "found")
    port = t.ready["port"]
    with urllib.request.urlopen("http://127.0.0.1:%d/block" % port, timeout=30) as r:
        answer = json.loads(r.read())
    assert answer["pid"] in workers
    other = [w for w in workers if w != answer["pid"]][0]
    time.sleep(0.3)
    report = tr.stop()

    proc = process(report, answer["pid"])
    assert proc["target"]["ppid"] == t.pid
    stalls = [s for s in proc["stalls"] if s["tid"] == answer["pid"]]
    blocked = answer["blocked"]
    near = [s for s in stalls if abs(s["duration_s"] - blocked) <= max(0.1 * blocked, 0.005)]
    assert near, "no stall of %.3f s in %s" % (blocked, stalls)
    b = proc["blockers"][near[0]["blocker"]]
    assert b["reason"] == "sleep" and b["event_loop"]
    assert b["stack"][0] == {"function": "blocking_handler", "file": str(APPS),
                             "line": marker_line(APPS, "worker_sleep")}
    assert "asyncio.sleep()" in b["hint"]
    # the other worker served nothing: no stall at all
    assert process(report, other)["stalls"] == []
    # and the supervisor has no stall of its own either
    assert report["stalls"] == []


def test_gunicorn_workers(procs):
    pytest.importorskip("gunicorn")
    t = FamilyTarget([SYS_PY, str(APPS), "gunicorn"])
    procs.append(t)
    tr = Tracer(t.pid, args=["--children", "-v"])
    procs.append(tr)
    t.trigger()
    workers = []
    for _ in range(2):
        line = t.err.wait_for("[", 60)
        while "Booting worker with pid: " not in line:
            line = t.err.wait_for("[", 60)
        workers.append(int(line.rsplit(" ", 1)[1]))
    for w in workers:
        wait_traced(tr, w, "forked")
    port = t.ready["port"]
    with urllib.request.urlopen("http://127.0.0.1:%d/block" % port, timeout=30) as r:
        answer = json.loads(r.read())
    assert answer["pid"] in workers
    other = [w for w in workers if w != answer["pid"]][0]
    time.sleep(0.3)
    report = tr.stop()

    proc = process(report, answer["pid"])
    b = max(blockers_in(proc, "gunicorn_block"), key=lambda b: b["total_s"], default=None)
    assert b, json.dumps(proc["blockers"], indent=1)[:3000]
    assert b["reason"] == "sleep"
    assert b["stack"][0]["file"] == str(APPS)
    assert b["stack"][0]["line"] == marker_line(APPS, "gunicorn_sleep")
    assert abs(b["total_s"] - answer["blocked"]) <= 0.1 * answer["blocked"], (b, answer)
    assert not blockers_in(process(report, other), "gunicorn_block")
    assert not blockers_in(report, "gunicorn_block")


def test_focus_keeps_and_drops(procs):
    report, done, t = pool_run(procs, debian(), "fork", "keep",
                               args=("--children", "-v", "--focus", "^nap_in_child$"))
    assert report["window"]["focus"] == "^nap_in_child$"
    # the parent never ran nap_in_child: every one of its blockers is dropped
    assert report["blockers"] == []
    assert all(s["blocker"] is None for s in report["stalls"])
    proc = process(report, done["pid"])
    check_nap(proc, done)
    for p in report["processes"]:
        assert p["window"]["focus"] == "^nap_in_child$"
        for b in p["blockers"]:
            assert "nap_in_child" in [f["function"] for f in b["stack"]], b
    # the threads' totals are not filtered
    assert any(th["off_cpu_s"] > 0 for th in report["threads"])


def test_focus_folded_children(procs):
    out, done, t = pool_run(procs, debian(), "fork", "keep",
                            args=("--children", "-v", "--what", "all",
                                  "--focus", r"children\.py$"),
                            fmt="folded")
    lines = out.splitlines()
    assert lines
    # every stack kept has a frame in children.py
    assert all("children.py:" in l for l in lines), [l for l in lines if "children.py:" not in l]
    nap = [l for l in lines if l.startswith("python-%d;" % done["pid"]) and
           "nap_in_child (%s:%d)" % (CHILDREN, marker_line(CHILDREN, "child_nap")) in l and
           l.split(" ")[-2].endswith(";[sleep]")]
    assert nap, lines
    us = sum(int(l.rsplit(" ", 1)[1]) for l in nap)
    assert abs(us / 1e6 - done["slept"]) <= 0.1 * done["slept"], (us, done)
    # the parent's lines are there too, under its own pid
    assert any(l.startswith("python-%d;" % t.pid) for l in lines)


def test_exited_worker_oncpu_stacks_named(procs):
    """A worker's on-CPU samples are named while it lives: after its exit its
    memory is gone, and its profile must still say where it spun."""
    out, done, t = pool_run(procs, debian(), "fork", "exit",
                            args=("--children", "-v", "--what", "oncpu"), fmt="folded",
                            extra=["spin"])
    # the loop is two lines: the while condition and its body (the marker)
    line = marker_line(CHILDREN, "child_spin")
    spin = ["spin_in_child (%s:%d);[on-cpu] " % (CHILDREN, n) for n in (line - 1, line)]
    mine = [l for l in out.splitlines() if l.startswith("python-%d;" % done["pid"])]
    spun = [l for l in mine if any(s in l for s in spin)]
    assert spun, mine
    us = sum(int(l.rsplit(" ", 1)[1]) for l in spun)
    # samples at 199 Hz: within a quarter of the CPU time the worker measured itself
    assert abs(us / 1e6 - done["cpu"]) <= 0.25 * done["cpu"], (us, done)


def test_bad_focus_regex():
    r = subprocess.run([HANGTRACE, "-p", str(os.getpid()), "--focus", "(unclosed"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert err == ["hangtrace: error: invalid --focus '(unclosed': not a POSIX extended "
                   "regular expression"], r.stderr
    assert r.stdout == ""


# --- the profile formats over every process ------------------------------------
def frame_secs(frame):
    """The seconds a drawn flame-graph frame stands for, from its tooltip."""
    return float(re.search(r"^([0-9.]+) s, ", frame["title"], re.M).group(1))


def inside(frame, parent):
    return parent["x"] - 0.01 <= frame["x"] and \
        frame["x"] + frame["w"] <= parent["x"] + parent["w"] + 0.01 and frame["y"] < parent["y"]


@pytest.fixture
def chromium(procs):
    if not browser.available():
        pytest.skip("no %s (Debian package chromium)" % browser.CHROMIUM)
    b = browser.Browser()
    procs.append(b)
    return b


def test_pool_every_profile_format(procs, tmp_path, schema, chromium):
    """--children in pprof, speedscope, svg and html (one hangtrace each, at once, and
    one more with --focus): the worker's nap_in_child() at its line under the worker's
    pid, and the parent's wait for the pool under the parent's, each as long as the
    process measured it itself."""
    formats = ["pprof", "speedscope", "svg", "html", "focus"]
    t = FamilyTarget(debian().argv + [str(CHILDREN), "pool", "fork", "keep", str(NAP)])
    procs.append(t)
    paths, tracers = {}, []
    for fmt in formats:
        paths[fmt] = tmp_path / ("report." + fmt)
        args = ["--children", "-v", "-o", str(paths[fmt])]
        if fmt == "focus":
            args += ["--focus", "^nap_in_child$"]
        tr = Tracer(t.pid, args=args, fmt="pprof" if fmt == "focus" else fmt)
        procs.append(tr)
        tracers.append(tr)
    t.trigger()
    worker = json.loads(t.out.wait_for("WORKER ", 60)[len("WORKER "):])["pid"]
    for tr in tracers:
        wait_traced(tr, worker)
    t.send("nap")
    done = t.wait_done(120)
    assert done["pid"] == worker
    time.sleep(0.3)
    for tr in tracers:
        assert tr.stop() == ""  # everything went to the files
    slept, waited = done["slept"], done["parent_waited"]
    nap = {"function": "nap_in_child", "file": str(CHILDREN),
           "line": marker_line(CHILDREN, "child_nap")}
    wait = {"function": "pool", "file": str(CHILDREN), "line": marker_line(CHILDREN, "parent_wait")}

    def near(value, truth):
        return abs(value - truth) <= 0.1 * truth

    # pprof: go tool pprof reads every process; the pid label tells them apart
    types, samples, raw = pprof_raw(tmp_path, paths["pprof"])

    def at(s, where, leaf=False):
        frames = s["stack"][:1] if leaf else s["stack"]
        return any({k: f[k] for k in ("function", "file", "line")} == where for f in frames)

    naps = [s for s in samples if at(s, nap, leaf=True)]
    assert naps and all(s["labels"]["pid"] == str(worker) for s in naps), raw
    assert all(s["labels"]["reason"] == "sleep" and s["labels"]["tid"] == str(worker)
               for s in naps), naps
    assert near(sum(s["value"]["off_cpu/nanoseconds"] for s in naps) / 1e9, slept), (naps, done)
    waits = [s for s in samples if at(s, wait)]
    assert waits and all(s["labels"]["pid"] == str(t.pid) and s["labels"]["tid"] == str(t.pid)
                         for s in waits), raw
    assert near(sum(s["value"]["off_cpu/nanoseconds"] for s in waits) / 1e9, waited), (waits, done)
    assert re.search(r"^Comment: process %d \(Python [0-9.]+, .*\): .*children\.py pool fork"
                     % t.pid, raw, re.M), raw
    assert re.search(r"^Comment: child process %d of %d \(Python " % (worker, t.pid), raw, re.M), raw
    # -tagfocus on the pid keeps one process
    rows, top = pprof_top(tmp_path, paths["pprof"], "-tagfocus=pid=%d" % worker)
    nap_row = "nap_in_child %s:%d" % (CHILDREN, nap["line"])
    # (the worker has the parent's frames below its own, as forked: not the wait's line)
    wait_row = "pool %s:%d" % (CHILDREN, wait["line"])
    assert nap_row in rows and wait_row not in rows, top
    assert near(rows[nap_row][0] / 1e9, slept), top

    # --focus: only the worker's nap is left, the parent's wait is gone
    _, focused, raw = pprof_raw(tmp_path, paths["focus"])
    assert focused and all(any(f["function"] == "nap_in_child" for f in s["stack"])
                           for s in focused), raw
    assert {s["labels"]["pid"] for s in focused} == {str(worker)}, raw
    assert near(sum(s["value"]["off_cpu/nanoseconds"] for s in focused if at(s, nap, True))
                / 1e9, slept), raw

    # speedscope: a profile per (process, thread, kind), named after the process
    doc = speedscope_load(paths["speedscope"], schema)
    names = [p["name"] for p in doc["profiles"]]
    kid = [p for p in doc["profiles"] if p["name"].startswith('Thread %d "' % worker) and
           p["name"].endswith('(main), child process %d of %d: off-CPU' % (worker, t.pid))]
    parent = [p for p in doc["profiles"] if p["name"].startswith('Thread %d "' % t.pid) and
              p["name"].endswith("(main), process %d: off-CPU" % t.pid)]
    assert len(kid) == 1 and len(parent) == 1, names
    sframe = {"name": nap["function"], "file": nap["file"], "line": nap["line"]}
    got = [w for st, w in stacks(doc, kid[0]) if st[-2:] == [sframe, {"name": "[sleep]"}]]
    assert got and near(sum(got) / 1e9, slept), (stacks(doc, kid[0]), done)
    wframe = {"name": wait["function"], "file": wait["file"], "line": wait["line"]}
    got = [w for st, w in stacks(doc, parent[0]) if wframe in st]
    assert got and near(sum(got) / 1e9, waited), (stacks(doc, parent[0]), done)
    assert "and its child processes" in doc["name"]

    # svg and html: one graph, python-PID for each process, each frame in its own tower
    for fmt in ("svg", "html"):
        page = chromium.open(paths[fmt].as_uri())
        no_markup_from_target(page)
        frames = page.eval(FRAMES_JS)
        towers = {f["label"]: f for f in frames if f["label"].startswith("python-")}
        assert {"python-%d" % t.pid, "python-%d" % worker} <= set(towers), sorted(towers)
        f = by_label(frames, "%s (%s:%d)" % (nap["function"], nap["file"], nap["line"]))
        assert inside(f, towers["python-%d" % worker]), (fmt, f, towers)
        assert near(frame_secs(f), slept), (fmt, f["title"], done)
        w = by_label(frames, "%s (%s:%d)" % (wait["function"], wait["file"], wait["line"]))
        assert inside(w, towers["python-%d" % t.pid]), (fmt, w, towers)
        assert near(frame_secs(w), waited), (fmt, w["title"], done)

    # html: a summary section per process; the top blockers say whose they are
    assert page.eval("document.querySelector('h1').textContent") == "hangtrace: process %d" % t.pid
    assert page.eval("document.querySelector('#ht-process-%d h2').textContent" % worker) == \
        "hangtrace: child process %d of %d" % (worker, t.pid)
    row = page.eval("document.querySelector('#ht-process-%d tr:nth-child(2)').textContent" % worker)
    assert row.startswith("%d (main)" % worker) and "sleep" in row, row
    items = page.eval("Array.from(document.querySelectorAll('#ht-blockers li.ht-blocker'))"
                      ".map(function (li) { return li.textContent; })")
    mine = [li for li in items if "nap_in_child (%s:%d)" % (CHILDREN, nap["line"]) in li]
    assert len(mine) == 1, items
    m = re.match(r"([0-9.]+) s sleep \(\w+\) in thread %d \".*\" of child process %d, "
                 % (worker, worker), mine[0])
    assert m and near(float(m.group(1)), slept), mine[0]


def test_uvicorn_workers_html_timeline(procs, tmp_path, chromium):
    """A stall in one of uvicorn's workers: the html page's timeline has a row for that
    (process, loop thread), its bar as long as the worker measured the block, blamed on
    blocking_handler() at its line; the worker's section has its loop line."""
    pytest.importorskip("uvicorn")
    t = FamilyTarget([SYS_PY, str(APPS), "workers"])
    procs.append(t)
    out = tmp_path / "report.html"
    tr = Tracer(t.pid, args=["--children", "-v", "-o", str(out)], fmt="html")
    procs.append(tr)
    t.trigger()
    workers = []
    for _ in range(2):
        line = t.err.wait_for("INFO:     Started server process [", 60)
        workers.append(int(line.split("[")[1].split("]")[0]))
    for w in workers:
        wait_traced(tr, w, "found")
    with urllib.request.urlopen("http://127.0.0.1:%d/block" % t.ready["port"], timeout=30) as r:
        answer = json.loads(r.read())
    assert answer["pid"] in workers
    time.sleep(0.3)
    assert tr.stop() == ""
    w, blocked = answer["pid"], answer["blocked"]

    page = chromium.open(out.as_uri())
    no_markup_from_target(page)
    loop = page.eval("document.querySelector('#ht-process-%d .ht-loop[data-pid=\"%d\"]"
                     "[data-tid=\"%d\"]').textContent" % (w, w, w))
    assert re.search(r"event loop: [1-9]\d* stalls? >= ", loop), loop
    bars = page.eval("""Array.from(document.querySelectorAll('#ht-timeline .ht-bar')).map(function (r) {
        return {pid: +r.getAttribute('data-pid'), tid: +r.getAttribute('data-tid'),
                dur: +r.getAttribute('data-dur-ns'), y: +r.getAttribute('y'),
                title: r.querySelector('title').textContent}; })""")
    mine = [b for b in bars if b["pid"] == w and b["tid"] == w and
            abs(b["dur"] / 1e9 - blocked) <= max(0.1 * blocked, 0.005)]
    assert mine, (bars, answer)
    where = "blocking_handler (%s:%d)" % (APPS, marker_line(APPS, "worker_sleep"))
    assert "blamed on: sleep" in mine[0]["title"] and " in " + where in mine[0]["title"], mine[0]
    assert "in thread %d of process %d" % (w, w) in mine[0]["title"], mine[0]
    # its row is labelled with the worker's pid and tid
    rows = page.eval("""Array.from(document.querySelectorAll('#ht-timeline text.ht-row')).map(
        function (t) { return {pid: +t.getAttribute('data-pid'), tid: +t.getAttribute('data-tid'),
                               text: t.textContent}; })""")
    assert any(r["pid"] == w and r["tid"] == w and r["text"].startswith("pid %d: " % w)
               for r in rows), rows
    # no other process stalled: every bar is the worker's
    assert all(b["pid"] == w for b in bars), bars


RUN_POOL = TARGETS / "run_pool.py"


class RunFamily:
    """`hangtrace run ARGS -- CMD` in its own session; kill() kills the
    command's descendants, the command, then hangtrace, by pid."""

    def __init__(self, args, cmd):
        self.p = subprocess.Popen([HANGTRACE, "run"] + args + ["--"] + cmd,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.pid = self.p.pid
        self.out = _Lines(self.p.stdout)
        self.err = _Lines(self.p.stderr)

    def send(self, word):
        self.p.stdin.write(word + "\n")
        self.p.stdin.flush()

    def kill(self):
        # the command first: hangtrace killed first would continue a held command
        for pid in descendants(self.pid) + [self.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.p.wait(timeout=30)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_run_children_pool(procs, tmp_path, method):
    """`hangtrace run --children -- python run_pool.py`: the pool's worker
    naps at children.py's @child_nap line; it has its own report, the
    command's report does not have the nap, and run exits with the command's
    status once the command (and its workers) ended."""
    py = debian()
    out = tmp_path / "r.json"
    r = RunFamily(["--children", "-v", "--format", "json", "-o", str(out)],
                  py.argv + [str(RUN_POOL), method, str(NAP)])
    procs.append(r)
    cmd_pid = json.loads(r.out.wait_for("READY ", 60)[len("READY "):])["pid"]
    worker = json.loads(r.out.wait_for("WORKER ", 60)[len("WORKER "):])["pid"]
    # a forked worker is traced from its first instruction; a spawned one once found
    wait_traced(r, worker, "found" if method == "spawn" else "forked")
    r.send("nap")
    done = json.loads(r.out.wait_for("DONE ", 120)[len("DONE "):])
    assert done["pid"] == worker
    assert r.p.wait(timeout=120) == 0, "".join(r.err.all)
    report = json.loads(out.read_text())
    assert report["target"]["pid"] == cmd_pid
    assert report["target"]["exited"] is True
    proc = process(report, worker)
    check_nap(proc, done)
    assert proc["target"]["ppid"] != 0
    assert proc["target"]["exited"] is True
    assert proc["target"]["python"] == report["target"]["python"]
    assert not blockers_in(report, "nap_in_child")
    # the command's exit is the normal end of `run`: no "exited during tracing"
    assert not [l for l in r.err.all if "exited during tracing; reporting" in l], r.err.all
