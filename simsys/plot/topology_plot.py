"""The system's graph: services as boxes laid out left to right along the calls.

Before a run (a graph or a scenario) boxes show replicas and workers; after a run (a
:class:`~simsys.Result`) they are coloured by utilisation and say each service's availability.
"""

from __future__ import annotations

from typing import Any

import matplotlib as mpl
import networkx as nx
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize

from . import style as st
from .style import style

UTIL_CMAP = "YlOrRd"  # sequential, readable with colour-vision deficiencies


def _graph_of(obj: Any) -> tuple[nx.DiGraph, dict[str, Any] | None, str]:
    """(graph, summary or None, name) from a Result, a loaded run, a graph or a scenario."""
    if isinstance(obj, nx.DiGraph):
        return obj, None, str(obj.graph.get("name", "scenario"))
    G = getattr(obj, "graph", None)
    if isinstance(G, nx.DiGraph):
        summary = obj.summary() if callable(getattr(obj, "summary", None)) else None
        return G, summary, str(getattr(obj, "name", G.graph.get("name", "run")))
    from ..topology import build_graph

    G = build_graph(obj)
    return G, None, str(G.graph.get("name", "scenario"))


def _layout(G: nx.DiGraph) -> dict[Any, np.ndarray]:
    """Columns by call depth (clients first); each node level with the callers it serves."""
    try:
        layers = list(nx.topological_generations(G))
    except nx.NetworkXUnfeasible:  # a cycle: fall back to a spring layout
        return nx.spring_layout(G, seed=1)
    index = {n: i for i, n in enumerate(G.nodes)}
    pos: dict[Any, np.ndarray] = {}
    for x, layer in enumerate(layers):
        if x == 0:
            order = sorted(layer, key=index.__getitem__)  # the scenario file's order
            want = [(len(order) - 1) / 2 - k for k in range(len(order))]
        else:
            def barycentre(n: Any) -> float:
                ys = [pos[p][1] for p in G.predecessors(n) if p in pos]
                return float(np.mean(ys)) if ys else 0.0

            order = sorted(layer, key=lambda n: (-barycentre(n), index[n]))
            want = [barycentre(n) for n in order]
        ys = _spread(want)
        for node, y in zip(order, ys, strict=True):
            pos[node] = np.array([float(x), y])
    return pos


def _spread(want: list[float], gap: float = 1.0) -> list[float]:
    """Positions as close to ``want`` (descending) as possible, at least ``gap`` apart."""
    ys = list(want)
    for k in range(1, len(ys)):
        ys[k] = min(ys[k], ys[k - 1] - gap)
    shift = (sum(want) - sum(ys)) / len(ys) if ys else 0.0  # re-centre on the wanted mean
    return [y + shift for y in ys]


def _label(G: nx.DiGraph, node: Any, summary: dict[str, Any] | None) -> str:
    data = G.nodes[node]
    if data.get("kind") == "client":
        w = data.get("workload")
        name = str(node).split(":", 1)[-1]
        rate = getattr(w, "rate", None)
        users = getattr(w, "users", None)
        kind = getattr(w, "type", "")
        detail = (f"{rate:g}/s {kind}" if rate else f"{users} users" if users else kind)
        return f"{name}\n{detail}".strip()
    replicas = int(data.get("replicas", 1))
    workers = int(data.get("workers", 1))
    lines = [str(node), f"{replicas} × {workers} worker{'s' if workers != 1 else ''}"]
    svc = (summary or {}).get("services", {}).get(node)
    if svc:
        from ..formatting import fmt_pct

        util = svc.get("utilization")
        avail = svc.get("availability")
        if util is not None:
            lines.append(f"util {fmt_pct(util, 0)}")
        if avail is not None:
            lines.append(f"avail {fmt_pct(avail, 2)}")
    return "\n".join(lines)


