"""Backtest data checks: file format, the coin each file holds, and what the universe asks for."""
from __future__ import annotations

import gzip
import shutil

import pyarrow as pa
import pyarrow.parquet as pq

from config.loader import load_profile
from tests.config.support import assert_names, error_of, variant

HEADER = "timestamp_utc,open,high,low,close,volume\n"


def _books_file(path, coins):
    table = pa.table({"ts_ms": list(range(len(coins))), "venue": ["upbit"] * len(coins),
                      "symbol": coins})
    pq.write_table(table, path)
    return path


def _books_profile(tmp_path, books, universe):
    def change(doc):
        doc["data"] = {"kind": "books", "books": str(books)}
        doc["universe"] = universe
    return variant(tmp_path, "backtest-synthetic", change)


def test_candle_file_with_the_wrong_header(tmp_path):
    bad = tmp_path / "upbit_krw-btc_5m.csv"
    bad.write_text("time,o,h,l,c,v\n2025-05-28 18:00:00,1,1,1,1,1\n")
    path = variant(tmp_path, "backtest-btc", lambda d: d["data"].update(upbit_candles=str(bad)))
    assert_names(error_of(path), path, "data.upbit_candles",
                 f"a CSV whose row 1 is {HEADER.strip()!r}", "'time,o,h,l,c,v'", str(bad))


def test_gzipped_candles_are_read(tmp_path, data):
    path = variant(tmp_path, "backtest-btc",
                   lambda d: d["data"].update(upbit_candles="btc/upbit_krw-btc_1m.csv.gz"))
    assert load_profile(path).data.resolve("upbit_candles") == data / "btc" / "upbit_krw-btc_1m.csv.gz"


def test_corrupt_gzip_candles(tmp_path):
    bad = tmp_path / "upbit_krw-btc_1m.csv.gz"
    bad.write_bytes(b"\x1f\x8b\x08 not really gzip")
    path = variant(tmp_path, "backtest-btc", lambda d: d["data"].update(upbit_candles=str(bad)))
    assert_names(error_of(path), path, "data.upbit_candles", "a readable CSV file", str(bad))


def test_candle_files_of_two_different_coins(tmp_path, data):
    eth = tmp_path / "binance_ethusdt_5m.csv"
    eth.write_text(HEADER + "2025-05-25 23:15:00,2500,2501,2499,2500,10\n")
    path = variant(tmp_path, "backtest-btc", lambda d: d["data"].update(binance_candles=str(eth)))
    assert_names(error_of(path), path, "data.binance_candles",
                 "candles of the coin in data.upbit_candles ['BTC']", "got ['ETH']")


def test_candle_file_name_that_names_no_market(tmp_path, data):
    copy = tmp_path / "upbit_5m.csv"
    shutil.copy(data / "btc" / "upbit_krw-btc_5m.csv", copy)
    path = variant(tmp_path, "backtest-btc", lambda d: d["data"].update(upbit_candles=str(copy)))
    assert_names(error_of(path), path, "data.upbit_candles", "a file name that names its market")


def test_top_n_on_candles(tmp_path):
    path = variant(tmp_path, "backtest-btc", lambda d: d.update(universe={"top_n": 5}))
    assert_names(error_of(path), path, "universe.top_n", "symbols, not top_n, for a candle backtest")


def test_books_file_covering_the_symbols_loads(tmp_path):
    books = _books_file(tmp_path / "books.parquet", ["BTC", "ETH", "USDT", "BTC"])
    assert load_profile(_books_profile(tmp_path, books, {"symbols": ["ETH", "BTC"]})).data.kind == "books"
    assert load_profile(_books_profile(tmp_path, books, {"top_n": 2})).universe.top_n == 2


def test_books_file_missing_a_symbol(tmp_path):
    books = _books_file(tmp_path / "books.parquet", ["BTC", "USDT"])
    path = _books_profile(tmp_path, books, {"symbols": ["BTC", "XRP"]})
    assert_names(error_of(path), path, "universe.symbols[1]", "a coin the data files cover ['BTC']",
                 "got 'XRP'")


def test_books_file_with_fewer_coins_than_top_n(tmp_path):
    books = _books_file(tmp_path / "books.parquet", ["BTC", "ETH", "USDT"])
    path = _books_profile(tmp_path, books, {"top_n": 50})
    assert_names(error_of(path), path, "universe.top_n", "at most 2 (coins in data.books)", "got 50")


def test_corrupt_books_file(tmp_path):
    books = tmp_path / "books.parquet"
    books.write_bytes(b"PAR1 truncated")
    path = _books_profile(tmp_path, books, {"top_n": 1})
    assert_names(error_of(path), path, "data.books", "a Parquet file with a 'symbol' column",
                 "cannot be read")


def test_books_kind_needs_parquet(tmp_path, data):
    path = _books_profile(tmp_path, data / "books" / "2025-08-24_upbit_krw-btc_20lvl.jsonl", {"top_n": 1})
    assert_names(error_of(path), path, "data.books", "a .parquet books file")


def test_synthetic_books_need_seed_and_length(tmp_path):
    path = variant(tmp_path, "backtest-synthetic", lambda d: d["data"].pop("synthetic_seed"))
    assert_names(error_of(path), path, "data.synthetic_seed", "a value when data.books is null",
                 "got nothing")


def test_candle_keys_on_a_books_backtest(tmp_path):
    path = variant(tmp_path, "backtest-synthetic",
                   lambda d: d["data"].update(upbit_candles="btc/upbit_krw-btc_5m.csv"))
    assert_names(error_of(path), path, "data.upbit_candles", "null when data.kind is 'books'")
