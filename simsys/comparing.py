"""Side-by-side comparison of variants — two deployments of one application, two designs —
under common random numbers.

Every replication runs every variant with the same seed, so the variants see the same arrivals
and, where they agree, the same work (a component's work is drawn from a stream named by the
component, whatever service it is deployed in; see :mod:`simsys.spec.call_tree`). The difference of
a figure between two variants is then measured replication by replication, and its confidence
interval is far narrower than the two variants' own intervals suggest.

A comparison is a sweep over a variant axis: it runs on the sweep engine
(:mod:`simsys.sweeping`), so it has the same process pool (``jobs=``), Dask (``scheduler=``),
per-run time limit (``run_timeout=``), precision stopping (``precision=``, ``metric=``) and
resumable output directory (``out=``: rerun the same comparison to finish a killed one).

>>> from simsys import compare
>>> app = {"duration": "20s",
...        "app": {"web": {"service_time": "2ms", "calls": ["db"], "workers": 8},
...                "db": {"service_time": "3ms", "workers": 8}},
...        "links": {"default": {"latency": "1ms"}},
...        "workload": [{"type": "poisson", "rate": "20/s", "target": "web"}]}
>>> c = compare({"monolith": {**app, "deploy": "monolith"},
...              "microservices": {**app, "deploy": "microservices"}}, replications=3, jobs=1)
>>> t = c.table(["latency.mean"])
>>> round(float(t.loc["latency.mean", ("microservices", "diff")]) * 1e3, 6)   # 2 crossings
2.0
"""


from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import Problem, ScenarioError, SimsysError
from .files import atomic_write
from .formatting import column_header, fmt_in_unit, metric_label
from .result import Result
from .spec.model import Scenario
from .stats import mean_interval, paired_difference
from .sweeping import Sweep, load_sweep, replication_seed
from .sweeping.driver import VARIANT, Design, Stopping, checked_seed, run_design
from .sweeping.grid import check_metric_name, scenario_data
from .sweeping.worker import summary_figures

__all__ = ["DEFAULT_METRICS", "Comparison", "compare", "figures", "load_comparison",
           "replication_seed"]

#: Figures :meth:`Comparison.table` shows when none are named: they mean the same thing in every
#: variant, whatever its services are called.
DEFAULT_METRICS = (
    "latency.mean", "latency.p50", "latency.p95", "latency.p99", "throughput", "error_rate",
    "availability", "memory.peak", "replicas", "cost",
)
BOOK = ("variant", "replication", "seed", "status", "error", "wall_time")
STATS = ("mean", "ci_low", "ci_high")
DIFF_STATS = ("diff", "diff_low", "diff_high")
#: Ok latencies kept per run (evenly spaced order statistics, so the shape of the distribution
#: is kept; the tail is in the figures) for the overlaid CDFs; they travel in the run's row.
LATENCY_SAMPLE = 1000
SAMPLE = "latency_sample"
#: Figures a comparison adds to every run's summary (:func:`shared_figures`).
SHARED = ("availability", "memory.peak", "memory.mean", "replicas", "cost")

Spec = str | Path | Mapping[str, Any] | Scenario
Progress = bool | Callable[[int, int], None] | None


def figures(result: Result) -> dict[str, float]:
    """One run reduced to numbers: its flattened summary plus the figures every variant shares.

    Besides ``summary()`` (``latency.*``, ``throughput``, ``error_rate``, ``services.<name>.*``,
    …) there are ``availability`` (the share of requests answered ok), ``memory.peak`` and
    ``memory.mean`` (bytes held by all replicas together, after warm-up), ``replicas`` (mean
    replicas running, all services together) and ``cost`` (replica-hours × price; the summary's
    when it has one, else configured replicas × duration × each service's ``price``).
    """
    out: dict[str, float] = {}
    for key, value in summary_figures(result.summary()).items():  # a sweep row's figures
        if value is None:
            out[key] = math.nan
        elif isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
            out[key] = float(value)
    out.update(shared_figures(result))
    return out


