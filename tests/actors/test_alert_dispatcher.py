"""Real Ray: alerts emitted by another actor reach local Telegram/Slack endpoints; a hung one blocks nobody."""
from __future__ import annotations

import json
import threading
import time

import pytest
import ray

from actors.alert_dispatcher import AlertDispatcherActor
from actors.metrics_actor import MetricsActor
from actors.telemetry import Telemetry
from alerts.config import AlertsConfig
from alerts.events import Alert, Severity
from metrics.server import scrape
from tests.support.polling import poll
from tests.alerts.chat_server import ChatServer, refused_url

TOKEN = "424242:AAF-test-bot-token"


def _config(telegram_url: str, **extra) -> AlertsConfig:
    return AlertsConfig.from_mapping({
        "log_file": "alerts.jsonl",
        "telegram": {"token_env": "ARB_TEST_TG_TOKEN", "chat_id": "-100777", "api_url": telegram_url},
        "slack": {"webhook_env": "ARB_TEST_SLACK_HOOK"},
        "retry": {"max_attempts": 2, "backoff_s": 0.05, "max_backoff_s": 0.1}, **extra})


def _dispatcher(tmp_path, telegram_url, slack_hook, metrics=None, state=None, **extra):
    """The secrets by the variable names the config gives (in a run: the worker's own environment)."""
    env = {"ARB_TEST_TG_TOKEN": TOKEN, "ARB_TEST_SLACK_HOOK": slack_hook}
    return AlertDispatcherActor.remote(_config(telegram_url, **extra), str(tmp_path), state, metrics, 50, env)


@ray.remote(num_cpus=0)
class Coordinator:
    """Stands in for a trading actor: raises alerts and sends them without waiting (fire and forget)."""

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher
        self.telemetry = Telemetry(None, "coordinator-7", flush_ms=5_000, alerts=dispatcher)

    def raise_alerts(self, alerts):
        started = time.perf_counter()
        self.dispatcher.emit.remote(alerts)
        return time.perf_counter() - started

    def alert(self, severity, kind, message, symbol=None, **fields):
        self.telemetry.alert(severity, kind, message, symbol, **fields)

    def close(self):
        return self.telemetry.close()


def _alert(severity, kind, symbol, message, ts=1_756_000_000_000, **fields):
    return Alert(Severity.parse(severity), kind, "coordinator", symbol, message, ts, fields)


@pytest.fixture
def chat():
    servers = []

    def make(**kwargs):
        servers.append(ChatServer(**kwargs).start())
        return servers[-1]
    yield make
    for server in servers:
        server.stop()


