#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""hangtrace overhead benchmark.

Measures the throughput of four Python workloads untraced and under each
tracer, in one run, with the modes interleaved in every repetition, and
reports each tracer's median throughput as a ratio of the untraced median:

  workloads  pingpong   two threads handing a turn through a Condition
                        (the context-switch storm)
             echo       asyncio TCP echo server on loopback, loaded by a client
             callheavy  sorted(key=...) and map(): C calling Python
             stall      the echo server, its loop stalled 120 ms once a second
                        by a blocking call (stall detection and blame at work)
  modes      untraced
             hangtrace      ./hangtrace -p PID
             offcputime     libbpf-tools' offcputime -p PID
             floor          bench/floor: counts sched_switch, raw tracepoint
             floor-classic  the same, classic tracepoint
             floor-btf      the same, tp_btf (not run by default)
             floor-hash     floor-btf + the state of prev and next looked up by TID
                            in a hash, for the workload's threads (not by default)
             floor-tls      the same in task-local storage (not by default)

The workload runs pinned to one CPU (--workload-cpu, 0), without address
space randomization (one memory layout for all runs); the tracer and this
harness run on another (--tracer-cpu, 1).  A tracer is attached before the
workload's measured phase starts (the workload waits for a line on stdin).
For every tracer it also records its own CPU time, peak RSS (VmHWM) and the
time from exec to attached (for hangtrace: to its "tracing process" line).
With --bpf-stats it also times each BPF program (a diagnostic: it has a cost).

Each ratio comes with a bootstrap 95% confidence interval.  Before each run
the harness waits (up to --quiet-wait seconds over the whole run) until no
other process holds a BPF link and the CPUs are idle.  A run during which
another BPF tracer appeared, or other tasks took more than
--foreign-threshold percent of the workload's CPU, is measured again (up to
--retry-noisy times); one still noisy is kept and counted as "noisy".

Every process started here is started in a session of its own, and killed by
its id at the end, also on Ctrl-C, SIGTERM or an error.  Needs root.

  make -C bench run                        # default: about 8 minutes
  make -C bench run ARGS=--quick           # about 2 minutes
  /usr/bin/python3 bench/run.py --help
