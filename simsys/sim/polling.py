"""Polling clients: ordinary HTTP clients whose requests go through the service's request path,
parked at the service between polls (see :mod:`.websocket`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from ..records import ERROR, OK, Records
from ..spec.distributions import batched
from .engine import Streams, Wake
from .service import Service
from .visits import Instance, Job, Request
from .workload import Client
from .ws_common import (
    BIN,
    BYTES,
    EMPTY_POLLS,
    POLLS,
    POSTS,
    TO_CLIENTS,
    TO_SERVER,
    Tally,
)


class ParkingLink:
    """Stands in for the client link on the response path of polls: stamps when the server
    looked for messages, and holds long polls that found none."""

    __slots__ = ("real", "group")

    def __init__(self, real: Any, group: PollingGroup):
        self.real = real
        self.group = group

    def respond(self, job: Job) -> None:
        self.group._respond(job)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class PollingGroup(Client):
    """``clients`` polling clients; their requests take the service's ordinary request path."""

    def __init__(self, env: simpy.Environment, code: int, log: Any, next_id: Callable[[], int],
                 w: Any, node: str, link: Any, svc: Service, streams: Streams, records: Records,
                 duration: float):
        super().__init__(env, code, log, next_id)
        self.w = w
        self.svc = svc
        self.records = records
        self.link = link
        link.back = self.on_response
        self.entry = self
        self.proxy = ParkingLink(link, self)
        self.rng = streams.rng(f"polling/{node}")
        self.u = batched(self.rng.random)
        self.rs = w.messages.server_rate
        self.size = w.messages.size
        self.http = w.http_overhead
        self.N = w.clients
        self.since = [0.0] * self.N              # messages up to this time have been fetched
        self.inflight: dict[int, int] = {}       # request id → client (−1: a posted message)
        self.fetched: dict[int, tuple[float, float, int]] = {}  # request id → (from, to, count)
        self.parked: dict[int, Job] = {}         # client → its held long poll
        self.parked_rep = [0] * len(svc.instances)
        self.tally = Tally(duration)
        self.opened_rep = [0] * len(svc.instances)
        self.rec_rep = [0] * len(svc.instances)
        self._poll_cb = self._poll
        svc.down_listeners.append(self._down)

    def start(self) -> None:
        w = self.w
        for client in range(self.N):
            Wake(self.env, w.interval * self.u(), self._poll_cb, client)
        if w.messages.client_rate > 0:
            Wake(self.env, self.rng.exponential(1.0 / (self.N * w.messages.client_rate)),
                 self._post, None)

    # -- requests ---------------------------------------------------------------------------
    def call(self, root: Job) -> None:
        """Call step: the request goes out over the link; its response comes back via us."""
        self.link.send(Job(root.req, root, self.proxy))

    def _send(self, client: int) -> None:
        req = Request(self.next_id(), self.code, self.env.now)
        self.inflight[req.rid] = client
        self.call(Job(req, None, None))

    def _poll(self, ev: Any) -> None:
        client = ev.arg
        if not self.w.long:
            Wake(self.env, self.w.interval, self._poll_cb, client)
        self.tally.c[POLLS, int(self.env.now / BIN)] += 1
        self._send(client)

    def _post(self, ev: Any) -> None:
        w = self.w
        Wake(self.env, self.rng.exponential(1.0 / (self.N * w.messages.client_rate)), self._post,
             None)
        b = int(self.env.now / BIN)
        self.tally.c[POSTS, b] += 1
        self.tally.c[TO_SERVER, b] += 1
        self._send(-1)

    def _respond(self, job: Job) -> None:
        """The server answers a request: a poll takes the messages waiting for its client."""
        client = self.inflight.get(job.req.rid, -1)
        if job.status != OK or client < 0:
            self.link.respond(job)
            return
        now = self.env.now
        since = self.since[client]
        count = int(self.rng.poisson(self.rs * (now - since))) if self.rs > 0 else 0
        if count == 0 and self.w.long:
            self._park(client, job, now)
            return
        self.fetched[job.req.rid] = (since, now, count)
        self.since[client] = now
        self.link.respond(job)

    def _park(self, client: int, job: Job, now: float) -> None:
        self.parked[client] = job
        inst = job.inst
        inst.connections += 1
        self.parked_rep[inst.replica] += 1
        wait = self.rng.exponential(1.0 / self.rs) if self.rs > 0 else math.inf
        hold = self.w.hold
        Wake(self.env, min(wait, hold), self._release, (client, job, wait < hold))

    def _unpark(self, client: int, job: Job) -> None:
        del self.parked[client]
        job.inst.connections -= 1
        self.parked_rep[job.inst.replica] -= 1

    def _release(self, ev: Any) -> None:
        client, job, message = ev.arg
        if self.parked.get(client) is not job:
            return
        self._unpark(client, job)
        now = self.env.now
        self.fetched[job.req.rid] = (now, now, 1 if message else 0)
        self.since[client] = now
        self.link.respond(job)

    def _down(self, inst: Instance) -> None:
        """Long polls held by a failed replica end with an error."""
        for client, job in list(self.parked.items()):
            if job.inst is inst:
                self._unpark(client, job)
                job.status = ERROR
                job.req.blame(self.svc.code, inst.replica, inst.down_cause)
                self.link.respond(job)

    # -- answers ----------------------------------------------------------------------------
    def abort(self, root: Job, status: int) -> None:
        """A failed request: the messages its response would have carried are lost with it."""
        self.fetched.pop(root.req.rid, None)
        super().abort(root, status)

    def done(self, root: Job) -> None:
        rid = root.req.rid
        client = self.inflight.pop(rid, -1)
        fetched = self.fetched.pop(rid, None)
        now = self.env.now
        b = int(now / BIN)
        c = self.tally.c
        if client < 0:
            c[BYTES, b] += self.http + self.size
            return
        count = fetched[2] if fetched is not None else 0
        c[BYTES, b] += self.http + count * self.size
        if fetched is not None:
            if count:
                lo, hi = fetched[0], fetched[1]
                created = lo + (hi - lo) * self.rng.random(count) if hi > lo else np.full(count, hi)
                self.records.deliveries.extend(self.code, created, np.full(count, now))
                c[TO_CLIENTS, b] += count
            else:
                c[EMPTY_POLLS, b] += 1
        if self.w.long:
            if fetched is not None:
                self._poll_now(client)
            else:
                Wake(self.env, self.w.interval, self._poll_cb, client)

    def _poll_now(self, client: int) -> None:
        self.tally.c[POLLS, int(self.env.now / BIN)] += 1
        self._send(client)

    def open_at(self, r: int) -> int:
        return self.parked_rep[r]

    def export(self) -> dict[str, Any]:
        return {**self.tally.export(), "representation": "exact", "area": 0.0, "busy_time": 0.0,
                "worker_time": 0.0, "service": self.svc.name, "polling": True,
                "long": self.w.long}


# -- building and sampling ------------------------------------------------------------------