def test_alerts_from_another_actor_reach_telegram_and_slack_with_throttling(ray_cluster, chat, tmp_path):
    tg, sl = chat(), chat()
    metrics = MetricsActor.remote(port=0)
    dispatcher = _dispatcher(tmp_path, tg.url, f"{sl.url}/services/T0/B0/hooksecret", metrics,
                             throttle={"window_s": 60, "max_per_window": 1})
    coord = Coordinator.remote(dispatcher)
    ray.get(coord.raise_alerts.remote([
        _alert("P1", "leg_risk", "ETH", "binance leg unfilled", venue="binance", qty=0.5),
        *[_alert("P2", "feed_gap", "BTC", f"upbit gap #{i}", ts=1_756_000_000_000 + i) for i in range(4)],
        _alert("P3", "fill", "XRP", "filled 100 XRP").to_dict(),      # the dict form is taken too
    ]))
    tg.wait_for(2)
    assert [path for path, _ in tg.requests] == [f"/bot{TOKEN}/sendMessage"] * 2
    assert tg.bodies() == [
        {"chat_id": "-100777", "text": "[P1] leg_risk ETH (coordinator)\nbinance leg unfilled\nvenue: binance\nqty: 0.5"},
        {"chat_id": "-100777", "text": "[P2] feed_gap BTC (coordinator)\nupbit gap #0"}]
    assert sorted(b["text"] for b in sl.wait_for(2)) == sorted(b["text"] for b in tg.bodies())
    assert [path for path, _ in sl.requests] == ["/services/T0/B0/hooksecret"] * 2
    # three more gaps were held back by the throttle; flush turns them into one summary per chat
    assert ray.get(dispatcher.flush.remote(5.0))
    summary = tg.wait_for(3)[2]["text"]
    assert summary.startswith("[P2] alert_summary BTC (coordinator)\n3 more feed_gap alerts for BTC in the last")
    assert sl.wait_for(3)[2]["text"] == summary
    logged = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [(a["severity"], a["kind"]) for a in logged].count(("P2", "feed_gap")) == 4   # the log gets all
    assert ("P3", "fill") in [(a["severity"], a["kind"]) for a in logged] and len(logged) == 7
    stats = ray.get(dispatcher.stats.remote())
    assert stats["destinations"]["telegram"] == {"sent": 3, "failed": 0, "throttled": 3, "dropped": 0}
    assert stats["destinations"]["slack"] == {"sent": 3, "failed": 0, "throttled": 3, "dropped": 0}
    assert stats["destinations"]["log"]["sent"] == 7 and stats["emitted"] == 6
    url = ray.get(metrics.url.remote())
    got = poll(lambda: (s := scrape(url)).get(("arb_alerts_sent_total", (("channel", "telegram"), ("severity", "P2")))) == 2 and s)
    assert got[("arb_alerts_sent_total", (("channel", "slack"), ("severity", "P1")))] == 1
    assert got[("arb_alerts_sent_total", (("channel", "log"), ("severity", "P3")))] == 1
    assert ray.get(dispatcher.close.remote()) == {"version": 1, "pending": []}
    ray.get(metrics.close.remote())


def test_a_hung_and_a_dead_notifier_never_block_emit(ray_cluster, chat, tmp_path):
    hung = chat(hold=threading.Event())        # accepts the request, never answers (until stopped)
    dispatcher = _dispatcher(tmp_path, hung.url, f"{refused_url()}/hook", timeout_s=3, queue_size=5)
    ray.get(dispatcher.stats.remote())
    coord = Coordinator.remote(dispatcher)
    ray.get(coord.raise_alerts.remote([_alert("P3", "warmup", None, "actor up")]))
    durations = []
    for i in range(20):    # distinct symbols: none is throttled, every one is owed to both chats
        started = time.perf_counter()
        assert ray.get(dispatcher.emit.remote([_alert("P1", "leg_risk", f"C{i}", "unfilled")])) == 1
        durations.append(time.perf_counter() - started)
    caller_s = ray.get(coord.raise_alerts.remote([_alert("P0", "kill_switch", None, "flatten all")]))
    hung.wait_for(1)
    # one Telegram delivery alone waits 3 s on the hung peer; 20 emits took less than that in all
    assert sum(durations) < 3.0 and max(durations) < 1.0, durations
    assert caller_s < 0.2, caller_s
    poll(lambda: ray.get(dispatcher.stats.remote())["destinations"]["log"]["sent"] == 22)   # log not held up
    stats = poll(lambda: (s := ray.get(dispatcher.stats.remote())["destinations"])["slack"]["failed"] >= 5 and s)
    assert stats["slack"]["sent"] == 0 and stats["telegram"]["sent"] == 0
    # a queue of 5 behind the hung peer: the P1s that did not fit were dropped and counted, the P0 kept
    assert stats["telegram"]["dropped"] >= 14
    state = ray.get(dispatcher.state.remote())
    to_telegram = [p["alert"]["kind"] for p in state["pending"] if "telegram" in p["channels"]]
    assert len(to_telegram) <= 6 and to_telegram.count("kill_switch") == 1   # 1 in flight + a queue of 5
    json.dumps(state)
    hung.hold.set()
    ray.kill(dispatcher)


