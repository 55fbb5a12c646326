"""Statistics for theory tests: independent replications, t intervals, checks against formulas.

A theory test runs a scenario several times with different seeds, reduces each run to one
number per quantity (a mean over the run after warm-up), and asks two things of those numbers:
that the Student t confidence interval of their mean contains the theoretical value, and that
the interval is narrow (half-width under a few percent of the value), so that a wrong model
cannot pass by being measured too loosely. Ciw's queueing tests work the same way.

Import it from any test module (``tests/`` is on ``sys.path``, see ``conftest.py``)::

    from stats import assert_theory_in_ci, replicate, sampled

    sojourn = replicate(spec, 10, lambda r: r.summary()["latency"]["mean"])
    assert_theory_in_ci(sojourn, 1 / (mu - lam), name="M/M/1 mean sojourn")
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

import simsys

Samples = Iterable[float] | np.ndarray


@dataclass(frozen=True)
class Interval:
    """A two-sided Student t confidence interval for the mean of ``n`` independent samples."""

    mean: float
    low: float
    high: float
    halfwidth: float
    sd: float
    n: int
    conf: float

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    def rel_halfwidth(self, reference: float) -> float:
        """Half-width as a fraction of ``|reference|`` (the theoretical value, usually)."""
        return self.halfwidth / abs(reference) if reference else math.inf

    def describe(self, reference: float | None = None) -> str:
        """``mean 10.03, 99% CI [9.71, 10.35] (±3.2%, n=10)``; percentages of ``reference``."""
        rel = self.rel_halfwidth(self.mean if reference is None else reference)
        return (f"mean {self.mean:.6g}, {self.conf:.0%} CI [{self.low:.6g}, {self.high:.6g}] "
                f"(±{rel:.2%}, n={self.n})")


def replicate(
    spec: Any,
    n: int,
    metric_fn: Callable[[simsys.Result], float | Mapping[str, float]],
    *,
    seeds: Iterable[int] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> np.ndarray | dict[str, np.ndarray]:
    """Run ``spec`` ``n`` times with distinct seeds and reduce each run with ``metric_fn``.

    Parameters
    ----------
    spec
        Anything :func:`simsys.run` accepts (dict, YAML path, Scenario).
    n
        Number of independent replications (one seed each).
    metric_fn
        ``Result -> float`` or ``Result -> {name: float}``; it sees each Result once, so it may
        compute several quantities from one run.
    seeds
        The seeds to use, ``n`` distinct ones; default ``1 .. n``.
    overrides
        Passed to :func:`simsys.run` for every replication.

    Returns
    -------
    An array of ``n`` values, or a dict of such arrays (one per key ``metric_fn`` returned).
    """
    seeds = list(range(1, n + 1) if seeds is None else seeds)
    if len(seeds) != n:
        raise ValueError(f"expected {n} seeds, got {len(seeds)}")
    if len(set(seeds)) != n:
        raise ValueError(f"replications need distinct seeds, got {seeds}")
    values = [metric_fn(simsys.run(spec, seed=seed, overrides=overrides)) for seed in seeds]
    if all(isinstance(v, Mapping) for v in values):
        keys = list(values[0])
        return {k: np.array([float(v[k]) for v in values]) for k in keys}
    return np.array([float(v) for v in values])  # type: ignore[arg-type]


def t_interval(samples: Samples, conf: float = 0.99) -> Interval:
    """The ``conf`` Student t confidence interval for the mean of independent ``samples``."""
    from scipy import stats as st

    x = np.asarray(list(samples) if not isinstance(samples, np.ndarray) else samples, dtype=float)
    if x.ndim != 1 or len(x) < 2:
        raise ValueError(f"a t interval needs at least 2 samples, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"samples must be finite numbers, got {x.tolist()}")
    if not 0 < conf < 1:
        raise ValueError(f"conf must be in (0, 1), got {conf}")
    n = len(x)
    mean = float(x.mean())
    sd = float(x.std(ddof=1))
    half = float(st.t.ppf(0.5 + conf / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean=mean, low=mean - half, high=mean + half, halfwidth=half, sd=sd, n=n,
                    conf=conf)


def check_theory(
    samples: Samples,
    theory: float,
    conf: float = 0.99,
    max_rel_halfwidth: float | None = 0.05,
    name: str = "value",
) -> str | None:
    """``None`` if ``theory`` lies in the t interval and the interval is narrow; else why not."""
    ci = t_interval(samples, conf)
    problems = []
    if theory not in ci:
        problems.append(f"theory {theory:.6g} is outside the CI (sim/theory = "
                        f"{ci.mean / theory if theory else math.nan:.4g})")
    if max_rel_halfwidth is not None:
        if theory == 0:
            raise ValueError(f"{name}: a relative half-width needs a non-zero theory value")
        if ci.rel_halfwidth(theory) > max_rel_halfwidth:
            problems.append(f"CI half-width is {ci.rel_halfwidth(theory):.1%} of theory "
                            f"{theory:.6g}, over the {max_rel_halfwidth:.0%} allowed "
                            "(too few or too short replications to tell)")
    if not problems:
        return None
    return f"{name}: {ci.describe(theory)}; " + "; ".join(problems)


def assert_theory_in_ci(
    samples: Samples,
    theory: float,
    conf: float = 0.99,
    max_rel_halfwidth: float | None = 0.05,
    name: str = "value",
) -> Interval:
    """Fail unless ``theory`` lies in the ``conf`` t interval of ``samples``' mean and that
    interval's half-width is at most ``max_rel_halfwidth`` of ``theory`` (``None``: no limit).

    Returns the interval, for printing. The failure message gives the mean, the interval, its
    relative half-width and the theory value.
    """
    problem = check_theory(samples, theory, conf, max_rel_halfwidth, name)
    if problem:
        raise AssertionError(problem)
    return t_interval(samples, conf)


def assert_rejected(
    samples: Samples,
    wrong: float,
    conf: float = 0.99,
    max_rel_halfwidth: float | None = 0.05,
    name: str = "wrong formula",
) -> Interval:
    """A negative control: fail unless ``wrong`` lies outside the ``conf`` t interval *and*
    that interval is narrow (half-width at most ``max_rel_halfwidth`` of the measured mean).

    ``check_theory(...) is not None`` is not enough: it is also true when the interval is just
    too wide to tell, so a control written that way passes on a vague estimate."""
    ci = t_interval(samples, conf)
    if wrong in ci:
        raise AssertionError(f"{name}: {ci.describe(wrong)}; the wrong value {wrong:.6g} is "
                             "inside the CI: the data does not reject it")
    if max_rel_halfwidth is not None and ci.rel_halfwidth(ci.mean) > max_rel_halfwidth:
        raise AssertionError(f"{name}: CI half-width is {ci.rel_halfwidth(ci.mean):.1%} of the "
                             f"mean, over the {max_rel_halfwidth:.0%} allowed: too vague to "
                             "reject anything")
    return ci


def assert_all_in_ci(
    checks: Mapping[str, tuple[Samples, float]],
    conf: float = 0.99,
    max_rel_halfwidth: float | None = 0.05,
) -> dict[str, Interval]:
    """:func:`assert_theory_in_ci` for several ``{name: (samples, theory)}``, reporting every
    failure at once. Prints one line per quantity (shown by ``pytest -s`` or on failure)."""
    failures = []
    for name, (samples, theory) in checks.items():
        problem = check_theory(samples, theory, conf, max_rel_halfwidth, name)
        if problem:
            failures.append(problem)
        print(f"{name}: {t_interval(samples, conf).describe(theory)}; theory {theory:.6g}")
    if failures:
        raise AssertionError("\n".join(failures))
    return {name: t_interval(samples, conf) for name, (samples, _) in checks.items()}


def assert_ci_within(
    samples: Samples,
    low: float,
    high: float,
    conf: float = 0.99,
    name: str = "value",
) -> Interval:
    """Fail unless the whole ``conf`` t interval of ``samples``' mean lies in ``[low, high]``.

    An equivalence check, for identities that hold only up to a known small bias (edge effects
    of a finite run, say): with long runs the interval shrinks below the bias, so "theory inside
    the interval" would fail a correct model, while "interval inside a tolerance band" does not.
    """
    ci = t_interval(samples, conf)
    if not (low <= ci.low and ci.high <= high):
        mid = (low + high) / 2
        raise AssertionError(f"{name}: {ci.describe(mid)} is not inside the allowed band "
                             f"[{low:.6g}, {high:.6g}]")
    return ci


def sampled(result: simsys.Result, metric: str, service: str, *,
            since: float | None = None, until: float | None = None) -> np.ndarray:
    """A sampled timeseries metric of ``service``, summed over its replicas, one value per
    sample time in ``[since, until)`` (default: from the run's warm-up to its end), in time order.

    Samples taken at fixed times of a stationary process estimate its time average without
    bias, so ``sampled(r, "queue_length", "web").mean()`` estimates the mean queue length.
    """
    ts = result.timeseries
    t0 = result.warmup if since is None else since
    keep = (ts["metric"] == metric) & (ts["service"] == service) & (ts["time"] >= t0)
    if until is not None:
        keep &= ts["time"] < until
    rows = ts[keep]
    if rows.empty:
        raise ValueError(f"no {metric!r} samples for service {service!r} in [{t0:g}s, {until}s)")
    return rows.groupby("time", sort=True)["value"].sum().to_numpy()
