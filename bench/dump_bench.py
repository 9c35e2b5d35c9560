#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""How long `hangtrace dump` takes on a process with 100 threads.

Starts a Python process with --threads threads (default 100) blocked in a
mix of waits (Event.wait, time.sleep, socket recv, queue.get, Thread.join)
on each interpreter given (default: the oldest, the system's and the newest
of tests/integration/pythons.py), runs `hangtrace dump -p PID --format json`
--runs times, and reports the wall time of the whole command (exec to exit:
BPF iterator load, discovery, snapshot, diagnosis, output) and the snapshot
alone (the report's window.snapshot_s).  The target is killed by its pid at
the end, also on Ctrl-C or an error.  Needs root.

  /usr/bin/python3 bench/dump_bench.py
  /usr/bin/python3 bench/dump_bench.py --threads 200 --runs 50 --python /usr/bin/python3.11
"""
import argparse
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import pythons  # noqa: E402

TARGET = r"""
import queue, socket, sys, threading, time
n = int(sys.argv[1])
never = threading.Event()
q = queue.Queue()
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(n)
port = srv.getsockname()[1]
def ev(): never.wait()
def nap(): time.sleep(3600)
def rcv():
    c = socket.create_connection(("127.0.0.1", port)); c.recv(1)
def get(): q.get()
kinds = [ev, nap, rcv, get]
threads = [threading.Thread(target=kinds[i % 4], daemon=True) for i in range(n - 1)]
for t in threads: t.start()
time.sleep(0.5)
print("READY", flush=True)
threads[0].join()
"""


def stats(xs):
    xs = sorted(xs)
    return {"median_ms": round(statistics.median(xs) * 1e3, 1),
            "p90_ms": round(xs[int(0.9 * (len(xs) - 1))] * 1e3, 1),
            "max_ms": round(xs[-1] * 1e3, 1)}


def bench(hangtrace, py, threads, runs):
    p = subprocess.Popen(py.argv + ["-c", TARGET, str(threads)], stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError("%s: the target did not start" % py.label)
        time.sleep(1.0)
        walls, snaps = [], []
        for _ in range(runs):
            t0 = time.monotonic()
            r = subprocess.run([hangtrace, "dump", "-p", str(p.pid), "--format", "json"],
                               capture_output=True, text=True, timeout=60)
            walls.append(time.monotonic() - t0)
            if r.returncode:
                raise RuntimeError("hangtrace dump failed: %s" % r.stderr)
            rep = json.loads(r.stdout)
            snaps.append(rep["window"]["snapshot_s"])
        seen = len(rep["threads"])
        python = sum(t["python"] for t in rep["threads"])
        stacked = sum(bool(t["stack"]) for t in rep["threads"])
        return {"python": py.label, "threads": seen, "python_threads": python,
                "with_stack": stacked, "wall": stats(walls), "snapshot": stats(snaps)}
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=100)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--python", action="append", help="interpreter (repeatable)")
    ap.add_argument("--hangtrace", default=str(ROOT / "hangtrace"))
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if os.geteuid():
        sys.exit("needs root")
    found = pythons.interpreters()
    if args.python:
        pys = []
        for exe in args.python:
            info, why = pythons._probe([exe])
            if why:
                sys.exit("%s: %s" % (exe, why))
            pys.append(pythons._make("given", exe, [exe], info))
    else:
        debian = [i for i in found if i.kind == "debian"]
        pys = [found[0]] + debian[:1] + [found[-1]]
    results = []
    print("%-16s %7s %7s %7s | %-26s | %-26s" % ("python", "threads", "python", "stacks",
                                                   "wall ms (median/p90/max)",
                                                   "snapshot ms (median/p90/max)"))
    for py in pys:
        r = bench(args.hangtrace, py, args.threads, args.runs)
        results.append(r)
        w, s = r["wall"], r["snapshot"]
        print("%-16s %7d %7d %7d | %7.1f %7.1f %7.1f    | %7.1f %7.1f %7.1f" % (
            r["python"], r["threads"], r["python_threads"], r["with_stack"], w["median_ms"],
            w["p90_ms"], w["max_ms"], s["median_ms"], s["p90_ms"], s["max_ms"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": args.runs, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
