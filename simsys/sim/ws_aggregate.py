"""The aggregate WebSocket pool: per-replica counts in numpy arrays advanced in fixed steps
(see :mod:`.websocket`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .engine import Wake
from .visits import Instance
from .ws_aggregate_state import AggGroup, Calendar
from .ws_common import (
    ACCEPTED,
    ATTEMPTS,
    BIN,
    BLOCKED,
    BYTES,
    CLOSES,
    DROP,
    DROPS,
    FAILED,
    FRESH,
    GAVE_UP,
    IDLE_CLOSES,
    OPENED,
    RECONNECTS,
    TIMEOUTS,
    TO_CLIENTS,
    TO_SERVER,
    Group,
    Pool,
)


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
        for group in self.ag:
            if group.exponential:
                group.p_close = 1.0 - math.exp(-dt / group.g.lifetime_dist.mean)
                group.p_half = 1.0 - math.exp(-dt / 2 / group.g.lifetime_dist.mean)
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
        for group in self.ag:
            if group.g.population:
                self._spread(group.attempts, group.no_home * group.n_levels + FRESH,
                             group.g.w.clients, 0.0, group.g.w.ramp, 0)
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
        """Advance every group by one step of ``dt`` seconds, in four named stages."""
        k = self.k
        now = k * self.dt
        counter_bin = min(int(now / BIN), self.tally.nbins - 1)
        self._refresh_routable()
        self._attempts_arrive(k, now)
        self._sync(check=True)
        total = self._handshakes_finish(k, now, counter_bin)
        if total > self.tally.peak[counter_bin]:
            self.tally.peak[counter_bin] = total
        self._connections_close(k, now, counter_bin)
        self._sync(check=False)
        self._messages_flow(now, counter_bin)
        self.total = total = int(self.n_tot.sum())
        self.area += total * self.dt
        self.k = k + 1
        if self.k <= self.last_step:
            Wake(self.env, max((k + 1) * self.dt - self.env.now, 0.0), self._tick, None)

    def _refresh_routable(self) -> None:
        """The replicas the balancer may pick, re-read when the service's list changed."""
        if self.svc.routable is not self._routable_src:
            src = self.svc.routable
            self._routable_src = src
            self.routable_idx = np.array([i.replica for i in src], dtype=np.int64)
            self.routable_mask = np.zeros(self.R, dtype=bool)
            self.routable_mask[self.routable_idx] = True

    def _attempts_arrive(self, k: int, now: float) -> None:
        """1. Attempts reaching the balancer (groups in random order: none is always first)."""
        groups = self.ag
        if len(groups) > 1:
            groups = [groups[i] for i in self.rng.permutation(len(groups))]
        for group in groups:
            if group.g.timeout is not None:
                self._timeouts(group, group.timing_out.pop(k), now, k, TIMEOUTS)
            slot = group.attempts.pop(k)
            if group.rate:
                fresh = self.rng.poisson(group.rate * self.dt)
                slot[group.no_home * group.n_levels + FRESH] += fresh
            if slot.any():
                self._route(group, slot, now, k)

    def _handshakes_finish(self, k: int, now: float, counter_bin: int) -> int:
        """2. Handshakes done this step: connections open (or are abandoned by clients gone).
        Returns the open connections after them."""
        counters = self.tally.c
        for group in self.ag:
            group.just = self.zero
            opened = group.opening.pop(k).reshape(self.R, group.n_levels).sum(axis=1)
            abandoned = group.abandoning.pop(k)
            if not (opened.any() or abandoned.any()):
                continue
            group.pend -= opened + abandoned
            self.pend_tot -= opened + abandoned
            group.n += opened
            self.n_tot += opened
            group.just = opened
            counters[OPENED, counter_bin] += int(opened.sum())
            for r in np.flatnonzero(opened):
                self.opened_rep[r] += int(opened[r])
            if group.calendar or group.idling is not None:
                self._schedule_closes(group, opened, now, k)
        return int(self.n_tot.sum())

    def _connections_close(self, k: int, now: float, counter_bin: int) -> None:
        """3. Connections whose lifetime ended, and those the server closed for being idle."""
        counters = self.tally.c
        for group in self.ag:
            if group.exponential:  # those opened during this step have been open half a step
                ended = (self.rng.binomial(group.n - group.just, group.p_close)
                         + self.rng.binomial(group.just, group.p_half))
            elif group.calendar:
                ended = group.closing.pop(k)
            else:
                ended = None
            if ended is not None and ended.any():
                group.n -= ended
                self.n_tot -= ended
                counters[CLOSES, counter_bin] += int(ended.sum())
                if group.g.population:
                    self._come_back(group, ended, now, k, FRESH)
            if group.idling is not None:
                idle_closed = group.idling.pop(k)
                if idle_closed.any():
                    group.n -= idle_closed
                    self.n_tot -= idle_closed
                    counters[IDLE_CLOSES, counter_bin] += int(idle_closed.sum())
                    self._come_back(group, idle_closed, now, k, DROP)

    def _messages_flow(self, now: float, counter_bin: int) -> None:
        """4. Messages each way on the open connections, and the WebSocket work they make."""
        counters = self.tally.c
        dt = self.dt
        backlog_before = self.backlog.copy()
        for group in self.ag:
            g = group.g
            if g.msg_rate <= 0.0 or not group.n.any():
                continue
            to_clients = self.rng.poisson(group.n * (g.rs * dt))
            to_server = self.rng.poisson(group.n * (g.rc * dt))
            n_s, n_c = int(to_clients.sum()), int(to_server.sum())
            counters[TO_CLIENTS, counter_bin] += n_s
            counters[TO_SERVER, counter_bin] += n_c
            counters[BYTES, counter_bin] += n_s * g.frame_s + n_c * g.frame_c
            work = (to_clients + to_server) * self.mt_mean
            if n_s and self.p_sample > 0.0:
                self._sample_latency(g, to_clients, backlog_before, work, now)
            if self.mt_mean > 0.0:
                self.backlog += work
        drained = np.minimum(self.backlog, self.workers * dt)
        if now >= self.warmup:
            self.busy_time += float(drained.sum())
        self.backlog -= drained

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

    def _route(self, group: AggGroup, slot: np.ndarray, now: float, k: int) -> None:
        """The attempts of one step: route each row (home, level), then admit them together,
        so that when a replica has fewer free slots than attempts, every attempt has the same
        chance, whatever its level (as when they arrive one by one in random order)."""
        g = group.g
        counters = self.tally.c
        counter_bin = min(int(now / BIN), self.tally.nbins - 1)
        n_levels = group.n_levels
        routed: list[tuple[int, int, np.ndarray]] = []
        for row in np.flatnonzero(slot).tolist():
            count = int(slot[row])
            home, level = divmod(row, n_levels)
            split = None
            if group.n_homes > 1 and home < self.R:
                if self.routable_mask[home]:
                    split = np.zeros(self.R, dtype=np.int64)
                    split[home] = count
                else:
                    home = group.no_home
            if split is None:
                split = self._distribute(count)
            counters[ATTEMPTS, counter_bin] += count
            counters[BYTES, counter_bin] += count * g.http
            if level != FRESH:
                counters[RECONNECTS, counter_bin] += count
                if split is not None:
                    for r in np.flatnonzero(split).tolist():
                        self.rec_rep[r] += int(split[r])
            if split is None:
                counters[FAILED, counter_bin] += count
                self._retry(group, home, level, count, now + g.lat(), k)
            else:
                routed.append((home, level, split))
        if not routed:
            return
        up = self.up_mask
        splits = np.stack([split for _, _, split in routed])
        splits_up = splits * up
        failed = splits.sum(axis=1) - splits_up.sum(axis=1)
        up_total = splits_up.sum(axis=0)
        free = np.maximum(self.max - self.n_tot - self.pend_tot, 0)
        short = np.flatnonzero(up_total > free)
        accepted = splits_up
        if len(short):
            accepted = splits_up.copy()
            for r in short.tolist():
                if len(routed) == 1:
                    accepted[0, r] = free[r]
                else:
                    accepted[:, r] = self.rng.multivariate_hypergeometric(splits_up[:, r],
                                                                          int(free[r]))
        blocked = splits_up.sum(axis=1) - accepted.sum(axis=1)
        if self.limit is not None:
            accepted, failed = self._memory_cap(accepted, failed)
        counters[ACCEPTED, counter_bin] += int(accepted.sum())
        counters[BLOCKED, counter_bin] += int(blocked.sum())
        counters[FAILED, counter_bin] += int(failed.sum())
        for j, (home, level, _) in enumerate(routed):
            lost = int(failed[j] + blocked[j])
            if lost:
                self._retry(group, home, level, lost, now + g.lat(), k)
            if accepted[j].any():
                self._admit(group, accepted[j], home, level, now, k)

    def _memory_cap(self, accepted: np.ndarray,
                    failed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As one upgrade at a time would: the one that takes a replica over memory.limit
        kills it (oom, at the next sync), and the attempts after it find it dead (failed)."""
        unit = self.per_connection * self.w_pending
        if unit <= 0:
            return accepted, failed
        per_replica = accepted.sum(axis=0)
        unsynced = self.n_tot + self.pend_tot * self.w_pending - self.part
        for r in np.flatnonzero(per_replica).tolist():
            inst = self.insts[r]
            mem = self.lifecycle.memory(inst) + self.per_connection * unsynced[r]
            fit = max(int((self.limit - mem) // unit), 0) + 1
            if per_replica[r] <= fit:
                continue
            if accepted.shape[0] == 1:
                keep = np.array([fit])
            else:
                keep = self.rng.multivariate_hypergeometric(accepted[:, r], fit)
            accepted = accepted.copy()
            failed = failed + (accepted[:, r] - keep)
            accepted[:, r] = keep
        return accepted, failed

    def _timeouts(self, group: AggGroup, due: np.ndarray, learnt_at: float, k: int,
                  counter: int) -> None:
        """Clients (by replica and level) that learn now their upgrade failed: they retry."""
        rows = np.flatnonzero(due)
        if not len(rows):
            return
        levels = np.bincount(rows % group.n_levels, weights=due[rows], minlength=group.n_levels)
        self.tally.c[counter, min(int(learnt_at / BIN), self.tally.nbins - 1)] += int(due.sum())
        for level in np.flatnonzero(levels).tolist():
            self._retry(group, group.no_home, level, int(levels[level]), learnt_at, k)

    def _retry(self, group: AggGroup, home: int, level: int, count: int, learnt_at: float,
               k: int) -> None:
        """Clients told of a failure at ``learnt_at`` back off and try again (or give up)."""
        fails = group.level_fails(level) + 1
        mx = group.g.max_attempts
        if mx is not None and fails >= mx:
            self.tally.c[GAVE_UP, min(int(learnt_at / BIN), self.tally.nbins - 1)] += count
            return
        lo, hi = group.g.reconnect.bounds(fails)
        t0 = learnt_at + group.g.lat()
        self._spread(group.attempts, home * group.n_levels + group.next_level(fails), count,
                     t0 + lo, t0 + hi, k + 1)

    def _come_back(self, group: AggGroup, closed: np.ndarray, now: float, k: int,
                   level: int) -> None:
        """Clients whose connections closed (``closed`` per replica) come back after a wait."""
        g = group.g
        lo, hi = g.reconnect.bounds(0)
        t0 = now + g.lat() + g.lat()
        if group.n_homes > 1 and level == FRESH:  # sticky: a client returns to its replica
            rows = np.flatnonzero(closed)
            self._spread(group.attempts, rows * group.n_levels + level, closed[rows],
                         t0 + lo, t0 + hi, k + 1)
        else:
            self._spread(group.attempts, group.no_home * group.n_levels + level,
                         int(closed.sum()), t0 + lo, t0 + hi, k + 1)

    def _admit(self, group: AggGroup, accepted: np.ndarray, home: int, level: int, now: float,
               k: int) -> None:
        """Upgrades accepted by replicas: queue their handshakes (a fluid FIFO per replica)."""
        idx = np.flatnonzero(accepted)
        count = accepted[idx]
        handshake, workers = self.hs_mean, self.workers
        back = self.backlog[idx]
        # the first of the batch is done after x0, the last after x1 (seconds from now)
        x0 = back / workers + handshake
        x1 = (back + count * handshake) / workers + handshake - handshake / workers
        self.backlog[idx] += count * handshake
        group.pend[idx] += count
        self.pend_tot[idx] += count
        gone = np.zeros(len(idx), dtype=np.int64)
        if group.g.timeout is not None:
            cut = group.g.timeout - group.g.lat()        # the client gives up after this (from now)
            span = np.maximum(x1 - x0, 1e-12)
            frac = np.clip((x1 - cut) / span, 0.0, 1.0)
            gone = np.rint(count * frac).astype(np.int64)
            if gone.any():  # their timers fire ``timeout`` after they sent: at now + cut
                some = np.flatnonzero(gone)
                self._points(group.timing_out, idx[some] * group.n_levels + level, gone[some],
                             np.full(len(some), now + max(cut, 0.0)), k + 1)
        stay = count - gone
        narrow = (x1 - x0) < self.dt
        if narrow.all():
            mid = now + (x0 + x1) / 2
            self._points(group.opening, idx * group.n_levels + level, stay, mid, k)
            if gone.any():
                self._points(group.abandoning, idx, gone, mid, k)
            return
        for j in range(len(idx)):  # wide batches (a storm): spread over the steps they take
            r = int(idx[j])
            cut_j = x0[j] + (x1[j] - x0[j]) * (stay[j] / count[j])
            if stay[j]:
                self._spread(group.opening, r * group.n_levels + level, int(stay[j]),
                             now + x0[j], now + cut_j, k)
            if gone[j]:
                self._spread(group.abandoning, r, int(gone[j]), now + cut_j, now + x1[j], k)

    def _schedule_closes(self, group: AggGroup, opened: np.ndarray, now: float, k: int) -> None:
        """Draw the lifetimes (and idle closes) of connections that opened now."""
        total = int(opened.sum())
        if not total:
            return
        g = group.g
        rows = np.repeat(np.arange(self.R), opened)
        life = (g.lifetime_dist.draw(self.rng, total) if g.lifetime_dist is not None
                else np.full(total, np.inf))
        idle = self._idle_times(g, total) if group.idling is not None else np.full(total, np.inf)
        for cal, x in ((group.closing, np.where(life <= idle, life, np.inf)),
                       (group.idling, np.where(idle < life, idle, np.inf))):
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
        counter_bin = min(int(now / BIN), self.tally.nbins - 1)
        self.up_mask[r] = False
        for group in self.ag:
            dropped = int(group.n[r])
            if dropped:
                self.tally.c[DROPS, counter_bin] += dropped
                lo, hi = group.g.reconnect.bounds(0)
                t = now + group.g.lat() + group.g.lat()
                self._spread(group.attempts, group.no_home * group.n_levels + DROP, dropped,
                             t + lo, t + hi, k + 1)
            rows = slice(r * group.n_levels, (r + 1) * group.n_levels)
            waiting = group.opening.data[rows].sum(axis=1)   # by level
            group.opening.data[rows] = 0
            for level in np.flatnonzero(waiting).tolist():  # their upgrades fail: they retry
                self._retry(group, group.no_home, level, int(waiting[level]),
                            now + group.g.lat(), k)
            if group.g.timeout is not None:  # clients still waiting for a doomed upgrade
                rows = slice(r * group.n_levels, (r + 1) * group.n_levels)
                due = np.zeros(group.timing_out.rows, dtype=np.int64)
                due[rows] = group.timing_out.data[rows].sum(axis=1)
                group.timing_out.data[rows] = 0
                self._timeouts(group, due, now + group.g.lat(), k, FAILED)
            group.abandoning.clear_row(r)
            if group.closing is not None:
                group.closing.clear_row(r)
            if group.idling is not None:
                group.idling.clear_row(r)
            if group.n_homes > 1:
                for level in range(group.n_levels):
                    group.attempts.move_row(r * group.n_levels + level,
                                            group.no_home * group.n_levels + level)
            group.n[r] = 0
            group.pend[r] = 0
        self.n_tot[r] = 0
        self.pend_tot[r] = 0
        self.backlog[r] = 0.0
        inst.connections -= float(self.part[r])
        self.part = self.part.copy()
        self.part[r] = 0

    def _up(self, inst: Instance) -> None:
        self.up_mask[inst.replica] = True
