"""Millions of WebSocket connections: simsys's aggregate representation against the naive way.

The scenario: a population of N clients, each holding one WebSocket connection to a chat
service (lifetime exponential, mean 10 min; back one ``reconnect`` wait after it ends), first
attempts spread over the first minute, 0.1 messages/s from each client and 1 message/s to it
(512 B), a 1 ms handshake on 8 WebSocket workers per replica, 50 000 connections per replica
(N / 50 000 replicas, least connections), exponential client latency of mean 20 ms, heartbeats
every 30 s, 10 simulated minutes. About 1.9 N connections are opened and 660 N messages sent.

Rows:

* **simsys, aggregate** — ``representation: aggregate`` (per-replica counts, 10 ms steps) at
  N = 1 000 000 and N = 10 000 000. Time and peak memory (resident set above the interpreter
  after imports and a small warm-up run) are measured in a fresh process.
* **simsys, exact** — one object per client and an event per attempt, handshake, close and
  message, at a size it can do in reasonable time; extrapolated linearly (time ∝ connections ×
  simulated time, memory ∝ connections) to N = 1 000 000 for 10 minutes.
* **naive simpy** — the same model written the obvious way, in this file: one simpy process
  per client that connects, asks a ``simpy.Resource`` for a worker, then loops over its
  messages with ``yield env.timeout(...)``. Measured at a small size and extrapolated the same
  way (it would need hours and gigabytes at 1M).

Run ``python benchmarks/websockets.py`` (a few minutes on two cores) or ``--quick`` (small sizes,
for smoke tests). It prints a table with the targets (1M: ≤ 30 s, ≤ 150 MB; 10M: ≤ 300 s,
≤ 400 MB) and always exits 0: it is a report, not a gate.
"""

from __future__ import annotations

import argparse
import heapq
import math
from typing import Any

import numpy as np
import simpy
from _common import fmt_int, machine, peak_memory, table, verdict

import simsys

PER_REPLICA = 50_000
MINUTES = 10
TARGETS = {1_000_000: (30.0, 150e6), 10_000_000: (300.0, 400e6)}


def scenario(clients: int, minutes: float = MINUTES, representation: str = "aggregate") -> dict:
    replicas = max(1, math.ceil(clients / PER_REPLICA))
    return {
        "name": f"ws-{clients}", "duration": f"{minutes}min", "sample_every": "1s",
        "services": {"chat": {
            "replicas": replicas, "workers": 8, "balancer": "least_connections",
            "websocket": {"max_connections": 60_000, "handshake": "1ms", "heartbeat": "30s",
                          "representation": representation},
            "memory": {"base": "200MB", "per_connection": "48KB"},
        }},
        "links": {"client->chat": {"latency": {"dist": "exponential", "mean": "20ms"}}},
        "workload": [{"type": "websocket", "target": "chat", "clients": clients,
                      "ramp": f"{min(60.0, minutes * 60 / 4)}s",
                      "lifetime": {"dist": "exponential", "mean": "10min"},
                      "messages": {"client_rate": "0.1/s", "server_rate": "1/s",
                                   "size": "512B"}}],
    }


def run_simsys(clients: int, minutes: float = MINUTES, representation: str = "aggregate") -> int:
    """One run; returns the connections opened (the unit reported per second and per byte)."""
    r = simsys.run(scenario(clients, minutes, representation), seed=1)
    counts = r.records.stats["websockets"]["pools"]["chat"]["counts"]
    return int(counts["opened"].sum())