def shared_figures(result: Result) -> dict[str, float]:
    """The figures every variant has whatever its services are called: ``availability``,
    ``memory.peak``, ``memory.mean``, ``replicas`` and ``cost`` (see :func:`figures`)."""
    s = result.summary()
    out: dict[str, float] = {}
    total = s["requests"]["total"]
    out["availability"] = s["requests"]["ok"] / total if total else math.nan
    ts = result.timeseries
    mem = ts[(ts["metric"] == "memory") & (ts["time"] >= result.warmup)]
    by_time = mem.groupby("time", sort=True)["value"].sum()
    out["memory.peak"] = float(by_time.max()) if len(by_time) else 0.0
    out["memory.mean"] = float(by_time.mean()) if len(by_time) else 0.0
    G = result.graph
    from .topology import services

    names = services(G)
    replica_seconds = [s["services"].get(n, {}).get("replica_seconds") for n in names]
    if names and all(isinstance(x, int | float) and x > 0 for x in replica_seconds):
        out["replicas"] = float(sum(replica_seconds)) / result.duration  # type: ignore[arg-type]
    else:
        out["replicas"] = float(sum(int(G.nodes[n].get("replicas", 1)) for n in names))
    if "cost" not in s:
        out["cost"] = sum(int(G.nodes[n].get("replicas", 1)) * float(G.nodes[n].get("price", 0.0))
                          for n in names) * result.duration / 3600.0
    return out


def run_figures(result: Result) -> dict[str, Any]:
    """What a comparison adds to each run's row (called in the worker): :func:`shared_figures`
    and a sample of its ok latencies after warm-up (JSON text, at most :data:`LATENCY_SAMPLE`)."""
    out: dict[str, Any] = dict(shared_figures(result))
    df = result.requests
    lat = np.sort(df.loc[(df["start"] >= result.warmup) & (df["status"] == "ok"), "latency"].to_numpy())
    if len(lat) > LATENCY_SAMPLE:
        lat = lat[np.linspace(0, len(lat) - 1, LATENCY_SAMPLE).astype(np.int64)]
    out[SAMPLE] = json.dumps([float(x) for x in lat])
    return out


