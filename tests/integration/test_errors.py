# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Bad input: a clear one-line error and a non-zero exit, never a crash or hang."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import HANGTRACE, SCENARIOS, Target, Tracer, requires_root
from pythons import interpreters

PY = interpreters()[-1]


def run(args, env=None, timeout=30, **kw):
    p = subprocess.run([HANGTRACE] + args, capture_output=True, text=True, timeout=timeout,
                       env=env, **kw)
    return p.returncode, p.stdout, p.stderr


def one_line_error(err, *words):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one line, got %r" % err
    assert lines[0].startswith("hangtrace: error: "), lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


@requires_root
def test_no_such_pid():
    pid = dead_pid()
    rc, out, err = run(["-p", str(pid), "-d", "1"])
    assert rc == 1 and out == ""
    one_line_error(err, "no such process", str(pid))


@requires_root
def test_not_python(procs):
    p = subprocess.Popen(["sleep", "30"])
    try:
        rc, out, err = run(["-p", str(p.pid), "-d", "1"])
    finally:
        p.kill()
        p.wait()
    assert rc == 1 and out == ""
    one_line_error(err, "not a CPython process", "sleep")


@requires_root
def test_unsupported_version():
    py27 = os.path.expanduser("~/.pyenv/versions/2.7.18/bin/python2.7")
    if not os.path.exists(py27):
        pytest.skip("no Python 2.7 here to stand for an unsupported version")
    p = subprocess.Popen([py27, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.3)
        rc, out, err = run(["-p", str(p.pid), "-d", "1"])
    finally:
        p.kill()
        p.wait()
    assert rc == 1 and out == ""
    one_line_error(err, "2.7", "does not support")


def test_not_root():
    if not shutil.which("setpriv"):
        pytest.skip("setpriv missing")
    if os.geteuid() == 0:
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    else:
        prefix = []
    p = subprocess.run(prefix + [HANGTRACE, "-p", str(os.getpid()), "-d", "1"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and p.stdout == ""
    one_line_error(p.stderr, "needs root")


@requires_root
def test_no_btf():
    env = dict(os.environ, HANGTRACE_SYS_BTF="/nonexistent/vmlinux")
    rc, out, err = run(["-p", str(os.getpid()), "-d", "1"], env=env)
    assert rc == 1 and out == ""
    one_line_error(err, "no BTF", "CONFIG_DEBUG_INFO_BTF")


@pytest.mark.parametrize("args, words", [
    (["-p", "abc"], ["invalid PID 'abc'"]),
    (["-p", "0"], ["invalid PID '0'"]),
    (["-p", "-5"], ["invalid PID '-5'"]),
    (["-p", "1", "-d", "soon"], ["invalid --duration"]),
    (["-p", "1", "--format", "xml"], ["invalid --format 'xml'"]),
    (["-p", "1", "--min-block", "-1"], ["invalid --min-block"]),
    ([], ["no process given"]),
])
def test_bad_arguments(args, words):
    rc, out, err = run(args)
    assert rc == 2 and out == ""
    one_line_error(err, *words)


@requires_root
def test_process_exits_during_tracing(procs):
    t = Target(PY.argv + [str(SCENARIOS), "sleep", "0.5"])
    procs.append(t)
    tr = Tracer(t.pid, duration="30")
    procs.append(tr)
    t.trigger()
    t.wait_done()
    t.kill()  # exits while traced
    out = tr.p.stdout.read()
    rc = tr.p.wait(timeout=10)
    tr.err.t.join(5)
    assert rc == 0, "".join(tr.err.all)
    report = json.loads(out)
    assert report["target"]["exited"] is True
    naps = [b for b in report["blockers"] if b["stack"] and b["stack"][0]["function"] == "nap"]
    assert naps and abs(naps[0]["total_s"] - 0.5) < 0.05, report["blockers"]
    assert "exited during tracing" in "".join(tr.err.all)


@requires_root
def test_sigterm_writes_report_within_a_second(procs, tmp_path):
    t = Target(PY.argv + [str(SCENARIOS), "sleep", "0.3"])
    procs.append(t)
    out = tmp_path / "r.json"
    tr = Tracer(t.pid, args=["-o", str(out)], duration="60")
    procs.append(tr)
    t.trigger()
    t.wait_done()
    t0 = time.monotonic()
    os.kill(tr.pid, signal.SIGTERM)
    rc = tr.p.wait(timeout=5)
    assert time.monotonic() - t0 < 1.0
    assert rc == 0
    report = json.loads(out.read_text())
    assert any(b["stack"] and b["stack"][0]["function"] == "nap" for b in report["blockers"])
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left
