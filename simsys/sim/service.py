"""Services: replicas with workers and a waiting room, behind a balancer.

The per-request path is written as plain callbacks on scheduled events rather than one simpy
process per request: a visit costs one event for its service time and one per link crossing,
which is what lets simsys run faster than the same model written as idiomatic simpy processes.

A visit (:class:`Job`) to a service goes: arrive → balancer picks a replica → a worker if one
is free, else the queue (or ``rejected`` when the queue is full) → service time → each call in
order, the worker held while it waits (thread per request) → respond to the caller. A failed call
fails its caller, and so on up to the client.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import simpy

from ..records import C_CRASH, C_REJECTED, C_UNAVAILABLE, ERROR, NO_CAUSE, OK, REJECTED
from .engine import Wake

if TYPE_CHECKING:
    from .link import Link


class Request:
    """A client request, end to end. ``blame`` keeps where and why it first failed."""

    __slots__ = ("rid", "source", "start", "attempts", "instance", "failed_service",
                 "failed_instance", "cause")

    def __init__(self, rid: int, source: int, start: float):
        self.rid = rid
        self.source = source
        self.start = start
        self.attempts = 1
        self.instance = -1        # replica of the target service that took the request
        self.failed_service = -1
        self.failed_instance = -1
        self.cause = NO_CAUSE

    def blame(self, service: int, instance: int, cause: int) -> None:
        """Remember the first failure: the service, replica code (-1: none) and cause code."""
        if self.cause == NO_CAUSE:
            self.failed_service = service
            self.failed_instance = instance
            self.cause = cause


class Job:
    """One visit of a request to one service. ``link`` is the edge it came over."""

    __slots__ = ("req", "parent", "link", "inst", "step", "status", "dead")

    def __init__(self, req: Request, parent: Job | None, link: Link):
        self.req = req
        self.parent = parent
        self.link = link
        self.inst: Instance | None = None
        self.step = 0
        self.status = OK
        self.dead = False


class Instance:
    """One replica: ``workers`` concurrent requests, a FIFO queue of at most ``queue_limit``."""

    __slots__ = ("code", "service", "replica", "workers", "queue_limit", "busy", "queue", "active",
                 "up", "busy_area", "last_change", "area_at_warmup", "connections", "down_cause",
                 "failed_requests", "leak_rate", "leak_since")

    def __init__(self, code: int, service: Service, replica: int, workers: int,
                 queue_limit: int | None):
        self.code = code
        self.service = service
        self.replica = replica
        self.workers = workers
        self.queue_limit = queue_limit
        self.busy = 0
        self.queue: deque[Job] = deque()
        self.active: set[Job] = set()
        self.up = True
        self.busy_area = 0.0      # ∫ busy workers dt, worker-seconds
        self.last_change = 0.0
        self.area_at_warmup = 0.0
        self.connections = 0      # open WebSocket connections (memory per connection)
        self.down_cause = C_CRASH  # cause code given to requests while the replica is down
        self.failed_requests = 0  # requests failed by the current incident
        self.leak_rate = 0.0      # bytes/s leaked since leak_since (memory_leak faults)
        self.leak_since = 0.0

    @property
    def name(self) -> str:
        return f"{self.service.name}[{self.replica}]"

    def load(self) -> int:
        """Requests held by this replica: in service or waiting."""
        return self.busy + len(self.queue)

    def settle(self, now: float) -> None:
        """Bring the busy-time integral up to ``now``."""
        self.busy_area += self.busy * (now - self.last_change)
        self.last_change = now


class Service:
    """A service: its replicas, its balancer, its service-time stream and its outgoing calls."""

    def __init__(self, env: simpy.Environment, name: str, code: int, *, replicas: int,
                 workers: int, queue: int | None, service_time: Callable[[], float],
                 pick: Callable[[Service], Instance | None] | None = None,
                 first_instance_code: int = 0):
        self.env = env
        self.name = name
        self.code = code
        self.instances = [
            Instance(first_instance_code + r, self, r, workers, queue) for r in range(replicas)
        ]
        # Replicas the balancer may send to: up, or failed but not yet detected.
        self.routable: list[Instance] = list(self.instances)
        self.service_time = service_time
        self.base_service_time = service_time   # the scenario's; faults compose on top of it
        self.faults: list[tuple[str, str, Any]] = []
        self.calls: list[Link] = []
        self.rr = -1
        self._pick = pick
        self._served_cb = self._served
        self.on_response = self._on_response
        # Called with the instance when a replica fails / comes back (chaos, OOM, WebSockets).
        self.down_listeners: list[Callable[[Instance], None]] = []
        self.up_listeners: list[Callable[[Instance], None]] = []

    # -- the request path -------------------------------------------------------------------
    def arrive(self, job: Job) -> None:
        """A request reaches the service (after its link latency)."""
        inst = self._pick(self) if self._pick is not None else None
        if inst is None:
            job.req.blame(self.code, -1, C_UNAVAILABLE)
            job.status = ERROR
            job.link.respond(job)
            return
        job.inst = inst
        if job.parent is None:
            job.req.instance = inst.replica
        if not inst.up:
            # Sent to a replica that is down but not yet known to be: the cost of slow detection.
            job.req.blame(self.code, inst.replica, inst.down_cause)
            inst.failed_requests += 1
            job.status = ERROR
            job.link.respond(job)
        elif inst.busy < inst.workers:
            self._start(inst, job)
        elif inst.queue_limit is not None and len(inst.queue) >= inst.queue_limit:
            job.req.blame(self.code, inst.replica, C_REJECTED)
            job.status = REJECTED
            job.link.respond(job)
        else:
            inst.queue.append(job)

    def _start(self, inst: Instance, job: Job) -> None:
        env = self.env
        now = env.now
        inst.busy_area += inst.busy * (now - inst.last_change)
        inst.last_change = now
        inst.busy += 1
        inst.active.add(job)
        Wake(env, self.service_time(), self._served_cb, job)

    def _served(self, ev: Any) -> None:
        job = ev.arg
        if not job.dead:
            self._proceed(job)

    def _proceed(self, job: Job) -> None:
        """Make the next call that applies, or finish."""
        calls = self.calls
        i = job.step
        n = len(calls)
        while i < n:
            link = calls[i]
            i += 1
            if link.coin is not None and link.coin() >= link.probability:
                continue
            job.step = i
            link.send(Job(job.req, job, link))
            return
        self._finish(job, OK)

    def _on_response(self, child: Job) -> None:
        """A downstream call answered (or failed)."""
        job = child.parent
        if job is None or job.dead:
            return
        if child.status == OK:
            self._proceed(job)
        else:
            self._finish(job, child.status)

    def _finish(self, job: Job, status: int) -> None:
        """Release the worker, start the next waiting request, answer the caller."""
        inst = job.inst
        job.status = status
        job.dead = True
        inst.active.discard(job)
        now = self.env.now
        inst.busy_area += inst.busy * (now - inst.last_change)
        inst.last_change = now
        inst.busy -= 1
        if inst.queue:
            self._start(inst, inst.queue.popleft())
        job.link.respond(job)

    # -- failures ---------------------------------------------------------------------------
    def fail_instance(self, inst: Instance, cause: int, status: int = ERROR) -> int:
        """End every request the replica holds with ``status``; returns how many there were."""
        now = self.env.now
        inst.settle(now)
        victims = list(inst.active) + list(inst.queue)
        inst.active.clear()
        inst.queue.clear()
        inst.busy = 0
        for job in victims:
            job.dead = True
            job.status = status
            job.req.blame(self.code, inst.replica, cause)
            job.link.respond(job)
        return len(victims)


# -- balancers ------------------------------------------------------------------------------
def round_robin(svc: Service) -> Instance | None:
    r = svc.routable
    if not r:
        return None
    svc.rr = i = (svc.rr + 1) % len(r)
    return r[i]


def make_random(u: Callable[[], float]) -> Callable[[Service], Instance | None]:
    def pick(svc: Service) -> Instance | None:
        r = svc.routable
        if not r:
            return None
        return r[int(u() * len(r))]

    return pick


def least_connections(svc: Service) -> Instance | None:
    """The routable replica holding the fewest requests; ties go to the lowest replica."""
    best = None
    best_load = 0
    for inst in svc.routable:
        load = inst.busy + len(inst.queue)
        if best is None or load < best_load:
            best, best_load = inst, load
    return best


def make_power_of_two(u: Callable[[], float]) -> Callable[[Service], Instance | None]:
    """Two replicas drawn at random; the less loaded one wins (Mitzenmacher's two choices)."""

    def pick(svc: Service) -> Instance | None:
        r = svc.routable
        n = len(r)
        if n == 0:
            return None
        if n == 1:
            return r[0]
        a = int(u() * n)
        b = int(u() * (n - 1))
        if b >= a:
            b += 1
        x, y = r[a], r[b]
        return x if x.busy + len(x.queue) <= y.busy + len(y.queue) else y

    return pick


def make_balancer(kind: str, u: Callable[[], float]) -> Callable[[Service], Instance | None]:
    """The pick function of balancer ``kind`` (``u`` draws U(0,1) for the random ones)."""
    if kind == "round_robin":
        return round_robin
    if kind == "random":
        return make_random(u)
    if kind == "least_connections":
        return least_connections
    if kind == "power_of_two":
        return make_power_of_two(u)
    raise ValueError(f"unknown balancer {kind!r}")
