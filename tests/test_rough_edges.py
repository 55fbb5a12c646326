"""What a new user hits first (issue 15): one voice for numbers, and the rough edges of the CLI,
the Python API, the report and the plots. Each test fails on the code before the fix."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import simsys
from simsys.cli import cli, format_summary
from simsys.display import summary_html
from simsys.formatting import fmt_mean_pm, fmt_ms, fmt_number, fmt_pct, fmt_rate
from simsys.output import load_run
from simsys.report import build_report

matplotlib.use("Agg")

# Half the requests rejected: one worker, no queue, exponential service at ρ = 1 (Erlang B:
# blocking = ρ / (1 + ρ) = 0.5).
LOSSY = {"duration": "300s", "warmup": "20s",
         "services": {"web": {"workers": 1, "queue": 0,
                              "service_time": {"dist": "exponential", "mean": "10ms"}}},
         "workload": [{"type": "poisson", "rate": "100/s", "target": "web"}]}
CHAOS = {"duration": "10min",
         "services": {"web": {"replicas": 2, "failures": {"mean_time_to_failure": "1min"}}},
         "workload": [{"type": "poisson", "rate": "20/s", "target": "web"}]}


@pytest.fixture(scope="module")
def lossy() -> simsys.Result:
    return simsys.run(LOSSY, seed=3)


# -- one voice for numbers ------------------------------------------------------------------------
def test_cli_table_html_and_plot_label_agree_in_unit_and_digits(lossy):
    """The same p99, error rate and throughput through the CLI table, the notebook/report HTML
    and the dashboard's title: the same digits, the same units."""
    s = lossy.summary()
    p99_ms = fmt_number(s["latency"]["p99"] * 1e3)
    err, thr = fmt_pct(s["error_rate"]), fmt_rate(s["throughput"])
    cli_text = format_summary(s)
    header, values = next((lines[i], lines[i + 1]) for lines in [cli_text.splitlines()]
                          for i, line in enumerate(lines) if line.strip().startswith("mean"))
    assert "latency of ok requests (ms)" in cli_text          # the column's unit, once
    column = header.split().index("p99")
    assert values.split()[column] == p99_ms
    assert err in cli_text and thr in cli_text
    page = summary_html(s)
    assert f"{p99_ms} ms" in page and err in page and thr in page
    fig = lossy.plot.dashboard()
    title = fig._suptitle.get_text()
    assert f"p99 {p99_ms} ms" in title and err in title and thr in title
    assert fmt_ms(s["latency"]["p99"]) == f"{p99_ms} ms"


@pytest.mark.parametrize("mean, half, text", [
    (52.7712, 0.05403, "52.771 ± 0.054"),        # was 52.77 ± 0.05403
    (26_170.0, 7785.0, "26,200 ± 7,800"),        # was 2.617e+04 ± 7785
    (0.000123456, 0.0000042, "0.0001235 ± 0.0000042"),
    (3.0, 0.0, "3 ± 0"),
])
def test_mean_and_half_width_share_their_decimals(mean, half, text):
    shown = fmt_mean_pm(mean, half)
    assert shown == text
    m, h = shown.replace(",", "").split(" ± ")
    assert "e" not in shown
    assert abs(float(m) - mean) <= float(h) / 10 + 1e-12   # the mean's rounding is below the ±


def test_no_second_formatter_left():
    """Acceptance: the formatting functions are defined in one module."""
    root = Path(simsys.__file__).parent
    pattern = re.compile(r"^\s*def (_fmt|fmt_|_ms|_pct|_mb|_secs|format_duration|format_size)\w*\(",
                         re.M)
    where = {p.relative_to(root).as_posix() for p in root.rglob("*.py")
             if pattern.search(p.read_text(encoding="utf-8"))}
    # compare.py and sweep.py are split by another branch; they move to formatting after it
    assert where <= {"formatting.py", "compare.py", "sweep.py"}, where
    assert "formatting.py" in where


def test_plots_take_their_formatting_from_formatting_not_display():
    root = Path(simsys.__file__).parent / "plot"
    for p in root.glob("*.py"):
        text = p.read_text(encoding="utf-8")
        assert not re.search(r"from \.\.display import .*(fmt_|metric_label)", text), p.name
    assert "from ..compare import" not in (root / "compare.py").read_text(encoding="utf-8")


