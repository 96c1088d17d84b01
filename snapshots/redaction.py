"""Keep secrets out of snapshots: the default redactor masks values stored under secret-looking keys."""
from __future__ import annotations

from functools import lru_cache
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


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _walk(value: Any) -> Any:
    # Scalars are passed over without a call: a coordinator's state holds tens of thousands of them.
    if isinstance(value, dict):
        return {k: MASK if _is_secret(k) else (v if type(v) in _SCALARS else _walk(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [v if type(v) in _SCALARS else _walk(v) for v in value]
    return value


@lru_cache(maxsize=4096)
def _is_secret_name(lowered: str) -> bool:
    return lowered in SECRET_NAMES or any(part in lowered for part in SECRET_PARTS)


def _is_secret(name: Any) -> bool:
    return _is_secret_name(str(name).lower())
