"""The premium trace's bounded series: memory capped, spikes kept, the same points however fed."""
import json
import random

import pytest

from domain.series import ThinnedSeries


def samples(n: int, seed: int = 7) -> list[tuple[int, float]]:
    rng = random.Random(seed)
    return [(1_000 * i, rng.gauss(0.0, 1.0)) for i in range(n)]


def test_short_series_are_kept_whole():
    pts = samples(100)
    series = ThinnedSeries(cap=128)
    series.extend(pts)
    assert series.points() == pts and len(series) == 100 and series.level == 0


@pytest.mark.parametrize("n", [1_000, 10_000, 100_000])
def test_never_holds_more_than_twice_the_cap_whatever_the_length(n):
    series = ThinnedSeries(cap=64)
    series.extend(samples(n))
    assert series.count == n
    assert len(series) <= 2 * 64 + 2
    ts = [t for t, _ in series]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)


def test_the_highest_and_lowest_samples_survive_thinning():
    pts = samples(50_000)
    pts[31_337] = (pts[31_337][0], 99.0)
    pts[4_242] = (pts[4_242][0], -99.0)
    series = ThinnedSeries(cap=32)
    series.extend(pts)
    kept = series.points()
    assert pts[31_337] in kept and pts[4_242] in kept
    assert max(v for _, v in kept) == 99.0 and min(v for _, v in kept) == -99.0


def test_batching_does_not_change_what_is_kept():
    pts = samples(7_777)
    one = ThinnedSeries(cap=16)
    for p in pts:
        one.append(p)
    rng, batched, i = random.Random(3), ThinnedSeries(cap=16), 0
    while i < len(pts):
        step = rng.randint(1, 500)
        batched.extend(pts[i:i + step])
        i += step
    assert one == batched and one.points() == batched.points()


def test_a_restored_series_continues_exactly():
    pts = samples(5_000)
    whole = ThinnedSeries(cap=16)
    whole.extend(pts)
    half = ThinnedSeries(cap=16)
    half.extend(pts[:2_345])
    restored = ThinnedSeries.from_dict(json.loads(json.dumps(half.to_dict())), "t")
    restored.extend(pts[2_345:])
    assert restored == whole


def test_a_corrupt_document_is_refused_naming_where():
    series = ThinnedSeries(cap=16)
    series.extend(samples(1_000))
    doc = series.to_dict()
    doc["count"] += 1
    with pytest.raises(ValueError, match=r"engine.trace.premium\[BTC\]: counts disagree"):
        ThinnedSeries.from_dict(doc, "engine.trace.premium[BTC]")
    with pytest.raises(ValueError, match=r"engine.trace.premium\[BTC\]: not a thinned series"):
        ThinnedSeries.from_dict({"cap": 16}, "engine.trace.premium[BTC]")
    with pytest.raises(ValueError, match="cap must be an even number"):
        ThinnedSeries(cap=3)
