"""Tracing: a link that records every call attempt it carries, for OTLP export.

Only built when the scenario says ``trace: true`` (or ``simsys run --otlp``), so an untraced
run keeps the plain :class:`.link.Link` and pays nothing: the request path is unchanged and
the extra work (an id, two times, a row) happens in this subclass's overrides only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..records import CALL_HEDGE, CALL_TIMED_OUT, OK, TIMEOUT, CallLog
from .link import Link
from .visits import Job

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
        # a guard's copy sent while an earlier attempt is still out is a hedge
        out = getattr(job.call, "outstanding", None)
        job.trace_flags = CALL_HEDGE if out is not None and len(out) > 1 else 0
        super().send(job)

    def respond(self, job: Job) -> None:
        job.ended_at = self.env.now
        super().respond(job)

    def _returned(self, job: Job) -> None:
        now = self.env.now
        flags = job.trace_flags
        status = job.status
        timeout = getattr(getattr(self.user_back, "__self__", None), "timeout", None)
        if timeout is not None and now - job.sent_at >= timeout * (1 - 1e-12):
            flags |= CALL_TIMED_OUT  # the caller stopped waiting at sent + timeout
            now = job.sent_at + timeout
            status = TIMEOUT
        attempts = getattr(job.call, "attempts", 1)  # a guard's call state, else 1
        self._log(job.span, job.parent, job.inst.replica if job.inst is not None else -1,
                  job.sent_at, job.arrived_at, job.started_at, job.ended_at, now, status,
                  job.req.cause if status != OK else 0,
                  attempts if isinstance(attempts, int) else 1, flags)
        self.user_back(job)

    def marker(self, parent: Job, start: float, end: float, status: int, cause: int,
               attempt: int, flags: int) -> None:
        """A call with no callee side: refused before sending (CALL_REFUSED) or answered by a
        fallback (CALL_FALLBACK), from ``start`` to ``end`` (simulated seconds)."""
        self._log(self.next_span(), parent, -1, start, NAN, NAN, NAN, end, status, cause,
                  attempt, flags)

    def _log(self, span: int, parent: Job, replica: int, sent: float, arrived: float,
             started: float, ended: float, returned: float, status: int, cause: int,
             attempt: int, flags: int) -> None:
        log = self.log
        log.rid.append(parent.req.rid)
        log.span.append(span)
        log.parent.append(getattr(parent, "span", 0) if parent.link is not None else 0)
        log.service.append(self.target.code)
        log.replica.append(replica)
        log.sent.append(sent)
        log.arrived.append(arrived)
        log.started.append(started)
        log.ended.append(ended)
        log.returned.append(returned)
        log.status.append(status)
        log.cause.append(cause)
        log.attempt.append(attempt)
        log.flags.append(flags)
