# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Event-loop stall scenarios on stdlib asyncio (CPython 3.6+; uvloop with --uvloop).

Usage: python loops.py SCENARIO [--uvloop]

Prints "READY {json}", runs an asyncio loop with a ticker, waits for a line on
stdin (sent once hangtrace is attached), runs SCENARIO inside the loop,
prints "DONE {json}" with its own measurements (ground truth: how long the
blocking part took, the worst ticker lag), and keeps the loop running idle
until killed.  Lines marked "# @name" are what the tests expect to see.
"""
import asyncio
import json
import os
import socket
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

info = {"lags": []}
SLOW = 0.4


# --- a loopback server that answers after SLOW seconds ---------------------
def slow_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def serve():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    def answer(conn):
        conn.recv(4096)
        time.sleep(SLOW)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return "http://127.0.0.1:%d/" % srv.getsockname()[1]


URL = slow_server()


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as r:  # @fetch
        return r.read()


# --- scenarios ---------------------------------------------------------------
async def sleepy():
    time.sleep(0.3)  # @sleepy


async def executor_exit():
    with ThreadPoolExecutor(max_workers=2) as pool:
        pool.submit(fetch, URL)
    # leaving the with-block joined the pool


POOL = ThreadPoolExecutor(max_workers=1)


async def future_result():
    fut = POOL.submit(fetch, URL)
    return fut.result()  # @future_result


async def urllib_call():
    fetch(URL)  # @urllib_call


def spin(seconds):
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:  # @spin
        x += 1


async def gil_contention():
    t = threading.Thread(target=spin, args=(0.6,), name="spinner")
    t.start()
    for _ in range(30):
        await asyncio.sleep(0.01)
    t.join()  # @gil_join


async def busy():
    cpu0 = time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)
    end = time.monotonic() + 0.4
    x = 0
    while time.monotonic() < end:  # @busy
        x += 1
    # ground truth: how much of the stall this thread really had a CPU
    info["cpu_s"] = time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID) - cpu0


LOCK = threading.Lock()


def worker_with_lock():
    with LOCK:
        fetch(URL)  # @worker_fetch


async def lock_held_by_worker():
    t = threading.Thread(target=worker_with_lock, name="lock-holder")
    t.start()
    time.sleep(0.05)  # let the worker take the lock
    t0 = time.monotonic()
    LOCK.acquire()  # @lock_acquire
    info["waited"] = time.monotonic() - t0
    LOCK.release()
    t.join()


def http_client_call():
    import http.client
    host, port = URL[len("http://"):].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/")
    return conn.getresponse().read()  # @http_client


async def http_client():
    http_client_call()


async def requests_call():
    import requests
    requests.get(URL, timeout=10)  # @requests


async def raw_socket():
    sock = socket.create_connection(URL[len("http://"):].rstrip("/").split(":"))
    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    sock.recv(100)  # @raw_socket
    sock.close()


async def event_wait():
    ev = threading.Event()
    threading.Timer(0.3, ev.set).start()
    ev.wait()  # @event_wait


async def queue_get():
    import queue
    q = queue.Queue()
    threading.Timer(0.3, q.put, args=(1,)).start()
    q.get()  # @queue_get


async def child():
    import subprocess
    subprocess.run(["sleep", "0.3"])  # @child


async def pipe_read():
    r, w = os.pipe()
    threading.Timer(0.3, os.write, args=(w, b"x")).start()
    os.read(r, 1)  # @pipe_read


async def long_sleep():
    time.sleep(2.0)  # @long_sleep


# --- asyncio tasks: the stall names the task (3.14+) and its coroutine -------
HOSTILE_NAME = 'evil"\x1b[31m<b>\udcff' + "x" * 5000


def create_task(coro, name):
    """asyncio.create_task(coro, name=name); tasks have names since 3.8."""
    loop = asyncio.get_event_loop()
    if name is not None and sys.version_info >= (3, 8):
        return loop.create_task(coro, name=name)
    return loop.create_task(coro)


def task_name(task):
    # asked only after the stall: an unnamed 3.14+ task keeps its number until then
    return task.get_name() if sys.version_info >= (3, 8) else None


async def task_sleeper():
    time.sleep(0.3)  # @task_sleeper


async def task_spinner():
    end = time.monotonic() + 0.4
    x = 0
    while time.monotonic() < end:  # @task_spinner
        x += 1


def task_scenario(coro_fn, name):
    async def scenario():
        task = create_task(coro_fn(), name)
        await task
        info["task"] = task_name(task)
    return scenario


SCENARIOS = {
    "http_client": http_client,
    "requests": requests_call,
    "socket": raw_socket,
    "event": event_wait,
    "queue": queue_get,
    "child": child,
    "pipe": pipe_read,
    "long": long_sleep,
    "sleep": sleepy,
    "executor": executor_exit,
    "urllib": urllib_call,
    "future": future_result,
    "gil": gil_contention,
    "cpu": busy,
    "lock": lock_held_by_worker,
    "task_named": task_scenario(task_sleeper, "slow-handler"),
    "task_unnamed": task_scenario(task_sleeper, None),
    "task_cpu": task_scenario(task_spinner, "cpu-handler"),
    "task_hostile": task_scenario(task_sleeper, HOSTILE_NAME),
}


async def ticker():
    while True:
        t0 = time.monotonic()
        await asyncio.sleep(0.01)
        info["lags"].append(time.monotonic() - t0 - 0.01)


async def main(name, go):
    asyncio.ensure_future(ticker())
    await go.wait()
    info["lags"] = []
    t0 = time.monotonic()
    await SCENARIOS[name]()
    info.setdefault("blocked", time.monotonic() - t0)
    current = getattr(asyncio, "current_task", None) or asyncio.Task.current_task
    info["main_task"] = task_name(current())
    await asyncio.sleep(0.1)
    lags = info.pop("lags")
    info["lags"] = []
    report = dict(info, max_lag=max(lags) if lags else 0)
    del report["lags"]
    print("DONE " + json.dumps(report), flush=True)
    while True:
        await asyncio.sleep(3600)


def run():
    name = sys.argv[1]
    if "--uvloop" in sys.argv:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    go = asyncio.Event()

    def wait_trigger():
        sys.stdin.readline()
        loop.call_soon_threadsafe(go.set)

    threading.Thread(target=wait_trigger, daemon=True, name="trigger").start()
    print("READY " + json.dumps({"pid": os.getpid()}), flush=True)
    loop.run_until_complete(main(name, go))


if __name__ == "__main__":
    run()