def topology(obj: Any, ax: Axes | None = None, utilization: bool = True) -> Axes:
    """Draw the services and calls of a scenario or run.

    Parameters
    ----------
    obj
        A :class:`~simsys.Result` (boxes coloured by utilisation, availability annotated), a
        graph from :func:`simsys.build_graph`, or anything :func:`simsys.build_graph` accepts.
    utilization
        Colour service boxes by utilisation when the run's summary is known.
    """
    G, summary, name = _graph_of(obj)
    with style():
        pos = _layout(G)
        columns = 1 + int(max((p[0] for p in pos.values()), default=0))
        rows = len({round(p[1], 3) for p in pos.values()}) or 1
        ax = st.new_axes(ax, figsize=(max(8.0, 3.0 * columns + 1.5), max(4.0, 1.5 * rows + 2)))
        xs = np.array([p[0] for p in pos.values()]) if pos else np.zeros(1)
        ys = np.array([p[1] for p in pos.values()]) if pos else np.zeros(1)
        norm = Normalize(0, 1)
        cmap = mpl.colormaps[UTIL_CMAP]
        coloured = utilization and summary is not None
        boxes = {}
        for node in G.nodes:
            x, y = pos[node]
            client = G.nodes[node].get("kind") == "client"
            if client:
                fc, ec = "#F2F2F2", st.GREY
            elif coloured:
                util = (summary or {}).get("services", {}).get(node, {}).get("utilization") or 0
                fc, ec = cmap(norm(util)), "#444444"
            else:
                fc, ec = "#DCEBF7", st.BLUE
            text_colour = "white" if not client and st.luminance(mpl.colors.to_rgba(fc)) < 0.45 \
                else "black"
            boxes[node] = ax.text(
                x, y, _label(G, node, summary if coloured else None), ha="center", va="center",
                fontsize=12, color=text_colour, zorder=3, linespacing=1.3,
                fontweight="normal",
                bbox={"boxstyle": "round,pad=0.6", "fc": fc, "ec": ec, "lw": 1.5,
                      "ls": "--" if client else "-"},
            )
        for box in boxes.values():
            # boxes are sized in points: never let them push the layout (it would collapse)
            box.set_in_layout(False)
        for u, v, data in G.edges(data=True):
            p = float(data.get("probability", 1.0))
            arrow = ax.annotate(
                "", xy=pos[v], xytext=pos[u], zorder=2,
                arrowprops={"arrowstyle": "-|>,head_length=0.7,head_width=0.35",
                            "color": "#333333", "lw": 1.6, "shrinkA": 2, "shrinkB": 2,
                            "patchA": boxes[u].get_bbox_patch(),
                            "patchB": boxes[v].get_bbox_patch(),
                            "connectionstyle": "arc3,rad=0.0",
                            "ls": "-" if p >= 1 else "--"},
            )
            arrow.set_in_layout(False)
            if p < 1:
                mid = (np.asarray(pos[u]) + np.asarray(pos[v])) / 2
                ax.annotate(f"{100 * p:g}% of calls", mid, xytext=(0, 6),
                            textcoords="offset points", ha="center", va="bottom", fontsize=11,
                            zorder=4).set_in_layout(False)
        ax.set_xlim(xs.min() - 0.6, xs.max() + 0.6)
        ax.set_ylim(ys.min() - 0.7, ys.max() + 0.7)
        ax.set_axis_off()
        title = f"Topology — {name}"
        ax.set_title(title, pad=24)
        note = ("boxes: replicas × workers; colour = utilisation (busy worker-time share)"
                if coloured else "boxes: replicas × workers per replica; arrows: calls")
        ax.text(0.0, 1.0, note + "; dashed arrow = called sometimes", transform=ax.transAxes,
                ha="left", va="bottom", fontsize=11, color="#555555")
        if coloured:
            sm = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
            cb = ax.figure.colorbar(sm, ax=ax, fraction=0.04, pad=0.02, shrink=0.8)
            cb.set_label("utilisation")
            cb.ax.yaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
        return ax
