# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The protocol every benchmark workload follows with bench/run.py.

1. Set everything up (threads, sockets, data), then print one JSON line
   {"ready": true, "pid": PID} on stdout.
2. Wait for one line on stdin: the harness sends it once the tracer of this
   run is attached (or at once, untraced).
3. Run for --warmup seconds unmeasured, then --duration seconds measured.
4. Print one JSON line with the result:
   {"workload": NAME, "ops": N, "seconds": S, "ops_per_s": N / S, "unit": ...}
5. Stay alive, idle, until stdin gives another line or closes: the harness
   first stops the tracer, which may still read this process (symbols, the
   stacks of parked threads) while it writes its report.

The workloads use only the standard library, so they run on any CPython the
tracer supports; run.py starts them pinned to one CPU with taskset.
"""

import argparse
import json
import os
import sys


def parse_args(description, extra=None):
    """Parse the options common to all workloads (and @extra's, if given)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--warmup", type=float, default=0.5,
                    help="seconds run before measuring (default 0.5)")
    ap.add_argument("--duration", type=float, default=3.0,
                    help="seconds measured (default 3)")
    if extra:
        extra(ap)
    return ap.parse_args()


def emit(obj):
    """Print one JSON line on stdout, at once."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def announce_ready():
    emit({"ready": True, "pid": os.getpid()})


def wait_for_go():
    """Block until the harness says go (or closes stdin: then exit quietly)."""
    if not sys.stdin.readline():
        sys.exit(0)


def linger():
    """Wait idle until the harness lets this process exit (step 5)."""
    sys.stdin.readline()


def report(name, ops, seconds, unit, **extra):
    result = {"workload": name, "ops": ops, "seconds": seconds,
              "ops_per_s": ops / seconds if seconds > 0 else 0.0,
              "unit": unit, "python": sys.version.split()[0]}
    result.update(extra)
    emit(result)
