"""Event-level tests of the resilience patterns: tiny scenarios with constant times whose every
request, call and breaker transition can be worked out by hand (the times in each test's comment
are that working). Times are sums of binary fractions, so floating-point sums are exact.

A closed workload's users send their first request after one ``think_time`` and each next one
``think_time`` after the previous answer. Links are free unless a test gives them a latency;
the client reaches its target directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats as st

import simsys


def closed(users: int = 1, think: str = "0.25s", target: str = "web", **policy: Any,
           ) -> dict[str, Any]:
    return {"type": "closed", "users": users, "think_time": think, "target": target, **policy}


def rows(df: Any, *cols: str) -> list[tuple]:
    """A table as a list of tuples of ``cols``; a missing value (no cause: NaN) as None."""
    import pandas as pd

    return [tuple(None if not isinstance(v, str) and pd.isna(v) else v for v in row)
            for row in df[list(cols)].itertuples(index=False)]


def requests(r: simsys.Result, *cols: str) -> list[tuple]:
    return rows(r.requests, *(cols or ("id", "start", "end", "status", "cause")))


def calls(r: simsys.Result, link: str) -> dict[str, int]:
    return {k: int(v) for k, v in r.calls.loc[link].items()}


def db_spans(r: simsys.Result, *cols: str) -> list[tuple]:
    sp = r.spans
    return rows(sp[sp["service"] == "db"].sort_values(["id", "arrived"]), *cols)


# -- timeout ----------------------------------------------------------------------------------
def test_timeout_ends_the_request_at_timeout_plus_link_latencies():
    # Request 0 reaches web at 1.0625 (client link 1/16 s), works until 1.3125, calls db (link
    # 1/8 s each way) and gives up at 1.3125 + 0.5 = 1.8125; its answer reaches the client at
    # 1.875 = start + 2×1/16 + 0.25 + 0.5. db goes on with the abandoned call until
    # 1.4375 + 2 = 3.4375, so request 1's call (sent 3.1875, there at 3.3125) waits behind it
    # and times out too, at 3.6875; the client has it at 3.75.
    spec = {
        "duration": "4.5s", "trace": True,
        "services": {"web": {"service_time": "0.25s",
                             "calls": [{"service": "db", "timeout": "0.5s"}]},
                     "db": {"service_time": "2s"}},
        "links": {"web->db": {"latency": "0.125s"}, "client->web": {"latency": "0.0625s"}},
        "workload": [closed(think="1s")],
    }
    r = simsys.run(spec)
    assert requests(r, "id", "start", "end", "status", "cause", "failed_service") == [
        (0, 1.0, 1.875, "timeout", "timeout", "db"),
        (1, 2.875, 3.75, "timeout", "timeout", "db"),
    ]
    assert calls(r, "web->db") == {"calls": 2, "attempts": 2, "retries": 0, "hedges": 0,
                                   "timeouts": 2, "fallbacks": 0, "short_circuited": 0,
                                   "bulkhead_rejected": 0}
    sp = r.spans.sort_values(["ended", "service"])
    assert rows(sp, "id", "service", "arrived", "started", "ended", "status") == [
        (0, "web", 1.0625, 1.0625, 1.8125, "timeout"),
        (0, "db", 1.4375, 1.4375, 3.4375, "ok"),      # finished for nobody
        (1, "web", 2.9375, 2.9375, 3.6875, "timeout"),
    ]


def test_client_timeout_gives_up_at_exactly_the_timeout():
    # web takes 2 s; the client gives up after 0.75 s. The user's next request (1.0) waits
    # behind the abandoned one (web busy to 2.25) and also times out, at 1.75.
    spec = {"duration": "2.6s", "services": {"web": {"service_time": "2s"}},
            "workload": [closed(timeout="0.75s")]}
    assert requests(simsys.run(spec), "id", "start", "end", "status", "cause",
                    "failed_service") == [
        (0, 0.25, 1.0, "timeout", "timeout", "web"),
        (1, 1.25, 2.0, "timeout", "timeout", "web"),
    ]


def test_an_answer_in_time_is_not_a_timeout():
    spec = {"duration": "1s",
            "services": {"web": {"calls": [{"service": "db", "timeout": "0.5s"}]},
                         "db": {"service_time": "0.5s"}},
            "workload": [closed(think="0.125s")]}
    # The answer and the timeout are due at the same instant 0.625: the answer was scheduled
    # first (when db started), so it wins.
    r = simsys.run(spec)
    assert requests(r) == [(0, 0.125, 0.625, "ok", None)]
    assert calls(r, "web->db")["timeouts"] == 0


def test_thousands_of_answered_attempts_then_a_lull_then_a_timeout():
    # The guard forgets answered attempts in bulk once thousands have piled up; here that
    # happens when nothing at all is outstanding (a lull after 7000 answered calls), and the
    # timeouts after it must still fire on time.
    spec = {"duration": "6s",
            "services": {"web": {"workers": 1000, "calls": [{"service": "db", "timeout": "1s"}]},
                         "db": {"workers": 1000, "service_time": "1ms"}},
            "workload": [{"type": "poisson", "rate": "1/s", "target": "web",
                          "spikes": [{"at": "0s", "duration": "900ms", "factor": 8000},
                                     {"at": "3s", "duration": "900ms", "factor": 8000}]}]}
    ok = simsys.run(spec)
    assert ok.calls.loc["web->db", "attempts"] > 10_000
    assert set(ok.requests["status"]) == {"ok"}
    spec["faults"] = [{"kind": "latency", "target": "db", "delay": "2s", "at": "3.5s",
                       "duration": "100ms"}]
    r = simsys.run(spec)
    late = r.requests[r.requests["status"] == "timeout"]
    assert len(late) > 100
    assert np.allclose(late["latency"], 1.0)  # each gave up exactly 1 s after it was sent


# -- retry ------------------------------------------------------------------------------------
def test_retry_waits_backoff_times_multiplier_capped_at_max():
    # Every attempt times out after 0.25 s (db takes 1 s). Waits: 0.5, 0.5×2 = 1, min(0.5×4, 1.5)
    # = 1.5. Attempts reach db at 1, 1.75, 3, 4.75; the call fails at 5.0, and with it the
    # request, whose `attempts` counts the client's tries (one). Request 1 starts at 6: its
    # first attempt times out at 6.25 and its retry is due at 6.75, after the run.
    spec = {
        "duration": "6.5s", "trace": True,
        "services": {"web": {"calls": [{"service": "db", "timeout": "0.25s", "retry": {
            "max_attempts": 4, "backoff": "0.5s", "multiplier": 2, "max": "1.5s"}}]},
            "db": {"service_time": "1s", "workers": 8}},
        "workload": [closed(think="1s")],
    }
    r = simsys.run(spec)
    assert requests(r, "id", "start", "end", "status", "cause", "attempts") == [
        (0, 1.0, 5.0, "timeout", "timeout", 1),
    ]
    assert db_spans(r, "id", "arrived", "ended") == [
        (0, 1.0, 2.0), (0, 1.75, 2.75), (0, 3.0, 4.0), (0, 4.75, 5.75),
    ]
    assert calls(r, "web->db") == {"calls": 2, "attempts": 5, "retries": 4, "hedges": 0,
                                   "timeouts": 5, "fallbacks": 0, "short_circuited": 0,
                                   "bulkhead_rejected": 0}


def test_client_retry_counts_attempts_and_succeeds_when_the_service_is_back():
    # web is down over [0, 1.5) (crashed at 0, detected at once, restarted after 1.5 s): calls
    # fail at once as unavailable. Request 0: tries at 0.25, 0.5 (+0.25), 1.0 (+0.5) fail;
    # attempt 4 at 1.75 (+min(1, 0.75)) finds web up and ends at 1.875. The next request
    # (2.125) succeeds at once.
    spec = {
        "duration": "2.5s",
        "services": {"web": {"service_time": "0.125s"}},
        "faults": [{"kind": "crash", "target": "web", "at": 0}],
        "recovery": {"detection": "0s", "restart": "1.5s"},
        "workload": [closed(think="0.25s", retry={"max_attempts": 5, "backoff": "0.25s",
                                                  "multiplier": 2, "max": "0.75s"})],
    }
    r = simsys.run(spec)
    assert requests(r, "id", "start", "end", "status", "cause", "attempts") == [
        (0, 0.25, 1.875, "ok", None, 4),
        (1, 2.125, 2.25, "ok", None, 1),
    ]
    assert calls(r, "client:closed0->web")["retries"] == 3


def test_client_retries_exhausted_record_the_last_failure():
    # Three tries, 0.5 s timeout each, 0.25 s apart: 0.25–0.75, 1.0–1.5, 1.75–2.25.
    spec = {"duration": "2.4s", "services": {"web": {"service_time": "1s", "workers": 4}},
            "workload": [closed(timeout="0.5s", retry={"max_attempts": 3, "backoff": "0.25s",
                                                       "multiplier": 1})]}
    assert requests(simsys.run(spec), "id", "start", "end", "status", "attempts") == [
        (0, 0.25, 2.25, "timeout", 3),
    ]


@pytest.mark.parametrize("jitter, low", [("full", 0.0), ("equal", 0.5)])
def test_jittered_backoff_is_uniform_within_its_bounds(jitter, low):
    # Each call times out twice (db takes 0.5 s, timeout 0.25 s); the first wait is drawn for a
    # back-off of 1 s, the second for min(1 × 2, 1.5) = 1.5 s. Divided by its back-off, a wait
    # is U(0, 1) with jitter full and U(0.5, 1) with jitter equal (AWS's schemes).
    spec = {
        "duration": "1200s", "trace": True,
        "services": {"web": {"calls": [{"service": "db", "timeout": "0.25s", "retry": {
            "max_attempts": 3, "backoff": "1s", "multiplier": 2, "max": "1.5s",
            "jitter": jitter}}]},
            "db": {"service_time": "0.5s", "workers": 8}},
        "workload": [closed(think="0s")],
    }
    sp = simsys.run(spec, seed=11).spans
    db = sp[sp["service"] == "db"].sort_values(["id", "arrived"])
    arrived = db.groupby("id")["arrived"].apply(list)
    arrived = arrived[arrived.map(len) == 3]
    assert len(arrived) > 400
    a = np.array(arrived.tolist())
    for k, base in enumerate((1.0, 1.5)):
        u = (a[:, k + 1] - a[:, k] - 0.25) / base
        assert u.min() >= low - 1e-9 and u.max() <= 1.0 + 1e-9, (jitter, k, u.min(), u.max())
        assert u.min() < low + 0.02 and u.max() > 0.98, "does not fill its interval"
        ks = st.kstest(u, "uniform", args=(low, 1.0 - low))
        assert ks.pvalue > 1e-3, (jitter, k, ks)


def test_retry_budget_caps_retries_at_budget_times_calls():
    # db is unreachable (every message lost): without a budget each call is tried 3 times; a 10%
    # budget allows 0.1 retries per call plus the 10 tokens saved up at the start (the first
    # call's 0.1 is lost to the cap).
    def run(budget: str | None) -> dict[str, int]:
        retry: dict[str, Any] = {"max_attempts": 3}
        if budget:
            retry["budget"] = budget
        spec = {"duration": "30s",
                "services": {"web": {"workers": 64, "calls": [{"service": "db", "retry": retry}]},
                             "db": {}},
                "links": {"web->db": {"loss": 1.0}},
                "workload": [{"type": "poisson", "rate": "100/s", "target": "web"}]}
        r = simsys.run(spec, seed=2)
        assert set(r.requests["cause"]) == {"loss"}
        return calls(r, "web->db")

    free = run(None)
    assert free["retries"] == 2 * free["calls"]
    capped = run("10%")
    n = capped["calls"]
    assert 0.1 * n + 10 - 1.2 <= capped["retries"] <= 0.1 * n + 10
    assert capped["attempts"] == n + capped["retries"]


# -- circuit breaker --------------------------------------------------------------------------
BREAKER = {"error_threshold": "50%", "volume_threshold": 4, "sleep_window": "2s",
           "rolling_window": "10s"}


def breaker_spec(restart: str, duration: str, **breaker: Any) -> dict[str, Any]:
    return {
        "duration": duration,
        "services": {"web": {"workers": 4, "calls": [
            {"service": "db", "circuit_breaker": {**BREAKER, **breaker}}]},
            "db": {"workers": 4, "service_time": "0.125s"}},
        "faults": [{"kind": "crash", "target": "db", "at": 0}],
        "recovery": {"detection": "0s", "restart": restart},
        "workload": [closed(users=2, think="0.25s")],
    }


def test_breaker_opens_short_circuits_and_one_trial_closes_it():
    # db is down over [0, 2.375). Two users call every 0.25 s. Calls 1–4 (0.25, 0.5) fail as
    # unavailable: at the 4th the volume (4) and the error share (100% ≥ 50%) are reached and
    # the breaker opens at 0.5. Calls then fail at once (circuit_open) until the sleep window
    # ends at 2.5: the first caller of that instant is the one trial (db is back; answered at
    # 2.625, which closes the breaker), the second is still short-circuited.
    r = simsys.run(breaker_spec("2.375s", "3.2s"))
    expected = [(0, 0.25, 0.25, "error", "unavailable"), (1, 0.25, 0.25, "error", "unavailable"),
                (2, 0.5, 0.5, "error", "unavailable"), (3, 0.5, 0.5, "error", "unavailable")]
    rid = 4
    for k in range(3, 10):           # 0.75 … 2.25
        expected += [(rid, k / 4, k / 4, "error", "circuit_open"),
                     (rid + 1, k / 4, k / 4, "error", "circuit_open")]
        rid += 2
    expected += [(18, 2.5, 2.625, "ok", None), (19, 2.5, 2.5, "error", "circuit_open"),
                 (20, 2.75, 2.875, "ok", None), (21, 2.875, 3.0, "ok", None)]
    assert requests(r) == expected
    assert rows(r.breakers, "time", "link", "state", "service") == [
        (0.5, "web->db", "open", "db"), (2.5, "web->db", "half_open", "db"),
        (2.625, "web->db", "closed", "db"),
    ]
    # the same transitions in the timeseries, counted per service called
    ts = r.timeseries
    states = ts[ts["metric"].isin(["breakers_open", "breakers_half_open"])]
    assert set(states["service"]) == {"db"} and set(states["instance"]) == {-1}
    opened = states[states["metric"] == "breakers_open"]
    half = states[states["metric"] == "breakers_half_open"]
    assert rows(opened, "time", "value") == [(0.0, 0), (0.5, 1), (2.5, 0), (2.625, 0)]
    assert rows(half, "time", "value") == [(0.0, 0), (0.5, 0), (2.5, 1), (2.625, 0)]
    c = calls(r, "web->db")
    assert c["short_circuited"] == 15 and c["attempts"] == c["calls"] - 15


def test_failed_trial_reopens_the_breaker_for_another_sleep_window():
    # db is down until 4.125: the trials at 2.5 and 4.5 … the trial at 2.5 fails and reopens
    # it; the next half-open is at 4.5, when db is back: that trial closes it at 4.625.
    r = simsys.run(breaker_spec("4.125s", "4.8s"))
    assert rows(r.breakers, "time", "state") == [
        (0.5, "open"), (2.5, "half_open"), (2.5, "open"), (4.5, "half_open"), (4.625, "closed"),
    ]
    assert requests(r, "id", "start", "end", "cause")[18:20] == [
        (18, 2.5, 2.5, "unavailable"), (19, 2.5, 2.5, "circuit_open"),
    ]
    assert requests(r, "id", "start", "end", "status")[34:36] == [
        (34, 4.5, 4.625, "ok"), (35, 4.5, 4.5, "error"),
    ]


@pytest.mark.parametrize("threshold, window, opens_at", [
    ("50%", "10s", 1.5),    # (calls, errors): … (5, 2) (6, 3): 3 ≥ 50% of 6
    ("60%", "10s", 2.0),    # (7, 4): 4 < 4.2; (8, 5): 5 ≥ 4.8
    ("50%", "1s", 1.25),    # only [0.5, 1.25] counts at 1.25: (4, 2)
    ("90%", "10s", None),   # the error share climbs to 10/13 ≈ 77% by 3.25 and never reaches 90%
])
def test_breaker_opens_at_the_error_share_over_its_rolling_window(threshold, window, opens_at):
    # One user calls every 0.25 s; db answers the calls at 0.25, 0.5, 0.75 and is down from 0.875
    # on (crashed, never restarted), so every later call fails.
    spec = {
        "duration": "3.3s",
        "services": {"web": {"calls": [{"service": "db", "circuit_breaker": {
            "error_threshold": threshold, "volume_threshold": 4, "sleep_window": "10s",
            "rolling_window": window}}]}, "db": {}},
        "faults": [{"kind": "crash", "target": "db", "at": "0.875s"}],
        "recovery": {"detection": "0s", "max_restarts": 0},
        "workload": [closed()],
    }
    r = simsys.run(spec)
    opened = rows(r.breakers, "time", "state")
    assert opened == ([] if opens_at is None else [(opens_at, "open")])
    df = r.requests
    if opens_at is not None:
        assert set(df.loc[df["start"] > opens_at, "cause"]) == {"circuit_open"}
    assert "circuit_open" not in set(df.loc[df["start"] <= (opens_at or 99), "cause"])


def test_calls_refused_by_an_open_breaker_count_as_attempts():
    # Every message to db is lost. Request 0: tries at 0.25 and 0.3125 fail (the second opens the
    # breaker: 2 calls, 100% errors); the third try (0.375) is refused by the breaker, and with it
    # the call has had its 3 tries. Later requests are refused three times, 1/16 s apart. (A
    # refused try that did not count would retry until the breaker let a trial through — and
    # forever, at one instant, with no back-off.)
    spec = {"duration": "1.2s",
            "services": {"web": {"calls": [{"service": "db", "retry": {
                "max_attempts": 3, "backoff": "0.0625s", "multiplier": 1},
                "circuit_breaker": {"volume_threshold": 2, "sleep_window": "10s"}}]}, "db": {}},
            "links": {"web->db": {"loss": 1.0}},
            "workload": [closed(think="0.25s")]}
    r = simsys.run(spec)
    assert requests(r) == [(0, 0.25, 0.375, "error", "circuit_open"),
                           (1, 0.625, 0.75, "error", "circuit_open"),
                           (2, 1.0, 1.125, "error", "circuit_open")]
    c = calls(r, "web->db")
    assert (c["attempts"], c["short_circuited"], c["retries"]) == (2, 7, 6)


def test_calls_refused_by_a_full_bulkhead_count_as_attempts():
    # One slot; user 0's call holds it 0.25–1.25. User 1 tries at 0.25, 0.3125, 0.375: refused.
    spec = {"duration": "0.5s",
            "services": {"web": {"workers": 4, "calls": [{"service": "db", "retry": {
                "max_attempts": 3, "backoff": "0.0625s", "multiplier": 1},
                "bulkhead": {"max_concurrent": 1}}]},
                "db": {"service_time": "1s"}},
            "workload": [closed(users=2)]}
    r = simsys.run(spec)
    assert requests(r) == [(1, 0.25, 0.375, "error", "bulkhead")]


def test_a_bulkhead_refusal_does_not_use_up_the_half_open_trial():
    # web has two replicas (round robin), one bulkhead slot each. a's call at 1/32 goes to
    # web[0] and is slow (a latency fault adds 10 s to db's work started before 0.05): it holds
    # web[0]'s slot until 10.28. b's call at 1/16 (web[1]) is lost (loss fault) and opens the
    # breaker (volume 1). At 1.125 the breaker is half-open; b's request goes to web[0], whose
    # slot is taken: refused. The trial is still to be made: b's next call (1.1875, web[1])
    # is it, succeeds at 1.4375 and closes the breaker.
    spec = {"duration": "2s",
            "services": {"web": {"replicas": 2, "workers": 8, "calls": [{
                "service": "db", "bulkhead": {"max_concurrent": 1},
                "circuit_breaker": {"volume_threshold": 1, "sleep_window": "1.0625s"}}]},
                "db": {"service_time": "0.25s", "workers": 4}},
            "faults": [{"kind": "latency", "target": "db", "delay": "10s", "at": 0,
                        "duration": "0.05s"},
                       {"kind": "loss", "target": "web->db", "loss": 1.0, "at": "0.05s",
                        "duration": "0.05s"}],
            "workload": [{"type": "closed", "name": "a", "users": 1, "think_time": "0.03125s",
                          "target": "web"},
                         {"type": "closed", "name": "b", "users": 1, "think_time": "0.0625s",
                          "target": "web"}]}
    r = simsys.run(spec)
    assert rows(r.breakers, "time", "state") == [(0.0625, "open"), (1.125, "half_open"),
                                                 (1.4375, "closed")]
    df = r.requests
    assert rows(df[(df["start"] >= 1.125) & (df["start"] < 1.25)],
                "start", "end", "status", "cause", "instance") == [
        (1.125, 1.125, "error", "bulkhead", 0), (1.1875, 1.4375, "ok", None, 1),
    ]


# -- bulkhead ---------------------------------------------------------------------------------
def test_bulkhead_caps_calls_outstanding_per_caller_replica():
    # Four users reach web at 0.25; db takes 1 s. With max_concurrent 2, two calls go out and the
    # other two fail at once (cause bulkhead), as do the retries of those users every 0.25 s
    # until the slots free at 1.25. With two web replicas (round robin) each holds two calls:
    # nothing is refused.
    spec = {"duration": "1.6s",
            "services": {"web": {"workers": 8, "calls": [
                {"service": "db", "bulkhead": {"max_concurrent": 2}}]},
                "db": {"workers": 8, "service_time": "1s"}},
            "workload": [closed(users=4)]}
    r = simsys.run(spec)
    expected = [(0, 0.25, 1.25, "ok", None), (1, 0.25, 1.25, "ok", None)]
    rid = 2
    for k in range(1, 5):            # 0.25 … 1.0
        expected += [(rid, k / 4, k / 4, "error", "bulkhead"),
                     (rid + 1, k / 4, k / 4, "error", "bulkhead")]
        rid += 2
    # At 1.25 the two answers free their slots first; those users' next calls (1.5) and the
    # retries of the other two (1.25) share the slots: 10, 11 go out at 1.25, 12, 13 fail at 1.5.
    expected += [(12, 1.5, 1.5, "error", "bulkhead"), (13, 1.5, 1.5, "error", "bulkhead")]
    assert sorted(requests(r)) == sorted(expected)
    assert calls(r, "web->db")["bulkhead_rejected"] == 10

    spec["services"]["web"]["replicas"] = 2
    r = simsys.run(spec)
    assert set(r.requests["status"]) == {"ok"}
    assert calls(r, "web->db")["bulkhead_rejected"] == 0


# -- fallback ---------------------------------------------------------------------------------
def test_fallback_answers_degraded_after_its_own_service_time():
    # The call times out at 0.25 + 0.5 and the fallback answers 0.125 s later: degraded at 0.875.
    # Request 1 (1.125) waits behind the abandoned call in db (busy to 1.25, then to 2.25): it
    # times out at 1.625 and is answered degraded at 1.75.
    spec = {"duration": "2s",
            "services": {"web": {"calls": [{"service": "db", "timeout": "0.5s",
                                             "fallback": {"service_time": "0.125s"}}]},
                         "db": {"service_time": "1s"}},
            "workload": [closed()]}
    r = simsys.run(spec)
    assert requests(r) == [(0, 0.25, 0.875, "degraded", "timeout"),
                           (1, 1.125, 1.75, "degraded", "timeout")]
    assert calls(r, "web->db")["fallbacks"] == 2
    s = r.summary()
    assert s["requests"]["degraded"] == 2 and s["requests"]["ok"] == 0
    assert s["calls"]["fallbacks"] == 2


def test_fallback_true_answers_at_once():
    spec = {"duration": "1s",
            "services": {"web": {"calls": [{"service": "db", "fallback": True}]}, "db": {}},
            "links": {"web->db": {"loss": 1.0}},
            "workload": [closed(think="0.375s")]}
    assert requests(simsys.run(spec)) == [(0, 0.375, 0.375, "degraded", "loss"),
                                          (1, 0.75, 0.75, "degraded", "loss")]


def test_false_on_a_call_turns_off_the_services_pattern():
    # web's fallback (and timeout) cover its calls, but the call to db says fallback: false and
    # timeout: false: db's lost messages fail the request; cache's are answered degraded
    spec = {"duration": "1s",
            "services": {"web": {"fallback": True, "timeout": "1ms",
                                 "calls": ["cache", {"service": "db", "fallback": False,
                                                     "timeout": False}]},
                         "cache": {}, "db": {"service_time": "10ms"}},
            "links": {"web->cache": {"loss": 1.0}},
            "workload": [closed(think="0.375s")]}
    r = simsys.run(spec)
    # cache: lost, degraded at once; db: 10 ms (no 1 ms timeout), ok: the request is degraded
    assert requests(r) == [(0, 0.375, 0.385, "degraded", "loss"),
                           (1, 0.76, 0.77, "degraded", "loss")]
    assert calls(r, "web->cache")["fallbacks"] == 2
    spec["links"] = {"web->db": {"loss": 1.0}}
    r = simsys.run(spec)
    assert [row[3] for row in requests(r)] == ["dropped", "dropped"]
    G = simsys.build_graph(spec)
    assert G.edges["web", "db"]["policy"] is None  # nothing left on that call


# -- load shedding and queue discipline -------------------------------------------------------
def test_shed_by_queue_length_refuses_arrivals_while_that_many_wait():
    # Five users reach web (1 worker, 1 s) at 0.25: one served, two wait, two shed at once;
    # shed users come back every 0.25 s and are shed while two wait. At 1.25 request 1 starts and
    # 2 waits alone, so the retry of that instant (11) joins the queue.
    spec = {"duration": "2.1s", "services": {"web": {"service_time": "1s",
                                                     "shed": {"queue_length": 2}}},
            "workload": [closed(users=5)]}
    got = requests(simsys.run(spec), "id", "start", "end", "status", "cause")
    assert got[:3] == [(0, 0.25, 1.25, "ok", None), (3, 0.25, 0.25, "rejected", "shed"),
                       (4, 0.25, 0.25, "rejected", "shed")]
    shed = [row for row in got if row[4] == "shed"]
    assert len(shed) == len(got) - 1
    assert [row[1] for row in shed] == [0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1.0, 1.0,
                                        1.25, 1.5, 1.5, 1.75, 1.75, 2.0, 2.0]


def test_a_full_queue_rejects_before_shedding():
    # queue 1 < shed 2: the queue limit bites first, and the cause says so.
    spec = {"duration": "0.3s", "services": {"web": {"service_time": "1s", "queue": 1,
                                                     "shed": {"queue_length": 2}}},
            "workload": [closed(users=3)]}
    assert requests(simsys.run(spec)) == [(2, 0.25, 0.25, "rejected", "rejected")]


def test_shed_by_deadline_drops_requests_that_waited_too_long():
    # One worker, 1 s each, four users at 0.25, deadline 1.5 s. 0 runs 0.25–1.25; 1 (waited 1 s)
    # 1.25–2.25; at 2.25, 2 and 3 have waited 2 s: both shed; user 0's next (4, sent 1.5,
    # waited 0.75 s) runs 2.25–3.25. The users of 2, 3 and 1 send again at 2.5 (5, 6, 7, in the
    # order their answers left): 5 runs 3.25–4.25, then 6 and 7 have waited 1.75 s: shed, and
    # 8 (user 0 again, 3.5) runs 4.25–5.25.
    spec = {"duration": "5.5s", "services": {"web": {"service_time": "1s",
                                                     "shed": {"deadline": "1.5s"}}},
            "workload": [closed(users=4)]}
    assert requests(simsys.run(spec)) == [
        (0, 0.25, 1.25, "ok", None),
        (1, 0.25, 2.25, "ok", None),
        (2, 0.25, 2.25, "rejected", "shed"),
        (3, 0.25, 2.25, "rejected", "shed"),
        (4, 1.5, 3.25, "ok", None),
        (5, 2.5, 4.25, "ok", None),
        (6, 2.5, 4.25, "rejected", "shed"),
        (7, 2.5, 4.25, "rejected", "shed"),
        (8, 3.5, 5.25, "ok", None),
    ]


@pytest.mark.parametrize("discipline, served", [
    # FIFO: in arrival order. LIFO: the newest waiting request first, so the two that queued at
    # 0.25 behind the newer ones starve.
    ("fifo", [(0, 0.25, 1.25), (1, 0.25, 2.25), (2, 0.25, 3.25), (3, 0.25, 4.25)]),
    ("lifo", [(0, 0.25, 1.25), (3, 0.25, 2.25), (4, 1.5, 3.25), (5, 2.5, 4.25)]),
])
def test_queue_discipline_order(discipline, served):
    spec = {"duration": "4.5s", "services": {"web": {"service_time": "1s",
                                                     "discipline": discipline}},
            "workload": [closed(users=4)]}
    assert requests(simsys.run(spec), "id", "start", "end") == served


# -- parallel fan-out -------------------------------------------------------------------------
FAN_OUT = {"a": {"service_time": "0.25s"}, "b": {"service_time": "0.5s"},
           "c": {"service_time": "1s"}}


@pytest.mark.parametrize("quorum, end", [(None, 1.375), (3, 1.375), (2, 0.875), (1, 0.625)])
def test_fan_out_waits_for_all_or_for_the_quorum(quorum, end):
    # web calls a, b, c at once at 0.25 (links 1/16 s each way): answers at 0.625, 0.875, 1.375.
    group: dict[str, Any] = {"parallel": ["a", "b", "c"]}
    if quorum is not None:
        group["quorum"] = quorum
    spec = {"duration": "1.4s", "trace": True,
            "services": {"web": {"calls": [group]}, **FAN_OUT},
            "links": {"default": {"latency": "0.0625s"}},
            "workload": [closed()]}
    r = simsys.run(spec)
    assert requests(r, "id", "start", "end", "status")[0] == (0, 0.25, end, "ok")
    # The calls not waited for run to their end all the same.
    sp = r.spans[(r.spans["service"] != "web") & (r.spans["id"] == 0)]
    assert sorted(rows(sp, "service", "arrived", "ended")) == [
        ("a", 0.3125, 0.5625), ("b", 0.3125, 0.8125), ("c", 0.3125, 1.3125),
    ]


@pytest.mark.parametrize("quorum, end, status", [
    (None, 0.25, "dropped"),   # all needed: fails as soon as b's message is lost
    (2, 0.75, "ok"),           # a and c suffice
    (3, 0.25, "dropped"),
])
def test_fan_out_fails_as_soon_as_the_quorum_cannot_be_met(quorum, end, status):
    group: dict[str, Any] = {"parallel": ["a", "b", "c"]}
    if quorum is not None:
        group["quorum"] = quorum
    spec = {"duration": "1.1s",
            "services": {"web": {"calls": [group]}, "a": {"service_time": "0.25s"},
                         "b": {}, "c": {"service_time": "0.5s"}},
            "links": {"web->b": {"loss": 1.0}},
            "workload": [closed()]}
    assert requests(simsys.run(spec), "id", "start", "end", "status")[0] == (0, 0.25, end, status)


# -- hedging ----------------------------------------------------------------------------------
def hedge_spec(**extra: Any) -> dict[str, Any]:
    return {"duration": "4s", "trace": True,
            "services": {"web": {"calls": [{"service": "db", "hedge": {"after": "0.25s"}}]},
                         "db": {"replicas": 2, "service_time": "1s"}},
            "workload": [closed(think="0.5s")], **extra}


def test_hedge_sends_a_second_copy_after_the_delay_and_the_first_answer_wins():
    # The call at 0.5 goes to db[0]; no answer by 0.75, so a copy goes to db[1]. Both take 1 s:
    # db[0]'s answer (1.5) wins; db[1]'s (1.75) is ignored. Request 1 (2.0) does the same;
    # request 2 (3.5) is hedged at 3.75 and still out when the run ends.
    r = simsys.run(hedge_spec())
    assert requests(r, "id", "start", "end", "status") == [(0, 0.5, 1.5, "ok"),
                                                          (1, 2.0, 3.0, "ok")]
    assert db_spans(r, "id", "instance", "arrived", "ended") == [
        (0, 0, 0.5, 1.5), (0, 1, 0.75, 1.75), (1, 0, 2.0, 3.0), (1, 1, 2.25, 3.25),
    ]
    c = calls(r, "web->db")
    assert (c["calls"], c["attempts"], c["hedges"]) == (3, 6, 3)


def test_hedge_wins_when_the_first_copy_is_slow():
    # A latency fault adds 2 s to db's work started in [0.5, 0.625): the first copy (0.5) takes
    # 3 s, the hedge (0.75) 1 s and answers at 1.75 — instead of 3.5 without hedging.
    fault = [{"kind": "latency", "target": "db", "delay": "2s", "at": "0.5s",
              "duration": "0.125s"}]
    r = simsys.run(hedge_spec(faults=fault))
    assert requests(r, "id", "start", "end")[0] == (0, 0.5, 1.75)
    plain = hedge_spec(faults=fault)
    del plain["services"]["web"]["calls"][0]["hedge"]
    assert requests(simsys.run(plain), "id", "start", "end")[0] == (0, 0.5, 3.5)


def test_no_hedge_when_the_answer_comes_in_time():
    spec = hedge_spec()
    spec["services"]["db"]["service_time"] = "0.125s"
    r = simsys.run(spec)
    c = calls(r, "web->db")
    assert c["hedges"] == 0 and c["attempts"] == c["calls"] > 0


def test_a_hedge_respects_the_bulkhead_and_the_half_open_breaker():
    # With one bulkhead slot, the copy at 0.5 would be a second call outstanding: not sent.
    spec = hedge_spec()
    spec["services"]["web"]["calls"][0]["bulkhead"] = {"max_concurrent": 1}
    r = simsys.run(spec)
    c = calls(r, "web->db")
    assert (c["hedges"], c["attempts"], c["bulkhead_rejected"]) == (0, c["calls"], 0)
    # A half-open breaker lets one trial through, not a trial and its copy: db is down until
    # 2.375, the breaker opens at 0.5 and half-opens at 2.5; the trial (db takes 1 s) would be
    # hedged at 2.75. It closes the breaker at 3.5, when the other user's call goes out; that
    # one is hedged at 3.75, as the first user calls again.
    spec = breaker_spec("2.375s", "3.8s")
    spec["services"]["db"]["service_time"] = "1s"
    spec["services"]["web"]["calls"][0]["hedge"] = {"after": "0.25s"}
    r = simsys.run(spec)
    assert rows(r.breakers, "time", "state") == [(0.5, "open"), (2.5, "half_open"),
                                                 (3.5, "closed")]
    assert list(r.records.attempt_at) == [0.25, 0.25, 0.5, 0.5, 2.5, 3.5, 3.75, 3.75]


# -- service discovery ------------------------------------------------------------------------
def test_stale_discovery_cache_sends_to_a_dead_replica_until_its_ttl_expires():
    # web looks db up at its first call (0.25) and keeps the view until 2.25. One db replica
    # crashes at 1.125 and is detected at once, but calls from the cached view still go to it
    # in turn (round robin) and fail as crash, until the view is refreshed at 2.25.
    spec = {"duration": "3.2s",
            "services": {"web": {"calls": ["db"]},
                         "db": {"replicas": 2, "discovery": {"ttl": "2s"}}},
            "faults": [{"kind": "crash", "target": "db", "at": "1.125s", "mode": "fixed",
                        "value": 1}],
            "recovery": {"detection": "0s", "max_restarts": 0},
            "workload": [closed()]}
    r = simsys.run(spec)
    dead = int(r.incidents["instance"].iloc[0])
    failed = r.requests[r.requests["status"] != "ok"]
    # Round robin over the cached [db0, db1]: db0 gets the calls at 1.25 and 1.75, db1 1.5, 2.0.
    times = (1.25, 1.75) if dead == 0 else (1.5, 2.0)
    assert rows(failed, "start", "status", "cause", "failed_service", "failed_instance") == [
        (t, "error", "crash", "db", dead) for t in times
    ]
    assert failed["start"].max() < 2.25
    assert (r.requests["start"] >= 2.25).sum() == 4

    del spec["services"]["db"]["discovery"]   # the balancer's own view: updated at detection
    assert set(simsys.run(spec).requests["status"]) == {"ok"}


# -- bad input --------------------------------------------------------------------------------
def _error(spec: dict[str, Any]) -> str:
    with pytest.raises(simsys.ScenarioError) as err:
        simsys.load(spec)
    return str(err.value)


def _web_calls(**call: Any) -> dict[str, Any]:
    return {"services": {"web": {"calls": [{"service": "db", **call}]}, "db": {}}}


@pytest.mark.parametrize("budget", ["150%", 1.5])
def test_retry_budget_above_100_percent_is_refused(budget):
    msg = _error({"services": {"web": {"retry": {"budget": budget}}}})
    assert msg.startswith("services.web.retry.budget:") and "100%" in msg


@pytest.mark.parametrize("timeout", ["0s", "-1s", 0])
def test_a_timeout_must_be_positive(timeout):
    assert _error({"services": {"web": {"timeout": timeout}}}).startswith("services.web.timeout:")
    spec = {"services": {"web": {}},
            "workload": [{"type": "poisson", "rate": "1/s", "target": "web", "timeout": timeout}]}
    assert _error(spec).startswith("workload[0].timeout:")


def test_a_bad_key_on_a_call_names_the_call_path():
    assert _error(_web_calls(timeout="0s")).startswith("services.web.calls[0].timeout:")
    assert _error(_web_calls(retry={"budget": "101%"})).startswith(
        "services.web.calls[0].retry.budget:")


def test_quorum_above_the_number_of_parallel_calls_is_refused():
    spec = {"services": {"web": {"calls": [{"parallel": ["a", "b"], "quorum": 3}]},
                         "a": {}, "b": {}}}
    msg = _error(spec)
    assert msg.startswith("services.web.calls[0]") and "quorum" in msg and "2" in msg
