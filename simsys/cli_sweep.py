"""``simsys sweep``: a scenario over a grid of parameters. Imports only click at load.

The work is done by :func:`simsys.sweep`; this module turns options into its arguments and
prints the aggregated table on stdout. Errors become exit statuses in :mod:`simsys.cli` (0 ok,
also when some runs failed; 2 bad input; 3 every run failed; 130 interrupted, the finished runs
saved in --out).
"""

from __future__ import annotations

from typing import Any

import click


def _grid_values(text: str) -> tuple[str, list[Any]]:
    """``key=v1,v2`` or ``key=[v1, {a: 1}]`` → (key, YAML-typed values)."""
    from .errors import ScenarioError
    from .spec.load import read_yaml

    if "=" not in text:
        raise ScenarioError(f"--grid {text!r}: expected key.path=value1,value2,...")
    key, raw = (part.strip() for part in text.split("=", 1))
    if not key:
        raise ScenarioError(f"--grid {text!r}: empty key")
    if not raw:
        raise ScenarioError(f"--grid {key}: expected at least one value")
    flow = raw if raw.startswith("[") else f"[{raw}]"
    data, _ = read_yaml(f"v: {flow}", f"--grid {key}")
    values = data["v"]
    if not isinstance(values, list) or not values:
        raise ScenarioError(f"--grid {key}: expected a list of values, got {raw!r}")
    return key, values


def parse_precision(text: str | None) -> float | None:
    from .errors import ScenarioError

    if text is None:
        return None
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ScenarioError(f"--precision: expected a fraction such as 5% or 0.05, got {text!r}") from None
    if not 0 < value < 1:
        raise ScenarioError(f"--precision: expected between 0% and 100%, got {text!r}")
    return value


def _points_file(path: str) -> list[dict[str, Any]]:
    from .errors import ScenarioError
    from .spec.load import read_yaml

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ScenarioError(f"--points {path}: {exc.strerror or exc}") from None
    data, _ = read_yaml(f"points:\n{_indent(text)}", path)
    points = data["points"]
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise ScenarioError(f"--points {path}: expected a YAML list of mappings (key.path: value)")
    return points


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--grid", "-g", "grids", multiple=True, metavar="KEY=V1,V2,...",
              help="A grid axis: dotted scenario key and its values (repeat for a product). "
                   "Values are YAML: 3, 5min, [{dist: constant, value: 1ms}, ...].")
@click.option("--points", "points_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="YAML list of grid points ({key.path: value, ...}) instead of --grid.")
@click.option("--replications", "-r", type=int, default=30, show_default=True,
              help="Runs per grid point (with --precision: the first round).")
@click.option("--jobs", "-j", type=int, help="Local worker processes (default: one per core; 1 = in this process).")
@click.option("--scheduler", metavar="ADDRESS", help="Dask scheduler address (tcp://host:8786) or scheduler file.")
@click.option("--precision", metavar="P", help="Add replications until the CI half-width of --metric is under P (5% or 0.05).")
@click.option("--metric", "-m", help="Summary figure for --precision, shown first in the table (e.g. latency.p99).")
@click.option("--max-replications", type=int, help="Cap per point with --precision (default max(10×R, 100)).")
@click.option("--batch", type=int, help="Replications added per round with --precision (default min(R, 10)).")
@click.option("--seed", type=int, help="Base seed of the replication seeds (default: the scenario's seed).")
@click.option("--out", "-o", type=click.Path(file_okay=False), metavar="DIR",
              help="Save runs here as they finish (resumable: rerun to finish).")
@click.option("--retry-errors", is_flag=True, help="When resuming, run failed runs again.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: when a terminal).")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="Override one scenario value for every run (repeatable), checked like the "
                   "file: --set duration=5min.")
@click.option("--run-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Wall-clock limit per run: a longer run is stopped and recorded as a "
                   "'timeout' row, so one run cannot stall the sweep (default: none).")
@click.option("--flush-every", type=float, default=2.0, hidden=True)
def sweep(
    scenario: str,
    grids: tuple[str, ...],
    points_file: str | None,
    replications: int,
    jobs: int | None,
    scheduler: str | None,
    precision: str | None,
    metric: str | None,
    max_replications: int | None,
    batch: int | None,
    seed: int | None,
    out: str | None,
    retry_errors: bool,
    progress: bool | None,
    overrides: tuple[str, ...],
    run_timeout: float | None,
    flush_every: float,
) -> None:
    """Run SCENARIO at every point of a grid, several replications each, and aggregate.

    \b
    simsys sweep checkout.yaml --grid services.catalog.replicas=1,2,3 \\
        --grid chaos.monkey.mean_time_between_failures=5min,10min \\
        --replications 30 --jobs 4 --out out/replicas
    """
    from .errors import ScenarioError
    from .sweeping import sweep as run_sweep

    grid: Any = None
    if points_file and grids:
        raise ScenarioError("give --grid or --points, not both")
    if points_file:
        grid = _points_file(points_file)
    elif grids:
        grid = {}
        for text in grids:
            key, values = _grid_values(text)
            if key in grid:
                raise ScenarioError(f"--grid {key}: given twice; list all its values in one --grid")
            grid[key] = values
    result = run_sweep(
        scenario, grid, replications, jobs=jobs, scheduler=scheduler, out=out, seed=seed,
        precision=parse_precision(precision), metric=metric, max_replications=max_replications,
        batch=batch, retry_errors=retry_errors, progress=progress, flush_every=flush_every,
        run_timeout=run_timeout, overrides=overrides,
    )
    _print(result, metric)


def _print(result: Any, metric: str | None) -> None:
    import pandas as pd

    metrics = result.headline()
    if metric and metric in result.metrics:
        metrics = [metric, *[m for m in metrics if m != metric]]
    if len(result.runs) > len(result.failures):  # a table of no ok run is an empty frame
        table = result.overview(metrics)
        with pd.option_context("display.width", 100, "display.max_columns", None,
                               "display.max_colwidth", 40):
            click.echo(table.to_string(line_width=100))
    report_failures(result)


def report_failures(result: Any) -> None:
    """On stderr: how many runs, how many failed and their commonest reasons (sweeps and
    comparisons); every run failed is a negative verdict (exit status 3)."""
    failed = result.failures
    total = len(result.runs)
    where = f"; saved in {result.directory}" if getattr(result, "directory", None) else ""
    click.echo(f"{total} runs, {total - len(failed)} ok, {len(failed)} failed{where}", err=True)
    if len(failed):
        if len(failed) == total:
            click.echo("every run failed; the most common reasons:", err=True)
        for message, count in failed["error"].value_counts().head(3).items():
            click.echo(f"  {count} × {message}", err=True)
    if total and len(failed) == total:
        from .errors import VerdictError

        raise VerdictError(f"every one of the {total} runs failed (see above)")
