"""Series checks, min/max downsampling and gap splitting."""
from __future__ import annotations

import numpy as np
import pytest

from reporting.series import gap_threshold, min_max_downsample, split_at_gaps, to_arrays


def test_downsample_keeps_every_bucket_extreme_and_both_ends():
    rng = np.random.default_rng(1)
    ts = np.arange(100_001, dtype=np.float64) * 1000  # span divisible by 500: bucket b holds samples 200b..200b+199
    values = rng.normal(size=ts.size)
    thin_ts, thin_values = min_max_downsample(ts, values, 500)
    assert len(thin_ts) <= 2 * 500 + 2 and np.all(np.diff(thin_ts) > 0)
    assert (thin_ts[0], thin_ts[-1]) == (ts[0], ts[-1])
    assert thin_values.max() == values.max() and thin_values.min() == values.min()
    # every kept point is a real sample at its own time
    assert np.array_equal(values[(thin_ts / 1000).astype(int)], thin_values)
    bucket = 200
    for b in (0, 137, 499):
        window = values[b * bucket:(b + 1) * bucket]
        assert window.max() in thin_values and window.min() in thin_values


def test_short_series_is_returned_unchanged():
    ts, values = np.arange(10.0), np.arange(10.0) ** 2
    thin_ts, thin_values = min_max_downsample(ts, values, 500)
    assert thin_ts is ts and thin_values is values


def test_gaps_split_runs_but_regular_steps_do_not():
    ts = np.r_[np.arange(0, 100) * 60_000.0, 100 * 86_400_000.0 + np.arange(0, 50) * 60_000.0]
    runs = split_at_gaps(ts, gap_threshold(ts, 800))
    assert [(r.start, r.stop) for r in runs] == [(0, 100), (100, 150)]
    regular = np.arange(0, 1000) * 1000.0
    assert len(split_at_gaps(regular, gap_threshold(regular, 800))) == 1


def test_to_arrays_accepts_pairs_and_rejects_bad_shapes():
    ts, values = to_arrays("eq", [(1, 2.5), (3, 4.0)])
    assert ts.tolist() == [1.0, 3.0] and values.tolist() == [2.5, 4.0]
    with pytest.raises(ValueError, match=r"series 'eq': expected \(ts_ms, value\) pairs, got shape \(2, 3\)"):
        to_arrays("eq", [(1, 2, 3), (4, 5, 6)])
    with pytest.raises(ValueError, match=r"series 'eq': expected \(ts_ms, value\) pairs of numbers"):
        to_arrays("eq", [(1, "abc")])
