"""Result: a run's records as pandas DataFrames, and the summary contract of DESIGN.md.

The DataFrames are built on first access from the columnar records and then cached; they are
plain pandas objects users can keep working with. All times are seconds of simulated time, all
sizes bytes.
"""

from __future__ import annotations

import html
import math
import os
from functools import cached_property
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from .analysis import latency_intervals, rate_intervals
from .records import CAUSES, OK, STATUSES, Records
from .run_analysis import run_checks, utilization_between
from .websocket_figures import websocket_summary

PERCENTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99, "p999": 99.9}
INTERVAL_METHOD = ("batch means on the measured part (non-overlapping batches; percentiles by "
                   "sectioning; error rate and utilisation as ratios of batch totals)")


def _num(x: float) -> float | None:
    """JSON-ready number: NaN becomes None."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


class Result:
    """The outcome of one run.

    Attributes
    ----------
    requests : pandas.DataFrame
        One row per finished request: ``id, source, start, end, latency, status, attempts,
        instance, failed_service, failed_instance, cause, warmup`` (seconds; ``status`` ∈ ok,
        rejected, timeout, error, dropped; ``instance`` is the replica of the target service
        that took it, ``<NA>`` if none; ``failed_*`` and ``cause`` say where and why it first
        failed: rejected, crash, oom, loss, partition, unavailable, timeout, …, missing
        (``NaN``/``<NA>``) for a request that did not fail). ``warmup`` is True for requests
        that started in the warm-up: the table lists every request, the summary only those
        with ``warmup`` False (``r.requests[~r.requests.warmup]``). Requests still in flight
        when the run ends are not listed.
    incidents : pandas.DataFrame
        One row per instance failure: ``service, instance, kind, cause, failed_at,
        detected_at, recovered_at, requests_failed``.
    timeseries : pandas.DataFrame
        Long format ``time, service, instance, metric, value`` sampled every ``sample_every``
        seconds: queue_length, busy_workers, in_system, memory (bytes), up (1 or 0).
    """

    def __init__(self, records: Records, G: nx.DiGraph, seed: int, wall_time: float = 0.0):
        self.records = records
        self.graph = G
        self.name: str = G.graph.get("name", "scenario")
        self.seed = seed
        # A run with a stop rule ends when precise enough: its records say when.
        self.duration = float(records.stats.get("duration", G.graph["duration"]))
        self.wall_time = wall_time

    @cached_property
    def warmup_auto(self) -> dict[str, Any] | None:
        """``warmup: auto``: the cut MSER-5 chose on the latencies and on the number in
        system (``latency_cut``, ``queue_cut``, seconds) and whether either sat at the half-run
        limit (``at_limit``: the run did not settle); None for a fixed warm-up."""
        if self.graph.graph.get("warmup") != "auto":
            return None
        from .run_analysis import auto_warmup

        step = float(self.graph.graph.get("sample_every", 1.0))
        return auto_warmup(self.records, self.duration, step, OK)

    @cached_property
    def warmup(self) -> float:
        """Seconds left out at the start: the scenario's ``warmup``, or the cut ``auto`` chose."""
        auto = self.warmup_auto
        return float(auto["warmup"] if auto is not None else self.graph.graph.get("warmup", 0.0))

    # -- tables -----------------------------------------------------------------------------
    @cached_property
    def requests(self) -> pd.DataFrame:
        r = self.records.requests
        start = np.frombuffer(r.start, dtype=np.float64) if len(r) else np.empty(0)
        end = np.frombuffer(r.end, dtype=np.float64) if len(r) else np.empty(0)
        services = [*self.records.services, ""]
        df = pd.DataFrame(
            {
                "id": np.asarray(r.rid, dtype=np.int64),
                "source": pd.Categorical.from_codes(
                    np.asarray(r.source, dtype=np.int16), categories=self.records.sources or ["-"]
                ),
                "start": start.copy(),
                "end": end.copy(),
                "latency": end - start,
                "status": pd.Categorical.from_codes(
                    np.asarray(r.status, dtype=np.int8), categories=list(STATUSES)
                ),
                "attempts": np.asarray(r.attempts, dtype=np.int16),
                "instance": _missing_below_zero(r.instance),
                "failed_service": pd.Categorical.from_codes(
                    np.asarray(r.failed_service, dtype=np.int16) % len(services),
                    categories=services,
                ),
                "failed_instance": _missing_below_zero(r.failed_instance),
                "cause": pd.Categorical.from_codes(
                    np.asarray(r.cause, dtype=np.int8), categories=list(CAUSES)
                ),
            }
        )
        df["failed_service"] = df["failed_service"].cat.remove_categories([""])
        df["cause"] = df["cause"].cat.remove_categories([""])  # no cause: NaN, not ''
        df["warmup"] = df["start"] < self.warmup
        return df.sort_values("id", kind="stable", ignore_index=True)

    @cached_property
    def incidents(self) -> pd.DataFrame:
        inc = self.records.incidents
        names = self.records.services
        replica = [self.records.instances[i][1] for i in inc.instance]
        return pd.DataFrame(
            {
                "service": pd.Series([names[s] for s in inc.service], dtype="object"),
                "instance": pd.Series(replica, dtype=np.int64),
                "kind": pd.Series(inc.kind, dtype="object"),
                "cause": pd.Series(inc.cause, dtype="object"),
                "failed_at": pd.Series(inc.failed_at, dtype=np.float64),
                "detected_at": pd.Series(inc.detected_at, dtype=np.float64),
                "recovered_at": pd.Series(inc.recovered_at, dtype=np.float64),
                "requests_failed": pd.Series(inc.requests_failed, dtype=np.int64),
            }
        )

    @cached_property
    def timeseries(self) -> pd.DataFrame:
        """Per-replica samples, plus per target service the share of requests that ended ok in
        each sampling window (metric ``request_availability``, instance -1); with circuit
        breakers, per service called through them the number of its breakers open and half
        open (metrics ``breakers_open``, ``breakers_half_open``, instance -1), at time 0 and at
        every transition; with autoscaling, the replicas launched per autoscaled service
        (metric ``replicas``, instance -1) at time 0 and at every decision."""
        return pd.concat([self._samples(), self._request_availability(), self._breaker_states(),
                          self._scaling()], ignore_index=True)

    def _metric_names(self) -> list[str]:
        extra = ["breakers_open", "breakers_half_open"] if self.records.breakers else []
        if self.records.stats.get("autoscale"):
            extra.append("replicas")
        return [*self.records.metrics, "request_availability", *extra]

    def _scaling(self) -> pd.DataFrame:
        """Replicas launched (starting or serving: what is billed) per autoscaled service, at
        time 0 and at each scaling decision (metric ``replicas``, instance -1)."""
        rows = [(t, name, float(n)) for name, events in self.records.stats.get("autoscale", {}).items()
                for t, n in events]
        return self._instant_rows([r[0] for r in rows], [r[1] for r in rows],
                                  ["replicas"] * len(rows), [r[2] for r in rows])

    def _instant_rows(self, time: list[float], service: list[str], metric: list[str],
                      value: list[float]) -> pd.DataFrame:
        """Timeseries rows of per-service values (instance -1) at the given times."""
        return pd.DataFrame({
            "time": np.asarray(time, dtype=np.float64),
            "service": pd.Categorical(service, categories=self.records.services),
            "instance": np.full(len(time), -1, dtype=np.int64),
            "metric": pd.Categorical(metric, categories=self._metric_names()),
            "value": np.asarray(value, dtype=np.float64),
        })

    def _breaker_states(self) -> pd.DataFrame:
        """Breakers open / half open per called service, after each transition."""
        state: dict[tuple[str, str], str] = {}  # (link, target) -> state
        rows: dict[str, list[Any]] = {"time": [], "service": [], "metric": [], "value": []}
        targets = list(dict.fromkeys(t for _, _, _, t in self.records.breakers))
        for target in targets:
            for metric in ("breakers_open", "breakers_half_open"):
                rows["time"].append(0.0)
                rows["service"].append(target)
                rows["metric"].append(metric)
                rows["value"].append(0.0)
        for time, link, new, target in self.records.breakers:
            state[link, target] = new
            for metric, which in (("breakers_open", "open"), ("breakers_half_open", "half_open")):
                rows["time"].append(time)
                rows["service"].append(target)
                rows["metric"].append(metric)
                rows["value"].append(float(sum(1 for (_, t), s in state.items()
                                               if t == target and s == which)))
        return self._instant_rows(rows["time"], rows["service"], rows["metric"], rows["value"])

    def _request_availability(self) -> pd.DataFrame:
        df = self.requests
        step = float(self.graph.graph.get("sample_every", 1.0))
        services = self.records.services
        rows: dict[str, Any] = {"time": [], "service": [], "instance": [], "metric": [], "value": []}
        if len(df):
            targets = {n.split(":", 1)[-1]: v for n, v in self.graph.edges() if n.startswith("client:")}
            by_source = df.assign(
                target=df["source"].astype(str).map(targets),
                window=np.floor(df["end"].to_numpy() / step) * step + step,
                ok=(df["status"] == "ok").to_numpy(),
            )
            agg = by_source.groupby(["target", "window"], observed=True)["ok"].mean()
            for (target, window), value in agg.items():
                rows["time"].append(window)
                rows["service"].append(target)
                rows["instance"].append(-1)
                rows["metric"].append("request_availability")
                rows["value"].append(value)
        metrics = self._metric_names()
        return pd.DataFrame(
            {
                "time": np.asarray(rows["time"], dtype=np.float64),
                "service": pd.Categorical(rows["service"], categories=services),
                "instance": np.asarray(rows["instance"], dtype=np.int64),
                "metric": pd.Categorical(rows["metric"], categories=metrics),
                "value": np.asarray(rows["value"], dtype=np.float64),
            }
        )

    def _samples(self) -> pd.DataFrame:
        s = self.records.samples
        inst = np.asarray(s.instance, dtype=np.int64)
        owners = np.array([sv for sv, _ in self.records.instances] or [0], dtype=np.int64)
        replicas = np.array([rp for _, rp in self.records.instances] or [0], dtype=np.int64)
        return pd.DataFrame(
            {
                "time": np.asarray(s.time, dtype=np.float64),
                "service": pd.Categorical.from_codes(owners[inst], categories=self.records.services),
                "instance": replicas[inst],
                "metric": pd.Categorical.from_codes(
                    np.asarray(s.metric, dtype=np.int8), categories=self._metric_names()
                ),
                "value": np.asarray(s.value, dtype=np.float64),
            }
        )

    # -- summary ----------------------------------------------------------------------------
    def up_fractions(self, service: str, t0: float | None = None,
                     t1: float | None = None) -> list[float]:
        """Entry k: the fraction of [t0, t1) (default: the measured window, after warmup)
        during which exactly k replicas of ``service`` were up."""
        n = int(self.graph.nodes[service].get("replicas", 1))
        t0 = self.warmup if t0 is None else t0
        t1 = self.duration if t1 is None else t1
        inc = self.incidents
        inc = inc[inc["service"] == service]
        changes: list[tuple[float, int]] = []
        for f, r in zip(inc["failed_at"], inc["recovered_at"], strict=True):
            changes.append((f, -1))
            if not math.isnan(r):
                changes.append((r, +1))
        # at one instant a recovery counts before a failure: a replica in a crash loop comes
        # back and fails again at once (sorted the other way, the clamp at 0 lost the failure)
        changes.sort(key=lambda change: (change[0], -change[1]))
        time_at = [0.0] * (n + 1)
        up, last = n, t0
        for t, delta in changes:
            if t >= t1:
                break
            if t > last:
                time_at[up] += t - last
                last = t
            up = max(0, min(n, up + delta))
        time_at[up] += max(t1 - last, 0.0)
        span = t1 - t0
        return [x / span for x in time_at] if span > 0 else [0.0] * n + [1.0]

    def availability_between(self, service: str, t0: float, t1: float) -> float:
        """Fraction of [t0, t1) during which at least one replica of ``service`` was up."""
        return 1.0 - self.up_fractions(service, t0, t1)[0]

    @cached_property
    def chaos(self) -> pd.DataFrame:
        """Chaos Monkey's journal: one row per kill made, skipped (with the limit that stopped
        it) or, when leashed, only journaled: ``at, group, service, instance, outcome, reason``."""
        cols = ["at", "group", "service", "instance", "outcome", "reason"]
        return pd.DataFrame(self.records.journal, columns=cols)

    @cached_property
    def journal(self) -> dict[str, Any] | None:
        """The Chaos Toolkit journal of the scenario's experiment, or None without one."""
        scenario = self.graph.graph.get("experiment")
        if scenario is None:
            return None
        from .experiment import journal

        return journal(self, scenario)

    def summary(self) -> dict[str, Any]:
        """The run's figures as a nested, JSON-ready dict (seconds, bytes, requests/s).

        Every key of the DESIGN.md contract is present; values that do not apply are 0 or None.
        """
        # Straight from the columns: summaries are what sweeps compute thousands of times.
        r = self.records.requests
        start = np.frombuffer(r.start, dtype=np.float64) if len(r) else np.empty(0)
        end = np.frombuffer(r.end, dtype=np.float64) if len(r) else np.empty(0)
        status = np.frombuffer(r.status, dtype=np.int8) if len(r) else np.empty(0, np.int8)
        measured = start >= self.warmup
        status = status[measured]
        counts = np.bincount(status, minlength=len(STATUSES))
        window = self.duration - self.warmup
        total = int(len(status))
        ok_lat = (end - start)[measured][status == OK]
        latency: dict[str, float | None] = {"mean": _num(ok_lat.mean()) if len(ok_lat) else None}
        qs = np.full(len(PERCENTILES), np.nan)
        if len(ok_lat):
            qs = np.percentile(ok_lat, list(PERCENTILES.values()))
            latency.update({k: float(q) for k, q in zip(PERCENTILES, qs, strict=True)})
            latency["max"] = float(ok_lat.max())
        else:
            latency.update(dict.fromkeys([*PERCENTILES, "max"]))
        inc = self.incidents
        ttr = (inc["recovered_at"] - inc["failed_at"]).dropna()
        ttd = (inc["detected_at"] - inc["failed_at"]).dropna()
        starts = np.sort(inc["failed_at"].to_numpy())
        services: dict[str, dict[str, Any]] = {}
        stats = self.records.stats.get("services", {})
        mem = self._memory_peaks()
        auto = self.warmup_auto is not None
        for name in self.records.services:
            st = stats.get(name, {"busy_time": 0.0, "worker_time": 0.0})
            if auto:  # the run's integrals start at 0: split them at the cut
                utilization = utilization_between(self.records, self.graph, name, self.warmup,
                                                  self.duration)
            else:
                utilization = st["busy_time"] / st["worker_time"] if st["worker_time"] else 0.0
            fractions = self.up_fractions(name)
            s_inc = inc[inc["service"] == name]
            s_ttr = (s_inc["recovered_at"] - s_inc["failed_at"]).dropna()
            services[name] = {
                "replica_seconds": st.get("replica_seconds", 0.0),
                "cost": st.get("cost", 0.0),
                "availability": 1.0 - fractions[0],
                "utilization": utilization,
                "memory_peak": mem.get(name, 0.0),
                "time_with_up": fractions,
                "mttr": _num(s_ttr.mean()) if len(s_ttr) else None,
            }
        ok = int(counts[OK])
        intervals = latency_intervals(ok_lat, PERCENTILES, qs)
        rates = rate_intervals(start[measured], (status == OK), self.warmup, self.duration)
        checks = run_checks(self.records, self.graph, self.warmup, self.duration, start, end,
                            {k: v["utilization"] for k, v in services.items()})
        little = {k: v for k, v in checks["little"].items() if v is not None}
        return {
            "name": self.name,
            "seed": self.seed,
            "duration": self.duration,
            "warmup": self.warmup,
            "warmup_auto": self.warmup_auto,
            "stop": self._stop(),
            "intervals": {
                "confidence": 0.95,
                "method": INTERVAL_METHOD,
                "latency": intervals,
                "throughput": rates["throughput"],
                "error_rate": rates["error_rate"],
                "time_batches": rates["time_batches"],
                "utilization": checks["utilization"],
            },
            "little": {"agree": all(v["agree"] for v in little.values()) if little else None,
                       "services": little},
            "requests": {
                "total": total,
                **{name: int(counts[code]) for code, name in enumerate(STATUSES)},
            },
            "latency": latency,
            "throughput": ok / window if window > 0 else 0.0,
            "error_rate": (total - ok) / total if total else 0.0,
            "incidents": {
                "count": int(len(inc)),
                "mttr": _num(ttr.mean()) if len(ttr) else None,
                "mttd": _num(ttd.mean()) if len(ttd) else None,
                "mtbf": _num(float(np.diff(starts).mean())) if len(starts) > 1 else None,
                "recovery": self._recovery_source(),
            },
            "services": services,
            "cost": sum(v["cost"] for v in services.values()),
            "calls": self._call_totals(),
            "websockets": websocket_summary(self),  # simsys.websocket_figures
        }

    def _recovery_source(self) -> str:
        """``"defaults"`` when the scenario's recovery settings are the defaults (a failure
        detected at once and its replica restarted at once: MTTR and MTTD near 0), whether
        written out or left out; else ``"scenario"``."""
        recovery = self.graph.graph.get("recovery")
        if recovery is None:
            return "scenario"
        return "defaults" if recovery == type(recovery)() else "scenario"

    def _stop(self) -> dict[str, Any] | None:
        """The stop rule and how it ended: ``stopped_at`` (seconds), ``reached`` (False: it ran
        to ``max``), the last ``estimate`` and ``half_width`` it saw."""
        rule = self.graph.graph.get("stop_rule")
        if rule is None:
            return None
        seen = self.records.stats.get("stop", {})
        return {"metric": rule.metric, "until_precision": rule.until_precision,
                "confidence": rule.confidence, "max": rule.max, "stopped_at": self.duration,
                "reached": bool(seen.get("reached")), "estimate": seen.get("estimate"),
                "half_width": seen.get("half_width")}

    def _memory_peaks(self) -> dict[str, float]:
        """Peak sampled memory per service (bytes), from the sample columns."""
        _, inst, value = self.records.sampled("memory")
        if not len(value):
            return {}
        owner = np.array([sv for sv, _ in self.records.instances], dtype=np.int64)[inst]
        out = {}
        for k, name in enumerate(self.records.services):
            mine = value[owner == k]
            out[name] = float(mine.max()) if len(mine) else 0.0
        return out

    @cached_property
    def deliveries(self) -> pd.DataFrame:
        """WebSockets and polling: server messages delivered (every one in exact runs, a random
        sample in aggregate ones): ``source, created_at, delivered_at, latency``."""
        from .websocket_figures import deliveries

        return deliveries(self)

    def _call_totals(self) -> dict[str, int]:
        totals = dict.fromkeys(("attempts", "retries", "hedges", "timeouts", "fallbacks",
                                "short_circuited", "bulkhead_rejected"), 0)
        for counts in self.records.calls.values():
            for k in totals:
                totals[k] += counts.get(k, 0)
        return totals

    @cached_property
    def calls(self) -> pd.DataFrame:
        """Per guarded call edge (``source->target``): calls, attempts sent (the load offered
        to the dependency), retries, hedges, timeouts, fallbacks, short-circuited and
        bulkhead-rejected calls."""
        return pd.DataFrame.from_dict(self.records.calls, orient="index").rename_axis("link")

    @cached_property
    def breakers(self) -> pd.DataFrame:
        """Circuit-breaker transitions: ``time, link, state`` (closed, half_open, open) and
        ``service``, the service the link's calls go to. The same, counted per service, is in
        :attr:`timeseries` (``breakers_open``, ``breakers_half_open``)."""
        return pd.DataFrame(self.records.breakers, columns=["time", "link", "state", "service"])

    def to_otlp(self, path: str | os.PathLike[str], *, start: Any = None,
                sample: float | str = 1.0) -> dict[str, int]:
        """Write the requests as OpenTelemetry spans (OTLP/JSON) to ``path``; needs
        ``trace: true``. ``start``: unix seconds or ISO time of simulated time 0; ``sample``:
        fraction of whole traces kept (``"1%"``). See :mod:`simsys.otlp`."""
        from .otlp import write_otlp

        return write_otlp(self, path, start=start, sample=sample)

    @cached_property
    def spans(self) -> pd.DataFrame | None:
        """With ``trace: true``: one row per visit — ``id, service, instance, arrived, started,
        ended, status`` and ``wait``/``time`` (queueing, and time from start to answer)."""
        sp = self.records.spans
        if sp is None:
            return None
        df = pd.DataFrame(
            {
                "id": np.asarray(sp.rid, dtype=np.int64),
                "service": pd.Categorical.from_codes(
                    np.asarray(sp.service, dtype=np.int16), categories=self.records.services
                ),
                "instance": np.asarray(sp.replica, dtype=np.int16),
                "arrived": np.asarray(sp.arrived),
                "started": np.asarray(sp.started),
                "ended": np.asarray(sp.ended),
                "status": pd.Categorical.from_codes(
                    np.asarray(sp.status, dtype=np.int8), categories=list(STATUSES)
                ),
            }
        )
        df["wait"] = df["started"] - df["arrived"]
        df["time"] = df["ended"] - df["started"]
        return df

    def load_over_time(self, step: float | None = None) -> pd.DataFrame:
        """Per window of ``step`` seconds (default: sample_every): requests sent (``offered``,
        whether or not they finished), answered ok or degraded (``goodput``), failed, guarded
        attempts and retries — each per second."""
        step = step or float(self.graph.graph.get("sample_every", 1.0))
        edges = np.arange(0.0, self.duration + step, step)
        df = self.requests
        ok = df["status"].isin(["ok", "degraded"]).to_numpy()
        out = pd.DataFrame({"time": edges[1:]})
        sent = np.asarray(self.records.sent_at) if len(self.records.sent_at) else df["start"]
        out["offered"] = np.histogram(sent, edges)[0] / step  # finished or not
        out["goodput"] = np.histogram(df["end"][ok], edges)[0] / step
        out["failed"] = np.histogram(df["end"][~ok], edges)[0] / step
        out["attempts"] = np.histogram(np.asarray(self.records.attempt_at), edges)[0] / step
        out["retries"] = np.histogram(np.asarray(self.records.retry_at), edges)[0] / step
        return out

    # -- display ----------------------------------------------------------------------------
    @cached_property
    def plot(self) -> Any:
        """Plotting accessor: ``result.plot.latency_cdf()``, ``.latency_over_time()``, …"""
        from .plot import ResultPlots

        return ResultPlots(self)

    def __repr__(self) -> str:
        s = self.summary()
        lat = s["latency"]["mean"]
        return (
            f"<Result {self.name!r} seed={self.seed} duration={self.duration:g}s "
            f"requests={s['requests']['total']} ok={s['requests']['ok']} "
            f"mean latency={'-' if lat is None else f'{lat * 1e3:.3g}ms'}>"
        )

    def save(self, directory: str | Path, plots: bool = True, csv: bool = True) -> Path:
        """Write the run into ``directory`` as ``simsys run --out`` does: ``summary.json``, the
        tables as parquet and CSV, ``scenario.yaml``, the journal and the plots; ``simsys
        report directory`` and :func:`simsys.load_run` read it back. Returns the directory."""
        from .output import save_run

        return save_run(self, directory, plots=plots, csv=csv)

    def _repr_html_(self) -> str:
        from .display import summary_html

        return summary_html(self)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists stay values."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _escape(x: Any) -> str:
    return html.escape(str(x))


def _missing_below_zero(values: Any) -> pd.Series:
    """Replica numbers with -1 (none) as ``<NA>``: a nullable Int16 column."""
    a = np.asarray(values, dtype=np.int16)
    return pd.Series(pd.arrays.IntegerArray(a, a < 0))