"""

import argparse
import ctypes
import datetime
import json
import os
import platform
import queue
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)

DEFAULT_PYTHON = "/root/.pyenv/versions/3.12.1/bin/python3"

# Workload name -> script and the throughput budget hangtrace must keep.
WORKLOADS = {
    "pingpong": {"script": "pingpong.py", "budget": 0.90},
    "echo": {"script": "echo.py", "budget": 0.97},
    "callheavy": {"script": "callheavy.py", "budget": 0.99},
    # the echo server whose loop stalls 120 ms once a second (issue: the
    # budgets hold with loop detection, stall blame and sampling at work)
    "stall": {"script": "echo.py", "budget": 0.97,
              "args": ["--stall-every", "1", "--stall-ms", "120"]},
}

ALL_MODES = ["untraced", "hangtrace", "offcputime", "floor", "floor-classic", "floor-btf",
             "floor-hash", "floor-tls"]
DEFAULT_MODES = ["untraced", "hangtrace", "offcputime", "floor", "floor-classic"]

ATTACH_BUDGET_S = 0.2
RSS_BUDGET_KB = 20 * 1024

ATTACH_TIMEOUT_S = 30   # a tracer that is not attached by then has failed
STOP_TIMEOUT_S = 60     # time a tracer gets to write its report after SIGINT


class BenchError(Exception):
    pass


# --- processes ---------------------------------------------------------------

# Every child alive, by pid; killed by kill_all() on the way out.
CHILDREN = {}


def spawn(argv, **kw):
    """Start @argv in a session of its own (a Ctrl-C in the terminal reaches
    only this harness, which then stops the children itself)."""
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    CHILDREN[p.pid] = p
    return p


def reap(p, timeout, poll=None):
    """Wait up to @timeout s for @p to exit; SIGKILL it (and its process
    group, e.g. the echo client) if it does not.  Calls @poll() every 10 ms
    while @p is alive.  Returns its rusage."""
    deadline = time.monotonic() + timeout
    ru = None
    while True:
        if poll:
            poll()
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() >= deadline:
            kill_group(p)
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            break
        time.sleep(0.01)
    CHILDREN.pop(p.pid, None)
    return ru


def kill_group(p):
    """SIGKILL @p and the process group it leads (it was started by spawn())."""
    for kill in (os.killpg, os.kill):
        try:
            kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def kill_all():
    for p in list(CHILDREN.values()):
        if p.poll() is None:
            kill_group(p)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        CHILDREN.pop(p.pid, None)


class Lines:
    """Collect the lines of a child's pipe in a thread, so that reading
    one with a timeout is easy and the pipe never fills up."""

    def __init__(self, pipe, watch=None):
        self.q = queue.Queue()
        self.lines = []
        self.watch = watch          # a substring to time-stamp
        self.seen_at = None
        self.seen = threading.Event()
        self.t = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self.t.start()

    def _run(self, pipe):
        for raw in pipe:
            line = raw.decode(errors="replace").rstrip("\n")
            if self.watch and not self.seen.is_set() and self.watch in line:
                self.seen_at = time.monotonic()
                self.seen.set()
            self.lines.append(line)
            self.q.put(line)
        self.q.put(None)

    def get(self, timeout, what):
        """The next line; BenchError on EOF or after @timeout s."""
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            raise BenchError(f"timed out waiting for {what}") from None
        if line is None:
            raise BenchError(f"EOF while waiting for {what}")
        return line

    def get_json(self, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            line = self.get(max(0.0, deadline - time.monotonic()), what)
            try:
                return json.loads(line)
            except ValueError:
                continue    # not ours: a warning, say


def proc_cpu_s(pid):
    """CPU time of all threads of process @pid so far, in seconds, to the
    nanosecond (schedstat; /proc/PID/stat counts in 10 ms ticks)."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def proc_status_kb(pid, key):
    """A kB field of /proc/@pid/status (VmRSS, VmHWM), None if unavailable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def bpf_link_owners(exclude=()):
    """Pids (with comm) of processes holding a BPF link, except @exclude."""
    owners = {}
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in exclude:
            continue
        try:
            for fd in os.listdir(f"/proc/{d}/fd"):
                if os.readlink(f"/proc/{d}/fd/{fd}") == "anon_inode:bpf_link":
                    with open(f"/proc/{d}/comm") as f:
                        owners[int(d)] = f.read().strip()
                    break
        except OSError:
            continue
    return owners


def cpu_busy(interval):
    """Fraction of all CPUs busy over @interval seconds (from /proc/stat)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]          # idle + iowait
        return sum(v[:8]) - idle, sum(v[:8])
    b0, t0 = sample()
    time.sleep(interval)
    b1, t1 = sample()
    return (b1 - b0) / max(1, t1 - t0)


def cpu_task_s(cpu):
    """Time CPU @cpu spent running tasks (user, nice, system; not interrupts
    nor idle) so far, in seconds, from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                return (v[0] + v[1] + v[2]) / os.sysconf("SC_CLK_TCK")
    return None


def group_cpu_s(pgid):
    """CPU time of every process in process group @pgid (a workload and,
    for echo, its client), in seconds.  From /proc/PID/stat, in ticks: unlike
    the threads' schedstat it keeps the time of threads that have exited."""
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5: pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def enable_bpf_stats():
    """BPF_ENABLE_STATS: the kernel times every BPF program run (run_time_ns,
    run_cnt) for as long as the returned fd stays open.  Returns the fd."""
    nr_bpf = {"x86_64": 321, "aarch64": 280}.get(platform.machine())
    if nr_bpf is None:
        raise BenchError("--bpf-stats: unknown bpf() syscall number on this arch")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    attr = (ctypes.c_char * 128)()  # union bpf_attr: enable_stats.type = 0 (BPF_STATS_RUN_TIME)
    fd = libc.syscall(ctypes.c_long(nr_bpf), ctypes.c_long(32),  # BPF_ENABLE_STATS
                      attr, ctypes.c_uint(len(attr)))
    if fd < 0:
        raise BenchError("--bpf-stats: BPF_ENABLE_STATS failed: "
                         + os.strerror(ctypes.get_errno()))
    return fd


def bpf_prog_stats(pid):
    """{prog_id: (run_cnt, run_time_ns)} of the BPF programs process @pid holds."""
    stats = {}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return stats
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-prog":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                kv = dict(line.split(":", 1) for line in f if ":" in line)
            stats[int(kv["prog_id"])] = (int(kv["run_cnt"]), int(kv["run_time_ns"]))
        except (OSError, KeyError, ValueError):
            continue
    return stats


def bpf_prog_names(ids):
    """{prog_id: name}, from bpftool."""
    try:
        out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True,
                             text=True, timeout=10).stdout
        return {p["id"]: p.get("name", "?") for p in json.loads(out) if p["id"] in ids}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return {}


