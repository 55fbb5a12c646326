"""Workloads: where requests come from.

``Poisson`` is an open source (arrivals do not wait for answers); ``Closed`` is a fixed population
of users who each send one request, wait for its answer, think, and send the next. A client is a
caller like a service: its request goes out through a call step (a plain link, or a guard when
the workload has its own ``timeout``/``retry``), and the answer comes back to ``resume`` or
``abort``, where the request is recorded.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

import simpy

from ..errors import Problem, ScenarioError
from ..records import DEGRADED, OK, RequestLog
from .engine import Wake, ZeroTimeLoop
from .visits import Job, Request


class Client:
    """What every workload shares: an entry call step, an id counter, the request log."""

    def __init__(self, env: simpy.Environment, code: int, log: RequestLog,
                 next_id: Callable[[], int], key: Callable[[], float] | None = None,
                 keys: int = 1, sent_at: Any = None):
        self.env = env
        self.code = code
        self.log = log
        self.sent_at = sent_at if sent_at is not None else array("d")  # sent, finished or not
        self.next_id = next_id
        self.entry: Any = None          # the call step to the target: Link or Guard
        self.key = key
        self.keys = keys
        self.on_response = self._on_response

    def send(self) -> None:
        key = int(self.key() * self.keys) if self.key is not None else 0
        now = self.env.now
        req = Request(self.next_id(), self.code, now, key)
        self.sent_at.append(now)
        self.entry.call(Job(req, None, None))   # the client's side of the request

    def _on_response(self, child: Job) -> None:
        if child.status == OK:
            self.resume(child.parent)
        else:
            self.abort(child.parent, child.status)

    def resume(self, root: Job) -> None:
        self._record(root, DEGRADED if root.req.degraded else OK)

    def abort(self, root: Job, status: int) -> None:
        self._record(root, status)

    def _record(self, root: Job, status: int) -> None:
        req = root.req
        if status == OK:
            self.log.add(req.rid, req.source, req.start, self.env.now, status, req.attempts,
                         req.instance, -1, -1, 0)
        else:
            self.log.add(req.rid, req.source, req.start, self.env.now, status, req.attempts,
                         req.instance, req.failed_service, req.failed_instance, req.cause)
        self.done(root)

    def done(self, root: Job) -> None:
        """Hook for workloads that react to answers."""

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class PoissonClient(Client):
    """Open arrivals at ``rate`` per second, times ``factor`` during each spike.

    Gaps are standard exponentials divided by the current rate; when the rate changes the
    pending arrival is redrawn, which is exact because the process is memoryless.
    """

    def __init__(self, *args: Any, rate: float, unit_gap: Callable[[], float],
                 spikes: list[Any], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.base_rate = rate
        self.rate = rate
        self.unit_gap = unit_gap
        self.spikes = spikes
        self.gen = 0
        self._arrive_cb = self._arrive

    def start(self) -> None:
        for spike in self.spikes:
            Wake(self.env, spike.at, self._set_rate, spike.factor)
            Wake(self.env, spike.at + spike.duration, self._set_rate, 1.0 / spike.factor)
        self._schedule()

    def _schedule(self) -> None:
        Wake(self.env, self.unit_gap() / self.rate, self._arrive_cb, self.gen)

    def _set_rate(self, ev: Any) -> None:
        self.rate *= ev.arg
        self.gen += 1
        self._schedule()

    def _arrive(self, ev: Any) -> None:
        if ev.arg != self.gen:
            return
        self._schedule()
        self.send()


class ClosedClient(Client):
    """``users`` users, each thinking for ``think`` seconds between answer and next request.

    Users answered at once (refused, no replica to go to, no link latency) with no think time
    would send again at the same instant for ever, and simulated time could not move: after
    ``SPIN_LIMIT`` such answers per user in one instant the run stops with a
    :class:`~simsys.errors.ScenarioError` naming ``where`` (the workload's think time).
    """

    SPIN_LIMIT = 1000

    def __init__(self, *args: Any, users: int, think: Callable[[], float], where: str = "",
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.users = users
        self.think = think
        self.where = where
        self.spin = ZeroTimeLoop(self.SPIN_LIMIT * users)  # answers that took no time
        self._wake_cb = self._wake

    def start(self) -> None:
        for _ in range(self.users):
            Wake(self.env, self.think(), self._wake_cb, None)

    def _wake(self, ev: Any) -> None:
        self.send()

    def done(self, root: Job) -> None:
        wait = self.think()
        if wait == 0.0:
            now = self.env.now
            if root.req.start == now and self.spin.hit(now):
                raise ScenarioError([Problem(self.where, (
                        f"at {now:g} s every request is answered in no time (refused, with "
                        "nowhere to go, or served in zero time) and users do not think, so "
                        "they send again at the same instant for ever; give think_time a "
                        "duration (e.g. {dist: exponential, mean: 1s}) or the client link a "
                        "latency"))])
        Wake(self.env, wait, self._wake_cb, None)
