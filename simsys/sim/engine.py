"""The run loop and its plumbing: random streams, scheduled calls, progress.

Every random stream is a ``numpy.random.Generator`` made from the run's seed and the name of the
component that owns it, so adding a service leaves every other component's numbers unchanged
(common random numbers across compared variants), and the same seed gives the same numbers in
any process on any machine.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy
from simpy.events import NORMAL, Event

from ..spec.distributions import batched


class Streams:
    """Independent random generators keyed by component name, all derived from one seed."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._made: set[str] = set()

    def rng(self, name: str) -> np.random.Generator:
        """The generator of component ``name`` (e.g. ``"service/gateway/time"``).

        Asking twice for the same name is a bug (two components would share numbers), so it
        raises.
        """
        if name in self._made:
            raise RuntimeError(f"random stream {name!r} requested twice")
        self._made.add(name)
        digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
        key = int.from_bytes(digest, "little")
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(key,)))

    def uniform(self, name: str) -> Callable[[], float]:
        """A zero-argument sampler of U(0, 1) from stream ``name``, drawn in batches."""
        rng = self.rng(name)
        return batched(rng.random)


class Wake(Event):
    """A function call scheduled ``delay`` seconds ahead: ``fn(event)`` runs, ``event.arg`` set.

    This is what ``env.timeout(delay, value).callbacks.append(fn)`` does, without the list
    append and the value property on every event; the hot path schedules two or three of these
    per request. The field initialisation mirrors simpy's own ``Timeout.__init__``.
    """

    __slots__ = ("arg",)

    def __init__(self, env: simpy.Environment, delay: float, fn: Callable[[Any], None], arg: Any):
        self.env = env
        self.callbacks = [fn]
        self._value = None
        self._ok = True
        self.arg = arg
        env.schedule(self, NORMAL, delay)


class ZeroTimeLoop:
    """Counts things that happen again at one simulated instant: :meth:`hit` is True once more
    than ``limit`` have, which means a loop that takes no simulated time (the clock could never
    move on), for the caller to stop with the scenario key to change."""

    __slots__ = ("limit", "at", "count")

    def __init__(self, limit: int):
        self.limit = limit
        self.at = -1.0
        self.count = 0

    def hit(self, now: float) -> bool:
        if now != self.at:
            self.at, self.count = now, 0
        self.count += 1
        return self.count > self.limit


def run_until(env: simpy.Environment, until: float, progress: Callable[[float], None] | None,
              every: float = 0.25) -> None:
    """Run ``env`` to simulated time ``until``, calling ``progress(env.now)`` about every
    ``every`` wall-clock seconds.

    The run goes in steps of simulated time sized by measurement: a step that took under a
    tenth of a second doubles, one over three quarters of a second halves. So a bar moves (and a wall
    clock deadline is checked) every fraction of a second whether a run takes a minute or a
    day. Where the steps end does not change results: a step's end is an event of its own, and
    events keep their order. A callback may end the run early by raising
    ``simpy.core.StopSimulation(reason)`` with a reason other than None (a stop rule);
    ``env.now`` is then when it stopped.
    """
    if progress is None:
        env.run(until=until)
        return
    smallest = until * 1e-9
    step = max(until * 1e-4, smallest)
    while env.now < until:
        started = time.perf_counter()
        stopped = env.run(until=min(until, env.now + step))
        progress(env.now)
        if stopped is not None:
            return
        took = time.perf_counter() - started
        if took < every * 0.4:
            step *= 2
        elif took > every * 3:
            step = max(step / 2, smallest)


def events_so_far(env: simpy.Environment) -> int:
    """Events scheduled in ``env`` since it was made (a cheap count for speed figures).

    simpy numbers each scheduled event from an ``itertools.count`` that it keeps private; its
    repr shows the next number without taking one."""
    text = repr(getattr(env, "_eid", "count(0)"))
    try:
        return int(text[text.index("(") + 1:text.index(")")])
    except ValueError:
        return 0
