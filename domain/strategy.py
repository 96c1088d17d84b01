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
    """Mean and population standard deviation of the last `size` samples, exact and O(1) per push.

    A double is an integer times 2**-k, so the window keeps its sums as integers at the finest
    scale any sample needed: pushing and evicting never accumulates rounding. The mean equals
    math.fsum(values) / n and the variance is the exact one, correctly rounded. (The backtest
    pushes one sample per coin every z_sample_ms for weeks: recomputing over the window each time
    was most of its cost.)
    """

    def __init__(self, size: int, samples: list[float] | None = None):
        self.values: deque[float] = deque(maxlen=size)
        self.mean = 0.0
        self.std = 0.0
        self._shift = 0            # the sums are in units of 2**-_shift (squares: 2**-(2 * _shift))
        self._ints: deque[int] = deque()   # the samples in those units
        self._s1 = 0
        self._s2 = 0
        for x in samples or ():
            self.push(x)

    def push(self, x: float) -> None:
        try:
            num, den = x.as_integer_ratio()
        except (ValueError, OverflowError, AttributeError):
            raise ValueError(f"z-score window sample {x!r} is not a finite number") from None
        k = den.bit_length() - 1
        if k > self._shift:        # a finer sample than any before: rescale, still exact
            self._rescale(k)
        shift = self._shift
        v = num << (shift - k)
        ints = self._ints
        if len(ints) == self.values.maxlen:
            old = ints.popleft()
            self._s1 -= old
            self._s2 -= old * old
        self.values.append(x)
        ints.append(v)
        s1 = self._s1 = self._s1 + v
        s2 = self._s2 = self._s2 + v * v
        n = len(ints)
        self.mean = s1 / (1 << shift) / n   # int / int rounds correctly, as fsum does
        self.std = math.sqrt((n * s2 - s1 * s1) / ((n * n) << (2 * shift))) if n > 1 else 0.0

    def copy(self) -> "RollingWindow":
        twin = RollingWindow.__new__(RollingWindow)
        twin.values, twin._ints = self.values.copy(), self._ints.copy()
        twin.mean, twin.std = self.mean, self.std
        twin._shift, twin._s1, twin._s2 = self._shift, self._s1, self._s2
        return twin

    def _rescale(self, k: int) -> None:
        d = k - self._shift
        self._ints = deque(v << d for v in self._ints)
        self._s1 <<= d
        self._s2 <<= 2 * d
        self._shift = k

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

    def entry_possible(self, up_bid: float, up_ask: float, bn_bid: float, bn_ask: float,
                       fx_bid: float, fx_ask: float) -> bool:
        """False only when no entry can pass at these top-of-book prices (a conservative screen).

        A depth walk never beats the best level (selling walks bids down, buying walks asks up),
        so the top-of-book premium bounds each direction's stretch from above; the backtest's
        fast path skips an evaluation only when this bound misses the entry threshold.
        """
        baseline, ready = self._baseline()
        if not ready:
            return False
        need = self.fees + self.p.entry_edge_bps * BPS
        if self.p.mode == "zscore":
            need = max(need, self.p.z_entry * self.window.std)
        need -= SCREEN_MARGIN
        rich = up_bid / (bn_ask * fx_ask) - 1.0 - baseline
        cheap = baseline - (up_ask / (bn_bid * fx_bid) - 1.0)
        return rich >= need or cheap >= need

    def entry_bounds(self, window: RollingWindow | None = None) -> tuple[float, float] | None:
        """entry_possible as two price-ratio limits for a window (default: the strategy's own; None: not ready).

        An entry may pass only if up_bid / (bn_ask * fx_ask) >= the first (Upbit rich) or
        up_ask / (bn_bid * fx_bid) <= the second (Upbit cheap); they change only at samples.
        """
        window = self.window if window is None else window
        baseline, ready = self._baseline(window)
        if not ready:
            return None
        need = self.fees + self.p.entry_edge_bps * BPS
        if self.p.mode == "zscore":
            need = max(need, self.p.z_entry * window.std)
        need -= 2 * SCREEN_MARGIN
        return 1.0 + baseline + need, 1.0 + baseline - need

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

    def baseline(self, window: RollingWindow | None = None) -> float:
        """The level the premium is measured from: fixed (absolute) or the window's mean (z-score)."""
        return self._baseline(self.window if window is None else window)[0]

    def _baseline(self, window: RollingWindow | None = None) -> tuple[float, bool]:
        if self.p.mode == "absolute":
            return self.p.baseline_bps * BPS, True
        window = self.window if window is None else window
        return window.mean, len(window) >= self.p.z_min_samples and window.std > 0

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

    def on_rejected(self) -> None:
        self.pending = False

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
