"""Sweeps and reports against runs that never end, damaged files and planted symlinks (issue 12).

A run that hangs must not stall the sweep (``run_timeout``, on the process pool, in this process
and on Dask); a damaged part file must not stop a resume or a report; temporary files must not
follow a symlink left at a fixed name; a sweep whose every run failed exits 3; a damaged run or
sweep directory gives ``simsys report`` exit 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from simsys.sweeping import load_sweep, sweep

SIMSYS = Path(sys.executable).parent / "simsys"
TINY = {"name": "tiny", "duration": "20s",
        "services": {"web": {"service_time": {"dist": "exponential", "mean": "5ms"}}},
        "workload": [{"type": "poisson", "rate": "20/s", "target": "web"}]}
# a point whose runs take minutes: 10^9 events, under the run budget
ENDLESS = {"duration": "2000h"}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SIMSYS_DEBUG"}
    return subprocess.run([str(SIMSYS), *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**env, "MPLBACKEND": "Agg"})


def hang(task) -> None:  # a before_run hook that never returns (module level: picklable)
    if task["overrides"].get("services.web.workers") == 2:
        time.sleep(3600)


# -- run_timeout ---------------------------------------------------------------------------------
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_run_over_the_time_limit_becomes_a_timeout_row(jobs):
    started = time.perf_counter()
    sw = sweep(TINY, [{}, ENDLESS], replications=2, jobs=jobs, progress=False, run_timeout=1.5)
    took = time.perf_counter() - started
    status = sw.runs.groupby("point")["status"].agg(list).to_dict()
    assert status == {0: ["ok", "ok"], 1: ["timeout", "timeout"]}
    assert sw.runs.loc[sw.runs["status"] == "timeout", "error"].str.contains(
        "longer than 1.5 s").all()
    assert took < 20


def test_a_run_stuck_outside_the_simulation_is_stopped_in_a_pool_worker():
    # the hook sleeps where no progress callback can see it: the worker's alarm stops it
    started = time.perf_counter()
    sw = sweep(TINY, {"services.web.workers": [1, 2]}, replications=2, jobs=2, progress=False,
               run_timeout=1.0, before_run=hang)
    assert sorted(sw.runs["status"]) == ["ok", "ok", "timeout", "timeout"]
    assert time.perf_counter() - started < 30


def test_run_timeout_on_dask_threads():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        sw = sweep(TINY, [{}, ENDLESS], replications=1, executor=client.get_executor(),
                   progress=False, run_timeout=1.5)
    assert list(sw.runs["status"]) == ["ok", "timeout"]


def test_dask_says_when_no_worker_is_there_and_goes_on_when_one_comes(monkeypatch, capfd):
    distributed = pytest.importorskip("distributed")
    import simsys.sweeping.executors as sweep_module
    monkeypatch.setattr(sweep_module, "NO_WORKERS_WARNING", 1.0)
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        later = threading.Timer(6.0, lambda: cluster.scale(1))
        later.start()
        try:
            sw = sweep(TINY, None, replications=2, executor=client.get_executor(), progress=False)
        finally:
            later.cancel()
    assert list(sw.runs["status"]) == ["ok", "ok"]
    assert "no Dask worker has been connected to the scheduler" in capfd.readouterr().err


def test_dask_says_when_a_worker_is_lost_and_its_runs_are_done_elsewhere(capfd):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        doomed = sorted(client.nthreads())[0]

        def lose_a_worker(done: int, total: int, failed: int) -> None:
            if done == 1:  # once the sweep is under way, a worker leaves
                client.retire_workers([doomed])

        sw = sweep({**TINY, "duration": "3h"}, {"services.web.workers": [1, 2, 3, 4]},
                   replications=2, executor=client.get_executor(), progress=lose_a_worker)
    assert sw.runs["status"].tolist() == ["ok"] * 8
    assert f"Dask worker {doomed} was lost" in capfd.readouterr().err


# -- files ---------------------------------------------------------------------------------------
def test_a_damaged_part_is_set_aside_and_its_runs_done_again(tmp_path, capfd):
    grid = {"services.web.workers": [1, 2]}
    whole = sweep(TINY, grid, replications=2, jobs=1, progress=False)
    out = tmp_path / "sw"
    sweep(TINY, grid, replications=2, jobs=1, progress=False, out=out, flush_every=0)
    parts = sorted((out / "runs").glob("part-*.parquet"))
    assert len(parts) >= 2
    parts[0].write_bytes(parts[0].read_bytes()[:60])  # truncated, as a crash leaves it
    (out / "runs" / "part-empty.parquet").write_bytes(b"")
    (out / "runs.parquet").unlink()
    resumed = sweep(TINY, grid, replications=2, jobs=1, progress=False, out=out)
    err = capfd.readouterr().err
    assert "not a readable part file" in err and "its runs will be done again" in err
    assert (out / "runs" / (parts[0].name + ".corrupt")).exists()
    pd.testing.assert_frame_equal(whole.table(), resumed.table(), check_exact=True)
    pd.testing.assert_frame_equal(whole.table(), load_sweep(out).table(), check_exact=True)


def test_temporary_files_do_not_follow_a_planted_symlink(tmp_path):
    out = tmp_path / "sw"
    (out / "runs").mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in ("sweep.json.tmp", ".sweep.json.tmp", "runs.parquet.tmp"):
        (out / name).symlink_to(victim)
    sweep(TINY, None, replications=2, jobs=1, progress=False, out=out)
    assert victim.read_text() == "precious"
    assert load_sweep(out).runs["status"].tolist() == ["ok", "ok"]


def test_a_sweep_whose_every_run_failed_exits_3(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("duration: 2000h\nservices: {web: {service_time: 5ms}}\n"
                    "workload: [{type: poisson, rate: 20/s, target: web}]\n")
    proc = cli("sweep", str(path), "--grid", "services.web.workers=1,2", "-r", "1", "--jobs", "1",
               "--run-timeout", "0.5", "--no-progress")
    assert proc.returncode == 3, proc.stderr
    assert "every one of the 2 runs failed" in proc.stderr
    assert "Empty DataFrame" not in proc.stdout and "Traceback" not in proc.stderr


# -- simsys report on damaged directories -------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    (root / "tiny.yaml").write_text("duration: 10s\nservices: {web: {service_time: 5ms}}\n"
                                    "workload: [{type: poisson, rate: 20/s, target: web}]\n")
    assert cli("run", "tiny.yaml", "-q", "--out", "run", cwd=root).returncode == 0
    assert cli("sweep", "tiny.yaml", "--grid", "services.web.workers=1,2", "-r", "1",
               "--jobs", "1", "--out", "sweep", "--no-progress", cwd=root).returncode == 0
    return root


def damaged(saved: Path, tmp_path: Path, kind: str, name: str, content: bytes | None) -> Path:
    import shutil

    d = tmp_path / kind
    shutil.copytree(saved / kind, d)
    target = d / name
    target.write_bytes(content if content is not None else target.read_bytes()[:100])
    return d


@pytest.mark.parametrize("kind, name, content, needle", [
    ("run", "summary.json", b"[]", "summary.json: holds list"),
    ("run", "summary.json", b'{"latency": 5, "requests": []}', "do not have the shape"),
    ("run", "requests.parquet", None, "requests.parquet: not a readable parquet table"),
    ("sweep", "sweep.json", b"{}", "sweep.json has no 'grid_keys'"),
    ("sweep", "sweep.json", b"[1, 2]", "sweep.json holds list"),
])
def test_report_on_a_damaged_directory_exits_2(saved, tmp_path, kind, name, content, needle):
    proc = cli("report", str(damaged(saved, tmp_path, kind, name, content)))
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr


def test_report_to_an_impossible_place_exits_2(saved):
    proc = cli("report", str(saved / "run"), "-o", "/dev/null/x.html")
    assert proc.returncode == 2
    assert "cannot write /dev/null/x.html" in proc.stderr and "Traceback" not in proc.stderr
