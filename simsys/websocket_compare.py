"""Polling versus WebSockets, side by side: the comparison a teacher wants, as a table to read
(:func:`delivery_text`) and as bar charts (:func:`simsys.plot.plot_polling_vs_websocket`). The
``websockets`` summary block and the delivered messages are in :mod:`simsys.websocket_figures`.

>>> import simsys                                                         # doctest: +SKIP
>>> from simsys.websocket_compare import compare_delivery
>>> from simsys.plot import plot_polling_vs_websocket
>>> ws = simsys.run("scenarios/chat-websocket.yaml")                      # doctest: +SKIP
>>> poll = simsys.run("scenarios/chat-polling.yaml")                      # doctest: +SKIP
>>> table = compare_delivery(ws, poll)                                    # doctest: +SKIP
>>> plot_polling_vs_websocket(table)                                      # doctest: +SKIP

Counts are taken after the warm-up, from counters kept in bins of 0.1 s. Delivery latencies are
those of every message in exact runs and of a random sample in aggregate ones
(``websocket.latency_sample``); both are unbiased estimates of the latency distribution.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .formatting import fmt_number

COLUMNS = {
    "delivery_mean": "delivery latency, mean (s)",
    "delivery_p99": "delivery latency, p99 (s)",
    "requests_per_s": "HTTP requests/s at the servers",
    "frames_per_s": "WebSocket frames/s at the servers",
    "bytes_per_s": "bytes/s on the wire",
    "bytes_per_message": "bytes on the wire per message delivered",
    "memory_mean": "server memory, mean (bytes)",
    "connections_mean": "open connections, mean",
}


def compare_delivery(*results: Any, names: list[str] | None = None) -> Any:
    """One row per run: how server messages reached the clients and what it cost.

    Parameters
    ----------
    results
        :class:`~simsys.Result` objects (or saved runs, or summary dicts) of runs that carry the
        same messages, e.g. ``scenarios/chat-websocket.yaml`` and ``chat-polling.yaml``.
    names
        Row labels; default: each run's scenario name.

    Returns
    -------
    pandas.DataFrame
        Columns ``delivery_mean, delivery_p99`` (seconds), ``requests_per_s`` (HTTP requests
        the servers handled: polls, posted messages, upgrades), ``frames_per_s`` (WebSocket
        messages), ``bytes_per_s`` (headers, payloads, frame headers and heartbeats),
        ``bytes_per_message`` (per message delivered to a client), ``memory_mean`` (bytes, all
        replicas) and ``connections_mean`` (open WebSocket connections and held long polls).
        ``DataFrame.attrs["labels"]`` has readable column titles.
    """
    import pandas as pd

    rows = []
    labels = []
    for i, r in enumerate(results):
        s = r if isinstance(r, dict) else r.summary()
        ws = s.get("websockets") or {}
        frames = ws.get("message_rate", 0.0) if not ws.get("polls") else 0.0
        delivered = ws.get("messages_to_clients") or 0
        rows.append({
            "delivery_mean": ws.get("delivery_mean"),
            "delivery_p99": ws.get("delivery_p99"),
            "requests_per_s": ws.get("http_request_rate", 0.0),
            "frames_per_s": frames,
            "bytes_per_s": ws.get("bytes_per_s", 0.0),
            "bytes_per_message": (ws.get("bytes", 0.0) / delivered) if delivered else math.nan,
            "memory_mean": ws.get("server_memory_mean"),
            "connections_mean": ws.get("mean_connections", 0.0),
        })
        labels.append(names[i] if names else s.get("name", f"run{i}"))
    table = pd.DataFrame(rows, index=pd.Index(labels, name="run"), dtype=float)
    table.attrs["labels"] = dict(COLUMNS)
    return table


def shown_unit(column: str, values: Any) -> tuple[float, str]:
    """``(scale, unit)`` a :func:`compare_delivery` column is drawn in: latencies in ms, sizes
    and byte rates in decimal units (KB, MB, GB = 10³, 10⁶, 10⁹ bytes) picked by the largest
    value, counts per second as they are."""
    if column.startswith("delivery"):
        return 1e3, "ms"
    if column.startswith("bytes") or column.startswith("memory"):
        peak = float(np.nanmax(np.abs(np.append(np.asarray(values, dtype=float), 0.0))))
        per = "/s" if column.endswith("_per_s") else ""
        for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
            if peak >= size:
                return 1 / size, unit + per
        return 1.0, "B" + per
    return 1.0, ""  # counts per second: the title says "/s"


def titled(label: str, unit: str) -> str:
    """A column's label with the unit it is shown in (the label's base unit dropped)."""
    label = label.replace(" (s)", "").replace(" (bytes)", "")
    return f"{label} ({unit})" if unit else label


def delivery_text(table: Any) -> Any:
    """A :func:`compare_delivery` table to read: one row per figure, in the units the bar chart
    uses (ms, KB/MB), three significant digits, the unit in the row's label."""
    import pandas as pd

    labels = table.attrs.get("labels", COLUMNS)
    rows = {}
    for col in table.columns:
        scale, unit = shown_unit(col, table[col].to_numpy(dtype=float))
        rows[titled(labels.get(col, col), unit)] = [fmt_number(v * scale) for v in table[col]]
    return pd.DataFrame(rows, index=table.index).T
