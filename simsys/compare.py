"""Side-by-side comparison of variants — two deployments of one application, two designs —
under common random numbers.

Every replication runs every variant with the same seed, so the variants see the same arrivals
and, where they agree, the same work (a component's work is drawn from a stream named by the
component, whatever service it is deployed in; see :mod:`simsys.spec.app`). The difference of
a figure between two variants is then measured replication by replication, and its confidence
interval is far narrower than the two variants' own intervals suggest.

>>> from simsys.compare import compare
>>> app = {"duration": "20s",
...        "app": {"web": {"service_time": "2ms", "calls": ["db"], "workers": 8},
...                "db": {"service_time": "3ms", "workers": 8}},
...        "links": {"default": {"latency": "1ms"}},
...        "workload": [{"type": "poisson", "rate": "20/s", "target": "web"}]}
>>> c = compare({"monolith": {**app, "deploy": "monolith"},
...              "microservices": {**app, "deploy": "microservices"}}, replications=3)
>>> t = c.table(["latency.mean"])
>>> round(float(t.loc["latency.mean", ("microservices", "diff")]) * 1e3, 6)   # 2 crossings
2.0
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import Problem, ScenarioError
from .formatting import column_header, fmt_in_unit, metric_label
from .result import Result, flatten
from .runner import run
from .spec.load import load
from .spec.model import Scenario

__all__ = ["DEFAULT_METRICS", "Comparison", "compare", "figures", "replication_seed"]

#: Figures :meth:`Comparison.table` shows when none are named: they mean the same thing in every
#: variant, whatever its services are called.
DEFAULT_METRICS = (
    "latency.mean", "latency.p50", "latency.p95", "latency.p99", "throughput", "error_rate",
    "availability", "memory.peak", "replicas", "cost",
)
#: Summary keys that describe the run's input, not its outcome.
_INPUTS = ("name", "seed", "duration", "warmup")
BOOK = ("variant", "replication", "seed", "wall_time")
STATS = ("mean", "ci_low", "ci_high")
DIFF_STATS = ("diff", "diff_low", "diff_high")
LATENCY_KEEP = 200_000  # ok latencies kept per run for the overlaid CDFs

Spec = str | Path | Mapping[str, Any] | Scenario
Progress = bool | Callable[[int, int], None] | None


def replication_seed(base_seed: int, replication: int) -> int:
    """The seed of replication ``replication``, the same for every variant (and the same as
    :func:`simsys.sweep.replication_seed`, so a comparison and a sweep agree).

    >>> replication_seed(0, 0) == replication_seed(0, 0) != replication_seed(0, 1)
    True
    """
    ss = np.random.SeedSequence(int(base_seed), spawn_key=(int(replication),))
    return int(ss.generate_state(1)[0])


def figures(result: Result) -> dict[str, float]:
    """One run reduced to numbers: its flattened summary plus the figures every variant shares.

    Besides ``summary()`` (``latency.*``, ``throughput``, ``error_rate``, ``services.<name>.*``,
    …) there are ``availability`` (the share of requests answered ok), ``memory.peak`` and
    ``memory.mean`` (bytes held by all replicas together, after warm-up), ``replicas`` (mean
    replicas running, all services together) and ``cost`` (replica-hours × price; the summary's
    when it has one, else configured replicas × duration × each service's ``price``).
    """
    s = result.summary()
    out: dict[str, float] = {}
    for key, value in flatten(s).items():
        if key in _INPUTS or isinstance(value, bool):
            continue
        if value is None:
            out[key] = math.nan
        elif isinstance(value, int | float | np.integer | np.floating):
            out[key] = float(value)
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
    if "cost" not in out:
        out["cost"] = sum(int(G.nodes[n].get("replicas", 1)) * float(G.nodes[n].get("price", 0.0))
                          for n in names) * result.duration / 3600.0
    return out


def _ok_latencies(result: Result, keep: int) -> np.ndarray:
    df = result.requests
    lat = df.loc[(df["start"] >= result.warmup) & (df["status"] == "ok"), "latency"].to_numpy()
    if len(lat) > keep:  # an even thinning keeps the shape; the tail is in the figures
        lat = np.sort(lat)[np.linspace(0, len(lat) - 1, keep).astype(np.int64)]
    return lat


def _t(confidence: float, df: int) -> float:
    """Two-sided Student t quantile (simsys.analysis, numpy only)."""
    from .analysis import t_quantile

    return float(t_quantile(confidence, df))


def _interval(x: np.ndarray, confidence: float) -> tuple[int, float, float, float, float]:
    """``(n, mean, std, ci_low, ci_high)`` of a Student t interval; NaNs are left out."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return 0, math.nan, math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n == 1:
        return 1, mean, math.nan, math.nan, math.nan
    std = float(x.std(ddof=1))
    half = _t(confidence, n - 1) * std / math.sqrt(n)
    return n, mean, std, mean - half, mean + half


class Comparison:
    """Variants run side by side over the same seeds.

    Attributes
    ----------
    variants : list of str
        Their names, the first being the baseline of every difference.
    runs : pandas.DataFrame
        One row per run: ``variant, replication, seed, wall_time`` and every figure of
        :func:`figures` (flattened summary keys, ``availability``, ``memory.peak``, ``cost``, …).
        Replication ``r`` has the same seed for every variant.
    latencies : dict of str to numpy.ndarray
        Per variant, the latencies of ok requests after warm-up, all replications pooled (at
        most 200 000 per run, evenly thinned), for overlaid distributions.
    scenarios : dict of str to Scenario
        The checked scenarios.
    """

    def __init__(self, runs: pd.DataFrame, variants: Sequence[str], *,
                 latencies: Mapping[str, np.ndarray] | None = None,
                 scenarios: Mapping[str, Scenario] | None = None, base_seed: int = 0,
                 confidence: float = 0.95):
        self.runs = runs
        self.variants = list(variants)
        self.latencies = dict(latencies or {})
        self.scenarios = dict(scenarios or {})
        self.base_seed = base_seed
        self.confidence = confidence

    @property
    def replications(self) -> int:
        return int(self.runs["replication"].nunique()) if len(self.runs) else 0

    @cached_property
    def metrics(self) -> list[str]:
        """Figures every variant has (numeric, not all missing), in summary order."""
        cols = [c for c in self.runs.columns if c not in BOOK]
        out = []
        for c in cols:
            per = self.runs.groupby("variant", sort=False)[c].apply(lambda s: s.notna().any())
            if len(per) == len(self.variants) and bool(per.all()):
                out.append(c)
        return out

    def _values(self, metric: str, variant: str) -> pd.Series:
        if metric not in self.runs.columns:
            raise KeyError(f"no figure {metric!r}; figures are: {', '.join(self.metrics)}")
        if variant not in self.variants:
            raise KeyError(f"no variant {variant!r}; variants are: {', '.join(self.variants)}")
        rows = self.runs[self.runs["variant"] == variant]
        return rows.set_index("replication")[metric].astype(float)

    def diff(self, metric: str, variant: str, baseline: str | None = None,
             confidence: float | None = None) -> dict[str, float]:
        """``variant`` minus ``baseline`` (default: the first variant) of ``metric``, paired by
        replication (same seed), with its Student t interval: ``n, mean, std, ci_low, ci_high``.
        """
        baseline = self.variants[0] if baseline is None else baseline
        conf = self.confidence if confidence is None else confidence
        d = (self._values(metric, variant) - self._values(metric, baseline)).to_numpy()
        n, mean, std, low, high = _interval(d, conf)
        return {"n": n, "mean": mean, "std": std, "ci_low": low, "ci_high": high}

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
            metrics = [m for m in DEFAULT_METRICS if m in self.metrics]
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
                _, mean, _, low, high = _interval(self._values(m, v).to_numpy(), conf)
                row += [mean, low, high]
                if i > 0:
                    d = self.diff(m, v, confidence=conf)
                    row += [d["mean"], d["ci_low"], d["ci_high"]]
            rows.append(row)
        return pd.DataFrame(rows, index=pd.Index(metrics, name="metric"),
                            columns=pd.MultiIndex.from_tuples(columns, names=["variant", "statistic"]))

    # -- display ----------------------------------------------------------------------------
    def to_text(self, metrics: Iterable[str] | str | None = None) -> str:
        """The table as plain text: latencies in ms, recovery times in s, memory in MB, shares
        in %."""
        t = self.table(metrics)
        conf = f"{self.confidence:.0%}"
        header = ["figure"]
        for i, v in enumerate(self.variants):
            header.append(f"{v} (±{conf})")
            if i > 0:
                header.append(f"Δ vs {self.variants[0]} ({conf} CI)")
        body = []
        for m in t.index:
            cells = [column_header(m)]
            for i, v in enumerate(self.variants):
                mean, low, high = (t.loc[m, (v, s)] for s in STATS)
                cells.append(fmt_in_unit(m, mean, (high - low) / 2))
                if i > 0:
                    d, dl, dh = (t.loc[m, (v, s)] for s in DIFF_STATS)
                    cells.append(_difference(m, d, dl, dh))
            body.append(cells)
        widths = [max(len(r[k]) for r in [header, *body]) for k in range(len(header))]
        lines = []
        for r in [header, *body]:
            lines.append("  ".join([r[0].ljust(widths[0])]
                                   + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]))
        lines.append(f"{self.replications} replications per variant, common seeds from base seed "
                     f"{self.base_seed}; Δ is paired by seed")
        return "\n".join(lines)

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

        return (f"<p><b>{html.escape(' vs '.join(self.variants))}</b> — {self.replications} "
                f"replications, base seed {self.base_seed}</p>" + self.table().to_html(float_format="%.6g"))


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


