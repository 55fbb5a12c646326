"""Run directories and the HTML report: written atomically, read back, one self-contained page."""

from __future__ import annotations

import base64
import json
import re
import shutil

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

import simsys  # noqa: E402
from simsys.cli import cli  # noqa: E402
from simsys.output import load_run, save_run  # noqa: E402
from simsys.report import NotAReportDirectory, build_report, kind_of  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
TINY_EXPERIMENT = {
    "name": "tiny-experiment",
    "duration": "90s",
    "warmup": "10s",
    "services": {
        "web": {"replicas": 2, "workers": 2, "calls": ["db"],
                "service_time": {"dist": "exponential", "mean": "10ms"}},
        "db": {"replicas": 1, "workers": 2, "service_time": "5ms"},
    },
    "workload": [{"type": "poisson", "rate": "50/s", "target": "web"}],
    "recovery": {"detection": "3s", "restart": "10s"},
    "experiment": {
        "title": "web survives losing db",
        "steady-state-hypothesis": {"title": "db is up", "probes": [
            {"name": "db is up", "metric": "services.db.availability", "window": "10s",
             "tolerance": [0.99, 1]}]},
        "method": [{"name": "kill db", "kind": "crash", "target": "db", "at": "40s",
                    "mode": "one"}],
        "rollbacks": [],
    },
}


@pytest.fixture(scope="module")
def result() -> simsys.Result:
    return simsys.run("scenarios/checkout.yaml", overrides={"duration": "60s", "warmup": "5s"})


@pytest.fixture(scope="module")
def run_dir(result, tmp_path_factory):
    return save_run(result, tmp_path_factory.mktemp("run") / "checkout")


def check_self_contained(page: str) -> int:
    """No reference leaves the file; every image is a PNG data URI; links go to anchors or, in
    the Files table, to the run's own files by relative path. Returns the image count."""
    refs = re.findall(r"""(src|href)\s*=\s*["']?([^"'\s>]*)""", page, flags=re.I)
    for attr, ref in refs:
        assert not re.match(r"(?:[a-z]+:)?//", ref, flags=re.I), f"external reference {ref[:80]}"
        if attr.lower() == "src":
            assert ref.startswith("data:"), f"reference to another file: {ref[:80]}"
        else:
            assert ref.startswith("#") or not re.match(r"[a-z]+:|/", ref, flags=re.I), ref[:80]
    assert "<link" not in page.lower()
    assert not re.search(r"<script[^>]*\bsrc=", page, flags=re.I)
    assert "@import" not in page and "url(http" not in page
    imgs = re.findall(r"<img\b[^>]*>", page, flags=re.I)
    for tag in imgs:
        src = re.search(r'src="([^"]+)"', tag).group(1)
        assert src.startswith("data:image/png;base64,"), tag[:80]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG) and len(data) > 1000
        assert re.search(r'alt="[^"]+"', tag), "every image has alt text"
    assert re.search(r"img\{[^}]*max-width:100%", page), "images shrink to the page width"
    return len(imgs)


# -- save_run / load_run ------------------------------------------------------------------------
def test_save_run_writes_everything(run_dir, result):
    names = {p.name for p in run_dir.iterdir()}
    for f in ("summary.json", "requests.parquet", "incidents.parquet", "timeseries.parquet",
              "scenario.yaml", "latency_cdf.png", "latency_over_time.png", "memory.png",
              "queues.png", "topology.png"):
        assert f in names
    assert not [n for n in names if n.endswith(".tmp")], "no temporary file left behind"
    assert "journal.json" not in names and "incident_timeline.png" not in names
    text = (run_dir / "summary.json").read_text()
    assert json.loads(text) == json.loads(json.dumps(result.summary()))
    assert text.startswith('{\n  "name"'), "indent 2"
    for png in run_dir.glob("*.png"):
        assert png.read_bytes().startswith(PNG)


def test_scenario_yaml_runs_again(run_dir, result):
    again = simsys.run(str(run_dir / "scenario.yaml"))
    assert again.summary() == result.summary()


def test_load_run_round_trip(run_dir, result):
    run = load_run(run_dir)
    assert run.summary() == json.loads(json.dumps(result.summary()))
    assert len(run.requests) == len(result.requests)
    pd.testing.assert_series_equal(run.requests["latency"], result.requests["latency"])
    assert list(run.incidents.columns) == list(result.incidents.columns)
    assert run.duration == 60.0 and run.warmup == 5.0
    assert sorted(run.graph.nodes) == sorted(result.graph.nodes)
    assert "<table" in run._repr_html_()


