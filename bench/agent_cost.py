#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The agent's own cost: CPU (% of one core) and memory of `hangtrace agent`.

Two conditions, each measured for --seconds after a warm-up:

  idle       the agent running with its defaults over the processes this
             harness starts: --idle-procs calm asyncio services (a ticker
             every 50 ms), nothing else to report
  switches   the same, plus a traced CPython process making about --rate
             context switches a second (threads sleeping 0.5 ms in a loop,
             and an asyncio loop), its real rate measured from
             /proc/PID/task/*/status

The agent sees only the processes started here (--include on a tag in
their command line), so other work on the machine does not add to what it
processes; the BPF programs still run for every task switch of the host,
in the kernel, on the switching tasks' time (not the agent's).

CPU is utime+stime of the agent process over the window (/proc/PID/stat),
memory its peak RSS (VmHWM).  Every process started here is killed by pid.

  /usr/bin/python3 bench/agent_cost.py [--seconds 30] [--rate 20000]
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
HANGTRACE = os.path.join(ROOT, "hangtrace")
TICK = os.sysconf("SC_CLK_TCK")

CALM = r"""
import asyncio, sys
async def main():
    while True:
        await asyncio.sleep(0.05)
asyncio.run(main())
"""

# threads sleeping 0.5 ms: each sleep is two context switches; --threads of them
SWITCHER = r"""
import asyncio, sys, threading, time
n = int(sys.argv[1])
def sleeper():
    while True:
        time.sleep(0.0005)
for _ in range(n):
    threading.Thread(target=sleeper, daemon=True).start()
async def main():
    while True:
        await asyncio.sleep(0.01)
asyncio.run(main())
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def peak_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def switches(pid):
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def measure(agent, seconds, target=None):
    c0, t0 = cpu_seconds(agent.pid), time.monotonic()
    s0 = switches(target.pid) if target else 0
    time.sleep(seconds)
    c1, t1 = cpu_seconds(agent.pid), time.monotonic()
    s1 = switches(target.pid) if target else 0
    return {"agent_cpu_pct": round(100 * (c1 - c0) / (t1 - t0), 3),
            "switches_per_s": round((s1 - s0) / (t1 - t0)) if target else 0,
            "agent_peak_rss_mb": round(peak_rss_kb(agent.pid) / 1024, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--idle-procs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=6, help="sleeping threads in the switcher")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--agent-args", default="", help="more agent options (one string)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("agent_cost.py: needs root")

    tag = "agentcost-" + uuid.uuid4().hex[:8]
    started = []

    def start(argv, **kw):
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        started.append(p)
        return p

    def cleanup(*_):
        for p in reversed(started):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
            p.wait()

    signal.signal(signal.SIGTERM, lambda *a: (cleanup(), sys.exit(1)))
    results = {"tag": tag, "python": args.python}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            err = open(os.path.join(tmp, "agent.err"), "w")
            agent = start([HANGTRACE, "agent", "--metrics-addr", "127.0.0.1:%d" % free_port(),
                           "--events", os.path.join(tmp, "ev.jsonl"),
                           "--profile-dir", tmp, "--include", "cmdline:" + tag]
                          + args.agent_args.split(),
                          stdout=subprocess.DEVNULL, stderr=err)
            for _ in range(args.idle_procs):
                start([args.python, "-c", CALM, tag])
            time.sleep(args.warmup)
            results["idle"] = measure(agent, args.seconds)
            print("idle:     %s" % results["idle"], flush=True)
            sw = start([args.python, "-c", SWITCHER, str(args.threads), tag])
            time.sleep(args.warmup)
            results["switches"] = measure(agent, args.seconds, sw)
            print("switches: %s" % results["switches"], flush=True)
            os.kill(agent.pid, signal.SIGTERM)
            agent.wait(timeout=10)
    finally:
        cleanup()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
