"""Preflight checks against one venue through an async ccxt-like exchange object.

Only ccxt's unified methods (fetch_time, fetch_balance, fetch_open_orders, fetch_positions) and
its implicit endpoints (Binance sapi_get_account_apirestrictions, Upbit private_get_api_keys and,
for the Date header, public_get_market_all) are called, so a real ccxt client, the loopback
simulator and a test double all fit.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from domain.venues import Venue
from live.preflight import CheckResult
from live.secrets import ApiKeys, Secret

EXPIRY_WARN_DAYS = 7


def _wall_ms() -> float:
    return time.time() * 1000


async def clock_check(venue: Venue, exchange: Any, max_skew_ms: float = 1000.0,
                      clock_ms: Callable[[], float] = _wall_ms) -> CheckResult:
    """The venue answers, and its clock is within `max_skew_ms` of ours (signed requests need it).

    Upbit has no time endpoint (ccxt's has['fetchTime'] is unset): its HTTP Date header is read
    instead, which has one-second resolution, so half a second of doubt is allowed on top.
    """
    name = f"{venue.value}.clock"
    by_header = isinstance(getattr(exchange, "has", None), Mapping) and not exchange.has.get("fetchTime")
    sent = clock_ms()
    server = await (_date_header_ms(exchange) if by_header else exchange.fetch_time())
    received = clock_ms()
    if by_header and server is None:
        return CheckResult(name, False, "the venue's reply carries no readable Date header")
    if not isinstance(server, (int, float)) or isinstance(server, bool) or server <= 0:
        return CheckResult(name, False, f"fetch_time returned {server!r}, not epoch milliseconds")
    doubt = 500.0 if by_header else 0.0
    skew = server + doubt - (sent + received) / 2  # the server stamped its time about mid round trip
    source = " from the Date header (+/-500 ms)" if by_header else ""
    detail = f"skew {skew:+.0f} ms{source} (limit {max_skew_ms:.0f}), round trip {received - sent:.0f} ms"
    return CheckResult(name, abs(skew) - doubt <= max_skew_ms, detail)


async def _date_header_ms(exchange: Any) -> float | None:
    """The server's time from the Date header of a light public request (start of its second)."""
    await exchange.public_get_market_all()
    raw = (getattr(exchange, "last_response_headers", None) or {}).get("Date")
    if not raw:
        return None
    try:
        return parsedate_to_datetime(raw).timestamp() * 1000
    except (TypeError, ValueError):
        return None


async def connect_check(venue: Venue, exchange: Any, markets: Collection[str] = (),
                        clock_ms: Callable[[], float] = _wall_ms) -> CheckResult:
    """The venue's public API answers and lists every market the profile trades (ccxt symbols)."""
    name = f"{venue.value}.connect"
    sent = clock_ms()
    listed = await exchange.load_markets()
    took = clock_ms() - sent
    missing = sorted(m for m in markets if m not in listed)
    if missing:
        return CheckResult(name, False, f"the venue does not list {', '.join(missing)}")
    return CheckResult(name, True, f"{len(listed)} markets in {took:.0f} ms"
                                   + (f", {len(markets)} traded ones listed" if markets else ""))


async def key_permissions_check(venue: Venue, exchange: Any, keys: ApiKeys | None,
                                now_ms: Callable[[], float] = _wall_ms) -> CheckResult:
    """The key is accepted, can trade this venue, and cannot withdraw (where the venue tells)."""
    if venue is Venue.UPBIT:
        return await _upbit_key(exchange, keys, now_ms())
    return await _binance_key(venue, exchange)


def _flag(value: Any) -> bool:
    # Binance answers booleans; some proxies and simulators send "true"/"false" strings.
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


async def _binance_key(venue: Venue, exchange: Any) -> CheckResult:
    name = f"{venue.value}.api_key"
    endpoint = getattr(exchange, "sapi_get_account_apirestrictions", None)
    if endpoint is None:
        return CheckResult(name, False, "exchange object has no sapi_get_account_apirestrictions; "
                                        "cannot verify withdrawals are disabled")
    answer = await endpoint()
    if not isinstance(answer, Mapping) or "enableWithdrawals" not in answer:
        return CheckResult(name, False, f"apiRestrictions answer lacks enableWithdrawals: {answer!r}")
    problems = []
    if _flag(answer["enableWithdrawals"]):
        problems.append("withdrawals are ENABLED on this key; use a key without withdrawal permission")
    trade_flag = "enableFutures" if venue is Venue.BINANCE_USDM else "enableSpotAndMarginTrading"
    if not _flag(answer.get(trade_flag)):
        problems.append(f"{trade_flag} is off: this key cannot trade {venue.value}")
    if problems:
        return CheckResult(name, False, "; ".join(problems))
    return CheckResult(name, True, f"key accepted, withdrawals disabled, {trade_flag} on")


async def _upbit_key(exchange: Any, keys: ApiKeys | None, now_ms: float) -> CheckResult:
    name = f"{Venue.UPBIT.value}.api_key"
    endpoint = getattr(exchange, "private_get_api_keys", None)
    if endpoint is None:
        return CheckResult(name, False, "exchange object has no private_get_api_keys; cannot verify the key")
    listed = await endpoint()
    if not isinstance(listed, list):
        return CheckResult(name, False, f"api_keys answer is not a list: {type(listed).__name__}")
    entry = None
    if keys is not None:
        entry = next((e for e in listed if isinstance(e, Mapping) and isinstance(e.get("access_key"), str)
                      and e["access_key"] and Secret(e["access_key"]) == keys.api_key), None)
        if entry is None:
            return CheckResult(name, False, f"access key {keys.api_key} is not among the {len(listed)} "
                                            f"keys Upbit lists for this account")
    elif len(listed) != 1:
        return CheckResult(name, False, f"no key given to match and Upbit lists {len(listed)} keys")
    else:
        entry = listed[0]
    try:
        expires = datetime.fromisoformat(str(entry.get("expire_at")).replace("Z", "+00:00"))
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=timezone.utc)
    except ValueError:
        return CheckResult(name, False, f"expire_at {entry.get('expire_at')!r} is not an ISO-8601 time")
    days_left = (expires.timestamp() * 1000 - now_ms) / 86_400_000
    if days_left <= 0:
        return CheckResult(name, False, f"key expired at {expires.isoformat()}; issue a new key")
    soon = f" (renew: under {EXPIRY_WARN_DAYS} days left)" if days_left < EXPIRY_WARN_DAYS else ""
    return CheckResult(name, True, f"key accepted, expires {expires.date()} in {days_left:.0f} days{soon}; "
                                   f"Upbit does not report withdrawal permission, confirm it is off "
                                   f"in the Upbit Open API console")


