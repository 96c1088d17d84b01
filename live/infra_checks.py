"""Preflight checks of what the process stands on: the secrets file, Redis and the database."""
from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from live.preflight import CheckResult
from live.secrets import check_secrets_file


async def secrets_file_check(path: Path | None) -> CheckResult:
    """The secrets file (if keys come from one) is private, and git neither tracks nor would add it."""
    if path is None:
        return CheckResult("secrets_file", True, "no secrets file: keys come from the environment")
    problems = await asyncio.to_thread(check_secrets_file, Path(path))
    return CheckResult("secrets_file", not problems, "; ".join(problems) or f"{path}: private, git-ignored")


async def redis_check(url: str, timeout_s: float = 2.0) -> CheckResult:
    """Redis (the snapshot store) answers PING."""
    client = aioredis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    where = _redis_where(client)
    try:
        answer = await client.ping()
    except (RedisError, OSError) as exc:
        return CheckResult("redis", False, f"{where}: {type(exc).__name__}: {exc}")
    finally:
        await client.aclose()
    return CheckResult("redis", answer is True, f"{where}: PING -> {answer!r}")


def _redis_where(client: aioredis.Redis) -> str:
    # Host, port and db only: the URL may carry a password.
    kw = client.connection_pool.connection_kwargs
    return f"redis {kw.get('host', kw.get('path', '?'))}:{kw.get('port', '')}/{kw.get('db', 0)}"


async def database_check(url: str, timeout_s: float = 5.0) -> CheckResult:
    """The trade store accepts a connection and answers SELECT 1."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError, ValueError or others by dialect
        return CheckResult("database", False, f"database URL is malformed: {type(exc).__name__}")
    where = parsed.render_as_string(hide_password=True)
    connect_args = {"connect_timeout": max(1, int(timeout_s))} if parsed.get_backend_name() == "postgresql" else {}

    def select_one() -> object:
        engine = create_engine(parsed, connect_args=connect_args)
        try:
            with engine.connect() as conn:
                return conn.execute(text("SELECT 1")).scalar()
        finally:
            engine.dispose()

    try:
        answer = await asyncio.to_thread(select_one)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return CheckResult("database", False, f"{where}: {type(exc).__name__}: {reason}")
    return CheckResult("database", answer == 1, f"{where}: SELECT 1 -> {answer!r}")
