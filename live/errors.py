"""Our own small exception tree for venue trouble; ccxt's errors are turned into these at the edge.

Messages pass through the redactor before they are built, so a key or signature never rides along.
"""
from __future__ import annotations


class VenueError(RuntimeError):
    """A venue call failed; `venue` names which one."""

    def __init__(self, venue: str, message: str) -> None:
        super().__init__(f"{venue}: {message}")
        self.venue = venue


class OrderRuleError(VenueError, ValueError):
    """The order breaks the venue's tick, lot or minimum-notional rule: refused before sending."""


class OrderRejected(VenueError):
    """The venue answered and refused the order (funds, filters, spent client id): nothing was placed."""


class VenueAuthError(VenueError):
    """The venue refused the key or signature; retrying will not help."""


class VenueUnavailable(VenueError):
    """The venue kept failing (5xx, timeouts, 429) until the retries ran out; state may be unknown."""
