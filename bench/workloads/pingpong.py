# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The context-switch storm: two threads hand a turn back and forth through
one threading.Condition.  Pinned to one CPU, every hand-off is a context
switch (about 100k a second), so a tracer's per-switch cost shows directly.

Throughput: hand-offs per second.
"""

import threading
import time

import common


class PingPong:
    def __init__(self):
        self.cond = threading.Condition()
        self.turn = 0
        self.handoffs = 0
        self.stop = False
        self.start = threading.Event()

    def player(self, me):
        """Wait for my turn, pass it to the other player, repeat."""
        other = 1 - me
        self.start.wait()
        with self.cond:
            while not self.stop:
                while self.turn != me and not self.stop:
                    self.cond.wait()
                self.turn = other
                self.handoffs += 1
                self.cond.notify()

    def finish(self):
        with self.cond:
            self.stop = True
            self.cond.notify_all()


def main():
    args = common.parse_args(__doc__)
    pp = PingPong()
    players = [threading.Thread(target=pp.player, args=(i,), name=f"player-{i}")
               for i in (0, 1)]
    for t in players:
        t.start()

    common.announce_ready()
    common.wait_for_go()

    # The players run; this thread only sleeps, and samples the counter at
    # the start and the end of the measured window (reading an int needs no
    # lock under the GIL).
    pp.start.set()
    time.sleep(args.warmup)
    n0, t0 = pp.handoffs, time.perf_counter()
    time.sleep(args.duration)
    n1, t1 = pp.handoffs, time.perf_counter()
    pp.finish()
    for t in players:
        t.join()
    common.report("pingpong", n1 - n0, t1 - t0, "hand-offs/s")


if __name__ == "__main__":
    main()
    common.linger()
