"""``simsys report DIR``: one self-contained HTML page from a run, sweep or comparison directory.

The page has no external resource: plots are PNG images embedded as ``data:`` URIs, the style
sheet is inline, and nothing is fetched when it opens, so it can be mailed, archived or opened
offline. Images scale down to the page width; wide tables scroll inside their own box, so
nothing is cut off on a narrow window.

A *run directory* is what :func:`simsys.output.save_run` writes (``summary.json`` and friends);
plots missing from it are drawn from its tables. A *sweep directory* is what
:func:`simsys.sweep` writes with ``out=`` (``sweep.json`` and ``runs/part-*.parquet``); a
*comparison directory* is a sweep directory over a ``variant`` axis (:func:`simsys.compare` with
``out=``), shown as the variants side by side.

>>> from simsys.report import build_report              # doctest: +SKIP
>>> build_report("out/checkout")                         # doctest: +SKIP
PosixPath('out/checkout/report.html')
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
import os
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .display import scenario_html, summary_html, sweep_html
from .errors import SimsysError
from .files import atomic_write
from .formatting import fmt_bytes, fmt_count, fmt_duration, fmt_pct, fmt_value

__all__ = ["NotAReportDirectory", "build_report", "kind_of"]

REPORT_NAME = "report.html"

CAPTIONS = {
    "latency_cdf": "How long successful requests took, after the warm-up. Read a percentile "
                   "by going across from the y axis: 0.99 meets the curve at the p99.",
    "latency_over_time": "Median and tail latency of successful requests, by when they started. "
                         "Shaded: warm-up (grey) and instances down (red).",
    "throughput_over_time": "Requests started and finished per second.",
    "error_rate_over_time": "Share of requests that did not succeed, by outcome.",
    "memory": "Memory of each replica (MB = 10⁶ bytes).",
    "queues": "Requests waiting for a free worker, per replica.",
    "connections": "Open WebSocket connections per replica.",
    "topology": "Services and calls; boxes coloured by utilisation.",
    "incident_timeline": "Each failure: undetected (red), detected and recovering (orange), "
                         "recovered (green mark).",
    "mttr_hist": "How long instances took to come back.",
}
TITLES = {
    "latency_cdf": "Latency distribution",
    "latency_over_time": "Latency over time",
    "throughput_over_time": "Throughput",
    "error_rate_over_time": "Failed requests",
    "memory": "Memory",
    "queues": "Queues",
    "connections": "WebSocket connections",
    "topology": "Topology",
    "incident_timeline": "Incidents",
    "mttr_hist": "Time to recover",
}

CSS = """
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;padding:0 16px 48px;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
 "Helvetica Neue",Arial,sans-serif;color:#1a1a1a;background:#fff}
