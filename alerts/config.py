"""The profile's `alerts:` section, checked, and the dispatcher it describes.

Secrets never sit in the profile: it names the environment variables that hold them
(telegram.token_env, slack.webhook_env). Every error names the key it is about.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from alerts.channel_worker import RetryPolicy
from alerts.destinations.base import DEFAULT_TIMEOUT_S, Destination
from alerts.destinations.log_file import LogFileDestination
from alerts.destinations.slack import SlackDestination
from alerts.destinations.telegram import TELEGRAM_API, TelegramDestination
from alerts.dispatcher import AlertDispatcherCore, Pending
from alerts.routing import AlertRouter, RoutingTable, ThrottlePolicy


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    token_env: str            # environment variable holding the bot token
    chat_id: str
    api_url: str = TELEGRAM_API


@dataclass(frozen=True, slots=True)
class SlackConfig:
    webhook_env: str          # environment variable holding the incoming-webhook URL


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """Checked alerts settings; defaults are the ones the brief and SYSTEM.md call for."""

    log_file: str
    telegram: TelegramConfig | None = None
    slack: SlackConfig | None = None
    routing: Mapping[str, tuple[str, ...]] | None = None   # None: the default severity table
    p2_to_chat: bool = True
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    queue_size: int = 1000
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str = "alerts") -> "AlertsConfig":
        section = _section(raw, where, required={"log_file"},
                           allowed={"log_file", "telegram", "slack", "routing", "p2_to_chat",
                                    "throttle", "retry", "queue_size", "timeout_s"})
        try:
            tg = section.get("telegram")
            sl = section.get("slack")
            throttle = _section(section.get("throttle") or {}, f"{where}.throttle",
                                allowed={"window_s", "max_per_window"})
            retry = _section(section.get("retry") or {}, f"{where}.retry",
                             allowed={"max_attempts", "backoff_s", "max_backoff_s"})
            timeout_s = _num(section, "timeout_s", DEFAULT_TIMEOUT_S, float, where)
            if not 0 < timeout_s <= 10:
                raise ValueError(f"{where}.timeout_s {timeout_s}: expected (0, 10] seconds")
            routing = section.get("routing")
            return cls(
                log_file=_text(section["log_file"], f"{where}.log_file"),
                telegram=None if tg is None else _telegram(tg, f"{where}.telegram"),
                slack=None if sl is None else _slack(sl, f"{where}.slack"),
                routing=None if routing is None else {k: tuple(v) for k, v in
                                                      _section(routing, f"{where}.routing").items()},
                p2_to_chat=_bool(section.get("p2_to_chat", True), f"{where}.p2_to_chat"),
                throttle=ThrottlePolicy(
                    int(_num(throttle, "window_s", 60.0, float, f"{where}.throttle") * 1000),
                    _num(throttle, "max_per_window", 1, int, f"{where}.throttle")),
                retry=RetryPolicy(_num(retry, "max_attempts", 3, int, f"{where}.retry"),
                                  _num(retry, "backoff_s", 0.25, float, f"{where}.retry"),
                                  _num(retry, "max_backoff_s", 5.0, float, f"{where}.retry")),
                queue_size=_num(section, "queue_size", 1000, int, where),
                timeout_s=timeout_s)
        except (TypeError, ValueError) as exc:
            message = str(exc)
            raise ValueError(message if message.startswith(where) else f"{where}: {message}") from None


def from_profile(section: Any) -> AlertsConfig:
    """The checked profile's `alerts` (config.schema.Alerts: bot_token_env, webhook_url_env) as AlertsConfig."""
    raw: dict[str, Any] = {"log_file": section.log_file}
    if section.telegram is not None:
        raw["telegram"] = {"token_env": section.telegram.bot_token_env, "chat_id": section.telegram.chat_id,
                           "api_url": section.telegram.api_url}
    if section.slack is not None:
        raw["slack"] = {"webhook_env": section.slack.webhook_url_env}
    return AlertsConfig.from_mapping(raw, "profile alerts")


def build_dispatcher(config: AlertsConfig, env: Mapping[str, str] | None = None,
                     base_dir: Path | None = None, metrics: Any = None,
                     pending: list[Pending] | tuple[Pending, ...] = ()) -> AlertDispatcherCore:
    """Destinations the config turns on, secrets read from `env`, and the dispatcher over them."""
    env = os.environ if env is None else env
    chat: list[Destination] = []
    if config.telegram is not None:
        token = _secret(env, config.telegram.token_env, "alerts.telegram.token_env")
        chat.append(TelegramDestination(token, config.telegram.chat_id, config.telegram.api_url,
                                        config.timeout_s))
    if config.slack is not None:
        hook = _secret(env, config.slack.webhook_env, "alerts.slack.webhook_env")
        chat.append(SlackDestination(hook, config.timeout_s))
    log_path = Path(config.log_file)
    if not log_path.is_absolute() and base_dir is not None:
        log_path = base_dir / log_path
    secrets = [s for d in chat for s in d.secrets]
    destinations = [LogFileDestination(log_path, secrets), *chat]
    names = [d.name for d in chat]
    table = (RoutingTable.default(names, config.p2_to_chat) if config.routing is None
             else RoutingTable.from_mapping(config.routing, names))
    return AlertDispatcherCore(destinations, AlertRouter(table, config.throttle),
                               queue_size=config.queue_size, retry=config.retry,
                               metrics=metrics, pending=pending)


def _section(raw: Any, where: str, required: set[str] = frozenset(),
             allowed: set[str] | None = None) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(raw).__name__}")
    missing = sorted(required - set(raw))
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
    unknown = sorted(set(raw) - allowed) if allowed is not None else []
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(map(str, unknown))} "
                         f"(allowed: {', '.join(sorted(allowed))})")
    return raw


def _telegram(raw: Any, where: str) -> TelegramConfig:
    section = _section(raw, where, required={"token_env", "chat_id"},
                       allowed={"token_env", "chat_id", "api_url"})
    return TelegramConfig(_text(section["token_env"], f"{where}.token_env"),
                          _text(str(section["chat_id"]), f"{where}.chat_id"),
                          _text(section.get("api_url", TELEGRAM_API), f"{where}.api_url"))


def _slack(raw: Any, where: str) -> SlackConfig:
    section = _section(raw, where, required={"webhook_env"}, allowed={"webhook_env"})
    return SlackConfig(_text(section["webhook_env"], f"{where}.webhook_env"))


def _num(section: Mapping[str, Any], key: str, default: float, kind: type, where: str) -> Any:
    """An int or float setting; a string, bool or fraction-for-int is refused naming the key."""
    value = section.get(key, default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and kind is int and value != int(value):
        ok = False
    if not ok:
        noun = "an integer" if kind is int else "a number"
        raise ValueError(f"{where}.{key}: expected {noun}, got {value!r}")
    return kind(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value


def _secret(env: Mapping[str, str], name: str, where: str) -> str:
    """Read a secret from the environment; the error names the variable, never a value."""
    value = env.get(name, "")
    if not value.strip():
        raise ValueError(f"{where}: environment variable {name} is not set or empty")
    return value.strip()
