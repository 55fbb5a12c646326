"""Chaos Toolkit, for real: the provider module ``chaos run`` calls, and the experiments simsys
exports in Chaos Toolkit's format (chaostoolkit 1.19, chaostoolkit-lib 1.44).

A "chaos dry-run": take a Chaos Toolkit experiment, point it at a scenario, and ``chaos run``
it against the simulated system before running it against production. The experiment names
the scenario in its configuration::

    "configuration": {"simsys": {"scenario": "scenarios/checkout.yaml", "seed": 7,
                                 "start": 180}}

and its activities use this module as their python provider. How one ``chaos run`` drives a
simulation: a *session* (one per run of an experiment: chaoslib hands every activity the same
``configuration["simsys"]`` mapping) holds a simulated clock, starting at ``start`` seconds (the
time the steady state is first checked), and the faults the actions have started. An action
(:func:`kill_replicas`, :func:`add_latency`, …) starts a fault *now* on the clock; :func:`wait`
moves the clock on (simulated seconds; chaoslib's own ``pauses`` are wall-clock sleeps and
move nothing); :func:`end_faults` ends them (a rollback). A probe (:func:`latency_percentile`,
:func:`error_rate`, :func:`availability`, …) simulates the scenario from 0 up to the clock,
with every fault so far at its time, and measures the requests that finished in the
``window`` seconds before the clock. The same seed and faults give the same run, so each probe
sees the prefix of one simulation; a window with no requests is a failed probe, not a pass.

The same functions describe simsys's own experiments (the ``experiment:`` key) in its journals
and in ``simsys experiment export``, so what ``chaos run`` does with an exported experiment is
what simsys judged.
"""

from __future__ import annotations

import threading
from typing import Any

MODULE = "simsys.chaostoolkit"
CHAOSLIB_FORMAT = "1.44.0"  # the chaoslib version whose experiment and journal format we follow

# probe functions by the simsys metric they measure
_STATISTIC_PERCENTILE = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9,
                         "max": 100.0}
# action functions by fault kind, and the fault field each argument fills
ACTIONS = {
    "crash": ("kill_replicas", {"service": "target", "mode": "mode", "value": "value"}),
    "latency": ("add_latency", {"target": "target", "delay": "delay"}),
    "loss": ("drop_messages", {"target": "target", "loss": "loss"}),
    "partition": ("partition", {"groups": "groups"}),
    "slowdown": ("slow_down", {"service": "target", "factor": "factor"}),
    "memory_leak": ("leak_memory", {"service": "target", "rate": "rate"}),
}
PROBES = ("latency_percentile", "latency_mean", "error_rate", "throughput", "availability")
OTHER_ACTIONS = ("wait", "end_faults")


class ActivityFailed(Exception):
    """Raised by a probe that cannot measure (chaoslib's ActivityFailed when it is installed,
    so chaoslib records the probe as failed)."""


def _activity_failed(message: str) -> Exception:
    try:
        from chaoslib.exceptions import ActivityFailed as Failed
    except ImportError:  # used without chaoslib (simsys's own judgment)
        return ActivityFailed(message)
    return Failed(message)


# -- the activities simsys's metrics and faults are, in Chaos Toolkit's words ------------------
def probe_call(metric: str, window: float) -> tuple[str, dict[str, Any]]:
    """The provider function and arguments that measure ``metric`` over ``window`` seconds."""
    if metric == "latency.mean":
        return "latency_mean", {"window": window}
    if metric.startswith("latency."):
        return "latency_percentile", {"percentile": _STATISTIC_PERCENTILE[metric[8:]],
                                      "window": window}
    if metric in ("error_rate", "throughput"):
        return metric, {"window": window}
    if metric.startswith("services.") and metric.endswith(".availability"):
        return "availability", {"service": metric[len("services."):-len(".availability")],
                                "window": window}
    raise ValueError(f"no Chaos Toolkit probe measures {metric!r}")


