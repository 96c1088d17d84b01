"""Typed run profile: every key has a type, a description and bounds; unknown keys are refused.

The models only check what one field can check on its own (type, bounds, spelling). Rules that
involve several keys or the disk (threshold order, data coverage, loopback endpoints) live in
config/checks.py so each message can name the key it is about.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from config.paths import REPO, data_dir
from domain.orders import Direction
from domain.params import FxParams, Market, RiskLimits, StrategyParams
from domain.symbols import Symbol
from domain.venues import DEFAULT_FEES, Venue, VenueRules

MINUTE_MS = 60_000
DAY_MS = 86_400_000
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
PROFILE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _ticker(value: str) -> str:
    try:
        Symbol(value)
    except ValueError:
        raise ValueError("expected an upper-case coin ticker like 'BTC'") from None
    return value


def _env_name(value: str) -> str:
    if not ENV_NAME.match(value):
        raise ValueError("expected an environment variable name like 'ARB_LIVE_ACK'")
    return value


def _profile_name(value: str) -> str:
    if not PROFILE_NAME.match(value):
        raise ValueError("expected a lower-case name of letters, digits and '-'")
    return value


Ticker = Annotated[str, AfterValidator(_ticker)]
EnvName = Annotated[str, AfterValidator(_env_name)]
Balance = Annotated[float, Field(ge=0, description="starting balance; never negative")]
VenueName = Literal["upbit", "binance", "binance_usdm"]


def _default(params_cls: type, name: str) -> Any:
    """The domain dataclass's own default, so profile defaults and domain defaults never drift."""
    for f in dataclasses.fields(params_cls):
        if f.name == name:
            return f.default
    raise KeyError(f"{params_cls.__name__} has no field {name!r}")


class Section(BaseModel):
    """Base of every profile section: frozen, strict types (YAML gives native ones), no extras."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Universe(Section):
    """Which coins to trade: an explicit list, or the top N by traded value at start."""

    symbols: tuple[Ticker, ...] | None = Field(
        None, strict=False, min_length=1, max_length=200, description="coin tickers, e.g. [BTC, ETH]")
    top_n: int | None = Field(None, ge=1, le=200, description="rank coins listed on both venues")


class DataSpec(Section):
    """Backtest input. Relative paths are under config.paths.data_dir(); absolute paths as given."""

    kind: Literal["candles", "books"] = Field(description="candles (CSV/Parquet) or L2 books (Parquet)")
    upbit_candles: str | None = Field(None, min_length=1, description="Upbit KRW candle file")
    binance_candles: str | None = Field(None, min_length=1, description="Binance USDT candle file")
    books: str | None = Field(None, min_length=1, description="Parquet books file (marketdata format)")
    synthetic_seed: int | None = Field(
        None, ge=0, description="kind books without a file: generate SYNTHETIC books with this seed")
    synthetic_days: float | None = Field(None, gt=0, le=30, description="length of the synthetic run")

    def resolve(self, name: str) -> Path | None:
        """Absolute path of one of the file keys, or None when it is not set."""
        raw = getattr(self, name)
        if raw is None:
            return None
        path = Path(raw)
        return path if path.is_absolute() else data_dir() / path


class VenueRulesSpec(Section):
    """One venue's taker fee, tick, lot, minimum notional and fill latency (domain.venues)."""

    taker_fee: float = Field(ge=0, lt=0.01, description="fraction of notional, 0.0005 = 0.05%")
    tick_size: float = Field(ge=0, le=1e6, description="price increment; 0 = Upbit's KRW tick table")
    lot_size: float = Field(gt=0, le=1e6, description="quantity increment")
    min_notional: float = Field(ge=0, le=1e9, description="in the venue's quote currency")
    latency_ms: int = Field(30, ge=0, le=60_000, description="decision-to-fill delay of the fill model")

    def to_domain(self, venue: Venue) -> VenueRules:
        return VenueRules(venue, self.taker_fee, self.tick_size, self.lot_size,
                          self.min_notional, self.latency_ms)


