"""The exact WebSocket pool: one object per client, scheduled events per connection, attempt
and message (see :mod:`.websocket`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import Problem, ScenarioError
from .engine import Wake, ZeroTimeLoop
from .visits import Instance
from .ws_common import (
    ACCEPTED,
    ATTEMPTS,
    BIN,
    BLOCKED,
    BYTES,
    CLOSES,
    CONNECTING,
    DROPS,
    FAILED,
    GAVE_UP,
    GONE,
    IDLE_CLOSES,
    OPEN,
    OPENED,
    RECONNECTS,
    TIMEOUTS,
    TO_CLIENTS,
    TO_SERVER,
    WAITING,
    Conn,
    Group,
    Pool,
    nothing,
)


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
                self._work(r, self.message_time(), nothing, None)

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
