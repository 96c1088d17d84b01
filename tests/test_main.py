"""main.py exit codes: a bad profile is 2 and names the file; an unwired mode is refused, never faked."""
from __future__ import annotations

import main


def test_bad_profile_exits_2_naming_file_and_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nmode: backtest\nuniverse: {symbols: [BTC]}\nfx: {source: fixed}\ninventory: {}\n")
    assert main.main(["--profile", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "fx" in err


def test_paper_on_real_venues_is_refused_not_run_on_a_simulator(capsys):
    assert main.main(["--profile", "paper-top50"]) == 4
    assert "not wired" in capsys.readouterr().err
