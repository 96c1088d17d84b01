"""Fail-closed arming: live trading starts only when every condition holds. Pure: no I/O, no clock.

The caller passes the environment mapping, the configured bounds, the loaded keys and `now_ms`.
Every condition is evaluated (none short-circuits) so the operator sees all that is wrong at once.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from domain.venues import Venue
from live.secrets import ApiKeys, account_for

ACK = "ack"
ARMED_AT = "armed_at"
PER_ORDER_CAP = "per_order_cap"
TOTAL_CAP = "total_cap"
API_KEYS = "api_keys"
CONDITIONS = (ACK, ARMED_AT, PER_ORDER_CAP, TOTAL_CAP, API_KEYS)


class LiveRefused(RuntimeError):
    """Live trading was refused; `failures` names every condition that did not hold."""

    def __init__(self, failures: tuple["ArmingFailure", ...]) -> None:
        self.failures = failures
        lines = "\n".join(f"  - {f.name}: {f.message}" for f in failures)
        super().__init__(f"live trading refused, {len(failures)} condition(s) failed:\n{lines}")


@dataclass(frozen=True, slots=True)
class ArmingConfig:
    """What arming demands. Bounds are [min, max] in KRW; times in seconds."""

    ack_var: str = "ARB_LIVE_ACK"
    ack_value: str = "I understand this trades real money"
    armed_at_var: str = "ARB_LIVE_ARMED_AT"
    max_age_s: int = 600                  # an arming older than 10 minutes is stale
    max_future_skew_s: int = 30           # tolerated clock difference for a future timestamp
    per_order_bounds_krw: tuple[float, float] = (5_000.0, 10_000_000.0)
    total_bounds_krw: tuple[float, float] = (5_000.0, 100_000_000.0)

    def __post_init__(self) -> None:
        if not self.ack_var or not self.armed_at_var:
            raise ValueError("arming: ack_var and armed_at_var must be named")
        if len(self.ack_value.strip()) < 8:
            raise ValueError("arming.ack_value must be a deliberate phrase (8+ characters)")
        if not 0 < self.max_age_s <= 600:
            raise ValueError(f"arming.max_age_s {self.max_age_s}: must be in (0, 600]")
        if not 0 <= self.max_future_skew_s <= 120:
            raise ValueError(f"arming.max_future_skew_s {self.max_future_skew_s}: must be in [0, 120]")
        for name in ("per_order_bounds_krw", "total_bounds_krw"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"arming.{name} {(low, high)}: need 0 < min <= max")


@dataclass(frozen=True, slots=True)
class NotionalCaps:
    """The caps the operator set for this live run, in KRW (None = not set)."""

    per_order_krw: float | None
    total_krw: float | None


@dataclass(frozen=True, slots=True)
class ArmingFailure:
    """One condition that did not hold, by name, with what to do about it."""

    name: str
    message: str


@dataclass(frozen=True, slots=True)
class ArmingResult:
    """The verdict over all conditions: armed only when no condition failed."""

    failures: tuple[ArmingFailure, ...]

    @property
    def armed(self) -> bool:
        return not self.failures

    @property
    def failed_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.failures)


def check_arming(env: Mapping[str, str], config: ArmingConfig, caps: NotionalCaps,
                 venues: Iterable[Venue], keys: Mapping[str, ApiKeys], now_ms: int,
                 keys_problem: str | None = None) -> ArmingResult:
    """Evaluate every arming condition; `keys_problem` is why loading keys failed, if it did."""
    checks = (
        (ACK, _ack_problem(env, config)),
        (ARMED_AT, _armed_at_problem(env, config, now_ms)),
        (PER_ORDER_CAP, _cap_problem("per-order", caps.per_order_krw, config.per_order_bounds_krw)),
        (TOTAL_CAP, _total_cap_problem(caps, config)),
        (API_KEYS, keys_problem or missing_keys(venues, keys)),
    )
    return ArmingResult(tuple(ArmingFailure(name, msg) for name, msg in checks if msg))


def require_armed(env: Mapping[str, str], config: ArmingConfig, caps: NotionalCaps,
                  venues: Iterable[Venue], keys: Mapping[str, ApiKeys], now_ms: int,
                  keys_problem: str | None = None) -> ArmingResult:
    """check_arming, raising LiveRefused with every failed condition unless armed."""
    result = check_arming(env, config, caps, venues, keys, now_ms, keys_problem)
    if not result.armed:
        raise LiveRefused(result.failures)
    return result


def _ack_problem(env: Mapping[str, str], config: ArmingConfig) -> str | None:
    value = env.get(config.ack_var)
    if value is None:
        return f"{config.ack_var} is not set; set it to exactly {config.ack_value!r}"
    if value != config.ack_value:
        return f"{config.ack_var} is not exactly {config.ack_value!r} (got a {len(value)}-character value that differs)"
    return None


def _armed_at_problem(env: Mapping[str, str], config: ArmingConfig, now_ms: int) -> str | None:
    var = config.armed_at_var
    raw = env.get(var)
    if raw is None or not raw.strip():
        return f"{var} is not set; set it to the current time (epoch seconds or ISO-8601 UTC)"
    try:
        armed_ms = parse_arming_time(raw)
    except ValueError as exc:
        return f"{var}={raw!r}: {exc}"
    age_s = (now_ms - armed_ms) / 1000
    if age_s > config.max_age_s:
        return f"{var} is {age_s:.0f}s old, older than {config.max_age_s}s; re-arm with the current time"
    if -age_s > config.max_future_skew_s:
        hint = " (milliseconds given? use seconds)" if armed_ms > now_ms * 100 else ""
        return f"{var} is {-age_s:.0f}s in the future, beyond the {config.max_future_skew_s}s skew allowed{hint}"
    return None


def parse_arming_time(raw: str) -> int:
    """Epoch seconds ('1714560000', '1714560000.5') or ISO-8601 with an offset, to epoch ms."""
    text = raw.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError("epoch seconds must be a positive finite number")
        return int(seconds * 1000)
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError("not epoch seconds nor an ISO-8601 time like 2024-05-01T12:00:00Z") from None
    if stamp.tzinfo is None:
        raise ValueError("ISO-8601 time has no offset; write it in UTC with a trailing Z")
    return int(stamp.astimezone(timezone.utc).timestamp() * 1000)


def _cap_problem(label: str, value: float | None, bounds: tuple[float, float]) -> str | None:
    low, high = bounds
    if value is None:
        return f"{label} max-notional cap is not set; set it within [{low:,.0f}, {high:,.0f}] KRW"
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return f"{label} max-notional cap {value!r} is not a finite number"
    if not low <= value <= high:
        return f"{label} max-notional cap {value:,.0f} KRW is outside [{low:,.0f}, {high:,.0f}] KRW"
    return None


def _total_cap_problem(caps: NotionalCaps, config: ArmingConfig) -> str | None:
    problem = _cap_problem("total", caps.total_krw, config.total_bounds_krw)
    if problem:
        return problem
    per_order = caps.per_order_krw
    if isinstance(per_order, (int, float)) and math.isfinite(per_order) and per_order > caps.total_krw:
        return f"total max-notional cap {caps.total_krw:,.0f} KRW is below the per-order cap {per_order:,.0f} KRW"
    return None


def missing_keys(venues: Iterable[Venue], keys: Mapping[str, ApiKeys]) -> str | None:
    """Why `keys` cannot trade `venues` (a missing or empty pair), or None."""
    venue_list = list(venues)
    if not venue_list:
        return "the profile names no venue to trade; nothing to check keys for"
    missing = []
    for venue in venue_list:
        account = account_for(venue)
        pair = keys.get(account)
        if pair is None or not pair.api_key.reveal().strip() or not pair.secret.reveal().strip():
            missing.append(f"{venue.value} (account {account})")
    if missing:
        return "no API key pair for " + ", ".join(dict.fromkeys(missing)) + \
               "; set the ARB_<VENUE>_* variables or a git-ignored secrets file"
    return None
