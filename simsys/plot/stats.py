"""Means and confidence intervals for sweep tables and plots (numpy only)."""

from __future__ import annotations

import math

import numpy as np


def t_quantile(df: int, level: float = 0.95) -> float:
    """Two-sided Student t quantile for ``df`` degrees of freedom (simsys.analysis's, numpy only).

    >>> round(t_quantile(9), 3)
    2.262
    """
    from ..analysis import t_quantile as quantile

    return float(quantile(level, df))


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)`` of a t confidence interval; NaNs are ignored.

    With one value the interval is ``(mean, nan, nan)``: no spread, no interval.

    >>> m, lo, hi = mean_ci(np.array([1.0, 2.0, 3.0]))
    >>> m, round(lo, 3), round(hi, 3)
    (2.0, -0.484, 4.484)
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan, math.nan
    half = t_quantile(n - 1, level) * float(x.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half
