# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""`hangtrace agent`: host-wide, always on, feeding Prometheus, log pipelines
and Pyroscope.

Every test starts a real agent (limited with --include to the processes the
test starts, tagged on their command line, so other work on the machine is
left alone), real CPython processes that stall their asyncio loop a known
number of times (they measure each block themselves), and the real consumers:
Debian's Prometheus scraping the agent, `promtool check metrics`, a loopback
HTTP receiver checking Pyroscope's ingest API.  Everything started is ended
by pid.
"""
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid

import pytest

from conftest import HANGTRACE, TARGETS, Target, _Lines, marker_line, requires_root
import pythons

from prometheus_client.parser import text_string_to_metric_families
from test_formats import pprof_raw

APP = TARGETS / "agent_app.py"
COUNT = 4            # stalls each stalling target makes
BLOCK = 0.4          # seconds of each (time.sleep on the loop thread)
STALL_MS = "250"     # the agent's stall threshold: calm loops never get near it

pytestmark = requires_root


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


class Agent:
    """A running `hangtrace agent`, ready when the constructor returns."""

    def __init__(self, tmp, tag, args=(), port=None, env=None):
        self.port = port or free_port()
        self.events = tmp / "events.jsonl"
        self.profiles = tmp / "profiles"
        self.profiles.mkdir(exist_ok=True)
        argv = [HANGTRACE, "agent", "--metrics-addr", "127.0.0.1:%d" % self.port,
                "--events", str(self.events), "--profile-dir", str(self.profiles),
                "--include", "cmdline:" + tag, "--flush-interval", "0.5",
                "--stall", STALL_MS] + list(args)
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env)
        self.pid = self.p.pid
        self.err = _Lines(self.p.stderr)
        try:
            self.err.wait_for("hangtrace: agent running", 60)
        except (TimeoutError, EOFError):
            self.kill()
            raise

    def wait_traced(self, pid, timeout=20):
        """The agent found process @pid (it says so when it starts tracing it)."""
        self.err.wait_for("hangtrace: tracing process %d " % pid, timeout)

    def exposition(self):
        status, body = http_get("http://127.0.0.1:%d/metrics" % self.port)
        assert status == 200
        return body

    def samples(self, name, **labels):
        """Values of metric @name (a sample name: foo_total, foo_bucket) matching @labels."""
        out = []
        for fam in text_string_to_metric_families(self.exposition()):
            for s in fam.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    out.append((s.labels, s.value))
        return out

    def value(self, name, **labels):
        found = self.samples(name, **labels)
        assert len(found) == 1, "want one %s%r, got %r" % (name, labels, found)
        return found[0][1]

    def event_lines(self, pid=None):
        if not self.events.exists():
            return []
        out = []
        with open(self.events, encoding="utf-8") as f:
            for line in f:
                ev = json.loads(line)  # every line parses on its own
                if pid is None or ev["process"]["pid"] == pid:
                    out.append(ev)
        return out

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signal it; returns (exit status, seconds it took to exit)."""
        t0 = time.monotonic()
        os.kill(self.pid, sig)
        rc = self.p.wait(timeout=timeout)
        took = time.monotonic() - t0
        self.err.t.join(5)
        return rc, took

    def kill(self):
        if self.p.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.p.wait(timeout=30)


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.25)


def copy_app(tmp, name):
    """The target under its own script name: the service label tells them apart."""
    dst = tmp / name
    shutil.copy(APP, dst)
    return dst


