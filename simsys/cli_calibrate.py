"""``simsys calibrate``: a scenario inferred from OTLP/JSON or Jaeger JSON traces."""

from __future__ import annotations

import click


@click.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False, path_type=str),
              required=True, help="Write the scenario YAML here.")
@click.option("--allow-partial", is_flag=True,
              help="Leave out traces with spans whose parent is missing (counted and reported) "
                   "instead of failing.")
def calibrate(traces: str, out_path: str, allow_partial: bool) -> None:
    """Write a scenario inferred from traces (OTLP/JSON or Jaeger JSON).

    Services, replicas, workers, calls and their probabilities, each service's own work
    (empirical), link latencies and Poisson arrival rates per entry; comments in the YAML say
    what came from how many spans.

    \b
    Examples:
      simsys run scenarios/checkout.yaml --otlp traces.json
      simsys calibrate traces.json -o calibrated.yaml && simsys run calibrated.yaml
    """
    from .calibrate import calibrate as infer
    from .errors import SimsysError
    from .files import atomic_write

    text, counts = infer(traces, allow_partial=allow_partial)
    try:
        atomic_write(out_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    except OSError as exc:
        raise SimsysError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    click.echo(f"wrote {out_path}: {counts['traces']} traces, {counts['spans']} spans, "
               f"{counts['partial']} partial traces left out", err=True)
