"""Exact export and import of everything a restart must restore.

The portfolio (ledger, positions, orders, round trips, guard decisions and counters), the strategies
(rolling window, cooldown, position view) and the engine around them (in-flight orders, clocks,
trace, latest books; for a PaperDesk also its undelivered news). Documents are plain JSON values:
Decimals as strings, non-finite floats tagged {"$float": "inf"}, so a snapshot store can checksum
them. A map whose order matters (float sums run over it) is written as a list of pairs: a snapshot
store writes objects with sorted keys, which would reorder it. Importing into a freshly built object of the same configuration continues exactly where the
exported one stopped; export -> import -> export gives the same document. Pure: no I/O.

strategy.py and engine.py are read from here, not changed: the *_STATE / *_CONFIG sets name every
attribute those classes hold, and tests/domain/test_state.py fails when one appears that is in
neither, so a new piece of state cannot be forgotten silently.
"""
from __future__ import annotations

from dataclasses import fields
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cache
from typing import Any, Callable, get_type_hints

from domain.book import Book
from domain.engine import Engine, Trace
from domain.ledger import Ledger
from domain.orders import Direction, Fill, Order, RoundTrip
from domain.portfolio import PairPosition, Portfolio
from domain.risk import Decision, RiskState
from domain.series import ThinnedSeries
from domain.strategy import PositionView, SymbolStrategy
from domain.symbols import FX_SYMBOL
from domain.venues import Venue

SCHEMA = 2   # 2: the premium trace is a ThinnedSeries document
FLOAT_TAG = "$float"

# Attributes fixed by the constructor's arguments (rebuilt, not restored) and the ones that are state.
PORTFOLIO_CONFIG = frozenset({"market", "limits", "hedge", "bn_venue", "usd_ref"})
PORTFOLIO_STATE = frozenset({"ledger", "risk", "positions", "orders", "round_trips", "decisions",
                             "failed_entries", "stuck_legs"})
STRATEGY_CONFIG = frozenset({"symbol", "p", "fees"})
STRATEGY_STATE = frozenset({"window", "next_sample_ms", "cooldown_until_ms", "position", "pending", "seq",
                            "last_premium"})
ENGINE_CONFIG = frozenset({"market", "fx_params", "hedge", "bn_venue", "keep_fills", "_equity_every",
                           "_fixed_fx"})
TRACE_FIELDS = frozenset({"equity", "premium", "markers", "fills", "orders", "alerts", "books", "evaluations",
                          "intents"})
ENGINE_STATE = frozenset({"ledger", "portfolio", "strategies", "books", "pending", "now", "trace", "_seq",
                          "_fill_seq", "_next_equity", "_next_funding", "_dirty", "_initial_equity"})
DESK_CONFIG = frozenset({"clocked"})             # what a PaperDesk adds to the Engine
DESK_STATE = frozenset({"news", "late_books"})
SHARD_CONFIG = frozenset({"bn_venue", "fixed_fx", "clocked"})   # paper/shard.py StrategyShard
SHARD_STATE = frozenset({"strategies", "books", "now", "pending"})
_DECIMAL_FIELDS = ("krw_delta", "usdt_delta", "fees_krw", "fees_usdt", "funding_usdt")
_IMPORT_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError, InvalidOperation)


class StateError(ValueError):
    """A state document that cannot be exported or imported; the message names what and where."""


# -- JSON-safe floats --------------------------------------------------------------------------
_PLAIN = frozenset({str, int, bool, type(None)})


def _plain(v: Any) -> bool:
    return type(v) in _PLAIN or (type(v) is float and v - v == 0.0)   # inf - inf and nan - nan are nan


def _tag_floats(value: Any) -> Any:
    """Copy of `value` with inf/nan replaced by {"$float": repr}; JSON cannot carry them.

    Plain values are passed over inline, without a call each: a coordinator's state holds tens of
    thousands of them and this walk runs on every snapshot.
    """
    t = type(value)
    if t is dict:
        return {k: v if (type(v) in _PLAIN or (type(v) is float and v - v == 0.0)) else _tag_floats(v)
                for k, v in value.items()}
    if t is list or t is tuple:
        return [v if (type(v) in _PLAIN or (type(v) is float and v - v == 0.0)) else _tag_floats(v) for v in value]
    if t is float and not _plain(value):
        return {FLOAT_TAG: repr(value)}
    return value


