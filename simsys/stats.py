"""Statistics over replications: Student t quantiles and confidence intervals.

The one home of the arithmetic that sweeps, comparisons, plots, reports and the single-run
output analysis (:mod:`simsys.analysis`) share, numpy only (no scipy at run time, so a figure
does not depend on what else is installed):

- :func:`t_quantile` — two-sided Student t quantiles (Hill 1970, refined by Newton steps).
- :func:`mean_interval` — mean, standard deviation and t interval of independent values.
- :func:`paired_difference` — the same for ``b − a`` paired by replication (common seeds).
- :func:`precise_enough` — the relative-precision stopping rule of sweeps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = ["Interval", "half_width", "mean_interval", "paired_difference", "precise_enough", "t_quantile"]


@dataclass(frozen=True)
class Interval:
    """A mean and its two-sided Student t confidence interval, in the unit of the values.

    ``n`` counts the finite values used; ``std`` is their sample standard deviation (ddof 1);
    ``half_width`` is ``t(confidence, n−1)·std/√n``. With one value there is a mean but no
    interval (``std``, ``half_width``, ``low``, ``high`` are NaN); with none, everything is NaN.
    """

    n: int
    mean: float
    std: float
    half_width: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def mean_interval(values: Iterable[Any], confidence: float = 0.95) -> Interval:
    """The t interval of the mean of ``values``; ``None`` and NaN are left out.

    >>> i = mean_interval([1.0, 2.0, 3.0])
    >>> i.mean, round(i.low, 3), round(i.high, 3)
    (2.0, -0.484, 4.484)
    """
    x = np.array([math.nan if v is None else v for v in values], dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Interval(1, mean, math.nan, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(half_width(std, n, confidence))
    return Interval(n, mean, std, half, mean - half, mean + half)


def half_width(std: Any, n: Any, confidence: float = 0.95) -> Any:
    """``t(confidence, n−1)·std/√n``: the half-width of the t interval of a mean of ``n`` values
    with sample standard deviation ``std`` (arrays element-wise; NaN where ``n < 2``).

    >>> round(float(half_width(1.0, 10)), 4)
    0.7154
    """
    n = np.asarray(n, dtype=float)
    safe = np.where(n > 0, n, np.nan)
    out = t_quantile(confidence, n - 1) * np.asarray(std, dtype=float) / np.sqrt(safe)
    return float(out) if np.ndim(out) == 0 else out


def paired_difference(a: Mapping[Any, Any], b: Mapping[Any, Any],
                      confidence: float = 0.95) -> Interval:
    """The interval of ``b − a`` over the keys (replications) both have, each pair with the same
    seed: the noise common to both cancels, so it is far narrower than the two intervals.

    >>> paired_difference({0: 1.0, 1: 2.0, 2: 3.0}, {0: 2.0, 1: 3.0, 2: 4.1, 3: 9.0}).n
    3
    """
    common = [k for k in a if k in b]
    return mean_interval([_minus(b[k], a[k]) for k in common], confidence)


def _minus(x: Any, y: Any) -> float:
    return math.nan if x is None or y is None else float(x) - float(y)


def precise_enough(values: Iterable[Any], precision: float, confidence: float = 0.95) -> bool:
    """The precision stopping rule: relative CI half-width of the mean ≤ ``precision``.

    ``values`` are one figure over replications 0…n-1; missing values (failed runs, ``None``)
    are left out. At least two values and a non-zero mean are needed.

    >>> precise_enough([10.0, 10.1, 9.9, 10.0], 0.05)
    True
    >>> precise_enough([1.0, 5.0], 0.05)
    False
    """
    i = mean_interval(values, confidence)
    if i.n < 2 or i.mean == 0.0:
        return False
    return i.half_width / abs(i.mean) <= precision


def t_quantile(confidence: float, df: Any) -> Any:
    """Two-sided Student t quantile: ``P(|T| ≤ q) = confidence`` with ``df`` degrees of freedom.

    Hill's (1970) algorithm 396 (Comm. ACM 13(10)) as the start, then Newton steps on the t
    distribution function (an incomplete beta function by its continued fraction): agrees with
    scipy's ``stdtrit`` to ~1e-12 (a test compares). ``df`` may be an array; ``df < 1`` gives
    NaN.

    >>> round(float(t_quantile(0.95, 9)), 3)
    2.262
    """
    dfa = np.asarray(df, dtype=float)
    if not dfa.ndim:
        return _t_refined(float(confidence), float(dfa))
    return np.vectorize(lambda d: _t_refined(confidence, d), otypes=[float])(dfa)


@lru_cache(maxsize=1024)  # summaries ask for the same few (confidence, df) pairs every run
def _t_refined(confidence: float, n: float) -> float:
    q = _hill(1.0 - confidence, n)
    if math.isnan(q) or n == 1 or n == 2:  # Hill's forms for 1 and 2 are exact
        return q
    tail = (1.0 - confidence) / 2.0  # P(T > q)
    log_norm = math.lgamma((n + 1) / 2) - math.lgamma(n / 2) - 0.5 * math.log(n * math.pi)
    for _ in range(3):
        upper = 0.5 * _betainc(n / 2.0, 0.5, n / (n + q * q))
        density = math.exp(log_norm - (n + 1) / 2.0 * math.log1p(q * q / n))
        step = (upper - tail) / density
        q += step
        if abs(step) <= 1e-14 * q:
            break
    return q


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b) (continued fraction, Lentz's method)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - front * _betacf(b, a, 1.0 - x) / b
    return front * _betacf(a, b, x) / a


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-16:
            break
    return h


def _hill(P: float, n: float) -> float:
    """The t quantile with two-sided tail probability ``P`` and ``n`` degrees of freedom."""
    if not n >= 1:
        return math.nan
    if abs(n - 2) < 1e-12:
        return math.sqrt(2.0 / (P * (2.0 - P)) - 2.0)
    if abs(n - 1) < 1e-12:
        return 1.0 / math.tan(P * math.pi / 2.0)
    a = 1.0 / (n - 0.5)
    b = 48.0 / (a * a)
    c = ((20700.0 * a / b - 98.0) * a - 16.0) * a + 96.36
    d = ((94.5 / (b + c) - 3.0) / b + 1.0) * math.sqrt(a * math.pi / 2.0) * n
    y = (d * P) ** (2.0 / n)
    if y > 0.05 + a:
        x = NormalDist().inv_cdf(0.5 * P)
        y = x * x
        if n < 5:
            c += 0.3 * (n - 4.5) * (x + 0.6)
        c = (((0.05 * d * x - 5.0) * x - 7.0) * x - 2.0) * x + b + c
        y = (((((0.4 * y + 6.3) * y + 36.0) * y + 94.5) / c - y - 3.0) / b + 1.0) * x
        y = math.expm1(a * y * y)
    else:
        y = ((1.0 / (((n + 6.0) / (n * y) - 0.089 * d - 0.822) * (n + 2.0) * 3.0)
              + 0.5 / (n + 4.0)) * y - 1.0) * (n + 1.0) / (n + 2.0) + 1.0 / y
    return math.sqrt(n * y)
