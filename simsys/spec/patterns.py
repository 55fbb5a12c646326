"""Scenario keys for the resilience patterns that decide the monolith-vs-microservices trade-off.

They attach to a call (``calls: [{service: x, timeout: 200ms, retry: {...}}]``), to a service
(defaults for all its outgoing calls, plus ``discipline``, ``shed``, ``autoscale``) or to a
workload (the client's own ``timeout`` and ``retry``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_serializer,
    model_validator,
)

from .distributions import Constant, Distribution, NonNegDuration, PosDuration
from .limits import MAX_ATTEMPTS, MAX_REPLICAS
from .model_base import Strict
from .units import parse_fraction


def _budget(value: object) -> float:
    """A retry budget: a share of requests, ``10%`` or 0.1; may exceed 100% only by mistake."""
    if isinstance(value, str) and value.strip().endswith("%"):
        number = float(value.strip()[:-1]) / 100.0
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ValueError(f"expected a share of requests such as 10% or 0.1, got {value!r}")
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"expected a budget between 0% and 100%, got {value!r}")
    return number


Budget = Annotated[float, BeforeValidator(_budget)]
Percent = Annotated[float, BeforeValidator(parse_fraction)]


class Retry(Strict):
    """Try a failed call again, up to ``max_attempts`` in all, waiting a back-off between tries.

    ``backoff`` is the first wait (seconds), multiplied by ``multiplier`` each time and capped at
    ``max``; ``jitter`` is one of the schemes of AWS's "Exponential Backoff and Jitter" note
    (``full``: U(0, b); ``equal``: b/2 + U(0, b/2); ``none``: b). ``budget`` caps retries as a
    share of first attempts (a token bucket: each call adds ``budget`` tokens, each retry takes
    one; at most 10 tokens are saved up).
    """

    max_attempts: int = Field(3, ge=1, le=MAX_ATTEMPTS)
    backoff: NonNegDuration = 0.0
    multiplier: float = Field(2.0, ge=1.0)
    max: NonNegDuration = 30.0
    jitter: Literal["none", "full", "equal"] = "none"
    budget: Budget | None = None


class CircuitBreaker(Strict):
    """Hystrix-style breaker: over the last ``rolling_window``, with at least ``volume_threshold``
    calls and an error share ≥ ``error_threshold``, it opens and fails calls at once; after
    ``sleep_window`` one trial call goes through (half-open): success closes it."""

    error_threshold: Percent = 0.5
    volume_threshold: int = Field(20, ge=1)
    sleep_window: PosDuration = 5.0
    rolling_window: PosDuration = 10.0


class Bulkhead(Strict):
    """At most ``max_concurrent`` calls outstanding to this dependency per caller replica;
    beyond that, calls fail at once (cause ``bulkhead``) instead of tying up workers."""

    max_concurrent: int = Field(ge=1)


class Hedge(Strict):
    """Send a second copy of the call if no answer came within ``after``; first answer wins."""

    after: PosDuration


class Fallback(Strict):
    """When the call finally fails, answer with a cheaper result after ``service_time``; the
    request completes as ``degraded`` instead of failing."""

    service_time: Distribution = Constant(value=0.0)


def _fallback(value: object) -> object:
    return {} if value is True else value


def _off_or(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # ``false``: this pattern is off here, whatever the service says. Only ``false`` itself:
    # ``timeout: 0`` stays an error, and other values report their own problems.
    return value if value is False else handler(value)


Off = WrapValidator(_off_or)
PATTERN_KEYS = ("timeout", "retry", "circuit_breaker", "bulkhead", "hedge", "fallback")


class CallPolicy(Strict):
    """The patterns one call edge can carry; a service's own values are defaults for its calls.

    A key left out (or ``null``) takes the service's value; ``false`` turns the pattern off for
    this call (``fallback: false`` on the one call that must fail loudly).
    """

    timeout: Annotated[PosDuration | None, Off] = None
    retry: Annotated[Retry | None, Off] = None
    circuit_breaker: Annotated[CircuitBreaker | None, Off] = None
    bulkhead: Annotated[Bulkhead | None, Off] = None
    hedge: Annotated[Hedge | None, Off] = None
    fallback: Annotated[Fallback | None, BeforeValidator(_fallback), Off] = None

    @field_serializer(*PATTERN_KEYS, mode="wrap")
    def _keep_off(self, value: Any, handler: SerializerFunctionWrapHandler) -> Any:
        return False if value is False else handler(value)

    def merged(self, defaults: CallPolicy | None) -> CallPolicy:
        """This policy with unset fields taken from ``defaults``; ``false`` becomes None (off)."""
        fields = {}
        for k in CallPolicy.model_fields:
            value = getattr(self, k)
            if value is None and defaults is not None:
                value = getattr(defaults, k)
            fields[k] = None if value is False else value
        return CallPolicy(**fields)

    @property
    def empty(self) -> bool:
        return all(getattr(self, k) in (None, False) for k in CallPolicy.model_fields)


class Shed(Strict):
    """Load shedding: refuse arrivals while ``queue_length`` requests wait, and drop requests
    that waited longer than ``deadline`` when a worker reaches them (cause ``shed``)."""

    queue_length: int | None = Field(None, ge=0)
    deadline: PosDuration | None = None


class Autoscale(Strict):
    """Reactive autoscaling: every ``interval`` the replica count moves toward
    ``ceil(replicas × utilisation / target_utilization)`` within [min, max]; no change within
    ``cooldown`` of the last; a new replica serves after ``startup``."""

    min: int = Field(1, ge=1, le=MAX_REPLICAS)
    max: int = Field(ge=1, le=MAX_REPLICAS)
    target_utilization: Percent = 0.6
    interval: PosDuration = 15.0
    cooldown: NonNegDuration = 60.0
    startup: NonNegDuration = 30.0

    @model_validator(mode="after")
    def _bounds(self) -> Autoscale:
        if self.max < self.min:
            raise ValueError(f"expected max ≥ min, got min={self.min}, max={self.max}")
        if self.target_utilization <= 0:
            raise ValueError("expected target_utilization > 0")
        return self


class Discovery(Strict):
    """Callers look replicas up in a registry (``lookup`` latency) and cache the answer for
    ``ttl``; a stale cache keeps sending calls to a replica that has died."""

    ttl: NonNegDuration = 30.0
    lookup: Distribution = Constant(value=0.0)
