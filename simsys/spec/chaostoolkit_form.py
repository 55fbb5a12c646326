"""A Chaos Toolkit experiment pasted under ``experiment:``, read as simsys's own form.

The Chaos Toolkit form (``title``, ``description``, ``steady-state-hypothesis`` with probes and
tolerances, ``method`` and ``rollbacks`` of ``type: probe|action`` activities whose provider is
``{type: python, module: simsys.chaostoolkit, func, arguments}``) is turned into the short form
the rest of simsys reads: probes as ``{name, metric, window, tolerance: [low, high]}``, actions
as faults with the simulated time they start at. Time starts at ``configuration.simsys.start``
(default: the longest probe window, so the first check has a full window) and moves on only by
``simsys.chaostoolkit.wait`` actions. What cannot be simulated is refused with its field path:
a provider of type ``http`` or ``process``, a module other than simsys.chaostoolkit, a probe in
the method, a tolerance other than a range (or a bound).
"""

from __future__ import annotations

from typing import Any

MODULE = "simsys.chaostoolkit"
_IGNORED = {"version", "tags", "contributions", "extensions", "configuration", "secrets",
            "controls", "runtime", "title", "description", "steady-state-hypothesis", "method",
            "rollbacks", "start_at", "start-at"}


def is_chaostoolkit(data: Any) -> bool:
    """Whether ``data`` is an experiment written in Chaos Toolkit's form (activities with a
    ``type`` and a ``provider``) rather than simsys's short form."""
    if not isinstance(data, dict):
        return False
    hyp = data.get("steady-state-hypothesis")
    activities = [*(data.get("method") or []), *(data.get("rollbacks") or []),
                  *((hyp or {}).get("probes") or [] if isinstance(hyp, dict) else [])]
    return any(isinstance(a, dict) and ("provider" in a or "ref" in a) for a in activities)


class FormError(ValueError):
    """A part of a Chaos Toolkit experiment simsys cannot simulate; ``loc`` is its path."""

    def __init__(self, loc: tuple[Any, ...], message: str):
        super().__init__(message)
        self.loc = loc


def _provider(activity: Any, loc: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
    if not isinstance(activity, dict):
        raise FormError(loc, "expected an activity (a mapping with type and provider)")
    provider = activity.get("provider")
    if not isinstance(provider, dict):
        raise FormError((*loc, "provider"), "expected a provider mapping")
    kind = provider.get("type")
    if kind != "python":
        raise FormError((*loc, "provider", "type"),
                        f"a {kind!r} provider cannot be simulated (it would reach a real "
                        f"system); use type: python, module: {MODULE}")
    if provider.get("module") != MODULE:
        raise FormError((*loc, "provider", "module"),
                        f"expected {MODULE} (the only module simsys can simulate), "
                        f"got {provider.get('module')!r}")
    arguments = provider.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise FormError((*loc, "provider", "arguments"), "expected a mapping")
    return str(provider.get("func")), dict(arguments)


def _tolerance(value: Any, loc: tuple[Any, ...]) -> list[Any]:
    if isinstance(value, dict) and value.get("type") == "range":
        bounds = value.get("range")
        if isinstance(bounds, list) and len(bounds) == 2:
            return bounds
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [value, value]
    raise FormError(loc, "expected a range tolerance {type: range, range: [low, high]} (or a "
                         f"number), got {value!r}")


def to_short_form(data: dict[str, Any]) -> dict[str, Any]:
    """The simsys short form of a Chaos Toolkit experiment (see the module docstring)."""
    from ..chaostoolkit import ACTIONS, OTHER_ACTIONS, PROBES, metric_of

    hyp = data.get("steady-state-hypothesis")
    if not isinstance(hyp, dict) or not hyp.get("probes"):
        raise FormError(("steady-state-hypothesis",), "expected a hypothesis with probes")
    probes = []
    for i, probe in enumerate(hyp["probes"]):
        loc = ("steady-state-hypothesis", "probes", i)
        func, args = _provider(probe, loc)
        if func not in PROBES:
            raise FormError((*loc, "provider", "func"),
                            f"expected a probe ({', '.join(PROBES)}), got {func!r}")
        try:
            metric = metric_of(func, args)
        except (ValueError, KeyError) as exc:
            raise FormError((*loc, "provider", "arguments"), str(exc)) from None
        probes.append({"name": probe.get("name", f"probe {i}"), "metric": metric,
                       "window": args.get("window", 30.0),
                       "tolerance": _tolerance(probe.get("tolerance"), (*loc, "tolerance"))})
    settings = (data.get("configuration") or {}).get("simsys") or {}
    windows = [_seconds(p["window"]) for p in probes]
    clock = _seconds(settings.get("start", max(windows)))
    by_func = {func: kind for kind, (func, _) in ACTIONS.items()}
    method, rollbacks = [], []
    for i, activity in enumerate(data.get("method") or []):
        loc = ("method", i)
        if isinstance(activity, dict) and activity.get("type") == "probe":
            raise FormError((*loc, "type"), "a probe in the method is not simulated; put it "
                                            "in the steady-state hypothesis")
        func, args = _provider(activity, loc)
        if func == "wait":
            clock += _seconds(args.get("seconds", 0))
        elif func == "end_faults":
            rollbacks.append({"name": activity.get("name"), "at": clock,
                              "ends": args.get("ends", "all")})
        elif func in by_func:
            kind = by_func[func]
            fields = ACTIONS[kind][1]
            fault = {"kind": kind, "at": clock,
                     "name": args.get("name") or activity.get("name")}
            for arg, value in args.items():
                if arg in fields:
                    fault[fields[arg]] = value
                elif arg == "duration":
                    fault["duration"] = value
                elif arg != "name":
                    raise FormError((*loc, "provider", "arguments", arg),
                                    f"{func} has no argument {arg!r}")
            method.append(fault)
        else:
            raise FormError((*loc, "provider", "func"), f"expected an action of {MODULE} "
                            f"({', '.join([*by_func, *OTHER_ACTIONS])}), got {func!r}")
    for i, activity in enumerate(data.get("rollbacks") or []):
        func, args = _provider(activity, ("rollbacks", i))
        if func != "end_faults":
            raise FormError(("rollbacks", i, "provider", "func"),
                            f"a rollback ends faults: expected end_faults, got {func!r}")
        rollbacks.append({"name": activity.get("name"), "at": clock,
                          "ends": args.get("ends", "all")})
    if not method:
        raise FormError(("method",), "expected at least one action that starts a fault")
    out = {"title": data.get("title", ""), "description": data.get("description", ""),
           "steady-state-hypothesis": {"title": hyp.get("title", "steady state"),
                                       "probes": probes},
           "method": method, "rollbacks": rollbacks}
    for key in ("start_at", "start-at"):
        if key in data:
            out["start_at"] = data[key]
    return out


def _seconds(value: Any) -> float:
    from .units import parse_duration

    return parse_duration(value)
