"""Means and confidence intervals for sweep tables and plots (numpy only; scipy if present)."""

from __future__ import annotations

import math

import numpy as np

# Two-sided 95 % Student t quantiles by degrees of freedom, used when scipy is not installed.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120,
        17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000,
        120: 1.980}


def t_quantile(df: int, level: float = 0.95) -> float:
    """Two-sided Student t quantile for ``df`` degrees of freedom.

    >>> round(t_quantile(9), 3)
    2.262
    """
    try:
        from scipy import stats

        return float(stats.t.ppf(0.5 + level / 2, df))
    except ImportError:
        if level != 0.95:
            raise
        for k in sorted(_T95):
            if df <= k:
                return _T95[k]
        return 1.96


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
