"""The book channel: feed -> sink batches (and strategy -> coordinator intents) over direct TCP streams
instead of a Ray call each.

Ray carries everything else (start, supervision, wiring, news, control). Books are the hot stream: at
~2,000 updates/s a Ray call per batch costs ~0.5 ms to send and 1-2 ms to run in the receiving
worker, which on 2 cores leaves batching windows (and so latency) far above the target. A framed
socket write and read costs tens of microseconds. Intents ride the same inbox (IntentLink), so an
intent does not wait milliseconds for a coordinator busy with books.

A sink serves an inbox (`serves_books` on its class): a thread that accepts connections and hands
each frame to the sink's own `on_books` or `submit`, under the lock every other method of the sink
takes (a sync actor), or on the actor's event loop (an async actor), so it never runs beside a Ray
call. A batch of books is answered with one byte once handled: the feed keeps one batch in flight
per sink and holds newer books meanwhile (latest wins).

Frames are a 4-byte length and a pickle of (method, args, answered?), on the cluster's own network
between its own actors (the trust Ray's own pickled calls rely on).
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import pickle
import socket
import struct
import sys
import threading
from typing import Any, Callable

log = logging.getLogger("actors.book_channel")
HEADER = struct.Struct("!I")
ACK = b"\x01"
MAX_FRAME = 256 * 1024 * 1024
SWITCH_INTERVAL_S = 0.0005
METHODS = ("on_books", "submit")     # what a frame may call on its sink


def encode(books: list, received_at: float) -> bytes:
    """A feed's batch of books: answered with ACK once handled."""
    return _frame("on_books", (books, received_at), True)


def encode_intents(intents: list, received_at: float, decided_at: float) -> bytes:
    """A strategy's order intents for the coordinator: not answered (the coordinator's news is)."""
    return _frame("submit", (intents, received_at, decided_at), False)


def _frame(method: str, args: tuple, ack: bool) -> bytes:
    payload = pickle.dumps((method, args, ack), protocol=5)
    return HEADER.pack(len(payload)) + payload


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    """n bytes, or None when the peer closed first."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = conn.recv_into(view[got:], n - got)
        if k == 0:
            return None
        got += k
    return bytes(buf)


class BookInbox:
    """Listens on `host` (port chosen by the OS); each connection's frames are handed, one at a time, to
    `call(method, args)` (METHODS only): a feed's batches (each answered with ACK) and a strategy's
    intents. A frame that cannot be read closes its connection (its sender reconnects); a call the
    sink fails on is logged (and answered), as a failed Ray call would be."""

    def __init__(self, call: Callable[[str, tuple], Any], host: str):
        self.call = call
        self.listener = socket.create_server((host, 0))
        self.address = (host, self.listener.getsockname()[1])
        _share_the_gil_finely()
        threading.Thread(target=self._accept, name="book-inbox", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:          # closed
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), name="book-inbox-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    header = _recv_exact(conn, HEADER.size)
                    if header is None:
                        return
                    (size,) = HEADER.unpack(header)
                    if size > MAX_FRAME:
                        raise ValueError(f"frame of {size} bytes is over {MAX_FRAME}")
                    payload = _recv_exact(conn, size)
                    if payload is None:
                        return
                    method, args, ack = pickle.loads(payload)
                    if method not in METHODS:
                        raise ValueError(f"method {method!r} is not one an inbox takes {METHODS}")
                except (OSError, ValueError, pickle.UnpicklingError, EOFError, TypeError) as err:
                    log.error("book inbox %s:%d: unreadable frame, connection closed: %s", *self.address, err)
                    return
                try:
                    self.call(method, args)
                except Exception:   # noqa: BLE001 - a bad batch must not stop the stream
                    log.exception("book inbox %s:%d: %s of %d items failed", *self.address, method, len(args[0]))
                if ack:
                    try:
                        conn.sendall(ACK)
                    except OSError:
                        return

    def close(self) -> None:
        self.listener.close()


def serves_books(cls: type) -> type:
    """Give an actor class a `book_inbox()` method returning the address feeds send its books to (and
    strategies their intents, for a class with `submit`).

    Sync actor: every public method takes one lock, which the inbox's calls take too. Async actor
    (`on_books` a coroutine): the inbox runs its calls on the actor's event loop."""
    is_async = inspect.iscoroutinefunction(cls.on_books)
    if is_async:
        async def book_inbox(self) -> tuple[str, int]:
            if getattr(self, "_book_inbox", None) is None:
                loop = asyncio.get_running_loop()

                def on_loop(method: str, args: tuple) -> None:
                    asyncio.run_coroutine_threadsafe(getattr(self, method)(*args), loop).result()
                self._book_inbox = BookInbox(on_loop, _node_ip())
            return self._book_inbox.address
    else:
        for name, method in _public_methods(cls):
            if not getattr(method, "_book_locked", False):     # a subclass of a served class: done
                setattr(cls, name, _locked(method))

        def book_inbox(self) -> tuple[str, int]:
            if getattr(self, "_book_inbox", None) is None:
                self._book_inbox = BookInbox(lambda method, args: getattr(self, method)(*args), _node_ip())
            return self._book_inbox.address
    cls.book_inbox = book_inbox
    return cls


