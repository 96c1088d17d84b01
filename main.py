"""arbitrage-lite entry point: `python main.py --profile NAME` runs the profile's mode.

    python main.py --profile NAME                       backtest, paper or live, as the profile says
    python main.py preflight --profile NAME             live checks: table + preflight.json (0 = all pass)
    python main.py kill --profile NAME [--policy P] [--run RUN_ID]
                                                        kill switch: cancel open orders, flatten or freeze
                                                        (--run: also the spot legs a crashed live run held)
    python main.py --resume RUN_ID                      continue a killed paper run from its snapshots
    python main.py live --resume RUN_ID [--profile P]   continue a crashed live run from its snapshot (armed
                                                        afresh; `live` is required: it trades real money)

Exit codes: 0 done, 2 the profile cannot be run, 3 the input data is bad, 4 the mode is not
available in this build, 5 a venue cannot be reached,
6 live trading refused to start (arming or preflight; the reason is printed).
"""
from __future__ import annotations

import argparse
import sys

import ccxt

from rich.console import Console

from config.errors import ProfileError
from config.loader import load_profile
from marketdata.errors import DataError

console = Console(stderr=True)


class UsageError(ValueError):
    """Options that do not fit the profile or run asked for (exit 2, like a bad profile)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="main.py", description="Kimchi-premium arbitrage: backtest, paper, live.")
    ap.add_argument("command", nargs="?", choices=("run", "live", "preflight", "kill"), default="run",
                    help="run (default) the profile; live: run or --resume a live profile and nothing else; "
                         "preflight or kill for a live profile")
    ap.add_argument("--profile", default=None, help="profile name under config/profiles/ or a YAML path")
    ap.add_argument("--resume", default=None, metavar="RUN_ID",
                    help="continue a killed run: every actor restores from its Redis snapshot, same run id and "
                         "outputs (a live run: `main.py live --resume RUN_ID`, armed afresh)")
    ap.add_argument("--policy", choices=("flatten", "freeze"), default=None,
                    help="kill switch: flatten positions or freeze them (orders are cancelled either way); "
                         "default: the profile's live.kill_policy")
    ap.add_argument("--run", default=None, metavar="RUN_ID",
                    help="kill: also trade back the spot legs that live run held (read from its Redis snapshot)")
    ap.add_argument("--out", default=None, help="output root (default: the profile's outputs.dir)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar (plain output)")
    ap.add_argument("--no-report", action="store_true", help="skip the HTML report")
    ap.add_argument("--processes", type=int, choices=(1, 2), default=1,
                    help="backtest: scan coins in 2 processes (same results, one engine decides)")
    ap.add_argument("--duration", type=float, default=None, help="paper: stop after this many seconds (default: until SIGINT/SIGTERM)")
    ap.add_argument("--speed", type=float, default=1.0, help="paper on the simulator: replay speed (1 = real time)")
    ap.add_argument("--record", default=None, metavar="DIR",
                    help="paper: write the books the feeds forward to DIR/<run id>/<venue>.parquet")
    args = ap.parse_args(argv)
    if args.profile is None and args.resume is None:
        ap.error("--profile is required (or --resume RUN_ID)")
    return args


def profile_of_run(run_id: str) -> str:
    """A run id is `<profile name>-<UTC start>`; a YAML profile path can be given with --profile."""
    name, _, stamp = run_id.rpartition("-")
    if not name or not stamp.endswith("Z"):
        raise UsageError(f"--resume {run_id!r}: not a run id (<profile>-<UTC time>Z)")
    return name


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile or profile_of_run(args.resume))
    check_resume(profile, args)
    if args.command in ("preflight", "kill"):
        return live_command(profile, args)
    if profile.mode == "backtest":
        from pathlib import Path

        from backtest.runner import run_backtest
        if args.processes == 2 and profile.data.kind == "candles":
            raise UsageError(f"{profile.name}: --processes 2 shards book streams; this profile replays candles")
        result = run_backtest(profile, out_root=Path(args.out) if args.out else None,
                              progress=not args.no_progress, report=False if args.no_report else None,
                              processes=args.processes)
        k = result.kpi
        console.print(f"[bold]{profile.name}[/]: {k['round_trips']} round trips, win rate {k['win_rate_pct']}%, "
                      f"PnL {k['pnl_krw']:,.0f} KRW ({k['pnl_usd']:,.2f} USD), fees {k['fees_paid_krw']:,.0f} KRW, "
                      f"max drawdown {k['max_drawdown_pct']:.3f}%")
        for note in k["notes"]:
            console.print(f"[yellow]note:[/] {note}")
        console.print(f"outputs: {result.out_dir}")
        return 0
    if profile.mode == "paper":
        return run_paper_mode(profile, args)
    if profile.mode == "live":   # arming first (before Ray or any socket), then preflight, then the actors
        from pathlib import Path

        from live.run import run_command
        code = run_command(profile, args.duration if args.duration is not None else float("inf"),
                           Path(args.out) if args.out else None, args.policy, live_table=not args.no_progress,
                           resume=args.resume)
        return {0: 0, 1: 6}.get(code, 2)
    console.print(f"[red]mode {profile.mode!r} is not available in this build yet (backtest only)[/]")
    return 4


def check_resume(profile, args: argparse.Namespace) -> None:
    """`live` runs live profiles only; --resume continues paper and live runs, a live one only when the
    command says `live` (resuming it trades real money: never by a paper operator's habit)."""
    if args.command == "live" and profile.mode != "live":
        raise UsageError(f"live: profile {profile.name} is {profile.mode!r}, not a live profile")
    if not args.resume:
        return
    if args.command in ("preflight", "kill"):
        raise UsageError(f"{args.command}: --resume continues a run; kill takes --run RUN_ID")
    if profile.mode == "live" and args.command != "live":
        raise UsageError(f"--resume {args.resume}: a live run; resuming it trades real money: "
                         f"python main.py live --resume {args.resume}")
    if profile.mode not in ("paper", "live"):
        raise UsageError(f"--resume: profile {profile.name} is {profile.mode!r}; resume continues paper and live runs")


def live_command(profile, args: argparse.Namespace) -> int:
    """preflight / kill: the operator commands of a live profile (runbooks/ use them)."""
    import time
    from pathlib import Path

    from live.cli import kill_command, preflight_command
    out = Path(args.out) if args.out else profile.outputs_dir() / f"{args.command}-{time.strftime('%Y%m%dT%H%M%S')}"
    if args.command == "preflight":
        return preflight_command(profile, out)
    return kill_command(profile, out, args.policy, run_id=args.run)


def run_paper_mode(profile, args: argparse.Namespace) -> int:
    """Paper on the local simulator; SIGINT/SIGTERM stop it gracefully (KPIs written, exit 0)."""
    from pathlib import Path

    from paper.run import run_paper
    kpi = run_paper(profile, args.duration if args.duration is not None else float("inf"),
                    out_root=Path(args.out) if args.out else None, speed=args.speed, handle_signals=True,
                    record_dir=Path(args.record) if args.record else None, live_table=not args.no_progress,
                    resume=args.resume)
    books = "SYNTHETIC books on the local simulator" if kpi["synthetic_data"] else "live venue books"
    console.print(f"[bold]{profile.name}[/] (paper, {books}): {kpi['round_trips']} round trips, "
                  f"PnL {kpi['pnl_krw']:,.0f} KRW; outputs: {kpi['output_dir']}")
    if kpi.get("recorded_to"):
        console.print(f"recorded books: {kpi['recorded_to']} (a backtest reads them)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except ProfileError as exc:
        console.print(f"[red]profile error[/]: {exc}")
        return 2
    except UsageError as exc:
        console.print(f"[red]cannot run[/]: {exc}")
        return 2
    except DataError as exc:
        console.print(f"[red]data error[/]: {exc}")
        return 3
    except ccxt.NetworkError as exc:
        console.print(f"[red]venue unreachable[/]: {type(exc).__name__}: {exc}")
        return 5


if __name__ == "__main__":
    sys.exit(main())
