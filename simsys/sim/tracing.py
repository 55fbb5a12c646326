"""Tracing: a link that records every call attempt it carries, for OTLP export.

Only built when the scenario says ``trace: true`` (or ``simsys run --otlp``), so an untraced
run keeps the plain :class:`.link.Link` and pays nothing: the request path is unchanged and
the extra work (an id, two times, a row) happens in this subclass's overrides only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..records import OK, CallLog
from .link import Link
from .service import Job

NAN = float("nan")


class TracingLink(Link):
    """A :class:`Link` that numbers each visit it sends and logs it when its answer (or its
    loss) reaches the caller: sent, arrived, started, ended, returned, status and cause."""

    __slots__ = ("log", "next_span", "user_back", "traced_back")

    def __init__(self, *args: Any, log: CallLog, next_span: Callable[[], int], **kwargs: Any):
        self.log = log
        self.next_span = next_span
        self.traced_back = self._returned
        super().__init__(*args, **kwargs)

    # ``back`` is set by whoever wires the caller; the caller's handler is kept and wrapped.
    @property  # type: ignore[override]
    def back(self) -> Callable[[Job], None]:
        return self.traced_back

    @back.setter
    def back(self, handler: Callable[[Job], None]) -> None:
        self.user_back = handler

    def send(self, job: Job) -> None:
        job.span = self.next_span()
        job.sent_at = self.env.now
        job.arrived_at = job.started_at = job.ended_at = NAN
        super().send(job)

    def respond(self, job: Job) -> None:
        job.ended_at = self.env.now
        super().respond(job)

    def _returned(self, job: Job) -> None:
        log = self.log
        parent = job.parent
        call = job.call
        attempts = getattr(call, "attempts", 1)  # a guard's call state, else a first attempt
        log.rid.append(job.req.rid)
        log.span.append(job.span)
        log.parent.append(getattr(parent, "span", 0) if parent.link is not None else 0)
        log.service.append(self.target.code)
        log.replica.append(job.inst.replica if job.inst is not None else -1)
        log.sent.append(job.sent_at)
        log.arrived.append(job.arrived_at)
        log.started.append(job.started_at)
        log.ended.append(job.ended_at)
        log.returned.append(self.env.now)
        log.status.append(job.status)
        log.cause.append(job.req.cause if job.status != OK else 0)
        log.attempt.append(attempts if isinstance(attempts, int) else 1)
        self.user_back(job)
