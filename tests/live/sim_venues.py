"""Test support: LiveVenues built with real ccxt against a running simulator (tests.sim.support)."""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

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
    exchange = open_exchange(venue, sim_keys(account, secret=secret), sim.urls(), pro=pro, rate_limit=False)
    lv = LiveVenue(venue, exchange, lambda coin: SIM_RULES[venue], run_tag, backoff, **kwargs)
    try:
        await lv.start()
        yield lv
    finally:
        await lv.close()
