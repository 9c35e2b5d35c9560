# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""An asyncio TCP echo server on loopback, under load from a client process.

This process (the one traced) runs the server: an asyncio.Protocol that
writes back what it reads.  It starts a client process (this same file with
--client, on the same CPU, since CPU affinity is inherited), which keeps
--conns connections busy, each sending a --size byte message and waiting for
its echo before sending the next.  The server's event loop therefore blocks
in epoll_wait and is woken by the client over and over: a syscall- and
wake-up-heavy server, as a real one is.

With --stall-every S --stall-ms MS the server's loop stalls on purpose: once
every S seconds a callback calls time.sleep(MS/1000), as a blocking call in a
coroutine would (the "stall" workload: loop detection, stall blame and
sampling at work, not only idle waits).

Throughput: echoed messages (round trips) per second, counted by the client.
"""

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time

import common


def extra_args(ap):
    ap.add_argument("--conns", type=int, default=1,
                    help="client connections (default 1)")
    ap.add_argument("--size", type=int, default=64,
                    help="message size in bytes (default 64)")
    ap.add_argument("--stall-every", type=float, default=0,
                    help="stall the server's loop once every this many seconds (default: never)")
    ap.add_argument("--stall-ms", type=float, default=120,
                    help="how long each stall lasts, in ms (default 120)")
    # Internal: run as the client of the server listening on PORT.
    ap.add_argument("--client", type=int, metavar="PORT", help=argparse.SUPPRESS)


async def readline(f):
    """Read a line from pipe @f without blocking the loop nor adding a thread
    (a thread pool would add threads to the traced process)."""
    loop = asyncio.get_running_loop()
    readable = loop.create_future()
    loop.add_reader(f.fileno(), readable.set_result, None)
    try:
        await readable
    finally:
        loop.remove_reader(f.fileno())
    return f.readline()


# --- server (the traced process) -------------------------------------------

def stall(loop, every, seconds):
    """Block the loop for @seconds, then again in @every seconds."""
    time.sleep(seconds)  # a blocking call on the loop thread: the stall
    loop.call_later(every, stall, loop, every, seconds)


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.transport.write(data)


async def serve(args):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    # The client connects first, so the setup is over before "ready".
    client = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--client", str(port),
         "--conns", str(args.conns), "--size", str(args.size),
         "--warmup", str(args.warmup), "--duration", str(args.duration)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        if not await readline(client.stdout):
            raise SystemExit("echo: the client failed to start")

        common.announce_ready()
        if not await readline(sys.stdin):
            return
        client.stdin.write(b"go\n")
        client.stdin.flush()
        if args.stall_every:
            loop.call_later(args.stall_every, stall, loop, args.stall_every,
                            args.stall_ms / 1000)

        # The client measures and says when it is done, on its stdout.
        result = json.loads(await readline(client.stdout))
        common.report("echo", result["ops"], result["seconds"], "round trips/s",
                      conns=args.conns, size=args.size, stall_every=args.stall_every,
                      stall_ms=args.stall_ms)
    finally:
        # The client exits by itself once it has reported; never leave it behind.
        try:
            client.wait(timeout=5)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait()
        server.close()


# --- client (a separate process, not traced) -------------------------------

class Pinger(asyncio.Protocol):
    """Send a message, wait for all of its echo, count, send again."""

    def __init__(self, msg, state):
        self.msg = msg
        self.state = state
        self.pending = 0

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self):
        self.pending = len(self.msg)
        self.transport.write(self.msg)

    def data_received(self, data):
        self.pending -= len(data)
        if self.pending > 0:
            return
        self.state["round_trips"] += 1
        if self.state["running"]:
            self.send()


async def load(args):
    loop = asyncio.get_running_loop()
    state = {"round_trips": 0, "running": True}
    msg = b"x" * args.size
    conns = []
    for _ in range(args.conns):
        _, proto = await loop.create_connection(
            lambda: Pinger(msg, state), "127.0.0.1", args.client)
        conns.append(proto)

    common.emit({"client_ready": True})
    if not await readline(sys.stdin):
        return

    for c in conns:
        c.send()
    await asyncio.sleep(args.warmup)
    n0, t0 = state["round_trips"], time.perf_counter()
    await asyncio.sleep(args.duration)
    n1, t1 = state["round_trips"], time.perf_counter()
    state["running"] = False
    common.emit({"ops": n1 - n0, "seconds": t1 - t0})
    for c in conns:
        c.transport.close()


def main():
    args = common.parse_args(__doc__, extra_args)
    if args.client:
        asyncio.run(load(args))
    else:
        asyncio.run(serve(args))
        common.linger()


if __name__ == "__main__":
    main()
