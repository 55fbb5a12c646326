"""The exception tree: every error simsys raises on purpose derives from :class:`SimsysError`.

User mistakes (a bad scenario, a bad override) are :class:`ScenarioError`; the command line
prints them as one line per problem and exits with status 2, never with a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class SimsysError(Exception):
    """Base class of all errors raised by simsys."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario: where it is and what was expected.

    ``line`` and ``column`` are 1-based and ``None`` when the spec did not come from a file.
    """

    path: str
    message: str
    source: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.source:
            where = self.source
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        path = f"{self.path}: " if self.path else ""
        return f"{where}{path}{self.message}"


class ScenarioError(SimsysError, ValueError):
    """A scenario (file, dict or override) is invalid; ``problems`` lists every issue found."""

    def __init__(self, problems: list[Problem] | str, source: str | None = None):
        if isinstance(problems, str):
            problems = [Problem("", problems, source)]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class BuildError(SimsysError):
    """A graph cannot be turned into a simulation (e.g. a hand-edited graph lacks attributes)."""


class VerdictError(SimsysError):
    """The run, experiment or sweep worked, and its verdict is negative (a steady-state
    hypothesis deviated with ``--fail-on-deviation``, or every run of a sweep failed).

    The command line exits with status 3 for it: 1 is an internal error, 2 bad input.
    """


def did_you_mean(word: object, choices: object) -> str:
    """``" (did you mean 'catalog'?)"`` when one of ``choices`` is close to ``word``, else ``""``.

    For messages about an unknown name: a typo gets its correction, anything else nothing.
    """
    import difflib

    if not isinstance(word, str):
        return ""
    names = [c for c in choices if isinstance(c, str) and c != word]  # type: ignore[attr-defined]
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