# -- the naive way: one simpy process per client ---------------------------------------------
def run_naive(clients: int, minutes: float = MINUTES) -> int:
    """The same model with one simpy process per client; returns connections opened."""
    env = simpy.Environment()
    rng = np.random.default_rng(1)
    replicas = max(1, math.ceil(clients / PER_REPLICA))
    workers = [simpy.Resource(env, capacity=8) for _ in range(replicas)]
    conns = [0] * replicas
    heap = [(0, r) for r in range(replicas)]      # least connections, lazily updated
    stats = {"opened": 0, "to_clients": 0, "to_server": 0, "bytes": 0.0, "latency": 0.0}
    duration = minutes * 60.0
    ramp = min(60.0, duration / 4)

    def least() -> int:
        while True:
            n, r = heap[0]
            if n == conns[r]:
                return r
            heapq.heapreplace(heap, (conns[r], r))

    def client(env: simpy.Environment) -> Any:
        yield env.timeout(rng.uniform(0, ramp))
        while True:
            yield env.timeout(rng.exponential(0.020))             # the upgrade goes out
            r = least()
            if conns[r] >= 60_000:
                yield env.timeout(rng.exponential(0.020) + rng.uniform(0, 2.0))
                continue
            with workers[r].request() as req:
                yield req
                yield env.timeout(0.001)                          # handshake
            conns[r] += 1
            heapq.heappush(heap, (conns[r], r))
            stats["opened"] += 1
            end = env.now + rng.exponential(600.0)
            while True:
                gap = rng.exponential(1 / 1.1)
                if env.now + gap >= end:
                    yield env.timeout(end - env.now)
                    break
                yield env.timeout(gap)
                if rng.random() < 1 / 1.1:
                    stats["to_clients"] += 1
                    stats["bytes"] += 516
                    stats["latency"] += rng.exponential(0.020)
                else:
                    stats["to_server"] += 1
                    stats["bytes"] += 520
            conns[r] -= 1
            heapq.heappush(heap, (conns[r], r))
            yield env.timeout(rng.exponential(0.020) + rng.uniform(0, 1.0))

    for _ in range(clients):
        env.process(client(env))
    env.run(until=duration)
    return stats["opened"]


def measure(fn: str, clients: int, minutes: float, *extra: Any) -> tuple[float, float, int]:
    """(seconds, peak bytes above the interpreter, connections opened) in a fresh process."""
    pm = peak_memory(f"websockets:{fn}", [clients, minutes, *extra],
                     warmup=[1_000, 0.5, *extra])
    return pm.seconds, float(pm.peak), pm.units


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = ap.parse_args()
    if args.quick:
        big = [(20_000, 1.0), (100_000, 1.0)]
        small = (2_000, 1.0)
    else:
        big = [(1_000_000, MINUTES), (10_000_000, MINUTES)]
        small = (20_000, 2.0)
    rows = []
    print(f"WebSocket connections at scale — {machine()}")
    for clients, minutes in big:
        secs, peak, opened = measure("run_simsys", clients, minutes, "aggregate")
        limit = TARGETS.get(clients)
        rows.append([f"simsys aggregate, {fmt_int(clients)} clients, {minutes:g} min",
                     f"{secs:.1f}", f"{peak / 1e6:.0f}", fmt_int(opened), "measured",
                     f"{verdict(secs, limit[0], False)} / {verdict(peak, limit[1], False)}"
                     if limit else "-"])
    n, minutes = small
    scale_to = big[0][0]
    scale_time = scale_to / n * (big[0][1] / minutes)
    scale_mem = scale_to / n
    for label, fn, extra in (("simsys exact", "run_simsys", ("exact",)),
                             ("naive simpy (a process per client)", "run_naive", ())):
        secs, peak, opened = measure(fn, n, minutes, *extra)
        rows.append([f"{label}, {fmt_int(n)} clients, {minutes:g} min", f"{secs:.1f}",
                     f"{peak / 1e6:.0f}", fmt_int(opened), "measured", "-"])
        rows.append([f"{label}, {fmt_int(scale_to)} clients, {big[0][1]:g} min",
                     f"{secs * scale_time:,.0f}", f"{peak * scale_mem / 1e6:,.0f}",
                     "-", f"extrapolated ×{scale_time:,.0f} time, "
                     f"×{scale_mem:,.0f} memory", "-"])
    print(table(["run", "seconds", "peak MB", "connections opened", "how", "targets"], rows,
                right=[False, True, True, True, False, False]))
    print("Peak MB: resident set above the interpreter (after imports and a warm-up run), in a "
          "fresh process. Extrapolations are linear: time in clients × simulated time, memory "
          "in clients.")


if __name__ == "__main__":
    main()