def bpf_stats_delta(s0, s1, names, seconds):
    """Per program: runs per second, ns per run, and CPU share (of one CPU)."""
    out = {}
    for pid, (c1, t1) in s1.items():
        c0, t0 = s0.get(pid, (0, 0))
        if c1 - c0 <= 0:
            continue
        out[names.get(pid, str(pid))] = {
            "runs_per_s": (c1 - c0) / seconds,
            "ns_per_run": (t1 - t0) / (c1 - c0),
            "cpu_pct": 100.0 * (t1 - t0) / 1e9 / seconds,
        }
    return out


# --- tracers -------------------------------------------------------------------

class Tracer:
    """One tracer process of one measurement."""

    def __init__(self, mode, argv, cpu, marker=None):
        self.mode = mode
        self.argv = ["taskset", "-c", str(cpu)] + argv
        self.marker = marker    # stderr line that says "attached"; else wait for a BPF link

    def start(self):
        self.t0 = time.monotonic()
        self.p = spawn(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
        self.out = Lines(self.p.stdout)
        self.err = Lines(self.p.stderr, watch=self.marker)

    def wait_attached(self):
        """Block until the tracer is live; return the seconds since exec."""
        deadline = self.t0 + ATTACH_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise BenchError(f"{self.mode} exited before attaching: "
                                 + " | ".join(self.err.lines[-5:]))
            if self.marker:
                if self.err.seen.wait(0.002):
                    return self.err.seen_at - self.t0
            else:
                # offcputime says nothing when attached: its BPF link shows it.
                if bpf_link_owners_of(self.p.pid):
                    return time.monotonic() - self.t0
                time.sleep(0.002)
        raise BenchError(f"{self.mode} did not attach within {ATTACH_TIMEOUT_S} s")

    def counts(self):
        """floor only: its per-CPU switch counts so far."""
        self.p.send_signal(signal.SIGUSR1)
        return self.out.get_json(5, "the floor counter's counts")

    def peak_rss_kb(self):
        """The tracer's peak RSS so far (VmHWM: per exec, unlike ru_maxrss,
        which keeps the forking harness's RSS)."""
        hwm = proc_status_kb(self.p.pid, "VmHWM")
        if hwm is not None:
            self.hwm_kb = max(getattr(self, "hwm_kb", 0), hwm)
        return getattr(self, "hwm_kb", None)

    def stop(self):
        """SIGINT, then wait for the report.  Returns the rusage."""
        self.peak_rss_kb()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        ru = reap(self.p, STOP_TIMEOUT_S, poll=self.peak_rss_kb)
        self.out.t.join(5)
        self.err.t.join(5)
        return ru


def bpf_link_owners_of(pid):
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:bpf_link"
                   for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def make_tracer(mode, pid, args):
    if mode == "hangtrace":
        return Tracer(mode, [args.hangtrace, "-p", str(pid)], args.tracer_cpu,
                      marker="hangtrace: tracing process")
    if mode == "offcputime":
        return Tracer(mode, [args.offcputime, "-p", str(pid)], args.tracer_cpu)
    if mode.startswith("floor"):
        flag = {"floor": [], "floor-classic": ["--classic"], "floor-btf": ["--btf"],
                "floor-hash": ["--hash", str(pid)], "floor-tls": ["--tls", str(pid)]}[mode]
        return Tracer(mode, [args.floor] + flag, args.tracer_cpu, marker="floor: attached")
    raise ValueError(mode)


# --- one measurement -------------------------------------------------------------

def measure(workload, mode, args):
    """Run @workload once under @mode; return a result dict."""
    res = {"workload": workload, "mode": mode}
    script = os.path.join(BENCH, "workloads", WORKLOADS[workload]["script"])
    argv = ["taskset", "-c", str(args.workload_cpu)]
    if not args.aslr:
        # The same memory layout in every run: the layout alone moves the
        # call-heavy workload's throughput by several percent from one
        # process to the next, more than the effect being measured.
        argv += ["setarch", platform.machine(), "-R"]
    argv += [args.python, script, "--warmup", str(args.warmup), "--duration", str(args.duration)]
    argv += WORKLOADS[workload].get("args", [])
    env = dict(os.environ, PYTHONHASHSEED="0")
    wl = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
               env=env)
    wl_out = Lines(wl.stdout)
    wl_err = Lines(wl.stderr)
    tracer = None
    try:
        ready = wl_out.get_json(30, f"{workload} to be ready")
        pid = ready["pid"]

        # Attach before the measured phase: the workload waits for "go".
        if mode != "untraced":
            tracer = make_tracer(mode, pid, args)
            tracer.start()
            res["attach_s"] = tracer.wait_attached()
            if mode.startswith("floor"):
                c0 = tracer.counts()
            cpu0 = proc_cpu_s(tracer.p.pid)
            if args.bpf_stats:
                bs0 = bpf_prog_stats(tracer.p.pid)
        # Whatever else runs on the workload's CPU meanwhile takes from it.
        own0, cpu_busy0 = group_cpu_s(wl.pid), cpu_task_s(args.workload_cpu)
        t_go = time.monotonic()
        wl.stdin.write(b"go\n")
        wl.stdin.flush()

        result = wl_out.get_json(args.warmup + args.duration + 30, f"{workload}'s result")
        t_end = time.monotonic()
        own1, cpu_busy1 = group_cpu_s(wl.pid), cpu_task_s(args.workload_cpu)
        res["foreign_cpu_pct"] = 100.0 * max(0.0, (cpu_busy1 - cpu_busy0) - (own1 - own0)) \
            / (t_end - t_go)
        res["ops_per_s"] = result["ops_per_s"]
        res["unit"] = result["unit"]
        res["python"] = result["python"]

        if tracer:
            # The tracer's cost while the workload ran (warm-up included).
            cpu1 = proc_cpu_s(tracer.p.pid)
            if cpu0 is not None and cpu1 is not None:
                res["tracer_cpu_pct"] = 100.0 * (cpu1 - cpu0) / (t_end - t_go)
            if args.bpf_stats:
                bs1 = bpf_prog_stats(tracer.p.pid)
                res["bpf_stats"] = bpf_stats_delta(bs0, bs1, bpf_prog_names(set(bs1)),
                                                   t_end - t_go)
            if mode.startswith("floor"):
                c1 = tracer.counts()
                cpu = args.workload_cpu
                res["switches_per_s"] = ((c1["per_cpu"][cpu] - c0["per_cpu"][cpu])
                                         / ((c1["t_ns"] - c0["t_ns"]) / 1e9))
            ru = tracer.stop()
            res["tracer_exit"] = tracer.p.returncode
            res["tracer_total_cpu_s"] = ru.ru_utime + ru.ru_stime
            res["peak_rss_kb"] = tracer.peak_rss_kb()
            if tracer.p.returncode != 0:
                res["tracer_stderr"] = tracer.err.lines[-5:]
    finally:
        # Let the workload go (it lingers while the tracer writes its report).
        if tracer and hasattr(tracer, "p") and tracer.p.returncode is None:
            tracer.stop()
        try:
            wl.stdin.close()
        except OSError:
            pass
        reap(wl, 10)
        if wl.returncode not in (0, None):
            res.setdefault("workload_stderr", wl_err.lines[-5:])
    return res


