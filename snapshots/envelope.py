"""The stored form of one snapshot version: a JSON envelope with a SHA-256 of the canonical payload."""
from __future__ import annotations

import hashlib
import json
from typing import Any

REQUIRED = ("version", "ts_ms", "schema", "sha256", "payload")


class CorruptEnvelope(ValueError):
    """One stored version that cannot be trusted; the message says why."""


def canonical_json(payload: dict[str, Any]) -> str:
    """Sorted keys, no spaces, finite numbers only: the same payload always hashes the same."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


PAYLOAD_MARK = b',"payload":'


def checksum(payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def encode(version: int, ts_ms: int, schema: int | str, payload: dict[str, Any]) -> bytes:
    """The envelope with the payload written once, canonically and last, so `decode` can hash the
    stored bytes instead of serializing a large state a second time."""
    text = canonical_json(payload).encode()
    head = {"version": version, "ts_ms": ts_ms, "schema": schema, "sha256": hashlib.sha256(text).hexdigest()}
    return json.dumps(head, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()[:-1] \
        + PAYLOAD_MARK + text + b"}"


def with_version(blob: bytes, version: int) -> bytes:
    """An envelope `encode` made with version 0, numbered `version` (the number is taken only once
    the payload is known to encode)."""
    head = b'{"version":0,'
    if not blob.startswith(head):
        raise ValueError("with_version: not an envelope made by encode(0, ...)")
    return b'{"version":%d,' % version + blob[len(head):]


def decode(blob: bytes) -> dict[str, Any]:
    """The verified envelope in `blob`, or CorruptEnvelope saying what is wrong with it."""
    try:
        body = json.loads(blob)
    except (UnicodeDecodeError, ValueError) as error:
        raise CorruptEnvelope(f"truncated or unparsable ({len(blob)} bytes: {error})") from None
    if not isinstance(body, dict):
        raise CorruptEnvelope(f"not an envelope: a JSON {type(body).__name__}")
    missing = [name for name in REQUIRED if name not in body]
    if missing:
        raise CorruptEnvelope(f"not an envelope: missing {missing}")
    if not isinstance(body["version"], int) or not isinstance(body["ts_ms"], int):
        raise CorruptEnvelope("not an envelope: version and ts_ms must be integers")
    if not isinstance(body["payload"], dict):
        raise CorruptEnvelope("payload is not a JSON object")
    at = blob.rfind(PAYLOAD_MARK)
    if at >= 0 and blob.endswith(b"}") and hashlib.sha256(blob[at + len(PAYLOAD_MARK):-1]).hexdigest() == body["sha256"]:
        return body              # the stored payload bytes are exactly what was hashed at write time
    try:                         # any other layout (hand-written, re-encoded): hash the canonical form
        actual = checksum(body["payload"])
    except ValueError as error:  # NaN or Infinity smuggled in
        raise CorruptEnvelope(f"payload not canonical JSON ({error})") from None
    if actual != body["sha256"]:
        raise CorruptEnvelope(f"checksum mismatch (stored {str(body['sha256'])[:12]}, "
                              f"payload hashes to {actual[:12]})")
    return body


def version_hint(blob: bytes) -> int | None:
    """The version a corrupt blob claims, if it can be read at all (for naming it in reports)."""
    try:
        version = json.loads(blob).get("version")
    except (UnicodeDecodeError, ValueError, AttributeError):
        return None
    return version if isinstance(version, int) else None
