"""The spec layer: defaults, units and distributions resolved, strictness, and the scenario
documentation kept in step with the model (every key documented, every example loads)."""

from __future__ import annotations

import copy
import re
import typing
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel
from ruamel.yaml import YAML

import simsys
from simsys.spec import distributions as d
from simsys.spec.model import Scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO_DOCS = ROOT / "scenarios" / "README.md"


# -- the model ----------------------------------------------------------------------------------
def test_defaults_live_in_the_model():
    s = simsys.load({"services": {"web": {}}})
    assert (s.name, s.seed, s.duration, s.warmup, s.sample_every) == ("scenario", 0, 60.0, 0.0, 1.0)
    web = s.services["web"]
    assert (web.replicas, web.workers, web.queue, web.balancer) == (1, 1, None, "round_robin")
    assert web.service_time == d.Constant(value=0.0)
    assert web.calls == [] and web.memory.base == 0.0
    assert s.workload == [] and s.links == {}


def test_units_are_resolved():
    s = simsys.load({
        "duration": "10min", "warmup": "30s",
        "services": {"web": {"service_time": "250us",
                             "memory": {"base": "1.5MiB", "per_request": "64KB"}}},
        "links": {"default": {"latency": "2ms", "loss": "0.1%"}},
        "workload": [{"type": "poisson", "rate": "3/min", "target": "web"}],
    })
    assert s.duration == 600.0 and s.warmup == 30.0
    assert s.services["web"].service_time == d.Constant(value=0.00025)
    assert s.services["web"].memory.base == 1_572_864 and s.services["web"].memory.per_request == 64_000
    assert s.links["default"].latency.mean == 0.002 and s.links["default"].loss == 0.001
    assert s.workload[0].rate == pytest.approx(0.05)


def test_calls_accept_names_and_mappings():
    s = simsys.load({"services": {"web": {"calls": ["db", {"service": "cache", "probability": "30%"}]},
                                  "db": {}, "cache": {}}})
    calls = s.services["web"].calls
    assert [(c.service, c.probability) for c in calls] == [("db", 1.0), ("cache", 0.3)]


def test_scenarios_are_immutable():
    s = simsys.load({"services": {"web": {}}})
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        s.duration = 5.0  # type: ignore[misc]


def test_links_fall_back_to_default_between_services_only():
    s = simsys.load({"services": {"web": {"calls": ["db"]}, "db": {}},
                     "links": {"default": {"latency": "1ms"}, "web->db": {"latency": "3ms"}}})
    assert s.link("web", "db").latency.mean == 0.003
    assert s.link("db", "web").latency.mean == 0.001
    assert s.link("client", "web").latency.mean == 0.0


def test_load_accepts_a_path_a_dict_and_a_scenario_and_copies_overrides():
    path = ROOT / "scenarios" / "mm1.yaml"
    a = simsys.load(path)
    assert simsys.load(str(path)) == a
    assert simsys.load(a) is a
    b = simsys.load(a, overrides={"duration": "1h"})
    assert b.duration == 3600.0 and a.duration == 20000.0
    data = {"services": {"web": {"workers": 2}}}
    before = copy.deepcopy(data)
    simsys.load(data, overrides=["services.web.workers=8"])
    assert data == before


def test_reserved_service_names_are_refused():
    for name in ("client", "a->b", " "):
        with pytest.raises(simsys.ScenarioError, match="cannot be a service name"):
            simsys.load({"services": {name: {}}})


# -- distributions ------------------------------------------------------------------------------
DISTS = [
    ({"dist": "constant", "value": "5ms"}, 0.005, 0.0),
    ({"dist": "exponential", "mean": "5ms"}, 0.005, 0.005**2),
    ({"dist": "uniform", "low": "1ms", "high": "9ms"}, 0.005, 0.008**2 / 12),
    ({"dist": "normal", "mean": "10ms", "sd": "1ms"}, 0.010, 0.001**2),
    ({"dist": "lognormal", "mean": "10ms", "sd": "6ms"}, 0.010, 0.006**2),
    ({"dist": "pareto", "scale": "2ms", "shape": 3.5}, 3.5 * 0.002 / 2.5,
     0.002**2 * 3.5 / (2.5**2 * 1.5)),
    ({"dist": "empirical", "values": ["1ms", "2ms", "6ms"]}, 0.003, np.var([0.001, 0.002, 0.006])),
]


def _dist(spec):
    return simsys.load({"services": {"web": {"service_time": spec}}}).services["web"].service_time


@pytest.mark.parametrize("spec, mean, variance", DISTS, ids=[s["dist"] for s, _, _ in DISTS])
def test_distributions_know_their_theory_and_sample_it(spec, mean, variance):
    dist = _dist(spec)
    assert dist.mean == pytest.approx(mean, rel=1e-9)
    assert dist.variance == pytest.approx(variance, rel=1e-6, abs=1e-15)
    draw = dist.sampler(np.random.default_rng(1))
    xs = np.array([draw() for _ in range(200_000)])
    assert (xs >= 0).all()
    # 200 000 draws: the sample mean is within 5 standard errors of the theory
    assert abs(xs.mean() - mean) <= 5 * np.sqrt(variance / len(xs)) + 1e-12


