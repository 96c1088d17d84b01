"""Binance depth streams (REST snapshot + depthUpdate diffs, spot and USDT-M) -> Books after each event.

Sync rule (Binance docs): drop events already in the snapshot; the first kept event must straddle
lastUpdateId; then spot events continue with U == previous u + 1 and USDT-M events with pu == previous u.
Anything else is a gap: the book would be wrong, so it raises DataError naming the line.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field as dc_field
from pathlib import Path

from domain.book import BadBook, Book
from domain.venues import Venue
from marketdata.errors import DataError
from marketdata.importers.wire import field, number, read_frames


@dataclass
class _LocalBook:
    """A symbol's full local book while replaying (price -> qty per side)."""

    last_update_id: int
    snapshot_line: int
    bids: dict[float, float] = dc_field(default_factory=dict)
    asks: dict[float, float] = dc_field(default_factory=dict)
    prev_u: int | None = None
    events_seen: int = 0


def venue_from_name(path: Path) -> Venue:
    return Venue.BINANCE_USDM if "usdm" in path.name else Venue.BINANCE


def rest_path_for(ws_path: Path) -> Path:
    """The REST snapshot capture that goes with a WebSocket capture (…_ws_… -> …_rest_…)."""
    return ws_path.with_name(ws_path.name.replace("_ws_", "_rest_"))


def _levels(raw: object, path: Path, line: int, key: str) -> list[tuple[float, float]]:
    if not isinstance(raw, list):
        raise DataError(path, line, f"{key} must be a list of [price, qty]")
    out = []
    for i, lvl in enumerate(raw):
        if not isinstance(lvl, list) or len(lvl) < 2:
            raise DataError(path, line, f"{key}[{i}] must be [price, qty]")
        out.append((number(lvl[0], path, line, f"{key}[{i}] price"), number(lvl[1], path, line, f"{key}[{i}] qty")))
    return out


def read_snapshots(rest_path: Path, quote: str) -> dict[str, _LocalBook]:
    """REST depth snapshots by exchange symbol (NKNUSDT), for symbols quoted in `quote`."""
    books: dict[str, _LocalBook] = {}
    for frame in read_frames(rest_path):
        if not frame.url or "symbol=" not in frame.url:
            raise DataError(rest_path, frame.line, "REST line without a depth?symbol= URL")
        symbol = frame.url.split("symbol=")[1].split("&")[0]
        if not symbol.endswith(quote):
            continue
        lid = int(number(field(frame.body, "lastUpdateId", rest_path, frame.line), rest_path, frame.line,
                         "lastUpdateId"))
        local = _LocalBook(lid, frame.line)
        local.bids.update(_levels(field(frame.body, "bids", rest_path, frame.line), rest_path, frame.line, "bids"))
        local.asks.update(_levels(field(frame.body, "asks", rest_path, frame.line), rest_path, frame.line, "asks"))
        books[symbol] = local
    return books


def _accept(local: _LocalBook, data: dict, usdm: bool, path: Path, line: int) -> bool:
    """Whether to apply this event; raise on a sequence gap."""
    first, last = int(field(data, "U", path, line)), int(field(data, "u", path, line))
    lid = local.last_update_id
    if local.prev_u is None:
        if last < lid or (not usdm and last == lid):
            return False  # already contained in the snapshot
        straddles = first <= lid <= last if usdm else first <= lid + 1 <= last
        if not straddles:
            raise DataError(path, line, f"sequence gap: first event U={first} u={last} does not cover snapshot "
                            f"lastUpdateId {lid} (REST line {local.snapshot_line})")
        return True
    if usdm:
        pu = int(field(data, "pu", path, line))
        if pu != local.prev_u:
            raise DataError(path, line, f"sequence gap: pu={pu} but previous u={local.prev_u}")
    elif first != local.prev_u + 1:
        raise DataError(path, line, f"sequence gap: U={first} but previous u={local.prev_u} (expected "
                        f"{local.prev_u + 1})")
    return True


def read_binance_depth(ws_path: str | Path, rest_path: str | Path | None = None, *, levels: int = 20,
                       quote: str = "USDT") -> list[Book]:
    """Replay a depth capture onto its REST snapshots; one Book (top `levels`) per applied event."""
    ws_path = Path(ws_path)
    rest_path = Path(rest_path) if rest_path else rest_path_for(ws_path)
    venue = venue_from_name(ws_path)
    usdm = venue is Venue.BINANCE_USDM
    locals_ = read_snapshots(rest_path, quote)
    books: list[Book] = []
    for frame in read_frames(ws_path):
        data = frame.body.get("data", frame.body) if isinstance(frame.body, dict) else None
        if not isinstance(data, dict) or data.get("e") != "depthUpdate":
            continue
        symbol = str(field(data, "s", ws_path, frame.line))
        if not symbol.endswith(quote):
            continue
        local = locals_.get(symbol)
        if local is None:
            raise DataError(ws_path, frame.line, f"depth events for {symbol} but no REST snapshot in {rest_path}")
        local.events_seen += 1
        if not _accept(local, data, usdm, ws_path, frame.line):
            continue
        for side, key in ((local.bids, "b"), (local.asks, "a")):
            for px, qty in _levels(field(data, key, ws_path, frame.line), ws_path, frame.line, key):
                if qty == 0:
                    side.pop(px, None)
                else:
                    side[px] = qty
        local.prev_u = int(data["u"])
        bids = tuple((p, local.bids[p]) for p in heapq.nlargest(levels, local.bids))
        asks = tuple((p, local.asks[p]) for p in heapq.nsmallest(levels, local.asks))
        ts = int(number(field(data, "E", ws_path, frame.line), ws_path, frame.line, "E"))
        try:
            books.append(Book(venue.value, symbol[: -len(quote)], ts, bids, asks).validate())
        except BadBook as exc:
            raise DataError(ws_path, frame.line, str(exc)) from None
    for symbol, local in locals_.items():
        if local.events_seen and local.prev_u is None:
            raise DataError(ws_path, None, f"{symbol}: no depth event after snapshot lastUpdateId "
                            f"{local.last_update_id}; capture ends before the book could be synced")
    if not books:
        raise DataError(ws_path, None, f"no {quote} depth events could be applied")
    return books
