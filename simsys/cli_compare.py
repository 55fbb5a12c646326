"""``simsys compare``: scenarios side by side over common seeds. Imports only click at load.

The work is done by :func:`simsys.compare.compare`; this module turns options into its
arguments, prints the table on stdout (or JSON with ``--json``), writes ``--out`` and maps
errors to exit codes (0 ok; 2 bad input, each problem on stderr as
``file:line:col: field.path: message``; 1 internal error).
"""

from __future__ import annotations

import sys
from typing import Any

import click


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
              help="Write runs.parquet, comparison.json and the side-by-side figures here.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
def compare(scenarios: tuple[str, ...], replications: int, seed: int | None,
            metrics: tuple[str, ...], names: tuple[str, ...], overrides: tuple[str, ...],
            confidence: float, as_json: bool, out: str | None, progress: bool | None) -> None:
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
      simsys compare a.yaml b.yaml --out out/compare
    """
    from .errors import Problem, ScenarioError

    try:
        if names and len(names) != len(scenarios):
            raise ScenarioError([Problem("--name", f"expected one --name per scenario "
                                         f"({len(scenarios)}), got {len(names)}")])
        if len(set(names)) != len(names):
            raise ScenarioError([Problem("--name", "names must differ")])
        result = _run(scenarios, names, replications, seed, overrides, confidence, progress)
        chosen = list(metrics) or None
        if chosen:
            unknown = [m for m in chosen if m not in result.runs.columns]
            if unknown:
                raise ScenarioError([Problem("--metric", f"no figure {m!r}; figures are: "
                                             f"{', '.join(result.metrics)}") for m in unknown])
    except ScenarioError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(2)
    if as_json:
        import json

        click.echo(json.dumps(result.to_dict(chosen), indent=2, allow_nan=False))
    else:
        click.echo(result.to_text(chosen))
    if out is not None:
        from .errors import SimsysError

        try:
            written = _save(result, out, chosen)
        except SimsysError as exc:
            click.echo(f"simsys: error: {exc}", err=True)
            sys.exit(2)
        if not as_json:
            click.echo(f"wrote {written}", err=True)


def _run(scenarios: tuple[str, ...], names: tuple[str, ...], replications: int,
         seed: int | None, overrides: tuple[str, ...], confidence: float,
         progress: bool | None) -> Any:
    from .compare import compare as run_compare

    variants: Any = dict(zip(names, scenarios, strict=True)) if names else list(scenarios)
    show = sys.stderr.isatty() if progress is None else progress
    bar = None
    tick = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=replications * len(scenarios), unit="run", desc="compare",
                   file=sys.stderr, leave=False, dynamic_ncols=True)

        def tick(done: int, total: int) -> None:
            bar.update(done - bar.n)

    try:
        return run_compare(variants, replications, seed, overrides=list(overrides) or None,
                           confidence=confidence, progress=tick)
    finally:
        if bar is not None:
            bar.close()


def _save(result: Any, out: str, metrics: list[str] | None) -> str:
    """``runs.parquet``, ``comparison.json`` and ``comparison.png`` in ``out``."""
    import json
    from pathlib import Path

    from .errors import SimsysError

    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        runs = result.runs.copy()
        runs["variant"] = runs["variant"].astype(str)
        runs.to_parquet(path / "runs.parquet", index=False)
        (path / "comparison.json").write_text(
            json.dumps(result.to_dict(metrics), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = result.plot.dashboard()
        fig.savefig(path / "comparison.png")
        plt.close(fig)
    except OSError as exc:
        raise SimsysError(f"cannot write {out}: {exc.strerror or exc}") from None
    return str(path)


if __name__ == "__main__":  # python -m simsys.cli_compare
    compare(prog_name="simsys compare")
