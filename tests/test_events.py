"""Event-level tests: tiny scenarios with constant times, whose every request we can work out by
hand. Each asserts the whole log, as simpy's own tests do.

A closed workload with ``users: n`` and constant ``think_time`` sends its first requests at
``think_time`` and each next one ``think_time`` after the previous answer; a request's row is
``(id, start, end, status, ...)`` in seconds. Times are sums of binary fractions (0.25, 0.125,
…) so the floating-point sums are exact.
"""

from __future__ import annotations

from typing import Any

import simsys


def closed(users: int = 1, think: str = "0s", target: str = "web", name: str | None = None,
           ) -> dict[str, Any]:
    w = {"type": "closed", "users": users, "think_time": think, "target": target}
    if name:
        w["name"] = name
    return w


def log(spec: dict[str, Any], *cols: str) -> list[tuple]:
    """The requests table as a list of tuples of ``cols`` (default: id, start, end, status)."""
    df = simsys.run(spec).requests
    cols = cols or ("id", "start", "end", "status")
    return [tuple(row) for row in df[list(cols)].itertuples(index=False)]


class _NaN:
    """Equal to NaN, the failed_service of a request that did not fail (pandas gives nan)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, float) and other != other

    def __repr__(self) -> str:
        return "nan"


_NAN = _NaN()


class _Missing:
    """Equal to pandas' NA, the failed_instance of a request that did not fail."""

    def __eq__(self, other: object) -> bool:
        import pandas as pd

        return other is pd.NA

    def __repr__(self) -> str:
        return "<NA>"


_NA = _Missing()


# -- queueing -----------------------------------------------------------------------------------
def test_one_worker_serves_in_arrival_order():
    # Three users at t=0, one worker, 1 s each: the queue drains 0, 1, 2, then each user's
    # next request joins the back of the queue as its previous one is answered.
    spec = {"duration": "6.5s", "services": {"web": {"service_time": "1s"}},
            "workload": [closed(users=3)]}
    assert log(spec) == [
        (0, 0.0, 1.0, "ok"),
        (1, 0.0, 2.0, "ok"),
        (2, 0.0, 3.0, "ok"),
        (3, 1.0, 4.0, "ok"),
        (4, 2.0, 5.0, "ok"),
        (5, 3.0, 6.0, "ok"),
    ]


def test_fifo_across_sources():
    # a arrives at 0.25, b at 0.5, c at 0.75; a's second request (1.5) waits behind b and c.
    spec = {
        "duration": "4.5s",
        "services": {"web": {"service_time": "1s"}},
        "workload": [closed(think="0.25s", name="a"), closed(think="0.5s", name="b"),
                     closed(think="0.75s", name="c")],
    }
    assert log(spec, "source", "start", "end") == [
        ("a", 0.25, 1.25),
        ("b", 0.5, 2.25),
        ("c", 0.75, 3.25),
        ("a", 1.5, 4.25),
    ]


def test_workers_serve_in_parallel():
    spec = {"duration": "2.5s", "services": {"web": {"workers": 2, "service_time": "1s"}},
            "workload": [closed(users=3)]}
    assert log(spec) == [
        (0, 0.0, 1.0, "ok"),
        (1, 0.0, 1.0, "ok"),
        (2, 0.0, 2.0, "ok"),
        (3, 1.0, 2.0, "ok"),
    ]


def test_full_queue_rejects():
    # One worker, room for one waiting. Three users think 0.25 s. At 0.25: 0 is served, 1 waits,
    # 2 is rejected at once; its user retries every 0.25 s. At 1.25, 0 ends and 1 starts, and
    # the retry of that instant (6) finds the queue free: it waits, and ends after the run.
    spec = {
        "duration": "3.1s",
        "services": {"web": {"service_time": "1s", "queue": 1}},
        "workload": [closed(users=3, think="0.25s")],
    }
    assert log(spec, "id", "start", "end", "status", "failed_service", "cause") == [
        (0, 0.25, 1.25, "ok", _NAN, _NAN),
        (1, 0.25, 2.25, "ok", _NAN, _NAN),
        (2, 0.25, 0.25, "rejected", "web", "rejected"),
        (3, 0.5, 0.5, "rejected", "web", "rejected"),
        (4, 0.75, 0.75, "rejected", "web", "rejected"),
        (5, 1.0, 1.0, "rejected", "web", "rejected"),
        (7, 1.5, 1.5, "rejected", "web", "rejected"),
        (8, 1.75, 1.75, "rejected", "web", "rejected"),
        (9, 2.0, 2.0, "rejected", "web", "rejected"),
        (11, 2.5, 2.5, "rejected", "web", "rejected"),
        (12, 2.75, 2.75, "rejected", "web", "rejected"),
        (13, 3.0, 3.0, "rejected", "web", "rejected"),
    ]