def _real_rules(venue: Venue, tick: float, lot: float, min_notional: float) -> VenueRulesSpec:
    return VenueRulesSpec(taker_fee=DEFAULT_FEES[venue], tick_size=tick, lot_size=lot,
                          min_notional=min_notional)


class Venues(Section):
    """VenueRules per venue; defaults are the real regular-tier fees and BTC market filters."""

    upbit: VenueRulesSpec = Field(default_factory=lambda: _real_rules(Venue.UPBIT, 0, 1e-8, 5000))
    binance: VenueRulesSpec = Field(default_factory=lambda: _real_rules(Venue.BINANCE, 0.01, 1e-5, 5))
    binance_usdm: VenueRulesSpec = Field(
        default_factory=lambda: _real_rules(Venue.BINANCE_USDM, 0.1, 0.001, 5))


class Endpoint(Section):
    """Where ccxt reaches one venue: REST base URL and WebSocket URL."""

    rest: str = Field(pattern=r"^https?://\S+$", description="http(s)://host[:port][/path]")
    # Binance: the stream base without /ws (sim.ccxt_overrides appends it); Upbit: the full URL.
    ws: str = Field(pattern=r"^wss?://\S+$", description="ws(s)://host[:port][/path]")


class Fx(Section):
    """USDT/KRW source: Upbit's KRW-USDT book, or a fixed rate (never a silent default)."""

    source: Literal["book", "fixed"] = Field(description="book (Upbit KRW-USDT) or fixed")
    fixed_usdt_krw: float | None = Field(None, ge=100, le=10_000, description="KRW per USDT")
    usd_krw_reference: float | None = Field(None, ge=100, le=10_000, description="reported only")


class Strategy(Section):
    """All fields of domain.params.StrategyParams, with bounds. bps = 1/10,000; times in ms."""

    mode: Literal["absolute", "zscore"] = Field(_default(StrategyParams, "mode"))
    order_notional_krw: float = Field(_default(StrategyParams, "order_notional_krw"), gt=0, le=1e10)
    entry_edge_bps: float = Field(_default(StrategyParams, "entry_edge_bps"), ge=0, le=2000,
                                  description="premium beyond baseline, net of the 4 taker fees")
    baseline_bps: float = Field(_default(StrategyParams, "baseline_bps"), ge=-5000, le=5000)
    z_entry: float = Field(_default(StrategyParams, "z_entry"), gt=0, le=20)
    z_window: int = Field(_default(StrategyParams, "z_window"), ge=2, le=100_000)
    z_sample_ms: int = Field(_default(StrategyParams, "z_sample_ms"), ge=1, le=DAY_MS)
    z_min_samples: int = Field(_default(StrategyParams, "z_min_samples"), ge=2, le=100_000)
    take_profit_bps: float = Field(_default(StrategyParams, "take_profit_bps"), gt=0, le=10_000)
    stop_loss_bps: float = Field(_default(StrategyParams, "stop_loss_bps"), gt=0, le=10_000)
    exit_edge_bps: float = Field(_default(StrategyParams, "exit_edge_bps"), ge=-2000, le=2000)
    max_hold_ms: int = Field(_default(StrategyParams, "max_hold_ms"), gt=0, le=30 * DAY_MS)
    cooldown_ms: int = Field(_default(StrategyParams, "cooldown_ms"), ge=0, le=DAY_MS)
    reject_cooldown_ms: int = Field(_default(StrategyParams, "reject_cooldown_ms"), ge=0, le=DAY_MS,
                                    description="no new entry on a symbol this long after a refused one")
    max_book_age_ms: int = Field(_default(StrategyParams, "max_book_age_ms"), gt=0, le=DAY_MS)
    depth_levels: int = Field(_default(StrategyParams, "depth_levels"), ge=1, le=50)
    depth_fraction: float = Field(_default(StrategyParams, "depth_fraction"), gt=0, le=1)
    directions: tuple[Literal["upbit_rich", "upbit_cheap"], ...] = Field(
        ("upbit_rich", "upbit_cheap"), strict=False, min_length=1, max_length=2)
    hedge: Literal["inventory", "perp"] = Field(_default(StrategyParams, "hedge"))


