"""Theory tests of the simulator core: queues, workers, links and calls against formulas.

Each model is run as 10 or 20 independent replications (seeds 1..n), warm-up dropped, and every
measured quantity must have its theoretical value inside the 99% Student t interval of the
replication means, with that interval's half-width under 5% of the value (tests/stats.py), so a
model that is off by a few percent fails instead of hiding in a wide interval. Run lengths are
sized from the variance per replication (Whitt's asymptotic formula for M/M/1, 40-replication
pilot runs for the others) for an expected half-width of about 3% on the noisiest quantity;
with 10–20 replications the sample sd rarely exceeds its expectation by the 5/3 that would
break the 5% gate (chi-square, p < 0.003). Twenty replications where runs are costly: the
t quantile drops from 3.25 to 2.86, which saves a quarter of the simulated time.

Formulas are computed here, from the parameters written in each scenario, not from simsys:
M/M/1, Erlang C (M/M/c), Erlang B (M/M/c/c), Pollaczek–Khinchine (M/D/1 and M/G/1), Jackson's
product form (an open network of M/M/c nodes), Little's law.
Each test also runs a negative control: a deliberately wrong theory value must be rejected by
the same check, which shows the test has the power to fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st
from stats import (
    assert_all_in_ci,
    assert_ci_within,
    assert_theory_in_ci,
    check_theory,
    replicate,
    sampled,
    t_interval,
)

REPLICATIONS = 10


# -- formulas --------------------------------------------------------------------------------
def erlang_b(c: int, a: float) -> float:
    """Blocking probability of M/M/c/c with offered load ``a = λ/μ`` (stable recursion)."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load ``a = λ/μ < c``."""
    if a >= c:
        raise ValueError(f"M/M/c needs a < c, got a={a}, c={c}")
    b = erlang_b(c, a)
    return c * b / (c - a * (1 - b))


def mg1_wait(lam: float, mean: float, second_moment: float) -> float:
    """Pollaczek–Khinchine mean wait in queue of M/G/1: λ E[S²] / (2 (1 − ρ))."""
    rho = lam * mean
    if rho >= 1:
        raise ValueError(f"M/G/1 needs ρ < 1, got {rho}")
    return lam * second_moment / (2 * (1 - rho))


def test_formulas_against_independent_forms():
    # Erlang B is a truncated Poisson: B = P(N = c) / P(N ≤ c), N ~ Poisson(a).
    assert erlang_b(100, 90.0) == pytest.approx(st.poisson.pmf(100, 90) / st.poisson.cdf(100, 90))
    assert erlang_b(100, 90.0) == pytest.approx(0.02696, abs=5e-6)
    # Erlang C from the M/M/c stationary distribution, summed directly.
    c, a = 4, 3.2
    p = [a**k / math.factorial(k) for k in range(c)]
    tail = a**c / math.factorial(c) / (1 - a / c)
    assert erlang_c(c, a) == pytest.approx(tail / (sum(p) + tail))
    assert erlang_c(1, 0.9) == pytest.approx(0.9)  # M/M/1: P(wait) = ρ
    # P-K with exponential service gives the M/M/1 wait ρ/(μ − λ).
    assert mg1_wait(0.9, 1.0, 2.0) == pytest.approx(0.9 / (1 - 0.9))


# -- the helpers themselves, and negative controls that need no simulation --------------------
def test_t_interval_matches_scipy():
    x = np.array([9.1, 10.4, 10.0, 9.7, 10.9, 10.2, 9.5, 10.6, 9.9, 10.3])
    ci = t_interval(x, 0.99)
    low, high = st.t.interval(0.99, len(x) - 1, loc=x.mean(), scale=st.sem(x))
    assert (ci.low, ci.high) == pytest.approx((low, high))
    assert ci.n == 10 and ci.mean == pytest.approx(x.mean())
    with pytest.raises(ValueError, match="at least 2"):
        t_interval([1.0])
    with pytest.raises(ValueError, match="finite"):
        t_interval([1.0, float("nan")])


