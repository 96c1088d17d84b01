"""Rules that span several keys of a profile: threshold order, mode sections, loopback endpoints."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from config.datafiles import check_data
from config.errors import Problem, shown
from config.schema import Profile

LOOPBACK = "127.0.0.1"
DATABASES = ("sqlite", "postgresql", "postgresql+psycopg2")


def check_profile(profile: Profile, source: Path) -> list[Problem]:
    """Every cross-key problem of a profile that already passed the per-field schema."""
    problems = []
    if profile.name != source.stem:
        problems.append(Problem("name", f"the file's name {source.stem!r}", shown(profile.name)))
    for check in (_universe, _mode_sections, _strategy, _risk, _fx, _inventory, _endpoints, _storage, _live):
        problems += check(profile)
    if profile.mode == "backtest" and profile.data is not None and not problems:
        problems += check_data(profile)  # reads files, so only once the rest is sound
    return problems


def _universe(p: Profile) -> list[Problem]:
    u = p.universe
    if (u.symbols is None) == (u.top_n is None):
        return [Problem("universe", "exactly one of symbols or top_n",
                        "both" if u.symbols else "neither")]
    if u.symbols is not None and len(set(u.symbols)) != len(u.symbols):
        return [Problem("universe.symbols", "each coin once", shown(list(u.symbols)))]
    if u.symbols is not None and "USDT" in u.symbols:
        return [Problem("universe.symbols", "traded coins (USDT is the FX book, not a coin)", "'USDT'")]
    return []


def _inventory(p: Profile) -> list[Problem]:
    """Per-coin inventory needs spot venues and a books backtest (its start prices come from the books)."""
    per_coin = p.inventory_per_coin_krw
    if per_coin is None:
        return []
    problems = [Problem(f"inventory_per_coin_krw.{venue}", "a spot venue (upbit or binance): perp legs hold no coin",
                        shown(venue)) for venue in per_coin if venue not in ("upbit", "binance")]
    if p.mode != "backtest" or p.data is None or p.data.kind != "books":
        problems.append(Problem("inventory_per_coin_krw", "a backtest on books data (start prices come from its "
                                "first Upbit books)", f"mode {p.mode}" + (f", data kind {p.data.kind}" if p.data else "")))
    return problems


def _mode_sections(p: Profile) -> list[Problem]:
    """Each mode has the sections it needs and none it would silently ignore."""
    problems = []
    if p.mode == "backtest":
        if p.data is None:
            problems.append(Problem("data", "a data section for mode backtest", "nothing"))
        if p.endpoints is not None:
            problems.append(Problem("endpoints", "null for mode backtest (no venue is contacted)",
                                    shown(p.endpoints)))
    elif p.data is not None:
        problems.append(Problem("data", f"null for mode {p.mode} (market data comes from the venues)",
                                "a data section"))
    if p.mode == "live" and p.live is None:
        problems.append(Problem("live", "a live section (arming and caps) for mode live", "nothing"))
    if p.mode != "live" and p.live is not None:
        problems.append(Problem("live", f"null for mode {p.mode}", "a live section"))
    return problems


def _strategy(p: Profile) -> list[Problem]:
    s, problems = p.strategy, []
    if s.exit_edge_bps >= s.entry_edge_bps:
        problems.append(Problem("strategy.exit_edge_bps",
                                f"a number < strategy.entry_edge_bps ({s.entry_edge_bps:g})",
                                shown(s.exit_edge_bps)))
    if s.z_min_samples > s.z_window:
        problems.append(Problem("strategy.z_min_samples",
                                f"a count <= strategy.z_window ({s.z_window})", shown(s.z_min_samples)))
    if s.order_notional_krw > p.risk.max_position_krw:
        problems.append(Problem("strategy.order_notional_krw",
                                f"a size <= risk.max_position_krw ({p.risk.max_position_krw:g})",
                                shown(s.order_notional_krw)))
    if len(set(s.directions)) != len(s.directions):
        problems.append(Problem("strategy.directions", "each direction once", shown(list(s.directions))))
    return problems


def _risk(p: Profile) -> list[Problem]:
    r, problems = p.risk, []
    if r.max_position_krw > r.max_total_exposure_krw:
        problems.append(Problem("risk.max_position_krw",
                                f"a size <= risk.max_total_exposure_krw ({r.max_total_exposure_krw:g})",
                                shown(r.max_position_krw)))
    if r.max_venue_exposure_krw > r.max_total_exposure_krw:
        problems.append(Problem("risk.max_venue_exposure_krw",
                                f"a size <= risk.max_total_exposure_krw ({r.max_total_exposure_krw:g})",
                                shown(r.max_venue_exposure_krw)))
    return problems


def _fx(p: Profile) -> list[Problem]:
    fx = p.fx
    if fx.source == "fixed" and fx.fixed_usdt_krw is None:
        return [Problem("fx.fixed_usdt_krw", "a KRW per USDT rate when fx.source is 'fixed'", "nothing")]
    if fx.source == "book" and fx.fixed_usdt_krw is not None:
        return [Problem("fx.fixed_usdt_krw", "null when fx.source is 'book' (the rate comes from "
                        "Upbit's KRW-USDT book)", shown(fx.fixed_usdt_krw))]
    if fx.source == "book" and p.data is not None and p.data.kind == "candles":
        return [Problem("fx.source", "'fixed' for a candle backtest (candles carry no KRW-USDT book)",
                        "'book'")]
    return []


def _traded_venues(p: Profile) -> tuple[str, ...]:
    return ("upbit", "binance_usdm") if p.strategy.hedge == "perp" else ("upbit", "binance")


def _endpoints(p: Profile) -> list[Problem]:
    """A *-local profile must reach only the simulator on 127.0.0.1, for every venue it trades."""
    problems, local = [], p.name.endswith("-local")
    endpoints = p.endpoints or {}
    if local:
        for venue in _traded_venues(p):
            if venue not in endpoints:
                problems.append(Problem(f"endpoints.{venue}", "the local simulator's URLs for a "
                                        "*-local profile", "nothing"))
    for venue, endpoint in endpoints.items():
        for kind, url in (("rest", endpoint.rest), ("ws", endpoint.ws)):
            problems += _url_problems(f"endpoints.{venue}.{kind}", url, local, kind == "ws")
    if local and p.alerts.telegram is not None:
        problems += _url_problems("alerts.telegram.api_url", p.alerts.telegram.api_url, True, False)
    return problems


def _url_problems(key: str, url: str, local: bool, websocket: bool) -> list[Problem]:
    try:
        parts = urlsplit(url)
        parts.port  # raises on a port that is not a number or out of range
    except ValueError as exc:
        return [Problem(key, "a URL with a valid host and port", f"{shown(url)} ({exc})")]
    if not parts.hostname:
        return [Problem(key, "a URL with a host", shown(url))]
    if local:
        scheme = "ws" if websocket else "http"
        if parts.hostname != LOOPBACK or parts.scheme != scheme:
            return [Problem(key, f"{scheme}://{LOOPBACK}:<port> for a *-local profile", shown(url))]
    return []


def _storage(p: Profile) -> list[Problem]:
    problems = []
    try:
        driver = make_url(p.storage.url).drivername
    except ArgumentError:
        driver = None
    if driver not in DATABASES:
        problems.append(Problem("storage.url", "a SQLAlchemy URL for sqlite or postgresql "
                                "(sqlite:///runs/x.db, postgresql://user@host/db)", shown(p.storage.url)))
    if not urlsplit(p.storage.redis_url).hostname:
        problems.append(Problem("storage.redis_url", "redis://host:port/db", shown(p.storage.redis_url)))
    return problems


def _live(p: Profile) -> list[Problem]:
    live = p.live
    if live is None:
        return []
    low, high = live.notional_bounds
    if not 0 < low <= high:
        return [Problem("live.notional_bounds", "[min, max] with 0 < min <= max", shown(list(live.notional_bounds)))]
    problems = []
    for key in ("max_order_notional_krw", "max_total_notional_krw"):
        cap = getattr(live, key)
        if not low <= cap <= high:
            problems.append(Problem(f"live.{key}", f"a cap within live.notional_bounds [{low:g}, {high:g}]",
                                    shown(cap)))
    if live.max_order_notional_krw > live.max_total_notional_krw:
        problems.append(Problem("live.max_order_notional_krw", "a cap <= live.max_total_notional_krw "
                                f"({live.max_total_notional_krw:g})", shown(live.max_order_notional_krw)))
    if p.strategy.order_notional_krw > live.max_order_notional_krw:
        problems.append(Problem("strategy.order_notional_krw", "a size <= live.max_order_notional_krw "
                                f"({live.max_order_notional_krw:g})", shown(p.strategy.order_notional_krw)))
    return problems
