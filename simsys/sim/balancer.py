"""Load balancers: given the replicas a caller may use, pick one for a request.

A balancer is a callable ``pick(routable, job) -> Instance | None``. Loads are the requests a
replica holds (in service and waiting), which is what its balancer can observe.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable
from typing import Protocol

from .visits import Instance, Job

Uniform = Callable[[], float]


class Balancer(Protocol):
    def __call__(self, routable: list[Instance], job: Job) -> Instance | None: ...


class RoundRobin:
    """Each replica in turn."""

    def __init__(self) -> None:
        self.i = -1

    def __call__(self, routable: list[Instance], job: Job) -> Instance | None:
        if not routable:
            return None
        self.i = i = (self.i + 1) % len(routable)
        return routable[i]


class Random:
    """A replica uniformly at random."""

    def __init__(self, u: Uniform):
        self.u = u

    def __call__(self, routable: list[Instance], job: Job) -> Instance | None:
        if not routable:
            return None
        return routable[int(self.u() * len(routable))]


def least_connections(routable: list[Instance], job: Job) -> Instance | None:
    """The replica holding the fewest requests; ties go to the lowest replica.

    A replica that has died but is not yet detected holds nothing and answers at once, so it
    attracts traffic: the black hole that makes fast detection matter for this balancer.
    """
    best = None
    best_load = 0
    for inst in routable:
        load = inst.busy + len(inst.queue)
        if best is None or load < best_load:
            best, best_load = inst, load
    return best


class PowerOfTwo:
    """Two replicas drawn at random; the less loaded one wins (Mitzenmacher's two choices)."""

    def __init__(self, u: Uniform):
        self.u = u

    def __call__(self, routable: list[Instance], job: Job) -> Instance | None:
        n = len(routable)
        if n == 0:
            return None
        if n == 1:
            return routable[0]
        a = int(self.u() * n)
        b = int(self.u() * (n - 1))
        if b >= a:
            b += 1
        x, y = routable[a], routable[b]
        return x if x.busy + len(x.queue) <= y.busy + len(y.queue) else y


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class ConsistentHash:
    """A hash ring with ``vnodes`` points per replica; a request goes to the first routable
    replica clockwise from its key's hash, so keys move only when their replica leaves."""

    def __init__(self, instances: list[Instance], vnodes: int = 64):
        points = sorted(
            (_hash(f"{inst.service.name}/{inst.replica}/{v}"), inst.replica)
            for inst in instances for v in range(vnodes)
        )
        self.hashes = [h for h, _ in points]
        self.owners = [r for _, r in points]
        self.cache: dict[int, int] = {}

    def __call__(self, routable: list[Instance], job: Job) -> Instance | None:
        if not routable:
            return None
        key = job.req.key
        start = self.cache.get(key)
        if start is None:
            start = bisect.bisect_left(self.hashes, _hash(str(key))) % len(self.hashes)
            self.cache[key] = start
        by_replica = {inst.replica: inst for inst in routable}
        n = len(self.owners)
        for step in range(n):
            inst = by_replica.get(self.owners[(start + step) % n])
            if inst is not None:
                return inst
        return None  # pragma: no cover - routable is not empty


def make_balancer(kind: str, u: Uniform, instances: list[Instance]) -> Balancer:
    """The balancer called ``kind`` (``u`` draws U(0,1) for the random ones)."""
    if kind == "round_robin":
        return RoundRobin()
    if kind == "random":
        return Random(u)
    if kind == "least_connections":
        return least_connections
    if kind == "power_of_two":
        return PowerOfTwo(u)
    if kind == "consistent_hash":
        return ConsistentHash(instances)
    raise ValueError(f"unknown balancer {kind!r}")
