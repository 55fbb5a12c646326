"""The polling-versus-WebSocket table and its bar chart, on short versions of the two chat
scenarios (same users, same messages)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

import simsys
from simsys.plot import plot_polling_vs_websocket
from simsys.websocket_compare import COLUMNS, compare_delivery

matplotlib.use("Agg")
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
SHORT = {"duration": "120s", "warmup": "40s", "workload.0.clients": 300}  # ramp: 30s


@pytest.fixture(scope="module")
def table():
    ws = simsys.run(SCENARIOS / "chat-websocket.yaml", overrides=SHORT)
    poll = simsys.run(SCENARIOS / "chat-polling.yaml", overrides=SHORT)
    long = simsys.run(SCENARIOS / "chat-polling.yaml", overrides={**SHORT, "workload.0.long": True})
    return compare_delivery(ws, poll, long.summary(), names=["websocket", "polling", "long"])


def test_the_table_compares_what_a_teacher_asks(table):
    assert list(table.columns) == list(COLUMNS)
    assert list(table.index) == ["websocket", "polling", "long"]
    ws, poll, long = (table.loc[n] for n in table.index)
    assert ws.delivery_mean == pytest.approx(0.0301, abs=0.001)      # 30 ms link + 100 us
    assert poll.delivery_mean == pytest.approx(2.5 + 0.03, rel=0.05)  # interval / 2 + the way back
    assert ws.delivery_mean < long.delivery_mean < 0.1 < poll.delivery_mean
    assert ws.requests_per_s < 5 < poll.requests_per_s < long.requests_per_s
    assert poll.frames_per_s == 0 < ws.frames_per_s
    assert ws.bytes_per_message < 300 < poll.bytes_per_message < long.bytes_per_message
    assert ws.connections_mean == pytest.approx(300, abs=2)
    assert poll.connections_mean == 0 and long.connections_mean > 250
    assert ws.memory_mean > poll.memory_mean        # 300 open connections × 48 KB


def test_the_bar_chart_has_a_panel_per_column(table):
    axes = plot_polling_vs_websocket(table)
    visible = [a for a in axes if a.get_visible()]
    assert len(visible) == len(table.columns)
    assert [t.get_text() for t in visible[0].get_xticklabels()] == list(table.index)
    with pytest.raises(ValueError, match="expected 8 axes"):
        plot_polling_vs_websocket(table, ax=axes[:2])


def test_the_readable_table_uses_the_bar_charts_units(table):
    from simsys.formatting import fmt_number
    from simsys.websocket_compare import delivery_text

    text = delivery_text(table)
    assert "delivery latency, mean (ms)" in text.index
    assert text.loc["delivery latency, mean (ms)"].iloc[0] == fmt_number(
        table["delivery_mean"].iloc[0] * 1e3)
    assert any(i.endswith("(MB)") or i.endswith("(KB)") for i in text.index)


def test_the_bar_chart_speaks_in_ms_and_decimal_bytes(table):
    # issue 15: it drew raw seconds and bytes (4.96e+08) in matplotlib's default colours
    from simsys.formatting import fmt_number
    from simsys.plot.style import PALETTE

    axes = plot_polling_vs_websocket(table)
    titles = {c: a.get_title("left") for c, a in zip(table.columns, axes, strict=False)}
    assert titles["delivery_mean"].endswith("(ms)")
    assert titles["memory_mean"].endswith("(MB)") and titles["bytes_per_s"].endswith("B/s)")
    notes = [t.get_text() for a in axes for t in a.texts]
    assert not [n for n in notes if "e+" in n or "e-" in n]
    assert fmt_number(table["delivery_mean"].iloc[0] * 1e3) in notes
    colours = {tuple(round(c, 3) for c in b.get_facecolor()[:3]) for b in axes[0].patches}
    import matplotlib.colors as mc

    assert colours <= {tuple(round(c, 3) for c in mc.to_rgb(p)) for p in PALETTE}


def test_a_level_held_since_before_the_warmup_is_the_peak_and_the_mean():
    # 2,000 clients connect during a 5 s ramp and stay; the warm-up ends at 10 s, after the
    # last change: the peak and the mean over the measured window are both 2,000.
    spec = {"duration": "60s", "warmup": "10s",
            "services": {"chat": {"replicas": 2, "websocket": {"max_connections": 5000}}},
            "workload": [{"type": "websocket", "target": "chat", "clients": 2000, "ramp": "5s",
                          "lifetime": "1h"}]}
    ws = simsys.run(spec).summary()["websockets"]
    assert ws["peak_connections"] == 2000
    assert ws["mean_connections"] == pytest.approx(2000)
