#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""hangtrace attach cost: time from exec to the "tracing process" line, and
the CPU time hangtrace spent to get there.

Wall time is what the budget is about (<= 0.2 s), but on a shared machine it
mostly measures the neighbours; hangtrace's own CPU time (user + sys, from
wait4) up to the attach line is what the loading costs and is robust to
load.  Most of it is the kernel's verifier: see verifier_stats for the
instructions it processes per program.

Each repetition starts a sleeping Python target, runs `hangtrace -p PID`,
waits for the attach line, stops hangtrace with SIGINT right away, and
kills the target (both by pid, also on errors).  Needs root.

  /usr/bin/python3 bench/attach.py [--reps 10] [--python PATH] [--hangtrace PATH]
"""

import argparse
import json
import os
import selectors
import signal
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
DEFAULT_PYTHON = "/root/.pyenv/versions/3.12.1/bin/python3"
MARKER = b"hangtrace: tracing process"


def one(hangtrace, python, env):
    """(seconds to the attach line, hangtrace's CPU seconds to exit) of one run."""
    target = subprocess.Popen([python, "-c", "import sys, time; print(1, flush=True); "
                               "time.sleep(120)"], stdout=subprocess.PIPE)
    tracer = None
    try:
        target.stdout.readline()
        t0 = time.monotonic()
        tracer = subprocess.Popen([hangtrace, "-p", str(target.pid), "-d", "60",
                                   "--format", "json", "-o", os.devnull],
                                  stderr=subprocess.PIPE, env=env)
        sel = selectors.DefaultSelector()
        sel.register(tracer.stderr, selectors.EVENT_READ)
        buf = b""
        while MARKER not in buf:
            if not sel.select(timeout=max(0.0, t0 + 30 - time.monotonic())):
                raise RuntimeError("hangtrace did not attach within 30 s")
            chunk = os.read(tracer.stderr.fileno(), 4096)
            if not chunk:
                raise RuntimeError("hangtrace exited before attaching: %r" % buf)
            buf += chunk
        attach = time.monotonic() - t0
        os.kill(tracer.pid, signal.SIGINT)
        tracer.stderr.read()
        _, status, ru = os.wait4(tracer.pid, 0)
        tracer.returncode = os.waitstatus_to_exitcode(status)
        if tracer.returncode:
            raise RuntimeError("hangtrace exited %d" % tracer.returncode)
        return attach, ru.ru_utime + ru.ru_stime, ru.ru_stime
    finally:
        for p in (tracer, target):
            if p and p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--python", default=DEFAULT_PYTHON)
    ap.add_argument("--hangtrace", default=os.path.join(ROOT, "hangtrace"))
    ap.add_argument("--bounded-loops", action="store_true",
                    help="the walker without bpf_loop(), as on kernels < 5.17")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("attach.py: error: needs root (BPF)")
    env = dict(os.environ)
    env.pop("HANGTRACE_BOUNDED_LOOPS", None)
    if args.bounded_loops:
        env["HANGTRACE_BOUNDED_LOOPS"] = "1"
    runs = [one(args.hangtrace, args.python, env) for _ in range(args.reps)]
    load = os.getloadavg()[0]
    res = {
        "reps": args.reps,
        "attach_s_median": statistics.median(r[0] for r in runs),
        "attach_s_min": min(r[0] for r in runs),
        "attach_s_max": max(r[0] for r in runs),
        "cpu_s_median": statistics.median(r[1] for r in runs),
        "sys_s_median": statistics.median(r[2] for r in runs),
        "loadavg_1min": load,
    }
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print("attach (exec -> tracing line): median %.3f s (min %.3f, max %.3f) over %d runs"
              % (res["attach_s_median"], res["attach_s_min"], res["attach_s_max"], args.reps))
        print("hangtrace CPU (user+sys): median %.3f s (sys %.3f s)"
              % (res["cpu_s_median"], res["sys_s_median"]))
        print("1-min load average: %.2f on %d CPUs" % (load, os.cpu_count()))


if __name__ == "__main__":
    main()
