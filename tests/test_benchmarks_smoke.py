"""``benchmarks/core.py --quick`` runs and prints its report. No timing is asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "core.py"


def test_core_benchmark_quick_prints_its_table():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeat", "1"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "ERROR" not in out, out
    for name in ("single hop vs bare simpy", "single hop vs ciw", "chain vs bare simpy",
                 "peak memory per recorded request"):
        [line] = [ln for ln in out.splitlines() if ln.startswith(name)]
        assert line.rstrip().endswith(("PASS", "FAIL")), line
    for impl in ("simsys", "bare simpy", "ciw"):
        assert impl in out
