"""Shared pytest configuration for the simsys test suite.

Keep this file general-purpose: no autouse fixtures that change what other tests see.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Test helper modules in tests/ (e.g. ``stats.py``) are imported by plain name
# (``from stats import replicate``). pytest's default "prepend" import mode puts this directory
# on sys.path already; doing it here makes that hold under ``--import-mode=importlib`` too.
_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
