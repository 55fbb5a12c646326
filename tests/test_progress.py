"""Progress is reported by wall-clock time: a long run shows life every fraction of a second
(issue 12: the bar used to move only every 1% of simulated time, so nothing for hours)."""

from __future__ import annotations

import time

import simsys
from simsys.cli import _LazyBar

BUSY = {"duration": "40min", "services": {"web": {"workers": 4, "service_time": "5ms"}},
        "workload": [{"type": "poisson", "rate": "300/s", "target": "web"}]}


def test_progress_is_called_at_least_every_second_of_wall_time():
    calls: list[tuple[float, float]] = []
    started = time.perf_counter()
    simsys.run(BUSY, seed=1, progress=lambda now: calls.append((time.perf_counter(), now)))
    took = time.perf_counter() - started
    assert took > 1.5  # long enough to mean something
    walls = [started] + [wall for wall, _ in calls]
    gaps = [b - a for a, b in zip(walls, walls[1:], strict=False)]
    assert max(gaps) < 1.0, max(gaps)
    assert calls[-1][1] == 2400.0  # and it ends at the run's end
    nows = [now for _, now in calls]
    assert nows == sorted(nows)


def test_the_cli_bar_shows_simulated_time_and_events_per_second(capsys):
    bar = _LazyBar(2400.0, "busy", delay=0.0)
    simsys.run(BUSY, seed=1, progress=bar)
    bar.close()
    err = capsys.readouterr().err
    assert "events/s" in err and "sim s" in err and "/2400 sim s" in err
    assert "37.199999" not in err
