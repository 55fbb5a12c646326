"""Parameter sweeps: one scenario, a grid of values, many replications, any executor.

The package holds one idea per module: :mod:`.seeds` (replication seeds), :mod:`.worker` (one
run in a worker), :mod:`.executors` (pool, Dask, any executor), :mod:`.grid` (points, checks),
:mod:`.store` (the output directory), :mod:`.plan` (precision stopping), :mod:`.results`
(:class:`Sweep`, reading back) and :mod:`.driver` (:func:`sweep`). Comparisons
(:mod:`simsys.comparing`) are sweeps over a variant axis and run on the same engine.

A sweep runs a scenario once per *grid point* and *replication*, keeps one flat row per run
(never the per-request tables) and aggregates them into means with confidence intervals.

>>> import simsys
>>> tiny = {"duration": "20s",
...         "services": {"web": {"workers": 2,
...                              "service_time": {"dist": "exponential", "mean": "10ms"}}},
...         "workload": [{"type": "poisson", "rate": "50/s", "target": "web"}]}
>>> sw = simsys.sweep(tiny, grid={"services.web.workers": [1, 2]}, replications=3, jobs=1,
...                   progress=False)
>>> len(sw.runs), sorted(set(sw.runs["status"]))
(6, ['ok'])
>>> t = sw.table()
>>> t[t["metric"] == "latency.mean"][["services.web.workers", "n"]].to_dict("list")
{'services.web.workers': [1, 2], 'n': [3, 3]}

Grids
-----
``grid`` is either a product, ``{"services.catalog.replicas": [1, 2, 3],
"chaos.monkey.mean_time_between_failures": ["5min", "10min"]}`` (6 points, the first key
varying slowest), or an explicit list of points, ``[{"services.web.workers": 1},
{"services.web.workers": 4, "services.web.queue": 10}]``. Keys are dotted scenario paths, as
with ``simsys run --set``. Every point is checked like a scenario file before any run starts; a
bad key or value raises :class:`~simsys.errors.ScenarioError` naming it. A grid changes values;
it cannot add a service (``services.catalg.replicas`` is a typo, not a new service). ``seed`` is
not a grid key: the sweep sets it per replication.

Random numbers
--------------
Replication ``r`` runs with seed ``SeedSequence(base_seed, spawn_key=(r,)).generate_state(1)[0]``
(the same as ``SeedSequence(base_seed).spawn(r + 1)[r]``), whatever the grid point: the same
replication at two points sees the same arrivals, service times and failures wherever the two
scenarios agree (common random numbers), so differences between points are measured with much
less noise (:meth:`Sweep.diff`). ``base_seed`` is ``seed=`` or the scenario's own ``seed``.

Precision
---------
``precision=0.05, metric="latency.p99"`` starts every point with ``replications`` runs and adds
rounds of ``batch`` runs (default ``min(replications, 10)``) until the 95 % confidence
half-width of the point's mean of ``metric`` is at most 5 % of that mean, or
``max_replications`` (default ``max(10 × replications, 100)``) is reached. Each decision uses
only that point's replications 0…n-1, so the stopping count does not depend on the executor.

Executors
---------
One code path drives any :class:`concurrent.futures.Executor`: by default a local process pool
with one worker per core; ``jobs=N`` for N processes (``jobs=1`` runs in this process, handy for
debugging); ``scheduler="tcp://host:8786"`` (or the path of a Dask scheduler file) connects a
``distributed.Client`` and uses ``client.get_executor()``; ``executor=`` takes any executor you
bring. Runs travel as plain data (scenario dict, overrides, seed) and come back as flat dicts;
per-request tables stay in the worker unless ``collect=`` (a picklable function of the Result)
adds figures computed from them. ``before_run=`` is called in the worker before each run
(instrumentation, fault injection). A run that raises becomes a row with ``status="error"`` and the message; a worker process that
dies (``BrokenProcessPool``) costs a new pool, and the runs that were in flight are run again one
at a time so that only the one that kills its worker is recorded as an error.

Tables
------
``Sweep.runs`` has one row per run; ``Sweep.table()`` one row per grid point and figure (long
format: ``point``, grid keys, ``metric``, ``n``, ``mean``, ``std``, ``half_width``, ``ci_low``,
``ci_high``; ``wide=True`` pivots to ``(metric, statistic)`` columns); ``Sweep.overview()`` the
``mean ± half-width`` text the command line prints; ``Sweep.diff(metric, a, b)`` the paired
difference between two points.

Output directory (``out=``)
---------------------------
::

    OUT/sweep.json            scenario (as data), grid, points, base seed, replications,
                              precision settings, versions, status
    OUT/runs/part-*.parquet   the rows, written as runs finish (at least every 2 s), each file
                              written to a temporary name and renamed, so a killed sweep never
                              leaves a half-written part
    OUT/runs.parquet          every row of the finished sweep in one file
    OUT/table.parquet         the aggregated table (long format, see :meth:`Sweep.table`)

Running the same sweep again with the same ``out`` skips the runs already there (keyed by grid
point values and replication) and finishes the rest; a different scenario or seed is refused.
Error rows count as done unless ``retry_errors=True``. :func:`load_sweep` (also
``Sweep.load``) reads a directory back.

Command line
------------
::

    simsys sweep SCENARIO.yaml --grid services.catalog.replicas=1,2,3 \\
        --grid chaos.monkey.mean_time_between_failures=5min,10min \\
        --replications 30 [--jobs N | --scheduler ADDRESS] [--seed S] --out DIR
    simsys sweep SCENARIO.yaml --grid services.web.workers=1,2,4 --replications 5 \\
        --precision 5% --metric latency.p99 --max-replications 200 --out DIR

A progress bar on stderr shows runs done, failures and the time left; the aggregated table is
printed at the end. Exit status 0 even when some runs failed (their count is reported), 2 on bad
input (a bad grid key or value, an unreachable scheduler), 130 when interrupted (the finished
runs are saved: run the same command again to finish).
"""

from __future__ import annotations

from .driver import sweep
from .results import BOOK, HEADLINE, Sweep, load_sweep
from .seeds import replication_seed
from .worker import RunTimeout

__all__ = ["BOOK", "HEADLINE", "RunTimeout", "Sweep", "load_sweep", "replication_seed", "sweep"]
