"""Append-only, columnar records: the only thing the simulation writes to.

Columns are ``array.array`` buffers (8 bytes per float, 1–2 per small int), so a million
requests cost tens of megabytes, not the hundreds a list of dicts would. Nothing here knows
pandas; :mod:`simsys.result` turns the columns into DataFrames after the run.
"""

from __future__ import annotations

from array import array

import numpy as np

# Status codes of a request; the order is the contract's list, "degraded" reserved for fallbacks.
STATUSES = ("ok", "rejected", "timeout", "error", "dropped", "degraded")
OK, REJECTED, TIMEOUT, ERROR, DROPPED, DEGRADED = range(len(STATUSES))

# Why a request failed, as recorded in its ``cause`` column ("" when it did not fail).
CAUSES = ("", "rejected", "crash", "oom", "loss", "partition", "unavailable", "timeout",
          "circuit_open", "bulkhead", "shed")
(NO_CAUSE, C_REJECTED, C_CRASH, C_OOM, C_LOSS, C_PARTITION, C_UNAVAILABLE, C_TIMEOUT,
 C_CIRCUIT_OPEN, C_BULKHEAD, C_SHED) = range(len(CAUSES))


class RequestLog:
    """One row per finished request: id, source, start, end, status, attempts, replica, failure."""

    __slots__ = ("rid", "source", "start", "end", "status", "attempts", "instance",
                 "failed_service", "failed_instance", "cause")

    def __init__(self) -> None:
        self.rid = array("q")
        self.source = array("h")
        self.start = array("d")
        self.end = array("d")
        self.status = array("b")
        self.attempts = array("h")
        self.instance = array("h")
        self.failed_service = array("h")
        self.failed_instance = array("h")
        self.cause = array("b")

    def add(self, rid: int, source: int, start: float, end: float, status: int,
            attempts: int, instance: int, failed_service: int, failed_instance: int,
            cause: int) -> None:
        self.rid.append(rid)
        self.source.append(source)
        self.start.append(start)
        self.end.append(end)
        self.status.append(status)
        self.attempts.append(attempts)
        self.instance.append(instance)
        self.failed_service.append(failed_service)
        self.failed_instance.append(failed_instance)
        self.cause.append(cause)

    def __len__(self) -> int:
        return len(self.rid)


class SampleLog:
    """Timeseries samples in long format: (time, instance index, metric index, value)."""

    __slots__ = ("time", "instance", "metric", "value")

    def __init__(self) -> None:
        self.time = array("d")
        self.instance = array("l")
        self.metric = array("b")
        self.value = array("d")

    def add(self, time: float, instance: int, metric: int, value: float) -> None:
        self.time.append(time)
        self.instance.append(instance)
        self.metric.append(metric)
        self.value.append(value)

    def __len__(self) -> int:
        return len(self.time)


class SpanLog:
    """With ``trace: true``: one row per visit (rid, service, replica, arrived, started, ended,
    status), so the time spent in each hop can be read off."""

    __slots__ = ("rid", "service", "replica", "arrived", "started", "ended", "status")

    def __init__(self) -> None:
        self.rid = array("q")
        self.service = array("h")
        self.replica = array("h")
        self.arrived = array("d")
        self.started = array("d")
        self.ended = array("d")
        self.status = array("b")

    def add(self, job: object, service: int, replica: int, now: float) -> None:
        self.rid.append(job.req.rid)  # type: ignore[attr-defined]
        self.service.append(service)
        self.replica.append(replica)
        self.arrived.append(job.arrived_at)  # type: ignore[attr-defined]
        self.started.append(job.started_at)  # type: ignore[attr-defined]
        self.ended.append(now)
        self.status.append(job.status)  # type: ignore[attr-defined]


class CallLog:
    """With ``trace: true``: one row per call attempt over a link, written when its answer
    reaches the caller (:class:`simsys.sim.tracing.TracingLink`), for OTLP export.

    ``span`` numbers the attempt (1, 2, … per run); ``parent`` is the span of the caller's
    visit (0: the client's side of the request). Times are simulated seconds; ``arrived``,
    ``started`` and ``ended`` (the callee's side) are NaN where the visit never got that far.
    ``attempt`` is the guard's attempt number (1 on unguarded calls); ``flags`` holds the
    CALL_* bits below. Calls refused before sending (circuit open, bulkhead full) and fallbacks
    get a row too, with no callee side.
    """

    __slots__ = ("rid", "span", "parent", "service", "replica", "sent", "arrived", "started",
                 "ended", "returned", "status", "cause", "attempt", "flags")

    def __init__(self) -> None:
        self.rid = array("q")
        self.span = array("q")
        self.parent = array("q")
        self.service = array("h")
        self.replica = array("h")
        self.sent = array("d")
        self.arrived = array("d")
        self.started = array("d")
        self.ended = array("d")
        self.returned = array("d")
        self.status = array("b")
        self.cause = array("b")
        self.attempt = array("h")
        self.flags = array("b")

    def __len__(self) -> int:
        return len(self.rid)


