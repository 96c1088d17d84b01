"""Symbol mapping between the coin (BTC), Upbit (KRW-BTC) and Binance (BTC/USDT, BTC/USDT:USDT)."""
from __future__ import annotations

from dataclasses import dataclass

FX_SYMBOL = "USDT"  # the Upbit KRW-USDT book gives the USDT/KRW rate


class UnknownSymbol(ValueError):
    """A market name that maps to no coin we know how to trade."""


@dataclass(frozen=True, slots=True)
class Symbol:
    """One coin listed on both venues, with each venue's own name for it."""

    base: str

    def __post_init__(self) -> None:
        if not self.base or not self.base.isalnum() or self.base != self.base.upper():
            raise UnknownSymbol(f"coin {self.base!r}: expected an upper-case ticker like 'BTC'")

    @property
    def upbit_market(self) -> str:        # Upbit REST/WS code
        return f"KRW-{self.base}"

    @property
    def upbit_ccxt(self) -> str:
        return f"{self.base}/KRW"

    @property
    def binance_id(self) -> str:          # Binance REST/WS id
        return f"{self.base}USDT"

    @property
    def binance_spot_ccxt(self) -> str:
        return f"{self.base}/USDT"

    @property
    def binance_perp_ccxt(self) -> str:
        return f"{self.base}/USDT:USDT"


def from_venue_name(name: str) -> Symbol:
    """Parse any venue's market name (KRW-BTC, BTC/KRW, BTCUSDT, BTC/USDT, BTC/USDT:USDT, BTC)."""
    raw = name.strip()
    if raw.startswith("KRW-"):
        return Symbol(raw[4:])
    if "/" in raw:
        base, quote = raw.split("/", 1)
        if quote.split(":")[0] in ("KRW", "USDT"):
            return Symbol(base)
        raise UnknownSymbol(f"market {name!r}: quote must be KRW or USDT")
    if raw.endswith("USDT") and len(raw) > 4:
        return Symbol(raw[:-4])
    if raw.isalnum() and raw.isupper():
        return Symbol(raw)
    raise UnknownSymbol(f"market {name!r}: not a KRW-XXX, XXX/KRW, XXXUSDT or XXX/USDT name")
