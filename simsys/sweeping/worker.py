"""One run in a worker process: plain data in, one flat row out (the summary's figures, or the
error), under an optional wall-clock limit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..result import flatten

#: Summary keys that describe the run's input, not its outcome; left out of the rows.
INPUTS = ("name", "seed", "duration", "warmup")


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


def simulate(task: Mapping[str, Any]) -> dict[str, Any]:
    """Run one task and return its flat figures (the summary, plus ``collect``'s if given)."""
    from ..runner import run

    limit = task.get("run_timeout")
    result = run(task["scenario"], seed=task["seed"], overrides=task["overrides"],
                 progress=None if limit is None else _deadline(limit))
    figures = summary_figures(result.summary())
    collect = task.get("collect")
    if collect is not None:
        figures.update(collect(result))
    return figures


def summary_figures(summary: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flatten(dict(summary)).items():
        if key in INPUTS:
            continue
        out[key] = json.dumps(value) if isinstance(value, list | tuple | dict) else value
    return out


def execute(task: Mapping[str, Any]) -> dict[str, Any]:
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
            figures = simulate(task)
        row.update(status="ok", error=None)
        row.update(figures)
    except RunTimeout as exc:
        row.update(status="timeout", error=str(exc))
    except Exception as exc:  # a failed run is a result, not the end of the sweep
        row.update(status="error", error=error_message(exc))
    row["wall_time"] = time.perf_counter() - started
    return row


def error_message(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 2000 else text[:1997] + "..."


def init_worker() -> None:
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
