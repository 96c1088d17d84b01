"""The exporter serves a registry over real HTTP on 127.0.0.1 with the values we set."""
from __future__ import annotations

import socket

import pytest

from metrics.registry import build_metrics
from metrics.server import scrape, serve


def test_scrape_shows_names_and_values():
    metrics = build_metrics()
    metrics.set_kpis(pnl_krw=125_400.5, win_rate=0.625, round_trips_per_hour=3.5, open_positions=2)
    metrics.round_trips.inc(8)
    metrics.book_update("upbit", 40)
    metrics.snapshot_written(ok=True)
    metrics.snapshot_written(ok=False)
    metrics.alert_outcome("telegram", "P0", "sent")
    metrics.observe_hop("coordinator_to_order", 0.002)
    server = serve(metrics.registry, port=0)
    try:
        assert server.port > 0 and server.host == "127.0.0.1"
        got = scrape(server.url)
    finally:
        server.close()
    assert got[("arb_pnl_krw", ())] == 125_400.5
    assert got[("arb_win_rate", ())] == 0.625
    assert got[("arb_round_trips_total", ())] == 8
    assert got[("arb_round_trips_per_hour", ())] == 3.5
    assert got[("arb_open_positions", ())] == 2
    assert got[("arb_book_updates_total", (("venue", "upbit"),))] == 40
    assert got[("arb_book_updates_total", (("venue", "binance"),))] == 0
    assert got[("arb_snapshot_writes_total", (("result", "failed"),))] == 1
    assert got[("arb_alerts_sent_total", (("channel", "telegram"), ("severity", "P0")))] == 1
    assert got[("arb_hop_latency_seconds_bucket",
                (("hop", "coordinator_to_order"), ("le", "0.0025")))] == 1


def test_two_servers_pick_different_free_ports_and_close_releases_them():
    a, b = serve(build_metrics().registry), serve(build_metrics().registry)
    try:
        assert a.port != b.port
    finally:
        a.close()
        b.close()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", a.port)) != 0


def test_busy_port_and_bad_port_fail_clearly():
    holder = serve(build_metrics().registry)
    try:
        with pytest.raises(OSError, match=rf"metrics: cannot listen on 127.0.0.1:{holder.port}"):
            serve(build_metrics().registry, port=holder.port)
    finally:
        holder.close()
    with pytest.raises(ValueError, match=r"metrics.port 70000: expected 0..65535"):
        serve(build_metrics().registry, port=70000)
