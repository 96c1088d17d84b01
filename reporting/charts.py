"""The report's charts: premium with entry/exit markers, equity, drawdown, and horizontal PnL bars."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from domain.orders import Direction
from reporting import svg
from reporting.series import gap_threshold, min_max_downsample, split_at_gaps

KINDS = ("entry", "exit")
_SHAPE = {"entry": "triangle-up", "exit": "circle"}


@dataclass(frozen=True, slots=True)
class PlotMarker:
    """One entry or exit drawn on a symbol's premium chart."""

    symbol: str
    ts_ms: int
    premium: float  # fraction
    kind: str       # "entry" or "exit"
    direction: Direction
    reason: str

    @classmethod
    def from_dict(cls, index: int, raw: dict) -> "PlotMarker":
        """Check one marker dict; an error names the marker's index and the bad key."""
        where = f"markers[{index}]"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a dict, got {type(raw).__name__}")
        missing = [k for k in ("symbol", "ts_ms", "premium", "kind", "direction") if k not in raw]
        if missing:
            raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
        if raw["kind"] not in KINDS:
            raise ValueError(f"{where}: key 'kind' is {raw['kind']!r}, expected 'entry' or 'exit'")
        try:
            direction = Direction(raw["direction"])
        except ValueError:
            raise ValueError(
                f"{where}: key 'direction' is {raw['direction']!r}, expected one of {[d.value for d in Direction]}"
            ) from None
        try:
            ts_ms, premium = int(raw["ts_ms"]), float(raw["premium"])
        except (TypeError, ValueError):
            raise ValueError(f"{where}: keys 'ts_ms' and 'premium' must be numbers") from None
        if not np.isfinite(premium):
            raise ValueError(f"{where}: key 'premium' is not finite: {premium!r}")
        return cls(str(raw["symbol"]), ts_ms, premium, raw["kind"], direction, str(raw.get("reason", "")))


def utc(ts_ms: float) -> str:
    """A timestamp as a readable UTC time for tooltips and tables."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _no_data(frame: svg.Frame, title: str, why: str) -> str:
    return svg.chart(frame, title, svg.text(frame.width / 2, frame.height / 2, why, "nodata", "middle"))


def _scales(frame: svg.Frame, ts: np.ndarray, values: np.ndarray) -> tuple[svg.Scale, svg.Scale]:
    return (
        svg.Scale(float(ts.min()), float(ts.max()), frame.x0, frame.x1),
        svg.Scale(*svg.padded(float(values.min()), float(values.max())), frame.y0, frame.y1),
    )


def _axes(frame: svg.Frame, xs: svg.Scale, ys: svg.Scale, y_title: str) -> str:
    xticks = [(xs(t), label) for t, label in svg.time_ticks(xs.d0, xs.d1)]
    lo, hi = min(ys.d0, ys.d1), max(ys.d0, ys.d1)
    values = svg.nice_ticks(lo, hi)
    yticks = list(zip(ys(np.array(values)).tolist(), svg.tick_labels(values)))
    zero = ""
    if lo < 0 < hi:
        zero = f'<line class="zero" x1="{frame.x0}" y1="{ys(0):.1f}" x2="{frame.x1}" y2="{ys(0):.1f}"/>'
    return svg.y_axis(frame, yticks, y_title) + zero + svg.x_axis(frame, xticks, "time (UTC)")


def _lines(frame: svg.Frame, xs: svg.Scale, ys: svg.Scale, ts: np.ndarray, values: np.ndarray, cls: str,
           fill_to: float | None = None, break_gaps: bool = True) -> str:
    """The series thinned to the plot's pixel width and, if asked, broken where samples are missing."""
    buckets = frame.plot_width
    thin_ts, thin_values = min_max_downsample(ts, values, buckets)
    parts = []
    if not break_gaps:  # a level held between samples (equity): draw steps, not slopes across gaps
        thin_ts, thin_values = np.repeat(thin_ts, 2)[1:], np.repeat(thin_values, 2)[:-1]
    runs = split_at_gaps(thin_ts, gap_threshold(ts, buckets)) if break_gaps else [slice(0, len(thin_ts))]
    for run in runs:
        px, py = xs(thin_ts[run]), ys(thin_values[run])
        parts.append(svg.area(px, py, ys(fill_to), cls) if fill_to is not None else svg.path(px, py, cls))
    return "".join(parts)


