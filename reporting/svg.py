"""Inline SVG chart primitives (frame, scales, ticks, lines, markers, bars, axes, legend) as strings."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape

import numpy as np

_SECOND = 1000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_TIME_STEPS = (
    _SECOND, 5 * _SECOND, 15 * _SECOND, 30 * _SECOND, _MINUTE, 5 * _MINUTE, 15 * _MINUTE, 30 * _MINUTE,
    _HOUR, 3 * _HOUR, 6 * _HOUR, 12 * _HOUR, _DAY, 2 * _DAY, 7 * _DAY, 14 * _DAY, 30 * _DAY, 91 * _DAY,
    365 * _DAY,
)
MARKER_SHAPES = ("triangle-up", "triangle-down", "circle", "square", "diamond")


def esc(text: object) -> str:
    """Any value as HTML/SVG-safe text (quotes included, so it is safe in attributes too)."""
    return escape(str(text), quote=True)


@dataclass(frozen=True, slots=True)
class Frame:
    """A chart's pixel box and the margins around its plot area (room for ticks and titles)."""

    width: int = 960
    height: int = 280
    left: int = 100
    right: int = 24
    top: int = 40
    bottom: int = 52

    @property
    def x0(self) -> float:
        return self.left

    @property
    def x1(self) -> float:
        return self.width - self.right

    @property
    def y0(self) -> float:
        """Bottom of the plot area (SVG y grows downwards)."""
        return self.height - self.bottom

    @property
    def y1(self) -> float:
        return self.top

    @property
    def plot_width(self) -> int:
        return int(self.x1 - self.x0)


@dataclass(frozen=True, slots=True)
class Scale:
    """Linear map from a data interval onto a pixel interval; a flat domain maps to the middle."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, value: float | np.ndarray) -> float | np.ndarray:
        if self.d1 == self.d0:
            return (self.r0 + self.r1) / 2 + 0 * value
        return self.r0 + (value - self.d0) * (self.r1 - self.r0) / (self.d1 - self.d0)


def padded(lo: float, hi: float, share: float = 0.05) -> tuple[float, float]:
    """A data range widened a little so lines do not touch the frame; a flat range gets width."""
    if hi == lo:
        pad = abs(lo) * share or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * share
    return lo - pad, hi + pad


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi], about `count` of them."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    ticks = []
    for i in range(count * 3 + 2):
        value = round(first + i * step, 12)  # multiply, not accumulate, so 0.1 steps stay exact
        if value > hi + step * 1e-9:
            break
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
    return ticks


def time_ticks(lo_ms: float, hi_ms: float, count: int = 6) -> list[tuple[float, str]]:
    """UTC-aligned time ticks with labels whose precision suits the step (dates, minutes, seconds)."""
    span = max(hi_ms - lo_ms, 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= count), _TIME_STEPS[-1])
    if step >= _DAY:
        fmt = "%Y-%m-%d"
    elif step >= _MINUTE:
        fmt = "%m-%d %H:%M"
    else:
        fmt = "%H:%M:%S"
    first = math.ceil(lo_ms / step) * step
    return [
        (float(t), datetime.fromtimestamp(t / 1000, tz=timezone.utc).strftime(fmt))
        for t in range(int(first), int(hi_ms) + 1, step)
    ]


def number_label(value: float, step: float = 1.0) -> str:
    """A tick label with thousands separators and just enough decimals to tell ticks `step` apart."""
    decimals = 0
    while decimals < 8 and abs(round(step, decimals) - step) > abs(step) * 1e-6:
        decimals += 1
    return f"{value:,.{decimals}f}"


def tick_labels(ticks: list[float]) -> list[str]:
    """Labels for evenly spaced ticks, all with the same precision."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    return [number_label(t, step) for t in ticks]


def path(xs: np.ndarray, ys: np.ndarray, cls: str) -> str:
    """A polyline as one SVG path (one decimal of a pixel is plenty and keeps files small)."""
    if len(xs) == 0:
        return ""
    coords = [f"{x:.1f},{y:.1f}" for x, y in zip(xs.tolist(), ys.tolist())]
    return f'<path class="{esc(cls)}" d="M{"L".join(coords)}"/>'


def area(xs: np.ndarray, ys: np.ndarray, baseline: float, cls: str) -> str:
    """A filled region between a polyline and a horizontal baseline (used for drawdown)."""
    if len(xs) == 0:
        return ""
    coords = [f"{x:.1f},{y:.1f}" for x, y in zip(xs.tolist(), ys.tolist())]
    return (
        f'<path class="{esc(cls)}" d="M{xs[0]:.1f},{baseline:.1f}L{"L".join(coords)}'
        f'L{xs[-1]:.1f},{baseline:.1f}Z"/>'
    )


