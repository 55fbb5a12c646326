"""Balancer strategies: the rule each one follows, checked request by request against the loads
the replicas held at that moment (read back from the per-visit spans), and power of two
choices against random at high load, over replications with common seeds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from stats import t_interval

import simsys


def web(balancer: str, replicas: int = 3, **extra: Any) -> dict[str, Any]:
    return {"replicas": replicas, "balancer": balancer, **extra}


def visits(r: simsys.Result) -> pd.DataFrame:
    """One row per request that reached web and finished there, in arrival order, up to the
    first request still in flight at the end (whose visit left no span, so later loads would be
    undercounted): ``id, instance, arrived, ended``."""
    sp = r.spans
    sp = sp[sp["service"] == "web"].sort_values("id").reset_index(drop=True)
    missing = np.setdiff1d(np.arange(sp["id"].max() + 1), sp["id"].to_numpy())
    if len(missing):
        sp = sp[sp["id"] < missing[0]]
    return sp[["id", "instance", "arrived", "ended"]]


def loads_at_arrival(v: pd.DataFrame, replicas: int) -> np.ndarray:
    """Requests each replica held (in service or waiting) when each request arrived."""
    arrived = v["arrived"].to_numpy()
    ended = v["ended"].to_numpy()
    inst = v["instance"].to_numpy()
    out = np.zeros((len(v), replicas), dtype=int)
    for i, t in enumerate(arrived):
        held = (arrived[:i] < t) & (ended[:i] > t)
        out[i] = np.bincount(inst[:i][held], minlength=replicas)
    return out


def busy_spec(balancer: str, replicas: int = 3, duration: str = "60s") -> dict[str, Any]:
    # Enough load that replicas often differ (ρ = 0.8), continuous times so no two events tie.
    return {"duration": duration, "trace": True,
            "services": {"web": web(balancer, replicas,
                                    service_time={"dist": "exponential", "mean": "300ms"})},
            "workload": [{"type": "poisson", "rate": "8/s", "target": "web"}]}


def test_round_robin_takes_each_replica_in_turn_whatever_its_load():
    r = simsys.run(busy_spec("round_robin"), seed=4)
    v = visits(r)
    assert len(v) > 300
    assert (v["instance"].to_numpy() == np.arange(len(v)) % 3).all()
    loads = loads_at_arrival(v, 3)
    chosen = loads[np.arange(len(v)), v["instance"].to_numpy()]
    assert (chosen > loads.min(axis=1)).any(), "round robin never ignored a lighter replica"


def test_least_connections_takes_the_least_loaded_replica_lowest_first():
    r = simsys.run(busy_spec("least_connections"), seed=4)
    v = visits(r)
    assert len(v) > 300
    loads = loads_at_arrival(v, 3)
    assert (v["instance"].to_numpy() == loads.argmin(axis=1)).all()   # argmin: lowest on ties
    assert (loads.max(axis=1) > loads.min(axis=1)).sum() > 50, "loads were never uneven"


def test_power_of_two_never_takes_the_most_loaded_of_three_when_it_is_alone_there():
    # Two distinct replicas are drawn and the less loaded one wins, so with three replicas the
    # one strictly above both others is never chosen — and the choice is not always the least.
    r = simsys.run(busy_spec("power_of_two"), seed=4)
    v = visits(r)
    loads = loads_at_arrival(v, 3)
    chosen = loads[np.arange(len(v)), v["instance"].to_numpy()]
    others = np.sort(loads, axis=1)
    strict_max = others[:, 2] > others[:, 1]
    assert not (strict_max & (chosen == others[:, 2])).any()
    assert (chosen > others[:, 0]).any()


def test_consistent_hash_keeps_keys_and_moves_only_those_of_a_removed_replica():
    # 4 replicas, 60 user keys. One replica crashes at 10 s (detected at once, back at 20 s):
    # while it is out only its keys move, each to one other replica; when it is back they return.
    spec = {"duration": "30s",
            "services": {"web": web("consistent_hash", 4, service_time="1ms", workers=4)},
            "faults": [{"kind": "crash", "target": "web", "at": "10s", "mode": "fixed",
                        "value": 1}],
            "recovery": {"detection": "0s", "restart": "10s"},
            "workload": [{"type": "poisson", "rate": "100/s", "target": "web", "keys": 60}]}
    r = simsys.run(spec, seed=5)
    dead = int(r.incidents["instance"].iloc[0])
    df = r.requests.merge(_keys(r), on="id")
    df = df[df["status"] == "ok"]
    phase = pd.cut(df["start"], [0, 10, 20, 30], labels=["before", "out", "back"], right=False)
    owner = df.groupby([phase, "key"], observed=True)["instance"].agg(["nunique", "first"])
    assert (owner["nunique"] == 1).all(), "a key went to two replicas within a phase"
    before, out, back = (owner.loc[p, "first"] for p in ("before", "out", "back"))
    assert len(before) == 60 and before.value_counts().min() >= 5   # every replica has keys
    assert back.equals(before)
    stayed = before[before != dead]
    assert out.loc[stayed.index].equals(stayed)
    moved = out.loc[before[before == dead].index]
    assert len(moved) > 0 and (moved != dead).all()
    assert moved.nunique() > 1, "a removed replica's keys should spread over the ring"


def _keys(r: simsys.Result) -> pd.DataFrame:
    """Each request's user key. Not in the requests table, so redrawn as the workload draws
    them: ``int(u × keys)`` from the workload's own key stream, one draw per request in id
    order (the run's seed makes it the same stream)."""
    from simsys.sim.engine import Streams

    u = Streams(r.seed).uniform("workload/client:poisson0/keys")
    n = int(r.requests["id"].max()) + 1
    return pd.DataFrame({"id": np.arange(n), "key": [int(u() * 60) for _ in range(n)]})


def test_power_of_two_cuts_the_p99_of_random_at_high_load():
    # 10 replicas of one worker, exponential service of mean 1 s, λ = 9/s (ρ = 0.9). Random
    # makes each replica an M/M/1 at ρ = 0.9 (p99 sojourn ln(100)/(μ − λ/10) ≈ 46 s in the
    # limit); two choices keep the queues even. Same seeds for both: a paired difference.
    def p99(balancer: str, seed: int) -> float:
        spec = {"duration": "2000s", "warmup": "200s",
                "services": {"web": web(balancer, 10, service_time={
                    "dist": "exponential", "mean": "1s"})},
                "workload": [{"type": "poisson", "rate": "9/s", "target": "web"}]}
        return simsys.run(spec, seed=seed).summary()["latency"]["p99"]

    seeds = range(1, 9)
    rand = np.array([p99("random", s) for s in seeds])
    two = np.array([p99("power_of_two", s) for s in seeds])
    diff = t_interval(rand - two)
    ratio = t_interval(np.log(rand / two))
    print(f"p99 random {rand.mean():.3g} s, power_of_two {two.mean():.3g} s; "
          f"difference {diff.describe()}; log ratio {ratio.describe()}")
    assert diff.low > 0, diff.describe()
    assert ratio.low > np.log(2), f"p99 not even halved: log ratio {ratio.describe()}"
