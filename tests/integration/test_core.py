# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""`hangtrace -p PID` against real processes of every interpreter present."""
import os
import shutil

import pytest

from conftest import SCENARIOS, marker_line, requires_root, run_scenario, the_blocker
from pythons import ids, interpreters

pytestmark = requires_root
PYS = interpreters()


def frame(function, line, file=SCENARIOS):
    return {"function": function, "file": str(file), "line": line}


def qual(py, cls, name):
    """co_qualname exists from 3.11; before, frames carry co_name."""
    return "%s.%s" % (cls, name) if py.version[:2] >= (3, 11) else name


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_sleep_exact_line_and_duration(py, procs):
    report, done, t = run_scenario(procs, py, "sleep", "1.0")
    b = the_blocker(report, "nap")
    assert b["reason"] == "sleep"
    assert b["stack"][:2] == [frame("nap", marker_line(SCENARIOS, "nap")),
                              frame("sleep_scenario", marker_line(SCENARIOS, "call_nap"))]
    assert b["waker"] is None and b["woken_by_timeout"]
    assert abs(b["total_s"] - done["slept"]) <= 0.1 * done["slept"], b
    assert b["count"] == 1 and not b["still_blocked"]
    assert b["tid"] == t.pid
    assert report["target"]["pid"] == t.pid
    assert report["target"]["python"] == "%d.%d.%d" % tuple(py.version[:3])


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_lock_reason_and_waker(py, procs):
    report, done, t = run_scenario(procs, py, "lock", "0.8")
    b = the_blocker(report, "wait_for_lock", tid=t.pid)
    assert b["reason"] == "lock"
    assert b["stack"][0] == frame("wait_for_lock", marker_line(SCENARIOS, "acquire"))
    assert abs(b["total_s"] - done["waited"]) <= max(0.1 * done["waited"], 0.005), b
    assert b["waker"] is not None, b
    assert b["waker"]["tid"] != t.pid
    waker_fns = [f["function"] for f in b["waker"]["stack"]]
    assert waker_fns[:2] == ["release_it", "holder"], b["waker"]
    assert b["waker"]["stack"][0]["line"] == marker_line(SCENARIOS, "release")


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_socket_recv(py, procs):
    report, done, t = run_scenario(procs, py, "socket", "0.8")
    b = the_blocker(report, "receive", tid=t.pid)
    assert b["reason"] == "socket"
    assert b["stack"][0] == frame("receive", marker_line(SCENARIOS, "recv"))
    assert abs(b["total_s"] - done["waited"]) <= max(0.1 * done["waited"], 0.005), b
    assert b["fd_target"] == "127.0.0.1:%d" % done["peer_port"], b
    assert b["waker"] is not None and b["waker"]["stack"][0]["function"] == "sender", b


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_nested_calls_in_order(py, procs):
    report, _, t = run_scenario(procs, py, "nested", "0.5")
    b = the_blocker(report, "level3", tid=t.pid)
    assert b["stack"][:4] == [
        frame("level3", marker_line(SCENARIOS, "level3")),
        frame("level2", marker_line(SCENARIOS, "level2")),
        frame("level1", marker_line(SCENARIOS, "level1")),
        frame("main", marker_line(SCENARIOS, "dispatch")),
    ]
    assert b["stack"][-1]["function"] == "<module>"


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_method_qualname(py, procs):
    report, _, t = run_scenario(procs, py, "method", "0.5")
    b = the_blocker(report, qual(py, "Worker", "run"), tid=t.pid)
    assert b["stack"][0]["line"] == marker_line(SCENARIOS, "method")
    assert b["stack"][1]["function"] == "<lambda>"


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_deep_recursion_truncates(py, procs):
    report, _, t = run_scenario(procs, py, "recursion", "0.5")
    b = the_blocker(report, "recurse", tid=t.pid)
    st = b["stack"]
    assert st[0] == frame("recurse", marker_line(SCENARIOS, "recurse_bottom"))
    assert len(st) == 129, len(st)
    assert all(f["function"] == "recurse" for f in st[:128])
    assert st[128] == {"function": "<truncated>", "file": None, "line": None, "truncated": True}


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_non_ascii_names(py, procs, tmp_path):
    script = tmp_path / "prüfung_函数_𠀀.py"
    shutil.copy(SCENARIOS, script)
    report, _, t = run_scenario(procs, py, "unicode", "0.5", script=script)
    b = the_blocker(report, "schläft_ein", tid=t.pid)
    assert b["stack"][0] == frame("schläft_ein", marker_line(script, "unicode"), file=script)


def test_folded_output(procs):
    py = PYS[-1]
    from conftest import Target, Tracer
    t = Target(py.argv + [str(SCENARIOS), "nested", "0.5"])
    procs.append(t)
    tr = Tracer(t.pid, fmt="folded")
    procs.append(tr)
    t.trigger()
    t.wait_done()
    out = tr.stop()
    lines = [l for l in out.splitlines() if "level3" in l]
    assert lines, out
    stack, us = lines[0].rsplit(" ", 1)
    parts = stack.split(";")
    assert parts[0] == "python-%d" % t.pid
    assert parts[-1] == "[sleep]"
    l3 = "level3 (%s:%d)" % (SCENARIOS, marker_line(SCENARIOS, "level3"))
    l2 = "level2 (%s:%d)" % (SCENARIOS, marker_line(SCENARIOS, "level2"))
    assert parts[-2] == l3 and parts[-3] == l2
    assert 400000 <= int(us) <= 700000


