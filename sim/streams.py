"""One outgoing queue per WebSocket client, so stalls, latency and bad frames apply in order."""
from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from sim.faults import Faults

MALFORMED = b'{"this is not": valid json'


class Outbox:
    """Frames for one client, written by one task; a stall holds frames, it does not drop them."""

    def __init__(self, ws: web.WebSocketResponse, venue: str, faults: Faults, binary: bool) -> None:
        self.ws, self.venue, self.faults, self.binary = ws, venue, faults, binary
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.sent = 0
        self.task = asyncio.get_running_loop().create_task(self._write())

    def put(self, payload: Any) -> None:
        self.queue.put_nowait(json.dumps(payload, separators=(",", ":")).encode())

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def _write(self) -> None:
        while True:
            frame = await self.queue.get()
            if frame is None or self.ws.closed:
                return
            while (left := self.faults.stalled(self.venue)) > 0:
                await asyncio.sleep(min(left, 0.05))
            latency = self.faults.venues[self.venue].latency_ms
            if latency:
                await asyncio.sleep(latency / 1000)
            if self.faults.take_malformed(self.venue):
                frame = MALFORMED
            try:
                if self.binary:
                    await self.ws.send_bytes(frame)
                else:
                    await self.ws.send_str(frame.decode())
                self.sent += 1
            except (ConnectionError, RuntimeError):
                return


class StreamHub:
    """All open WebSocket clients by venue, so a fault can drop them all at once."""

    def __init__(self) -> None:
        self.clients: dict[str, set[web.WebSocketResponse]] = {}

    def add(self, venue: str, ws: web.WebSocketResponse) -> None:
        self.clients.setdefault(venue, set()).add(ws)

    def remove(self, venue: str, ws: web.WebSocketResponse) -> None:
        self.clients.get(venue, set()).discard(ws)

    def count(self, venue: str | None = None) -> int:
        return sum(len(c) for v, c in self.clients.items() if venue in (None, v))

    async def disconnect(self, venue: str | None = None) -> int:
        """Close every client of `venue` (all venues when None) with 1001 going away; return how many."""
        victims = [ws for v, c in self.clients.items() if venue in (None, v) for ws in list(c)]
        for ws in victims:
            await ws.close(code=1001, message=b"sim fault: disconnect")
        return len(victims)
