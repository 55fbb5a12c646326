"""Export a traced run's requests as OpenTelemetry spans in OTLP/JSON.

One trace per request. Its root span (kind CLIENT) is the workload's side of the request, from
the request's start to its end, so its duration is the request's latency; under it each visit to
a service is a SERVER span (a worker taking it to its answer, on the replica's resource) and each call a
service makes is a CLIENT span on the caller's resource (sent to answer received), parented as
the calls were made. Failed visits and calls have status ERROR with ``error.type`` (the cause:
rejected, shed, timeout, crash, circuit_open, …) and an event of that name; retries and hedged
copies carry ``simsys.attempt`` > 1 and an event ``retry``.

Sampling keeps or drops whole traces, decided per request from the run's own random stream
``otlp/sample`` (so the same seed and fraction keep the same requests). The writer builds the
JSON text column by column (no per-span dicts), which keeps export of a million requests
within a small multiple of the run's own time.
"""

from __future__ import annotations

import functools
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import SimsysError
from .records import (
    CALL_FALLBACK,
    CALL_HEDGE,
    CALL_REFUSED,
    CALL_TIMED_OUT,
    CAUSES,
    OK,
    STATUSES,
)
from .sim.engine import Streams

if TYPE_CHECKING:
    from .result import Result

# 2026-01-01T00:00:00Z: simulated time 0 unless told otherwise; fixed, so exports are repeatable.
DEFAULT_START = 1_767_225_600.0
ROOT_BIT = 1 << 62          # root span ids: ROOT_BIT | request id; call k: 2k (CLIENT), 2k+1
KIND_INTERNAL, KIND_SERVER, KIND_CLIENT = 1, 2, 3
STATUS_ERROR = 2


def parse_start(start: float | str | datetime | None) -> float:
    """Unix seconds of simulated time 0 from a number, an ISO 8601 string or a datetime."""
    if start is None:
        return DEFAULT_START
    if isinstance(start, datetime):
        dt = start if start.tzinfo else start.replace(tzinfo=UTC)
        return dt.timestamp()
    if isinstance(start, str):
        try:
            return parse_start(datetime.fromisoformat(start.replace("Z", "+00:00")))
        except ValueError:
            raise SimsysError(f"otlp start: expected an ISO 8601 time such as "
                              f"2026-01-01T00:00:00Z, got {start!r}") from None
    value = float(start)
    if not 0 <= value < 1e10:
        raise SimsysError(f"otlp start: expected unix seconds in [0, 1e10), got {start!r}")
    return value


def parse_sample(sample: float | str) -> float:
    """A sampling fraction from ``0.01``, ``"1%"`` or ``"0.01"``; must lie in (0, 1]."""
    text = str(sample).strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise SimsysError(f"otlp sample: expected a fraction like 1% or 0.01, got {sample!r}") \
            from None
    if not 0 < value <= 1:
        raise SimsysError(f"otlp sample: expected a fraction in (0, 1], got {sample!r}")
    return value


def _hex(values: np.ndarray, width: int) -> list[str]:
    fmt = f"%0{width}x"
    return [fmt % v for v in values.tolist()]


# one per span and all different: written directly (a number needs no escaping), not cached
QUEUE_TIME = '{{"key":"simsys.queue_time_s","value":{{"stringValue":"{:.9f}"}}}}'


def _nanos(start_ns: int, t: np.ndarray) -> list[str]:
    return [str(v) for v in (start_ns + np.rint(t * 1e9).astype(np.int64)).tolist()]


