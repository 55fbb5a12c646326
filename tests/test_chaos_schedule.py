"""Chaos Monkey's schedules over long simulated calendars, against models written from the rules.

Workdays (Netflix): each Monday–Friday, each group is killed with probability p = 1/mean at a
uniformly drawn minute of the window, unless fewer than ``min`` workdays have passed since the
group's previous kill; exactly ``min`` workdays later the kill may go ahead only at or after
the previous kill's time of day (ChaosMonkey._workday_kill). The expectation is computed here
two ways from that text — an exact dynamic programme over (workdays since the last kill, its
minute) and a plain Monte-Carlo of the rule — and the simulator's counts and gaps must agree.

Continuous: candidate kills per group form a Poisson process of mean gap MTBF; one sooner than
``min_time_between_failures`` after the group's previous kill is skipped, so kills form a
renewal process with gaps min + Exp(MTBF) (memorylessness), the first at Exp(MTBF). Its count
over T is exact: P(N ≥ k) = P(Gamma(k, MTBF) ≤ T − (k − 1)·min).

No workload and instant recovery: two simulated years cost milliseconds per run.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from stats import assert_all_in_ci, check_theory

import simsys

DAY = 86400.0
GROUPS = 20  # grouping: instance over 20 replicas → 20 groups with their own random streams


# -- the workday model, from the rule text ----------------------------------------------------
def workday_expectation(num_workdays: int, p: float, minutes: int, need: int,
                        first_minute: int = 0) -> tuple[float, float]:
    """Expected (kills, skipped candidates) of one group over ``num_workdays`` workdays.

    Exact dynamic programme. State before a workday: ``free`` (no kill yet, or more than
    ``need`` workdays since the last) or ``blocked[g, m]`` (the last kill was ``g`` ≤ ``need``
    workdays ago at minute ``m`` of the window). On day 0 only minutes ≥ ``first_minute`` are
    still ahead (a calendar starting inside the window); earlier ones are lost, not skipped.
    """
    free = 1.0
    blocked = np.zeros((need + 1, minutes))
    kills = skips = 0.0
    at = np.arange(minutes)
    for day in range(num_workdays):
        lo = first_minute if day == 0 else 0
        new = np.zeros_like(blocked)
        drawn = np.zeros(minutes)
        drawn[lo:] = p / minutes           # P(a candidate at minute m') from the free state
        kills += free * drawn.sum()
        if need == 0:                       # no spacing: every workday is free
            new_free = free
        else:
            new[1] += free * drawn
            new_free = free * (1 - drawn.sum())
        for g in range(1, need + 1):
            row = blocked[g]
            if g < need:                    # too soon: any candidate is skipped
                skips += row.sum() * p
                new[g + 1] += row
            else:                           # exactly `need` workdays: only at or after minute m
                kill_at = np.cumsum(row) * p / minutes
                kills += kill_at.sum()
                skips += (row * p * at / minutes).sum()
                new[1] += kill_at
                new_free += (row * (1 - p * (minutes - at) / minutes)).sum()
        free, blocked = new_free, new
    return kills, skips


def workday_gap_moments(p: float, minutes: int, need: int) -> tuple[float, float]:
    """Stationary mean and standard deviation of the gap between kills, in workdays.

    The minute of successive kills is a Markov chain: after a kill at minute m, the next comes
    exactly ``need`` workdays later with probability q_m = p (minutes − m)/minutes, at a minute
    uniform on [m, minutes); otherwise ``need`` + Geometric(p) workdays later at a uniform minute.
    """
    at = np.arange(minutes)
    q = p * (minutes - at) / minutes
    P = np.outer(1 - q, np.full(minutes, 1 / minutes))
    P += np.triu(np.ones((minutes, minutes))) * (q / (minutes - at))[:, None]
    w, v = np.linalg.eig(P.T)
    pi = np.real(v[:, np.argmin(abs(w - 1))])
    pi /= pi.sum()
    q_bar = float(pi @ q)
    # T = need w.p. q̄, else need + G with G ~ Geometric(p) on {1, 2, ...}
    mean_g, second_g = 1 / p, (2 - p) / p**2
    mean = need + (1 - q_bar) * mean_g
    second = q_bar * need**2 + (1 - q_bar) * (need**2 + 2 * need * mean_g + second_g)
    return mean, math.sqrt(second - mean**2)


def workday_monte_carlo(num_workdays: int, p: float, minutes: int, need: int, groups: int,
                        rng: np.random.Generator) -> np.ndarray:
    """Kills per group, simulated literally from the rule (no simsys)."""
    last_day = np.full(groups, -10**9)
    last_min = np.zeros(groups, dtype=int)
    kills = np.zeros(groups, dtype=int)
    for day in range(num_workdays):
        draw = rng.random(groups) < p
        minute = rng.integers(0, minutes, groups)
        gap = day - last_day
        ok = draw & ((gap > need) | ((gap == need) & (minute >= last_min)) | (need == 0))
        kills += ok
        last_day = np.where(ok, day, last_day)
        last_min = np.where(ok, minute, last_min)
    return kills


def test_workday_model_two_ways():
    rng = np.random.default_rng(2026)
    for p, minutes, need in [(0.5, 360, 1), (1 / 3, 60, 2), (1.0, 30, 1)]:
        exact, _ = workday_expectation(260, p, minutes, need)
        mc = workday_monte_carlo(260, p, minutes, need, 4000, rng)
        se = mc.std(ddof=1) / math.sqrt(len(mc))
        assert abs(mc.mean() - exact) < 4 * se, (p, minutes, need, mc.mean(), exact, se)
        # The renewal rate agrees with the stationary gap: kills ≈ workdays / mean gap.
        mean_gap, _ = workday_gap_moments(p, minutes, need)
        assert exact == pytest.approx(260 / mean_gap, abs=2.0)
    # No minimum spacing: a plain Binomial(workdays, p).
    assert workday_expectation(100, 0.25, 60, 0)[0] == pytest.approx(25.0)


# -- helpers over a run ---------------------------------------------------------------------
def calendar(result: simsys.Result, start: dt.datetime) -> pd.DataFrame:
    """The monkey's journal with each row's wall-clock time and workday number."""
    j = result.chaos.copy()
    j["when"] = [start + dt.timedelta(seconds=float(s)) for s in j["at"]]
    day0 = np.datetime64(start.date())
    dates = np.array([np.datetime64(w.date()) for w in j["when"]], dtype="datetime64[D]")
    j["workday"] = np.busday_count(day0, dates) if len(j) else []
    j["minute"] = [w.hour * 60 + w.minute + w.second / 60 for w in j["when"]]
    return j


def monkey_scenario(monkey: dict, days: float, replicas: int = GROUPS) -> dict:
    return {
        "name": "monkey-calendar",
        "duration": days * DAY,
        "sample_every": days * DAY,
        "services": {"x": {"replicas": replicas}},
        "chaos": {"monkey": {"grouping": "instance", **monkey}},
    }


# -- workdays ------------------------------------------------------------------------------
def test_workday_kills_match_the_model():
    start = dt.datetime(2026, 3, 4, 13, 37)  # a Wednesday, inside the 09:00–15:00 window
    days = 730
    spec = monkey_scenario({"schedule": "workdays", "start_at": start.isoformat()}, days)
    p, minutes, need = 0.5, 360, 1  # Netflix's defaults: every 2 workdays, never within 1
    num_workdays = int(np.busday_count(np.datetime64(start.date()),
                                       np.datetime64((start + dt.timedelta(days=days)).date())))
    first_minute = (13 - 9) * 60 + 37
    kills_theory, skips_theory = workday_expectation(num_workdays, p, minutes, need,
                                                     first_minute)
    gap_mean, gap_sd = workday_gap_moments(p, minutes, need)

    counts, skipped, gap_means, gap_sds = [], [], [], []
    for seed in (1, 2):
        r = simsys.run(spec, seed=seed)
        j = calendar(r, start)
        # Every kill and every skip falls on a workday inside the window.
        assert (np.array([w.weekday() for w in j["when"]]) < 5).all()
        assert j["minute"].between(9 * 60, 15 * 60, inclusive="left").all()
        assert j.loc[j["when"].map(lambda w: w.date()) == start.date(), "minute"].ge(
            13 * 60 + 37).all()
        kills = j[j["outcome"] == "killed"]
        assert len(r.incidents) == len(kills)
        # One candidate per group per workday at most.
        assert not j.duplicated(["group", "workday"]).any()
        for group in sorted(set(j["group"])):
            g = kills[kills["group"] == group]
            counts.append(len(g))
            skipped.append(int(((j["group"] == group) & (j["outcome"] == "skipped")).sum()))
            gaps = np.diff(g["workday"].to_numpy())
            assert gaps.min() >= need
            gap_means.append(gaps.mean())
            gap_sds.append(gaps.std(ddof=1))
    assert len(counts) == 2 * GROUPS
    assert_all_in_ci(
        {
            "kills per group": (counts, kills_theory),
            "skipped candidates per group": (skipped, skips_theory),
            "mean gap (workdays)": (gap_means, gap_mean),
            "sd of gaps (workdays)": (gap_sds, gap_sd),
        },
        max_rel_halfwidth=0.10,
    )
    # Power: the naive "every mean workdays" (no spacing) and "spacing ignores time of day"
    # (a kill only when more than `min` workdays have passed) are both rejected.
    assert check_theory(counts, num_workdays * p) is not None
    assert check_theory(counts, num_workdays / (need + 1 / p)) is not None


def test_workday_spacing_rule_exactly():
    """Replay the rule on the journal: every candidate's outcome follows from the previous kill.

    A kill every workday with a one-hour window makes candidates daily and same-minute ties
    (allowed: exactly one workday apart) frequent enough to be seen.
    """
    start = dt.datetime(2026, 1, 5)
    spec = monkey_scenario(
        {"schedule": "workdays", "start_at": start.isoformat(), "mean_workdays_between_kills": 1,
         "min_workdays_between_kills": 1, "window": {"start_hour": 10, "end_hour": 11}},
        days=365, replicas=4,
    )
    j = calendar(simsys.run(spec, seed=5), start)
    ties = 0
    for _, g in j.groupby("group"):
        assert list(g["workday"]) == list(range(len(g)))  # p = 1: a candidate every workday
        last = None
        for wd, minute, outcome, reason in zip(g["workday"], g["minute"], g["outcome"],
                                               g["reason"], strict=True):
            allowed = last is None or wd - last[0] > 1 or minute >= last[1]
            assert outcome == ("killed" if allowed else "skipped"), (wd, minute, last)
            if not allowed:
                assert reason == "min_workdays_between_kills"
            if allowed and last is not None and minute == last[1]:
                ties += 1
            if allowed:
                last = (wd, minute)
    assert ties > 0


# -- continuous ----------------------------------------------------------------------------
def renewal_count_moments(horizon: float, mtbf: float, min_gap: float) -> tuple[float, float]:
    """Mean and variance of the number of kills in [0, horizon]: first at Exp(mtbf), then
    gaps of min_gap + Exp(mtbf)."""
    most = horizon / mtbf
    k = np.arange(1, int(most + 20 * math.sqrt(most)) + 50)  # P(N ≥ k) ≈ 0 beyond
    k = k[horizon - (k - 1) * min_gap > 0]
    tail = st.gamma.cdf(horizon - (k - 1) * min_gap, a=k, scale=mtbf)  # P(N ≥ k)
    mean = float(tail.sum())
    second = float(((2 * k - 1) * tail).sum())
    return mean, second - mean**2


def test_renewal_count_formula():
    # Without a minimum gap it is Poisson: mean = variance = T / MTBF.
    m, v = renewal_count_moments(1000.0, 10.0, 0.0)
    assert m == pytest.approx(100.0, rel=1e-9) and v == pytest.approx(100.0, rel=1e-6)
    # Large T: the renewal rate is 1 / (min + MTBF).
    m, _ = renewal_count_moments(1e5, 10.0, 5.0)
    assert m == pytest.approx((1e5 + 5.0) / 15.0, rel=1e-3)


@pytest.mark.parametrize("min_gap_hours", [0, 12])
def test_continuous_kills_per_group(min_gap_hours):
    days, mtbf, min_gap = 730, DAY, min_gap_hours * 3600.0
    spec = monkey_scenario(
        {"schedule": "continuous", "mean_time_between_failures": mtbf,
         "min_time_between_failures": min_gap},
        days,
    )
    horizon = days * DAY
    mean, var = renewal_count_moments(horizon, mtbf, min_gap)
    counts, candidates, extra = [], [], []
    for seed in (1, 2):
        r = simsys.run(spec, seed=seed)
        j = r.chaos
        assert len(r.incidents) == (j["outcome"] == "killed").sum()
        for _, g in j.groupby("group"):
            kills = g.loc[g["outcome"] == "killed", "at"].to_numpy()
            skipped = g[g["outcome"] == "skipped"]
            assert (skipped["reason"] == "min_time_between_failures").all()
            counts.append(len(kills))
            candidates.append(len(g))
            gaps = np.diff(kills)
            assert gaps.min() >= min_gap
            extra.append(gaps - min_gap)
    extra_all = np.concatenate(extra)
    assert_all_in_ci(
        {
            "kills per group": (counts, mean),
            "candidates per group (Poisson T/MTBF)": (candidates, horizon / mtbf),
            "gap - min (Exp(MTBF))": ([e.mean() for e in extra], mtbf),
        }
    )
    # Spread: gaps beyond the minimum are exponential, and the counts' variance is the
    # renewal variance (Poisson's when there is no minimum gap).
    assert st.kstest(extra_all / mtbf, "expon").pvalue > 0.001
    s2 = np.var(counts, ddof=1)
    df = len(counts) - 1
    lo, hi = st.chi2.ppf([0.005, 0.995], df) / df
    assert lo <= s2 / var <= hi, (s2, var)
    # Power: ignoring the skips (count = T / MTBF) fails when there is a minimum gap.
    if min_gap:
        assert check_theory(counts, horizon / mtbf) is not None
