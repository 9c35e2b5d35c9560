# -*- coding: utf-8 -*-
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Processes that hang, for `hangtrace dump` (runs on CPython 3.6+).

Usage: python hung.py SCENARIO

Sets the hang up, prints "READY {json}" (pid, thread ids where the version
has them, ports, ...), and hangs for good: the test dumps it, then kills it.
Lines marked "# @name" are looked up by the tests to know which line the
dump must report.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

info = {"pid": os.getpid()}
keep = []  # objects that must outlive the scenario's function (a closed listener resets its clients)


def tid():
    # threading.get_native_id() is 3.8+; the tests only need it where it exists
    return threading.get_native_id() if hasattr(threading, "get_native_id") else None


def ready():
    print("READY " + json.dumps(info), flush=True)


def silent_server():
    """A loopback listener that never accepts: connects succeed, nothing ever answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    info["port"] = srv.getsockname()[1]
    keep.append(srv)
    return srv


# --- shutdown hang: an executor's worker never returns ---------------------
def fetch(port):
    conn = socket.create_connection(("127.0.0.1", port))
    info["worker_tid"] = tid()
    info["worker_port"] = conn.getsockname()[1]
    started.set()
    return conn.recv(16)  # @recv


started = threading.Event()


def finalize():
    from concurrent.futures import ThreadPoolExecutor

    silent_server()
    pool = ThreadPoolExecutor(max_workers=1)
    pool.submit(fetch, info["port"])
    started.wait()
    info["main_tid"] = tid()
    ready()
    # the main module returns here; the interpreter's exit joins the worker forever


# --- shutdown hang: threading._shutdown waits for a non-daemon thread ------
def reader(port):
    conn = socket.create_connection(("127.0.0.1", port))
    info["worker_tid"] = tid()
    info["worker_port"] = conn.getsockname()[1]
    started.set()
    conn.recv(16)  # @reader_recv


def finalize_thread():
    silent_server()
    t = threading.Thread(target=reader, args=(info["port"],), name="reader")
    t.start()
    started.wait()
    ready()


# --- a signal handler taking the lock the interrupted code holds ------------
lock = threading.Lock()


def on_term(signum, frame):
    with lock:  # @handler_lock
        pass


def hold_and_wait():
    with lock:
        ready()
        time.sleep(3600)  # @interrupted


def sigterm():
    signal.signal(signal.SIGTERM, on_term)
    hold_and_wait()  # @call_hold


# --- a join on a thread that waits for an Event nobody sets ----------------
never = threading.Event()


def waiter():
    info["waiter_tid"] = tid()
    info["waiter_since"] = time.monotonic()
    started.set()
    never.wait()  # @event_wait


def join_event():
    t = threading.Thread(target=waiter, name="waiter")
    t.start()
    started.wait()
    ready()
    t.join()  # @join


# --- two threads joining each other ----------------------------------------
threads = {}


def join_other(name):
    started.wait()
    threads[name].join()  # @cycle_join


def join_cycle():
    threads["a"] = threading.Thread(target=join_other, args=("b",), name="a")
    threads["b"] = threading.Thread(target=join_other, args=("a",), name="b")
    threads["a"].start()
    threads["b"].start()
    started.set()
    time.sleep(0.2)
    ready()
    threads["a"].join()  # @main_join


# --- an RLock held by a thread that waits for something else --------------
rl_a = threading.RLock()
rl_b = threading.RLock()


def keep_rlock():
    with rl_a:
        with rl_a:  # reentrant: held twice
            info["holder_tid"] = tid()
            started.set()
            never.wait()  # @holder_wait


def rlock_owner():
    t = threading.Thread(target=keep_rlock, name="holder")
    t.start()
    started.wait()
    ready()
    with rl_a:  # @rlock_wait
        pass


# --- two threads, each holding the RLock the other wants ------------------
both = threading.Barrier(2)


def take(first, second):
    with first:
        both.wait()
        with second:  # @rlock_take
            pass


def rlock_cycle():
    threads["a"] = threading.Thread(target=take, args=(rl_a, rl_b), name="a")
    threads["b"] = threading.Thread(target=take, args=(rl_b, rl_a), name="b")
    threads["a"].start()
    threads["b"].start()
    time.sleep(0.2)
    ready()
    threads["a"].join()  # @rlock_main_join


# --- waiting for a child that never exits ----------------------------------
def child():
    p = subprocess.Popen(["sleep", "3600"])
    info["child"] = p.pid
    ready()
    p.wait()  # @child_wait


# --- a socket peer that never answers ---------------------------------------
def ask(port):
    conn = socket.create_connection(("127.0.0.1", port))
    info["asker_tid"] = tid()
    info["asker_port"] = conn.getsockname()[1]
    conn.sendall(b"ping")
    started.set()
    conn.recv(16)  # @ask_recv


def silent_peer():
    silent_server()
    t = threading.Thread(target=ask, args=(info["port"],), name="asker", daemon=True)
    t.start()
    started.wait()
    ready()
    while True:
        time.sleep(0.05)  # @main_naps


# --- the GIL held by a thread blocked in native code -------------------------
go = threading.Event()


def hog():
    import ctypes

    libc = ctypes.PyDLL(None)  # calls through PyDLL keep the GIL
    info["hog_tid"] = tid()
    started.set()
    go.wait()
    libc.sleep(3600)  # @gil_sleep


def count():
    n = 0
    while True:
        n += 1  # @count


def gil():
    try:
        import ctypes  # noqa: F401  (some builds lack _ctypes)
    except ImportError as e:
        info["skip"] = "no ctypes: %s" % e
        ready()
        return
    counter = threading.Thread(target=count, name="counter", daemon=True)
    counter.start()
    time.sleep(0.1)
    t = threading.Thread(target=hog, name="hog", daemon=True)
    t.start()
    started.wait()
    ready()
    go.set()
    counter.join()


# --- a healthy, busy process ------------------------------------------------
def spin(n):
    x = 0
    while True:
        x = (x * 31 + n) % 1000003  # @spin


def busy():
    import faulthandler

    # a native thread (no Python thread state): faulthandler's watchdog
    faulthandler.dump_traceback_later(3600, exit=False)
    for i in range(2):
        threading.Thread(target=spin, args=(i,), name="spin%d" % i, daemon=True).start()
    ready()
    while True:
        time.sleep(0.01)  # @busy_main


SCENARIOS = {
    "finalize": finalize,
    "finalize_thread": finalize_thread,
    "sigterm": sigterm,
    "join_event": join_event,
    "join_cycle": join_cycle,
    "rlock_owner": rlock_owner,
    "rlock_cycle": rlock_cycle,
    "child": child,
    "silent_peer": silent_peer,
    "gil": gil,
    "busy": busy,
}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]]()  # @dispatch
