"""Elaborate a topology graph into simpy components, run them, hand back the records.

The phases follow desmod's: build every component from the graph (failing on anything that
cannot run before simulated time starts), wire the links, start the sources, run, settle the
integrals at the end.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np
import simpy

from .. import topology
from ..errors import BuildError
from ..records import OK, CallLog, Records, SpanLog
from ..spec.call_tree import (
    FAN_OUT_STEP,
    FAN_OUT_WORK_STEP,
    fan_out_sampler,
    tree_coins,
    tree_components,
)
from ..spec.chaos import Recovery
from ..spec.distributions import Constant, batched
from ..spec.model import CLIENT, fault_name
from ..spec.patterns import CallPolicy
from .autoscale import Autoscaler, replica_seconds
from .balancer import make_balancer
from .chaos import ChaosMonkey, Faults, IndependentFailures
from .engine import Streams, Wake, run_until
from .fan_out import Parallel
from .link import Link
from .patterns import Guard
from .recovery import Lifecycle
from .routing import RouteLink, RoutingService
from .service import ProgramService, PSService, Service
from .tracing import TracingLink
from .visits import Instance
from .workload import Client, ClosedClient, PoissonClient

SAMPLED = ("queue_length", "busy_workers", "in_system", "memory", "up", "serving")


class Simulation:
    """One run of one graph. Build with the graph, call :meth:`run`, read :attr:`records`."""

    def __init__(self, G: nx.DiGraph, seed: int | None = None):
        topology.check(G)
        self.G = G
        self.seed = int(G.graph["seed"] if seed is None else seed)
        self.duration = float(G.graph["duration"])  # the longest it may run (stop rule: max)
        self.stop_rule = G.graph.get("stop_rule")
        # warmup: auto is chosen after the run (simsys.analysis.warmup_cut); until then the
        # integrals run from time 0 and the busy-time samples let the result split them.
        self.auto_warmup = G.graph.get("warmup") == "auto"
        self.warmup = 0.0 if self.auto_warmup else float(G.graph.get("warmup", 0.0))
        self.sample_every = float(G.graph.get("sample_every", 1.0))
        self.env = simpy.Environment()
        self.streams = Streams(self.seed)
        self.records = Records()
        self.services: dict[str, Service] = {}
        self.instances: list[Instance] = []
        self.memory: dict[str, tuple[float, float, float, float | None]] = {}
        self.links: dict[str, list[Link]] = {}
        self.clients: list[Client] = []
        self.autoscalers: list[Autoscaler] = []
        self.guards: list[Guard] = []
        self.prices: dict[str, float] = {}
        if G.graph.get("trace"):
            self.records.spans = SpanLog()
            self.records.call_log = CallLog()
            self._spans = itertools.count(1).__next__
        self._ids = itertools.count().__next__
        self._build_services()
        self._build_links()
        self._ws_workloads: list[tuple[int, str, Any, Link]] = []  # websocket + polling
        self._build_clients()
        self._build_chaos()
        self._build_websockets()

    # -- elaboration ------------------------------------------------------------------------
    def _build_services(self) -> None:
        env, streams = self.env, self.streams
        for code, name in enumerate(topology.services(self.G)):
            attrs = topology.service_attrs(self.G, name)
            shed = attrs["shed"]
            autoscale = attrs["autoscale"]
            replicas = attrs["replicas"]
            if autoscale is not None:  # every replica it may start exists from the outset
                replicas = max(replicas, autoscale.max)
            kind = PSService if attrs["discipline"] == "ps" else Service
            if topology.routes(self.G, name):
                kind = RoutingService
            work = attrs["service_time"]
            program = self.G.nodes[name].get("program")
            # Work compiled from app components draws from streams named by component, so two
            # deployments of one app see the same work (common random numbers).
            if program is not None:  # work comes from the program (set up with the links)
                kind = ProgramService
                sample = Constant(value=2 * program.serialization).sampler(None)
            elif hasattr(work, "sampler_from"):
                sample = work.sampler_from(streams.rng)
            else:
                sample = work.sampler(streams.rng(f"service/{name}/time"))
            svc = kind(
                env, name, code,
                replicas=replicas, workers=attrs["workers"], queue=attrs["queue"],
                service_time=sample,
                first_instance_code=len(self.instances),
                lifo=attrs["discipline"] == "lifo",
                shed_queue=shed.queue_length if shed is not None else None,
                shed_deadline=shed.deadline if shed is not None else None,
            )
            svc.pick = make_balancer(
                attrs["balancer"], streams.uniform(f"service/{name}/balancer"), svc.instances
            )
            if self.records.spans is not None:
                svc.trace = self.records.spans
            self.services[name] = svc
            self.instances.extend(svc.instances)
            mem = attrs["memory"]
            self.memory[name] = (mem.base, mem.per_request, mem.per_connection, mem.limit)
            self.records.services.append(name)
            self.records.instances.extend((code, i.replica) for i in svc.instances)
            if autoscale is not None:
                self.autoscalers.append(
                    Autoscaler(env, svc, autoscale, attrs["replicas"], self.records)
                )
            self.prices[name] = float(attrs["price"])

    def _link(self, source: str, target: str, data: dict, key: str | None = None,
              kind: type[Link] = Link) -> Link:
        """The link of one call step; ``key`` names its random streams (default: the edge)."""
        latency = data["latency"]
        zero = isinstance(latency, Constant) and latency.value == 0.0
        edge = f"{source}->{target}"
        key = key or data.get("key") or edge
        traced: dict[str, Any] = {}
        if self.records.call_log is not None and kind is Link:  # routes are not traced (yet)
            traced = {"log": self.records.call_log, "next_span": self._spans}
            kind = TracingLink
        link = kind(
            self.env, source, self.services[target],
            probability=float(data["probability"]),
            coin=self.streams.uniform(f"call/{key}") if data["probability"] < 1.0 else None,
            latency=latency.sampler(self.streams.rng(f"link/{key}/latency")),
            zero=zero,
            loss=float(data["loss"]),
            lost=self.streams.uniform(f"link/{key}/loss") if data["loss"] > 0 else None,
            **traced,
        )
        link.key = key
        link.entry = data.get("entry")
        fault_key = f"{CLIENT}->{target}" if source.startswith(f"{CLIENT}:") else edge
        self.links.setdefault(fault_key, []).append(link)
        discovery = self.G.nodes[target].get("discovery")
        if discovery is not None and not source.startswith(f"{CLIENT}:"):
            link.discovery = discovery
            link.lookup = discovery.lookup.sampler(self.streams.rng(f"discovery/{key}"))
        return link

    def _step(self, caller: object, link: Link, policy: object) -> object:
        """The call step for one edge: the bare link, or a guard when patterns apply."""
        if policy is None:
            link.back = caller.on_response  # type: ignore[attr-defined]
            return link
        guard = Guard(self.env, link, caller, policy, self.streams, self.records)  # type: ignore[arg-type]
        self.guards.append(guard)
        return guard

    def _build_links(self) -> None:
        for name, svc in self.services.items():
            if isinstance(svc, RoutingService):
                routes = [(float(data["probability"]),
                           self._link(name, target, {**data, "probability": 1.0}, kind=RouteLink))
                          for target, data in topology.routes(self.G, name)]
                svc.set_routes(routes, self.streams.uniform(f"route/{name}"),
                               wait=self.G.nodes[name].get("blocking") == "wait")
            if isinstance(svc, ProgramService):
                self._build_program(name, svc, self.G.nodes[name]["program"])
                continue
            groups: dict[int, list[Guard]] = {}
            quorum: dict[int, int | None] = {}
            for target, data in topology.calls(self.G, name):
                link = self._link(name, target, data)
                group = data.get("parallel")
                if group is None:
                    svc.calls.append(self._step(svc, link, data.get("policy")))
                    continue
                policy = data.get("policy") or CallPolicy()
                guard = Guard(self.env, link, svc, policy, self.streams, self.records)
                self.guards.append(guard)
                if group not in groups:
                    groups[group] = []
                    quorum[group] = data.get("quorum")
                    svc.calls.append(group)  # placeholder, replaced below
                groups[group].append(guard)
            svc.calls = [
                Parallel(groups[step], quorum[step], svc) if isinstance(step, int) else step
                for step in svc.calls
            ]

    def _build_program(self, name: str, svc: ProgramService, program: Any) -> None:
        """A deployed service's component programs: its calls (one call step each, streams
        named by the component call, as a microservice deployment names them) and its work."""
        streams = self.streams
        edges = dict(topology.calls(self.G, name))
        fanned = {k for flat in program.steps.values() for step in flat
                  if step[0] == FAN_OUT_STEP for k in step[1]}
        steps: list[Any] = []
        for k, r in enumerate(program.remotes):
            if r.service not in edges:
                raise BuildError(f"node {name!r}: its program calls {r.service!r} ({r.caller} -> "
                                 f"{r.callee}), but the graph has no edge {name!r} -> "
                                 f"{r.service!r} to carry the call")
            data = {**edges[r.service], "probability": r.probability, "entry": r.callee}
            link = self._link(name, r.service, data, key=f"{r.caller}->{r.callee}")
            if k in fanned:  # a fan-out member: always guarded (Parallel counts its answers)
                guard = Guard(self.env, link, svc, r.call or CallPolicy(), streams, self.records)
                self.guards.append(guard)
                steps.append(guard)
            else:
                steps.append(self._step(svc, link, r.call))
        works: dict[str, Callable[[], float]] = {}
        coins: dict[tuple[str, str], Callable[[], float]] = {}

        def work(comp: str) -> Callable[[], float]:  # each stream made once, shared by entries
            if comp not in works:
                works[comp] = program.works[comp].sampler(streams.rng(f"component/{comp}/time"))
            return works[comp]

        def coin(caller: str, callee: str) -> Callable[[], float]:
            if (caller, callee) not in coins:
                coins[caller, callee] = streams.uniform(f"call/{caller}->{callee}")
            return coins[caller, callee]

        ipc = program.in_process_call
        programs = {}
        for entry, flat in program.steps.items():
            out: list[tuple[Any, ...]] = []
            for step in flat:
                kind = step[0]
                if kind == "work":
                    out.append((ProgramService.WORK, work(step[1]), ipc if step[2] else 0.0, None))
                elif kind == "coin":
                    out.append((ProgramService.COIN, coin(step[1], step[2]), step[3], step[4]))
                elif kind == FAN_OUT_WORK_STEP:  # threads of this worker; local work only
                    node = (step[1], (step[2],))
                    for comp in tree_components(node):
                        work(comp)
                    for pair in tree_coins(node):
                        coin(*pair)
                    out.append((ProgramService.WORK,
                                fan_out_sampler(step[1], step[2], works, coins, ipc), 0.0, None))
                elif kind == FAN_OUT_STEP:
                    fan = Parallel([steps[k] for k in step[1]], step[2], svc)
                    out.append((ProgramService.REMOTE, fan, None, None))
                else:
                    out.append((ProgramService.REMOTE, steps[step[1]], None, None))
            programs[entry] = out
        svc.set_programs(programs, program.default)

    def _build_clients(self) -> None:
        for code, node in enumerate(topology.clients(self.G)):
            w = self.G.nodes[node]["workload"]
            [(_, target, data)] = list(self.G.out_edges(node, data=True))
            data = {**topology.EDGE_DEFAULTS, **data}
            keys = getattr(w, "keys", None)
            common: dict[str, Any] = {}
            if keys:
                common = {"key": self.streams.uniform(f"workload/{node}/keys"), "keys": keys}
            args = (self.env, code, self.records.requests, self._ids)
            common["sent_at"] = self.records.sent_at
            if w.type in ("websocket", "polling"):  # built by _build_websockets
                link = self._link(node, target, data)
                self._ws_workloads.append((code, node, w, link))
                self.records.sources.append(node.split(":", 1)[-1])
                continue
            if w.type == "poisson":
                rng = self.streams.rng(f"workload/{node}/arrivals")
                client: Client = PoissonClient(
                    *args, rate=w.rate, unit_gap=batched(rng.standard_exponential),
                    spikes=list(w.spikes), **common,
                )
            elif w.type == "closed":
                think = w.think_time.sampler(self.streams.rng(f"workload/{node}/think"))
                client = ClosedClient(*args, users=w.users, think=think,
                                      where=f"workload[{self.G.nodes[node]['index']}].think_time",
                                      **common)
            else:  # pragma: no cover - other types are built by their own modules
                raise ValueError(w.type)
            link = self._link(node, target, {**data, "entry": self.G.nodes[node].get("entry")})
            client.entry = self._step(client, link, data.get("policy"))
            self.clients.append(client)
            self.records.sources.append(node.split(":", 1)[-1])

    def _build_chaos(self) -> None:
        G, env, streams = self.G, self.env, self.streams
        recovery = G.graph.get("recovery") or Recovery()
        self.lifecycle = Lifecycle(env, recovery, streams, self.records, self.services, self.memory)
        self.breakers: list[ChaosMonkey | IndependentFailures] = []
        chaos = G.graph.get("chaos")
        if chaos is not None and chaos.monkey is not None:
            self.breakers.append(
                ChaosMonkey(env, chaos.monkey, streams, self.records, self.services, self.lifecycle)
            )
        for name, svc in self.services.items():
            failures = G.nodes[name].get("failures")
            if failures is not None:
                self.breakers.append(IndependentFailures(env, svc, failures, streams, self.lifecycle))
        faults = list(G.graph.get("faults") or [])
        experiment = G.graph.get("experiment")
        self.faults: Faults | None = None
        if faults or experiment is not None:
            self.faults = Faults(env, streams, self.services, self.links, self.lifecycle)
            for i, fault in enumerate(faults):
                self.faults.schedule(fault, fault_name(fault, "faults", i))
            if experiment is not None:
                method = {fault_name(a, "method", i): a for i, a in enumerate(experiment.method)}
                ends: dict[str, float] = {}
                for rb in experiment.rollbacks:
                    for name in method if rb.ends == "all" else [rb.ends]:
                        ends[name] = min(ends.get(name, rb.at), rb.at)
                for name, action in method.items():
                    self.faults.schedule(action, name, ends.get(name))

    def _build_websockets(self) -> None:
        """WebSocket pools and polling clients (simsys.sim.websocket), once the lifecycle
        exists: they drop connections when replicas fail and OOM-kill on memory.limit."""
        from .websocket import build_websockets

        self.websockets = build_websockets(
            self.env, self.G, self.streams, self.records, self.services, self.lifecycle,
            self.memory, self._ws_workloads, self._ids, self.duration, self.warmup,
            self.sample_every,
        )

    # -- running ----------------------------------------------------------------------------
    def _sample(self, ev: object) -> None:
        self._take_sample()
        now = self.env.now
        if now + self.sample_every <= self.duration + 1e-9:
            self.next_sample_at = now + self.sample_every
            Wake(self.env, self.sample_every, self._sample, None)

    def _take_sample(self) -> None:
        now = self.env.now
        add = self.records.samples.add
        lifecycle = self.lifecycle
        self.records.busy_at.append(now)
        busy_area = self.records.busy_area
        for svc in self.services.values():
            area = 0.0
            for inst in svc.instances:
                inst.settle(now)
                area += inst.busy_area
            busy_area.append(area)
        for inst in self.instances:
            code = inst.code
            q = len(inst.queue)
            add(now, code, 0, q)
            add(now, code, 1, inst.busy)
            add(now, code, 2, inst.busy + q)
            add(now, code, 3, lifecycle.memory(inst))
            add(now, code, 4, 1.0 if inst.up else 0.0)
            add(now, code, 5, 1.0 if inst.enabled and inst.up else 0.0)
            if inst.up:
                lifecycle.check_memory(inst)
        if self.websockets is not None:
            self.websockets.sample(now)

    def _mark_warmup(self, ev: object) -> None:
        now = self.env.now
        for inst in self.instances:
            inst.settle(now)
            inst.area_at_warmup = inst.busy_area

    def run(self, progress: Callable[[float], None] | None = None) -> Records:
        """Run to the scenario's duration and return the records."""
        for name in SAMPLED:
            self.records.metric(name)
        for client in self.clients:
            client.start()
        if self.websockets is not None:
            self.websockets.start()
        for breaker in self.breakers:
            breaker.start()
        for scaler in self.autoscalers:
            scaler.start()
        Wake(self.env, 0.0, self._sample, None)
        if self.warmup > 0:
            Wake(self.env, self.warmup, self._mark_warmup, None)
        self.next_sample_at = 0.0
        if self.stop_rule is None:
            run_until(self.env, self.duration, progress)
        else:
            self.duration = self._run_to_precision(progress)
        self.records.stats["duration"] = self.duration
        # simpy stops before the events of the final instant; the sample due then is taken here.
        if abs(self.next_sample_at - self.duration) < 1e-9:
            self._take_sample()
        self._settle()
        return self.records

    def _run_to_precision(self, progress: Callable[[float], None] | None) -> float:
        """Run until the stop rule's interval is narrow enough (or ``max``); returns the time
        the run stopped. A check every ``check_every`` simulated seconds is one scheduled
        call; the interval is worked out only when the requests have grown by a tenth since
        the last time, so the checks cost O(requests) in all, whatever their number."""
        self.records.stats["stop"] = {"reached": False, "estimate": None, "half_width": None}
        self._checked = 0
        self._was_precise = False
        Wake(self.env, self.stop_rule.check_every, self._check, None)
        run_until(self.env, self.duration, progress)
        return self.env.now if self.records.stats["stop"]["reached"] else self.duration

    def _check(self, ev: object) -> None:
        from ..analysis import precision_now
        from ..run_analysis import auto_warmup

        rule, r, now = self.stop_rule, self.records.requests, self.env.now
        if now + rule.check_every < self.duration - 1e-9:
            Wake(self.env, rule.check_every, self._check, None)
        if len(r) < self._checked * 1.1 or len(r) < 20:
            return
        self._checked = len(r)
        start = np.array(r.start, dtype=np.float64)  # copies: the columns keep growing
        end = np.array(r.end, dtype=np.float64)
        ok = np.array(r.status, dtype=np.int8) == OK
        t0 = self.warmup
        if self.auto_warmup:
            t0 = auto_warmup(self.records, now, self.sample_every, OK)["warmup"]
        est = precision_now(rule.metric, start, end, ok, t0, now, rule.confidence)
        if est is None:
            return
        centre, half, correlated = est
        # Precise at two checks in a row (a tenth more requests apart): queueing output has
        # its smallest variance estimates in its calm, low-latency stretches, so stopping at
        # the first narrow interval would favour low means.
        precise = not correlated and centre != 0 and half <= rule.until_precision * abs(centre)
        self.records.stats["stop"] = {"reached": precise and self._was_precise,
                                      "estimate": centre, "half_width": half}
        self._was_precise = precise
        if self.records.stats["stop"]["reached"]:
            raise simpy.core.StopSimulation("precise")  # env.run returns now, at this instant

    def _settle(self) -> None:
        end = self.duration
        stats: dict[str, dict[str, float]] = {}
        scaled = {a.svc.name: a.events for a in self.autoscalers}
        for name, svc in self.services.items():
            busy = 0.0
            for inst in svc.instances:
                inst.settle(end)
                busy += inst.busy_area - inst.area_at_warmup
            events = scaled.get(name, [(0.0, len(svc.instances))])
            workers = svc.instances[0].workers
            stats[name] = {
                "workers": workers,
                "busy_time": busy,
                "worker_time": workers * replica_seconds(events, self.warmup, end),
                "replica_seconds": replica_seconds(events, 0.0, end),
                "cost": replica_seconds(events, 0.0, end) / 3600.0 * self.prices.get(name, 0.0),
            }
        self.records.stats["services"] = stats
        self.records.stats["in_flight"] = sum(i.load() for i in self.instances)
        for guard in self.guards:
            guard.publish()
        for code, row in self.lifecycle.incident.items():  # incidents still open at the end
            self.records.incidents.requests_failed[row] = self.instances[code].failed_requests
        self.records.stats["faults"] = self.faults.log if self.faults is not None else []
        if self.websockets is not None:
            self.websockets.settle()
