"""Time series checked and thinned for plotting: validation, min/max downsampling, gap splitting."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def to_arrays(name: str, series: Iterable[tuple[int, float]] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ts_ms, value) pairs as two float arrays; a clear error names the series and the bad row."""
    if not isinstance(series, (np.ndarray, list, tuple)):
        series = list(series)           # e.g. a ThinnedSeries of the premium trace
    try:
        arr = np.asarray(series, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"series {name!r}: expected (ts_ms, value) pairs of numbers: {exc}") from None
    if arr.size == 0:
        return np.empty(0), np.empty(0)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"series {name!r}: expected (ts_ms, value) pairs, got shape {arr.shape}")
    ts, values = arr[:, 0], arr[:, 1]
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"series {name!r}: row {row} is not finite: {tuple(series[row])!r}")
    back = np.diff(ts) < 0
    if back.any():
        row = int(np.argmax(back)) + 1
        raise ValueError(
            f"series {name!r}: row {row} goes back in time ({int(ts[row])} after {int(ts[row - 1])} ms)"
        )
    return ts, values


def min_max_downsample(ts: np.ndarray, values: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first, last, and the min and max of each time bucket, so spikes survive thinning."""
    if len(ts) <= 2 * buckets + 2:
        return ts, values
    span = ts[-1] - ts[0]
    bucket = np.minimum(((ts - ts[0]) * buckets / span).astype(np.int64), buckets - 1)
    # Sorting by (bucket, value) puts each bucket's min first and its max last.
    order = np.lexsort((values, bucket))
    sorted_bucket = bucket[order]
    starts = np.flatnonzero(np.r_[True, sorted_bucket[1:] != sorted_bucket[:-1]])
    ends = np.r_[starts[1:], len(order)] - 1
    keep = np.unique(np.r_[order[starts], order[ends], 0, len(ts) - 1])
    return ts[keep], values[keep]


def split_at_gaps(ts: np.ndarray, max_gap: float) -> list[slice]:
    """Runs of points with no step longer than `max_gap`, so a line is not drawn across missing data."""
    if len(ts) == 0:
        return []
    cuts = np.flatnonzero(np.diff(ts) > max_gap) + 1
    bounds = np.r_[0, cuts, len(ts)]
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def gap_threshold(ts: np.ndarray, buckets: int) -> float:
    """A step counts as a gap above 10 typical steps and above two downsampling buckets."""
    if len(ts) < 2:
        return float("inf")
    typical = float(np.median(np.diff(ts)))
    bucket_width = float(ts[-1] - ts[0]) / max(buckets, 1)
    return max(10.0 * typical, 2.0 * bucket_width)