# --- the run ---------------------------------------------------------------------

def wait_quiet(args, budget):
    """Wait (from the shared @budget, in seconds) until no other process holds
    a BPF link and the machine is idle.  Returns (quiet, what, seconds waited)."""
    waited = 0.0
    while True:
        owners = bpf_link_owners(exclude={os.getpid()})
        busy = cpu_busy(0.2)
        if not owners and busy < args.busy_threshold:
            return True, "", waited
        what = []
        if owners:
            what.append("BPF links held by " + ", ".join(f"{c}[{p}]" for p, c in owners.items()))
        if busy >= args.busy_threshold:
            what.append(f"CPUs {100 * busy:.0f}% busy")
        if budget[0] <= 0:
            return False, "; ".join(what), waited
        time.sleep(1)
        budget[0] -= 1.2
        waited += 1.2


def machine_info(args):
    def first(path, key, sep=":"):
        """The value of the first "KEY<sep>value" line of @path."""
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(key):
                        return line.split(sep, 1)[1].strip().strip('"')
        except OSError:
            pass
        return None

    def output(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": first("/proc/cpuinfo", "model name"),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "os": first("/etc/os-release", "PRETTY_NAME=", "=") or output(["uname", "-o"]),
        "python": output([args.python, "-c", "import sys; print(sys.version.split()[0])"]),
        "hangtrace": output([args.hangtrace, "--version"]),
        # hangtrace changes under the benchmark: say which tree was measured.
        "hangtrace_tree": output(["git", "-C", ROOT, "describe", "--always", "--dirty"]),
        "hangtrace_sha256": output(["sha256sum", args.hangtrace]).split()[0]
        if os.path.exists(args.hangtrace) else None,
        "libbpf_tools": output(["dpkg-query", "-W", "-f", "${Version}", "libbpf-tools"]),
    }


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def bootstrap_ci(stat, samples, iters=2000, level=0.95):
    """Bootstrap confidence interval of stat(*@samples): each sample is
    resampled independently, @iters times (fixed seed: the same results
    always give the same interval)."""
    if any(len(x) < 2 for x in samples):
        return None, None
    rng = random.Random(1)
    vals = sorted(stat(*(rng.choices(x, k=len(x)) for x in samples)) for _ in range(iters))
    cut = int(iters * (1 - level) / 2)
    return vals[cut], vals[iters - 1 - cut]


