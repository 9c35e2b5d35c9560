# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Headless Chromium, driven over the DevTools protocol on a pipe, for the tests
that open hangtrace's svg and html files as a user would.

    b = Browser()                        # chromium --headless --remote-debugging-pipe
    page = b.open("file:///tmp/x.svg#search=foo")
    page.eval("document.title")          # in the live page, after its script ran
    img = page.screenshot()              # a PIL image
    page.errors                          # uncaught exceptions and console errors
    b.kill()                             # by pid (its process group), always

Chromium runs as root with --no-sandbox, in its own session so that it and
every helper process it forks end together with killpg(pid).  Every call has
a bounded timeout.
"""
import base64
import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

CHROMIUM = os.environ.get("HANGTRACE_CHROMIUM", "/usr/lib/chromium/chromium")
TIMEOUT = 60  # seconds for one protocol call (the machine is shared and slow)


def available():
    return os.access(CHROMIUM, os.X_OK)


class BrowserError(Exception):
    pass


class Browser:
    def __init__(self, width=1240, height=1000):
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="hangtrace-chromium-")
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def fds():
            # the protocol pipe: Chromium reads fd 3, writes fd 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--remote-debugging-pipe", "--user-data-dir=" + self.profile,
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--hide-scrollbars",
                "--mute-audio", "--force-device-scale-factor=1",
                "--window-size=%d,%d" % (width, height), "about:blank"]
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, preexec_fn=fds, pass_fds=(3, 4),
                                  start_new_session=True)
        self.pid = self.p.pid
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next = 0
        self._lock = threading.Condition()
        self._replies = {}
        self.events = []
        self._closed = False
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        self._stderr = []
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        try:
            self.call("Browser.getVersion")
        except Exception:
            self.kill()
            raise

    def _pump_stderr(self):
        for line in iter(self.p.stderr.readline, b""):
            self._stderr.append(line.decode(errors="replace"))

    def _pump(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                m = json.loads(msg)
                with self._lock:
                    if "id" in m:
                        self._replies[m["id"]] = m
                    else:
                        self.events.append(m)
                    self._lock.notify_all()
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def call(self, method, params=None, session=None, timeout=TIMEOUT):
        with self._lock:
            self._next += 1
            mid = self._next
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._lock:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise BrowserError("%s: no reply (%s); chromium said: %s" % (
                        method, "closed" if self._closed else "timeout",
                        "".join(self._stderr[-20:])))
                self._lock.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise BrowserError("%s: %s" % (method, reply["error"]))
        return reply.get("result", {})

    def wait_event(self, method, session=None, since=0, timeout=TIMEOUT):
        """The first event @method (of @session) at or after index @since."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for e in self.events[since:]:
                    if e.get("method") == method and (session is None
                                                       or e.get("sessionId") == session):
                        return e
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise BrowserError("no %s event" % method)
                self._lock.wait(left)

    def open(self, url):
        return Page(self, url)

    def kill(self):
        """Close the browser, then kill its process group: nothing is left running."""
        if self.p.poll() is None:
            try:
                os.write(self._w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
                self.p.wait(timeout=5)
            except Exception:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.p.poll() is None:
            self.p.wait(timeout=30)
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab showing @url, loaded (its scripts ran) when the constructor returns."""

    def __init__(self, browser, url):
        self.b = browser
        tid = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.call("Target.attachToTarget",
                                    {"targetId": tid, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(domain + ".enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": browser.width, "height": browser.height,
                   "deviceScaleFactor": 1, "mobile": False})
        since = len(browser.events)
        nav = self.call("Page.navigate", {"url": url})
        if nav.get("errorText"):
            raise BrowserError("cannot open %s: %s" % (url, nav["errorText"]))
        browser.wait_event("Page.loadEventFired", self.session, since)

    def call(self, method, params=None, timeout=TIMEOUT):
        return self.b.call(method, params, session=self.session, timeout=timeout)

    def eval(self, expr):
        """The value of JavaScript @expr in the page (JSON-able)."""
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise BrowserError("%s: %s" % (expr[:200], r["exceptionDetails"]))
        return r["result"].get("value")

    @property
    def errors(self):
        """Uncaught exceptions, console.error()s and error log entries of this page."""
        out = []
        for e in list(self.b.events):
            if e.get("sessionId") != self.session:
                continue
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(p["exceptionDetails"].get("exception", {}).get("description")
                           or p["exceptionDetails"].get("text"))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description")))
                                    for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(p["entry"].get("text"))
        return out

    def mouse(self, x, y, kind="mouseMoved"):
        params = {"type": kind, "x": x, "y": y, "button": "none"}
        if kind in ("mousePressed", "mouseReleased"):
            params.update(button="left", clickCount=1)
        self.call("Input.dispatchMouseEvent", params)

    def click(self, x, y):
        self.mouse(x, y)
        self.mouse(x, y, "mousePressed")
        self.mouse(x, y, "mouseReleased")

    def screenshot(self):
        from PIL import Image
        r = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        return Image.open(io.BytesIO(base64.b64decode(r["data"]))).convert("RGB")
