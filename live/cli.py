"""The live commands an operator runs: preflight (also run before every live start) and kill.

    preflight_command(profile, out_dir) -> int    0 passed, 1 a check failed, 2 not a live profile
    kill_command(profile, out_dir, policy) -> int  0 nothing left open, 1 something was left, 2 as above

Both print a rich table and write their JSON (preflight.json, kill.json) into `out_dir`. Keys come
from the ARB_* environment or the git-ignored secrets file, and are scrubbed from every log line.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table

from config.loader import load_profile
from config.paths import REPO
from domain.symbols import FX_SYMBOL
from domain.venues import Venue
from live.arming import missing_keys
from live.backoff import Backoff
from live.exchanges import endpoints_of, open_exchange
from live.killswitch import Exposure, KillReport, KillSwitch
from live.options import LiveOptions
from live.preflight import Check, CheckResult, render_table, run_preflight, to_json
from live.preflight_plan import VenueSetup, live_checks
from live.redact import Redactor, install_log_redaction
from live.secrets import ApiKeys, SecretsError, account_for, load_keys
from live.venue import LiveVenue, ccxt_symbol
from snapshots.keys import key
from snapshots.redis_store import RedisSnapshotStore
from snapshots.store import SnapshotError

OK, FAILED, NOT_LIVE = 0, 1, 2


@dataclass(frozen=True)
class KnownState:
    """What the restored snapshot says we own: orders by venue id or our client id (live.resume gives the
    client ids of every order a run made), perp positions by ccxt symbol."""

    order_ids: Mapping[Venue, frozenset[str]] = field(default_factory=dict)
    positions: Mapping[str, float] = field(default_factory=dict)


def traded_venues(profile: Any) -> tuple[Venue, ...]:
    """Upbit and the Binance venue the hedge uses (spot for inventory, USDT-M for perp)."""
    return (Venue.UPBIT, Venue.BINANCE_USDM if profile.strategy.hedge == "perp" else Venue.BINANCE)


def secrets_path(profile: Any, env: Mapping[str, str]) -> Path | None:
    """$ARB_SECRETS_FILE, else the profile's live.secrets_file (relative to the repo), else none."""
    raw = env.get("ARB_SECRETS_FILE", "").strip() or (profile.live.secrets_file if profile.live else None)
    if not raw:
        return None
    path = Path(os.path.expanduser(raw))
    return path if path.is_absolute() else REPO / path


def resolve_keys(profile: Any, env: Mapping[str, str]) -> tuple[dict[str, ApiKeys], Path | None, str | None]:
    """Keys per account, the secrets file in use, and why keys are missing (None when complete)."""
    venues = traded_venues(profile)
    path = secrets_path(profile, env)
    try:
        keys = load_keys(env)
        if missing_keys(venues, keys) and path is not None:
            keys = load_keys(env, path)
        elif path is not None and not path.exists():
            path = None   # every key came from the environment; a file that is not there is not in use
    except SecretsError as exc:
        return {}, path, str(exc)
    return keys, path, missing_keys(venues, keys)


def _load(profile: Any) -> Any:
    return load_profile(profile) if isinstance(profile, (str, Path)) else profile


def _markets(profile: Any, venue: Venue) -> tuple[str, ...]:
    coins = [s.base for s in (profile.symbols() or ())]
    if venue is Venue.UPBIT and profile.fx.source == "book":
        coins.append(FX_SYMBOL)
    return tuple(ccxt_symbol(venue, c) for c in coins)


def _protect(keys: Mapping[str, ApiKeys]) -> None:
    if keys:
        install_log_redaction(Redactor.from_keys(keys))


