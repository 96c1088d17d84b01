"""`python -m sim --books FILE.parquet --port 0 --speed 1`: serve a recording; first stdout line is the URLs as JSON."""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from sim.auth import ApiKey
from sim.server import SimServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    ap.add_argument("--books", required=True, type=Path, help="Parquet books file (marketdata format)")
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
    return keys, funds


async def serve(args: argparse.Namespace) -> int:
    try:
        from marketdata.parquet_books import read_books
    except ImportError as err:
        print(f"sim: cannot read {args.books}: marketdata.parquet_books unavailable ({err})", file=sys.stderr)
        return 2
    if not args.books.exists():
        print(f"sim: books file {args.books} does not exist", file=sys.stderr)
        return 2
    keys, funds = _keys_and_funds(args)
    server = SimServer(read_books(args.books), keys=keys, balances=funds, speed=args.speed or None,
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
