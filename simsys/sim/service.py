"""Services: replicas with workers and a waiting room, behind a balancer.

The per-request path is written as plain callbacks on scheduled events rather than one simpy
process per request: a visit costs one event for its service time and one per link crossing,
which is what lets simsys run faster than the same model written as idiomatic simpy processes.

A visit (:class:`Job`) to a service goes: arrive → balancer picks a replica → a worker if one
is free, else the queue (or ``rejected`` when the queue is full) → service time → each call in
order, the worker held while it waits (thread per request) → respond to the caller. A failed call
fails its caller, and so on up to the client.

Callers (services and clients) share one small interface used by call steps: ``resume(job)``
when a call has answered and ``abort(job, status)`` when it has finally failed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import simpy

from ..records import C_REJECTED, C_SHED, C_UNAVAILABLE, ERROR, OK, REJECTED
from .engine import Wake
from .visits import Instance, Job

if TYPE_CHECKING:
    from .balancer import Balancer


class Service:
    """A service: its replicas, its balancer, its service-time stream and its outgoing calls.

    ``calls`` holds call steps: plain links, guarded calls (:mod:`.patterns`) or parallel
    fan-outs, each with ``call(job)``, ``probability`` and ``coin``.
    """

    def __init__(self, env: simpy.Environment, name: str, code: int, *, replicas: int,
                 workers: int, queue: int | None, service_time: Callable[[], float],
                 pick: Balancer | None = None, first_instance_code: int = 0,
                 lifo: bool = False, shed_queue: int | None = None,
                 shed_deadline: float | None = None):
        self.env = env
        self.name = name
        self.code = code
        self.instances = [
            Instance(first_instance_code + r, self, r, workers, queue) for r in range(replicas)
        ]
        # Replicas the balancer may send to: up, or failed but not yet detected.
        self.routable: list[Instance] = list(self.instances)
        self.service_time = service_time
        self.base_service_time = service_time   # the scenario's; faults compose on top of it
        self.faults: list[tuple[str, str, Any]] = []
        self.calls: list[Any] = []
        self.pick = pick
        self.lifo = lifo
        self.shed_queue = shed_queue
        self.shed_deadline = shed_deadline
        self.trace: Any = None                  # span recorder when tracing is on
        self._served_cb = self._served
        self.on_response = self._on_response
        # Called with the instance when a replica fails / comes back (chaos, OOM, WebSockets).
        self.down_listeners: list[Callable[[Instance], None]] = []
        self.up_listeners: list[Callable[[Instance], None]] = []

    # -- the request path -------------------------------------------------------------------
    def arrive(self, job: Job) -> None:
        """A request reaches the service (after its link latency)."""
        inst = job.inst
        if inst is None:  # no caller-side choice (service discovery) was made
            inst = self.pick(self.routable, job) if self.pick is not None else None
            if inst is None:
                job.req.blame(self.code, -1, C_UNAVAILABLE)
                job.status = ERROR
                job.link.respond(job)
                return
            job.inst = inst
        if job.parent.inst is None:
            job.req.instance = inst.replica
        job.arrived_at = self.env.now
        if not inst.up:
            # Sent to a replica that is down but not yet known to be: the cost of slow detection.
            job.req.blame(self.code, inst.replica, inst.down_cause)
            inst.failed_requests += 1
            job.status = ERROR
            job.link.respond(job)
        else:
            self._admit(inst, job)

    def _admit(self, inst: Instance, job: Job) -> None:
        """A worker if one is free, else the queue, else rejected (or shed)."""
        if inst.busy < inst.workers:
            self._start(inst, job)
        elif (inst.queue_limit is not None and len(inst.queue) >= inst.queue_limit) or (
            self.shed_queue is not None and len(inst.queue) >= self.shed_queue
        ):
            shed = inst.queue_limit is None or len(inst.queue) < inst.queue_limit
            job.req.blame(self.code, inst.replica, C_SHED if shed else C_REJECTED)
            job.status = REJECTED
            job.link.respond(job)
        else:
            inst.queue.append(job)

    def _start(self, inst: Instance, job: Job) -> None:
        env = self.env
        now = env.now
        inst.busy_area += inst.busy * (now - inst.last_change)
        inst.last_change = now
        inst.busy += 1
        inst.active[job] = None
        job.started_at = now
        Wake(env, self.service_time(), self._served_cb, job)

    def _served(self, ev: Any) -> None:
        job = ev.arg
        if not job.dead:
            self._proceed(job)

    def _proceed(self, job: Job) -> None:
        """Make the next call that applies, or finish."""
        calls = self.calls
        i = job.step
        n = len(calls)
        while i < n:
            step = calls[i]
            i += 1
            if step.coin is not None and step.coin() >= step.probability:
                continue
            job.step = i
            step.call(job)
            return
        self.finish(job, OK)

    resume = _proceed

    def abort(self, job: Job, status: int) -> None:
        self.finish(job, status)

    def _on_response(self, child: Job) -> None:
        """A plain downstream call answered (or failed)."""
        job = child.parent
        if job.dead:
            return
        if child.status == OK:
            self._proceed(job)
        else:
            self.finish(job, child.status)

    def finish(self, job: Job, status: int) -> None:
        """Release the worker, start the next waiting request, answer the caller."""
        inst = job.inst
        job.status = status
        job.dead = True
        inst.active.pop(job, None)
        now = self.env.now
        inst.busy_area += inst.busy * (now - inst.last_change)
        inst.last_change = now
        inst.busy -= 1
        if inst.queue:
            self._next(inst)
        if inst.blocked:
            self._unblock(inst)
        if self.trace is not None:
            self.trace.add(job, self.code, inst.replica, now)
        job.link.respond(job)

    def _unblock(self, inst: Instance) -> None:
        """Let requests blocked on this replica (routes with ``blocking: wait``) in, first
        blocked first, while it has room."""
        from .routing import has_room

        blocked = inst.blocked
        while blocked and has_room(inst):
            source, job, onward = blocked.popleft()
            if not job.dead:  # its own replica may have failed it meanwhile
                source.move_blocked(job, onward)

    def _next(self, inst: Instance) -> None:
        """Give the free worker to the next waiting request (FIFO or LIFO), shedding stale ones."""
        queue = inst.queue
        deadline = self.shed_deadline
        now = self.env.now
        while queue:
            job = queue.pop() if self.lifo else queue.popleft()
            if deadline is not None and now - job.arrived_at > deadline:
                job.req.blame(self.code, inst.replica, C_SHED)
                job.status = REJECTED
                job.dead = True
                job.link.respond(job)
                continue
            self._start(inst, job)
            return

    # -- failures ---------------------------------------------------------------------------
    def fail_instance(self, inst: Instance, cause: int, status: int = ERROR) -> int:
        """End every request the replica holds with ``status``; returns how many there were."""
        now = self.env.now
        inst.settle(now)
        victims = list(inst.active) + list(inst.queue) + [j for _, _, j in inst.ps_heap]
        inst.active.clear()
        inst.queue.clear()
        inst.ps_heap.clear()
        inst.ps_gen += 1
        inst.busy = 0
        seen = set()
        for job in victims:
            if job in seen:
                continue
            seen.add(job)
            job.dead = True
            job.status = status
            job.req.blame(self.code, inst.replica, cause)
            job.link.respond(job)
        return len(seen)


class PSService(Service):
    """A service whose replicas share their capacity among all requests in service (processor
    sharing): with n requests working and c workers each runs at min(1, c/n) of full speed, so
    latency grows with concurrency, as on a busy CPU. There is no queue; ``queue`` caps the
    requests held beyond ``workers``. A request waiting on a downstream call uses no capacity.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for inst in self.instances:
            inst.ps = True

    def _admit(self, inst: Instance, job: Job) -> None:
        cap = inst.queue_limit
        if cap is not None and len(inst.active) >= inst.workers + cap:
            job.req.blame(self.code, inst.replica, C_REJECTED)
            job.status = REJECTED
            job.link.respond(job)
            return
        inst.active[job] = None
        inst.busy = len(inst.active)
        job.started_at = self.env.now
        self.ps_advance(inst)
        inst.ps_seq += 1
        heapq.heappush(inst.ps_heap, (inst.ps_virtual + self.service_time(), inst.ps_seq, job))
        self._ps_schedule(inst)

    def _ps_rate(self, inst: Instance) -> float:
        n = len(inst.ps_heap)
        return 1.0 if n <= inst.workers else inst.workers / n

    def ps_advance(self, inst: Instance) -> None:
        """Bring ``inst``'s virtual clock and busy area up to now (also when it settles)."""
        now = self.env.now
        n = len(inst.ps_heap)
        dt = now - inst.ps_last
        if n and dt > 0:
            inst.ps_virtual += dt * self._ps_rate(inst)
            inst.busy_area += min(n, inst.workers) * dt
        inst.ps_last = now
        inst.last_change = now

    def _ps_schedule(self, inst: Instance) -> None:
        inst.ps_gen += 1
        if inst.ps_heap:
            delay = max(inst.ps_heap[0][0] - inst.ps_virtual, 0.0) / self._ps_rate(inst)
            Wake(self.env, delay, self._ps_done, (inst, inst.ps_gen))

    def _ps_done(self, ev: Any) -> None:
        inst, gen = ev.arg
        if gen != inst.ps_gen:
            return
        self.ps_advance(inst)
        done = []
        heap = inst.ps_heap
        # relative tolerance: late in a run one float step of virtual time exceeds any absolute
        # one, and a finish that rounding left a step ahead would be rescheduled forever
        horizon = inst.ps_virtual + 1e-9 * max(1.0, inst.ps_virtual)
        while heap and heap[0][0] <= horizon:
            done.append(heapq.heappop(heap)[2])
        self._ps_schedule(inst)
        for job in done:
            if not job.dead:
                self._proceed(job)

    def finish(self, job: Job, status: int) -> None:
        inst = job.inst
        job.status = status
        job.dead = True
        inst.active.pop(job, None)
        inst.busy = len(inst.active)
        if self.trace is not None:
            self.trace.add(job, self.code, inst.replica, self.env.now)
        job.link.respond(job)

    def fail_instance(self, inst: Instance, cause: int, status: int = ERROR) -> int:
        self.ps_advance(inst)
        return super().fail_instance(inst, cause, status)


