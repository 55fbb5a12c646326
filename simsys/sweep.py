"""Parameter sweeps: one scenario, a grid of values, many replications, any executor.

A sweep runs a scenario once per *grid point* and *replication*, keeps one flat row per run
(never the per-request tables) and aggregates them into means with confidence intervals.

>>> import simsys
>>> tiny = {"duration": "20s",
...         "services": {"web": {"workers": 2,
...                              "service_time": {"dist": "exponential", "mean": "10ms"}}},
...         "workload": [{"type": "poisson", "rate": "50/s", "target": "web"}]}
>>> sw = simsys.sweep(tiny, grid={"services.web.workers": [1, 2]}, replications=3, jobs=1,
...                   progress=False)
>>> len(sw.runs), sorted(set(sw.runs["status"]))
(6, ['ok'])
>>> t = sw.table()
>>> t[t["metric"] == "latency.mean"][["services.web.workers", "n"]].to_dict("list")
{'services.web.workers': [1, 2], 'n': [3, 3]}

Grids
-----
``grid`` is either a product, ``{"services.catalog.replicas": [1, 2, 3],
"chaos.monkey.mean_time_between_failures": ["5min", "10min"]}`` (6 points, the first key
varying slowest), or an explicit list of points, ``[{"services.web.workers": 1},
{"services.web.workers": 4, "services.web.queue": 10}]``. Keys are dotted scenario paths, as
with ``simsys run --set``. Every point is checked like a scenario file before any run starts; a
bad key or value raises :class:`~simsys.errors.ScenarioError` naming it. A grid changes values;
it cannot add a service (``services.catalg.replicas`` is a typo, not a new service). ``seed`` is
not a grid key: the sweep sets it per replication.

Random numbers
--------------
Replication ``r`` runs with seed ``SeedSequence(base_seed, spawn_key=(r,)).generate_state(1)[0]``
(the same as ``SeedSequence(base_seed).spawn(r + 1)[r]``), whatever the grid point: the same
replication at two points sees the same arrivals, service times and failures wherever the two
scenarios agree (common random numbers), so differences between points are measured with much
less noise (:meth:`Sweep.diff`). ``base_seed`` is ``seed=`` or the scenario's own ``seed``.

Precision
---------
``precision=0.05, metric="latency.p99"`` starts every point with ``replications`` runs and adds
rounds of ``batch`` runs (default ``min(replications, 10)``) until the 95 % confidence
half-width of the point's mean of ``metric`` is at most 5 % of that mean, or
``max_replications`` (default ``max(10 × replications, 100)``) is reached. Each decision uses
only that point's replications 0…n-1, so the stopping count does not depend on the executor.

Executors
---------
One code path drives any :class:`concurrent.futures.Executor`: by default a local process pool
with one worker per core; ``jobs=N`` for N processes (``jobs=1`` runs in this process, handy for
debugging); ``scheduler="tcp://host:8786"`` (or the path of a Dask scheduler file) connects a
``distributed.Client`` and uses ``client.get_executor()``; ``executor=`` takes any executor you
bring. Runs travel as plain data (scenario dict, overrides, seed) and come back as flat dicts;
per-request tables stay in the worker unless ``collect=`` (a picklable function of the Result)
adds figures computed from them. ``before_run=`` is called in the worker before each run
(instrumentation, fault injection). A run that raises becomes a row with ``status="error"`` and the message; a worker process that
dies (``BrokenProcessPool``) costs a new pool, and the runs that were in flight are run again one
at a time so that only the one that kills its worker is recorded as an error.

Tables
------
``Sweep.runs`` has one row per run; ``Sweep.table()`` one row per grid point and figure (long
format: ``point``, grid keys, ``metric``, ``n``, ``mean``, ``std``, ``half_width``, ``ci_low``,
``ci_high``; ``wide=True`` pivots to ``(metric, statistic)`` columns); ``Sweep.overview()`` the
``mean ± half-width`` text the command line prints; ``Sweep.diff(metric, a, b)`` the paired
difference between two points.

Output directory (``out=``)
---------------------------
::

    OUT/sweep.json            scenario (as data), grid, points, base seed, replications,
                              precision settings, versions, status
    OUT/runs/part-*.parquet   the rows, written as runs finish (at least every 2 s), each file
                              written to a temporary name and renamed, so a killed sweep never
                              leaves a half-written part
    OUT/runs.parquet          every row of the finished sweep in one file
    OUT/table.parquet         the aggregated table (long format, see :meth:`Sweep.table`)

Running the same sweep again with the same ``out`` skips the runs already there (keyed by grid
point values and replication) and finishes the rest; a different scenario or seed is refused.
Error rows count as done unless ``retry_errors=True``. :func:`load_sweep` (also
``Sweep.load``) reads a directory back.

Command line
------------
::

    simsys sweep SCENARIO.yaml --grid services.catalog.replicas=1,2,3 \\
        --grid chaos.monkey.mean_time_between_failures=5min,10min \\
        --replications 30 [--jobs N | --scheduler ADDRESS] [--seed S] --out DIR
    simsys sweep SCENARIO.yaml --grid services.web.workers=1,2,4 --replications 5 \\
        --precision 5% --metric latency.p99 --max-replications 200 --out DIR

A progress bar on stderr shows runs done, failures and the time left; the aggregated table is
printed at the end. Exit status 0 even when some runs failed (their count is reported), 2 on bad
input (a bad grid key or value, an unreachable scheduler), 130 when interrupted (the finished
runs are saved: run the same command again to finish).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import itertools
import json
import math
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .analysis import t_quantile
from .errors import Problem, ScenarioError
from .files import atomic_write, leftovers
from .formatting import column_header, fmt_in_unit
from .result import flatten
from .spec.load import apply_overrides, read, validate
from .spec.model import Scenario

__all__ = ["Sweep", "load_sweep", "replication_seed", "sweep"]

FORMAT = "simsys-sweep/1"
#: Columns every row has besides the grid values and the summary figures.
BOOK = ("point", "replication", "seed", "status", "error", "wall_time")
#: Summary keys that describe the run's input, not its outcome; left out of the rows.
_INPUTS = ("name", "seed", "duration", "warmup")
#: Figures shown by the command line and ``_repr_html_`` when no metric is named.
HEADLINE = ("requests.total", "throughput", "error_rate", "latency.mean", "latency.p99")

Grid = Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]] | None
Progress = bool | Callable[[int, int, int], None] | None


# -- seeds --------------------------------------------------------------------------------------
NO_WORKERS_WARNING = 10.0  # seconds without a Dask worker and without a finished run, then say so


def replication_seed(base_seed: int, replication: int) -> int:
    """The seed of replication ``replication``, the same at every grid point.

    Equal to ``SeedSequence(base_seed).spawn(replication + 1)[replication].generate_state(1)[0]``.

    >>> replication_seed(0, 0) == replication_seed(0, 0) != replication_seed(0, 1)
    True
    """
    ss = np.random.SeedSequence(int(base_seed), spawn_key=(int(replication),))
    return int(ss.generate_state(1, dtype=np.uint32)[0])


# -- the run, in a worker ---------------------------------------------------------------------
class RunTimeout(Exception):
    """A run went on longer than the sweep's ``run_timeout`` (wall-clock seconds)."""


