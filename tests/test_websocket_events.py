"""Event-level tests of the exact WebSocket representation: small runs whose every number can be
worked out by hand (constant latencies and handshakes, ``jitter: none``)."""

from __future__ import annotations

import numpy as np
import pytest

import simsys


def chat(ws: dict | None = None, workload: dict | None = None, **top) -> dict:
    """A one-service scenario; ``top`` keys (services are merged into chat's settings)."""
    service = {"websocket": {"representation": "exact", **(ws or {})}}
    service.update(top.pop("service", {}))
    return {
        "duration": top.pop("duration", "20s"),
        "sample_every": top.pop("sample_every", "1s"),
        "services": {"chat": service},
        "workload": [{"type": "websocket", "target": "chat", **(workload or {"clients": 1})}],
        **top,
    }


def series(r: simsys.Result, metric: str) -> dict[tuple[float, int], float]:
    ts = r.timeseries
    rows = ts[ts["metric"] == metric]
    return {(round(t, 6), int(i)): v for t, i, v in zip(rows["time"], rows["instance"],
                                                        rows["value"], strict=True)}


def test_upgrade_costs_a_round_trip_and_a_handshake():
    # sent at 0, reaches the server at 10 ms, 2.5 ms of handshake: open at 12.5 ms
    r = simsys.run(chat({"handshake": "2.5ms"}, {"clients": 1},
                        links={"client->chat": {"latency": "10ms"}},
                        duration="20ms", sample_every="1ms"))
    conn, shake = series(r, "connections"), series(r, "handshakes")
    assert [shake[(t / 1000, 0)] for t in (9, 10, 11, 12, 13)] == [0, 1, 1, 1, 0]
    assert [conn[(t / 1000, 0)] for t in (9, 12, 13, 20)] == [0, 0, 1, 1]
    ws = r.summary()["websockets"]
    assert (ws["attempts"], ws["accepted"], ws["blocked"], ws["reconnects"]) == (1, 1, 0, 0)


def test_handshakes_queue_for_the_websocket_workers():
    # 4 upgrades at once, 1 worker, 1 s each: open at 1, 2, 3, 4 s
    r = simsys.run(chat({"handshake": "1s", "workers": 1}, {"clients": 4}, duration="5s",
                        sample_every="0.5s"))
    conn = series(r, "connections")
    assert [conn[(t, 0)] for t in (0.5, 1.5, 2.5, 3.5, 4.5)] == [0, 1, 2, 3, 4]
    assert r.summary()["websockets"]["ws_utilization"] == pytest.approx(4 / 5)


def test_a_full_pool_blocks_and_a_client_gives_up_after_max_attempts():
    r = simsys.run(chat({"max_connections": 2}, {"clients": 3, "reconnect": {"max_attempts": 1}}))
    ws = r.summary()["websockets"]
    assert (ws["attempts"], ws["accepted"], ws["blocked"], ws["gave_up"]) == (3, 2, 1, 1)
    assert ws["peak_connections"] == 2


def test_blocked_clients_retry_on_the_back_off_schedule():
    # one slot, two clients: the second retries at 1, 3, 7, 15 s (waits 1, 2, 4, 8: none jitter)
    r = simsys.run(chat({"max_connections": 1}, {
        "clients": 2, "reconnect": {"initial": "1s", "max": "30s", "jitter": "none"}}))
    counts = r.records.stats["websockets"]["pools"]["chat"]["counts"]
    blocked_at = np.flatnonzero(counts["blocked"]) * 0.1
    # the first failure (at 0) waits b(1) = 2 s, then 4 s, 8 s: attempts at 0, 2, 6, 14
    assert blocked_at.round(6).tolist() == [0.0, 2.0, 6.0, 14.0]
    assert r.summary()["websockets"]["reconnects"] == 3


def test_a_failed_replica_drops_its_connections_and_clients_come_back_after_the_wait():
    spec = chat({}, {"clients": 4, "reconnect": {"initial": "1s", "jitter": "none"}},
                service={"replicas": 2}, duration="15s",
                faults=[{"kind": "crash", "target": "chat", "at": "10s", "mode": "fixed",
                         "value": 1}],
                recovery={"detection": "0s", "restart": "1h"})
    r = simsys.run(spec)
    ws = r.summary()["websockets"]
    assert ws["drops"] == 2 and ws["reconnects"] == 2
    dead = int(r.incidents["instance"].iloc[0])
    conn = series(r, "connections")
    assert conn[(9.0, dead)] == 2 and conn[(10.0, dead)] == 0
    assert conn[(10.0, 1 - dead)] == 2 and conn[(11.0, 1 - dead)] == 4   # back at exactly 11 s
    counts = r.records.stats["websockets"]["pools"]["chat"]["counts"]
    assert np.flatnonzero(counts["reconnects"]).tolist() == [110]


