"""Each destination sends the exact wire payload to a real local HTTP server, and masks secrets."""
from __future__ import annotations

import json
import threading
from collections import deque

import pytest

from alerts.destinations.base import DeliveryError
from alerts.destinations.log_file import LogFileDestination
from alerts.destinations.slack import SlackDestination
from alerts.destinations.telegram import TelegramDestination
from alerts.events import Alert, Severity
from tests.alerts.chat_server import ChatServer, refused_url

TOKEN = "123456:AAE-secret-bot-token_xyz"


@pytest.fixture
def server():
    srv = ChatServer().start()
    yield srv
    srv.stop()


def _alert(message="premium guard tripped", **fields):
    return Alert(Severity.P1, "guard_breach", "coordinator", "BTC", message, 1_700_000_000_000,
                 fields or {"guard": "daily_loss", "limit_krw": 500_000})


def test_telegram_posts_chat_id_and_text_to_the_bot_path(server):
    TelegramDestination(TOKEN, chat_id="-100200", api_url=server.url).send(_alert())
    [(path, body)] = server.requests
    assert path == f"/bot{TOKEN}/sendMessage"
    assert body == {"chat_id": "-100200",
                    "text": "[P1] guard_breach BTC (coordinator)\npremium guard tripped\n"
                            "guard: daily_loss\nlimit_krw: 500000"}


def test_slack_posts_text_to_the_webhook(server):
    hook = f"{server.url}/services/T000/B000/XXXXSECRET"
    SlackDestination(hook).send(_alert())
    [(path, body)] = server.requests
    assert path == "/services/T000/B000/XXXXSECRET"
    assert set(body) == {"text"}
    assert body["text"].startswith("[P1] guard_breach BTC (coordinator)\npremium guard tripped")


def test_http_errors_say_whether_a_retry_helps_and_hide_the_token(server):
    dest = TelegramDestination(TOKEN, chat_id=1, api_url=server.url)
    server.statuses.extend([(503, f'{{"description": "down, token {TOKEN}"}}', {}),
                            (429, "{}", {"Retry-After": "3"}),
                            (400, '{"description": "chat not found"}', {})])
    with pytest.raises(DeliveryError) as unavailable:
        dest.send(_alert())
    assert unavailable.value.retryable and "HTTP 503" in str(unavailable.value)
    assert TOKEN not in str(unavailable.value) and "***" in str(unavailable.value)
    assert unavailable.value.__cause__ is None and unavailable.value.__suppress_context__
    with pytest.raises(DeliveryError) as limited:
        dest.send(_alert())
    assert limited.value.retryable and limited.value.retry_after_s == 3.0
    with pytest.raises(DeliveryError, match="HTTP 400") as rejected:
        dest.send(_alert())
    assert not rejected.value.retryable
    assert TOKEN not in repr(dest)


def test_refused_connection_is_retryable_and_names_no_secret():
    hook = f"{refused_url()}/services/SECRETHOOK"
    with pytest.raises(DeliveryError) as err:
        SlackDestination(hook, timeout_s=0.5).send(_alert())
    assert err.value.retryable
    assert "SECRETHOOK" not in str(err.value) and "refused" in str(err.value).lower()


def test_a_slow_peer_times_out_quickly_and_is_not_retried():
    slow = ChatServer(hold=threading.Event()).start()
    try:
        with pytest.raises(DeliveryError, match=r"no reply within 0.2 s") as err:
            SlackDestination(f"{slow.url}/hook", timeout_s=0.2).send(_alert())
        assert not err.value.retryable
    finally:
        slow.stop()


def test_log_file_writes_json_lines_with_secrets_masked(tmp_path):
    path = tmp_path / "nested" / "alerts.jsonl"
    dest = LogFileDestination(path, secrets=[TOKEN, "https://hooks.slack.com/services/X/Y/Z"])
    dest.send(_alert(message=f"oops, token is {TOKEN}"))
    dest.send(_alert(url="https://hooks.slack.com/services/X/Y/Z"))
    dest.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "oops, token is ***"
    assert second["fields"] == {"url": "***"}
    assert first["kind"] == "guard_breach" and first["severity"] == "P1"
    assert TOKEN not in path.read_text()


def test_log_file_that_cannot_be_written_raises_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DeliveryError, match=r"log: cannot append to .*file/alerts\.jsonl"):
        LogFileDestination(blocker / "alerts.jsonl").send(_alert())


def test_constructors_refuse_empty_secrets_without_echoing_them():
    with pytest.raises(ValueError, match="empty bot token"):
        TelegramDestination("", chat_id=1)
    with pytest.raises(ValueError, match=r"value hidden") as err:
        SlackDestination("hooks.slack.com/services/SECRET")
    assert "SECRET" not in str(err.value)