def three_versions():
    """Three interpreters of different minor versions (newest-first spread)."""
    seen, out = set(), []
    for py in reversed(pythons.interpreters()):
        if py.minor not in seen:
            seen.add(py.minor)
            out.append(py)
    if len(out) < 3:
        pytest.skip("needs three CPython versions, found %r" % sorted(seen))
    # the oldest, the newest and one between: different layouts at once
    return [out[-1], out[0], out[len(out) // 2]]


def start_app(procs, py, script, mode, tag, count=COUNT):
    t = Target(py.cmd(script, mode, tag, count, BLOCK))
    procs.append(t)
    return t


def check_stall_events(events, script, done):
    """One event per stall, each naming blocking_call at its line, durations from the truth."""
    block_line = marker_line(script, "agent-block")
    handler_line = marker_line(script, "agent-handler")
    assert len(events) == COUNT, json.dumps(events, indent=1)[:3000]
    events.sort(key=lambda e: e["start"])
    for ev, block, cb in zip(events, done["blocks"], done["callbacks"]):
        assert ev["event"] == "stall"
        assert ev["process"]["script"] == script.name
        assert ev["reason"] == "sleep"
        assert "time.sleep" in ev["hint"]
        stack = ev["blocker"]["stack"]
        assert stack[0] == {"function": "blocking_call", "file": str(script), "line": block_line}
        assert stack[1] == {"function": "handler", "file": str(script), "line": handler_line}
        assert ev["blocker"]["syscall"] in ("clock_nanosleep", "nanosleep", "select", "pselect6")
        # the stall is the loop iteration: the block and little more
        assert block - 0.005 <= ev["duration_s"] <= cb + 0.1, (ev["duration_s"], block, cb)
        assert ev["tid"] == ev["process"]["pid"]  # asyncio runs on the main thread


# --- Prometheus ---------------------------------------------------------------

class Prometheus:
    """Debian's prometheus binary on loopback, scraping the agent every second."""

    def __init__(self, tmp, agent_port):
        self.port = free_port()
        cfg = tmp / "prometheus.yml"
        cfg.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                       "scrape_configs:\n  - job_name: hangtrace\n    static_configs:\n"
                       "      - targets: ['127.0.0.1:%d']\n" % agent_port)
        self.log = open(tmp / "prometheus.log", "w")
        self.p = subprocess.Popen(
            [shutil.which("prometheus"), "--config.file=%s" % cfg,
             "--storage.tsdb.path=%s" % (tmp / "tsdb"),
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.p.pid
        wait_until(self._ready, 60, "prometheus to be ready")

    def _ready(self):
        try:
            return http_get("http://127.0.0.1:%d/-/ready" % self.port, 2)[0] == 200
        except OSError:
            return False

    def query(self, q):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (self.port, urllib.parse.urlencode({"query": q}))
        body = json.loads(http_get(url)[1])
        assert body["status"] == "success", body
        return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1])
                for r in body["data"]["result"]}

    def one(self, q):
        res = self.query(q)
        assert len(res) == 1, "%s: %r" % (q, res)
        return next(iter(res.values()))

    def kill(self):
        if self.p.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.p.wait(timeout=30)
        self.log.close()


@pytest.mark.skipif(not shutil.which("prometheus") or not shutil.which("promtool"),
                    reason="Debian's prometheus package is not installed")
def test_prometheus_scrapes_stalls_of_the_right_service(procs, tmp_path):
    tag = "agtest-" + uuid.uuid4().hex[:8]
    agent = Agent(tmp_path, tag)
    procs.append(agent)
    prom = Prometheus(tmp_path, agent.port)
    procs.append(prom)

    # three processes of different versions start after the agent; one stalls its loop
    old, new, mid = three_versions()
    stall_py = copy_app(tmp_path, "stall_app.py")
    calm_a = copy_app(tmp_path, "calm_a.py")
    calm_b = copy_app(tmp_path, "calm_b.py")
    staller = start_app(procs, mid, stall_py, "stall", tag)
    quiet1 = start_app(procs, old, calm_a, "calm", tag)
    quiet2 = start_app(procs, new, calm_b, "calm", tag)
    for t in (staller, quiet1, quiet2):
        agent.wait_traced(t.pid)
    staller.trigger()
    done = staller.wait_done()
    assert len(done["blocks"]) == COUNT

    # Prometheus has scraped the agent after the stalls were counted
    stalls_q = 'hangtrace_event_loop_stalls_total{script="stall_app.py"}'
    wait_until(lambda: prom.query(stalls_q) and prom.one(stalls_q) >= COUNT, 40,
               "prometheus to see %d stalls of stall_app.py" % COUNT)
    time.sleep(1.5)  # one more scrape: nothing else may arrive
    assert prom.one(stalls_q) == COUNT
    exe = os.path.basename(os.readlink("/proc/%d/exe" % staller.pid))
    series = prom.query(stalls_q)
    labels = json.loads(next(iter(series)))
    assert labels["job"] == "hangtrace" and "pid" not in labels
    if not mid.via_loader:
        assert labels["exe"] == exe

    # the histogram: every stall is a BLOCK-second one, none short, sum from the truth
    def bucket(le):
        return prom.one('hangtrace_event_loop_stall_duration_seconds_bucket'
                        '{script="stall_app.py",le="%s"}' % le)
    assert bucket("0.25") == 0
    assert bucket("1") == COUNT
    assert bucket("+Inf") == COUNT
    total = prom.one('hangtrace_event_loop_stall_duration_seconds_sum{script="stall_app.py"}')
    assert sum(done["blocks"]) - 0.02 <= total <= sum(done["callbacks"]) + 0.1 * COUNT
    # the right service only: the calm ones are there, with nothing
    for name in ("calm_a.py", "calm_b.py"):
        assert prom.one('hangtrace_tracked_processes{script="%s"}' % name) == 1
        assert prom.one('hangtrace_event_loop_stalls_total{script="%s"}' % name) == 0
        assert prom.one('hangtrace_event_loop_stall_duration_seconds_count{script="%s"}'
                        % name) == 0
    # off-CPU seconds by reason: the stalls' sleeps are there
    sleep_s = prom.one('hangtrace_offcpu_seconds_total{script="stall_app.py",reason="sleep"}')
    assert sleep_s >= sum(done["blocks"]) - 0.02
    assert prom.one("hangtrace_processes_started_total") >= 3
    assert prom.one("process_cpu_seconds_total") > 0

    # the exposition passes Prometheus' own linter
    text = agent.exposition()
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                          capture_output=True, timeout=30)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout.strip() == "" and lint.stderr.strip() == "", lint.stdout + lint.stderr

    rc, took = agent.stop()
    assert rc == 0, "".join(agent.err.all)


