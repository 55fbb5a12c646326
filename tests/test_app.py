"""One application, many deployments: ``app:`` + ``deploy:`` compiled into services.

Bad input through the command line (exit 2, ``file:line:col: field.path: message``), what each
deployment compiles to, the costs it adds (links, serialization, in-process calls), the theory
of a monolith (one worker holds the whole call tree: M/G/1 with the summed work), common random
numbers across deployments, and determinism.
"""

from __future__ import annotations

import math
import re
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from stats import assert_all_in_ci, assert_rejected, assert_theory_in_ci, replicate

import simsys
from simsys.cli import cli
from simsys.comparing import compare
from simsys.sim.engine import Streams
from simsys.spec.app_compile import expand
from simsys.spec.app_plan import deployment
from simsys.spec.call_tree import ComponentWork, named_rng
from simsys.topology import app_graph

ROOT = Path(__file__).resolve().parents[1]
WHERE = re.compile(r"^\S+:\d+:\d+: ")  # file:line:col:

GOOD = """\
name: shop
duration: 30s
app:
  storefront: {service_time: 2ms, calls: [catalog, cart]}
  catalog: {service_time: 5ms}
  cart: {service_time: 3ms, calls: [{service: payments, probability: 0.3}]}
  payments: {service_time: 10ms}
deploy:
  groups:
    storefront: [storefront, catalog]
    billing: [cart, payments]
workload:
  - {type: poisson, rate: 10/s, target: storefront}
"""


