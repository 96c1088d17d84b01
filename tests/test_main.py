"""main.py exit codes: a bad profile is 2 and names the file; paper picks its venues from the profile."""
from __future__ import annotations

import main


def test_bad_profile_exits_2_naming_file_and_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nmode: backtest\nuniverse: {symbols: [BTC]}\nfx: {source: fixed}\ninventory: {}\n")
    assert main.main(["--profile", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "fx" in err


def test_paper_top50_goes_to_the_real_venues_and_the_local_profile_to_the_simulator():
    """Never pretend: a profile naming the real venues must not quietly trade a simulator (no traffic sent here)."""
    from config.loader import load_profile
    from paper.run import is_local
    assert not is_local(load_profile("paper-top50"))
    assert is_local(load_profile("paper-top50-local"))


def test_preflight_and_kill_refuse_a_profile_that_is_not_live(capsys):
    assert main.main(["preflight", "--profile", "backtest-btc"]) == 2
    assert "preflight is for live profiles" in " ".join(capsys.readouterr().out.split())
    assert main.main(["kill", "--profile", "paper-top50-local"]) == 2


def test_live_without_arming_refuses_with_exit_6_before_any_connection(monkeypatch, tmp_path, capsys):
    for var in ("ARB_LIVE_ACK", "ARB_LIVE_ARMED_AT"):
        monkeypatch.delenv(var, raising=False)
    assert main.main(["--profile", "live-local", "--no-progress", "--out", str(tmp_path)]) == 6
    said = capsys.readouterr()
    said = " ".join((said.out + said.err).split())
    assert "ARB_LIVE_ARMED_AT is not set" in said and "no API key pair" in said
    assert not any(tmp_path.iterdir()), "a refused live start must not create a run"


def test_two_processes_on_a_candle_profile_is_refused_by_name(capsys):
    assert main.main(["--profile", "backtest-btc", "--processes", "2", "--no-progress"]) == 2
    assert "--processes 2" in " ".join(capsys.readouterr().err.split())


def test_resume_of_something_that_is_not_a_run_id_is_refused(capsys):
    assert main.main(["--resume", "nonsense"]) == 2
    assert "not a run id" in " ".join(capsys.readouterr().err.split())


def test_a_live_run_resumes_only_when_the_command_says_live(capsys):
    """Resuming a live run trades real money: `main.py --resume` alone refuses it and names the command."""
    assert main.main(["--resume", "live-local-20260101T000000000000Z"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "python main.py live --resume live-local-20260101T000000000000Z" in said
    assert main.main(["live", "--profile", "paper-top50-local"]) == 2
    assert "not a live profile" in " ".join(capsys.readouterr().err.split())
    assert main.main(["kill", "--profile", "live-local", "--resume", "live-local-20260101T000000000000Z"]) == 2


def test_a_live_resume_without_arming_refuses_with_exit_6_before_reading_anything(monkeypatch, tmp_path, capsys):
    for var in ("ARB_LIVE_ACK", "ARB_LIVE_ARMED_AT"):
        monkeypatch.delenv(var, raising=False)
    assert main.main(["live", "--resume", "live-local-20260101T000000000000Z", "--no-progress",
                      "--out", str(tmp_path)]) == 6
    said = capsys.readouterr()
    assert "ARB_LIVE_ARMED_AT is not set" in " ".join((said.out + said.err).split())
    assert not any(tmp_path.iterdir())