# --- stall events and profiles -----------------------------------------------

def test_stall_events_and_profiles(procs, tmp_path):
    tag = "agtest-" + uuid.uuid4().hex[:8]
    agent = Agent(tmp_path, tag, ["--profile-interval", "2", "--events", "-"])
    procs.append(agent)
    py = pythons.interpreters()[-1]
    script = copy_app(tmp_path, "evt_app.py")
    t = start_app(procs, py, script, "stall", tag)
    agent.wait_traced(t.pid)
    t.trigger()
    done = t.wait_done()
    # --events - : the lines come on stdout, ready for journald or a shipper
    time.sleep(2.5)  # a flush, and the profile window closes
    rc, took = agent.stop()
    assert rc == 0, "".join(agent.err.all)
    lines = [json.loads(x) for x in agent.p.stdout.read().splitlines()]
    mine = [e for e in lines if e["process"]["pid"] == t.pid]
    check_stall_events(mine, script, done)
    assert mine[0]["process"]["python"] == "%d.%d.%d" % py.version
    assert mine[0]["thread"]

    # folded profiles of this process: blocking_call's sleep, in microseconds
    block_line = marker_line(script, "agent-block")
    files = sorted(agent.profiles.glob("hangtrace-*-evt_app.py-%d-*.folded" % t.pid))
    assert files, sorted(os.listdir(agent.profiles))
    leaf = "blocking_call (%s:%d);[sleep] " % (script, block_line)
    us = 0
    for f in files:
        for line in f.read_text().splitlines():
            if line.split(" ")[-2:] and leaf in line:
                us += int(line.rsplit(" ", 1)[1])
    # each block in exactly one window; a block ending between a window's report
    # and its reset may be lost (docs/agent.md), never counted twice
    assert sum(done["blocks"]) - BLOCK - 0.02 <= us / 1e6 <= sum(done["blocks"]) + 0.02

    # the same windows as pprof, read back by go tool pprof
    pbs = sorted(agent.profiles.glob("hangtrace-*-evt_app.py-%d-*.pb.gz" % t.pid))
    assert [p.name[:-len(".pb.gz")] for p in pbs] == [f.name[:-len(".folded")] for f in files]
    ns, matched = 0, 0
    for pb in pbs:
        types, samples, raw = pprof_raw(tmp_path, pb)
        for smp in samples:
            top = smp["stack"][0]
            # (--what all: an on-CPU sample may land on the same line, as the call starts)
            if (top["function"], top["file"], top["line"]) == ("blocking_call", str(script),
                                                                block_line) and \
                    smp["labels"]["reason"] != "on-cpu":
                assert smp["labels"]["reason"] == "sleep"
                ns += smp["value"]["off_cpu/nanoseconds"]
                matched += 1
    # folded rounds each line to the microsecond
    assert matched and ns == pytest.approx(us * 1000, abs=matched * 500)


# --- names from the target are untrusted --------------------------------------