def metric_of(func: str, arguments: dict[str, Any]) -> str:
    """The simsys metric a provider call measures (the inverse of :func:`probe_call`)."""
    if func == "latency_mean":
        return "latency.mean"
    if func == "latency_percentile":
        p = float(arguments.get("percentile", 99.0))
        for stat, value in _STATISTIC_PERCENTILE.items():
            if abs(value - p) < 1e-9:
                return f"latency.{stat}"
        raise ValueError(f"percentile: expected one of {sorted(_STATISTIC_PERCENTILE.values())}, "
                         f"got {p:g}")
    if func in ("error_rate", "throughput"):
        return func
    if func == "availability":
        return f"services.{arguments['service']}.availability"
    raise ValueError(f"{func!r} is not a probe of {MODULE}; probes are: {', '.join(PROBES)}")


def probe_activity(name: str, metric: str, window: float, low: float, high: float) -> dict:
    """A steady-state probe in Chaos Toolkit's form: a python provider and a range tolerance."""
    func, arguments = probe_call(metric, window)
    return {"type": "probe", "name": name,
            "tolerance": {"type": "range", "range": [low, high]},
            "provider": {"type": "python", "module": MODULE, "func": func,
                         "arguments": arguments}}


def action_activity(name: str, fault: dict[str, Any]) -> dict:
    """A fault (plain data, as in a scenario, times in seconds) as a Chaos Toolkit action."""
    func, fields = ACTIONS[fault["kind"]]
    arguments = {arg: fault[field] for arg, field in fields.items()
                 if fault.get(field) is not None}
    if fault.get("duration") is not None:
        arguments["duration"] = fault["duration"]
    arguments["name"] = name  # the fault's name: it also names its random streams
    return {"type": "action", "name": name,
            "provider": {"type": "python", "module": MODULE, "func": func,
                         "arguments": arguments}}


def wait_activity(seconds: float) -> dict:
    return {"type": "action", "name": f"wait {seconds:g} simulated s",
            "provider": {"type": "python", "module": MODULE, "func": "wait",
                         "arguments": {"seconds": seconds}}}


def end_faults_activity(name: str, ends: str = "all") -> dict:
    return {"type": "action", "name": name,
            "provider": {"type": "python", "module": MODULE, "func": "end_faults",
                         "arguments": {"ends": ends}}}


# -- sessions: one simulated clock per run of an experiment ------------------------------------
class Session:
    """The simulated clock and the faults of one ``chaos run`` (see the module docstring)."""

    def __init__(self, settings: dict[str, Any]):
        from .spec.load import read

        scenario = settings.get("scenario")
        if not isinstance(scenario, str):
            raise _activity_failed("configuration.simsys.scenario: expected the path of a "
                                   "simsys scenario file")
        data, _, _ = read(scenario)
        data.pop("experiment", None)  # the experiment being run is this one
        self.base = data
        self.seed = settings.get("seed", data.get("seed", 0))
        self.clock = float(settings.get("start", 60.0))
        self.faults: list[dict[str, Any]] = []
        self._cached: tuple[Any, Any] | None = None

    def start(self, name: str | None, fault: dict[str, Any]) -> str:
        fault = {k: v for k, v in fault.items() if v is not None}
        fault["name"] = name or f"action[{len(self.faults)}]"
        fault["at"] = self.clock
        self.faults.append(fault)
        return fault["name"]

    def end(self, ends: str) -> list[str]:
        ended = []
        for fault in self.faults:
            if ends not in ("all", fault["name"]):
                continue
            end = fault["at"] + fault.get("duration", float("inf"))
            if end > self.clock:
                ended.append(fault["name"])
                if self.clock > fault["at"]:
                    fault["duration"] = self.clock - fault["at"]
                else:
                    fault["cancelled"] = True
        return ended

    def result(self) -> Any:
        """The simulation from 0 to the clock with every fault so far (cached)."""
        from .runner import run

        faults = [{k: v for k, v in f.items() if k != "cancelled"} for f in self.faults
                  if not f.get("cancelled")]
        key = (repr(faults), self.clock)
        if self._cached is None or self._cached[0] != key:
            data = {**self.base, "faults": [*self.base.get("faults", []), *faults],
                    "duration": self.clock}
            warmup = data.get("warmup")
            if isinstance(warmup, int | float) and warmup >= self.clock:
                data["warmup"] = 0
            elif isinstance(warmup, str) and warmup != "auto":
                from .spec.units import parse_duration

                if parse_duration(warmup) >= self.clock:
                    data["warmup"] = 0
            self._cached = (key, run(data, seed=self.seed))
        return self._cached[1]


