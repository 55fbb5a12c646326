"""HTML for notebooks and reports: a run's summary, a sweep's table, a scenario.

Pure Python (no pandas or matplotlib at import): :meth:`Result._repr_html_` calls
:func:`summary_html`, sweeps and scenarios call :func:`sweep_html` and :func:`scenario_html`,
and :mod:`simsys.report` builds its page from the same pieces. Numbers are shown in human units
(ms, MB, %, req/s); the data behind them stays in seconds and bytes.

>>> fmt_ms(0.0833)
'83.3 ms'
>>> fmt_bytes(208_192_000)
'208 MB'
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from typing import Any

from .formatting import (
    DASH,
    LATENCY_NAMES,
    fmt_bytes,
    fmt_count,
    fmt_duration,
    fmt_in_unit,
    fmt_ms,
    fmt_number,
    fmt_pct,
    fmt_rate,
    fmt_value,
    metric_label,
)

__all__ = [
    "fmt_bytes",
    "fmt_count",
    "fmt_duration",
    "fmt_ms",
    "fmt_pct",
    "fmt_rate",
    "fmt_value",
    "metric_label",
    "scenario_html",
    "summary_html",
    "sweep_html",
]

LATENCY_KEYS = ("mean", "p50", "p90", "p95", "p99", "p999", "max")

# Inline styles only: GitHub and some notebook viewers drop <style> blocks from outputs.
_TABLE = ("border-collapse:collapse;font-family:system-ui,-apple-system,'Segoe UI',sans-serif;"
          "font-size:13px;margin:4px 0 10px 0")
_TH = "text-align:left;padding:3px 10px;border-bottom:1px solid #999;font-weight:600"
_THR = "text-align:right;padding:3px 10px;border-bottom:1px solid #999;font-weight:600"
_TD = "text-align:left;padding:2px 10px"
_TDR = "text-align:right;padding:2px 10px;font-variant-numeric:tabular-nums"
_CAPTION = "caption-side:top;text-align:left;font-weight:600;padding:2px 0 4px 0"
_MUTED = "color:#666"


# Numbers in human units come from simsys.formatting (one voice for the CLI, HTML and plots).


# -- small HTML builders --------------------------------------------------------------------
def _e(x: Any) -> str:
    return html.escape(str(x))


def _table(header: Iterable[str], rows: Iterable[Iterable[str]], caption: str | None = None,
           right_from: int = 1) -> str:
    """A table; cells are already-escaped HTML; columns from ``right_from`` are right-aligned."""
    out = [f'<table style="{_TABLE}">']
    if caption:
        out.append(f'<caption style="{_CAPTION}">{caption}</caption>')
    head = list(header)
    out.append("<thead><tr>" + "".join(
        f'<th style="{_THR if i >= right_from else _TH}">{h}</th>' for i, h in enumerate(head)
    ) + "</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(
            f'<td style="{_TDR if i >= right_from else _TD}">{c}</td>' for i, c in enumerate(row)
        ) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _summary_of(obj: Any) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        return dict(obj)
    summary = obj.summary
    return summary() if callable(summary) else dict(summary)


def summary_html(result: Any, detail: bool = False) -> str:
    """A compact HTML view of a run: what a notebook shows for a :class:`~simsys.Result`.

    Parameters
    ----------
    result
        A :class:`~simsys.Result`, or a summary dict as :meth:`Result.summary` returns it
        (for instance read back from ``summary.json``).
    detail
        Show every latency percentile and the incident figures even when there are none.

    Examples
    --------
    >>> s = {"name": "demo", "seed": 1, "duration": 60.0, "warmup": 0.0,
    ...      "requests": {"total": 10, "ok": 10}, "latency": {"mean": 0.01, "p50": 0.009,
    ...      "p99": 0.02}, "throughput": 0.17, "error_rate": 0.0, "services": {}}
    >>> "10 ms" in summary_html(s)
    True
    """
    s = _summary_of(result)
    title = (f'<div style="font-family:system-ui,sans-serif;font-size:14px;margin:2px 0 6px 0">'
             f'<b>{_e(s.get("name", "scenario"))}</b> '
             f'<span style="{_MUTED}">seed {_e(s.get("seed", DASH))} · '
             f'{fmt_duration(s.get("duration"))} simulated')
    if s.get("warmup"):
        title += (f', first {fmt_duration(s["warmup"])} left out (warm-up'
                  + (", auto" if s.get("warmup_auto") else "") + ")")
    wall = getattr(result, "wall_time", None)
    if wall:
        title += f" · {wall:.2f} s wall time"
    title += " · latency and throughput of ok requests after warm-up"
    title += "</span></div>"

    req = s.get("requests", {}) or {}
    total = req.get("total", 0) or 0
    statuses = [k for k in req if k != "total" and (k == "ok" or req.get(k))]
    req_header = ["requests", "total", *statuses]
    req_rows = [["count", fmt_count(total), *(fmt_count(req[k]) for k in statuses)]]
    if total:
        req_rows.append([f'<span style="{_MUTED}">share</span>', "100%",
                         *(fmt_pct(req[k] / total) for k in statuses)])
    lat = s.get("latency", {}) or {}
    keys = [k for k in (LATENCY_KEYS if detail else ("mean", "p50", "p99")) if k in lat]
    figures = [
        ["throughput", fmt_rate(s.get("throughput"))],
        ["error rate", fmt_pct(s.get("error_rate"))],
        *[[f"latency {LATENCY_NAMES[k]}", fmt_ms(lat.get(k))] for k in keys],
    ]
    inc = s.get("incidents", {}) or {}
    if detail or inc.get("count"):
        figures.append(["incidents", fmt_count(inc.get("count", 0))])
        for k in ("mttd", "mttr", "mtbf"):
            if detail or inc.get(k) is not None:
                figures.append([k.upper(), fmt_duration(inc.get(k))])
    ws = s.get("websockets", {}) or {}
    if any(ws.values()):
        for k, v in ws.items():
            figures.append([f"WebSocket {k.replace('_', ' ')}", fmt_count(v)])

    parts = [
        '<div class="simsys-summary">',
        title,
        '<div style="display:flex;flex-wrap:wrap;gap:0 28px;align-items:flex-start">',
        _table(["", ""], figures, caption="key figures"),
        _table(req_header, req_rows, caption="requests by status"),
        "</div>",
    ]
    services = s.get("services", {}) or {}
    if services:
        rows = []
        for name, v in services.items():
            rows.append([
                _e(name),
                fmt_pct(v.get("utilization"), 1),
                fmt_pct(v.get("availability"), 3),
                fmt_bytes(v.get("memory_peak")),
                fmt_duration(v.get("mttr")) if v.get("mttr") is not None else DASH,
            ])
        parts.append(_table(["service", "utilization", "availability", "memory peak", "MTTR"],
                            rows, caption="services"))
    from .run_analysis import describe  # intervals, warm-up, stop rule, recovery defaults

    parts += [f'<p style="{_MUTED}">{_e(line)}</p>' for line in describe(s)]
    parts.append("</div>")
    return "".join(parts)


# -- sweeps -------------------------------------------------------------------------------------
DEFAULT_SWEEP_METRICS = ("latency.p50", "latency.p99", "throughput", "error_rate")


def _sweep_frames(sweep: Any) -> tuple[Any, list[str]]:
    """(runs DataFrame, grid keys) from a Sweep or a runs DataFrame."""
    runs = getattr(sweep, "runs", sweep)
    if callable(runs):
        runs = runs()
    return runs, grid_keys(sweep, runs)


def grid_keys(sweep: Any, runs: Any = None) -> list[str]:
    """The swept parameters: ``sweep.grid`` keys when known, else the non-summary columns."""
    grid = getattr(sweep, "grid", None)
    if isinstance(grid, Mapping) and grid:
        return [str(k) for k in grid]
    if isinstance(grid, list | tuple) and grid and isinstance(grid[0], str):
        return list(grid)
    keys = getattr(sweep, "grid_keys", None)
    if isinstance(keys, list | tuple) and keys:
        return list(keys)
    if runs is None:
        runs = getattr(sweep, "runs", None)
    if runs is None:
        return []
    return [str(c) for c in runs.columns if not _is_figure(str(c))]


_BOOK = {"point", "point_key", "replication", "seed", "status", "error", "wall_time", "run",
         "run_id", "index", "message"}
_SERVICE_FIGURES = {"availability", "utilization", "memory_peak", "time_with_up", "mttr"}


def _is_figure(column: str) -> bool:
    """Is ``column`` of a runs table a summary figure or bookkeeping (else: a grid key)?"""
    parts = column.split(".")
    if column in _BOOK or column in ("throughput", "error_rate"):
        return True
    if parts[0] in ("requests", "latency", "incidents", "websockets"):
        return True
    return parts[0] == "services" and len(parts) == 3 and parts[2] in _SERVICE_FIGURES


def sweep_html(sweep: Any, metrics: Iterable[str] = DEFAULT_SWEEP_METRICS,
               max_rows: int = 40) -> str:
    """A sweep as HTML: one row per grid point, mean ± 95 % CI half-width of a few metrics.

    ``sweep`` is a :class:`~simsys.Sweep` (anything with a ``runs`` DataFrame) or the
    runs DataFrame itself.
    """
    from .stats import mean_interval  # numpy only; no matplotlib

    runs, keys = _sweep_frames(sweep)
    if runs is None or len(runs) == 0:
        return '<div class="simsys-sweep"><i>no runs yet</i></div>'
    n_runs = len(runs)
    status_line = ""
    if "status" in runs.columns:
        counts = runs["status"].astype(str).value_counts()
        status_line = " · ".join(f"{fmt_count(v)} {_e(k)}" for k, v in counts.items())
        ok = runs[runs["status"].astype(str) == "ok"]
    else:
        ok = runs
    metrics = [m for m in metrics if m in runs.columns]
    fixed = {k: runs[k].iloc[0] for k in keys
             if k in runs.columns and runs[k].nunique(dropna=False) == 1}
    keys = [k for k in keys if k not in fixed]
    reps = int(runs["replication"].nunique()) if "replication" in runs.columns else 1
    head = (f'<div style="font-family:system-ui,sans-serif;font-size:14px;margin:2px 0 6px 0">'
            f'<b>sweep</b> <span style="{_MUTED}">{fmt_count(n_runs)} runs · '
            f'{_e(", ".join(keys) or "no grid")} · {reps} replication(s)'
            + (f" · {status_line}" if status_line else "")
            + (" · fixed: " + ", ".join(f"{_e(k)} = {_e(v)}" for k, v in fixed.items())
               if fixed else "") + "</span></div>")
    rows = []
    if keys:
        groups = ok.groupby(keys, sort=True, dropna=False)
    else:
        groups = [((), ok)]
    for i, (values, g) in enumerate(groups):
        if i >= max_rows:
            break
        values = values if isinstance(values, tuple) else (values,)
        row = [_e(v) for v in values] + [fmt_count(len(g))]
        for m in metrics:
            ci = mean_interval(g[m].to_numpy(dtype=float))
            mean, lo, hi = ci.mean, ci.low, ci.high
            half = (hi - lo) / 2 if math.isfinite(hi - lo) and hi > lo else None
            cell = fmt_in_unit(m, mean, half)
            row.append(f'<span style="white-space:nowrap">{cell}</span>')
        rows.append(row)
    header = [*(_e(k) for k in keys), "runs",
              *(_e(metric_label(m)[0] + (f" ({metric_label(m)[2]})" if metric_label(m)[2] else ""))
                for m in metrics)]
    more = ""
    n_groups = len(groups) if hasattr(groups, "__len__") else 1
    if n_groups > max_rows:
        more = f'<div style="{_MUTED}">… {n_groups - max_rows} more grid points</div>'
    return ('<div class="simsys-sweep">' + head
            + _table(header, rows, caption="mean ± 95% CI half-width over replications",
                     right_from=len(keys))
            + more + "</div>")


# -- scenarios ------------------------------------------------------------------------------
def _scenario_dict(spec: Any) -> dict[str, Any]:
    if hasattr(spec, "model_dump"):
        return spec.model_dump(mode="json", by_alias=True)
    if isinstance(spec, Mapping):
        try:  # resolve units ("10min" → 600) and defaults the way a run sees them
            from .spec.load import load

            return load(dict(spec)).model_dump(mode="json", by_alias=True)
        except Exception:  # noqa: BLE001 - show what was given rather than nothing
            return dict(spec)
    raise TypeError(f"expected a Scenario or a dict, got {type(spec).__name__}")


def describe_distribution(d: Any) -> str:
    """``{"dist": "exponential", "mean": 0.002}`` → ``'exponential, mean 2 ms'``."""
    if d is None:
        return DASH
    if isinstance(d, int | float):
        return fmt_duration(d)
    if not isinstance(d, Mapping):
        return _e(d)
    kind = d.get("dist", "?")
    if kind == "constant":
        return fmt_duration(d.get("value"))
    params = []
    for k, v in d.items():
        if k == "dist":
            continue
        if k in ("mean", "sd", "low", "high", "scale", "value") and isinstance(v, int | float):
            params.append(f"{k} {fmt_duration(v)}")
        elif k == "values" and isinstance(v, list):
            params.append(f"{len(v)} values")
        else:
            params.append(f"{k} {_e(v)}")
    return f"{_e(kind)}, " + ", ".join(params) if params else _e(kind)


def _calls(calls: Any) -> str:
    out = []
    for c in calls or []:
        if isinstance(c, Mapping):
            p = c.get("probability", 1.0)
            out.append(_e(c.get("service")) + ("" if p in (None, 1, 1.0) else f" ({fmt_pct(p, 0)})"))
        else:
            out.append(_e(c))
    return " → ".join(out) if out else DASH


def _memory(m: Any) -> str:
    if not isinstance(m, Mapping):
        return DASH
    parts = []
    if m.get("base"):
        parts.append(f"{fmt_bytes(m['base'])} base")
    if m.get("per_request"):
        parts.append(f"+{fmt_bytes(m['per_request'])}/request")
    if m.get("per_connection"):
        parts.append(f"+{fmt_bytes(m['per_connection'])}/connection")
    if m.get("limit"):
        parts.append(f"limit {fmt_bytes(m['limit'])}")
    return ", ".join(parts) or DASH


def _workload(w: Mapping[str, Any]) -> str:
    kind = w.get("type", "?")
    bits = []
    for k, v in w.items():
        if k in ("type", "target", "name") or v in (None, [], {}):
            continue
        if k.endswith("rate") and isinstance(v, int | float):
            bits.append(f"{k.replace('_', ' ')} {fmt_rate(v, '/s')}")
        elif isinstance(v, Mapping) and "dist" in v:
            bits.append(f"{k.replace('_', ' ')} {describe_distribution(v)}")
        elif k in ("interval", "think_time") and isinstance(v, int | float):
            bits.append(f"{k.replace('_', ' ')} {fmt_duration(v)}")
        else:
            bits.append(f"{k.replace('_', ' ')} {_e(v)}")
    return f"{_e(kind)}: " + ", ".join(bits)


def scenario_html(spec: Any) -> str:
    """A scenario as HTML: run settings, services, links, workload, chaos and recovery.

    ``spec`` is a :class:`~simsys.Scenario` or its dict (seconds, bytes, as
    ``Scenario.model_dump(mode="json")`` gives it, or as ``scenario.yaml`` of a run holds it).
    """
    s = _scenario_dict(spec)
    head = (f'<div style="font-family:system-ui,sans-serif;font-size:14px;margin:2px 0 6px 0">'
            f'<b>{_e(s.get("name", "scenario"))}</b> <span style="{_MUTED}">'
            f'seed {_e(s.get("seed", 0))} · {fmt_duration(s.get("duration"))} simulated'
            + (f', warm-up {fmt_duration(s["warmup"])}' if s.get("warmup") else "")
            + (f', sampled every {fmt_duration(s["sample_every"])}' if s.get("sample_every") else "")
            + "</span></div>")
    parts = ['<div class="simsys-scenario">', head]
    services = s.get("services", {}) or {}
    if services:
        rows = []
        for name, v in services.items():
            v = v or {}
            queue = v.get("queue")
            rows.append([
                _e(name),
                fmt_count(v.get("replicas", 1)),
                fmt_count(v.get("workers", 1)),
                "unbounded" if queue is None else fmt_count(queue),
                _e(v.get("balancer", "round_robin")).replace("_", " "),
                describe_distribution(v.get("service_time")),
                _calls(v.get("calls")),
                _memory(v.get("memory")),
                _e(_compact(_changed({k: x for k, x in v.items() if k not in _SERVICE_SHOWN},
                                     _defaults().get("@service", {})))).strip("{}") or DASH,
            ])
        parts.append(_table(["service", "replicas", "workers", "queue", "balancer",
                             "service time", "calls", "memory", "other settings"], rows,
                            caption="services", right_from=99))
    links = s.get("links", {}) or {}
    if links:
        rows = [[_e(k), describe_distribution(v.get("latency")), fmt_pct(v.get("loss", 0), 3)]
                for k, v in links.items()]
        parts.append(_table(["link", "latency (one way)", "loss"], rows, caption="links",
                            right_from=99))
    workload = s.get("workload", []) or []
    if workload:
        rows = [[_e(w.get("name") or f"{w.get('type')}{i}"), _e(w.get("target")), _workload(w)]
                for i, w in enumerate(workload)]
        parts.append(_table(["workload", "target", "arrivals"], rows, caption="workload",
                            right_from=99))
    defaults = _defaults()
    known = {"name", "seed", "duration", "warmup", "sample_every", "services", "links",
             "workload"}
    extra = []
    for key, value in s.items():
        if key in known or value in (None, {}, []) or value == defaults.get(key):
            continue
        extra.append([_e(key), _e(_compact(_changed(value, defaults.get(key), (key,))))])
    if extra:
        parts.append(_table(["", ""], extra, caption="faults and other settings", right_from=99))
    parts.append("</div>")
    return "".join(parts)


_SERVICE_SHOWN = {"replicas", "workers", "queue", "balancer", "service_time", "calls", "memory"}


def _defaults() -> dict[str, Any]:
    """Default values of every scenario key (``@service``: of a service), to show only changes."""
    global _DEFAULTS
    if _DEFAULTS is None:
        try:
            from .spec.load import load

            d = load({"services": {"x": {}}}).model_dump(mode="json", by_alias=True)
            d["@service"] = d["services"]["x"]
        except Exception:  # noqa: BLE001 - without defaults every setting is shown
            d = {}
        _DEFAULTS = d
    return _DEFAULTS


_DEFAULTS: dict[str, Any] | None = None


def _changed(value: Any, default: Any, path: tuple[str, ...] = ()) -> Any:
    """The parts of ``value`` that differ from ``default`` (mappings compared key by key).

    An optional section (default None, such as ``chaos.monkey``) is compared with the values
    it gets when written empty, when that is a valid scenario."""
    if isinstance(value, Mapping) and default is None and path:
        default = _section_defaults(path)
    if isinstance(value, Mapping) and isinstance(default, Mapping):
        out = {}
        for k, v in value.items():
            if k in default and v == default[k]:
                continue
            out[k] = _changed(v, default.get(k), (*path, str(k)))
        return out
    return value


_SECTIONS: dict[tuple[str, ...], Any] = {}


def _section_defaults(path: tuple[str, ...]) -> Any:
    if path not in _SECTIONS:
        data: dict[str, Any] = {"services": {"x": {}}}
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = {}
        try:
            from .spec.load import load

            dumped: Any = load(data).model_dump(mode="json", by_alias=True)
            for part in path:
                dumped = dumped[part]
        except Exception:  # noqa: BLE001 - the section needs values: show all of them
            dumped = None
        _SECTIONS[path] = dumped
    return _SECTIONS[path]


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


_TIME_WORDS = ("time", "interval", "timeout", "window", "detection", "after", "between",
               "duration", "delay", "at", "backoff", "period", "ttl", "lifetime", "handshake")


def _compact(value: Any, key: str = "") -> str:
    """A nested value on one line, times in human units:
    ``{monkey {targets [catalog], mean time between failures 2 min}}``."""
    if isinstance(value, Mapping):
        if "dist" in value:
            return describe_distribution(value)
        items = [f"{k.replace('_', ' ')} {_compact(v, str(k))}" for k, v in value.items()
                 if v not in (None, {}, [], "")]
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v, key) for v in value) + "]"
    if isinstance(value, float) and not isinstance(value, bool):
        words = key.lower().replace("-", "_").split("_")
        if any(w in _TIME_WORDS for w in words):
            return fmt_duration(value)
        return fmt_number(value, 4)
    return str(value)
