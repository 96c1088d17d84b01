"""The BTC backtest on the real candles: every KPI field, plausible results, determinism, no lookahead."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from backtest.outputs import WALL_CLOCK_FIELDS
from backtest.runner import run_backtest
from backtest.streams import Stream, from_profile
from config.loader import load_profile

KPI_FIELDS = {  # SYSTEM.md's list, with units in the names
    "run_id", "mode", "profile", "started_at", "ended_at", "duration_s", "exit_code", "universe",
    "config_digest", "round_trips", "entries", "exits", "wins", "losses", "win_rate_pct", "pnl_krw",
    "pnl_usd", "initial_equity_krw", "final_equity_krw", "roi_pct", "exit_reasons", "fees_paid_krw",
    "slippage_bps_avg", "fill_ratio_pct", "partial_fills", "failed_fills", "max_drawdown_krw",
    "max_drawdown_pct", "tick_to_decision_ms_avg", "tick_to_decision_ms_p99", "cpu_s", "max_rss_mb",
    "guard_triggers", "alerts_sent", "snapshot_success_rate_pct",
}


@pytest.fixture(scope="module")
def profile():
    return load_profile("backtest-btc")


@pytest.fixture(scope="module")
def result(profile, tmp_path_factory):
    return run_backtest(profile, out_root=tmp_path_factory.mktemp("bt"), progress=False)


def test_kpi_file_has_every_field(result):
    kpi = json.loads((result.out_dir / "kpi.json").read_text())
    assert KPI_FIELDS <= set(kpi), KPI_FIELDS - set(kpi)
    assert kpi["mode"] == "backtest" and kpi["exit_code"] == 0 and kpi["universe"] == ["BTC"]
    assert any("depth model" in n for n in kpi["notes"])  # candle data is said to be modelled


def test_results_are_plausible_for_the_data(result):
    k = result.kpi
    assert k["round_trips"] > 0
    assert 0 < k["win_rate_pct"] < 100                     # not 100% wins
    assert k["fees_paid_krw"] > 0
    # PnL is net of fees: the round trips' PnL adds up to the KPI, and fees were taken out of it
    rts = result.engine.portfolio.round_trips
    assert sum(rt.pnl_krw for rt in rts) == pytest.approx(k["pnl_krw"], abs=0.01)
    for rt in rts:  # a round trip's fees are the four legs' taker fees (~30 bps of its notional)
        notional = rt.qty * 1.5e8
        assert 0.0025 * notional < rt.fees_krw < 0.0035 * notional * 1.2
    # trades only where the book could fill them: every filled qty within the book shown
    for fill in result.engine.trace.fills:
        assert fill.qty <= fill.requested_qty + 1e-12


def test_ledger_reconciles_with_round_trips(result):
    led = result.engine.ledger
    from decimal import Decimal
    krw = sum((Decimal(rt.krw_delta) for rt in result.engine.portfolio.round_trips), Decimal(0))
    usdt = sum((Decimal(rt.usdt_delta) for rt in result.engine.portfolio.round_trips), Decimal(0))
    assert led.balance("upbit", "KRW") - led.initial[("upbit", "KRW")] == krw
    assert led.balance("binance", "USDT") - led.initial[("binance", "USDT")] == usdt


def test_outputs_trade_log_and_report(result):
    lines = (result.out_dir / "trades.jsonl").read_text().splitlines()
    kinds = {json.loads(l)["type"] for l in lines}
    assert {"order", "fill", "round_trip"} <= kinds
    rts = [json.loads(l) for l in lines if json.loads(l)["type"] == "round_trip"]
    assert all({"entry_premium", "exit_premium", "exit_reason"} <= set(rt) for rt in rts)
    html = (result.out_dir / "report.html").read_text()
    assert html.count("<svg") >= 4 and "depth model" in html


def _stable(kpi: dict) -> str:
    return json.dumps({k: v for k, v in kpi.items() if k not in WALL_CLOCK_FIELDS}, sort_keys=True)


def test_same_input_same_kpi_bytes(profile, result, tmp_path):
    again = run_backtest(profile, out_root=tmp_path, progress=False, report=False)
    assert _stable(again.kpi) == _stable(result.kpi)
    assert (again.out_dir / "trades.jsonl").read_bytes() == (result.out_dir / "trades.jsonl").read_bytes()


def test_no_lookahead_future_data_does_not_change_past_decisions(profile, result, tmp_path):
    markers = result.engine.trace.markers
    cut = markers[len(markers) // 2]["ts_ms"]  # perturb everything after a mid-run decision
    base = from_profile(profile)

    def perturbed():
        for book in base.books:
            if book.ts_ms > cut:
                k = 1.03 if book.venue == "upbit" else 0.97  # a large future premium move
                book = replace(book, bids=tuple((p * k, q) for p, q in book.bids),
                               asks=tuple((p * k, q) for p, q in book.asks))
            yield book

    other = run_backtest(profile, out_root=tmp_path, progress=False, report=False,
                         stream=Stream(perturbed(), base.notes, base.synthetic, base.source))
    before = [m for m in markers if m["ts_ms"] <= cut]
    assert before and [m for m in other.engine.trace.markers if m["ts_ms"] <= cut] == before
    assert other.engine.trace.markers != markers  # the perturbation did change the future
