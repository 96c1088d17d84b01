"""Order updates pushed by the venue (ccxt.pro watch_orders), so a sent order is known done without polling.

The stream only wakes waiters; the order's final state and fees are then read over REST, which is
also the fallback whenever the stream is down or the venue (or the simulator) does not offer one.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from live.backoff import Backoff
from live.redact import redact

log = logging.getLogger(__name__)
FINAL = frozenset({"closed", "canceled", "expired", "rejected"})
CONNECTED_AFTER_S = 0.25


class OrderStream:
    """Watches one ccxt.pro exchange's orders; `healthy` is True while updates arrive without error."""

    def __init__(self, exchange: Any, name: str, backoff: Backoff | None = None) -> None:
        self.exchange, self.name = exchange, name
        self.backoff = backoff or Backoff(base_s=0.5, cap_s=30.0, attempts=1_000_000)
        self.healthy = False
        self.updates = 0
        self.error = ""
        self._done: dict[str, asyncio.Event] = {}
        self.finals_heard = 0                  # awaited orders the stream reported done
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"orders-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.healthy = False

    async def _run(self) -> None:
        failures = 0
        while True:
            watch = asyncio.ensure_future(self.exchange.watch_orders())
            try:
                # still waiting after a moment without an error: connected and subscribed
                done, _ = await asyncio.wait({watch}, timeout=CONNECTED_AFTER_S)
                if not done:
                    self.healthy = True
                orders = await watch
            except asyncio.CancelledError:
                watch.cancel()
                raise
            except Exception as exc:  # any stream failure: fall back to REST, try again later
                self.healthy = False
                failures += 1
                self.error = f"{type(exc).__name__}: {redact(exc)}"
                if failures == 1:
                    log.warning("%s order stream down, polling REST instead: %s", self.name, self.error)
                await asyncio.sleep(self.backoff.delay(min(failures, 30)))
                continue
            failures, self.healthy = 0, True
            self.updates += len(orders)
            self._scan()

    def _scan(self) -> None:
        """Mark every awaited order the stream has seen done. Reads ccxt's order cache, not only the
        last batch: updates that land between two watch_orders calls are cached but not returned."""
        for order in list(getattr(self.exchange, "orders", None) or ()):
            cid = str(order.get("clientOrderId"))
            event = self._done.get(cid)
            if event is not None and not event.is_set() and order.get("status") in FINAL:
                self.finals_heard += 1
                event.set()

    def expect(self, client_id: str) -> None:
        """Register before sending, so an update that beats the REST reply is not missed."""
        self._done.setdefault(client_id, asyncio.Event())

    async def wait(self, client_id: str, timeout_s: float) -> bool:
        """True once the stream reported the order done; False after `timeout_s`."""
        event = self._done.setdefault(client_id, asyncio.Event())
        self._scan()
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
            return True
        except asyncio.TimeoutError:
            return False

    def forget(self, client_id: str) -> None:
        self._done.pop(client_id, None)
