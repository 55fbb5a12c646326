"""Reactive autoscaling: watch utilisation, add or remove replicas, pay for replica-seconds.

Every replica the autoscaler may ever start is built up front and kept disabled until needed,
so instance codes (and their random streams) do not depend on the scaling decisions.
"""

from __future__ import annotations

import math
from typing import Any

import simpy

from ..records import Records
from ..spec.patterns import Autoscale
from .engine import Wake
from .service import Service
from .visits import Instance


class Autoscaler:
    """Moves ``svc``'s replica count toward ``ceil(n × utilisation / target)`` every interval."""

    def __init__(self, env: simpy.Environment, svc: Service, spec: Autoscale, initial: int,
                 records: Records):
        self.env = env
        self.svc = svc
        self.spec = spec
        self.records = records
        start = min(max(initial, spec.min), spec.max)
        for inst in svc.instances[start:]:
            inst.enabled = False
        svc.routable = [i for i in svc.instances if i.enabled]
        self.launched = start           # replicas running or starting (what we pay for)
        self.last_change_at = -math.inf
        self.busy_seen = 0.0
        self.events: list[tuple[float, int]] = [(0.0, start)]
        records.stats.setdefault("autoscale", {})[svc.name] = self.events

    def start(self) -> None:
        Wake(self.env, self.spec.interval, self._tick, None)

    def _busy(self) -> float:
        now = self.env.now
        total = 0.0
        for inst in self.svc.instances:
            inst.settle(now)
            total += inst.busy_area
        return total

    def _tick(self, ev: Any) -> None:
        spec, svc, now = self.spec, self.svc, self.env.now
        Wake(self.env, spec.interval, self._tick, None)
        busy = self._busy()
        serving = [i for i in svc.instances if i.enabled and i.up]
        capacity = sum(i.workers for i in serving) * spec.interval
        utilisation = (busy - self.busy_seen) / capacity if capacity > 0 else 1.0
        self.busy_seen = busy
        want = math.ceil(max(len(serving), 1) * utilisation / spec.target_utilization - 1e-9)
        want = min(max(want, spec.min), spec.max)
        if want == self.launched or now - self.last_change_at < spec.cooldown:
            return
        self.last_change_at = now
        if want > self.launched:
            # ``enabled is None`` means starting, so ``not enabled`` would pick those again.
            idle = [i for i in svc.instances if i.enabled is False][: want - self.launched]
            for inst in idle:
                inst.enabled = None  # type: ignore[assignment]  # starting: billed, not serving
                Wake(self.env, spec.startup, self._started, inst)
        else:
            # Cancel replicas still starting before stopping serving ones: ``launched`` counts
            # both, and stopping serving ones first could leave fewer than ``min`` serving.
            starting = [i for i in svc.instances if i.enabled is None]
            running = [i for i in svc.instances if i.enabled]
            for inst in (starting[::-1] + running[::-1])[: self.launched - want]:
                inst.enabled = False  # leaves the balancer; finishes what it holds
            svc.routable = [i for i in svc.routable if i.enabled]
        self.launched = want
        self.events.append((now, want))

    def _started(self, ev: Any) -> None:
        inst: Instance = ev.arg
        if inst.enabled is None:
            inst.enabled = True
            keep = {*self.svc.routable, inst}
            self.svc.routable = [i for i in self.svc.instances if i in keep]


def replica_seconds(events: list[tuple[float, int]], t0: float, t1: float) -> float:
    """∫ launched replicas dt over [t0, t1) from (time, count) change events."""
    total = 0.0
    for k, (at, count) in enumerate(events):
        end = events[k + 1][0] if k + 1 < len(events) else t1
        lo, hi = max(at, t0), min(end, t1)
        if hi > lo:
            total += count * (hi - lo)
    return total
