"""Scenario keys for failures, recovery, Chaos Monkey, scheduled faults and experiments.

Vocabulary follows the tools users know: Chaos Monkey's workday schedule and grouping, the
blast-radius modes of Chaos Mesh (``one``, ``all``, ``fixed``, ``fixed-percent``,
``random-max-percent``), and Chaos Toolkit's experiment keys (``steady-state-hypothesis``,
``method``, ``rollbacks``, probes with a ``tolerance``).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from .distributions import Constant, Distribution, NonNegDuration, PosDuration
from .model_base import Fraction, Strict
from .units import parse_duration, parse_fraction, parse_size

# Netflix's defaults (Spinnaker's Chaos Monkey config): a kill every 2 workdays on average,
# never two within 1 workday, between 09:00 and 15:00.
NETFLIX_MEAN_WORKDAYS = 2.0
NETFLIX_MIN_WORKDAYS = 1
MONDAY = dt.datetime(2026, 1, 5)


def parse_size_rate(text: object) -> float:
    """Bytes per second from ``1MB/s``, ``512KiB/min`` or a bare number (bytes/s)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    if isinstance(text, str) and "/" in text:
        size, per = text.rsplit("/", 1)
        return parse_size(size) / parse_duration("1" + per.strip())
    raise ValueError(f"expected a rate of bytes such as 1MB/s or 64KiB/min, got {text!r}")


SizeRate = Annotated[float, BeforeValidator(parse_size_rate), Field(gt=0)]


class HealthCheck(Strict):
    """The balancer probes each replica every ``interval``; a probe to a dead replica fails after
    ``timeout``; ``unhealthy_after`` failed probes in a row mark it down."""

    interval: PosDuration = 5.0
    timeout: NonNegDuration = 1.0
    unhealthy_after: int = Field(3, ge=1)


class Backoff(Strict):
    """Crash-loop back-off (as Kubernetes' CrashLoopBackOff): the restart after a streak's
    first failure waits only the restart time; the restart after its k-th repeat failure
    (k = 1, 2, …) waits ``initial × multiplier^(k-1)`` more, capped at ``max``."""

    initial: NonNegDuration = 10.0
    multiplier: float = Field(2.0, ge=1.0)
    max: NonNegDuration = 300.0


class Recovery(Strict):
    """How a failed replica comes back: detected, then restarted, then it rejoins empty.

    Detection is either a fixed delay (``detection``) or health checks (``health_check``).
    Crash-loop handling is opt-in: with ``backoff`` (or ``max_restarts``, which implies the
    default back-off) a replica that fails again within ``reset_after`` of its last recovery
    continues a streak and waits longer before each restart; a failure later than that starts
    a new streak. A streak gets at most ``max_restarts`` restarts, its first one included: the
    failure after the last of them leaves the replica down for the rest of the run (its
    incident's ``recovered_at`` stays NaN; ``max_restarts: 0`` never restarts).
    """

    detection: NonNegDuration | None = None
    health_check: HealthCheck | None = None
    restart: Distribution = Constant(value=0.0)
    max_restarts: int | None = Field(None, ge=0)
    backoff: Backoff | None = None
    reset_after: PosDuration = 600.0

    @model_validator(mode="after")
    def _one_detector(self) -> Recovery:
        if self.detection is not None and self.health_check is not None:
            raise ValueError("give either detection or health_check, not both")
        return self

    @property
    def crash_loop_backoff(self) -> Backoff | None:
        """The back-off in force, or None when restarts are immediate."""
        if self.backoff is None and self.max_restarts is not None:
            return Backoff()
        return self.backoff


class Window(Strict):
    """Hours of a workday (simulated calendar) during which Chaos Monkey may kill."""

    start_hour: int = Field(9, ge=0, le=23)
    end_hour: int = Field(15, ge=1, le=24)

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end_hour <= self.start_hour:
            raise ValueError(
                f"expected end_hour > start_hour, got {self.start_hour} to {self.end_hour}"
            )
        return self


Mode = Literal["one", "all", "fixed", "fixed-percent", "random-max-percent"]


class BlastRadius(Strict):
    """How many replicas of a group one kill takes: Chaos Mesh's modes and ``value``."""

    mode: Mode = "one"
    value: float | None = None

    @model_validator(mode="after")
    def _value(self) -> BlastRadius:
        if self.mode == "fixed" and (self.value is None or self.value < 1 or self.value % 1):
            raise ValueError(f"mode fixed needs value: a whole number ≥ 1, got {self.value!r}")
        if self.mode in ("fixed-percent", "random-max-percent") and (
            self.value is None or not 0 < self.value <= 100
        ):
            raise ValueError(f"mode {self.mode} needs value: a percentage in (0, 100], got {self.value!r}")
        return self


class Monkey(BlastRadius):
    """Chaos Monkey. ``schedule: workdays`` is Netflix's model; ``continuous`` a Poisson shortcut.

    Workdays: on each Monday–Friday of the calendar starting at ``start_at`` (simulated time 0),
    each group is killed with probability 1/``mean_workdays_between_kills`` at a uniformly drawn
    minute inside ``window``, never sooner than ``min_workdays_between_kills`` workdays after its
    previous kill. Continuous: candidate kills per group arrive as a Poisson process with mean
    gap ``mean_time_between_failures``; one sooner than ``min_time_between_failures`` after the
    group's previous kill is skipped. Both honour ``max_concurrent`` (replicas down at once across
    targets), ``min_healthy`` (never take a service below that many up replicas) and ``leashed``
    (dry run: journal every kill, make none).
    """

    targets: list[str] | Literal["all"] = "all"
    grouping: Literal["service", "instance"] = "service"
    schedule: Literal["continuous", "workdays"] = "continuous"
    mean_time_between_failures: PosDuration = 3600.0
    min_time_between_failures: NonNegDuration = 0.0
    mean_workdays_between_kills: float = Field(NETFLIX_MEAN_WORKDAYS, ge=1.0)
    min_workdays_between_kills: int = Field(NETFLIX_MIN_WORKDAYS, ge=0)
    start_at: dt.datetime = MONDAY
    window: Window = Field(default_factory=Window)
    max_concurrent: int | None = Field(None, ge=1)
    min_healthy: int = Field(0, ge=0)
    leashed: bool = False


