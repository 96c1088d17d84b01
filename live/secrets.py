"""API keys: a masked Secret type, and loading keys from the environment or a git-ignored file.

Environment variables (these win over the secrets file, account by account):

    ARB_UPBIT_ACCESS_KEY, ARB_UPBIT_SECRET_KEY     Upbit KRW spot
    ARB_BINANCE_API_KEY,  ARB_BINANCE_API_SECRET   Binance spot and USDT-M (one account)

Secrets file (YAML, mode 0600, outside git or ignored by it, never tracked):

    upbit:   {api_key: "...", secret: "..."}
    binance: {api_key: "...", secret: "..."}
"""
from __future__ import annotations

import hmac
import os
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from domain.venues import Venue

MASK = "***"
ACCOUNTS = ("upbit", "binance")
ENV_NAMES: dict[str, tuple[str, str]] = {
    "upbit": ("ARB_UPBIT_ACCESS_KEY", "ARB_UPBIT_SECRET_KEY"),
    "binance": ("ARB_BINANCE_API_KEY", "ARB_BINANCE_API_SECRET"),
}


class SecretsError(ValueError):
    """Keys could not be loaded safely; the message names the file, key or variable."""


class Secret:
    """A string that never prints: str, repr, format and JSON show at most its last 2 characters."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise SecretsError("a Secret needs a non-empty string")
        object.__setattr__(self, "_value", value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def reveal(self) -> str:
        """The real value: call only where a request is signed."""
        return self._value

    def masked(self) -> str:
        # Short values show nothing: 2 of 8 characters would be a quarter of the secret.
        return MASK + self._value[-2:] if len(self._value) >= 12 else MASK

    def __str__(self) -> str:
        return self.masked()

    def __repr__(self) -> str:
        return f"Secret({self.masked()!r})"

    def __format__(self, spec: str) -> str:
        return format(self.masked(), spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]  # a hash would be a fingerprint of the value

    def __reduce__(self):
        # Pickles end up in snapshots and Ray object stores: load keys where they are used instead.
        raise TypeError("Secret refuses to be pickled: load keys inside the process that signs")

    def __copy__(self) -> "Secret":
        return self

    def __deepcopy__(self, memo: dict) -> "Secret":
        return self


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """One exchange account's key pair and where it came from (for messages, never the value)."""

    account: str
    api_key: Secret
    secret: Secret
    source: str


def account_for(venue: Venue) -> str:
    """The key account a venue trades through: Binance spot and USDT-M share one."""
    return "upbit" if venue is Venue.UPBIT else "binance"


def check_secrets_file(path: Path) -> list[str]:
    """Every reason `path` is unsafe to hold keys (empty list = safe). Runs git beside the file."""
    path = Path(path)
    if not path.is_file():
        return [f"secrets file {path}: does not exist or is not a regular file"]
    problems = []
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        problems.append(f"secrets file {path}: mode {mode:04o} lets group/others read it; "
                        f"run chmod 600 {path}")
    problems.extend(_git_problems(path.resolve()))
    return problems


def _git_problems(path: Path) -> list[str]:
    """Refuse a file git tracks or would add; a file outside any work tree is fine."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(path.parent), *args],
                              capture_output=True, text=True, timeout=10)
    try:
        inside = git("rev-parse", "--is-inside-work-tree")
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return []
        if git("ls-files", "--error-unmatch", "--", path.name).returncode == 0:
            return [f"secrets file {path}: is tracked by git; remove it from the index "
                    f"(git rm --cached) and rotate the keys"]
        ignored = git("check-ignore", "-q", "--", path.name)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [f"secrets file {path}: cannot ask git whether it is ignored ({exc})"]
    if ignored.returncode == 1:
        return [f"secrets file {path}: is inside a git work tree and not ignored; "
                f"add it to .gitignore"]
    if ignored.returncode != 0:
        return [f"secrets file {path}: git check-ignore failed: {ignored.stderr.strip()}"]
    return []


def load_keys(env: Mapping[str, str], secrets_file: Path | None = None) -> dict[str, ApiKeys]:
    """Keys per account from `env`, then from `secrets_file` for accounts env does not cover."""
    keys: dict[str, ApiKeys] = {}
    for account, (key_var, secret_var) in ENV_NAMES.items():
        key, secret = env.get(key_var, "").strip(), env.get(secret_var, "").strip()
        if key and secret:
            keys[account] = ApiKeys(account, Secret(key), Secret(secret), f"env {key_var}/{secret_var}")
        elif key or secret:
            missing = secret_var if key else key_var
            raise SecretsError(f"environment sets only half of the {account} key pair: {missing} is empty")
    if secrets_file is not None:
        for account, pair in _read_secrets_file(Path(secrets_file)).items():
            keys.setdefault(account, pair)
    return keys


def _read_secrets_file(path: Path) -> dict[str, ApiKeys]:
    """Parse the YAML secrets file after refusing an unsafe one."""
    problems = check_secrets_file(path)
    if problems:
        raise SecretsError("; ".join(problems))
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        # The YAML error may quote a line of the file: name the place, not the text.
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise SecretsError(f"secrets file {path}{where}: not readable YAML ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise SecretsError(f"secrets file {path}: top level must be a mapping of account -> keys")
    keys = {}
    for account, entry in doc.items():
        if account not in ACCOUNTS:
            raise SecretsError(f"secrets file {path}: unknown account {account!r}; expected one of {ACCOUNTS}")
        if not isinstance(entry, dict):
            raise SecretsError(f"secrets file {path}: {account} must map api_key and secret")
        unknown = set(entry) - {"api_key", "secret"}
        if unknown:
            raise SecretsError(f"secrets file {path}: {account} has unknown keys {sorted(map(str, unknown))}")
        for field in ("api_key", "secret"):
            if not isinstance(entry.get(field), str) or not entry[field].strip():
                raise SecretsError(f"secrets file {path}: {account}.{field} is missing or empty")
        keys[account] = ApiKeys(account, Secret(entry["api_key"].strip()),
                                Secret(entry["secret"].strip()), f"file {path}")
    return keys


def default_secrets_file(env: Mapping[str, str]) -> Path | None:
    """$ARB_SECRETS_FILE if set (the only place a file path comes from), else none."""
    raw = env.get("ARB_SECRETS_FILE", "").strip()
    return Path(os.path.expanduser(raw)) if raw else None