def test_validate_and_run_say_the_duration_alike(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("duration: 20000s\nservices: {web: {}}\n"
                    "workload: [{type: poisson, rate: 1/s, target: web}]\n")
    runner = CliRunner()
    validate = runner.invoke(cli, ["validate", str(path)])
    assert "5.56 h simulated" in validate.output, validate.output
    run = runner.invoke(cli, ["run", str(path)])
    assert "5.56 h simulated" in run.output, run.output   # was "333 min" here, "5.556h" there


# -- the failed-requests plot draws what its axis says ---------------------------------------------
def test_failed_requests_plot_draws_percent(lossy):
    ax = lossy.plot.error_rate_over_time(window=30)
    assert "%" in ax.get_ylabel()
    heights = np.array([p.get_height() for p in ax.patches])
    df = lossy.requests
    share = (df["status"] != "ok").mean() * 100            # about 50 % (Erlang B)
    assert 40 < share < 60
    # the stacked bars of a window add up to that window's share: in percent, not fraction
    assert heights.max() > 30 and np.nanmax(heights) <= 100.0


# -- Result.requests --------------------------------------------------------------------------------
def test_requests_mark_the_warmup_and_use_missing_values(lossy):
    df = lossy.requests
    assert df["warmup"].dtype == bool
    assert (df["warmup"] == (df["start"] < lossy.warmup)).all()
    assert int((~df["warmup"]).sum()) == lossy.summary()["requests"]["total"]
    ok = df[df["status"] == "ok"]
    assert ok["cause"].isna().all() and ok["failed_instance"].isna().all()
    assert not (df["cause"].astype(object) == "").any()
    assert not (df["failed_instance"] == -1).any()
    rejected = df[df["status"] == "rejected"]
    assert (rejected["cause"] == "rejected").all() and (rejected["failed_instance"] == 0).all()


# -- Result.save and CSV --------------------------------------------------------------------------
def test_result_save_writes_what_run_out_writes_with_csv(lossy, tmp_path):
    out = lossy.save(tmp_path / "run", plots=False)
    for name in ("requests", "incidents", "timeseries"):
        assert (out / f"{name}.parquet").is_file() and (out / f"{name}.csv").is_file()
    csv = pd.read_csv(out / "requests.csv")
    assert len(csv) == len(lossy.requests)
    assert csv["cause"].isna().sum() == lossy.requests["cause"].isna().sum()  # empty cells
    back = load_run(out)
    assert back.summary()["requests"] == lossy.summary()["requests"]
    cli_dir = tmp_path / "cli"
    r = CliRunner().invoke(cli, ["run", "-", "--out", str(cli_dir), "--seed", "3"],
                           input=_yaml(LOSSY))
    if r.exit_code == 0:  # the CLI reads "-" as stdin: same files
        assert {p.name for p in cli_dir.glob("*.csv")} == {p.name for p in out.glob("*.csv")}


def _yaml(spec: dict) -> str:
    import yaml

    return yaml.safe_dump(spec)


# -- chaos without recovery -------------------------------------------------------------------------
def test_chaos_without_recovery_says_the_defaults_apply(tmp_path):
    path = tmp_path / "chaos.yaml"
    path.write_text(_yaml(CHAOS))
    r = CliRunner().invoke(cli, ["run", str(path), "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert re.search(r"MTTR 0 s\s+MTTD 0 s", r.output)
    assert "its defaults apply" in r.output
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["run", str(path), "--seed", "1", "--out", str(out)]).exit_code == 0
    assert CliRunner().invoke(cli, ["report", str(out)]).exit_code == 0
    assert "its defaults apply" in (out / "report.html").read_text(encoding="utf-8")  # the HTML too
    assert "its defaults apply" in simsys.run(str(path), seed=1)._repr_html_()       # and Jupyter
    path.write_text(_yaml({**CHAOS, "recovery": {"detection": "5s", "restart": "10s"}}))
    r = CliRunner().invoke(cli, ["run", str(path), "--seed", "1"])
    assert r.exit_code == 0 and "defaults apply" not in r.output
    assert "defaults apply" not in simsys.run(str(path), seed=1)._repr_html_()


# -- the report -------------------------------------------------------------------------------------
def test_report_header_has_no_machine_path_and_files_are_linked(lossy, tmp_path):
    run_dir = lossy.save(tmp_path / "deep" / "run", plots=False)
    for target in (None, tmp_path / "elsewhere" / "page.html"):
        if target is not None:
            target.parent.mkdir()
        page_path = build_report(run_dir, target)
        page = page_path.read_text(encoding="utf-8")
        assert str(tmp_path) not in page                      # no absolute path of the machine
        links = re.findall(r'<a href="([^"#][^"]*)"', page)
        assert "requests.csv" in " ".join(links)
        for link in links:
            assert (page_path.parent / link).resolve().exists(), link


def test_sweep_legend_titles_the_grid_key_and_lists_its_values():
    """Notebook 05's legend read ``workload 0 rate = 100/s`` on every line."""
    base = {"duration": "20s", "services": {"web": {}},
            "workload": [{"type": "poisson", "rate": "5/s", "target": "web"}]}
    sw = simsys.sweep(base, grid={"services.web.workers": [1, 2],
                                  "workload.0.rate": ["5/s", "10/s"]},
                      replications=2, jobs=1, progress=False)
    ax = sw.plot.metric("latency.p99", x="services.web.workers", hue="workload.0.rate")
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "workload rate"
    assert sorted(t.get_text() for t in legend.get_texts()) == ["10/s", "5/s"]
    assert ax.get_xlabel() == "web workers"


def test_sweep_report_shows_the_grids_duration(tmp_path):
    base = {"name": "tiny", "duration": "5min", "services": {"web": {}},
            "workload": [{"type": "poisson", "rate": "5/s", "target": "web"}]}
    out = tmp_path / "sw"
    simsys.sweep(base, grid={"duration": ["20s", "40s"]}, replications=1, jobs=1, out=out,
                 progress=False)
    page = build_report(out).read_text(encoding="utf-8")
    scenario = page[page.index('id="scenario"'):]
    scenario = scenario[:scenario.index("</section>")]
    assert "(grid)" in scenario and "5 min" not in scenario, scenario[:600]
