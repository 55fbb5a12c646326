"""``simsys sweep``: placeholder, replaced by the sweep work (issue 7). Imports only click at load."""

import click


@click.command()
def sweep() -> None:
    """Run a scenario over a grid of parameters (not yet available)."""
    raise click.ClickException("simsys sweep is not available yet")