def premium_chart(symbol: str, ts: np.ndarray, premium: np.ndarray, markers: list[PlotMarker]) -> str:
    """Executable premium of one symbol in bps, with each entry and exit marked where it happened."""
    frame = svg.Frame()
    title = f"{symbol}: executable premium (bps)"
    mark_ts = np.array([m.ts_ms for m in markers], dtype=np.float64)
    mark_bps = np.array([m.premium * 1e4 for m in markers], dtype=np.float64)
    all_ts, all_bps = np.r_[ts, mark_ts], np.r_[premium * 1e4, mark_bps]
    if len(all_ts) == 0:
        return _no_data(frame, title, "no premium data and no trades for this symbol")
    xs, ys = _scales(frame, all_ts, all_bps)
    body = [_axes(frame, xs, ys, "premium (bps)"), _lines(frame, xs, ys, ts, premium * 1e4, "premium")]
    for m, t, bps in zip(markers, mark_ts, mark_bps):
        tip = f"{m.kind} {m.direction.value} {utc(t)}: {bps:.1f} bps, {m.reason}"
        body.append(svg.marker(_SHAPE[m.kind], xs(t), ys(bps), f"mk {m.kind} {m.direction.name.lower()}", tip))
    body.append(svg.legend(frame, [
        ("line", "premium", "premium"),
        ("triangle-up", "key entry", "entry"),
        ("circle", "key exit", "exit"),
        ("square", "key rich", "Upbit rich"),
        ("square", "key cheap", "Upbit cheap"),
    ]))
    return svg.chart(frame, title, "".join(body))


def equity_chart(ts: np.ndarray, equity: np.ndarray) -> str:
    """Total equity in KRW over the run; drawn unbroken, since equity holds its value between samples."""
    frame, title = svg.Frame(), "Equity (KRW)"
    if len(ts) == 0:
        return _no_data(frame, title, "no equity series")
    xs, ys = _scales(frame, ts, equity)
    line = _lines(frame, xs, ys, ts, equity, "equity", break_gaps=False)
    return svg.chart(frame, title, _axes(frame, xs, ys, "equity (KRW)") + line)


def drawdown_pct(equity: np.ndarray) -> np.ndarray:
    """Percent below the running peak (0 at a new high, negative below it)."""
    if len(equity) and (equity <= 0).any():
        row = int(np.argmax(equity <= 0))
        raise ValueError(f"equity row {row} is {float(equity[row])!r} KRW: drawdown needs positive equity")
    return (equity / np.maximum.accumulate(equity) - 1.0) * 100.0 if len(equity) else equity


def drawdown_chart(ts: np.ndarray, equity: np.ndarray) -> str:
    """Drawdown from the running equity peak in percent, computed before thinning so troughs survive."""
    frame = svg.Frame(height=220)
    if len(ts) == 0:
        return _no_data(frame, "Drawdown (%)", "no equity series")
    dd = drawdown_pct(equity)
    title = f"Drawdown (%): max {dd.min():.3g}%"
    xs, ys = _scales(frame, ts, np.r_[dd, 0.0])
    fill = _lines(frame, xs, ys, ts, dd, "drawdown", 0.0, break_gaps=False)
    return svg.chart(frame, title, _axes(frame, xs, ys, "drawdown (%)") + fill)


def bar_chart(title: str, bars: list[tuple[str, float, int]], unit: str) -> str:
    """Horizontal bars of (label, value, count), gains and losses coloured apart, value at each bar."""
    row = 22
    label_chars = min(max((len(label) for label, _, _ in bars), default=8), 28) + 8
    frame = svg.Frame(height=40 + 52 + row * max(len(bars), 1), left=min(40 + 7 * label_chars, 280), right=110)
    if not bars:
        return _no_data(frame, title, "no round trips")
    values = np.array([v for _, v, _ in bars], dtype=np.float64)
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    xs = svg.Scale(*svg.padded(lo, hi, 0.02), frame.x0, frame.x1)
    ticks = svg.nice_ticks(xs.d0, xs.d1, 5)
    body = [svg.x_axis(frame, list(zip(xs(np.array(ticks)).tolist(), svg.tick_labels(ticks))), unit)]
    for i, (label, value, count) in enumerate(bars):
        y = frame.top + i * row
        short = label if len(label) <= 28 else label[:27] + "…"
        cls = "bar gain" if value >= 0 else "bar loss"
        tip = f"{label}: {value:,.0f} {unit} over {count} round trip(s)"
        body.append(svg.text(frame.x0 - 8, y + 15, f"{short} (n={count})", "ticklabel", "end"))
        body.append(svg.rect(xs(0), y + 3, xs(value) - xs(0), row - 6, cls, tip))
        end = max(xs(value), xs(0)) + 4
        body.append(svg.text(end, y + 15, f"{value:,.0f}", "barlabel"))
    body.append(f'<line class="axis" x1="{xs(0):.1f}" y1="{frame.y1}" x2="{xs(0):.1f}" y2="{frame.y0}"/>')
    return svg.chart(frame, title, "".join(body))
