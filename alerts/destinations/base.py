"""What every destination shares: the send contract, its error, chat text and a JSON POST."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Protocol
from urllib.parse import urlsplit

from alerts.events import Alert
from alerts.masking import Masker

DEFAULT_TIMEOUT_S = 2.0
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class DeliveryError(Exception):
    """An alert did not reach a destination. `retryable`: worth another try (5xx, 429, refused)."""

    def __init__(self, message: str, retryable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class Destination(Protocol):
    """A channel: formats an alert its own way and sends it, raising DeliveryError on failure."""

    name: str
    secrets: tuple[str, ...]

    def send(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


def chat_text(alert: Alert, limit: int) -> str:
    """The message a person reads: severity, kind, symbol, source, message, then the fields."""
    where = f" {alert.symbol}" if alert.symbol else ""
    lines = [f"[{alert.severity.name}] {alert.kind}{where} ({alert.source})", alert.message]
    lines += [f"{key}: {value}" for key, value in alert.fields.items()]
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def post_json(url: str, payload: dict[str, Any], timeout_s: float, masker: Masker,
              channel: str) -> None:
    """POST JSON and read the reply; any failure becomes a DeliveryError with secrets masked.

    Errors are raised `from None` so the URL (which holds the token) is not in the traceback.
    """
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with _opener(url).open(request, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        body = masker(exc.read(300).decode("utf-8", "replace")) if exc.fp else ""
        raise DeliveryError(f"{channel}: HTTP {exc.code} {body}".rstrip(),
                            retryable=exc.code == 429 or exc.code >= 500,
                            retry_after_s=retry_after) from None
    except TimeoutError:
        # Not retried: the server may have taken it, and a retry would hold the channel longer.
        raise DeliveryError(f"{channel}: no reply within {timeout_s} s", retryable=False) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise DeliveryError(f"{channel}: no reply within {timeout_s} s",
                                retryable=False) from None
        raise DeliveryError(f"{channel}: {masker(str(reason))}", retryable=True) from None


def _opener(url: str) -> urllib.request.OpenerDirector:
    """Loopback targets bypass any proxy from the environment; real hosts honour it."""
    if urlsplit(url).hostname in _LOOPBACK:
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
