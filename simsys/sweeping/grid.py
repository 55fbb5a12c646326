"""Grids: points from a product or a list, each checked like a scenario file before any run;
the scenario as plain data (what travels to workers).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Problem, ScenarioError
from ..spec.load import apply_overrides, read, validate
from ..spec.model import Scenario
from .worker import summary_figures

Grid = Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]] | None


def plain_data(value: Any, where: str) -> Any:
    """JSON-ready copy of a grid value (runs travel as plain data)."""
    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, tuple | set | frozenset | range | np.ndarray):
            return list(o)
        raise TypeError(type(o).__name__)

    try:
        return json.loads(json.dumps(value, default=default))
    except (TypeError, ValueError) as exc:
        raise ScenarioError([Problem(where, f"expected plain data (numbers, text, lists, mappings), got {exc}", "grid")]) from None


def grid_points(grid: Grid) -> tuple[list[str], list[dict[str, Any]]]:
    """Grid → (keys in order, list of points); shape problems raise ScenarioError."""
    if grid is None:
        return [], [{}]
    if isinstance(grid, Mapping):
        keys = [str(k) for k in grid]
        axes = []
        for key in grid:
            values = grid[key]
            if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
                raise ScenarioError([Problem(str(key), f"expected a list of values, got {values!r}", "grid")])
            values = list(values)
            if not values:
                raise ScenarioError([Problem(str(key), "expected at least one value, got an empty list", "grid")])
            axes.append([plain_data(v, str(key)) for v in values])
        points = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes)]
    elif isinstance(grid, Sequence) and not isinstance(grid, str | bytes):
        if not grid:
            raise ScenarioError([Problem("", "expected at least one grid point, got an empty list", "grid")])
        points, keys = [], []
        for i, point in enumerate(grid):
            if not isinstance(point, Mapping):
                raise ScenarioError([Problem(f"[{i}]", f"expected a mapping of key: value, got {point!r}", "grid")])
            points.append({str(k): plain_data(v, str(k)) for k, v in point.items()})
            keys.extend(str(k) for k in point if str(k) not in keys)
    else:
        raise ScenarioError([Problem("", f"expected a mapping of lists or a list of mappings, got {grid!r}", "grid")])
    for key in keys:
        parts = key.split(".")
        if not key or not all(parts):
            raise ScenarioError([Problem(key, "expected a dotted key path such as services.web.replicas", "grid")])
        if parts[0] == "seed" and len(parts) == 1:
            raise ScenarioError([Problem("seed", "set per replication by the sweep; give the base seed with seed= (--seed)", "grid")])
    seen: dict[str, int] = {}
    for i, point in enumerate(points):
        k = point_key(point)
        if k in seen:
            raise ScenarioError([Problem("", f"point {i} repeats point {seen[k]}: {point}", "grid")])
        seen[k] = i
    return keys, points


def point_key(point: Mapping[str, Any]) -> str:
    return json.dumps(point, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _describe_point(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in point.items()) or "base"


def check_points(base: dict[str, Any], scenario: Scenario, points: list[dict[str, Any]]) -> None:
    """Validate every point like a scenario file; raise one ScenarioError with every problem."""
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    names = list(scenario.services)
    for point in points:
        where = f"grid point {_describe_point(point)}"
        good = {}
        for key, value in point.items():
            parts = key.split(".")
            if parts[0] == "services" and len(parts) > 1 and parts[1] not in scenario.services:
                msg = (f"no service {parts[1]!r} in the scenario (services are: {', '.join(names)}); "
                       "a grid changes values, it does not add services")
                if (key, msg) not in seen:
                    seen.add((key, msg))
                    problems.append(Problem(key, msg, "grid"))
            else:
                good[key] = value
        try:
            validate(apply_overrides(base, good))
        except ScenarioError as exc:
            for p in exc.problems:
                if (p.path, p.message) in seen:
                    continue
                seen.add((p.path, p.message))
                problems.append(Problem(p.path, p.message, where))
    if problems:
        raise ScenarioError(problems)


def column_values(keys: list[str], points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per point, the values shown in the grid columns: scalars as they are, the rest as JSON."""
    shown = [dict.fromkeys(keys) for _ in points]
    for key in keys:
        values = [p.get(key) for p in points]
        present = [v for v in values if v is not None]
        kinds = {type(v) for v in present}
        plain = kinds <= {int, float} or len(kinds) == 1 and kinds <= {str, bool, int, float}
        for i, v in enumerate(values):
            shown[i][key] = v if plain or v is None else json.dumps(v, ensure_ascii=False)
    return shown


# -- spec as data -----------------------------------------------------------------------------
def scenario_data(spec: Any, overrides: Any = None) -> tuple[dict[str, Any], Scenario, str | None]:
    """The scenario as plain data with ``overrides`` applied (``key=value`` strings or a
    mapping, as ``simsys.run`` takes them), validated, and the file it came from (if any)."""
    import networkx as nx

    from ..spec.load import load

    if isinstance(spec, nx.DiGraph):
        raise TypeError("sweep() takes a scenario (file, dict or Scenario), not a graph")
    if overrides:
        overrides = overrides if isinstance(overrides, Mapping) else list(overrides)
        scenario = load(spec, overrides)  # problems named as --set and file positions say
        if isinstance(spec, str | Path):
            data, source = read(spec)[0], str(spec)
        elif isinstance(spec, Scenario):
            data, source = spec.model_dump(mode="json", by_alias=True), None
        else:
            data, source = plain_data(dict(spec), "scenario"), None
        return apply_overrides(data, overrides), scenario, source
    if isinstance(spec, Scenario):
        data = spec.model_dump(mode="json", by_alias=True)
        return data, validate(data), None
    if isinstance(spec, str | Path):
        data, positions, name = read(spec)
        return data, validate(data, name, positions), str(spec)
    if isinstance(spec, Mapping):
        data = plain_data(dict(spec), "scenario")
        return data, validate(data), None
    raise TypeError(f"sweep() takes a scenario file, dict or Scenario, got {type(spec).__name__}")


def check_metric_name(base: dict[str, Any], metric: str | Iterable[str],
                      extra: Iterable[str] = (), option: str = "metric") -> None:
    """Refuse a ``metric`` (or several) no run of this scenario reports, before any run starts:
    a one-second run without faults or experiment shows the summary's figures (a typo used to
    be reported only once every run had finished). ``extra`` names figures added to the rows
    (a comparison's ``availability``, ``cost``, …); ``option`` names the argument in the error."""
    wanted = [metric] if isinstance(metric, str) else list(metric)
    from ..runner import run

    probe = {k: v for k, v in base.items() if k not in ("experiment", "faults", "chaos")}
    probe.update(duration=1.0, warmup=0.0)
    try:
        figures = set(summary_figures(run(probe, seed=0).summary())) | set(extra)
    except Exception:  # a scenario that cannot run for a second: the runs will say why
        return
    from ..errors import did_you_mean

    problems = [Problem(option, f"{m!r} is not a figure of the run summary"
                        f"{did_you_mean(m, figures)}; e.g. latency.p99, throughput, error_rate, "
                        "services.<name>.utilization") for m in wanted if m not in figures]
    if problems:
        raise ScenarioError(problems)
