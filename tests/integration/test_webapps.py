# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Stalls in real web stacks (FastAPI+uvicorn, eventlet, gevent, uvloop) on Debian's python3."""
import json
import pathlib
import time
import urllib.request

import pytest

from conftest import Target, Tracer, marker_line, requires_root, run_scenario
from pythons import interpreters

pytestmark = requires_root
APPS = pathlib.Path(__file__).parent / "targets" / "webapps.py"
LOOPS = pathlib.Path(__file__).parent / "targets" / "loops.py"
SYS_PY = "/usr/bin/python3"


def need(module):
    try:
        __import__(module)
    except ImportError:
        pytest.skip("Debian's python3-%s is not installed (make deps installs it)" % module)


def get(port, path, timeout=30):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return r.read()


def traced_app(procs, kind):
    t = Target([SYS_PY, str(APPS), kind])
    procs.append(t)
    tr = Tracer(t.pid)
    procs.append(tr)
    body = get(t.ready["port"], "/stream")
    truth = json.loads(get(t.ready["port"], "/truth"))
    time.sleep(0.2)
    return tr.stop(), truth, body, t


def near(stalls, blocked):
    return [s for s in stalls if abs(s["duration_s"] - blocked) <= max(0.1 * blocked, 0.005)]


def check_stalls(report, tid, truth, together=False):
    """Every blocking part the app measured is a stall of about that length.
    @together: the parts ran back to back without a return to the loop (a green
    thread that never yields), so they make one stall of their sum."""
    stalls = [s for s in report["stalls"] if s["tid"] == tid]
    assert len(truth["blocked"]) == 3
    if together:
        total = sum(truth["blocked"])
        assert near(stalls, total), "no stall of %.3f s in %s" % (total, stalls)
        return stalls
    for blocked in truth["blocked"]:
        assert near(stalls, blocked), "no stall of %.3f s in %s" % (blocked, stalls)
    return stalls


def functions(stack):
    return [f["function"] for f in stack]


def test_fastapi_sse_with_threadpoolexecutor(procs):
    need("fastapi")
    need("uvicorn")
    report, truth, body, t = traced_app(procs, "sse")
    assert body.count(b"data:") == 3
    stalls = check_stalls(report, t.pid, truth)
    b = report["blockers"][max(stalls, key=lambda s: s["duration_s"])["blocker"]]
    assert b["reason"] == "lock" and b["event_loop"]
    fns = functions(b["stack"])
    assert any(f.endswith("shutdown") for f in fns), fns
    gen = [f for f in b["stack"] if f["function"].endswith("event_stream")]
    assert gen and gen[0]["file"] == str(APPS), b["stack"]
    assert "ThreadPoolExecutor" in b["hint"]
    ww = b["waker"]["while_waiting"]
    assert ww and ww["reason"] == "socket", b["waker"]
    fetch = [f for f in ww["stack"] if f["function"].endswith("fetch") and f["file"] == str(APPS)]
    assert fetch and fetch[0]["line"] == marker_line(APPS, "sse_fetch"), ww


@pytest.mark.parametrize("kind, hint", [("eventlet", "eventlet.sleep()"),
                                        ("gevent", "gevent.sleep()")])
def test_unpatched_time_sleep_in_green_server(procs, kind, hint):
    need(kind)
    report, truth, body, t = traced_app(procs, kind)
    assert body.count(b"frame") == 3
    # unpatched, the green thread never yields between frames: one stall of all three
    stalls = check_stalls(report, t.pid, truth, together=True)
    b = report["blockers"][max(stalls, key=lambda s: s["duration_s"])["blocker"]]
    assert b["reason"] == "sleep" and b["event_loop"]
    assert b["stack"][0]["function"].endswith("frames")  # qualname on 3.11+
    assert b["stack"][0]["file"] == str(APPS)
    assert b["stack"][0]["line"] == marker_line(APPS, "wsgi_sleep")
    assert hint in b["hint"]
    assert b["count"] >= 3


def test_uvloop_time_sleep(procs):
    need("uvloop")
    py = [i for i in interpreters() if i.argv == [SYS_PY] or i.executable == "/usr/bin/python3.11"]
    if not py:
        pytest.skip("Debian's /usr/bin/python3 not found")
    t = Target([SYS_PY, str(LOOPS), "sleep", "--uvloop"])
    procs.append(t)
    tr = Tracer(t.pid)
    procs.append(tr)
    t.trigger()
    done = t.wait_done()
    time.sleep(0.2)
    report = tr.stop()
    stalls = [s for s in report["stalls"] if s["tid"] == t.pid]
    st = max(stalls, key=lambda s: s["duration_s"])
    assert abs(st["duration_s"] - done["blocked"]) <= max(0.1 * done["blocked"], 0.005)
    b = report["blockers"][st["blocker"]]
    assert b["reason"] == "sleep"
    assert b["stack"][0] == {"function": "sleepy", "file": str(LOOPS),
                             "line": marker_line(LOOPS, "sleepy")}
    assert "asyncio.sleep()" in b["hint"]


def test_requests_in_coroutine(procs):
    need("requests")
    t = Target([SYS_PY, str(LOOPS), "requests"])
    procs.append(t)
    tr = Tracer(t.pid)
    procs.append(tr)
    t.trigger()
    done = t.wait_done()
    time.sleep(0.2)
    report = tr.stop()
    st = max([s for s in report["stalls"] if s["tid"] == t.pid], key=lambda s: s["duration_s"])
    assert abs(st["duration_s"] - done["blocked"]) <= max(0.1 * done["blocked"], 0.005)
    b = report["blockers"][st["blocker"]]
    assert b["reason"] == "socket"
    assert marker_line(LOOPS, "requests") in [f["line"] for f in b["stack"] if f["file"] == str(LOOPS)]
    assert "`requests` call" in b["hint"]
