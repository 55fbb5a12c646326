"""Every plot draws something a person can read: rendered with Agg, checked not to be blank."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import simsys  # noqa: E402
from simsys import plot  # noqa: E402
from simsys.output import render_png  # noqa: E402
from simsys.plot import SweepPlots, style  # noqa: E402

CHECKOUT = "scenarios/checkout.yaml"
FAST = {"duration": "60s", "warmup": "5s"}

TINY_CHAOS = {
    "name": "tiny-chaos",
    "duration": "120s",
    "warmup": "10s",
    "services": {
        "web": {"replicas": 2, "workers": 2, "calls": ["db"],
                "service_time": {"dist": "exponential", "mean": "10ms"}},
        "db": {"replicas": 2, "workers": 2, "service_time": "5ms",
               "memory": {"base": "100MB", "per_request": "1MB", "limit": "110MB"}},
    },
    "workload": [{"type": "poisson", "rate": "50/s", "target": "web"}],
    "chaos": {"monkey": {"targets": ["db"], "mean_time_between_failures": "20s"}},
    "recovery": {"detection": "3s", "restart": {"dist": "exponential", "mean": "8s"}},
}

RESULT_PLOTS = ["latency_cdf", "latency_over_time", "error_rate_over_time",
                "throughput_over_time", "memory", "queues", "connections", "circuit_breakers",
                "scaling", "incident_timeline", "mttr_hist", "topology"]


def png_of(fig: Figure, dpi: int = 60) -> np.ndarray:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    return mpimg.imread(buf, format="png")


def assert_not_blank(img: np.ndarray, min_colours: int = 12, min_ink: float = 0.01) -> None:
    """More than a frame: several distinct colours and some share of non-white pixels."""
    rgb = (img[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3)
    colours = len(np.unique(rgb, axis=0))
    ink = float((rgb.min(axis=1) < 235).mean())
    assert colours >= min_colours, f"only {colours} distinct colours"
    assert ink >= min_ink, f"only {ink:.2%} of pixels are not white"


class WithTimeseries:
    """A result whose timeseries has extra rows (a metric the simulation does not record yet)."""

    def __init__(self, result: simsys.Result, extra: pd.DataFrame):
        self._result = result
        self.timeseries = pd.concat([result.timeseries.astype({"service": str, "metric": str}),
                                     extra], ignore_index=True)

    def __getattr__(self, name: str):
        return getattr(self._result, name)


@pytest.fixture(scope="module")
def checkout() -> simsys.Result:
    return simsys.run(CHECKOUT, overrides=FAST)


@pytest.fixture(scope="module")
def chaos() -> simsys.Result:
    r = simsys.run(TINY_CHAOS, seed=1)
    assert len(r.incidents) >= 2, "the chaos fixture needs incidents to draw"
    return r


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("name", RESULT_PLOTS)
def test_each_plot_draws_on_checkout(checkout, name):
    ax = getattr(checkout.plot, name)()
    assert isinstance(ax, Axes)
    assert ax.get_title(loc="left"), "every plot has a title"
    assert_not_blank(png_of(ax.figure))


@pytest.mark.parametrize("name", ["incident_timeline", "mttr_hist", "latency_over_time",
                                  "error_rate_over_time", "memory"])
def test_plots_with_incidents(chaos, name):
    ax = getattr(plot, name)(chaos)
    assert_not_blank(png_of(ax.figure))
    if name == "incident_timeline":
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == ["web #0", "web #1", "db #0", "db #1"]
        assert len(ax.collections) >= len(chaos.incidents)  # one bar per incident at least
    if name == "latency_over_time":  # incidents shaded behind the lines
        assert "instance down" in ax.get_legend_handles_labels()[1]


def test_circuit_breakers_plot_their_states_and_trials():
    spec = {"duration": "60s",
            "services": {"web": {"workers": 50, "calls": [
                {"service": "db", "timeout": "100ms",
                 "circuit_breaker": {"volume_threshold": 10, "sleep_window": "3s"}}]},
                         "db": {"workers": 4, "service_time": {"dist": "exponential", "mean": "20ms"}}},
            "recovery": {"detection": "2s", "restart": "5s"},
            "workload": [{"type": "poisson", "rate": "100/s", "target": "web"}],
            "faults": [{"kind": "crash", "target": "db", "at": "20s", "mode": "all",
                        "duration": "15s"}]}
    r = simsys.run(spec)
    ax = r.plot.circuit_breakers()
    assert_not_blank(png_of(ax.figure))
    lines = {line.get_label(): line for line in ax.get_lines()}
    trials = lines["db: trial call"].get_xdata()
    assert len(trials) == (r.breakers["state"] == "half_open").sum() > 2
    opened = lines["db: open"]
    # open from its first opening to the trial that closes it, trials that failed at once
    # included (they last no time); closed after
    t, v = opened.get_xdata(), opened.get_ydata()
    first, last_trial, closed = r.breakers["time"].iloc[[0, -2, -1]]
    assert list(r.breakers["state"].iloc[[0, -2, -1]]) == ["open", "half_open", "closed"]
    assert last_trial < closed
    assert v[(t >= first) & (t < last_trial)].min() == 1 and v[t >= last_trial].max() == 0
    from simsys.output import plots_for
    assert "circuit_breakers" in plots_for(r)


def test_axes_are_labelled_with_units(checkout):
    assert checkout.plot.latency_cdf().get_xlabel() == "latency (ms, log scale)"
    assert checkout.plot.latency_over_time().get_ylabel() == "latency (ms)"
    assert checkout.plot.memory().get_ylabel() == "memory (MB)"
    assert checkout.plot.queues().get_xlabel() == "simulated time (s)"
    assert checkout.plot.throughput_over_time().get_ylabel() == "requests per second"


def test_latency_cdf_marks_percentiles(checkout):
    ax = checkout.plot.latency_cdf()
    texts = " ".join(t.get_text() for t in ax.texts)
    for mark in ("p50", "p90", "p99", "p99.9"):
        assert mark in texts
    p99 = checkout.summary()["latency"]["p99"] * 1e3
    assert f"{p99:.0f} ms" in texts


def test_memory_limit_line(chaos):
    ax = plot.memory(chaos)
    assert any(abs(line.get_ydata()[0] - 110) < 1e-9 for line in ax.get_lines()
               if len(line.get_ydata()) == 2), "the 110 MB limit of db is drawn"
    assert any("limit 110 MB" in t.get_text() for t in ax.texts)


def test_connections_empty_state_and_data(checkout):
    ax = checkout.plot.connections()
    assert "No WebSocket connections" in " ".join(t.get_text() for t in ax.texts)
    t = np.arange(0.0, 60.0)
    extra = pd.concat([
        pd.DataFrame({"time": t, "service": "gateway", "instance": k, "metric": "connections",
                      "value": 100 * (k + 1) + 10 * np.sin(t / 5)}) for k in range(2)])
    ax = plot.connections(WithTimeseries(checkout, extra))
    assert len(ax.get_lines()) == 2
    assert ax.get_ylabel() == "open connections"
    assert_not_blank(png_of(ax.figure))


def test_empty_incidents_still_shade_nothing_and_draw(checkout):
    assert len(checkout.incidents) == 0
    ax = checkout.plot.mttr_hist()
    assert "No recovered incidents" in " ".join(t.get_text() for t in ax.texts)
    assert_not_blank(png_of(ax.figure), min_colours=5, min_ink=0.003)


def test_topology_of_a_graph_and_of_a_run(checkout):
    ax = plot.topology(simsys.build_graph(CHECKOUT))
    labels = " ".join(t.get_text() for t in ax.texts)
    assert "gateway\n2 × 16 workers" in labels and "util" not in labels
    ax = checkout.plot.topology()
    labels = " ".join(t.get_text() for t in ax.texts)
    assert "util" in labels and "avail 100%" in labels
    assert "30% of calls" in labels
    assert_not_blank(png_of(ax.figure))


def test_dashboard_is_a_figure(chaos):
    fig = chaos.plot.dashboard()
    assert isinstance(fig, Figure)
    assert len(fig.axes) >= 9
    assert_not_blank(png_of(fig, dpi=30))


def test_drawing_into_given_axes(checkout):
    fig, axes = plt.subplots(1, 2)
    assert checkout.plot.latency_cdf(ax=axes[0]) is axes[0]
    assert checkout.plot.queues(ax=axes[1]) is axes[1]


def test_render_png_does_not_touch_pyplot(checkout):
    before = plt.get_fignums()
    png = render_png(checkout, "latency_cdf", dpi=50)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert plt.get_fignums() == before


def test_palette_is_okabe_ito():
    assert style.PALETTE[:3] == ["#0072B2", "#E69F00", "#009E73"]


# -- sweeps -------------------------------------------------------------------------------------
def fake_runs() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for replicas in (1, 2, 4):
        for mtbf in ("5min", "10min"):
            for rep in range(5):
                p99 = 0.4 / replicas * (1.5 if mtbf == "5min" else 1.0) + rng.normal(0, 0.01)
                rows.append({"services.catalog.replicas": replicas,
                             "chaos.monkey.mean_time_between_failures": mtbf,
                             "replication": rep, "status": "ok", "latency.p99": p99,
                             "error_rate": 0.01 / replicas, "throughput": 300.0})
    rows.append({"services.catalog.replicas": 4, "chaos.monkey.mean_time_between_failures": "5min",
                 "replication": 5, "status": "error", "latency.p99": np.nan})
    return pd.DataFrame(rows)


def test_sweep_metric_with_hue_and_ci_bands():
    sp = SweepPlots(fake_runs())
    ax = sp.metric("latency.p99", x="services.catalog.replicas",
                   hue="chaos.monkey.mean_time_between_failures")
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2, "one confidence band per hue"
    assert ax.get_ylabel() == "p99 latency (ms)"
    assert ax.get_xlabel() == "catalog replicas"
    table = sp.summary("latency.p99", x="services.catalog.replicas",
                       hue="chaos.monkey.mean_time_between_failures")
    assert list(table["n"]) == [5] * 6, "the failed run is left out"
    assert (table["ci_low"] < table["mean"]).all() and (table["mean"] < table["ci_high"]).all()
    assert_not_blank(png_of(ax.figure))


def test_sweep_metric_needs_other_keys_fixed():
    runs = fake_runs()
    runs["services.web.workers"] = runs["replication"] % 2 + 1
    sp = SweepPlots(runs)
    x, hue = "services.catalog.replicas", "chaos.monkey.mean_time_between_failures"
    with pytest.raises(ValueError, match="services.web.workers"):
        sp.metric("latency.p99", x=x, hue=hue)
    ax = sp.metric("latency.p99", x=x, hue=hue, where={"services.web.workers": 1})
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 2


def test_real_sweep_plot(tmp_path):
    from simsys.sweeping import sweep

    tiny = {"name": "tiny", "duration": "20s",
            "services": {"web": {"workers": 2,
                                 "service_time": {"dist": "exponential", "mean": "10ms"}}},
            "workload": [{"type": "poisson", "rate": "80/s", "target": "web"}]}
    sw = sweep(tiny, grid={"services.web.workers": [1, 2, 4]}, replications=3, jobs=1,
               progress=False)
    ax = sw.plot.metric("latency.mean")
    assert ax.get_xlabel() == "web workers"
    assert "tiny" in ax.get_title(loc="left")
    fig = sw.plot.metrics()
    assert isinstance(fig, Figure)
    assert_not_blank(png_of(fig, dpi=40))