def test_hostile_script_name(procs, tmp_path):
    """A script named with quotes, a backslash, a newline, markup, an escape and
    invalid UTF-8: the exposition stays valid (promtool, Prometheus' parser),
    each JSON line parses, the profile file name is plain."""
    tag = "agtest-" + uuid.uuid4().hex[:8]
    agent = Agent(tmp_path, tag, ["--profile-interval", "1"])
    procs.append(agent)
    py = pythons.interpreters()[-1]
    raw = b'we"ird\\name\n<b>\x1b[31m\xff.py'
    script = os.path.join(os.fsencode(tmp_path), raw)
    shutil.copy(APP, script)
    t = Target(py.cmd(os.fsdecode(script), "stall", tag, 2, BLOCK))
    procs.append(t)
    agent.wait_traced(t.pid)
    t.trigger()
    t.wait_done()
    wait_until(lambda: len(agent.event_lines(t.pid)) >= 2, 10, "the stall events")
    text = agent.exposition()
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                          capture_output=True, timeout=30) if shutil.which("promtool") else None
    assert lint is None or lint.returncode == 0, lint.stdout + lint.stderr
    label = raw.decode("utf-8", "replace").replace("\x1b", "?")
    stalls = agent.samples("hangtrace_event_loop_stalls_total", script=label)
    assert stalls and stalls[0][1] == 2, [s for s in agent.samples(
        "hangtrace_event_loop_stalls_total")]
    ev = agent.event_lines(t.pid)[0]
    assert ev["process"]["script"] == raw.decode("utf-8", "replace")
    assert ev["blocker"]["stack"][0]["function"] == "blocking_call"
    time.sleep(1.5)
    names = [n for n in os.listdir(agent.profiles) if "-%d-" % t.pid in n]
    assert names
    for n in names:
        assert all(c.isalnum() or c in "._-" for c in n), n
    rc, took = agent.stop()
    assert rc == 0, "".join(agent.err.all)
    # the log never carries the target's control characters (terminal escapes)
    line = next(x for x in agent.err.all if x.startswith("hangtrace: tracing process %d " % t.pid))
    assert 'we"ird\\name?<b>?[31m\ufffd.py)' in line, line
    assert not any("\x1b" in x for x in agent.err.all)


def test_pid_label_only_when_asked(procs, tmp_path):
    """Two processes of one service: one series by default, one per pid with --pid-label."""
    tag = "agtest-" + uuid.uuid4().hex[:8]
    py = pythons.interpreters()[-1]
    script = copy_app(tmp_path, "twin_app.py")
    twins = [start_app(procs, py, script, "calm", tag) for _ in range(2)]
    for args, want in (([], [None]), (["--pid-label"], sorted(str(t.pid) for t in twins))):
        agent = Agent(tmp_path, tag, args)
        procs.append(agent)
        wait_until(lambda: agent.samples("hangtrace_tracked_processes", script="twin_app.py"),
                   10, "twin_app.py")
        series = agent.samples("hangtrace_tracked_processes", script="twin_app.py")
        assert sorted((lab.get("pid") for lab, v in series), key=str) == want, series
        assert sum(v for lab, v in series) == 2
        rc, took = agent.stop()
        assert rc == 0, "".join(agent.err.all)


# --- processes coming and going, namespaces -----------------------------------

class ByPid:
    """A process we did not start ourselves, killed by pid at the end."""

    def __init__(self, pid):
        self.pid = pid
        with open("/proc/%d/stat" % pid) as f:
            self.start = f.read().rsplit(")", 1)[1].split()[19]

    def kill(self):
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                if f.read().rsplit(")", 1)[1].split()[19] != self.start:
                    return  # gone, the pid reused
            os.kill(self.pid, signal.SIGKILL)
        except (OSError, IndexError):
            pass


def children_of(pid):
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as f:
            out += [int(x) for x in f.read().split()]
    return out


@pytest.mark.skipif(not shutil.which("unshare"), reason="unshare (util-linux) not installed")
def test_processes_come_and_go_and_namespaces(procs, tmp_path):
    tag = "agtest-" + uuid.uuid4().hex[:8]
    agent = Agent(tmp_path, tag)
    procs.append(agent)
    py = pythons.interpreters()[-1]
    # one that stalls twice and exits
    short = copy_app(tmp_path, "short_app.py")
    a = start_app(procs, py, short, "exit", tag, count=2)
    agent.wait_traced(a.pid)
    a.trigger()
    a.wait_done()
    a.p.wait(timeout=30)
    agent.err.wait_for("hangtrace: process %d exited" % a.pid, 10)
    wait_until(lambda: agent.value("hangtrace_tracked_processes", script="short_app.py") == 0,
               10, "short_app.py to be forgotten")
    assert agent.value("hangtrace_processes_exited_total") >= 1
    assert len(agent.event_lines(a.pid)) == 2  # its stalls were written before it went

    # a new one appears afterwards
    later = copy_app(tmp_path, "later_app.py")
    b = start_app(procs, py, later, "calm", tag)
    agent.wait_traced(b.pid)
    wait_until(lambda: agent.samples("hangtrace_tracked_processes", script="later_app.py"),
               10, "later_app.py to be tracked")
    assert agent.value("hangtrace_tracked_processes", script="later_app.py") == 1

    # one in its own PID and mount namespaces: found, stacks read through /proc/PID/root
    ns_app = copy_app(tmp_path, "ns_app.py")
    c = Target(["unshare", "--fork", "--pid", "--mount-proc", "--kill-child"] +
               py.cmd(ns_app, "stall", tag, COUNT, BLOCK))
    procs.append(c)
    assert c.ready["pid"] == 1  # pid 1 of its namespace
    inner = children_of(c.pid)
    assert len(inner) == 1
    procs.append(ByPid(inner[0]))  # killed by its host pid too, whatever unshare does
    agent.wait_traced(inner[0])
    c.trigger()
    done = c.wait_done()
    wait_until(lambda: len(agent.event_lines(inner[0])) >= COUNT, 10, "the namespaced stalls")
    time.sleep(1)
    check_stall_events(agent.event_lines(inner[0]), ns_app, done)
    rc, took = agent.stop()
    assert rc == 0, "".join(agent.err.all)


