"""Things that break: Chaos Monkey, independent replica failures and scheduled faults.

Each draws from its own random streams, so switching chaos on does not move the workload's
arrivals or the services' work (common random numbers): two runs that differ only in chaos see
the same traffic.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from ..records import C_PARTITION, ERROR, Records
from ..spec.chaos import BlastRadius, Failures, Monkey
from .engine import Streams, Wake
from .link import Link
from .recovery import Lifecycle
from .service import Service
from .visits import Instance

DAY = 86400.0


def pick_victims(instances: list[Instance], radius: BlastRadius, rng: np.random.Generator) -> list[Instance]:
    """Choose the replicas one kill takes, by Chaos Mesh's modes, among those that are up.

    Percentages apply to the whole group and round down, as Chaos Mesh does.
    """
    n = len(instances)
    mode, value = radius.mode, radius.value or 0.0
    if mode == "one":
        count = 1
    elif mode == "all":
        count = n
    elif mode == "fixed":
        count = int(value)
    elif mode == "fixed-percent":
        count = math.floor(n * value / 100 + 1e-9)
    else:  # random-max-percent
        count = math.floor(n * int(rng.integers(0, int(value) + 1)) / 100 + 1e-9)
    up = [i for i in instances if i.up]
    count = min(count, len(up))
    if count <= 0:
        return []
    chosen = rng.choice(len(up), size=count, replace=False)
    return [up[k] for k in sorted(int(c) for c in chosen)]


class ChaosMonkey:
    """Netflix's Chaos Monkey over groups of replicas (a service, or each replica alone)."""

    def __init__(self, env: simpy.Environment, spec: Monkey, streams: Streams, records: Records,
                 services: dict[str, Service], lifecycle: Lifecycle):
        self.env = env
        self.spec = spec
        self.records = records
        self.lifecycle = lifecycle
        names = list(services) if spec.targets == "all" else list(spec.targets)
        self.targets = [services[n] for n in names]
        self.groups: list[tuple[str, list[Instance]]] = []
        for svc in self.targets:
            if spec.grouping == "service":
                self.groups.append((svc.name, svc.instances))
            else:
                self.groups.extend((inst.name, [inst]) for inst in svc.instances)
        self.rng = {g: streams.rng(f"chaos/monkey/{g}") for g, _ in self.groups}
        self.victim_rng = {g: streams.rng(f"chaos/monkey/victims/{g}") for g, _ in self.groups}
        self.last_kill: dict[str, Any] = {}

    def start(self) -> None:
        if self.spec.schedule == "continuous":
            for group, _ in self.groups:
                Wake(self.env, self._gap(group), self._candidate, group)
        else:
            start = self.spec.start_at
            midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
            offset = (midnight - start).total_seconds()  # ≤ 0: day 0 began before t = 0
            Wake(self.env, 0.0, self._day, (0, offset, 0))

    # -- continuous: a Poisson process of candidate kills per group ---------------------------
    def _gap(self, group: str) -> float:
        return float(self.rng[group].exponential(self.spec.mean_time_between_failures))

    def _candidate(self, ev: Any) -> None:
        group = ev.arg
        Wake(self.env, self._gap(group), self._candidate, group)
        last = self.last_kill.get(group)
        if last is not None and self.env.now - last < self.spec.min_time_between_failures:
            self._journal(group, None, "skipped", "min_time_between_failures")
            return
        if self._attempt(group):
            self.last_kill[group] = self.env.now

    # -- workdays: Netflix's daily schedule -----------------------------------------------
    def _day(self, ev: Any) -> None:
        day, offset, workday_no = ev.arg
        spec = self.spec
        day_start = offset + day * DAY
        date = spec.start_at.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=day)
        is_workday = date.weekday() < 5
        if is_workday:
            minutes = (spec.window.end_hour - spec.window.start_hour) * 60
            for group, _ in self.groups:
                rng = self.rng[group]
                kill_today = rng.random() < 1.0 / spec.mean_workdays_between_kills
                minute = int(rng.integers(0, minutes))
                at = day_start + spec.window.start_hour * 3600.0 + minute * 60.0
                if kill_today and at >= self.env.now:
                    Wake(self.env, at - self.env.now, self._workday_kill,
                         (group, workday_no, at - day_start))
        next_start = offset + (day + 1) * DAY
        Wake(self.env, next_start - self.env.now, self._day,
             (day + 1, offset, workday_no + (1 if is_workday else 0)))

    def _workday_kill(self, ev: Any) -> None:
        """A drawn kill, unless too soon after the group's previous one.

        Spacing counts workdays: a kill fewer than ``min_workdays_between_kills`` workdays
        after the previous kill is skipped; exactly that many workdays later it goes ahead only
        at or after the previous kill's time of day (the same minute counts as a full gap).
        """
        group, workday_no, time_of_day = ev.arg
        last = self.last_kill.get(group)
        if last is not None:
            gap = workday_no - last[0]
            need = self.spec.min_workdays_between_kills
            if gap < need or (gap == need and need > 0 and time_of_day < last[1]):
                self._journal(group, None, "skipped", "min_workdays_between_kills")
                return
        if self._attempt(group):
            self.last_kill[group] = (workday_no, time_of_day)

    # -- one kill, within the limits ----------------------------------------------------------
    def _attempt(self, group: str) -> bool:
        """Kill per the blast radius; True if anything was (or, leashed, would be) killed."""
        spec = self.spec
        instances = dict(self.groups)[group]
        victims = pick_victims(instances, spec, self.victim_rng[group])
        if not victims:
            # Either nothing is up, or the blast radius rounds down to no replica at all
            # (fixed-percent of a small group, or random-max-percent drawing a low percentage).
            up = any(i.up for i in instances)
            self._journal(group, None, "skipped", "blast radius is 0" if up else "no replica up")
            return False
        acted = False
        would_down: set[Instance] = set()
        for inst in victims:
            svc = inst.service
            down_now = sum(1 for s in self.targets for i in s.instances if not i.up or i in would_down)
            up_in_service = sum(1 for i in svc.instances if i.up and i not in would_down)
            if spec.max_concurrent is not None and down_now >= spec.max_concurrent:
                self._journal(group, inst, "skipped", "max_concurrent")
            elif up_in_service - 1 < spec.min_healthy:
                self._journal(group, inst, "skipped", "min_healthy")
            elif spec.leashed:
                self._journal(group, inst, "leashed", "dry run")
                would_down.add(inst)
                acted = True
            else:
                self._journal(group, inst, "killed", "")
                self.lifecycle.fail(inst, "crash", "chaos_monkey")
                acted = True
        return acted

    def _journal(self, group: str, inst: Instance | None, outcome: str, reason: str) -> None:
        self.records.journal.append(
            {
                "at": self.env.now,
                "group": group,
                "service": inst.service.name if inst else (group.split("[")[0]),
                "instance": inst.replica if inst else -1,
                "outcome": outcome,
                "reason": reason,
            }
        )


