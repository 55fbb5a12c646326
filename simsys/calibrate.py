"""Infer a scenario from traces: OTLP/JSON (``resourceSpans``) or Jaeger JSON (``data[].spans``).

What is read off the spans, per service: its replicas (distinct ``service.instance.id``), its
workers (the most SERVER spans seen at once on one replica), its own work (a SERVER span's
duration minus the time in its calls, as an ``empirical`` distribution), its calls and their
probabilities (the share of its visits that call each service at least once, in their usual
order) and the latency of each link (the answer's leg: a CLIENT span's end minus its SERVER
child's end; the request's leg includes the wait in the callee's queue). Entries and their
Poisson rates come from the root spans' start times.

Bad input is a :class:`SimsysError` naming the file and the span: a malformed file, a cycle, a
child that starts before its parent (clock skew). Traces with a parent that is not in the file
are partial: counted, reported and left out.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from .errors import SimsysError

MAX_TRACE_BYTES_ENV = "SIMSYS_MAX_TRACE_BYTES"
MAX_SPANS = 20_000_000
MAX_DEPTH = 1000
MAX_VALUES = 1000          # empirical values kept per distribution (evenly spaced quantiles)
SKEW_TOLERANCE = 1e-6      # seconds a child may start before its parent (rounding of nanos)
SERVER, CLIENT = 2, 3


def _bad(path: str, msg: str) -> SimsysError:
    return SimsysError(f"{path}: {msg}")


def max_trace_bytes() -> int:
    """Largest trace file read (bytes); ``SIMSYS_MAX_TRACE_BYTES``, default 2 GB."""
    text = os.environ.get(MAX_TRACE_BYTES_ENV, "")
    try:
        return int(float(text)) if text else 2 * 10**9
    except ValueError:
        raise SimsysError(f"{MAX_TRACE_BYTES_ENV}: expected a number of bytes, got {text!r}") \
            from None


def read_spans(path: str) -> pd.DataFrame:
    """One row per span: trace, span, parent, service, instance, kind, start, end (seconds)."""
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise _bad(path, f"cannot read: {exc.strerror}") from None
    if not os.path.isfile(path):
        raise _bad(path, "not a regular file")
    limit = max_trace_bytes()
    if size > limit:
        raise _bad(path, f"file is {size} bytes, more than the limit of {limit} "
                         f"(raise it with {MAX_TRACE_BYTES_ENV})")
    try:
        counter = _Counter(path)
        with open(path, encoding="utf-8") as f:
            doc = json.load(f, object_hook=counter.hook)
    except SimsysError:
        raise
    except (OSError, ValueError) as exc:
        raise _bad(path, f"not a JSON trace file: {exc}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise _bad(path, f"malformed span: {exc!r}") from None
    cols: dict[str, list[Any]] = defaultdict(list)
    try:
        if isinstance(doc, dict) and "resourceSpans" in doc:
            _otlp(doc, cols)
        elif isinstance(doc, dict) and isinstance(doc.get("data"), list):
            _jaeger(doc, cols)
        else:
            raise ValueError("expected OTLP/JSON (resourceSpans) or Jaeger JSON (data[].spans)")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _bad(path, f"malformed trace file: {exc!r}") from None
    if not cols["span"]:
        raise _bad(path, "no spans")
    return pd.DataFrame(cols)


KINDS = {"SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": SERVER, "SPAN_KIND_CLIENT": CLIENT,
         "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}


class _Counter:
    """Counts spans as the decoder meets them, so a huge file stops early."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.n = 0

    def hook(self, d: dict[str, Any]) -> Any:
        # Spans become small tuples as soon as they are decoded: their attribute lists, the
        # bulk of a file, are freed at once, which keeps a million spans well under 1 GB.
        if "spanId" in d and "traceId" in d:  # OTLP
            self._count()
            kind = d.get("kind", 0)
            kind = KINDS.get(kind, 0) if isinstance(kind, str) else int(kind)
            status = d.get("status") or {}
            return (str(d["traceId"]), str(d["spanId"]), str(d.get("parentSpanId") or ""), kind,
                    int(d["startTimeUnixNano"]) / 1e9, int(d["endTimeUnixNano"]) / 1e9,
                    status.get("code") in (2, "STATUS_CODE_ERROR"))
        if "spanID" in d and "traceID" in d and "startTime" in d:  # Jaeger
            self._count()
            tags = {t.get("key"): t.get("value") for t in d.get("tags") or []}
            parent = next((r["spanID"] for r in d.get("references") or []
                           if r.get("refType") == "CHILD_OF"), "")
            start = float(d["startTime"]) / 1e6
            return (str(d["traceID"]), str(d["spanID"]), str(parent),
                    {"server": SERVER, "client": CLIENT}.get(str(tags.get("span.kind")), 1),
                    start, start + float(d["duration"]) / 1e6,
                    tags.get("error") in (True, "true"), str(d.get("processID", "")))
        return d

    def _count(self) -> None:
        self.n += 1
        if self.n > MAX_SPANS:
            raise _bad(self.path, f"more than {MAX_SPANS} spans")


