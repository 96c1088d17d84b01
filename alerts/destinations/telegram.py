"""Telegram Bot API destination: POST {api_url}/bot{token}/sendMessage with {chat_id, text}."""
from __future__ import annotations

from alerts.destinations.base import DEFAULT_TIMEOUT_S, chat_text, post_json
from alerts.events import Alert
from alerts.masking import Masker

TELEGRAM_API = "https://api.telegram.org"
TEXT_LIMIT = 4096   # Telegram rejects longer messages


class TelegramDestination:
    """Sends alerts to one Telegram chat. The token is a secret: it is masked everywhere."""

    name = "telegram"

    def __init__(self, token: str, chat_id: str | int, api_url: str = TELEGRAM_API,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not token:
            raise ValueError("telegram: empty bot token")
        self._url = f"{api_url.rstrip('/')}/bot{token}/sendMessage"
        self._chat_id = chat_id
        self._timeout_s = timeout_s
        self.secrets = (token,)
        self._masker = Masker(self.secrets)

    def send(self, alert: Alert) -> None:
        text = self._masker(chat_text(alert, TEXT_LIMIT))
        post_json(self._url, {"chat_id": self._chat_id, "text": text}, self._timeout_s,
                  self._masker, self.name)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"TelegramDestination(chat_id={self._chat_id!r}, token=***)"
