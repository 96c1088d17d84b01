"""Frozen parameter sets the domain runs on. config/ builds them from a checked profile."""
from __future__ import annotations

from dataclasses import dataclass, field

from domain.orders import Direction
from domain.venues import Venue, VenueRules


@dataclass(frozen=True, slots=True)
class StrategyParams:
    """Entry and exit rules of the premium strategy. bps = 1/10,000; times in milliseconds."""

    mode: str = "zscore"                  # "absolute" or "zscore"
    order_notional_krw: float = 5_000_000 # target size of one entry
    entry_edge_bps: float = 10.0          # premium beyond baseline, net of the 4 taker fees
    baseline_bps: float = 0.0             # absolute mode: level the premium reverts to
    z_entry: float = 2.0                  # zscore mode: |premium - mean| / std to enter
    z_window: int = 60                    # zscore mode: samples in the rolling window
    z_sample_ms: int = 60_000             # zscore mode: one sample of the mid premium per period
    z_min_samples: int = 20               # zscore mode: no entry before this many samples
    take_profit_bps: float = 10.0         # exit when the locked-in net PnL reaches this
    stop_loss_bps: float = 50.0           # exit when the locked-in net PnL falls below -this
    exit_edge_bps: float = 0.0            # reversal exit: premium back within this of baseline
    max_hold_ms: int = 6 * 3_600_000      # time-limit exit
    cooldown_ms: int = 60_000             # no new entry on the symbol this long after an exit
    reject_cooldown_ms: int = 10_000      # ...nor this long after an entry the risk guards refused
    max_book_age_ms: int = 5_000          # books older than this (vs the clock) are not traded
    depth_levels: int = 10                # levels considered when sizing against depth
    depth_fraction: float = 0.5           # take at most this share of the depth shown
    directions: tuple[Direction, ...] = (Direction.RICH, Direction.CHEAP)
    hedge: str = "inventory"              # "inventory" (spot both venues) or "perp" (Binance USDT-M)

    def __post_init__(self) -> None:
        if self.mode not in ("absolute", "zscore"):
            raise ValueError(f"strategy.mode {self.mode!r}: expected 'absolute' or 'zscore'")
        if self.hedge not in ("inventory", "perp"):
            raise ValueError(f"strategy.hedge {self.hedge!r}: expected 'inventory' or 'perp'")
        if self.order_notional_krw <= 0:
            raise ValueError("strategy.order_notional_krw must be > 0")
        if not 0 < self.depth_fraction <= 1:
            raise ValueError("strategy.depth_fraction must be in (0, 1]")
        if self.z_min_samples < 2 or self.z_window < self.z_min_samples:
            raise ValueError("strategy: need 2 <= z_min_samples <= z_window")


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Guards in four tiers: symbol, route, venue and global. Amounts in KRW."""

    max_position_krw: float = 20_000_000      # symbol: notional of one symbol's open position
    max_consecutive_losses: int = 3           # symbol: then the symbol pauses
    loss_pause_ms: int = 3_600_000            # symbol: how long that pause lasts
    max_route_trades_per_hour: int = 30       # route (Upbit-Binance pair of one symbol)
    max_venue_exposure_krw: float = 100_000_000  # venue: notional held open on one venue
    max_total_exposure_krw: float = 150_000_000  # global: notional of all open positions
    max_open_positions: int = 20              # global
    daily_loss_limit_krw: float = 3_000_000   # global circuit breaker on realised loss per UTC day
    max_inventory_imbalance: float = 0.8      # global: a venue's share of the coin's total inventory

    def __post_init__(self) -> None:
        for name in ("max_position_krw", "max_venue_exposure_krw", "max_total_exposure_krw",
                     "daily_loss_limit_krw"):
            if getattr(self, name) <= 0:
                raise ValueError(f"risk.{name} must be > 0")
        if self.max_position_krw > self.max_total_exposure_krw:
            raise ValueError("risk.max_position_krw must not exceed risk.max_total_exposure_krw")
        if not 0.5 <= self.max_inventory_imbalance <= 1:
            raise ValueError("risk.max_inventory_imbalance must be in [0.5, 1]")


@dataclass(frozen=True, slots=True)
class FxParams:
    """Where the USDT/KRW rate comes from. Never a silent default: the profile names it."""

    source: str                            # "book" (Upbit KRW-USDT) or "fixed"
    fixed_usdt_krw: float | None = None    # required when source == "fixed"
    usd_krw_reference: float | None = None # reported beside it (tether premium); not traded on

    def __post_init__(self) -> None:
        if self.source not in ("book", "fixed"):
            raise ValueError(f"fx.source {self.source!r}: expected 'book' or 'fixed'")
        if self.source == "fixed" and not (self.fixed_usdt_krw and self.fixed_usdt_krw > 0):
            raise ValueError("fx.fixed_usdt_krw must be a positive rate when fx.source is 'fixed'")


@dataclass(frozen=True, slots=True)
class Market:
    """Everything the engine needs to know about the venues: rules per venue, leg-risk policy."""

    rules: dict[Venue, VenueRules]         # default rules of each venue
    leg_risk_policy: str = "unwind"        # "unwind" the orphan or "complete" the missing leg
    funding_rate_8h: float = 0.0001        # perp hedge: funding paid by shorts when positive
    overrides: dict[tuple[Venue, str], VenueRules] = field(default_factory=dict)  # per coin

    def __post_init__(self) -> None:
        if self.leg_risk_policy not in ("unwind", "complete"):
            raise ValueError(f"leg_risk_policy {self.leg_risk_policy!r}: expected 'unwind' or 'complete'")

    def rules_for(self, venue: Venue, coin: str) -> VenueRules:
        return self.overrides.get((venue, coin)) or self.rules[venue]
