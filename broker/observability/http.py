"""One small HTTP endpoint per worker: /metrics (Prometheus), /healthz (alive), /readyz (AMQP and store reachable).

Served from a daemon thread with the standard library; readiness is a callable so the checks stay in the
runtime that owns the connections.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

Readiness = Callable[[], dict[str, bool]]


def serve(port: int, ready: Readiness, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                self._reply(200, b'{"status":"alive"}', "application/json")
            elif self.path == "/readyz":
                checks = ready()
                ok = all(checks.values())
                body = json.dumps({"status": "ready" if ok else "not ready", "checks": checks}).encode()
                self._reply(200 if ok else 503, body, "application/json")
            else:
                self._reply(404, b"not found", "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # scrapes are not news
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="hmc-http", daemon=True).start()
    return server
