"""What the plots of one run share: the time axis, the warm-up and incident backdrop,
titles, the windows of a series and per-replica lines (see :mod:`.result_plots`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..formatting import fmt_duration
from . import style as st

LATENCY_MARKS = (50, 90, 99, 99.9)


def pname(p: float) -> str:
    return f"p{p:g}"


def ok_after_warmup(result: Any) -> pd.DataFrame:
    df = result.requests
    return df[(df["start"] >= result.warmup) & (df["status"] == "ok")]


def time_axis(ax: Axes, result: Any) -> float:
    scale, unit = st.time_unit(result.duration)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_xlim(0, result.duration / scale)
    return scale


def backdrop(ax: Axes, result: Any, scale: float) -> None:
    """Warm-up and incidents behind the data of an over-time plot."""
    st.shade_warmup(ax, result.warmup, scale, getattr(result, "warmup_auto", None) is not None)
    st.shade_incidents(ax, result.incidents, result.duration, scale)


def over_time(ax: Axes, result: Any, ylabel: str) -> float:
    """Set up an over-time plot: the time axis, warm-up and incidents behind, the y label;
    returns the time scale (seconds per axis unit)."""
    scale = time_axis(ax, result)
    backdrop(ax, result, scale)
    ax.set_ylabel(ylabel)
    return scale


def window_seconds(result: Any, window: float | None) -> float:
    return float(window) if window else st.nice_window(result.duration)


def metric_frame(result: Any, name: str) -> pd.DataFrame:
    ts = result.timeseries
    if len(ts) == 0:
        return ts
    return ts[ts["metric"] == name]


def service_names(result: Any) -> list[str]:
    G = getattr(result, "graph", None)
    if G is not None:
        return [n for n, k in G.nodes(data="kind", default="service") if k == "service"]
    return list(pd.unique(result.timeseries["service"].astype(str)))


def set_subtitle(ax: Axes, text: str) -> None:
    ax.text(0.0, 1.0, text, transform=ax.transAxes, ha="left", va="bottom", fontsize=11,
            color="#555555")


def set_title(ax: Axes, title: str, result: Any, note: str | None = None) -> None:
    ax.set_title(f"{title} — {getattr(result, 'name', 'run')}", pad=22 if note else 8)
    if note:
        set_subtitle(ax, note)


# -- latency ------------------------------------------------------------------------------------
MAX_POINTS = 150  # samples per line above which a per-replica series is averaged per window


def sample_window(result: Any, metric: str) -> float | None:
    """The averaging window for per-replica lines, or None to draw every sample."""
    data = metric_frame(result, metric)
    if len(data) == 0:
        return None
    per_line = len(data) / max(1, data.groupby(["service", "instance"], observed=True).ngroups)
    if per_line <= MAX_POINTS:
        return None
    return st.nice_window(result.duration, bins=100)


def per_replica(result: Any, ax: Axes, metric: str, factor: float, services: Sequence[str] | None,
                 drawstyle: str = "default", band: str = "max") -> dict[str, str]:
    """One line per replica, one colour per service; returns service → colour.

    Long runs are averaged per window (:func:`sample_window`), the window's maximum (or its
    min–max range, ``band="range"``) shaded behind the line, so that spikes stay visible.
    """
    data = metric_frame(result, metric)
    names = list(services) if services else service_names(result)
    colours: dict[str, str] = {}
    scale, _ = st.time_unit(result.duration)
    window = sample_window(result, metric)
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


def sampling_note(result: Any, metric: str, band: str = "max") -> str:
    window = sample_window(result, metric)
    if window is None:
        return ""
    shade = "its maximum" if band == "max" else "its range"
    return f"; mean per {fmt_duration(window)} window, shaded: {shade}"


def replica_note(result: Any, names: Sequence[str]) -> str:
    G = getattr(result, "graph", None)
    if G is None:
        return "one line per replica"
    counts = [int(G.nodes[n].get("replicas", 1)) for n in names if n in G]
    return "one line per replica" if any(c > 1 for c in counts) else "one line per service"
