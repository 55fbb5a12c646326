"""Scenario → ``networkx.DiGraph``: the single source of truth for the system's structure.

Nodes are services (``kind="service"``) and clients (``kind="client"``, one per workload); edges
are calls, carrying the link they travel over. Graph-level attributes (``G.graph``) hold the run
settings. :func:`simsys.run` builds its simulation from this graph alone, so a graph edited with
networkx simulates what it now says.

Node attributes of a service: ``replicas, workers, queue, balancer, service_time, memory``.
Edge attributes of a call: ``order`` (calls are made in increasing order), ``probability``,
``latency`` (a distribution, one way, seconds) and ``loss`` (probability per message). An edge
with ``route=True`` is a route instead: after its visit the request moves on to the target with
``probability`` (the worker freed), over a link with that ``latency`` and ``loss``.

Services deployed from an ``app:`` say which component a visit enters at: ``entry`` on the
edges and client nodes that lead to them; their edges' ``key`` names the component call
(``a->b``) whose random streams they use, so every deployment of an app draws the same numbers. A deployed service whose visits are not one stretch of
work then its calls has a ``program`` (:class:`simsys.spec.call_tree.Program`): its calls, with their
probabilities and patterns, are in the program; its out-edges carry only the links they cross.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from .errors import BuildError, Problem, ScenarioError
from .spec.distributions import Constant
from .spec.model import CLIENT, Memory, Scenario, Service
from .spec.patterns import CallPolicy

SERVICE_DEFAULTS: dict[str, Any] = {
    "replicas": 1,
    "workers": 1,
    "queue": None,
    "balancer": "round_robin",
    "service_time": Constant(value=0.0),
    "memory": Memory(),
    "failures": None,
    "discipline": "fifo",
    "shed": None,
    "autoscale": None,
    "discovery": None,
    "price": 0.0,
    "websocket": None,     # WebSocketConfig: the service accepts WebSocket upgrades
    "blocking": "reject",  # a route to a full queue: fail the request, or "wait" (Type I)
}
EDGE_DEFAULTS: dict[str, Any] = {
    "probability": 1.0,
    "latency": Constant(value=0.0),
    "loss": 0.0,
    "policy": None,        # a CallPolicy (timeout, retry, breaker, …) or None
    "parallel": None,      # index of the fan-out group the call belongs to, or None
    "quorum": None,
}


def build_graph(spec: Scenario | Any) -> nx.DiGraph:
    """Return the topology of a scenario as a directed graph.

    Parameters
    ----------
    spec
        A :class:`~simsys.spec.Scenario`, a scenario dict or a path to a YAML file.

    Examples
    --------
    >>> G = build_graph({"services": {"web": {"calls": ["db"]}, "db": {}}})
    >>> sorted(G.edges)
    [('web', 'db')]
    >>> G.nodes["web"]["replicas"]
    1
    """
    from .spec.load import load

    s = load(spec)
    G = nx.DiGraph()
    G.graph.update(
        name=s.name,
        seed=s.seed,
        duration=s.max_duration,
        stop_rule=s.stop_rule,     # UntilPrecision or None (simsys.spec.run_length)
        warmup=s.warmup,
        sample_every=s.sample_every,
        chaos=s.chaos,
        recovery=s.recovery,
        faults=s.faults,
        experiment=s.experiment,
        trace=s.trace,
        scenario=s,
    )
    for name, svc in s.services.items():
        G.add_node(name, kind="service", **_service_attrs(svc))
        program = getattr(svc.service_time, "program", None)
        if program is not None:  # an app's deployed service whose visits run programs
            policies = [r.call.merged(svc) for r in program.remotes]
            G.nodes[name]["program"] = program.with_policies(
                [None if p.empty else p for p in policies])
    for name, svc in s.services.items():
        remote = getattr(svc.service_time, "remote_calls", {})
        for order, call, group in svc.flat_calls():
            link = s.link(name, call.service)
            policy = call.merged(svc)  # the service's own pattern keys are the defaults
            G.add_edge(
                name,
                call.service,
                order=order,
                probability=call.probability,
                latency=link.latency,
                loss=link.loss,
                policy=None if policy.empty else policy,
                parallel=order if group is not None else None,
                quorum=group.quorum if group is not None else None,
            )
            if call.service in remote:  # streams named by the component call (see Program)
                G.edges[name, call.service]["key"] = remote[call.service]
                G.edges[name, call.service]["entry"] = remote[call.service].split("->")[1]
    for name, svc in s.services.items():
        for order, route in enumerate(svc.routes):  # asynchronous: the request moves on
            link = s.link(name, route.service)
            G.add_edge(name, route.service, route=True, order=order,
                       probability=route.probability, latency=link.latency, loss=link.loss)
    for i, w in enumerate(s.workload):
        client = f"{CLIENT}:{s.workload_name(i)}"
        G.add_node(client, kind="client", workload=w, index=i)
        entry = getattr(s.services[w.target].service_time, "clients", {}).get(i)
        if entry is not None:
            G.nodes[client]["entry"] = entry
        link = s.link(CLIENT, w.target)
        policy = CallPolicy(timeout=getattr(w, "timeout", None), retry=getattr(w, "retry", None))
        G.add_edge(client, w.target, order=0, probability=1.0, latency=link.latency,
                   loss=link.loss, policy=None if policy.empty else policy)
    return G


def _service_attrs(svc: Service) -> dict[str, Any]:
    return {key: getattr(svc, key) for key in SERVICE_DEFAULTS}


def services(G: nx.DiGraph) -> list[str]:
    """Service nodes in insertion order."""
    return [n for n, kind in G.nodes(data="kind", default="service") if kind == "service"]


def clients(G: nx.DiGraph) -> list[str]:
    """Client (workload) nodes in insertion order."""
    return [n for n, kind in G.nodes(data="kind") if kind == "client"]


def service_attrs(G: nx.DiGraph, node: str) -> dict[str, Any]:
    """A service node's attributes with defaults filled in for any the user left out."""
    attrs = {**SERVICE_DEFAULTS, **G.nodes[node]}
    if not isinstance(attrs["replicas"], int) or attrs["replicas"] < 1:
        raise BuildError(f"node {node!r}: replicas must be a whole number ≥ 1, got {attrs['replicas']!r}")
    if not isinstance(attrs["workers"], int) or attrs["workers"] < 1:
        raise BuildError(f"node {node!r}: workers must be a whole number ≥ 1, got {attrs['workers']!r}")
    if not hasattr(attrs["service_time"], "sampler"):
        raise BuildError(f"node {node!r}: service_time must be a simsys distribution")
    return attrs


