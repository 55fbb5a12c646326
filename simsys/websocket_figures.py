"""WebSockets and polling in a run's results: the ``websockets`` block of
:meth:`simsys.Result.summary` and the delivered messages as a table.

Counts are taken after the warm-up, from counters kept in bins of 0.1 s. Delivery latencies are
those of every message in exact runs and of a random sample in aggregate ones
(``websocket.latency_sample``); both are unbiased estimates of the latency distribution.
"""

from __future__ import annotations

from typing import Any

import numpy as np

COUNTS = ("attempts", "accepted", "blocked", "failed", "timeouts", "reconnects", "gave_up",
          "drops", "closes", "idle_closes")
CONTRACT = ("attempts", "accepted", "blocked", "peak_connections", "reconnects")


def _empty() -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(CONTRACT, 0)
    return out


def _sampled_peak(result: Any, warmup: float) -> float:
    """Most connections open at once at a sample time after ``warmup`` (all replicas): the
    per-bin peaks only see bins where the count changed, so a level held since before the
    warm-up ended would otherwise read as 0."""
    times, _, values = result.records.sampled("connections")
    keep = times >= warmup
    if not keep.any():
        return 0.0
    times, values = times[keep], values[keep]
    _, slot = np.unique(times, return_inverse=True)
    return float(np.bincount(slot, weights=values).max())


def websocket_summary(result: Any) -> dict[str, Any]:
    """The ``websockets`` block of :meth:`Result.summary`: flat, JSON-ready numbers.

    ``attempts, accepted, blocked, failed, timeouts, reconnects, gave_up`` count connection
    attempts (``reconnects``: those after a drop or a failed attempt); ``drops`` connections
    lost with their replica, ``closes``/``idle_closes`` ended by their lifetime or by the idle
    timeout. ``peak_connections`` and ``mean_connections`` count open connections (and held
    long polls); ``peak_reconnect_rate`` is the most reconnect attempts in any 0.1 s (or one
    aggregate step, if longer), per second. ``messages`` (``_to_clients``, ``_to_server``),
    ``message_rate``, ``bytes`` (headers, frames, heartbeats), ``bytes_per_s``;
    ``delivery_mean/p50/p99/max`` the delivery latency of server messages (seconds);
    ``polls``, ``empty_polls``, ``posts``, ``http_requests`` (polls, posts and upgrades) and
    ``http_request_rate``; ``ws_utilization`` of WebSocket workers; ``server_memory_mean``,
    the mean memory (bytes) of all replicas of the services involved, summed.
    """
    stats = result.records.stats.get("websockets")
    if not stats:
        return _empty()
    warmup, duration = float(result.warmup), float(result.duration)
    window = duration - warmup
    width = float(stats["bin"])
    b0 = int(round(warmup / width))
    parts = [*stats["pools"].values(), *stats["polling"].values()]
    total = {name: 0.0 for name in (*COUNTS, "to_clients", "to_server", "bytes", "polls",
                                     "empty_polls", "posts")}
    nbins = max(len(p["peak"]) for p in parts)
    peak = np.zeros(nbins)
    reconnects = np.zeros(nbins)
    area = busy = worker_time = 0.0
    step = width
    for p in parts:
        counts = p["counts"]
        for name in total:
            total[name] += float(counts[name][b0:].sum())
        peak[: len(p["peak"])] += p["peak"]
        reconnects[: len(counts["reconnects"])] += counts["reconnects"]
        area += p["area"]
        busy += p["busy_time"]
        worker_time += p["worker_time"]
        step = max(step, float(p.get("step", width)))
    group = max(1, int(round(step / width)))
    rec = reconnects[b0:]
    if group > 1 and len(rec):
        rec = np.add.reduceat(rec, np.arange(0, len(rec), group))
    held = _held(result, warmup)
    out: dict[str, Any] = {
        **{name: int(total[name]) for name in COUNTS},
        "peak_connections": int(max(peak[b0:].max() if len(peak[b0:]) else 0.0, held[1],
                                    _sampled_peak(result, warmup))),
        "mean_connections": area / window + held[0] if window > 0 else 0.0,
        "peak_reconnect_rate": float(rec.max() / (group * width)) if len(rec) else 0.0,
        "messages": int(total["to_clients"] + total["to_server"]),
        "messages_to_clients": int(total["to_clients"]),
        "messages_to_server": int(total["to_server"]),
        "message_rate": (total["to_clients"] + total["to_server"]) / window if window else 0.0,
        "bytes": float(total["bytes"]),
        "bytes_per_s": total["bytes"] / window if window else 0.0,
        "polls": int(total["polls"]),
        "empty_polls": int(total["empty_polls"]),
        "posts": int(total["posts"]),
        "http_requests": int(total["polls"] + total["posts"] + total["attempts"]),
        "http_request_rate": (total["polls"] + total["posts"] + total["attempts"]) / window
        if window else 0.0,
        "ws_utilization": busy / worker_time if worker_time else 0.0,
    }
    lat = _latencies(result, warmup)
    out["delivered"] = int(len(lat))
    if len(lat):
        p50, p99 = np.percentile(lat, [50, 99])
        out.update(delivery_mean=float(lat.mean()), delivery_p50=float(p50),
                   delivery_p99=float(p99), delivery_max=float(lat.max()))
    else:
        out.update(delivery_mean=None, delivery_p50=None, delivery_p99=None, delivery_max=None)
    out["server_memory_mean"] = _memory_mean(result, {p["service"] for p in parts}, warmup)
    return out


