"""The runs of a sweep and their aggregation: :class:`Sweep` and reading a directory back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import Problem, ScenarioError
from ..formatting import column_header, fmt_in_unit
from ..stats import half_width, paired_difference
from .grid import column_values, point_key
from .seeds import replication_seed
from .store import meta_problem, read_parts

#: Columns every row has besides the grid values and the summary figures.
BOOK = ("point", "replication", "seed", "status", "error", "wall_time")
#: Figures shown by the command line and ``_repr_html_`` when no metric is named.
HEADLINE = ("requests.total", "throughput", "error_rate", "latency.mean", "latency.p99")


class Sweep:
    """The runs of a sweep and their aggregation.

    Attributes
    ----------
    runs : pandas.DataFrame
        One row per run, sorted by point and replication: ``point`` (index into
        :attr:`points`), one column per grid key (its value; lists and mappings as JSON text),
        ``replication``, ``seed``, ``status`` ('ok' or 'error'), ``error`` (the message, or
        None), ``wall_time`` (seconds), then every figure of ``Result.summary()`` flattened with
        dots (``latency.p99``, ``services.web.availability``; lists such as
        ``services.web.time_with_up`` as JSON text), then ``point_key``.
    points : list of dict
        The grid points, in order; ``grid_keys`` their keys.
    scenario : dict
        The base scenario as plain data; ``seed`` the base seed.
    directory : pathlib.Path or None
        Where the sweep was saved.
    """

    def __init__(self, runs: pd.DataFrame, meta: Mapping[str, Any], directory: Path | None = None):
        self.runs = runs
        self.meta = dict(meta)
        self.directory = directory
        self.points: list[dict[str, Any]] = list(meta["points"])
        self.grid_keys: list[str] = list(meta["grid_keys"])
        self.scenario: dict[str, Any] = meta["scenario"]
        self.seed: int = int(meta["seed"])
        self.replications: int = int(meta["replications"])

    # -- reading back -----------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str | Path) -> Sweep:
        """Read a sweep directory written with ``out=`` (finished or not)."""
        return load_sweep(directory)

    # -- figures ------------------------------------------------------------------------------
    @property
    def metrics(self) -> list[str]:
        """The numeric figures of the runs, in column order (what :meth:`table` aggregates)."""
        skip = {*BOOK, *self.grid_keys, "point_key"}
        return [c for c in self.runs.columns if c not in skip
                and pd.api.types.is_numeric_dtype(self.runs[c])
                and not pd.api.types.is_bool_dtype(self.runs[c])]

    @property
    def failures(self) -> pd.DataFrame:
        """The rows of runs that failed (``status == 'error'``)."""
        return self.runs[self.runs["status"] != "ok"]

    def table(
        self,
        metrics: Iterable[str] | str | None = None,
        *,
        wide: bool = False,
        confidence: float = 0.95,
    ) -> pd.DataFrame:
        """Mean, standard deviation, n and a t confidence interval per grid point and figure.

        Only runs with status 'ok' count; a figure that is missing (None) in a run is left out
        of that figure's n.

        Parameters
        ----------
        metrics
            Figures to aggregate (default: every numeric figure, :attr:`metrics`).
        wide
            False (default): long/tidy, one row per point and figure, columns ``point``, the
            grid keys, ``metric``, ``n``, ``mean``, ``std``, ``half_width``, ``ci_low``,
            ``ci_high``. True: one row per point (indexed by the grid keys, or ``point`` when
            there is no grid) and MultiIndex columns ``(metric, statistic)``.
        confidence
            Of the two-sided Student t interval ``mean ± t·std/√n``.
        """
        if isinstance(metrics, str):
            metrics = [metrics]
        metrics = list(self.metrics if metrics is None else metrics)
        missing = [m for m in metrics if m not in self.runs.columns]
        if missing:
            raise KeyError(f"no figure {missing[0]!r} in the runs; figures are: {', '.join(self.metrics)}")
        ok = self.runs[self.runs["status"] == "ok"]
        values = ok[["point", *metrics]].copy()
        for m in metrics:
            values[m] = pd.to_numeric(values[m], errors="coerce").astype(float)
        grouped = values.groupby("point", sort=True)[metrics]
        index = pd.RangeIndex(len(self.points), name="point")
        n = grouped.count().reindex(index, fill_value=0)
        mean = grouped.mean().reindex(index)
        std = grouped.std(ddof=1).reindex(index)
        half = pd.DataFrame(half_width(std.to_numpy(), n.to_numpy(), confidence),
                            index=index, columns=metrics)
        stats = {"n": n, "mean": mean, "std": std, "half_width": half,
                 "ci_low": mean - half, "ci_high": mean + half}
        shown = column_values(self.grid_keys, self.points)
        long = pd.concat(
            {name: frame.rename_axis(columns="metric").stack(future_stack=True) for name, frame in stats.items()},
            axis=1,
        ).reset_index()
        long["n"] = long["n"].astype(int)
        order = {m: i for i, m in enumerate(metrics)}
        long = long.sort_values(["point", "metric"], key=lambda s: s.map(order) if s.name == "metric" else s,
                                kind="stable", ignore_index=True)
        for key in reversed(self.grid_keys):
            long.insert(1, key, _grid_column([shown[p][key] for p in long["point"]], long.index))
        if not wide:
            return long
        index_cols = self.grid_keys or ["point"]
        out = long.pivot(index=["point", *self.grid_keys], columns="metric",
                         values=["n", "mean", "std", "half_width", "ci_low", "ci_high"])
        out = out.swaplevel(0, 1, axis=1)
        out = out.reindex(columns=pd.MultiIndex.from_product(
            [metrics, ["n", "mean", "std", "half_width", "ci_low", "ci_high"]], names=["metric", "statistic"]))
        out = out.reset_index().set_index(index_cols)
        if "point" not in index_cols:
            out = out.drop(columns="point", level=0)
        return out

    def diff(
        self,
        metric: str,
        a: int | Mapping[str, Any],
        b: int | Mapping[str, Any],
        confidence: float = 0.95,
    ) -> dict[str, float]:
        """Mean of ``metric`` at point ``b`` minus point ``a``, paired by replication, with its CI.

        Replications share their random streams across points, so pairing removes the common
        noise. ``a`` and ``b`` are point indices or mappings of grid values.
        """
        ok = self.runs[self.runs["status"] == "ok"]

        def values(which: int | Mapping[str, Any]) -> dict[int, Any]:
            rows = ok[ok["point"] == self._point(which)]
            return dict(zip(rows["replication"], pd.to_numeric(rows[metric], errors="coerce"),
                            strict=True))

        i = paired_difference(values(a), values(b), confidence)
        return {"n": i.n, "mean": i.mean, "std": i.std, "half_width": i.half_width,
                "ci_low": i.low, "ci_high": i.high}

    def _point(self, which: int | Mapping[str, Any]) -> int:
        if isinstance(which, Mapping):
            matches = [i for i, p in enumerate(self.points) if all(p.get(k) == v for k, v in which.items())]
            if len(matches) != 1:
                raise KeyError(f"{dict(which)} matches {len(matches)} grid points, expected one")
            return matches[0]
        if not 0 <= int(which) < len(self.points):
            raise IndexError(f"no grid point {which}; there are {len(self.points)}")
        return int(which)

    def overview(self, metrics: Iterable[str] | None = None, confidence: float = 0.95) -> pd.DataFrame:
        """One row per point, one text column per figure: ``mean ± half-width``, plus run counts.

        What the command line prints; ``metrics`` defaults to the headline figures
        (:data:`HEADLINE` and each service's availability).
        """
        metrics = list(metrics) if metrics is not None else self.headline()
        long = self.table(metrics, confidence=confidence)
        cells = [fmt_in_unit(k, m, h) for k, m, h in
                 zip(long["metric"], long["mean"], long["half_width"], strict=True)]
        long = long.assign(cell=cells)
        out = long.pivot(index="point", columns="metric", values="cell")[metrics]
        out.columns = [column_header(m).replace(m, _short_key(m), 1) for m in metrics]
        counts = self.runs.groupby("point")["status"].agg(
            runs="size", failed=lambda s: int((s != "ok").sum()))
        out = out.join(counts.reindex(out.index, fill_value=0))
        shown = column_values(self.grid_keys, self.points)
        for key in reversed(self.grid_keys):
            out.insert(0, _short_key(key),
                       _grid_column([shown[p][key] for p in out.index], out.index))
        out.columns.name = None
        return out

    def headline(self) -> list[str]:
        """Headline figures present in the runs: throughput, errors, latency, availability."""
        cols = self.metrics
        extra = [c for c in cols if c.startswith("services.") and c.endswith(".availability")]
        return [c for c in HEADLINE if c in cols] + extra

    # -- display ------------------------------------------------------------------------------
    @cached_property
    def plot(self) -> Any:
        """Plots of the sweep (:class:`simsys.plot.SweepPlots`): ``sw.plot.metric("latency.p99")``."""
        from ..plot.sweep_plots import SweepPlots

        return SweepPlots(self)

    def __len__(self) -> int:
        return len(self.runs)

    def __repr__(self) -> str:
        failed = int((self.runs["status"] != "ok").sum()) if len(self.runs) else 0
        where = f" in {self.directory}" if self.directory else ""
        name = self.scenario.get("name", "scenario")
        return (f"<Sweep {name!r} {len(self.points)} point(s), {len(self.runs)} runs "
                f"({failed} failed), base seed {self.seed}{where}>")

    def _repr_html_(self) -> str:
        from ..display import sweep_html  # the notebook view shared with reports

        return sweep_html(self)



def _grid_column(values: list[Any], index: pd.Index) -> pd.Series:
    """A grid key's values as a column; where some points lack the key, None stays None."""
    missing = any(v is None for v in values)
    return pd.Series(values, index=index, dtype=object if missing else None)


def _short_key(key: str, width: int = 18) -> str:
    """A grid key short enough for a table column: ``services.catalog.replicas`` →
    ``catalog.replicas`` (its last parts, as many as fit)."""
    parts = key.split(".")
    short = parts[-1]
    for part in reversed(parts[:-1]):
        if len(part) + 1 + len(short) > width:
            break
        short = f"{part}.{short}"
    return short


def finish_frame(rows: Iterable[dict[str, Any]], keys: list[str], points: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows → the ``Sweep.runs`` frame: ordered columns, sorted by point and replication."""
    index = {point_key(p): i for i, p in enumerate(points)}
    shown = column_values(keys, points)
    rows = list(rows)
    df = pd.DataFrame.from_records(rows) if rows else pd.DataFrame(columns=["point_key", "replication"])
    for col in (*BOOK, "point_key"):
        if col not in df:
            df[col] = pd.Series([None] * len(df), dtype=object)
    df["point"] = df["point_key"].map(index).astype("int64")
    for key in keys:
        df[key] = _grid_column([shown[p][key] for p in df["point"]], df.index)
    figures = [c for c in df.columns if c not in (*BOOK, *keys, "point_key")]
    for col in figures:  # a figure None in every row is still a number column (all NaN)
        if df[col].dtype == object and df[col].isna().all():
            df[col] = df[col].astype(float)
    df["replication"] = df["replication"].astype("int64")
    df["seed"] = df["seed"].astype("int64")
    df["error"] = df["error"].astype(object).where(df["error"].notna(), None)
    df = df[["point", *keys, "replication", "seed", "status", "error", "wall_time", *figures, "point_key"]]
    return df.sort_values(["point", "replication"], kind="stable", ignore_index=True)



def load_sweep(directory: str | Path) -> Sweep:
    """Read a sweep directory back: its ``sweep.json`` and every row in ``runs/``.

    Only runs of the recorded grid are kept, up to the replication count recorded per point
    (when the sweep finished) or every replication found (when it was interrupted).
    """
    out = Path(directory)
    try:
        meta = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError([Problem("", "not a sweep directory (no sweep.json)", str(out))]) from None
    except json.JSONDecodeError as exc:
        raise ScenarioError([Problem("", f"sweep.json is not valid JSON: {exc}", str(out))]) from None
    problem = meta_problem(meta)
    if problem:
        raise ScenarioError([Problem("", f"sweep.json {problem}; not a sweep directory "
                                         "written by simsys sweep", str(out))])
    df = read_parts(out / "runs")
    keys, points = meta["grid_keys"], meta["points"]
    index = {point_key(p): i for i, p in enumerate(points)}
    counts = meta.get("replications_per_point")
    keep = df["point_key"].isin(index)
    if counts is not None and len(df):
        limit = df["point_key"].map(lambda k: counts[index[k]] if k in index else -1)
        keep &= df["replication"] < limit
    if len(df):
        expected = [replication_seed(meta["seed"], r) for r in df["replication"]]
        keep &= df["seed"].astype("int64").to_numpy() == np.array(expected, dtype=np.int64)
    rows = df[keep].to_dict("records")
    for row in rows:
        for k, v in list(row.items()):
            if isinstance(v, float) and math.isnan(v):
                row[k] = None
    return Sweep(finish_frame(rows, keys, points), meta, out)
