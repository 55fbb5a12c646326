"""``simsys report``: placeholder, replaced by the report work (issue 8). Imports only click at load."""

import click


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
def report(directory: str) -> None:
    """Write DIRECTORY/report.html from a run or sweep directory (not yet available)."""
    raise click.ClickException("simsys report is not available yet")
