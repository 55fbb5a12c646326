"""Run directories: what ``simsys run --out DIR`` writes and ``simsys report DIR`` reads.

A run directory holds::

    summary.json          Result.summary(), indent 2 (seconds, bytes)
    requests.parquet      Result.requests
    incidents.parquet     Result.incidents
    timeseries.parquet    Result.timeseries
    chaos.parquet         Result.chaos: Chaos Monkey's kills and skips, for runs with a monkey
    *.csv                 each of those tables as CSV too (missing values as empty cells)
    scenario.yaml         the scenario as resolved data (seconds, bytes), runnable as is
    journal.json          the Chaos Toolkit journal, for scenarios with an experiment
    *.png                 plots (latency_cdf, latency_over_time, error_rate_over_time,
                          throughput_over_time, memory, queues, topology; connections,
                          circuit_breakers, scaling, incident_timeline and mttr_hist when
                          the run has them)

Every file is written under a temporary name and renamed into place, so a reader never sees
half a file. :func:`load_run` reads a directory back into a :class:`SavedRun`, which the plot
functions and the report accept wherever they take a :class:`~simsys.Result`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from .files import atomic_write

__all__ = ["PLOTS", "SavedRun", "is_run_dir", "load_run", "save_run", "write_plots"]

TABLES = ("requests", "incidents", "timeseries")
OPTIONAL_TABLES = ("chaos",)  # written only when the run has rows for them
#: Plots written for every run, in the order the report shows them.
PLOTS = ("latency_cdf", "latency_over_time", "throughput_over_time", "error_rate_over_time",
         "memory", "queues", "topology")
#: Plots written only when the run has something to show in them.
OPTIONAL_PLOTS = ("connections", "circuit_breakers", "scaling", "incident_timeline", "mttr_hist")


def _json_ready(value: Any) -> Any:
    """NaN and ±inf become null; numpy scalars become Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data: Any) -> Path:
    text = json.dumps(_json_ready(data), indent=2, ensure_ascii=False, allow_nan=False,
                      default=str) + "\n"
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def _write_yaml(path: Path, data: Any) -> Path:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # keep the scenario's key order

    def write(p: Path) -> None:
        with p.open("w", encoding="utf-8") as fh:
            fh.write("# The scenario of this run, resolved: times in seconds, sizes in bytes.\n")
            yaml.dump(_json_ready(data), fh)

    return atomic_write(path, write)


def _scenario_data(result: Any) -> dict[str, Any] | None:
    G = getattr(result, "graph", None)
    spec = G.graph.get("scenario") if G is not None else None
    if spec is None:
        spec = getattr(result, "scenario", None)
    if spec is None:
        return None
    if hasattr(spec, "model_dump"):
        return spec.model_dump(mode="json", by_alias=True, exclude_none=False)
    return dict(spec) if isinstance(spec, Mapping) else None


