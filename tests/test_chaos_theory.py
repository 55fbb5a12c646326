"""Theory tests of failure and recovery: availability, MTTR and MTTD against formulas.

A replica that fails after an exponential up-time (mean MTTF) and comes back after a detection
delay plus a restart time is an alternating renewal process: its long-run availability is
MTTF / (MTTF + MTTR), whatever the distributions. Replicas with their own random streams fail
independently, so the number of replicas up is binomial with that per-replica availability.
Health checks probed every ``interval`` from a fixed phase notice a failure at the first probe
after it (uniform over an interval, mean interval/2), then need ``unhealthy_after − 1`` more
failed probes, the last of which takes ``timeout`` to fail.

Every quantity is measured on ten independent replications (seeds 1..10), warm-up dropped, and
its theoretical value must lie inside the 99% Student t interval of the replication means, with
a half-width small enough that a model off by a few percent would fail (tests/stats.py). Runs
have no workload and a huge ``sample_every``, so a simulated month costs milliseconds. Each
test also shows its power: a plausible wrong formula is rejected by the same check.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st
from stats import assert_all_in_ci, assert_rejected, replicate

REPLICATIONS = 10
MTTF = 600.0          # mean up-time of a replica, s
DETECTION = 10.0      # fixed time to notice a failure, s
RESTART = 30.0        # mean of the exponential restart time, s
MTTR = DETECTION + RESTART
A = MTTF / (MTTF + MTTR)  # per-replica availability, 600/640 = 0.9375


def scenario(replicas: int, duration: float, recovery: dict | None = None) -> dict:
    return {
        "name": "availability",
        "duration": duration,
        "warmup": 5000,  # > 8 mean cycles: the all-up start is forgotten
        "sample_every": duration,
        "services": {"x": {"replicas": replicas, "failures": {"mean_time_to_failure": MTTF}}},
        "recovery": recovery or {
            "detection": DETECTION,
            "restart": {"dist": "exponential", "mean": RESTART},
        },
    }


def k_up(n: int, a: float) -> list[float]:
    """P(exactly k of n independent replicas are up), k = 0..n (binomial)."""
    return [math.comb(n, k) * a**k * (1 - a) ** (n - k) for k in range(n + 1)]


def up_time(incidents) -> float:
    """Mean time from a recovery to the next failure of the same (single) replica."""
    failed = incidents["failed_at"].to_numpy()
    recovered = incidents["recovered_at"].to_numpy()
    return float(np.mean(failed[1:] - recovered[:-1]))


def test_binomial_helper():
    p = k_up(3, 0.9)
    assert math.isclose(sum(p), 1.0)
    assert np.allclose(p, st.binom.pmf(range(4), 3, 0.9))
    assert math.isclose(p[3] + p[2], 0.9**3 + 3 * 0.9**2 * 0.1)


def test_one_replica_availability_and_mttr():
    # ~6,250 fail/recover cycles per run; the unavailability 1 − A = 0.0625 is estimated to
    # about ±1.5% (measured), MTTR to about ±1%.
    runs = replicate(
        scenario(1, 4e6), REPLICATIONS,
        lambda r: {
            "availability": r.summary()["services"]["x"]["availability"],
            "unavailability": 1.0 - r.summary()["services"]["x"]["availability"],
            "mttr": r.summary()["services"]["x"]["mttr"],
            "summary_mttr": r.summary()["incidents"]["mttr"],
            "up_time": up_time(r.incidents),
        },
    )
    assert_all_in_ci(
        {
            "availability MTTF/(MTTF+MTTR)": (runs["availability"], A),
            "unavailability MTTR/(MTTF+MTTR)": (runs["unavailability"], 1 - A),
            "MTTR = detection + mean restart": (runs["mttr"], MTTR),
            "incidents.mttr": (runs["summary_mttr"], MTTR),
            "mean up-time = MTTF": (runs["up_time"], MTTF),
        }
    )
    # Power: forgetting the detection delay (MTTR = mean restart only) is rejected.
    assert_rejected(runs["unavailability"], RESTART / (MTTF + RESTART))
    assert_rejected(runs["mttr"], RESTART)


def test_three_replicas_k_of_n_availability():
    # P(all three down) = (1 − a)³ ≈ 2.4e-4 is rare: 1e7 s per run gives about ±12% on it
    # (measured), so it gets a 20% gate; the other quantities get the usual 5%.
    n = 3
    theory = k_up(n, A)
    runs = replicate(
        scenario(n, 1e7), REPLICATIONS,
        lambda r: {
            f"up{k}": f for k, f in enumerate(r.summary()["services"]["x"]["time_with_up"])
        } | {"availability": r.summary()["services"]["x"]["availability"]},
    )
    ge1 = 1 - theory[0]
    ge2 = theory[2] + theory[3]
    assert math.isclose(ge1, 1 - (1 - A) ** 3)
    assert math.isclose(ge2, A**3 + 3 * A**2 * (1 - A))
    assert_all_in_ci(
        {
            "P(>=1 up)": (1 - runs["up0"], ge1),
            "P(>=2 up)": (runs["up2"] + runs["up3"], ge2),
            "availability = P(>=1 up)": (runs["availability"], ge1),
            "P(<2 up)": (runs["up0"] + runs["up1"], 1 - ge2),
            "P(1 up)": (runs["up1"], theory[1]),
            "P(2 up)": (runs["up2"], theory[2]),
            "P(3 up)": (runs["up3"], theory[3]),
        }
    )
    assert_all_in_ci({"P(0 up)": (runs["up0"], theory[0])}, max_rel_halfwidth=0.2)
    # Power: replicas that failed together (availability of one replica for the group) or a
    # per-replica availability that forgot detection are both rejected.
    assert_rejected(runs["up0"], 1 - A, max_rel_halfwidth=0.2)
    a_wrong = MTTF / (MTTF + RESTART)
    assert_rejected(runs["up0"] + runs["up1"], 1 - a_wrong**3 - 3 * a_wrong**2 * (1 - a_wrong))


def test_health_check_detection_time():
    interval, timeout, n = 5.0, 1.0, 3
    mttd = interval / 2 + (n - 1) * interval + timeout  # 13.5 s
    recovery = {
        "health_check": {"interval": interval, "timeout": timeout, "unhealthy_after": n},
        "restart": {"dist": "exponential", "mean": RESTART},
    }
    spec = scenario(2, 1e6, recovery)
    runs = replicate(
        spec, REPLICATIONS,
        lambda r: {
            "mttd": r.summary()["incidents"]["mttd"],
            "mttr": r.summary()["incidents"]["mttr"],
            "availability": 1 - sum(r.summary()["services"]["x"]["time_with_up"][:2]),
        },
    )
    a = MTTF / (MTTF + mttd + RESTART)
    assert_all_in_ci(
        {
            "MTTD = interval/2 + (n-1) interval + timeout": (runs["mttd"], mttd),
            "MTTR = MTTD + mean restart": (runs["mttr"], mttd + RESTART),
            "P(both up)": (runs["availability"], a**2),
        }
    )
    # Power: a detector that waited a whole interval for the first probe is rejected.
    assert_rejected(runs["mttd"], interval + (n - 1) * interval + timeout)

    # The detection delay itself: (n − 1) interval + timeout plus a wait for the next probe that
    # is uniform over one interval; the probes of a replica keep one phase for the whole run.
    import simsys

    inc = simsys.run(spec, seed=1).incidents
    wait = (inc["detected_at"] - inc["failed_at"] - (n - 1) * interval - timeout).to_numpy()
    assert wait.min() >= 0 and wait.max() <= interval
    assert st.kstest(wait / interval, "uniform").pvalue > 0.001
    for _, g in inc.groupby("instance"):
        phase = np.mod(g["detected_at"].to_numpy() - timeout, interval)
        assert np.ptp(phase) < 1e-6


# replications against theory (or whole notebooks): `make test-fast` leaves these out
pytestmark = pytest.mark.slow
