"""How long a run lasts and what it leaves out: ``warmup`` (a duration or ``auto``) and
``duration`` (a duration, or a precision to reach: ``{until_precision: 3%, max: 10h}``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, field_validator, model_validator

from .distributions import PosDuration
from .model_base import Strict
from .units import parse_duration, parse_fraction

# Figures a run can stop on: the latency mean or a percentile (ok requests), throughput, error rate.
STOP_METRICS = ("latency.mean", "latency.p50", "latency.p90", "latency.p95", "latency.p99",
                "latency.p999", "throughput", "error_rate")
MIN_CHECKS_APART = 1e-3              # seconds; checks closer than this would stall the run


def _warmup(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError(f"expected a duration ≥ 0 or 'auto', got {value!r}")
    return seconds


Warmup = Annotated[float | Literal["auto"], BeforeValidator(_warmup)]


class UntilPrecision(Strict):
    """Run until the ``confidence`` interval of ``metric`` (batch means on the measured part)
    has a half-width ≤ ``until_precision`` of its value, checked every ``check_every``
    simulated seconds; never longer than ``max`` (bounded like every duration, and by the work
    budget of :mod:`simsys.budget`, which counts the run as lasting ``max``)."""

    until_precision: Annotated[float, BeforeValidator(parse_fraction)]
    confidence: Annotated[float, BeforeValidator(parse_fraction)] = 0.95
    metric: str = "latency.mean"
    max: PosDuration = Field(3600.0)
    check_every: PosDuration = 10.0

    @field_validator("until_precision")
    @classmethod
    def _precision(cls, v: float) -> float:
        if not 1e-4 <= v <= 0.5:
            raise ValueError(f"expected a relative precision between 0.01% and 50%, got {v:g}")
        return v

    @field_validator("confidence")
    @classmethod
    def _confidence(cls, v: float) -> float:
        if not 0.5 <= v <= 0.999:
            raise ValueError(f"expected a confidence between 50% and 99.9%, got {v:g}")
        return v

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        if v not in STOP_METRICS:
            raise ValueError(f"expected one of {', '.join(STOP_METRICS)}, got {v!r}")
        return v

    @model_validator(mode="after")
    def _checks(self) -> UntilPrecision:
        if not MIN_CHECKS_APART <= self.check_every <= self.max:
            raise ValueError(f"expected check_every between 1ms and max ({self.max:g}s), "
                             f"got {self.check_every:g}s")
        return self


def _duration_kind(value: Any) -> str:
    return "stop_rule" if isinstance(value, dict | UntilPrecision) else "time"


RunLength = Annotated[
    Annotated[PosDuration, Tag("time")] | Annotated[UntilPrecision, Tag("stop_rule")],
    Discriminator(_duration_kind),
]


def max_duration(duration: float | UntilPrecision) -> float:
    """The longest the run may last (seconds): the duration, or the stop rule's ``max``."""
    return duration.max if isinstance(duration, UntilPrecision) else float(duration)
