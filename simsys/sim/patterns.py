"""Resilience patterns on a call: timeout, retry (back-off, jitter, budget), circuit breaker
(:mod:`.breaker`), bulkhead, hedging and fallback; parallel fan-out with a quorum is in
:mod:`.fan_out`.

A :class:`Guard` wraps one link. A call through it that needs more than one plain attempt has
a :class:`CallState`; each attempt is a visit (:class:`~simsys.sim.service.Job`) whose ``call``
points back at that state, so a late answer to an attempt that has timed out, or lost a hedging
race, is recognised and ignored — while the work it caused downstream goes on, as it would in a
real system. The usual call, whose first attempt answers ok, is made without one: its attempt's
``call`` is the guard itself (see :class:`Guard`).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

import simpy

from ..records import (
    C_BULKHEAD,
    C_CIRCUIT_OPEN,
    C_TIMEOUT,
    CALL_FALLBACK,
    CALL_REFUSED,
    DEGRADED,
    ERROR,
    OK,
    TIMEOUT,
    Records,
)
from ..spec.patterns import CallPolicy
from .breaker import CLOSED, HALF_OPEN, Breaker
from .engine import Streams, Wake
from .link import Link
from .visits import Job

TOKEN_CAP = 10.0  # retry-budget tokens that can be saved up (a burst of retries)


class Caller:
    """What a call step reports to: a service or a client, or a parallel group."""

    def resume(self, job: Job) -> None: ...  # pragma: no cover

    def abort(self, job: Job, status: int) -> None: ...  # pragma: no cover


class CallState:
    """One call through a guard that needs more than one plain attempt: its attempts so far
    and the visits still out. A call whose first attempt goes out and answers ok never gets
    one (see :class:`Guard`)."""

    __slots__ = ("parent", "attempts", "outstanding", "done", "group", "slot")

    def __init__(self, parent: Job, group: Any = None):
        self.parent = parent
        # the caller's replica, whose bulkhead the call counts against (-1: the client)
        self.slot = parent.inst.code if parent.inst is not None else -1
        self.attempts = 0
        self.outstanding: list[Job] = []
        self.done = False
        self.group = group


class Guard:
    """A call step guarded by a :class:`~simsys.spec.patterns.CallPolicy`.

    The usual call — a closed breaker, room in the bulkhead, no hedging, not part of a fan-out
    — sends its first attempt with no :class:`CallState`: the attempt's visit carries the guard
    itself in ``call``, its bulkhead count's index in ``group`` and its timeout number in
    ``seq``, and the caller's visit is its ``parent``. If that attempt answers ok, nothing more is
    made; if it fails or times out, a call state is made then (one attempt so far) and the
    general path below takes over, unchanged.
    """

    # Slots: more attributes than CPython shares keys for, and quicker to read on the hot path.
    __slots__ = ("env", "link", "caller", "probability", "coin", "records", "_attempt_at",
                 "timeout", "retry", "hedge", "breaker", "plain", "fast", "bulkhead", "in_flight",
                 "fallback", "jitter", "budget", "tokens", "token_calls", "calls", "slow_calls",
                 "sent", "retries", "hedges", "stats", "times", "out", "base", "head",
                 "timer_armed", "_timer_cb", "_hedge_cb", "_retry_cb")

    def __init__(self, env: simpy.Environment, link: Link, caller: Any, policy: CallPolicy,
                 streams: Streams, records: Records):
        self.env = env
        self.link = link
        self.caller = caller
        self.probability = link.probability
        self.coin = link.coin
        link.back = self.on_response
        self.records = records
        self._attempt_at = records.attempt_at.append
        key = link.key
        self.timeout = policy.timeout
        self.retry = policy.retry
        self.hedge = policy.hedge.after if policy.hedge is not None else None
        self.breaker = (Breaker(env, policy.circuit_breaker, key, records,
                                target=link.target.name)
                        if policy.circuit_breaker is not None else None)
        # May a call send its first attempt with no call state? Not with hedging (a copy may
        # follow), nor while the breaker is not closed.
        self.plain = self.hedge is None
        self.fast = self.plain
        if self.breaker is not None:
            self.breaker.on_move = self._breaker_moved
        self.bulkhead = policy.bulkhead.max_concurrent if policy.bulkhead is not None else None
        # Attempts out per caller replica, for the bulkhead: ``in_flight[slot + 1]`` (slot -1,
        # the client, at 0), sized for the caller's replicas and grown if another turns up.
        codes = [inst.code for inst in getattr(caller, "instances", ())]
        self.in_flight = [0] * (max(codes, default=-1) + 2)
        self.fallback = (policy.fallback.service_time.sampler(streams.rng(f"fallback/{key}"))
                         if policy.fallback is not None else None)
        self.jitter: Callable[[], float] | None = None
        if self.retry is not None and self.retry.jitter != "none":
            self.jitter = streams.uniform(f"retry/{key}/jitter")
        self.budget = self.retry.budget if self.retry is not None else None
        # Retry-budget tokens: each call adds ``budget`` (at most TOKEN_CAP saved up), each retry
        # takes one. The additions are made when tokens are looked at, one by one as if each
        # call had made its own (the same float sums), for the calls since ``token_calls``.
        self.tokens = TOKEN_CAP
        self.token_calls = 0
        # Attempts sent (the offered load on the dependency) = calls - slow_calls + sent.
        self.calls = 0        # calls made through this guard
        self.slow_calls = 0   # … of which not by the fast path (a call state from the start)
        self.sent = 0         # attempts sent with a call state
        self.retries = 0
        self.hedges = 0
        self.stats = records.calls.setdefault(key, {"calls": 0, "attempts": 0, "retries": 0,
                                                    "hedges": 0, "timeouts": 0, "fallbacks": 0,
                                                    "short_circuited": 0, "bulkhead_rejected": 0})
        # Timeouts are the same for every attempt, so deadlines come in send order: one timer
        # for the earliest pending deadline replaces an event per attempt. Attempt number ``s``
        # (``seq``) sent at ``times[s - base]`` is ``out[s - base]`` while it is out, None once
        # answered: an answered attempt is freed at once instead of living on until its deadline
        # — keeping a timeout's worth of visits alive made the garbage collector rescan them
        # (measured: a 5-min flagship run 1.8 s slower). ``head`` is the first that may still
        # be out; the lists are cut at ``head`` now and then.
        self.times = array("d")
        self.out: list[Job | None] = []
        self.base = 0
        self.head = 0
        self.timer_armed = False
        self._timer_cb = self._on_timer
        self._hedge_cb = self._on_hedge
        self._retry_cb = self._on_retry

    # -- making calls -------------------------------------------------------------------------
    def call(self, parent: Job, group: Any = None) -> None:
        self.calls += 1
        if self.fast and group is None:
            # the usual case: the first attempt goes out with no call state
            cap = self.bulkhead
            if cap is not None:
                inst = parent.inst
                i = inst.code + 1 if inst is not None else 0
                in_flight = self.in_flight
                try:
                    n = in_flight[i]
                except IndexError:
                    n = self._count(i - 1)
                if n >= cap:
                    self.slow_calls += 1
                    self._try(CallState(parent))
                    return
                in_flight[i] = n + 1
            if parent.inst is None:  # the client: its attempts are the request's attempts
                parent.req.attempts = 1
            child = Job(parent.req, parent, self.link)
            child.call = self
            if cap is not None:
                child.group = i
            now = self.env._now  # simpy's ``now`` property, read directly
            self._attempt_at(now)
            if self.timeout is None:
                self.link.send(child)
                return
            out = self.out
            child.seq = seq = self.base + len(out)
            out.append(child)
            self.times.append(now)
            self.link.send(child)
            # after the send: an answer due at the same instant as the deadline was scheduled
            # first, and wins; an attempt answered during the send (a lost message) needs no timer
            if not self.timer_armed and out[seq - self.base] is not None:
                self.timer_armed = True
                Wake(self.env, self.timeout, self._timer_cb, None)
            return
        self.slow_calls += 1
        st = CallState(parent, group)
        breaker = self.breaker
        if (breaker is None or breaker.state == CLOSED) and (
            self.bulkhead is None or self._count(st.slot) < self.bulkhead
        ):
            self._send(st)
        else:
            self._try(st)

    def _count(self, slot: int) -> int:
        """Attempts out from the caller's replica ``slot`` (-1: the client)."""
        i = slot + 1
        if i >= len(self.in_flight):
            self.in_flight.extend([0] * (i + 1 - len(self.in_flight)))
        return self.in_flight[i]

    def _breaker_moved(self, state: int) -> None:
        self.fast = self.plain and state == CLOSED

    def publish(self) -> None:
        """Write the hot-path counters into the run's records (at the end of the run)."""
        if self.budget is not None:
            self._settle_tokens()
        self.stats["calls"] += self.calls
        self.stats["attempts"] += self.calls - self.slow_calls + self.sent
        self.calls = self.slow_calls = self.sent = self.token_calls = 0

    def _settle_tokens(self) -> float:
        """The retry-budget tokens now: the additions of the calls made since last time."""
        k = self.calls - self.token_calls
        self.token_calls = self.calls
        tokens = self.tokens
        budget = self.budget
        while k and tokens < TOKEN_CAP:  # at the cap, an addition changes nothing
            tokens = min(TOKEN_CAP, tokens + budget)
            k -= 1
        self.tokens = tokens
        return tokens

    def _try(self, st: CallState) -> None:
        breaker = self.breaker
        if breaker is not None and not breaker.allow():
            self.stats["short_circuited"] += 1
            self._refused(st, C_CIRCUIT_OPEN)
            return
        if self.bulkhead is not None:
            if self._count(st.slot) >= self.bulkhead:
                if breaker is not None and breaker.state == HALF_OPEN:
                    breaker.trial_out = False  # this call was the trial: the next one is
                self.stats["bulkhead_rejected"] += 1
                self._refused(st, C_BULKHEAD)
                return
        self._send(st)

    def _refused(self, st: CallState, cause: int) -> None:
        """A try failed before anything was sent. It counts against ``max_attempts`` like a
        sent one: otherwise retries would go on until the breaker or the bulkhead let a call
        through (for ever, within one instant, with no back-off)."""
        st.attempts += 1
        parent = st.parent
        if parent.inst is None:
            parent.req.attempts = st.attempts
        parent.req.blame(self.link.target.code, -1, cause)
        if self.records.call_log is not None:  # tracing: the refusal is a span of its own
            now = self.env.now
            self.link.marker(parent, now, now, ERROR, cause, st.attempts, CALL_REFUSED)
        self._failed(st, ERROR)

    def _send(self, st: CallState) -> None:
        parent = st.parent
        st.attempts += 1
        if parent.inst is None:  # the client: its attempts are the request's attempts
            parent.req.attempts = st.attempts
        self.sent += 1
        if self.bulkhead is not None:
            self.in_flight[st.slot + 1] += 1  # counted before (by _count): in range
        child = Job(parent.req, parent, self.link)
        child.call = st
        st.outstanding.append(child)
        now = self.env.now
        self._attempt_at(now)
        if self.timeout is not None:
            out = self.out
            child.seq = self.base + len(out)
            out.append(child)
            self.times.append(now)
        self.link.send(child)
        # after the send: an answer due at the same instant as the deadline was scheduled
        # first, and wins; an attempt answered during the send (a lost message) needs no timer
        if (self.timeout is not None and not self.timer_armed and st.outstanding
                and st.outstanding[-1] is child):
            self.timer_armed = True
            Wake(self.env, self.timeout, self._timer_cb, None)
        if self.hedge is not None and len(st.outstanding) == 1 and not st.done:
            Wake(self.env, self.hedge, self._hedge_cb, (st, st.attempts))

    # -- answers ------------------------------------------------------------------------------
    def _release(self, st: CallState, child: Job) -> bool:
        """Forget an attempt; False if it was already forgotten (late or lost the race)."""
        try:
            st.outstanding.remove(child)
        except ValueError:
            return False
        if self.timeout is not None:
            self.out[child.seq - self.base] = None
        if self.bulkhead is not None:
            self.in_flight[st.slot + 1] -= 1
        return True

    def _first_failed(self, child: Job) -> CallState:
        """The call state of a call whose first attempt (sent with none) has failed."""
        st = CallState(child.parent)
        st.attempts = 1
        child.call = st  # a late answer now finds it not outstanding, and is ignored
        return st

    def on_response(self, child: Job) -> None:
        if child.call is not self:
            self._on_response(child)
            return
        # the answer to a first attempt sent with no call state
        if self.timeout is not None:
            self.out[child.seq - self.base] = None
        if self.bulkhead is not None:
            self.in_flight[child.group] -= 1
        breaker = self.breaker
        if child.status == OK:
            if breaker is not None:
                if self.env._now < breaker.next_roll:
                    n = breaker.fast + 1
                    if n == breaker.trigger:
                        breaker.record(True)
                    else:
                        breaker.fast = n
                else:
                    breaker.record(True)
            parent = child.parent
            if not parent.dead:
                self.caller.resume(parent)
            return
        st = self._first_failed(child)
        if breaker is not None:
            breaker.record(False)
        self._failed(st, child.status)

    def _on_response(self, child: Job) -> None:
        st: CallState = child.call
        out = st.outstanding
        if len(out) == 1 and out[0] is child:  # _release, inlined for the usual case
            out.pop()
            if self.timeout is not None:
                self.out[child.seq - self.base] = None
            if self.bulkhead is not None:
                self.in_flight[st.slot + 1] -= 1
        elif not self._release(st, child):
            return
        if st.done:
            return
        ok = child.status == OK
        if self.breaker is not None:
            self.breaker.record(ok)
        if not ok:
            if not st.outstanding:
                self._failed(st, child.status)
            return
        # the common case, inlined: one answer, no hedged copy still out, a plain caller
        if st.outstanding or st.group is not None:
            self._succeeded(st)
            return
        st.done = True
        parent = st.parent
        if not parent.dead:
            self.caller.resume(parent)

    def _on_timer(self, ev: Any) -> None:
        self.timer_armed = False
        now = self.env.now
        times, out, timeout = self.times, self.out, self.timeout
        # ``now`` may fall a rounding error short of a deadline it was scheduled for.
        horizon = now + 1e-9 * max(1.0, abs(now))
        i = self.head
        while i < len(out) and times[i] + timeout <= horizon:
            child = out[i]
            i += 1
            if child is not None:
                self.head = i
                self._expire(child)
        # Attempts already answered need no timer: skip them now, so the next wake-up is the
        # next deadline that can still fire (about one per timeout period, not one per call).
        n = len(out)
        while i < n and out[i] is None:
            i += 1
        if i >= 4096 and 2 * i >= n:  # cut what is behind
            del out[:i]
            del times[:i]
            self.base += i
            i = 0
            n = len(out)
        self.head = i
        if i < n and not self.timer_armed:
            self.timer_armed = True
            Wake(self.env, max(times[i] + timeout - now, 0.0), self._timer_cb, None)

    def _expire(self, child: Job) -> None:
        if child.call is self:  # a first attempt sent with no call state
            self.out[child.seq - self.base] = None
            if self.bulkhead is not None:
                self.in_flight[child.group] -= 1
            st = self._first_failed(child)
        else:
            st = child.call
            if st.done or not self._release(st, child):
                return
        self.stats["timeouts"] += 1
        if self.breaker is not None:
            self.breaker.record(False)
        st.parent.req.blame(self.link.target.code, -1, C_TIMEOUT)
        if not st.outstanding:
            self._failed(st, TIMEOUT)

    def _on_hedge(self, ev: Any) -> None:
        st, attempt = ev.arg
        if st.done or st.attempts != attempt or not st.outstanding or st.parent.dead:
            return
        # A copy is one more call: it needs a bulkhead slot, and a breaker that is not closed
        # lets through only its one trial.
        if self.breaker is not None and self.breaker.state != CLOSED:
            return
        if self.bulkhead is not None:
            if self._count(st.slot) >= self.bulkhead:
                return
        self.hedges += 1
        self.stats["hedges"] += 1
        self._send(st)

    # -- outcomes -----------------------------------------------------------------------------
    def _succeeded(self, st: CallState) -> None:
        st.done = True
        if st.outstanding:
            for other in list(st.outstanding):  # hedged copies that lost the race
                self._release(st, other)
        if not st.parent.dead:
            self._report(st, OK)

    def _failed(self, st: CallState, status: int) -> None:
        retry = self.retry
        if retry is not None and st.attempts < retry.max_attempts and not st.parent.dead:
            if retry.budget is None or self._settle_tokens() >= 1.0:
                if retry.budget is not None:
                    self.tokens -= 1.0
                self.retries += 1
                self.stats["retries"] += 1
                self.records.retry_at.append(self.env.now)
                Wake(self.env, self._backoff(st.attempts), self._retry_cb, st)
                return
        st.done = True
        if st.parent.dead:
            return
        if self.fallback is not None:
            self.stats["fallbacks"] += 1
            st.parent.req.degraded = True
            delay = self.fallback()
            if self.records.call_log is not None:  # tracing: the fallback's own span
                now = self.env.now
                self.link.marker(st.parent, now, now + delay, OK, 0, st.attempts, CALL_FALLBACK)
            Wake(self.env, delay, self._fallback_done, st)
            return
        self._report(st, status)

    def _backoff(self, attempts: int) -> float:
        """Wait before retry number ``attempts`` (1 = the first retry), with jitter."""
        r = self.retry
        base = min(r.max, r.backoff * r.multiplier ** (attempts - 1))
        if r.jitter == "full":
            return self.jitter() * base
        if r.jitter == "equal":
            return base / 2 + self.jitter() * base / 2
        return base

    def _on_retry(self, ev: Any) -> None:
        st: CallState = ev.arg
        if not st.parent.dead:
            self._try(st)

    def _fallback_done(self, ev: Any) -> None:
        st: CallState = ev.arg
        if not st.parent.dead:
            self._report(st, OK)

    def _report(self, st: CallState, status: int) -> None:
        if st.group is not None:
            st.group.owner.member_done(st, status)
        elif status == OK:
            self.caller.resume(st.parent)
        else:
            self.caller.abort(st.parent, status)


def degraded_status(job: Job, status: int) -> int:
    """The final status a client records: ok becomes degraded when a fallback answered."""
    return DEGRADED if status == OK and job.req.degraded else status
