"""The work a run will take, estimated before it starts, and the budget it must fit.

Validation bounds each value a scenario holds; this bounds what they multiply to. A rate of
10,000/s for a simulated week through a 50-service chain is made of valid numbers and would run
for days. :func:`check` estimates the simulated events (request visits and the link crossings
and worker hand-offs around each, samples of the timeseries) from the graph alone, and refuses a
run over the budget with the estimate and how to raise the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import networkx as nx

from .errors import SimsysError
from .spec.limits import DEFAULT_MAX_EVENTS
from .topology import clients, service_attrs, services

EVENTS_PER_VISIT = 4      # arrive (after the link), start of work, end of work, answer
METRICS_PER_REPLICA = 4   # series sampled per replica: queue, busy workers, memory, connections
MAX_REPLICAS_PER_RUN = 1_000_000
# An aggregate WebSocket pool's step: a few numpy operations per group and replica, whatever the
# connections and messages; counted as this many events (measured: ~60 µs a step, ~2 µs an event).
AGGREGATE_STEP_EVENTS = 30


@dataclass(frozen=True)
class Estimate:
    """What a run will take: ``requests`` (expected arrivals), ``visits`` (expected service
    visits, each request's visits summed), ``samples`` (timeseries values) and ``events``, the
    simulated events they cost together."""

    requests: float
    visits: float
    samples: float
    replicas: int

    @property
    def events(self) -> float:
        return self.visits * EVENTS_PER_VISIT + self.samples


def _per_request(G: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """For a request entering each service: the expected visits it makes to the call graph,
    and the expected time it spends being served and on links (seconds), with the calls'
    probabilities; retries and hedges, which only multiply work on failure, are left out."""
    names = services(G)
    H = G.subgraph(names)  # calls and routes: a route adds its visits as a call would
    out: dict[str, tuple[float, float]] = {}
    try:
        order = list(reversed(list(nx.topological_sort(H))))
    except nx.NetworkXUnfeasible:  # a cycle: the graph check refuses it with its own message
        return dict.fromkeys(names, (1.0, 0.0))
    for u in order:
        visits, busy = 1.0, _mean(G.nodes[u].get("service_time"))
        for _, v, data in H.out_edges(u, data=True):
            p = data.get("probability", 1.0)
            p = 1.0 if p is None else p
            visits += p * out[v][0]
            busy += p * (out[v][1] + 2 * _mean(data.get("latency")))
        out[u] = (min(visits, 1e300), busy)
    return out


def _mean(dist: Any) -> float:
    mean = getattr(dist, "mean", 0.0)
    return float(mean) if isinstance(mean, int | float) and math.isfinite(mean) else 0.0


def _arrivals(w: Any, duration: float, response_time: float) -> float:
    """Expected requests (or messages and polls) a workload entry sends in ``duration`` s."""
    kind = getattr(w, "type", None)
    if kind == "poisson":
        extra = sum((s.factor - 1.0) * min(s.duration, duration) for s in w.spikes)
        return w.rate * max(duration + extra, 0.0)
    if kind == "closed":
        cycle = w.think_time.mean + response_time
        if cycle <= 0:  # answered in no time: the run's zero-time loop check stops such users
            return w.users * 1000.0
        return w.users * duration / cycle
    if kind in ("websocket", "polling"):
        num_clients = w.clients or (getattr(w, "connect_rate", None) or 0.0) * duration
        per_client = (w.messages.client_rate + w.messages.server_rate) * duration + 1.0
        if kind == "polling":
            per_client += duration / w.interval
        return num_clients * per_client
    return 0.0


def _aggregate_pools(G: nx.DiGraph, duration: float) -> dict[str, float]:
    """Services whose WebSocket pool is aggregate, and the steps it takes: its cost grows with
    the steps, not with connections or messages."""
    from .spec.websocket import representation_of

    by_target: dict[str, list[Any]] = {}
    for c in clients(G):
        w = G.nodes[c].get("workload")
        if getattr(w, "type", None) == "websocket":
            by_target.setdefault(w.target, []).append(w)
    out = {}
    for target, workloads in by_target.items():
        cfg = G.nodes[target].get("websocket") if target in G else None
        if cfg is None:
            continue
        replicas = int(service_attrs(G, target)["replicas"])
        if representation_of(cfg, workloads, duration, replicas) == "aggregate":
            out[target] = duration / cfg.step * len(workloads)
    return out


def estimate(G: nx.DiGraph) -> Estimate:
    """Estimate the work of simulating ``G`` (see :class:`Estimate`)."""
    duration = float(G.graph.get("duration", 0.0))
    per_request = _per_request(G)
    aggregate = _aggregate_pools(G, duration)
    requests = total_visits = 0.0
    for c in clients(G):
        w = G.nodes[c].get("workload")
        target = getattr(w, "target", None)
        if getattr(w, "type", None) == "websocket" and target in aggregate:
            continue  # counted by its steps below
        visits, response_time = per_request.get(target, (1.0, 0.0))
        arrivals = _arrivals(w, duration, response_time)
        requests += arrivals
        total_visits += arrivals * visits
    total_visits += sum(aggregate.values()) * AGGREGATE_STEP_EVENTS / EVENTS_PER_VISIT
    replicas = sum(int(service_attrs(G, s)["replicas"]) for s in services(G))
    every = float(G.graph.get("sample_every") or 1.0)
    samples = (duration / every + 1.0) * replicas * METRICS_PER_REPLICA
    return Estimate(requests, total_visits, samples, replicas)


def check(G: nx.DiGraph, max_events: float | None = None) -> Estimate:
    """Refuse (``SimsysError``) a run whose estimated events exceed ``max_events``.

    ``max_events`` defaults to :data:`~simsys.spec.limits.DEFAULT_MAX_EVENTS` (about an hour on
    a 2-core laptop); ``math.inf`` turns the check off.
    """
    budget = DEFAULT_MAX_EVENTS if max_events is None else max_events
    if not budget > 0:
        raise SimsysError(f"max_events: expected a number > 0, got {max_events!r}")
    est = estimate(G)
    if est.replicas > MAX_REPLICAS_PER_RUN:
        raise SimsysError(f"the scenario has {est.replicas:,} replicas in all, more than the "
                          f"{MAX_REPLICAS_PER_RUN:,} one run may hold")
    if est.events > budget or not math.isfinite(est.events):
        raise SimsysError(
            f"this run would take about {est.events:.3g} simulated events "
            f"({est.requests:.3g} requests making {est.visits:.3g} service visits, "
            f"{est.samples:.3g} timeseries samples), over the budget of {budget:.3g} "
            "(about an hour on a 2-core laptop). Shorten duration, lower the rates or raise "
            "sample_every; or raise the budget: simsys run --max-events N, "
            "simsys.run(..., max_events=N)")
    return est
