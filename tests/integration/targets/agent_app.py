# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A small asyncio service for the agent tests (CPython 3.6+).

Usage: python agent_app.py MODE TAG [COUNT] [SECONDS]

MODE stall: after a line on stdin, COUNT times (default 4): a callback on the
loop calls blocking_call(), which blocks the loop thread SECONDS (default 0.4)
in time.sleep, then the loop idles.  Prints "DONE {json}" with its own
measurements: each blocking call's duration and each callback's duration
(the loop iteration the agent must report as a stall).
MODE calm: the same loop, only awaiting (no stall ever); "DONE" at once.
MODE exit: like stall, then exits after DONE.

TAG is only there so the tests' --include can pick these processes out.
Prints "READY {json}" first.  Lines marked "# @name" are what tests expect.
"""
import asyncio
import json
import sys
import threading
import time

mode, tag = sys.argv[1], sys.argv[2]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 4
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 0.4
info = {"blocks": [], "callbacks": [], "mode": mode}


def blocking_call():
    t0 = time.monotonic()
    time.sleep(seconds)  # @agent-block
    info["blocks"].append(time.monotonic() - t0)


def handler():
    t0 = time.monotonic()
    blocking_call()  # @agent-handler
    info["callbacks"].append(time.monotonic() - t0)


async def ticker():
    while True:
        await asyncio.sleep(0.05)


async def main():
    loop = asyncio.get_event_loop()
    asyncio.ensure_future(ticker())
    go = asyncio.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), loop.call_soon_threadsafe(go.set)),
                     daemon=True).start()
    print("READY " + json.dumps({"pid": __import__("os").getpid()}), flush=True)
    if mode == "calm":
        print("DONE " + json.dumps(info), flush=True)
        while True:
            await asyncio.sleep(1)
    await go.wait()
    for _ in range(count):
        loop.call_soon(handler)
        await asyncio.sleep(0.3)  # idle between stalls
    print("DONE " + json.dumps(info), flush=True)
    if mode == "exit":
        return
    while True:
        await asyncio.sleep(1)


loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
loop.run_until_complete(main())
