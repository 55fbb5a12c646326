"""Plots of one run. Each function takes a :class:`~simsys.Result` and ``ax=`` and returns the Axes.

The same functions are reached as ``result.plot.<name>(...)`` through :class:`ResultPlots`.
They read only the result's DataFrames (``requests``, ``incidents``, ``timeseries``), its
``summary()``, ``warmup``, ``duration`` and ``graph``, so a run read back from a directory
(:func:`simsys.output.load_run`) draws the same pictures. Times on the x axis are simulated
time; latencies are in milliseconds, memory in MB (10⁶ bytes).
"""


from __future__ import annotations

from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..formatting import fmt_bytes, fmt_duration, fmt_ms, fmt_pct, fmt_rate
from . import style as st
from .incident_plots import incident_timeline, mttr_hist
from .request_plots import (
    error_rate_over_time,
    latency_cdf,
    latency_over_time,
    throughput_over_time,
)
from .run_axes import metric_frame
from .state_plots import circuit_breakers, connections, memory, queues, scaling
from .style import style


def dashboard(result: Any, fig: Figure | None = None) -> Figure:
    """The main panels of a run on one figure: topology, key figures, latency, throughput,
    errors, memory and queues, and incidents or WebSocket connections when the run has them."""
    from .topology_plot import topology

    has_incidents = len(result.incidents) > 0
    has_connections = len(metric_frame(result, "connections")) > 0
    rows = 4 + has_incidents + has_connections
    with style():
        fig = st.new_figure(fig, figsize=(20, 5.2 * rows + 1))
        # sub-figures: the top row's columns need not line up with the panels' columns
        top, rest = fig.subfigures(2, 1, height_ratios=[1, rows - 1])
        left, right = top.subplots(1, 2, width_ratios=[2, 1])
        topology(result, ax=left)
        _summary_panel(result, right)
        panels = [latency_cdf, latency_over_time, throughput_over_time, error_rate_over_time,
                  memory, queues]
        if has_incidents:
            panels += [incident_timeline, mttr_hist]
        if has_connections:
            panels += [connections]
        grid = rest.add_gridspec(rows - 1, 2)
        for k, draw in enumerate(panels):
            last_alone = k == len(panels) - 1 and k % 2 == 0
            draw(result, ax=rest.add_subplot(grid[k // 2, :] if last_alone else grid[k // 2, k % 2]))
        s = result.summary()
        lat = s.get("latency", {})
        p99 = lat.get("p99")
        fig.suptitle(
            f"{s.get('name', 'run')} — seed {s.get('seed')}, "
            f"{fmt_duration(float(s.get('duration', result.duration)))} simulated · "
            f"{fmt_rate(s.get('throughput', 0))} ok · p99 {fmt_ms(p99) if p99 is not None else '–'}"
            f" · error rate {fmt_pct(s.get('error_rate', 0))}",
            fontsize=22, fontweight="bold", x=0.01, ha="left")
        return fig


def _summary_panel(result: Any, ax: Axes) -> Axes:
    """The key figures as text, for the dashboard's spare panel."""
    s = result.summary()
    req, lat = s["requests"], s["latency"]
    lines = [
        f"requests        {req['total']:,}  ({req['ok']:,} ok)",
        f"throughput      {fmt_rate(s['throughput'])}",
        f"error rate      {fmt_pct(s['error_rate'])}",
        f"latency mean    {fmt_ms(lat['mean'])}",
        f"latency p50     {fmt_ms(lat['p50'])}",
        f"latency p99     {fmt_ms(lat['p99'])}",
        f"latency p99.9   {fmt_ms(lat['p999'])}",
        f"incidents       {s['incidents']['count']}"
        + (f"  (MTTR {fmt_duration(s['incidents']['mttr'])})" if s["incidents"]["mttr"] else ""),
        "",
    ]
    width = max(len(n) for n in s.get("services", {}) or ["x"])
    lines.append(f"{'service':<{width}}  util.   avail.      memory peak")
    for name, v in (s.get("services") or {}).items():
        lines.append(f"{name:<{width}}  {fmt_pct(v['utilization'], 0):>5}  "
                     f"{fmt_pct(v['availability'], 2):>7}  {fmt_bytes(v['memory_peak']):>13}")
    ax.set_title("Key figures (after warm-up)")
    ax.axis("off")
    ax.text(0.0, 1.0, "\n".join(lines), transform=ax.transAxes, ha="left", va="top",
            family="monospace", fontsize=13)
    return ax


class ResultPlots:
    """``result.plot``: the plots of one run, each returning its Axes (``dashboard``: Figure).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import simsys
    >>> r = simsys.run({"duration": "20s", "services": {"web": {"service_time": "5ms"}},
    ...                 "workload": [{"type": "poisson", "rate": "50/s", "target": "web"}]})
    >>> ax = r.plot.latency_cdf()
    >>> ax.get_xlabel()
    'latency (ms, log scale)'
    """

    def __init__(self, result: Any):
        self.result = result

    def __repr__(self) -> str:
        names = ", ".join(n for n in dir(self) if not n.startswith("_") and n != "result")
        return f"<ResultPlots: {names}>"

    def latency_cdf(self, ax: Axes | None = None, **kw: Any) -> Axes:
        return latency_cdf(self.result, ax=ax, **kw)

    def latency_over_time(self, ax: Axes | None = None, **kw: Any) -> Axes:
        return latency_over_time(self.result, ax=ax, **kw)

    def error_rate_over_time(self, ax: Axes | None = None, **kw: Any) -> Axes:
        return error_rate_over_time(self.result, ax=ax, **kw)

    def throughput_over_time(self, ax: Axes | None = None, **kw: Any) -> Axes:
        return throughput_over_time(self.result, ax=ax, **kw)

    def memory(self, ax: Axes | None = None, **kw: Any) -> Axes:
        return memory(self.result, ax=ax, **kw)

    def queues(self, ax: Axes | None = None, **kw: Any) -> Axes:
        return queues(self.result, ax=ax, **kw)

    def connections(self, ax: Axes | None = None, **kw: Any) -> Axes:
        return connections(self.result, ax=ax, **kw)

    def circuit_breakers(self, ax: Axes | None = None, **kw: Any) -> Axes:
        return circuit_breakers(self.result, ax=ax, **kw)

    def scaling(self, ax: Axes | None = None, **kw: Any) -> Axes:
        return scaling(self.result, ax=ax, **kw)

    def incident_timeline(self, ax: Axes | None = None, **kw: Any) -> Axes:
        return incident_timeline(self.result, ax=ax, **kw)

    def mttr_hist(self, ax: Axes | None = None, **kw: Any) -> Axes:
        return mttr_hist(self.result, ax=ax, **kw)

    def topology(self, ax: Axes | None = None, **kw: Any) -> Axes:
        from .topology_plot import topology

        return topology(self.result, ax=ax, **kw)

    def dashboard(self, fig: Figure | None = None) -> Figure:
        return dashboard(self.result, fig=fig)


PLOTS = ("latency_cdf", "latency_over_time", "error_rate_over_time", "throughput_over_time",
         "memory", "queues", "connections", "circuit_breakers", "scaling", "incident_timeline",
         "mttr_hist", "topology", "dashboard")