def test_queue_zero_means_no_waiting_room():
    # At 1.5 the answer to 0 comes before the retry scheduled for the same instant: 3 is served.
    spec = {"duration": "3s", "services": {"web": {"service_time": "1s", "queue": 0}},
            "workload": [closed(users=2, think="0.5s")]}
    assert log(spec) == [
        (0, 0.5, 1.5, "ok"),
        (1, 0.5, 0.5, "rejected"),
        (2, 1.0, 1.0, "rejected"),
        (3, 1.5, 2.5, "ok"),
        (4, 2.0, 2.0, "rejected"),
    ]


def test_rejection_downstream_fails_the_caller():
    # Both users reach web at 0.5 and call db at 1.5; db has one worker and no queue.
    spec = {
        "duration": "3s",
        "services": {"web": {"workers": 2, "service_time": "1s", "calls": ["db"]},
                     "db": {"queue": 0, "service_time": "0.5s"}},
        "workload": [closed(users=2, think="0.5s")],
    }
    assert log(spec, "id", "start", "end", "status", "failed_service", "failed_instance") == [
        (0, 0.5, 2.0, "ok", _NAN, _NA),
        (1, 0.5, 1.5, "rejected", "db", 0),
    ]


# -- balancing ----------------------------------------------------------------------------------
def test_round_robin_cycles_through_replicas():
    spec = {"duration": "6.5s", "services": {"web": {"replicas": 3, "service_time": "1s"}},
            "workload": [closed()]}
    assert log(spec, "id", "instance") == [(0, 0), (1, 1), (2, 2), (3, 0), (4, 1), (5, 2)]


def test_round_robin_ignores_load():
    r = simsys.run({"duration": "20s", "seed": 4,
                    "services": {"web": {"replicas": 3, "service_time": "1ms"}},
                    "workload": [{"type": "poisson", "rate": "50/s", "target": "web"}]})
    df = r.requests
    assert len(df) > 800
    assert (df["instance"] == df["id"] % 3).all()


def test_least_connections_picks_the_idle_replica():
    # Two users, two replicas with one worker each: each request goes to the idle replica.
    spec = {"duration": "3.5s",
            "services": {"web": {"replicas": 2, "balancer": "least_connections",
                                 "service_time": "1s"}},
            "workload": [closed(users=2)]}
    assert log(spec, "id", "start", "end", "instance") == [
        (0, 0.0, 1.0, 0), (1, 0.0, 1.0, 1),
        (2, 1.0, 2.0, 0), (3, 1.0, 2.0, 1),
        (4, 2.0, 3.0, 0), (5, 2.0, 3.0, 1),
    ]


# -- links --------------------------------------------------------------------------------------
def test_link_latency_is_paid_both_ways():
    # latency = service + 2 L
    spec = {"duration": "4s", "services": {"web": {"service_time": "1s"}},
            "links": {"client->web": {"latency": "0.125s"}}, "workload": [closed()]}
    assert log(spec, "id", "start", "end", "latency") == [
        (0, 0.0, 1.25, 1.25),
        (1, 1.25, 2.5, 1.25),
        (2, 2.5, 3.75, 1.25),
    ]


def test_latency_along_a_chain():
    # 2 × 0.125 (client link) + 1 (web) + 2 × 0.0625 (web->db) + 0.5 (db) = 1.875
    spec = {
        "duration": "4s",
        "services": {"web": {"service_time": "1s", "calls": ["db"]}, "db": {"service_time": "0.5s"}},
        "links": {"client->web": {"latency": "0.125s"}, "web->db": {"latency": "0.0625s"}},
        "workload": [closed()],
    }
    assert log(spec, "id", "start", "end") == [(0, 0.0, 1.875), (1, 1.875, 3.75)]


