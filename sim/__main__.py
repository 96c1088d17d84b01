"""`python -m sim --books FILE.parquet --port 0 --speed 1`: serve a recording; first stdout line is the URLs as JSON.

    python -m sim --synthetic 2 --port 18080 --keys-from-env --fund-profile live-local

serves a SYNTHETIC top-2 market instead, accepts the ARB_* keys of this shell (the live rehearsal's,
never real ones) and funds them with the profile's inventory: what `python main.py --profile live-local`
trades against.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

from sim.auth import ApiKey
from sim.server import SimServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--books", type=Path, help="Parquet books file (marketdata format)")
    source.add_argument("--synthetic", type=int, metavar="N", help="a SYNTHETIC top-N market (marketdata.synthetic)")
    ap.add_argument("--hours", type=float, default=6.0, help="--synthetic: hours of books to replay")
    ap.add_argument("--seed", type=int, default=7, help="--synthetic: generator seed")
    ap.add_argument("--keys-from-env", action="store_true",
                    help="accept the ARB_UPBIT_* and ARB_BINANCE_* key pairs of this environment")
    ap.add_argument("--fund-profile", default=None, metavar="PROFILE",
                    help="fund the --keys-from-env keys with this profile's inventory")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free port)")
    ap.add_argument("--speed", type=float, default=1.0, help="replay speed factor (0 = wait for /_sim/step)")
    ap.add_argument("--journal", type=Path, default=None, help="append orders and balance changes here (JSONL)")
    ap.add_argument("--key", action="append", default=[], metavar="KEY:SECRET", help="accepted API key pair")
    ap.add_argument("--fund", action="append", default=[], metavar="VENUE:KEY:ASSET:AMOUNT",
                    help="initial balance, e.g. upbit:mykey:KRW:100000000")
    return ap.parse_args(argv)


def _keys_and_funds(args: argparse.Namespace) -> tuple[list[ApiKey], dict[tuple[str, str], dict[str, float]]]:
    keys = []
    for item in args.key:
        key, sep, secret = item.partition(":")
        if not sep or not key or not secret:
            raise SystemExit(f"--key {item!r}: expected KEY:SECRET")
        keys.append(ApiKey(key, secret))
    funds: dict[tuple[str, str], dict[str, float]] = {}
    for item in args.fund:
        parts = item.split(":")
        try:
            venue, key, asset, amount = parts
            funds.setdefault((venue, key), {})[asset] = float(amount)
        except ValueError:
            raise SystemExit(f"--fund {item!r}: expected VENUE:KEY:ASSET:AMOUNT") from None
    if args.keys_from_env:
        env_keys, env_funds = _env_keys(args.fund_profile)
        keys += env_keys
        for account, assets in env_funds.items():
            funds.setdefault(account, {}).update(assets)
    elif args.fund_profile:
        raise SystemExit("--fund-profile funds the --keys-from-env keys; give --keys-from-env as well")
    return keys, funds


def _env_keys(profile_name: str | None) -> tuple[list[ApiKey], dict[tuple[str, str], dict[str, float]]]:
    """The ARB_* key pairs (live.secrets), each funded on its account's venues from the profile's inventory."""
    from live.secrets import SecretsError, load_keys
    try:
        pairs = load_keys(os.environ)
    except SecretsError as err:
        raise SystemExit(f"--keys-from-env: {err}") from None
    if not pairs:
        raise SystemExit("--keys-from-env: no ARB_UPBIT_ACCESS_KEY/SECRET_KEY or ARB_BINANCE_API_KEY/SECRET set")
    inventory = {}
    if profile_name:
        from config.loader import load_profile
        inventory = load_profile(profile_name).inventory
    venues = {"upbit": ("upbit",), "binance": ("binance", "binance_usdm")}
    keys, funds = [], {}
    for account, pair in pairs.items():
        key = pair.api_key.reveal()
        keys.append(ApiKey(key, pair.secret.reveal()))
        for venue in venues[account]:
            if venue in inventory:
                funds[(venue, key)] = {a: float(x) for a, x in inventory[venue].items()}
    return keys, funds


def _books(args: argparse.Namespace) -> tuple[list, dict | None, str | None]:
    """(books, markets, error): the recording, or a synthetic market listing KRW-USDT for the FX book."""
    if args.synthetic is not None:
        from marketdata.synthetic import SyntheticConfig, SyntheticMarket
        # Stamped from now on, like a real venue's books: live fills carry the venue's clock.
        market = SyntheticMarket(SyntheticConfig(coins=args.synthetic, days=args.hours / 24, seed=args.seed,
                                                 start_ms=int(time.time() * 1000)))
        coins = tuple(market.coins)
        return market.books(), {"upbit": (*coins, "USDT"), "binance": coins, "binance_usdm": ()}, None
    try:
        from marketdata.parquet_books import read_books
    except ImportError as err:
        return [], None, f"sim: cannot read {args.books}: marketdata.parquet_books unavailable ({err})"
    if not args.books.exists():
        return [], None, f"sim: books file {args.books} does not exist"
    return read_books(args.books), None, None


async def serve(args: argparse.Namespace) -> int:
    books, markets, error = _books(args)
    if error:
        print(error, file=sys.stderr)
        return 2
    keys, funds = _keys_and_funds(args)
    server = SimServer(books, markets=markets, keys=keys, balances=funds, speed=args.speed or None,
                       journal_path=args.journal, port=args.port)
    urls = await server.start()
    print(json.dumps(urls), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
