"""Sweeps as processes: killed halfway they lose nothing and resume; the parent stays small.

``simsys sweep`` runs in a subprocess (``python -m simsys sweep``, the same command the
``simsys`` group registers) and is stopped with SIGINT or SIGKILL once a few part files exist.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import psutil
import pytest

from simsys.sweeping import load_sweep, sweep

SCENARIO = {
    "duration": "200s",
    "services": {"web": {"workers": 2, "service_time": {"dist": "exponential", "mean": "10ms"}}},
    "workload": [{"type": "poisson", "rate": "50/s", "target": "web"}],
}
GRID = {"services.web.workers": [1, 2, 3]}
REPLICATIONS = 24
TOTAL = 3 * REPLICATIONS


@pytest.fixture(scope="module")
def clean():
    """The sweep run once without interruption."""
    return sweep(SCENARIO, GRID, REPLICATIONS, jobs=2, progress=False)


def command(scenario, out) -> list[str]:
    return [sys.executable, "-m", "simsys", "sweep", str(scenario),
            "--grid", "services.web.workers=1,2,3", "--replications", str(REPLICATIONS),
            "--jobs", "2", "--out", str(out), "--flush-every", "0.1", "--no-progress"]


def parts(out) -> list:
    return sorted((out / "runs").glob("part-*.parquet"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_killed_sweep_leaves_readable_parts_and_the_rerun_completes_it(sig, clean, tmp_path):
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(json.dumps(SCENARIO))
    out = tmp_path / "out"
    proc = subprocess.Popen(command(scenario, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 90
        while len(parts(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            workers = psutil.Process(proc.pid).children(recursive=True) or workers
            time.sleep(0.02)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert "run the same command again" in err and "Traceback" not in err
    else:
        assert proc.returncode == -signal.SIGKILL
    # the workers (and fork server) this sweep started go away with it
    _, alive = psutil.wait_procs(workers, timeout=15)
    for p in alive:  # started by this test; don't leave them behind even when failing
        p.kill()
    assert not alive, f"left behind: {alive}"

    saved = pd.concat([pd.read_parquet(p) for p in parts(out)], ignore_index=True)  # all readable
    assert 0 < len(saved) < TOTAL, f"{len(saved)} of {TOTAL} runs saved when stopped"
    assert not saved.duplicated(["point_key", "replication"]).any()

    rerun = subprocess.run(command(scenario, out), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{TOTAL} runs, {TOTAL} ok, 0 failed" in rerun.stderr
    raw = pd.concat([pd.read_parquet(p) for p in parts(out)], ignore_index=True)
    assert len(raw) == TOTAL and not raw.duplicated(["point_key", "replication"]).any()
    resumed = load_sweep(out)
    pd.testing.assert_frame_equal(resumed.runs.drop(columns="wall_time"),
                                  clean.runs.drop(columns="wall_time"), check_exact=True)
    pd.testing.assert_frame_equal(resumed.table(), clean.table(), check_exact=True)


MEMORY = textwrap.dedent(
    """
    import resource
    from simsys.sweeping import sweep

    TINY = {"duration": "1s",
            "services": {"web": {"workers": 2,
                                 "service_time": {"dist": "exponential", "mean": "10ms"}}},
            "workload": [{"type": "poisson", "rate": "50/s", "target": "web"}]}

    def peak_kib():
        # VmHWM, the resident high-water mark; ru_maxrss would do, but Linux carries it over
        # fork+exec from whatever spawned us (a pytest worker that has grown for minutes)
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    if __name__ == "__main__":
        try:  # start the high-water mark from what this process holds now
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        sw = sweep(TINY, {"services.web.workers": list(range(1, 11))}, replications=100, jobs=2,
                   progress=False)
        assert len(sw.runs) == 1000 and set(sw.runs["status"]) == {"ok"}, sw.runs["error"].unique()
        assert len(sw.table()) == 10 * len(sw.metrics)
        print(peak_kib())
    """
)


def test_a_thousand_runs_keep_the_parent_under_300_mb(tmp_path):
    script = tmp_path / "thousand.py"
    script.write_text(MEMORY)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    peak_mb = int(proc.stdout.split()[-1]) / 1024  # KiB
    assert peak_mb < 300, f"parent peak memory {peak_mb:.0f} MB"


def test_a_killed_comparison_resumes_to_the_same_result(tmp_path):
    """``simsys compare`` runs on the sweep engine: SIGKILLed halfway, the same command again
    finishes it, and the result is the uninterrupted comparison's, bit for bit."""
    from simsys.comparing import compare, load_comparison

    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(json.dumps(SCENARIO))
    b.write_text(json.dumps({**SCENARIO, "services": {"web": {**SCENARIO["services"]["web"], "workers": 3}}}))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "simsys", "compare", str(a), str(b), "-r", str(REPLICATIONS),
           "--jobs", "2", "--out", str(out), "--flush-every", "0.1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while len(parts(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, ("finished before it could be killed", proc.communicate())
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    partial = load_comparison(out)
    assert 0 < len(partial.runs) < 2 * REPLICATIONS
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    done = load_comparison(out)
    reference = compare([str(a), str(b)], REPLICATIONS, jobs=2, progress=False)
    pd.testing.assert_frame_equal(done.runs.drop(columns="wall_time"),
                                  reference.runs.drop(columns="wall_time"), check_exact=True)
    assert done.to_text() == reference.to_text()
