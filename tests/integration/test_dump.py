# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""`hangtrace dump -p PID` against real hung processes of every interpreter present.

Each target (targets/hung.py) sets a hang up and prints READY; the test dumps
it (repeating until the hang has lasted the second that the diagnosis wants),
checks the exact functions, files and lines, and kills it by pid.  Nothing
here stops a target, except the one test of a stopped process, which
SIGCONTs and kills it after.
"""
import json
import os
import pathlib
import signal
import subprocess
import time

import pytest

from conftest import HANGTRACE, TARGETS, Target, marker_line, requires_root
from pythons import ids, interpreters

pytestmark = requires_root
PYS = interpreters()
HUNG = TARGETS / "hung.py"
SLEEP_SYSCALLS = {7, 23, 35, 230, 270}  # poll, select, nanosleep, clock_nanosleep, pselect6


class Pid:
    """A process the target started (e.g. its child), to kill by pid at the end."""

    def __init__(self, pid):
        self.pid = pid

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start(procs, py, scenario):
    t = Target(py.argv + [str(HUNG), scenario])
    procs.append(t)
    return t


def run_dump(pid, fmt="json", args=(), timeout=30):
    p = subprocess.run([HANGTRACE, "dump", "-p", str(pid), "--format", fmt] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, "hangtrace dump exited %d: %s" % (p.returncode, p.stderr)
    return json.loads(p.stdout) if fmt == "json" else p.stdout


def dump_until(pid, pattern, timeout=15):
    """Dump until the diagnosis is @pattern (the hang must last a second to be called one)."""
    deadline = time.monotonic() + timeout
    while True:
        rep = run_dump(pid)
        if rep["diagnosis"] and rep["diagnosis"][0]["pattern"] == pattern:
            return rep
        if time.monotonic() > deadline:
            raise AssertionError("no %s diagnosis: %s" % (pattern, json.dumps(rep, indent=1)[:6000]))
        time.sleep(0.2)


def frame(function, marker):
    return {"function": function, "file": str(HUNG), "line": marker_line(HUNG, marker)}


def at(function, marker):
    """How a frame of hung.py reads in a message."""
    return "%s (%s:%d)" % (function, HUNG, marker_line(HUNG, marker))


def qual(py, cls, name):
    """co_qualname exists from 3.11; before, frames carry co_name."""
    return "%s.%s" % (cls, name) if py.version[:2] >= (3, 11) else name


def thread(rep, tid):
    found = [t for t in rep["threads"] if t["tid"] == tid]
    assert found, "no thread %d in %s" % (tid, [t["tid"] for t in rep["threads"]])
    return found[0]


def thread_with(rep, function):
    """The thread whose stack has a frame of @function."""
    found = [t for t in rep["threads"] if any(f["function"] == function for f in t["stack"])]
    assert len(found) == 1, "threads running %s: %s" % (function, json.dumps(rep["threads"])[:4000])
    return found[0]


def functions(t):
    return [f["function"] for f in t["stack"]]


def test_no_such_process():
    p = subprocess.Popen(["true"])
    p.wait()
    r = subprocess.run([HANGTRACE, "dump", "-p", str(p.pid)], capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == "hangtrace: error: no such process %d" % p.pid


def test_not_python(procs):
    p = subprocess.Popen(["sleep", "60"])
    procs.append(Pid(p.pid))
    r = subprocess.run([HANGTRACE, "dump", "-p", str(p.pid)], capture_output=True, text=True)
    p.kill()
    p.wait()
    assert r.returncode == 1 and r.stdout == ""
    assert "not a CPython process" in r.stderr and len(r.stderr.splitlines()) == 1


def test_zombie():
    p = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        r = subprocess.run([HANGTRACE, "dump", "-p", str(p.pid)], capture_output=True, text=True)
    finally:
        p.wait()
    assert r.returncode == 1 and r.stdout == ""
    assert "process %d is a zombie" % p.pid in r.stderr and len(r.stderr.splitlines()) == 1


def test_bad_arguments():
    r = subprocess.run([HANGTRACE, "dump"], capture_output=True, text=True)
    assert r.returncode == 2 and "use hangtrace dump -p PID" in r.stderr
    r = subprocess.run([HANGTRACE, "dump", "-p", "1", "--format", "folded"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "expected text or json" in r.stderr


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_finalization_executor_worker_in_recv(py, procs):
    """The main module returned while an executor's worker waits on a silent peer."""
    t = start(procs, py, "finalize")
    rep = dump_until(t.pid, "finalization-join")
    interp = rep["interpreter"]
    assert interp["finalizing"] and not interp["finalizing_flag"]
    assert "_python_exit" in interp["shutdown_path"]

    main = thread(rep, t.pid)
    worker = thread_with(rep, "fetch")
    if t.ready["worker_tid"]:
        assert worker["tid"] == t.ready["worker_tid"]
    # the main thread: the exit handler's join, nothing of the main module left
    assert main["main"] and main["reason"] == "lock" and main["syscall"] == "futex"
    fns = functions(main)
    assert qual(py, "Thread", "join") in fns and "_python_exit" in fns
    assert "<module>" not in fns
    exit_frame = [f for f in main["stack"] if f["function"] == "_python_exit"][0]
    assert exit_frame["file"].endswith("/concurrent/futures/thread.py")
    assert main["joins"] == worker["tid"] and main["joins_exact"]
    # the worker: its function, the recv, the peer, no timeout, since a second
    assert worker["stack"][0] == frame("fetch", "recv")
    assert worker["syscall"] == "recvfrom" and worker["reason"] == "socket"
    assert worker["fd_target"] == "127.0.0.1:%d" % t.ready["port"]
    assert worker["timeout"] is False and worker["blocked_s"] >= 1.0
    assert not worker["holds_gil"] and rep["interpreter"]["gil_holder"] is None

    d = rep["diagnosis"][0]
    assert d["tids"] == [t.pid, worker["tid"]]
    assert rep["hint"] == d["message"]
    for words in ("Shutdown hang", "finalizing", "_python_exit", "thread %d" % worker["tid"],
                  "recvfrom", "127.0.0.1:%d" % t.ready["port"], "no timeout", at("fetch", "recv")):
        assert words in d["message"], (words, d["message"])
    # the socket finding names the same thread: not repeated
    assert [x["pattern"] for x in rep["diagnosis"]] == ["finalization-join"]

    # text: the diagnosis is the first line
    text = run_dump(t.pid, fmt="text")
    first = text.splitlines()[0]
    assert first.startswith("Shutdown hang: the interpreter is finalizing")
    assert at("fetch", "recv") in first and "recvfrom" in first


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_finalization_non_daemon_thread(py, procs):
    """threading._shutdown waits for a non-daemon thread blocked in recv."""
    t = start(procs, py, "finalize_thread")
    rep = dump_until(t.pid, "finalization-join")
    assert rep["interpreter"]["shutdown_path"].startswith("threading._shutdown")
    main = thread(rep, t.pid)
    reader = thread_with(rep, "reader")
    assert main["joins"] == reader["tid"] and main["joins_exact"]
    assert main["stack"][-1]["function"] == "_shutdown"
    assert reader["stack"][0] == frame("reader", "reader_recv")
    assert at("reader", "reader_recv") in rep["hint"] and "recvfrom" in rep["hint"]