def test_undelivered_alerts_survive_a_restart_from_state(ray_cluster, chat, tmp_path):
    hung = chat(hold=threading.Event())
    first = _dispatcher(tmp_path / "a", hung.url, f"{refused_url()}/hook", timeout_s=2,
                        routing={"P0": ["telegram"], "P1": ["telegram"]})
    ray.get(first.emit.remote([_alert("P0", "kill_switch", None, "flatten all"),
                               _alert("P1", "leg_risk", "SOL", "orphan leg")]))
    hung.wait_for(1)
    state = json.loads(json.dumps(ray.get(first.state.remote())))     # through JSON, as Redis holds it
    assert [(p["alert"]["kind"], p["channels"]) for p in state["pending"]] == [
        ("kill_switch", ["telegram"]), ("leg_risk", ["telegram"])]
    ray.kill(first)
    hung.hold.set()
    tg = chat()
    second = _dispatcher(tmp_path / "b", tg.url, f"{refused_url()}/hook", state=state,
                         routing={"P0": ["telegram"], "P1": ["telegram"]})
    texts = [b["text"].split("\n")[0] for b in tg.wait_for(2)]
    assert texts == ["[P0] kill_switch (coordinator)", "[P1] leg_risk SOL (coordinator)"]
    assert not (tmp_path / "b" / "alerts.jsonl").exists()    # the log line was written before the restart
    assert ray.get(second.restore.remote({"version": 1, "pending": [state["pending"][1]]})) == 1
    assert len(tg.wait_for(3)) == 3
    assert ray.get(second.stats.remote())["restored"] == 3
    with pytest.raises(ValueError, match=r"alerts state: version 9 unknown"):
        ray.get(second.restore.remote({"version": 9, "pending": []}))
    with pytest.raises(ValueError, match=r"alerts state.pending\[0\].alert: missing key\(s\) kind"):
        ray.get(second.restore.remote({"version": 1, "pending": [
            {"alert": {"severity": "P1", "source": "x", "message": "m", "ts_ms": 1}, "channels": ["log"]}]}))
    ray.get(second.close.remote())


def test_bad_events_are_named_and_the_good_ones_still_go_out(ray_cluster, chat, tmp_path):
    tg = chat()
    dispatcher = _dispatcher(tmp_path, tg.url, f"{refused_url()}/hook", routing={"P1": ["telegram"]})
    good = _alert("P1", "guard_breach", "BTC", "daily loss limit")
    with pytest.raises(ValueError, match=r"emit\[1\]: missing key\(s\) kind, message .*\(source strategy-7\)"):
        ray.get(dispatcher.emit.remote([good, {"severity": "P1", "source": "strategy-7", "ts_ms": 5}]))
    with pytest.raises(ValueError, match=r"emit\[0\].severity: 'P7' is not a severity"):
        ray.get(dispatcher.emit.remote([{**good.to_dict(), "severity": "P7"}]))
    with pytest.raises(TypeError, match="emit takes a list of alerts, got Alert"):
        ray.get(dispatcher.emit.remote(good))
    assert tg.wait_for(1)[0]["text"].startswith("[P1] guard_breach BTC")
    stats = ray.get(dispatcher.stats.remote())
    assert stats["emitted"] == 1 and stats["refused"] == 2
    ray.get(dispatcher.close.remote())


def test_an_actors_telemetry_sends_p0_at_once_and_batches_the_rest(ray_cluster, chat, tmp_path):
    tg = chat()
    dispatcher = _dispatcher(tmp_path, tg.url, f"{refused_url()}/hook",
                             routing={"P0": ["telegram"], "P1": ["telegram"]})
    coord = Coordinator.remote(dispatcher)
    ray.get(coord.alert.remote("P1", "leg_risk", "orphan binance leg", "SOL", qty=1.25))
    ray.get(coord.alert.remote("P0", "kill_switch", "daily loss limit breached", None, loss_krw=3_100_000))
    # the P0 flushed the buffer (the thread ticks every 5 s): both arrive well before that, in order
    bodies = tg.wait_for(2, timeout_s=4.0)
    assert [b["text"] for b in bodies] == ["[P1] leg_risk SOL (coordinator-7)\norphan binance leg\nqty: 1.25",
                                           "[P0] kill_switch (coordinator-7)\ndaily loss limit breached\n"
                                           "loss_krw: 3100000"]
    with pytest.raises(ValueError, match=r"'P9' is not a severity"):
        ray.get(coord.alert.remote("P9", "x", "y"))
    ray.get(coord.alert.remote("P1", "feed_gap", "upbit gap", "BTC"))
    assert ray.get(coord.close.remote())["alerts"] == 3      # close sent the last one
    assert tg.wait_for(3)[2]["text"].startswith("[P1] feed_gap BTC (coordinator-7)")
    ray.get(dispatcher.close.remote())


