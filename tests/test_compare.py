"""``simsys.compare`` and ``simsys compare``: variants over common seeds, the table's shape, its
intervals (each variant's, and the paired difference's), the command line and the plots."""

from __future__ import annotations

import json
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats as st

import simsys
from simsys.cli import cli
from simsys.comparing import DEFAULT_METRICS, Comparison, compare, figures, replication_seed

matplotlib.use("Agg")

WEB = {
    "duration": "20s",
    "warmup": "2s",
    "services": {"web": {"workers": 2, "service_time": {"dist": "exponential", "mean": "10ms"},
                         "price": 0.5}},
    "workload": [{"type": "poisson", "rate": "100/s", "target": "web"}],
}


def slower(factor: float) -> dict:
    return {**WEB, "services": {"web": {**WEB["services"]["web"],
                                        "service_time": {"dist": "exponential",
                                                         "mean": f"{10 * factor}ms"}}}}


@pytest.fixture(scope="module")
def two() -> Comparison:
    return compare({"base": WEB, "slower": slower(1.1)}, replications=5, seed=3)


def test_runs_one_row_per_variant_and_replication_with_shared_seeds(two):
    runs = two.runs
    assert len(runs) == 10
    assert list(runs.columns[:6]) == ["variant", "replication", "seed", "status", "error", "wall_time"]
    assert list(runs["variant"].cat.categories) == ["base", "slower"]
    seeds = runs.pivot(index="replication", columns="variant", values="seed")
    assert (seeds["base"] == seeds["slower"]).all()
    assert list(seeds["base"]) == [replication_seed(3, r) for r in range(5)]
    assert seeds["base"].nunique() == 5


def test_seeds_are_the_sweeps():
    from simsys import sweeping

    assert replication_seed is sweeping.replication_seed  # one function, not a copy
    c = compare({"a": WEB, "b": WEB}, replications=3, seed=7, jobs=1)
    assert list(c.runs["seed"]) == [sweeping.replication_seed(7, r) for r in range(3)] * 2


def test_table_shape(two):
    t = two.table()
    assert list(t.index) == [m for m in DEFAULT_METRICS if m in two.metrics]
    assert t.index.name == "metric"
    assert list(t.columns) == [("base", "mean"), ("base", "ci_low"), ("base", "ci_high"),
                               ("slower", "mean"), ("slower", "ci_low"), ("slower", "ci_high"),
                               ("slower", "diff"), ("slower", "diff_low"), ("slower", "diff_high")]
    assert t.columns.names == ["variant", "statistic"]
    assert list(two.table("throughput").index) == ["throughput"]
    with pytest.raises(KeyError, match="no figure 'latency.p42'"):
        two.table(["latency.p42"])


