"""``simsys.run``: scenario (file, dict, spec or graph) → :class:`~simsys.result.Result`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import networkx as nx

from . import budget
from .result import Result
from .sim.simulation import Simulation
from .spec.load import load
from .spec.model import Scenario
from .topology import build_graph

Progress = bool | Callable[[float], None] | None


def run(
    spec: str | Path | Mapping[str, Any] | Scenario | nx.DiGraph,
    seed: int | None = None,
    *,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    progress: Progress = None,
    max_events: float | None = None,
) -> Result:
    """Simulate a scenario and return its :class:`~simsys.result.Result`.

    Parameters
    ----------
    spec
        A YAML file path, a scenario dict, a :class:`~simsys.spec.Scenario`, or a graph from
        :func:`simsys.build_graph` (possibly edited with networkx).
    seed
        Overrides the scenario's ``seed``. The same scenario and seed give identical results.
    overrides
        ``{"services.web.replicas": 3}`` or ``["services.web.replicas=3"]``, validated like the file.
    progress
        ``True`` shows a progress bar in simulated seconds (notebook-aware); a callable gets the
        simulated time at each step.
    max_events
        The work budget: a run whose estimated simulated events exceed it is refused before it
        starts (:func:`simsys.budget.check`; default about an hour on a 2-core laptop,
        ``math.inf`` for no limit).

    Examples
    --------
    >>> r = run({"duration": "1min", "services": {"web": {"service_time": "10ms"}},
    ...          "workload": [{"type": "poisson", "rate": "20/s", "target": "web"}]}, seed=1)
    >>> r.summary()["requests"]["total"] > 1000
    True
    """
    if isinstance(spec, nx.DiGraph):
        if overrides:
            raise TypeError("overrides apply to scenarios, not graphs; edit the graph instead")
        G = spec
    else:
        G = build_graph(load(spec, overrides))
    budget.check(G, max_events)
    sim = Simulation(G, seed)
    bar = None
    callback: Callable[[float], None] | None
    if progress is True:
        from .progress import SimTimeBar

        bar = callback = SimTimeBar(sim.duration, G.graph.get("name", "run"))
        bar.attach(sim.env)
    elif callable(progress):
        callback = progress
        attach = getattr(progress, "attach", None)
        if attach is not None:  # a bar that shows events per second counts them in the engine
            attach(sim.env)
    else:
        callback = None
    started = time.perf_counter()
    try:
        records = sim.run(progress=callback)
    finally:
        if bar is not None:
            bar.close()
    return Result(records, G, sim.seed, wall_time=time.perf_counter() - started)
