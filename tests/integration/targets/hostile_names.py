# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A target whose names are hostile, for the output formats' escaping (3.8+).

Usage: python hostile_names.py SECONDS [ANY ARGS: they end up in the command line]

A thread whose name (comm) holds markup and invalid UTF-8 runs a function
whose name and file name hold markup, quotes, "]]>", control characters, a
lone surrogate and 10 KB of padding; the function sleeps SECONDS.  READY /
trigger / DONE / park as in scenarios.py.  The test imports this file for
the names.
"""
import json
import os
import sys
import threading
import time

FUNC = ('<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">"\'&amp;]]>'
        '\x01\x1b[31m\udcff' + "A" * 10240)
FILE = '</script><i>"\'&]]>\x07\x7f.py'
COMM = b'<i>"\xff\x01]]>'   # at most 15 bytes: /proc/PID/task/TID/comm
LINE = 2                    # the sleep's line in SOURCE
SOURCE = "def f(seconds):\n    time.sleep(seconds)\n"
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 and __name__ == "__main__" else 0.5


def hostile_function():
    ns = {"time": time}
    exec(compile(SOURCE, FILE, "exec"), ns)
    f = ns["f"]
    names = {"co_name": FUNC}
    if sys.version_info >= (3, 11):
        names["co_qualname"] = FUNC
    f.__code__ = f.__code__.replace(**names)
    return f


def run_it(f, info, done):
    with open("/proc/self/task/%d/comm" % threading.get_native_id(), "wb") as c:
        c.write(COMM)
    t0 = time.monotonic()
    f(SECONDS)
    info["slept"] = time.monotonic() - t0
    done.set()
    threading.Event().wait()  # stays alive, so the report still has its name


def main():
    f = hostile_function()
    info = {}
    print("READY " + json.dumps({"pid": os.getpid()}), flush=True)
    sys.stdin.readline()
    done = threading.Event()
    threading.Thread(target=run_it, args=(f, info, done), daemon=True).start()
    done.wait()
    print("DONE " + json.dumps(info), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
