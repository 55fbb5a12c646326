"""Probability distributions of durations, as scenario files write them.

A distribution is a mapping ``{dist: exponential, mean: 5ms}``; a bare duration (``5ms``) is a
constant. Each knows its theoretical ``mean`` and ``variance`` (seconds, seconds²) so tests and
notebooks can compare the simulation with queueing formulas, and each makes a fast sampler bound
to one ``numpy.random.Generator``.

Samplers draw in batches: one numpy call fills thousands of values, and the simulation pulls them
one by one through a C-level iterator. The order of values from a stream is fixed by the seed, so
batching changes speed, not results.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .limits import MAX_VALUES
from .model_base import number_fields
from .units import parse_duration

BATCH = 4096

def _non_negative(seconds: float) -> float:
    if seconds < 0:
        raise ValueError(f"expected a duration ≥ 0, got {seconds:g}s")
    return seconds


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError(f"expected a duration > 0, got {seconds:g}s")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
NonNegDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_non_negative)]
PosDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_positive)]


def batched(draw: Callable[[int], np.ndarray]) -> Callable[[], float]:
    """Turn ``draw(n) -> array`` into a zero-argument sampler that refills in batches of BATCH."""
    batches = map(lambda _: draw(BATCH).tolist(), itertools.repeat(None))
    return itertools.chain.from_iterable(batches).__next__


class DistBase(BaseModel):
    """What every distribution of a scenario shares: frozen, no unknown keys, numbers bounded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        number_fields(cls)

    @model_validator(mode="after")
    def _representable(self) -> DistBase:
        """Refuse parameters whose mean cannot be represented or whose draws overflow (a
        lognormal with ``sd: 1e300``, a Pareto tail index of ``1e-300``): the run would finish
        with no completed request and a meaningless utilisation."""
        if getattr(self, "dist", None) == "scaled":
            return self
        try:
            mean, variance = self.mean, self.variance
        except (OverflowError, ZeroDivisionError):
            mean = variance = math.nan
        try:
            draws = self.draw(np.random.default_rng(0), 64)
        except ValueError:  # parameters the distribution's own check refuses, with its message
            return self
        if not math.isfinite(mean):
            raise ValueError(f"these parameters give an infinite or undefined mean ({mean}); "
                             "a service time needs a finite mean")
        if math.isnan(variance) or not np.isfinite(draws).all():
            raise ValueError("these parameters overflow: values drawn from them are not finite "
                             "numbers")
        return self

    @property
    def mean(self) -> float:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    @property
    def variance(self) -> float:  # pragma: no cover
        raise NotImplementedError

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def sampler(self, rng: np.random.Generator) -> Callable[[], float]:
        """A zero-argument callable returning successive samples (seconds) from ``rng``."""
        return batched(lambda n: self.draw(rng, n))

    def scaled(self, factor: float) -> DistBase:
        """The same shape of distribution with every value multiplied by ``factor``."""
        return _Scaled(base=self, factor=factor)


class Constant(DistBase):
    """Always ``value`` seconds."""

    dist: Literal["constant"] = "constant"
    value: NonNegDuration

    @property
    def mean(self) -> float:
        return self.value

    @property
    def variance(self) -> float:
        return 0.0

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value)

    def sampler(self, rng: np.random.Generator) -> Callable[[], float]:
        return itertools.repeat(self.value).__next__


class Exponential(DistBase):
    """Memoryless durations with the given ``mean`` (seconds)."""

    dist: Literal["exponential"] = "exponential"
    mean_: PosDuration = Field(alias="mean")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def mean(self) -> float:
        return self.mean_

    @property
    def variance(self) -> float:
        return self.mean_**2

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.standard_exponential(n) * self.mean_


class Uniform(DistBase):
    """Uniform between ``low`` and ``high`` seconds."""

    dist: Literal["uniform"] = "uniform"
    low: NonNegDuration
    high: NonNegDuration

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"expected high ≥ low, got low={self.low}s, high={self.high}s")
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    @property
    def variance(self) -> float:
        return (self.high - self.low) ** 2 / 12

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)


def _phi(x: float) -> float:
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _Phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


