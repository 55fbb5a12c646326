"""The scenario as typed, validated data: every default of the scenario format lives here.

A :class:`Scenario` is built from a dict (usually read from YAML by :mod:`simsys.spec.load`).
Unknown keys are rejected; units are resolved (seconds, bytes, events per second); checks that
span several fields (calls to services that exist, no cycles of synchronous calls, warmup shorter
than the run) are made here, so later layers can trust what they get.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from .distributions import (
    Constant,
    Distribution,
    NonNegDuration,
    PosDuration,
)
from .model_base import CLIENT, Fraction, Rate, Size, Strict
from .websocket import PollingWorkload, WebSocketConfig, WebSocketWorkload, websocket_problems


class Call(Strict):
    """One synchronous downstream call: the worker waits for the answer before going on."""

    service: str
    probability: Fraction = 1.0


def _call(value: Any) -> Any:
    return {"service": value} if isinstance(value, str) else value


class Memory(Strict):
    """Memory of one replica, in bytes: ``base + per_request × requests held (queued or served)``."""

    base: Size = 0.0
    per_request: Size = 0.0
    per_connection: Size = 0.0
    limit: Size | None = None


class Service(Strict):
    """A service: ``replicas`` identical instances behind one balancer.

    Each replica serves up to ``workers`` requests at once and holds up to ``queue`` more waiting
    (``None`` = unbounded; a full queue rejects). A worker holds its request during
    ``service_time`` and then while each of ``calls`` is answered, in order (thread per request).
    """

    replicas: int = Field(1, ge=1)
    workers: int = Field(1, ge=1)
    queue: int | None = Field(None, ge=0)
    balancer: Literal["round_robin", "random", "least_connections", "power_of_two"] = "round_robin"
    service_time: Distribution = Constant(value=0.0)
    calls: list[Annotated[Call, BeforeValidator(_call)]] = Field(default_factory=list)
    memory: Memory = Field(default_factory=Memory)
    websocket: WebSocketConfig | None = None


class Link(Strict):
    """A network path. ``latency`` is one way: a call pays it going and again coming back.

    ``loss`` is the probability that one message (request or response) is lost; the request
    then ends as ``dropped``.
    """

    latency: Distribution = Constant(value=0.0)
    loss: Fraction = 0.0


class Poisson(Strict):
    """Open arrivals: requests reach ``target`` as a Poisson process of ``rate`` per second."""

    type: Literal["poisson"]
    target: str
    rate: Rate
    name: str | None = None


class Closed(Strict):
    """A closed population of ``users``: each sends a request, waits for it, thinks, repeats."""

    type: Literal["closed"]
    target: str
    users: int = Field(ge=1)
    think_time: Distribution = Constant(value=0.0)
    name: str | None = None


Workload = Annotated[
    Poisson | Closed | WebSocketWorkload | PollingWorkload, Field(discriminator="type")
]


class Recovery(Strict):
    """How a failed instance comes back: noticed after ``detection``, then restarted."""

    detection: NonNegDuration = 0.0
    restart: Distribution = Constant(value=0.0)


class Monkey(Strict):
    """Chaos Monkey: kills instances of ``targets`` at random."""

    targets: list[str] | Literal["all"] = "all"
    mean_time_between_failures: PosDuration = 3600.0
    max_concurrent: int | None = Field(None, ge=1)


class Chaos(Strict):
    monkey: Monkey | None = None


class Scenario(Strict):
    """A whole scenario. Times in seconds, sizes in bytes, rates per second."""

    name: str = "scenario"
    seed: int = Field(0, ge=0)
    duration: PosDuration = 60.0
    warmup: NonNegDuration = 0.0
    sample_every: PosDuration = 1.0
    services: dict[str, Service] = Field(min_length=1)
    links: dict[str, Link] = Field(default_factory=dict)
    workload: list[Workload] = Field(default_factory=list)
    chaos: Chaos = Field(default_factory=Chaos)
    recovery: Recovery = Field(default_factory=Recovery)

    @field_validator("services")
    @classmethod
    def _names(cls, services: dict[str, Service]) -> dict[str, Service]:
        for name in services:
            if name == CLIENT or "->" in name or not name.strip():
                raise ValueError(f"{name!r} cannot be a service name (reserved or empty)")
        return services

    def link(self, source: str, target: str) -> Link:
        """The link used by calls from ``source`` to ``target`` (``client`` for workloads)."""
        key = f"{source}->{target}"
        if key in self.links:
            return self.links[key]
        if source == CLIENT:
            return Link()
        return self.links.get("default", Link())

    def workload_name(self, index: int) -> str:
        w = self.workload[index]
        return w.name or f"{w.type}{index}"


def semantic_problems(s: Scenario) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-field checks, as (field path, message) pairs; empty when the scenario is sound."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    names = set(s.services)
    known = ", ".join(sorted(names))
    if s.warmup >= s.duration:
        out.append((("warmup",), f"expected warmup < duration ({s.duration:g}s), got {s.warmup:g}s"))
    for name, svc in s.services.items():
        seen: set[str] = set()
        for i, call in enumerate(svc.calls):
            if call.service not in names:
                out.append(
                    (
                        ("services", name, "calls", i),
                        f"calls unknown service {call.service!r}; services are: {known}",
                    )
                )
            elif call.service in seen:
                out.append(
                    (
                        ("services", name, "calls", i),
                        f"{call.service!r} is called twice; call each service once "
                        "(use probability for optional calls)",
                    )
                )
            seen.add(call.service)
    cycle = _find_cycle({n: [c.service for c in s.services[n].calls] for n in s.services})
    if cycle:
        out.append(
            (
                ("services", cycle[0], "calls"),
                "synchronous calls form a cycle: " + " -> ".join(cycle + [cycle[0]])
                + " (a request would wait for itself)",
            )
        )
    for key in s.links:
        if key == "default":
            continue
        parts = key.split("->")
        if len(parts) != 2:
            out.append((("links", key), "expected 'default' or 'source->target'"))
            continue
        source, target = (p.strip() for p in parts)
        for end in (source, target):
            if end not in names and not (end == CLIENT and end == source):
                out.append((("links", key), f"unknown service {end!r}; services are: {known}"))
    for i, w in enumerate(s.workload):
        if w.target not in names:
            out.append(
                (("workload", i, "target"), f"unknown service {w.target!r}; services are: {known}")
            )
    mk = s.chaos.monkey
    if mk is not None and mk.targets != "all":
        for i, t in enumerate(mk.targets):
            if t not in names:
                out.append(
                    (("chaos", "monkey", "targets", i), f"unknown service {t!r}; services are: {known}")
                )
    out.extend(websocket_problems(s))
    return out


def _find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """Return one cycle of the call graph as a list of service names, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(edges, WHITE)
    stack: list[str] = []

    def visit(u: str) -> list[str] | None:
        colour[u] = GREY
        stack.append(u)
        for v in edges.get(u, []):
            if v not in colour:
                continue
            if colour[v] == GREY:
                return stack[stack.index(v):]
            if colour[v] == WHITE:
                found = visit(v)
                if found:
                    return found
        stack.pop()
        colour[u] = BLACK
        return None

    for u in edges:
        if colour[u] == WHITE:
            found = visit(u)
            if found:
                return found
    return None
