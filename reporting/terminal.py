"""Rich terminal views: a live per-symbol status table and progress bars that fall back to plain lines."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from rich.console import Console
from rich.progress import (
    BarColumn, Progress, ProgressColumn, Task, TaskID, TaskProgressColumn, TextColumn, TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

_FIELDS = ("symbol", "premium_bps", "direction", "qty", "unrealised_krw", "realised_krw")


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One symbol's line in the status table; `direction` None means flat (no open position)."""

    symbol: str
    premium_bps: float | None   # executable premium now; None before both books arrived
    direction: str | None
    qty: float
    unrealised_krw: float
    realised_krw: float

    @classmethod
    def from_dict(cls, index: int, raw: Mapping) -> "StatusRow":
        """A row from a plain snapshot dict; an error names the row's index and the bad key."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"status row {index}: expected a dict, got {type(raw).__name__}")
        missing = [k for k in ("symbol", "unrealised_krw", "realised_krw") if k not in raw]
        if missing:
            raise ValueError(f"status row {index}: missing key(s) {', '.join(missing)}")
        unknown = sorted(set(raw) - set(_FIELDS))
        if unknown:
            raise ValueError(f"status row {index}: unknown key(s) {', '.join(unknown)}; known: {', '.join(_FIELDS)}")
        values = {}
        for key in ("premium_bps", "qty", "unrealised_krw", "realised_krw"):
            value = raw.get(key, 0.0 if key == "qty" else None)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"status row {index}: key {key!r} must be a number, got {value!r}")
            values[key] = None if value is None else float(value)
        direction = raw.get("direction")
        return cls(str(raw["symbol"]), values["premium_bps"], None if direction is None else str(direction),
                   values["qty"], values["unrealised_krw"], values["realised_krw"])


@dataclass(frozen=True, slots=True)
class StatusTotals:
    """Sums over all rows, shown in the table footer."""

    open_positions: int
    unrealised_krw: float
    realised_krw: float

    @property
    def total_krw(self) -> float:
        return self.unrealised_krw + self.realised_krw


def _krw(value: float) -> Text:
    return Text(f"{value:,.0f}", style="green" if value > 0 else "red" if value < 0 else "")


class StatusTable:
    """Live status of every symbol: hand it to rich.live.Live and call update() with each snapshot."""

    def __init__(self, rows: Iterable[StatusRow | Mapping] = (), title: str = "arbitrage-lite status") -> None:
        self.title = title
        self._rows: tuple[StatusRow, ...] = ()
        self.update(rows)

    def update(self, rows: Iterable[StatusRow | Mapping]) -> None:
        """Replace the snapshot in one assignment, so a Live refresh thread never sees half of one."""
        self._rows = tuple(r if isinstance(r, StatusRow) else StatusRow.from_dict(i, r) for i, r in enumerate(rows))

    @property
    def rows(self) -> tuple[StatusRow, ...]:
        return self._rows

    def totals(self) -> StatusTotals:
        rows = self._rows
        return StatusTotals(
            sum(r.direction is not None for r in rows),
            sum(r.unrealised_krw for r in rows),
            sum(r.realised_krw for r in rows),
        )

    def __rich__(self) -> Table:
        totals = self.totals()
        table = Table(title=self.title, show_footer=True, header_style="bold", footer_style="bold")
        table.add_column("Symbol", footer="TOTAL")
        table.add_column("Premium (bps)", justify="right")
        table.add_column("Position", footer=f"{totals.open_positions} open")
        table.add_column("Unrealised KRW", justify="right", footer=_krw(totals.unrealised_krw))
        table.add_column("Realised KRW", justify="right", footer=_krw(totals.realised_krw))
        table.add_column("PnL KRW", justify="right", footer=_krw(totals.total_krw))
        for r in self._rows:
            premium = Text("n/a", style="dim") if r.premium_bps is None else Text(
                f"{r.premium_bps:+.1f}", style="dark_orange" if r.premium_bps > 0 else "dodger_blue2")
            position = Text("flat", style="dim") if r.direction is None else Text(f"{r.direction} {r.qty:g}")
            table.add_row(r.symbol, premium, position, _krw(r.unrealised_krw), _krw(r.realised_krw),
                          _krw(r.unrealised_krw + r.realised_krw))
        return table


def _si(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def rate(task: Task) -> float | None:
    """Rich's recent-window speed, else the average since start (rich needs two samples for its own)."""
    speed = task.finished_speed or task.speed
    if speed is None and task.elapsed and task.completed:
        speed = task.completed / task.elapsed
    return speed


