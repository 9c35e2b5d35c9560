# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Processes that start children, for --children (runs on CPython 3.6+).

Usage: python children.py pool METHOD keep|exit [SECONDS [spin]]
       python children.py subprocess [SECONDS]

Prints "READY {json}", then waits for "go" on stdin: the test sends it once
hangtrace is attached, so every child starts after attach.

pool: a multiprocessing Pool(2) with start method METHOD (fork, spawn,
forkserver).  The worker that gets task 0 prints "WORKER {"pid": N}" and
waits until the test sends "nap" (once hangtrace says it traces that
worker), then sleeps SECONDS in nap_in_child(); it measures the sleep
itself.  With "spin" it then runs spin_in_child() on the CPU for SECONDS
and reports the CPU time it used.  With "exit" the pool is closed and joined
(the workers exit before the report), with "keep" they stay alive.

subprocess: runs /bin/sleep 0.3 (not Python; $HANGTRACE_SLEEP names
another copy of it), then another python
(sys.executable) with subprocess that prints "WORKER", waits for "nap"
(relayed), sleeps SECONDS in nap_in_child() and prints what it measured.

Then "DONE {json}" with the sleeper's pid and measurement (pool: and how
long the parent waited for the results, "parent_waited"); the main thread
parks until killed.  Lines marked "# @name" are what the tests expect.
"""
import json
import os
import subprocess
import sys
import threading
import time

EVENT = None


def nap_in_child(seconds):
    time.sleep(seconds)  # @child_nap


def spin_in_child(seconds):
    t0 = time.thread_time()
    n = 0
    while time.thread_time() - t0 < seconds:
        n += 1  # @child_spin
    return time.thread_time() - t0


def init(ev):
    global EVENT
    EVENT = ev


def work(args):
    i, seconds, spin = args
    if i != 0:
        return {"pid": os.getpid(), "slept": 0.0}
    print("WORKER " + json.dumps({"pid": os.getpid()}), flush=True)
    EVENT.wait()
    t0 = time.monotonic()
    nap_in_child(seconds)
    done = {"pid": os.getpid(), "slept": time.monotonic() - t0}
    if spin:
        done["cpu"] = spin_in_child(seconds)
    return done


def park_forever():
    while True:
        time.sleep(3600)


def wait_line(word):
    for line in sys.stdin:
        if line.strip() == word:
            return
    sys.exit(0)


def pool(method, ending, seconds, spin):
    import multiprocessing

    ctx = multiprocessing.get_context(method)
    ev = ctx.Event()
    p = ctx.Pool(2, initializer=init, initargs=(ev,))
    res = p.map_async(work, [(i, seconds, spin) for i in range(4)], chunksize=1)
    wait_line("nap")
    ev.set()
    t0 = time.monotonic()
    results = res.get(timeout=120)  # @parent_wait
    waited = time.monotonic() - t0
    if ending == "exit":
        p.close()
        p.join()
    sleeper = [r for r in results if r["slept"]][0]
    sleeper["parent_waited"] = waited
    print("DONE " + json.dumps(sleeper), flush=True)
    park_forever()


CHILD = """
import json, os, sys, time
sys.path.insert(0, %r)
from children import nap_in_child
print("WORKER " + json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.readline()
t0 = time.monotonic()
nap_in_child(%r)
print("SLEPT " + json.dumps({"pid": os.getpid(), "slept": time.monotonic() - t0}), flush=True)
"""


def run_subprocess(seconds):
    here = os.path.dirname(os.path.abspath(__file__))
    sleep = os.environb.get(b"HANGTRACE_SLEEP", b"/bin/sleep")
    subprocess.check_call([sleep, b"0.3"])
    child = subprocess.Popen([sys.executable, "-c", CHILD % (here, seconds)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             universal_newlines=True)
    line = child.stdout.readline()
    print(line, end="", flush=True)     # WORKER
    wait_line("nap")
    child.stdin.write("nap\n")
    child.stdin.flush()
    line = child.stdout.readline()
    child.wait()
    print("DONE " + line[len("SLEPT "):], end="", flush=True)
    park_forever()


if __name__ == "__main__":
    print("READY " + json.dumps({"pid": os.getpid()}), flush=True)
    wait_line("go")
    if sys.argv[1] == "pool":
        pool(sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 1.0,
             sys.argv[5:6] == ["spin"])
    else:
        run_subprocess(float(sys.argv[2]) if len(sys.argv) > 2 else 1.0)
