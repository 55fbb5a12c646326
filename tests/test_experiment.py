"""Steady-state experiments and their Chaos Toolkit journal.

The flagship experiment (scenarios/chaos-checkout.yaml) must hold with three catalog replicas
and deviate with one; the journal must carry Chaos Toolkit's keys so its tools can read it; and
rollbacks must end a method's fault early, which is checked on exact request latencies.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import simsys

CHECKOUT = Path(__file__).resolve().parent.parent / "scenarios" / "chaos-checkout.yaml"

TOP_KEYS = {"experiment", "start", "status", "deviated", "steady_states", "run", "rollbacks",
            "end", "duration"}
PROBE_KEYS = {"activity", "output", "status", "tolerance_met", "start", "end", "duration"}
ACTION_KEYS = {"activity", "output", "status", "start", "end", "duration"}


@pytest.fixture(scope="module")
def checkout() -> dict[int, simsys.Result]:
    return {n: simsys.run(CHECKOUT, overrides={"services.catalog.replicas": n}) for n in (3, 1)}


def check_journal_shape(j: dict) -> None:
    """chaoslib 1.44's journal: its keys, its statuses, plain JSON; simsys's own data only in
    the ``simsys`` extension."""
    assert TOP_KEYS <= set(j)
    assert j["chaoslib-version"] == "1.44.0"
    assert set(j["steady_states"]) == {"before", "after", "during"}
    assert j["steady_states"]["during"] == []  # chaoslib's default strategy never checks during
    hypotheses = [h for h in (j["steady_states"]["before"], j["steady_states"]["after"]) if h]
    for h in hypotheses:
        assert set(h) == {"steady_state_met", "probes"}
        assert isinstance(h["steady_state_met"], bool)
        assert h["probes"]
        for p in h["probes"]:
            assert PROBE_KEYS <= set(p), set(p)
            assert p["activity"]["type"] == "probe"
            assert p["activity"]["provider"]["module"] == "simsys.chaostoolkit"
            assert p["activity"]["tolerance"]["type"] == "range"
            assert p["status"] in {"succeeded", "failed"}
            assert (p["status"] == "failed") == (p["output"] is None)
            assert p["duration"] >= 0
        # probes run in order and stop at the first one out of tolerance
        met = [p["tolerance_met"] for p in h["probes"]]
        assert met[:-1] == [True] * (len(met) - 1)
        assert h["steady_state_met"] == met[-1]
    for a in [*j["run"], *j["rollbacks"]]:
        assert ACTION_KEYS <= set(a), set(a)
        assert a["activity"]["type"] == "action" and "simsys" not in a
    assert j["status"] in {"completed", "failed", "aborted", "interrupted"}
    assert isinstance(j["deviated"], bool)
    assert [e["name"] for e in j["extensions"]] == ["simsys"]
    for stamp in (j["start"], j["end"], *[a["start"] for a in j["run"]]):
        assert stamp.endswith("+00:00")  # UTC-aware
    # Plain, strict JSON: no NaN, no numpy scalars, no tuples that would not round-trip.
    text = json.dumps(j, allow_nan=False)
    assert json.loads(text)["status"] == j["status"]


def test_checkout_holds_with_three_catalog_replicas(checkout):
    j = checkout[3].journal
    check_journal_shape(j)
    assert j["status"] == "completed" and j["deviated"] is False
    assert j["steady_states"]["before"]["steady_state_met"]
    assert j["steady_states"]["after"]["steady_state_met"]
    # The method did act: it put a catalog replica in a crash loop at 3 minutes.
    inc = checkout[3].incidents
    assert ((inc["service"] == "catalog") & (inc["failed_at"] == 180)).any()
    assert j["run"][0]["activity"]["name"] == "kill a catalog replica"
    assert j["run"][0]["activity"]["provider"]["func"] == "kill_replicas"
    assert j["run"][0]["start"] == "2026-01-05T00:03:00+00:00"
    assert [a["activity"]["provider"]["func"] for a in j["run"]] == ["kill_replicas", "wait"]


def test_checkout_deviates_with_one_catalog_replica(checkout):
    j = checkout[1].journal
    check_journal_shape(j)
    assert j["steady_states"]["before"]["steady_state_met"]
    assert j["deviated"] is True
    # at the end the only catalog replica is down: "catalog is up" is out of tolerance, so
    # (as chaoslib does) the p99 probe is not run; every probe run could measure: "completed"
    after = j["steady_states"]["after"]
    assert after["steady_state_met"] is False
    [probe] = after["probes"]
    assert probe["activity"]["name"] == "catalog is up" and probe["output"] < 0.999
    assert probe["status"] == "succeeded" and j["status"] == "completed"
    assert checkout[1].summary()["services"]["catalog"]["availability"] < 1.0
    ext = j["extensions"][0]
    assert ext["lost_at"] and ext["regained_at"] is None
    assert j == json.loads(json.dumps(j))  # the journal is plain data


def test_journal_window_arithmetic(checkout):
    j = checkout[3].journal
    ext = j["extensions"][0]
    window = ext["window"]
    probe = j["steady_states"]["before"]["probes"][0]
    assert probe["start"] == "2026-01-05T00:02:30+00:00" and probe["end"] == "2026-01-05T00:03:00+00:00"
    assert probe["duration"] == window == 30
    assert j["steady_states"]["after"]["probes"][0]["end"] == "2026-01-05T00:08:00+00:00"
    assert j["duration"] == 480 and ext["method_started_at"] == 180


def rollback_scenario(rollback_at: float | None) -> dict:
    spec = {
        "name": "rollback",
        "duration": 300,
        "services": {
            "a": {"workers": 1000, "service_time": "10ms", "calls": ["b"]},
            "b": {"workers": 1000, "service_time": "5ms"},
        },
        "links": {"default": {"latency": "2ms"}},
        "workload": [{"type": "poisson", "rate": "50/s", "target": "a"}],
        "experiment": {
            "title": "slow link",
            "steady-state-hypothesis": {
                "probes": [{"name": "fast", "metric": "latency.max", "window": "20s",
                            "tolerance": ["0ms", "30ms"]}],
            },
            "method": [{"name": "slow a->b", "kind": "latency", "target": "a->b",
                        "delay": "50ms", "at": 60, "duration": 200}],
        },
    }
    if rollback_at is not None:
        spec["experiment"]["rollbacks"] = [{"name": "undo", "at": rollback_at, "ends": "slow a->b"}]
    return spec


@pytest.mark.parametrize("rollback_at", [120.0, None])
def test_rollback_ends_the_fault_early(rollback_at):
    r = simsys.run(rollback_scenario(rollback_at), seed=1)
    end = 260.0 if rollback_at is None else rollback_at
    df = r.requests
    assert (df["status"] == "ok").all()
    for row in df.itertuples():
        call = row.start + 0.010
        back = call + 0.002 + (0.050 if 60 <= call < end else 0) + 0.005
        done = back + 0.002 + (0.050 if 60 <= back < end else 0)
        assert abs(row.end - done) < 1e-9, row
    after = df[df["start"] > end + 1]
    assert len(after) > 500 and np.allclose(after["latency"], 0.019)
    j = r.journal
    check_journal_shape(j)
    funcs = [(a["activity"]["provider"]["func"], a["start"][11:19]) for a in j["run"]]
    if rollback_at is None:
        assert funcs == [("add_latency", "00:01:00"), ("wait", "00:01:00")]
    else:  # the rollback ends the fault in the method's timeline, at its time
        assert funcs == [("add_latency", "00:01:00"), ("wait", "00:01:00"),
                         ("end_faults", "00:02:00"), ("wait", "00:02:00")]
    # The hypothesis breaks while the link is slow and is regained once it is not; chaoslib
    # only looks before and after the method, so the experiment did not deviate.
    assert j["deviated"] is False and j["status"] == "completed"
    assert j["steady_states"]["after"]["steady_state_met"]
    ext = j["extensions"][0]
    assert ext["regained_at"] is not None and ext["lost_at"]
    assert max(ext["lost_at"]) <= end + 20


def test_steady_state_not_met_before_the_method_stops_the_experiment():
    # chaoslib: the method does not run (run: [], after: null); the status is "completed"
    # (every probe could measure) and the experiment did not deviate
    spec = rollback_scenario(None)
    spec["experiment"]["steady-state-hypothesis"]["probes"][0]["tolerance"] = ["0ms", "10ms"]
    j = simsys.run(spec, seed=1).journal
    check_journal_shape(j)
    assert j["steady_states"]["before"]["steady_state_met"] is False
    assert j["run"] == [] and j["steady_states"]["after"] is None
    assert j["status"] == "completed" and j["deviated"] is False
    from simsys.experiment import negative

    assert negative(j)  # but simsys run --fail-on-deviation still says no


def test_journal_times_are_utc_from_the_scenarios_start():
    spec = rollback_scenario(120.0)
    spec["duration"] = 200
    plain = simsys.run(spec).journal
    assert plain["start"] == "2026-01-05T00:00:00+00:00"  # no start given: Monday midnight UTC
    spec["chaos"] = {"monkey": {"targets": ["b"], "start_at": "2026-03-02T09:00:00",
                                "mean_time_between_failures": "10h"}}
    j = simsys.run(spec).journal
    assert j["start"] == "2026-03-02T09:00:00+00:00" and j["end"] == "2026-03-02T09:03:20+00:00"
    assert j["run"][0]["start"] == "2026-03-02T09:01:00+00:00"  # the method's action at 60 s
    spec["experiment"]["start_at"] = "2026-06-01T12:00:00Z"
    j = simsys.run(spec).journal
    assert j["start"] == "2026-06-01T12:00:00+00:00"
