"""Routes: asynchronous routing between services, as Ciw and Jackson networks have it (issue 16).

Three laws, each with a control that the same data must reject:
- an open Jackson network with a feedback route matches product form per node and end to end;
- a tandem with a small second queue and ``blocking: wait`` (Type I blocking) matches Ciw 3.2.7
  run side by side, replication for replication; the same model without blocking does not;
- routing frees the worker: a route behaves as two queues, a call as one held server.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from stats import assert_all_in_ci, assert_theory_in_ci, replicate, t_interval

import simsys

ciw = pytest.importorskip("ciw")


def erlang_c(c: int, a: float) -> float:
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def mmc_sojourn(c: int, mean_service: float, rate: float) -> float:
    a = rate * mean_service
    return erlang_c(c, a) * mean_service / (c - a) + mean_service


def exponential(mean: float) -> dict:
    return {"dist": "exponential", "mean": mean}


# -- Jackson network with feedback -----------------------------------------------------------
def test_open_jackson_network_with_feedback_routes_is_product_form():
    """λ₀ = 1/s into A (M/M/2, utilisation 0.57); after A: to B with 0.6, to C with 0.3, out with 0.1; after B:
    back to A with 0.2 (feedback), out otherwise; after C: out. Traffic equations:
    λ_A = λ₀ + 0.2 λ_B, λ_B = 0.6 λ_A, λ_C = 0.3 λ_A. Each node is M/M/c at its own rate
    (Jackson): per visit W_k = M/M/c sojourn, and end to end E[T] = Σ L_k / λ₀ (Little)."""
    lam0 = 1.0
    lam_a = lam0 / (1 - 0.6 * 0.2)
    nodes = {"A": (2, 1.0, lam_a), "B": (1, 0.8, 0.6 * lam_a), "C": (1, 1.6, 0.3 * lam_a)}
    spec = {
        "duration": 20200, "warmup": 200, "trace": True,
        "services": {
            "A": {"workers": 2, "service_time": exponential(1.0),
                  "routes": [{"service": "B", "probability": 0.6},
                             {"service": "C", "probability": 0.3}]},
            "B": {"service_time": exponential(0.8), "routes": [{"service": "A", "probability": 0.2}]},
            "C": {"service_time": exponential(1.6)},
        },
        "workload": [{"type": "poisson", "rate": lam0, "target": "A"}],
    }

    def measure(r):
        sp = r.spans
        sp = sp[sp["arrived"] >= 200]
        per_visit = sp.assign(w=sp["ended"] - sp["arrived"]).groupby("service", observed=True)["w"]
        return {"E2E": r.summary()["latency"]["mean"],
                **{f"W_{k}": per_visit.mean()[k] for k in nodes}}

    m = replicate(spec, 8, measure)
    w = {k: mmc_sojourn(*v) for k, v in nodes.items()}
    e2e = sum(rate * w[k] for k, (_, _, rate) in nodes.items()) / lam0
    assert_all_in_ci({
        "Jackson with feedback: end to end Σ λ_k W_k / λ₀": (m["E2E"], e2e),
        **{f"Jackson with feedback: W_{k}": (m[f"W_{k}"], w[k]) for k in nodes},
    })
    # Control: the same network solved as if there were no feedback (λ_A = λ₀): A looks less
    # loaded and requests fewer visits; the data rejects it.
    no_feedback = {"A": (2, 1.0, lam0), "B": (1, 0.8, 0.6 * lam0), "C": (1, 1.6, 0.3 * lam0)}
    wrong = sum(rate * mmc_sojourn(c, s, rate) for c, s, rate in no_feedback.values()) / lam0
    with pytest.raises(AssertionError, match="outside the CI"):
        assert_theory_in_ci(m["E2E"], wrong, name="Jackson without the feedback")


# -- Type I blocking, against Ciw ----------------------------------------------------------------
LAM, MU1, MU2, CAPACITY = 1.0, 1.6, 1.5, 1     # node 2 holds 1 in service + 1 waiting
HORIZON, WARMUP = 20000.0, 200.0


def ciw_tandem(seed: int) -> dict[str, float]:
    """Ciw's own Type I blocking: node 1 → node 2 (queue capacity 1), node 1 blocked while
    node 2 is full."""
    N = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=LAM), None],
        service_distributions=[ciw.dists.Exponential(rate=MU1), ciw.dists.Exponential(rate=MU2)],
        routing=[[0.0, 1.0], [0.0, 0.0]],
        number_of_servers=[1, 1],
        queue_capacities=[float("inf"), CAPACITY],
    )
    ciw.seed(seed)
    Q = ciw.Simulation(N)
    Q.simulate_until_max_time(HORIZON)
    recs = Q.get_all_records()
    first = {r.id_number: r.arrival_date for r in recs if r.node == 1}
    blocked = [r.time_blocked for r in recs if r.node == 1 and r.arrival_date >= WARMUP]
    sojourn = [r.exit_date - first[r.id_number] for r in recs
               if r.node == 2 and r.id_number in first and first[r.id_number] >= WARMUP]
    return {"sojourn": float(np.mean(sojourn)), "blocked": float(np.mean(blocked))}


def simsys_tandem(blocking: str, seeds: range) -> dict[str, np.ndarray]:
    spec = {
        "duration": HORIZON, "warmup": WARMUP,
        "services": {
            "one": {"service_time": exponential(1 / MU1), "routes": ["two"], "blocking": blocking},
            "two": {"service_time": exponential(1 / MU2), "queue": CAPACITY},
        },
        "workload": [{"type": "poisson", "rate": LAM, "target": "one"}],
    }

    def measure(r):
        s = r.summary()
        # node one's worker is busy serving and then blocked: per request, busy time / requests
        # = 1/μ1 + mean time blocked (Ciw's time_blocked)
        blocked = s["services"]["one"]["utilization"] / s["throughput"] - 1 / MU1
        return {"sojourn": s["latency"]["mean"], "blocked": blocked, "lost": s["error_rate"]}

    return replicate(spec, len(seeds), measure, seeds=seeds)


def test_type_one_blocking_matches_ciw_side_by_side():
    reps = range(1, 9)
    theirs = {k: np.array([ciw_tandem(s)[k] for s in reps]) for k in ("sojourn", "blocked")}
    ours = simsys_tandem("wait", reps)
    assert (ours["lost"] == 0).all()  # blocking loses nobody
    for k in ("sojourn",):
        a, b = t_interval(ours[k]), t_interval(theirs[k])
        diff = ours[k].mean() - theirs[k].mean()
        se = math.hypot(a.sd / math.sqrt(a.n), b.sd / math.sqrt(b.n))
        assert abs(diff) < 3.0 * se, (k, ours[k].mean(), theirs[k].mean(), se)  # ~99.7%
        assert se / theirs[k].mean() < 0.05, "too few replications to tell"
    # Controls, on the same data: without blocking (Type I ignored, node two unbounded) the
    # tandem is two M/M/1 queues; with blocking: reject, requests are lost instead of held.
    unbounded = 1 / (MU1 - LAM) + 1 / (MU2 - LAM)
    with pytest.raises(AssertionError, match="outside the CI"):
        assert_theory_in_ci(theirs["sojourn"], unbounded, name="Ciw vs two M/M/1 queues")
    with pytest.raises(AssertionError, match="outside the CI"):
        assert_theory_in_ci(ours["sojourn"], unbounded, name="simsys vs two M/M/1 queues")
    rejecting = simsys_tandem("reject", range(1, 4))
    assert (rejecting["lost"] > 0.02).all()  # a full queue two turns requests away
    # and the time node one spends blocked is Ciw's too
    a, b = t_interval(ours["blocked"]), t_interval(theirs["blocked"])
    se = math.hypot(a.sd / math.sqrt(a.n), b.sd / math.sqrt(b.n))
    assert abs(ours["blocked"].mean() - theirs["blocked"].mean()) < 3.0 * se
    assert theirs["blocked"].mean() > 0.05  # blocking happens often enough to matter


# -- a route frees the worker, a call holds it -------------------------------------------------
def test_a_route_frees_the_worker_a_call_holds_it():
    """One worker at A (0.4 s), B (0.3 s), λ = 1/s. Routed A → B: two M/M/1 queues in tandem,
    E[T] = 1/(2.5 − 1) + 1/(3.33 − 1). Called: A's worker is held through B, one server whose
    service is the sum (M/G/1 with hypoexponential service): a different, larger figure."""
    base = {"duration": 8200, "warmup": 200,
            "services": {"A": {"service_time": exponential(0.4)},
                         "B": {"service_time": exponential(0.3)}},
            "workload": [{"type": "poisson", "rate": 1.0, "target": "A"}]}
    routed = simsys.load(base, overrides={"services.A.routes": ["B"]})
    called = simsys.load(base, overrides={"services.A.calls": ["B"]})
    latency = lambda r: r.summary()["latency"]["mean"]  # noqa: E731
    tandem = 1 / (1 / 0.4 - 1) + 1 / (1 / 0.3 - 1)
    s, s2 = 0.7, 2 * (0.4**2 + 0.4 * 0.3 + 0.3**2)  # sum's mean and second moment
    held = s + 1.0 * s2 / (2 * (1 - 1.0 * s))          # Pollaczek–Khinchine
    r, c = replicate(routed, 8, latency), replicate(called, 8, latency)
    assert_all_in_ci({"route: tandem M/M/1": (r, tandem), "call: M/G/1 held": (c, held)})
    with pytest.raises(AssertionError, match="outside the CI"):
        assert_theory_in_ci(r, held, name="a route that held its worker")


# -- the spec ---------------------------------------------------------------------------------
@pytest.mark.parametrize("services, message", [
    ({"a": {"routes": [{"service": "b", "probability": 0.7}, {"service": "c", "probability": 0.5}]},
      "b": {}, "c": {}}, "route probabilities add up to 1.2, more than 1"),
    ({"a": {"routes": ["b"]}, "b": {"routes": ["a"]}}, "routes loop so that a request would never leave"),
    ({"a": {"routes": ["bb"]}, "b": {}}, "routes to unknown service 'bb' (did you mean 'b'?)"),
    ({"a": {"calls": ["b"], "routes": ["b"]}, "b": {}}, "both calls and routes to 'b'"),
    ({"a": {"discipline": "ps", "routes": ["b"]}, "b": {}}, "routes need discipline fifo or lifo"),
    ({"a": {"routes": ["b"], "blocking": "maybe"}, "b": {}}, "blocking: expected 'reject' or 'wait'"),
])
def test_bad_routes_are_refused_with_the_field_path(services, message):
    with pytest.raises(simsys.ScenarioError) as info:
        simsys.load({"services": services})
    assert message in str(info.value), str(info.value)


def test_routes_are_edges_of_the_graph_and_feedback_is_not_a_call_cycle():
    G = simsys.build_graph({"services": {
        "a": {"calls": ["c"], "routes": [{"service": "b", "probability": 0.5}]},
        "b": {"routes": [{"service": "a", "probability": 0.5}]}, "c": {}}})
    assert G.edges["a", "b"]["route"] and G.edges["b", "a"]["route"]
    assert not G.edges["a", "c"].get("route")
    r = simsys.run(G, seed=1)  # the feedback loop a -> b -> a is not a synchronous cycle
    assert r.summary()["requests"]["total"] == 0  # (no workload: it only has to build)


# replications against theory (or whole notebooks): `make test-fast` leaves these out
pytestmark = pytest.mark.slow
