"""Plots of a sweep: a figure's mean over replications against a grid key, with 95 % CI bands.

``sweep.plot`` is a :class:`SweepPlots`. It reads only ``sweep.runs`` (one row per run: grid
keys, ``replication``, ``status``, flattened summary figures such as ``latency.p99``) and
``sweep.grid_keys``, so a runs DataFrame read from ``runs.parquet`` works as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..display import grid_keys as _grid_keys
from ..formatting import metric_label
from ..stats import mean_interval
from . import style as st
from .style import style

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


class SweepPlots:
    """``sweep.plot``: figures of a sweep, each returning its Axes (``metrics``: the Figure).

    Parameters
    ----------
    sweep
        A :class:`~simsys.Sweep`, or its ``runs`` DataFrame.
    confidence
        Of the t intervals drawn as bands.

    Examples
    --------
    >>> sw.plot.metric("latency.p99", x="services.catalog.replicas")      # doctest: +SKIP
    >>> sw.plot.metric("error_rate", x="services.web.workers",
    ...                hue="chaos.monkey.mean_time_between_failures")      # doctest: +SKIP
    """

    def __init__(self, sweep: Any, confidence: float = 0.95):
        self.sweep = sweep
        self.confidence = confidence

    def __repr__(self) -> str:
        return "<SweepPlots: metric, metrics>"

    # -- data -----------------------------------------------------------------------------------
    @property
    def runs(self) -> pd.DataFrame:
        runs = getattr(self.sweep, "runs", self.sweep)
        return runs() if callable(runs) else runs

    @property
    def grid_keys(self) -> list[str]:
        return _grid_keys(self.sweep, self.runs)

    @property
    def name(self) -> str:
        scenario = getattr(self.sweep, "scenario", None)
        return str(scenario.get("name", "sweep")) if isinstance(scenario, Mapping) else "sweep"

    def _ok(self) -> pd.DataFrame:
        runs = self.runs
        if "status" in runs.columns:
            runs = runs[runs["status"].astype(str) == "ok"]
        return runs

    def _axes(self, x: str | None, hue: str | None) -> tuple[str | None, str | None]:
        keys = self.grid_keys
        if x is None and keys:
            x = keys[0]
        if hue is None and len(keys) > 1:
            rest = [k for k in keys if k != x]
            hue = rest[0] if len(rest) == 1 else None
        for name, key in (("x", x), ("hue", hue)):
            if key is not None and key not in self.runs.columns:
                raise KeyError(f"{name}={key!r} is not a column of the runs; grid keys are: "
                               f"{', '.join(keys) or 'none'}")
        return x, hue

    def _fixed(self, data: pd.DataFrame, x: str | None, hue: str | None,
               where: Mapping[str, Any] | None) -> pd.DataFrame:
        for key, value in (where or {}).items():
            data = data[data[key] == value]
        loose = [k for k in self.grid_keys if k not in (x, hue) and k not in (where or {})
                 and data[k].nunique(dropna=False) > 1]
        if loose:
            raise ValueError(
                f"grid key(s) {', '.join(loose)} vary but are neither x nor hue; fix them with "
                f"where={{{loose[0]!r}: value}} or choose them as hue")
        return data

    def summary(self, metric: str, x: str | None = None, hue: str | None = None,
                where: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """What :meth:`metric` draws: ``hue, x, n, mean, ci_low, ci_high`` per grid point."""
        x, hue = self._axes(x, hue)
        data = self._fixed(self._ok(), x, hue, where)
        if metric not in data.columns:
            figures = [c for c in self.runs.columns if "." in c or c in ("throughput", "error_rate")]
            raise KeyError(f"no figure {metric!r} in the runs; figures include: "
                           f"{', '.join(figures[:12])}")
        keys = [k for k in (hue, x) if k is not None]
        rows = []
        groups = data.groupby(keys, sort=True, dropna=False) if keys else [((), data)]
        for values, g in groups:
            values = values if isinstance(values, tuple) else (values,)
            i = mean_interval(pd.to_numeric(g[metric], errors="coerce").to_numpy(float),
                              self.confidence)
            mean, lo, hi = i.mean, i.low, i.high
            n = int(pd.to_numeric(g[metric], errors="coerce").notna().sum())
            rows.append({**dict(zip(keys, values, strict=True)), "n": n, "mean": mean,
                         "ci_low": lo, "ci_high": hi})
        return pd.DataFrame(rows)

    # -- drawing --------------------------------------------------------------------------------
    def metric(self, metric: str, x: str | None = None, hue: str | None = None,
               ax: Axes | None = None, where: Mapping[str, Any] | None = None,
               show_runs: bool = True, log_x: bool | None = None) -> Axes:
        """Mean of ``metric`` over replications against grid key ``x``, one line per ``hue``.

        Parameters
        ----------
        metric
            A figure of the runs: ``latency.p99``, ``throughput``, ``error_rate``,
            ``services.catalog.availability`` …
        x, hue
            Grid keys; by default the first grid key is ``x`` and the second, if any, ``hue``.
        where
            Values of the other grid keys, when there are more than two.
        show_runs
            Also draw each replication as a faint dot.
        log_x
            Log scale for a numeric ``x``; default when its values span more than 50×.
        """
        x, hue = self._axes(x, hue)
        table = self.summary(metric, x, hue, where)
        label, scale, unit = metric_label(metric)
        data = self._fixed(self._ok(), x, hue, where)
        with style():
            ax = st.new_axes(ax)
            conf = f"{100 * self.confidence:g}%"
            n_rep = table["n"].max() if len(table) else 0
            title = label if label[:2].lstrip("p").isdigit() else label[:1].upper() + label[1:]
            ax.set_title(f"{title} — {self.name}", pad=22)
            ax.text(0.0, 1.0, f"mean over replications (up to {n_rep} per point), band = "
                    f"{conf} confidence interval" + ("; dots = single runs" if show_runs else ""),
                    transform=ax.transAxes, ha="left", va="bottom", fontsize=11,
                    color="#555555")
            ax.set_ylabel(f"{label} ({unit})" if unit else label)
            if len(table) == 0:
                return st.empty_state(ax, f"No successful runs with {metric}.")
            if x is None:
                return self._no_grid(ax, data, metric, table, scale)
            xs_all = table[x]
            numeric = pd.api.types.is_numeric_dtype(xs_all) and not pd.api.types.is_bool_dtype(
                xs_all)
            if numeric:
                positions = {v: float(v) for v in sorted(pd.unique(xs_all))}
            else:
                positions = {v: float(i) for i, v in enumerate(_ordered(xs_all))}
            hues = list(_ordered(table[hue])) if hue is not None else [None]
            jitter_width = 0.0
            if numeric and len(positions) > 1:
                vals = np.array(sorted(positions.values()))
                jitter_width = float(np.min(np.diff(vals))) * 0.04
            elif not numeric:
                jitter_width = 0.04
            for i, h in enumerate(hues):
                t = table if h is None else table[table[hue] == h]
                t = t.assign(_pos=t[x].map(positions)).sort_values("_pos")
                colour = st.colour(i)
                lbl = None if h is None else str(h)  # the key is the legend's title
                px = t["_pos"].to_numpy(float)
                ax.plot(px, t["mean"].to_numpy(float) * scale, color=colour,
                        marker=MARKERS[i % len(MARKERS)], ms=7, label=lbl, zorder=3)
                lo, hi = t["ci_low"].to_numpy(float), t["ci_high"].to_numpy(float)
                if np.isfinite(lo).any():
                    ax.fill_between(px, lo * scale, hi * scale, color=colour, alpha=0.18, lw=0,
                                    zorder=2)
                if show_runs:
                    d = data if h is None else data[data[hue] == h]
                    dx = d[x].map(positions).to_numpy(float)
                    offset = (i - (len(hues) - 1) / 2) * jitter_width
                    ax.plot(dx + offset, pd.to_numeric(d[metric], errors="coerce") * scale, ".",
                            color=colour, alpha=0.35, ms=5, zorder=1)
            ax.set_xlabel(_short(x))
            if not numeric:
                ax.set_xticks(list(positions.values()), [str(v) for v in positions])
            else:
                values = np.array(sorted(positions.values()))
                span = values.max() / values.min() if values.min() > 0 else 0
                if log_x or (log_x is None and span > 50):
                    ax.set_xscale("log")
                    st.plain_log_axis(ax.xaxis)
                if len(values) <= 12:
                    ax.set_xticks(values, [f"{v:g}" for v in values])
            if unit == "%":
                top = float(np.nanmax(table[["mean", "ci_high"]].to_numpy(float))) * scale
                if top > 90:
                    ax.set_ylim(top=min(100.5, ax.get_ylim()[1]))
            if hue is not None:
                st.legend(ax, title=_short(hue))
            return ax

    def _no_grid(self, ax: Axes, data: pd.DataFrame, metric: str, table: pd.DataFrame,
                 scale: float) -> Axes:
        """No grid: each replication's value, with the mean and its interval."""
        values = pd.to_numeric(data[metric], errors="coerce").to_numpy(float) * scale
        reps = data["replication"].to_numpy() if "replication" in data else np.arange(len(values))
        ax.plot(reps, values, "o", color=st.BLUE, alpha=0.6, label="single runs")
        row = table.iloc[0]
        ax.axhline(row["mean"] * scale, color=st.BLACK, lw=2, label="mean")
        if np.isfinite(row["ci_low"]):
            ax.axhspan(row["ci_low"] * scale, row["ci_high"] * scale, color=st.BLUE, alpha=0.15,
                       lw=0, label=f"{100 * self.confidence:g}% CI")
        ax.set_xlabel("replication")
        st.legend(ax)
        return ax

    def metrics(self, metrics: Iterable[str] | None = None, x: str | None = None,
                hue: str | None = None, fig: Figure | None = None,
                where: Mapping[str, Any] | None = None, columns: int = 2) -> Figure:
        """Several figures side by side (default: throughput, error rate, p50/p99 latency and
        each service's availability), each as :meth:`metric` draws it."""
        names = list(metrics) if metrics is not None else self.headline()
        rows = max(1, -(-len(names) // columns))
        with style():
            fig = st.new_figure(fig, figsize=(9.0 * columns, 5.0 * rows))
            axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
            for ax, name in zip(axes, names, strict=False):
                self.metric(name, x=x, hue=hue, ax=ax, where=where)
            for ax in axes[len(names):]:
                ax.set_visible(False)
        return fig

    def headline(self) -> list[str]:
        """The figures :meth:`metrics` shows by default, those present in the runs."""
        cols = self.runs.columns
        base = ["throughput", "error_rate", "latency.p50", "latency.p99"]
        avail = [c for c in cols if str(c).startswith("services.")
                 and str(c).endswith(".availability")
                 and pd.to_numeric(self._ok()[c], errors="coerce").nunique() > 1]
        return [c for c in base if c in cols] + avail


def _ordered(values: Sequence[Any] | pd.Series) -> list[Any]:
    """Unique values in a natural order: numbers by value, anything else as first seen."""
    uniq = list(pd.unique(pd.Series(values)))
    try:
        return sorted(uniq)
    except TypeError:
        return uniq


def _short(key: str | None) -> str:
    """``services.catalog.replicas`` → ``catalog replicas``, ``workload.0.rate`` → ``workload
    rate`` (``workload.1.rate`` → ``workload #2 rate``): axis labels without the path."""
    if key is None:
        return ""
    parts = key.split(".")
    if parts[0] == "services" and len(parts) >= 3:
        parts = parts[1:]
    words = []
    for p in parts[-3:]:
        if p.isdigit():
            if p != "0" and words:
                words[-1] += f" #{int(p) + 1}"
            continue
        words.append(p.replace("_", " "))
    return " ".join(words)
