"""Test support: LiveVenues built with real ccxt against a running simulator (tests.sim.support)."""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from config.loader import load_profile
from config.schema import Endpoint, Fx, Storage
from domain.venues import Venue, VenueRules
from live.backoff import Backoff
from live.exchanges import open_exchange
from live.secrets import ApiKeys, Secret
from live.venue import LiveVenue
from sim import SimServer
from sim.binance_rest import DEFAULT_RULES
from tests.sim.support import KEY, SECRET

FAST = Backoff(base_s=0.01, factor=2.0, cap_s=0.05, attempts=6)
SIM_RULES = {Venue.UPBIT: VenueRules(Venue.UPBIT, 0.0005, 0.0, 1e-8, 5000.0),
             Venue.BINANCE: DEFAULT_RULES["binance"], Venue.BINANCE_USDM: DEFAULT_RULES["binance_usdm"]}


def sim_keys(account: str, key: str = KEY, secret: str = SECRET) -> ApiKeys:
    return ApiKeys(account, Secret(key), Secret(secret), "test")


@asynccontextmanager
async def live_venue(sim: SimServer, venue: Venue, *, backoff: Backoff = FAST, run_tag: str = "test-run",
                     secret: str = SECRET, pro: bool = True, **kwargs) -> AsyncIterator[LiveVenue]:
    """A started LiveVenue on the simulator's URLs (rules: the simulator's own filters)."""
    account = "upbit" if venue is Venue.UPBIT else "binance"
    exchange = kwargs.pop("exchange", None) or open_exchange(venue, sim_keys(account, secret=secret), sim.urls(),
                                                             pro=pro, rate_limit=False)
    lv = LiveVenue(venue, exchange, lambda coin: SIM_RULES[venue], run_tag, backoff, **kwargs)
    try:
        await lv.start()
        yield lv
    finally:
        await lv.close()


VENUE_NAMES = ("upbit", "binance", "binance_usdm")


def sim_profile(urls: dict, tmp_path: Path, hedge: str = "inventory", **update: Any):
    """live-example pointed at the simulator's URLs: fixed FX (the recording has no KRW-USDT book),
    SQLite under tmp_path, no secrets file; `update` replaces whole sections."""
    base = load_profile("live-example")
    fields: dict[str, Any] = {
        "endpoints": {v: Endpoint(rest=urls[v]["rest"], ws=urls[v]["ws"]) for v in VENUE_NAMES},
        "fx": Fx(source="fixed", fixed_usdt_krw=1383.7),
        "storage": Storage(url=f"sqlite:///{tmp_path / 'trades.db'}", redis_url="redis://127.0.0.1:6379/0"),
        "live": base.live.model_copy(update={"secrets_file": None}),
        "strategy": base.strategy.model_copy(update={"hedge": hedge})}
    if hedge == "perp":
        fields["inventory"] = {"upbit": {"KRW": 1_000_000.0, "BTC": 0.005}, "binance_usdm": {"USDT": 700.0}}
    fields.update(update)
    return base.model_copy(update=fields)


def key_env(key: str, secret: str) -> dict[str, str]:
    """The ARB_* variables for one key pair on both accounts."""
    return {"ARB_UPBIT_ACCESS_KEY": key, "ARB_UPBIT_SECRET_KEY": secret,
            "ARB_BINANCE_API_KEY": key, "ARB_BINANCE_API_SECRET": secret}