class RateColumn(ProgressColumn):
    """Items per second (events, files, trials) with a k/M suffix."""

    def __init__(self, unit: str = "ev") -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = rate(task)
        return Text("? " if speed is None else f"{_si(speed)} {self.unit}/s", style="progress.data.speed")


def describe(task: Task, unit: str) -> str:
    """One plain line for a task: done/total, percent, rate and time left."""
    speed = rate(task)
    shown = f"{_si(speed)} {unit}/s" if speed else f"? {unit}/s"
    if task.total is None:
        return f"{task.description}: {task.completed:,.0f} done, {shown}"
    if task.finished:
        eta = "done"
    else:
        eta = "?" if not speed else str(timedelta(seconds=round((task.total - task.completed) / speed)))
    return f"{task.description}: {task.completed:,.0f}/{task.total:,.0f} ({task.percentage:.0f}%), {shown}, ETA {eta}"


class PlainLineProgress(Progress):
    """A Progress for logs and pipes: no redrawing, one plain line per task every few seconds and at the end."""

    def __init__(self, *columns, every_s: float, unit: str, **kwargs) -> None:
        super().__init__(*columns, disable=True, **kwargs)
        self.every_s, self.unit = every_s, unit
        self._printed_at: dict[TaskID, float] = {}
        self._printed_state: dict[TaskID, float] = {}

    def add_task(self, description: str, *args, **kwargs) -> TaskID:
        task_id = super().add_task(description, *args, **kwargs)
        self._emit(task_id)
        return task_id

    def update(self, task_id: TaskID, **kwargs) -> None:
        super().update(task_id, **kwargs)
        self._maybe_emit(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._maybe_emit(task_id)

    def stop(self) -> None:
        """Print the last state of any task that changed since its last line."""
        for task in self.tasks:
            if self._printed_state.get(task.id) != task.completed:
                self._emit(task.id)
        super().stop()

    def _maybe_emit(self, task_id: TaskID) -> None:
        task = self._tasks[task_id]
        due = self.get_time() - self._printed_at.get(task_id, float("-inf")) >= self.every_s
        just_finished = task.finished and self._printed_state.get(task_id) != task.completed
        if due or just_finished:
            self._emit(task_id)

    def _emit(self, task_id: TaskID) -> None:
        task = self._tasks[task_id]
        self._printed_at[task_id], self._printed_state[task_id] = self.get_time(), task.completed
        self.console.print(describe(task, self.unit), markup=False, highlight=False, soft_wrap=True)


def progress(
    console: Console | None = None,
    *,
    unit: str = "ev",
    plain_every_s: float = 5.0,
    get_time: Callable[[], float] | None = None,
    transient: bool = False,
) -> Progress:
    """A Progress with bar, percent, rate and ETA; on a non-TTY (pipe, log file, CI) it prints plain lines."""
    console = console or Console()
    columns = (
        TextColumn("[progress.description]{task.description}"), BarColumn(), TaskProgressColumn(),
        RateColumn(unit), TimeRemainingColumn(),
    )
    if console.is_terminal and not console.is_dumb_terminal:
        return Progress(*columns, console=console, get_time=get_time, transient=transient)
    return PlainLineProgress(*columns, every_s=plain_every_s, unit=unit, console=console, get_time=get_time)