class Risk(Section):
    """All fields of domain.params.RiskLimits: symbol, route, venue and global guards (KRW)."""

    max_position_krw: float = Field(_default(RiskLimits, "max_position_krw"), gt=0, le=1e12)
    max_consecutive_losses: int = Field(_default(RiskLimits, "max_consecutive_losses"), ge=1, le=1000)
    loss_pause_ms: int = Field(_default(RiskLimits, "loss_pause_ms"), ge=0, le=7 * DAY_MS)
    max_route_trades_per_hour: int = Field(
        _default(RiskLimits, "max_route_trades_per_hour"), ge=1, le=3600)
    max_venue_exposure_krw: float = Field(_default(RiskLimits, "max_venue_exposure_krw"), gt=0, le=1e12)
    max_total_exposure_krw: float = Field(_default(RiskLimits, "max_total_exposure_krw"), gt=0, le=1e12)
    max_open_positions: int = Field(_default(RiskLimits, "max_open_positions"), ge=1, le=1000)
    daily_loss_limit_krw: float = Field(_default(RiskLimits, "daily_loss_limit_krw"), gt=0, le=1e12)
    max_inventory_imbalance: float = Field(_default(RiskLimits, "max_inventory_imbalance"), ge=0.5, le=1)


class Execution(Section):
    """Leg-risk policy for an orphan leg, and the perpetual funding rate assumed per 8 h."""

    leg_risk_policy: Literal["unwind", "complete"] = Field(_default(Market, "leg_risk_policy"))
    funding_rate_8h: float = Field(_default(Market, "funding_rate_8h"), ge=-0.01, le=0.01)


class Storage(Section):
    """SQLAlchemy URL for trades and KPIs, and the Redis URL for actor snapshots."""

    url: str = Field("sqlite:///runs/arbitrage.db", min_length=1, description="sqlite:/// or postgresql://")
    redis_url: str = Field("redis://127.0.0.1:6379/0", pattern=r"^rediss?://\S+$")


class Outputs(Section):
    """Where a run writes its KPI JSON and report; relative paths are under the repo."""

    dir: str = Field("runs", min_length=1)
    kpi_checkpoint_s: int = Field(60, ge=1, le=3600, description="KPI checkpoint period")
    report: bool = Field(True, description="write the HTML/PNG report at the end")


class Telegram(Section):
    """Telegram bot alerts; the token is read from the named environment variable, never the file."""

    api_url: str = Field("https://api.telegram.org", pattern=r"^https?://\S+$")
    bot_token_env: EnvName
    chat_id: str = Field(min_length=1)


class Slack(Section):
    """Slack incoming-webhook alerts; the webhook URL is a secret read from the environment."""

    webhook_url_env: EnvName


class Alerts(Section):
    """Alert destinations: a log file always, Telegram and Slack when configured."""

    log_file: str = Field("runs/alerts.log", min_length=1)
    telegram: Telegram | None = None
    slack: Slack | None = None


class Metrics(Section):
    """Prometheus exporter port; 0 turns it off."""

    port: int = Field(9108, ge=0, le=65535, description="0 = off")


class Actors(Section):
    """How a paper or live run cuts its actor graph (paper/graph.py)."""

    symbols_per_strategy: int = Field(25, ge=1, le=200, description="symbols one SymbolStrategyActor hosts "
                                      "(1: an actor per symbol; fewer, bigger actors cost less CPU on few cores)")
    flush_ms: float = Field(2, gt=0, le=1000, description="least time between two flushes of a feed's books")