def preflight_command(profile: Any, out_dir: Path | str, *, env: Mapping[str, str] | None = None,
                      known: KnownState | None = None, console: Console | None = None,
                      max_skew_ms: float = 1000.0, timeout_s: float = 20.0, rate_limit: bool = True) -> int:
    """Run the full live preflight for `profile` (a loaded Profile, or its name or path).

    `rate_limit` is ccxt's client-side throttle; only a loopback simulator may go without it.
    """
    profile, console = _load(profile), console or Console()
    if profile.mode != "live":
        console.print(f"[red]preflight[/]: profile {profile.name} has mode {profile.mode!r}; preflight is for live profiles")
        return NOT_LIVE
    env = os.environ if env is None else env
    report = asyncio.run(live_preflight(profile, env, known or KnownState(), max_skew_ms, timeout_s, rate_limit))
    path = write_preflight(out_dir, profile.name, report)
    console.print(render_table(report))
    verdict = "[green]PASSED[/]" if report.ok else f"[red]FAILED[/]: {', '.join(r.name for r in report.failures)}"
    console.print(f"preflight {profile.name}: {verdict}; written to {path}")
    return OK if report.ok else FAILED


def write_preflight(out_dir: Path | str, profile_name: str, report) -> Path:
    """preflight.json in `out_dir`: the profile and every check with its verdict and detail."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"profile": profile_name, **json.loads(to_json(report))}
    (out / "preflight.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return out / "preflight.json"


async def live_preflight(profile: Any, env: Mapping[str, str], known: KnownState, max_skew_ms: float = 1000.0,
                         timeout_s: float = 20.0, rate_limit: bool = True):
    """The preflight report for a live profile (what preflight_command prints and a live start requires)."""
    keys, path, problem = resolve_keys(profile, env)
    _protect(keys)
    endpoints = endpoints_of(profile)
    exchanges, setups = [], {}
    for venue in traded_venues(profile):
        pair = keys.get(account_for(venue))
        exchange = open_exchange(venue, pair, endpoints, pro=False, rate_limit=rate_limit)
        exchanges.append(exchange)
        need = {a: float(q) for a, q in profile.inventory.get(venue.value, {}).items()}
        setups[venue] = VenueSetup(exchange, pair, need, known.order_ids.get(venue, frozenset()),
                                   dict(known.positions), _markets(profile, venue))
    checks = live_checks(setups, path, profile.storage.redis_url, profile.storage.url, max_skew_ms)

    async def keys_check() -> CheckResult:
        return CheckResult("api_keys", problem is None, problem or ", ".join(
            f"{k.account} from {k.source}" for k in keys.values()))
    try:
        return await run_preflight([Check("api_keys", keys_check), *checks], timeout_s)
    finally:
        await asyncio.gather(*(e.close() for e in exchanges), return_exceptions=True)


def run_exposures(redis_url: str, run_id: str) -> list[Exposure]:
    """The coin each open pair position of a live run held per venue, from its Redis snapshot
    (actors.live_coordinator writes it after every change). SnapshotError names what is wrong."""
    store = RedisSnapshotStore(redis_url)
    try:
        snap = store.get(key(run_id, "coordinator", "main"))
    finally:
        store.close()
    if snap is None:
        raise SnapshotError(f"run {run_id}: no snapshot at {key(run_id, 'coordinator', 'main')} "
                            f"in {redis_url}; its exposure is unknown")
    try:
        return [Exposure(Venue(v), str(coin), float(qty)) for v, coin, qty in snap.payload["exposure"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"run {run_id}: snapshot version {snap.version} has no readable exposure "
                            f"({type(exc).__name__}: {exc})") from None


def kill_command(profile: Any, out_dir: Path | str, policy: str | None = None, *,
                 env: Mapping[str, str] | None = None, exposures: Sequence[Exposure] = (),
                 console: Console | None = None, retry: Backoff | None = None, deadline_s: float | None = None,
                 rate_limit: bool = True, run_id: str | None = None) -> int:
    """Cancel every open order on the profile's venues, then flatten or freeze (see live.killswitch).

    `policy` and `deadline_s` default to the profile's live.kill_policy and live.kill_deadline_s.
    `exposures` is the spot coin open pair positions hold; with `run_id` they are read from that
    run's Redis snapshot (after a crash). USDT-M positions are read from the venue itself.
    """
    profile, console = _load(profile), console or Console()
    if profile.mode != "live":
        console.print(f"[red]kill[/]: profile {profile.name} has mode {profile.mode!r}; the kill switch is for live profiles")
        return NOT_LIVE
    options = LiveOptions.from_profile(profile.live, kill_policy=policy, kill_deadline_s=deadline_s)
    policy, deadline_s = options.kill_policy, options.kill_deadline_s
    unknown = None        # why the run's spot exposure is unknown: the kill then cannot report "done"
    if run_id is not None:
        try:
            held = run_exposures(profile.storage.redis_url, run_id)
            console.print(f"kill: run {run_id} held {[f'{e.venue.value} {e.coin} {e.qty:+g}' for e in held] or 'nothing'}")
            exposures = [*exposures, *held]
        except (SnapshotError, RedisError) as exc:
            unknown = str(exc)
            console.print(f"[red]kill[/]: {unknown}. Orders are still cancelled; spot legs need the balances "
                          "preflight prints (runbooks/kill-switch.md)")
    env = os.environ if env is None else env
    keys, _, problem = resolve_keys(profile, env)
    if problem:
        console.print(f"[red]kill[/]: cannot reach the accounts: {problem}")
        return FAILED
    report = asyncio.run(_kill(profile, keys, policy, exposures, retry, deadline_s, rate_limit))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "kill.json").write_text(json.dumps({"profile": profile.name, **report.to_dict()}, indent=2) + "\n",
                                   encoding="utf-8")
    console.print(kill_table(report))
    console.print(f"kill {profile.name}: {'[green]nothing left open' if report.ok else '[red]SOMETHING LEFT OPEN'}[/]; "
                  f"written to {out / 'kill.json'}")
    return OK if report.ok and unknown is None else FAILED


async def _kill(profile: Any, keys: Mapping[str, ApiKeys], policy: str, exposures: Sequence[Exposure],
                retry: Backoff | None, deadline_s: float, rate_limit: bool) -> KillReport:
    _protect(keys)
    market = profile.to_domain().market
    run_tag = f"kill-{profile.name}-{int(time.time() * 1000)}"
    venues = {}
    for venue in {*traded_venues(profile), *(e.venue for e in exposures)}:
        exchange = open_exchange(venue, keys.get(account_for(venue)), endpoints_of(profile), pro=False,
                                 rate_limit=rate_limit)
        venues[venue] = LiveVenue(venue, exchange, lambda coin, v=venue: market.rules_for(v, coin), run_tag)
    try:
        await asyncio.gather(*(lv.start() for lv in venues.values()), return_exceptions=True)
        return await KillSwitch(venues, policy, retry, deadline_s).engage("operator command", exposures)
    finally:
        await asyncio.gather(*(lv.close() for lv in venues.values()), return_exceptions=True)


def kill_table(report: KillReport) -> Table:
    """What the kill switch did, one row per order or position, the failures first."""
    verdict = "[bold green]DONE" if report.ok else "[bold red]INCOMPLETE"
    table = Table(title=f"Kill switch ({report.policy}): {verdict}[/] in {report.duration_ms} ms")
    table.add_column("result", style="bold")
    table.add_column("what", overflow="fold")
    rows = ([("[red]NOT CANCELLED[/]", r) for r in report.not_cancelled]
            + [("[red]NOT CLOSED[/]", r) for r in report.not_closed]
            + [("[yellow]frozen[/]", r) for r in report.frozen]
            + [("cancelled", r) for r in report.cancelled] + [("closed", r) for r in report.closed])
    for result, what in rows or [("nothing to do", "no open orders, no positions")]:
        table.add_row(result, what)
    return table
