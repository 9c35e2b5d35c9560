# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Bad input and signals: hangtrace -p and hangtrace dump -p never crash or hang.

Each case is a real process (targets/hostile_scenarios.py, an interpreter stripped of its
symbols, a kernel thread, a zombie, a process in its own PID namespace...)
and a real hangtrace; the answer is either one clear error line with a
non-zero exit or a correct (possibly degraded) report.  Every process started
is killed by pid; a stopped target gets SIGCONT in a finally.
"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import HANGTRACE, TARGETS, Target, Tracer, marker_line, requires_root
from pythons import ids, interpreters

pytestmark = requires_root
HOSTILE = TARGETS / "hostile_scenarios.py"
PYS = interpreters()
PY = PYS[-1]
DEBIAN = next((p for p in PYS if p.kind == "debian"), None)
# code.replace() (the hostile names) exists from 3.8
NAMED = [p for p in PYS if p.version[:2] >= (3, 8)]
NAMED = [p for p in (DEBIAN, NAMED[-1] if NAMED else None) if p]


def run(args, env=None, timeout=60):
    p = subprocess.run([HANGTRACE] + args, capture_output=True, text=True, timeout=timeout,
                       env=env)
    return p.returncode, p.stdout, p.stderr


def one_line_error(err, *words):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one line, got %r" % err
    assert lines[0].startswith("hangtrace: error: "), lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])


def hostile(procs, py, scenario, arg="1", prefix=(), env=None):
    t = Target(list(prefix) + py.argv + [str(HOSTILE), scenario, str(arg)], env=env)
    procs.append(t)
    return t


def at(function, marker):
    return {"function": function, "file": str(HOSTILE), "line": marker_line(HOSTILE, marker)}


def dump(pid, fmt="json", env=None, args=()):
    rc, out, err = run(["dump", "-p", str(pid), "--format", fmt] + list(args), env=env)
    assert rc == 0, "hangtrace dump exited %d: %s" % (rc, err)
    return json.loads(out) if fmt == "json" else out


def naps(report):
    return [b for b in report["blockers"] if b["stack"] and b["stack"][0] == at("nap", "nap")]


def traced_nap(procs, pid, target, seconds, args=(), env=None):
    """Trace @pid, let @target nap @seconds, check the nap blocker against its own clock."""
    tr = Tracer(pid, args=args)
    procs.append(tr)
    target.trigger()
    slept = target.wait_done()["slept"]
    time.sleep(0.2)
    rep = tr.stop()
    found = naps(rep)
    assert found, json.dumps(rep["blockers"], indent=1)[:4000]
    assert abs(found[0]["total_s"] - slept) < 0.05 and found[0]["reason"] == "sleep", found[0]
    return rep


# --- PIDs that are not a Python process ----------------------------------

def kthreadd_pid():
    with open("/proc/2/stat") as f:
        if "(kthreadd)" not in f.read():
            pytest.skip("pid 2 is not kthreadd here")
    return 2


@pytest.mark.parametrize("cmd", [["-d", "1"], ["dump"]], ids=["trace", "dump"])
def test_kernel_thread(cmd):
    pid = kthreadd_pid()
    args = (["dump", "-p", str(pid)] if cmd == ["dump"] else ["-p", str(pid)] + cmd)
    rc, out, err = run(args)
    assert rc == 1 and out == ""
    one_line_error(err, "process 2 is a kernel thread")


def zombie():
    p = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return p


def test_zombie_trace():
    p = zombie()
    try:
        rc, out, err = run(["-p", str(p.pid), "-d", "1"])
    finally:
        p.wait()
    assert rc == 1 and out == ""
    one_line_error(err, "process %d is a zombie" % p.pid)


@pytest.mark.parametrize("pid", ["0", "-5", "abc", "12abc", "99999999999"])
def test_dump_bad_pid(pid):
    rc, out, err = run(["dump", "-p", pid])
    assert rc == 2 and out == ""
    one_line_error(err, "invalid PID '%s'" % pid)


def test_trace_bad_pid_huge():
    rc, out, err = run(["-p", "99999999999"])
    assert rc == 2 and out == ""
    one_line_error(err, "invalid PID '99999999999'")


