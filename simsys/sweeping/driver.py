"""The driver: check everything, then keep the executor busy until the plan is done, recording
every row as it arrives.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Problem, ScenarioError
from ..progress import RunsBar
from ..spec.model import Scenario
from .executors import Executors
from .grid import (
    Grid,
    check_metric_name,
    check_points,
    column_values,
    grid_points,
    plain_data,
    point_key,
    scenario_data,
)
from .plan import Plan
from .results import Sweep, finish_frame, load_sweep
from .seeds import replication_seed
from .store import FORMAT, PartWriter, prepare_directory, versions, write_json, write_parquet
from .worker import error_message, execute

#: The grid key that names a comparison's variant (its scenario).
VARIANT = "variant"

Progress = bool | Callable[[int, int, int], None] | None


def sweep(
    spec: str | Path | Mapping[str, Any] | Scenario,
    grid: Grid = None,
    replications: int = 30,
    *,
    jobs: int | None = None,
    scheduler: str | None = None,
    out: str | Path | None = None,
    executor: cf.Executor | None = None,
    seed: int | None = None,
    precision: float | None = None,
    metric: str | None = None,
    max_replications: int | None = None,
    batch: int | None = None,
    confidence: float = 0.95,
    retry_errors: bool = False,
    progress: Progress = None,
    before_run: Callable[[Mapping[str, Any]], None] | None = None,
    collect: Callable[[Any], Mapping[str, Any]] | None = None,
    scheduler_timeout: float = 5.0,
    flush_every: float = 2.0,
    run_timeout: float | None = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
) -> Sweep:
    """Run ``spec`` at every grid point, ``replications`` times each, and aggregate.

    Parameters
    ----------
    spec
        A scenario file, scenario data or :class:`~simsys.spec.model.Scenario`.
    grid
        ``{"dotted.key": [values]}`` (product) or ``[{"dotted.key": value, ...}, ...]``
        (explicit points); None runs the scenario as it is.
    replications
        Runs per point (in precision mode: the first round).
    jobs, scheduler, executor
        At most one: N local processes (1 = in this process), a Dask scheduler address or
        scheduler file, or any :class:`concurrent.futures.Executor`. Default: one process per core.
    out
        Directory to save runs in as they finish; rerunning with it resumes.
    seed
        Base seed of the replication seeds (default: the scenario's ``seed``).
    precision, metric, max_replications, batch
        Precision mode: add rounds of ``batch`` runs per point until the relative half-width
        of ``metric``'s mean is ≤ ``precision`` or ``max_replications`` runs are done.
    confidence
        Of the confidence intervals (table and precision rule).
    retry_errors
        On resume, run again the runs saved with status 'error'.
    progress
        None: a bar on stderr when it is a terminal (or in Jupyter); True/False: always/never;
        a callable gets ``(done, total, failed)`` after every run.
    before_run
        Called in the worker with the task (plain data) before each run; for instrumentation
        and fault injection. Must be picklable for process and Dask executors.
    collect
        ``collect(result) -> {name: value}`` called in the worker on each run's Result; its
        figures are added to the row (e.g. from per-request tables, which never travel back).
    scheduler_timeout
        Seconds to wait for a Dask scheduler before giving up with a ScenarioError.
    flush_every
        Seconds at most between two part files while runs finish.
    overrides
        ``{"dotted.key": value}`` or ``"key=value"`` strings applied to the scenario before
        the grid, checked like the file (``simsys sweep --set``).
    run_timeout
        Wall-clock seconds one run may take; a run that takes longer is stopped and recorded
        with status ``timeout`` (and run again on resume with ``retry_errors``), so one run
        that would never end cannot stall the sweep. Default: no limit.

    Returns
    -------
    Sweep

    Raises
    ------
    ScenarioError
        A bad scenario, grid key or value, option, or an unreachable scheduler, before any run
        starts; also an unknown precision ``metric`` (detected from the first run's figures).
    KeyboardInterrupt
        After the finished runs are saved and the workers stopped.
    """
    base, scenario, source = scenario_data(spec, overrides)
    keys, points = grid_points(grid)
    check_points(base, scenario, points)
    design = Design({"": base}, keys, points, source=source,
                    grid=plain_data(grid, "grid") if grid is not None else None)
    stopping = Stopping.checked(replications, precision, metric, batch, max_replications, confidence)
    if metric:
        check_metric_name(base, metric)
    return run_design(design, stopping, checked_seed(scenario.seed if seed is None else seed),
                      jobs=jobs, scheduler=scheduler, executor=executor,
                      scheduler_timeout=scheduler_timeout, out=out, retry_errors=retry_errors,
                      progress=progress, before_run=before_run, collect=collect,
                      flush_every=flush_every, run_timeout=run_timeout)


@dataclass
class Design:
    """What a sweep runs: the scenarios as plain data and the grid points.

    A plain sweep has one scenario; a comparison (:mod:`simsys.comparing`) has one per variant,
    and every point names its scenario with the key ``variant`` (its other keys, if any, are
    overrides as in any grid).
    """

    scenarios: dict[str, dict[str, Any]]
    keys: list[str]
    points: list[dict[str, Any]]
    source: str | None = None
    grid: Any = None
    label: str = "sweep"  # of the progress bar

    def inputs(self, p: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Point ``p``'s scenario data and its overrides."""
        point = self.points[p]
        if VARIANT in point:
            rest = {k: v for k, v in point.items() if k != VARIANT}
            return self.scenarios[point[VARIANT]], rest
        return next(iter(self.scenarios.values())), point


@dataclass
class Stopping:
    """How many replications each point gets: a fixed count, or rounds of ``batch`` until the
    relative half-width of ``metric`` is at most ``precision`` (or ``max_replications``)."""

    replications: int
    precision: float | None
    metric: str | None
    batch: int
    max_replications: int
    confidence: float

    @classmethod
    def checked(cls, replications: Any, precision: Any, metric: Any, batch: Any,
                max_replications: Any, confidence: Any) -> Stopping:
        """The settings, or a ScenarioError naming the argument that is wrong."""
        def bad(name: str, message: str) -> ScenarioError:
            return ScenarioError([Problem(name, message)])

        if not _whole(replications) or replications < 1:
            raise bad("replications", f"expected a whole number ≥ 1, got {replications!r}")
        if not (isinstance(confidence, int | float) and 0 < confidence < 1):
            raise bad("confidence", f"expected a fraction between 0 and 1, got {confidence!r}")
        if precision is None:
            return cls(replications, None, metric, batch or 1, replications, confidence)
        if not (isinstance(precision, int | float) and 0 < precision < 1):
            raise bad("precision", f"expected a fraction between 0 and 1 (5% = 0.05), got {precision!r}")
        if not metric:
            raise bad("metric", "precision needs a metric, e.g. latency.p99")
        if replications < 2:
            raise bad("replications", "precision needs at least 2 replications per point to start")
        batch = min(replications, 10) if batch is None else batch
        max_replications = max(10 * replications, 100) if max_replications is None else max_replications
        if not _whole(batch) or batch < 1:
            raise bad("batch", f"expected a whole number ≥ 1, got {batch!r}")
        if not _whole(max_replications) or max_replications < replications:
            raise bad("max_replications", f"expected a whole number ≥ replications ({replications}), "
                      f"got {max_replications!r}")
        return cls(replications, precision, metric, batch, max_replications, confidence)

    def as_meta(self) -> dict[str, Any]:
        precise = self.precision is not None
        return {"replications": self.replications, "precision": self.precision,
                "metric": self.metric, "batch": self.batch if precise else None,
                "max_replications": self.max_replications if precise else None,
                "confidence": self.confidence}


def _whole(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def checked_seed(seed: Any) -> int:
    """The base seed, or a ScenarioError: a whole number ≥ 0."""
    if not _whole(seed) or seed < 0:
        raise ScenarioError([Problem("seed", f"expected a whole number ≥ 0, got {seed!r}")])
    return int(seed)


def run_design(
    design: Design,
    stopping: Stopping,
    base_seed: int,
    *,
    jobs: int | None = None,
    scheduler: str | None = None,
    executor: cf.Executor | None = None,
    scheduler_timeout: float = 5.0,
    out: str | Path | None = None,
    retry_errors: bool = False,
    progress: Progress = None,
    before_run: Callable[[Mapping[str, Any]], None] | None = None,
    collect: Callable[[Any], Mapping[str, Any]] | None = None,
    flush_every: float = 2.0,
    run_timeout: float | None = None,
) -> Sweep:
    """Run every point of ``design`` as ``stopping`` says, on the executor chosen, saving in
    ``out`` as runs finish (and resuming from it); the engine under :func:`sweep` and
    :func:`simsys.compare`."""
    executors = Executors(jobs, scheduler, executor, scheduler_timeout)
    keys, points = design.keys, design.points
    point_keys = [point_key(p) for p in points]
    meta: dict[str, Any] = {
        "format": FORMAT, "source": design.source, "scenario": next(iter(design.scenarios.values())),
        **({"variants": design.scenarios} if VARIANT in keys else {}),
        "grid": design.grid, "grid_keys": keys, "points": points, "seed": base_seed,
        **stopping.as_meta(), "versions": versions(), "status": "running",
    }
    seeds: dict[int, int] = {}

    def seed_of(r: int) -> int:
        if r not in seeds:
            seeds[r] = replication_seed(base_seed, r)
        return seeds[r]

    # Earlier runs in OUT (resume).
    done: dict[tuple[int, int], dict[str, Any]] = {}
    directory = Path(out).expanduser() if out is not None else None
    if directory is not None:
        done = prepare_directory(directory, meta, {k: i for i, k in enumerate(point_keys)},
                                 seed_of, retry_errors)
    skipped = len(done)

    plan = Plan(len(points), stopping.replications, done, stopping.precision, stopping.metric,
                stopping.batch, stopping.max_replications, stopping.confidence)
    writer = PartWriter(directory / "runs" if directory is not None else None, flush_every)
    completed = False
    bar = None
    try:
        if plan.queue:
            executors.connect()  # before the progress bar's thread: workers may be forked
        bar = RunsBar(progress, plan.total, skipped,
                      sum(1 for row in done.values() if row.get("status") != "ok"), desc=design.label)
        tasks = Tasks(design, point_keys, seed_of, before_run, collect, run_timeout)
        drive(plan, executors, writer, bar, tasks)
        completed = True
    except KeyboardInterrupt as exc:
        if directory is not None:
            exc.add_note(f"the finished runs are saved in {directory}: run the same command again "
                         "to finish")
        raise
    finally:
        writer.flush()
        executors.close(abort=not completed)
        if bar is not None:
            bar.close()
        meta["status"] = "complete" if completed else "interrupted"
        if completed:
            meta["replications_per_point"] = list(plan.target)
        if directory is not None:
            write_json(directory / "sweep.json", meta)
    final = [done[(p, r)] for p in range(len(points)) for r in range(plan.target[p])]
    result = Sweep(finish_frame(final, keys, points), meta, directory)
    if directory is not None:
        write_parquet(result.runs, directory / "runs.parquet")
        write_parquet(result.table(), directory / "table.parquet")
    return result


class Tasks:
    """The plain-data task of each (point, replication), and the row of one that failed."""

    def __init__(self, design: Design, point_keys: list[str], seed_of: Callable[[int], int],
                 before_run: Callable[[Mapping[str, Any]], None] | None,
                 collect: Callable[[Any], Mapping[str, Any]] | None, run_timeout: float | None):
        self.design = design
        self.point_keys = point_keys
        self.seed_of = seed_of
        self.shown = column_values(design.keys, design.points)
        self.extra: dict[str, Any] = {k: v for k, v in (("before_run", before_run), ("collect", collect),
                                                        ("run_timeout", run_timeout)) if v is not None}

    def task(self, p: int, r: int) -> dict[str, Any]:
        scenario, overrides = self.design.inputs(p)
        return {"scenario": scenario, "overrides": overrides, "seed": self.seed_of(r),
                "point_key": self.point_keys[p], "replication": r, **self.extra}

    def error_row(self, p: int, r: int, message: str) -> dict[str, Any]:
        return {"point_key": self.point_keys[p], "replication": r, "seed": self.seed_of(r),
                "status": "error", "error": message, "wall_time": math.nan}


# The reader and the class stay reachable from the function, as they were from the old module.
sweep.load_sweep = load_sweep  # type: ignore[attr-defined]
sweep.Sweep = Sweep  # type: ignore[attr-defined]



def drive(plan: Plan, executors: Executors, writer: PartWriter, bar: RunsBar, tasks: Tasks) -> None:
    """Keep the executor busy until the plan is done; record every row as it arrives."""
    if plan.queue:
        Flight(plan, executors, writer, bar, tasks).run()


Item = tuple[int, int]  # (point, replication)


class Flight:
    """The runs in flight. Normally up to two per worker; after a worker died, the runs that
    were in flight with it (suspects) run again one at a time, so that only the one that kills
    its worker is recorded as an error."""

    def __init__(self, plan: Plan, executors: Executors, writer: PartWriter, bar: RunsBar,
                 tasks: Tasks):
        self.plan, self.executors, self.writer, self.bar, self.tasks = plan, executors, writer, bar, tasks
        executors.connect()
        self.window = max(2, 2 * executors.workers)
        self.inflight: dict[cf.Future, Item] = {}
        self.suspects: deque[Item] = deque()
        self.alone: set[Item] = set()
        self.broken = False
        self.last_done = self.last_news = time.monotonic()
        executors.news(0.0)  # the workers there at the start, to tell later which were lost

    def run(self) -> None:
        while True:
            self.fill()
            if not self.inflight:
                if self.broken:
                    self.executors.replace()
                    self.broken = False
                    continue
                if self.plan.queue or self.suspects:
                    continue
                return
            self.wait()
            self.writer.maybe_flush()

    def next_item(self) -> Item | None:
        """The next run to submit now, or None when the window is full (or nothing is left)."""
        if self.suspects or self.alone & set(self.inflight.values()):
            if self.inflight or not self.suspects:
                return None
            item = self.suspects.popleft()
            self.alone.add(item)
            return item
        if len(self.inflight) >= self.window:
            return None
        return self.plan.next()

    def fill(self) -> None:
        while not self.broken:
            item = self.next_item()
            if item is None:
                return
            try:
                future = self.executors.executor.submit(execute, self.tasks.task(*item))
            except cf.BrokenExecutor:
                if item in self.alone:
                    self.suspects.appendleft(item)
                    self.alone.discard(item)
                else:
                    self.plan.queue.appendleft(item)
                self.broken = True
                return
            self.inflight[future] = item

    def wait(self) -> None:
        due = self.writer.due()
        done, _ = cf.wait(list(self.inflight), timeout=1.0 if due is None else max(due, 0.01),
                          return_when=cf.FIRST_COMPLETED)
        now = time.monotonic()
        if done:
            self.last_done = now
        if now - self.last_news >= 2.0:
            self.last_news = now
            for message in self.executors.news(now - self.last_done):
                self.bar.say(message)
        for future in done:
            self.settle(future)

    def settle(self, future: cf.Future) -> None:
        p, r = item = self.inflight.pop(future)
        try:
            exc = future.exception()
        except cf.CancelledError as cancelled:
            exc = cancelled
        if exc is None:
            self.alone.discard(item)
            self.record(p, r, future.result())
        elif isinstance(exc, cf.BrokenExecutor):
            self.broken = True
            if item in self.alone:  # it ran alone and its worker died: it is the culprit
                self.alone.discard(item)
                message = f"worker process died during the run ({error_message(exc)})"
                self.record(p, r, self.tasks.error_row(p, r, message))
            else:
                self.suspects.append(item)
        elif isinstance(exc, Exception):
            self.alone.discard(item)
            self.record(p, r, self.tasks.error_row(p, r, error_message(exc)))
        else:  # KeyboardInterrupt/SystemExit inside a worker: not a result, stop
            raise exc

    def record(self, p: int, r: int, row: dict[str, Any]) -> None:
        row.update(self.tasks.shown[p])
        self.writer.add(row)
        self.plan.record(p, r, row)
        self.bar.update(self.plan.total, row.get("status") == "ok")
