"""``simsys compare``: scenarios side by side over common seeds. Imports only click at load.

The work is done by :func:`simsys.compare` (a sweep over a variant axis, so ``--jobs``,
``--scheduler``, ``--precision`` and a resumable ``--out`` work as in ``simsys sweep``); this
module turns options into its arguments and prints the table on stdout (or JSON with
``--json``). Errors become exit statuses in :mod:`simsys.cli` (0 ok; 2 bad input, each problem
on stderr as ``file:line:col: field.path: message``; 3 every run failed; 130 interrupted).
"""

from __future__ import annotations

from typing import Any

import click

from .cli_sweep import report_failures


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--replications", "-r", type=click.IntRange(min=1), default=10, show_default=True,
              help="Runs per scenario; replication r has the same seed in every scenario.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Base seed of the replication seeds (default: the first scenario's seed).")
@click.option("--metric", "-m", "metrics", multiple=True, metavar="FIGURE",
              help="A summary figure to show (repeatable), e.g. latency.p99, error_rate, cost, "
                   "services.shop.utilization. Default: latency, throughput, errors, "
                   "availability, memory, replicas, cost.")
@click.option("--name", "names", multiple=True, metavar="NAME",
              help="Names of the scenarios, in order (repeat once per scenario; default: file names).")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="Override a value in every scenario (repeatable): --set duration=2min.")
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.95, show_default=True, help="Of the confidence intervals.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON on stdout, and nothing else there.")
@click.option("--out", "-o", type=click.Path(file_okay=False), metavar="DIR",
              help="Save the runs here as they finish (rerun the same command to finish a "
                   "killed comparison), then comparison.json and comparison.png.")
@click.option("--jobs", "-j", type=int, help="Local worker processes (default: one per core; 1 = in this process).")
@click.option("--scheduler", metavar="ADDRESS", help="Dask scheduler address (tcp://host:8786) or scheduler file.")
@click.option("--precision", metavar="P",
              help="Add replications until the CI half-width of the first --metric is under P (5% or 0.05).")
@click.option("--max-replications", type=int, help="Cap per scenario with --precision (default max(10×R, 100)).")
@click.option("--run-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Wall-clock limit per run: a longer run is recorded as a 'timeout' row.")
@click.option("--retry-errors", is_flag=True, help="When resuming, run failed runs again.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
@click.option("--flush-every", type=float, default=2.0, hidden=True)
def compare(scenarios: tuple[str, ...], replications: int, seed: int | None,
            metrics: tuple[str, ...], names: tuple[str, ...], overrides: tuple[str, ...],
            confidence: float, as_json: bool, out: str | None, jobs: int | None,
            scheduler: str | None, precision: str | None, max_replications: int | None,
            run_timeout: float | None, retry_errors: bool, progress: bool | None,
            flush_every: float) -> None:
    """Run SCENARIOS side by side over the same seeds and compare them.

    Each scenario runs --replications times; replication r uses the same seed in every
    scenario (common random numbers), so differences are measured run by run. The table
    shows, per figure, each scenario's mean ± half-width of its confidence interval, and the
    difference from the first scenario with its interval (paired by seed): an interval that
    excludes 0 is a difference the runs can tell.

    \b
    Examples:
      simsys compare scenarios/shop-monolith.yaml scenarios/shop-microservices.yaml
      simsys compare a.yaml b.yaml -r 30 -m latency.p99 -m error_rate -m cost
      simsys compare mono.yaml micro.yaml --name monolith --name microservices --set duration=2min
      simsys compare a.yaml b.yaml --json | jq '.figures["latency.p99"]'
      simsys compare a.yaml b.yaml --out out/compare --jobs 2 && simsys report out/compare
      simsys compare a.yaml b.yaml -m latency.p99 --precision 2% --scheduler tcp://127.0.0.1:8786
    """
    from .cli_sweep import parse_precision
    from .comparing import compare as run_compare
    from .errors import Problem, ScenarioError

    if names and len(names) != len(scenarios):
        raise ScenarioError([Problem("--name", f"expected one --name per scenario "
                                     f"({len(scenarios)}), got {len(names)}")])
    if len(set(names)) != len(names):
        raise ScenarioError([Problem("--name", "names must differ")])
    variants: Any = dict(zip(names, scenarios, strict=True)) if names else list(scenarios)
    result = run_compare(
        variants, replications, seed, overrides=list(overrides) or None, confidence=confidence,
        progress=progress, jobs=jobs, scheduler=scheduler, out=out,
        precision=parse_precision(precision), metric=metrics[0] if precision and metrics else None,
        max_replications=max_replications, run_timeout=run_timeout, retry_errors=retry_errors,
        metrics=list(metrics) or None, flush_every=flush_every,
    )
    if as_json:
        import json

        click.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    elif len(result.runs) > len(result.failures):
        click.echo(result.to_text())
    report_failures(result)
