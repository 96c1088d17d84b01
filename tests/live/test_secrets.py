"""Secrets never show in text, and a secrets file is refused when git or other users could see it."""
from __future__ import annotations

import copy
import json
import logging
import os
import pickle
import subprocess
from pathlib import Path

import pytest

from live.secrets import Secret, SecretsError, check_secrets_file, load_keys

RAW = "sk-live-Zq83hfT0pPq1XyW9"


def test_secret_never_shows_in_text_forms():
    s = Secret(RAW)
    forms = [str(s), repr(s), f"{s}", f"{s!r}", f"{s:>40}", "%s" % s, "%r" % (s,),
             json.dumps({"k": s}, default=str), str([s]), str({"k": s})]
    for text in forms:
        assert RAW not in text and RAW[:-2] not in text, text
    assert str(s) == "***W9" and s.reveal() == RAW


def test_short_secret_shows_no_characters():
    assert str(Secret("abcdef")) == "***"


def test_secret_refuses_pickle_and_assignment():
    s = Secret(RAW)
    with pytest.raises(TypeError, match="refuses to be pickled"):
        pickle.dumps({"key": s})
    with pytest.raises(AttributeError):
        s._value = "other"
    assert copy.deepcopy(s) is s


def test_secret_in_exception_and_log_is_masked(caplog):
    s = Secret(RAW)
    with pytest.raises(ValueError) as info:
        raise ValueError(f"signing failed with key {s}")
    assert RAW not in str(info.value)
    with caplog.at_level(logging.INFO):
        logging.getLogger("test.secret").info("using key %s / %r", s, s)
    assert RAW not in caplog.text and "***W9" in caplog.text


def test_secret_equality_compares_values():
    assert Secret(RAW) == Secret(RAW) and Secret(RAW) != Secret(RAW + "x")
    with pytest.raises(TypeError):
        hash(Secret(RAW))


def test_load_keys_from_environment():
    env = {"ARB_UPBIT_ACCESS_KEY": "up-access", "ARB_UPBIT_SECRET_KEY": "up-secret",
           "ARB_BINANCE_API_KEY": "bn-key", "ARB_BINANCE_API_SECRET": "bn-secret"}
    keys = load_keys(env)
    assert keys["upbit"].api_key.reveal() == "up-access" and keys["binance"].secret.reveal() == "bn-secret"
    assert "ARB_UPBIT_ACCESS_KEY" in keys["upbit"].source


def test_half_a_key_pair_in_environment_is_refused():
    with pytest.raises(SecretsError, match="ARB_BINANCE_API_SECRET is empty"):
        load_keys({"ARB_BINANCE_API_KEY": "bn-key"})


# --- secrets file checks, against a real git repository made for the test ---

def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / ".gitignore").write_text("secrets.yaml\n")
    return tmp_path


def write_secrets(path: Path, mode: int = 0o600) -> Path:
    path.write_text("upbit:\n  api_key: up-access\n  secret: up-secret-value\n"
                    "binance:\n  api_key: bn-key\n  secret: bn-secret-value\n")
    os.chmod(path, mode)
    return path


def test_good_ignored_private_file_loads(repo):
    path = write_secrets(repo / "secrets.yaml")
    assert check_secrets_file(path) == []
    keys = load_keys({}, path)
    assert keys["binance"].secret.reveal() == "bn-secret-value"
    assert str(path) in keys["binance"].source


def test_file_outside_any_git_repo_is_fine(tmp_path):
    path = write_secrets(tmp_path / "keys.yaml")
    assert check_secrets_file(path) == []


def test_environment_wins_over_file(repo):
    path = write_secrets(repo / "secrets.yaml")
    keys = load_keys({"ARB_UPBIT_ACCESS_KEY": "env-a", "ARB_UPBIT_SECRET_KEY": "env-s"}, path)
    assert keys["upbit"].api_key.reveal() == "env-a" and keys["binance"].api_key.reveal() == "bn-key"


def test_world_readable_file_refused(repo):
    path = write_secrets(repo / "secrets.yaml", mode=0o644)
    (problem,) = check_secrets_file(path)
    assert "mode 0644" in problem and "chmod 600" in problem
    with pytest.raises(SecretsError, match="mode 0644"):
        load_keys({}, path)


def test_not_ignored_file_refused(repo):
    path = write_secrets(repo / "keys.yaml")
    (problem,) = check_secrets_file(path)
    assert "not ignored" in problem and str(path.resolve()) in problem


def test_tracked_file_refused_even_if_ignored_later(repo):
    path = write_secrets(repo / "secrets.yaml")
    git(repo, "add", "-f", "secrets.yaml")
    git(repo, "commit", "-q", "-m", "oops")
    (problem,) = check_secrets_file(path)
    assert "tracked by git" in problem


def test_missing_file_refused(tmp_path):
    (problem,) = check_secrets_file(tmp_path / "nope.yaml")
    assert "does not exist" in problem


@pytest.mark.parametrize("text, expected", [
    ("upbit: [1, 2\n", "line"),
    ("- a\n- b\n", "top level must be a mapping"),
    ("kraken: {api_key: a, secret: b}\n", "unknown account 'kraken'"),
    ("upbit: {api_key: a}\n", "upbit.secret is missing"),
    ("upbit: {api_key: a, secret: b, passphrase: c}\n", "unknown keys ['passphrase']"),
])
def test_malformed_file_names_what_and_where(repo, text, expected):
    path = repo / "secrets.yaml"
    path.write_text(text)
    os.chmod(path, 0o600)
    with pytest.raises(SecretsError) as info:
        load_keys({}, path)
    assert expected in str(info.value) and str(path) in str(info.value)