def test_dump_not_root():
    if not shutil.which("setpriv"):
        pytest.skip("setpriv missing")
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                        HANGTRACE, "dump", "-p", str(os.getpid())],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and p.stdout == ""
    one_line_error(p.stderr, "needs root")


@pytest.mark.parametrize("cmd", [["-d", "1"], ["dump"]], ids=["trace", "dump"])
def test_root_without_bpf_capabilities(cmd, procs):
    if not shutil.which("capsh"):
        pytest.skip("capsh missing")
    t = hostile(procs, PY, "sleeper")
    args = ["dump", "-p", str(t.pid)] if cmd == ["dump"] else ["-p", str(t.pid)] + cmd
    p = subprocess.run(["capsh", "--drop=cap_bpf,cap_perfmon,cap_sys_admin", "--", "-c",
                        " ".join([HANGTRACE] + args)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and p.stdout == ""
    one_line_error(p.stderr, "needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)")


def test_dump_no_btf(procs):
    t = hostile(procs, PY, "sleeper")
    env = dict(os.environ, HANGTRACE_SYS_BTF="/nonexistent/vmlinux")
    rc, out, err = run(["dump", "-p", str(t.pid)], env=env)
    assert rc == 1 and out == ""
    one_line_error(err, "no BTF", "CONFIG_DEBUG_INFO_BTF")


def test_no_tracefs(procs):
    """The programs are tp_btf: no tracefs (nor debugfs) is needed."""
    if not shutil.which("unshare"):
        pytest.skip("unshare missing")
    t = hostile(procs, PY, "sleeper", "0.5")
    script = ("for m in /sys/kernel/tracing /sys/kernel/debug/tracing /sys/kernel/debug; do "
              "umount -l $m 2>/dev/null; done; "
              "if grep -qE ' (tracefs|debugfs) ' /proc/self/mounts; then echo STILL; exit 3; fi; "
              "exec %s -p %d -d 30 --format json" % (HANGTRACE, t.pid))
    before = _trace_mounts()
    p = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not any("tracing process" in l for l in _stderr_lines(p)):
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read()
        t.trigger()
        slept = t.wait_done()["slept"]
        time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    found = naps(json.loads(out))
    assert found and abs(found[0]["total_s"] - slept) < 0.05
    assert _trace_mounts() == before  # the machine kept its own mounts


def _trace_mounts():
    with open("/proc/self/mounts") as f:
        return [l for l in f if " tracefs " in l or " debugfs " in l]


def _stderr_lines(p):
    line = p.stderr.readline()
    return [line] if line else []


# --- CPython with no symbols ---------------------------------------------

def _hide_symbols(src, dst):
    """Copy @src to @dst, strip it, and rename the symbols hangtrace could look up."""
    shutil.copy(src, dst)
    subprocess.run(["strip", "--strip-all", dst], check=True)
    with open(dst, "rb") as f:
        data = bytearray(f.read())
    for name in (b"_PyRuntime\0", b"Py_Version\0", b"PyInterpreterState_Head\0"):
        for m in re.finditer(re.escape(name), bytes(data)):
            data[m.end() - 2] = ord("X")
    with open(dst, "wb") as f:
        f.write(data)
    os.chmod(dst, 0o755)
    out = subprocess.run(["nm", "-D", dst], capture_output=True, text=True).stdout
    assert not re.search(r" (_PyRuntime|Py_Version|PyInterpreterState_Head)$", out, re.M)


def _stripped_targets(tmp_path):
    """(label, argv prefix, env) for interpreters with no symbols."""
    out = []
    if DEBIAN:
        # a static build: the executable itself, renamed so its name says nothing
        exe = str(tmp_path / "py-nosyms")
        _hide_symbols(DEBIAN.executable, exe)
        out.append(("static-3.11", [exe], None))
    for py in PYS:
        if py.kind != "pyenv" or py.version[:2] < (3, 10):
            continue
        lib = os.path.join(os.path.dirname(os.path.dirname(py.executable)), "lib",
                           "libpython%s.so.1.0" % py.minor)
        if not os.path.exists(lib):
            continue
        # a shared-libpython build: stripped exe and libpython (it must keep the
        # dynamic symbols it links against itself, so only strip --strip-all)
        d = tmp_path / ("shared-" + py.minor)
        d.mkdir()
        shutil.copy(py.executable, d / "python")
        shutil.copy(lib, d / os.path.basename(lib))
        subprocess.run(["strip", "--strip-all", str(d / "python"),
                        str(d / os.path.basename(lib))], check=True)
        env = dict(os.environ, LD_LIBRARY_PATH=str(d),
                   PYTHONHOME=os.path.dirname(os.path.dirname(py.executable)))
        out.append(("shared-" + py.minor, [str(d / "python")], env))
    sid = [p for p in PYS if p.kind == "sid" and p.version[:2] >= (3, 13)]
    if sid:
        # 3.13+: found by the _Py_DebugOffsets cookie in the .PyRuntime section
        py = sid[-1]
        root = os.path.join(os.path.dirname(os.path.dirname(py.argv[0])), "root")
        exe = str(tmp_path / "sid-nosyms")
        _hide_symbols(os.path.join(root, "usr/bin/python%s" % py.minor), exe)
        ld = os.path.join(root, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
        env = dict(os.environ, PYTHONHOME=os.path.join(root, "usr"))
        out.append(("sid-" + py.minor, [ld, "--inhibit-cache", "--library-path",
                                          os.path.join(root, "usr/lib/x86_64-linux-gnu"), exe],
                    env))
    return out


def test_interpreter_without_symbols(procs, tmp_path):
    cases = _stripped_targets(tmp_path)
    if not cases:
        pytest.skip("no interpreter to strip")
    print("interpreters without symbols:", [c[0] for c in cases])
    for label, argv, env in cases:
        t = Target(argv + [str(HOSTILE), "sleeper", "0.4"], env=env)
        procs.append(t)
        rep = dump(t.pid)
        main = [x for x in rep["threads"] if x["tid"] == t.pid][0]
        assert main["stack"][0] == at("wait_trigger", "wait_trigger"), (label, main)
        traced_nap(procs, t.pid, t, 0.4)
        t.kill()


# --- processes that go away, or become something else ----------------------

@pytest.mark.parametrize("cmd", ["trace", "dump"])
def test_exits_during_attach(cmd):
    """Whenever the target dies while hangtrace attaches: an error line or a report, never a hang."""
    seen = set()
    for i in range(12):
        delay = 0.2 * i  # from before the load to after the attach
        t = subprocess.Popen(PY.argv + ["-c", "import time; time.sleep(%f)" % (0.15 + delay)])
        try:
            time.sleep(0.1)
            t0 = time.monotonic()
            if cmd == "trace":
                rc, out, err = run(["-p", str(t.pid), "-d", "5", "--format", "json"], timeout=30)
            else:
                rc, out, err = run(["dump", "-p", str(t.pid), "--format", "json"], timeout=30)
            took = time.monotonic() - t0
        finally:
            t.kill()
            t.wait()
        assert rc in (0, 1), (rc, err)
        if rc == 0:
            rep = json.loads(out)
            if cmd == "trace":
                assert rep["target"]["exited"] is True
                assert took < 5, took  # did not wait for the 5 s duration
            seen.add("report")
        else:
            one_line_error(err)
            seen.add(re.sub(r"\d+", "N", err.strip()))
    print("exits during attach (%s), outcomes: %s" % (cmd, sorted(seen)))


@pytest.mark.parametrize("pause", [0.6, 0], ids=["pause", "at-once"])
def test_exec_during_tracing(pause, procs):
    t = Target(PY.argv + [str(HOSTILE), "exec", "0.3", str(pause)])
    procs.append(t)
    tr = Tracer(t.pid, duration="30")
    procs.append(tr)
    t.trigger()
    t0 = time.monotonic()
    out = tr.p.stdout.read()
    rc = tr.p.wait(timeout=10)
    tr.err.t.join(5)
    assert rc == 0, "".join(tr.err.all)
    assert time.monotonic() - t0 < 3
    rep = json.loads(out)
    assert rep["target"]["exec_into"] == os.path.realpath("/bin/sleep")
    assert rep["target"]["exited"] is False
    err = "".join(tr.err.all)
    assert "process %d exec'd %s during tracing" % (t.pid, os.path.realpath("/bin/sleep")) in err
    sleeps = [b for b in rep["blockers"] if b["reason"] == "sleep" and b["count"] == 1 and
              abs(b["total_s"] - 0.3) < 0.05]
    assert sleeps, [(b["reason"], b["total_s"], b["stack"]) for b in rep["blockers"]]
    inner = sleeps[0]["stack"][0]
    if pause:
        assert inner == at("nap", "nap"), sleeps[0]["stack"]
    else:
        # The nap's code object is read when its event is handled, which may be
        # after the exec: then the old memory is gone, and the frame is unnamed
        # (and counted), never read from the new program.
        assert inner == at("nap", "nap") or (
            inner["function"] == "<unknown>" and rep["lost"]["unreadable_code_objects"] > 0), \
            (sleeps[0]["stack"], rep["lost"])
    named = [f for f in sleeps[0]["stack"] if f["function"] != "<unknown>"]
    assert [f["function"] for f in named] in (["nap", "exec_scenario", "<module>"],
                                              ["exec_scenario", "<module>"], ["<module>"], []), \
        sleeps[0]["stack"]
    assert all(f["file"] == str(HOSTILE) for f in named)
    if pause:
        assert len(named) == 3


def test_exec_during_tracing_children(procs):
    """With --children the same exec ends the target's report (one exec hook serves both).

    The session goes on for the descendants; the target, now /bin/sleep, is
    looked at as a new program and listed as not traced, and the session ends
    once nothing is left, well before its duration.
    """
    t = Target(PY.argv + [str(HOSTILE), "exec", "0.3", "0.6"])
    procs.append(t)
    tr = Tracer(t.pid, duration="30", args=["--children"])
    procs.append(tr)
    t.trigger()
    t0 = time.monotonic()
    out = tr.p.stdout.read()
    rc = tr.p.wait(timeout=30)
    took = time.monotonic() - t0
    tr.err.t.join(5)
    err = "".join(tr.err.all)
    assert rc == 0, err
    assert took < 15, took
    rep = json.loads(out)
    sleep = os.path.realpath("/bin/sleep")
    assert rep["target"]["exec_into"] == sleep
    assert rep["target"]["exited"] is False
    assert "process %d exec'd %s during tracing" % (t.pid, sleep) in err
    sleeps = [b for b in rep["blockers"] if b["reason"] == "sleep" and b["count"] == 1 and
              abs(b["total_s"] - 0.3) < 0.05]
    assert sleeps and sleeps[0]["stack"][0] == at("nap", "nap"), \
        [(b["reason"], b["total_s"], b["stack"]) for b in rep["blockers"]]
    assert rep["processes"] == []
    assert [(u["pid"], u["exe"]) for u in rep["untraced"]] == [(t.pid, sleep)], rep["untraced"]
    assert "not a CPython process" in rep["untraced"][0]["why"]


# --- big and deep ---------------------------------------------------------

@pytest.mark.slow
def test_2000_threads(procs):
    n = 2000
    t = hostile(procs, PY, "threads", n)
    t0 = time.monotonic()
    rep = dump(t.pid)
    took_dump = time.monotonic() - t0
    workers = [x for x in rep["threads"] if any(f == at("worker", "worker") for f in x["stack"])]
    assert len(rep["threads"]) == n + 1 and len(workers) == n
    t0 = time.monotonic()
    tr = Tracer(t.pid, duration="60")
    procs.append(tr)
    took_attach = time.monotonic() - t0
    time.sleep(1.0)
    t0 = time.monotonic()
    rep = tr.stop(timeout=60)
    took_report = time.monotonic() - t0
    print("2000 threads: dump %.2f s, attach %.2f s, report %.2f s" % (
        took_dump, took_attach, took_report))
    assert took_dump < 20 and took_attach < 30 and took_report < 30
    assert len(rep["threads"]) == n + 1
    blocked = {b["tid"] for b in rep["blockers"] if b["still_blocked"] and
               any(f == at("worker", "worker") for f in b["stack"])}
    assert len(blocked) == n
    assert sum(rep["lost"].values()) == 0, rep["lost"]


@pytest.mark.parametrize("py", [p for p in (PYS[0], DEBIAN, PY) if p], ids=ids)
def test_deep_recursion_truncates(py, procs):
    t = hostile(procs, py, "deep", 1000)
    deadline = time.monotonic() + 10
    while True:
        rep = dump(t.pid)
        diver = [x for x in rep["threads"] if x["tid"] != t.pid]
        if diver and diver[0]["stack"] and any(f["function"] == "dive" for f in diver[0]["stack"]):
            break
        assert time.monotonic() < deadline, rep
        time.sleep(0.1)
    st = diver[0]["stack"]
    assert len(st) == 129 and st[-1]["function"] == "<truncated>" and st[-1].get("truncated")
    assert sum(f == at("dive", "dive") for f in st) >= 100
    text = dump(t.pid, fmt="text")
    assert "        <truncated>\n" in text
    tr = Tracer(t.pid)
    procs.append(tr)
    time.sleep(0.3)
    rep = tr.stop()
    b = [b for b in rep["blockers"] if b["tid"] == diver[0]["tid"]][0]
    assert b["stack"][-1]["function"] == "<truncated>" and len(b["stack"]) == 129


# --- hostile names --------------------------------------------------------

def _no_terminal_controls(raw):
    """@raw (bytes) is valid UTF-8 with no C0/C1 control or bidi override but \\n."""
    text = raw.decode("utf-8")  # raises on invalid UTF-8
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f or
           c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"]
    assert not bad, sorted(set(bad))


@pytest.mark.parametrize("py", NAMED, ids=ids)
def test_hostile_names(py, procs):
    t = hostile(procs, py, "names")
    names = {k: (bytes.fromhex(v[0]).decode("utf-8", "surrogateescape"),
                 bytes.fromhex(v[1]).decode("utf-8", "surrogateescape"))
             for k, v in t.ready["names"].items()}
    for cmd in (["dump", "-p", str(t.pid)], None):
        if cmd is None:
            tr = Tracer(t.pid, fmt="text")
            procs.append(tr)
            time.sleep(0.3)
            raw = tr.stop().encode("utf-8", "surrogateescape")
        else:
            raw = subprocess.run([HANGTRACE] + cmd, capture_output=True, timeout=60).stdout
        _no_terminal_controls(raw)
        text = raw.decode()
        assert "f\\x1b[2J\\x1b]0;pwned\\x07" in text and "/tmp/esc\\x1b[31mred.py" in text
        assert "h\\u{009b}31m\\u{202e}" in text
        assert 'q"<b>&\'\\' in text
        assert "g\ufffd\ufffd" in text  # lone surrogates: U+FFFD
    for cmd in (["dump", "-p", str(t.pid), "--format", "json"], None):
        if cmd is None:
            tr = Tracer(t.pid)
            procs.append(tr)
            time.sleep(0.3)
            tr.p.send_signal(signal.SIGINT)
            raw = tr.p.stdout.read().encode("utf-8", "surrogateescape")
            assert tr.p.wait(timeout=10) == 0
            frames = [f for b in json.loads(raw)["blockers"] for f in b["stack"]]
        else:
            raw = subprocess.run([HANGTRACE] + cmd, capture_output=True, timeout=60).stdout
            frames = [f for x in json.loads(raw)["threads"] for f in x["stack"]]
        raw.decode("utf-8")  # valid UTF-8
        rep_frames = {(f["function"], f["file"]) for f in frames}
        # exact round trip for what is valid Unicode
        for key in ("esc", "c1", "quotes"):
            assert names[key] in rep_frames, (key, names[key])
        assert ("g\ufffd\ufffd", "/tmp/bad\ufffdname.py") in rep_frames
        long = [f for f in frames if f["function"].startswith("LLLL")]
        assert long and all(c == "L" for c in long[0]["function"].rstrip("."))
        assert long[0]["file"].startswith("/tmp/FFFF")
    # folded (for flame graph tools): one line per stack, valid UTF-8, no controls
    tr = Tracer(t.pid, fmt="folded")
    procs.append(tr)
    time.sleep(0.3)
    tr.p.send_signal(signal.SIGINT)
    raw = tr.p.stdout.read().encode("utf-8", "surrogateescape")
    assert tr.p.wait(timeout=10) == 0
    _no_terminal_controls(raw)
    lines = raw.decode().splitlines()
    assert all(re.match(r"^[^ ].* \d+$", l) for l in lines), lines
    esc = [l for l in lines if "f_[2J_]0_pwned_ (/tmp/esc_[31mred.py:2)" in l]
    quotes = [l for l in lines if "q\"<b>&'\\ (/tmp/q\"<b>.py:2)" in l]
    assert esc and quotes, lines
    # same stack shape, so the same number of fields: nothing split the escaped name
    assert esc[0].count(";") == quotes[0].count(";"), (esc, quotes)


# --- namespaces -----------------------------------------------------------

@pytest.mark.parametrize("py", [p for p in (PYS[0], DEBIAN, PY) if p], ids=ids)
def test_pid_and_mount_namespace(py, procs):
    """unshare --fork --pid --mount-proc python: pid 1 in there, traced by our pid."""
    t = hostile(procs, py, "sleeper", "0.4",
                prefix=["unshare", "--fork", "--pid", "--mount-proc"])
    assert t.ready["pid"] == 1
    with open("/proc/%d/task/%d/children" % (t.pid, t.pid)) as f:
        inner = int(f.read().split()[0])
    procs.append(_Pid(inner))
    rep = dump(inner)
    assert [x["tid"] for x in rep["threads"]] == [inner]
    assert rep["threads"][0]["stack"][0] == at("wait_trigger", "wait_trigger")
    rep = traced_nap(procs, inner, t, 0.4)
    assert {b["tid"] for b in rep["blockers"]} == {inner}


class _Pid:
    def __init__(self, pid):
        self.pid = pid

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- unreadable memory (issue 4) ------------------------------------------

@pytest.mark.parametrize("py", NAMED, ids=ids)
def test_dump_thread_with_unreadable_frames(py, procs):
    t = hostile(procs, py, "names")
    tids = sorted(int(x) for x in os.listdir("/proc/%d/task" % t.pid))
    bad = tids[1]
    env = dict(os.environ, HANGTRACE_FAULT_TIDS=str(bad))
    rep = dump(t.pid, env=env)
    by = {x["tid"]: x for x in rep["threads"]}
    assert by[bad]["stack"] == [] and by[bad]["stack_partial"] is True
    assert "could not be read" in by[bad]["stack_note"]
    for tid in tids:
        if tid != bad:
            assert by[tid]["stack"], by[tid]  # the others are still shown
    text = dump(t.pid, fmt="text", env=env)
    block = text.split("\nThread %d " % bad, 1)[1].split("\nThread ", 1)[0]
    assert "(no Python stack: the memory its thread state points to (its current frame) " \
           "could not be read)" in block
    assert text.count("Event.wait") == len(tids) - 2  # every other worker's stack


# --- signals: hangtrace never hangs ----------------------------------------

def _stop_and_signal(procs, tmp_path, sig, freeze):
    t = hostile(procs, PY, "sleeper", "0.3")
    out = tmp_path / "r.json"
    tr = Tracer(t.pid, args=["-o", str(out)], duration="60")
    procs.append(tr)
    t.trigger()
    t.wait_done()
    if freeze:
        os.kill(t.pid, signal.SIGSTOP)
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        os.kill(tr.pid, sig)
        rc = tr.p.wait(timeout=10)
        took = time.monotonic() - t0
    finally:
        os.kill(t.pid, signal.SIGCONT)
    assert rc == 0, "".join(tr.err.all)
    rep = json.loads(out.read_text())
    assert naps(rep) and abs(naps(rep)[0]["total_s"] - 0.3) < 0.05
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    return took


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_signal_while_target_stopped(sig, procs, tmp_path):
    took = _stop_and_signal(procs, tmp_path, sig, True)
    print("signal to exit, target stopped: %.3f s" % took)
    assert took < 1.0


def test_second_ctrl_c_exits_at_once(procs, tmp_path):
    """2,000 threads make the report take a while; a second Ctrl-C leaves at once."""
    t = hostile(procs, PY, "threads", 2000)
    out = tmp_path / "r.json"
    tr = Tracer(t.pid, args=["-o", str(out)], duration="60")
    procs.append(tr)
    time.sleep(0.5)
    os.kill(tr.pid, signal.SIGINT)
    time.sleep(0.05)
    t0 = time.monotonic()
    os.kill(tr.pid, signal.SIGINT)
    rc = tr.p.wait(timeout=10)
    took = time.monotonic() - t0
    print("second Ctrl-C to exit: %.3f s (rc %d)" % (took, rc))
    assert took < 0.5
    assert rc in (0, 130)
    if rc == 130:
        assert not out.exists()
    else:
        json.loads(out.read_text())
    assert [p.name for p in tmp_path.iterdir()] in ([], ["r.json"])  # no temp file


def test_sigkill_mid_write_never_leaves_a_partial_report(procs, tmp_path):
    """A big report to -o, SIGKILL at random moments: the file is complete or absent."""
    t = hostile(procs, PY, "threads", 1500)
    out = tmp_path / "r.json"
    argv = [HANGTRACE, "-p", str(t.pid), "-d", "0.3", "--format", "json", "-o", str(out)]

    def start():
        p = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        line = p.stderr.readline()
        assert line.startswith("hangtrace: tracing process"), line
        return p, time.monotonic()

    # how long the report takes once tracing ends, to aim the kills at it
    p, live = start()
    p.communicate(timeout=60)
    tail = time.monotonic() - live - 0.3
    size = out.stat().st_size
    out.unlink()
    rng = random.Random(4242)
    outcomes = {"absent": 0, "complete": 0}
    for i in range(12):
        p, live = start()
        try:
            time.sleep(0.3 + rng.uniform(0.0, 1.2) * tail)
            p.kill()
            p.wait()
        finally:
            p.stderr.close()
        names = sorted(x.name for x in tmp_path.iterdir())
        assert names in ([], ["r.json"]), names  # no temp file left behind
        if out.exists():
            rep = json.loads(out.read_text())
            assert len(rep["threads"]) == 1501
            outcomes["complete"] += 1
            out.unlink()
        else:
            outcomes["absent"] += 1
    print("report of %d bytes, %.2f s to build and write; SIGKILL outcomes: %s" % (size, tail, outcomes))


# --- nothing lost silently -------------------------------------------------

def test_drops_are_counted(procs):
    """A tiny ring buffer and tiny maps: the report says how much was lost.

    200 new threads each block once (one aggregate each, for 64 map entries),
    while hangtrace itself is frozen so that its 4 KiB ring buffer cannot drain.
    """
    n = 200
    env = dict(os.environ, HANGTRACE_RINGBUF_SIZE="4096", HANGTRACE_MAP_ENTRIES="64")
    out = {}
    for fmt in ("json", "text"):
        t = hostile(procs, PY, "fanout", n)
        p = subprocess.Popen([HANGTRACE, "-p", str(t.pid), "-d", "60", "--format", fmt],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        procs.append(_Pid(p.pid))
        line = p.stderr.readline()
        assert line.startswith("hangtrace: tracing process"), line + p.stderr.read()
        os.kill(p.pid, signal.SIGSTOP)
        try:
            t.trigger()
            t.wait_done()
        finally:
            os.kill(p.pid, signal.SIGCONT)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out[fmt], err = p.communicate(timeout=30)
        assert p.returncode == 0, err
    rep = json.loads(out["json"])
    lost = rep["lost"]
    assert lost["events"] > 0 and lost["aggregates"] > 0, lost
    # every thread's nap was either aggregated or counted as lost
    kept = {b["tid"] for b in rep["blockers"] if b["stack"] and b["stack"][0] == at("nap", "nap")}
    assert len(kept) <= 64 and len(kept) + lost["aggregates"] >= n, (len(kept), lost)
    assert re.search(r"WARNING: data was lost: [1-9]\d* events, [1-9]\d* aggregates",
                     out["text"]), out["text"][:1500]


@pytest.mark.parametrize("var, value", [
    ("HANGTRACE_RINGBUF_SIZE", "5000"), ("HANGTRACE_RINGBUF_SIZE", "1k"),
    ("HANGTRACE_MAP_ENTRIES", "0"), ("HANGTRACE_MAP_ENTRIES", "-3"),
])
def test_bad_sizes(var, value, procs):
    t = hostile(procs, PY, "sleeper")
    rc, out, err = run(["-p", str(t.pid), "-d", "1"], env=dict(os.environ, **{var: value}))
    assert rc == 1 and out == ""
    one_line_error(err, "invalid %s '%s'" % (var, value))


def test_signal_while_memory_reads_fail(procs, tmp_path):
    """The main thread's frames cannot be read at report time: the report says so, promptly."""
    t = hostile(procs, PY, "sleeper", "0.3")
    out = tmp_path / "r.json"
    env = dict(os.environ, HANGTRACE_FAULT_TIDS=str(t.pid))
    tr = subprocess.Popen([HANGTRACE, "-p", str(t.pid), "-d", "60", "--format", "json", "-o",
                           str(out)], stderr=subprocess.PIPE, text=True, env=env)
    procs.append(_Pid(tr.pid))
    assert tr.stderr.readline().startswith("hangtrace: tracing process")
    t.trigger()
    t.wait_done()
    time.sleep(0.3)
    t0 = time.monotonic()
    tr.send_signal(signal.SIGINT)
    rc = tr.wait(timeout=10)
    took = time.monotonic() - t0
    print("signal to exit, memory reads failing: %.3f s" % took)
    assert rc == 0 and took < 1.0
    rep = json.loads(out.read_text())
    assert naps(rep)  # what BPF read while it ran is there
    parked = [b for b in rep["blockers"] if b["still_blocked"] and b["tid"] == t.pid]
    assert parked and parked[0]["stack"] == [] and parked[0]["stack_partial"] is True, parked


def test_binary_only_in_the_targets_mount_namespace(procs, tmp_path):
    """The interpreter runs from a tmpfs mounted in its own mount namespace only."""
    if not DEBIAN:
        pytest.skip("needs the static Debian python")
    d = tmp_path / "private"
    d.mkdir()
    script = ("mount -t tmpfs none {d} && cp {exe} {d}/python3.11 && "
              "exec env PYTHONHOME=/usr {d}/python3.11 {h} sleeper 0.4").format(
                  d=d, exe=DEBIAN.executable, h=HOSTILE)
    t = Target(["unshare", "--fork", "--pid", "--mount-proc", "--mount", "sh", "-c", script])
    procs.append(t)
    with open("/proc/%d/task/%d/children" % (t.pid, t.pid)) as f:
        inner = int(f.read().split()[0])
    procs.append(_Pid(inner))
    assert not (d / "python3.11").exists()  # not in our namespace
    assert os.readlink("/proc/%d/exe" % inner) == str(d / "python3.11")
    rep = dump(inner)
    assert rep["threads"][0]["stack"][0] == at("wait_trigger", "wait_trigger")
    assert rep["target"]["exe"] == str(d / "python3.11")
    traced_nap(procs, inner, t, 0.4)


@pytest.mark.parametrize("py", [p for p in (PYS[0], DEBIAN, PY) if p], ids=ids)
def test_asleep_since_before_attach_then_woken(py, procs):
    """A thread blocked since before attach and woken during the window: its block
    from attach to wake-up is reported, not lost."""
    t = hostile(procs, py, "sleeper", "0.3")
    spawned = time.monotonic()
    tr = Tracer(t.pid, duration="60")
    procs.append(tr)
    live = time.monotonic()
    time.sleep(1.0)
    woken = time.monotonic()
    t.trigger()
    t.wait_done()
    time.sleep(0.2)
    rep = tr.stop()
    b = [b for b in rep["blockers"] if b["stack"] and b["stack"][0] == at("wait_trigger",
                                                                         "wait_trigger")]
    assert b and b[0]["reason"] == "io" and not b[0]["still_blocked"], rep["blockers"]
    # it started when tracing did (between the spawn and the "tracing" line)
    assert woken - live - 0.05 <= b[0]["total_s"] <= woken - spawned + 0.05, (
        b[0]["total_s"], woken - live, woken - spawned)
    main = [x for x in rep["threads"] if x["tid"] == t.pid][0]
    # the main thread never ran but for the nap's edges: off-CPU the whole window
    assert main["off_cpu_s"] >= rep["window"]["duration_s"] - 0.05, main
