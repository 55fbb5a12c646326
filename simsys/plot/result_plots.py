"""Plots of one run. Each function takes a :class:`~simsys.Result` and ``ax=`` and returns the Axes.

The same functions are reached as ``result.plot.<name>(...)`` through :class:`ResultPlots`.
They read only the result's DataFrames (``requests``, ``incidents``, ``timeseries``), its
``summary()``, ``warmup``, ``duration`` and ``graph``, so a run read back from a directory
(:func:`simsys.output.load_run`) draws the same pictures. Times on the x axis are simulated
time; latencies are in milliseconds, memory in MB (10⁶ bytes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..formatting import fmt_bytes, fmt_duration, fmt_ms, fmt_pct, fmt_rate
from . import style as st
from .style import style

LATENCY_MARKS = (50, 90, 99, 99.9)


def _pname(p: float) -> str:
    return f"p{p:g}"


def _ok_after_warmup(result: Any) -> pd.DataFrame:
    df = result.requests
    return df[(df["start"] >= result.warmup) & (df["status"] == "ok")]


def _time_axis(ax: Axes, result: Any) -> float:
    scale, unit = st.time_unit(result.duration)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_xlim(0, result.duration / scale)
    return scale


def _backdrop(ax: Axes, result: Any, scale: float) -> None:
    """Warm-up and incidents behind the data of an over-time plot."""
    st.shade_warmup(ax, result.warmup, scale, getattr(result, "warmup_auto", None) is not None)
    st.shade_incidents(ax, result.incidents, result.duration, scale)


def _over_time(ax: Axes, result: Any, ylabel: str) -> float:
    """Set up an over-time plot: the time axis, warm-up and incidents behind, the y label;
    returns the time scale (seconds per axis unit)."""
    scale = _time_axis(ax, result)
    _backdrop(ax, result, scale)
    ax.set_ylabel(ylabel)
    return scale


def _window(result: Any, window: float | None) -> float:
    return float(window) if window else st.nice_window(result.duration)


def _metric(result: Any, name: str) -> pd.DataFrame:
    ts = result.timeseries
    if len(ts) == 0:
        return ts
    return ts[ts["metric"] == name]


def _services(result: Any) -> list[str]:
    G = getattr(result, "graph", None)
    if G is not None:
        return [n for n, k in G.nodes(data="kind", default="service") if k == "service"]
    return list(pd.unique(result.timeseries["service"].astype(str)))


def _subtitle(ax: Axes, text: str) -> None:
    ax.text(0.0, 1.0, text, transform=ax.transAxes, ha="left", va="bottom", fontsize=11,
            color="#555555")


def _title(ax: Axes, title: str, result: Any, note: str | None = None) -> None:
    ax.set_title(f"{title} — {getattr(result, 'name', 'run')}", pad=22 if note else 8)
    if note:
        _subtitle(ax, note)


# -- latency ------------------------------------------------------------------------------------
def latency_cdf(result: Any, ax: Axes | None = None, by: str | None = None,
                percentiles: Sequence[float] = LATENCY_MARKS) -> Axes:
    """Cumulative distribution of the latency of ok requests after warm-up (log x, ms).

    Parameters
    ----------
    by
        ``"source"`` draws one curve per workload; default one curve for all requests.
    percentiles
        Marked on the curve and listed in the corner.
    """
    with style():
        ax = st.new_axes(ax)
        df = _ok_after_warmup(result)
        _title(ax, "Latency distribution", result,
               f"{len(df):,} ok requests after warm-up; marks at "
               + ", ".join(_pname(p) for p in percentiles))
        if len(df) == 0:
            return st.empty_state(ax, "No successful requests after warm-up:\n"
                                  "nothing to draw.")
        groups = [("all requests", df)] if by is None else [
            (str(k), g) for k, g in df.groupby(by, observed=True)]
        lines = []
        for i, (label, g) in enumerate(groups):
            lat = np.sort(g["latency"].to_numpy()) * 1e3
            lat = np.maximum(lat, 1e-6)
            n = len(lat)
            if n > 4000:  # draw a few thousand points; keep the tail exact
                q = np.unique(np.concatenate([np.linspace(0, 0.99, 2000),
                                              1 - np.geomspace(1e-2, 1 / n, 2000), [1.0]]))
                x, y = np.quantile(lat, q), q
            else:
                x, y = lat, np.arange(1, n + 1) / n
            colour = st.BLUE if by is None else st.colour(i)
            ax.plot(x, y, color=colour, label=label if by is not None else None)
            lines.append((label, g, colour))
        ax.set_xscale("log")
        st.plain_log_axis(ax.xaxis)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("fraction of requests ≤ latency")
        # percentile marks on the (first / only) curve, values in a box
        _, g, colour = lines[0]
        values = np.percentile(g["latency"].to_numpy(), list(percentiles))
        rows = []
        for p, v in zip(percentiles, values, strict=True):
            ax.plot([v * 1e3], [p / 100], "o", color=st.BLACK, ms=5, zorder=5)
            ax.vlines(v * 1e3, 0, p / 100, color=st.GREY, ls=":", lw=1.2, zorder=1)
            # the top marks sit at almost the same height: the last one is labelled below
            # and to the right, clear of its neighbour's label above and to the left
            last = p == max(percentiles) and len(percentiles) > 1
            ax.annotate(_pname(p), (v * 1e3, p / 100), xytext=(6, -6) if last else (-6, 4),
                        textcoords="offset points", ha="left" if last else "right",
                        va="top" if last else "bottom", fontsize=10)
            rows.append(f"{_pname(p):>6}  {fmt_ms(v)}")
        mean = g["latency"].mean()
        rows.insert(0, f"{'mean':>6}  {fmt_ms(mean)}")
        ax.text(0.98, 0.04, "\n".join(rows), transform=ax.transAxes, ha="right", va="bottom",
                family="monospace", fontsize=11,
                bbox={"boxstyle": "round,pad=0.4", "fc": "white", "ec": "#BBBBBB"})
        if by is not None:
            st.legend(ax, outside=False, loc="upper left")
        return ax


def latency_over_time(result: Any, ax: Axes | None = None, window: float | None = None,
                      percentiles: Sequence[float] = (50, 99), log: bool = False) -> Axes:
    """Latency percentiles of ok requests per window of start time (ms); incidents shaded."""
    with style():
        ax = st.new_axes(ax)
        w = _window(result, window)
        _title(ax, "Latency over time", result,
               f"ok requests, by start time, per {fmt_duration(w)} window")
        df = result.requests
        df = df[df["status"] == "ok"]
        scale = _over_time(ax, result, "latency (ms)")
        if len(df) == 0:
            st.legend(ax)
            return st.empty_state(ax, "No successful requests: nothing to draw.")
        edges = st.window_edges(0.0, result.duration, w)
        idx = np.clip(np.searchsorted(edges, df["start"].to_numpy(), side="right") - 1,
                      0, len(edges) - 2)
        grouped = pd.Series(df["latency"].to_numpy() * 1e3).groupby(idx)
        centres = (edges[:-1] + edges[1:]) / 2
        ps = sorted(percentiles)
        # median blue, tail black; kept clear of the red of incident shading
        colours = [st.BLUE, *[st.SKY_BLUE, st.PURPLE, st.GREEN][:max(0, len(ps) - 2)], st.BLACK]
        for i, p in enumerate(ps):
            q = grouped.quantile(p / 100)
            y = np.full(len(centres), np.nan)
            y[q.index.to_numpy()] = q.to_numpy()
            ax.plot(centres / scale, y, color=colours[i % len(colours)], label=_pname(p),
                    marker="." if len(centres) < 40 else None)
        if log:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        st.legend(ax)
        return ax


# -- errors and throughput ------------------------------------------------------------------
def _per_window(result: Any, times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(times, bins=edges)
    return counts


def error_rate_over_time(result: Any, ax: Axes | None = None,
                         window: float | None = None) -> Axes:
    """Share of requests that did not end ok, per window of start time, stacked by status (%)."""
    with style():
        ax = st.new_axes(ax)
        w = _window(result, window)
        _title(ax, "Failed requests over time", result,
               f"share of requests started in each {fmt_duration(w)} window, by outcome")
        scale = _over_time(ax, result, "requests not ok (%)")
        df = result.requests
        edges = st.window_edges(0.0, result.duration, w)
        total = _per_window(result, df["start"].to_numpy(), edges).astype(float)
        centres = (edges[:-1] + edges[1:]) / 2 / scale
        denom = np.where(total > 0, total, np.nan)
        status = df["status"].astype(str)
        bad = [s for s in st.STATUS_COLOURS if s != "ok" and (status == s).any()]
        if not bad:
            ax.plot(centres, np.where(total > 0, 0.0, np.nan), color=st.GREEN, label="all ok")
            ax.set_ylim(-0.5, 5)
            ax.text(0.5, 0.55, "every request succeeded", transform=ax.transAxes,
                    ha="center", va="center", fontsize=13, color="#555555")
        else:
            shares = [
                _per_window(result, df.loc[status == s, "start"].to_numpy(), edges) / denom * 100
                for s in bad
            ]
            bottom = np.zeros(len(centres))
            lefts = edges[:-1] / scale
            for name, share in zip(bad, shares, strict=True):
                share = np.nan_to_num(share)
                ax.bar(lefts, share, width=np.diff(edges) / scale, bottom=bottom, align="edge",
                       color=st.STATUS_COLOURS[name], label=name, lw=0, zorder=2)
                bottom = bottom + share
            top = np.nanmax(np.sum(np.nan_to_num(shares), axis=0)) if len(shares) else 0
            ax.set_ylim(0, max(1.0, min(100.0, top * 1.15)))
        st.legend(ax)
        return ax


def throughput_over_time(result: Any, ax: Axes | None = None,
                         window: float | None = None) -> Axes:
    """Requests finished per second in each window: ok, not ok, and arrivals for comparison."""
    with style():
        ax = st.new_axes(ax)
        w = _window(result, window)
        _title(ax, "Throughput over time", result,
               f"requests per second, averaged over {fmt_duration(w)} windows")
        scale = _over_time(ax, result, "requests per second")
        df = result.requests
        edges = st.window_edges(0.0, result.duration, w)
        widths = np.diff(edges)
        centres = (edges[:-1] + edges[1:]) / 2 / scale
        ok = df["status"] == "ok"
        arrivals = _per_window(result, df["start"].to_numpy(), edges) / widths
        done_ok = _per_window(result, df.loc[ok, "end"].to_numpy(), edges) / widths
        done_bad = _per_window(result, df.loc[~ok, "end"].to_numpy(), edges) / widths
        ax.plot(centres, arrivals, color=st.GREY, ls="--", lw=1.5, label="started")
        ax.plot(centres, done_ok, color=st.BLUE, label="finished ok")
        if done_bad.any():
            ax.plot(centres, done_bad, color=st.VERMILLION, label="finished not ok")
        ax.set_ylim(bottom=0, top=max(1.0, float(np.max(arrivals, initial=0)),
                                      float(np.max(done_ok, initial=0))) * 1.2)
        st.legend(ax)
        return ax


# -- per-replica timeseries -----------------------------------------------------------------
MAX_POINTS = 150  # samples per line above which a per-replica series is averaged per window


def _sample_window(result: Any, metric: str) -> float | None:
    """The averaging window for per-replica lines, or None to draw every sample."""
    data = _metric(result, metric)
    if len(data) == 0:
        return None
    per_line = len(data) / max(1, data.groupby(["service", "instance"], observed=True).ngroups)
    if per_line <= MAX_POINTS:
        return None
    return st.nice_window(result.duration, bins=100)


def _per_replica(result: Any, ax: Axes, metric: str, factor: float, services: Sequence[str] | None,
                 drawstyle: str = "default", band: str = "max") -> dict[str, str]:
    """One line per replica, one colour per service; returns service → colour.

    Long runs are averaged per window (:func:`_sample_window`), the window's maximum (or its
    min–max range, ``band="range"``) shaded behind the line, so that spikes stay visible.
    """
    data = _metric(result, metric)
    names = list(services) if services else _services(result)
    colours: dict[str, str] = {}
    scale, _ = st.time_unit(result.duration)
    window = _sample_window(result, metric)
    for i, name in enumerate(names):
        colours[name] = st.colour(i)
        sub = data[data["service"].astype(str) == name]
        replicas = sorted(pd.unique(sub["instance"]))
        for j, rep in enumerate(replicas):
            r = sub[sub["instance"] == rep].sort_values("time")
            t, v = r["time"].to_numpy(), r["value"].to_numpy() * factor
            style_kw = {"color": colours[name], "lw": 1.6 if len(replicas) < 4 else 1.1,
                        "alpha": 0.9 if len(replicas) < 4 else 0.7,
                        "label": f"{name} (×{len(replicas)})" if j == 0 else None}
            if window is None:
                ax.plot(t / scale, v, drawstyle=drawstyle, **style_kw)
                continue
            k = np.floor(t / window).astype(np.int64)
            g = pd.DataFrame({"k": k, "v": v}).groupby("k")["v"]
            mean, hi, lo = g.mean(), g.max(), g.min()
            centres = (mean.index.to_numpy() + 0.5) * window / scale
            ax.fill_between(centres, lo.to_numpy() if band == "range" else 0.0, hi.to_numpy(),
                            color=colours[name], alpha=0.12, lw=0, step="mid")
            ax.plot(centres, mean.to_numpy(), drawstyle="steps-mid", **style_kw)
    return colours


def _sampling_note(result: Any, metric: str, band: str = "max") -> str:
    window = _sample_window(result, metric)
    if window is None:
        return ""
    shade = "its maximum" if band == "max" else "its range"
    return f"; mean per {fmt_duration(window)} window, shaded: {shade}"


def _replica_note(result: Any, names: Sequence[str]) -> str:
    G = getattr(result, "graph", None)
    if G is None:
        return "one line per replica"
    counts = [int(G.nodes[n].get("replicas", 1)) for n in names if n in G]
    return "one line per replica" if any(c > 1 for c in counts) else "one line per service"


def memory(result: Any, ax: Axes | None = None, services: Sequence[str] | None = None) -> Axes:
    """Memory of each replica over time (MB); a dashed line marks ``memory.limit`` where set."""
    with style():
        ax = st.new_axes(ax)
        names = list(services) if services else _services(result)
        _title(ax, "Memory per replica", result,
               _replica_note(result, names) + _sampling_note(result, "memory", "range"))
        _over_time(ax, result, "memory (MB)")
        if len(_metric(result, "memory")) == 0:
            return st.empty_state(ax, "No memory samples in this run.")
        colours = _per_replica(result, ax, "memory", 1e-6, names, drawstyle="steps-post",
                               band="range")
        G = getattr(result, "graph", None)
        for name, c in colours.items():
            mem = G.nodes[name].get("memory") if G is not None and name in G else None
            limit = getattr(mem, "limit", None) if not isinstance(mem, dict) else mem.get("limit")
            if limit:
                ax.axhline(limit * 1e-6, color=c, ls="--", lw=1.5)
                ax.annotate(f"{name} limit {limit * 1e-6:g} MB", (1, limit * 1e-6),
                            xycoords=("axes fraction", "data"), xytext=(-4, 3),
                            textcoords="offset points", ha="right", va="bottom", fontsize=10,
                            color=c)
        st.legend(ax)
        return ax


def queues(result: Any, ax: Axes | None = None, services: Sequence[str] | None = None) -> Axes:
    """Requests waiting in each replica's queue over time (sampled)."""
    with style():
        ax = st.new_axes(ax)
        names = list(services) if services else _services(result)
        _title(ax, "Queue length per replica", result,
               _replica_note(result, names) + ", requests waiting for a worker"
               + _sampling_note(result, "queue_length"))
        _over_time(ax, result, "requests waiting")
        data = _metric(result, "queue_length")
        if len(data) == 0:
            return st.empty_state(ax, "No queue samples in this run.")
        _per_replica(result, ax, "queue_length", 1.0, names, drawstyle="steps-post")
        top = float(data["value"].max())
        ax.set_ylim(0, max(5.0, top * 1.25))
        if top == 0:
            ax.text(0.5, 0.5, "no request ever waited: every queue stayed empty",
                    transform=ax.transAxes, ha="center", va="center", fontsize=13,
                    color="#555555")
        st.legend(ax)
        return ax