def test_sticky_clients_go_back_to_their_replica():
    # every client: 1 s open, 1 s away (jitter none), all in step; random balancer
    def per_replica(sticky: bool) -> list[tuple[float, ...]]:
        spec = chat({"sticky": sticky}, {
            "clients": 30, "lifetime": "1s", "reconnect": {"initial": "1s", "jitter": "none"}},
            service={"replicas": 3, "balancer": "random"}, duration="10s", seed=4,
            sample_every="0.5s")
        conn = series(simsys.run(spec), "connections")
        return [tuple(conn[(t, i)] for i in range(3)) for t in (0.5, 2.5, 4.5, 8.5)]

    sticky = per_replica(True)
    assert len(set(sticky)) == 1 and sum(sticky[0]) == 30   # every snapshot the same split
    assert len(set(per_replica(False))) > 1


def test_least_connections_sends_reconnects_to_the_restarted_replica():
    def spread(balancer: str) -> float:
        spec = chat({}, {"clients": 300, "reconnect": {"initial": "10s", "jitter": "full"}},
                    service={"replicas": 3, "balancer": balancer}, duration="40s", seed=2,
                    faults=[{"kind": "crash", "target": "chat", "at": "10s", "mode": "fixed",
                             "value": 1}],
                    recovery={"detection": "0s", "restart": "1s"})
        conn = series(simsys.run(spec), "connections")
        at_end = [conn[(40.0, i)] for i in range(3)]
        assert sum(at_end) == 300
        return max(at_end) - min(at_end)

    # 100 clients come back over 10 s; the replica is back after 1 s. least_connections fills it
    # up to the others (about 90 vs 105); round robin gives it only a third (about 30 vs 135).
    least, rr = spread("least_connections"), spread("round_robin")
    assert least <= 25 and rr >= 70, (least, rr)


def test_idle_timeout_closes_quiet_connections_unless_heartbeats_keep_them():
    workload = {"clients": 1, "reconnect": {"initial": "1s", "jitter": "none"}}
    r = simsys.run(chat({"idle_timeout": "2s"}, workload, duration="19.5s"))
    # open at 0, 3, 6, …; closed idle 2 s later; back 1 s after that
    assert r.summary()["websockets"]["idle_closes"] == 6
    r = simsys.run(chat({"idle_timeout": "2s", "heartbeat": "1s"}, workload, duration="19.5s"))
    assert r.summary()["websockets"]["idle_closes"] == 0


def test_bytes_count_upgrades_frames_and_heartbeats():
    r = simsys.run(chat({"heartbeat": "10s"}, {"clients": 10, "http_overhead": "800B"},
                        duration="100s"))
    # 10 upgrades of 800 B, then 10 connections × 10 heartbeats × (2 + 6) B
    assert r.summary()["websockets"]["bytes"] == pytest.approx(10 * 800 + 10 * 10 * 8)
    r = simsys.run(chat({}, {"clients": 5, "http_overhead": "0B",
                             "messages": {"server_rate": "2/s", "client_rate": "1/s",
                                          "size": "512B"}}, duration="50s"))
    ws = r.summary()["websockets"]
    assert ws["bytes"] == ws["messages_to_clients"] * 516 + ws["messages_to_server"] * 520
    assert ws["messages_to_clients"] == pytest.approx(5 * 2 * 50, rel=0.1)


def test_each_connection_costs_memory_until_the_limit_kills_the_replica():
    spec = chat({}, {"clients": 10, "ramp": "10s", "reconnect": {"jitter": "none",
                                                                "max_attempts": 1}},
                service={"memory": {"base": "1MB", "per_connection": "1MB", "limit": "6.5MB"}},
                recovery={"detection": "1s", "restart": "1h"})
    r = simsys.run(spec)
    inc = r.incidents
    assert list(inc["kind"]) == ["oom"]
    assert r.summary()["websockets"]["drops"] == 5   # the 6th upgrade took it over the limit


def test_delivery_latency_is_the_wait_for_a_worker_plus_the_way_back():
    r = simsys.run(chat({"message_time": "5ms"}, {
        "clients": 3, "messages": {"server_rate": "1/s"}},
        links={"client->chat": {"latency": "20ms"}}, duration="60s"))
    lat = r.deliveries["latency"].to_numpy()
    in_flight = r.summary()["websockets"]["messages_to_clients"] - len(lat)
    assert 0 <= in_flight <= 3                       # only those still on the way at the end
    assert lat.min() == pytest.approx(0.025)          # 5 ms of work, 20 ms back
    assert np.median(lat) == pytest.approx(0.025)


def test_connect_timeout_abandons_slow_upgrades():
    # 1 worker, 1 s per handshake, three upgrades at 0: the third would open at 3 s > 2.5 s
    r = simsys.run(chat({"handshake": "1s", "workers": 1}, {
        "clients": 3, "connect_timeout": "2.5s", "reconnect": {"initial": "10s",
                                                               "jitter": "none"}},
        duration="4s"))
    ws = r.summary()["websockets"]
    assert ws["timeouts"] == 1 and ws["accepted"] == 3
    assert series(r, "connections")[(4.0, 0)] == 2
