"""The ``simsys`` command line: ``run``, ``validate``, ``sweep``, ``report`` and ``compare``.

Only click and the standard library are imported at module level. pandas, numpy, simpy,
pydantic and matplotlib are imported inside the commands that need them, so ``simsys --help``
answers at once. ``sweep``, ``report`` and ``compare`` live in their own modules, imported only
when one of them is invoked.

Exit status: 0 ok, 2 bad input (every problem printed on stderr, no traceback), 3 the run worked
and its verdict is negative (a deviated experiment with ``--fail-on-deviation``, a sweep whose
every run failed), 130 interrupted (Ctrl-C or SIGTERM; a sweep's finished runs are saved),
1 internal error (a short message; ``SIMSYS_DEBUG=1`` adds the traceback). :class:`SimsysGroup`
is the one place exceptions become exit statuses; the commands parse, call and print.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

from .formatting import fmt_bytes, fmt_duration, fmt_ms, fmt_number, fmt_pct, fmt_rate

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_VERDICT = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
DEBUG_ENV = "SIMSYS_DEBUG"
PROGRESS_DELAY = 2.0  # wall seconds before a progress bar appears; short runs stay quiet

# Subcommands defined elsewhere: name -> (module, attribute, one-line help shown by --help).
# The help line lives here so that listing commands imports nothing.
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "sweep": (
        "simsys.cli_sweep",
        "sweep",
        "Run a scenario over a grid of parameters and seeds.",
    ),
    "report": (
        "simsys.cli_report",
        "report",
        "Figures and an HTML page from a run, sweep or comparison directory.",
    ),
    "compare": (
        "simsys.cli_compare",
        "compare",
        "Run scenarios side by side over the same seeds and compare them.",
    ),
    "calibrate": ("simsys.cli_calibrate", "calibrate", "Write a scenario inferred from traces."),
    "experiment": (
        "simsys.cli_experiment",
        "experiment",
        "Export a scenario's experiment for Chaos Toolkit (chaos validate / run / report).",
    ),
}

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _fail(exc: BaseException) -> int:
    """Print ``exc`` the way the contract says and return the exit status."""
    from .errors import ScenarioError, SimsysError, VerdictError

    if isinstance(exc, VerdictError):
        click.echo(f"simsys: {exc}", err=True)
        return EXIT_VERDICT
    if isinstance(exc, ScenarioError):
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        return EXIT_BAD_INPUT
    if isinstance(exc, SimsysError):
        click.echo(f"simsys: error: {exc}", err=True)
        return EXIT_BAD_INPUT
    if _debug():
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    click.echo(
        f"simsys: internal error: {type(exc).__name__}"
        + (f": {message}" if message else "")
        + ("" if _debug() else f" (set {DEBUG_ENV}=1 to see the traceback)"),
        err=True,
    )
    return EXIT_INTERNAL


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a job scheduler, ``kill``) ends a command the way Ctrl-C does: sweeps and
    comparisons save their finished runs and stop their workers."""
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous: Any = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (a test runner's thread)
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class SimsysGroup(click.Group):
    """A group that loads some subcommands lazily and turns exceptions into exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None or name not in LAZY_COMMANDS:
            return cmd
        import importlib

        module, attr, _ = LAZY_COMMANDS[name]
        cmd = getattr(importlib.import_module(module), attr)
        self.add_command(cmd, name)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Like click's, but lazy commands show their line from LAZY_COMMANDS, unimported.
        rows = []
        for name in self.list_commands(ctx):
            cmd = super().get_command(ctx, name)
            if cmd is not None:
                if cmd.hidden:
                    continue
                rows.append((name, cmd.get_short_help_str(formatter.width - 6 - len(name))))
            else:
                rows.append((name, LAZY_COMMANDS[name][2]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with _terminate_as_interrupt():
                return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt as exc:  # the library has saved what it could and says where
            click.echo("\ninterrupted", err=True)
            for note in getattr(exc, "__notes__", ()):
                click.echo(f"simsys: {note}", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:  # noqa: BLE001 - the one place every error becomes an exit code
            ctx.exit(_fail(exc))


@click.group(cls=SimsysGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="simsys", prog_name="simsys")
def cli() -> None:
    """Simulate distributed systems: services, links, workloads, failures.

    A scenario is a YAML file describing services (replicas, workers, queues, service
    times), the network links between them and the workload that drives them. simsys runs
    it as a discrete-event simulation and reports latency, errors, utilisation and memory.

    \b
    Examples:
      simsys validate scenarios/checkout.yaml
      simsys run scenarios/checkout.yaml
      simsys run scenarios/checkout.yaml --seed 3 --set services.gateway.replicas=4
      simsys run scenarios/checkout.yaml --json > summary.json
      simsys run scenarios/checkout.yaml --out out/checkout && simsys report out/checkout
      simsys compare scenarios/shop-monolith.yaml scenarios/shop-microservices.yaml

    \b
    Exit status: 0 ok, 2 bad input (problems on stderr as file:line:col: field: message),
    1 internal error (SIMSYS_DEBUG=1 shows the traceback).
    """


_set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override one scenario value (repeatable), checked like the file: "
    "--set services.gateway.workers=16 --set duration=5min.",
)


def _load(path: str, overrides: tuple[str, ...]) -> Any:
    from .spec.load import load

    return load(path, overrides=list(overrides))


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=True, path_type=str))
@_set_option
def validate(scenario: str, overrides: tuple[str, ...]) -> None:
    """Check a scenario file; report every problem with its field path.

    Nothing is simulated. Problems are printed on stderr, one per line, as
    file:line:col: field.path: message, and the exit status is 2.

    \b
    Examples:
      simsys validate scenarios/checkout.yaml
      simsys validate scenarios/checkout.yaml --set services.gateway.workers=0
    """
    from .topology import build_graph, check

    spec = _load(scenario, overrides)
    check(build_graph(spec))
    click.echo(
        f"{scenario}: ok — {spec.name!r}, {len(spec.services)} service(s), "
        f"{len(spec.workload)} workload(s), {fmt_duration(spec.max_duration)} simulated"
    )


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=True, path_type=str))
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Random seed (default: the scenario's seed). Same seed, same results.")
@_set_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Write summary.json, requests/incidents/timeseries.parquet and plots here.")
@click.option("--json", "as_json", is_flag=True,
              help="Print summary() as JSON on stdout, and nothing else there.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no notes on stderr.")
@click.option("--fail-on-deviation", is_flag=True,
              help="Exit 3 when the scenario's experiment deviates from its steady state "
                   "(as `chaos run` does), so an experiment can gate a pipeline.")
@click.option("--max-events", type=click.FloatRange(min=1), default=None, metavar="N",
              help="Work budget: refuse a run estimated to take more simulated events "
                   "(default 2e9, about an hour on a 2-core laptop; 'inf' for no limit).")
@click.option("--otlp", "otlp_path", type=click.Path(dir_okay=False, path_type=str),
              default=None, help="Write the requests as OpenTelemetry spans (OTLP/JSON) here; "
                                 "turns tracing on.")
@click.option("--otlp-sample", default="100%", show_default=True, metavar="FRACTION",
              help="Fraction of whole traces kept in --otlp, e.g. 1% (decided per request).")
def run(scenario: str, seed: int | None, overrides: tuple[str, ...], out_dir: str | None,
        as_json: bool, quiet: bool, fail_on_deviation: bool, max_events: float | None,
        otlp_path: str | None = None, otlp_sample: str = "100%") -> None:
    """Run one scenario and print its summary.

    The summary covers requests after the warmup: counts by status, latency percentiles
    (ms), throughput (req/s), error rate, incidents and, per service, availability,
    utilisation and peak memory (MB). A progress bar in simulated time appears on stderr
    when a run takes more than a couple of seconds (not with --quiet, not when stderr
    is redirected).

    \b
    Examples:
      simsys run scenarios/checkout.yaml
      simsys run scenarios/checkout.yaml --seed 3
      simsys run scenarios/checkout.yaml --set duration=1min --set services.cart.replicas=3
      simsys run scenarios/checkout.yaml --json | jq .latency.p99
      simsys run scenarios/checkout.yaml --out out/checkout
      simsys run scenarios/chaos-checkout.yaml --fail-on-deviation
      simsys run scenarios/checkout.yaml --otlp out/traces.json --otlp-sample 1%

    With an `experiment:` block the steady-state verdict is printed (on stderr with --json)
    and the Chaos Toolkit journal is written as journal.json with --out.
    """
    if otlp_path is not None:
        from .otlp import parse_sample

        parse_sample(otlp_sample)  # a bad fraction fails before the run, not after it
        overrides = (*overrides, "trace=true")
    spec = _load(scenario, overrides)
    from dataclasses import replace

    from .errors import ScenarioError
    from .runner import run as simulate

    progress: Callable[[float], None] | None = None
    bar = None
    if not quiet and sys.stderr.isatty():
        from .progress import SimTimeBar

        bar = progress = SimTimeBar(spec.max_duration, spec.name, delay=PROGRESS_DELAY)
    try:
        result = simulate(spec, seed=seed, progress=progress, max_events=max_events)
    except ScenarioError as exc:  # found while running (a loop that cannot advance): name the file
        raise ScenarioError([p if p.source else replace(p, source=scenario)
                             for p in exc.problems]) from None
    finally:
        if bar is not None:
            bar.close()
    summary = result.summary()
    if as_json:
        import json

        click.echo(json.dumps(_json_ready(summary), indent=2, allow_nan=False))
    else:
        click.echo(format_summary(summary, wall_time=getattr(result, "wall_time", None)))
    if out_dir is not None:
        from .output import save_run

        try:
            written = save_run(result, out_dir)
        except OSError as exc:
            from .errors import SimsysError

            raise SimsysError(f"cannot write {out_dir}: {exc.strerror or exc}") from None
        if not quiet:
            click.echo(f"wrote {written or out_dir}", err=True)
    if otlp_path is not None:
        try:
            counts = result.to_otlp(otlp_path, sample=otlp_sample)
        except OSError as exc:
            from .errors import SimsysError

            raise SimsysError(f"cannot write {otlp_path}: {exc.strerror or exc}") from None
        if not quiet:
            click.echo(f"wrote {otlp_path}: {counts['traces']} traces, {counts['spans']} spans",
                       err=True)
    journal = result.journal
    if journal is not None:
        from .experiment import negative, verdict

        click.echo(verdict(journal), err=as_json)
        if fail_on_deviation and negative(journal):
            from .errors import VerdictError

            raise VerdictError(f"the experiment's steady state did not hold ({journal['status']})")


def _json_ready(value: Any) -> Any:
    """Non-finite floats become null, so stdout is strict JSON (``jq`` refuses NaN)."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return _json_ready(value.item())
    return value


# -- the readable summary -------------------------------------------------------------------
def _in_ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _in_mb(num_bytes: float | None) -> float | None:
    return None if num_bytes is None else num_bytes / 1e6


def _table(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = []
    for row in [header, *rows]:
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(c).rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append(indent + "  ".join(cells).rstrip())
    return lines


def format_summary(s: dict[str, Any], wall_time: float | None = None) -> str:
    """The summary as a plain-text table: ms for latency, MB (10⁶ bytes) for memory; the notes
    of :func:`simsys.run_analysis.describe` (intervals, warm-up, recovery defaults) under it."""
    duration, warmup = s.get("duration", 0.0), s.get("warmup", 0.0)
    head = f"{s.get('name', 'scenario')}  seed {s.get('seed')}  {fmt_duration(duration)} simulated"
    if warmup:
        head += f", first {fmt_duration(warmup)} left out (warmup{', auto' if s.get('warmup_auto') else ''})"
    if wall_time:
        head += f"  [{wall_time:.2f} s wall]"
    req = s["requests"]
    statuses = [k for k in req if k != "total"]
    lines = [head, "", "requests"]
    lines += _table(["total", *statuses], [[str(req["total"]), *(str(req[k]) for k in statuses)]])
    lines += [
        "",
        f"throughput  {fmt_rate(s['throughput'])}    error rate  {fmt_pct(s['error_rate'])}",
        "",
        "latency of ok requests (ms)",
    ]
    lat = s["latency"]
    keys = [k for k in ("mean", "p50", "p90", "p95", "p99", "p999", "max") if k in lat]
    lines += _table(keys, [[fmt_number(_in_ms(lat[k])) for k in keys]])
    from .run_analysis import describe  # intervals, warm-up, stop rule, Little's law

    lines += ["", *describe(s)] if describe(s) else []
    inc = s["incidents"]
    lines += [
        "",
        f"incidents   {inc['count']}    MTTR {fmt_duration(inc['mttr'])}    MTTD {fmt_duration(inc['mttd'])}"
        f"    MTBF {fmt_duration(inc['mtbf'])}",
    ]
    services = s.get("services", {})
    if services:
        rows = [
            [name, fmt_pct(v.get("availability")), fmt_pct(v.get("utilization")),
             fmt_number(_in_mb(v.get("memory_peak")))]
            for name, v in services.items()
        ]
        lines += ["", *_table(["service", "availability", "utilization", "memory peak (MB)"],
                              rows, indent="")]
    ws = s.get("websockets") or {}
    if any(v for v in ws.values() if isinstance(v, int | float)):
        lines += ["", "websockets and polling"]
        shown = [(k, _ws_value(k, v)) for k, v in ws.items() if v not in (None, 0, 0.0)]
        width = max(len(k) for k, _ in shown)
        lines += [f"  {k.ljust(width)}  {v}" for k, v in shown]
    return "\n".join(lines)


def _ws_value(key: str, value: Any) -> str:
    """A websockets figure in the unit its name implies (latencies in ms, bytes in MB)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    if key.startswith(("delivery", "latency", "handshake")) or key.endswith("_time"):
        return fmt_ms(value)
    if key.startswith("bytes") or "memory" in key:
        return fmt_bytes(value) + ("/s" if key.endswith("_per_s") else "")
    if key.endswith("utilization"):
        return fmt_pct(value)
    if key.endswith(("_rate", "_per_s")):
        return fmt_rate(value, "/s")
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``simsys`` console script."""
    cli.main(args=argv, prog_name="simsys")


if __name__ == "__main__":  # pragma: no cover
    main()
