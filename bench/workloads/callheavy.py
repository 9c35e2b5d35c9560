# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Call-heavy CPU code: C calling Python, the pattern a per-call uprobe on
the frame evaluator makes expensive.  Alternates sorted(key=...) and map()
over a list, both calling a small Python function once per element.  It
never blocks, so a tracer that pays per block should cost nothing here.

Throughput: Python function calls per second.
"""

import time

import common

N = 10000  # elements per batch; one batch takes about a millisecond


def key(x):
    return -x


def double(x):
    return x + x


def batch(data):
    """One sorted(key=) and one map(): 2 * len(data) Python calls from C."""
    sorted(data, key=key)
    for _ in map(double, data):
        pass
    return 2 * len(data)


def run_for(data, seconds):
    """Run batches for @seconds; return (calls, elapsed)."""
    calls = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        calls += batch(data)
        now = time.perf_counter()
        if now >= deadline:
            return calls, now - t0


def main():
    args = common.parse_args(__doc__)
    data = list(range(N))

    common.announce_ready()
    common.wait_for_go()

    run_for(data, args.warmup)
    calls, elapsed = run_for(data, args.duration)
    common.report("callheavy", calls, elapsed, "calls/s")


if __name__ == "__main__":
    main()
    common.linger()
