"""Output analysis of one run: where the warm-up ends, how precise its figures are.

What JMT does for a single long run, with numpy only (no scipy at run time, so that a summary
costs milliseconds and a run's figures do not depend on what else is installed):

- :func:`truncation` — MSER-5 truncation (White 1997): the warm-up cut that minimises the
  standard error of the mean of what is kept, searched in the first half of the series and
  bounded by the series' first crossing of its mean (see there why).
- :func:`batch_means` — non-overlapping batch means with the batch count chosen so the lag-1
  autocorrelation of the batch means is small (20 or 10 batches; the largest count
  whose lag-1 autocorrelation is ≤ :data:`MAX_LAG1`, else 10 batches, flagged ``correlated``).
- :func:`quantile_sections` — intervals for percentiles by sectioning (Asmussen & Glynn 2007,
  III.5a; Nakayama 2014): the quantile of the whole series is the centre, the spread of the
  per-batch quantiles around it gives the half-width. Averaging batch quantiles (plain batch
  means) would be biased for small batches; sectioning is not.
- :func:`ratio_batches` — a ratio of two per-batch sums (error rate, utilisation) by the
  delta method on batch totals.

Everything takes plain numpy arrays, so the simulation's stopping rule and
:meth:`simsys.result.Result.summary` compute the same intervals from the same records;
:mod:`simsys.run_analysis` finds those arrays in a run's records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .stats import t_quantile

BATCH_COUNTS = (20, 10)      # tried largest first; each is the one before merged in pairs
MAX_LAG1 = 0.1               # batch means with a larger lag-1 autocorrelation are correlated
MSER_BATCH = 5                   # MSER-5: the series is first averaged in batches of five
# Observations per batch a percentile needs to be estimated in every batch: p99 → 1000 per batch.
QUANTILE_TAIL_COUNT = 10.0


# -- warm-up ----------------------------------------------------------------------------------
def mser(x: np.ndarray, batch: int = MSER_BATCH) -> tuple[int, bool]:
    """MSER-``batch`` truncation point of a series: ``(observations to drop, at_limit)``.

    The series is averaged in batches of ``batch``; the cut ``d`` (in batches) minimises
    ``Σ_{i>d} (z_i − z̄_d)² / (k − d)²`` over the first half of the batches. ``at_limit`` is
    True when the minimum sits at that half-way limit: the series has not settled (run too
    short, or not stationary), and the cut is only a lower bound.

    >>> x = np.r_[np.linspace(0.0, 1.0, 100), np.ones(900)]
    >>> mser(x)
    (100, False)
    """
    x = np.asarray(x, dtype=float)
    k = len(x) // batch
    if k < 4:
        return 0, False
    z = x[: k * batch].reshape(k, batch).mean(axis=1)
    z = z - z.mean()  # centred, so the sums of squares below do not cancel catastrophically
    s1 = np.cumsum(z[::-1])[::-1]
    s2 = np.cumsum((z * z)[::-1])[::-1]
    kept = np.arange(k, 0, -1, dtype=float)
    stat = (s2 - s1 * s1 / kept) / (kept * kept)
    limit = k // 2
    d = int(np.argmin(stat[: limit + 1]))
    return d * batch, d == limit and limit > 0


def first_crossing(x: np.ndarray, batch: int = MSER_BATCH) -> int:
    """Observations before the batch means of ``x`` first reach the other side of its mean
    (Fishman's means rule with one crossing); ``len(x)`` if they never do."""
    x = np.asarray(x, dtype=float)
    k = len(x) // batch
    if k < 1:
        return len(x)
    z = x[: k * batch].reshape(k, batch).mean(axis=1) - x.mean()
    side = z[0] > 0
    crossed = np.flatnonzero((z <= 0) if side else (z >= 0))
    return int(crossed[0]) * batch if len(crossed) else len(x)


def truncation(x: np.ndarray) -> tuple[int, bool]:
    """The warm-up cut of one series: MSER-5, but never past the first crossing of the mean.

    Plain MSER-5 over-truncates a congested queue: its statistic falls most when a large
    excursion of the early part is cut off, so it cuts just after one and leaves a mean biased
    low (measured: M/M/1 at ρ = 0.9 from empty, 2000 s runs, mean sojourn 8.8 ± 0.6 s against
    10 s). An initial transient ends, at the latest, when the series first reaches its
    long-run level; bounding the cut there keeps what MSER-5 removes of the start and drops
    that selection (10.0 ± 0.7 s on the same runs)."""
    d, at_limit = mser(x)
    return min(d, first_crossing(x)), at_limit


# -- intervals --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Batches:
    """How a series was cut into batches: ``count`` batches of ``size`` observations (the
    earliest ``len(x) - count * size`` left out), the lag-1 autocorrelation of their means,
    and whether it stayed above :data:`MAX_LAG1` even at the smallest count."""

    count: int
    size: int
    lag1: float
    correlated: bool

    def as_dict(self) -> dict[str, Any]:
        return {"batches": self.count, "batch_size": self.size,
                "lag1": None if math.isnan(self.lag1) else round(self.lag1, 4),
                "correlated": self.correlated}


def lag1(z: np.ndarray) -> float:
    """Lag-1 autocorrelation of a series (NaN when it has no spread)."""
    d = z - z.mean()
    den = float(d @ d)
    return float(d[:-1] @ d[1:]) / den if den > 0 else math.nan


def choose_batches(x: np.ndarray, min_size: int = 2) -> Batches | None:
    """The batch count for ``x``: the largest of :data:`BATCH_COUNTS` whose batch means have a
    lag-1 autocorrelation ≤ :data:`MAX_LAG1`, else the smallest (flagged ``correlated``).
    None when even the smallest count leaves batches under ``min_size`` observations."""
    n = len(x)
    last: Batches | None = None
    for k in BATCH_COUNTS:
        m = n // k
        if m < min_size:
            continue
        r = lag1(x[n - k * m:].reshape(k, m).mean(axis=1))
        last = Batches(k, m, r, not r <= MAX_LAG1 and not math.isnan(r))
        if not last.correlated:
            return last
    return last


def batch_view(x: np.ndarray, b: Batches) -> np.ndarray:
    """``x`` as a ``(count, size)`` array of its batches (the earliest remainder left out)."""
    return x[len(x) - b.count * b.size:].reshape(b.count, b.size)


def half_width(z: np.ndarray, centre: float, confidence: float) -> float:
    """t half-width from per-batch estimates ``z`` spread around ``centre``."""
    k = len(z)
    s = math.sqrt(float(((z - centre) ** 2).sum()) / (k - 1))
    return float(t_quantile(confidence, k - 1)) * s / math.sqrt(k)


def batch_means(x: np.ndarray, confidence: float = 0.95,
                b: Batches | None = None) -> tuple[float, float, Batches] | None:
    """``(mean, half_width, batches)`` of the mean of a stationary, correlated series.

    The centre is the mean of the whole series; the half-width comes from the batch means.

    >>> rng = np.random.default_rng(1)
    >>> m, h, b = batch_means(rng.normal(5.0, 1.0, 10_000))
    >>> abs(m - 5.0) < h, b.count in (10, 20)
    (True, True)
    """
    x = np.asarray(x, dtype=float)
    b = b or choose_batches(x)
    if b is None:
        return None
    z = batch_view(x, b).mean(axis=1)
    mean = float(x.mean())
    return mean, half_width(z, float(z.mean()), confidence), b


def quantile_sections(x: np.ndarray, percents: list[float], overall: np.ndarray,
                      b: Batches, confidence: float = 0.95) -> list[float | None]:
    """Half-widths of the percentiles ``percents`` of ``x`` by sectioning.

    ``overall`` holds the percentiles of the whole series (the centres). Each percentile uses
    the batches of ``b`` merged until every batch holds ≥ 10 / (1 − p) observations (at least
    10 batches); None when the series is too short for that.
    """
    plans: dict[tuple[int, int], list[int]] = {}  # percentiles batched alike: one pass
    for i, pct in enumerate(percents):
        need = QUANTILE_TAIL_COUNT / max(1.0 - pct / 100.0, 1e-9)
        bq = b
        while bq.size < need and bq.count // 2 >= min(BATCH_COUNTS):
            bq = Batches(bq.count // 2, bq.size * 2, math.nan, bq.correlated)
        if bq.size >= need:
            plans.setdefault((bq.count, bq.size), []).append(i)
    out: list[float | None] = [None] * len(percents)
    for (count, size), which in plans.items():
        view = x[len(x) - count * size:].reshape(count, size)
        z = np.percentile(view, [percents[i] for i in which], axis=1)
        for row, i in zip(z, which, strict=True):
            out[i] = half_width(row, float(overall[i]), confidence)
    return out


def ratio_batches(num: np.ndarray, den: np.ndarray, confidence: float = 0.95
                  ) -> tuple[float, float, Batches] | None:
    """``(Σnum/Σden, half_width, batches)`` for per-bin totals ``num``/``den`` (e.g. failed
    and all requests per time bin), by the delta method on batch totals."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    total = float(den.sum())
    if total <= 0:
        return None
    ratio = float(num.sum()) / total
    resid = num - ratio * den
    b = choose_batches(resid if resid.any() else num, min_size=1)
    if b is None:
        return None
    bn = batch_view(num, b).sum(axis=1)
    bd = batch_view(den, b).sum(axis=1)
    mean_den = float(bd.mean())
    if mean_den <= 0:
        return None
    r = bn - ratio * bd
    return ratio, half_width(r, 0.0, confidence) / mean_den, b


def interval(centre: float | None, half: float | None, low: float | None = None,
             high: float | None = None) -> list[float] | None:
    """``[low, high]`` JSON-ready, clipped to ``[low, high]`` bounds when given."""
    if centre is None or half is None or math.isnan(half) or math.isnan(centre):
        return None
    lo, hi = centre - half, centre + half
    if low is not None:
        lo = max(lo, low)
    if high is not None:
        hi = min(hi, high)
    return [float(lo), float(hi)]


# -- the figures of a run ---------------------------------------------------------------------
def warmup_cut(start: np.ndarray, latency: np.ndarray, queue_at: np.ndarray,
               queue: np.ndarray, step: float, end: float) -> dict[str, Any]:
    """``warmup: auto``: MSER-5 on the latencies of ok requests in order of arrival
    (``start``, ``latency``) and on the number in system summed over replicas at each sample
    (``queue_at``, ``queue``); the cut is the later of the two, rounded up to a multiple of
    ``step`` (the sampling interval, so the busy-time integrals can be split there) and kept
    below ``end``. Returns ``{"warmup", "latency_cut", "queue_cut", "at_limit"}`` (seconds)."""
    order = np.argsort(start, kind="stable")
    d, lat_limit = truncation(latency[order])
    lat_cut = float(start[order[d]]) if 0 < d < len(order) else 0.0
    dq, q_limit = truncation(queue)
    q_cut = float(queue_at[dq]) if 0 < dq < len(queue_at) else 0.0
    cut = math.ceil(max(lat_cut, q_cut) / step - 1e-9) * step
    if cut >= end:
        cut = max(end - step, 0.0)
    return {"warmup": cut, "latency_cut": lat_cut, "queue_cut": q_cut,
            "at_limit": bool(lat_limit or q_limit)}


def latency_intervals(latency: np.ndarray, percents: dict[str, float], overall: np.ndarray,
                      confidence: float = 0.95) -> dict[str, Any]:
    """Intervals of the mean (batch means) and percentiles (sectioning) of the latencies of ok
    requests in order of completion; ``overall`` holds the percentiles of all of them."""
    out: dict[str, Any] = dict.fromkeys(["mean", *percents])
    bm = batch_means(latency, confidence)
    if bm is None:
        out.update(batches=0, batch_size=0, lag1=None, correlated=False)
        return out
    mean, half, b = bm
    out["mean"] = interval(mean, half, low=0.0)
    halves = quantile_sections(latency, list(percents.values()), overall, b, confidence)
    for (key, _), centre, h in zip(percents.items(), overall, halves, strict=True):
        out[key] = interval(float(centre), h, low=0.0)
    out.update(b.as_dict())
    return out


def rate_bins(start: np.ndarray, ok: np.ndarray, t0: float, t1: float
              ) -> tuple[np.ndarray, np.ndarray, float]:
    """Requests started (all, ok) in each of 20 equal time bins of [t0, t1), and the bin width."""
    n = BATCH_COUNTS[0]
    where = ((start - t0) * (n / (t1 - t0))).astype(np.int64)  # equal bins: no search needed
    np.clip(where, 0, n - 1, out=where)
    every = np.bincount(where, minlength=n)[:n].astype(float)
    good = np.bincount(where[ok], minlength=n)[:n].astype(float)
    return every, good, (t1 - t0) / BATCH_COUNTS[0]


def throughput_batches(good: np.ndarray, width: float, confidence: float = 0.95
                       ) -> tuple[float, float, Batches] | None:
    """Throughput (requests/s) from per-bin ok counts: batch means of the bins' rates."""
    rate = good / width
    return batch_means(rate, confidence, choose_batches(rate, min_size=1))


def rate_intervals(start: np.ndarray, ok: np.ndarray, t0: float, t1: float,
                   confidence: float = 0.95) -> dict[str, Any]:
    """Throughput (ok requests per second) and error rate (not ok / all) intervals from 20 time
    bins of the measured window [t0, t1), merged into batches; requests by start time."""
    out: dict[str, Any] = {"throughput": None, "error_rate": None, "time_batches": None}
    if t1 <= t0 or not len(start):
        return out
    every, good, width = rate_bins(start, ok, t0, t1)
    tp = throughput_batches(good, width, confidence)
    if tp is not None:
        out["throughput"] = interval(tp[0], tp[1], low=0.0)
        out["time_batches"] = tp[2].as_dict()
    er = ratio_batches(every - good, every, confidence)
    if er is not None:
        out["error_rate"] = interval(er[0], er[1], low=0.0, high=1.0)
    return out


def precision_now(metric: str, start: np.ndarray, end: np.ndarray, ok: np.ndarray,
                  t0: float, now: float, confidence: float) -> tuple[float, float, bool] | None:
    """``(estimate, half_width, correlated)`` of a stop metric over the requests started at or
    after ``t0`` (ok ones for latency figures), as the summary will compute it; None while
    there is too little to batch."""
    keep = start >= t0
    if metric.startswith("latency."):
        lat = (end - start)[keep & ok]
        if len(lat) < 2 * BATCH_COUNTS[-1]:
            return None
        if metric == "latency.mean":
            bm = batch_means(lat, confidence)
            return None if bm is None else (bm[0], bm[1], bm[2].correlated)
        pct = 99.9 if metric == "latency.p999" else float(metric[len("latency.p"):])
        b = choose_batches(lat)
        if b is None:
            return None
        centre = np.percentile(lat, pct)
        [h] = quantile_sections(lat, [pct], np.array([centre]), b, confidence)
        return None if h is None else (float(centre), h, b.correlated)
    if now <= t0 or not keep.any():
        return None
    every, good, width = rate_bins(start[keep], ok[keep], t0, now)
    est = (throughput_batches(good, width, confidence) if metric == "throughput"
           else ratio_batches(every - good, every, confidence))
    return None if est is None else (est[0], est[1], est[2].correlated)


def grid_batches(times: np.ndarray, t0: float, t1: float) -> tuple[int, int]:
    """Indices ``(a, b)`` of the sample times that bound the measured window: the first at or
    after ``t0`` and the last at or before ``t1`` (``b - a`` whole sample intervals)."""
    a = int(np.searchsorted(times, t0 - 1e-9, side="left"))
    b = int(np.searchsorted(times, t1 + 1e-9, side="right")) - 1
    return a, max(a, b)


def utilization_interval(busy: np.ndarray, worker: np.ndarray, centre: float,
                         confidence: float = 0.95) -> list[float] | None:
    """Interval of a utilisation from per-sample-interval busy and worker-seconds, centred on
    the exact figure ``centre`` (the ratio estimator's half-width)."""
    est = ratio_batches(busy, worker, confidence)
    if est is None or len(busy) < BATCH_COUNTS[-1]:
        return None
    return interval(centre, est[1], low=0.0, high=1.0)


def little_check(in_system: np.ndarray, sojourn_sum: np.ndarray, step: np.ndarray,
                 confidence: float = 0.95) -> dict[str, Any] | None:
    """Little's law, L = λW, per sample interval of a service: ``in_system`` (the number in
    the service sampled at the start of each interval), ``sojourn_sum`` (the time spent in it
    by the visits that arrived in that interval, seconds) and ``step`` (interval lengths).
    Each side gets a batch-means interval; they agree when the intervals overlap."""
    if len(in_system) < BATCH_COUNTS[-1] or not step.sum() > 0:
        return None
    lw = sojourn_sum / step
    b = choose_batches(in_system - lw, min_size=1)
    if b is None:
        return None
    L = float((in_system * step).sum() / step.sum())
    LW = float(sojourn_sum.sum() / step.sum())
    hl = half_width(batch_view(in_system, b).mean(axis=1),
                    float(batch_view(in_system, b).mean()), confidence)
    hw = half_width(batch_view(lw, b).mean(axis=1), float(batch_view(lw, b).mean()), confidence)
    iv_l, iv_w = interval(L, hl, low=0.0), interval(LW, hw, low=0.0)
    agree = iv_l is None or iv_w is None or (iv_l[0] <= iv_w[1] and iv_w[0] <= iv_l[1])
    return {"L": L, "L_interval": iv_l, "lambda_W": LW, "lambda_W_interval": iv_w,
            "agree": bool(agree)}
