"""Python probes and actions with fixed values, for running real chaoslib experiments in tests.

A probe returns the value set for it in the current phase ("before" until the action
``to_after`` runs, then "after"); None makes it fail as a provider that cannot measure does.
"""

from __future__ import annotations

from typing import Any

VALUES: dict[str, dict[str, Any]] = {"before": {}, "after": {}}
PHASE = ["before"]


def reset(before: dict[str, Any], after: dict[str, Any]) -> None:
    VALUES["before"], VALUES["after"] = dict(before), dict(after)
    PHASE[0] = "before"


def value(name: str) -> Any:
    got = VALUES[PHASE[0]].get(name)
    if got is None:
        from chaoslib.exceptions import ActivityFailed

        raise ActivityFailed(f"{name}: nothing to measure")
    return got


def to_after() -> None:
    PHASE[0] = "after"