def test_check_rejects_wrong_theory_and_wide_intervals():
    rng = np.random.default_rng(2024)
    x = rng.normal(10.0, 0.3, size=10)  # like ten replication means of an M/M/1 sojourn
    assert_theory_in_ci(x, 10.0, name="right")
    with pytest.raises(AssertionError) as err:
        assert_theory_in_ci(x, 10.0 * 1.1, name="M/M/1 sojourn")
    msg = str(err.value)
    assert "M/M/1 sojourn" in msg and "mean 10." in msg and "99% CI [" in msg and "theory 11" in msg
    # Samples too spread to tell: the right value is inside, but the interval is too wide.
    wide = rng.normal(10.0, 3.0, size=10)
    problem = check_theory(wide, 10.0, max_rel_halfwidth=0.05, name="wide")
    assert problem is not None and "half-width" in problem
    assert check_theory(wide, float(wide.mean()), max_rel_halfwidth=None) is None
    with pytest.raises(AssertionError, match="a: .*\n.*b: "):
        assert_all_in_ci({"a": (x, 12.0), "b": (x, 8.0), "c": (x, 10.0)})


# -- M/M/1 --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_mm1_rho_09():
    """M/M/1, λ = 0.9, μ = 1: W = 1/(μ − λ) = 10, Wq = ρ/(μ − λ) = 9, Lq = λ Wq = 8.1, ρ = 0.9.

    W is measured on the requests table; Wq independently from the queue_length timeseries
    through Little's law (Wq = Lq / X, X the measured throughput), not only as W − 1/μ.
    Relaxation time at ρ = 0.9 is ~1/(μ(1 − √ρ)²) ≈ 400 s; warm-up 5000 s. Whitt: T·Var(L̄)
    → 2ρ(1 + ρ)/(1 − ρ)⁴ = 34 200, i.e. a relative sd of 20.6/√T per replication for W (24/√T
    for Lq, from pilots). 20 × 220 000 s gives expected half-widths of 2.8% (W), 3.2% (Lq);
    ~15 s of CPU.
    """
    lam, mu = 0.9, 1.0
    spec = {
        "duration": 225_000, "warmup": 5000, "sample_every": 5,
        "services": {"server": {"workers": 1, "service_time": {"dist": "exponential", "mean": 1 / mu}}},
        "workload": [{"type": "poisson", "rate": lam, "target": "server"}],
    }

    def measure(r):
        s = r.summary()
        lq = sampled(r, "queue_length", "server").mean()
        return {"W": s["latency"]["mean"], "Lq": lq, "Wq_little": lq / s["throughput"],
                "rho": s["services"]["server"]["utilization"],
                "busy": sampled(r, "busy_workers", "server").mean()}

    m = replicate(spec, 20, measure)
    rho = lam / mu
    assert_all_in_ci({
        "M/M/1 mean sojourn W": (m["W"], 1 / (mu - lam)),
        "M/M/1 mean queue length Lq (timeseries)": (m["Lq"], lam * rho / (mu - lam)),
        "M/M/1 mean wait Wq = Lq/X (Little)": (m["Wq_little"], rho / (mu - lam)),
        "M/M/1 mean wait Wq = W - 1/mu": (m["W"] - 1 / mu, rho / (mu - lam)),
        "M/M/1 utilisation (summary)": (m["rho"], rho),
        "M/M/1 utilisation (busy_workers samples)": (m["busy"], rho),
    })
    # Negative control: a sojourn 10% off the truth is rejected by the same check.
    with pytest.raises(AssertionError, match="outside the CI"):
        assert_theory_in_ci(m["W"], 1.1 / (mu - lam), name="wrong M/M/1 sojourn")


