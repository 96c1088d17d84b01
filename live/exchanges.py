"""Build the ccxt clients a live run talks through: keys revealed here and nowhere else.

Endpoints (the profile's `endpoints`, e.g. the local simulator) are applied through configuration
only (sim.ccxt_overrides); without them ccxt uses the venues' production URLs.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro

from domain.venues import CCXT_ID, Venue
from live.secrets import ApiKeys
from sim.overrides import ccxt_overrides

NEEDS = {Venue.UPBIT: ("upbit",), Venue.BINANCE: ("binance", "binance_usdm"),
         Venue.BINANCE_USDM: ("binance", "binance_usdm")}


def endpoints_of(profile: Any) -> dict[str, dict[str, str]] | None:
    """The profile's endpoints as {venue: {rest, ws}}, or None for the production URLs."""
    if profile.endpoints is None:
        return None
    return {name: {"rest": e.rest, "ws": e.ws} for name, e in profile.endpoints.items()}


def exchange_config(venue: Venue, keys: ApiKeys | None, endpoints: Mapping[str, Any] | None,
                    rate_limit: bool = True) -> dict[str, Any]:
    """The ccxt constructor config for `venue`: keys, endpoints, and options live trading needs."""
    config: dict[str, Any] = {"enableRateLimit": rate_limit, "options": {}}
    if endpoints is not None:
        missing = [n for n in NEEDS[venue] if n not in endpoints]
        if missing:
            raise ValueError(f"endpoints: {venue.value} needs URLs for {', '.join(missing)} as well "
                             f"(Binance spot and USDT-M share one account)")
        overrides = ccxt_overrides(dict(endpoints), venue.value)
        config["urls"] = overrides["urls"]
        config["options"].update(overrides.get("options", {}))
    if venue is not Venue.UPBIT:
        # Listing every open order at once is what preflight and the kill switch need.
        config["options"]["warnOnFetchOpenOrdersWithoutSymbol"] = False
    if keys is not None:
        config["apiKey"] = keys.api_key.reveal()
        config["secret"] = keys.secret.reveal()
    return config


def open_exchange(venue: Venue, keys: ApiKeys | None, endpoints: Mapping[str, Any] | None = None,
                  pro: bool = True, rate_limit: bool = True) -> Any:
    """A ccxt.pro (streams and REST) or ccxt.async_support client for `venue`."""
    module = ccxt_pro if pro else ccxt_async
    return getattr(module, CCXT_ID[venue])(exchange_config(venue, keys, endpoints, rate_limit))
