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
    assert TOP_KEYS <= set(j)
    assert set(j["steady_states"]) == {"before", "after", "during"}
    hypotheses = [j["steady_states"]["before"], j["steady_states"]["after"],
                  *j["steady_states"]["during"]]
    for h in hypotheses:
        assert {"steady_state_met", "probes"} <= set(h)
        assert isinstance(h["steady_state_met"], bool)
        assert h["probes"]
        for p in h["probes"]:
            assert PROBE_KEYS <= set(p), set(p)
            assert p["activity"]["type"] == "probe"
            assert isinstance(p["tolerance_met"], bool)
            assert p["status"] == "succeeded"
            assert p["duration"] >= 0
        assert h["steady_state_met"] == all(p["tolerance_met"] for p in h["probes"])
    for a in [*j["run"], *j["rollbacks"]]:
        assert ACTION_KEYS <= set(a), set(a)
        assert a["activity"]["type"] == "action"
    assert j["status"] in {"completed", "failed", "aborted", "interrupted"}
    assert isinstance(j["deviated"], bool)
    # Plain, strict JSON: no NaN, no numpy scalars, no tuples that would not round-trip.
    text = json.dumps(j, allow_nan=False)
    assert json.loads(text)["status"] == j["status"]


def test_checkout_holds_with_three_catalog_replicas(checkout):
    j = checkout[3].journal
    check_journal_shape(j)
    assert j["status"] == "completed" and j["deviated"] is False
    assert j["steady_states"]["before"]["steady_state_met"]
    assert j["steady_states"]["after"]["steady_state_met"]
    assert all(h["steady_state_met"] for h in j["steady_states"]["during"])
    assert len(j["steady_states"]["during"]) >= 5
    # The method did act: it killed a catalog replica at 3 minutes.
    inc = checkout[3].incidents
    assert ((inc["service"] == "catalog") & (inc["failed_at"] == 180)).any()
    assert j["run"][0]["activity"]["name"] == "kill a catalog replica"
    assert j["run"][0]["simsys"]["started_at"] == 180


def test_checkout_deviates_with_one_catalog_replica(checkout):
    j = checkout[1].journal
    check_journal_shape(j)
    assert j["steady_states"]["before"]["steady_state_met"]
    assert j["deviated"] is True and j["status"] == "failed"
    failed = [h for h in j["steady_states"]["during"] if not h["steady_state_met"]]
    assert failed
    # The availability probe is what broke: catalog was down at times.
    probe = failed[0]["probes"][0]
    assert probe["activity"]["name"] == "catalog is up"
    assert probe["tolerance_met"] is False and probe["output"] < 0.999
    assert checkout[1].summary()["services"]["catalog"]["availability"] < 1.0
    assert j["simsys"]["failed_checks"]
    assert j == json.loads(json.dumps(j))  # the journal is plain data


def test_journal_window_arithmetic(checkout):
    j = checkout[3].journal
    window = j["simsys"]["window"]
    before = j["steady_states"]["before"]
    probe = before["probes"][0]
    assert probe["simsys"]["window"] == [180 - window, 180]
    during_at = [h["simsys"]["at"] for h in j["steady_states"]["during"]]
    assert during_at == pytest.approx(list(np.arange(180 + window, 480 - window + 1e-9, window)))
    assert j["steady_states"]["after"]["simsys"]["at"] == 480
    assert j["duration"] == 480


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
    assert j["run"][0]["simsys"] == {"started_at": 60, "ended_at": end}
    # The hypothesis breaks while the link is slow and is regained once it is not.
    assert j["deviated"] is True
    assert j["steady_states"]["after"]["steady_state_met"]
    assert j["simsys"]["regained_at"] is not None
    assert max(j["simsys"]["failed_checks"]) <= end + 20
    if rollback_at is not None:
        [rb] = j["rollbacks"]
        assert rb["activity"]["name"] == "undo"
        assert rb["simsys"]["at"] == rollback_at


def test_steady_state_not_met_before_the_method_fails_the_experiment():
    spec = rollback_scenario(None)
    spec["experiment"]["steady-state-hypothesis"]["probes"][0]["tolerance"] = ["0ms", "10ms"]
    j = simsys.run(spec, seed=1).journal
    check_journal_shape(j)
    assert j["steady_states"]["before"]["steady_state_met"] is False
    assert j["status"] == "failed" and j["deviated"] is False


def test_journal_times_are_on_the_monkeys_calendar():
    spec = rollback_scenario(120.0)
    spec["duration"] = 200
    plain = simsys.run(spec).journal
    assert plain["start"] == "2026-01-05T00:00:00"  # no monkey: a fixed Monday midnight
    spec["chaos"] = {"monkey": {"targets": ["b"], "start_at": "2026-03-02T09:00:00",
                                "mean_time_between_failures": "10h"}}
    j = simsys.run(spec).journal
    assert j["start"] == "2026-03-02T09:00:00" and j["end"] == "2026-03-02T09:03:20"
    assert j["run"][0]["start"] == "2026-03-02T09:01:00"  # the method's action at 60 s
    assert j["rollbacks"][0]["start"] == "2026-03-02T09:02:00"