class Live(Section):
    """Live-only arming inputs and caps; live/arming.py checks them against the environment."""

    ack_env: EnvName
    arm_timestamp_env: EnvName
    max_order_notional_krw: float = Field(gt=0, le=1e10)
    max_total_notional_krw: float = Field(gt=0, le=1e12)
    notional_bounds: tuple[float, float] = Field(strict=False, description="[min, max] allowed caps")
    secrets_file: str | None = Field(None, min_length=1, description="git-ignored YAML of API keys")
    # How the live coordinator trades, reconciles and kills (live.options.LiveOptions).
    kill_policy: Literal["flatten", "freeze"] = Field("flatten", description="what the kill switch does with positions")
    kill_on: tuple[Literal["stuck_leg", "daily_loss"], ...] = Field(
        ("stuck_leg", "daily_loss"), strict=False, description="breaches that engage the kill switch by themselves")
    kill_deadline_s: float = Field(60.0, gt=0, le=86_400, description="the kill switch retries failing venues this long")
    order_style: Literal["limit_ioc", "market"] = "limit_ioc"
    band_bps: float = Field(50.0, gt=0, le=500, description="limit IOC price band around the reference, bps")
    reconcile_s: float = Field(30.0, gt=0, le=86_400, description="seconds between reconciles with the venues")
    max_skew_ms: float = Field(1000.0, gt=0, le=60_000, description="preflight clock-skew limit per venue")
    lease_ttl_s: float = Field(30.0, ge=1, le=600, description="a crashed run's lease lapses after this; "
                               "until then no other process may trade its run id (live/lease.py)")


class Profile(Section):
    """One run profile (config/profiles/<name>.yaml), checked in full before any work starts."""

    name: Annotated[str, AfterValidator(_profile_name)] = Field(description="equals the file name")
    mode: Literal["backtest", "paper", "live"]
    universe: Universe
    data: DataSpec | None = None
    venues: Venues = Field(default_factory=Venues)
    endpoints: dict[VenueName, Endpoint] | None = None
    fx: Fx
    inventory: dict[VenueName, dict[Ticker, Balance]]
    inventory_per_coin_krw: dict[VenueName, Balance] | None = Field(
        None, description="KRW worth of every universe coin to hold per spot venue at start, converted "
                          "at the coin's first Upbit mid; a coin named in inventory keeps that balance")
    strategy: Strategy = Field(default_factory=Strategy)
    risk: Risk = Field(default_factory=Risk)
    execution: Execution = Field(default_factory=Execution)
    storage: Storage = Field(default_factory=Storage)
    outputs: Outputs = Field(default_factory=Outputs)
    alerts: Alerts = Field(default_factory=Alerts)
    metrics: Metrics = Field(default_factory=Metrics)
    actors: Actors = Field(default_factory=Actors)
    live: Live | None = None

    def symbols(self) -> tuple[Symbol, ...] | None:
        """The explicit coin list, or None when the universe is ranked (top_n) at start."""
        names = self.universe.symbols
        return None if names is None else tuple(Symbol(n) for n in names)

    def outputs_dir(self) -> Path:
        path = Path(self.outputs.dir)
        return path if path.is_absolute() else REPO / path

    def to_domain(self) -> DomainParams:
        """The frozen domain parameter objects the engine runs on."""
        s, r = self.strategy, self.risk
        strategy = StrategyParams(**{**s.model_dump(), "directions": tuple(
            Direction(d) for d in s.directions)})
        rules = {v: getattr(self.venues, v.value).to_domain(v) for v in Venue}
        return DomainParams(
            strategy=strategy,
            risk=RiskLimits(**r.model_dump()),
            fx=FxParams(**self.fx.model_dump()),
            market=Market(rules=rules, leg_risk_policy=self.execution.leg_risk_policy,
                          funding_rate_8h=self.execution.funding_rate_8h),
        )

    def canonical_json(self) -> str:
        """The resolved profile (defaults filled in) as sorted, compact JSON."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        """sha256 of the canonical JSON: the config digest a run's KPI file records."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


@dataclasses.dataclass(frozen=True, slots=True)
class DomainParams:
    """The domain objects one profile resolves to."""

    strategy: StrategyParams
    risk: RiskLimits
    fx: FxParams
    market: Market
