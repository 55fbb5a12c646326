"""What moves through the simulation and where it waits: a client's :class:`Request`, one
:class:`Job` per visit to a service, and the :class:`Instance` (replica) that serves it.

Plain slotted records, shared by services, links, balancers, workloads and chaos; they hold
state, and the components in :mod:`.service`, :mod:`.link` and the rest act on it.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from ..records import C_CRASH, NO_CAUSE, OK

if TYPE_CHECKING:
    from .link import Link
    from .service import Service


class Request:
    """A client request, end to end. ``blame`` keeps where and why it last failed."""

    __slots__ = ("rid", "source", "start", "attempts", "instance", "failed_service",
                 "failed_instance", "cause", "key", "degraded")

    def __init__(self, rid: int, source: int, start: float, key: int = 0):
        self.rid = rid
        self.source = source
        self.start = start
        self.attempts = 1
        self.instance = -1        # replica of the target service that took the request
        self.failed_service = -1
        self.failed_instance = -1
        self.cause = NO_CAUSE
        self.key = key            # user key, for consistent hashing
        self.degraded = False     # a fallback answered somewhere on the way

    def blame(self, service: int, instance: int, cause: int) -> None:
        """Remember where (service code, replica or -1) and why (cause code) it failed."""
        self.failed_service = service
        self.failed_instance = instance
        self.cause = cause


class Job:
    """One visit of a request to one service. ``link`` is the edge it came over.

    On a guarded call (:mod:`.patterns`) ``call`` is the guard itself or the call's state, ``seq``
    the attempt's number for its timeout and ``group`` the caller's bulkhead slot; all three are
    unused on plain calls.
    """

    __slots__ = ("req", "parent", "link", "inst", "step", "status", "dead", "call", "group",
                 "arrived_at", "started_at", "seq", "span", "sent_at", "ended_at",
                 "trace_flags")

    def __init__(self, req: Request, parent: Job | None, link: Link | None):
        self.req = req
        self.parent = parent
        self.link = link
        self.inst: Instance | None = None
        self.step = 0
        self.status = OK
        self.dead = False
        self.call: Any = None
        self.group: Any = None
        self.arrived_at = 0.0
        self.started_at = 0.0
        self.seq = 0              # a guarded attempt's number, for its timeout
        # ``span``, ``sent_at``, ``ended_at`` and ``trace_flags`` are set only when tracing
        # (.tracing), so an untraced visit pays nothing for them.

class Instance:
    """One replica: ``workers`` concurrent requests, a queue of at most ``queue_limit``."""

    __slots__ = ("code", "service", "replica", "workers", "queue_limit", "busy", "queue", "active",
                 "up", "busy_area", "last_change", "area_at_warmup", "connections", "down_cause",
                 "failed_requests", "leak_rate", "leak_since", "enabled", "ps_heap", "ps_virtual",
                 "ps_last", "ps_gen", "ps_seq", "ps", "blocked")

    def __init__(self, code: int, service: Service, replica: int, workers: int,
                 queue_limit: int | None):
        self.code = code
        self.service = service
        self.replica = replica
        self.workers = workers
        self.queue_limit = queue_limit
        self.busy = 0
        self.queue: deque[Job] = deque()
        # requests in service; a dict, not a set, so a crash fails them in a fixed order (a set
        # of objects iterates by memory address, which differs from process to process)
        self.active: dict[Job, None] = {}
        self.up = True
        self.busy_area = 0.0      # ∫ busy workers dt, worker-seconds
        self.last_change = 0.0
        self.area_at_warmup = 0.0
        self.connections = 0      # open WebSocket connections (memory per connection)
        self.down_cause = C_CRASH  # cause code given to requests while the replica is down
        self.failed_requests = 0  # requests failed by the current incident
        self.leak_rate = 0.0      # bytes/s leaked since leak_since (memory_leak faults)
        self.leak_since = 0.0
        self.enabled = True       # False for replicas an autoscaler has not (yet) started
        # processor sharing: heap of (virtual finish, seq, job), virtual clock, generation
        self.ps_heap: list[tuple[float, int, Job]] = []
        self.ps_virtual = 0.0
        self.ps_last = 0.0
        self.ps_gen = 0
        self.ps_seq = 0
        self.ps = False           # processor sharing: the service keeps the busy integral
        # requests routed here with blocking: wait while it had no room: (service, job, onward)
        self.blocked: deque[tuple[Any, Job, Job]] = deque()

    @property
    def name(self) -> str:
        return f"{self.service.name}[{self.replica}]"

    def load(self) -> int:
        """Requests held by this replica: in service or waiting."""
        return self.busy + len(self.queue)

    def settle(self, now: float) -> None:
        """Bring the busy-time integral up to ``now``."""
        if self.ps:
            self.service.ps_advance(self)  # type: ignore[attr-defined]
            return
        self.busy_area += self.busy * (now - self.last_change)
        self.last_change = now