@pytest.mark.parametrize("what", ["oncpu", "all"])
def test_folded_what(procs, what):
    """--what oncpu|all: sampled on-CPU stacks with an [on-cpu] leaf, beside
    (all) or instead of (oncpu) the off-CPU ones."""
    py = PYS[-1]
    from conftest import Target, Tracer
    t = Target(py.argv + [str(SCENARIOS), "profile", "0.6"])
    procs.append(t)
    tr = Tracer(t.pid, args=["--what", what], fmt="folded")
    procs.append(tr)
    t.trigger()
    done = t.wait_done()
    out = tr.stop()
    # the loop's two lines (the while and the += 1) share the samples
    burn = ";burn (%s:" % SCENARIOS
    on = [l for l in out.splitlines() if burn in l and l.rsplit(" ", 1)[0].endswith("[on-cpu]")]
    assert on, out
    lines = {int(l.split(burn)[1].split(")")[0]) for l in on}
    assert marker_line(SCENARIOS, "burn") in lines, out
    on_us = sum(int(l.rsplit(" ", 1)[1]) for l in on)
    # 199 Hz sampling of the busy loop's own CPU time (its wall time less
    # preemption, which a busy machine makes large): within 25% (sampling noise)
    truth = done.get("burned_cpu", done["burned"])
    assert abs(on_us / 1e6 - truth) <= 0.25 * truth, (on_us, done)
    rest = "rest (%s:%d);[sleep]" % (SCENARIOS, marker_line(SCENARIOS, "rest"))
    off = [l for l in out.splitlines() if rest in l]
    if what == "oncpu":
        assert not off and all(l.rsplit(" ", 1)[0].endswith("[on-cpu]") for l in out.splitlines())
    else:
        assert off, out


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_walker_without_bpf_loop(py, procs, monkeypatch):
    """Kernels before 5.17 have no bpf_loop(): the walker's steps then run in a
    bounded loop (HANGTRACE_BOUNDED_LOOPS=1 forces that path here).  It must
    load and give the same stacks: the sleeper's own (at syscall exit), the
    waker's (at wake-up), and the 128-frame cut of a deep one."""
    monkeypatch.setenv("HANGTRACE_BOUNDED_LOOPS", "1")
    report, done, t = run_scenario(procs, py, "lock", "0.8")
    b = the_blocker(report, "wait_for_lock", tid=t.pid)
    assert b["reason"] == "lock"
    assert b["stack"][0] == frame("wait_for_lock", marker_line(SCENARIOS, "acquire"))
    assert abs(b["total_s"] - done["waited"]) <= max(0.1 * done["waited"], 0.005), b
    assert b["waker"] is not None and b["waker"]["tid"] != t.pid, b
    assert [f["function"] for f in b["waker"]["stack"]][:2] == ["release_it", "holder"]
    assert b["waker"]["stack"][0]["line"] == marker_line(SCENARIOS, "release")

    report, _, t = run_scenario(procs, py, "recursion", "0.5")
    st = the_blocker(report, "recurse", tid=t.pid)["stack"]
    assert st[0] == frame("recurse", marker_line(SCENARIOS, "recurse_bottom"))
    assert len(st) == 129 and all(f["function"] == "recurse" for f in st[:128]), st
    assert st[128]["truncated"]


@pytest.mark.parametrize("py", PYS, ids=ids)
def test_unreported_switch_ins_are_repaired(py, procs, monkeypatch):
    """sched_switch does not report every switch (on these VMs, none away from
    the sandbox's init threads): a thread then seems to go off-CPU and never
    come back.  HANGTRACE_HIDE_SWITCH_INS=1 hides every switch-in of the
    traced threads; the blocks must still come out whole, with their stack,
    reason and waker, closed at the thread's syscall exit."""
    monkeypatch.setenv("HANGTRACE_HIDE_SWITCH_INS", "1")
    report, done, t = run_scenario(procs, py, "lock", "0.5")
    b = the_blocker(report, "wait_for_lock", tid=t.pid)
    assert b["reason"] == "lock" and not b["still_blocked"], b
    assert b["stack"][0] == frame("wait_for_lock", marker_line(SCENARIOS, "acquire"))
    assert abs(b["total_s"] - done["waited"]) <= max(0.1 * done["waited"], 0.005), b
    assert b["waker"] is not None and b["waker"]["tid"] != t.pid, b
    assert [f["function"] for f in b["waker"]["stack"]][:2] == ["release_it", "holder"]

    report, done, t = run_scenario(procs, py, "sleep", "0.5")
    b = the_blocker(report, "nap", tid=t.pid)
    assert b["reason"] == "sleep" and b["woken_by_timeout"], b
    assert abs(b["total_s"] - done["slept"]) <= 0.1 * done["slept"], b
