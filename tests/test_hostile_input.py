"""Hostile input is ordinary input: nothing a user writes may hang simsys, take the machine's
memory or end in exit 1 (issue 12).

Every case runs the real command line in a subprocess with an address-space limit and a
wall-clock timeout, and checks exit status 2, a message naming the field or file, and no
traceback. Without the fixes the alias bombs and the huge values hit the memory limit or the
timeout, the deep inputs end in ``RecursionError`` (exit 1) and the typos exit 0.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simsys
from simsys.spec.load import load, read_yaml

SIMSYS = Path(sys.executable).parent / "simsys"
ROOT = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 2 * 1024**3   # bytes of address space for one command
TIME_LIMIT = 30.0            # wall seconds for one command (each takes under 2 s when right)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``simsys ARGS`` under the memory and time limits; fail the test on a hang."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("SIMSYS_DEBUG", None)
    started = time.perf_counter()
    try:
        proc = subprocess.run([str(SIMSYS), *args], capture_output=True, text=True, cwd=cwd or ROOT,
                              timeout=TIME_LIMIT, preexec_fn=_limit_memory, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"simsys {' '.join(args)} hung (> {TIME_LIMIT:g} s)")
    proc.elapsed = time.perf_counter() - started  # type: ignore[attr-defined]
    return proc


def refused(proc: subprocess.CompletedProcess[str], *needles: str, status: int = 2) -> None:
    assert proc.returncode == status, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


def scenario(tmp_path: Path, text: str, name: str = "s.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def billion_laughs(levels: int, width: int, flow: bool = False) -> str:
    """YAML of a few hundred bytes whose aliases expand to ``width ** levels`` values."""
    anchors = [f"&a0 [{', '.join(['lol'] * width)}]"]
    anchors += [f"&a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    if flow:  # one flow sequence, for --set name=[...]
        return "[" + ", ".join(anchors) + "]"
    return "".join(f"a{i}: {a}\n" for i, a in enumerate(anchors)) + "services: {web: {}}\n"


BASE = """\
duration: 1min
services:
  gateway: {replicas: 2, workers: 4, service_time: 2ms, calls: [catalog]}
  catalog: {service_time: 5ms}
workload:
  - {type: poisson, rate: 50/s, target: gateway}
