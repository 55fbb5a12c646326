"""The public Python API: the names simsys exports, and the graph as the source of structure."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest

import simsys
from simsys.spec.distributions import Constant, Distribution, constant

ROOT = Path(__file__).resolve().parents[1]


def documented_names() -> set[str]:
    """Names listed between ``<!-- api -->`` and ``<!-- /api -->`` in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- api -->(.*?)<!-- /api -->", text, re.S)
    assert block, "README.md lacks its <!-- api --> … <!-- /api --> list of public names"
    return set(re.findall(r"`simsys\.(\w+)", block.group(1)))


def test_all_matches_the_documented_names():
    exported = set(simsys.__all__) - {"__version__"}
    documented = documented_names()
    assert exported - documented == set(), (
        "exported but not documented: add a line to the <!-- api --> list of README.md")
    assert documented - exported == set(), (
        "documented in README.md's <!-- api --> list but not in simsys.__all__")


def test_all_has_no_duplicates_and_each_name_is_importable():
    assert len(simsys.__all__) == len(set(simsys.__all__))
    for name in simsys.__all__:
        assert getattr(simsys, name) is not None, name
        exec(f"from simsys import {name}", {})  # noqa: S102 - the import statement users write


def test_public_callables_have_docstrings_with_examples():
    for name in ("run", "load", "build_graph"):
        doc = getattr(simsys, name).__doc__ or ""
        assert "Examples" in doc and ">>>" in doc, name


def test_design_names_are_exported():
    # DESIGN.md: run, load, build_graph, sweep, compare, Result, errors.
    for name in ("run", "load", "build_graph", "Result", "SimsysError", "ScenarioError",
                 "BuildError"):
        assert name in simsys.__all__, name
    missing = [n for n in ("sweep", "compare") if n not in simsys.__all__]
    if missing:
        pytest.xfail(f"not exported yet: {', '.join(missing)}")


def test_errors_form_one_tree():
    assert issubclass(simsys.ScenarioError, simsys.SimsysError)
    assert issubclass(simsys.BuildError, simsys.SimsysError)
    assert issubclass(simsys.ScenarioError, ValueError)  # a bad value, for code that catches those


def test_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", simsys.__version__)
    assert importlib.metadata.version("simsys") == simsys.__version__


# -- the graph ----------------------------------------------------------------------------------
SHOP = {
    "name": "shop",
    "seed": 1,
    "duration": "4s",
    "services": {
        "web": {"replicas": 2, "workers": 3, "queue": 5, "service_time": "0.25s",
                "calls": ["db", {"service": "search", "probability": 0.5}]},
        "db": {"balancer": "least_connections", "service_time": "0.5s"},
        "search": {"service_time": {"dist": "exponential", "mean": "10ms"}},
    },
    "links": {"default": {"latency": "1ms"}, "web->db": {"latency": "2ms", "loss": 0.01}},
    "workload": [{"type": "closed", "users": 1, "target": "web", "name": "users"}],
}


def test_build_graph_returns_a_digraph_with_attributes():
    G = simsys.build_graph(SHOP)
    assert isinstance(G, nx.DiGraph)
    assert set(G.nodes) == {"web", "db", "search", "client:users"}
    web = G.nodes["web"]
    assert web["kind"] == "service"
    assert (web["replicas"], web["workers"], web["queue"], web["balancer"]) == (2, 3, 5,
                                                                               "round_robin")
    assert web["service_time"] == Constant(value=0.25)
    assert G.nodes["db"]["balancer"] == "least_connections"
    assert G.nodes["search"]["service_time"].mean == pytest.approx(0.01)
    assert G.nodes["client:users"]["kind"] == "client"
    assert G.nodes["client:users"]["workload"].users == 1

    db = G.edges["web", "db"]
    assert (db["order"], db["probability"], db["loss"]) == (0, 1.0, 0.01)
    assert db["latency"].mean == pytest.approx(0.002)
    search = G.edges["web", "search"]
    assert (search["order"], search["probability"]) == (1, 0.5)
    assert search["latency"].mean == pytest.approx(0.001)  # the default link
    assert G.edges["client:users", "web"]["latency"].mean == 0.0  # clients: no default link

    assert G.graph["duration"] == 4.0 and G.graph["seed"] == 1 and G.graph["name"] == "shop"


def test_the_graph_answers_networkx_questions():
    G = simsys.build_graph(SHOP)
    assert nx.is_directed_acyclic_graph(G)
    assert nx.shortest_path(G, "client:users", "db") == ["client:users", "web", "db"]
    assert sorted(G.successors("web")) == ["db", "search"]
    assert nx.descendants(G, "client:users") == {"web", "db", "search"}


def test_build_graph_accepts_a_path_a_dict_and_a_scenario():
    path = ROOT / "scenarios" / "checkout.yaml"
    spec = simsys.load(path)
    for source in (path, str(path), spec):
        G = simsys.build_graph(source)
        assert {"gateway", "catalog", "cart", "payments"} <= set(G.nodes)
        assert G.edges["cart", "payments"]["probability"] == 0.3


