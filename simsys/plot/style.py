"""The look every simsys plot shares: Okabe–Ito colours, slide-sized text, labelled units.

Okabe & Ito's eight colours stay distinguishable under the common colour-vision deficiencies.
Plots create their figure inside :func:`style` so text is readable on a projected slide, and
never call ``plt.show()``: in a script with the Agg backend they only draw.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# Okabe–Ito, https://jfly.uni-koeln.de/color/
BLACK = "#000000"
ORANGE = "#E69F00"
SKY_BLUE = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#8C8C8C"
# Cycle order: strongest contrasts on white first; yellow last (weak on white).
PALETTE = [BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY_BLUE, BLACK, YELLOW]

STATUS_COLOURS = {"ok": GREEN, "rejected": ORANGE, "timeout": PURPLE, "error": VERMILLION,
                  "dropped": SKY_BLUE, "degraded": YELLOW}
INCIDENT_COLOUR = VERMILLION
WARMUP_COLOUR = "#DDDDDD"

RC: dict[str, Any] = {
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "axes.titlesize": 15,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 13,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#E5E5E5",
    "grid.linewidth": 0.8,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 11,
    "legend.frameon": False,
    "lines.linewidth": 2.0,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
}
FIGSIZE = (9.0, 5.0)


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Matplotlib settings of simsys plots, for the duration of one drawing."""
    with mpl.rc_context(RC):
        yield


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


_DETACHED: contextvars.ContextVar[bool] = contextvars.ContextVar("simsys_detached", default=False)


@contextlib.contextmanager
def detached() -> Iterator[None]:
    """New figures made inside are plain :class:`~matplotlib.figure.Figure` objects with an Agg
    canvas: pyplot never sees them, so nothing is shown or kept alive, in any thread."""
    token = _DETACHED.set(True)
    try:
        yield
    finally:
        _DETACHED.reset(token)


def _figure(figsize: tuple[float, float]) -> Figure:
    if _DETACHED.get():
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig = Figure(figsize=figsize, layout="constrained")
        FigureCanvasAgg(fig)
        return fig
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize, layout="constrained")


def new_axes(ax: Axes | None, figsize: tuple[float, float] = FIGSIZE) -> Axes:
    """``ax`` itself, or the axes of a new figure (a pyplot one, shown by notebooks)."""
    if ax is not None:
        return ax
    return _figure(figsize).add_subplot()


def new_figure(fig: Figure | None, figsize: tuple[float, float]) -> Figure:
    return fig if fig is not None else _figure(figsize)


def empty_state(ax: Axes, message: str) -> Axes:
    """Say in the axes why there is nothing to draw, instead of an empty frame."""
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", fontsize=13,
            color="#555555", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    return ax


def time_unit(duration: float) -> tuple[float, str]:
    """(divisor, unit) for a simulated-time axis spanning ``duration`` seconds."""
    if duration > 3 * 3600:
        return 3600.0, "h"
    if duration > 20 * 60:
        return 60.0, "min"
    return 1.0, "s"


NICE_STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900,
              1800, 3600, 7200, 21600, 43200, 86400)


def nice_window(span: float, bins: int = 40) -> float:
    """A round window length (seconds) giving about ``bins`` windows over ``span``."""
    target = span / bins if span > 0 else 1.0
    for step in NICE_STEPS:
        if step >= target:
            return float(step)
    return float(10 ** math.ceil(math.log10(target)))


def window_edges(t0: float, t1: float, window: float) -> np.ndarray:
    n = max(1, int(math.ceil((t1 - t0) / window - 1e-9)))
    return t0 + window * np.arange(n + 1)


def shade_warmup(ax: Axes, warmup: float, scale: float, auto: bool = False) -> None:
    if warmup > 0:
        ax.axvspan(0, warmup / scale, color=WARMUP_COLOUR, alpha=0.6, lw=0, zorder=0,
                   label="warm-up, MSER-5 (not in summary)" if auto
                   else "warm-up (not in summary)")


def shade_incidents(ax: Axes, incidents: Any, end: float, scale: float,
                    label: str = "instance down") -> int:
    """Shade failed_at → recovered_at (or the end of the run) of every incident; returns count."""
    if incidents is None or len(incidents) == 0:
        return 0
    failed = np.asarray(incidents["failed_at"], dtype=float)
    recovered = np.asarray(incidents["recovered_at"], dtype=float)
    n = 0
    for f, r in zip(failed, recovered, strict=True):
        if not math.isfinite(f):
            continue
        r = end if not math.isfinite(r) else r
        ax.axvspan(f / scale, max(r, f) / scale, color=INCIDENT_COLOUR, alpha=0.15, lw=0,
                   zorder=0, label=label if n == 0 else None)
        n += 1
    return n


def legend(ax: Axes, outside: bool = True, **kw: Any) -> None:
    """A legend; by default right of the axes, where it never hides data."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    if outside:
        kw = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0, **kw}
    ax.legend(**{"loc": "best", **kw})


def plain_log_axis(axis: Any) -> None:
    """Log-scale ticks at 1, 2, 5 × 10ⁿ written as plain numbers (20, 50, 100), not 2×10¹."""
    import math

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def label(value: float, _: object) -> str:
        # Over more than three decades, 2 and 5 labels would run into each other: keep the
        # powers of ten (the ticks stay, unlabelled).
        low, high = sorted(axis.get_view_interval())
        if low > 0 and high / low > 1e3 and value > 0:
            mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9)
            if abs(mantissa - 1.0) > 1e-6:
                return ""
        return f"{value:,.10g}"

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(label))
    axis.set_minor_formatter(NullFormatter())


def luminance(rgba: tuple[float, ...]) -> float:
    r, g, b = rgba[:3]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