def test_a_run_directory_keeps_the_monkeys_journal(tmp_path, run_dir):
    r = simsys.run("scenarios/chaos-checkout.yaml", overrides={"duration": "10min"})
    assert len(r.chaos) > 0
    save_run(r, tmp_path, plots=False)
    pd.testing.assert_frame_equal(load_run(tmp_path).chaos, r.chaos)
    assert not (run_dir / "chaos.parquet").exists()  # no monkey, no table
    assert load_run(run_dir).chaos.empty


def test_load_run_refuses_other_directories(tmp_path):
    with pytest.raises(simsys.SimsysError, match="no summary.json"):
        load_run(tmp_path)


# -- report ---------------------------------------------------------------------------------
def test_report_of_a_run(run_dir):
    r = CliRunner().invoke(cli, ["report", str(run_dir)])
    assert r.exit_code == 0, r.output
    path = run_dir / "report.html"
    assert r.output.strip() == str(path)
    page = path.read_text(encoding="utf-8")
    assert check_self_contained(page) >= 7
    for text in ("checkout", "Summary", "Plots", "Scenario", "latency p99", "gateway",
                 "ms", "req/s"):
        assert text in page
    assert "Incidents</h2>" not in page and "Experiment</h2>" not in page


def test_report_of_an_experiment_with_incidents(tmp_path):
    r = simsys.run(TINY_EXPERIMENT, seed=1)
    assert r.journal is not None and len(r.incidents) >= 1
    d = save_run(r, tmp_path / "exp", plots=False)
    assert not list(d.glob("*.png"))  # the report draws what the directory lacks
    journal = json.loads((d / "journal.json").read_text())
    assert {"status", "deviated", "steady_states"} <= set(journal)
    page = build_report(d).read_text(encoding="utf-8")
    assert check_self_contained(page) >= 9
    assert "web survives losing db" in page
    assert "Deviated" in page if journal["deviated"] else "Steady state held" in page
    assert "Incidents</h2>" in page and "recovered after" in page
    assert 'alt="Incidents"' in page and 'alt="Time to recover"' in page


def test_report_of_a_sweep(tmp_path):
    from simsys.sweeping import sweep

    tiny = {"name": "tiny", "duration": "20s",
            "services": {"web": {"workers": 2,
                                 "service_time": {"dist": "exponential", "mean": "10ms"}}},
            "workload": [{"type": "poisson", "rate": "80/s", "target": "web"}]}
    out = tmp_path / "sweep"
    sweep(tiny, grid={"services.web.workers": [1, 2, 4]}, replications=2, jobs=1,
          progress=False, out=out)
    assert kind_of(out) == "sweep"
    r = CliRunner().invoke(cli, ["report", str(out)])
    assert r.exit_code == 0, r.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert check_self_contained(page) >= 3
    assert "services.web.workers" in page and "p99 latency" in page


def test_report_of_a_sweep_from_its_parts_alone(tmp_path):
    """Only sweep.json and runs/part-*.parquet (a sweep killed before it wrote runs.parquet)."""
    from simsys.sweeping import sweep

    tiny = {"name": "tiny", "duration": "10s",
            "services": {"web": {"service_time": "5ms"}},
            "workload": [{"type": "poisson", "rate": "20/s", "target": "web"}]}
    out = tmp_path / "sweep"
    sweep(tiny, grid={"services.web.workers": [1, 2]}, replications=2, jobs=1, progress=False,
          out=out)
    (out / "runs.parquet").unlink()
    page = build_report(out).read_text(encoding="utf-8")
    assert check_self_contained(page) >= 1
    assert "services.web.workers" in page


@pytest.mark.parametrize("make", ["empty", "missing", "file"])
def test_report_refuses_a_directory_that_is_neither(tmp_path, make):
    target = tmp_path / "x"
    if make == "empty":
        target.mkdir()
    elif make == "file":
        target.write_text("hello")
    r = CliRunner().invoke(cli, ["report", str(target)])
    assert r.exit_code == 2
    assert "simsys: error:" in r.output and "Traceback" not in r.output
    with pytest.raises(NotAReportDirectory):
        build_report(target)


def test_report_through_the_main_command(run_dir, tmp_path):
    from simsys.cli import cli

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    r = CliRunner().invoke(cli, ["report", str(copy)])
    assert r.exit_code == 0, r.output
    assert (copy / "report.html").is_file()
    r = CliRunner().invoke(cli, ["report", str(tmp_path / "nothing")])
    assert r.exit_code == 2
