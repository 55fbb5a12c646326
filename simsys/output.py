"""Run directories: what ``simsys run --out DIR`` writes and ``simsys report DIR`` reads.

Placeholder; owned by the report work (issue 8).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def save_run(result: Any, directory: str | Path, plots: bool = True) -> Path:
    """Write summary.json and the parquet tables of ``result`` into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(result.summary(), indent=2))
    os.replace(tmp, out / "summary.json")
    for name in ("requests", "incidents", "timeseries"):
        getattr(result, name).to_parquet(out / f"{name}.parquet")
    return out