# --- lifecycle ----------------------------------------------------------------

def test_sigterm_flushes_everything_within_2s(procs, tmp_path):
    tag = "agtest-" + uuid.uuid4().hex[:8]
    # nothing is written before the end: long intervals
    agent = Agent(tmp_path, tag, ["--flush-interval", "60", "--profile-interval", "60"])
    procs.append(agent)
    py = pythons.interpreters()[0]
    script = copy_app(tmp_path, "term_app.py")
    t = start_app(procs, py, script, "stall", tag)
    agent.wait_traced(t.pid)
    t.trigger()
    done = t.wait_done()
    time.sleep(0.3)
    assert agent.event_lines(t.pid) == []  # pending, not yet written
    rc, took = agent.stop(signal.SIGTERM)
    assert rc == 0, "".join(agent.err.all)
    assert took <= 2.0, "agent took %.2f s to exit" % took
    check_stall_events(agent.event_lines(t.pid), script, done)
    files = list(agent.profiles.glob("hangtrace-*-term_app.py-%d-*.folded" % t.pid))
    assert len(files) == 1, sorted(os.listdir(agent.profiles))
    assert "blocking_call (%s:%d)" % (script, marker_line(script, "agent-block")) in \
        files[0].read_text()
    assert not list(agent.profiles.glob("*.tmp.*"))
    # nothing of ours stays attached
    assert "agent stopped" in "".join(agent.err.all)


def test_sighup_reopens_the_events_file(procs, tmp_path):
    tag = "agtest-" + uuid.uuid4().hex[:8]
    agent = Agent(tmp_path, tag)
    procs.append(agent)
    py = pythons.interpreters()[-1]
    script = copy_app(tmp_path, "hup_app.py")
    t = start_app(procs, py, script, "stall", tag)
    agent.wait_traced(t.pid)
    rotated = tmp_path / "events.jsonl.1"
    agent.events.touch()
    os.rename(agent.events, rotated)  # logrotate moves the file ...
    os.kill(agent.pid, signal.SIGHUP)  # ... and tells the agent
    agent.err.wait_for("hangtrace: SIGHUP", 10)
    t.trigger()
    done = t.wait_done()
    wait_until(lambda: len(agent.event_lines(t.pid)) >= COUNT, 10, "events in the new file")
    check_stall_events(agent.event_lines(t.pid), script, done)
    assert rotated.read_text() == ""
    rc, took = agent.stop()
    assert rc == 0, "".join(agent.err.all)


# --- Pyroscope ----------------------------------------------------------------

