"""Plots of one run's requests: latency distribution and latency, error rate and throughput over
time (see :mod:`.result_plots`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..formatting import fmt_duration, fmt_ms
from . import style as st
from .run_axes import LATENCY_MARKS, ok_after_warmup, over_time, pname, set_title, window_seconds
from .style import style


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
        df = ok_after_warmup(result)
        set_title(ax, "Latency distribution", result,
                  f"{len(df):,} ok requests after warm-up; marks at "
                  + ", ".join(pname(p) for p in percentiles))
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
            ax.annotate(pname(p), (v * 1e3, p / 100), xytext=(6, -6) if last else (-6, 4),
                        textcoords="offset points", ha="left" if last else "right",
                        va="top" if last else "bottom", fontsize=10)
            rows.append(f"{pname(p):>6}  {fmt_ms(v)}")
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
        w = window_seconds(result, window)
        set_title(ax, "Latency over time", result,
                  f"ok requests, by start time, per {fmt_duration(w)} window")
        df = result.requests
        df = df[df["status"] == "ok"]
        scale = over_time(ax, result, "latency (ms)")
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
            ax.plot(centres / scale, y, color=colours[i % len(colours)], label=pname(p),
                    marker="." if len(centres) < 40 else None)
        if log:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        st.legend(ax)
        return ax


# -- errors and throughput ------------------------------------------------------------------
def _windowed(result: Any, ax: Axes | None, window: float | None, title: str, note: str,
              ylabel: str) -> tuple[Axes, float, np.ndarray]:
    """Axes over simulated time in windows: ``(ax, time scale, window edges in seconds)``;
    ``note`` has a ``{}`` for the window's length."""
    ax = st.new_axes(ax)
    w = window_seconds(result, window)
    set_title(ax, title, result, note.format(fmt_duration(w)))
    scale = over_time(ax, result, ylabel)
    return ax, scale, st.window_edges(0.0, result.duration, w)


def _per_window(result: Any, times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(times, bins=edges)
    return counts


def error_rate_over_time(result: Any, ax: Axes | None = None,
                         window: float | None = None) -> Axes:
    """Share of requests that did not end ok, per window of start time, stacked by status (%)."""
    with style():
        ax, scale, edges = _windowed(result, ax, window, "Failed requests over time",
                                     "share of requests started in each {} window, by outcome",
                                     "requests not ok (%)")
        df = result.requests
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
        ax, scale, edges = _windowed(result, ax, window, "Throughput over time",
                                     "requests per second, averaged over {} windows",
                                     "requests per second")
        df = result.requests
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