def check(tmp_path: Path, text: str, monkeypatch) -> list[str]:
    """``simsys validate`` on ``text``: exit 2, no traceback, nothing on stdout; stderr lines."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(textwrap.dedent(text))
    r = CliRunner().invoke(cli, ["validate", "s.yaml"])
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines and all(WHERE.match(line) for line in lines), lines
    return lines


def edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


# -- bad input --------------------------------------------------------------------------------
def test_the_good_file_is_good(tmp_path):
    (tmp_path / "s.yaml").write_text(GOOD)
    r = CliRunner().invoke(cli, ["validate", str(tmp_path / "s.yaml")])
    assert r.exit_code == 0, r.output
    assert "2 service(s)" in r.stdout


def test_unknown_component_in_a_group(tmp_path, monkeypatch):
    lines = check(tmp_path, edit("[storefront, catalog]", "[storefront, catalgo]"), monkeypatch)
    assert lines[0] == ("s.yaml:10:30: deploy.groups.storefront[1]: unknown component 'catalgo'; "
                        "components are: storefront, catalog, cart, payments")


def test_a_component_in_two_groups(tmp_path, monkeypatch):
    lines = check(tmp_path, edit("[cart, payments]", "[cart, payments, catalog]"), monkeypatch)
    assert lines == ["s.yaml:11:31: deploy.groups.billing[2]: 'catalog' is already in group "
                     "'storefront' (deploy.groups.storefront[1]); a component is deployed once"]


def test_every_problem_at_once(tmp_path, monkeypatch):
    text = (GOOD.replace("catalog: {service_time: 5ms}", "catalog: {service_time: 5ms, workers: -1}")
            .replace("calls: [{service: payments", "calls: [{service: paymnts")
            .replace("[cart, payments]", "[cart, payments, nope]")
            .replace("target: storefront}", "target: storefrnt}"))
    lines = check(tmp_path, text, monkeypatch)
    paths = [line.split(": ")[1] for line in lines]
    assert paths == ["app.catalog.workers", "app.cart.calls[0]", "deploy.groups.billing[2]",
                     "workload[0].target"], lines
    assert "expected a whole number ≥ 1, got -1" in lines[0]
    assert "calls unknown component 'paymnts'" in lines[1]


@pytest.mark.parametrize("old, new, where, message", [
    ("deploy:\n  groups:\n    storefront: [storefront, catalog]\n    billing: [cart, payments]\n",
     "deploy: monolit\n", "s.yaml:8:9: deploy",
     "expected 'monolith', 'microservices' or 'groups', got 'monolit'"),
    ("    billing: [cart, payments]\n",
     "    billing: [cart, payments]\n  services:\n    ghost: {replicas: 2}\n",
     "s.yaml:13:12: deploy.services.ghost", "no deployed service 'ghost'; this deployment has: "
     "storefront, billing"),
    ("    billing: [cart, payments]\n",
     "    billing: [cart, payments]\n  services:\n    billing: {replicas: 0}\n",
     "s.yaml:13:25: deploy.services.billing.replicas", "expected a whole number ≥ 1, got 0"),
    ("    billing: [cart, payments]\n",
     "    billing: [cart, payments]\n  services:\n    billing: {service_time: 3ms}\n",
     "s.yaml:13:29: deploy.services.billing.service_time",
     "service_time of a deployed service comes from its components (cart, payments)"),
    ("workload:", "services: {db: {}}\nworkload:", "s.yaml:12:11: services", "give services or app"),
    ("    billing: [cart, payments]\n", "    billing: [cart, payments]\n    cart: [payments]\n",
     "s.yaml:12:12: deploy.groups.cart[0]", "'payments' is already in group 'billing'"),
    ("    billing: [cart, payments]\n", "    billing: [payments]\n    payments: [cart]\n",
     "s.yaml:12:15: deploy.groups.payments", "named like component 'payments', which is in group 'billing'"),
    ("  payments: {service_time: 10ms}\n",
     "  payments: {service_time: 10ms, calls: [storefront]}\n", "s.yaml:4:42: app.storefront.calls",
     "calls form a cycle: storefront -> cart -> payments -> storefront"),
])
def test_bad_app_or_deploy(tmp_path, monkeypatch, old, new, where, message):
    lines = check(tmp_path, edit(old, new), monkeypatch)
    assert any(line.startswith(where + ": ") and message in line for line in lines), lines


def test_a_group_named_like_a_component_it_lacks(tmp_path, monkeypatch):
    lines = check(tmp_path, edit("storefront: [storefront, catalog]", "storefront: [catalog]"),
                  monkeypatch)
    assert "deploy.groups.storefront: group 'storefront' is named like component 'storefront'" in lines[0]


def test_a_service_entered_at_two_components_is_good(tmp_path):
    # billing is entered at cart (from storefront) and at payments (from a workload)
    text = GOOD + "  - {type: poisson, rate: 1/s, target: payments}\n"
    (tmp_path / "s.yaml").write_text(text)
    r = CliRunner().invoke(cli, ["validate", str(tmp_path / "s.yaml")])
    assert r.exit_code == 0, r.output
    assert deployment(simsys.load(tmp_path / "s.yaml")).entries["billing"] == ["cart", "payments"]


def test_a_fan_out_split_between_in_process_and_remote_is_refused(tmp_path, monkeypatch):
    text = edit("calls: [catalog, cart]", "calls: [{parallel: [catalog, cart]}]")
    lines = check(tmp_path, text, monkeypatch)
    assert lines == ["s.yaml:4:43: app.storefront.calls[0]: in this deployment the fan-out calls "
                     "catalog in-process and cart in other services; a fan-out must be all "
                     "in-process or all remote: group its members together"]
    lines = check(tmp_path, text.replace("storefront: [storefront, catalog]",
                                         "storefront: [storefront, catalog, cart]")
                  .replace("billing: [cart, payments]", "billing: [payments]"), monkeypatch)
    assert len(lines) == 1 and "the in-process fan-out's member 'cart' calls 'payments' in " \
        "another service" in lines[0], lines


def test_groups_that_call_each_other_back_are_refused(tmp_path, monkeypatch):
    # storefront -> cart -> payments with storefront and payments together: the services
    # would wait on each other's workers
    text = edit("storefront: [storefront, catalog]\n    billing: [cart, payments]",
                "storefront: [storefront, catalog, payments]\n    billing: [cart]")
    lines = check(tmp_path, text, monkeypatch)
    assert len(lines) == 1 and "deploy.groups: this grouping makes services call each other back" \
        " (storefront -> billing -> storefront)" in lines[0], lines


def test_bad_input_through_compare_exits_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(edit("[cart, payments]", "[cart, payments, catalog]"))
    r = CliRunner().invoke(cli, ["compare", "a.yaml", "b.yaml", "-r", "2"])
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    assert r.stderr.startswith("b.yaml:11:31: deploy.groups.billing[2]: 'catalog' is already")


# -- what deployments compile to --------------------------------------------------------------
APP = {
    "a": {"service_time": {"dist": "exponential", "mean": "2ms"}, "calls": ["b", "c"],
          "memory": {"base": "100MB", "per_request": "1MB"}, "workers": 4, "replicas": 2},
    "b": {"service_time": "1ms", "calls": [{"service": "d", "probability": 0.5}],
          "memory": {"base": "50MB"}, "workers": 8},
    "c": {"service_time": "3ms", "memory": {"base": "10MB", "per_request": "2MB"}, "queue": 20},
    "d": {"service_time": {"dist": "exponential", "mean": "4ms"}, "replicas": 3},
}


def scenario(deploy, **extra):
    return {"duration": "20s", "app": APP, "deploy": deploy,
            "workload": [{"type": "poisson", "rate": "20/s", "target": "a"}], **extra}


def test_a_monolith_is_one_service_doing_the_whole_call_tree():
    s = simsys.load(scenario({"style": "monolith", "in_process_call": "100us",
                              "serialization": "50us", "runtime_memory": "200MB"}))
    assert list(s.services) == ["monolith"]
    svc = s.services["monolith"]
    assert svc.calls == []
    assert (svc.replicas, svc.workers, svc.queue) == (3, 8, 20)  # the largest its members ask
    work = svc.service_time
    assert isinstance(work, ComponentWork) and work.entry == "a"
    # a, then b (+1 call), d with probability 0.5 (+1 call), then c (+1 call); request + answer
    expected = 2e-3 + (1e-4 + 1e-3 + 0.5 * (1e-4 + 4e-3)) + (1e-4 + 3e-3) + 2 * 50e-6
    assert work.mean == pytest.approx(expected)
    samples = work.draw(np.random.default_rng(1), 200_000)
    assert samples.mean() == pytest.approx(expected, rel=0.01)
    assert samples.var() == pytest.approx(work.variance, rel=0.03)
    assert svc.memory.base == pytest.approx(200e6 + 160e6)  # one runtime, every component's
    assert svc.memory.per_request == pytest.approx(3e6)
    assert s.workload[0].target == "monolith"


def test_microservices_are_one_service_per_component():
    s = simsys.load(scenario("microservices"))
    assert list(s.services) == ["a", "b", "c", "d"]
    assert [c.service for c in s.services["a"].calls] == ["b", "c"]
    assert s.services["b"].calls[0].probability == 0.5
    assert (s.services["a"].replicas, s.services["a"].workers) == (2, 4)
    assert (s.services["c"].replicas, s.services["c"].workers, s.services["c"].queue) == (1, 1, 20)
    assert all(svc.service_time.works.keys() == {n} for n, svc in s.services.items())


def test_groups_place_components_and_rename_what_names_them():
    s = simsys.load(scenario(
        {"groups": {"front": ["a", "b"]}, "services": {"front": {"workers": 16}}},
        links={"default": {"latency": "1ms"}, "a->b": {"latency": "9ms"},
               "b->d": {"latency": "2ms"}, "client->a": {"latency": "20ms"}},
        chaos={"monkey": {"targets": ["a", "b", "c"]}},
        faults=[{"kind": "crash", "target": "b", "at": "5s"},
                {"kind": "latency", "target": "b->d", "delay": "1ms", "at": "1s"}],
    ))
    plan = deployment(s)
    assert plan.services == {"front": ["a", "b"], "c": ["c"], "d": ["d"]}
    assert plan.entry == {"front": "a", "c": "c", "d": "d"}
    front = s.services["front"]
    assert front.workers == 16
    # b's call to d leaves the service: made after the in-process work, with b's probability
    assert [(c.service, c.probability) for c in front.calls] == [("d", 0.5), ("c", 1.0)]
    assert set(s.links) == {"default", "front->d", "client->front"}  # a->b is in-process now
    assert s.chaos.monkey.targets == ["front", "c"]
    assert [f.target for f in s.faults] == ["front", "front->d"]


def test_failures_of_members_bring_their_service_down():
    app = {**APP, "b": {**APP["b"], "failures": {"mean_time_to_failure": "10min"}},
           "c": {**APP["c"], "failures": {"mean_time_to_failure": "15min"}}}
    s = simsys.load({**scenario("monolith"), "app": app})
    assert s.services["monolith"].failures.mean_time_to_failure == pytest.approx(360.0)  # 1/(1/600+1/900)
    s = simsys.load({**scenario("microservices"), "app": app})
    assert s.services["b"].failures.mean_time_to_failure == 600.0
    assert s.services["a"].failures is None


def test_expand_leaves_other_scenarios_and_its_input_alone():
    plain = {"services": {"web": {}}}
    assert expand(plain) == plain
    data = scenario("monolith")
    before = repr(data)
    expand(data)
    assert repr(data) == before


def test_the_logical_graph_stays_available():
    G = app_graph(scenario({"groups": {"front": ["a", "b"]}}))
    assert sorted(G.edges) == [("a", "b"), ("a", "c"), ("b", "d")]
    assert G.edges["a", "b"]["local"] and not G.edges["a", "c"]["local"]
    assert G.edges["b", "d"]["probability"] == 0.5
    assert G.nodes["b"]["service"] == "front" and G.nodes["d"]["service"] == "d"
    assert G.graph["style"] == "groups"
    deployed = simsys.build_graph(scenario({"groups": {"front": ["a", "b"]}}))
    assert sorted(deployed.edges) == [("client:poisson0", "front"), ("front", "c"), ("front", "d")]


def test_a_program_needs_the_edges_that_carry_its_calls():
    G = simsys.build_graph(ROOT / "scenarios" / "shop-groups.yaml")
    G.graph.update(duration=10.0, warmup=0.0)
    assert len(simsys.run(G).requests) > 100
    G.remove_edge("front", "catalog")
    with pytest.raises(simsys.BuildError, match="no edge 'front' -> 'catalog' to carry the call"):
        simsys.run(G)


def test_a_compiled_scenario_loads_again_with_overrides():
    s = simsys.load(scenario({"style": "monolith", "services": {"monolith": {"workers": 2}}}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic cannot name the compiled service time's type
        again = simsys.load(s, overrides={"deploy.services.monolith.workers": 5})
    assert again.services["monolith"].workers == 5
    assert again.services["monolith"].service_time == s.services["monolith"].service_time


def test_the_shop_files_deploy_one_app():
    mono = simsys.load(ROOT / "scenarios" / "shop-monolith.yaml")
    micro = simsys.load(ROOT / "scenarios" / "shop-microservices.yaml")
    assert mono.app == micro.app
    assert list(mono.services) == ["shop"]
    assert list(micro.services) == list(micro.app)
    # storefront 2 + catalog 8 + 0.4 × reviews 6 + cart 4 + 0.3 × payments 20 ms of work,
    # 2.7 in-process calls of 20 µs, the client's request and answer at 150 µs each
    assert mono.services["shop"].service_time.mean == pytest.approx(22.4e-3 + 2.7 * 20e-6 + 300e-6)
    assert mono.services["shop"].price == 0.2 and micro.services["payments"].price == 0.05
    groups = simsys.load(ROOT / "scenarios" / "shop-groups.yaml")
    assert groups.app == micro.app and list(groups.services) == ["front", "catalog", "payments"]
    # front's worker waits on the catalog service between the storefront's work and the cart's
    steps = groups.services["front"].service_time.program.steps["storefront"]
    assert [s[0] for s in steps] == ["work", "remote", "work", "remote"]


# -- costs of a deployment --------------------------------------------------------------------
CHAIN = {  # a -> b -> c -> d: k = 3 calls
    "a": {"service_time": {"dist": "exponential", "mean": "2ms"}, "calls": ["b"], "workers": 64},
    "b": {"service_time": {"dist": "exponential", "mean": "1ms"}, "calls": ["c"], "workers": 64},
    "c": {"service_time": {"dist": "lognormal", "mean": "3ms", "sd": "1ms"}, "calls": ["d"],
          "workers": 64},
    "d": {"service_time": "1ms", "workers": 64},
}


def chain(deploy, **extra):
    return {"duration": "30s", "app": CHAIN, "deploy": deploy,
            "workload": [{"type": "poisson", "rate": "50/s", "target": "a"}], **extra}


def test_link_latency_adds_two_crossings_per_call():
    L, k = 0.002, 3
    c = compare({"no latency": chain("microservices"),
                 "latency": chain("microservices", links={"default": {"latency": "2ms"}}),
                 "monolith": chain("monolith", links={"default": {"latency": "2ms"}})},
                replications=3, seed=5)
    t = c.table(["latency.mean", "latency.p99"])
    # same seeds, same draws in the same order: every request is exactly 2kL slower
    assert t.loc["latency.mean", ("latency", "diff")] == pytest.approx(2 * k * L, abs=1e-9)
    assert t.loc["latency.p99", ("latency", "diff")] == pytest.approx(2 * k * L, abs=1e-9)
    assert t.loc["latency.mean", ("monolith", "diff")] == pytest.approx(0.0, abs=1e-9)


def test_serialization_per_visit_and_in_process_calls():
    ser, ipc, k = 0.0005, 0.0002, 3
    costs = {"serialization": "500us", "in_process_call": "200us"}
    c = compare({"micro": chain("microservices"),
                 "micro+costs": chain({"style": "microservices", **costs}),
                 "mono": chain("monolith"),
                 "mono+costs": chain({"style": "monolith", **costs})}, replications=2, seed=2)
    t = c.table("latency.mean")
    assert t.loc["latency.mean", ("micro+costs", "diff")] == pytest.approx(2 * ser * (k + 1), abs=1e-9)
    assert t.loc["latency.mean", ("mono", "diff")] == pytest.approx(0.0, abs=1e-9)
    assert t.loc["latency.mean", ("mono+costs", "diff")] == pytest.approx(2 * ser + k * ipc, abs=1e-9)


def test_monolith_and_microservices_agree_without_network_costs():
    # storefront's 4 workers hold each request to its end in both deployments; callees have as
    # many workers, so nothing queues below it: the latencies must agree within their CI
    app = {
        "storefront": {"service_time": {"dist": "exponential", "mean": "2ms"},
                       "calls": ["catalog", {"service": "cart", "probability": 0.5}], "workers": 4},
        "catalog": {"service_time": {"dist": "lognormal", "mean": "6ms", "sd": "4ms"}, "workers": 4},
        "cart": {"service_time": {"dist": "exponential", "mean": "4ms"}, "workers": 4},
    }
    base = {"duration": "2min", "warmup": "10s", "app": app,
            "workload": [{"type": "poisson", "rate": "300/s", "target": "storefront"}]}
    c = compare({"monolith": {**base, "deploy": "monolith"},
                 "microservices": {**base, "deploy": "microservices"}}, replications=6, seed=1)
    t = c.table(["latency.mean", "latency.p99", "throughput"])
    for m in t.index:
        mono = t.loc[m, "monolith"]
        micro = t.loc[m, "microservices"]
        assert micro["ci_low"] <= mono["mean"] <= micro["ci_high"], (m, t.loc[m])
        assert mono["ci_low"] <= micro["mean"] <= mono["ci_high"], (m, t.loc[m])
        assert micro["diff_low"] <= 0.0 <= micro["diff_high"], (m, t.loc[m])
    assert c.runs["latency.mean"].mean() > 0.011  # really queued (work alone is 10 ms)


def test_a_bottleneck_component_queues_only_when_deployed_alone():
    app = {"web": {"service_time": "1ms", "calls": ["db"], "workers": 8},
           "db": {"service_time": {"dist": "exponential", "mean": "4ms"}, "workers": 1}}
    base = {"duration": "1min", "warmup": "5s", "app": app,
            "workload": [{"type": "poisson", "rate": "200/s", "target": "web"}]}
    c = compare({"monolith": {**base, "deploy": "monolith"},        # 8 shared workers
                 "microservices": {**base, "deploy": "microservices"}}, replications=2, seed=3)
    mono, micro = c.table("latency.mean").loc["latency.mean", [("monolith", "mean"),
                                                               ("microservices", "mean")]]
    assert mono < 0.0055 < 0.010 < micro  # db alone: M/M/1 at 80 %, about 20 ms


@pytest.mark.slow
def test_a_monolith_with_one_worker_is_mg1_of_the_summed_work():
    """Pollaczek–Khinchine: W = E[S] + λE[S²] / (2(1 − ρ)), S = the whole call tree's work."""
    app = {"a": {"service_time": {"dist": "exponential", "mean": "2ms"}, "calls": ["b"]},
           "b": {"service_time": "1ms", "calls": [{"service": "c", "probability": 0.5}]},
           "c": {"service_time": {"dist": "exponential", "mean": "4ms"}}}
    lam = 100.0
    spec = {"duration": "10min", "warmup": "20s", "app": app,
            "deploy": {"style": "monolith", "in_process_call": "100us"},
            "workload": [{"type": "poisson", "rate": f"{lam:g}/s", "target": "a"}]}
    work = simsys.load(spec).services["monolith"].service_time
    es, es2 = work.mean, work.variance + work.mean**2
    rho = lam * es
    assert 0.4 < rho < 0.7
    theory = es + lam * es2 / (2 * (1 - rho))
    sojourn = replicate(spec, 10, lambda r: r.summary()["latency"]["mean"])
    assert_theory_in_ci(sojourn, theory, name="monolith M/G/1 mean sojourn")
    # negative control: the same work treated as exponential (M/M/1, E[S²] = 2E[S]²), which
    # the summed tree is not
    assert_rejected(sojourn, es + lam * 2 * es**2 / (2 * (1 - rho)),
                    name="monolith as M/M/1 of the summed work")