# -- M/M/c (Erlang C) ----------------------------------------------------------------------------
def test_mmc_erlang_c():
    """M/M/4, λ = 3.2, μ = 1 (ρ = 0.8): P(wait) = C(4, 3.2) ≈ 0.5964, Wq = C/(cμ − λ) ≈ 0.7455.

    P(wait) estimator: an arrival waits iff it finds all c workers busy, and Poisson arrivals
    see time averages (PASTA), so P(wait) is the long-run fraction of time with c busy workers.
    The busy_workers timeseries samples the state at fixed times, which estimates that fraction
    without bias in steady state; it needs no service times and no distributional assumption
    about the wait. Wq is measured twice: by Little's law on queue_length (Lq / X) and as
    W − 1/μ from the requests table. Relative sd per replication (pilots): 2.1/√T (P(wait)),
    8.5/√T (Lq), 3.7/√T (W); 20 × 35 000 s gives expected half-widths of 0.7%, 2.9%, 1.3%;
    ~8 s of CPU.
    """
    c, lam, mu = 4, 3.2, 1.0
    a = lam / mu
    spec = {
        "duration": 36_000, "warmup": 1000, "sample_every": 2,
        "services": {"server": {"workers": c, "service_time": {"dist": "exponential", "mean": 1 / mu}}},
        "workload": [{"type": "poisson", "rate": lam, "target": "server"}],
    }

    def measure(r):
        s = r.summary()
        busy = sampled(r, "busy_workers", "server")
        lq = sampled(r, "queue_length", "server").mean()
        return {"p_wait": (busy >= c).mean(), "Lq": lq, "Wq_little": lq / s["throughput"],
                "W": s["latency"]["mean"], "rho": s["services"]["server"]["utilization"]}

    m = replicate(spec, 20, measure)
    p_wait = erlang_c(c, a)
    wq = p_wait / (c * mu - lam)
    assert_all_in_ci({
        "M/M/4 P(wait) = fraction of time all busy (PASTA)": (m["p_wait"], p_wait),
        "M/M/4 mean queue length Lq (timeseries)": (m["Lq"], lam * wq),
        "M/M/4 mean wait Wq = Lq/X (Little)": (m["Wq_little"], wq),
        "M/M/4 mean sojourn W": (m["W"], wq + 1 / mu),
        "M/M/4 utilisation": (m["rho"], a / c),
    })
    # Negative control: ignoring the extra servers (M/M/1 at the same ρ: P(wait) = ρ = 0.8).
    with pytest.raises(AssertionError, match="outside the CI"):
        assert_theory_in_ci(m["p_wait"], a / c, name="P(wait) as if M/M/1")


# -- M/M/c/c (Erlang B) --------------------------------------------------------------------------
@pytest.mark.slow
def test_erlang_b_blocking():
    """M/M/100/100 (queue: 0), A = λ/μ = 90: blocking B(100, 90) ≈ 0.02696 = rejected / total.

    Blocking comes in bursts (while the system is full), so counts are far from binomial: the
    relative sd per replication is ~2.3/√T (pilots), about 20 times the binomial one. 20 × 2500 s
    (225 000 arrivals each) gives an expected half-width of 2.9% of B; ~15 s of CPU. The carried
    load gives a second check: utilisation = A (1 − B) / c.
    """
    c, lam, mu = 100, 90.0, 1.0
    a = lam / mu
    spec = {
        "duration": 2520, "warmup": 20, "sample_every": 10,
        "services": {"server": {"workers": c, "queue": 0,
                                "service_time": {"dist": "exponential", "mean": 1 / mu}}},
        "workload": [{"type": "poisson", "rate": lam, "target": "server"}],
    }

    def measure(r):
        s = r.summary()
        return {"blocking": s["requests"]["rejected"] / s["requests"]["total"],
                "rho": s["services"]["server"]["utilization"],
                "W": s["latency"]["mean"]}

    m = replicate(spec, 20, measure)
    b = erlang_b(c, a)
    assert_all_in_ci({
        "Erlang B blocking (rejected/total)": (m["blocking"], b),
        "M/M/100/100 utilisation A(1-B)/c": (m["rho"], a * (1 - b) / c),
        "M/M/100/100 mean latency of admitted (no wait)": (m["W"], 1 / mu),
    })
    # Negative control: the blocking of a system one worker smaller, B(99, 90) ≈ 0.0308
    # (14% more), is rejected.
    with pytest.raises(AssertionError, match="outside the CI"):
        assert_theory_in_ci(m["blocking"], erlang_b(c - 1, a), name="Erlang B with c - 1")


