"""WebSocket pools and polling clients.

A service with ``websocket:`` gets a *pool*: per replica, the connections it holds (open, or
being upgraded) up to ``max_connections``, and a few WebSocket workers that do the upgrade
handshakes and handle messages. ``type: websocket`` workloads are *groups* of clients attached to
the pool of their target; ``type: polling`` workloads are ordinary HTTP clients
(:class:`PollingGroup`) whose requests go through the service's request path.

A connection's life: the client sends an upgrade (one link crossing); the balancer picks a
replica (the client's own replica again when ``sticky`` and that replica still lives); a replica
that is down fails the attempt, a full one refuses it (``blocked``), otherwise the upgrade waits
for a WebSocket worker, takes ``handshake`` of its time, and the connection is open. It carries
Poisson streams of messages each way until its ``lifetime`` ends, the server closes it for being
idle, or its replica fails. A client whose connection dropped (or whose attempt failed, was
blocked or timed out) waits a back-off with jitter and tries again; a population client whose
connection simply ended comes back after one ``reconnect`` wait.

Two representations of the same model:

* :class:`ExactPool` — one small object per client and scheduled events per connection,
  attempt and message: exact at the level of single connections, for up to some tens of
  thousands of connections.
* :class:`AggregatePool` — per-replica counts in numpy arrays advanced in fixed steps of
  ``step`` seconds (10 ms by default): arrivals, closes and messages of a step are drawn as
  counts from superposed Poisson processes (for exponential lifetimes the closes of a replica
  holding n connections are Binomial(n, 1 − e^(−step/mean)), so no per-connection state at
  all; other lifetimes keep per-replica calendars of close counts by step); the waits of
  attempts (back-off windows, handshake queues) are spread over calendars of counts by step.
  Memory and time per step do not grow with the number of connections. It differs from the
  exact model by at most a step in when things happen, uses the mean handshake time and a
  fluid queue for WebSocket work, and records the delivery latency of a random sample of
  messages (``latency_sample``), not of all of them.
"""


from __future__ import annotations

from collections.abc import Callable
from typing import Any

import simpy

from ..records import Records
from ..spec.websocket import representation_of
from .engine import Streams, Wake
from .polling import PollingGroup
from .service import Service
from .ws_aggregate import AggregatePool
from .ws_common import (
    BIN,
    LATENCY_BUDGET,
    METRICS,
    Group,
    Pool,
)
from .ws_exact import ExactPool


class WebSockets:
    """Every pool and polling group of a run: started, sampled and settled together."""

    def __init__(self, env: simpy.Environment, records: Records, pools: list[Pool],
                 polls: list[PollingGroup], warmup: float, duration: float, sample_every: float):
        self.env = env
        self.records = records
        self.pools = pools
        self.polls = polls
        self.warmup = warmup
        self.duration = duration
        self.sample_every = sample_every
        self.last_sample = 0.0
        services: dict[str, tuple[Service, Pool | None, list[PollingGroup]]] = {}
        for pool in pools:
            services[pool.svc.name] = (pool.svc, pool, [])
        for pg in polls:
            svc, pool, lst = services.get(pg.svc.name, (pg.svc, None, []))
            services[pg.svc.name] = (svc, pool, [*lst, pg])
        self.services = list(services.values())
        self.codes: tuple[int, ...] = ()

    def start(self) -> None:
        self.codes = tuple(self.records.metric(name) for name in METRICS)
        for pool in self.pools:
            pool.start()
            if self.warmup > 0:
                Wake(self.env, self.warmup, pool.mark_warmup, None)
        for pg in self.polls:
            pg.start()

    def sample(self, now: float) -> None:
        """Per replica: open connections (and held long polls), upgrades under way, and the
        rates of new connections and of reconnect attempts since the last sample."""
        if not self.codes:
            return
        add = self.records.samples.add
        m_conn, m_shake, m_open, m_rec = self.codes
        span = now - self.last_sample
        self.last_sample = now
        for svc, pool, polls in self.services:
            for inst in svc.instances:
                r = inst.replica
                held = sum(pg.parked_rep[r] for pg in polls)
                if pool is not None:
                    add(now, inst.code, m_conn, pool.open_at(r) + held)
                    add(now, inst.code, m_shake, pool.pending_at(r))
                    add(now, inst.code, m_open, pool.opened_rep[r] / span if span > 0 else 0.0)
                    add(now, inst.code, m_rec, pool.rec_rep[r] / span if span > 0 else 0.0)
                    pool.opened_rep[r] = 0
                    pool.rec_rep[r] = 0
                else:
                    add(now, inst.code, m_conn, held)
                    add(now, inst.code, m_shake, 0.0)
                    add(now, inst.code, m_open, 0.0)
                    add(now, inst.code, m_rec, 0.0)
        for pool in self.pools:
            pool.heartbeats(now)

    def settle(self) -> None:
        self.records.stats["websockets"] = {
            "bin": BIN,
            "pools": {pool.svc.name: pool.export() for pool in self.pools},
            "polling": {self.records.sources[pg.code]: pg.export() for pg in self.polls},
        }


def choose_representation(cfg: Any, groups: list[Group], duration: float,
                          replicas: int) -> str:
    """``exact`` or ``aggregate`` for a pool whose ``representation`` may be ``auto``."""
    return representation_of(cfg, [g.w for g in groups], duration, replicas)


def build_websockets(env: simpy.Environment, G: Any, streams: Streams, records: Records,
                     services: dict[str, Service], lifecycle: Any, memory: dict[str, Any],
                     workloads: list[tuple[int, str, Any, Any]], next_id: Callable[[], int],
                     duration: float, warmup: float, sample_every: float) -> WebSockets | None:
    """Pools for services with ``websocket`` settings and the workloads aimed at them.

    ``workloads`` holds ``(source code, client node, workload spec, client link)`` of every
    ``websocket`` and ``polling`` workload. Returns None when there are none.
    """
    if not workloads:
        return None
    by_target: dict[str, list[Group]] = {}
    polls: list[PollingGroup] = []
    for code, node, w, link in workloads:
        if w.type == "polling":
            polls.append(PollingGroup(env, code, records.requests, next_id, w, node, link,
                                      services[w.target], streams, records, duration))
        else:
            by_target.setdefault(w.target, []).append(Group(code, node, w, link, streams))
    pools: list[Pool] = []
    for name, groups in by_target.items():
        attrs = G.nodes[name]
        cfg = attrs.get("websocket")
        if cfg is None:
            from ..errors import BuildError

            raise BuildError(f"node {name!r}: websocket workloads target it but it has no "
                             "websocket settings")
        svc = services[name]
        kind = choose_representation(cfg, groups, duration, len(svc.instances))
        args = (env, svc, cfg, groups, lifecycle, streams, records, duration, warmup,
                attrs.get("balancer", "round_robin"), memory[name])
        if kind == "exact":
            pools.append(ExactPool(*args))
        else:
            p = cfg.latency_sample
            if p is None:
                expected = sum(g.expected_connections(duration) * g.rs for g in groups) * duration
                p = min(1.0, LATENCY_BUDGET / expected) if expected > 0 else 1.0
            pools.append(AggregatePool(*args, latency_sample=p))
    return WebSockets(env, records, pools, polls, warmup, duration, sample_every)