class Chaos(Strict):
    monkey: Monkey | None = None


class Failures(Strict):
    """Independent failures: each replica, while up, fails after an exponential up-time."""

    mean_time_to_failure: PosDuration
    kind: Literal["crash"] = "crash"


class _Fault(Strict):
    name: str | None = None
    at: NonNegDuration = 0.0
    duration: PosDuration | None = None


class CrashFault(_Fault, BlastRadius):
    """Kill replicas of service ``target``; with ``duration``, replicas that restart before it
    ends crash again (a crash loop)."""

    kind: Literal["crash"]
    target: str


class LatencyFault(_Fault):
    """Extra ``delay`` on a service's work or on a link (``target: a->b``)."""

    kind: Literal["latency"]
    target: str
    delay: Distribution


class LossFault(_Fault):
    """Link ``target`` (``a->b``) loses each message with probability ``loss``."""

    kind: Literal["loss"]
    target: str
    loss: Fraction


class PartitionFault(_Fault):
    """Services in different ``groups`` cannot reach each other; such calls fail."""

    kind: Literal["partition"]
    groups: list[list[str]] = Field(min_length=2)


class SlowdownFault(_Fault):
    """Service ``target`` works ``factor`` times slower."""

    kind: Literal["slowdown"]
    target: str
    factor: float = Field(gt=0)


class MemoryLeakFault(_Fault):
    """Each replica of ``target`` leaks ``rate`` bytes per second until its memory.limit kills
    it (``oom``); a restarted replica starts clean but leaks again while the fault lasts. When
    the fault ends its leaked bytes are freed (as when a memory stressor stops); leaks that
    overlap add up."""

    kind: Literal["memory_leak"]
    target: str
    rate: SizeRate


FAULT_KINDS = ("crash", "latency", "loss", "partition", "slowdown", "memory_leak")

Fault = Annotated[
    CrashFault | LatencyFault | LossFault | PartitionFault | SlowdownFault | MemoryLeakFault,
    Field(discriminator="kind"),
]

_METRIC = re.compile(r"^(latency\.(mean|p50|p90|p95|p99|p999|max)|error_rate|throughput|"
                     r"services\.[^.]+\.availability)$")


def _pair(value: Any) -> Any:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"expected a pair [low, high], got {value!r}")
    out = []
    for v in value:
        if isinstance(v, str) and v.strip().endswith("%"):
            out.append(parse_fraction(v))
        else:
            out.append(parse_duration(v))
    if out[0] > out[1]:
        raise ValueError(f"expected low ≤ high, got {value!r}")
    return tuple(out)


class Probe(Strict):
    """A steady-state probe: ``metric`` over the last ``window`` must lie in ``tolerance``."""

    name: str
    metric: str
    window: PosDuration = 30.0
    tolerance: Annotated[tuple[float, float], BeforeValidator(_pair)]

    @model_validator(mode="after")
    def _known(self) -> Probe:
        if not _METRIC.match(self.metric):
            raise ValueError(
                "metric: expected latency.mean|p50|p90|p95|p99|p999|max, error_rate, "
                f"throughput or services.<name>.availability, got {self.metric!r}"
            )
        return self


class Hypothesis(Strict):
    title: str = "steady state"
    probes: list[Probe] = Field(min_length=1)


class Rollback(Strict):
    """Ends method action ``ends`` (its name, or ``all``) at ``at`` (default: when it would)."""

    name: str | None = None
    at: NonNegDuration
    ends: str = "all"


class Experiment(Strict):
    """A steady-state experiment, in simsys's short form or Chaos Toolkit's own
    (:mod:`simsys.spec.chaostoolkit_form`): the hypothesis is checked over the window before
    the method and over the last window of the run. ``start_at`` (UTC) is the wall-clock time
    of simulated time 0 in its journal (default: Chaos Monkey's ``start_at``, else Monday
    2026-01-05 00:00 UTC)."""

    title: str = Field(min_length=1)
    description: str = ""
    start_at: dt.datetime | None = None
    steady_state_hypothesis: Hypothesis = Field(alias="steady-state-hypothesis")
    method: list[Fault] = Field(min_length=1)
    rollbacks: list[Rollback] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _chaostoolkit_form(cls, data: Any) -> Any:
        from .chaostoolkit_form import FormError, is_chaostoolkit, to_short_form

        if not is_chaostoolkit(data):
            return data
        try:
            return to_short_form(data)
        except FormError as exc:
            where = ".".join(str(p) for p in exc.loc)
            raise ValueError(f"{where}: {exc}") from None

    @field_validator("method")
    @classmethod
    def _room_before(cls, method: list[Any], info: ValidationInfo) -> list[Any]:
        # The "before" check looks at the window that ends when the first action starts; with
        # less room than that (an action at 0s, the default) it sees no requests and the
        # experiment would fail every time, saying nothing about the fault.
        hypothesis = info.data.get("steady_state_hypothesis")
        if hypothesis is None:
            return method
        window = max(p.window for p in hypothesis.probes)
        first = min(a.at for a in method)
        if first < window:
            raise ValueError(
                f"the first action starts at {first:g}s, but the steady state is checked over "
                f"the {window:g}s before it (the longest probe window); start it at "
                f"{window:g}s or later"
            )
        return method
