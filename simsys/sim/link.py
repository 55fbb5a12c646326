"""A call edge: the network path a request takes from caller to callee and back.

Latency is one way, paid by the request and again by the response. A message lost on the link
(probability ``loss`` each way) ends the request as ``dropped``; without a timeout the caller is
told at once, as a reset connection would tell it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import simpy

from ..records import C_LOSS, DROPPED
from .engine import Wake

if TYPE_CHECKING:
    from .service import Job, Service


class Link:
    """One call edge. ``target`` receives requests; ``back(job)`` receives responses."""

    __slots__ = ("env", "source", "target", "probability", "coin", "latency", "zero", "loss",
                 "lost", "back", "_deliver_cb", "_back_cb", "drop_status", "drop_cause",
                 "base_latency", "base_zero", "base_loss", "base_lost", "faults")

    def __init__(self, env: simpy.Environment, source: str, target: Service, *,
                 probability: float, coin: Callable[[], float] | None,
                 latency: Callable[[], float], zero: bool,
                 loss: float, lost: Callable[[], float] | None):
        self.env = env
        self.source = source
        self.target = target
        self.probability = probability
        self.coin = coin
        self.latency = latency
        self.zero = zero
        self.loss = loss
        self.lost = lost
        self.back: Callable[[Job], None] = _unset
        self.drop_status = DROPPED
        self.drop_cause = C_LOSS
        # What the scenario says, kept so faults can change the link and put it back.
        self.base_latency, self.base_zero = latency, zero
        self.base_loss, self.base_lost = loss, lost
        self.faults: list[Any] = []
        self._deliver_cb = self._deliver
        self._back_cb = self._on_back

    def send(self, job: Job) -> None:
        """Carry a request to the target service."""
        if self.loss and self.lost() < self.loss:  # type: ignore[misc]
            self._drop(job)
            return
        if self.zero:
            self.target.arrive(job)
        else:
            Wake(self.env, self.latency(), self._deliver_cb, job)

    def _deliver(self, ev: Any) -> None:
        self.target.arrive(ev.arg)

    def respond(self, job: Job) -> None:
        """Carry a finished visit's response back to the caller."""
        if self.loss and self.lost() < self.loss:  # type: ignore[misc]
            self._drop(job)
            return
        if self.zero:
            self.back(job)
        else:
            Wake(self.env, self.latency(), self._back_cb, job)

    def _on_back(self, ev: Any) -> None:
        self.back(ev.arg)

    def _drop(self, job: Job) -> None:
        job.status = self.drop_status
        job.req.blame(self.target.code, -1, self.drop_cause)
        self.back(job)


def _unset(job: Any) -> None:  # pragma: no cover - wiring bug guard
    raise RuntimeError("link has no response handler")
