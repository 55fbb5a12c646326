"""Scenario keys for WebSockets and polling.

A service with ``websocket:`` accepts WebSocket upgrades into a pool of at most
``max_connections`` per replica. ``type: websocket`` workloads open connections to it, either as
open arrivals (``connect_rate``) or as a population of ``clients`` that each keep one open, and
reconnect after drops with the exponential back-off and jitter schemes of AWS's note
"Exponential Backoff and Jitter" (``none``, ``full``, ``equal``). ``type: polling`` workloads get
the same server messages over HTTP polling or long polling, for comparison.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from .distributions import Constant, Distribution, NonNegDuration, PosDuration
from .limits import MAX_ATTEMPTS, MAX_EXACT_CONNECTIONS, MAX_USERS, MAX_WS_CLIENTS
from .model_base import Fraction, Rate, Size, Strict
from .units import parse_rate

NonNegRate = Annotated[float, BeforeValidator(parse_rate), Field(ge=0)]

# RFC 6455 §5.2: 2 bytes, +2 or +8 for the extended payload length, +4 for the client's mask.
HEARTBEAT_BYTES = 2 + 6   # a ping from the server (no payload) and the client's masked pong


def frame_bytes(size: float, masked: bool) -> float:
    """Bytes on the wire of one WebSocket frame carrying ``size`` bytes of payload.

    >>> frame_bytes(512, masked=False), frame_bytes(100, masked=True)
    (516.0, 106.0)
    """
    header = 2 + (0 if size <= 125 else 2 if size <= 65535 else 8) + (4 if masked else 0)
    return float(header + size)


class Reconnect(Strict):
    """Exponential back-off with jitter between a client's connection attempts.

    The wait before the attempt that follows ``k`` failures (``k = 0`` right after a drop) is
    drawn from the capped exponential ``b = min(max, initial × multiplier^k)``: ``none`` waits
    ``b``; ``full`` waits U(0, b); ``equal`` waits b/2 + U(0, b/2). After ``max_attempts``
    attempts in a row without a connection the client gives up (default: never).
    """

    initial: NonNegDuration = 1.0
    max: NonNegDuration = 30.0
    multiplier: float = Field(2.0, ge=1.0)
    jitter: Literal["full", "equal", "none"] = "full"
    max_attempts: int | None = Field(None, ge=1, le=MAX_ATTEMPTS)

    @model_validator(mode="after")
    def _ordered(self) -> Reconnect:
        if self.max < self.initial:
            raise ValueError(f"expected max ≥ initial ({self.initial:g}s), got {self.max:g}s")
        return self

    def cap(self, k: int) -> float:
        """The capped exponential ``min(max, initial × multiplier^k)``, seconds."""
        if self.multiplier == 1.0 or self.initial == 0.0:
            return min(self.max, self.initial)
        if k * math.log(self.multiplier) > math.log(max(self.max, 1e-300) / self.initial) + 1:
            return self.max
        return min(self.max, self.initial * self.multiplier**k)

    def bounds(self, k: int) -> tuple[float, float]:
        """The wait after ``k`` failures is uniform on these bounds (equal for ``none``)."""
        b = self.cap(k)
        if self.jitter == "full":
            return 0.0, b
        if self.jitter == "equal":
            return b / 2, b
        return b, b

    def levels(self) -> int:
        """Failure counts whose waits differ: from this many on, the wait is ``max``'s."""
        k = 0
        while k < 64 and self.cap(k) < self.max:
            k += 1
        return k + 1


class Messages(Strict):
    """Messages on each connection (or each polling client): ``client_rate`` from the client to
    the server and ``server_rate`` from the server to the client, each a Poisson stream per
    connection, of ``size`` bytes of payload."""

    client_rate: NonNegRate = 0.0
    server_rate: NonNegRate = 0.0
    size: Size = 256.0


class WebSocketConfig(Strict):
    """``services.<name>.websocket``: this service accepts WebSocket upgrades.

    Each replica holds at most ``max_connections`` (open or being upgraded); an upgrade beyond
    that is ``blocked``. An upgrade costs ``handshake`` of a worker's time, and each message the
    replica handles (either way) ``message_time``; WebSocket work runs on ``workers`` workers per
    replica (default: the service's ``workers``). ``heartbeat`` is the ping interval (bytes
    only); a connection without a frame for ``idle_timeout`` is closed by the server (heartbeats
    count, so ``heartbeat < idle_timeout`` keeps connections alive). ``sticky`` sends a client
    back to its replica while that replica lives (session affinity). ``representation`` chooses
    one object per connection (``exact``), per-replica counts advanced in steps of ``step``
    (``aggregate``), or the latter above 20 000 expected connections (``auto``);
    ``latency_sample`` is the share of messages whose delivery latency an aggregate run records
    (default: about 200 000 per run).
    """

    max_connections: int = Field(50000, ge=1)
    handshake: Distribution = Constant(value=0.0)
    heartbeat: PosDuration | None = None
    idle_timeout: PosDuration | None = None
    message_time: Distribution = Constant(value=0.0)
    workers: int | None = Field(None, ge=1)
    sticky: bool = False
    representation: Literal["exact", "aggregate", "auto"] = "auto"
    step: PosDuration = 0.01
    latency_sample: Fraction | None = None

    @property
    def idles(self) -> bool:
        """Whether connections can time out idle (heartbeats do not keep them alive)."""
        return self.idle_timeout is not None and (
            self.heartbeat is None or self.heartbeat >= self.idle_timeout
        )


