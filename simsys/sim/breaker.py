"""The circuit breaker of a call: counts of outcomes in a rolling window, and the moves between
closed, open and half-open (see :mod:`.patterns`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import simpy

from ..records import (
    Records,
)

CLOSED, HALF_OPEN, OPEN = 0, 1, 2
STATES = ("closed", "half_open", "open")


def first_at_or_after(k: int, width: float) -> float:
    """The least time ``t ≥ 0`` with ``int(t / width) ≥ k`` (k ≥ 1), to the last bit: the
    float quotient is monotone in ``t``, so the answer is within an ulp or two of ``k·width``."""
    t = k * width
    if t / width >= k:
        while True:
            below = math.nextafter(t, -math.inf)
            if below < 0.0 or below / width < k:
                return t
            t = below
    while t / width < k:
        t = math.nextafter(t, math.inf)
    return t


class Breaker:
    """A circuit breaker over a rolling window of ``buckets`` time buckets.

    Closed, and within one bucket, a success only adds a call: the error share can only fall,
    so it can open the breaker only if it brings the window's calls up to ``volume_threshold``.
    The guard therefore counts such successes in ``fast`` while ``now < next_roll`` (the next
    bucket's start, or -inf when not closed) and ``fast + 1 < trigger`` (the calls short of the
    volume); anything else goes to :meth:`record`, which first folds ``fast`` into the current
    bucket. Breaker states and their times are exactly those of recording every answer.
    """

    __slots__ = ("env", "target", "threshold", "volume", "sleep", "width", "calls", "errors",
                 "tick", "cur", "total_calls", "total_errors", "state", "opened_at", "trial_out", "key",
                 "records", "fast", "trigger", "roll_at", "next_roll", "on_move")

    def __init__(self, env: simpy.Environment, spec: Any, key: str, records: Records,
                 buckets: int = 10, target: str = ""):
        self.env = env
        self.target = target      # the service the guarded calls go to
        self.threshold = spec.error_threshold
        self.volume = spec.volume_threshold
        self.sleep = spec.sleep_window
        self.width = spec.rolling_window / buckets
        self.calls = [0] * buckets
        self.errors = [0] * buckets
        self.tick = -1
        self.cur = 0              # the bucket of ``tick``
        self.total_calls = 0
        self.total_errors = 0
        self.state = CLOSED
        self.opened_at = 0.0
        self.trial_out = False
        self.key = key
        self.records = records
        self.fast = 0             # successes not yet in the current bucket
        self.trigger = self.volume  # fast + 1 == trigger: that success reaches the volume
        self.roll_at = -math.inf  # when the bucket after ``tick`` starts
        self.next_roll = -math.inf  # roll_at while closed, else -inf (no fast path)
        self.on_move: Callable[[int], None] | None = None  # told the new state

    def _roll(self, now: float) -> int:
        """Advance the window to ``now``: empty the buckets that fell out; return the current."""
        tick = int(now / self.width)
        n = len(self.calls)
        if tick != self.tick:
            for t in range(max(self.tick + 1, tick - n + 1), tick + 1):
                b = t % n
                self.total_calls -= self.calls[b]
                self.total_errors -= self.errors[b]
                self.calls[b] = 0
                self.errors[b] = 0
            self.tick = tick
            self.cur = tick % n
            self.roll_at = first_at_or_after(tick + 1, self.width)
            if self.state == CLOSED:
                self.next_roll = self.roll_at
        return tick % n

    def allow(self) -> bool:
        """May a call go through now? (Open → half-open after the sleep window: one trial.)"""
        if self.state == CLOSED:
            return True
        now = self.env.now
        if self.state == OPEN and now - self.opened_at >= self.sleep:
            self._move(HALF_OPEN)
            self.trial_out = False
        if self.state == HALF_OPEN and not self.trial_out:
            self.trial_out = True
            return True
        return False

    def record(self, ok: bool) -> None:
        now = self.env.now
        if self.fast:  # successes counted on the fast path: all in the current bucket
            self.calls[self.cur] += self.fast
            self.total_calls += self.fast
            self.fast = 0
        if self.state == HALF_OPEN:
            if ok:
                self.calls = [0] * len(self.calls)
                self.errors = [0] * len(self.errors)
                self.total_calls = self.total_errors = 0
                self.trigger = self.volume
                self._move(CLOSED)
            else:
                self.opened_at = now
                self._move(OPEN)
            return
        if self.state == OPEN:
            return  # answers to calls made before it opened
        b = self._roll(now)
        self.calls[b] += 1
        self.total_calls += 1
        if not ok:
            self.errors[b] += 1
            self.total_errors += 1
        calls, errors = self.total_calls, self.total_errors
        self.trigger = self.volume - calls
        if calls >= self.volume and errors >= self.threshold * calls:
            self.opened_at = now
            self._move(OPEN)

    def _move(self, state: int) -> None:
        self.state = state
        self.next_roll = self.roll_at if state == CLOSED else -math.inf
        if self.on_move is not None:
            self.on_move(state)
        self.records.breakers.append((self.env.now, self.key, STATES[state], self.target))