"""


# -- YAML that would expand beyond memory or the stack --------------------------------------
def test_alias_bomb_in_a_file_is_refused_at_once(tmp_path):
    path = scenario(tmp_path, billion_laughs(levels=9, width=9))
    assert Path(path).stat().st_size < 700
    proc = cli("validate", path)
    refused(proc, "s.yaml:", "aliases expand to more than", "SIMSYS_MAX_ALIAS_NODES")
    assert proc.elapsed < 10


def test_alias_bomb_through_set_is_refused():
    bomb = billion_laughs(levels=8, width=9, flow=True)
    refused(cli("run", "scenarios/checkout.yaml", "--set", f"name={bomb}"),
            "aliases expand to more than")


def test_alias_bomb_in_a_run_directory_is_refused_by_report(tmp_path):
    out = tmp_path / "run"
    assert cli("run", scenario(tmp_path, BASE), "--quiet", "--out", str(out)).returncode == 0
    (out / "scenario.yaml").write_text(billion_laughs(levels=9, width=9))
    refused(cli("report", str(out)), "scenario.yaml", "aliases expand to more than")


def test_ordinary_anchors_and_aliases_keep_working(tmp_path):
    text = BASE.replace("  catalog: {service_time: 5ms}",
                        "  catalog: &svc {service_time: 5ms}\n  cart: *svc")
    path = scenario(tmp_path, text)
    proc = cli("validate", path)
    assert proc.returncode == 0, proc.stderr
    assert set(load(path).services) == {"gateway", "catalog", "cart"}


@pytest.mark.parametrize("depth", [3000, 100])
def test_deep_nesting_is_refused(tmp_path, depth):
    path = scenario(tmp_path, "name: " + "[" * depth + "]" * depth + "\n" + BASE)
    refused(cli("validate", path), "nested deeper than 64 levels", "SIMSYS_MAX_DEPTH")


def test_limits_can_be_raised_for_one_process(tmp_path, monkeypatch):
    text = "name: x\nextra: " + "[" * 70 + "]" * 70 + "\n"
    with pytest.raises(simsys.ScenarioError, match="nested deeper than 64"):
        load(scenario(tmp_path, text))
    monkeypatch.setenv("SIMSYS_MAX_DEPTH", "100")
    with pytest.raises(simsys.ScenarioError, match="extra: unknown key"):  # read, then checked
        load(scenario(tmp_path, text))


# -- files that are not files ----------------------------------------------------------------
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_devices_are_refused(device):
    refused(cli("validate", device), f"{device}: not a regular file")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    refused(cli("run", str(fifo)), "pipe.yaml: not a regular file")


def test_an_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.yaml"
    with open(path, "w") as f:
        f.write(BASE + "# " + "x" * 11_000_000 + "\n")
    refused(cli("validate", str(path)), "big.yaml: 11,000,", "over the 10,000,000-byte limit",
            "SIMSYS_MAX_FILE_BYTES")
    monkeypatch.setenv("SIMSYS_MAX_FILE_BYTES", "20MB")
    assert load(path).services["catalog"].replicas == 1


# -- valid-looking values that would hang or exhaust memory -----------------------------------
@pytest.mark.parametrize("override, needle", [
    ("duration=1" + "0" * 100, "duration: expected a duration"),
    ("services.gateway.replicas=" + "1" + "0" * 100, "services.gateway.replicas: expected a whole number ≤ 10000"),
    ("services.catalog.replicas=1000000", "services.catalog.replicas: expected a whole number ≤ 10000"),
    ("workload.0.spikes=[{at: 1s, duration: 1s, factor: .inf}]", "workload[0].spikes[0].factor"),
    ("workload.0.spikes=[{at: 1s, duration: 1s, factor: 1e300}]", "workload[0].spikes[0].factor"),
    ("workload=[{type: closed, users: 10000000, target: gateway}]", "workload[0].users"),
    ("services.gateway.replicas=true", "booleans are not numbers"),
    ("services.catalog.service_time={dist: lognormal, mean: 1ns, sd: 1e300}",
     "services.catalog.service_time.sd"),
    ("services.catalog.service_time={dist: pareto, scale: 1ms, shape: 1e-300}",
     "services.catalog.service_time: these parameters give an infinite or undefined mean"),
])
def test_values_beyond_what_a_machine_holds_are_refused(tmp_path, override, needle):
    refused(cli("run", scenario(tmp_path, BASE), "--set", override), needle)


@pytest.mark.parametrize("overrides", [
    ["workload.0.rate=1e6/s", "duration=1h"],
    ["sample_every=1ns"],
    ["workload.0.rate=100000/s", "duration=30d", "services.gateway.replicas=50"],
])
def test_runs_over_the_event_budget_are_refused_with_the_estimate(tmp_path, overrides):
    args = [a for o in overrides for a in ("--set", o)]
    proc = cli("run", scenario(tmp_path, BASE), *args)
    refused(proc, "this run would take about", "over the budget of 2e+09", "--max-events")
    assert proc.elapsed < 10


def test_the_budget_can_be_raised(tmp_path):
    path = scenario(tmp_path, BASE)
    refused(cli("run", path, "--max-events", "1000", "-q"), "over the budget of 1e+03")
    assert cli("run", path, "--max-events", "inf", "-q").returncode == 0


def test_too_many_services_and_values_are_refused_before_validating_them():
    started = time.perf_counter()
    with pytest.raises(simsys.ScenarioError, match="services: 700,000 services, more than"):
        load({"services": {f"s{i}": {} for i in range(700_000)}})
    with pytest.raises(simsys.ScenarioError, match="values: 10,000,000 values, more than"):
        load({"services": {"a": {"service_time": {"dist": "empirical",
                                                    "values": [0.001] * 10_000_000}}}})
    assert time.perf_counter() - started < 20


# -- deep call chains ---------------------------------------------------------------------------
def chain(n: int, latency: str = "0s") -> dict:
    services = {f"s{i}": {"calls": [f"s{i + 1}"]} for i in range(n - 1)}
    services[f"s{n - 1}"] = {"service_time": "1ms"}
    return {"duration": "2s", "services": services, "links": {"default": {"latency": latency}},
            "workload": [{"type": "poisson", "rate": "5/s", "target": "s0"}]}


@pytest.mark.parametrize("n", [400, 1000, 2000])
def test_long_call_chains_run(n):
    r = simsys.run(chain(n), seed=1)
    summary = r.summary()
    assert summary["requests"]["total"] > 0
    assert summary["requests"]["ok"] == summary["requests"]["total"]
    # no links, a constant 1 ms at the end: every request takes exactly that
    assert r.requests["latency"].max() == pytest.approx(0.001)


def test_long_chains_with_resilience_patterns_and_traces_run():
    spec = chain(500)
    for i in range(499):
        spec["services"][f"s{i}"]["calls"] = [{"service": f"s{i + 1}", "timeout": "10s",
                                              "retry": {"max_attempts": 2}}]
    spec["trace"] = True
    r = simsys.run(spec, seed=2)
    assert r.summary()["requests"]["ok"] == r.summary()["requests"]["total"] > 0
    assert len(r.spans) == 500 * r.summary()["requests"]["total"]


def app_chain(n: int, deploy: str) -> dict:
    app = {f"c{i}": {"calls": [f"c{i + 1}"]} for i in range(n - 1)}
    app[f"c{n - 1}"] = {"service_time": "1ms"}
    return {"duration": "2s", "app": app, "deploy": deploy,
            "workload": [{"type": "poisson", "rate": "5/s", "target": "c0"}]}


def test_a_deep_app_runs_as_microservices_and_is_refused_in_one_process():
    r = simsys.run(app_chain(1000, "microservices"), seed=1)
    assert r.summary()["requests"]["ok"] > 0
    assert simsys.run(app_chain(201, "monolith"), seed=1).summary()["requests"]["ok"] > 0
    with pytest.raises(simsys.ScenarioError, match="app.c0.calls: calls nest 999 components deep, "
                                                   "deeper than the 200 one process can run"):
        load(app_chain(1000, "monolith"))


def test_a_long_cycle_is_reported_not_a_recursion_error(tmp_path):
    spec = chain(1000)
    spec["services"]["s999"]["calls"] = ["s0"]
    with pytest.raises(simsys.ScenarioError, match="synchronous calls form a cycle: s0 -> s1"):
        load(spec)


# -- silent wrong answers -----------------------------------------------------------------------
def test_set_refuses_to_create_a_service_by_a_typo(tmp_path):
    path = scenario(tmp_path, BASE)
    refused(cli("run", path, "--set", "services.gatway.workers=3"),
            "no service 'gatway' (did you mean 'gateway'?)")
    refused(cli("compare", path, path, "--replications", "2", "--set",
                "services.catlog.replicas=2"), "no service 'catlog' (did you mean 'catalog'?)")
    # setting a whole new service is deliberate, and allowed
    proc = cli("run", path, "-q", "--json", "--set", "services.cache={service_time: 1ms}")
    assert proc.returncode == 0, proc.stderr


def test_unknown_names_get_a_suggestion(tmp_path):
    refused(cli("validate", scenario(tmp_path, BASE.replace("calls: [catalog]",
                                                            "calls: [catlog]"))),
            "unknown service 'catlog' (did you mean 'catalog'?)")


# -- fuzz: the loader and --set never crash, hang or print a traceback -------------------------
yaml_text = st.text(alphabet=st.sampled_from(list("{}[]:,&*!|>-'\"#\n abc019.eE+%/smk")),
                    max_size=80)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=yaml_text)
def test_fuzz_the_loader_raises_only_scenario_errors(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "f.yaml"
    path.write_text(BASE + text)
    try:
        load(path)
    except simsys.ScenarioError as exc:
        assert exc.problems and all(p.message for p in exc.problems)


keys = st.sampled_from(["duration", "warmup", "seed", "sample_every", "services.gateway.replicas",
                        "services.gateway.workers", "services.gateway.queue",
                        "services.catalog.service_time", "workload.0.rate", "workload.0.target",
                        "workload.0", "links.default.latency", "services", "services.x.y",
                        "workload.3.rate", "chaos.monkey", "services.gateway.calls.0"])
values = st.one_of(
    st.sampled_from(["true", "null", "-1", "0", "1e400", ".nan", "1e300", "[]", "{}", "5ms",
                     "10**9", "'gateway'", "[catalog]", "{dist: pareto, scale: 1ms, shape: 0}",
                     "{dist: exponential, mean: 0}", "1e9/s", "&a [*a]", "[[[[[[]]]]]]"]),
    yaml_text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=keys, value=values)
def test_fuzz_set_raises_only_scenario_errors(key, value):
    try:
        load(BASE_DATA, overrides=[f"{key}={value}"])
    except simsys.ScenarioError as exc:
        assert exc.problems and all(p.message for p in exc.problems)


BASE_DATA = read_yaml(BASE, "base")[0]


def test_fuzzed_cli_exit_statuses_are_0_or_2(tmp_path):
    """A handful of the odd overrides through the real command line: never 1, never a traceback."""
    path = scenario(tmp_path, BASE)
    for override in ["services=[]", "workload.0={}", "seed=-1", "warmup=2min", "links=7",
                     "services.gateway.calls=[[[]]]", "workload.0.target=[x]"]:
        proc = cli("validate", path, "--set", override)
        assert proc.returncode in (0, 2), (override, proc.stderr)
        assert "Traceback" not in proc.stderr
