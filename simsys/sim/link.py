"""A call edge: the network path a request takes from caller to callee and back.

Latency is one way, paid by the request and again by the response. A message lost on the link
(probability ``loss`` each way) ends the request as ``dropped``; without a timeout the caller is
told at once, as a reset connection would tell it. A link is also the plainest call step: its
``call(job)`` sends one visit and its response goes straight back to the caller.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import simpy

from ..records import C_LOSS, C_UNAVAILABLE, DROPPED, ERROR
from .engine import Wake
from .visits import Job

if TYPE_CHECKING:
    from .service import Service
    from .visits import Instance

# Zero-latency answers passed up by direct calls before one is scheduled as an event instead.
# Ordinary call graphs are far shallower, so their results do not change; a 2,000-service
# chain runs without exhausting Python's stack.
MAX_DIRECT_ANSWERS = 40
# The shared cell of each simulation, by its environment. Not an attribute of the environment:
# a key added to a simpy Environment after it is built unshares its __dict__ and slows every
# ``env._now`` on the hot path by about a tenth (measured).
_ANSWER_DEPTH: weakref.WeakKeyDictionary[simpy.Environment, list[int]] = \
    weakref.WeakKeyDictionary()


class Link:
    """One call edge. ``target`` receives requests; ``back(job)`` receives responses."""

    __slots__ = ("env", "source", "target", "probability", "coin", "latency", "zero", "loss",
                 "lost", "back", "_deliver_cb", "_back_cb", "drop_status", "drop_cause",
                 "base_latency", "base_zero", "base_loss", "base_lost", "faults", "discovery",
                 "view", "view_expires_at", "lookup", "key", "entry", "depth")

    def __init__(self, env: simpy.Environment, source: str, target: Service, *,
                 probability: float, coin: Callable[[], float] | None,
                 latency: Callable[[], float], zero: bool,
                 loss: float, lost: Callable[[], float] | None):
        self.env = env
        self.source = source
        self.target = target
        self.key = f"{source}->{target.name}"
        self.probability = probability
        self.coin = coin
        self.latency = latency
        self.zero = zero
        self.loss = loss
        self.lost = lost
        self.back: Callable[[Job], None] = _unset
        self._deliver_cb = self._deliver
        self._back_cb = self._on_back
        self.drop_status = DROPPED
        self.drop_cause = C_LOSS
        # What the scenario says, kept so faults can change the link and put it back.
        self.base_latency, self.base_zero = latency, zero
        self.base_loss, self.base_lost = loss, lost
        self.faults: list[Any] = []
        # Service discovery: the caller's cached view of the target's replicas.
        self.discovery: Any = None
        self.view: list[Instance] = []
        self.view_expires_at = -1.0
        self.lookup: Callable[[], float] | None = None
        # The component a visit over this link enters the target at (services deployed from
        # an app run a program per entry component; None elsewhere).
        self.entry: str | None = None
        # Answers over zero-latency links are passed back up by direct calls, one stack frame
        # set per hop; all links of a simulation count those frames in one shared cell.
        self.depth: list[int] = _ANSWER_DEPTH.setdefault(env, [0])

    def call(self, job: Job) -> None:
        """Call step: one visit to the target, answered straight to the caller."""
        self.send(Job(job.req, job, self))

    def send(self, job: Job) -> None:
        """Carry a request to the target service."""
        if self.loss and self.lost() < self.loss:  # type: ignore[misc]
            self._drop(job)
            return
        extra = 0.0
        if self.discovery is not None:
            extra = self._discover(job)
            if job.inst is None:
                return
        if self.zero and not extra:
            self.target.arrive(job)
        else:
            Wake(self.env, self.latency() + extra, self._deliver_cb, job)

    def _discover(self, job: Job) -> float:
        """Pick the replica from the caller's cache, refreshing it (lookup latency) when stale."""
        now = self.env.now
        extra = 0.0
        if now >= self.view_expires_at:
            self.view = list(self.target.routable)
            self.view_expires_at = now + self.discovery.ttl
            extra = self.lookup() if self.lookup is not None else 0.0
        inst = self.target.pick(self.view, job) if self.target.pick is not None else None
        if inst is None:
            job.status = ERROR
            job.req.blame(self.target.code, -1, C_UNAVAILABLE)
            self.back(job)
            return 0.0
        job.inst = inst
        return extra

    def _deliver(self, ev: Any) -> None:
        self.target.arrive(ev.arg)

    def respond(self, job: Job) -> None:
        """Carry a finished visit's response back to the caller."""
        if self.loss and self.lost() < self.loss:  # type: ignore[misc]
            self._drop(job)
            return
        if not self.zero:
            Wake(self.env, self.latency(), self._back_cb, job)
            return
        depth = self.depth
        if depth[0] < MAX_DIRECT_ANSWERS:
            depth[0] += 1
            self.back(job)
            depth[0] -= 1
        else:  # a deep chain answering at one instant: go on from the event loop, not the stack
            Wake(self.env, 0.0, self._back_cb, job)

    def _on_back(self, ev: Any) -> None:
        self.back(ev.arg)

    def _drop(self, job: Job) -> None:
        job.status = self.drop_status
        job.req.blame(self.target.code, -1, self.drop_cause)
        self.back(job)


def _unset(job: Any) -> None:  # pragma: no cover - wiring bug guard
    raise RuntimeError("link has no response handler")