def connections(result: Any, ax: Axes | None = None,
                services: Sequence[str] | None = None) -> Axes:
    """Open WebSocket connections per replica (metric ``connections``), when recorded."""
    with style():
        ax = st.new_axes(ax)
        data = _metric(result, "connections")
        _title(ax, "Open WebSocket connections", result,
               ("one line per replica" + _sampling_note(result, "connections", "range"))
               if len(data) else None)
        if len(data) == 0:
            return st.empty_state(
                ax, "No WebSocket connections recorded in this run\n"
                    "(no service accepts WebSockets, or no client opened one).")
        present = set(data["service"].astype(str))
        names = [n for n in (services or _services(result)) if n in present]
        _over_time(ax, result, "open connections")
        _per_replica(result, ax, "connections", 1.0, names, drawstyle="steps-post",
                     band="range")
        ax.set_ylim(bottom=0)
        st.legend(ax)
        return ax


def circuit_breakers(result: Any, ax: Axes | None = None,
                     services: Sequence[str] | None = None) -> Axes:
    """Circuit breakers open (solid) and half open (dashed) over time, per service their calls
    go to (metrics ``breakers_open`` and ``breakers_half_open``), with a mark at each trial call
    (a move to half open), which may last no time at all."""
    with style():
        ax = st.new_axes(ax)
        opened = _metric(result, "breakers_open")
        half = _metric(result, "breakers_half_open")
        _title(ax, "Circuit breakers", result,
               "breakers guarding calls to each service: open (solid), half open (dashed), "
               "trial calls (▼)" if len(opened) else None)
        if len(opened) == 0:
            return st.empty_state(ax, "No circuit breakers in this run\n"
                                      "(no call has a circuit_breaker).")
        present = list(pd.unique(opened["service"].astype(str)))
        names = [n for n in (services or _services(result)) if n in present]
        scale = _over_time(ax, result, "breakers")
        top = 1.0
        for i, name in enumerate(names):
            colour = st.colour(i)
            for data, dashes, label in ((opened, "-", f"{name}: open"),
                                        (half, "--", f"{name}: half open")):
                r = data[data["service"].astype(str) == name].sort_values("time", kind="stable")
                t, v = r["time"].to_numpy(), r["value"].to_numpy()
                if dashes == "--":  # trials: the count of half-open breakers went up
                    up = np.flatnonzero(np.diff(v, prepend=0.0) > 0)
                    ax.plot(t[up] / scale, np.full(len(up), 1.0), ls="none", marker="v",
                            ms=6, color=colour, label=f"{name}: trial call")
                # the state after all the moves of an instant, held to the next one
                last = np.append(t[1:] != t[:-1], True)
                t, v = np.append(t[last], result.duration), np.append(v[last], v[-1:])
                ax.plot(t / scale, v, drawstyle="steps-post", ls=dashes, color=colour, lw=1.8,
                        label=label)
                top = max(top, float(v.max()))
        ax.set_ylim(-0.05 * top, top * 1.2)
        ax.yaxis.get_major_locator().set_params(integer=True)
        st.legend(ax)
        return ax


