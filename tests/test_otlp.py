"""OTLP export read by the real opentelemetry-proto parser, and the traces → scenario round trip."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

import simsys
from simsys.calibrate import calibrate
from simsys.cli import cli

pb = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
json_format = pytest.importorskip("google.protobuf.json_format")

SHORT = {"trace": True, "duration": "20s", "warmup": 0}


def _parse(path):
    """OTLP/JSON ids are hex (not protobuf's base64): check that, convert, parse for real."""
    doc = json.load(open(path))
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for k, width in (("traceId", 32), ("spanId", 16), ("parentSpanId", 16)):
                    if k in s:
                        assert len(s[k]) == width and int(s[k], 16) >= 0
                        s[k] = base64.b64encode(bytes.fromhex(s[k])).decode()
    return json_format.Parse(json.dumps(doc), pb.ExportTraceServiceRequest())


def _flat(msg):
    rows = []
    for rs in msg.resource_spans:
        attrs = {a.key: a.value.string_value for a in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                rows.append((s.trace_id, s.span_id, s.parent_span_id, attrs["service.name"],
                             attrs.get("service.instance.id", ""), s.kind,
                             s.start_time_unix_nano, s.end_time_unix_nano, s.status.code,
                             {a.key for a in s.attributes}))
    return rows


def test_export_parses_and_nests(tmp_path):
    r = simsys.run("scenarios/checkout.yaml", seed=2, overrides=SHORT)
    out = tmp_path / "t.json"
    counts = r.to_otlp(out, start="2026-01-01T00:00:00Z")
    rows = _flat(_parse(out))
    assert len(rows) == counts["spans"]
    by_id = {(t, s): row for row in rows for t, s in [(row[0], row[1])]}
    assert len(by_id) == len(rows)
    assert {row[3] for row in rows} >= {"gateway", "catalog", "cart", "payments", "shoppers"}
    nested = 0
    for row in rows:
        assert len(row[0]) == 16 and len(row[1]) == 8
        if not row[2]:
            continue
        parent = by_id[(row[0], row[2])]
        if "simsys.abandoned" in row[9]:
            continue
        assert parent[6] <= row[6] and row[7] <= parent[7], (row, parent)
        nested += 1
    assert nested > 1000
    # the root span's duration is the request's latency
    req = r.requests.set_index("id")
    roots = [row for row in rows if not row[2]]
    assert len(roots) == len(req)
    t0 = 1_767_225_600 * 10**9
    for row in roots[:500]:
        rid = int.from_bytes(row[0][4:], "big")
        assert abs((row[7] - row[6]) / 1e9 - req.at[rid, "latency"]) < 2e-9
        assert abs((row[6] - t0) / 1e9 - req.at[rid, "start"]) < 2e-9
    # dropped requests (gateway->catalog loss) are errors on their root
    assert sum(row[8] == 2 for row in roots) == int((req["status"] != "ok").sum())


def test_sampling_keeps_whole_traces_deterministically(tmp_path):
    r = simsys.run("scenarios/checkout.yaml", seed=2, overrides=SHORT)
    a = r.to_otlp(tmp_path / "a.json", sample="10%")
    r.to_otlp(tmp_path / "b.json", sample=0.1)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    n = len(r.requests)
    assert abs(a["traces"] - 0.1 * n) < 4 * (0.1 * 0.9 * n) ** 0.5
    rows = _flat(_parse(tmp_path / "a.json"))
    traces = {row[0] for row in rows}
    assert len(traces) == a["traces"]
    ids = {(row[0], row[1]) for row in rows}
    assert all((row[0], row[2]) in ids for row in rows if row[2])   # no orphan: whole traces


def test_cli_otlp_turns_tracing_on(tmp_path):
    out = tmp_path / "o.json"
    res = CliRunner().invoke(cli, ["run", "scenarios/checkout.yaml", "--set", "duration=5s",
                                   "--set", "warmup=0", "-q", "--otlp", str(out)])
    assert res.exit_code == 0, res.output
    assert _flat(_parse(out))
    res = CliRunner().invoke(cli, ["run", "scenarios/checkout.yaml", "--otlp", str(out),
                                   "--otlp-sample", "150%"])
    assert res.exit_code == 2 and "otlp sample" in res.output


def _latencies(spec, seeds, duration="60s"):
    out = []
    for s in seeds:
        r = simsys.run(spec, seed=s, overrides={"duration": duration, "warmup": "5s"})
        lat = r.requests.loc[(r.requests["status"] == "ok") & (r.requests["start"] >= 5),
                             "latency"].to_numpy()
        out.append((lat.mean(), np.percentile(lat, 50), np.percentile(lat, 99)))
    return np.array(out)


def _within_ci(a, b, level=0.99):
    """Welch: is the difference of the two groups' means within the run-to-run interval?"""
    t = stats.ttest_ind(a, b, equal_var=False)
    return t.pvalue > 1 - level


def _graph(path):
    G = simsys.build_graph(path)
    return {(u, v): d.get("probability", 1.0) for u, v, d in G.edges(data=True)
            if not str(u).startswith("client")}


@pytest.mark.parametrize("scenario", ["scenarios/checkout.yaml",
                                      "scenarios/shop-microservices.yaml"])
def test_round_trip(tmp_path, scenario):
    r = simsys.run(scenario, seed=1, overrides={"trace": True, "duration": "2min", "warmup": 0})
    traces = tmp_path / "traces.json"
    r.to_otlp(traces)
    text, counts = calibrate(str(traces))
    assert counts["partial"] == 0
    cal = tmp_path / "cal.yaml"
    cal.write_text(text)
    original, calibrated = _graph(scenario), _graph(str(cal))
    assert set(original) == set(calibrated)
    n = r.summary()["requests"]["total"]
    for edge, p in original.items():   # a binomial share of the caller's visits
        assert abs(calibrated[edge] - p) < 4 * (max(p * (1 - p), 0.002) / (n * 0.3)) ** 0.5 + 0.003
    seeds_a, seeds_b = range(10, 16), range(20, 26)
    a = _latencies(scenario, seeds_a)
    b = _latencies(str(cal), seeds_b)
    for k, what in enumerate(("mean", "p50", "p99")):
        assert _within_ci(a[:, k], b[:, k]), (what, a[:, k], b[:, k])
    # negative control: without the link latencies the calibrated model is rejected
    lines = [("links: {}" if ln == "links:" else ln) for ln in text.splitlines()
             if "latency:" not in ln]
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("\n".join(lines) + "\n")
    c = _latencies(str(wrong), seeds_b)
    assert not _within_ci(a[:, 0], c[:, 0]) and not _within_ci(a[:, 1], c[:, 1])


def _write(tmp_path, spans):
    doc = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "a"}}]},
        "scopeSpans": [{"spans": spans}]}]}
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    return str(p)