def wait_in_sleep(pid, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        with open("/proc/%d/task/%d/syscall" % (pid, pid)) as f:
            nr = f.read().split()[0]
        if nr.lstrip("-").isdigit() and int(nr) in SLEEP_SYSCALLS:
            return
        assert time.monotonic() < deadline, "the main thread never slept: %s" % nr
        time.sleep(0.01)


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_signal_handler_self_deadlock(py, procs):
    """SIGTERM arrives while the lock is held; the handler takes it: self-deadlock."""
    t = start(procs, py, "sigterm")
    wait_in_sleep(t.pid)
    os.kill(t.pid, signal.SIGTERM)
    rep = dump_until(t.pid, "signal-handler-lock")
    main = thread(rep, t.pid)
    assert main["stack"][:3] == [frame("on_term", "handler_lock"),
                                 frame("hold_and_wait", "interrupted"),
                                 frame("sigterm", "call_hold")]
    assert main["signal_handler"] == {"signal": "SIGTERM", "frame": 0}
    assert main["reason"] == "lock" and main["timeout"] is False
    d = rep["diagnosis"][0]
    assert d["tids"] == [t.pid]
    for words in ("Self-deadlock", "SIGTERM handler " + at("on_term", "handler_lock"),
                  at("hold_and_wait", "interrupted"), "thread %d" % t.pid):
        assert words in d["message"], (words, d["message"])
    text = run_dump(t.pid, fmt="text")
    assert text.splitlines()[0].startswith("Self-deadlock: the SIGTERM handler on_term")
    assert "    in the SIGTERM handler on_term\n" in text


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_join_on_thread_waiting_for_event(py, procs):
    """The main thread joins a thread that waits on an Event nobody sets."""
    t = start(procs, py, "join_event")
    t0 = time.monotonic()
    rep = dump_until(t.pid, "join-wait")
    t1 = time.monotonic()
    main = thread(rep, t.pid)
    waiter = thread_with(rep, "waiter")
    if t.ready["waiter_tid"]:
        assert waiter["tid"] == t.ready["waiter_tid"]
    assert main["joins"] == waiter["tid"] and main["joins_exact"]
    join_at = [f for f in main["stack"] if f["file"] == str(HUNG)][0]
    assert join_at == frame("join_event", "join")
    assert qual(py, "Event", "wait") in functions(waiter)
    assert frame("waiter", "event_wait") in waiter["stack"]
    assert waiter["reason"] == "lock" and waiter["timeout"] is False
    d = rep["diagnosis"][0]
    assert d["tids"] == [t.pid, waiter["tid"]]
    for words in ("Waiting on a thread", "Thread.join at " + at("join_event", "join"),
                  "thread %d" % waiter["tid"], "called from " + at("waiter", "event_wait"),
                  "no timeout"):
        assert words in d["message"], (words, d["message"])
    assert t0 < t1  # (the blocked-for check is test_blocked_for_matches_the_clock)


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_blocked_for_matches_the_clock(py, procs):
    """blocked_s is the scheduler's record: it matches when the thread started waiting."""
    t = start(procs, py, "join_event")
    time.sleep(0.5)
    before = time.monotonic()
    rep = run_dump(t.pid)
    after = time.monotonic()
    waiter = thread_with(rep, "waiter")
    since = t.ready["waiter_since"]
    # the thread blocks a little after noting the time (Event.wait's own code)
    assert before - since - 0.05 <= waiter["blocked_s"] <= after - since, (
        waiter["blocked_s"], before - since, after - since)


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_join_cycle(py, procs):
    """Two threads join each other: a deadlock cycle, named with both lines."""
    t = start(procs, py, "join_cycle")
    rep = dump_until(t.pid, "join-cycle")
    main = thread(rep, t.pid)
    pair = [x for x in rep["threads"] if x["tid"] != t.pid]
    assert len(pair) == 2
    a, b = pair
    assert a["joins"] == b["tid"] and b["joins"] == a["tid"]
    assert a["joins_exact"] and b["joins_exact"]
    assert main["joins"] in (a["tid"], b["tid"])
    d = rep["diagnosis"][0]
    assert sorted(d["tids"]) == sorted([a["tid"], b["tid"]])
    for words in ("Deadlock", "joins thread %d" % a["tid"], "joins thread %d" % b["tid"],
                  "in " + at("join_other", "cycle_join")):
        assert words in d["message"], (words, d["message"])


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_rlock_owner(py, procs):
    """A thread waits for an RLock: the owner is named (from the lock itself)."""
    t = start(procs, py, "rlock_owner")
    rep = dump_until(t.pid, "lock-owner")
    main = thread(rep, t.pid)
    holder = thread_with(rep, "keep_rlock")
    assert main["lock_owner"] == holder["tid"], main
    assert main["stack"][0] == frame("rlock_owner", "rlock_wait")
    assert holder["lock_owner"] is None
    d = rep["diagnosis"][0]
    assert d["tids"][:2] == [t.pid, holder["tid"]]
    for words in ("Waiting on a lock", "at " + at("rlock_owner", "rlock_wait"),
                  "for an RLock held by thread %d" % holder["tid"],
                  at("keep_rlock", "holder_wait")):
        assert words in d["message"], (words, d["message"])


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_rlock_cycle(py, procs):
    """Two threads each hold the RLock the other wants: a lock cycle, named."""
    t = start(procs, py, "rlock_cycle")
    rep = dump_until(t.pid, "lock-cycle")
    pair = [x for x in rep["threads"] if x["tid"] != t.pid]
    assert len(pair) == 2
    a, b = pair
    assert a["lock_owner"] == b["tid"] and b["lock_owner"] == a["tid"]
    d = rep["diagnosis"][0]
    assert sorted(d["tids"]) == sorted([a["tid"], b["tid"]])
    for words in ("Deadlock", "waits for an RLock held by thread %d" % a["tid"],
                  "waits for an RLock held by thread %d" % b["tid"],
                  "in " + at("take", "rlock_take")):
        assert words in d["message"], (words, d["message"])


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_waiting_on_child(py, procs):
    t = start(procs, py, "child")
    procs.append(Pid(t.ready["child"]))
    rep = dump_until(t.pid, "child-wait")
    main = thread(rep, t.pid)
    assert main["reason"] == "child" and main["syscall"] == "wait4"
    assert frame("child", "child_wait") in main["stack"]
    d = rep["diagnosis"][0]
    for words in ("Waiting on a child process", "child process %d (sleep 3600)" % t.ready["child"],
                  "wait4", "called from " + at("child", "child_wait")):
        assert words in d["message"], (words, d["message"])


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_socket_peer_never_answers(py, procs):
    t = start(procs, py, "silent_peer")
    rep = dump_until(t.pid, "socket-no-answer")
    asker = thread_with(rep, "ask")
    assert asker["stack"][0] == frame("ask", "ask_recv")
    assert asker["fd_target"] == "127.0.0.1:%d" % t.ready["port"]
    d = rep["diagnosis"][0]
    assert d["tids"] == [asker["tid"]]
    for words in ("Waiting on a socket peer", "127.0.0.1:%d to answer" % t.ready["port"],
                  "recvfrom", at("ask", "ask_recv")):
        assert words in d["message"], (words, d["message"])
    # the main thread naps in short sleeps: not a finding
    assert len(rep["diagnosis"]) == 1


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_gil_held_while_blocked(py, procs):
    """A ctypes.PyDLL call sleeps holding the GIL; the other threads wait for it."""
    t = start(procs, py, "gil")
    if t.ready.get("skip"):
        pytest.skip(t.ready["skip"])
    rep = dump_until(t.pid, "gil-held-blocked")
    hog = thread_with(rep, "hog")
    assert rep["interpreter"]["gil_holder"] == hog["tid"] and hog["holds_gil"]
    assert hog["stack"][0] == frame("hog", "gil_sleep")
    assert hog["reason"] == "sleep"
    counter = thread_with(rep, "count")
    assert counter["reason"] == "gil" and not counter["holds_gil"]
    d = rep["diagnosis"][0]
    for words in ("GIL held while blocked", "thread %d" % hog["tid"], at("hog", "gil_sleep")):
        assert words in d["message"], (words, d["message"])


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_healthy_busy_process(py, procs):
    """Busy threads, a napping main thread, a native thread: no diagnosis."""
    t = start(procs, py, "busy")
    time.sleep(1.2)
    for _ in range(3):
        rep = run_dump(t.pid)
        assert rep["diagnosis"] == [] and rep["hint"] is None, rep["diagnosis"]
        assert not rep["interpreter"]["finalizing"]
    spinners = [x for x in rep["threads"] if "spin" in functions(x)]
    assert len(spinners) == 2 and all(x["python"] for x in spinners)
    native = [x for x in rep["threads"] if not x["python"]]
    assert len(native) == 1 and native[0]["stack"] == []
    assert "not a Python thread" in native[0]["stack_note"]
    holder = rep["interpreter"]["gil_holder"]
    assert holder is None or holder in [x["tid"] for x in rep["threads"] if x["python"]]
    text = run_dump(t.pid, fmt="text")
    assert text.splitlines()[0].startswith("No known hang pattern: 4 threads (3 Python)")


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_trace_follows_the_snapshot(py, procs, tmp_path):
    """--trace: the tracer's blockers in "trace"; the report lands atomically in -o FILE."""
    t = start(procs, py, "join_event")
    dump_until(t.pid, "join-wait")
    out = tmp_path / "dump.json"
    r = subprocess.run([HANGTRACE, "dump", "-p", str(t.pid), "--format", "json", "--trace", "1",
                        "-o", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and "hangtrace: tracing process %d" % t.pid in r.stderr
    rep = json.loads(out.read_text())
    assert rep["diagnosis"][0]["pattern"] == "join-wait"
    waiter = thread_with(rep, "waiter")
    trace = rep["trace"]
    assert 0.9 <= trace["window"]["duration_s"] <= 3
    mine = [b for b in trace["blockers"] if b["tid"] == waiter["tid"]]
    assert mine and mine[0]["still_blocked"], trace["blockers"]
    assert frame("waiter", "event_wait") in mine[0]["stack"]
    text = run_dump(t.pid, fmt="text", args=["--trace", "0.5"])
    assert text.splitlines()[0].startswith("Waiting on a thread")
    assert "--- tracing for 0.5 s after the snapshot" in text
    assert "STILL BLOCKED" in text


def test_stopped_process(procs):
    """A stopped (T) process can be dumped; the diagnosis says it is stopped."""
    py = PYS[-1]
    t = start(procs, py, "join_event")
    os.kill(t.pid, signal.SIGSTOP)
    try:
        # SIGSTOP is delivered asynchronously: wait until every thread is stopped
        deadline = time.monotonic() + 10
        while any(open("/proc/%d/task/%s/stat" % (t.pid, tid)).read().rsplit(")", 1)[1].split()[0]
                  != "T" for tid in os.listdir("/proc/%d/task" % t.pid)):
            assert time.monotonic() < deadline, "process %d did not stop" % t.pid
            time.sleep(0.01)
        rep = run_dump(t.pid)
        text = run_dump(t.pid, fmt="text")
    finally:
        os.kill(t.pid, signal.SIGCONT)
    assert rep["target"]["state"] == "stopped"
    assert all(x["state"] == "stopped" for x in rep["threads"])
    assert rep["diagnosis"][0]["pattern"] == "stopped"
    assert "kill -CONT %d" % t.pid in rep["hint"]
    assert text.splitlines()[0].startswith("Process stopped: process %d is stopped" % t.pid)
    waiter = thread_with(rep, "waiter")  # stacks are still read
    assert frame("waiter", "event_wait") in waiter["stack"]
