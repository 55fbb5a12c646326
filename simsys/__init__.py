"""simsys: discrete-event simulation of distributed systems.

Describe services, links and workloads in a scenario (YAML or dict), run it on simpy, and read
latency, errors, memory and availability as pandas DataFrames and plots.

>>> import simsys
>>> r = simsys.run("scenarios/checkout.yaml")          # doctest: +SKIP
>>> r.summary()["latency"]["p99"]                       # doctest: +SKIP

Public names are imported on first use (PEP 562), so ``import simsys`` — and ``simsys --help``
— do not pay for pandas, numpy and simpy until something needs them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import BuildError, ScenarioError, SimsysError

__version__ = "0.1.0"

# public name → module that defines it
_LAZY = {
    "Result": "simsys.result",
    "run": "simsys.runner",
    "load": "simsys.spec.load",
    "Scenario": "simsys.spec.model",
    "build_graph": "simsys.topology",
    "app_graph": "simsys.topology",
    "compare": "simsys.comparing",
    "Comparison": "simsys.comparing",
    "Sweep": "simsys.sweeping",
    "sweep": "simsys.sweeping",
}

if TYPE_CHECKING:  # for type checkers and IDEs; at run time these come from __getattr__
    from .comparing import Comparison, compare
    from .result import Result
    from .runner import run
    from .spec.load import load
    from .spec.model import Scenario
    from .sweeping import Sweep, sweep
    from .topology import app_graph, build_graph


_SUBPACKAGES = frozenset({"plot", "spec", "sim", "sweeping"})


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:  # ``simsys.plot.latency_cdf(r)`` after a bare ``import simsys``
        return import_module(f"{__name__}.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'simsys' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BuildError",
    "Comparison",
    "Result",
    "Scenario",
    "ScenarioError",
    "SimsysError",
    "Sweep",
    "__version__",
    "app_graph",
    "build_graph",
    "compare",
    "load",
    "run",
    "sweep",
]
