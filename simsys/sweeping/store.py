"""The output directory: ``sweep.json``, part files written atomically as runs finish, and
the runs already there when a sweep resumes.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import Problem, ScenarioError
from ..files import atomic_write, leftovers
from .grid import point_key
from .worker import error_message

FORMAT = "simsys-sweep/1"


def versions() -> dict[str, str]:
    import platform
    from importlib import metadata

    from .. import __version__

    out = {"simsys": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "simpy", "pandas", "pyarrow"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(rows)
    if "error" in df:
        df["error"] = df["error"].astype(object)
    return df


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


class PartWriter:
    """Buffers finished rows and writes them as ``runs/part-*.parquet`` (temp name, then rename)."""

    def __init__(self, directory: Path | None, every: float, max_rows: int = 500):
        self.directory = directory
        self.every = every
        self.max_rows = max_rows
        self.rows: list[dict[str, Any]] = []
        self.last = time.monotonic()
        self.seq = 0
        self.stamp = f"{time.time_ns():020d}-{os.getpid()}"

    def add(self, row: dict[str, Any]) -> None:
        if self.directory is not None:
            self.rows.append(row)

    def due(self) -> float | None:
        """Seconds until the buffer must be written, or None when it is empty."""
        if not self.rows:
            return None
        return max(0.0, self.every - (time.monotonic() - self.last))

    def maybe_flush(self) -> None:
        if self.rows and (len(self.rows) >= self.max_rows or self.due() == 0.0):
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        if not self.rows or self.directory is None:
            return
        rows, self.rows = self.rows, []
        self.seq += 1
        write_parquet(_frame(rows), self.directory / f"part-{self.stamp}-{self.seq:05d}.parquet")


def read_parts(runs_dir: Path, quarantine: bool = False,
                say: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Every row in ``runs_dir/part-*.parquet``, one per key, ok preferred.

    A part that cannot be read (truncated by a crash of the disk or the machine, emptied by
    hand) is skipped with a note; with ``quarantine`` (a sweep resuming) it is also renamed
    ``….parquet.corrupt``, so its runs are done again and it is never read again.
    """
    import pyarrow.parquet as pq

    frames = []
    for path in sorted(runs_dir.glob("part-*.parquet")):
        try:
            frames.append(pq.read_table(path).to_pandas())
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError and others
            note = f"{path}: not a readable part file ({error_message(exc)})"
            if quarantine:
                bad = path.with_name(path.name + ".corrupt")
                os.replace(path, bad)
                note += f"; renamed {bad.name}, its runs will be done again"
            (say or _stderr)(note)
    frames = [f for f in frames if len(f) and "point_key" in f and "replication" in f]
    if not frames:
        return pd.DataFrame(columns=["point_key", "replication", "seed", "status", "error"])
    df = pd.concat(frames, ignore_index=True)
    df["_order"] = np.arange(len(df))
    df["_ok"] = (df["status"] == "ok").astype(int)
    df = df.sort_values(["point_key", "replication", "_ok", "_order"], kind="stable")
    df = df.drop_duplicates(["point_key", "replication"], keep="last")
    return df.sort_values("_order", kind="stable").drop(columns=["_order", "_ok"]).reset_index(drop=True)


def _stderr(message: str) -> None:
    print(f"simsys: {message}", file=sys.stderr, flush=True)




def prepare_directory(
    directory: Path,
    meta: dict[str, Any],
    index: Mapping[str, int],
    seed_of: Callable[[int], int],
    retry_errors: bool,
) -> dict[tuple[int, int], dict[str, Any]]:
    """Check OUT belongs to this sweep, write sweep.json, and return the runs already there."""
    if directory.exists() and not directory.is_dir():
        raise ScenarioError([Problem("out", "exists and is not a directory", str(directory))])
    old_path = directory / "sweep.json"
    if old_path.exists():
        try:
            old = json.loads(old_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = None
        if old is not None:
            same = (point_key(old.get("scenario", {})) == point_key(meta["scenario"])
                    and point_key(old.get("variants", {})) == point_key(meta.get("variants", {}))
                    and old.get("seed") == meta["seed"])
            if not same:
                raise ScenarioError([Problem(
                    "out", "holds a sweep of another scenario or base seed (see its sweep.json); "
                    "choose another directory or remove it", str(directory))])
            meta["created_at"] = old.get("created_at")
    meta.setdefault("created_at", None)
    meta["created_at"] = meta["created_at"] or time.strftime("%Y-%m-%dT%H:%M:%S%z")
    runs_dir = directory / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    for tmp in [*leftovers(runs_dir), *leftovers(directory)]:  # from a sweep killed mid-write
        tmp.unlink(missing_ok=True)
    write_json(old_path, meta)
    done: dict[tuple[int, int], dict[str, Any]] = {}
    df = read_parts(runs_dir, quarantine=True)
    if not len(df):
        return done
    for row in df.to_dict("records"):
        p = index.get(row["point_key"])
        r = int(row["replication"])
        if p is None or int(row["seed"]) != seed_of(r):
            continue
        if retry_errors and row.get("status") != "ok":
            continue
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        done[(p, r)] = clean
    return done




def meta_problem(meta: Any) -> str | None:
    """What is wrong with a ``sweep.json`` read back, or None."""
    if not isinstance(meta, dict):
        return f"holds {type(meta).__name__}, expected a JSON object"
    for key, kind in (("grid_keys", list), ("points", list), ("seed", int)):
        if not isinstance(meta.get(key), kind):
            return f"has no {key!r} ({kind.__name__})"
    if not all(isinstance(p, dict) for p in meta["points"]):
        return "has points that are not objects"
    return None
