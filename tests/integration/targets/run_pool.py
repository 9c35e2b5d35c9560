# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""For `hangtrace run --children`: a program that starts a pool and ends.

Usage: python run_pool.py METHOD [SECONDS]

Prints "READY {json}", then runs a multiprocessing Pool(2) with start method
METHOD (fork, spawn, forkserver), built from children.py's pieces: the worker
that gets task 0 prints "WORKER {"pid": N}", waits until the test sends "nap"
on our stdin (once hangtrace says it traces that worker), then sleeps SECONDS
in children.nap_in_child() and measures the sleep itself.  The pool is closed
and joined (the workers exit), "DONE {json}" gives the sleeper's pid and
measurement, and the program exits 0.  Runs on CPython 3.6+.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import children  # noqa: E402  (spawn's workers find it through sys.path too)


def main():
    import multiprocessing

    method = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    print("READY " + json.dumps({"pid": os.getpid()}), flush=True)
    ctx = multiprocessing.get_context(method)
    ev = ctx.Event()
    p = ctx.Pool(2, initializer=children.init, initargs=(ev,))
    res = p.map_async(children.work, [(i, seconds, False) for i in range(4)], chunksize=1)
    children.wait_line("nap")
    ev.set()
    results = res.get(timeout=120)
    p.close()
    p.join()
    sleeper = [r for r in results if r["slept"]][0]
    print("DONE " + json.dumps(sleeper), flush=True)


if __name__ == "__main__":
    main()
