"""The redactor scrubs known keys and credential-shaped tokens from text, payloads, logs and tracebacks."""
from __future__ import annotations

import io
import json
import logging
from urllib.parse import quote

import jwt
import pytest

from live.redact import (Redactor, active_redactor, install_log_redaction, redact,
                         uninstall_log_redaction)
from live.secrets import Secret

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
API_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
SECRETS = (Secret(API_KEY), Secret(API_SECRET))


@pytest.fixture()
def redactor() -> Redactor:
    return Redactor(SECRETS)


@pytest.fixture()
def root_stream():
    """A handler on the root logger that captures what would reach a log file."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    uninstall_log_redaction()
    root.removeHandler(handler)
    root.setLevel(old_level)


def assert_clean(text: str) -> None:
    for value in (API_KEY, API_SECRET, quote(API_SECRET, safe="")):
        assert value not in text, text


def test_text_forms_of_a_key_are_scrubbed(redactor):
    import base64
    line = (f"GET /api/v3/order?apiKey={quote(API_KEY, safe='')}&x=1 secret={API_SECRET} "
            f"basic={base64.b64encode(API_SECRET.encode()).decode()}")
    out = redactor.text(line)
    assert_clean(out)
    assert base64.b64encode(API_SECRET.encode()).decode() not in out
    assert out.startswith("GET /api/v3/order?apiKey=***&x=1")


def test_bearer_jwt_and_signatures_are_scrubbed_without_knowing_the_key():
    token = jwt.encode({"access_key": "some-other-key", "nonce": "n1"}, "other-secret-0123456789abcdef-0123456789", algorithm="HS256")
    plain = Redactor()
    out = plain.text(f"Authorization: Bearer {token}")
    assert token not in out and out == "Authorization: Bearer ***"
    assert token not in plain.text(f"token was {token} then")
    out = plain.text("timestamp=1&signature=" + "ab12" * 16 + " X-MBX-APIKEY: abcDEF123")
    assert "ab12ab12" not in out and "abcDEF123" not in out


def test_payloads_are_scrubbed_recursively(redactor):
    payload = {"venue": "binance", "config": {"apiKey": "unknown-key-value", "secret": Secret(API_SECRET)},
               "headers": [("X-Note", f"key {API_KEY}")], "errors": {ValueError(f"bad {API_KEY}")},
               "raw": API_SECRET.encode(), "qty": 0.5, API_KEY: "key as dict key"}
    out = redactor.scrub(payload)
    text = json.dumps(out, default=str)
    assert_clean(text)
    assert "unknown-key-value" not in text
    assert out["qty"] == 0.5 and out["venue"] == "binance"
    assert out["config"]["apiKey"] == "***"
    assert isinstance(out["headers"], list) and isinstance(out["headers"][0], tuple)


def test_exception_traceback_is_scrubbed(redactor):
    try:
        try:
            raise ConnectionError(f"POST https://api.binance.com/sapi?apiKey={API_KEY}")
        except ConnectionError as inner:
            raise RuntimeError(f"order failed, secret {API_SECRET}") from inner
    except RuntimeError as exc:
        text = redactor.exception(exc)
    assert_clean(text)
    assert "ConnectionError" in text and "RuntimeError: order failed, secret ***" in text


def test_too_short_secret_is_refused():
    with pytest.raises(ValueError, match="6\\+ characters"):
        Redactor(["abc"])


def test_log_filter_scrubs_formatted_line_from_child_logger(root_stream, redactor):
    install_log_redaction(redactor)
    logging.getLogger("live.executor.binance").info("signed %s with %s", f"apiKey={API_KEY}", API_SECRET)
    text = root_stream.getvalue()
    assert_clean(text)
    assert "INFO live.executor.binance signed apiKey=*** with ***" in text


def test_log_filter_scrubs_traceback(root_stream, redactor):
    install_log_redaction(redactor)
    try:
        raise PermissionError(f"invalid key {API_KEY}")
    except PermissionError:
        logging.getLogger("live.preflight").exception("balance fetch failed for %s", API_KEY)
    text = root_stream.getvalue()
    assert_clean(text)
    assert "Traceback (most recent call last)" in text and "PermissionError: invalid key ***" in text


def test_handler_added_after_install_is_covered(redactor):
    install_log_redaction(redactor)
    stream = io.StringIO()
    late = logging.getLogger("late.logger")
    handler = logging.StreamHandler(stream)
    late.addHandler(handler)
    late.propagate = False
    try:
        late.error("key=%s", API_KEY)
    finally:
        late.removeHandler(handler)
        uninstall_log_redaction()
    assert stream.getvalue() == "key=***\n"


def test_uninstall_restores_plain_logging(root_stream, redactor):
    install_log_redaction(redactor)
    uninstall_log_redaction()
    logging.getLogger("x").info("plain %s", "text")
    assert "plain text" in root_stream.getvalue()
    assert active_redactor() is not redactor


def test_redact_helper_uses_the_installed_redactor(root_stream, redactor):
    assert redact({"note": API_KEY}) == {"note": API_KEY}  # nothing installed: the key is unknown
    install_log_redaction(redactor)
    assert redact({"note": API_KEY, "password": "pw-123456"}) == {"note": "***", "password": "***"}


def test_from_keys_covers_every_loaded_key():
    from live.secrets import load_keys
    keys = load_keys({"ARB_BINANCE_API_KEY": API_KEY, "ARB_BINANCE_API_SECRET": API_SECRET})
    assert_clean(Redactor.from_keys(keys).text(f"{API_KEY} {API_SECRET}"))
