#!/usr/bin/env python3
"""Benchmark helpers, standard library only.

receiver.py hook PORT LOG   webhook receiver: answers 200 to every POST and
                            appends "<unix time> <path> <summary>" to LOG,
                            where summary is vedette's "event rule host" or
                            Alertmanager's "status alertname".
receiver.py target PORT     a scrape target / TCP endpoint: answers every
                            GET with a one-line Prometheus exposition.
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def hook(port, log):
    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            at = time.time()
            n = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(n) or b"{}")
            except ValueError:
                body = {}
            if "alerts" in body:
                names = ",".join(a["labels"].get("alertname", "") for a in body["alerts"])
                summary = f"{body.get('status')} {names}"
            else:
                summary = f"{body.get('event')} {body.get('rule')} {body.get('host')}"
            with open(log, "a") as f:
                f.write(f"{at:.3f} {self.path} {summary}\n")
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()


def target(port):
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"bench_target_up 1\n"
            self.send_response(200)
            self.send_header("content-type", "text/plain; version=0.0.4")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "hook":
        hook(int(sys.argv[2]), sys.argv[3])
    else:
        target(int(sys.argv[2]))
