"""Where runs go: this process (``jobs=1``), a local process pool, a Dask cluster or any
:class:`concurrent.futures.Executor`; replaced when its processes die.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ScenarioError
from .worker import error_message, init_worker

NO_WORKERS_WARNING = 10.0  # seconds without a Dask worker and without a finished run, then say so


class InlineExecutor(cf.Executor):
    """Runs each call at submit time in this process (``jobs=1``): same path, no processes."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


def process_pool(workers: int) -> cf.ProcessPoolExecutor:
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
        ctx.set_forkserver_preload(["simsys.sweeping.worker"])
    else:
        ctx = mp.get_context("spawn")
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init_worker)
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


class Executors:
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
            self._executor = InlineExecutor()
            self.workers = 1
        else:
            self.workers = self.jobs or os.cpu_count() or 1
            self._executor = process_pool(self.workers)

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
                                f"{error_message(exc)}") from None
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
        self._executor = process_pool(self.workers)
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
