"""Progress bars: which tqdm to use, and the bar of one run in formatted simulated time.

In a Jupyter kernel with ipywidgets installed the widget bar is used; without ipywidgets the
text bar (``tqdm.auto`` would print ``TqdmWarning: IProgress not found`` and fall back to the
same). A run's bar shows simulated time in readable units (``37.2 s / 1 min``, never
``37.199999999999996/60.0``) and the engine's events per second; it appears only once a run has
taken ``delay`` seconds (tqdm's own ``delay``), so short runs print nothing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from typing import Any

from .formatting import fmt_number, sim_time

__all__ = ["RunsBar", "SimTimeBar", "in_notebook", "interactive", "tqdm_class"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel: an IPython shell with a kernel is running. Having imported
    ipykernel (a test runner, a library) is not enough: the widget bar would then print its
    text form on stdout."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def tqdm_class(notebook: bool | None = None) -> Any:
    """The tqdm bar class to use: the widget bar in a notebook that has ipywidgets, else the
    text bar."""
    notebook = in_notebook() if notebook is None else notebook
    if notebook and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm

        return tqdm
    from tqdm import tqdm

    return tqdm


class SimTimeBar:
    """A progress callback for one run (``simsys.run(progress=…)``, ``simsys run``).

    Called with the simulated time reached (seconds); :meth:`attach` gives it the engine's
    environment so it can show events per second. Shown on stderr (or as a widget) once the run
    has taken ``delay`` wall-clock seconds.
    """

    def __init__(self, total: float, desc: str, delay: float = 0.0, notebook: bool | None = None):
        self.total = float(total)
        self.env: Any = None
        self.started = time.perf_counter()
        cls = tqdm_class(notebook)
        kwargs: dict[str, Any] = {}
        if cls.__module__ == "tqdm.std":
            try:
                width, height = os.get_terminal_size(sys.stderr.fileno())
            except (OSError, ValueError):
                width = height = 0
            # a terminal that reports no size (0×0, e.g. some ptys) would get no bar from tqdm
            kwargs = {"file": sys.stderr, "ncols": min(width or 80, 100), "nrows": height or 24}
        # the bar counts in simulated seconds; its text shows them formatted (postfix)
        self.bar = cls(total=self.total, desc=desc, leave=False, delay=delay, mininterval=0.5,
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                                  "[{elapsed}<{remaining}{postfix}]", postfix=sim_time(0.0, self.total),
                       **kwargs)

    def attach(self, env: Any) -> None:
        """The run's simpy environment, to count its events (see :func:`simsys.runner.run`)."""
        self.env = env

    def text(self, now: float) -> str:
        """``'37.2 s / 60 s · 48,100 events/s'``."""
        out = sim_time(now, self.total)
        if self.env is not None:
            from .sim.engine import events_so_far

            elapsed = max(time.perf_counter() - self.started, 1e-9)
            out += f" · {fmt_number(events_so_far(self.env) / elapsed, 3)} events/s"
        return out

    def __call__(self, now: float) -> None:
        self.bar.set_postfix_str(self.text(now), refresh=False)
        self.bar.update(now - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class RunsBar:
    """Progress of many runs (sweeps, comparisons): a bar on stderr or a widget (runs done,
    failures, time left), or a callback ``(done, total, failed)``."""

    def __init__(self, progress: Any, total: int, done: int, failed: int, desc: str = "sweep"):
        self.callback = progress if callable(progress) and progress is not True else None
        self.done, self.failed, self.total = done, failed, total
        self.bar = None
        show = progress is True or (progress is None and interactive())
        if show:
            tqdm = tqdm_class()
            self.bar = tqdm(total=total, initial=done, unit="run", desc=desc, file=sys.stderr,
                            dynamic_ncols=True, smoothing=0.1)
            self.bar.set_postfix(failed=failed, refresh=False)

    def update(self, total: int, ok: bool) -> None:
        self.done += 1
        self.failed += not ok
        if self.bar is not None:
            if total != self.total:
                self.bar.total = total
            if not ok:
                self.bar.set_postfix(failed=self.failed, refresh=False)
            self.bar.update(1)
        self.total = total
        if self.callback is not None:
            self.callback(self.done, total, self.failed)

    def say(self, message: str) -> None:
        """A note for the user on stderr, above the bar when there is one."""
        if self.bar is not None:
            self.bar.write(f"simsys: {message}", file=sys.stderr)
        else:
            print(f"simsys: {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def interactive() -> bool:
    """Whether to show a bar unasked: in Jupyter, or when stderr is a terminal."""
    if in_notebook():
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
