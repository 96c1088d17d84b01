"""The throughput benchmark runs end to end and prints the figures it promises (no timing asserted;
the peak-RSS runs, fresh processes each, are left out to keep this quick)."""
from __future__ import annotations

from bench.backtest_throughput import main, top50_30_days_events


def test_the_benchmark_prints_rates_ratio_projection_and_data_rates(capsys):
    assert main(["--variant", "busy", "--coins", "3", "--days", "0.02", "--repeat", "1", "--skip-memory"]) == 0
    out = capsys.readouterr().out
    for figure in ("two independent CPU-bound processes", "1 process :", "2 processes:", "ratio 2/1 :", "Top50 x 30 days (261.8 M events) at the measured",
                   "per core:", "generator", "Parquet read"):
        assert figure in out, figure
    assert top50_30_days_events() == 101 * 86_400 * 30
