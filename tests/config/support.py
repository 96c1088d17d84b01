"""Write variants of a shipped profile to tmp_path and capture the ProfileError they raise."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from config.loader import ProfileError, load_profile, profile_path


def shipped(name: str) -> dict[str, Any]:
    return yaml.safe_load(profile_path(name).read_text())


def write(tmp_path: Path, doc: dict[str, Any], name: str | None = None) -> Path:
    """The document as <name>.yaml (its own `name` by default, so the name check passes)."""
    path = tmp_path / f"{name or doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def variant(tmp_path: Path, base: str, change: Callable[[dict[str, Any]], None]) -> Path:
    doc = shipped(base)
    change(doc)
    return write(tmp_path, doc)


def error_of(path: Path | str) -> ProfileError:
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    return info.value


def assert_names(err: ProfileError, path: Path, key: str, *expected: str) -> str:
    """The one message about `key` names the file, the key and each expected fragment."""
    lines = [m for m in err.messages if f": {key}: " in m]
    assert lines, f"no message about {key!r} in:\n{err}"
    message = lines[0]
    assert message.startswith(f"{path}: {key}: expected "), message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message
