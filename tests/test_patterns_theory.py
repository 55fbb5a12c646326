"""Theory tests of the patterns: independent replications, a t interval of the per-run figure,
and the formula inside it (tests/stats.py). Each run is short in simulated seconds but holds
about ten thousand requests; the narrowness of each interval is checked too, so a wrong model
cannot pass by being measured loosely.
"""

from __future__ import annotations

import math
import signal
from typing import Any

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as st
from stats import assert_all_in_ci, assert_rejected, assert_theory_in_ci, replicate, t_interval

import simsys


def poisson(rate: str, target: str = "web") -> dict[str, Any]:
    return {"type": "poisson", "rate": rate, "target": target}


# -- processor sharing ------------------------------------------------------------------------
@pytest.mark.parametrize("service_time, name", [
    ({"dist": "exponential", "mean": "10ms"}, "M/M/1-PS"),
    ("10ms", "M/D/1-PS"),
])
def test_processor_sharing_mean_sojourn_is_insensitive(service_time, name):
    # λ = 50/s, E[S] = 10 ms, ρ = 0.5: the mean sojourn under processor sharing is
    # E[S]/(1 − ρ) = 1/(μ − λ) = 20 ms whatever the service distribution (FIFO M/D/1 would give
    # 15 ms, FIFO M/M/1 also 20 ms: the constant case tells PS from FIFO).
    spec = {"duration": "200s", "warmup": "5s",
            "services": {"web": {"discipline": "ps", "service_time": service_time}},
            "workload": [poisson("50/s")]}
    sojourn = replicate(spec, 10, lambda r: r.summary()["latency"]["mean"])
    ci = assert_theory_in_ci(sojourn, 1 / (100 - 50), name=f"{name} mean sojourn")
    print(f"{name}: {ci.describe(0.02)}; theory 0.02 s")
    # negative controls: FIFO's Pollaczek–Khinchine for the constant case (15 ms), and the
    # service time alone, as if sharing cost nothing, for the exponential one (10 ms)
    wrong = {"M/D/1-PS": 0.010 + 50 * 0.010**2 / (2 * (1 - 0.5)), "M/M/1-PS": 0.010}[name]
    assert_rejected(sojourn, wrong, name=f"{name} with a wrong formula")


def test_processor_sharing_runs_past_large_virtual_times():
    spec = {"duration": "20000s",
            "services": {"web": {"discipline": "ps",
                                 "service_time": {"dist": "exponential", "mean": "1s"}}},
            "workload": [poisson("0.5/s")]}

    def stuck(signum: int, frame: Any) -> None:
        raise TimeoutError("no progress after 3 s of CPU")

    old = signal.signal(signal.SIGPROF, stuck)
    signal.setitimer(signal.ITIMER_PROF, 3.0)   # a sound run takes about 1 s of CPU
    try:
        r = simsys.run(spec, seed=1)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)
    assert len(r.requests) > 9000


# -- fan-out ----------------------------------------------------------------------------------
def test_share_of_slow_fan_out_requests_follows_the_binomial():
    # Four leaves, each 100 ms with probability p = 0.1 and 10 ms otherwise, never queueing.
    # Waiting for all four, a request is slow unless every leaf is fast: 1 − (1 − p)^4. With a
    # quorum of 3 it is slow only when two or more are: P(Binomial(4, p) ≥ 2).
    p, n = 0.1, 4
    leaves = {x: {"workers": 64, "service_time": {"dist": "empirical",
                                                  "values": ["10ms"] * 9 + ["100ms"]}}
              for x in "abcd"}
    spec = {"duration": "400s",
            "services": {"all": {"workers": 64, "calls": [{"parallel": list("abcd")}]},
                         "quorum": {"workers": 64,
                                    "calls": [{"parallel": list("abcd"), "quorum": 3}]},
                         **leaves},
            "workload": [poisson("30/s", "all"), poisson("30/s", "quorum")]}

    def slow_share(r: simsys.Result) -> dict[str, float]:
        df = r.requests
        return {str(k): float(v) for k, v in
                df.groupby("source", observed=True)["latency"].apply(lambda x: (x > 0.055).mean())
                .items()}

    shares = replicate(spec, 6, slow_share)
    assert_all_in_ci({"all of 4 slow share": (shares["poisson0"], 1 - (1 - p) ** n)},
                     max_rel_halfwidth=0.05)
    assert_all_in_ci({"quorum 3 of 4 slow share": (shares["poisson1"], st.binom.sf(1, n, p))},
                     max_rel_halfwidth=0.1)
    # negative controls: slow shares added up (n·p) instead of compounded; a quorum of 3 read
    # as "slow when three are slow" (P(Binomial ≥ 3))
    assert_rejected(shares["poisson0"], n * p, name="n·p")
    assert_rejected(shares["poisson1"], st.binom.sf(2, n, p), max_rel_halfwidth=0.1,
                    name="P(Binomial ≥ 3)")


