"""Plots of a comparison: variants side by side, each figure with its confidence interval.

``comparison.plot`` is a :class:`ComparisonPlots`. It reads only the comparison's ``runs``
(one row per run: ``variant``, ``replication``, flattened summary figures), ``variants``,
``latencies`` and ``table()``; it never runs a simulation. Each method takes ``ax=`` and returns
the Axes it drew on (``dashboard``: the Figure). Latencies are in milliseconds, memory in MB
(10⁶ bytes), shares in percent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..formatting import column_header, fmt_mean_pm, fmt_number, metric_label
from . import style as st
from .style import style

LATENCY_MARKS = (50, 90, 99, 99.9)


def _subtitle(ax: Axes, text: str) -> None:
    ax.text(0.0, 1.0, text, transform=ax.transAxes, ha="left", va="bottom", fontsize=11,
            color="#555555")


class ComparisonPlots:
    """``comparison.plot``: side-by-side figures of a :class:`~simsys.Comparison`.

    Examples
    --------
    >>> c = simsys.compare({"monolith": "shop-monolith.yaml",
    ...                     "microservices": "shop-microservices.yaml"})   # doctest: +SKIP
    >>> c.plot.latency_cdf(); c.plot.availability(); c.plot.dashboard()  # doctest: +SKIP
    """

    def __init__(self, comparison: Any):
        self.comparison = comparison

    def __repr__(self) -> str:
        return "<ComparisonPlots: latency_cdf, latency, metric, availability, error_rate, memory, cost, dashboard>"

    @property
    def variants(self) -> list[str]:
        return list(self.comparison.variants)

    def _note(self) -> str:
        c = self.comparison
        return (f"{c.replications} replications each, same seeds; bars and whiskers: mean and "
                f"{c.confidence:.0%} CI")

    # -- latency distribution ---------------------------------------------------------------
    def latency_cdf(self, ax: Axes | None = None,
                    percentiles: Sequence[float] = LATENCY_MARKS) -> Axes:
        """Latency of ok requests after warm-up, one CDF per variant, overlaid (log x, ms);
        all replications pooled."""
        with style():
            ax = st.new_axes(ax)
            ax.set_title("Latency distribution", pad=22)
            _subtitle(ax, "ok requests after warm-up, all replications pooled; marks at "
                      + ", ".join(f"p{p:g}" for p in percentiles))
            drawn = 0
            rows = []
            for i, v in enumerate(self.variants):
                lat = np.sort(np.asarray(self.comparison.latencies.get(v, []), dtype=float)) * 1e3
                if len(lat) == 0:
                    continue
                lat = np.maximum(lat, 1e-6)
                n = len(lat)
                if n > 4000:  # a few thousand points; keep the tail exact
                    q = np.unique(np.concatenate([np.linspace(0, 0.99, 2000),
                                                  1 - np.geomspace(1e-2, 1 / n, 2000), [1.0]]))
                    x, y = np.quantile(lat, q), q
                else:
                    x, y = lat, np.arange(1, n + 1) / n
                colour = st.colour(i)
                ax.plot(x, y, color=colour, label=v)
                marks = np.percentile(lat, list(percentiles))
                ax.plot(marks, np.asarray(percentiles) / 100, "o", color=colour, ms=5, zorder=5)
                rows.append(f"{v}: " + ", ".join(f"p{p:g} {m:.3g}" for p, m in
                                                 zip(percentiles, marks, strict=True)) + " ms")
                drawn += 1
            if not drawn:
                return st.empty_state(ax, "No successful requests after warm-up:\nnothing to draw.")
            ax.set_xscale("log")
            st.plain_log_axis(ax.xaxis)
            ax.set_ylim(0, 1.05)
            ax.set_xlabel("latency (ms, log scale)")
            ax.set_ylabel("fraction of requests ≤ latency")
            ax.text(0.99, 0.03, "\n".join(rows), transform=ax.transAxes, ha="right", va="bottom",
                    fontsize=9, family="monospace",
                    bbox={"boxstyle": "round", "fc": "white", "ec": "#CCCCCC", "alpha": 0.9})
            st.legend(ax, outside=False, loc="upper left")
            return ax

    # -- one figure per variant -------------------------------------------------------------
    def metric(self, metric: str, ax: Axes | None = None, *, title: str | None = None,
               kind: str = "bar") -> Axes:
        """``metric`` per variant: mean with its confidence interval as whiskers, and under
        each later variant its paired difference from the first.

        ``kind="bar"`` draws bars from zero; ``"point"`` draws dots on a zoomed axis, for
        figures near a bound such as availability.
        """
        _, factor, unit = metric_label(metric)
        t = self.comparison.table([metric]).loc[metric]
        variants = self.variants
        with style():
            ax = st.new_axes(ax, figsize=(max(5.0, 1.8 * len(variants) + 2.5), 4.5))
            ax.set_title(title or metric, pad=22)
            _subtitle(ax, self._note())
            xs = np.arange(len(variants))
            means = np.array([t[(v, "mean")] for v in variants], dtype=float) * factor
            lows = np.array([t[(v, "ci_low")] for v in variants], dtype=float) * factor
            highs = np.array([t[(v, "ci_high")] for v in variants], dtype=float) * factor
            halves = (highs - lows) / 2  # the table's ± (before clipping), for the labels
            if unit == "%":  # a share's interval stops at its bounds
                lows, highs = np.clip(lows, 0.0, 100.0), np.clip(highs, 0.0, 100.0)
            if not np.isfinite(means).any():
                return st.empty_state(ax, f"No values of {metric}.")
            err = np.vstack([np.where(np.isfinite(lows), means - lows, 0.0),
                             np.where(np.isfinite(highs), highs - means, 0.0)])
            colours = [st.colour(i) for i in range(len(variants))]
            if kind == "bar":
                ax.bar(xs, np.nan_to_num(means), color=colours, width=0.6, alpha=0.85)
                ax.errorbar(xs, means, yerr=err, fmt="none", ecolor=st.BLACK, capsize=6, lw=1.5)
            else:
                for x, m, e0, e1, c in zip(xs, means, err[0], err[1], colours, strict=True):
                    ax.errorbar([x], [m], yerr=[[e0], [e1]], fmt="o", color=c, ms=9, capsize=6, lw=2)
                ax.set_xlim(-0.6, len(variants) - 0.4)
            top = np.nanmax(np.where(np.isfinite(highs), highs, means))
            bottom = np.nanmin(np.where(np.isfinite(lows), lows, means))
            span = (top - min(bottom, 0.0 if kind == "bar" else bottom)) or abs(top) or 1.0
            for x, m, h, half in zip(xs, means, highs, halves, strict=True):
                y = h if math.isfinite(h) else m
                ax.annotate(fmt_mean_pm(m, half), (x, y), xytext=(0, 4), textcoords="offset points",
                            ha="center", va="bottom", fontsize=11, fontweight="bold")
            labels = []
            for i, v in enumerate(variants):
                if i == 0:
                    labels.append(f"{v}\n(baseline)")
                    continue
                d, dl, dh = (t[(v, s)] * factor for s in ("diff", "diff_low", "diff_high"))
                sign = "+" if d > 0 else ""
                ci = f"\n[{fmt_number(dl)}, {fmt_number(dh)}]" if math.isfinite(dl) else ""
                labels.append(f"{v}\nΔ {sign}{fmt_number(d)}{ci}")
            ax.set_xticks(xs, labels)
            ax.set_ylabel(column_header(metric))
            if kind == "bar":
                ax.set_ylim(min(0.0, bottom - 0.05 * span), top + 0.15 * span)
            else:
                ax.set_ylim(bottom - 0.15 * span, top + 0.2 * span)
            ax.grid(axis="x", visible=False)
            return ax

    def latency(self, ax: Axes | None = None,
                metrics: Sequence[str] = ("latency.mean", "latency.p50", "latency.p99")) -> Axes:
        """Several latency figures, grouped bars per variant with confidence intervals (ms)."""
        t = self.comparison.table(list(metrics))
        variants = self.variants
        with style():
            ax = st.new_axes(ax)
            ax.set_title("Latency", pad=22)
            _subtitle(ax, self._note())
            width = 0.8 / max(1, len(variants))
            xs = np.arange(len(metrics))
            for i, v in enumerate(variants):
                m = t[(v, "mean")].to_numpy(float) * 1e3
                lo = t[(v, "ci_low")].to_numpy(float) * 1e3
                hi = t[(v, "ci_high")].to_numpy(float) * 1e3
                pos = xs + (i - (len(variants) - 1) / 2) * width
                ax.bar(pos, np.nan_to_num(m), width=width * 0.95, color=st.colour(i), label=v, alpha=0.85)
                err = np.vstack([np.where(np.isfinite(lo), m - lo, 0), np.where(np.isfinite(hi), hi - m, 0)])
                ax.errorbar(pos, m, yerr=err, fmt="none", ecolor=st.BLACK, capsize=4, lw=1.2)
            ax.set_xticks(xs, [m.split(".", 1)[-1] for m in metrics])
            ax.set_ylabel("latency (ms)")
            ax.grid(axis="x", visible=False)
            st.legend(ax, outside=False, loc="upper left")
            return ax

    def availability(self, ax: Axes | None = None) -> Axes:
        """The share of requests answered ok, per variant, with its interval (zoomed)."""
        return self.metric("availability", ax=ax, title="Availability (requests answered ok)",
                           kind="point")

    def error_rate(self, ax: Axes | None = None) -> Axes:
        """The share of requests not answered ok, per variant, with its interval."""
        return self.metric("error_rate", ax=ax, title="Error rate")

    def memory(self, ax: Axes | None = None) -> Axes:
        """Peak memory of all replicas together, per variant (MB)."""
        return self.metric("memory.peak", ax=ax, title="Memory, all replicas (peak)")

    def cost(self, ax: Axes | None = None) -> Axes:
        """Cost of the run (replica-hours × price), per variant."""
        return self.metric("cost", ax=ax, title="Cost (replica-hours × price)")

    def dashboard(self, fig: Figure | None = None) -> Figure:
        """Latency distribution and figures, availability, error rate, memory and cost."""
        with style():
            fig = st.new_figure(fig, figsize=(18, 15))
            grid = fig.add_gridspec(3, 2)
            self.latency_cdf(ax=fig.add_subplot(grid[0, 0]))
            self.latency(ax=fig.add_subplot(grid[0, 1]))
            self.availability(ax=fig.add_subplot(grid[1, 0]))
            self.error_rate(ax=fig.add_subplot(grid[1, 1]))
            self.memory(ax=fig.add_subplot(grid[2, 0]))
            self.cost(ax=fig.add_subplot(grid[2, 1]))
            fig.suptitle(" vs ".join(self.variants), fontsize=20, fontweight="bold", x=0.01,
                         ha="left")
            return fig
