"""Importers on the real recorded files (values read from the files) and on corrupted copies."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from marketdata.errors import DataError
from marketdata.importers import read_books_jsonl, read_candles_csv, read_upbit_kst_csv


def _corrupt(src: Path, dest: Path, line_no: int, old: str, new: str) -> Path:
    """Copy src to dest replacing `old` by `new` on 1-based line `line_no` (asserting it was there)."""
    lines = src.read_text().splitlines(keepends=True)
    assert old in lines[line_no - 1], (old, lines[line_no - 1][:120])
    lines[line_no - 1] = lines[line_no - 1].replace(old, new, 1)
    dest.write_text("".join(lines))
    return dest


def test_candles_5m_real_values(data: Path) -> None:
    bars = read_candles_csv(data / "btc" / "upbit_krw-btc_5m.csv")
    assert len(bars) == 3838
    first = bars[0]
    assert (first.venue, first.symbol, first.interval_s) == ("upbit", "BTC", 300)
    assert first.ts_ms == 1748455200000  # 2025-05-28 18:00 UTC
    assert (first.open, first.close, first.volume) == (150275000.0, 150283000.0, 1.73993932)
    binance = read_candles_csv(data / "btc" / "binance_btcusdt_5m.csv")
    assert len(binance) == 19305 and binance[0].close == 108791.07 and binance[0].venue == "binance"
    assert all(b.ts_ms - a.ts_ms == 300_000 for a, b in zip(binance, binance[1:]))  # README: gap-free


def test_candles_gz_real_values(data: Path) -> None:
    bars = read_candles_csv(data / "btc" / "upbit_krw-btc_1m.csv.gz")
    assert len(bars) == 98400 and bars[0].interval_s == 60
    assert bars[0].ts_ms == 1724538480000 and bars[0].volume == 1.69129818  # 2024-08-24 22:28 UTC


def test_candles_bad_number_names_file_and_line(data: Path, tmp_path: Path) -> None:
    bad = _corrupt(data / "btc" / "upbit_krw-btc_5m.csv", tmp_path / "upbit_krw-btc_5m.csv", 10, ".", "x.")
    with pytest.raises(DataError, match=r"upbit_krw-btc_5m\.csv, line 10: .*not a number"):
        read_candles_csv(bad)


def test_candles_missing_column_and_unsorted(data: Path, tmp_path: Path) -> None:
    src = data / "btc" / "upbit_krw-btc_5m.csv"
    bad = _corrupt(src, tmp_path / "upbit_krw-btc_5m.csv", 1, ",volume", ",vol")
    with pytest.raises(DataError, match=r"line 1: missing column\(s\) \['volume'\]"):
        read_candles_csv(bad)
    lines = src.read_text().splitlines(keepends=True)
    lines[5], lines[6] = lines[6], lines[5]
    (tmp_path / "upbit_krw-btc_5m.csv").write_text("".join(lines))
    with pytest.raises(DataError, match=r"line 7: timestamp .* not after the previous bar"):
        read_candles_csv(tmp_path / "upbit_krw-btc_5m.csv")


def test_candles_truncated_gz(data: Path, tmp_path: Path) -> None:
    raw = (data / "btc" / "upbit_krw-btc_1m.csv.gz").read_bytes()
    bad = tmp_path / "upbit_krw-btc_1m.csv.gz"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"upbit_krw-btc_1m\.csv\.gz.*(EOFError|truncated|line)"):
        read_candles_csv(bad)


def test_candles_short_row(data: Path, tmp_path: Path) -> None:
    text = gzip.open(data / "btc" / "upbit_krw-btc_1m.csv.gz", "rt").read().splitlines()[:50]
    text[20] = text[20].rsplit(",", 2)[0]  # a line cut short
    bad = tmp_path / "upbit_krw-btc_1m.csv.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"line 21: row has .*truncated"):
        read_candles_csv(bad)


def test_books_jsonl_real_values(data: Path) -> None:
    upbit = read_books_jsonl(data / "books" / "2025-08-24_upbit_krw-btc_20lvl.jsonl")
    binance = read_books_jsonl(data / "books" / "2025-08-24_binance_btcusdt_20lvl.jsonl")
    assert len(upbit) == 8 and len(binance) == 3
    assert all(len(b.bids) == 20 and len(b.asks) == 20 for b in upbit + binance)
    assert upbit[0].bids[0] == (159508000.0, 0.02069352) and upbit[0].best_ask == 159523000.0
    assert upbit[0].ts_ms == 1756015398382  # 2025-08-24T06:03:18.382 UTC
    assert binance[0].best_bid == 115279.25 and binance[0].asks[0] == (115279.26, 8.61031)
    assert upbit[-1].best_bid / binance[-1].best_ask == pytest.approx(1383.7, abs=2.0)  # README figure


def test_books_jsonl_truncated_and_crossed(data: Path, tmp_path: Path) -> None:
    src = data / "books" / "2025-08-24_upbit_krw-btc_20lvl.jsonl"
    lines = src.read_text().splitlines(keepends=True)
    (tmp_path / "t.jsonl").write_text("".join(lines[:3]) + lines[3][:200])
    with pytest.raises(DataError, match=r"t\.jsonl, line 4: truncated or malformed JSON"):
        read_books_jsonl(tmp_path / "t.jsonl")
    bad = _corrupt(src, tmp_path / "c.jsonl", 2, '"bids":[[', '"bids":[[999999999.0,1.0],[')
    with pytest.raises(DataError, match=r"c\.jsonl, line 2: .*crossed"):
        read_books_jsonl(bad)


def test_upbit_kst_csv_real_values(data: Path) -> None:
    books = read_upbit_kst_csv(data / "books" / "2024-04-27_upbit_krw-eth_5lvl_kst.csv")
    assert len(books) == 3764
    first = books[0]
    assert (first.venue, first.symbol) == ("upbit", "ETH")
    assert first.ts_ms == 1714207175000  # 17:39:35 KST = 08:39:35 UTC
    assert first.best_bid == 4610000.0 and first.best_ask == 4612000.0
    assert first.asks[0] == (4612000.0, 5.89731405) and len(first.bids) == len(first.asks) == 5
    assert books[-1].ts_ms == 1714229997000  # 23:59:57 KST


def test_upbit_kst_csv_bad_type_and_unsorted(data: Path, tmp_path: Path) -> None:
    src = data / "books" / "2024-04-27_upbit_krw-eth_5lvl_kst.csv"
    bad = _corrupt(src, tmp_path / "x_upbit_krw-eth_kst.csv", 8, "|0|", "|7|")
    with pytest.raises(DataError, match=r"x_upbit_krw-eth_kst\.csv, line 8: type '7'"):
        read_upbit_kst_csv(bad)
    lines = src.read_text().splitlines(keepends=True)
    lines[2], lines[3] = lines[3], lines[2]  # asks 4613000 and 4614000 swapped
    (tmp_path / "y_upbit_krw-eth_kst.csv").write_text("".join(lines))
    with pytest.raises(DataError, match=r"lines 2-11: .*asks not sorted"):
        read_upbit_kst_csv(tmp_path / "y_upbit_krw-eth_kst.csv")


def test_upbit_kst_csv_missing_column(data: Path, tmp_path: Path) -> None:
    src = data / "books" / "2024-04-27_upbit_krw-eth_5lvl_kst.csv"
    bad = _corrupt(src, tmp_path / "z_upbit_krw-eth_kst.csv", 1, "|type", "|kind")
    with pytest.raises(DataError, match=r"line 1: missing column\(s\) \['type'\]"):
        read_upbit_kst_csv(bad)
    shutil.copy(src, tmp_path / "nocoin.csv")
    with pytest.raises(DataError, match="upbit_krw-<coin>_"):
        read_upbit_kst_csv(tmp_path / "nocoin.csv")