COLUMNS = ("trace", "span", "parent", "kind", "start", "end", "error")


def _otlp(doc: dict[str, Any], cols: dict[str, list[Any]]) -> None:
    for rs in doc["resourceSpans"]:
        attrs = {a["key"]: a["value"].get("stringValue") for a in
                 rs.get("resource", {}).get("attributes", [])}
        service = attrs.get("service.name") or "unknown"
        instance = attrs.get("service.instance.id") or ""
        for ss in rs.get("scopeSpans", []):
            spans = ss.get("spans", [])
            if any(not isinstance(t, tuple) for t in spans):
                raise ValueError("a span without traceId/spanId")
            for name, values in zip(COLUMNS, zip(*spans, strict=True), strict=False):
                cols[name].extend(values)
            cols["service"].extend([service] * len(spans))
            cols["instance"].extend([instance] * len(spans))


def _jaeger(doc: dict[str, Any], cols: dict[str, list[Any]]) -> None:
    for tr in doc["data"]:
        procs = tr.get("processes", {})
        spans = tr["spans"]
        if any(not isinstance(t, tuple) for t in spans):
            raise ValueError("a span without traceID/spanID/startTime")
        for t in spans:
            proc = procs.get(t[7], {})
            ptags = {x["key"]: x.get("value") for x in proc.get("tags", [])}
            for name, value in zip(COLUMNS, t, strict=False):
                cols[name].append(value)
            cols["service"].append(proc.get("serviceName", "unknown"))
            cols["instance"].append(str(ptags.get("service.instance.id")
                                        or ptags.get("hostname") or ""))


def link_spans(df: pd.DataFrame, path: str, allow_partial: bool = True
               ) -> tuple[pd.DataFrame, int]:
    """Add ``p`` (the parent's row, -1 for roots); drop partial traces. Returns the frame and
    how many traces were partial. Raises on cycles and clock skew."""
    df = df.reset_index(drop=True)
    key = df["trace"] + "/" + df["span"]
    if key.duplicated().any():
        dup = df.loc[key.duplicated(), "span"].iloc[0]
        raise _bad(path, f"span {dup}: span id appears twice in its trace")
    pos = pd.Series(np.arange(len(df)), index=key)
    pkey = df["trace"] + "/" + df["parent"]
    p = pkey.map(pos)
    has_parent = df["parent"] != ""
    missing = has_parent & p.isna()
    partial = df.loc[missing, "trace"].unique()
    first_missing = df.loc[missing, "span"].iloc[0] if len(partial) else None
    df["p"] = p.fillna(-1).astype(np.int64).to_numpy()
    if len(partial) and not allow_partial:
        raise _bad(path, f"span {first_missing}: its parent is not in the file ({len(partial)} "
                         f"partial traces; --allow-partial leaves them out)")
    if len(partial):
        df = df[~df["trace"].isin(partial)].reset_index(drop=True)
        key = df["trace"] + "/" + df["span"]
        pos = pd.Series(np.arange(len(df)), index=key)
        df["p"] = (df["trace"] + "/" + df["parent"]).map(pos).fillna(-1).astype(np.int64)
    parent = df["p"].to_numpy()
    cur = parent.copy()
    for _ in range(MAX_DEPTH):
        live = cur >= 0
        if not live.any():
            break
        cur[live] = parent[cur[live]]
    else:
        bad = int(np.flatnonzero(cur >= 0)[0])
        raise _bad(path, f"span {df['span'].iat[bad]}: its parents form a cycle (or are more "
                         f"than {MAX_DEPTH} deep)")
    has = parent >= 0
    start = df["start"].to_numpy()
    skew = np.flatnonzero(has & (start < np.where(has, start[np.maximum(parent, 0)], 0)
                                 - SKEW_TOLERANCE))
    if len(skew):
        i = int(skew[0])
        raise _bad(path, f"span {df['span'].iat[i]}: starts "
                         f"{start[parent[i]] - start[i]:.6g} s before its parent "
                         f"{df['span'].iat[parent[i]]} (clock skew)")
    return df, len(partial)


