"""Per-symbol strategy rules: when to enter, in which direction, how big, and when to exit.

Decisions use only the books given (the latest at `now`), never anything later. The z-score
baseline is a rolling window of mid-premium samples taken once per `z_sample_ms`; a decision is
compared with the window as it stood before the current sample.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from domain.book import Book, depth_qty
from domain.orders import Direction, OrderIntent, Purpose
from domain.params import StrategyParams
from domain.premium import FxQuote, edge, entry_quote, exit_quote, mid_premium

BPS = 1e-4
SCREEN_MARGIN = 1e-9  # far above float rounding of a VWAP, far below any fee or threshold


@dataclass(frozen=True, slots=True)
class PositionView:
    """What a strategy knows of its symbol's open position (told by the coordinator)."""

    position_id: str
    direction: Direction
    qty: float
    entry_premium: float
    entry_ts_ms: int


class RollingWindow:
    """Mean and population standard deviation of the last `size` samples.

    The statistics are worked out when read and kept until the next push: the backtest's fast
    path pushes a coin's samples in bulk and reads them only where the exact rules run.
    """

    def __init__(self, size: int, samples: list[float] | None = None):
        self.values: deque[float] = deque(samples or [], maxlen=size)
        self._stats: tuple[float, float] | None = None

    def push(self, x: float) -> None:
        self.values.append(x)
        self._stats = None

    def extend(self, xs) -> None:
        """Push several samples, oldest first."""
        self.values.extend(xs)
        self._stats = None

    @property
    def mean(self) -> float:
        return (self._stats or self._compute())[0]

    @property
    def std(self) -> float:
        return (self._stats or self._compute())[1]

    def _compute(self) -> tuple[float, float]:
        n = len(self.values)
        if n == 0:
            self._stats = (0.0, 0.0)
            return self._stats
        mean = math.fsum(self.values) / n
        std = math.sqrt(math.fsum([(v - mean) ** 2 for v in self.values]) / n) if n > 1 else 0.0
        self._stats = (mean, std)
        return self._stats

    def __len__(self) -> int:
        return len(self.values)


