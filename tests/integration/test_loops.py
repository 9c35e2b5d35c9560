# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Who blocked the event loop: stalls, blame, GIL, on-CPU and hints, on real loops.

Each target measures its own blocking time (ground truth); reported stalls must
agree within 10% (or 5 ms), and the blamed blocker must carry the function,
file and line the test expects.
"""
import pathlib

import pytest

from conftest import marker_line, requires_root, run_scenario
from pythons import ids, interpreters

pytestmark = requires_root
PYS = interpreters()
LOOPS = pathlib.Path(__file__).parent / "targets" / "loops.py"


def loop_report(procs, py, name):
    report, done, t = run_scenario(procs, py, name, script=LOOPS)
    loop = [th for th in report["threads"] if th["tid"] == t.pid]
    assert loop and loop[0]["event_loop"], report["threads"]
    return report, done, t


def longest_stall(report, tid):
    stalls = [s for s in report["stalls"] if s["tid"] == tid]
    assert stalls, "no stall reported for thread %d: %s" % (tid, report["stalls"])
    return max(stalls, key=lambda s: s["duration_s"])


def close(reported, truth):
    return abs(reported - truth) <= max(0.1 * truth, 0.005)


def functions(stack):
    return [f["function"] for f in stack]


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_time_sleep_in_coroutine(py, procs):
    report, done, t = loop_report(procs, py, "sleep")
    st = longest_stall(report, t.pid)
    assert close(st["duration_s"], done["blocked"]), (st, done)
    b = report["blockers"][st["blocker"]]
    assert b["reason"] == "sleep" and b["event_loop"] and b["kind"] == "off-cpu"
    assert b["stack"][0] == {"function": "sleepy", "file": str(LOOPS),
                             "line": marker_line(LOOPS, "sleepy")}
    assert "await asyncio.sleep()" in b["hint"]
    assert st["task"] == {"name": None, "coro": "main"}
    th = [x for x in report["threads"] if x["tid"] == t.pid][0]
    assert th["idle_s"] > 0 and th["stalls"] >= 1
    # the loop's own waits are idle, never blockers
    assert not [x for x in report["blockers"] if x["tid"] == t.pid and x["reason"] == "idle"]


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_executor_shutdown_in_coroutine(py, procs):
    report, done, t = loop_report(procs, py, "executor")
    st = longest_stall(report, t.pid)
    assert close(st["duration_s"], done["blocked"]), (st, done)
    b = report["blockers"][st["blocker"]]
    assert b["reason"] == "lock"
    fns = functions(b["stack"])
    assert any(f.endswith("shutdown") for f in fns) and "executor_exit" in fns, fns
    assert "ThreadPoolExecutor" in b["hint"]
    ww = b["waker"]["while_waiting"]
    assert ww and ww["reason"] == "socket", b["waker"]
    fetch = [f for f in ww["stack"] if f["function"] == "fetch"]
    assert fetch and fetch[0]["line"] == marker_line(LOOPS, "fetch"), ww


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_future_result_in_coroutine(py, procs):
    report, done, t = loop_report(procs, py, "future")
    st = longest_stall(report, t.pid)
    assert close(st["duration_s"], done["blocked"]), (st, done)
    b = report["blockers"][st["blocker"]]
    assert b["reason"] == "lock"
    assert {"function": "future_result", "file": str(LOOPS),
            "line": marker_line(LOOPS, "future_result")} in b["stack"]
    assert "asyncio.wrap_future" in b["hint"]


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_blocking_urllib_in_coroutine(py, procs):
    report, done, t = loop_report(procs, py, "urllib")
    st = longest_stall(report, t.pid)
    assert close(st["duration_s"], done["blocked"]), (st, done)
    b = report["blockers"][st["blocker"]]
    assert b["reason"] == "socket"
    assert {"function": "urllib_call", "file": str(LOOPS),
            "line": marker_line(LOOPS, "urllib_call")} in b["stack"]
    assert b["fd_target"].startswith("127.0.0.1:")
    assert "HTTP" in b["hint"]


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_gil_held_by_cpu_thread(py, procs):
    report, done, t = loop_report(procs, py, "gil")
    gil = [b for b in report["blockers"] if b["tid"] == t.pid and b["kind"] == "gil"]
    assert gil, report["blockers"]
    held = [b for b in gil if b["waker"] and b["waker"]["stack"]
            and b["waker"]["stack"][0]["function"] == "spin"]
    assert held, [(b["waker"], b["total_s"]) for b in gil]
    assert any(b["waker"]["gil_holder"] for b in held)
    assert held[0]["waker"]["tid"] != t.pid
    assert "GIL" in held[0]["hint"]


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_cpu_bound_coroutine(py, procs):
    report, done, t = loop_report(procs, py, "cpu")
    st = longest_stall(report, t.pid)
    assert close(st["duration_s"], done["blocked"]), (st, done)
    b = report["blockers"][st["blocker"]]
    assert b["kind"] == "on-cpu" and b["reason"] == "cpu"
    assert b["stack"][0]["function"] == "busy"
    assert b["stack"][0]["file"] == str(LOOPS)
    assert "CPU-bound" in b["hint"]


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_lock_held_by_worker_doing_io(py, procs):
    report, done, t = loop_report(procs, py, "lock")
    st = longest_stall(report, t.pid)
    b = report["blockers"][st["blocker"]]
    assert b["reason"] == "lock"
    assert b["stack"][0] == {"function": "lock_held_by_worker", "file": str(LOOPS),
                             "line": marker_line(LOOPS, "lock_acquire")}
    assert close(b["max_s"], done["blocked"]), (b["max_s"], done)
    w = b["waker"]
    assert w and w["tid"] != t.pid and w["stack"][0]["function"] == "worker_with_lock", w
    assert w["while_waiting"]["reason"] == "socket"
    assert "worker_with_lock" in functions(w["while_waiting"]["stack"])
    assert "asyncio" in b["hint"]
