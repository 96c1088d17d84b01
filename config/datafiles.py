"""Backtest data checks at load time: files exist, look like what they claim, cover the symbols."""
from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

from config.errors import Problem, shown
from config.schema import DataSpec, Profile
from domain.symbols import FX_SYMBOL

CANDLE_HEADER = "timestamp_utc,open,high,low,close,volume"
# The coin is in the file name for CSV candles: upbit_krw-btc_5m.csv, binance_btcusdt_5m.csv.
CANDLE_NAME = {"upbit_candles": re.compile(r"krw-([a-z0-9]+)", re.I),
               "binance_candles": re.compile(r"_([a-z0-9]+?)usdt", re.I)}


def _first_line(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return handle.readline().strip()


def _parquet_symbols(path: Path) -> set[str]:
    """Distinct coins in a Parquet file's `symbol` column (only that column is read)."""
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path).read(columns=["symbol"])
    return {str(s) for s in table.column("symbol").unique().to_pylist()}


def _file_coins(spec: DataSpec, key: str, path: Path) -> tuple[set[str] | None, Problem | None]:
    """The coins one file covers, or the problem that keeps us from knowing."""
    name = f"data.{key}"
    if path.suffix == ".parquet":
        try:
            return _parquet_symbols(path), None
        except Exception as exc:  # pyarrow raises several types for a corrupt or foreign file
            return None, Problem(name, "a Parquet file with a 'symbol' column",
                                 f"{path} that cannot be read ({exc.__class__.__name__}: {exc})")
    if key == "books":
        return None, Problem(name, "a .parquet books file", shown(spec.books))
    try:
        header = _first_line(path)
    except (OSError, UnicodeDecodeError, EOFError, zlib.error) as exc:
        return None, Problem(name, "a readable CSV file", f"{path} ({exc})")
    if header != CANDLE_HEADER:
        return None, Problem(name, f"a CSV whose row 1 is {CANDLE_HEADER!r}",
                             f"{shown(header)} in {path}")
    match = CANDLE_NAME[key].search(path.name)
    if not match:
        return None, Problem(name, "a file name that names its market (e.g. upbit_krw-btc_5m.csv)",
                             shown(path.name))
    return {match.group(1).upper()}, None


def check_data(profile: Profile) -> list[Problem]:
    """Every check of the data section; empty when the backtest input is usable."""
    spec, problems = profile.data, []
    if spec is None:
        return [Problem("data", "a data section for mode backtest", "nothing")]
    file_keys = ("upbit_candles", "binance_candles") if spec.kind == "candles" else ("books",)
    other = ("books", "synthetic_seed", "synthetic_days") if spec.kind == "candles" else (
        "upbit_candles", "binance_candles")
    for key in other:
        if getattr(spec, key) is not None:
            problems.append(Problem(f"data.{key}", f"null when data.kind is {spec.kind!r}",
                                    shown(getattr(spec, key))))
    synthetic = spec.kind == "books" and spec.books is None
    if synthetic:
        for key in ("synthetic_seed", "synthetic_days"):
            if getattr(spec, key) is None:
                problems.append(Problem(f"data.{key}", "a value when data.books is null "
                                        "(synthetic books are generated)", "nothing"))
        return problems
    if spec.kind == "books" and (spec.synthetic_seed is not None or spec.synthetic_days is not None):
        problems.append(Problem("data.books", "null when synthetic_seed/synthetic_days are set",
                                shown(spec.books)))
    covered: dict[str, set[str]] = {}
    for key in file_keys:
        path = spec.resolve(key)
        if path is None:
            problems.append(Problem(f"data.{key}", f"a file path when data.kind is {spec.kind!r}",
                                    "nothing"))
            continue
        if not path.is_file():
            problems.append(Problem(f"data.{key}", "an existing data file",
                                    f"{shown(getattr(spec, key))} (no file at {path})"))
            continue
        coins, problem = _file_coins(spec, key, path)
        if problem:
            problems.append(problem)
        else:
            covered[key] = coins - {FX_SYMBOL}
    if problems or not covered:
        return problems
    return problems + _coverage(profile, covered)


def _coverage(profile: Profile, covered: dict[str, set[str]]) -> list[Problem]:
    """Universe symbols the data files hold; both candle files about the same coin."""
    problems = []
    if set(covered) == {"upbit_candles", "binance_candles"} and \
            covered["upbit_candles"] != covered["binance_candles"]:
        problems.append(Problem("data.binance_candles",
                                f"candles of the coin in data.upbit_candles {sorted(covered['upbit_candles'])}",
                                f"{sorted(covered['binance_candles'])}"))
    coins = set.intersection(*covered.values())
    universe = profile.universe
    if universe.symbols is not None:
        for i, symbol in enumerate(universe.symbols):
            if symbol not in coins:
                problems.append(Problem(f"universe.symbols[{i}]",
                                        f"a coin the data files cover {sorted(coins)}", shown(symbol)))
    elif universe.top_n is not None:
        if profile.data.kind == "candles":
            problems.append(Problem("universe.top_n", "symbols, not top_n, for a candle backtest "
                                    "(candle files hold one coin)", shown(universe.top_n)))
        elif universe.top_n > len(coins):
            problems.append(Problem("universe.top_n", f"at most {len(coins)} (coins in data.books)",
                                    shown(universe.top_n)))
    return problems