class Normal(DistBase):
    """Normal with ``mean`` and ``sd`` (seconds), truncated at 0 (negative draws are redrawn).

    ``mean`` and ``variance`` report the truncated distribution, which is what the simulation
    samples; they equal the parameters when ``sd`` is small against ``mean``.
    """

    dist: Literal["normal"] = "normal"
    mean_: NonNegDuration = Field(alias="mean")
    sd: NonNegDuration

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def _alpha(self) -> float:
        return -self.mean_ / self.sd

    @property
    def mean(self) -> float:
        if self.sd == 0:
            return self.mean_
        a = self._alpha()
        return self.mean_ + self.sd * _phi(a) / (1 - _Phi(a))

    @property
    def variance(self) -> float:
        if self.sd == 0:
            return 0.0
        a = self._alpha()
        lam = _phi(a) / (1 - _Phi(a))
        return self.sd**2 * (1 + a * lam - lam * lam)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        x = rng.normal(self.mean_, self.sd, n)
        negative = x < 0
        while negative.any():
            x[negative] = rng.normal(self.mean_, self.sd, int(negative.sum()))
            negative = x < 0
        return x


class Lognormal(DistBase):
    """Lognormal whose own ``mean`` and ``sd`` (seconds) are given, not those of its logarithm."""

    dist: Literal["lognormal"] = "lognormal"
    mean_: PosDuration = Field(alias="mean")
    sd: NonNegDuration

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def _log_params(self) -> tuple[float, float]:
        sigma2 = math.log1p((self.sd / self.mean_) ** 2)
        return math.log(self.mean_) - sigma2 / 2, math.sqrt(sigma2)

    @property
    def mean(self) -> float:
        return self.mean_

    @property
    def variance(self) -> float:
        return self.sd**2

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        mu, sigma = self._log_params()
        return rng.lognormal(mu, sigma, n)


class Pareto(DistBase):
    """Pareto (type I): values ≥ ``scale`` seconds, tail index ``shape``; heavy-tailed."""

    dist: Literal["pareto"] = "pareto"
    scale: PosDuration
    shape: float = Field(gt=0)

    @property
    def mean(self) -> float:
        if self.shape <= 1:
            return math.inf
        return self.shape * self.scale / (self.shape - 1)

    @property
    def variance(self) -> float:
        if self.shape <= 2:
            return math.inf
        a = self.shape
        return self.scale**2 * a / ((a - 1) ** 2 * (a - 2))

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return (rng.pareto(self.shape, n) + 1.0) * self.scale


class Empirical(DistBase):
    """Draws uniformly from a list of observed ``values`` (seconds)."""

    dist: Literal["empirical"] = "empirical"
    values: list[NonNegDuration] = Field(min_length=1, max_length=MAX_VALUES)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def variance(self) -> float:
        return float(np.var(self.values))

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(np.asarray(self.values, dtype=float), n)


class _Scaled(DistBase):
    """``base`` with every value multiplied by ``factor`` (used for slowdowns)."""

    dist: Literal["scaled"] = "scaled"
    base: Any
    factor: float

    @property
    def mean(self) -> float:
        return self.base.mean * self.factor

    @property
    def variance(self) -> float:
        return self.base.variance * self.factor**2

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.base.draw(rng, n) * self.factor


DIST_NAMES = ("exponential", "constant", "uniform", "normal", "lognormal", "pareto", "empirical")


def _coerce(value: Any) -> Any:
    """A bare duration is a constant; a mapping without ``dist`` is an error that says so."""
    if isinstance(value, DistBase):
        return value
    if isinstance(value, dict):
        if "dist" not in value:
            raise ValueError(
                f"expected a duration or a mapping with 'dist' (one of {', '.join(DIST_NAMES)})"
            )
        if value["dist"] not in DIST_NAMES:
            raise ValueError(
                f"unknown distribution {value['dist']!r}; expected one of {', '.join(DIST_NAMES)}"
            )
        return value
    return {"dist": "constant", "value": value}


Distribution = Annotated[
    Constant | Exponential | Uniform | Normal | Lognormal | Pareto | Empirical,
    Field(discriminator="dist"),
    BeforeValidator(_coerce),
]


def constant(value: float) -> Constant:
    """A constant duration of ``value`` seconds."""
    return Constant(value=value)
