"""Wire-capture importers (Upbit SIMPLE/DEFAULT, Binance depth and bookTicker) on real and corrupted captures."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from marketdata.errors import DataError
from marketdata.importers import read_binance_book_ticker, read_binance_depth, read_upbit_ws

UPBIT = "upbit_ws_simple_2021-04-05.txt"
SPOT_WS, SPOT_REST = "binance_spot_ws_2021-10-12.txt", "binance_spot_rest_2021-10-12.txt"
USDM_WS, USDM_REST = "binance_usdm_ws_2021-07-22.txt", "binance_usdm_rest_2021-07-22.txt"


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def _first_line(lines: list[str], needle: str, after: int = 0) -> int:
    """0-based index of the first line after `after` containing needle."""
    return next(i for i, text in enumerate(lines) if i >= after and needle in text)


def test_upbit_simple_real_values(data: Path) -> None:
    books = read_upbit_ws(data / "wire" / UPBIT)
    assert len(books) == 950  # KRW orderbook frames only (BTC- markets are not KRW books)
    first = books[0]
    assert (first.venue, first.symbol, first.ts_ms) == ("upbit", "IQ", 1617646620673)
    assert first.bids[0] == (41.2, 24347.90399112) and first.asks[0] == (41.4, 9354.4915888)
    assert len(first.bids) == 15
    assert {b.symbol for b in books} == {"ADA", "ANKR", "BAT", "DAWN", "IQ", "STX"}


def test_upbit_default_long_keys_with_exponent_prices(tmp_path: Path) -> None:
    frame = {"type": "orderbook", "code": "KRW-BTC", "timestamp": 1700000000123, "total_ask_size": 1.0,
             "orderbook_units": [{"ask_price": "1.16540E8", "bid_price": 1.16539E8, "ask_size": 0.5, "bid_size": 0.25},
                                 {"ask_price": 1.16541E8, "bid_price": 1.16538E8, "ask_size": 1.5, "bid_size": 2.0}]}
    text = json.dumps(frame).replace('"1.16540E8"', "1.16540E8")
    path = tmp_path / "upbit_ws_default.txt"
    path.write_text(f'1700000000.2: {{"status":"UP"}}\n1700000000.3: b\'{text}\'\n')
    [book] = read_upbit_ws(path)
    assert book.symbol == "BTC" and book.ts_ms == 1700000000123
    assert book.bids == ((116539000.0, 0.25), (116538000.0, 2.0)) and book.best_ask == 116540000.0


def test_upbit_truncated_and_bad_number(data: Path, tmp_path: Path) -> None:
    lines = _lines(data / "wire" / UPBIT)
    i = _first_line(lines, '"ty":"orderbook","cd":"KRW-ADA"')
    (tmp_path / "t.txt").write_text("".join(lines[:i]) + lines[i][:150] + "\n")
    with pytest.raises(DataError, match=rf"t\.txt, line {i + 1}: truncated or malformed frame"):
        read_upbit_ws(tmp_path / "t.txt")
    lines[i] = lines[i].replace('"ap":', '"ap":"x', 1).replace(',"bp"', '","bp"', 1)
    (tmp_path / "n.txt").write_text("".join(lines))
    with pytest.raises(DataError, match=rf"n\.txt, line {i + 1}: KRW-ADA obu\[0\]\.ap: 'x.*not a number"):
        read_upbit_ws(tmp_path / "n.txt")


def test_binance_spot_depth_real_values(data: Path) -> None:
    books = read_binance_depth(data / "wire" / SPOT_WS)
    assert {b.symbol for b in books} == {"NKN"} and {b.venue for b in books} == {"binance"}
    first = books[0]  # snapshot lastUpdateId 499869752 plus event U=499869753 (bid 0.3517, ask 0.3529)
    assert first.ts_ms == 1633998512568
    assert first.best_bid == 0.3521 and first.best_ask == 0.3525
    assert (0.3517, 4265.0) in first.bids and (0.3529, 10968.0) in first.asks
    assert len(first.bids) == len(first.asks) == 20
    assert len(books) == 149  # 150 NKN events, the first already inside the snapshot


def test_binance_usdm_depth_real_values(data: Path) -> None:
    books = read_binance_depth(data / "wire" / USDM_WS)
    assert {b.symbol for b in books} == {"SUSHI", "AKRO", "KEEP", "CTK"}
    assert {b.venue for b in books} == {"binance_usdm"}
    first = books[0]
    assert (first.symbol, first.ts_ms, first.best_bid, first.best_ask) == ("AKRO", 1626992741257, 0.01731, 0.01732)


def test_binance_spot_gap_names_line(data: Path, tmp_path: Path) -> None:
    lines = _lines(data / "wire" / SPOT_WS)
    i = _first_line(lines, '"U":499869755')
    del lines[i]
    (tmp_path / "binance_spot_ws_x.txt").write_text("".join(lines))
    with pytest.raises(DataError, match=rf"binance_spot_ws_x\.txt, line {i + 1}: sequence gap: U=499869758 "
                                        r"but previous u=499869754"):
        read_binance_depth(tmp_path / "binance_spot_ws_x.txt", data / "wire" / SPOT_REST)


def test_binance_usdm_gap_names_line(data: Path, tmp_path: Path) -> None:
    lines = _lines(data / "wire" / USDM_WS)
    first_synced = _first_line(lines, '"pu":600859605', _first_line(lines, "sushiusdt@depth"))
    i = _first_line(lines, "sushiusdt@depth", first_synced + 1)
    j = _first_line(lines, "sushiusdt@depth", i + 1)
    del lines[i]
    (tmp_path / "binance_usdm_ws_x.txt").write_text("".join(lines))
    with pytest.raises(DataError, match=rf"binance_usdm_ws_x\.txt, line {j}: sequence gap: pu="):
        read_binance_depth(tmp_path / "binance_usdm_ws_x.txt", data / "wire" / USDM_REST)


def test_binance_missing_snapshot(data: Path, tmp_path: Path) -> None:
    rest = [ln for ln in _lines(data / "wire" / SPOT_REST) if "NKNUSDT" not in ln]
    (tmp_path / "binance_spot_rest_x.txt").write_text("".join(rest))
    (tmp_path / "binance_spot_ws_x.txt").write_text((data / "wire" / SPOT_WS).read_text())
    with pytest.raises(DataError, match=r"line 2: depth events for NKNUSDT but no REST snapshot"):
        read_binance_depth(tmp_path / "binance_spot_ws_x.txt")


def test_binance_book_ticker_spot_and_usdm(data: Path) -> None:
    spot = read_binance_book_ticker(data / "wire" / SPOT_WS)
    assert len(spot) == 74 and spot[0].symbol == "NKN"
    assert spot[0].bids == ((0.3521, 672.0),) and spot[0].asks == ((0.3526, 3199.0),)
    assert spot[0].ts_ms == 1633998513377  # spot bookTicker has no E: receive time
    usdm = read_binance_book_ticker(data / "wire" / USDM_WS)
    assert usdm[0].ts_ms == 1626992741017 and usdm[0].best_bid == 7.611 and usdm[0].best_ask == 7.612


def test_binance_book_ticker_bad_number(data: Path, tmp_path: Path) -> None:
    lines = _lines(data / "wire" / USDM_WS)
    i = _first_line(lines, "bookTicker", 1)
    lines[i] = lines[i].replace('"b":"7.6110"', '"b":"7.6.110"')
    (tmp_path / "binance_usdm_ws_y.txt").write_text("".join(lines))
    with pytest.raises(DataError, match=rf"line {i + 1}: b: '7\.6\.110' is not a number"):
        read_binance_book_ticker(tmp_path / "binance_usdm_ws_y.txt")
