"""The real 2025-08-24 BTC books of both venues (golden case for depth walks and premiums)."""
from __future__ import annotations

import pytest

from marketdata.importers import read_books_jsonl


@pytest.fixture(scope="session")
def upbit_books(data):
    return read_books_jsonl(data / "books" / "2025-08-24_upbit_krw-btc_20lvl.jsonl")


@pytest.fixture(scope="session")
def binance_books(data):
    return read_books_jsonl(data / "books" / "2025-08-24_binance_btcusdt_20lvl.jsonl")
