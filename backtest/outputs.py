"""What a run leaves on disk: KPI JSON (and its checkpoints), the trade log and the report."""
from __future__ import annotations

import json
import os
import resource
import time
from dataclasses import asdict, is_dataclass
from enum import Enum
from pathlib import Path

# KPI fields that depend on the wall clock or the machine; everything else is reproducible.
WALL_CLOCK_FIELDS = ("run_id", "started_at", "ended_at", "duration_s", "cpu_s", "cpu_pct",
                     "max_rss_mb", "events_per_s", "tick_to_decision_ms_avg", "tick_to_decision_ms_p99",
                     "output_dir")


def _plain(obj):
    if is_dataclass(obj):
        return {k: _plain(v) for k, v in asdict(obj).items()}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def write_json_atomic(path: Path, data: dict) -> None:
    """Write to a temp file then rename, so a crash never leaves half a KPI file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def write_trade_log(path: Path, orders, fills, round_trips, decisions) -> None:
    """Every order, fill, guard decision and round trip, one JSON object a line, in time order."""
    rows = ([("order", o.ts_ms, _plain(o)) for o in orders] + [("fill", f.ts_ms, _plain(f)) for f in fills]
            + [("guard", d.ts_ms, _plain(d)) for d in decisions]
            + [("round_trip", rt.exit_ts_ms, _plain(rt)) for rt in round_trips])
    rows.sort(key=lambda r: r[1])
    with open(path, "w") as fh:
        for kind, _, body in rows:
            fh.write(json.dumps({"type": kind, **body}, sort_keys=True) + "\n")


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started its program: VmHWM where Linux has it
    (ru_maxrss of a process forked from a big one also counts that image from before exec)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_usage(started_wall: float, helpers: dict | None = None) -> dict:
    """CPU seconds, CPU share and peak memory of this process so far, plus its helper processes'
    (`helpers`: their cpu_s and max_rss_mb; the memory figure is then the sum of the peaks)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime + (helpers or {}).get("cpu_s", 0.0)
    rss = peak_rss_mb() + (helpers or {}).get("max_rss_mb", 0.0)
    wall = max(time.time() - started_wall, 1e-9)
    return {"cpu_s": round(cpu, 3), "cpu_pct": round(cpu / wall * 100, 1), "max_rss_mb": round(rss, 1)}