def scaling(result: Any, ax: Axes | None = None, services: Sequence[str] | None = None) -> Axes:
    """Autoscaling: replicas launched (solid: what is billed, starting ones included) and
    replicas serving (dotted, sampled) per autoscaled service over time."""
    with style():
        ax = st.new_axes(ax)
        launched = _metric(result, "replicas")
        _title(ax, "Autoscaling", result,
               "replicas launched (solid, billed) and serving (dotted, sampled)"
               if len(launched) else None)
        if len(launched) == 0:
            return st.empty_state(ax, "No autoscaling in this run\n(no service has autoscale).")
        present = list(pd.unique(launched["service"].astype(str)))
        names = [n for n in (services or _services(result)) if n in present]
        scale = _over_time(ax, result, "replicas")
        serving = _metric(result, "serving")
        top = 1.0
        for i, name in enumerate(names):
            colour = st.colour(i)
            r = launched[launched["service"].astype(str) == name].sort_values("time", kind="stable")
            t = np.append(r["time"].to_numpy(), result.duration)
            v = np.append(r["value"].to_numpy(), r["value"].to_numpy()[-1:])
            ax.plot(t / scale, v, drawstyle="steps-post", color=colour, lw=2.0,
                    label=f"{name}: launched")
            up = serving[serving["service"].astype(str) == name].groupby("time")["value"].sum()
            if len(up):
                ax.plot(up.index.to_numpy() / scale, up.to_numpy(), drawstyle="steps-post",
                        ls=":", color=colour, lw=1.6, label=f"{name}: serving")
            top = max(top, float(v.max()))
        ax.set_ylim(0, top * 1.2)
        ax.yaxis.get_major_locator().set_params(integer=True)
        st.legend(ax)
        return ax