def _values(x: np.ndarray) -> list[float]:
    x = np.sort(x[np.isfinite(x)])
    if len(x) > MAX_VALUES:
        x = x[np.linspace(0, len(x) - 1, MAX_VALUES).round().astype(int)]
    return [round(float(v), 9) for v in np.maximum(x, 0.0)]


def _dist(x: np.ndarray) -> str:
    vals = _values(x)
    if not vals or max(vals) == 0:
        return "0s"
    return "{dist: empirical, values: [" + ", ".join(f"{v:.9g}" for v in vals) + "]}"


def infer(df: pd.DataFrame) -> dict[str, Any]:
    """The model read off linked spans (see the module docstring)."""
    parent = df["p"].to_numpy()
    kind = df["kind"].to_numpy()
    start, end = df["start"].to_numpy(), df["end"].to_numpy()
    service = df["service"].to_numpy()
    dur = end - start
    n = len(df)
    has = parent >= 0
    pkind = np.where(has, kind[np.maximum(parent, 0)], 0)
    # a call: a CLIENT span under a SERVER span; its target is its SERVER child (the first)
    # visits: SERVER spans (any span but a CLIENT one where the file gives no kinds)
    server = kind == SERVER if (kind == SERVER).any() else kind != CLIENT
    call_target = np.full(n, -1)
    child_server = np.flatnonzero(server & has & (pkind == CLIENT))
    call_target[parent[child_server][::-1]] = child_server[::-1]
    # calls made by visits: CLIENT children of SERVER spans, or SERVER spans directly under one
    is_call = has & (pkind != CLIENT) & (
        (kind == CLIENT) | server)
    calls = np.flatnonzero(is_call)
    tgt_row = np.where(kind[calls] == CLIENT, call_target[calls], calls)
    calls, tgt_row = calls[tgt_row >= 0], tgt_row[tgt_row >= 0]
    caller = parent[calls]
    # own work: the visit's time not spent in calls (sequential calls: their sum)
    child_time = np.bincount(caller, weights=dur[calls], minlength=n)
    # failed visits end early and skip the calls after a failure: work and call shares are
    # read off the visits that completed (all of them if none did)
    error = df["error"].to_numpy(dtype=bool)
    visits = np.flatnonzero(server & ~error)
    if not len(visits):
        visits = np.flatnonzero(server)
    counted = np.zeros(n, dtype=bool)
    counted[visits] = True
    model: dict[str, Any] = {"services": {}, "entries": [], "links": {}}
    vdf = pd.DataFrame({"row": visits, "service": service[visits],
                        "instance": df["instance"].to_numpy()[visits]})
    for name, g in vdf.groupby("service", sort=True):
        rows = g["row"].to_numpy()
        work = dur[rows] - child_time[rows]
        inst = g["instance"].to_numpy()
        replicas = max(1, len(set(inst.tolist()) - {""}))
        workers = 1
        for _, gi in g.groupby("instance"):
            r = gi["row"].to_numpy()
            ev = np.concatenate([np.stack([start[r], np.ones(len(r))], 1),
                                 np.stack([end[r], -np.ones(len(r))], 1)])
            ev = ev[np.lexsort((ev[:, 1], ev[:, 0]))]
            workers = max(workers, int(np.cumsum(ev[:, 1]).max()))
        model["services"][name] = {"visits": len(rows), "work": work, "replicas": replicas,
                                   "workers": workers, "calls": []}
    # calls and probabilities per caller service
    cdf = pd.DataFrame({"caller": caller, "caller_service": service[caller],
                        "target": service[tgt_row], "offset": start[calls] - start[caller],
                        "gap": np.where(kind[calls] == CLIENT, end[calls] - end[tgt_row], 0.0),
                        "start": start[calls], "end": end[calls]})
    overlap: dict[str, float] = {}
    cdf = cdf[counted[caller]]
    for name, g in cdf.groupby("caller_service", sort=True):
        if name not in model["services"]:
            continue
        nv = model["services"][name]["visits"]
        per = g.groupby("target")
        order = per["offset"].mean().sort_values()
        for target in order.index:
            gt = per.get_group(target)
            k = gt["caller"].nunique()
            model["services"][name]["calls"].append((target, min(1.0, k / nv), k))
            model["links"][f"{name}->{target}"] = gt["gap"].to_numpy()
        gs = g.sort_values(["caller", "start"])
        same = gs["caller"].to_numpy()[1:] == gs["caller"].to_numpy()[:-1]
        if same.any():
            ov = gs["start"].to_numpy()[1:][same] < gs["end"].to_numpy()[:-1][same] - 1e-9
            overlap[name] = float(ov.mean())
    model["overlap"] = overlap
    # entries: roots; a CLIENT root is a client in front of its SERVER child
    roots = np.flatnonzero(~has)
    for kind_r, rows in ((CLIENT, roots[kind[roots] == CLIENT]),
                         (SERVER, roots[kind[roots] != CLIENT])):
        if not len(rows):
            continue
        target = np.where(kind_r == CLIENT, call_target[rows], rows)
        ok = target >= 0
        rows, target = rows[ok], target[ok]
        gdf = pd.DataFrame({"name": service[rows], "target": service[target],
                            "start": start[rows],
                            "gap": (end[rows] - end[target]) if kind_r == CLIENT else 0.0})
        for (wname, tname), g in gdf.groupby(["name", "target"], sort=True):
            t = np.sort(g["start"].to_numpy())
            window = t[-1] - t[0]
            rate = (len(t) - 1) / window if window > 0 else float(len(t))
            model["entries"].append({"name": wname, "target": tname, "rate": rate,
                                     "roots": len(t), "window": window,
                                     "gap": g["gap"].to_numpy() if kind_r == CLIENT else None})
    return model


