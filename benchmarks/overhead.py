"""What switching features on costs, measured on the flagship (``scenarios/checkout.yaml``).

Each contender runs the same scenario and seed; only the feature differs. Ratios are simulated
requests per wall second of the variant over the plain flagship, best of three, in one run:

- chaos: Chaos Monkey on every service (continuous, a kill every 2 min per service), health
  checks, restarts. Target ≥ 0.9×.
- patterns, configured but not triggered: every call guarded by a generous timeout, retries, a
  circuit breaker and a bulkhead that never fire. Target ≥ 0.85× (≤ 15% cost).

Usage: ``python benchmarks/overhead.py [--quick]``.
"""

from __future__ import annotations

import argparse
import copy
import sys

from _common import best_of_each, machine, table, verdict

import simsys
from simsys.spec.load import read


def flagship(duration: str) -> dict:
    data, _, _ = read("scenarios/checkout.yaml")
    data = copy.deepcopy(data)
    data["duration"] = duration
    data["warmup"] = "10s"
    data["sample_every"] = "10s"
    return data


def with_chaos(data: dict) -> dict:
    out = copy.deepcopy(data)
    out["recovery"] = {"health_check": {"interval": "2s", "timeout": "500ms", "unhealthy_after": 2},
                       "restart": {"dist": "exponential", "mean": "20s"}}
    out["chaos"] = {"monkey": {"targets": "all", "grouping": "service",
                               "mean_time_between_failures": "2min", "min_healthy": 1}}
    return out


def with_patterns(data: dict) -> dict:
    """Every call guarded; nothing ever fires (timeouts far above any latency, no failures)."""
    out = copy.deepcopy(data)
    for svc in out["services"].values():
        svc["timeout"] = "30s"
        svc["retry"] = {"max_attempts": 3, "backoff": "10ms", "jitter": "full", "budget": "10%"}
        svc["circuit_breaker"] = {"error_threshold": "50%", "volume_threshold": 10**6}
        svc["bulkhead"] = {"max_concurrent": 10**6}
    for link in out.get("links", {}).values():
        link.pop("loss", None)
    base_links = out.get("links", {})
    out["links"] = base_links
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    args = parser.parse_args()
    duration = "30s" if args.quick else "5min"
    plain = flagship(duration)
    lossless = copy.deepcopy(plain)
    for link in lossless.get("links", {}).values():
        link.pop("loss", None)
    variants = {
        "flagship": plain,
        "flagship + chaos monkey": with_chaos(plain),
        "flagship, no loss": lossless,
        "flagship, no loss + patterns (idle)": with_patterns(plain),
    }
    contenders = {name: (lambda d=d: simsys.run(d)) for name, d in variants.items()}
    summaries = {name: (lambda r: (len(r.records.requests), r.summary()["calls"]["retries"],
                                   r.summary()["incidents"]["count"]))
                 for name in variants}
    timings = best_of_each(contenders, repeat=1 if args.quick else 3, summarize=summaries)
    rate = {name: t.value[0] / t.best for name, t in timings.items() if t.value}
    rows = []
    targets = {"flagship + chaos monkey": ("flagship", 0.9),
               "flagship, no loss + patterns (idle)": ("flagship, no loss", 0.85)}
    for name, t in timings.items():
        base, target = targets.get(name, (None, None))
        ratio = rate[name] / rate[base] if base else float("nan")
        rows.append([name, f"{t.value[0]:,}", f"{t.best:.2f}", f"{rate[name]:,.0f}",
                     "-" if base is None else f"{ratio:.2f}×",
                     "-" if base is None else f"≥ {target}× {verdict(ratio, target)}",
                     t.value[1], t.value[2]])
    print(f"simsys feature overhead on the flagship ({duration} simulated) — {machine()}")
    print(table(["variant", "requests", "best s", "requests/s", "ratio", "target", "retries",
                 "incidents"], rows, right=[False, True, True, True, True, False, True, True]))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
