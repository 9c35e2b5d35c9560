# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""hangtrace's demo: an asyncio service whose event loop gets blocked.

Two handlers misbehave, the way real services do:
  - report() calls time.sleep() inside a coroutine;
  - fetch_all() uses `with ThreadPoolExecutor()` inside a coroutine: leaving
    the with-block joins the pool, so the loop waits for a slow HTTP fetch
    (a loopback server that answers after 400 ms).
A ticker measures the loop's lag, as a monitoring probe would.  Runs for
--seconds, then exits.
"""
import argparse
import asyncio
import http.server
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor


class SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.4)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_slow_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    threading.Thread(target=srv.serve_forever, daemon=True, name="slow-server").start()
    return "http://127.0.0.1:%d/" % srv.server_address[1]


def fetch(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read()


async def fetch_all(url):
    with ThreadPoolExecutor(max_workers=2) as pool:
        pool.submit(fetch, url)
    # the with-block's exit joined the pool: the loop was blocked meanwhile


async def report():
    time.sleep(0.25)  # blocking call in a coroutine


async def ticker(lags):
    while True:
        t0 = time.monotonic()
        await asyncio.sleep(0.05)
        lags.append(time.monotonic() - t0 - 0.05)


async def main(seconds):
    url = start_slow_server()
    lags = []
    tick = asyncio.ensure_future(ticker(lags))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await fetch_all(url)
        await asyncio.sleep(0.3)
        await report()
        await asyncio.sleep(0.3)
    tick.cancel()
    print("worst loop lag: %.0f ms" % (max(lags) * 1000), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    asyncio.run(main(ap.parse_args().seconds))