def _deadline(limit: float) -> Callable[[float], None]:
    """A progress callback that ends the run once ``limit`` wall seconds have passed; the run
    loop calls it every fraction of a second (:func:`simsys.sim.engine.run_until`)."""
    ends_at = time.perf_counter() + limit

    def check(now: float) -> None:
        if time.perf_counter() > ends_at:
            raise RunTimeout(f"the run took longer than {limit:g} s (run_timeout), at "
                             f"{now:g} simulated s")
    return check


@contextlib.contextmanager
def _alarm(limit: float | None) -> Iterator[None]:
    """In a process's main thread (pool workers, jobs=1), also a SIGALRM after ``limit`` + 1 s:
    it interrupts a run stuck between progress calls. Elsewhere (Dask's worker threads) the
    progress deadline alone applies."""
    usable = (limit is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise RunTimeout(f"the run took longer than {limit:g} s (run_timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(limit) + 1.0)  # type: ignore[arg-type]
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _simulate(task: Mapping[str, Any]) -> dict[str, Any]:
    """Run one task and return its flat figures (the summary, plus ``collect``'s if given)."""
    from .runner import run

    limit = task.get("run_timeout")
    result = run(task["scenario"], seed=task["seed"], overrides=task["overrides"],
                 progress=None if limit is None else _deadline(limit))
    figures = _figures(result.summary())
    collect = task.get("collect")
    if collect is not None:
        figures.update(collect(result))
    return figures


def _figures(summary: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flatten(dict(summary)).items():
        if key in _INPUTS:
            continue
        out[key] = json.dumps(value) if isinstance(value, list | tuple | dict) else value
    return out


def _execute(task: Mapping[str, Any]) -> dict[str, Any]:
    """Worker entry point: plain data in, one flat row out; an exception becomes an error row."""
    started = time.perf_counter()
    row: dict[str, Any] = {
        "point_key": task["point_key"],
        "replication": task["replication"],
        "seed": task["seed"],
    }
    try:
        with _alarm(task.get("run_timeout")):
            hook = task.get("before_run")
            if hook is not None:
                hook(task)
            figures = _simulate(task)
        row.update(status="ok", error=None)
        row.update(figures)
    except RunTimeout as exc:
        row.update(status="timeout", error=str(exc))
    except Exception as exc:  # a failed run is a result, not the end of the sweep
        row.update(status="error", error=_message(exc))
    row["wall_time"] = time.perf_counter() - started
    return row


def _message(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 2000 else text[:1997] + "..."


def _init_worker() -> None:
    """Start of each pool worker: ignore Ctrl-C, and exit if the sweep process dies."""
    # Ctrl-C reaches the whole process group; only the parent should react (it saves and stops).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker waits on its task queue forever, even after the sweep was killed (SIGKILL, OOM),
    # and the fork server waits for its workers; the parent's sentinel closes when it dies.
    import multiprocessing as mp
    import threading

    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="simsys-sweep-orphan-watch", daemon=True).start()


# -- executors --------------------------------------------------------------------------------
class _InlineExecutor(cf.Executor):
    """Runs each call at submit time in this process (``jobs=1``): same path, no processes."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


def _process_pool(workers: int) -> cf.ProcessPoolExecutor:
    """A pool of ``workers`` processes, started now (not on first submit).

    On Linux, a process with no other thread forks its workers: nothing is imported again and
    start-up costs milliseconds. Forking a process that has threads (a notebook kernel, a Dask
    client, a progress bar, an earlier pool) is unsafe, so then a fork server, started once per
    process with simsys preloaded, forks fresh workers; elsewhere workers are spawned.
    """
    import multiprocessing as mp
    import threading

    methods = mp.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods and threading.active_count() == 1:
        ctx = mp.get_context("fork")
    elif "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["simsys.sweep"])
    else:
        ctx = mp.get_context("spawn")
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker)
    # Start the workers before this process makes any thread of its own (the pool's manager
    # thread, the progress bar's monitor).
    pool.submit(os.getpid).result()
    return pool


def _stop_pool(pool: cf.Executor) -> None:
    """Shut down a pool we own without waiting for the runs in flight (they are not recorded)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    try:
        pool.shutdown(wait=False, cancel_futures=True)
    except TypeError:
        pool.shutdown(wait=False)
    for p in procs:  # only the workers of this pool, which this sweep started
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)


class _Executors:
    """The executor a sweep submits to: made on first use, replaced if its processes die."""

    def __init__(
        self,
        jobs: int | None,
        scheduler: str | None,
        executor: cf.Executor | None,
        scheduler_timeout: float,
    ):
        given = [name for name, v in (("jobs", jobs), ("scheduler", scheduler), ("executor", executor))
                 if v is not None]
        if len(given) > 1:
            raise ScenarioError(f"give at most one of jobs, scheduler and executor (got {', '.join(given)})")
        if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
            raise ScenarioError(f"jobs: expected a whole number ≥ 1, got {jobs!r}")
        self.jobs = jobs
        self.scheduler = scheduler
        self.scheduler_timeout = scheduler_timeout
        self._given = executor
        self._executor: cf.Executor | None = executor
        self._owned = executor is None
        self._client: Any = None
        self._connected = False
        self._seen_workers: set[str] = set()
        self.workers = 1

    def connect(self) -> None:
        """Make (or connect) the executor now; an unreachable scheduler is a ScenarioError."""
        if self._connected:
            return
        self._connected = True
        if self._executor is not None:
            self.workers = self._count_workers(self._executor)
            return
        if self.scheduler is not None:
            self._executor = self._dask(self.scheduler)
        elif self.jobs == 1:
            self._executor = _InlineExecutor()
            self.workers = 1
        else:
            self.workers = self.jobs or os.cpu_count() or 1
            self._executor = _process_pool(self.workers)

    @property
    def executor(self) -> cf.Executor:
        if self._executor is None:
            self.connect()
        assert self._executor is not None
        return self._executor

    def _dask(self, address: str) -> cf.Executor:
        try:
            from distributed import Client
        except ImportError:
            raise ScenarioError(
                "scheduler: Dask is not installed; pip install 'dask[distributed]'"
            ) from None
        kwargs: dict[str, Any] = {"timeout": f"{self.scheduler_timeout}s", "set_as_default": False}
        if os.path.isfile(address):
            try:
                target = json.loads(Path(address).read_text(encoding="utf-8"))["address"]
            except (OSError, ValueError, KeyError, TypeError):
                raise ScenarioError(f"scheduler: {address} is not a Dask scheduler file "
                                    "(JSON with an address)") from None
            kwargs["scheduler_file"] = address
        else:
            target = address
        self._probe(target, address)
        try:
            client = Client(**kwargs) if "scheduler_file" in kwargs else Client(address, **kwargs)
        except Exception as exc:  # whatever answered there is not a scheduler we can use
            raise ScenarioError(f"scheduler: cannot reach the Dask scheduler at {address}: "
                                f"{_message(exc)}") from None
        self._client = client
        self.workers = max(1, sum(client.nthreads().values()))
        return client.get_executor(pure=False)

    def _probe(self, target: str, address: str) -> None:
        """Fail fast, before a Client starts its threads: a bad address, nobody listening."""
        import socket

        from distributed.comm.addressing import parse_address, parse_host_port

        try:
            scheme, location = parse_address(target)
            host, port = (parse_host_port(location) if scheme in ("tcp", "tls", "ws", "wss")
                          else (None, None))
        except ValueError as exc:
            missing = (" (no such file)" if "://" not in address
                       and (os.sep in address or address.endswith(".json")) else "")
            raise ScenarioError(f"scheduler: expected an address such as tcp://host:8786 or a "
                                f"scheduler file, got {address!r}{missing}: {exc}") from None
        if host is None:
            return
        try:
            with socket.create_connection((host, port), timeout=self.scheduler_timeout):
                pass
        except OSError as exc:
            raise ScenarioError(f"scheduler: cannot reach the Dask scheduler at {address}: "
                                f"{exc.strerror or exc}") from None

    @staticmethod
    def _count_workers(executor: cf.Executor) -> int:
        n = getattr(executor, "_max_workers", None)
        client = getattr(executor, "_client", None)
        if n is None and client is not None:
            try:
                n = sum(client.nthreads().values())
            except Exception:
                n = None
        return max(1, int(n or os.cpu_count() or 1))

    def news(self, idle: float) -> list[str]:
        """What a user waiting on a Dask cluster should hear: workers lost since the last call
        (Dask runs their tasks again elsewhere), and none alive after ``idle`` seconds with
        no run finished. Nothing for local executors, whose failures raise."""
        client = self._client or getattr(self._executor, "_client", None)
        if client is None:
            return []
        try:
            alive = set(client.nthreads())
        except Exception:  # the scheduler itself is gone; the runs' futures will say so
            return []
        out = [f"Dask worker {w} was lost; the scheduler runs its runs again on the others"
               for w in sorted(self._seen_workers - alive)]
        self._seen_workers = alive
        if not alive and idle >= NO_WORKERS_WARNING:
            out.append(f"no Dask worker has been connected to the scheduler for {idle:.0f} s; "
                       "the sweep waits for one (start some with: dask worker ADDRESS)")
        return out

    def replace(self) -> None:
        """After BrokenExecutor: a new process pool of the same size (also for a borrowed one)."""
        old = self._executor
        if old is not None and self._owned:
            _stop_pool(old)
        self._executor = _process_pool(self.workers)
        self._owned = True

    def close(self, abort: bool) -> None:
        ex, self._executor = self._executor, None
        if ex is not None and self._owned:
            if abort and isinstance(ex, cf.ProcessPoolExecutor):
                _stop_pool(ex)
            else:
                try:
                    ex.shutdown(wait=not abort, cancel_futures=abort)
                except TypeError:
                    ex.shutdown(wait=not abort)
        if self._client is not None:
            client, self._client = self._client, None
            try:
                client.close(timeout=5)
            except Exception:
                pass


# -- grids ------------------------------------------------------------------------------------
def _plain(value: Any, where: str) -> Any:
    """JSON-ready copy of a grid value (runs travel as plain data)."""
    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, tuple | set | frozenset | range | np.ndarray):
            return list(o)
        raise TypeError(type(o).__name__)

    try:
        return json.loads(json.dumps(value, default=default))
    except (TypeError, ValueError) as exc:
        raise ScenarioError([Problem(where, f"expected plain data (numbers, text, lists, mappings), got {exc}", "grid")]) from None


def _points(grid: Grid) -> tuple[list[str], list[dict[str, Any]]]:
    """Grid → (keys in order, list of points); shape problems raise ScenarioError."""
    if grid is None:
        return [], [{}]
    if isinstance(grid, Mapping):
        keys = [str(k) for k in grid]
        axes = []
        for key in grid:
            values = grid[key]
            if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
                raise ScenarioError([Problem(str(key), f"expected a list of values, got {values!r}", "grid")])
            values = list(values)
            if not values:
                raise ScenarioError([Problem(str(key), "expected at least one value, got an empty list", "grid")])
            axes.append([_plain(v, str(key)) for v in values])
        points = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes)]
    elif isinstance(grid, Sequence) and not isinstance(grid, str | bytes):
        if not grid:
            raise ScenarioError([Problem("", "expected at least one grid point, got an empty list", "grid")])
        points, keys = [], []
        for i, point in enumerate(grid):
            if not isinstance(point, Mapping):
                raise ScenarioError([Problem(f"[{i}]", f"expected a mapping of key: value, got {point!r}", "grid")])
            points.append({str(k): _plain(v, str(k)) for k, v in point.items()})
            keys.extend(str(k) for k in point if str(k) not in keys)
    else:
        raise ScenarioError([Problem("", f"expected a mapping of lists or a list of mappings, got {grid!r}", "grid")])
    for key in keys:
        parts = key.split(".")
        if not key or not all(parts):
            raise ScenarioError([Problem(key, "expected a dotted key path such as services.web.replicas", "grid")])
        if parts[0] == "seed" and len(parts) == 1:
            raise ScenarioError([Problem("seed", "set per replication by the sweep; give the base seed with seed= (--seed)", "grid")])
    seen: dict[str, int] = {}
    for i, point in enumerate(points):
        k = _point_key(point)
        if k in seen:
            raise ScenarioError([Problem("", f"point {i} repeats point {seen[k]}: {point}", "grid")])
        seen[k] = i
    return keys, points


