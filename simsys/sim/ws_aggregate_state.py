"""The state of the aggregate WebSocket pool (:mod:`.ws_aggregate`): calendars of counts by
step, and each workload's per-replica arrays and calendars."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..spec.distributions import Exponential
from .ws_common import DROP, Group


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
        rc = g.reconnect
        self.n_levels = rc.max_attempts + 1 if rc.max_attempts is not None else rc.levels() + 1
        # attempts by (home replica, level); home ``no_home`` (the last) when they have none
        self.n_homes = R + 1 if sticky else 1
        self.no_home = self.n_homes - 1
        self.attempts = Calendar(self.n_homes * self.n_levels)
        # handshakes done, connection opens, by (replica, level of the attempt)
        self.opening = Calendar(R * self.n_levels)
        self.abandoning = Calendar(R)              # handshakes done for clients gone
        # clients whose connect_timeout fires, by (replica, level)
        self.timing_out = Calendar(R * self.n_levels)
        lifetime = g.lifetime_dist
        self.exponential = isinstance(lifetime, Exponential) and not idles
        self.calendar = lifetime is not None and not self.exponential
        self.p_close = self.p_half = 0.0      # per step, set by the pool
        self.just = np.zeros(R, dtype=np.int64)  # opened during the current step
        self.closing = Calendar(R) if self.calendar else None
        self.idling = Calendar(R) if idles else None
        self.rate = g.w.connect_rate or 0.0

    def level_fails(self, level: int) -> int:
        """Failures so far of attempts at level ``level``."""
        return 0 if level <= DROP else level - 1

    def next_level(self, fails: int) -> int:
        return min(fails + 1, self.n_levels - 1)
