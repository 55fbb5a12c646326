"""Output analysis of a finished (or running) simulation's records: the automatic warm-up,
the utilisation split at it, the intervals and Little's-law check of every service, and the
words the command line and the report print about them. The statistics are
:mod:`simsys.analysis`'s; this module knows where they are in :class:`simsys.records.Records`
and the topology graph."""

from __future__ import annotations

from typing import Any

import numpy as np

from .analysis import (
    BATCH_COUNTS,
    grid_batches,
    little_check,
    utilization_interval,
    warmup_cut,
)


# -- from a run's records ---------------------------------------------------------------------
def request_columns(records: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(start, end, status)`` of every finished request, in order of completion (views)."""
    r = records.requests
    if not len(r):
        return np.empty(0), np.empty(0), np.empty(0, np.int8)
    return (np.frombuffer(r.start, dtype=np.float64), np.frombuffer(r.end, dtype=np.float64),
            np.frombuffer(r.status, dtype=np.int8))


def in_system_per_sample(records: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(times, total, per_service)``: the sample times, the number in system summed over
    every replica, and per service (shape times × services)."""
    t, inst, value = records.sampled("in_system")
    owners = np.array([sv for sv, _ in records.instances] or [0], dtype=np.int64)
    n_services = max(len(records.services), 1)
    k = len(records.instances)
    if k and len(t) % k == 0 and np.array_equal(inst[:k], np.arange(k)):
        # every sample visits every replica in order: a (times × replicas) table
        table = value.reshape(-1, k)
        per = np.zeros((len(table), n_services))
        for code in range(n_services):
            per[:, code] = table[:, owners == code].sum(axis=1)
        return t[::k], per.sum(axis=1), per
    times, where = np.unique(t, return_inverse=True)
    per = np.zeros((len(times), n_services))
    np.add.at(per, (where, owners[inst]), value)
    return times, per.sum(axis=1), per


def auto_warmup(records: Any, duration: float, step: float, ok_code: int = 0) -> dict[str, Any]:
    """``warmup: auto`` for a finished run (see :func:`warmup_cut`)."""
    start, end, status = request_columns(records)
    ok = status == ok_code
    times, total, _ = in_system_per_sample(records)
    return warmup_cut(start[ok], (end - start)[ok], times, total, step, duration)


def worker_seconds(records: Any, G: Any, name: str, edges: np.ndarray) -> np.ndarray:
    """Worker-seconds available to service ``name`` in each interval between ``edges``."""
    from .sim.autoscale import replica_seconds

    workers = float(G.nodes[name].get("workers", 1))
    events = records.stats.get("autoscale", {}).get(name)
    if events is None:
        code = records.services.index(name)
        n = sum(1 for sv, _ in records.instances if sv == code)
        return workers * n * np.diff(edges)
    return workers * np.array([replica_seconds(events, a, b)
                               for a, b in zip(edges[:-1], edges[1:], strict=True)])


def utilization_between(records: Any, G: Any, name: str, t0: float, t1: float) -> float:
    """Busy worker-seconds / worker-seconds of ``name`` over [t0, t1], ``t0`` a sample time."""
    times = np.frombuffer(records.busy_at, dtype=np.float64) if len(records.busy_at) else None
    if times is None:
        return 0.0
    k = records.services.index(name)
    area = np.frombuffer(records.busy_area, dtype=np.float64).reshape(len(times), -1)[:, k]
    a = int(np.searchsorted(times, t0 - 1e-9))
    total = records.stats["services"][name]["busy_time"]  # from 0 to the end (warmup 0)
    busy = total - (area[a] if a < len(times) else total)
    work = float(worker_seconds(records, G, name, np.array([t0, t1]))[0])
    return busy / work if work > 0 else 0.0


def _entry_sources(records: Any, G: Any) -> dict[str, list[int]]:
    """Services whose time in system is the latency of the requests sent to them: reached only
    by workloads, over client links with no latency, loss or call policy. Source codes each."""
    out: dict[str, list[int]] = {}
    bad: set[str] = set()
    for u, v, data in G.edges(data=True):
        if G.nodes[u].get("kind") != "client":
            bad.add(v)
            continue
        lat = data.get("latency")
        plain = (getattr(lat, "value", None) == 0.0 and not data.get("loss")
                 and data.get("policy") is None
                 and G.nodes[u].get("workload") is not None
                 and G.nodes[u]["workload"].type in ("poisson", "closed"))
        name = u.split(":", 1)[-1]
        if not plain or name not in records.sources:
            bad.add(v)
            continue
        out.setdefault(v, []).append(records.sources.index(name))
    return {k: v for k, v in out.items() if k not in bad}


def run_checks(records: Any, G: Any, t0: float, t1: float, start: np.ndarray, end: np.ndarray,
               utilization: dict[str, float], confidence: float = 0.95) -> dict[str, Any]:
    """Utilisation intervals and Little's law per service, on the sample grid of [t0, t1]."""
    out: dict[str, Any] = {"utilization": {}, "little": {}}
    if not len(records.busy_at):
        return out
    times = np.frombuffer(records.busy_at, dtype=np.float64)
    a, b = grid_batches(times, t0, t1)
    if b - a < BATCH_COUNTS[-1]:
        return out
    edges = times[a:b + 1]
    step = np.diff(edges)
    area = np.frombuffer(records.busy_area, dtype=np.float64).reshape(len(times), -1)
    for k, name in enumerate(records.services):
        busy = np.diff(area[a:b + 1, k])
        out["utilization"][name] = utilization_interval(
            busy, worker_seconds(records, G, name, edges), utilization.get(name, 0.0), confidence)
    s_times, _, per = in_system_per_sample(records)
    sa, sb = grid_batches(s_times, t0, t1)
    if sb - sa != b - a:  # the two sample grids differ (should not happen): no check
        return out
    spans = records.spans
    if spans is not None and len(spans.rid):
        arrived = np.frombuffer(spans.arrived, dtype=np.float64)
        stay = np.frombuffer(spans.ended, dtype=np.float64) - arrived
        svc = np.asarray(spans.service, dtype=np.int64)
        visits = {name: (arrived[svc == k], stay[svc == k])
                  for k, name in enumerate(records.services)}
    else:
        source = np.asarray(records.requests.source, dtype=np.int64)
        visits = {}
        for name, codes in _entry_sources(records, G).items():
            mine = np.isin(source, codes)
            visits[name] = (start[mine], (end - start)[mine])
    for name, (arr, stay) in visits.items():
        k = records.services.index(name)
        sums = np.histogram(arr, edges, weights=stay)[0]
        out["little"][name] = little_check(per[sa:sb, k], sums, step, confidence)
    return out


# -- in words ---------------------------------------------------------------------------------
RECOVERY_DEFAULTS = (
    "no recovery: in the scenario, so its defaults apply: a failure is detected at once and the "
    "replica restarted at once (set recovery.detection or recovery.health_check, and "
    "recovery.restart)")


def describe(s: dict[str, Any]) -> list[str]:
    """Plain-text lines on a summary's output analysis (for the CLI table and the report):
    the intervals, the automatic warm-up, the stop rule, Little's law when it disagrees."""
    out: list[str] = []
    inc = s.get("incidents") or {}
    if inc.get("count") and inc.get("recovery") == "defaults":
        out.append(RECOVERY_DEFAULTS)
    iv = s.get("intervals") or {}
    lat = iv.get("latency") or {}

    def span(v: list[float] | None, scale: float, unit: str) -> str:
        return "-" if v is None else f"{v[0] * scale:.4g}–{v[1] * scale:.4g}{unit}"

    if lat.get("batches"):
        parts = [f"{k} {span(lat.get(k), 1e3, ' ms')}" for k in ("mean", "p50", "p99")
                 if lat.get(k) is not None]
        parts.append(f"throughput {span(iv.get('throughput'), 1.0, ' req/s')}")
        parts.append(f"error rate {span(iv.get('error_rate'), 100.0, '%')}")
        note = (f"{lat['batches']} batches of {lat['batch_size']}, lag-1 {lat['lag1']:.2f}"
                if lat.get("lag1") is not None else f"{lat['batches']} batches")
        if lat.get("correlated"):
            note += ", still correlated: run longer"
        out.append(f"{iv.get('confidence', 0.95):.0%} intervals ({note}): " + "; ".join(parts))
    auto = s.get("warmup_auto")
    if auto:
        line = (f"warm-up auto (MSER-5): {auto['warmup']:.4g} s left out (latency cut "
                f"{auto['latency_cut']:.4g} s, queue cut {auto['queue_cut']:.4g} s)")
        if auto.get("at_limit"):
            line += "; a series never settled: run longer"
        out.append(line)
    stop = s.get("stop")
    if stop:
        rel = (stop["half_width"] / abs(stop["estimate"])
               if stop.get("half_width") is not None and stop.get("estimate") else None)
        how = f"±{rel:.2%}" if rel is not None else "no interval yet"
        verdict = ("stopped at" if stop["reached"] else "not precise enough by max,")
        out.append(f"{verdict} {stop['stopped_at']:.6g} s: {stop['metric']} {how} at "
                   f"{stop['confidence']:.0%} (target ±{stop['until_precision']:.2%})")
    little = s.get("little") or {}
    bad = {k: v for k, v in (little.get("services") or {}).items() if not v["agree"]}
    if bad:
        out.append("Little's law L = λW does not hold within the intervals (run too short, or a "
                   "model error): " + "; ".join(
                       f"{k} L {v['L']:.4g} vs λW {v['lambda_W']:.4g}" for k, v in bad.items()))
    return out