def to_yaml(model: dict[str, Any], source: str, n_spans: int, partial: int,
            name: str = "calibrated") -> str:
    """The scenario as YAML text, with comments saying what came from how many spans."""
    window = max((e["window"] for e in model["entries"]), default=60.0)
    lines = [f"# Calibrated by `simsys calibrate` from {os.path.basename(source)}: "
             f"{n_spans} spans, {partial} partial traces left out.",
             f"name: {name}", f"duration: {max(window, 1.0):.6g}s", "services:"]
    for svc, m in model["services"].items():
        lines.append(f"  {svc}:")
        lines.append(f"    # {m['visits']} SERVER spans without error; replicas from service.instance.id, "
                     f"workers = most spans at once on one replica")
        lines.append(f"    replicas: {m['replicas']}")
        lines.append(f"    workers: {m['workers']}")
        lines.append(f"    # own work: span duration minus time in calls ({m['visits']} spans)")
        lines.append(f"    service_time: {_dist(m['work'])}")
        if m["calls"]:
            par = model["overlap"].get(svc, 0.0) > 0.5
            lines.append(f"    # calls: share of visits calling each service; "
                         f"{'parallel' if par else 'sequential'} (child spans overlapped in "
                         f"{100 * model['overlap'].get(svc, 0.0):.0f}% of visits)")
            items = []
            for target, p, _k in m["calls"]:
                items.append(f"{{service: {target}, probability: {p:.6g}}}" if p < 0.9995
                             else f"{{service: {target}}}")
            if par and all(p >= 0.9995 for _, p, _ in m["calls"]):
                lines.append(f"    calls: [{{parallel: [{', '.join(items)}]}}]")
            else:
                lines.append(f"    calls: [{', '.join(items)}]")
    lines.append("links:")
    lines.append("  # latency: the answer's leg, a CLIENT span's end minus its SERVER child's end")
    for edge, gaps in model["links"].items():
        lines.append(f"  {edge}: {{latency: {_dist(gaps)}}}  # {len(gaps)} calls")
    for e in model["entries"]:
        if e["gap"] is not None:
            lines.append(f"  client->{e['target']}: {{latency: {_dist(e['gap'])}}}  "
                         f"# {len(e['gap'])} root CLIENT spans")
    lines.append("workload:")
    for e in model["entries"]:
        lines.append(f"  # {e['roots']} root spans over {e['window']:.6g} s")
        lines.append(f"  - {{type: poisson, rate: {e['rate']:.6g}/s, target: {e['target']}, "
                     f"name: {e['name']}}}")
    return "\n".join(lines) + "\n"


def calibrate(path: str, *, allow_partial: bool = False) -> tuple[str, dict[str, int]]:
    """Read a trace file and return (scenario YAML text, counts)."""
    path = os.fspath(path)
    df = read_spans(path)
    df, partial = link_spans(df, path, allow_partial)
    if not len(df):
        raise _bad(path, "no complete trace")
    model = infer(df)
    if not model["entries"]:
        raise _bad(path, "no root spans: cannot tell where requests enter")
    counts = {"spans": len(df), "traces": int(df["trace"].nunique()), "partial": partial}
    return to_yaml(model, path, len(df), partial), counts
