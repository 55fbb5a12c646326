"""Steady-state experiments, judged after the run, written as a Chaos Toolkit journal.

The hypothesis is checked over a window before the first method action and over the last window
of the run, with chaoslib 1.44's semantics (see :func:`journal`), so that ``chaos report`` reads
the journal and ``chaos run`` of the exported experiment (:mod:`simsys.chaostoolkit`) reaches the
same verdict. Timestamps are UTC from the scenario's start time; what Chaos Toolkit has no key
for (simulated times, when the steady state was lost and regained during the method) is in the
``simsys`` entry of the journal's ``extensions``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from .spec.chaos import MONDAY, Experiment, Probe

if TYPE_CHECKING:
    from .result import Result


def _origin(result: Result, exp: Experiment | None = None) -> dt.datetime:
    """The UTC time of simulated time 0: the experiment's ``start_at``, else Chaos Monkey's
    (its workday calendar starts there), else Monday 2026-01-05 00:00 UTC."""
    at = getattr(exp, "start_at", None)
    if at is None:
        monkey = getattr(result.graph.graph.get("chaos"), "monkey", None)
        at = monkey.start_at if monkey is not None else MONDAY
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


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


def _probe(result: Result, probe: Probe, t_end: float, origin: dt.datetime) -> dict[str, Any]:
    """One probe's record as chaoslib writes it; a window with no requests is a failed probe
    (chaoslib: the provider raised), not a pass."""
    from .chaostoolkit import probe_activity

    t0 = max(0.0, t_end - probe.window)
    low, high = probe.tolerance
    value = probe_value(result, probe.metric, t0, t_end)
    record: dict[str, Any] = {
        "activity": probe_activity(probe.name, probe.metric, probe.window, low, high),
        "output": value,
        "start": _iso(t0, origin),
        "status": "succeeded",
    }
    if value is None:
        record["status"] = "failed"
        record["exception"] = [f"ActivityFailed: no request finished in the {probe.window:g} s "
                               f"before {t_end:g} simulated s: nothing to measure "
                               f"{probe.metric} on\n"]
    record["end"] = _iso(t_end, origin)
    record["duration"] = t_end - t0
    record["tolerance_met"] = value is not None and low <= value <= high
    return record


def _hypothesis(result: Result, exp: Experiment, t_end: float,
                origin: dt.datetime) -> dict[str, Any]:
    """chaoslib's run_steady_state_hypothesis: probes in order, stopping at the first one that
    fails or misses its tolerance."""
    probes = []
    for probe in exp.steady_state_hypothesis.probes:
        probes.append(_probe(result, probe, t_end, origin))
        if not probes[-1]["tolerance_met"]:
            return {"steady_state_met": False, "probes": probes}
    return {"steady_state_met": True, "probes": probes}


def _activity(activity: dict[str, Any], start: float, end: float,
              origin: dt.datetime) -> dict[str, Any]:
    return {"activity": activity, "output": None, "start": _iso(start, origin),
            "status": "succeeded", "end": _iso(end, origin), "duration": end - start}


def _status(state: dict[str, Any]) -> str:
    """chaoslib: a steady state that was not met is "failed" if one of its probes could not
    run, else the experiment "completed" (and, after the method, deviated)."""
    return "failed" if any(p["status"] != "succeeded" for p in state["probes"]) else "completed"


def journal(result: Result, exp: Experiment) -> dict[str, Any]:
    """Judge the experiment on a finished run and return its Chaos Toolkit journal (a dict).

    The semantics are chaoslib 1.44's, the values simulated: the hypothesis over the window
    before the first method action; if it is not met the method does not run (``run: []``,
    ``after: null``); else the method's activities, then the hypothesis over the last window
    of the run: not met means ``deviated`` (``status`` stays ``completed``; ``failed`` is for
    a probe that could not measure). chaoslib never checks during the method; simsys does, every
    window, and reports it in the ``simsys`` extension (when the steady state was lost and
    regained), not in ``steady_states.during``.
    """
    import platform

    from . import __version__
    from .chaostoolkit import CHAOSLIB_FORMAT, export, timeline

    duration = result.duration
    origin = _origin(result, exp)
    window = max(p.window for p in exp.steady_state_hypothesis.probes)
    method_at = min(a.at for a in exp.method)
    method, rollback_activities = timeline(exp, duration)
    before = _hypothesis(result, exp, method_at, origin)
    after = None
    run: list[dict[str, Any]] = []
    status, deviated = "completed", False
    if before["steady_state_met"]:
        for i, (at, activity) in enumerate(method):
            ends = method[i + 1][0] if i + 1 < len(method) else duration
            if activity["provider"]["func"] != "wait":
                ends = at  # an action takes no simulated time; its fault runs on
            run.append(_activity(activity, at, ends, origin))
        after = _hypothesis(result, exp, duration, origin)
        if not after["steady_state_met"]:
            deviated, status = True, _status(after)
    else:
        status = _status(before)
    rollbacks = [_activity(a, duration, duration, origin) for a in rollback_activities]
    # simsys's own look during the method: every window, for when the state was lost/regained
    during = []
    t = method_at + window
    while t <= duration - window + 1e-9:
        during.append((t, _hypothesis(result, exp, t, origin)["steady_state_met"]))
        t += window
    checks = [*during, (duration, bool(after and after["steady_state_met"]))]
    lost = [t for t, met in checks if not met]
    regained_at = None
    if lost and lost[-1] < checks[-1][0]:
        regained_at = next(t for t, _ in checks if t > lost[-1])
    seed = result.seed
    return {
        "chaoslib-version": CHAOSLIB_FORMAT,
        "platform": platform.platform(),
        "node": "simsys (simulated)",
        "experiment": export(exp, duration, seed),
        "start": _iso(0.0, origin),
        "status": status,
        "deviated": deviated,
        "steady_states": {"before": before, "after": after, "during": []},
        "run": run,
        "rollbacks": rollbacks,
        "end": _iso(duration, origin),
        "duration": duration,
        "extensions": [{
            "name": "simsys",
            "version": __version__,
            "simulated": True,
            "note": "start, end and durations are simulated time from the scenario's start_at",
            "seed": seed,
            "method_started_at": method_at,
            "window": window,
            "steady_state_met_before": before["steady_state_met"],
            "steady_state_met_after": None if after is None else after["steady_state_met"],
            "lost_at": lost,
            "regained_at": regained_at,
        }],
    }


def extension(j: dict[str, Any]) -> dict[str, Any]:
    """The ``simsys`` extension of a journal (or experiment)."""
    return next((e for e in j.get("extensions", []) if e.get("name") == "simsys"), {})


def negative(j: dict[str, Any]) -> bool:
    """Whether a journal's verdict is negative: deviated, failed, or never in steady state."""
    before = (j.get("steady_states") or {}).get("before") or {}
    return bool(j.get("deviated")) or j.get("status") != "completed" or \
        before.get("steady_state_met") is False


def verdict(j: dict[str, Any]) -> str:
    """One line for people: did the system hold its steady state?"""
    s = extension(j)
    title = j["experiment"].get("title", "experiment")
    if not s.get("steady_state_met_before", True):
        return (f"{title}: steady state NOT met before the method; the method did not run "
                f"(status {j['status']})")
    if j["deviated"]:
        when = ", ".join(f"{t:g}s" for t in s.get("lost_at", [])[:5])
        regained = s.get("regained_at")
        tail = f"; regained at {regained:g}s" if regained is not None else "; not regained by the end"
        return f"{title}: DEVIATED — steady state lost at {when}{tail}"
    lost = s.get("lost_at") or []
    if lost:
        return (f"{title}: steady state held after the method (lost during it at "
                f"{', '.join(f'{t:g}s' for t in lost[:5])})")
    return f"{title}: steady state held (before, during and after the method)"
