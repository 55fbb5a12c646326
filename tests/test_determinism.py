"""Same scenario and seed ⇒ same results, in any process; streams are keyed by component name,
so an unrelated change leaves the workload's random numbers alone (common random numbers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

import simsys

# Every kind of randomness in one small scenario: exponential and lognormal service times,
# random and power-of-two balancers, probabilistic calls, random latency, loss, chaos monkey.
SCENARIO = {
    "name": "det",
    "seed": 5,
    "duration": "40s",
    "warmup": "5s",
    "services": {
        "gateway": {
            "replicas": 2, "workers": 4, "queue": 20, "balancer": "random",
            "service_time": {"dist": "exponential", "mean": "2ms"},
            "calls": ["catalog", {"service": "cart", "probability": 0.5}],
        },
        "catalog": {
            "replicas": 3, "workers": 2, "queue": 10, "balancer": "power_of_two",
            "service_time": {"dist": "lognormal", "mean": "8ms", "sd": "5ms"},
        },
        "cart": {"workers": 2, "service_time": {"dist": "uniform", "low": "1ms", "high": "9ms"}},
    },
    "links": {
        "default": {"latency": {"dist": "exponential", "mean": "1ms"}},
        "gateway->catalog": {"latency": "2ms", "loss": 0.01},
    },
    "workload": [{"type": "poisson", "rate": "150/s", "target": "gateway", "name": "shoppers"}],
    "chaos": {"monkey": {"targets": ["catalog"], "mean_time_between_failures": "10s",
                         "max_concurrent": 1}},
    "recovery": {"detection": "1s", "restart": {"dist": "exponential", "mean": "3s"}},
}

CHILD = textwrap.dedent(
    """
    import hashlib, io, json, sys
    import simsys
    spec, seed = json.loads(sys.argv[1]), int(sys.argv[2])
    r = simsys.run(spec, seed=seed)
    csv = r.requests.to_csv(index=False).encode()
    buf = io.BytesIO()
    r.requests.to_parquet(buf)
    print(json.dumps({
        "summary": r.summary(),
        "requests_csv": hashlib.sha256(csv).hexdigest(),
        "requests_parquet": hashlib.sha256(buf.getvalue()).hexdigest(),
        "incidents_csv": hashlib.sha256(r.incidents.to_csv(index=False).encode()).hexdigest(),
        "rows": len(r.requests),
    }))
    """
)


def start_process(seed: int, hash_seed: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(SCENARIO), str(seed)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(p: subprocess.Popen) -> dict:
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    return json.loads(out)


def test_same_seed_same_results_in_separate_processes():
    # Different hash seeds too: nothing may depend on set or dict-of-str iteration order.
    a, b = map(finish, [start_process(5, "1"), start_process(5, "2")])
    assert a["rows"] > 3000
    assert a["summary"]["incidents"]["count"] > 0  # the chaos streams are exercised
    assert json.dumps(a["summary"], sort_keys=True) == json.dumps(b["summary"], sort_keys=True)
    assert a["requests_csv"] == b["requests_csv"]
    assert a["requests_parquet"] == b["requests_parquet"]
    assert a["incidents_csv"] == b["incidents_csv"]


def test_same_seed_same_tables_in_process():
    a = simsys.run(SCENARIO, seed=9)
    b = simsys.run(SCENARIO, seed=9)
    assert a.requests.equals(b.requests)
    assert a.incidents.equals(b.incidents)
    assert a.timeseries.equals(b.timeseries)
    assert a.summary() == b.summary()


def test_different_seeds_differ():
    a = simsys.run(SCENARIO, seed=1)
    b = simsys.run(SCENARIO, seed=2)
    assert not a.requests.equals(b.requests)
    assert a.summary()["latency"]["p99"] != b.summary()["latency"]["p99"]


def test_seed_argument_overrides_the_scenario_seed():
    assert simsys.run(SCENARIO).summary()["seed"] == 5
    assert simsys.run(SCENARIO).requests.equals(simsys.run(SCENARIO, seed=5).requests)
    assert simsys.run(SCENARIO, seed=6).summary()["seed"] == 6


def _arrivals(result: simsys.Result, source: str = "shoppers") -> np.ndarray:
    df = result.requests
    return np.sort(df.loc[df["source"] == source, "start"].to_numpy())


def _simple(extra_services: dict | None = None, extra_workload: list | None = None) -> dict:
    return {
        "seed": 3,
        "duration": "30s",
        "services": {
            "web": {"workers": 4, "service_time": {"dist": "exponential", "mean": "5ms"},
                    "calls": ["db"]},
            "db": {"workers": 2, "service_time": {"dist": "exponential", "mean": "3ms"}},
            **(extra_services or {}),
        },
        "links": {"default": {"latency": {"dist": "exponential", "mean": "1ms"}}},
        "workload": [{"type": "poisson", "rate": "100/s", "target": "web", "name": "shoppers"},
                     *(extra_workload or [])],
    }


def test_unrelated_service_leaves_arrivals_unchanged():
    base = simsys.run(_simple())
    more = simsys.run(_simple({"audit": {"replicas": 3, "service_time":
                                         {"dist": "exponential", "mean": "1s"}}}))
    assert np.array_equal(_arrivals(base), _arrivals(more))
    # nothing calls audit, so everything else is identical too
    cols = ["start", "end", "status", "instance"]
    assert base.requests[cols].equals(more.requests[cols])


def test_service_added_first_leaves_arrivals_unchanged():
    # The new service comes first in the file: streams are keyed by name, not by position.
    spec = _simple()
    spec["services"] = {"aaa": {}, **spec["services"]}
    base = simsys.run(_simple())
    more = simsys.run(spec)
    assert np.array_equal(_arrivals(base), _arrivals(more))
    assert base.requests["end"].equals(more.requests["end"])


def test_second_workload_leaves_the_first_ones_arrivals_unchanged():
    base = simsys.run(_simple())
    more = simsys.run(_simple({"admin": {"service_time": "1ms"}},
                              [{"type": "poisson", "rate": "20/s", "target": "admin",
                                "name": "admins"}]))
    assert np.array_equal(_arrivals(base), _arrivals(more))
    assert len(_arrivals(more, "admins")) > 400


def test_slower_service_changes_latency_not_arrivals():
    slow = _simple()
    slow["services"]["db"]["service_time"] = {"dist": "exponential", "mean": "6ms"}
    base, changed = simsys.run(_simple()), simsys.run(slow)
    assert np.array_equal(_arrivals(base), _arrivals(changed))
    assert changed.summary()["latency"]["mean"] > base.summary()["latency"]["mean"]


def test_same_results_whatever_ran_before_in_the_process():
    # Where objects land in memory depends on what ran before; nothing may iterate in that
    # order. A crash fails the 30-odd requests a replica holds, each answered over a link with
    # random latency: in a set they were failed (and drew their latencies) by memory address.
    spec = {"duration": "20s", "seed": 4,
            "services": {"web": {"workers": 64, "calls": ["db"]},
                         "db": {"replicas": 2, "workers": 32,
                                "service_time": {"dist": "exponential", "mean": "100ms"}}},
            "links": {"web->db": {"latency": {"dist": "exponential", "mean": "5ms"}}},
            "workload": [{"type": "poisson", "rate": "500/s", "target": "web"}],
            "faults": [{"kind": "crash", "target": "db", "at": "10s", "mode": "one"}]}
    first = simsys.run(spec)
    assert (first.requests["cause"] == "crash").sum() > 20
    for n in (1, 777, 5000):
        junk = [object() for _ in range(n)]  # shifts where the next objects are allocated
        simsys.run({**SCENARIO, "duration": "3s", "warmup": 0}, seed=n)
        again = simsys.run(spec)
        assert again.requests.equals(first.requests), n
        del junk


def test_websocket_reconnects_are_independent_of_memory_layout():
    # Two populations share a replica that crashes; without jitter all its clients come back at
    # one instant and only some fit. Which ones do followed the memory addresses of their
    # connections while those were kept in a set.
    client = {"type": "websocket", "target": "chat", "clients": 80,
              "lifetime": {"dist": "exponential", "mean": "10min"},
              "messages": {"server_rate": "1/s"}, "reconnect": {"initial": "1s", "jitter": "none"}}
    spec = {"duration": "60s", "seed": 2,
            "services": {"chat": {"replicas": 2, "workers": 4,
                                  "websocket": {"max_connections": 100}}},
            "recovery": {"detection": "1s", "restart": "5s"},
            "faults": [{"kind": "crash", "target": "chat", "at": "20s", "mode": "one"}],
            "workload": [{**client, "name": "a"}, {**client, "name": "b"}]}
    first = simsys.run(spec)
    assert first.summary()["websockets"]["blocked"] > 0
    for n in (1, 777, 5000):
        junk = [object() for _ in range(n)]  # shifts where the next objects are allocated
        again = simsys.run(spec)
        assert again.deliveries.equals(first.deliveries), n
        assert again.timeseries.equals(first.timeseries), n
        del junk


def test_progress_steps_sized_by_wall_clock_do_not_change_results():
    """With a progress callback the run goes in steps of simulated time sized by how long
    each took; where steps end must not matter. A callback that sleeps at random makes the
    steps land elsewhere on every call."""
    import random
    import time

    import simsys

    jitter = random.Random(1)  # the test's own, not the simulation's

    def slow(now: float) -> None:
        time.sleep(jitter.choice([0.0, 0.0, 0.02, 0.2]))

    spec = "scenarios/chaos-checkout.yaml"
    quiet = simsys.run(spec, seed=4)
    steps = simsys.run(spec, seed=4, progress=slow)
    assert quiet.requests.equals(steps.requests)
    assert quiet.timeseries.equals(steps.timeseries)
    assert quiet.summary() == steps.summary()
