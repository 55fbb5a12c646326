"""``simsys report DIR``: the HTML page of a run or sweep directory. Imports only click at load."""

import click

EXIT_BAD_INPUT = 2


@click.command()
@click.argument("directory", type=click.Path(path_type=str))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Write the page here instead of DIRECTORY/report.html.")
@click.pass_context
def report(ctx: click.Context, directory: str, output: str | None) -> None:
    """Write DIRECTORY/report.html from a run or sweep directory and print its path.

    A run directory is what `simsys run SCENARIO --out DIR` writes (summary.json,
    parquet tables, plots); a sweep directory is what `simsys sweep ... --out DIR` writes
    (sweep.json, runs/). The page is self-contained: plots are embedded, nothing is
    fetched from the network, so it can be mailed or archived as one file.

    \b
    Examples:
      simsys run scenarios/checkout.yaml --out out/checkout
      simsys report out/checkout
      simsys report out/sweep -o sweep.html

    Exit status 2 when DIRECTORY is neither a run nor a sweep directory.
    """
    import os

    os.environ.setdefault("MPLBACKEND", "Agg")
    from .errors import SimsysError
    from .report import build_report

    try:
        path = build_report(directory, output)
    except SimsysError as exc:  # not a run or sweep directory, unreadable files
        click.echo(f"simsys: error: {exc}", err=True)
        ctx.exit(EXIT_BAD_INPUT)
    click.echo(str(path))
