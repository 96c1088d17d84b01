"""Pure domain core of arbitrage-lite: books, premium, fills, strategy and risk rules, ledger, KPIs.

Nothing in this package imports Ray or does I/O; prices, FX and the clock are passed in.
The backtest runs it in-process, the Ray actors wrap it as thin shells.
"""
