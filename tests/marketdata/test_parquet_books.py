"""Parquet book and candle files: round trip, metadata, bounded streaming reads, corrupt files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from domain.book import Book
from domain.venues import Venue
from marketdata.convert import main as convert_main
from marketdata.errors import DataError
from marketdata.importers import read_books_jsonl, read_candles_csv, read_upbit_kst_csv
from marketdata.parquet_books import BookWriter, file_info, read_book_columns, read_books, write_books
from marketdata.parquet_candles import read_candle_columns, read_candles, write_candles


def test_round_trip_real_books(data: Path, tmp_path: Path) -> None:
    books = read_books_jsonl(data / "books" / "2025-08-24_upbit_krw-btc_20lvl.jsonl") + \
        read_books_jsonl(data / "books" / "2025-08-24_binance_btcusdt_20lvl.jsonl")
    books.sort(key=lambda b: b.ts_ms)
    out = tmp_path / "b.parquet"
    assert write_books(out, books, source="2025-08-24 jsonl", synthetic=False, rows_per_group=4) == 11
    assert list(read_books(out)) == books
    info = file_info(out)
    assert (info.kind, info.synthetic, info.source, info.rows, info.row_groups) == \
        ("books", False, "2025-08-24 jsonl", 11, 3)


def test_columns_pad_short_books_and_sort_stably(tmp_path: Path) -> None:
    books = [Book(Venue.UPBIT, "BTC", 5, ((100.0, 1.0), (99.0, 2.0)), ((101.0, 3.0),)),
             Book("binance", "ETH", 2, ((10.0, 1.0),), ((11.0, 1.0), (12.0, 2.0), (13.0, 4.0))),
             Book("upbit", "USDT", 5, ((1383.0, 9.0),), ((1384.0, 8.0),))]
    out = tmp_path / "p.parquet"
    write_books(out, books, source="unit", synthetic=True)
    [cols] = list(read_book_columns(out))
    assert cols.ts_ms.tolist() == [2, 5, 5]  # sorted; the two ts=5 rows keep their order
    assert [cols.symbols[c] for c in cols.symbol_code] == ["ETH", "BTC", "USDT"]
    assert [cols.venues[c] for c in cols.venue_code] == ["binance", "upbit", "upbit"]
    assert cols.ask_px.shape == (3, 3) and np.isnan(cols.ask_px[1, 1:]).all() and (cols.ask_qty[1, 1:] == 0).all()
    assert cols.book(1) == Book("upbit", "BTC", 5, books[0].bids, books[0].asks)
    assert file_info(out).synthetic is True


def test_streaming_read_is_bounded_by_row_group(data: Path, tmp_path: Path) -> None:
    books = read_upbit_kst_csv(data / "books" / "2024-04-27_upbit_krw-eth_5lvl_kst.csv")
    out = tmp_path / "eth.parquet"
    write_books(out, books, source="kst", synthetic=False, rows_per_group=500)
    assert file_info(out).row_groups == 8
    whole = pa.total_allocated_bytes()
    peak, sizes = 0, []
    for cols in read_book_columns(out):
        sizes.append(len(cols))
        peak = max(peak, pa.total_allocated_bytes() - whole)
    assert sizes == [500] * 7 + [264]
    full_table = pa.parquet.read_table(out)  # the whole file at once, for scale
    assert peak < full_table.nbytes / 3


def test_writer_refuses_out_of_order_and_leaves_no_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "w.parquet"
    book = Book("upbit", "BTC", 100, ((1.0, 1.0),), ((2.0, 1.0),))
    with pytest.raises(ValueError, match="arrive after 100"):
        with BookWriter(out, source="rec", synthetic=False, rows_per_group=1) as writer:
            writer.append(book)
            writer.append(Book("upbit", "BTC", 50, book.bids, book.asks))
    assert not out.exists() and not list(tmp_path.iterdir())


def test_corrupt_and_foreign_files_name_the_file(tmp_path: Path) -> None:
    out = tmp_path / "ok.parquet"
    write_books(out, [Book("upbit", "BTC", 1, ((1.0, 1.0),), ((2.0, 1.0),))], source="u", synthetic=False)
    raw = out.read_bytes()
    (tmp_path / "cut.parquet").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"cut\.parquet: not a readable Parquet file"):
        list(read_books(tmp_path / "cut.parquet"))
    pa.parquet.write_table(pa.table({"ts_ms": [1]}), tmp_path / "foreign.parquet")
    with pytest.raises(DataError, match=r"foreign\.parquet: no 'arbitrage_lite' metadata"):
        list(read_books(tmp_path / "foreign.parquet"))


def test_candles_round_trip(data: Path, tmp_path: Path) -> None:
    bars = read_candles_csv(data / "btc" / "upbit_krw-btc_5m.csv")
    out = tmp_path / "c.parquet"
    write_candles(out, bars, source="upbit_krw-btc_5m.csv", synthetic=False, rows_per_group=1000)
    assert list(read_candles(out)) == bars
    batches = list(read_candle_columns(out))
    assert [len(b) for b in batches] == [1000, 1000, 1000, 838]
    assert batches[0].close[0] == 150283000.0 and file_info(out).kind == "candles"
    with pytest.raises(DataError, match="kind 'candles' version 1: expected 'books'"):
        list(read_books(out))


def test_convert_cli(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    dest = tmp_path / "usdm.parquet"
    assert convert_main([str(data / "wire" / "binance_usdm_ws_2021-07-22.txt"), str(dest)]) == 0
    books = list(read_books(dest))
    assert len(books) == 752 and all(a.ts_ms <= b.ts_ms for a, b in zip(books, books[1:]))
    assert file_info(dest).source == "binance_usdm_ws_2021-07-22.txt"
    bad = tmp_path / "upbit_krw-btc_5m.csv"
    bad.write_text("timestamp_utc,open,high,low,close,volume\n2025-01-01 00:00:00,1,2,0.5,1,oops\n")
    assert convert_main([str(bad), str(tmp_path / "bad.parquet")]) == 2
    assert "line 2: volume 'oops' is not a number" in capsys.readouterr().err
    assert not (tmp_path / "bad.parquet").exists()