def marker(shape: str, x: float, y: float, cls: str, tooltip: str = "", size: float = 6.0) -> str:
    """One point marker of a named shape, with an optional hover tooltip."""
    s = size
    if shape == "triangle-up":
        body = f'<path d="M{x:.1f},{y - s:.1f}L{x + s:.1f},{y + s * 0.8:.1f}L{x - s:.1f},{y + s * 0.8:.1f}Z"'
    elif shape == "triangle-down":
        body = f'<path d="M{x:.1f},{y + s:.1f}L{x + s:.1f},{y - s * 0.8:.1f}L{x - s:.1f},{y - s * 0.8:.1f}Z"'
    elif shape == "circle":
        body = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{s * 0.8:.1f}"'
    elif shape == "square":
        body = f'<rect x="{x - s * 0.7:.1f}" y="{y - s * 0.7:.1f}" width="{s * 1.4:.1f}" height="{s * 1.4:.1f}"'
    elif shape == "diamond":
        body = f'<path d="M{x:.1f},{y - s:.1f}L{x + s:.1f},{y:.1f}L{x:.1f},{y + s:.1f}L{x - s:.1f},{y:.1f}Z"'
    else:
        raise ValueError(f"unknown marker shape {shape!r}; expected one of {MARKER_SHAPES}")
    title = f"<title>{esc(tooltip)}</title>" if tooltip else ""
    return f'{body} class="{esc(cls)}">{title}</{body[1:body.index(" ")]}>'


def text(x: float, y: float, content: str, cls: str = "", anchor: str = "start", rotate: float = 0) -> str:
    """Escaped text at a point; `rotate` turns it about that point (for a vertical axis title)."""
    turn = f' transform="rotate({rotate:g} {x:.1f} {y:.1f})"' if rotate else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" class="{esc(cls)}" text-anchor="{anchor}"{turn}>{esc(content)}</text>'


def rect(x: float, y: float, width: float, height: float, cls: str, tooltip: str = "") -> str:
    """A rectangle with its top-left corner at (x, y); negative sizes are normalised."""
    if width < 0:
        x, width = x + width, -width
    if height < 0:
        y, height = y + height, -height
    title = f"<title>{esc(tooltip)}</title>" if tooltip else ""
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" class="{esc(cls)}">{title}</rect>'


def x_axis(frame: Frame, ticks: list[tuple[float, str]], title: str) -> str:
    """Bottom axis: baseline, tick marks with labels at pixel positions, and the axis title."""
    parts = [f'<line class="axis" x1="{frame.x0}" y1="{frame.y0}" x2="{frame.x1}" y2="{frame.y0}"/>']
    for px, label in ticks:
        parts.append(f'<line class="tick" x1="{px:.1f}" y1="{frame.y0}" x2="{px:.1f}" y2="{frame.y0 + 5}"/>')
        parts.append(text(px, frame.y0 + 18, label, "ticklabel", "middle"))
    parts.append(text((frame.x0 + frame.x1) / 2, frame.height - 8, title, "axistitle", "middle"))
    return "".join(parts)


def y_axis(frame: Frame, ticks: list[tuple[float, str]], title: str) -> str:
    """Left axis: tick labels with light grid lines across the plot, and a vertical title."""
    parts = [f'<line class="axis" x1="{frame.x0}" y1="{frame.y0}" x2="{frame.x0}" y2="{frame.y1}"/>']
    for py, label in ticks:
        parts.append(f'<line class="grid" x1="{frame.x0}" y1="{py:.1f}" x2="{frame.x1}" y2="{py:.1f}"/>')
        parts.append(text(frame.x0 - 6, py + 4, label, "ticklabel", "end"))
    parts.append(text(14, (frame.y0 + frame.y1) / 2, title, "axistitle", "middle", rotate=-90))
    return "".join(parts)


def legend(frame: Frame, items: list[tuple[str, str, str]]) -> str:
    """A row of (shape or "line", css class, label) keys along the top right of the chart."""
    parts, x = [], frame.x1
    for shape, cls, label in reversed(items):
        x -= 14 + 7 * len(label)
        y = frame.top - 16
        if shape == "line":
            parts.append(f'<line class="{esc(cls)}" x1="{x - 14:.1f}" y1="{y:.1f}" x2="{x - 2:.1f}" y2="{y:.1f}"/>')
        else:
            parts.append(marker(shape, x - 8, y, cls, size=5))
        parts.append(text(x + 2, y + 4, label, "legendlabel"))
        x -= 24
    return f'<g class="legend">{"".join(parts)}</g>'


def chart(frame: Frame, title: str, body: str, css_class: str = "chart") -> str:
    """A complete inline <svg> with its title (also as an accessible <title>) and the given body."""
    return (
        f'<svg class="{esc(css_class)}" xmlns="http://www.w3.org/2000/svg" width="{frame.width}" '
        f'height="{frame.height}" viewBox="0 0 {frame.width} {frame.height}" role="img">'
        f"<title>{esc(title)}</title>"
        f"{text(frame.x0, 18, title, 'charttitle')}{body}</svg>"
    )