def test_each_variants_interval_is_a_student_t_interval(two):
    t = two.table(["latency.mean"], confidence=0.9)
    for v in ("base", "slower"):
        x = two.runs.loc[two.runs["variant"] == v, "latency.mean"].to_numpy()
        half = st.t.ppf(0.95, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
        row = t.loc["latency.mean", v]
        assert row["mean"] == pytest.approx(x.mean())
        assert row["ci_low"] == pytest.approx(x.mean() - half)
        assert row["ci_high"] == pytest.approx(x.mean() + half)


def test_the_difference_is_paired_by_seed_and_narrower_than_either_interval(two):
    t = two.table(["latency.mean"]).loc["latency.mean"]
    runs = two.runs.pivot(index="replication", columns="variant", values="latency.mean")
    d = (runs["slower"] - runs["base"]).to_numpy()
    half = st.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert t[("slower", "diff")] == pytest.approx(d.mean())
    assert t[("slower", "diff_low")] == pytest.approx(d.mean() - half)
    assert t[("slower", "diff_high")] == pytest.approx(d.mean() + half)
    assert t[("slower", "diff_low")] > 0  # 10 % slower work is visible ...
    # ... because common random numbers make the pair move together
    own = min(t[("base", "ci_high")] - t[("base", "ci_low")],
              t[("slower", "ci_high")] - t[("slower", "ci_low")])
    assert 2 * half < own / 2
    assert two.diff("latency.mean", "slower")["mean"] == pytest.approx(d.mean())
    assert two.diff("latency.mean", "base", baseline="slower")["mean"] == pytest.approx(-d.mean())


def test_identical_variants_differ_by_exactly_nothing():
    c = compare({"a": WEB, "b": WEB}, replications=3, seed=1)
    t = c.table()
    assert (t[("b", "diff")].fillna(0) == 0).all()
    assert (t[("b", "mean")].fillna(0) == t[("a", "mean")].fillna(0)).all()


def test_figures_every_variant_shares(two):
    r = simsys.run(WEB, seed=2)
    f = figures(r)
    s = r.summary()
    assert f["latency.p99"] == s["latency"]["p99"]
    assert f["availability"] == pytest.approx(s["requests"]["ok"] / s["requests"]["total"])
    assert f["replicas"] == 1.0
    assert f["cost"] == pytest.approx(0.5 * 20 / 3600)
    assert f["memory.peak"] >= 0.0
    assert "name" not in f and "seed" not in f
    assert {"latency.mean", "throughput", "error_rate", "availability", "cost"} <= set(two.metrics)


def test_memory_and_cost_of_deployments():
    app = {"web": {"service_time": "1ms", "calls": ["db"], "memory": {"base": "100MB"}},
           "db": {"service_time": "1ms", "memory": {"base": "300MB"}, "replicas": 2}}
    base = {"duration": "1h", "app": app, "sample_every": "1min",
            "workload": [{"type": "poisson", "rate": "1/s", "target": "web"}]}
    c = compare({"mono": {**base, "deploy": {"style": "monolith", "runtime_memory": "50MB",
                                             "price": 0.3}},
                 "micro": {**base, "deploy": {"style": "microservices", "runtime_memory": "50MB",
                                              "price": 0.1}}}, replications=2)
    t = c.table(["memory.peak", "replicas", "cost"])
    assert t.loc["memory.peak", ("mono", "mean")] == pytest.approx(2 * 450e6)  # 2 replicas of all
    assert t.loc["memory.peak", ("micro", "mean")] == pytest.approx(150e6 + 2 * 350e6)
    assert t.loc["replicas", ("micro", "mean")] == 3
    assert t.loc["cost", ("mono", "mean")] == pytest.approx(2 * 0.3)
    assert t.loc["cost", ("micro", "diff")] == pytest.approx(3 * 0.1 - 2 * 0.3)


def test_variants_by_list_are_named_by_file_or_scenario(tmp_path):
    (tmp_path / "a.yaml").write_text("duration: 5s\nservices: {web: {}}\n")
    c = compare([str(tmp_path / "a.yaml"), str(tmp_path / "a.yaml"), {**WEB, "name": "w"}],
                replications=1)
    assert c.variants == ["a", "a-2", "w"]
    assert c.replications == 1
    assert math.isnan(c.table("latency.mean").loc["latency.mean", ("a", "ci_low")])  # n = 1


def test_bad_variants_are_reported_before_anything_runs(tmp_path):
    bad = {**WEB, "services": {"web": {"workers": 0}}}
    with pytest.raises(simsys.ScenarioError) as info:
        compare({"ok": WEB, "bad": bad, "worse": {**bad, "warmup": "1h"}}, replications=1)
    paths = [p.path for p in info.value.problems]
    assert paths.count("services.web.workers") == 2 and "warmup" not in paths  # schema first
    with pytest.raises(simsys.ScenarioError, match="replications: expected a whole number"):
        compare({"a": WEB}, replications=0)


def test_same_seed_same_comparison():
    a = compare({"x": WEB, "y": slower(1.2)}, replications=2, seed=8)
    b = compare({"x": WEB, "y": slower(1.2)}, replications=2, seed=8)
    cols = [c for c in a.runs.columns if c != "wall_time"]
    pd.testing.assert_frame_equal(a.runs[cols], b.runs[cols])
    pd.testing.assert_frame_equal(a.table(), b.table())
    assert np.array_equal(a.latencies["y"], b.latencies["y"])


def test_text_json_and_html(two):
    text = two.to_text(["latency.mean", "error_rate"])
    assert text.splitlines()[0].split() [:2] == ["figure", "base"]
    assert "latency.mean (ms)" in text and "error_rate (%)" in text and "Δ vs base" in text
    assert "incidents.mttr (s)" in two.to_text(["incidents.mttr"])
    d = two.to_dict(["latency.mean"])
    assert d["variants"] == ["base", "slower"] and d["replications"] == 5
    assert set(d["figures"]["latency.mean"]["slower"]) == {"mean", "ci_low", "ci_high", "diff",
                                                           "diff_low", "diff_high"}
    json.dumps(d, allow_nan=False)
    assert "<table" in two._repr_html_()
    assert repr(two).startswith("<Comparison base vs slower: 5 replications")


# -- command line -----------------------------------------------------------------------------
@pytest.fixture()
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast.yaml").write_text(json.dumps(WEB))  # JSON is YAML
    (tmp_path / "slow.yaml").write_text(json.dumps(slower(1.5)))
    return tmp_path


def test_cli_compare_prints_the_table(files):
    r = CliRunner().invoke(cli, ["compare", "fast.yaml", "slow.yaml", "-r", "3",
                                 "-m", "latency.mean", "-m", "cost"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["figure", "fast", "(±95%)"]
    assert lines[1].startswith("latency.mean (ms)") and lines[2].startswith("cost")
    assert "3 replications per variant" in lines[-1]


def test_cli_compare_json(files):
    r = CliRunner().invoke(cli, ["compare", "fast.yaml", "slow.yaml", "-r", "2", "--json",
                                 "--name", "A", "--name", "B", "--seed", "4"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["variants"] == ["A", "B"] and d["base_seed"] == 4
    assert d["figures"]["latency.mean"]["B"]["diff"] > 0


@pytest.mark.parametrize("args, message", [
    (["-m", "latency.p42"], "'latency.p42' is not a figure of the run summary"),
    (["--name", "only-one"], "--name: expected one --name per scenario (2), got 1"),
    (["--set", "services.web.workers=0"], "services.web.workers: expected a whole number ≥ 1"),
])
def test_cli_compare_bad_input_exits_2(files, args, message):
    r = CliRunner().invoke(cli, ["compare", "fast.yaml", "slow.yaml", "-r", "1", *args])
    assert r.exit_code == 2, r.output
    assert message in r.stderr and r.stdout == "" and "Traceback" not in r.output


def test_cli_compare_writes_out(files):
    r = CliRunner().invoke(cli, ["compare", "fast.yaml", "slow.yaml", "-r", "2", "--out", "o"])
    assert r.exit_code == 0, r.output
    assert {p.name for p in (files / "o").iterdir()} == {
        "sweep.json", "runs", "runs.parquet", "table.parquet", "comparison.json", "comparison.png"}
    runs = pd.read_parquet(files / "o" / "runs.parquet")
    assert len(runs) == 4 and set(runs["variant"]) == {"fast", "slow"}


def test_cli_compare_is_listed_without_importing_it():
    r = CliRunner().invoke(cli, ["--help"])
    assert "compare" in r.stdout and "side by side" in r.stdout


# -- plots ------------------------------------------------------------------------------------
def test_plots(two):
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    p = two.plot
    ax = p.latency_cdf()
    assert len(ax.get_lines()) >= 2 and ax.get_xscale() == "log"
    for draw in (p.latency, p.availability, p.error_rate, p.memory, p.cost):
        assert isinstance(draw(), Axes)
    ax = p.metric("throughput")
    assert "Δ" in ax.get_xticklabels()[1].get_text()
    fig = p.dashboard()
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    plt.close("all")


def test_cli_compare_jobs_2_is_jobs_1_and_its_directory_makes_a_report(files):
    one = CliRunner().invoke(cli, ["compare", "fast.yaml", "slow.yaml", "-r", "3", "--jobs", "1"])
    two = CliRunner().invoke(cli, ["compare", "fast.yaml", "slow.yaml", "-r", "3", "--jobs", "2",
                                   "--out", "o2"])
    assert one.exit_code == two.exit_code == 0, (one.output, two.output)
    assert one.stdout == two.stdout  # the same table, whichever executor ran it
    report = CliRunner().invoke(cli, ["report", "o2"])
    assert report.exit_code == 0, report.output
    page = (files / "o2" / "report.html").read_text(encoding="utf-8")
    assert "Comparison of <b>fast vs slow</b>" in page and "Scenario slow" in page
    for cell in two.stdout.splitlines()[1].split("  "):  # the report shows the table's cells
        assert cell.strip() in page
    from simsys.report import kind_of

    assert kind_of(files / "o2") == "comparison"


def test_every_run_failing_is_a_verdict_not_a_crash(files, monkeypatch):
    import simsys.sweeping.worker as worker

    def broken(task):
        raise RuntimeError("boom")

    monkeypatch.setattr(worker, "simulate", broken)
    c = compare(["fast.yaml", "slow.yaml"], 2, jobs=1)
    assert len(c.failures) == 4 and set(c.failures["error"]) == {"RuntimeError: boom"}
    r = CliRunner().invoke(cli, ["compare", "fast.yaml", "slow.yaml", "-r", "2", "--jobs", "1"])
    assert r.exit_code == 3 and "every one of the 4 runs failed" in r.stderr
