# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""`hangtrace run -- CMD`: traced from the first line, short programs, wrappers,
signals passed on, exit statuses, errors, and the live status line.

Every command runs for real under a real hangtrace; each test kills what it
started by pid, and checks that no command is ever left stopped.
"""
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import pythons  # noqa: E402
from conftest import HANGTRACE, blockers_with, marker_line, requires_root  # noqa: E402

pytestmark = requires_root

# The scripts run on every interpreter: Python 3.6 syntax, no f-strings.
FIRST_LINE = """\
__import__("time").sleep(0.4)  # @first
import time
t0 = time.monotonic()
time.sleep(0.3)  # @second
print("MEASURED %.6f" % (time.monotonic() - t0), flush=True)
"""

SHORT = """\
import time


def wait_briefly():
    t0 = time.monotonic()
    time.sleep(0.15)  # @brief
    return time.monotonic() - t0


print("MEASURED %.6f" % wait_briefly(), flush=True)
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def run(args, timeout=90, **kw):
    """hangtrace run ARGS; (returncode, stdout, stderr)."""
    p = subprocess.Popen([HANGTRACE, "run"] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise
    return p.returncode, out, err


def measured(out):
    m = re.search(r"^MEASURED ([0-9.]+)$", out, re.M)
    assert m, "the script did not finish: %r" % out
    return float(m.group(1))


def assert_block(report, script, marker, function, truth, reason="sleep"):
    """The blocker at @script:@marker in @function, lasting @truth (the
    script's own measure) within the sleep's scheduling slack."""
    line = marker_line(script, marker)
    found = [b for b in blockers_with(report, function) if b["stack"][0]["line"] == line]
    assert found, "no blocker in %s at line %d: %s" % (function, line, json.dumps(
        report["blockers"], indent=1)[:3000])
    b = max(found, key=lambda x: x["total_s"])
    top = b["stack"][0]
    assert os.path.basename(top["file"]) == os.path.basename(script)
    assert b["reason"] == reason
    # the kernel's off-CPU interval lies inside the script's own measure
    assert truth - 0.05 <= b["total_s"] <= truth + 0.005, (b["total_s"], truth)
    return b


def pid_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def kill_pid(pid):
    if pid and pid_state(pid) not in (None, "Z"):
        os.kill(pid, signal.SIGKILL)


# --- on every interpreter ----------------------------------------------------


@pytest.mark.parametrize("py", pythons.interpreters(), ids=pythons.ids)
def test_first_line_is_traced(py, tmp_path):
    """The main module's very first statement blocks: it is in the report."""
    script = write(tmp_path, "first.py", FIRST_LINE)
    report_path = tmp_path / "r.json"
    rc, out, err = run(["--format", "json", "-o", str(report_path), "--"] + py.cmd(script),
                       cwd=str(tmp_path))
    assert rc == 0, err
    report = json.loads(report_path.read_text())
    blocks = [b for b in report["blockers"] if b["stack"]
              and b["stack"][0]["line"] == marker_line(script, "first")]
    assert blocks, json.dumps(report["blockers"], indent=1)[:3000]
    b = blocks[0]
    assert b["stack"][0]["function"] == "<module>"
    assert os.path.basename(b["stack"][0]["file"]) == "first.py"
    assert b["reason"] == "sleep"
    # time.sleep(0.4) sleeps at least 0.4 s; all of it inside the traced window
    assert 0.4 - 0.002 <= b["total_s"] <= report["window"]["duration_s"]
    assert_block(report, script, "second", "<module>", measured(out))
    assert "hangtrace: tracing process" in err


@pytest.mark.parametrize("py", pythons.interpreters(), ids=pythons.ids)
def test_short_program(py, tmp_path):
    """A 0.2 s program: its blocking function and line are named."""
    script = write(tmp_path, "short.py", SHORT)
    report_path = tmp_path / "r.json"
    t0 = time.monotonic()
    rc, out, err = run(["-q", "--format", "json", "-o", str(report_path), "--"] + py.cmd(script),
                       cwd=str(tmp_path))
    assert rc == 0, err
    assert err == ""  # -q: nothing on stderr
    report = json.loads(report_path.read_text())
    truth = measured(out)
    assert_block(report, script, "brief", "wait_briefly", truth)
    assert report["window"]["duration_s"] < time.monotonic() - t0


# --- wrappers, statuses, errors ------------------------------------------------


def some_python():
    found = pythons.interpreters()
    if not found:
        pytest.skip("no interpreter")
    # the newest pyenv or Debian one: a plain ELF executable
    plain = [i for i in found if i.kind != "sid"]
    return (plain or found)[-1]


def test_wrapper_exec(tmp_path):
    """`env python script` and a #! script: the python exec'd later is traced."""
    py = some_python()
    script = write(tmp_path, "short.py", SHORT)
    report_path = tmp_path / "r.json"
    rc, out, err = run(["-q", "--format", "json", "-o", str(report_path), "--",
                        "/usr/bin/env", "PYTHONDONTWRITEBYTECODE=1"] + py.cmd(script))
    assert rc == 0, err
    assert_block(json.loads(report_path.read_text()), script, "brief", "wait_briefly",
                 measured(out))

    exe = tmp_path / "tool"
    exe.write_text("#!%s\n" % py.argv[0] + textwrap.dedent(SHORT))
    exe.chmod(0o755)
    rc, out, err = run(["-q", "--format", "json", "-o", str(report_path), "--", str(exe)])
    assert rc == 0, err
    assert_block(json.loads(report_path.read_text()), str(exe), "brief", "wait_briefly",
                 measured(out))


@pytest.mark.parametrize("code,status", [
    ("import sys; sys.exit(7)", 7),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", 128 + 9),
    ("import os; os._exit(4)", 4),
    ("raise SystemExit('bye')", 1),
])
def test_exit_status(tmp_path, code, status):
    py = some_python()
    report_path = tmp_path / "r.txt"
    rc, out, err = run(["-q", "-o", str(report_path), "--"] + py.cmd("-c", code))
    assert rc == status, err
    assert report_path.read_text().startswith("hangtrace: process ")


def test_not_python(tmp_path):
    rc, out, err = run(["--", "/bin/true"])
    assert rc == 125
    assert err.strip() == ("hangtrace: error: '/bin/true' ended (exit status 0) without running "
                           "CPython: nothing was traced (hangtrace run follows the command's own "
                           "process, not the processes it starts)")
    py = some_python()
    rc, out, err = run(["--"] + py.cmd("--version"))
    assert rc == 125
    assert "before its Python %d.%d" % py.version[:2] in err and "ran any code" in err, err
    rc, out, err = run(["--", str(tmp_path / "missing")])
    assert rc == 127
    assert err.startswith("hangtrace: error: cannot run '") and "No such file" in err
    (tmp_path / "data").write_text("x")
    rc, out, err = run(["--", str(tmp_path / "data")])
    assert rc == 126 and "Permission denied" in err
    rc, out, err = run([])
    assert rc == 125 and "no command given" in err
    rc, out, err = run(["-p", "1", "--", "/bin/true"])
    assert rc == 125 and "-p is not an option of run" in err
    # names are untrusted: escapes, quotes, newlines, invalid UTF-8, any length
    weird = "bad\x1b[31m'name\n\udcff"  # \udcff: the byte 0xff in the file name
    rc, out, err = run(["--", str(tmp_path / weird)])  # text=True: stderr must be UTF-8
    assert rc == 127
    assert "\x1b" not in err and err.count("\n") == 1, repr(err)
    assert "bad\\x1b[31m\\x27name\\x0a\ufffd': No such file" in err, repr(err)
    rc, out, err = run(["--", "\u00e9" * 3000])
    assert rc == 126 and err.count("\n") == 1 and len(err) < 400, repr(err)
    assert "...': File name too long" in err


def test_unsupported_python_is_killed(tmp_path):
    """hangtrace cannot trace it: it says why, and the command does not go on
    (stopped or not)."""
    py2 = os.path.expanduser("~/.pyenv/versions/2.7.18/bin/python")
    if not os.access(py2, os.X_OK):
        pytest.skip("no Python 2.7 under pyenv")
    marker = tmp_path / "ran"
    t0 = time.monotonic()
    rc, out, err = run(["--", py2, "-c", "import time; time.sleep(20); open(%r, 'w')" % str(marker)],
                       timeout=60)
    assert rc == 125
    assert "does not support" in err, err
    assert time.monotonic() - t0 < 15
    assert not marker.exists()


# --- signals -------------------------------------------------------------------

WAITER = """\
import os, signal, sys, threading, time
got = []
done = threading.Event()


def handler(sig, frame):
    got.append(sig)
    done.set()


signal.signal(signal.SIGTERM, handler)
signal.signal(signal.SIGINT, handler)
print("READY %d" % os.getpid(), flush=True)
t0 = time.monotonic()
done.wait(60)  # @wait
time.sleep(0.3)  # a second copy of the signal would arrive now
print("GOT %s %.6f" % (",".join(str(s) for s in got), time.monotonic() - t0), flush=True)
sys.exit(got[0] + 10)
"""


def start_run(args, **kw):
    p = subprocess.Popen([HANGTRACE, "run"] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, **kw)
    line = p.stdout.readline()
    m = re.match(r"READY (\d+)", line)
    if not m:
        p.kill()
        raise AssertionError("no READY: %r %r" % (line, p.communicate()))
    return p, int(m.group(1))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_is_passed_on(tmp_path, sig):
    """A signal to hangtrace reaches the command once; it decides to exit;
    the report (with the wait it was in) and its status follow."""
    py = some_python()
    script = write(tmp_path, "waiter.py", WAITER)
    report_path = tmp_path / "r.json"
    p, child = start_run(["-q", "--format", "json", "-o", str(report_path), "--"] + py.cmd(script))
    try:
        time.sleep(0.5)
        os.kill(p.pid, sig)
        out, err = p.communicate(timeout=30)
        assert p.returncode == sig + 10, err
        m = re.search(r"^GOT ([0-9,]+) ([0-9.]+)$", out, re.M)
        assert m and m.group(1) == str(int(sig)), out
        report = json.loads(report_path.read_text())
        line = marker_line(script, "wait")
        found = [b for b in report["blockers"] if b["stack"] and b["stack"][-1]["function"] ==
                 "<module>" and b["stack"][-1]["line"] == line]
        assert found, json.dumps(report["blockers"], indent=1)[:3000]
        b = max(found, key=lambda x: x["total_s"])
        assert b["reason"] == "lock"
        assert 0.4 <= b["total_s"] <= float(m.group(2))
    finally:
        kill_pid(child)
        if p.poll() is None:
            p.kill()
            p.wait()


def test_second_interrupt_leaves_at_once(tmp_path):
    """The command ignores SIGINT: a second one makes hangtrace leave now,
    without a report, and the command is left running (not stopped)."""
    py = some_python()
    script = write(tmp_path, "stubborn.py", """\
        import os, signal, time
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("READY %d" % os.getpid(), flush=True)
        time.sleep(60)
        """)
    report_path = tmp_path / "r.txt"
    p, child = start_run(["-q", "-o", str(report_path), "--"] + py.cmd(script))
    try:
        time.sleep(0.3)
        os.kill(p.pid, signal.SIGINT)
        time.sleep(0.5)
        assert p.poll() is None  # the command decides: it goes on, so do we
        os.kill(p.pid, signal.SIGINT)
        # (not communicate(): the command, still running, holds the pipes)
        assert p.wait(timeout=10) == 130
        assert not report_path.exists()
        assert pid_state(child) == "S"
    finally:
        kill_pid(child)
        if p.poll() is None:
            p.kill()
            p.wait()


# --- the live status line ------------------------------------------------------

STALLER = """\
import asyncio, time


async def main():
    for i in range(3):
        await asyncio.sleep(0.5)
        time.sleep(0.3)  # @stall
    await asyncio.sleep(0.6)

asyncio.run(main())
print("END OF PROGRAM", flush=True)
"""

STATUS = re.compile(r"hangtrace: ([0-9.]+) s \| stalls (\d+), longest ([0-9.]+) s \| "
                    r"events (\d+) \| lost (\d+)")


def run_on_pty(args, timeout=60, cmd="run"):
    """hangtrace CMD ARGS with stdout and stderr on a pseudo-terminal: all it wrote."""
    master, slave = pty.openpty()
    p = subprocess.Popen([HANGTRACE] + ([cmd] if cmd else []) + list(args),
                         stdin=subprocess.DEVNULL,
                         stdout=slave, stderr=slave)
    os.close(slave)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer has closed the terminal
                    break
                if not chunk:
                    break
                data += chunk
            elif p.poll() is not None:
                break
        p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return p.returncode, data.decode("utf-8", "replace")


def test_progress_on_a_terminal(tmp_path):
    py = some_python()
    if py.version < (3, 7):
        pytest.skip("asyncio.run needs 3.7")
    script = write(tmp_path, "staller.py", STALLER)
    rc, text = run_on_pty(["--stall", "200", "--alert", "0.2", "--"] + py.cmd(script))
    assert rc == 0, text
    # live stall alerts (and every other line) start on a line of their own
    alerts = [m.start() for m in re.finditer("hangtrace: STALL:", text)]
    assert alerts, repr(text)
    for at in alerts:
        assert text[:at].endswith(("\r\x1b[K", "\n")), repr(text[at - 40:at + 40])
        # where the loop is stuck, read while it is stuck
        assert text[at:].split("\r\n")[1] == "hangtrace:     main (%s:%d)" % (
            script, marker_line(script, "stall")), repr(text[at:at + 300])
    statuses = [m for m in STATUS.finditer(text)]
    assert len(statuses) >= 4, repr(text)
    # drawn in place: each one starts with "\r" + erase line
    for m in statuses:
        assert text[:m.start()].endswith("\r\x1b[K"), repr(text[m.start() - 20:m.end()])
    elapsed = [float(m.group(1)) for m in statuses]
    stalls = [int(m.group(2)) for m in statuses]
    assert elapsed == sorted(elapsed) and elapsed[-1] > elapsed[0]
    assert stalls == sorted(stalls) and stalls[0] == 0 and stalls[-1] == 3, stalls
    longest = float(statuses[-1].group(3))
    assert 0.3 <= longest < 0.6
    assert int(statuses[-1].group(4)) >= 3
    # erased before the report: the last status is followed by an erase, then the report
    last = statuses[-1]
    rest = text[last.end():]
    report_at = rest.find("hangtrace: process ")
    assert report_at >= 0, repr(rest)
    assert rest.startswith("\r\x1b[K") or "\r\x1b[K" in rest[:report_at], repr(rest[:200])
    assert "| stalls" not in rest
    # the report names the stall's line
    assert "staller.py:%d" % marker_line(script, "stall") in rest


def test_progress_with_pid(tmp_path):
    """The same line when attaching with -p: the stall count moves, the line is
    erased before the report."""
    py = some_python()
    if py.version < (3, 7):
        pytest.skip("asyncio.run needs 3.7")
    script = write(tmp_path, "staller.py", STALLER.replace("range(3)", "range(6)"))
    target = subprocess.Popen(py.cmd(script), stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        rc, text = run_on_pty(["-p", str(target.pid), "-d", "2.5", "--stall", "200"], cmd=None)
        assert rc == 0, text
        stalls = [int(m.group(2)) for m in STATUS.finditer(text)]
        assert len(stalls) >= 5 and stalls == sorted(stalls) and stalls[-1] >= 2, stalls
        rest = text[list(STATUS.finditer(text))[-1].end():]
        assert rest.startswith("\r\x1b[K") and "hangtrace: process %d" % target.pid in rest
    finally:
        target.kill()
        target.wait()


@pytest.mark.parametrize("how", ["pipe", "quiet"])
def test_no_progress(tmp_path, how):
    py = some_python()
    script = write(tmp_path, "short.py", SHORT)
    if how == "pipe":
        rc, out, err = run(["--"] + py.cmd(script))
    else:
        rc, text = run_on_pty(["-q", "-o", str(tmp_path / "r.txt"), "--"] + py.cmd(script))
        err = text
    assert rc == 0
    assert "\x1b[K" not in err and "| stalls" not in err, repr(err)


def test_duration_reports_early_and_waits(tmp_path):
    """-d: the report is written after the duration, while the command goes on;
    hangtrace then waits for it and exits with its status."""
    py = some_python()
    script = write(tmp_path, "long.py", """\
        import sys, time


        def early():
            time.sleep(0.3)  # @early


        early()
        time.sleep(2.5)
        sys.exit(3)
        """)
    report_path = tmp_path / "r.json"
    p = subprocess.Popen([HANGTRACE, "run", "-q", "-d", "1", "--format", "json", "-o",
                          str(report_path), "--"] + py.cmd(script), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not report_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert report_path.exists()
        assert p.poll() is None  # the command is still sleeping, and we wait for it
        report = json.loads(report_path.read_text())
        assert 1.0 <= report["window"]["duration_s"] < 1.5
        b = [b for b in blockers_with(report, "early")
             if b["stack"][0]["line"] == marker_line(script, "early")]
        assert b and 0.3 <= b[0]["total_s"] < 0.35, report["blockers"]
        assert p.wait(timeout=20) == 3, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


OUTLIVER = """\
import os, time

pid = os.fork()
if pid == 0:
    time.sleep(1.5)  # @outlive
    time.sleep(0.3)  # alive while its first sleep's stack is named
    os._exit(0)
print("CHILD %d" % pid, flush=True)
"""


def test_children_outlive_command_on_a_terminal(tmp_path):
    """run --children: the command exits at once, its forked child sleeps
    1.5 s on: tracing goes on for it (its sleep in the report), the status
    line's clock keeps counting from the attach (never past the wall time),
    and run exits with the command's status."""
    py = some_python()
    script = write(tmp_path, "outliver.py", OUTLIVER)
    child = None
    t0 = time.monotonic()
    try:
        rc, text = run_on_pty(["--children", "--"] + py.cmd(script))
        wall = time.monotonic() - t0
        # the command's line may follow the status line's text on one line
        m = re.search(r"CHILD (\d+)\r?\n", text)
        assert m, repr(text)
        child = int(m.group(1))
        assert rc == 0, text
        assert "exited during tracing; reporting" not in text, text
        elapsed = [float(s.group(1)) for s in STATUS.finditer(text)]
        assert elapsed and elapsed == sorted(elapsed), repr(text)
        assert elapsed[-1] <= wall, (elapsed, wall)
        # still drawn while only the child was left: after the command's exit
        assert elapsed[-1] >= 1.0, elapsed
        rest = text[list(STATUS.finditer(text))[-1].end():]
        section = rest[rest.find("hangtrace: child process %d of " % child):]
        assert section.startswith("hangtrace: child process"), repr(rest[:2000])
        assert "(%s:%d)" % (script, marker_line(script, "outlive")) in section, section[:3000]
    finally:
        kill_pid(child)