async def balance_check(venue: Venue, exchange: Any, required_free: Mapping[str, float]) -> CheckResult:
    """Free balances cover the configured inventory, currency by currency."""
    name = f"{venue.value}.balance"
    if not required_free:
        return CheckResult(name, True, "no inventory configured for this venue")
    balance = await exchange.fetch_balance()
    free = balance.get("free") if isinstance(balance, Mapping) else None
    if not isinstance(free, Mapping):
        return CheckResult(name, False, "fetch_balance returned no 'free' balances")
    short = []
    for currency, need in sorted(required_free.items()):
        have = free.get(currency) or 0.0
        if have < need:
            short.append(f"{currency} free {have:g} < required {need:g}")
    if short:
        return CheckResult(name, False, "; ".join(short))
    return CheckResult(name, True, ", ".join(f"{c} {free.get(c):g} >= {n:g}"
                                            for c, n in sorted(required_free.items())))


async def open_orders_check(venue: Venue, exchange: Any, known_order_ids: Collection[str]) -> CheckResult:
    """Every open order on the venue is one we know (from the restored snapshot: its venue id or our client
    id); none is foreign."""
    name = f"{venue.value}.open_orders"
    orders = await exchange.fetch_open_orders()
    unknown = [o for o in orders if str(o.get("id")) not in known_order_ids
               and str(o.get("clientOrderId")) not in known_order_ids]
    if unknown:
        listed = ", ".join(f"{o.get('id')} {o.get('symbol')} {o.get('side')} {o.get('amount')}"
                           for o in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        return CheckResult(name, False, f"{len(unknown)} unknown open order(s): {listed}{more}; "
                                        f"cancel them or restore the snapshot that placed them")
    return CheckResult(name, True, f"{len(orders)} open order(s), all known")


async def positions_check(venue: Venue, exchange: Any, known_positions: Mapping[str, float]) -> CheckResult:
    """Open perp positions match what we hold (symbol -> signed contracts); nothing else is open."""
    name = f"{venue.value}.positions"
    positions = await exchange.fetch_positions()
    held = {}
    for p in positions:
        contracts = float(p.get("contracts") or 0.0)
        if contracts:
            held[p.get("symbol")] = -contracts if p.get("side") == "short" else contracts
    wrong = [f"{s} venue {held.get(s, 0.0):g} vs ours {known_positions.get(s, 0.0):g}"
             for s in sorted(set(held) | set(known_positions), key=str)
             if abs(held.get(s, 0.0) - known_positions.get(s, 0.0)) > 1e-12]
    if wrong:
        return CheckResult(name, False, "positions differ from our records: " + "; ".join(wrong))
    return CheckResult(name, True, f"{len(held)} open position(s), all ours")
