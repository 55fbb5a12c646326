"""Routes: a request that moves on when its visit ends, as in a Jackson or Ciw network.

A call is synchronous: the caller's worker waits for the answer. A route is not: once a visit
to a :class:`RoutingService` is done (its work and its calls), the request moves on to the next
service with the route's probability and the worker is free at once (or leaves the network with
the probability left over). The client still waits for one answer, sent when the request leaves
the network, from its last service; the latency is the sum of the visits and the links crossed
on the way. No answer travels back through the services visited before, so a route's link is
crossed once (:class:`RouteLink`).

When the next service's replica has no room (its workers busy and its queue full), a route with
``blocking: reject`` fails the request as a call would; ``blocking: wait`` keeps the request,
and the worker that served it, until a place frees there (Type I blocking, as Ciw does). The
waiting requests are served in the order they were blocked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..records import OK
from .link import MAX_DIRECT_ANSWERS, Link
from .service import Service
from .visits import Instance, Job


class RouteLink(Link):
    """The link of a route: carries the request on; the answer does not come back over it
    (it goes to the client from the network's last service), so answers cross it at once."""

    __slots__ = ()

    def respond(self, job: Job) -> None:
        depth = self.depth
        if depth[0] < MAX_DIRECT_ANSWERS:
            depth[0] += 1
            self.back(job)
            depth[0] -= 1
        else:
            from .engine import Wake

            Wake(self.env, 0.0, self._back_cb, job)


class _Depart:
    """Stands in for a finished visit's incoming link: where :meth:`Service.finish` would
    answer the caller, it sends the request on along the route instead."""

    __slots__ = ("link", "onward")

    def __init__(self, link: RouteLink, onward: Job):
        self.link = link
        self.onward = onward

    def respond(self, job: Job) -> None:
        self.link.send(self.onward)


def has_room(inst: Instance) -> bool:
    """Whether a request arriving at ``inst`` now would be taken (a worker or a place in the
    queue); a replica that is down takes it and fails it, so it counts as room."""
    return (not inst.up or inst.busy < inst.workers or inst.queue_limit is None
            or len(inst.queue) < inst.queue_limit)


class RoutingService(Service):
    """A service whose requests move on along routes when their visit ends (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.routes: list[tuple[float, RouteLink]] = []  # (cumulative probability, link)
        self.draw: Callable[[], float] = lambda: 0.0
        self.wait = False

    def set_routes(self, routes: list[tuple[float, RouteLink]], draw: Callable[[], float],
                   wait: bool) -> None:
        """Give the routes (probability and link each, in order), the uniform stream that
        chooses among them and the blocking rule."""
        total = 0.0
        self.routes = []
        for probability, link in routes:
            total += probability
            self.routes.append((total, link))
            link.back = self._answered
        self.draw, self.wait = draw, wait

    def finish(self, job: Job, status: int) -> None:
        if status != OK or job.dead or not self.routes:
            super().finish(job, status)
            return
        u = self.draw()
        link = next((lk for bound, lk in self.routes if u < bound), None)
        if link is None:  # leaves the network: answer the caller
            super().finish(job, status)
            return
        onward = Job(job.req, job, link)
        onward.call = job.link  # where the answer goes once the request leaves the network
        target = link.target
        if self.wait and target.pick is not None:
            inst = target.pick(target.routable, onward)
            if inst is not None and not has_room(inst):
                onward.inst = inst
                inst.blocked.append((self, job, onward))  # the worker stays held
                return
            onward.inst = inst
        job.link = _Depart(link, onward)  # type: ignore[assignment]
        super().finish(job, OK)

    def move_blocked(self, job: Job, onward: Job) -> None:
        """A blocked request's place has freed: release the worker, send the request on."""
        job.link = _Depart(onward.link, onward)  # type: ignore[arg-type,assignment]
        Service.finish(self, job, OK)

    def _answered(self, onward: Job) -> None:
        """The request left the network further on: answer where this visit came from."""
        job = onward.parent
        job.status = onward.status  # type: ignore[union-attr]
        origin = onward.call
        job.link = origin  # type: ignore[union-attr]
        origin.respond(job)
