"""One application, many deployments: ``app:`` and ``deploy:`` compiled into ordinary ``services:``.

An *application* is a set of components, each with its own work (``service_time``), its calls to
other components and its memory. A *deployment* says which components share a process:

``monolith``
    every component in one service (``deploy.name``, default ``monolith``): calls between
    components are in-process (no link, ``in_process_call`` of extra work each), one failure
    domain, scaled and restarted together, memory shared.
``microservices``
    one service per component, named like it: every call crosses a link.
``groups: {storefront: [catalog, cart], billing: [payments]}``
    the components listed together share a service named by the group; components left out of
    every group get a service of their own.

.. code-block:: yaml

    app:
      storefront: {service_time: 2ms, calls: [catalog, cart], memory: {base: 80MB}}
      catalog:    {service_time: {dist: exponential, mean: 6ms}}
      cart:       {service_time: 3ms, calls: [{service: payments, probability: 0.3}]}
      payments:   {service_time: 12ms}
    deploy:
      style: microservices            # or monolith, or groups: {...}
      serialization: 200us            # per message: a visit pays it twice (request, response)
      in_process_call: 5us            # per in-process call
      runtime_memory: 120MB           # per replica of every deployed service (one process)
      price: 0.04                     # per replica-hour, as services' price
      services: {catalog: {replicas: 3, workers: 8}}   # any service key of a deployed service
    workload:
      - {type: poisson, rate: 100/s, target: storefront}   # components, whatever the deployment

:func:`expand` runs on the raw scenario data before validation (from
:func:`simsys.spec.load.validate`): it checks ``app`` and ``deploy`` (problems name the user's
field paths, ``deploy.groups.storefront[1]``, and the file line), compiles them into checked
``services``, renames component names to deployed services in workload targets, links, Chaos
Monkey targets and faults, and keeps the checked ``app`` and ``deploy`` on the scenario for
:func:`app_graph`, :func:`deployment` and cost.

How a deployed service works
----------------------------
A visit to a deployed service enters at one component (its *entry*: the component a workload
targets, or the one another service calls) and keeps the worker it got for the whole visit. The
worker does the entry's work, then its calls in order: a call to a component in the same service
is in-process (``in_process_call`` more, then that component's work and calls, recursively); a
call to a component elsewhere crosses a link to that component's service, and the worker waits
for the answer before going on. A service can be entered at several components, and one visit
may call another service several times (at different components). A fan-out
(``{parallel: [...], quorum: k}``) is all remote (the services' fan-out) or all in-process (on
threads of the same worker: the k-th shortest of its members' times).

When a visit is simply one stretch of work followed by its outgoing calls (always so for
monoliths and microservices), the service is an ordinary one whose ``service_time`` is the sum
of the component works along the in-process call tree (:class:`ComponentWork`). Otherwise it
carries a :class:`Program` per entry, and the simulator runs it step by step.

Component work is drawn from random streams named by component (``component/<name>/time``) and
coin flips from ``call/<caller>-><callee>``, the names the simulator gives a microservice's
calls, so two deployments of one application under one seed see the same arrivals and the same
work per component (common random numbers).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

from ..errors import Problem, ScenarioError
from .chaos import Failures
from .distributions import Constant, DistBase, Distribution, NonNegDuration, batched
from .model import Call, CallStep, Memory, Parallel, Service, find_cycle, flat_calls
from .model_base import CLIENT, Size, Strict
from .problems import Loc, Problems

if TYPE_CHECKING:
    import networkx as nx

    from .model import Scenario


# A compiled service time is not one of the distributions a file may write, so pydantic warns
# when a Scenario holding one is dumped (to --out, to a report, or by load(scenario,
# overrides)). The dump is still right: it holds app: and deploy:, and expand() compiles them
# again, dropping the compiled services. Only that warning is silenced, until the Distribution
# union learns to serialize compiled kinds (see ComponentWork).
warnings.filterwarnings(
    "ignore", message=r"(?s)Pydantic serializer warnings:.*input_type=ComponentWork",
    category=UserWarning,
)
Balancer = Literal["round_robin", "random", "least_connections", "power_of_two"]
STYLES = ("monolith", "microservices", "groups")
WORK = "component_work"  # the ``dist`` tag of compiled service times


# -- the scenario keys ----------------------------------------------------------------------
class Component(Strict):
    """One component of the application.

    ``replicas``, ``workers``, ``queue`` and ``balancer`` are what the component asks for when
    deployed alone; a service holding several components takes the largest of its members'
    (``deploy.services`` sets them outright).
    """

    service_time: Distribution = Constant(value=0.0)
    calls: list[CallStep] = Field(default_factory=list)
    memory: Memory = Field(default_factory=Memory)
    replicas: int | None = Field(None, ge=1)
    workers: int | None = Field(None, ge=1)
    queue: int | None = Field(None, ge=0)
    balancer: Balancer | None = None
    failures: Failures | None = None

    def flat_calls(self) -> list[tuple[int, Call, Parallel | None]]:
        """Every call with its position and its fan-out (or None), as ``Service.flat_calls``."""
        return flat_calls(self.calls)


# Keys of a deployed service that come from its components, not from ``deploy.services``.
FROM_APP = ("service_time", "calls", "memory")


class Deploy(Strict):
    """How the application is deployed; ``deploy: monolith`` is short for ``{style: monolith}``.

    ``serialization`` is paid per message by the service that handles it: each visit to a
    deployed service costs its worker ``2 × serialization`` (read the request, write the
    response), from clients too, so a monolith pays it once per request and microservices once
    per hop. ``in_process_call`` is paid per in-process call. ``runtime_memory`` is added once
    per replica of every deployed service (each is one process). ``price`` is every deployed
    service's price per replica-hour.

    ``services.<name>`` sets keys of one deployed service — any key of ``services:`` but
    ``service_time``, ``calls`` and ``memory``, which come from its components — plus
    ``memory_limit``; what it leaves out is taken from the members (the largest ``replicas``,
    ``workers`` and ``queue``, the entry's ``balancer``, their failures combined).
    """

    style: Literal["monolith", "microservices", "groups"]
    groups: dict[str, list[str]] | None = None
    name: str | None = None
    in_process_call: NonNegDuration = 0.0
    serialization: NonNegDuration = 0.0
    runtime_memory: Size = 0.0
    price: float = Field(0.0, ge=0)
    services: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"style": value}
        if isinstance(value, Mapping) and "style" not in value and value.get("groups") is not None:
            return {**value, "style": "groups"}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Deploy:
        if self.style == "groups" and self.groups is None:
            raise ValueError("style groups needs groups: {service: [component, ...]}")
        return self


# -- compiled service time ------------------------------------------------------------------
# A node of an in-process call tree: (component, ((probability, node), ...)); a call may also be
# an in-process fan-out (see FAN_OUT).
Node = tuple[str, tuple[tuple[float, Any], ...]]


def named_rng(seed: int, name: str) -> np.random.Generator:
    """The generator the simulator's ``Streams(seed).rng(name)`` gives (same key derivation)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    key = int.from_bytes(digest, "little")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(key,)))


# An in-process call tree. A node is ``(component, calls)``; each of its calls is either
# ``(probability, node)`` (a call, made in order) or ``(FAN_OUT, quorum, ((probability, node),
# ...))`` (calls made at once, on threads of the same worker: they take the quorum-th shortest
# of their times, all of them when quorum is None).
FAN_OUT = "fan-out"


def _has_fan_out(node: Node) -> bool:
    return any(c[0] == FAN_OUT or _has_fan_out(c[1]) for c in node[1])


def _edges(node: Node) -> list[tuple[float, Node]]:
    """The in-process calls of a node, fan-out members included, in order."""
    out: list[tuple[float, Node]] = []
    for c in node[1]:
        out.extend(c[2] if c[0] == FAN_OUT else [c])
    return out


def tree_components(node: Node) -> list[str]:
    """Components whose work a tree includes, each once, in call order."""
    out: list[str] = []

    def walk(n: Node) -> None:
        if n[0] not in out:
            out.append(n[0])
        for _, child in _edges(n):
            walk(child)

    walk(node)
    return out


def tree_coins(node: Node) -> list[tuple[str, str]]:
    """In-process calls of a tree taken with a probability below 1, as (caller, callee)."""
    out: list[tuple[str, str]] = []

    def walk(n: Node) -> None:
        for p, child in _edges(n):
            if p < 1.0 and (n[0], child[0]) not in out:
                out.append((n[0], child[0]))
            walk(child)

    walk(node)
    return out


def fan_out_sampler(caller: str, item: Any, works: Mapping[str, Callable[[], float]],
                    coins: Mapping[tuple[str, str], Callable[[], float]],
                    ipc: float) -> Callable[[], float]:
    """Time of an in-process fan-out ``(FAN_OUT, quorum, members)`` made by ``caller``: each
    member taken on its coin costs ``ipc`` plus its subtree; the fan-out takes the quorum-th
    shortest (of those taken; the longest when quorum is None)."""
    _, quorum, members = item
    kids = [(coins.get((caller, child[0])) if p < 1.0 else None, p,
             tree_sampler(child, works, coins, ipc)) for p, child in members]

    def sample() -> float:
        times = sorted(ipc + f() for coin, p, f in kids if coin is None or coin() < p)
        if not times:
            return 0.0
        need = len(times) if quorum is None else min(quorum, len(times))
        return times[need - 1]

    return sample


def tree_sampler(node: Node, works: Mapping[str, Callable[[], float]],
                 coins: Mapping[tuple[str, str], Callable[[], float]],
                 ipc: float) -> Callable[[], float]:
    """A sampler of a tree's work: the node's, then each call in order (its coin, then
    ``ipc`` plus the callee's subtree), fan-outs as :func:`fan_out_sampler`."""
    comp, calls = node
    work = works[comp]
    if not calls:
        return work
    steps: list[tuple[Any, float, Callable[[], float]]] = []
    for c in calls:
        if c[0] == FAN_OUT:
            steps.append((None, 1.0, fan_out_sampler(comp, c, works, coins, ipc)))
        else:
            p, child = c
            sub = tree_sampler(child, works, coins, ipc)
            steps.append((coins.get((comp, child[0])) if p < 1.0 else None, p,
                          (lambda f=sub: ipc + f()) if ipc else sub))

    def sample() -> float:
        t = work()
        for coin, p, f in steps:
            if coin is None or coin() < p:
                t += f()
        return t

    return sample


class ComponentWork(DistBase):
    """The work one visit to a deployed service does on its worker: the entry component's,
    then (in call order, each call taken with its probability) ``in_process_call`` plus the
    work of each component it calls in-process, recursively; plus ``2 × serialization``.
    (``program`` is set instead when a visit's work and calls interleave; then ``tree`` is the
    default entry's and gives only its mean work.)

    A distribution in the simulator's sense (``sampler``, ``mean``, ``variance``), drawing each
    component's work from the stream ``component/<name>/time`` and each in-process coin from
    ``call/<caller>-><callee>`` of the run's seed.
    """

    dist: Literal["component_work"] = WORK
    entry: str
    tree: Any                      # Node
    works: dict[str, Any]          # component -> its service_time distribution
    in_process_call: float = 0.0
    serialization: float = 0.0
    # the component call each call leaving the service carries: target service -> "a->b" (a
    # here, b there); it names the call's random streams and the component its visit enters at
    remote_calls: dict[str, str] = Field(default_factory=dict)
    # workload index -> the component its requests enter this service at
    clients: dict[int, str] = Field(default_factory=dict)
    # set when one sum of work cannot say what a visit does (several entries, work after a
    # call that leaves the service, or a call leaving from an optional in-process call)
    program: Any = None            # Program

    # -- theory -----------------------------------------------------------------------------
    def _moments(self, node: Node) -> tuple[float, float]:
        comp, calls = node
        mean = self.works[comp].mean
        var = self.works[comp].variance
        for p, child in calls:
            m, v = self._moments(child)
            m += self.in_process_call
            mean += p * m
            var += p * (v + m * m) - (p * m) ** 2
        return mean, var

    def _estimated(self) -> np.ndarray:
        """Work of 200 000 visits (fixed seed): the moments of trees with fan-outs, whose
        order statistics have no closed form here."""
        return self.draw(np.random.default_rng(0), 200_000)

    @property
    def mean(self) -> float:
        if _has_fan_out(self.tree):
            return float(self._estimated().mean())
        return self._moments(self.tree)[0] + 2 * self.serialization

    @property
    def variance(self) -> float:
        if _has_fan_out(self.tree):
            return float(self._estimated().var())
        return self._moments(self.tree)[1]

    def components(self) -> list[str]:
        """Components whose work this includes, each once, in call order."""
        return tree_components(self.tree)

    def coins(self) -> list[tuple[str, str]]:
        """In-process calls taken with a probability below 1, as (caller, callee)."""
        return tree_coins(self.tree)

    # -- sampling ---------------------------------------------------------------------------
    def sampler_from(self, rng_of: Callable[[str], np.random.Generator]) -> Callable[[], float]:
        """A sampler whose streams come from ``rng_of(name)``, e.g. the simulator's
        ``Streams.rng``; each stream is asked for once."""
        works = {c: self.works[c].sampler(rng_of(f"component/{c}/time")) for c in self.components()}
        coins = {k: batched(rng_of(f"call/{k[0]}->{k[1]}").random) for k in self.coins()}
        f = tree_sampler(self.tree, works, coins, self.in_process_call)
        if self.serialization > 0:
            extra = 2 * self.serialization
            return lambda: f() + extra
        return f

    def sampler(self, rng: np.random.Generator) -> Callable[[], float]:
        """Streams keyed by component name, from the seed of ``rng`` (the simulator hands each
        service a generator of the run's ``SeedSequence``; only its seed is used)."""
        seed_seq = getattr(rng.bit_generator, "seed_seq", None)
        seed = getattr(seed_seq, "entropy", None)
        if not isinstance(seed, int):  # not from a SeedSequence: draw a seed from it
            seed = int(rng.integers(2**63))
        return self.sampler_from(lambda name: named_rng(seed, name))

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        f = self.sampler(rng)
        return np.fromiter((f() for _ in range(n)), dtype=float, count=n)


# -- component programs ----------------------------------------------------------------------
WORK_STEP, COIN_STEP, REMOTE_STEP = "work", "coin", "remote"
FAN_OUT_WORK_STEP, FAN_OUT_STEP = "fan-out work", "fan-out"


@dataclass(frozen=True)
class Remote:
    """A call that leaves a deployed service: ``caller`` (component here) calls ``callee``
    (component of ``service``) with ``probability``. ``call`` is the call as written (with its
    pattern keys: timeout, retry, …); in a graph's ``program`` it is the
    :class:`~simsys.spec.patterns.CallPolicy` in force (the service's keys as defaults), or
    None when no pattern applies."""

    caller: str
    callee: str
    service: str
    probability: float
    call: Any


@dataclass(frozen=True)
class Program:
    """What a visit to a deployed service does, for each component it can be entered at.

    ``steps[entry]`` is the in-process call tree of ``entry`` laid out flat, in execution
    order: ``("work", component, in_process)`` (the component's work, plus ``in_process_call``
    when it was called in-process), ``("coin", caller, callee, p, skip_to)`` (an in-process call
    made with probability ``p``; when it is not made, go on at ``skip_to``) and
    ``("remote", k)`` (make ``remotes[k]`` and wait for its answer). The worker is held from the
    visit's start to its end; work between two remote calls is one stretch of it.
    """

    steps: dict[str, tuple[tuple[Any, ...], ...]]
    works: dict[str, Any]
    remotes: tuple[Remote, ...]
    in_process_call: float
    serialization: float
    default: str                      # the entry of visits that name none

    def with_policies(self, policies: list[Any]) -> Program:
        """The same program with each remote call's pattern keys replaced (in order)."""
        from dataclasses import replace

        return replace(self, remotes=tuple(replace(r, call=p)
                                           for r, p in zip(self.remotes, policies, strict=True)))


def _flatten(app: dict[str, Component], entry: str, members: set[str], host: dict[str, str],
             remotes: dict[tuple[str, str], int]) -> tuple[tuple[Any, ...], ...]:
    """The flat steps of a visit entered at ``entry`` (see :class:`Program`); ``remotes`` maps
    (caller, callee) to the remote call's index, growing as calls are met. A fan-out is all
    in-process (one step of work, :func:`fan_out_sampler`) or all remote (checked before)."""
    steps: list[Any] = []

    def walk(comp: str, in_process: bool) -> None:
        steps.append((WORK_STEP, comp, in_process))
        for step in app[comp].calls:
            if isinstance(step, Parallel):
                if all(c.service in members for c in step.parallel):
                    kids = tuple((c.probability, _tree(app, c.service, members))
                                 for c in step.parallel)
                    steps.append((FAN_OUT_WORK_STEP, comp, (FAN_OUT, step.quorum, kids)))
                else:
                    ks = tuple(remotes.setdefault((comp, c.service), len(remotes))
                               for c in step.parallel)
                    steps.append((FAN_OUT_STEP, ks, step.quorum))
                continue
            call = step
            if call.service in members:
                if call.probability < 1.0:
                    at = len(steps)
                    steps.append(None)
                    walk(call.service, True)
                    steps[at] = (COIN_STEP, comp, call.service, call.probability, len(steps))
                else:
                    walk(call.service, True)
            else:
                steps.append((REMOTE_STEP, remotes.setdefault((comp, call.service), len(remotes))))

    walk(entry, False)
    return tuple(steps)


def _one_sum_will_do(steps: tuple[tuple[Any, ...], ...]) -> bool:
    """Can a visit be one stretch of work followed by its remote calls, each taken on its own
    coin? Yes when no work follows a remote call and no remote call hangs on an optional
    in-process call (its chance would otherwise be tied to that call's coin)."""
    seen_remote = False
    coin_until = -1
    for i, step in enumerate(steps):
        if step[0] == COIN_STEP:
            coin_until = max(coin_until, step[4])
        elif step[0] in (REMOTE_STEP, FAN_OUT_STEP):
            if i < coin_until:
                return False
            seen_remote = True
        elif seen_remote:
            return False
    return True


def _leaves(app: dict[str, Component], comp: str, members: set[str]) -> str | None:
    """A component outside ``members`` that ``comp``'s in-process subtree calls, or None."""
    for _, call, _ in app[comp].flat_calls():
        if call.service not in members:
            return call.service
        far = _leaves(app, call.service, members)
        if far is not None:
            return far
    return None


def _check_fan_outs(app: dict[str, Component], plan: Deployment, problems: Problems) -> None:
    """A fan-out must be all in-process (threads of one worker, doing local work only) or all
    remote in the deployment: the simulator does not mix the two."""
    for name, comp in app.items():
        here = plan.host[name]
        members = set(plan.services[here])
        for i, step in enumerate(comp.calls):
            if not isinstance(step, Parallel):
                continue
            local = [c.service for c in step.parallel if c.service in members]
            if local and len(local) < len(step.parallel):
                away = [c.service for c in step.parallel if c.service not in members]
                problems.add(("app", name, "calls", i),
                             f"in this deployment the fan-out calls {', '.join(local)} in-process "
                             f"and {', '.join(away)} in other services; a fan-out must be all "
                             "in-process or all remote: group its members together")
                continue
            for member in local:
                far = _leaves(app, member, members)
                if far is not None:
                    problems.add(("app", name, "calls", i),
                                 f"in this deployment the in-process fan-out's member {member!r} "
                                 f"calls {far!r} in another service; an in-process fan-out runs "
                                 "on threads of one worker and does only local work")
                    break


# -- the plan: which component goes where ---------------------------------------------------
@dataclass(frozen=True)
class Deployment:
    """Where each component runs. ``services`` maps each deployed service to its components
    (application order); ``host`` maps each component to its service; ``entries`` gives the
    components a service's visits can start at (from workloads and other services' calls) and
    ``entry`` the first of them."""

    style: str
    services: dict[str, list[str]]
    host: dict[str, str]
    entry: dict[str, str]
    entries: dict[str, list[str]] | None = None   # every component a service is entered at

    def resolve(self, name: str) -> str | None:
        """The deployed service of a component or service name, or None."""
        if name in self.host:
            return self.host[name]
        return name if name in self.services else None


def _bad_name(name: str) -> bool:
    return name == CLIENT or "->" in name or not name.strip()


def _plan(names: list[str], deploy: Deploy, problems: Problems) -> dict[str, list[str]]:
    """Deployed service -> members (``names`` are the components), checking the groups."""
    known = ", ".join(names)
    if deploy.style == "monolith":
        if deploy.groups is not None:
            problems.add(("deploy", "groups"), "groups apply to style groups, not monolith")
        name = deploy.name or "monolith"
        if _bad_name(name):
            problems.add(("deploy", "name"), f"{name!r} cannot be a service name (reserved or empty)")
        return {name: names}
    if deploy.name is not None:
        problems.add(("deploy", "name"), f"name applies to style monolith, not {deploy.style}")
    if deploy.style == "microservices":
        if deploy.groups is not None:
            problems.add(("deploy", "groups"), "groups apply to style groups, not microservices")
        return {c: [c] for c in names}
    groups = deploy.groups or {}
    placed: dict[str, tuple[str, int]] = {}
    out: dict[str, list[str]] = {}
    for g, members in groups.items():
        if _bad_name(g):
            problems.add(("deploy", "groups", g), f"{g!r} cannot be a service name (reserved or empty)")
        if not members:
            problems.add(("deploy", "groups", g), "expected at least one component")
        out[g] = []
        for j, c in enumerate(members):
            if c not in names:
                problems.add(("deploy", "groups", g, j), f"unknown component {c!r}; components are: {known}")
            elif c in placed:
                g0, j0 = placed[c]
                where = f"deploy.groups.{g0}[{j0}]"
                problems.add(("deploy", "groups", g, j),
                             f"{c!r} is already in group {g0!r} ({where}); a component is deployed once")
            else:
                placed[c] = (g, j)
                out[g].append(c)
    for g in groups:
        if g in names and g in placed and placed[g][0] != g:
            problems.add(("deploy", "groups", g),
                         f"group {g!r} is named like component {g!r}, which is in group "
                         f"{placed[g][0]!r}; rename the group")
    for c in names:
        if c not in placed:
            if c in out:
                problems.add(("deploy", "groups", c),
                             f"group {c!r} is named like component {c!r}, which is not in it; add "
                             "the component to the group or rename the group")
            else:
                out[c] = [c]  # left out of every group: deployed alone
    # order services by their first component in the application
    first = {s: min((names.index(c) for c in ms), default=len(names)) for s, ms in out.items()}
    return dict(sorted(out.items(), key=lambda kv: first[kv[0]]))


def _entries(app: dict[str, Component], services: dict[str, list[str]], host: dict[str, str],
             targets: list[tuple[Loc, str]]) -> dict[str, list[str]]:
    """The components each deployed service is entered at (from workloads and from calls of
    other services), in application order; a service nobody enters gets its root component."""
    order = {c: i for i, c in enumerate(app)}
    seen: dict[str, set[str]] = {svc: set() for svc in services}
    for _, comp in targets:
        seen[host[comp]].add(comp)
    for name, comp in app.items():
        for _, call, _ in comp.flat_calls():
            if call.service in host and host[call.service] != host[name]:
                seen[host[call.service]].add(call.service)
    entries: dict[str, list[str]] = {}
    for svc, members in services.items():
        if seen[svc]:
            entries[svc] = sorted(seen[svc], key=order.__getitem__)
            continue
        called = {c.service for m in members for _, c, _ in app[m].flat_calls()
                  if c.service in members}
        roots = [m for m in members if m not in called]
        entries[svc] = [(roots or members)[0]]
    return entries


def _tree(app: dict[str, Component], comp: str, members: set[str]) -> Node:
    calls: list[Any] = []
    for step in app[comp].calls:
        if isinstance(step, Parallel):
            if all(c.service in members for c in step.parallel):
                calls.append((FAN_OUT, step.quorum, tuple(
                    (c.probability, _tree(app, c.service, members)) for c in step.parallel)))
        elif step.service in members:
            calls.append((step.probability, _tree(app, step.service, members)))
    return (comp, tuple(calls))


def _largest(values: Iterable[int | None]) -> int | None:
    vs = [v for v in values if v is not None]
    return max(vs) if vs else None


def _compile_service(name: str, members: list[str], app: dict[str, Component], deploy: Deploy,
                     plan: Deployment, clients: dict[int, str], problems: Problems) -> Service:
    comps = [app[m] for m in members]
    entry = plan.entry[name]
    over = dict(deploy.services.get(name) or {})
    where = ("deploy", "services", name)
    for key in FROM_APP:
        if key in over:
            problems.add((*where, key), f"{key} of a deployed service comes from its components "
                         f"({', '.join(members)}); set it under app")
            del over[key]
    limit = over.pop("memory_limit", None)
    member_set = set(members)
    entries = plan.entries[name]
    index: dict[tuple[str, str], int] = {}
    steps = {e: _flatten(app, e, member_set, plan.host, index) for e in entries}
    remotes = []
    for (caller, callee), _ in sorted(index.items(), key=lambda kv: kv[1]):
        call = next(c for _, c, _ in app[caller].flat_calls() if c.service == callee)
        # the call's own keys (timeout, retry, ...) travel with it; in-process calls ignore them
        remotes.append(Remote(caller, callee, plan.host[callee], call.probability,
                              call.model_copy(update={"service": plan.host[callee]})))
    targets = [r.service for r in remotes]
    simple = (len(entries) == 1 and _one_sum_will_do(steps[entry])
              and len(set(targets)) == len(targets))
    # Edges of the deployed graph: one per service called. A service that runs programs keeps
    # the calls themselves (with their keys) in its program; its edges carry only the links.
    calls: list[Call | Parallel] = [Call(service=t) for t in dict.fromkeys(targets)]
    if simple:  # the calls in the order the visit makes them, fan-outs kept together
        calls = []
        for step in steps[entry]:
            if step[0] == REMOTE_STEP:
                calls.append(remotes[step[1]].call)
            elif step[0] == FAN_OUT_STEP:
                calls.append(Parallel(parallel=[remotes[k].call for k in step[1]],
                                      quorum=step[2]))
    program = None if simple else Program(
        steps=steps, works={m: app[m].service_time for m in members}, remotes=tuple(remotes),
        in_process_call=deploy.in_process_call, serialization=deploy.serialization,
        default=entry)
    limits = [c.memory.limit for c in comps]
    if limit is None and all(x is not None for x in limits):
        limit = deploy.runtime_memory + sum(limits)  # type: ignore[arg-type]
    memory = Memory(
        base=deploy.runtime_memory + sum(c.memory.base for c in comps),
        per_request=sum(c.memory.per_request for c in comps),
        per_connection=sum(c.memory.per_connection for c in comps),
        limit=limit,
    )
    failures = None
    rates = [1.0 / c.failures.mean_time_to_failure for c in comps if c.failures is not None]
    if rates:  # independent exponential failures of the members: the first one downs all
        failures = Failures(mean_time_to_failure=1.0 / sum(rates))
    balancer = app[entry].balancer or next((c.balancer for c in comps if c.balancer), "round_robin")
    work = ComponentWork(
        entry=entry,
        tree=_tree(app, entry, member_set),
        works={m: app[m].service_time for m in members},
        in_process_call=deploy.in_process_call,
        serialization=deploy.serialization,
        remote_calls={r.service: f"{r.caller}->{r.callee}" for r in remotes} if simple else {},
        clients=clients,
        program=program,
    )
    if program is not None and over.get("discipline") == "ps":
        problems.add((*where, "discipline"), f"service {name!r} runs component programs (its "
                     "visits wait on other services between stretches of work), which processor "
                     "sharing cannot; use fifo or lifo, or group its components differently")
        del over["discipline"]
    fields: dict[str, Any] = {
        "replicas": _largest(c.replicas for c in comps) or 1,
        "workers": _largest(c.workers for c in comps) or 1,
        "queue": _largest(c.queue for c in comps),
        "balancer": balancer,
        "failures": failures,
        "calls": calls,
        "memory": memory,
    }
    if "price" in Service.model_fields:
        fields["price"] = deploy.price
    fields.update(over)
    try:
        svc = Service.model_validate(fields)
    except ValidationError as exc:
        problems.pydantic(exc, where)
        svc = Service.model_validate({k: v for k, v in fields.items() if k not in over})
    return svc.model_copy(update={"service_time": work})


def _is_compiled(svc: Any) -> bool:
    """A service :func:`expand` made (seen again when a compiled scenario is dumped and reloaded)."""
    st = svc.get("service_time") if isinstance(svc, Mapping) else getattr(svc, "service_time", None)
    if isinstance(st, Mapping):
        return st.get("dist") == WORK
    return isinstance(st, ComponentWork)


def _as_plain(value: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True)
    return value


# -- the entry point ------------------------------------------------------------------------
def expand(data: Mapping[str, Any], source: str | None = None,
           positions: Mapping[Loc, Any] | None = None) -> dict[str, Any]:
    """Compile ``app`` and ``deploy`` into ``services``; other scenarios come back unchanged.

    Returns a new dict (``data`` is not modified) whose ``services`` are checked
    :class:`~simsys.spec.model.Service` objects with :class:`ComponentWork` service times,
    whose workload targets, links, Chaos Monkey targets and faults name deployed services, and
    whose ``app`` and ``deploy`` are the checked models.

    Raises
    ------
    ScenarioError
        Every problem of ``app`` and ``deploy``, each with its field path and file position.

    Examples
    --------
    >>> d = expand({"app": {"web": {"calls": ["db"]}, "db": {}}, "deploy": "monolith",
    ...             "workload": [{"type": "poisson", "rate": 1, "target": "db"}]})
    >>> list(d["services"]), d["workload"][0]["target"]
    (['monolith'], 'monolith')
    """
    if data.get("app") is None and data.get("deploy") is None:  # None: a dumped Scenario's
        return dict(data)
    problems = Problems(data, source, positions or {})
    if data.get("app") is None:
        problems.add(("deploy",), "deploy needs an app: to deploy (app: {component: {...}})")
        problems.raise_if_any()
    if data.get("deploy") is None:
        problems.add(("app",), "required key deploy is missing: give deploy: monolith, "
                     "microservices or {groups: {service: [component, ...]}}")
        problems.raise_if_any()
    raw_app = _as_plain(data["app"])
    valid: dict[str, Component] = {}  # the components that are sound on their own
    if not isinstance(raw_app, Mapping):
        problems.add(("app",), f"expected a mapping of components, got {raw_app!r}")
        raw_app = {}
    for name, raw in raw_app.items():  # one by one, so the valid ones are checked further
        try:
            valid[str(name)] = Component.model_validate(_as_plain(raw))
        except ValidationError as exc:
            problems.pydantic(exc, ("app", name))
    try:
        deploy = Deploy.model_validate(_as_plain(data["deploy"]))
    except ValidationError as exc:
        problems.pydantic(exc, ("deploy",))
        deploy = None
    services_in = data.get("services") or {}
    user_services = ([k for k, v in services_in.items() if not _is_compiled(v)]
                     if isinstance(services_in, Mapping) else ["?"])
    if user_services:
        problems.add(("services",), "give services or app, not both: deploy places the app's "
                     "components in services (set a deployed service's replicas, workers or queue "
                     "under deploy.services.<name>)")
    # Go as far as the valid parts allow, so that every problem is reported at once.
    components = [k for k in raw_app if isinstance(k, str)] if isinstance(raw_app, Mapping) else []
    if isinstance(raw_app, Mapping) and not raw_app:
        problems.add(("app",), "expected at least one component")
    if valid:
        _check_app(valid, components, problems)
    services = _plan(components, deploy, problems) if deploy is not None and components else {}
    host = {c: s for s, ms in services.items() for c in ms}
    names = ", ".join(components)
    out = dict(data)

    # workload targets: components, or deployed services
    workload = [dict(w) if isinstance(w, Mapping) else w for w in (data.get("workload") or [])]
    targets: list[tuple[Loc, str]] = []
    entered = _entered_before(services_in)
    for i, w in enumerate(workload):
        if not isinstance(w, dict) or not isinstance(w.get("target"), str) or not components:
            continue  # the model reports it
        t = w["target"]
        if t in host:
            targets.append((("workload", i, "target"), t))
            w["target"] = host[t]
        elif host.get(entered.get(t, {}).get(i, "")) == t:  # a dumped scenario, compiled again
            targets.append((("workload", i, "target"), entered[t][i]))
        elif t not in services and t not in components:
            problems.add(("workload", i, "target"), f"unknown component {t!r}; components are: {names}")
    problems.raise_if_any()
    assert deploy is not None
    app = valid
    entries = _entries(app, services, host, targets)
    plan = Deployment(deploy.style, services, host, {s: e[0] for s, e in entries.items()}, entries)
    for name in deploy.services:
        if name not in services:
            problems.add(("deploy", "services", name),
                         f"no deployed service {name!r}; this deployment has: {', '.join(services)}")
    _check_fan_outs(app, plan, problems)
    problems.raise_if_any()
    clients: dict[str, dict[int, str]] = {name: {} for name in services}
    for loc, comp in targets:
        clients[host[comp]][loc[1]] = comp
    compiled = {name: _compile_service(name, members, app, deploy, plan, clients[name], problems)
                for name, members in services.items()}
    _check_service_cycles(compiled, plan, problems)
    if "links" in data:
        out["links"] = _links(data["links"], plan, names, problems)
    problems.raise_if_any()
    out["services"] = compiled
    if "workload" in data:
        out["workload"] = workload
    _rename_chaos(out, plan)
    out["app"] = app
    out["deploy"] = deploy
    return out


def _entered_before(services: Any) -> dict[str, dict[int, str]]:
    """Workload entries kept by the compiled services of a dumped scenario (whose workload
    targets already name services): service -> {workload index: component}."""
    out: dict[str, dict[int, str]] = {}
    if isinstance(services, Mapping):
        for name, svc in services.items():
            if _is_compiled(svc):
                st = svc.get("service_time") if isinstance(svc, Mapping) else svc.service_time
                clients = st.get("clients") if isinstance(st, Mapping) else st.clients
                out[name] = {int(k): v for k, v in (clients or {}).items()}
    return out


def _check_app(app: dict[str, Component], names: list[str], problems: Problems) -> None:
    known = ", ".join(names)
    for name in names:
        if _bad_name(name):
            problems.add(("app", name), f"{name!r} cannot be a component name (reserved or empty)")
    for name, comp in app.items():
        seen: set[str] = set()
        for i, call, group in comp.flat_calls():
            where: tuple[Any, ...] = ("app", name, "calls", i)
            if group is not None:
                where = (*where, "parallel", group.parallel.index(call))
            if call.service not in names:
                problems.add(where,
                             f"calls unknown component {call.service!r}; components are: {known}")
            elif call.service in seen:
                problems.add(where,
                             f"{call.service!r} is called twice; call each component once "
                             "(use probability for optional calls)")
            seen.add(call.service)
    cycle = find_cycle({n: [c.service for _, c, _ in app[n].flat_calls()] for n in app})
    if cycle:
        problems.add(("app", cycle[0], "calls"), "calls form a cycle: "
                     + " -> ".join(cycle + [cycle[0]]) + " (a request would wait for itself)")


def _check_service_cycles(compiled: dict[str, Service], plan: Deployment,
                          problems: Problems) -> None:
    """Components in a call chain a -> b -> c may not be grouped so that services call each
    other back (a and c together, b apart): a visit would hold a worker of its service while
    waiting on a call that needs another worker of the same service."""
    cycle = find_cycle({n: [c.service for _, c, _ in svc.flat_calls()]
                         for n, svc in compiled.items()})
    if cycle:
        path = " -> ".join([*cycle, cycle[0]])
        problems.add(("deploy", "groups"), f"this grouping makes services call each other back "
                     f"({path}): a visit would wait on its own service's workers; deploy the "
                     "components so that calls between services go one way")


def _links(links: Any, plan: Deployment, names: str, problems: Problems) -> Any:
    """Link keys naming components name their deployed services; in-process pairs are dropped
    (calls inside a service cross no link)."""
    if not isinstance(links, Mapping):
        return links
    out: dict[str, Any] = {}
    where: dict[str, str] = {}
    for key, value in links.items():
        if key == "default" or not isinstance(key, str):
            out[key] = value
            continue
        parts = [p.strip() for p in key.split("->")]
        if len(parts) != 2:
            out[key] = value  # the model reports it
            continue
        source, target = parts
        ends = []
        for end in (source, target):
            if end == CLIENT and end == source:
                ends.append(end)
                continue
            resolved = plan.resolve(end)
            if resolved is None:
                problems.add(("links", key), f"unknown component {end!r}; components are: {names}")
            ends.append(resolved)
        if None in ends:
            continue
        if ends[0] == ends[1]:
            continue  # in-process in this deployment
        new = f"{ends[0]}->{ends[1]}"
        if new in out and _as_plain(out[new]) != _as_plain(value):
            problems.add(("links", key), f"links {where[new]!r} and {key!r} are both the link "
                         f"{new!r} in this deployment, with different settings")
            continue
        out[new] = value
        where[new] = key
    return out


def _rename_chaos(out: dict[str, Any], plan: Deployment) -> None:
    """Chaos Monkey targets, faults and probes may name components: they act on their service."""
    def rename(name: Any) -> Any:
        if not isinstance(name, str):
            return name
        if "->" in name:
            a, _, b = (p.strip() for p in name.partition("->"))
            return f"{plan.resolve(a) or a}->{plan.resolve(b) or b}"
        return plan.resolve(name) or name

    chaos = out.get("chaos")
    if isinstance(chaos, Mapping) and isinstance(chaos.get("monkey"), Mapping):
        monkey = dict(chaos["monkey"])
        if isinstance(monkey.get("targets"), list):
            monkey["targets"] = list(dict.fromkeys(rename(t) for t in monkey["targets"]))
        out["chaos"] = {**chaos, "monkey": monkey}

    def faults(items: Any) -> Any:
        if not isinstance(items, list):
            return items
        new = []
        for f in items:
            if isinstance(f, Mapping):
                f = dict(f)
                if "target" in f:
                    f["target"] = rename(f["target"])
                if isinstance(f.get("groups"), list):
                    f["groups"] = [list(dict.fromkeys(rename(x) for x in g)) if isinstance(g, list)
                                   else g for g in f["groups"]]
            new.append(f)
        return new

    if "faults" in out:
        out["faults"] = faults(out["faults"])
    exp = out.get("experiment")
    if isinstance(exp, Mapping):
        exp = dict(exp)
        if "method" in exp:
            exp["method"] = faults(exp["method"])
        ssh = exp.get("steady-state-hypothesis")
        if isinstance(ssh, Mapping) and isinstance(ssh.get("probes"), list):
            probes = []
            for p in ssh["probes"]:
                if isinstance(p, Mapping) and isinstance(p.get("metric"), str):
                    parts = p["metric"].split(".")
                    if parts[0] == "services" and len(parts) > 2:
                        parts[1] = rename(parts[1])
                        p = {**p, "metric": ".".join(parts)}
                probes.append(p)
            exp["steady-state-hypothesis"] = {**ssh, "probes": probes}
        out["experiment"] = exp


# -- reading a compiled scenario back -------------------------------------------------------
def deployment(spec: Any) -> Deployment | None:
    """Where each component of a scenario's app runs; None for a scenario without ``app``.

    Examples
    --------
    >>> d = deployment({"app": {"web": {"calls": ["db"]}, "db": {}}, "deploy": "microservices"})
    >>> d.host
    {'web': 'web', 'db': 'db'}
    """
    s = _scenario(spec)
    if s.app is None:
        return None
    problems = Problems({}, None, {})
    services = _plan(list(s.app), s.deploy, problems)
    host = {c: n for n, ms in services.items() for c in ms}
    works = {n: svc.service_time for n, svc in s.services.items()
             if isinstance(svc.service_time, ComponentWork)}
    entry = {n: w.entry for n, w in works.items()}
    entries = {n: list(w.program.steps) if w.program is not None else [w.entry]
               for n, w in works.items()}
    return Deployment(s.deploy.style, services, host, entry, entries)


def _scenario(spec: Any) -> Scenario:
    from .load import load

    return load(spec)


def app_graph(spec: Any) -> nx.DiGraph:
    """The logical application: one node per component, one edge per call, whatever the
    deployment (``simsys.build_graph`` gives the deployed services).

    Node attributes: ``kind="component"``, ``service`` (the deployed service it runs in),
    ``service_time``, ``memory``, ``replicas``, ``workers``, ``queue`` (as the component asks,
    None when unset). Edge attributes: ``order``, ``probability``, ``local`` (True for an
    in-process call in this deployment). ``G.graph`` holds ``name``, ``style`` and
    ``services`` (deployed service -> components).

    Examples
    --------
    >>> G = app_graph({"app": {"web": {"calls": ["db"]}, "db": {}}, "deploy": "monolith"})
    >>> G.edges["web", "db"]["local"], G.nodes["db"]["service"]
    (True, 'monolith')
    """
    import networkx as nx

    s = _scenario(spec)
    if s.app is None:
        raise ScenarioError([Problem("app", "this scenario has no app: (it describes services)")])
    plan = deployment(s)
    assert plan is not None
    G = nx.DiGraph(name=s.name, style=plan.style, services=plan.services)
    for name, comp in s.app.items():
        G.add_node(name, kind="component", service=plan.host[name], service_time=comp.service_time,
                   memory=comp.memory, replicas=comp.replicas, workers=comp.workers,
                   queue=comp.queue)
    for name, comp in s.app.items():
        for order, call, group in comp.flat_calls():
            G.add_edge(name, call.service, order=order, probability=call.probability,
                       parallel=group is not None,
                       local=plan.host[name] == plan.host[call.service])
    return G


__all__ = [
    "Component",
    "ComponentWork",
    "Deploy",
    "Deployment",
    "app_graph",
    "deployment",
    "expand",
    "named_rng",
]