def test_truncated_normal_reports_the_truncated_moments():
    dist = _dist({"dist": "normal", "mean": "1ms", "sd": "2ms"})  # much of it below 0
    assert dist.mean > 0.001
    xs = dist.draw(np.random.default_rng(2), 200_000)
    assert (xs >= 0).all()
    assert xs.mean() == pytest.approx(dist.mean, rel=0.01)
    assert xs.var() == pytest.approx(dist.variance, rel=0.02)


def test_samplers_are_reproducible_per_generator():
    dist = _dist({"dist": "exponential", "mean": "1s"})
    a = dist.sampler(np.random.default_rng(7))
    b = dist.sampler(np.random.default_rng(7))
    assert [a() for _ in range(5000)] == [b() for _ in range(5000)]


@pytest.mark.parametrize("spec, message", [
    ({"dist": "weibull", "k": 2}, "unknown distribution 'weibull'"),
    ({"mean": "5ms"}, "expected a duration or a mapping with 'dist'"),
    ({"dist": "uniform", "low": "9ms", "high": "1ms"}, "expected high ≥ low"),
    ({"dist": "exponential", "mean": "0s"}, "> 0"),
    ({"dist": "exponential", "mean": "5ms", "sd": "1ms"}, "unknown key"),
])
def test_bad_distributions(spec, message):
    with pytest.raises(simsys.ScenarioError) as info:
        _dist(spec)
    assert any(message in p.message for p in info.value.problems), info.value


# -- the scenario files and their documentation ---------------------------------------------------
@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_every_scenario_file_loads(path):
    assert simsys.load(path).services


def _model_keys(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    """Every key a scenario may contain, by its written name (aliases included)."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        if name.startswith("_"):
            continue
        keys.add(field.alias or name)
        stack = [field.annotation]
        while stack:
            tp = stack.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                if not tp.__name__.startswith("_"):
                    keys |= _model_keys(tp, seen)
            else:
                stack.extend(typing.get_args(tp))
    return keys


def _model_choices(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    """Every word a Literal field accepts (balancer names, modes, kinds, …)."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    out: set[str] = set()
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            tp = stack.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                out |= _model_choices(tp, seen)
            elif typing.get_origin(tp) is typing.Literal:
                out |= {v for v in typing.get_args(tp) if isinstance(v, str)}
            else:
                stack.extend(typing.get_args(tp))
    return out


def _documented_models() -> list[type[BaseModel]]:
    """The scenario model, plus the models of keys compiled before validation (app, deploy)."""
    models: list[type[BaseModel]] = [Scenario]
    try:
        from simsys.spec import app
    except ImportError:  # pragma: no cover - no app: support in this version
        return models
    models += [m for m in (getattr(app, "Component", None), getattr(app, "Deploy", None)) if m]
    return models


def test_every_choice_is_documented():
    text = SCENARIO_DOCS.read_text(encoding="utf-8")
    words = set(re.findall(r"[\w-]+", text))
    choices = set().union(*(_model_choices(m) for m in _documented_models()))
    missing = sorted(choices - words)
    assert not missing, (
        f"values without a mention in scenarios/README.md: {missing}; append a section "
        "for the feature, with an example")


def test_every_scenario_key_is_documented():
    text = SCENARIO_DOCS.read_text(encoding="utf-8")
    written = set(re.findall(r"[\w-]+(?=\s*:)", text)) | set(re.findall(r"`([\w-]+)`", text))
    keys = set().union(*(_model_keys(m) for m in _documented_models()))
    missing = sorted(keys - written)
    assert not missing, (
        f"scenario keys without an example in scenarios/README.md: {missing}; append a "
        "section for the feature, with an example of each key")


BASE_SERVICES = ("gateway", "catalog", "cart", "payments", "search", "db", "chat", "web")


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _doc_examples() -> list[tuple[int, str]]:
    """``(line, text)`` of each ```yaml block in scenarios/README.md not marked no-check."""
    text = SCENARIO_DOCS.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"(<!-- no-check -->\s*)?```yaml\n(.*?)```", text, re.S):
        if not m.group(1):
            out.append((text[: m.start()].count("\n") + 1, m.group(2)))
    return out


@pytest.mark.parametrize("line, example", _doc_examples(), ids=lambda x: f"line{x}" if isinstance(x, int) else "")
def test_every_documented_example_loads(line, example):
    fragment = YAML(typ="safe").load(example) or {}
    # a fragment names the services it needs; the ones it calls are filled in (unless it
    # describes an app:, whose deployment makes the services)
    services = {} if "app" in fragment else {name: {} for name in BASE_SERVICES}
    data = _merge({"services": services}, fragment) if services else fragment
    try:
        simsys.load(data)
    except simsys.ScenarioError as exc:
        pytest.fail(f"scenarios/README.md line {line}: the example does not load:\n{exc}")
