"""A time series whose memory stays bounded whatever the run's length, keeping every spike.

The premium trace gets a sample per coin per z-score step for the whole run: 50 coins x 30 days
of 1-second samples would be 130 million points. A `ThinnedSeries` keeps raw samples until it
holds `cap` buckets, then merges neighbouring buckets pairwise (each bucket keeps the lowest and
the highest sample it covers, in time order), so it never holds more than 2 x cap points.

Bucket i at level k covers raw samples [i * 2**k, (i + 1) * 2**k): which samples survive depends
only on the sequence of samples, never on how they were batched, so the per-event engine, the
fast replay and a restored snapshot hold the same points.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

Point = tuple[int, float]
DEFAULT_CAP = 4096     # buckets; a report chart is about a thousand pixels wide


def _extremes(points: list[Point]) -> tuple[Point, ...]:
    """The lowest and the highest point (first of equals), in time order; one point if they are the same."""
    low = min(range(len(points)), key=lambda i: points[i][1])
    high = max(range(len(points)), key=lambda i: points[i][1])
    if low == high:
        return (points[low],)
    return (points[low], points[high]) if low < high else (points[high], points[low])


class ThinnedSeries:
    """(ts_ms, value) samples in time order, at most 2 x `cap` of them kept (see the module doc)."""

    __slots__ = ("cap", "level", "buckets", "partial", "partial_n", "count")

    def __init__(self, cap: int = DEFAULT_CAP):
        if cap < 2 or cap % 2:
            raise ValueError(f"ThinnedSeries: cap must be an even number >= 2, got {cap!r}")
        self.cap = cap
        self.level = 0                              # each full bucket covers 2**level samples
        self.buckets: list[tuple[Point, ...]] = []
        self.partial: tuple[Point, ...] = ()        # extremes of the samples of the bucket being filled
        self.partial_n = 0
        self.count = 0                              # samples appended in all

    def append(self, point: Point) -> None:
        self.count += 1
        if self.level == 0:                          # raw samples until the first merge: the common case
            self.buckets.append((point,))
            if len(self.buckets) == self.cap:
                self._merge()
            return
        self.partial = _extremes([*self.partial, point]) if self.partial else (point,)
        self.partial_n += 1
        if self.partial_n == 1 << self.level:
            self.buckets.append(self.partial)
            self.partial, self.partial_n = (), 0
            if len(self.buckets) == self.cap:
                self._merge()

    def extend(self, points: Iterable[Point]) -> None:
        for point in points:
            self.append(point)

    def _merge(self) -> None:
        """Halve the buckets: neighbours become one bucket of twice the samples (the open one continues)."""
        b = self.buckets
        self.buckets = [_extremes([*b[i], *b[i + 1]]) for i in range(0, len(b), 2)]
        self.level += 1

    def points(self) -> list[Point]:
        return [p for bucket in self.buckets for p in bucket] + list(self.partial)

    def __iter__(self) -> Iterator[Point]:
        return iter(self.points())

    def __len__(self) -> int:
        return sum(map(len, self.buckets)) + len(self.partial)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ThinnedSeries):
            return (self.level, self.count, self.points()) == (other.level, other.count, other.points())
        return NotImplemented

    def __repr__(self) -> str:
        return f"ThinnedSeries({self.count} samples, {len(self)} kept, level {self.level})"

    # -- snapshots: plain lists, rebuilt exactly -------------------------------------------------
    def to_dict(self) -> dict:
        return {"cap": self.cap, "level": self.level, "count": self.count, "partial_n": self.partial_n,
                "buckets": [[list(p) for p in b] for b in self.buckets], "partial": [list(p) for p in self.partial]}

    @classmethod
    def from_dict(cls, raw: dict, where: str) -> "ThinnedSeries":
        try:
            series = cls(int(raw["cap"]))
            series.level, series.count, series.partial_n = int(raw["level"]), int(raw["count"]), int(raw["partial_n"])
            series.buckets = [tuple((int(t), float(v)) for t, v in b) for b in raw["buckets"]]
            series.partial = tuple((int(t), float(v)) for t, v in raw["partial"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: not a thinned series ({type(exc).__name__}: {exc})") from None
        width = 1 << series.level
        if len(series.buckets) >= series.cap or not 0 <= series.partial_n < width \
                or series.count != len(series.buckets) * width + series.partial_n:
            raise ValueError(f"{where}: counts disagree (count {series.count}, {len(series.buckets)} buckets "
                             f"of {width}, {series.partial_n} open, cap {series.cap})")
        return series