# -- M/D/1 (Pollaczek–Khinchine) -----------------------------------------------------------------
def test_md1_pollaczek_khinchine():
    """M/D/1, λ = 0.7, S = 1 s: Wq = λ S² / (2 (1 − ρ)) = 7/6 s, W = Wq + 1, Lq = λ Wq.

    With a constant service time every request's wait is exactly its latency − S, so the wait is
    measured request by request; Lq comes from the timeseries. Relative sd per replication
    (pilots) 6.7/√T (Wq), 7.5/√T (Lq): 10 × 100 000 s gives expected half-widths of 2.2% and
    2.4%; ~3.5 s of CPU.
    """
    lam, s = 0.7, 1.0
    spec = {
        "duration": 101_000, "warmup": 1000, "sample_every": 2,
        "services": {"server": {"service_time": {"dist": "constant", "value": s}}},
        "workload": [{"type": "poisson", "rate": lam, "target": "server"}],
    }

    def measure(r):
        ok = r.requests[(r.requests["start"] >= r.warmup) & (r.requests["status"] == "ok")]
        return {"Wq": (ok["latency"] - s).mean(), "min_latency": ok["latency"].min(),
                "W": r.summary()["latency"]["mean"],
                "Lq": sampled(r, "queue_length", "server").mean()}

    m = replicate(spec, REPLICATIONS, measure)
    assert m["min_latency"].min() == pytest.approx(s)  # never faster than the constant service
    wq = mg1_wait(lam, s, s * s)
    assert_all_in_ci({
        "M/D/1 mean wait Wq (latency - S)": (m["Wq"], wq),
        "M/D/1 mean sojourn W": (m["W"], wq + s),
        "M/D/1 mean queue length Lq (timeseries)": (m["Lq"], lam * wq),
    })
    # Negative control: the M/M/1 wait at the same load (P-K with E[S²] = 2 S²) is twice as
    # long and must be rejected: the test tells constant service from exponential.
    with pytest.raises(AssertionError, match="outside the CI"):
        assert_theory_in_ci(m["Wq"], mg1_wait(lam, s, 2 * s * s), name="M/M/1 wait for M/D/1")


# -- a synchronous call chain ----------------------------------------------------------------------
def test_call_chain_sum_of_parts():
    """gateway → a → b, then gateway → c; latency adds up station by station.

    gateway, b and c have 64 workers at a load of ~1 Erlang or less, so nobody waits there and
    each sojourn is the service time. ``a`` has ONE worker, held for its own service time, its
    call to b and both crossings of the a→b link (thread per request): a is an M/G/1 queue
    whose "service" is H = S_a + 2 L_ab + S_b. Its arrivals are Poisson: the gateway's Poisson
    arrivals delayed by i.i.d. S_g + L_ga (M/G/∞ output). So

        E2E = E[S_g] + 2 L_ga + (Wq_a + E[H]) + 2 E[L_gc] + E[S_c],
        Wq_a = λ E[H²] / (2 (1 − λ E[H]))   (Pollaczek–Khinchine, ρ_a = 0.45).

    The client reaches the gateway directly, which holds a worker for the request's whole life,
    so Little's law gives the gateway's mean in_system = X × E2E. 10 × 500 s: half-widths about
    1% (E2E, Little); ~3 s of CPU.
    """
    ms = 1e-3
    lam = 25.0
    sg, sg_sd = 4 * ms, 2 * ms               # gateway: lognormal
    sa = 10 * ms                             # a: exponential, one worker
    sb, sb_sd = 6 * ms, 6 * ms               # b: lognormal
    sc_low, sc_high = 1 * ms, 5 * ms         # c: uniform
    l_ga, l_ab, l_gc = 2 * ms, 1 * ms, 3 * ms  # g→a, a→b constant; g→c exponential (mean)
    spec = {
        "duration": 520, "warmup": 20, "sample_every": 0.1,
        "services": {
            "gateway": {"workers": 64, "service_time": {"dist": "lognormal", "mean": sg, "sd": sg_sd},
                        "calls": ["a", "c"]},
            "a": {"workers": 1, "service_time": {"dist": "exponential", "mean": sa}, "calls": ["b"]},
            "b": {"workers": 64, "service_time": {"dist": "lognormal", "mean": sb, "sd": sb_sd}},
            "c": {"workers": 64, "service_time": {"dist": "uniform", "low": sc_low, "high": sc_high}},
        },
        "links": {
            "gateway->a": {"latency": l_ga},
            "a->b": {"latency": l_ab},
            "gateway->c": {"latency": {"dist": "exponential", "mean": l_gc}},
        },
        "workload": [{"type": "poisson", "rate": lam, "target": "gateway"}],
    }

    def measure(r):
        s = r.summary()
        e2e = s["latency"]["mean"]
        return {"E2E": e2e, "rho_a": s["services"]["a"]["utilization"],
                "little_gateway": sampled(r, "in_system", "gateway").mean() / (s["throughput"] * e2e)}

    m = replicate(spec, REPLICATIONS, measure)
    h_mean = sa + 2 * l_ab + sb
    h_var = sa**2 + sb_sd**2                 # exponential + constant + lognormal, independent
    wq_a = mg1_wait(lam, h_mean, h_var + h_mean**2)
    sc = (sc_low + sc_high) / 2
    e2e = sg + 2 * l_ga + (wq_a + h_mean) + 2 * l_gc + sc
    assert_all_in_ci({
        "chain mean end-to-end latency": (m["E2E"], e2e),
        "chain: a's utilisation = λ E[H] (worker held during its call)": (m["rho_a"], lam * h_mean),
        "chain: gateway in_system / (X × E2E) (Little)": (m["little_gateway"], 1.0),
    })
    # Negative controls: links paid one way only; a's worker released while b answers
    # (a would then be M/M/1 on S_a alone, plus the b leg outside the queue).
    one_way = sg + l_ga + (wq_a + h_mean - l_ab) + l_gc + sc
    released = sg + 2 * l_ga + (mg1_wait(lam, sa, 2 * sa**2) + h_mean) + 2 * l_gc + sc
    for wrong, name in ((one_way, "links paid one way"), (released, "worker released in calls")):
        with pytest.raises(AssertionError, match="outside the CI"):
            assert_theory_in_ci(m["E2E"], wrong, name=name)


