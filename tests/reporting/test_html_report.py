"""The HTML report: one chart per view, every trade marked, notes impossible to miss, text escaped."""
from __future__ import annotations

import re
import time
from html import escape
import xml.etree.ElementTree as ET
from dataclasses import replace

import numpy as np
import pytest

from reporting.html_report import build_report, write_report


def _build(inp, **changes) -> str:
    args = {f: getattr(inp, f) for f in ("kpi", "round_trips", "equity", "premium", "markers", "notes")}
    args.update(changes)
    return build_report(**args)


def _svgs(html: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", html, re.S)


def test_one_svg_per_chart_each_well_formed(report_input):
    html = _build(report_input)
    svgs = _svgs(html)
    # equity, drawdown, PnL by reason, PnL by symbol, one premium chart per symbol
    assert len(svgs) == 4 + len(report_input.premium)
    titles = [ET.fromstring(s).find("{http://www.w3.org/2000/svg}title").text for s in svgs]
    assert titles[:2] == ["Equity (KRW)", titles[1]] and titles[1].startswith("Drawdown (%): max -")
    assert "PnL by exit reason (KRW)" in titles and "PnL by symbol (KRW)" in titles
    assert "BTC: executable premium (bps)" in titles
    # the recorded candles come in blocks days apart: premium breaks at gaps, equity (a level) does not
    assert svgs[0].count('class="equity"') == 1 and svgs[1].count('class="drawdown"') == 1
    assert svgs[-1].count('class="premium"') > 10


def test_every_entry_and_exit_has_one_marker(report_input):
    html = _build(report_input)
    entries = sum(m["kind"] == "entry" for m in report_input.markers)
    exits = sum(m["kind"] == "exit" for m in report_input.markers)
    assert entries >= len(report_input.round_trips) > 0
    assert html.count('class="mk entry') == entries
    assert html.count('class="mk exit') == exits
    assert html.count('class="key entry') == 1 and html.count('class="key exit') == 1  # the legend


def test_notes_banner_comes_first_and_lists_every_note(report_input):
    notes = ["SYNTHETIC DATA: not a market result", *report_input.notes]
    html = _build(report_input, notes=notes)
    banner = re.search(r'<div class="notes" role="alert">(.*?)</div>', html, re.S)
    assert banner is not None and banner.start() < html.index("<h1>") < html.index("<svg")
    assert [f"<p>{escape(n)}</p>" in banner.group(1) for n in notes] == [True, True]


def test_no_banner_without_notes_or_warnings(report_input):
    assert 'class="notes"' not in _build(report_input, notes=[])


def test_self_contained_no_scripts_or_network(report_input):
    html = _build(report_input)
    assert "<script" not in html and "<link" not in html and "src=" not in html and "@import" not in html
    assert set(re.findall(r"https?://[^\s\"']+", html)) == {"http://www.w3.org/2000/svg"}


def test_text_is_escaped_everywhere(report_input):
    evil = "X<script>alert('x')</script>&"
    markers = [dict(m, symbol=evil, reason="<b>why</b>") for m in report_input.markers]
    trips = [replace(rt, symbol=evil, exit_reason="<i>r</i>") for rt in report_input.round_trips]
    html = _build(
        report_input, premium={evil: report_input.premium["BTC"]}, markers=markers, round_trips=trips,
        notes=["<marquee>note</marquee>"], kpi={**report_input.kpi, "run_id": "</table>"},
    )
    for raw in ("<script", "<b>", "<i>", "<marquee>", "</table></table>"):
        assert raw not in html
    assert "X&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in html
    assert "&lt;marquee&gt;note&lt;/marquee&gt;" in html
    for svg in _svgs(html):
        ET.fromstring(svg)  # still well-formed XML


def test_kpi_headline_formats_and_derives(report_input):
    html = _build(report_input)
    assert f"{report_input.kpi['win_rate_pct']:,.2f}%" in html
    assert f"{report_input.kpi['pnl_krw']:,.0f} KRW" in html
    fees = sum(rt.fees_krw for rt in report_input.round_trips)
    assert f"{fees:,.0f} KRW <span class=\"derived\">(from round trips)</span>" in html
    assert "<th>Max drawdown</th><td class=\"num\"><span class=\"derived\">not in KPI</span>" in html
    assert "2025-06-05" in html  # UTC date ticks on the time axis


def test_warnings_for_kpi_mismatch_and_all_wins(report_input):
    html = _build(report_input, kpi={**report_input.kpi, "round_trips": 999})
    assert f"KPI says 999 round trips but the report was given {len(report_input.round_trips)}" in html
    winners = [replace(rt, pnl_krw=abs(rt.pnl_krw) + 1) for rt in report_input.round_trips]
    assert "round trips won: check fees" in _build(report_input, round_trips=winners)
    assert "round trips won" not in _build(report_input)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"markers": [{"symbol": "BTC", "ts_ms": 1, "premium": 0.01, "direction": "upbit_rich"}]}, r"markers\[0\]: missing key\(s\) kind"),
        ({"markers": [{"symbol": "BTC", "ts_ms": 1, "premium": 0.01, "kind": "open", "direction": "upbit_rich"}]}, r"markers\[0\]: key 'kind' is 'open'"),
        ({"markers": [{"symbol": "BTC", "ts_ms": 1, "premium": 0.01, "kind": "exit", "direction": "up"}]}, r"markers\[0\]: key 'direction' is 'up'"),
        ({"premium": {"ETH": [(1, 0.0), (2, float("nan"))]}}, r"series 'premium\[ETH\]': row 1 is not finite"),
        ({"premium": {"ETH": [(5, 0.0), (2, 0.1)]}}, r"series 'premium\[ETH\]': row 1 goes back in time"),
        ({"equity": [(1, 1e8), (2, 0.0)]}, r"equity row 1 is 0.0 KRW"),
        ({"round_trips": [{"pnl_krw": 1}]}, r"round_trips\[0\]: expected a domain.orders.RoundTrip, got dict"),
        ({"notes": [3]}, r"notes\[0\]: expected a string, got int"),
    ],
)
def test_bad_input_names_what_and_where(report_input, change, message):
    with pytest.raises(ValueError, match=message):
        _build(report_input, **change)


