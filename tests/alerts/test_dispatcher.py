"""AlertDispatcherCore end to end: real local HTTP peers, a dead one, a slow one, a full queue."""
from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from alerts.channel_worker import RetryPolicy
from alerts.destinations.log_file import LogFileDestination
from alerts.destinations.slack import SlackDestination
from alerts.destinations.telegram import TelegramDestination
from alerts.dispatcher import AlertDispatcherCore, ChannelStats, Pending
from alerts.events import Alert, Severity
from alerts.routing import AlertRouter, RoutingTable, ThrottlePolicy
from metrics.registry import build_metrics
from tests.alerts.chat_server import ChatServer, refused_url

TOKEN = "987654:BBF-very-secret-token"
FAST_RETRY = RetryPolicy(max_attempts=3, backoff_s=0.01, max_backoff_s=0.05)


def _alert(sev=Severity.P1, kind="leg_risk", symbol="ETH", message="binance leg unfilled", ts=1):
    return Alert(sev, kind, "coordinator", symbol, message, ts, {"venue": "binance"})


class GatedDestination:
    """A test double that blocks in send until released, to fill queues deterministically."""

    secrets = ()

    def __init__(self, name="slack"):
        self.name = name
        self.gate = threading.Event()
        self.started = threading.Event()
        self.sent = []

    def send(self, alert):
        self.started.set()
        self.gate.wait(5)
        self.sent.append(alert)

    def close(self):
        self.gate.set()


@pytest.fixture
def servers():
    started = []

    def make(**kwargs):
        srv = ChatServer(**kwargs).start()
        started.append(srv)
        return srv
    yield make
    for srv in started:
        srv.stop()


