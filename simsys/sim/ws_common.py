"""What the WebSocket pools share: counters, tallies, groups of clients, the pool base and a
client's connection (see :mod:`.websocket`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import simpy

from ..records import Records
from ..spec.distributions import batched
from ..spec.websocket import HEARTBEAT_BYTES, frame_bytes
from .engine import Streams
from .service import Service
from .visits import Instance

BIN = 0.1               # seconds: resolution of the counters (peak reconnect rate, totals)
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
        return self.w.expected_connections(duration)


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




def nothing(arg: Any) -> None:
    """Work whose completion nobody waits for (a client message handled)."""
