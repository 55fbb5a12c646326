"""simsys: discrete-event simulation of distributed systems.

Describe services, links and workloads in a scenario (YAML or dict), run it on simpy, and read
latency, errors, memory and availability as pandas DataFrames and plots.

>>> import simsys
>>> r = simsys.run("scenarios/checkout.yaml")          # doctest: +SKIP
>>> r.summary()["latency"]["p99"]                       # doctest: +SKIP
"""

from .errors import BuildError, ScenarioError, SimsysError
from .result import Result
from .runner import run
from .spec.load import load
from .spec.model import Scenario
from .sweep import Sweep, sweep
from .topology import build_graph

__version__ = "0.1.0"

__all__ = [
    "BuildError",
    "Result",
    "Scenario",
    "ScenarioError",
    "SimsysError",
    "Sweep",
    "__version__",
    "build_graph",
    "load",
    "run",
    "sweep",
]