class Comparison:
    """Variants run side by side over the same seeds.

    Attributes
    ----------
    variants : list of str
        Their names, the first being the baseline of every difference.
    runs : pandas.DataFrame
        One row per run: ``variant, replication, seed, status, error, wall_time`` and every
        figure of :func:`figures` (flattened summary keys, ``availability``, ``memory.peak``,
        ``cost``, …). Replication ``r`` has the same seed for every variant. Only runs with
        status ``ok`` count in the tables.
    latencies : dict of str to numpy.ndarray
        Per variant, latencies (seconds) of ok requests after warm-up, all replications pooled
        (at most 1 000 per run: evenly spaced order statistics), for overlaid distributions.
    sweep : Sweep or None
        The sweep over the variant axis that ran them (its ``directory`` when saved).
    """

    def __init__(self, runs: pd.DataFrame, variants: Sequence[str], *,
                 latencies: Mapping[str, np.ndarray] | None = None, base_seed: int = 0,
                 confidence: float = 0.95, sweep: Sweep | None = None):
        self.runs = runs
        self.variants = list(variants)
        self.latencies = dict(latencies or {})
        self.base_seed = base_seed
        self.confidence = confidence
        self.sweep = sweep
        self.shown: list[str] | None = None  # the figures the table shows when none are named

    @classmethod
    def from_sweep(cls, sw: Sweep, confidence: float | None = None) -> Comparison:
        """The comparison a sweep over the variant axis holds (see :func:`compare`)."""
        variants = [p[VARIANT] for p in sw.points]
        runs = sw.runs.copy()
        latencies: dict[str, np.ndarray] = {}
        ok = runs["status"] == "ok"
        for v in variants:
            texts = runs.loc[ok & (runs[VARIANT] == v), SAMPLE] if SAMPLE in runs else []
            parts = [np.asarray(json.loads(x), dtype=float) for x in texts if isinstance(x, str)]
            latencies[v] = np.concatenate(parts) if parts else np.empty(0)
        skip = {"point", "point_key", SAMPLE, *BOOK, *sw.grid_keys}
        figures = [c for c in runs.columns if c not in skip
                   and pd.api.types.is_numeric_dtype(runs[c]) and not pd.api.types.is_bool_dtype(runs[c])]
        runs = runs[[*BOOK, *figures]].astype({f: float for f in figures})
        runs[VARIANT] = pd.Categorical(runs[VARIANT], categories=variants)
        conf = float(sw.meta.get("confidence") or 0.95) if confidence is None else confidence
        return cls(runs, variants, latencies=latencies, base_seed=sw.seed, confidence=conf, sweep=sw)

    @property
    def directory(self) -> Path | None:
        """Where the runs were saved (``out=``), or None."""
        return self.sweep.directory if self.sweep is not None else None

    @property
    def failures(self) -> pd.DataFrame:
        """The rows of runs that failed (status ``error`` or ``timeout``)."""
        return self.runs[self.runs["status"] != "ok"]

    @cached_property
    def scenarios(self) -> dict[str, Scenario]:
        """The variants' scenarios, checked."""
        from .spec.load import validate

        data = (self.sweep.meta.get("variants") or {}) if self.sweep is not None else {}
        return {name: validate(d) for name, d in data.items()}

    def save(self, directory: str | Path, metrics: Iterable[str] | str | None = None) -> Path:
        """Write ``comparison.json`` (:meth:`to_dict`) and ``comparison.png`` (the dashboard)
        into ``directory``, each atomically; :func:`compare` with ``out=`` does this after the
        runs, which the sweep engine saves there as they finish."""
        path = Path(directory)
        text = json.dumps(self.to_dict(metrics), indent=2, allow_nan=False) + "\n"
        try:
            path.mkdir(parents=True, exist_ok=True)
            atomic_write(path / "comparison.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
            from .plot.style import detached

            with detached():  # no pyplot: nothing shown, nothing kept alive
                fig = self.plot.dashboard()
            atomic_write(path / "comparison.png", lambda tmp: fig.savefig(tmp, format="png"))
        except OSError as exc:
            raise SimsysError(f"cannot write {path}: {exc.strerror or exc}") from None
        return path

    @property
    def replications(self) -> int:
        return int(self.runs["replication"].nunique()) if len(self.runs) else 0

    @cached_property
    def metrics(self) -> list[str]:
        """Figures every variant has (numeric, not all missing), in summary order."""
        cols = [c for c in self.runs.columns if c not in BOOK]
        ok = self.runs[self.runs["status"] == "ok"]
        out = []
        for c in cols:
            per = ok.groupby("variant", sort=False, observed=False)[c].apply(lambda s: s.notna().any())
            if len(per) == len(self.variants) and bool(per.all()):
                out.append(c)
        return out

    def _values(self, metric: str, variant: str) -> pd.Series:
        if metric not in self.runs.columns:
            raise KeyError(f"no figure {metric!r}; figures are: {', '.join(self.metrics)}")
        if variant not in self.variants:
            raise KeyError(f"no variant {variant!r}; variants are: {', '.join(self.variants)}")
        runs = self.runs
        rows = runs[(runs["variant"] == variant) & (runs["status"] == "ok")]
        return rows.set_index("replication")[metric].astype(float)

    def diff(self, metric: str, variant: str, baseline: str | None = None,
             confidence: float | None = None) -> dict[str, float]:
        """``variant`` minus ``baseline`` (default: the first variant) of ``metric``, paired by
        replication (same seed), with its Student t interval: ``n, mean, std, ci_low, ci_high``.
        """
        baseline = self.variants[0] if baseline is None else baseline
        conf = self.confidence if confidence is None else confidence
        i = paired_difference(self._values(metric, baseline).to_dict(),
                              self._values(metric, variant).to_dict(), conf)
        return {"n": i.n, "mean": i.mean, "std": i.std, "ci_low": i.low, "ci_high": i.high}

    def table(self, metrics: Iterable[str] | str | None = None,
              confidence: float | None = None) -> pd.DataFrame:
        """One row per figure; per variant its ``mean``, ``ci_low``, ``ci_high``; for every
        variant after the first also ``diff``, ``diff_low``, ``diff_high``: the mean paired
        difference from the first variant and its interval.

        Columns are a MultiIndex ``(variant, statistic)``; the index is the figure's name.
        """
        conf = self.confidence if confidence is None else confidence
        if isinstance(metrics, str):
            metrics = [metrics]
        if metrics is None:
            metrics = self.shown or [m for m in DEFAULT_METRICS if m in self.metrics]
        metrics = list(metrics)
        for m in metrics:
            if m not in self.runs.columns:
                raise KeyError(f"no figure {m!r}; figures are: {', '.join(self.metrics)}")
        columns: list[tuple[str, str]] = []
        for i, v in enumerate(self.variants):
            columns += [(v, s) for s in STATS]
            if i > 0:
                columns += [(v, s) for s in DIFF_STATS]
        rows = []
        for m in metrics:
            row: list[float] = []
            for i, v in enumerate(self.variants):
                own = mean_interval(self._values(m, v), conf)
                row += [own.mean, own.low, own.high]
                if i > 0:
                    d = self.diff(m, v, confidence=conf)
                    row += [d["mean"], d["ci_low"], d["ci_high"]]
            rows.append(row)
        return pd.DataFrame(rows, index=pd.Index(metrics, name="metric"),
                            columns=pd.MultiIndex.from_tuples(columns, names=["variant", "statistic"]))

    # -- display ----------------------------------------------------------------------------
    def cells(self, metrics: Iterable[str] | str | None = None) -> tuple[list[str], list[list[str]]]:
        """The table as text cells, ``(header, rows)``, in the units of the formatting module
        (latencies in ms, recovery times in s, memory in MB, shares in %): what
        :meth:`to_text`, the notebook view and the report show."""
        t = self.table(metrics)
        conf = f"{self.confidence:.0%}"
        header = ["figure"]
        for i, v in enumerate(self.variants):
            header.append(f"{v} (±{conf})")
            if i > 0:
                header.append(f"Δ vs {self.variants[0]} ({conf} CI)")
        body = []
        for m in t.index:
            row = [column_header(m)]
            for i, v in enumerate(self.variants):
                mean, low, high = (t.loc[m, (v, s)] for s in STATS)
                row.append(fmt_in_unit(m, mean, (high - low) / 2))
                if i > 0:
                    d, dl, dh = (t.loc[m, (v, s)] for s in DIFF_STATS)
                    row.append(_difference(m, d, dl, dh))
            body.append(row)
        return header, body

    def note(self) -> str:
        """The line under the table: replications, seeds, failures."""
        failed = len(self.failures)
        return (f"{self.replications} replications per variant, common seeds from base seed "
                f"{self.base_seed}; Δ is paired by seed"
                + (f"; {failed} failed runs left out" if failed else ""))

    def to_text(self, metrics: Iterable[str] | str | None = None) -> str:
        """The table as plain text (see :meth:`cells`)."""
        header, body = self.cells(metrics)
        widths = [max(len(r[k]) for r in [header, *body]) for k in range(len(header))]
        lines = []
        for r in [header, *body]:
            lines.append("  ".join([r[0].ljust(widths[0])]
                                   + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]))
        lines.append(self.note())
        return "\n".join(lines)

    def to_html(self, metrics: Iterable[str] | str | None = None) -> str:
        """The table as an HTML fragment (see :meth:`cells`), for notebooks and reports."""
        import html

        header, body = self.cells(metrics)
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        rows = "".join("<tr>" + f"<th style='text-align:left'>{html.escape(r[0])}</th>"
                       + "".join(f"<td style='text-align:right;white-space:nowrap'>{html.escape(c)}</td>"
                                 for c in r[1:]) + "</tr>" for r in body)
        return (f"<table class='simsys-comparison'><thead><tr>{head}</tr></thead>"
                f"<tbody>{rows}</tbody></table><p><small>{html.escape(self.note())}</small></p>")

    def to_dict(self, metrics: Iterable[str] | str | None = None) -> dict[str, Any]:
        """JSON-ready: variants, replications, confidence and ``{figure: {variant: {stat: x}}}``."""
        t = self.table(metrics)
        out: dict[str, Any] = {}
        for m in t.index:
            out[m] = {v: {s: _json_num(t.loc[m, (v, s)]) for s in t[v].columns}
                      for v in self.variants}
        return {"variants": self.variants, "replications": self.replications,
                "base_seed": self.base_seed, "confidence": self.confidence, "figures": out}

    @cached_property
    def plot(self) -> Any:
        """Side-by-side plots: ``comparison.plot.latency_cdf()``, ``.availability()``, …"""
        from .plot.compare import ComparisonPlots

        return ComparisonPlots(self)

    def __repr__(self) -> str:
        return (f"<Comparison {' vs '.join(self.variants)}: {self.replications} replications, "
                f"base seed {self.base_seed}>")

    def _repr_html_(self) -> str:
        import html

        return f"<p><b>{html.escape(' vs '.join(self.variants))}</b></p>" + self.to_html()