# -- hedging ----------------------------------------------------------------------------------
def test_hedging_at_the_leaf_p95_cuts_the_fan_out_p99_for_5_percent_more_load():
    # Four leaves with lognormal times (mean 10 ms, sd 20 ms), no queueing; a request waits for
    # all four. Hedged after the leaves' p95 a = F⁻¹(0.95), a leaf call sends a copy with
    # probability S(a) = 5% and lasts T with P(T > t) = S(t) for t < a, S(t)·S(t − a) beyond:
    # the request's p99 solves P(T ≤ t)⁴ = 0.99, against F(t)⁴ = 0.99 without hedging.
    mean, sd = 0.010, 0.020
    sigma = math.sqrt(math.log(1 + (sd / mean) ** 2))
    leaf = st.lognorm(s=sigma, scale=mean * math.exp(-sigma ** 2 / 2))
    after = float(leaf.ppf(0.95))

    def hedged_sf(t: float) -> float:
        return leaf.sf(t) * (leaf.sf(t - after) if t >= after else 1.0)

    q = 0.99 ** (1 / 4)
    p99_plain = float(leaf.ppf(q))
    p99_hedged = optimize.brentq(lambda t: (1 - hedged_sf(t)) - q, after, p99_plain)

    def spec(hedge: bool) -> dict[str, Any]:
        call: dict[str, Any] = {"hedge": {"after": after}} if hedge else {}
        return {"duration": "300s",
                "services": {"web": {"workers": 64, "calls": [
                    {"parallel": [{"service": x, **call} for x in "abcd"]}]},
                    **{x: {"workers": 64, "service_time": {"dist": "lognormal",
                                                           "mean": mean, "sd": sd}}
                       for x in "abcd"}},
                "workload": [poisson("40/s")]}

    def figures(r: simsys.Result) -> dict[str, float]:
        c = r.calls
        return {"p99": r.summary()["latency"]["p99"],
                "extra": float(c["hedges"].sum() / c["calls"].sum())}

    plain = replicate(spec(False), 6, figures)
    hedged = replicate(spec(True), 6, figures)
    cis = assert_all_in_ci({
        "p99 without hedging": (plain["p99"], p99_plain),
        "p99 hedged at the leaf p95": (hedged["p99"], p99_hedged),
        "extra load (hedges per call)": (hedged["extra"], 0.05),
    }, max_rel_halfwidth=0.1)
    # negative control: the extra load counted per request (one of four leaves hedged),
    # 1 − 0.95⁴, instead of per call
    assert_rejected(hedged["extra"], 1 - 0.95**4, max_rel_halfwidth=0.1,
                    name="hedges per request")
    cut = t_interval(plain["p99"] - hedged["p99"])
    print(f"leaf p95 {after * 1e3:.2f} ms; p99 {p99_plain * 1e3:.1f} → {p99_hedged * 1e3:.1f} ms "
          f"(theory); cut {cut.describe()}; extra load "
          f"{cis['extra load (hedges per call)'].describe()}")
    assert cut.low > 0.3 * p99_plain


# -- retries ----------------------------------------------------------------------------------
def retry_spec(budget: str | None = None) -> dict[str, Any]:
    retry: dict[str, Any] = {"max_attempts": 4}
    if budget is not None:
        retry["budget"] = budget
    return {"duration": "60s",
            "services": {"web": {"workers": 64, "calls": [{"service": "db", "retry": retry}]},
                         "db": {"workers": 64}},
            "links": {"web->db": {"loss": 0.2}},
            "workload": [poisson("200/s")]}


def load_figures(r: simsys.Result) -> dict[str, float]:
    c = r.calls.loc["web->db"]
    ok = (r.requests["status"] == "ok").mean()
    return {"amplification": c["attempts"] / c["calls"], "calls": c["calls"],
            "retries": c["retries"], "ok": ok}


def test_retries_amplify_the_load_on_a_failing_dependency_as_the_geometric_sum():
    # A message is lost with probability l = 0.2 each way, so an attempt fails with
    # p = 1 − (1 − l)² = 0.36; with up to n = 4 attempts a call makes 1 + p + p² + p³ =
    # (1 − pⁿ)/(1 − p) of them on average and succeeds with probability 1 − pⁿ.
    p, n = 1 - (1 - 0.2) ** 2, 4
    f = replicate(retry_spec(), 5, load_figures)
    assert_all_in_ci({
        "attempts per call": (f["amplification"], (1 - p ** n) / (1 - p)),
        "success share": (f["ok"], 1 - p ** n),
    }, max_rel_halfwidth=0.02)
    # negative control: the loss counted once per attempt (the request's way only), p = 0.2
    once = 0.2
    assert_rejected(f["amplification"], (1 - once ** n) / (1 - once), max_rel_halfwidth=0.02,
                    name="loss counted one way")
    assert_rejected(f["ok"], 1 - once ** n, max_rel_halfwidth=0.02, name="loss counted one way")


def test_a_retry_budget_caps_the_amplification():
    # Uncapped, retries would be 0.54 per call; a 10% budget allows 0.1 per call plus the 10
    # tokens saved up at the start (less at most about two left unspent at the end).
    f = replicate(retry_spec("10%"), 3, load_figures)
    calls, retries = f["calls"], f["retries"]
    assert ((retries <= 0.1 * calls + 10) & (retries >= 0.1 * calls + 7)).all(), (calls, retries)
    print(f"amplification with a 10% budget: {np.round(f['amplification'], 4).tolist()}")


# replications against theory (or whole notebooks): `make test-fast` leaves these out
pytestmark = pytest.mark.slow