# -- writing ----------------------------------------------------------------------------------
def save_run(result: Any, directory: str | Path, plots: bool = True, csv: bool = True) -> Path:
    """Write a run's summary, tables, scenario, journal and plots into ``directory``.

    Parameters
    ----------
    result
        A :class:`~simsys.Result`.
    directory
        Created if missing; files already there with the same names are replaced.
    plots
        Also draw the PNG plots (about a second); ``False`` writes only the data.
    csv
        Also write each table as CSV next to its parquet file (``requests.csv``, …).

    Returns
    -------
    pathlib.Path
        The directory.

    Examples
    --------
    >>> import simsys                                                   # doctest: +SKIP
    >>> r = simsys.run("scenarios/checkout.yaml")                       # doctest: +SKIP
    >>> save_run(r, "out/checkout")                                     # doctest: +SKIP
    PosixPath('out/checkout')
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", result.summary())
    for name in TABLES + OPTIONAL_TABLES:
        df = getattr(result, name, None)
        if df is None or (name in OPTIONAL_TABLES and not len(df)):
            continue
        atomic_write(out / f"{name}.parquet", lambda p, df=df: df.to_parquet(p, index=False))
        if csv:  # the same table for spreadsheets and tools without parquet (missing: empty)
            atomic_write(out / f"{name}.csv", lambda p, df=df: df.to_csv(p, index=False))
    scenario = _scenario_data(result)
    if scenario is not None:
        _write_yaml(out / "scenario.yaml", scenario)
    journal = getattr(result, "journal", None)
    if journal:
        write_json(out / "journal.json", journal)
    if plots:
        write_plots(result, out)
    return out


def plots_for(result: Any) -> list[str]:
    """The names of the plots :func:`save_run` draws for ``result``."""
    names = list(PLOTS)
    recorded = set(result.timeseries["metric"].unique())
    for metric, plot in (("connections", "connections"), ("breakers_open", "circuit_breakers"),
                         ("replicas", "scaling")):
        if metric in recorded:
            names.insert(names.index("topology"), plot)
    if len(result.incidents):
        names += ["incident_timeline", "mttr_hist"]
    return names


def write_plots(result: Any, directory: str | Path, names: list[str] | None = None,
                dpi: int = 150) -> list[Path]:
    """Draw each plot to ``directory/<name>.png`` without pyplot (safe in threads and workers)."""
    from .plot.style import detached

    out = Path(directory)
    written = []
    for name in names if names is not None else plots_for(result):
        png = render_png(result, name, dpi=dpi, detached=detached)
        written.append(atomic_write(out / f"{name}.png", lambda p, png=png: p.write_bytes(png)))
    return written


def render_png(result: Any, name: str, dpi: int = 150, detached: Any = None) -> bytes:
    """One plot of ``result`` as PNG bytes, drawn on a figure pyplot never sees."""
    import io

    from . import plot

    if detached is None:
        from .plot.style import detached
    with detached():
        draw = getattr(plot, name)
        drawn = draw(result)
        fig = drawn if hasattr(drawn, "savefig") else drawn.figure
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


# -- reading ------------------------------------------------------------------------------------
def is_run_dir(directory: str | Path) -> bool:
    return (Path(directory) / "summary.json").is_file()


class SavedRun:
    """A run read back from its directory; plots and the report take it like a Result.

    Attributes
    ----------
    directory : pathlib.Path
    requests, incidents, timeseries, chaos : pandas.DataFrame
        Empty frames when the parquet file is missing.
    scenario : dict or None
        ``scenario.yaml`` as data.
    journal : dict or None
        ``journal.json``.
    """

    def __init__(self, directory: Path, summary: dict[str, Any], tables: dict[str, pd.DataFrame],
                 scenario: dict[str, Any] | None, journal: Any):
        self.directory = directory
        self._summary = summary
        self.requests = tables["requests"]
        self.incidents = tables["incidents"]
        self.timeseries = tables["timeseries"]
        self.chaos = tables["chaos"]
        self.scenario = scenario
        self.journal = journal
        self.name: str = str(summary.get("name", directory.name))
        self.seed = summary.get("seed")
        self.duration = float(summary.get("duration") or (scenario or {}).get("duration") or 0.0)
        self.warmup = float(summary.get("warmup") or 0.0)
        self.warmup_auto = summary.get("warmup_auto")  # None unless warmup: auto
        self.wall_time = None

    def summary(self) -> dict[str, Any]:
        """``summary.json`` as a dict (a copy)."""
        return json.loads(json.dumps(self._summary))

    @cached_property
    def graph(self) -> Any:
        """The topology rebuilt from ``scenario.yaml``, or None when it cannot be."""
        if self.scenario is None:
            return None
        from .errors import SimsysError
        from .topology import build_graph

        try:
            return build_graph(self.scenario)
        except (SimsysError, ValueError, TypeError):
            return None

    @property
    def plot(self) -> Any:
        from .plot import ResultPlots

        return ResultPlots(self)

    def __repr__(self) -> str:
        return f"<SavedRun {self.name!r} from {self.directory}>"

    def _repr_html_(self) -> str:
        from .display import summary_html

        return summary_html(self)


_EMPTY = {
    "requests": ["id", "source", "start", "end", "latency", "status", "attempts", "instance"],
    "incidents": ["service", "instance", "kind", "cause", "failed_at", "detected_at",
                  "recovered_at", "requests_failed"],
    "timeseries": ["time", "service", "instance", "metric", "value"],
    "chaos": ["at", "group", "service", "instance", "outcome", "reason"],
}


def load_run(directory: str | Path) -> SavedRun:
    """Read a run directory written by :func:`save_run`.

    Raises
    ------
    simsys.errors.SimsysError
        When ``directory`` has no ``summary.json`` or it is not valid JSON.
    """
    from .errors import SimsysError

    out = Path(directory)
    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SimsysError(f"{out}: not a run directory (no summary.json)") from None
    except json.JSONDecodeError as exc:
        raise SimsysError(f"{out / 'summary.json'}: not valid JSON ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SimsysError(f"{out / 'summary.json'}: cannot read it ({exc})") from None
    if not isinstance(summary, dict):
        raise SimsysError(f"{out / 'summary.json'}: holds {type(summary).__name__}, expected "
                          "the JSON object simsys run --out writes")
    tables = {}
    for name in TABLES + OPTIONAL_TABLES:
        path = out / f"{name}.parquet"
        if path.is_file():
            try:
                tables[name] = pd.read_parquet(path)
            except Exception as exc:  # pyarrow: ArrowInvalid, OSError, … on a damaged file
                raise SimsysError(f"{path}: not a readable parquet table "
                                  f"({type(exc).__name__}: {str(exc)[:200]})") from None
        else:
            tables[name] = pd.DataFrame({c: pd.Series(dtype=float if c.endswith("_at") else object)
                                         for c in _EMPTY[name]})
    scenario = None
    for fname in ("scenario.yaml", "scenario.json"):
        path = out / fname
        if path.is_file():
            from .spec.load import read_text, read_yaml

            text = read_text(path, "the run's scenario")  # bounded: size, aliases, nesting
            if fname.endswith(".json"):
                scenario = json.loads(text)
            else:
                scenario, _ = read_yaml(text, str(path))
            break
    journal = None
    if (out / "journal.json").is_file():
        journal = json.loads((out / "journal.json").read_text(encoding="utf-8"))
    return SavedRun(out, summary, tables, scenario, journal)
