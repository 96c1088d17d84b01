"""Serve one CollectorRegistry over HTTP for Prometheus to scrape."""
from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.parser import text_string_to_metric_families

_POLL_S = 0.05   # how fast close() is noticed by the serving thread


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass


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
        server = make_server(host, port, make_wsgi_app(registry), ThreadingWSGIServer,
                             handler_class=_QuietHandler)
    except OSError as exc:
        raise OSError(f"metrics: cannot listen on {host}:{port}: {exc.strerror}") from exc
    thread = Thread(target=server.serve_forever, args=(_POLL_S,), name=f"metrics-{port}",
                    daemon=True)
    thread.start()
    return MetricsServer(host, server.server_port, server, thread)


def scrape(url: str, timeout_s: float = 2.0) -> dict[tuple[str, tuple], float]:
    """Read an exporter over HTTP (no proxy) into {(series, sorted label pairs): value}: tests, bench, status."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    text = opener.open(url, timeout=timeout_s).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
