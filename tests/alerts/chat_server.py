"""A real HTTP server on 127.0.0.1 (port 0) standing in for Telegram and Slack in tests."""
from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that gave up on a held request (its timeout) is expected here, not news."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class ChatServer:
    """Records every POST (path, JSON body); replies with scripted statuses, then 200."""

    statuses: deque = field(default_factory=deque)   # (status, body, headers) replies to use first
    hold: threading.Event | None = None               # when set up, requests wait on it (slow peer)
    requests: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> "ChatServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner.lock:
                    owner.requests.append((self.path, body))
                    status, text, headers = owner.statuses.popleft() if owner.statuses else (200, '{"ok":true}', {})
                if owner.hold is not None:
                    owner.hold.wait(10)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def bodies(self) -> list:
        with self.lock:
            return [body for _, body in self.requests]

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list:
        """Poll until `count` requests arrived; return the bodies, or fail naming what did arrive."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            bodies = self.bodies()
            if len(bodies) >= count:
                return bodies
            time.sleep(0.01)
        raise AssertionError(f"chat server {self.url}: {len(self.bodies())} of {count} requests "
                             f"after {timeout_s} s: {self.bodies()}")

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


def refused_url() -> str:
    """A loopback URL nothing listens on (bind a port, then free it)."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
