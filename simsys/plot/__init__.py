"""Plots (matplotlib only). Each function takes a Result (or a Sweep) and ``ax=`` and returns
the Axes it drew on (``dashboard``: the Figure). Nothing here calls ``plt.show()``.

>>> import simsys.plot as sp                                    # doctest: +SKIP
>>> sp.latency_cdf(result); sp.topology(simsys.build_graph("scenarios/checkout.yaml"))  # doctest: +SKIP

matplotlib is imported on first use of a plotting name, so ``import simsys.plot`` and
:mod:`simsys.display` stay light.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "ResultPlots": "result_plots",
    "latency_cdf": "request_plots",
    "latency_over_time": "request_plots",
    "error_rate_over_time": "request_plots",
    "throughput_over_time": "request_plots",
    "memory": "state_plots",
    "queues": "state_plots",
    "connections": "state_plots",
    "circuit_breakers": "state_plots",
    "scaling": "state_plots",
    "incident_timeline": "incident_plots",
    "mttr_hist": "incident_plots",
    "dashboard": "result_plots",
    "topology": "topology_plot",
    "SweepPlots": "sweep_plots",
    "plot_polling_vs_websocket": "websocket_plots",
    "PALETTE": "style",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        module = importlib.import_module(f".{_NAMES[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