def compare(
    variants: Mapping[str, Spec] | Sequence[Spec],
    replications: int = 10,
    seed: int | None = None,
    *,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    confidence: float = 0.95,
    progress: Progress = None,
) -> Comparison:
    """Run each variant ``replications`` times over the same seeds and compare them.

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
        True shows a bar (runs done); a callable gets ``(done, total)``.

    Raises
    ------
    ScenarioError
        A variant does not load (every problem, with its file and field path), or the
        arguments are wrong; nothing has run then.

    Examples
    --------
    >>> from simsys.compare import compare       # also simsys.compare
    >>> web = {"duration": "10s", "services": {"web": {"service_time": "5ms"}},
    ...        "workload": [{"type": "poisson", "rate": "10/s", "target": "web"}]}
    >>> c = compare({"one": web, "two": web}, replications=2)
    >>> float(c.table("latency.mean").loc["latency.mean", ("two", "diff")])
    0.0
    """
    named = _name_variants(variants)
    if len(named) < 1:
        raise ScenarioError([Problem("variants", "expected at least one variant to run")])
    if not isinstance(replications, int) or isinstance(replications, bool) or replications < 1:
        raise ScenarioError([Problem("replications", f"expected a whole number ≥ 1, got {replications!r}")])
    if not 0 < confidence < 1:
        raise ScenarioError([Problem("confidence", f"expected a number in (0, 1), got {confidence!r}")])
    if overrides is not None and not isinstance(overrides, Mapping):
        overrides = list(overrides)
    problems: list[Problem] = []
    scenarios: dict[str, Scenario] = {}
    for name, spec in named.items():  # every variant is checked before anything runs
        try:
            scenarios[name] = load(spec, overrides)
        except ScenarioError as exc:  # an override's problem is the same for every variant
            problems += [p for p in exc.problems if not (_from_override(p) and p in problems)]
    if problems:
        raise ScenarioError(problems)
    first = next(iter(scenarios.values()))
    base_seed = first.seed if seed is None else seed
    if not isinstance(base_seed, int) or isinstance(base_seed, bool) or base_seed < 0:
        raise ScenarioError([Problem("seed", f"expected a whole number ≥ 0, got {base_seed!r}")])
    total = replications * len(scenarios)
    bar = None
    tick: Callable[[int, int], None] | None = None
    if progress is True:
        from .progress import tqdm_class

        bar = tqdm_class()(total=total, unit="run", desc="compare", leave=False)

        def tick(done: int, total: int) -> None:
            bar.update(done - bar.n)
    elif callable(progress):
        tick = progress
    rows: list[dict[str, Any]] = []
    samples: dict[str, list[np.ndarray]] = {name: [] for name in scenarios}
    done = 0
    try:
        for r in range(replications):
            s = replication_seed(base_seed, r)
            for name, scenario in scenarios.items():
                started = time.perf_counter()
                result = run(scenario, seed=s)
                row: dict[str, Any] = {"variant": name, "replication": r, "seed": s}
                figs = figures(result)
                row["wall_time"] = time.perf_counter() - started
                row.update(figs)
                rows.append(row)
                samples[name].append(_ok_latencies(result, LATENCY_KEEP))
                done += 1
                if tick is not None:
                    tick(done, total)
    finally:
        if bar is not None:
            bar.close()
    runs = pd.DataFrame(rows)
    book = [c for c in BOOK if c in runs.columns]
    runs = runs[book + [c for c in runs.columns if c not in book]]
    runs["variant"] = pd.Categorical(runs["variant"], categories=list(scenarios))
    latencies = {k: np.concatenate(v) if v else np.empty(0) for k, v in samples.items()}
    return Comparison(runs, list(scenarios), latencies=latencies, scenarios=scenarios,
                      base_seed=base_seed, confidence=confidence)
