"""OTLP export and calibration speed: export of a traced checkout run of N requests (against
the run's own time) and calibration of the spans it wrote (time, and peak memory in the
process). Run ``python benchmarks/otlp.py`` (1M requests: minutes, several GB of JSON on
disk) or ``--requests 100000``. A report, not a gate: the targets are export ≤ 2× the run and
calibration of 1M spans ≤ 60 s and ≤ 1 GB.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import simsys
from simsys.calibrate import calibrate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1_000_000)
    args = ap.parse_args()
    seconds = args.requests / 300.0   # checkout's 300 requests/s
    t = time.perf_counter()
    r = simsys.run("scenarios/checkout.yaml", seed=1,
                   overrides={"trace": True, "duration": f"{seconds}s", "warmup": 0})
    run_time = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "traces.json")
        t = time.perf_counter()
        counts = r.to_otlp(path)
        export_time = time.perf_counter() - t
        size = os.path.getsize(path)
        del r
        t = time.perf_counter()
        _, cal = calibrate(path)
        cal_time = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"requests {counts['traces']:,}  spans {counts['spans']:,}  file {size / 1e6:.0f} MB")
    print(f"run {run_time:.1f} s  export {export_time:.1f} s  "
          f"(ratio {export_time / run_time:.2f}, target ≤ 2)")
    print(f"calibrate {cal['spans']:,} spans in {cal_time:.1f} s "
          f"({cal_time / cal['spans'] * 1e6:.1f} s per 1M spans, target ≤ 60); "
          f"peak RSS of the process {peak:.0f} MB")


if __name__ == "__main__":
    main()
