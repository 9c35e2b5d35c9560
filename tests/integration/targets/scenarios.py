# -*- coding: utf-8 -*-
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Known blocking patterns for the integration tests (runs on CPython 3.6+).

Usage: python scenarios.py SCENARIO [SECONDS]

Prints "READY {json}" (pid, tids), then waits for a line on stdin: the test
sends it once hangtrace is attached.  Then it runs the scenario, prints
"DONE {json}" with what it measured, and parks the main thread in
park_forever() until killed.  Lines marked "# @name" are looked up by the
tests to know which line hangtrace must report.
"""
import json
import socket
import sys
import threading
import time

SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
info = {}


def tid():
    # threading.get_native_id() is 3.8+; the tests only need it where it exists
    return threading.get_native_id() if hasattr(threading, "get_native_id") else None


# --- sleep ---------------------------------------------------------------
def nap():
    time.sleep(SECONDS)  # @nap


def sleep_scenario():
    t0 = time.monotonic()
    nap()  # @call_nap
    info["slept"] = time.monotonic() - t0


# --- lock held by another thread, released from a known function ---------
def wait_for_lock(lock):
    lock.acquire()  # @acquire
    lock.release()


def release_it(lock):
    lock.release()  # @release


def holder(lock, started):
    lock.acquire()
    started.set()
    time.sleep(SECONDS)
    release_it(lock)


def lock_scenario():
    lock = threading.Lock()
    started = threading.Event()
    h = threading.Thread(target=holder, args=(lock, started), name="holder")
    h.start()
    started.wait()
    t0 = time.monotonic()
    wait_for_lock(lock)
    info["waited"] = time.monotonic() - t0
    h.join()


# --- recv on a loopback socket --------------------------------------------
def receive(conn):
    return conn.recv(16)  # @recv


def sender(sock):
    time.sleep(SECONDS)
    sock.sendall(b"hello")


def socket_scenario():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    cli = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()
    info["port"] = srv.getsockname()[1]
    info["peer_port"] = cli.getsockname()[1]
    t = threading.Thread(target=sender, args=(cli,))
    t.start()
    t0 = time.monotonic()
    receive(conn)
    info["waited"] = time.monotonic() - t0
    t.join()


# --- nesting, methods, recursion, non-ASCII -------------------------------
def level3():
    time.sleep(SECONDS)  # @level3


def level2():
    level3()  # @level2


def level1():
    level2()  # @level1


class Worker:
    def run(self):
        time.sleep(SECONDS)  # @method


def recurse(n):
    if n == 0:
        time.sleep(SECONDS)  # @recurse_bottom
        return
    recurse(n - 1)


def schläft_ein():
    time.sleep(SECONDS)  # @unicode


# --- on-CPU then off-CPU: what profiles (folded, pprof, ...) must show ---
def burn(until):
    n = 0
    while time.monotonic() < until:
        n += 1  # @burn
    return n


def rest():
    time.sleep(SECONDS)  # @rest


def profile_scenario():
    t0 = time.monotonic()
    c0 = time.thread_time() if hasattr(time, "thread_time") else None
    burn(t0 + SECONDS)  # @call_burn
    info["burned"] = time.monotonic() - t0
    if c0 is not None:  # on-CPU time (the burn's wall time less preemption)
        info["burned_cpu"] = time.thread_time() - c0
    t1 = time.monotonic()
    rest()  # @call_rest
    info["rested"] = time.monotonic() - t1


SCENARIOS = {
    "sleep": sleep_scenario,
    "lock": lock_scenario,
    "socket": socket_scenario,
    "nested": level1,
    "method": lambda: Worker().run(),
    "recursion": lambda: recurse(500),
    "unicode": schläft_ein,
    "profile": profile_scenario,
}


def park_forever():
    threading.Event().wait()  # @park


def main():
    name = sys.argv[1]
    sys.setrecursionlimit(5000)
    print("READY " + json.dumps({"pid": __import__("os").getpid(), "tid": tid()}), flush=True)
    sys.stdin.readline()
    SCENARIOS[name]()  # @dispatch
    print("DONE " + json.dumps(info), flush=True)
    park_forever()


if __name__ == "__main__":
    main()