@ray.remote(num_cpus=0)
class Sender:
    """A trading actor's Telemetry, retargeted after the dispatcher's restart as graph.rewire does."""

    def __init__(self, dispatcher):
        self.telemetry = Telemetry(None, "coordinator-9", flush_ms=20, alerts=dispatcher)

    def alert(self, severity, kind, message, symbol=None, **fields):
        self.telemetry.alert(severity, kind, message, symbol, **fields)

    def retarget(self, dispatcher):
        self.telemetry.retarget((None, dispatcher))

    def stats(self):
        self.telemetry.flush()
        return self.telemetry.stats()


def _persisted(tmp_path, telegram_url, persist):
    env = {"ARB_TEST_TG_TOKEN": TOKEN, "ARB_TEST_SLACK_HOOK": f"{refused_url()}/hook"}
    config = _config(telegram_url, timeout_s=2, routing={"P0": ["telegram"], "P1": ["telegram"]})
    return AlertDispatcherActor.remote(config, str(tmp_path), None, None, 50, env, persist=persist)


def test_a_killed_dispatcher_comes_back_from_redis_and_no_alert_is_lost_or_doubled(ray_cluster, chat, tmp_path,
                                                                                   persist):
    hung = chat(hold=threading.Event())
    first = _persisted(tmp_path / "a", hung.url, persist)
    sender = Sender.remote(first)
    ray.get(sender.alert.remote("P0", "kill_switch", "flatten all", None, alert_id="kill:1"))
    ray.get(sender.alert.remote("P1", "leg_risk", "orphan leg", "SOL", alert_id="leg:7"))
    hung.wait_for(1)                       # the P0 is in flight to a chat that never answers
    poll(lambda: ray.get(first.stats.remote())["emitted"] == 2)       # both taken (and snapshotted)
    ray.kill(first, no_restart=True)
    hung.hold.set()
    # While no dispatcher is up: sent to the dead one, refused, kept for its successor.
    ray.get(sender.alert.remote("P1", "feed_gap", "upbit gap", "BTC", alert_id="gap:3"))
    poll(lambda: ray.get(sender.stats.remote())["failed"] >= 1)

    tg = chat()
    second = _persisted(tmp_path / "b", tg.url, persist.restarted(1))     # as the supervisor's factory does
    ray.get(sender.retarget.remote(second))
    # A re-send of an alert the first dispatcher took (a restarted coordinator re-reports its history).
    ray.get(sender.alert.remote("P1", "leg_risk", "orphan leg", "SOL", alert_id="leg:7"))
    texts = [b["text"].split("\n")[0] for b in tg.wait_for(3)]
    # (the order between the two restored ones depends on whether the hung send had timed out and queued again)
    assert sorted(texts) == ["[P0] kill_switch (coordinator-9)", "[P1] feed_gap BTC (coordinator-9)",
                             "[P1] leg_risk SOL (coordinator-9)"]
    time.sleep(0.3)
    assert len(tg.bodies()) == 3, "an alert was delivered twice"
    stats = ray.get(second.stats.remote())
    assert stats["restored"] == 2 and stats["repeats"] == 1
    assert ray.get(second.snapshot_stats.remote())["restored_version"] is not None
    ray.get(second.close.remote())


def test_a_restarted_dispatcher_with_no_snapshot_refuses_to_start_empty(ray_cluster, tmp_path, persist):
    lonely = _persisted(tmp_path, f"{refused_url()}/tg", persist.restarted(1))
    with pytest.raises(ray.exceptions.RayActorError, match=r"nothing stored, but this is a restart"):
        ray.get(lonely.stats.remote())
