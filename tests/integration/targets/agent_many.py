# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Many distinct Python stacks and code objects, for the agent's memory caps.

Usage: python agent_many.py TAG [N]

N (default 64) call chains chain_I -> mid_I -> leaf_I, each a distinct code
object, the leaf sleeping 3 ms (a block longer than --min-block); after a line
on stdin they are called round-robin, forever: 3 * N distinct functions and
N distinct stacks every round.  Prints "READY {json}" first, then "DONE {json}"
after the first full round with the number of rounds run so far.

TAG is only there so the tests' --include can pick this process out.
"""
import json
import os
import sys
import time

tag = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 64

src = []
for i in range(n):
    src.append("def leaf_%d():\n    time.sleep(0.003)\n" % i)
    src.append("def mid_%d():\n    leaf_%d()\n" % (i, i))
    src.append("def chain_%d():\n    mid_%d()\n" % (i, i))
ns = {"time": time}
exec(compile("".join(src), os.path.abspath(__file__) + ".generated", "exec"), ns)
chains = [ns["chain_%d" % i] for i in range(n)]

print("READY " + json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.readline()
rounds = 0
while True:
    for f in chains:
        f()
    rounds += 1
    if rounds == 1:
        print("DONE " + json.dumps({"rounds": rounds, "functions": 3 * n}), flush=True)
