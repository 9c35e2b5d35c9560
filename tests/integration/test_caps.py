# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The memory limits of `hangtrace -p` (the agent's are in test_agent.py):
--max-stacks and --max-aggregates size the BPF maps, --max-symbols caps each
process's code-object cache.

The target (targets/agent_many.py) calls 64 distinct three-deep chains
chain_I -> mid_I -> leaf_I round-robin, each leaf sleeping 3 ms: 64 distinct
stacks of 192 distinct functions, at lines the test computes from the
generated source.  What a cap keeps out is counted (the report's "lost") or
said once on stderr; what is kept is named exactly.
"""
import re
import subprocess
import time

import pytest

from conftest import HANGTRACE, TARGETS, Target, Tracer, requires_root
import pythons

MANY = TARGETS / "agent_many.py"
N = 64

pytestmark = requires_root


def chain_stack(i):
    """The frames (innermost first) of chain @i, as the generated source has them."""
    gen = str(MANY) + ".generated"
    return [{"function": "leaf_%d" % i, "file": gen, "line": 6 * i + 2},
            {"function": "mid_%d" % i, "file": gen, "line": 6 * i + 4},
            {"function": "chain_%d" % i, "file": gen, "line": 6 * i + 6}]


def trace_many(procs, args, seconds=2.0):
    py = pythons.interpreters()[-1]
    t = Target(py.cmd(MANY, "captest", N))
    procs.append(t)
    tr = Tracer(t.pid, args=args)
    procs.append(tr)
    t.trigger()
    t.wait_done()
    time.sleep(seconds)
    return tr.stop(), tr


def leaf_blockers(report, ended_only=False):
    """{chain number: the blocker's first three frames} of the sleeping leaves
    (@ended_only: not the wait still going on when tracing stopped, whose stack
    is read from the thread at the end, not from the stack map)."""
    out = {}
    for b in report["blockers"]:
        if ended_only and b.get("still_blocked"):
            continue
        stack = b.get("stack") or []
        m = stack and re.fullmatch(r"leaf_(\d+)", stack[0]["function"])
        if m:
            # a chain may head several blockers (kernel paths, the wait at the end)
            frames = [{k: f[k] for k in ("function", "file", "line")} for f in stack[:3]]
            out.setdefault(int(m.group(1)), frames)
            assert out[int(m.group(1))] == frames, (out[int(m.group(1))], frames)
    return out


def test_max_stacks_counts_what_does_not_fit(procs):
    report, tr = trace_many(procs, ["--max-stacks", "4"])
    assert report["lost"]["stacks"] > 0, report["lost"]
    kept = leaf_blockers(report, ended_only=True)
    # at most 4 Python stacks are stored: the chains among them, named exactly
    assert 1 <= len(kept) <= 4, sorted(kept)
    for i, frames in kept.items():
        assert frames == chain_stack(i)


def test_max_aggregates_counts_what_does_not_fit(procs):
    report, tr = trace_many(procs, ["--max-aggregates", "8", "--sample-hz", "0"])
    assert report["lost"]["aggregates"] > 0, report["lost"]
    # 8 (pid, thread, stacks, reason) keys: most chains' blocks did not fit
    kept = leaf_blockers(report)
    assert 1 <= len(kept) < N, sorted(kept)
    for i, frames in kept.items():
        assert frames == chain_stack(i)


def test_max_symbols_reads_uncached_frames_exactly(procs):
    report, tr = trace_many(procs, ["--max-symbols", "4"])
    kept = leaf_blockers(report)
    # every chain's blocks are there, each frame named from an uncached read
    assert sorted(kept) == list(range(N)), sorted(kept)
    for i, frames in kept.items():
        assert frames == chain_stack(i)
    assert report["lost"]["stacks"] == 0 and report["lost"]["aggregates"] == 0
    warned = [x for x in tr.err.all if "--max-symbols" in x]
    assert len(warned) == 1 and warned[0].startswith("hangtrace: warning: process %d: more "
                                                     "than 4 code objects" % report["target"]["pid"]), \
        "".join(tr.err.all)


@pytest.mark.parametrize("args", [["--max-stacks", "0"], ["--max-aggregates", "2000000"],
                                  ["--max-symbols", "-3"], ["--max-symbols", "8k"]])
def test_bad_cap_is_a_one_line_error(args):
    r = subprocess.run([HANGTRACE, "-p", "1"] + args, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.startswith("hangtrace: error: invalid %s '%s': expected 1-" % tuple(args)), \
        r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr
