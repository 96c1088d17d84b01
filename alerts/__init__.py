"""Alerts: typed events routed, throttled and fanned out to log file, Telegram and Slack."""