def test_a_group_entered_at_two_components_queues_as_mg1_of_its_visits():
    """Pollaczek–Khinchine for a grouped service with one worker, entered at a (a's work, a call
    to b over a 1 ms link, then c in-process half the time) and at c directly: the worker is
    held through the call to b, so each visit's holding time is its whole program."""
    app = {"a": {"service_time": {"dist": "exponential", "mean": "2ms"},
                 "calls": ["b", {"service": "c", "probability": 0.5}]},
           "b": {"service_time": {"dist": "exponential", "mean": "3ms"}, "workers": 1000},
           "c": {"service_time": {"dist": "exponential", "mean": "4ms"}}}
    lam_a, lam_c = 60.0, 40.0
    spec = {"duration": "10min", "warmup": "20s", "app": app,
            "deploy": {"groups": {"g": ["a", "c"]}, "services": {"g": {"workers": 1}}},
            "links": {"default": {"latency": "1ms"}},
            "workload": [{"type": "poisson", "rate": f"{lam_a:g}/s", "target": "a", "name": "a"},
                         {"type": "poisson", "rate": f"{lam_c:g}/s", "target": "c", "name": "c"}]}
    assert simsys.load(spec).services["g"].service_time.program is not None
    # S_a = A + 2L + B + I·C, S_c = C (ms): means 9 and 4, second moments 106 and 32
    es = {"a": 2 + 2 + 3 + 0.5 * 4, "c": 4.0}
    es2 = {"a": (4 + 9 + (0.5 * 32 - 2**2)) + es["a"] ** 2, "c": 32.0}
    lam = {"a": lam_a, "c": lam_c}
    rho = sum(lam[k] * es[k] / 1e3 for k in lam)
    assert 0.6 < rho < 0.8
    wq = sum(lam[k] * es2[k] / 1e6 for k in lam) / (2 * (1 - rho))

    def per_source(r):
        ok = r.requests[(r.requests["status"] == "ok") & (r.requests["start"] >= 20)]
        return {k: ok.loc[ok["source"] == k, "latency"].mean() for k in lam}

    got = replicate(spec, 10, per_source)
    ci = assert_all_in_ci({f"sojourn entered at {k}": (got[k], wq + es[k] / 1e3) for k in lam})
    # negative control: a worker let go while b answers (holding a + c only) queues far less
    es_free, es2_free = 4.0, (4 + (0.5 * 32 - 2**2)) + 4.0**2
    rho_free = (lam_a * es_free + lam_c * es["c"]) / 1e3
    wq_free = (lam_a * es2_free + lam_c * es2["c"]) / 1e6 / (2 * (1 - rho_free))
    assert wq_free + es["a"] / 1e3 not in ci["sojourn entered at a"]


