"""Slack incoming-webhook destination: POST {"text": ...} to the webhook URL."""
from __future__ import annotations

from alerts.destinations.base import DEFAULT_TIMEOUT_S, chat_text, post_json
from alerts.events import Alert
from alerts.masking import Masker

TEXT_LIMIT = 3000   # Slack truncates long text blocks; keep alerts readable


class SlackDestination:
    """Sends alerts to one Slack webhook. The whole URL is the secret, so it is masked."""

    name = "slack"

    def __init__(self, webhook_url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not webhook_url.startswith(("https://", "http://")):
            raise ValueError("slack: webhook URL must start with https:// (value hidden)")
        self._url = webhook_url
        self._timeout_s = timeout_s
        self.secrets = (webhook_url,)
        self._masker = Masker(self.secrets)

    def send(self, alert: Alert) -> None:
        text = self._masker(chat_text(alert, TEXT_LIMIT))
        post_json(self._url, {"text": text}, self._timeout_s, self._masker, self.name)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "SlackDestination(webhook=***)"