_SESSIONS: dict[int, tuple[dict[str, Any], Session]] = {}
_LOCK = threading.Lock()


def session(configuration: dict[str, Any] | None) -> Session:
    """The session of the experiment run this ``configuration`` belongs to."""
    settings = (configuration or {}).get("simsys")
    if not isinstance(settings, dict):
        raise _activity_failed('the experiment needs "configuration": {"simsys": {"scenario": '
                               '"path/to/scenario.yaml"}} to know what to simulate')
    with _LOCK:  # chaoslib hands each activity a copy of the configuration, not of this mapping
        held = _SESSIONS.get(id(settings))
        if held is None or held[0] is not settings:
            held = (settings, Session(settings))
            _SESSIONS[id(settings)] = held
        return held[1]


def _measure(configuration: dict[str, Any] | None, metric: str, window: float) -> float:
    from .experiment import probe_value

    s = session(configuration)
    window = float(window)
    if not window > 0:
        raise _activity_failed(f"window: expected seconds > 0, got {window!r}")
    value = probe_value(s.result(), metric, max(0.0, s.clock - window), s.clock)
    if value is None:
        raise _activity_failed(f"no request finished in the {window:g} s before "
                               f"{s.clock:g} simulated s: nothing to measure {metric} on")
    return value


# -- probes (values in seconds, fractions, requests/s) -----------------------------------------
def latency_percentile(percentile: float = 99.0, window: float = 30.0,
                       configuration: dict[str, Any] | None = None) -> float:
    """The ``percentile`` (50, 90, 95, 99, 99.9 or 100 = max) of the latency of ok requests
    that finished in the last ``window`` simulated seconds, in seconds."""
    return _measure(configuration, metric_of("latency_percentile", {"percentile": percentile}),
                    window)


def latency_mean(window: float = 30.0, configuration: dict[str, Any] | None = None) -> float:
    """The mean latency (seconds) of ok requests that finished in the last ``window`` s."""
    return _measure(configuration, "latency.mean", window)


def error_rate(window: float = 30.0, configuration: dict[str, Any] | None = None) -> float:
    """The fraction of requests that finished in the last ``window`` s and were not ok."""
    return _measure(configuration, "error_rate", window)


def throughput(window: float = 30.0, configuration: dict[str, Any] | None = None) -> float:
    """Ok requests per simulated second over the last ``window`` s."""
    return _measure(configuration, "throughput", window)


def availability(service: str, window: float = 30.0,
                 configuration: dict[str, Any] | None = None) -> float:
    """The fraction of the last ``window`` s during which ``service`` had a replica up."""
    return _measure(configuration, f"services.{service}.availability", window)


# -- actions: each starts a fault now on the simulated clock -----------------------------------
def _fault(configuration: dict[str, Any] | None, kind: str, duration: float | None,
           **fields: Any) -> dict[str, Any]:
    s = session(configuration)
    name = fields.pop("name", None)
    started = s.start(name, {"kind": kind, "duration": duration, **fields})
    return {"fault": started, "kind": kind, "at": s.clock}


