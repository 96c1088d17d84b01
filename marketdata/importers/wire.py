"""Line reader for the raw wire captures: `<unix_ts>: <frame>` where a frame is JSON or a bytes literal."""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from marketdata.errors import DataError

_FRAME = re.compile(r"^(?:(?P<url>https?://\S+) -> )?(?P<ts>\d+(?:\.\d+)?): (?P<frame>.*)$")
_HEADER = re.compile(r"^(?:wss?://\S+ <[-]?>?|configuration: )")


@dataclass(frozen=True, slots=True)
class WireFrame:
    """One captured frame: its line number, receive time (epoch ms), REST URL if any, decoded JSON."""

    line: int
    recv_ms: int
    url: str | None
    body: Any


def read_frames(path: str | Path) -> Iterator[WireFrame]:
    """Decode every frame of a capture; header lines (URL, subscription) are passed over by pattern."""
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        for no, raw in enumerate(fh, start=1):
            line = raw.rstrip("\n")
            if not line.strip() or _HEADER.match(line):
                continue
            m = _FRAME.match(line)
            if not m:
                raise DataError(path, no, f"not a '<unix_ts>: <frame>' line: {line[:80]!r}")
            yield WireFrame(no, int(float(m["ts"]) * 1000), m["url"], _decode(m["frame"], path, no))


def _decode(text: str, path: Path, line: int) -> Any:
    try:
        if text.startswith(("b'", 'b"')):
            text = ast.literal_eval(text).decode("utf-8")
        return json.loads(text)
    except (ValueError, SyntaxError, UnicodeDecodeError) as exc:
        raise DataError(path, line, f"truncated or malformed frame ({exc.__class__.__name__}: {exc})") from exc


def number(value: Any, path: Path, line: int, key: str) -> float:
    """A price or size from a frame (JSON number or numeric string, exponent notation allowed)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise DataError(path, line, f"{key}: {value!r} is not a number") from None
    if out != out or out in (float("inf"), float("-inf")):
        raise DataError(path, line, f"{key}: {value!r} is not a finite number")
    return out


def field(obj: dict, key: str, path: Path, line: int) -> Any:
    """obj[key], or a DataError naming the missing key."""
    try:
        return obj[key]
    except (KeyError, TypeError):
        raise DataError(path, line, f"missing key {key!r}") from None