@functools.lru_cache(maxsize=4096)  # names, statuses, attempts: a few values, millions of spans
def _attr(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return f'{{"key":"{key}","value":{{"boolValue":{"true" if value else "false"}}}}}'
    if isinstance(value, int):
        return f'{{"key":"{key}","value":{{"intValue":"{value}"}}}}'
    return f'{{"key":"{key}","value":{{"stringValue":{json.dumps(str(value))}}}}}'


def sampled_requests(result: Result, fraction: float) -> np.ndarray:
    """Boolean mask over request ids: the requests whose traces are kept."""
    rids = np.asarray(result.records.requests.rid, dtype=np.int64)
    n = int(rids.max()) + 1 if len(rids) else 0
    if fraction >= 1:
        return np.ones(n, dtype=bool)
    draws = Streams(result.seed).rng("otlp/sample").random(n)
    return draws < fraction


def write_otlp(result: Result, path: str | os.PathLike[str], *, start: Any = None,
               sample: float | str = 1.0) -> dict[str, int]:
    """Write ``result``'s requests as OTLP/JSON (an ``ExportTraceServiceRequest``) to ``path``.

    Returns counts: ``traces``, ``spans`` written and ``unfinished`` requests left out (still
    in flight at the end of the run). Needs a run with ``trace: true``.
    """
    rec = result.records
    calls = rec.call_log
    if calls is None:
        raise SimsysError("otlp export needs the run's call spans: set 'trace: true' in the "
                          "scenario (simsys run --otlp does it for you)")
    start_ns = int(round(parse_start(start) * 1e9))
    keep = sampled_requests(result, parse_sample(sample))

    req = rec.requests
    r_id = np.asarray(req.rid, dtype=np.int64)
    r_keep = keep[r_id] if len(r_id) else np.zeros(0, dtype=bool)
    finished = np.zeros(len(keep), dtype=bool)
    finished[r_id] = True

    c_rid = np.asarray(calls.rid, dtype=np.int64)
    c_span = np.asarray(calls.span, dtype=np.int64)
    c_parent = np.asarray(calls.parent, dtype=np.int64)
    c_svc = np.asarray(calls.service, dtype=np.int64)
    c_rep = np.asarray(calls.replica, dtype=np.int64)
    sent, arrived = np.asarray(calls.sent), np.asarray(calls.arrived)
    ended, returned = np.asarray(calls.ended), np.asarray(calls.returned)
    c_status, c_cause = np.asarray(calls.status), np.asarray(calls.cause)
    c_attempt = np.asarray(calls.attempt, dtype=np.int64)
    # calls of kept, finished requests whose caller's visit is logged too
    ok_rid = c_rid < len(keep)
    sel = np.zeros(len(c_rid), dtype=bool)
    sel[ok_rid] = keep[c_rid[ok_rid]] & finished[c_rid[ok_rid]]
    row_of = np.full(int(c_span.max()) + 1 if len(c_span) else 1, -1, dtype=np.int64)
    row_of[c_span] = np.arange(len(c_span))
    p_row = np.where(c_parent > 0, row_of[c_parent], -1)
    sel &= (c_parent == 0) | (p_row >= 0)
    idx = np.flatnonzero(sel)
    services = rec.services
    causes = list(CAUSES)
    # end of the caller's visit (the request's end for calls from the client): a call the
    # caller gave up on (timeout, a hedge that lost) is cut there and marked abandoned
    r_end = np.full(len(keep), np.nan)
    r_end[r_id] = np.asarray(req.end)
    r_start = np.full(len(keep), np.nan)
    r_start[r_id] = np.asarray(req.start)
    src_of = np.zeros(len(keep), dtype=np.int64)
    src_of[r_id] = np.asarray(req.source, dtype=np.int64)

    out: dict[tuple[str, str], list[str]] = {}
    n_spans = 0

    def add(resource: tuple[str, str], trace: list[str], span: list[str], parent: list[str],
            name: list[str] | str, kind: int | np.ndarray, t0: np.ndarray, t1: np.ndarray,
            status: np.ndarray, cause: np.ndarray, extra: list[str],
            marks: list[list[str]] | None = None) -> None:
        """Spans of one resource; ``marks``: names of events at each span's start."""
        nonlocal n_spans
        s0, s1 = _nanos(start_ns, t0), _nanos(start_ns, t1)
        bucket = out.setdefault(resource, [])
        names = [name] * len(trace) if isinstance(name, str) else name
        kinds = [kind] * len(trace) if isinstance(kind, int) else kind.tolist()
        for i in range(len(trace)):
            attrs = extra[i]
            events = [f'{{"timeUnixNano":"{s0[i]}","name":"{e}"}}' for e in marks[i]] \
                if marks is not None else []
            tail = ""
            if status[i] != OK:
                kind_of_error = causes[cause[i]] or STATUSES[status[i]]
                events.append(f'{{"timeUnixNano":"{s1[i]}","name":"{kind_of_error}"}}')
                tail = f',"status":{{"code":{STATUS_ERROR},"message":"{kind_of_error}"}}'
                attrs = attrs + ("," if attrs else "") + _attr("error.type", kind_of_error)
            if events:
                tail = f',"events":[{",".join(events)}]' + tail
            par = f',"parentSpanId":"{parent[i]}"' if parent[i] else ""
            bucket.append(f'{{"traceId":"{trace[i]}","spanId":"{span[i]}"{par},'
                          f'"name":"{names[i]}","kind":{kinds[i]},"startTimeUnixNano":"{s0[i]}",'
                          f'"endTimeUnixNano":"{s1[i]}","attributes":[{attrs}]{tail}}}')
        n_spans += len(trace)

    # roots: one per kept request, on the workload's resource
    src = np.asarray(req.source, dtype=np.int64)[r_keep]
    rr = r_id[r_keep]
    seed_hex = f"{result.seed & 0xFFFFFFFF:08x}"   # trace id: the seed, then the request id
    tid = [seed_hex + t for t in _hex(np.arange(len(keep), dtype=np.int64), 24)]
    r_status = np.asarray(req.status, dtype=np.int64)[r_keep]
    r_cause = np.asarray(req.cause, dtype=np.int64)[r_keep]
    r_att = np.asarray(req.attempts, dtype=np.int64)[r_keep]
    for code in np.unique(src).tolist():
        m = src == code
        rids = rr[m]
        add((rec.sources[code], ""), [tid[r] for r in rids.tolist()],
            _hex(ROOT_BIT | rids, 16), [""] * len(rids), f"{rec.sources[code]} request",
            KIND_CLIENT, r_start[rids], r_end[rids], np.where(r_status[m] == 5, OK, r_status[m]),
            r_cause[m], [_attr("simsys.attempts", int(a)) for a in r_att[m].tolist()])

    # visits (SERVER) and, for calls a service made, the call (CLIENT) on the caller's side
    root_parent = _hex(ROOT_BIT | c_rid[idx], 16)
    client_id = _hex(2 * c_span[idx], 16)
    server_id = _hex(2 * c_span[idx] + 1, 16)
    par = c_parent[idx]
    pr = p_row[idx]
    parent_server = _hex(2 * np.maximum(par, 0) + 1, 16)
    caller_end = np.where(pr >= 0, ended[np.maximum(pr, 0)], r_end[c_rid[idx]])
    ret = returned[idx]
    abandoned = ret > caller_end
    ret = np.minimum(ret, caller_end)
    sv, rp = c_svc[idx], c_rep[idx]
    c_att = c_attempt[idx]
    trace_of = [tid[r] for r in c_rid[idx].tolist()]
    # calls: CLIENT spans on the caller's replica (calls from the client are its root span,
    # except refusals and fallbacks, shown under the root on the workload's resource)
    c_flags = np.asarray(calls.flags, dtype=np.int64)[idx]
    marker = (c_flags & (CALL_REFUSED | CALL_FALLBACK)) != 0
    ci = np.flatnonzero((par > 0) | marker)
    if len(ci):
        from_client = par[ci] == 0
        caller_svc = np.where(from_client, -1 - src_of[c_rid[idx[ci]]], c_svc[np.maximum(pr[ci], 0)])
        caller_rep = np.where(from_client, 0, c_rep[np.maximum(pr[ci], 0)])
        extra, marks = [], []
        for s, a, ab, fl in zip(sv[ci].tolist(), c_att[ci].tolist(), abandoned[ci].tolist(),
                                c_flags[ci].tolist(), strict=True):
            attrs = [_attr("peer.service", services[s])]
            ev = []
            if a > 1:
                attrs.append(_attr("simsys.attempt", int(a)))
                ev.append("hedge" if fl & CALL_HEDGE else "retry")
            if fl & CALL_HEDGE:
                attrs.append(_attr("simsys.hedge", True))
            if fl & CALL_TIMED_OUT:
                attrs.append(_attr("simsys.timed_out", True))
            if fl & CALL_FALLBACK:
                attrs.append(_attr("simsys.fallback", True))
                ev.append("fallback")
            if ab:
                attrs.append(_attr("simsys.abandoned", True))
            extra.append(",".join(attrs))
            marks.append(ev)
        names = [f"fallback {services[t]}" if fl & CALL_FALLBACK else f"call {services[t]}"
                 for t, fl in zip(sv[ci].tolist(), c_flags[ci].tolist(), strict=True)]
        kinds = np.where(c_flags[ci] & CALL_FALLBACK, KIND_INTERNAL, KIND_CLIENT)
        parents = [root_parent[k] if f else parent_server[k]
                   for k, f in zip(ci.tolist(), from_client.tolist(), strict=True)]
        keys = caller_svc * 65536 + caller_rep
        for key in np.unique(keys).tolist():
            m = np.flatnonzero(keys == key)
            j = ci[m]
            s, r = divmod(key, 65536)
            resource = ((rec.sources[-1 - s], "") if s < 0 else
                        (services[s], f"{services[s]}-{r}"))
            add(resource, [trace_of[k] for k in j.tolist()],
                [client_id[k] for k in j.tolist()], [parents[k] for k in m.tolist()],
                [names[k] for k in m.tolist()], kinds[m],
                sent[idx[j]], ret[j], c_status[idx[j]], c_cause[idx[j]],
                [extra[k] for k in m.tolist()], [marks[k] for k in m.tolist()])
    # visits that reached their service: SERVER spans, parented to the CLIENT span (or root)
    vi = np.flatnonzero(~np.isnan(arrived[idx]))
    # a SERVER span starts when a worker takes the visit, as an instrumented handler's does: the
    # wait in the queue shows as the gap after the CLIENT span's start (and in an attribute)
    started = np.asarray(calls.started)
    v_start = np.where(np.isnan(started[idx]), arrived[idx], started[idx])
    v_end = np.where(np.isnan(ended[idx]), arrived[idx], ended[idx])
    keys = sv[vi] * 65536 + np.maximum(rp[vi], 0)
    for key in np.unique(keys).tolist():
        m = keys == key
        j = vi[m]
        s, r = divmod(key, 65536)
        parents = [client_id[k] if par[k] > 0 else root_parent[k] for k in j.tolist()]
        add((services[s], f"{services[s]}-{r}"), [trace_of[k] for k in j.tolist()],
            [server_id[k] for k in j.tolist()], parents, services[s], KIND_SERVER,
            v_start[j], v_end[j], c_status[idx[j]], c_cause[idx[j]],
            [(_attr("simsys.attempt", int(a)) + ',' if a > 1 else "")
             + QUEUE_TIME.format(w)
             for a, w in zip(c_att[j].tolist(),
                             np.nan_to_num(np.asarray(calls.started)[idx[j]] - arrived[idx[j]])
                             .tolist(), strict=True)])

    _write(path, out)
    return {"traces": int(r_keep.sum()), "spans": n_spans,
            "unfinished": int(len(np.unique(c_rid[~finished[np.minimum(c_rid, len(keep) - 1)]]))
                              if len(keep) else 0)}


def _write(path: str | os.PathLike[str], out: dict[tuple[str, str], list[str]]) -> None:
    from . import __version__
    from .files import atomic_write

    scope = f'{{"name":"simsys","version":"{__version__}"}}'

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write('{"resourceSpans":[')
            for n, ((service, instance), spans) in enumerate(sorted(out.items())):
                attrs = _attr("service.name", service)
                if instance:
                    attrs += "," + _attr("service.instance.id", instance)
                f.write(("," if n else "") + f'{{"resource":{{"attributes":[{attrs}]}},'
                        f'"scopeSpans":[{{"scope":{scope},"spans":[')
                f.write(",".join(spans))
                f.write("]}]}")
            f.write("]}\n")

    atomic_write(path, write)