def kill_replicas(service: str, mode: str = "one", value: float | None = None,
                  duration: float | None = None, name: str | None = None,
                  configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Kill replicas of ``service`` (``mode``: one, all, fixed, fixed-percent,
    random-max-percent, with ``value``); with ``duration`` (s), restarted replicas crash again
    until it ends."""
    return _fault(configuration, "crash", duration, target=service, mode=mode, value=value,
                  name=name)


def add_latency(target: str, delay: Any, duration: float | None = None, name: str | None = None,
                configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Add ``delay`` (a duration such as ``200ms`` or a distribution) to the work of service
    ``target``, or to link ``a->b``."""
    return _fault(configuration, "latency", duration, target=target, delay=delay, name=name)


def drop_messages(target: str, loss: float, duration: float | None = None, name: str | None = None,
                  configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Link ``target`` (``a->b``) loses each message with probability ``loss``."""
    return _fault(configuration, "loss", duration, target=target, loss=loss, name=name)


def partition(groups: list[list[str]], duration: float | None = None, name: str | None = None,
              configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Services in different ``groups`` cannot reach each other."""
    return _fault(configuration, "partition", duration, groups=groups, name=name)


def slow_down(service: str, factor: float, duration: float | None = None, name: str | None = None,
              configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """``service`` works ``factor`` times slower."""
    return _fault(configuration, "slowdown", duration, target=service, factor=factor, name=name)


def leak_memory(service: str, rate: Any, duration: float | None = None, name: str | None = None,
                configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Each replica of ``service`` leaks ``rate`` (bytes/s, or ``10MB/s``)."""
    return _fault(configuration, "memory_leak", duration, target=service, rate=rate, name=name)


def wait(seconds: float, configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Move the simulated clock on by ``seconds`` (the system runs meanwhile)."""
    s = session(configuration)
    seconds = float(seconds)
    if not seconds >= 0:
        raise _activity_failed(f"seconds: expected ≥ 0, got {seconds!r}")
    s.clock += seconds
    return {"clock": s.clock}


def end_faults(ends: str = "all", configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Roll back: end the fault called ``ends`` (or ``all``) now."""
    s = session(configuration)
    return {"ended": s.end(ends), "at": s.clock}


# -- simsys experiments as Chaos Toolkit experiments -------------------------------------------
def timeline(exp: Any, duration: float) -> tuple[list[tuple[float, dict]], list[dict]]:
    """The method of a simsys experiment as Chaos Toolkit activities with the simulated time
    each happens at: its faults and the rollbacks that end them before the run does, in time
    order, with :func:`wait` between them and up to the end of the run (where the steady state
    is checked again). Rollbacks at or after the end are Chaos Toolkit rollbacks (they run after
    that check and change nothing measured). Returns ``(method, rollbacks)``."""
    from .spec.model import fault_name

    events: list[tuple[float, int, int, dict]] = []
    for i, fault in enumerate(exp.method):
        name = fault_name(fault, "method", i)
        data = fault.model_dump(mode="json", by_alias=True, exclude={"at", "name"})
        events.append((fault.at, 0, i, action_activity(name, data)))
    rollbacks = []
    for j, rb in enumerate(exp.rollbacks):
        activity = end_faults_activity(rb.name or f"rollbacks[{j}]", rb.ends)
        if rb.at < duration:
            events.append((rb.at, 1, j, activity))
        else:
            rollbacks.append(activity)
    events.sort(key=lambda e: e[:3])
    clock = min(f.at for f in exp.method)
    method: list[tuple[float, dict]] = []
    for at, _, _, activity in events:
        if at > clock:
            method.append((clock, wait_activity(at - clock)))
            clock = at
        method.append((clock, activity))
    if duration > clock:
        method.append((clock, wait_activity(duration - clock)))
    return method, rollbacks


def export(exp: Any, duration: float, seed: int, scenario: str | None = None) -> dict[str, Any]:
    """The experiment of a scenario in Chaos Toolkit's format (``chaos validate`` accepts it;
    ``chaos run`` runs it against the simulation of ``scenario``)."""
    method, rollbacks = timeline(exp, duration)
    start = min(f.at for f in exp.method)
    settings: dict[str, Any] = {"seed": seed, "start": start}
    if scenario is not None:
        settings = {"scenario": scenario, **settings}
    probes = [probe_activity(p.name, p.metric, p.window, *p.tolerance)
              for p in exp.steady_state_hypothesis.probes]
    return {
        "version": "1.0.0",
        "title": exp.title,
        "description": exp.description or f"{exp.title} (a simsys experiment, simulated)",
        "tags": ["simsys", "simulated"],
        "configuration": {"simsys": settings},
        "steady-state-hypothesis": {"title": exp.steady_state_hypothesis.title,
                                    "probes": probes},
        "method": [activity for _, activity in method],
        "rollbacks": rollbacks,
        "extensions": [{"name": "simsys", "simulated": True,
                        "note": "times and durations are simulated seconds; the steady state "
                                "is checked before the method and at the end of the run"}],
    }
