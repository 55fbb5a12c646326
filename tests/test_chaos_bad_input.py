"""Bad chaos input is refused at the door, naming the field: through simsys.load (a
ScenarioError whose text holds the field path) and through ``simsys validate`` (exit 2, every
problem on stderr, no traceback)."""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import simsys

GOOD = {
    "name": "shop",
    "duration": 60,
    "services": {"gateway": {"replicas": 2, "calls": ["db"]}, "db": {"replicas": 3}},
    "workload": [{"type": "poisson", "rate": "5/s", "target": "gateway"}],
    "chaos": {"monkey": {"targets": ["db"], "min_healthy": 1}},
    "faults": [{"kind": "crash", "target": "db", "at": 10}],
    "experiment": {
        "title": "db survives",
        "steady-state-hypothesis": {
            "probes": [{"name": "ok", "metric": "error_rate", "tolerance": [0, 0.01]}],
        },
        "method": [{"name": "slow", "kind": "latency", "target": "gateway->db", "delay": "5ms",
                    "at": 30}],
        "rollbacks": [{"at": 50, "ends": "slow"}],
    },
}


def edited(path: str, value) -> dict:
    """GOOD with ``value`` put at dotted ``path`` (list items by number)."""
    spec = copy.deepcopy(GOOD)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = spec
    for p in parents:
        node = node[p]
    node[last] = value
    return spec


def test_the_good_scenario_loads_and_runs():
    simsys.load(GOOD)
    r = simsys.run(GOOD, seed=1)
    assert len(r.incidents) >= 1 and r.journal is not None


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        ("faults.0.kind", "meteor", "faults[0].kind", ["crash", "memory_leak", "meteor"]),
        ("faults.0.target", "cache", "faults[0].target", ["unknown service 'cache'"]),
        ("experiment.method.0.target", "gateway->cache", "experiment.method[0].target",
         ["unknown service 'cache'"]),
        ("chaos.monkey.min_healthy", 4, "chaos.monkey.min_healthy", ["replicas", "4"]),
        ("chaos.monkey.targets", ["cache"], "chaos.monkey.targets[0]", ["cache"]),
        ("experiment.steady-state-hypothesis.probes.0.tolerance", 0.5,
         "experiment.steady-state-hypothesis.probes[0].tolerance", ["pair", "0.5"]),
        ("experiment.steady-state-hypothesis.probes.0.tolerance", [0, 0.5, 1],
         "experiment.steady-state-hypothesis.probes[0].tolerance", ["pair"]),
        ("experiment.steady-state-hypothesis.probes.0.metric", "services.cache.availability",
         "experiment.steady-state-hypothesis.probes[0].metric", ["cache"]),
        ("experiment.rollbacks.0.ends", "fast", "experiment.rollbacks[0].ends", ["'fast'"]),
        ("chaos.monkey.window", {"start_hour": 15, "end_hour": 9}, "chaos.monkey.window",
         ["end_hour"]),
        ("faults.0.mode", "fixed", "faults[0]", ["value"]),
        ("recovery", {"detection": 5, "health_check": {}}, "recovery", ["detection", "health_check"]),
        # The steady state is checked over the window before the first action: it needs room.
        ("experiment.method.0.at", 0, "experiment.method", ["starts at 0s", "30s or later"]),
    ],
)
def test_load_names_the_field(path, value, field, words):
    with pytest.raises(simsys.ScenarioError) as err:
        simsys.load(edited(path, value))
    text = str(err.value)
    assert f"{field}:" in text, text
    for w in words:
        assert w in text, (w, text)


def test_duplicate_fault_names_are_refused():
    spec = copy.deepcopy(GOOD)
    spec["faults"] = [{"name": "x", "kind": "crash", "target": "db", "at": 10},
                      {"name": "x", "kind": "crash", "target": "db", "at": 20}]
    with pytest.raises(simsys.ScenarioError) as err:
        simsys.load(spec)
    assert "faults[1].name" in str(err.value)


def test_fault_after_the_run_and_on_an_uncalled_link_are_refused():
    spec = copy.deepcopy(GOOD)
    spec["duration"] = "1min"
    spec["faults"] = [{"kind": "crash", "target": "db", "at": "2min"}]
    with pytest.raises(simsys.ScenarioError) as err:
        simsys.load(spec)
    assert "faults[0].at: expected at < duration" in str(err.value)
    names = list(spec["services"])
    spec["faults"] = [{"kind": "latency", "target": f"{names[-1]}->{names[0]}", "delay": "5ms"}]
    with pytest.raises(simsys.ScenarioError) as err:
        simsys.load(spec)
    assert "faults[0].target: no calls go over" in str(err.value)


BAD_FILE = """\
name: shop
duration: 1min
services:
  gateway: {replicas: 2, calls: [db]}
  db: {replicas: 3}
workload:
  - {type: poisson, rate: 5/s, target: gateway}
chaos:
  monkey: {targets: [db], min_healthy: 5}
faults:
  - {kind: meteor, target: db}
  - {kind: crash, target: cache}
experiment:
  title: t
  steady-state-hypothesis:
    probes:
      - {name: ok, metric: error_rate, tolerance: 1%}
  method:
    - {kind: crash, target: db, at: 30}
"""


def test_cli_validate_exits_2_with_every_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(BAD_FILE))
    exe = Path(sys.executable).parent / "simsys"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "simsys.cli"]
    p = subprocess.run([*cmd, "validate", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout
    err = p.stderr
    for field in ("faults[0].kind", "experiment.steady-state-hypothesis.probes[0].tolerance"):
        assert f"{field}:" in err, err
    # Field paths with their place in the file.
    assert "bad.yaml:11:" in err, err


def test_cli_validate_reports_semantic_problems(tmp_path):
    text = BAD_FILE.replace("{kind: meteor, target: db}", "{kind: crash, target: db}").replace(
        "tolerance: 1%", "tolerance: [0, 1%]")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    exe = Path(sys.executable).parent / "simsys"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "simsys.cli"]
    p = subprocess.run([*cmd, "validate", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    assert "chaos.monkey.min_healthy:" in p.stderr, p.stderr
    assert "faults[1].target:" in p.stderr and "'cache'" in p.stderr, p.stderr
