"""Progress is reported by wall-clock time: a long run shows life every fraction of a second
(issue 12: the bar used to move only every 1% of simulated time, so nothing for hours)."""

from __future__ import annotations

import time

import simsys
from simsys.progress import SimTimeBar, tqdm_class

BUSY = {"duration": "40min", "services": {"web": {"workers": 4, "service_time": "5ms"}},
        "workload": [{"type": "poisson", "rate": "300/s", "target": "web"}]}


def test_progress_is_called_at_least_every_second_of_wall_time():
    calls: list[tuple[float, float]] = []
    started = time.perf_counter()
    simsys.run(BUSY, seed=1, progress=lambda now: calls.append((time.perf_counter(), now)))
    took = time.perf_counter() - started
    assert took > 1.5  # long enough to mean something
    walls = [wall for wall, _ in calls]  # from the first step: building the run is not stepping
    gaps = sorted(b - a for a, b in zip(walls, walls[1:], strict=False))
    # steps aim at a quarter second; on a loaded machine one may stretch, never for long
    assert gaps[int(0.9 * len(gaps))] < 1.0 and gaps[-1] < 2.5, gaps[-5:]
    assert calls[-1][1] == 2400.0  # and it ends at the run's end
    nows = [now for _, now in calls]
    assert nows == sorted(nows)


def test_the_cli_bar_shows_simulated_time_and_events_per_second(capsys):
    bar = SimTimeBar(2400.0, "busy", delay=0.0, notebook=False)
    simsys.run(BUSY, seed=1, progress=bar)
    bar.close()
    err = capsys.readouterr().err
    assert "events/s" in err and "/ 40 min" in err, err[-300:]
    assert "37.199999" not in err and "2400" not in err


def test_simulated_time_is_formatted_even_at_awkward_floats():
    bar = SimTimeBar(60.0, "t", delay=60.0, notebook=False)  # never shown: only its text
    assert bar.text(37.199999999999996) == "37.2 s / 60 s"
    bar.close()


def test_a_notebook_without_ipywidgets_gets_the_text_bar_and_no_warning(monkeypatch):
    import importlib.util
    import warnings

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ipywidgets" else real(name, *a))
    assert tqdm_class(notebook=True).__module__ == "tqdm.std"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # TqdmWarning: IProgress not found would raise here
        bar = SimTimeBar(10.0, "t", notebook=True)
        bar(5.0)
        bar.close()


def test_a_notebook_with_ipywidgets_gets_the_widget_bar():
    import ipywidgets  # noqa: F401 - a test extra: the widget bar is checked, never skipped

    assert tqdm_class(notebook=True).__module__ == "tqdm.notebook"


def test_importing_ipykernel_does_not_make_a_notebook():
    """A process that merely imported ipykernel (pytest with nbmake, a library) is no kernel:
    bars stay off stdout (the widget bar prints its text form there)."""
    import subprocess
    import sys

    code = ("import ipykernel, ipykernel.kernelapp, simsys.progress as p; "
            "print(p.in_notebook(), p.tqdm_class().__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "tqdm.std"]
