"""One self-contained HTML report of a run: notes banner, KPI table, and inline SVG charts."""
from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from domain.orders import RoundTrip
from reporting import charts
from reporting.svg import esc
from reporting.series import to_arrays

# (label, KPI key as domain/kpi.py names it, display format); a missing one is derived from the round trips
_HEADLINES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Round trips", ("round_trips",), "int"),
    ("Win rate", ("win_rate_pct",), "pct100"),
    ("PnL (KRW)", ("pnl_krw",), "krw"),
    ("PnL (USD)", ("pnl_usd",), "usd"),
    ("ROI", ("roi_pct",), "pct100"),
    ("Max drawdown", ("max_drawdown_pct",), "pct100"),
    ("Fees (KRW)", ("fees_paid_krw",), "krw"),
    ("Slippage (bps)", ("slippage_bps_avg",), "bps"),
    ("Slippage (KRW)", ("slippage_krw",), "krw"),
)
_TOO_GOOD_MIN_TRIPS = 5  # below this an all-win run can be luck; above it the model is suspect

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1d2430;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px} .sub{color:#5a6472;margin:0 0 16px}
.notes{border:3px solid #b42318;background:#fff1c2;color:#5c1a10;padding:12px 16px;margin:0 0 20px;
  font-size:17px;font-weight:700;border-radius:6px}
.notes p{margin:4px 0} .notes .warn{color:#b42318}
table{border-collapse:collapse;font-size:14px;background:#fff} td,th{border:1px solid #d9dee5;padding:4px 10px;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums} .headline td{font-size:16px}
.derived{color:#5a6472;font-size:12px} details{margin:12px 0}
svg.chart{display:block;background:#fff;border:1px solid #d9dee5;margin:8px 0;max-width:100%;height:auto}
.charttitle{font-size:14px;font-weight:700;fill:#1d2430} .axistitle{font-size:12px;fill:#5a6472}
.ticklabel,.legendlabel,.barlabel{font-size:11px;fill:#333} .nodata{font-size:14px;fill:#8a94a3}
.axis{stroke:#5a6472;stroke-width:1} .tick{stroke:#5a6472} .grid{stroke:#e6e9ee;stroke-width:1}
.zero{stroke:#8a94a3;stroke-dasharray:4 3}
.premium{fill:none;stroke:#5a6472;stroke-width:1} .equity{fill:none;stroke:#1f5fbf;stroke-width:1.5}
.drawdown{fill:#f3b3ad;stroke:#b42318;stroke-width:1}
.mk.entry,.key.entry{stroke:#1d2430;stroke-width:1} .mk.exit,.key.exit{fill:#fff;stroke-width:2.2}
.mk.entry.rich,.key.rich{fill:#d9480f} .mk.exit.rich{stroke:#d9480f}
.mk.entry.cheap,.key.cheap{fill:#1971c2} .mk.exit.cheap{stroke:#1971c2}
.key.entry{fill:#8a94a3} .key.exit{stroke:#5a6472}
.bar.gain{fill:#2f9e44} .bar.loss{fill:#e03131}
"""


def _fmt(value: object, kind: str) -> str:
    """A KPI value in the unit its headline promises (fractions shown as percent)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return esc(value)
    return {
        "int": f"{value:,.0f}", "pct100": f"{value:,.2f}%", "krw": f"{value:,.0f} KRW",
        "usd": f"{value:,.2f} USD", "bps": f"{value:,.2f} bps",
    }[kind]


def _derived(round_trips: Sequence[RoundTrip]) -> dict[str, float]:
    """Headline numbers recomputed from the round trips, for KPIs that lack them and to cross-check."""
    n = len(round_trips)
    return {
        "round_trips": n,
        "win_rate_pct": sum(rt.win for rt in round_trips) / n * 100 if n else float("nan"),
        "pnl_krw": sum(rt.pnl_krw for rt in round_trips),
        "pnl_usd": sum(rt.pnl_usd for rt in round_trips),
        "fees_paid_krw": sum(rt.fees_krw for rt in round_trips),
        "slippage_krw": sum(rt.slippage_krw for rt in round_trips),
    }


def _warnings(kpi: dict, round_trips: Sequence[RoundTrip]) -> list[str]:
    """Checks a reader must see: KPI and trades disagree, or results that mean the model is wrong."""
    out = []
    if isinstance(kpi.get("round_trips"), int) and kpi["round_trips"] != len(round_trips):
        out.append(f"KPI says {kpi['round_trips']} round trips but the report was given {len(round_trips)}.")
    if len(round_trips) >= _TOO_GOOD_MIN_TRIPS and all(rt.win for rt in round_trips):
        out.append(f"All {len(round_trips)} round trips won: check fees, latency and book depth in the fill model.")
    return out


def _kpi_tables(kpi: dict, round_trips: Sequence[RoundTrip]) -> str:
    derived = _derived(round_trips)
    rows = []
    for label, keys, kind in _HEADLINES:
        key = next((k for k in keys if k in kpi), None)
        if key is not None:
            cell = _fmt(kpi[key], kind)
        elif keys[0] in derived and not (isinstance(derived[keys[0]], float) and math.isnan(derived[keys[0]])):
            cell = f'{_fmt(derived[keys[0]], kind)} <span class="derived">(from round trips)</span>'
        else:
            cell = '<span class="derived">not in KPI</span>'
        rows.append(f"<tr><th>{esc(label)}</th><td class=\"num\">{cell}</td></tr>")
    every = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(_compact(v))}</td></tr>" for k, v in kpi.items()
    )
    return (
        f'<table class="headline">{"".join(rows)}</table>'
        f"<details><summary>All KPI values ({len(kpi)})</summary><table>{every}</table></details>"
    )


def _compact(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= 400 else text[:399] + "…"


def _by(round_trips: Sequence[RoundTrip], field: str) -> list[tuple[str, float, int]]:
    """PnL (KRW) and trip count grouped by a round-trip field, largest gain first."""
    pnl: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for rt in round_trips:
        pnl[getattr(rt, field)] += rt.pnl_krw
        count[getattr(rt, field)] += 1
    return sorted(((k, v, count[k]) for k, v in pnl.items()), key=lambda kv: -kv[1])


def _check_inputs(kpi: object, round_trips: Sequence[object], premium: object, notes: Sequence[object]) -> None:
    if not isinstance(kpi, dict):
        raise ValueError(f"kpi: expected a dict, got {type(kpi).__name__}")
    for i, rt in enumerate(round_trips):
        if not isinstance(rt, RoundTrip):
            raise ValueError(f"round_trips[{i}]: expected a domain.orders.RoundTrip, got {type(rt).__name__}")
    if not isinstance(premium, dict):
        raise ValueError(f"premium: expected a dict of symbol -> series, got {type(premium).__name__}")
    for i, note in enumerate(notes):
        if not isinstance(note, str):
            raise ValueError(f"notes[{i}]: expected a string, got {type(note).__name__}")


def build_report(
    kpi: dict,
    round_trips: list[RoundTrip],
    equity: list[tuple[int, float]],
    premium: dict[str, list[tuple[int, float]]],
    markers: list[dict],
    notes: list[str],
    title: str = "arbitrage-lite report",
) -> str:
    """The whole report as one HTML string with no external resources (safe to mail or archive)."""
    _check_inputs(kpi, round_trips, premium, notes)
    plot_markers = [charts.PlotMarker.from_dict(i, m) for i, m in enumerate(markers)]
    eq_ts, eq_values = to_arrays("equity", equity)
    symbols = list(premium) + sorted({m.symbol for m in plot_markers} - set(premium))
    premium_svgs = []
    for symbol in symbols:
        ts, values = to_arrays(f"premium[{symbol}]", premium.get(symbol, []))
        premium_svgs.append(charts.premium_chart(symbol, ts, values, [m for m in plot_markers if m.symbol == symbol]))
    banner = [f"<p>{esc(n)}</p>" for n in notes]
    banner += [f'<p class="warn">{esc(w)}</p>' for w in _warnings(kpi, round_trips)]
    sub = " · ".join(esc(f"{k}: {kpi[k]}") for k in ("run_id", "mode", "profile") if k in kpi)
    if len(eq_ts):
        sub += esc(f" · {charts.utc(eq_ts[0])} to {charts.utc(eq_ts[-1])}")
    parts = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>',
        f"<style>{_CSS}</style></head><body>",
        f'<div class="notes" role="alert">{"".join(banner)}</div>' if banner else "",
        f'<h1>{esc(title)}</h1><p class="sub">{sub}</p>',
        "<h2>Headline</h2>", _kpi_tables(kpi, round_trips),
        "<h2>Equity and drawdown</h2>", charts.equity_chart(eq_ts, eq_values), charts.drawdown_chart(eq_ts, eq_values),
        "<h2>PnL breakdown</h2>",
        charts.bar_chart("PnL by exit reason (KRW)", _by(round_trips, "exit_reason"), "KRW"),
        charts.bar_chart("PnL by symbol (KRW)", _by(round_trips, "symbol"), "KRW"),
        f"<h2>Premium by symbol ({len(symbols)})</h2>",
        "<p class=\"sub\">▲ entry, ○ exit; orange: Upbit rich, blue: Upbit cheap. Hover a marker for its reason.</p>",
        *premium_svgs,
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def write_report(path: str | Path, *args, **kwargs) -> Path:
    """Build the report (same arguments as build_report) and write it as UTF-8; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_report(*args, **kwargs), encoding="utf-8")
    return out
