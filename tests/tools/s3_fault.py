#!/usr/bin/env python3
"""s3_fault.py — a fault-injecting HTTP proxy in front of a real S3 server
(tests/tools/rgw.sh), for the tests of how profefs copes with S3's errors.

    s3_fault.py UPSTREAM RULES PORTFILE

Listens on 127.0.0.1 (a free port, written to PORTFILE once listening) and
forwards every request to UPSTREAM (http://127.0.0.1:PORT) unchanged, Host
header included, so SigV4 signatures still verify.  RULES is a file read at
every request; each line

    METHOD SUBSTRING STATUS CODE COUNT

answers a request whose method is METHOD and whose path (with the query)
contains SUBSTRING with STATUS and an S3 error body <Code>CODE</Code>
instead of forwarding it, for the first COUNT such requests of each
distinct path ('*': always).  Lines starting with '#' are comments; a
missing RULES file forwards everything.  Stop it by its pid.
"""
import http.client
import http.server
import os
import sys
import threading
import urllib.parse

UPSTREAM, RULES, PORTFILE = sys.argv[1:4]
up = urllib.parse.urlsplit(UPSTREAM)
seen = {}
lock = threading.Lock()


def rules():
    try:
        with open(RULES) as f:
            for line in f:
                p = line.split()
                if len(p) == 5 and not p[0].startswith("#"):
                    yield p
    except FileNotFoundError:
        return


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        for method, sub, status, code, count in rules():
            if method != self.command or sub not in urllib.parse.unquote(self.path):
                continue
            with lock:
                k = (method, sub, self.path)
                seen[k] = seen.get(k, 0) + 1
                hit = count == "*" or seen[k] <= int(count)
            if hit:
                out = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code>'
                       '<Message>injected by s3_fault.py</Message></Error>' % code).encode()
                self.send_response(int(status))
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)
                return
        c = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        c.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            c.putheader(k, v)
        c.endheaders(body if body else None)
        r = c.getresponse()
        data = r.read()
        self.send_response(r.status)
        length = str(len(data))
        for k, v in r.getheaders():
            if k.lower() == "content-length" and self.command == "HEAD":
                length = v  # a HEAD tells the object's size
            elif k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        c.close()

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = handle_any


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
srv.daemon_threads = True
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
