"""Backtest mode: replay recorded (or synthetic) books through the domain engine in-process."""
