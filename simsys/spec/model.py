"""The scenario as typed, validated data: every default of the scenario format lives here.

A :class:`Scenario` is built from a dict (usually read from YAML by :mod:`simsys.spec.load`).
Unknown keys are rejected; units are resolved (seconds, bytes, events per second); checks that
span several fields (calls to services that exist, no cycles of synchronous calls, warmup shorter
than the run) are made here, so later layers can trust what they get.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, field_validator, model_validator

from ..errors import did_you_mean
from .chaos import Chaos, CrashFault, Experiment, Failures, Fault, PartitionFault, Recovery
from .distributions import (
    Constant,
    Distribution,
    NonNegDuration,
    PosDuration,
)
from .limits import MAX_REPLICAS, MAX_SERVICES, MAX_USERS, MAX_WORKERS
from .model_base import CLIENT, Fraction, Rate, Size, Strict
from .patterns import (
    Autoscale,
    CallPolicy,
    Discovery,
    Retry,
    Shed,
)
from .run_length import RunLength, UntilPrecision, Warmup, max_duration
from .websocket import PollingWorkload, WebSocketConfig, WebSocketWorkload, websocket_problems


class Call(CallPolicy):
    """One synchronous downstream call: the worker waits for the answer before going on.

    Made with ``probability``; guarded by the patterns of :class:`CallPolicy` (timeout, retry,
    circuit breaker, bulkhead, hedge, fallback).
    """

    service: str
    probability: Fraction = 1.0


def _call(value: Any) -> Any:
    return {"service": value} if isinstance(value, str) else value


class Route(Strict):
    """Where a request goes after its visit, asynchronously: with ``probability`` it moves on
    to ``service``, the worker that served it is free at once, and the request's latency is
    the sum of its visits (a Jackson or Ciw network). The rest of the probability leaves."""

    service: str
    probability: Fraction = 1.0


class Parallel(Strict):
    """Calls made at once (fan-out); the worker waits for ``quorum`` of them (default: all)."""

    parallel: list[Annotated[Call, BeforeValidator(_call)]] = Field(min_length=1)
    quorum: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _quorum(self) -> Parallel:
        if self.quorum is not None and self.quorum > len(self.parallel):
            raise ValueError(
                f"expected quorum ≤ {len(self.parallel)} (the number of parallel calls), "
                f"got {self.quorum}"
            )
        return self


def _step(value: Any) -> Any:
    if isinstance(value, str):
        return {"service": value}
    return value


def _step_kind(value: Any) -> str:
    if isinstance(value, dict) and "parallel" in value:
        return "parallel"
    if isinstance(value, Parallel):
        return "parallel"
    return "call"


def flat_calls(steps: list[Call | Parallel]) -> list[tuple[int, Call, Parallel | None]]:
    """Every call of a sequence of call steps, with its position and its fan-out (or None)."""
    out: list[tuple[int, Call, Parallel | None]] = []
    for pos, step in enumerate(steps):
        if isinstance(step, Parallel):
            out.extend((pos, c, step) for c in step.parallel)
        else:
            out.append((pos, step, None))
    return out


CallStep = Annotated[
    Annotated[Call, Tag("call")] | Annotated[Parallel, Tag("parallel")],
    Discriminator(_step_kind),
    BeforeValidator(_step),
]


class Spike(Strict):
    """The arrival rate times ``factor`` from ``at`` for ``duration``."""

    at: NonNegDuration
    duration: PosDuration
    factor: float = Field(gt=0, le=1e6)


class Memory(Strict):
    """Memory of one replica, in bytes: ``base + per_request × requests held (queued or served)``."""

    base: Size = 0.0
    per_request: Size = 0.0
    per_connection: Size = 0.0
    limit: Size | None = None


class Service(CallPolicy):
    """A service: ``replicas`` identical instances behind one balancer.

    Each replica serves up to ``workers`` requests at once and holds up to ``queue`` more waiting
    (``None`` = unbounded; a full queue rejects). A worker holds its request during
    ``service_time`` and then while each of ``calls`` is answered, in order (thread per request).
    Then the request leaves, or moves on along one of ``routes`` (asynchronously: the worker is
    free). When the next service's queue is full, ``blocking: reject`` fails the request and
    ``blocking: wait`` keeps it, and the worker, until there is room (Type I blocking).
    """

    replicas: int = Field(1, ge=1, le=MAX_REPLICAS)
    workers: int = Field(1, ge=1, le=MAX_WORKERS)
    queue: int | None = Field(None, ge=0)
    balancer: Literal[
        "round_robin", "random", "least_connections", "power_of_two", "consistent_hash"
    ] = "round_robin"
    discipline: Literal["fifo", "lifo", "ps"] = "fifo"
    service_time: Distribution = Constant(value=0.0)
    calls: list[CallStep] = Field(default_factory=list)
    routes: list[Annotated[Route, BeforeValidator(_call)]] = Field(default_factory=list)
    blocking: Literal["reject", "wait"] = "reject"
    memory: Memory = Field(default_factory=Memory)
    websocket: WebSocketConfig | None = None
    failures: Failures | None = None
    # the CallPolicy fields it inherits (timeout, retry, …) are defaults for every outgoing call
    shed: Shed | None = None
    autoscale: Autoscale | None = None
    discovery: Discovery | None = None
    price: float = Field(0.0, ge=0)   # cost of one replica for one hour, any currency

    def flat_calls(self) -> list[tuple[int, Call, Parallel | None]]:
        """Every call with its position in the sequence and its parallel group (or None)."""
        return flat_calls(self.calls)


class Link(Strict):
    """A network path. ``latency`` is one way: a call pays it going and again coming back.

    ``loss`` is the probability that one message (request or response) is lost; the request
    then ends as ``dropped``.
    """

    latency: Distribution = Constant(value=0.0)
    loss: Fraction = 0.0


class ClientPolicy(Strict):
    """What a client does about slow or failed requests: give up after ``timeout``, ``retry``.

    ``keys`` gives each request a key drawn from that many users, for ``consistent_hash``.
    """

    timeout: PosDuration | None = None
    retry: Retry | None = None
    keys: int | None = Field(None, ge=1)


class Poisson(ClientPolicy):
    """Open arrivals: requests reach ``target`` as a Poisson process of ``rate`` per second.

    ``spikes`` multiply the rate over intervals (``[{at: 60s, duration: 10s, factor: 3}]``).
    """

    type: Literal["poisson"]
    target: str
    rate: Rate
    name: str | None = None
    spikes: list[Spike] = Field(default_factory=list)


class Closed(ClientPolicy):
    """A closed population of ``users``: each sends a request, waits for it, thinks, repeats."""

    type: Literal["closed"]
    target: str
    users: int = Field(ge=1, le=MAX_USERS)
    think_time: Distribution = Constant(value=0.0)
    name: str | None = None


Workload = Annotated[
    Poisson | Closed | WebSocketWorkload | PollingWorkload, Field(discriminator="type")
]


class Scenario(Strict):
    """A whole scenario. Times in seconds, sizes in bytes, rates per second."""

    name: str = "scenario"
    seed: int = Field(0, ge=0, le=2**64 - 1)
    duration: RunLength = 60.0      # seconds, or a stop rule (simsys.spec.run_length)
    warmup: Warmup = 0.0            # seconds, or "auto" (MSER-5, simsys.analysis)
    sample_every: PosDuration = 1.0
    services: dict[str, Service] = Field(min_length=1, max_length=MAX_SERVICES)
    links: dict[str, Link] = Field(default_factory=dict)
    workload: list[Workload] = Field(default_factory=list)
    chaos: Chaos = Field(default_factory=Chaos)
    recovery: Recovery = Field(default_factory=Recovery)
    faults: list[Fault] = Field(default_factory=list)
    experiment: Experiment | None = None
    # Filled by simsys.spec.app_compile.expand from the file's app: and deploy: (compiled into
    # services): the checked components and Deploy, for app_graph, cost and comparisons.
    app: Any = None
    deploy: Any = None
    trace: bool = False   # record one span per visit (Result.spans): time spent in each hop

    @field_validator("services")
    @classmethod
    def _names(cls, services: dict[str, Service]) -> dict[str, Service]:
        for name in services:
            if name == CLIENT or "->" in name or not name.strip():
                raise ValueError(f"{name!r} cannot be a service name (reserved or empty)")
        return services

    @property
    def max_duration(self) -> float:
        """The longest the run may last, seconds (``duration``, or its stop rule's ``max``)."""
        return max_duration(self.duration)

    @property
    def stop_rule(self) -> UntilPrecision | None:
        """``duration: {until_precision: …}``, or None for a fixed duration."""
        return self.duration if isinstance(self.duration, UntilPrecision) else None

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


Found = list[tuple[tuple[str | int, ...], str]]  # (field path, message) pairs


def semantic_problems(s: Scenario) -> Found:
    """Cross-field checks, as (field path, message) pairs; empty when the scenario is sound."""
    names = set(s.services)
    known = ", ".join(sorted(names))
    out = _run_length_problems(s)
    out += _call_problems(s, names, known)
    out += _route_problems(s, names, known)
    out += _link_problems(s, names, known)
    out += _target_problems(s, names, known)
    out += _fault_list_problems(s, known)
    out += _experiment_problems(s, names, known)
    out.extend(websocket_problems(s))
    return out


def _unknown(name: str, names: set[str], known: str) -> str:
    return f"unknown service {name!r}{did_you_mean(name, names)}; services are: {known}"


def _run_length_problems(s: Scenario) -> Found:
    out: Found = []
    if s.warmup != "auto" and s.warmup >= s.max_duration:
        out.append((("warmup",), f"expected warmup < duration ({s.max_duration:g}s), "
                                 f"got {s.warmup:g}s"))
    if any(w.type in ("websocket", "polling") for w in s.workload):
        # their integrals are split at a warm-up known before the run
        if s.stop_rule is not None:
            out.append((("duration",), "a run that stops at a precision cannot have websocket "
                                       "or polling workloads; give a fixed duration"))
        if s.warmup == "auto":
            out.append((("warmup",), "warmup: auto cannot be used with websocket or polling "
                                     "workloads; give a fixed warm-up"))
    return out


def _call_problems(s: Scenario, names: set[str], known: str) -> Found:
    """Calls to unknown services, a service called twice by one caller, a cycle of calls."""
    out: Found = []
    for name, svc in s.services.items():
        seen: set[str] = set()
        for i, call, group in svc.flat_calls():
            where: tuple[str | int, ...] = ("services", name, "calls", i)
            if group is not None:
                where = (*where, "parallel", group.parallel.index(call))
            if call.service not in names:
                out.append((where, "calls " + _unknown(call.service, names, known)))
            elif call.service in seen:
                out.append((where, f"{call.service!r} is called twice; call each service once "
                                   "(use probability for optional calls)"))
            seen.add(call.service)
    cycle = find_cycle({n: [c.service for _, c, _ in s.services[n].flat_calls()] for n in s.services})
    if cycle:
        out.append((("services", cycle[0], "calls"),
                    "synchronous calls form a cycle: " + " -> ".join(cycle + [cycle[0]])
                    + " (a request would wait for itself)"))
    return out


def _link_problems(s: Scenario, names: set[str], known: str) -> Found:
    out: Found = []
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
                out.append((("links", key), _unknown(end, names, known)))
    return out


def _target_problems(s: Scenario, names: set[str], known: str) -> Found:
    """Workload targets and Chaos Monkey targets that are not services."""
    out: Found = [(("workload", i, "target"), _unknown(w.target, names, known))
                  for i, w in enumerate(s.workload) if w.target not in names]
    mk = s.chaos.monkey
    if mk is None:
        return out
    targets = list(names) if mk.targets == "all" else mk.targets
    for i, t in enumerate(targets):
        if t not in names:
            out.append((("chaos", "monkey", "targets", i), _unknown(t, names, known)))
        elif mk.min_healthy > s.services[t].replicas:
            out.append((("chaos", "monkey", "min_healthy"),
                        f"expected min_healthy ≤ replicas of {t!r} ({s.services[t].replicas}), "
                        f"got {mk.min_healthy}"))
    return out


def _fault_list_problems(s: Scenario, known: str) -> Found:
    """Each fault of ``faults`` and of the experiment's method; names used twice; faults that
    start after the run ends."""
    out: Found = []
    fault_lists: list[tuple[tuple[str, ...], list[Fault]]] = [(("faults",), s.faults)]
    if s.experiment is not None:
        fault_lists.append((("experiment", "method"), s.experiment.method))
    seen_names: dict[str, str] = {}
    for prefix, faults in fault_lists:
        for i, fault in enumerate(faults):
            out.extend(_fault_problems(fault, (*prefix, i), s, known))
            name = fault_name(fault, prefix[-1], i)
            if name in seen_names:
                out.append(((*prefix, i, "name"),
                            f"fault name {name!r} is already used by {seen_names[name]}; "
                            "give each fault its own name"))
            seen_names.setdefault(name, ".".join(prefix) + f"[{i}]")
            if fault.at >= s.max_duration:
                out.append(((*prefix, i, "at"),
                            f"expected at < duration ({s.max_duration:g}s), got {fault.at:g}s"))
    return out


def _experiment_problems(s: Scenario, names: set[str], known: str) -> Found:
    """Rollbacks that end no method action; probes of unknown services."""
    out: Found = []
    if s.experiment is None:
        return out
    names_in_method = {f.name for f in s.experiment.method if f.name}
    for i, rb in enumerate(s.experiment.rollbacks):
        if rb.ends != "all" and rb.ends not in names_in_method:
            out.append((("experiment", "rollbacks", i, "ends"),
                        f"no method action named {rb.ends!r}; expected 'all' or one of "
                        f"{sorted(names_in_method)}"))
    for i, probe in enumerate(s.experiment.steady_state_hypothesis.probes):
        parts = probe.metric.split(".")
        if parts[0] == "services" and parts[1] not in names:
            out.append((("experiment", "steady-state-hypothesis", "probes", i, "metric"),
                        _unknown(parts[1], names, known)))
    return out


def fault_name(fault: Fault, where: str, index: int) -> str:
    """A fault's name: its own, or ``faults[i]`` / ``method[i]`` after its place in the file."""
    return fault.name or f"{where}[{index}]"


def _calls_pairs(s: Scenario) -> set[tuple[str, str]]:
    pairs = {(name, c.service) for name, svc in s.services.items() for _, c, _ in svc.flat_calls()}
    pairs |= {(CLIENT, w.target) for w in s.workload}
    return pairs


def _fault_problems(fault: Fault, loc: tuple[str | int, ...], s: Scenario,
                    known: str) -> list[tuple[tuple[str | int, ...], str]]:
    names = set(s.services)
    out: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(fault, PartitionFault):
        for g, group in enumerate(fault.groups):
            for j, name in enumerate(group):
                if name not in names:
                    out.append(((*loc, "groups", g, j), f"unknown service {name!r}{did_you_mean(name, names)}; services are: {known}"))
        return out
    target = fault.target
    if "->" in target:
        if fault.kind not in ("latency", "loss"):
            out.append(((*loc, "target"), f"a {fault.kind} fault targets a service, got link {target!r}"))
        source, _, dest = (p.strip() for p in target.partition("->"))
        for end in (source, dest):
            if end not in names and not (end == CLIENT and end == source):
                out.append(((*loc, "target"), f"unknown service {end!r} in link {target!r}; services are: {known}"))
        if not out and (source, dest) not in _calls_pairs(s):
            out.append(((*loc, "target"), f"no calls go over {target!r} ({source} does not call {dest}), "
                        "so the fault would do nothing"))
    elif fault.kind == "loss":
        out.append(((*loc, "target"), f"a loss fault targets a link such as 'a->b', got {target!r}"))
    elif target not in names:
        out.append(((*loc, "target"), f"unknown service {target!r}{did_you_mean(target, names)}; services are: {known}"))
    elif isinstance(fault, CrashFault) and fault.mode == "fixed" and (fault.value or 0) > s.services[target].replicas:
        out.append(((*loc, "value"), f"expected value ≤ replicas of {target!r} ({s.services[target].replicas}), got {fault.value:g}"))
    return out


def find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """Return one cycle of the call graph as a list of service names, or None.

    Depth-first search with an explicit stack: a 2,000-service call chain is as deep as the
    search goes, far beyond Python's recursion limit.
    """
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(edges, WHITE)
    for root in edges:
        if colour[root] != WHITE:
            continue
        path = [root]                      # the grey services, in the order entered
        todo = [iter(edges.get(root, []))]  # what each of them has left to call
        colour[root] = GREY
        while todo:
            v = next(todo[-1], None)
            if v is None:
                colour[path.pop()] = BLACK
                todo.pop()
            elif v not in colour:
                continue
            elif colour[v] == GREY:
                return path[path.index(v):]
            elif colour[v] == WHITE:
                colour[v] = GREY
                path.append(v)
                todo.append(iter(edges.get(v, [])))
    return None


MAX_ROUTE_VISITS = 1_000.0  # expected visits of one request along routes (feedback loops)


def _route_problems(s: Scenario, names: set[str],
                    known: str) -> list[tuple[tuple[str | int, ...], str]]:
    """Routes name services, add up to at most 1, do not duplicate a call, and let a request
    leave: with feedback, the expected visits (I − P)⁻¹ must be finite and bounded."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    routing = [name for name, svc in s.services.items() if svc.routes]
    for name in routing:
        svc = s.services[name]
        called = {c.service for _, c, _ in svc.flat_calls()}
        seen: set[str] = set()
        for i, route in enumerate(svc.routes):
            where: tuple[str | int, ...] = ("services", name, "routes", i)
            if route.service not in names:
                out.append((where, f"routes to unknown service {route.service!r}"
                                   f"{did_you_mean(route.service, names)}; services are: {known}"))
            elif route.service in called:
                out.append((where, f"{name!r} both calls and routes to {route.service!r}; "
                                   "a request either waits for it (calls) or moves on (routes)"))
            elif route.service in seen:
                out.append((where, f"routes to {route.service!r} twice; give one route with "
                                   "the summed probability"))
            seen.add(route.service)
        total = sum(r.probability for r in svc.routes)
        if total > 1 + 1e-9:
            out.append((("services", name, "routes"),
                        f"route probabilities add up to {total:g}, more than 1"))
        if svc.discipline == "ps":
            out.append((("services", name, "routes"),
                        "routes need discipline fifo or lifo (processor sharing has no worker "
                        "to hold or free)"))
        if getattr(svc.service_time, "program", None) is not None:
            out.append((("services", name, "routes"), "a service deployed from an app: cannot "
                                                      "route; route between services"))
    if out or not routing:
        return out
    import numpy as np

    order = list(s.services)
    index = {n: i for i, n in enumerate(order)}
    P = np.zeros((len(order), len(order)))
    for name in routing:
        for route in s.services[name].routes:
            P[index[name], index[route.service]] += route.probability
    try:  # expected visits to every service of a request entering at each: (I - P)^-1
        visits = np.linalg.inv(np.eye(len(order)) - P)
        finite = bool(np.isfinite(visits).all() and (visits >= -1e-9).all())
    except np.linalg.LinAlgError:
        finite = False
    worst = float(visits.sum(axis=1).max()) if finite else np.inf
    if worst > MAX_ROUTE_VISITS:
        start = order[int(np.argmax(visits.sum(axis=1)))] if finite else routing[0]
        out.append((("services", start, "routes"),
                    "routes loop so that a request would never leave (or would visit more than "
                    f"{MAX_ROUTE_VISITS:g} services on average); lower a feedback probability"))
    return out