def _untag_floats(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and FLOAT_TAG in value:
            return float(value[FLOAT_TAG])
        return {k: _untag_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untag_floats(v) for v in value]
    return value


def _header(doc: Any, kind: str) -> dict:
    if not isinstance(doc, dict):
        raise StateError(f"{kind} state: expected a JSON object, got {type(doc).__name__}")
    if doc.get("kind") != kind:
        raise StateError(f"{kind} state: document is of kind {doc.get('kind')!r}")
    if doc.get("schema") != SCHEMA:
        raise StateError(f"{kind} state: schema {doc.get('schema')!r} is not the supported {SCHEMA}")
    return _untag_floats(doc)


def _guard(where: str, action: Callable[[], Any]) -> Any:
    """Run one import step; any malformed value becomes a StateError naming `where`."""
    try:
        return action()
    except StateError:
        raise
    except _IMPORT_ERRORS as error:
        raise StateError(f"{where}: malformed ({type(error).__name__}: {error})") from None


# -- frozen records (orders, fills, round trips, decisions, position views, books) ---------------
@cache
def _enum_fields(cls: type) -> dict[str, type]:
    return {name: hint for name, hint in get_type_hints(cls).items()
            if isinstance(hint, type) and issubclass(hint, Enum)}


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def record(obj: Any) -> dict:
    """A frozen dataclass as {field: value}, enums as their values."""
    enums = _enum_fields(type(obj))
    return {name: (getattr(obj, name).value if name in enums else getattr(obj, name))
            for name in _field_names(type(obj))}


def rebuild(cls: type, raw: dict, where: str) -> Any:
    """The `cls` instance `record` made `raw` from; StateError naming `where` when it cannot be."""
    def build():
        if not isinstance(raw, dict):
            raise TypeError(f"expected an object, got {type(raw).__name__}")
        enums = _enum_fields(cls)
        return cls(**{k: enums[k](v) if k in enums else v for k, v in raw.items()})
    return _guard(where, build)


def _book(book: Book) -> dict:
    return {"venue": book.venue, "symbol": book.symbol, "ts_ms": book.ts_ms,
            "bids": [list(level) for level in book.bids], "asks": [list(level) for level in book.asks]}


def _unbook(raw: dict, where: str) -> Book:
    return _guard(where, lambda: Book(raw["venue"], raw["symbol"], raw["ts_ms"],
                                      tuple((p, q) for p, q in raw["bids"]),
                                      tuple((p, q) for p, q in raw["asks"])))


# -- portfolio ---------------------------------------------------------------------------------
def _position(pos: PairPosition) -> dict:
    out = {}
    for f in fields(PairPosition):
        value = getattr(pos, f.name)
        if f.name == "direction":
            value = value.value
        elif f.name == "coin":       # pairs, not an object: PnL sums it in this order, and stores sort keys
            value = [[venue, str(x)] for venue, x in value.items()]
        elif f.name == "legs":
            value = {k: list(leg) for k, leg in value.items()}
        elif f.name == "open_orders":
            value = list(value)                    # ids; the orders themselves are in portfolio.orders
        elif f.name in _DECIMAL_FIELDS:
            value = str(value)
        out[f.name] = value
    return out


def _unposition(raw: dict, orders: dict[str, Order], where: str) -> PairPosition:
    def build():
        values = dict(raw)
        values["direction"] = Direction(raw["direction"])
        values["coin"] = {venue: Decimal(x) for venue, x in raw["coin"]}
        values["legs"] = {k: list(leg) for k, leg in raw["legs"].items()}
        missing = [oid for oid in raw["open_orders"] if oid not in orders]
        if missing:
            raise StateError(f"{where}: open orders {missing} are not in portfolio.orders")
        values["open_orders"] = {oid: orders[oid] for oid in raw["open_orders"]}
        for name in _DECIMAL_FIELDS:
            values[name] = Decimal(raw[name])
        return PairPosition(**values)
    return _guard(where, build)


def _portfolio(pf: Portfolio, history: bool = True) -> dict:
    return {"kind": "portfolio", "schema": SCHEMA, "hedge": pf.hedge,
            "ledger": pf.ledger.to_dict(), "risk": pf.risk.to_dict(),
            "orders": [record(o) for o in pf.orders.values()],
            "positions": [_position(p) for p in pf.positions.values()],
            "round_trips": [record(rt) for rt in pf.round_trips],
            "decisions": [record(d) for d in pf.decisions] if history else {"omitted": len(pf.decisions)},
            "failed_entries": pf.failed_entries, "stuck_legs": list(pf.stuck_legs)}


def _restore_portfolio(pf: Portfolio, doc: dict) -> None:
    if doc["hedge"] != pf.hedge:
        raise StateError(f"portfolio state: taken with hedge {doc['hedge']!r}, this portfolio uses {pf.hedge!r}")
    ledger = _guard("portfolio.ledger", lambda: Ledger.from_dict(doc["ledger"]))
    risk = _guard("portfolio.risk", lambda: RiskState.from_dict(doc["risk"]))
    orders: dict[str, Order] = {}
    for i, raw in enumerate(doc["orders"]):
        order = rebuild(Order, raw, f"portfolio.orders[{i}]")
        orders[order.order_id] = order
    positions: dict[str, PairPosition] = {}
    for i, raw in enumerate(doc["positions"]):
        pos = _unposition(raw, orders, f"portfolio.positions[{i}] ({raw.get('position_id', '?')})")
        positions[pos.position_id] = pos
    round_trips = [rebuild(RoundTrip, raw, f"portfolio.round_trips[{i}]") for i, raw in enumerate(doc["round_trips"])]
    kept = doc["decisions"] if isinstance(doc["decisions"], list) else []   # {"omitted": n}: history elsewhere
    decisions = [rebuild(Decision, raw, f"portfolio.decisions[{i}]") for i, raw in enumerate(kept)]
    pf.ledger, pf.risk, pf.orders, pf.positions = ledger, risk, orders, positions
    pf.round_trips, pf.decisions = round_trips, decisions
    pf.failed_entries, pf.stuck_legs = int(doc["failed_entries"]), list(doc["stuck_legs"])


def export_portfolio(pf: Portfolio, *, history: bool = True) -> dict:
    """The portfolio's whole state as a plain JSON document (`history`: see export_engine)."""
    return _tag_floats(_portfolio(pf, history))


def restore_portfolio(pf: Portfolio, doc: dict) -> None:
    """Load `doc` (from export_portfolio) into a Portfolio freshly built with the same configuration.

    The portfolio gets a new Ledger object: whoever shares the old one (an Engine) must take
    `pf.ledger` again; restore_engine does.
    """
    _guard("portfolio state", lambda: _restore_portfolio(pf, _header(doc, "portfolio")))


# -- strategies ----------------------------------------------------------------------------------
def _strategy(strat: SymbolStrategy) -> dict:
    return {"symbol": strat.symbol, **strat.to_dict(), "last_premium": strat.last_premium}


def _restore_strategy(strat: SymbolStrategy, doc: dict, where: str) -> None:
    def load():
        if doc["symbol"] != strat.symbol:
            raise StateError(f"{where}: state of {doc['symbol']!r} offered to the {strat.symbol!r} strategy")
        if len(doc["window"]) > strat.p.z_window:
            raise StateError(f"{where}: window holds {len(doc['window'])} samples but this strategy keeps "
                             f"{strat.p.z_window} (z_window changed since the snapshot)")
        strat.restore(doc)
        strat.last_premium = doc["last_premium"]
    _guard(where, load)


def export_strategies(strategies: dict[str, SymbolStrategy]) -> dict:
    """The state of each symbol's strategy (a shard's or an engine's), in their order."""
    return _tag_floats({"kind": "strategies", "schema": SCHEMA,
                        "strategies": [_strategy(s) for s in strategies.values()]})


def restore_strategies(strategies: dict[str, SymbolStrategy], doc: dict) -> None:
    """Load `doc` into freshly built strategies for exactly the same symbols."""
    doc = _header(doc, "strategies")
    _restore_strategies(strategies, doc["strategies"], "strategies")


def export_shard(shard: Any) -> dict:
    """A strategy shard's state (paper/shard.py StrategyShard, read by its attributes): its strategies,
    the latest books they decide on, its clock and the symbols touched but not yet decided. Without
    the books a restarted shard would wait for every venue's next update of a symbol."""
    return _tag_floats({"kind": "shard", "schema": SCHEMA, "now": shard.now, "pending": sorted(shard.pending),
                        "strategies": [_strategy(s) for s in shard.strategies.values()],
                        "books": [_book(b) for b in shard.books.values()]})


def restore_shard(shard: Any, doc: dict) -> None:
    """Load `doc` (from export_shard) into a shard freshly built for the same symbols."""
    doc = _header(doc, "shard")
    _restore_strategies(shard.strategies, _guard("shard state", lambda: doc["strategies"]), "shard.strategies")
    books = [_unbook(raw, f"shard.books[{i}]") for i, raw in enumerate(_guard("shard state", lambda: doc["books"]))]
    shard.books = {(b.venue, b.symbol): b for b in books}
    shard.now = _guard("shard state", lambda: int(doc["now"]))
    shard.pending = _guard("shard state", lambda: set(doc["pending"]))


def _restore_strategies(strategies: dict[str, SymbolStrategy], docs: list, where: str) -> None:
    symbols = _guard(where, lambda: [d["symbol"] for d in docs])
    if symbols != list(strategies):
        raise StateError(f"{where}: snapshot holds symbols {symbols}, this process runs {list(strategies)}")
    for doc in docs:
        _restore_strategy(strategies[doc["symbol"]], doc, f"{where}[{doc['symbol']}]")


# -- engine (and PaperDesk) --------------------------------------------------------------------
_HISTORY = ("equity", "premium", "markers", "fills", "orders", "alerts")


def _trace(trace: Trace, history: bool = True) -> dict:
    if not history:
        return {"omitted": {name: len(getattr(trace, name)) for name in _HISTORY},
                "books": trace.books, "evaluations": trace.evaluations, "intents": trace.intents}
    return {"equity": [list(p) for p in trace.equity],
            "premium": [[s, series.to_dict()] for s, series in trace.premium.items()],
            "markers": [dict(m) for m in trace.markers], "fills": [record(f) for f in trace.fills],
            "orders": [o.order_id for o in trace.orders], "alerts": list(trace.alerts),
            "books": trace.books, "evaluations": trace.evaluations, "intents": trace.intents}


def _untrace(raw: dict, orders: dict[str, Order]) -> Trace:
    if "omitted" in raw:       # history kept elsewhere (the trade store): only the counters come back
        return Trace(books=raw["books"], evaluations=raw["evaluations"], intents=raw["intents"])
    missing = [oid for oid in raw["orders"] if oid not in orders]
    if missing:
        raise StateError(f"engine.trace.orders: {missing[:5]} are not in portfolio.orders")
    return Trace(equity=[tuple(p) for p in raw["equity"]],
                 premium={s: ThinnedSeries.from_dict(series, f"engine.trace.premium[{s}]") for s, series in raw["premium"]},
                 markers=[dict(m) for m in raw["markers"]],
                 fills=[rebuild(Fill, f, f"engine.trace.fills[{i}]") for i, f in enumerate(raw["fills"])],
                 orders=[orders[oid] for oid in raw["orders"]], alerts=list(raw["alerts"]),
                 books=raw["books"], evaluations=raw["evaluations"], intents=raw["intents"])


def _books_needed(engine: Engine) -> set[tuple[str, str]]:
    """The books in-flight orders fill against: both legs of their symbols, and the FX book."""
    upbit = Venue.UPBIT.value
    needed = {(upbit, FX_SYMBOL)}
    for _, _, order in engine.pending:
        needed.update({(upbit, order.symbol), (engine.bn_venue, order.symbol), (order.venue, order.symbol)})
    return needed


def export_engine(engine: Engine, *, all_books: bool = True, history: bool = True) -> dict:
    """The engine's whole state (a PaperDesk's news and counters too) as a plain JSON document.

    `all_books=False` keeps only the books in-flight orders will fill against (feeds resend the
    rest); a backtest that must continue bit for bit keeps them all. `history=False` leaves out
    what only reports read and what grows with every event (guard decisions, and the trace's
    fills, orders, markers, equity and premium series), keeping their counts: for an actor whose
    history goes to the trade store, so a snapshot stays the size of the trading state. Trading
    continues exactly either way; only the restored object's history lists start empty.
    """
    for name in ENGINE_STATE | ENGINE_CONFIG:
        if not hasattr(engine, name):
            raise StateError(f"engine state: {type(engine).__name__} has no attribute {name!r}; "
                             "domain/state.py must follow the engine's fields")
    orders = engine.portfolio.orders
    for _, _, order in engine.pending:
        if orders.get(order.order_id) is not order:
            raise StateError(f"engine state: in-flight order {order.order_id} is not in portfolio.orders")
    keep = None if all_books else _books_needed(engine)
    doc = {"kind": "engine", "schema": SCHEMA, "symbols": list(engine.strategies), "hedge": engine.hedge,
           "portfolio": _portfolio(engine.portfolio, history),
           "strategies": [_strategy(s) for s in engine.strategies.values()],
           "now": engine.now, "pending": [[due, seq, order.order_id] for due, seq, order in engine.pending],
           "seq": engine._seq, "fill_seq": engine._fill_seq, "next_equity_ms": engine._next_equity,
           "next_funding_ms": engine._next_funding, "dirty": sorted(engine._dirty),
           "initial_equity": engine._initial_equity, "trace": _trace(engine.trace, history),
           # engine.books[k], not .items(): the backtest's lazy map builds a Book only when read
           "books": [_book(engine.books[k]) for k in list(engine.books) if keep is None or k in keep]}
    if hasattr(engine, "news"):
        doc["desk"] = {"late_books": engine.late_books,
                       "news": [{"symbol": n.symbol, "kind": n.kind, "ts_ms": n.ts_ms,
                                 "view": None if n.view is None else record(n.view)} for n in engine.news]}
    return _tag_floats(doc)


def restore_engine(engine: Engine, doc: dict, *, news_type: Callable[..., Any] | None = None) -> None:
    """Load `doc` (from export_engine) into an engine freshly built with the same configuration.

    A PaperDesk snapshot may hold news not yet delivered to the strategies; `news_type` (the desk's
    News class) rebuilds them. The domain does not import paper/, so the caller names it.
    On StateError the engine is half loaded: discard it and build a fresh one.
    """
    _guard("engine state", lambda: _restore_engine(engine, _header(doc, "engine"), news_type))


_ENGINE_KEYS = ("symbols", "hedge", "portfolio", "strategies", "now", "pending", "seq", "fill_seq",
                "next_equity_ms", "next_funding_ms", "dirty", "initial_equity", "trace", "books")


def _restore_engine(engine: Engine, doc: dict, news_type) -> None:
    missing = [k for k in _ENGINE_KEYS if k not in doc]
    if missing:
        raise StateError(f"engine state: missing {missing}")
    if doc["hedge"] != engine.hedge:
        raise StateError(f"engine state: taken with hedge {doc['hedge']!r}, this engine uses {engine.hedge!r}")
    if doc["symbols"] != list(engine.strategies):
        raise StateError(f"engine state: snapshot holds symbols {doc['symbols']}, "
                         f"this engine runs {list(engine.strategies)}")
    desk = doc.get("desk")
    if desk is not None and not hasattr(engine, "news"):
        raise StateError("engine state: taken from a paper desk, offered to a plain engine")
    if desk is not None and desk["news"] and news_type is None:
        raise StateError(f"engine state: {len(desk['news'])} undelivered news items need news_type")
    pf = engine.portfolio
    _restore_portfolio(pf, doc["portfolio"])
    engine.ledger = pf.ledger
    _restore_strategies(engine.strategies, doc["strategies"], "engine.strategies")
    pending = []
    for i, (due, seq, oid) in enumerate(doc["pending"]):
        if oid not in pf.orders:
            raise StateError(f"engine.pending[{i}]: in-flight order {oid} is not in portfolio.orders")
        pending.append((due, seq, pf.orders[oid]))
    engine.pending = pending                   # already a heap: kept in the order exported
    engine.trace = _guard("engine.trace", lambda: _untrace(doc["trace"], pf.orders))
    books = [_unbook(raw, f"engine.books[{i}]") for i, raw in enumerate(doc["books"])]
    engine.books.clear()
    for book in books:
        engine.books[(book.venue, book.symbol)] = book
    engine.now, engine._seq, engine._fill_seq = doc["now"], doc["seq"], doc["fill_seq"]
    engine._next_equity, engine._next_funding = doc["next_equity_ms"], doc["next_funding_ms"]
    engine._dirty = set(doc["dirty"])
    engine._initial_equity = doc["initial_equity"]
    if desk is not None:
        engine.late_books = desk["late_books"]
        engine.news = [news_type(n["symbol"], n["kind"], n["ts_ms"],
                                 None if n["view"] is None else rebuild(PositionView, n["view"], "desk.news.view"))
                       for n in desk["news"]]