# -- common random numbers and determinism ----------------------------------------------------
def test_component_streams_are_the_simulators():
    for seed, name in ((0, "component/catalog/time"), (7, "call/a->b")):
        assert np.array_equal(Streams(seed).rng(name).random(5), named_rng(seed, name).random(5))


def test_component_work_needs_only_the_simulators_streams():
    work = simsys.load(scenario("monolith")).services["monolith"].service_time
    via_seed = work.sampler(Streams(4).rng("service/monolith/time"))
    via_streams = work.sampler_from(Streams(4).rng)  # what a simulator hook would call
    assert [via_seed() for _ in range(50)] == [via_streams() for _ in range(50)]
    assert work.components() == ["a", "b", "d", "c"] and work.coins() == [("b", "d")]


def test_a_component_draws_the_same_work_whatever_its_deployment():
    # A constant entry keeps the arrival order at b, so every request gets the same b work in
    # both. (Requests overtake each other at b, so a random c would be drawn in another order:
    # c's k-th draw goes to the k-th request to reach c as microservices but to the k-th to
    # arrive in a monolith, which draws its whole tree at once until the simulator runs
    # component programs.)
    app = {"a": {"service_time": "1ms", "calls": ["b"], "workers": 50},
           "b": {"service_time": {"dist": "exponential", "mean": "3ms"}, "calls": ["c"],
                 "workers": 50},
           "c": {"service_time": "2ms", "workers": 50}}
    base = {"duration": "20s", "app": app,
            "workload": [{"type": "poisson", "rate": "40/s", "target": "a"}]}
    mono, micro, groups = (simsys.run({**base, "deploy": d}, seed=11).requests
                           for d in ("monolith", "microservices", {"groups": {"ab": ["a", "b"]}}))
    assert len(mono) == len(micro) > 600
    assert np.array_equal(mono["start"].to_numpy(), micro["start"].to_numpy())  # same arrivals
    assert np.allclose(mono["latency"].to_numpy(), micro["latency"].to_numpy(), rtol=0, atol=1e-12)
    assert np.allclose(groups["latency"].to_numpy(), micro["latency"].to_numpy(), rtol=0, atol=1e-12)