def summarize(results, modes, workloads):
    """Per workload and mode: median throughput, its ratio to the untraced
    median, the paired ratio, and the tracer's own costs.

    The paired ratio is the median over repetitions of (this mode's run /
    the untraced run of the same repetition).  The runs of one repetition
    are close in time, so the pairing cancels the machine's slow drift
    (a VM's throughput moves by several percent over minutes, for all
    modes alike), which the ratio of medians keeps as noise."""
    summary = {}
    for w in workloads:
        runs = [r for r in results if r["workload"] == w and "ops_per_s" in r]
        base_all = [r["ops_per_s"] for r in runs if r["mode"] == "untraced"]
        base = median(base_all)
        base_by_rep = {r["rep"]: r["ops_per_s"] for r in runs if r["mode"] == "untraced"}
        summary[w] = {}
        for m in modes:
            mr = [r for r in runs if r["mode"] == m]
            if not mr:
                continue
            xs = [r["ops_per_s"] for r in mr]
            med = median(xs)
            ci = bootstrap_ci(lambda a, b: statistics.median(a) / statistics.median(b),
                              (xs, base_all))
            paired = [r["ops_per_s"] / base_by_rep[r["rep"]] for r in mr
                      if r["rep"] in base_by_rep]
            s = {
                "n": len(mr),
                "median_ops_per_s": med,
                "unit": mr[0]["unit"],
                "ratio": med / base if base else None,
                "ratio_ci95": list(ci),
                "paired_ratio": median(paired),
                "paired_ratio_ci95": list(bootstrap_ci(statistics.median, (paired,))),
                "paired_ratio_min": min(paired) if paired else None,
                "paired_ratio_max": max(paired) if paired else None,
                "noisy": sum(1 for r in mr if not r.get("quiet", True)),
            }
            for k in ("attach_s", "tracer_cpu_pct", "tracer_total_cpu_s", "switches_per_s"):
                s[k] = median(r.get(k) for r in mr)
            progs = {name for r in mr for name in r.get("bpf_stats", {})}
            if progs:
                s["bpf_stats"] = {name: {k: median(r.get("bpf_stats", {}).get(name, {}).get(k)
                                                   for r in mr)
                                         for k in ("runs_per_s", "ns_per_run", "cpu_pct")}
                                  for name in sorted(progs)}
            if m != "untraced":
                s["attach_s_max"] = max((r["attach_s"] for r in mr if "attach_s" in r),
                                        default=None)
                s["peak_rss_kb"] = max((r["peak_rss_kb"] for r in mr if "peak_rss_kb" in r),
                                       default=None)
            summary[w][m] = s
    return summary


def budgets(summary):
    """hangtrace against the issue's budgets: [(what, budget, measured, verdict)].
    A throughput budget passes or fails on the paired ratio; "(within noise)"
    is added when the budget lies inside its 95% confidence interval."""
    out = []
    for w, spec in WORKLOADS.items():
        s = summary.get(w, {}).get("hangtrace")
        if s and s["paired_ratio"] is not None:
            lo, hi = s["paired_ratio_ci95"]
            verdict = "pass" if s["paired_ratio"] >= spec["budget"] else "FAIL"
            measured = f"{s['paired_ratio']:.3f}"
            if lo is not None:
                measured += f" (95% CI {lo:.3f}-{hi:.3f})"
                if lo < spec["budget"] <= hi:
                    verdict += " (within noise)"
            out.append((f"{w} throughput ratio", f">= {spec['budget']:.2f}", measured, verdict))
    ht = [s for w in summary.values() for m, s in w.items() if m == "hangtrace"]
    if ht:
        attach = median(s["attach_s"] for s in ht)
        attach_max = max(s["attach_s_max"] for s in ht)
        out.append(("attach (median; max)", f"<= {ATTACH_BUDGET_S} s",
                    f"{attach:.3f} s; {attach_max:.3f} s",
                    "pass" if attach <= ATTACH_BUDGET_S else "FAIL"))
        rss = max(s["peak_rss_kb"] for s in ht)
        out.append(("peak RSS (max over runs)", f"<= {RSS_BUDGET_KB // 1024} MB",
                    f"{rss / 1024:.1f} MB", "pass" if rss <= RSS_BUDGET_KB else "FAIL"))
    return out


