"""A test double for the async ccxt methods preflight calls: canned answers, optional errors."""
from __future__ import annotations


class FakeExchange:
    """Answers load_markets/fetch_time/fetch_balance/fetch_open_orders/fetch_positions from its attributes."""

    def __init__(self, server_time_ms=None, free=None, open_orders=(), positions=(), errors=None, markets=None):
        self.markets = dict(markets or {"BTC/KRW": {}, "BTC/USDT": {}, "BTC/USDT:USDT": {}})
        self.server_time_ms = server_time_ms
        self.free = dict(free or {})
        self.open_orders = list(open_orders)
        self.positions = list(positions)
        self.errors = dict(errors or {})  # method name -> exception to raise
        self.calls: list[str] = []

    def _answer(self, method, value):
        self.calls.append(method)
        if method in self.errors:
            raise self.errors[method]
        return value

    async def load_markets(self):
        return self._answer("load_markets", self.markets)

    async def fetch_time(self):
        return self._answer("fetch_time", self.server_time_ms)

    async def fetch_balance(self):
        return self._answer("fetch_balance", {"free": self.free, "total": self.free})

    async def fetch_open_orders(self):
        return self._answer("fetch_open_orders", self.open_orders)

    async def fetch_positions(self):
        return self._answer("fetch_positions", self.positions)


class FakeBinance(FakeExchange):
    """Binance: GET /sapi/v1/account/apiRestrictions through ccxt's implicit method."""

    def __init__(self, restrictions=None, **kw):
        super().__init__(**kw)
        self.restrictions = restrictions if restrictions is not None else {
            "ipRestrict": True, "enableReading": True, "enableWithdrawals": False,
            "enableSpotAndMarginTrading": True, "enableFutures": True}

    async def sapi_get_account_apirestrictions(self):
        return self._answer("sapi_get_account_apirestrictions", self.restrictions)


class FakeUpbit(FakeExchange):
    """Upbit: GET /v1/api_keys through ccxt's implicit method."""

    def __init__(self, api_keys=(), **kw):
        super().__init__(**kw)
        self.api_keys = list(api_keys)

    async def private_get_api_keys(self):
        return self._answer("private_get_api_keys", self.api_keys)

