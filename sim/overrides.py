"""The ccxt / ccxt.pro configuration that points an exchange at the simulator (no patching of ccxt)."""
from __future__ import annotations

from typing import Any

import ccxt

UNSUPPORTED = "/_sim/unsupported"  # answered with 404, so nothing ever leaves loopback


def _binance_api(urls: dict[str, Any]) -> dict[str, Any]:
    spot = urls["binance"]["rest"]
    usdm = urls["binance_usdm"]["rest"]
    base = spot.rsplit("/", 1)[0]
    api: dict[str, Any] = {}
    for name, real in ccxt.binance().urls["api"].items():
        if not isinstance(real, str):
            continue
        path = "/" + real.split("://", 1)[1].split("/", 1)[1]  # e.g. /api/v3, /fapi/v1, /sapi/v1
        if name in ("public", "private", "v1"):
            api[name] = spot + path
        elif name == "sapi":  # only what preflight asks: GET account/apiRestrictions
            api[name] = spot + path
        elif name.startswith("fapi"):
            api[name] = usdm + path
        else:
            api[name] = base + UNSUPPORTED + "/" + name
    spot_ws, usdm_ws = urls["binance"]["ws"], urls["binance_usdm"]["ws"]
    nowhere = base.replace("http://", "ws://") + UNSUPPORTED
    api["ws"] = {"spot": spot_ws + "/ws", "margin": spot_ws + "/ws", "linear": usdm_ws + "/ws",
                 "inverse": nowhere, "option": nowhere, "optionMarket": nowhere, "optionPrivate": nowhere,
                 "stock": nowhere, "papi": nowhere,
                 "ws-api": {"spot": spot.replace("http://", "ws://") + "/ws-api/v3",   # private order stream
                            "linear": nowhere, "inverse": nowhere}}
    return api


def ccxt_overrides(urls: dict[str, Any], venue: str) -> dict[str, Any]:
    """Config for ccxt.<id>(...) / ccxt.pro.<id>(...) so it talks to the simulator at `urls`.

    `venue` is "upbit", "binance" (spot) or "binance_usdm" (ccxt id binanceusdm). Merge it into the
    exchange config with apiKey/secret. Options switch off the private calls ccxt makes during
    load_markets that the simulator does not serve (currencies via sapi, margin pairs, COIN-M markets).
    """
    if venue == "upbit":
        rest, ws = urls["upbit"]["rest"], urls["upbit"]["ws"]
        return {"urls": {"api": {"public": rest, "private": rest, "ws": ws}},
                "options": {"watchOrderBook": {"limit": 30}}}
    if venue in ("binance", "binance_usdm"):
        options: dict[str, Any] = {"fetchCurrencies": False, "fetchMargins": False}
        if venue == "binance":
            options["fetchMarkets"] = {"types": ["spot"]}
        return {"urls": {"api": _binance_api(urls)}, "options": options}
    raise ValueError(f"ccxt_overrides: venue {venue!r} unknown; expected upbit, binance or binance_usdm")
