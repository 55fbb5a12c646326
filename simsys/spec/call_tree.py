"""Call trees and programs of deployed services: how a visit's work is drawn, component by
component from streams named by component, so every deployment of one application sees the same
work under one seed (see :mod:`.app`)."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from .distributions import DistBase, batched

if TYPE_CHECKING:
    pass


# A compiled service time is not one of the distributions a file may write, so pydantic warns
# when a Scenario holding one is dumped (to --out, to a report, or by load(scenario,
# overrides)). The dump is still right: it holds app: and deploy:, and expand() compiles them
# again, dropping the compiled services. Only that warning is silenced, until the Distribution
# union learns to serialize compiled kinds (see ComponentWork).
warnings.filterwarnings(
    "ignore", message=r"(?s)Pydantic serializer warnings:.*input_type=ComponentWork",
    category=UserWarning,
)
WORK = "component_work"  # the ``dist`` tag of compiled service times


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
