"""The book channel between a feed and its sinks, in one process (the feed-side tests run it across
Ray actors): batches arrive whole and in order and each is answered; a frame that cannot be read
closes only its own connection; a batch the sink fails on is answered and the stream goes on; a sync
sink never runs a batch beside one of its other methods."""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

from actors.book_channel import HEADER, BookOutlet, IntentLink, encode, serves_books
from domain.book import Book


def book(coin: str, ts_ms: int) -> Book:
    return Book("upbit", coin, ts_ms, ((100.0, 1.0), (99.0, 2.0)), ((101.0, 1.5),))


@serves_books
class Sink:
    """Records every batch; `fail_on` coins make on_books raise; `busy()` holds the sink for a while."""

    def __init__(self, fail_on: str = ""):
        self.batches: list[tuple[list[Book], float]] = []
        self.fail_on = fail_on
        self.inside = False            # a public method other than on_books is running
        self.overlaps = 0
        self.submits: list[tuple[list, float, float]] = []

    def submit(self, intents: list, received_at: float, decided_at: float) -> None:
        self.submits.append((intents, received_at, decided_at))

    def on_books(self, books: list[Book], received_at: float) -> None:
        self.overlaps += self.inside
        if any(b.symbol == self.fail_on for b in books):
            raise ValueError("a batch this sink cannot take")
        self.batches.append((books, received_at))

    def busy(self, seconds: float) -> None:
        self.inside = True
        time.sleep(seconds)
        self.inside = False


async def send_all(address, batches) -> list[int]:
    acks: list[int] = []
    outlet = BookOutlet(address, lambda: acks.append(1))
    assert await outlet.connect()
    for books, received_at in batches:
        outlet.send(books, received_at)
        assert await outlet.drained(5.0)
    await outlet.close()
    return acks


def test_batches_arrive_whole_in_order_and_each_is_answered():
    sink = Sink()
    sent = [([book("BTC", i), book("ETH", i)], 1000.0 + i) for i in range(50)]
    acks = asyncio.run(send_all(sink.book_inbox(), sent))
    assert len(acks) == 50
    assert sink.batches == sent


def test_an_unreadable_frame_closes_its_connection_only(caplog):
    sink = Sink()
    address = sink.book_inbox()
    with caplog.at_level(logging.ERROR, logger="actors.book_channel"):
        with socket.create_connection(address) as bad:
            bad.sendall(HEADER.pack(5) + b"\x00junk")
            bad.settimeout(5.0)
            assert bad.recv(1) == b""              # closed, no answer
    assert "unreadable frame" in caplog.text
    acks = asyncio.run(send_all(address, [([book("BTC", 1)], 1.0)]))
    assert acks == [1] and len(sink.batches) == 1


def test_a_batch_the_sink_fails_on_is_answered_and_the_stream_goes_on(caplog):
    sink = Sink(fail_on="BAD")
    batches = [([book("BTC", 1)], 1.0), ([book("BAD", 2)], 2.0), ([book("ETH", 3)], 3.0)]
    with caplog.at_level(logging.ERROR, logger="actors.book_channel"):
        acks = asyncio.run(send_all(sink.book_inbox(), batches))
    assert len(acks) == 3
    assert [b[0][0].symbol for b in sink.batches] == ["BTC", "ETH"]
    assert "on_books of 1 items failed" in caplog.text


def test_a_sync_sink_never_runs_a_batch_beside_its_other_methods():
    sink = Sink()
    address = sink.book_inbox()
    holder = threading.Thread(target=lambda: [sink.busy(0.05) for _ in range(10)])
    holder.start()
    acks = asyncio.run(send_all(address, [([book("BTC", i)], float(i)) for i in range(200)]))
    holder.join()
    assert len(acks) == 200 and len(sink.batches) == 200
    assert sink.overlaps == 0


def test_frames_carry_their_length():
    frame = encode([book("BTC", 1)], 2.5)
    (size,) = HEADER.unpack(frame[:HEADER.size])
    assert size == len(frame) - HEADER.size


def test_intents_reach_the_sinks_submit_in_order_and_a_dead_line_says_so():
    sink = Sink()
    address = sink.book_inbox()
    link = IntentLink(address)
    sent = [([f"intent-{i}"], 10.0 + i, 11.0 + i) for i in range(100)]
    assert all(link.send(*s) for s in sent)
    deadline = time.monotonic() + 5
    while len(sink.submits) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.submits == sent
    sink._book_inbox.close()
    link.sock.shutdown(socket.SHUT_RDWR)           # the coordinator's process is gone
    assert link.send(["late"], 1.0, 2.0) is False and link.send(["later"], 1.0, 2.0) is False
