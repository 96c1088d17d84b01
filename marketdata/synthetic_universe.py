"""The synthetic Top-N universe: real top tickers listed on both venues, with price levels and depth scale.

Names are real so the exchange simulator can list them as markets; the books built on them are
SYNTHETIC. Price levels: an approximate USD table for the largest coins (August 2025), a seeded
log-uniform draw between 0.05 and 50 USD for the rest. Depth scale (notional, relative to BTC):
rank ** -DEPTH_DECAY, an assumption: the data holds real depth for BTC only.
"""
from __future__ import annotations

import numpy as np

SYNTHETIC = True

TOP_COINS: tuple[str, ...] = (
    "BTC", "ETH", "XRP", "SOL", "DOGE", "ADA", "TRX", "LINK", "AVAX", "XLM",
    "SUI", "BCH", "HBAR", "DOT", "LTC", "SHIB", "TON", "UNI", "PEPE", "NEAR",
    "APT", "ETC", "AAVE", "ONDO", "ICP", "TRUMP", "POL", "ARB", "ATOM", "RENDER",
    "FIL", "ALGO", "VET", "SEI", "STX", "IMX", "OP", "INJ", "GRT", "TIA",
    "CRV", "LDO", "SAND", "MANA", "AXS", "THETA", "XTZ", "EOS", "FLOW", "CHZ",
    "ENS", "BONK", "JUP", "PYTH", "WLD", "ENA", "PENDLE", "STRK", "ZRO", "EGLD",
    "KAIA", "BAT", "ZIL", "IOTA", "NEO", "QTUM", "ANKR", "1INCH", "COMP", "SNX",
    "GMT", "APE", "BLUR", "MASK", "SUSHI", "YFI", "ZRX", "KAVA", "CELO", "ONT",
    "ICX", "IOST", "HIVE", "STEEM", "GLM", "SXP", "STORJ", "AUDIO", "ARKM", "ID",
    "MINA", "ASTR", "JTO", "W", "ME", "MOVE", "LAYER", "VIRTUAL", "BERA", "ANIME",
)
assert len(TOP_COINS) == len(set(TOP_COINS)) == 100

PRICE_USD: dict[str, float] = {
    "BTC": 115_000.0, "ETH": 4_700.0, "XRP": 3.0, "SOL": 200.0, "DOGE": 0.23, "ADA": 0.9, "TRX": 0.36,
    "LINK": 25.0, "AVAX": 24.0, "XLM": 0.4, "SUI": 3.6, "BCH": 580.0, "HBAR": 0.24, "DOT": 4.0,
    "LTC": 118.0, "SHIB": 0.000013, "TON": 3.3, "UNI": 10.0, "PEPE": 0.00001, "NEAR": 2.6,
}
DEPTH_DECAY = 0.8


def universe(n: int, seed: int) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(coins, price in USDT, notional depth scale relative to BTC) for the top n coins."""
    if not 1 <= n <= len(TOP_COINS):
        raise ValueError(f"coins {n}: expected 1..{len(TOP_COINS)}")
    coins = TOP_COINS[:n]
    draws = np.exp(np.random.default_rng([seed, 7]).uniform(np.log(0.05), np.log(50.0), len(TOP_COINS)))
    prices = np.array([PRICE_USD.get(c, draws[i]) for i, c in enumerate(coins)])
    scale = np.arange(1, n + 1, dtype=float) ** -DEPTH_DECAY
    return coins, prices, scale


def binance_tick(price: np.ndarray) -> np.ndarray:
    """Binance-like ticks: about 4-5 significant digits, at most 0.01 (BTC/USDT, ETH/USDT use 0.01)."""
    return np.minimum(10.0 ** (np.floor(np.log10(price)) - 4), 0.01)
