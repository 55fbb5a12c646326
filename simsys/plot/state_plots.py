"""Plots of one run's sampled state: memory, queues, connections, circuit breakers and replicas
over time (see :mod:`.result_plots`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from . import style as st
from .run_axes import (
    metric_frame,
    over_time,
    per_replica,
    replica_note,
    sampling_note,
    service_names,
    set_title,
)
from .style import style


def memory(result: Any, ax: Axes | None = None, services: Sequence[str] | None = None) -> Axes:
    """Memory of each replica over time (MB); a dashed line marks ``memory.limit`` where set."""
    with style():
        ax = st.new_axes(ax)
        names = list(services) if services else service_names(result)
        set_title(ax, "Memory per replica", result,
                  replica_note(result, names) + sampling_note(result, "memory", "range"))
        over_time(ax, result, "memory (MB)")
        if len(metric_frame(result, "memory")) == 0:
            return st.empty_state(ax, "No memory samples in this run.")
        colours = per_replica(result, ax, "memory", 1e-6, names, drawstyle="steps-post",
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
        names = list(services) if services else service_names(result)
        set_title(ax, "Queue length per replica", result,
                  replica_note(result, names) + ", requests waiting for a worker"
                  + sampling_note(result, "queue_length"))
        over_time(ax, result, "requests waiting")
        data = metric_frame(result, "queue_length")
        if len(data) == 0:
            return st.empty_state(ax, "No queue samples in this run.")
        per_replica(result, ax, "queue_length", 1.0, names, drawstyle="steps-post")
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
        data = metric_frame(result, "connections")
        set_title(ax, "Open WebSocket connections", result,
                  ("one line per replica" + sampling_note(result, "connections", "range"))
                  if len(data) else None)
        if len(data) == 0:
            return st.empty_state(
                ax, "No WebSocket connections recorded in this run\n"
                    "(no service accepts WebSockets, or no client opened one).")
        present = set(data["service"].astype(str))
        names = [n for n in (services or service_names(result)) if n in present]
        over_time(ax, result, "open connections")
        per_replica(result, ax, "connections", 1.0, names, drawstyle="steps-post",
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
        opened = metric_frame(result, "breakers_open")
        half = metric_frame(result, "breakers_half_open")
        set_title(ax, "Circuit breakers", result,
                  "breakers guarding calls to each service: open (solid), half open (dashed), "
                  "trial calls (▼)" if len(opened) else None)
        if len(opened) == 0:
            return st.empty_state(ax, "No circuit breakers in this run\n"
                                      "(no call has a circuit_breaker).")
        present = list(pd.unique(opened["service"].astype(str)))
        names = [n for n in (services or service_names(result)) if n in present]
        scale = over_time(ax, result, "breakers")
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
        launched = metric_frame(result, "replicas")
        set_title(ax, "Autoscaling", result,
                  "replicas launched (solid, billed) and serving (dotted, sampled)"
                  if len(launched) else None)
        if len(launched) == 0:
            return st.empty_state(ax, "No autoscaling in this run\n(no service has autoscale).")
        present = list(pd.unique(launched["service"].astype(str)))
        names = [n for n in (services or service_names(result)) if n in present]
        scale = over_time(ax, result, "replicas")
        serving = metric_frame(result, "serving")
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