class WebSocketWorkload(Strict):
    """Clients that hold WebSocket connections to ``target``.

    Either open arrivals of new connections at ``connect_rate``, or a population of ``clients``
    that each keep one connection open (first attempts spread uniformly over ``ramp``) and come
    back one ``reconnect`` wait after a connection ends. A connection lasts ``lifetime``
    (default: until the run ends) unless dropped; dropped clients reconnect with back-off. An
    attempt not answered within ``connect_timeout`` is abandoned and retried. The upgrade's HTTP
    headers cost ``http_overhead`` bytes.

    Open arrivals are a loss system unless told otherwise: ``reconnect.max_attempts`` defaults
    to 1 for them, so a connection refused on arrival is lost (``blocked``, Erlang B) and one
    that dropped tries once more; a population keeps trying (no limit) by default.
    """

    type: Literal["websocket"]
    target: str
    name: str | None = None
    connect_rate: Rate | None = None
    clients: int | None = Field(None, ge=1, le=MAX_WS_CLIENTS)
    lifetime: Distribution | None = None
    ramp: NonNegDuration = 0.0
    messages: Messages = Field(default_factory=Messages)
    reconnect: Reconnect = Field(default_factory=Reconnect)
    connect_timeout: PosDuration | None = None
    http_overhead: Size = 800.0

    @model_validator(mode="before")
    @classmethod
    def _open_arrivals_are_lost_when_refused(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("connect_rate") is not None:
            reconnect = data.get("reconnect")
            if reconnect is None:
                data = {**data, "reconnect": {"max_attempts": 1}}
            elif isinstance(reconnect, dict) and "max_attempts" not in reconnect:
                data = {**data, "reconnect": {**reconnect, "max_attempts": 1}}
        return data

    def expected_connections(self, duration: float) -> float:
        """Connections open at once, roughly: the population, or arrivals over a lifetime."""
        if self.clients is not None:
            return float(self.clients)
        mean = self.lifetime.mean if self.lifetime is not None else duration
        return (self.connect_rate or 0.0) * min(mean, duration)

    @model_validator(mode="after")
    def _one_source(self) -> WebSocketWorkload:
        if (self.connect_rate is None) == (self.clients is None):
            raise ValueError(
                "give either connect_rate (open arrivals of connections) or clients (a "
                "population that keeps connections open), not "
                + ("both" if self.clients is not None else "neither")
            )
        return self


class PollingWorkload(Strict):
    """``clients`` that fetch server messages from ``target`` over HTTP instead of a WebSocket.

    Short polling (``long: false``): each client sends a request every ``interval`` (phases
    spread at random); the response carries the messages generated since its last one. Long
    polling (``long: true``): the server holds a request until a message is there or ``hold``
    has passed, and the client asks again as soon as an answer arrives (``interval`` after an
    error). Client messages are sent as HTTP requests of their own. Each request and its response
    carry ``http_overhead`` bytes of headers. Requests go through the service's ordinary
    request path (its ``service_time`` and workers) and are listed in ``Result.requests``.
    """

    type: Literal["polling"]
    target: str
    name: str | None = None
    clients: int = Field(1, ge=1, le=MAX_USERS)
    interval: PosDuration = 5.0
    long: bool = False
    hold: PosDuration = 30.0
    messages: Messages = Field(default_factory=Messages)
    http_overhead: Size = 800.0


def websocket_problems(s: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-field checks of the WebSocket keys, as (field path, message) pairs."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    for i, w in enumerate(s.workload):
        if w.type != "websocket" or w.target not in s.services:
            continue
        if s.services[w.target].websocket is None:
            out.append((
                ("workload", i, "target"),
                f"service {w.target!r} does not accept WebSockets; give it a websocket key "
                f"(services.{w.target}.websocket: {{max_connections: 50000}})",
            ))
    out += _exact_pool_problems(s)
    return out


def _exact_pool_problems(s: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """An exact pool keeps one object per connection: refuse one that would hold millions."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    duration = float(s.max_duration)
    for name, svc in s.services.items():
        cfg = svc.websocket
        workloads = [w for w in s.workload if w.type == "websocket" and w.target == name]
        if cfg is None or not workloads:
            continue
        if representation_of(cfg, workloads, duration, svc.replicas) != "exact":
            continue
        expected = pool_connections(cfg, workloads, duration, svc.replicas)
        if expected > MAX_EXACT_CONNECTIONS:
            out.append((("services", name, "websocket", "representation"),
                        f"an exact pool of about {expected:,.0f} connections (one object each) "
                        f"is more than {MAX_EXACT_CONNECTIONS:,}; use representation: aggregate "
                        "(counts per replica, constant memory)"))
    return out


AUTO_THRESHOLD = 20_000  # expected connections above which `auto` means aggregate


def representation_of(cfg: WebSocketConfig, workloads: list[WebSocketWorkload], duration: float,
                      replicas: int) -> str:
    """``exact`` or ``aggregate``: the pool a service with ``cfg`` gets for ``workloads``
    (``auto`` means aggregate above :data:`AUTO_THRESHOLD` expected connections)."""
    if cfg.representation != "auto":
        return cfg.representation
    expected = pool_connections(cfg, workloads, duration, replicas)
    return "aggregate" if expected > AUTO_THRESHOLD else "exact"


def pool_connections(cfg: WebSocketConfig, workloads: list[WebSocketWorkload], duration: float,
                     replicas: int) -> float:
    """Connections a pool is expected to hold at once: its workloads', at most what its
    ``replicas`` accept."""
    expected = sum(w.expected_connections(duration) for w in workloads)
    return min(expected, cfg.max_connections * replicas)
