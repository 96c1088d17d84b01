"""Risk guards in four tiers (symbol, route, venue, global) plus funding by balances.

`check_entry` returns the first guard that blocks an entry, or the size the balances allow.
Exits are never blocked by risk (only a frozen kill switch stops them, by policy).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from domain.orders import Direction, OrderIntent
from domain.params import RiskLimits

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class Decision:
    """One guard decision, recorded whether it allowed or blocked."""

    ts_ms: int
    symbol: str
    intent_id: str
    allowed: bool
    guard: str          # which guard decided ("ok" when none blocked)
    tier: str           # symbol | route | venue | global | balance
    detail: str
    qty: float          # size allowed (0 when blocked)


@dataclass(frozen=True, slots=True)
class Exposure:
    """Open notional (KRW) the coordinator holds now, by symbol and venue, and open positions."""

    by_symbol: dict[str, float]
    by_venue: dict[str, float]
    open_positions: int

    @property
    def total(self) -> float:
        return sum(self.by_symbol.values())


@dataclass(frozen=True, slots=True)
class Funding:
    """What the balances can pay for one entry, as coin quantities per leg."""

    upbit_qty: float       # coin Upbit can sell (RICH) or KRW can buy (CHEAP)
    binance_qty: float     # coin Binance can sell (CHEAP) or USDT can buy (RICH); perp: margin-limited
    upbit_coin: float      # coin held on Upbit now
    total_coin: float      # coin held on both spot venues (0 with the perp hedge: no transfer risk)
    upbit_sells: bool      # the trade moves coin out of Upbit (RICH) or into it (CHEAP)

    def share_after(self, qty: float) -> float:
        """The largest venue's share of the coin's inventory after trading `qty`."""
        if self.total_coin <= 0:
            return 0.0
        up = self.upbit_coin - qty if self.upbit_sells else self.upbit_coin + qty
        return max(up, self.total_coin - up) / self.total_coin


@dataclass(slots=True)
class RiskState:
    """Counters the guards need; part of the coordinator snapshot."""

    consecutive_losses: dict[str, int] = field(default_factory=dict)
    paused_until: dict[str, int] = field(default_factory=dict)
    route_trades: dict[str, deque] = field(default_factory=dict)
    daily_pnl: dict[int, float] = field(default_factory=dict)
    degraded_venues: set[str] = field(default_factory=set)
    frozen: str = ""       # non-empty: kill switch engaged, with its reason
    triggers: dict[str, int] = field(default_factory=dict)

    def on_round_trip(self, symbol: str, ts_ms: int, pnl_krw: float, limits: RiskLimits) -> None:
        day = ts_ms // DAY_MS
        self.daily_pnl[day] = self.daily_pnl.get(day, 0.0) + pnl_krw
        losses = self.consecutive_losses.get(symbol, 0) + 1 if pnl_krw <= 0 else 0
        self.consecutive_losses[symbol] = losses
        if losses >= limits.max_consecutive_losses:
            self.paused_until[symbol] = ts_ms + limits.loss_pause_ms
            self.consecutive_losses[symbol] = 0

    def on_entry(self, symbol: str, ts_ms: int) -> None:
        self.route_trades.setdefault(symbol, deque()).append(ts_ms)

    def to_dict(self) -> dict:
        """Plain copies (never the live dicts), so a taken snapshot does not change afterwards."""
        return {"consecutive_losses": dict(self.consecutive_losses), "paused_until": dict(self.paused_until),
                "route_trades": {k: list(v) for k, v in self.route_trades.items()},
                "daily_pnl": {str(k): v for k, v in self.daily_pnl.items()},
                "degraded_venues": sorted(self.degraded_venues), "frozen": self.frozen,
                "triggers": dict(self.triggers)}

    @classmethod
    def from_dict(cls, d: dict) -> "RiskState":
        return cls(dict(d["consecutive_losses"]), dict(d["paused_until"]),
                   {k: deque(v) for k, v in d["route_trades"].items()},
                   {int(k): v for k, v in d["daily_pnl"].items()}, set(d["degraded_venues"]),
                   d["frozen"], dict(d["triggers"]))


def check_entry(intent: OrderIntent, price_krw: float, limits: RiskLimits, state: RiskState,
                exposure: Exposure, funding: Funding, venues: tuple[str, str],
                min_qty: float) -> Decision:
    """Walk the guards from the narrowest tier to the widest; the first to block decides."""
    sym, now = intent.symbol, intent.ts_ms
    qty = min(intent.qty, funding.upbit_qty, funding.binance_qty)
    notional = qty * price_krw

    def block(guard: str, tier: str, detail: str) -> Decision:
        state.triggers[guard] = state.triggers.get(guard, 0) + 1
        return Decision(now, sym, intent.intent_id, False, guard, tier, detail, 0.0)

    if state.frozen:
        return block("kill_switch", "global", f"trading frozen: {state.frozen}")
    # symbol tier
    if state.paused_until.get(sym, 0) > now:
        return block("consecutive_losses", "symbol", f"paused until {state.paused_until[sym]}")
    if exposure.by_symbol.get(sym, 0.0) + notional > limits.max_position_krw:
        qty = max(0.0, (limits.max_position_krw - exposure.by_symbol.get(sym, 0.0)) / price_krw)
        notional = qty * price_krw
    # route tier
    trades = state.route_trades.get(sym)
    if trades is not None:
        while trades and trades[0] <= now - HOUR_MS:
            trades.popleft()
        if len(trades) >= limits.max_route_trades_per_hour:
            return block("route_frequency", "route", f"{len(trades)} entries in the last hour")
    # venue tier
    for venue in venues:
        if venue in state.degraded_venues:
            return block("venue_degraded", "venue", f"{venue} is degraded")
        if exposure.by_venue.get(venue, 0.0) + notional > limits.max_venue_exposure_krw:
            return block("venue_exposure", "venue", f"{venue} exposure would exceed {limits.max_venue_exposure_krw:.0f} KRW")
    # global tier
    if exposure.open_positions >= limits.max_open_positions:
        return block("max_open_positions", "global", f"{exposure.open_positions} open")
    if exposure.total + notional > limits.max_total_exposure_krw:
        return block("total_exposure", "global", f"total exposure would exceed {limits.max_total_exposure_krw:.0f} KRW")
    if state.daily_pnl.get(now // DAY_MS, 0.0) <= -limits.daily_loss_limit_krw:
        return block("daily_loss", "global", f"daily loss {state.daily_pnl[now // DAY_MS]:.0f} KRW at limit")
    share = funding.share_after(qty)
    if share > limits.max_inventory_imbalance:
        return block("inventory_imbalance", "global", f"a venue would hold {share:.0%} of the coin")
    # balances
    if qty < min_qty or qty <= 0:
        return block("insufficient_balance", "balance",
                     f"balances fund {qty:.8f} (upbit {funding.upbit_qty:.8f}, binance {funding.binance_qty:.8f}), need {min_qty:.8f}")
    return Decision(now, sym, intent.intent_id, True, "ok", "", f"qty {qty:.8f}", qty)


def funding_for(direction: Direction, hedge: str, upbit_coin: float, upbit_krw: float,
                binance_coin: float, binance_quote: float, upbit_px: float, binance_px: float,
                fee_up: float, fee_bn: float) -> Funding:
    """Coin quantities each venue's balances can trade for this direction, fees included."""
    if direction is Direction.RICH:      # sell coin on Upbit, buy on Binance (spot or perp long)
        up = upbit_coin
        bn = binance_quote / (binance_px * (1 + fee_bn))
    else:                                # buy coin on Upbit, sell on Binance (spot or perp short)
        up = upbit_krw / (upbit_px * (1 + fee_up))
        bn = binance_quote / (binance_px * (1 + fee_bn)) if hedge == "perp" else binance_coin
    total = 0.0 if hedge == "perp" else upbit_coin + binance_coin
    return Funding(max(up, 0.0), max(bn, 0.0), upbit_coin, total, direction is Direction.RICH)