def test_same_seed_same_results():
    spec = ROOT / "scenarios" / "shop-microservices.yaml"
    a = simsys.run(spec, seed=4, overrides={"duration": "40s", "warmup": "5s"}).summary()
    b = simsys.run(spec, seed=4, overrides={"duration": "40s", "warmup": "5s"}).summary()
    assert a == b
    c1 = compare([chain("monolith"), chain("microservices")], replications=2, seed=9)
    c2 = compare([chain("monolith"), chain("microservices")], replications=2, seed=9)
    cols = [c for c in c1.runs.columns if c != "wall_time"]
    assert c1.runs[cols].equals(c2.runs[cols])
    assert not math.isnan(c1.runs["latency.mean"].iloc[0])


# -- component programs: groups are exact ----------------------------------------------------
SHOP = {
    "storefront": {"service_time": "2ms", "calls": ["catalog", "cart"], "workers": 64},
    "catalog": {"service_time": "5ms", "calls": ["reviews"], "workers": 64},
    "reviews": {"service_time": "3ms", "workers": 64},
    "cart": {"service_time": "3ms", "calls": ["payments"], "workers": 64},
    "payments": {"service_time": "10ms", "workers": 64},
}


def run_app(app, deploy, seed=4, duration="60s", target="storefront", **extra):
    return simsys.run({"duration": duration, "seed": seed, "app": app, "deploy": deploy,
                       "links": {"default": {"latency": "1ms"}},
                       "workload": [{"type": "poisson", "rate": "5/s", "target": target}], **extra})


