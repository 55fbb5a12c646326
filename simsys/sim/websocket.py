"""WebSocket pools and polling clients.

A service with ``websocket:`` gets a *pool*: per replica, the connections it holds (open, or
being upgraded) up to ``max_connections``, and a few WebSocket workers that do the upgrade
handshakes and handle messages. ``type: websocket`` workloads are *groups* of clients attached to
the pool of their target; ``type: polling`` workloads are ordinary HTTP clients
(:class:`PollingGroup`) whose requests go through the service's request path.

A connection's life: the client sends an upgrade (one link crossing); the balancer picks a
replica (the client's own replica again when ``sticky`` and that replica still lives); a replica
that is down fails the attempt, a full one refuses it (``blocked``), otherwise the upgrade waits
for a WebSocket worker, takes ``handshake`` of its time, and the connection is open. It carries
Poisson streams of messages each way until its ``lifetime`` ends, the server closes it for being
idle, or its replica fails. A client whose connection dropped (or whose attempt failed, was
blocked or timed out) waits a back-off with jitter and tries again; a population client whose
connection simply ended comes back after one ``reconnect`` wait.

Two representations of the same model:

* :class:`ExactPool` — one small object per client and scheduled events per connection,
  attempt and message: exact at the level of single connections, for up to some tens of
  thousands of connections.
* :class:`AggregatePool` — per-replica counts in numpy arrays advanced in fixed steps of
  ``step`` seconds (10 ms by default): arrivals, closes and messages of a step are drawn as
  counts from superposed Poisson processes (for exponential lifetimes the closes of a replica
  holding n connections are Binomial(n, 1 − e^(−step/mean)), so no per-connection state at
  all; other lifetimes keep per-replica calendars of close counts by step); the waits of
  attempts (back-off windows, handshake queues) are spread over calendars of counts by step.
  Memory and time per step do not grow with the number of connections. It differs from the
  exact model by at most a step in when things happen, uses the mean handshake time and a
  fluid queue for WebSocket work, and records the delivery latency of a random sample of
  messages (``latency_sample``), not of all of them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from ..errors import Problem, ScenarioError
from ..records import ERROR, OK, Records
from ..spec.distributions import Exponential, batched
from ..spec.websocket import HEARTBEAT_BYTES, frame_bytes
from .engine import Streams, Wake, ZeroTimeLoop
from .service import Service
from .visits import Instance, Job, Request
from .workload import Client

BIN = 0.1               # seconds: resolution of the counters (peak reconnect rate, totals)
AUTO_THRESHOLD = 20_000  # expected connections above which `auto` means aggregate
LATENCY_BUDGET = 200_000  # delivery latencies an aggregate run records by default
METRICS = ("connections", "handshakes", "connect_rate", "reconnect_rate")

# Counter rows of a Tally.
COUNTERS = ("attempts", "accepted", "blocked", "failed", "timeouts", "reconnects", "gave_up",
            "drops", "closes", "idle_closes", "opened", "to_clients", "to_server", "bytes",
            "polls", "empty_polls", "posts")
(ATTEMPTS, ACCEPTED, BLOCKED, FAILED, TIMEOUTS, RECONNECTS, GAVE_UP, DROPS, CLOSES, IDLE_CLOSES,
 OPENED, TO_CLIENTS, TO_SERVER, BYTES, POLLS, EMPTY_POLLS, POSTS) = range(len(COUNTERS))

# Connection attempts are kept by "level": a fresh attempt (a new client, or a population client
# coming back after a normal close), a reconnect after a drop, and reconnects after f failures.
FRESH, DROP = 0, 1

# Client states (exact representation).
WAITING, CONNECTING, OPEN, GONE = range(4)


class Tally:
    """Counters in bins of :data:`BIN` seconds, and the peak of open connections per bin."""

    def __init__(self, duration: float):
        self.nbins = int(duration / BIN) + 2
        self.c = np.zeros((len(COUNTERS), self.nbins))
        self.peak = np.zeros(self.nbins)

    def export(self) -> dict[str, Any]:
        return {"counts": {name: self.c[i] for i, name in enumerate(COUNTERS)},
                "peak": self.peak}


class Group:
    """One ``type: websocket`` workload attached to the pool of its target."""

    def __init__(self, code: int, node: str, w: Any, link: Any, streams: Streams):
        self.code = code
        self.node = node
        self.w = w
        self.link = link
        self.population = w.clients is not None
        self.rs = w.messages.server_rate
        self.rc = w.messages.client_rate
        self.frame_s = frame_bytes(w.messages.size, masked=False)
        self.frame_c = frame_bytes(w.messages.size, masked=True)
        self.http = w.http_overhead
        self.reconnect = w.reconnect
        self.max_attempts = w.reconnect.max_attempts
        self.timeout = w.connect_timeout
        self.lifetime_dist = w.lifetime
        self.rng = streams.rng(f"websocket/{node}")
        self.u = batched(self.rng.random)
        self.lifetime = w.lifetime.sampler(self.rng) if w.lifetime is not None else None
        m = self.rs + self.rc
        self.msg_rate = m
        self.p_server = self.rs / m if m > 0 else 0.0
        self.gap = batched(lambda n, rng=self.rng, m=m: rng.standard_exponential(n) / m)

    def lat(self) -> float:
        """One crossing of the client link now (faults on ``client->target`` apply)."""
        link = self.link
        return 0.0 if link.zero else link.latency()

    def wait(self, fails: int) -> float:
        """A back-off wait after ``fails`` failures (0: right after a drop)."""
        lo, hi = self.reconnect.bounds(fails)
        return lo if hi == lo else lo + (hi - lo) * self.u()

    def expected_connections(self, duration: float) -> float:
        if self.population:
            return float(self.w.clients)
        mean = self.lifetime_dist.mean if self.lifetime_dist is not None else duration
        return self.w.connect_rate * min(mean, duration)


class Pool:
    """What both representations share: the service, its settings, counters and sampling."""

    representation = ""

    def __init__(self, env: simpy.Environment, svc: Service, cfg: Any, groups: list[Group],
                 lifecycle: Any, streams: Streams, records: Records, duration: float,
                 warmup: float, balancer: str, memory: tuple[float, float, float, float | None]):
        self.env = env
        self.svc = svc
        self.cfg = cfg
        self.groups = groups
        self.lifecycle = lifecycle
        self.records = records
        self.duration = duration
        self.warmup = warmup
        self.insts = svc.instances
        self.R = len(self.insts)
        self.max = cfg.max_connections
        self.workers = cfg.workers or self.insts[0].workers
        self.sticky = cfg.sticky
        self.balancer = "random" if balancer == "consistent_hash" else balancer
        _, per_request, per_connection, self.limit = memory
        # An upgrade under way is an HTTP request held: it costs per_request on top of the
        # connection's per_connection. Lifecycle.memory charges per_connection × connections,
        # so it counts as this many connections (per_request is not charged when
        # per_connection is 0).
        self.w_pending = 1.0 + per_request / per_connection if per_connection > 0 else 1.0
        self.per_connection = per_connection
        self.rng = streams.rng(f"websocket/pool/{svc.name}")
        self.u = batched(self.rng.random)
        self.handshake = cfg.handshake.sampler(streams.rng(f"websocket/pool/{svc.name}/handshake"))
        self.message_time = cfg.message_time.sampler(
            streams.rng(f"websocket/pool/{svc.name}/message_time"))
        self.mt_mean = cfg.message_time.mean
        self.tally = Tally(duration)
        self.opened_rep = [0] * self.R       # connections opened per replica since last sample
        self.rec_rep = [0] * self.R          # reconnect attempts per replica since last sample
        self.area = 0.0                      # ∫ open connections dt
        self.area_at_warmup = 0.0
        self.hb_area = 0.0                   # area already turned into heartbeat bytes
        self.busy_time = 0.0                 # WebSocket worker-seconds after warm-up
        self.rr = -1
        svc.down_listeners.append(self._down)
        svc.up_listeners.append(self._up)

    # hooks of the two representations
    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _down(self, inst: Instance) -> None:  # pragma: no cover
        raise NotImplementedError

    def _up(self, inst: Instance) -> None:
        """A restarted replica comes back empty; nothing to do."""

    def open_at(self, r: int) -> int:  # pragma: no cover
        raise NotImplementedError

    def pending_at(self, r: int) -> int:  # pragma: no cover
        raise NotImplementedError

    def settle_area(self, now: float) -> None:  # pragma: no cover
        raise NotImplementedError

    def mark_warmup(self, ev: Any) -> None:
        self.settle_area(self.env.now)
        self.area_at_warmup = self.area

    def heartbeats(self, now: float) -> None:
        """Turn connection-seconds since the last call into heartbeat bytes (ping + pong)."""
        hb = self.cfg.heartbeat
        if hb is None:
            return
        self.settle_area(now)
        b = min(int(now / BIN), self.tally.nbins - 1)
        self.tally.c[BYTES, b] += (self.area - self.hb_area) / hb * HEARTBEAT_BYTES
        self.hb_area = self.area

    def export(self) -> dict[str, Any]:
        self.heartbeats(self.duration)
        self.settle_area(self.duration)  # also without heartbeats: mean connections need it
        return {
            **self.tally.export(),
            "representation": self.representation,
            "area": self.area - self.area_at_warmup,
            "busy_time": self.busy_time,
            "worker_time": self.workers * self.R * (self.duration - self.warmup),
            "service": self.svc.name,
            "step": getattr(self, "dt", BIN),
        }


# -- the exact representation ---------------------------------------------------------------
class Conn:
    """One client of a WebSocket workload (exact representation) and its connection."""

    __slots__ = ("group", "state", "replica", "home", "home_inc", "fails", "epoch", "last_active")

    def __init__(self, group: Group):
        self.group = group
        self.state = WAITING
        self.replica = -1
        self.home = -1
        self.home_inc = -1
        self.fails = 0
        self.epoch = 0
        self.last_active = 0.0


class ExactPool(Pool):
    """One object per client; every attempt, handshake, close and message is an event."""

    representation = "exact"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        R = self.R
        self.open = [0] * R
        self.pending = [0] * R
        # dicts used as ordered sets: a replica's failure drops its connections in the order
        # they opened (a set of objects iterates by memory address, different in every process)
        self.conns: list[dict[Conn, None]] = [{} for _ in range(R)]
        self.shaking: list[dict[tuple[Conn, int], None]] = [{} for _ in range(R)]
        self.busy = [0] * R
        self.queue: list[deque[tuple[float, Callable[[Any], None], Any]]] = [deque() for _ in range(R)]
        self.incarnation = [0] * R
        self.total = 0
        self.last = 0.0
        self._arrive_cb = self._arrive_ev
        self._told_cb = self._told
        self._again_cb = self._again
        clients = sum(g.w.clients or 0 for g in self.groups)
        self.spin = ZeroTimeLoop(self.SPIN_LIMIT * max(1, clients))  # retries with no wait
        self._worked_cb = self._worked
        self._message_cb = self._message
        self._expire_cb = self._expire
        self._idle_cb = self._idle
        self._timeout_cb = self._timed_out

    def open_at(self, r: int) -> int:
        return self.open[r]

    def pending_at(self, r: int) -> int:
        return self.pending[r]

    def settle_area(self, now: float) -> None:
        self.area += self.total * (now - self.last)
        self.last = now

    def start(self) -> None:
        env = self.env
        for g in self.groups:
            if g.population:
                ramp = g.w.ramp
                for _ in range(g.w.clients):
                    conn = Conn(g)
                    Wake(env, ramp * g.u() if ramp > 0 else 0.0, self._again_cb, (conn, 0, True))
            else:
                Wake(env, g.rng.exponential(1.0 / g.w.connect_rate), self._arrival, g)

    def _arrival(self, ev: Any) -> None:
        g = ev.arg
        Wake(self.env, g.rng.exponential(1.0 / g.w.connect_rate), self._arrival, g)
        self._attempt(Conn(g), True)

    # -- attempts ---------------------------------------------------------------------------
    def _attempt(self, conn: Conn, fresh: bool) -> None:
        conn.state = CONNECTING
        conn.epoch += 1
        e = conn.epoch
        g = conn.group
        if g.timeout is not None:
            Wake(self.env, g.timeout, self._timeout_cb, (conn, e))
        d = g.lat()
        if d > 0.0:
            Wake(self.env, d, self._arrive_cb, (conn, e, fresh))
        else:
            self._arrive(conn, e, fresh)

    def _arrive_ev(self, ev: Any) -> None:
        self._arrive(*ev.arg)

    def _arrive(self, conn: Conn, e: int, fresh: bool) -> None:
        """The upgrade request reaches the balancer."""
        now = self.env.now
        b = int(now / BIN)
        c = self.tally.c
        g = conn.group
        c[ATTEMPTS, b] += 1
        c[BYTES, b] += g.http
        r = self._pick(conn)
        if not fresh:
            c[RECONNECTS, b] += 1
            if r >= 0:
                self.rec_rep[r] += 1
        if r < 0 or not self.insts[r].up:
            c[FAILED, b] += 1
            self._tell(conn, e)
            return
        if self.open[r] + self.pending[r] >= self.max:
            c[BLOCKED, b] += 1
            self._tell(conn, e)
            return
        c[ACCEPTED, b] += 1
        inst = self.insts[r]
        self.pending[r] += 1
        inst.connections += self.w_pending
        token = (conn, e)
        self.shaking[r][token] = None
        if self.limit is not None and self.lifecycle.check_memory(inst):
            return  # out of memory: _down has failed the attempt with the others
        self._work(r, self.handshake(), self._shaken, (r, token))

    def _pick(self, conn: Conn) -> int:
        """The replica for an upgrade: the client's own when sticky, else the balancer's."""
        routable = self.svc.routable
        if not routable:
            return -1
        if self.sticky and conn.home >= 0 and self.incarnation[conn.home] == conn.home_inc:
            inst = self.insts[conn.home]
            if inst in routable:
                return conn.home
        kind = self.balancer
        if kind == "round_robin":
            self.rr = i = (self.rr + 1) % len(routable)
            return routable[i].replica
        if kind == "random":
            return routable[int(self.u() * len(routable))].replica
        load = self.open
        pend = self.pending
        if kind == "power_of_two" and len(routable) > 1:
            n = len(routable)
            a = int(self.u() * n)
            b = int(self.u() * (n - 1))
            if b >= a:
                b += 1
            x, y = routable[a].replica, routable[b].replica
            return x if load[x] + pend[x] <= load[y] + pend[y] else y
        best, best_load = -1, 0
        for inst in routable:  # least_connections: fewest connections, ties to the lowest
            r = inst.replica
            n_r = load[r] + pend[r]
            if best < 0 or n_r < best_load:
                best, best_load = r, n_r
        return best

    def _tell(self, conn: Conn, e: int) -> None:
        """The client learns (one crossing later) that its attempt failed or was blocked."""
        d = conn.group.lat()
        if d > 0.0:
            Wake(self.env, d, self._told_cb, (conn, e))
        else:
            self._retry_if(conn, e)

    def _told(self, ev: Any) -> None:
        self._retry_if(*ev.arg)

    def _retry_if(self, conn: Conn, e: int) -> None:
        if conn.epoch == e and conn.state == CONNECTING:
            self._retry(conn)

    def _retry(self, conn: Conn) -> None:
        """After a failed attempt: back off and try again, or give up."""
        g = conn.group
        conn.fails += 1
        if g.max_attempts is not None and conn.fails >= g.max_attempts:
            conn.state = GONE
            conn.epoch += 1
            self.tally.c[GAVE_UP, int(self.env.now / BIN)] += 1
            return
        self._later(conn, g.wait(conn.fails), False)

    def _later(self, conn: Conn, delay: float, fresh: bool) -> None:
        conn.state = WAITING
        conn.epoch += 1
        if delay == 0.0:
            self._no_wait(conn)
        Wake(self.env, delay, self._again_cb, (conn, conn.epoch, fresh))

    SPIN_LIMIT = 1000  # zero-time retries per client in one instant before the run stops

    def _no_wait(self, conn: Conn) -> None:
        """Clients that try again with no wait, refused in no time, would spin at one instant
        for ever (the simulated clock could not move): stop with the key to change."""
        now = self.env.now
        if self.spin.hit(now):
            raise ScenarioError([Problem(f"workload[{conn.group.code}].reconnect.initial", (
                f"at {now:g} s clients are refused in no time and try again with no wait, "
                "over and over at the same instant; give reconnect.initial a duration "
                "(e.g. 1s) or the client link a latency"))])

    def _again(self, ev: Any) -> None:
        conn, e, fresh = ev.arg
        if conn.epoch == e:
            self._attempt(conn, fresh)

    def _timed_out(self, ev: Any) -> None:
        conn, e = ev.arg
        if conn.epoch == e and conn.state == CONNECTING:
            self.tally.c[TIMEOUTS, int(self.env.now / BIN)] += 1
            self._retry(conn)

    # -- WebSocket workers ------------------------------------------------------------------
    def _work(self, r: int, duration: float, fn: Callable[[Any], None], arg: Any) -> None:
        """Run ``fn(arg)`` after ``duration`` of a WebSocket worker of replica ``r`` (FIFO)."""
        if self.busy[r] < self.workers:
            if duration <= 0.0:
                fn(arg)
                return
            self.busy[r] += 1
            if self.env.now >= self.warmup:
                self.busy_time += duration
            Wake(self.env, duration, self._worked_cb, (r, self.incarnation[r], fn, arg))
        else:
            self.queue[r].append((duration, fn, arg))

    def _worked(self, ev: Any) -> None:
        r, inc, fn, arg = ev.arg
        if inc != self.incarnation[r]:
            return  # the replica failed meanwhile: the work died with it
        q = self.queue[r]
        if q:
            duration, fn2, arg2 = q.popleft()
            if self.env.now >= self.warmup:
                self.busy_time += duration
            Wake(self.env, duration, self._worked_cb, (r, inc, fn2, arg2))
        else:
            self.busy[r] -= 1
        fn(arg)

    # -- open connections -------------------------------------------------------------------
    def _shaken(self, arg: tuple[int, tuple[Conn, int]]) -> None:
        """The handshake is done: the connection opens (unless the client has given up)."""
        r, token = arg
        shaking = self.shaking[r]
        if token not in shaking:
            return
        del shaking[token]
        self.pending[r] -= 1
        conn, e = token
        inst = self.insts[r]
        if conn.epoch != e or conn.state != CONNECTING:
            inst.connections -= self.w_pending  # abandoned: the 101 finds no one; it closes
            return
        inst.connections += 1.0 - self.w_pending
        env = self.env
        now = env.now
        g = conn.group
        conn.state = OPEN
        conn.replica = r
        conn.home = r
        conn.home_inc = self.incarnation[r]
        conn.fails = 0
        self.open[r] += 1
        self.conns[r][conn] = None
        self.settle_area(now)
        self.total += 1
        b = int(now / BIN)
        t = self.tally
        t.c[OPENED, b] += 1
        if self.total > t.peak[b]:
            t.peak[b] = self.total
        self.opened_rep[r] += 1
        if g.lifetime is not None:
            Wake(env, g.lifetime(), self._expire_cb, (conn, e))
        if g.msg_rate > 0.0:
            Wake(env, g.gap(), self._message_cb, (conn, e))
        if self.cfg.idles:
            conn.last_active = now
            Wake(env, self.cfg.idle_timeout, self._idle_cb, (conn, e))

    def _close(self, conn: Conn) -> None:
        r = conn.replica
        self.conns[r].pop(conn, None)
        self.open[r] -= 1
        self.insts[r].connections -= 1
        self.settle_area(self.env.now)
        self.total -= 1

    def _expire(self, ev: Any) -> None:
        conn, e = ev.arg
        if conn.epoch != e or conn.state != OPEN:
            return
        self._close(conn)
        self.tally.c[CLOSES, int(self.env.now / BIN)] += 1
        g = conn.group
        if g.population:  # comes back one reconnect wait after it learns of the close
            self._later(conn, g.lat() + g.wait(0), True)
        else:
            conn.state = GONE
            conn.epoch += 1

    def _idle(self, ev: Any) -> None:
        conn, e = ev.arg
        if conn.epoch != e or conn.state != OPEN:
            return
        now = self.env.now
        due = conn.last_active + self.cfg.idle_timeout
        if now < due - 1e-12:
            Wake(self.env, due - now, self._idle_cb, (conn, e))
            return
        self._close(conn)
        self.tally.c[IDLE_CLOSES, int(now / BIN)] += 1
        conn.fails = 0
        self._later(conn, conn.group.lat() + conn.group.wait(0), False)

    def _message(self, ev: Any) -> None:
        conn, e = ev.arg
        if conn.epoch != e or conn.state != OPEN:
            return
        env = self.env
        now = env.now
        g = conn.group
        Wake(env, g.gap(), self._message_cb, (conn, e))
        conn.last_active = now
        c = self.tally.c
        b = int(now / BIN)
        r = conn.replica
        if g.u() < g.p_server:
            c[TO_CLIENTS, b] += 1
            c[BYTES, b] += g.frame_s
            if self.mt_mean > 0.0:
                self._work(r, self.message_time(), self._pushed, (g, now))
            else:
                self.records.deliveries.add(g.code, now, now + g.lat())
        else:
            c[TO_SERVER, b] += 1
            c[BYTES, b] += g.frame_c
            if self.mt_mean > 0.0:
                self._work(r, self.message_time(), _nothing, None)

    def _pushed(self, arg: tuple[Group, float]) -> None:
        g, created = arg
        self.records.deliveries.add(g.code, created, self.env.now + g.lat())

    # -- replica failures -------------------------------------------------------------------
    def _down(self, inst: Instance) -> None:
        """A replica failed: its connections drop and their clients reconnect."""
        r = inst.replica
        now = self.env.now
        b = int(now / BIN)
        dropped = self.conns[r]
        self.conns[r] = {}
        self.settle_area(now)
        self.total -= len(dropped)
        self.tally.c[DROPS, b] += len(dropped)
        for conn in dropped:
            conn.fails = 0
            self._later(conn, conn.group.lat() + conn.group.wait(0), False)
        shaking = self.shaking[r]
        self.shaking[r] = {}
        for conn, e in shaking:
            self._tell(conn, e)
        inst.connections -= self.open[r] + self.pending[r] * self.w_pending
        self.open[r] = 0
        self.pending[r] = 0
        self.queue[r].clear()
        self.busy[r] = 0
        self.incarnation[r] += 1


def _nothing(arg: Any) -> None:
    """Work whose completion nobody waits for (a client message handled)."""


# -- the aggregate representation -----------------------------------------------------------
class Calendar:
    """Counts of future events by (row, step): a ring buffer over steps that grows on demand."""

    def __init__(self, rows: int, size: int = 64):
        self.rows = rows
        self.size = size
        self.data = np.zeros((rows, size), dtype=np.int64)
        self.base = 0  # the next step to be popped; earlier steps are gone

    def _fit(self, last: int) -> None:
        if last - self.base < self.size:
            return
        new = max(2 * self.size, last - self.base + 1)
        steps = self.base + np.arange(self.size)
        data = np.zeros((self.rows, new), dtype=np.int64)
        data[:, steps % new] = self.data[:, steps % self.size]
        self.data, self.size = data, new

    def add(self, rows: Any, steps: Any, counts: Any, unique: bool = False) -> None:
        """Add ``counts`` at ``(rows, steps)`` (arrays or scalars, broadcast together);
        ``unique`` promises that no (row, step) pair repeats, which allows a faster path."""
        steps = np.maximum(np.asarray(steps, dtype=np.int64), self.base)
        if steps.size == 0:
            return
        self._fit(int(steps.max()))
        if unique:
            self.data[rows, steps % self.size] += counts
        else:
            np.add.at(self.data, (rows, steps % self.size), counts)

    def bump(self, row: int, step: int, count: int = 1) -> None:
        """Add ``count`` at one (row, step)."""
        if step < self.base:
            step = self.base
        if step - self.base >= self.size:
            self._fit(step)
        self.data[row, step % self.size] += count

    def pop(self, step: int) -> np.ndarray:
        """The counts due at ``step`` (which must be the next one), removed."""
        col = step % self.size
        out = self.data[:, col].copy()
        self.data[:, col] = 0
        self.base = step + 1
        return out

    def row_total(self, row: int) -> int:
        return int(self.data[row].sum())

    def clear_row(self, row: int) -> None:
        self.data[row] = 0

    def move_row(self, src: int, dst: int) -> None:
        self.data[dst] += self.data[src]
        self.data[src] = 0


class AggGroup:
    """The per-replica state of one workload in the aggregate representation."""

    def __init__(self, g: Group, R: int, sticky: bool, idles: bool):
        self.g = g
        self.n = np.zeros(R, dtype=np.int64)       # open connections per replica
        self.pend = np.zeros(R, dtype=np.int64)    # upgrades accepted, not yet done
        r = g.reconnect
        self.A = r.max_attempts + 1 if r.max_attempts is not None else r.levels() + 1
        self.H = R + 1 if sticky else 1            # home replica of an attempt; last = none
        self.none = self.H - 1
        self.attempts = Calendar(self.H * self.A)
        self.opening = Calendar(R * self.A)        # handshakes done, connection opens, by
                                                   # (replica, level of the attempt)
        self.abandoning = Calendar(R)              # handshakes done for clients gone
        self.timing_out = Calendar(R * self.A)     # clients whose connect_timeout fires, by
                                                   # (replica, level)
        lt = g.lifetime_dist
        self.exponential = isinstance(lt, Exponential) and not idles
        self.calendar = lt is not None and not self.exponential
        self.p_close = self.p_half = 0.0      # per step, set by the pool
        self.just = np.zeros(R, dtype=np.int64)  # opened during the current step
        self.closing = Calendar(R) if self.calendar else None
        self.idling = Calendar(R) if idles else None
        self.rate = g.w.connect_rate or 0.0

    def level_fails(self, i: int) -> int:
        """Failures so far of attempts at level ``i``."""
        return 0 if i <= DROP else i - 1

    def next_level(self, fails: int) -> int:
        return min(fails + 1, self.A - 1)


class AggregatePool(Pool):
    """Per-replica counts advanced in steps; see the module docstring."""

    representation = "aggregate"

    def __init__(self, *args: Any, latency_sample: float, **kwargs: Any):
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        R = self.R
        self.dt = dt = cfg.step
        self.last_step = int(math.floor(self.duration / dt + 1e-9))
        self.ag = [AggGroup(g, R, self.sticky, cfg.idles) for g in self.groups]
        self.zero = np.zeros(R, dtype=np.int64)
        for a in self.ag:
            if a.exponential:
                a.p_close = 1.0 - math.exp(-dt / a.g.lifetime_dist.mean)
                a.p_half = 1.0 - math.exp(-dt / 2 / a.g.lifetime_dist.mean)
        self.n_tot = np.zeros(R, dtype=np.int64)
        self.pend_tot = np.zeros(R, dtype=np.int64)
        self.part = np.zeros(R)                     # what this pool added to inst.connections
        self.backlog = np.zeros(R)                  # seconds of WebSocket work waiting
        self.up_mask = np.array([i.up for i in self.insts], dtype=bool)
        self.hs_mean = cfg.handshake.mean
        self.p_sample = latency_sample
        self.k = 0
        self._routable_src: Any = None
        self.routable_idx = np.arange(R)
        self.routable_mask = np.ones(R, dtype=bool)
        self.total = 0

    def open_at(self, r: int) -> int:
        return int(self.n_tot[r])

    def pending_at(self, r: int) -> int:
        return int(self.pend_tot[r])

    def settle_area(self, now: float) -> None:
        """The area is kept step by step."""

    def start(self) -> None:
        for a in self.ag:
            if a.g.population:
                self._spread(a.attempts, a.none * a.A + FRESH, a.g.w.clients, 0.0, a.g.w.ramp, 0)
        Wake(self.env, 0.0, self._tick, None)

    # -- calendars --------------------------------------------------------------------------
    def _spread(self, cal: Calendar, rows: Any, counts: Any, lo: float, hi: float,
                first: int) -> None:
        """Add ``counts`` events (one count per row) spread uniformly over [lo, hi] seconds.

        Step j stands for times [j − ½, j + ½)·step; a point in time is split between the two
        steps around it so that the mean time is kept.
        """
        dt = self.dt
        if np.ndim(counts) == 0 and counts <= 16:
            # few events: draw each one's time; random rounding to a step keeps the mean
            u = self.u
            for _ in range(int(counts)):
                cal.bump(rows, int((lo + (hi - lo) * u()) / dt + u()), 1)
            return
        a, b = lo / dt, hi / dt
        if b - a < 1e-9:
            j0 = math.floor(a)
            f = a - j0
            steps = np.array([j0, j0 + 1])
            p = np.array([1.0 - f, f])
        else:
            j_lo, j_hi = math.floor(a + 0.5), math.floor(b + 0.5)
            steps = np.arange(j_lo, j_hi + 1)
            edges = np.clip(np.arange(j_lo, j_hi + 2) - 0.5, a, b)
            p = np.diff(edges) / (b - a)
        early = int(np.count_nonzero(steps <= first))
        if early > 1:  # steps before ``first`` all happen at ``first``
            p = np.concatenate(([p[:early].sum()], p[early:]))
            steps = np.concatenate(([first], steps[early:]))
        steps = np.maximum(steps, first)
        p = p / p.sum()
        counts_arr = np.asarray(counts, dtype=np.int64)
        m = self.rng.multinomial(counts_arr, p)
        if counts_arr.ndim == 0:
            cal.add(rows, steps, m, unique=True)
        else:
            cal.add(np.asarray(rows)[:, None], steps[None, :], m, unique=True)

    def _points(self, cal: Calendar, rows: np.ndarray, counts: np.ndarray, times: np.ndarray,
                first: int) -> None:
        """Add ``counts[i]`` events at time ``times[i]`` in row ``rows[i]`` (mean time kept)."""
        x = times / self.dt
        j0 = np.floor(x)
        c1 = self.rng.binomial(counts, x - j0)
        j0 = np.maximum(j0.astype(np.int64), first)
        cal.add(rows, j0, counts - c1, unique=True)
        cal.add(rows, j0 + 1, c1, unique=True)

    # -- one step ---------------------------------------------------------------------------
    def _tick(self, ev: Any) -> None:
        k = self.k
        dt = self.dt
        R = self.R
        now = k * dt
        if self.svc.routable is not self._routable_src:
            src = self.svc.routable
            self._routable_src = src
            self.routable_idx = np.array([i.replica for i in src], dtype=np.int64)
            self.routable_mask = np.zeros(self.R, dtype=bool)
            self.routable_mask[self.routable_idx] = True
        order = self.ag if len(self.ag) < 2 else [self.ag[i] for i in self.rng.permutation(len(self.ag))]
        # 1. attempts reaching the balancer
        for a in order:
            if a.g.timeout is not None:
                self._timeouts(a, a.timing_out.pop(k), now, k, TIMEOUTS)
            slot = a.attempts.pop(k)
            if a.rate:
                slot[a.none * a.A + FRESH] += self.rng.poisson(a.rate * dt)
            if slot.any():
                self._route(a, slot, now, k)
        self._sync(check=True)
        # 2. handshakes done
        c = self.tally.c
        b = min(int(now / BIN), self.tally.nbins - 1)
        for a in self.ag:
            a.just = self.zero
            op = a.opening.pop(k).reshape(R, a.A).sum(axis=1)
            ab = a.abandoning.pop(k)
            if op.any() or ab.any():
                a.pend -= op + ab
                self.pend_tot -= op + ab
                a.n += op
                self.n_tot += op
                a.just = op
                opened = int(op.sum())
                c[OPENED, b] += opened
                for r in np.flatnonzero(op):
                    self.opened_rep[r] += int(op[r])
                if a.calendar or a.idling is not None:
                    self._schedule_closes(a, op, now, k)
        total = int(self.n_tot.sum())
        if total > self.tally.peak[b]:
            self.tally.peak[b] = total
        # 3. closes
        for a in self.ag:
            if a.exponential:  # those opened during this step have been open half a step
                d = self.rng.binomial(a.n - a.just, a.p_close) + self.rng.binomial(a.just, a.p_half)
            elif a.calendar:
                d = a.closing.pop(k)
            else:
                d = None
            if d is not None and d.any():
                a.n -= d
                self.n_tot -= d
                c[CLOSES, b] += int(d.sum())
                if a.g.population:
                    self._come_back(a, d, now, k, FRESH)
            if a.idling is not None:
                di = a.idling.pop(k)
                if di.any():
                    a.n -= di
                    self.n_tot -= di
                    c[IDLE_CLOSES, b] += int(di.sum())
                    self._come_back(a, di, now, k, DROP)
        self._sync(check=False)
        # 4. messages, WebSocket work, areas
        w = self.workers
        before = self.backlog.copy()
        for a in self.ag:
            g = a.g
            if g.msg_rate <= 0.0 or not a.n.any():
                continue
            ms = self.rng.poisson(a.n * (g.rs * dt))
            mc = self.rng.poisson(a.n * (g.rc * dt))
            n_s, n_c = int(ms.sum()), int(mc.sum())
            c[TO_CLIENTS, b] += n_s
            c[TO_SERVER, b] += n_c
            c[BYTES, b] += n_s * g.frame_s + n_c * g.frame_c
            added = (ms + mc) * self.mt_mean
            if n_s and self.p_sample > 0.0:
                self._sample_latency(g, ms, before, added, now)
            if self.mt_mean > 0.0:
                self.backlog += added
        drained = np.minimum(self.backlog, w * dt)
        if now >= self.warmup:
            self.busy_time += float(drained.sum())
        self.backlog -= drained
        self.total = total = int(self.n_tot.sum())
        self.area += total * dt
        self.k = k + 1
        if self.k <= self.last_step:
            Wake(self.env, max((k + 1) * dt - self.env.now, 0.0), self._tick, None)

    def mark_warmup(self, ev: Any) -> None:
        self.area_at_warmup = self.area

    def _sample_latency(self, g: Group, ms: np.ndarray, before: np.ndarray, added: np.ndarray,
                        now: float) -> None:
        s = self.rng.binomial(ms, self.p_sample)
        n = int(s.sum())
        if not n:
            return
        rows = np.repeat(np.arange(self.R), s)
        u = self.rng.random(n)
        created = now + u * self.dt
        wait = (before[rows] + u * added[rows]) / self.workers if self.mt_mean > 0.0 else 0.0
        work = np.array([self.message_time() for _ in range(n)]) if self.mt_mean > 0.0 else 0.0
        link = np.array([g.lat() for _ in range(n)])
        self.records.deliveries.extend(g.code, created, created + wait + work + link)

    def _sync(self, check: bool) -> None:
        """Bring each replica's ``connections`` (memory per connection) up to date."""
        new = self.n_tot + self.pend_tot * self.w_pending
        delta = new - self.part
        changed = np.flatnonzero(delta)
        if not len(changed):
            return
        self.part = new
        insts = self.insts
        for r in changed.tolist():
            insts[r].connections += float(delta[r])
        if check and self.limit is not None:
            for r in changed.tolist():
                if delta[r] > 0 and insts[r].up:
                    self.lifecycle.check_memory(insts[r])

    # -- routing attempts -------------------------------------------------------------------
    def _distribute(self, count: int) -> np.ndarray | None:
        """Split ``count`` attempts among the routable replicas as the balancer would."""
        idx = self.routable_idx
        m = len(idx)
        if m == 0:
            return None
        x = np.zeros(self.R, dtype=np.int64)
        kind = self.balancer
        if kind == "round_robin":
            q, rem = divmod(count, m)
            share = np.full(m, q, dtype=np.int64)
            if rem:
                share[(self.rr + 1 + np.arange(rem)) % m] += 1
            self.rr = (self.rr + count) % m
            x[idx] = share
        elif kind == "random":
            x[idx] = self.rng.multinomial(count, np.full(m, 1.0 / m))
        else:  # least_connections (and power_of_two, treated alike here): water-filling
            load = (self.n_tot + self.pend_tot)[idx]
            order = np.argsort(load, kind="stable")
            s = load[order]
            prefix = np.cumsum(s)
            need = np.arange(1, m + 1) * s - prefix
            j = int(np.searchsorted(need, count, side="right"))
            total = count + int(prefix[j - 1])
            level, extra = divmod(total, j)
            share = np.zeros(m, dtype=np.int64)
            share[:j] = level - s[:j]
            share[:extra] += 1
            x[idx[order]] = share
        return x

    def _route(self, a: AggGroup, slot: np.ndarray, now: float, k: int) -> None:
        """The attempts of one step: route each row (home, level), then admit them together,
        so that when a replica has fewer free slots than attempts, every attempt has the same
        chance, whatever its level (as when they arrive one by one in random order)."""
        g = a.g
        c = self.tally.c
        b = min(int(now / BIN), self.tally.nbins - 1)
        A = a.A
        routed: list[tuple[int, int, np.ndarray]] = []
        for row in np.flatnonzero(slot).tolist():
            count = int(slot[row])
            h, i = divmod(row, A)
            x = None
            if a.H > 1 and h < self.R:
                if self.routable_mask[h]:
                    x = np.zeros(self.R, dtype=np.int64)
                    x[h] = count
                else:
                    h = a.none
            if x is None:
                x = self._distribute(count)
            c[ATTEMPTS, b] += count
            c[BYTES, b] += count * g.http
            if i != FRESH:
                c[RECONNECTS, b] += count
                if x is not None:
                    for r in np.flatnonzero(x).tolist():
                        self.rec_rep[r] += int(x[r])
            if x is None:
                c[FAILED, b] += count
                self._retry(a, h, i, count, now + g.lat(), k)
            else:
                routed.append((h, i, x))
        if not routed:
            return
        up = self.up_mask
        X = np.stack([x for _, _, x in routed])
        Xu = X * up
        failed = X.sum(axis=1) - Xu.sum(axis=1)
        Tu = Xu.sum(axis=0)
        free = np.maximum(self.max - self.n_tot - self.pend_tot, 0)
        short = np.flatnonzero(Tu > free)
        Acc = Xu
        if len(short):
            Acc = Xu.copy()
            for r in short.tolist():
                if len(routed) == 1:
                    Acc[0, r] = free[r]
                else:
                    Acc[:, r] = self.rng.multivariate_hypergeometric(Xu[:, r], int(free[r]))
        blocked = Xu.sum(axis=1) - Acc.sum(axis=1)
        if self.limit is not None:
            Acc, failed = self._memory_cap(Acc, failed)
        c[ACCEPTED, b] += int(Acc.sum())
        c[BLOCKED, b] += int(blocked.sum())
        c[FAILED, b] += int(failed.sum())
        for j, (h, i, _) in enumerate(routed):
            lost = int(failed[j] + blocked[j])
            if lost:
                self._retry(a, h, i, lost, now + g.lat(), k)
            if Acc[j].any():
                self._admit(a, Acc[j], h, i, now, k)

    def _memory_cap(self, Acc: np.ndarray, failed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As one upgrade at a time would: the one that takes a replica over memory.limit
        kills it (oom, at the next sync), and the attempts after it find it dead (failed)."""
        unit = self.per_connection * self.w_pending
        if unit <= 0:
            return Acc, failed
        tot = Acc.sum(axis=0)
        unsynced = self.n_tot + self.pend_tot * self.w_pending - self.part
        for r in np.flatnonzero(tot).tolist():
            inst = self.insts[r]
            mem = self.lifecycle.memory(inst) + self.per_connection * unsynced[r]
            fit = max(int((self.limit - mem) // unit), 0) + 1
            if tot[r] <= fit:
                continue
            if Acc.shape[0] == 1:
                keep = np.array([fit])
            else:
                keep = self.rng.multivariate_hypergeometric(Acc[:, r], fit)
            Acc = Acc.copy()
            failed = failed + (Acc[:, r] - keep)
            Acc[:, r] = keep
        return Acc, failed

    def _timeouts(self, a: AggGroup, due: np.ndarray, learnt_at: float, k: int,
                  counter: int) -> None:
        """Clients (by replica and level) that learn now their upgrade failed: they retry."""
        rows = np.flatnonzero(due)
        if not len(rows):
            return
        levels = np.bincount(rows % a.A, weights=due[rows], minlength=a.A)
        self.tally.c[counter, min(int(learnt_at / BIN), self.tally.nbins - 1)] += int(due.sum())
        for i in np.flatnonzero(levels).tolist():
            self._retry(a, a.none, i, int(levels[i]), learnt_at, k)

    def _retry(self, a: AggGroup, h: int, i: int, count: int, learnt_at: float, k: int) -> None:
        """Clients told of a failure at ``learnt_at`` back off and try again (or give up)."""
        fails = a.level_fails(i) + 1
        mx = a.g.max_attempts
        if mx is not None and fails >= mx:
            self.tally.c[GAVE_UP, min(int(learnt_at / BIN), self.tally.nbins - 1)] += count
            return
        lo, hi = a.g.reconnect.bounds(fails)
        d = learnt_at + a.g.lat()
        self._spread(a.attempts, h * a.A + a.next_level(fails), count, d + lo, d + hi, k + 1)

    def _come_back(self, a: AggGroup, d: np.ndarray, now: float, k: int, level: int) -> None:
        """Clients whose connections closed (``d`` per replica) come back after a wait."""
        g = a.g
        lo, hi = g.reconnect.bounds(0)
        t = now + g.lat() + g.lat()
        if a.H > 1 and level == FRESH:  # sticky: a client returns to its replica
            rows = np.flatnonzero(d)
            self._spread(a.attempts, rows * a.A + level, d[rows], t + lo, t + hi, k + 1)
        else:
            self._spread(a.attempts, a.none * a.A + level, int(d.sum()), t + lo, t + hi, k + 1)

    def _admit(self, a: AggGroup, acc: np.ndarray, h: int, i: int, now: float, k: int) -> None:
        """Upgrades accepted by replicas: queue their handshakes (a fluid FIFO per replica)."""
        idx = np.flatnonzero(acc)
        n = acc[idx]
        hs, w = self.hs_mean, self.workers
        back = self.backlog[idx]
        x0 = back / w + hs                       # the first of the batch is done after x0
        x1 = (back + n * hs) / w + hs - hs / w   # and the last after x1 (seconds from now)
        self.backlog[idx] += n * hs
        a.pend[idx] += n
        self.pend_tot[idx] += n
        gone = np.zeros(len(idx), dtype=np.int64)
        if a.g.timeout is not None:
            cut = a.g.timeout - a.g.lat()        # the client gives up after this (from now)
            span = np.maximum(x1 - x0, 1e-12)
            frac = np.clip((x1 - cut) / span, 0.0, 1.0)
            gone = np.rint(n * frac).astype(np.int64)
            if gone.any():  # their timers fire ``timeout`` after they sent: at now + cut
                some = np.flatnonzero(gone)
                self._points(a.timing_out, idx[some] * a.A + i, gone[some],
                             np.full(len(some), now + max(cut, 0.0)), k + 1)
        stay = n - gone
        narrow = (x1 - x0) < self.dt
        if narrow.all():
            mid = now + (x0 + x1) / 2
            self._points(a.opening, idx * a.A + i, stay, mid, k)
            if gone.any():
                self._points(a.abandoning, idx, gone, mid, k)
            return
        for j in range(len(idx)):  # wide batches (a storm): spread over the steps they take
            r = int(idx[j])
            cut_j = x0[j] + (x1[j] - x0[j]) * (stay[j] / n[j])
            if stay[j]:
                self._spread(a.opening, r * a.A + i, int(stay[j]), now + x0[j], now + cut_j, k)
            if gone[j]:
                self._spread(a.abandoning, r, int(gone[j]), now + cut_j, now + x1[j], k)

    def _schedule_closes(self, a: AggGroup, op: np.ndarray, now: float, k: int) -> None:
        """Draw the lifetimes (and idle closes) of connections that opened now."""
        total = int(op.sum())
        if not total:
            return
        g = a.g
        rows = np.repeat(np.arange(self.R), op)
        life = (g.lifetime_dist.draw(self.rng, total) if g.lifetime_dist is not None
                else np.full(total, np.inf))
        idle = self._idle_times(g, total) if a.idling is not None else np.full(total, np.inf)
        for cal, x in ((a.closing, np.where(life <= idle, life, np.inf)),
                       (a.idling, np.where(idle < life, idle, np.inf))):
            if cal is None:
                continue
            steps = np.floor((now + x) / self.dt + self.rng.random(total))
            keep = steps <= self.last_step
            if keep.any():
                cal.add(rows[keep], np.maximum(steps[keep].astype(np.int64), k + 1), 1)

    def _idle_times(self, g: Group, n: int) -> np.ndarray:
        """Time until a gap of ``idle_timeout`` without messages (either way), per connection.

        With Poisson messages at rate m, the number of shorter gaps before it is geometric and
        each such gap is an exponential truncated at the timeout.
        """
        tau = self.cfg.idle_timeout
        m = g.msg_rate
        if m <= 0.0:
            return np.full(n, tau)
        p = math.exp(-m * tau)
        if p < 1e-12 or (1 - p) / p * tau > 100 * self.duration:
            return np.full(n, np.inf)
        short = self.rng.geometric(p, n) - 1
        total = int(short.sum())
        u = self.rng.random(total)
        gaps = -np.log1p(-u * (1 - p)) / m
        sums = np.zeros(n)
        if total:
            owner = np.repeat(np.arange(n), short)
            np.add.at(sums, owner, gaps)
        return sums + tau

    # -- replica failures -------------------------------------------------------------------
    def _down(self, inst: Instance) -> None:
        r = inst.replica
        now = self.env.now
        k = max(self.k, int(math.floor(now / self.dt + 1e-9)))
        b = min(int(now / BIN), self.tally.nbins - 1)
        self.up_mask[r] = False
        for a in self.ag:
            nr = int(a.n[r])
            if nr:
                self.tally.c[DROPS, b] += nr
                lo, hi = a.g.reconnect.bounds(0)
                t = now + a.g.lat() + a.g.lat()
                self._spread(a.attempts, a.none * a.A + DROP, nr, t + lo, t + hi, k + 1)
            rows = slice(r * a.A, (r + 1) * a.A)
            waiting = a.opening.data[rows].sum(axis=1)   # by level
            a.opening.data[rows] = 0
            for i in np.flatnonzero(waiting).tolist():  # their upgrades fail: they retry
                self._retry(a, a.none, i, int(waiting[i]), now + a.g.lat(), k)
            if a.g.timeout is not None:  # clients still waiting for a doomed upgrade
                rows = slice(r * a.A, (r + 1) * a.A)
                due = np.zeros(a.timing_out.rows, dtype=np.int64)
                due[rows] = a.timing_out.data[rows].sum(axis=1)
                a.timing_out.data[rows] = 0
                self._timeouts(a, due, now + a.g.lat(), k, FAILED)
            a.abandoning.clear_row(r)
            if a.closing is not None:
                a.closing.clear_row(r)
            if a.idling is not None:
                a.idling.clear_row(r)
            if a.H > 1:
                for i in range(a.A):
                    a.attempts.move_row(r * a.A + i, a.none * a.A + i)
            a.n[r] = 0
            a.pend[r] = 0
        self.n_tot[r] = 0
        self.pend_tot[r] = 0
        self.backlog[r] = 0.0
        inst.connections -= float(self.part[r])
        self.part = self.part.copy()
        self.part[r] = 0

    def _up(self, inst: Instance) -> None:
        self.up_mask[inst.replica] = True


# -- polling --------------------------------------------------------------------------------
class _ParkingLink:
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
        self.proxy = _ParkingLink(link, self)
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
class WebSockets:
    """Every pool and polling group of a run: started, sampled and settled together."""

    def __init__(self, env: simpy.Environment, records: Records, pools: list[Pool],
                 polls: list[PollingGroup], warmup: float, duration: float, sample_every: float):
        self.env = env
        self.records = records
        self.pools = pools
        self.polls = polls
        self.warmup = warmup
        self.duration = duration
        self.sample_every = sample_every
        self.last_sample = 0.0
        services: dict[str, tuple[Service, Pool | None, list[PollingGroup]]] = {}
        for pool in pools:
            services[pool.svc.name] = (pool.svc, pool, [])
        for pg in polls:
            svc, pool, lst = services.get(pg.svc.name, (pg.svc, None, []))
            services[pg.svc.name] = (svc, pool, [*lst, pg])
        self.services = list(services.values())
        self.codes: tuple[int, ...] = ()

    def start(self) -> None:
        self.codes = tuple(self.records.metric(name) for name in METRICS)
        for pool in self.pools:
            pool.start()
            if self.warmup > 0:
                Wake(self.env, self.warmup, pool.mark_warmup, None)
        for pg in self.polls:
            pg.start()

    def sample(self, now: float) -> None:
        """Per replica: open connections (and held long polls), upgrades under way, and the
        rates of new connections and of reconnect attempts since the last sample."""
        if not self.codes:
            return
        add = self.records.samples.add
        m_conn, m_shake, m_open, m_rec = self.codes
        span = now - self.last_sample
        self.last_sample = now
        for svc, pool, polls in self.services:
            for inst in svc.instances:
                r = inst.replica
                held = sum(pg.parked_rep[r] for pg in polls)
                if pool is not None:
                    add(now, inst.code, m_conn, pool.open_at(r) + held)
                    add(now, inst.code, m_shake, pool.pending_at(r))
                    add(now, inst.code, m_open, pool.opened_rep[r] / span if span > 0 else 0.0)
                    add(now, inst.code, m_rec, pool.rec_rep[r] / span if span > 0 else 0.0)
                    pool.opened_rep[r] = 0
                    pool.rec_rep[r] = 0
                else:
                    add(now, inst.code, m_conn, held)
                    add(now, inst.code, m_shake, 0.0)
                    add(now, inst.code, m_open, 0.0)
                    add(now, inst.code, m_rec, 0.0)
        for pool in self.pools:
            pool.heartbeats(now)

    def settle(self) -> None:
        self.records.stats["websockets"] = {
            "bin": BIN,
            "pools": {pool.svc.name: pool.export() for pool in self.pools},
            "polling": {self.records.sources[pg.code]: pg.export() for pg in self.polls},
        }


def choose_representation(cfg: Any, groups: list[Group], duration: float,
                          replicas: int) -> str:
    """``exact`` or ``aggregate`` for a pool whose ``representation`` may be ``auto``."""
    if cfg.representation != "auto":
        return cfg.representation
    expected = sum(g.expected_connections(duration) for g in groups)
    expected = min(expected, cfg.max_connections * replicas)
    return "aggregate" if expected > AUTO_THRESHOLD else "exact"


def build_websockets(env: simpy.Environment, G: Any, streams: Streams, records: Records,
                     services: dict[str, Service], lifecycle: Any, memory: dict[str, Any],
                     workloads: list[tuple[int, str, Any, Any]], next_id: Callable[[], int],
                     duration: float, warmup: float, sample_every: float) -> WebSockets | None:
    """Pools for services with ``websocket`` settings and the workloads aimed at them.

    ``workloads`` holds ``(source code, client node, workload spec, client link)`` of every
    ``websocket`` and ``polling`` workload. Returns None when there are none.
    """
    if not workloads:
        return None
    by_target: dict[str, list[Group]] = {}
    polls: list[PollingGroup] = []
    for code, node, w, link in workloads:
        if w.type == "polling":
            polls.append(PollingGroup(env, code, records.requests, next_id, w, node, link,
                                      services[w.target], streams, records, duration))
        else:
            by_target.setdefault(w.target, []).append(Group(code, node, w, link, streams))
    pools: list[Pool] = []
    for name, groups in by_target.items():
        attrs = G.nodes[name]
        cfg = attrs.get("websocket")
        if cfg is None:
            from ..errors import BuildError

            raise BuildError(f"node {name!r}: websocket workloads target it but it has no "
                             "websocket settings")
        svc = services[name]
        kind = choose_representation(cfg, groups, duration, len(svc.instances))
        args = (env, svc, cfg, groups, lifecycle, streams, records, duration, warmup,
                attrs.get("balancer", "round_robin"), memory[name])
        if kind == "exact":
            pools.append(ExactPool(*args))
        else:
            p = cfg.latency_sample
            if p is None:
                expected = sum(g.expected_connections(duration) * g.rs for g in groups) * duration
                p = min(1.0, LATENCY_BUDGET / expected) if expected > 0 else 1.0
            pools.append(AggregatePool(*args, latency_sample=p))
    return WebSockets(env, records, pools, polls, warmup, duration, sample_every)