# -- an open Jackson network ------------------------------------------------------------------------
def mmc_p(c: int, a: float, n: int) -> float:
    """Stationary P(N = n) of M/M/c with offered load ``a = λ/μ < c``."""
    p0 = 1.0 / (sum(a**k / math.factorial(k) for k in range(c))
                + a**c / (math.factorial(c) * (1 - a / c)))
    if n < c:
        return p0 * a**n / math.factorial(n)
    return p0 * a**c / math.factorial(c) * (a / c) ** (n - c)


def test_jackson_network_product_form():
    """A feed-forward Jackson network: Poisson arrivals (λ = 100/s) visit A (M/M/2), then B
    with probability 0.6 (M/M/1), then C (M/M/3), each at utilisation 0.6–0.7. The router holding each request has 1000
    workers and no work, and the links cost nothing, so a request leaving A joins B or C at
    once: each node is M/M/c with its own arrival rate, and the joint distribution of the
    numbers present is the product of the marginals (Jackson's theorem), e.g.
    P(N_A ≤ 1, N_C ≤ 2) = P(N_A ≤ 1) · P(N_C ≤ 2). End to end, E2E = W_A + 0.6 W_B + W_C.
    """
    lam, p_b = 100.0, 0.6
    nodes = {"A": (2, 0.014, lam), "B": (1, 0.010, lam * p_b), "C": (3, 0.020, lam)}
    spec = {
        "duration": 620, "warmup": 20, "sample_every": 0.05,
        "services": {
            "router": {"workers": 1000, "calls": ["A", {"service": "B", "probability": p_b}, "C"]},
            **{n: {"workers": c, "service_time": {"dist": "exponential", "mean": s}}
               for n, (c, s, _) in nodes.items()},
        },
        "workload": [{"type": "poisson", "rate": lam, "target": "router"}],
    }

    def wait(c, s, rate):  # M/M/c sojourn: Erlang C wait + service
        a = rate * s
        return erlang_c(c, a) * s / (c - a) + s

    def measure(r):
        n = {k: sampled(r, "in_system", k) for k in nodes}
        return {"E2E": r.summary()["latency"]["mean"],
                "P(A≤1)": np.mean(n["A"] <= 1), "P(C≤2)": np.mean(n["C"] <= 2),
                "P(A≤1, C≤2)": np.mean((n["A"] <= 1) & (n["C"] <= 2)),
                **{f"L_{k}": n[k].mean() for k in nodes}}

    m = replicate(spec, REPLICATIONS, measure)
    w = {k: wait(*v) for k, v in nodes.items()}
    pa = mmc_p(2, lam * 0.014, 0) + mmc_p(2, lam * 0.014, 1)
    pc = sum(mmc_p(3, lam * 0.020, k) for k in range(3))
    assert_all_in_ci({
        "Jackson E2E = W_A + 0.6 W_B + W_C": (m["E2E"], w["A"] + p_b * w["B"] + w["C"]),
        **{f"Jackson L_{k} = λ_{k} W_{k}": (m[f"L_{k}"], v[2] * w[k]) for k, v in nodes.items()},
        "Jackson P(N_A ≤ 1)": (m["P(A≤1)"], pa),
        "Jackson P(N_C ≤ 2)": (m["P(C≤2)"], pc),
        "Jackson P(N_A ≤ 1, N_C ≤ 2) (product form)": (m["P(A≤1, C≤2)"], pa * pc),
    })
    # Negative control: each node as one pooled server of c× the speed (M/M/1 with cμ).
    pooled = sum(q / (c / s - v) for (c, s, v), q in zip(nodes.values(), (1, p_b, 1), strict=True))
    with pytest.raises(AssertionError, match="outside the CI"):
        assert_theory_in_ci(m["E2E"], pooled, name="pooled servers")


