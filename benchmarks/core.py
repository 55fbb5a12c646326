"""Core speed and memory of simsys against bare simpy and Ciw, measured in one run.

Two models, each written three (or two) ways and timed in the same process, best of three:

* **M/M/1** (λ = 0.9/s, μ = 1/s, 500k requests): simsys; bare simpy (one process per customer,
  ``simpy.Resource``, numpy draws); Ciw.
* **5-hop synchronous chain** (4 workers per station, exponential service of mean 10 ms,
  constant 1 ms one-way links, Poisson arrivals at 50/s, 200k requests): station 1 calls
  station 2 and waits, and so on; each worker is held while its downstream call is
  outstanding, and each link delay is paid by the request and again by the response. simsys and
  the same model in bare simpy.

Then the peak memory of a 1M-request simsys M/M/1 run, measured alone in a fresh interpreter.

Run ``python benchmarks/core.py`` (about two minutes on two cores) or ``--quick`` (seconds;
sizes too small for the targets to mean anything, for smoke tests). It prints a table with
PASS/FAIL per target and always exits 0: it is a report, not a gate.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy
from _common import best_of_each, fmt_int, machine, peak_memory, table, verdict

import simsys

try:  # imported here, not in the timed call; optional: its row then reports the error
    import ciw
except ImportError:  # pragma: no cover
    ciw = None

# -- the models' numbers ----------------------------------------------------------------------
ARRIVAL_RATE = 0.9          # λ, per second
SERVICE_RATE = 1.0          # μ, per second
MM1_SAMPLE_EVERY = 10.0     # as scenarios/mm1.yaml: a timeseries sample every 10 simulated s

HOPS = 5
WORKERS = 4
HOP_SERVICE_TIME = 0.010    # mean, exponential, seconds
LINK_TIME = 0.001           # one way, constant, seconds
CHAIN_RATE = 50.0           # per second; station 1 then keeps ~72 % of its workers busy

SIZES = {  # requests: M/M/1 timing, chain timing, memory run
    "full": (500_000, 200_000, 1_000_000),
    "quick": (20_000, 5_000, 50_000),
}
WARMUP_REQUESTS = 2_000     # the memory child's warm-up run, counted as baseline

TARGETS = {  # name: (threshold, higher is better)
    "single hop vs bare simpy": (1.0, True),
    "single hop vs ciw": (2.0, True),
    "chain vs bare simpy": (1.2, True),
    "peak memory per recorded request": (150.0, False),
}


def _batched(draw: Callable[[int], np.ndarray], n: int = 4096) -> Callable[[], float]:
    """A zero-argument sampler pulling from ``draw(n)`` batches: numpy's fast path, per value."""
    return itertools.chain.from_iterable(
        map(lambda _: draw(n).tolist(), itertools.repeat(None))
    ).__next__


def _streams(seed: int, k: int) -> list[np.random.Generator]:
    """``k`` independent generators. (``default_rng([seed, 0])`` would equal ``default_rng(seed)``.)"""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(k)]


# -- M/M/1 ----------------------------------------------------------------------------------
def mm1_spec(num_requests: int, seed: int = 1) -> dict[str, Any]:
    return {
        "name": "mm1-bench",
        "seed": seed,
        "duration": num_requests / ARRIVAL_RATE,
        "sample_every": MM1_SAMPLE_EVERY,
        "services": {"server": {"workers": 1, "service_time": {
            "dist": "exponential", "mean": 1.0 / SERVICE_RATE}}},
        "workload": [{"type": "poisson", "rate": ARRIVAL_RATE, "target": "server"}],
    }


def simsys_mm1(num_requests: int, seed: int = 1) -> Any:
    return simsys.run(mm1_spec(num_requests, seed))


def bare_mm1(num_requests: int, seed: int = 1) -> tuple[list[float], list[float]]:
    """M/M/1 as a simpy user would write it: a process per customer and a ``Resource``."""
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)
    arrivals, services = _streams(seed, 2)
    gap = _batched(lambda n: arrivals.exponential(1.0 / ARRIVAL_RATE, n))
    service_time = _batched(lambda n: services.exponential(1.0 / SERVICE_RATE, n))
    start: list[float] = []
    end: list[float] = []

    def customer(env: simpy.Environment):
        arrived = env.now
        with server.request() as req:
            yield req
            yield env.timeout(service_time())
        start.append(arrived)
        end.append(env.now)

    def source(env: simpy.Environment):
        while True:
            yield env.timeout(gap())
            env.process(customer(env))

    env.process(source(env))
    env.run(until=num_requests / ARRIVAL_RATE)
    return start, end


