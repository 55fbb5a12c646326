"""Workloads: where requests come from.

``Poisson`` is an open source (arrivals do not wait for answers); ``Closed`` is a fixed population
of users who each send one request, wait for its answer, think, and send the next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import simpy

from ..records import RequestLog
from .engine import Wake
from .link import Link
from .service import Job, Request


class Client:
    """What every workload shares: a link to its target, an id counter, the request log."""

    def __init__(self, env: simpy.Environment, code: int, link: Link, log: RequestLog,
                 next_id: Callable[[], int]):
        self.env = env
        self.code = code
        self.link = link
        self.log = log
        self.next_id = next_id
        link.back = self._answered

    def send(self) -> None:
        req = Request(self.next_id(), self.code, self.env.now)
        self.link.send(Job(req, None, self.link))

    def _answered(self, job: Job) -> None:
        req = job.req
        self.log.add(req.rid, req.source, req.start, self.env.now, job.status, req.attempts,
                     req.instance, req.failed_service, req.failed_instance, req.cause)
        self.done(job)

    def done(self, job: Job) -> None:
        """Hook for workloads that react to answers."""

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class PoissonClient(Client):
    """Open arrivals at ``rate`` per second; inter-arrival times from stream ``gap``."""

    def __init__(self, *args: Any, gap: Callable[[], float]):
        super().__init__(*args)
        self.gap = gap
        self._arrive_cb = self._arrive

    def start(self) -> None:
        Wake(self.env, self.gap(), self._arrive_cb, None)

    def _arrive(self, ev: Any) -> None:
        Wake(self.env, self.gap(), self._arrive_cb, None)
        self.send()


class ClosedClient(Client):
    """``users`` users, each thinking for ``think`` seconds between answer and next request."""

    def __init__(self, *args: Any, users: int, think: Callable[[], float]):
        super().__init__(*args)
        self.users = users
        self.think = think
        self._wake_cb = self._wake

    def start(self) -> None:
        for _ in range(self.users):
            Wake(self.env, self.think(), self._wake_cb, None)

    def _wake(self, ev: Any) -> None:
        self.send()

    def done(self, job: Job) -> None:
        Wake(self.env, self.think(), self._wake_cb, None)
