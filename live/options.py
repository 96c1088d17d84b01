"""The knobs of a live run: the profile's `live:` section (config.schema.Live) or code defaults, checked here."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from live.backoff import Backoff
from live.desk import AUTO_KILL
from live.killswitch import POLICIES

SECRETS_FILE_VAR = "ARB_SECRETS_FILE"


@dataclass(frozen=True)
class LiveOptions:
    """How the live coordinator trades, reconciles and kills. Times in seconds."""

    kill_policy: str = "flatten"          # what the kill switch does with positions: flatten | freeze
    order_style: str = "limit_ioc"        # limit IOC inside band_bps of the reference price, or market
    band_bps: float = 50.0
    kill_on: tuple[str, ...] = AUTO_KILL  # breaches that engage the kill switch by themselves
    reconcile_s: float = 30.0             # compare orders, balances and positions with the venues
    funding_s: float = 300.0              # book USDT-M funding (perp hedge only)
    kill_deadline_s: float = 60.0         # the kill switch retries failing venues this long
    backoff: Backoff | None = None        # venue retries; None: LiveVenue's default
    rate_limit: bool = True               # ccxt's client-side throttle; only a loopback simulator goes without
    max_skew_ms: float = 1000.0           # preflight clock-skew limit
    lease_ttl_s: float = 30.0             # a dead process's run lease lapses after this (live/lease.py)

    def __post_init__(self) -> None:
        if self.kill_policy not in POLICIES:
            raise ValueError(f"live options: kill_policy {self.kill_policy!r}: expected one of {POLICIES}")
        for name in ("reconcile_s", "funding_s", "kill_deadline_s", "lease_ttl_s"):
            if not 0 < getattr(self, name) <= 86_400:
                raise ValueError(f"live options: {name} {getattr(self, name)!r} must be in (0, 86400] seconds")
        unknown = set(self.kill_on) - set(AUTO_KILL)
        if unknown:
            raise ValueError(f"live options: kill_on {sorted(unknown)} unknown; expected some of {AUTO_KILL}")

    @classmethod
    def from_profile(cls, live: Any, **overrides: Any) -> "LiveOptions":
        """The profile's live section (None: the defaults), with `overrides` (a CLI flag) on top."""
        given = {} if live is None else {
            "kill_policy": live.kill_policy, "kill_on": tuple(live.kill_on), "kill_deadline_s": live.kill_deadline_s,
            "order_style": live.order_style, "band_bps": live.band_bps, "reconcile_s": live.reconcile_s,
            "max_skew_ms": live.max_skew_ms, "lease_ttl_s": live.lease_ttl_s}
        return cls(**{**given, **{k: v for k, v in overrides.items() if v is not None}})

    def desk_options(self) -> dict[str, Any]:
        """The LiveDesk keyword arguments (LiveDesk checks order_style and band_bps)."""
        return {"order_style": self.order_style, "band_bps": self.band_bps, "kill_on": tuple(self.kill_on)}


def arming_env(profile: Any, env: Mapping[str, str]) -> dict[str, str]:
    """The variables another process needs to arm again: acknowledgement, arming time, secrets file path.

    Never a key: keys are loaded inside the process that signs (live.secrets.Secret refuses to pickle),
    from its own environment or the secrets file named here.
    """
    names = (profile.live.ack_env, profile.live.arm_timestamp_env, SECRETS_FILE_VAR)
    return {name: env[name] for name in names if name in env}