def ciw_mm1(num_requests: int, seed: int = 1) -> list[Any]:
    if ciw is None:
        raise ImportError("ciw is not installed (pip install ciw, or the test extras)")
    ciw.seed(seed)
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=ARRIVAL_RATE)],
        service_distributions=[ciw.dists.Exponential(rate=SERVICE_RATE)],
        number_of_servers=[1],
    )
    sim = ciw.Simulation(network)
    sim.simulate_until_max_time(num_requests / ARRIVAL_RATE)
    return sim.get_all_records()


# -- the 5-hop chain ------------------------------------------------------------------------
def chain_spec(num_requests: int, seed: int = 1) -> dict[str, Any]:
    services: dict[str, Any] = {}
    for i in range(1, HOPS + 1):
        services[f"s{i}"] = {
            "workers": WORKERS,
            "service_time": {"dist": "exponential", "mean": HOP_SERVICE_TIME},
            **({"calls": [f"s{i + 1}"]} if i < HOPS else {}),
        }
    return {
        "name": "chain-bench",
        "seed": seed,
        "duration": num_requests / CHAIN_RATE,
        "services": services,
        "links": {"default": {"latency": LINK_TIME}},
        "workload": [{"type": "poisson", "rate": CHAIN_RATE, "target": "s1"}],
    }


def simsys_chain(num_requests: int, seed: int = 1) -> Any:
    return simsys.run(chain_spec(num_requests, seed))


def bare_chain(num_requests: int, seed: int = 1) -> tuple[list[float], list[float]]:
    """The chain in simpy: a process per request; each hop holds its station's worker across
    the nested call (``yield from``, the faster idiom than a sub-process per hop)."""
    env = simpy.Environment()
    stations = [simpy.Resource(env, capacity=WORKERS) for _ in range(HOPS)]
    rngs = _streams(seed, HOPS + 1)
    gap = _batched(lambda n: rngs[0].exponential(1.0 / CHAIN_RATE, n))
    service_time = [
        _batched(lambda n, rng=rng: rng.exponential(HOP_SERVICE_TIME, n)) for rng in rngs[1:]
    ]
    start: list[float] = []
    end: list[float] = []

    def visit(env: simpy.Environment, hop: int):
        with stations[hop].request() as req:
            yield req
            yield env.timeout(service_time[hop]())
            if hop + 1 < HOPS:
                yield env.timeout(LINK_TIME)        # the request crosses the link
                yield from visit(env, hop + 1)
                yield env.timeout(LINK_TIME)        # and the response comes back

    def request(env: simpy.Environment):
        sent = env.now
        yield from visit(env, 0)
        start.append(sent)
        end.append(env.now)

    def source(env: simpy.Environment):
        while True:
            yield env.timeout(gap())
            env.process(request(env))

    env.process(source(env))
    env.run(until=num_requests / CHAIN_RATE)
    return start, end


# -- summaries (outside the timed region) ---------------------------------------------------
def _summary_simsys(result: Any) -> tuple[int, float]:
    r = result.records.requests
    if not len(r):
        return 0, float("nan")
    return len(r), float(np.mean(np.frombuffer(r.end) - np.frombuffer(r.start)))


def _summary_bare(out: tuple[list[float], list[float]]) -> tuple[int, float]:
    start, end = out
    return len(end), float(np.mean(np.subtract(end, start))) if end else float("nan")


def _summary_ciw(records: list[Any]) -> tuple[int, float]:
    lat = [r.exit_date - r.arrival_date for r in records]
    return len(lat), float(np.mean(lat)) if lat else float("nan")


# -- memory ---------------------------------------------------------------------------------
def simsys_mm1_records(num_requests: int) -> int:
    """Run the M/M/1 and return the number of request records kept (memory child target)."""
    return len(simsys_mm1(num_requests).records.requests)


# -- the report -----------------------------------------------------------------------------
def _rate(timing: Any) -> float:
    if timing.error is not None or not timing.times:
        return float("nan")
    return timing.value[0] / timing.best