class IndependentFailures:
    """Each replica of a service fails after an exponential up-time of mean MTTF, re-armed at
    every restart: the reliability model behind k-of-n availability."""

    def __init__(self, env: simpy.Environment, svc: Service, spec: Failures, streams: Streams,
                 lifecycle: Lifecycle):
        self.env = env
        self.svc = svc
        self.mttf = spec.mean_time_to_failure
        self.kind = spec.kind
        self.lifecycle = lifecycle
        self.rng = {i.code: streams.rng(f"failures/{svc.name}/{i.replica}") for i in svc.instances}
        self.epoch = {i.code: 0 for i in svc.instances}
        svc.up_listeners.append(self._arm)

    def start(self) -> None:
        for inst in self.svc.instances:
            self._arm(inst)

    def _arm(self, inst: Instance) -> None:
        self.epoch[inst.code] += 1
        up_time = float(self.rng[inst.code].exponential(self.mttf))
        Wake(self.env, up_time, self._fire, (inst, self.epoch[inst.code]))

    def _fire(self, ev: Any) -> None:
        inst, epoch = ev.arg
        if epoch == self.epoch[inst.code] and inst.up:
            self.lifecycle.fail(inst, self.kind, "failures")


class Faults:
    """Scheduled faults (``faults:`` and an experiment's ``method``), started at ``at`` and ended
    after ``duration`` or by a rollback."""

    def __init__(self, env: simpy.Environment, streams: Streams, services: dict[str, Service],
                 links: dict[str, list[Link]], lifecycle: Lifecycle):
        self.env = env
        self.streams = streams
        self.services = services
        self.links = links
        self.lifecycle = lifecycle
        self.active: dict[str, bool] = {}
        self.log: list[dict[str, Any]] = []
        # instance code → {leak fault's name: (bytes per second, leaking since)}
        self.leaks: dict[int, dict[str, tuple[float, float]]] = {}
        for svc in services.values():
            svc.up_listeners.append(self._on_restart)

    def schedule(self, fault: Any, name: str, ends_at: float | None = None) -> None:
        """Start ``fault`` at its ``at`` and end it at ``ends_at`` or after its duration."""
        end = fault.at + fault.duration if fault.duration is not None else None
        if ends_at is not None:
            end = ends_at if end is None else min(end, ends_at)
        Wake(self.env, fault.at, self._start, (fault, name))
        if end is not None:
            Wake(self.env, max(end, fault.at), self._end, (fault, name))

    def end_at(self, name: str, at: float, faults: dict[str, Any]) -> None:
        """Rollback: end the fault called ``name`` at ``at`` (if it is still on)."""
        Wake(self.env, max(at - self.env.now, 0.0), self._end, (faults[name], name))

    # -- start and end ------------------------------------------------------------------------
    def _start(self, ev: Any) -> None:
        fault, name = ev.arg
        self.active[name] = True
        self.log.append({"name": name, "kind": fault.kind, "started_at": self.env.now})
        getattr(self, f"_start_{fault.kind}")(fault, name)

    def _end(self, ev: Any) -> None:
        fault, name = ev.arg
        if not self.active.get(name):
            return
        self.active[name] = False
        for row in self.log:
            if row["name"] == name and "ended_at" not in row:
                row["ended_at"] = self.env.now
        getattr(self, f"_end_{fault.kind}", lambda f, n: None)(fault, name)

    # crash: kill replicas now; while the fault lasts, restarted replicas crash again.
    def _start_crash(self, fault: Any, name: str) -> None:
        svc = self.services[fault.target]
        rng = self.streams.rng(f"fault/{name}/victims")
        for inst in pick_victims(svc.instances, fault, rng):
            self.lifecycle.fail(inst, "crash", name)
        if fault.duration is not None:
            self.lifecycle.crash_until.setdefault(svc.name, {})[name] = fault.at + fault.duration

    def _end_crash(self, fault: Any, name: str) -> None:
        self.lifecycle.crash_until.get(fault.target, {}).pop(name, None)
        self.lifecycle.crash_ended(fault.target)

    # latency / slowdown on a service's work
    def _start_latency(self, fault: Any, name: str) -> None:
        if "->" in fault.target:
            extra = fault.delay.sampler(self.streams.rng(f"fault/{name}/delay"))
            for link in self._links(fault.target):
                link.faults.append(("latency", name, extra))
                _rebuild_link(link)
        else:
            svc = self.services[fault.target]
            extra = fault.delay.sampler(self.streams.rng(f"fault/{name}/delay"))
            svc.faults.append(("latency", name, extra))
            _rebuild_service(svc)

    def _end_latency(self, fault: Any, name: str) -> None:
        if "->" in fault.target:
            for link in self._links(fault.target):
                _remove(link.faults, name)
                _rebuild_link(link)
        else:
            svc = self.services[fault.target]
            _remove(svc.faults, name)
            _rebuild_service(svc)

    def _start_slowdown(self, fault: Any, name: str) -> None:
        svc = self.services[fault.target]
        svc.faults.append(("slowdown", name, fault.factor))
        _rebuild_service(svc)

    _end_slowdown = _end_latency

    # loss and partition on links
    def _start_loss(self, fault: Any, name: str) -> None:
        coin = self.streams.uniform(f"fault/{name}/loss")
        for link in self._links(fault.target):
            link.faults.append(("loss", name, (fault.loss, coin)))
            _rebuild_link(link)

    def _end_loss(self, fault: Any, name: str) -> None:
        for link in self._links(fault.target):
            _remove(link.faults, name)
            _rebuild_link(link)

    def _start_partition(self, fault: Any, name: str) -> None:
        side = {svc: g for g, group in enumerate(fault.groups) for svc in group}
        for key, links in self.links.items():
            source, target = key.split("->")
            if source in side and target in side and side[source] != side[target]:
                for link in links:
                    link.faults.append(("partition", name, None))
                    _rebuild_link(link)

    def _end_partition(self, fault: Any, name: str) -> None:
        for links in self.links.values():
            for link in links:
                if any(f[1] == name for f in link.faults):
                    _remove(link.faults, name)
                    _rebuild_link(link)

    # memory leak until memory.limit kills the replica. Each leak fault holds its own bytes:
    # they add up while faults overlap, and the bytes of a fault are freed when it ends (as
    # when a memory stressor is stopped). A replica's leaked bytes, Σ rate_f × (now − since_f),
    # are kept on it as one rate and one start: R × (now − S), R = Σ rate_f, S = Σ rate_f
    # since_f / R.
    def _start_memory_leak(self, fault: Any, name: str) -> None:
        svc = self.services[fault.target]
        svc.faults.append(("memory_leak", name, fault.rate))
        for inst in svc.instances:
            if inst.up:
                self.leaks.setdefault(inst.code, {})[name] = (fault.rate, self.env.now)
                self._set_leak(inst)

    def _end_memory_leak(self, fault: Any, name: str) -> None:
        svc = self.services[fault.target]
        _remove(svc.faults, name)
        for inst in svc.instances:
            if self.leaks.get(inst.code, {}).pop(name, None) is not None and inst.up:
                self._set_leak(inst)

    def _set_leak(self, inst: Instance) -> None:
        leaks = list(self.leaks.get(inst.code, {}).values())
        if not leaks:
            inst.leak_rate = 0.0
            return
        if len(leaks) == 1:
            inst.leak_rate, inst.leak_since = leaks[0]
        else:
            total = sum(rate for rate, _ in leaks)
            inst.leak_rate = total
            inst.leak_since = sum(rate * since for rate, since in leaks) / total
        self._watch(inst)

    def _watch(self, inst: Instance) -> None:
        limit = self.lifecycle.limit(inst)
        if limit is None or not inst.leak_rate:
            return
        headroom = limit - self.lifecycle.memory(inst)
        delay = max(headroom / inst.leak_rate, 0.0) * (1 + 1e-9) + 1e-9
        Wake(self.env, delay, self._check, (inst, inst.leak_since))

    def _check(self, ev: Any) -> None:
        inst, since = ev.arg
        if not inst.up or inst.leak_since != since or not inst.leak_rate:
            return
        if not self.lifecycle.check_memory(inst):
            self._watch(inst)

    def _on_restart(self, inst: Instance) -> None:
        # A restarted replica starts clean, then leaks again for every leak fault still on.
        leaks = {name: (value, self.env.now)
                 for kind, name, value in inst.service.faults if kind == "memory_leak"}
        self.leaks[inst.code] = leaks
        if leaks:
            self._set_leak(inst)

    def _links(self, key: str) -> list[Link]:
        source, _, target = (p.strip() for p in key.partition("->"))
        return self.links.get(f"{source}->{target}", [])


