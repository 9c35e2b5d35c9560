# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""asyncio imported only after hangtrace has attached (CPython 3.8+).

Usage: python late_asyncio.py

Prints "READY {json}" without asyncio loaded; on the first line on stdin
imports asyncio (on 3.14 that maps the _asyncio module) and prints
"IMPORTED"; on the second, runs a task named "late-handler" that blocks the
loop with time.sleep, then prints "DONE {json}" with how long it blocked and
the task's name, and idles until killed.
"""
import json
import os
import sys
import time

assert "asyncio" not in sys.modules and "_asyncio" not in sys.modules
print("READY " + json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.readline()
import asyncio  # noqa: E402

print("IMPORTED", flush=True)
sys.stdin.readline()
info = {}


async def late_handler():
    t0 = time.monotonic()
    time.sleep(0.3)  # @late_handler
    info["blocked"] = time.monotonic() - t0


async def main():
    for _ in range(5):
        await asyncio.sleep(0.01)  # a few loop iterations first: a loop thread
    task = asyncio.get_event_loop().create_task(late_handler(), name="late-handler")
    await task
    info["task"] = task.get_name()
    await asyncio.sleep(0.2)
    print("DONE " + json.dumps(info), flush=True)
    while True:
        await asyncio.sleep(3600)


asyncio.run(main())
