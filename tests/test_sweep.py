"""simsys.sweep: grids, seeds, aggregation, precision, failures, resumable output, command line.

The process-level checks (kill and resume, parent memory) are in test_sweep_kill.py, the Dask
ones in test_sweep_dask.py.
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import simsys
import simsys.sweeping.worker as sweep_module
from simsys import ScenarioError
from simsys.cli import cli
from simsys.result import flatten
from simsys.stats import precise_enough, t_quantile
from simsys.sweeping import Sweep, load_sweep, replication_seed, sweep

TINY = {
    "duration": "200s",
    "services": {"web": {"workers": 2, "service_time": {"dist": "exponential", "mean": "10ms"}}},
    "workload": [{"type": "poisson", "rate": "50/s", "target": "web"}],
}


def tiny(duration: str = "20s") -> dict:
    return {**TINY, "duration": duration}


# -- seeds --------------------------------------------------------------------------------------
def test_replication_seed_is_the_spawned_child_of_the_base_seed():
    for base in (0, 7, 123456789):
        children = np.random.SeedSequence(base).spawn(5)
        assert [replication_seed(base, r) for r in range(5)] == [
            int(c.generate_state(1)[0]) for c in children
        ]


def test_same_replication_shares_its_seed_across_points():
    sw = sweep(tiny(), {"services.web.workers": [1, 2]}, replications=3, jobs=1, seed=5, progress=False)
    seeds = sw.runs.pivot(index="replication", columns="point", values="seed")
    assert (seeds[0] == seeds[1]).all()
    assert list(seeds[0]) == [replication_seed(5, r) for r in range(3)]
    # a replication is exactly simsys.run with its seed
    one = simsys.run(tiny(), seed=replication_seed(5, 2), overrides={"services.web.workers": 2})
    row = sw.runs[(sw.runs["point"] == 1) & (sw.runs["replication"] == 2)].iloc[0]
    assert row["latency.p99"] == one.summary()["latency"]["p99"]


def test_common_random_numbers_narrow_the_ci_of_a_difference():
    grid = {"services.web.service_time.mean": ["10ms", "11ms"]}
    crn = sweep(tiny(), grid, replications=12, jobs=1, progress=False)
    paired = crn.diff("latency.mean", 0, 1)
    a = sweep(tiny(), [grid_point(grid, 0)], replications=12, jobs=1, seed=1, progress=False)
    b = sweep(tiny(), [grid_point(grid, 1)], replications=12, jobs=1, seed=2, progress=False)
    independent = pd.concat([a.runs, b.runs.assign(point=1)], ignore_index=True)
    apart = Sweep(independent, {**crn.meta}).diff("latency.mean", 0, 1)
    assert paired["n"] == apart["n"] == 12
    assert paired["mean"] > 0  # slower service, longer latency
    assert paired["half_width"] < 0.5 * apart["half_width"]


def grid_point(grid: dict, i: int) -> dict:
    (key, values), = grid.items()
    return {key: values[i]}


# -- grids and rows ---------------------------------------------------------------------------
def test_product_grid_rows_have_every_grid_value_seed_and_summary_figure():
    grid = {"services.web.workers": [1, 2], "chaos.monkey.mean_time_between_failures": ["5s", "10s"]}
    sw = sweep(tiny(), grid, replications=2, jobs=1, progress=False)
    runs = sw.runs
    assert len(runs) == 8 and len(sw.points) == 4
    assert sw.points[1] == {"services.web.workers": 1, "chaos.monkey.mean_time_between_failures": "10s"}
    assert list(runs.columns[:8]) == [
        "point", "services.web.workers", "chaos.monkey.mean_time_between_failures",
        "replication", "seed", "status", "error", "wall_time",
    ]
    assert set(runs["status"]) == {"ok"} and runs["error"].isna().all()
    assert (runs["wall_time"] > 0).all()
    summary = flatten(simsys.run(tiny(), seed=0).summary())
    for key in summary:
        if key not in ("name", "seed", "duration", "warmup"):
            assert key in runs.columns, key
    assert runs["services.web.time_with_up"].map(json.loads).map(len).eq(2).all()
    assert runs[["point", "replication"]].values.tolist() == [[p, r] for p in range(4) for r in range(2)]
    # chaos really was on: a failure every few seconds
    assert (runs["incidents.count"] > 0).all()


def test_explicit_points_and_no_grid():
    pts = [{"services.web.workers": 1}, {"services.web.workers": 3, "services.web.queue": 5}]
    sw = sweep(tiny(), pts, replications=2, jobs=1, progress=False)
    assert sw.grid_keys == ["services.web.workers", "services.web.queue"]
    assert sw.runs["services.web.queue"].tolist() == [None, None, 5, 5]
    base = sweep(tiny(), None, replications=3, jobs=1, progress=False)
    assert base.points == [{}] and len(base.runs) == 3
    assert base.table(wide=True).index.name == "point"


def test_table_statistics_by_hand():
    sw = sweep(tiny(), {"services.web.workers": [1, 2]}, replications=4, jobs=1, progress=False)
    long = sw.table()
    assert list(long.columns) == [
        "point", "services.web.workers", "metric", "n", "mean", "std", "half_width", "ci_low", "ci_high"
    ]
    assert set(long["metric"]) == set(sw.metrics)
    assert "wall_time" not in sw.metrics and "seed" not in sw.metrics
    row = long[(long["point"] == 1) & (long["metric"] == "latency.p99")].iloc[0]
    x = sw.runs.loc[sw.runs["point"] == 1, "latency.p99"].to_numpy()
    from scipy import stats

    half = stats.t.ppf(0.975, 3) * x.std(ddof=1) / 2
    assert row["n"] == 4
    assert row["mean"] == pytest.approx(x.mean(), rel=1e-12)
    assert row["std"] == pytest.approx(x.std(ddof=1), rel=1e-12)
    assert row["ci_low"] == pytest.approx(x.mean() - half, rel=1e-12)
    assert row["ci_high"] == pytest.approx(x.mean() + half, rel=1e-12)
    wide = sw.table(["latency.p99", "throughput"], wide=True)
    assert wide.index.name == "services.web.workers" and list(wide.index) == [1, 2]
    assert wide.loc[2, ("latency.p99", "mean")] == row["mean"]
    assert wide.loc[2, ("latency.p99", "n")] == 4
    # a readable summary for the command line and Jupyter
    ov = sw.overview()
    assert list(ov["runs"]) == [4, 4] and "±" in ov.loc[0, "latency.p99 (ms)"]
    # in the unit of its header: milliseconds, with the interval's digits
    mean_ms = float(ov.loc[1, "latency.p99 (ms)"].split(" ± ")[0])
    assert mean_ms == pytest.approx(row["mean"] * 1e3, rel=1e-2)
    assert "web.workers" in ov.columns  # the grid key, shortened to fit
    assert "<table" in sw._repr_html_() and "Sweep" in repr(sw)


def test_t_quantile_fallback_matches_scipy():
    from scipy import stats

    for df in (1, 2, 3, 4, 5, 7, 10, 29, 100, 1000):
        for conf in (0.9, 0.95, 0.99):
            exact = stats.t.ppf(0.5 + conf / 2, df)
            assert t_quantile(conf, df) == pytest.approx(exact, rel=2e-4), (df, conf)
    assert math.isnan(t_quantile(0.95, 0))


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "grid, named",
    [
        ({"services.web.workerz": [1, 2]}, "services.web.workerz"),
        ({"services.wbe.replicas": [1, 2]}, "services.wbe.replicas"),
        ({"services.web.workers": [2, -1]}, "services.web.workers"),
        ({"chaos.monkey.mean_time_between_failures": ["5min", "soon"]}, "chaos.monkey.mean_time_between_failures"),
        ({"services.web.workers": []}, "services.web.workers"),
        ({"seed": [1, 2]}, "seed"),
        ([{"services.web.workers": 1}, {"services.web.workers": 1}], "repeats"),
    ],
)
def test_bad_grid_is_a_scenario_error_naming_the_key_before_any_run(grid, named, monkeypatch):
    def no_runs(task):
        raise AssertionError("no run may start")

    monkeypatch.setattr(sweep_module, "simulate", no_runs)
    with pytest.raises(ScenarioError) as info:
        sweep(tiny(), grid, replications=2, jobs=1, progress=False)
    assert named in str(info.value)


def test_bad_options_are_scenario_errors():
    with pytest.raises(ScenarioError, match="at most one"):
        sweep(tiny(), None, 2, jobs=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ScenarioError, match="metric"):
        sweep(tiny(), None, 2, jobs=1, precision=0.05)
    with pytest.raises(ScenarioError, match="jobs"):
        sweep(tiny(), None, 2, jobs=0)


def test_cli_bad_grid_exits_2_with_the_problem_and_no_traceback(tmp_path):
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(json.dumps(tiny()))
    runner = CliRunner()
    for args, named in [
        (["--grid", "services.web.workerz=1,2"], "services.web.workerz: unknown key"),
        (["--grid", "services.web.workers=1,-2"], "services.web.workers: expected a whole number ≥ 1"),
        (["--grid", "services.web.workers"], "expected key.path=value1,value2"),
        (["--precision", "5%"], "precision needs a metric"),
        (["--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"], "at most one of jobs, scheduler"),
    ]:
        res = runner.invoke(cli, ["sweep", str(scenario), "-r", "2", *args])
        assert res.exit_code == 2, (args, res.output)
        assert named in res.output
        assert "Traceback" not in res.output


def test_cli_unreachable_scheduler_exits_2_within_10_s(tmp_path):
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(json.dumps(tiny()))
    started = time.monotonic()
    res = CliRunner().invoke(cli, ["sweep", str(scenario), "-r", "2", "--scheduler", "tcp://127.0.0.1:9"])
    assert time.monotonic() - started < 10
    assert res.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in res.output
    assert "Traceback" not in res.output


def test_cli_prints_the_table_and_saves(tmp_path):
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(json.dumps(tiny()))
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["sweep", str(scenario), "--grid", "services.web.workers=1,2", "-r", "3",
                                         "--jobs", "1", "--metric", "latency.p99", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "latency.p99" in res.output and "6 runs, 6 ok, 0 failed" in res.output
    assert (out / "runs.parquet").exists() and (out / "table.parquet").exists()


# -- failures ---------------------------------------------------------------------------------
def test_a_run_that_raises_becomes_an_error_row_and_the_rest_complete(monkeypatch, tmp_path):
    real = sweep_module.simulate

    def flaky(task):
        if task["replication"] == 1 and task["overrides"] == {"services.web.workers": 2}:
            raise RuntimeError("injected fault")
        return real(task)

    monkeypatch.setattr(sweep_module, "simulate", flaky)
    sw = sweep(tiny(), {"services.web.workers": [1, 2]}, replications=3, jobs=1, out=tmp_path / "o",
               progress=False)
    bad = sw.runs[sw.runs["status"] == "error"]
    assert len(sw.runs) == 6 and len(bad) == 1
    assert bad.iloc[0][["point", "replication"]].tolist() == [1, 1]
    assert bad.iloc[0]["error"] == "RuntimeError: injected fault"
    assert math.isnan(bad.iloc[0]["latency.p99"])
    t = sw.table("latency.p99")
    assert t["n"].tolist() == [3, 2]
    saved = load_sweep(tmp_path / "o")
    assert saved.runs["status"].tolist().count("error") == 1
    # a rerun keeps the error row; retry_errors runs it again
    monkeypatch.setattr(sweep_module, "simulate", real)
    again = sweep(tiny(), {"services.web.workers": [1, 2]}, replications=3, jobs=1, out=tmp_path / "o",
                  progress=False)
    assert again.runs["status"].tolist().count("error") == 1
    fixed = sweep(tiny(), {"services.web.workers": [1, 2]}, replications=3, jobs=1, out=tmp_path / "o",
                  progress=False, retry_errors=True)
    assert set(fixed.runs["status"]) == {"ok"}
    assert set(load_sweep(tmp_path / "o").runs["status"]) == {"ok"}


def crash_worker(task):
    """before_run hook: the worker running point workers=2, replication 1 dies on the spot."""
    if task["replication"] == 1 and task["overrides"] == {"services.web.workers": 2}:
        os._exit(3)


def test_a_dying_worker_becomes_an_error_row_and_the_sweep_goes_on():
    grid = {"services.web.workers": [1, 2]}
    sw = sweep(tiny(), grid, replications=4, jobs=2, before_run=crash_worker, progress=False)
    assert len(sw.runs) == 8
    bad = sw.runs[sw.runs["status"] == "error"]
    assert bad[["point", "replication"]].values.tolist() == [[1, 1]]
    assert "worker process died" in bad.iloc[0]["error"]
    clean = sweep(tiny(), grid, replications=4, jobs=1, progress=False)
    good = sw.runs["status"] == "ok"
    cols = ["point", "replication", "latency.p99", "throughput"]
    pd.testing.assert_frame_equal(sw.runs.loc[good, cols], clean.runs.loc[good, cols], check_exact=True)


# -- precision --------------------------------------------------------------------------------
def test_precision_stops_at_the_count_the_rule_gives():
    # throughput of a Poisson source over T seconds: mean λ, variance λ/T, so the relative
    # half-width after n runs is about t·/√(λTn): ≈ 10 runs at 50/s, ≈ 26 at 20/s for 2 %.
    grid = {"workload.0.rate": ["50/s", "20/s"]}
    spec, R, batch, cap, target = tiny("20s"), 4, 3, 60, 0.02
    sw = sweep(spec, grid, replications=R, jobs=2, precision=target, metric="throughput",
               batch=batch, max_replications=cap, progress=False)
    # the runs of a fixed sweep are the same numbers (same replication seeds): replay the rule
    longest = int(sw.runs.groupby("point").size().max())
    every = sweep(spec, grid, replications=longest, jobs=1, progress=False)
    for p, rate in enumerate((50.0, 20.0)):
        values = every.runs.loc[every.runs["point"] == p, "throughput"].tolist()
        n = R
        while n < cap and not precise_enough(values[:n], target):
            n = min(n + batch, cap)
            assert n <= len(values), "the sweep stopped before the rule says"
        got = sw.runs[sw.runs["point"] == p]
        assert sorted(got["replication"]) == list(range(n))
        assert got["throughput"].tolist() == values[:n]
        theory = (2.0 * (1 / math.sqrt(rate * 20.0)) / target) ** 2
        assert theory / 2 < n < theory * 2 + batch, (rate, n, theory)
    assert sw.meta["replications_per_point"] == [len(sw.runs[sw.runs["point"] == p]) for p in (0, 1)]


def test_precision_rule():
    assert not precise_enough([1.0], 0.5)
    assert not precise_enough([0.0, 0.0, 0.0], 0.5)
    assert precise_enough([1.0, None, 1.01, 0.99, float("nan")], 0.05)


def test_unknown_precision_metric_is_a_scenario_error():
    with pytest.raises(ScenarioError, match="latency.p97"):
        sweep(tiny(), None, 2, jobs=1, precision=0.1, metric="latency.p97", progress=False)


# -- output directory and resume ------------------------------------------------------------
def test_out_directory_records_the_sweep_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "o"
    grid = {"services.web.workers": [1, 2]}
    first = sweep(tiny(), grid, replications=2, jobs=1, out=out, seed=3, progress=False)
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["scenario"] == tiny() and meta["grid"] == grid and meta["seed"] == 3
    assert meta["replications"] == 2 and meta["status"] == "complete"
    assert set(meta["versions"]) >= {"simsys", "python", "numpy", "simpy"}
    parts = sorted((out / "runs").glob("part-*.parquet"))
    assert parts and sum(len(pd.read_parquet(p)) for p in parts) == 4
    # more replications: only the new ones run
    real, calls = sweep_module.simulate, []

    def counting(task):
        calls.append((task["overrides"]["services.web.workers"], task["replication"]))
        return real(task)

    monkeypatch.setattr(sweep_module, "simulate", counting)
    (out / "runs" / "part-x.parquet.tmp").write_bytes(b"half a file")  # left by a killed sweep
    more = sweep(tiny(), grid, replications=4, jobs=1, out=out, seed=3, progress=False)
    assert sorted(calls) == [(w, r) for w in (1, 2) for r in (2, 3)]
    assert not list((out / "runs").glob("*.tmp"))
    clean = sweep(tiny(), grid, replications=4, jobs=1, seed=3, progress=False)
    pd.testing.assert_frame_equal(more.runs.drop(columns="wall_time"), clean.runs.drop(columns="wall_time"))
    pd.testing.assert_frame_equal(more.table(), clean.table(), check_exact=True)
    back = Sweep.load(out)
    pd.testing.assert_frame_equal(back.runs, more.runs)
    assert back.runs.iloc[:2]["wall_time"].tolist() == first.runs.iloc[:2]["wall_time"].tolist()
    # fewer replications than saved: the sweep is the first two
    calls.clear()
    fewer = sweep(tiny(), grid, replications=2, jobs=1, out=out, seed=3, progress=False)
    assert len(fewer.runs) == 4 and calls == [] and len(load_sweep(out).runs) == 4
    with pytest.raises(ScenarioError, match="another scenario or base seed"):
        sweep(tiny(), grid, replications=2, jobs=1, out=out, seed=4, progress=False)


def test_scenario_file_and_scenario_object_sweep_alike(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(tiny()))
    a = sweep(path, {"services.web.workers": [1, 2]}, replications=2, jobs=1, progress=False)
    b = sweep(simsys.load(tiny()), {"services.web.workers": [1, 2]}, replications=2, jobs=1, progress=False)
    pd.testing.assert_frame_equal(a.table(), b.table(), check_exact=True)


def test_public_names():
    assert simsys.sweep is sweep and simsys.Sweep is Sweep
    assert simsys.sweep.load_sweep is load_sweep


def request_count(result) -> dict:
    """collect hook: a figure computed from the per-request table, in the worker."""
    return {"extra.slow_requests": int((result.requests["latency"] > 0.05).sum())}


def test_collect_adds_figures_from_the_result():
    sw = sweep(tiny(), {"services.web.workers": [1, 2]}, replications=2, jobs=1, collect=request_count,
               progress=False)
    assert "extra.slow_requests" in sw.metrics
    slow = sw.table("extra.slow_requests")["mean"].tolist()
    assert slow[0] > slow[1]  # one worker queues more


def test_cli_grid_values_are_yaml():
    from simsys.cli_sweep import _grid_values
    from simsys.cli_sweep import parse_precision as _precision

    assert _grid_values("services.web.workers=1,2, 3") == ("services.web.workers", [1, 2, 3])
    assert _grid_values("a.b=5min,10min") == ("a.b", ["5min", "10min"])
    assert _grid_values("services.web.service_time=[{dist: constant, value: 1ms}, 2ms]") == (
        "services.web.service_time", [{"dist": "constant", "value": "1ms"}, "2ms"])
    assert _precision("5%") == pytest.approx(0.05) and _precision("0.1") == 0.1
    with pytest.raises(ScenarioError):
        _precision("lots")
