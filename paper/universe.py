"""The tradable universe: coins listed on both venues as the same asset, ranked by traded value.

A ticker is not an identity. Upbit's KRW-TON is Tokamak Network while Binance's TONUSDT is Toncoin;
ccxt knows this (its commonCurrencies renames Upbit's TON), so a coin is tradable only when both
venues' markets resolve to the same unified base. Pure functions over ccxt's loaded markets.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from domain.symbols import FX_SYMBOL


def market_id(venue: str, coin: str) -> str:
    """The venue's own market id for `coin` (the FX book is KRW-USDT on Upbit)."""
    return f"KRW-{coin}" if venue == "upbit" else f"{coin}USDT"


def _find(venue: str, coin: str, markets_by_id: dict) -> dict | None:
    """The ccxt market for `coin` on `venue`: spot on Upbit and Binance, the linear swap on USDT-M."""
    for market in markets_by_id.get(market_id(venue, coin)) or ():
        if venue == "binance_usdm" and market.get("swap") and market.get("linear"):
            return market
        if venue != "binance_usdm" and market.get("spot"):
            return market
    return None


@dataclass(frozen=True)
class Universe:
    """The coins both venues list as the same asset, with each venue's ccxt symbol, and why others left."""

    coins: tuple[str, ...]
    symbols: dict[str, dict[str, str]]            # venue -> coin -> ccxt symbol
    excluded: dict[str, str] = field(default_factory=dict)   # coin -> reason

    def notes(self) -> list[str]:
        return [f"{coin} left out: {why}" for coin, why in sorted(self.excluded.items())]


def resolve(coins: list[str], markets_by_id: dict[str, dict], top_n: int | None = None) -> Universe:
    """Keep the coins (in the given rank order) that every venue in `markets_by_id` lists as the same base.

    `markets_by_id` maps venue -> ccxt's `markets_by_id` after load_markets. Upbit also needs KRW-USDT.
    """
    if "upbit" in markets_by_id and _find("upbit", FX_SYMBOL, markets_by_id["upbit"]) is None:
        raise ValueError("universe: Upbit lists no KRW-USDT market; the USDT/KRW rate cannot be read")
    kept: list[str] = []
    symbols: dict[str, dict[str, str]] = {v: {} for v in markets_by_id}
    excluded: dict[str, str] = {}
    for coin in coins:
        found = {v: _find(v, coin, by_id) for v, by_id in markets_by_id.items()}
        missing = [v for v, m in found.items() if m is None]
        bases = {m["base"] for m in found.values() if m is not None}
        if missing:
            excluded[coin] = f"not listed on {', '.join(missing)}"
        elif len(bases) > 1:
            excluded[coin] = f"different assets under one ticker ({' vs '.join(sorted(bases))})"
        elif top_n is None or len(kept) < top_n:
            kept.append(coin)
            for venue, market in found.items():
                symbols[venue][coin] = market["symbol"]
    if "upbit" in symbols:
        symbols["upbit"][FX_SYMBOL] = _find("upbit", FX_SYMBOL, markets_by_id["upbit"])["symbol"]
    return Universe(tuple(kept), symbols, excluded)


def rank_by_traded_value(upbit_tickers: dict, binance_tickers: dict, usdt_krw: float) -> list[str]:
    """Coins on both venues, by 24 h traded value in KRW (Upbit's KRW turnover + Binance's USDT turnover x rate)."""
    def turnover(tickers: dict, quote: str) -> dict[str, float]:
        out = {}
        for symbol, t in tickers.items():
            base, _, q = symbol.partition("/")
            if q == quote and t.get("quoteVolume") is not None:
                out[base] = float(t["quoteVolume"])
        return out
    krw, usdt = turnover(upbit_tickers, "KRW"), turnover(binance_tickers, "USDT")
    both = (set(krw) & set(usdt)) - {FX_SYMBOL}
    return sorted(both, key=lambda c: (-(krw[c] + usdt[c] * usdt_krw), c))