class SymbolStrategy:
    """Entry/exit rules for one coin. State: window, cooldown, position view, intent counter."""

    def __init__(self, symbol: str, params: StrategyParams, fees_round_trip: float):
        self.symbol = symbol
        self.p = params
        self.fees = fees_round_trip          # the four taker fees as a fraction
        self.window = RollingWindow(params.z_window)
        self.next_sample_ms = 0
        self.cooldown_until_ms = 0
        self.position: PositionView | None = None
        self.pending = False                 # an intent is with the coordinator
        self.seq = 0
        self.last_premium: float | None = None

    # -- decisions -------------------------------------------------------------------------
    def on_books(self, now_ms: int, upbit: Book, binance: Book, fx: FxQuote) -> OrderIntent | None:
        """Decide on the books as of `now_ms`; returns at most one intent."""
        age = self.p.max_book_age_ms
        if now_ms - upbit.ts_ms > age or now_ms - binance.ts_ms > age or not (upbit.bids and upbit.asks
                                                                             and binance.bids and binance.asks):
            return None
        baseline, ready = self._baseline()
        intent = None
        if not self.pending:
            if self.position is not None:
                intent = self._exit(now_ms, upbit, binance, fx, baseline)
            elif now_ms >= self.cooldown_until_ms and ready:
                intent = self._entry(now_ms, upbit, binance, fx, baseline)
        if now_ms >= self.next_sample_ms:
            self.last_premium = mid_premium(upbit, binance, fx)
            self.window.push(self.last_premium)
            self.next_sample_ms = now_ms - now_ms % self.p.z_sample_ms + self.p.z_sample_ms
        if intent is not None:
            self.pending = True
        return intent

    def screen_limits(self, mean: float, std: float, n: int,
                      slack: float = 0.0) -> tuple[float, tuple[float, float] | None]:
        """(baseline, entry limits) for a window of `n` samples with this mean and std (limits None: not ready).

        A depth walk never beats the best level, so an entry can pass only if the top-of-book
        ratio up_bid / (bn_ask * fx_ask) >= the first limit (Upbit rich) or up_ask / (bn_bid *
        fx_bid) <= the second (Upbit cheap): the backtest's fast path screens every book with them.
        `slack` widens them, for a screen working from statistics known to within it.
        """
        baseline, ready = self._baseline_of(mean, std, n)
        if not ready:
            return baseline, None
        need = self.fees + self.p.entry_edge_bps * BPS
        if self.p.mode == "zscore":
            need = max(need, self.p.z_entry * std)
        need -= 2 * SCREEN_MARGIN + slack
        return baseline, (1.0 + baseline + need, 1.0 + baseline - need)

    def exit_bounds(self, baseline: float) -> tuple[float, float]:
        """For the open position: stop-loss, take-profit and reversal can fire only if the exit
        quote's premium is <= the first limit or >= the second (a conservative screen).

        RICH locks in (entry - P) - fees: stop at P >= entry - fees + stop, take profit at
        P <= entry - fees - take, reversal at P <= baseline + exit_edge. CHEAP is the mirror.
        The backtest bounds P per book between the best levels and the deepest level the
        position's size needs, and skips the exact exit evaluation when it sits strictly inside.
        """
        pos, p = self.position, self.p
        locked_at = pos.entry_premium - self.fees if pos.direction is Direction.RICH else pos.entry_premium + self.fees
        stop, take, back = p.stop_loss_bps * BPS, p.take_profit_bps * BPS, p.exit_edge_bps * BPS
        if pos.direction is Direction.RICH:
            low, high = max(locked_at - take, baseline + back), locked_at + stop
        else:
            low, high = locked_at - stop, min(locked_at + take, baseline - back)
        return low + 2 * SCREEN_MARGIN, high - 2 * SCREEN_MARGIN

    def exit_due_ms(self) -> int:
        """When the open position's time-limit exit fires (at the first evaluation from then on)."""
        return self.position.entry_ts_ms + self.p.max_hold_ms

    def _baseline(self) -> tuple[float, bool]:
        window = self.window
        if self.p.mode == "absolute":
            return self.p.baseline_bps * BPS, True
        return self._baseline_of(window.mean, window.std, len(window))

    def _baseline_of(self, mean: float, std: float, n: int) -> tuple[float, bool]:
        """The level the premium is measured from, and whether entries may be decided against it."""
        if self.p.mode == "absolute":
            return self.p.baseline_bps * BPS, True
        return mean, n >= self.p.z_min_samples and std > 0

    def _size(self, upbit: Book, binance: Book, direction: Direction) -> float:
        """Target size from the notional, capped to a share of the depth on both sides walked."""
        qty = self.p.order_notional_krw / upbit.mid
        up_side, bn_side = (upbit.bids, binance.asks) if direction is Direction.RICH else (upbit.asks, binance.bids)
        depth = min(depth_qty(up_side, self.p.depth_levels), depth_qty(bn_side, self.p.depth_levels))
        return min(qty, depth * self.p.depth_fraction)

    def _entry(self, now_ms, upbit, binance, fx, baseline) -> OrderIntent | None:
        best = None
        for direction in self.p.directions:
            qty = self._size(upbit, binance, direction)
            if qty <= 0:
                continue
            quote = entry_quote(direction, upbit, binance, fx, qty)
            if not quote.complete:
                continue
            stretch = edge(direction, quote.premium, baseline)
            net = stretch - self.fees
            if net < self.p.entry_edge_bps * BPS:
                continue
            if self.p.mode == "zscore":
                z = stretch / self.window.std
                if z < self.p.z_entry:
                    continue
                reason = f"z={z:.2f} net={net / BPS:.1f}bps"
            else:
                reason = f"net={net / BPS:.1f}bps"
            if best is None or net > best[0]:
                best = (net, direction, quote, reason)
        if best is None:
            return None
        _, direction, quote, reason = best
        self.seq += 1
        pid = f"{self.symbol}-p{self.seq}"
        return OrderIntent(f"{pid}-entry", self.symbol, now_ms, Purpose.ENTRY, direction, quote.qty,
                           quote.premium, reason, pid)

    def _exit(self, now_ms, upbit, binance, fx, baseline) -> OrderIntent | None:
        pos = self.position
        quote = exit_quote(pos.direction, upbit, binance, fx, pos.qty)
        reason = None
        if quote.complete:
            locked = edge(pos.direction, pos.entry_premium, quote.premium) - self.fees
            reverted = edge(pos.direction, quote.premium, baseline) <= self.p.exit_edge_bps * BPS
            if locked <= -self.p.stop_loss_bps * BPS:
                reason = "stop_loss"
            elif locked >= self.p.take_profit_bps * BPS:
                reason = "take_profit"
            elif reverted:
                reason = "reversal"
        if reason is None and now_ms - pos.entry_ts_ms >= self.p.max_hold_ms:
            reason = "time_limit"
        if reason is None:
            return None
        return OrderIntent(f"{pos.position_id}-exit", self.symbol, now_ms, Purpose.EXIT, pos.direction,
                           pos.qty, quote.premium, reason, pos.position_id)

    # -- told by the coordinator -----------------------------------------------------------
    def on_opened(self, view: PositionView) -> None:
        self.position, self.pending = view, False

    def on_closed(self, now_ms: int) -> None:
        """Position closed (or entry failed): flat again, cooldown starts."""
        self.position, self.pending = None, False
        self.cooldown_until_ms = now_ms + self.p.cooldown_ms

    def on_rejected(self, now_ms: int) -> None:
        """The coordinator refused the intent. A refused entry waits reject_cooldown_ms before the next
        try: a guard that binds (exposure, open positions, a degraded venue) would otherwise be asked
        again on every book, each time a decision recorded, stored and alerted."""
        self.pending = False
        if self.position is None:
            self.cooldown_until_ms = max(self.cooldown_until_ms, now_ms + self.p.reject_cooldown_ms)

    def to_dict(self) -> dict:
        pos = self.position
        return {"window": list(self.window.values), "next_sample_ms": self.next_sample_ms,
                "cooldown_until_ms": self.cooldown_until_ms, "pending": self.pending, "seq": self.seq,
                "position": None if pos is None else [pos.position_id, pos.direction.value, pos.qty,
                                                      pos.entry_premium, pos.entry_ts_ms]}

    def restore(self, d: dict) -> None:
        self.window = RollingWindow(self.p.z_window, d["window"])
        self.next_sample_ms, self.cooldown_until_ms = d["next_sample_ms"], d["cooldown_until_ms"]
        self.pending, self.seq = d["pending"], d["seq"]
        pos = d["position"]
        self.position = None if pos is None else PositionView(pos[0], Direction(pos[1]), *pos[2:])
