"""The life of a replica: up → failed → detected → restarting → up.

At failure the replica's requests (in service and queued) end as ``error`` with the failure as
their cause. Until the failure is detected the balancer still routes to it, and those requests
fail too — the price of a slow MTTD. Once detected it leaves the balancer; after its restart time
(plus crash-loop back-off) it rejoins, empty, its memory back at base.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import simpy

from ..records import C_CRASH, C_OOM, Records
from ..spec.chaos import Recovery
from .engine import Streams, Wake
from .service import Service
from .visits import Instance

KIND_CAUSE = {"crash": C_CRASH, "oom": C_OOM}


class Lifecycle:
    """Fails, detects and restarts replicas; keeps the incident log; watches memory limits."""

    def __init__(self, env: simpy.Environment, spec: Recovery, streams: Streams,
                 records: Records, services: dict[str, Service],
                 memory: dict[str, tuple[float, float, float, float | None]]):
        self.env = env
        self.spec = spec
        self.records = records
        self.services = services
        self.memory_spec = memory
        self.down = 0
        self.restart_time: dict[int, Callable[[], float]] = {}
        self.phase: dict[int, float] = {}
        self.incident: dict[int, int] = {}       # instance code → open incident row
        self.streak: dict[int, int] = {}         # restarts in the current crash-loop streak
        self.recovered_at: dict[int, float] = {}
        # service → {crash fault's name: time until which restarted replicas crash again};
        # one entry per fault, so faults that overlap on a service end independently
        self.crash_until: dict[str, dict[str, float]] = {}
        self.held: dict[Instance, object] = {}  # replica → its hold, while held down (_restart)
        hc = spec.health_check
        for svc in services.values():
            for inst in svc.instances:
                key = f"{svc.name}/{inst.replica}"
                self.restart_time[inst.code] = spec.restart.sampler(
                    streams.rng(f"recovery/restart/{key}")
                )
                if hc is not None:
                    self.phase[inst.code] = float(
                        streams.rng(f"recovery/health/{key}").uniform(0, hc.interval)
                    )

    # -- memory -----------------------------------------------------------------------------
    def memory(self, inst: Instance) -> float:
        """Bytes held by a replica now: base + per request + per connection + leaked."""
        base, per_request, per_connection, _ = self.memory_spec[inst.service.name]
        mem = base + per_request * (inst.busy + len(inst.queue)) + per_connection * inst.connections
        if inst.leak_rate:
            mem += inst.leak_rate * (self.env.now - inst.leak_since)
        return mem

    def limit(self, inst: Instance) -> float | None:
        return self.memory_spec[inst.service.name][3]

    def check_memory(self, inst: Instance) -> bool:
        """OOM-kill the replica if it holds more than its memory.limit; True if it did."""
        limit = self.limit(inst)
        if limit is not None and inst.up and self.memory(inst) > limit:
            self.fail(inst, "oom", "memory.limit")
            return True
        return False

    # -- the lifecycle ----------------------------------------------------------------------
    def fail(self, inst: Instance, kind: str, cause: str) -> bool:
        """Fail a replica now; returns False if it was already down."""
        if not inst.up:
            return False
        env = self.env
        now = env.now
        svc = inst.service
        inst.up = False
        inst.down_cause = KIND_CAUSE.get(kind, C_CRASH)
        inst.leak_rate = 0.0
        self.down += 1
        # Crash-loop streak: a failure soon after the last recovery extends the streak.
        last = self.recovered_at.get(inst.code)
        if last is not None and now - last < self.spec.reset_after:
            self.streak[inst.code] = self.streak.get(inst.code, 0) + 1
        else:
            self.streak[inst.code] = 0
        row = self.records.incidents.open(svc.code, inst.code, kind, cause, now)
        self.incident[inst.code] = row
        inst.failed_requests = svc.fail_instance(inst, inst.down_cause)
        for listener in svc.down_listeners:
            listener(inst)
        Wake(env, self.detection_time(inst, now), self._detected, inst)
        return True

    def detection_time(self, inst: Instance, failed_at: float) -> float:
        """Seconds from failure to detection: fixed, or the time health checks take."""
        hc = self.spec.health_check
        if hc is None:
            return self.spec.detection or 0.0
        phase = self.phase[inst.code]
        k = math.ceil((failed_at - phase) / hc.interval - 1e-12)
        first_probe = phase + max(k, 0) * hc.interval
        return first_probe + (hc.unhealthy_after - 1) * hc.interval + hc.timeout - failed_at

    def _held_over(self, ev: Any) -> None:
        inst, token = ev.arg
        if self.held.get(inst) is token:  # not already restarted by crash_ended
            del self.held[inst]
            self._restart(inst)

    def crash_ended(self, service: str) -> None:
        """A crash fault on ``service`` has ended: replicas held down by it restart now."""
        for inst in [i for i in self.held if i.service.name == service]:
            del self.held[inst]
            self._restart(inst)

    def _detected(self, ev: Any) -> None:
        inst: Instance = ev.arg
        svc = inst.service
        row = self.incident[inst.code]
        inc = self.records.incidents
        inc.detected_at[row] = self.env.now
        if inst in svc.routable:
            svc.routable = [i for i in svc.routable if i is not inst]
        streak = self.streak.get(inst.code, 0)
        spec = self.spec
        if spec.max_restarts is not None and streak >= spec.max_restarts:
            inc.requests_failed[row] = inst.failed_requests
            return  # gives up: stays down, as after too many restarts in a crash loop
        backoff = 0.0
        b = spec.crash_loop_backoff
        if streak > 0 and b is not None:
            backoff = min(b.max, b.initial * b.multiplier ** (streak - 1))
        Wake(self.env, self.restart_time[inst.code]() + backoff, self._restarted, inst)

    def _restarted(self, ev: Any) -> None:
        self._restart(ev.arg)

    def _restart(self, inst: Instance) -> None:
        svc = inst.service
        now = self.env.now
        loops = self.crash_until.get(svc.name)
        if loops:
            until = max(loops.values())
            if until > now and self.records.incidents.failed_at[self.incident[inst.code]] == now:
                # Detection and restart took no simulated time (no detection delay, restart
                # time or back-off): crashing again now would loop for ever at this instant.
                # The replica stays down until the crash fault ends (or is ended early).
                token = self.held[inst] = object()
                Wake(self.env, until - now, self._held_over, (inst, token))
                return
        row = self.incident.pop(inst.code)
        inc = self.records.incidents
        inc.recovered_at[row] = now
        inc.requests_failed[row] = inst.failed_requests
        inst.settle(now)
        inst.up = True
        inst.failed_requests = 0
        self.down -= 1
        self.recovered_at[inst.code] = now
        keep = {*svc.routable, inst} if inst.enabled else set(svc.routable)
        svc.routable = [i for i in svc.instances if i in keep]
        for listener in svc.up_listeners:
            listener(inst)
        loops = self.crash_until.get(svc.name)
        if loops:
            cause, until = max(loops.items(), key=lambda item: item[1])
            if until > now:
                self.fail(inst, "crash", cause)
