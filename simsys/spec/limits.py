"""How much a scenario may ask for: the bounds every count, size, depth and rate is held to.

A simulator people run in CI and teach with must not hang, fill the machine's memory or crash
on what a user writes, however odd. These bounds keep every input to what a laptop can hold;
each message that enforces one names the bound. The first four can be raised for one process
with an environment variable (``SIMSYS_MAX_FILE_BYTES=50MB simsys run big.yaml``); the event
budget has ``simsys run --max-events`` (and ``max_events=`` in Python).
"""

from __future__ import annotations

import os

from ..errors import ScenarioError


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    from .units import parse_size

    try:
        value = int(parse_size(raw)) if name.endswith("BYTES") else int(float(raw))
    except (ValueError, TypeError, OverflowError):
        raise ScenarioError(f"environment variable {name}={raw!r}: expected a whole number") from None
    if value < 1:
        raise ScenarioError(f"environment variable {name}={raw!r}: expected a number ≥ 1")
    return value


def max_file_bytes() -> int:
    """Largest scenario or trace file read (bytes); ``SIMSYS_MAX_FILE_BYTES``, default 10 MB."""
    return _env_int("SIMSYS_MAX_FILE_BYTES", 10_000_000)


def max_yaml_nodes() -> int:
    """Most values a YAML document may hold once its aliases are expanded;
    ``SIMSYS_MAX_YAML_NODES``, default 2,000,000."""
    return _env_int("SIMSYS_MAX_YAML_NODES", 2_000_000)


def max_alias_nodes() -> int:
    """Most values aliases (``*name``) may add to a YAML document; ``SIMSYS_MAX_ALIAS_NODES``,
    default 100,000: ordinary reuse adds tens, an alias bomb billions."""
    return _env_int("SIMSYS_MAX_ALIAS_NODES", 100_000)


def max_depth() -> int:
    """Deepest nesting of mappings and lists in a YAML document; ``SIMSYS_MAX_DEPTH``,
    default 64 (a scenario needs about 8)."""
    return _env_int("SIMSYS_MAX_DEPTH", 64)


# Bounds on values, checked by validation (the messages name them). Far above any real system
# one machine can simulate, far below what would overflow or exhaust memory.
MAX_DURATION = 1e9          # seconds (about 31.7 years) for any duration
MAX_RATE = 1e7              # events per second for any rate
MAX_SIZE = 1e15             # bytes (1 PB) for any size
MAX_NUMBER = 1e12           # any other plain number (factors, multipliers, prices)
MAX_COUNT = 1_000_000_000   # any other whole number (queue lengths, thresholds)
MAX_SERVICES = 10_000       # services (or app components) in one scenario
MAX_REPLICAS = 10_000       # replicas of one service
MAX_WORKERS = 1_000_000     # workers of one replica
MAX_USERS = 1_000_000       # closed users, or polling clients, of one workload entry
MAX_WS_CLIENTS = 100_000_000  # WebSocket clients of one entry (an aggregate pool counts them)
MAX_EXACT_CONNECTIONS = 2_000_000  # expected connections of one exact WebSocket pool (objects)
MAX_LIST = 100_000          # items of a list other than empirical values (calls, faults, …)
MAX_VALUES = 1_000_000      # values of one empirical distribution
MAX_ATTEMPTS = 1_000        # attempts of a retry policy
MAX_IN_PROCESS_DEPTH = 200  # app components calling each other in one process, nested

# Default work budget of one run: simulated events (request visits, link crossings, samples).
# simsys handles about 0.5-1 million such events per second on one core, so the default lets a
# 2-core laptop finish any accepted run in about an hour.
DEFAULT_MAX_EVENTS = 2_000_000_000
