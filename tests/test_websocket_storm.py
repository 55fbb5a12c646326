"""The reconnect storm of scenarios/websocket-storm.yaml: one of three replicas holding 30 000
connections crashes at 60 s (a scheduled crash fault). Without jitter every dropped client comes
back at the same instant; with AWS's full jitter they spread over the first back-off window.

The peak reconnect rate (most reconnect attempts in any 0.1 s, per second) must be at least 5×
higher without jitter, in both representations; without jitter the storm takes the survivors
over memory.limit (oom), with full jitter the crash stays a single incident."""

from __future__ import annotations

from pathlib import Path

import pytest

import simsys

STORM = Path(__file__).resolve().parents[1] / "scenarios" / "websocket-storm.yaml"


def storm(jitter: str, representation: str) -> dict:
    r = simsys.run(STORM, overrides={
        "duration": "90s",
        "workload.0.reconnect.jitter": jitter,
        "services.chat.websocket.representation": representation,
    })
    ws = r.summary()["websockets"]
    return {"peak": ws["peak_reconnect_rate"], "reconnects": ws["reconnects"],
            "ooms": int((r.incidents["kind"] == "oom").sum()), "drops": ws["drops"],
            "crashes": int((r.incidents["kind"] == "crash").sum())}


@pytest.mark.parametrize("representation", ["aggregate", "exact"])
def test_no_jitter_storm_peaks_at_least_5x_higher(representation):
    none, full = storm("none", representation), storm("full", representation)
    assert none["crashes"] == full["crashes"] == 1
    assert full["drops"] == pytest.approx(10_000, rel=0.05)     # a third of 30 000
    assert none["peak"] >= 5 * full["peak"], (none, full)
    # full jitter: ~10 000 reconnects spread over 1 s are ~10 000/s; none: all in one 0.1 s
    assert full["peak"] < 20_000 and none["peak"] > 90_000
    assert full["ooms"] == 0 and none["ooms"] >= 2             # the cascade
    assert none["drops"] > 2 * full["drops"]
