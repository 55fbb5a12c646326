"""Elaborate a topology graph into simpy components, run them, hand back the records.

The phases follow desmod's: build every component from the graph (failing on anything that
cannot run before simulated time starts), wire the links, start the sources, run, settle the
integrals at the end.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import networkx as nx
import simpy

from .. import topology
from ..records import Records
from ..spec.chaos import Recovery
from ..spec.distributions import Constant
from ..spec.model import CLIENT
from .chaos import ChaosMonkey, Faults, IndependentFailures
from .engine import Streams, Wake, run_until
from .link import Link
from .recovery import Lifecycle
from .service import Instance, Service, make_balancer
from .workload import Client, ClosedClient, PoissonClient

SAMPLED = ("queue_length", "busy_workers", "in_system", "memory", "up")


class Simulation:
    """One run of one graph. Build with the graph, call :meth:`run`, read :attr:`records`."""

    def __init__(self, G: nx.DiGraph, seed: int | None = None):
        topology.check(G)
        self.G = G
        self.seed = int(G.graph["seed"] if seed is None else seed)
        self.duration = float(G.graph["duration"])
        self.warmup = float(G.graph.get("warmup", 0.0))
        self.sample_every = float(G.graph.get("sample_every", 1.0))
        self.env = simpy.Environment()
        self.streams = Streams(self.seed)
        self.records = Records()
        self.services: dict[str, Service] = {}
        self.instances: list[Instance] = []
        self.memory: dict[str, tuple[float, float, float, float | None]] = {}
        self.links: dict[str, list[Link]] = {}
        self.clients: list[Client] = []
        self._ids = itertools.count().__next__
        self._build_services()
        self._build_links()
        self._build_clients()
        self._build_chaos()

    # -- elaboration ------------------------------------------------------------------------
    def _build_services(self) -> None:
        env, streams = self.env, self.streams
        for code, name in enumerate(topology.services(self.G)):
            attrs = topology.service_attrs(self.G, name)
            svc = Service(
                env, name, code,
                replicas=attrs["replicas"], workers=attrs["workers"], queue=attrs["queue"],
                service_time=attrs["service_time"].sampler(streams.rng(f"service/{name}/time")),
                first_instance_code=len(self.instances),
            )
            svc._pick = make_balancer(attrs["balancer"], streams.uniform(f"service/{name}/balancer"))
            self.services[name] = svc
            self.instances.extend(svc.instances)
            mem = attrs["memory"]
            self.memory[name] = (mem.base, mem.per_request, mem.per_connection, mem.limit)
            self.records.services.append(name)
            self.records.instances.extend((code, i.replica) for i in svc.instances)

    def _link(self, source: str, target: str, data: dict) -> Link:
        latency = data["latency"]
        zero = isinstance(latency, Constant) and latency.value == 0.0
        key = f"{source}->{target}"
        link = Link(
            self.env, source, self.services[target],
            probability=float(data["probability"]),
            coin=self.streams.uniform(f"call/{key}") if data["probability"] < 1.0 else None,
            latency=latency.sampler(self.streams.rng(f"link/{key}/latency")),
            zero=zero,
            loss=float(data["loss"]),
            lost=self.streams.uniform(f"link/{key}/loss") if data["loss"] > 0 else None,
        )
        fault_key = f"{CLIENT}->{target}" if source.startswith(f"{CLIENT}:") else key
        self.links.setdefault(fault_key, []).append(link)
        return link

    def _build_links(self) -> None:
        for name, svc in self.services.items():
            for target, data in topology.calls(self.G, name):
                link = self._link(name, target, data)
                link.back = svc.on_response
                svc.calls.append(link)

    def _build_clients(self) -> None:
        for code, node in enumerate(topology.clients(self.G)):
            w = self.G.nodes[node]["workload"]
            [(_, target, data)] = list(self.G.out_edges(node, data=True))
            link = self._link(node, target, {**topology.EDGE_DEFAULTS, **data})
            args = (self.env, code, link, self.records.requests, self._ids)
            if w.type == "poisson":
                rng = self.streams.rng(f"workload/{node}/arrivals")
                mean_gap = 1.0 / w.rate
                from ..spec.distributions import batched

                client: Client = PoissonClient(
                    *args, gap=batched(lambda n, rng=rng, m=mean_gap: rng.standard_exponential(n) * m)
                )
            elif w.type == "closed":
                think = w.think_time.sampler(self.streams.rng(f"workload/{node}/think"))
                client = ClosedClient(*args, users=w.users, think=think)
            else:  # pragma: no cover - the spec layer admits no other type
                raise ValueError(w.type)
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
                self.faults.schedule(fault, fault.name or f"{fault.kind}{i}")
            if experiment is not None:
                method = {a.name or f"action{i}": a for i, a in enumerate(experiment.method)}
                ends: dict[str, float] = {}
                for rb in experiment.rollbacks:
                    for name in method if rb.ends == "all" else [rb.ends]:
                        ends[name] = min(ends.get(name, rb.at), rb.at)
                for name, action in method.items():
                    self.faults.schedule(action, name, ends.get(name))

    # -- running ----------------------------------------------------------------------------
    def _sample(self, ev: object) -> None:
        now = self.env.now
        add = self.records.samples.add
        lifecycle = self.lifecycle
        for inst in self.instances:
            code = inst.code
            q = len(inst.queue)
            add(now, code, 0, q)
            add(now, code, 1, inst.busy)
            add(now, code, 2, inst.busy + q)
            add(now, code, 3, lifecycle.memory(inst))
            add(now, code, 4, 1.0 if inst.up else 0.0)
            if inst.up:
                lifecycle.check_memory(inst)
        if now + self.sample_every <= self.duration + 1e-9:
            Wake(self.env, self.sample_every, self._sample, None)

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
        for breaker in self.breakers:
            breaker.start()
        Wake(self.env, 0.0, self._sample, None)
        if self.warmup > 0:
            Wake(self.env, self.warmup, self._mark_warmup, None)
        run_until(self.env, self.duration, progress)
        self._settle()
        return self.records

    def _settle(self) -> None:
        end = self.duration
        window = end - self.warmup
        stats: dict[str, dict[str, float]] = {}
        for name, svc in self.services.items():
            busy = 0.0
            capacity = 0.0
            for inst in svc.instances:
                inst.settle(end)
                busy += inst.busy_area - inst.area_at_warmup
                capacity += inst.workers * window
            stats[name] = {"busy_time": busy, "worker_time": capacity}
        self.records.stats["services"] = stats
        self.records.stats["in_flight"] = sum(i.load() for i in self.instances)
        self.records.stats["faults"] = self.faults.log if self.faults is not None else []
