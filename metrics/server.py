"""Serve one CollectorRegistry over HTTP for Prometheus to scrape."""
from __future__ import annotations

from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server


@dataclass(frozen=True, slots=True)
class MetricsServer:
    """A running exporter: where it listens and how to stop it."""

    host: str
    port: int
    _server: WSGIServer
    _thread: Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2.0)


def serve(registry: CollectorRegistry, port: int = 0, host: str = "127.0.0.1") -> MetricsServer:
    """Start serving `registry` on host:port (0 = a free port, see `.port`) in a daemon thread."""
    if not 0 <= port <= 65535:
        raise ValueError(f"metrics.port {port}: expected 0..65535")
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise OSError(f"metrics: cannot listen on {host}:{port}: {exc.strerror}") from exc
    return MetricsServer(host, server.server_port, server, thread)
