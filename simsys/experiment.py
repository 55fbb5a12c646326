"""Steady-state experiments, judged after the run, written as a Chaos Toolkit journal.

The hypothesis is checked over a window before the first method action, at checkpoints every
window during the method, and over the last window of the run (after the rollbacks). The journal
has Chaos Toolkit's top-level keys (``experiment, start, status, deviated, steady_states: {before,
after, during}, run, rollbacks, end, duration``) so its tools can read it; simulated times are
under the extra ``simsys`` key, with the time steady state was regained.
"""

from __future__ import annotations

import datetime as dt
import math
import platform
from typing import TYPE_CHECKING, Any

import numpy as np

from .spec.chaos import MONDAY, Experiment, Probe
from .spec.model import fault_name

if TYPE_CHECKING:
    from .result import Result


def _origin(result: Result) -> dt.datetime:
    """The wall-clock time of simulated time 0: Chaos Monkey's ``start_at`` when the run has a
    monkey (its workday calendar starts there), else a fixed Monday midnight."""
    chaos = result.graph.graph.get("chaos")
    monkey = getattr(chaos, "monkey", None)
    return monkey.start_at if monkey is not None else MONDAY


def _iso(t: float, origin: dt.datetime) -> str:
    return (origin + dt.timedelta(seconds=t)).isoformat()


def probe_value(result: Result, metric: str, t0: float, t1: float) -> float | None:
    """The value of a probe metric over requests that finished in [t0, t1) (seconds)."""
    if metric.startswith("services.") and metric.endswith(".availability"):
        return result.availability_between(metric.split(".")[1], t0, t1)
    df = result.requests
    end = df["end"].to_numpy()
    sel = df[(end >= t0) & (end < t1)]
    ok = sel["status"] == "ok"
    if metric == "error_rate":
        return float(1.0 - ok.mean()) if len(sel) else None
    if metric == "throughput":
        return float(ok.sum() / (t1 - t0)) if t1 > t0 else None
    lat = sel.loc[ok, "latency"].to_numpy()
    if not len(lat):
        return None
    stat = metric.split(".", 1)[1]
    if stat == "mean":
        return float(lat.mean())
    if stat == "max":
        return float(lat.max())
    q = {"p50": 50, "p90": 90, "p95": 95, "p99": 99, "p999": 99.9}[stat]
    return float(np.percentile(lat, q))


def _probe(result: Result, probe: Probe, t_end: float) -> dict[str, Any]:
    t0 = max(0.0, t_end - probe.window)
    value = probe_value(result, probe.metric, t0, t_end)
    low, high = probe.tolerance
    met = value is not None and low <= value <= high
    return {
        "activity": {
            "type": "probe",
            "name": probe.name,
            "tolerance": [low, high],
            "provider": {"type": "python", "module": "simsys", "func": "probe_value",
                         "arguments": {"metric": probe.metric, "window": probe.window}},
        },
        "output": value,
        "status": "succeeded",
        "tolerance_met": met,
        "start": _iso(t0, _origin(result)),
        "end": _iso(t_end, _origin(result)),
        "duration": t_end - t0,
        "simsys": {"window": [t0, t_end]},
    }


def _hypothesis(result: Result, exp: Experiment, t_end: float) -> dict[str, Any]:
    probes = [_probe(result, p, t_end) for p in exp.steady_state_hypothesis.probes]
    return {"steady_state_met": all(p["tolerance_met"] for p in probes), "probes": probes,
            "simsys": {"at": t_end}}


def _action(fault: Any, name: str, log: list[dict[str, Any]], duration: float,
            origin: dt.datetime) -> dict[str, Any]:
    row = next((r for r in log if r["name"] == name), {})
    start = row.get("started_at", fault.at)
    end = row.get("ended_at", math.nan)
    args = fault.model_dump(mode="json", by_alias=True, exclude={"name", "kind", "at"})
    return {
        "activity": {"type": "action", "name": name,
                     "provider": {"type": "python", "module": "simsys.faults", "func": fault.kind,
                                  "arguments": args}},
        "output": None,
        "status": "succeeded",
        "start": _iso(start, origin),
        "end": _iso(end if not math.isnan(end) else duration, origin),
        "duration": (end if not math.isnan(end) else duration) - start,
        "simsys": {"started_at": start, "ended_at": None if math.isnan(end) else end},
    }


def journal(result: Result, exp: Experiment) -> dict[str, Any]:
    """Judge the experiment on a finished run and return its Chaos Toolkit journal (a dict)."""
    from . import __version__

    duration = result.duration
    window = max(p.window for p in exp.steady_state_hypothesis.probes)
    method_at = min(a.at for a in exp.method)
    before = _hypothesis(result, exp, method_at)
    after = _hypothesis(result, exp, duration)
    during = []
    t = method_at + window
    while t <= duration - window + 1e-9:
        during.append(_hypothesis(result, exp, t))
        t += window
    checks = [*during, after]
    regained_at = None
    failed = [i for i, h in enumerate(checks) if not h["steady_state_met"]]
    if failed and failed[-1] + 1 < len(checks):
        regained_at = checks[failed[-1] + 1]["simsys"]["at"]
    deviated = bool(before["steady_state_met"] and failed)
    if not before["steady_state_met"]:
        status = "failed"
    else:
        status = "failed" if deviated else "completed"
    log = result.records.stats.get("faults", [])
    names = [fault_name(a, "method", i) for i, a in enumerate(exp.method)]
    origin = _origin(result)
    run = [_action(a, n, log, duration, origin) for a, n in zip(exp.method, names, strict=True)]
    rollbacks = [
        {
            "activity": {"type": "action", "name": rb.name or f"rollback{i}",
                         "provider": {"type": "python", "module": "simsys.faults", "func": "end",
                                      "arguments": {"ends": rb.ends}}},
            "output": None,
            "status": "succeeded",
            "start": _iso(rb.at, origin),
            "end": _iso(rb.at, origin),
            "duration": 0.0,
            "simsys": {"at": rb.at},
        }
        for i, rb in enumerate(exp.rollbacks)
    ]
    return {
        "chaoslib-version": None,
        "platform": platform.platform(),
        "node": "simsys",
        "experiment": exp.model_dump(mode="json", by_alias=True),
        "start": _iso(0.0, origin),
        "status": status,
        "deviated": deviated,
        "steady_states": {"before": before, "after": after, "during": during},
        "run": run,
        "rollbacks": rollbacks,
        "end": _iso(duration, origin),
        "duration": duration,
        "simsys": {
            "version": __version__,
            "seed": result.seed,
            "method_started_at": method_at,
            "window": window,
            "regained_at": regained_at,
            "steady_state_met_before": before["steady_state_met"],
            "steady_state_met_after": after["steady_state_met"],
            "failed_checks": [checks[i]["simsys"]["at"] for i in failed],
        },
    }


def verdict(j: dict[str, Any]) -> str:
    """One line for people: did the system hold its steady state?"""
    s = j["simsys"]
    title = j["experiment"].get("title", "experiment")
    if not s["steady_state_met_before"]:
        return f"{title}: steady state NOT met before the method; experiment aborted (status failed)"
    if j["deviated"]:
        when = ", ".join(f"{t:g}s" for t in s["failed_checks"][:5])
        regained = s["regained_at"]
        tail = f"; regained at {regained:g}s" if regained is not None else "; not regained by the end"
        return f"{title}: DEVIATED — steady state lost at {when}{tail}"
    return f"{title}: steady state held (before, during and after the method)"
