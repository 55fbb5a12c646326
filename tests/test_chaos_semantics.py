"""What chaos does, checked on exact logs: the monkey's limits and blast radius, each scheduled
fault's effect on requests, crash loops and back-off, and what happens to requests when a
replica dies.

Scenarios use constant service times and link latencies wherever a fault's effect should be
exact, so the expected latency or status of every request can be computed here from its start
time alone and compared with what the simulator recorded.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

import simsys

EPS = 1e-9


def close(a: float, b: float) -> bool:
    return abs(a - b) <= EPS


# -- the monkey's limits -----------------------------------------------------------------------
def limits_scenario(**monkey) -> dict:
    return {
        "name": "limits",
        "duration": 20000,
        "sample_every": 20000,
        "services": {"a": {"replicas": 3}, "b": {"replicas": 3}},
        "recovery": {"detection": 10, "restart": 50},
        "chaos": {"monkey": {"targets": ["a", "b"], "schedule": "continuous",
                             "mean_time_between_failures": 100, **monkey}},
    }


def down_at(incidents: pd.DataFrame, t: float) -> set[tuple[str, int]]:
    """Replicas down just before time ``t``."""
    rec = incidents["recovered_at"].fillna(math.inf)
    rows = incidents[(incidents["failed_at"] < t) & (rec > t)]
    return set(zip(rows["service"], rows["instance"], strict=True))


def test_min_healthy_and_max_concurrent_replayed():
    """Replay every journal row: the outcome follows from who was down at that instant."""
    r = simsys.run(limits_scenario(mode="all", max_concurrent=3, min_healthy=1), seed=3)
    j, inc = r.chaos, r.incidents
    assert {"killed", "skipped"} == set(j["outcome"])
    assert {"", "max_concurrent", "min_healthy"} == set(j["reason"])
    killed_here: list[tuple[str, int]] = []
    last_at = None
    for row in j.itertuples():
        if row.at != last_at:
            killed_here, last_at = [], row.at
        down = down_at(inc, row.at) | set(killed_here)
        up_in_service = 3 - sum(1 for s, _ in down if s == row.service)
        if len(down) >= 3:
            expected = ("skipped", "max_concurrent")
        elif up_in_service - 1 < 1:
            expected = ("skipped", "min_healthy")
        else:
            expected = ("killed", "")
        assert (row.outcome, row.reason) == expected, row
        assert (row.service, row.instance) not in down  # mode all picks among up replicas
        if row.outcome == "killed":
            killed_here.append((row.service, row.instance))
    # Every kill is an incident at that instant, and nothing else failed.
    kills = j[j["outcome"] == "killed"]
    assert len(kills) == len(inc)
    assert list(zip(kills["at"], kills["service"], kills["instance"], strict=True)) == list(
        zip(inc["failed_at"], inc["service"], inc["instance"], strict=True))
    # And so, at every moment: at most 3 down in all, at least 1 up per service.
    events = sorted([(t, +1, s) for t, s in zip(inc["failed_at"], inc["service"], strict=True)]
                    + [(t, -1, s) for t, s in zip(inc["recovered_at"], inc["service"], strict=True)],
                    key=lambda e: (e[0], e[1]))
    down_total, down_by = 0, {"a": 0, "b": 0}
    for _, delta, s in events:
        down_total += delta
        down_by[s] += delta
        assert down_total <= 3 and max(down_by.values()) <= 2


def test_no_limits_means_mode_all_takes_everything():
    r = simsys.run(limits_scenario(mode="all", targets=["a"]), seed=3)
    j = r.chaos
    assert set(j["outcome"]) <= {"killed", "skipped"}
    first = j[j["at"] == j["at"].iloc[0]]
    assert list(first["outcome"]) == ["killed"] * 3
    assert (r.summary()["services"]["a"]["time_with_up"][0]) > 0  # all three down at times
    # Candidates that found no replica up are journaled as such, and they were all down.
    skipped = j[j["outcome"] == "skipped"]
    assert len(skipped) > 0 and set(skipped["reason"]) == {"no replica up"}
    assert all(len(down_at(r.incidents, t)) == 3 for t in skipped["at"])


def test_a_blast_radius_of_zero_is_journaled_as_such():
    # 10% of 3 replicas rounds down to none: every candidate is skipped, though all are up.
    spec = limits_scenario(mode="fixed-percent", value=10, targets=["a"])
    r = simsys.run(spec, seed=1)
    assert r.incidents.empty and len(r.chaos) > 100
    assert set(r.chaos["reason"]) == {"blast radius is 0"}
    # random-max-percent of 3 replicas draws 0..32% (no replica) a third of the time.
    spec = limits_scenario(mode="random-max-percent", value=100, targets=["a"])
    j = simsys.run(spec, seed=1).chaos
    zero = (j["reason"] == "blast radius is 0").mean()
    assert 0.2 < zero < 0.45


def test_leashed_journals_every_would_be_kill_and_kills_nothing():
    base = {
        "name": "leash",
        "duration": 50000,
        "sample_every": 50000,
        "services": {"a": {"replicas": 3}, "b": {"replicas": 2}},
        "chaos": {"monkey": {"schedule": "continuous", "mean_time_between_failures": 300,
                             "min_time_between_failures": 100}},
    }
    free = simsys.run(base, seed=4)
    base["chaos"]["monkey"]["leashed"] = True
    leashed = simsys.run(base, seed=4)
    assert leashed.incidents.empty
    assert leashed.summary()["incidents"]["count"] == 0
    lj, fj = leashed.chaos, free.chaos
    assert len(lj) > 100
    assert set(lj.loc[lj["instance"] >= 0, "outcome"]) == {"leashed"}
    assert set(lj.loc[lj["outcome"] == "leashed", "reason"]) == {"dry run"}
    # The same would-be kills as the real monkey made (recovery is instant here).
    cols = ["at", "group", "service", "instance"]
    pd.testing.assert_frame_equal(lj[cols], fj[cols])
    assert list(fj["outcome"]) == ["killed" if o == "leashed" else o for o in lj["outcome"]]


def test_workday_window_from_a_weekend_start():
    import datetime as dt

    start = dt.datetime(2026, 3, 7, 12, 0)  # a Saturday
    spec = {
        "name": "window", "duration": 28 * 86400, "sample_every": 28 * 86400,
        "services": {"a": {"replicas": 4}},
        "chaos": {"monkey": {"schedule": "workdays", "grouping": "instance", "start_at": start,
                             "mean_workdays_between_kills": 1, "min_workdays_between_kills": 0,
                             "window": {"start_hour": 10, "end_hour": 12}}},
    }
    j = simsys.run(spec, seed=2).chaos
    when = [start + dt.timedelta(seconds=float(t)) for t in j["at"]]
    assert len(when) == 4 * 20  # p = 1, no spacing: every replica on each of the 20 workdays
    assert all(w.weekday() < 5 and 10 <= w.hour < 12 for w in when)
    assert (j["outcome"] == "killed").all()


# -- blast radius --------------------------------------------------------------------------------
def blast_scenario(faults: list[dict], replicas: int = 10) -> dict:
    names = sorted({f["target"] for f in faults})
    return {
        "name": "blast", "duration": 100, "sample_every": 100,
        "services": {n: {"replicas": replicas} for n in names},
        "recovery": {"detection": 1, "restart": 1000},
        "faults": faults,
    }


def test_blast_radius_modes_of_crash_faults():
    faults = [
        {"kind": "crash", "target": "one", "at": 10, "mode": "one"},
        {"kind": "crash", "target": "all", "at": 10, "mode": "all"},
        {"kind": "crash", "target": "fixed", "at": 10, "mode": "fixed", "value": 3},
        {"kind": "crash", "target": "pct", "at": 10, "mode": "fixed-percent", "value": 25},
        {"kind": "crash", "target": "pct99", "at": 10, "mode": "fixed-percent", "value": 99},
    ]
    inc = simsys.run(blast_scenario(faults), seed=1).incidents
    counts = inc.groupby("service").size().to_dict()
    # fixed-percent rounds down, as Chaos Mesh does: 25% of 10 → 2, 99% of 10 → 9.
    assert counts == {"one": 1, "all": 10, "fixed": 3, "pct": 2, "pct99": 9}
    assert (inc["failed_at"] == 10).all()
    assert not inc.duplicated(["service", "instance"]).any()


def test_random_max_percent_draws_a_percentage_up_to_value():
    # Chaos Mesh: a percentage uniform on 0..value, then floor(n × percentage / 100) replicas.
    # With n = 10 and value = 50: 0..4 replicas with probability 10/51 each, 5 with 1/51.
    spec = blast_scenario(
        [{"kind": "crash", "target": "x", "at": 10, "mode": "random-max-percent", "value": 50}])
    counts = [len(simsys.run(spec, seed=s).incidents) for s in range(1, 151)]
    assert max(counts) <= 5
    observed = np.bincount(counts, minlength=6)
    expected = np.array([10, 10, 10, 10, 10, 1]) / 51 * len(counts)
    pooled_obs = np.append(observed[:4], observed[4:].sum())
    pooled_exp = np.append(expected[:4], expected[4:].sum())
    assert st.chisquare(pooled_obs, pooled_exp).pvalue > 0.001, observed


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [("one", None, 1), ("all", None, 6), ("fixed", 2, 2), ("fixed-percent", 50, 3)],
)
def test_blast_radius_modes_of_the_monkey(mode, value, expected):
    monkey = {"targets": ["x"], "mean_time_between_failures": 100, "mode": mode}
    if value is not None:
        monkey["value"] = value
    spec = {"name": "blast", "duration": 5000, "sample_every": 5000,
            "services": {"x": {"replicas": 6}}, "chaos": {"monkey": monkey}}
    r = simsys.run(spec, seed=6)
    per_kill = r.chaos.groupby("at").size()
    assert len(per_kill) > 20
    assert set(per_kill) == {expected}
    assert len(r.incidents) == per_kill.sum()


# -- faults on requests: partition, latency, slowdown, loss ----------------------------------------
def fault_scenario(faults: list[dict], duration: float = 60.0) -> dict:
    return {
        "name": "faults",
        "duration": duration,
        "services": {
            "a": {"workers": 1000, "service_time": "10ms", "calls": ["b"]},
            "b": {"workers": 1000, "service_time": "5ms"},
            "c": {"workers": 1000, "service_time": "10ms", "calls": ["b"]},
        },
        "links": {"default": {"latency": "2ms"}},
        "workload": [
            {"type": "poisson", "rate": "40/s", "target": "a", "name": "to_a"},
            {"type": "poisson", "rate": "40/s", "target": "c", "name": "to_c"},
        ],
        "faults": faults,
    }


def test_partition_fails_exactly_the_calls_that_cross_it():
    t0, t1 = 20.0, 30.0
    r = simsys.run(fault_scenario([{"kind": "partition", "groups": [["a"], ["b", "c"]],
                                    "at": t0, "duration": t1 - t0}]), seed=1)
    df = r.requests
    # c and b are on the same side: every request to c is fine and takes 10+2+5+2 ms.
    to_c = df[df["source"] == "to_c"]
    assert (to_c["status"] == "ok").all()
    assert np.allclose(to_c["latency"], 0.019)
    # a → b crosses: the request fails when its call to b is sent, or b's answer, during the
    # partition; it fails at that moment, with cause partition, blamed on b.
    to_a = df[df["source"] == "to_a"]
    failed = 0
    for row in to_a.itertuples():
        call = row.start + 0.010
        answer = call + 0.002 + 0.005
        if t0 <= call < t1:
            expected = ("error", "partition", call)
        elif t0 <= answer < t1:
            expected = ("error", "partition", answer)
        else:
            expected = ("ok", "", row.start + 0.019)
        assert (row.status, row.cause) == expected[:2], row
        assert close(row.end, expected[2]), row
        if row.status == "error":
            assert row.failed_service == "b"
            failed += 1
    assert failed > 300  # 10 s at 40/s


def test_latency_and_slowdown_faults_add_and_multiply_exactly():
    faults = [
        {"kind": "latency", "target": "a", "delay": "5ms", "at": 10, "duration": 10},
        {"kind": "latency", "target": "a->b", "delay": "3ms", "at": 25, "duration": 10},
        {"kind": "slowdown", "target": "b", "factor": 3, "at": 40, "duration": 10},
    ]
    r = simsys.run(fault_scenario(faults), seed=2)
    df = r.requests
    assert (df["status"] == "ok").all()

    def inside(t: float, at: float, duration: float = 10) -> bool:
        return at <= t < at + duration

    for row in df.itertuples():
        via_a = row.source == "to_a"
        t = row.start
        t += 0.010 + (0.005 if via_a and inside(t, 10) else 0.0)       # a's (or c's) work
        t += 0.002 + (0.003 if via_a and inside(t, 25) else 0.0)       # request over x->b
        t += 0.005 * (3 if inside(t, 40) else 1)                        # b's work
        t += 0.002 + (0.003 if via_a and inside(t, 25) else 0.0)       # answer over x->b
        assert close(row.end, t), (row, t)
    # Each fault did change something, and the ends put things back.
    lat = df["latency"].to_numpy()
    assert np.isclose(lat, 0.019).mean() > 0.5
    for extra in (0.005, 0.006, 0.010):
        assert np.isclose(lat, 0.019 + extra).any(), extra


def test_loss_fault_drops_the_right_share():
    base_loss, fault_loss = 0.1, 0.3
    spec = fault_scenario([{"kind": "loss", "target": "a->b", "loss": fault_loss,
                            "at": 100, "duration": 200}], duration=400)
    spec["links"]["a->b"] = {"latency": "2ms", "loss": base_loss}
    spec["workload"] = [{"type": "poisson", "rate": "100/s", "target": "a", "name": "to_a"}]
    df = simsys.run(spec, seed=3).requests
    for window, per_message in [((0, 100), 1 - base_loss),
                                ((100, 300), (1 - base_loss) * (1 - fault_loss)),
                                ((300, 399), 1 - base_loss)]:
        sel = df[(df["start"] >= window[0]) & (df["start"] < window[1])]
        dropped = (sel["status"] == "dropped").sum()
        p = 1 - per_message**2  # the request and its answer each cross the link once
        assert st.binomtest(int(dropped), len(sel), p).pvalue > 0.001, (window, dropped, len(sel), p)
    assert set(df.loc[df["status"] == "dropped", "cause"]) == {"loss"}
    assert set(df.loc[df["status"] != "ok", "status"]) == {"dropped"}


# -- memory leak, crash loops, back-off -------------------------------------------------------------
def one_replica(faults: list[dict], recovery: dict, duration: float = 1000,
                memory: dict | None = None) -> dict:
    svc: dict = {"replicas": 1}
    if memory:
        svc["memory"] = memory
    return {"name": "one", "duration": duration, "sample_every": 7,
            "services": {"m": svc}, "recovery": recovery, "faults": faults}


def test_memory_leak_reaches_the_limit_and_is_oom_killed():
    # 100 MB base, 200 MB limit, 1 MB/s leak: OOM 100 s after the leak starts, again 100 s
    # after each restart while the fault lasts (10 s → 490 s); detection 5 s, restart 20 s.
    spec = one_replica([{"kind": "memory_leak", "target": "m", "rate": "1MB/s", "at": 10,
                         "duration": 480}],
                       {"detection": 5, "restart": 20}, memory={"base": "100MB", "limit": "200MB"})
    r = simsys.run(spec, seed=1)
    inc = r.incidents
    assert list(inc["kind"]) == ["oom"] * 4
    assert set(inc["cause"]) == {"memory.limit"}
    assert np.allclose(inc["failed_at"], [110, 235, 360, 485], atol=1e-6)
    assert np.allclose(inc["recovered_at"], [135, 260, 385, 510], atol=1e-6)
    ts = r.timeseries
    mem = ts[(ts["metric"] == "memory")].set_index("time")["value"]
    assert mem.max() <= 200e6 + 1
    assert mem[14.0] == pytest.approx(104e6)            # 4 s of leak
    assert mem[140.0] == pytest.approx(105e6)           # restarted clean at 135, leaking again
    assert (mem[mem.index > 510] == 100e6).all()        # the fault is over: no more leak
    assert r.summary()["services"]["m"]["memory_peak"] <= 200e6 + 1


def test_requests_held_by_an_oom_killed_replica_fail_with_cause_oom():
    spec = one_replica([{"kind": "memory_leak", "target": "m", "rate": "1MB/s", "at": 10,
                         "duration": 480}],
                       {"detection": 5, "restart": 20}, memory={"base": "100MB", "limit": "200MB"})
    spec["services"]["m"].update(workers=100, service_time="3s")
    spec["workload"] = [{"type": "poisson", "rate": "2/s", "target": "m"}]
    r = simsys.run(spec, seed=2)
    df, inc = r.requests, r.incidents
    assert np.allclose(inc["failed_at"], [110, 235, 360, 485], atol=1e-6)
    bad = df[df["status"] != "ok"]
    assert set(bad["cause"]) == {"oom", "unavailable"}
    oom = bad[bad["cause"] == "oom"]
    # Held at the kill (ends then) or sent before detection (ends on arrival).
    for row in oom.itertuples():
        k = np.searchsorted(inc["failed_at"].to_numpy(), row.end + 1e-6) - 1
        f, d = inc["failed_at"].iloc[k], inc["detected_at"].iloc[k]
        assert abs(row.end - f) < 1e-6 or (f <= row.start < d and row.end == row.start), row
    assert inc["requests_failed"].sum() == len(oom) > 20


def test_crash_fault_with_duration_is_a_crash_loop():
    # Crash at 10 for 100 s; detection 5 s, restart 10 s: every restart before 110 s crashes
    # again at once; the one at 115 s stays up.
    spec = one_replica([{"name": "boom", "kind": "crash", "target": "m", "at": 10,
                         "duration": 100}], {"detection": 5, "restart": 10})
    inc = simsys.run(spec, seed=1).incidents
    assert list(inc["failed_at"]) == [10, 25, 40, 55, 70, 85, 100]
    assert list(inc["detected_at"]) == [15, 30, 45, 60, 75, 90, 105]
    assert list(inc["recovered_at"]) == [25, 40, 55, 70, 85, 100, 115]
    assert set(inc["cause"]) == {"boom"} and set(inc["kind"]) == {"crash"}


def test_a_crash_loop_that_takes_no_time_holds_the_replica_down():
    # No detection delay and no restart time: each restart inside the fault would crash again
    # at the same instant, for ever (it once did, until memory ran out). The replica stays down
    # for the fault's duration: one incident, 10 s → 110 s.
    spec = one_replica([{"name": "boom", "kind": "crash", "target": "m", "at": 10,
                         "duration": 100}], {}, duration=300)
    spec["workload"] = [{"type": "poisson", "rate": "5/s", "target": "m"}]
    r = simsys.run(spec, seed=1)
    inc = r.incidents
    assert list(zip(inc["failed_at"], inc["recovered_at"], strict=True)) == [(10, 110)]
    failed = r.requests[r.requests["status"] != "ok"]
    assert failed["start"].between(10, 110).all() and len(failed) > 300
    # a second fault from 50 s to 200 s: the restart when the first ends (110 s) crashes into
    # the second, and the replica is held down again until that one ends
    spec["faults"].append({"name": "bang", "kind": "crash", "target": "m", "at": 50,
                           "duration": 150})
    inc = simsys.run(spec, seed=1).incidents
    assert list(zip(inc["failed_at"], inc["recovered_at"], strict=True)) == [(10, 110), (110, 200)]
    assert list(inc["cause"]) == ["boom", "bang"]


def test_a_held_replica_restarts_when_its_crash_fault_is_rolled_back():
    spec = one_replica([], {}, duration=300)
    spec["workload"] = [{"type": "poisson", "rate": "5/s", "target": "m"}]
    spec["experiment"] = {
        "title": "crash and roll back",
        "steady-state-hypothesis": {"probes": [{"name": "up", "metric": "error_rate",
                                                "window": "10s", "tolerance": [0, 0.01]}]},
        "method": [{"name": "kill", "kind": "crash", "target": "m", "at": 20, "duration": 200}],
        "rollbacks": [{"name": "undo", "at": 60, "ends": "kill"}],
    }
    inc = simsys.run(spec, seed=1).incidents
    assert list(zip(inc["failed_at"], inc["recovered_at"], strict=True)) == [(20, 60)]


def test_overlapping_crash_loops_end_independently():
    # A loops until 110 s, B from 50 s until 250 s: the end of A must not end B's loop.
    spec = one_replica([{"name": "A", "kind": "crash", "target": "m", "at": 10, "duration": 100},
                        {"name": "B", "kind": "crash", "target": "m", "at": 50, "duration": 200}],
                       {"detection": 5, "restart": 10})
    inc = simsys.run(spec, seed=1).incidents
    assert list(inc["failed_at"]) == list(range(10, 250, 15))
    assert inc["recovered_at"].iloc[-1] == 250
    assert list(inc["cause"]) == ["A"] * 3 + ["B"] * 13


def test_overlapping_memory_leaks_add_up_and_free_their_own_bytes():
    spec = one_replica(
        [{"name": "A", "kind": "memory_leak", "target": "m", "rate": "1MB/s", "at": 10,
          "duration": 100},
         {"name": "B", "kind": "memory_leak", "target": "m", "rate": "2MB/s", "at": 50,
          "duration": 100}],
        {}, duration=200, memory={"base": "100MB", "limit": "1GB"})
    spec["sample_every"] = 5
    ts = simsys.run(spec, seed=1).timeseries
    mem = ts[ts["metric"] == "memory"].set_index("time")["value"] / 1e6
    expected = {45: 135, 55: 100 + 45 + 10, 105: 100 + 95 + 110,   # both leaking
                115: 100 + 130, 145: 100 + 190,                     # A over, its bytes freed
                155: 100}                                           # both over
    for t, mb in expected.items():
        assert mem[float(t)] == pytest.approx(mb), t


def test_crash_loop_backoff_and_max_restarts():
    # Back-off 10 s × 2^k on top of the 10 s restart for each restart of a crash loop after
    # the first; after max_restarts restarts the replica stays down.
    spec = one_replica(
        [{"kind": "crash", "target": "m", "at": 10, "duration": 5000}],
        {"detection": 5, "restart": 10, "max_restarts": 4,
         "backoff": {"initial": 10, "multiplier": 2, "max": 300}},
    )
    inc = simsys.run(spec, seed=1).incidents
    waits = (inc["recovered_at"] - inc["detected_at"] - 10).dropna().tolist()
    assert waits == [0, 10, 20, 40]                   # initial × multiplier^k, k = 0, 1, 2
    assert len(inc) == 5
    assert math.isnan(inc["recovered_at"].iloc[-1])   # gave up: stays down to the end
    assert inc["detected_at"].iloc[-1] == inc["failed_at"].iloc[-1] + 5


def test_max_restarts_zero_never_restarts():
    spec = one_replica([{"kind": "crash", "target": "m", "at": 10}],
                       {"detection": 5, "restart": 10, "max_restarts": 0})
    inc = simsys.run(spec, seed=1).incidents
    assert len(inc) == 1 and inc["detected_at"].iloc[0] == 15
    assert math.isnan(inc["recovered_at"].iloc[0])


def test_backoff_is_capped_and_resets_after_a_quiet_spell():
    spec = one_replica(
        [{"kind": "crash", "target": "m", "at": 10, "duration": 600},
         {"kind": "crash", "target": "m", "at": 3000, "duration": 1}],
        {"detection": 5, "restart": 10, "reset_after": 1000,
         "backoff": {"initial": 10, "multiplier": 3, "max": 100}},
        duration=4000,
    )
    inc = simsys.run(spec, seed=1).incidents
    waits = (inc["recovered_at"] - inc["detected_at"] - 10).tolist()
    # 0, 10, 30, 90, then capped at 100 until the loop's fault ends; the crash at 3000 s comes
    # long after the last recovery, so it starts a new streak with no back-off.
    assert waits[:5] == [0, 10, 30, 90, 100]
    assert set(waits[4:-1]) == {100}
    assert inc["failed_at"].iloc[-1] == 3000 and waits[-1] == 0


# -- requests at failure ----------------------------------------------------------------------------
def test_queued_and_in_flight_requests_fail_with_the_replica():
    spec = {
        "name": "victims", "duration": 60,
        "services": {
            "front": {"workers": 1000, "calls": ["q"]},
            "q": {"workers": 2, "service_time": "1s"},
        },
        "workload": [{"type": "poisson", "rate": "3/s", "target": "front"}],
        "recovery": {"detection": 3, "restart": 5},
        "faults": [{"kind": "crash", "target": "q", "at": 30}],
    }
    r = simsys.run(spec, seed=1)
    df, inc = r.requests, r.incidents
    assert len(inc) == 1
    before = df[df["start"] < 30]
    held = before[before["end"] >= 30]
    # Everything q held at 30 s (2 in service, the rest queued) ends then, error by crash.
    assert len(held) >= 10
    assert (held["end"] == 30).all()
    assert (held["status"] == "error").all() and (held["cause"] == "crash").all()
    assert (held["failed_service"] == "q").all()
    assert (before.loc[before["end"] < 30, "status"] == "ok").all()
    # Until detection (33 s) requests still go to the dead replica and fail on arrival.
    blind = df[(df["start"] >= 30) & (df["start"] < 33)]
    assert len(blind) > 0
    assert (blind["cause"] == "crash").all() and np.allclose(blind["end"], blind["start"])
    # Detected and not yet restarted (33–38 s): no replica to send to.
    gone = df[(df["start"] >= 33) & (df["start"] < 38)]
    assert len(gone) > 0 and (gone["cause"] == "unavailable").all()
    # All the crash victims are counted on the incident; then q comes back empty.
    assert inc["requests_failed"].iloc[0] == (df["cause"] == "crash").sum()
    after = df[df["start"] >= 38]
    assert (after["status"] == "ok").all()
    assert after["latency"].min() == pytest.approx(1.0)


def test_undetected_replica_gets_traffic_until_detection_only():
    spec = {
        "name": "blind", "duration": 200,
        "services": {"r": {"replicas": 2, "workers": 10, "service_time": "10ms"}},
        "workload": [{"type": "poisson", "rate": "50/s", "target": "r"}],
        "recovery": {"detection": 5, "restart": 100},
        "faults": [{"kind": "crash", "target": "r", "at": 20, "mode": "one"}],
    }
    r = simsys.run(spec, seed=7)
    df, inc = r.requests, r.incidents
    victim = int(inc["instance"].iloc[0])
    blind = df[(df["start"] >= 20) & (df["start"] < 25)]
    to_victim = blind[blind["instance"] == victim]
    assert len(to_victim) > 50
    assert (to_victim["status"] == "error").all() and (to_victim["cause"] == "crash").all()
    assert (to_victim["failed_instance"] == victim).all()
    assert (blind.loc[blind["instance"] != victim, "status"] == "ok").all()
    # Counted on the incident: the ones routed there blind plus any it held at 20 s.
    crash = df[df["cause"] == "crash"]
    assert inc["requests_failed"].iloc[0] == len(crash)
    assert len(crash) - len(to_victim) <= 10
    # Detected at 25 s: nothing more is sent there until it is back at 125 s.
    out = df[(df["start"] >= 25) & (df["start"] < 125)]
    assert (out["instance"] != victim).all() and (out["status"] == "ok").all()
    back = df[df["start"] >= 125]
    assert (back["instance"] == victim).sum() > 1000


# -- determinism and common random numbers ----------------------------------------------------
def chaotic(monkey: bool = True) -> dict:
    spec = {
        "name": "crn", "duration": 300, "sample_every": 10,
        "services": {
            "gw": {"replicas": 2, "workers": 8, "service_time": {"dist": "exponential", "mean": "2ms"},
                   "calls": ["db"]},
            "db": {"replicas": 3, "workers": 4, "service_time": {"dist": "exponential", "mean": "5ms"},
                   "failures": {"mean_time_to_failure": 200}},
        },
        "links": {"default": {"latency": {"dist": "exponential", "mean": "1ms"}}},
        "workload": [{"type": "poisson", "rate": "100/s", "target": "gw"}],
        "recovery": {"health_check": {"interval": 2, "timeout": 0.5},
                     "restart": {"dist": "exponential", "mean": 10}},
        "faults": [{"kind": "latency", "target": "gw->db", "at": 100, "duration": 50,
                    "delay": {"dist": "exponential", "mean": "5ms"}}],
    }
    if monkey:
        spec["chaos"] = {"monkey": {"targets": ["gw", "db"], "mean_time_between_failures": 20,
                                    "max_concurrent": 3}}
    return spec


def test_same_seed_same_requests_and_incidents():
    a, b = simsys.run(chaotic(), seed=9), simsys.run(chaotic(), seed=9)
    assert len(a.incidents) > 10
    pd.testing.assert_frame_equal(a.requests, b.requests)
    pd.testing.assert_frame_equal(a.incidents, b.incidents)
    pd.testing.assert_frame_equal(a.chaos, b.chaos)
    c = simsys.run(chaotic(), seed=10)
    assert not a.incidents["failed_at"].equals(c.incidents["failed_at"])


def test_chaos_does_not_move_the_arrivals():
    calm, wild = simsys.run(chaotic(monkey=False), seed=9), simsys.run(chaotic(), seed=9)
    assert len(wild.chaos) > 5 and (wild.requests["status"] != "ok").sum() > 10
    cut = 290.0  # requests still in flight at the end are not listed; all finish within 10 s
    starts_calm = np.sort(calm.requests.loc[calm.requests["start"] < cut, "start"].to_numpy())
    starts_wild = np.sort(wild.requests.loc[wild.requests["start"] < cut, "start"].to_numpy())
    assert np.array_equal(starts_calm, starts_wild)
    # The independent failures of db draw from their own streams too: a db replica whose first
    # incident in the chaotic run is its own failure (the monkey had not touched it yet) fails
    # at the same time as in the calm run.
    calm_first = calm.incidents[calm.incidents["service"] == "db"].groupby("instance").first()
    wild_first = wild.incidents[wild.incidents["service"] == "db"].groupby("instance").first()
    same = wild_first[wild_first["cause"] == "failures"]
    assert len(same) > 0
    for replica, row in same.iterrows():
        assert row["failed_at"] == calm_first.loc[replica, "failed_at"]


def test_availability_counts_a_crash_loop_as_down():
    """A replica restarted at the very instant its crash-loop fault kills it again is down all
    along: its recovery and its next failure share a time, and the recovery must count first
    (counted the other way, availability read 1.0 during the loop)."""
    spec = {"duration": "90s",
            "services": {"api": {"replicas": 1, "workers": 4, "service_time": "5ms"}},
            "workload": [{"type": "poisson", "rate": "50/s", "target": "api"}],
            "recovery": {"detection": "2s", "restart": "10s"},
            "faults": [{"name": "loop", "kind": "crash", "target": "api", "at": "30s",
                        "duration": "60s"}]}
    r = simsys.run(spec, seed=1)
    inc = r.incidents
    assert (inc["failed_at"].iloc[1:].to_numpy() == inc["recovered_at"].iloc[:-1].to_numpy()).all()
    assert r.availability_between("api", 0, 30) == 1.0
    assert r.availability_between("api", 30, 90) == 0.0
    assert r.summary()["services"]["api"]["availability"] == pytest.approx(30 / 90)
    assert (r.requests.loc[r.requests["end"] > 31, "status"] == "error").all()