# -- incidents ----------------------------------------------------------------------------------
def _instances(result: Any) -> list[tuple[str, int]]:
    G = getattr(result, "graph", None)
    rows: list[tuple[str, int]] = []
    if G is not None:
        for n in _services(result):
            rows += [(n, k) for k in range(int(G.nodes[n].get("replicas", 1)))]
    inc = result.incidents
    for s, i in zip(inc["service"].astype(str), inc["instance"].astype(int), strict=True):
        if (s, i) not in rows:
            rows.append((s, i))
    return rows


def incident_timeline(result: Any, ax: Axes | None = None, only_failed: bool | None = None) -> Axes:
    """One row per instance: failed → detected (vermillion), detected → recovered (orange).

    ``only_failed`` keeps only instances that failed; by default it does so when there are
    more than 30 instances.
    """
    rows = _instances(result)
    inc = result.incidents
    failed_rows = {(str(s), int(i)) for s, i in zip(inc["service"], inc["instance"], strict=True)}
    if only_failed is None:
        only_failed = len(rows) > 30 and bool(failed_rows)
    if only_failed:
        rows = [r for r in rows if r in failed_rows]
    with style():
        ax = st.new_axes(ax, figsize=(9.0, max(3.5, 0.42 * len(rows) + 2.0)))
        _title(ax, "Incidents per instance", result,
               f"{len(inc)} failure(s); bars run from failure through detection to recovery")
        scale = _time_axis(ax, result)
        st.shade_warmup(ax, result.warmup, scale, getattr(result, "warmup_auto", None) is not None)
        ypos = {r: k for k, r in enumerate(rows)}
        height = 0.6
        end = result.duration
        for _, row in inc.iterrows():
            key = (str(row["service"]), int(row["instance"]))
            if key not in ypos:
                continue
            y = ypos[key] - height / 2
            f, d, r = (float(row[c]) for c in ("failed_at", "detected_at", "recovered_at"))
            stop_detect = d if math.isfinite(d) else (r if math.isfinite(r) else end)
            ax.broken_barh([(f / scale, (stop_detect - f) / scale)], (y, height),
                           color=st.VERMILLION, lw=0, zorder=2)
            if math.isfinite(d):
                stop = r if math.isfinite(r) else end
                ax.broken_barh([(d / scale, (stop - d) / scale)], (y, height),
                               color=st.ORANGE, lw=0, zorder=2)
            if math.isfinite(r):
                ax.plot([r / scale], [ypos[key]], marker="|", ms=14, mew=2.5, color=st.GREEN,
                        zorder=4)
            else:
                ax.broken_barh([(f / scale, (end - f) / scale)], (y, height), fc="none",
                               ec=st.BLACK, hatch="//", lw=0.8, zorder=3)
        ax.set_yticks(range(len(rows)), [f"{s} #{i}" for s, i in rows])
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.grid(axis="y", visible=False)
        ax.set_ylabel("instance")
        handles = [
            Line2D([], [], color=st.VERMILLION, lw=8, label="failed, not yet detected"),
            Line2D([], [], color=st.ORANGE, lw=8, label="detected, recovering"),
            Line2D([], [], color=st.GREEN, marker="|", ms=12, mew=2.5, lw=0, label="recovered"),
        ]
        if (inc["recovered_at"].isna() & inc["failed_at"].notna()).any():
            handles.append(Patch(fc="white", ec=st.BLACK, hatch="//",
                                 label="not recovered by the end"))
        if result.warmup > 0:
            handles.append(Patch(color=st.WARMUP_COLOUR, alpha=0.6, label="warm-up"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        if len(inc) == 0:
            ax.text(0.5, 0.5, "No incidents in this run: every instance stayed up.",
                    transform=ax.transAxes, ha="center", va="center", fontsize=13,
                    color="#555555",
                    bbox={"boxstyle": "round,pad=0.4", "fc": "white", "ec": "none", "alpha": 0.9})
        return ax


def mttr_hist(result: Any, ax: Axes | None = None, bins: int | str = "auto") -> Axes:
    """Histogram of time to recover (failure → recovered), with the MTTR and MTTD marked."""
    with style():
        ax = st.new_axes(ax)
        inc = result.incidents
        ttr = (inc["recovered_at"] - inc["failed_at"]).dropna().to_numpy(dtype=float)
        ttd = (inc["detected_at"] - inc["failed_at"]).dropna().to_numpy(dtype=float)
        _title(ax, "Time to recover", result,
               f"{len(ttr)} recovered incident(s) of {len(inc)}")
        if len(ttr) == 0:
            return st.empty_state(ax, "No recovered incidents in this run:\n"
                                  "no time to recover to show.")
        unit, div = ("min", 60.0) if np.median(ttr) > 300 else ("s", 1.0)
        if bins == "auto" and len(ttr) < 50:  # few incidents: even bins from zero
            bins = np.linspace(0, ttr.max() / div * 1.05, max(6, min(20, len(ttr) + 4)))
        counts, _, _ = ax.hist(ttr / div, bins=bins, color=st.SKY_BLUE, edgecolor="white",
                               label="time to recover", zorder=2)
        ax.set_ylim(0, float(np.max(counts)) * 1.15 + 0.2)
        ax.axvline(ttr.mean() / div, color=st.BLUE, lw=2.5,
                   label=f"MTTR {fmt_duration(ttr.mean())}")
        if len(ttd):
            ax.axvline(ttd.mean() / div, color=st.VERMILLION, lw=2, ls="--",
                       label=f"MTTD {fmt_duration(ttd.mean())}")
        ax.set_xlabel(f"time from failure to recovery ({unit})")
        ax.set_ylabel("incidents")
        ax.set_xlim(left=0)
        ax.yaxis.get_major_locator().set_params(integer=True)
        st.legend(ax)
        return ax


# -- the whole picture ----------------------------------------------------------------------
def dashboard(result: Any, fig: Figure | None = None) -> Figure:
    """The main panels of a run on one figure: topology, key figures, latency, throughput,
    errors, memory and queues, and incidents or WebSocket connections when the run has them."""
    from .topology_plot import topology

    has_incidents = len(result.incidents) > 0
    has_connections = len(_metric(result, "connections")) > 0
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
