# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A target whose function, file and thread names are hostile (CPython 3.8+).

Usage: python hostile.py [SECONDS]

The main thread's name (comm) is invalid UTF-8 with a quote, '<' and a
control character; it sleeps in a function whose name holds quotes, '<',
'&', control characters, a terminal escape and a lone surrogate, called from
one with a huge name, both compiled from a "file" whose name is as bad.
Prints "READY {json}" (ensure_ascii, so lone surrogates survive) with the
names and lines, waits for a line on stdin, sleeps SECONDS, prints "DONE
{json}" with what it measured and parks until killed.
"""
import json
import os
import sys
import threading
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
INNER = "evil\"<b>'&\x01\x1b[31m\udcff;x"
OUTER = "long_" + "\u00e9" * 3000
FILE = "/nonexistent/evil \"<file>\x02\udcfe'&.py"
THREAD = b"bad\xff\"<\x07"  # comm is bytes: this is not UTF-8

SRC = """\
def outer(info, t0):
    inner(info, t0)
def inner(info, t0):
    time.sleep(SECONDS)
    info["slept"] = time.monotonic() - t0
"""
LINES = {"outer_def": 1, "outer_call": 2, "inner_def": 3, "inner_sleep": 4}


def main():
    ns = {"time": time, "SECONDS": SECONDS}
    exec(compile(SRC, FILE, "exec"), ns)
    for fn, name in ((ns["outer"], OUTER), (ns["inner"], INNER)):
        kw = {"co_name": name}
        if sys.version_info >= (3, 11):
            kw["co_qualname"] = name
        fn.__code__ = fn.__code__.replace(**kw)
    tid = threading.get_native_id()
    with open("/proc/self/task/%d/comm" % tid, "wb") as f:
        f.write(THREAD)
    print("READY " + json.dumps({"pid": os.getpid(), "tid": tid, "inner": INNER, "outer": OUTER,
                                 "file": FILE, "lines": LINES}), flush=True)
    sys.stdin.readline()
    info = {}
    ns["outer"](info, time.monotonic())
    print("DONE " + json.dumps(info), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