def _span(sid, parent="", start=0, end=10**6):
    s = {"traceId": "0" * 31 + "1", "spanId": sid, "kind": 2, "startTimeUnixNano": str(start),
         "endTimeUnixNano": str(end)}
    if parent:
        s["parentSpanId"] = parent
    return s


@pytest.mark.parametrize("spans, needle", [
    ([_span("a1", "b2"), _span("b2", "a1")], "cycle"),
    ([_span("a1"), _span("b2", "a1", start=-5000, end=10)], "clock skew"),
    ([_span("a1"), _span("b2", "ff")], "b2: its parent is not in the file"),
    ([{k: v for k, v in _span("a1").items() if k != "endTimeUnixNano"}], "malformed span"),
    ([_span("a1"), _span("a1")], "a1: span id appears twice"),
])
def test_bad_traces_exit_2(tmp_path, spans, needle):
    path = _write(tmp_path, spans)
    res = CliRunner().invoke(cli, ["calibrate", path, "-o", str(tmp_path / "x.yaml")])
    assert res.exit_code == 2 and needle in res.output and path in res.output, res.output


def test_malformed_and_partial(tmp_path):
    p = tmp_path / "m.json"
    p.write_text("{not json")
    res = CliRunner().invoke(cli, ["calibrate", str(p), "-o", str(tmp_path / "x.yaml")])
    assert res.exit_code == 2 and str(p) in res.output
    path = _write(tmp_path, [_span("a1"), {**_span("b2", "ff"), "traceId": "0" * 31 + "2"}])
    res = CliRunner().invoke(cli, ["calibrate", path, "-o", str(tmp_path / "x.yaml"),
                                   "--allow-partial"])
    assert res.exit_code == 0 and "1 partial traces" in res.output, res.output