class Receiver:
    """A loopback Pyroscope ingest endpoint that checks every request against the
    documented API: POST /ingest, name (app{labels}), from, until (unix seconds),
    format=folded, sampleRate, spyName, units, aggregationType; a folded body."""

    def __init__(self):
        self.requests, self.errors = [], []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                try:
                    outer.check(self.path, body)
                except AssertionError as e:
                    outer.errors.append(str(e))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def check(self, path, body):
        u = urllib.parse.urlsplit(path)
        assert u.path == "/ingest", u.path
        q = urllib.parse.parse_qs(u.query, strict_parsing=True)
        for k in ("name", "from", "until", "format", "sampleRate", "spyName", "units",
                  "aggregationType"):
            assert len(q.get(k, [])) == 1, (k, q)
        q = {k: v[0] for k, v in q.items()}
        name = q["name"]
        assert "{" in name and name.endswith("}"), name
        app, labels = name[:-1].split("{", 1)
        assert app and all(c.isalnum() or c in "._-" for c in app), app
        for kv in labels.split(","):
            k, v = kv.split("=", 1)
            assert k.isidentifier() and v and "," not in v and "}" not in v, kv
        assert int(q["from"]) <= int(q["until"]) <= time.time() + 5
        assert q["format"] == "folded"
        assert int(q["sampleRate"]) > 0
        assert q["units"] in ("samples", "objects", "bytes")
        assert q["aggregationType"] in ("sum", "average")
        lines = body.splitlines()
        assert lines
        for line in lines:
            stack, value = line.rsplit(" ", 1)
            assert stack and int(value) >= 0, line
        self.requests.append((q, body))

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_pyroscope_push_and_receiver_down(procs, tmp_path):
    tag = "agtest-" + uuid.uuid4().hex[:8]
    rx = Receiver()
    try:
        agent = Agent(tmp_path, tag, ["--profile-interval", "1", "--pyroscope",
                                      "http://127.0.0.1:%d" % rx.port,
                                      "--pyroscope-timeout", "1"])
        procs.append(agent)
        py = pythons.interpreters()[-1]
        script = copy_app(tmp_path, "push_app.py")
        t = start_app(procs, py, script, "stall", tag)
        agent.wait_traced(t.pid)
        t.trigger()
        t.wait_done()
        want = "blocking_call (%s:%d);[sleep] " % (script, marker_line(script, "agent-block"))
        wait_until(lambda: any(want in body for q, body in rx.requests), 15,
                   "a pushed profile with blocking_call")
        assert not rx.errors, rx.errors
        q = next(q for q, body in rx.requests if want in body)
        assert "script=push_app.py" in q["name"]
        assert agent.value("hangtrace_pyroscope_pushes_total", result="ok") >= 1
    finally:
        rx.stop()

    # the receiver is down: tracing goes on, the loss is counted
    t2 = start_app(procs, py, copy_app(tmp_path, "after_app.py"), "stall", tag)
    agent.wait_traced(t2.pid)
    t2.trigger()
    done = t2.wait_done()
    wait_until(lambda: len(agent.event_lines(t2.pid)) >= COUNT, 10, "events while Pyroscope is down")
    check_stall_events(agent.event_lines(t2.pid), tmp_path / "after_app.py", done)
    wait_until(lambda: agent.value("hangtrace_pyroscope_pushes_total", result="dropped") >= 1,
               30, "a dropped push to be counted")
    t0 = time.monotonic()
    agent.exposition()
    assert time.monotonic() - t0 < 1.0  # the endpoint never waits for the pusher
    rc, took = agent.stop()
    assert rc == 0, "".join(agent.err.all)
    assert took <= 2.0, "a dead Pyroscope held the exit %.2f s" % took


def test_pyroscope_that_never_answers(procs, tmp_path):
    """A server that takes the connection and never answers: tracing, the
    events and the metrics endpoint go on, and SIGTERM still exits within 2 s
    with a push in flight."""
    tag = "agtest-" + uuid.uuid4().hex[:8]
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes the handshakes; nobody reads
        agent = Agent(tmp_path, tag, ["--profile-interval", "1", "--pyroscope",
                                      "http://127.0.0.1:%d" % silent.getsockname()[1],
                                      "--pyroscope-timeout", "30"])
        procs.append(agent)
        py = pythons.interpreters()[-1]
        script = copy_app(tmp_path, "silent_app.py")
        t = start_app(procs, py, script, "stall", tag)
        agent.wait_traced(t.pid)
        t.trigger()
        done = t.wait_done()
        wait_until(lambda: len(agent.event_lines(t.pid)) >= COUNT, 10, "events")
        check_stall_events(agent.event_lines(t.pid), script, done)
        time.sleep(1.5)  # a profile is being pushed (and hangs) by now
        t0 = time.monotonic()
        assert agent.value("hangtrace_pyroscope_pushes_total", result="ok") == 0
        assert time.monotonic() - t0 < 1.0
        rc, took = agent.stop()
    assert rc == 0, "".join(agent.err.all)
    assert took <= 2.0, "a silent Pyroscope held the exit %.2f s" % took


# --- memory caps ---------------------------------------------------------------

MANY = TARGETS / "agent_many.py"


def lint_metrics(text):
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                          capture_output=True, timeout=30)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout.strip() == "" and lint.stderr.strip() == "", lint.stdout + lint.stderr


