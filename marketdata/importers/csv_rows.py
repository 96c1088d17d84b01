"""Shared CSV row helpers: open plain or gzip text, check the header, parse numbers naming the row."""
from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Iterator

from marketdata.errors import DataError


def open_text(path: Path) -> io.TextIOBase:
    return gzip.open(path, "rt", encoding="utf-8", newline="") if path.suffix == ".gz" else \
        open(path, encoding="utf-8", newline="")


def rows(path: Path, required: tuple[str, ...], delimiter: str = ",") -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row; DataError on a missing column or a short row."""
    try:
        with open_text(path) as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(path, 1, f"missing column(s) {missing}; header is {reader.fieldnames}")
            for row in reader:
                if None in row.values() or None in row:
                    raise DataError(path, reader.line_num, f"row has {len(row)} fields, header has "
                                    f"{len(reader.fieldnames)} (truncated line?)")
                yield reader.line_num, row
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(path, None, f"cannot read ({exc.__class__.__name__}: {exc})") from exc


def num(row: dict[str, str], key: str, path: Path, line: int) -> float:
    try:
        out = float(row[key])
    except (TypeError, ValueError):
        raise DataError(path, line, f"{key} {row[key]!r} is not a number") from None
    if out != out or out in (float("inf"), float("-inf")):
        raise DataError(path, line, f"{key} {row[key]!r} is not finite")
    return out