class ProgramService(Service):
    """A service deployed from an app whose visits run component programs
    (:class:`simsys.spec.call_tree.Program`): the entry component's work, its in-process calls (each
    ``in_process_call`` more, recursively) and its calls to other services, in call order. The
    worker is held for the whole visit; the work between two calls that leave the service is one
    stretch of it (one event).

    Set up with :meth:`set_programs` once the call steps exist. ``service_time`` is the visit's
    serialization (request and answer), so latency faults add once per visit as elsewhere;
    slowdown faults stretch every stretch of work.
    """

    WORK, COIN, REMOTE = 0, 1, 2

    def set_programs(self, programs: dict[str, list[tuple[Any, ...]]], default: str) -> None:
        """``programs[entry]``: steps ``(WORK, sampler, extra)``, ``(COIN, coin, p, skip_to)``,
        ``(REMOTE, call_step, None, None)``; ``default`` serves visits whose link names no entry."""
        self.programs = programs
        self.default_program = programs[default]

    def _proceed(self, job: Job) -> None:
        link = job.link
        prog = self.programs.get(link.entry, self.default_program) if link is not None \
            else self.default_program
        i = job.step
        n = len(prog)
        t = 0.0
        worked = False
        while i < n:
            kind, a, b, c = prog[i]
            if kind == 0:    # WORK
                t += a() + b
                worked = True
                i += 1
            elif kind == 1:  # COIN: an optional in-process call
                i = i + 1 if a() < b else c
            else:            # REMOTE: after the work before it
                if worked:
                    break
                i += 1
                if a.coin is not None and a.coin() >= a.probability:
                    continue
                job.step = i
                a.call(job)
                return
        if worked:
            job.step = i
            for kind, _, value in self.faults:
                if kind == "slowdown":
                    t *= value
            Wake(self.env, t, self._served_cb, job)
            return
        self.finish(job, OK)

    resume = _proceed
