# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Real web stacks whose event loop gets blocked (Debian's python3-* packages).

Usage: python3 webapps.py sse|eventlet|gevent|workers|gunicorn

Prints "READY {"port": N}" once serving on 127.0.0.1.  GET /stream streams
three events; each is produced by code that blocks the loop.  GET /truth
returns what the app measured itself: how long each blocking part took.
Lines marked "# @name" are what the tests expect hangtrace to name.
"""
import json
import socket
import sys
import threading
import time

SLOW = 0.3
truth = {"blocked": []}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def slow_http_server():
    """A loopback HTTP server that answers after SLOW seconds (plain threads)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def answer(conn):
        conn.recv(4096)
        time.sleep(SLOW)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        conn.close()

    def serve():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return "http://127.0.0.1:%d/" % srv.getsockname()[1]


# --- FastAPI + uvicorn, an SSE-style streaming route ------------------------
def run_sse():
    import asyncio
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, StreamingResponse

    url = slow_http_server()
    app = FastAPI()

    def fetch(u):
        with urllib.request.urlopen(u, timeout=10) as r:  # @sse_fetch
            return r.read()

    async def event_stream():
        for i in range(3):
            t0 = time.monotonic()
            with ThreadPoolExecutor(max_workers=4) as pool:  # @sse_with
                futures = [pool.submit(fetch, url) for _ in range(2)]
            results = [f.result() for f in futures]
            truth["blocked"].append(time.monotonic() - t0)
            yield "data: %d %d\n\n" % (i, len(results))
            await asyncio.sleep(0.05)

    @app.get("/stream")
    async def stream():
        return StreamingResponse(event_stream(), media_type="text/event-stream")

    @app.get("/truth")
    async def get_truth():
        return JSONResponse(truth)

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)

    async def main():
        task = asyncio.ensure_future(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        print("READY " + json.dumps({"port": port}), flush=True)
        await task

    asyncio.run(main())


# --- uvicorn --workers 2: a route that blocks its worker's loop -------------
def blocking_handler():
    time.sleep(SLOW)  # @worker_sleep


async def workers_app(scope, receive, send):
    """A bare ASGI app (no framework to import in every worker).  GET /block
    blocks this worker's event loop in time.sleep and says which worker it
    was and how long it blocked; any other path just says which worker."""
    import os

    if scope["type"] != "http":
        return
    body = {"pid": os.getpid()}
    if scope["path"] == "/block":
        t0 = time.monotonic()
        blocking_handler()
        body["blocked"] = time.monotonic() - t0
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def run_workers():
    """uvicorn with 2 workers (spawned), started only after "go" on stdin, so
    that the workers start after hangtrace is attached to this process."""
    import os

    import uvicorn

    port = free_port()
    print("READY " + json.dumps({"port": port}), flush=True)
    sys.stdin.readline()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    uvicorn.run("webapps:workers_app", host="127.0.0.1", port=port, workers=2,
                lifespan="off", log_level="info")


# --- gunicorn -w 2 (pre-fork sync workers): a route that blocks its worker ---
def gunicorn_block():
    time.sleep(SLOW)  # @gunicorn_sleep


def gunicorn_app(environ, start_response):
    import os

    body = {"pid": os.getpid()}
    if environ["PATH_INFO"] == "/block":
        t0 = time.monotonic()
        gunicorn_block()
        body["blocked"] = time.monotonic() - t0
    data = json.dumps(body).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]


def run_gunicorn():
    """gunicorn with 2 sync workers (forked), started only after "go" on stdin."""
    import os

    from gunicorn.app.wsgiapp import run

    port = free_port()
    print("READY " + json.dumps({"port": port}), flush=True)
    sys.stdin.readline()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.argv = ["gunicorn", "-w", "2", "-b", "127.0.0.1:%d" % port, "--log-level", "info",
                "webapps:gunicorn_app"]
    run()


# --- WSGI streaming on eventlet / gevent, without monkey patching -------------
def wsgi_app(environ, start_response):
    if environ["PATH_INFO"] == "/truth":
        body = json.dumps(truth).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    def frames():
        for i in range(3):
            t0 = time.monotonic()
            time.sleep(SLOW)  # @wsgi_sleep
            truth["blocked"].append(time.monotonic() - t0)
            yield b"frame %d\n" % i

    start_response("200 OK", [("Content-Type", "text/plain")])
    return frames()


def run_eventlet():
    import eventlet
    import eventlet.wsgi

    sock = eventlet.listen(("127.0.0.1", 0))
    print("READY " + json.dumps({"port": sock.getsockname()[1]}), flush=True)
    eventlet.wsgi.server(sock, wsgi_app, log_output=False)


def run_gevent():
    from gevent.pywsgi import WSGIServer

    server = WSGIServer(("127.0.0.1", 0), wsgi_app, log=None)
    server.start()
    print("READY " + json.dumps({"port": server.server_port}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    {"sse": run_sse, "eventlet": run_eventlet, "gevent": run_gevent,
     "workers": run_workers, "gunicorn": run_gunicorn}[sys.argv[1]]()
