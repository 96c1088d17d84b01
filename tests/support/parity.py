"""The chaos tests' verdict: a run with kills ends with exactly what the engine, undisturbed, traded."""
from __future__ import annotations


def round_trips(rts) -> list[tuple]:
    return [(rt.position_id, rt.symbol, rt.direction.value, rt.entry_ts_ms, rt.exit_ts_ms, rt.exit_reason,
             round(rt.pnl_krw, 4)) for rt in rts]


def assert_trades_like_the_engine(desk, engine, min_round_trips: int) -> None:
    """Same round trips, orders (none twice), fills, open positions and balances as `engine`."""
    assert len(engine.portfolio.round_trips) >= min_round_trips
    assert round_trips(desk.portfolio.round_trips) == round_trips(engine.portfolio.round_trips)
    orders = [o.order_id for o in desk.trace.orders]
    assert len(orders) == len(set(orders)), "an order was sent twice"
    assert orders == [o.order_id for o in engine.trace.orders]
    assert [f.fill_id for f in desk.trace.fills] == [f.fill_id for f in engine.trace.fills]
    assert [p.position_id for p in desk.portfolio.open_positions()] == \
        [p.position_id for p in engine.portfolio.open_positions()]
    assert desk.portfolio.ledger.balances == engine.portfolio.ledger.balances
