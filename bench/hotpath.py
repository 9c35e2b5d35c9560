#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""What hangtrace's hooks cost the tasks it does NOT trace.

sched_switch, sched_waking and sys_exit run for every task on the
machine.  This traces an idle Python process and, meanwhile, runs a syscall
storm in an untraced process (dd with 1-byte blocks: a read and a write per
byte), then prints each program's ns per run from the kernel's BPF run-time
statistics (BPF_ENABLE_STATS).  Those are CPU-time figures, robust to other
load on the machine; they include the statistics' own cost (two clock reads
per run), so compare builds, not absolute numbers: a program that returns at
once measures about 30 ns on the reference VM.

Every process started here is killed by its pid at the end.  Needs root.

  /usr/bin/python3 bench/hotpath.py [--hangtrace PATH] [--reps 3] [--bytes 1000000]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

import run

PROGS = ("handle_sched_switch", "handle_sched_waking", "handle_sys_exit")


def one(args):
    target = tracer = None
    try:
        target = subprocess.Popen([args.python, "-c", "import time; print(1, flush=True); "
                                   "time.sleep(120)"], stdout=subprocess.PIPE)
        target.stdout.readline()
        tracer = subprocess.Popen([args.hangtrace, "-p", str(target.pid), "-d", "120",
                                   "--format", "json", "-o", os.devnull],
                                  stderr=subprocess.PIPE, text=True)
        while "hangtrace: tracing process" not in tracer.stderr.readline():
            if tracer.poll() is not None:
                raise run.BenchError("hangtrace exited before attaching")
        s0 = run.bpf_prog_stats(tracer.pid)
        subprocess.run(["taskset", "-c", str(args.cpu), "dd", "if=/dev/zero", "of=/dev/null",
                        "bs=1", "count=%d" % args.bytes], check=True,
                       stderr=subprocess.DEVNULL)
        s1 = run.bpf_prog_stats(tracer.pid)
        names = run.bpf_prog_names(set(s1))
        out = {}
        for pid, (c1, t1) in s1.items():
            c0, t0 = s0.get(pid, (0, 0))
            if names.get(pid) in PROGS and c1 > c0:
                out[names[pid]] = ((t1 - t0) / (c1 - c0), c1 - c0)
        return out
    finally:
        for p in (tracer, target):
            if p and p.poll() is None:
                os.kill(p.pid, signal.SIGINT if p is tracer else signal.SIGKILL)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hangtrace", default=os.path.join(run.ROOT, "hangtrace"))
    ap.add_argument("--python", default=run.DEFAULT_PYTHON)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--bytes", type=int, default=1000000)
    ap.add_argument("--cpu", type=int, default=0, help="CPU of the syscall storm")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("hotpath.py: error: needs root (BPF)")
    fd = run.enable_bpf_stats()
    try:
        runs = [one(args) for _ in range(args.reps)]
    finally:
        os.close(fd)
    print("%-22s %12s %14s" % ("program", "runs (median)", "ns/run median"))
    for name in PROGS:
        got = [r[name] for r in runs if name in r]
        if got:
            print("%-22s %12d %14.1f" % (name, statistics.median(g[1] for g in got),
                                         statistics.median(g[0] for g in got)))
    print("1-min load average: %.2f on %d CPUs" % (os.getloadavg()[0], os.cpu_count()))


if __name__ == "__main__":
    main()