def test_default_link_is_for_services_not_clients():
    # web->db pays the default 0.25 s twice; the client reaches web directly.
    spec = {
        "duration": "4.5s",
        "services": {"web": {"service_time": "1s", "calls": ["db"]}, "db": {"service_time": "0.5s"}},
        "links": {"default": {"latency": "0.25s"}},
        "workload": [closed()],
    }
    assert log(spec, "id", "start", "end") == [(0, 0.0, 2.0), (1, 2.0, 4.0)]


def test_calls_are_made_in_order_and_skipped_by_probability():
    # web 0.25 + a 0.5 + c 1 = 1.75; b (probability 0) is never called.
    spec = {
        "duration": "4s",
        "services": {
            "web": {"service_time": "0.25s",
                    "calls": ["a", {"service": "b", "probability": 0}, "c"]},
            "a": {"service_time": "0.5s"}, "b": {"service_time": "8s"}, "c": {"service_time": "1s"},
        },
        "workload": [closed()],
    }
    assert log(spec, "id", "start", "end") == [(0, 0.0, 1.75), (1, 1.75, 3.5)]


def test_total_loss_on_the_client_link_drops_every_request():
    spec = {"duration": "4.5s", "services": {"web": {"service_time": "1s"}},
            "links": {"client->web": {"loss": 1.0}}, "workload": [closed(think="1s")]}
    assert log(spec, "id", "start", "end", "status", "failed_service") == [
        (0, 1.0, 1.0, "dropped", "web"),
        (1, 2.0, 2.0, "dropped", "web"),
        (2, 3.0, 3.0, "dropped", "web"),
        (3, 4.0, 4.0, "dropped", "web"),
    ]


def test_total_loss_on_a_call_drops_after_the_callers_work():
    spec = {
        "duration": "4.5s",
        "services": {"web": {"service_time": "1s", "calls": ["db"]}, "db": {}},
        "links": {"web->db": {"loss": "100%"}},
        "workload": [closed(think="0.5s")],
    }
    assert log(spec, "id", "start", "end", "status", "failed_service") == [
        (0, 0.5, 1.5, "dropped", "db"),
        (1, 2.0, 3.0, "dropped", "db"),
    ]


def test_loss_everywhere_drops_all_and_no_loss_drops_none():
    def spec(loss: float) -> dict[str, Any]:
        return {
            "duration": "10s", "seed": 2,
            "services": {"web": {"workers": 8, "service_time": "1ms", "calls": ["db"]},
                         "db": {"workers": 8, "service_time": "1ms"}},
            "links": {"default": {"latency": "1ms", "loss": loss},
                      "client->web": {"latency": "1ms", "loss": loss}},
            "workload": [{"type": "poisson", "rate": "100/s", "target": "web"}],
        }

    lossy = simsys.run(spec(1.0)).requests
    assert len(lossy) > 900 and (lossy["status"] == "dropped").all()
    clean = simsys.run(spec(0.0)).requests
    assert len(clean) > 900 and (clean["status"] == "ok").all()


# -- what is sampled ------------------------------------------------------------------------------
SATURATED = {
    "duration": "3s", "sample_every": "1s",
    "services": {"web": {"service_time": "0.75s",
                         "memory": {"base": "100MB", "per_request": "1MB"}}},
    "workload": [closed(users=3)],
}


def _samples(result: simsys.Result):
    ts = result.timeseries
    ts = ts[ts["service"] == "web"]
    metrics = ["queue_length", "busy_workers", "in_system", "memory", "up"]
    ts = ts[ts["metric"].isin(metrics) & (ts["instance"] == 0)]
    return ts.pivot_table(index="time", columns="metric", values="value", observed=True)[metrics]


def test_timeseries_of_a_saturated_server():
    # Three users who never think, one worker: one in service and two waiting at every sample;
    # memory = base + per_request × requests held.
    r = simsys.run(SATURATED)
    wide = _samples(r)
    assert [tuple(row) for row in wide.loc[[0.0, 1.0, 2.0]].itertuples()] == [
        (0.0, 2, 1, 3, 103e6, 1),
        (1.0, 2, 1, 3, 103e6, 1),
        (2.0, 2, 1, 3, 103e6, 1),
    ]
    assert r.summary()["services"]["web"]["utilization"] == 1.0
    assert r.summary()["services"]["web"]["memory_peak"] == 103e6


def test_timeseries_includes_the_last_instant():
    assert list(_samples(simsys.run(SATURATED)).index) == [0.0, 1.0, 2.0, 3.0]