def warned_once(agent, needle):
    lines = [x for x in agent.err.all if needle in x]
    assert len(lines) == 1, (needle, "".join(agent.err.all))
    assert lines[0].startswith("hangtrace: warning: "), lines[0]


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool (Debian prometheus) not installed")
def test_tiny_stack_and_symbol_caps_are_counted(procs, tmp_path):
    """--max-stacks 4 --max-aggregates 4 --max-symbols 8 against 64 distinct
    3-deep stacks (192 functions): each limit is counted and logged once, the
    agent keeps serving a valid exposition and exits cleanly on SIGTERM."""
    tag = "agtest-" + uuid.uuid4().hex[:8]
    agent = Agent(tmp_path, tag, ["--max-stacks", "4", "--max-aggregates", "4",
                                  "--max-symbols", "8", "--profile-interval", "2"])
    procs.append(agent)
    py = pythons.interpreters()[-1]
    t = Target(py.cmd(MANY, tag, 64))
    procs.append(t)
    agent.wait_traced(t.pid)
    t.trigger()
    t.wait_done()

    limits = ("stacks", "aggregates", "symbols")

    def hits():
        got = {k: agent.value("hangtrace_limit_hits_total", limit=k) for k in limits}
        return all(got.values()) and got
    first = wait_until(hits, 20, "the stacks, aggregates and symbols limits to be hit")
    # still going: later windows hit the caps again (each window starts empty)
    time.sleep(2.5)
    assert agent.p.poll() is None, "".join(agent.err.all)
    text = agent.exposition()
    lint_metrics(text)
    later = {k: agent.value("hangtrace_limit_hits_total", limit=k) for k in limits}
    assert all(later[k] > first[k] for k in limits), (first, later)
    print("limit hits after the first hit and 2.5 s later:", first, later)
    # the BPF side's own counts of what did not fit
    lost = {k: agent.value("hangtrace_lost_events_total", where=k)
            for k in ("stacks_full", "aggregates_full", "samples")}
    assert agent.value("hangtrace_limit_hits_total", limit="stacks") == lost["stacks_full"]
    assert agent.value("hangtrace_limit_hits_total", limit="aggregates") == \
        lost["aggregates_full"] + lost["samples"]
    assert agent.value("hangtrace_tracked_processes", script="agent_many.py") == 1
    # the profiles still name what was kept: leaves of the generated chains
    folded = "".join(f.read_text() for f in
                     agent.profiles.glob("hangtrace-*-agent_many.py-%d-*.folded" % t.pid))
    assert "leaf_" in folded and "[sleep]" in folded, folded[:2000]

    rc, took = agent.stop(signal.SIGTERM)
    assert rc == 0, "".join(agent.err.all)
    assert took <= 2.0, "agent took %.2f s to exit" % took
    assert "agent stopped" in "".join(agent.err.all)
    warned_once(agent, 'limit="stacks"')
    warned_once(agent, 'limit="symbols"')
    # off-CPU blocks and on-CPU samples share the aggregates limit: one line each
    assert 1 <= len([x for x in agent.err.all if 'limit="aggregates"' in x]) <= 2
    assert any("--max-aggregates" in x for x in agent.err.all)
    assert any("--max-stacks" in x for x in agent.err.all)
    assert any("--max-symbols" in x for x in agent.err.all)


def test_symbol_cap_keeps_stall_blame_exact(procs, tmp_path):
    """With --max-symbols 4 the asyncio stack of a stall does not fit in the
    cache: frames beyond it are read uncached, and the stall events still name
    blocking_call and handler at their lines, durations from the target."""
    tag = "agtest-" + uuid.uuid4().hex[:8]
    agent = Agent(tmp_path, tag, ["--max-symbols", "4"])
    procs.append(agent)
    py = pythons.interpreters()[-1]
    script = copy_app(tmp_path, "symcap_app.py")
    t = start_app(procs, py, script, "stall", tag)
    agent.wait_traced(t.pid)
    t.trigger()
    done = t.wait_done()
    wait_until(lambda: len(agent.event_lines(t.pid)) >= COUNT, 10, "the stall events")
    check_stall_events(agent.event_lines(t.pid), script, done)
    assert agent.value("hangtrace_limit_hits_total", limit="symbols") > 0
    rc, took = agent.stop(signal.SIGTERM)
    assert rc == 0, "".join(agent.err.all)
    warned_once(agent, 'limit="symbols"')


# --- refusals -----------------------------------------------------------------

def run_agent(args, **kw):
    return subprocess.run([HANGTRACE, "agent"] + args, capture_output=True, text=True,
                          timeout=60, **kw)


@pytest.mark.parametrize("args,message", [
    (["--metrics-addr", "nonsense"], "bad --metrics-addr"),
    (["--include", "cmdline:("], "bad pattern"),
    (["--pyroscope", "ftp://x"], "http:// or https://"),
    (["--profile-dir", "/nonexistent/dir"], "not a directory"),
    (["--flush-interval", "0"], "bad duration"),
    (["stray"], "unexpected argument"),
    (["--max-stacks", "0"], "bad number"),
    (["--max-aggregates", "99999999"], "bad number"),
    (["--max-symbols", "-1"], "bad number"),
])
def test_bad_arguments_one_line_error(args, message):
    r = run_agent(args + ["--metrics-addr", "127.0.0.1:%d" % free_port()]
                  if args[0] != "--metrics-addr" else args)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert "hangtrace" in r.stderr.splitlines()[0]


def test_metrics_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        r = run_agent(["--metrics-addr", "127.0.0.1:%d" % s.getsockname()[1]])
    assert r.returncode == 1
    assert r.stderr.startswith("hangtrace: error: cannot serve metrics on"), r.stderr


