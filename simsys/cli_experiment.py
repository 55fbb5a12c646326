"""``simsys experiment``: a scenario's experiment in Chaos Toolkit's format. Imports only click
at load."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def experiment() -> None:
    """Chaos Toolkit experiments from scenarios ("chaos dry-run").

    \b
    Export a scenario's experiment, validate and run it with Chaos Toolkit itself:
      simsys experiment export scenarios/chaos-checkout.yaml -o exp.json
      chaos validate exp.json
      chaos run exp.json --journal-path journal.json   # runs against the simulation
      chaos report --export-format=markdown journal.json report.md
    """


@experiment.command("export")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=str))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Write the experiment here (JSON); default: stdout.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of the simulation chaos run will drive (default: the scenario's).")
def export_command(scenario: str, output: str | None, seed: int | None) -> None:
    """Write SCENARIO's experiment as a Chaos Toolkit experiment (JSON).

    Its activities call simsys.chaostoolkit and its configuration names SCENARIO (as given,
    relative to where chaos run is started), so `chaos run` simulates it: the steady state
    before the method, the faults at their simulated times (with `wait` between them), the
    steady state again at the end of the run.
    """
    import json

    from .chaostoolkit import export
    from .errors import ScenarioError
    from .files import atomic_write
    from .spec.load import load

    spec = load(scenario)
    if spec.experiment is None:
        raise ScenarioError(f"{scenario}: no experiment: to export (see scenarios/README.md)")
    data = export(spec.experiment, spec.max_duration, spec.seed if seed is None else seed,
                  scenario=scenario)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write(output, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        click.echo(f"wrote {output}", err=True)