def _held(result: Any, warmup: float) -> tuple[float, float]:
    """Mean and peak over the samples of held long polls (connections minus WebSocket ones)."""
    stats = result.records.stats["websockets"]
    polls = [p for p in stats["polling"].values() if p.get("long")]
    if not polls:
        return 0.0, 0.0
    ts = result.timeseries
    services = {p["service"] for p in polls} - set(stats["pools"])
    if not services:
        return 0.0, 0.0
    rows = ts[(ts["metric"] == "connections") & ts["service"].isin(list(services))
              & (ts["time"] >= warmup)]
    if rows.empty:
        return 0.0, 0.0
    per_time = rows.groupby("time")["value"].sum()
    return float(per_time.mean()), float(per_time.max())


def _latencies(result: Any, warmup: float) -> np.ndarray:
    d = result.records.deliveries
    if not len(d):
        return np.empty(0)
    created = np.frombuffer(d.created, dtype=np.float64)
    delivered = np.frombuffer(d.delivered, dtype=np.float64)
    keep = created >= warmup
    return delivered[keep] - created[keep]


def _memory_mean(result: Any, services: set[str], warmup: float) -> float | None:
    ts = result.timeseries
    rows = ts[(ts["metric"] == "memory") & ts["service"].isin(sorted(services))
              & (ts["time"] >= warmup)]
    if rows.empty:
        return None
    return float(rows.groupby("time")["value"].sum().mean())


def deliveries(result: Any) -> Any:
    """Server messages delivered to clients, one row each (a random sample in aggregate runs):
    ``source, created_at, delivered_at, latency`` (seconds)."""
    import pandas as pd

    d = result.records.deliveries
    created = np.frombuffer(d.created, dtype=np.float64).copy() if len(d) else np.empty(0)
    delivered = np.frombuffer(d.delivered, dtype=np.float64).copy() if len(d) else np.empty(0)
    sources = result.records.sources or ["-"]
    return pd.DataFrame({
        "source": pd.Categorical.from_codes(np.asarray(d.source, dtype=np.int16),
                                            categories=sources),
        "created_at": created,
        "delivered_at": delivered,
        "latency": delivered - created,
    })


# -- the comparison -----------------------------------------------------------------------------
