"""Scrub API keys from text, payloads, exceptions and every log record before they leave the process.

Snapshot, database and alert code call `redact(payload)` before writing; `install_log_redaction`
makes every log record pass through the same scrubber.
"""
from __future__ import annotations

import base64
import logging
import re
import traceback
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

from live.secrets import MASK, ApiKeys, Secret

MIN_SECRET_LEN = 6  # shorter values would blank ordinary words out of every log line

# Key names whose values are credentials whatever they hold (ccxt config, HTTP headers, our files).
SENSITIVE_KEYS = frozenset({
    "apikey", "api_key", "secret", "secret_key", "secretkey", "access_key", "accesskey", "password",
    "passphrase", "token", "authorization", "signature", "privatekey", "private_key", "x-mbx-apikey",
})

# Credentials recognisable by shape even when their value is not a known secret.
_PATTERNS = (
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), MASK + "jwt"),
    (re.compile(r"(?i)\b(signature=)[0-9a-f]{16,}"), r"\1" + MASK),
    (re.compile(r"(?i)(x-mbx-apikey['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"), r"\1" + MASK),
)


def _encodings(value: str) -> set[str]:
    """The forms a key takes on the wire: raw, URL-encoded, base64 (Basic auth, JWT segments)."""
    raw = value.encode()
    return {value, quote(value, safe=""), quote_plus(value),
            base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")}


class Redactor:
    """Replaces every known secret (and its encodings) and any credential-shaped token with ***."""

    def __init__(self, secrets: Iterable[Secret | str] = ()) -> None:
        forms: set[str] = set()
        for item in secrets:
            value = item.reveal() if isinstance(item, Secret) else item
            if not isinstance(value, str) or len(value) < MIN_SECRET_LEN:
                raise ValueError(f"Redactor: a secret must be a string of {MIN_SECRET_LEN}+ characters")
            forms |= _encodings(value)
        # Longest first so a value is replaced whole, not after a shorter form nibbled at it.
        ordered = sorted(forms, key=len, reverse=True)
        self._known = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self.count = len(ordered)

    @classmethod
    def from_keys(cls, keys: Mapping[str, ApiKeys]) -> "Redactor":
        """A redactor for every key and secret that load_keys returned."""
        return cls(s for pair in keys.values() for s in (pair.api_key, pair.secret))

    def text(self, value: str) -> str:
        """A string with every secret replaced."""
        if self._known is not None:
            value = self._known.sub(MASK, value)
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return value

    def scrub(self, obj: object) -> object:
        """A copy of `obj` (str, bytes, dict, list, tuple, set, exception, Secret) with secrets gone."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Secret):
            return obj.masked()
        if isinstance(obj, (bytes, bytearray)):
            return self.text(bytes(obj).decode("utf-8", "replace")).encode()
        if isinstance(obj, Mapping):
            return {self.scrub(k): MASK if _sensitive(k) and _credential(v) else self.scrub(v)
                    for k, v in obj.items()}
        if isinstance(obj, (list, tuple, set, frozenset)):
            return type(obj)(self.scrub(item) for item in obj)
        if isinstance(obj, BaseException):
            return self.text(f"{type(obj).__name__}: {obj}")
        return obj

    def exception(self, exc: BaseException) -> str:
        """The full traceback of `exc` (with its causes) as scrubbed text, for alerts and logs."""
        return self.text("".join(traceback.format_exception(exc)))


def _credential(value: object) -> bool:
    return isinstance(value, (str, bytes, Secret)) and bool(str(value))


def _sensitive(key: object) -> bool:
    return isinstance(key, str) and key.strip().lower().replace(" ", "_") in SENSITIVE_KEYS


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, args, traceback and stack text through a Redactor; drops nothing."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not make the secret in args escape
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = self.redactor.text(str(message)), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # Formatters print exc_text when set; clearing exc_info stops handlers re-rendering it raw.
            record.exc_text, record.exc_info = self.redactor.text(record.exc_text), None
        if record.stack_info:
            record.stack_info = self.redactor.text(record.stack_info)
        return True


_installed: dict[str, object] = {}
_NO_SECRETS = Redactor()


def install_log_redaction(redactor: Redactor) -> RedactingFilter:
    """Scrub every log record: filter on the root logger and its handlers, and at record creation.

    A filter on the root logger alone misses records that propagate from child loggers, so the
    record factory applies it too, which also covers handlers added later.
    """
    uninstall_log_redaction()
    flt = RedactingFilter(redactor)
    root = logging.getLogger()
    root.addFilter(flt)
    for handler in root.handlers:
        handler.addFilter(flt)
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        flt.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed.update(filter=flt, previous=previous, handlers=list(root.handlers))
    return flt


def uninstall_log_redaction() -> None:
    """Undo install_log_redaction (tests; a process normally keeps redaction for its lifetime)."""
    if not _installed:
        return
    flt = _installed["filter"]
    root = logging.getLogger()
    root.removeFilter(flt)
    for handler in _installed["handlers"]:
        handler.removeFilter(flt)
    logging.setLogRecordFactory(_installed["previous"])
    _installed.clear()


def active_redactor() -> Redactor:
    """The installed redactor, or one that still scrubs credential-shaped tokens and key names."""
    return _installed.get("filter").redactor if _installed else _NO_SECRETS  # type: ignore[union-attr]


def redact(obj: object) -> object:
    """Scrub a payload before it is stored or sent (snapshot store, database rows, alerts)."""
    return active_redactor().scrub(obj)