def _row(model: str, name: str, timing: Any, theory: str = "") -> list[str]:
    if timing.error is not None:
        return [model, name, "ERROR", "", "", "", "", timing.error[:70]]
    count, mean = timing.value
    times = " / ".join(f"{t:.2f}" for t in timing.times)
    return [model, name, fmt_int(count), times, f"{timing.best:.2f}", f"{timing.best_cpu:.2f}",
            fmt_int(_rate(timing)), f"{mean:.4g} s{theory}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, for smoke tests; the targets then mean nothing")
    parser.add_argument("--repeat", type=int, default=3, help="timings per contender (best kept)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    args = parser.parse_args(argv)
    n_mm1, n_chain, n_memory = SIZES["quick" if args.quick else "full"]

    print(f"simsys core benchmark — {machine()}")
    print(f"best of {args.repeat} wall-clock runs each, interleaved; sizes: M/M/1 {n_mm1:,}, "
          f"chain {n_chain:,}, memory {n_memory:,} requests" + ("  (--quick)" if args.quick else ""))
    sys.stdout.flush()

    # One small untimed call each, so lazy imports and first-call set-up are not timed.
    for warm in (lambda: simsys_mm1(1_000), lambda: bare_mm1(1_000), lambda: ciw_mm1(1_000),
                 lambda: simsys_chain(500), lambda: bare_chain(500)):
        try:
            warm()
        except Exception:  # the timed call will fail the same way and report it
            pass

    mm1 = best_of_each(
        {"simsys": lambda: simsys_mm1(n_mm1), "bare simpy": lambda: bare_mm1(n_mm1),
         "ciw": lambda: ciw_mm1(n_mm1)},
        repeat=args.repeat,
        summarize={"simsys": _summary_simsys, "bare simpy": _summary_bare, "ciw": _summary_ciw},
    )
    chain = best_of_each(
        {"simsys": lambda: simsys_chain(n_chain), "bare simpy": lambda: bare_chain(n_chain)},
        repeat=args.repeat,
        summarize={"simsys": _summary_simsys, "bare simpy": _summary_bare},
    )
    theory = f"  (theory {1 / (SERVICE_RATE - ARRIVAL_RATE):g} s)"
    rows = [_row("M/M/1", name, t, theory) for name, t in mm1.items()]
    rows += [_row(f"{HOPS}-hop chain", name, t) for name, t in chain.items()]
    print()
    print(table(["model", "implementation", "requests", "wall times (s)", "best", "cpu",
                 "requests/s", "mean latency"], rows,
                right=[False, False, True, False, True, True, True, False]))
    timings = [t for t in [*mm1.values(), *chain.values()] if t.times]
    busy = max((t.best / t.best_cpu for t in timings if t.best_cpu > 0), default=1.0)
    if busy > 1.15:
        print(f"note: a best wall-clock time is {busy:.2f}× its CPU time: the machine was busy, "
              "so rates are low and ratios noisy; run again on an idle machine.")

    rss = tm = None
    memory_error = ""
    if not args.no_memory:
        try:
            rss = peak_memory("core:simsys_mm1_records", [n_memory], warmup=[WARMUP_REQUESTS])
            tm = peak_memory("core:simsys_mm1_records", [n_memory], warmup=[WARMUP_REQUESTS],
                             method="tracemalloc")
        except Exception as exc:  # the report goes on
            memory_error = f"{type(exc).__name__}: {exc}"

    def ratio(a: Any, b: Any, cpu: bool = False) -> float:
        if cpu:
            if a.error or b.error or not a.times or not b.times:
                return float("nan")
            return (a.value[0] / a.best_cpu) / (b.value[0] / b.best_cpu)
        return _rate(a) / _rate(b)

    pairs = {
        "single hop vs bare simpy": (mm1["simsys"], mm1["bare simpy"]),
        "single hop vs ciw": (mm1["simsys"], mm1["ciw"]),
        "chain vs bare simpy": (chain["simsys"], chain["bare simpy"]),
    }
    rows = []
    for name, (target, higher) in TARGETS.items():
        if name in pairs:
            value = ratio(*pairs[name])
            shown, wanted = f"{value:.2f}×", f"≥ {target:g}×"
            cpu = f"{ratio(*pairs[name], cpu=True):.2f}×"
        else:
            value = rss.per_unit if rss else float("nan")
            shown, wanted = ("-" if value != value else f"{value:.0f} B"), f"≤ {target:g} B"
            cpu = "-" if tm is None else f"{tm.per_unit:.0f} B"
        rows.append([name, shown, cpu, wanted, verdict(value, target, higher)])
    print()
    print(table(["target", "measured", "cross-check", "target", "result"], rows,
                right=[False, True, True, True, False]))
    print("(measured: wall-clock rates, RSS; cross-check, not gated: CPU-time rates, tracemalloc)")
    print()
    if rss is not None and tm is not None:
        print(f"memory: simsys M/M/1, {rss.units:,} request records, alone in a fresh interpreter "
              f"after imports and a {WARMUP_REQUESTS:,}-request warm-up.")
        print(f"  RSS high-water mark above baseline: {rss.peak / 2**20:.1f} MiB "
              f"= {rss.per_unit:.0f} B/request (gated; baseline {rss.baseline / 2**20:.0f} MiB)")
        print(f"  tracemalloc peak (Python + numpy allocations): {tm.peak / 2**20:.1f} MiB "
              f"= {tm.per_unit:.0f} B/request (cross-check)")
    elif memory_error:
        print(f"memory: ERROR {memory_error}")
    if args.quick:
        print("--quick: sizes are too small for the targets to mean anything.")
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # a report exits 0; say what broke
        print(f"benchmark ERROR: {type(exc).__name__}: {exc}")
    sys.exit(0)
