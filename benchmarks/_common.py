"""Helpers every benchmark script shares: best-of-N timing, peak memory in a fresh process, tables.

Import it from a script in this folder (``python benchmarks/x.py`` puts the folder on
``sys.path``)::

    from _common import best_of_each, peak_memory, table

Timing
    :func:`best_of_each` runs several callables in interleaved rounds (A B C, A B C, A B C) and
    keeps each one's fastest time, so a slow spell on a shared machine hurts every contender
    alike and the minimum filters it out.

Memory
    :func:`peak_memory` runs ``module:function(*args)`` in a fresh interpreter, after the imports
    and a small warm-up call, and reports the peak above what the process held just before the
    call. ``method="rss"`` (the default) reads the kernel's resident-set high-water mark, reset
    just before the call (Linux ``/proc/self/clear_refs``): it is what the machine pays,
    allocator slack and fragmentation included. ``method="tracemalloc"`` counts the bytes Python
    and numpy allocated (their own bookkeeping excluded), a cross-check that says how much of the
    RSS figure is data. The function returns the number of units (requests, connections, runs)
    to divide by.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from simsys.formatting import fmt_count

HERE = os.path.dirname(os.path.abspath(__file__))


# -- timing ---------------------------------------------------------------------------------
@dataclass
class Timing:
    """The wall-clock (and CPU) times of one contender, seconds, and what its last call returned.

    CPU time is kept to tell a busy machine from a slow program: when wall-clock time is well
    above CPU time, other processes were taking the cores.
    """

    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    value: Any = None
    error: str | None = None

    @property
    def best(self) -> float:
        return min(self.times) if self.times else float("nan")

    @property
    def best_cpu(self) -> float:
        return min(self.cpu_times) if self.cpu_times else float("nan")


def best_of_each(contenders: dict[str, Callable[[], Any]], repeat: int = 3,
                 summarize: dict[str, Callable[[Any], Any]] | None = None) -> dict[str, Timing]:
    """Time each zero-argument callable ``repeat`` times, in interleaved rounds.

    ``summarize[name]``, if given, turns a contender's return value into a small summary (a
    count, a mean) outside the timed region; only the summary is kept, so nothing a run recorded
    is alive while the next one runs. A contender that raises is timed no further; its
    ``error`` says why, and the others go on.
    """
    summarize = summarize or {}
    out = {name: Timing() for name in contenders}
    for _ in range(repeat):
        for name, fn in contenders.items():
            timing = out[name]
            if timing.error is not None:
                continue
            gc.collect()
            try:
                cpu_started = time.process_time()
                started = time.perf_counter()
                value = fn()
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu_started
                summary = summarize[name](value) if name in summarize else value
            except Exception as exc:  # a report goes on; the table shows the error
                timing.error = f"{type(exc).__name__}: {exc}"
                continue
            del value
            timing.times.append(elapsed)
            timing.cpu_times.append(cpu)
            timing.value = summary
    return out


# -- memory ---------------------------------------------------------------------------------
@dataclass
class PeakMemory:
    """Peak bytes above the baseline while the measured call ran, and the units it reported."""

    method: str
    baseline: int
    peak: int
    units: int
    seconds: float

    @property
    def per_unit(self) -> float:
        return self.peak / self.units if self.units else float("nan")


def peak_memory(target: str, args: Sequence[Any] = (), *, warmup: Sequence[Any] | None = None,
                method: str = "rss", timeout: float = 1800) -> PeakMemory:
    """Measure the peak memory of ``target`` (``"module:function"``) called with ``args``.

    The call runs in a fresh interpreter whose ``sys.path`` starts with this folder. The module
    is imported and, if ``warmup`` is given, the function is called once with those arguments
    first, so imports, lazy initialisation and caches count as baseline, not as the run's cost.
    The function must return the number of units it recorded (an int).
    """
    if method not in ("rss", "tracemalloc"):
        raise ValueError(f"unknown method {method!r}; expected 'rss' or 'tracemalloc'")
    payload = json.dumps({"target": target, "args": list(args),
                          "warmup": None if warmup is None else list(warmup), "method": method})
    code = f"import sys; sys.path.insert(0, {HERE!r}); import _common; _common._child_main()"
    proc = subprocess.run([sys.executable, "-c", code, payload], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"memory child for {target} failed: {tail[0]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return PeakMemory(**data)


def _rss_now() -> int | None:
    """Resident set size of this process, bytes (Linux), else None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def _rss_peak() -> int:
    """High-water mark of the resident set, bytes."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def _reset_rss_peak() -> bool:
    """Reset the kernel's RSS high-water mark to the current RSS (Linux ≥ 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _child_main() -> None:
    """Entry point of the measuring interpreter started by :func:`peak_memory`."""
    p = json.loads(sys.argv[1])
    module, _, name = p["target"].partition(":")
    fn = getattr(importlib.import_module(module), name)
    if p["warmup"] is not None:
        fn(*p["warmup"])
    gc.collect()
    started = time.perf_counter()
    if p["method"] == "tracemalloc":
        import tracemalloc

        tracemalloc.start()
        units = fn(*p["args"])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        baseline = 0
    else:
        now = _rss_now()
        # Without a resettable high-water mark, the peak so far is the (conservative) baseline.
        baseline = now if (now is not None and _reset_rss_peak()) else _rss_peak()
        units = fn(*p["args"])
        peak = _rss_peak() - baseline
    seconds = time.perf_counter() - started
    print(json.dumps({"method": p["method"], "baseline": baseline, "peak": peak,
                      "units": int(units), "seconds": seconds}))


# -- reporting ------------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[bool] | None = None
          ) -> str:
    """A plain-text table; columns flagged in ``right`` are right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    right = list(right) if right is not None else [False] * len(headers)

    def line(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if ra else c.ljust(w)
                         for c, w, ra in zip(r, widths, right, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    """``PASS``, ``FAIL``, or ``n/a`` when the value could not be measured."""
    if value != value:  # NaN
        return "n/a"
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "FAIL"


def machine() -> str:
    """One line saying when and where the figures were measured."""
    versions = []
    for mod in ("simpy", "numpy", "ciw"):
        try:
            versions.append(f"{mod} {importlib.import_module(mod).__version__}")
        except Exception:  # a missing optional package is just not listed
            pass
    return (f"{date.today().isoformat()} · Python {platform.python_version()} · "
            f"{', '.join(versions)} · {os.cpu_count()} CPUs · {platform.machine()} "
            f"{platform.system()}")


fmt_int = fmt_count  # whole numbers with thousands separated, as everywhere in simsys
