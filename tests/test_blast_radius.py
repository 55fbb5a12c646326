"""Blast radius: the same component failure, deployed as a monolith and as microservices.

One component (payments, called by three carts in ten) crashes at the same moment in both
deployments. In the monolith it shares its process with everything else, so every request that
reaches the dead replica fails, whatever it needed; with microservices only the requests that
needed payments fail, and the others go on.
"""

from __future__ import annotations

import simsys

APP = {
    "storefront": {"service_time": "1ms", "calls": ["cart"]},
    "cart": {"service_time": "2ms", "calls": [{"service": "payments", "probability": 0.3}]},
    "payments": {"service_time": "5ms"},
}
CRASH_AT, DETECTION, RESTART = 20.0, 5.0, 15.0


def deployed(style: str) -> simsys.Result:
    spec = {
        "duration": "60s",
        "seed": 4,
        "app": APP,
        "deploy": style,
        "workload": [{"type": "poisson", "rate": "100/s", "target": "storefront"}],
        "recovery": {"detection": f"{DETECTION}s", "restart": f"{RESTART}s"},
        "faults": [{"kind": "crash", "target": "payments", "at": f"{CRASH_AT}s", "mode": "all"}],
        "trace": True,
    }
    return simsys.run(spec)


def _during_outage(r: simsys.Result):
    df = r.requests
    return df[(df["start"] >= CRASH_AT + 0.1) & (df["start"] < CRASH_AT + DETECTION + RESTART - 0.1)]


def test_a_monolith_loses_every_request_while_microservices_lose_only_those_needing_payments():
    mono = _during_outage(deployed("monolith"))
    assert len(mono) > 1000
    assert (mono["status"] != "ok").all()  # one failure domain: nothing gets through

    r = deployed("microservices")
    micro = _during_outage(r)
    failed = micro[micro["status"] != "ok"]
    ok = micro[micro["status"] == "ok"]
    # every failure is payments' doing …
    assert set(failed["failed_service"].astype(str)) == {"payments"}
    assert set(failed["cause"].astype(str)) <= {"crash", "unavailable"}
    # … and exactly the requests that needed payments failed: the ok ones never visited it
    spans = r.spans
    visited = set(spans.loc[spans["service"] == "payments", "id"])
    assert not visited & set(ok["id"])
    share_failed = len(failed) / len(micro)
    assert 0.25 < share_failed < 0.35  # three carts in ten call payments
