# -*- coding: utf-8 -*-
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Hostile targets for tests/integration/test_hardening.py (CPython 3.6+).

Usage: python hostile_scenarios.py SCENARIO [ARG]

Prints "READY {json}" once set up, then waits for a line on stdin (the
trigger) and does what the scenario says.  Lines marked "# @name" are looked up
by the tests.

  sleeper           trigger: sleep ARG seconds in nap(), print DONE, park
  threads N         N threads each blocked in worker() on an Event; trigger: exit
  deep N            trigger: recurse N levels in dive(), sleep at the bottom
  names             threads blocked in functions and files with hostile names
  exec S [P]        trigger: nap() S seconds, pause P, then exec into /bin/sleep
  fanout N          trigger: N new threads each nap() 0.05 s once, print DONE
"""
import json
import os
import sys
import threading
import time

ARG = sys.argv[2] if len(sys.argv) > 2 else "1"
info = {"pid": os.getpid()}


def tid():
    return threading.get_native_id() if hasattr(threading, "get_native_id") else None


def ready():
    print("READY " + json.dumps(info), flush=True)


def wait_trigger():
    sys.stdin.readline()  # @wait_trigger


def park_forever():
    while True:
        time.sleep(3600)  # @park


def nap(seconds):
    time.sleep(seconds)  # @nap


def sleeper():
    ready()
    wait_trigger()
    t0 = time.monotonic()
    nap(float(ARG))
    print("DONE " + json.dumps({"slept": time.monotonic() - t0}), flush=True)
    park_forever()


def worker(ev):
    ev.wait()  # @worker


def threads():
    n = int(ARG)
    ev = threading.Event()
    ts = []
    threading.stack_size(64 * 1024)
    for _ in range(n):
        t = threading.Thread(target=worker, args=(ev,))
        t.daemon = True
        t.start()
        ts.append(t)
    info["threads"] = n
    ready()
    wait_trigger()
    ev.set()
    for t in ts:
        t.join()
    print("DONE {}", flush=True)
    park_forever()


def dive(n, bottom):
    if n > 1:
        return dive(n - 1, bottom)  # @dive
    bottom.wait()  # @bottom


def deep():
    n = int(ARG)
    sys.setrecursionlimit(n + 500)
    threading.stack_size(256 * 1024 * 1024 if n > 5000 else 64 * 1024 * 1024)
    bottom = threading.Event()
    t = threading.Thread(target=dive, args=(n, bottom), name="diver")
    t.daemon = True
    t.start()
    info["tid"] = None
    ready()
    park_forever()


# Names a hostile program could give its functions and files: a terminal
# escape (clear screen, set title), a lone surrogate (what a file name in
# invalid UTF-8 decodes to), a C1 control, quotes and markup, and 10 KB.
HOSTILE = {
    "esc": ("f\x1b[2J\x1b]0;pwned\x07", "/tmp/esc\x1b[31mred.py"),
    "badutf8": ("g\udcff\udcfe", "/tmp/bad\udcffname.py"),
    "c1": ("h\x9b31m\u202e", "/tmp/c1\x9bfile.py"),
    "quotes": ('q"<b>&\'\\', '/tmp/q"<b>.py'),
    "long": ("L" * 10240, "/tmp/" + "F" * 10240 + ".py"),
}


def hostile_func(name, filename):
    src = "def blocker(ev):\n    ev.wait()\n"
    ns = {}
    exec(compile(src, filename, "exec"), ns)
    f = ns["blocker"]
    code = f.__code__
    if hasattr(code, "replace"):
        kw = {"co_name": name}
        if hasattr(code, "co_qualname"):
            kw["co_qualname"] = name
        f.__code__ = code.replace(**kw)
    else:
        f.__name__ = name
    return f


def names():
    ev = threading.Event()
    tids = {}
    started = []
    for key, (name, filename) in HOSTILE.items():
        f = hostile_func(name, filename)
        t = threading.Thread(target=f, args=(ev,), name=key)
        t.daemon = True
        t.start()
        started.append(t)
    time.sleep(0.2)
    info["names"] = {k: [n.encode("utf-8", "surrogateescape").hex(),
                         f.encode("utf-8", "surrogateescape").hex()] for k, (n, f) in HOSTILE.items()}
    ready()
    park_forever()


def fanout():
    n = int(ARG)
    threading.stack_size(64 * 1024)
    ready()
    wait_trigger()
    ts = [threading.Thread(target=nap, args=(0.05,)) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("DONE {}", flush=True)
    park_forever()


def exec_scenario():
    ready()
    wait_trigger()
    nap(float(ARG))
    print("DONE {}", flush=True)
    time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 0)  # @before_exec
    os.execv("/bin/sleep", ["sleep", "3600"])


SCENARIOS = {"sleeper": sleeper, "threads": threads, "deep": deep, "names": names,
             "exec": exec_scenario, "fanout": fanout}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]]()
