"""The key scheme arb:{run_id}:{actor_kind}:{actor_id} builds, prefixes and parses back."""
from __future__ import annotations

import pytest

from snapshots import key, parse_key, prefix


def test_a_key_splits_back_into_its_parts():
    name = key("20250301-paper-7f3a", "strategy", "BTC")
    assert name == "arb:20250301-paper-7f3a:strategy:BTC"
    assert parse_key(name) == ("20250301-paper-7f3a", "strategy", "BTC")
    assert name.startswith(prefix("20250301-paper-7f3a")) and name.startswith(prefix("20250301-paper-7f3a", "strategy"))


@pytest.mark.parametrize("parts,bad", [
    (("r:1", "strategy", "BTC"), "run_id 'r:1'"),
    (("r1", "", "BTC"), "actor_kind ''"),
    (("r1", "strategy", "BTC *"), "actor_id 'BTC \\*'"),
])
def test_parts_that_would_break_the_scheme_are_refused(parts, bad):
    with pytest.raises(ValueError, match=rf"snapshot key {bad}: must be non-empty"):
        key(*parts)


@pytest.mark.parametrize("name", ["arb:r1:strategy", "other:r1:strategy:BTC", "arb:r1::BTC"])
def test_foreign_names_do_not_parse(name):
    with pytest.raises(ValueError, match="expected arb:"):
        parse_key(name)