def test_a_service_entered_at_two_components_runs_each_ones_program():
    # shop is entered at catalog (which calls reviews in-process) and at cart (which calls
    # payments over a link): storefront 2 + link 2 + catalog 5 + in-process call 0.05 + reviews 3
    # + link 2 + cart 3 + link 2 + payments 10, and 4 visits × 2 × 100us of serialization
    r = run_app(SHOP, {"groups": {"shop": ["catalog", "reviews", "cart"]},
                       "serialization": "100us", "in_process_call": "50us"})
    latency = r.requests["latency"].to_numpy()
    assert len(latency) > 200
    assert np.allclose(latency, 0.02905 + 8 * 0.0001, rtol=0, atol=1e-9)
    visits = r.requests.groupby("status").size()
    assert visits.to_dict() == {"ok": len(latency)}


def test_work_after_a_call_that_leaves_the_service_runs_after_its_answer():
    # a calls b (another service), then c in-process: c's work follows b's answer
    app = {"a": {"service_time": "2ms", "calls": ["b", "c"], "workers": 64},
           "b": {"service_time": "5ms", "workers": 64}, "c": {"service_time": "3ms"}}
    r = run_app(app, {"groups": {"g": ["a", "c"]}}, target="a", trace=True)
    start = r.requests.set_index("id")["start"]
    spans = r.spans[r.spans["service"] == "b"].set_index("id")
    assert len(spans) > 200
    assert np.allclose(spans["arrived"] - start.loc[spans.index], 0.003, atol=1e-9)  # a + L
    assert np.allclose(r.requests["latency"], 0.012, atol=1e-9)  # a, 2L, b, then c