# -- Little's law on the timeseries ---------------------------------------------------------------
def test_littles_law_on_timeseries():
    """Time-average of in_system (sampled, summed over replicas) = throughput × mean latency.

    An M/G/2 × 2 replicas system (round robin, lognormal service with sd twice its mean,
    ρ = 0.7) with no links: a request is at the service for exactly its latency, so L = X W
    whatever the distributions.

    Two forms. The sample-path form is exact for any window [t0, t1]: ∫ N(t) dt equals the sum
    over requests of the time each spent inside the window. Taking t1 200 s before the end
    (so every request overlapping the window has finished and is in the table), the ratio of
    the sampled mean in_system to that sum must be 1 up to sampling noise, checked with the
    usual 99% CI. The summary form L / (X W) also carries the edge terms of a finite window
    (requests in the system at warm-up or at the end count in L but not in X W), a bias of
    order E[W²] / (E[W] T) ≈ 4·10⁻⁴ here, larger than its own CI half-width (~4·10⁻⁴), so it
    is checked as an equivalence: its whole 99% CI must lie within 1 ± 1%. ~4 s of CPU.
    """
    lam = 2.8
    spec = {
        "duration": 20_500, "warmup": 500, "sample_every": 0.5,
        "services": {"web": {"replicas": 2, "workers": 2, "balancer": "round_robin",
                             "service_time": {"dist": "lognormal", "mean": 1.0, "sd": 2.0}}},
        "workload": [{"type": "poisson", "rate": lam, "target": "web"}],
    }

    def measure(r):
        s = r.summary()
        q = r.requests
        t0, t1 = r.warmup, r.duration - 200
        # Request ids are given in arrival order and every one that finished is in the table;
        # the first missing id is the oldest request still in flight at the end.
        ids = np.sort(q["id"].to_numpy())
        missing = np.setdiff1d(np.arange(ids[-1] + 1), ids)
        oldest_unfinished = q.loc[q["id"] == missing[0] - 1, "start"].iloc[0] if len(missing) else r.duration
        inside = (np.minimum(q["end"], t1) - np.maximum(q["start"], t0)).clip(lower=0).sum()
        return {
            "sample_path": sampled(r, "in_system", "web", until=t1).mean() / (inside / (t1 - t0)),
            "summary": sampled(r, "in_system", "web").mean() / (s["throughput"] * s["latency"]["mean"]),
            "window_complete": float(oldest_unfinished >= t1),
            "X": s["throughput"],
            "busy": sampled(r, "busy_workers", "web").mean(),
        }

    m = replicate(spec, REPLICATIONS, measure)
    assert m["window_complete"].all(), "a request overlapping the window never finished"
    assert_all_in_ci({
        "Little, sample-path form: mean in_system / mean time-inside": (m["sample_path"], 1.0),
        "throughput X = λ (open, lossless)": (m["X"], lam),
        "Little on the workers: mean busy = λ E[S]": (m["busy"], lam * 1.0),
    })
    ci = assert_ci_within(m["summary"], 0.99, 1.01, name="Little: mean in_system / (X × W)")
    print(f"Little: mean in_system / (X × W): {ci.describe(1.0)}")
    # Negative controls: a 5% error in L is caught by both forms.
    with pytest.raises(AssertionError, match="outside the CI"):
        assert_theory_in_ci(m["sample_path"], 1.05, name="Little off by 5%")
    with pytest.raises(AssertionError, match="not inside"):
        assert_ci_within(m["summary"] * 1.05, 0.99, 1.01, name="Little off by 5%")


# replications against theory (or whole notebooks): `make test-fast` leaves these out
pytestmark = pytest.mark.slow
