"""WebSocket and polling keys: bad input (field path, exit status 2), the back-off schedule and
its jitter bounds, frame sizes, and which representation ``auto`` picks."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

import simsys
from simsys.cli import cli
from simsys.sim.websocket import choose_representation
from simsys.spec.websocket import Reconnect, frame_bytes

GOOD = """\
name: chat
duration: 1min
services:
  chat:
    websocket: {max_connections: 100}
  web: {}
workload:
  - {type: websocket, target: chat, clients: 10}
  - {type: polling, target: web, clients: 5, interval: 5s}
"""


def check(tmp_path, monkeypatch, text: str, command: str = "validate") -> list[str]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(textwrap.dedent(text))
    r = CliRunner().invoke(cli, [command, "s.yaml"])
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output
    return r.stderr.splitlines()


def edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


def test_the_good_file_is_good(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(GOOD)
    assert CliRunner().invoke(cli, ["validate", "s.yaml"]).exit_code == 0


@pytest.mark.parametrize("command", ["validate", "run"])
def test_max_connections_zero(tmp_path, monkeypatch, command):
    lines = check(tmp_path, monkeypatch, edit("max_connections: 100", "max_connections: 0"),
                  command)
    assert lines == ["s.yaml:5:34: services.chat.websocket.max_connections: "
                     "expected a whole number ≥ 1, got 0"]


def test_websocket_workload_at_a_service_without_websocket(tmp_path, monkeypatch):
    lines = check(tmp_path, monkeypatch, edit("target: chat, clients: 10", "target: web, clients: 10"))
    assert len(lines) == 1
    assert lines[0].startswith("s.yaml:8:31: workload[0].target: service 'web' does not accept "
                               "WebSockets")


@pytest.mark.parametrize("command", ["validate", "run"])
def test_negative_interval(tmp_path, monkeypatch, command):
    lines = check(tmp_path, monkeypatch, edit("interval: 5s", "interval: -5s"), command)
    assert lines == ["s.yaml:9:56: workload[1].interval: expected a duration > 0, got -5s"]


@pytest.mark.parametrize("old, new, path", [
    ("clients: 10}", "clients: 10, connect_rate: 5/s}", "workload[0]: give either connect_rate"),
    ("clients: 10}", "lifetime: 2min}", "workload[0]: give either connect_rate"),
    ("clients: 10}", "clients: 10, reconnect: {jitter: half}}", "workload[0].reconnect.jitter: expected"),
    ("clients: 10}", "clients: 10, reconnect: {initial: 5s, max: 1s}}",
     "workload[0].reconnect: expected max ≥ initial (5s), got 1s"),
    ("clients: 10}", "clients: 10, reconnect: {max_attempts: 0}}",
     "workload[0].reconnect.max_attempts: expected a whole number ≥ 1, got 0"),
    ("clients: 10}", "clients: 0}", "workload[0].clients: expected a whole number ≥ 1, got 0"),
    ("clients: 10}", "clients: 10, messages: {server_rate: -1/s}}",
     "workload[0].messages.server_rate: expected a number ≥ 0"),
    ("max_connections: 100", "max_connections: 100, representation: fluid",
     "services.chat.websocket.representation: expected 'exact', 'aggregate' or 'auto'"),
    ("max_connections: 100", "max_connections: 100, handshake: -2ms",
     "services.chat.websocket.handshake"),
    ("clients: 5, interval: 5s", "clients: 5, interval: 5s, hold: 0s",
     "workload[1].hold: expected a duration > 0, got 0s"),
])
def test_more_bad_values_name_their_field(tmp_path, monkeypatch, old, new, path):
    lines = check(tmp_path, monkeypatch, edit(old, new))
    assert len(lines) == 1, lines
    assert lines[0].split(": ", 1)[1].startswith(path), lines[0]


def test_bad_input_from_python_raises_scenario_error():
    with pytest.raises(simsys.ScenarioError) as info:
        simsys.load({"services": {"chat": {"websocket": {"max_connections": 0}}}})
    assert info.value.problems[0].path == "services.chat.websocket.max_connections"


# -- back-off -----------------------------------------------------------------------------------
def test_backoff_is_the_capped_exponential():
    r = Reconnect(initial=1.0, max=30.0, multiplier=2.0, jitter="none")
    assert [r.cap(k) for k in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert r.levels() == 6
    assert r.cap(10_000) == 30.0                       # no overflow
    assert Reconnect(initial=1.0, max=1.0, multiplier=1.0).levels() == 1


@pytest.mark.parametrize("jitter, bounds", [
    ("none", [(1, 1), (2, 2), (4, 4), (30, 30)]),
    ("full", [(0, 1), (0, 2), (0, 4), (0, 30)]),
    ("equal", [(0.5, 1), (1, 2), (2, 4), (15, 30)]),
])
def test_jitter_bounds_follow_aws(jitter, bounds):
    r = Reconnect(initial=1.0, max=30.0, multiplier=2.0, jitter=jitter)
    assert [r.bounds(k) for k in (0, 1, 2, 9)] == bounds


def test_client_waits_are_drawn_within_the_bounds():
    from simsys.sim.engine import Streams
    from simsys.sim.websocket import Group

    spec = simsys.load({"services": {"chat": {"websocket": {}}}, "workload": [
        {"type": "websocket", "target": "chat", "clients": 1,
         "reconnect": {"initial": "1s", "max": "8s", "jitter": "equal"}}]})
    g = Group(0, "client:w", spec.workload[0], link=None, streams=Streams(1))
    waits = np.array([g.wait(2) for _ in range(20_000)])
    assert waits.min() >= 2.0 and waits.max() <= 4.0
    assert waits.mean() == pytest.approx(3.0, abs=0.03)


def test_frame_headers_are_2_to_14_bytes():
    assert frame_bytes(0, masked=False) == 2
    assert frame_bytes(125, masked=False) == 127
    assert frame_bytes(126, masked=False) == 130        # 16-bit extended length
    assert frame_bytes(70_000, masked=True) == 70_014   # 64-bit length and the mask: 14 bytes


def test_auto_representation():
    s = simsys.load({"services": {"chat": {"replicas": 2, "websocket": {"max_connections": 50000}}},
                     "workload": [{"type": "websocket", "target": "chat", "clients": 30000}]})
    from simsys.sim.engine import Streams
    from simsys.sim.websocket import Group

    g = Group(0, "client:w", s.workload[0], link=None, streams=Streams(1))
    cfg = s.services["chat"].websocket
    assert choose_representation(cfg, [g], 60.0, replicas=2) == "aggregate"
    assert choose_representation(cfg, [g], 60.0, replicas=1) == "aggregate"
    small = cfg.model_copy(update={"max_connections": 5000})
    assert choose_representation(small, [g], 60.0, replicas=2) == "exact"  # capped by the pool


# -- scale: aggregate pools are counted by their steps, exact pools are bounded ---------------------
def _chat(clients: int, representation: str, minutes: float = 10.0) -> dict:
    """The scenario of benchmarks/websockets.py: ``clients`` holding one connection each."""
    replicas = max(1, -(-clients // 50_000))
    return {
        "duration": f"{minutes}min", "sample_every": "1s",
        "services": {"chat": {"replicas": replicas, "workers": 8,
                              "websocket": {"max_connections": 60_000,
                                            "representation": representation}}},
        "workload": [{"type": "websocket", "target": "chat", "clients": clients, "ramp": "60s",
                      "lifetime": {"dist": "exponential", "mean": "10min"},
                      "messages": {"client_rate": "0.1/s", "server_rate": "1/s"}}],
    }


def test_ten_million_aggregate_clients_fit_the_budget_by_their_steps():
    from simsys.budget import check, estimate

    G = simsys.build_graph(_chat(10_000_000, "aggregate"))
    est = check(G)  # refused before: 6.6e8 messages counted as requests (2.6e9 events)
    assert est.events < 1e8
    # the same clients through an exact pool are counted per message, and that would be refused
    small = estimate(simsys.build_graph(_chat(1_000, "exact")))
    assert small.requests > 1_000 * 660 * 0.9  # ~660 messages a client in 10 minutes


def test_an_exact_pool_of_millions_is_refused_with_the_way_out():
    with pytest.raises(simsys.ScenarioError) as err:
        simsys.load(_chat(5_000_000, "exact"))
    (problem,) = err.value.problems
    assert problem.path == "services.chat.websocket.representation"
    assert "use representation: aggregate" in problem.message
    simsys.load(_chat(5_000_000, "auto"))  # auto picks aggregate: accepted


def test_websocket_clients_are_bounded():
    with pytest.raises(simsys.ScenarioError, match="workload\\[0\\].clients: expected a whole number ≤ 100000000"):
        simsys.load(_chat(200_000_000, "aggregate"))
