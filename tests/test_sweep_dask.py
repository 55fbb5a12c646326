"""Sweeps on Dask give the same numbers as local sweeps, bit for bit.

One test starts a real scheduler and two single-thread workers (``dask scheduler`` and
``dask worker`` from this environment, on 127.0.0.1) and stops them afterwards whatever
happens; another uses an in-process LocalCluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from simsys.sweeping import sweep

distributed = pytest.importorskip("distributed")

TINY = {
    "duration": "200s",
    "services": {"web": {"workers": 2, "service_time": {"dist": "exponential", "mean": "10ms"}}},
    "workload": [{"type": "poisson", "rate": "50/s", "target": "web"}],
}
GRID = {"services.web.workers": [1, 2], "services.web.queue": [2, 10]}
REPLICATIONS = 2


def same(a, b) -> None:
    pd.testing.assert_frame_equal(a.table(), b.table(), check_exact=True)
    pd.testing.assert_frame_equal(a.runs.drop(columns="wall_time"), b.runs.drop(columns="wall_time"),
                                  check_exact=True)


@pytest.fixture(scope="module")
def local():
    """The reference: the sweep in this process (jobs=1)."""
    return sweep(TINY, GRID, REPLICATIONS, jobs=1, progress=False)


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in reversed(procs):  # only the process groups this fixture started
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in reversed(procs):
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """A real Dask scheduler and two one-thread workers on 127.0.0.1: (tcp:// address, file)."""
    where = tmp_path_factory.mktemp("dask")
    dask = str(Path(sys.executable).with_name("dask"))
    file = where / "scheduler.json"
    log = open(where / "dask.log", "w")  # noqa: SIM115 - closed in finally
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> None:
        procs.append(subprocess.Popen([dask, *args], cwd=where, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))

    try:
        start("scheduler", "--no-dashboard", "--host", "127.0.0.1", "--port", "0",
              "--scheduler-file", str(file))
        deadline = time.monotonic() + 60
        while not file.exists() or not file.read_text().strip():
            assert procs[0].poll() is None, (where / "dask.log").read_text()
            assert time.monotonic() < deadline, "the Dask scheduler did not start"
            time.sleep(0.1)
        for i in range(2):
            start("worker", "--scheduler-file", str(file), "--nworkers", "1", "--nthreads", "1",
                  "--no-dashboard", "--host", "127.0.0.1", "--local-directory", str(where / f"w{i}"))
        with distributed.Client(scheduler_file=str(file), timeout="30s", set_as_default=False) as client:
            client.wait_for_workers(2, timeout=90)
        yield json.loads(file.read_text())["address"], str(file)
    finally:
        _stop(procs)
        log.close()


def test_jobs_1_jobs_2_and_a_dask_cluster_agree_bit_for_bit(local, scheduler):
    address, file = scheduler
    assert address.startswith("tcp://127.0.0.1:")
    two = sweep(TINY, GRID, REPLICATIONS, jobs=2, progress=False)
    cluster = sweep(TINY, GRID, REPLICATIONS, scheduler=address, progress=False)
    assert len(local.runs) == 8 and set(local.runs["status"]) == {"ok"}
    same(local, two)
    same(local, cluster)
    same(local, sweep(TINY, GRID, REPLICATIONS, scheduler=file, progress=False))  # scheduler file


def test_in_process_local_cluster_agrees(local):
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        threaded = sweep(TINY, GRID, REPLICATIONS, executor=client.get_executor(), progress=False)
    same(local, threaded)


def test_compare_on_a_dask_cluster_agrees_with_jobs_1(scheduler, tmp_path):
    """``simsys compare --scheduler`` (a comparison is a sweep over the variant axis)."""
    from simsys.comparing import compare

    address, _ = scheduler
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(json.dumps(TINY))
    b.write_text(json.dumps({**TINY, "services": {"web": {**TINY["services"]["web"], "workers": 1}}}))
    proc = subprocess.run([sys.executable, "-m", "simsys", "compare", str(a), str(b), "-r", "3",
                           "--scheduler", address, "--json", "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    here = compare([str(a), str(b)], 3, jobs=1, progress=False)
    assert json.loads(proc.stdout) == json.loads(json.dumps(here.to_dict()))
