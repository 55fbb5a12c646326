"""``simsys report DIR``: the HTML page of a run, sweep or comparison directory. Imports only
click at load; errors become exit statuses in :mod:`simsys.cli`."""

import click


@click.command()
@click.argument("directory", type=click.Path(path_type=str))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Write the page here instead of DIRECTORY/report.html.")
def report(directory: str, output: str | None) -> None:
    """Write DIRECTORY/report.html from a run, sweep or comparison directory; print its path.

    A run directory is what `simsys run SCENARIO --out DIR` writes (summary.json,
    parquet tables, plots); a sweep directory is what `simsys sweep ... --out DIR` writes
    (sweep.json, runs/); a comparison directory is what `simsys compare ... --out DIR`
    writes (a sweep over the variants), shown side by side. The page is self-contained: plots are embedded, nothing is
    fetched from the network, so it can be mailed or archived as one file.

    \b
    Examples:
      simsys run scenarios/checkout.yaml --out out/checkout
      simsys report out/checkout
      simsys report out/sweep -o sweep.html
      simsys compare a.yaml b.yaml --out out/ab && simsys report out/ab

    Exit status 2 when DIRECTORY is none of these, or its files are damaged.
    """
    import os

    os.environ.setdefault("MPLBACKEND", "Agg")
    from .report import build_report

    click.echo(str(build_report(directory, output)))  # errors: exit statuses in simsys.cli
