"""Test support for whole live runs: a simulator replaying a SYNTHETIC market stamped from now, the
shipped live-local profile pointed at it, fake keys in a chmod-600 secrets file outside any git tree."""
from __future__ import annotations

import os
import socket
import time
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from config.loader import load_profile
from config.schema import Endpoint, Storage
from domain.symbols import FX_SYMBOL
from marketdata.synthetic import SyntheticConfig, SyntheticMarket
from sim import SimThread
from sim.auth import ApiKey
from tests.support.polling import poll

ACK_TEXT = "I understand this trades real money"
REPO = Path(__file__).resolve().parents[2]
# Fake keys, long and unusual enough that a hit in a scan can only be a leak.
UPBIT = ApiKey("live-run-upbit-access-7Qm2Zx9K", "live-run-upbit-secret-Wd4Lp8Rv1Tn6Yb3Hc5Jf0Gs")
BINANCE = ApiKey("live-run-binance-key-Xa7Ne2Pq5Vu9", "live-run-binance-secret-Kz3Mr8Tb1Qw6Ej4Lc0Hy7Df")
FUNDS = {"upbit": {"KRW": 50_000_000.0, "BTC": 0.2, "ETH": 5.0, "XRP": 5_000.0, "SOL": 50.0},
         "binance": {"USDT": 40_000.0, "BTC": 0.2, "ETH": 5.0, "XRP": 5_000.0, "SOL": 50.0},
         "binance_usdm": {"USDT": 40_000.0}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sim(minutes: float = 10.0, speed: float | None = 1.0, coins: int = 2, **kwargs: Any) -> SimThread:
    """A running simulator: the SYNTHETIC top `coins` (BTC, ETH, XRP, SOL...) and Upbit's KRW-USDT, stamped
    from now on, both keys funded; `speed` None leaves the stepping to the test."""
    market = SyntheticMarket(SyntheticConfig(coins=coins, days=minutes / 1440, seed=5,
                                             start_ms=int(time.time() * 1000)))
    coins = tuple(market.coins)
    balances = {("upbit", UPBIT.key): dict(FUNDS["upbit"]), ("binance", BINANCE.key): dict(FUNDS["binance"]),
                ("binance_usdm", BINANCE.key): dict(FUNDS["binance_usdm"])}
    sim = SimThread(market.books(), markets={"upbit": (*coins, FX_SYMBOL), "binance": coins, "binance_usdm": ()},
                    keys=[UPBIT, BINANCE], balances=balances, speed=speed, **kwargs)
    sim.start()
    return sim


def secrets_file(directory: Path) -> Path:
    """The fake keys as the git-ignored secrets file would hold them (mode 0600, outside any repo)."""
    path = directory / "live-secrets.yaml"
    path.write_text(f"upbit: {{api_key: {UPBIT.key}, secret: {UPBIT.secret}}}\n"
                    f"binance: {{api_key: {BINANCE.key}, secret: {BINANCE.secret}}}\n")
    os.chmod(path, 0o600)
    return path


def changed(env: dict[str, str], changes: dict[str, str | None]) -> dict[str, str]:
    """`env` with each of `changes` set, or removed where its value is None (one arming condition broken)."""
    out = dict(env)
    for name, value in changes.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def armed_env(secrets: Path, **changes: str | None) -> dict[str, str]:
    """Every arming condition met; `changes` replaces (or with None removes) variables."""
    return changed({"ARB_LIVE_ACK": ACK_TEXT, "ARB_LIVE_ARMED_AT": str(int(time.time())),
                    "ARB_SECRETS_FILE": str(secrets)}, changes)


def run_profile(sim: SimThread, directory: Path, strategy: dict | None = None, risk: dict | None = None,
                live: dict | None = None, metrics_port: int = 0, **update: Any):
    """live-local on the simulator's URLs, outputs, database and alert log under `directory`."""
    base = load_profile("live-local")
    urls = sim.urls()
    fields: dict[str, Any] = {
        "endpoints": {v: Endpoint(rest=urls[v]["rest"], ws=urls[v]["ws"])
                      for v in ("upbit", "binance", "binance_usdm")},
        "storage": Storage(url=f"sqlite:///{directory / 'live.db'}", redis_url="redis://127.0.0.1:6379/0"),
        "outputs": base.outputs.model_copy(update={"dir": str(directory / "runs"), "kpi_checkpoint_s": 2}),
        "alerts": base.alerts.model_copy(update={"log_file": str(directory / "alerts.log")}),
        "metrics": base.metrics.model_copy(update={"port": metrics_port}),
        "strategy": base.strategy.model_copy(update=strategy or {}),
        "risk": base.risk.model_copy(update=risk or {}),
        "live": base.live.model_copy(update=live or {})}
    fields.update(update)
    return base.model_copy(update=fields)


def profile_file(directory: Path, name: str, urls: dict, strategy: dict, risk: dict | None = None,
                 redis_url: str | None = None) -> Path:
    """The shipped live-local on the simulator's `urls`, trading with `strategy` (and `risk`), database,
    outputs and alert log under `directory` (snapshots to `redis_url` if given), written to
    `directory/<name>.yaml` for a main.py process."""
    raw = yaml.safe_load((REPO / "config/profiles/live-local.yaml").read_text())
    raw["name"] = name
    raw["endpoints"] = {v: {"rest": urls[v]["rest"], "ws": urls[v]["ws"]} for v in ("upbit", "binance", "binance_usdm")}
    raw["strategy"].update({**strategy, "directions": list(strategy.get("directions", raw["strategy"].get(
        "directions", ())))})
    raw["risk"].update(risk or {})
    raw["storage"] = {**raw.get("storage", {}), "url": f"sqlite:///{directory / 'live.db'}",
                      **({"redis_url": redis_url} if redis_url else {})}
    raw["outputs"] = {"dir": str(directory / "out"), "kpi_checkpoint_s": 2, "report": False}
    raw["alerts"] = {"log_file": str(directory / "alerts.log")}
    raw["metrics"] = {"port": 0}
    raw["live"]["lease_ttl_s"] = 2      # a SIGKILLed run's lease lapses by the time the test resumes it
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# Every premium looks stretched against a -2000 bps baseline: RICH entries (sell Upbit, buy Binance)
# within a second, closed by the short max hold; loss-making on purpose, to trade at once.
TRADE_AT_ONCE = {"mode": "absolute", "baseline_bps": -2000.0, "max_hold_ms": 3000, "cooldown_ms": 1000,
                 "directions": ("upbit_rich",)}


def new_orders(sim: SimThread, venue: str | None = None) -> list[dict]:
    return [e for e in sim.journal("order") if e["event"] == "new" and (venue is None or e["venue"] == venue)]


wait_until = partial(poll, every=0.1)   # (check, timeout, what): runs of tens of seconds
