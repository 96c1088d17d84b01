"""The rich status table and progress helper, rendered into recording consoles."""
from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.live import Live
from rich.progress import Progress

from reporting.terminal import PlainLineProgress, RateColumn, StatusRow, StatusTable, progress


def _console(terminal: bool) -> Console:
    return Console(record=True, width=120, file=io.StringIO(), force_terminal=terminal, color_system=None)


SNAPSHOT = [
    StatusRow("BTC", 123.4, "upbit_rich", 0.015, 15_250.0, -2_000.0),
    {"symbol": "ETH", "premium_bps": -31.25, "direction": None, "qty": 0, "unrealised_krw": 0, "realised_krw": 48_000},
    {"symbol": "XRP", "premium_bps": None, "direction": "upbit_cheap", "qty": 1200, "unrealised_krw": -700.5,
     "realised_krw": 0},
]


def _lines(text: str, first: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"│ {first} ")]


def test_status_table_renders_rows_and_totals():
    console = _console(False)
    table = StatusTable(SNAPSHOT)
    console.print(table)
    text = console.export_text()
    assert _lines(text, "BTC")[0].split("│")[2:7] == [
        "        +123.4 ", " upbit_rich 0.015 ", "         15,250 ", "       -2,000 ", "  13,250 "]
    assert "flat" in _lines(text, "ETH")[0] and "-31.2" in _lines(text, "ETH")[0]
    assert "n/a" in _lines(text, "XRP")[0] and "upbit_cheap 1200" in _lines(text, "XRP")[0]
    totals = [cell.strip() for cell in _lines(text, "TOTAL")[0].split("│")[1:-1]]
    assert totals == ["TOTAL", "", "2 open", "14,550", "46,000", "60,550"]
    assert table.totals().total_krw == pytest.approx(15_250 - 2_000 + 48_000 - 700.5)


def test_status_table_follows_updates_under_live():
    console = _console(True)
    table = StatusTable(SNAPSHOT[:1], title="paper")
    with Live(table, console=console, auto_refresh=False) as live:
        table.update([StatusRow("SOL", 55.0, None, 0.0, 0.0, 9_999.0)])
        live.refresh()
    text = console.export_text()
    assert "SOL" in text and "9,999" in text
    assert table.rows == (StatusRow("SOL", 55.0, None, 0.0, 0.0, 9_999.0),)


@pytest.mark.parametrize(
    "row, message",
    [
        ({"symbol": "BTC", "realised_krw": 0}, r"status row 0: missing key\(s\) unrealised_krw"),
        ({"symbol": "BTC", "unrealised_krw": "12", "realised_krw": 0}, r"status row 0: key 'unrealised_krw' must be a number"),
        ({"symbol": "BTC", "unrealised_krw": 0, "realised_krw": 0, "pnl": 1}, r"status row 0: unknown key\(s\) pnl"),
        ("BTC", r"status row 0: expected a dict, got str"),
    ],
)
def test_bad_snapshot_row_names_row_and_key(row, message):
    with pytest.raises(ValueError, match=message):
        StatusTable([row])


def test_progress_on_a_pipe_prints_plain_lines_at_an_interval():
    console, clock = _console(False), [100.0]
    with progress(console, unit="bars", plain_every_s=5.0, get_time=lambda: clock[0]) as bar:
        assert isinstance(bar, PlainLineProgress)
        task = bar.add_task("backtest BTC", total=1_000)
        for _ in range(10):
            clock[0] += 1.0
            bar.advance(task, 100)
    lines = console.export_text().splitlines()
    assert lines == [
        "backtest BTC: 0/1,000 (0%), ? bars/s, ETA ?",
        "backtest BTC: 500/1,000 (50%), 100 bars/s, ETA 0:00:05",
        "backtest BTC: 1,000/1,000 (100%), 100 bars/s, ETA done",
    ]
    assert "\x1b" not in console.file.getvalue()  # no cursor control in a log


def test_progress_on_a_pipe_reports_an_unfinished_task_at_stop():
    console, clock = _console(False), [0.0]
    with progress(console, get_time=lambda: clock[0]) as bar:
        task = bar.add_task("download", total=None)
        clock[0] += 2.0
        bar.update(task, advance=3_000)
    assert console.export_text().splitlines()[-1] == "download: 3,000 done, 1.5k ev/s"


def test_progress_on_a_terminal_draws_bar_percent_rate_and_eta():
    console, clock = _console(True), [0.0]
    with progress(console, unit="trials", get_time=lambda: clock[0]) as bar:
        assert type(bar) is Progress
        assert any(isinstance(c, RateColumn) for c in bar.columns)
        task = bar.add_task("sweep", total=40)
        for _ in range(2):
            clock[0] += 2.0
            bar.advance(task, 5)
        bar.refresh()
        text = console.export_text()
    assert "sweep" in text and "25%" in text and "2.5 trials/s" in text and "0:00:12" in text