def markdown(summary, modes, workloads, checks):
    def cell(x, spec, suffix=""):
        return "" if x is None else format(x, spec) + suffix

    def ratio(r, ci):
        if r is None:
            return ""
        return f"{r:.3f}" + (f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci[0] is not None else "")

    lines = ["| workload | mode | runs | median throughput | ratio of medians (95% CI) | "
             "paired ratio (95% CI) | tracer CPU (run) | tracer CPU (total) | attach | "
             "peak RSS |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for w in workloads:
        for m in modes:
            s = summary.get(w, {}).get(m)
            if not s:
                continue
            runs = str(s["n"]) + (f" ({s['noisy']} noisy)" if s["noisy"] else "")
            thr = f"{s['median_ops_per_s']:,.0f} {s['unit']}"
            if s.get("switches_per_s") is not None:
                k = s["switches_per_s"] / 1000
                thr += f" ({k:.{0 if k >= 10 else 1}f}k switches/s)"
            rss = s.get("peak_rss_kb")
            lines.append(" | ".join([
                "", w, m, runs, thr,
                ratio(s["ratio"], s["ratio_ci95"]) if m != "untraced" else "1",
                ratio(s["paired_ratio"], s["paired_ratio_ci95"]) if m != "untraced" else "1",
                cell(s.get("tracer_cpu_pct"), ".2f", "%"),
                cell(s.get("tracer_total_cpu_s"), ".2f", " s"),
                cell(s.get("attach_s"), ".3f", " s"),
                cell(rss / 1024 if rss else None, ".1f", " MB"), ""]).strip())
    lines += ["", "| hangtrace budget | budget | measured | |", "|---|---|---|---|"]
    for what, budget, measured, verdict in checks:
        lines.append(f"| {what} | {budget} | {measured} | {verdict} |")
    return "\n".join(lines)


def markdown_bpf_stats(summary, modes, workloads):
    """Per BPF program of each tracer: how often it ran, for how long (--bpf-stats)."""
    lines = ["| workload | mode | BPF program | runs/s | ns/run | CPU (of one) |",
             "|---|---|---|---:|---:|---:|"]
    for w in workloads:
        for m in modes:
            for name, st in summary.get(w, {}).get(m, {}).get("bpf_stats", {}).items():
                if st["runs_per_s"] is None:
                    continue
                lines.append(f"| {w} | {m} | {name} | {st['runs_per_s']:,.0f} | "
                             f"{st['ns_per_run']:.0f} | {st['cpu_pct']:.1f}% |")
    return "\n".join(lines)


def parse_args():
    ap = argparse.ArgumentParser(
        description="hangtrace overhead benchmark: throughput ratios traced / untraced.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  make -C bench run\n"
               "  /usr/bin/python3 bench/run.py --quick\n"
               "  /usr/bin/python3 bench/run.py --workloads pingpong "
               "--modes untraced,floor,floor-classic,floor-btf")
    ap.add_argument("--quick", action="store_true",
                    help="3 repetitions of 1.5 s (about 2 minutes)")
    ap.add_argument("--reps", type=int, help="repetitions per workload and mode (default 10)")
    ap.add_argument("--duration", type=float, help="measured seconds per run (default 2)")
    ap.add_argument("--warmup", type=float, help="unmeasured seconds first (default 0.5)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated, of: " + ", ".join(WORKLOADS))
    ap.add_argument("--modes", default=",".join(DEFAULT_MODES),
                    help="comma-separated, of: " + ", ".join(ALL_MODES)
                    + " (default: all but floor-btf)")
    ap.add_argument("--python", default=os.environ.get("BENCH_PYTHON", DEFAULT_PYTHON),
                    help=f"interpreter of the workloads (default {DEFAULT_PYTHON}, "
                         "or $BENCH_PYTHON)")
    ap.add_argument("--hangtrace", default=os.path.join(ROOT, "hangtrace"))
    ap.add_argument("--offcputime", default="/usr/sbin/offcputime")
    ap.add_argument("--floor", default=os.path.join(BENCH, "floor"))
    ap.add_argument("--workload-cpu", type=int, default=0)
    ap.add_argument("--tracer-cpu", type=int, default=1)
    ap.add_argument("--quiet-wait", type=float, default=180,
                    help="seconds, over the whole run, to wait for other BPF tracers "
                         "to go and the machine to idle before a run (default 180)")
    ap.add_argument("--aslr", action="store_true",
                    help="leave address space randomization on for the workloads "
                         "(noisier; by default they run under setarch -R)")
    ap.add_argument("--bpf-stats", action="store_true",
                    help="also time each BPF program of the tracers (BPF_ENABLE_STATS; "
                         "this adds its own cost, so keep it out of the reference numbers)")
    ap.add_argument("--retry-noisy", type=int, default=2,
                    help="measure a noisy run again, up to this many times (default 2)")
    ap.add_argument("--foreign-threshold", type=float, default=3.0,
                    help="a run is noisy when other tasks took more than this percentage "
                         "of the workload's CPU (default 3)")
    ap.add_argument("--busy-threshold", type=float, default=0.10,
                    help="the machine counts as idle below this busy fraction (default 0.10)")
    ap.add_argument("--report", metavar="FILE",
                    help="run nothing: print the tables of an earlier results file")
    ap.add_argument("-o", "--output", default=os.path.join(BENCH, "results.json"),
                    help="JSON results (default bench/results.json)")
    args = ap.parse_args()

    quick = args.quick
    args.reps = args.reps or (3 if quick else 10)
    args.duration = args.duration or (1.5 if quick else 2.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if quick else 0.5)
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.modes = [m for m in args.modes.split(",") if m]
    for w in args.workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r}")
    for m in args.modes:
        if m not in ALL_MODES:
            ap.error(f"unknown mode {m!r}")
    if "untraced" not in args.modes:
        args.modes.insert(0, "untraced")
    return args


