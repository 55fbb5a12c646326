"""Polling versus WebSockets as bar charts: one panel per figure of a
:func:`simsys.websocket_compare.compare_delivery` table, in the units its text form uses."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..formatting import fmt_number
from ..websocket_compare import COLUMNS, shown_unit, titled
from . import style as st


def plot_polling_vs_websocket(table: Any, ax: Any = None) -> Any:
    """Bar charts of a :func:`compare_delivery` table, one panel per column.

    With ``ax=None`` a new figure gets one panel per column; pass an array of axes (one per
    column) to draw into your own figure. Returns the axes.
    """
    import matplotlib.pyplot as plt

    columns = [c for c in table.columns if table[c].notna().any()]
    if ax is None:
        ncols = min(4, len(columns))
        nrows = math.ceil(len(columns) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 3.0 * nrows), squeeze=False,
                                 layout="constrained")
        axes = axes.ravel()
        for extra in axes[len(columns):]:
            extra.set_visible(False)
    else:
        axes = np.atleast_1d(ax).ravel()
        if len(axes) < len(columns):
            raise ValueError(f"expected {len(columns)} axes (one per column), got {len(axes)}")
    labels = table.attrs.get("labels", COLUMNS)
    colours = [st.colour(i) for i in range(len(table))]
    with st.style():
        for a, col in zip(axes, columns, strict=False):
            raw = table[col].to_numpy(dtype=float)
            scale, unit = shown_unit(col, raw)
            values = raw * scale
            a.bar(range(len(values)), np.nan_to_num(values), color=colours, width=0.65)
            a.set_xticks(range(len(values)), [str(x) for x in table.index], rotation=20,
                         ha="right")
            a.set_title(titled(labels.get(col, col), unit), fontsize=10, loc="left")
            a.grid(axis="x", visible=False)
            a.set_ylim(0, np.nanmax(np.append(values, 0.0)) * 1.18 or 1.0)
            for x, v in enumerate(values):
                if not math.isnan(v):
                    a.annotate(fmt_number(v), (x, v), ha="center", va="bottom", fontsize=9)
    return axes
