"""Reactive autoscaling, event by event: constant service times and closed users make the
utilisation each decision sees exact, so the replica count, when new replicas start serving
(timeseries metric ``serving``, per replica) and the bill can be worked out by hand.

Every ``interval`` the autoscaler wants ``ceil(serving × utilisation / target)`` replicas within
[min, max], makes no change within ``cooldown`` of the last one, and a new replica serves after
``startup`` (billed from the decision). The load stops when a latency fault holds every request
on the client link (1000 s) from a given time.
"""

from __future__ import annotations

from typing import Any

import matplotlib
import matplotlib.pyplot
import pytest

import simsys


def scaled(users: int = 2, stop_at: str = "40s", duration: str = "60s", **autoscale: Any,
           ) -> dict[str, Any]:
    spec = {"min": 1, "max": 3, "target_utilization": "50%", "interval": "10s",
            "cooldown": "0s", "startup": "5s", **autoscale}
    return {"duration": duration,
            "services": {"web": {"service_time": "1s", "balancer": "least_connections",
                                 "price": 3.6, "autoscale": spec}},
            "faults": [{"kind": "latency", "target": "client->web", "delay": "1000s",
                        "at": stop_at}],
            "workload": [{"type": "closed", "users": users, "think_time": "0s",
                          "target": "web"}]}


def serving(r: simsys.Result) -> dict[int, list[float]]:
    """Replica → times (whole seconds) at which it was sampled serving."""
    ts = r.timeseries
    ts = ts[(ts["metric"] == "serving") & (ts["service"] == "web") & (ts["value"] == 1.0)]
    return {int(i): sorted(g["time"].tolist()) for i, g in ts.groupby("instance")}


def span(a: float, b: float) -> list[float]:
    return [float(t) for t in range(int(a), int(b) + 1)]


def changes(r: simsys.Result) -> list[tuple[float, int]]:
    return list(r.records.stats["autoscale"]["web"])


def test_replicas_follow_the_load_up_and_down_and_are_billed_per_second():
    # Two users, 1 s each, think 0. [0, 10): one replica busy all the time, utilisation 1 →
    # want ceil(1 × 1 / 0.5) = 2 at 10; the new replica serves at 15. [10, 20): busy 10 + 5 of
    # 2 × 10 → 0.75 → want 3 at 20, serving at 25. [20, 30) and [30, 40): two of three busy →
    # want 4, capped at 3. From 40 no request arrives: at 50 utilisation 0 → min, 1.
    r = simsys.run(scaled())
    assert changes(r) == [(0.0, 1), (10.0, 2), (20.0, 3), (50.0, 1)]
    assert serving(r) == {0: span(0, 60), 1: span(15, 49), 2: span(25, 49)}
    df = r.requests
    assert df.loc[df["instance"] == 1, "start"].min() == 15.0   # not before it serves
    # Billed from each decision: 10 × 1 + 10 × 2 + 30 × 3 + 10 × 1 replica-seconds.
    web = r.summary()["services"]["web"]
    assert web["replica_seconds"] == 130.0
    assert web["cost"] == pytest.approx(130.0 * 3.6 / 3600)
    assert r.summary()["cost"] == pytest.approx(web["cost"])
    # the same decisions in the timeseries, and drawn
    ts = r.timeseries
    launched = ts[ts["metric"] == "replicas"]
    assert set(launched["service"]) == {"web"} and set(launched["instance"]) == {-1}
    assert list(zip(launched["time"], launched["value"], strict=True)) == changes(r)
    ax = r.plot.scaling()
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["web: launched", "web: serving"]
    matplotlib.pyplot.close(ax.figure)


def test_no_change_within_the_cooldown():
    # As above, but 15 s of cooldown: the change due at 20 waits for the tick at 30 (when two
    # of two replicas are busy: want 4, capped at 3), and the scale-down at 50 is 20 s after it.
    r = simsys.run(scaled(cooldown="15s"))
    assert changes(r) == [(0.0, 1), (10.0, 2), (30.0, 3), (50.0, 1)]
    assert serving(r) == {0: span(0, 60), 1: span(15, 49), 2: span(35, 49)}
    assert r.summary()["services"]["web"]["replica_seconds"] == 10 + 20 * 2 + 20 * 3 + 10


def test_scaling_up_again_while_a_replica_is_still_starting_starts_another():
    # min 2, 10 ms per request, 25 s to start. Poisson 120/s: utilisation ≈ 0.6 over [0, 10)
    # (1200 arrivals: well inside (0.5, 0.75)) → want ceil(2 × 0.6 / 0.5) = 3 at 10; the third
    # replica starts until 35. From 10 the rate is 180/s: ≈ 0.9 on the two serving replicas →
    # want 4 at 20: a fourth replica, serving at 45 — not the third again. After that the count
    # holds (at 30: 0.9 on two; at 40: 18 busy-seconds over three, 0.6 → 4; at 50: 0.45 → 4).
    spec = {"duration": "60s",
            "services": {"web": {"service_time": "10ms", "replicas": 2, "autoscale": {
                "min": 2, "max": 6, "target_utilization": "50%", "interval": "10s",
                "cooldown": "0s", "startup": "25s"}}},
            "workload": [{"type": "poisson", "rate": "120/s", "target": "web",
                          "spikes": [{"at": "10s", "duration": "100s", "factor": 1.5}]}]}
    r = simsys.run(spec, seed=1)
    assert changes(r) == [(0.0, 2), (10.0, 3), (20.0, 4)]
    got = serving(r)
    assert got[2] == span(35, 60) and got[3] == span(45, 60)
    assert set(r.requests.loc[r.requests["start"] > 46, "instance"]) == {0, 1, 2, 3}


def test_scaling_down_while_a_replica_is_starting_keeps_the_serving_ones():
    # As above, but the load stops at 10: at 20 utilisation is low and the count goes back to
    # min (2): the replica still starting is cancelled, the two serving ones stay.
    spec = scaled(users=1, stop_at="10s", duration="40s", min=2, max=4, startup="25s")
    spec["workload"].append({"type": "closed", "users": 1, "think_time": "5s",
                             "target": "web"})
    r = simsys.run(spec)
    assert changes(r) == [(0.0, 2), (10.0, 3), (20.0, 2)]
    assert serving(r) == {0: span(0, 40), 1: span(0, 40)}


@pytest.mark.parametrize("autoscale, path", [
    ({"min": 3, "max": 2}, "services.web.autoscale"),
    ({"max": 0}, "services.web.autoscale.max"),
    ({"max": 4, "target_utilization": "0%"}, "services.web.autoscale"),
])
def test_bad_autoscale_is_refused_naming_the_field(autoscale, path):
    with pytest.raises(simsys.ScenarioError) as err:
        simsys.load({"services": {"web": {"autoscale": autoscale}}})
    assert str(err.value).startswith(path + ":"), str(err.value)
