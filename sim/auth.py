"""Request signatures checked the way the venues check them: Upbit JWT (HS256) and Binance HMAC-SHA256."""
from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import unquote_plus

import jwt


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key pair; balances are kept per key. The permissions are what the venues report on it."""

    key: str
    secret: str
    can_withdraw: bool = False                # Binance apiRestrictions.enableWithdrawals
    can_trade: bool = True                    # Binance enableSpotAndMarginTrading and enableFutures
    expire_at: str = "2099-12-31T00:00:00+09:00"  # Upbit /v1/api_keys expire_at (KST, as Upbit prints it)


class AuthError(Exception):
    """The request is not signed by a known key; `code`/`name` are the venue's own error ids."""

    def __init__(self, code: int | str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def upbit_raw_query(pairs: list[tuple[str, str]]) -> str:
    """The unencoded `k=v&k=v` string Upbit hashes (ccxt's rawencode), in the order sent."""
    return "&".join(f"{k}={v}" for k, v in pairs)


def verify_upbit(authorization: str | None, keys: dict[str, ApiKey], raw_query: str) -> ApiKey:
    """Check `Authorization: Bearer <jwt>` against the key's secret and the query's SHA512 hash."""
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthError("jwt_verification", "Jwt 토큰 검증에 실패했습니다.")
    token = authorization[len("Bearer "):]
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AuthError("jwt_verification", "Jwt 토큰 검증에 실패했습니다.") from None
    api_key = keys.get(str(unverified.get("access_key")))
    if api_key is None:
        raise AuthError("invalid_access_key", "잘못된 엑세스 키입니다.")
    try:
        claims = jwt.decode(token, api_key.secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        raise AuthError("jwt_verification", "Jwt 토큰 검증에 실패했습니다.") from None
    if raw_query:
        expected = hashlib.sha512(raw_query.encode()).hexdigest()
        if claims.get("query_hash") != expected or claims.get("query_hash_alg", "SHA512") != "SHA512":
            raise AuthError("invalid_query_payload", "query_hash does not match the request parameters")
    if not claims.get("nonce"):
        raise AuthError("jwt_verification", "nonce missing from the JWT payload")
    return api_key


def verify_binance(api_key_header: str | None, keys: dict[str, ApiKey], signed_payload: str,
                   now_ms: int | None = None) -> tuple[ApiKey, dict[str, str]]:
    """Check X-MBX-APIKEY, the HMAC-SHA256 `signature`, `timestamp` and `recvWindow`; return key and params."""
    api_key = keys.get(api_key_header or "")
    if api_key is None:
        raise AuthError(-2015, "Invalid API-key, IP, or permissions for action.")
    body, sep, signature = signed_payload.rpartition("&signature=")
    if not sep or not signature:
        raise AuthError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
    expected = hmac.new(api_key.secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise AuthError(-1022, "Signature for this request is not valid.")
    params = dict(_pairs(body))
    now = int(time.time() * 1000) if now_ms is None else now_ms
    try:
        ts = int(params["timestamp"])
        window = int(params.get("recvWindow", "5000"))
    except (KeyError, ValueError):
        raise AuthError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.") from None
    if window <= 0 or window > 60_000:
        raise AuthError(-1131, "recvWindow must be less than 60000")
    if ts > now + 1000 or now - ts > window:
        raise AuthError(-1021, "Timestamp for this request is outside of the recvWindow.")
    return api_key, params


def _pairs(query: str) -> list[tuple[str, str]]:
    out = []
    for part in query.split("&"):
        if part:
            k, _, v = part.partition("=")
            out.append((unquote_plus(k), unquote_plus(v)))
    return out
