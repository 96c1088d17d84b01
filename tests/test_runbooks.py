"""Every `python main.py ...` and `python -m sim ...` step in runbooks/ is a command that exists: its
options parse with the real argument parsers (placeholders such as <run id> filled in)."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import main
from sim.__main__ import parse_args as sim_args

RUNBOOKS = Path(__file__).resolve().parents[1] / "runbooks"
FILL = {"<run id>": "live-main-20260101T000000000000Z", "<pid>": "4242"}


def steps() -> list[tuple[str, int, str]]:
    out = []
    for path in sorted(RUNBOOKS.glob("*.md")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            command = line.strip().split("  #", 1)[0].strip().removesuffix("&").strip()   # "&": run in the background
            if line.startswith("    ") and re.match(r"python (main\.py|-m sim)\b", command):
                for placeholder, value in FILL.items():
                    command = command.replace(placeholder, value)
                out.append((path.name, n, command))
    return out


def test_the_runbooks_have_commands_to_check():
    names = {name for name, _, _ in steps()}
    assert {"crash-recovery.md", "kill-switch.md", "first-live-start.md"} <= names


@pytest.mark.parametrize("where, line, command", steps(), ids=lambda x: str(x))
def test_each_runbook_command_parses(where, line, command):
    assert "<" not in command, f"{where}:{line}: unfilled placeholder in {command!r}"
    words = shlex.split(command)
    try:
        if words[1] == "main.py":
            main.parse_args(words[2:])
        else:
            sim_args(words[3:])
    except SystemExit as exc:
        pytest.fail(f"{where}:{line}: {command!r} does not parse (exit {exc.code})")
