"""HTML views for notebooks: compact, readable, in human units, and safe to embed."""

from __future__ import annotations

import doctest
import re
import subprocess
import sys

import pandas as pd
import pytest

import simsys
from simsys import display
from simsys.display import (
    fmt_bytes,
    fmt_duration,
    fmt_ms,
    fmt_pct,
    metric_label,
    scenario_html,
    summary_html,
    sweep_html,
)

TINY = {
    "name": "tiny <web>",
    "seed": 3,
    "duration": "30s",
    "warmup": "5s",
    "services": {
        "web": {"replicas": 2, "workers": 4, "calls": [{"service": "db", "probability": 0.3}],
                "service_time": {"dist": "exponential", "mean": "10ms"},
                "memory": {"base": "100MB", "per_request": "1MB"}},
        "db": {"service_time": "5ms", "queue": 10},
    },
    "workload": [{"type": "poisson", "rate": "40/s", "target": "web", "name": "users"}],
}


@pytest.fixture(scope="module")
def result() -> simsys.Result:
    return simsys.run(TINY)


def cells(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>",
                                                                     html, flags=re.S)]


def test_repr_html_is_the_compact_summary(result):
    html = result._repr_html_()
    assert html == summary_html(result)
    assert len(html) < 12_000, "a summary, not a dump of the tables"
    assert "<pre" not in html
    text = cells(html)
    s = result.summary()
    assert "tiny &lt;web&gt;" in html, "names are escaped"
    assert "seed 3" in html and "30 s simulated" in html and "warm-up" in html
    for status in ("total", "ok"):
        assert status in text
    assert f"{s['requests']['total']:,}" in text
    assert fmt_ms(s["latency"]["p99"]) in text and fmt_ms(s["latency"]["mean"]) in text
    assert any(c.endswith("req/s") for c in text)
    assert "error rate" in text
    for name in ("web", "db"):
        assert name in text
    for col in ("utilization", "availability", "memory peak"):
        assert col in text
    assert fmt_bytes(s["services"]["web"]["memory_peak"]) in text
    assert "p90" not in text, "compact: mean, p50 and p99 only"
    assert "latency p90" in cells(summary_html(result, detail=True))


def test_summary_html_from_a_saved_summary_dict(result):
    import json

    s = json.loads(json.dumps(result.summary()))
    assert cells(summary_html(s)) == cells(summary_html(result))


def test_scenario_html_from_spec_and_from_raw_data():
    spec = simsys.load(TINY)
    html = scenario_html(spec)
    text = cells(html)
    assert "exponential, mean 10 ms" in text
    assert "db (30%)" in text
    assert "100 MB base, +1 MB/request" in text
    assert "unbounded" in text and "10" in text
    assert "poisson: rate 40 /s" in text
    assert "recovery" not in text, "settings left at their defaults are not listed"
    assert cells(scenario_html(TINY)) == text, "unit strings are resolved like a run sees them"


def test_sweep_html_from_runs():
    runs = pd.DataFrame({
        "services.web.workers": [1, 1, 1, 2, 2, 2],
        "replication": [0, 1, 2, 0, 1, 2],
        "status": ["ok"] * 5 + ["error"],
        "latency.p99": [0.2, 0.22, 0.21, 0.1, 0.11, None],
        "throughput": [40.0, 41.0, 39.0, 40.0, 40.5, None],
        "error_rate": [0.0] * 6,
    })
    html = sweep_html(runs)
    text = cells(html)
    assert "services.web.workers" in text and "p99 latency (ms)" in text
    assert "210 ± 25" in " ".join(text)  # in the column's unit, ms
    assert "5 ok" in html and "1 error" in html
    assert sweep_html(runs.iloc[:0]).count("no runs") == 1


def test_human_units():
    assert fmt_ms(0.0833) == "83.3 ms"
    assert fmt_ms(None) == "–"
    assert fmt_duration(600) == "10 min" and fmt_duration(0.0025) == "2.5 ms"
    assert fmt_bytes(1.5e9) == "1.5 GB"
    assert fmt_pct(0.9999996) == "99.99996%", "never rounds a failure away"
    assert fmt_pct(float("nan")) == "–"
    assert metric_label("services.cart.memory_peak") == ("cart peak memory", 1e-6, "MB")


def test_doctests():
    failures, _ = doctest.testmod(display)
    assert failures == 0


def test_display_does_not_import_matplotlib():
    code = ("import sys, simsys.display as d, simsys.stats; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
