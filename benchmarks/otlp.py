"""OTLP export and calibration speed (a report, not a gate).

1. Export: a traced run of ``scenarios/checkout.yaml`` with N requests (default 1M), timed,
   then ``Result.to_otlp``, timed. Target: export ≤ 2× the run's own time.
2. Calibration: a file of about M spans (default 1M) calibrated in a fresh interpreter, timed,
   with that process's peak RSS. Target: ≤ 60 s and ≤ 1 GB.

Run ``python benchmarks/otlp.py`` (several minutes; the 1M-request file is a few GB in a
temporary directory, deleted after) or ``--requests 100000 --spans 200000`` for a quick look.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import simsys

RATE = 300.0           # checkout's requests/s
SPANS_PER_REQUEST = 6.6  # measured on checkout: root, 4 visits, 3 calls of which 0.3 pay

# Peak RSS from /proc's VmHWM, not getrusage: ru_maxrss survives exec, so a child started from
# this (large) process would report the parent's size.
CHILD = """
import json, sys, time
from simsys.calibrate import calibrate
t = time.perf_counter()
_, counts = calibrate(sys.argv[1])
took = time.perf_counter() - t
with open("/proc/self/status") as f:
    hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
print(json.dumps({"time": took, "spans": counts["spans"], "rss_mb": hwm / 1024}))
"""


def traced_run(requests: int) -> tuple[simsys.Result, float]:
    t = time.perf_counter()
    r = simsys.run("scenarios/checkout.yaml", seed=1,
                   overrides={"trace": True, "duration": f"{requests / RATE}s", "warmup": 0})
    return r, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--spans", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "export.json")
        r, run_time = traced_run(args.requests)
        t = time.perf_counter()
        counts = r.to_otlp(path)
        export_time = time.perf_counter() - t
        size = os.path.getsize(path)
        os.remove(path)
        del r
        print(f"export: {counts['traces']:,} requests, {counts['spans']:,} spans, "
              f"{size / 1e6:,.0f} MB; run {run_time:.1f} s, export {export_time:.1f} s "
              f"= {export_time / run_time:.2f}× the run (target ≤ 2×)")
        r, _ = traced_run(int(args.spans / SPANS_PER_REQUEST))
        r.to_otlp(path)
        del r
        out = subprocess.run([sys.executable, "-c", CHILD, path], check=True,
                             capture_output=True, text=True).stdout
        cal = json.loads(out)
        print(f"calibrate: {cal['spans']:,} spans ({os.path.getsize(path) / 1e6:,.0f} MB) in "
              f"{cal['time']:.1f} s (target ≤ 60 s), peak RSS {cal['rss_mb']:,.0f} MB "
              f"(target ≤ 1 GB)")


if __name__ == "__main__":
    main()
