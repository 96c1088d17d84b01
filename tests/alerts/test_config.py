"""The profile's alerts section: checked with errors naming the key, secrets taken from env."""
from __future__ import annotations

import pytest
import yaml

from alerts.config import AlertsConfig, SlackConfig, TelegramConfig, build_dispatcher, from_profile
from alerts.events import Alert, Severity
from config.loader import load_profile
from config.paths import PROFILES_DIR
from config.schema import Slack, Telegram
from tests.alerts.chat_server import ChatServer


def test_every_shipped_profile_section_parses():
    for path in sorted(PROFILES_DIR.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        config = AlertsConfig.from_mapping(raw["alerts"], where=f"{path.name}: alerts")
        assert config.log_file.endswith("alerts.log")


def test_full_section_builds_a_dispatcher_that_delivers(tmp_path):
    server = ChatServer().start()
    try:
        config = AlertsConfig.from_mapping({
            "log_file": "alerts.jsonl",
            "telegram": {"token_env": "TG_TOKEN", "chat_id": -1001, "api_url": server.url},
            "slack": {"webhook_env": "SLACK_HOOK"},
            "routing": {"P0": ["telegram", "slack"], "P1": ["telegram"]},
            "throttle": {"window_s": 30, "max_per_window": 2}, "timeout_s": 1})
        assert config.throttle.window_ms == 30_000 and config.telegram.chat_id == "-1001"
        env = {"TG_TOKEN": "55:tok-secret", "SLACK_HOOK": f"{server.url}/hook/S3CR3T"}
        core = build_dispatcher(config, env=env, base_dir=tmp_path)
        core.submit(Alert(Severity.P1, "restart", "supervisor", None, "strategy BTC restarted", 5))
        assert core.flush(5.0)
        core.close()
        assert [path for path, _ in server.requests] == ["/bot55:tok-secret/sendMessage"]
        assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == 1
    finally:
        server.stop()


@pytest.mark.parametrize("raw, message", [
    ({}, r"alerts: missing key\(s\) log_file"),
    ({"log_file": "a", "email": {}}, r"alerts: unknown key\(s\) email"),
    ({"log_file": "a", "telegram": {"chat_id": 1}}, r"alerts\.telegram: missing key\(s\) token_env"),
    ({"log_file": "a", "slack": {"webhook": "https://x"}}, r"alerts\.slack: missing key\(s\) webhook_env"),
    ({"log_file": "a", "throttle": {"window_s": 0}}, r"^alerts\.throttle\.window_ms must be > 0"),
    ({"log_file": "a", "throttle": {"window": 5}}, r"alerts\.throttle: unknown key\(s\) window"),
    ({"log_file": "a", "retry": {"backoff_s": "x"}}, r"alerts\.retry\.backoff_s: expected a number"),
    ({"log_file": "a", "timeout_s": 30}, r"alerts\.timeout_s 30\.0: expected \(0, 10\]"),
    ({"log_file": "a", "p2_to_chat": "yes"}, r"alerts\.p2_to_chat: expected true or false"),
    ({"log_file": ""}, r"alerts\.log_file: expected a non-empty string"),
    ({"log_file": "a", "queue_size": "many"}, r"alerts\.queue_size: expected an integer, got 'many'"),
])
def test_bad_sections_name_the_key(raw, message):
    with pytest.raises(ValueError, match=message):
        AlertsConfig.from_mapping(raw)


def test_missing_secret_names_the_variable_not_a_value(tmp_path):
    config = AlertsConfig.from_mapping({"log_file": "a.jsonl", "slack": {"webhook_env": "HOOK"}})
    with pytest.raises(ValueError, match=r"alerts\.slack\.webhook_env: environment variable HOOK "
                                         r"is not set"):
        build_dispatcher(config, env={}, base_dir=tmp_path)
    routed = AlertsConfig.from_mapping({"log_file": "a.jsonl", "routing": {"P0": ["telegram"]}})
    with pytest.raises(ValueError, match=r"alerts\.routing\.P0: unknown channel 'telegram'"):
        build_dispatcher(routed, env={}, base_dir=tmp_path)


def test_a_checked_profile_section_converts_with_its_own_key_names():
    profile = load_profile("paper-top50-local")
    section = profile.alerts.model_copy(update={
        "telegram": Telegram(api_url="http://127.0.0.1:9/tg", bot_token_env="ARB_TG_TOKEN", chat_id="-42"),
        "slack": Slack(webhook_url_env="ARB_SLACK_HOOK")})
    config = from_profile(section)
    assert config.log_file == profile.alerts.log_file
    assert config.telegram == TelegramConfig("ARB_TG_TOKEN", "-42", "http://127.0.0.1:9/tg")
    assert config.slack == SlackConfig("ARB_SLACK_HOOK")
    assert from_profile(profile.alerts).telegram is None
