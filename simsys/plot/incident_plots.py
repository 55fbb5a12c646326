"""Plots of one run's incidents: the timeline of failures and recoveries per replica, and the
spread of recovery times (see :mod:`.result_plots`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..formatting import fmt_duration
from . import style as st
from .run_axes import service_names, set_title, time_axis
from .style import style


def _instances(result: Any) -> list[tuple[str, int]]:
    G = getattr(result, "graph", None)
    rows: list[tuple[str, int]] = []
    if G is not None:
        for n in service_names(result):
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
        set_title(ax, "Incidents per instance", result,
                  f"{len(inc)} failure(s); bars run from failure through detection to recovery")
        scale = time_axis(ax, result)
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
        set_title(ax, "Time to recover", result,
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
