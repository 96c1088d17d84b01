"""Start a live session, fail-closed: arming first (no connection is opened before it holds), then
the full preflight, then the venues, the kill switch and the LiveDesk on the venues' balances.

    session = await open_session(profile, os.environ, run_id)   # raises LiveRefused or PreflightFailed
    ... session.desk.on_books(...); await session.desk.submit(intent) ...
    await session.close()
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.venues import Venue
from live.arming import ArmingConfig, ArmingResult, NotionalCaps, require_armed
from live.backoff import Backoff
from live.cli import KnownState, live_preflight, resolve_keys, traded_venues, write_preflight
from live.desk import LiveDesk
from live.exchanges import endpoints_of, open_exchange
from live.killswitch import KillSwitch
from live.order_stream import OrderStream
from live.preflight import PreflightReport
from live.redact import Redactor, install_log_redaction
from live.secrets import account_for
from live.venue import LiveVenue


class PreflightFailed(RuntimeError):
    """The preflight before a live start failed: live trading does not start."""

    def __init__(self, report: PreflightReport) -> None:
        self.report = report
        names = ", ".join(f"{r.name} ({r.detail})" for r in report.failures)
        super().__init__(f"live start refused: preflight failed: {names}")


@dataclass
class LiveSession:
    """What a live run trades with; the coordinator actor hosts `desk`."""

    run_id: str
    arming: ArmingResult
    preflight: PreflightReport
    venues: dict[Venue, LiveVenue]
    kill_switch: KillSwitch
    desk: LiveDesk

    async def close(self) -> None:
        for venue in self.venues.values():
            try:
                await venue.close()
            except Exception:  # closing one client must not keep the others open
                pass


def arming_inputs(profile: Any) -> tuple[ArmingConfig, NotionalCaps]:
    """The arming rules and caps the profile's live section sets."""
    live = profile.live
    if live is None:
        raise ValueError(f"profile {profile.name}: no live section; it cannot be armed")
    bounds = tuple(float(b) for b in live.notional_bounds)
    config = ArmingConfig(ack_var=live.ack_env, armed_at_var=live.arm_timestamp_env,
                          per_order_bounds_krw=bounds, total_bounds_krw=bounds)
    return config, NotionalCaps(live.max_order_notional_krw, live.max_total_notional_krw)


async def open_session(profile: Any, env: Mapping[str, str], run_id: str, *, now_ms: int | None = None,
                       known: KnownState | None = None, out_dir: Path | None = None, policy: str = "flatten",
                       backoff: Backoff | None = None, rate_limit: bool = True, max_skew_ms: float = 1000.0,
                       streams: bool = True, params: Any = None, desk_options: Mapping[str, Any] | None = None,
                       kill_deadline_s: float = 60.0) -> LiveSession:
    """Arm, preflight and open the desk; raises LiveRefused or PreflightFailed, touching no venue on a refusal.

    `params` (domain parameters) default to the profile's; `desk_options` go to LiveDesk (order_style,
    band_bps, kill_on); `kill_deadline_s` bounds how long the kill switch keeps retrying.
    """
    if profile.mode != "live":
        raise ValueError(f"profile {profile.name}: mode {profile.mode!r} is not live")
    symbols = [s.base for s in (profile.symbols() or ())]
    if not symbols:
        raise ValueError(f"profile {profile.name}: live trades an explicit universe.symbols list, not top_n")
    config, caps = arming_inputs(profile)
    keys, _, problem = resolve_keys(profile, env)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    arming = require_armed(env, config, caps, traded_venues(profile), keys, now, problem)   # before any socket
    install_log_redaction(Redactor.from_keys(keys))
    report = await live_preflight(profile, env, known or KnownState(), max_skew_ms, 20.0, rate_limit)
    if out_dir is not None:
        write_preflight(out_dir, profile.name, report)
    if not report.ok:
        raise PreflightFailed(report)
    params = params or profile.to_domain()
    venues: dict[Venue, LiveVenue] = {}
    try:
        for venue in traded_venues(profile):
            exchange = open_exchange(venue, keys[account_for(venue)], endpoints_of(profile), pro=True,
                                     rate_limit=rate_limit)
            stream = OrderStream(exchange, venue.value) if streams else None
            venues[venue] = LiveVenue(venue, exchange, lambda coin, v=venue: params.market.rules_for(v, coin),
                                      run_id, backoff, stream=stream)
            await venues[venue].start()
        switch = KillSwitch(venues, policy, backoff and Backoff(backoff.base_s, backoff.factor, backoff.cap_s, 1_000),
                            kill_deadline_s)
        desk = await LiveDesk.open(symbols, params, venues, kill_switch=switch, max_order_krw=caps.per_order_krw,
                                   max_total_krw=caps.total_krw, **dict(desk_options or {}))
    except BaseException:
        for lv in venues.values():
            await lv.close()
        raise
    return LiveSession(run_id, arming, report, venues, switch, desk)