def _chain(**links) -> dict:
    return {
        "duration": "4s",
        "services": {"web": {"service_time": "0.25s", "calls": ["db"]},
                     "db": {"service_time": "0.5s"}},
        "links": links,
        "workload": [{"type": "closed", "users": 1, "target": "web"}],
    }


def test_an_unedited_graph_runs_like_its_scenario():
    G = simsys.build_graph(SHOP)
    assert simsys.run(G).requests.equals(simsys.run(SHOP).requests)


def test_edited_replicas_are_simulated():
    G = simsys.build_graph({
        "duration": "10s",
        "services": {"web": {"service_time": "1s"}},
        "workload": [{"type": "closed", "users": 1, "target": "web"}],
    })
    G.nodes["web"]["replicas"] = 3
    r = simsys.run(G)
    assert list(r.requests["instance"]) == [0, 1, 2, 0, 1, 2, 0, 1, 2]
    assert sorted(r.timeseries["instance"][r.timeseries["instance"] >= 0].unique()) == [0, 1, 2]


def test_removed_edge_is_not_called():
    G = simsys.build_graph(_chain())
    assert set(simsys.run(G).requests["latency"]) == {0.75}
    G.remove_edge("web", "db")
    r = simsys.run(G)
    assert set(r.requests["latency"]) == {0.25}
    assert r.summary()["services"]["db"]["utilization"] == 0.0


def test_added_node_and_edge_with_defaults_filled_in():
    G = simsys.build_graph(_chain())
    G.add_node("cache", kind="service", service_time=constant(0.125))
    G.add_edge("web", "cache", order=1, latency=constant(0.0625))
    r = simsys.run(G)
    # 0.25 (web) + 0.5 (db) + 0.125 (cache) + 2 × 0.0625 (web->cache)
    assert set(r.requests["latency"]) == {1.0}
    assert "cache" in r.summary()["services"]


def test_edited_edge_latency_and_call_order():
    G = simsys.build_graph(_chain())
    G.edges["web", "db"]["latency"] = constant(0.125)
    assert set(simsys.run(G).requests["latency"]) == {1.0}  # 0.25 + 0.5 + 2 × 0.125


def test_edited_run_settings():
    G = simsys.build_graph(_chain())
    G.graph["duration"] = 8.0
    r = simsys.run(G)
    assert r.duration == 8.0
    assert len(r.requests) == 10  # one request every 0.75 s


def test_graphs_that_cannot_run_raise_build_error():
    G = simsys.build_graph(_chain())
    G.nodes["db"]["replicas"] = 0
    with pytest.raises(simsys.BuildError, match="replicas"):
        simsys.run(G)
    G = simsys.build_graph(_chain())
    G.add_edge("db", "web")
    with pytest.raises(simsys.BuildError, match="cycle"):
        simsys.run(G)
    G = simsys.build_graph(_chain())
    G.nodes["web"]["service_time"] = 0.25  # a number, not a distribution
    with pytest.raises(simsys.BuildError, match="service_time"):
        simsys.run(G)


def test_graph_run_refuses_overrides():
    with pytest.raises(TypeError):
        simsys.run(simsys.build_graph(_chain()), overrides={"duration": 5})


# -- results ------------------------------------------------------------------------------------
def test_result_tables_are_dataframes():
    r = simsys.run(SHOP)
    for name in ("requests", "incidents", "timeseries"):
        assert isinstance(getattr(r, name), pd.DataFrame), name
    assert {"id", "source", "start", "end", "latency", "status", "attempts", "instance"} <= set(
        r.requests.columns)
    assert {"time", "service", "instance", "metric", "value"} <= set(r.timeseries.columns)
    assert {"service", "instance", "kind", "failed_at", "detected_at", "recovered_at"} <= set(
        r.incidents.columns)
    assert "shop" in repr(r)


def test_load_returns_a_validated_scenario():
    s = simsys.load(SHOP, overrides={"services.web.replicas": 4})
    assert isinstance(s, simsys.Scenario)
    assert s.services["web"].replicas == 4
    assert SHOP["services"]["web"]["replicas"] == 2  # the input is not mutated
    with pytest.raises(simsys.ScenarioError) as info:
        simsys.load(SHOP, overrides={"services.web.replicas": 0})
    assert [p.path for p in info.value.problems] == ["services.web.replicas"]


def test_distribution_type_is_public():
    """``simsys.spec.Distribution`` is the public annotation for a duration distribution: a
    pydantic field typed with it reads a bare duration as a constant and refuses an unknown
    distribution, as scenario files do."""
    import pydantic

    import simsys.spec

    assert simsys.spec.Distribution is Distribution and "Distribution" in simsys.spec.__all__
    field = pydantic.TypeAdapter(Distribution)
    assert field.validate_python("5ms") == constant(0.005)
    assert field.validate_python({"dist": "exponential", "mean": "2ms"}).mean == 0.002
    with pytest.raises(pydantic.ValidationError, match="unknown distribution 'gamma'"):
        field.validate_python({"dist": "gamma", "mean": "2ms"})
