"""Keep secrets out of snapshots: the default redactor masks values stored under secret-looking keys."""
from __future__ import annotations

from typing import Any, Callable

Redactor = Callable[[dict[str, Any]], dict[str, Any]]

MASK = "***"
SECRET_NAMES = frozenset({"api_key", "apikey", "api_secret", "secret", "secret_key", "password",
                          "passphrase", "private_key", "access_key", "access_token", "token",
                          "auth", "authorization", "signature", "jwt"})
SECRET_PARTS = ("secret", "password", "passphrase", "private_key")


def redact_secrets(payload: dict[str, Any]) -> dict[str, Any]:
    """A copy of `payload` with every value under a secret-looking key (at any depth) masked."""
    return _walk(payload)


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: MASK if _is_secret(k) else _walk(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk(v) for v in value]
    return value


def _is_secret(name: Any) -> bool:
    lowered = str(name).lower()
    return lowered in SECRET_NAMES or any(part in lowered for part in SECRET_PARTS)
