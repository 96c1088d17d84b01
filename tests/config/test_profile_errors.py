"""Each kind of bad profile fails at load with a message naming file, key and expectation."""
from __future__ import annotations

import pytest

from config.loader import ProfileError, load_profile
from tests.config.support import assert_names, error_of, shipped, variant, write


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nmode: backtest\nuniverse: {symbols: [BTC]\nfx: {source: book}\n")
    err = error_of(path)
    message = assert_names(err, path, "(document)", "valid YAML", "syntax error")
    assert message.endswith("(line 4)"), message


def test_duplicate_key_is_refused(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: dup\nmode: backtest\nmode: paper\n")
    assert_names(error_of(path), path, "mode", "each key once", "first on line 2")


def test_document_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- name\n- mode\n")
    assert_names(error_of(path), path, "(document)", "a mapping of profile keys", "got ['name', 'mode']")


def test_unknown_profile_name_suggests_a_shipped_one():
    err = error_of("backtest-bt")
    assert str(err).startswith("config/profiles/backtest-bt.yaml: (file): expected an existing profile")
    assert "did you mean 'backtest-btc'?" in str(err)


def test_unknown_key_suggests_the_close_match(tmp_path):
    path = variant(tmp_path, "backtest-btc",
                   lambda d: d["strategy"].update(entry_edge_bp=d["strategy"].pop("entry_edge_bps")))
    assert_names(error_of(path), path, "strategy.entry_edge_bp",
                 "a known key (did you mean 'entry_edge_bps'?)", "got unknown key 'entry_edge_bp'")


def test_unknown_top_level_key(tmp_path):
    path = variant(tmp_path, "backtest-btc", lambda d: d.update(risks=d["risk"]))
    assert_names(error_of(path), path, "risks", "did you mean 'risk'?")


@pytest.mark.parametrize("key, value, expected", [
    ("z_window", "sixty", "an integer"),
    ("z_window", 48.5, "an integer"),
    ("order_notional_krw", "5000000", "a number"),
    ("depth_fraction", True, "a number"),
    ("mode", "momentum", "one of 'absolute' or 'zscore'"),
    ("directions", "upbit_rich", "a list"),
])
def test_wrong_type(tmp_path, key, value, expected):
    path = variant(tmp_path, "backtest-btc", lambda d: d["strategy"].update({key: value}))
    assert_names(error_of(path), path, f"strategy.{key}", expected, f"got {value!r}")


def test_missing_required_section(tmp_path):
    path = variant(tmp_path, "backtest-btc", lambda d: d.pop("fx"))
    assert_names(error_of(path), path, "fx", "a value (required key)", "got nothing")


@pytest.mark.parametrize("section, key, value, expected", [
    ("venues.upbit", "taker_fee", 0.05, "a number >= 0 and < 0.01"),
    ("strategy", "depth_fraction", 1.5, "a number > 0 and <= 1"),
    ("strategy", "depth_levels", 0, ">= 1 and <= 50"),
    ("risk", "max_inventory_imbalance", 0.3, "a number >= 0.5 and <= 1"),
    ("metrics", "port", 70000, "<= 65535"),
    ("fx", "fixed_usdt_krw", 13.8, ">= 100"),
])
def test_out_of_bounds(tmp_path, section, key, value, expected):
    def change(doc):
        target = doc
        for part in section.split("."):
            target = target[part]
        target[key] = value
    path = variant(tmp_path, "backtest-btc", change)
    assert_names(error_of(path), path, f"{section}.{key}", expected, f"got {value!r}")


def test_negative_size_matches_the_documented_message(tmp_path):
    path = variant(tmp_path, "backtest-btc", lambda d: d["strategy"].update(order_notional_krw=-5))
    err = error_of(path)
    message = assert_names(err, path, "strategy.order_notional_krw", "expected a number > 0", "got -5")
    assert len(err.problems) == 1, err


def test_line_is_reported(tmp_path):
    path = tmp_path / "backtest-btc.yaml"
    text = shipped_text().replace("z_entry: 2.0", "z_entry: -2.0")
    path.write_text(text)
    line = text.splitlines().index("  z_entry: -2.0") + 1
    message = assert_names(error_of(path), path, "strategy.z_entry", "a number > 0")
    assert message.endswith(f"(line {line})"), message


def shipped_text() -> str:
    from config.loader import profile_path
    return profile_path("backtest-btc").read_text()


@pytest.mark.parametrize("section, key, value, expected", [
    ("strategy", "exit_edge_bps", 10.0, "a number < strategy.entry_edge_bps (10)"),
    ("strategy", "exit_edge_bps", 25.0, "a number < strategy.entry_edge_bps (10)"),
    ("strategy", "take_profit_bps", 0, "a number > 0"),
    ("strategy", "stop_loss_bps", -50, "a number > 0"),
    ("strategy", "z_min_samples", 49, "a count <= strategy.z_window (48)"),
    ("risk", "max_position_krw", 60_000_000, "a size <= risk.max_total_exposure_krw (5e+07)"),
    ("strategy", "order_notional_krw", 30_000_000, "a size <= risk.max_position_krw (2e+07)"),
])
def test_thresholds_in_the_wrong_order(tmp_path, section, key, value, expected):
    path = variant(tmp_path, "backtest-btc", lambda d: d[section].update({key: value}))
    assert_names(error_of(path), path, f"{section}.{key}", expected, f"got {value!r}")


@pytest.mark.parametrize("symbol", ["btc", "BT-C", "", "KRW-BTC"])
def test_symbol_that_is_not_a_ticker(tmp_path, symbol):
    path = variant(tmp_path, "paper-top50", lambda d: d.update(universe={"symbols": [symbol]}))
    err = error_of(path)
    assert_names(err, path, "universe.symbols[0]", "an upper-case coin ticker", repr(symbol))
    assert len(err.problems) == 1, err  # not also "too short" for the list that lost its item


def test_backtest_symbol_the_data_does_not_cover(tmp_path):
    path = variant(tmp_path, "backtest-btc", lambda d: d.update(universe={"symbols": ["BTC", "ETH"]}))
    assert_names(error_of(path), path, "universe.symbols[1]", "a coin the data files cover ['BTC']",
                 "got 'ETH'")


def test_universe_needs_exactly_one_of_symbols_or_top_n(tmp_path):
    path = variant(tmp_path, "paper-top50", lambda d: d["universe"].update(symbols=["BTC"]))
    assert_names(error_of(path), path, "universe", "exactly one of symbols or top_n", "got both")


def test_missing_data_file(tmp_path, data):
    path = variant(tmp_path, "backtest-btc",
                   lambda d: d["data"].update(binance_candles="btc/binance_btcusdt_1h.csv"))
    assert_names(error_of(path), path, "data.binance_candles", "an existing data file",
                 f"no file at {data / 'btc' / 'binance_btcusdt_1h.csv'}")


def test_backtest_without_data(tmp_path):
    path = variant(tmp_path, "backtest-btc", lambda d: d.update(data=None))
    assert_names(error_of(path), path, "data", "a data section for mode backtest")


def test_fx_fixed_without_a_rate(tmp_path):
    path = variant(tmp_path, "backtest-btc", lambda d: d.update(fx={"source": "fixed"}))
    assert_names(error_of(path), path, "fx.fixed_usdt_krw", "a KRW per USDT rate when fx.source is 'fixed'",
                 "got nothing")


def test_fx_book_on_candles(tmp_path):
    path = variant(tmp_path, "backtest-btc", lambda d: d.update(fx={"source": "book"}))
    assert_names(error_of(path), path, "fx.source", "'fixed' for a candle backtest")


@pytest.mark.parametrize("venue, kind, url", [
    ("binance", "rest", "https://api.binance.com"),
    ("upbit", "ws", "ws://localhost:18081/websocket/v1"),
    ("upbit", "rest", "http://10.0.0.5:18081"),
    ("binance", "ws", "wss://127.0.0.1:18082/ws"),
])
def test_local_profile_endpoints_must_be_loopback(tmp_path, venue, kind, url):
    path = variant(tmp_path, "paper-top50-local", lambda d: d["endpoints"][venue].update({kind: url}))
    assert_names(error_of(path), path, f"endpoints.{venue}.{kind}", "://127.0.0.1:<port> for a *-local",
                 repr(url))


def test_local_profile_needs_every_traded_venue(tmp_path):
    path = variant(tmp_path, "paper-top50-local", lambda d: d["endpoints"].pop("binance"))
    assert_names(error_of(path), path, "endpoints.binance", "the local simulator's URLs", "got nothing")


def test_local_profile_alerts_stay_on_loopback(tmp_path):
    path = variant(tmp_path, "paper-top50-local", lambda d: d["alerts"].update(
        telegram={"bot_token_env": "TG_TOKEN", "chat_id": "42"}))
    assert_names(error_of(path), path, "alerts.telegram.api_url", "http://127.0.0.1:<port>",
                 "'https://api.telegram.org'")


def test_negative_inventory_balance(tmp_path):
    path = variant(tmp_path, "backtest-btc", lambda d: d["inventory"]["binance"].update(BTC=-0.1))
    assert_names(error_of(path), path, "inventory.binance.BTC", "a number >= 0", "got -0.1")


def test_inventory_on_an_unknown_venue(tmp_path):
    path = variant(tmp_path, "backtest-btc", lambda d: d["inventory"].update(bithumb={"KRW": 1}))
    assert_names(error_of(path), path, "inventory.bithumb", "'upbit', 'binance' or 'binance_usdm'")


def test_live_section_missing_for_mode_live(tmp_path):
    path = variant(tmp_path, "live-example", lambda d: d.pop("live"))
    assert_names(error_of(path), path, "live", "a live section (arming and caps) for mode live",
                 "got nothing")


def test_live_section_outside_live_mode(tmp_path):
    path = variant(tmp_path, "paper-top50", lambda d: d.update(live=shipped("live-example")["live"]))
    assert_names(error_of(path), path, "live", "null for mode paper")


@pytest.mark.parametrize("key, value, expected", [
    ("max_order_notional_krw", 5_000_000, "a cap within live.notional_bounds [10000, 1e+06]"),
    ("notional_bounds", [1_000_000, 10_000], "[min, max] with 0 < min <= max"),
    ("ack_env", "arb-live-ack", "an environment variable name"),
    ("kill_policy", "close_all", "one of 'flatten' or 'freeze', got 'close_all'"),
    ("band_bps", 900, "a number > 0 and <= 500, got 900"),
])
def test_live_caps_and_names(tmp_path, key, value, expected):
    path = variant(tmp_path, "live-example", lambda d: d["live"].update({key: value}))
    assert_names(error_of(path), path, f"live.{key}", expected)


def test_live_kill_on_names_the_bad_item(tmp_path):
    path = variant(tmp_path, "live-example", lambda d: d["live"].update(kill_on=["stuck_leg", "margin_call"]))
    assert_names(error_of(path), path, "live.kill_on[1]", "one of 'stuck_leg' or 'daily_loss', got 'margin_call'")


def test_strategy_size_above_the_live_cap(tmp_path):
    path = variant(tmp_path, "live-example", lambda d: d["strategy"].update(order_notional_krw=150_000))
    assert_names(error_of(path), path, "strategy.order_notional_krw", "<= live.max_order_notional_krw")


def test_name_must_match_the_file(tmp_path):
    path = write(tmp_path, shipped("backtest-btc"), name="other")
    assert_names(error_of(path), path, "name", "the file's name 'other'", "got 'backtest-btc'")


def test_paper_profile_with_backtest_data(tmp_path):
    path = variant(tmp_path, "paper-top50", lambda d: d.update(data=shipped("backtest-btc")["data"]))
    assert_names(error_of(path), path, "data", "null for mode paper")


def test_storage_url_must_be_a_known_database(tmp_path):
    path = variant(tmp_path, "backtest-btc", lambda d: d["storage"].update(url="mysql://x@h/db"))
    assert_names(error_of(path), path, "storage.url", "sqlite or postgresql", "'mysql://x@h/db'")


def test_all_problems_are_reported_together(tmp_path):
    def change(doc):
        doc["strategy"]["z_entry"] = -1
        doc["risk"]["max_open_positions"] = 0
        doc["outputs"]["report"] = "yes"
    err = error_of(variant(tmp_path, "backtest-btc", change))
    assert {p.key for p in err.problems} == {"strategy.z_entry", "risk.max_open_positions", "outputs.report"}
    assert isinstance(err, ValueError) and str(err).count("\n") == 2
