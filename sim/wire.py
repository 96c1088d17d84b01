"""Small formatting helpers shared by the protocol modules: decimal strings, times, JSON replies."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from aiohttp import web

KST = timezone(timedelta(hours=9))


def dec(x: float | None) -> str | None:
    """A float as the venue prints it: plain decimal, no exponent, no float noise."""
    if x is None:
        return None
    text = repr(float(x))
    if "e" in text or not text[-1].isdigit():   # exponent (or inf/nan): Decimal spells it out
        text = format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


def fixed8(x: float) -> str:
    """Binance spot style '0.35210000', falling back to the exact decimal when 8 places would round."""
    text = f"{x:.8f}"
    return text if float(text) == x else dec(x)


def kst_iso(ts_ms: int) -> str:
    """Upbit's created_at: ISO-8601 in Korea time with the +09:00 offset."""
    return datetime.fromtimestamp(ts_ms / 1000, KST).isoformat(timespec="seconds")


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(payload), status=status, content_type="application/json",
                        headers=headers)