def test_a_call_leaving_an_optional_in_process_call_goes_with_it():
    # a calls b in-process half the time, and b always calls d: d is visited exactly when b's
    # work was done, so a request takes a (1ms) or a + b + 2L + d (9ms), nothing in between
    app = {"a": {"service_time": "1ms", "calls": [{"service": "b", "probability": 0.5}],
                 "workers": 64},
           "b": {"service_time": "2ms", "calls": ["d"]}, "d": {"service_time": "4ms", "workers": 64}}
    r = run_app(app, {"groups": {"g": ["a", "b"]}}, target="a", duration="200s", trace=True)
    latency = r.requests["latency"].round(9)
    assert set(latency.unique()) == {0.001, 0.009}
    long = (latency == 0.009).to_numpy()
    n = len(long)
    assert abs(long.mean() - 0.5) < 2.58 * math.sqrt(0.25 / n)  # the in-process coin, 99%
    d_visits = r.spans.loc[r.spans["service"] == "d", "id"]
    assert set(d_visits) == set(r.requests.loc[long, "id"])


def test_a_grouping_with_the_shape_of_microservices_draws_the_same_numbers():
    # shop holds catalog and cart, each entered over a link and calling out over one: every
    # visit and crossing is a microservice's, and each component draws from its own streams,
    # so every request takes exactly as long as under microservices
    app = {name: {**c, "service_time": {"dist": "exponential", "mean": c["service_time"]},
                  "workers": 2} for name, c in SHOP.items()}
    app["catalog"]["calls"] = [{"service": "reviews", "probability": 0.4}]
    micro = run_app(app, "microservices", seed=9)
    grouped = run_app(app, {"groups": {"shop": ["catalog", "cart"]}}, seed=9)
    assert len(micro.requests) > 200
    assert np.array_equal(micro.requests["latency"].to_numpy(),
                          grouped.requests["latency"].to_numpy())


