"""Preflight framework: small named async checks run together into one report; any failure -> not ok.

A check that raises or hangs fails by itself with its error text scrubbed, so one broken venue
never hides the results of the others.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass

from rich.table import Table

from live.redact import redact


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check: its name, pass or fail, and what was seen."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Check:
    """A named check; `run` is a coroutine function that returns its CheckResult."""

    name: str
    run: Callable[[], Awaitable[CheckResult]]


@dataclass(frozen=True, slots=True)
class PreflightReport:
    """All results, in the order the checks were given. No checks at all is not ok (fail closed)."""

    results: tuple[CheckResult, ...]
    started_ms: int
    duration_ms: int

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.ok)


async def run_preflight(checks: Sequence[Check], timeout_s: float = 10.0) -> PreflightReport:
    """Run every check concurrently, each under `timeout_s`, and collect the report."""
    names = [c.name for c in checks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"preflight: duplicate check names {duplicates}")
    started = time.time()
    results = await asyncio.gather(*(_guarded(c, timeout_s) for c in checks))
    return PreflightReport(tuple(results), int(started * 1000), int((time.time() - started) * 1000))


async def _guarded(check: Check, timeout_s: float) -> CheckResult:
    try:
        result = await asyncio.wait_for(check.run(), timeout_s)
    except asyncio.TimeoutError:
        return CheckResult(check.name, False, f"timed out after {timeout_s:g}s")
    except Exception as exc:  # any error is this check's failure, never the whole preflight's
        return CheckResult(check.name, False, str(redact(exc)))
    if not isinstance(result, CheckResult):
        return CheckResult(check.name, False, f"check returned {type(result).__name__}, not CheckResult")
    return CheckResult(result.name, result.ok, str(redact(result.detail)))


def render_table(report: PreflightReport) -> Table:
    """A rich table of every check; the title says PASSED or FAILED with the failure count."""
    verdict = "[bold green]PASSED" if report.ok else f"[bold red]FAILED ({len(report.failures)})"
    table = Table(title=f"Live preflight: {verdict}[/] in {report.duration_ms} ms")
    table.add_column("check", style="bold")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for r in report.results:
        table.add_row(r.name, "[green]ok[/]" if r.ok else "[red]FAIL[/]", r.detail)
    if not report.results:
        table.add_row("(none)", "[red]FAIL[/]", "no checks were run")
    return table


def to_json(report: PreflightReport) -> str:
    """The report as JSON for the run's output folder and alerts."""
    return json.dumps({"ok": report.ok, "started_ms": report.started_ms,
                       "duration_ms": report.duration_ms,
                       "checks": [asdict(r) for r in report.results]}, indent=2)
