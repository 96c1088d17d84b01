"""The snapshot key scheme: `arb:{run_id}:{actor_kind}:{actor_id}`.

One key per stateful actor of one run, e.g. `arb:20250301-paper-7f3a:strategy:BTC`,
`arb:20250301-paper-7f3a:coordinator:main`, `arb:20250301-paper-7f3a:feed:upbit`. A restarted
actor finds its state under the same key; `keys(prefix(run_id))` lists a run's actors, and
`prefix(run_id, kind)` one kind of them. Parts may not contain ':', whitespace or glob
characters, so a key always splits back into its three parts.
"""
from __future__ import annotations

import re

NAMESPACE = "arb"
_PART = re.compile(r"^[^:\s*?\[\]]+$")


def key(run_id: str, actor_kind: str, actor_id: str) -> str:
    """The snapshot key of one actor of one run."""
    for name, part in (("run_id", run_id), ("actor_kind", actor_kind), ("actor_id", actor_id)):
        _check(name, part)
    return f"{NAMESPACE}:{run_id}:{actor_kind}:{actor_id}"


def prefix(run_id: str, actor_kind: str | None = None) -> str:
    """The prefix of a run's keys (or of one actor kind's keys in it), for `SnapshotStore.keys`."""
    _check("run_id", run_id)
    if actor_kind is None:
        return f"{NAMESPACE}:{run_id}:"
    _check("actor_kind", actor_kind)
    return f"{NAMESPACE}:{run_id}:{actor_kind}:"


def parse_key(name: str) -> tuple[str, str, str]:
    """(run_id, actor_kind, actor_id) of a key made by `key`."""
    parts = name.split(":")
    if len(parts) != 4 or parts[0] != NAMESPACE or not all(parts[1:]):
        raise ValueError(f"snapshot key {name!r}: expected {NAMESPACE}:{{run_id}}:{{actor_kind}}:{{actor_id}}")
    return parts[1], parts[2], parts[3]


def _check(name: str, part: str) -> None:
    if not isinstance(part, str) or not _PART.match(part):
        raise ValueError(f"snapshot key {name} {part!r}: must be non-empty, without ':', spaces or *?[]")
