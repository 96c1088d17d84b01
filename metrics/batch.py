"""A telemetry batch: metric updates buffered in one actor, applied in one call by the MetricsActor.

Counters travel as deltas (summed per series), gauges as their latest value and histogram
samples as raw values. Deltas mean a restarted sender never makes a counter go backwards, and
the receiver stays the one place that knows the buckets. A batch is plain lists and dicts.
"""
from __future__ import annotations

from typing import Any, Mapping

from metrics.registry import Metrics, check_update

LabelKey = tuple[tuple[str, str], ...]
VERBS = ("inc", "set", "observe")


class BatchBuffer:
    """Updates since the last `take`; checked as they are added, so a bad one fails at its caller.

    Not thread-safe: Telemetry holds a lock around it.
    """

    def __init__(self) -> None:
        self._inc: dict[tuple[str, LabelKey], float] = {}
        self._set: dict[tuple[str, LabelKey], float] = {}
        self._observe: dict[tuple[str, LabelKey], list[float]] = {}
        self.updates = 0

    def add(self, verb: str, attr: str, labels: Mapping[str, str], value: float) -> None:
        check_update(verb, attr, labels, value)
        key = (attr, tuple(sorted(labels.items())))
        if verb == "inc":
            self._inc[key] = self._inc.get(key, 0.0) + value
        elif verb == "set":
            self._set[key] = value
        else:
            self._observe.setdefault(key, []).append(value)
        self.updates += 1

    def take(self, source: str) -> dict[str, Any] | None:
        """The batch to send (None when empty); the buffer starts over."""
        if not self.updates:
            return None
        batch = {"source": source,
                 "inc": [[attr, dict(labels), v] for (attr, labels), v in self._inc.items()],
                 "set": [[attr, dict(labels), v] for (attr, labels), v in self._set.items()],
                 "observe": [[attr, dict(labels), vs] for (attr, labels), vs in self._observe.items()]}
        self._inc, self._set, self._observe, self.updates = {}, {}, {}, 0
        return batch


def batch_size(batch: Mapping[str, Any]) -> int:
    """Updates a batch carries after coalescing: one per counter or gauge series, one per sample."""
    return (len(batch["inc"]) + len(batch["set"]) + sum(len(values) for _, _, values in batch["observe"]))


def apply_batch(metrics: Metrics, batch: Any) -> tuple[int, list[str]]:
    """Apply every valid update of `batch`; return how many were applied and what was refused.

    A refused entry is named by source, verb and index, and does not stop the others.
    """
    if not isinstance(batch, Mapping):
        return 0, [f"telemetry batch: expected a mapping, got {type(batch).__name__}"]
    source = batch.get("source", "?")
    unknown = sorted(set(batch) - {"source", *VERBS})
    problems = [f"telemetry batch from {source}: unknown key(s) {', '.join(map(str, unknown))}"] if unknown else []
    applied = 0
    for verb in VERBS:
        for i, entry in enumerate(batch.get(verb) or ()):
            where = f"telemetry batch from {source}: {verb}[{i}]"
            try:
                shape_ok = isinstance(entry, (list, tuple)) and len(entry) == 3 and isinstance(entry[1], Mapping)
                values = (entry[2] if verb == "observe" else [entry[2]]) if shape_ok else None
                if not isinstance(values, (list, tuple)):
                    raise ValueError(f"expected [metric, {{labels}}, value (observe: [values])], got {entry!r:.80}")
                attr, labels = entry[0], entry[1]
                for v in values:          # check all first, so an entry applies whole or not at all
                    check_update(verb, attr, labels, v)
                for v in values:
                    metrics.apply(verb, attr, labels, v)
                applied += len(values)
            except (TypeError, ValueError) as exc:
                problems.append(f"{where}: {exc}")
    return applied, problems
