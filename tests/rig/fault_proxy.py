#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for tests: it stands between recallfs and the
S3 server (or a peer) on loopback and fails requests on purpose.

    fault_proxy.py --upstream 127.0.0.1:PORT --port-file F --mode-file M --log L

The mode is read from the mode file before every request, so a test changes
it while the proxy runs:

  pass        forward everything
  flaky       the first try of every distinct request (method, path, query,
              range) fails, in turn with a 503, a connection reset in the
              middle of the response, or a stall (no answer for --stall
              seconds, then a reset); the retry passes. Concurrency cannot
              make one request fail twice.
  no-uploads  PUT and POST get 503; reads pass
  stall-parts-from=N  PUTs of multipart parts numbered N or more stall
  down        every request gets 503
  stall-reads GETs and HEADs stall (no answer for --stall seconds, then a
              reset): a holder that accepts connections and never answers
  hold-reads  GETs are answered with a trickle of their first bytes (no
              stall to a client) until the mode changes; then they pass

Every request is logged as "METHOD PATH?QUERY [RANGE] -> what happened" to
the log, one line each (the range only when there is one), so tests can
count what reached the server. A request that waits is logged when it
arrives. Requests are forwarded with their own Host header, which keeps
SigV4 signatures valid.
"""
import argparse
import http.client
import http.server
import itertools
import os
import socket
import struct
import threading
import time
import urllib.parse

HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection"}
FLAKY = ["503", "reset", "stall"]


class Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--mode-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--stall", type=float, default=6.0)
    args = ap.parse_args()
    up_host, up_port = args.upstream.rsplit(":", 1)
    counter = itertools.count()
    seen = set()
    log_lock = threading.Lock()

    def mode():
        try:
            with open(args.mode_file) as f:
                return f.read().strip() or "pass"
        except OSError:
            return "pass"

    def log(line):
        with log_lock, open(args.log, "a") as f:
            f.write(line + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reset(self):
            # An abortive close: the client sees ECONNRESET.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def fail503(self):
            body = b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            m = mode()
            upload = self.command in ("PUT", "POST")
            what = "pass"
            if m == "down" or (m == "no-uploads" and upload):
                what = "503"
            elif m.startswith("stall-parts-from=") and self.command == "PUT":
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                part = int(q.get("partNumber", ["0"])[0])
                if part >= int(m.split("=", 1)[1]):
                    what = "stall"
            elif m == "stall-reads" and self.command in ("GET", "HEAD"):
                what = "stall"
            elif m == "hold-reads" and self.command == "GET":
                what = "hold"
            elif m == "flaky":
                key = (self.command, self.path, self.headers.get("Range", ""))
                with log_lock:
                    first = key not in seen
                    seen.add(key)
                if first:
                    what = FLAKY[next(counter) % len(FLAKY)]
            rng = self.headers.get("Range")
            log(f"{self.command} {self.path}{' ' + rng if rng else ''} -> {what}")
            if what == "503":
                return self.fail503()
            if what == "stall":
                time.sleep(args.stall)
                return self.reset()
            conn = http.client.HTTPConnection(up_host, int(up_port), timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            length = resp.getheader("Content-Length")
            self.send_header("Content-Length", length if self.command == "HEAD" and length
                             else str(len(data)))
            self.end_headers()
            if self.command == "HEAD":
                return
            if what == "reset" and len(data) > 1:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                return self.reset()
            sent = 0
            # Held: a trickle (2.5 KiB/s, which no client takes for a stall)
            # and never the last byte, until the mode changes.
            while what == "hold" and mode() == "hold-reads" and sent + 512 < len(data):
                self.wfile.write(data[sent:sent + 512])
                self.wfile.flush()
                sent += 512
                time.sleep(0.2)
            self.wfile.write(data[sent:])

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any

    server = Proxy(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