def calls(G: nx.DiGraph, node: str) -> list[tuple[str, dict[str, Any]]]:
    """Out-edges of ``node`` that are calls, as (target, attributes) in call order, defaults
    filled in."""
    out = []
    edges = [(v, data) for _, v, data in G.out_edges(node, data=True) if not data.get("route")]
    for pos, (v, data) in enumerate(edges):
        attrs = {**EDGE_DEFAULTS, "order": pos, **data}
        if G.nodes[v].get("kind", "service") != "service":
            raise BuildError(f"edge {node!r}->{v!r}: calls must end at a service node")
        out.append((v, attrs))
    out.sort(key=lambda item: item[1]["order"])
    return out


def routes(G: nx.DiGraph, node: str) -> list[tuple[str, dict[str, Any]]]:
    """Out-edges of ``node`` that are routes (``route=True``: the request moves on when its
    visit ends), as (target, attributes) in order."""
    out = [(v, {**EDGE_DEFAULTS, **data}) for _, v, data in G.out_edges(node, data=True)
           if data.get("route")]
    out.sort(key=lambda item: item[1].get("order", 0))
    return out


def call_graph(G: nx.DiGraph) -> nx.DiGraph:
    """The services and the calls between them (routes left out: they may loop)."""
    names = services(G)
    H = nx.DiGraph()
    H.add_nodes_from(names)
    H.add_edges_from((u, v) for u, v, data in G.subgraph(names).edges(data=True)
                     if not data.get("route"))
    return H


def check(G: nx.DiGraph) -> None:
    """Refuse graphs the simulation cannot run: cycles of synchronous calls, no services."""
    names = services(G)
    if not names:
        raise BuildError("the graph has no service nodes")
    for cycle in nx.simple_cycles(call_graph(G)):
        raise BuildError("synchronous calls form a cycle: " + " -> ".join([*cycle, cycle[0]]))
    for key in ("duration", "seed"):
        if key not in G.graph:
            raise BuildError(f"G.graph lacks {key!r}; build graphs with simsys.build_graph")


def app_graph(spec: Any) -> nx.DiGraph:
    """The logical application: one node per component, one edge per call, whatever the
    deployment (``simsys.build_graph`` gives the deployed services).

    Node attributes: ``kind="component"``, ``service`` (the deployed service it runs in),
    ``service_time``, ``memory``, ``replicas``, ``workers``, ``queue`` (as the component asks,
    None when unset). Edge attributes: ``order``, ``probability``, ``local`` (True for an
    in-process call in this deployment). ``G.graph`` holds ``name``, ``style`` and
    ``services`` (deployed service -> components).

    Examples
    --------
    >>> G = app_graph({"app": {"web": {"calls": ["db"]}, "db": {}}, "deploy": "monolith"})
    >>> G.edges["web", "db"]["local"], G.nodes["db"]["service"]
    (True, 'monolith')
    """
    from .spec.app_plan import deployment
    from .spec.load import load

    s = load(spec)
    if s.app is None:
        raise ScenarioError([Problem("app", "this scenario has no app: (it describes services)")])
    plan = deployment(s)
    assert plan is not None
    G = nx.DiGraph(name=s.name, style=plan.style, services=plan.services)
    for name, comp in s.app.items():
        G.add_node(name, kind="component", service=plan.host[name], service_time=comp.service_time,
                   memory=comp.memory, replicas=comp.replicas, workers=comp.workers,
                   queue=comp.queue)
    for name, comp in s.app.items():
        for order, call, group in comp.flat_calls():
            G.add_edge(name, call.service, order=order, probability=call.probability,
                       parallel=group is not None,
                       local=plan.host[name] == plan.host[call.service])
    return G