PATTERNS = {
    "name": "patterns", "duration": "20s", "trace": True,
    "services": {
        "web": {"workers": 50, "service_time": "1ms", "calls": [
            {"service": "slow", "timeout": "30ms", "retry": {"max_attempts": 2, "backoff": "5ms"},
             "hedge": {"after": "15ms"}, "fallback": {"service_time": "2ms"},
             "circuit_breaker": {"error_threshold": "50%", "volume_threshold": 20,
                                 "sleep_window": "1s", "rolling_window": "2s"}}]},
        "slow": {"workers": 2, "queue": 5,
                 "service_time": {"dist": "exponential", "mean": "12ms"}},
    },
    "links": {"default": {"latency": "1ms"}},
    "workload": [{"type": "poisson", "rate": "150/s", "target": "web"}],
}


def test_patterns_show_as_events_and_errors(tmp_path):
    r = simsys.run(PATTERNS, seed=4)
    out = tmp_path / "p.json"
    r.to_otlp(out)
    rows = _flat(_parse(out))
    doc = json.load(open(out))
    spans = [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    events = {e["name"] for s in spans for e in s.get("events", [])}
    errors = {a["value"]["stringValue"] for s in spans for a in s["attributes"]
              if a["key"] == "error.type"}
    calls = r.calls.iloc[0]
    assert calls["timeouts"] > 0 and calls["retries"] > 0 and calls["hedges"] > 0
    assert {"retry", "hedge", "timeout", "fallback"} <= events, events
    assert {"timeout", "rejected"} <= errors, errors
    if calls.get("short_circuited", 0):
        assert "circuit_open" in errors
    # nesting holds except under calls the caller stopped waiting for
    by_id = {(row[0], row[1]): row for row in rows}
    given_up = {"simsys.timed_out", "simsys.abandoned"}
    for row in rows:
        if row[2] and not row[9] & given_up:
            parent = by_id[(row[0], row[2])]
            if parent[9] & given_up:
                continue
            assert parent[6] <= row[6] and row[7] <= parent[7]
    # the CLIENT span of a timed-out attempt lasts the timeout (less if the caller moved on)
    timed = [(row[7] - row[6]) / 1e9 for row in rows if "simsys.timed_out" in row[9]
             and "simsys.abandoned" not in row[9]]
    assert timed and all(abs(d - 0.030) < 1e-6 for d in timed), sorted(timed)[:5]


def test_jaeger_json_calibrates_like_otlp(tmp_path):
    """The same spans in Jaeger's JSON export (data[].spans, microseconds, processes) give the
    same services and calls."""
    r = simsys.run("scenarios/checkout.yaml", seed=3, overrides=SHORT)
    otlp = tmp_path / "t.json"
    r.to_otlp(otlp)
    doc = json.load(open(otlp))
    traces: dict = {}
    for rs in doc["resourceSpans"]:
        attrs = {a["key"]: a["value"]["stringValue"] for a in rs["resource"]["attributes"]}
        pid = attrs["service.name"] + "/" + attrs.get("service.instance.id", "")
        for s in rs["scopeSpans"][0]["spans"]:
            t = traces.setdefault(s["traceId"], {"traceID": s["traceId"], "spans": [],
                                                 "processes": {}})
            t["processes"][pid] = {"serviceName": attrs["service.name"], "tags": [
                {"key": "hostname", "type": "string",
                 "value": attrs.get("service.instance.id", "")}]}
            start = int(s["startTimeUnixNano"]) // 1000
            t["spans"].append({
                "traceID": s["traceId"], "spanID": s["spanId"], "processID": pid,
                "operationName": s["name"], "startTime": start,
                "duration": int(s["endTimeUnixNano"]) // 1000 - start,
                "references": [{"refType": "CHILD_OF", "traceID": s["traceId"],
                                "spanID": s["parentSpanId"]}] if "parentSpanId" in s else [],
                "tags": [{"key": "span.kind", "type": "string",
                          "value": {2: "server", 3: "client"}.get(s["kind"], "internal")}]
                + ([{"key": "error", "type": "bool", "value": True}] if "status" in s else []),
            })
    jaeger = tmp_path / "jaeger.json"
    jaeger.write_text(json.dumps({"data": list(traces.values())}))
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(calibrate(str(otlp))[0])
    b.write_text(calibrate(str(jaeger))[0])
    ga, gb = _graph(str(a)), _graph(str(b))
    assert set(ga) == set(gb) == set(_graph("scenarios/checkout.yaml"))
    assert all(abs(ga[e] - gb[e]) < 1e-9 for e in ga)
    sa, sb = simsys.load(str(a)), simsys.load(str(b))
    assert {k: v.replicas for k, v in sa.services.items()} == \
        {k: v.replicas for k, v in sb.services.items()}
