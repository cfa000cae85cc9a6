#!/usr/bin/env python3
"""web_check.py — loads a page in real headless Chromium and reports on it.

    web_check.py URL OUT_DIR [--width W] [--timeout S] [--wait JS] [--eval JS]
                 [--shot NAME.png] [--max-height H]

Starts Debian's chromium (headless, its own profile dir, no network
services of its own) with the DevTools protocol on a loopback port, opens
URL, waits until the JS expression --wait is truthy (default: the page's
window.profefsTimes.done), then prints one JSON object on stdout:

    {"value": <what --eval returned>, "requests": [every URL the page asked
     for], "errors": [console errors and uncaught exceptions],
     "wait_ms": time from navigation to the wait condition}

and writes OUT_DIR/page.png (--shot), a screenshot of the whole page (up
to --max-height pixels).  Exits 1
with a reason on stderr when Chromium cannot start or the wait times out.
Python stdlib only: the WebSocket client of the DevTools protocol is the
few lines below (text frames, client-masked, as RFC 6455 says).
"""
import argparse
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request


class WebSocket:
    """The client side of RFC 6455, enough for the DevTools protocol."""

    def __init__(self, url):
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            "GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n" % (path, hostport, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise OSError("websocket: closed during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise OSError("websocket: handshake refused: %r" % head[:200])
        self.buf = b""

    def send(self, text):
        data = text.encode()
        n = len(data)
        if n < 126:
            hdr = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            hdr = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(hdr + mask + masked)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise OSError("websocket: closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        """The next text message (fragments joined; control frames skipped)."""
        parts = []
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(n)  # the server does not mask
            op = b0 & 0x0F
            if op == 8:
                raise OSError("websocket: closed by the browser")
            if op in (9, 10):
                continue
            parts.append(payload)
            if b0 & 0x80:
                return b"".join(parts).decode()


class Browser:
    """One headless Chromium and its first page, over the DevTools protocol."""

    def __init__(self, width, height):
        self.profile = tempfile.mkdtemp(prefix="web_check.")
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            raise OSError("chromium is not installed (scripts/setup installs it)")
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             "--disable-default-apps", "--disable-extensions",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             "--user-data-dir=" + self.profile,
             "--window-size=%d,%d" % (width, height), "about:blank"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.profile, "stderr"), "w"))
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        for _ in range(300):
            if os.path.exists(port_file) and open(port_file).read().count("\n") >= 1:
                break
            if self.proc.poll() is not None:
                raise OSError("chromium exited: " + open(os.path.join(self.profile, "stderr")).read()[-2000:])
            time.sleep(0.1)
        else:
            raise OSError("chromium did not open its DevTools port")
        port = int(open(port_file).read().split()[0])
        page = None
        for _ in range(100):
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                page = pages[0]
                break
            time.sleep(0.1)
        if page is None:
            raise OSError("chromium has no page")
        self.ws = WebSocket(page["webSocketDebuggerUrl"])
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise OSError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise OSError("evaluate %r: %s" % (expr[:80], d.get("exception", {}).get("description") or d.get("text")))
        return r["result"].get("value")

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("out_dir")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--wait", default="window.profefsTimes && window.profefsTimes.done")
    ap.add_argument("--eval", default="null")
    ap.add_argument("--shot", default="page.png")
    ap.add_argument("--max-height", type=int, default=6000,
                    help="cut the screenshot of a longer page at this height")
    a = ap.parse_args()

    b = None
    try:
        b = Browser(a.width, a.height)
        b.call("Page.enable")
        b.call("Network.enable")
        b.call("Runtime.enable")
        b.call("Emulation.setDeviceMetricsOverride", width=a.width, height=a.height,
               deviceScaleFactor=1, mobile=False)
        t0 = time.monotonic()
        b.call("Page.navigate", url=a.url)
        while not b.eval("!!(%s)" % a.wait):
            if time.monotonic() - t0 > a.timeout:
                raise OSError("timeout: %s still false after %gs" % (a.wait, a.timeout))
            time.sleep(0.02)
        wait_ms = (time.monotonic() - t0) * 1000
        value = b.eval("JSON.stringify(%s)" % a.eval)
        height = b.eval("Math.ceil(document.documentElement.scrollHeight)")
        b.call("Emulation.setDeviceMetricsOverride", width=a.width,
               height=max(a.height, min(int(height), a.max_height)), deviceScaleFactor=1, mobile=False)
        png = b.call("Page.captureScreenshot", format="png")["data"]
        os.makedirs(a.out_dir, exist_ok=True)
        with open(os.path.join(a.out_dir, a.shot), "wb") as f:
            f.write(base64.b64decode(png))
        requests, errors = [], []
        for ev in b.events:
            m, p = ev["method"], ev.get("params", {})
            if m == "Network.requestWillBeSent":
                requests.append(p["request"]["url"])
            elif m == "Runtime.exceptionThrown":
                errors.append(p["exceptionDetails"].get("exception", {}).get("description")
                              or p["exceptionDetails"].get("text"))
            elif m == "Runtime.consoleAPICalled" and p.get("type") == "error":
                errors.append(" ".join(str(x.get("value", x.get("description"))) for x in p["args"]))
        json.dump({"value": json.loads(value) if value else None, "requests": requests,
                   "errors": errors, "wait_ms": round(wait_ms, 1)}, sys.stdout)
        print()
    except OSError as e:
        print("web_check: %s" % e, file=sys.stderr)
        sys.exit(1)
    finally:
        if b is not None:
            b.close()


if __name__ == "__main__":
    main()
