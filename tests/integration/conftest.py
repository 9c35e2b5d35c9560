# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Shared fixtures: start real Python targets and a real hangtrace against them.

Every process a test starts is killed by pid at the end of the test; hangtrace
is ended with SIGINT (as a user would with Ctrl-C), so no BPF program stays
attached.
"""
import json
import os
import pathlib
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import pythons  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
HANGTRACE = os.environ.get("HANGTRACE", str(ROOT / "hangtrace"))
TARGETS = pathlib.Path(__file__).parent / "targets"
SCENARIOS = TARGETS / "scenarios.py"

requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (BPF)")

# A sanitizer build (make san-test: ./hangtrace-san) writes its reports
# (ASan, UBSan, LeakSanitizer at exit) to files here instead of stderr, so a
# report fails the test that ran it, whichever way the test ran hangtrace.
SAN_LOG_DIR = tempfile.mkdtemp(prefix="hangtrace-san-")
for _var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
    _opts = [o for o in os.environ.get(_var, "").split(":") if o and not o.startswith("log_path=")]
    _log = "log_path=%s/%s" % (SAN_LOG_DIR, _var.split("_")[0].lower())
    os.environ[_var] = ":".join(_opts + [_log])
SAN_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
               "SUMMARY: UndefinedBehaviorSanitizer")


def sanitizer_reports():
    """{path: text} of every sanitizer report written so far."""
    out = {}
    for name in sorted(os.listdir(SAN_LOG_DIR)):
        path = os.path.join(SAN_LOG_DIR, name)
        with open(path, errors="replace") as f:
            out[path] = f.read()
    return out


@pytest.fixture(autouse=True)
def no_sanitizer_reports():
    """Fail the test if any hangtrace it ran reported memory errors, UB or leaks."""
    before = set(sanitizer_reports())
    yield
    new = {p: t for p, t in sanitizer_reports().items() if p not in before}
    if new:
        pytest.fail("sanitizer report(s) from hangtrace:\n" +
                    "\n".join("%s:\n%s" % (p, t[:6000]) for p, t in new.items()), pytrace=False)


def check_no_sanitizer_output(text):
    """Sanitizer output on a stream (a build whose reports still go to stderr)."""
    for m in SAN_MARKERS:
        assert m not in text, "sanitizer report on hangtrace's stderr:\n" + text[-6000:]


def pytest_unconfigure(config):
    shutil.rmtree(SAN_LOG_DIR, ignore_errors=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test, skipped by san-test")


def pytest_report_header(config):
    found = ", ".join(i.label for i in pythons.interpreters())
    lines = ["interpreters: " + (found or "none")]
    for label, why in pythons.skipped():
        lines.append("skipped interpreter %s: %s" % (label, why))
    return lines


def pytest_terminal_summary(terminalreporter):
    """Always say which interpreters the tests ran on and which were skipped."""
    tr = terminalreporter
    tr.write_sep("-", "interpreters")
    for i in pythons.interpreters():
        tr.write_line("ran:     %-18s %s" % (i.label, " ".join(i.argv)))
    for label, why in pythons.skipped():
        tr.write_line("skipped: %-18s %s" % (label, why))


def marker_line(path, name):
    """The line number of the line ending in '# @name' in @path."""
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            if line.rstrip().endswith("# @" + name):
                return no
    raise LookupError("no '# @%s' in %s" % (name, path))


class _Lines:
    """Read a pipe line by line in a thread, so waits can time out."""

    def __init__(self, pipe):
        self.q = queue.Queue()
        self.all = []
        self.t = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self.t.start()

    def _pump(self, pipe):
        for line in iter(pipe.readline, ""):
            self.all.append(line)
            self.q.put(line)
        self.q.put(None)

    def wait_for(self, prefix, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line starting with %r; got %r" % (prefix, self.all))
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise EOFError("stream closed before %r; got %r" % (prefix, self.all))
            if line.startswith(prefix):
                return line


class Target:
    """A Python process running a scenario; waits for our trigger."""

    def __init__(self, argv, env=None):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        self.pid = self.p.pid
        self.out = _Lines(self.p.stdout)
        self.err = _Lines(self.p.stderr)
        line = self.out.wait_for("READY ", 60)
        self.ready = json.loads(line[len("READY "):])

    def trigger(self):
        self.p.stdin.write("go\n")
        self.p.stdin.flush()

    def wait_done(self, timeout=60):
        line = self.out.wait_for("DONE ", timeout)
        return json.loads(line[len("DONE "):])

    def kill(self):
        if self.p.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.p.wait(timeout=30)


class Tracer:
    """A running `hangtrace -p PID`; attached when the constructor returns."""

    def __init__(self, pid, args=(), duration="30", fmt="json"):
        self.out_path = None
        argv = [HANGTRACE, "-p", str(pid), "-d", duration, "--format", fmt] + list(args)
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        self.pid = self.p.pid
        self.err = _Lines(self.p.stderr)
        self.fmt = fmt
        try:
            self.err.wait_for("hangtrace: tracing process", 30)
        except (TimeoutError, EOFError):
            self.kill()
            raise

    def stop(self, timeout=10):
        """Ctrl-C, then the report.  hangtrace must exit promptly and cleanly."""
        if self.p.poll() is None:
            os.kill(self.pid, signal.SIGINT)
        out = self.p.stdout.read()
        rc = self.p.wait(timeout=timeout)
        self.err.t.join(5)
        check_no_sanitizer_output("".join(self.err.all))
        assert rc == 0, "hangtrace exited %d: %s" % (rc, "".join(self.err.all))
        return json.loads(out) if self.fmt == "json" else out

    def kill(self):
        if self.p.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.p.wait(timeout=30)


@pytest.fixture
def procs():
    """Collects Targets and Tracers; kills whatever is left, by pid."""
    started = []
    yield started
    for p in reversed(started):
        try:
            p.kill()
        except Exception:  # pragma: no cover - cleanup must go on
            pass


def run_scenario(procs, py, name, seconds="1.0", script=SCENARIOS, args=()):
    """Start scenario @name on @py, trace it, trigger it, return (report, measured, target)."""
    t = Target(py.argv + [str(script), name, seconds])
    procs.append(t)
    tr = Tracer(t.pid, args=args)
    procs.append(tr)
    t.trigger()
    done = t.wait_done()
    time.sleep(0.2)  # let the main thread park, so the scenario's blocks have ended
    return tr.stop(), done, t


def blockers_with(report, function, tid=None):
    """Blockers whose innermost Python frame is @function."""
    out = []
    for b in report["blockers"]:
        if tid is not None and b["tid"] != tid:
            continue
        if b["stack"] and b["stack"][0]["function"] == function:
            out.append(b)
    return out


def summary(report):
    """One line per thread and blocker: what a failed assertion needs to show."""
    lines = ["thread %d %s python=%s on=%.3fs idle=%.3fs off=%s" % (
        t["tid"], t["name"], t["python"], t["on_cpu_s"], t["idle_s"],
        {k: v for k, v in t["off_cpu_by_reason_s"].items() if v}) for t in report["threads"]]
    for b in report["blockers"]:
        lines.append("  blocker tid %d %s/%s %s %.3fs x%d still=%s stack=%s" % (
            b["tid"], b["kind"], b["reason"], b.get("syscall"), b["total_s"], b["count"],
            b["still_blocked"], " < ".join("%s:%s" % (f["function"], f["line"])
                                           for f in b["stack"][:4]) or "(none)"))
    return "\n".join(lines)


def the_blocker(report, function, tid=None):
    found = blockers_with(report, function, tid)
    assert found, "no blocker with innermost frame %s%s in:\n%s\nlost: %s" % (
        function, "" if tid is None else " (tid %d)" % tid, summary(report), report.get("lost"))
    return max(found, key=lambda b: b["total_s"])