def _public_methods(cls: type) -> list[tuple[str, Callable]]:
    seen: dict[str, Callable] = {}
    for klass in reversed(cls.__mro__[:-1]):       # object's own methods excluded
        for name, value in vars(klass).items():
            if not name.startswith("_") and inspect.isfunction(value):
                seen[name] = value
    return list(seen.items())


_CREATING = threading.Lock()


def _lock_of(actor: Any) -> threading.RLock:
    """The actor instance's own lock (made on first use: a lock cannot be pickled with its class)."""
    lock = actor.__dict__.get("_book_lock")
    if lock is None:
        with _CREATING:
            lock = actor.__dict__.setdefault("_book_lock", threading.RLock())
    return lock


def _locked(method: Callable) -> Callable:
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        with _lock_of(self):
            return method(self, *args, **kwargs)
    call._book_locked = True
    return call


def _share_the_gil_finely() -> None:
    """The inbox thread and Ray's own thread take turns on the GIL; at Python's default 5 ms switch
    interval a Ray call (an intent at the coordinator) can wait 5 ms behind a batch of books."""
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))


def _node_ip() -> str:
    try:
        import ray
        return ray.util.get_node_ip_address()
    except Exception:   # noqa: BLE001 - outside a Ray worker (unit tests): loopback
        return "127.0.0.1"


class BookOutlet:
    """The feed's end of one sink's channel: at most one batch in flight; `on_ack` runs when it is handled."""

    def __init__(self, address: tuple[str, int], on_ack: Callable[[], None]):
        self.address = address
        self.on_ack = on_ack
        self.writer: asyncio.StreamWriter | None = None
        self.reader_task: asyncio.Task | None = None
        self.in_flight = False
        self.connecting: asyncio.Task | None = None
        self.lost = 0                 # connections lost or refused

    @property
    def ready(self) -> bool:
        return self.writer is not None and not self.in_flight

    async def connect(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection(*self.address)
        except OSError as err:
            self.lost += 1
            log.warning("book channel to %s:%d: %s", *self.address, err)
            return False
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.writer, self.in_flight = writer, False
        self.reader_task = asyncio.create_task(self._acks(reader))
        return True

    def reconnect_soon(self, delay_s: float) -> None:
        """Connect in the background (after `delay_s`) unless connected or already trying."""
        if self.writer is None and (self.connecting is None or self.connecting.done()):
            async def later() -> None:
                await asyncio.sleep(delay_s)
                await self.connect()
            self.connecting = asyncio.create_task(later())

    def send(self, books: list, received_at: float) -> None:
        self.in_flight = True
        self.writer.write(encode(books, received_at))

    async def _acks(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                await reader.readexactly(1)
                self.in_flight = False
                self.on_ack()
        except (asyncio.IncompleteReadError, OSError) as err:
            self.lost += 1
            log.warning("book channel to %s:%d lost: %s", *self.address, err)
        self._drop()

    def _drop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.writer, self.in_flight = None, False

    async def drained(self, timeout_s: float) -> bool:
        """Wait (up to timeout_s) until the batch in flight is handled."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.in_flight and self.writer is not None and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.002)
        return not self.in_flight

    async def close(self) -> None:
        for task in (self.reader_task, self.connecting):
            if task is not None:
                task.cancel()
        self._drop()


class IntentLink:
    """A strategy's line to the coordinator's inbox for its intents (a blocking socket: the strategy
    runs in threads, not an event loop). `send` returns False once the line is down (the coordinator
    died); the caller then goes through Ray, and the next set_peers connects to the new coordinator."""

    def __init__(self, address: tuple[str, int], timeout_s: float = 5.0):
        self.address = tuple(address)
        self.sock: socket.socket | None = socket.create_connection(self.address, timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, intents: list, received_at: float, decided_at: float) -> bool:
        if self.sock is None:
            return False
        try:
            self.sock.sendall(encode_intents(intents, received_at, decided_at))
            return True
        except OSError as err:
            log.warning("intent link to %s:%d lost: %s", *self.address, err)
            self.close()
            return False

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