def test_a_dumped_grouping_keeps_where_workloads_enter():
    data = {"duration": "20s", "app": SHOP, "deploy": {"groups": {"billing": ["cart", "payments"]}},
            "workload": [{"type": "poisson", "rate": "5/s", "target": "storefront"},
                         {"type": "poisson", "rate": "5/s", "target": "payments"}]}
    s = simsys.load(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic cannot name the compiled service time's type
        again = simsys.load(s, overrides={"seed": 3})
    assert again.services["billing"].service_time.clients == {1: "payments"}
    one = simsys.run(again).requests
    direct = one[one["source"] == "poisson1"]["latency"]
    assert np.allclose(direct, 0.010, atol=1e-9)  # payments alone, not cart's program


def test_a_grouped_service_s_own_patterns_guard_its_program_calls():
    # deploy.services.g.timeout is the default of g's calls, as for any service: the call a
    # makes to b (50 ms away) times out after 10 ms, then c's work would have followed
    app = {"a": {"service_time": "1ms", "calls": ["b", "c"], "workers": 64},
           "b": {"service_time": "50ms", "workers": 64}, "c": {"service_time": "1ms"}}
    r = run_app(app, {"groups": {"g": ["a", "c"]}, "services": {"g": {"timeout": "10ms"}}},
                target="a")
    assert set(r.requests["status"]) == {"timeout"}
    assert np.allclose(r.requests["latency"], 0.011, atol=1e-9)  # a's 1 ms, then 10 ms
    assert r.calls.loc["a->b", "timeouts"] == len(r.requests)  # keyed by the component call


def test_processor_sharing_cannot_run_component_programs(tmp_path, monkeypatch):
    text = edit("    billing: [cart, payments]\n",
                "    billing: [cart, payments]\n  services: {storefront: {discipline: ps}}\n")
    text += "  - {type: poisson, rate: 1/s, target: catalog}\n"  # storefront entered twice
    lines = check(tmp_path, text, monkeypatch)
    assert len(lines) == 1 and "deploy.services.storefront.discipline: service 'storefront' " \
        "runs component programs" in lines[0], lines


def random_app(rng: np.random.Generator) -> tuple[dict, dict]:
    """A random acyclic app of constant-work components (some calls in fan-outs, some with a
    quorum) and a random grouping of it."""
    n = int(rng.integers(2, 7))
    names = [f"c{i}" for i in range(n)]
    app = {}
    for i, name in enumerate(names):
        calls: list = [{"service": names[j], **({"probability": float(rng.choice([0.3, 0.5, 0.8]))}
                                                if rng.random() < 0.4 else {})}
                       for j in range(i + 1, n) if rng.random() < 0.5]
        if len(calls) >= 2 and rng.random() < 0.5:  # the first few at once, maybe a quorum
            k = int(rng.integers(2, len(calls) + 1))
            fan = {"parallel": calls[:k]}
            if rng.random() < 0.5:
                fan["quorum"] = int(rng.integers(1, k + 1))
            calls = [fan, *calls[k:]]
        # workers enough that no visit waits (with a quorum, the members it does not wait
        # for still work, and would hold up later visits of one request to a 1-worker service)
        app[name] = {"service_time": str(rng.choice(["1ms", "2ms", "3ms", "5ms"])),
                     "calls": calls, "workers": 16}
    k = int(rng.integers(1, n + 1))
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(f"g{int(rng.integers(k))}", []).append(name)
    return app, groups


@pytest.mark.parametrize("seed", range(30))
def test_every_deployment_gives_every_request_the_same_latency(seed):
    # One user at a time and networks that cost nothing: a request's latency is the work of
    # the components it visits (a fan-out: its quorum-th fastest member), whatever the
    # deployment, and each component call draws its coin from the same stream in every
    # deployment, so the latencies agree request by request
    rng = np.random.default_rng(seed)
    app, groups = random_app(rng)
    target = f"c{int(rng.integers(len(app)))}"
    base = {"duration": "100s", "seed": seed, "app": app,
            "workload": [{"type": "closed", "users": 1, "think_time": "1s", "target": target}]}
    latencies = {}
    for name, deploy in (("monolith", "monolith"), ("microservices", "microservices"),
                         ("groups", {"groups": groups})):
        try:
            r = simsys.run({**base, "deploy": deploy})
        except simsys.ScenarioError as exc:  # groupings the simulator refuses, and says why
            assert name == "groups", exc
            assert "call each other back" in str(exc) or "fan-out" in str(exc), exc
            continue
        latencies[name] = r.requests.sort_values("id")["latency"].to_numpy()
    micro = latencies["microservices"]
    assert len(micro) > 90
    for name, got in latencies.items():
        assert np.allclose(got, micro, rtol=0, atol=1e-9), name