def test_needs_root():
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) not installed")
    r = subprocess.run(nobody + [HANGTRACE, "agent"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.strip() == ("hangtrace: error: hangtrace needs root (BPF and reading another "
                                "process's memory): run it with sudo")


# --- libcurl and libmicrohttpd, loaded at run time ------------------------------

def mapped(pid):
    """The file names of the shared objects process @pid has mapped."""
    with open("/proc/%d/maps" % pid) as f:
        return {os.path.basename(line.split(None, 5)[5].strip())
                for line in f if len(line.split(None, 5)) == 6}


def test_binary_links_neither_libcurl_nor_libmicrohttpd():
    """They are dlopen()ed by the agent (user/dynlib.c): no other command maps
    them and their dependencies (gnutls, krb5, ldap...)."""
    ldd = subprocess.run(["ldd", HANGTRACE], capture_output=True, text=True, timeout=30)
    assert ldd.returncode == 0, ldd.stderr
    assert "libbpf.so" in ldd.stdout  # ldd did list the binary's libraries
    for lib in ("libcurl", "libmicrohttpd", "libgnutls", "libkrb5", "libldap"):
        assert lib not in ldd.stdout, ldd.stdout


@pytest.fixture
def fake_libs(tmp_path):
    """A directory for LD_LIBRARY_PATH: libmicrohttpd.so.12 and libcurl.so.4
    found there first are empty shared objects (every dlsym fails), and a
    libcurl.so.4 in @bad that is not an ELF file at all (dlopen fails)."""
    if not shutil.which("cc"):
        pytest.skip("no C compiler to build the empty shared objects")
    empty, bad = tmp_path / "empty", tmp_path / "bad"
    empty.mkdir()
    bad.mkdir()
    src = tmp_path / "empty.c"
    src.write_text("int hangtrace_test_nothing;\n")
    for soname in ("libmicrohttpd.so.12", "libcurl.so.4"):
        subprocess.run(["cc", "-shared", "-fPIC", "-Wl,-soname," + soname, str(src),
                        "-o", str(empty / soname)], check=True, timeout=60)
    (bad / "libcurl.so.4").write_text("not a shared object\n")
    return empty, bad


@pytest.mark.parametrize("case, lib, args, words", [
    ("empty", "libmicrohttpd.so.12", ["--metrics-addr", "127.0.0.1:1"],
     ["the metrics endpoint", "--metrics-addr", "libmicrohttpd.so.12",
      "Debian package libmicrohttpd12", "undefined symbol: MHD_start_daemon"]),
    ("empty", "libcurl.so.4", ["--metrics-addr", "none", "--pyroscope", "http://127.0.0.1:1"],
     ["--pyroscope", "libcurl.so.4", "Debian package libcurl4",
      "undefined symbol: curl_global_init"]),
    ("bad", "libcurl.so.4", ["--metrics-addr", "none", "--pyroscope", "http://127.0.0.1:1"],
     ["--pyroscope", "libcurl.so.4", "Debian package libcurl4", "file too short"]),
])
def test_missing_library_is_one_clear_line(fake_libs, case, lib, args, words):
    libdir = fake_libs[0] if case == "empty" else fake_libs[1]
    env = dict(os.environ, LD_LIBRARY_PATH=str(libdir))
    t0 = time.monotonic()
    p = subprocess.run([HANGTRACE, "agent", "--include", "cmdline:nothing-" + uuid.uuid4().hex]
                       + args, capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 1 and p.stdout == "", (p.returncode, p.stdout, p.stderr)
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("hangtrace: error: "), lines[0]
    assert str(libdir / lib) in lines[0]  # dlerror names the file it tried
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert time.monotonic() - t0 < 10  # it fails before loading any BPF program


def test_agent_without_endpoint_or_push_needs_neither_library(procs, tmp_path, fake_libs):
    """With the broken libraries first on LD_LIBRARY_PATH, an agent that uses
    neither feature runs, traces and exits cleanly, and maps neither library."""
    env = dict(os.environ, LD_LIBRARY_PATH=str(fake_libs[0]))
    tag = "agtest-" + uuid.uuid4().hex[:8]
    agent = Agent(tmp_path, tag, ["--metrics-addr", "none"], env=env)
    procs.append(agent)
    py = pythons.interpreters()[-1]
    script = copy_app(tmp_path, "nolib_app.py")
    t = start_app(procs, py, script, "stall", tag)
    agent.wait_traced(t.pid)
    libs = mapped(agent.pid)
    assert any(x.startswith("libbpf.so") for x in libs), libs  # the maps were read
    assert not {x for x in libs if x.startswith(("libcurl", "libmicrohttpd"))}, libs
    t.trigger()
    done = t.wait_done()
    wait_until(lambda: len(agent.event_lines(t.pid)) >= COUNT, 10, "events")
    check_stall_events(agent.event_lines(t.pid), script, done)
    rc, took = agent.stop()
    assert rc == 0, "".join(agent.err.all)