def _wait_for(predicate, timeout_s=5.0):
    """Poll until predicate() is true; fail the test on timeout."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def _log_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_fan_out_sends_each_channel_its_payload_and_counts(servers, tmp_path):
    tg, sl = servers(), servers()
    metrics = build_metrics()
    core = AlertDispatcherCore(
        [LogFileDestination(tmp_path / "a.jsonl", [TOKEN]),
         TelegramDestination(TOKEN, chat_id=42, api_url=tg.url),
         SlackDestination(f"{sl.url}/services/hook")], retry=FAST_RETRY, metrics=metrics)
    core.submit(_alert())
    core.submit(_alert(sev=Severity.P3, kind="fill", message="filled 0.1 ETH"))
    assert core.flush(5.0)
    assert [p for p, _ in tg.requests] == [f"/bot{TOKEN}/sendMessage"]
    assert tg.bodies()[0]["chat_id"] == 42
    assert tg.bodies()[0]["text"].startswith("[P1] leg_risk ETH (coordinator)\nbinance leg unfilled")
    assert sl.bodies() == [{"text": tg.bodies()[0]["text"]}]
    assert [line["kind"] for line in _log_lines(tmp_path / "a.jsonl")] == ["leg_risk", "fill"]
    assert core.stats() == {"log": ChannelStats(sent=2), "telegram": ChannelStats(sent=1),
                            "slack": ChannelStats(sent=1)}
    sample = metrics.registry.get_sample_value
    assert sample("arb_alerts_sent_total", {"channel": "log", "severity": "P3"}) == 1
    assert sample("arb_alerts_sent_total", {"channel": "telegram", "severity": "P1"}) == 1
    assert core.close() == []


def test_dead_and_slow_destinations_never_block_submit_and_the_others_deliver(servers, tmp_path):
    slow = servers(hold=threading.Event())
    good = servers()
    core = AlertDispatcherCore(
        [LogFileDestination(tmp_path / "a.jsonl"),
         TelegramDestination(TOKEN, chat_id=1, api_url=refused_url(), timeout_s=0.2),
         SlackDestination(f"{slow.url}/hook", timeout_s=0.2)], retry=FAST_RETRY)
    healthy = AlertDispatcherCore([LogFileDestination(tmp_path / "b.jsonl"),
                                   SlackDestination(f"{good.url}/hook")], retry=FAST_RETRY)
    start = time.perf_counter()
    for i in range(20):
        alert = _alert(symbol=f"C{i}", ts=i)   # distinct symbols: nothing throttled
        core.submit(alert)
        healthy.submit(alert)
    submit_s = time.perf_counter() - start
    assert submit_s < 0.1, f"20 submits took {submit_s:.3f} s"
    assert healthy.flush(5.0)
    assert len(good.requests) == 20
    # The log channel of the troubled dispatcher is not held up by its slow neighbour.
    _wait_for(lambda: core.stats()["log"].sent == 20)
    _wait_for(lambda: core.stats()["telegram"].failed == 20)   # 3 quick attempts each
    assert core.stats()["telegram"].sent == 0
    assert core.stats()["slack"].sent == 0
    slow.hold.set()   # let the slow peer finish so close() is quick
    core.close(5.0)
    healthy.close()
    assert core.stats()["slack"].failed >= 1


def test_p0_and_p1_retry_on_5xx_and_429_but_p2_does_not(servers, tmp_path):
    sl = servers()
    sl.statuses.extend([(503, "{}", {}), (429, "{}", {"Retry-After": "0"}), (200, "{}", {}),
                        (502, "{}", {})])
    core = AlertDispatcherCore([LogFileDestination(tmp_path / "a.jsonl"),
                                SlackDestination(f"{sl.url}/hook")], retry=FAST_RETRY)
    core.submit(_alert(sev=Severity.P1))
    assert core.flush(5.0)
    assert len(sl.requests) == 3 and core.stats()["slack"] == ChannelStats(sent=1)
    core.submit(_alert(sev=Severity.P2, kind="feed_gap"))
    assert core.flush(5.0)
    assert len(sl.requests) == 4 and core.stats()["slack"] == ChannelStats(sent=1, failed=1)
    core.close()


def test_tokens_never_reach_the_log_file_or_the_python_log(servers, tmp_path, caplog):
    tg = servers()
    tg.statuses.append((500, json.dumps({"description": f"bad bot {TOKEN}"}), {}))
    hook = f"{refused_url()}/services/T1/B1/HOOKSECRET"
    log_path = tmp_path / "alerts.jsonl"
    slack = SlackDestination(hook, timeout_s=0.2)
    telegram = TelegramDestination(TOKEN, chat_id=1, api_url=tg.url)
    core = AlertDispatcherCore([LogFileDestination(log_path, [TOKEN, hook]), telegram, slack],
                               retry=RetryPolicy(max_attempts=1))
    with caplog.at_level(logging.WARNING):
        core.submit(_alert(message=f"config dump: token={TOKEN} hook={hook}"))
        assert core.flush(5.0)
    core.close()
    written = log_path.read_text()
    assert "token=***" in written and "hook=***" in written
    assert core.stats()["telegram"].failed == 1 and core.stats()["slack"].failed == 1
    for text in (written, caplog.text, tg.bodies()[0]["text"]):
        assert TOKEN not in text and "HOOKSECRET" not in text
    assert "HTTP 500" in caplog.text


def test_full_queue_drops_the_least_urgent_first_and_counts_it(tmp_path):
    gated = GatedDestination()
    metrics = build_metrics()
    core = AlertDispatcherCore([LogFileDestination(tmp_path / "a.jsonl"), gated],
                               router=AlertRouter(RoutingTable({s: {"slack"} for s in Severity})),
                               queue_size=3, metrics=metrics)
    core.submit(_alert(sev=Severity.P1, symbol="A"))       # taken in flight, blocks
    assert gated.started.wait(5)
    for sev, sym in [(Severity.P3, "B"), (Severity.P2, "C"), (Severity.P3, "D")]:
        core.submit(_alert(sev=sev, symbol=sym))          # queue now full: B, C, D
    core.submit(_alert(sev=Severity.P0, symbol="E"))       # evicts B (oldest P3)
    core.submit(_alert(sev=Severity.P3, symbol="F"))       # nothing less urgent: F dropped
    core.submit(_alert(sev=Severity.P1, symbol="G"))       # evicts D
    owed = {p.alert.symbol for p in core.pending() if "slack" in p.channels}
    assert owed == {"A", "C", "E", "G"}
    assert core.stats()["slack"].dropped == 3
    assert metrics.registry.get_sample_value(
        "arb_alerts_undelivered_total",
        {"channel": "slack", "severity": "P3", "reason": "dropped"}) == 3   # B, F, D
    gated.gate.set()
    assert core.flush(5.0)
    assert [a.symbol for a in gated.sent] == ["A", "C", "E", "G"]
    core.close()


def test_undelivered_alerts_survive_a_snapshot_and_restart(tmp_path, servers):
    gated = GatedDestination()
    core = AlertDispatcherCore([LogFileDestination(tmp_path / "a.jsonl"), gated])
    core.submit(_alert(symbol="X"))
    assert gated.started.wait(5)
    core.submit(_alert(symbol="Y", sev=Severity.P0))
    left = core.close(timeout_s=0.05)      # gate shut: X in flight, Y queued
    snapshot = json.dumps([p.to_dict() for p in left])
    restored = [Pending.from_dict(raw, f"snapshot[{i}]")
                for i, raw in enumerate(json.loads(snapshot))]
    assert {p.alert.symbol for p in restored} >= {"Y"}
    assert all(p.channels == ("slack",) for p in restored)
    sl = servers()
    again = AlertDispatcherCore([LogFileDestination(tmp_path / "b.jsonl"),
                                 SlackDestination(f"{sl.url}/hook")], pending=restored)
    assert again.flush(5.0)
    assert [b["text"].split("\n")[0] for b in sl.bodies()][-1] == "[P0] leg_risk Y (coordinator)"
    assert len(sl.requests) == len(restored)
    assert not (tmp_path / "b.jsonl").exists()    # already logged before the restart
    again.close()
    with pytest.raises(ValueError, match=r"snapshot\[0\]\.alert: missing key\(s\) kind"):
        Pending.from_dict({"alert": {"severity": "P1", "source": "x", "message": "m",
                                     "ts_ms": 1}, "channels": ["log"]}, "snapshot[0]")


def test_throttled_alerts_are_counted_and_summarised_on_flush(servers, tmp_path):
    sl = servers()
    now = [1_000]
    core = AlertDispatcherCore(
        [LogFileDestination(tmp_path / "a.jsonl"), SlackDestination(f"{sl.url}/hook")],
        router=AlertRouter(RoutingTable.default(["slack"]), ThrottlePolicy(60_000)),
        clock=lambda: now[0])
    for i in range(13):
        now[0] += 1_000
        core.submit(_alert(sev=Severity.P2, kind="feed_gap", symbol="BTC", ts=now[0]))
    assert core.flush(5.0)
    texts = [b["text"] for b in sl.bodies()]
    assert len(texts) == 2
    assert "12 more feed_gap alerts for BTC in the last 12 s" in texts[1]
    assert core.stats()["slack"] == ChannelStats(sent=2, throttled=12)
    assert len(_log_lines(tmp_path / "a.jsonl")) == 14
    core.close()


def test_bad_setups_are_refused(tmp_path):
    log = LogFileDestination(tmp_path / "a.jsonl")
    with pytest.raises(ValueError, match="log destination is required"):
        AlertDispatcherCore([GatedDestination()])
    with pytest.raises(ValueError, match=r"duplicate destination names"):
        AlertDispatcherCore([log, GatedDestination(), GatedDestination()])
    with pytest.raises(ValueError, match=r"channels with no destination: \['telegram'\]"):
        AlertDispatcherCore([log], router=AlertRouter(RoutingTable.default(["telegram"])))
    core = AlertDispatcherCore([log])
    with pytest.raises(TypeError, match="expected Alert, got dict"):
        core.submit({"kind": "x"})
    core.close()
    with pytest.raises(RuntimeError, match="closed"):
        core.submit(_alert())
