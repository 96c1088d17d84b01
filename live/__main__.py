"""`python -m live preflight|kill|run --profile NAME`: the live operator commands.

    python -m live preflight --profile live-example [--out DIR]
    python -m live kill --profile live-example [--policy flatten|freeze] [--out DIR]
    python -m live run --profile live-local [--duration S] [--policy flatten|freeze] [--out DIR] [--resume RUN_ID]

Exit codes: 0 passed / nothing left open / the run ended with its KPIs written, 1 a check failed /
something left open / live refused to start, 2 the profile cannot be used (not live, or malformed).
`run` stops on --duration, SIGINT or SIGTERM; SIGUSR1 engages the kill switch (policy) and stops.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from config.errors import ProfileError
from config.loader import load_profile
from live.cli import NOT_LIVE, kill_command, preflight_command
from live.killswitch import POLICIES


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m live", description="live operator commands")
    ap.add_argument("command", choices=("preflight", "kill", "run"))
    ap.add_argument("--profile", required=True, help="profile name under config/profiles/ or a YAML path")
    ap.add_argument("--policy", choices=POLICIES, default="flatten", help="kill (and run's kill switch): flatten or freeze positions")
    ap.add_argument("--duration", type=float, default=float("inf"), help="run: stop after this many seconds of trading")
    ap.add_argument("--resume", default=None, metavar="RUN_ID",
                    help="run: continue that crashed live run of the profile from its Redis snapshot (armed afresh)")
    ap.add_argument("--out", type=Path, default=None,
                    help="where to write preflight.json / kill.json (default <outputs.dir>/<command>-<time>)")
    args = ap.parse_args(argv)
    if args.resume and args.command != "run":
        ap.error(f"--resume continues a live run: python -m live run --resume {args.resume}")
    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"profile error: {exc}", file=sys.stderr)
        return NOT_LIVE
    if args.command == "run":
        from live.run import run_command
        return run_command(profile, args.duration, args.out, args.policy, resume=args.resume)
    out = args.out or profile.outputs_dir() / f"{args.command}-{time.strftime('%Y%m%dT%H%M%S')}"
    if args.command == "preflight":
        return preflight_command(profile, out)
    return kill_command(profile, out, args.policy)


if __name__ == "__main__":
    sys.exit(main())
