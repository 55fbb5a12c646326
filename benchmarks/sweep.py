"""Sweep machinery: parallel speed-up and per-run overhead, measured in one run.

* **Speed-up**: 40 CPU-bound runs (one web service at 50 requests/s, the simulated duration
  calibrated so one run takes about ``--run-seconds``) with ``jobs=2`` against ``jobs=1``. jobs=1
  runs in this process; jobs=2 starts a process pool, and its start-up is part of the time.
  Target: ≥ 1.8× on two free cores.
* **Overhead per run**: ``--tiny`` tiny runs (1 simulated second) through ``simsys.sweep`` with
  ``jobs=1`` and an output directory: (sweep wall time − time spent inside the runs) / runs,
  both from the same sweep, so a busy machine hardly moves it. It covers grid checks, seeds,
  scheduling, rows, parquet parts, the final frame and table. Target: ≤ 50 ms. Also shown:
  against a plain loop of ``simsys.run(...).summary()``, and for ``jobs=2`` from the parent's
  view, (2 × wall − time inside the runs) / runs, pool start-up included.

Each measurement is repeated ``--repeat`` times, interleaved, and the best kept.

Run ``python benchmarks/sweep.py`` (about a minute on two cores) or ``--quick`` (seconds; too
small for the targets to mean anything). It prints a table with PASS/FAIL per target and exits
0: it is a report, not a gate. On a shared machine, read the load average it prints first.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time

import simsys
from simsys.sweeping import replication_seed, sweep

BASE = {
    "name": "bench",
    "duration": "200s",
    "services": {"web": {"workers": 2, "service_time": {"dist": "exponential", "mean": "10ms"}}},
    "workload": [{"type": "poisson", "rate": "50/s", "target": "web"}],
}
TARGET_SPEEDUP = 1.8
TARGET_OVERHEAD_MS = 50.0


def scenario(duration_s: float) -> dict:
    return {**BASE, "duration": f"{duration_s:.6g}s"}


def calibrate(run_seconds: float) -> float:
    """Simulated seconds that take about ``run_seconds`` of CPU per run (summary included)."""
    probe = 200.0
    simsys.run(scenario(probe), seed=0).summary()  # warm imports and caches
    started = time.perf_counter()
    simsys.run(scenario(probe), seed=1).summary()
    per_sim_second = (time.perf_counter() - started) / probe
    return max(1.0, run_seconds / per_sim_second)


def speedup(runs: int, run_seconds: float, repeat: int) -> dict:
    spec = scenario(calibrate(run_seconds))
    grid = {"services.web.workers": [2, 3, 4, 5]}
    reps = max(1, runs // 4)
    t1 = t2 = c1 = c2 = float("inf")
    for _ in range(repeat):  # interleaved, best of each: a busy spell hurts both alike
        cpu, started = cpu_seconds(), time.perf_counter()
        one = sweep(spec, grid, reps, jobs=1, progress=False)
        t1 = min(t1, time.perf_counter() - started)
        c1 = min(c1, cpu_seconds() - cpu)
        cpu, started = cpu_seconds(), time.perf_counter()
        two = sweep(spec, grid, reps, jobs=2, progress=False)
        wall = time.perf_counter() - started
        if wall < t2:
            t2, c2 = wall, cpu_seconds() - cpu
        assert one.table().equals(two.table()), "jobs=1 and jobs=2 disagree"
    return {"runs": len(one.runs), "duration": spec["duration"], "jobs1": t1, "jobs2": t2,
            "cpu1": c1, "cpu2": c2, "mean_run": float(one.runs["wall_time"].mean())}


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the pool's workers, once shut down)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def overhead(runs: int, repeat: int) -> dict:
    spec = {**BASE, "duration": "1s"}
    grid = {"services.web.workers": [1, 2, 3, 4]}
    reps = max(1, runs // 4)
    simsys.run(spec, seed=0).summary()  # warm
    best: dict[str, float] = {}

    def keep(name: str, value: float) -> None:
        best[name] = min(best.get(name, float("inf")), value)

    for i in range(repeat):
        started = time.perf_counter()
        for w in grid["services.web.workers"]:
            for r in range(reps):
                simsys.run(spec, seed=replication_seed(0, r),
                           overrides={"services.web.workers": w}).summary()
        keep("loop", time.perf_counter() - started)
        with tempfile.TemporaryDirectory(prefix="simsys-bench-") as tmp:
            started = time.perf_counter()
            sw = sweep(spec, grid, reps, jobs=1, out=os.path.join(tmp, f"one{i}"), progress=False)
            wall = time.perf_counter() - started
            keep("inline", wall)
            keep("machinery", wall - float(sw.runs["wall_time"].sum()))
            started = time.perf_counter()
            sw2 = sweep(spec, grid, reps, jobs=2, out=os.path.join(tmp, f"two{i}"), progress=False)
            wall = time.perf_counter() - started
            keep("pooled", wall)
            keep("pool_machinery", 2 * wall - float(sw2.runs["wall_time"].sum()))
    n = len(sw.runs)
    return {
        "runs": n,
        **best,
        "per_run_ms": best["machinery"] / n * 1e3,
        "per_run_vs_loop_ms": (best["inline"] - best["loop"]) / n * 1e3,
        "per_run_pool_ms": best["pool_machinery"] / n * 1e3,
        "loop_per_run_ms": best["loop"] / n * 1e3,
    }


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for smoke tests")
    parser.add_argument("--runs", type=int, default=40, help="CPU-bound runs for the speed-up")
    parser.add_argument("--run-seconds", type=float, default=0.5, help="CPU time of one such run")
    parser.add_argument("--tiny", type=int, default=400, help="tiny runs for the overhead")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best of each is kept")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.run_seconds, args.tiny, args.repeat = 8, 0.05, 40, 1

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"simsys {simsys.__version__} · Python {platform.python_version()} · {os.cpu_count()} CPUs"
          f" · load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    s = speedup(args.runs, args.run_seconds, args.repeat)
    o = overhead(args.tiny, args.repeat)
    ratio = s["jobs1"] / s["jobs2"]
    rows = [
        ("speed-up jobs=2 vs jobs=1", f"{ratio:.2f}x", f">= {TARGET_SPEEDUP}x",
         verdict(ratio, TARGET_SPEEDUP, True),
         f"{s['runs']} runs of {s['duration']} simulated, {s['mean_run']:.2f} s each; "
         f"jobs=1 {s['jobs1']:.1f} s, jobs=2 {s['jobs2']:.1f} s"),
        ("cores jobs=2 had (CPU/wall)", f"{s['cpu2'] / s['jobs2']:.2f}", "2 when idle", "",
         "below ~1.9 the machine was busy and the speed-up above says little"),
        ("CPU per run, jobs=2 / jobs=1", f"{s['cpu2'] / s['cpu1']:.3f}", "~1", "",
         f"{s['cpu1'] / s['runs']:.3f} s vs {s['cpu2'] / s['runs']:.3f} s: the work parallel "
         "execution adds"),
        ("overhead per run, jobs=1", f"{o['per_run_ms']:.1f} ms", f"<= {TARGET_OVERHEAD_MS:g} ms",
         verdict(o["per_run_ms"], TARGET_OVERHEAD_MS, False),
         f"{o['runs']} tiny runs ({o['loop_per_run_ms']:.1f} ms each in a plain loop): sweep wall "
         f"minus time inside the runs; vs the loop: {o['per_run_vs_loop_ms']:+.1f} ms"),
        ("overhead per run, jobs=2", f"{o['per_run_pool_ms']:.1f} ms", f"<= {TARGET_OVERHEAD_MS:g} ms",
         verdict(o["per_run_pool_ms"], TARGET_OVERHEAD_MS, False),
         f"2 x wall ({o['pooled']:.2f} s) minus time inside the runs, pool start-up included"),
    ]
    headers = ("figure", "value", "target", "", "how")
    widths = [max(len(str(r[i])) for r in (headers, *rows)) for i in range(len(headers))]
    for r in (headers, tuple("-" * w for w in widths), *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