def check_setup(args):
    if os.geteuid() != 0:
        raise BenchError("needs root (BPF)")
    need = {"hangtrace": args.hangtrace, "offcputime": args.offcputime, "floor": args.floor}
    for mode, path in need.items():
        if any(m.startswith(mode) for m in args.modes) and not os.access(path, os.X_OK):
            hint = {"hangtrace": "make hangtrace", "floor": "make -C bench",
                    "offcputime": "apt-get install libbpf-tools"}[mode]
            raise BenchError(f"{path} not found (run: {hint})")
    if not os.access(args.python, os.X_OK):
        raise BenchError(f"{args.python} not found (use --python)")
    ncpu = os.cpu_count()
    if max(args.workload_cpu, args.tracer_cpu) >= ncpu or args.workload_cpu == args.tracer_cpu:
        raise BenchError("the workload and the tracer need two different CPUs")


def snapshot_hangtrace(args):
    """Measure a copy of the hangtrace binary, so that a rebuild during the
    run (make in another shell) cannot mix two versions in one result."""
    tmp = tempfile.mkdtemp(prefix="hangtrace-bench-")
    copy = os.path.join(tmp, "hangtrace")
    shutil.copy2(args.hangtrace, copy)
    args.hangtrace = copy
    return tmp


def run(args):
    check_setup(args)
    # The harness shares the tracer's CPU, away from the workload.
    os.sched_setaffinity(0, {args.tracer_cpu})
    tree = args.hangtrace
    tmp = snapshot_hangtrace(args) if "hangtrace" in args.modes else None
    try:
        return run_all(args, tree)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def run_all(args, tree):
    info = machine_info(args)
    info["hangtrace_path"] = tree
    n = args.reps * len(args.workloads) * len(args.modes)
    print(f"hangtrace overhead benchmark: {args.reps} reps x {len(args.workloads)} workloads "
          f"x {len(args.modes)} modes = {n} runs of {args.warmup} + {args.duration} s",
          file=sys.stderr)
    print(f"  {info['cpu_model']}, {info['cpus']} CPUs, Linux {info['kernel']}, "
          f"Python {info['python']}", file=sys.stderr)

    stats_fd = enable_bpf_stats() if args.bpf_stats else None
    results = []
    noisy_dropped = []      # noisy runs that were measured again
    budget = [args.quiet_wait]
    t_start = time.monotonic()
    i = 0
    for rep in range(args.reps):
        for w in args.workloads:
            # Rotate the mode order each repetition so that no mode always
            # runs first (or right after another).
            k = rep % len(args.modes)
            for mode in args.modes[k:] + args.modes[:k]:
                i += 1
                for attempt in range(1 + args.retry_noisy):
                    quiet, why, waited = wait_quiet(args, budget)
                    try:
                        r = measure(w, mode, args)
                    except BenchError as e:
                        r = {"workload": w, "mode": mode, "error": str(e)}
                    if bpf_link_owners(exclude={os.getpid()}):
                        quiet, why = False, why or "another BPF tracer started during the run"
                    if r.get("foreign_cpu_pct", 0) > args.foreign_threshold:
                        quiet = False
                        why = why or (f"other tasks took {r['foreign_cpu_pct']:.1f}% "
                                      f"of CPU {args.workload_cpu}")
                    r.update(rep=rep, quiet=quiet, waited_s=waited, attempt=attempt)
                    if quiet or "error" in r or attempt == args.retry_noisy:
                        break
                    noisy_dropped.append(dict(r, noise=why))
                    print(f"[{i:3}/{n}] rep {rep + 1} {w:9} {mode:13} noisy ({why}), again",
                          file=sys.stderr)
                if not quiet:
                    r["noise"] = why
                results.append(r)
                if "error" in r:
                    status = "ERROR " + r["error"]
                else:
                    status = f"{r['ops_per_s']:>12,.0f} {r['unit']}"
                    if "attach_s" in r:
                        status += f"  attach {r['attach_s']:.3f} s"
                    if "tracer_cpu_pct" in r:
                        status += f"  cpu {r['tracer_cpu_pct']:.1f}%"
                print(f"[{i:3}/{n}] rep {rep + 1} {w:9} {mode:13} {status}"
                      + ("" if quiet else f"  (noisy: {why})")
                      + (f"  (waited {waited:.0f} s for quiet)" if waited else ""),
                      file=sys.stderr)

    if stats_fd is not None:
        os.close(stats_fd)
    doc = {
        "machine": info,
        "command": " ".join([sys.executable] + sys.argv),
        "settings": {k: getattr(args, k) for k in (
            "reps", "duration", "warmup", "workloads", "modes", "python",
            "workload_cpu", "tracer_cpu", "aslr", "bpf_stats")},
        "elapsed_s": time.monotonic() - t_start,
        "runs": results,
        "noisy_runs_repeated": noisy_dropped,
    }
    table = analyse(doc)
    with open(args.output + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(args.output + ".tmp", args.output)
    print(table)
    noisy = sum(1 for r in results if not r["quiet"])
    errors = sum(1 for r in results if "error" in r)
    waited = sum(r["waited_s"] for r in results)
    print(f"\n{n} runs in {doc['elapsed_s']:.0f} s ({waited:.0f} s of it waiting for a quiet "
          f"machine); results in {args.output}", file=sys.stderr)
    if noisy:
        print(f"warning: {noisy} runs were not on a quiet machine (see \"noise\" in the JSON)",
              file=sys.stderr)
    if errors:
        print(f"warning: {errors} runs failed (see \"error\" in the JSON)", file=sys.stderr)
    return 1 if errors else 0


def analyse(doc):
    """Add the summary and the budget checks to result document @doc;
    return the Markdown tables."""
    modes, workloads = doc["settings"]["modes"], doc["settings"]["workloads"]
    summary = summarize(doc["runs"], modes, workloads)
    checks = budgets(summary)
    doc["summary"] = summary
    doc["budgets"] = [{"what": a, "budget": b, "measured": c, "verdict": d}
                      for a, b, c, d in checks]
    table = markdown(summary, modes, workloads, checks)
    if doc["settings"].get("bpf_stats"):
        table += "\n\n" + markdown_bpf_stats(summary, modes, workloads)
    return table


def report_only(path):
    """--report: summarize the runs of an earlier result file again."""
    with open(path) as f:
        doc = json.load(f)
    print(analyse(doc))
    return 0


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main():
    args = parse_args()
    if args.report:
        return report_only(args.report)
    # SIGTERM takes the same way out as Ctrl-C: every child is killed.
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return run(args)
    except BenchError as e:
        print(f"run.py: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("run.py: interrupted", file=sys.stderr)
        return 130
    finally:
        kill_all()


if __name__ == "__main__":
    sys.exit(main())
