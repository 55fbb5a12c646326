"""The plan: which (point, replication) runs next, and in precision mode when a point may stop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from ..errors import Problem, ScenarioError
from ..stats import precise_enough
from .results import BOOK, HEADLINE


class Plan:
    """Which (point, replication) to run next; in precision mode, when each point may stop."""

    def __init__(
        self,
        n_points: int,
        replications: int,
        done: dict[tuple[int, int], dict[str, Any]],
        precision: float | None,
        metric: str | None,
        batch: int,
        max_replications: int,
        confidence: float,
    ):
        self.n_points = n_points
        self.precision = precision
        self.metric = metric
        self.batch = batch
        self.max_replications = max_replications
        self.confidence = confidence
        self.done = done
        self.target = [replications] * n_points
        self.finished = [False] * n_points
        self.queue: deque[tuple[int, int]] = deque(
            (p, r) for r in range(replications) for p in range(n_points) if (p, r) not in done
        )
        self.metric_checked = False
        if precision is not None:
            first_ok = next((row for row in done.values() if row.get("status") == "ok"), None)
            if first_ok is not None:
                self._check_metric(first_ok)
            for p in range(n_points):
                self._advance(p)

    @property
    def total(self) -> int:
        return sum(self.target)

    def next(self) -> tuple[int, int] | None:
        return self.queue.popleft() if self.queue else None

    def record(self, p: int, r: int, row: dict[str, Any]) -> None:
        self.done[(p, r)] = row
        if self.precision is None:
            return
        if not self.metric_checked and row.get("status") == "ok":
            self._check_metric(row)
        self._advance(p)

    def _check_metric(self, row: Mapping[str, Any]) -> None:
        if self.metric not in row:
            figures = sorted(k for k in row if k not in (*BOOK, "point_key") and "." in k or k in HEADLINE)
            raise ScenarioError([Problem("metric", f"{self.metric!r} is not a figure of the "
                                         f"run summary; figures are: {', '.join(figures)}")])
        self.metric_checked = True

    def precise(self, p: int) -> bool:
        values = [self.done[(p, r)].get(self.metric) for r in range(self.target[p])]
        return precise_enough(values, self.precision, self.confidence)  # type: ignore[arg-type]

    def _advance(self, p: int) -> None:
        while not self.finished[p]:
            if any((p, r) not in self.done for r in range(self.target[p])):
                return
            if self.precise(p) or self.target[p] >= self.max_replications:
                self.finished[p] = True
                return
            start = self.target[p]
            self.target[p] = min(start + self.batch, self.max_replications)
            self.queue.extend((p, r) for r in range(start, self.target[p]) if (p, r) not in self.done)