def _point_key(point: Mapping[str, Any]) -> str:
    return json.dumps(point, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _describe_point(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in point.items()) or "base"


def _check_points(base: dict[str, Any], scenario: Scenario, points: list[dict[str, Any]]) -> None:
    """Validate every point like a scenario file; raise one ScenarioError with every problem."""
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    names = list(scenario.services)
    for point in points:
        where = f"grid point {_describe_point(point)}"
        good = {}
        for key, value in point.items():
            parts = key.split(".")
            if parts[0] == "services" and len(parts) > 1 and parts[1] not in scenario.services:
                msg = (f"no service {parts[1]!r} in the scenario (services are: {', '.join(names)}); "
                       "a grid changes values, it does not add services")
                if (key, msg) not in seen:
                    seen.add((key, msg))
                    problems.append(Problem(key, msg, "grid"))
            else:
                good[key] = value
        try:
            validate(apply_overrides(base, good))
        except ScenarioError as exc:
            for p in exc.problems:
                if (p.path, p.message) in seen:
                    continue
                seen.add((p.path, p.message))
                problems.append(Problem(p.path, p.message, where))
    if problems:
        raise ScenarioError(problems)


def _column_values(keys: list[str], points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per point, the values shown in the grid columns: scalars as they are, the rest as JSON."""
    shown = [dict.fromkeys(keys) for _ in points]
    for key in keys:
        values = [p.get(key) for p in points]
        present = [v for v in values if v is not None]
        kinds = {type(v) for v in present}
        plain = kinds <= {int, float} or len(kinds) == 1 and kinds <= {str, bool, int, float}
        for i, v in enumerate(values):
            shown[i][key] = v if plain or v is None else json.dumps(v, ensure_ascii=False)
    return shown


# -- spec as data -----------------------------------------------------------------------------
def _base(spec: Any, overrides: Any = None) -> tuple[dict[str, Any], Scenario, str | None]:
    """The scenario as plain data with ``overrides`` applied (``key=value`` strings or a
    mapping, as ``simsys.run`` takes them), validated, and the file it came from (if any)."""
    import networkx as nx

    from .spec.load import load

    if isinstance(spec, nx.DiGraph):
        raise TypeError("sweep() takes a scenario (file, dict or Scenario), not a graph")
    if overrides:
        overrides = overrides if isinstance(overrides, Mapping) else list(overrides)
        scenario = load(spec, overrides)  # problems named as --set and file positions say
        if isinstance(spec, str | Path):
            data, source = read(spec)[0], str(spec)
        elif isinstance(spec, Scenario):
            data, source = spec.model_dump(mode="json", by_alias=True), None
        else:
            data, source = _plain(dict(spec), "scenario"), None
        return apply_overrides(data, overrides), scenario, source
    if isinstance(spec, Scenario):
        data = spec.model_dump(mode="json", by_alias=True)
        return data, validate(data), None
    if isinstance(spec, str | Path):
        data, positions, name = read(spec)
        return data, validate(data, name, positions), str(spec)
    if isinstance(spec, Mapping):
        data = _plain(dict(spec), "scenario")
        return data, validate(data), None
    raise TypeError(f"sweep() takes a scenario file, dict or Scenario, got {type(spec).__name__}")


def _check_metric_name(base: dict[str, Any], metric: str) -> None:
    """Refuse a ``metric`` no run of this scenario reports, before any run starts: a one-second
    run without faults or experiment shows the summary's figures (a typo used to be reported
    only once every run had finished)."""
    from .runner import run

    probe = {k: v for k, v in base.items() if k not in ("experiment", "faults", "chaos")}
    probe.update(duration=1.0, warmup=0.0)
    try:
        figures = set(_figures(run(probe, seed=0).summary()))
    except Exception:  # a scenario that cannot run for a second: the runs will say why
        return
    if metric not in figures:
        from .errors import did_you_mean

        raise ScenarioError([Problem("metric", f"{metric!r} is not a figure of the run summary"
                                     f"{did_you_mean(metric, figures)}; e.g. latency.p99, "
                                     "throughput, error_rate, services.<name>.utilization")])


# -- the output directory ---------------------------------------------------------------------
def _versions() -> dict[str, str]:
    import platform
    from importlib import metadata

    from . import __version__

    out = {"simsys": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "simpy", "pandas", "pyarrow"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(rows)
    if "error" in df:
        df["error"] = df["error"].astype(object)
    return df


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


class _PartWriter:
    """Buffers finished rows and writes them as ``runs/part-*.parquet`` (temp name, then rename)."""

    def __init__(self, directory: Path | None, every: float, max_rows: int = 500):
        self.directory = directory
        self.every = every
        self.max_rows = max_rows
        self.rows: list[dict[str, Any]] = []
        self.last = time.monotonic()
        self.seq = 0
        self.stamp = f"{time.time_ns():020d}-{os.getpid()}"

    def add(self, row: dict[str, Any]) -> None:
        if self.directory is not None:
            self.rows.append(row)

    def due(self) -> float | None:
        """Seconds until the buffer must be written, or None when it is empty."""
        if not self.rows:
            return None
        return max(0.0, self.every - (time.monotonic() - self.last))

    def maybe_flush(self) -> None:
        if self.rows and (len(self.rows) >= self.max_rows or self.due() == 0.0):
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        if not self.rows or self.directory is None:
            return
        rows, self.rows = self.rows, []
        self.seq += 1
        _write_parquet(_frame(rows), self.directory / f"part-{self.stamp}-{self.seq:05d}.parquet")


def _read_parts(runs_dir: Path, quarantine: bool = False,
                say: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Every row in ``runs_dir/part-*.parquet``, one per key, ok preferred.

    A part that cannot be read (truncated by a crash of the disk or the machine, emptied by
    hand) is skipped with a note; with ``quarantine`` (a sweep resuming) it is also renamed
    ``….parquet.corrupt``, so its runs are done again and it is never read again.
    """
    import pyarrow.parquet as pq

    frames = []
    for path in sorted(runs_dir.glob("part-*.parquet")):
        try:
            frames.append(pq.read_table(path).to_pandas())
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError and others
            note = f"{path}: not a readable part file ({_message(exc)})"
            if quarantine:
                bad = path.with_name(path.name + ".corrupt")
                os.replace(path, bad)
                note += f"; renamed {bad.name}, its runs will be done again"
            (say or _stderr)(note)
    frames = [f for f in frames if len(f) and "point_key" in f and "replication" in f]
    if not frames:
        return pd.DataFrame(columns=["point_key", "replication", "seed", "status", "error"])
    df = pd.concat(frames, ignore_index=True)
    df["_order"] = np.arange(len(df))
    df["_ok"] = (df["status"] == "ok").astype(int)
    df = df.sort_values(["point_key", "replication", "_ok", "_order"], kind="stable")
    df = df.drop_duplicates(["point_key", "replication"], keep="last")
    return df.sort_values("_order", kind="stable").drop(columns=["_order", "_ok"]).reset_index(drop=True)


def _stderr(message: str) -> None:
    print(f"simsys: {message}", file=sys.stderr, flush=True)


# -- the plan ---------------------------------------------------------------------------------
class _Plan:
    """Which (point, replication) to run next; in precision mode, when each point may stop."""

    def __init__(
        self,
        n_points: int,
        replications: int,
        done: dict[tuple[int, int], dict[str, Any]],
        precision: float | None,
        metric: str | None,
        batch: int,
        max_replications: int,
        confidence: float,
    ):
        self.n_points = n_points
        self.precision = precision
        self.metric = metric
        self.batch = batch
        self.max_replications = max_replications
        self.confidence = confidence
        self.done = done
        self.target = [replications] * n_points
        self.finished = [False] * n_points
        self.queue: deque[tuple[int, int]] = deque(
            (p, r) for r in range(replications) for p in range(n_points) if (p, r) not in done
        )
        self.metric_checked = False
        if precision is not None:
            first_ok = next((row for row in done.values() if row.get("status") == "ok"), None)
            if first_ok is not None:
                self._check_metric(first_ok)
            for p in range(n_points):
                self._advance(p)

    @property
    def total(self) -> int:
        return sum(self.target)

    def next(self) -> tuple[int, int] | None:
        return self.queue.popleft() if self.queue else None

    def record(self, p: int, r: int, row: dict[str, Any]) -> None:
        self.done[(p, r)] = row
        if self.precision is None:
            return
        if not self.metric_checked and row.get("status") == "ok":
            self._check_metric(row)
        self._advance(p)

    def _check_metric(self, row: Mapping[str, Any]) -> None:
        if self.metric not in row:
            figures = sorted(k for k in row if k not in (*BOOK, "point_key") and "." in k or k in HEADLINE)
            raise ScenarioError([Problem("metric", f"{self.metric!r} is not a figure of the "
                                         f"run summary; figures are: {', '.join(figures)}")])
        self.metric_checked = True

    def precise(self, p: int) -> bool:
        values = [self.done[(p, r)].get(self.metric) for r in range(self.target[p])]
        return precise_enough(values, self.precision, self.confidence)  # type: ignore[arg-type]

    def _advance(self, p: int) -> None:
        while not self.finished[p]:
            if any((p, r) not in self.done for r in range(self.target[p])):
                return
            if self.precise(p) or self.target[p] >= self.max_replications:
                self.finished[p] = True
                return
            start = self.target[p]
            self.target[p] = min(start + self.batch, self.max_replications)
            self.queue.extend((p, r) for r in range(start, self.target[p]) if (p, r) not in self.done)


def precise_enough(values: Sequence[Any], precision: float, confidence: float = 0.95) -> bool:
    """The precision stopping rule: relative CI half-width of the mean ≤ ``precision``.

    ``values`` are one figure over replications 0…n-1; missing values (failed runs, ``None``)
    are left out. At least two values and a non-zero mean are needed.

    >>> precise_enough([10.0, 10.1, 9.9, 10.0], 0.05)
    True
    >>> precise_enough([1.0, 5.0], 0.05)
    False
    """
    x = np.array([v for v in values if v is not None], dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n < 2:
        return False
    mean = float(x.mean())
    if mean == 0.0:
        return False
    half = float(t_quantile(confidence, n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
    return half / abs(mean) <= precision


# -- statistics -------------------------------------------------------------------------------
# t_quantile lives in simsys.analysis (numpy only), shared with single-run intervals.


# -- the result -------------------------------------------------------------------------------
class Sweep:
    """The runs of a sweep and their aggregation.

    Attributes
    ----------
    runs : pandas.DataFrame
        One row per run, sorted by point and replication: ``point`` (index into
        :attr:`points`), one column per grid key (its value; lists and mappings as JSON text),
        ``replication``, ``seed``, ``status`` ('ok' or 'error'), ``error`` (the message, or
        None), ``wall_time`` (seconds), then every figure of ``Result.summary()`` flattened with
        dots (``latency.p99``, ``services.web.availability``; lists such as
        ``services.web.time_with_up`` as JSON text), then ``point_key``.
    points : list of dict
        The grid points, in order; ``grid_keys`` their keys.
    scenario : dict
        The base scenario as plain data; ``seed`` the base seed.
    directory : pathlib.Path or None
        Where the sweep was saved.
    """

    def __init__(self, runs: pd.DataFrame, meta: Mapping[str, Any], directory: Path | None = None):
        self.runs = runs
        self.meta = dict(meta)
        self.directory = directory
        self.points: list[dict[str, Any]] = list(meta["points"])
        self.grid_keys: list[str] = list(meta["grid_keys"])
        self.scenario: dict[str, Any] = meta["scenario"]
        self.seed: int = int(meta["seed"])
        self.replications: int = int(meta["replications"])

    # -- reading back -----------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str | Path) -> Sweep:
        """Read a sweep directory written with ``out=`` (finished or not)."""
        return load_sweep(directory)

    # -- figures ------------------------------------------------------------------------------
    @property
    def metrics(self) -> list[str]:
        """The numeric figures of the runs, in column order (what :meth:`table` aggregates)."""
        skip = {*BOOK, *self.grid_keys, "point_key"}
        return [c for c in self.runs.columns if c not in skip
                and pd.api.types.is_numeric_dtype(self.runs[c])
                and not pd.api.types.is_bool_dtype(self.runs[c])]

    @property
    def failures(self) -> pd.DataFrame:
        """The rows of runs that failed (``status == 'error'``)."""
        return self.runs[self.runs["status"] != "ok"]

    def table(
        self,
        metrics: Iterable[str] | str | None = None,
        *,
        wide: bool = False,
        confidence: float = 0.95,
    ) -> pd.DataFrame:
        """Mean, standard deviation, n and a t confidence interval per grid point and figure.

        Only runs with status 'ok' count; a figure that is missing (None) in a run is left out
        of that figure's n.

        Parameters
        ----------
        metrics
            Figures to aggregate (default: every numeric figure, :attr:`metrics`).
        wide
            False (default): long/tidy, one row per point and figure, columns ``point``, the
            grid keys, ``metric``, ``n``, ``mean``, ``std``, ``half_width``, ``ci_low``,
            ``ci_high``. True: one row per point (indexed by the grid keys, or ``point`` when
            there is no grid) and MultiIndex columns ``(metric, statistic)``.
        confidence
            Of the two-sided Student t interval ``mean ± t·std/√n``.
        """
        if isinstance(metrics, str):
            metrics = [metrics]
        metrics = list(self.metrics if metrics is None else metrics)
        missing = [m for m in metrics if m not in self.runs.columns]
        if missing:
            raise KeyError(f"no figure {missing[0]!r} in the runs; figures are: {', '.join(self.metrics)}")
        ok = self.runs[self.runs["status"] == "ok"]
        values = ok[["point", *metrics]].copy()
        for m in metrics:
            values[m] = pd.to_numeric(values[m], errors="coerce").astype(float)
        grouped = values.groupby("point", sort=True)[metrics]
        index = pd.RangeIndex(len(self.points), name="point")
        n = grouped.count().reindex(index, fill_value=0)
        mean = grouped.mean().reindex(index)
        std = grouped.std(ddof=1).reindex(index)
        q = t_quantile(confidence, n.to_numpy() - 1)
        half = pd.DataFrame(q * std.to_numpy() / np.sqrt(np.where(n.to_numpy() > 0, n.to_numpy(), np.nan)),
                            index=index, columns=metrics)
        stats = {"n": n, "mean": mean, "std": std, "half_width": half,
                 "ci_low": mean - half, "ci_high": mean + half}
        shown = _column_values(self.grid_keys, self.points)
        long = pd.concat(
            {name: frame.rename_axis(columns="metric").stack(future_stack=True) for name, frame in stats.items()},
            axis=1,
        ).reset_index()
        long["n"] = long["n"].astype(int)
        order = {m: i for i, m in enumerate(metrics)}
        long = long.sort_values(["point", "metric"], key=lambda s: s.map(order) if s.name == "metric" else s,
                                kind="stable", ignore_index=True)
        for key in reversed(self.grid_keys):
            long.insert(1, key, _grid_column([shown[p][key] for p in long["point"]], long.index))
        if not wide:
            return long
        index_cols = self.grid_keys or ["point"]
        out = long.pivot(index=["point", *self.grid_keys], columns="metric",
                         values=["n", "mean", "std", "half_width", "ci_low", "ci_high"])
        out = out.swaplevel(0, 1, axis=1)
        out = out.reindex(columns=pd.MultiIndex.from_product(
            [metrics, ["n", "mean", "std", "half_width", "ci_low", "ci_high"]], names=["metric", "statistic"]))
        out = out.reset_index().set_index(index_cols)
        if "point" not in index_cols:
            out = out.drop(columns="point", level=0)
        return out

    def diff(
        self,
        metric: str,
        a: int | Mapping[str, Any],
        b: int | Mapping[str, Any],
        confidence: float = 0.95,
    ) -> dict[str, float]:
        """Mean of ``metric`` at point ``b`` minus point ``a``, paired by replication, with its CI.

        Replications share their random streams across points, so pairing removes the common
        noise. ``a`` and ``b`` are point indices or mappings of grid values.
        """
        pa_, pb = self._point(a), self._point(b)
        ok = self.runs[self.runs["status"] == "ok"]
        x = ok[ok["point"] == pa_].set_index("replication")[metric].astype(float)
        y = ok[ok["point"] == pb].set_index("replication")[metric].astype(float)
        d = (y - x).dropna()
        n = len(d)
        mean = float(d.mean()) if n else math.nan
        std = float(d.std(ddof=1)) if n > 1 else math.nan
        half = float(t_quantile(confidence, n - 1)) * std / math.sqrt(n) if n > 1 else math.nan
        return {"n": n, "mean": mean, "std": std, "half_width": half,
                "ci_low": mean - half, "ci_high": mean + half}

    def _point(self, which: int | Mapping[str, Any]) -> int:
        if isinstance(which, Mapping):
            matches = [i for i, p in enumerate(self.points) if all(p.get(k) == v for k, v in which.items())]
            if len(matches) != 1:
                raise KeyError(f"{dict(which)} matches {len(matches)} grid points, expected one")
            return matches[0]
        if not 0 <= int(which) < len(self.points):
            raise IndexError(f"no grid point {which}; there are {len(self.points)}")
        return int(which)

    def overview(self, metrics: Iterable[str] | None = None, confidence: float = 0.95) -> pd.DataFrame:
        """One row per point, one text column per figure: ``mean ± half-width``, plus run counts.

        What the command line prints; ``metrics`` defaults to the headline figures
        (:data:`HEADLINE` and each service's availability).
        """
        metrics = list(metrics) if metrics is not None else self.headline()
        long = self.table(metrics, confidence=confidence)
        cells = [fmt_in_unit(k, m, h) for k, m, h in
                 zip(long["metric"], long["mean"], long["half_width"], strict=True)]
        long = long.assign(cell=cells)
        out = long.pivot(index="point", columns="metric", values="cell")[metrics]
        out.columns = [column_header(m).replace(m, _short_key(m), 1) for m in metrics]
        counts = self.runs.groupby("point")["status"].agg(
            runs="size", failed=lambda s: int((s != "ok").sum()))
        out = out.join(counts.reindex(out.index, fill_value=0))
        shown = _column_values(self.grid_keys, self.points)
        for key in reversed(self.grid_keys):
            out.insert(0, _short_key(key),
                       _grid_column([shown[p][key] for p in out.index], out.index))
        out.columns.name = None
        return out

    def headline(self) -> list[str]:
        """Headline figures present in the runs: throughput, errors, latency, availability."""
        cols = self.metrics
        extra = [c for c in cols if c.startswith("services.") and c.endswith(".availability")]
        return [c for c in HEADLINE if c in cols] + extra

    # -- display ------------------------------------------------------------------------------
    @cached_property
    def plot(self) -> Any:
        """Plotting accessor (``simsys.plot.SweepPlots``), when the plotting module provides it."""
        try:
            from .plot import SweepPlots  # type: ignore[attr-defined]
        except ImportError:
            raise AttributeError("sweep plots are not available in this version of simsys") from None
        return SweepPlots(self)

    def __len__(self) -> int:
        return len(self.runs)

    def __repr__(self) -> str:
        failed = int((self.runs["status"] != "ok").sum()) if len(self.runs) else 0
        where = f" in {self.directory}" if self.directory else ""
        name = self.scenario.get("name", "scenario")
        return (f"<Sweep {name!r} {len(self.points)} point(s), {len(self.runs)} runs "
                f"({failed} failed), base seed {self.seed}{where}>")

    def _repr_html_(self) -> str:
        import html

        from . import display

        if hasattr(display, "sweep_html"):  # the notebook view shared with reports
            return display.sweep_html(self)
        head = html.escape(repr(self))
        if not len(self.runs):
            return f"<p>{head}</p>"
        return f"<p>{head}</p>" + self.overview().to_html(escape=True)


def _grid_column(values: list[Any], index: pd.Index) -> pd.Series:
    """A grid key's values as a column; where some points lack the key, None stays None."""
    missing = any(v is None for v in values)
    return pd.Series(values, index=index, dtype=object if missing else None)


def _short_key(key: str, width: int = 18) -> str:
    """A grid key short enough for a table column: ``services.catalog.replicas`` →
    ``catalog.replicas`` (its last parts, as many as fit)."""
    parts = key.split(".")
    short = parts[-1]
    for part in reversed(parts[:-1]):
        if len(part) + 1 + len(short) > width:
            break
        short = f"{part}.{short}"
    return short


def _finish_frame(rows: Iterable[dict[str, Any]], keys: list[str], points: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows → the ``Sweep.runs`` frame: ordered columns, sorted by point and replication."""
    index = {_point_key(p): i for i, p in enumerate(points)}
    shown = _column_values(keys, points)
    rows = list(rows)
    df = pd.DataFrame.from_records(rows) if rows else pd.DataFrame(columns=["point_key", "replication"])
    for col in (*BOOK, "point_key"):
        if col not in df:
            df[col] = pd.Series([None] * len(df), dtype=object)
    df["point"] = df["point_key"].map(index).astype("int64")
    for key in keys:
        df[key] = _grid_column([shown[p][key] for p in df["point"]], df.index)
    figures = [c for c in df.columns if c not in (*BOOK, *keys, "point_key")]
    for col in figures:  # a figure None in every row is still a number column (all NaN)
        if df[col].dtype == object and df[col].isna().all():
            df[col] = df[col].astype(float)
    df["replication"] = df["replication"].astype("int64")
    df["seed"] = df["seed"].astype("int64")
    df["error"] = df["error"].astype(object).where(df["error"].notna(), None)
    df = df[["point", *keys, "replication", "seed", "status", "error", "wall_time", *figures, "point_key"]]
    return df.sort_values(["point", "replication"], kind="stable", ignore_index=True)


def load_sweep(directory: str | Path) -> Sweep:
    """Read a sweep directory back: its ``sweep.json`` and every row in ``runs/``.

    Only runs of the recorded grid are kept, up to the replication count recorded per point
    (when the sweep finished) or every replication found (when it was interrupted).
    """
    out = Path(directory)
    try:
        meta = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError([Problem("", "not a sweep directory (no sweep.json)", str(out))]) from None
    except json.JSONDecodeError as exc:
        raise ScenarioError([Problem("", f"sweep.json is not valid JSON: {exc}", str(out))]) from None
    problem = _meta_problem(meta)
    if problem:
        raise ScenarioError([Problem("", f"sweep.json {problem}; not a sweep directory "
                                         "written by simsys sweep", str(out))])
    df = _read_parts(out / "runs")
    keys, points = meta["grid_keys"], meta["points"]
    index = {_point_key(p): i for i, p in enumerate(points)}
    counts = meta.get("replications_per_point")
    keep = df["point_key"].isin(index)
    if counts is not None and len(df):
        limit = df["point_key"].map(lambda k: counts[index[k]] if k in index else -1)
        keep &= df["replication"] < limit
    if len(df):
        expected = [replication_seed(meta["seed"], r) for r in df["replication"]]
        keep &= df["seed"].astype("int64").to_numpy() == np.array(expected, dtype=np.int64)
    rows = df[keep].to_dict("records")
    for row in rows:
        for k, v in list(row.items()):
            if isinstance(v, float) and math.isnan(v):
                row[k] = None
    return Sweep(_finish_frame(rows, keys, points), meta, out)


def _meta_problem(meta: Any) -> str | None:
    """What is wrong with a ``sweep.json`` read back, or None."""
    if not isinstance(meta, dict):
        return f"holds {type(meta).__name__}, expected a JSON object"
    for key, kind in (("grid_keys", list), ("points", list), ("seed", int)):
        if not isinstance(meta.get(key), kind):
            return f"has no {key!r} ({kind.__name__})"
    if not all(isinstance(p, dict) for p in meta["points"]):
        return "has points that are not objects"
    return None


# -- the driver -------------------------------------------------------------------------------
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
    base, scenario, source = _base(spec, overrides)
    keys, points = _points(grid)
    _check_points(base, scenario, points)
    if metric:
        _check_metric_name(base, metric)
    if not isinstance(replications, int) or isinstance(replications, bool) or replications < 1:
        raise ScenarioError([Problem("replications", f"expected a whole number ≥ 1, got {replications!r}")])
    base_seed = scenario.seed if seed is None else seed
    if not isinstance(base_seed, int) or isinstance(base_seed, bool) or base_seed < 0:
        raise ScenarioError([Problem("seed", f"expected a whole number ≥ 0, got {base_seed!r}")])
    if precision is not None:
        if not (isinstance(precision, int | float) and 0 < precision < 1):
            raise ScenarioError([Problem("precision", f"expected a fraction between 0 and 1 (5% = 0.05), got {precision!r}")])
        if not metric:
            raise ScenarioError([Problem("metric", "precision needs a metric, e.g. latency.p99")])
        if replications < 2:
            raise ScenarioError([Problem("replications", "precision needs at least 2 replications per point to start")])
        batch = min(replications, 10) if batch is None else batch
        max_replications = max(10 * replications, 100) if max_replications is None else max_replications
        if not isinstance(batch, int) or batch < 1:
            raise ScenarioError([Problem("batch", f"expected a whole number ≥ 1, got {batch!r}")])
        if not isinstance(max_replications, int) or max_replications < replications:
            raise ScenarioError([Problem("max_replications", f"expected a whole number ≥ replications ({replications}), got {max_replications!r}")])
    else:
        max_replications = replications
        batch = batch or 1
    if not 0 < confidence < 1:
        raise ScenarioError([Problem("confidence", f"expected a fraction between 0 and 1, got {confidence!r}")])
    executors = _Executors(jobs, scheduler, executor, scheduler_timeout)

    point_keys = [_point_key(p) for p in points]
    index = {k: i for i, k in enumerate(point_keys)}
    meta: dict[str, Any] = {
        "format": FORMAT,
        "source": source,
        "scenario": base,
        "grid": _plain(grid, "grid") if grid is not None else None,
        "grid_keys": keys,
        "points": points,
        "seed": base_seed,
        "replications": replications,
        "precision": precision,
        "metric": metric,
        "batch": batch if precision is not None else None,
        "max_replications": max_replications if precision is not None else None,
        "confidence": confidence,
        "versions": _versions(),
        "status": "running",
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
        done = _prepare_directory(directory, meta, index, seed_of, retry_errors)
    skipped = len(done)

    plan = _Plan(len(points), replications, done, precision, metric, batch, max_replications, confidence)
    writer = _PartWriter(directory / "runs" if directory is not None else None, flush_every)
    shown = _column_values(keys, points)
    completed = False
    bar = None
    try:
        if plan.queue:
            executors.connect()  # before the progress bar's thread: workers may be forked
        bar = _Bar(progress, plan.total, skipped, sum(1 for row in done.values() if row.get("status") != "ok"))
        _drive(plan, executors, writer, bar, points, point_keys, shown, base, seed_of, before_run,
               collect, run_timeout)
        completed = True
    finally:
        writer.flush()
        executors.close(abort=not completed)
        if bar is not None:
            bar.close()
        meta["status"] = "complete" if completed else "interrupted"
        if completed:
            meta["replications_per_point"] = list(plan.target)
        if directory is not None:
            _write_json(directory / "sweep.json", meta)
    final = [done[(p, r)] for p in range(len(points)) for r in range(plan.target[p])]
    runs = _finish_frame(final, keys, points)
    result = Sweep(runs, meta, directory)
    if directory is not None:
        _write_parquet(runs, directory / "runs.parquet")
        _write_parquet(result.table(), directory / "table.parquet")
    return result


# `simsys.sweep` is this function once the package is imported; keep the reader reachable.
sweep.load_sweep = load_sweep  # type: ignore[attr-defined]
sweep.Sweep = Sweep  # type: ignore[attr-defined]


def _prepare_directory(
    directory: Path,
    meta: dict[str, Any],
    index: Mapping[str, int],
    seed_of: Callable[[int], int],
    retry_errors: bool,
) -> dict[tuple[int, int], dict[str, Any]]:
    """Check OUT belongs to this sweep, write sweep.json, and return the runs already there."""
    if directory.exists() and not directory.is_dir():
        raise ScenarioError([Problem("out", "exists and is not a directory", str(directory))])
    old_path = directory / "sweep.json"
    if old_path.exists():
        try:
            old = json.loads(old_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = None
        if old is not None:
            same = (_point_key(old.get("scenario", {})) == _point_key(meta["scenario"])
                    and old.get("seed") == meta["seed"])
            if not same:
                raise ScenarioError([Problem(
                    "out", "holds a sweep of another scenario or base seed (see its sweep.json); "
                    "choose another directory or remove it", str(directory))])
            meta["created_at"] = old.get("created_at")
    meta.setdefault("created_at", None)
    meta["created_at"] = meta["created_at"] or time.strftime("%Y-%m-%dT%H:%M:%S%z")
    runs_dir = directory / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    for tmp in [*leftovers(runs_dir), *leftovers(directory)]:  # from a sweep killed mid-write
        tmp.unlink(missing_ok=True)
    _write_json(old_path, meta)
    done: dict[tuple[int, int], dict[str, Any]] = {}
    df = _read_parts(runs_dir, quarantine=True)
    if not len(df):
        return done
    for row in df.to_dict("records"):
        p = index.get(row["point_key"])
        r = int(row["replication"])
        if p is None or int(row["seed"]) != seed_of(r):
            continue
        if retry_errors and row.get("status") != "ok":
            continue
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        done[(p, r)] = clean
    return done


class _Bar:
    """Progress: a tqdm bar on stderr (runs done, failures, time left), or a callback."""

    def __init__(self, progress: Progress, total: int, done: int, failed: int):
        self.callback = progress if callable(progress) and progress is not True else None
        self.done, self.failed, self.total = done, failed, total
        self.bar = None
        show = progress is True or (progress is None and _interactive())
        if show:
            from .progress import tqdm_class

            tqdm = tqdm_class()
            self.bar = tqdm(total=total, initial=done, unit="run", desc="sweep", file=sys.stderr,
                            dynamic_ncols=True, smoothing=0.1)
            self.bar.set_postfix(failed=failed, refresh=False)

    def update(self, total: int, ok: bool) -> None:
        self.done += 1
        self.failed += not ok
        if self.bar is not None:
            if total != self.total:
                self.bar.total = total
            if not ok:
                self.bar.set_postfix(failed=self.failed, refresh=False)
            self.bar.update(1)
        self.total = total
        if self.callback is not None:
            self.callback(self.done, total, self.failed)

    def say(self, message: str) -> None:
        """A note for the user on stderr, above the bar when there is one."""
        if self.bar is not None:
            self.bar.write(f"simsys: {message}", file=sys.stderr)
        else:
            print(f"simsys: {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _interactive() -> bool:
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _drive(
    plan: _Plan,
    executors: _Executors,
    writer: _PartWriter,
    bar: _Bar,
    points: list[dict[str, Any]],
    point_keys: list[str],
    shown: list[dict[str, Any]],
    base: dict[str, Any],
    seed_of: Callable[[int], int],
    before_run: Callable[[Mapping[str, Any]], None] | None,
    collect: Callable[[Any], Mapping[str, Any]] | None,
    run_timeout: float | None = None,
) -> None:
    """Keep the executor busy until the plan is done; record every row as it arrives."""
    if not plan.queue:
        return
    executors.connect()
    window = max(2, 2 * executors.workers)
    inflight: dict[cf.Future, tuple[int, int]] = {}
    suspects: deque[tuple[int, int]] = deque()  # in flight when a worker died; rerun alone
    alone: set[tuple[int, int]] = set()
    broken = False
    last_done = last_news = time.monotonic()
    executors.news(0.0)  # the workers there at the start, to tell later which were lost

    def task(p: int, r: int) -> dict[str, Any]:
        t: dict[str, Any] = {
            "scenario": base, "overrides": points[p], "seed": seed_of(r),
            "point_key": point_keys[p], "replication": r,
        }
        if before_run is not None:
            t["before_run"] = before_run
        if collect is not None:
            t["collect"] = collect
        if run_timeout is not None:
            t["run_timeout"] = run_timeout
        return t

    def record(p: int, r: int, row: dict[str, Any]) -> None:
        row.update(shown[p])
        writer.add(row)
        plan.record(p, r, row)
        bar.update(plan.total, row.get("status") == "ok")

    def error_row(p: int, r: int, message: str) -> dict[str, Any]:
        return {"point_key": point_keys[p], "replication": r, "seed": seed_of(r),
                "status": "error", "error": message, "wall_time": math.nan}

    while True:
        # Fill the window: normally up to 2 runs per worker; suspects one at a time.
        while not broken:
            if suspects or alone & set(inflight.values()):
                if inflight or not suspects:
                    break
                item = suspects.popleft()
                alone.add(item)
            else:
                if len(inflight) >= window:
                    break
                item = plan.next()
                if item is None:
                    break
            try:
                future = executors.executor.submit(_execute, task(*item))
            except cf.BrokenExecutor:
                if item in alone:
                    suspects.appendleft(item)
                    alone.discard(item)
                else:
                    plan.queue.appendleft(item)
                broken = True
                break
            inflight[future] = item
        if not inflight:
            if broken:
                executors.replace()
                broken = False
                continue
            if plan.queue or suspects:
                continue
            return
        timeout = writer.due()
        done, _ = cf.wait(list(inflight), timeout=1.0 if timeout is None else max(timeout, 0.01),
                          return_when=cf.FIRST_COMPLETED)
        now = time.monotonic()
        if done:
            last_done = now
        if now - last_news >= 2.0:
            last_news = now
            for message in executors.news(now - last_done):
                bar.say(message)
        for future in done:
            p, r = item = inflight.pop(future)
            try:
                exc = future.exception()
            except cf.CancelledError as cancelled:
                exc = cancelled
            if exc is None:
                alone.discard(item)
                record(p, r, future.result())
            elif isinstance(exc, cf.BrokenExecutor):
                broken = True
                if item in alone:  # it ran alone and its worker died: it is the culprit
                    alone.discard(item)
                    record(p, r, error_row(p, r, f"worker process died during the run ({_message(exc)})"))
                else:
                    suspects.append(item)
            elif isinstance(exc, Exception):
                alone.discard(item)
                record(p, r, error_row(p, r, _message(exc)))
            else:  # KeyboardInterrupt/SystemExit inside a worker: not a result, stop
                raise exc
        writer.maybe_flush()
