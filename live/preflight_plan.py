"""The standard live preflight: which checks run, built from the profile's venues and stores."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.venues import Venue
from live import infra_checks, venue_checks
from live.preflight import Check
from live.secrets import ApiKeys


@dataclass(frozen=True)
class VenueSetup:
    """One traded venue: its async ccxt-like client, keys, inventory and what we already hold there."""

    exchange: Any
    keys: ApiKeys | None
    required_free: Mapping[str, float] = field(default_factory=dict)   # currency -> min free amount
    known_order_ids: frozenset[str] = frozenset()     # venue or client ids, from the restored snapshot
    known_positions: Mapping[str, float] = field(default_factory=dict)  # perp symbol -> signed contracts
    markets: tuple[str, ...] = ()                                       # ccxt symbols the profile trades


def live_checks(venues: Mapping[Venue, VenueSetup], secrets_file: Path | None, redis_url: str,
                database_url: str, max_skew_ms: float = 1000.0) -> list[Check]:
    """Connectivity, clock, key, balance, open-order (and perp position) checks per venue, then the infrastructure."""
    if not venues:
        raise ValueError("preflight: the profile trades no venue")
    checks = []
    for venue, s in venues.items():
        checks += [
            Check(f"{venue.value}.connect", lambda v=venue, s=s: venue_checks.connect_check(v, s.exchange, s.markets)),
            Check(f"{venue.value}.clock", lambda v=venue, s=s: venue_checks.clock_check(v, s.exchange, max_skew_ms)),
            Check(f"{venue.value}.api_key", lambda v=venue, s=s: venue_checks.key_permissions_check(v, s.exchange, s.keys)),
            Check(f"{venue.value}.balance", lambda v=venue, s=s: venue_checks.balance_check(v, s.exchange, s.required_free)),
            Check(f"{venue.value}.open_orders",
                  lambda v=venue, s=s: venue_checks.open_orders_check(v, s.exchange, s.known_order_ids)),
        ]
        if venue is Venue.BINANCE_USDM:
            checks.append(Check(f"{venue.value}.positions",
                                lambda v=venue, s=s: venue_checks.positions_check(v, s.exchange, s.known_positions)))
    checks += [
        Check("secrets_file", lambda: infra_checks.secrets_file_check(secrets_file)),
        Check("redis", lambda: infra_checks.redis_check(redis_url)),
        Check("database", lambda: infra_checks.database_check(database_url)),
    ]
    return checks