def _remove(faults: list[tuple[str, str, Any]], name: str) -> None:
    faults[:] = [f for f in faults if f[1] != name]


def _times(f: Callable[[], float], k: float) -> Callable[[], float]:
    return lambda: f() * k


def _plus(f: Callable[[], float], g: Callable[[], float]) -> Callable[[], float]:
    return lambda: f() + g()


def _rebuild_service(svc: Service) -> None:
    """Compose the service-time sampler from the scenario's and the active faults'."""
    f: Callable[[], float] = svc.base_service_time
    for kind, _, value in svc.faults:
        if kind == "slowdown":
            f = _times(f, value)
        elif kind == "latency":
            f = _plus(f, value)
    svc.service_time = f


def _rebuild_link(link: Link) -> None:
    """Compose a link's latency, loss and partition from the scenario's and the active faults'."""
    from ..records import C_LOSS, DROPPED

    latency, zero = link.base_latency, link.base_zero
    coins = [(link.base_loss, link.base_lost)] if link.base_loss else []
    partitioned = False
    for kind, _, value in link.faults:
        if kind == "latency":
            latency = _plus(latency, value)
            zero = False
        elif kind == "loss":
            coins.append(value)
        elif kind == "partition":
            partitioned = True
    link.latency, link.zero = latency, zero
    if partitioned:
        link.loss, link.lost = 1.0, (lambda: 0.0)
        link.drop_status, link.drop_cause = ERROR, C_PARTITION
        return
    link.drop_status, link.drop_cause = DROPPED, C_LOSS
    if len(coins) <= 1:
        link.loss, link.lost = (coins[0] if coins else (0.0, None))
        return
    # Several independent losses: a message survives only if every one of them lets it pass.
    def lost(coins: list[tuple[float, Callable[[], float]]] = coins) -> float:
        return 0.0 if any(c() < p for p, c in coins) else 1.0

    # lost() is 0 (drop) or 1 (pass), so a loss of 1 makes send() drop exactly when it says 0.
    link.loss, link.lost = 1.0, lost
