"""Polling against theory: the delivery latency of server messages.

Short polling with a fixed interval T: a message arrives at a uniformly random moment between
two consecutive looks of the server, so it waits T/2 on average, then crosses the link back:
mean latency T/2 + L (one-way latency L; the service time does not add, since the server looks
after serving the poll).

Long polling: a held poll is answered as soon as a message arrives (latency L). After each
answer there is a gap of G = 2L + S (the answer goes back, the next poll comes, is served)
during which a message waits for the next look. With Poisson messages at rate r per client and
a hold of H, the gaps recur once per cycle of mean G + e^(−rG)(1 − e^(−rH))/r, so the mean wait
is (G²/2)/cycle and the mean latency L + (G²/2)/cycle — about one way, far from T/2.

Messages generated in the last stretch of a run may not be delivered before it ends; only those
created between the warm-up and ``duration − 2T`` are measured, so none is cut off.
"""

from __future__ import annotations

import math

from stats import assert_rejected, assert_theory_in_ci, replicate

import simsys

T, L, S, R = 2.0, 0.010, 0.001, 0.5   # interval, one-way latency, service time, messages/s
DURATION, WARMUP = 300.0, 20.0


def spec(long: bool) -> dict:
    return {
        "duration": DURATION, "warmup": WARMUP,
        "services": {"chat": {"replicas": 2, "workers": 8, "service_time": S,
                              "memory": {"base": "100MB", "per_connection": "40KB"}}},
        "links": {"client->chat": {"latency": L}},
        "workload": [{"type": "polling", "target": "chat", "clients": 100, "interval": T,
                      "long": long, "hold": "30s",
                      "messages": {"server_rate": R, "client_rate": "0.1/s", "size": "100B"}}],
    }


def mean_latency(r: simsys.Result) -> float:
    d = r.deliveries
    keep = (d["created_at"] >= WARMUP) & (d["created_at"] <= DURATION - 2 * T)
    return float(d.loc[keep, "latency"].mean())


def test_short_polling_waits_half_an_interval():
    x = replicate(spec(False), 5, mean_latency)
    theory = T / 2 + L
    assert_theory_in_ci(x, theory, max_rel_halfwidth=0.02, name="short-poll latency")
    assert_rejected(x, T / 2 + 2 * L + S + 0.02, max_rel_halfwidth=0.02)
    assert_rejected(x, T, max_rel_halfwidth=0.02)


def test_long_polling_takes_about_one_way():
    x = replicate(spec(True), 5, mean_latency)
    G, H = 2 * L + S, 30.0
    cycle = G + math.exp(-R * G) * (1 - math.exp(-R * H)) / R
    theory = L + G * G / 2 / cycle
    assert_theory_in_ci(x, theory, max_rel_halfwidth=0.01, name="long-poll latency")
    assert_rejected(x, L, max_rel_halfwidth=0.01)        # without the gaps
    assert_rejected(x, 2 * L, max_rel_halfwidth=0.01)    # a full round trip


def test_polling_requests_bytes_and_held_connections():
    short = simsys.run(spec(False), seed=3)
    long = simsys.run(spec(True), seed=3)
    s, lg = short.summary(), long.summary()
    window = DURATION - WARMUP
    ws = s["websockets"]
    # one poll per client per interval, plus the posted messages (0.1/s per client)
    assert abs(ws["polls"] / window - 100 / T) < 0.02 * 100 / T
    assert abs(ws["posts"] / window - 100 * 0.1) < 0.1 * 100 * 0.1
    # every poll and post is an ordinary request (a few are in flight at the edges)
    assert abs(s["requests"]["total"] - ws["polls"] - ws["posts"]) <= 10
    assert s["requests"]["ok"] == s["requests"]["total"]
    # an empty poll finds nothing with probability e^(−rT)
    assert abs(ws["empty_polls"] / ws["polls"] - math.exp(-R * T)) < 0.02
    # bytes: 800 B of headers per request, 100 B per message carried
    expected = 800 * (ws["polls"] + ws["posts"]) + 100 * (ws["messages_to_clients"] + ws["posts"])
    assert abs(ws["bytes"] - expected) < 0.01 * expected
    # long polling holds about one request per client, and that costs memory per connection
    assert 95 < lg["websockets"]["mean_connections"] <= 100
    assert s["websockets"]["mean_connections"] == 0
    assert lg["websockets"]["server_memory_mean"] > s["websockets"]["server_memory_mean"] + 90 * 40e3