def _difference(metric: str, d: float, low: float, high: float) -> str:
    """A paired difference in its metric's unit: ``+1.66 [1.2, 2.1]`` (signed, its interval)."""
    if not math.isfinite(d):
        return fmt_in_unit(metric, None)
    shown = fmt_in_unit(metric, d, (high - low) / 2 if math.isfinite(low) else None)
    sign = "+" if d > 0 else ""
    if not math.isfinite(low):
        return sign + shown
    mean_text = shown.split(" ± ")[0]
    digits = len(mean_text.split(".")[1]) if "." in mean_text else 0
    _, scale, _ = metric_label(metric)
    return f"{sign}{mean_text} [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"


def _json_num(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _name_variants(variants: Mapping[str, Spec] | Sequence[Spec]) -> dict[str, Spec]:
    if isinstance(variants, Mapping):
        return {str(k): v for k, v in variants.items()}
    out: dict[str, Spec] = {}
    for i, spec in enumerate(variants):
        if isinstance(spec, str | Path):
            name = Path(spec).stem
        elif isinstance(spec, Scenario):
            name = spec.name
        else:
            name = str(spec.get("name", f"variant{i}"))
        base, k = name, 2
        while name in out:
            name, k = f"{base}-{k}", k + 1
        out[name] = spec
    return out


def _from_override(problem: Problem) -> bool:
    return problem.source == "--set" or problem.message.startswith("--set ")


def _from_override(problem: Problem) -> bool:
    return problem.source == "--set" or problem.message.startswith("--set ")


def _variant_data(named: Mapping[str, Spec], overrides: Any) -> tuple[dict[str, dict[str, Any]], int]:
    """Every variant as plain data with ``overrides`` applied, all checked before anything runs
    (one ScenarioError with every problem, an override's problem once), and the first
    variant's seed."""
    if overrides is not None and not isinstance(overrides, Mapping):
        overrides = list(overrides)
    problems: list[Problem] = []
    data: dict[str, dict[str, Any]] = {}
    seeds: list[int] = []
    for name, spec in named.items():
        try:
            data[name], scenario, _ = scenario_data(spec, overrides)
            seeds.append(scenario.seed)
        except ScenarioError as exc:
            problems += [p for p in exc.problems if not (_from_override(p) and p in problems)]
    if problems:
        raise ScenarioError(problems)
    return data, seeds[0]


def compare(
    variants: Mapping[str, Spec] | Sequence[Spec],
    replications: int = 10,
    seed: int | None = None,
    *,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    confidence: float = 0.95,
    progress: Progress = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    executor: Any = None,
    out: str | Path | None = None,
    precision: float | None = None,
    metric: str | None = None,
    max_replications: int | None = None,
    run_timeout: float | None = None,
    retry_errors: bool = False,
    metrics: Sequence[str] | str | None = None,
    flush_every: float = 2.0,
) -> Comparison:
    """Run each variant ``replications`` times over the same seeds and compare them.

    A comparison is a sweep whose one grid axis is the variant: it runs on the sweep engine,
    with its executors, output directory and precision rule (see :func:`simsys.sweep`).

    Parameters
    ----------
    variants
        ``{"monolith": spec_a, "microservices": spec_b}``, or a list of specs (named by file
        stem or scenario name). A spec is anything :func:`simsys.run` takes but a graph. The
        first variant is the baseline of the differences.
    replications
        Runs per variant; replication ``r`` runs every variant with seed
        :func:`replication_seed` ``(seed, r)``.
    seed
        The base seed (default: the first variant's ``seed``).
    overrides
        Applied to every variant, checked like its file: ``{"duration": "2min"}``.
    confidence
        Of the Student t intervals in :meth:`Comparison.table`.
    progress
        None: a bar on stderr when it is a terminal (or in Jupyter); True/False: always/never;
        a callable gets ``(done, total)`` after every run.
    jobs, scheduler, executor
        At most one: N local processes (1 = in this process), a Dask scheduler address or
        scheduler file, or any :class:`concurrent.futures.Executor`. Default: one process per
        core. Results do not depend on the choice.
    out
        Directory to save the runs in as they finish (a sweep directory, plus
        ``comparison.json`` and ``comparison.png`` at the end); the same call again resumes.
    precision, metric, max_replications
        Add replications per variant until the relative half-width of ``metric``'s mean is
        ≤ ``precision`` (or ``max_replications``); paired differences use the replications
        both variants have.
    run_timeout
        Wall-clock seconds one run may take; a longer run is recorded with status ``timeout``.
    retry_errors
        On resume, run again the runs saved with status ``error`` or ``timeout``.
    metrics
        The figures :meth:`Comparison.table`, ``to_text`` and ``to_dict`` show by default
        (default :data:`DEFAULT_METRICS`); checked before any run, like ``metric``.
    flush_every
        Seconds at most between two part files in ``out`` while runs finish.

    Raises
    ------
    ScenarioError
        A variant does not load (every problem, with its file and field path), or the
        arguments are wrong; nothing has run then.
    KeyboardInterrupt
        After the finished runs are saved (with ``out``) and the workers stopped.

    Examples
    --------
    >>> from simsys import compare
    >>> web = {"duration": "10s", "services": {"web": {"service_time": "5ms"}},
    ...        "workload": [{"type": "poisson", "rate": "10/s", "target": "web"}]}
    >>> c = compare({"one": web, "two": web}, replications=2, jobs=1)
    >>> float(c.table("latency.mean").loc["latency.mean", ("two", "diff")])
    0.0
    """
    named = _name_variants(variants)
    if len(named) < 1:
        raise ScenarioError([Problem("variants", "expected at least one variant to run")])
    stopping = Stopping.checked(replications, precision, metric, None, max_replications, confidence)
    data, first_seed = _variant_data(named, overrides)
    base_seed = checked_seed(first_seed if seed is None else seed)
    shown = [metrics] if isinstance(metrics, str) else list(metrics or [])
    if metric or shown:
        wanted = [*([metric] if metric else []), *shown]
        check_metric_name(next(iter(data.values())), wanted, SHARED,
                          option="metrics" if not metric else "metric")
    design = Design(data, [VARIANT], [{VARIANT: name} for name in data], label="compare")
    tick = progress
    if callable(progress) and progress is not True:
        def tick(done: int, total: int, failed: int) -> None:
            progress(done, total)
    sw = run_design(design, stopping, base_seed, jobs=jobs, scheduler=scheduler,
                    executor=executor, out=out, retry_errors=retry_errors, progress=tick,
                    collect=run_figures, run_timeout=run_timeout, flush_every=flush_every)
    result = Comparison.from_sweep(sw, confidence)
    result.shown = shown or None
    if out is not None:
        result.save(out)
    return result


def load_comparison(directory: str | Path) -> Comparison:
    """Read a comparison directory (``compare(out=…)``, ``simsys compare --out``) back."""
    sw = load_sweep(directory)
    if VARIANT not in sw.grid_keys or not sw.meta.get("variants"):
        raise ScenarioError([Problem("", "a sweep directory, not a comparison (its sweep.json has "
                                     "no variants)", str(directory))])
    return Comparison.from_sweep(sw)