main{max-width:1100px;margin:0 auto}
h1{font-size:26px;margin:24px 0 4px}
h2{font-size:20px;margin:32px 0 8px;padding-bottom:4px;border-bottom:2px solid #0072B2}
h3{font-size:16px;margin:20px 0 6px}
.meta{color:#555;margin:0 0 12px}
.box{overflow-x:auto;max-width:100%}
figure{margin:16px 0 24px;max-width:100%}
figure img{display:block;max-width:100%;height:auto;border:1px solid #e3e3e3}
figcaption{color:#444;font-size:14px;margin-top:4px}
table{border-collapse:collapse}
pre{white-space:pre-wrap;word-break:break-word;overflow-wrap:anywhere;background:#f6f8fa;
 padding:10px;border-radius:4px;font-size:13px;max-width:100%}
details{margin:8px 0}
summary{cursor:pointer;font-weight:600}
.verdict{padding:12px 16px;border-radius:6px;margin:12px 0;font-size:17px;border-left:8px solid}
.verdict.ok{background:#e6f5ef;border-color:#009E73}
.verdict.bad{background:#fbeae0;border-color:#D55E00}
.verdict.warn{background:#fdf3dc;border-color:#E69F00}
.met{color:#007a58;font-weight:600}.unmet{color:#b34700;font-weight:600}
table.data th,table.data td{padding:3px 10px;text-align:right;font-variant-numeric:tabular-nums}
table.data th{border-bottom:1px solid #999}
table.data .t{text-align:left}
table.data tr:nth-child(even) td{background:#f7f7f7}
nav{font-size:14px;margin:8px 0 0}
nav a{margin-right:14px;color:#0072B2}
footer{margin-top:40px;color:#777;font-size:13px}
code{overflow-wrap:anywhere}
"""


class NotAReportDirectory(SimsysError):
    """The directory holds neither a run (summary.json) nor a sweep (sweep.json)."""


def kind_of(directory: str | Path) -> str:
    """``"run"``, ``"sweep"`` or ``"comparison"`` (a sweep over variants, ``simsys compare
    --out``); raises :class:`NotAReportDirectory` for anything else."""
    d = Path(directory)
    if not d.exists():
        raise NotAReportDirectory(f"{d}: no such directory")
    if not d.is_dir():
        raise NotAReportDirectory(f"{d}: not a directory")
    if (d / "summary.json").is_file():
        return "run"
    if (d / "sweep.json").is_file():
        return "comparison" if _has_variants(d / "sweep.json") else "sweep"
    raise NotAReportDirectory(
        f"{d}: neither a run directory (no summary.json; write one with "
        f"`simsys run SCENARIO --out DIR`) nor a sweep directory (no sweep.json; write one with "
        f"`simsys sweep SCENARIO --grid ... --out DIR`)")


def _has_variants(meta_file: Path) -> bool:
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # the sweep reader says what is wrong with it
    return isinstance(meta, dict) and bool(meta.get("variants"))


def build_report(directory: str | Path, output: str | Path | None = None) -> Path:
    """Write the HTML report of a run or sweep directory and return its path.

    Parameters
    ----------
    directory
        A run directory (``summary.json``), a sweep directory (``sweep.json``) or a
        comparison directory (``simsys compare --out``: a sweep over variants).
    output
        Where to write the page; default ``directory/report.html``.

    Raises
    ------
    NotAReportDirectory
        When ``directory`` is neither (a :class:`~simsys.errors.SimsysError`: exit status 2).
    """
    d = Path(directory)
    kind = kind_of(d)
    target = Path(output) if output is not None else d / REPORT_NAME
    try:
        page = {"run": _run_page, "sweep": _sweep_page, "comparison": _comparison_page}[kind](d)
        page = page.replace(FILES_BASE, _e(_link_base(d, target)))
    except (TypeError, KeyError, ValueError, AttributeError, IndexError) as exc:
        # Files edited or damaged by hand: a user's input, not a bug of the report (which
        # SIMSYS_DEBUG=1 still shows with its traceback).
        if os.environ.get("SIMSYS_DEBUG", "") not in ("", "0"):
            raise
        raise SimsysError(f"{d}: its files do not have the shape simsys {kind} --out writes "
                          f"({type(exc).__name__}: {str(exc)[:200]})") from None
    return atomic_write(target, lambda tmp: tmp.write_text(page, encoding="utf-8"))


# -- pieces ---------------------------------------------------------------------------------------
def _e(x: Any) -> str:
    return html.escape(str(x))


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _figure(png: bytes, title: str, caption: str | None) -> str:
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f"<figure>{_img(png, title)}{cap}</figure>"


def _page(title: str, subtitle: str, sections: list[tuple[str, str, str]]) -> str:
    """A whole page: ``sections`` are (anchor, heading, HTML body)."""
    from . import __version__

    nav = "".join(f'<a href="#{a}">{_e(h)}</a>' for a, h, _ in sections)
    body = "".join(f'<section id="{a}"><h2>{_e(h)}</h2>{b}</section>' for a, h, b in sections)
    stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{_e(title)}</h1><p class=\"meta\">{subtitle}</p><nav>{nav}</nav>{body}"
        f"<footer>Written by simsys {_e(__version__)} on {_e(stamp)}. "
        "Self-contained: every image is embedded in this file.</footer>"
        "</main></body></html>\n"
    )


def _table(header: Iterable[str], rows: Iterable[Iterable[str]], text_columns: int = 1) -> str:
    """A data table; the first ``text_columns`` columns are left-aligned, numbers right."""
    def cell(tag: str, i: int, c: str) -> str:
        return f'<{tag} class="t">{c}</{tag}>' if i < text_columns else f"<{tag}>{c}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f'<div class="box"><table class="data"><thead><tr>{head}</tr></thead>' \
           f"<tbody>{body}</tbody></table></div>"


def _box(inner: str) -> str:
    return f'<div class="box">{inner}</div>'


# -- run reports --------------------------------------------------------------------------------
def _run_page(d: Path) -> str:
    from .output import load_run, plots_for, render_png

    run = load_run(d)
    s = run.summary()
    sections: list[tuple[str, str, str]] = []
    if run.journal:
        sections.append(("experiment", "Experiment", journal_html(run.journal)))
    sections.append(("summary", "Summary", _box(summary_html(s, detail=True))))  # with its notes

    figures = []
    for name in plots_for(run):
        path = d / f"{name}.png"
        if path.is_file():
            png = path.read_bytes()
        elif name == "topology" and run.graph is None:
            continue
        else:
            try:
                png = render_png(run, name)
            except Exception as exc:  # noqa: BLE001 - a plot that cannot be drawn is reported
                figures.append(f"<p><i>{_e(TITLES.get(name, name))}: could not be drawn "
                               f"({_e(type(exc).__name__)}: {_e(exc)})</i></p>")
                continue
        figures.append(_figure(png, TITLES.get(name, name), CAPTIONS.get(name)))
    sections.append(("plots", "Plots", "".join(figures)))

    if len(run.incidents):
        sections.append(("incidents", "Incidents", incidents_html(run.incidents)))
    if run.scenario is not None:
        body = _box(scenario_html(run.scenario))
        yaml_path = d / "scenario.yaml"
        if yaml_path.is_file():
            body += ("<details><summary>scenario.yaml</summary>"
                     f"<pre>{_e(yaml_path.read_text(encoding='utf-8'))}</pre></details>")
        sections.append(("scenario", "Scenario", body))
    sections.append(("files", "Files", _files_html(d)))
    subtitle = (f"Run of <b>{_e(s.get('name', 'scenario'))}</b> · seed {_e(s.get('seed'))} · "
                f"{fmt_duration(s.get('duration'))} simulated"
                + (f", warm-up {fmt_duration(s.get('warmup'))}"
                   if s.get("warmup") or s.get("warmup_auto") else "")
                + (" (auto, MSER-5)" if s.get("warmup_auto") else "")
                + f" · from <code>{_e(d.resolve().name)}/</code>")
    return _page(f"simsys report — {s.get('name', 'run')}", subtitle, sections)


def incidents_html(incidents: Any, limit: int = 200) -> str:
    """The incidents table in human units: when each failure happened, how long to detect and
    to recover, and how many requests it cost."""
    rows = []
    for row in incidents.head(limit).itertuples(index=False):
        f = float(row.failed_at)
        det = float(row.detected_at)
        rec = float(row.recovered_at)
        rows.append([
            _e(row.service),
            _e(f"#{int(row.instance)}"),
            _e(getattr(row, "kind", "")),
            _e(getattr(row, "cause", "")),
            fmt_duration(f),
            fmt_duration(det - f) if math.isfinite(det) else "not detected",
            fmt_duration(rec - f) if math.isfinite(rec) else "not recovered",
            fmt_count(getattr(row, "requests_failed", 0)),
        ])
    more = ""
    if len(incidents) > limit:
        more = f"<p>… and {len(incidents) - limit} more (see incidents.parquet).</p>"
    return _table(["service", "instance", "kind", "cause", "failed at", "detected after",
                   "recovered after", "requests failed"], rows, 4) + more


def _probe_metric(probe: Mapping[str, Any]) -> str:
    from .chaostoolkit import metric_of

    provider = probe.get("activity", {}).get("provider", {})
    try:
        return metric_of(str(provider.get("func")), dict(provider.get("arguments") or {}))
    except (ValueError, KeyError, TypeError):
        return ""


def _probe_text(metric: str, value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, int | float) and metric:
        return fmt_value(metric, value)
    return _e(value)


def journal_html(journal: Mapping[str, Any]) -> str:
    """The verdict of a Chaos Toolkit style journal and its steady-state checks."""
    exp = journal.get("experiment", {}) or {}
    title = exp.get("title", "experiment")
    status = str(journal.get("status", "unknown"))
    deviated = bool(journal.get("deviated", False))
    states = journal.get("steady_states", {}) or {}
    from .experiment import extension

    extra = extension(journal)
    before = states.get("before") or {}
    if before and not before.get("steady_state_met", True):
        cls, verdict = "warn", "The steady state was not met before the method, so the method " \
                               "did not run: the experiment says nothing about the fault."
    elif status == "completed" and not deviated:
        cls, verdict = "ok", "Steady state held: the hypothesis was met before and after the " \
                             "method."
    elif deviated:
        cls, verdict = "bad", "Deviated: the system left its steady state during the experiment."
        failed = extra.get("lost_at") or []
        if failed:
            when = ", ".join(fmt_duration(t) for t in failed[:6])
            verdict += f" Checks failed at {when}{' …' if len(failed) > 6 else ''}."
        regained = extra.get("regained_at")
        verdict += (f" Steady state regained at {fmt_duration(regained)}." if regained is not None
                    else " It was not regained by the end of the run.")
    else:
        cls, verdict = "warn", f"Status {status}."
    hyp = exp.get("steady-state-hypothesis", exp.get("steady_state_hypothesis", {})) or {}
    parts = [
        f'<div class="verdict {cls}"><b>{_e(title)}</b><br>{_e(verdict)}</div>',
        f"<p>Chaos Toolkit journal: status <b>{_e(status)}</b>, deviated "
        f"<b>{_e(str(deviated).lower())}</b>"
        + (f"; hypothesis “{_e(hyp.get('title'))}”" if hyp.get("title") else "") + ".</p>",
    ]
    checks: list[tuple[str, Mapping[str, Any]]] = []
    if before:
        checks.append(("before", before))
    for h in states.get("during") or []:
        checks.append(("during", h))
    if states.get("after"):
        checks.append(("after", states["after"]))
    rows = []
    for label, h in checks:
        for p in h.get("probes", []) or []:
            metric = _probe_metric(p)
            tol = p.get("activity", {}).get("tolerance")
            if isinstance(tol, Mapping) and tol.get("type") == "range":
                tol = tol.get("range")
            if isinstance(tol, list | tuple) and len(tol) == 2:
                tol_s = f"{_probe_text(metric, tol[0])} … {_probe_text(metric, tol[1])}"
            else:
                tol_s = _e(tol)
            met = p.get("tolerance_met")
            rows.append([
                _e(label),
                _e(p.get("activity", {}).get("name", "")),
                _probe_text(metric, p.get("output")),
                tol_s,
                '<span class="met">✓ met</span>' if met else '<span class="unmet">✗ not met</span>',
            ])
    if rows:
        parts.append("<h3>Steady-state checks</h3>")
        parts.append(_table(["check", "probe", "value", "tolerance", ""], rows, 2))
    method = journal.get("run") or []
    if method:
        rows = [[_e(a.get("activity", {}).get("name", "")),
                 _e(a.get("activity", {}).get("provider", {}).get("func", "")),
                 _e(a.get("start", "")), _e(a.get("status", ""))] for a in method]
        parts.append("<h3>Method</h3>")
        parts.append(_table(["activity", "function", "at (simulated)", "status"], rows, 2))
    parts.append("<details><summary>journal.json</summary>"
                 f"<pre>{_e(json.dumps(journal, indent=2, default=str))}</pre></details>")
    return "".join(parts)


FILES_BASE = "\x00files-base\x00"  # replaced by the way from the page to the directory


def _link_base(d: Path, target: Path) -> str:
    """The directory as seen from the page (``""`` when the page is in it), for links."""
    try:
        rel = os.path.relpath(d.resolve(), target.resolve().parent)
    except ValueError:  # another drive (Windows): an absolute link is the only one
        return d.resolve().as_uri() + "/"
    return "" if rel == "." else Path(rel).as_posix() + "/"


def _files_html(d: Path) -> str:
    """The directory's files, each linked (relative to the page, so the folder can move)."""
    rows = []
    for p in sorted(d.iterdir()):
        if p.name.startswith(".") or p.name == REPORT_NAME:
            continue
        size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() \
            else p.stat().st_size
        name = p.name + ("/" if p.is_dir() else "")
        href = FILES_BASE + urllib.parse.quote(name)
        rows.append([f'<a href="{href}">{_e(name)}</a>', fmt_bytes(size)])
    return _table(["file", "size"], rows)


# -- sweep reports ------------------------------------------------------------------------------
def _varying(runs: Any, keys: list[str]) -> list[str]:
    return [k for k in keys if k in runs.columns and runs[k].nunique(dropna=False) > 1]


def _sweep_page(d: Path) -> str:
    import itertools

    from .plot.style import detached
    from .sweeping import load_sweep

    sw = load_sweep(d)
    meta = getattr(sw, "meta", {}) or {}
    runs = sw.runs
    scenario = getattr(sw, "scenario", None) or meta.get("scenario") or {}
    name = scenario.get("name", d.name) if isinstance(scenario, Mapping) else d.name
    keys = list(getattr(sw, "grid_keys", None) or meta.get("grid_keys") or [])
    sections: list[tuple[str, str, str]] = []

    n_runs = len(runs)
    failed = int((runs["status"].astype(str) != "ok").sum()) if n_runs and "status" in runs else 0
    overview = [
        ["scenario", _e(name)],
        ["grid", _e(", ".join(keys) or "none (the scenario as it is)")],
        ["grid points", fmt_count(len(meta.get("points") or []) or 1)],
        ["replications per point", _replications(meta)],
        ["runs", fmt_count(n_runs)],
        ["failed runs", fmt_count(failed)],
        ["base seed", _e(meta.get("seed", "–"))],
        ["status", _e(meta.get("status", "–"))],
    ]
    if meta.get("precision"):
        overview.append(["precision target",
                         f"{fmt_pct(meta['precision'], 1)} of the mean of "
                         f"{_e(meta.get('metric'))}"])
    sections.append(("overview", "Overview", _table(["", ""], overview, 2)))
    if n_runs:
        sections.append(("table", "Results",
                         _box(sweep_html(sw, metrics=_table_metrics(runs)))))

    figures = []
    if n_runs and (runs["status"].astype(str) == "ok").any():
        from .plot.sweep_plots import SweepPlots

        plots = SweepPlots(sw)
        varying = _varying(runs, keys)
        x = next((k for k in varying if _numeric(runs[k])), varying[0] if varying else None)
        rest = [k for k in varying if k != x]
        hue = rest[0] if rest else None
        fixed = rest[1:]
        combos = [dict(zip(fixed, vals, strict=True)) for vals in itertools.product(
            *[sorted(runs[k].dropna().unique().tolist(), key=str) for k in fixed])][:6] \
            if fixed else [{}]
        constant = {k: runs[k].iloc[0] for k in keys if k not in varying and k in runs}
        for where in combos:
            where_all = {**constant, **where}
            label = ", ".join(f"{k} = {v}" for k, v in where.items())
            for metric in plots.headline():
                with detached():
                    ax = plots.metric(metric, x=x, hue=hue, where=where_all or None)
                    png = _png(ax.figure)
                figures.append(_figure(
                    png, metric + (f" ({label})" if label else ""),
                    f"{metric}: mean over replications with its 95% confidence interval (band); "
                    "faint dots are single runs." + (f" Fixed: {label}." if label else "")))
    if figures:
        sections.append(("plots", "Plots", "".join(figures)))
    if failed:
        bad = runs[runs["status"].astype(str) != "ok"]
        rows = [[_e(", ".join(f"{k}={r[k]}" for k in keys) or "–"), _e(r.get("replication")),
                 _e(r.get("error") or "")] for r in bad.head(100).to_dict("records")]
        sections.append(("failures", "Failed runs",
                         _table(["point", "replication", "error"], rows, 3)))
    if isinstance(scenario, Mapping) and scenario:
        body = _box(scenario_html(with_grid(scenario, meta.get("points") or [])))
        body += ("<details><summary>base scenario (as data)</summary>"
                 f"<pre>{_e(json.dumps(scenario, indent=2, default=str))}</pre></details>")
        sections.append(("scenario", "Scenario", body))
    sections.append(("files", "Files", _files_html(d)))
    subtitle = (f"Sweep of <b>{_e(name)}</b> · {fmt_count(n_runs)} runs"
                + (f" ({fmt_count(failed)} failed)" if failed else "")
                + f" · from <code>{_e(d.resolve().name)}/</code>")
    return _page(f"simsys sweep report — {name}", subtitle, sections)


def _comparison_page(d: Path) -> str:
    from .comparing import load_comparison
    from .plot.style import detached

    c = load_comparison(d)
    runs, failed = c.runs, c.failures
    overview = [
        ["variants", _e(", ".join(c.variants)) + f" (the first, {_e(c.variants[0])}, is the baseline)"],
        ["replications per variant", fmt_count(c.replications)],
        ["runs", fmt_count(len(runs))],
        ["failed runs", fmt_count(len(failed))],
        ["base seed", _e(c.base_seed)],
        ["status", _e(c.sweep.meta.get("status", "–") if c.sweep is not None else "–")],
    ]
    sections: list[tuple[str, str, str]] = [("overview", "Overview", _table(["", ""], overview, 2))]
    if len(runs) > len(failed):
        sections.append(("table", "Results", _box(c.to_html())))
        with detached():
            png = _png(c.plot.dashboard())
        sections.append(("plots", "Plots", _figure(
            png, "side by side", "Means over replications with their confidence intervals; "
            "latency distributions pooled over replications.")))
    if len(failed):
        rows = [[_e(r["variant"]), _e(r["replication"]), _e(r.get("error") or "")]
                for r in failed.head(100).to_dict("records")]
        sections.append(("failures", "Failed runs", _table(["variant", "replication", "error"], rows, 3)))
    for name, scenario in (c.sweep.meta.get("variants") or {}).items() if c.sweep is not None else ():
        sections.append((f"scenario-{_e(name)}", f"Scenario {_e(name)}", _box(scenario_html(scenario))))
    sections.append(("files", "Files", _files_html(d)))
    title = " vs ".join(c.variants)
    subtitle = (f"Comparison of <b>{_e(title)}</b> · {fmt_count(len(runs))} runs"
                + (f" ({fmt_count(len(failed))} failed)" if len(failed) else "")
                + f" · from <code>{_e(d.resolve().name)}/</code>")
    return _page(f"simsys comparison report — {title}", subtitle, sections)


def with_grid(scenario: Mapping[str, Any], points: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The base scenario as the sweep ran it: a key the grid sets shows the grid's value, or
    its values (``"1 min, 10 min (grid)"``) when they vary, not the file's."""
    import copy

    out = copy.deepcopy(dict(scenario))
    keys = list(dict.fromkeys(k for p in points for k in p))
    for key in keys:
        values = list(dict.fromkeys(str(p[key]) if isinstance(p[key], list | dict) else p[key]
                                    for p in points if key in p))
        shown = values[0] if len(values) == 1 else (
            ", ".join(fmt_duration(v) if key.split(".")[-1] in ("duration", "warmup")
                      and isinstance(v, int | float) else str(v) for v in values) + " (grid)")
        node: Any = out
        parts = key.split(".")
        try:
            for part in parts[:-1]:
                node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
            if isinstance(node, list):
                node[int(parts[-1])] = shown
            else:
                node[parts[-1]] = shown
        except (IndexError, ValueError, TypeError, AttributeError):
            continue  # a key the base scenario cannot hold as shown: the grid table says it
    return out


def _replications(meta: Mapping[str, Any]) -> str:
    per_point = meta.get("replications_per_point")
    if per_point:
        lo, hi = min(per_point), max(per_point)
        return fmt_count(lo) if lo == hi else f"{fmt_count(lo)}–{fmt_count(hi)}"
    return _e(meta.get("replications", "–"))


def _numeric(series: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _table_metrics(runs: Any) -> list[str]:
    base = ["throughput", "error_rate", "latency.p50", "latency.p99"]
    avail = [c for c in runs.columns if str(c).startswith("services.")
             and str(c).endswith(".availability")]
    out = [m for m in base if m in runs.columns]
    # availabilities only when they say something (not 100 % everywhere)
    for c in avail:
        col = runs[c]
        try:
            if (col.astype(float) < 1).any():
                out.append(c)
        except (TypeError, ValueError):
            continue
    return out


def _png(fig: Any, dpi: int = 110) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()