def test_empty_run_still_renders(tmp_path):
    path = write_report(tmp_path / "out" / "r.html", {}, [], [], {}, [], ["no trades"])
    html = path.read_text(encoding="utf-8")
    assert html.count("no round trips") == 2 and "no equity series" in html and "<p>no trades</p>" in html


def test_month_of_one_second_ticks_stays_small_and_fast(report_input, tmp_path):
    n = 2_600_000  # 30 days of 1-second premium
    rng = np.random.default_rng(7)
    ts0 = report_input.equity[0][0]
    values = np.cumsum(rng.normal(0, 2e-5, n)) * 0.05 + 0.02
    values[1_234_567] = 0.0925  # one spike of 925 bps must survive the thinning
    series = list(zip(range(ts0, ts0 + n * 1000, 1000), values.tolist()))
    started = time.perf_counter()
    path = write_report(tmp_path / "big.html", report_input.kpi, report_input.round_trips, report_input.equity,
                        {"BTC": series}, report_input.markers, report_input.notes)
    elapsed = time.perf_counter() - started
    size = path.stat().st_size
    assert size < 5_000_000, f"{size} bytes"
    assert elapsed < 5.0, f"{elapsed:.2f} s"
    premium_svg = _svgs(path.read_text(encoding="utf-8"))[-1]
    y_ticks = [float(v.replace(",", "")) for v in re.findall(r'text-anchor="end">(-?[\d,.]+)<', premium_svg)]
    assert 800 <= max(y_ticks) <= 1000  # the y axis reaches the spike; without it the walk stays near 200