# CallLog.flags: a hedged copy; an attempt its caller stopped waiting for (timeout); a call
# refused before it was sent; a fallback answering instead of the callee.
CALL_HEDGE, CALL_TIMED_OUT, CALL_REFUSED, CALL_FALLBACK = 1, 2, 4, 8


class IncidentLog:
    """One row per instance failure; times are NaN until they happen."""

    __slots__ = ("service", "instance", "kind", "cause", "failed_at", "detected_at",
                 "recovered_at", "requests_failed")

    def __init__(self) -> None:
        self.service: list[int] = []
        self.instance: list[int] = []
        self.kind: list[str] = []
        self.cause: list[str] = []
        self.failed_at: list[float] = []
        self.detected_at: list[float] = []
        self.recovered_at: list[float] = []
        self.requests_failed: list[int] = []

    def open(self, service: int, instance: int, kind: str, cause: str, failed_at: float) -> int:
        """Start an incident; returns its row number for later updates."""
        self.service.append(service)
        self.instance.append(instance)
        self.kind.append(kind)
        self.cause.append(cause)
        self.failed_at.append(failed_at)
        self.detected_at.append(float("nan"))
        self.recovered_at.append(float("nan"))
        self.requests_failed.append(0)
        return len(self.service) - 1

    def __len__(self) -> int:
        return len(self.service)


class DeliveryLog:
    """WebSockets and polling: server messages delivered to clients (simsys.sim.websocket).

    One row per message: workload code, when the server generated it, when the client got it.
    Exact runs log every message; aggregate ones a random sample (``websocket.latency_sample``).
    """

    __slots__ = ("source", "created", "delivered")

    def __init__(self) -> None:
        self.source = array("h")
        self.created = array("d")
        self.delivered = array("d")

    def add(self, source: int, created: float, delivered: float) -> None:
        self.source.append(source)
        self.created.append(created)
        self.delivered.append(delivered)

    def extend(self, source: int, created: object, delivered: object) -> None:
        """Append many rows from float64 numpy arrays (one source)."""
        n_before = len(self.created)
        self.created.frombytes(created.tobytes())  # type: ignore[attr-defined]
        self.delivered.frombytes(delivered.tobytes())  # type: ignore[attr-defined]
        self.source.extend([source] * (len(self.created) - n_before))

    def __len__(self) -> int:
        return len(self.created)


class Records:
    """Everything one run records, plus the names needed to decode its integer codes."""

    def __init__(self) -> None:
        self.requests = RequestLog()
        self.samples = SampleLog()
        self.incidents = IncidentLog()
        self.sources: list[str] = []          # workload names, by source code
        self.services: list[str] = []         # service names, by service code
        self.instances: list[tuple[int, int]] = []  # (service code, replica number) by instance code
        self.metrics: list[str] = []          # timeseries metric names, by metric code
        self.stats: dict[str, object] = {}    # per-service integrals and counters, set at the end
        self.journal: list[dict[str, object]] = []  # chaos actions: kills made or skipped
        self.breakers: list[tuple[float, str, str, str]] = []  # (time, link, new state, target)
        self.calls: dict[str, dict[str, int]] = {}  # per guarded link: calls, attempts, retries…
        self.sent_at = array("d")             # when each client request was sent
        self.attempt_at = array("d")          # when each guarded attempt was sent
        self.retry_at = array("d")            # when each retry was scheduled
        self.spans: SpanLog | None = None     # per-visit spans when tracing is on
        self.call_log: CallLog | None = None  # per-attempt calls when tracing is on (OTLP)
        self.deliveries = DeliveryLog()       # WebSocket/polling messages delivered
        # At each sample time, per service (by code): busy worker-seconds since the start, so
        # utilisation can be split at any sample time (warmup: auto, batch-means intervals).
        self.busy_at = array("d")
        self.busy_area = array("d")

    def sampled(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(time, instance code, value) of every sample of metric ``name`` (empty if none)."""
        s = self.samples
        if name not in self.metrics or not len(s):
            return np.empty(0), np.empty(0, dtype=np.int64), np.empty(0)
        keep = np.frombuffer(s.metric, dtype=np.int8) == self.metrics.index(name)
        return (np.frombuffer(s.time)[keep], np.asarray(s.instance, dtype=np.int64)[keep],
                np.frombuffer(s.value)[keep])

    def metric(self, name: str) -> int:
        """Code of a timeseries metric, registering it on first use."""
        try:
            return self.metrics.index(name)
        except ValueError:
            self.metrics.append(name)
            return len(self.metrics) - 1
